/*  eda_checkpointer: the WAL copied into the database off the commit path
    (see eda_checkpointer.h). Two threads share this struct: the store's
    (the hook, the stats, destroy) and the checkpointer's. The fields above
    the mutex belong to one thread each (`ckpt_db` to the checkpointer's
    once it runs, the others to the store's); those below it are read and
    written under it.
*/
#include "eda_checkpointer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eda_checkpointer {
    sqlite3 *db;      /* the store's connection, whose WAL hook this is */
    sqlite3 *ckpt_db; /* the thread's own connection */
    pthread_t thread;
    uint64_t wal_pages, restarts;
    uint64_t wake_at; /* WAL pages at which the thread is woken next */
    uint64_t copy_at; /* and the committing thread copies: the cap, or later */
    pthread_mutex_t mutex;
    pthread_cond_t cond; /* "wanted" for the thread, "running" over for a wait */
    bool wanted;         /* a commit asks for a run */
    bool running;        /* the thread is in a checkpoint */
    bool held;           /* a commit copies the rest: the thread waits */
    bool stop;
    uint64_t runs, waits, failures, failures_told;
    char failure[256];
};

/*  Counts a checkpoint that returned `rc`, with `why` it failed. Under the
    mutex. SQLITE_BUSY (another checkpoint is running) and SQLITE_LOCKED (a
    statement of the store's connection is still reading) mean "not now".
    Returns true for a failure. */
static bool s_count(eda_checkpointer_t *self, int rc, const char *why)
{
    if (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return false;
    self->failures++;
    snprintf(self->failure, sizeof self->failure, "WAL checkpoint failed: %s", why);
    return true;
}

/*  Syncs the database file after the thread's checkpoint. SQLite syncs it
    only in a checkpoint that reaches the end of the WAL, and under a
    steady stream that is the committing thread's, at the cap: it would
    sync everything the thread copied since the WAL started over, up to
    16 MB, while the commit waits. */
static int s_sync_database(eda_checkpointer_t *self)
{
    sqlite3_file *file = NULL;
    if (sqlite3_file_control(self->ckpt_db, "main", SQLITE_FCNTL_FILE_POINTER, &file) !=
            SQLITE_OK ||
        !file || !file->pMethods)
        return SQLITE_ERROR;
    return file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
}

static void *s_run(void *arg)
{
    eda_checkpointer_t *self = arg;
    pthread_mutex_lock(&self->mutex);
    while (!self->stop) {
        if (!self->wanted || self->held) {
            pthread_cond_wait(&self->cond, &self->mutex);
            continue;
        }
        self->wanted = false;
        self->running = true;
        pthread_mutex_unlock(&self->mutex);
        char why[200];
        int rc = sqlite3_wal_checkpoint_v2(self->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                           NULL, NULL);
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(self->ckpt_db));
        if (rc == SQLITE_OK && (rc = s_sync_database(self)) != SQLITE_OK)
            snprintf(why, sizeof why, "cannot sync the database file (SQLite error %d)",
                     rc);
        pthread_mutex_lock(&self->mutex);
        self->running = false;
        if (rc == SQLITE_OK)
            self->runs++;
        s_count(self, rc, why);
        pthread_cond_broadcast(&self->cond);
    }
    pthread_mutex_unlock(&self->mutex);
    return NULL;
}

/*  SQLite calls this on the store's thread after each commit, with the
    pages now in the WAL. It never fails the commit, which has happened:
    a failed checkpoint is counted and told (eda_checkpointer_failed). */
static int s_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)name;
    eda_checkpointer_t *self = arg;
    if ((uint64_t)pages < self->wal_pages) {
        self->restarts++;
        self->wake_at = EDA_CHECKPOINT_PAGES;
        self->copy_at = EDA_CHECKPOINT_CAP_PAGES;
    }
    self->wal_pages = (uint64_t)pages;
    if ((uint64_t)pages < self->copy_at) {
        if ((uint64_t)pages >= self->wake_at) {
            /* Within a step of the cap, ten times as often: what is left
               to copy at the cap is then a tenth of a step. */
            uint64_t next = (uint64_t)pages + EDA_CHECKPOINT_PAGES;
            self->wake_at = next < EDA_CHECKPOINT_CAP_PAGES
                                ? next
                                : (uint64_t)pages + EDA_CHECKPOINT_PAGES / 10;
            pthread_mutex_lock(&self->mutex);
            self->wanted = true;
            pthread_cond_broadcast(&self->cond);
            pthread_mutex_unlock(&self->mutex);
        }
        return SQLITE_OK;
    }
    /* The WAL has not started over: copy the rest here, once the thread's
       run is over, so that the next transaction finds it all copied. */
    pthread_mutex_lock(&self->mutex);
    self->held = true;
    while (self->running)
        pthread_cond_wait(&self->cond, &self->mutex);
    pthread_mutex_unlock(&self->mutex);
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    pthread_mutex_lock(&self->mutex);
    self->held = false;
    self->waits++;
    /* After a failure (a full disk), not again at every commit: a tenth
       of a step later. */
    if (s_count(self, rc, sqlite3_errmsg(db)))
        self->copy_at = (uint64_t)pages + EDA_CHECKPOINT_PAGES / 10;
    pthread_cond_broadcast(&self->cond); /* a run asked for meanwhile */
    pthread_mutex_unlock(&self->mutex);
    return SQLITE_OK;
}

eda_checkpointer_t *eda_checkpointer_new(sqlite3 *db, const char *path, eda_sync_t sync,
                                         char *why, size_t why_size)
{
    eda_checkpointer_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    self->db = db;
    self->wake_at = EDA_CHECKPOINT_PAGES;
    self->copy_at = EDA_CHECKPOINT_CAP_PAGES;
    pthread_mutex_init(&self->mutex, NULL);
    pthread_cond_init(&self->cond, NULL);
    /* The first read opens the connection's WAL, which a checkpoint needs;
       its syncs are the store's (FULL or NORMAL: both sync a checkpoint). */
    const char *sql =
        sync == EDA_SYNC_NORMAL
            ? "PRAGMA synchronous=NORMAL; SELECT count(*) FROM sqlite_master;"
            : "PRAGMA synchronous=FULL; SELECT count(*) FROM sqlite_master;";
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &self->ckpt_db, flags, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(self->ckpt_db, 5000) != SQLITE_OK ||
        sqlite3_exec(self->ckpt_db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(why, why_size, "cannot open database '%s' for checkpoints: %s", path,
                 self->ckpt_db ? sqlite3_errmsg(self->ckpt_db) : "out of memory");
        goto fail;
    }
    int err = pthread_create(&self->thread, NULL, s_run, self);
    if (err) {
        snprintf(why, why_size, "cannot start the checkpoint thread: %s", strerror(err));
        goto fail;
    }
    sqlite3_wal_hook(db, s_hook, self);
    return self;

fail:
    sqlite3_close(self->ckpt_db);
    pthread_cond_destroy(&self->cond);
    pthread_mutex_destroy(&self->mutex);
    free(self);
    return NULL;
}

void eda_checkpointer_destroy(eda_checkpointer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    eda_checkpointer_t *self = *self_p;
    sqlite3_wal_hook(self->db, NULL, NULL);
    pthread_mutex_lock(&self->mutex);
    self->stop = true;
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->mutex);
    pthread_join(self->thread, NULL);
    sqlite3_close(self->ckpt_db);
    pthread_cond_destroy(&self->cond);
    pthread_mutex_destroy(&self->mutex);
    free(self);
    *self_p = NULL;
}

eda_checkpointer_stats_t eda_checkpointer_stats(eda_checkpointer_t *self)
{
    if (!self)
        return (eda_checkpointer_stats_t){0};
    pthread_mutex_lock(&self->mutex);
    eda_checkpointer_stats_t stats = {.wal_pages = self->wal_pages,
                                      .restarts = self->restarts,
                                      .runs = self->runs,
                                      .waits = self->waits,
                                      .failures = self->failures};
    pthread_mutex_unlock(&self->mutex);
    return stats;
}

bool eda_checkpointer_failed(eda_checkpointer_t *self, char *why, size_t why_size)
{
    if (!self)
        return false;
    pthread_mutex_lock(&self->mutex);
    bool failed = self->failures != self->failures_told;
    if (failed)
        snprintf(why, why_size, "%s", self->failure);
    self->failures_told = self->failures;
    pthread_mutex_unlock(&self->mutex);
    return failed;
}
