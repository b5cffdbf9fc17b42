/*  test_checkpointer: a store's WAL is copied into its database by a thread
    of its own. Commits go on while a checkpoint is held in the middle, the
    WAL starts over under a steady stream of commits (its file stays
    bounded), and a failed checkpoint is told without failing a commit.
    Faults and stalls come from the faultvfs shim.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "eda_store.h"
#include "faultvfs.h"
#include "testutil.h"

#define S_ROW_BYTES  3000 /* one row a page: a commit writes a page or two */
#define S_PAGE_BYTES 4096

static char s_dir[512];
static char s_path[600];
static char s_wal[610];

static void s_setup(void)
{
    cr_assert_eq(faultvfs_install(), 0);
    cr_assert_eq(tu_tempdir(s_dir, sizeof s_dir), 0);
    snprintf(s_path, sizeof s_path, "%s/ckpt.db", s_dir);
    snprintf(s_wal, sizeof s_wal, "%s-wal", s_path);
    faultvfs_target("ckpt.db");
}

static void s_teardown(void)
{
    faultvfs_clear();
    tu_rmtree(s_dir);
}

TestSuite(checkpointer, .init = s_setup, .fini = s_teardown, .timeout = 120);

static sqlite3_stmt *s_insert; /* of the store open */

static eda_store_t *s_open(eda_sync_t sync)
{
    char why[512] = "";
    eda_store_t *store = eda_store_new(
        s_path, "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB);", sync,
        why, sizeof why);
    cr_assert_not_null(store, "cannot open %s: %s", s_path, why);
    s_insert = eda_store_prepare(store, "INSERT INTO t (v) VALUES (zeroblob(?))");
    cr_assert_not_null(s_insert);
    cr_assert_eq(sqlite3_bind_int(s_insert, 1, S_ROW_BYTES), SQLITE_OK);
    return store;
}

/*  Commits one row of S_ROW_BYTES in its own transaction. */
static void s_commit_row(eda_store_t *store)
{
    cr_assert_eq(eda_store_begin(store), 0);
    cr_assert_eq(eda_store_exec(s_insert), 0);
    cr_assert_eq(eda_store_commit(store), 0, "commit: %s", eda_store_errmsg(store));
}

static eda_checkpointer_stats_t s_stats(eda_store_t *store)
{
    return eda_checkpointer_stats(eda_store_checkpointer(store));
}

/*  Commits rows until the WAL holds enough pages to wake the thread. */
static int s_commit_until_woken(eda_store_t *store)
{
    int rows = 0;
    while (s_stats(store).wal_pages < EDA_CHECKPOINT_PAGES) {
        s_commit_row(store);
        rows++;
        cr_assert_lt(rows, 2 * EDA_CHECKPOINT_PAGES, "the WAL does not grow");
    }
    return rows;
}

static int64_t s_rows(eda_store_t *store)
{
    sqlite3_stmt *count = eda_store_prepare(store, "SELECT count(*) FROM t");
    cr_assert_eq(sqlite3_step(count), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(count, 0);
    sqlite3_reset(count);
    return n;
}

/*  Every committed row is there, and still there once the store is closed
    and opened again. Closes the store. */
static void s_expect_rows_kept(eda_store_t *store, int64_t rows)
{
    cr_assert_eq(s_rows(store), rows);
    eda_store_destroy(&store);
    store = s_open(EDA_SYNC_NORMAL);
    cr_assert_eq(s_rows(store), rows, "rows lost when the store was opened again");
    eda_store_destroy(&store);
}

Test(checkpointer, commits_go_on_while_a_checkpoint_is_held)
{
    eda_store_t *store = s_open(EDA_SYNC_FULL);
    /* The thread's run stops at its sync of the database file, after
       copying. */
    faultvfs_stall_db_syncs();
    int rows = s_commit_until_woken(store);
    int64_t deadline = zclock_mono() + TU_SETTLE_MS;
    while (faultvfs_stalled() == 0 && zclock_mono() < deadline)
        zclock_sleep(1); /* a poll interval */
    cr_assert_eq(faultvfs_stalled(), 1, "no checkpoint started past %d pages",
                 EDA_CHECKPOINT_PAGES);

    /* Each of these commits syncs the WAL (FULL) and none waits for the
       checkpoint: it is still held when they are done. */
    for (int i = 0; i < 200; i++)
        s_commit_row(store);
    rows += 200;
    cr_assert_lt(s_stats(store).wal_pages, EDA_CHECKPOINT_CAP_PAGES);
    cr_assert_eq(faultvfs_stalled(), 1);
    cr_assert_eq(s_stats(store).runs, 0);

    faultvfs_clear();
    deadline = zclock_mono() + TU_SETTLE_MS;
    while (s_stats(store).runs == 0 && zclock_mono() < deadline)
        zclock_sleep(1); /* a poll interval */
    cr_assert_eq(s_stats(store).runs, 1, "the held checkpoint did not finish");
    cr_assert_eq(s_stats(store).waits, 0, "a commit copied the WAL itself");
    s_expect_rows_kept(store, rows);
}

Test(checkpointer, the_wal_starts_over_under_a_steady_stream)
{
    eda_store_t *store = s_open(EDA_SYNC_NORMAL);
    /* No pause between commits: the thread never finds the store idle.
       Twice the cap in pages, so that a WAL that never starts over would
       outgrow it. */
    const int rows = 2 * EDA_CHECKPOINT_CAP_PAGES;
    off_t largest = 0;
    for (int i = 0; i < rows; i++) {
        s_commit_row(store);
        struct stat st;
        cr_assert_eq(stat(s_wal, &st), 0);
        if (st.st_size > largest)
            largest = st.st_size;
    }
    eda_checkpointer_stats_t stats = s_stats(store);
    cr_assert_geq(stats.restarts, 1, "the WAL never started over");
    cr_assert_geq(stats.runs + stats.waits, 1);
    cr_assert_eq(stats.failures, 0);
    /* The cap, and the pages of the commit that crossed it. */
    off_t bound = (off_t)(EDA_CHECKPOINT_CAP_PAGES + 8) * (S_PAGE_BYTES + 24) + 32;
    cr_assert_leq(largest, bound, "WAL file of %lld bytes, over %lld", (long long)largest,
                  (long long)bound);
    s_expect_rows_kept(store, rows);
}

Test(checkpointer, a_failed_checkpoint_is_told_and_commits_go_on)
{
    /* NORMAL: commits do not sync, checkpoints do. */
    eda_store_t *store = s_open(EDA_SYNC_NORMAL);
    char why[256] = "";
    cr_assert_not(
        eda_checkpointer_failed(eda_store_checkpointer(store), why, sizeof why));
    faultvfs_fail_syncs(FAULTVFS_ALWAYS);
    int rows = s_commit_until_woken(store);
    int64_t deadline = zclock_mono() + TU_SETTLE_MS;
    while (!eda_checkpointer_failed(eda_store_checkpointer(store), why, sizeof why) &&
           zclock_mono() < deadline)
        zclock_sleep(1); /* a poll interval */
    cr_assert(strstr(why, "WAL checkpoint failed"), "told: '%s'", why);
    cr_assert_geq(s_stats(store).failures, 1);
    /* Told once, not again until another fails. */
    cr_assert_not(
        eda_checkpointer_failed(eda_store_checkpointer(store), why, sizeof why));
    for (int i = 0; i < 10; i++)
        s_commit_row(store);
    rows += 10;

    /* Past the cap, commits try to copy the WAL themselves, but after a
       failure only every tenth of a step, not at every commit. */
    const uint64_t past = EDA_CHECKPOINT_PAGES / 2;
    while (s_stats(store).wal_pages < EDA_CHECKPOINT_CAP_PAGES + past) {
        s_commit_row(store);
        rows++;
    }
    eda_checkpointer_stats_t stats = s_stats(store);
    cr_assert_geq(stats.waits, 1);
    cr_assert_leq(stats.waits, past / (EDA_CHECKPOINT_PAGES / 10) + 1,
                  "%llu commits past the cap copied the WAL",
                  (unsigned long long)stats.waits);
    cr_assert_eq(stats.restarts, 0);

    /* The disk mends: a later checkpoint copies the WAL, and it starts
       over. */
    faultvfs_clear();
    while (s_stats(store).restarts == 0 && rows < 3 * EDA_CHECKPOINT_CAP_PAGES) {
        s_commit_row(store);
        rows++;
    }
    cr_assert_geq(s_stats(store).restarts, 1, "the WAL never started over");
    s_expect_rows_kept(store, rows);
}
