/*
 * ic_fuse: the FUSE low-level file system over the inode layer
 * (iclient.md 7), and mounting (2.1 step 4, 2.4).
 *
 * Locking: an operation holds inode locks (ic_inode_get) only, taken in
 * ascending inode number order; a name looked up before its inode was
 * locked is looked up again once everything is locked, and the operation
 * starts over if it changed (the original's Retry pattern without the
 * sleep). Lookups hold one inode at a time.
 *
 * Durability: metadata operations flush the inodes they changed before
 * replying; file data is flushed when the log segment reaches
 * FileFlushTriggerSize, on FLUSH (every close), FSYNC, RELEASE, and
 * FSYNC(datasync=0) also asks imgr for a checkpoint (Flush RPC).
 */
#ifndef PFS_IC_FUSE_H
#define PFS_IC_FUSE_H

#include <stdbool.h>
#include <stdint.h>

#include "ic_internal.h"

struct fuse_session;

typedef struct ic_fs_params {
  ic_volume *vol;
  const ic_imgr_ops *imgr;
  void *imgr_ctx;
  const char *mount_id;          /* copied */
  uint32_t block_size;           /* FUSEBlockSize: statfs bsize/frsize */
  uint64_t entry_valid_ns;       /* FUSEEntryValidDuration */
  uint64_t attr_valid_ns;        /* FUSEAttrValidDuration */
  uint32_t max_write;            /* FUSEMaxWrite */
  uint32_t max_read;             /* FUSEMaxRead */
  uint32_t max_threads;          /* FUSEMaxThreads; 0 = 16 */
  uint16_t max_background;       /* FUSEMaxBackground */
  uint16_t congestion_threshold; /* FUSECongestionThreshhold */
  bool allow_other;              /* FUSEAllowOther */
  const char *fsname;            /* VolumeName */
} ic_fs_params;

typedef struct ic_fs ic_fs;

int ic_fs_create(const ic_fs_params *p, ic_fs **out);
/* After ic_fs_unmount (or if never mounted). */
void ic_fs_destroy(ic_fs *fs);

/*
 * Mount on dir and serve with libfuse's multithreaded loop on a thread of
 * its own. A stale FUSE mount left on dir by a crashed client (stat fails
 * with ENOTCONN) is detached first (iclient.md 2.4).
 */
int ic_fs_mount(ic_fs *fs, const char *dir);
/* Unmount (lazily: a busy mount point is detached, not refused), stop the
 * loop and wait for it. Dirty inodes are not flushed here: every handle's
 * RELEASE already did. */
void ic_fs_unmount(ic_fs *fs);

/* The kernel drops what it caches of inode ino (attributes, pages), so the
 * next access asks us (and we ask imgr for a lease): after a lease was
 * given back to imgr for another client. Call it with no inode lock held
 * (the kernel may wait for a read of that inode in progress). NULL or not
 * mounted: nothing. */
void ic_fs_invalidate(ic_fs *fs, uint64_t ino);

/* The same for the kernel's cached entry `name` in directory parent. */
void ic_fs_invalidate_entry(ic_fs *fs, uint64_t parent, const char *name, size_t len);

/* If dir is a stale FUSE mount (ENOTCONN), detach it. 0 if dir is usable. */
int ic_mount_point_prepare(const char *dir);

/* The one table from internal errors to FUSE replies. */
int ic_fuse_errno(int rc);

#endif
