/*  test_e2e_chaos: exactly-once delivery under random faults, on the real
    binaries (DESIGN section 4). While a stream of orders flows in bursts, a
    chaos loop keeps picking a service and either kills it with SIGKILL (and
    restarts it on the same database) or freezes it with SIGSTOP for a while
    (then SIGCONT). Faults overlap: a service may be killed while another is
    frozen or still down. Once all are back, every request is sent again by
    its request_id, as a client that lost its replies would; then the system
    must go quiet with every order present exactly once, none PENDING, the
    books balanced (the DESIGN invariants) and every event log whole.

    The run is driven by a seeded RNG: EDA_CHAOS_SEED=N replays the same
    choices (the seed is printed to stderr); EDA_CHAOS_SECONDS=N changes how
    long the chaos lasts (default 20 s, 15 s in a sanitizer build).
*/
#include "testutil.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A sanitizer build runs everything several times slower: less chaos keeps
   the whole file well under a minute there. */
#if defined(__SANITIZE_ADDRESS__)
#define S_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_SANITIZED 1
#endif
#endif
#ifndef S_SANITIZED
#define S_SANITIZED 0
#endif

#define S_CHAOS_MS   (S_SANITIZED ? 15000 : 20000)
#define S_MAX_ORDERS 4000  /* the stream stops growing here; chaos goes on */
#define S_RESEND_MS  30000 /* one request answered, across restarts */
#define S_QUIET_MS   30000 /* every order decided, every peer caught up */
#define S_NCUSTOMERS 4

static tu_system_t sys;
static bool s_stopped[TU_NSERVICES]; /* SIGSTOPped and not yet continued */
static uint64_t s_rng;

static void s_setup(void)
{
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
}

static void s_teardown(void)
{
    /* A frozen service would ignore the SIGTERM of tu_system_fini until its
       stop deadline: let it run first. */
    for (int i = 0; i < TU_NSERVICES; i++)
        if (s_stopped[i] && sys.pid[i])
            kill(sys.pid[i], SIGCONT);
    tu_system_fini(&sys);
}

TestSuite(e2e_chaos, .init = s_setup, .fini = s_teardown, .timeout = 240);

/*  splitmix64: small, and the same sequence for a seed on every libc. */
static uint64_t s_random(void)
{
    uint64_t z = (s_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/*  A uniform integer in lo..hi. */
static int64_t s_between(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(s_random() % (uint64_t)(hi - lo + 1));
}

/*  The seed from EDA_CHAOS_SEED, else from the clock; printed, so that a
    failure can be replayed with the same choices. */
static uint64_t s_seed(void)
{
    const char *env = getenv("EDA_CHAOS_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 0)
                                : (uint64_t)zclock_time() ^ ((uint64_t)getpid() << 32);
    s_rng = seed;
    fprintf(stderr, "chaos: EDA_CHAOS_SEED=%" PRIu64 " (saga %s)\n", seed, tu_saga());
    return seed;
}

static int64_t s_chaos_ms(void)
{
    const char *env = getenv("EDA_CHAOS_SECONDS");
    long secs = env && *env ? strtol(env, NULL, 10) : 0;
    return secs > 0 && secs <= 3600 ? secs * 1000 : S_CHAOS_MS;
}

static const char *s_customers[S_NCUSTOMERS] = {"rich-a", "rich-b", "modest", "poor"};

/*  Enough for most orders, not for all: "poor" runs out of credit at once,
    "pear" runs out of stock within seconds, and "modest" in a long run. */
static void s_stock_the_shop(void)
{
    cr_assert_eq(tu_create_customer(&sys, "rich-a", 100000000), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "rich-b", 100000000), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "modest", 150000), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "poor", 2000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "apple", 3 * S_MAX_ORDERS), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "pear", 60), 0, "%s", sys.why);
}

/*  The i-th order of the stream: the same every time it is sent. Returns
    the number of items and stores the order's total. */
static size_t s_stream_order(int i, tu_item_t *items, int64_t *total)
{
    items[0] = (tu_item_t){"apple", 1 + i % 3, 100 + i % 7};
    items[1] = (tu_item_t){"pear", 1, 250};
    size_t n = i % 10 == 0 ? 2 : 1;
    *total = 0;
    for (size_t k = 0; k < n; k++)
        *total += items[k].qty * items[k].price;
    return n;
}

static void s_request_id(int i, char *out, size_t size)
{
    snprintf(out, size, "chaos-%d", i);
}

/*  Queues orders from..to-1 without waiting. A send that cannot be queued
    is not retried here: the final resend by request_id places it. */
static void s_burst(int from, int to)
{
    for (int i = from; i < to; i++) {
        tu_item_t items[2];
        int64_t total;
        size_t n = s_stream_order(i, items, &total);
        char request[32];
        s_request_id(i, request, sizeof request);
        tu_send_place_order(&sys, s_customers[i % S_NCUSTOMERS], items, n, request);
    }
    /* The replies are not needed (the resend gets every order id): take
       them off the socket so that they never fill its queue. */
    eda_envelope_t reply;
    while (eda_client_recv(sys.client[TU_ORDER], &reply) == 0)
        ;
}

/*  The faults in progress and what they came to. */
typedef struct {
    int64_t restart_at[TU_NSERVICES];  /* killed: when to start it again; 0 none */
    int64_t continue_at[TU_NSERVICES]; /* stopped: when to SIGCONT it; 0 none */
    int64_t next_fault;
    int64_t last_fault; /* when the last fault began */
    int kills, stops;
} s_chaos_t;

/*  One fault on a random running service: kill -9 (order-service is
    started again at once, a participant after 0.2-3 s) or SIGSTOP for
    0.5-5 s. A frozen service is only ever killed. */
static void s_inject(s_chaos_t *c, int64_t now)
{
    int first = (int)s_between(0, TU_NSERVICES - 1);
    int svc = -1;
    for (int k = 0; k < TU_NSERVICES && svc < 0; k++)
        if (sys.pid[(first + k) % TU_NSERVICES])
            svc = (first + k) % TU_NSERVICES;
    bool kill_it = s_between(0, 1) == 1;
    if (svc < 0)
        return; /* all down at once: the next fault will find one back */
    if (s_stopped[svc] || kill_it) {
        s_stopped[svc] = false;
        c->continue_at[svc] = 0;
        cr_assert_eq(tu_system_kill(&sys, (tu_service_t)svc), 0, "%s", sys.why);
        c->kills++;
        if (svc == TU_ORDER) /* it takes the stream's orders */
            cr_assert_eq(tu_system_start(&sys, TU_ORDER), 0, "%s", sys.why);
        else
            c->restart_at[svc] = now + s_between(200, 3000);
    } else {
        cr_assert_eq(kill(sys.pid[svc], SIGSTOP), 0, "SIGSTOP %s",
                     tu_service_name((tu_service_t)svc));
        s_stopped[svc] = true;
        c->continue_at[svc] = now + s_between(500, 5000);
        c->stops++;
    }
    c->last_fault = now;
    c->next_fault = now + s_between(500, 2000);
}

/*  Ends the faults that are due (all of them with `all`): SIGCONT for the
    frozen, a start on the same database for the killed. */
static void s_heal(s_chaos_t *c, int64_t now, bool all)
{
    for (int i = 0; i < TU_NSERVICES; i++) {
        if (c->continue_at[i] && (all || now >= c->continue_at[i])) {
            cr_assert_eq(kill(sys.pid[i], SIGCONT), 0, "SIGCONT %s",
                         tu_service_name((tu_service_t)i));
            s_stopped[i] = false;
            c->continue_at[i] = 0;
        }
        if (c->restart_at[i] && (all || now >= c->restart_at[i])) {
            cr_assert_eq(tu_system_start(&sys, (tu_service_t)i), 0, "%s", sys.why);
            c->restart_at[i] = 0;
        }
    }
}

/*  An order id and the index of the request it answered, sorted by id. */
typedef struct {
    const char *id;
    int index;
} s_ref_t;

static int s_ref_cmp(const void *a, const void *b)
{
    return strcmp(((const s_ref_t *)a)->id, ((const s_ref_t *)b)->id);
}

Test(e2e_chaos, kill_and_stop_random_services_under_a_stream)
{
    static char ids[S_MAX_ORDERS][EDA_NAME_MAX + 1];
    static tu_order_t all[S_MAX_ORDERS + 1];
    static s_ref_t refs[S_MAX_ORDERS];
    static bool seen[S_MAX_ORDERS];
    uint64_t seed = s_seed();
    int64_t chaos_ms = s_chaos_ms();

    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    s_stock_the_shop();

    /* The stream and the chaos share one loop. Every wait in it (burst
       sizes and gaps, which service, which fault, how long it lasts) is
       drawn from the RNG: they are the test's input, not waits for
       anything to be ready. */
    s_chaos_t c = {0};
    int64_t start = zclock_mono(), end = start + chaos_ms;
    c.next_fault = start + s_between(500, 2000);
    int n = 0;
    for (int64_t now = start; now < end; now = zclock_mono()) {
        if (now >= c.next_fault)
            s_inject(&c, now);
        s_heal(&c, now, false);
        if (n < S_MAX_ORDERS) {
            int to = n + (int)s_between(3, 15);
            to = to > S_MAX_ORDERS ? S_MAX_ORDERS : to;
            s_burst(n, to);
            n = to;
        }
        zclock_sleep((int)s_between(30, 120)); /* the stream's pace */
    }
    s_heal(&c, zclock_mono(), true);
    int64_t back = zclock_mono();

    /* Once the faults end the system settles by itself: every order that
       was created is decided with no help from the client. */
    cr_assert_eq(tu_wait_quiet(&sys, S_QUIET_MS), 0, "seed %" PRIu64 ": %s", seed,
                 sys.why);
    int64_t quiet = zclock_mono();

    /* Every request again, by request_id: an order the kills lost is
       placed now, one that exists answers with its id. */
    for (int i = 0; i < n; i++) {
        tu_item_t items[2];
        int64_t total;
        size_t k = s_stream_order(i, items, &total);
        char request[32];
        s_request_id(i, request, sizeof request);
        cr_assert_eq(tu_place_order_retry(&sys, s_customers[i % S_NCUSTOMERS], items, k,
                                          request, S_RESEND_MS, ids[i]),
                     0, "seed %" PRIu64 ": %s", seed, sys.why);
    }
    cr_assert_eq(tu_wait_quiet(&sys, S_QUIET_MS), 0, "seed %" PRIu64 ": %s", seed,
                 sys.why);

    cr_assert_eq(tu_check_invariants(&sys), 0, "seed %" PRIu64 ": %s", seed, sys.why);
    uint64_t events[TU_NSERVICES] = {0};
    for (int i = 0; i < TU_NSERVICES; i++)
        cr_assert_eq(tu_check_event_log(&sys, (tu_service_t)i, &events[i]), 0,
                     "seed %" PRIu64 ": %s", seed, sys.why);

    /* Each request has its own order... */
    for (int i = 0; i < n; i++)
        refs[i] = (s_ref_t){ids[i], i};
    qsort(refs, (size_t)n, sizeof *refs, s_ref_cmp);
    for (int i = 1; i < n; i++)
        cr_assert_str_neq(refs[i].id, refs[i - 1].id,
                          "seed %" PRIu64 ": requests %d and %d got one order", seed,
                          refs[i].index, refs[i - 1].index);
    /* ...and ListOrders holds exactly those, each once, each decided, each
       as it was asked for. */
    int listed = tu_list_orders(&sys, NULL, S_MAX_ORDERS + 1, all, S_MAX_ORDERS + 1);
    cr_assert_eq(listed, n, "seed %" PRIu64 ": %d orders listed for %d requests (%s)",
                 seed, listed, n, sys.why);
    int approved = 0, rejected = 0;
    for (int i = 0; i < listed; i++) {
        s_ref_t key = {all[i].order_id, 0};
        const s_ref_t *ref = bsearch(&key, refs, (size_t)n, sizeof *refs, s_ref_cmp);
        cr_assert(ref, "seed %" PRIu64 ": order %s answers no request", seed,
                  all[i].order_id);
        cr_assert(!seen[ref->index], "seed %" PRIu64 ": order %s listed twice", seed,
                  all[i].order_id);
        seen[ref->index] = true;
        tu_item_t items[2];
        int64_t total;
        size_t k = s_stream_order(ref->index, items, &total);
        cr_assert_str_eq(all[i].customer_id, s_customers[ref->index % S_NCUSTOMERS],
                         "order %s", all[i].order_id);
        cr_assert_eq(all[i].total, total, "order %s", all[i].order_id);
        cr_assert_eq(all[i].nitems, (int)k, "order %s", all[i].order_id);
        cr_assert(strcmp(all[i].status, "PENDING"), "seed %" PRIu64 ": %s is PENDING",
                  seed, all[i].order_id);
        approved += strcmp(all[i].status, "APPROVED") == 0;
        rejected += strcmp(all[i].status, "REJECTED") == 0;
    }
    cr_assert(approved > n / 2 && rejected > 0, "approved %d, rejected %d of %d",
              approved, rejected, n);
    cr_assert(c.kills + c.stops > 0, "no fault was injected");

    fprintf(stderr,
            "chaos: seed %" PRIu64 ", saga %s, %.1f s: %d orders (%d approved, %d "
            "rejected), %d kills, %d stops; quiet %" PRId64 " ms after the last fault "
            "began, %" PRId64 " ms after all were back; events %" PRIu64 "/%" PRIu64
            "/%" PRIu64 "\n",
            seed, tu_saga(), (double)chaos_ms / 1000, n, approved, rejected, c.kills,
            c.stops, quiet - c.last_fault, quiet - back, events[TU_ORDER],
            events[TU_CUSTOMER], events[TU_INVENTORY]);
    cr_assert_eq(tu_system_shutdown(&sys), 0, "%s", sys.why);
}
