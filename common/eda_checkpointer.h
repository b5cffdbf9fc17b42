/*  eda_checkpointer: copies a store's WAL into its database on a thread of
    its own, so that a commit seldom waits for a checkpoint.

    SQLite's own checkpoint runs inside the COMMIT that takes the WAL past
    1,000 pages: that commit copies the pages into the database and syncs
    it, and every message of the batch waits (7 to 50 ms, where a commit
    otherwise takes 0.03 to 0.4). Here the store's connection only counts
    its WAL after each commit (a WAL hook, which replaces SQLite's automatic
    checkpoint). Each time the WAL has grown by EDA_CHECKPOINT_PAGES it
    wakes the thread, which runs a PASSIVE checkpoint on a second connection
    while the service goes on committing. The next transaction that starts
    once everything is copied writes the WAL from its beginning again.

    Under a steady stream of commits that seldom happens: a commit lands
    during nearly every checkpoint, and the WAL would grow without bound.
    So in the last EDA_CHECKPOINT_PAGES before EDA_CHECKPOINT_CAP_PAGES the
    thread is woken ten times as often, and at the cap the committing
    thread waits for the thread's run to end and copies the rest itself,
    with no commit in between: one short wait (the last few commits' pages,
    and two syncs), after which the WAL starts over.
*/
#ifndef EDA_CHECKPOINTER_H_INCLUDED
#define EDA_CHECKPOINTER_H_INCLUDED

#include "eda_config.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDA_CHECKPOINT_PAGES     1000 /* WAL growth that wakes the thread */
#define EDA_CHECKPOINT_CAP_PAGES 4000 /* past this, the committer copies */

typedef struct eda_checkpointer eda_checkpointer_t;

/*  Opens a second connection to the database file at `path` (in WAL mode
    already, open as `db`) with `sync`'s synchronous setting, installs the
    WAL hook on `db` and starts the thread. Returns NULL with a one-line
    reason in `why` when the connection or the thread cannot be had. */
eda_checkpointer_t *eda_checkpointer_new(sqlite3 *db, const char *path, eda_sync_t sync,
                                         char *why, size_t why_size);

/*  Stops the thread (a run in progress ends first), removes the hook and
    closes the second connection. Before `db` is closed. Idempotent. */
void eda_checkpointer_destroy(eda_checkpointer_t **self_p);

typedef struct {
    uint64_t wal_pages; /* in the WAL after the last commit */
    uint64_t restarts;  /* times a commit wrote the WAL from its beginning */
    uint64_t runs;      /* checkpoints the thread ran */
    uint64_t waits;     /* checkpoints a commit ran, past the cap */
    uint64_t failures;  /* checkpoints that failed (not "busy") */
} eda_checkpointer_stats_t;

/*  All zero for NULL (a store in memory has no checkpointer). */
eda_checkpointer_stats_t eda_checkpointer_stats(eda_checkpointer_t *self);

/*  True, with the latest failure's reason in `why`, when a checkpoint
    failed since the last call: for a log line now and then, not one per
    failed checkpoint. False for NULL. */
bool eda_checkpointer_failed(eda_checkpointer_t *self, char *why, size_t why_size);

#endif
