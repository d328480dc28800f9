/*
 * bench_swift: PUT and GET throughput of swiftclient, 1 MiB and 16 KiB
 * objects, 1 and 8 parallel streams, against in-process iswift and (when
 * reachable) a real Swift, printed side by side. Figures only, no assertions.
 *
 *   bench_swift [REAL_AUTH_URL]   (default http://127.0.0.1:8080/auth/v1.0;
 *                                  "-" skips real Swift)
 * Env BENCH_MIB: data per case in MiB (default 64 for 1 MiB objects, a
 * sixteenth of it for 16 KiB objects).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iswift.h"
#include "swiftclient.h"

typedef struct {
  swift_conn *c;
  const char *container;
  size_t size;
  int first, count;
  bool get;
  const unsigned char *data;
  int err;
} job;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run_job(void *arg) {
  job *j = arg;
  unsigned char *buf = j->get ? malloc(j->size) : NULL;
  for (int i = j->first; i < j->first + j->count && !j->err; i++) {
    char name[32];
    snprintf(name, sizeof name, "b%06d", i);
    size_t got;
    j->err = j->get ? swift_object_get(j->c, j->container, name, (swift_range){0}, buf,
                                       j->size, &got, NULL)
                    : swift_object_put(j->c, j->container, name, j->data, j->size, NULL, 0);
  }
  free(buf);
  return NULL;
}

/* MiB/s of `objects` PUTs or GETs spread over `streams` threads. */
static double phase(swift_conn *c, const char *container, size_t size, int objects,
                    int streams, bool get, const unsigned char *data) {
  pthread_t t[8];
  job j[8];
  double t0 = now_s();
  for (int s = 0; s < streams; s++) {
    j[s] = (job){c, container, size, s * (objects / streams), objects / streams, get, data, 0};
    pthread_create(&t[s], NULL, run_job, &j[s]);
  }
  int err = 0;
  for (int s = 0; s < streams; s++) {
    pthread_join(t[s], NULL);
    if (j[s].err) err = j[s].err;
  }
  double el = now_s() - t0;
  if (err) {
    fprintf(stderr, "bench: %s failed: %s\n", get ? "GET" : "PUT", strerror(-err));
    return -1;
  }
  return (double)size * objects / (1024.0 * 1024.0) / el;
}

typedef struct {
  double put, get;
} result;

static int bench_target(const char *auth_url, bool put_account, result out[2][2],
                        size_t mib) {
  swift_config cfg;
  swift_config_defaults(&cfg);
  cfg.auth_url = auth_url;
  cfg.auth_user = "test:tester";
  cfg.auth_key = "testing";
  cfg.retry_limit = 2;
  cfg.connection_pool_size = 8;
  swift_conn *c;
  int rc = swift_conn_create(&cfg, &c);
  if (rc) return rc;
  if (put_account) swift_account_put(c, NULL, 0);
  char container[64];
  snprintf(container, sizeof container, "pfs-bench-%d-%ld", (int)getpid(), (long)time(NULL));
  if ((rc = swift_container_put(c, container, NULL, 0))) {
    swift_conn_destroy(c);
    return rc;
  }
  size_t sizes[2] = {1u << 20, 16u << 10};
  unsigned char *data = malloc(sizes[0]);
  for (size_t i = 0; i < sizes[0]; i++) data[i] = (unsigned char)(i * 31 + 7);
  for (int si = 0; si < 2; si++) {
    size_t total = si == 0 ? mib << 20 : (mib << 20) / 16;
    int objects = (int)(total / sizes[si]);
    objects -= objects % 8;
    for (int pi = 0; pi < 2; pi++) {
      int streams = pi ? 8 : 1;
      out[si][pi].put = phase(c, container, sizes[si], objects, streams, false, data);
      out[si][pi].get = phase(c, container, sizes[si], objects, streams, true, data);
    }
    for (int i = 0; i < objects; i++) {
      char name[32];
      snprintf(name, sizeof name, "b%06d", i);
      swift_object_delete(c, container, name);
    }
  }
  swift_container_delete(c, container);
  free(data);
  swift_conn_destroy(c);
  return 0;
}

int main(int argc, char **argv) {
  const char *real = argc > 1 ? argv[1] : "http://127.0.0.1:8080/auth/v1.0";
  const char *env = getenv("BENCH_MIB");
  size_t mib = env ? (size_t)strtoul(env, NULL, 10) : 64;
  if (mib < 8) mib = 8;
  iswift_config icfg;
  iswift_config_defaults(&icfg);
  icfg.port = 0;
  icfg.max_memory = 4ull << 30;
  iswift *srv;
  if (iswift_start(&icfg, &srv)) {
    fprintf(stderr, "bench: cannot start iswift\n");
    return 1;
  }
  char auth[128];
  snprintf(auth, sizeof auth, "http://127.0.0.1:%u/auth/v1.0", (unsigned)iswift_port(srv));
  result ri[2][2] = {{{0}}}, rr[2][2] = {{{0}}};
  int rc = bench_target(auth, true, ri, mib);
  iswift_stop(srv);
  if (rc) {
    fprintf(stderr, "bench: iswift run failed: %s\n", strerror(-rc));
    return 1;
  }
  bool have_real = strcmp(real, "-") != 0 && bench_target(real, false, rr, mib) == 0;
  printf("swiftclient throughput, MiB/s (%zu MiB per 1 MiB case, %zu MiB per 16 KiB case)\n",
         mib, mib / 16);
  printf("%-8s %-8s | %10s %10s | %10s %10s\n", "object", "streams", "iswift PUT", "GET",
         "real PUT", "GET");
  const char *names[2] = {"1 MiB", "16 KiB"};
  for (int si = 0; si < 2; si++)
    for (int pi = 0; pi < 2; pi++) {
      if (have_real)
        printf("%-8s %-8d | %10.1f %10.1f | %10.1f %10.1f\n", names[si], pi ? 8 : 1,
               ri[si][pi].put, ri[si][pi].get, rr[si][pi].put, rr[si][pi].get);
      else
        printf("%-8s %-8d | %10.1f %10.1f | %10s %10s\n", names[si], pi ? 8 : 1,
               ri[si][pi].put, ri[si][pi].get, "n/a", "n/a");
    }
  if (!have_real) printf("real Swift not reachable at %s\n", real);
  return 0;
}
