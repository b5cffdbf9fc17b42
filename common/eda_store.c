/*  eda_store: SQLite in WAL mode, synchronous FULL (survives a power cut)
    or NORMAL (survives a killed process). One process holds a database: an
    flock on `<db>.lock`. Its WAL is checkpointed by eda_checkpointer (on a
    thread of its own; past a cap, by the committing thread). Statements
    are prepared once and kept; the event log's next seq is tracked in
    memory and rewound when a savepoint or the transaction is rolled back.
*/
#include "eda_store.h"

#include "eda_checkpointer.h"
#include "eda_client.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_BASE_SCHEMA                                                                    \
    "CREATE TABLE IF NOT EXISTS eda_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"   \
    "CREATE TABLE IF NOT EXISTS eda_event_log (seq INTEGER PRIMARY KEY,"                 \
    " type TEXT NOT NULL, body BLOB NOT NULL, correlation_id TEXT);"                     \
    "CREATE TABLE IF NOT EXISTS eda_inbox (peer TEXT PRIMARY KEY, epoch TEXT NOT NULL,"  \
    " last_seq INTEGER NOT NULL);"

struct eda_store {
    sqlite3 *db;
    char *path;  /* as opened; NULL for a database in memory */
    int lock_fd; /* <path>.lock, flocked while open; -1 for none */
    dev_t dev;   /* the file opened, for eda_store_check */
    ino_t ino;
    eda_checkpointer_t *checkpointer; /* NULL in memory */
    char epoch[EDA_EPOCH_LEN + 1];
    char old_epoch[EDA_EPOCH_LEN + 1]; /* before eda_store_new_epoch, until commit */
    sqlite3_stmt **stmts; /* every statement prepared, finalized on destroy */
    size_t nstmts;
    sqlite3_stmt *begin, *commit, *rollback, *savepoint, *release, *rollback_to;
    sqlite3_stmt *append, *replay, *replay_order, *inbox_get, *inbox_put, *clear_log,
        *set_epoch, *forget;
    bool in_txn;
    uint64_t committed_seq; /* last seq in the log as committed */
    uint64_t first_seq;     /* oldest seq kept (committed_seq + 1 when none) */
    uint64_t old_first_seq; /* before eda_store_new_epoch, until commit */
    uint64_t next_seq;      /* seq the next append gets */
    uint64_t savepoint_seq; /* next_seq when the savepoint was taken */
    uint64_t undos;         /* rollbacks and rollbacks to a savepoint */
    char failure[256];      /* why this batch's commit failed, "" otherwise */
};

/*  Once per process, before SQLite's first use: no memory statistics, which
    take a global mutex on every allocation. Too late (SQLite already in use,
    e.g. by a test's VFS) is harmless: it then keeps its defaults. */
static void s_configure_sqlite(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

sqlite3_stmt *eda_store_prepare(eda_store_t *self, const char *sql)
{
    assert(self);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) !=
        SQLITE_OK)
        return NULL;
    sqlite3_stmt **grown = realloc(self->stmts, (self->nstmts + 1) * sizeof *grown);
    if (!grown) {
        sqlite3_finalize(stmt);
        return NULL;
    }
    self->stmts = grown;
    self->stmts[self->nstmts++] = stmt;
    return stmt;
}

/*  Runs a statement that returns no rows and resets it. 0 or -1. */
static int s_step(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

int eda_store_exec(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

/*  Reads the epoch, creating it when the event log is new. 0 or -1. */
static int s_load_epoch(eda_store_t *self)
{
    sqlite3_stmt *get =
        eda_store_prepare(self, "SELECT value FROM eda_meta WHERE key='epoch'");
    if (!get)
        return -1;
    if (sqlite3_step(get) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(get, 0);
        snprintf(self->epoch, sizeof self->epoch, "%s", v ? (const char *)v : "");
    }
    sqlite3_reset(get);
    if (strlen(self->epoch) == EDA_EPOCH_LEN)
        return 0;

    eda_random_hex(self->epoch, EDA_EPOCH_LEN);
    sqlite3_bind_text(self->set_epoch, 1, self->epoch, -1, SQLITE_STATIC);
    return s_step(self->set_epoch);
}

static int s_load_last_seq(eda_store_t *self)
{
    sqlite3_stmt *max = eda_store_prepare(
        self, "SELECT COALESCE(MAX(seq), 0), COALESCE(MIN(seq), 0) FROM eda_event_log");
    if (!max || sqlite3_step(max) != SQLITE_ROW)
        return -1;
    self->committed_seq = (uint64_t)sqlite3_column_int64(max, 0);
    uint64_t first = (uint64_t)sqlite3_column_int64(max, 1);
    self->first_seq = first ? first : self->committed_seq + 1;
    self->next_seq = self->committed_seq + 1;
    sqlite3_reset(max);
    return 0;
}

/*  Takes `<path>.lock` exclusively and writes our pid in it, or says who
    holds it. flock, not fcntl: its lock belongs to the open file, so a
    second store in the same process is refused too. 0 or -1. */
static int s_lock(eda_store_t *self, const char *path, char *why, size_t why_size)
{
    size_t size = strlen(path) + sizeof ".lock";
    char *lock = malloc(size);
    if (!lock) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    snprintf(lock, size, "%s.lock", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EROFS)
            snprintf(why, why_size, "database '%s' is read-only (read-only file system)",
                     path);
        else if (errno == ENOENT)
            snprintf(why, why_size,
                     "cannot open database '%s': its folder does not exist (create it, "
                     "or give another --db)",
                     path);
        else
            snprintf(why, why_size, "cannot open database '%s': cannot open '%s': %s",
                     path, lock, strerror(errno));
        free(lock);
        return -1;
    }
    free(lock);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char pid[24] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strspn(pid, "0123456789")] = '\0'; /* the holder may be mid-write */
        if (err != EWOULDBLOCK)
            snprintf(why, why_size, "cannot lock database '%s': %s", path, strerror(err));
        else if (pid[0])
            snprintf(why, why_size,
                     "database '%s' is in use by process %s (stop it, or give this "
                     "service another --db)",
                     path, pid);
        else
            snprintf(why, why_size,
                     "database '%s' is in use by another process (stop it, or give "
                     "this service another --db)",
                     path);
        close(fd);
        return -1;
    }
    /* The pid only names the holder: without it (a full disk) the lock holds. */
    char pid[24];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n) {
        /* nothing to do: a second process says "another process" */
    }
    self->lock_fd = fd;
    return 0;
}

/*  Sets the pragmas of the header's contract. 0 or -1. */
static int s_pragmas(eda_store_t *self, eda_sync_t sync)
{
    const char *sql = sync == EDA_SYNC_NORMAL ? "PRAGMA synchronous=NORMAL;"
                                              : "PRAGMA synchronous=FULL;";
    return sqlite3_exec(self->db,
                        "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=OFF;"
                        " PRAGMA temp_store=MEMORY;",
                        NULL, NULL, NULL) == SQLITE_OK &&
                   sqlite3_exec(self->db, sql, NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : -1;
}

eda_store_t *eda_store_new(const char *path, const char *schema, eda_sync_t sync,
                           char *why, size_t why_size)
{
    eda_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    self->lock_fd = -1;
    bool on_disk = path[0] && strcmp(path, ":memory:") != 0;
    if (on_disk && (!(self->path = strdup(path)) || s_lock(self, path, why, why_size))) {
        if (!self->path)
            snprintf(why, why_size, "out of memory");
        goto fail;
    }
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once(&configured, s_configure_sqlite);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &self->db, flags, NULL) != SQLITE_OK)
        goto err;
    /* SQLite opens a file it may not write read-only, without a word. */
    if (sqlite3_db_readonly(self->db, "main") == 1) {
        snprintf(why, why_size, "database '%s' is read-only", path);
        goto fail;
    }
    /* No second writer can exist (the lock file): a busy database is a
       foreign tool's, and the wait is bounded. */
    sqlite3_busy_timeout(self->db, 5000);
    sqlite3_extended_result_codes(self->db, 1);
    if (s_pragmas(self, sync) ||
        sqlite3_exec(self->db, S_BASE_SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
        /* A log made before events were indexed by order (its rows are
           indexed at start: eda_builtins_index_log). */
        eda_store_add_column(self, "eda_event_log", "correlation_id", "TEXT") ||
        sqlite3_exec(self->db,
                     "CREATE INDEX IF NOT EXISTS eda_event_log_order"
                     " ON eda_event_log (correlation_id, seq)",
                     NULL, NULL, NULL) != SQLITE_OK ||
        (schema && sqlite3_exec(self->db, schema, NULL, NULL, NULL) != SQLITE_OK))
        goto err;
    struct stat st = {0};
    if (on_disk && stat(path, &st) != 0) {
        snprintf(why, why_size, "cannot open database '%s': %s", path, strerror(errno));
        goto fail;
    }
    self->dev = on_disk ? st.st_dev : 0;
    self->ino = on_disk ? st.st_ino : 0;
    if (on_disk &&
        !(self->checkpointer = eda_checkpointer_new(self->db, path, sync, why, why_size)))
        goto fail;

    if (!(self->begin = eda_store_prepare(self, "BEGIN IMMEDIATE")) ||
        !(self->commit = eda_store_prepare(self, "COMMIT")) ||
        !(self->rollback = eda_store_prepare(self, "ROLLBACK")) ||
        !(self->savepoint = eda_store_prepare(self, "SAVEPOINT msg")) ||
        !(self->release = eda_store_prepare(self, "RELEASE msg")) ||
        !(self->rollback_to = eda_store_prepare(self, "ROLLBACK TO msg")) ||
        !(self->append = eda_store_prepare(
              self, "INSERT INTO eda_event_log (seq, type, body, correlation_id)"
                    " VALUES (?, ?, ?, ?)")) ||
        !(self->replay = eda_store_prepare(self, "SELECT seq, body FROM eda_event_log "
                                                 "WHERE seq > ? ORDER BY seq LIMIT ?")) ||
        !(self->replay_order = eda_store_prepare(
              self, "SELECT seq, body FROM eda_event_log WHERE correlation_id = ?"
                    " AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?")) ||
        !(self->inbox_get = eda_store_prepare(
              self, "SELECT epoch, last_seq FROM eda_inbox WHERE peer = ?")) ||
        !(self->inbox_put = eda_store_prepare(
              self, "INSERT OR REPLACE INTO eda_inbox VALUES (?,?,?)")) ||
        !(self->clear_log = eda_store_prepare(self, "DELETE FROM eda_event_log")) ||
        !(self->forget =
              eda_store_prepare(self, "DELETE FROM eda_event_log WHERE seq <= ?")) ||
        !(self->set_epoch = eda_store_prepare(
              self, "INSERT OR REPLACE INTO eda_meta VALUES ('epoch', ?)")) ||
        s_load_epoch(self) || s_load_last_seq(self))
        goto err;
    return self;

err:
    if (self->db && sqlite3_errcode(self->db) == SQLITE_READONLY)
        snprintf(why, why_size, "database '%s' is read-only: %s", path,
                 sqlite3_errmsg(self->db));
    else
        snprintf(why, why_size, "cannot open database '%s': %s", path,
                 self->db ? sqlite3_errmsg(self->db) : "out of memory");
fail:
    eda_store_destroy(&self);
    return NULL;
}

int eda_store_check(eda_store_t *self, char *why, size_t why_size)
{
    assert(self);
    if (!self->path)
        return 0;
    struct stat st;
    if (stat(self->path, &st) != 0) {
        if (errno == ENOENT)
            snprintf(why, why_size,
                     "database '%s' was deleted: later commits would be lost",
                     self->path);
        else
            snprintf(why, why_size, "cannot check database '%s': %s", self->path,
                     strerror(errno));
        return -1;
    }
    if (st.st_dev != self->dev || st.st_ino != self->ino) {
        snprintf(why, why_size,
                 "database '%s' was replaced by another file: later commits would be "
                 "lost",
                 self->path);
        return -1;
    }
    return 0;
}

void eda_store_destroy(eda_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    eda_store_t *self = *self_p;
    for (size_t i = 0; i < self->nstmts; i++)
        sqlite3_finalize(self->stmts[i]);
    free(self->stmts);
    if (self->db && !sqlite3_get_autocommit(self->db))
        sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
    /* Its connection first: the store's, closed last, copies what is left
       of the WAL and removes it. */
    eda_checkpointer_destroy(&self->checkpointer);
    sqlite3_close(self->db);
    /* The lock goes last: no one else may open the file before it is closed. */
    if (self->lock_fd >= 0)
        close(self->lock_fd);
    free(self->path);
    free(self);
    *self_p = NULL;
}

const char *eda_store_epoch(eda_store_t *self)
{
    return self->epoch;
}

eda_checkpointer_t *eda_store_checkpointer(eda_store_t *self)
{
    return self->checkpointer;
}

sqlite3 *eda_store_db(eda_store_t *self)
{
    return self->db;
}

const char *eda_store_errmsg(eda_store_t *self)
{
    if (self->failure[0])
        return self->failure;
    return sqlite3_errmsg(self->db);
}

bool eda_store_in_txn(eda_store_t *self)
{
    return self->in_txn;
}

bool eda_store_txn_lost(eda_store_t *self)
{
    return self->in_txn && sqlite3_get_autocommit(self->db);
}

uint64_t eda_store_changes(eda_store_t *self)
{
    return (uint64_t)sqlite3_total_changes64(self->db);
}

uint64_t eda_store_undos(eda_store_t *self)
{
    return self->undos;
}

int eda_store_begin(eda_store_t *self)
{
    assert(!self->in_txn);
    self->failure[0] = '\0'; /* a failed commit's reason is for that batch only */
    if (s_step(self->begin))
        return -1;
    self->in_txn = true;
    return 0;
}

int eda_store_commit(eda_store_t *self)
{
    assert(self->in_txn);
    if (s_step(self->commit)) {
        /* The rollback would overwrite SQLite's message: keep the reason. */
        snprintf(self->failure, sizeof self->failure, "%s", sqlite3_errmsg(self->db));
        eda_store_rollback(self);
        return -1;
    }
    self->in_txn = false;
    self->committed_seq = self->next_seq - 1;
    self->old_epoch[0] = '\0';
    return 0;
}

int eda_store_rollback(eda_store_t *self)
{
    self->undos++;
    self->next_seq = self->committed_seq + 1;
    if (self->old_epoch[0]) {
        memcpy(self->epoch, self->old_epoch, sizeof self->epoch);
        self->first_seq = self->old_first_seq;
        self->old_epoch[0] = '\0';
    }
    self->in_txn = false;
    if (sqlite3_get_autocommit(self->db))
        return 0; /* SQLite already rolled back, e.g. after a full disk */
    return s_step(self->rollback);
}

int eda_store_savepoint(eda_store_t *self)
{
    assert(self->in_txn);
    self->savepoint_seq = self->next_seq;
    return s_step(self->savepoint);
}

int eda_store_release(eda_store_t *self)
{
    return s_step(self->release);
}

int eda_store_rollback_to(eda_store_t *self)
{
    self->undos++;
    self->next_seq = self->savepoint_seq;
    /* ROLLBACK TO keeps the savepoint open: release it as well. */
    return s_step(self->rollback_to) || s_step(self->release) ? -1 : 0;
}

uint64_t eda_store_next_seq(eda_store_t *self)
{
    return self->next_seq;
}

uint64_t eda_store_committed_seq(eda_store_t *self)
{
    return self->committed_seq;
}

int eda_store_append(eda_store_t *self, const char *type, const char *correlation_id,
                     const void *body, size_t len)
{
    assert(self->in_txn);
    sqlite3_bind_int64(self->append, 1, (sqlite3_int64)self->next_seq);
    sqlite3_bind_text(self->append, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_blob(self->append, 3, body, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(self->append, 4, correlation_id ? correlation_id : "", -1,
                      SQLITE_STATIC);
    if (s_step(self->append))
        return -1;
    self->next_seq++;
    return 0;
}

int eda_store_new_epoch(eda_store_t *self)
{
    assert(self->in_txn && !self->old_epoch[0]);
    if (s_step(self->clear_log))
        return -1;
    memcpy(self->old_epoch, self->epoch, sizeof self->epoch);
    self->old_first_seq = self->first_seq;
    eda_random_hex(self->epoch, EDA_EPOCH_LEN);
    sqlite3_bind_text(self->set_epoch, 1, self->epoch, -1, SQLITE_STATIC);
    if (s_step(self->set_epoch))
        return -1; /* the rollback restores the old epoch */
    self->next_seq = 1;
    self->first_seq = 1;
    return 0;
}

uint64_t eda_store_first_seq(eda_store_t *self)
{
    return self->first_seq;
}

int eda_store_forget(eda_store_t *self, uint64_t upto_seq)
{
    assert(!self->in_txn);
    if (upto_seq < self->first_seq)
        return 0;
    if (upto_seq > self->committed_seq)
        upto_seq = self->committed_seq;
    sqlite3_bind_int64(self->forget, 1, (sqlite3_int64)upto_seq);
    if (eda_store_begin(self) || s_step(self->forget) || eda_store_commit(self)) {
        if (self->in_txn)
            eda_store_rollback(self);
        return -1;
    }
    self->first_seq = upto_seq + 1;
    return 0;
}

/*  Passes the rows of a bound replay statement to fn (see eda_store_replay). */
static int s_replay_rows(sqlite3_stmt *q, size_t max_bytes, eda_store_event_fn *fn,
                         void *arg)
{
    int count = 0;
    size_t bytes = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(q, 1);
        if (count > 0 && bytes + len > max_bytes)
            break;
        bytes += len;
        fn((uint64_t)sqlite3_column_int64(q, 0), sqlite3_column_blob(q, 1), len, arg);
        count++;
    }
    sqlite3_reset(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? count : -1;
}

int eda_store_replay(eda_store_t *self, uint64_t after_seq, uint32_t limit,
                     size_t max_bytes, eda_store_event_fn *fn, void *arg)
{
    sqlite3_bind_int64(self->replay, 1, (sqlite3_int64)after_seq);
    sqlite3_bind_int64(self->replay, 2, limit);
    return s_replay_rows(self->replay, max_bytes, fn, arg);
}

int eda_store_replay_order(eda_store_t *self, const char *correlation_id,
                           uint64_t after_seq, uint64_t until_seq, uint32_t limit,
                           size_t max_bytes, eda_store_event_fn *fn, void *arg)
{
    sqlite3_stmt *q = self->replay_order;
    sqlite3_bind_text(q, 1, correlation_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)after_seq);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)until_seq);
    sqlite3_bind_int64(q, 4, limit);
    return s_replay_rows(q, max_bytes, fn, arg);
}

int eda_store_inbox_get(eda_store_t *self, const char *peer, char *epoch,
                        size_t epoch_size, uint64_t *last_seq)
{
    sqlite3_bind_text(self->inbox_get, 1, peer, -1, SQLITE_STATIC);
    int rc = sqlite3_step(self->inbox_get);
    epoch[0] = '\0';
    *last_seq = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *e = sqlite3_column_text(self->inbox_get, 0);
        snprintf(epoch, epoch_size, "%s", e ? (const char *)e : "");
        *last_seq = (uint64_t)sqlite3_column_int64(self->inbox_get, 1);
    }
    sqlite3_reset(self->inbox_get);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int eda_store_inbox_put(eda_store_t *self, const char *peer, const char *epoch,
                        uint64_t last_seq)
{
    sqlite3_bind_text(self->inbox_put, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_text(self->inbox_put, 2, epoch, -1, SQLITE_STATIC);
    sqlite3_bind_int64(self->inbox_put, 3, (sqlite3_int64)last_seq);
    return s_step(self->inbox_put);
}

int eda_store_add_column(eda_store_t *store, const char *table, const char *column,
                         const char *decl)
{
    sqlite3 *db = eda_store_db(store);
    sqlite3_stmt *q;
    char sql[256];
    snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return -1;
    bool found = false;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        if (strcmp((const char *)sqlite3_column_text(q, 1), column) == 0)
            found = true;
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return -1;
    if (found)
        return 0;
    snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", table, column, decl);
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}
