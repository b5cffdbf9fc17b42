/*  test_e2e_trace: `eda trace ORDER_ID` as a user runs it. The real eda
    binary against the real services (tu_system_t), its stdout and exit
    status captured (tu_eda): an approved
    choreographed order traced as text, JSON and Mermaid in causal order; an
    orchestrated one with the orchestrator's commands inferred; and an order
    whose customer-service is stopped (SIGSTOP), traced with what there is,
    the missing service named, exit 1 and what the saga waits for.
*/
#include "testutil.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>
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

TestSuite(trace, .init = s_setup, .fini = s_teardown, .timeout = 180);

/*  Runs eda with its arguments, then the deployment's --peer options:
    S_EDA("trace", id, NULL). */
#define S_EDA(...) cr_assert_eq(tu_eda_run(&sys, &s_run, __VA_ARGS__), 0, "%s", sys.why)

#define S_EXPECT(code)                                                                   \
    cr_assert_eq(s_run.status, (code), "exit %d, not %d\nstdout:\n%s\nstderr:\n%s",      \
                 s_run.status, (code), s_run.out, s_run.err)

/*  A customer with credit and a SKU in stock, for orders that pass. */
static void s_shop(void)
{
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "ada", 100000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 100), 0, "%s", sys.why);
}

/*  Places an order with `eda place-order --saga SAGA` (--wait when `wait`)
    and copies its id into order_id[EDA_NAME_MAX + 1]. */
static void s_place(const char *saga, bool wait, char *order_id)
{
    if (wait)
        S_EDA("place-order", "--customer", "ada", "--item", "apple:2:150", "--saga", saga,
              "--wait", "--json", NULL);
    else
        S_EDA("place-order", "--customer", "ada", "--item", "apple:2:150", "--saga", saga,
              "--json", NULL);
    S_EXPECT(0);
    json_error_t error;
    json_t *order = json_loads(s_run.out, 0, &error);
    cr_assert_not_null(order, "%s: %s", error.text, s_run.out);
    const char *id = json_string_value(json_object_get(order, "order_id"));
    cr_assert_not_null(id, "%s", s_run.out);
    snprintf(order_id, EDA_NAME_MAX + 1, "%s", id);
    if (wait)
        cr_assert_str_eq(json_string_value(json_object_get(order, "status")), "APPROVED",
                         "%s", s_run.out);
    json_decref(order);
}

/*  The lines of s_run.out that begin with `prefix`, their next word each,
    joined with spaces into out[size]: "OrderCreated CreditReserved ...". */
static const char *s_words_after(const char *prefix, char *out, size_t size)
{
    out[0] = '\0';
    size_t plen = strlen(prefix);
    for (const char *line = s_run.out; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > plen && strncmp(line, prefix, plen) == 0) {
            const char *word = line + plen;
            while (*word == ' ')
                word++;
            size_t wlen = strcspn(word, " \n");
            size_t used = strlen(out);
            snprintf(out + used, size - used, "%s%.*s", used ? " " : "", (int)wlen, word);
        }
        line += len + (end ? 1 : 0);
    }
    return out;
}

/*  Every step of a text trace, commands and events, in the order shown:
    the word after "command" or "event" on each line that begins a step. */
static const char *s_steps(char *out, size_t size)
{
    char commands[1024];
    out[0] = '\0';
    for (const char *line = s_run.out; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char word[128];
        if ((strncmp(line, "  command ", 10) == 0 || strncmp(line, "  event ", 8) == 0) &&
            sscanf(line, "%1023s %127s", commands, word) == 2) {
            size_t used = strlen(out);
            snprintf(out + used, size - used, "%s%s", used ? " " : "", word);
        }
        line += len + (end ? 1 : 0);
    }
    return out;
}

/*  The last non-empty line of s_run.out into out[size]. */
static const char *s_last_line(char *out, size_t size)
{
    size_t len = s_run.out_len;
    while (len > 0 && s_run.out[len - 1] == '\n')
        len--;
    size_t begin = len;
    while (begin > 0 && s_run.out[begin - 1] != '\n')
        begin--;
    snprintf(out, size, "%.*s", (int)(len - begin), s_run.out + begin);
    return out;
}

/*  The types of the chain's entries of `kind` in a trace --json document,
    joined with spaces. */
static const char *s_chain_types(json_t *doc, const char *kind, char *out, size_t size)
{
    out[0] = '\0';
    size_t i;
    json_t *step;
    json_array_foreach(json_object_get(doc, "chain"), i, step)
    {
        if (!streq(json_string_value(json_object_get(step, "kind")), kind))
            continue;
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", used ? " " : "",
                 json_string_value(json_object_get(step, "type")));
    }
    return out;
}

Test(trace, approved_choreography_in_causal_order_as_text_json_and_mermaid)
{
    s_shop();
    char order_id[EDA_NAME_MAX + 1], words[1024];
    s_place("choreography", true, order_id);

    S_EDA("trace", order_id, NULL);
    S_EXPECT(0);
    cr_assert_str_eq(s_words_after("  event", words, sizeof words),
                     "OrderCreated CreditReserved StockReserved OrderApproved", "%s",
                     s_run.out);
    cr_assert_str_eq(s_words_after("  command", words, sizeof words), "PlaceOrder", "%s",
                     s_run.out);
    cr_assert_null(strstr(s_run.out, "missing"), "%s", s_run.out);
    cr_assert_null(strstr(s_run.out, "waiting for"), "%s", s_run.out);

    S_EDA("trace", order_id, "--json", NULL);
    S_EXPECT(0);
    json_error_t error;
    json_t *doc = json_loads(s_run.out, 0, &error);
    cr_assert(json_is_object(doc), "%s: %s", error.text, s_run.out);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "order_id")), order_id);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "status")), "APPROVED");
    cr_assert_str_eq(s_chain_types(doc, "event", words, sizeof words),
                     "OrderCreated CreditReserved StockReserved OrderApproved", "%s",
                     s_run.out);
    cr_assert(json_is_array(json_object_get(doc, "missing")), "%s", s_run.out);
    cr_assert_eq(json_array_size(json_object_get(doc, "missing")), 0, "%s", s_run.out);
    /* Each event is its envelope as logged, linked by causation_id. */
    json_t *chain = json_object_get(doc, "chain");
    size_t i;
    json_t *step, *prev = NULL;
    json_array_foreach(chain, i, step)
    {
        if (!streq(json_string_value(json_object_get(step, "kind")), "event"))
            continue;
        cr_assert_str_eq(json_string_value(json_object_get(step, "correlation_id")),
                         order_id);
        if (prev)
            cr_assert_str_eq(json_string_value(json_object_get(step, "causation_id")),
                             json_string_value(json_object_get(prev, "id")), "%s",
                             s_run.out);
        prev = step;
    }
    json_decref(doc);

    S_EDA("trace", order_id, "--mermaid", NULL);
    S_EXPECT(0);
    cr_assert(strncmp(s_run.out, "sequenceDiagram\n", 16) == 0, "%s", s_run.out);
    cr_assert_not_null(strstr(s_run.out, "participant customer as customer-service\n"));
    cr_assert_not_null(strstr(s_run.out, "participant inventory as inventory-service\n"));
    cr_assert_not_null(strstr(s_run.out, "    client->>order: PlaceOrder\n"), "%s",
                       s_run.out);
    cr_assert_not_null(strstr(s_run.out, "    order-->>customer: OrderCreated"), "%s",
                       s_run.out);
    cr_assert_not_null(strstr(s_run.out, "    order-->>inventory: OrderCreated"), "%s",
                       s_run.out);
    cr_assert_not_null(strstr(s_run.out, "    customer-->>inventory: CreditReserved"),
                       "%s", s_run.out);
    cr_assert_not_null(strstr(s_run.out, "    inventory-->>order: StockReserved"), "%s",
                       s_run.out);
    cr_assert_not_null(strstr(s_run.out, "    Note over order: OrderApproved"), "%s",
                       s_run.out);
}

Test(trace, orchestrated_order_shows_the_inferred_commands)
{
    s_shop();
    char order_id[EDA_NAME_MAX + 1], words[1024];
    s_place("orchestration", true, order_id);
    S_EDA("trace", order_id, NULL);
    S_EXPECT(0);
    cr_assert_str_eq(s_words_after("  event", words, sizeof words),
                     "OrderCreated CreditReserved StockReserved OrderApproved", "%s",
                     s_run.out);
    cr_assert_str_eq(s_words_after("  command", words, sizeof words),
                     "PlaceOrder ReserveCredit ReserveStock", "%s", s_run.out);
    cr_assert_not_null(strstr(s_run.out,
                              "ReserveCredit    order-service -> customer-service "
                              "(inferred)"),
                       "%s", s_run.out);
    /* Each step in causal order: a command just before its outcome. */
    cr_assert_str_eq(s_steps(words, sizeof words),
                     "PlaceOrder OrderCreated ReserveCredit CreditReserved ReserveStock "
                     "StockReserved OrderApproved",
                     "%s", s_run.out);

    S_EDA("trace", order_id, "--mermaid", NULL);
    S_EXPECT(0);
    cr_assert_not_null(strstr(s_run.out, "    order->>customer: ReserveCredit\n"), "%s",
                       s_run.out);
    cr_assert_not_null(strstr(s_run.out, "    order->>inventory: ReserveStock\n"), "%s",
                       s_run.out);
    /* Nobody reacts to an orchestrated event: a note, no dashed arrow. */
    cr_assert_not_null(strstr(s_run.out, "    Note over customer: CreditReserved"), "%s",
                       s_run.out);
    cr_assert_null(strstr(s_run.out, "-->>"), "%s", s_run.out);

    S_EDA("trace", order_id, "--json", NULL);
    S_EXPECT(0);
    json_error_t error;
    json_t *doc = json_loads(s_run.out, 0, &error);
    cr_assert(json_is_object(doc), "%s: %s", error.text, s_run.out);
    cr_assert_str_eq(s_chain_types(doc, "command", words, sizeof words),
                     "PlaceOrder ReserveCredit ReserveStock", "%s", s_run.out);
    json_decref(doc);
}

Test(trace, a_service_unreachable_is_named_and_the_wait_told)
{
    s_shop();
    cr_assert_eq(kill(sys.pid[TU_CUSTOMER], SIGSTOP), 0);
    s_stopped = sys.pid[TU_CUSTOMER];
    char order_id[EDA_NAME_MAX + 1], words[1024], last[512];
    s_place("choreography", false, order_id);

    S_EDA("trace", order_id, "--timeout", "1000", NULL);
    S_EXPECT(1);
    /* What there is: OrderCreated is published before PlaceOrder's reply. */
    cr_assert_str_eq(s_words_after("  event", words, sizeof words), "OrderCreated", "%s",
                     s_run.out);
    cr_assert_not_null(strstr(s_run.out, "order-service"), "%s", s_run.out);
    cr_assert_not_null(strstr(s_run.out, "PENDING"), "%s", s_run.out);
    cr_assert_not_null(strstr(s_run.out, "missing: the events of customer-service: "
                                         "unreachable"),
                       "%s", s_run.out);
    cr_assert_null(strstr(s_run.out, "missing: the events of inventory-service"), "%s",
                   s_run.out);
    cr_assert_str_eq(
        s_last_line(last, sizeof last),
        "waiting for CreditReserved or CreditRejected from customer-service: "
        "unreachable",
        "%s", s_run.out);
    cr_assert_lt(s_run.ms, 5000, "took %" PRId64 " ms", s_run.ms);

    S_EDA("trace", order_id, "--timeout", "1000", "--json", NULL);
    S_EXPECT(1);
    json_error_t error;
    json_t *doc = json_loads(s_run.out, 0, &error);
    cr_assert(json_is_object(doc), "%s: %s", error.text, s_run.out);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "status")), "PENDING");
    json_t *missing = json_object_get(doc, "missing");
    cr_assert_eq(json_array_size(missing), 1, "%s", s_run.out);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(missing, 0), "service")),
        "customer-service");
    cr_assert_not_null(strstr(json_string_value(json_object_get(doc, "waiting")),
                              "customer-service: unreachable"),
                       "%s", s_run.out);
    json_decref(doc);
}

/*  Runs `eda trace ORDER_ID` until its steps are `want` or `timeout_ms`
    passes (the compensations come after CancelOrder's reply). */
static void s_trace_until(const char *order_id, const char *want, int timeout_ms)
{
    char steps[1024] = "";
    int64_t deadline = zclock_mono() + timeout_ms;
    do {
        S_EDA("trace", order_id, NULL);
        if (s_run.status == 0 && streq(s_steps(steps, sizeof steps), want))
            return;
        zclock_sleep(50); /* the poll's period, not a wait for readiness */
    } while (zclock_mono() < deadline);
    cr_assert_fail("steps: %s\nnot: %s\nstdout:\n%s\nstderr:\n%s", steps, want, s_run.out,
                   s_run.err);
}

Test(trace, cancelled_orders_show_the_compensations_in_causal_order)
{
    s_shop();
    char chor[EDA_NAME_MAX + 1], orch[EDA_NAME_MAX + 1];
    s_place("choreography", true, chor);
    S_EDA("cancel", chor, NULL);
    S_EXPECT(0);
    /* Both releases answer OrderCancelled: by (source, seq) when tied. */
    s_trace_until(chor,
                  "PlaceOrder OrderCreated CreditReserved StockReserved OrderApproved "
                  "CancelOrder OrderCancelled CreditReleased StockReleased",
                  TU_SETTLE_MS);
    S_EDA("trace", chor, "--mermaid", NULL);
    S_EXPECT(0);
    cr_assert_not_null(strstr(s_run.out, "    client->>order: CancelOrder\n"), "%s",
                       s_run.out);
    cr_assert_not_null(strstr(s_run.out, "    order-->>customer: OrderCancelled"), "%s",
                       s_run.out);
    cr_assert_not_null(strstr(s_run.out, "    order-->>inventory: OrderCancelled"), "%s",
                       s_run.out);
    cr_assert_not_null(strstr(s_run.out, "    Note over customer: CreditReleased"), "%s",
                       s_run.out);

    s_place("orchestration", true, orch);
    S_EDA("cancel", orch, NULL);
    S_EXPECT(0);
    /* The orchestrator releases stock, then credit (section 9.1). */
    s_trace_until(orch,
                  "PlaceOrder OrderCreated ReserveCredit CreditReserved ReserveStock "
                  "StockReserved OrderApproved CancelOrder OrderCancelled ReleaseStock "
                  "StockReleased ReleaseCredit CreditReleased",
                  TU_SETTLE_MS);
}
