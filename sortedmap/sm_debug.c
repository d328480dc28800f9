/* sm_validate() and sm_dump(): for tests and debugging. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "sm_internal.h"

static int check_key(sm_tree *t, const sm_kv *prev, const sm_kv *kv, const sm_kv *lo,
                     const sm_kv *hi) {
  if (!kv) return sm_fail(t, -EINVAL, "missing key");
  if (sm_check_key(t, kv->klen)) return sm_fail(t, -EINVAL, "key of length %u", kv->klen);
  return sm_check_key_order(t, prev, kv, lo, hi);
}

static int check_node(sm_tree *t, sm_node *nd, sm_node *parent, int depth,
                      const sm_kv *lo, const sm_kv *hi) {
  if (depth >= SM_MAX_DEPTH) return sm_fail(t, -EINVAL, "too deep");
  if (!nd->loaded) {
    int rc = sm_node_load(t, nd, depth);
    if (rc) return rc;
  }
  bool root = parent == NULL;
  if (nd->parent != parent) return sm_fail(t, -EINVAL, "wrong parent link");
  if (nd->dirty && parent && !parent->dirty)
    return sm_fail(t, -EINVAL, "dirty node under a clean parent");
  if (nd->dirty != (nd->ref.object_length == 0))
    return sm_fail(t, -EINVAL, "%s node %s a stored ref", nd->dirty ? "dirty" : "clean",
                   nd->dirty ? "with" : "without");
  if (t->cache && nd->lru != (nd->dirty ? SM_LRU_DIRTY : SM_LRU_CLEAN))
    return sm_fail(t, -EINVAL, "node on the wrong cache list");
  if (nd->mem != sm_node_mem(nd)) return sm_fail(t, -EINVAL, "cache bytes out of date");
  uint64_t keys = nd->leaf ? nd->n : (nd->n ? nd->n - 1 : 0);
  if (keys > t->max_keys) return sm_fail(t, -EINVAL, "%llu keys > max", (unsigned long long)keys);
  if (!root && keys < t->min_keys)
    return sm_fail(t, -EINVAL, "non-root node with %llu keys < min", (unsigned long long)keys);
  size_t kvbytes = 0;
  for (uint32_t i = 0; i < nd->n; i++)
    if (nd->kv[i]) kvbytes += sm_kv_mem(nd->kv[i]);
  if (kvbytes != nd->kvbytes) return sm_fail(t, -EINVAL, "kv byte count out of date");
  if (nd->leaf) {
    if (depth != t->leaf_depth) return sm_fail(t, -EINVAL, "leaf at depth %d", depth);
    if (nd->items != nd->n) return sm_fail(t, -EINVAL, "leaf Items != count");
    for (uint32_t i = 0; i < nd->n; i++) {
      int rc = check_key(t, i ? nd->kv[i - 1] : NULL, nd->kv[i], lo, hi);
      if (rc) return rc;
      if (sm_check_val(t, nd->kv[i]->vlen)) return sm_fail(t, -EINVAL, "bad value length");
    }
    return 0;
  }
  if (t->leaf_depth >= 0 && depth >= t->leaf_depth)
    return sm_fail(t, -EINVAL, "internal node at leaf depth");
  if (nd->n < 2) return sm_fail(t, -EINVAL, "internal node with %u children", nd->n);
  if (nd->kv[0]) return sm_fail(t, -EINVAL, "key before child 0");
  uint64_t sum = 0;
  for (uint32_t i = 0; i < nd->n; i++) {
    if (i) {
      int rc = check_key(t, i > 1 ? nd->kv[i - 1] : NULL, nd->kv[i], lo, hi);
      if (rc) return rc;
    }
    const sm_kv *clo = i ? nd->kv[i] : lo;
    const sm_kv *chi = i + 1 < nd->n ? nd->kv[i + 1] : hi;
    int rc = check_node(t, nd->child[i], nd, depth + 1, clo, chi);
    if (rc) return rc;
    sum += nd->child[i]->items;
  }
  if (sum != nd->items) return sm_fail(t, -EINVAL, "internal Items != sum of children");
  return 0;
}

int sm_validate(sm_tree *t) {
  pthread_mutex_lock(&t->mu);
  t->detail[0] = 0;
  int rc = t->dead ? -EINVAL : check_node(t, t->root, NULL, 0, NULL, NULL);
  sm_cache_evict(t);
  pthread_mutex_unlock(&t->mu);
  return rc;
}

static void dump_bytes(FILE *f, const uint8_t *p, size_t n) {
  size_t show = n > 16 ? 16 : n;
  for (size_t i = 0; i < show; i++) fprintf(f, "%02x", p[i]);
  if (show < n) fprintf(f, "..(%zu)", n);
}

static void dump_node(FILE *f, const sm_node *nd, int depth) {
  fprintf(f, "%*s%s %s items=%llu ref=(%llu,%llu,%llu)", depth * 2, "",
          !nd->loaded ? "stub" : nd->leaf ? "leaf" : "node", nd->dirty ? "dirty" : "clean",
          (unsigned long long)nd->items, (unsigned long long)nd->ref.object_number,
          (unsigned long long)nd->ref.object_offset,
          (unsigned long long)nd->ref.object_length);
  fputc('\n', f);
  for (uint32_t i = 0; nd->loaded && i < nd->n; i++) {
    const sm_kv *kv = nd->kv[i];
    if (kv) {
      fprintf(f, "%*s%s ", depth * 2 + 2, "", nd->leaf ? "item" : "sep");
      dump_bytes(f, kv->b, kv->klen);
      if (nd->leaf) {
        fputs(" = ", f);
        dump_bytes(f, sm_kv_val(kv), kv->vlen);
      }
      fputc('\n', f);
    }
    if (!nd->leaf) dump_node(f, nd->child[i], depth + 1);
  }
}

int sm_dump(sm_tree *t, FILE *out) {
  pthread_mutex_lock(&t->mu);
  fprintf(out, "sortedmap max_keys=%llu leaf_depth=%d stale=%zu\n",
          (unsigned long long)t->max_keys, t->leaf_depth, t->nstale);
  if (t->root) dump_node(out, t->root, 0);
  pthread_mutex_unlock(&t->mu);
  return 0;
}
