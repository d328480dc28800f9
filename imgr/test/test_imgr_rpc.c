/* imgr RPC layer over real retryrpc on 127.0.0.1, with iswift and the imgr
 * core in-process (imgr.md section 3, 5.3, 5.4, 5.5). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "icert.h"
#include "lease.h"
#include "rpc_harness.h"
#include "utils.h"

enum { S = 0, P = 1, E = 2, D = 3, R = 4 };                       /* request types */
enum { DENIED = 0, SHARED = 1, PROMOTED = 2, EXCL = 3, DEMOTED = 4, RELEASED = 5 };
enum { INT_DEMOTE = 1, INT_RELEASE = 2 };

#define ROOT 1

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Calls and checks that the error text starts with prefix. */
static void expect_err(hx_client *cl, const char *method, json_t *req, const char *prefix) {
  char *err = NULL;
  int rc = hx_call(cl, method, req, NULL, &err);
  assert_int_not_equal(rc, 0);
  if (!err || strncmp(err, prefix, strlen(prefix)) != 0)
    fail_msg("%s: expected \"%s...\", got \"%s\" (rc %d)", method, prefix, err ? err : "(none)",
             rc);
  free(err);
}

static void expect_ok(hx_client *cl, const char *method, json_t *req, json_t **reply) {
  char *err = NULL;
  int rc = hx_call(cl, method, req, reply, &err);
  if (rc) fail_msg("%s failed: %d %s", method, rc, err ? err : "");
  free(err);
}

static json_t *mid(hx_client *cl) { return json_pack("{s:s}", "MountID", cl->mount_id); }
static json_t *mid_ino(hx_client *cl, uint64_t ino) {
  return json_pack("{s:s,s:I}", "MountID", cl->mount_id, "InodeNumber", (json_int_t)ino);
}

static json_t *adj_req(const char *id, uint64_t ino, int64_t adj) {
  return json_pack("{s:s,s:I,s:I}", "MountID", id, "InodeNumber", (json_int_t)ino, "Adjustment",
                   (json_int_t)adj);
}

static void adjust_ok(hx_client *cl, uint64_t ino, int64_t adj) {
  expect_ok(cl, "AdjustInodeTableEntryOpenCount", adj_req(cl->mount_id, ino, adj), NULL);
}

static void lease_is(hx_client *cl, uint64_t ino, uint32_t type, int want) {
  char *err = NULL;
  int got = hx_lease(cl, ino, type, &err);
  if (got != want) fail_msg("Lease(%llu, %u): want %d got %d %s", (unsigned long long)ino, type,
                            want, got, err ? err : "");
  free(err);
}

static void fetch_nonces(hx_client *cl, uint64_t *next, uint64_t *n) {
  json_t *rep = NULL;
  expect_ok(cl, "FetchNonceRange", mid(cl), &rep);
  *next = (uint64_t)json_integer_value(json_object_get(rep, "NextNonce"));
  *n = (uint64_t)json_integer_value(json_object_get(rep, "NumNoncesFetched"));
  json_decref(rep);
}

static uint64_t num_inodes(hx_client *cl) {
  json_t *rep = NULL;
  expect_ok(cl, "VolumeStatus", mid(cl), &rep);
  uint64_t n = (uint64_t)json_integer_value(json_object_get(rep, "NumInodes"));
  json_decref(rep);
  return n;
}

static json_t *put_req(hx_client *cl, uint64_t ino, uint64_t obj, uint64_t len, int64_t objs,
                       int64_t bytes, json_t *deref) {
  return json_pack("{s:s,s:[{s:I,s:I,s:I}],s:I,s:I,s:I,s:o}", "MountID", cl->mount_id,
                   "UpdatedInodeTableEntryArray", "InodeNumber", (json_int_t)ino,
                   "InodeHeadObjectNumber", (json_int_t)obj, "InodeHeadLength", (json_int_t)len,
                   "SuperBlockInodeObjectCountAdjustment", (json_int_t)objs,
                   "SuperBlockInodeBytesWrittenAdjustment", (json_int_t)bytes,
                   "SuperBlockInodeBytesReferencedAdjustment", (json_int_t)bytes,
                   "DereferencedObjectNumberArray", deref ? deref : json_null());
}

/* ---- a lease request on its own thread (it may wait) ---------------------- */

typedef struct {
  hx_client *cl;
  uint64_t ino;
  uint32_t type;
  int result;
  uint64_t done_ns;
  pthread_t t;
} async_lease;

static void *async_fn(void *arg) {
  async_lease *a = arg;
  a->result = hx_lease(a->cl, a->ino, a->type, NULL);
  return NULL;
}

static void async_start(async_lease *a, hx_client *cl, uint64_t ino, uint32_t type) {
  *a = (async_lease){cl, ino, type, -1, 0, 0};
  assert_int_equal(pthread_create(&a->t, NULL, async_fn, a), 0);
}

static int async_join(async_lease *a) {
  pthread_join(a->t, NULL);
  return a->result;
}

static void upcall_is(hx_client *cl, size_t idx, uint32_t type, uint64_t ino) {
  uint32_t t;
  uint64_t i;
  if (!hx_wait_upcall(cl, idx, &t, &i, 5000)) fail_msg("no upcall #%zu", idx);
  assert_int_equal(t, type);
  assert_int_equal(i, ino);
}

/* ---- cleanup after a failed assertion (cmocka jumps out of the test) ---- */

static hx *g_h;
static hx_client *g_c[8];
static size_t g_nc;

static hx *track(hx *h) {
  g_h = h;
  return h;
}
static hx_client *track_c(hx_client *c) {
  g_c[g_nc++] = c;
  return c;
}
static int cleanup(void **state) {
  (void)state;
  for (size_t i = 0; i < g_nc; i++) hx_client_close(g_c[i]);
  g_nc = 0;
  if (g_h) hx_stop(g_h);
  g_h = NULL;
  return 0;
}

/* Harness, one client, mounted. */
static void up1(hx *h, hx_client *c, const char *const *ov, const imgr_rpc_options *o) {
  assert_int_equal(hx_start(track(h), ov, o, 0), 0);
  assert_int_equal(hx_client_open(h, track_c(c)), 0);
  assert_int_equal(hx_mount(h, c, NULL, NULL), 0);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_mount_errors_and_basics(void **state) {
  (void)state;
  static hx h;
  assert_int_equal(hx_start(track(&h), NULL, NULL, 0), 0);
  static hx_client c;
  assert_int_equal(hx_client_open(&h, track_c(&c)), 0);
  char *err = NULL;

  /* upstream 5.3 step 2: an empty MountID */
  expect_err(&c, "FetchNonceRange", json_pack("{s:s}", "MountID", ""), "EUnknownMountID: ");
  /* unknown volume, wrong token */
  expect_err(&c, "Mount", json_pack("{s:s,s:s}", "VolumeName", "nope", "AuthToken", h.token),
             "EUnknownVolumeName: nope");
  assert_int_not_equal(hx_mount(&h, &c, "AUTH_tkwrong", &err), 0);
  assert_non_null(err);
  assert_int_equal(strncmp(err, "EAuthTokenRejected: ", 20), 0);
  assert_null(strstr(err, "AUTH_tkwrong")); /* the token is never echoed */
  free(err);
  assert_int_equal(imgr_rpc_mount_count(h.rpc), 0);

  assert_int_equal(hx_mount(&h, &c, NULL, NULL), 0);
  assert_int_equal(strlen(c.mount_id), 20);
  assert_int_equal(imgr_rpc_mount_count(h.rpc), 1);

  /* nonce ranges never overlap */
  uint64_t n1, c1, n2, c2;
  fetch_nonces(&c, &n1, &c1);
  fetch_nonces(&c, &n2, &c2);
  assert_int_equal(c1, 100);
  assert_int_equal(c2, 100);
  assert_true(n2 >= n1 + c1);

  /* leases gate the inode table */
  expect_err(&c, "GetInodeTableEntry", mid_ino(&c, ROOT), "EMissingLease: 0000000000000001");
  lease_is(&c, ROOT, S, SHARED);
  json_t *rep = NULL;
  expect_ok(&c, "GetInodeTableEntry", mid_ino(&c, ROOT), &rep);
  uint64_t robj = (uint64_t)json_integer_value(json_object_get(rep, "InodeHeadObjectNumber"));
  uint64_t rlen = (uint64_t)json_integer_value(json_object_get(rep, "InodeHeadLength"));
  json_decref(rep);
  assert_true(robj > 0 && rlen > 0);
  expect_err(&c, "PutInodeTableEntries", put_req(&c, ROOT, robj, rlen, 0, 0, NULL),
             "EMissingLease: 0000000000000001");
  lease_is(&c, ROOT, P, PROMOTED);
  expect_ok(&c, "PutInodeTableEntries", put_req(&c, ROOT, robj, rlen, 0, 0, NULL), NULL);
  /* an object number never reserved is refused, nothing changes */
  expect_err(&c, "PutInodeTableEntries", put_req(&c, ROOT, n2 + 1000000, rlen, 0, 0, NULL),
             "EInvalidRequest: ");
  assert_int_equal(num_inodes(&c), 1);

  /* Lease errors */
  expect_err(&c, "Lease",
             json_pack("{s:s,s:I,s:i}", "MountID", c.mount_id, "InodeNumber", (json_int_t)5,
                       "LeaseRequestType", 7),
             "ELeaseRequestDenied: LeaseRequestType 7 not supported");
  expect_err(&c, "Lease",
             json_pack("{s:s,s:I,s:i}", "MountID", c.mount_id, "InodeNumber", (json_int_t)n1,
                       "LeaseRequestType", R),
             "ELeaseRequestDenied: LeaseRequestType 4 not allowed for non-existent Lease");
  /* member names are case-insensitive; unknown members are ignored */
  expect_ok(&c, "VolumeStatus", json_pack("{s:s,s:i}", "mountid", c.mount_id, "Extra", 1), NULL);

  /* open counts */
  const char *adj = "AdjustInodeTableEntryOpenCount";
  /* a zero adjustment is refused before the MountID is even looked at */
  expect_err(&c, adj, adj_req("whatever", ROOT, 0), "EBadOpenCountAdjustment: 0000000000000001 0");
  expect_err(&c, adj, adj_req(c.mount_id, ROOT, -1),
             "EBadOpenCountAdjustment: 0000000000000001 -1");
  adjust_ok(&c, ROOT, 2);
  expect_err(&c, adj, adj_req(c.mount_id, ROOT, -3),
             "EBadOpenCountAdjustment: 0000000000000001 -3");
  expect_err(&c, adj, adj_req(c.mount_id, ROOT, INT64_MIN),
             "EBadOpenCountAdjustment: 0000000000000001 -9223372036854775808");
  adjust_ok(&c, ROOT, -2);

  expect_ok(&c, "Flush", mid(&c), NULL);
  /* Unmount while holding the exclusive lease on the root (5.3 step 16) */
  expect_ok(&c, "Unmount", mid(&c), NULL);
  assert_int_equal(imgr_rpc_mount_count(h.rpc), 0);
  expect_err(&c, "FetchNonceRange", mid(&c), "EUnknownMountID: ");
  expect_err(&c, "Unmount", mid(&c), "EUnknownMountID: ");

  /* the lease went with the mount: a new mount gets it at once */
  assert_int_equal(hx_mount(&h, &c, NULL, NULL), 0);
  lease_is(&c, ROOT, E, EXCL);
  expect_ok(&c, "Unmount", mid(&c), NULL);
}

static void test_inode_lifecycle(void **state) {
  (void)state;
  static hx h;
  static hx_client c;
  up1(&h, &c, NULL, NULL);
  uint64_t next, cnt;
  fetch_nonces(&c, &next, &cnt);
  uint64_t n = next, a = next + 1, m = next + 2, b = next + 3;
  uint64_t alen, blen;
  assert_int_equal(hx_put_inode_object(&h, n, a, &alen), 0);
  assert_int_equal(hx_put_inode_object(&h, m, b, &blen), 0);

  lease_is(&c, n, E, EXCL);
  lease_is(&c, m, E, EXCL);
  expect_ok(&c, "PutInodeTableEntries", put_req(&c, n, a, alen, 1, (int64_t)alen, NULL), NULL);
  expect_ok(&c, "PutInodeTableEntries", put_req(&c, m, b, blen, 1, (int64_t)blen, NULL), NULL);
  assert_int_equal(num_inodes(&c), 3);
  json_t *rep = NULL;
  expect_ok(&c, "GetInodeTableEntry", mid_ino(&c, n), &rep);
  assert_int_equal(json_integer_value(json_object_get(rep, "InodeHeadObjectNumber")), a);
  assert_int_equal(json_integer_value(json_object_get(rep, "InodeHeadLength")), alen);
  json_decref(rep);
  expect_ok(&c, "Flush", mid(&c), NULL);

  /* unlink while open (5.3 steps 13-14): removed at the last close */
  adjust_ok(&c, n, 1);
  expect_ok(&c, "DeleteInodeTableEntry", mid_ino(&c, n), NULL);
  expect_ok(&c, "Flush", mid(&c), NULL);
  assert_int_equal(num_inodes(&c), 3);
  expect_ok(&c, "GetInodeTableEntry", mid_ino(&c, n), NULL);
  size_t ups = hx_upcalls(&c);
  adjust_ok(&c, n, -1);
  assert_int_equal(num_inodes(&c), 2);
  /* the removed inode's lease is revoked: its holder is asked to release */
  upcall_is(&c, ups, INT_RELEASE, n);
  lease_is(&c, n, R, RELEASED);

  /* not open: removed at once */
  expect_ok(&c, "DeleteInodeTableEntry", mid_ino(&c, m), NULL);
  assert_int_equal(num_inodes(&c), 1);
  upcall_is(&c, ups + 1, INT_RELEASE, m);
  lease_is(&c, m, R, RELEASED);
  /* unknown inode: an error, not an exit */
  lease_is(&c, next + 50, E, EXCL);
  expect_err(&c, "DeleteInodeTableEntry", mid_ino(&c, next + 50), "EUnknownInodeNumber: ");
  expect_err(&c, "GetInodeTableEntry", mid_ino(&c, next + 50), "EUnknownInodeNumber: ");

  /* after a checkpoint the removed inodes' objects are deleted */
  expect_ok(&c, "Flush", mid(&c), NULL);
  expect_ok(&c, "Flush", mid(&c), NULL);
  imgr_volume *vol;
  assert_int_equal(imgr_volume_get_ref(h.srv, "testVolume", &vol), 0);
  imgr_volume_wait_deletes(vol);
  imgr_volume_put_ref(vol);
  assert_int_equal(hx_object_head(&h, a), -ENOENT);
  assert_int_equal(hx_object_head(&h, b), -ENOENT);

  /* open on an unmount: the mount's opens close with it */
  uint64_t k = next + 4, kobj = next + 5, klen;
  assert_int_equal(hx_put_inode_object(&h, k, kobj, &klen), 0);
  lease_is(&c, k, E, EXCL);
  expect_ok(&c, "PutInodeTableEntries", put_req(&c, k, kobj, klen, 1, (int64_t)klen, NULL), NULL);
  adjust_ok(&c, k, 3);
  expect_ok(&c, "DeleteInodeTableEntry", mid_ino(&c, k), NULL);
  assert_int_equal(num_inodes(&c), 2);
  expect_ok(&c, "Unmount", mid(&c), NULL);
  assert_int_equal(hx_mount(&h, &c, NULL, NULL), 0);
  assert_int_equal(num_inodes(&c), 1);
  expect_ok(&c, "Unmount", mid(&c), NULL);
}

static void test_open_file_limit(void **state) {
  (void)state;
  static const char *const ov[] = {"IMGR.OpenFileLimit=2", NULL};
  static hx h;
  static hx_client c;
  up1(&h, &c, ov, NULL);
  for (uint64_t i = 10; i < 13; i++) {
    lease_is(&c, i, S, SHARED);
    json_t *req = adj_req(c.mount_id, i, 1);
    if (i < 12) expect_ok(&c, "AdjustInodeTableEntryOpenCount", req, NULL);
    else expect_err(&c, "AdjustInodeTableEntryOpenCount", req, "ETooManyOpens");
  }
  /* a second open of an already open inode needs no new entry */
  adjust_ok(&c, 10, 1);
  adjust_ok(&c, 11, -1);
  adjust_ok(&c, 12, 1);
  expect_ok(&c, "Unmount", mid(&c), NULL);
}

static void test_mount_limit(void **state) {
  (void)state;
  static const char *const ov[] = {"IMGR.MountLimit=2", NULL};
  static hx h;
  assert_int_equal(hx_start(track(&h), ov, NULL, 0), 0);
  static hx_client c[3];
  for (int i = 0; i < 3; i++) assert_int_equal(hx_client_open(&h, track_c(&c[i])), 0);
  assert_int_equal(hx_mount(&h, &c[0], NULL, NULL), 0);
  assert_int_equal(hx_mount(&h, &c[1], NULL, NULL), 0);
  expect_err(&c[2], "Mount",
             json_pack("{s:s,s:s}", "VolumeName", "testVolume", "AuthToken", h.token),
             "ETooManyMounts");
  /* Unmount frees the slot (imgr.md 6.1) */
  expect_ok(&c[0], "Unmount", mid(&c[0]), NULL);
  assert_int_equal(hx_mount(&h, &c[2], NULL, NULL), 0);
  expect_ok(&c[1], "Unmount", mid(&c[1]), NULL);
  expect_ok(&c[2], "Unmount", mid(&c[2]), NULL);
}

static void test_auth_recheck_and_renew(void **state) {
  (void)state;
  static const char *const ov[] = {"IMGR.AuthTokenCheckInterval=1ms", NULL};
  static hx h;
  static hx_client c;
  up1(&h, &c, ov, NULL);
  num_inodes(&c);
  iswift_force_reauth(h.sw);
  sleep_ms(5);
  expect_err(&c, "VolumeStatus", mid(&c), "EAuthTokenRejected: ");
  /* RenewMount with a bad token: rejected, and the mount stays rejected */
  expect_err(&c, "RenewMount", json_pack("{s:s,s:s}", "MountID", c.mount_id, "AuthToken", "x"),
             "EAuthTokenRejected: ");
  expect_err(&c, "VolumeStatus", mid(&c), "EAuthTokenRejected: ");
  char tok[256];
  assert_int_equal(hx_auth(&h, tok, sizeof tok), 0);
  expect_ok(&c, "RenewMount", json_pack("{s:s,s:s}", "MountID", c.mount_id, "AuthToken", tok),
            NULL);
  num_inodes(&c);
  expect_ok(&c, "Unmount", mid(&c), NULL);
}

/* The mount counts of GET /volume and GET /volume/<name> (imgr.md 2.3). */
static void counts_are(hx *h, json_int_t healthy, json_int_t token_expired) {
  json_t *list = imgr_volume_list_json(h->srv);
  assert_non_null(list);
  assert_int_equal(json_array_size(list), 1);
  json_t *one = NULL;
  assert_int_equal(imgr_volume_json(h->srv, "testVolume", NULL, &one), 0);
  json_t *objs[2] = {json_array_get(list, 0), one};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(json_integer_value(json_object_get(objs[i], "HealthyMounts")), healthy);
    assert_int_equal(json_integer_value(json_object_get(objs[i], "LeasesExpiredMounts")), 0);
    assert_int_equal(json_integer_value(json_object_get(objs[i], "AuthTokenExpiredMounts")),
                     token_expired);
  }
  json_decref(list);
  json_decref(one);
}

static void test_volume_mount_counts(void **state) {
  (void)state;
  static hx h;
  static hx_client a, b;
  up1(&h, &a, NULL, NULL);
  counts_are(&h, 1, 0);
  assert_int_equal(hx_client_open(&h, track_c(&b)), 0);
  assert_int_equal(hx_mount(&h, &b, NULL, NULL), 0);
  counts_are(&h, 2, 0);
  /* A refused RenewMount puts b on the auth-token-expired list (imgr.md 3.3:
   * a failed periodic check does not). */
  expect_err(&b, "RenewMount", json_pack("{s:s,s:s}", "MountID", b.mount_id, "AuthToken", "x"),
             "EAuthTokenRejected: ");
  counts_are(&h, 1, 1);
  expect_ok(&b, "Unmount", mid(&b), NULL);
  counts_are(&h, 1, 0);
  expect_ok(&a, "Unmount", mid(&a), NULL);
}

/* ---- leases with two clients (5.4) ------------------------------------------- */

typedef struct {
  hx h;
  hx_client c[3];
} lease_fx;

static int lease_setup(void **state) {
  lease_fx *f = calloc(1, sizeof *f);
  if (!f || hx_start(&f->h, NULL, NULL, 0)) return -1;
  for (int i = 0; i < 3; i++)
    if (hx_client_open(&f->h, &f->c[i]) || hx_mount(&f->h, &f->c[i], NULL, NULL)) return -1;
  *state = f;
  return 0;
}

static int lease_teardown(void **state) {
  lease_fx *f = *state;
  for (int i = 0; i < 3; i++) {
    hx_call(&f->c[i], "Unmount", mid(&f->c[i]), NULL, NULL);
    hx_client_close(&f->c[i]);
  }
  hx_stop(&f->h);
  free(f);
  return 0;
}

/* A scenario step. 'L': client c requests t and must get reply w at once;
 * 'A': client c requests t on a thread of its own (async slot c);
 * 'J': async slot c must have been answered w; 'U': client c must receive
 * interrupt t next. Every scenario works on one inode. */
typedef struct {
  char op;
  int c;
  uint32_t t;
  int w;
} step;

typedef struct {
  const char *name;
  step s[24];
} scenario;

static const scenario scenarios[] = {
    {"1 Shared", {{'L', 0, S, SHARED}, {'L', 0, R, RELEASED}}},
    {"2 Shared", {{'L', 0, S, SHARED}, {'L', 1, S, SHARED}, {'L', 0, R, RELEASED},
                  {'L', 1, R, RELEASED}}},
    {"1 Exclusive then Demote",
     {{'L', 0, E, EXCL}, {'L', 0, D, DEMOTED}, {'L', 0, R, RELEASED}}},
    {"1 Exclusive then 1 Shared leading to Demotion",
     {{'L', 0, E, EXCL}, {'A', 1, S, 0}, {'U', 0, INT_DEMOTE, 0}, {'L', 0, D, DEMOTED},
      {'J', 1, 0, SHARED}, {'L', 0, R, RELEASED}, {'L', 1, R, RELEASED}}},
    {"1 Shared then 1 Exclusive leading to Release",
     {{'L', 0, S, SHARED}, {'A', 1, E, 0}, {'U', 0, INT_RELEASE, 0}, {'L', 0, R, RELEASED},
      {'J', 1, 0, EXCL}, {'L', 1, R, RELEASED}}},
    {"1 Exclusive then 1 Exclusive leading to Release",
     {{'L', 0, E, EXCL}, {'A', 1, E, 0}, {'U', 0, INT_RELEASE, 0}, {'L', 0, R, RELEASED},
      {'J', 1, 0, EXCL}, {'L', 1, R, RELEASED}}},
    {"2 Shared then Promotion leading to Release",
     {{'L', 0, S, SHARED}, {'L', 1, S, SHARED}, {'A', 0, P, 0}, {'U', 1, INT_RELEASE, 0},
      {'L', 1, R, RELEASED}, {'J', 0, 0, PROMOTED}, {'L', 0, R, RELEASED}}},
    {"2 Shared then 2 Promotions: the second is Denied",
     {{'L', 0, S, SHARED}, {'L', 1, S, SHARED}, {'A', 0, P, 0}, {'U', 1, INT_RELEASE, 0},
      {'L', 1, P, DENIED}, {'L', 1, R, RELEASED}, {'J', 0, 0, PROMOTED},
      {'L', 0, R, RELEASED}}},
    {"1 Exclusive then 2 Shared leading to Demotion",
     {{'L', 0, E, EXCL}, {'A', 1, S, 0}, {'A', 2, S, 0}, {'U', 0, INT_DEMOTE, 0},
      {'L', 0, D, DEMOTED}, {'J', 1, 0, SHARED}, {'J', 2, 0, SHARED}, {'L', 0, R, RELEASED},
      {'L', 1, R, RELEASED}, {'L', 2, R, RELEASED}}},
    {"2 Shared then 1 Exclusive leading to Release",
     {{'L', 0, S, SHARED}, {'L', 1, S, SHARED}, {'A', 2, E, 0}, {'U', 0, INT_RELEASE, 0},
      {'U', 1, INT_RELEASE, 0}, {'L', 0, R, RELEASED}, {'L', 1, R, RELEASED},
      {'J', 2, 0, EXCL}, {'L', 2, R, RELEASED}}},
    {"Release without a lease, Demote of a shared lease",
     {{'L', 0, S, SHARED}, {'L', 1, R, DENIED}, {'L', 0, D, DENIED}, {'L', 0, R, RELEASED}}},
};

static void run_scenario(lease_fx *f, const scenario *sc, uint64_t ino, size_t up[3]) {
  async_lease a[3];
  for (const step *st = sc->s; st->op; st++) {
    hx_client *c = &f->c[st->c];
    switch (st->op) {
    case 'L':
      lease_is(c, ino, st->t, st->w);
      break;
    case 'A':
      async_start(&a[st->c], c, ino, st->t);
      break;
    case 'J':
      if (async_join(&a[st->c]) != st->w)
        fail_msg("%s: client %d: want %d got %d", sc->name, st->c, st->w, a[st->c].result);
      break;
    case 'U':
      upcall_is(c, up[st->c]++, st->t, ino);
      break;
    }
  }
}

static void test_lease_table(void **state) {
  lease_fx *f = *state;
  size_t up[3] = {0, 0, 0};
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
    run_scenario(f, &scenarios[i], 100 + i, up);
  /* independent inodes: no interrupts */
  lease_is(&f->c[0], 2, E, EXCL);
  lease_is(&f->c[1], 3, E, EXCL);
  lease_is(&f->c[0], 2, R, RELEASED);
  lease_is(&f->c[1], 3, R, RELEASED);
  /* every upcall went to the client that held the lease, and no other came */
  sleep_ms(300);
  for (int i = 0; i < 3; i++) assert_int_equal(hx_upcalls(&f->c[i]), up[i]);
}

static void test_lease_expiry_unmounts(void **state) {
  lease_fx *f = *state;
  hx_client *c0 = &f->c[0], *c1 = &f->c[1];
  size_t u0 = hx_upcalls(c0);
  lease_is(c0, 7, E, EXCL);
  /* c0 opens an inode too: the forced unmount must close it */
  adjust_ok(c0, 7, 1);
  async_lease a;
  async_start(&a, c1, 7, E);
  /* c0 ignores LeaseInterruptLimit (5) Release interrupts */
  for (size_t i = 0; i < 5; i++) upcall_is(c0, u0 + i, INT_RELEASE, 7);
  assert_int_equal(async_join(&a), EXCL);
  /* the janitor unmounts c0 and tells it so */
  upcall_is(c0, u0 + 5, 0, 0);
  char *err = NULL;
  int rc = 0;
  for (int i = 0; i < 100; i++) {
    free(err);
    err = NULL;
    rc = hx_call(c0, "VolumeStatus", mid(c0), NULL, &err);
    if (rc) break;
    sleep_ms(20);
  }
  assert_int_not_equal(rc, 0);
  assert_non_null(err);
  assert_int_equal(strncmp(err, "EUnknownMountID: ", 17), 0);
  free(err);
  assert_int_equal(imgr_rpc_mount_count(f->h.rpc), 2);
  lease_is(c1, 7, R, RELEASED);
}

static void test_dead_mount_detected(void **state) {
  (void)state;
  imgr_rpc_options o;
  imgr_rpc_options_defaults(&o);
  o.lease_stats_group = NULL;
  o.rpc_stats_group = NULL;
  o.mount_timeout_ns = 300ULL * 1000000ULL;
  o.janitor_period_ns = 20ULL * 1000000ULL;
  static hx h;
  assert_int_equal(hx_start(track(&h), NULL, &o, 0), 0);
  static hx_client dead, live;
  assert_int_equal(hx_client_open(&h, track_c(&dead)), 0);
  assert_int_equal(hx_client_open(&h, track_c(&live)), 0);
  assert_int_equal(hx_mount(&h, &dead, NULL, NULL), 0);
  assert_int_equal(hx_mount(&h, &live, NULL, NULL), 0);
  lease_is(&dead, 9, E, EXCL);
  /* the live client keeps its mount alive with RenewMount */
  for (int i = 0; i < 8; i++) {
    sleep_ms(100);
    expect_ok(&live, "RenewMount",
              json_pack("{s:s,s:s}", "MountID", live.mount_id, "AuthToken", h.token), NULL);
  }
  assert_int_equal(imgr_rpc_mount_count(h.rpc), 1);
  /* the dead mount's exclusive lease is gone: granted without interrupts;
   * the silent client was told of its unmount (RPCInterruptTypeUnmount) */
  lease_is(&live, 9, E, EXCL);
  upcall_is(&dead, 0, 0, 0);
  sleep_ms(100);
  assert_int_equal(hx_upcalls(&dead), 1);
  expect_err(&dead, "VolumeStatus", mid(&dead), "EUnknownMountID: ");
  expect_ok(&live, "Unmount", mid(&live), NULL);
}

static void test_restart_and_reconnect(void **state) {
  (void)state;
  static hx h;
  static hx_client c;
  up1(&h, &c, NULL, NULL);
  uint64_t next, cnt;
  fetch_nonces(&c, &next, &cnt);
  uint64_t ino = next, obj = next + 1, len;
  assert_int_equal(hx_put_inode_object(&h, ino, obj, &len), 0);
  lease_is(&c, ino, E, EXCL);
  expect_ok(&c, "PutInodeTableEntries", put_req(&c, ino, obj, len, 1, (int64_t)len, NULL), NULL);
  expect_ok(&c, "Flush", mid(&c), NULL);
  char old_id[64];
  snprintf(old_id, sizeof old_id, "%s", c.mount_id);

  hx_stop_imgr(&h);
  assert_int_equal(hx_restart_imgr(&h), 0);

  /* the same client reconnects: its old session and mount are gone */
  char *err = NULL;
  assert_int_not_equal(hx_call(&c, "VolumeStatus", mid(&c), NULL, &err), 0);
  free(err);
  assert_int_equal(hx_mount(&h, &c, NULL, NULL), 0);
  assert_string_not_equal(c.mount_id, old_id);
  uint64_t next2, cnt2;
  fetch_nonces(&c, &next2, &cnt2);
  assert_true(next2 >= next + cnt); /* never reused across a restart */
  lease_is(&c, ino, S, SHARED);
  json_t *rep = NULL;
  expect_ok(&c, "GetInodeTableEntry", mid_ino(&c, ino), &rep);
  assert_int_equal(json_integer_value(json_object_get(rep, "InodeHeadObjectNumber")), obj);
  assert_int_equal(json_integer_value(json_object_get(rep, "InodeHeadLength")), len);
  json_decref(rep);
  expect_ok(&c, "Unmount", mid(&c), NULL);
}

/* A holder that ignores interrupts delays only the requests for its inode:
 * waiting Lease calls time out (LeaseRequestTimeout), at most workers - 4
 * wait at once and further ones are refused at once, and other RPCs go on. */
static void test_lease_waits_bounded(void **state) {
  (void)state;
  static const char *const ov[] = {"IMGR.LeaseInterruptLimit=50", NULL};
  imgr_rpc_options o;
  imgr_rpc_options_defaults(&o);
  o.lease_stats_group = NULL;
  o.rpc_stats_group = NULL;
  o.workers = 8;
  o.lease_request_timeout_ns = 800ULL * 1000000ULL;
  static hx h;
  static hx_client c[6];
  assert_int_equal(hx_start(track(&h), ov, &o, 0), 0);
  for (int i = 0; i < 6; i++) {
    assert_int_equal(hx_client_open(&h, track_c(&c[i])), 0);
    assert_int_equal(hx_mount(&h, &c[i], NULL, NULL), 0);
  }
  lease_is(&c[0], 20, E, EXCL);
  async_lease a[4];
  for (int i = 0; i < 4; i++) async_start(&a[i], &c[i + 1], 20, E);
  sleep_ms(300); /* the four are waiting */
  char *err = NULL;
  assert_int_equal(hx_lease(&c[5], 20, E, &err), -EREMOTEIO);
  assert_non_null(err);
  assert_string_equal(err, "ELeaseRequestDenied: LeaseRequestType 2 too many waiting requests");
  free(err);
  /* the server still serves everyone else, the holder included */
  num_inodes(&c[0]);
  lease_is(&c[5], 21, E, EXCL);
  for (int i = 0; i < 4; i++) assert_int_equal(async_join(&a[i]), -EREMOTEIO);
  lease_is(&c[0], 20, R, RELEASED);
  lease_is(&c[1], 20, E, EXCL);
  for (int i = 0; i < 6; i++) expect_ok(&c[i], "Unmount", mid(&c[i]), NULL);
}

typedef struct {
  hx_client *cl;
  uint64_t ino;
  int rc;
  uint64_t done_ns;
  pthread_t t;
} async_delete;

static void *delete_fn(void *arg) {
  async_delete *d = arg;
  d->rc = hx_call(d->cl, "DeleteInodeTableEntry", mid_ino(d->cl, d->ino), NULL, NULL);
  d->done_ns = ut_now_ns();
  return NULL;
}

static void *lease_timed_fn(void *arg) {
  async_lease *a = arg;
  a->result = hx_lease(a->cl, a->ino, a->type, NULL);
  a->done_ns = ut_now_ns();
  return NULL;
}

/* The race of imgr_rpc.h "Race closed": A's delete passes its lease check,
 * then (Swift slow) A's lease expires and B is granted the inode. B must not
 * be told before A's delete has been applied. */
static void test_grant_waits_for_inflight_write(void **state) {
  (void)state;
  static const char *const ov[] = {"IMGR.LeaseInterruptLimit=1", NULL};
  static hx h;
  static hx_client a, b;
  assert_int_equal(hx_start(track(&h), ov, NULL, 0), 0);
  assert_int_equal(hx_client_open(&h, track_c(&a)), 0);
  assert_int_equal(hx_client_open(&h, track_c(&b)), 0);
  assert_int_equal(hx_mount(&h, &a, NULL, NULL), 0);
  assert_int_equal(hx_mount(&h, &b, NULL, NULL), 0);
  uint64_t next, cnt, len;
  fetch_nonces(&a, &next, &cnt);
  assert_int_equal(hx_put_inode_object(&h, next, next + 1, &len), 0);
  lease_is(&a, next, E, EXCL);
  expect_ok(&a, "PutInodeTableEntries", put_req(&a, next, next + 1, len, 1, (int64_t)len, NULL),
            NULL);
  num_inodes(&a); /* the table is in memory: only the head GET is slow below */
  iswift_faults f = {.latency_ns = 700ULL * 1000000ULL};
  iswift_set_faults(h.sw, &f);
  async_delete d = {&a, next, -1, 0, 0};
  assert_int_equal(pthread_create(&d.t, NULL, delete_fn, &d), 0);
  sleep_ms(50); /* A's delete is past its lease check, in the head GET */
  async_lease g = {&b, next, E, -1, 0, 0};
  assert_int_equal(pthread_create(&g.t, NULL, lease_timed_fn, &g), 0);
  pthread_join(g.t, NULL);
  pthread_join(d.t, NULL);
  iswift_faults none = {0};
  iswift_set_faults(h.sw, &none);
  assert_int_equal(g.result, EXCL);
  assert_int_equal(d.rc, 0);
  assert_true(g.done_ns >= d.done_ns - 5000000ULL); /* the RPC reply trails the apply */
  /* A was expired and unmounted; the inode is gone */
  expect_err(&a, "VolumeStatus", mid(&a), "EUnknownMountID: ");
  assert_int_equal(num_inodes(&b), 1);
}

/* Shutdown with a Lease request waiting does not wait for its deadline. */
static void test_shutdown_with_waiting_lease(void **state) {
  (void)state;
  static const char *const ov[] = {"IMGR.LeaseInterruptLimit=100", NULL};
  static hx h;
  static hx_client a, b;
  assert_int_equal(hx_start(track(&h), ov, NULL, 0), 0);
  assert_int_equal(hx_client_open(&h, track_c(&a)), 0);
  assert_int_equal(hx_client_open(&h, track_c(&b)), 0);
  assert_int_equal(hx_mount(&h, &a, NULL, NULL), 0);
  assert_int_equal(hx_mount(&h, &b, NULL, NULL), 0);
  lease_is(&a, 30, E, EXCL);
  async_lease w = {&b, 30, E, -1, 0, 0};
  assert_int_equal(pthread_create(&w.t, NULL, lease_timed_fn, &w), 0);
  sleep_ms(200);
  uint64_t t0 = ut_now_ns();
  hx_stop_imgr(&h);
  assert_true(ut_now_ns() - t0 < 5ULL * 1000000000ULL);
  /* answered at shutdown (Denied, or Exclusive when the holder's removal
   * came first), not after LeaseRequestTimeout (30 s) */
  pthread_join(w.t, NULL);
  assert_true(w.done_ns - t0 < 5ULL * 1000000000ULL);
}

/* DELETE /volume while mounted: RPCs get EVolumeBeingDeleted, Unmount works. */
static void test_unserved_volume(void **state) {
  (void)state;
  static hx h;
  static hx_client c;
  up1(&h, &c, NULL, NULL);
  lease_is(&c, ROOT, E, EXCL);
  assert_int_equal(imgr_volume_unserve(h.srv, "testVolume"), 0);
  expect_err(&c, "VolumeStatus", mid(&c), "EVolumeBeingDeleted: testVolume");
  expect_err(&c, "Mount", json_pack("{s:s,s:s}", "VolumeName", "testVolume", "AuthToken", h.token),
             "EUnknownVolumeName: testVolume");
  expect_ok(&c, "Unmount", mid(&c), NULL);
  assert_int_equal(imgr_rpc_mount_count(h.rpc), 0);
}

/* The upstream harness runs TLS (5.1): an Ed25519 CA and an endpoint
 * certificate for 127.0.0.1; a client trusting another CA is refused. */
static void test_tls(void **state) {
  (void)state;
  char dir[] = "/tmp/imgr_rpc_tls_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char cert[128], key[128], err[256];
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  static const char *const ips[] = {"127.0.0.1"};
  icert_options co = {.alg = ICERT_ED25519, .ttl_s = 3600};
  icert_options eo = {.alg = ICERT_ED25519, .ttl_s = 3600, .ips = ips, .nips = 1};
  icert_pem ca = {0}, other = {0};
  assert_int_equal(icert_gen_ca(&co, NULL, NULL, &ca, err, sizeof err), 0);
  assert_int_equal(icert_gen_ca(&co, NULL, NULL, &other, err, sizeof err), 0);
  assert_int_equal(icert_gen_endpoint(&eo, &ca, cert, key, NULL, err, sizeof err), 0);
  char kv1[200], kv2[200];
  snprintf(kv1, sizeof kv1, "IMGR.RetryRPCCertFilePath=%s", cert);
  snprintf(kv2, sizeof kv2, "IMGR.RetryRPCKeyFilePath=%s", key);
  const char *const ov[] = {kv1, kv2, NULL};
  static hx h;
  static hx_client good, bad;
  assert_int_equal(hx_start(track(&h), ov, NULL, 0), 0);
  h.ca_pem = other.cert;
  assert_int_equal(hx_client_open(&h, track_c(&bad)), 0);
  assert_int_equal(hx_call(&bad, "Mount",
                           json_pack("{s:s,s:s}", "VolumeName", "testVolume", "AuthToken", h.token),
                           NULL, NULL),
                   -EACCES);
  h.ca_pem = ca.cert;
  assert_int_equal(hx_client_open(&h, track_c(&good)), 0);
  assert_int_equal(hx_mount(&h, &good, NULL, NULL), 0);
  lease_is(&good, ROOT, S, SHARED);
  expect_ok(&good, "GetInodeTableEntry", mid_ino(&good, ROOT), NULL);
  expect_ok(&good, "Unmount", mid(&good), NULL);
  icert_pem_free(&ca);
  icert_pem_free(&other);
  unlink(cert);
  unlink(key);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_mount_errors_and_basics, cleanup),
      cmocka_unit_test_teardown(test_inode_lifecycle, cleanup),
      cmocka_unit_test_teardown(test_open_file_limit, cleanup),
      cmocka_unit_test_teardown(test_mount_limit, cleanup),
      cmocka_unit_test_teardown(test_auth_recheck_and_renew, cleanup),
      cmocka_unit_test_teardown(test_volume_mount_counts, cleanup),
      cmocka_unit_test_setup_teardown(test_lease_table, lease_setup, lease_teardown),
      cmocka_unit_test_setup_teardown(test_lease_expiry_unmounts, lease_setup, lease_teardown),
      cmocka_unit_test_teardown(test_dead_mount_detected, cleanup),
      cmocka_unit_test_teardown(test_restart_and_reconnect, cleanup),
      cmocka_unit_test_teardown(test_tls, cleanup),
      cmocka_unit_test_teardown(test_unserved_volume, cleanup),
      cmocka_unit_test_teardown(test_lease_waits_bounded, cleanup),
      cmocka_unit_test_teardown(test_grant_waits_for_inflight_write, cleanup),
      cmocka_unit_test_teardown(test_shutdown_with_waiting_lease, cleanup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
