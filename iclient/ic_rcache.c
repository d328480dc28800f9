/* ic_rcache: the read cache of object bytes (iclient.md 5.2), with
 * read-ahead: on Swift every line is a round trip, so a reader going
 * through an object in order would otherwise wait for each one in turn. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ic_internal.h"
#include "logger.h"

typedef enum { LINE_FILLING, LINE_READY, LINE_FAILED } line_state;

/* A miss that does not look sequential fetches this much of its line (the
 * aligned blocks holding the bytes asked for), not the whole line: a random
 * 4 KiB reader otherwise moved a whole 256 KiB line per read (7,990 random
 * reads/s in the benchmark; 14,761/s with 32 KiB lines, which in turn cut
 * cold sequential reads to a third). A later read of the line outside
 * those bytes fills the whole line. */
#define IC_RCACHE_RANDOM_FILL ((uint64_t)32 << 10)

typedef struct line {
  uint64_t object_number, line_number;
  uint8_t *buf;
  size_t lo, hi; /* the bytes present: [lo, hi) of the line */
  bool eof;      /* the object ends at hi */
  line_state state;
  unsigned refs;                    /* readers using it; the fill holds one */
  struct line *hnext;               /* hash chain */
  struct line *lru_prev, *lru_next; /* only READY lines nobody uses */
} line;

typedef struct prefetch_req {
  uint64_t object_number, line_number;
} prefetch_req;

struct ic_rcache {
  const ic_store_ops *store;
  void *store_ctx;
  uint64_t line_size, max_lines;
  unsigned prefetch_lines;
  pthread_mutex_t mu;
  pthread_cond_t cv;    /* a fill finished or a line became evictable */
  pthread_cond_t pf_cv; /* read-ahead queued, or stopping */
  prefetch_req *pf_q; /* a ring of pf_cap */
  size_t pf_cap, pf_head, pf_len;
  pthread_t *pf_threads;
  unsigned npf_threads;
  bool stopping;
  line **buckets;
  size_t nbuckets;           /* power of two */
  uint64_t nlines;           /* lines in the hash, filling ones included */
  line *lru_head, *lru_tail; /* head = least recently used */
  line *spare;               /* the last evicted line, its buffer kept for the next */
  ic_rcache_stats stats;
};

static size_t bucket_of(const ic_rcache *rc, uint64_t obj, uint64_t ln) {
  uint64_t h = obj * UINT64_C(0x9E3779B97F4A7C15) ^ (ln + UINT64_C(0x632BE59BD9B4E019));
  h ^= h >> 29;
  return (size_t)(h & (rc->nbuckets - 1));
}

static void *prefetcher_main(void *arg);

static void line_free(line *l) {
  if (!l) return;
  free(l->buf);
  free(l);
}

int ic_rcache_create(const ic_store_ops *store, void *store_ctx, uint64_t line_size,
                     uint64_t max_lines, unsigned prefetch_lines, unsigned prefetch_threads,
                     ic_rcache **out) {
  if (!store || line_size == 0 || max_lines == 0 || line_size > SIZE_MAX / 2) return -EINVAL;
  if (prefetch_lines == 0 || prefetch_threads == 0) prefetch_lines = prefetch_threads = 0;
  ic_rcache *rc = calloc(1, sizeof(*rc));
  if (!rc) return -ENOMEM;
  rc->store = store;
  rc->store_ctx = store_ctx;
  rc->line_size = line_size;
  rc->max_lines = max_lines;
  rc->prefetch_lines = prefetch_lines;
  rc->pf_cap = (size_t)IC_RCACHE_QUEUE_PER_LINE * prefetch_lines;
  rc->nbuckets = 64;
  while (rc->nbuckets < max_lines && rc->nbuckets < ((size_t)1 << 16)) rc->nbuckets <<= 1;
  rc->buckets = calloc(rc->nbuckets, sizeof(*rc->buckets));
  rc->pf_q = prefetch_lines ? calloc(rc->pf_cap, sizeof(*rc->pf_q)) : NULL;
  rc->pf_threads = prefetch_lines ? calloc(prefetch_threads, sizeof(*rc->pf_threads)) : NULL;
  if (!rc->buckets || (prefetch_lines && (!rc->pf_q || !rc->pf_threads))) {
    free(rc->buckets);
    free(rc->pf_q);
    free(rc->pf_threads);
    free(rc);
    return -ENOMEM;
  }
  pthread_mutex_init(&rc->mu, NULL);
  pthread_cond_init(&rc->cv, NULL);
  pthread_cond_init(&rc->pf_cv, NULL);
  while (rc->npf_threads < prefetch_threads &&
         pthread_create(&rc->pf_threads[rc->npf_threads], NULL, prefetcher_main, rc) == 0)
    rc->npf_threads++;
  *out = rc;
  return 0;
}

void ic_rcache_destroy(ic_rcache *rc) {
  if (!rc) return;
  pthread_mutex_lock(&rc->mu);
  rc->stopping = true;
  pthread_cond_broadcast(&rc->pf_cv);
  pthread_mutex_unlock(&rc->mu);
  for (unsigned i = 0; i < rc->npf_threads; i++) pthread_join(rc->pf_threads[i], NULL);
  for (size_t i = 0; i < rc->nbuckets; i++) {
    for (line *l = rc->buckets[i], *next; l; l = next) {
      next = l->hnext;
      line_free(l);
    }
  }
  line_free(rc->spare);
  free(rc->buckets);
  free(rc->pf_q);
  free(rc->pf_threads);
  pthread_cond_destroy(&rc->pf_cv);
  pthread_cond_destroy(&rc->cv);
  pthread_mutex_destroy(&rc->mu);
  free(rc);
}

static void lru_unlink(ic_rcache *rc, line *l) {
  if (l->lru_prev)
    l->lru_prev->lru_next = l->lru_next;
  else
    rc->lru_head = l->lru_next;
  if (l->lru_next)
    l->lru_next->lru_prev = l->lru_prev;
  else
    rc->lru_tail = l->lru_prev;
  l->lru_prev = l->lru_next = NULL;
}

static void lru_append(ic_rcache *rc, line *l) {
  l->lru_prev = rc->lru_tail;
  l->lru_next = NULL;
  if (rc->lru_tail)
    rc->lru_tail->lru_next = l;
  else
    rc->lru_head = l;
  rc->lru_tail = l;
}

static void hash_unlink(ic_rcache *rc, line *l) {
  line **pp = &rc->buckets[bucket_of(rc, l->object_number, l->line_number)];
  while (*pp != l) pp = &(*pp)->hnext;
  *pp = l->hnext;
  rc->nlines--;
}

/* Drop a reader's reference (mu held). */
static void line_release(ic_rcache *rc, line *l) {
  if (--l->refs > 0) return;
  if (l->state == LINE_FAILED) { /* already out of the hash */
    line_free(l);
    return;
  }
  lru_append(rc, l);
  pthread_cond_broadcast(&rc->cv);
}

static line *line_find(ic_rcache *rc, uint64_t obj, uint64_t ln) {
  line *l = rc->buckets[bucket_of(rc, obj, ln)];
  while (l && !(l->object_number == obj && l->line_number == ln)) l = l->hnext;
  return l;
}

/* Below max_lines by evicting the least recently used free line: true, or
 * false when every line is in use (mu held). */
static bool line_room(ic_rcache *rc) {
  if (rc->nlines < rc->max_lines) return true;
  line *victim = rc->lru_head;
  if (!victim) return false;
  lru_unlink(rc, victim);
  hash_unlink(rc, victim);
  /* Kept for line_new: a full cache then evicts and fills without
   * allocating, and no line-sized buffer goes back to malloc. */
  line_free(rc->spare);
  rc->spare = victim;
  rc->stats.evictions++;
  return true;
}

/* A new FILLING line in the hash, referenced once by its filler (mu held). */
static line *line_new(ic_rcache *rc, uint64_t obj, uint64_t ln) {
  line *l = rc->spare;
  uint8_t *buf;
  if (l) {
    rc->spare = NULL;
    buf = l->buf;
    memset(l, 0, sizeof(*l));
  } else {
    l = calloc(1, sizeof(*l));
    buf = l ? malloc(rc->line_size) : NULL;
    if (!buf) {
      free(l);
      return NULL;
    }
  }
  l->object_number = obj;
  l->line_number = ln;
  l->buf = buf;
  l->state = LINE_FILLING;
  l->refs = 1;
  size_t b = bucket_of(rc, obj, ln);
  l->hnext = rc->buckets[b];
  rc->buckets[b] = l;
  rc->nlines++;
  return l;
}

/* GET bytes [from, to) of the FILLING line (mu dropped meanwhile): READY,
 * or on failure out of the hash, FAILED and released (then -EIO). `quiet`:
 * read-ahead past an object's end is expected to fail. */
static int line_fill(ic_rcache *rc, line *l, uint64_t from, uint64_t to, bool quiet) {
  pthread_mutex_unlock(&rc->mu);
  size_t got = 0;
  int rc_get = rc->store->get(rc->store_ctx, l->object_number,
                              l->line_number * rc->line_size + from, to - from, l->buf + from,
                              &got);
  pthread_mutex_lock(&rc->mu);
  if (rc_get) {
    if (!quiet)
      log_error("iclient: read cache fill of object %016llX line %llu failed: %d",
                (unsigned long long)l->object_number, (unsigned long long)l->line_number,
                rc_get);
    hash_unlink(rc, l);
    l->state = LINE_FAILED;
    pthread_cond_broadcast(&rc->cv);
    line_release(rc, l);
    return -EIO;
  }
  l->lo = (size_t)from;
  l->hi = (size_t)from + got;
  l->eof = got < to - from;
  l->state = LINE_READY;
  pthread_cond_broadcast(&rc->cv);
  return 0;
}

/* Was l used just now: in use, or one of the two most recently used? A
 * reader going through an object in order has just used the line before
 * the one it misses; a random reader that happens to miss next to a cached
 * line mostly has not (mu held). */
static bool line_just_used(const ic_rcache *rc, const line *l) {
  return l->refs > 0 || l == rc->lru_tail || (rc->lru_tail && l == rc->lru_tail->lru_prev);
}

/* Does a miss on line ln of obj look like reading in order: line 0, or the
 * line before used just now (mu held)? */
static bool miss_in_order(ic_rcache *rc, uint64_t obj, uint64_t ln) {
  const line *prev = ln > 0 ? line_find(rc, obj, ln - 1) : NULL;
  return ln == 0 || (prev && line_just_used(rc, prev));
}

/* Queue read-ahead after an in-order miss on line ln of obj (mu held). */
static void prefetch_after_miss(ic_rcache *rc, uint64_t obj, uint64_t ln) {
  if (rc->npf_threads == 0) return;
  for (uint64_t i = 1; i <= rc->prefetch_lines; i++) {
    if (rc->pf_len == rc->pf_cap) break;
    if (line_find(rc, obj, ln + i)) continue;
    rc->pf_q[(rc->pf_head + rc->pf_len++) % rc->pf_cap] =
        (prefetch_req){obj, ln + i};
  }
  pthread_cond_signal(&rc->pf_cv);
}

static void *prefetcher_main(void *arg) {
  ic_rcache *rc = arg;
  pthread_mutex_lock(&rc->mu);
  for (;;) {
    while (rc->pf_len == 0 && !rc->stopping) pthread_cond_wait(&rc->pf_cv, &rc->mu);
    if (rc->stopping) break;
    prefetch_req r = rc->pf_q[rc->pf_head];
    rc->pf_head = (rc->pf_head + 1) % rc->pf_cap;
    rc->pf_len--;
    if (line_find(rc, r.object_number, r.line_number) || !line_room(rc)) continue;
    line *l = line_new(rc, r.object_number, r.line_number);
    if (!l) continue;
    rc->stats.prefetches++;
    if (line_fill(rc, l, 0, rc->line_size, true) == 0) line_release(rc, l); /* evictable */
  }
  pthread_mutex_unlock(&rc->mu);
  return NULL;
}

/* Are bytes [a, b) of the READY line l present (or past the object's end,
 * which the reader reports)? */
static bool line_covers(const line *l, uint64_t a, uint64_t b) {
  return l->lo <= a && (b <= l->hi || l->eof);
}

/* Get line ln of obj referenced and READY with bytes [a, b) of it present,
 * filling it if needed (mu held on entry and exit; dropped during the fill
 * and while waiting). */
static int line_acquire(ic_rcache *rc, uint64_t obj, uint64_t ln, uint64_t a, uint64_t b,
                        line **out) {
  for (;;) {
    line *l = line_find(rc, obj, ln);
    if (l) {
      if (l->refs == 0) lru_unlink(rc, l);
      l->refs++;
      while (l->state == LINE_FILLING) pthread_cond_wait(&rc->cv, &rc->mu);
      if (l->state == LINE_FAILED) {
        line_release(rc, l);
        return -EIO;
      }
      if (line_covers(l, a, b)) {
        rc->stats.hits++;
        *out = l;
        return 0;
      }
      /* part of the line only (a random miss filled it): fill all of it */
      rc->stats.misses++;
      l->state = LINE_FILLING;
      int err = line_fill(rc, l, 0, rc->line_size, false);
      if (err) return err;
      *out = l;
      return 0;
    }
    if (line_room(rc)) break;
    pthread_cond_wait(&rc->cv, &rc->mu); /* every line is in use: wait for one */
  }
  uint64_t from = 0, to = rc->line_size;
  if (miss_in_order(rc, obj, ln)) {
    prefetch_after_miss(rc, obj, ln);
  } else if (IC_RCACHE_RANDOM_FILL < rc->line_size) {
    from = a / IC_RCACHE_RANDOM_FILL * IC_RCACHE_RANDOM_FILL;
    to = (b + IC_RCACHE_RANDOM_FILL - 1) / IC_RCACHE_RANDOM_FILL * IC_RCACHE_RANDOM_FILL;
    if (to > rc->line_size) to = rc->line_size;
  }
  line *l = line_new(rc, obj, ln);
  if (!l) return -ENOMEM;
  rc->stats.misses++;
  int err = line_fill(rc, l, from, to, false);
  if (err) return err;
  *out = l;
  return 0;
}

int ic_rcache_read(ic_rcache *rc, uint64_t obj, uint64_t off, uint64_t len, void *buf) {
  if (len == 0) return 0;
  if (off + len < off) return -EINVAL;
  uint8_t *dst = buf;
  int err = 0;
  pthread_mutex_lock(&rc->mu);
  while (len > 0) {
    uint64_t ln = off / rc->line_size;
    uint64_t in_line = off - ln * rc->line_size;
    uint64_t want = rc->line_size - in_line < len ? rc->line_size - in_line : len;
    line *l;
    err = line_acquire(rc, obj, ln, in_line, in_line + want, &l);
    if (err) break;
    if (in_line >= l->hi) {
      err = -EIO; /* past the end of the object */
      line_release(rc, l);
      break;
    }
    uint64_t n = l->hi - in_line;
    if (n > want) n = want;
    memcpy(dst, l->buf + in_line, n);
    line_release(rc, l);
    dst += n;
    off += n;
    len -= n;
  }
  pthread_mutex_unlock(&rc->mu);
  return err;
}

void ic_rcache_stats_get(ic_rcache *rc, ic_rcache_stats *out) {
  pthread_mutex_lock(&rc->mu);
  *out = rc->stats;
  out->lines = rc->nlines;
  pthread_mutex_unlock(&rc->mu);
}
