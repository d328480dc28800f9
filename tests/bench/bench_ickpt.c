/*
 * bench_ickpt: durable commit rate of the ickpt store (no HTTP, no Swift).
 * Every commit is an LMDB write transaction that fsyncs before returning,
 * so the figures are those of the disk under DIR.
 *
 *   bench_ickpt [DIR] [COMMITS] [THREADS]     (defaults: /tmp, 300, 1 and 4)
 *
 * Prints figures only; asserts nothing about time.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ickpt.h"

typedef struct {
  ickpt_store *s;
  int id, n, failed;
} worker;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *p) {
  worker *w = p;
  char url[128], txn[32], value[68], err[256];
  snprintf(url, sizeof url, "swift:8080/v1/AUTH_bench/vol%d/0000000000000000", w->id);
  const ickpt_cond none = {ICKPT_COND_NONE, 0};
  for (int i = 1; i <= w->n; i++) {
    uint64_t v;
    snprintf(txn, sizeof txn, "T%d", i);
    snprintf(value, sizeof value, "%016X %016X %016X %016X", 1, i, 0x60, i);
    if (ickpt_store_stage(w->s, url, txn, ICKPT_SET, value, 67, &none, err, sizeof err) != 0 ||
        ickpt_store_commit(w->s, url, txn, &v, err, sizeof err) != 0) {
      w->failed++;
    }
  }
  return NULL;
}

static int bench(const char *base, int commits, int threads) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/bench-ickpt-XXXXXX", base);
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  ickpt_store_config cfg = {.path = dir, .enforce_monotonic = true,
                            .max_staged = (size_t)commits * (size_t)threads + 16};
  ickpt_store *s;
  char err[256];
  if (ickpt_store_open(&cfg, &s, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  worker w[64];
  pthread_t t[64];
  double t0 = now_s();
  for (int i = 0; i < threads; i++) {
    w[i] = (worker){s, i, commits, 0};
    pthread_create(&t[i], NULL, run, &w[i]);
  }
  int failed = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    failed += w[i].failed;
  }
  double secs = now_s() - t0;
  int total = commits * threads;
  printf("ickpt store: %d durable PUT+POST commits, %d thread(s), %d keys: %.2f s, "
         "%.0f commits/s, %.0f us/commit, %d failed\n",
         total, threads, threads, secs, total / secs, secs * 1e6 / total, failed);
  ickpt_store_close(s);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) != 0 || failed != 0;
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/tmp";
  int commits = argc > 2 ? atoi(argv[2]) : 300;
  if (commits < 1) {
    commits = 1;
  }
  if (argc > 3) {
    int threads = atoi(argv[3]);
    return bench(dir, commits, threads < 1 ? 1 : threads > 64 ? 64 : threads);
  }
  return bench(dir, commits, 1) | bench(dir, commits, 4);
}
