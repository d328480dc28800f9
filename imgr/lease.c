/*
 * lease engine: see lease.h for the contract and imgr.md 3.6 for the rules.
 *
 * Everything below runs under e->mu except the delivery of the outbox
 * (deliver()), which every public entry point does after unlocking.
 */
#include "lease.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bucketstats.h"
#include "logger.h"

#define CONTAINER(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

/* ---- intrusive circular list ---- */

typedef struct dl { struct dl *prev, *next; } dl;

static void dl_init(dl *h) { h->prev = h->next = h; }
static bool dl_empty(const dl *h) { return h->next == h; }
static void dl_push_tail(dl *h, dl *n) {
  n->prev = h->prev; n->next = h; h->prev->next = n; h->prev = n;
}
static void dl_del(dl *n) {
  n->prev->next = n->next; n->next->prev = n->prev; dl_init(n);
}
static dl *dl_first(dl *h) { return dl_empty(h) ? NULL : h->next; }
static size_t dl_len(const dl *h) {
  size_t n = 0;
  for (const dl *p = h->next; p != h; p = p->next) n++;
  return n;
}

/* ---- chained hash of intrusive nodes; callers walk the bucket ---- */

typedef struct hnode { struct hnode *next; uint64_t hash; } hnode;
typedef struct { hnode **b; size_t nb, n; } htab;

static int ht_init(htab *t) {
  t->nb = 64; t->n = 0;
  t->b = calloc(t->nb, sizeof *t->b);
  return t->b ? 0 : -ENOMEM;
}
static hnode *ht_bucket(const htab *t, uint64_t h) { return t->b[h & (t->nb - 1)]; }
static void ht_insert(htab *t, hnode *n, uint64_t h) {
  if (t->n >= t->nb) { /* grow; on failure keep the longer chains */
    size_t nb = t->nb * 2;
    hnode **b = calloc(nb, sizeof *b);
    if (b) {
      for (size_t i = 0; i < t->nb; i++)
        for (hnode *p = t->b[i], *nx; p; p = nx) {
          nx = p->next; p->next = b[p->hash & (nb - 1)]; b[p->hash & (nb - 1)] = p;
        }
      free(t->b); t->b = b; t->nb = nb;
    }
  }
  n->hash = h;
  n->next = t->b[h & (t->nb - 1)];
  t->b[h & (t->nb - 1)] = n;
  t->n++;
}
static void ht_remove(htab *t, hnode *n) {
  for (hnode **pp = &t->b[n->hash & (t->nb - 1)]; *pp; pp = &(*pp)->next)
    if (*pp == n) { *pp = n->next; t->n--; return; }
}

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
  return x;
}
static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return mix64(h);
}

/* ---- objects ---- */

typedef enum { EV_REPLY, EV_INTERRUPT, EV_EXPIRED } ev_kind;

/* An outbox entry. Reply events are allocated with the request so that
 * answering never needs memory; interrupt events are allocated when sent
 * (failure drops the upcall, which is best effort anyway). */
typedef struct event {
  struct event *next;
  ev_kind kind;
  lease_reply_fn fn;
  void *arg;
  lease_reply reply;
  lease_interrupt_type itype;
  uint64_t inode;
  char mount_id[LEASE_MOUNT_ID_MAX + 1];
} event;

typedef struct volume {
  dl link;
  size_t refs; /* mounts + leases */
  char *name;
} volume;

typedef struct mount {
  hnode h;
  volume *vol;
  dl recs;             /* rec.mlink */
  bool expired;
  struct mount *expired_next; /* ctx list of mounts expired in this step */
  event *expire_ev;    /* preallocated "expired" notice */
  char id[LEASE_MOUNT_ID_MAX + 1];
} mount;

struct lease;

typedef struct rec {
  hnode h;             /* e->recs, key (mount, inode) */
  dl link;             /* shared, releasing or queue list of the lease */
  dl mlink;            /* mount->recs */
  mount *m;
  struct lease *l;
  lease_record_state st;
  /* A pending answer: ev holds fn/arg until the reply is decided. */
  event *ev;
  lease_reply *sync;   /* set while the requesting call is still running */
  uint64_t ticket;
  bool waiting;        /* counted in e->nwaiting */
} rec;

typedef enum { TIMER_NONE, TIMER_LONG_AGO, TIMER_INTERRUPT } timer_kind;

typedef struct lease {
  hnode h;             /* e->leases, key (volume, inode) */
  volume *vol;
  uint64_t inode;
  lease_state st;
  dl shared, releasing, queue;
  rec *excl, *demoting, *promoting;
  timer_kind tk;
  uint64_t deadline;
  dl tlink;
  uint32_t sent;       /* interrupts sent in the current round */
  bool stopping;
  dl lru;
} lease;

typedef struct {
  bs_total shared_grants, exclusive_grants, promotions, demotions, releases, denials,
      release_interrupts, demote_interrupts, expiries, expired_mounts, stops, evictions,
      cancels, rejected_full;
} stats_t;

struct lease_engine {
  pthread_mutex_t mu;
  lease_config cfg;
  htab mounts, recs, leases;
  dl volumes;
  dl lru;
  size_t nleases, nmounts, nwaiting;
  dl timers[3]; /* indexed by timer_kind; each list is sorted by deadline */
  uint64_t next_ticket;
  stats_t st;
  bool stats_registered;
  /* built-in timer thread */
  pthread_cond_t tcond;
  pthread_t tthread;
  bool trunning, tstop;
};

/* Per-call context: the outbox and the mounts expired during this step. */
typedef struct {
  lease_engine *e;
  uint64_t now;
  event *head, **tail;
  mount *expired;
} ctx;

static void ctx_init(ctx *c, lease_engine *e, uint64_t now) {
  c->e = e; c->now = now; c->head = NULL; c->tail = &c->head; c->expired = NULL;
}
static void ctx_push(ctx *c, event *ev) { ev->next = NULL; *c->tail = ev; c->tail = &ev->next; }

static uint64_t clock_now(const lease_engine *e) {
  if (e->cfg.now_ns) return e->cfg.now_ns(e->cfg.clock_arg);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- names ---- */

const char *lease_state_name(lease_state s) {
  static const char *const n[] = {
      "None", "SharedGrantedRecently", "SharedGrantedLongAgo", "SharedPromoting",
      "SharedReleasing", "ExclusiveGrantedRecently", "ExclusiveGrantedLongAgo",
      "ExclusiveDemoting", "ExclusiveReleasing"};
  return (unsigned)s < sizeof n / sizeof n[0] ? n[s] : "?";
}
const char *lease_record_state_name(lease_record_state s) {
  static const char *const n[] = {
      "None", "SharedRequested", "SharedGranted", "SharedPromoting", "SharedReleasing",
      "ExclusiveRequested", "ExclusiveGranted", "ExclusiveDemoting", "ExclusiveReleasing"};
  return (unsigned)s < sizeof n / sizeof n[0] ? n[s] : "?";
}
const char *lease_request_name(lease_request_type t) {
  static const char *const n[] = {"Shared", "Promote", "Exclusive", "Demote", "Release"};
  return (unsigned)t < sizeof n / sizeof n[0] ? n[t] : "?";
}
const char *lease_reply_name(lease_reply r) {
  static const char *const n[] = {"Denied", "Shared", "Promoted", "Exclusive", "Demoted",
                                  "Released"};
  if (r == LEASE_REPLY_PENDING) return "Pending";
  return (unsigned)r < sizeof n / sizeof n[0] ? n[r] : "?";
}

/* ---- lookups ---- */

static mount *mount_find(lease_engine *e, const char *id) {
  uint64_t h = hash_str(id);
  for (hnode *p = ht_bucket(&e->mounts, h); p; p = p->next) {
    mount *m = CONTAINER(p, mount, h);
    if (p->hash == h && strcmp(m->id, id) == 0) return m;
  }
  return NULL;
}
/* Records are keyed by (mount, inode), leases by (volume, inode). */
static uint64_t key_hash(const void *owner, uint64_t inode) {
  return mix64((uint64_t)(uintptr_t)owner * 31 + mix64(inode));
}
static rec *rec_find(lease_engine *e, mount *m, uint64_t inode) {
  uint64_t h = key_hash(m, inode);
  for (hnode *p = ht_bucket(&e->recs, h); p; p = p->next) {
    rec *r = CONTAINER(p, rec, h);
    if (p->hash == h && r->m == m && r->l->inode == inode) return r;
  }
  return NULL;
}
static lease *lease_find(lease_engine *e, volume *v, uint64_t inode) {
  uint64_t h = key_hash(v, inode);
  for (hnode *p = ht_bucket(&e->leases, h); p; p = p->next) {
    lease *l = CONTAINER(p, lease, h);
    if (p->hash == h && l->vol == v && l->inode == inode) return l;
  }
  return NULL;
}
static volume *volume_find(lease_engine *e, const char *name) {
  for (dl *p = e->volumes.next; p != &e->volumes; p = p->next) {
    volume *v = CONTAINER(p, volume, link);
    if (strcmp(v->name, name) == 0) return v;
  }
  return NULL;
}
static void volume_unref(volume *v) {
  if (--v->refs == 0) { dl_del(&v->link); free(v->name); free(v); }
}

/* ---- timers ---- */

static void timer_cancel(lease_engine *e, lease *l) {
  if (l->tk != TIMER_NONE) { dl_del(&l->tlink); l->tk = TIMER_NONE; }
  (void)e;
}
static void timer_set(ctx *c, lease *l, timer_kind k) {
  lease_engine *e = c->e;
  timer_cancel(e, l);
  l->tk = k;
  l->deadline = c->now + (k == TIMER_LONG_AGO ? e->cfg.min_lease_duration_ns
                                              : e->cfg.lease_interrupt_interval_ns);
  /* Same duration per list, so the deadline normally goes last; walk back
   * only if the clock went backwards. */
  dl *h = &e->timers[k], *p = h->prev;
  while (p != h && CONTAINER(p, lease, tlink)->deadline > l->deadline) p = p->prev;
  l->tlink.prev = p; l->tlink.next = p->next; p->next->prev = &l->tlink; p->next = &l->tlink;
  if (e->trunning) pthread_cond_signal(&e->tcond);
}
static lease *timer_first(lease_engine *e) {
  lease *best = NULL;
  for (int k = TIMER_LONG_AGO; k <= TIMER_INTERRUPT; k++) {
    dl *p = dl_first(&e->timers[k]);
    if (!p) continue;
    lease *l = CONTAINER(p, lease, tlink);
    if (!best || l->deadline < best->deadline) best = l;
  }
  return best;
}

/* ---- replies and interrupts ---- */

static void stat_reply(lease_engine *e, lease_reply r) {
  static const size_t off[] = {offsetof(stats_t, denials), offsetof(stats_t, shared_grants),
                               offsetof(stats_t, promotions),
                               offsetof(stats_t, exclusive_grants),
                               offsetof(stats_t, demotions), offsetof(stats_t, releases)};
  if ((unsigned)r < sizeof off / sizeof off[0])
    bs_total_inc((bs_total *)(void *)((char *)&e->st + off[r]));
}

static void waiting_done(lease_engine *e, rec *r) {
  if (r->waiting) { r->waiting = false; e->nwaiting--; }
}

/* Answer the request this record carries (the running call's, or a pending
 * one); no-op if it carries none (e.g. a withdrawn promote). */
static void reply_rec(ctx *c, rec *r, lease_reply reply) {
  waiting_done(c->e, r);
  if (r->sync) {
    *r->sync = reply; r->sync = NULL;
    free(r->ev); /* the callback is not needed */
    r->ev = NULL;
  } else if (r->ev) {
    r->ev->kind = EV_REPLY; r->ev->reply = reply;
    ctx_push(c, r->ev); r->ev = NULL;
  } else {
    return;
  }
  stat_reply(c->e, reply);
}

static void interrupt_rec(ctx *c, rec *r, lease_interrupt_type t) {
  lease_engine *e = c->e;
  if (t == LEASE_INTERRUPT_RELEASE) bs_total_inc(&e->st.release_interrupts);
  else bs_total_inc(&e->st.demote_interrupts);
  log_trace("lease: interrupt %s inode %016llX -> mount %s",
            t == LEASE_INTERRUPT_RELEASE ? "Release" : "Demote",
            (unsigned long long)r->l->inode, r->m->id);
  if (!e->cfg.interrupt) return;
  event *ev = malloc(sizeof *ev);
  if (!ev) { log_warn("lease: out of memory, interrupt to %s dropped", r->m->id); return; }
  ev->kind = EV_INTERRUPT; ev->itype = t; ev->inode = r->l->inode;
  memcpy(ev->mount_id, r->m->id, sizeof ev->mount_id);
  ctx_push(c, ev);
}

/* ---- records ---- */

static void rec_free(lease_engine *e, rec *r) {
  ht_remove(&e->recs, &r->h);
  dl_del(&r->mlink);
  waiting_done(e, r);
  free(r->ev);
  free(r);
}

/* ---- lease lifetime ---- */

static void lease_free(lease_engine *e, lease *l) {
  timer_cancel(e, l);
  ht_remove(&e->leases, &l->h);
  dl_del(&l->lru);
  e->nleases--;
  volume_unref(l->vol);
  free(l);
}

/* ---- grants ---- */

static void grant_x(ctx *c, lease *l, rec *r, lease_reply reply) {
  r->st = LEASE_RECORD_EXCLUSIVE_GRANTED;
  l->excl = r;
  l->st = LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY;
  l->sent = 0;
  timer_set(c, l, TIMER_LONG_AGO);
  reply_rec(c, r, reply);
}

static void grant_s(ctx *c, lease *l, rec *r) {
  r->st = LEASE_RECORD_SHARED_GRANTED;
  dl_push_tail(&l->shared, &r->link);
  reply_rec(c, r, LEASE_REPLY_SHARED);
}

static rec *queue_head(lease *l) {
  dl *p = dl_first(&l->queue);
  return p ? CONTAINER(p, rec, link) : NULL;
}

/* The queue head, after denying heads whose mount expired earlier in this
 * step (their revocation is pending in process_expired): nothing is ever
 * granted to a mount on its way out. */
static rec *queue_head_live(ctx *c, lease *l) {
  rec *h;
  while ((h = queue_head(l)) && h->m->expired) {
    dl_del(&h->link);
    reply_rec(c, h, LEASE_REPLY_DENIED);
    rec_free(c->e, h);
  }
  return h;
}

/* Grant Shared to the leading shared requests of the queue (stops at the
 * first exclusive request). Returns how many. */
static size_t grant_leading_shared(ctx *c, lease *l) {
  size_t n = 0;
  rec *h;
  while ((h = queue_head_live(c, l)) && h->st == LEASE_RECORD_SHARED_REQUESTED) {
    dl_del(&h->link);
    grant_s(c, l, h);
    n++;
  }
  return n;
}

/* No holder is left: hand the lease to the queue, or free it when nobody
 * waits. upgrade_lone: a shared head with nothing behind it gets Exclusive
 * (the original's behaviour after the last shared holder or a demoting
 * holder releases). */
static void grant_from_queue(ctx *c, lease *l, bool upgrade_lone) {
  rec *h = queue_head_live(c, l);
  l->sent = 0;
  if (!h) {
    l->st = LEASE_STATE_NONE;
    lease_free(c->e, l);
    return;
  }
  if (h->st == LEASE_RECORD_EXCLUSIVE_REQUESTED ||
      (upgrade_lone && h->link.next == &l->queue)) {
    dl_del(&h->link);
    grant_x(c, l, h, LEASE_REPLY_EXCLUSIVE);
    return;
  }
  grant_leading_shared(c, l);
  l->st = LEASE_STATE_SHARED_GRANTED_RECENTLY;
  timer_set(c, l, TIMER_LONG_AGO);
}

/* The holders are gone; a pending promoter comes first. */
static void after_holders_gone(ctx *c, lease *l, bool upgrade_lone) {
  if (l->promoting) {
    rec *p = l->promoting;
    l->promoting = NULL;
    grant_x(c, l, p, LEASE_REPLY_PROMOTED);
    return;
  }
  grant_from_queue(c, l, upgrade_lone);
}

static void start_interrupts(ctx *c, lease *l) {
  l->sent = 1;
  timer_set(c, l, TIMER_INTERRUPT);
}

/* Move every shared holder to releasing and send each a Release. */
static void release_all_shared(ctx *c, lease *l) {
  dl *p;
  while ((p = dl_first(&l->shared))) {
    rec *r = CONTAINER(p, rec, link);
    dl_del(p);
    r->st = LEASE_RECORD_SHARED_RELEASING;
    dl_push_tail(&l->releasing, &r->link);
    interrupt_rec(c, r, LEASE_INTERRUPT_RELEASE);
  }
}

static void release_exclusive(ctx *c, lease *l) {
  rec *r = l->excl;
  l->excl = NULL;
  r->st = LEASE_RECORD_EXCLUSIVE_RELEASING;
  dl_push_tail(&l->releasing, &r->link);
  interrupt_rec(c, r, LEASE_INTERRUPT_RELEASE);
  l->st = LEASE_STATE_EXCLUSIVE_RELEASING;
}

static void demote_exclusive(ctx *c, lease *l) {
  rec *r = l->excl;
  l->excl = NULL;
  l->demoting = r;
  r->st = LEASE_RECORD_EXCLUSIVE_DEMOTING;
  interrupt_rec(c, r, LEASE_INTERRUPT_DEMOTE);
  l->st = LEASE_STATE_EXCLUSIVE_DEMOTING;
}

/* A waiter or a promoter went away (cancel, unmount, expiry) while holders
 * remain. In SharedGrantedRecently, shared requests queued behind it may
 * join at once. When nobody waits any more, an interrupt round in progress
 * ends and the holders keep their lease (LongAgo): no mount is expired for a
 * lease nobody wants. This is safe for clients that already received the
 * interrupt: a Release (or Demote) they send is accepted in LongAgo too. */
static void waiter_gone(ctx *c, lease *l) {
  if (l->stopping) return;
  if (l->st == LEASE_STATE_SHARED_GRANTED_RECENTLY && !l->promoting) {
    if (grant_leading_shared(c, l) > 0) timer_set(c, l, TIMER_LONG_AGO);
    return;
  }
  if (!dl_empty(&l->queue) || l->promoting) return;
  dl *p;
  switch (l->st) {
  case LEASE_STATE_SHARED_RELEASING:
    while ((p = dl_first(&l->releasing))) {
      rec *r = CONTAINER(p, rec, link);
      dl_del(p);
      r->st = LEASE_RECORD_SHARED_GRANTED;
      dl_push_tail(&l->shared, &r->link);
    }
    l->st = LEASE_STATE_SHARED_GRANTED_LONG_AGO;
    break;
  case LEASE_STATE_EXCLUSIVE_RELEASING:
    l->excl = CONTAINER(l->releasing.next, rec, link);
    dl_del(&l->excl->link);
    l->excl->st = LEASE_RECORD_EXCLUSIVE_GRANTED;
    l->st = LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO;
    break;
  case LEASE_STATE_EXCLUSIVE_DEMOTING:
    l->excl = l->demoting;
    l->demoting = NULL;
    l->excl->st = LEASE_RECORD_EXCLUSIVE_GRANTED;
    l->st = LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO;
    break;
  default:
    return;
  }
  timer_cancel(c->e, l);
  l->sent = 0;
}

/* A holder leaves (client Release, or revocation). The record is freed. */
static void holder_leave(ctx *c, rec *r) {
  lease_engine *e = c->e;
  lease *l = r->l;
  switch (r->st) {
  case LEASE_RECORD_SHARED_GRANTED: {
    bool recently = l->st == LEASE_STATE_SHARED_GRANTED_RECENTLY;
    dl_del(&r->link);
    rec_free(e, r);
    if (!dl_empty(&l->shared)) return;
    timer_cancel(e, l);
    after_holders_gone(c, l, recently);
    return;
  }
  case LEASE_RECORD_SHARED_RELEASING:
    dl_del(&r->link);
    rec_free(e, r);
    if (!dl_empty(&l->releasing)) return;
    timer_cancel(e, l);
    after_holders_gone(c, l, false);
    return;
  case LEASE_RECORD_EXCLUSIVE_GRANTED:
  case LEASE_RECORD_EXCLUSIVE_RELEASING:
    if (r == l->excl) l->excl = NULL; else dl_del(&r->link);
    rec_free(e, r);
    timer_cancel(e, l);
    grant_from_queue(c, l, false);
    return;
  case LEASE_RECORD_EXCLUSIVE_DEMOTING:
    l->demoting = NULL;
    rec_free(e, r);
    timer_cancel(e, l);
    grant_from_queue(c, l, true);
    return;
  case LEASE_RECORD_SHARED_PROMOTING:
    /* Only by revocation: the promotion is abandoned. */
    l->promoting = NULL;
    reply_rec(c, r, LEASE_REPLY_DENIED);
    rec_free(e, r);
    if (l->st == LEASE_STATE_SHARED_PROMOTING) l->st = LEASE_STATE_SHARED_RELEASING;
    waiter_gone(c, l);
    return;
  default: /* waiting records are not holders */
    return;
  }
}

static bool rec_is_waiter(const rec *r) {
  return r->st == LEASE_RECORD_SHARED_REQUESTED || r->st == LEASE_RECORD_EXCLUSIVE_REQUESTED;
}

/* Remove a record whatever it is: a waiter is Denied, a holder leaves. */
static void rec_revoke(ctx *c, rec *r) {
  if (rec_is_waiter(r)) {
    lease *l = r->l;
    dl_del(&r->link);
    reply_rec(c, r, LEASE_REPLY_DENIED);
    rec_free(c->e, r);
    waiter_gone(c, l);
    return;
  }
  holder_leave(c, r);
}

/* Waiters of other mounts may be granted meanwhile; waiters of expired
 * mounts never are (queue_head_live). */
static void mount_revoke_all(ctx *c, mount *m) {
  dl *p;
  while ((p = dl_first(&m->recs))) rec_revoke(c, CONTAINER(p, rec, mlink));
}

/* A holder ignored LeaseInterruptLimit interrupts: drop its record now; its
 * mount is declared expired and its other records are revoked at the end of
 * the step (process_expired). The caller fixes the lease's lists. */
static void expire_rec(ctx *c, rec *r) {
  lease_engine *e = c->e;
  mount *m = r->m;
  bs_total_inc(&e->st.expiries);
  log_warn("lease: mount %s did not give up inode %016llX after %u interrupts; expiring it",
           m->id, (unsigned long long)r->l->inode, e->cfg.lease_interrupt_limit);
  rec_free(e, r);
  if (!m->expired) {
    m->expired = true;
    m->expired_next = c->expired;
    c->expired = m;
    bs_total_inc(&e->st.expired_mounts);
    if (m->expire_ev) {
      if (e->cfg.expired) { ctx_push(c, m->expire_ev); } else { free(m->expire_ev); }
      m->expire_ev = NULL;
    }
  }
}

static void process_expired(ctx *c) {
  while (c->expired) {
    mount *m = c->expired;
    c->expired = m->expired_next;
    mount_revoke_all(c, m);
  }
}

/* ---- timer pops ---- */

static void pop_long_ago(ctx *c, lease *l) {
  l->tk = TIMER_NONE;
  dl_del(&l->tlink);
  if (l->st == LEASE_STATE_SHARED_GRANTED_RECENTLY) {
    l->st = LEASE_STATE_SHARED_GRANTED_LONG_AGO;
    if (!l->promoting && dl_empty(&l->queue)) return;
    l->st = l->promoting ? LEASE_STATE_SHARED_PROMOTING : LEASE_STATE_SHARED_RELEASING;
    release_all_shared(c, l);
    start_interrupts(c, l);
  } else if (l->st == LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY) {
    l->st = LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO;
    rec *h = queue_head(l);
    if (!h) return;
    if (h->st == LEASE_RECORD_SHARED_REQUESTED) demote_exclusive(c, l);
    else release_exclusive(c, l);
    start_interrupts(c, l);
  } else {
    log_error("lease: long-ago timer popped in state %s (inode %016llX); ignored",
              lease_state_name(l->st), (unsigned long long)l->inode);
  }
}

static void pop_interrupt(ctx *c, lease *l) {
  lease_engine *e = c->e;
  l->tk = TIMER_NONE;
  dl_del(&l->tlink);
  if (l->sent < e->cfg.lease_interrupt_limit) {
    for (dl *p = l->releasing.next; p != &l->releasing; p = p->next)
      interrupt_rec(c, CONTAINER(p, rec, link), LEASE_INTERRUPT_RELEASE);
    if (l->demoting)
      /* While stopping the demoting holder is asked to release (original). */
      interrupt_rec(c, l->demoting,
                    l->stopping ? LEASE_INTERRUPT_RELEASE : LEASE_INTERRUPT_DEMOTE);
    l->sent++;
    timer_set(c, l, TIMER_INTERRUPT);
    return;
  }
  /* Expiry (3.6.6). */
  dl *p;
  while ((p = dl_first(&l->releasing))) {
    dl_del(p);
    expire_rec(c, CONTAINER(p, rec, link));
  }
  if (l->demoting) {
    rec *d = l->demoting;
    l->demoting = NULL;
    expire_rec(c, d);
  }
  after_holders_gone(c, l, false);
}

/* ---- stop (3.6.7) ---- */

static void stop_lease(ctx *c, lease *l) {
  lease_engine *e = c->e;
  if (l->stopping) return;
  l->stopping = true;
  bs_total_inc(&e->st.stops);
  rec *h;
  while ((h = queue_head(l))) {
    dl_del(&h->link);
    reply_rec(c, h, LEASE_REPLY_DENIED);
    rec_free(e, h);
  }
  if (l->promoting) {
    rec *p = l->promoting;
    l->promoting = NULL;
    reply_rec(c, p, LEASE_REPLY_DENIED);
    p->st = LEASE_RECORD_SHARED_RELEASING;
    dl_push_tail(&l->releasing, &p->link);
    interrupt_rec(c, p, LEASE_INTERRUPT_RELEASE);
    if (l->st == LEASE_STATE_SHARED_PROMOTING) l->st = LEASE_STATE_SHARED_RELEASING;
  }
  switch (l->st) {
  case LEASE_STATE_SHARED_GRANTED_RECENTLY:
  case LEASE_STATE_SHARED_GRANTED_LONG_AGO:
    release_all_shared(c, l);
    l->st = LEASE_STATE_SHARED_RELEASING;
    start_interrupts(c, l);
    break;
  case LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY:
  case LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO:
    release_exclusive(c, l);
    start_interrupts(c, l);
    break;
  default: /* already interrupting: keep the current round */
    break;
  }
}

/* ---- client operations (3.6.3, 3.6.4) ---- */

static bool would_wait(const lease *l, lease_request_type t, const rec *r) {
  if (l->stopping) return false; /* denied at once */
  switch (t) {
  case LEASE_REQUEST_SHARED:
    if (l->st == LEASE_STATE_NONE || l->st == LEASE_STATE_SHARED_GRANTED_LONG_AGO) return false;
    if (l->st == LEASE_STATE_SHARED_GRANTED_RECENTLY)
      return !dl_empty(&l->queue) || l->promoting;
    return true;
  case LEASE_REQUEST_EXCLUSIVE:
    return l->st != LEASE_STATE_NONE;
  case LEASE_REQUEST_PROMOTE:
    if (!r || r->st != LEASE_RECORD_SHARED_GRANTED || l->promoting) return false;
    return l->shared.next->next != &l->shared; /* another shared holder exists */
  default:
    return false;
  }
}

/* Shared or Exclusive from a mount without a record: r is new (state
 * *Requested) and not yet in any lease list. */
static void op_new(ctx *c, lease *l, rec *r, bool excl) {
  switch (l->st) {
  case LEASE_STATE_NONE:
    if (excl) { grant_x(c, l, r, LEASE_REPLY_EXCLUSIVE); return; }
    grant_s(c, l, r);
    l->st = LEASE_STATE_SHARED_GRANTED_RECENTLY;
    timer_set(c, l, TIMER_LONG_AGO);
    return;
  case LEASE_STATE_SHARED_GRANTED_RECENTLY:
  case LEASE_STATE_SHARED_GRANTED_LONG_AGO:
    if (!excl && !would_wait(l, LEASE_REQUEST_SHARED, r)) {
      grant_s(c, l, r);
      l->st = LEASE_STATE_SHARED_GRANTED_RECENTLY;
      timer_set(c, l, TIMER_LONG_AGO); /* (re)start MinLeaseDuration */
      return;
    }
    dl_push_tail(&l->queue, &r->link);
    if (l->st == LEASE_STATE_SHARED_GRANTED_LONG_AGO) { /* only an exclusive gets here */
      release_all_shared(c, l);
      l->st = LEASE_STATE_SHARED_RELEASING;
      start_interrupts(c, l);
    }
    return;
  case LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO:
    dl_push_tail(&l->queue, &r->link);
    if (excl) release_exclusive(c, l); else demote_exclusive(c, l);
    start_interrupts(c, l);
    return;
  default:
    dl_push_tail(&l->queue, &r->link);
    return;
  }
}

/* Answer for the running call (r may be NULL: no record). */
static lease_reply op_promote(ctx *c, lease *l, rec *r) {
  if (!r || r->st != LEASE_RECORD_SHARED_GRANTED || l->stopping) return LEASE_REPLY_DENIED;
  if (l->st == LEASE_STATE_SHARED_GRANTED_RECENTLY && l->promoting) return LEASE_REPLY_DENIED;
  if (l->st != LEASE_STATE_SHARED_GRANTED_RECENTLY &&
      l->st != LEASE_STATE_SHARED_GRANTED_LONG_AGO)
    return LEASE_REPLY_DENIED; /* a SharedGranted record exists only in these states */
  dl_del(&r->link);
  if (dl_empty(&l->shared)) {
    l->excl = r;
    r->st = LEASE_RECORD_EXCLUSIVE_GRANTED;
    l->st = LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY;
    timer_set(c, l, TIMER_LONG_AGO);
    return LEASE_REPLY_PROMOTED;
  }
  l->promoting = r;
  r->st = LEASE_RECORD_SHARED_PROMOTING;
  if (l->st == LEASE_STATE_SHARED_GRANTED_LONG_AGO) {
    l->st = LEASE_STATE_SHARED_PROMOTING;
    release_all_shared(c, l);
    start_interrupts(c, l);
  }
  return LEASE_REPLY_PENDING;
}

static lease_reply op_demote(ctx *c, lease *l, rec *r) {
  lease_engine *e = c->e;
  if (!r) return LEASE_REPLY_DENIED;
  if (l->stopping) {
    if (l->st != LEASE_STATE_EXCLUSIVE_DEMOTING || r != l->demoting) return LEASE_REPLY_DENIED;
    /* Demoted, but the stop still wants it gone. */
    l->demoting = NULL;
    r->st = LEASE_RECORD_EXCLUSIVE_RELEASING;
    dl_push_tail(&l->releasing, &r->link);
    interrupt_rec(c, r, LEASE_INTERRUPT_RELEASE);
    l->st = LEASE_STATE_EXCLUSIVE_RELEASING;
    start_interrupts(c, l);
    return LEASE_REPLY_DEMOTED;
  }
  if ((l->st == LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY ||
       l->st == LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO) && r == l->excl) {
    l->excl = NULL;
  } else if (l->st == LEASE_STATE_EXCLUSIVE_DEMOTING && r == l->demoting) {
    l->demoting = NULL;
  } else {
    return LEASE_REPLY_DENIED;
  }
  timer_cancel(e, l);
  l->sent = 0;
  r->st = LEASE_RECORD_SHARED_GRANTED;
  dl_push_tail(&l->shared, &r->link);
  l->st = LEASE_STATE_SHARED_GRANTED_RECENTLY;
  /* The demoter's own reply goes first, then the waiters' grants; the
   * running call's reply is returned, the grants go to the outbox. */
  grant_leading_shared(c, l);
  timer_set(c, l, TIMER_LONG_AGO);
  return LEASE_REPLY_DEMOTED;
}

static lease_reply op_release(ctx *c, lease *l, rec *r) {
  if (!r) return LEASE_REPLY_DENIED;
  switch (r->st) {
  case LEASE_RECORD_SHARED_GRANTED:
  case LEASE_RECORD_SHARED_RELEASING:
  case LEASE_RECORD_EXCLUSIVE_GRANTED:
  case LEASE_RECORD_EXCLUSIVE_DEMOTING:
  case LEASE_RECORD_EXCLUSIVE_RELEASING:
    /* Released goes out before the grants holder_leave triggers: the
     * caller returns it directly. */
    holder_leave(c, r);
    return LEASE_REPLY_RELEASED;
  default: /* waiting, or a promoter whose Promote is still open */
    return LEASE_REPLY_DENIED;
  }
}

/* ---- eviction (3.6.8) ---- */

static void evict(ctx *c) {
  lease_engine *e = c->e;
  if (e->nleases <= e->cfg.lease_evict_high_limit) return;
  size_t n = e->nleases - e->cfg.lease_evict_low_limit;
  dl *p = e->lru.next;
  for (size_t i = 0; i < n && p != &e->lru; i++) {
    lease *l = CONTAINER(p, lease, lru);
    p = p->next; /* stop_lease never frees l, but keep the walk safe */
    if (l->stopping) continue;
    log_info("lease: evicting inode %016llX of volume %s", (unsigned long long)l->inode,
             l->vol->name);
    bs_total_inc(&e->st.evictions);
    stop_lease(c, l);
  }
}

/* ---- delivery ---- */

static void deliver(lease_engine *e, ctx *c) {
  event *ev = c->head;
  while (ev) {
    event *nx = ev->next;
    switch (ev->kind) {
    case EV_REPLY: ev->fn(ev->arg, ev->reply); break;
    case EV_INTERRUPT: e->cfg.interrupt(e->cfg.cb_arg, ev->mount_id, ev->itype, ev->inode); break;
    case EV_EXPIRED: e->cfg.expired(e->cfg.cb_arg, ev->mount_id); break;
    }
    free(ev);
    ev = nx;
  }
}

static void finish(lease_engine *e, ctx *c) {
  process_expired(c);
  pthread_mutex_unlock(&e->mu);
  deliver(e, c);
}

/* ---- public API ---- */

void lease_config_defaults(lease_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->min_lease_duration_ns = 250000000ULL;
  cfg->lease_interrupt_interval_ns = 250000000ULL;
  cfg->lease_interrupt_limit = 20;
  cfg->lease_evict_low_limit = 100000;
  cfg->lease_evict_high_limit = 100010;
}

static int stats_register(lease_engine *e) {
  const bs_stat_desc d[] = {
      BS_DESC_TOTAL(&e->st.shared_grants, "SharedGrants"),
      BS_DESC_TOTAL(&e->st.exclusive_grants, "ExclusiveGrants"),
      BS_DESC_TOTAL(&e->st.promotions, "Promotions"),
      BS_DESC_TOTAL(&e->st.demotions, "Demotions"),
      BS_DESC_TOTAL(&e->st.releases, "Releases"),
      BS_DESC_TOTAL(&e->st.denials, "Denials"),
      BS_DESC_TOTAL(&e->st.release_interrupts, "ReleaseInterrupts"),
      BS_DESC_TOTAL(&e->st.demote_interrupts, "DemoteInterrupts"),
      BS_DESC_TOTAL(&e->st.expiries, "Expiries"),
      BS_DESC_TOTAL(&e->st.expired_mounts, "ExpiredMounts"),
      BS_DESC_TOTAL(&e->st.stops, "Stops"),
      BS_DESC_TOTAL(&e->st.evictions, "Evictions"),
      BS_DESC_TOTAL(&e->st.cancels, "Cancels"),
      BS_DESC_TOTAL(&e->st.rejected_full, "RejectedFull"),
  };
  return bs_register("IMGR", e->cfg.stats_group, d, sizeof d / sizeof d[0]);
}

int lease_engine_create(const lease_config *cfg, lease_engine **out) {
  *out = NULL;
  if (!cfg->min_lease_duration_ns || !cfg->lease_interrupt_interval_ns ||
      !cfg->lease_interrupt_limit || cfg->lease_evict_low_limit > cfg->lease_evict_high_limit)
    return -EINVAL;
  lease_engine *e = calloc(1, sizeof *e);
  if (!e) return -ENOMEM;
  e->cfg = *cfg;
  if (!e->cfg.max_leases) e->cfg.max_leases = 2 * e->cfg.lease_evict_high_limit + 1;
  if (!e->cfg.max_waiting) e->cfg.max_waiting = 100000;
  if (!e->cfg.max_mounts) e->cfg.max_mounts = 10000;
  e->cfg.stats_group = NULL; /* the caller's string is not ours to keep */
  if (ht_init(&e->mounts) || ht_init(&e->recs) || ht_init(&e->leases)) {
    free(e->mounts.b); free(e->recs.b); free(e->leases.b); free(e);
    return -ENOMEM;
  }
  dl_init(&e->volumes);
  dl_init(&e->lru);
  for (int k = 0; k < 3; k++) dl_init(&e->timers[k]);
  e->next_ticket = 1;
  pthread_mutex_init(&e->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&e->tcond, &ca);
  pthread_condattr_destroy(&ca);
  if (cfg->stats_group) {
    e->cfg.stats_group = strdup(cfg->stats_group);
    int rc = e->cfg.stats_group ? stats_register(e) : -ENOMEM;
    if (rc) {
      free((char *)e->cfg.stats_group);
      e->cfg.stats_group = NULL;
      lease_engine_destroy(e);
      return rc;
    }
    e->stats_registered = true;
  }
  *out = e;
  return 0;
}

void lease_engine_destroy(lease_engine *e) {
  if (!e) return;
  lease_engine_timer_stop(e);
  if (e->stats_registered) bs_unregister("IMGR", e->cfg.stats_group);
  free((char *)e->cfg.stats_group);
  for (size_t i = 0; i < e->recs.nb; i++)
    for (hnode *p = e->recs.b[i], *nx; p; p = nx) {
      nx = p->next;
      rec *r = CONTAINER(p, rec, h);
      free(r->ev);
      free(r);
    }
  for (size_t i = 0; i < e->leases.nb; i++)
    for (hnode *p = e->leases.b[i], *nx; p; p = nx) { nx = p->next; free(CONTAINER(p, lease, h)); }
  for (size_t i = 0; i < e->mounts.nb; i++)
    for (hnode *p = e->mounts.b[i], *nx; p; p = nx) {
      nx = p->next;
      mount *m = CONTAINER(p, mount, h);
      free(m->expire_ev);
      free(m);
    }
  while (!dl_empty(&e->volumes)) {
    volume *v = CONTAINER(e->volumes.next, volume, link);
    dl_del(&v->link);
    free(v->name);
    free(v);
  }
  free(e->mounts.b); free(e->recs.b); free(e->leases.b);
  pthread_cond_destroy(&e->tcond);
  pthread_mutex_destroy(&e->mu);
  free(e);
}

int lease_mount_add(lease_engine *e, const char *mount_id, const char *volname) {
  size_t idlen = mount_id ? strlen(mount_id) : 0;
  if (!idlen || idlen > LEASE_MOUNT_ID_MAX || !volname || !*volname) return -EINVAL;
  mount *m = calloc(1, sizeof *m);
  event *ev = calloc(1, sizeof *ev);
  if (!m || !ev) { free(m); free(ev); return -ENOMEM; }
  memcpy(m->id, mount_id, idlen + 1);
  ev->kind = EV_EXPIRED;
  memcpy(ev->mount_id, mount_id, idlen + 1);
  m->expire_ev = ev;
  dl_init(&m->recs);
  pthread_mutex_lock(&e->mu);
  int rc = 0;
  volume *v = NULL;
  if (mount_find(e, mount_id)) rc = -EEXIST;
  else if (e->nmounts >= e->cfg.max_mounts) rc = -ENOSPC;
  else if (!(v = volume_find(e, volname))) {
    v = calloc(1, sizeof *v);
    if (v && !(v->name = strdup(volname))) { free(v); v = NULL; }
    if (v) dl_push_tail(&e->volumes, &v->link);
    else rc = -ENOMEM;
  }
  if (!rc) {
    v->refs++;
    m->vol = v;
    ht_insert(&e->mounts, &m->h, hash_str(mount_id));
    e->nmounts++;
  }
  pthread_mutex_unlock(&e->mu);
  if (rc) { free(m); free(ev); }
  return rc;
}

int lease_mount_remove(lease_engine *e, const char *mount_id) {
  ctx c;
  pthread_mutex_lock(&e->mu);
  ctx_init(&c, e, clock_now(e));
  mount *m = mount_find(e, mount_id);
  if (!m) { pthread_mutex_unlock(&e->mu); return -ESRCH; }
  mount_revoke_all(&c, m);
  process_expired(&c);
  ht_remove(&e->mounts, &m->h);
  e->nmounts--;
  volume_unref(m->vol);
  free(m->expire_ev);
  free(m);
  pthread_mutex_unlock(&e->mu);
  deliver(e, &c);
  return 0;
}

static int new_lease(lease_engine *e, volume *v, uint64_t inode, lease **out) {
  if (e->nleases >= e->cfg.max_leases) return -ENOSPC;
  lease *l = calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  l->vol = v;
  v->refs++;
  l->inode = inode;
  dl_init(&l->shared); dl_init(&l->releasing); dl_init(&l->queue);
  dl_init(&l->tlink); dl_init(&l->lru);
  dl_push_tail(&e->lru, &l->lru);
  ht_insert(&e->leases, &l->h, key_hash(v, inode));
  e->nleases++;
  *out = l;
  return 0;
}

int lease_request(lease_engine *e, const char *mount_id, uint64_t inode,
                  lease_request_type type, lease_reply_fn fn, void *arg,
                  lease_reply *reply, uint64_t *ticket) {
  if ((unsigned)type > LEASE_REQUEST_RELEASE) { *reply = LEASE_REPLY_DENIED; return -EINVAL; }
  bool creates = type == LEASE_REQUEST_SHARED || type == LEASE_REQUEST_EXCLUSIVE;
  bool may_wait = creates || type == LEASE_REQUEST_PROMOTE;
  if (may_wait && !fn) return -EINVAL;
  /* Memory the request may need, taken before the lock so that no state
   * change ever has to be undone. */
  rec *nr = creates ? calloc(1, sizeof *nr) : NULL;
  event *ev = may_wait ? calloc(1, sizeof *ev) : NULL;
  if ((creates && !nr) || (may_wait && !ev)) { free(nr); free(ev); return -ENOMEM; }
  if (ev) { ev->fn = fn; ev->arg = arg; }

  ctx c;
  int rc = 0;
  lease_reply out = LEASE_REPLY_DENIED;
  pthread_mutex_lock(&e->mu);
  ctx_init(&c, e, clock_now(e));
  mount *m = mount_find(e, mount_id);
  if (!m || m->expired) { rc = -ESRCH; goto unlock; }
  lease *l = lease_find(e, m->vol, inode);
  rec *r = l ? rec_find(e, m, inode) : NULL;
  if (!l && !creates) { rc = -ENOENT; bs_total_inc(&e->st.denials); goto unlock; }
  if (creates && (r || (l && l->stopping))) { /* 3.6.3; stopping leases take nobody */
    bs_total_inc(&e->st.denials);
    goto unlock;
  }
  bool created = false;
  if (!l) {
    rc = new_lease(e, m->vol, inode, &l);
    if (rc) { if (rc == -ENOSPC) bs_total_inc(&e->st.rejected_full); goto unlock; }
    created = true;
  }
  if (may_wait && would_wait(l, type, r) && e->nwaiting >= e->cfg.max_waiting) {
    log_warn("lease: %zu requests already wait; %s on inode %016llX from %s refused",
             e->nwaiting, lease_request_name(type), (unsigned long long)inode, mount_id);
    bs_total_inc(&e->st.rejected_full);
    if (created) lease_free(e, l);
    rc = -ENOBUFS;
    goto unlock;
  }
  if (!l->stopping) { dl_del(&l->lru); dl_push_tail(&e->lru, &l->lru); }
  out = LEASE_REPLY_PENDING;
  if (creates) {
    r = nr; nr = NULL;
    r->m = m; r->l = l;
    r->st = type == LEASE_REQUEST_SHARED ? LEASE_RECORD_SHARED_REQUESTED
                                         : LEASE_RECORD_EXCLUSIVE_REQUESTED;
    dl_init(&r->link);
    dl_push_tail(&m->recs, &r->mlink);
    ht_insert(&e->recs, &r->h, key_hash(m, inode));
    r->sync = &out;
    r->ev = ev; ev = NULL;
    if (created) evict(&c); /* may stop l itself when the low limit is 0 */
    if (l->stopping) { /* evicted at birth */
      reply_rec(&c, r, LEASE_REPLY_DENIED);
      rec_free(e, r);
      lease_free(e, l);
      goto unlock;
    }
    op_new(&c, l, r, type == LEASE_REQUEST_EXCLUSIVE);
    r->sync = NULL;
  } else if (type == LEASE_REQUEST_PROMOTE) {
    out = op_promote(&c, l, r);
    if (out == LEASE_REPLY_PENDING) { r->ev = ev; ev = NULL; }
  } else if (type == LEASE_REQUEST_DEMOTE) {
    out = op_demote(&c, l, r);
  } else {
    out = op_release(&c, l, r);
  }
  if (out == LEASE_REPLY_PENDING) {
    r->waiting = true;
    e->nwaiting++;
    r->ticket = e->next_ticket++;
    *ticket = r->ticket;
  } else if (!creates) {
    stat_reply(e, out); /* records' own replies were counted in reply_rec */
  }
unlock:
  finish(e, &c);
  free(nr);
  free(ev);
  if (rc == 0 || rc == -ENOENT) *reply = rc ? LEASE_REPLY_DENIED : out;
  return rc;
}

int lease_cancel(lease_engine *e, const char *mount_id, uint64_t inode, uint64_t ticket) {
  ctx c;
  int rc = -ENOENT;
  pthread_mutex_lock(&e->mu);
  ctx_init(&c, e, clock_now(e));
  mount *m = mount_find(e, mount_id);
  lease *l = m ? lease_find(e, m->vol, inode) : NULL;
  rec *r = l ? rec_find(e, m, inode) : NULL;
  if (r && r->ticket == ticket) {
    if (!r->waiting) {
      rc = -EALREADY;
    } else {
      rc = 0;
      bs_total_inc(&e->st.cancels);
      waiting_done(e, r);
      free(r->ev);
      r->ev = NULL;
      if (r->st == LEASE_RECORD_SHARED_REQUESTED || r->st == LEASE_RECORD_EXCLUSIVE_REQUESTED) {
        dl_del(&r->link);
        rec_free(e, r);
        waiter_gone(&c, l);
      }
      /* a deferred promote stays, unanswered (lease.h) */
    }
  } else if (m && !r && ticket && ticket < e->next_ticket) {
    /* No record left: the request was answered (a Denied frees it) or
     * withdrawn; a genuine ticket cannot be told apart from a stale one. */
    rc = -EALREADY;
  }
  finish(e, &c);
  return rc;
}

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs;
  bool done;
  lease_reply reply;
} waiter;

static void waiter_put(waiter *w) {
  pthread_mutex_lock(&w->mu);
  bool last = --w->refs == 0;
  pthread_mutex_unlock(&w->mu);
  if (last) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
  }
}

static void waiter_fn(void *arg, lease_reply reply) {
  waiter *w = arg;
  pthread_mutex_lock(&w->mu);
  w->reply = reply;
  w->done = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  waiter_put(w);
}

int lease_request_wait(lease_engine *e, const char *mount_id, uint64_t inode,
                       lease_request_type type, uint64_t timeout_ns, lease_reply *reply) {
  waiter *w = calloc(1, sizeof *w);
  if (!w) return -ENOMEM;
  pthread_mutex_init(&w->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  w->refs = 2; /* this call + the callback */
  uint64_t ticket = 0;
  int rc = lease_request(e, mount_id, inode, type, waiter_fn, w, reply, &ticket);
  if (rc || *reply != LEASE_REPLY_PENDING) {
    w->refs = 1; /* the callback will never run */
    waiter_put(w);
    return rc;
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  if (timeout_ns > 1000000000ULL * 86400 * 365) timeout_ns = 1000000000ULL * 86400 * 365;
  uint64_t dl_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec + timeout_ns;
  ts.tv_sec = (time_t)(dl_ns / 1000000000ULL);
  ts.tv_nsec = (long)(dl_ns % 1000000000ULL);
  pthread_mutex_lock(&w->mu);
  int wrc = 0;
  while (!w->done && wrc != ETIMEDOUT) wrc = pthread_cond_timedwait(&w->cv, &w->mu, &ts);
  bool done = w->done;
  pthread_mutex_unlock(&w->mu);
  if (!done) {
    if (lease_cancel(e, mount_id, inode, ticket) == 0) {
      waiter_put(w); /* the callback's reference */
      waiter_put(w);
      return -ETIMEDOUT;
    }
    /* Decided meanwhile: the callback runs right after the deciding thread
     * unlocks the engine, so this wait is short. */
    pthread_mutex_lock(&w->mu);
    while (!w->done) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
  }
  *reply = w->reply;
  waiter_put(w);
  return 0;
}

int lease_check(lease_engine *e, const char *mount_id, uint64_t inode, lease_access access) {
  int rc = -EACCES;
  pthread_mutex_lock(&e->mu);
  mount *m = mount_find(e, mount_id);
  if (!m || m->expired) {
    rc = -ESRCH;
  } else {
    lease *l = lease_find(e, m->vol, inode);
    rec *r = l ? rec_find(e, m, inode) : NULL;
    if (r) {
      switch (r->st) {
      case LEASE_RECORD_SHARED_GRANTED:
      case LEASE_RECORD_SHARED_PROMOTING:
      case LEASE_RECORD_SHARED_RELEASING:
        if (access == LEASE_ACCESS_READ) rc = 0;
        break;
      case LEASE_RECORD_EXCLUSIVE_GRANTED:
      case LEASE_RECORD_EXCLUSIVE_DEMOTING:
      case LEASE_RECORD_EXCLUSIVE_RELEASING:
        rc = 0;
        break;
      default:
        break;
      }
    }
  }
  pthread_mutex_unlock(&e->mu);
  return rc;
}

int lease_stop(lease_engine *e, const char *volname, uint64_t inode) {
  ctx c;
  int rc = -ENOENT;
  pthread_mutex_lock(&e->mu);
  ctx_init(&c, e, clock_now(e));
  volume *v = volname ? volume_find(e, volname) : NULL;
  lease *l = v ? lease_find(e, v, inode) : NULL;
  if (l) { stop_lease(&c, l); rc = 0; }
  finish(e, &c);
  return rc;
}

int lease_engine_next_deadline(lease_engine *e, uint64_t *deadline_ns) {
  pthread_mutex_lock(&e->mu);
  lease *l = timer_first(e);
  if (l) *deadline_ns = l->deadline;
  pthread_mutex_unlock(&e->mu);
  return l ? 0 : -ENOENT;
}

void lease_engine_tick(lease_engine *e, uint64_t now_ns) {
  for (;;) {
    ctx c;
    pthread_mutex_lock(&e->mu);
    lease *l = timer_first(e);
    if (!l || l->deadline > now_ns) { pthread_mutex_unlock(&e->mu); return; }
    /* Timers the pop sets count from the deadline that fired, so a late
     * tick replays the same schedule as a punctual one. */
    ctx_init(&c, e, l->deadline);
    if (l->tk == TIMER_LONG_AGO) pop_long_ago(&c, l); else pop_interrupt(&c, l);
    finish(e, &c);
  }
}

static void *timer_main(void *arg) {
  lease_engine *e = arg;
  pthread_mutex_lock(&e->mu);
  while (!e->tstop) {
    lease *l = timer_first(e);
    uint64_t now = clock_now(e);
    if (l && l->deadline <= now) {
      pthread_mutex_unlock(&e->mu);
      lease_engine_tick(e, now);
      pthread_mutex_lock(&e->mu);
      continue;
    }
    if (!l) {
      pthread_cond_wait(&e->tcond, &e->mu);
    } else {
      struct timespec ts = {.tv_sec = (time_t)(l->deadline / 1000000000ULL),
                            .tv_nsec = (long)(l->deadline % 1000000000ULL)};
      pthread_cond_timedwait(&e->tcond, &e->mu, &ts);
    }
  }
  pthread_mutex_unlock(&e->mu);
  return NULL;
}

int lease_engine_timer_start(lease_engine *e) {
  if (e->cfg.now_ns) return -EINVAL;
  pthread_mutex_lock(&e->mu);
  if (e->trunning) { pthread_mutex_unlock(&e->mu); return -EALREADY; }
  e->tstop = false;
  int rc = pthread_create(&e->tthread, NULL, timer_main, e);
  if (rc == 0) e->trunning = true;
  pthread_mutex_unlock(&e->mu);
  return -rc;
}

void lease_engine_timer_stop(lease_engine *e) {
  pthread_mutex_lock(&e->mu);
  if (!e->trunning) { pthread_mutex_unlock(&e->mu); return; }
  e->tstop = true;
  pthread_cond_signal(&e->tcond);
  pthread_mutex_unlock(&e->mu);
  pthread_join(e->tthread, NULL);
  pthread_mutex_lock(&e->mu);
  e->trunning = false;
  pthread_mutex_unlock(&e->mu);
}

/* ---- snapshot and stats ---- */

static void snap_add(lease_snapshot_lease *s, rec *r) {
  lease_snapshot_record *o = &s->records[s->nrecords++];
  memcpy(o->mount_id, r->m->id, sizeof o->mount_id);
  o->state = r->st;
}

static void snap_list(lease_snapshot_lease *s, dl *h) {
  for (dl *p = h->next; p != h; p = p->next) snap_add(s, CONTAINER(p, rec, link));
}

int lease_engine_snapshot(lease_engine *e, const char *volname, lease_snapshot **out) {
  *out = NULL;
  lease_snapshot *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  pthread_mutex_lock(&e->mu);
  s->nmounts = e->nmounts;
  s->nwaiting = e->nwaiting;
  s->leases = calloc(e->nleases ? e->nleases : 1, sizeof *s->leases);
  int rc = s->leases ? 0 : -ENOMEM;
  for (dl *p = e->lru.next; !rc && p != &e->lru; p = p->next) {
    lease *l = CONTAINER(p, lease, lru);
    if (volname && strcmp(volname, l->vol->name) != 0) continue;
    lease_snapshot_lease *o = &s->leases[s->nleases];
    size_t n = dl_len(&l->shared) + dl_len(&l->releasing) + dl_len(&l->queue) +
               (l->excl != NULL) + (l->demoting != NULL) + (l->promoting != NULL);
    o->volume = strdup(l->vol->name);
    o->records = calloc(n ? n : 1, sizeof *o->records);
    if (!o->volume || !o->records) { free(o->volume); free(o->records); rc = -ENOMEM; break; }
    s->nleases++;
    o->inode = l->inode;
    o->state = l->st;
    o->stopping = l->stopping;
    o->interrupts_sent = l->tk == TIMER_INTERRUPT ? l->sent : 0;
    if (l->excl) snap_add(o, l->excl);
    if (l->demoting) snap_add(o, l->demoting);
    if (l->promoting) snap_add(o, l->promoting);
    snap_list(o, &l->shared);
    snap_list(o, &l->releasing);
    snap_list(o, &l->queue);
  }
  pthread_mutex_unlock(&e->mu);
  if (rc) { lease_snapshot_free(s); return rc; }
  *out = s;
  return 0;
}

void lease_snapshot_free(lease_snapshot *s) {
  if (!s) return;
  for (size_t i = 0; i < s->nleases; i++) { free(s->leases[i].volume); free(s->leases[i].records); }
  free(s->leases);
  free(s);
}

void lease_engine_stats(lease_engine *e, lease_stats *o) {
  const bs_total *in[] = {&e->st.shared_grants, &e->st.exclusive_grants, &e->st.promotions,
                          &e->st.demotions, &e->st.releases, &e->st.denials,
                          &e->st.release_interrupts, &e->st.demote_interrupts,
                          &e->st.expiries, &e->st.expired_mounts, &e->st.stops,
                          &e->st.evictions, &e->st.cancels, &e->st.rejected_full};
  uint64_t *dst[] = {&o->shared_grants, &o->exclusive_grants, &o->promotions, &o->demotions,
                     &o->releases, &o->denials, &o->release_interrupts,
                     &o->demote_interrupts, &o->expiries, &o->expired_mounts, &o->stops,
                     &o->evictions, &o->cancels, &o->rejected_full};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) *dst[i] = atomic_load(&in[i]->total);
}
