/* rpc_probe: a retryrpc client driving a real imgr process
 * (tests/system/test_imgr_rpc.py).
 *
 * Usage: rpc_probe HOST PORT VOLUME TOKEN
 * Phase 1: wrong-token Mount, Mount, FetchNonceRange, leases with an
 * interrupt between two clients, PutInodeTableEntries, Flush; prints
 * "PHASE1 DONE" and waits for a line on stdin (the script restarts imgr).
 * Phase 2, same clients: the old mount is gone, a new Mount works, nonces
 * are never reused and the entry put before the restart is there.
 * Prints "PROBE OK" and exits 0, or a message and exits 1. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "retryrpc.h"

static const char *vol, *tok;

typedef struct {
  rrpc_client *c;
  char id[64];
  pthread_mutex_t mu;
  pthread_cond_t cond;
  int ups;
  long last_type, last_inode;
} cli;

#define CHECK(cond, ...)                           \
  do {                                             \
    if (!(cond)) {                                 \
      fprintf(stderr, "FAIL line %d: ", __LINE__); \
      fprintf(stderr, __VA_ARGS__);                \
      fprintf(stderr, "\n");                       \
      exit(1);                                     \
    }                                              \
  } while (0)

static void upcall(void *ctx, const void *p, size_t len) {
  cli *c = ctx;
  json_t *j = json_loadb(p, len, 0, NULL);
  pthread_mutex_lock(&c->mu);
  c->last_type = (long)json_integer_value(json_object_get(j, "RPCInterruptType"));
  c->last_inode = (long)json_integer_value(json_object_get(j, "InodeNumber"));
  c->ups++;
  pthread_cond_broadcast(&c->cond);
  pthread_mutex_unlock(&c->mu);
  json_decref(j);
}

static int call(cli *c, const char *m, json_t *req, json_t **rep, char **err) {
  if (err) *err = NULL;
  int rc = rrpc_client_send(c->c, m, req, rep, err, 20ULL * 1000000000ULL);
  json_decref(req);
  return rc;
}

static void mount(cli *c, const char *token) {
  json_t *rep = NULL;
  char *err;
  int rc = call(c, "Mount", json_pack("{s:s,s:s}", "VolumeName", vol, "AuthToken", token), &rep,
                &err);
  CHECK(!rc, "Mount: %d %s", rc, err ? err : "");
  snprintf(c->id, sizeof c->id, "%s", json_string_value(json_object_get(rep, "MountID")));
  json_decref(rep);
}

static long lease(cli *c, long ino, int type) {
  json_t *rep = NULL;
  char *err;
  int rc = call(c, "Lease",
                json_pack("{s:s,s:I,s:i}", "MountID", c->id, "InodeNumber", (json_int_t)ino,
                          "LeaseRequestType", type),
                &rep, &err);
  CHECK(!rc, "Lease: %d %s", rc, err ? err : "");
  long r = (long)json_integer_value(json_object_get(rep, "LeaseResponseType"));
  json_decref(rep);
  return r;
}

static void nonces(cli *c, long *next, long *n) {
  json_t *rep = NULL;
  char *err;
  int rc = call(c, "FetchNonceRange", json_pack("{s:s}", "MountID", c->id), &rep, &err);
  CHECK(!rc, "FetchNonceRange: %d %s", rc, err ? err : "");
  *next = (long)json_integer_value(json_object_get(rep, "NextNonce"));
  *n = (long)json_integer_value(json_object_get(rep, "NumNoncesFetched"));
  json_decref(rep);
}

static void ok(cli *c, const char *m, json_t *req) {
  char *err;
  int rc = call(c, m, req, NULL, &err);
  CHECK(!rc, "%s: %d %s", m, rc, err ? err : "");
}

static void open_cli(cli *c, const char *host, uint16_t port) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cond, NULL);
  rrpc_client_config cc = {0};
  cc.host = host;
  cc.port = port;
  cc.upcall = upcall;
  cc.upcall_ctx = c;
  cc.retry_limit = 10;
  cc.retry_delay_ns = 100000000;
  CHECK(rrpc_client_create(&cc, &c->c) == 0, "client create");
}

typedef struct {
  cli *c;
  long ino, result;
} req_t;

static void *excl(void *arg) {
  req_t *r = arg;
  r->result = lease(r->c, r->ino, 2);
  return NULL;
}

int main(int argc, char **argv) {
  CHECK(argc == 5, "usage: rpc_probe HOST PORT VOLUME TOKEN");
  vol = argv[3];
  tok = argv[4];
  cli a, b;
  open_cli(&a, argv[1], (uint16_t)atoi(argv[2]));
  open_cli(&b, argv[1], (uint16_t)atoi(argv[2]));

  char *err = NULL;
  int rc = call(&a, "Mount", json_pack("{s:s,s:s}", "VolumeName", vol, "AuthToken", "bad"), NULL,
                &err);
  CHECK(rc && err && strncmp(err, "EAuthTokenRejected: ", 20) == 0, "bad token: %d %s", rc,
        err ? err : "");
  free(err);
  mount(&a, tok);
  mount(&b, tok);
  long next, n;
  nonces(&a, &next, &n);
  CHECK(n > 0, "no nonces");
  long ino = next, obj = next + 1;

  /* a holds ino shared; b's Exclusive interrupts a (Release), a releases */
  CHECK(lease(&a, ino, 0) == 1, "shared");
  req_t r = {&b, ino, -1};
  pthread_t t;
  pthread_create(&t, NULL, excl, &r);
  pthread_mutex_lock(&a.mu);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 10;
  while (a.ups == 0 && pthread_cond_timedwait(&a.cond, &a.mu, &ts) == 0) {
  }
  int ups = a.ups;
  long ut = a.last_type, ui = a.last_inode;
  pthread_mutex_unlock(&a.mu);
  CHECK(ups >= 1 && ut == 2 && ui == ino, "upcall: %d %ld %ld", ups, ut, ui);
  CHECK(lease(&a, ino, 4) == 5, "release");
  pthread_join(t, NULL);
  CHECK(r.result == 3, "exclusive after release: %ld", r.result);
  CHECK(b.ups == 0, "upcall to the wrong client");
  ok(&b, "PutInodeTableEntries",
     json_pack("{s:s,s:[{s:I,s:I,s:I}],s:I,s:I,s:I,s:n}", "MountID", b.id,
               "UpdatedInodeTableEntryArray", "InodeNumber", (json_int_t)ino,
               "InodeHeadObjectNumber", (json_int_t)obj, "InodeHeadLength", (json_int_t)77,
               "SuperBlockInodeObjectCountAdjustment", (json_int_t)1,
               "SuperBlockInodeBytesWrittenAdjustment", (json_int_t)77,
               "SuperBlockInodeBytesReferencedAdjustment", (json_int_t)77,
               "DereferencedObjectNumberArray"));
  ok(&b, "Flush", json_pack("{s:s}", "MountID", b.id));
  printf("PHASE1 DONE\n");
  fflush(stdout);

  char line[64];
  CHECK(fgets(line, sizeof line, stdin), "no restart line");

  /* the same client reconnects to the new process: its mount is gone */
  rc = call(&b, "VolumeStatus", json_pack("{s:s}", "MountID", b.id), NULL, &err);
  CHECK(rc != 0, "old mount still works after restart");
  free(err);
  char old[64];
  snprintf(old, sizeof old, "%s", b.id);
  mount(&b, tok);
  CHECK(strcmp(old, b.id) != 0, "same MountID");
  long next2, n2;
  nonces(&b, &next2, &n2);
  CHECK(next2 >= next + n, "nonce reused: %ld < %ld", next2, next + n);
  CHECK(lease(&b, ino, 0) == 1, "shared after restart");
  json_t *rep = NULL;
  rc = call(&b, "GetInodeTableEntry",
            json_pack("{s:s,s:I}", "MountID", b.id, "InodeNumber", (json_int_t)ino), &rep, &err);
  CHECK(!rc, "get after restart: %d %s", rc, err ? err : "");
  CHECK(json_integer_value(json_object_get(rep, "InodeHeadObjectNumber")) == obj &&
            json_integer_value(json_object_get(rep, "InodeHeadLength")) == 77,
        "entry lost");
  json_decref(rep);
  ok(&b, "Unmount", json_pack("{s:s}", "MountID", b.id));
  rrpc_client_destroy(a.c);
  rrpc_client_destroy(b.c);
  printf("PROBE OK\n");
  return 0;
}
