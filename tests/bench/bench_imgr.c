/* bench_imgr: PutInodeTableEntries and Lease round trips per second through
 * the imgr RPC layer over retryrpc on 127.0.0.1, with 1 and 8 clients, each
 * its own connection and mount (iswift and imgr in-process).
 * Usage: bench_imgr [seconds per run, default 2]. Prints figures only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "rpc_harness.h"
#include "utils.h"

typedef struct {
  hx *h;
  hx_client cl;
  uint64_t deadline_ns;
  bool lease; /* else puts */
  uint64_t ops;
  int err;
  pthread_barrier_t *bar;
} worker;

static void *run(void *arg) {
  worker *w = arg;
  json_t *rep = NULL;
  uint64_t ino = 0, obj = 0;
  int rc = hx_mount(w->h, &w->cl, NULL, NULL);
  if (!rc) rc = hx_call(&w->cl, "FetchNonceRange",
                        json_pack("{s:s}", "MountID", w->cl.mount_id), &rep, NULL);
  if (!rc) {
    ino = (uint64_t)json_integer_value(json_object_get(rep, "NextNonce"));
    obj = ino + 1;
  }
  json_decref(rep);
  if (!rc && !w->lease && hx_lease(&w->cl, ino, 2, NULL) != 3) rc = -EIO;
  pthread_barrier_wait(w->bar);
  uint64_t end = ut_now_ns() + w->deadline_ns;
  while (!rc && ut_now_ns() < end) {
    if (w->lease) {
      /* Exclusive then Release: two round trips */
      if (hx_lease(&w->cl, ino, 2, NULL) != 3 || hx_lease(&w->cl, ino, 4, NULL) != 5) rc = -EIO;
      else w->ops += 2;
    } else {
      rc = hx_call(&w->cl, "PutInodeTableEntries",
                   json_pack("{s:s,s:[{s:I,s:I,s:I}]}", "MountID", w->cl.mount_id,
                             "UpdatedInodeTableEntryArray", "InodeNumber", (json_int_t)ino,
                             "InodeHeadObjectNumber", (json_int_t)obj, "InodeHeadLength",
                             (json_int_t)100),
                   NULL, NULL);
      if (!rc) w->ops++;
    }
  }
  w->err = rc;
  hx_call(&w->cl, "Unmount", json_pack("{s:s}", "MountID", w->cl.mount_id), NULL, NULL);
  return NULL;
}

static int bench(hx *h, unsigned n, bool lease, double secs) {
  worker *w = calloc(n, sizeof *w);
  pthread_t *t = calloc(n, sizeof *t);
  pthread_barrier_t bar;
  if (!w || !t) return -ENOMEM;
  pthread_barrier_init(&bar, NULL, n + 1);
  for (unsigned i = 0; i < n; i++) {
    w[i] = (worker){h, {0}, (uint64_t)(secs * 1e9), lease, 0, 0, &bar};
    if (hx_client_open(h, &w[i].cl)) return -EIO;
    pthread_create(&t[i], NULL, run, &w[i]);
  }
  pthread_barrier_wait(&bar);
  uint64_t t0 = ut_now_ns();
  uint64_t ops = 0;
  int err = 0;
  for (unsigned i = 0; i < n; i++) {
    pthread_join(t[i], NULL);
    ops += w[i].ops;
    if (w[i].err) err = w[i].err;
    hx_client_close(&w[i].cl);
  }
  double el = (double)(ut_now_ns() - t0) / 1e9;
  printf("%-22s clients=%u  %9.0f round trips/s  (%llu in %.2f s)%s\n",
         lease ? "Lease (Exclusive+Release)" : "PutInodeTableEntries", n, (double)ops / el,
         (unsigned long long)ops, el, err ? "  [a client failed]" : "");
  pthread_barrier_destroy(&bar);
  free(w);
  free(t);
  return err;
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 2.0;
  if (secs <= 0) secs = 2.0;
  log_configure(NULL, false, false);
  hx h;
  int rc = hx_start(&h, NULL, NULL, 0);
  if (rc) {
    fprintf(stderr, "harness start failed: %s\n", strerror(-rc));
    return 1;
  }
  printf("imgr RPC over retryrpc (plain TCP, 127.0.0.1), in-process iswift; %.1f s per run\n",
         secs);
  unsigned counts[] = {1, 8};
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; i < 2; i++)
      if (bench(&h, counts[i], l == 1, secs)) rc = 1;
  hx_stop(&h);
  return rc ? 1 : 0;
}
