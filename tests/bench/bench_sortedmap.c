/* sortedmap benchmark: an imgr-like inode table (u64 keys, 24-byte values,
 * fan-out 1024) of N keys (default 1,000,000; argv[1] overrides) over an
 * in-memory page store. Prints operations per second for insert, lookup,
 * iterate, flush and reload, plus peak RSS and the cache's bytes.
 * Figures only, no assertions on time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sm_test_store.h"
#include "sortedmap.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_sortedmap: %s failed: %d\n", what, rc);
  exit(1);
}

static void report(const char *what, uint64_t ops, double secs) {
  printf("%-34s %10.0f ops/s  (%llu ops, %.3f s)\n", what, (double)ops / secs,
         (unsigned long long)ops, secs);
}

static long peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static void lookups(sm_tree *t, const uint64_t *keys, uint64_t n, const char *what) {
  uint8_t v[24];
  double t0 = now();
  for (uint64_t i = 0; i < n; i++) {
    uint64_t k = keys[rnd() % n];
    int rc = sm_get(t, &k, 8, v, sizeof v, NULL);
    if (rc) die("sm_get", rc);
  }
  report(what, n, now() - t0);
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
  if (n == 0) n = 1;
  uint64_t *keys = malloc(n * sizeof *keys);
  if (!keys) die("malloc", -ENOMEM);
  for (uint64_t i = 0; i < n; i++) keys[i] = 1000 + i;
  for (uint64_t i = n - 1; i > 0; i--) { /* shuffle: random insert order */
    uint64_t j = rnd() % (i + 1), x = keys[i];
    keys[i] = keys[j];
    keys[j] = x;
  }
  sm_test_store s;
  sm_test_store_init(&s, 1);
  sm_config cfg = sm_test_cfg_u64(&s, 24);
  /* imgr's default InodeTableCacheEvictLow/HighLimit */
  sm_cache *cache = sm_cache_create(10000, 10010, 0);
  sm_tree *t;
  int rc = sm_create(&cfg, cache, 1024, &t);
  if (rc) die("sm_create", rc);
  printf("sortedmap: %llu u64 keys, 24-byte values, fan-out 1024, cache 10000/10010 nodes\n",
         (unsigned long long)n);

  uint8_t v[24] = {1};
  double t0 = now();
  for (uint64_t i = 0; i < n; i++) {
    memcpy(v + 8, &keys[i], 8);
    rc = sm_insert(t, &keys[i], 8, v, 24);
    if (rc) die("sm_insert", rc);
  }
  report("insert (random order)", n, now() - t0);

  lookups(t, keys, n, "lookup (random, resident)");

  sm_cursor c;
  sm_cursor_init(&c, t, 0);
  uint64_t k, prev = 0, cnt = 0;
  t0 = now();
  while ((rc = sm_cursor_next(&c, &k, 8, NULL, v, 24, NULL)) == 0) {
    if (k <= prev && cnt) die("order", -EINVAL);
    prev = k;
    cnt++;
  }
  if (cnt != n) die("iterate count", -EINVAL);
  report("iterate (cursor)", cnt, now() - t0);

  sm_cache_stats st;
  sm_cache_stats_get(cache, &st);
  printf("%-34s %10llu nodes, %llu bytes in the cache\n", "resident after build",
         (unsigned long long)(st.clean_nodes + st.dirty_nodes), (unsigned long long)st.bytes);

  sm_ref root;
  uint64_t w0 = s.writes;
  t0 = now();
  rc = sm_flush(t, &root);
  double fl = now() - t0;
  if (rc) die("sm_flush", rc);
  printf("%-34s %10.0f items/s  (%llu nodes, %zu bytes, %.3f s)\n", "flush (all dirty)",
         (double)n / fl, (unsigned long long)(s.writes - w0), s.obj[1].len, fl);

  sm_destroy(t);
  t0 = now();
  char err[160];
  rc = sm_open(&cfg, cache, &root, &t, err, sizeof err);
  if (rc) die(err, rc);
  sm_cursor_init(&c, t, 0);
  cnt = 0;
  while (sm_cursor_next(&c, &k, 8, NULL, v, 24, NULL) == 0) cnt++;
  if (cnt != n) die("reload count", -EINVAL);
  report("reload (open + full iterate)", cnt, now() - t0);

  sm_destroy(t);
  rc = sm_open(&cfg, cache, &root, &t, err, sizeof err);
  if (rc) die(err, rc);
  lookups(t, keys, n, "lookup (random, cold start)");

  sm_cache_stats_get(cache, &st);
  printf("%-34s %10llu nodes, %llu bytes in the cache; %llu hits, %llu misses\n",
         "cache at the end", (unsigned long long)(st.clean_nodes + st.dirty_nodes),
         (unsigned long long)st.bytes, (unsigned long long)st.hits,
         (unsigned long long)st.misses);
  printf("%-34s %10ld KiB\n", "peak RSS (getrusage)", peak_rss_kb());
  sm_destroy(t);
  sm_cache_destroy(cache);
  sm_test_store_free(&s);
  free(keys);
  return 0;
}
