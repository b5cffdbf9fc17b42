/*  eda: the command-line client. It finds the services as they find each
    other (--peer, --config, EDA_* environment, loopback defaults), runs one
    command and prints the reply for a person, or as JSON with --json.

    This file holds main, the command table (each command's usage, help and
    options) and the parsing of the command line; the commands are in
    cmd_shop.c, cmd_ops.c, cmd_watch.c, cmd_trace.c and cmd_console.c, what
    they share in cli.c.
*/
#include "cli.h"

#include "eda_text.h"

#include <czmq.h>
#include <getopt.h>

/*  A command: its words for `eda --help` and `eda NAME --help`, its own long
    options, and the function that runs it. */
typedef struct {
    const char *name;
    const char *usage;   /* one line, shown with every usage error */
    const char *summary; /* one line of `eda --help` */
    const char *help;    /* the rest of `eda NAME --help` */
    const struct option *options;
    int (*run)(cli_t *cli, const cli_args_t *args);
} s_command_t;

#define S_EXIT_CODES                                                                     \
    "exit codes: 0 done, 1 failed (a service unreachable, a refusal), 2 usage error\n"

static const struct option s_place_order_options[] = {
    {"customer", required_argument, 0, 0},
    {"item", required_argument, 0, 0},
    {"request-id", required_argument, 0, 0},
    {"saga", required_argument, 0, 0},
    {"wait", no_argument, 0, 0},
    {0, 0, 0, 0}};
static const struct option s_orders_options[] = {{"status", required_argument, 0, 0},
                                                 {"limit", required_argument, 0, 0},
                                                 {"all", no_argument, 0, 0},
                                                 {"page", required_argument, 0, 0},
                                                 {0, 0, 0, 0}};
static const struct option s_customer_options[] = {
    {"name", required_argument, 0, 0}, {"credit", required_argument, 0, 0}, {0, 0, 0, 0}};
static const struct option s_bench_options[] = {{"orders", required_argument, 0, 0},
                                                {"window", required_argument, 0, 0},
                                                {"rate", required_argument, 0, 0},
                                                {"saga", required_argument, 0, 0},
                                                {0, 0, 0, 0}};
static const struct option s_watch_options[] = {
    {"order", required_argument, 0, 0}, {"type", required_argument, 0, 0},
    {"last", required_argument, 0, 0},  {"count", required_argument, 0, 0},
    {"heartbeats", no_argument, 0, 0},  {0, 0, 0, 0}};
static const struct option s_trace_options[] = {{"mermaid", no_argument, 0, 0},
                                                {0, 0, 0, 0}};
static const struct option s_console_options[] = {{"listen", required_argument, 0, 0},
                                                  {0, 0, 0, 0}};
static const struct option s_no_options[] = {{0, 0, 0, 0}};

static const s_command_t s_commands[] = {
    {"place-order",
     "eda place-order --customer ID --item SKU:QTY:PRICE [--item ...] [--request-id ID] "
     "[--saga choreography|orchestration] [--wait]",
     "place an order; --wait follows it to its outcome",
     "Places an order with order-service (PlaceOrder) and prints its id and status.\n"
     "\n"
     "options:\n"
     "  --customer ID          who orders (an unknown one is REJECTED by the saga)\n"
     "  --item SKU:QTY:PRICE   one line of the order, PRICE in cents (repeatable, "
     "1-100)\n"
     "  --request-id ID        makes a retry safe: a repeat gets the first order back\n"
     "  --saga PATTERN         choreography or orchestration (any case); default:\n"
     "                         order-service's --saga\n"
     "  --wait                 follow the order (GetOrder) until it is APPROVED or\n"
     "                         REJECTED, for at most --timeout ms\n"
     "\n"
     "example:\n"
     "  eda place-order --customer alice --item book:2:1500 --wait --timeout 5000\n"
     "\n" S_EXIT_CODES
     "  with --wait: 0 APPROVED, 3 REJECTED (the reason is printed), 4 still PENDING\n"
     "  at the timeout (it says which services do not answer, if any)\n",
     s_place_order_options, cmd_place_order},
    {"order", "eda order ORDER_ID", "show one order",
     "Shows one order (GetOrder): status, reason, customer, saga, total, items.\n"
     "\n"
     "example:\n"
     "  eda order o-a1b2c3d4e5f6-1\n"
     "\n" S_EXIT_CODES "  (an unknown order is a refusal: NOT_FOUND, exit 1)\n",
     s_no_options, cmd_order},
    {"orders", "eda orders [--status S] [--limit N | --all] [--page N]",
     "list orders, oldest first",
     "Lists orders, oldest first, following ListOrders' cursor from page to page:\n"
     "each order comes once, also while orders are being placed.\n"
     "\n"
     "options:\n"
     "  --status S     only PENDING, APPROVED, REJECTED or CANCELLED (any case)\n"
     "  --limit N      show at most N orders (default 100)\n"
     "  --all          show every order\n"
     "  --page N       ask for at most N orders a page, 1-10000 (default 1000)\n"
     "\n"
     "example:\n"
     "  eda orders --status rejected --all\n"
     "\n" S_EXIT_CODES,
     s_orders_options, cmd_orders},
    {"cancel", "eda cancel ORDER_ID", "cancel an APPROVED order",
     "Cancels an APPROVED order (CancelOrder); its credit and stock come back a\n"
     "moment later. A PENDING or REJECTED order cannot be cancelled.\n"
     "\n"
     "example:\n"
     "  eda cancel o-a1b2c3d4e5f6-1\n"
     "\n" S_EXIT_CODES "  (exit 1 too when the order cannot be cancelled)\n",
     s_no_options, cmd_cancel},
    {"customer",
     "eda customer create ID --name NAME --credit CENTS | eda customer show ID",
     "create or show a customer",
     "Creates a customer with a credit limit (CreateCustomer), or shows one's\n"
     "credit limit, reserved and available credit (GetCustomer).\n"
     "\n"
     "options (create):\n"
     "  --name NAME      the customer's name\n"
     "  --credit CENTS   the credit limit, in cents\n"
     "\n"
     "example:\n"
     "  eda customer create alice --name Alice --credit 50000\n"
     "\n" S_EXIT_CODES,
     s_customer_options, cmd_customer},
    {"stock", "eda stock add SKU QTY | eda stock show SKU", "add or show stock",
     "Adds QTY units of SKU (AddStock), or shows what is available and reserved\n"
     "(GetStock).\n"
     "\n"
     "example:\n"
     "  eda stock add book 10\n"
     "\n" S_EXIT_CODES,
     s_no_options, cmd_stock},
    {"ping", "eda ping [SERVICE]", "is each service up?",
     "Pings every service (or SERVICE: order-service, customer-service,\n"
     "inventory-service, any case, or a unique start such as 'order') at once and\n"
     "prints a row for each: up with its version and round trip, or DOWN.\n"
     "All are asked together: it takes one --timeout at most.\n"
     "\n"
     "example:\n"
     "  eda ping --timeout 500\n"
     "\n" S_EXIT_CODES "  (exit 1 when any service is DOWN)\n",
     s_no_options, cmd_ping},
    {"stats", "eda stats [SERVICE]", "each service's counters",
     "Prints the Stats counters of every service (or SERVICE), asked at once.\n"
     "\n"
     "example:\n"
     "  eda stats order --json\n"
     "\n" S_EXIT_CODES "  (exit 1 when any service does not answer)\n",
     s_no_options, cmd_stats},
    {"watch", "eda watch [--order ID] [--type T] [--last N] [--count N] [--heartbeats]",
     "the live event flow, in causal order",
     "Follows every service's events live, one lane per service (JSON lines with\n"
     "--json), in causal order: an event whose cause (causation_id) is another\n"
     "event not shown yet is held until that cause is shown, or 200 ms, then\n"
     "shown marked \"(cause not seen)\". Above 500 events/s it says so and prints\n"
     "one line per service each second (counts by type) instead; it drops events\n"
     "rather than slow the services. A service silent for 3 s (no heartbeat) is\n"
     "named on stderr (\"not reachable: ...\"), and again when it is back.\n"
     "\n"
     "options:\n"
     "  --order ID      only that order's events (correlation_id)\n"
     "  --type T        only events of type T (any case)\n"
     "  --last N        first the last N events of each service's log, then live\n"
     "  --count N       stop after N events shown\n"
     "  --heartbeats    show heartbeats too\n"
     "\n"
     "example:\n"
     "  eda watch --order o-a1b2c3d4e5f6-1 --last 100 --count 4\n"
     "\n" S_EXIT_CODES,
     s_watch_options, cmd_watch},
    {"trace", "eda trace ORDER_ID [--mermaid]", "one order's causal chain",
     "Asks every service at once for the order's events (ReplayEvents with its\n"
     "correlation_id) and order-service for its status, and prints them in causal\n"
     "order (by causation_id, never by clock), each with the time since its cause.\n"
     "The commands that started steps are shown too: PlaceOrder and CancelOrder by\n"
     "the id their events name, the orchestrator's ReserveCredit, ReserveStock,\n"
     "ReleaseStock and ReleaseCredit inferred from the participants' events. A\n"
     "service that does not answer within --timeout is named as missing, and what\n"
     "the others hold is printed all the same. A PENDING order ends with what its\n"
     "saga waits for, e.g. \"waiting for CreditReserved or CreditRejected from\n"
     "customer-service: unreachable\".\n"
     "\n"
     "options:\n"
     "  --mermaid    a Mermaid sequence diagram instead: commands as solid arrows,\n"
     "               events as dashed arrows to each service that reacts to them,\n"
     "               a note for an event nobody reacts to\n"
     "  --json       one document {order_id, status, saga, chain: [envelope...],\n"
     "               missing: [{service, why}], waiting}; each event of the chain\n"
     "               also lists its consumers\n"
     "\n"
     "example:\n"
     "  eda trace o-a1b2c3d4e5f6-1 --mermaid\n"
     "\n" S_EXIT_CODES
     "  (exit 1 when a service does not answer: the trace is partial)\n",
     s_trace_options, cmd_trace},
    {"console", "eda console [--listen HOST:PORT]", "the live console, in the browser",
     "Serves the live console over HTTP until Ctrl-C: open the URL it prints.\n"
     "It subscribes to every service like watch (same causal order) and asks\n"
     "each for Stats once a second; it drops events for a slow browser rather\n"
     "than slow anything down.\n"
     "\n"
     "  /               one page, self-contained (works offline): the services,\n"
     "                  up or down, with counters; the live flow in swim lanes\n"
     "                  with full order ids; click one for its sequence diagram\n"
     "  /api/events     the live events as Server-Sent Events, one JSON envelope\n"
     "                  per data: line\n"
     "  /api/orders/ID  the document of eda --json trace ID\n"
     "  /api/stats      the last Stats of every service, as JSON\n"
     "  /metrics        every service's Stats in the Prometheus text format:\n"
     "                  eda_up{service=\"...\"}, counters as eda_NAME_total\n"
     "  /healthz        200 when every service answers Ping, else 503 naming\n"
     "                  those that do not\n"
     "\n"
     "options:\n"
     "  --listen HOST:PORT   where to serve (default 127.0.0.1:8088; port 0: any\n"
     "                       free port, printed)\n"
     "\n"
     "example:\n"
     "  eda console --listen 127.0.0.1:8088\n"
     "\n" S_EXIT_CODES "  (exit 1 when it cannot listen or reach the endpoints)\n",
     s_console_options, cmd_console},
    {"bench", "eda bench [--orders N] [--window W] [--rate PER_S] [--saga PATTERN]",
     "drive whole sagas, report sagas/s and latency",
     "Drives N whole sagas through the running services and reports sagas/s and\n"
     "latency (run the services with --log-level warn). An order silent for 2x\n"
     "--timeout is sent again with its request_id.\n"
     "\n"
     "options:\n"
     "  --orders N       sagas to run (default 20000)\n"
     "  --window W       orders in flight at most (default 500)\n"
     "  --rate PER_S     pace the orders; 0 unpaced (default)\n"
     "  --saga PATTERN   choreography or orchestration (any case)\n"
     "\n"
     "example:\n"
     "  eda bench --orders 20000 --saga orchestration\n"
     "\n" S_EXIT_CODES "  (exit 1 when a saga did not complete)\n",
     s_bench_options, cmd_bench},
    {"keys", "eda keys init DIR", "make CURVE certificates",
     "Makes CURVE certificates for the three services and the client in DIR\n"
     "(use them with --keys DIR).\n"
     "\n"
     "example:\n"
     "  eda keys init keys\n"
     "\n" S_EXIT_CODES,
     s_no_options, cmd_keys},
};

#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

static const char *s_global_help =
    "global options (before or after the command):\n"
    "  --peer NAME=EVENTS_EP,COMMANDS_EP   where a service is (repeatable)\n"
    "  --config FILE      the topology from a ZPL file (also EDA_CONFIG)\n"
    "  --keys DIR         speak CURVE with DIR's client certificate (also EDA_KEYS,\n"
    "                     or keys = DIR in the ZPL file)\n"
    "  --timeout MS       how long to wait for replies (default 2000)\n"
    "  --json             print replies and events as JSON, one value a line\n"
    "  --help, --version\n"
    "Without options the services are found through EDA_CONFIG, EDA_PEER, or at\n"
    "their default loopback endpoints (tcp://127.0.0.1:7101 ...).\n";

/*  The global options. Their values are above any character, and below
    S_OWN, where the command's own begin. */
enum { S_PEER = 256, S_CONFIG, S_KEYS, S_TIMEOUT, S_JSON, S_VERSION, S_OWN = 512 };

static const struct option s_globals[] = {
    {"peer", required_argument, 0, S_PEER}, {"config", required_argument, 0, S_CONFIG},
    {"keys", required_argument, 0, S_KEYS}, {"timeout", required_argument, 0, S_TIMEOUT},
    {"json", no_argument, 0, S_JSON},       {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, S_VERSION}};

#define S_NGLOBALS      (sizeof s_globals / sizeof s_globals[0])
#define S_OWN_MAX       32 /* options of one command's own, at most */
#define S_GLOBALS_SHOWN "--peer, --config, --keys, --timeout, --json, --help, --version"

/*  The global options as given, applied once the command line is read. */
typedef struct {
    const char *config;
    const char *timeout;
    const char *sets[64]; /* --peer and --keys values, in order */
    const char *set_names[64];
    int nsets;
    bool json, help, version;
} s_globals_t;

/*  What comes before the command word. */
typedef struct {
    int at;          /* the command word's index, argc when there is none */
    const char *bad; /* the first option that is not a global one */
    bool help, version;
} s_lead_t;

static void s_print_usage(void)
{
    printf("usage: eda [global options] COMMAND [arguments] [global options]\n"
           "       eda COMMAND --help   that command's usage, options and exit codes\n"
           "\n"
           "commands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        printf("  %-12s %s\n", s_commands[i].name, s_commands[i].summary);
    printf("\n%s", s_global_help);
}

static void s_print_help(const s_command_t *command)
{
    printf("usage: %s\n\n%s\n%s", command->usage, command->help, s_global_help);
}

/*  Prints a usage error of the command line as a whole; returns CLI_USAGE. */
static int s_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cli_vsay(CLI_USAGE, fmt, ap);
    va_end(ap);
    return rc;
}

/*  Reads what stands before the command word: global options only ("+"
    stops getopt at the first operand, the command). */
static s_lead_t s_read_lead(int argc, char **argv)
{
    struct option table[S_NGLOBALS + 1] = {{0}};
    memcpy(table, s_globals, sizeof s_globals);
    s_lead_t lead = {0};
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:h", table, NULL)) != -1) {
        if ((c == '?' || c == ':') && !lead.bad)
            lead.bad = argv[optind - 1];
        lead.help |= c == 'h';
        lead.version |= c == S_VERSION;
    }
    lead.at = optind;
    return lead;
}

static const s_command_t *s_command(const char *name)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (streq(s_commands[i].name, name))
            return &s_commands[i];
    return NULL;
}

/*  Names every command, for an error: "place-order, order, ...". */
static const char *s_command_names(char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < S_NCOMMANDS && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%s", i ? ", " : "",
                                s_commands[i].name);
    return out;
}

/*  Without a command: --help, --version, or a usage error. */
static int s_no_command(int argc, char **argv, const s_lead_t *lead)
{
    char names[512];
    if (lead->bad)
        return s_usage_error("unknown option '%s' (global options: %s)", lead->bad,
                             S_GLOBALS_SHOWN);
    if (lead->at < argc)
        return s_usage_error("unknown command '%s' (commands: %s)", argv[lead->at],
                             s_command_names(names, sizeof names));
    if (lead->help)
        s_print_usage();
    else if (lead->version)
        printf("eda %s\n", EDA_VERSION);
    else
        return s_usage_error("no command (commands: %s; eda --help)",
                             s_command_names(names, sizeof names));
    return CLI_OK;
}

/*  Names the options `command` takes, for an error: "--a, --b". */
static const char *s_own_options(const s_command_t *command, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (const struct option *o = command->options; o->name && len < size; o++)
        len +=
            (size_t)snprintf(out + len, size - len, "%s--%s", len ? ", " : "", o->name);
    if (!out[0])
        snprintf(out, size, "none");
    return out;
}

/*  Keeps one option the parse returned: a global one in `g`, the command's
    own in `args`. 0, or CLI_USAGE (printed). */
static int s_keep(int c, const char *name, s_globals_t *g, cli_args_t *args)
{
    if (c >= S_OWN && args->nopts == CLI_OPTS_MAX)
        return s_usage_error("too many options");
    if (c >= S_OWN)
        args->opts[args->nopts++] = (cli_opt_t){name, optarg};
    else if (c == S_PEER || c == S_KEYS) {
        if (g->nsets == (int)(sizeof g->sets / sizeof g->sets[0]))
            return s_usage_error("too many --peer and --keys options");
        g->set_names[g->nsets] = name;
        g->sets[g->nsets++] = optarg;
    } else if (c == S_CONFIG)
        g->config = optarg;
    else if (c == S_TIMEOUT)
        g->timeout = optarg;
    g->json |= c == S_JSON;
    g->help |= c == 'h';
    g->version |= c == S_VERSION;
    return 0;
}

/*  Reads the whole command line for `command`: the global options and its
    own, in one table. getopt_long permutes argv (options first, operands
    after, each group in its order), so global options work before and
    after the command alike, and so do the command's (not with
    POSIXLY_CORRECT set: getopt then stops at the command word). The leading
    ':' tells a missing value from an unknown option. 0, or CLI_USAGE (printed). */
static int s_parse(int argc, char **argv, const s_command_t *command, s_globals_t *g,
                   cli_args_t *args)
{
    struct option table[S_NGLOBALS + S_OWN_MAX + 1] = {{0}};
    memcpy(table, s_globals, sizeof s_globals);
    size_t n = S_NGLOBALS;
    for (const struct option *o = command->options; o->name && n < S_NGLOBALS + S_OWN_MAX;
         o++, n++)
        table[n] = (struct option){o->name, o->has_arg, NULL, S_OWN + (int)n};
    char own[512];
    int c, index = 0;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", table, &index)) != -1) {
        if (c == ':')
            return cli_usage_error(args, "option '%s' needs a value", argv[optind - 1]);
        if (c == '?')
            return cli_usage_error(
                args, "unknown option '%s' (its options: %s; global: %s)",
                argv[optind - 1], s_own_options(command, own, sizeof own),
                S_GLOBALS_SHOWN);
        int rc = s_keep(c, c == 'h' ? "help" : table[index].name, g, args);
        if (rc)
            return rc;
    }
    /* The operands, in order: the first is the command word. */
    args->operands = argv + optind + 1;
    args->noperands = argc - optind - 1;
    return 0;
}

/*  --peer NAME=EVENTS_EP,COMMANDS_EP with NAME as the user may slip on it
    ("Order-Service", "inventory"); an unknown NAME is an error, not a peer
    nobody asks for. 0, or CLI_USAGE (printed). */
static int s_set_peer(cli_t *cli, const char *value)
{
    char why[512], name[64], fixed[2 * EDA_ENDPOINT_MAX + 64];
    const char *eq = strchr(value, '=');
    if (eq && (size_t)(eq - value) < sizeof name) {
        memcpy(name, value, (size_t)(eq - value));
        name[eq - value] = '\0';
        const char *service = cli_service(name, why, sizeof why);
        if (!service)
            return s_usage_error("--peer: %s", why);
        snprintf(fixed, sizeof fixed, "%s%s", service, eq);
        value = fixed;
    }
    if (eda_config_set(&cli->cfg, "peer", value, why, sizeof why))
        return s_usage_error("%s", why);
    return 0;
}

/*  Finds the services as they find each other: defaults, the file of
    --config (or EDA_CONFIG), the environment, then --peer and --keys in
    their order. 0, or the exit code (printed). */
static int s_configure(cli_t *cli, const s_globals_t *g)
{
    char why[1200];
    int64_t ms = 2000;
    if (g->timeout && cli_parse_i64(g->timeout, 1, 3600000, &ms))
        return s_usage_error("--timeout must be milliseconds from 1 to 3600000");
    cli->timeout_ms = (int)ms;
    cli->json = g->json;
    eda_config_defaults(&cli->cfg, "");
    const char *file = g->config ? g->config : getenv("EDA_CONFIG");
    if (file && *file && eda_config_load_file(&cli->cfg, file, why, sizeof why))
        return cli_fail("%s", why);
    if (eda_config_load_env(&cli->cfg, why, sizeof why))
        return cli_fail("%s", why);
    for (int i = 0; i < g->nsets; i++) {
        int rc = streq(g->set_names[i], "peer") ? s_set_peer(cli, g->sets[i]) : 0;
        if (!streq(g->set_names[i], "peer") &&
            eda_config_set(&cli->cfg, "keys", g->sets[i], why, sizeof why))
            rc = s_usage_error("%s", why);
        if (rc)
            return rc;
    }
    return 0;
}

int main(int argc, char **argv)
{
    s_lead_t lead = s_read_lead(argc, argv);
    const s_command_t *command = lead.at < argc ? s_command(argv[lead.at]) : NULL;
    if (!command)
        return s_no_command(argc, argv, &lead);
    s_globals_t g = {0};
    cli_args_t args = {.command = command->name, .usage = command->usage};
    int rc = s_parse(argc, argv, command, &g, &args);
    if (rc == 0 && g.help)
        s_print_help(command);
    else if (rc == 0 && g.version)
        printf("eda %s\n", EDA_VERSION);
    if (rc || g.help || g.version)
        return rc;
    cli_t cli = {0};
    if ((rc = s_configure(&cli, &g)))
        return rc;
    zsys_init();
    zsys_set_logstream(NULL);
    char why[1200];
    if (cli.cfg.keys[0] && command->run != cmd_keys &&
        !(cli.keys = eda_keys_new(cli.cfg.keys, "client", why, sizeof why)))
        return cli_fail("%s", why);
    rc = command->run(&cli, &args);
    eda_keys_destroy(&cli.keys);
    return rc;
}
