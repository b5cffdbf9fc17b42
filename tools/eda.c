/*  eda: the command-line client. It finds the services as they find each
    other (--peer, --config, EDA_* environment, loopback defaults), sends one
    command and prints the reply for a person, or as JSON with --json; `watch`
    follows every service's events live and `trace` rebuilds one order's
    causal chain from the services' event logs. Every string that came in a
    reply or an event is escaped before it reaches the terminal (eda_text:
    \xNN in text, \u00NN in JSON).
*/
#include "bench.h"
#include "eda_client.h"
#include "eda_config.h"
#include "eda_items.h"
#include "eda_log.h"
#include "eda_text.h"

#include <czmq.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>

#define S_SERVICES 3
#define S_SHOWN    (4 * EDA_NAME_MAX + 1) /* an id from the wire, escaped */

static const char *s_services[S_SERVICES] = {"order-service", "customer-service",
                                             "inventory-service"};

static const char *s_usage =
    "usage: eda [global options] COMMAND [arguments]\n"
    "\n"
    "commands:\n"
    "  place-order --customer ID --item SKU:QTY:PRICE [--item ...]\n"
    "              [--request-id ID] [--saga choreography|orchestration] [--wait]\n"
    "                            place an order (PRICE in cents); --wait follows\n"
    "                            it until it is approved or rejected\n"
    "  order ID                  show one order\n"
    "  orders [--status S] [--limit N]\n"
    "                            list orders, oldest first\n"
    "  cancel ORDER_ID           cancel an APPROVED order (exit 1 if refused)\n"
    "  customer create ID --name NAME --credit CENTS\n"
    "  customer show ID\n"
    "  stock add SKU QTY\n"
    "  stock show SKU\n"
    "  ping [SERVICE]            is each service up? (exit 1 if one is not)\n"
    "  stats [SERVICE]           each service's counters\n"
    "  watch [--count N] [--heartbeats]\n"
    "                            the live event flow, one lane per service\n"
    "  bench [--orders N] [--window W] [--rate PER_S]\n"
    "        [--saga choreography|orchestration]\n"
    "                            drive N whole sagas and report sagas/s and\n"
    "                            latency (run the services with --log-level warn);\n"
    "                            an order silent for 2x --timeout is sent again\n"
    "  keys init DIR             make CURVE certificates for the three services\n"
    "                            and the client in DIR (see --keys)\n"
    "  trace ORDER_ID [--mermaid]\n"
    "                            one order's events from every event log, in\n"
    "                            causal order; --mermaid writes a sequence diagram\n"
    "\n"
    "global options:\n"
    "  --peer NAME=EVENTS_EP,COMMANDS_EP   where a service is (repeatable)\n"
    "  --config FILE             the topology from a ZPL file\n"
    "  --keys DIR                speak CURVE with DIR's client certificate (also\n"
    "                            EDA_KEYS, or keys = DIR in the ZPL file)\n"
    "  --timeout MS              how long to wait for a reply (default 2000)\n"
    "  --json                    print replies and events as JSON\n"
    "  --help, --version\n"
    "Without options the services are found through EDA_CONFIG, EDA_PEER, or at\n"
    "their default loopback endpoints (tcp://127.0.0.1:7101 ...).\n";

typedef struct {
    eda_config_t cfg;
    int timeout_ms;
    bool json;
    eda_keys_t *keys; /* the "client" certificate with --keys, else NULL */
} s_opts_t;

/*  Escapes s (a C string) for the terminal into out[size]; returns out. */
static const char *s_esc(const char *s, char *out, size_t size)
{
    eda_escape(out, size, s, strlen(s));
    return out;
}

/*  Prints a one-line error and returns the exit code 1. The line is escaped
    whole: callers pass strings from replies (codes, messages, statuses) as
    they came. */
static int s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_fail(const char *fmt, ...)
{
    char text[1024], shown[4 * sizeof text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "eda: %s\n", s_esc(text, shown, sizeof shown));
    return 1;
}

/*  Prints a usage error and returns the exit code 2. */
static int s_usage_error(const char *what)
{
    char shown[2048];
    fprintf(stderr, "eda: %s (try eda --help)\n", s_esc(what, shown, sizeof shown));
    return 2;
}

static const eda_endpoint_t *s_endpoint(s_opts_t *o, const char *service)
{
    return eda_config_peer(&o->cfg, service);
}

/*  Connects a client to `service`'s commands; NULL with a message printed. */
static eda_client_t *s_client(s_opts_t *o, const char *service)
{
    const eda_endpoint_t *ep = s_endpoint(o, service);
    eda_client_t *client = ep ? eda_client_new(ep->commands, "eda") : NULL;
    if (client && o->keys && eda_client_secure(client, o->keys, service))
        eda_client_destroy(&client);
    if (!client)
        s_fail("cannot connect to %s at %s", service,
               ep ? ep->commands : "(no endpoint)");
    return client;
}

/*  Copies the string `key` of `map` into out[size] as it came, cut to fit
    (a NUL in it ends it), or `absent` when there is none. Returns out. */
static const char *s_raw(const msgpack_object *map, const char *key, const char *absent,
                         char *out, size_t size)
{
    const msgpack_object *o = eda_map_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_STR)
        snprintf(out, size, "%s", absent);
    else {
        size_t n = o->via.str.size < size - 1 ? o->via.str.size : size - 1;
        memcpy(out, o->via.str.ptr, n);
        out[n] = '\0';
    }
    return out;
}

/*  Sends the command begun on `client` and waits. Returns 0 with an ok reply,
    1 (message printed) otherwise. */
static int s_call(s_opts_t *o, eda_client_t *client, const char *service,
                  eda_envelope_t *reply)
{
    char why[512];
    if (eda_client_call(client, o->timeout_ms, reply, why, sizeof why))
        return s_fail("%s: %s (is it running? try eda ping)", service, why);
    if (reply->ok != 1) {
        char code[32], message[400];
        s_raw(&reply->error, "code", "?", code, sizeof code);
        s_raw(&reply->error, "message", "", message, sizeof message);
        return s_fail("%s: %s: %s", service, code, message); /* escaped there */
    }
    return 0;
}

/*  Prints obj as one line of JSON, every string escaped (eda_json). */
static void s_print_json(const msgpack_object *obj)
{
    static char buf[1 << 20];
    size_t need = eda_json(obj, buf, sizeof buf);
    char *big = need < sizeof buf ? NULL : malloc(need + 1);
    if (big)
        eda_json(obj, big, need + 1);
    else if (need >= sizeof buf)
        fprintf(stderr, "eda: out of memory: the JSON below is cut short\n");
    printf("%s\n", big ? big : buf);
    free(big);
}

/*  Formats cents as 12.34. */
static const char *s_money(int64_t cents, char *out, size_t size)
{
    const char *sign = cents < 0 ? "-" : "";
    uint64_t abs = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    snprintf(out, size, "%s%" PRIu64 ".%02" PRIu64, sign, abs / 100, abs % 100);
    return out;
}

static int64_t s_i64(const msgpack_object *map, const char *key)
{
    int64_t v = 0;
    eda_get_i64(map, key, &v);
    return v;
}

/*  The string `key` of `map` escaped for the terminal into out[size] (cut
    cleanly when long), or "-" when there is none. */
static const char *s_str(const msgpack_object *map, const char *key, char *out,
                         size_t size)
{
    const msgpack_object *o = eda_map_get(map, key);
    if (o && o->type == MSGPACK_OBJECT_STR)
        eda_escape(out, size, o->via.str.ptr, o->via.str.size);
    else
        snprintf(out, size, "-");
    return out;
}

/*  Parses a whole decimal integer in [min, max]. 0 or -1. */
static int s_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* --- orders -------------------------------------------------------------- */

static void s_print_order_line(const msgpack_object *order)
{
    char id[S_SHOWN], status[S_SHOWN], customer[S_SHOWN], reason[S_SHOWN], saga[S_SHOWN],
        money[32];
    s_str(order, "reason", reason, sizeof reason);
    printf("%-22s %-9s %-12s %12s  %-13s %s\n", s_str(order, "order_id", id, sizeof id),
           s_str(order, "status", status, sizeof status),
           s_str(order, "customer_id", customer, sizeof customer),
           s_money(s_i64(order, "total"), money, sizeof money),
           s_str(order, "saga", saga, sizeof saga), streq(reason, "-") ? "" : reason);
}

static void s_print_order(const msgpack_object *order)
{
    char text[S_SHOWN], money[32];
    printf("order     %s\n", s_str(order, "order_id", text, sizeof text));
    printf("status    %s", s_str(order, "status", text, sizeof text));
    const msgpack_object *reason = eda_map_get(order, "reason");
    if (reason && reason->type == MSGPACK_OBJECT_STR)
        printf(" (%s)", s_str(order, "reason", text, sizeof text));
    printf("\ncustomer  %s\n", s_str(order, "customer_id", text, sizeof text));
    printf("saga      %s\n", s_str(order, "saga", text, sizeof text));
    printf("total     %s\n", s_money(s_i64(order, "total"), money, sizeof money));
    const msgpack_object *items = eda_map_get(order, "items");
    for (uint32_t i = 0;
         items && items->type == MSGPACK_OBJECT_ARRAY && i < items->via.array.size; i++) {
        const msgpack_object *item = &items->via.array.ptr[i];
        printf("item      %-16s x %-6" PRId64 " at %s\n",
               s_str(item, "sku", text, sizeof text), s_i64(item, "qty"),
               s_money(s_i64(item, "price"), money, sizeof money));
    }
}

/*  Reads one --item SKU:QTY:PRICE. 0 or -1. */
static int s_parse_item(const char *text, eda_item_t *item)
{
    const char *c1 = strchr(text, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || c1 == text || (size_t)(c1 - text) > EDA_NAME_MAX)
        return -1;
    char num[32];
    memcpy(item->sku, text, (size_t)(c1 - text));
    item->sku[c1 - text] = '\0';
    size_t qlen = (size_t)(c2 - c1 - 1);
    if (qlen == 0 || qlen >= sizeof num)
        return -1;
    memcpy(num, c1 + 1, qlen);
    num[qlen] = '\0';
    if (s_parse_i64(num, 1, INT64_MAX, &item->qty) ||
        s_parse_i64(c2 + 1, 0, INT64_MAX, &item->price))
        return -1;
    return 0;
}

/*  Asks for one order; 0 with the reply, 1 on failure (printed). */
static int s_get_order(s_opts_t *o, eda_client_t *client, const char *order_id,
                       eda_envelope_t *reply)
{
    msgpack_packer *pk = eda_client_begin(client, "GetOrder", order_id);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", order_id);
    return s_call(o, client, "order-service", reply);
}

static int s_cmd_place_order(s_opts_t *o, int argc, char **argv)
{
    static struct option longopts[] = {{"customer", required_argument, 0, 'c'},
                                       {"item", required_argument, 0, 'i'},
                                       {"request-id", required_argument, 0, 'r'},
                                       {"saga", required_argument, 0, 's'},
                                       {"wait", no_argument, 0, 'w'},
                                       {0, 0, 0, 0}};
    const char *customer = NULL, *request_id = NULL, *saga = NULL;
    bool wait = false;
    eda_item_t items[EDA_ITEMS_MAX];
    size_t n = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'c')
            customer = optarg;
        else if (c == 'r')
            request_id = optarg;
        else if (c == 's') {
            if (!bench_saga_valid(optarg))
                return s_usage_error("--saga must be choreography or orchestration");
            saga = optarg;
        } else if (c == 'w')
            wait = true;
        else if (c == 'i') {
            if (n == EDA_ITEMS_MAX)
                return s_usage_error("at most 100 items");
            if (s_parse_item(optarg, &items[n++]))
                return s_usage_error("--item wants SKU:QTY:PRICE, e.g. apple:2:150");
        } else
            return s_usage_error("bad place-order option");
    }
    if (!customer || n == 0 || optind != argc)
        return s_usage_error("place-order needs --customer and at least one --item");

    eda_client_t *client = s_client(o, "order-service");
    if (!client)
        return 1;
    msgpack_packer *pk = eda_client_begin(client, "PlaceOrder", NULL);
    msgpack_pack_map(pk, 2 + (request_id ? 1 : 0) + (saga ? 1 : 0));
    eda_pack_kv_str(pk, "customer_id", customer);
    eda_pack_key(pk, "items");
    eda_items_pack(pk, items, n, true);
    if (request_id)
        eda_pack_kv_str(pk, "request_id", request_id);
    if (saga)
        eda_pack_kv_str(pk, "saga", saga);
    eda_envelope_t reply;
    int rc = s_call(o, client, "order-service", &reply);
    char order_id[EDA_NAME_MAX + 1] = "", status[16] = "";
    if (rc == 0) {
        eda_get_str(&reply.data, "order_id", order_id, sizeof order_id);
        eda_get_str(&reply.data, "status", status, sizeof status);
    }
    /* --wait: follow the order until it settles, within the timeout. */
    int64_t deadline = zclock_mono() + o->timeout_ms;
    while (rc == 0 && wait && streq(status, "PENDING") && zclock_mono() < deadline &&
           !zsys_interrupted) {
        zclock_sleep(20); /* a client polling a read model, not a test */
        rc = s_get_order(o, client, order_id, &reply);
        if (rc == 0)
            eda_get_str(&reply.data, "status", status, sizeof status);
    }
    if (rc == 0) {
        if (o->json)
            s_print_json(&reply.data);
        else if (wait && eda_map_get(&reply.data, "items"))
            s_print_order_line(&reply.data);
        else {
            char id_shown[S_SHOWN], status_shown[S_SHOWN];
            printf("order %s %s\n", s_esc(order_id, id_shown, sizeof id_shown),
                   s_esc(status, status_shown, sizeof status_shown));
        }
        if (wait && streq(status, "PENDING"))
            rc = s_fail("order %s still PENDING after %d ms", order_id, o->timeout_ms);
    }
    eda_client_destroy(&client);
    return rc;
}

static int s_cmd_order(s_opts_t *o, int argc, char **argv)
{
    if (argc != 2)
        return s_usage_error("usage: eda order ORDER_ID");
    eda_client_t *client = s_client(o, "order-service");
    if (!client)
        return 1;
    eda_envelope_t reply;
    int rc = s_get_order(o, client, argv[1], &reply);
    if (rc == 0) {
        if (o->json)
            s_print_json(&reply.data);
        else
            s_print_order(&reply.data);
    }
    eda_client_destroy(&client);
    return rc;
}

static int s_cmd_orders(s_opts_t *o, int argc, char **argv)
{
    static struct option longopts[] = {{"status", required_argument, 0, 's'},
                                       {"limit", required_argument, 0, 'l'},
                                       {0, 0, 0, 0}};
    const char *status = NULL;
    int64_t limit = 100;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 's')
            status = optarg;
        else if (c == 'l') {
            if (s_parse_i64(optarg, 1, 10000, &limit))
                return s_usage_error("--limit must be a number from 1 to 10000");
        } else
            return s_usage_error("usage: eda orders [--status S] [--limit N]");
    }
    if (optind != argc)
        return s_usage_error("usage: eda orders [--status S] [--limit N]");
    eda_client_t *client = s_client(o, "order-service");
    if (!client)
        return 1;
    msgpack_packer *pk = eda_client_begin(client, "ListOrders", NULL);
    msgpack_pack_map(pk, status ? 2 : 1);
    eda_pack_kv_i64(pk, "limit", limit);
    if (status)
        eda_pack_kv_str(pk, "status", status);
    eda_envelope_t reply;
    int rc = s_call(o, client, "order-service", &reply);
    if (rc == 0) {
        const msgpack_object *orders = eda_map_get(&reply.data, "orders");
        if (o->json)
            s_print_json(orders);
        else if (orders && orders->type == MSGPACK_OBJECT_ARRAY) {
            printf("%-22s %-9s %-12s %12s  %-13s %s\n", "ORDER", "STATUS", "CUSTOMER",
                   "TOTAL", "SAGA", "REASON");
            for (uint32_t i = 0; i < orders->via.array.size; i++)
                s_print_order_line(&orders->via.array.ptr[i]);
        }
    }
    eda_client_destroy(&client);
    return rc;
}

/*  CancelOrder: only an APPROVED order can be cancelled (CONFLICT otherwise);
    a repeat on a CANCELLED one is answered the same. */
static int s_cmd_cancel(s_opts_t *o, int argc, char **argv)
{
    if (argc != 2)
        return s_usage_error("usage: eda cancel ORDER_ID");
    const char *order_id = argv[1];
    eda_client_t *client = s_client(o, "order-service");
    if (!client)
        return 1;
    msgpack_packer *pk = eda_client_begin(client, "CancelOrder", order_id);
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_envelope_t reply;
    int rc = s_call(o, client, "order-service", &reply);
    char status[EDA_NAME_MAX + 1] = "", id_shown[S_SHOWN];
    if (rc == 0)
        s_raw(&reply.data, "status", "-", status, sizeof status);
    if (rc == 0 && !streq(status, "CANCELLED"))
        rc = s_fail("order-service: order %s is %s, not CANCELLED", order_id, status);
    else if (rc == 0 && o->json)
        s_print_json(&reply.data);
    else if (rc == 0) /* CANCELLED */
        printf("order %s %s\n", s_esc(order_id, id_shown, sizeof id_shown), status);
    eda_client_destroy(&client);
    return rc;
}

/* --- customers and stock --------------------------------------------------- */

static int s_cmd_customer(s_opts_t *o, int argc, char **argv)
{
    const char *usage = "usage: eda customer create ID --name NAME --credit CENTS | "
                        "eda customer show ID";
    if (argc < 3)
        return s_usage_error(usage);
    const char *id = argv[2];
    const char *name = NULL;
    int64_t credit = -1;
    bool create = streq(argv[1], "create");
    if (create) {
        static struct option longopts[] = {{"name", required_argument, 0, 'n'},
                                           {"credit", required_argument, 0, 'c'},
                                           {0, 0, 0, 0}};
        int c;
        optind = 3;
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
            if (c == 'n')
                name = optarg;
            else if (c == 'c') {
                if (s_parse_i64(optarg, 0, INT64_MAX, &credit))
                    return s_usage_error("--credit must be a whole number of cents >= 0");
            } else
                return s_usage_error(usage);
        }
        if (!name || credit < 0 || optind != argc)
            return s_usage_error(usage);
    } else if (!streq(argv[1], "show") || argc != 3)
        return s_usage_error(usage);

    eda_client_t *client = s_client(o, "customer-service");
    if (!client)
        return 1;
    msgpack_packer *pk =
        eda_client_begin(client, create ? "CreateCustomer" : "GetCustomer", NULL);
    msgpack_pack_map(pk, create ? 3 : 1);
    eda_pack_kv_str(pk, "customer_id", id);
    if (create) {
        eda_pack_kv_str(pk, "name", name);
        eda_pack_kv_i64(pk, "credit_limit", credit);
    }
    eda_envelope_t reply;
    int rc = s_call(o, client, "customer-service", &reply);
    char id_shown[S_SHOWN];
    s_esc(id, id_shown, sizeof id_shown);
    if (rc == 0 && o->json)
        s_print_json(&reply.data);
    else if (rc == 0 && create)
        printf("customer %s created\n", id_shown);
    else if (rc == 0) {
        char text[S_SHOWN], m1[32], m2[32], m3[32];
        printf("%s (%s): credit limit %s, reserved %s, available %s\n", id_shown,
               s_str(&reply.data, "name", text, sizeof text),
               s_money(s_i64(&reply.data, "credit_limit"), m1, sizeof m1),
               s_money(s_i64(&reply.data, "reserved"), m2, sizeof m2),
               s_money(s_i64(&reply.data, "available"), m3, sizeof m3));
    }
    eda_client_destroy(&client);
    return rc;
}

static int s_cmd_stock(s_opts_t *o, int argc, char **argv)
{
    const char *usage = "usage: eda stock add SKU QTY | eda stock show SKU";
    int64_t qty = 0;
    bool add = argc == 4 && streq(argv[1], "add");
    if (!add && !(argc == 3 && streq(argv[1], "show")))
        return s_usage_error(usage);
    if (add && s_parse_i64(argv[3], 1, INT64_MAX, &qty))
        return s_usage_error("QTY must be a whole number >= 1");
    eda_client_t *client = s_client(o, "inventory-service");
    if (!client)
        return 1;
    msgpack_packer *pk = eda_client_begin(client, add ? "AddStock" : "GetStock", NULL);
    msgpack_pack_map(pk, add ? 2 : 1);
    eda_pack_kv_str(pk, "sku", argv[2]);
    if (add)
        eda_pack_kv_i64(pk, "qty", qty);
    eda_envelope_t reply;
    int rc = s_call(o, client, "inventory-service", &reply);
    char sku[S_SHOWN];
    s_esc(argv[2], sku, sizeof sku);
    if (rc == 0 && o->json)
        s_print_json(&reply.data);
    else if (rc == 0 && add)
        printf("%s: %" PRId64 " available\n", sku, s_i64(&reply.data, "available"));
    else if (rc == 0)
        printf("%s: %" PRId64 " available, %" PRId64 " reserved\n", sku,
               s_i64(&reply.data, "available"), s_i64(&reply.data, "reserved"));
    eda_client_destroy(&client);
    return rc;
}

/* --- ping and stats ---------------------------------------------------------- */

/*  Prints each key of a reply's data on its own line, escaped: strings as
    text, other values as JSON. */
static void s_print_fields(const msgpack_object *data)
{
    for (uint32_t i = 0; data->type == MSGPACK_OBJECT_MAP && i < data->via.map.size;
         i++) {
        const msgpack_object *k = &data->via.map.ptr[i].key;
        const msgpack_object *v = &data->via.map.ptr[i].val;
        char key[S_SHOWN] = "?", value[4096];
        if (k->type == MSGPACK_OBJECT_STR)
            eda_escape(key, sizeof key, k->via.str.ptr, k->via.str.size);
        if (v->type == MSGPACK_OBJECT_STR)
            eda_escape(value, sizeof value, v->via.str.ptr, v->via.str.size);
        else
            eda_json(v, value, sizeof value);
        printf("  %-20s %s\n", key, value);
    }
}

/*  Runs `type` (Ping or Stats) on one service or all; exit 1 if any fails. */
static int s_cmd_each(s_opts_t *o, int argc, char **argv, const char *type)
{
    if (argc > 2)
        return s_usage_error("usage: eda ping|stats [SERVICE]");
    if (argc == 2 && !eda_config_peer(&o->cfg, argv[1]))
        return s_usage_error("unknown service (order-service, customer-service, "
                             "inventory-service)");
    int failures = 0;
    for (int i = 0; i < S_SERVICES; i++) {
        const char *service = s_services[i];
        if (argc == 2 && !streq(argv[1], service))
            continue;
        eda_client_t *client = s_client(o, service);
        if (!client) {
            failures++;
            continue;
        }
        msgpack_packer *pk = eda_client_begin(client, type, NULL);
        msgpack_pack_map(pk, 0);
        eda_envelope_t reply;
        int64_t start = zclock_usecs();
        if (s_call(o, client, service, &reply))
            failures++;
        else if (o->json)
            s_print_json(&reply.data);
        else if (streq(type, "Ping")) {
            char version[S_SHOWN];
            printf("%-18s up %6" PRId64 " s  version %s  %.1f ms  %s\n", service,
                   s_i64(&reply.data, "uptime_s"),
                   s_str(&reply.data, "version", version, sizeof version),
                   (double)(zclock_usecs() - start) / 1000.0,
                   s_endpoint(o, service)->commands);
        } else {
            printf("%s\n", service);
            s_print_fields(&reply.data);
        }
        eda_client_destroy(&client);
    }
    return failures ? 1 : 0;
}

/* --- watch ----------------------------------------------------------------- */

static int s_lane(const char *service)
{
    for (int i = 0; i < S_SERVICES; i++)
        if (streq(service, s_services[i]))
            return i;
    return -1;
}

/*  Prints one event in its service's lane. */
static void s_print_lane(const eda_envelope_t *env, bool colour)
{
    static const char *colours[S_SERVICES] = {"\033[36m", "\033[35m", "\033[33m"};
    int lane = s_lane(env->source);
    time_t secs = (time_t)(env->ts / 1000000);
    struct tm tm;
    localtime_r(&secs, &tm);
    char fields[2048], type[S_SHOWN], order[S_SHOWN];
    eda_log_fields(&env->data, "order_id", fields, sizeof fields);
    printf("%02d:%02d:%02d.%03d ", tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(env->ts % 1000000 / 1000));
    for (int i = 0; i < S_SERVICES; i++)
        printf("%s", i == lane ? "●  " : "│  ");
    printf("%s%-16s%s %-20s #%-5" PRIu64 " %s\n",
           colour && lane >= 0 ? colours[lane] : "", s_esc(env->type, type, sizeof type),
           colour && lane >= 0 ? "\033[0m" : "",
           env->correlation_id[0] ? s_esc(env->correlation_id, order, sizeof order) : "-",
           env->seq, fields);
    fflush(stdout);
}

static int s_cmd_watch(s_opts_t *o, int argc, char **argv)
{
    static struct option longopts[] = {{"count", required_argument, 0, 'c'},
                                       {"heartbeats", no_argument, 0, 'b'},
                                       {0, 0, 0, 0}};
    int64_t count = 0;
    bool heartbeats = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'c') {
            if (s_parse_i64(optarg, 1, INT64_MAX, &count))
                return s_usage_error("--count must be a number >= 1");
        } else if (c == 'b')
            heartbeats = true;
        else
            return s_usage_error("usage: eda watch [--count N] [--heartbeats]");
    }
    zsock_t *sub = zsock_new(ZMQ_SUB);
    if (!sub)
        return s_fail("cannot create a socket");
    zsock_set_subscribe(sub, "");
    zsock_set_maxmsgsize(sub, EDA_MAX_MSG);
    for (int i = 0; i < S_SERVICES; i++) {
        /* One SUB, several servers: each one's key is set before its connect. */
        const eda_endpoint_t *ep = s_endpoint(o, s_services[i]);
        char why[512] = "";
        if (ep &&
            ((o->keys && eda_keys_client(o->keys, sub, s_services[i], why, sizeof why)) ||
             zsock_connect(sub, "%s", ep->events))) {
            zsock_destroy(&sub);
            return s_fail("cannot connect to %s %s", ep->events, why);
        }
    }
    bool colour = !o->json && isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    if (!o->json)
        printf("%-12s %-9s%-9s%-6s\n", "time", "order", "customer", "inventory");
    fflush(stdout);
    eda_decoder_t *decoder = eda_decoder_new();
    int64_t seen = 0;
    while (!zsys_interrupted && (count == 0 || seen < count)) {
        zmsg_t *msg = zmsg_recv(sub);
        if (!msg)
            break;
        zframe_t *body = zmsg_size(msg) == 2 ? zmsg_last(msg) : NULL;
        eda_envelope_t env;
        if (body &&
            eda_decode(decoder, zframe_data(body), zframe_size(body), &env, NULL, 0) ==
                EDA_OK &&
            (env.kind == EDA_KIND_EVENT || heartbeats)) {
            if (o->json)
                s_print_json(eda_decoder_root(decoder));
            else
                s_print_lane(&env, colour);
            seen += env.kind == EDA_KIND_EVENT;
        }
        zmsg_destroy(&msg);
    }
    eda_decoder_destroy(&decoder);
    zsock_destroy(&sub);
    return 0;
}

/* --- trace ----------------------------------------------------------------- */

typedef struct {
    char *body; /* the event's envelope bytes */
    size_t len;
    eda_envelope_t env;
    int depth;
} s_traced_t;

static int s_by_ts(const void *a, const void *b)
{
    const s_traced_t *x = a, *y = b;
    return x->env.ts < y->env.ts ? -1 : x->env.ts > y->env.ts;
}

/*  Reads the whole event log of `service` and keeps the events of
    `order_id`. Returns 0, or 1 (printed) when the service does not answer. */
static int s_collect(s_opts_t *o, const char *service, const char *order_id,
                     zlistx_t *found)
{
    eda_client_t *client = s_client(o, service);
    if (!client)
        return 1;
    eda_decoder_t *decoder = eda_decoder_new();
    uint64_t after = 0, last = 1;
    int rc = 0;
    while (rc == 0 && after < last) {
        msgpack_packer *pk = eda_client_begin(client, "ReplayEvents", NULL);
        msgpack_pack_map(pk, 2);
        eda_pack_kv_u64(pk, "after_seq", after);
        eda_pack_kv_u64(pk, "limit", 1000);
        eda_envelope_t reply;
        rc = s_call(o, client, service, &reply);
        const msgpack_object *events = rc ? NULL : eda_map_get(&reply.data, "events");
        if (rc || !events || events->type != MSGPACK_OBJECT_ARRAY ||
            eda_get_u64(&reply.data, "last_seq", &last) != 0)
            break;
        uint64_t before = after;
        for (uint32_t i = 0; i < events->via.array.size; i++) {
            const msgpack_object *bin = &events->via.array.ptr[i];
            eda_envelope_t env;
            if (bin->type != MSGPACK_OBJECT_BIN ||
                eda_decode(decoder, bin->via.bin.ptr, bin->via.bin.size, &env, NULL, 0))
                continue;
            after = env.seq;
            char data_order[EDA_NAME_MAX + 1] = "";
            eda_get_str(&env.data, "order_id", data_order, sizeof data_order);
            if (!streq(env.correlation_id, order_id) && !streq(data_order, order_id))
                continue;
            s_traced_t *t = calloc(1, sizeof *t);
            if (!t || !(t->body = malloc(bin->via.bin.size))) {
                free(t);
                rc = s_fail("out of memory");
                break;
            }
            memcpy(t->body, bin->via.bin.ptr, bin->via.bin.size);
            t->len = bin->via.bin.size;
            zlistx_add_end(found, t);
        }
        if (after == before)
            break; /* nothing readable in this page: the rest cannot be reached */
    }
    eda_decoder_destroy(&decoder);
    eda_client_destroy(&client);
    return rc;
}

static int s_cmd_trace(s_opts_t *o, int argc, char **argv)
{
    bool mermaid = argc == 3 && streq(argv[2], "--mermaid");
    if (argc != 2 && !mermaid)
        return s_usage_error("usage: eda trace ORDER_ID [--mermaid]");
    const char *order_id = argv[1];
    zlistx_t *found = zlistx_new();
    int rc = 0;
    for (int i = 0; i < S_SERVICES && rc == 0; i++)
        rc = s_collect(o, s_services[i], order_id, found);
    size_t n = zlistx_size(found);
    s_traced_t *all = calloc(n ? n : 1, sizeof *all);
    eda_decoder_t *decoder = eda_decoder_new();
    if (!all || !decoder) {
        free(all);
        eda_decoder_destroy(&decoder);
        zlistx_destroy(&found);
        return s_fail("out of memory");
    }
    size_t k = 0;
    for (s_traced_t *t = zlistx_first(found); t; t = zlistx_next(found)) {
        all[k] = *t;
        eda_decode(decoder, all[k].body, all[k].len, &all[k].env, NULL, 0);
        all[k].env.data.type = MSGPACK_OBJECT_NIL; /* re-read below, zone is reused */
        free(t);
        k++;
    }
    qsort(all, n, sizeof *all, s_by_ts);
    /* Depth in the causal chain: one more than the event that caused it. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (streq(all[i].env.causation_id, all[j].env.id))
                all[i].depth = all[j].depth + 1;
    if (rc == 0 && n == 0)
        rc = s_fail("no events for order %s", order_id);
    if (rc == 0 && mermaid) {
        printf("sequenceDiagram\n    participant client\n");
        for (int i = 0; i < S_SERVICES; i++)
            printf("    participant %s\n", s_services[i]);
        for (size_t i = 0; i < n; i++) {
            eda_envelope_t *e = &all[i].env;
            char source[S_SHOWN], type[S_SHOWN], cause[S_SHOWN], to[S_SHOWN];
            s_esc(e->source, source, sizeof source);
            s_esc(e->type, type, sizeof type);
            if (all[i].depth == 0) {
                size_t len = strlen(e->causation_id);
                eda_escape(cause, sizeof cause, e->causation_id, len < 8 ? len : 8);
                printf("    client->>%s: command %s\n", source, cause);
            }
            bool reacted = false;
            for (size_t j = i + 1; j < n; j++)
                if (streq(all[j].env.causation_id, e->id)) {
                    printf("    %s-)%s: %s #%" PRIu64 "\n", source,
                           s_esc(all[j].env.source, to, sizeof to), type, e->seq);
                    reacted = true;
                    break;
                }
            if (!reacted)
                printf("    Note over %s: %s #%" PRIu64 "\n", source, type, e->seq);
        }
    } else if (rc == 0) {
        char id_shown[S_SHOWN];
        if (!o->json)
            printf("order %s: %zu events\n", s_esc(order_id, id_shown, sizeof id_shown),
                   n);
        for (size_t i = 0; i < n; i++) {
            eda_envelope_t env;
            eda_decode(decoder, all[i].body, all[i].len, &env, NULL, 0);
            if (o->json) {
                s_print_json(eda_decoder_root(decoder));
                continue;
            }
            char fields[2048], source[S_SHOWN], type[S_SHOWN];
            eda_log_fields(&env.data, "order_id", fields, sizeof fields);
            time_t secs = (time_t)(env.ts / 1000000);
            struct tm tm;
            localtime_r(&secs, &tm);
            printf("  %02d:%02d:%02d.%03d %*s%s %-17s %-15s #%-4" PRIu64 " %s\n",
                   tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(env.ts % 1000000 / 1000),
                   all[i].depth * 2, "", all[i].depth ? "└─" : "●",
                   s_esc(env.source, source, sizeof source),
                   s_esc(env.type, type, sizeof type), env.seq, fields);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(all[i].body);
    free(all);
    eda_decoder_destroy(&decoder);
    zlistx_destroy(&found);
    return rc;
}

/* --- main ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    int (*fn)(s_opts_t *o, int argc, char **argv);
} s_command_t;

static int s_cmd_ping(s_opts_t *o, int argc, char **argv)
{
    return s_cmd_each(o, argc, argv, "Ping");
}

static int s_cmd_stats(s_opts_t *o, int argc, char **argv)
{
    return s_cmd_each(o, argc, argv, "Stats");
}

static int s_cmd_bench(s_opts_t *o, int argc, char **argv)
{
    return bench_main(&o->cfg, o->keys, o->timeout_ms, o->json, argc, argv);
}

static int s_cmd_keys(s_opts_t *o, int argc, char **argv)
{
    (void)o;
    if (argc != 3 || !streq(argv[1], "init"))
        return s_usage_error("usage: eda keys init DIR");
    char why[1200];
    if (eda_keys_init(argv[2], why, sizeof why))
        return s_fail("%s", why);
    printf("keys for order-service, customer-service, inventory-service and client "
           "in %s\n"
           "give each host its own NAME.cert_secret and every NAME.cert\n",
           argv[2]);
    return 0;
}

static const s_command_t s_commands[] = {{"place-order", s_cmd_place_order},
                                         {"order", s_cmd_order},
                                         {"orders", s_cmd_orders},
                                         {"cancel", s_cmd_cancel},
                                         {"customer", s_cmd_customer},
                                         {"stock", s_cmd_stock},
                                         {"ping", s_cmd_ping},
                                         {"stats", s_cmd_stats},
                                         {"watch", s_cmd_watch},
                                         {"trace", s_cmd_trace},
                                         {"bench", s_cmd_bench},
                                         {"keys", s_cmd_keys},
                                         {NULL, NULL}};

int main(int argc, char **argv)
{
    s_opts_t o = {.timeout_ms = 2000};
    char why[512];
    eda_config_defaults(&o.cfg, "");
    /* Global options come before the command. */
    int i = 1;
    const char *file = getenv("EDA_CONFIG");
    for (int j = 1; j < argc && argv[j][0] == '-'; j++) {
        if (streq(argv[j], "--config") && j + 1 < argc)
            file = argv[j + 1];
        if (!streq(argv[j], "--json") && !streq(argv[j], "--help") &&
            !streq(argv[j], "--version"))
            j++; /* skip the option's value */
    }
    if (file && *file && eda_config_load_file(&o.cfg, file, why, sizeof why))
        return s_fail("%s", why);
    if (eda_config_load_env(&o.cfg, why, sizeof why))
        return s_fail("%s", why);
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *arg = argv[i];
        if (streq(arg, "--help") || streq(arg, "-h")) {
            printf("%s", s_usage);
            return 0;
        }
        if (streq(arg, "--version")) {
            printf("eda %s\n", EDA_VERSION);
            return 0;
        }
        if (streq(arg, "--json")) {
            o.json = true;
            continue;
        }
        if (i + 1 >= argc)
            return s_usage_error("option needs a value");
        const char *value = argv[++i];
        int64_t ms;
        if (streq(arg, "--config"))
            continue;
        if (streq(arg, "--timeout")) {
            if (s_parse_i64(value, 1, 3600000, &ms))
                return s_usage_error("--timeout must be milliseconds from 1 to 3600000");
            o.timeout_ms = (int)ms;
        } else if (streq(arg, "--peer") || streq(arg, "--keys")) {
            if (eda_config_set(&o.cfg, arg + 2, value, why, sizeof why))
                return s_usage_error(why);
        } else {
            snprintf(why, sizeof why, "unknown option '%s'", arg);
            return s_usage_error(why);
        }
    }
    if (i >= argc)
        return s_usage_error("no command");
    zsys_init();
    zsys_set_logstream(NULL);
    /* `eda COMMAND --help` anywhere after the command: the usage, exit 0. */
    for (int j = i + 1; j < argc; j++)
        if (streq(argv[j], "--help") || streq(argv[j], "-h")) {
            printf("%s", s_usage);
            return 0;
        }
    char keys_why[1200];
    if (o.cfg.keys[0] && !streq(argv[i], "keys") &&
        !(o.keys = eda_keys_new(o.cfg.keys, "client", keys_why, sizeof keys_why)))
        return s_fail("%s", keys_why);
    for (const s_command_t *c = s_commands; c->name; c++)
        if (streq(c->name, argv[i])) {
            int rc = c->fn(&o, argc - i, argv + i);
            eda_keys_destroy(&o.keys);
            return rc;
        }
    eda_keys_destroy(&o.keys);
    snprintf(why, sizeof why, "unknown command '%s'", argv[i]);
    return s_usage_error(why);
}
