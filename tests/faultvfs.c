/*  faultvfs: a shim VFS over SQLite's default one that fails writes and
    syncs of chosen files on demand (see faultvfs.h for why it exists).

    Each file opened through it is the real VFS's sqlite3_file preceded by a
    small header of ours (szOsFile = the real one's + the header). Its
    methods forward to the real file, except xWrite and xSync, which first
    ask s_fault whether to fail (and xSync whether to wait). The methods
    table has the iVersion of the real one: WAL needs the shm methods
    (version 2) passed through, and memory-mapped reads the fetch ones
    (version 3); a method table of a higher version than the real file's
    would call methods it lacks.
*/
#include "faultvfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    sqlite3_file base;  /* ours: pMethods is one of s_methods[] */
    const char *path;   /* valid until xClose (SQLite's promise); NULL for temp */
    bool wal;           /* path ends in -wal */
    sqlite3_file *real; /* right after this header */
} s_file_t;

/*  What is armed, behind one lock: the services' actor threads write while
    the test thread arms and reads. */
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_target[256];
static int s_writes_left, s_write_rc = SQLITE_IOERR_WRITE;
static int s_syncs_left;
static int s_every_k;
static uint64_t s_wal_syncs; /* syncs of a target's -wal while every_k is set */
static faultvfs_counts_t s_injected;
static pthread_cond_t s_released = PTHREAD_COND_INITIALIZER;
static bool s_stall;  /* a target's database syncs wait */
static int s_stalled; /* syncs waiting now */

static sqlite3_vfs *s_real_vfs;
static sqlite3_vfs s_vfs;

static bool s_targeted(const s_file_t *f)
{
    return f->path && s_target[0] && strstr(f->path, s_target);
}

/*  Takes one armed count: FAULTVFS_ALWAYS stays, a positive one shrinks. */
static bool s_take(int *left)
{
    if (*left == 0)
        return false;
    if (*left > 0)
        (*left)--;
    return true;
}

/*  SQLITE_OK, or the error this write (sync: false) or sync (true) gets. */
static int s_fault(const s_file_t *f, bool sync)
{
    int rc = SQLITE_OK;
    pthread_mutex_lock(&s_lock);
    if (s_targeted(f)) {
        if (!sync && s_take(&s_writes_left)) {
            rc = s_write_rc;
            s_injected.writes++;
        } else if (sync && (s_take(&s_syncs_left) || (f->wal && s_every_k > 0 &&
                                                      ++s_wal_syncs % s_every_k == 0))) {
            rc = SQLITE_IOERR_FSYNC;
            s_injected.syncs++;
        }
    }
    pthread_mutex_unlock(&s_lock);
    return rc;
}

static sqlite3_file *s_real(sqlite3_file *file)
{
    return ((s_file_t *)file)->real;
}

/* --- the io methods: pass through, but for xWrite and xSync ------------------ */

static int s_close(sqlite3_file *file)
{
    sqlite3_file *real = s_real(file);
    return real->pMethods ? real->pMethods->xClose(real) : SQLITE_OK;
}

static int s_read(sqlite3_file *file, void *buf, int n, sqlite3_int64 offset)
{
    return s_real(file)->pMethods->xRead(s_real(file), buf, n, offset);
}

static int s_write(sqlite3_file *file, const void *buf, int n, sqlite3_int64 offset)
{
    int rc = s_fault((s_file_t *)file, false);
    return rc ? rc : s_real(file)->pMethods->xWrite(s_real(file), buf, n, offset);
}

static int s_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    return s_real(file)->pMethods->xTruncate(s_real(file), size);
}

/*  Holds a sync of a target's database file while syncs are stalled. */
static void s_wait_if_stalled(const s_file_t *f)
{
    pthread_mutex_lock(&s_lock);
    if (s_targeted(f) && !f->wal) {
        s_stalled++;
        while (s_stall)
            pthread_cond_wait(&s_released, &s_lock);
        s_stalled--;
    }
    pthread_mutex_unlock(&s_lock);
}

static int s_sync(sqlite3_file *file, int flags)
{
    s_wait_if_stalled((s_file_t *)file);
    int rc = s_fault((s_file_t *)file, true);
    return rc ? rc : s_real(file)->pMethods->xSync(s_real(file), flags);
}

static int s_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    return s_real(file)->pMethods->xFileSize(s_real(file), size);
}

static int s_lock_file(sqlite3_file *file, int level)
{
    return s_real(file)->pMethods->xLock(s_real(file), level);
}

static int s_unlock_file(sqlite3_file *file, int level)
{
    return s_real(file)->pMethods->xUnlock(s_real(file), level);
}

static int s_check_reserved(sqlite3_file *file, int *out)
{
    return s_real(file)->pMethods->xCheckReservedLock(s_real(file), out);
}

static int s_file_control(sqlite3_file *file, int op, void *arg)
{
    return s_real(file)->pMethods->xFileControl(s_real(file), op, arg);
}

static int s_sector_size(sqlite3_file *file)
{
    return s_real(file)->pMethods->xSectorSize(s_real(file));
}

static int s_device_chars(sqlite3_file *file)
{
    return s_real(file)->pMethods->xDeviceCharacteristics(s_real(file));
}

/* Version 2: the shared memory of WAL's index. */
static int s_shm_map(sqlite3_file *file, int page, int size, int extend,
                     void volatile **p)
{
    return s_real(file)->pMethods->xShmMap(s_real(file), page, size, extend, p);
}

static int s_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    return s_real(file)->pMethods->xShmLock(s_real(file), offset, n, flags);
}

static void s_shm_barrier(sqlite3_file *file)
{
    s_real(file)->pMethods->xShmBarrier(s_real(file));
}

static int s_shm_unmap(sqlite3_file *file, int delete_flag)
{
    return s_real(file)->pMethods->xShmUnmap(s_real(file), delete_flag);
}

/* Version 3: memory-mapped reads. */
static int s_fetch(sqlite3_file *file, sqlite3_int64 offset, int n, void **p)
{
    return s_real(file)->pMethods->xFetch(s_real(file), offset, n, p);
}

static int s_unfetch(sqlite3_file *file, sqlite3_int64 offset, void *p)
{
    return s_real(file)->pMethods->xUnfetch(s_real(file), offset, p);
}

#define S_METHODS_V1                                                                     \
    s_close, s_read, s_write, s_truncate, s_sync, s_file_size, s_lock_file,              \
        s_unlock_file, s_check_reserved, s_file_control, s_sector_size, s_device_chars
#define S_METHODS_V2 s_shm_map, s_shm_lock, s_shm_barrier, s_shm_unmap

/*  Indexed by the real file's iVersion (1 to 3): ours never offers a
    method the real file lacks. */
static const sqlite3_io_methods s_methods[4] = {
    [1] = {1, S_METHODS_V1, NULL, NULL, NULL, NULL, NULL, NULL},
    [2] = {2, S_METHODS_V1, S_METHODS_V2, NULL, NULL},
    [3] = {3, S_METHODS_V1, S_METHODS_V2, s_fetch, s_unfetch},
};

/* --- the VFS ---------------------------------------------------------------- */

static int s_open(sqlite3_vfs *vfs, const char *path, sqlite3_file *file, int flags,
                  int *out_flags)
{
    (void)vfs;
    s_file_t *f = (s_file_t *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    f->path = path;
    size_t len = path ? strlen(path) : 0;
    f->wal = len > 4 && strcmp(path + len - 4, "-wal") == 0;
    int rc = s_real_vfs->xOpen(s_real_vfs, path, f->real, flags, out_flags);
    /* SQLite calls xClose whenever pMethods is set, even after a failed
       open: ours is set exactly when the real one is. */
    if (f->real->pMethods) {
        int version = f->real->pMethods->iVersion;
        f->base.pMethods = &s_methods[version < 1 ? 1 : version > 3 ? 3 : version];
    }
    return rc;
}

int faultvfs_install(void)
{
    pthread_mutex_lock(&s_lock);
    int rc = 0;
    if (!s_real_vfs) {
        sqlite3_vfs *real = sqlite3_vfs_find(NULL);
        if (!real) {
            rc = -1;
        } else {
            /*  The other methods are the real VFS's own, called with this one
                as their first argument: the unix VFS keeps nothing there that
                they read (its pAppData serves xOpen, forwarded with the real
                VFS). */
            s_vfs = *real;
            s_vfs.zName = "faultvfs";
            s_vfs.szOsFile = (int)sizeof(s_file_t) + real->szOsFile;
            s_vfs.pNext = NULL;
            s_vfs.xOpen = s_open;
            if (sqlite3_vfs_register(&s_vfs, 1) == SQLITE_OK)
                s_real_vfs = real;
            else
                rc = -1;
        }
    }
    pthread_mutex_unlock(&s_lock);
    return rc;
}

void faultvfs_target(const char *substring)
{
    pthread_mutex_lock(&s_lock);
    snprintf(s_target, sizeof s_target, "%s", substring ? substring : "");
    pthread_mutex_unlock(&s_lock);
}

void faultvfs_fail_writes(int n, int rc)
{
    pthread_mutex_lock(&s_lock);
    s_writes_left = n;
    s_write_rc = rc;
    pthread_mutex_unlock(&s_lock);
}

void faultvfs_fail_syncs(int n)
{
    pthread_mutex_lock(&s_lock);
    s_syncs_left = n;
    pthread_mutex_unlock(&s_lock);
}

void faultvfs_fail_every_sync(int k)
{
    pthread_mutex_lock(&s_lock);
    s_every_k = k;
    s_wal_syncs = 0;
    pthread_mutex_unlock(&s_lock);
}

void faultvfs_fail_all(void)
{
    pthread_mutex_lock(&s_lock);
    s_writes_left = FAULTVFS_ALWAYS;
    s_write_rc = SQLITE_IOERR_WRITE;
    s_syncs_left = FAULTVFS_ALWAYS;
    pthread_mutex_unlock(&s_lock);
}

void faultvfs_stall_db_syncs(void)
{
    pthread_mutex_lock(&s_lock);
    s_stall = true;
    pthread_mutex_unlock(&s_lock);
}

int faultvfs_stalled(void)
{
    pthread_mutex_lock(&s_lock);
    int n = s_stalled;
    pthread_mutex_unlock(&s_lock);
    return n;
}

void faultvfs_clear(void)
{
    pthread_mutex_lock(&s_lock);
    s_writes_left = 0;
    s_syncs_left = 0;
    s_every_k = 0;
    s_stall = false;
    pthread_cond_broadcast(&s_released);
    pthread_mutex_unlock(&s_lock);
}

faultvfs_counts_t faultvfs_injected(void)
{
    pthread_mutex_lock(&s_lock);
    faultvfs_counts_t counts = s_injected;
    pthread_mutex_unlock(&s_lock);
    return counts;
}
