/*  test_e2e_orchestration: what is particular to orchestrated sagas, on the
    real binaries (DESIGN section 3, "Orchestration"): each order runs the
    pattern it names; a participant that is down is waited for with retries
    and then given up on at the saga deadline, with its compensations sent
    until acknowledged; a killed order-service resumes its sagas; late and
    duplicate replies change nothing; CancelOrder in both patterns; and both
    patterns side by side while each service in turn is killed with kill -9.
    (ctest already runs test_e2e_saga and test_e2e_recovery orchestrated.)
*/
#include "testutil.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#define S_POLL_MS 20 /* the poll interval of an outcome wait */

static tu_system_t sys;

static void s_setup(void)
{
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
}

static void s_teardown(void)
{
    for (int i = 0; i < TU_NSERVICES; i++)
        if (sys.pid[i]) /* a test that failed while a service was paused */
            kill(sys.pid[i], SIGCONT);
    tu_system_fini(&sys);
}

TestSuite(e2e_orchestration, .init = s_setup, .fini = s_teardown, .timeout = 240);

/* --- helpers ------------------------------------------------------------------ */

/*  order-service orchestrates orders that name no saga, with these options
    (NULL: the default). */
static void s_orchestrate(const char *command_timeout, const char *saga_deadline)
{
    cr_assert_eq(tu_system_setenv(&sys, TU_ORDER, "EDA_SAGA", "orchestration"), 0, "%s",
                 sys.why);
    if (command_timeout)
        cr_assert_eq(
            tu_system_setenv(&sys, TU_ORDER, "EDA_COMMAND_TIMEOUT", command_timeout), 0,
            "%s", sys.why);
    if (saga_deadline)
        cr_assert_eq(tu_system_setenv(&sys, TU_ORDER, "EDA_SAGA_DEADLINE", saga_deadline),
                     0, "%s", sys.why);
}

/*  PlaceOrder naming `saga` (NULL: order-service's --saga), which must be
    accepted PENDING. */
static void s_place(const char *customer_id, const tu_item_t *items, size_t n,
                    const char *saga, char *order_id)
{
    tu_pack_place_order(tu_begin(&sys, TU_ORDER, "PlaceOrder"), customer_id, items, n,
                        NULL, saga);
    eda_envelope_t reply;
    cr_assert_eq(tu_call(&sys, TU_ORDER, &reply), 0, "%s", sys.why);
    char code[32], status[16] = "";
    cr_assert_eq(reply.ok, 1, "PlaceOrder refused: %s",
                 tu_error_code(&reply, code, sizeof code));
    cr_assert_eq(eda_get_str(&reply.data, "order_id", order_id, EDA_NAME_MAX + 1), 0);
    cr_assert_eq(eda_get_str(&reply.data, "status", status, sizeof status), 0);
    cr_assert_str_eq(status, "PENDING");
}

/*  Queues a PlaceOrder with an explicit saga, not waiting for its reply. */
static void s_send(const char *customer_id, const tu_item_t *items, size_t n,
                   const char *request_id, const char *saga)
{
    tu_pack_place_order(tu_begin(&sys, TU_ORDER, "PlaceOrder"), customer_id, items, n,
                        request_id, saga);
    cr_assert_eq(eda_client_send(sys.client[TU_ORDER]), 0, "PlaceOrder %s not queued",
                 request_id);
}

/*  PlaceOrder with a request_id and an explicit saga, asked again on a
    timeout (order-service may be restarting) for up to `timeout_ms`. */
static void s_place_retry(const char *customer_id, const tu_item_t *items, size_t n,
                          const char *request_id, const char *saga, int timeout_ms,
                          char *order_id)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        tu_pack_place_order(tu_begin(&sys, TU_ORDER, "PlaceOrder"), customer_id, items, n,
                            request_id, saga);
        eda_envelope_t reply;
        if (tu_call_ms(&sys, TU_ORDER, 1000, &reply))
            continue; /* restarting: the request_id makes the retry safe */
        char code[32];
        cr_assert_eq(reply.ok, 1, "PlaceOrder %s refused: %s", request_id,
                     tu_error_code(&reply, code, sizeof code));
        cr_assert_eq(eda_get_str(&reply.data, "order_id", order_id, EDA_NAME_MAX + 1), 0);
        return;
    }
    cr_assert_fail("PlaceOrder %s: no reply within %d ms: %s", request_id, timeout_ms,
                   sys.why);
}

/*  Sends CancelOrder (`order_id` NULL: without one). Returns the error
    code, "" for an ok reply, which must then say CANCELLED. */
static const char *s_cancel(const char *order_id, char code[32])
{
    msgpack_packer *pk = tu_begin(&sys, TU_ORDER, "CancelOrder");
    msgpack_pack_map(pk, order_id != NULL);
    if (order_id)
        eda_pack_kv_str(pk, "order_id", order_id);
    eda_envelope_t reply;
    cr_assert_eq(tu_call(&sys, TU_ORDER, &reply), 0, "%s", sys.why);
    tu_error_code(&reply, code, 32);
    if (reply.ok == 1) {
        char id[EDA_NAME_MAX + 1] = "", status[16] = "";
        eda_get_str(&reply.data, "order_id", id, sizeof id);
        eda_get_str(&reply.data, "status", status, sizeof status);
        cr_assert_str_eq(id, order_id);
        cr_assert_str_eq(status, "CANCELLED");
    }
    return code;
}

static int64_t s_own(const char *key)
{
    int64_t value = -1;
    cr_assert_eq(tu_stat_own(&sys, TU_ORDER, key, &value), 0, "%s", sys.why);
    return value;
}

/*  Polls order-service's own.`key` until it reaches `at_least`. */
static void s_wait_own(const char *key, int64_t at_least)
{
    int64_t deadline = zclock_mono() + TU_SETTLE_MS, value = s_own(key);
    while (value < at_least && zclock_mono() < deadline) {
        zclock_sleep(S_POLL_MS);
        value = s_own(key);
    }
    cr_assert_geq(value, at_least, "own.%s is %lld, expected %lld within %d ms", key,
                  (long long)value, (long long)at_least, TU_SETTLE_MS);
}

/*  Polls until the saga of the one order in flight has entered `steps`
    steps: each step's first send is a command sent that is not a retry
    (sent is read first, so a retry between the two reads only delays). */
static void s_wait_steps(int64_t steps)
{
    int64_t deadline = zclock_mono() + TU_SETTLE_MS, entered = 0;
    while (1) {
        int64_t sent = s_own("saga_commands_sent");
        entered = sent - s_own("saga_retries");
        if (entered >= steps || zclock_mono() >= deadline)
            break;
        zclock_sleep(S_POLL_MS);
    }
    cr_assert_geq(entered, steps, "the saga entered %lld steps, expected %lld",
                  (long long)entered, (long long)steps);
}

static tu_order_t s_wait_decided(const char *order_id, int timeout_ms)
{
    tu_order_t o;
    cr_assert_eq(tu_wait_order(&sys, order_id, timeout_ms, &o), 0, "%s", sys.why);
    return o;
}

/*  Waits for quiet, checks the invariants and every event log (no order
    with two decisions of one kind), and stops every service cleanly. */
static void s_finish(int settle_ms)
{
    cr_assert_eq(tu_wait_quiet(&sys, settle_ms), 0, "%s", sys.why);
    cr_assert_eq(tu_check_invariants(&sys), 0, "%s", sys.why);
    for (int i = 0; i < TU_NSERVICES; i++)
        cr_assert_eq(tu_check_event_log(&sys, (tu_service_t)i, NULL), 0, "%s", sys.why);
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}

/* --- the pattern of each order ------------------------------------------------ */

/*  Reads an order's saga pattern with GetOrder into saga[32]. */
static void s_order_saga(const char *order_id, char *saga)
{
    msgpack_packer *pk = tu_begin(&sys, TU_ORDER, "GetOrder");
    msgpack_pack_map(pk, 1);
    eda_pack_kv_str(pk, "order_id", order_id);
    eda_envelope_t reply;
    cr_assert_eq(tu_call(&sys, TU_ORDER, &reply), 0, "%s", sys.why);
    cr_assert_eq(reply.ok, 1);
    cr_assert_eq(eda_get_str(&reply.data, "saga", saga, 32), 0, "no saga in %s",
                 order_id);
}

/*  Checks that each event in the log of `svc` about `order_id` that names a
    saga names `saga`. Returns how many named one. (The whole log is read
    and filtered here: ReplayEvents does not filter by correlation_id.) */
static int s_events_name(tu_service_t svc, const char *order_id, const char *saga)
{
    eda_decoder_t *decoder = eda_decoder_new();
    cr_assert_not_null(decoder);
    int named = 0;
    uint64_t next = 1, last = 0;
    do {
        msgpack_packer *pk = tu_begin(&sys, svc, "ReplayEvents");
        msgpack_pack_map(pk, 2);
        eda_pack_kv_u64(pk, "after_seq", next - 1);
        eda_pack_kv_u64(pk, "limit", 1000);
        eda_envelope_t reply;
        cr_assert_eq(tu_call(&sys, svc, &reply), 0, "%s", sys.why);
        cr_assert_eq(reply.ok, 1);
        const msgpack_object *events = eda_map_get(&reply.data, "events");
        cr_assert(events && events->type == MSGPACK_OBJECT_ARRAY);
        cr_assert_eq(eda_get_u64(&reply.data, "last_seq", &last), 0);
        cr_assert(events->via.array.size > 0 || next > last);
        for (uint32_t i = 0; i < events->via.array.size; i++, next++) {
            const msgpack_object *bin = &events->via.array.ptr[i];
            eda_envelope_t env;
            char why[256] = "", got[32] = "";
            cr_assert_eq(bin->type, MSGPACK_OBJECT_BIN);
            cr_assert_eq(eda_decode(decoder, bin->via.bin.ptr, bin->via.bin.size, &env,
                                    why, sizeof why),
                         EDA_OK, "%s", why);
            if (strcmp(env.correlation_id, order_id) ||
                eda_get_str(&env.data, "saga", got, sizeof got) != 0)
                continue;
            cr_assert_str_eq(got, saga, "%s's %s for %s", tu_service_name(svc), env.type,
                             order_id);
            named++;
        }
    } while (next <= last);
    eda_decoder_destroy(&decoder);
    return named;
}

/*  Each order runs the pattern it names, or order-service's --saga when it
    names none; every service's events about it say which; a pattern that
    is neither is refused. */
Test(e2e_orchestration, each_order_runs_the_pattern_it_names)
{
    s_orchestrate(NULL, NULL);
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "gus", 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    tu_item_t items[] = {{"apple", 1, 100}};
    const char *asked[] = {NULL, "choreography", "orchestration"};
    const char *runs[] = {"orchestration", "choreography", "orchestration"};
    char ids[3][EDA_NAME_MAX + 1], saga[32];
    for (int i = 0; i < 3; i++) {
        s_place("gus", items, 1, asked[i], ids[i]);
        cr_assert_str_eq(s_wait_decided(ids[i], TU_SETTLE_MS).status, "APPROVED");
    }
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    for (int i = 0; i < 3; i++) {
        s_order_saga(ids[i], saga);
        cr_assert_str_eq(saga, runs[i]);
        /* OrderCreated and OrderApproved; CreditReserved; StockReserved */
        cr_assert_eq(s_events_name(TU_ORDER, ids[i], runs[i]), 2);
        cr_assert_eq(s_events_name(TU_CUSTOMER, ids[i], runs[i]), 1);
        cr_assert_eq(s_events_name(TU_INVENTORY, ids[i], runs[i]), 1);
    }
    cr_assert_eq(s_own("sagas_started"), 2);

    const char *bad[] = {"", "Orchestration", "saga"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_pack_place_order(tu_begin(&sys, TU_ORDER, "PlaceOrder"), "gus", items, 1, NULL,
                            bad[i]);
        eda_envelope_t reply;
        char code[32];
        cr_assert_eq(tu_call(&sys, TU_ORDER, &reply), 0, "%s", sys.why);
        cr_assert_str_eq(tu_error_code(&reply, code, sizeof code), "BAD_REQUEST",
                         "saga '%s'", bad[i]);
    }
    cr_assert_eq(tu_expect_credit(&sys, "gus", 300, 9700), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 7, 3), 0, "%s", sys.why);
    s_finish(TU_SETTLE_MS);
}

/* --- a participant down ----------------------------------------------------- */

/*  inventory-service is down while an order waits at ReserveStock: the
    command is retried, and once the service is back the order completes
    with its credit and stock held once, however many copies arrived. */
Test(e2e_orchestration, participant_down_then_back)
{
    s_orchestrate("200", NULL);
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "alice", 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    cr_assert_eq(tu_system_kill(&sys, TU_INVENTORY), 0, "%s", sys.why);

    /* No saga named: order-service's --saga applies. */
    tu_item_t items[] = {{"apple", 3, 100}};
    char id[EDA_NAME_MAX + 1], status[16];
    cr_assert_eq(tu_place_order(&sys, "alice", items, 1, NULL, id, status, NULL), 0, "%s",
                 sys.why);
    cr_assert_str_eq(status, "PENDING");
    s_wait_steps(2); /* ReserveCredit answered, ReserveStock sent */
    cr_assert_eq(tu_expect_credit(&sys, "alice", 300, 9700), 0, "%s", sys.why);
    s_wait_own("saga_retries", s_own("saga_retries") + 2); /* of ReserveStock */
    cr_assert_geq(s_own("saga_timeouts"), 2);
    tu_order_t o;
    cr_assert_eq(tu_get_order(&sys, id, &o), 0, "%s", sys.why);
    cr_assert_str_eq(o.status, "PENDING");
    cr_assert_eq(s_own("sagas_in_flight"), 1);
    char code[32];
    cr_assert_str_eq(s_cancel(id, code), "CONFLICT", "a PENDING order was cancelled");

    cr_assert_eq(tu_system_start(&sys, TU_INVENTORY), 0, "%s", sys.why);
    o = s_wait_decided(id, TU_SETTLE_MS);
    cr_assert_str_eq(o.status, "APPROVED");
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_credit(&sys, "alice", 300, 9700), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 7, 3), 0, "%s", sys.why);
    cr_assert_geq(s_own("saga_commands_sent"), 4, "ReserveCredit, 3 x ReserveStock");
    cr_assert_eq(s_own("saga_deadlines_passed"), 0);
    cr_assert_eq(s_own("sagas_started"), 1);
    s_finish(TU_SETTLE_MS);
}

/*  `victim` is down past the saga deadline: the order is rejected
    PARTICIPANT_UNAVAILABLE, and once the victim is back every release is
    acknowledged and nothing stays held. */
static void s_down_past_the_deadline(tu_service_t victim)
{
    s_orchestrate("200", "1500");
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "bob", 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    cr_assert_eq(tu_system_kill(&sys, victim), 0, "%s", sys.why);

    tu_item_t items[] = {{"apple", 2, 150}};
    char id[EDA_NAME_MAX + 1];
    s_place("bob", items, 1, "orchestration", id);
    tu_order_t o = s_wait_decided(id, TU_SETTLE_MS);
    cr_assert_str_eq(o.status, "REJECTED");
    cr_assert_str_eq(o.reason, "PARTICIPANT_UNAVAILABLE");
    cr_assert_eq(s_own("saga_deadlines_passed"), 1);
    /* The release to the victim cannot be acknowledged yet. */
    cr_assert_eq(s_own("sagas_in_flight"), 1, "the compensation ended while %s is down",
                 tu_service_name(victim));
    if (victim == TU_INVENTORY) /* reverse order: the credit goes back last */
        cr_assert_eq(tu_expect_credit(&sys, "bob", 300, 9700), 0, "%s", sys.why);

    cr_assert_eq(tu_system_start(&sys, victim), 0, "%s", sys.why);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(s_own("sagas_in_flight"), 0);
    cr_assert_eq(tu_expect_credit(&sys, "bob", 0, 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 10, 0), 0, "%s", sys.why);
    cr_assert_eq(tu_get_order(&sys, id, &o), 0, "%s", sys.why);
    cr_assert_str_eq(o.status, "REJECTED", "a late reservation changed the verdict");
    cr_assert_str_eq(o.reason, "PARTICIPANT_UNAVAILABLE");
    s_finish(TU_SETTLE_MS);
}

Test(e2e_orchestration, participant_down_past_the_deadline)
{
    s_down_past_the_deadline(TU_INVENTORY);
}

Test(e2e_orchestration, customer_service_down_past_the_deadline)
{
    s_down_past_the_deadline(TU_CUSTOMER);
}

/* --- order-service killed ----------------------------------------------------- */

/*  The saga is held at a known step by keeping `participant` down
    (customer-service: ReserveCredit; inventory-service: ReserveStock);
    order-service is killed with kill -9 there, the participant comes back,
    and the restarted order-service resumes the saga from its row. */
static void s_kill_mid_saga(tu_service_t participant)
{
    s_orchestrate("200", NULL);
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "carol", 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    cr_assert_eq(tu_system_kill(&sys, participant), 0, "%s", sys.why);

    tu_item_t items[] = {{"apple", 2, 150}};
    char id[EDA_NAME_MAX + 1];
    s_place("carol", items, 1, NULL, id);
    if (participant == TU_INVENTORY)
        s_wait_steps(2);            /* ReserveCredit answered */
    s_wait_own("saga_timeouts", 1); /* held at the step */
    cr_assert_eq(tu_system_kill(&sys, TU_ORDER), 0, "%s", sys.why);
    cr_assert_eq(tu_system_start(&sys, participant), 0, "%s", sys.why);
    cr_assert_eq(tu_system_start(&sys, TU_ORDER), 0, "%s", sys.why);

    tu_order_t o = s_wait_decided(id, TU_SETTLE_MS);
    cr_assert_str_eq(o.status, "APPROVED");
    cr_assert_geq(s_own("saga_commands_sent"), 1, "the saga was not resumed");
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_credit(&sys, "carol", 300, 9700), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 8, 2), 0, "%s", sys.why);
    s_finish(TU_SETTLE_MS);
}

Test(e2e_orchestration, kill_order_service_mid_saga_at_reserve_credit)
{
    s_kill_mid_saga(TU_CUSTOMER);
}

Test(e2e_orchestration, kill_order_service_mid_saga_at_reserve_stock)
{
    s_kill_mid_saga(TU_INVENTORY);
}

/*  The saga deadline passes while order-service is down: once restarted,
    it gives up on the saga at once and compensates. */
Test(e2e_orchestration, deadline_passes_while_order_service_is_down)
{
    s_orchestrate("200", "1500");
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "erin", 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    cr_assert_eq(tu_system_kill(&sys, TU_INVENTORY), 0, "%s", sys.why);
    tu_item_t items[] = {{"apple", 1, 700}};
    char id[EDA_NAME_MAX + 1];
    s_place("erin", items, 1, NULL, id);
    s_wait_steps(2); /* at ReserveStock */
    tu_order_t o;
    cr_assert_eq(tu_get_order(&sys, id, &o), 0, "%s", sys.why);
    cr_assert_str_eq(o.status, "PENDING", "the deadline passed before the kill");
    cr_assert_eq(tu_system_kill(&sys, TU_ORDER), 0, "%s", sys.why);
    zclock_sleep(1500); /* not a readiness wait: the deadline is to pass */
    cr_assert_eq(tu_system_start(&sys, TU_ORDER), 0, "%s", sys.why);

    o = s_wait_decided(id, TU_SETTLE_MS);
    cr_assert_str_eq(o.status, "REJECTED");
    cr_assert_str_eq(o.reason, "PARTICIPANT_UNAVAILABLE");
    cr_assert_eq(s_own("saga_deadlines_passed"), 1);
    cr_assert_eq(s_own("sagas_in_flight"), 1, "ReleaseStock cannot be acknowledged");
    cr_assert_eq(tu_expect_credit(&sys, "erin", 700, 9300), 0, "%s",
                 sys.why); /* released after the stock */
    cr_assert_eq(tu_system_start(&sys, TU_INVENTORY), 0, "%s", sys.why);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_credit(&sys, "erin", 0, 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 10, 0), 0, "%s", sys.why);
    s_finish(TU_SETTLE_MS);
}

/*  A burst of orchestrated orders, order-service killed while it works
    through them; the client then asks for every order again by request_id.
    Every order exists once and settles, and each customer's reserved credit
    is the total of its APPROVED orders (tu_check_invariants). */
Test(e2e_orchestration, kill_order_service_after_a_burst)
{
    enum { N = 150 };
    static const char *customers[] = {"rich", "modest", "poor"};
    s_orchestrate(NULL, NULL);
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "rich", 10000000), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "modest", 8000), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "poor", 1500), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 150), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "pear", 30), 0, "%s", sys.why);

    tu_item_t items[N][2];
    size_t n[N];
    char request[N][32];
    for (int i = 0; i < N; i++) {
        items[i][0] = (tu_item_t){"apple", 1 + i % 2, 100 + i % 5};
        items[i][1] = (tu_item_t){"pear", 1, 250};
        n[i] = i % 3 == 0 ? 2 : 1;
        snprintf(request[i], sizeof request[i], "burst-%d", i);
        cr_assert_eq(
            tu_send_place_order(&sys, customers[i % 3], items[i], n[i], request[i]), 0,
            "%s", sys.why);
    }
    s_wait_own("sagas_started", N / 3);
    cr_assert_eq(tu_system_kill(&sys, TU_ORDER), 0, "%s", sys.why);
    cr_assert_eq(tu_system_start(&sys, TU_ORDER), 0, "%s", sys.why);

    static char ids[N][EDA_NAME_MAX + 1];
    for (int i = 0; i < N; i++)
        cr_assert_eq(tu_place_order_retry(&sys, customers[i % 3], items[i], n[i],
                                          request[i], 30000, ids[i]),
                     0, "%s", sys.why);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    static tu_order_t all[N + 1];
    cr_assert_eq(tu_list_orders(&sys, NULL, 10000, all, N + 1), N,
                 "one order per request_id: %s", sys.why);
    int approved = 0;
    for (int i = 0; i < N; i++) {
        tu_order_t o;
        cr_assert_eq(tu_get_order(&sys, ids[i], &o), 0, "%s", sys.why);
        cr_assert_str_neq(o.status, "PENDING", "%s", ids[i]);
        approved += strcmp(o.status, "APPROVED") == 0;
    }
    cr_assert(approved > 0 && approved < N, "approved %d of %d", approved, N);
    s_finish(TU_SETTLE_MS);
}

/* --- replies that come late or twice ------------------------------------------- */

/*  Pauses (SIGSTOP) or resumes (SIGCONT) a running service: alive, but not
    answering, like a process in a long stall. */
static void s_pause(tu_service_t svc, bool pause)
{
    cr_assert_neq(sys.pid[svc], 0, "%s is not running", tu_service_name(svc));
    cr_assert_eq(kill(sys.pid[svc], pause ? SIGSTOP : SIGCONT), 0);
}

/*  Polls until order-service has no saga in flight. */
static void s_wait_no_saga(void)
{
    int64_t deadline = zclock_mono() + TU_SETTLE_MS, n = s_own("sagas_in_flight");
    while (n != 0 && zclock_mono() < deadline) {
        zclock_sleep(S_POLL_MS);
        n = s_own("sagas_in_flight");
    }
    cr_assert_eq(n, 0, "%lld sagas still in flight", (long long)n);
}

/*  With a command timeout of 1 ms, commands time out before their replies
    come and are sent again: participants get duplicates and order-service
    gets late and repeated replies. Timeouts are seen by a 20 ms timer,
    so a fast reply can still beat them; pausing a participant (SIGSTOP)
    while orders wait on it makes every reply late and every command sent
    several times. None of it may decide an order twice. */
Test(e2e_orchestration, late_and_duplicate_replies)
{
    enum { N = 48, ROUND = N / 3 };
    static const char *customers[] = {"rich", "poor", "ghost"};
    s_orchestrate("1", NULL);
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "rich", 1000000), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "poor", 1200), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 100), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "plum", 4), 0, "%s", sys.why);

    /* Round 0: all running. Round 1: inventory-service paused, the orders
       wait at ReserveStock (all from "rich", so that each gets there).
       Round 2: customer-service paused, at ReserveCredit. Each paused round
       goes on until the commands were sent again twice per order, on
       average. */
    tu_service_t paused[3] = {TU_NSERVICES, TU_INVENTORY, TU_CUSTOMER};
    const char *customer[N];
    tu_item_t items[N][2];
    size_t n[N];
    char request[N][32];
    for (int i = 0; i < N; i++) {
        customer[i] = i / ROUND == 1 ? "rich" : customers[i % 3];
        items[i][0] = (tu_item_t){"apple", 1 + i % 3, 200};
        items[i][1] = (tu_item_t){i % 7 == 0 ? "durian" : "plum", 1, 50};
        n[i] = i % 2 ? 2 : 1;
        snprintf(request[i], sizeof request[i], "late-%d", i);
    }
    for (int round = 0; round < 3; round++) {
        int64_t retries = s_own("saga_retries");
        if (paused[round] != TU_NSERVICES)
            s_pause(paused[round], true);
        for (int i = round * ROUND; i < (round + 1) * ROUND; i++)
            cr_assert_eq(
                tu_send_place_order(&sys, customer[i], items[i], n[i], request[i]), 0,
                "%s", sys.why);
        if (paused[round] != TU_NSERVICES) {
            s_wait_own("saga_retries", retries + 2 * ROUND);
            s_pause(paused[round], false);
        }
        s_wait_no_saga();
    }

    static char ids[N][EDA_NAME_MAX + 1];
    for (int i = 0; i < N; i++)
        cr_assert_eq(tu_place_order_retry(&sys, customer[i], items[i], n[i], request[i],
                                          10000, ids[i]),
                     0, "%s", sys.why);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    int approved = 0, rejected = 0;
    for (int i = 0; i < N; i++) {
        tu_order_t o;
        cr_assert_eq(tu_get_order(&sys, ids[i], &o), 0, "%s", sys.why);
        approved += strcmp(o.status, "APPROVED") == 0;
        rejected += strcmp(o.status, "REJECTED") == 0;
        cr_assert_str_neq(o.reason, "PARTICIPANT_UNAVAILABLE", "%s", ids[i]);
    }
    cr_assert_eq(approved + rejected, N);
    cr_assert(approved > 0 && rejected > 0, "approved %d rejected %d", approved,
              rejected);
    cr_assert_gt(s_own("saga_retries"), 0);
    cr_assert_gt(s_own("saga_timeouts"), 0);
    cr_assert_gt(s_own("saga_late_replies"), 0, "duplicate replies were not seen");
    cr_assert_eq(s_own("sagas_started"), N);
    s_finish(TU_SETTLE_MS);
}

/* --- cancelling ------------------------------------------------------------------ */

/*  CancelOrder on an APPROVED order of each pattern gives back its credit
    and stock (by events, or by the orchestrator's commands); a repeat is ok
    and changes nothing; other statuses and bad requests are refused. */
Test(e2e_orchestration, cancel_in_both_patterns)
{
    static const char *patterns[] = {"choreography", "orchestration"};
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "dave", 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    char ids[2][EDA_NAME_MAX + 1], refused[2][EDA_NAME_MAX + 1], code[32];
    tu_item_t items[] = {{"apple", 2, 100}};
    tu_item_t dear[] = {{"apple", 1, 1000000}};
    for (int p = 0; p < 2; p++) {
        s_place("dave", items, 1, patterns[p], ids[p]);
        cr_assert_str_eq(s_wait_decided(ids[p], TU_SETTLE_MS).status, "APPROVED");
        s_place("dave", dear, 1, patterns[p], refused[p]);
        tu_order_t o = s_wait_decided(refused[p], TU_SETTLE_MS);
        cr_assert_str_eq(o.status, "REJECTED");
        cr_assert_str_eq(o.reason, "CREDIT_LIMIT_EXCEEDED");
    }
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_credit(&sys, "dave", 400, 9600), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 6, 4), 0, "%s", sys.why);

    cr_assert_str_eq(s_cancel(ids[0], code), "", "choreography: %s", code);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_credit(&sys, "dave", 200, 9800), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 8, 2), 0, "%s", sys.why);
    cr_assert_str_eq(s_cancel(ids[1], code), "", "orchestration: %s", code);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_credit(&sys, "dave", 0, 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 10, 0), 0, "%s", sys.why);
    for (int p = 0; p < 2; p++) {
        tu_order_t o;
        cr_assert_eq(tu_get_order(&sys, ids[p], &o), 0, "%s", sys.why);
        cr_assert_str_eq(o.status, "CANCELLED", "%s", patterns[p]);
    }

    /* A repeat is ok and publishes nothing anywhere. */
    char epoch[EDA_NAME_MAX + 1];
    uint64_t before[TU_NSERVICES], after;
    for (int i = 0; i < TU_NSERVICES; i++)
        cr_assert_eq(tu_stat_self(&sys, (tu_service_t)i, epoch, &before[i]), 0, "%s",
                     sys.why);
    for (int p = 0; p < 2; p++)
        cr_assert_str_eq(s_cancel(ids[p], code), "", "%s repeat: %s", patterns[p], code);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    for (int i = 0; i < TU_NSERVICES; i++) {
        cr_assert_eq(tu_stat_self(&sys, (tu_service_t)i, epoch, &after), 0, "%s",
                     sys.why);
        cr_assert_eq(after, before[i], "a repeated CancelOrder made %s publish",
                     tu_service_name((tu_service_t)i));
    }
    cr_assert_eq(tu_expect_credit(&sys, "dave", 0, 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 10, 0), 0, "%s", sys.why);

    for (int p = 0; p < 2; p++)
        cr_assert_str_eq(s_cancel(refused[p], code), "CONFLICT", "%s", patterns[p]);
    cr_assert_str_eq(s_cancel("o-000000000000-1", code), "NOT_FOUND");
    cr_assert_str_eq(s_cancel(NULL, code), "BAD_REQUEST");
    cr_assert_str_eq(s_cancel("", code), "BAD_REQUEST");
    msgpack_packer *pk = tu_begin(&sys, TU_ORDER, "CancelOrder");
    msgpack_pack_map(pk, 1);
    eda_pack_kv_i64(pk, "order_id", 1);
    eda_envelope_t reply;
    cr_assert_eq(tu_call(&sys, TU_ORDER, &reply), 0, "%s", sys.why);
    cr_assert_str_eq(tu_error_code(&reply, code, sizeof code), "BAD_REQUEST");
    for (int p = 0; p < 2; p++) {
        tu_order_t o;
        cr_assert_eq(tu_get_order(&sys, refused[p], &o), 0, "%s", sys.why);
        cr_assert_str_eq(o.status, "REJECTED", "a refused CancelOrder changed it");
    }
    s_finish(TU_SETTLE_MS);
}

/*  An orchestrated order cancelled while inventory-service is down is
    CANCELLED at once; its releases wait for the participant, in reverse
    order (stock, then credit), and complete when it is back. */
Test(e2e_orchestration, cancel_while_a_participant_is_down)
{
    s_orchestrate("200", "1500");
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "fay", 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 10), 0, "%s", sys.why);
    tu_item_t items[] = {{"apple", 4, 250}};
    char id[EDA_NAME_MAX + 1], code[32];
    s_place("fay", items, 1, NULL, id);
    cr_assert_str_eq(s_wait_decided(id, TU_SETTLE_MS).status, "APPROVED");
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_system_kill(&sys, TU_INVENTORY), 0, "%s", sys.why);

    cr_assert_str_eq(s_cancel(id, code), "", "%s", code);
    tu_order_t o;
    cr_assert_eq(tu_get_order(&sys, id, &o), 0, "%s", sys.why);
    cr_assert_str_eq(o.status, "CANCELLED");
    /* Four retries take 2.3 s: past the saga's deadline, which a release
       does not have. */
    s_wait_own("saga_retries", s_own("saga_retries") + 4);
    cr_assert_eq(s_own("sagas_in_flight"), 1);
    cr_assert_eq(tu_expect_credit(&sys, "fay", 1000, 9000), 0, "%s", sys.why);
    cr_assert_str_eq(s_cancel(id, code), "", "a repeat: %s", code);

    cr_assert_eq(tu_system_start(&sys, TU_INVENTORY), 0, "%s", sys.why);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_credit(&sys, "fay", 0, 10000), 0, "%s", sys.why);
    cr_assert_eq(tu_expect_stock(&sys, "apple", 10, 0), 0, "%s", sys.why);
    cr_assert_eq(tu_get_order(&sys, id, &o), 0, "%s", sys.why);
    cr_assert_str_eq(o.status, "CANCELLED");
    s_finish(TU_SETTLE_MS);
}

/* --- both patterns, under kill -9 ------------------------------------------------ */

#define S_MIXED_N      2000
#define S_MIXED_PHASES 4

static const char *s_mixed_customers[] = {"rich", "modest", "poor", "ghost"};

/*  The i-th order of the mixed stream: its pattern alternates, its customer
    changes every two orders; some ask for scarce or unknown stock. */
static size_t s_mixed_order(int i, tu_item_t *items, const char **customer,
                            const char **saga)
{
    *saga = i % 2 ? "orchestration" : "choreography";
    *customer = s_mixed_customers[(i / 2) % 4];
    size_t n = 0;
    items[n++] = (tu_item_t){"apple", 1 + i % 3, 100 + i % 7};
    if (i % 5 == 0)
        items[n++] = (tu_item_t){"rare", 1, 300};
    if (i % 17 == 0)
        items[n++] = (tu_item_t){"nosuch", 1, 10};
    return n;
}

static void s_mixed_send(int from, int to)
{
    for (int i = from; i < to; i++) {
        tu_item_t items[3];
        const char *customer, *saga;
        size_t n = s_mixed_order(i, items, &customer, &saga);
        char request[32];
        snprintf(request, sizeof request, "mix-%d", i);
        s_send(customer, items, n, request, saga);
    }
}

/*  How far `svc` has come: the last seq of order-service's own log, or of
    order-service's events that a participant has applied. */
static uint64_t s_progress(tu_service_t svc)
{
    char epoch[EDA_NAME_MAX + 1];
    uint64_t last = 0;
    int rc = svc == TU_ORDER ? tu_stat_self(&sys, svc, epoch, &last)
                             : tu_stat_peer(&sys, svc, TU_ORDER, epoch, &last);
    cr_assert_eq(rc, 0, "%s", sys.why);
    return last;
}

/*  Polls until s_progress (svc) reaches `at_least`. */
static void s_wait_progress(tu_service_t svc, uint64_t at_least)
{
    int64_t deadline = zclock_mono() + TU_SETTLE_MS;
    uint64_t last = s_progress(svc);
    while (last < at_least && zclock_mono() < deadline) {
        zclock_sleep(2); /* polling for progress, to kill in the middle */
        last = s_progress(svc);
    }
    cr_assert_geq(last, at_least, "%s is at #%llu, not at #%llu", tu_service_name(svc),
                  (unsigned long long)last, (unsigned long long)at_least);
}

/*  ~2000 orders alternating choreography and orchestration, in bursts;
    during the first phases customer-service, inventory-service and then
    order-service are killed with kill -9 in the middle of a burst and
    restarted. The client then asks for every order again by request_id.
    Once quiet: one order per request, none PENDING, both outcomes in both
    patterns, the invariants, and a clean event log everywhere. */
Test(e2e_orchestration, mixed_patterns_under_kill_9)
{
    static const tu_service_t victims[S_MIXED_PHASES] = {TU_CUSTOMER, TU_INVENTORY,
                                                         TU_ORDER, TU_NSERVICES};
    const int per_phase = S_MIXED_N / S_MIXED_PHASES;
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "rich", 100000000), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "modest", 60000), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "poor", 5000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 3000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "rare", 60), 0, "%s", sys.why);

    for (int phase = 0; phase < S_MIXED_PHASES; phase++) {
        int from = phase * per_phase, mid = from + per_phase / 2, to = from + per_phase;
        tu_service_t victim = victims[phase];
        if (victim == TU_NSERVICES) {
            s_mixed_send(from, to);
            continue;
        }
        uint64_t base = s_progress(victim);
        s_mixed_send(from, mid);
        s_wait_progress(victim, base + per_phase / 8);
        cr_assert_eq(tu_system_kill(&sys, victim), 0, "%s", sys.why);
        if (victim == TU_ORDER) {
            /* The orders not yet taken are lost with their replies. */
            cr_assert_eq(tu_system_start(&sys, victim), 0, "%s", sys.why);
            s_mixed_send(mid, to);
        } else {
            s_mixed_send(mid, to); /* taken while the participant is down */
            cr_assert_eq(tu_system_start(&sys, victim), 0, "%s", sys.why);
        }
    }

    /* Every order again, by request_id, as a client that lost replies. */
    static char ids[S_MIXED_N][EDA_NAME_MAX + 1];
    zhash_t *index = zhash_new();
    cr_assert_not_null(index);
    for (int i = 0; i < S_MIXED_N; i++) {
        tu_item_t items[3];
        const char *customer, *saga;
        size_t n = s_mixed_order(i, items, &customer, &saga);
        char request[32];
        snprintf(request, sizeof request, "mix-%d", i);
        s_place_retry(customer, items, n, request, saga, 30000, ids[i]);
        cr_assert_eq(zhash_insert(index, ids[i], (void *)(intptr_t)(i + 1)), 0,
                     "two requests got order %s", ids[i]);
    }
    cr_assert_eq(tu_wait_quiet(&sys, 3 * TU_SETTLE_MS), 0, "%s", sys.why);

    static tu_order_t all[S_MIXED_N + 1];
    int count = tu_list_orders(&sys, NULL, 10000, all, S_MIXED_N + 1);
    cr_assert_eq(count, S_MIXED_N, "one order per request_id: %d orders (%s)", count,
                 sys.why);
    int approved[2] = {0, 0}, rejected[2] = {0, 0};
    for (int k = 0; k < count; k++) {
        intptr_t i = (intptr_t)zhash_lookup(index, all[k].order_id) - 1;
        cr_assert_geq(i, 0, "order %s belongs to no request", all[k].order_id);
        cr_assert_str_neq(all[k].status, "PENDING", "%s", all[k].order_id);
        approved[i % 2] += strcmp(all[k].status, "APPROVED") == 0;
        rejected[i % 2] += strcmp(all[k].status, "REJECTED") == 0;
    }
    zhash_destroy(&index);
    for (int p = 0; p < 2; p++)
        cr_assert(approved[p] > 0 && rejected[p] > 0, "%s: approved %d rejected %d",
                  p ? "orchestration" : "choreography", approved[p], rejected[p]);
    cr_assert_eq(approved[0] + approved[1] + rejected[0] + rejected[1], S_MIXED_N);
    s_finish(3 * TU_SETTLE_MS);
}
