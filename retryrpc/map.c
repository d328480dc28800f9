/* Intrusive u64 hash map (chained) and the highest-consecutive set. */
#include <errno.h>
#include <stdlib.h>

#include "rrpc_internal.h"

static size_t slot(const rrpc_map *m, uint64_t key) {
  /* Keys are often sequential; a multiplicative hash spreads them. */
  return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & (m->nb - 1);
}

void rrpc_map_init(rrpc_map *m) {
  m->b = NULL;
  m->nb = 0;
  m->n = 0;
}

void rrpc_map_free(rrpc_map *m) {
  free(m->b);
  rrpc_map_init(m);
}

rrpc_map_ent *rrpc_map_find(const rrpc_map *m, uint64_t key) {
  if (!m->nb)
    return NULL;
  for (rrpc_map_ent *e = m->b[slot(m, key)]; e; e = e->next)
    if (e->key == key)
      return e;
  return NULL;
}

static void grow(rrpc_map *m) {
  size_t nb = m->nb ? m->nb * 2 : 16;
  rrpc_map_ent **b = calloc(nb, sizeof *b);
  if (!b)
    return; /* keep the old table: longer chains, still correct */
  rrpc_map old = *m;
  m->b = b;
  m->nb = nb;
  for (size_t i = 0; i < old.nb; i++) {
    for (rrpc_map_ent *e = old.b[i], *next; e; e = next) {
      next = e->next;
      size_t s = slot(m, e->key);
      e->next = m->b[s];
      m->b[s] = e;
    }
  }
  free(old.b);
}

int rrpc_map_insert(rrpc_map *m, rrpc_map_ent *e) {
  if (m->n >= m->nb)
    grow(m);
  if (!m->nb)
    return -ENOMEM;
  size_t s = slot(m, e->key);
  e->next = m->b[s];
  m->b[s] = e;
  m->n++;
  return 0;
}

rrpc_map_ent *rrpc_map_remove(rrpc_map *m, uint64_t key) {
  if (!m->nb)
    return NULL;
  for (rrpc_map_ent **pp = &m->b[slot(m, key)]; *pp; pp = &(*pp)->next) {
    if ((*pp)->key == key) {
      rrpc_map_ent *e = *pp;
      *pp = e->next;
      m->n--;
      return e;
    }
  }
  return NULL;
}

rrpc_map_ent *rrpc_map_next(const rrpc_map *m, size_t *pos, rrpc_map_ent *e) {
  /* e may have been removed by the caller: we only need its successor,
   * which the caller must not have removed; so resume from e->next,
   * which removal does not touch. */
  if (e && e->next)
    return e->next;
  for (size_t i = e ? *pos + 1 : *pos; i < m->nb; i++) {
    if (m->b[i]) {
      *pos = i;
      return m->b[i];
    }
  }
  *pos = m->nb;
  return NULL;
}

/* ---- highest consecutive --------------------------------------------- */

void rrpc_seen_init(rrpc_seen *s) {
  s->hc = 0;
  rrpc_map_init(&s->set);
}

void rrpc_seen_free(rrpc_seen *s) {
  size_t pos = 0;
  rrpc_map_ent *e = NULL;
  while ((e = rrpc_map_next(&s->set, &pos, NULL)) != NULL)
    free(rrpc_map_remove(&s->set, e->key));
  rrpc_map_free(&s->set);
  s->hc = 0;
}

void rrpc_seen_add(rrpc_seen *s, uint64_t id) {
  if (id <= s->hc || rrpc_map_find(&s->set, id))
    return;
  if (id == s->hc + 1) {
    s->hc++;
    rrpc_map_ent *e;
    while ((e = rrpc_map_remove(&s->set, s->hc + 1)) != NULL) {
      free(e);
      s->hc++;
    }
    return;
  }
  rrpc_map_ent *e = malloc(sizeof *e);
  if (!e)
    return; /* the ack lags; the TTL trim still frees the server's copy */
  e->key = id;
  if (rrpc_map_insert(&s->set, e) != 0)
    free(e);
}
