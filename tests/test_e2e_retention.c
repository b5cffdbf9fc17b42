/*  test_e2e_retention: --retain-events N on the real binaries (DESIGN
    section 4): the logs stay near their newest N events while orders keep
    coming and the books agree; an event a peer that is down has not applied
    is kept until it comes back and catches up; a request from before the
    oldest event kept is NOT_FOUND, and a subscriber made anew says it must
    be rebuilt.
*/
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define S_POLL_MS 20

static tu_system_t sys;

static void s_setup(void)
{
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
}

static void s_teardown(void)
{
    tu_system_fini(&sys);
}

TestSuite(e2e_retention, .init = s_setup, .fini = s_teardown, .timeout = 120);

static void s_retain(const char *n)
{
    for (int i = 0; i < TU_NSERVICES; i++)
        cr_assert_eq(tu_system_setenv(&sys, (tu_service_t)i, "EDA_RETAIN_EVENTS", n), 0,
                     "%s", sys.why);
}

/*  ReplayEvents after `after`: 0 with last_seq and first_seq, or -1 with the
    error code in code[32]. */
static int s_replay(tu_service_t svc, uint64_t after, uint64_t *last, uint64_t *first,
                    char *code)
{
    msgpack_packer *pk = tu_begin(&sys, svc, "ReplayEvents");
    msgpack_pack_map(pk, 2);
    eda_pack_kv_u64(pk, "after_seq", after);
    eda_pack_kv_u64(pk, "limit", 1);
    eda_envelope_t reply;
    cr_assert_eq(tu_call(&sys, svc, &reply), 0, "%s", sys.why);
    tu_error_code(&reply, code, 32);
    if (reply.ok != 1)
        return -1;
    cr_assert_eq(eda_get_u64(&reply.data, "last_seq", last), 0);
    cr_assert_eq(eda_get_u64(&reply.data, "first_seq", first), 0, "no first_seq");
    return 0;
}

/*  The oldest seq `svc` keeps, and its last. */
static uint64_t s_first_seq(tu_service_t svc, uint64_t *last)
{
    uint64_t first = 0;
    char code[32];
    cr_assert_eq(s_replay(svc, UINT64_C(1) << 62, last, &first, code), 0, "%s", code);
    return first;
}

/*  Polls until `svc` keeps no event at or before `seq`. */
static void s_wait_trimmed(tu_service_t svc, uint64_t seq)
{
    int64_t deadline = zclock_mono() + TU_SETTLE_MS;
    uint64_t first = 0, last = 0;
    while (zclock_mono() < deadline && (first = s_first_seq(svc, &last)) <= seq)
        zclock_sleep(S_POLL_MS); /* the poll interval of an outcome wait */
    cr_assert_gt(first, seq, "%s still keeps #%llu (first #%llu, last #%llu)",
                 tu_service_name(svc), (unsigned long long)seq, (unsigned long long)first,
                 (unsigned long long)last);
}

static void s_stock(void)
{
    cr_assert_eq(tu_create_customer(&sys, "ann", 100000000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "pen", 100000), 0, "%s", sys.why);
}

static void s_orders(int from, int to)
{
    for (int i = from; i < to; i++) {
        tu_item_t items[] = {{"pen", 1, 100}};
        char request[32], id[EDA_NAME_MAX + 1];
        snprintf(request, sizeof request, "r-%d", i);
        cr_assert_eq(tu_place_order_retry(&sys, "ann", items, 1, request, 30000, id), 0,
                     "%s", sys.why);
    }
}

Test(e2e_retention, logs_stay_near_their_newest_n_and_the_books_agree)
{
    s_retain("50");
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    s_stock();
    s_orders(0, 200);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_check_invariants(&sys), 0, "%s", sys.why);
    for (int i = 0; i < TU_NSERVICES; i++) {
        tu_service_t svc = (tu_service_t)i;
        uint64_t last = 0;
        s_first_seq(svc, &last);
        cr_assert_gt(last, 150, "%s logged only %llu events", tu_service_name(svc),
                     (unsigned long long)last);
        s_wait_trimmed(svc, last - 60);
        uint64_t first = s_first_seq(svc, &last);
        cr_assert_geq(last - first + 1, 50, "%s keeps fewer than its newest 50",
                      tu_service_name(svc));
        /* The whole log from the start is gone; one order's events too. */
        uint64_t a, b;
        char code[32];
        cr_assert_eq(s_replay(svc, 0, &a, &b, code), -1);
        cr_assert_str_eq(code, "NOT_FOUND");
    }
    /* Orders still go through, and the books still agree. */
    s_orders(200, 220);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_check_invariants(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}

Test(e2e_retention, events_a_peer_that_is_down_needs_are_kept)
{
    s_retain("20");
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    s_stock();
    s_orders(0, 20);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    char epoch[EDA_NAME_MAX + 1];
    uint64_t applied = 0, last = 0;
    cr_assert_eq(tu_stat_peer(&sys, TU_INVENTORY, TU_ORDER, epoch, &applied), 0, "%s",
                 sys.why);
    cr_assert_gt(applied, 20, "two events an order from order-service");
    /* Deleting has begun: both peers have reported. */
    s_wait_trimmed(TU_ORDER, 1);
    cr_assert_eq(tu_system_kill(&sys, TU_INVENTORY), 0, "%s", sys.why);
    s_orders(20, 120);
    /* order-service goes on, deleting only what inventory-service had
       applied when it went down: it catches up from the rest. */
    uint64_t customer_seen = 0;
    int64_t deadline = zclock_mono() + TU_SETTLE_MS;
    for (;;) {
        s_first_seq(TU_ORDER, &last);
        cr_assert_eq(tu_stat_peer(&sys, TU_CUSTOMER, TU_ORDER, epoch, &customer_seen), 0,
                     "%s", sys.why);
        if (customer_seen >= last || zclock_mono() > deadline)
            break;
        zclock_sleep(S_POLL_MS); /* the poll interval of an outcome wait */
    }
    cr_assert_leq(s_first_seq(TU_ORDER, &last), applied + 1,
                  "order-service deleted events inventory-service had not applied");
    cr_assert_eq(tu_system_start(&sys, TU_INVENTORY), 0, "%s", sys.why);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    cr_assert_eq(tu_check_invariants(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}

Test(e2e_retention, a_subscriber_made_anew_is_told_to_be_rebuilt)
{
    s_retain("10");
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    s_stock();
    s_orders(0, 30);
    cr_assert_eq(tu_wait_quiet(&sys, TU_SETTLE_MS), 0, "%s", sys.why);
    uint64_t last = 0;
    s_first_seq(TU_ORDER, &last);
    s_wait_trimmed(TU_ORDER, 1);
    cr_assert_eq(tu_system_stop(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s%s", sys.db[TU_CUSTOMER], suffixes[i]);
        unlink(path);
    }
    cr_assert_eq(tu_system_start(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    int64_t deadline = zclock_mono() + TU_SETTLE_MS;
    while (zclock_mono() < deadline &&
           !tu_log_has(&sys, TU_CUSTOMER, "rebuild this service from a fresh database"))
        zclock_sleep(S_POLL_MS); /* the poll interval of an outcome wait */
    cr_assert(tu_log_has(&sys, TU_CUSTOMER, "order-service no longer keeps the events"),
              "customer-service does not say it must be rebuilt");
    /* It still answers its own commands. */
    eda_envelope_t reply;
    cr_assert_eq(tu_call_empty(&sys, TU_CUSTOMER, "Ping", &reply), 0, "%s", sys.why);
    cr_assert_eq(reply.ok, 1);
}
