/*
 * The volume and inode structs, shared by ic_volume.c, ic_inode.c,
 * ic_file.c and ic_flush.c only.
 *
 * Accounting (iclient.md 6, 10.6). An inode's layout lists every object that
 * holds bytes it wrote (data, tree nodes) with BytesWritten and
 * BytesReferenced; the head's own bytes are never counted. The pending
 * deltas d_* and the deref list are what the next successful
 * PutInodeTableEntries reports, so that imgr's superblock counters equal
 * the sums over all inodes' layouts:
 *   - bytes written to the active put object change only its layout entry;
 *     when the object is PUT, an entry that still references bytes is folded
 *     in once (count +1, written +W, referenced +R); one that references
 *     nothing is dropped and never counted;
 *   - unreferencing n bytes of an older object subtracts n from its entry
 *     and from d_referenced; at 0 the object leaves the layout (count -1,
 *     written -W) and goes to deref;
 *   - the previous head object, when it is not (or no longer) in the layout,
 *     goes to deref when a new head is PUT (the original leaked it).
 */
#ifndef PFS_IC_INODE_INTERNAL_H
#define PFS_IC_INODE_INTERNAL_H

#include <stdatomic.h>

#include "ic_internal.h"

typedef struct ic_link {
  uint64_t parent;
  char *name;
  size_t len;
} ic_link;

typedef struct ic_stream {
  char *name;
  size_t name_len;
  uint8_t *value;
  size_t value_len;
} ic_stream;

struct ic_inode {
  ic_volume *vol;
  uint64_t ino;
  pthread_mutex_t lock; /* the inode lock */

  /* Under the volume's table mutex. */
  unsigned refs;
  bool evicting;
  ic_inode *hnext, *lru_prev, *lru_next;
  ic_lease_state lease; /* written with the inode lock held too */
  uint64_t lease_gen;   /* the volume's lease_gen when granted: older = lost */
  uint64_t dirty_since; /* ut_now_ns() when its last user left it dirty; 0 = idle */

  /* Under the inode lock. */
  bool loaded;
  bool dirty;
  uint8_t type;
  uint64_t size;
  int64_t mtime_ns, ctime_ns;
  uint16_t mode;
  uint64_t uid, gid;
  ic_link *links;
  size_t nlinks;
  ic_stream *streams;
  size_t nstreams;
  char *symlink;
  size_t symlink_len;
  ilayout_layout_entry_v1 *layout;
  size_t nlayout, caplayout;
  sm_tree *payload; /* NULL until opened */
  sm_ref payload_ref;

  int64_t d_count, d_written, d_referenced;
  uint64_t *deref;
  size_t nderef, capderef;

  uint64_t put_obj; /* active log segment, 0 = none */
  uint8_t *put_buf;
  size_t put_len, put_cap;

  uint64_t head_obj, head_len; /* where the newest head was PUT */
  /* The head imgr had committed when this state was loaded or last
   * committed (0: imgr does not know the inode). After a lost lease, dirty
   * state is sent again only if imgr still has this head. */
  uint64_t base_obj;
};

struct ic_volume {
  const ic_imgr_ops *imgr;
  void *imgr_ctx;
  const ic_store_ops *store;
  void *store_ctx;
  char *mount_id;
  ic_volume_params p;
  ic_rcache *rcache;
  sm_cache *node_cache;

  pthread_mutex_t mu; /* table, LRU, nonce pool */
  pthread_cond_t cv;  /* evictions finishing, nonce fetches finishing */
  ic_inode **buckets;
  size_t nbuckets;
  size_t ninodes;
  ic_inode *lru_head, *lru_tail;
  uint64_t next_nonce, nonces_left;
  bool nonce_fetching;

  /* Bumped when every lease died at once (imgr forgot the mount): an
   * inode's lease counts only if granted under the current value. */
  _Atomic uint64_t lease_gen;
  ic_volume_dir_released_fn dir_released; /* under mu */
  void *dir_released_ctx;

  pthread_t flusher;
  bool flusher_running, stopping;
  pthread_cond_t flusher_cv; /* wakes the flusher early on stop */
};

/* ic_volume.c, for ic_flush.c. The lease held on a held inode (NONE when
 * it was lost with the mount). */
ic_lease_state ic_volume_lease_of(ic_volume *v, const ic_inode *in);
/* The held inode has no valid lease though it had one or is dirty (lost
 * with the mount, or expired): clean, forget its cache; dirty, take an
 * exclusive lease again and keep the changes if imgr still has base_obj,
 * else drop them (-EIO). */
int ic_volume_lease_recover(ic_volume *v, ic_inode *in);
/* Take an exclusive lease on a held inode again and read the head imgr
 * has for it now (*imgr_head, 0 if imgr does not know the inode). */
int ic_volume_lease_regain(ic_volume *v, ic_inode *in, uint64_t *imgr_head);

/* ic_inode.c */
int ic_inode_payload(ic_volume *v, ic_inode *in, sm_tree **out);
ilayout_layout_entry_v1 *ic_layout_find(ic_inode *in, uint64_t obj);
int ic_layout_unref(ic_inode *in, uint64_t obj, uint64_t len);
int ic_put_append(ic_inode *in, const void *data, size_t len, uint64_t *obj, uint64_t *off);
int ic_deref_add(ic_inode *in, uint64_t obj);
void ic_inode_free_state(ic_inode *in);

#endif
