/* ic_rpc: imgr error strings -> errno (the one table, see ic_imgr.h), and
 * the retryrpc-backed ops (see ic_rpc.h). */
#include "ic_rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ic_imgr_json.h"
#include "logger.h"
#include "retryrpc.h"
#include "utils.h"

static const struct {
  const char *prefix;
  int err;
} ERRS[] = {
    {"EAuthTokenRejected:", -EACCES},     {"EBadOpenCountAdjustment:", -EINVAL},
    {"ELeaseRequestDenied:", -ENOLCK},    {"EMissingLease:", -ENOLCK},
    {"ETooManyMounts", -EUSERS},          {"ETooManyOpens", -EMFILE},
    {"EVolumeBeingDeleted:", -ESHUTDOWN}, {"EUnknownInodeNumber:", -ENOENT},
    {"EUnknownMountID:", -ENOTCONN},      {"EUnknownVolumeName:", -ENODEV},
};

int ic_rpc_errno(const char *msg) {
  for (size_t i = 0; i < sizeof(ERRS) / sizeof(ERRS[0]); i++)
    if (strncmp(msg, ERRS[i].prefix, strlen(ERRS[i].prefix)) == 0) return ERRS[i].err;
  return -EIO;
}

int ic_rpc_fail(ic_rpc_err *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  va_end(ap);
  return ic_rpc_errno(err->msg);
}

/* ---- the retryrpc-backed ops (see ic_rpc.h) ---- */

#define CA_FILE_MAX (1u << 20)
#define DEFAULT_RENEW_PERIOD_NS (60ull * 1000000000ull)
#define DEFAULT_UPCALL_WORKERS 4
#define MAX_UPCALL_WORKERS 64
#define DEFAULT_UPCALL_QUEUE 1024
#define TOKEN_MAX 4096

typedef struct upcall_item {
  uint32_t type;
  uint64_t ino;
} upcall_item;

struct ic_rpc_client {
  rrpc_client *rc;
  swift_conn *swift;
  uint64_t call_timeout_ns;
  uint64_t renew_period_ns;

  /* The mount (set by a successful Mount): every later request carries the
   * current MountID, which changes when imgr forgot the mount and we
   * mounted again (see ic_rpc.h). One remount at a time. */
  pthread_mutex_t mnt_mu;
  pthread_cond_t mnt_cv; /* a remount finished */
  char *volume_name;
  char mount_id[IC_MOUNT_ID_MAX]; /* "" = not mounted */
  bool remounting;
  uint64_t remounts;
  ic_rpc_remount_fn remount_fn;
  void *remount_ctx;

  /* Upcalls: decoded on retryrpc's thread into a bounded ring, delivered
   * by up_nworkers threads, so an interrupt that waits for a busy inode
   * never holds up the interrupts of other inodes (imgr unmounts a client
   * whose lease it has to expire). */
  pthread_mutex_t up_mu;
  pthread_cond_t up_cv;      /* work queued, or stopping */
  pthread_cond_t up_idle_cv; /* a delivery finished */
  ic_rpc_upcall_fn up_fn;
  void *up_ctx;
  upcall_item *up_q;
  size_t up_cap, up_head, up_len;
  unsigned up_active; /* deliveries running */
  bool up_stop;
  unsigned up_nworkers;
  pthread_t up_workers[MAX_UPCALL_WORKERS];

  pthread_mutex_t ka_mu;
  pthread_cond_t ka_cv; /* CLOCK_MONOTONIC */
  bool ka_running, ka_stop;
  pthread_t ka_thread;
  char ka_mount_id[IC_MOUNT_ID_MAX];
};

/* retryrpc's upcall thread: decode, queue (a copy already waiting is
 * enough), never block on the file system. */
static void on_upcall(void *ctx, const void *payload, size_t len) {
  ic_rpc_client *c = ctx;
  json_error_t jerr;
  json_t *j = json_loadb(payload, len, 0, &jerr);
  json_int_t type = -1, ino = -1;
  if (!j || json_unpack(j, "{s:I,s:I}", "RPCInterruptType", &type, "InodeNumber", &ino) ||
      type < 0 || type > UINT32_MAX || ino < 0) {
    log_warn("iclient: undecodable upcall from imgr (%zu bytes) dropped", len);
    json_decref(j);
    return;
  }
  json_decref(j);
  upcall_item it = {(uint32_t)type, (uint64_t)ino};
  pthread_mutex_lock(&c->up_mu);
  bool queued = false;
  for (size_t i = 0; i < c->up_len && !queued; i++) {
    const upcall_item *q = &c->up_q[(c->up_head + i) % c->up_cap];
    queued = q->type == it.type && q->ino == it.ino;
  }
  if (!queued && c->up_len < c->up_cap) {
    c->up_q[(c->up_head + c->up_len++) % c->up_cap] = it;
    pthread_cond_signal(&c->up_cv);
  } else if (!queued) {
    log_warn("iclient: upcall queue full: RPCInterruptType %u inode %016llX dropped (imgr "
             "repeats it)", it.type, (unsigned long long)it.ino);
  }
  pthread_mutex_unlock(&c->up_mu);
}

static void *upcall_worker(void *arg) {
  ic_rpc_client *c = arg;
  pthread_mutex_lock(&c->up_mu);
  for (;;) {
    while (!c->up_stop && c->up_len == 0) pthread_cond_wait(&c->up_cv, &c->up_mu);
    if (c->up_stop) break;
    upcall_item it = c->up_q[c->up_head];
    c->up_head = (c->up_head + 1) % c->up_cap;
    c->up_len--;
    ic_rpc_upcall_fn fn = c->up_fn;
    void *fctx = c->up_ctx;
    if (!fn) {
      log_info("iclient: upcall RPCInterruptType %u inode %016llX while not serving: dropped",
               it.type, (unsigned long long)it.ino);
      continue;
    }
    c->up_active++;
    pthread_mutex_unlock(&c->up_mu);
    fn(fctx, it.type, it.ino);
    pthread_mutex_lock(&c->up_mu);
    if (--c->up_active == 0) pthread_cond_broadcast(&c->up_idle_cv);
  }
  pthread_mutex_unlock(&c->up_mu);
  return NULL;
}

void ic_rpc_set_remount(ic_rpc_client *c, ic_rpc_remount_fn fn, void *ctx) {
  pthread_mutex_lock(&c->mnt_mu);
  while (c->remounting) pthread_cond_wait(&c->mnt_cv, &c->mnt_mu);
  c->remount_fn = fn;
  c->remount_ctx = ctx;
  pthread_mutex_unlock(&c->mnt_mu);
}

uint64_t ic_rpc_remounts(ic_rpc_client *c) {
  pthread_mutex_lock(&c->mnt_mu);
  uint64_t n = c->remounts;
  pthread_mutex_unlock(&c->mnt_mu);
  return n;
}

void ic_rpc_set_upcall(ic_rpc_client *c, ic_rpc_upcall_fn fn, void *ctx) {
  pthread_mutex_lock(&c->up_mu);
  c->up_fn = fn;
  c->up_ctx = ctx;
  while (c->up_active > 0) pthread_cond_wait(&c->up_idle_cv, &c->up_mu);
  pthread_mutex_unlock(&c->up_mu);
}

static void upcalls_stop(ic_rpc_client *c) {
  pthread_mutex_lock(&c->up_mu);
  c->up_stop = true;
  pthread_cond_broadcast(&c->up_cv);
  pthread_mutex_unlock(&c->up_mu);
  for (unsigned i = 0; i < c->up_nworkers; i++) pthread_join(c->up_workers[i], NULL);
  c->up_nworkers = 0;
}

static void client_free(ic_rpc_client *c) {
  upcalls_stop(c);
  free(c->up_q);
  pthread_cond_destroy(&c->ka_cv);
  pthread_mutex_destroy(&c->ka_mu);
  pthread_cond_destroy(&c->mnt_cv);
  pthread_mutex_destroy(&c->mnt_mu);
  free(c->volume_name);
  pthread_cond_destroy(&c->up_idle_cv);
  pthread_cond_destroy(&c->up_cv);
  pthread_mutex_destroy(&c->up_mu);
  free(c);
}

int ic_rpc_client_create(const ic_rpc_params *p, ic_rpc_client **out) {
  *out = NULL;
  unsigned nworkers = p->upcall_workers ? p->upcall_workers : DEFAULT_UPCALL_WORKERS;
  if (!p->host || !p->host[0] || !p->swift || nworkers > MAX_UPCALL_WORKERS) return -EINVAL;
  ic_rpc_client *c = calloc(1, sizeof(*c));
  if (!c) return -ENOMEM;
  c->swift = p->swift;
  c->call_timeout_ns = p->call_timeout_ns ? p->call_timeout_ns : 2 * p->deadline_io_ns;
  c->renew_period_ns = p->renew_period_ns ? p->renew_period_ns : DEFAULT_RENEW_PERIOD_NS;
  c->up_cap = p->upcall_queue ? p->upcall_queue : DEFAULT_UPCALL_QUEUE;
  pthread_mutex_init(&c->up_mu, NULL);
  pthread_cond_init(&c->up_cv, NULL);
  pthread_cond_init(&c->up_idle_cv, NULL);
  pthread_mutex_init(&c->ka_mu, NULL);
  pthread_mutex_init(&c->mnt_mu, NULL);
  pthread_cond_init(&c->mnt_cv, NULL);
  pthread_condattr_t ca_attr;
  pthread_condattr_init(&ca_attr);
  pthread_condattr_setclock(&ca_attr, CLOCK_MONOTONIC);
  pthread_cond_init(&c->ka_cv, &ca_attr);
  pthread_condattr_destroy(&ca_attr);
  int rc = (c->up_q = calloc(c->up_cap, sizeof(*c->up_q))) ? 0 : -ENOMEM;
  for (; rc == 0 && c->up_nworkers < nworkers; c->up_nworkers++)
    rc = -pthread_create(&c->up_workers[c->up_nworkers], NULL, upcall_worker, c);
  char *ca = NULL;
  size_t ca_len = 0;
  if (rc == 0 && p->ca_cert_file && p->ca_cert_file[0]) {
    rc = ut_read_file(p->ca_cert_file, CA_FILE_MAX, &ca, &ca_len);
    if (rc) log_error("iclient: reading RetryRPCCACertFilePath %s: %s", p->ca_cert_file,
                      strerror(-rc));
  }
  rrpc_client_config rcfg = {
      .host = p->host,
      .port = p->port,
      .ca_pem = ca,
      .ca_pem_len = ca_len,
      .upcall = on_upcall,
      .upcall_ctx = c,
      .deadline_io_ns = p->deadline_io_ns,
      .keepalive_ns = p->keepalive_ns,
      .retry_limit = p->retry_limit,
      .log_enabled = true,
  };
  if (rc == 0) rc = rrpc_client_create(&rcfg, &c->rc);
  free(ca);
  if (rc) {
    client_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

void ic_rpc_client_destroy(ic_rpc_client *c) {
  if (!c) return;
  ic_rpc_keepalive_stop(c);
  rrpc_client_destroy(c->rc); /* no more upcalls arrive */
  client_free(c);             /* queued ones are dropped */
}

/* One call: 0 with *reply (may be NULL when not wanted), or the mapped
 * error with err->msg set. */
static int send1(ic_rpc_client *c, const char *method, const json_t *req, json_t **reply,
                 ic_rpc_err *err) {
  char *errstr = NULL;
  int rc = rrpc_client_send(c->rc, method, req, reply, &errstr, c->call_timeout_ns);
  if (rc == 0) {
    free(errstr);
    return 0;
  }
  if (errstr && errstr[0] && rrpc_errno_from_errstr(errstr) == -EREMOTEIO) {
    rc = ic_rpc_fail(err, "%s", errstr); /* imgr's own error string */
  } else if (errstr && errstr[0]) {    /* "errno: N" from imgr */
    snprintf(err->msg, sizeof(err->msg), "%s: imgr failed: %s", method, strerror(-rc));
    rc = -EIO;
  } else {
    char detail[160] = "";
    rrpc_client_last_error(c->rc, detail, sizeof(detail));
    snprintf(err->msg, sizeof(err->msg), "retryrpc: %s: %s (%s)", method, strerror(-rc), detail);
    if (rc != -ETIMEDOUT && rc != -ECONNREFUSED && rc != -ESTALE) rc = -EIO;
  }
  free(errstr);
  return rc;
}

/* The current MountID into id; false before the first Mount. */
static bool current_mount(ic_rpc_client *c, char id[IC_MOUNT_ID_MAX]) {
  pthread_mutex_lock(&c->mnt_mu);
  while (c->remounting) pthread_cond_wait(&c->mnt_cv, &c->mnt_mu);
  memcpy(id, c->mount_id, IC_MOUNT_ID_MAX);
  pthread_mutex_unlock(&c->mnt_mu);
  return id[0] != '\0';
}

static int renew(ic_rpc_client *c, const char *mount_id, bool reauth, ic_rpc_err *err) {
  char token[TOKEN_MAX];
  int rc = reauth ? swift_reauth(c->swift) : 0;
  if (rc == 0) rc = swift_auth_token(c->swift, token, sizeof(token));
  if (rc) {
    snprintf(err->msg, sizeof(err->msg), "Swift re-authentication failed: %s", strerror(-rc));
    return -EIO;
  }
  ic_renew_mount_req r = {mount_id, token};
  json_t *j = ic_json_renew_mount_req(&r);
  if (!j) return -ENOMEM;
  rc = send1(c, "RenewMount", j, NULL, err);
  json_decref(j);
  return rc;
}

/* After decoding reply (drc: the decoder's result): free it; -EIO and a
 * message when it did not fit. */
static int decoded(int drc, json_t *reply, const char *method, ic_rpc_err *err) {
  json_decref(reply);
  if (drc) {
    snprintf(err->msg, sizeof(err->msg), "bad reply to %s", method);
    return -EIO;
  }
  return 0;
}

/* A Mount reply into rep (it must name a mount). */
static int mount_reply(json_t *reply, ic_mount_reply *rep, ic_rpc_err *err) {
  memset(rep, 0, sizeof(*rep));
  int drc = ic_json_mount_reply(reply, rep);
  return decoded(drc ? drc : rep->mount_id[0] ? 0 : -EINVAL, reply, "Mount", err);
}

/* Mount {VolumeName, AuthToken}; a rejected token is renewed once. */
static int mount1(ic_rpc_client *c, const char *volume, ic_mount_reply *rep, ic_rpc_err *err) {
  int rc = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    char token[TOKEN_MAX];
    rc = attempt ? swift_reauth(c->swift) : 0;
    if (rc == 0) rc = swift_auth_token(c->swift, token, sizeof(token));
    if (rc) {
      snprintf(err->msg, sizeof(err->msg), "Swift authentication failed: %s", strerror(-rc));
      return -EIO;
    }
    ic_mount_req req = {volume, token};
    json_t *j = ic_json_mount_req(&req), *reply = NULL;
    if (!j) return -ENOMEM;
    rc = send1(c, "Mount", j, &reply, err);
    json_decref(j);
    if (rc == 0) return mount_reply(reply, rep, err);
    if (rc != -EACCES) break;
  }
  return rc;
}

/* imgr does not know mount `stale` (it restarted, or unmounted us): mount
 * again, unless another thread already did. Then the remount function runs
 * (the volume forgets its leases) before anyone uses the new MountID. */
static int remount(ic_rpc_client *c, const char *stale, ic_rpc_err *err) {
  pthread_mutex_lock(&c->mnt_mu);
  while (c->remounting) pthread_cond_wait(&c->mnt_cv, &c->mnt_mu);
  if (strcmp(c->mount_id, stale) != 0 || !c->volume_name) {
    pthread_mutex_unlock(&c->mnt_mu);
    return 0; /* done meanwhile */
  }
  c->remounting = true;
  ic_rpc_remount_fn fn = c->remount_fn;
  void *fctx = c->remount_ctx;
  pthread_mutex_unlock(&c->mnt_mu);

  log_warn("iclient: imgr does not know mount %s any more (imgr restarted, or it unmounted a "
           "silent mount): mounting %s again", stale, c->volume_name);
  ic_mount_reply rep;
  int rc = mount1(c, c->volume_name, &rep, err);
  if (rc)
    log_error("iclient: remount of %s failed: %s (%d); operations fail until it succeeds",
              c->volume_name, rc == -EACCES ? "EAuthTokenRejected:" : err->msg, rc);
  else if (fn)
    fn(fctx); /* under `remounting`: nobody sends with the new ID before it returns */

  pthread_mutex_lock(&c->mnt_mu);
  if (rc == 0) {
    memcpy(c->mount_id, rep.mount_id, sizeof(c->mount_id));
    c->remounts++;
    log_info("iclient: remounted %s as mount %s (remount %llu)", c->volume_name, c->mount_id,
             (unsigned long long)c->remounts);
  }
  c->remounting = false;
  pthread_cond_broadcast(&c->mnt_cv);
  pthread_mutex_unlock(&c->mnt_mu);
  return rc;
}

int ic_rpc_mount_lost(ic_rpc_client *c) {
  char id[IC_MOUNT_ID_MAX];
  ic_rpc_err err = {{0}};
  return current_mount(c, id) ? remount(c, id, &err) : -ENOTCONN;
}

/* send1 with the recoveries (see ic_rpc.h): once more on a new retryrpc
 * session after ESTALE; RenewMount and once more on EAuthTokenRejected
 * (iclient.md 2.2); a remount and once more on EUnknownMountID. A
 * mount-scoped request (mount_scoped) carries the current MountID. */
static int call(ic_rpc_client *c, const char *method, bool mount_scoped, json_t *req,
                json_t **reply, ic_rpc_err *err) {
  if (!req) return -ENOMEM;
  char id[IC_MOUNT_ID_MAX] = "";
  bool mounted = mount_scoped && current_mount(c, id);
  const char *given = json_string_value(json_object_get(req, "MountID"));
  if (mount_scoped && !mounted && given) /* ops used without Mount (tests): the caller's ID */
    snprintf(id, sizeof(id), "%s", given);
  bool remounted = false, renewed = false, resent = false;
  int rc;
  for (;;) {
    if (mounted && json_object_set_new(req, "MountID", json_string(id))) {
      rc = -ENOMEM;
      break;
    }
    rc = send1(c, method, req, reply, err);
    if (rc == -ESTALE && !resent) {
      /* imgr lost our retryrpc session (it restarted): the request may or
       * may not have run there; a new session asks again, and a mount the
       * new imgr does not know is answered EUnknownMountID (nothing runs). */
      resent = true;
      continue;
    }
    if (rc == -EACCES && mount_scoped && !renewed) {
      renewed = true;
      log_info("iclient: %s: AuthToken rejected by imgr; renewing the mount", method);
      rc = renew(c, id, true, err);
      if (rc == 0) continue;
      log_error("iclient: RenewMount failed: %s", rc == -EACCES ? "EAuthTokenRejected:" : err->msg);
      break;
    }
    if (rc == -ENOTCONN && mounted && !remounted && strcmp(method, "Unmount") != 0) {
      remounted = true;
      ic_rpc_err merr = {{0}};
      if (remount(c, id, &merr) == 0 && current_mount(c, id)) continue;
    }
    break;
  }
  if (rc == -ESTALE) rc = -EIO;
  json_decref(req);
  return rc;
}

static int r_mount(void *ctx, const ic_mount_req *req, ic_mount_reply *rep, ic_rpc_err *err) {
  ic_rpc_client *c = ctx;
  json_t *reply = NULL;
  int rc = call(c, "Mount", false, ic_json_mount_req(req), &reply, err);
  if (rc) return rc;
  rc = mount_reply(reply, rep, err);
  char *vol = rc == 0 ? strdup(req->volume_name) : NULL;
  if (rc == 0 && !vol) rc = -ENOMEM;
  if (rc) return rc;
  pthread_mutex_lock(&c->mnt_mu); /* the mount later requests carry */
  free(c->volume_name);
  c->volume_name = vol;
  memcpy(c->mount_id, rep->mount_id, sizeof(c->mount_id));
  pthread_mutex_unlock(&c->mnt_mu);
  return 0;
}

static int r_renew(void *ctx, const ic_renew_mount_req *req, ic_rpc_err *err) {
  return call(ctx, "RenewMount", false, ic_json_renew_mount_req(req), NULL, err);
}

static int r_unmount(void *ctx, const ic_mount_id_req *req, ic_rpc_err *err) {
  return call(ctx, "Unmount", true, ic_json_mount_id_req(req), NULL, err);
}

static int r_volume_status(void *ctx, const ic_mount_id_req *req, ic_volume_status_reply *rep,
                           ic_rpc_err *err) {
  json_t *reply = NULL;
  int rc = call(ctx, "VolumeStatus", true, ic_json_mount_id_req(req), &reply, err);
  if (rc) return rc;
  return decoded(ic_json_volume_status_reply(reply, rep), reply, "VolumeStatus", err);
}

static int r_fetch_nonce_range(void *ctx, const ic_mount_id_req *req,
                               ic_fetch_nonce_range_reply *rep, ic_rpc_err *err) {
  json_t *reply = NULL;
  int rc = call(ctx, "FetchNonceRange", true, ic_json_mount_id_req(req), &reply, err);
  if (rc) return rc;
  return decoded(ic_json_fetch_nonce_range_reply(reply, rep), reply, "FetchNonceRange", err);
}

static int r_get_inode(void *ctx, const ic_inode_req *req, ic_get_inode_table_entry_reply *rep,
                       ic_rpc_err *err) {
  json_t *reply = NULL;
  int rc = call(ctx, "GetInodeTableEntry", true, ic_json_inode_req(req), &reply, err);
  if (rc) return rc;
  return decoded(ic_json_get_inode_table_entry_reply(reply, rep), reply, "GetInodeTableEntry", err);
}

static int r_put_inodes(void *ctx, const ic_put_inode_table_entries_req *req, ic_rpc_err *err) {
  return call(ctx, "PutInodeTableEntries", true,
              ic_json_put_inode_table_entries_req(req), NULL, err);
}

static int r_delete_inode(void *ctx, const ic_inode_req *req, ic_rpc_err *err) {
  return call(ctx, "DeleteInodeTableEntry", true, ic_json_inode_req(req), NULL, err);
}

static int r_adjust_open(void *ctx, const ic_adjust_open_count_req *req, ic_rpc_err *err) {
  return call(ctx, "AdjustInodeTableEntryOpenCount", true,
              ic_json_adjust_open_count_req(req), NULL, err);
}

static int r_flush(void *ctx, const ic_mount_id_req *req, ic_rpc_err *err) {
  return call(ctx, "Flush", true, ic_json_mount_id_req(req), NULL, err);
}

static int r_lease(void *ctx, const ic_lease_req *req, ic_lease_reply *rep, ic_rpc_err *err) {
  json_t *reply = NULL;
  int rc = call(ctx, "Lease", true, ic_json_lease_req(req), &reply, err);
  if (rc) return rc;
  return decoded(ic_json_lease_reply(reply, rep), reply, "Lease", err);
}

const ic_imgr_ops ic_rpc_ops = {
    .mount = r_mount,
    .renew_mount = r_renew,
    .unmount = r_unmount,
    .volume_status = r_volume_status,
    .fetch_nonce_range = r_fetch_nonce_range,
    .get_inode_table_entry = r_get_inode,
    .put_inode_table_entries = r_put_inodes,
    .delete_inode_table_entry = r_delete_inode,
    .adjust_inode_table_entry_open_count = r_adjust_open,
    .flush = r_flush,
    .lease = r_lease,
};

/* ---- keep-alive ---- */

static void *keepalive_main(void *arg) {
  ic_rpc_client *c = arg;
  pthread_mutex_lock(&c->ka_mu);
  while (!c->ka_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t at = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + c->renew_period_ns;
    ts.tv_sec = (time_t)(at / 1000000000ull);
    ts.tv_nsec = (long)(at % 1000000000ull);
    pthread_cond_timedwait(&c->ka_cv, &c->ka_mu, &ts);
    if (c->ka_stop) break;
    pthread_mutex_unlock(&c->ka_mu);
    char id[IC_MOUNT_ID_MAX];
    bool mounted = current_mount(c, id);
    if (!mounted) memcpy(id, c->ka_mount_id, sizeof(id));
    ic_rpc_err err = {{0}};
    int rc = renew(c, id, false, &err);
    if (rc == -ESTALE) rc = renew(c, id, false, &err);     /* new retryrpc session */
    if (rc == -EACCES) rc = renew(c, id, true, &err);      /* token expired */
    if (rc == -ENOTCONN && mounted) rc = remount(c, id, &err); /* imgr forgot us */
    if (rc)
      log_warn("iclient: keep-alive RenewMount failed: %s (%d)",
               rc == -EACCES ? "EAuthTokenRejected:" : err.msg, rc);
    pthread_mutex_lock(&c->ka_mu);
  }
  pthread_mutex_unlock(&c->ka_mu);
  return NULL;
}

int ic_rpc_keepalive_start(ic_rpc_client *c, const char *mount_id) {
  if (strlen(mount_id) >= sizeof(c->ka_mount_id)) return -EINVAL;
  pthread_mutex_lock(&c->ka_mu);
  int rc = c->ka_running ? -EALREADY : 0;
  if (rc == 0) {
    strcpy(c->ka_mount_id, mount_id);
    c->ka_stop = false;
    rc = -pthread_create(&c->ka_thread, NULL, keepalive_main, c);
    c->ka_running = rc == 0;
  }
  pthread_mutex_unlock(&c->ka_mu);
  return rc;
}

void ic_rpc_keepalive_stop(ic_rpc_client *c) {
  pthread_mutex_lock(&c->ka_mu);
  bool running = c->ka_running;
  c->ka_stop = true;
  c->ka_running = false;
  pthread_cond_broadcast(&c->ka_cv);
  pthread_mutex_unlock(&c->ka_mu);
  if (running) pthread_join(c->ka_thread, NULL);
}
