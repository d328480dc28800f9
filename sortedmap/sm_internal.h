/* sortedmap internals shared by its .c files. Not part of the API. */
#ifndef PFS_SM_INTERNAL_H
#define PFS_SM_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>

#include "ilayout.h"
#include "sortedmap.h"

/* Growable byte buffer: node encoding and codec output. */
struct sm_buf {
  uint8_t *p;
  size_t len, cap;
};
int sm_buf_put_u64(sm_buf *b, uint64_t v);
void sm_buf_free(sm_buf *b);

/* ---- nodes ---- */

/* One key (and, in leaves, its value) in in-memory form: key bytes, then
 * value bytes. Separators in internal nodes have vlen 0. */
typedef struct sm_kv {
  uint32_t klen, vlen;
  uint8_t b[];
} sm_kv;

/* What a malloc'd sm_kv costs, roughly as glibc rounds chunks. */
static inline size_t sm_kv_mem(const sm_kv *kv) {
  return (sizeof(sm_kv) + kv->klen + kv->vlen + 8 + 15) & ~(size_t)15;
}

static inline const uint8_t *sm_kv_val(const sm_kv *kv) { return kv->b + kv->klen; }

enum { SM_LRU_NONE = 0, SM_LRU_CLEAN, SM_LRU_DIRTY };

typedef struct sm_node sm_node;
struct sm_node {
  sm_tree *tree;
  sm_node *parent;            /* NULL for the root */
  sm_node *lru_prev, *lru_next;
  sm_ref ref;                 /* stored copy; object_length 0 = none */
  uint64_t items;             /* items at or below (valid for stubs too) */
  uint32_t n;                 /* leaf: items here; internal: children */
  uint32_t cap;               /* slots in kv (and child) */
  sm_kv **kv;                 /* leaf: items; internal: kv[i] = lower bound
                                 of child i, kv[0] unused (NULL) */
  sm_node **child;            /* internal only */
  size_t kvbytes;             /* bytes of the sm_kv allocations */
  size_t mem;                 /* what the cache counts for this node */
  uint8_t loaded, dirty, leaf, lru;
};

struct sm_cache {
  pthread_mutex_t mu;
  uint64_t low, high, max_bytes;
  sm_node *clean_head, *clean_tail, *dirty_head, *dirty_tail;
  uint64_t clean_n, dirty_n, bytes;
  uint64_t hits, misses, evictions;
};

struct sm_tree {
  pthread_mutex_t mu;
  sm_config cfg;
  sm_cache *cache;
  sm_node *root;
  uint64_t max_keys, min_keys;
  int leaf_depth;             /* depth of every leaf (root = 0); -1 unknown */
  uint64_t gen;               /* bumped by every change and eviction */
  bool dead;                  /* after sm_discard() */
  sm_ref *stale;              /* obsolete refs waiting for sm_prune() */
  size_t nstale, capstale;
  sm_buf scratch_k, scratch_v, enc; /* reused work buffers */
  char detail[160];
};

/* sm_codec.c */
int sm_key_pack(sm_tree *t, const void *k, size_t len, sm_buf *out);
int sm_val_pack(sm_tree *t, const void *v, size_t len, sm_buf *out);
int sm_key_unpack(sm_tree *t, const uint8_t *src, size_t avail, size_t *used,
                  sm_buf *out);
int sm_val_unpack(sm_tree *t, const uint8_t *src, size_t avail, size_t *used,
                  sm_buf *out);
int sm_key_cmp(sm_tree *t, const void *a, size_t alen, const void *b,
               size_t blen);
static inline int sm_kv_cmp(sm_tree *t, const sm_kv *a, const void *k, size_t klen) {
  return sm_key_cmp(t, a->b, a->klen, k, klen);
}
int sm_check_key(sm_tree *t, size_t klen);
int sm_check_val(sm_tree *t, size_t vlen);
int sm_config_check(const sm_config *cfg); /* codecs usable? */

/* sm_node.c: decoding, encoding, node memory */
int sm_fail(sm_tree *t, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
sm_kv *sm_kv_new(const void *k, size_t klen, const void *v, size_t vlen);
sm_node *sm_node_new(sm_tree *t, sm_node *parent, bool leaf);
int sm_node_reserve(sm_node *nd, uint32_t want);
size_t sm_node_mem(const sm_node *nd);
void sm_node_add_kv(sm_node *nd, uint32_t i, sm_kv *kv); /* kv may be NULL */
sm_kv *sm_node_take_kv(sm_node *nd, uint32_t i);
void sm_node_unload(sm_node *nd);        /* free contents, keep the stub */
void sm_node_free(sm_node *nd);          /* free node and its subtree */
int sm_node_load(sm_tree *t, sm_node *nd, int depth);
/* prev < kv, lo <= kv < hi (any may be NULL); -EINVAL with detail if not */
int sm_check_key_order(sm_tree *t, const sm_kv *prev, const sm_kv *kv,
                       const sm_kv *lo, const sm_kv *hi);
int sm_node_encode(sm_tree *t, sm_node *nd, sm_buf *out);
void sm_stale_push(sm_tree *t, sm_node *nd);

/* sm_cache.c: LRU bookkeeping (cache may be NULL) */
void sm_cache_used(sm_node *nd);          /* loaded node touched */
void sm_cache_enter(sm_node *nd);         /* node became loaded/created */
void sm_cache_leave(sm_node *nd);         /* node unloaded or freed */
void sm_cache_set_dirty(sm_node *nd, bool dirty);
void sm_cache_account(sm_node *nd);       /* recompute nd->mem */
void sm_cache_count_miss(sm_tree *t);
void sm_cache_evict(sm_tree *self);       /* at the end of operations */
int sm_evict_subtree(sm_node *nd);        /* clean node -> stub */

#endif
