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

/* A sealed segment (ic_upload.c): a full log segment stored by an uploader
 * thread while its inode goes on. Its object is already a layout object
 * (accounting folded in). buf (cap bytes) is given up once stored; state
 * and buf are under the volume's seal_mu. */
typedef enum { IC_SEALED_UPLOADING, IC_SEALED_STORED, IC_SEALED_FAILED } ic_sealed_state;
typedef struct ic_sealed {
  uint64_t obj;
  uint8_t *buf;
  size_t len, cap;
  ic_sealed_state state;
  struct ic_sealed *qnext; /* upload queue */
} ic_sealed;

/* Defaults of ic_volume_params.upload_threads / upload_limit. */
#define IC_UPLOAD_THREADS_DEFAULT 4
#define IC_UPLOAD_LIMIT_DEFAULT 4
/* A log segment buffer that grows to this size is given room for a whole
 * segment (FileFlushTriggerSize) in its next step (ic_put_append). */
#define IC_SEGMENT_GROW_WHOLE ((size_t)1 << 20)
/* Whole-segment buffers kept spare (ic_segbuf_give): a sequential writer's
 * next segment reuses the memory of one just stored instead of mapping and
 * faulting in FileFlushTriggerSize bytes afresh (that cost iclient about
 * 0.4 s of CPU per GiB written).
 * At most this many, and only while spares and segments in flight
 * together are within SegmentUploadLimit segments. */
#define IC_SEGBUF_SPARE 2

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
  /* Write-back (ic_internal.h): in the dirty set, since marked_at, in the
   * commit group whose union-find root uf leads to; dnext/dprev link the
   * dirty set; marked_bytes is put_len as last counted in dirty_bytes;
   * gsize is the group's size, kept at its root. */
  bool marked;
  size_t gsize;
  uint64_t marked_at;
  ic_inode *uf, *dnext, *dprev;
  size_t marked_bytes;

  /* Under the inode lock. */
  bool loaded;
  bool dirty;
  bool delete_pending; /* last link gone: never committed again (ic_inode_unlinked) */
  bool known;          /* imgr has a table entry for it (loaded, or committed) */
  /* A new inode's exclusive lease is only asked for when it is first
   * committed: until then no other client can know its number. */
  bool lease_unasked;
  uint32_t opens;      /* this client's open handles (kept across lease loss) */
  bool open_told;      /* imgr counts one open of this mount (ic_inode_open) */
  uint64_t open_gen;   /* the volume's lease_gen when told: older = told a lost mount */
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
  ic_sealed **sealed; /* sealed segments since the last commit */
  size_t nsealed, capsealed;

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
  unsigned puts_since_lease_check; /* IC_LEASE_CAP_CHECK */
  bool nonce_fetching;

  /* Bumped when every lease died at once (imgr forgot the mount): an
   * inode's lease counts only if granted under the current value. */
  _Atomic uint64_t lease_gen;
  ic_volume_dir_released_fn dir_released; /* under mu */
  void *dir_released_ctx;

  ic_inode *dirty_head; /* the dirty set (marked inodes) */
  size_t nmarked;
  uint64_t dirty_bytes;

  pthread_mutex_t seal_mu; /* sealed segments' state, the upload queue */
  pthread_cond_t seal_cv;
  ic_sealed *upload_head, *upload_tail;
  uint64_t sealed_bytes; /* sealed, not stored yet */
  pthread_t *uploaders; /* p.upload_threads of them */
  unsigned nuploaders;
  unsigned uploading; /* segments an uploader is storing now */
  bool upload_stopping;
  struct {
    uint8_t *buf;
    size_t cap;
  } spare[IC_SEGBUF_SPARE]; /* ic_segbuf_give */
  unsigned nspare;

  pthread_t flusher;
  bool flusher_running, stopping;
  pthread_cond_t flusher_cv; /* wakes the flusher early on stop */
};

/* Log segment PUTs and deletes of one commit run this many at a time. */
#define IC_COMMIT_THREADS 8

/* ic_volume.c, for ic_flush.c. The lease held on a held inode (NONE when
 * it was lost with the mount). */
ic_lease_state ic_volume_lease_of(ic_volume *v, const ic_inode *in);
/* The held inode has no valid lease though it had one or is dirty (lost
 * with the mount, or expired): clean, forget its cache; dirty, take an
 * exclusive lease again and keep the changes if imgr still has base_obj,
 * else drop them (-EIO). */
int ic_volume_lease_recover(ic_volume *v, ic_inode *in);
/* The lease generation now (bumped by ic_volume_leases_reset). */
uint64_t ic_volume_lease_gen(ic_volume *v);
/* Take an exclusive lease on a held inode again, unless one was granted
 * after lease generation `since` (imgr would deny asking twice), and read
 * the head imgr has for it now (*imgr_head, 0 if imgr does not know it). */
int ic_volume_lease_regain(ic_volume *v, ic_inode *in, uint64_t since, uint64_t *imgr_head);

/* ic_volume.c: a new inode number, locked and referenced like
 * ic_inode_get, with an exclusive lease not asked for yet (lease_unasked)
 * unless the inode is already cached with a lease or loaded. */
int ic_inode_get_new(ic_volume *v, uint64_t inode_number, ic_inode **out);
/* Ask imgr for the exclusive leases of the held new inodes among these
 * (lease_unasked), IC_COMMIT_THREADS at a time: before their first commit. */
int ic_volume_ask_new_leases(ic_volume *v, ic_inode *const *inodes, size_t n);

/* ic_upload.c. start/stop: the uploader threads (stop drains the queue;
 * seal_mu and seal_cv are the volume's, made and destroyed with it).
 * room: wait until one more segment fits among the sealed bytes in flight
 * (-EIO after upload_wait_ns, or at once when all of them failed); seal: the inode's full active segment is
 * sealed and queued. copy: bytes of a sealed object not
 * stored yet into dst: 0, or 1 when obj is not such an object (read it
 * from the store). wait: before a commit, every sealed segment stored
 * (a failed one is PUT again here), then forgotten; -EIO if one cannot be.
 * discard: drop them all (the inode's state is being freed). */
int ic_upload_start(ic_volume *v);
void ic_upload_stop(ic_volume *v);
int ic_upload_room(ic_volume *v);
int ic_seal_segment(ic_volume *v, ic_inode *in);
int ic_sealed_copy(ic_volume *v, ic_inode *in, uint64_t obj, uint64_t off, uint64_t len,
                   void *dst);
int ic_sealed_wait(ic_volume *v, ic_inode *in);
void ic_sealed_discard(ic_volume *v, ic_inode *in);
/* Segment buffers. take: a spare one of at least `need` bytes (its size
 * in *cap), or NULL. give: done with buf (cap bytes, may be NULL): kept
 * spare if it holds a whole segment and there is room, else freed.
 * drain: free the spares (the volume is going). */
uint8_t *ic_segbuf_take(ic_volume *v, size_t need, size_t *cap);
void ic_segbuf_give(ic_volume *v, uint8_t *buf, size_t cap);
void ic_segbuf_drain(ic_volume *v);

/* ic_inode.c */
/* Close the accounting of the active put object pe: folded into the
 * pending deltas when `keep` (it references bytes), else dropped. */
void ic_put_fold(ic_inode *in, ilayout_layout_entry_v1 *pe, bool keep);
int ic_inode_payload(ic_volume *v, ic_inode *in, sm_tree **out);
ilayout_layout_entry_v1 *ic_layout_find(ic_inode *in, uint64_t obj);
int ic_layout_unref(ic_inode *in, uint64_t obj, uint64_t len);
int ic_put_append(ic_inode *in, const void *data, size_t len, uint64_t *obj, uint64_t *off);
int ic_deref_add(ic_inode *in, uint64_t obj);
void ic_inode_free_state(ic_inode *in);

#endif
