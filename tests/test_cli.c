/*  test_cli: the `eda` client as a user runs it. The real binary against the
    real services (tu_system_t, on ipc:// endpoints in a temp folder, passed
    with --peer), its stdout, stderr and exit status captured: per-command
    help, global options after the command, names the user slips on, the exit
    codes of the contract, paging through orders that keep coming, ping with
    everything down, and --json that a JSON parser reads.
*/
#include "testutil.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>

static tu_system_t sys;
static pid_t s_stopped; /* a service this test SIGSTOPped, 0 when none */
static tu_eda_t s_run;

static void s_setup(void)
{
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
}

static void s_teardown(void)
{
    if (s_stopped)
        kill(s_stopped, SIGCONT);
    s_stopped = 0;
    tu_system_fini(&sys);
}

TestSuite(cli, .init = s_setup, .fini = s_teardown, .timeout = 180);

/*  Runs eda with argv[] (NULL-ended, without the program), then the
    deployment's --peer options (global options after the command): s_run. */
static void s_eda_argv(char **args, bool peers)
{
    cr_assert_eq(tu_eda(&sys, &s_run, args, peers), 0, "%s", sys.why);
}

/*  Runs eda with its arguments, then the deployment's --peer options:
    S_EDA("trace", id, NULL). */
#define S_EDA(...) cr_assert_eq(tu_eda_run(&sys, &s_run, __VA_ARGS__), 0, "%s", sys.why)

/*  How many lines of s_run.out hold `needle`. */
static int s_lines_with(const char *needle)
{
    int count = 0;
    for (const char *line = s_run.out; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        count += strstr(copy, needle) != NULL;
        free(copy);
        line += len + (end ? 1 : 0);
    }
    return count;
}

#define S_EXPECT(code)                                                                   \
    cr_assert_eq(s_run.status, (code), "exit %d, not %d\nstdout:\n%s\nstderr:\n%s",      \
                 s_run.status, (code), s_run.out, s_run.err)

Test(cli, each_command_has_its_own_help)
{
    static const char *commands[] = {"place-order", "order", "orders", "cancel",
                                     "customer",    "stock", "ping",   "stats",
                                     "watch",       "trace", "bench",  "keys"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char usage[64];
        snprintf(usage, sizeof usage, "usage: eda %s", commands[i]);
        S_EDA(commands[i], "--help", NULL);
        S_EXPECT(0);
        cr_assert(strstr(s_run.out, usage), "%s --help:\n%s", commands[i], s_run.out);
        cr_assert(strstr(s_run.out, "exit codes"), "%s", s_run.out);
        cr_assert_eq(s_run.err_len, 0, "%s", s_run.err);
    }
    char *global[] = {"--help", NULL};
    s_eda_argv(global, false);
    S_EXPECT(0);
    cr_assert(strstr(s_run.out, "place-order") && strstr(s_run.out, "--peer"), "%s",
              s_run.out);
}

Test(cli, usage_errors_exit_2_naming_what_is_valid)
{
    char *bad_peer[] = {"--peer", "orders=ipc:///nowhere/a,ipc:///nowhere/b", "ping",
                        NULL};
    s_eda_argv(bad_peer, false);
    S_EXPECT(2);
    cr_assert(strstr(s_run.err, "order-service, customer-service, inventory-service"),
              "%s", s_run.err);
    cr_assert_eq(s_run.out_len, 0, "nothing on stdout: %s", s_run.out);

    S_EDA("ping", "orderz", NULL);
    S_EXPECT(2);
    cr_assert(strstr(s_run.err, "order-service, customer-service"), "%s", s_run.err);

    S_EDA("orders", "--status", "shipped", NULL);
    S_EXPECT(2);
    cr_assert(strstr(s_run.err, "APPROVED"), "%s", s_run.err);

    S_EDA("orders", "--bogus", NULL);
    S_EXPECT(2);
    cr_assert(strstr(s_run.err, "--status"), "%s", s_run.err);

    S_EDA("place-order", "--customer", "ada", "--item", "pen:1:1", "--saga", "sideways",
          NULL);
    S_EXPECT(2);
    cr_assert(strstr(s_run.err, "choreography or orchestration"), "%s", s_run.err);
    cr_assert_eq(strchr(s_run.err, '\n'), s_run.err + s_run.err_len - 1, "one line: %s",
                 s_run.err);
}

Test(cli, global_options_work_after_the_command_and_case_slips_are_taken)
{
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "ada", 100000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "pen", 10), 0, "%s", sys.why);
    tu_item_t items[] = {{"pen", 1, 100}};
    char approved[EDA_NAME_MAX + 1], rejected[EDA_NAME_MAX + 1];
    tu_order_t order;
    cr_assert_eq(tu_place_order(&sys, "ada", items, 1, NULL, approved, NULL, NULL), 0);
    cr_assert_eq(tu_place_order(&sys, "nobody", items, 1, NULL, rejected, NULL, NULL), 0);
    cr_assert_eq(tu_wait_order(&sys, approved, TU_SETTLE_MS, &order), 0, "%s", sys.why);
    cr_assert_eq(tu_wait_order(&sys, rejected, TU_SETTLE_MS, &order), 0, "%s", sys.why);

    /* --timeout and every --peer after the command. */
    S_EDA("ping", "--timeout", "5000", NULL);
    S_EXPECT(0);
    cr_assert_eq(s_lines_with(" up "), 3, "%s", s_run.out);

    S_EDA("orders", "--status", "approved", "--timeout", "5000", NULL);
    S_EXPECT(0);
    cr_assert(strstr(s_run.out, approved), "%s", s_run.out);
    cr_assert_null(strstr(s_run.out, rejected), "%s", s_run.out);

    S_EDA("ping", "Order", NULL); /* a unique start of a name, any case */
    S_EXPECT(0);
    cr_assert_eq(s_lines_with("order-service"), 1, "%s", s_run.out);

    S_EDA("place-order", "--customer", "ada", "--item", "pen:1:100", "--saga",
          "Orchestration", "--wait", "--timeout", "10000", "--json", NULL);
    S_EXPECT(0);
    json_error_t error;
    json_t *placed = json_loads(s_run.out, 0, &error);
    cr_assert_not_null(placed, "%s: %s", error.text, s_run.out);
    cr_assert_str_eq(json_string_value(json_object_get(placed, "saga")), "orchestration");
    json_decref(placed);
}

/*  Places orders one after another until told to stop: the other client
    while `orders --all` pages. */
typedef struct {
    const char *endpoint;
    volatile bool stop;
    int placed;
} s_placer_t;

static void *s_place_orders(void *arg)
{
    s_placer_t *placer = arg;
    eda_client_t *client = eda_client_new(placer->endpoint, "test-placer");
    while (client && !placer->stop) {
        msgpack_packer *pk = eda_client_begin(client, "PlaceOrder", NULL);
        tu_item_t items[] = {{"pen", 1, 1}};
        tu_pack_place_order(pk, "ada", items, 1, NULL, NULL);
        eda_envelope_t reply;
        char why[256];
        if (eda_client_call(client, TU_CALL_TIMEOUT_MS, &reply, why, sizeof why) == 0 &&
            reply.ok == 1)
            placer->placed++;
    }
    eda_client_destroy(&client);
    return NULL;
}

Test(cli, orders_all_pages_through_every_order_once_while_orders_come)
{
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "ada", 1000000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "pen", 100000), 0, "%s", sys.why);
    enum { BEFORE = 40 };
    char ids[BEFORE][EDA_NAME_MAX + 1];
    tu_item_t items[] = {{"pen", 1, 1}};
    for (int i = 0; i < BEFORE; i++)
        cr_assert_eq(tu_place_order(&sys, "ada", items, 1, NULL, ids[i], NULL, NULL), 0,
                     "%s", sys.why);

    /* The default shows 100 at most; --limit fewer. */
    S_EDA("orders", "--limit", "7", "--page", "3", NULL);
    S_EXPECT(0);
    cr_assert_eq(s_lines_with("o-"), 7, "%s", s_run.out);

    s_placer_t placer = {.endpoint = sys.commands[TU_ORDER]};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_place_orders, &placer), 0);
    S_EDA("orders", "--all", "--page", "3", "--json", "--timeout", "10000", NULL);
    placer.stop = true;
    pthread_join(thread, NULL);
    S_EXPECT(0);
    cr_assert_gt(placer.placed, 0, "orders were placed meanwhile");

    json_error_t error;
    json_t *list = json_loads(s_run.out, 0, &error);
    cr_assert(json_is_array(list), "%s: %.300s", error.text, s_run.out);
    size_t n = json_array_size(list);
    cr_assert_geq(n, BEFORE);
    zhashx_t *seen = zhashx_new();
    for (size_t i = 0; i < n; i++) {
        const char *id =
            json_string_value(json_object_get(json_array_get(list, i), "order_id"));
        cr_assert_not_null(id);
        cr_assert_eq(zhashx_insert(seen, id, (void *)1), 0, "order %s came twice", id);
    }
    for (int i = 0; i < BEFORE; i++)
        cr_assert_not_null(zhashx_lookup(seen, ids[i]), "order %s is missing", ids[i]);
    zhashx_destroy(&seen);
    json_decref(list);
}

Test(cli, place_order_wait_exits_by_the_outcome)
{
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "ada", 100000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "pen", 10), 0, "%s", sys.why);

    S_EDA("place-order", "--customer", "ada", "--item", "pen:1:100", "--wait",
          "--timeout", "10000", NULL);
    S_EXPECT(0);
    cr_assert(strstr(s_run.out, "APPROVED"), "%s", s_run.out);

    S_EDA("place-order", "--customer", "nobody", "--item", "pen:1:100", "--wait",
          "--timeout", "10000", NULL);
    S_EXPECT(3);
    cr_assert(strstr(s_run.out, "REJECTED") && strstr(s_run.out, "UNKNOWN_CUSTOMER"),
              "%s", s_run.out);

    /* customer-service frozen: the order can only stay PENDING. */
    s_stopped = sys.pid[TU_CUSTOMER];
    cr_assert_eq(kill(s_stopped, SIGSTOP), 0);
    S_EDA("place-order", "--customer", "ada", "--item", "pen:1:100", "--wait",
          "--timeout", "1000", NULL);
    S_EXPECT(4);
    cr_assert(strstr(s_run.out, "PENDING"), "%s", s_run.out);
    cr_assert(strstr(s_run.err, "customer-service"), "says what it waits for: %s",
              s_run.err);
    kill(s_stopped, SIGCONT);
    s_stopped = 0;
}

Test(cli, ping_with_everything_down_takes_one_timeout)
{
    /* Nothing started: every endpoint is a path nobody listens on. */
    S_EDA("ping", "--timeout", "1000", NULL);
    S_EXPECT(1);
    cr_assert_eq(s_lines_with("DOWN"), 3, "%s", s_run.out);
    cr_assert_lt(s_run.ms, 2000, "took %" PRId64 " ms", s_run.ms);

    S_EDA("ping", "--timeout", "1000", "--json", NULL);
    S_EXPECT(1);
    cr_assert_eq(s_lines_with("\"up\":false"), 3, "%s", s_run.out);
}

Test(cli, json_output_parses)
{
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "ada", 100000), 0, "%s", sys.why);
    S_EDA("stats", "--json", NULL);
    S_EXPECT(0);
    int lines = 0;
    for (char *line = strtok(s_run.out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_error_t error;
        json_t *stats = json_loads(line, 0, &error);
        cr_assert(json_is_object(stats), "%s: %s", error.text, line);
        cr_assert(json_is_integer(json_object_get(stats, "last_seq")), "%s", line);
        json_decref(stats);
    }
    cr_assert_eq(lines, 3);

    S_EDA("customer", "show", "ada", "--json", NULL);
    S_EXPECT(0);
    json_error_t error;
    json_t *customer = json_loads(s_run.out, 0, &error);
    cr_assert_not_null(customer, "%s: %s", error.text, s_run.out);
    cr_assert_eq(json_integer_value(json_object_get(customer, "credit_limit")), 100000);
    json_decref(customer);
}
