/* B+tree operations: lookup, insert with splits, delete with borrow/merge,
 * positional access, flush, prune, touch, discard.
 *
 * Rules kept everywhere:
 *  - a dirty node's ancestors are dirty (a rewritten child changes its
 *    parent's ChildRef), so a clean node's subtree is clean and evictable;
 *  - a node that had a stored copy gives its ref to the stale list the
 *    moment it becomes dirty or is freed; sm_prune() reports the list;
 *  - every change that can fail (I/O, memory) happens before the tree is
 *    modified, except the allocation of a separator during rebalancing,
 *    whose failure leaves an under-full but well-formed node.
 *
 * Splits: a leaf with max+1 items keeps min and moves the rest right, the
 * right leaf's first key going up (Go's behaviour, TV14). An internal node
 * with max+1 separators keeps min separators, promotes the next and gives
 * the right node the other min. (Go's internal split leaves min-1 on the
 * left, which its own validator rejects; the bytes of internal splits are
 * not part of the format.) Deletes follow Go's order: borrow from the left
 * sibling, else from the right, else merge into the left, else absorb the
 * right; a root left with one child is replaced by it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sm_internal.h"

typedef struct sm_path {
  sm_node *nd[SM_MAX_DEPTH];
  uint32_t idx[SM_MAX_DEPTH]; /* idx[d]: which child of nd[d] is nd[d+1] */
  int depth;                  /* of the leaf */
  uint32_t pos;               /* in the leaf */
  uint64_t base;              /* items before the leaf (when asked for) */
} sm_path;

/* ---- locking ---- */

static int enter(sm_tree *t) {
  pthread_mutex_lock(&t->mu);
  t->detail[0] = 0;
  if (t->dead) {
    pthread_mutex_unlock(&t->mu);
    return -EINVAL;
  }
  return 0;
}

static int leave(sm_tree *t, int rc) {
  sm_cache_evict(t);
  pthread_mutex_unlock(&t->mu);
  return rc;
}

/* ---- small helpers ---- */

static int need(sm_tree *t, sm_node *nd, int depth) {
  if (nd->loaded) {
    sm_cache_used(nd);
    return 0;
  }
  return sm_node_load(t, nd, depth);
}

static uint32_t nkeys(const sm_node *nd) { return nd->leaf ? nd->n : nd->n - 1; }

static void mark_dirty(sm_tree *t, sm_node *nd) {
  for (; nd && !nd->dirty; nd = nd->parent) {
    sm_stale_push(t, nd);
    sm_cache_set_dirty(nd, true);
  }
}

static void insert_slot(sm_node *nd, uint32_t pos) {
  memmove(nd->kv + pos + 1, nd->kv + pos, (size_t)(nd->n - pos) * sizeof *nd->kv);
  nd->kv[pos] = NULL;
  if (!nd->leaf) {
    memmove(nd->child + pos + 1, nd->child + pos, (size_t)(nd->n - pos) * sizeof *nd->child);
    nd->child[pos] = NULL;
  }
  nd->n++;
}

/* The slot's kv must have been taken already. */
static void remove_slot(sm_node *nd, uint32_t pos) {
  memmove(nd->kv + pos, nd->kv + pos + 1, (size_t)(nd->n - pos - 1) * sizeof *nd->kv);
  if (!nd->leaf)
    memmove(nd->child + pos, nd->child + pos + 1, (size_t)(nd->n - pos - 1) * sizeof *nd->child);
  nd->n--;
}

/* Move src's slots [from, n) to the end of dst (same kind of node). */
static void move_tail(sm_node *dst, sm_node *src, uint32_t from) {
  for (uint32_t j = from; j < src->n; j++) {
    if (!src->leaf) {
      dst->child[dst->n] = src->child[j];
      src->child[j]->parent = dst;
    }
    sm_node_add_kv(dst, dst->n++, sm_node_take_kv(src, j));
  }
  src->n = from;
}

static sm_kv *sep_copy(const sm_kv *kv) { return sm_kv_new(kv->b, kv->klen, NULL, 0); }

/* Largest i with kv[i] <= key (child 0 when key < kv[1]). */
static uint32_t child_for(sm_tree *t, const sm_node *nd, const void *k, size_t klen) {
  uint32_t lo = 1, hi = nd->n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (sm_kv_cmp(t, nd->kv[mid], k, klen) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/* First position whose key >= key. */
static uint32_t leaf_find(sm_tree *t, const sm_node *nd, const void *k, size_t klen,
                          bool *found) {
  uint32_t lo = 0, hi = nd->n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (sm_kv_cmp(t, nd->kv[mid], k, klen) < 0) lo = mid + 1;
    else hi = mid;
  }
  *found = lo < nd->n && sm_kv_cmp(t, nd->kv[lo], k, klen) == 0;
  return lo;
}

static int descend_key(sm_tree *t, const void *k, size_t klen, sm_path *p,
                       bool *found, bool want_base) {
  sm_node *nd = t->root;
  p->base = 0;
  for (int d = 0;; d++) {
    if (d >= SM_MAX_DEPTH) return sm_fail(t, -EINVAL, "tree deeper than %d", SM_MAX_DEPTH);
    int rc = need(t, nd, d);
    if (rc) return rc;
    p->nd[d] = nd;
    if (nd->leaf) {
      p->depth = d;
      p->pos = leaf_find(t, nd, k, klen, found);
      return 0;
    }
    uint32_t i = child_for(t, nd, k, klen);
    for (uint32_t j = 0; want_base && j < i; j++) p->base += nd->child[j]->items;
    p->idx[d] = i;
    nd = nd->child[i];
  }
}

static int descend_index(sm_tree *t, uint64_t index, sm_path *p) {
  sm_node *nd = t->root;
  int rc = need(t, nd, 0);
  if (rc) return rc;
  if (index >= nd->items) return -ENOENT;
  p->base = 0;
  for (int d = 0;; d++) {
    if (d >= SM_MAX_DEPTH) return sm_fail(t, -EINVAL, "tree deeper than %d", SM_MAX_DEPTH);
    rc = need(t, nd, d);
    if (rc) return rc;
    p->nd[d] = nd;
    if (nd->leaf) {
      if (index >= nd->n) return sm_fail(t, -EINVAL, "Items counts disagree with a leaf");
      p->depth = d;
      p->pos = (uint32_t)index;
      return 0;
    }
    uint32_t i = 0;
    while (i + 1 < nd->n && index >= nd->child[i]->items) {
      index -= nd->child[i]->items;
      p->base += nd->child[i]->items;
      i++;
    }
    p->idx[d] = i;
    nd = nd->child[i];
  }
}

/* The path to an existing key; -ENOENT if absent. */
static int find_key(sm_tree *t, const void *k, size_t klen, sm_path *p) {
  bool found;
  int rc = descend_key(t, k, klen, p, &found, false);
  return rc ? rc : found ? 0 : -ENOENT;
}

static void add_items(sm_path *p, int64_t delta) {
  for (int d = 0; d <= p->depth; d++) p->nd[d]->items += (uint64_t)delta;
}

static int copy_out(const void *src, size_t len, void *dst, size_t cap, size_t *outlen) {
  if (outlen) *outlen = len;
  if (!dst && cap == 0) return 0;
  if (len > cap) return -ERANGE;
  if (len) memcpy(dst, src, len);
  return 0;
}

/* ---- lifetime ---- */

static int tree_new(const sm_config *cfg, sm_cache *cache, sm_tree **out) {
  int rc = sm_config_check(cfg);
  if (rc) return rc;
  sm_tree *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  if (pthread_mutex_init(&t->mu, NULL)) {
    free(t);
    return -ENOMEM;
  }
  t->cfg = *cfg;
  if (!t->cfg.max_node_bytes) t->cfg.max_node_bytes = SM_DEFAULT_MAX_NODE_BYTES;
  t->cache = cache;
  t->leaf_depth = -1;
  *out = t;
  return 0;
}

int sm_create(const sm_config *cfg, sm_cache *cache, uint64_t max_keys, sm_tree **out) {
  if (max_keys < 4 || max_keys % 2 || max_keys > SM_MAX_KEYS_LIMIT) return -EINVAL;
  sm_tree *t;
  int rc = tree_new(cfg, cache, &t);
  if (rc) return rc;
  t->max_keys = max_keys;
  t->min_keys = max_keys / 2;
  t->leaf_depth = 0;
  t->root = sm_node_new(t, NULL, true);
  if (!t->root) {
    sm_destroy(t);
    return -ENOMEM;
  }
  t->root->dirty = 1;
  sm_cache_enter(t->root);
  *out = t;
  return 0;
}

int sm_open(const sm_config *cfg, sm_cache *cache, const sm_ref *root, sm_tree **out,
            char *err, size_t errlen) {
  sm_tree *t;
  int rc = tree_new(cfg, cache, &t);
  if (rc) return rc;
  t->root = calloc(1, sizeof *t->root);
  if (!t->root) {
    sm_destroy(t);
    return -ENOMEM;
  }
  t->root->tree = t;
  t->root->ref = *root;
  pthread_mutex_lock(&t->mu);
  rc = sm_node_load(t, t->root, 0);
  if (rc && err && errlen) snprintf(err, errlen, "%s", t->detail);
  rc = leave(t, rc);
  if (rc) {
    sm_destroy(t);
    return rc;
  }
  *out = t;
  return 0;
}

void sm_destroy(sm_tree *t) {
  if (!t) return;
  /* Holding the mutex makes a concurrent evictor (another tree's thread,
   * which only try-locks) either finish first or skip these nodes. */
  pthread_mutex_lock(&t->mu);
  sm_node_free(t->root);
  t->root = NULL;
  pthread_mutex_unlock(&t->mu);
  free(t->stale);
  sm_buf_free(&t->scratch_k);
  sm_buf_free(&t->scratch_v);
  sm_buf_free(&t->enc);
  pthread_mutex_destroy(&t->mu);
  free(t);
}

const char *sm_error_detail(const sm_tree *t) { return t->detail; }

uint64_t sm_max_keys(const sm_tree *t) { return t->max_keys; }

/* ---- reading ---- */

int sm_len(sm_tree *t, uint64_t *n) {
  int rc = enter(t);
  if (rc) return rc;
  rc = need(t, t->root, 0);
  if (!rc) *n = t->root->items;
  return leave(t, rc);
}

int sm_get(sm_tree *t, const void *key, size_t klen, void *val, size_t vcap, size_t *vlen) {
  if (sm_check_key(t, klen)) return -EINVAL;
  int rc = enter(t);
  if (rc) return rc;
  sm_path p;
  rc = find_key(t, key, klen, &p);
  if (!rc) {
    const sm_kv *kv = p.nd[p.depth]->kv[p.pos];
    rc = copy_out(sm_kv_val(kv), kv->vlen, val, vcap, vlen);
  }
  return leave(t, rc);
}

int sm_get_by_index(sm_tree *t, uint64_t index, void *key, size_t kcap, size_t *klen,
                    void *val, size_t vcap, size_t *vlen) {
  int rc = enter(t);
  if (rc) return rc;
  sm_path p;
  rc = descend_index(t, index, &p);
  if (!rc) {
    const sm_kv *kv = p.nd[p.depth]->kv[p.pos];
    rc = copy_out(kv->b, kv->klen, key, kcap, klen);
    int rc2 = copy_out(sm_kv_val(kv), kv->vlen, val, vcap, vlen);
    if (!rc) rc = rc2;
  }
  return leave(t, rc);
}

static int bisect(sm_tree *t, const void *key, size_t klen, int64_t *index, bool *found,
                  bool right) {
  if (sm_check_key(t, klen)) return -EINVAL;
  int rc = enter(t);
  if (rc) return rc;
  sm_path p;
  bool f;
  rc = descend_key(t, key, klen, &p, &f, true);
  if (!rc) {
    int64_t at = (int64_t)(p.base + p.pos);
    *index = f || right ? at : at - 1;
    if (found) *found = f;
  }
  return leave(t, rc);
}

int sm_bisect_left(sm_tree *t, const void *key, size_t klen, int64_t *index, bool *found) {
  return bisect(t, key, klen, index, found, false);
}

int sm_bisect_right(sm_tree *t, const void *key, size_t klen, int64_t *index, bool *found) {
  return bisect(t, key, klen, index, found, true);
}

void sm_cursor_init(sm_cursor *c, sm_tree *t, uint64_t start_index) {
  memset(c, 0, sizeof *c);
  c->tree = t;
  c->index = start_index;
}

int sm_cursor_next(sm_cursor *c, void *key, size_t kcap, size_t *klen, void *val,
                   size_t vcap, size_t *vlen) {
  sm_tree *t = c->tree;
  int rc = enter(t);
  if (rc) return rc;
  sm_node *leaf = c->leaf;
  uint32_t pos = c->pos;
  if (!leaf || c->gen != t->gen || pos >= leaf->n) {
    sm_path p;
    rc = descend_index(t, c->index, &p);
    if (rc) return leave(t, rc);
    leaf = p.nd[p.depth];
    pos = p.pos;
  } else {
    sm_cache_used(leaf);
  }
  const sm_kv *kv = leaf->kv[pos];
  if ((key || kcap) && kv->klen > kcap) rc = -ERANGE;
  if ((val || vcap) && kv->vlen > vcap) rc = -ERANGE;
  copy_out(kv->b, kv->klen, rc ? NULL : key, rc ? 0 : kcap, klen);
  copy_out(sm_kv_val(kv), kv->vlen, rc ? NULL : val, rc ? 0 : vcap, vlen);
  if (!rc) {
    c->index++;
    c->pos = pos + 1;
    c->leaf = c->pos < leaf->n ? leaf : NULL;
    c->gen = t->gen;
  }
  return leave(t, rc);
}

/* ---- insert ---- */

/* Everything a split chain can need, allocated before the tree changes. */
typedef struct split_prep {
  sm_node *spare[SM_MAX_DEPTH + 1];
  int nspare, used;
  sm_kv *leaf_sep;
} split_prep;

static void prep_free(split_prep *sp) {
  for (int i = sp->used; i < sp->nspare; i++) sm_node_free(sp->spare[i]);
  free(sp->leaf_sep);
}

/* new_kv goes to leaf position pos. */
static int prep_split(sm_tree *t, sm_path *p, const sm_kv *new_kv, split_prep *sp) {
  memset(sp, 0, sizeof *sp);
  int d = p->depth;
  for (; d >= 0; d--) {
    sm_node *nd = p->nd[d];
    if (sm_node_reserve(nd, nd->n + 1)) return -ENOMEM;
    if (nkeys(nd) < t->max_keys) break;        /* absorbs one more */
    sm_node *r = sm_node_new(t, NULL, nd->leaf);
    sp->spare[sp->nspare++] = r;
    if (!r || sm_node_reserve(r, (uint32_t)t->min_keys + 2)) return -ENOMEM;
  }
  if (d < 0) { /* the root splits: a new root */
    sm_node *r = sm_node_new(t, NULL, false);
    sp->spare[sp->nspare++] = r;
    if (!r || sm_node_reserve(r, 2)) return -ENOMEM;
  }
  if (sp->nspare) { /* the leaf splits: its separator is item min after insert */
    const sm_node *leaf = p->nd[p->depth];
    uint32_t m = (uint32_t)t->min_keys;
    const sm_kv *s = m < p->pos ? leaf->kv[m] : m == p->pos ? new_kv : leaf->kv[m - 1];
    sp->leaf_sep = sep_copy(s);
    if (!sp->leaf_sep) return -ENOMEM;
  }
  return 0;
}

static sm_node *take_spare(split_prep *sp) {
  sm_node *r = sp->spare[sp->used++];
  r->dirty = 1;
  sm_cache_enter(r);
  return r;
}

static void split_up(sm_tree *t, sm_path *p, split_prep *sp) {
  for (int d = p->depth; d >= 0 && nkeys(p->nd[d]) > t->max_keys; d--) {
    sm_node *x = p->nd[d];
    sm_node *r = take_spare(sp);
    sm_kv *sep;
    if (x->leaf) {
      move_tail(r, x, (uint32_t)t->min_keys);
      sep = sp->leaf_sep;
      sp->leaf_sep = NULL;
      r->items = r->n;
      x->items = x->n;
    } else {
      uint32_t keep = (uint32_t)t->min_keys + 1; /* children left */
      sep = sm_node_take_kv(x, keep);
      move_tail(r, x, keep);
      for (uint32_t j = 0; j < r->n; j++) r->items += r->child[j]->items;
      x->items -= r->items;
    }
    if (d == 0) {
      sm_node *root = take_spare(sp);
      root->child[0] = x;
      root->child[1] = r;
      sm_node_add_kv(root, 0, NULL);
      sm_node_add_kv(root, 1, sep);
      root->n = 2;
      root->items = x->items + r->items;
      x->parent = r->parent = root;
      t->root = root;
      if (t->leaf_depth >= 0) t->leaf_depth++;
      sm_cache_account(root);
    } else {
      sm_node *par = p->nd[d - 1];
      uint32_t at = p->idx[d - 1] + 1;
      insert_slot(par, at);
      sm_node_add_kv(par, at, sep);
      par->child[at] = r;
      r->parent = par;
      sm_cache_account(par);
    }
    sm_cache_account(x);
    sm_cache_account(r);
  }
}

int sm_insert(sm_tree *t, const void *key, size_t klen, const void *val, size_t vlen) {
  if (sm_check_key(t, klen) || sm_check_val(t, vlen)) return -EINVAL;
  int rc = enter(t);
  if (rc) return rc;
  sm_path p;
  bool found;
  rc = descend_key(t, key, klen, &p, &found, false);
  if (!rc && found) rc = -EEXIST;
  if (rc) return leave(t, rc);
  sm_kv *kv = sm_kv_new(key, klen, val, vlen);
  split_prep sp = {0};
  if (!kv || prep_split(t, &p, kv, &sp)) {
    free(kv);
    prep_free(&sp);
    return leave(t, -ENOMEM);
  }
  sm_node *leaf = p.nd[p.depth];
  mark_dirty(t, leaf);
  insert_slot(leaf, p.pos);
  sm_node_add_kv(leaf, p.pos, kv);
  add_items(&p, 1);
  sm_cache_account(leaf);
  split_up(t, &p, &sp);
  prep_free(&sp);
  t->gen++;
  return leave(t, 0);
}

/* ---- update ---- */

static int replace_value(sm_tree *t, sm_path *p, const void *val, size_t vlen) {
  sm_node *leaf = p->nd[p->depth];
  const sm_kv *old = leaf->kv[p->pos];
  sm_kv *kv = sm_kv_new(old->b, old->klen, val, vlen);
  if (!kv) return -ENOMEM;
  mark_dirty(t, leaf);
  free(sm_node_take_kv(leaf, p->pos));
  sm_node_add_kv(leaf, p->pos, kv);
  sm_cache_account(leaf);
  t->gen++;
  return 0;
}

int sm_put(sm_tree *t, const void *key, size_t klen, const void *val, size_t vlen) {
  if (sm_check_key(t, klen) || sm_check_val(t, vlen)) return -EINVAL;
  int rc = enter(t);
  if (rc) return rc;
  sm_path p;
  rc = find_key(t, key, klen, &p);
  if (!rc) rc = replace_value(t, &p, val, vlen);
  return leave(t, rc);
}

int sm_put_by_index(sm_tree *t, uint64_t index, const void *val, size_t vlen) {
  if (sm_check_val(t, vlen)) return -EINVAL;
  int rc = enter(t);
  if (rc) return rc;
  sm_path p;
  rc = descend_index(t, index, &p);
  if (!rc) rc = replace_value(t, &p, val, vlen);
  return leave(t, rc);
}

/* ---- delete ---- */

/* Load every sibling a rebalance after this delete could look at, so that
 * no I/O happens once the tree is being changed. */
static int preload_siblings(sm_tree *t, sm_path *p) {
  for (int d = p->depth; d > 0 && nkeys(p->nd[d]) <= t->min_keys; d--) {
    sm_node *par = p->nd[d - 1];
    uint32_t i = p->idx[d - 1];
    int rc = i > 0 ? need(t, par->child[i - 1], d) : 0;
    if (!rc && i + 1 < par->n) rc = need(t, par->child[i + 1], d);
    if (rc) return rc;
  }
  return 0;
}

static int borrow_left(sm_tree *t, sm_node *par, uint32_t i, sm_node *l, sm_node *x) {
  sm_kv *newsep = NULL;
  if (x->leaf && !(newsep = sep_copy(l->kv[l->n - 1]))) return -ENOMEM;
  if (sm_node_reserve(x, x->n + 1)) {
    free(newsep);
    return -ENOMEM;
  }
  mark_dirty(t, l);
  uint32_t last = l->n - 1;
  insert_slot(x, 0);
  if (x->leaf) {
    sm_node_add_kv(x, 0, sm_node_take_kv(l, last));
    free(sm_node_take_kv(par, i));
    sm_node_add_kv(par, i, newsep);
    l->items--;
    x->items++;
  } else {
    sm_node *c = l->child[last];
    x->child[0] = c;
    c->parent = x;
    sm_node_add_kv(x, 1, sm_node_take_kv(par, i));
    sm_node_add_kv(par, i, sm_node_take_kv(l, last));
    l->items -= c->items;
    x->items += c->items;
  }
  l->n--;
  sm_cache_account(l);
  sm_cache_account(x);
  sm_cache_account(par);
  return 0;
}

static int borrow_right(sm_tree *t, sm_node *par, uint32_t i, sm_node *x, sm_node *r) {
  sm_kv *newsep = NULL;
  if (x->leaf && !(newsep = sep_copy(r->kv[1]))) return -ENOMEM;
  if (sm_node_reserve(x, x->n + 1)) {
    free(newsep);
    return -ENOMEM;
  }
  mark_dirty(t, r);
  if (x->leaf) {
    sm_node_add_kv(x, x->n++, sm_node_take_kv(r, 0));
    free(sm_node_take_kv(par, i + 1));
    sm_node_add_kv(par, i + 1, newsep);
    r->items--;
    x->items++;
  } else {
    sm_node *c = r->child[0];
    x->child[x->n] = c;
    c->parent = x;
    sm_node_add_kv(x, x->n++, sm_node_take_kv(par, i + 1));
    sm_node_add_kv(par, i + 1, sm_node_take_kv(r, 1));
    r->items -= c->items;
    x->items += c->items;
  }
  remove_slot(r, 0);
  sm_cache_account(r);
  sm_cache_account(x);
  sm_cache_account(par);
  return 0;
}

/* Child li+1 of par moves into child li; it and its separator go away. */
static int merge(sm_tree *t, sm_node *par, uint32_t li) {
  sm_node *l = par->child[li], *r = par->child[li + 1];
  if (sm_node_reserve(l, l->n + r->n)) return -ENOMEM;
  mark_dirty(t, l);
  sm_kv *sep = sm_node_take_kv(par, li + 1);
  if (l->leaf) free(sep);
  else sm_node_add_kv(r, 0, sep); /* lower bound of r's first child in l */
  move_tail(l, r, 0);
  l->items += r->items;
  remove_slot(par, li + 1);
  sm_stale_push(t, r);
  sm_node_free(r);
  sm_cache_account(l);
  sm_cache_account(par);
  return 0;
}

static int rebalance(sm_tree *t, sm_path *p) {
  for (int d = p->depth; d > 0; d--) {
    sm_node *x = p->nd[d];
    if (nkeys(x) >= t->min_keys) return 0;
    sm_node *par = p->nd[d - 1];
    uint32_t i = p->idx[d - 1];
    sm_node *l = i > 0 ? par->child[i - 1] : NULL;
    sm_node *r = i + 1 < par->n ? par->child[i + 1] : NULL;
    if (l && nkeys(l) > t->min_keys) return borrow_left(t, par, i, l, x);
    if (r && nkeys(r) > t->min_keys) return borrow_right(t, par, i, x, r);
    int rc = merge(t, par, l ? i - 1 : i);
    if (rc) return rc;
    if (d - 1 == 0 && par->n == 1) { /* the root has one child left */
      sm_node *nr = par->child[0];
      par->n = 0;
      nr->parent = NULL;
      t->root = nr;
      sm_stale_push(t, par);
      sm_node_free(par);
      if (t->leaf_depth > 0) t->leaf_depth--;
      return 0;
    }
  }
  return 0;
}

static int delete_at(sm_tree *t, sm_path *p) {
  int rc = preload_siblings(t, p);
  if (rc) return rc;
  sm_node *leaf = p->nd[p->depth];
  mark_dirty(t, leaf);
  free(sm_node_take_kv(leaf, p->pos));
  remove_slot(leaf, p->pos);
  add_items(p, -1);
  sm_cache_account(leaf);
  t->gen++;
  return rebalance(t, p);
}

int sm_delete(sm_tree *t, const void *key, size_t klen) {
  if (sm_check_key(t, klen)) return -EINVAL;
  int rc = enter(t);
  if (rc) return rc;
  sm_path p;
  rc = find_key(t, key, klen, &p);
  if (!rc) rc = delete_at(t, &p);
  return leave(t, rc);
}

int sm_delete_by_index(sm_tree *t, uint64_t index) {
  int rc = enter(t);
  if (rc) return rc;
  sm_path p;
  rc = descend_index(t, index, &p);
  if (!rc) rc = delete_at(t, &p);
  return leave(t, rc);
}

/* ---- storage ---- */

typedef struct node_list {
  sm_node **v;
  size_t n, cap;
} node_list;

static int list_add(node_list *l, sm_node *nd) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    sm_node **v = realloc(l->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = nd;
  return 0;
}

static int flush_node(sm_tree *t, sm_node *nd, node_list *written) {
  if (!nd->loaded || !nd->dirty) return 0;
  for (uint32_t i = 0; !nd->leaf && i < nd->n; i++) {
    int rc = flush_node(t, nd->child[i], written);
    if (rc) return rc;
  }
  int rc = list_add(written, nd);
  if (!rc) rc = sm_node_encode(t, nd, &t->enc);
  if (rc) return rc;
  if (t->enc.len > t->cfg.max_node_bytes)
    return sm_fail(t, -EFBIG, "node of %zu bytes exceeds max_node_bytes", t->enc.len);
  uint64_t on = 0, off = 0;
  rc = t->cfg.write_node(t->cfg.ctx, t->enc.p, t->enc.len, &on, &off);
  if (rc) return sm_fail(t, rc, "write_node failed: %d", rc);
  nd->ref = (sm_ref){on, off, t->enc.len};
  return 0;
}

int sm_flush(sm_tree *t, sm_ref *root) {
  int rc = enter(t);
  if (rc) return rc;
  if (!t->cfg.write_node) return leave(t, -EINVAL);
  node_list written = {0};
  rc = flush_node(t, t->root, &written);
  for (size_t i = 0; i < written.n; i++) {
    if (rc) written.v[i]->ref = (sm_ref){0, 0, 0};
    else sm_cache_set_dirty(written.v[i], false);
  }
  free(written.v);
  if (!rc && root) *root = t->root->ref;
  return leave(t, rc);
}

sm_ref sm_root_ref(sm_tree *t) {
  pthread_mutex_lock(&t->mu);
  sm_ref r = t->root ? t->root->ref : (sm_ref){0, 0, 0};
  pthread_mutex_unlock(&t->mu);
  return r;
}

static int prune_locked(sm_tree *t) {
  size_t done = 0;
  int rc = 0;
  while (done < t->nstale) {
    if (t->cfg.discard_node) rc = t->cfg.discard_node(t->cfg.ctx, &t->stale[done]);
    if (rc) break;
    done++;
  }
  if (done && done < t->nstale)
    memmove(t->stale, t->stale + done, (t->nstale - done) * sizeof *t->stale);
  t->nstale -= done;
  return rc;
}

int sm_prune(sm_tree *t) {
  int rc = enter(t);
  if (rc) return rc;
  return leave(t, prune_locked(t));
}

size_t sm_pending_discards(sm_tree *t) {
  pthread_mutex_lock(&t->mu);
  size_t n = t->nstale;
  pthread_mutex_unlock(&t->mu);
  return n;
}

static int drop_clean(sm_node *nd) {
  if (!nd->loaded) return 0;
  if (!nd->dirty) return sm_evict_subtree(nd);
  for (uint32_t i = 0; !nd->leaf && i < nd->n; i++) {
    int rc = drop_clean(nd->child[i]);
    if (rc) return rc;
  }
  return 0;
}

int sm_drop_clean(sm_tree *t) {
  int rc = enter(t);
  if (rc) return rc;
  return leave(t, drop_clean(t->root));
}

/* Visit every node, loading it unless it is a stub known to be a leaf and
 * the visitor does not need leaf contents. */
typedef int (*visit_fn)(sm_tree *t, sm_node *nd, void *arg);

static int visit(sm_tree *t, sm_node *nd, int depth, bool load_leaves, visit_fn fn, void *arg) {
  bool stub_leaf = !nd->loaded && depth == t->leaf_depth;
  if (!stub_leaf || load_leaves) {
    int rc = need(t, nd, depth);
    if (rc) return rc;
  }
  int rc = fn(t, nd, arg);
  for (uint32_t i = 0; !rc && nd->loaded && !nd->leaf && i < nd->n; i++)
    rc = visit(t, nd->child[i], depth + 1, load_leaves, fn, arg);
  return rc;
}

static int touch_fn(sm_tree *t, sm_node *nd, void *arg) {
  mark_dirty(t, nd);
  return 0;
}

int sm_touch(sm_tree *t) {
  int rc = enter(t);
  if (rc) return rc;
  rc = visit(t, t->root, 0, true, touch_fn, NULL);
  t->gen++;
  return leave(t, rc);
}

int sm_touch_item(sm_tree *t, uint64_t index, uint64_t *next) {
  int rc = enter(t);
  if (rc) return rc;
  rc = need(t, t->root, 0);
  if (rc) return leave(t, rc);
  *next = 0;
  if (t->root->items == 0) return leave(t, 0);
  if (index >= t->root->items) index = 0;
  sm_path p;
  rc = descend_index(t, index, &p);
  if (!rc) {
    sm_node *leaf = p.nd[p.depth];
    mark_dirty(t, leaf);
    *next = index + (leaf->n - p.pos);
    t->gen++;
  }
  return leave(t, rc);
}

static int discard_fn(sm_tree *t, sm_node *nd, void *arg) {
  sm_stale_push(t, nd);
  return 0;
}

int sm_discard(sm_tree *t) {
  int rc = enter(t);
  if (rc) return rc;
  rc = visit(t, t->root, 0, false, discard_fn, NULL);
  t->dead = true;
  int rc2 = prune_locked(t);
  return leave(t, rc ? rc : rc2);
}

typedef struct walk_arg {
  int (*fn)(void *arg, const sm_ref *ref);
  void *arg;
} walk_arg;

static int walk_fn(sm_tree *t, sm_node *nd, void *arg) {
  walk_arg *w = arg;
  return nd->ref.object_length ? w->fn(w->arg, &nd->ref) : 0;
}

int sm_walk_refs(sm_tree *t, int (*fn)(void *arg, const sm_ref *ref), void *arg) {
  int rc = enter(t);
  if (rc) return rc;
  walk_arg w = {fn, arg};
  return leave(t, visit(t, t->root, 0, false, walk_fn, &w));
}
