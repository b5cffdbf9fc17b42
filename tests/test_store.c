/*  test_store: the SQLite store of DESIGN section 4: the event log with its
    gap-free seq and epoch, transactions and savepoints, replay, the inbox.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eda_store.h"
#include "testutil.h"

static char s_dir[512];
static char s_path[600];
static char s_mount[700]; /* a tmpfs of the test's own, "" when none */

static void s_setup(void)
{
    cr_assert_eq(tu_tempdir(s_dir, sizeof s_dir), 0);
    snprintf(s_path, sizeof s_path, "%s/test.db", s_dir);
}

static void s_teardown(void)
{
    if (s_mount[0]) {
        char cmd[800];
        snprintf(cmd, sizeof cmd, "umount '%s'", s_mount);
        if (system(cmd) != 0)
            fprintf(stderr, "test_store: could not unmount %s\n", s_mount);
        s_mount[0] = '\0';
    }
    tu_rmtree(s_dir);
}

static eda_store_t *s_open(const char *path)
{
    char why[512] = "";
    eda_store_t *store = eda_store_new(path, NULL, EDA_SYNC_FULL, why, sizeof why);
    cr_assert_not_null(store, "cannot open %s: %s", path, why);
    return store;
}

static bool s_is_hex_epoch(const char *epoch)
{
    if (strlen(epoch) != EDA_EPOCH_LEN)
        return false;
    for (const char *c = epoch; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

/*  Appends one event whose body is "body-<n>" in its own transaction. */
static void s_append_one(eda_store_t *store, const char *body)
{
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, body, strlen(body)), 0);
    cr_assert_eq(eda_store_commit(store), 0);
}

/*  What a replay passed to its callback. */
#define REPLAY_MAX 64
typedef struct {
    size_t n;
    uint64_t seq[REPLAY_MAX];
    char body[REPLAY_MAX][128];
    size_t len[REPLAY_MAX];
} replayed_t;

static void s_collect(uint64_t seq, const void *body, size_t len, void *arg)
{
    replayed_t *r = arg;
    cr_assert(r->n < REPLAY_MAX);
    cr_assert(len < sizeof r->body[0]);
    r->seq[r->n] = seq;
    memcpy(r->body[r->n], body, len);
    r->body[r->n][len] = '\0';
    r->len[r->n] = len;
    r->n++;
}

static replayed_t s_replay(eda_store_t *store, uint64_t after, uint32_t limit,
                           size_t max_bytes)
{
    replayed_t r = {.n = 0};
    int n = eda_store_replay(store, after, limit, max_bytes, s_collect, &r);
    cr_assert_eq(n, (int)r.n, "replay returns the number of events passed");
    return r;
}

TestSuite(store, .init = s_setup, .fini = s_teardown);

Test(store, new_file_has_a_hex_epoch_and_an_empty_log)
{
    eda_store_t *store = s_open(s_path);
    cr_assert(s_is_hex_epoch(eda_store_epoch(store)), "epoch '%s'",
              eda_store_epoch(store));
    cr_assert_eq(eda_store_next_seq(store), 1);
    cr_assert_eq(eda_store_committed_seq(store), 0);
    cr_assert_not(eda_store_in_txn(store));
    cr_assert_not_null(eda_store_db(store));
    replayed_t r = s_replay(store, 0, 100, 1 << 20);
    cr_assert_eq(r.n, 0);
    eda_store_destroy(&store);
    cr_assert_null(store, "destroy nulls the pointer");
    eda_store_destroy(&store); /* idempotent */
    cr_assert_eq(access(s_path, F_OK), 0, "the file was created");
}

Test(store, epoch_survives_reopen)
{
    eda_store_t *store = s_open(s_path);
    char epoch[EDA_EPOCH_LEN + 1];
    snprintf(epoch, sizeof epoch, "%s", eda_store_epoch(store));
    s_append_one(store, "one");
    eda_store_destroy(&store);

    store = s_open(s_path);
    cr_assert_str_eq(eda_store_epoch(store), epoch);
    eda_store_destroy(&store);
    store = s_open(s_path);
    cr_assert_str_eq(eda_store_epoch(store), epoch);
    eda_store_destroy(&store);
}

/*  A new epoch (a log that lost commits): rolled back, nothing changes;
    committed, the log is empty under a new epoch that survives a reopen,
    and seqs start again from 1. */
Test(store, new_epoch_empties_the_log_and_rolls_back_whole)
{
    eda_store_t *store = s_open(s_path);
    char epoch[EDA_EPOCH_LEN + 1];
    snprintf(epoch, sizeof epoch, "%s", eda_store_epoch(store));
    s_append_one(store, "one");
    s_append_one(store, "two");

    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_new_epoch(store), 0);
    cr_assert_str_neq(eda_store_epoch(store), epoch);
    cr_assert_eq(eda_store_next_seq(store), 1);
    cr_assert_eq(eda_store_rollback(store), 0);
    cr_assert_str_eq(eda_store_epoch(store), epoch, "a rollback keeps the old epoch");
    cr_assert_eq(eda_store_next_seq(store), 3);
    cr_assert_eq(s_replay(store, 0, 100, 1 << 20).n, 2);

    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_new_epoch(store), 0);
    cr_assert_eq(eda_store_append(store, "Carried", NULL, "c", 1), 0);
    cr_assert_eq(eda_store_commit(store), 0);
    char fresh[EDA_EPOCH_LEN + 1];
    snprintf(fresh, sizeof fresh, "%s", eda_store_epoch(store));
    cr_assert(s_is_hex_epoch(fresh) && strcmp(fresh, epoch) != 0);
    cr_assert_eq(eda_store_committed_seq(store), 1);
    replayed_t r = s_replay(store, 0, 100, 1 << 20);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.seq[0], 1);
    cr_assert_str_eq(r.body[0], "c");
    eda_store_destroy(&store);

    store = s_open(s_path);
    cr_assert_str_eq(eda_store_epoch(store), fresh);
    cr_assert_eq(eda_store_next_seq(store), 2);
    eda_store_destroy(&store);
}

/*  One order's events through the index, and a log made by a version
    without it gets the column on open. */
Test(store, replay_order_reads_one_orders_events)
{
    sqlite3 *raw;
    cr_assert_eq(sqlite3_open(s_path, &raw), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(raw,
                              "CREATE TABLE eda_event_log (seq INTEGER PRIMARY KEY,"
                              " type TEXT NOT NULL, body BLOB NOT NULL);"
                              "INSERT INTO eda_event_log VALUES (1, 'Old', 'old');",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(raw);
    eda_store_t *store = s_open(s_path);
    cr_assert_eq(eda_store_begin(store), 0);
    const char *orders[] = {"o-1", "o-2", NULL, "o-1", "o-10"};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(eda_store_append(store, "TestEvent", orders[i], "e", 1), 0);
    cr_assert_eq(eda_store_commit(store), 0);
    replayed_t r = {.n = 0};
    cr_assert_eq(
        eda_store_replay_order(store, "o-1", 0, 100, 100, 1 << 20, s_collect, &r), 2);
    cr_assert(r.seq[0] == 2 && r.seq[1] == 5);
    r.n = 0;
    cr_assert_eq(
        eda_store_replay_order(store, "o-1", 2, 100, 100, 1 << 20, s_collect, &r), 1);
    cr_assert_eq(r.seq[0], 5);
    r.n = 0;
    cr_assert_eq(eda_store_replay_order(store, "o-1", 0, 4, 100, 1 << 20, s_collect, &r),
                 1, "until_seq bounds it");
    r.n = 0;
    cr_assert_eq(eda_store_replay_order(store, "o-1", 0, 100, 1, 1 << 20, s_collect, &r),
                 1, "limit bounds it");
    cr_assert_eq(s_replay(store, 0, 100, 1 << 20).n, 6, "the old event is kept");
    eda_store_destroy(&store);
}

Test(store, deleted_file_gives_a_new_epoch)
{
    eda_store_t *store = s_open(s_path);
    char epoch[EDA_EPOCH_LEN + 1];
    snprintf(epoch, sizeof epoch, "%s", eda_store_epoch(store));
    s_append_one(store, "one");
    eda_store_destroy(&store);

    char extra[700];
    unlink(s_path);
    snprintf(extra, sizeof extra, "%s-wal", s_path);
    unlink(extra);
    snprintf(extra, sizeof extra, "%s-shm", s_path);
    unlink(extra);

    store = s_open(s_path);
    cr_assert(s_is_hex_epoch(eda_store_epoch(store)));
    cr_assert_str_neq(eda_store_epoch(store), epoch, "a new log needs a new epoch");
    cr_assert_eq(eda_store_next_seq(store), 1, "and starts again from seq 1");
    eda_store_destroy(&store);
}

Test(store, memory_databases_work_and_differ)
{
    eda_store_t *a = s_open(":memory:");
    eda_store_t *b = s_open(":memory:");
    cr_assert(s_is_hex_epoch(eda_store_epoch(a)));
    cr_assert(s_is_hex_epoch(eda_store_epoch(b)));
    cr_assert_str_neq(eda_store_epoch(a), eda_store_epoch(b));
    s_append_one(a, "in memory");
    cr_assert_eq(eda_store_committed_seq(a), 1);
    replayed_t r = s_replay(a, 0, 10, 1 << 20);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.body[0], "in memory");
    cr_assert_eq(s_replay(b, 0, 10, 1 << 20).n, 0, "each memory database is its own");
    eda_store_destroy(&a);
    eda_store_destroy(&b);
}

Test(store, path_in_a_missing_folder_fails_with_a_reason)
{
    char path[700];
    snprintf(path, sizeof path, "%s/no/such/folder/x.db", s_dir);
    char why[512] = "";
    eda_store_t *store = eda_store_new(path, NULL, EDA_SYNC_FULL, why, sizeof why);
    cr_assert_null(store);
    cr_assert(why[0] != '\0', "a reason is given");
    cr_assert_not_null(strstr(why, path), "the reason names the path: %s", why);
    cr_assert_eq(access(path, F_OK), -1, "nothing was created");
}

Test(store, bad_schema_fails_with_a_reason_and_good_schema_runs)
{
    char why[512] = "";
    eda_store_t *store =
        eda_store_new(s_path, "CREATE TABLEX nonsense;", EDA_SYNC_FULL, why, sizeof why);
    cr_assert_null(store);
    cr_assert(why[0] != '\0');

    store =
        eda_store_new(s_path, "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY);",
                      EDA_SYNC_FULL, why, sizeof why);
    cr_assert_not_null(store, "%s", why);
    sqlite3_stmt *ins = eda_store_prepare(store, "INSERT INTO orders VALUES (?)");
    cr_assert_not_null(ins);
    cr_assert_null(eda_store_prepare(store, "SELECT nope FROM nowhere"));
    cr_assert_eq(eda_store_begin(store), 0);
    sqlite3_bind_text(ins, 1, "o-1", -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(ins), SQLITE_DONE);
    sqlite3_reset(ins);
    cr_assert_eq(eda_store_commit(store), 0);
    eda_store_destroy(&store);

    /* the schema runs again on reopen without harm, and the row is there */
    store =
        eda_store_new(s_path, "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY);",
                      EDA_SYNC_FULL, why, sizeof why);
    cr_assert_not_null(store, "%s", why);
    sqlite3_stmt *count = eda_store_prepare(store, "SELECT COUNT(*) FROM orders");
    cr_assert_not_null(count);
    cr_assert_eq(sqlite3_step(count), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(count, 0), 1);
    sqlite3_reset(count);
    eda_store_destroy(&store);
}

/* --- the event log ------------------------------------------------------- */

Test(store, append_assigns_1_2_3_and_survives_reopen)
{
    eda_store_t *store = s_open(s_path);
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert(eda_store_in_txn(store));
    const char *bodies[] = {"first", "second", "third"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(eda_store_next_seq(store), (uint64_t)i + 1);
        cr_assert_eq(
            eda_store_append(store, "TestEvent", NULL, bodies[i], strlen(bodies[i])), 0);
    }
    cr_assert_eq(eda_store_next_seq(store), 4);
    cr_assert_eq(eda_store_committed_seq(store), 0, "nothing is committed yet");
    cr_assert_eq(eda_store_commit(store), 0);
    cr_assert_not(eda_store_in_txn(store));
    cr_assert_eq(eda_store_committed_seq(store), 3);

    replayed_t r = s_replay(store, 0, 100, 1 << 20);
    cr_assert_eq(r.n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r.seq[i], (uint64_t)i + 1);
        cr_assert_str_eq(r.body[i], bodies[i]);
    }
    eda_store_destroy(&store);

    store = s_open(s_path);
    cr_assert_eq(eda_store_committed_seq(store), 3);
    cr_assert_eq(eda_store_next_seq(store), 4);
    r = s_replay(store, 0, 100, 1 << 20);
    cr_assert_eq(r.n, 3);
    cr_assert_str_eq(r.body[2], "third");
    eda_store_destroy(&store);
}

Test(store, binary_bodies_are_kept_exactly)
{
    eda_store_t *store = s_open(s_path);
    const char body[] = {'\x81', '\0', '\xff', '\0', 'x'};
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_append(store, "Bin", NULL, body, sizeof body), 0);
    cr_assert_eq(eda_store_commit(store), 0);
    replayed_t r = s_replay(store, 0, 10, 1 << 20);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.len[0], sizeof body);
    cr_assert_eq(memcmp(r.body[0], body, sizeof body), 0);
    eda_store_destroy(&store);
}

Test(store, rollback_rewinds_next_seq_and_the_rows_vanish)
{
    eda_store_t *store = s_open(s_path);
    s_append_one(store, "kept");
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "lost-1", 6), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "lost-2", 6), 0);
    cr_assert_eq(eda_store_next_seq(store), 4);
    cr_assert_eq(eda_store_rollback(store), 0);
    cr_assert_not(eda_store_in_txn(store));
    cr_assert_eq(eda_store_next_seq(store), 2, "the seq numbers are given again");
    cr_assert_eq(eda_store_committed_seq(store), 1);

    replayed_t r = s_replay(store, 0, 100, 1 << 20);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.body[0], "kept");

    /* the next event fills seq 2: no gap */
    s_append_one(store, "after");
    r = s_replay(store, 0, 100, 1 << 20);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.seq[1], 2);
    cr_assert_str_eq(r.body[1], "after");
    eda_store_destroy(&store);
}

Test(store, savepoint_and_rollback_to_undo_only_that_unit)
{
    eda_store_t *store = s_open(s_path);
    cr_assert_eq(eda_store_begin(store), 0);

    /* message 1: kept */
    cr_assert_eq(eda_store_savepoint(store), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "m1", 2), 0);
    cr_assert_eq(eda_store_inbox_put(store, "peer-a", "aaaaaaaaaaaaaaaa", 1), 0);
    cr_assert_eq(eda_store_release(store), 0);

    /* message 2: fails half-way and is undone */
    cr_assert_eq(eda_store_savepoint(store), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "m2", 2), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "m2b", 3), 0);
    cr_assert_eq(eda_store_inbox_put(store, "peer-a", "aaaaaaaaaaaaaaaa", 2), 0);
    cr_assert_eq(eda_store_next_seq(store), 4);
    cr_assert_eq(eda_store_rollback_to(store), 0);
    cr_assert_eq(eda_store_next_seq(store), 2, "only message 2's seqs are given back");
    cr_assert(eda_store_in_txn(store), "the batch goes on");

    /* message 3: kept, takes seq 2 */
    cr_assert_eq(eda_store_savepoint(store), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "m3", 2), 0);
    cr_assert_eq(eda_store_release(store), 0);
    cr_assert_eq(eda_store_commit(store), 0);
    cr_assert_eq(eda_store_committed_seq(store), 2);

    replayed_t r = s_replay(store, 0, 100, 1 << 20);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.seq[0], 1);
    cr_assert_str_eq(r.body[0], "m1");
    cr_assert_eq(r.seq[1], 2);
    cr_assert_str_eq(r.body[1], "m3");
    char epoch[EDA_EPOCH_LEN + 1];
    uint64_t last = 99;
    cr_assert_eq(eda_store_inbox_get(store, "peer-a", epoch, sizeof epoch, &last), 0);
    cr_assert_eq(last, 1, "message 2's checkpoint was undone too");
    eda_store_destroy(&store);
}

Test(store, rollback_to_twice_in_one_batch)
{
    eda_store_t *store = s_open(s_path);
    cr_assert_eq(eda_store_begin(store), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(eda_store_savepoint(store), 0);
        cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "undone", 6), 0);
        cr_assert_eq(eda_store_rollback_to(store), 0);
    }
    cr_assert_eq(eda_store_next_seq(store), 1);
    cr_assert_eq(eda_store_commit(store), 0);
    cr_assert_eq(eda_store_committed_seq(store), 0);
    cr_assert_eq(s_replay(store, 0, 10, 1 << 20).n, 0);
    eda_store_destroy(&store);
}

Test(store, committed_seq_follows_commit_and_rollback)
{
    eda_store_t *store = s_open(s_path);
    cr_assert_eq(eda_store_committed_seq(store), 0);
    s_append_one(store, "a");
    cr_assert_eq(eda_store_committed_seq(store), 1);
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "b", 1), 0);
    cr_assert_eq(eda_store_committed_seq(store), 1,
                 "an open transaction is not committed");
    cr_assert_eq(eda_store_rollback(store), 0);
    cr_assert_eq(eda_store_committed_seq(store), 1);
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "c", 1), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "d", 1), 0);
    cr_assert_eq(eda_store_commit(store), 0);
    cr_assert_eq(eda_store_committed_seq(store), 3);
    /* a commit with no events changes nothing */
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_commit(store), 0);
    cr_assert_eq(eda_store_committed_seq(store), 3);
    eda_store_destroy(&store);
}

Test(store, open_transaction_is_rolled_back_on_destroy)
{
    eda_store_t *store = s_open(s_path);
    s_append_one(store, "kept");
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "lost", 4), 0);
    cr_assert_eq(eda_store_inbox_put(store, "peer-a", "aaaaaaaaaaaaaaaa", 9), 0);
    eda_store_destroy(&store);

    store = s_open(s_path);
    cr_assert_eq(eda_store_committed_seq(store), 1);
    cr_assert_eq(eda_store_next_seq(store), 2);
    char epoch[EDA_EPOCH_LEN + 1];
    uint64_t last = 99;
    cr_assert_eq(eda_store_inbox_get(store, "peer-a", epoch, sizeof epoch, &last), 0);
    cr_assert_eq(last, 0);
    eda_store_destroy(&store);
}

/* --- replay -------------------------------------------------------------- */

/*  Ten events of 100 bytes each, seq 1..10, body starting with "e<seq>". */
static eda_store_t *s_ten_events(void)
{
    eda_store_t *store = s_open(s_path);
    cr_assert_eq(eda_store_begin(store), 0);
    for (int i = 1; i <= 10; i++) {
        char body[100];
        memset(body, '.', sizeof body);
        int n = snprintf(body, sizeof body, "e%d", i);
        body[n] = '.';
        cr_assert_eq(eda_store_append(store, "TestEvent", NULL, body, sizeof body), 0);
    }
    cr_assert_eq(eda_store_commit(store), 0);
    return store;
}

Test(store, replay_after_seq_and_limit)
{
    eda_store_t *store = s_ten_events();
    replayed_t r = s_replay(store, 3, 4, 1 << 20);
    cr_assert_eq(r.n, 4);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(r.seq[i], 4 + i);
    cr_assert_eq(strncmp(r.body[0], "e4.", 3), 0);
    cr_assert_eq(r.len[0], 100);

    r = s_replay(store, 0, 1000, 1 << 20);
    cr_assert_eq(r.n, 10, "everything");
    r = s_replay(store, 8, 100, 1 << 20);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.seq[0], 9);
    cr_assert_eq(r.seq[1], 10);
    cr_assert_eq(s_replay(store, 10, 100, 1 << 20).n, 0, "nothing after the last");
    cr_assert_eq(s_replay(store, 500, 100, 1 << 20).n, 0, "nothing past the end");
    cr_assert_eq(s_replay(store, 0, 0, 1 << 20).n, 0, "limit 0 passes nothing");
    eda_store_destroy(&store);
}

Test(store, replay_max_bytes)
{
    eda_store_t *store = s_ten_events();
    replayed_t r = s_replay(store, 0, 100, 250);
    cr_assert_eq(r.n, 2, "two bodies of 100 fit in 250, not three");
    r = s_replay(store, 0, 100, 300);
    cr_assert_eq(r.n, 3, "exactly max_bytes is allowed");
    r = s_replay(store, 5, 100, 10);
    cr_assert_eq(r.n, 1, "the first event is passed even over max_bytes");
    cr_assert_eq(r.seq[0], 6);
    r = s_replay(store, 0, 100, 0);
    cr_assert_eq(r.n, 1);
    eda_store_destroy(&store);
}

Test(store, replay_skips_uncommitted_after_rollback)
{
    eda_store_t *store = s_ten_events();
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_append(store, "TestEvent", NULL, "x", 1), 0);
    cr_assert_eq(eda_store_rollback(store), 0);
    cr_assert_eq(s_replay(store, 0, 100, 1 << 20).n, 10);
    eda_store_destroy(&store);
}

/* --- inbox --------------------------------------------------------------- */

Test(store, inbox_of_an_unknown_peer_is_empty)
{
    eda_store_t *store = s_open(s_path);
    char epoch[EDA_EPOCH_LEN + 1] = "junk";
    uint64_t last = 99;
    cr_assert_eq(eda_store_inbox_get(store, "nobody", epoch, sizeof epoch, &last), 0);
    cr_assert_str_eq(epoch, "");
    cr_assert_eq(last, 0);
    eda_store_destroy(&store);
}

Test(store, inbox_round_trip_and_persistence)
{
    eda_store_t *store = s_open(s_path);
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_inbox_put(store, "order-service", "0123456789abcdef", 41), 0);
    cr_assert_eq(eda_store_inbox_put(store, "customer-service", "fedcba9876543210", 7),
                 0);
    cr_assert_eq(eda_store_commit(store), 0);

    char epoch[EDA_EPOCH_LEN + 1];
    uint64_t last = 0;
    cr_assert_eq(eda_store_inbox_get(store, "order-service", epoch, sizeof epoch, &last),
                 0);
    cr_assert_str_eq(epoch, "0123456789abcdef");
    cr_assert_eq(last, 41);

    /* a later put replaces the checkpoint */
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_inbox_put(store, "order-service", "0123456789abcdef", 42), 0);
    cr_assert_eq(eda_store_commit(store), 0);
    eda_store_destroy(&store);

    store = s_open(s_path);
    cr_assert_eq(eda_store_inbox_get(store, "order-service", epoch, sizeof epoch, &last),
                 0);
    cr_assert_str_eq(epoch, "0123456789abcdef");
    cr_assert_eq(last, 42);
    cr_assert_eq(
        eda_store_inbox_get(store, "customer-service", epoch, sizeof epoch, &last), 0);
    cr_assert_str_eq(epoch, "fedcba9876543210");
    cr_assert_eq(last, 7);
    eda_store_destroy(&store);
}

Test(store, inbox_put_rolled_back_vanishes)
{
    eda_store_t *store = s_open(s_path);
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_inbox_put(store, "peer", "0123456789abcdef", 5), 0);
    cr_assert_eq(eda_store_commit(store), 0);
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_inbox_put(store, "peer", "1111111111111111", 9), 0);
    cr_assert_eq(eda_store_rollback(store), 0);
    char epoch[EDA_EPOCH_LEN + 1];
    uint64_t last = 0;
    cr_assert_eq(eda_store_inbox_get(store, "peer", epoch, sizeof epoch, &last), 0);
    cr_assert_str_eq(epoch, "0123456789abcdef");
    cr_assert_eq(last, 5);
    eda_store_destroy(&store);
}

Test(store, inbox_get_truncates_to_the_buffer)
{
    eda_store_t *store = s_open(":memory:");
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_inbox_put(store, "peer", "0123456789abcdef", 5), 0);
    cr_assert_eq(eda_store_commit(store), 0);
    char small[5] = "";
    uint64_t last = 0;
    cr_assert_eq(eda_store_inbox_get(store, "peer", small, sizeof small, &last), 0);
    cr_assert_str_eq(small, "0123");
    cr_assert_eq(last, 5);
    eda_store_destroy(&store);
}

Test(store, add_column_migrates_an_older_table_once)
{
    char why[512] = "";
    eda_store_t *store =
        eda_store_new(s_path, "CREATE TABLE IF NOT EXISTS holds (id TEXT PRIMARY KEY);",
                      EDA_SYNC_FULL, why, sizeof why);
    cr_assert_not_null(store, "%s", why);
    cr_assert_null(eda_store_prepare(store, "SELECT reason FROM holds"),
                   "an older table lacks the column");
    cr_assert_eq(eda_store_add_column(store, "holds", "reason", "TEXT"), 0);
    cr_assert_not_null(eda_store_prepare(store, "SELECT reason FROM holds"));
    cr_assert_eq(eda_store_add_column(store, "holds", "reason", "TEXT"), 0,
                 "a second run finds the column and changes nothing");
    cr_assert_eq(eda_store_add_column(store, "nowhere", "reason", "TEXT"), -1,
                 "a table that does not exist is an error");
    eda_store_destroy(&store);
}

/* --- storage truth: sync, the lock, read-only, a deleted file ----------------- */

static int s_synchronous(eda_store_t *store)
{
    sqlite3_stmt *q = eda_store_prepare(store, "PRAGMA synchronous");
    cr_assert_not_null(q);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    int mode = sqlite3_column_int(q, 0);
    sqlite3_reset(q);
    return mode;
}

Test(store, sync_full_and_normal_set_the_pragma)
{
    char why[512] = "";
    eda_store_t *store = eda_store_new(s_path, NULL, EDA_SYNC_FULL, why, sizeof why);
    cr_assert_not_null(store, "%s", why);
    cr_assert_eq(s_synchronous(store), 2, "FULL");
    eda_store_destroy(&store);
    store = eda_store_new(s_path, NULL, EDA_SYNC_NORMAL, why, sizeof why);
    cr_assert_not_null(store, "%s", why);
    cr_assert_eq(s_synchronous(store), 1, "NORMAL");
    eda_store_destroy(&store);
}

Test(store, a_second_store_on_the_same_file_is_refused_naming_the_holder)
{
    eda_store_t *first = s_open(s_path);
    char why[512] = "";
    eda_store_t *second = eda_store_new(s_path, NULL, EDA_SYNC_FULL, why, sizeof why);
    cr_assert_null(second, "two stores on one file");
    char expected[700];
    snprintf(expected, sizeof expected,
             "database '%s' is in use by process %d (stop it, or give this service "
             "another --db)",
             s_path, (int)getpid());
    cr_assert_str_eq(why, expected);
    /* Memory databases are each their own: no lock. */
    eda_store_t *a = s_open(":memory:");
    eda_store_t *b = s_open(":memory:");
    eda_store_destroy(&a);
    eda_store_destroy(&b);
    /* Once the holder is gone, the file opens again. */
    eda_store_destroy(&first);
    second = s_open(s_path);
    eda_store_destroy(&second);
}

Test(store, a_file_without_write_permission_is_refused)
{
    if (geteuid() == 0)
        cr_skip_test("root ignores file permissions (a_read_only_filesystem_is_refused "
                     "covers root)");
    eda_store_t *store = s_open(s_path);
    eda_store_destroy(&store);
    cr_assert_eq(chmod(s_path, 0444), 0);
    char why[512] = "";
    store = eda_store_new(s_path, NULL, EDA_SYNC_FULL, why, sizeof why);
    cr_assert_null(store);
    cr_assert_not_null(strstr(why, "is read-only"), "%s", why);
    cr_assert_not_null(strstr(why, s_path), "%s", why);
}

/*  A tmpfs of the test's own, remounted read-only: this holds for root too
    (mounting needs root: elsewhere the test is skipped). */
Test(store, a_read_only_filesystem_is_refused)
{
    char mount[700], path[800], cmd[1000];
    snprintf(mount, sizeof mount, "%s/ro", s_dir);
    cr_assert_eq(mkdir(mount, 0755), 0);
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=4m eda-test '%s' 2>/dev/null",
             mount);
    if (geteuid() != 0 || system(cmd) != 0)
        cr_skip_test("mounting a tmpfs needs root");
    snprintf(s_mount, sizeof s_mount, "%s", mount);
    snprintf(path, sizeof path, "%s/x.db", mount);
    eda_store_t *store = s_open(path);
    s_append_one(store, "kept");
    eda_store_destroy(&store);
    snprintf(cmd, sizeof cmd, "mount -o remount,ro '%s'", mount);
    cr_assert_eq(system(cmd), 0, "cannot remount %s read-only", mount);
    char why[512] = "";
    store = eda_store_new(path, NULL, EDA_SYNC_FULL, why, sizeof why);
    cr_assert_null(store, "a read-only database was opened for writing");
    char expected[900];
    snprintf(expected, sizeof expected, "database '%s' is read-only", path);
    cr_assert_not_null(strstr(why, expected), "%s", why);
}

Test(store, check_notices_a_deleted_or_replaced_file)
{
    eda_store_t *store = s_open(s_path);
    char why[512] = "";
    cr_assert_eq(eda_store_check(store, why, sizeof why), 0, "%s", why);
    s_append_one(store, "before");
    cr_assert_eq(unlink(s_path), 0);
    cr_assert_eq(eda_store_check(store, why, sizeof why), -1);
    cr_assert_not_null(strstr(why, "was deleted"), "%s", why);
    cr_assert_not_null(strstr(why, s_path), "%s", why);
    eda_store_destroy(&store);

    /* Another file put in its place is not the one written to. */
    store = s_open(s_path);
    char other[700];
    snprintf(other, sizeof other, "%s/other.db", s_dir);
    FILE *f = fopen(other, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(rename(other, s_path), 0);
    cr_assert_eq(eda_store_check(store, why, sizeof why), -1);
    cr_assert_not_null(strstr(why, "replaced"), "%s", why);
    eda_store_destroy(&store);

    store = s_open(":memory:");
    cr_assert_eq(eda_store_check(store, why, sizeof why), 0, "nothing to lose");
    eda_store_destroy(&store);
}
