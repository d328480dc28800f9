/*
 * sortedmap: the paged B+tree of ProxyFS (inode table, directories, file
 * extent maps). Node bytes are those of NVIDIA sortedmap's B+tree
 * (ilayout.md section 11); a tree written here opens in the Go original and
 * the other way round.
 *
 * Model
 *   A tree maps keys to values, both byte strings in the caller's in-memory
 *   form. A codec per key and per value turns that form into the packed form
 *   stored in nodes and back (ilayout.md 11.7); the key compare works on the
 *   in-memory form. Nodes live in the caller's storage, addressed by an
 *   sm_ref (object number, offset, length). The tree reads them lazily
 *   through read_node, writes the dirty ones at sm_flush() through
 *   write_node, and reports at sm_prune() every stored node it no longer
 *   uses through discard_node.
 *
 * Go names: sm_insert = Put (fails if present), sm_put = PatchByKey (fails
 * if absent), sm_put_by_index = PatchByIndex, sm_delete = DeleteByKey,
 * sm_bisect_left/right = BisectLeft/Right, sm_drop_clean = Purge(false),
 * sm_touch/sm_touch_item/sm_prune/sm_discard = Touch/TouchItem/Prune/Discard.
 *
 * Errors: 0 or a negative errno. -ENOENT (key or index absent), -EEXIST
 * (sm_insert of a present key), -EINVAL (bad argument, or a stored node that
 * does not decode: sm_error_detail() then says why), -ERANGE (output buffer
 * too small: the needed length is still stored), -ENOMEM, or whatever a
 * callback returned. A tree whose node failed to decode stays usable for the
 * parts that did decode. A failed operation changes nothing (reads and
 * allocations that can fail happen before the first change), with two
 * exceptions: -ENOMEM while rebalancing after a delete may leave one node
 * under-full (still well-formed and loadable), and sm_flush() as described
 * there.
 *
 * Loader (stricter than Go's, never looser on anything Go writes): keys
 * must ascend strictly within a node and lie inside the range the parent's
 * separators give; Items must add up; Root is set on the root only;
 * maxKeysPerNode even, 4..SM_MAX_KEYS_LIMIT; internal nodes have 2..max+1
 * children; all leaves at one depth; depth < SM_MAX_DEPTH; the payload is
 * used up exactly. Fan-out minimums are not checked on load (Go's internal
 * split leaves min-1 separators on the left); sm_validate() checks them.
 *
 * Splits: a full leaf keeps min items and moves the rest to a new right
 * sibling (Go's behaviour, byte-identical: TV14). A full internal node
 * keeps min separators, promotes one and moves min to the right, so both
 * halves respect the spec's bounds (Go leaves min-1 on the left; internal
 * node bytes after a split may therefore differ from Go's, which the
 * format allows).
 *
 * Threading: every function on one tree is serialized by the tree's own
 * mutex, so a tree may be used from several threads. Trees sharing an
 * sm_cache may be used from different threads at once. The node callbacks
 * run with the tree's mutex held (only that tree waits for their I/O): they
 * must not call into the same tree.
 * Lock order: tree, then cache; a tree evicting another tree's nodes only
 * try-locks that tree.
 */
#ifndef PFS_SORTEDMAP_H
#define PFS_SORTEDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sm_tree sm_tree;
typedef struct sm_cache sm_cache;
typedef struct sm_buf sm_buf;

/* Where a node is stored. length 0 means "not stored". */
typedef struct sm_ref {
  uint64_t object_number;
  uint64_t object_offset;
  uint64_t object_length;
} sm_ref;

/* Append n bytes to a pack/unpack output buffer. 0 or -ENOMEM. */
int sm_buf_put(sm_buf *b, const void *p, size_t n);

typedef enum {
  /* u64 length + bytes (ilayout lstr); in-memory form = the bytes. The
   * directory key. */
  SM_CODEC_LSTR = 0,
  /* 8 bytes little-endian; in-memory form = a native uint64_t (8 bytes).
   * The inode-table and extent-map key. */
  SM_CODEC_U64,
  /* exactly fixed_len bytes, in-memory form identical (values that the
   * caller encodes with ilayout, e.g. the 24-byte InodeTableEntryValueV1). */
  SM_CODEC_FIXED,
  /* the pack/unpack callbacks below */
  SM_CODEC_CUSTOM,
} sm_codec_kind;

typedef struct sm_codec {
  sm_codec_kind kind;
  size_t fixed_len; /* SM_CODEC_FIXED only; 1..65536 */
  /* Append the packed form of mem[0..len) to out. */
  int (*pack)(void *ctx, const void *mem, size_t len, sm_buf *out);
  /* Decode one packed item from the front of src[0..avail): append its
   * in-memory form to out and set *consumed (1..avail). Corrupt or short
   * input: return -EINVAL. Must never read past avail. */
  int (*unpack)(void *ctx, const uint8_t *src, size_t avail, size_t *consumed,
                sm_buf *out);
} sm_codec;

typedef struct sm_config {
  sm_codec key;
  sm_codec value;
  /* <0, 0, >0 on in-memory keys. NULL: numeric for SM_CODEC_U64 keys,
   * otherwise bytewise unsigned with the shorter prefix first (Go
   * bytes.Compare / strings.Compare). */
  int (*compare)(void *ctx, const void *a, size_t alen, const void *b,
                 size_t blen);
  /* Fill dst with exactly ref->object_length bytes of the node at ref.
   * Called only for refs the tree holds. May be NULL for trees that are
   * never reopened from storage (sm_open then fails with -EINVAL). */
  int (*read_node)(void *ctx, const sm_ref *ref, uint8_t *dst);
  /* Store len node bytes (a copy is needed: the buffer is reused) and say
   * where: object number and offset; the length is len. NULL: sm_flush()
   * fails with -EINVAL. */
  int (*write_node)(void *ctx, const uint8_t *bytes, size_t len,
                    uint64_t *object_number, uint64_t *object_offset);
  /* A stored node is no longer referenced (reported by sm_prune() and
   * sm_discard()). NULL: the reports are dropped. */
  int (*discard_node)(void *ctx, const sm_ref *ref);
  void *ctx;
  /* Largest node read_node may be asked for; a ref claiming more is corrupt.
   * 0 = SM_DEFAULT_MAX_NODE_BYTES. */
  size_t max_node_bytes;
} sm_config;

#define SM_DEFAULT_MAX_NODE_BYTES ((size_t)16 << 20)
/* maxKeysPerNode accepted from storage and at creation: even, 4..this. */
#define SM_MAX_KEYS_LIMIT ((uint64_t)1 << 20)
/* Deepest tree a loader follows (stops reference cycles). */
#define SM_MAX_DEPTH 32

/* ---- shared node cache ----
 * Counts every resident node of the trees attached to it. When the count
 * exceeds high_nodes, or resident bytes exceed max_bytes, clean nodes are
 * evicted least recently used first (a clean internal node together with
 * its resident subtree, which is clean too) until the count is at most
 * low_nodes and the bytes at most max_bytes. Dirty nodes are never evicted:
 * they leave the cache's dirty count only when their tree is flushed;
 * sm_cache_stats() lets the owner see that pressure. Eviction runs at the
 * end of tree operations. 0 for a limit means no limit on that measure.
 * A cache must outlive every tree attached to it. */
sm_cache *sm_cache_create(uint64_t low_nodes, uint64_t high_nodes,
                          uint64_t max_bytes);
void sm_cache_destroy(sm_cache *c);
void sm_cache_set_limits(sm_cache *c, uint64_t low_nodes, uint64_t high_nodes,
                         uint64_t max_bytes);

typedef struct sm_cache_stats {
  uint64_t clean_nodes, dirty_nodes; /* resident, loaded nodes */
  uint64_t bytes;                    /* memory held by resident nodes */
  uint64_t hits, misses, evictions;
} sm_cache_stats;
void sm_cache_stats_get(sm_cache *c, sm_cache_stats *out);

/* ---- tree lifetime ---- */

/* A new empty tree (one dirty root leaf). max_keys even, 4..SM_MAX_KEYS_LIMIT.
 * cache may be NULL (nodes then stay resident until sm_drop_clean()).
 * cfg is copied. */
int sm_create(const sm_config *cfg, sm_cache *cache, uint64_t max_keys,
              sm_tree **out);
/* Open a stored tree: reads and decodes the root node at *root. On failure
 * err (if not NULL) receives the detail. */
int sm_open(const sm_config *cfg, sm_cache *cache, const sm_ref *root,
            sm_tree **out, char *err, size_t errlen);
/* Free memory. Does not flush, prune or discard anything. NULL is fine. */
void sm_destroy(sm_tree *t);

/* Detail of the last decode failure of this tree ("" if none). The string
 * stays valid until the next operation on the tree. */
const char *sm_error_detail(const sm_tree *t);

/* ---- map operations ---- */

int sm_len(sm_tree *t, uint64_t *n);
uint64_t sm_max_keys(const sm_tree *t);
int sm_insert(sm_tree *t, const void *key, size_t klen, const void *val,
              size_t vlen);
int sm_put(sm_tree *t, const void *key, size_t klen, const void *val,
           size_t vlen);
int sm_put_by_index(sm_tree *t, uint64_t index, const void *val, size_t vlen);
int sm_delete(sm_tree *t, const void *key, size_t klen);
int sm_delete_by_index(sm_tree *t, uint64_t index);

/* Copy the value into val[0..vcap); *vlen = its length (may be NULL). */
int sm_get(sm_tree *t, const void *key, size_t klen, void *val, size_t vcap,
           size_t *vlen);
/* Key and value of the index-th item (0-based). Either buffer may be NULL
 * with capacity 0 when not wanted. */
int sm_get_by_index(sm_tree *t, uint64_t index, void *key, size_t kcap,
                    size_t *klen, void *val, size_t vcap, size_t *vlen);
/* Go's BisectLeft: *index = the item equal to key, else the last item
 * before where key would go (-1 if none). BisectRight: equal, else the
 * first item after (len if none). *found says whether key is present. */
int sm_bisect_left(sm_tree *t, const void *key, size_t klen, int64_t *index,
                   bool *found);
int sm_bisect_right(sm_tree *t, const void *key, size_t klen, int64_t *index,
                    bool *found);

/* ---- iteration ----
 * A cursor walks items in key order from an index. It holds no lock and no
 * node between calls: sm_cursor_next() copies the item out. It continues by
 * position: if the tree changes between calls, the next item is the one now
 * at the cursor's index. */
typedef struct sm_cursor {
  sm_tree *tree;
  uint64_t index;
  uint64_t gen; /* internal: tree generation the fast path is valid for */
  void *leaf;   /* internal */
  uint32_t pos; /* internal */
} sm_cursor;
void sm_cursor_init(sm_cursor *c, sm_tree *t, uint64_t start_index);
/* Copies the item at the cursor and advances. -ENOENT at the end. On
 * -ERANGE the cursor does not advance. */
int sm_cursor_next(sm_cursor *c, void *key, size_t kcap, size_t *klen,
                   void *val, size_t vcap, size_t *vlen);

/* ---- storage ---- */

/* Write every dirty node, children before parents (the root last), through
 * write_node, and return the root's ref. A clean tree writes nothing and
 * returns the current ref. If a write fails, the nodes written by this call
 * become dirty again (their bytes, already handed out, are then garbage for
 * the owner) and the error is returned. */
int sm_flush(sm_tree *t, sm_ref *root);
/* Current root ref ({0,0,0} if the root was never written or is dirty). */
sm_ref sm_root_ref(sm_tree *t);
/* Report every obsolete stored node (rewritten or freed since the last
 * prune) through discard_node, oldest first. Call once the new root is
 * durable. Stops at the first callback error (the rest stay pending). */
int sm_prune(sm_tree *t);
/* Number of obsolete refs waiting for sm_prune(). */
size_t sm_pending_discards(sm_tree *t);
/* Drop every clean resident node from memory (dirty ones stay). */
int sm_drop_clean(sm_tree *t);
/* Mark every node dirty (loading all), so the next flush rewrites the whole
 * tree; the old refs become obsolete. */
int sm_touch(sm_tree *t);
/* Mark the leaf holding item `index` and its ancestors dirty; *next = the
 * first index after that leaf (0 for an empty tree; an index beyond the end
 * wraps to 0 first, as in Go). */
int sm_touch_item(sm_tree *t, uint64_t index, uint64_t *next);
/* The tree is going away: mark every stored node obsolete (loading internal
 * nodes as needed) and report them all through discard_node. Afterwards,
 * even on failure, every other call on the tree returns -EINVAL: only
 * sm_destroy() remains. On failure, refs not reached are not reported. */
int sm_discard(sm_tree *t);
/* Call fn for every stored ref reachable from the root (loading internal
 * nodes as needed), root first, depth first. Dirty nodes have no stored
 * ref and are skipped, but their children are visited. */
int sm_walk_refs(sm_tree *t, int (*fn)(void *arg, const sm_ref *ref),
                 void *arg);

/* ---- checking ---- */

/* Load the whole tree and check every invariant of ilayout.md 11.4: key
 * order and separator bounds, fan-out bounds, Items counts, uniform leaf
 * depth, dirty-parent rule. 0 or -EINVAL (detail in sm_error_detail()). */
int sm_validate(sm_tree *t);
/* Human-readable dump of the resident tree (keys/values in hex). */
int sm_dump(sm_tree *t, FILE *out);

/* ---- built-in helpers for custom codecs ---- */
int sm_compare_bytes(const void *a, size_t alen, const void *b, size_t blen);

#endif
