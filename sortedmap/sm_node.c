/* Node memory, and the node byte format of ilayout.md 11.1-11.3:
 *
 *   u64 Items | u8 Root | u8 Leaf | [Root: u64 maxKeysPerNode]
 *   Leaf:     u64 N | N x (packedKey packedValue)
 *   internal: u64 C | ChildRef | (C-1) x (packedKey ChildRef)
 *   ChildRef: u64 ObjectNumber | u64 ObjectOffset | u64 ObjectLength | u64 Items
 *
 * The payload must be used up exactly. The decoder trusts nothing: every
 * count is checked against the bytes left before anything is allocated for
 * it, keys must ascend strictly and stay inside the range the parent's
 * separators give the node, Items must add up, and depth is bounded. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "sm_internal.h"

#define SM_HEADER_BYTES 10
#define SM_CHILDREF_BYTES 32

int sm_fail(sm_tree *t, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->detail, sizeof t->detail, fmt, ap);
  va_end(ap);
  return err;
}

sm_kv *sm_kv_new(const void *k, size_t klen, const void *v, size_t vlen) {
  sm_kv *kv = malloc(sizeof(sm_kv) + klen + vlen);
  if (!kv) return NULL;
  kv->klen = (uint32_t)klen;
  kv->vlen = (uint32_t)vlen;
  if (klen) memcpy(kv->b, k, klen);
  if (vlen) memcpy(kv->b + klen, v, vlen);
  return kv;
}

sm_node *sm_node_new(sm_tree *t, sm_node *parent, bool leaf) {
  sm_node *nd = calloc(1, sizeof *nd);
  if (!nd) return NULL;
  nd->tree = t;
  nd->parent = parent;
  nd->leaf = leaf;
  nd->loaded = 1;
  return nd;
}

int sm_node_reserve(sm_node *nd, uint32_t want) {
  if (want <= nd->cap) return 0;
  uint32_t cap = nd->cap ? nd->cap : 4;
  while (cap < want) cap = cap > UINT32_MAX / 2 ? want : cap * 2;
  sm_kv **kv = realloc(nd->kv, (size_t)cap * sizeof *kv);
  if (!kv) return -ENOMEM;
  nd->kv = kv;
  if (!nd->leaf) {
    sm_node **ch = realloc(nd->child, (size_t)cap * sizeof *ch);
    if (!ch) return -ENOMEM;
    nd->child = ch;
  }
  nd->cap = cap;
  return 0;
}

/* Cache footprint; stub children are counted with their parent. */
size_t sm_node_mem(const sm_node *nd) {
  size_t per = sizeof(sm_kv *) + (nd->leaf ? 0 : sizeof(sm_node *));
  return sizeof(sm_node) + (size_t)nd->cap * per + nd->kvbytes +
         (nd->leaf ? 0 : (size_t)nd->n * sizeof(sm_node));
}

void sm_node_add_kv(sm_node *nd, uint32_t i, sm_kv *kv) {
  nd->kv[i] = kv;
  if (kv) nd->kvbytes += sm_kv_mem(kv);
}

sm_kv *sm_node_take_kv(sm_node *nd, uint32_t i) {
  sm_kv *kv = nd->kv[i];
  nd->kv[i] = NULL;
  if (kv) nd->kvbytes -= sm_kv_mem(kv);
  return kv;
}

static void free_contents(sm_node *nd) {
  for (uint32_t i = 0; i < nd->n; i++) {
    free(nd->kv[i]);
    if (!nd->leaf) sm_node_free(nd->child[i]);
  }
  free(nd->kv);
  free(nd->child);
  nd->kv = NULL;
  nd->child = NULL;
  nd->n = nd->cap = 0;
  nd->kvbytes = 0;
}

void sm_node_unload(sm_node *nd) {
  sm_cache_leave(nd);
  free_contents(nd);
  nd->loaded = 0;
  nd->mem = 0;
}

void sm_node_free(sm_node *nd) {
  if (!nd) return;
  if (nd->loaded) sm_cache_leave(nd);
  free_contents(nd);
  free(nd);
}

void sm_stale_push(sm_tree *t, sm_node *nd) {
  if (nd->ref.object_length == 0) return;
  if (t->nstale == t->capstale) {
    size_t cap = t->capstale ? t->capstale * 2 : 16;
    sm_ref *s = realloc(t->stale, cap * sizeof *s);
    if (!s) {
      /* Losing a discard report only leaks storage until the next GC scan;
       * it never breaks the tree. Say so where it can be seen. */
      sm_fail(t, -ENOMEM, "out of memory recording an obsolete node");
      nd->ref = (sm_ref){0, 0, 0};
      return;
    }
    t->stale = s;
    t->capstale = cap;
  }
  t->stale[t->nstale++] = nd->ref;
  nd->ref = (sm_ref){0, 0, 0};
}

/* Keys the parent chain allows in nd: lo <= key < hi (NULL = unbounded). */
static void node_bounds(const sm_node *nd, const sm_kv **lo, const sm_kv **hi) {
  *lo = *hi = NULL;
  const sm_node *c = nd;
  for (const sm_node *p = c->parent; p && (!*lo || !*hi); c = p, p = p->parent) {
    uint32_t i = 0;
    while (i < p->n && p->child[i] != c) i++;
    if (i == p->n) return;
    if (!*lo && i >= 1) *lo = p->kv[i];
    if (!*hi && i + 1 < p->n) *hi = p->kv[i + 1];
  }
}

int sm_check_key_order(sm_tree *t, const sm_kv *prev, const sm_kv *kv,
                       const sm_kv *lo, const sm_kv *hi) {
  if (prev && sm_key_cmp(t, prev->b, prev->klen, kv->b, kv->klen) >= 0)
    return sm_fail(t, -EINVAL, "keys not strictly ascending");
  if (lo && sm_key_cmp(t, lo->b, lo->klen, kv->b, kv->klen) > 0)
    return sm_fail(t, -EINVAL, "key below the parent's separator");
  if (hi && sm_key_cmp(t, kv->b, kv->klen, hi->b, hi->klen) >= 0)
    return sm_fail(t, -EINVAL, "key not below the next separator");
  return 0;
}

/* Unpacks the key (or value) at the cursor with the tree's codec and moves
 * the cursor past it. */
static int unpack_at(sm_tree *t, ilayout_cursor *r, bool key, sm_buf *out) {
  const uint8_t *at = r->buf + r->pos, *skip;
  size_t left = ilayout_cursor_remaining(r), used = 0;
  int rc = key ? sm_key_unpack(t, at, left, &used, out)
               : sm_val_unpack(t, at, left, &used, out);
  return rc ? rc : ilayout_get_view(r, used, &skip);
}

static int decode_leaf(sm_tree *t, sm_node *nd, ilayout_cursor *r, uint64_t items) {
  uint64_t n;
  if (ilayout_get_u64(r, &n)) return sm_fail(t, -EINVAL, "leaf: no item count");
  /* every item uses at least one byte, so n <= bytes left bounds memory */
  if (n > t->max_keys || n > ilayout_cursor_remaining(r))
    return sm_fail(t, -EINVAL, "leaf: %llu items", (unsigned long long)n);
  if (n != items)
    return sm_fail(t, -EINVAL, "leaf: Items %llu but %llu items",
                   (unsigned long long)items, (unsigned long long)n);
  int rc = sm_node_reserve(nd, (uint32_t)n);
  if (rc) return rc;
  const sm_kv *lo, *hi;
  node_bounds(nd, &lo, &hi);
  for (uint64_t i = 0; i < n; i++) {
    rc = unpack_at(t, r, true, &t->scratch_k);
    if (rc) return sm_fail(t, rc, "leaf: item %llu key does not decode", (unsigned long long)i);
    rc = unpack_at(t, r, false, &t->scratch_v);
    if (rc) return sm_fail(t, rc, "leaf: item %llu value does not decode", (unsigned long long)i);
    sm_kv *kv = sm_kv_new(t->scratch_k.p, t->scratch_k.len, t->scratch_v.p,
                          t->scratch_v.len);
    if (!kv) return -ENOMEM;
    sm_node_add_kv(nd, nd->n++, kv);
    rc = sm_check_key_order(t, i ? nd->kv[i - 1] : NULL, kv, lo, hi);
    if (rc) return rc;
  }
  return 0;
}

static int decode_internal(sm_tree *t, sm_node *nd, ilayout_cursor *r, uint64_t items,
                           int depth) {
  uint64_t c;
  if (ilayout_get_u64(r, &c)) return sm_fail(t, -EINVAL, "internal: no child count");
  if (c < 2 || c - 1 > t->max_keys ||
      c > ilayout_cursor_remaining(r) / (SM_CHILDREF_BYTES + 1) + 1)
    return sm_fail(t, -EINVAL, "internal: %llu children", (unsigned long long)c);
  if (depth + 1 >= SM_MAX_DEPTH)
    return sm_fail(t, -EINVAL, "tree deeper than %d", SM_MAX_DEPTH);
  if (t->leaf_depth >= 0 && depth >= t->leaf_depth)
    return sm_fail(t, -EINVAL, "internal node at depth %d, leaves at %d", depth,
                   t->leaf_depth);
  int rc = sm_node_reserve(nd, (uint32_t)c);
  if (rc) return rc;
  const sm_kv *lo, *hi;
  node_bounds(nd, &lo, &hi);
  uint64_t sum = 0;
  for (uint64_t i = 0; i < c; i++) {
    sm_kv *kv = NULL;
    if (i > 0) {
      rc = unpack_at(t, r, true, &t->scratch_k);
      if (rc) return sm_fail(t, rc, "internal: key %llu does not decode", (unsigned long long)i);
      kv = sm_kv_new(t->scratch_k.p, t->scratch_k.len, NULL, 0);
      if (!kv) return -ENOMEM;
    }
    sm_ref ref;
    uint64_t ci;
    ilayout_get_u64(r, &ref.object_number);
    ilayout_get_u64(r, &ref.object_offset);
    ilayout_get_u64(r, &ref.object_length);
    ilayout_get_u64(r, &ci); /* errors are sticky: checked once below */
    bool truncated = ilayout_cursor_error(r) != 0;
    sm_node *ch = truncated ? NULL : calloc(1, sizeof *ch);
    if (!ch) {
      free(kv);
      return truncated ? sm_fail(t, -EINVAL, "internal: ChildRef %llu truncated",
                              (unsigned long long)i)
                    : -ENOMEM;
    }
    ch->tree = t;
    ch->parent = nd;
    ch->ref = ref;
    ch->items = ci;
    nd->child[nd->n] = ch;
    sm_node_add_kv(nd, nd->n++, kv);
    if (kv) {
      rc = sm_check_key_order(t, i > 1 ? nd->kv[i - 1] : NULL, kv, lo, hi);
      if (rc) return rc;
    }
    if (ref.object_length < SM_HEADER_BYTES ||
        ref.object_length > t->cfg.max_node_bytes)
      return sm_fail(t, -EINVAL, "internal: ChildRef %llu length %llu",
                     (unsigned long long)i, (unsigned long long)ref.object_length);
    if (ci == 0 || ci > UINT64_MAX - sum)
      return sm_fail(t, -EINVAL, "internal: ChildRef %llu Items %llu",
                     (unsigned long long)i, (unsigned long long)ci);
    sum += ci;
  }
  if (sum != items)
    return sm_fail(t, -EINVAL, "internal: Items %llu but children hold %llu",
                   (unsigned long long)items, (unsigned long long)sum);
  return 0;
}

static int decode(sm_tree *t, sm_node *nd, const uint8_t *p, size_t len,
                  int depth) {
  ilayout_cursor r;
  uint64_t items = 0, mk = 0;
  uint8_t root = 0, leaf = 0;
  bool is_root = nd == t->root;
  ilayout_cursor_init(&r, p, len);
  ilayout_get_u64(&r, &items);
  ilayout_get_u8(&r, &root);
  ilayout_get_u8(&r, &leaf);
  if (ilayout_cursor_error(&r)) return sm_fail(t, -EINVAL, "node shorter than its header");
  if ((root != 0) != is_root)
    return sm_fail(t, -EINVAL, "Root flag %u on a %s node", root,
                   is_root ? "root" : "non-root");
  if (is_root) {
    if (ilayout_get_u64(&r, &mk)) return sm_fail(t, -EINVAL, "root: no maxKeysPerNode");
    if (mk < 4 || mk % 2 || mk > SM_MAX_KEYS_LIMIT)
      return sm_fail(t, -EINVAL, "root: maxKeysPerNode %llu", (unsigned long long)mk);
    if (t->max_keys && t->max_keys != mk)
      return sm_fail(t, -EINVAL, "root: maxKeysPerNode changed to %llu",
                     (unsigned long long)mk);
    t->max_keys = mk;
    t->min_keys = mk / 2;
  } else if (items != nd->items) {
    return sm_fail(t, -EINVAL, "Items %llu but the parent says %llu",
                   (unsigned long long)items, (unsigned long long)nd->items);
  }
  nd->leaf = leaf != 0;
  int rc;
  if (nd->leaf) {
    if (t->leaf_depth >= 0 && depth != t->leaf_depth)
      return sm_fail(t, -EINVAL, "leaf at depth %d, others at %d", depth, t->leaf_depth);
    rc = decode_leaf(t, nd, &r, items);
  } else {
    rc = decode_internal(t, nd, &r, items, depth);
  }
  if (rc) return rc;
  if (ilayout_cursor_remaining(&r))
    return sm_fail(t, -EINVAL, "%zu bytes left after the payload", ilayout_cursor_remaining(&r));
  if (nd->leaf) t->leaf_depth = depth;
  nd->items = items;
  return 0;
}

int sm_node_load(sm_tree *t, sm_node *nd, int depth) {
  uint64_t len = nd->ref.object_length;
  if (depth >= SM_MAX_DEPTH) return sm_fail(t, -EINVAL, "tree deeper than %d", SM_MAX_DEPTH);
  if (len < SM_HEADER_BYTES || len > t->cfg.max_node_bytes)
    return sm_fail(t, -EINVAL, "node length %llu", (unsigned long long)len);
  if (!t->cfg.read_node) return sm_fail(t, -EINVAL, "no read_node callback");
  uint8_t *buf = malloc((size_t)len);
  if (!buf) return -ENOMEM;
  int rc = t->cfg.read_node(t->cfg.ctx, &nd->ref, buf);
  if (rc) {
    free(buf);
    return sm_fail(t, rc, "read_node(%llu, %llu, %llu) failed: %d",
                   (unsigned long long)nd->ref.object_number,
                   (unsigned long long)nd->ref.object_offset,
                   (unsigned long long)len, rc);
  }
  sm_cache_count_miss(t);
  rc = decode(t, nd, buf, (size_t)len, depth);
  free(buf);
  if (rc) {
    /* corrupt storage is worth a line wherever it shows up; the owner adds
     * its context (volume, inode) from sm_error_detail() */
    if (rc == -EINVAL)
      log_warn("sortedmap: node (%llu, %llu, %llu) does not decode: %s",
               (unsigned long long)nd->ref.object_number,
               (unsigned long long)nd->ref.object_offset, (unsigned long long)len, t->detail);
    free_contents(nd);
    return rc;
  }
  nd->loaded = 1;
  nd->dirty = 0;
  sm_cache_enter(nd);
  return 0;
}

int sm_node_encode(sm_tree *t, sm_node *nd, sm_buf *out) {
  bool is_root = nd == t->root;
  uint8_t flags[2] = {is_root, nd->leaf};
  out->len = 0;
  int rc = sm_buf_put_u64(out, nd->items);
  if (!rc) rc = sm_buf_put(out, flags, 2);
  if (!rc && is_root) rc = sm_buf_put_u64(out, t->max_keys);
  if (!rc) rc = sm_buf_put_u64(out, nd->n);
  for (uint32_t i = 0; !rc && i < nd->n; i++) {
    const sm_kv *kv = nd->kv[i];
    if (nd->leaf) {
      rc = sm_key_pack(t, kv->b, kv->klen, out);
      if (!rc) rc = sm_val_pack(t, sm_kv_val(kv), kv->vlen, out);
      continue;
    }
    if (i > 0) rc = sm_key_pack(t, kv->b, kv->klen, out);
    const sm_node *ch = nd->child[i];
    if (!rc) rc = sm_buf_put_u64(out, ch->ref.object_number);
    if (!rc) rc = sm_buf_put_u64(out, ch->ref.object_offset);
    if (!rc) rc = sm_buf_put_u64(out, ch->ref.object_length);
    if (!rc) rc = sm_buf_put_u64(out, ch->items);
  }
  return rc;
}
