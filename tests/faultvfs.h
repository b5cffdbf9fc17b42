/*  faultvfs: an SQLite VFS that fails writes and syncs on demand, so that
    the tests reach a service's failed-commit paths (nothing leaves, the
    inbox is rewound, commands answered INTERNAL) without root. A full disk
    the honest way is a small tmpfs, and mounting one needs root; this shim
    wraps the default VFS instead and fails only the files whose path holds
    a target substring, so one service's database (and its -wal) fails while
    the others in the same process go on.

    Every function may be called from any thread: the services run in czmq
    actor threads while the test arms and clears faults.
*/
#ifndef EDA_FAULTVFS_H_INCLUDED
#define EDA_FAULTVFS_H_INCLUDED

#include <stdint.h>

#define FAULTVFS_ALWAYS (-1) /* a count that means "until faultvfs_clear" */

/*  Registers the shim as SQLite's default VFS, wrapping the default one.
    Later calls do nothing. Call it before the services open their
    databases. Returns 0 or -1. */
int faultvfs_install(void);

/*  Faults hit only files whose path contains `substring` (a database
    "x/customer.db" is targeted with "customer.db", its -wal included).
    NULL or "" targets nothing. */
void faultvfs_target(const char *substring);

/*  The next n writes to a target fail with `rc`, SQLITE_IOERR_WRITE or
    SQLITE_FULL; n FAULTVFS_ALWAYS: every write until cleared. */
void faultvfs_fail_writes(int n, int rc);

/*  The next n syncs of a target fail with SQLITE_IOERR_FSYNC;
    n FAULTVFS_ALWAYS: every sync until cleared. */
void faultvfs_fail_syncs(int n);

/*  Every k-th sync of a target's -wal fails (0: off). Under synchronous=FULL
    each commit syncs the -wal once (twice when it starts the -wal anew), so
    this fails about every k-th commit. */
void faultvfs_fail_every_sync(int k);

/*  Every write and sync of a target fails until cleared. */
void faultvfs_fail_all(void);

/*  Syncs of a target's database file wait until faultvfs_clear. Its -wal's
    do not: in WAL mode only a checkpoint syncs the database file, so this
    holds a checkpoint in the middle while commits go on. */
void faultvfs_stall_db_syncs(void);

/*  Syncs waiting now in a stall. */
int faultvfs_stalled(void);

/*  Disarms every fault and ends a stall (the target and the counters
    stay). */
void faultvfs_clear(void);

/*  Faults injected since the start of the process. */
typedef struct {
    uint64_t writes;
    uint64_t syncs;
} faultvfs_counts_t;

faultvfs_counts_t faultvfs_injected(void);

#endif
