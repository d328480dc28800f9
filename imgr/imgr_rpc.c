/* imgr RPC layer: see imgr_rpc.h for the contract, imgr.md section 3. */
#include "imgr_rpc.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imgr_internal.h"
#include "lease.h"
#include "logger.h"
#include "retryrpc.h"
#include "swiftclient.h"
#include "utils.h"

#define MOUNT_ID_LEN 20 /* 15 random bytes, base64 with padding */
#define TOKEN_MAX 4096
#define LEASE_WORKER_RESERVE 4

/* ---- u64 -> count map (open addressing, backward-shift deletion) -------- */

typedef struct {
  uint64_t key;
  int64_t count;
  bool used, del; /* del: "remove when last closed" (volume maps) */
} omap_slot;

typedef struct {
  omap_slot *s;
  size_t cap, n; /* cap is 0 or a power of two */
} omap;

static size_t omap_hash(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return (size_t)k;
}

static omap_slot *omap_find(const omap *m, uint64_t key) {
  if (!m->cap) return NULL;
  for (size_t i = omap_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->s[i].used) return NULL;
    if (m->s[i].key == key) return &m->s[i];
  }
}

static int omap_grow(omap *m) {
  size_t ncap = m->cap ? m->cap * 2 : 16;
  omap_slot *ns = calloc(ncap, sizeof *ns);
  if (!ns) return -ENOMEM;
  for (size_t j = 0; j < m->cap; j++) {
    if (!m->s[j].used) continue;
    size_t i = omap_hash(m->s[j].key) & (ncap - 1);
    while (ns[i].used) i = (i + 1) & (ncap - 1);
    ns[i] = m->s[j];
  }
  free(m->s);
  m->s = ns;
  m->cap = ncap;
  return 0;
}

/* A new zero entry for key (which must be absent). */
static omap_slot *omap_insert(omap *m, uint64_t key) {
  if ((m->n + 1) * 4 > m->cap * 3 && omap_grow(m)) return NULL;
  size_t i = omap_hash(key) & (m->cap - 1);
  while (m->s[i].used) i = (i + 1) & (m->cap - 1);
  m->s[i] = (omap_slot){key, 0, true, false};
  m->n++;
  return &m->s[i];
}

static void omap_remove(omap *m, omap_slot *slot) {
  size_t i = (size_t)(slot - m->s), mask = m->cap - 1;
  m->s[i].used = false;
  m->n--;
  for (size_t j = (i + 1) & mask; m->s[j].used; j = (j + 1) & mask) {
    size_t home = omap_hash(m->s[j].key) & mask;
    /* move j back into the hole at i when its home is not in (i, j] */
    if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
      m->s[i] = m->s[j];
      m->s[j].used = false;
      i = j;
    }
  }
}

/* ---- objects --------------------------------------------------------------- */

typedef struct rvol rvol;

typedef struct mount {
  char id[MOUNT_ID_LEN + 1];
  struct mount *hnext;     /* id hash chain */
  struct mount *vnext;     /* the volume's mount list */
  rvol *rv;
  imgr_volume *vol;        /* this mount's reference; NULL after stop */
  uint64_t client_id;      /* upcall target */
  uint64_t serial;         /* token id for the core's token source */
  char *token;
  uint64_t last_auth_ns, last_seen_ns, last_pick_ns;
  bool token_expired;      /* the auth-token-expired list */
  bool unmounting;         /* gone from the id hash; RPCs get EUnknownMountID */
  bool lease_expired;      /* the lease engine expired it: janitor unmounts */
  unsigned refs;           /* the table's + running handlers' */
  omap opens;              /* inode -> this mount's open count */
} mount;

/* Per volume name: the token source context and the volume-wide open map.
 * Lives until imgr_rpc_destroy (the core may call the token source at any
 * time, even after the last unmount). */
struct rvol {
  imgr_rpc *r;
  char *name;
  rvol *next;
  mount *mounts;           /* live mounts of the volume */
  omap opens;              /* inode -> number of mounts that have it open */
  /* inode -> PutInodeTableEntries/DeleteInodeTableEntry calls between
   * "about to check the lease" and "applied"; a lease grant on the inode is
   * replied to only when it has none (imgr_rpc.h "Race closed"). */
  omap writing;
  pthread_cond_t written;  /* with r->mu: an inode left writing */
};

typedef struct {
  char id[MOUNT_ID_LEN + 1];
} dead_id;

/* bucketstats IMGR.<rpc_stats_group>.<name> (imgr.md 4.15), microseconds */
#define RPC_METHODS 11
typedef struct {
  bs_log2 method[RPC_METHODS]; /* in method_tbl order */
  bs_log2 auth_check;          /* AuthTokenCheckUsecs */
  bs_log2 lease_type[5];       /* SharedLeaseRequestUsecs ... ReleaseLeaseRequestUsecs */
} rpc_stats;

typedef struct {
  imgr_rpc *r;
  size_t i;                    /* index in method_tbl */
} rpc_entry;

struct imgr_rpc {
  imgr_server *srv;
  const imgr_config *cfg;
  imgr_rpc_options opt;
  lease_engine *le;
  rrpc_server *rs;
  bool started, stopped;

  pthread_mutex_t mu;      /* everything below */
  pthread_cond_t cond;     /* janitor wake-up */
  mount **hash;
  size_t hcap;
  size_t nmounts;          /* live mounts + mounts being created */
  uint64_t nopens;         /* volume-wide open entries over all volumes */
  uint64_t next_serial;
  rvol *rvols;
  unsigned lease_waiters;
  unsigned upcalls_running; /* send_upcall calls using rs (cond: cond) */
  bool jan_stop, jan_running;
  pthread_t jan;
  rpc_entry ents[RPC_METHODS];
  rpc_stats stats;
  bool stats_registered;
};

/* ---- small helpers ------------------------------------------------------- */

static uint64_t now_ns(void) { return ut_now_ns(); }

static int fail(char **errstr, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char **errstr, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(errstr, fmt, ap) < 0) *errstr = NULL;
  va_end(ap);
  return rc;
}

static size_t id_hash(const char *id, size_t cap) {
  uint64_t h = 1469598103934665603ULL;
  for (; *id; id++) h = (h ^ (uint8_t)*id) * 1099511628211ULL;
  return (size_t)h & (cap - 1);
}

static mount *find_mount_locked(imgr_rpc *r, const char *id) {
  if (strlen(id) != MOUNT_ID_LEN) return NULL;
  for (mount *m = r->hash[id_hash(id, r->hcap)]; m; m = m->hnext)
    if (strcmp(m->id, id) == 0) return m;
  return NULL;
}

static void unhash_mount_locked(imgr_rpc *r, mount *m) {
  for (mount **p = &r->hash[id_hash(m->id, r->hcap)]; *p; p = &(*p)->hnext)
    if (*p == m) {
      *p = m->hnext;
      break;
    }
}

static void unlist_mount_locked(mount *m) {
  for (mount **p = &m->rv->mounts; *p; p = &(*p)->vnext)
    if (*p == m) {
      *p = m->vnext;
      break;
    }
}

static bool vol_still_served(imgr_rpc *r, imgr_volume *vol) {
  imgr_volume *cur = NULL;
  if (imgr_volume_get_ref(r->srv, vol->name, &cur)) return false;
  imgr_volume_put_ref(cur);
  return cur == vol;
}

static void mount_unref(imgr_rpc *r, mount *m) {
  pthread_mutex_lock(&r->mu);
  bool last = --m->refs == 0;
  pthread_mutex_unlock(&r->mu);
  if (!last) return;
  /* Delete workers hold no reference (imgr_gc.c): when this may be the
   * last one (the volume was unserved), let them finish first. */
  if (m->vol && !vol_still_served(r, m->vol)) imgr_volume_wait_deletes(m->vol);
  imgr_volume_put_ref(m->vol);
  free(m->opens.s);
  free(m->token);
  free(m);
}

/* ---- JSON (case-insensitive member names; null/missing = zero) ------------- */

static const json_t *jmember(const json_t *o, const char *name) {
  if (!json_is_object(o)) return NULL;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v) if (strcasecmp(k, name) == 0) return v;
  return NULL;
}

static int jstr(const json_t *o, const char *name, const char **out) {
  const json_t *v = jmember(o, name);
  if (!v || json_is_null(v)) {
    *out = "";
    return 0;
  }
  if (!json_is_string(v)) return -EINVAL;
  *out = json_string_value(v);
  return 0;
}

static int ju64(const json_t *o, const char *name, uint64_t *out) {
  const json_t *v = jmember(o, name);
  *out = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 0) return -EINVAL;
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

static int ji64(const json_t *o, const char *name, int64_t *out) {
  const json_t *v = jmember(o, name);
  *out = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_integer(v)) return -EINVAL;
  *out = (int64_t)json_integer_value(v);
  return 0;
}

static int bad_request(char **errstr, const char *method) {
  return fail(errstr, -EINVAL, "EInvalidRequest: %s: malformed request", method);
}

/* ---- token source (imgr.md 4.10): the least recently picked healthy mount -- */

static int tsrc_pick(void *ctx, char *buf, size_t buflen, uint64_t *token_id) {
  rvol *rv = ctx;
  int rc = -EACCES;
  pthread_mutex_lock(&rv->r->mu);
  mount *best = NULL;
  for (mount *m = rv->mounts; m; m = m->vnext)
    if (!m->token_expired && m->token[0] &&
        (!best || m->last_pick_ns < best->last_pick_ns))
      best = m;
  if (best && strlen(best->token) < buflen) {
    strcpy(buf, best->token);
    *token_id = best->serial;
    best->last_pick_ns = now_ns();
    rc = 0;
  }
  pthread_mutex_unlock(&rv->r->mu);
  return rc;
}

static void tsrc_rejected(void *ctx, uint64_t token_id) {
  rvol *rv = ctx;
  pthread_mutex_lock(&rv->r->mu);
  for (mount *m = rv->mounts; m; m = m->vnext)
    if (m->serial == token_id) {
      m->token_expired = true;
      log_warn("mount %s: AuthToken refused by Swift; EAuthTokenRejected until RenewMount",
               m->id);
    }
  pthread_mutex_unlock(&rv->r->mu);
}

/* Lease expiry takes precedence over token expiry (imgr.md 4.10). */
static void tsrc_counts(void *ctx, imgr_mount_counts *out) {
  rvol *rv = ctx;
  pthread_mutex_lock(&rv->r->mu);
  for (mount *m = rv->mounts; m; m = m->vnext) {
    if (m->unmounting) continue;
    if (m->lease_expired) out->leases_expired++;
    else if (m->token_expired) out->auth_token_expired++;
    else out->healthy++;
  }
  pthread_mutex_unlock(&rv->r->mu);
}

static rvol *rvol_get_locked(imgr_rpc *r, const char *name, bool *created) {
  *created = false;
  for (rvol *rv = r->rvols; rv; rv = rv->next)
    if (strcmp(rv->name, name) == 0) return rv;
  rvol *rv = calloc(1, sizeof *rv);
  if (!rv || !(rv->name = strdup(name))) {
    free(rv);
    return NULL;
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&rv->written, &ca);
  pthread_condattr_destroy(&ca);
  rv->r = r;
  rv->next = r->rvols;
  r->rvols = rv;
  *created = true;
  return rv;
}

/* ---- storage checks with a mount's own token ------------------------------ */

/* GET object 0 (and, for Mount, the superblock) with token. -EACCES means
 * Swift refused the token; other errors are storage failures. */
static int check_token(imgr_rpc *r, imgr_volume *vol, const char *token, bool full) {
  swift_conn *conn = NULL;
  int rc = imgr_store_connect(r->srv, &vol->store, token, &conn);
  if (rc) return rc;
  ilayout_checkpoint_v1 ck;
  rc = imgr_vol_read_checkpoint(vol, conn, token, &ck);
  if (!rc && full) {
    char name[ILAYOUT_OBJECT_NAME_LEN + 1];
    ilayout_object_number_to_name(ck.superblock_object_number, name);
    uint8_t *buf = ck.superblock_length <= ((uint64_t)64 << 20) ? malloc(ck.superblock_length + 1)
                                                                : NULL;
    size_t got = 0;
    swift_range tail = {SWIFT_RANGE_TAIL, 0, ck.superblock_length};
    rc = buf ? imgr_swift_get(r->srv, conn, vol->store.container, name, tail, buf,
                              ck.superblock_length + 1, &got)
             : -EINVAL;
    if (!rc && got != ck.superblock_length) rc = -EINVAL;
    free(buf);
  }
  swift_conn_destroy(conn);
  return rc;
}

/* ---- common preamble (imgr.md 3.3) ------------------------------------------ */

/* Finds the mount by id, takes a reference and, when auth is set, checks the
 * token (re-checked against Swift every AuthTokenCheckInterval). */
static int preamble(imgr_rpc *r, const char *id, bool auth, mount **out, char **errstr) {
  pthread_mutex_lock(&r->mu);
  mount *m = find_mount_locked(r, id);
  if (!m || m->unmounting || !m->vol) {
    pthread_mutex_unlock(&r->mu);
    return fail(errstr, -ENOENT, "EUnknownMountID: %s", id);
  }
  m->refs++;
  uint64_t t = now_ns();
  m->last_seen_ns = t;
  bool expired = m->token_expired;
  bool recheck = auth && t - m->last_auth_ns >= r->cfg->auth_token_check_interval_ns;
  char *token = recheck ? strdup(m->token) : NULL;
  pthread_mutex_unlock(&r->mu);
  int rc = 0;
  if (auth && !vol_still_served(r, m->vol)) {
    rc = fail(errstr, -ENOENT, "EVolumeBeingDeleted: %s", m->vol->name);
  } else if (auth && expired) {
    rc = fail(errstr, -EACCES, "EAuthTokenRejected: mount %s", id);
  } else if (recheck) {
    rc = token ? check_token(r, m->vol, token, false) : -ENOMEM;
    bs_log2_add(&r->stats.auth_check, (now_ns() - t) / 1000);
    if (rc) {
      log_warn("mount %s: AuthToken check failed: %s", id, strerror(-rc));
      rc = fail(errstr, -EACCES, "EAuthTokenRejected: mount %s", id);
    } else {
      pthread_mutex_lock(&r->mu);
      m->last_auth_ns = t;
      pthread_mutex_unlock(&r->mu);
    }
  }
  free(token);
  if (rc) {
    mount_unref(r, m);
    return rc;
  }
  *out = m;
  return 0;
}

static int lease_fail(char **errstr, int rc, const char *id, uint64_t ino) {
  if (rc == -ESRCH) return fail(errstr, -ENOENT, "EUnknownMountID: %s", id);
  return fail(errstr, -EACCES, "EMissingLease: %016" PRIX64, ino);
}

/* ---- removal of an inode (imgr.md 4.9) --------------------------------------- */

static void remove_inode(imgr_rpc *r, imgr_volume *vol, uint64_t ino) {
  int rc = imgr_volume_delete_inode(vol, ino);
  if (rc)
    log_error("volume %s: deferred removal of inode %016" PRIX64 " failed: %s", vol->name,
              ino, strerror(-rc));
  lease_stop(r->le, vol->name, ino);
}

/* Drops n opens of one mount on ino (r->mu held). Returns true when the
 * inode must now be removed (last close of an inode marked for deletion). */
static bool close_locked(imgr_rpc *r, mount *m, omap_slot *ms, int64_t n) {
  ms->count -= n;
  if (ms->count > 0) return false;
  uint64_t ino = ms->key;
  omap_remove(&m->opens, ms);
  omap_slot *vs = omap_find(&m->rv->opens, ino);
  if (!vs || --vs->count > 0) return false;
  bool del = vs->del;
  omap_remove(&m->rv->opens, vs);
  r->nopens--;
  return del;
}

/* ---- writes in flight (imgr_rpc.h "Race closed") ----------------------------- */

static void writes_end(imgr_rpc *r, rvol *rv, const imgr_inode_entry *e, size_t n) {
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < n; i++) {
    omap_slot *s = omap_find(&rv->writing, e[i].inode_number);
    if (s && --s->count == 0) omap_remove(&rv->writing, s);
  }
  pthread_cond_broadcast(&rv->written);
  pthread_mutex_unlock(&r->mu);
}

/* Before the lease checks of a write: the inodes are marked in flight. */
static int writes_begin(imgr_rpc *r, rvol *rv, const imgr_inode_entry *e, size_t n) {
  pthread_mutex_lock(&r->mu);
  size_t i = 0;
  for (; i < n; i++) {
    omap_slot *s = omap_find(&rv->writing, e[i].inode_number);
    if (!s && !(s = omap_insert(&rv->writing, e[i].inode_number))) break;
    s->count++;
  }
  pthread_mutex_unlock(&r->mu);
  if (i == n) return 0;
  writes_end(r, rv, e, i);
  return -ENOMEM;
}

/* After a grant on ino: wait (at most LeaseRequestTimeout) until no write
 * that may have passed its lease check under the previous holder is
 * still being applied. */
static int writes_wait(imgr_rpc *r, rvol *rv, uint64_t ino) {
  uint64_t dl = now_ns() + r->opt.lease_request_timeout_ns;
  struct timespec ts = {(time_t)(dl / 1000000000ULL), (long)(dl % 1000000000ULL)};
  pthread_mutex_lock(&r->mu);
  int w = 0;
  while (omap_find(&rv->writing, ino) && w != ETIMEDOUT)
    w = pthread_cond_timedwait(&rv->written, &r->mu, &ts);
  bool busy = omap_find(&rv->writing, ino) != NULL;
  pthread_mutex_unlock(&r->mu);
  return busy ? -ETIMEDOUT : 0;
}

/* Best effort (imgr.md 3.1): dropped when the client has no connection.
 * Never called with r->mu held. */
static void send_upcall(imgr_rpc *r, const char *mount_id, uint64_t cid, unsigned type,
                        uint64_t inode) {
  pthread_mutex_lock(&r->mu);
  rrpc_server *rs = r->rs;
  if (rs) r->upcalls_running++;
  pthread_mutex_unlock(&r->mu);
  if (!rs) return;
  char buf[96];
  int n = snprintf(buf, sizeof buf, "{\"RPCInterruptType\":%u,\"InodeNumber\":%" PRIu64 "}",
                   type, inode);
  int rc = rrpc_server_send_upcall(rs, cid, buf, (size_t)n);
  log_trace("upcall to mount %s (client %" PRIu64 "): %s: %d", mount_id, cid, buf, rc);
  pthread_mutex_lock(&r->mu);
  if (--r->upcalls_running == 0) pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->mu);
}

/* ---- unmount (explicit, dead, lease-expired) --------------------------------- */

/* Caller holds a reference on m. Returns -ENOENT when someone else is
 * already unmounting it. The mount leaves the ID table at once (its RPCs
 * get EUnknownMountID) but its token stays available to the volume until
 * the removals of inodes it held open and, if it is the volume's last
 * mount, a final checkpoint are done: after that imgr may have no token. */
static int unmount(imgr_rpc *r, mount *m, const char *why, bool forced) {
  pthread_mutex_lock(&r->mu);
  if (m->unmounting) {
    pthread_mutex_unlock(&r->mu);
    return -ENOENT;
  }
  m->unmounting = true;
  unhash_mount_locked(r, m);
  /* Close every open of the mount; collect inodes to remove. */
  uint64_t *rm = calloc(m->opens.n + 1, sizeof *rm);
  if (!rm) log_error("mount %s: out of memory: inodes unlinked while open stay", m->id);
  size_t nrm = 0;
  for (size_t i = 0; i < m->opens.cap;) {
    omap_slot *s = &m->opens.s[i];
    if (!s->used) {
      i++;
      continue;
    }
    uint64_t ino = s->key;
    /* close_locked may shift a later slot into i: re-examine i */
    if (close_locked(r, m, s, s->count) && rm) rm[nrm++] = ino;
  }
  pthread_mutex_unlock(&r->mu);
  /* A forced unmount is announced (the original never sent it, imgr.md 6.14) */
  if (forced) send_upcall(r, m->id, m->client_id, LEASE_INTERRUPT_UNMOUNT, 0);
  lease_mount_remove(r->le, m->id);
  for (size_t i = 0; i < nrm && m->vol; i++) remove_inode(r, m->vol, rm[i]);
  free(rm);
  pthread_mutex_lock(&r->mu);
  bool last = true;
  for (mount *o = m->rv->mounts; o; o = o->vnext)
    if (o != m && !o->unmounting) last = false;
  pthread_mutex_unlock(&r->mu);
  /* (an unserved volume had its final checkpoint at DELETE /volume) */
  if (last && m->vol && vol_still_served(r, m->vol)) {
    int rc = imgr_volume_flush(m->vol);
    if (rc)
      log_warn("volume %s: checkpoint at the last unmount failed: %s", m->rv->name,
               strerror(-rc));
  }
  pthread_mutex_lock(&r->mu);
  unlist_mount_locked(m);
  r->nmounts--;
  pthread_mutex_unlock(&r->mu);
  log_info("mount %s of volume %s unmounted (%s)", m->id, m->rv->name, why);
  mount_unref(r, m); /* the table's */
  return 0;
}

/* ---- lease engine callbacks ------------------------------------------------------- */

static void on_interrupt(void *arg, const char *mount_id, lease_interrupt_type type,
                         uint64_t inode) {
  imgr_rpc *r = arg;
  pthread_mutex_lock(&r->mu);
  mount *m = find_mount_locked(r, mount_id);
  uint64_t cid = m ? m->client_id : 0;
  pthread_mutex_unlock(&r->mu);
  if (m) send_upcall(r, mount_id, cid, type, inode);
}

static void on_expired(void *arg, const char *mount_id) {
  imgr_rpc *r = arg;
  pthread_mutex_lock(&r->mu);
  mount *m = find_mount_locked(r, mount_id);
  if (m) {
    m->lease_expired = true;
    pthread_cond_broadcast(&r->cond);
  }
  pthread_mutex_unlock(&r->mu);
  log_warn("mount %s ignored LeaseInterruptLimit interrupts: unmounting it", mount_id);
}

/* ---- janitor: lease-expired and dead mounts ------------------------------------- */

static void *janitor(void *arg) {
  imgr_rpc *r = arg;
  pthread_mutex_lock(&r->mu);
  while (!r->jan_stop) {
    uint64_t t = now_ns();
    mount *victim = NULL;
    const char *why = NULL;
    for (size_t b = 0; b < r->hcap && !victim; b++)
      for (mount *m = r->hash[b]; m && !victim; m = m->hnext) {
        if (m->unmounting) continue;
        if (m->lease_expired) {
          victim = m;
          why = "lease expired";
        } else if (r->opt.mount_timeout_ns != UINT64_MAX && m->refs == 1 &&
                   t - m->last_seen_ns >= r->opt.mount_timeout_ns) {
          victim = m;
          why = "no RPC within MountTimeout";
        }
      }
    if (victim) {
      victim->refs++;
      pthread_mutex_unlock(&r->mu);
      unmount(r, victim, why, true);
      mount_unref(r, victim);
      pthread_mutex_lock(&r->mu);
      continue;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t dl = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec +
                  r->opt.janitor_period_ns;
    ts.tv_sec = (time_t)(dl / 1000000000ULL);
    ts.tv_nsec = (long)(dl % 1000000000ULL);
    pthread_cond_timedwait(&r->cond, &r->mu, &ts);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* ---- methods ------------------------------------------------------------------------ */

static void mount_id_new(char out[MOUNT_ID_LEN + 1]) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint8_t raw[15];
  ut_random_bytes(raw, sizeof raw);
  for (size_t i = 0, o = 0; i < sizeof raw; i += 3) {
    uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
    out[o++] = b64[v >> 18 & 63];
    out[o++] = b64[v >> 12 & 63];
    out[o++] = b64[v >> 6 & 63];
    out[o++] = b64[v & 63];
  }
  out[MOUNT_ID_LEN] = '\0';
}

static int rpc_mount(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **errstr) {
  imgr_rpc *r = ctx;
  const char *name, *token;
  if (jstr(req, "VolumeName", &name) || jstr(req, "AuthToken", &token) ||
      strlen(token) >= TOKEN_MAX)
    return bad_request(errstr, "Mount");
  pthread_mutex_lock(&r->mu);
  if (r->nmounts >= r->cfg->mount_limit) {
    pthread_mutex_unlock(&r->mu);
    return fail(errstr, -EUSERS, "ETooManyMounts");
  }
  r->nmounts++; /* the slot is ours while we check */
  pthread_mutex_unlock(&r->mu);
  imgr_volume *vol = NULL;
  mount *m = NULL;
  int rc = imgr_volume_get_ref(r->srv, name, &vol);
  if (rc) {
    rc = fail(errstr, -ENOENT, "EUnknownVolumeName: %s", name);
    goto out;
  }
  rc = check_token(r, vol, token, true);
  if (rc == -EACCES) {
    rc = fail(errstr, rc, "EAuthTokenRejected: volume %s", name);
    goto out;
  } else if (rc) {
    rc = fail(errstr, rc, "Mount: volume %s: checkpoint or superblock unreadable: %s", name,
              strerror(-rc));
    goto out;
  }
  if (!(m = calloc(1, sizeof *m)) || !(m->token = strdup(token))) {
    rc = -ENOMEM;
    goto out;
  }
  m->vol = vol;
  m->client_id = cid;
  m->refs = 2; /* the table's and ours */
  m->last_auth_ns = m->last_seen_ns = now_ns();
  pthread_mutex_lock(&r->mu);
  bool created;
  m->rv = rvol_get_locked(r, name, &created);
  do mount_id_new(m->id);
  while (find_mount_locked(r, m->id));
  rc = m->rv ? lease_mount_add(r->le, m->id, name) : -ENOMEM;
  if (!rc) {
    m->serial = ++r->next_serial;
    size_t b = id_hash(m->id, r->hcap);
    m->hnext = r->hash[b];
    r->hash[b] = m;
    m->vnext = m->rv->mounts;
    m->rv->mounts = m;
  }
  rvol *rv = m->rv;
  pthread_mutex_unlock(&r->mu);
  if (rc) goto out;
  vol = NULL; /* the mount owns the reference */
  imgr_token_source ts = {tsrc_pick, tsrc_rejected, tsrc_counts, rv};
  imgr_volume_set_token_source(m->vol, &ts);
  rc = imgr_volume_activate(m->vol);
  if (rc) {
    log_error("volume %s: activation failed: %s", name, strerror(-rc));
    unmount(r, m, "activation failed", false);
    mount_unref(r, m);
    return fail(errstr, rc, "Mount: volume %s: activation failed: %s", name, strerror(-rc));
  }
  *reply = json_pack("{s:s}", "MountID", m->id);
  log_info("mount %s of volume %s by client %" PRIu64, m->id, name, cid);
  mount_unref(r, m);
  return *reply ? 0 : -ENOMEM;
out:
  if (m) {
    free(m->token);
    free(m);
  }
  imgr_volume_put_ref(vol);
  pthread_mutex_lock(&r->mu);
  r->nmounts--;
  pthread_mutex_unlock(&r->mu);
  return rc;
}

static int rpc_renew_mount(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                           char **errstr) {
  (void)cid;
  (void)reply;
  imgr_rpc *r = ctx;
  const char *id, *token;
  if (jstr(req, "MountID", &id) || jstr(req, "AuthToken", &token) || strlen(token) >= TOKEN_MAX)
    return bad_request(errstr, "RenewMount");
  mount *m;
  int rc = preamble(r, id, false, &m, errstr);
  if (rc) return rc;
  char *copy = strdup(token);
  if (!copy) {
    mount_unref(r, m);
    return -ENOMEM;
  }
  pthread_mutex_lock(&r->mu);
  free(m->token);
  m->token = copy; /* stored first, then checked (imgr.md 3.5) */
  pthread_mutex_unlock(&r->mu);
  rc = check_token(r, m->vol, token, false);
  pthread_mutex_lock(&r->mu);
  m->token_expired = rc != 0;
  if (!rc) m->last_auth_ns = now_ns();
  pthread_mutex_unlock(&r->mu);
  if (rc) rc = fail(errstr, -EACCES, "EAuthTokenRejected: mount %s", id);
  mount_unref(r, m);
  return rc;
}

static int rpc_unmount(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                       char **errstr) {
  (void)cid;
  (void)reply;
  imgr_rpc *r = ctx;
  const char *id;
  if (jstr(req, "MountID", &id)) return bad_request(errstr, "Unmount");
  mount *m;
  int rc = preamble(r, id, false, &m, errstr);
  if (rc) return rc;
  rc = unmount(r, m, "Unmount", false);
  mount_unref(r, m);
  return rc ? fail(errstr, -ENOENT, "EUnknownMountID: %s", id) : 0;
}

/* Methods that take only MountID share this front: decode, preamble. */
static int simple_front(imgr_rpc *r, const json_t *req, const char *method, mount **m,
                        char **errstr) {
  const char *id;
  if (jstr(req, "MountID", &id)) return bad_request(errstr, method);
  return preamble(r, id, true, m, errstr);
}

static int rpc_volume_status(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                             char **errstr) {
  (void)cid;
  imgr_rpc *r = ctx;
  mount *m;
  int rc = simple_front(r, req, "VolumeStatus", &m, errstr);
  if (rc) return rc;
  imgr_volume_status st;
  rc = imgr_volume_status_get(m->vol, &st);
  if (rc) {
    rc = fail(errstr, rc, "VolumeStatus: %s", strerror(-rc));
  } else {
    *reply = json_pack("{s:I,s:I,s:I,s:I}", "NumInodes", (json_int_t)st.num_inodes,
                       "ObjectCount", (json_int_t)st.object_count, "BytesWritten",
                       (json_int_t)st.bytes_written, "BytesReferenced",
                       (json_int_t)st.bytes_referenced);
    if (!*reply) rc = -ENOMEM;
  }
  mount_unref(r, m);
  return rc;
}

static int rpc_fetch_nonce_range(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                                 char **errstr) {
  (void)cid;
  imgr_rpc *r = ctx;
  mount *m;
  int rc = simple_front(r, req, "FetchNonceRange", &m, errstr);
  if (rc) return rc;
  uint64_t next = 0, count = 0;
  rc = imgr_volume_fetch_nonces(m->vol, &next, &count);
  if (rc) {
    rc = fail(errstr, rc, "FetchNonceRange: reservation not persisted: %s", strerror(-rc));
  } else {
    *reply = json_pack("{s:I,s:I}", "NextNonce", (json_int_t)next, "NumNoncesFetched",
                       (json_int_t)count);
    if (!*reply) rc = -ENOMEM;
  }
  mount_unref(r, m);
  return rc;
}

static int rpc_flush(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                     char **errstr) {
  (void)cid;
  (void)reply;
  imgr_rpc *r = ctx;
  mount *m;
  int rc = simple_front(r, req, "Flush", &m, errstr);
  if (rc) return rc;
  /* No lock of ours is held: the checkpoint may take its time (imgr.md 6.9). */
  rc = imgr_volume_flush(m->vol);
  if (rc) rc = fail(errstr, rc, "Flush: checkpoint failed: %s", strerror(-rc));
  mount_unref(r, m);
  return rc;
}

static int rpc_get_inode(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                         char **errstr) {
  (void)cid;
  imgr_rpc *r = ctx;
  const char *id;
  uint64_t ino;
  if (jstr(req, "MountID", &id) || ju64(req, "InodeNumber", &ino))
    return bad_request(errstr, "GetInodeTableEntry");
  mount *m;
  int rc = preamble(r, id, true, &m, errstr);
  if (rc) return rc;
  if ((rc = lease_check(r->le, id, ino, LEASE_ACCESS_READ))) {
    rc = lease_fail(errstr, rc, id, ino);
    goto out;
  }
  imgr_inode_entry e;
  rc = imgr_volume_get_inode(m->vol, ino, &e);
  if (rc == -ENOENT) {
    rc = fail(errstr, rc, "EUnknownInodeNumber: %016" PRIX64, ino);
  } else if (rc) {
    rc = fail(errstr, rc, "GetInodeTableEntry: inode table unreadable: %s", strerror(-rc));
  } else {
    *reply = json_pack("{s:I,s:I}", "InodeHeadObjectNumber",
                       (json_int_t)e.inode_head_object_number, "InodeHeadLength",
                       (json_int_t)e.inode_head_length);
    if (!*reply) rc = -ENOMEM;
  }
out:
  mount_unref(r, m);
  return rc;
}

static int decode_put(const json_t *req, imgr_put_batch *b, imgr_inode_entry **ents,
                      uint64_t **deref) {
  const json_t *a = jmember(req, "UpdatedInodeTableEntryArray");
  const json_t *d = jmember(req, "DereferencedObjectNumberArray");
  if ((a && !json_is_null(a) && !json_is_array(a)) || (d && !json_is_null(d) && !json_is_array(d)))
    return -EINVAL;
  size_t na = json_is_array(a) ? json_array_size(a) : 0;
  size_t nd = json_is_array(d) ? json_array_size(d) : 0;
  *ents = calloc(na + 1, sizeof **ents);
  *deref = calloc(nd + 1, sizeof **deref);
  if (!*ents || !*deref) return -ENOMEM;
  for (size_t i = 0; i < na; i++) {
    const json_t *e = json_array_get(a, i);
    if (!json_is_object(e) || ju64(e, "InodeNumber", &(*ents)[i].inode_number) ||
        ju64(e, "InodeHeadObjectNumber", &(*ents)[i].inode_head_object_number) ||
        ju64(e, "InodeHeadLength", &(*ents)[i].inode_head_length))
      return -EINVAL;
  }
  for (size_t i = 0; i < nd; i++) {
    const json_t *v = json_array_get(d, i);
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -EINVAL;
    (*deref)[i] = (uint64_t)json_integer_value(v);
  }
  *b = (imgr_put_batch){*ents, na, 0, 0, 0, *deref, nd};
  if (ji64(req, "SuperBlockInodeObjectCountAdjustment", &b->object_count_adjustment) ||
      ji64(req, "SuperBlockInodeBytesReferencedAdjustment", &b->bytes_referenced_adjustment))
    return -EINVAL;
  /* older name of BytesWritten (imgr.md 3.5) */
  const char *bw = jmember(req, "SuperBlockInodeBytesWrittenAdjustment")
                       ? "SuperBlockInodeBytesWrittenAdjustment"
                       : "SuperBlockInodeObjectSizeAdjustment";
  return ji64(req, bw, &b->bytes_written_adjustment);
}

static int rpc_put_inodes(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                          char **errstr) {
  (void)cid;
  (void)reply;
  imgr_rpc *r = ctx;
  const char *id;
  imgr_put_batch b;
  imgr_inode_entry *ents = NULL;
  uint64_t *deref = NULL;
  int rc = jstr(req, "MountID", &id) ? -EINVAL : decode_put(req, &b, &ents, &deref);
  if (rc) {
    free(ents);
    free(deref);
    return rc == -ENOMEM ? rc : bad_request(errstr, "PutInodeTableEntries");
  }
  mount *m;
  if ((rc = preamble(r, id, true, &m, errstr))) goto out_free;
  if ((rc = writes_begin(r, m->rv, ents, b.n_entries))) {
    mount_unref(r, m);
    goto out_free;
  }
  for (size_t i = 0; i < b.n_entries; i++) {
    if ((rc = lease_check(r->le, id, ents[i].inode_number, LEASE_ACCESS_WRITE))) {
      rc = lease_fail(errstr, rc, id, ents[i].inode_number);
      break;
    }
  }
  if (!rc && (rc = imgr_volume_put_inodes(m->vol, &b)))
    rc = rc == -EINVAL ? fail(errstr, rc,
                              "EInvalidRequest: PutInodeTableEntries: an inode or object "
                              "number was never reserved, a counter would wrap, or an object "
                              "may not be dereferenced")
                       : fail(errstr, rc, "PutInodeTableEntries: %s", strerror(-rc));
  writes_end(r, m->rv, ents, b.n_entries);
  mount_unref(r, m);
out_free:
  free(ents);
  free(deref);
  return rc;
}

static int rpc_delete_inode(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                            char **errstr) {
  (void)cid;
  (void)reply;
  imgr_rpc *r = ctx;
  const char *id;
  uint64_t ino;
  if (jstr(req, "MountID", &id) || ju64(req, "InodeNumber", &ino))
    return bad_request(errstr, "DeleteInodeTableEntry");
  mount *m;
  int rc = preamble(r, id, true, &m, errstr);
  if (rc) return rc;
  const imgr_inode_entry we = {ino, 0, 0};
  if ((rc = writes_begin(r, m->rv, &we, 1))) {
    mount_unref(r, m);
    return rc;
  }
  if ((rc = lease_check(r->le, id, ino, LEASE_ACCESS_WRITE))) {
    rc = lease_fail(errstr, rc, id, ino);
    goto out;
  }
  imgr_inode_entry e;
  if ((rc = imgr_volume_get_inode(m->vol, ino, &e))) {
    rc = rc == -ENOENT ? fail(errstr, rc, "EUnknownInodeNumber: %016" PRIX64, ino)
                       : fail(errstr, rc, "DeleteInodeTableEntry: %s", strerror(-rc));
    goto out;
  }
  pthread_mutex_lock(&r->mu);
  omap_slot *vs = omap_find(&m->rv->opens, ino);
  bool open = vs != NULL;
  if (vs) vs->del = true; /* removed at the last close */
  pthread_mutex_unlock(&r->mu);
  if (!open) {
    rc = imgr_volume_delete_inode(m->vol, ino);
    if (rc == -ENOENT) rc = fail(errstr, rc, "EUnknownInodeNumber: %016" PRIX64, ino);
    else if (rc) rc = fail(errstr, rc, "DeleteInodeTableEntry: %s", strerror(-rc));
  }
  writes_end(r, m->rv, &we, 1);
  /* The lease of a removed inode is revoked (imgr.md 4.9 step 6); its
   * callbacks take r->mu, so no lock of ours is held. */
  if (!rc && !open) lease_stop(r->le, m->vol->name, ino);
  mount_unref(r, m);
  return rc;
out:
  writes_end(r, m->rv, &we, 1);
  mount_unref(r, m);
  return rc;
}

static int rpc_adjust_open(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                           char **errstr) {
  (void)cid;
  (void)reply;
  imgr_rpc *r = ctx;
  const char *id;
  uint64_t ino;
  int64_t adj;
  if (jstr(req, "MountID", &id) || ju64(req, "InodeNumber", &ino) ||
      ji64(req, "Adjustment", &adj))
    return bad_request(errstr, "AdjustInodeTableEntryOpenCount");
  if (adj == 0) return fail(errstr, -EINVAL, "EBadOpenCountAdjustment: %016" PRIX64 " 0", ino);
  mount *m;
  int rc = preamble(r, id, true, &m, errstr);
  if (rc) return rc;
  /* The newest api.go needs no lease for inode 0 (imgr.md 3.5). */
  if (ino != 0 && (rc = lease_check(r->le, id, ino, LEASE_ACCESS_READ))) {
    rc = lease_fail(errstr, rc, id, ino);
    mount_unref(r, m);
    return rc;
  }
  bool remove = false;
  pthread_mutex_lock(&r->mu);
  omap_slot *ms = omap_find(&m->opens, ino);
  int64_t cur = ms ? ms->count : 0;
  if (m->unmounting) {
    rc = fail(errstr, -ENOENT, "EUnknownMountID: %s", id);
  } else if ((adj < 0 && -(adj + 1) >= cur) || (adj > 0 && cur > INT64_MAX - adj)) {
    /* -(adj+1) >= cur  <=>  -adj > cur, without overflow at INT64_MIN */
    rc = fail(errstr, -EINVAL, "EBadOpenCountAdjustment: %016" PRIX64 " %" PRId64, ino, adj);
  } else if (adj > 0) {
    if (!ms) {
      omap_slot *vs = omap_find(&m->rv->opens, ino);
      if (!vs && r->nopens >= r->cfg->open_file_limit) {
        rc = fail(errstr, -ENFILE, "ETooManyOpens");
      } else if (!vs && !(vs = omap_insert(&m->rv->opens, ino))) {
        rc = -ENOMEM;
      } else {
        bool new_vs = vs->count == 0;
        if (!(ms = omap_insert(&m->opens, ino))) {
          if (new_vs) omap_remove(&m->rv->opens, vs);
          rc = -ENOMEM;
        } else {
          if (new_vs) r->nopens++;
          vs->count++;
        }
      }
    }
    if (!rc) ms->count += adj;
  } else {
    remove = close_locked(r, m, ms, -adj);
  }
  pthread_mutex_unlock(&r->mu);
  if (remove) remove_inode(r, m->vol, ino);
  mount_unref(r, m);
  return rc;
}

static bool lease_type_ok(uint64_t t) { return t <= LEASE_REQUEST_RELEASE; }

/* lease_request_wait with LeaseRequestTimeout -- unless workers - 4
 * handlers are already in here, in which case a request that would wait is
 * withdrawn at once (-EBUSY; one answered at once still is): waiting
 * handlers hold worker threads, and the Release that would answer them
 * needs one. */
static int lease_wait(imgr_rpc *r, const char *id, uint64_t ino, lease_request_type type,
                      lease_reply *out) {
  pthread_mutex_lock(&r->mu);
  bool over = r->lease_waiters >= r->opt.workers - LEASE_WORKER_RESERVE;
  if (!over) r->lease_waiters++;
  pthread_mutex_unlock(&r->mu);
  int rc = lease_request_wait(r->le, id, ino, type, over ? 0 : r->opt.lease_request_timeout_ns,
                              out);
  if (over) return rc == -ETIMEDOUT ? -EBUSY : rc;
  pthread_mutex_lock(&r->mu);
  r->lease_waiters--;
  pthread_mutex_unlock(&r->mu);
  return rc;
}

static int rpc_lease(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                     char **errstr) {
  (void)cid;
  imgr_rpc *r = ctx;
  const char *id;
  uint64_t ino, type;
  if (jstr(req, "MountID", &id) || ju64(req, "InodeNumber", &ino) ||
      ju64(req, "LeaseRequestType", &type))
    return bad_request(errstr, "Lease");
  if (!lease_type_ok(type))
    return fail(errstr, -EINVAL, "ELeaseRequestDenied: LeaseRequestType %" PRIu64 " not supported",
                type);
  mount *m;
  int rc = preamble(r, id, true, &m, errstr);
  if (rc) return rc;
  lease_reply lr = LEASE_REPLY_DENIED;
  uint64_t t0 = now_ns();
  rc = lease_wait(r, id, ino, (lease_request_type)type, &lr);
  bs_log2_add(&r->stats.lease_type[type], (now_ns() - t0) / 1000);
  if (!rc && (lr == LEASE_REPLY_SHARED || lr == LEASE_REPLY_EXCLUSIVE ||
              lr == LEASE_REPLY_PROMOTED)) {
    /* Writes that passed their lease check before this grant (an expired
     * holder's) are applied before the new holder is told. If that takes
     * too long the grant stays in the engine unannounced, which is safe:
     * the mount keeps at least the rights it believes it has. */
    if ((rc = writes_wait(r, m->rv, ino)))
      log_warn("mount %s: grant on inode %016" PRIX64 " not replied: writes still in flight",
               id, ino);
  }
  mount_unref(r, m);
  switch (rc) {
  case 0:
    *reply = json_pack("{s:i}", "LeaseResponseType", (int)lr);
    return *reply ? 0 : -ENOMEM;
  case -ENOENT:
    return fail(errstr, rc,
                "ELeaseRequestDenied: LeaseRequestType %" PRIu64
                " not allowed for non-existent Lease",
                type);
  case -ESRCH:
    return fail(errstr, -ENOENT, "EUnknownMountID: %s", id);
  case -ETIMEDOUT:
    return fail(errstr, rc, "ELeaseRequestDenied: LeaseRequestType %" PRIu64 " timed out", type);
  case -EBUSY:
  case -ENOBUFS:
  case -ENOSPC:
    return fail(errstr, rc,
                "ELeaseRequestDenied: LeaseRequestType %" PRIu64 " too many waiting requests",
                type);
  default:
    return fail(errstr, rc, "Lease: %s", strerror(-rc));
  }
}

/* ---- dispatch: stats and TraceEnabled lines around every method ------------ */

static const struct {
  const char *name;
  rrpc_handler fn;
  const char *stat; /* bucketstats name */
} method_tbl[RPC_METHODS] = {
    {"AdjustInodeTableEntryOpenCount", rpc_adjust_open,
     "AdjustInodeTableEntryOpenCountUsecs"},
    {"DeleteInodeTableEntry", rpc_delete_inode, "DeleteInodeTableEntryUsecs"},
    {"FetchNonceRange", rpc_fetch_nonce_range, "FetchNonceRangeUsecs"},
    {"Flush", rpc_flush, "FlushUsecs"},
    {"GetInodeTableEntry", rpc_get_inode, "GetInodeTableEntryUsecs"},
    {"Lease", rpc_lease, "LeaseUsecs"},
    {"Mount", rpc_mount, "MountUsecs"},
    {"PutInodeTableEntries", rpc_put_inodes, "PutInodeTableEntriesUsecs"},
    {"RenewMount", rpc_renew_mount, "RenewMountUsecs"},
    {"Unmount", rpc_unmount, "UnmountUsecs"},
    {"VolumeStatus", rpc_volume_status, "VolumeStatusUsecs"},
};

/* JSON text for a trace line, the AuthToken withheld. */
static char *trace_text(const json_t *j) {
  json_t *c = json_is_object(j) ? json_deep_copy(j) : NULL;
  if (c && json_object_get(c, "AuthToken"))
    json_object_set_new(c, "AuthToken", json_string("(withheld)"));
  char *s = json_dumps(c ? c : j, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(c);
  return s;
}

static int dispatch(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **errstr) {
  rpc_entry *e = ctx;
  const char *name = method_tbl[e->i].name;
  bool trace = log_trace_enabled();
  if (trace) {
    char *t = trace_text(req);
    log_trace("==> %s(client %" PRIu64 ", %s)", name, cid, t ? t : "?");
    free(t);
  }
  uint64_t t0 = now_ns();
  int rc = method_tbl[e->i].fn(e->r, cid, req, reply, errstr);
  bs_log2_add(&e->r->stats.method[e->i], (now_ns() - t0) / 1000);
  if (trace) {
    char *t = rc ? NULL : trace_text(*reply ? *reply : json_null());
    log_trace("<== %s: %s", name, rc ? (*errstr ? *errstr : strerror(-rc)) : t ? t : "?");
    free(t);
  }
  return rc;
}

int imgr_rpc_call(imgr_rpc *r, uint64_t client_id, const char *method, const json_t *request,
                  json_t **reply, char **errstr) {
  *reply = NULL;
  *errstr = NULL;
  for (size_t i = 0; i < RPC_METHODS; i++)
    if (strcmp(method_tbl[i].name, method) == 0)
      return dispatch(&r->ents[i], client_id, request ? request : json_null(), reply, errstr);
  return -ENOSYS;
}

static int register_stats(imgr_rpc *r, const char *group) {
  static const char *const lease_names[5] = {
      "SharedLeaseRequestUsecs", "PromoteLeaseRequestUsecs", "ExclusiveLeaseRequestUsecs",
      "DemoteLeaseRequestUsecs", "ReleaseLeaseRequestUsecs"};
  bs_stat_desc d[RPC_METHODS + 6];
  size_t n = 0;
  for (size_t i = 0; i < RPC_METHODS; i++)
    d[n++] = (bs_stat_desc)BS_DESC_LOG2(&r->stats.method[i], method_tbl[i].stat);
  d[n++] = (bs_stat_desc)BS_DESC_LOG2(&r->stats.auth_check, "AuthTokenCheckUsecs");
  for (size_t i = 0; i < 5; i++)
    d[n++] = (bs_stat_desc)BS_DESC_LOG2(&r->stats.lease_type[i], lease_names[i]);
  int rc = bs_register("IMGR", group, d, n);
  r->stats_registered = rc == 0;
  return rc;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

void imgr_rpc_options_defaults(imgr_rpc_options *o) {
  *o = (imgr_rpc_options){3600ULL * 1000000000ULL, 30ULL * 1000000000ULL, 64, 1000000000ULL,
                          "Lease", "RPC"};
}

/* err = "IMGR.<key>: <detail>" */
static int opt_err(char *err, size_t errlen, const char *key, const char *detail) {
  snprintf(err, errlen, "IMGR.%s: %s", key, detail);
  return -EINVAL;
}

int imgr_rpc_options_from_conf(const conf_map *m, imgr_rpc_options *o, char *err,
                               size_t errlen) {
  char e[CONF_ERR_MAX];
  uint64_t v;
  uint32_t w;
  if (!conf_is_missing_or_empty(m, "IMGR", "MountTimeout")) {
    if (conf_get_duration_ns(m, "IMGR", "MountTimeout", &v, e, sizeof e))
      return opt_err(err, errlen, "MountTimeout", e);
    o->mount_timeout_ns = v ? v : UINT64_MAX;
  }
  if (!conf_is_missing_or_empty(m, "IMGR", "LeaseRequestTimeout")) {
    if (conf_get_duration_ns(m, "IMGR", "LeaseRequestTimeout", &v, e, sizeof e))
      return opt_err(err, errlen, "LeaseRequestTimeout", e);
    if (!v) return opt_err(err, errlen, "LeaseRequestTimeout", "must be > 0");
    o->lease_request_timeout_ns = v;
  }
  if (!conf_is_missing_or_empty(m, "IMGR", "RetryRPCWorkers")) {
    if (conf_get_u32(m, "IMGR", "RetryRPCWorkers", &w, e, sizeof e))
      return opt_err(err, errlen, "RetryRPCWorkers", e);
    if (w < 8 || w > 4096) return opt_err(err, errlen, "RetryRPCWorkers", "must be 8..4096");
    o->workers = w;
  }
  return 0;
}

int imgr_rpc_create(imgr_server *srv, const imgr_rpc_options *o, imgr_rpc **out) {
  if (!o || o->workers < 8 || !o->lease_request_timeout_ns || !o->janitor_period_ns)
    return -EINVAL;
  const imgr_config *c = imgr_server_config(srv);
  imgr_rpc *r = calloc(1, sizeof *r);
  if (!r) return -ENOMEM;
  r->srv = srv;
  r->cfg = c;
  r->opt = *o;
  pthread_mutex_init(&r->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cond, &ca);
  pthread_condattr_destroy(&ca);
  r->hcap = 64;
  while (r->hcap < c->mount_limit && r->hcap < 65536) r->hcap *= 2;
  r->hash = calloc(r->hcap, sizeof *r->hash);
  lease_config lc;
  lease_config_defaults(&lc);
  lc.min_lease_duration_ns = c->min_lease_duration_ns;
  lc.lease_interrupt_interval_ns = c->lease_interrupt_interval_ns;
  lc.lease_interrupt_limit = c->lease_interrupt_limit;
  lc.lease_evict_low_limit = c->lease_evict_low_limit;
  lc.lease_evict_high_limit = c->lease_evict_high_limit;
  lc.max_mounts = c->mount_limit;
  lc.interrupt = on_interrupt;
  lc.expired = on_expired;
  lc.cb_arg = r;
  lc.stats_group = o->lease_stats_group;
  int rc = r->hash ? lease_engine_create(&lc, &r->le) : -ENOMEM;
  if (rc) goto fail;
  rrpc_method methods[RPC_METHODS];
  for (size_t i = 0; i < RPC_METHODS; i++) {
    r->ents[i] = (rpc_entry){r, i};
    methods[i] = (rrpc_method){method_tbl[i].name, dispatch, &r->ents[i]};
  }
  if (o->rpc_stats_group && (rc = register_stats(r, o->rpc_stats_group))) goto fail;
  rrpc_server_config sc = {0};
  sc.addr = c->public_ip_addr;
  sc.port = c->retry_rpc_port;
  sc.long_trim_ns = c->retry_rpc_ttl_completed_ns;
  sc.short_trim_ns = c->retry_rpc_ack_trim_ns;
  sc.deadline_io_ns = c->retry_rpc_deadline_io_ns;
  sc.keepalive_ns = c->retry_rpc_keep_alive_period_ns;
  if (c->retry_rpc_cert_file_path[0]) {
    sc.tls_cert_file = c->retry_rpc_cert_file_path;
    sc.tls_key_file = c->retry_rpc_key_file_path;
  }
  sc.workers = o->workers;
  sc.log_enabled = c->retry_rpc_log_enabled;
  rc = rrpc_server_create(&sc, methods, RPC_METHODS, &r->rs);
  if (rc) goto fail;
  *out = r;
  return 0;
fail:
  if (r->stats_registered) bs_unregister("IMGR", o->rpc_stats_group);
  lease_engine_destroy(r->le);
  free(r->hash);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cond);
  free(r);
  return rc;
}

int imgr_rpc_start(imgr_rpc *r) {
  int rc = rrpc_server_start(r->rs);
  if (rc) return rc;
  if ((rc = lease_engine_timer_start(r->le))) return rc;
  if ((rc = -pthread_create(&r->jan, NULL, janitor, r))) return rc;
  r->jan_running = true;
  r->started = true;
  log_info("retryrpc server listening on %s:%u%s", r->cfg->public_ip_addr,
           (unsigned)rrpc_server_port(r->rs), r->cfg->retry_rpc_cert_file_path[0] ? " (TLS)" : "");
  return 0;
}

uint16_t imgr_rpc_port(const imgr_rpc *r) { return rrpc_server_port(r->rs); }

size_t imgr_rpc_mount_count(imgr_rpc *r) {
  pthread_mutex_lock(&r->mu);
  size_t n = 0;
  for (size_t b = 0; b < r->hcap; b++)
    for (mount *m = r->hash[b]; m; m = m->hnext) n++;
  pthread_mutex_unlock(&r->mu);
  return n;
}

void imgr_rpc_stop(imgr_rpc *r) {
  if (!r || r->stopped) return;
  r->stopped = true;
  /* 1. No more timer pops or janitor unmounts (their callbacks send
   * upcalls). */
  pthread_mutex_lock(&r->mu);
  r->jan_stop = true;
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->mu);
  if (r->jan_running) pthread_join(r->jan, NULL);
  r->jan_running = false;
  lease_engine_timer_stop(r->le);
  /* 2. Waiting Lease handlers are answered (Denied) now rather than at
   * their deadline: the retryrpc server waits for its handlers. */
  pthread_mutex_lock(&r->mu);
  size_t n = 0;
  for (size_t b = 0; b < r->hcap; b++)
    for (mount *m = r->hash[b]; m; m = m->hnext) n++;
  char (*ids)[MOUNT_ID_LEN + 1] = calloc(n + 1, sizeof *ids);
  size_t k = 0;
  for (size_t b = 0; ids && b < r->hcap; b++)
    for (mount *m = r->hash[b]; m; m = m->hnext) memcpy(ids[k++], m->id, sizeof ids[0]);
  pthread_mutex_unlock(&r->mu);
  for (size_t i = 0; i < k; i++) lease_mount_remove(r->le, ids[i]);
  free(ids);
  /* 3. Upcalls stop using the server before it goes. */
  pthread_mutex_lock(&r->mu);
  rrpc_server *rs = r->rs;
  r->rs = NULL;
  while (r->upcalls_running) pthread_cond_wait(&r->cond, &r->mu);
  pthread_mutex_unlock(&r->mu);
  rrpc_server_destroy(rs); /* waits for running handlers */
  /* 4. The volumes' references go; the mounts (and their tokens, which the
   * final checkpoint may use) stay until destroy. */
  pthread_mutex_lock(&r->mu);
  for (size_t b = 0; b < r->hcap; b++)
    for (mount *m = r->hash[b]; m; m = m->hnext) {
      imgr_volume *v = m->vol;
      m->vol = NULL;
      pthread_mutex_unlock(&r->mu);
      imgr_volume_put_ref(v);
      pthread_mutex_lock(&r->mu);
    }
  pthread_mutex_unlock(&r->mu);
}

void imgr_rpc_destroy(imgr_rpc *r) {
  if (!r) return;
  imgr_rpc_stop(r);
  for (size_t b = 0; b < r->hcap; b++) {
    while (r->hash[b]) {
      mount *m = r->hash[b];
      r->hash[b] = m->hnext;
      lease_mount_remove(r->le, m->id);
      free(m->opens.s);
      free(m->token);
      free(m);
    }
  }
  while (r->rvols) {
    rvol *rv = r->rvols;
    r->rvols = rv->next;
    pthread_cond_destroy(&rv->written);
    free(rv->writing.s);
    free(rv->opens.s);
    free(rv->name);
    free(rv);
  }
  lease_engine_destroy(r->le);
  if (r->stats_registered) bs_unregister("IMGR", r->opt.rpc_stats_group);
  free(r->hash);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cond);
  free(r);
}
