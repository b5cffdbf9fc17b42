/*  eda_store: a service's SQLite database. It holds the service's domain
    tables (its own schema), the event log (every event it published, by seq)
    and the inbox (per peer: epoch and last seq applied). All writes happen in
    one transaction per handled batch; savepoints undo one message's work.
*/
#ifndef EDA_STORE_H_INCLUDED
#define EDA_STORE_H_INCLUDED

#include "eda_checkpointer.h"
#include "eda_config.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDA_EPOCH_LEN 16 /* hex characters in an epoch */

typedef struct eda_store eda_store_t;

/*  Opens (or creates) the database at `path` (":memory:" keeps nothing) in
    WAL mode with `sync` (EDA_SYNC_FULL: PRAGMA synchronous=FULL, a commit
    survives a power cut; EDA_SYNC_NORMAL: it survives a killed process),
    creates the event log and inbox tables and runs `schema` (the service's
    own CREATE TABLE IF NOT EXISTS statements, may be NULL). A new event log
    gets a new random epoch.
    A file database is held exclusively: an flock on the side file
    `<path>.lock`, which holds the holder's pid, kept until destroy. Its WAL
    is copied into it by a thread of its own (eda_checkpointer.h), not by
    the commits.
    Returns NULL with a one-line reason in `why` when another store holds
    the database ("database X is in use by process N"), when it is
    read-only ("database X is read-only"), when the file cannot be opened or
    the schema fails. */
eda_store_t *eda_store_new(const char *path, const char *schema, eda_sync_t sync,
                           char *why, size_t why_size);

/*  Checks that the file opened is still at its path: not deleted, renamed
    or replaced (a service writing on would lose every later commit).
    Returns 0 (always, for ":memory:"), or -1 with a one-line reason in
    `why`. One stat() call: cheap enough for a heartbeat. */
int eda_store_check(eda_store_t *self, char *why, size_t why_size);

/*  Finalizes every prepared statement, closes the database (a transaction
    still open is rolled back) and nulls the pointer. Idempotent. */
void eda_store_destroy(eda_store_t **self_p);

/*  The identity of this event log: EDA_EPOCH_LEN hex characters. */
const char *eda_store_epoch(eda_store_t *self);

/*  The thread that copies the WAL into the database (eda_checkpointer.h);
    NULL for ":memory:". */
eda_checkpointer_t *eda_store_checkpointer(eda_store_t *self);

/*  The raw handle, for the service's own statements. */
sqlite3 *eda_store_db(eda_store_t *self);

/*  Prepares `sql` once; the store owns the statement and finalizes it on
    destroy. Returns NULL (logged by the caller) when the SQL is wrong. */
sqlite3_stmt *eda_store_prepare(eda_store_t *self, const char *sql);

/*  Runs a statement that returns no rows (INSERT, UPDATE, DELETE) and
    resets it. Returns 0 when it ran to the end, -1 on an error. */
int eda_store_exec(sqlite3_stmt *stmt);

/*  Adds column `column` (of SQL type `decl`) to `table` when the database,
    made by an older version, lacks it: a service's schema migration, run
    from its start function. 0, or -1 on a database error. */
int eda_store_add_column(eda_store_t *self, const char *table, const char *column,
                         const char *decl);

/*  Transaction control. Each returns 0 or -1 (the SQLite message is in
    eda_store_errmsg). begin and commit nest nothing; savepoints nest inside
    a transaction, one level is enough: one message at a time. */
int eda_store_begin(eda_store_t *self);
int eda_store_commit(eda_store_t *self);
int eda_store_rollback(eda_store_t *self);
int eda_store_savepoint(eda_store_t *self);
int eda_store_release(eda_store_t *self);
int eda_store_rollback_to(eda_store_t *self);
bool eda_store_in_txn(eda_store_t *self);
/*  True when a transaction was begun but SQLite has rolled it back on its
    own (it may, on a full disk or an I/O error): nothing more may be done
    in it, and it will not commit. */
bool eda_store_txn_lost(eda_store_t *self);
/*  Rows inserted, updated or deleted since the store was opened: a unit of
    work that moved it has written. */
uint64_t eda_store_changes(eda_store_t *self);
/*  How many times changes were undone since the store was opened (a
    rollback, or a rollback to a savepoint): what a service keeps in memory
    from its rows must be read again when it moved. */
uint64_t eda_store_undos(eda_store_t *self);
const char *eda_store_errmsg(eda_store_t *self);

/*  The seq the next appended event gets (1 for a new log). */
uint64_t eda_store_next_seq(eda_store_t *self);

/*  The seq of the last committed event (0 for an empty log). */
uint64_t eda_store_committed_seq(eda_store_t *self);

/*  Appends the event with seq eda_store_next_seq() to the log, inside the
    open transaction, indexed by `correlation_id` (its order; NULL or "" for
    none). Returns 0 or -1. */
int eda_store_append(eda_store_t *self, const char *type, const char *correlation_id,
                     const void *body, size_t len);

/*  Starts the event log anew inside the open transaction: every logged event
    is deleted, a new random epoch is drawn and the next seq is 1. Used when
    the log lost commits its peers applied (DESIGN section 4). A rollback
    restores the old epoch. 0 or -1. */
int eda_store_new_epoch(eda_store_t *self);

/*  The oldest seq the log still holds: 1 unless eda_store_forget deleted
    older ones (eda_store_committed_seq() + 1 when it holds none). */
uint64_t eda_store_first_seq(eda_store_t *self);

/*  Deletes the logged events up to `upto_seq` (at most the last committed)
    in a transaction of its own, outside any other (--retain-events). 0 or
    -1. */
int eda_store_forget(eda_store_t *self, uint64_t upto_seq);

/*  Calls fn for each logged event with seq > after_seq in order, at most
    `limit` events and, past the first, no more than `max_bytes` of bodies.
    Returns the number of events passed, or -1 on a database error. */
typedef void(eda_store_event_fn)(uint64_t seq, const void *body, size_t len, void *arg);
int eda_store_replay(eda_store_t *self, uint64_t after_seq, uint32_t limit,
                     size_t max_bytes, eda_store_event_fn *fn, void *arg);

/*  The same for one order's events (correlation_id), through an index: its
    cost grows with the order's events, not the log. Only events with
    after_seq < seq <= until_seq. */
int eda_store_replay_order(eda_store_t *self, const char *correlation_id,
                           uint64_t after_seq, uint64_t until_seq, uint32_t limit,
                           size_t max_bytes, eda_store_event_fn *fn, void *arg);

/*  Reads peer's inbox checkpoint: epoch (into epoch[EDA_EPOCH_LEN + 1], ""
    when none) and last seq applied (0 when none). Returns 0 or -1. */
int eda_store_inbox_get(eda_store_t *self, const char *peer, char *epoch,
                        size_t epoch_size, uint64_t *last_seq);

/*  Writes peer's inbox checkpoint inside the open transaction. 0 or -1. */
int eda_store_inbox_put(eda_store_t *self, const char *peer, const char *epoch,
                        uint64_t last_seq);

#endif
