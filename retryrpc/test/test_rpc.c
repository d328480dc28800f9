/*
 * retryrpc client and server end to end, over TCP (built as test_rpc_tcp)
 * and over TLS (the same file built with RRPC_TEST_TLS as test_rpc_tls).
 * Upstream tests (retryrpc.md 14) plus fault injection at every stage,
 * server restart, upcall routing, client expiry, garbage input, deadlines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bucketstats.h"
#include "rpc_fixture.h"
#include "rrpc_internal.h"

#ifdef RRPC_TEST_TLS
#define USE_TLS true
#else
#define USE_TLS false
#endif

static fx_env env;
static _Atomic unsigned next_token = 1;

static unsigned new_token(void) {
  unsigned t = atomic_fetch_add(&next_token, 1);
  assert_true(t < FX_TOKENS);
  return t;
}

static void sleep_ms(unsigned ms) { usleep(ms * 1000); }

/* Wait up to 10 s for cond; false on timeout. */
#define WAIT_FOR(cond) \
  ({ bool ok_ = false; for (int i_ = 0; i_ < 1000; i_++) { if (cond) { ok_ = true; break; } sleep_ms(10); } ok_; })

static rrpc_server *default_server(void) {
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  return fx_server_start(&sc);
}

static rrpc_client *default_client(rrpc_server *s) {
  rrpc_client_config cc;
  fx_client_config(&env, rrpc_server_port(s), &cc);
  return fx_client(&cc);
}

/* Upstream testServer and testRegister. */
static void test_server_basic(void **state) {
  (void)state;
  rrpc_server *s = default_server();
  rrpc_client *c = default_client(s);
  assert_int_equal(rrpc_client_id(c), 0); /* lazy connect */

  fx_ping(c, "Ping Me!");
  assert_int_equal(rrpc_server_completed_count(s), 1);
  assert_int_equal(rrpc_client_id(c), 1);
  char g[32];
  rrpc_client_stats_group(c, g, sizeof g);
  assert_string_equal(g, "ClientSide-1");

  json_t *req = json_pack("{s:s}", "Message", "Ping Me!"), *rep = NULL;
  assert_int_equal(rrpc_client_send(c, "RpcTestPingWithClientID", req, &rep, NULL, 0), 0);
  assert_string_equal(json_string_value(json_object_get(rep, "Message")),
                      "Client ID: 1 pong 8 bytes");
  json_decref(rep);
  assert_int_equal(rrpc_server_completed_count(s), 2);

  char *err = NULL;
  rep = NULL;
  assert_int_equal(rrpc_client_send(c, "RpcTestPingWithError", req, &rep, &err, 0), -ENOENT);
  assert_string_equal(err, "errno: 2");
  assert_null(rep);
  free(err);
  assert_int_equal(rrpc_server_completed_count(s), 3);

  assert_int_equal(rrpc_client_send(c, "RpcTestInvalidMethod", req, NULL, &err, 0), -ENOENT);
  assert_string_equal(err, "errno: 2");
  free(err);
  assert_int_equal(rrpc_server_completed_count(s), 4);

  /* a large reply (RpcTestPingLarge) */
  assert_int_equal(rrpc_client_send(c, "RpcTestPingLarge", req, &rep, NULL, 0), 0);
  assert_int_equal(strlen(json_string_value(json_object_get(rep, "Message"))),
                   strlen("pong 8 bytes") + 102000);
  json_decref(rep);
  json_decref(req);

  /* stats (spec 13): server per client and per client-method, client side */
  char *out = NULL;
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, RRPC_STATS_PKG, "1", &out), 0);
  assert_non_null(strstr(out, "proxyfs.retryrpc.1.TrimAddCompleted total:5\n"
                              "proxyfs.retryrpc.1.TrimRmCompleted total:0\n"
                              "proxyfs.retryrpc.1.CallWrapRPCUsec avg:"));
  assert_non_null(strstr(out, "proxyfs.retryrpc.1.RPCattempted total:5\n"
                              "proxyfs.retryrpc.1.RPCcompleted total:5\n"
                              "proxyfs.retryrpc.1.RPCretried total:0\n"));
  free(out);
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, RRPC_STATS_PKG, "1-RpcTestPing", &out), 0);
  assert_non_null(strstr(out, "proxyfs.retryrpc.1-RpcTestPing.Count total:1\n"));
  free(out);
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, RRPC_STATS_PKG, "ClientSide-1", &out), 0);
  assert_non_null(strstr(out, "proxyfs.retryrpc.ClientSide-1.SendCalled total:5\n"
                              "proxyfs.retryrpc.ClientSide-1.ReplyCalled total:5\n"));
  free(out);
  rrpc_client_destroy(c);
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, RRPC_STATS_PKG, "ClientSide-1", &out), -ENOENT);
  rrpc_server_destroy(s);
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, RRPC_STATS_PKG, "1", &out), -ENOENT);
}

static void test_register_rejects_duplicates(void **state) {
  (void)state;
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  rrpc_method m[] = {{"A", NULL, NULL}};
  rrpc_server *s;
  assert_int_equal(rrpc_server_create(&sc, m, 1, &s), -EINVAL);
}

/* ---- fault injection -------------------------------------------------- */

typedef struct {
  rrpc_fault_stage stage;
  _Atomic uint8_t fired[FX_TOKENS]; /* by request ID: fire once each */
  _Atomic unsigned count;
} fault_plan;

static bool fault_hook(void *ctx, rrpc_fault_stage st, uint64_t cid, uint64_t rid) {
  fault_plan *p = ctx;
  /* Every third request, once, at the planned stage. */
  if (st != p->stage || rid % 3 != 0 || rid >= FX_TOKENS)
    return false;
  if (atomic_exchange(&p->fired[rid], 1))
    return false;
  atomic_fetch_add(&p->count, 1);
  return true;
}

typedef struct {
  rrpc_client *c;
  unsigned tokens[16];
  int n;
  uint64_t worst_ns;
} caller;

static void *caller_main(void *arg) {
  caller *k = arg;
  for (int i = 0; i < k->n; i++) {
    uint64_t t0 = rrpc_now_ns();
    int rc = fx_exec(k->c, k->tokens[i], 15000000000ull);
    uint64_t dt = rrpc_now_ns() - t0;
    if (dt > k->worst_ns)
      k->worst_ns = dt;
    if (rc != 0) {
      fprintf(stderr, "call %d of a caller failed: %s\n", i, strerror(-rc));
      k->tokens[i] = 0; /* marks the failure for the main thread */
    }
  }
  return NULL;
}

/* Concurrent callers; every call must succeed with its own reply and run
 * exactly once on the server. */
static void run_callers(rrpc_client *c, int nthreads, int per_thread) {
  caller k[8];
  pthread_t t[8];
  for (int i = 0; i < nthreads; i++) {
    k[i] = (caller){.c = c, .n = per_thread};
    for (int j = 0; j < per_thread; j++)
      k[i].tokens[j] = new_token();
    pthread_create(&t[i], NULL, caller_main, &k[i]);
  }
  for (int i = 0; i < nthreads; i++) {
    pthread_join(t[i], NULL);
    for (int j = 0; j < per_thread; j++) {
      assert_int_not_equal(k[i].tokens[j], 0);
      assert_int_equal(atomic_load(&fx_execs[k[i].tokens[j]]), 1);
    }
    /* Faults cost a reconnect, never a call timeout. */
    assert_true(k[i].worst_ns < 15000000000ull);
  }
}

static void run_fault_stage(rrpc_fault_stage stage, bool server_side) {
  fault_plan *plan = calloc(1, sizeof *plan);
  plan->stage = stage;
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  if (server_side) {
    sc.fault_hook = fault_hook;
    sc.fault_ctx = plan;
  }
  rrpc_server *s = fx_server_start(&sc);
  rrpc_client_config cc;
  fx_client_config(&env, rrpc_server_port(s), &cc);
  if (!server_side) {
    cc.fault_hook = fault_hook;
    cc.fault_ctx = plan;
  }
  rrpc_client *c = fx_client(&cc);
  run_callers(c, 4, 8);
  assert_true(atomic_load(&plan->count) >= 5); /* the faults really happened */
  rrpc_client_destroy(c);
  rrpc_server_destroy(s);
  free(plan);
}

typedef struct {
  rrpc_fault_stage stage;
  bool server_side;
} fault_case;

static fault_case fc_before_send = {RRPC_FAULT_CLIENT_BEFORE_SEND, false},
                  fc_mid_send = {RRPC_FAULT_CLIENT_MID_SEND, false},
                  fc_received = {RRPC_FAULT_SERVER_RECEIVED, true},
                  fc_before_reply = {RRPC_FAULT_SERVER_BEFORE_REPLY, true},
                  fc_mid_reply = {RRPC_FAULT_SERVER_MID_REPLY, true};

static void test_fault_stage(void **state) {
  fault_case *fc = *state;
  run_fault_stage(fc->stage, fc->server_side);
}

#define FAULT_TEST(name, fc) {name, test_fault_stage, NULL, NULL, &(fc)}

typedef struct {
  rrpc_server *s;
  _Atomic bool stop;
} closer;

static void *closer_main(void *arg) {
  closer *k = arg;
  while (!atomic_load(&k->stop)) {
    /* Long enough for a (sanitized, loaded) TLS reconnect to complete
     * between cuts: the dial retry limit counts failed dials in a row. */
    sleep_ms(50);
    rrpc_server_close_client_conns(k->s);
  }
  return NULL;
}

/* Upstream stress: the server keeps cutting every connection while
 * several clients call concurrently. */
static void test_stress_close_conns(void **state) {
  (void)state;
  rrpc_server *s = default_server();
  rrpc_client_config cc;
  fx_client_config(&env, rrpc_server_port(s), &cc);
  cc.retry_limit = 16;
  rrpc_client *c1 = fx_client(&cc), *c2 = fx_client(&cc);
  closer k = {.s = s};
  pthread_t t;
  pthread_create(&t, NULL, closer_main, &k);
  run_callers(c1, 4, 10);
  run_callers(c2, 4, 10);
  atomic_store(&k.stop, true);
  pthread_join(t, NULL);
  rrpc_client_destroy(c1);
  rrpc_client_destroy(c2);
  rrpc_server_destroy(s);
}

/* Upstream TestTCPStress/TestTLSStress with manual trims: 15 clients
 * call concurrently; every 10th call of a client cuts all connections;
 * each call is followed by an upcall to its client. Every call runs once
 * with its own reply, upcalls reach only their client, and after the
 * calls the acknowledgement trim leaves exactly one reply per client (the
 * unacknowledged last one), the TTL trim none. */
enum { ST_CLIENTS = 15, ST_THREADS = 4, ST_CALLS = 8 };

typedef struct {
  rrpc_server *s;
  rrpc_client *c;
  _Atomic unsigned calls, upcalls, misrouted;
  char want[32];
} st_client;

static void st_upcall(void *ctx, const void *p, size_t len) {
  st_client *k = ctx;
  if (len != strlen(k->want) || memcmp(p, k->want, len))
    atomic_fetch_add(&k->misrouted, 1);
  atomic_fetch_add(&k->upcalls, 1);
}

static void *st_thread(void *arg) {
  st_client *k = arg;
  for (int i = 0; i < ST_CALLS; i++) {
    unsigned tok = new_token();
    if (fx_exec(k->c, tok, 20000000000ull) != 0 || atomic_load(&fx_execs[tok]) != 1)
      atomic_fetch_add(&k->misrouted, 1000); /* fails the test below */
    if (atomic_fetch_add(&k->calls, 1) % 10 == 9)
      rrpc_server_close_client_conns(k->s);
    rrpc_server_send_upcall(k->s, rrpc_client_id(k->c), k->want, strlen(k->want));
  }
  return NULL;
}

static void test_stress_upstream(void **state) {
  (void)state;
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  sc.manual_trim = true;
  sc.long_trim_ns = 10000000ull;
  sc.client_expiry_ns = 3600000000000ull;
  rrpc_server *s = fx_server_start(&sc);
  static st_client k[ST_CLIENTS];
  pthread_t t[ST_CLIENTS][ST_THREADS];
  for (int i = 0; i < ST_CLIENTS; i++) {
    memset(&k[i], 0, sizeof k[i]);
    k[i].s = s;
    rrpc_client_config cc;
    fx_client_config(&env, rrpc_server_port(s), &cc);
    cc.retry_limit = 16;
    cc.upcall = st_upcall;
    cc.upcall_ctx = &k[i];
    k[i].c = fx_client(&cc);
    fx_ping(k[i].c, "hello"); /* learn the ID for the upcall text */
    snprintf(k[i].want, sizeof k[i].want, "to %" PRIu64, rrpc_client_id(k[i].c));
  }
  for (int i = 0; i < ST_CLIENTS; i++)
    for (int j = 0; j < ST_THREADS; j++)
      pthread_create(&t[i][j], NULL, st_thread, &k[i]);
  for (int i = 0; i < ST_CLIENTS; i++)
    for (int j = 0; j < ST_THREADS; j++)
      pthread_join(t[i][j], NULL);
  unsigned upcalls = 0;
  const uint64_t n = 1 + ST_THREADS * ST_CALLS; /* calls so far per client */
  for (int i = 0; i < ST_CLIENTS; i++) {
    assert_int_equal(atomic_load(&k[i].misrouted), 0);
    upcalls += atomic_load(&k[i].upcalls);
    /* before its last call each client has seen every reply */
    assert_true(WAIT_FOR(rrpc_client_highest_consecutive(k[i].c) == n));
    fx_ping(k[i].c, "last");
  }
  assert_true(upcalls > 0); /* best effort: some are lost to the cuts */
  rrpc_server_trim(s, true, false);
  assert_int_equal(rrpc_server_completed_count(s), ST_CLIENTS);
  sleep_ms(30);
  rrpc_server_trim(s, false, true);
  assert_int_equal(rrpc_server_completed_count(s), 0);
  for (int i = 0; i < ST_CLIENTS; i++)
    rrpc_client_destroy(k[i].c);
  rrpc_server_destroy(s);
}

/* One worker and a one-entry queue: callers wait (back-pressure), none
 * fails or runs twice. */
static void test_small_queue_backpressure(void **state) {
  (void)state;
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  sc.workers = 1;
  sc.max_queue = 1;
  sc.max_queue_bytes = 1;
  rrpc_server *s = fx_server_start(&sc);
  rrpc_client *c = default_client(s);
  run_callers(c, 8, 6);
  rrpc_client_destroy(c);
  rrpc_server_destroy(s);
}

/* A call slower than deadline_io makes the client reconnect and re-send
 * (spec 7.1); the re-sent copy must not run the method again. */
static void test_slow_call_runs_once(void **state) {
  (void)state;
  rrpc_server *s = default_server();
  rrpc_client_config cc;
  fx_client_config(&env, rrpc_server_port(s), &cc);
  cc.deadline_io_ns = 200000000ull;
  rrpc_client *c = fx_client(&cc);
  unsigned tok = new_token();
  json_t *req = json_pack("{s:i,s:i}", "Token", (int)tok, "SleepMs", 1000), *rep = NULL;
  assert_int_equal(rrpc_client_send(c, "Exec", req, &rep, NULL, 10000000000ull), 0);
  assert_int_equal(json_integer_value(json_object_get(rep, "Token")), tok);
  assert_int_equal(atomic_load(&fx_execs[tok]), 1);
  json_decref(req);
  json_decref(rep);
  rrpc_client_destroy(c);
  rrpc_server_destroy(s);
}

/* A call's deadline holds even when the server never answers. */
static void test_call_deadline(void **state) {
  (void)state;
  rrpc_server *s = default_server();
  rrpc_client *c = default_client(s);
  unsigned tok = new_token();
  json_t *req = json_pack("{s:i,s:i}", "Token", (int)tok, "SleepMs", 1500);
  uint64_t t0 = rrpc_now_ns();
  assert_int_equal(rrpc_client_send(c, "Exec", req, NULL, NULL, 300000000ull), -ETIMEDOUT);
  uint64_t dt = rrpc_now_ns() - t0;
  assert_true(dt >= 300000000ull && dt < 1000000000ull);
  json_decref(req);
  fx_ping(c, "after the timeout");
  assert_true(WAIT_FOR(atomic_load(&fx_execs[tok]) == 1));
  rrpc_client_destroy(c);
  rrpc_server_destroy(s);
  /* Nobody listening: the call ends at its deadline, not after 8 retries. */
  rrpc_client_config cc;
  fx_client_config(&env, 1, &cc); /* nothing listens on port 1 */
  c = fx_client(&cc);
  t0 = rrpc_now_ns();
  int rc = fx_exec(c, new_token(), 400000000ull);
  dt = rrpc_now_ns() - t0;
  assert_int_equal(rc, -ETIMEDOUT);
  assert_true(dt < 1500000000ull);
  char err[256];
  rrpc_client_last_error(c, err, sizeof err);
  assert_non_null(strstr(err, "Connection refused"));
  rrpc_client_destroy(c);
}

/* The server process restarts: the old session is gone. Calls in flight
 * fail with -ESTALE without running on the new server; the next call gets
 * a new session. */
static void test_server_restart(void **state) {
  (void)state;
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  sc.sequential_ids = false; /* the fix for spec 16.2 is what makes this safe */
  rrpc_server *s = fx_server_start(&sc);
  uint16_t port = rrpc_server_port(s);
  rrpc_client_config cc;
  fx_client_config(&env, port, &cc);
  rrpc_client *c = fx_client(&cc);
  unsigned t1 = new_token();
  assert_int_equal(fx_exec(c, t1, 0), 0);
  uint64_t id1 = rrpc_client_id(c);
  assert_true(id1 != 0);
  rrpc_server_destroy(s);

  sc.port = port;
  s = fx_server_start(&sc);
  unsigned t2 = new_token();
  assert_int_equal(fx_exec(c, t2, 10000000000ull), -ESTALE);
  assert_int_equal(atomic_load(&fx_execs[t2]), 0);
  char err[256];
  rrpc_client_last_error(c, err, sizeof err);
  assert_string_equal(err, "server lost this client's session");
  unsigned t3 = new_token();
  assert_int_equal(fx_exec(c, t3, 10000000000ull), 0);
  assert_int_equal(atomic_load(&fx_execs[t3]), 1);
  assert_int_equal(atomic_load(&fx_execs[t1]), 1);
  assert_true(rrpc_client_id(c) != 0 && rrpc_client_id(c) != id1);
  /* the failed call counts as acknowledged: the watermark moves on */
  assert_true(WAIT_FOR(rrpc_client_highest_consecutive(c) == 3));
  rrpc_client_destroy(c);
  rrpc_server_destroy(s);
}

/* A listener that accepts and closes at once, counting connections. */
typedef struct {
  int lfd;
  _Atomic unsigned accepts;
  _Atomic bool stop;
} slammer;

static void *slammer_main(void *arg) {
  slammer *k = arg;
  while (!atomic_load(&k->stop)) {
    struct pollfd p = {.fd = k->lfd, .events = POLLIN};
    if (poll(&p, 1, 20) == 1) {
      int fd = accept(k->lfd, NULL, NULL);
      if (fd >= 0) {
        atomic_fetch_add(&k->accepts, 1);
        close(fd);
      }
    }
  }
  return NULL;
}

/* The server's port now closes every connection at once: the client backs
 * off and fails the call after retry_limit, instead of reconnecting in a
 * tight loop (with PassID it reads nothing, so dials "succeed"). */
static void test_reconnect_storm_bounded(void **state) {
  (void)state;
  rrpc_server *s = default_server();
  uint16_t port = rrpc_server_port(s);
  rrpc_client_config cc;
  fx_client_config(&env, port, &cc);
  cc.retry_limit = 3;
  cc.retry_delay_ns = 10000000ull;
  rrpc_client *c = fx_client(&cc);
  fx_ping(c, "hello");
  rrpc_server_destroy(s);

  slammer k = {.lfd = socket(AF_INET, SOCK_STREAM, 0)};
  int one = 1;
  setsockopt(k.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(k.lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(k.lfd, 16), 0);
  pthread_t t;
  pthread_create(&t, NULL, slammer_main, &k);
  int rc = fx_exec(c, new_token(), 10000000000ull);
  assert_true(rc < 0 && rc != -ETIMEDOUT);
  /* each round: at most retry_limit + 1 connections, a few rounds at most
   * (the client reconnects at once after the first loss) */
  assert_true(atomic_load(&k.accepts) <= 4 * (cc.retry_limit + 1));
  rrpc_client_destroy(c);
  atomic_store(&k.stop, true);
  pthread_join(t, NULL);
  close(k.lfd);
}

/* ---- upcalls ---------------------------------------------------------- */

typedef struct {
  pthread_mutex_t mu;
  char got[32][32];
  int n;
} upcall_log;

static void on_upcall(void *ctx, const void *p, size_t len) {
  upcall_log *l = ctx;
  pthread_mutex_lock(&l->mu);
  if (l->n < 32 && len < 32) {
    memcpy(l->got[l->n], p, len);
    l->got[l->n][len] = 0;
    l->n++;
  }
  pthread_mutex_unlock(&l->mu);
}

static int log_count(upcall_log *l) {
  pthread_mutex_lock(&l->mu);
  int n = l->n;
  pthread_mutex_unlock(&l->mu);
  return n;
}

static void test_upcalls(void **state) {
  (void)state;
  rrpc_server *s = default_server();
  upcall_log l1 = {.mu = PTHREAD_MUTEX_INITIALIZER}, l2 = {.mu = PTHREAD_MUTEX_INITIALIZER};
  rrpc_client_config cc;
  fx_client_config(&env, rrpc_server_port(s), &cc);
  cc.upcall = on_upcall;
  cc.upcall_ctx = &l1;
  rrpc_client *c1 = fx_client(&cc);
  cc.upcall_ctx = &l2;
  rrpc_client *c2 = fx_client(&cc);
  fx_ping(c1, "one");
  fx_ping(c2, "two");
  const char *msg = "server msg back to client";
  assert_int_equal(rrpc_server_send_upcall(s, rrpc_client_id(c2), msg, strlen(msg)), 0);
  assert_true(WAIT_FOR(log_count(&l2) == 1));
  assert_string_equal(l2.got[0], msg);
  /* in order, to the right client only */
  for (int i = 0; i < 10; i++) {
    char m[16];
    snprintf(m, sizeof m, "up %d", i);
    assert_int_equal(rrpc_server_send_upcall(s, rrpc_client_id(c1), m, strlen(m)), 0);
  }
  assert_true(WAIT_FOR(log_count(&l1) == 10));
  for (int i = 0; i < 10; i++) {
    char m[16];
    snprintf(m, sizeof m, "up %d", i);
    assert_string_equal(l1.got[i], m);
  }
  sleep_ms(50);
  assert_int_equal(log_count(&l2), 1);
  assert_int_equal(rrpc_server_send_upcall(s, 999999, "x", 1), -ENOENT);
  rrpc_client_destroy(c1);
  rrpc_client_destroy(c2);
  rrpc_server_destroy(s);
}

/* ---- trimming and expiry ---------------------------------------------- */

/* Upstream testLoopClientAckTrim / TTL trim, with manual trims. */
static void test_ack_and_ttl_trim(void **state) {
  (void)state;
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  sc.manual_trim = true;
  sc.long_trim_ns = 10000000ull;
  sc.client_expiry_ns = 3600000000000ull;
  rrpc_server *s = fx_server_start(&sc);
  rrpc_client_config cc;
  fx_client_config(&env, rrpc_server_port(s), &cc);
  enum { NCLIENTS = 3, NCALLS = 20 };
  rrpc_client *c[NCLIENTS];
  for (int i = 0; i < NCLIENTS; i++) {
    c[i] = fx_client(&cc);
    for (int j = 0; j < NCALLS; j++)
      fx_ping(c[i], "Ping Me!");
    assert_int_equal(rrpc_client_highest_consecutive(c[i]), NCALLS);
  }
  assert_int_equal(rrpc_server_completed_count(s), NCLIENTS * NCALLS);
  rrpc_server_trim(s, true, false);
  /* each client's last request is acknowledged by none: one reply stays */
  assert_int_equal(rrpc_server_completed_count(s), NCLIENTS);
  sleep_ms(30);
  rrpc_server_trim(s, false, true);
  assert_int_equal(rrpc_server_completed_count(s), 0);
  assert_int_equal(rrpc_server_cache_bytes(s), 0);
  assert_int_equal(rrpc_server_client_count(s), NCLIENTS); /* still connected */
  for (int i = 0; i < NCLIENTS; i++)
    rrpc_client_destroy(c[i]);
  rrpc_server_destroy(s);
}

/* A client that vanishes is expired with all its memory. */
static void test_client_expiry(void **state) {
  (void)state;
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  sc.short_trim_ns = 20000000ull;
  sc.client_expiry_ns = 200000000ull;
  rrpc_server *s = fx_server_start(&sc);
  rrpc_client_config cc;
  fx_client_config(&env, rrpc_server_port(s), &cc);
  rrpc_client *stay = fx_client(&cc), *gone = fx_client(&cc);
  fx_ping(stay, "stay");
  for (int i = 0; i < 5; i++)
    fx_ping(gone, "gone");
  assert_int_equal(rrpc_server_client_count(s), 2);
  assert_true(rrpc_server_cache_bytes(s) > 0);
  uint64_t gone_id = rrpc_client_id(gone);
  rrpc_client_destroy(gone);
  assert_true(WAIT_FOR(rrpc_server_client_count(s) == 1));
  assert_int_equal(rrpc_server_send_upcall(s, gone_id, "x", 1), -ENOENT);
  /* the survivor still works; only its own reply stays cached */
  fx_ping(stay, "still here");
  assert_true(WAIT_FOR(rrpc_server_completed_count(s) == 1));
  rrpc_client_destroy(stay);
  assert_true(WAIT_FOR(rrpc_server_client_count(s) == 0));
  /* The trimmer frees an expired client's replies just after it leaves the
   * client map, so the bytes reach 0 a moment after the count does. */
  assert_true(WAIT_FOR(rrpc_server_cache_bytes(s) == 0));
  rrpc_server_destroy(s);
}

/* The per-client cache cap evicts the oldest replies. */
static void test_cache_cap(void **state) {
  (void)state;
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  sc.manual_trim = true;
  sc.cache_bytes_per_client = 250000; /* two large replies */
  rrpc_server *s = fx_server_start(&sc);
  rrpc_client *c = default_client(s);
  json_t *req = json_pack("{s:s}", "Message", "big");
  for (int i = 0; i < 6; i++) {
    json_t *rep = NULL;
    assert_int_equal(rrpc_client_send(c, "RpcTestPingLarge", req, &rep, NULL, 0), 0);
    json_decref(rep);
  }
  json_decref(req);
  assert_true(rrpc_server_cache_bytes(s) <= 250000);
  assert_int_equal(rrpc_server_completed_count(s), 2);
  rrpc_client_destroy(c);
  rrpc_server_destroy(s);
}

/* ---- hostile input closes only that connection ------------------------ */

/* rcvbuf 0: the default (autotuned) receive buffer. */
static int raw_connect_buf(uint16_t port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static int raw_connect(uint16_t port) { return raw_connect_buf(port, 0); }

/* Reads until EOF; returns the bytes read before it, -1 on timeout. */
static ssize_t read_to_eof(int fd, uint8_t *buf, size_t cap) {
  size_t got = 0;
  for (;;) {
    ssize_t r = read(fd, buf + got, cap - got);
    if (r == 0)
      return (ssize_t)got;
    if (r < 0)
      return errno == ECONNRESET ? (ssize_t)got : -1;
    got += (size_t)r;
    if (got == cap)
      return -1;
  }
}

/* MSG_NOSIGNAL: a server that closed early must fail this assertion, not
 * kill the test with SIGPIPE. */
static void send_raw(int fd, const void *p, size_t n) {
  assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void test_garbage_closes_only_that_connection(void **state) {
  (void)state;
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  sc.max_frame = 4096;
  rrpc_server *s = fx_server_start(&sc);
  uint16_t port = rrpc_server_port(s);
  rrpc_client_config cc;
  fx_client_config(&env, port, &cc);
  rrpc_client *good = fx_client(&cc);
  fx_ping(good, "before");
  uint8_t buf[256];

  /* garbage instead of a header (or of a TLS ClientHello) */
  int fd = raw_connect(port);
  send_raw(fd, "GET / HTTP/1.1\r\n\r\n", 18);
  ssize_t n = read_to_eof(fd, buf, sizeof buf);
  if (USE_TLS) {
    /* maybe a TLS alert, then EOF; the rest speaks plain frames */
    assert_true(n >= 0);
    close(fd);
    fx_ping(good, "after");
    rrpc_client_destroy(good);
    rrpc_server_destroy(s);
    return;
  }
  assert_int_equal(n, 0);
  close(fd);

  /* an oversized frame after a valid handshake */
  fd = raw_connect(port);
  uint8_t h[RRPC_HDR_LEN];
  rrpc_hdr_encode(h, 0, RRPC_MSG_ASK_ID);
  send_raw(fd, h, sizeof h);
  rrpc_hdr_encode(h, 4097, RRPC_MSG_RPC);
  send_raw(fd, h, sizeof h);
  n = read_to_eof(fd, buf, sizeof buf);
  assert_true(n > RRPC_HDR_LEN); /* the ReturnUniqueID, then EOF */
  close(fd);

  /* a garbage body in a valid frame */
  fd = raw_connect(port);
  rrpc_hdr_encode(h, 0, RRPC_MSG_ASK_ID);
  send_raw(fd, h, sizeof h);
  rrpc_hdr_encode(h, 5, RRPC_MSG_RPC);
  send_raw(fd, h, sizeof h);
  send_raw(fd, "\x01{]}x", 5);
  assert_true(read_to_eof(fd, buf, sizeof buf) > RRPC_HDR_LEN);
  close(fd);

  /* a message type the server never accepts after the handshake */
  fd = raw_connect(port);
  rrpc_hdr_encode(h, 0, RRPC_MSG_ASK_ID);
  send_raw(fd, h, sizeof h);
  send_raw(fd, h, sizeof h);
  assert_true(read_to_eof(fd, buf, sizeof buf) > RRPC_HDR_LEN);
  close(fd);

  /* PassID of a client the server does not know: ReturnUniqueID "0", EOF */
  fd = raw_connect(port);
  rrpc_frame f;
  assert_int_equal(rrpc_frame_make(RRPC_MSG_PASS_ID, "424242", 6, &f), 0);
  send_raw(fd, f.p, f.len);
  free(f.p);
  n = read_to_eof(fd, buf, sizeof buf);
  assert_int_equal(n, RRPC_HDR_LEN + 1);
  assert_int_equal(buf[9], RRPC_MSG_RETURN_ID);
  assert_int_equal(buf[RRPC_HDR_LEN], '0');
  close(fd);

  /* a half header, then silence, then hang-up */
  fd = raw_connect(port);
  send_raw(fd, h, 5);
  close(fd);

  fx_ping(good, "after");
  assert_int_equal(rrpc_client_id(good), 1);
  rrpc_client_destroy(good);
  rrpc_server_destroy(s);
}

#ifndef RRPC_TEST_TLS
/* A client that sends requests and never reads the replies: the server's
 * workers must not wait on it (others are served at once), and its
 * connection is dropped when its output queue passes the cap. */
static void test_slow_reader_isolated(void **state) {
  (void)state;
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  sc.workers = 2;
  sc.max_conn_out_bytes = 1 << 20;
  rrpc_server *s = fx_server_start(&sc);
  rrpc_client *good = default_client(s);
  fx_ping(good, "before");
  assert_int_equal(rrpc_server_conn_count(s), 1);

  /* A small fixed receive buffer: the ~20 MB of replies cannot fit in
   * it, the server's send buffer (<= 4 MB) and the 1 MiB queue. */
  int fd = raw_connect_buf(rrpc_server_port(s), 65536);
  uint8_t h[RRPC_HDR_LEN];
  rrpc_hdr_encode(h, 0, RRPC_MSG_ASK_ID);
  send_raw(fd, h, sizeof h);
  unsigned large0 = atomic_load(&fx_large_calls);
  json_t *req = json_pack("{s:s}", "Message", "x");
  for (uint64_t i = 1; i <= 200; i++) { /* ~20 MB of replies */
    rrpc_frame f;
    assert_int_equal(rrpc_request_encode(0, i, 0, "RpcTestPingLarge", req, &f), 0);
    send_raw(fd, f.p, f.len);
    free(f.p);
  }
  json_decref(req);
  uint64_t t0 = rrpc_now_ns();
  for (int i = 0; i < 5; i++)
    fx_ping(good, "meanwhile");
  /* well below deadline_io (10 s), which a worker stuck in a write would take */
  assert_true(rrpc_now_ns() - t0 < 3000000000ull);
  /* the server drops the non-reading connection by itself */
  assert_true(WAIT_FOR(rrpc_server_conn_count(s) == 1));
  assert_true(atomic_load(&fx_large_calls) - large0 > 10);
  /* the reader that would not read has been cut off: EOF (or a reset,
   * when the server closed with our requests unread) comes */
  static uint8_t sink[1 << 16];
  ssize_t r;
  while ((r = read(fd, sink, sizeof sink)) > 0)
    ;
  if (r < 0)
    assert_string_equal(strerror(errno), strerror(ECONNRESET));
  close(fd);
  fx_ping(good, "after");
  rrpc_client_destroy(good);
  rrpc_server_destroy(s);
}
#endif

static int setup(void **state) {
  (void)state;
  fx_env_init(&env, USE_TLS);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fx_env_free(&env);
  return 0;
}

int main(void) {
  /* The daemons ignore SIGPIPE (ut_daemon_main); so does this test process,
   * so that a write to a cut connection anywhere shows up as an error. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_server_basic),
      cmocka_unit_test(test_register_rejects_duplicates),
      FAULT_TEST("test_fault_client_before_send", fc_before_send),
      FAULT_TEST("test_fault_client_mid_send", fc_mid_send),
      FAULT_TEST("test_fault_server_received", fc_received),
      FAULT_TEST("test_fault_server_before_reply", fc_before_reply),
      FAULT_TEST("test_fault_server_mid_reply", fc_mid_reply),
      cmocka_unit_test(test_stress_close_conns),
      cmocka_unit_test(test_stress_upstream),
      cmocka_unit_test(test_small_queue_backpressure),
      cmocka_unit_test(test_slow_call_runs_once),
      cmocka_unit_test(test_call_deadline),
      cmocka_unit_test(test_server_restart),
      cmocka_unit_test(test_reconnect_storm_bounded),
      cmocka_unit_test(test_upcalls),
      cmocka_unit_test(test_ack_and_ttl_trim),
      cmocka_unit_test(test_client_expiry),
      cmocka_unit_test(test_cache_cap),
      cmocka_unit_test(test_garbage_closes_only_that_connection),
#ifndef RRPC_TEST_TLS /* its raw client speaks plain TCP */
      cmocka_unit_test(test_slow_reader_isolated),
#endif
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
