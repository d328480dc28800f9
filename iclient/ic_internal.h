/*
 * iclient internals: object store access, read cache, the volume (nonces,
 * inode cache) and the inode layer (heads, B+trees, extents, flush).
 *
 * Lock order: inode lock (ic_inode_get .. ic_inode_put), then the volume's
 * table mutex, then the read cache mutex, then a tree's own mutex
 * (sortedmap). The table and read-cache mutexes are never held across
 * network I/O. An inode lock is the original's per-inode lock: it is held
 * while that inode's objects are read or written (only users of that inode
 * wait), exactly one holder at a time. An operation locking several inodes
 * takes them in ascending inode number order.
 */
#ifndef PFS_IC_INTERNAL_H
#define PFS_IC_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ic_imgr.h"
#include "ilayout.h"
#include "sortedmap.h"

/* ---- object store ------------------------------------------------------
 * Whole-object PUT and ranged GETs of the volume's objects by number.
 * get: up to len bytes at off into buf, *got = bytes present (fewer at the
 * object's end; -ERANGE if off is at or past the end); get_tail: exactly the
 * last len bytes (-EIO if the object is shorter). Implementations must be
 * thread-safe. */
typedef struct ic_store_ops {
  int (*get)(void *ctx, uint64_t object_number, uint64_t off, uint64_t len, void *buf, size_t *got);
  int (*get_tail)(void *ctx, uint64_t object_number, uint64_t len, void *buf);
  int (*put)(void *ctx, uint64_t object_number, const void *buf, size_t len);
} ic_store_ops;

/* The real store: swiftclient over one container (ic_store_swift.c). */
struct swift_conn;
typedef struct ic_store_swift {
  struct swift_conn *conn; /* borrowed */
  const char *container;   /* borrowed; "" when the storage URL names it */
} ic_store_swift;
extern const ic_store_ops ic_store_swift_ops;

/* ---- read cache (iclient.md 5.2) ----------------------------------------
 * Lines of line_size bytes keyed by (object, line number); line n covers
 * object bytes [n * line_size, (n+1) * line_size) (the original computed
 * the offset as n & line_size: iclient.md 10 / 5.2 bug, fixed). At most
 * max_lines lines are resident, including lines being filled; a reader that
 * finds every line busy waits for one to free up. The last evicted line's
 * buffer is kept for the next fill (max_lines + 1 buffers in all), so a
 * full cache reads on without allocating. Objects are write-once,
 * so lines never go stale. Thread-safe. */
typedef struct ic_rcache ic_rcache;
typedef struct ic_rcache_stats {
  uint64_t hits, misses, evictions, lines, prefetches;
} ic_rcache_stats;
/* Read-ahead: a miss on line n of an object that looks read in order (n is
 * 0, or line n-1 was used just now) queues lines n+1 .. n+prefetch_lines, which
 * prefetch_threads threads fetch meanwhile, within max_lines (they take a
 * free or evictable line, never wait for one); at most
 * IC_RCACHE_QUEUE_PER_LINE x prefetch_lines are queued. Lines past the
 * object's end fail quietly. prefetch_lines 0: none. A miss that does not
 * look in order fetches only the aligned 32 KiB blocks of its line that
 * hold the bytes asked for; a later read of other bytes of that line
 * fetches the whole line. */
#define IC_RCACHE_QUEUE_PER_LINE 16
int ic_rcache_create(const ic_store_ops *store, void *store_ctx, uint64_t line_size,
                     uint64_t max_lines, unsigned prefetch_lines, unsigned prefetch_threads,
                     ic_rcache **out);
void ic_rcache_destroy(ic_rcache *rc);
/* Copy object bytes [off, off+len) into buf through the cache. -EIO if the
 * object is shorter or the store fails (the failed line is not kept). */
int ic_rcache_read(ic_rcache *rc, uint64_t object_number, uint64_t off, uint64_t len, void *buf);
void ic_rcache_stats_get(ic_rcache *rc, ic_rcache_stats *out);

/* ---- volume ------------------------------------------------------------ */
typedef struct ic_volume ic_volume;
typedef struct ic_inode ic_inode;

#define IC_LEASE_CAP_CHECK 64
typedef struct ic_volume_params {
  const ic_imgr_ops *imgr;
  void *imgr_ctx;
  const ic_store_ops *store;
  void *store_ctx;
  const char *mount_id;                           /* copied */
  uint64_t dir_max_keys;                          /* DirInodeMaxKeysPerBPlusTreePage */
  uint64_t file_max_keys;                         /* FileInodeMaxKeysPerBPlusTreePage */
  uint64_t payload_evict_low, payload_evict_high; /* InodePayloadEvict*Limit */
  uint64_t payload_evict_bytes;                   /* InodePayloadEvictBytesLimit, 0 = none */
  uint64_t read_cache_line_size, read_cache_line_count_max;
  unsigned read_ahead_lines, read_ahead_threads; /* ReadAheadLines, ReadAheadThreads */
  uint64_t inode_cache_limit;       /* InodeCacheLimit */
  /* MaxSharedLeases / MaxExclusiveLeases (0 = no cap): leases held at imgr
   * beyond them are given back with their inodes, least recently used
   * first, among the clean inodes nobody uses (checked every
   * IC_LEASE_CAP_CHECK releases of an inode; a new inode holds none until
   * its first commit). */
  uint64_t max_shared_leases, max_exclusive_leases;
  uint64_t file_flush_trigger_size; /* FileFlushTriggerSize */
  /* SegmentUploadThreads, SegmentUploadLimit: threads storing full log
   * segments in the background, and how many such segments (of
   * FileFlushTriggerSize) may wait for them before a writer waits too;
   * 0 = 4 each. */
  unsigned upload_threads, upload_limit;
  /* How long a writer waits for room among the sealed segments in flight
   * before its write fails with EIO (SwiftTimeout: longer means the
   * uploads are not getting through); 0 = 60 s. */
  uint64_t upload_wait_ns;
  /* FileFlushTriggerDuration: an inode left dirty by its last user is
   * flushed this long after that, by the volume's flusher thread; 0 = no
   * flusher (callers flush). */
  uint64_t file_flush_trigger_ns;
} ic_volume_params;

int ic_volume_create(const ic_volume_params *p, ic_volume **out);
/* Stops the flusher, frees everything; dirty state is lost (flush first).
 * No inode may be held. */
void ic_volume_destroy(ic_volume *v);
/* One nonce from the pool, fetching a new range from imgr when empty. */
int ic_volume_nonce(ic_volume *v, uint64_t *nonce);
ic_rcache *ic_volume_rcache(ic_volume *v);
/* Drop every clean, unused inode and its cached state (heads, trees); the
 * read cache is kept. Returns the number of inodes still cached. */
size_t ic_volume_drop_clean(ic_volume *v);
size_t ic_volume_inodes_cached(ic_volume *v);
/* The lease this client holds on an inode (iclient.md 4.1, reduced to the
 * stable states: requests happen under the inode lock, so the transitional
 * states are never observable from outside). */
typedef enum {
  IC_LEASE_STATE_NONE = 0,
  IC_LEASE_STATE_SHARED,    /* "SharedGranted" */
  IC_LEASE_STATE_EXCLUSIVE, /* "ExclusiveGranted" */
} ic_lease_state;
/* "None", "SharedGranted", "ExclusiveGranted" (the /leases names). */
const char *ic_lease_state_name(ic_lease_state s);

/* Call fn for every cached inode (number, lease), under the table mutex: fn
 * must not call into the volume. Stops at fn's first nonzero return, which
 * it returns. */
int ic_volume_list_inodes(ic_volume *v, int (*fn)(void *ctx, uint64_t ino, ic_lease_state s),
                          void *ctx);

/* An RPCInterrupt from imgr (iclient.md 4.3), IC_RPC_INTERRUPT_DEMOTE or
 * _RELEASE for inode_number. Waits for the inode's current user (the
 * "interrupt pending until the last holder leaves" rule), flushes it if
 * dirty, then Demote: Lease Demote, keep the cache, hold Shared; Release:
 * drop the cached head, tree and pages, Lease Release. Not cached or not
 * holding the lease concerned: nothing to do (0). If the flush fails the
 * lease is kept and the error returned (imgr retries the interrupt). */
int ic_volume_lease_interrupt(ic_volume *v, uint32_t type, uint64_t inode_number);

/* Every lease died at once (imgr forgot the mount; the client mounted
 * again: ic_rpc_set_remount). Waits for nothing and sends nothing: each
 * cached inode's lease now reads as none, so its next use asks again; a
 * clean inode's cached state is dropped then (it may be stale), a dirty
 * inode keeps its changes only if imgr still has the head they were made
 * to (else they are dropped and the operation fails with EIO). The open
 * counts imgr kept for the old mount are gone too: ic_volume_reopen_all. */
void ic_volume_leases_reset(ic_volume *v);
/* After ic_volume_leases_reset: tell imgr again of every inode this
 * client holds open (AdjustInodeTableEntryOpenCount +1 under a fresh
 * shared lease), so that one unlinked while open is still kept until its
 * last close. Takes inode locks: not on a thread that holds one. Returns
 * the first error (each is logged); inodes it could not tell are counted
 * again by the next call. */
int ic_volume_reopen_all(ic_volume *v);

/* After a Release interrupt dropped the cache of a directory whose tree
 * was open, fn gets each name that tree held (the first
 * IC_DIR_RELEASED_NAMES_MAX in name order), with no lock held: the kernel's
 * cached entries under it may be stale now (another client changes the
 * directory). fn NULL: none. */
#define IC_DIR_RELEASED_NAMES_MAX 1024
typedef void (*ic_volume_dir_released_fn)(void *ctx, uint64_t dir, const char *name, size_t len);
void ic_volume_set_dir_released(ic_volume *v, ic_volume_dir_released_fn fn, void *ctx);

/* ---- write-back (group commit) -----------------------------------------
 * Operations change inodes in memory; commits happen later, in groups. An
 * operation that changed several inodes together (create: directory + new
 * inode; rename: up to four) calls ic_volume_changed with them all still
 * held: they join one commit group, merged with the groups they were in. A
 * group is only ever committed whole, in one PutInodeTableEntries, so that
 * no commit (and no crash) exposes half an operation, such as a directory
 * entry naming an inode imgr does not have yet. An inode its last user
 * leaves dirty (a write) joins the dirty set in a group of its own.
 *
 * Commits happen: for fsync/fsyncdir (ic_volume_flush), on a lease
 * interrupt, FileFlushTriggerDuration after a group became dirty (the
 * flusher), at unmount (ic_volume_flush_all), and when the dirty set passes
 * its caps: InodeCacheLimit / 2 inodes or 4 x FileFlushTriggerSize bytes of
 * unwritten log segments (ic_volume_backpressure). A file's own log segment
 * is still written when it reaches FileFlushTriggerSize (ic_file_write):
 * committing a file alone never exposes another inode, files name none. */
void ic_volume_changed(ic_volume *v, ic_inode *const *inodes, size_t n);
/* Commit the group holding ino, if it is dirty. The members are locked in
 * ascending order, so the caller must hold no inode. */
int ic_volume_flush(ic_volume *v, uint64_t ino);
/* Commit every group dirty when called. Holding no inode. */
int ic_volume_flush_all(ic_volume *v);
/* Call holding no inode, after an operation: if this thread pushed the
 * dirty set over a cap, commit everything now (the writer pays, which holds
 * memory to the caps). */
void ic_volume_backpressure(void);
/* The held inode lost its last link (unlink, rmdir, rename over it). It is
 * not committed again; once the operation's group is committed, imgr is
 * told to delete it (DeleteInodeTableEntry: deferred by imgr while open)
 * and its cached state is dropped. */
void ic_inode_unlinked(ic_inode *in);
/* Open handles of the held inode (open, opendir; release, releasedir).
 * imgr counts a mount's opens of the inodes it knows, so that deleting one
 * waits for its last close (AdjustInodeTableEntryOpenCount); it is told of
 * the first open and the last close only, and of a new inode's opens once
 * that is committed. Errors are imgr's (-EIO, -ENOLCK); close of an inode
 * that is not open is -EBADF. */
int ic_inode_open(ic_volume *v, ic_inode *in);
int ic_inode_close(ic_volume *v, ic_inode *in);
/* Dirty inodes in the dirty set and their unwritten bytes (stats). */
void ic_volume_dirty_stats(ic_volume *v, size_t *inodes, uint64_t *bytes);

/* ---- inodes ------------------------------------------------------------
 * ic_inode_get returns the inode locked and referenced, with an exclusive
 * lease held (requested, or promoted from shared, when missing);
 * ic_inode_get_shared needs only a shared lease, for operations that change
 * nothing (loading the head and pages under it only fills the cache,
 * iclient.md 10.7). Lock waits are local: one holder per inode at a time
 * (the multi-request lock queue of iclient.md 4.2 is not reproduced). A
 * lease imgr does not grant is -ENOLCK. The head is not loaded yet: call
 * ic_inode_load. ic_inode_put unlocks and unreferences it; a clean
 * unreferenced inode may then be evicted (its lease is released). */
int ic_inode_get(ic_volume *v, uint64_t inode_number, ic_inode **out);
int ic_inode_get_shared(ic_volume *v, uint64_t inode_number, ic_inode **out);
void ic_inode_put(ic_volume *v, ic_inode *in);
/* Load the head (GetInodeTableEntry + tail GET + decode) if not loaded.
 * -ENOENT if imgr does not know the inode, -EIO/-EINVAL on storage/decoding
 * failures. */
int ic_inode_load(ic_volume *v, ic_inode *in);
/* A new inode (a fresh nonce as number), returned locked like ic_inode_get,
 * dirty, with an empty payload tree for dirs and files. Times = now. */
int ic_inode_create(ic_volume *v, uint8_t type, uint16_t mode, uint64_t uid, uint64_t gid,
                    ic_inode **out);

/* The same with a given number (formatting a root directory, tools):
 * -EEXIST if that inode is cached as loaded. */
int ic_inode_create_at(ic_volume *v, uint64_t inode_number, uint8_t type, uint16_t mode,
                       uint64_t uid, uint64_t gid, ic_inode **out);

typedef struct ic_attr {
  uint64_t inode_number;
  uint8_t type;
  uint64_t size;
  int64_t mtime_ns, ctime_ns;
  uint16_t mode;
  uint64_t uid, gid;
  uint64_t nlink;
} ic_attr;
/* The mode bits iclient keeps: permissions plus setuid, setgid and sticky.
 * The head's Mode is a u16 that no decoder checks (ilayout.md 7.2), so the
 * three extra bits fit the format; the original masked them off
 * (ILAYOUT_INODE_MODE_MASK), a reader that does so only loses them. */
#define IC_INODE_MODE_MASK UINT16_C(07777)
/* The loaded inode's attributes. */
void ic_inode_attr(const ic_inode *in, ic_attr *out);
bool ic_inode_dirty(const ic_inode *in);
uint64_t ic_inode_number(const ic_inode *in);

/* LinkTable edits (in memory; the inode becomes dirty). add: -EEXIST if the
 * pair is present; remove: -ENOENT if absent. */
int ic_inode_link_add(ic_inode *in, uint64_t parent, const char *name, size_t len);
int ic_inode_link_remove(ic_inode *in, uint64_t parent, const char *name, size_t len);

/* Extended attributes (the StreamTable; names NUL-terminated). get/list:
 * cap 0 asks for the length only, a too small cap is -ERANGE; get of a
 * missing name -ENODATA. set: flags IC_XATTR_CREATE (-EEXIST if present) /
 * IC_XATTR_REPLACE (-ENODATA if absent), others -EINVAL. */
#define IC_XATTR_CREATE 1
#define IC_XATTR_REPLACE 2
int ic_inode_xattr_get(ic_inode *in, const char *name, void *buf, size_t cap, size_t *len);
int ic_inode_xattr_set(ic_inode *in, const char *name, const void *val, size_t vlen, int flags);
int ic_inode_xattr_remove(ic_inode *in, const char *name);
int ic_inode_xattr_list(ic_inode *in, char *buf, size_t cap, size_t *len);
/* A symlink's target (the inode becomes dirty); -EINVAL for other types. */
int ic_inode_set_symlink(ic_inode *in, const char *target, size_t len);
/* imgr removed the inode: drop every cached and pending state so that it is
 * never flushed again. */
void ic_inode_forget_deleted(ic_inode *in);

/* ---- directories (payload tree keyed by name) ---- */
typedef struct ic_dirent {
  uint64_t inode_number;
  uint8_t inode_type;
} ic_dirent;
#define IC_NAME_MAX 255
/* -ENOTDIR if not a directory, -ENOENT if absent. */
int ic_dir_lookup(ic_volume *v, ic_inode *dir, const char *name, size_t len, ic_dirent *out);
/* -EEXIST if present; -ENAMETOOLONG beyond IC_NAME_MAX; -EINVAL for "" or a '/'. */
int ic_dir_insert(ic_volume *v, ic_inode *dir, const char *name, size_t len, const ic_dirent *e);
int ic_dir_delete(ic_volume *v, ic_inode *dir, const char *name, size_t len);
int ic_dir_count(ic_volume *v, ic_inode *dir, uint64_t *n);
/* Entry number index in name order; name gets up to IC_NAME_MAX bytes plus
 * a NUL. -ENOENT past the end. */
int ic_dir_entry_at(ic_volume *v, ic_inode *dir, uint64_t index, char name[IC_NAME_MAX + 1],
                    size_t *len, ic_dirent *out);

/* ---- files ---- */
/* Write len bytes at off (recordExtent, iclient.md 6.2); Size grows. The
 * bytes go to the inode's log segment; when it reaches FileFlushTriggerSize
 * the inode is flushed before returning. -EISDIR/-EINVAL for non-files. */
int ic_file_write(ic_volume *v, ic_inode *in, uint64_t off, const void *data, size_t len);
/* Read up to len bytes at off: holes read as zeros, stops at Size. */
int ic_file_read(ic_volume *v, ic_inode *in, uint64_t off, size_t len, void *buf, size_t *got);
/* Set Size; shrinking unmaps the extents beyond (unmapExtent). */
int ic_file_truncate(ic_volume *v, ic_inode *in, uint64_t size);
/* SEEK_DATA / SEEK_HOLE from the extent map: the first data byte at or
 * after off, or the first hole byte (Size counts as a hole). -ENXIO when
 * off >= Size or no data follows. */
int ic_file_seek_data(ic_volume *v, ic_inode *in, uint64_t off, bool hole, uint64_t *out);
/* Unmap [off, off+len) without changing Size (holes read as zeros). */
int ic_file_punch_hole(ic_volume *v, ic_inode *in, uint64_t off, uint64_t len);

/* ---- flush (iclient.md 6.3) ----
 * Write every listed dirty inode's log segment (payload nodes + head) and
 * commit them all with one PutInodeTableEntries. Clean inodes are skipped.
 * All must be held (locked) by the caller, dirty ones with an exclusive
 * lease (else -ENOLCK). On failure nothing is lost: the inodes stay dirty
 * and a later flush sends everything still pending. A dirty inode whose
 * lease was lost (with the mount, or expired) takes an exclusive one again
 * first. When imgr says a lease is missing (EMissingLease: it expired the
 * lease, or forgot the mount during the commit), the leases are taken again
 * and the commit sent once more, if imgr still has the heads the changes
 * were made to; if imgr already has the heads sent, the commit had landed
 * (0). Otherwise the changes are dropped and the result is -EIO. */
int ic_flush_inodes(ic_volume *v, ic_inode *const *inodes, size_t n);

/* Debug check of iclient.md 10.6: for every object in the loaded inode's
 * layout, BytesReferenced == bytes of live extents + live tree nodes in it;
 * loads the whole payload tree. Flush first (dirty nodes have no place yet).
 * 0 or -EUCLEAN (detail logged). */
int ic_inode_check_accounting(ic_volume *v, ic_inode *in);

#endif
