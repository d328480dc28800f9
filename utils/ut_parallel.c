/* ut_parallel: a bounded parallel for-loop (see utils.h). Used where a batch
 * of independent network calls would otherwise wait for each other's round
 * trips (iclient's log segment PUTs and deletes). */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "utils.h"

#define UT_PARALLEL_MAX_THREADS 64

typedef struct par {
  pthread_mutex_t mu;
  size_t next, n;
  int first_err;
  int (*fn)(void *ctx, size_t i);
  void *ctx;
} par;

static bool par_take(par *p, size_t *i) {
  pthread_mutex_lock(&p->mu);
  bool ok = p->first_err == 0 && p->next < p->n;
  if (ok) *i = p->next++;
  pthread_mutex_unlock(&p->mu);
  return ok;
}

static void *par_worker(void *arg) {
  par *p = arg;
  size_t i;
  while (par_take(p, &i)) {
    int rc = p->fn(p->ctx, i);
    if (rc) {
      pthread_mutex_lock(&p->mu);
      if (p->first_err == 0) p->first_err = rc;
      pthread_mutex_unlock(&p->mu);
    }
  }
  return NULL;
}

int ut_parallel(size_t n, unsigned threads, int (*fn)(void *ctx, size_t i), void *ctx) {
  par p = {.next = 0, .n = n, .first_err = 0, .fn = fn, .ctx = ctx};
  pthread_mutex_init(&p.mu, NULL);
  if (threads > UT_PARALLEL_MAX_THREADS) threads = UT_PARALLEL_MAX_THREADS;
  size_t extra = threads > 1 && n > 1 ? (n < threads ? n : threads) - 1 : 0;
  pthread_t tid[UT_PARALLEL_MAX_THREADS];
  size_t started = 0;
  while (started < extra && pthread_create(&tid[started], NULL, par_worker, &p) == 0) started++;
  par_worker(&p);
  for (size_t t = 0; t < started; t++) pthread_join(tid[t], NULL);
  pthread_mutex_destroy(&p.mu);
  return p.first_err;
}
