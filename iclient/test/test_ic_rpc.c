/* The retryrpc-backed ic_imgr_ops against an in-process rrpc_server whose
 * methods play imgr: method names and bodies on the wire, replies decoded,
 * imgr's error strings mapped (and copied), errno-only remote errors and
 * bad replies as -EIO, RenewMount + one retry on EAuthTokenRejected (with
 * a fresh Swift token), the keep-alive, upcalls (delivered by several
 * workers from a bounded, deduplicating queue), transport errors, the
 * remount after imgr forgot the mount or restarted. Swift is
 * iswift in process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ic_rpc.h"
#include "iswift.h"
#include "retryrpc.h"
#include "utils.h"

typedef struct fake {
  pthread_mutex_t mu;
  int renews;           /* RenewMount calls */
  char renew_token[128];
  int reject_next;      /* GetInodeTableEntry: EAuthTokenRejected this many times */
  bool renew_rejects;   /* RenewMount answers EAuthTokenRejected */
  int gets;
  json_t *last_put;     /* the last PutInodeTableEntries body */
  uint64_t client_id;
  int mounts;           /* Mount calls */
  char mount_id[24];    /* the mount imgr knows ("": none) */
} fake;

typedef struct env {
  iswift *sw;
  swift_conn *swift;
  rrpc_server *srv;
  ic_rpc_client *c;
  fake f;
  pthread_mutex_t up_mu;
  int upcalls;
  uint32_t up_type;
  uint64_t up_ino;
  int remounts;
} env;

static const char *str_member(const json_t *j, const char *name) {
  const json_t *m = json_object_get(j, name);
  return m && json_is_string(m) ? json_string_value(m) : "";
}

static int m_mount(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **errstr) {
  fake *f = ctx;
  if (strcmp(str_member(req, "VolumeName"), "testvol") != 0) {
    *errstr = strdup("EUnknownVolumeName: nope");
    return -ENOENT;
  }
  if (!str_member(req, "AuthToken")[0]) return -EINVAL;
  pthread_mutex_lock(&f->mu);
  f->client_id = cid;
  if (++f->mounts == 1)
    snprintf(f->mount_id, sizeof(f->mount_id), "MOUNTIDMOUNTIDMOUNTI");
  else
    snprintf(f->mount_id, sizeof(f->mount_id), "MOUNTIDMOUNTIDMOUN%02d", f->mounts % 100);
  *reply = json_pack("{s:s}", "MountID", f->mount_id);
  pthread_mutex_unlock(&f->mu);
  return 0;
}

static bool known_mount(fake *f, const json_t *req) {
  pthread_mutex_lock(&f->mu);
  bool known = f->mount_id[0] && strcmp(str_member(req, "MountID"), f->mount_id) == 0;
  pthread_mutex_unlock(&f->mu);
  return known;
}

static int m_renew(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **errstr) {
  (void)cid;
  (void)reply;
  fake *f = ctx;
  pthread_mutex_lock(&f->mu);
  f->renews++;
  snprintf(f->renew_token, sizeof(f->renew_token), "%s", str_member(req, "AuthToken"));
  bool reject = f->renew_rejects;
  pthread_mutex_unlock(&f->mu);
  if (!known_mount(f, req)) {
    *errstr = strdup("EUnknownMountID: renew");
    return -ENOENT;
  }
  if (reject) {
    *errstr = strdup("EAuthTokenRejected: mount");
    return -EACCES;
  }
  return 0;
}

static int m_unmount(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **errstr) {
  (void)cid;
  (void)reply;
  if (!known_mount(ctx, req)) {
    *errstr = strdup("EUnknownMountID: unmount");
    return -ENOENT;
  }
  return 0;
}

static int m_volume_status(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                           char **errstr) {
  (void)cid;
  if (!known_mount(ctx, req)) {
    *errstr = strdup("EUnknownMountID: who");
    return -ENOENT;
  }
  *reply = json_pack("{s:i,s:i,s:i,s:i}", "NumInodes", 3, "ObjectCount", 4, "BytesWritten", 5,
                     "BytesReferenced", 6);
  return 0;
}

static int m_get_inode(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                       char **errstr) {
  (void)cid;
  fake *f = ctx;
  pthread_mutex_lock(&f->mu);
  f->gets++;
  bool reject = f->reject_next > 0;
  if (reject) f->reject_next--;
  pthread_mutex_unlock(&f->mu);
  if (reject) {
    *errstr = strdup("EAuthTokenRejected: mount MOUNTIDMOUNTIDMOUNTI");
    return -EACCES;
  }
  json_int_t ino = json_integer_value(json_object_get(req, "InodeNumber"));
  *reply = json_pack("{s:I,s:I}", "InodeHeadObjectNumber", ino * 10, "InodeHeadLength", ino + 1);
  return 0;
}

static int m_put(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **errstr) {
  (void)cid;
  (void)reply;
  (void)errstr;
  fake *f = ctx;
  pthread_mutex_lock(&f->mu);
  json_decref(f->last_put);
  f->last_put = json_deep_copy(req);
  pthread_mutex_unlock(&f->mu);
  return 0;
}

/* Fails with a bare errno: retryrpc sends "errno: 12". */
static int m_flush(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **errstr) {
  (void)ctx;
  (void)cid;
  (void)req;
  (void)reply;
  (void)errstr;
  return -ENOMEM;
}

/* Answers with the wrong JSON type: the client must call it a bad reply. */
static int m_lease(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **errstr) {
  (void)ctx;
  (void)cid;
  (void)errstr;
  json_int_t t = json_integer_value(json_object_get(req, "LeaseRequestType"));
  *reply = t == IC_LEASE_REQUEST_SHARED ? json_pack("{s:i}", "LeaseResponseType", 1)
                                        : json_pack("{s:s}", "LeaseResponseType", "one");
  return 0;
}

static int m_delete(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **errstr) {
  (void)ctx;
  (void)cid;
  (void)req;
  (void)reply;
  *errstr = strdup("EUnknownInodeNumber: 42");
  return -ENOENT;
}

static int m_adjust(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **errstr) {
  (void)ctx;
  (void)cid;
  (void)req;
  (void)reply;
  *errstr = strdup("EInvalidRequest: something new");
  return -EINVAL;
}

static void on_upcall(void *ctx, uint32_t type, uint64_t ino) {
  env *e = ctx;
  pthread_mutex_lock(&e->up_mu);
  e->upcalls++;
  e->up_type = type;
  e->up_ino = ino;
  pthread_mutex_unlock(&e->up_mu);
}

/* The fake imgr's retryrpc server, on port (0: ephemeral). */
static int start_server(env *e, uint16_t port) {
  rrpc_method methods[] = {
      {"Mount", m_mount, &e->f},
      {"RenewMount", m_renew, &e->f},
      {"Unmount", m_unmount, &e->f},
      {"VolumeStatus", m_volume_status, &e->f},
      {"GetInodeTableEntry", m_get_inode, &e->f},
      {"PutInodeTableEntries", m_put, &e->f},
      {"Flush", m_flush, &e->f},
      {"Lease", m_lease, &e->f},
      {"DeleteInodeTableEntry", m_delete, &e->f},
      {"AdjustInodeTableEntryOpenCount", m_adjust, &e->f},
  };
  rrpc_server_config rc = {.addr = "127.0.0.1", .port = port};
  if (rrpc_server_create(&rc, methods, sizeof(methods) / sizeof(methods[0]), &e->srv)) return -1;
  return rrpc_server_start(e->srv);
}

static int setup(void **state) {
  env *e = calloc(1, sizeof(*e));
  if (!e) return -1;
  pthread_mutex_init(&e->f.mu, NULL);
  pthread_mutex_init(&e->up_mu, NULL);
  iswift_config ic;
  iswift_config_defaults(&ic);
  ic.port = 0;
  if (iswift_start(&ic, &e->sw)) return -1;
  char auth[128];
  snprintf(auth, sizeof(auth), "http://127.0.0.1:%u/auth/v1.0", (unsigned)iswift_port(e->sw));
  swift_config sc;
  swift_config_defaults(&sc);
  sc.auth_url = auth;
  sc.auth_user = "test:tester";
  sc.auth_key = "testing";
  if (swift_conn_create(&sc, &e->swift)) return -1;
  if (start_server(e, 0)) return -1;
  ic_rpc_params p = {.host = "127.0.0.1",
                     .port = rrpc_server_port(e->srv),
                     .deadline_io_ns = 5000000000ull,
                     .keepalive_ns = 5000000000ull,
                     .renew_period_ns = 20000000ull,
                     .swift = e->swift};
  if (ic_rpc_client_create(&p, &e->c)) return -1;
  ic_rpc_set_upcall(e->c, on_upcall, e);
  *state = e;
  return 0;
}

static int teardown(void **state) {
  env *e = *state;
  ic_rpc_client_destroy(e->c);
  rrpc_server_destroy(e->srv);
  swift_conn_destroy(e->swift);
  iswift_stop(e->sw);
  json_decref(e->f.last_put);
  pthread_mutex_destroy(&e->f.mu);
  pthread_mutex_destroy(&e->up_mu);
  free(e);
  return 0;
}

static void mount_it(env *e) {
  char token[128];
  assert_int_equal(swift_auth_token(e->swift, token, sizeof(token)), 0);
  ic_mount_req req = {"testvol", token};
  ic_mount_reply rep;
  ic_rpc_err err = {{0}};
  assert_int_equal(ic_rpc_ops.mount(e->c, &req, &rep, &err), 0);
  assert_string_equal(rep.mount_id, "MOUNTIDMOUNTIDMOUNTI");
}

static void test_replies_and_errors(void **state) {
  env *e = *state;
  mount_it(e);
  ic_rpc_err err = {{0}};
  ic_mount_req bad = {"other", "t"};
  ic_mount_reply mrep;
  assert_int_equal(ic_rpc_ops.mount(e->c, &bad, &mrep, &err), -ENODEV);
  assert_string_equal(err.msg, "EUnknownVolumeName: nope");

  ic_mount_id_req mid = {"MOUNTIDMOUNTIDMOUNTI"};
  ic_volume_status_reply vs;
  assert_int_equal(ic_rpc_ops.volume_status(e->c, &mid, &vs, &err), 0);
  assert_int_equal(vs.num_inodes, 3);
  assert_int_equal(vs.object_count, 4);
  assert_int_equal(vs.bytes_written, 5);
  assert_int_equal(vs.bytes_referenced, 6);
  /* after Mount every request carries the current MountID */
  ic_mount_id_req other = {"X"};
  assert_int_equal(ic_rpc_ops.volume_status(e->c, &other, &vs, &err), 0);

  ic_inode_req ir = {"MOUNTIDMOUNTIDMOUNTI", 7};
  ic_get_inode_table_entry_reply gr;
  assert_int_equal(ic_rpc_ops.get_inode_table_entry(e->c, &ir, &gr, &err), 0);
  assert_int_equal(gr.inode_head_object_number, 70);
  assert_int_equal(gr.inode_head_length, 8);

  ic_inode_table_entry ents[2] = {{1, 2, 3}, {4, 5, 6}};
  uint64_t deref[1] = {99};
  ic_put_inode_table_entries_req put = {"MOUNTIDMOUNTIDMOUNTI", ents, 2, 1, -2, 3, deref, 1};
  assert_int_equal(ic_rpc_ops.put_inode_table_entries(e->c, &put, &err), 0);
  json_t *want = json_loads(
      "{\"MountID\":\"MOUNTIDMOUNTIDMOUNTI\",\"UpdatedInodeTableEntryArray\":["
      "{\"InodeNumber\":1,\"InodeHeadObjectNumber\":2,\"InodeHeadLength\":3},"
      "{\"InodeNumber\":4,\"InodeHeadObjectNumber\":5,\"InodeHeadLength\":6}],"
      "\"SuperBlockInodeObjectCountAdjustment\":1,\"SuperBlockInodeBytesWrittenAdjustment\":-2,"
      "\"SuperBlockInodeBytesReferencedAdjustment\":3,\"DereferencedObjectNumberArray\":[99]}",
      0, NULL);
  assert_non_null(want);
  assert_true(json_equal(want, e->f.last_put));
  json_decref(want);

  assert_int_equal(ic_rpc_ops.flush(e->c, &mid, &err), -EIO); /* "errno: 12" */
  assert_non_null(strstr(err.msg, "Flush"));
  assert_int_equal(ic_rpc_ops.delete_inode_table_entry(e->c, &ir, &err), -ENOENT);
  assert_string_equal(err.msg, "EUnknownInodeNumber: 42");
  ic_adjust_open_count_req adj = {"MOUNTIDMOUNTIDMOUNTI", 7, 1};
  assert_int_equal(ic_rpc_ops.adjust_inode_table_entry_open_count(e->c, &adj, &err), -EIO);
  assert_string_equal(err.msg, "EInvalidRequest: something new");

  ic_lease_req lr = {"MOUNTIDMOUNTIDMOUNTI", 7, IC_LEASE_REQUEST_SHARED};
  ic_lease_reply lrep;
  assert_int_equal(ic_rpc_ops.lease(e->c, &lr, &lrep, &err), 0);
  assert_int_equal(lrep.lease_response_type, IC_LEASE_RESPONSE_SHARED);
  lr.lease_request_type = IC_LEASE_REQUEST_EXCLUSIVE;
  assert_int_equal(ic_rpc_ops.lease(e->c, &lr, &lrep, &err), -EIO);
  assert_string_equal(err.msg, "bad reply to Lease");
  /* not served by this fake at all: retryrpc's own error, not imgr's */
  assert_int_equal(ic_rpc_ops.fetch_nonce_range(e->c, &mid, &(ic_fetch_nonce_range_reply){0},
                                                &err),
                   -EIO);
}

static void test_renew_on_auth_token_rejected(void **state) {
  env *e = *state;
  mount_it(e);
  char old_token[128];
  assert_int_equal(swift_auth_token(e->swift, old_token, sizeof(old_token)), 0);
  iswift_force_reauth(e->sw); /* the old token is dead at Swift */
  e->f.reject_next = 1;
  ic_inode_req ir = {"MOUNTIDMOUNTIDMOUNTI", 3};
  ic_get_inode_table_entry_reply gr;
  ic_rpc_err err = {{0}};
  assert_int_equal(ic_rpc_ops.get_inode_table_entry(e->c, &ir, &gr, &err), 0);
  assert_int_equal(gr.inode_head_object_number, 30);
  assert_int_equal(e->f.gets, 2);
  pthread_mutex_lock(&e->f.mu);
  assert_true(e->f.renews >= 1);
  assert_string_not_equal(e->f.renew_token, old_token); /* re-authenticated first */
  assert_true(e->f.renew_token[0]);
  pthread_mutex_unlock(&e->f.mu);

  /* rejected again after the renewal: the error, no loop */
  e->f.reject_next = 2;
  assert_int_equal(ic_rpc_ops.get_inode_table_entry(e->c, &ir, &gr, &err), -EACCES);
  assert_int_equal(e->f.gets, 4);
  /* RenewMount itself rejected: the op fails, the request is not resent */
  e->f.reject_next = 1;
  e->f.renew_rejects = true;
  assert_int_equal(ic_rpc_ops.get_inode_table_entry(e->c, &ir, &gr, &err), -EACCES);
  assert_int_equal(e->f.gets, 5);
}

static void on_remount(void *ctx) {
  env *e = ctx;
  pthread_mutex_lock(&e->up_mu);
  e->remounts++;
  pthread_mutex_unlock(&e->up_mu);
}

/* imgr forgets the mount (EUnknownMountID), then restarts on the same port
 * (retryrpc's session is gone too: ESTALE): each time one Mount, the
 * remount function, and the request sent again with the new MountID. */
static void test_remount(void **state) {
  env *e = *state;
  ic_rpc_set_remount(e->c, on_remount, e);
  mount_it(e);
  ic_mount_id_req mid = {"MOUNTIDMOUNTIDMOUNTI"};
  ic_volume_status_reply vs;
  ic_rpc_err err = {{0}};
  pthread_mutex_lock(&e->f.mu);
  e->f.mount_id[0] = '\0'; /* imgr unmounted us */
  pthread_mutex_unlock(&e->f.mu);
  assert_int_equal(ic_rpc_ops.volume_status(e->c, &mid, &vs, &err), 0);
  assert_int_equal(vs.num_inodes, 3);
  assert_int_equal(e->f.mounts, 2);
  assert_int_equal(e->remounts, 1);
  assert_int_equal(ic_rpc_remounts(e->c), 1);
  ic_inode_table_entry ents[1] = {{1, 2, 3}};
  ic_put_inode_table_entries_req put = {mid.mount_id, ents, 1, 0, 0, 0, NULL, 0};
  assert_int_equal(ic_rpc_ops.put_inode_table_entries(e->c, &put, &err), 0);
  assert_string_equal(str_member(e->f.last_put, "MountID"), "MOUNTIDMOUNTIDMOUN02");

  /* imgr restarts: a new server on the same port knows neither the
   * retryrpc session nor the mount. */
  uint16_t port = rrpc_server_port(e->srv);
  rrpc_server_destroy(e->srv);
  e->srv = NULL;
  pthread_mutex_lock(&e->f.mu);
  e->f.mount_id[0] = '\0';
  pthread_mutex_unlock(&e->f.mu);
  assert_int_equal(start_server(e, port), 0);
  assert_int_equal(ic_rpc_ops.volume_status(e->c, &mid, &vs, &err), 0);
  assert_int_equal(e->f.mounts, 3);
  assert_int_equal(e->remounts, 2);

  /* The keep-alive remounts an idle client. */
  pthread_mutex_lock(&e->f.mu);
  e->f.mount_id[0] = '\0';
  pthread_mutex_unlock(&e->f.mu);
  assert_int_equal(ic_rpc_keepalive_start(e->c, mid.mount_id), 0);
  for (int i = 0; i < 500 && ic_rpc_remounts(e->c) < 3; i++) ut_sleep_ns(10000000);
  ic_rpc_keepalive_stop(e->c);
  assert_int_equal(ic_rpc_remounts(e->c), 3);

  /* Unmount of a forgotten mount is not remounted. */
  pthread_mutex_lock(&e->f.mu);
  e->f.mount_id[0] = '\0';
  pthread_mutex_unlock(&e->f.mu);
  assert_int_equal(ic_rpc_ops.unmount(e->c, &mid, &err), -ENOTCONN);
  assert_int_equal(ic_rpc_remounts(e->c), 3);
  ic_rpc_set_remount(e->c, NULL, NULL);
}

static void test_keepalive(void **state) {
  env *e = *state;
  mount_it(e);
  assert_int_equal(ic_rpc_keepalive_start(e->c, "MOUNTIDMOUNTIDMOUNTI"), 0);
  assert_int_equal(ic_rpc_keepalive_start(e->c, "MOUNTIDMOUNTIDMOUNTI"), -EALREADY);
  for (int i = 0; i < 500; i++) {
    pthread_mutex_lock(&e->f.mu);
    int n = e->f.renews;
    pthread_mutex_unlock(&e->f.mu);
    if (n >= 3) break;
    ut_sleep_ns(10000000);
  }
  ic_rpc_keepalive_stop(e->c);
  pthread_mutex_lock(&e->f.mu);
  int n = e->f.renews;
  pthread_mutex_unlock(&e->f.mu);
  assert_true(n >= 3);
  ut_sleep_ns(100000000); /* stopped: no more */
  pthread_mutex_lock(&e->f.mu);
  assert_int_equal(e->f.renews, n);
  pthread_mutex_unlock(&e->f.mu);
  ic_rpc_keepalive_stop(e->c); /* twice is fine */
}

static void wait_upcalls(env *e, int n) {
  for (int i = 0; i < 500; i++) {
    pthread_mutex_lock(&e->up_mu);
    int got = e->upcalls;
    pthread_mutex_unlock(&e->up_mu);
    if (got >= n) return;
    ut_sleep_ns(10000000);
  }
  fail_msg("upcall %d not delivered", n);
}

static void test_upcalls(void **state) {
  env *e = *state;
  mount_it(e);
  static const char bad[] = "{\"RPCInterruptType\":\"x\"}";
  static const char good[] = "{\"RPCInterruptType\":2,\"InodeNumber\":77}";
  static const char good2[] = "{\"RPCInterruptType\":1,\"InodeNumber\":78}";
  assert_int_equal(rrpc_server_send_upcall(e->srv, e->f.client_id, bad, strlen(bad)), 0);
  assert_int_equal(rrpc_server_send_upcall(e->srv, e->f.client_id, good, strlen(good)), 0);
  wait_upcalls(e, 1);
  assert_int_equal(e->up_type, IC_RPC_INTERRUPT_RELEASE);
  assert_int_equal(e->up_ino, 77);
  /* detached: dropped */
  ic_rpc_set_upcall(e->c, NULL, NULL);
  assert_int_equal(rrpc_server_send_upcall(e->srv, e->f.client_id, good2, strlen(good2)), 0);
  ut_sleep_ns(100000000);
  ic_rpc_set_upcall(e->c, on_upcall, e);
  assert_int_equal(rrpc_server_send_upcall(e->srv, e->f.client_id, good2, strlen(good2)), 0);
  wait_upcalls(e, 2);
  pthread_mutex_lock(&e->up_mu);
  assert_int_equal(e->upcalls, 2);
  assert_int_equal(e->up_type, IC_RPC_INTERRUPT_DEMOTE);
  assert_int_equal(e->up_ino, 78);
  pthread_mutex_unlock(&e->up_mu);
}

/* An upcall function that blocks on inode 1 until released. */
typedef struct blocker {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool in_one, release;
  int delivered;
  uint64_t inos[16];
} blocker;

static void blocking_upcall(void *ctx, uint32_t type, uint64_t ino) {
  (void)type;
  blocker *b = ctx;
  pthread_mutex_lock(&b->mu);
  if (b->delivered < 16) b->inos[b->delivered] = ino;
  b->delivered++;
  if (ino == 1) {
    b->in_one = true;
    pthread_cond_broadcast(&b->cv);
    while (!b->release) pthread_cond_wait(&b->cv, &b->mu);
  }
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

static void blocker_wait(blocker *b, int delivered) {
  uint64_t end = ut_now_ns() + 5000000000ull;
  pthread_mutex_lock(&b->mu);
  while ((b->delivered < delivered || !b->in_one) && ut_now_ns() < end) {
    pthread_mutex_unlock(&b->mu);
    ut_sleep_ns(5000000);
    pthread_mutex_lock(&b->mu);
  }
  assert_true(b->in_one);
  assert_true(b->delivered >= delivered);
  pthread_mutex_unlock(&b->mu);
}

static void send_interrupt(env *e, uint64_t ino) {
  char buf[96];
  int n = snprintf(buf, sizeof(buf), "{\"RPCInterruptType\":2,\"InodeNumber\":%llu}",
                   (unsigned long long)ino);
  assert_int_equal(rrpc_server_send_upcall(e->srv, e->f.client_id, buf, (size_t)n), 0);
}

/* A client of its own with the given upcall workers and queue, mounted (so
 * the server knows its client ID), its upcalls going to b. */
static ic_rpc_client *blocker_client(env *e, unsigned workers, size_t queue, blocker *b) {
  ic_rpc_params p = {.host = "127.0.0.1",
                     .port = rrpc_server_port(e->srv),
                     .deadline_io_ns = 5000000000ull,
                     .keepalive_ns = 5000000000ull,
                     .upcall_workers = workers,
                     .upcall_queue = queue,
                     .swift = e->swift};
  ic_rpc_client *c;
  assert_int_equal(ic_rpc_client_create(&p, &c), 0);
  ic_mount_req req = {"testvol", "token"};
  ic_mount_reply rep;
  ic_rpc_err err = {{0}};
  assert_int_equal(ic_rpc_ops.mount(c, &req, &rep, &err), 0);
  memset(b, 0, sizeof(*b));
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->cv, NULL);
  ic_rpc_set_upcall(c, blocking_upcall, b);
  return c;
}

static void blocker_release(blocker *b) {
  pthread_mutex_lock(&b->mu);
  b->release = true;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

/* An interrupt stuck on a busy inode does not hold up the next one. */
static void test_upcall_not_blocked_by_another(void **state) {
  env *e = *state;
  blocker b;
  ic_rpc_client *c = blocker_client(e, 2, 16, &b);
  send_interrupt(e, 1);
  blocker_wait(&b, 1);
  send_interrupt(e, 2);
  blocker_wait(&b, 2); /* while inode 1's is still running */
  pthread_mutex_lock(&b.mu);
  assert_false(b.release);
  assert_int_equal(b.inos[1], 2);
  pthread_mutex_unlock(&b.mu);
  blocker_release(&b);
  ic_rpc_set_upcall(c, NULL, NULL); /* waits for the delivery of inode 1 */
  ic_rpc_client_destroy(c);
  pthread_cond_destroy(&b.cv);
  pthread_mutex_destroy(&b.mu);
}

/* One worker, stuck: a copy already queued is not queued again, and over
 * the queue's cap interrupts are dropped (imgr repeats them). */
static void test_upcall_queue_dedup_and_cap(void **state) {
  env *e = *state;
  blocker b;
  ic_rpc_client *c = blocker_client(e, 1, 2, &b);
  send_interrupt(e, 1);
  blocker_wait(&b, 1);
  send_interrupt(e, 2);
  send_interrupt(e, 2); /* the same: not queued twice */
  send_interrupt(e, 3);
  send_interrupt(e, 4); /* over the cap of 2: dropped */
  ut_sleep_ns(1000000000); /* let retryrpc's thread queue all four (local: ms) */
  blocker_release(&b);
  ut_sleep_ns(200000000);
  ic_rpc_set_upcall(c, NULL, NULL);
  pthread_mutex_lock(&b.mu);
  assert_int_equal(b.delivered, 3);
  assert_int_equal(b.inos[1], 2);
  assert_int_equal(b.inos[2], 3);
  pthread_mutex_unlock(&b.mu);
  ic_rpc_client_destroy(c);
  pthread_cond_destroy(&b.cv);
  pthread_mutex_destroy(&b.mu);
}

static void test_unreachable(void **state) {
  env *e = *state;
  ic_rpc_params p = {.host = "127.0.0.1",
                     .port = 1, /* nothing listens */
                     .deadline_io_ns = 1000000000ull,
                     .keepalive_ns = 1000000000ull,
                     .retry_limit = 1,
                     .swift = e->swift};
  ic_rpc_client *c;
  assert_int_equal(ic_rpc_client_create(&p, &c), 0);
  ic_mount_req req = {"testvol", "t"};
  ic_mount_reply rep;
  ic_rpc_err err = {{0}};
  int rc = ic_rpc_ops.mount(c, &req, &rep, &err);
  assert_true(rc == -ECONNREFUSED || rc == -ETIMEDOUT);
  assert_memory_equal(err.msg, "retryrpc: Mount", 15);
  ic_rpc_client_destroy(c);
  ic_rpc_client_destroy(NULL);

  p.swift = NULL;
  assert_int_equal(ic_rpc_client_create(&p, &c), -EINVAL);
  p.swift = e->swift;
  p.ca_cert_file = "/nonexistent/ca.pem";
  assert_int_equal(ic_rpc_client_create(&p, &c), -ENOENT);
  p.ca_cert_file = "/dev/null"; /* no certificate in it */
  assert_int_equal(ic_rpc_client_create(&p, &c), -EINVAL);
  p.ca_cert_file = NULL;
  p.upcall_workers = 65;
  assert_int_equal(ic_rpc_client_create(&p, &c), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_replies_and_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_renew_on_auth_token_rejected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
      cmocka_unit_test_setup_teardown(test_remount, setup, teardown),
      cmocka_unit_test_setup_teardown(test_upcalls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_upcall_not_blocked_by_another, setup, teardown),
      cmocka_unit_test_setup_teardown(test_upcall_queue_dedup_and_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
