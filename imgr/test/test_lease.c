/*
 * Lease engine tests (imgr.md 3.6). Deterministic: a fake clock drives the
 * timers through lease_engine_tick; callbacks are recorded. Mounts A, B, C, D
 * on volume "vol". Test timing: MinLeaseDuration 100, interval 10, limit 3.
 */
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
#include <time.h>
#include <unistd.h>

#include "bucketstats.h"
#include "lease.h"
#include "logger.h"

#define MIN 100
#define IVL 10
#define LIMIT 3

#define S LEASE_REQUEST_SHARED
#define P LEASE_REQUEST_PROMOTE
#define X LEASE_REQUEST_EXCLUSIVE
#define D LEASE_REQUEST_DEMOTE
#define R LEASE_REQUEST_RELEASE

#define PENDING LEASE_REPLY_PENDING
#define DENIED LEASE_REPLY_DENIED
#define SHARED LEASE_REPLY_SHARED
#define PROMOTED LEASE_REPLY_PROMOTED
#define EXCL LEASE_REPLY_EXCLUSIVE
#define DEMOTED LEASE_REPLY_DEMOTED
#define RELEASED LEASE_REPLY_RELEASED

#define INT_R LEASE_INTERRUPT_RELEASE
#define INT_D LEASE_INTERRUPT_DEMOTE

static uint64_t fake_now;
static lease_engine *E;

static uint64_t fake_clock(void *a) { (void)a; return fake_now; }

/* ---- recorded callbacks ---- */

typedef struct { int count; lease_reply reply; uint64_t ticket; } slot;

static void on_reply(void *arg, lease_reply r) {
  slot *s = arg;
  s->count++;
  s->reply = r;
}

/* Waiting requests answer through a proxy: a test's slots live on its
 * stack, and teardown's unmounts still answer whatever waits (Denied). */
typedef struct { slot *target; } proxy;
static proxy proxies[256];
static size_t nproxies;

static void on_proxy_reply(void *arg, lease_reply r) {
  proxy *p = arg;
  if (p->target) on_reply(p->target, r);
}

typedef struct { char mount[LEASE_MOUNT_ID_MAX + 1]; lease_interrupt_type type; uint64_t inode; } intr;
#define MAXREC 100000
static intr intrs[MAXREC];
static size_t nintr;
static char expired_ids[64][LEASE_MOUNT_ID_MAX + 1];
static size_t nexpired;
/* Optional reaction to interrupts (the timer-thread test releases at once). */
static void (*intr_hook)(const char *m, lease_interrupt_type t, uint64_t ino);

static void on_interrupt(void *arg, const char *m, lease_interrupt_type t, uint64_t ino) {
  (void)arg;
  if (nintr < MAXREC) {
    snprintf(intrs[nintr].mount, sizeof intrs[nintr].mount, "%s", m);
    intrs[nintr].type = t;
    intrs[nintr].inode = ino;
    nintr++;
  }
  if (intr_hook) intr_hook(m, t, ino);
}

static void on_expired(void *arg, const char *m) {
  (void)arg;
  assert_true(nexpired < 64);
  snprintf(expired_ids[nexpired++], sizeof expired_ids[0], "%s", m);
}

static size_t count_intr(const char *m, lease_interrupt_type t, uint64_t ino) {
  size_t n = 0;
  for (size_t i = 0; i < nintr; i++)
    if (!strcmp(intrs[i].mount, m) && intrs[i].type == t && intrs[i].inode == ino) n++;
  return n;
}

static bool was_expired(const char *m) {
  for (size_t i = 0; i < nexpired; i++)
    if (!strcmp(expired_ids[i], m)) return true;
  return false;
}

/* ---- engine setup ---- */

static void test_config(lease_config *c) {
  lease_config_defaults(c);
  c->min_lease_duration_ns = MIN;
  c->lease_interrupt_interval_ns = IVL;
  c->lease_interrupt_limit = LIMIT;
  c->lease_evict_low_limit = 1000;
  c->lease_evict_high_limit = 1010;
  c->now_ns = fake_clock;
  c->interrupt = on_interrupt;
  c->expired = on_expired;
}

static void start_with(const lease_config *c, int nmounts) {
  fake_now = 1000;
  nintr = 0;
  nexpired = 0;
  intr_hook = NULL;
  assert_int_equal(lease_engine_create(c, &E), 0);
  static const char *const ids[] = {"A", "B", "C", "D"};
  for (int i = 0; i < nmounts; i++) assert_int_equal(lease_mount_add(E, ids[i], "vol"), 0);
}

static int setup(void **state) {
  (void)state;
  lease_config c;
  test_config(&c);
  start_with(&c, 4);
  return 0;
}

static slot never; /* the callback of requests answered at once */

static int teardown(void **state) {
  (void)state;
  for (size_t i = 0; i < nproxies; i++) proxies[i].target = NULL;
  nproxies = 0;
  static const char *const ids[] = {"A", "B", "C", "D"};
  for (int i = 0; i < 4; i++) lease_mount_remove(E, ids[i]);
  lease_snapshot *s;
  assert_int_equal(lease_engine_snapshot(E, NULL, &s), 0);
  assert_int_equal(s->nleases, 0); /* nothing leaks past its mounts */
  assert_int_equal(s->nwaiting, 0);
  lease_snapshot_free(s);
  lease_engine_destroy(E);
  E = NULL;
  assert_int_equal(never.count, 0);
  return 0;
}

/* ---- request helpers ---- */

/* A request expected to be answered at once. */
static lease_reply now_(const char *m, uint64_t ino, lease_request_type t) {
  lease_reply r = PENDING;
  uint64_t tk = 0;
  assert_int_equal(lease_request(E, m, ino, t, on_reply, &never, &r, &tk), 0);
  assert_int_not_equal(r, PENDING);
  return r;
}

/* A request expected to wait; its answer lands in *s. */
static void wait_(const char *m, uint64_t ino, lease_request_type t, slot *s) {
  lease_reply r = DENIED;
  memset(s, 0, sizeof *s);
  assert_true(nproxies < sizeof proxies / sizeof proxies[0]);
  proxy *p = &proxies[nproxies++];
  p->target = s;
  assert_int_equal(lease_request(E, m, ino, t, on_proxy_reply, p, &r, &s->ticket), 0);
  assert_int_equal(r, PENDING);
}

static void advance(uint64_t dt) {
  fake_now += dt;
  lease_engine_tick(E, fake_now);
}

/* Lease state of inode on "vol"; -1 when no lease object exists. */
static int st(uint64_t ino) {
  lease_snapshot *s;
  assert_int_equal(lease_engine_snapshot(E, "vol", &s), 0);
  int r = -1;
  for (size_t i = 0; i < s->nleases; i++)
    if (s->leases[i].inode == ino) r = (int)s->leases[i].state;
  lease_snapshot_free(s);
  return r;
}

static lease_record_state rst(const char *m, uint64_t ino) {
  lease_snapshot *s;
  assert_int_equal(lease_engine_snapshot(E, "vol", &s), 0);
  lease_record_state r = LEASE_RECORD_NONE;
  for (size_t i = 0; i < s->nleases; i++)
    if (s->leases[i].inode == ino)
      for (size_t j = 0; j < s->leases[i].nrecords; j++)
        if (!strcmp(s->leases[i].records[j].mount_id, m)) r = s->leases[i].records[j].state;
  lease_snapshot_free(s);
  return r;
}

static void expect_answer(const slot *s, lease_reply r) {
  assert_int_equal(s->count, 1);
  assert_int_equal(s->reply, r);
}

static void expect_pending(const slot *s) { assert_int_equal(s->count, 0); }

static uint64_t deadline(void) {
  uint64_t d = 0;
  assert_int_equal(lease_engine_next_deadline(E, &d), 0);
  return d;
}

/* ---- reaching states ---- */

/* A and B share inode 1, long ago. */
static void shared_long_ago_ab(void) {
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("B", 1, S), SHARED);
  advance(MIN);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_LONG_AGO);
}

/* A holds inode 1 exclusively, long ago. */
static void exclusive_long_ago_a(void) {
  assert_int_equal(now_("A", 1, X), EXCL);
  advance(MIN);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO);
}

/* SharedPromoting: A and B share; A promotes; B is asked to release. */
static void shared_promoting(slot *pa) {
  shared_long_ago_ab();
  wait_("A", 1, P, pa);
  assert_int_equal(st(1), LEASE_STATE_SHARED_PROMOTING);
  assert_int_equal(count_intr("B", INT_R, 1), 1);
}

/* SharedReleasing: A and B share; C wants exclusive. */
static void shared_releasing(slot *pc) {
  shared_long_ago_ab();
  wait_("C", 1, X, pc);
  assert_int_equal(st(1), LEASE_STATE_SHARED_RELEASING);
}

/* ExclusiveDemoting: A exclusive; B wants shared. */
static void exclusive_demoting(slot *pb) {
  exclusive_long_ago_a();
  wait_("B", 1, S, pb);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_DEMOTING);
}

/* ExclusiveReleasing: A exclusive; B wants exclusive. */
static void exclusive_releasing(slot *pb) {
  exclusive_long_ago_a();
  wait_("B", 1, X, pb);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_RELEASING);
}

/* ==== 3.6.4 transition table: Shared / Exclusive requests ==== */

static void t_none_shared(void **st_) {
  (void)st_;
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
  assert_int_equal(rst("A", 1), LEASE_RECORD_SHARED_GRANTED);
  assert_int_equal(deadline(), fake_now + MIN);
}

static void t_none_exclusive(void **st_) {
  (void)st_;
  assert_int_equal(now_("A", 1, X), EXCL);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
  assert_int_equal(rst("A", 1), LEASE_RECORD_EXCLUSIVE_GRANTED);
  assert_int_equal(deadline(), fake_now + MIN);
}

static void t_sgr_shared_restarts_timer(void **st_) {
  (void)st_;
  assert_int_equal(now_("A", 1, S), SHARED);
  advance(MIN / 2);
  assert_int_equal(now_("B", 1, S), SHARED);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
  assert_int_equal(deadline(), fake_now + MIN); /* restarted */
  advance(MIN / 2);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
  advance(MIN / 2);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_LONG_AGO);
}

/* Deliberate difference: a shared request queues behind a waiting exclusive
 * (no starvation). */
static void t_sgr_shared_queues_behind_waiter(void **st_) {
  (void)st_;
  slot sb, sc;
  assert_int_equal(now_("A", 1, S), SHARED);
  wait_("B", 1, X, &sb);
  wait_("C", 1, S, &sc);
  assert_int_equal(rst("C", 1), LEASE_RECORD_SHARED_REQUESTED);
  advance(MIN);
  assert_int_equal(st(1), LEASE_STATE_SHARED_RELEASING);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, EXCL);
  expect_pending(&sc);
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_answer(&sc, SHARED); /* not upgraded: it was handed on by an exclusive holder */
  assert_int_equal(now_("C", 1, R), RELEASED);
  assert_int_equal(st(1), -1);
}

static void t_sgr_exclusive_queues_without_interrupt(void **st_) {
  (void)st_;
  slot sb;
  assert_int_equal(now_("A", 1, S), SHARED);
  wait_("B", 1, X, &sb);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
  assert_int_equal(nintr, 0);
  advance(MIN - 1);
  assert_int_equal(nintr, 0);
  advance(1);
  assert_int_equal(count_intr("A", INT_R, 1), 1);
  assert_int_equal(st(1), LEASE_STATE_SHARED_RELEASING);
  assert_int_equal(rst("A", 1), LEASE_RECORD_SHARED_RELEASING);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, EXCL);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
}

static void t_sgla_shared(void **st_) {
  (void)st_;
  shared_long_ago_ab();
  assert_int_equal(now_("C", 1, S), SHARED);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
  assert_int_equal(deadline(), fake_now + MIN);
  assert_int_equal(nintr, 0);
}

static void t_sgla_exclusive(void **st_) {
  (void)st_;
  slot sc;
  shared_releasing(&sc);
  assert_int_equal(count_intr("A", INT_R, 1), 1);
  assert_int_equal(count_intr("B", INT_R, 1), 1);
  assert_int_equal(rst("A", 1), LEASE_RECORD_SHARED_RELEASING);
  assert_int_equal(deadline(), fake_now + IVL);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_pending(&sc);
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_answer(&sc, EXCL);
}

static void t_shared_promoting_queues(void **st_) {
  (void)st_;
  slot pa, sc, sd;
  shared_promoting(&pa);
  wait_("C", 1, S, &sc);
  wait_("D", 1, X, &sd);
  assert_int_equal(st(1), LEASE_STATE_SHARED_PROMOTING);
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_answer(&pa, PROMOTED);
  expect_pending(&sc);
  expect_pending(&sd);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sc, SHARED);
  expect_pending(&sd);
  assert_int_equal(now_("C", 1, R), RELEASED);
  expect_answer(&sd, EXCL);
}

static void t_shared_releasing_queues(void **st_) {
  (void)st_;
  slot sc, sd;
  shared_releasing(&sc);
  wait_("D", 1, S, &sd);
  assert_int_equal(st(1), LEASE_STATE_SHARED_RELEASING);
  assert_int_equal(rst("D", 1), LEASE_RECORD_SHARED_REQUESTED);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_answer(&sc, EXCL);
  expect_pending(&sd);
}

static void t_xgr_queues(void **st_) {
  (void)st_;
  slot sb, sc;
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("B", 1, S, &sb);
  wait_("C", 1, X, &sc);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
  assert_int_equal(nintr, 0);
  advance(MIN); /* head is shared: demote */
  assert_int_equal(count_intr("A", INT_D, 1), 1);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_DEMOTING);
  assert_int_equal(now_("A", 1, D), DEMOTED);
  expect_answer(&sb, SHARED);
  expect_pending(&sc);
}

static void t_xgla_shared_demotes(void **st_) {
  (void)st_;
  slot sb;
  exclusive_demoting(&sb);
  assert_int_equal(count_intr("A", INT_D, 1), 1);
  assert_int_equal(count_intr("A", INT_R, 1), 0);
  assert_int_equal(rst("A", 1), LEASE_RECORD_EXCLUSIVE_DEMOTING);
  assert_int_equal(deadline(), fake_now + IVL);
}

static void t_xgla_exclusive_releases(void **st_) {
  (void)st_;
  slot sb;
  exclusive_releasing(&sb);
  assert_int_equal(count_intr("A", INT_R, 1), 1);
  assert_int_equal(rst("A", 1), LEASE_RECORD_EXCLUSIVE_RELEASING);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, EXCL);
}

static void t_xdemoting_queues(void **st_) {
  (void)st_;
  slot sb, sc, sd;
  exclusive_demoting(&sb);
  wait_("C", 1, S, &sc);
  wait_("D", 1, X, &sd);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_DEMOTING);
  assert_int_equal(now_("A", 1, D), DEMOTED);
  expect_answer(&sb, SHARED);
  expect_answer(&sc, SHARED);
  expect_pending(&sd);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
}

static void t_xreleasing_queues(void **st_) {
  (void)st_;
  slot sb, sc, sd;
  exclusive_releasing(&sb);
  wait_("C", 1, S, &sc);
  wait_("D", 1, S, &sd);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_RELEASING);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, EXCL);
  expect_pending(&sc);
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_answer(&sc, SHARED);
  expect_answer(&sd, SHARED);
}

/* ==== 3.6.3 requests from a mount with a record ==== */

static void t_record_exists_denied(void **st_) {
  (void)st_;
  slot sb;
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("A", 1, S), DENIED);
  assert_int_equal(now_("A", 1, X), DENIED);
  assert_int_equal(rst("A", 1), LEASE_RECORD_SHARED_GRANTED);
  wait_("B", 1, X, &sb);
  assert_int_equal(now_("B", 1, S), DENIED); /* a waiting record counts */
  assert_int_equal(now_("B", 1, X), DENIED);
  assert_int_equal(now_("B", 1, R), DENIED); /* releasing a wait: mismatch */
  assert_int_equal(now_("B", 1, D), DENIED);
  assert_int_equal(now_("B", 1, P), DENIED);
  assert_int_equal(rst("B", 1), LEASE_RECORD_EXCLUSIVE_REQUESTED);
  expect_pending(&sb);
}

static void t_no_lease_object(void **st_) {
  (void)st_;
  lease_reply r = SHARED;
  uint64_t tk;
  slot s = {0};
  assert_int_equal(lease_request(E, "A", 9, P, on_reply, &s, &r, &tk), -ENOENT);
  assert_int_equal(r, DENIED);
  r = SHARED;
  assert_int_equal(lease_request(E, "A", 9, D, NULL, NULL, &r, &tk), -ENOENT);
  assert_int_equal(r, DENIED);
  r = SHARED;
  assert_int_equal(lease_request(E, "A", 9, R, NULL, NULL, &r, &tk), -ENOENT);
  assert_int_equal(r, DENIED);
  r = SHARED;
  assert_int_equal(lease_request(E, "A", 9, (lease_request_type)5, on_reply, &s, &r, &tk), -EINVAL);
  assert_int_equal(r, DENIED);
  assert_int_equal(lease_request(E, "nobody", 9, S, on_reply, &s, &r, &tk), -ESRCH);
  assert_int_equal(lease_request(E, "A", 9, S, NULL, NULL, &r, &tk), -EINVAL);
  assert_int_equal(st(9), -1);
  /* The lease exists but this mount has no record: Denied, no error. */
  assert_int_equal(now_("A", 9, S), SHARED);
  assert_int_equal(now_("B", 9, R), DENIED);
  assert_int_equal(now_("B", 9, D), DENIED);
  assert_int_equal(now_("B", 9, P), DENIED);
  assert_int_equal(s.count, 0);
}

/* ==== Promote ==== */

static void t_promote_sgr_alone(void **st_) {
  (void)st_;
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("A", 1, P), PROMOTED);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
  assert_int_equal(rst("A", 1), LEASE_RECORD_EXCLUSIVE_GRANTED);
  assert_int_equal(deadline(), fake_now + MIN);
}

static void t_promote_sgr_deferred_to_pop(void **st_) {
  (void)st_;
  slot pa;
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("B", 1, S), SHARED);
  wait_("A", 1, P, &pa);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
  assert_int_equal(nintr, 0);
  advance(MIN);
  assert_int_equal(st(1), LEASE_STATE_SHARED_PROMOTING);
  assert_int_equal(rst("A", 1), LEASE_RECORD_SHARED_PROMOTING);
  assert_int_equal(count_intr("B", INT_R, 1), 1);
  assert_int_equal(count_intr("A", INT_R, 1), 0);
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_answer(&pa, PROMOTED);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
}

static void t_promote_second_denied(void **st_) {
  (void)st_;
  slot pb;
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("B", 1, S), SHARED);
  assert_int_equal(now_("C", 1, S), SHARED);
  wait_("B", 1, P, &pb);
  assert_int_equal(now_("C", 1, P), DENIED);
  assert_int_equal(now_("B", 1, P), DENIED); /* its record is no longer SharedGranted */
  advance(MIN);
  assert_int_equal(count_intr("A", INT_R, 1), 1);
  assert_int_equal(count_intr("C", INT_R, 1), 1);
  assert_int_equal(now_("C", 1, P), DENIED); /* releasing now */
  assert_int_equal(now_("C", 1, R), RELEASED);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&pb, PROMOTED);
}

static void t_promote_sgla_alone(void **st_) {
  (void)st_;
  assert_int_equal(now_("A", 1, S), SHARED);
  advance(MIN);
  assert_int_equal(now_("A", 1, P), PROMOTED);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
}

static void t_promote_sgla_others(void **st_) {
  (void)st_;
  slot pa;
  shared_promoting(&pa);
  assert_int_equal(rst("A", 1), LEASE_RECORD_SHARED_PROMOTING);
  assert_int_equal(rst("B", 1), LEASE_RECORD_SHARED_RELEASING);
  assert_int_equal(deadline(), fake_now + IVL);
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_answer(&pa, PROMOTED);
  advance(10 * IVL); /* interrupts cancelled */
  assert_int_equal(count_intr("B", INT_R, 1), 1);
}

static void t_promote_wrong_record(void **st_) {
  (void)st_;
  slot sb;
  assert_int_equal(now_("A", 1, X), EXCL);
  assert_int_equal(now_("A", 1, P), DENIED);
  wait_("B", 1, S, &sb);
  assert_int_equal(now_("B", 1, P), DENIED);
  assert_int_equal(now_("C", 1, P), DENIED);
}

/* ==== Demote ==== */

static void t_demote_in_shared_states_denied(void **st_) {
  (void)st_;
  slot pa;
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("A", 1, D), DENIED); /* SGR */
  advance(MIN);
  assert_int_equal(now_("A", 1, D), DENIED); /* SGLA */
  assert_int_equal(now_("B", 1, S), SHARED);
  advance(MIN);
  wait_("A", 1, P, &pa);
  assert_int_equal(now_("B", 1, D), DENIED); /* SharedPromoting */
  assert_int_equal(now_("A", 1, D), DENIED);
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_answer(&pa, PROMOTED);
}

static void t_demote_shared_releasing_denied(void **st_) {
  (void)st_;
  slot sc;
  shared_releasing(&sc);
  assert_int_equal(now_("A", 1, D), DENIED);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_answer(&sc, EXCL);
}

static void t_demote_xgr_grants_leading_shared(void **st_) {
  (void)st_;
  slot sb, sc, sd;
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("B", 1, S, &sb);
  wait_("D", 1, X, &sd);
  wait_("C", 1, S, &sc);
  assert_int_equal(now_("A", 1, D), DEMOTED);
  expect_answer(&sb, SHARED);
  expect_pending(&sd); /* stops at the first exclusive */
  expect_pending(&sc);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
  assert_int_equal(rst("A", 1), LEASE_RECORD_SHARED_GRANTED);
  assert_int_equal(deadline(), fake_now + MIN);
}

static void t_demote_xgla(void **st_) {
  (void)st_;
  exclusive_long_ago_a();
  assert_int_equal(now_("A", 1, D), DEMOTED);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
  assert_int_equal(deadline(), fake_now + MIN);
}

static void t_demote_xdemoting(void **st_) {
  (void)st_;
  slot sb;
  exclusive_demoting(&sb);
  advance(IVL);
  assert_int_equal(count_intr("A", INT_D, 1), 2); /* resent */
  assert_int_equal(now_("B", 1, D), DENIED);      /* not the holder */
  assert_int_equal(now_("A", 1, D), DEMOTED);
  expect_answer(&sb, SHARED);
  advance(10 * IVL);
  assert_int_equal(count_intr("A", INT_D, 1), 2); /* interrupts cancelled */
  assert_false(was_expired("A"));
}

static void t_demote_xreleasing_denied(void **st_) {
  (void)st_;
  slot sb;
  exclusive_releasing(&sb);
  assert_int_equal(now_("A", 1, D), DENIED);
  assert_int_equal(rst("A", 1), LEASE_RECORD_EXCLUSIVE_RELEASING);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, EXCL);
}

static void t_demote_not_holder(void **st_) {
  (void)st_;
  slot sb;
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("B", 1, X, &sb);
  assert_int_equal(now_("B", 1, D), DENIED);
  assert_int_equal(now_("C", 1, D), DENIED);
}

/* ==== Release ==== */

static void t_release_sgr_last_frees(void **st_) {
  (void)st_;
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("B", 1, S), SHARED);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
  assert_int_equal(now_("B", 1, R), RELEASED);
  assert_int_equal(st(1), -1); /* lease object dropped */
  assert_int_equal(lease_engine_next_deadline(E, &(uint64_t){0}), -ENOENT);
  lease_reply r;
  uint64_t tk;
  assert_int_equal(lease_request(E, "B", 1, R, NULL, NULL, &r, &tk), -ENOENT); /* nothing left */
}

static void t_release_sgr_last_grants_exclusive_waiter(void **st_) {
  (void)st_;
  slot sb;
  assert_int_equal(now_("A", 1, S), SHARED);
  wait_("B", 1, X, &sb);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, EXCL);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
  assert_int_equal(deadline(), fake_now + MIN);
}

static void t_release_sgr_last_completes_promotion(void **st_) {
  (void)st_;
  slot pa;
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("B", 1, S), SHARED);
  wait_("A", 1, P, &pa);
  assert_int_equal(now_("A", 1, R), DENIED); /* its Promote is still open */
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_answer(&pa, PROMOTED);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
}

static void t_release_sgla_last_frees(void **st_) {
  (void)st_;
  shared_long_ago_ab();
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_LONG_AGO);
  assert_int_equal(now_("B", 1, R), RELEASED);
  assert_int_equal(st(1), -1);
}

static void t_release_shared_promoting(void **st_) {
  (void)st_;
  slot pa;
  shared_long_ago_ab();
  assert_int_equal(now_("C", 1, S), SHARED);
  advance(MIN);
  wait_("A", 1, P, &pa);
  assert_int_equal(now_("A", 1, R), DENIED);
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_pending(&pa);
  assert_int_equal(now_("C", 1, R), RELEASED);
  expect_answer(&pa, PROMOTED);
}

static void t_release_shared_releasing(void **st_) {
  (void)st_;
  slot sc, sd;
  shared_releasing(&sc);
  wait_("D", 1, X, &sd);
  assert_int_equal(now_("B", 1, R), RELEASED);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sc, EXCL);
  expect_pending(&sd);
  advance(10 * IVL); /* the old round's interrupts stopped; C's round began */
  assert_int_equal(count_intr("A", INT_R, 1), 1);
  assert_int_equal(count_intr("C", INT_R, 1), 1);
}

static void t_release_xgr(void **st_) {
  (void)st_;
  slot sb, sc, sd;
  assert_int_equal(now_("A", 1, X), EXCL);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(st(1), -1);
  /* shared head followed by shared then exclusive */
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("B", 1, S, &sb);
  wait_("C", 1, S, &sc);
  wait_("D", 1, X, &sd);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, SHARED);
  expect_answer(&sc, SHARED);
  expect_pending(&sd);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
}

static void t_release_xgr_lone_shared_not_upgraded(void **st_) {
  (void)st_;
  slot sb, sc;
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("B", 1, S, &sb);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, SHARED);
  assert_int_equal(now_("B", 1, R), RELEASED);
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("C", 1, X, &sc);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sc, EXCL);
}

static void t_release_xgla(void **st_) {
  (void)st_;
  exclusive_long_ago_a();
  assert_int_equal(now_("B", 1, R), DENIED);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(st(1), -1);
}

/* ExclusiveDemoting + Release: fixed so the head's own type decides. */
static void t_release_xdemoting_head_exclusive(void **st_) {
  (void)st_;
  slot sb, sc, sd;
  exclusive_demoting(&sb);
  wait_("C", 1, X, &sc);
  wait_("D", 1, S, &sd);
  assert_int_equal(lease_cancel(E, "B", 1, sb.ticket), 0); /* head is now C (exclusive) */
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sc, EXCL); /* the original answered Shared here */
  expect_pending(&sd);
  assert_int_equal(sb.count, 0);
}

static void t_release_xdemoting_lone_shared_upgraded(void **st_) {
  (void)st_;
  slot sb;
  exclusive_demoting(&sb);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, EXCL); /* the original's lone-shared upgrade */
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
  advance(10 * IVL);
  assert_int_equal(count_intr("A", INT_D, 1), 1); /* interrupts cancelled */
}

static void t_release_xdemoting_shared_run(void **st_) {
  (void)st_;
  slot sb, sc, sd;
  exclusive_demoting(&sb);
  wait_("C", 1, S, &sc);
  wait_("D", 1, X, &sd);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, SHARED);
  expect_answer(&sc, SHARED);
  expect_pending(&sd);
}

static void t_release_xreleasing(void **st_) {
  (void)st_;
  slot sb, sc;
  exclusive_releasing(&sb);
  wait_("C", 1, X, &sc);
  assert_int_equal(now_("C", 1, R), DENIED);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, EXCL);
  expect_pending(&sc);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
  advance(MIN);
  assert_int_equal(count_intr("B", INT_R, 1), 1);
}

/* ==== 3.6.5 long-ago pop ==== */

static void t_pop_sgr_idle(void **st_) {
  (void)st_;
  assert_int_equal(now_("A", 1, S), SHARED);
  advance(MIN);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_LONG_AGO);
  assert_int_equal(nintr, 0);
  assert_int_equal(lease_engine_next_deadline(E, &(uint64_t){0}), -ENOENT);
}

static void t_pop_xgr_idle(void **st_) {
  (void)st_;
  assert_int_equal(now_("A", 1, X), EXCL);
  advance(MIN);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO);
  assert_int_equal(nintr, 0);
}

static void t_pop_xgr_exclusive_head(void **st_) {
  (void)st_;
  slot sb, sc;
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("B", 1, X, &sb);
  wait_("C", 1, S, &sc);
  advance(MIN);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_RELEASING);
  assert_int_equal(count_intr("A", INT_R, 1), 1);
  assert_int_equal(count_intr("A", INT_D, 1), 0);
}

static void t_late_tick_replays_schedule(void **st_) {
  (void)st_;
  slot sb;
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("B", 1, X, &sb);
  advance(MIN + IVL + IVL / 2); /* one late tick: pop + one resend */
  assert_int_equal(count_intr("A", INT_R, 1), 2);
  assert_int_equal(deadline(), 1000 + MIN + 2 * IVL);
}

/* ==== interrupts and expiry (3.6.2, 3.6.6) ==== */

static void t_interrupts_resent_then_expiry(void **st_) {
  (void)st_;
  slot sb;
  exclusive_releasing(&sb);
  for (int i = 1; i < LIMIT; i++) {
    assert_int_equal(count_intr("A", INT_R, 1), (size_t)i);
    advance(IVL - 1);
    assert_int_equal(count_intr("A", INT_R, 1), (size_t)i);
    advance(1);
  }
  assert_int_equal(count_intr("A", INT_R, 1), LIMIT); /* exactly the limit */
  expect_pending(&sb);
  assert_false(was_expired("A"));
  advance(IVL);
  assert_int_equal(count_intr("A", INT_R, 1), LIMIT);
  expect_answer(&sb, EXCL);
  assert_true(was_expired("A"));
  assert_int_equal(nexpired, 1);
  assert_int_equal(rst("A", 1), LEASE_RECORD_NONE);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
  assert_int_equal(deadline(), fake_now + MIN);
  /* the expired mount is gone for every purpose but lease_mount_remove */
  lease_reply r;
  uint64_t tk;
  assert_int_equal(lease_request(E, "A", 2, S, on_reply, &never, &r, &tk), -ESRCH);
  assert_int_equal(lease_check(E, "A", 1, LEASE_ACCESS_READ), -ESRCH);
  assert_int_equal(lease_mount_remove(E, "A"), 0);
  assert_int_equal(lease_mount_add(E, "A", "vol"), 0);
  lease_stats s;
  lease_engine_stats(E, &s);
  assert_int_equal(s.expiries, 1);
  assert_int_equal(s.expired_mounts, 1);
  assert_int_equal(s.release_interrupts, LIMIT);
}

static void t_expiry_shared_promoting_answers_promoted(void **st_) {
  (void)st_;
  slot pa;
  shared_promoting(&pa);
  advance((uint64_t)LIMIT * IVL);
  expect_answer(&pa, PROMOTED); /* the original answered Exclusive */
  assert_true(was_expired("B"));
  assert_false(was_expired("A"));
  assert_int_equal(rst("A", 1), LEASE_RECORD_EXCLUSIVE_GRANTED);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY);
}

static void t_expiry_shared_releasing(void **st_) {
  (void)st_;
  slot sc;
  shared_releasing(&sc);
  assert_int_equal(now_("A", 1, R), RELEASED);
  advance((uint64_t)LIMIT * IVL);
  expect_answer(&sc, EXCL);
  assert_true(was_expired("B"));
  assert_false(was_expired("A"));
}

static void t_expiry_exclusive_demoting(void **st_) {
  (void)st_;
  slot sb, sc, sd;
  exclusive_demoting(&sb);
  wait_("C", 1, S, &sc);
  wait_("D", 1, X, &sd);
  advance((uint64_t)LIMIT * IVL);
  assert_int_equal(count_intr("A", INT_D, 1), LIMIT);
  assert_true(was_expired("A"));
  expect_answer(&sb, SHARED);
  expect_answer(&sc, SHARED);
  expect_pending(&sd);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
}

static void t_expiry_exclusive_releasing(void **st_) {
  (void)st_;
  slot sb;
  exclusive_releasing(&sb);
  advance((uint64_t)LIMIT * IVL);
  expect_answer(&sb, EXCL);
  assert_true(was_expired("A"));
}

/* An expired mount loses every record at once: holds (waiters proceed) and
 * waits (Denied). */
static void t_expiry_revokes_whole_mount(void **st_) {
  (void)st_;
  slot sb, sc2, sa3, sd4;
  assert_int_equal(now_("A", 1, X), EXCL);
  assert_int_equal(now_("A", 2, X), EXCL);
  assert_int_equal(now_("C", 3, X), EXCL);
  assert_int_equal(now_("A", 4, S), SHARED);
  wait_("C", 2, X, &sc2);
  wait_("A", 3, S, &sa3);
  wait_("D", 4, X, &sd4);
  wait_("B", 1, X, &sb);
  advance(MIN);
  assert_int_equal(now_("A", 2, R), RELEASED); /* A answers for inode 2 ... */
  expect_answer(&sc2, EXCL);
  assert_int_equal(now_("A", 4, R), RELEASED); /* ... and 4, not for 1 */
  expect_answer(&sd4, EXCL);
  assert_int_equal(now_("D", 4, R), RELEASED);
  assert_int_equal(now_("A", 4, S), SHARED);
  wait_("D", 4, X, &sd4);
  advance((uint64_t)LIMIT * IVL);
  assert_true(was_expired("A"));
  expect_answer(&sb, EXCL);
  expect_answer(&sa3, DENIED);
  expect_answer(&sd4, EXCL); /* A's shared hold on 4 was dropped */
  assert_int_equal(rst("A", 3), LEASE_RECORD_NONE);
  assert_int_equal(rst("A", 4), LEASE_RECORD_NONE);
}

/* Two mounts expire in one step; one waits for a lease the other holds.
 * Releasing the holder must not grant anything to the dying waiter. */
static void t_expiry_two_mounts_no_grant_to_dying(void **st_) {
  (void)st_;
  slot sc, sa2;
  shared_releasing(&sc); /* A and B share inode 1, C waits for exclusive */
  assert_int_equal(now_("B", 2, X), EXCL); /* recently: no interrupts on 2 */
  wait_("A", 2, X, &sa2);
  advance((uint64_t)LIMIT * IVL);
  assert_true(was_expired("A"));
  assert_true(was_expired("B"));
  expect_answer(&sc, EXCL);
  expect_answer(&sa2, DENIED);
  assert_int_equal(st(2), -1);
}

/* ==== 3.6.7 stop ==== */

static void t_stop_exclusive(void **st_) {
  (void)st_;
  slot sb, sc;
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("B", 1, S, &sb);
  wait_("C", 1, X, &sc);
  assert_int_equal(lease_stop(E, "vol", 1), 0);
  expect_answer(&sb, DENIED);
  expect_answer(&sc, DENIED);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_RELEASING);
  assert_int_equal(count_intr("A", INT_R, 1), 1); /* Recently became LongAgo at once */
  assert_int_equal(now_("B", 1, S), DENIED);
  assert_int_equal(now_("B", 1, X), DENIED);
  assert_int_equal(now_("A", 1, P), DENIED);
  assert_int_equal(now_("A", 1, D), DENIED);
  assert_int_equal(lease_stop(E, "vol", 1), 0); /* already stopping */
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(st(1), -1);
  assert_int_equal(lease_stop(E, "vol", 1), -ENOENT);
  assert_int_equal(lease_stop(E, "other", 1), -ENOENT);
  /* a new lease on the inode starts afresh */
  assert_int_equal(now_("B", 1, X), EXCL);
}

static void t_stop_shared(void **st_) {
  (void)st_;
  shared_long_ago_ab();
  assert_int_equal(lease_stop(E, "vol", 1), 0);
  assert_int_equal(st(1), LEASE_STATE_SHARED_RELEASING);
  assert_int_equal(count_intr("A", INT_R, 1), 1);
  assert_int_equal(count_intr("B", INT_R, 1), 1);
  assert_int_equal(now_("A", 1, R), RELEASED);
  advance(IVL);
  assert_int_equal(count_intr("A", INT_R, 1), 1);
  assert_int_equal(count_intr("B", INT_R, 1), 2);
  assert_int_equal(now_("B", 1, R), RELEASED);
  assert_int_equal(st(1), -1);
}

static void t_stop_denies_promotion(void **st_) {
  (void)st_;
  slot pa, pc;
  shared_promoting(&pa);
  assert_int_equal(lease_stop(E, "vol", 1), 0);
  expect_answer(&pa, DENIED);
  assert_int_equal(st(1), LEASE_STATE_SHARED_RELEASING);
  assert_int_equal(rst("A", 1), LEASE_RECORD_SHARED_RELEASING);
  assert_int_equal(count_intr("A", INT_R, 1), 1);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(now_("B", 1, R), RELEASED);
  assert_int_equal(st(1), -1);
  /* also while the promotion is still deferred in SharedGrantedRecently (the
   * original left that Promote unanswered) */
  assert_int_equal(now_("A", 2, S), SHARED);
  assert_int_equal(now_("C", 2, S), SHARED);
  wait_("C", 2, P, &pc);
  assert_int_equal(lease_stop(E, "vol", 2), 0);
  expect_answer(&pc, DENIED);
  assert_int_equal(now_("A", 2, R), RELEASED);
  assert_int_equal(now_("C", 2, R), RELEASED);
  assert_int_equal(st(2), -1);
}

static void t_stop_demoting(void **st_) {
  (void)st_;
  slot sb;
  exclusive_demoting(&sb);
  assert_int_equal(lease_stop(E, "vol", 1), 0);
  expect_answer(&sb, DENIED);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_DEMOTING);
  advance(IVL);
  assert_int_equal(count_intr("A", INT_R, 1), 1); /* Release, not Demote, while stopping */
  assert_int_equal(now_("A", 1, D), DEMOTED);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_RELEASING);
  assert_int_equal(count_intr("A", INT_R, 1), 2);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(st(1), -1);
}

static void t_stop_demoting_release(void **st_) {
  (void)st_;
  slot sb;
  exclusive_demoting(&sb);
  assert_int_equal(lease_stop(E, "vol", 1), 0);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(st(1), -1);
}

/* Expiry while stopping: no stale records, the mount is expired. */
static void t_stop_expiry(void **st_) {
  (void)st_;
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("B", 1, S), SHARED);
  assert_int_equal(lease_stop(E, "vol", 1), 0);
  assert_int_equal(now_("A", 1, R), RELEASED);
  advance((uint64_t)LIMIT * IVL);
  assert_int_equal(count_intr("B", INT_R, 1), LIMIT);
  assert_true(was_expired("B"));
  assert_int_equal(st(1), -1);
  assert_int_equal(rst("B", 1), LEASE_RECORD_NONE);
  assert_int_equal(now_("A", 1, S), SHARED); /* usable again */
}

/* ==== 3.6.8 eviction ==== */

static void t_eviction(void **st_) {
  (void)st_;
  lease_engine_destroy(E);
  lease_config c;
  test_config(&c);
  c.lease_evict_low_limit = 2;
  c.lease_evict_high_limit = 3;
  start_with(&c, 4);
  assert_int_equal(now_("A", 1, X), EXCL);
  assert_int_equal(now_("A", 2, X), EXCL);
  assert_int_equal(now_("A", 3, X), EXCL);
  assert_int_equal(now_("A", 1, D), DEMOTED); /* touching 1 makes 2 the LRU */
  assert_int_equal(nintr, 0);
  assert_int_equal(now_("B", 4, S), SHARED); /* 4 leases > 3: evict 2 (2 and 3) */
  assert_int_equal(count_intr("A", INT_R, 2), 1);
  assert_int_equal(count_intr("A", INT_R, 3), 1);
  assert_int_equal(count_intr("A", INT_R, 1), 0);
  assert_int_equal(st(2), LEASE_STATE_EXCLUSIVE_RELEASING);
  assert_int_equal(now_("C", 2, S), DENIED); /* stopping */
  /* 5 > 3 again: the 3 least recent are examined; 2 and 3 are already on
   * their way out and count toward the target, 1 is stopped. */
  assert_int_equal(now_("A", 5, S), SHARED);
  assert_int_equal(count_intr("A", INT_R, 1), 1);
  assert_int_equal(count_intr("B", INT_R, 4), 0);
  assert_int_equal(now_("A", 2, R), RELEASED);
  assert_int_equal(now_("A", 3, R), RELEASED);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(st(2), -1);
  assert_int_equal(st(1), -1);
  lease_stats s;
  lease_engine_stats(E, &s);
  assert_int_equal(s.evictions, 3);
  assert_int_equal(s.stops, 3);
}

static void t_eviction_of_the_new_lease(void **st_) {
  (void)st_;
  lease_engine_destroy(E);
  lease_config c;
  test_config(&c);
  c.lease_evict_low_limit = 0;
  c.lease_evict_high_limit = 0;
  start_with(&c, 4);
  assert_int_equal(now_("A", 1, S), DENIED);
  assert_int_equal(st(1), -1);
}

static void t_lease_hard_cap(void **st_) {
  (void)st_;
  lease_engine_destroy(E);
  lease_config c;
  test_config(&c);
  c.lease_evict_low_limit = 1;
  c.lease_evict_high_limit = 1;
  c.max_leases = 2;
  start_with(&c, 4);
  assert_int_equal(now_("A", 1, X), EXCL);
  assert_int_equal(now_("A", 2, X), EXCL); /* stops 1 */
  lease_reply r;
  uint64_t tk;
  assert_int_equal(lease_request(E, "A", 3, X, on_reply, &never, &r, &tk), -ENOSPC);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(now_("A", 3, X), EXCL);
}

/* ==== limits ==== */

static void t_waiting_cap(void **st_) {
  (void)st_;
  lease_engine_destroy(E);
  lease_config c;
  test_config(&c);
  c.max_waiting = 1;
  start_with(&c, 4);
  slot sb;
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("B", 1, X, &sb);
  lease_reply r;
  uint64_t tk;
  assert_int_equal(lease_request(E, "C", 1, S, on_reply, &never, &r, &tk), -ENOBUFS);
  assert_int_equal(rst("C", 1), LEASE_RECORD_NONE);
  assert_int_equal(now_("C", 2, S), SHARED); /* immediate grants are not limited */
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, EXCL);
  slot sc;
  wait_("C", 1, S, &sc);
  lease_stats s;
  lease_engine_stats(E, &s);
  assert_int_equal(s.rejected_full, 1);
}

static void t_mount_registry(void **st_) {
  (void)st_;
  char longid[LEASE_MOUNT_ID_MAX + 2];
  memset(longid, 'x', sizeof longid - 1);
  longid[sizeof longid - 1] = 0;
  assert_int_equal(lease_mount_add(E, "A", "vol"), -EEXIST);
  assert_int_equal(lease_mount_add(E, longid, "vol"), -EINVAL);
  longid[LEASE_MOUNT_ID_MAX] = 0;
  assert_int_equal(lease_mount_add(E, longid, "vol"), 0);
  assert_int_equal(lease_mount_remove(E, longid), 0);
  assert_int_equal(lease_mount_add(E, "", "vol"), -EINVAL);
  assert_int_equal(lease_mount_add(E, "E", ""), -EINVAL);
  assert_int_equal(lease_mount_remove(E, "nope"), -ESRCH);
  lease_engine_destroy(E);
  lease_config c;
  test_config(&c);
  c.max_mounts = 2;
  start_with(&c, 2);
  assert_int_equal(lease_mount_add(E, "C", "vol"), -ENOSPC);
  assert_int_equal(lease_mount_remove(E, "B"), 0);
  assert_int_equal(lease_mount_add(E, "C", "vol"), 0);
}

/* Mounts on different volumes never share a lease. */
static void t_volumes_separate(void **st_) {
  (void)st_;
  assert_int_equal(lease_mount_add(E, "V2", "other"), 0);
  assert_int_equal(now_("A", 1, X), EXCL);
  assert_int_equal(now_("V2", 1, X), EXCL);
  assert_int_equal(lease_stop(E, "other", 1), 0);
  assert_int_equal(count_intr("V2", INT_R, 1), 1);
  assert_int_equal(count_intr("A", INT_R, 1), 0);
  assert_int_equal(lease_mount_remove(E, "V2"), 0);
}

static void t_config_checks(void **st_) {
  (void)st_;
  lease_config c;
  lease_engine *e2;
  test_config(&c);
  c.min_lease_duration_ns = 0;
  assert_int_equal(lease_engine_create(&c, &e2), -EINVAL);
  test_config(&c);
  c.lease_interrupt_limit = 0;
  assert_int_equal(lease_engine_create(&c, &e2), -EINVAL);
  test_config(&c);
  c.lease_evict_low_limit = 5;
  c.lease_evict_high_limit = 4;
  assert_int_equal(lease_engine_create(&c, &e2), -EINVAL);
  test_config(&c);
  assert_int_equal(lease_engine_timer_start(E), -EINVAL); /* fake clock */
  lease_engine_destroy(NULL);
}

/* ==== cancel ==== */

static void t_cancel_waiting(void **st_) {
  (void)st_;
  slot sb, sc;
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("B", 1, X, &sb);
  wait_("C", 1, X, &sc);
  assert_int_equal(lease_cancel(E, "B", 1, sb.ticket + 100), -ENOENT); /* never issued */
  assert_int_equal(lease_cancel(E, "B", 1, 0), -ENOENT);
  assert_int_equal(lease_cancel(E, "nobody", 1, sb.ticket), -ENOENT);
  assert_int_equal(lease_cancel(E, "C", 1, sb.ticket), -ENOENT); /* not C's */
  assert_int_equal(lease_cancel(E, "B", 1, sb.ticket), 0);
  assert_int_equal(rst("B", 1), LEASE_RECORD_NONE);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(sb.count, 0);
  expect_answer(&sc, EXCL);
  assert_int_equal(lease_cancel(E, "C", 1, sc.ticket), -EALREADY);
  assert_int_equal(lease_cancel(E, "B", 1, sb.ticket), -EALREADY);
  /* B may ask again */
  wait_("B", 1, S, &sb);
  lease_stats s;
  lease_engine_stats(E, &s);
  assert_int_equal(s.cancels, 1);
}

/* Cancelling the exclusive that shared requests queued behind lets them in. */
static void t_cancel_unblocks_shared(void **st_) {
  (void)st_;
  slot sb, sc;
  assert_int_equal(now_("A", 1, S), SHARED);
  wait_("B", 1, X, &sb);
  wait_("C", 1, S, &sc);
  assert_int_equal(lease_cancel(E, "B", 1, sb.ticket), 0);
  expect_answer(&sc, SHARED);
  assert_int_equal(sb.count, 0);
}

static void t_cancel_promote(void **st_) {
  (void)st_;
  slot pa;
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("B", 1, S), SHARED);
  wait_("A", 1, P, &pa);
  assert_int_equal(lease_cancel(E, "A", 1, pa.ticket), 0);
  assert_int_equal(lease_check(E, "A", 1, LEASE_ACCESS_READ), 0);
  assert_int_equal(now_("B", 1, R), RELEASED);
  assert_int_equal(pa.count, 0); /* withdrawn: unanswered */
  assert_int_equal(rst("A", 1), LEASE_RECORD_EXCLUSIVE_GRANTED);
  assert_int_equal(now_("A", 1, R), RELEASED);
}

/* ==== mount removal ==== */

static void t_unmount_releases_everything(void **st_) {
  (void)st_;
  slot sc1, sa3, pb5, sd6;
  assert_int_equal(now_("A", 1, X), EXCL);
  assert_int_equal(now_("A", 2, S), SHARED);
  assert_int_equal(now_("B", 3, X), EXCL);
  assert_int_equal(now_("A", 5, S), SHARED);
  assert_int_equal(now_("B", 5, S), SHARED);
  assert_int_equal(now_("D", 6, X), EXCL);
  wait_("C", 1, S, &sc1);
  wait_("A", 3, X, &sa3);
  wait_("B", 5, P, &pb5);
  wait_("A", 6, S, &sd6);
  assert_int_equal(lease_mount_remove(E, "A"), 0);
  expect_answer(&sc1, SHARED); /* handed on by an exclusive holder: no upgrade */
  expect_answer(&sa3, DENIED);
  expect_answer(&pb5, PROMOTED);
  expect_answer(&sd6, DENIED);
  assert_int_equal(st(2), -1);
  assert_int_equal(rst("C", 1), LEASE_RECORD_SHARED_GRANTED);
  assert_int_equal(lease_mount_remove(E, "A"), -ESRCH);
  assert_int_equal(lease_mount_add(E, "A", "vol"), 0);
}

/* Removing a mount whose Promote is pending denies it and lets the queue in. */
static void t_unmount_promoter(void **st_) {
  (void)st_;
  slot pa, sc;
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("B", 1, S), SHARED);
  wait_("A", 1, P, &pa);
  wait_("C", 1, S, &sc); /* queued behind the promotion */
  assert_int_equal(lease_mount_remove(E, "A"), 0);
  expect_answer(&pa, DENIED);
  expect_answer(&sc, SHARED);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
  assert_int_equal(lease_mount_add(E, "A", "vol"), 0);
}

static void t_unmount_in_promoting_state(void **st_) {
  (void)st_;
  slot pa;
  shared_promoting(&pa);
  assert_int_equal(lease_mount_remove(E, "A"), 0);
  expect_answer(&pa, DENIED);
  /* nobody wants the lease any more: B keeps it, the round ends */
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_LONG_AGO);
  assert_int_equal(rst("B", 1), LEASE_RECORD_SHARED_GRANTED);
  advance((uint64_t)LIMIT * IVL * 2);
  assert_false(was_expired("B"));
  assert_int_equal(now_("B", 1, R), RELEASED); /* its answer to the interrupt */
  assert_int_equal(st(1), -1);
  assert_int_equal(lease_mount_add(E, "A", "vol"), 0);
}

/* The only waiter goes away during an interrupt round: the round ends, the
 * holders keep the lease, and their late answers are still accepted. */
static void t_round_ends_when_nobody_waits(void **st_) {
  (void)st_;
  slot sc, sb;
  shared_releasing(&sc);
  advance(IVL);
  assert_int_equal(lease_cancel(E, "C", 1, sc.ticket), 0);
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_LONG_AGO);
  assert_int_equal(rst("A", 1), LEASE_RECORD_SHARED_GRANTED);
  assert_int_equal(lease_engine_next_deadline(E, &(uint64_t){0}), -ENOENT);
  advance((uint64_t)LIMIT * IVL * 2);
  assert_int_equal(count_intr("A", INT_R, 1), 2);
  assert_int_equal(nexpired, 0);
  assert_int_equal(now_("A", 1, R), RELEASED);
  assert_int_equal(now_("B", 1, R), RELEASED);

  exclusive_releasing(&sb);
  assert_int_equal(lease_mount_remove(E, "B"), 0); /* waiter unmounted */
  assert_int_equal(lease_mount_add(E, "B", "vol"), 0);
  expect_answer(&sb, DENIED);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO);
  assert_int_equal(rst("A", 1), LEASE_RECORD_EXCLUSIVE_GRANTED);
  assert_int_equal(lease_check(E, "A", 1, LEASE_ACCESS_WRITE), 0);
  advance((uint64_t)LIMIT * IVL * 2);
  assert_int_equal(nexpired, 0);
  assert_int_equal(now_("A", 1, R), RELEASED);

  exclusive_demoting(&sb);
  assert_int_equal(lease_cancel(E, "B", 1, sb.ticket), 0);
  assert_int_equal(st(1), LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO);
  advance((uint64_t)LIMIT * IVL * 2);
  assert_int_equal(nexpired, 0);
  assert_int_equal(now_("A", 1, D), DEMOTED); /* late answer to the Demote */
  assert_int_equal(st(1), LEASE_STATE_SHARED_GRANTED_RECENTLY);
  assert_int_equal(now_("A", 1, R), RELEASED);
}

/* ==== checks, snapshot, stats ==== */

static void t_lease_check(void **st_) {
  (void)st_;
  slot sb, pa;
  assert_int_equal(lease_check(E, "A", 1, LEASE_ACCESS_READ), -EACCES);
  assert_int_equal(now_("A", 1, X), EXCL);
  assert_int_equal(lease_check(E, "A", 1, LEASE_ACCESS_WRITE), 0);
  wait_("B", 1, S, &sb);
  assert_int_equal(lease_check(E, "B", 1, LEASE_ACCESS_READ), -EACCES); /* waiting */
  advance(MIN);
  assert_int_equal(lease_check(E, "A", 1, LEASE_ACCESS_WRITE), 0); /* demoting keeps rights */
  assert_int_equal(now_("A", 1, D), DEMOTED);
  assert_int_equal(lease_check(E, "A", 1, LEASE_ACCESS_WRITE), -EACCES);
  assert_int_equal(lease_check(E, "A", 1, LEASE_ACCESS_READ), 0);
  assert_int_equal(lease_check(E, "B", 1, LEASE_ACCESS_READ), 0);
  advance(MIN);
  wait_("A", 1, P, &pa);
  assert_int_equal(lease_check(E, "B", 1, LEASE_ACCESS_READ), 0); /* releasing keeps read */
  assert_int_equal(lease_check(E, "A", 1, LEASE_ACCESS_READ), 0); /* promoting */
  assert_int_equal(lease_check(E, "A", 1, LEASE_ACCESS_WRITE), -EACCES);
  assert_int_equal(lease_check(E, "nobody", 1, LEASE_ACCESS_READ), -ESRCH);
  assert_int_equal(now_("B", 1, R), RELEASED);
  expect_answer(&pa, PROMOTED);
  assert_int_equal(lease_check(E, "A", 1, LEASE_ACCESS_WRITE), 0);
}

static void t_snapshot(void **st_) {
  (void)st_;
  slot sc, sd;
  assert_int_equal(lease_mount_add(E, "V2", "other"), 0);
  assert_int_equal(now_("V2", 7, S), SHARED);
  assert_int_equal(now_("A", 1, S), SHARED);
  assert_int_equal(now_("B", 1, S), SHARED);
  wait_("C", 1, X, &sc);
  wait_("D", 1, S, &sd);
  lease_snapshot *s;
  assert_int_equal(lease_engine_snapshot(E, NULL, &s), 0);
  assert_int_equal(s->nleases, 2);
  assert_int_equal(s->nmounts, 5);
  assert_int_equal(s->nwaiting, 2);
  lease_snapshot_lease *l = &s->leases[1]; /* LRU order: inode 7 first */
  assert_string_equal(s->leases[0].volume, "other");
  assert_string_equal(l->volume, "vol");
  assert_int_equal(l->inode, 1);
  assert_int_equal(l->state, LEASE_STATE_SHARED_GRANTED_RECENTLY);
  assert_false(l->stopping);
  assert_int_equal(l->nrecords, 4);
  assert_string_equal(l->records[0].mount_id, "A");
  assert_int_equal(l->records[0].state, LEASE_RECORD_SHARED_GRANTED);
  assert_string_equal(l->records[2].mount_id, "C");
  assert_int_equal(l->records[2].state, LEASE_RECORD_EXCLUSIVE_REQUESTED);
  assert_string_equal(l->records[3].mount_id, "D");
  lease_snapshot_free(s);
  assert_int_equal(lease_engine_snapshot(E, "other", &s), 0);
  assert_int_equal(s->nleases, 1);
  assert_int_equal(s->leases[0].nrecords, 1);
  lease_snapshot_free(s);
  assert_int_equal(lease_engine_snapshot(E, "none", &s), 0);
  assert_int_equal(s->nleases, 0);
  lease_snapshot_free(s);
  assert_int_equal(lease_mount_remove(E, "V2"), 0);
  assert_string_equal(lease_state_name(LEASE_STATE_EXCLUSIVE_DEMOTING), "ExclusiveDemoting");
  assert_string_equal(lease_record_state_name(LEASE_RECORD_SHARED_PROMOTING), "SharedPromoting");
  assert_string_equal(lease_request_name(P), "Promote");
  assert_string_equal(lease_reply_name(RELEASED), "Released");
  assert_string_equal(lease_reply_name(PENDING), "Pending");
  assert_string_equal(lease_state_name((lease_state)99), "?");
}

static void t_stats_registered(void **st_) {
  (void)st_;
  lease_engine_destroy(E);
  lease_config c;
  test_config(&c);
  c.stats_group = "LeaseTest";
  start_with(&c, 2);
  lease_engine *dup;
  assert_int_equal(lease_engine_create(&c, &dup), -EEXIST);
  slot sb;
  assert_int_equal(now_("A", 1, X), EXCL);
  wait_("B", 1, X, &sb);
  advance(MIN);
  assert_int_equal(now_("A", 1, R), RELEASED);
  expect_answer(&sb, EXCL);
  assert_int_equal(now_("B", 1, S), DENIED);
  char *text;
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, "IMGR", "LeaseTest", &text), 0);
  assert_non_null(strstr(text, "ExclusiveGrants"));
  assert_non_null(strstr(text, "ReleaseInterrupts"));
  free(text);
  lease_stats s;
  lease_engine_stats(E, &s);
  assert_int_equal(s.exclusive_grants, 2);
  assert_int_equal(s.releases, 1);
  assert_int_equal(s.release_interrupts, 1);
  assert_int_equal(s.denials, 1);
  assert_int_equal(s.shared_grants, 0);
  lease_engine_destroy(E);
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, "IMGR", "LeaseTest", &text), -ENOENT);
  test_config(&c);
  start_with(&c, 4);
}

/* ==== real-time paths: lease_request_wait and the timer thread ==== */

static lease_engine *RT;

static void rt_release_on_interrupt(const char *m, lease_interrupt_type t, uint64_t ino) {
  (void)t;
  lease_reply r;
  uint64_t tk;
  /* Callbacks run without the engine lock, so they may call back in. */
  assert_int_equal(lease_request(RT, m, ino, R, NULL, NULL, &r, &tk), 0);
  assert_int_equal(r, RELEASED);
}

static void t_realtime_wait_and_timer_thread(void **st_) {
  (void)st_;
  lease_config c;
  test_config(&c);
  c.now_ns = NULL;
  c.min_lease_duration_ns = 1000000;      /* 1 ms */
  c.lease_interrupt_interval_ns = 1000000;
  assert_int_equal(lease_engine_create(&c, &RT), 0);
  assert_int_equal(lease_mount_add(RT, "A", "vol"), 0);
  assert_int_equal(lease_mount_add(RT, "B", "vol"), 0);
  lease_reply r;
  assert_int_equal(lease_request_wait(RT, "A", 1, X, 1000000000ULL, &r), 0);
  assert_int_equal(r, EXCL);
  /* No timer thread: nobody interrupts A, so B times out and is withdrawn. */
  assert_int_equal(lease_request_wait(RT, "B", 1, X, 5000000ULL, &r), -ETIMEDOUT);
  lease_snapshot *s;
  assert_int_equal(lease_engine_snapshot(RT, NULL, &s), 0);
  assert_int_equal(s->nwaiting, 0);
  assert_int_equal(s->leases[0].nrecords, 1);
  lease_snapshot_free(s);
  /* With the timer thread, A is interrupted and releases from the callback. */
  intr_hook = rt_release_on_interrupt;
  assert_int_equal(lease_engine_timer_start(RT), 0);
  assert_int_equal(lease_engine_timer_start(RT), -EALREADY);
  assert_int_equal(lease_request_wait(RT, "B", 1, X, 10000000000ULL, &r), 0);
  assert_int_equal(r, EXCL);
  lease_engine_timer_stop(RT);
  lease_engine_timer_stop(RT);
  intr_hook = NULL;
  assert_int_equal(lease_request_wait(RT, "B", 1, R, 1000, &r), 0);
  assert_int_equal(r, RELEASED);
  assert_int_equal(lease_request_wait(RT, "nobody", 1, S, 1000, &r), -ESRCH);
  lease_engine_destroy(RT);
  RT = NULL;
}

/* ==== threads: several RPC threads, the timer thread, callbacks that call
 * back in. Outcomes only (no timing asserted). ==== */

#define NTH 4
#define NOPS 150

/* cb_arg points at the engine pointer, which exists only after create. */
static void stress_on_interrupt(void *arg, const char *m, lease_interrupt_type t, uint64_t ino) {
  lease_engine *e = *(lease_engine **)arg;
  lease_reply r;
  uint64_t tk;
  int rc = lease_request(e, m, ino, t == INT_D ? D : R, NULL, NULL, &r, &tk);
  assert_true(rc == 0 || rc == -ENOENT || rc == -ESRCH);
}

typedef struct { lease_engine *e; char id[8]; unsigned seed; int grants; } stress_arg;

static void *stress_main(void *p) {
  stress_arg *a = p;
  for (int i = 0; i < NOPS; i++) {
    uint64_t ino = 1 + (uint64_t)(rand_r(&a->seed) % 3);
    lease_request_type t = rand_r(&a->seed) % 2 ? S : X;
    lease_reply r;
    int rc = lease_request_wait(a->e, a->id, ino, t, 5000000000ULL, &r);
    assert_true(rc == 0 || rc == -ETIMEDOUT);
    if (rc != 0 || (r != SHARED && r != EXCL)) continue;
    a->grants++;
    if (r == SHARED && rand_r(&a->seed) % 4 == 0) {
      rc = lease_request_wait(a->e, a->id, ino, P, 5000000000ULL, &r);
      assert_true(rc == 0 || rc == -ENOENT || rc == -ETIMEDOUT);
    }
    /* may already be gone: the interrupt callback releases too */
    rc = lease_request_wait(a->e, a->id, ino, R, 1000000000ULL, &r);
    assert_true(rc == 0 || rc == -ENOENT);
  }
  return NULL;
}

static void t_threads_stress(void **st_) {
  (void)st_;
  static lease_engine *se;
  lease_config c;
  test_config(&c);
  c.now_ns = NULL;
  c.min_lease_duration_ns = 200000; /* 0.2 ms */
  c.lease_interrupt_interval_ns = 200000;
  c.lease_interrupt_limit = 1000;
  c.interrupt = stress_on_interrupt;
  c.expired = NULL;
  c.cb_arg = &se;
  assert_int_equal(lease_engine_create(&c, &se), 0);
  assert_int_equal(lease_engine_timer_start(se), 0);
  pthread_t th[NTH];
  stress_arg args[NTH];
  for (int i = 0; i < NTH; i++) {
    args[i] = (stress_arg){.e = se, .seed = 7u + (unsigned)i, .grants = 0};
    snprintf(args[i].id, sizeof args[i].id, "t%d", i);
    assert_int_equal(lease_mount_add(se, args[i].id, "vol"), 0);
    assert_int_equal(pthread_create(&th[i], NULL, stress_main, &args[i]), 0);
  }
  int grants = 0;
  for (int i = 0; i < NTH; i++) {
    pthread_join(th[i], NULL);
    grants += args[i].grants;
  }
  lease_engine_timer_stop(se);
  for (int i = 0; i < NTH; i++) assert_int_equal(lease_mount_remove(se, args[i].id), 0);
  lease_snapshot *snap;
  assert_int_equal(lease_engine_snapshot(se, NULL, &snap), 0);
  assert_int_equal(snap->nleases, 0);
  assert_int_equal(snap->nwaiting, 0);
  lease_snapshot_free(snap);
  assert_true(grants > 0);
  lease_engine_destroy(se);
  se = NULL;
}

/* ==== upstream TestRPCLease, single inode with 21 clients, then 5 inodes ==== */

#define NCL 21
static char cl_names[NCL][8];
static const char *cl(int i) { return cl_names[i]; }

static void t_upstream_rpc_lease_script(void **st_) {
  (void)st_;
  slot a, b, c;
  for (int i = 0; i < NCL; i++) {
    snprintf(cl_names[i], sizeof cl_names[i], "c%d", i);
    assert_int_equal(lease_mount_add(E, cl(i), "vol"), 0);
  }
  /* "1 Shared", "2 Shared", "3 Shared" */
  for (int n = 1; n <= 3; n++) {
    for (int i = 0; i < n; i++) assert_int_equal(now_(cl(i), 1, S), SHARED);
    for (int i = 0; i < n; i++) assert_int_equal(now_(cl(i), 1, R), RELEASED);
  }
  /* "1 Exclusive", "1 Exclusive then Demote" */
  assert_int_equal(now_(cl(0), 1, X), EXCL);
  assert_int_equal(now_(cl(0), 1, R), RELEASED);
  assert_int_equal(now_(cl(0), 1, X), EXCL);
  assert_int_equal(now_(cl(0), 1, D), DEMOTED);
  assert_int_equal(now_(cl(0), 1, R), RELEASED);
  /* "1 Exclusive then 1 Shared leading to Demotion" */
  assert_int_equal(now_(cl(0), 1, X), EXCL);
  wait_(cl(1), 1, S, &a);
  advance(MIN);
  assert_int_equal(count_intr(cl(0), INT_D, 1), 1);
  assert_int_equal(now_(cl(0), 1, D), DEMOTED);
  expect_answer(&a, SHARED);
  assert_int_equal(now_(cl(0), 1, R), RELEASED);
  assert_int_equal(now_(cl(1), 1, R), RELEASED);
  /* "1 Shared then 1 Exclusive leading to Release" and "1 Exclusive then 1
   * Exclusive leading to Release" */
  for (int k = 0; k < 2; k++) {
    nintr = 0;
    assert_int_equal(now_(cl(0), 1, k ? X : S), k ? EXCL : SHARED);
    wait_(cl(1), 1, X, &a);
    advance(MIN);
    assert_int_equal(count_intr(cl(0), INT_R, 1), 1);
    assert_int_equal(now_(cl(0), 1, R), RELEASED);
    expect_answer(&a, EXCL);
    assert_int_equal(now_(cl(1), 1, R), RELEASED);
  }
  /* "2 Shared then Promotion leading to Release" */
  nintr = 0;
  assert_int_equal(now_(cl(0), 1, S), SHARED);
  assert_int_equal(now_(cl(1), 1, S), SHARED);
  wait_(cl(0), 1, P, &a);
  advance(MIN);
  assert_int_equal(count_intr(cl(1), INT_R, 1), 1);
  assert_int_equal(now_(cl(1), 1, R), RELEASED);
  expect_answer(&a, PROMOTED);
  assert_int_equal(now_(cl(0), 1, R), RELEASED);
  /* "1 Exclusive then 2 Shared leading to Demotion" */
  nintr = 0;
  assert_int_equal(now_(cl(0), 1, X), EXCL);
  wait_(cl(1), 1, S, &a);
  wait_(cl(2), 1, S, &b);
  advance(MIN);
  assert_int_equal(count_intr(cl(0), INT_D, 1), 1);
  assert_int_equal(now_(cl(0), 1, D), DEMOTED);
  expect_answer(&a, SHARED);
  expect_answer(&b, SHARED);
  for (int i = 0; i < 3; i++) assert_int_equal(now_(cl(i), 1, R), RELEASED);
  /* "2 Shared then 1 Exclusive leading to Release" */
  nintr = 0;
  assert_int_equal(now_(cl(0), 1, S), SHARED);
  assert_int_equal(now_(cl(1), 1, S), SHARED);
  wait_(cl(2), 1, X, &a);
  advance(MIN);
  assert_int_equal(count_intr(cl(0), INT_R, 1), 1);
  assert_int_equal(count_intr(cl(1), INT_R, 1), 1);
  assert_int_equal(now_(cl(0), 1, R), RELEASED);
  assert_int_equal(now_(cl(1), 1, R), RELEASED);
  expect_answer(&a, EXCL);
  assert_int_equal(now_(cl(2), 1, R), RELEASED);
  /* "2 Exclusives leading to Release that Expires": exactly the limit */
  nintr = 0;
  assert_int_equal(now_(cl(0), 1, X), EXCL);
  wait_(cl(1), 1, X, &a);
  advance(MIN + (uint64_t)LIMIT * IVL);
  assert_int_equal(count_intr(cl(0), INT_R, 1), LIMIT);
  expect_answer(&a, EXCL);
  assert_true(was_expired(cl(0))); /* the upstream TODO: implicit unmount */
  assert_int_equal(now_(cl(1), 1, R), RELEASED);
  assert_int_equal(lease_mount_remove(E, cl(0)), 0);
  /* "2 Shared then 2 Promotions leading to Release" */
  nintr = 0;
  assert_int_equal(now_(cl(1), 1, S), SHARED);
  assert_int_equal(now_(cl(2), 1, S), SHARED);
  wait_(cl(1), 1, P, &a);
  advance(MIN);
  assert_int_equal(count_intr(cl(2), INT_R, 1), 1);
  assert_int_equal(now_(cl(2), 1, P), DENIED);
  assert_int_equal(now_(cl(2), 1, R), RELEASED);
  expect_answer(&a, PROMOTED);
  assert_int_equal(now_(cl(1), 1, R), RELEASED);
  /* "20 Shared" */
  for (int i = 1; i < NCL; i++) assert_int_equal(now_(cl(i), 1, S), SHARED);
  for (int i = 1; i < NCL; i++) assert_int_equal(now_(cl(i), 1, R), RELEASED);
  /* "20 Exclusives": a chain of hand-offs */
  nintr = 0;
  assert_int_equal(now_(cl(1), 1, X), EXCL);
  for (int i = 2; i < NCL; i++) {
    wait_(cl(i), 1, X, &c);
    advance(MIN);
    assert_int_equal(count_intr(cl(i - 1), INT_R, 1), 1);
    assert_int_equal(now_(cl(i - 1), 1, R), RELEASED);
    expect_answer(&c, EXCL);
  }
  assert_int_equal(now_(cl(NCL - 1), 1, R), RELEASED);
  assert_int_equal(st(1), -1);
  /* multi-inode: exclusive grants are independent per inode */
  for (int i = 1; i <= 5; i++) assert_int_equal(now_(cl(i), (uint64_t)i, X), EXCL);
  for (int i = 1; i <= 5; i++) assert_int_equal(now_(cl(i), (uint64_t)i, R), RELEASED);
  for (int i = 1; i < NCL; i++) assert_int_equal(lease_mount_remove(E, cl(i)), 0);
}

/* ==== randomized sequences with invariants ==== */

#define RM 3 /* mounts */
#define RI 4 /* inodes */
#define RSLOTS 8192

typedef struct {
  slot s;
  int mount, inode;
  bool cancelled;
  char id[8]; /* the mount id at request time */
} rslot;
static rslot rslots[RSLOTS];
static size_t nrslots;
static char rids[RM][8];
static unsigned rgen[RM];
static uint64_t rng;

static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

static bool is_excl_holder(lease_record_state s) {
  return s == LEASE_RECORD_EXCLUSIVE_GRANTED || s == LEASE_RECORD_EXCLUSIVE_DEMOTING ||
         s == LEASE_RECORD_EXCLUSIVE_RELEASING;
}
static bool is_shared_holder(lease_record_state s) {
  return s == LEASE_RECORD_SHARED_GRANTED || s == LEASE_RECORD_SHARED_PROMOTING ||
         s == LEASE_RECORD_SHARED_RELEASING;
}
static bool is_waiter(lease_record_state s) {
  return s == LEASE_RECORD_SHARED_REQUESTED || s == LEASE_RECORD_EXCLUSIVE_REQUESTED;
}

static void check_invariants(void) {
  lease_snapshot *s;
  assert_int_equal(lease_engine_snapshot(E, NULL, &s), 0);
  size_t waiting_recs = 0;
  for (size_t i = 0; i < s->nleases; i++) {
    lease_snapshot_lease *l = &s->leases[i];
    size_t nx = 0, ns = 0, nw = 0;
    for (size_t j = 0; j < l->nrecords; j++) {
      lease_record_state rs = l->records[j].state;
      nx += is_excl_holder(rs);
      ns += is_shared_holder(rs);
      nw += is_waiter(rs);
      for (size_t k = 0; k < j; k++) /* one record per mount */
        assert_string_not_equal(l->records[k].mount_id, l->records[j].mount_id);
    }
    assert_true(nx <= 1);             /* at most one exclusive holder */
    assert_false(nx && ns);           /* never shared and exclusive at once */
    assert_true(nx + ns > 0);         /* idle leases are freed; waiters need holders */
    (void)nw;
    waiting_recs += nw;
    switch (l->state) {
    case LEASE_STATE_SHARED_GRANTED_RECENTLY:
    case LEASE_STATE_SHARED_GRANTED_LONG_AGO:
    case LEASE_STATE_SHARED_PROMOTING:
    case LEASE_STATE_SHARED_RELEASING:
      assert_int_equal(nx, 0);
      break;
    case LEASE_STATE_NONE:
      fail();
      break;
    default:
      assert_int_equal(nx, 1);
    }
    if (l->state == LEASE_STATE_SHARED_GRANTED_LONG_AGO) assert_int_equal(nw, 0);
    if (l->state == LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO) assert_int_equal(nw, 0);
    if (l->stopping) assert_int_equal(nw, 0);
    size_t npromoting = 0;
    for (size_t j = 0; j < l->nrecords; j++)
      npromoting += l->records[j].state == LEASE_RECORD_SHARED_PROMOTING;
    assert_true(npromoting <= 1);
    /* an interrupt round outside a stop always has someone waiting for it */
    if (!l->stopping && (l->state == LEASE_STATE_SHARED_RELEASING ||
                         l->state == LEASE_STATE_EXCLUSIVE_RELEASING ||
                         l->state == LEASE_STATE_EXCLUSIVE_DEMOTING))
      assert_true(nw > 0);
    if (l->state == LEASE_STATE_SHARED_PROMOTING) assert_int_equal(npromoting, 1);
    if (l->interrupts_sent) assert_true(l->interrupts_sent <= LIMIT);
  }
  assert_true(s->nwaiting >= waiting_recs);
  lease_snapshot_free(s);
  for (size_t i = 0; i < nrslots; i++) assert_true(rslots[i].s.count <= 1); /* exactly once */
}

/* The answer a mount receives must match its record at that moment (the
 * callback runs right after the step that decided it, engine unlocked). */
static void check_reply_state(const char *id, int ino, lease_reply r) {
  lease_record_state rs = rst(id, (uint64_t)ino);
  switch (r) {
  case SHARED: assert_int_equal(rs, LEASE_RECORD_SHARED_GRANTED); break;
  case EXCL:
  case PROMOTED: assert_int_equal(rs, LEASE_RECORD_EXCLUSIVE_GRANTED); break;
  case DEMOTED:
    assert_true(rs == LEASE_RECORD_SHARED_GRANTED || rs == LEASE_RECORD_EXCLUSIVE_RELEASING);
    break;
  case RELEASED: assert_int_equal(rs, LEASE_RECORD_NONE); break;
  default: break;
  }
}

static void on_rand_reply(void *arg, lease_reply r) {
  rslot *rs = arg;
  on_reply(&rs->s, r);
  check_reply_state(rs->id, rs->inode, r);
}

static void rsubmit(int m, int ino, lease_request_type t) {
  if (nrslots >= RSLOTS) return;
  rslot *rs = &rslots[nrslots];
  memset(rs, 0, sizeof *rs);
  rs->mount = m;
  rs->inode = ino;
  snprintf(rs->id, sizeof rs->id, "%s", rids[m]);
  lease_reply r;
  int rc = lease_request(E, rids[m], (uint64_t)ino, t, on_rand_reply, rs, &r, &rs->s.ticket);
  assert_true(rc == 0 || rc == -ENOENT || rc == -ESRCH);
  if (rc == 0 && r == PENDING) nrslots++;
  else if (rc == 0) check_reply_state(rids[m], ino, r);
}

/* A well-behaved client answers its interrupts (Release or Demote). */
static void answer_interrupts(size_t from, bool always) {
  size_t end = nintr;
  for (size_t i = from; i < end; i++) {
    if (!always && rnd(3) == 0) continue; /* sometimes ignore (toward expiry) */
    for (int m = 0; m < RM; m++)
      if (!strcmp(intrs[i].mount, rids[m]))
        rsubmit(m, (int)intrs[i].inode, intrs[i].type == INT_D && rnd(2) ? D : R);
  }
}

static void remount(int m) {
  lease_mount_remove(E, rids[m]);
  snprintf(rids[m], sizeof rids[m], "m%d.%u", m, ++rgen[m]);
  assert_int_equal(lease_mount_add(E, rids[m], "vol"), 0);
  for (size_t i = 0; i < nrslots; i++)
    if (rslots[i].mount == m && rslots[i].s.count == 0 && !rslots[i].cancelled)
      fail_msg("waiting request of a removed mount left unanswered");
}

static void run_random(uint64_t seed) {
  lease_engine_destroy(E);
  lease_config c;
  test_config(&c);
  c.lease_evict_low_limit = 2;
  c.lease_evict_high_limit = 3;
  start_with(&c, 0);
  rng = seed;
  nrslots = 0;
  for (int m = 0; m < RM; m++) {
    rgen[m] = 0;
    snprintf(rids[m], sizeof rids[m], "m%d.0", m);
    assert_int_equal(lease_mount_add(E, rids[m], "vol"), 0);
  }
  for (int step = 0; step < 1500; step++) {
    size_t mark = nintr;
    int m = (int)rnd(RM), ino = 1 + (int)rnd(RI);
    switch (rnd(10)) {
    case 0: case 1: case 2: rsubmit(m, ino, (lease_request_type)rnd(5)); break;
    case 3: rsubmit(m, ino, R); break;
    case 4: advance(1 + rnd(MIN)); break;
    case 5: advance(1 + rnd(IVL)); break;
    case 6:
      if (nrslots) {
        rslot *rs = &rslots[rnd((uint32_t)nrslots)];
        if (rs->s.count == 0 && !rs->cancelled) {
          int rc = lease_cancel(E, rids[rs->mount], (uint64_t)rs->inode, rs->s.ticket);
          assert_true(rc == 0 || rc == -EALREADY || rc == -ENOENT);
          if (rc == 0) rs->cancelled = true;
        }
      }
      break;
    case 7: if (rnd(8) == 0) lease_stop(E, "vol", (uint64_t)ino); break;
    case 8: if (rnd(6) == 0) remount(m); break;
    default: break;
    }
    /* expired mounts are unmounted by "imgr" */
    while (nexpired) {
      char id[LEASE_MOUNT_ID_MAX + 1];
      snprintf(id, sizeof id, "%s", expired_ids[--nexpired]);
      for (int k = 0; k < RM; k++)
        if (!strcmp(id, rids[k])) remount(k);
    }
    answer_interrupts(mark, false);
    check_invariants();
  }
  /* Drain: clients now answer every interrupt and release what they hold. */
  for (int round = 0; round < 200; round++) {
    size_t mark = nintr;
    for (int m = 0; m < RM; m++)
      for (int ino = 1; ino <= RI; ino++)
        if (rnd(2)) rsubmit(m, ino, R);
    advance(IVL);
    answer_interrupts(mark, true);
    while (nexpired) {
      char id[LEASE_MOUNT_ID_MAX + 1];
      snprintf(id, sizeof id, "%s", expired_ids[--nexpired]);
      for (int k = 0; k < RM; k++)
        if (!strcmp(id, rids[k])) remount(k);
    }
    check_invariants();
  }
  for (int m = 0; m < RM; m++)
    for (int ino = 1; ino <= RI; ino++) rsubmit(m, ino, R);
  for (size_t i = 0; i < nrslots; i++)
    if (!rslots[i].cancelled) assert_int_equal(rslots[i].s.count, 1); /* all answered */
  lease_snapshot *s;
  assert_int_equal(lease_engine_snapshot(E, NULL, &s), 0);
  assert_int_equal(s->nwaiting, 0);
  assert_int_equal(s->nleases, 0);
  lease_snapshot_free(s);
  for (int m = 0; m < RM; m++) assert_int_equal(lease_mount_remove(E, rids[m]), 0);
  test_config(&c);
  lease_engine_destroy(E);
  start_with(&c, 4);
}

static void t_random_sequences(void **st_) {
  (void)st_;
  for (uint64_t seed = 1; seed <= 200; seed++) run_random(seed * 0x9E3779B97F4A7C15ULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  log_configure(NULL, false, false); /* expiry warnings are expected here */
  const struct CMUnitTest tests[] = {
      T(t_none_shared),
      T(t_none_exclusive),
      T(t_sgr_shared_restarts_timer),
      T(t_sgr_shared_queues_behind_waiter),
      T(t_sgr_exclusive_queues_without_interrupt),
      T(t_sgla_shared),
      T(t_sgla_exclusive),
      T(t_shared_promoting_queues),
      T(t_shared_releasing_queues),
      T(t_xgr_queues),
      T(t_xgla_shared_demotes),
      T(t_xgla_exclusive_releases),
      T(t_xdemoting_queues),
      T(t_xreleasing_queues),
      T(t_record_exists_denied),
      T(t_no_lease_object),
      T(t_promote_sgr_alone),
      T(t_promote_sgr_deferred_to_pop),
      T(t_promote_second_denied),
      T(t_promote_sgla_alone),
      T(t_promote_sgla_others),
      T(t_promote_wrong_record),
      T(t_demote_in_shared_states_denied),
      T(t_demote_shared_releasing_denied),
      T(t_demote_xgr_grants_leading_shared),
      T(t_demote_xgla),
      T(t_demote_xdemoting),
      T(t_demote_xreleasing_denied),
      T(t_demote_not_holder),
      T(t_release_sgr_last_frees),
      T(t_release_sgr_last_grants_exclusive_waiter),
      T(t_release_sgr_last_completes_promotion),
      T(t_release_sgla_last_frees),
      T(t_release_shared_promoting),
      T(t_release_shared_releasing),
      T(t_release_xgr),
      T(t_release_xgr_lone_shared_not_upgraded),
      T(t_release_xgla),
      T(t_release_xdemoting_head_exclusive),
      T(t_release_xdemoting_lone_shared_upgraded),
      T(t_release_xdemoting_shared_run),
      T(t_release_xreleasing),
      T(t_pop_sgr_idle),
      T(t_pop_xgr_idle),
      T(t_pop_xgr_exclusive_head),
      T(t_late_tick_replays_schedule),
      T(t_interrupts_resent_then_expiry),
      T(t_expiry_shared_promoting_answers_promoted),
      T(t_expiry_shared_releasing),
      T(t_expiry_exclusive_demoting),
      T(t_expiry_exclusive_releasing),
      T(t_expiry_revokes_whole_mount),
      T(t_expiry_two_mounts_no_grant_to_dying),
      T(t_stop_exclusive),
      T(t_stop_shared),
      T(t_stop_denies_promotion),
      T(t_stop_demoting),
      T(t_stop_demoting_release),
      T(t_stop_expiry),
      T(t_eviction),
      T(t_eviction_of_the_new_lease),
      T(t_lease_hard_cap),
      T(t_waiting_cap),
      T(t_mount_registry),
      T(t_volumes_separate),
      T(t_config_checks),
      T(t_cancel_waiting),
      T(t_cancel_unblocks_shared),
      T(t_cancel_promote),
      T(t_unmount_releases_everything),
      T(t_unmount_promoter),
      T(t_unmount_in_promoting_state),
      T(t_round_ends_when_nobody_waits),
      T(t_lease_check),
      T(t_snapshot),
      T(t_stats_registered),
      T(t_realtime_wait_and_timer_thread),
      T(t_threads_stress),
      T(t_upstream_rpc_lease_script),
      T(t_random_sequences),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
