/*  test_faults: what a user notices when a service's database cannot
    commit. The services run in-process as czmq actors on inproc://
    endpoints with file databases, over faultvfs (a shim VFS that fails
    writes or syncs of one database on demand), so the failed-commit paths
    are reached without root: a command of a failed batch is answered
    INTERNAL and nothing of it stays, the service goes on serving, a retry
    by request_id succeeds once, order numbers are never given twice (also
    across a restart), and a participant whose commit failed applies its
    peer's event again, exactly once, with its inbox caught up.
*/
#include "faultvfs.h"
#include "inproc.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_SETTLE_MS  15000 /* an order decided, an inbox caught up */
#define S_ORDERS     150   /* placed while every S_EVERY_K-th commit fails */
#define S_MORE       50    /* placed after the restart */
#define S_EVERY_K    7
#define S_RETRIES    20 /* tries of one request_id before the test gives up */
#define S_COMMIT_MSG "not done: the database could not commit"

static char s_dir[512];
static int s_saved_stderr = -1; /* while the services' log goes to a file */

/*  Sends the process's stderr, where the services log, to `path` until
    s_uncapture, so that a test can count their lines. */
static void s_capture(const char *path)
{
    fflush(stderr);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "cannot open %s", path);
    s_saved_stderr = dup(2);
    cr_assert_geq(s_saved_stderr, 0);
    cr_assert_eq(dup2(fd, 2), 2);
    close(fd);
}

static void s_uncapture(void)
{
    if (s_saved_stderr < 0)
        return;
    fflush(stderr);
    dup2(s_saved_stderr, 2);
    close(s_saved_stderr);
    s_saved_stderr = -1;
}

/*  The lines of file `path` that contain `needle`. */
static int s_count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static void s_setup(void)
{
    cr_assert_eq(faultvfs_install(), 0, "faultvfs could not be registered");
    cr_assert_eq(tu_tempdir(s_dir, sizeof s_dir), 0);
}

/*  Also when a test fails half-way: the faults are cleared first, so that
    the services close their databases cleanly. */
static void s_teardown(void)
{
    faultvfs_clear();
    inproc_fini();
    s_uncapture(); /* after the actors: they flush their logs as they stop */
    if (s_dir[0])
        tu_rmtree(s_dir);
    s_dir[0] = '\0';
}

TestSuite(faults, .init = s_setup, .fini = s_teardown, .timeout = 60);

/*  The three services, each with its file database "<dir>/<name>.db" (so
    that "<name>.db" targets one) and synchronous=FULL (the default, said
    here as the sync faults rely on it): every commit syncs the -wal. */
static void s_topo_init(inproc_topo_t *t)
{
    char db[600];
    snprintf(db, sizeof db, "%s/%%s.db", s_dir);
    inproc_topo_init(t, db);
    for (int i = 0; i < INPROC_NSVC; i++)
        inproc_set(&t->cfg[i], "sync", "full");
}

/*  Starts service `svc` of `t` and asserts that it is ready. */
static zactor_t *s_start(const inproc_topo_t *t, int svc)
{
    zactor_t *actor = NULL;
    cr_assert_eq(inproc_start(inproc_defs[svc], &t->cfg[svc], &actor), 0,
                 "%s did not start", inproc_names[svc]);
    return actor;
}

/*  Whether `reply` is the INTERNAL of a batch that could not commit;
    asserts that it is that when it is not ok: no other refusal is right
    here (a reused order number would be an INTERNAL of another message). */
static bool s_commit_failed(const eda_envelope_t *reply)
{
    if (reply->ok == 1)
        return false;
    char code[32] = "", message[256] = "";
    eda_get_str(&reply->error, "code", code, sizeof code);
    eda_get_str(&reply->error, "message", message, sizeof message);
    cr_assert_str_eq(code, "INTERNAL", "%s refused: %s: %s", reply->type, code, message);
    cr_assert_str_eq(message, S_COMMIT_MSG, "%s: INTERNAL, but not a failed commit: %s",
                     reply->type, message);
    return true;
}

/*  Sends `type` {customer_id|sku: key} (or {} when key is NULL) until it is
    answered ok: a read shares its batch, and so its failed commit, with
    whatever else came in with it, and is answered INTERNAL then. */
static void s_read(eda_client_t *c, const char *type, const char *field, const char *key,
                   eda_envelope_t *reply)
{
    int64_t deadline = zclock_mono() + S_SETTLE_MS;
    while (true) {
        msgpack_packer *pk = eda_client_begin(c, type, NULL);
        msgpack_pack_map(pk, key ? 1 : 0);
        if (key)
            eda_pack_kv_str(pk, field, key);
        inproc_call(c, reply);
        if (!s_commit_failed(reply))
            return;
        cr_assert_lt(zclock_mono(), deadline, "%s answered INTERNAL for %d ms", type,
                     S_SETTLE_MS);
    }
}

static uint64_t s_stat(eda_client_t *c, const char *key)
{
    eda_envelope_t reply;
    s_read(c, "Stats", NULL, NULL, &reply);
    return inproc_u64(&reply.data, key);
}

/*  Polls Stats until `key` reaches `want`; returns it. `what` says what a
    failure to get there means. */
static uint64_t s_poll_stat(eda_client_t *c, const char *key, uint64_t want,
                            const char *what)
{
    int64_t deadline = zclock_mono() + S_SETTLE_MS;
    while (true) {
        uint64_t v = s_stat(c, key);
        if (v >= want)
            return v;
        cr_assert_lt(zclock_mono(), deadline,
                     "%s: Stats %s is %llu after %d ms, not %llu", what, key,
                     (unsigned long long)v, S_SETTLE_MS, (unsigned long long)want);
        zclock_sleep(15); /* a poll interval, not a readiness guess */
    }
}

static void s_place(eda_client_t *c, const char *request_id, int64_t qty, int64_t price,
                    eda_envelope_t *reply)
{
    inproc_begin_place_order(c, request_id, "alice", "apple", qty, price, 0);
    inproc_call(c, reply);
}

/*  Places request_id until it is accepted, as a client does with INTERNAL,
    and writes the order's id. Counts the failed commits in *internals. */
static void s_place_retry(eda_client_t *c, const char *request_id, char *order_id,
                          int *internals)
{
    for (int i = 0; i < S_RETRIES; i++) {
        eda_envelope_t reply;
        s_place(c, request_id, 1, 100, &reply);
        if (s_commit_failed(&reply)) {
            (*internals)++;
            continue;
        }
        cr_assert_eq(eda_get_str(&reply.data, "order_id", order_id, EDA_NAME_MAX + 1), 0);
        return;
    }
    cr_assert_fail("%s still INTERNAL after %d tries", request_id, S_RETRIES);
}

/*  The number n of an order id o-<12 hex>-<n>, asserting that form. */
static long long s_number(const char *id)
{
    cr_assert_eq(strncmp(id, "o-", 2), 0, "order id '%s'", id);
    for (int i = 2; i < 14; i++)
        cr_assert(strchr("0123456789abcdef", id[i]) && id[i], "order id '%s'", id);
    cr_assert_eq(id[14], '-', "order id '%s'", id);
    char *end;
    long long n = strtoll(id + 15, &end, 10);
    cr_assert(n > 0 && *end == '\0', "order id '%s'", id);
    return n;
}

/*  Every order id ListOrders holds, oldest first, paging with `next`. */
static int s_list(eda_client_t *c, char (*ids)[EDA_NAME_MAX + 1], int max)
{
    int n = 0;
    uint64_t next = 0;
    do
        n += inproc_list_orders(c, NULL, 10000, next, ids + n, max - n, &next);
    while (next);
    return n;
}

/*  GetOrder's status of `order_id`. */
static void s_order_status(eda_client_t *c, const char *order_id, char *status)
{
    eda_envelope_t reply;
    inproc_get_order(c, order_id, &reply);
    cr_assert_eq(eda_get_str(&reply.data, "status", status, 16), 0);
}

/* --- a command whose commit fails -------------------------------------------- */

/*  PlaceOrder with request_id r-1 while every write of order-service's
    database fails (`write_rc`) or, when syncs, while its next sync fails. */
static void s_place_fails_then_succeeds(bool syncs, int write_rc)
{
    inproc_topo_t t;
    s_topo_init(&t);
    char log[700];
    snprintf(log, sizeof log, "%s/order-service.log", s_dir);
    s_capture(log);
    zactor_t *order = s_start(&t, INPROC_ORDER);
    eda_client_t *c = inproc_client(t.commands[INPROC_ORDER]);
    cr_assert_eq(s_stat(c, "commits_failed"), 0);

    faultvfs_target("order-service.db");
    if (syncs)
        faultvfs_fail_syncs(1);
    else
        faultvfs_fail_writes(FAULTVFS_ALWAYS, write_rc);
    faultvfs_counts_t before = faultvfs_injected();
    eda_envelope_t reply;
    s_place(c, "r-1", 2, 150, &reply);
    cr_assert(s_commit_failed(&reply), "PlaceOrder was accepted although its commit "
                                       "could not be written");
    faultvfs_counts_t after = faultvfs_injected();
    cr_assert_gt(syncs ? after.syncs - before.syncs : after.writes - before.writes, 0);

    /* The service counted it, goes on answering, and kept nothing of it. */
    cr_assert_eq(s_stat(c, "commits_failed"), 1);
    msgpack_pack_map(eda_client_begin(c, "Ping", NULL), 0);
    inproc_call(c, &reply);
    inproc_expect_ok(&reply);
    char ids[4][EDA_NAME_MAX + 1];
    cr_assert_eq(s_list(c, ids, 4), 0, "the refused order was kept");
    cr_assert_eq(s_stat(c, "last_seq"), 0, "the refused order's event was kept");

    /* The client's retry by request_id succeeds, once. */
    faultvfs_clear();
    char id[EDA_NAME_MAX + 1], again[EDA_NAME_MAX + 1], status[16];
    s_place(c, "r-1", 2, 150, &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(eda_get_str(&reply.data, "order_id", id, sizeof id), 0);
    s_place(c, "r-1", 2, 150, &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(eda_get_str(&reply.data, "order_id", again, sizeof again), 0);
    cr_assert_str_eq(again, id, "a repeated request_id made a second order");
    cr_assert_eq(s_list(c, ids, 4), 1);
    cr_assert_str_eq(ids[0], id);
    s_order_status(c, id, status);
    cr_assert_str_eq(status, "PENDING"); /* its peers are not running */
    cr_assert_eq(s_number(id), 1, "order %s: the failed batch kept its number", id);
    cr_assert_eq(s_stat(c, "commits_failed"), 1);

    /* The operator reads one error line for the one failed commit. */
    inproc_stop(&order);
    s_uncapture();
    int lines = s_count_lines(log, "commit failed");
    cr_assert_eq(lines, 1, "%d lines say 'commit failed' for one failed commit", lines);
}

Test(faults, place_order_whose_write_fails_answers_internal_and_a_retry_succeeds)
{
    s_place_fails_then_succeeds(false, SQLITE_IOERR_WRITE);
}

Test(faults, place_order_on_a_full_disk_answers_internal_and_a_retry_succeeds)
{
    s_place_fails_then_succeeds(false, SQLITE_FULL);
}

Test(faults, place_order_whose_fsync_fails_answers_internal_and_a_retry_succeeds)
{
    s_place_fails_then_succeeds(true, 0);
}

/* --- order numbers ---------------------------------------------------------- */

/*  Asserts that the n ids are distinct, in number too, and that ListOrders
    holds each of them once and nothing else. */
static void s_check_ids(eda_client_t *c, char (*ids)[EDA_NAME_MAX + 1], int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            cr_assert_str_neq(ids[i], ids[j], "order id %s given twice", ids[i]);
            cr_assert_neq(s_number(ids[i]), s_number(ids[j]),
                          "order number reused: %s and %s", ids[i], ids[j]);
        }
    static char listed[S_ORDERS + S_MORE + 8][EDA_NAME_MAX + 1];
    int nlisted = s_list(c, listed, S_ORDERS + S_MORE + 8);
    cr_assert_eq(nlisted, n, "ListOrders holds %d orders, %d were accepted", nlisted, n);
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < nlisted; j++)
            seen += strcmp(ids[i], listed[j]) == 0;
        cr_assert_eq(seen, 1, "order %s is listed %d times", ids[i], seen);
    }
}

Test(faults, order_numbers_are_never_reused_after_failed_commits_and_a_restart)
{
    inproc_topo_t t;
    s_topo_init(&t);
    zactor_t *order = s_start(&t, INPROC_ORDER);
    eda_client_t *c = inproc_client(t.commands[INPROC_ORDER]);
    static char ids[S_ORDERS + S_MORE + 1][EDA_NAME_MAX + 1];
    int n = 0, internals = 0;
    faultvfs_counts_t before = faultvfs_injected();

    faultvfs_target("order-service.db");
    faultvfs_fail_every_sync(S_EVERY_K);
    for (; n < S_ORDERS; n++) {
        char request[32];
        snprintf(request, sizeof request, "req-%d", n);
        s_place_retry(c, request, ids[n], &internals);
    }
    /* Each INTERNAL was a fault of ours (s_commit_failed: of a commit), not
       a number taken twice; a failed commit is counted. */
    cr_assert_gt(internals, 0, "no commit failed: the faults missed order-service");
    cr_assert_leq(internals, (int)(faultvfs_injected().syncs - before.syncs));
    cr_assert_geq(s_stat(c, "commits_failed"), (uint64_t)internals);
    s_check_ids(c, ids, n);

    /* The last batch before the stop fails: the number it took must not
       stay taken in memory, nor come back. The every-k-th fault stays armed
       across the restart. */
    faultvfs_fail_syncs(1);
    eda_envelope_t reply;
    s_place(c, "req-pending", 1, 100, &reply);
    cr_assert(s_commit_failed(&reply));
    faultvfs_fail_syncs(0);
    inproc_stop(&order);
    order = s_start(&t, INPROC_ORDER);
    c = inproc_client(t.commands[INPROC_ORDER]); /* inproc does not reconnect */

    /* Repeated requests name their first orders across the restart. */
    char again[EDA_NAME_MAX + 1];
    s_place_retry(c, "req-0", again, &internals);
    cr_assert_str_eq(again, ids[0]);
    s_place_retry(c, "req-149", again, &internals);
    cr_assert_str_eq(again, ids[149]);

    s_place_retry(c, "req-pending", ids[n++], &internals);
    for (int i = 0; i < S_MORE; i++, n++) {
        char request[32];
        snprintf(request, sizeof request, "req-%d", S_ORDERS + i);
        s_place_retry(c, request, ids[n], &internals);
    }
    faultvfs_clear();
    cr_assert_leq(internals, (int)(faultvfs_injected().syncs - before.syncs));
    s_check_ids(c, ids, n);
}

/* --- a participant whose commit fails ----------------------------------------- */

/*  With the three services running, customer-service's database fails
    (every write, or every sync) while an order's OrderCreated arrives and
    for a while after, and is then mended. */
static void s_participant_applies_again(bool syncs)
{
    inproc_topo_t t;
    s_topo_init(&t);
    eda_client_t *c[INPROC_NSVC];
    for (int i = 0; i < INPROC_NSVC; i++) {
        s_start(&t, i);
        c[i] = inproc_client(t.commands[i]);
    }
    inproc_create_customer(c[INPROC_CUSTOMER], "alice", 1000);
    inproc_add_stock(c[INPROC_INVENTORY], "apple", 10);
    uint64_t failed = s_stat(c[INPROC_CUSTOMER], "commits_failed");

    faultvfs_target("customer-service.db");
    if (syncs)
        faultvfs_fail_syncs(FAULTVFS_ALWAYS);
    else
        faultvfs_fail_writes(FAULTVFS_ALWAYS, SQLITE_IOERR_WRITE);
    eda_envelope_t reply;
    char order_id[EDA_NAME_MAX + 1], status[16];
    s_place(c[INPROC_ORDER], "c-1", 2, 150, &reply); /* total 300 */
    inproc_expect_ok(&reply);
    cr_assert_eq(eda_get_str(&reply.data, "order_id", order_id, sizeof order_id), 0);

    /* The event's batch fails, and so does its replay at least once. */
    s_poll_stat(c[INPROC_CUSTOMER], "commits_failed", failed + 2,
                "customer-service did not try the event again after its batch failed");
    s_order_status(c[INPROC_ORDER], order_id, status);
    cr_assert_str_eq(status, "PENDING", "decided without the customer's credit");
    s_read(c[INPROC_CUSTOMER], "GetCustomer", "customer_id", "alice", &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(inproc_u64(&reply.data, "reserved"), 0, "a failed batch held credit");
    faultvfs_counts_t n = faultvfs_injected();
    cr_assert_gt(syncs ? n.syncs : n.writes, 0);

    /* Mended: the event comes again and is applied once. */
    faultvfs_clear();
    int64_t deadline = zclock_mono() + S_SETTLE_MS;
    while (s_order_status(c[INPROC_ORDER], order_id, status), streq(status, "PENDING")) {
        cr_assert_lt(zclock_mono(), deadline, "order still PENDING after %d ms",
                     S_SETTLE_MS);
        zclock_sleep(15); /* a poll interval, not a readiness guess */
    }
    cr_assert_str_eq(status, "APPROVED");

    s_read(c[INPROC_ORDER], "Stats", NULL, NULL, &reply);
    uint64_t order_seq = inproc_u64(&reply.data, "last_seq");
    char order_epoch[EDA_NAME_MAX + 1], inbox_epoch[EDA_NAME_MAX + 1];
    cr_assert_eq(eda_get_str(&reply.data, "epoch", order_epoch, sizeof order_epoch), 0);
    deadline = zclock_mono() + S_SETTLE_MS;
    while (true) {
        s_read(c[INPROC_CUSTOMER], "Stats", NULL, NULL, &reply);
        const msgpack_object *peers = eda_map_get(&reply.data, "peers");
        const msgpack_object *inbox = peers ? eda_map_get(peers, "order-service") : NULL;
        cr_assert_not_null(inbox, "Stats peers lacks order-service");
        cr_assert_eq(eda_get_str(inbox, "epoch", inbox_epoch, sizeof inbox_epoch), 0);
        uint64_t seq = inproc_u64(inbox, "last_seq");
        if (streq(inbox_epoch, order_epoch) && seq >= order_seq) {
            cr_assert_eq(seq, order_seq);
            break;
        }
        cr_assert_lt(zclock_mono(), deadline,
                     "customer-service's inbox for order-service is at %s/%llu after "
                     "%d ms, not %s/%llu",
                     inbox_epoch, (unsigned long long)seq, S_SETTLE_MS, order_epoch,
                     (unsigned long long)order_seq);
        zclock_sleep(15);
    }
    s_read(c[INPROC_CUSTOMER], "GetCustomer", "customer_id", "alice", &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(inproc_u64(&reply.data, "reserved"), 300,
                 "credit held %llu, not once 300",
                 (unsigned long long)inproc_u64(&reply.data, "reserved"));
    cr_assert_eq(inproc_u64(&reply.data, "available"), 700);
    s_read(c[INPROC_INVENTORY], "GetStock", "sku", "apple", &reply);
    inproc_expect_ok(&reply);
    cr_assert_eq(inproc_u64(&reply.data, "reserved"), 2);
}

Test(faults, participant_whose_write_fails_applies_the_event_again_once)
{
    s_participant_applies_again(false);
}

Test(faults, participant_whose_fsync_fails_applies_the_event_again_once)
{
    s_participant_applies_again(true);
}

/*  A checkpoint that fails (the database file cannot be synced) is logged
    and counted in Stats; the service goes on committing meanwhile, its WAL
    keeping every commit. */
Test(faults, a_failed_checkpoint_is_logged_and_the_service_goes_on)
{
    inproc_topo_t t;
    s_topo_init(&t);
    /* NORMAL: a commit does not sync, a checkpoint does. */
    inproc_set(&t.cfg[INPROC_CUSTOMER], "sync", "normal");
    char log[700];
    snprintf(log, sizeof log, "%s/services.log", s_dir);
    s_capture(log);
    s_start(&t, INPROC_CUSTOMER);
    eda_client_t *c = inproc_client(t.commands[INPROC_CUSTOMER]);
    faultvfs_target("customer-service.db");
    faultvfs_fail_syncs(FAULTVFS_ALWAYS);

    int customers = 0;
    while (s_stat(c, "wal_pages") < EDA_CHECKPOINT_PAGES) {
        for (int i = 0; i < 50; i++) {
            char id[32];
            snprintf(id, sizeof id, "c%d", customers++);
            inproc_create_customer(c, id, 100);
        }
        cr_assert_lt(customers, 20000, "the WAL does not grow");
    }
    s_poll_stat(c, "wal_checkpoint_failures", 1, "no checkpoint failed");
    int64_t deadline = zclock_mono() + S_SETTLE_MS;
    while (s_count_lines(log, "WAL checkpoint failed") == 0 && zclock_mono() < deadline)
        zclock_sleep(15); /* a poll interval */
    cr_assert_geq(s_count_lines(log, "WAL checkpoint failed"), 1,
                  "no log line for the failed checkpoint");
    cr_assert_eq(s_stat(c, "commits_failed"), 0);

    /* Still serving, and what it committed is there. */
    faultvfs_clear();
    inproc_create_customer(c, "after", 5);
    eda_envelope_t reply;
    s_read(c, "GetCustomer", "customer_id", "c0", &reply);
    inproc_expect_ok(&reply);
}
