/*  eda_ckpt: WAL checkpoints off the commit path. SQLite checkpoints a WAL
    database inside the commit that crosses its threshold (1000 pages by
    default): that commit, and every reply and event behind it, waits while
    the pages are copied into the database file and it is synced. Here a
    thread of the store's own, on a connection of its own, copies them while
    the service goes on committing to the WAL.
*/
#ifndef EDA_CKPT_H_INCLUDED
#define EDA_CKPT_H_INCLUDED

typedef struct eda_ckpt eda_ckpt_t;

/*  Opens a second connection to the database at `path` (already made, in
    WAL mode) and starts the checkpoint thread. NULL when either fails: the
    store then checkpoints in its commits, as SQLite does. */
eda_ckpt_t *eda_ckpt_new(const char *path);

/*  Asks for a checkpoint (a commit left the WAL at its threshold). Cheap,
    never waits for the checkpoint. */
void eda_ckpt_poke(eda_ckpt_t *self);

/*  Stops the thread (after a checkpoint in progress), closes its
    connection and nulls the pointer. Idempotent. */
void eda_ckpt_destroy(eda_ckpt_t **self_p);

#endif
