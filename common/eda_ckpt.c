/*  eda_ckpt: one thread, one SQLite connection, woken by the store's WAL
    hook. A PASSIVE checkpoint never blocks the writer: it copies what the
    WAL holds when it starts, and the writer restarts the WAL from its
    beginning at the first commit after a checkpoint that copied it all.
    The store bounds the WAL itself should the writer outrun this thread
    (see eda_store.c, s_wal_hook).
*/
#include "eda_ckpt.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>

struct eda_ckpt {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool poked, stop;
};

static void *s_run(void *arg)
{
    eda_ckpt_t *self = arg;
    pthread_mutex_lock(&self->lock);
    while (!self->stop) {
        while (!self->poked && !self->stop)
            pthread_cond_wait(&self->wake, &self->lock);
        if (self->stop)
            break;
        self->poked = false;
        pthread_mutex_unlock(&self->lock);
        /* A failure (a full disk, a busy reader) is tried again at the next
           poke; the WAL keeps every commit meanwhile. */
        sqlite3_wal_checkpoint_v2(self->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&self->lock);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

eda_ckpt_t *eda_ckpt_new(const char *path)
{
    eda_ckpt_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    /* synchronous is FULL on a new connection: a checkpoint syncs the
       database file before the WAL may be reused, whatever the service's
       --sync. */
    if (sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        sqlite3_close(self->db);
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        pthread_cond_destroy(&self->wake);
        pthread_mutex_destroy(&self->lock);
        sqlite3_close(self->db);
        free(self);
        return NULL;
    }
    return self;
}

void eda_ckpt_poke(eda_ckpt_t *self)
{
    pthread_mutex_lock(&self->lock);
    self->poked = true;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
}

void eda_ckpt_destroy(eda_ckpt_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    eda_ckpt_t *self = *self_p;
    pthread_mutex_lock(&self->lock);
    self->stop = true;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    sqlite3_close(self->db);
    free(self);
    *self_p = NULL;
}
