/* bench_bucketstats: adds per second for each stat kind, with one thread
 * and with two threads adding to the same stat (the contended case).
 * Prints figures only. Usage: bench_bucketstats [adds-per-thread] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bucketstats.h"

static bs_total total;
static bs_average average;
static bs_log2 log2s;
static bs_logroot2 logroot2s;

typedef struct {
  int kind;
  unsigned long adds;
  unsigned seed;
} job;

static void *run(void *arg) {
  const job *j = arg;
  /* values spread over many buckets; a cheap LCG keeps the cost low */
  uint64_t v = j->seed;
  for (unsigned long i = 0; i < j->adds; i++) {
    v = v * 6364136223846793005u + 1442695040888963407u;
    uint64_t x = v >> (v & 63);
    switch (j->kind) {
    case 0: bs_total_add(&total, x); break;
    case 1: bs_average_add(&average, x); break;
    case 2: bs_log2_add(&log2s, x); break;
    default: bs_logroot2_add(&logroot2s, x); break;
    }
  }
  return NULL;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  unsigned long adds = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000000ul;
  static const char *const names[] = {"total", "average", "log2", "logroot2"};
  const bs_stat_desc d[] = {
      BS_DESC_TOTAL(&total, "total"),
      BS_DESC_AVERAGE(&average, "average"),
      BS_DESC_LOG2(&log2s, "log2"),
      BS_DESC_LOGROOT2(&logroot2s, "logroot2"),
  };
  if (bs_register("bench", "", d, 4) != 0)
    return 1;
  for (int kind = 0; kind < 4; kind++) {
    for (int threads = 1; threads <= 2; threads++) {
      pthread_t th[2];
      job jobs[2];
      double t0 = now();
      for (int i = 0; i < threads; i++) {
        jobs[i] = (job){kind, adds, (unsigned)(i + 1)};
        if (pthread_create(&th[i], NULL, run, &jobs[i]) != 0)
          return 1;
      }
      for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
      double secs = now() - t0;
      printf("%-8s %d thread%s: %6.1f M adds/s\n", names[kind], threads, threads > 1 ? "s" : " ",
             (double)adds * threads / secs / 1e6);
    }
  }
  bs_unregister("bench", "");
  return 0;
}
