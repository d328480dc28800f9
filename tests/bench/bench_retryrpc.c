/*
 * bench_retryrpc: round trips per second of a small RPC ({"Message":"ping"}
 * -> {"Message":"pong 4 bytes"}) over one client connection, with 1 and 16
 * calling threads, over plain TCP and TLS (icert Ed25519 certificates), on
 * 127.0.0.1 with an ephemeral port. Prints throughput and latency
 * percentiles; asserts nothing about speed.
 *
 *   bench_retryrpc [seconds per case, default 2]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "icert.h"
#include "retryrpc.h"
#include "rrpc_internal.h"

#define MAX_THREADS 16
#define MAX_SAMPLES (1 << 21)

static int ping(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **err) {
  const char *m = json_string_value(json_object_get(req, "Message"));
  *reply = json_pack("{s:o}", "Message", json_sprintf("pong %zu bytes", m ? strlen(m) : 0));
  return 0;
}

typedef struct {
  rrpc_client *c;
  uint64_t until;
  uint32_t *lat_us; /* this thread's samples */
  size_t n, cap;
  int errors;
} worker;

static void *run(void *arg) {
  worker *w = arg;
  json_t *req = json_pack("{s:s}", "Message", "ping");
  while (rrpc_now_ns() < w->until) {
    uint64_t t0 = rrpc_now_ns();
    json_t *rep = NULL;
    if (rrpc_client_send(w->c, "RpcTestPing", req, &rep, NULL, 10000000000ull) != 0)
      w->errors++;
    json_decref(rep);
    if (w->n < w->cap)
      w->lat_us[w->n++] = (uint32_t)((rrpc_now_ns() - t0) / 1000);
  }
  json_decref(req);
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void bench(const char *mode, const rrpc_client_config *cc, int nthreads,
                  double seconds) {
  rrpc_client *c;
  if (rrpc_client_create(cc, &c) != 0) {
    fprintf(stderr, "client create failed\n");
    exit(1);
  }
  /* connect and warm up outside the measurement */
  json_t *req = json_pack("{s:s}", "Message", "ping");
  for (int i = 0; i < 100; i++)
    rrpc_client_send(c, "RpcTestPing", req, NULL, NULL, 0);
  json_decref(req);
  worker w[MAX_THREADS];
  pthread_t t[MAX_THREADS];
  uint64_t t0 = rrpc_now_ns();
  for (int i = 0; i < nthreads; i++) {
    w[i] = (worker){.c = c, .until = t0 + (uint64_t)(seconds * 1e9),
                    .cap = MAX_SAMPLES / MAX_THREADS};
    w[i].lat_us = malloc(w[i].cap * sizeof *w[i].lat_us);
    pthread_create(&t[i], NULL, run, &w[i]);
  }
  size_t total = 0;
  int errors = 0;
  for (int i = 0; i < nthreads; i++) {
    pthread_join(t[i], NULL);
    total += w[i].n;
    errors += w[i].errors;
  }
  double dt = (double)(rrpc_now_ns() - t0) / 1e9;
  uint32_t *all = malloc((total ? total : 1) * sizeof *all);
  size_t k = 0;
  for (int i = 0; i < nthreads; i++) {
    memcpy(all + k, w[i].lat_us, w[i].n * sizeof *all);
    k += w[i].n;
    free(w[i].lat_us);
  }
  qsort(all, total, sizeof *all, cmp_u32);
  printf("%-4s threads=%-2d calls=%-8zu rtt/s=%-9.0f p50=%uus p99=%uus max=%uus errors=%d\n",
         mode, nthreads, total, (double)total / dt, total ? all[total / 2] : 0,
         total ? all[total * 99 / 100] : 0, total ? all[total - 1] : 0, errors);
  free(all);
  rrpc_client_destroy(c);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 2.0;
  char dir[] = "/tmp/bench-rrpc-XXXXXX";
  if (!mkdtemp(dir))
    return 1;
  char cert[64], key[64], err[256];
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  icert_options o = {.alg = ICERT_ED25519, .ttl_s = 3600};
  const char *ips[] = {"127.0.0.1"};
  icert_pem ca;
  if (icert_gen_ca(&o, NULL, NULL, &ca, err, sizeof err) != 0)
    return 1;
  o.ips = ips;
  o.nips = 1;
  if (icert_gen_endpoint(&o, &ca, cert, key, NULL, err, sizeof err) != 0)
    return 1;
  static const rrpc_method methods[] = {{"RpcTestPing", ping, NULL}};
  for (int tls = 0; tls <= 1; tls++) {
    rrpc_server_config sc = {.addr = "127.0.0.1", .workers = 8};
    if (tls) {
      sc.tls_cert_file = cert;
      sc.tls_key_file = key;
    }
    rrpc_server *s;
    if (rrpc_server_create(&sc, methods, 1, &s) != 0 || rrpc_server_start(s) != 0)
      return 1;
    rrpc_client_config cc = {.host = "127.0.0.1", .port = rrpc_server_port(s)};
    if (tls) {
      cc.ca_pem = ca.cert;
      cc.ca_pem_len = ca.cert_len;
    }
    bench(tls ? "TLS" : "TCP", &cc, 1, seconds);
    bench(tls ? "TLS" : "TCP", &cc, 16, seconds);
    rrpc_server_destroy(s);
  }
  icert_pem_free(&ca);
  unlink(cert);
  unlink(key);
  rmdir(dir);
  return 0;
}
