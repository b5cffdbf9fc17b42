/*  test_e2e_watch: `eda watch` as a user runs it, in a pseudo-terminal (so
    the terminal path, colours included, is what is read), against the real
    services (tu_system_t, ipc:// endpoints in a temp folder, given with
    --peer): one choreographed order's events in causal order, effects that
    fake publishers send before their causes shown after them, --last
    showing a past order, --type keeping one type, and the services it cannot
    reach named within seconds, and again when one comes back.

    Readiness is never a sleep: a live watch is ready when it has shown a
    heartbeat in each of the three lanes (--heartbeats), and every wait polls
    the output against a deadline.
*/
#include "testutil.h"

#include "eda_envelope.h"

#include <criterion/criterion.h>
#include <czmq.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>

#define S_OUT_MAX  (1 << 18)
#define S_ARGS_MAX 40

static tu_system_t sys;

/*  One eda watch running in a pseudo-terminal, and what it printed. */
typedef struct {
    pid_t pid; /* 0 when not running */
    int fd;    /* the terminal's master side */
    int status;
    char out[S_OUT_MAX];
    size_t len;
} s_watch_t;

static s_watch_t s_w;

static void s_setup(void)
{
    cr_assert_eq(tu_system_init(&sys), 0, "%s", sys.why);
    s_w.pid = 0;
    s_w.fd = -1;
}

/*  Stops the watch (if still running) and reaps it. */
static void s_stop(void)
{
    if (s_w.pid > 0) {
        kill(s_w.pid, SIGKILL);
        int st = 0;
        while (waitpid(s_w.pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    s_w.pid = 0;
    if (s_w.fd >= 0)
        close(s_w.fd);
    s_w.fd = -1;
}

static void s_teardown(void)
{
    s_stop();
    tu_system_fini(&sys);
}

TestSuite(e2e_watch, .init = s_setup, .fini = s_teardown, .timeout = 120);

/*  Starts eda with the NULL-ended arguments, then the deployment's --peer
    options, on a new pseudo-terminal. */
static void s_start(const char *first, ...)
{
    char path[512], peer[TU_NSERVICES][700];
    char *argv[S_ARGS_MAX] = {path};
    int n = 1;
    snprintf(path, sizeof path, "%s/tools/eda", EDA_BIN_DIR);
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < S_ARGS_MAX - 10; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    tu_peer_args(&sys, argv, n, peer);
    s_w.len = 0;
    s_w.out[0] = '\0';
    s_w.status = -1;
    fflush(NULL);
    pid_t pid = forkpty(&s_w.fd, NULL, NULL, NULL);
    cr_assert_geq(pid, 0, "forkpty: %s", strerror(errno));
    if (pid == 0) {
        unsetenv("NO_COLOR");
        execv(path, argv);
        _exit(127);
    }
    s_w.pid = pid;
}

/*  Reads what the watch printed until `done` says so, it exits (reaped,
    status kept) or `ms` pass. Returns whether `done` held. */
static bool s_read_until(bool (*done)(const char *out), int ms)
{
    int64_t deadline = zclock_mono() + ms;
    while (!done(s_w.out) && s_w.fd >= 0) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0)
            break;
        struct pollfd pfd = {s_w.fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)(left < 100 ? left : 100)) <= 0)
            continue;
        char scratch[4096];
        bool room = s_w.len + 1 < S_OUT_MAX;
        ssize_t got = read(s_w.fd, room ? s_w.out + s_w.len : scratch,
                           room ? S_OUT_MAX - 1 - s_w.len : sizeof scratch);
        if (got > 0 && room) {
            s_w.len += (size_t)got;
            s_w.out[s_w.len] = '\0';
        } else if (got <= 0 && errno != EINTR && errno != EAGAIN) {
            /* EIO: the terminal's other side is closed, the watch is gone */
            int st = 0;
            while (waitpid(s_w.pid, &st, 0) < 0 && errno == EINTR)
                ;
            s_w.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            s_w.pid = 0;
            close(s_w.fd);
            s_w.fd = -1;
        }
    }
    return done(s_w.out);
}

static bool s_never(const char *out)
{
    (void)out;
    return false;
}

/*  Reads until the watch exits; its exit status. */
static int s_wait_exit(int ms)
{
    s_read_until(s_never, ms);
    cr_assert_eq(s_w.pid, 0, "eda watch still running after %d ms:\n%s", ms, s_w.out);
    return s_w.status;
}

/*  A heartbeat shown in each lane: every SUB has joined. */
static bool s_all_lanes(const char *out)
{
    return strstr(out, "●  │  │  ") && strstr(out, "│  ●  │  ") &&
           strstr(out, "│  │  ●  ");
}

static bool s_all_unreachable(const char *out)
{
    const char *at = strstr(out, "not reachable:");
    return at && strstr(at, "order-service (") && strstr(at, "customer-service (") &&
           strstr(at, "inventory-service (");
}

static bool s_customer_back(const char *out)
{
    return strstr(out, "customer-service is back") != NULL;
}

/*  Asserts that the output shows the choreographed chain of one approved
    order, each event after its cause, none marked. */
static void s_expect_chain(const char *out)
{
    static const char *chain[] = {"OrderCreated", "CreditReserved", "StockReserved",
                                  "OrderApproved"};
    const char *prev = out;
    for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
        const char *at = strstr(out, chain[i]);
        cr_assert_not_null(at, "no %s in:\n%s", chain[i], out);
        cr_assert(at >= prev, "%s shown before %s:\n%s", chain[i], chain[i - 1], out);
        cr_assert_null(strstr(at + 1, chain[i]), "%s twice:\n%s", chain[i], out);
        prev = at;
    }
    cr_assert_null(strstr(out, "cause not seen"), "an event shown without its cause:\n%s",
                   out);
}

/*  Customer ada and stock of pen, then one approved choreographed order. */
static void s_place(char *order_id)
{
    tu_item_t items[] = {{"pen", 1, 250}};
    cr_assert_eq(tu_place_order(&sys, "ada", items, 1, NULL, order_id, NULL, NULL), 0,
                 "%s", sys.why);
    tu_order_t order;
    cr_assert_eq(tu_wait_order(&sys, order_id, TU_SETTLE_MS, &order), 0, "%s", sys.why);
    cr_assert_str_eq(order.status, "APPROVED");
}

static void s_stock_up(void)
{
    cr_assert_eq(tu_system_start_all(&sys), 0, "%s", sys.why);
    cr_assert_eq(tu_create_customer(&sys, "ada", 1000000), 0, "%s", sys.why);
    cr_assert_eq(tu_add_stock(&sys, "pen", 100), 0, "%s", sys.why);
}

Test(e2e_watch, shows_a_choreographed_order_in_causal_order)
{
    s_stock_up();
    s_start("watch", "--heartbeats", "--count", "4", NULL);
    cr_assert(s_read_until(s_all_lanes, 10000), "no heartbeat in every lane:\n%s",
              s_w.out);
    char order_id[EDA_NAME_MAX + 1];
    s_place(order_id);
    cr_assert_eq(s_wait_exit(10000), 0, "%s", s_w.out);
    s_expect_chain(s_w.out);
    cr_assert_not_null(strstr(s_w.out, order_id), "%s", s_w.out);
    cr_assert_null(strstr(s_w.out, "not reachable"), "%s", s_w.out);
}

Test(e2e_watch, last_shows_a_past_order_then_stops)
{
    s_stock_up();
    char order_id[EDA_NAME_MAX + 1], other[EDA_NAME_MAX + 1];
    s_place(order_id);
    s_place(other);
    /* Only --last can show it: it was decided before the watch began. */
    s_start("watch", "--last", "20", "--order", order_id, "--count", "4", NULL);
    cr_assert_eq(s_wait_exit(10000), 0, "%s", s_w.out);
    s_expect_chain(s_w.out);
    cr_assert_null(strstr(s_w.out, other), "--order showed another order:\n%s", s_w.out);
    cr_assert_null(strstr(s_w.out, "CustomerCreated"), "%s", s_w.out);
}

Test(e2e_watch, last_shows_the_others_and_names_a_service_down)
{
    s_stock_up();
    char order_id[EDA_NAME_MAX + 1];
    s_place(order_id);
    cr_assert_eq(tu_system_stop(&sys, TU_INVENTORY), 0, "%s", sys.why);
    /* OrderCreated, CreditReserved and OrderApproved; StockReserved is in
       the log of the service that is down. */
    s_start("watch", "--last", "20", "--order", order_id, "--count", "3", "--timeout",
            "1000", NULL);
    cr_assert_eq(s_wait_exit(10000), 0, "%s", s_w.out);
    static const char *shown[] = {"OrderCreated", "CreditReserved", "OrderApproved",
                                  "inventory-service: "};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
        cr_assert_not_null(strstr(s_w.out, shown[i]), "no %s:\n%s", shown[i], s_w.out);
    cr_assert_not_null(strstr(s_w.out, "is it running?"), "%s", s_w.out);
    cr_assert_null(strstr(s_w.out, "StockReserved"), "%s", s_w.out);
}

Test(e2e_watch, type_keeps_only_that_type)
{
    s_stock_up();
    s_start("watch", "--heartbeats", "--type", "creditreserved", "--count", "2", NULL);
    cr_assert(s_read_until(s_all_lanes, 10000), "no heartbeat in every lane:\n%s",
              s_w.out);
    char first[EDA_NAME_MAX + 1], second[EDA_NAME_MAX + 1];
    s_place(first);
    s_place(second);
    cr_assert_eq(s_wait_exit(10000), 0, "%s", s_w.out);
    cr_assert_not_null(strstr(s_w.out, "CreditReserved"), "%s", s_w.out);
    cr_assert_not_null(strstr(s_w.out, first), "%s", s_w.out);
    cr_assert_not_null(strstr(s_w.out, second), "%s", s_w.out);
    static const char *others[] = {"OrderCreated", "StockReserved", "OrderApproved",
                                   "cause not seen"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        cr_assert_null(strstr(s_w.out, others[i]), "--type showed %s:\n%s", others[i],
                       s_w.out);
}

Test(e2e_watch, names_the_services_it_cannot_reach)
{
    int64_t start = zclock_mono();
    s_start("watch", NULL);
    cr_assert(s_read_until(s_all_unreachable, 6000),
              "not all three named unreachable within 6 s:\n%s", s_w.out);
    cr_assert_lt(zclock_mono() - start, 6000);
    for (int i = 0; i < TU_NSERVICES; i++)
        cr_assert_not_null(strstr(s_w.out, sys.events[i]), "no endpoint of %s:\n%s",
                           tu_service_name(i), s_w.out);
    cr_assert_gt(s_w.pid, 0, "eda watch gave up:\n%s", s_w.out);
    cr_assert_eq(tu_system_start(&sys, TU_CUSTOMER), 0, "%s", sys.why);
    cr_assert(s_read_until(s_customer_back, 6000), "customer-service not back:\n%s",
              s_w.out);
}

/*  Publishes one message of `kind` as `source` on `pub`: an event with
    seq `seq` of `epoch`, caused by `cause`, or (seq 0) a heartbeat. */
static void s_fake(zsock_t *pub, tu_service_t source, const char *type, const char *epoch,
                   uint64_t seq, const char *cause)
{
    char id[EDA_NAME_MAX + 1];
    snprintf(id, sizeof id, "%s-%llu", epoch, (unsigned long long)seq);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    eda_header_t hdr = {.kind = seq ? EDA_KIND_EVENT : EDA_KIND_HEARTBEAT,
                        .type = type,
                        .id = seq ? id : "hb-1",
                        .source = tu_service_name(source),
                        .ts = (uint64_t)zclock_time() * 1000,
                        .correlation_id = seq ? "o-fake-1" : NULL,
                        .causation_id = cause,
                        .seq = seq,
                        .epoch = epoch};
    eda_pack_header(&pk, &hdr);
    msgpack_pack_map(&pk, 1);
    if (seq)
        eda_pack_kv_str(&pk, "order_id", "o-fake-1");
    else
        eda_pack_kv_u64(&pk, "last_seq", 0);
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, type);
    zmsg_addmem(msg, sb.data, sb.size);
    cr_assert_eq(zmsg_send(&msg, pub), 0);
    msgpack_sbuffer_destroy(&sb);
}

Test(e2e_watch, holds_an_effect_until_its_cause_and_marks_an_orphan)
{
    /* Three publishers in place of the services, so that the effects are
       sure to arrive before their causes: live services only may. */
    static const char *epochs[TU_NSERVICES] = {"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb",
                                               "cccccccccccccccc"};
    if (sys.keys_dir[0])
        cr_skip_test("the fake publishers speak no CURVE");
    zsock_t *pubs[TU_NSERVICES];
    for (int i = 0; i < TU_NSERVICES; i++) {
        pubs[i] = zsock_new_pub(sys.events[i]);
        cr_assert_not_null(pubs[i], "cannot bind %s", sys.events[i]);
    }
    s_start("watch", "--heartbeats", "--count", "4", NULL);
    int64_t deadline = zclock_mono() + 10000;
    while (!s_all_lanes(s_w.out) && zclock_mono() < deadline) {
        for (int i = 0; i < TU_NSERVICES; i++)
            s_fake(pubs[i], (tu_service_t)i, "Heartbeat", epochs[i], 0, NULL);
        s_read_until(s_all_lanes, 100);
    }
    cr_assert(s_all_lanes(s_w.out), "no heartbeat in every lane:\n%s", s_w.out);
    size_t before = s_w.len;
    s_fake(pubs[TU_CUSTOMER], TU_CUSTOMER, "CreditReserved", epochs[TU_CUSTOMER], 1,
           "aaaaaaaaaaaaaaaa-1");
    s_fake(pubs[TU_INVENTORY], TU_INVENTORY, "StockReserved", epochs[TU_INVENTORY], 1,
           "bbbbbbbbbbbbbbbb-1");
    /* 50 ms: they arrive first, and are held (up to 200 ms) meanwhile. */
    s_read_until(s_never, 50);
    cr_assert_null(strstr(s_w.out + before, "Reserved"), "shown before its cause:\n%s",
                   s_w.out + before);
    s_fake(pubs[TU_ORDER], TU_ORDER, "OrderCreated", epochs[TU_ORDER], 1, "12345678-1");
    s_fake(pubs[TU_INVENTORY], TU_INVENTORY, "StockRejected", epochs[TU_INVENTORY], 2,
           "aaaaaaaaaaaaaaaa-99");
    int status = s_wait_exit(10000);
    for (int i = 0; i < TU_NSERVICES; i++)
        zsock_destroy(&pubs[i]);
    cr_assert_eq(status, 0, "%s", s_w.out);
    const char *out = s_w.out + before;
    const char *created = strstr(out, "OrderCreated"),
               *credit = strstr(out, "CreditReserved"),
               *stock = strstr(out, "StockReserved"),
               *orphan = strstr(out, "StockRejected");
    cr_assert(created && credit && stock && orphan, "%s", out);
    cr_assert(created < credit && credit < stock && stock < orphan, "not causal:\n%s",
              out);
    const char *first_mark = strstr(out, "cause not seen");
    cr_assert(first_mark > orphan, "an effect shown without its cause:\n%s", out);
    const char *end = strchr(orphan, '\n');
    const char *mark = strstr(orphan, "(cause not seen)");
    cr_assert(mark && (!end || mark < end), "the orphan is not marked:\n%s", out);
}
