/* The node cache shared by trees: two LRU lists (clean, dirty) of resident
 * nodes, counts and bytes, and eviction of clean nodes.
 *
 * Locking: list links, counts and limits are under cache->mu. A node is
 * freed or unloaded only under its tree's mutex, after it left the lists.
 * Eviction picks a victim under cache->mu and try-locks the victim's tree
 * (never blocks, so the reversed order cannot deadlock), then releases
 * cache->mu and unloads the victim under its tree's mutex. */
#include <errno.h>
#include <stdlib.h>

#include "sm_internal.h"

/* Busy trees skipped per eviction round before giving up for now. */
#define SM_EVICT_MAX_SKIPS 64

sm_cache *sm_cache_create(uint64_t low_nodes, uint64_t high_nodes,
                          uint64_t max_bytes) {
  sm_cache *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (pthread_mutex_init(&c->mu, NULL)) {
    free(c);
    return NULL;
  }
  sm_cache_set_limits(c, low_nodes, high_nodes, max_bytes);
  return c;
}

void sm_cache_destroy(sm_cache *c) {
  if (!c) return;
  pthread_mutex_destroy(&c->mu);
  free(c);
}

void sm_cache_set_limits(sm_cache *c, uint64_t low_nodes, uint64_t high_nodes,
                         uint64_t max_bytes) {
  pthread_mutex_lock(&c->mu);
  c->high = high_nodes;
  c->low = low_nodes > high_nodes ? high_nodes : low_nodes;
  c->max_bytes = max_bytes;
  pthread_mutex_unlock(&c->mu);
}

void sm_cache_stats_get(sm_cache *c, sm_cache_stats *out) {
  pthread_mutex_lock(&c->mu);
  out->clean_nodes = c->clean_n;
  out->dirty_nodes = c->dirty_n;
  out->bytes = c->bytes;
  out->hits = c->hits;
  out->misses = c->misses;
  out->evictions = c->evictions;
  pthread_mutex_unlock(&c->mu);
}

static void unlink_locked(sm_cache *c, sm_node *nd) {
  sm_node **head = nd->lru == SM_LRU_CLEAN ? &c->clean_head : &c->dirty_head;
  sm_node **tail = nd->lru == SM_LRU_CLEAN ? &c->clean_tail : &c->dirty_tail;
  if (nd->lru_prev) nd->lru_prev->lru_next = nd->lru_next;
  else *head = nd->lru_next;
  if (nd->lru_next) nd->lru_next->lru_prev = nd->lru_prev;
  else *tail = nd->lru_prev;
  nd->lru_prev = nd->lru_next = NULL;
  if (nd->lru == SM_LRU_CLEAN) c->clean_n--;
  else c->dirty_n--;
  nd->lru = SM_LRU_NONE;
}

static void link_tail_locked(sm_cache *c, sm_node *nd) {
  nd->lru = nd->dirty ? SM_LRU_DIRTY : SM_LRU_CLEAN;
  sm_node **head = nd->dirty ? &c->dirty_head : &c->clean_head;
  sm_node **tail = nd->dirty ? &c->dirty_tail : &c->clean_tail;
  nd->lru_next = NULL;
  nd->lru_prev = *tail;
  if (*tail) (*tail)->lru_next = nd;
  else *head = nd;
  *tail = nd;
  if (nd->dirty) c->dirty_n++;
  else c->clean_n++;
}

void sm_cache_used(sm_node *nd) {
  sm_cache *c = nd->tree->cache;
  if (!c || nd->lru == SM_LRU_NONE) return;
  pthread_mutex_lock(&c->mu);
  c->hits++;
  unlink_locked(c, nd);
  link_tail_locked(c, nd);
  pthread_mutex_unlock(&c->mu);
}

void sm_cache_enter(sm_node *nd) {
  sm_cache *c = nd->tree->cache;
  nd->mem = sm_node_mem(nd);
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  link_tail_locked(c, nd);
  c->bytes += nd->mem;
  pthread_mutex_unlock(&c->mu);
}

void sm_cache_leave(sm_node *nd) {
  sm_cache *c = nd->tree->cache;
  if (!c || nd->lru == SM_LRU_NONE) return;
  pthread_mutex_lock(&c->mu);
  unlink_locked(c, nd);
  c->bytes -= nd->mem;
  pthread_mutex_unlock(&c->mu);
}

void sm_cache_set_dirty(sm_node *nd, bool dirty) {
  sm_cache *c = nd->tree->cache;
  nd->dirty = dirty;
  if (!c || nd->lru == SM_LRU_NONE) return;
  pthread_mutex_lock(&c->mu);
  unlink_locked(c, nd);
  link_tail_locked(c, nd);
  pthread_mutex_unlock(&c->mu);
}

void sm_cache_account(sm_node *nd) {
  sm_cache *c = nd->tree->cache;
  size_t mem = sm_node_mem(nd);
  if (c && nd->lru != SM_LRU_NONE) {
    pthread_mutex_lock(&c->mu);
    c->bytes = c->bytes - nd->mem + mem;
    pthread_mutex_unlock(&c->mu);
  }
  nd->mem = mem;
}

void sm_cache_count_miss(sm_tree *t) {
  sm_cache *c = t->cache;
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  c->misses++;
  pthread_mutex_unlock(&c->mu);
}

int sm_evict_subtree(sm_node *nd) {
  if (!nd->loaded) return 0;
  if (nd->dirty) return -EBUSY;
  for (uint32_t i = 0; !nd->leaf && i < nd->n; i++) {
    int rc = sm_evict_subtree(nd->child[i]);
    if (rc) return rc;
  }
  sm_node_unload(nd);
  nd->tree->gen++;
  return 0;
}

static bool over_locked(const sm_cache *c, bool started) {
  uint64_t nodes = c->clean_n + c->dirty_n;
  uint64_t node_limit = started ? c->low : c->high;
  return (c->high && nodes > node_limit) || (c->max_bytes && c->bytes > c->max_bytes);
}

void sm_cache_evict(sm_tree *self) {
  sm_cache *c = self->cache;
  if (!c) return;
  bool started = false;
  for (;;) {
    pthread_mutex_lock(&c->mu);
    if (!over_locked(c, started)) {
      pthread_mutex_unlock(&c->mu);
      return;
    }
    started = true;
    sm_node *victim = NULL;
    sm_tree *locked = NULL;
    int skips = 0;
    for (sm_node *nd = c->clean_head; nd && skips < SM_EVICT_MAX_SKIPS; nd = nd->lru_next) {
      if (nd->tree == self) {
        victim = nd;
        break;
      }
      if (pthread_mutex_trylock(&nd->tree->mu) == 0) {
        victim = nd;
        locked = nd->tree;
        break;
      }
      skips++;
    }
    if (victim) c->evictions++;
    pthread_mutex_unlock(&c->mu);
    if (!victim) return;
    /* A clean node has no dirty descendant (dirty nodes make their
     * ancestors dirty), so this cannot fail; if it ever did, stop rather
     * than spin on the same victim. */
    int rc = sm_evict_subtree(victim);
    if (locked) pthread_mutex_unlock(&locked->mu);
    if (rc) return;
  }
}
