/* retryrpc server (spec sections 4, 6, 7.2, 8, 9, 13). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "bucketstats.h"
#include "logger.h"
#include "rrpc_internal.h"

#define SLICE_NS 200000000ull /* how often blocked threads look at the stop flag */

#define SLOG(s, lvl, ...) \
  do { if ((s)->cfg.log_enabled) log_msg(lvl, __VA_ARGS__); } while (0)

typedef struct srv_client srv_client;
typedef struct srv_conn srv_conn;

/* A reply frame shared by the cache and the writers sending it. */
typedef struct {
  atomic_int refs;
  rrpc_frame f;
} sframe;

typedef struct cache_ent {
  rrpc_map_ent me; /* key: request ID */
  sframe *reply;   /* NULL while the method runs ("in progress") */
  uint64_t done_ns;
  struct cache_ent *prev, *next; /* completion order (LRU), done entries only */
} cache_ent;

typedef struct {
  bs_total Count;
  bs_log2 TimeOfRPCCall;
} method_stats;

struct srv_client {
  rrpc_map_ent me; /* key: client ID, in server->clients */
  atomic_int refs; /* the clients map, each connection attached to it */
  rrpc_server *srv;
  pthread_mutex_t mu;
  rrpc_map cache;
  cache_ent *lru_head, *lru_tail;
  size_t cache_bytes, ndone;
  uint64_t hrs, prev_hrs;
  srv_conn *conn;           /* current connection (a reference), or NULL */
  uint64_t disconnected_ns; /* when conn became NULL */
  srv_client *dead_next;    /* rrpc_server_trim's list of expired clients */
  bool registered;
  /* stats, field order = print order (spec 13) */
  bs_total TrimAddCompleted, TrimRmCompleted;
  bs_log2 CallWrapRPCUsec, ReplySize;
  bs_total RPCattempted, RPCcompleted, RPCretried;
  uint64_t longest_rpc_ns, largest_reply;
  const char *longest_method, *largest_method;
  method_stats *ms; /* one per method */
};

/* A frame waiting in a connection's output queue. */
typedef struct outmsg {
  struct outmsg *next;
  sframe *f;
  bool cut; /* RRPC_FAULT_SERVER_MID_REPLY: write half, then drop */
} outmsg;

/*
 * Each connection has a reader thread (conn_main) and a writer thread
 * (writer_main). Workers and upcalls only queue frames, so no worker ever
 * waits on a slow client's socket, and no lock is held across socket I/O.
 * A client that does not read gets its connection dropped once its queue
 * passes max_conn_out_bytes.
 */
struct srv_conn {
  atomic_int refs; /* reader thread, queued jobs, client->conn, senders */
  rrpc_server *srv;
  rrpc_sock sock;
  srv_client *ci;      /* after the handshake (a reference) */
  srv_conn *prev, *next;
  pthread_mutex_t omu; /* the output queue */
  pthread_cond_t ocv;
  outmsg *oh, *ot;
  size_t obytes;
  bool oclosing; /* the reader is leaving: flush, then the writer ends */
  bool odead;    /* writing failed or the queue overflowed: drop all */
};

typedef struct {
  srv_conn *conn;
  uint8_t *body;
  size_t len;
} job;

struct rrpc_server {
  rrpc_server_config cfg;
  rrpc_method *methods;
  size_t nmethods;
  SSL_CTX *tls;
  int lfd;
  uint16_t port;
  bool started;

  pthread_mutex_t mu; /* clients, conns, nconns, stopping, id nonce */
  pthread_cond_t cv;  /* nconns changed, stop requested */
  rrpc_map clients;
  srv_conn *conns;
  unsigned nconns;
  bool stopping;
  uint64_t id_nonce;
  atomic_size_t cache_bytes;

  pthread_mutex_t qmu;
  pthread_cond_t qcv_put, qcv_get;
  job *q;
  unsigned qhead, qlen;
  size_t qbytes;
  bool qstop;

  pthread_t accept_thread, trim_thread;
  pthread_t *workers;
  unsigned nworkers;
  bool trim_running;
};

/* ---- references -------------------------------------------------------- */

static void sframe_put(sframe *f) {
  if (f && atomic_fetch_sub(&f->refs, 1) == 1) {
    free(f->f.p);
    free(f);
  }
}

static void cache_ent_free(rrpc_server *s, srv_client *ci, cache_ent *e) {
  if (e->reply) {
    ci->cache_bytes -= e->reply->f.len;
    atomic_fetch_sub(&s->cache_bytes, e->reply->f.len);
    ci->ndone--;
    sframe_put(e->reply);
  }
  free(e);
}

static void lru_unlink(srv_client *ci, cache_ent *e) {
  if (e->prev)
    e->prev->next = e->next;
  else
    ci->lru_head = e->next;
  if (e->next)
    e->next->prev = e->prev;
  else
    ci->lru_tail = e->prev;
  e->prev = e->next = NULL;
}

/* Drop a done entry; caller holds ci->mu. */
static void cache_drop(srv_client *ci, cache_ent *e) {
  lru_unlink(ci, e);
  rrpc_map_remove(&ci->cache, e->me.key);
  cache_ent_free(ci->srv, ci, e);
  bs_total_inc(&ci->TrimRmCompleted);
}

static void client_unregister(srv_client *ci) {
  if (!ci->registered)
    return;
  char g[64];
  snprintf(g, sizeof g, "%" PRIu64, ci->me.key);
  bs_unregister(RRPC_STATS_PKG, g);
  for (size_t i = 0; i < ci->srv->nmethods; i++) {
    snprintf(g, sizeof g, "%" PRIu64 "-%s", ci->me.key, ci->srv->methods[i].name);
    bs_unregister(RRPC_STATS_PKG, g);
  }
  ci->registered = false;
}

static void client_put(srv_client *ci) {
  if (atomic_fetch_sub(&ci->refs, 1) != 1)
    return;
  rrpc_server *s = ci->srv;
  size_t pos = 0;
  rrpc_map_ent *me = NULL;
  while ((me = rrpc_map_next(&ci->cache, &pos, NULL)) != NULL) {
    cache_ent *e = rrpc_container_of(rrpc_map_remove(&ci->cache, me->key), cache_ent, me);
    cache_ent_free(s, ci, e);
  }
  rrpc_map_free(&ci->cache);
  client_unregister(ci);
  pthread_mutex_destroy(&ci->mu);
  free(ci->ms);
  free(ci);
}

static void conn_get(srv_conn *c) { atomic_fetch_add(&c->refs, 1); }

static void conn_put(srv_conn *c) {
  if (atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  rrpc_sock_close(&c->sock);
  pthread_mutex_destroy(&c->omu);
  pthread_cond_destroy(&c->ocv);
  if (c->ci)
    client_put(c->ci);
  free(c);
}

static bool fault(rrpc_server *s, rrpc_fault_stage st, uint64_t cid, uint64_t rid) {
  return s->cfg.fault_hook && s->cfg.fault_hook(s->cfg.fault_ctx, st, cid, rid);
}

static sframe *sframe_wrap(rrpc_frame f) {
  sframe *sf = malloc(sizeof *sf);
  if (!sf) {
    free(f.p);
    return NULL;
  }
  atomic_init(&sf->refs, 1);
  sf->f = f;
  return sf;
}

/* Queue a frame for the writer (which takes its own reference). -ENOTCONN
 * when the connection is closing or dead, -ENOBUFS when the client lets
 * its replies pile up (the connection is dropped: it will reconnect and
 * re-send, and the cache answers). */
static int conn_send(srv_conn *c, sframe *f, bool cut_midway) {
  rrpc_server *s = c->srv;
  outmsg *m = malloc(sizeof *m);
  if (!m)
    return -ENOMEM;
  int rc = 0;
  pthread_mutex_lock(&c->omu);
  if (c->odead || c->oclosing) {
    rc = -ENOTCONN;
  } else if (c->oh && c->obytes + f->f.len > s->cfg.max_conn_out_bytes) {
    c->odead = true;
    rc = -ENOBUFS;
  } else {
    *m = (outmsg){NULL, f, cut_midway};
    atomic_fetch_add(&f->refs, 1);
    if (c->ot)
      c->ot->next = m;
    else
      c->oh = m;
    c->ot = m;
    c->obytes += f->f.len;
    pthread_cond_signal(&c->ocv);
  }
  pthread_mutex_unlock(&c->omu);
  if (rc) {
    free(m);
    if (rc == -ENOBUFS) {
      SLOG(s, LOG_LEVEL_WARN, "retryrpc server: client %" PRIu64
           " is not reading its replies, closing its connection", c->ci ? c->ci->me.key : 0);
      rrpc_sock_shutdown(&c->sock);
    }
  }
  return rc;
}

/* End a connection in order: its reader sees end-of-file and leaves, the
 * writer flushes what is queued, then the socket closes. */
static void conn_end(srv_conn *c) { shutdown(c->sock.fd, SHUT_RD); }

static void *writer_main(void *arg) {
  srv_conn *c = arg;
  rrpc_server *s = c->srv;
  pthread_mutex_lock(&c->omu);
  for (;;) {
    while (!c->oh && !c->oclosing)
      pthread_cond_wait(&c->ocv, &c->omu);
    outmsg *m = c->oh;
    if (!m)
      break;
    c->oh = m->next;
    if (!c->oh)
      c->ot = NULL;
    c->obytes -= m->f->f.len;
    bool dead = c->odead;
    /* While closing (the reader has left), flush briefly at most. */
    uint64_t dl = s->cfg.deadline_io_ns;
    if (c->oclosing && dl > 1000000000ull)
      dl = 1000000000ull;
    pthread_mutex_unlock(&c->omu);
    int rc = 0;
    if (!dead) {
      const rrpc_frame *f = &m->f->f;
      size_t n = m->cut ? RRPC_HDR_LEN + (f->len - RRPC_HDR_LEN) / 2 : f->len;
      rc = rrpc_sock_write(&c->sock, f->p, n, dl);
      if (rc)
        SLOG(s, LOG_LEVEL_WARN, "retryrpc server: write to client %" PRIu64 " failed: %s",
             c->ci ? c->ci->me.key : 0, strerror(-rc));
      if (rc || m->cut)
        rrpc_sock_shutdown(&c->sock);
    }
    sframe_put(m->f);
    free(m);
    pthread_mutex_lock(&c->omu);
    if (rc)
      c->odead = true;
  }
  pthread_mutex_unlock(&c->omu);
  return NULL;
}

/* ---- clients ------------------------------------------------------------ */

static void client_register(srv_client *ci) {
  rrpc_server *s = ci->srv;
  char g[64];
  snprintf(g, sizeof g, "%" PRIu64, ci->me.key);
  const bs_stat_desc d[] = {
      BS_DESC_TOTAL(&ci->TrimAddCompleted, "TrimAddCompleted"),
      BS_DESC_TOTAL(&ci->TrimRmCompleted, "TrimRmCompleted"),
      BS_DESC_LOG2(&ci->CallWrapRPCUsec, "CallWrapRPCUsec"),
      BS_DESC_LOG2(&ci->ReplySize, "ReplySize"),
      BS_DESC_TOTAL(&ci->RPCattempted, "RPCattempted"),
      BS_DESC_TOTAL(&ci->RPCcompleted, "RPCcompleted"),
      BS_DESC_TOTAL(&ci->RPCretried, "RPCretried"),
  };
  /* A failure (e.g. a group of that name already exists) costs only the
   * stats, never the client (spec 16.13). */
  int rc = bs_register(RRPC_STATS_PKG, g, d, sizeof d / sizeof d[0]);
  if (rc)
    SLOG(s, LOG_LEVEL_WARN, "retryrpc server: stats group %s not registered: %s", g,
         strerror(-rc));
  for (size_t i = 0; i < s->nmethods; i++) {
    snprintf(g, sizeof g, "%" PRIu64 "-%s", ci->me.key, s->methods[i].name);
    const bs_stat_desc md[] = {
        BS_DESC_TOTAL(&ci->ms[i].Count, "Count"),
        BS_DESC_LOG2(&ci->ms[i].TimeOfRPCCall, "TimeOfRPCCall"),
    };
    bs_register(RRPC_STATS_PKG, g, md, 2);
  }
  ci->registered = true;
}

/* A new client with a fresh ID, in the map; returns it with a reference
 * for the caller. */
static srv_client *client_new(rrpc_server *s) {
  srv_client *ci = calloc(1, sizeof *ci);
  if (!ci || !(ci->ms = calloc(s->nmethods ? s->nmethods : 1, sizeof *ci->ms))) {
    free(ci);
    return NULL;
  }
  ci->srv = s;
  ci->disconnected_ns = rrpc_now_ns(); /* not yet attached: no expiry */
  pthread_mutex_init(&ci->mu, NULL);
  rrpc_map_init(&ci->cache);
  atomic_init(&ci->refs, 2);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    uint64_t id;
    if (s->cfg.sequential_ids) {
      id = ++s->id_nonce;
    } else {
      /* Below 2^53 so that every JSON implementation reads it exactly. */
      if (getrandom(&id, sizeof id, 0) != sizeof id)
        id = rrpc_now_ns() ^ ++s->id_nonce;
      id &= (1ull << 53) - 1;
    }
    if (id != 0 && !rrpc_map_find(&s->clients, id)) {
      ci->me.key = id;
      break;
    }
  }
  int rc = rrpc_map_insert(&s->clients, &ci->me);
  pthread_mutex_unlock(&s->mu);
  if (rc) {
    rrpc_map_free(&ci->cache);
    pthread_mutex_destroy(&ci->mu);
    free(ci->ms);
    free(ci);
    return NULL;
  }
  client_register(ci);
  return ci;
}

static srv_client *client_find(rrpc_server *s, uint64_t id) {
  pthread_mutex_lock(&s->mu);
  rrpc_map_ent *me = rrpc_map_find(&s->clients, id);
  srv_client *ci = me ? rrpc_container_of(me, srv_client, me) : NULL;
  if (ci)
    atomic_fetch_add(&ci->refs, 1);
  pthread_mutex_unlock(&s->mu);
  return ci;
}

/* ---- request processing ------------------------------------------------ */

static const rrpc_method *method_find(rrpc_server *s, const char *name, size_t *idx) {
  for (size_t i = 0; i < s->nmethods; i++) {
    if (!strcmp(s->methods[i].name, name)) {
      *idx = i;
      return &s->methods[i];
    }
  }
  return NULL;
}

/* Evict oldest replies beyond the caps, never the newest one (its request
 * could still be re-sent, and running it again would break at-most-once). */
static void cache_enforce_caps(rrpc_server *s, srv_client *ci) {
  while (ci->lru_head && ci->lru_head != ci->lru_tail &&
         (ci->cache_bytes > s->cfg.cache_bytes_per_client ||
          atomic_load(&s->cache_bytes) > s->cfg.cache_bytes_total)) {
    SLOG(s, LOG_LEVEL_WARN,
         "retryrpc server: reply cache over its cap: evicting reply %" PRIu64
         " of client %" PRIu64, ci->lru_head->me.key, ci->me.key);
    cache_drop(ci, ci->lru_head);
  }
}

static void process(rrpc_server *s, srv_conn *c, const uint8_t *body, size_t len) {
  srv_client *ci = c->ci;
  rrpc_request rq;
  if (rrpc_request_decode(body, len, &rq) != 0) {
    /* The original drops it and would later die on it; we drop the
     * connection: the client re-sends after reconnecting. */
    SLOG(s, LOG_LEVEL_WARN, "retryrpc server: undecodable request from client %" PRIu64
         ", closing its connection", ci->me.key);
    conn_end(c);
    return;
  }
  if (fault(s, RRPC_FAULT_SERVER_RECEIVED, ci->me.key, rq.request_id)) {
    rrpc_sock_shutdown(&c->sock);
    rrpc_request_clear(&rq);
    return;
  }
  pthread_mutex_lock(&ci->mu);
  if (rq.highest_reply_seen > ci->hrs)
    ci->hrs = rq.highest_reply_seen;
  bs_total_inc(&ci->RPCattempted);
  rrpc_map_ent *me = rrpc_map_find(&ci->cache, rq.request_id);
  if (me) {
    cache_ent *e = rrpc_container_of(me, cache_ent, me);
    bs_total_inc(&ci->RPCretried);
    sframe *f = e->reply;
    if (f)
      atomic_fetch_add(&f->refs, 1);
    pthread_mutex_unlock(&ci->mu);
    /* In progress: the reply goes to the client's current connection when
     * the method returns, so this copy needs nothing. */
    if (f) {
      conn_send(c, f, false);
      sframe_put(f);
    }
    rrpc_request_clear(&rq);
    return;
  }
  if (rq.request_id <= ci->hrs) {
    /* A late copy of a request whose reply the client already has (its
     * acknowledgement may have trimmed the entry): never run it again. */
    bs_total_inc(&ci->RPCretried);
    pthread_mutex_unlock(&ci->mu);
    rrpc_request_clear(&rq);
    return;
  }
  cache_ent *e = calloc(1, sizeof *e);
  if (!e || (e->me.key = rq.request_id, rrpc_map_insert(&ci->cache, &e->me)) != 0) {
    pthread_mutex_unlock(&ci->mu);
    free(e);
    conn_end(c); /* out of memory: let the client retry */
    rrpc_request_clear(&rq);
    return;
  }
  pthread_mutex_unlock(&ci->mu);

  uint64_t t0 = rrpc_now_ns();
  size_t mi = 0;
  const rrpc_method *m = method_find(s, rq.method, &mi);
  json_t *result = NULL;
  char *errstr = NULL;
  /* An unknown method is "errno: 2" (ENOENT), as the original. */
  int rc = m ? m->fn(m->ctx, ci->me.key, rq.params0, &result, &errstr) : -ENOENT;
  if (rc >= 0) {
    free(errstr);
    errstr = NULL;
  } else if (!errstr || !*errstr) { /* an empty errstr would read as success */
    free(errstr);
    if (asprintf(&errstr, "errno: %d", -rc) < 0)
      errstr = NULL;
  }
  uint64_t t1 = rrpc_now_ns();
  sframe *f = malloc(sizeof *f);
  const char *es = rc < 0 && !errstr ? "errno: 12" : errstr; /* out of memory */
  if (f && rrpc_reply_encode(ci->me.key, rq.request_id, es, result, &f->f) != 0) {
    free(f);
    f = NULL;
  }
  json_decref(result);
  free(errstr);

  pthread_mutex_lock(&ci->mu);
  if (!f) {
    /* Nothing to cache: forget the request, the client will re-send. */
    rrpc_map_remove(&ci->cache, e->me.key);
    free(e);
    pthread_mutex_unlock(&ci->mu);
    conn_end(c);
    rrpc_request_clear(&rq);
    return;
  }
  atomic_init(&f->refs, 2); /* the cache and us */
  e->reply = f;
  e->done_ns = t1;
  e->prev = ci->lru_tail;
  if (ci->lru_tail)
    ci->lru_tail->next = e;
  else
    ci->lru_head = e;
  ci->lru_tail = e;
  ci->ndone++;
  ci->cache_bytes += f->f.len;
  atomic_fetch_add(&s->cache_bytes, f->f.len);
  bs_total_inc(&ci->TrimAddCompleted);
  bs_total_inc(&ci->RPCcompleted);
  bs_log2_add(&ci->CallWrapRPCUsec, (t1 - t0) / 1000);
  bs_log2_add(&ci->ReplySize, f->f.len - RRPC_HDR_LEN);
  if (m) {
    bs_total_inc(&ci->ms[mi].Count);
    bs_log2_add(&ci->ms[mi].TimeOfRPCCall, (t1 - t0) / 1000);
    if (t1 - t0 > ci->longest_rpc_ns) {
      ci->longest_rpc_ns = t1 - t0;
      ci->longest_method = m->name;
    }
    if (f->f.len - RRPC_HDR_LEN > ci->largest_reply) {
      ci->largest_reply = f->f.len - RRPC_HDR_LEN;
      ci->largest_method = m->name;
    }
  }
  cache_enforce_caps(s, ci);
  /* The current connection, which may be newer than the one the request
   * came on: a client that reconnected meanwhile gets its reply there. */
  srv_conn *target = ci->conn;
  if (target)
    conn_get(target);
  pthread_mutex_unlock(&ci->mu);

  if (target) {
    if (fault(s, RRPC_FAULT_SERVER_BEFORE_REPLY, ci->me.key, rq.request_id))
      rrpc_sock_shutdown(&target->sock);
    else
      conn_send(target, f, fault(s, RRPC_FAULT_SERVER_MID_REPLY, ci->me.key, rq.request_id));
    conn_put(target);
  }
  sframe_put(f);
  rrpc_request_clear(&rq);
}

static void *worker_main(void *arg) {
  rrpc_server *s = arg;
  pthread_mutex_lock(&s->qmu);
  for (;;) {
    while (!s->qlen && !s->qstop)
      pthread_cond_wait(&s->qcv_get, &s->qmu);
    if (!s->qlen)
      break;
    job j = s->q[s->qhead];
    s->qhead = (s->qhead + 1) % s->cfg.max_queue;
    s->qlen--;
    s->qbytes -= j.len;
    pthread_cond_broadcast(&s->qcv_put);
    bool stop = s->qstop; /* stopping: drop what is still queued */
    pthread_mutex_unlock(&s->qmu);
    if (!stop)
      process(s, j.conn, j.body, j.len);
    free(j.body);
    conn_put(j.conn);
    pthread_mutex_lock(&s->qmu);
  }
  pthread_mutex_unlock(&s->qmu);
  return NULL;
}

/* Queue a request; waits while the queue is full (back-pressure on this
 * connection). -ESHUTDOWN when the server stops. */
static int enqueue(rrpc_server *s, srv_conn *c, uint8_t *body, size_t len) {
  pthread_mutex_lock(&s->qmu);
  while ((s->qlen == s->cfg.max_queue ||
          (s->qlen && s->qbytes + len > s->cfg.max_queue_bytes)) && !s->qstop)
    rrpc_cond_wait_until(&s->qcv_put, &s->qmu, rrpc_now_ns() + SLICE_NS);
  if (s->qstop) {
    pthread_mutex_unlock(&s->qmu);
    return -ESHUTDOWN;
  }
  conn_get(c);
  s->q[(s->qhead + s->qlen) % s->cfg.max_queue] = (job){c, body, len};
  s->qlen++;
  s->qbytes += len;
  pthread_cond_signal(&s->qcv_get);
  pthread_mutex_unlock(&s->qmu);
  return 0;
}

/* ---- connections ------------------------------------------------------- */

/* Caller holds s->mu. */
static void conn_unlink(rrpc_server *s, srv_conn *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->nconns--;
}

static bool stopping(rrpc_server *s) {
  pthread_mutex_lock(&s->mu);
  bool st = s->stopping;
  pthread_mutex_unlock(&s->mu);
  return st;
}

/* Queue a frame made from type and body. */
static int send_new(srv_conn *c, uint16_t type, const void *body, size_t len) {
  rrpc_frame f;
  int rc = rrpc_frame_make(type, body, len, &f);
  if (rc)
    return rc;
  sframe *sf = sframe_wrap(f);
  if (!sf)
    return -ENOMEM;
  rc = conn_send(c, sf, false);
  sframe_put(sf);
  return rc;
}

static int send_id(srv_conn *c, uint64_t id) {
  char b[24];
  return send_new(c, RRPC_MSG_RETURN_ID, b, (size_t)rrpc_id_encode(id, b));
}

/* The handshake (spec 3.3), on the connection's own thread (spec 16.5). */
static int handshake(rrpc_server *s, srv_conn *c) {
  if (c->sock.ssl) {
    char err[256];
    int rc = rrpc_tls_handshake(c->sock.ssl, c->sock.fd, false,
                                rrpc_now_ns() + s->cfg.deadline_io_ns, err, sizeof err);
    if (rc) {
      SLOG(s, LOG_LEVEL_WARN, "retryrpc server: %s", err);
      return rc;
    }
  }
  rrpc_hdr h;
  uint8_t *body;
  int rc = rrpc_sock_read_frame(&c->sock, s->cfg.max_frame, 0, s->cfg.deadline_io_ns, &h,
                                &body);
  if (rc)
    return rc;
  uint64_t id = 0;
  srv_client *ci = NULL;
  if (h.type == RRPC_MSG_ASK_ID && h.len == 0) {
    ci = client_new(s);
    rc = ci ? 0 : -ENOMEM;
  } else if (h.type == RRPC_MSG_PASS_ID && rrpc_id_decode(body, h.len, &id) == 0) {
    ci = client_find(s, id);
    if (!ci) {
      /* Unknown (server restarted or client expired): say so with ID 0,
       * which no client has, then close (spec 16.1). */
      SLOG(s, LOG_LEVEL_WARN, "retryrpc server: PassID of unknown client %" PRIu64, id);
      send_id(c, 0);
      rc = -ESTALE;
    }
  } else {
    SLOG(s, LOG_LEVEL_WARN, "retryrpc server: bad first message (type %u), closing",
         h.type);
    rc = -EPROTO;
  }
  free(body);
  if (rc)
    return rc;
  c->ci = ci; /* our reference */
  conn_get(c);
  pthread_mutex_lock(&ci->mu);
  srv_conn *old = ci->conn;
  ci->conn = c;
  pthread_mutex_unlock(&ci->mu);
  if (old) {
    /* The client gave up on it; make sure it stops. */
    rrpc_sock_shutdown(&old->sock);
    conn_put(old);
  }
  if (h.type == RRPC_MSG_ASK_ID)
    return send_id(c, ci->me.key);
  return 0;
}

static void *conn_main(void *arg) {
  srv_conn *c = arg;
  rrpc_server *s = c->srv;
  pthread_t writer;
  bool have_writer = pthread_create(&writer, NULL, writer_main, c) == 0;
  int rc = have_writer ? handshake(s, c) : -EAGAIN;
  while (rc == 0) {
    rrpc_hdr h;
    uint8_t *body;
    rc = rrpc_sock_read_frame(&c->sock, s->cfg.max_frame, rrpc_now_ns() + SLICE_NS,
                              s->cfg.deadline_io_ns, &h, &body);
    if (rc == -EAGAIN) { /* idle between frames: fine (spec 16.8) */
      rc = stopping(s) ? -ESHUTDOWN : 0;
      continue;
    }
    if (rc) {
      if (rc == -EINVAL || rc == -EMSGSIZE)
        SLOG(s, LOG_LEVEL_WARN, "retryrpc server: bad frame from client %" PRIu64
             " (%s), closing its connection", c->ci->me.key, strerror(-rc));
      break;
    }
    if (h.type != RRPC_MSG_RPC) {
      SLOG(s, LOG_LEVEL_WARN, "retryrpc server: unexpected message type %u from client %"
           PRIu64 ", closing its connection", h.type, c->ci->me.key);
      free(body);
      break;
    }
    rc = enqueue(s, c, body, h.len);
    if (rc)
      free(body);
  }
  /* Let the writer flush what is queued (e.g. ReturnUniqueID "0"), then
   * end the connection. */
  pthread_mutex_lock(&c->omu);
  c->oclosing = true;
  pthread_cond_signal(&c->ocv);
  pthread_mutex_unlock(&c->omu);
  if (have_writer)
    pthread_join(writer, NULL);
  rrpc_sock_shutdown(&c->sock);
  if (c->ci) {
    srv_client *ci = c->ci;
    bool was_current = false;
    pthread_mutex_lock(&ci->mu);
    if (ci->conn == c) {
      ci->conn = NULL;
      ci->disconnected_ns = rrpc_now_ns();
      was_current = true;
    }
    pthread_mutex_unlock(&ci->mu);
    if (was_current)
      conn_put(c);
  }
  pthread_mutex_lock(&s->mu);
  conn_unlink(s, c);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  conn_put(c);
  return NULL;
}

static void *accept_main(void *arg) {
  rrpc_server *s = arg;
  while (!stopping(s)) {
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, (int)(SLICE_NS / 1000000)) <= 0)
      continue;
    int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    rrpc_set_keepalive(fd, s->cfg.keepalive_ns);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = NULL;
    if (s->tls && (!(ssl = SSL_new(s->tls)) || SSL_set_fd(ssl, fd) != 1)) {
      SSL_free(ssl);
      close(fd);
      continue;
    }
    srv_conn *c = calloc(1, sizeof *c);
    if (!c) {
      SSL_free(ssl);
      close(fd);
      continue;
    }
    c->srv = s;
    atomic_init(&c->refs, 1);
    rrpc_sock_init(&c->sock, fd, ssl);
    pthread_mutex_init(&c->omu, NULL);
    pthread_cond_init(&c->ocv, NULL);
    pthread_mutex_lock(&s->mu);
    bool full = s->nconns >= s->cfg.max_connections;
    if (!full) {
      c->next = s->conns;
      if (s->conns)
        s->conns->prev = c;
      s->conns = c;
      s->nconns++;
    }
    pthread_mutex_unlock(&s->mu);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    if (full || pthread_create(&t, &attr, conn_main, c) != 0) {
      if (full) {
        SLOG(s, LOG_LEVEL_WARN, "retryrpc server: %u connections open, refusing one",
             s->cfg.max_connections);
      } else {
        pthread_mutex_lock(&s->mu);
        conn_unlink(s, c);
        pthread_mutex_unlock(&s->mu);
      }
      conn_put(c);
    }
    pthread_attr_destroy(&attr);
  }
  return NULL;
}

/* ---- trimming (spec 8) ------------------------------------------------- */

static void trim_ack(srv_client *ci) {
  if (ci->hrs == ci->prev_hrs)
    return;
  for (cache_ent *e = ci->lru_head, *next; e; e = next) {
    next = e->next;
    if (e->me.key <= ci->hrs)
      cache_drop(ci, e);
  }
  ci->prev_hrs = ci->hrs;
}

static size_t trim_ttl(rrpc_server *s, srv_client *ci, uint64_t now) {
  size_t n = 0;
  while (ci->lru_head && ci->lru_head->done_ns + s->cfg.long_trim_ns < now) {
    cache_drop(ci, ci->lru_head);
    n++;
  }
  if (ci->longest_method)
    SLOG(s, LOG_LEVEL_INFO,
         "ID: %" PRIu64 " largestReplySize: %" PRIu64 " largestReplySizeMethod: %s "
         "longest RPC: %" PRIu64 "us longest RPC Method: %s",
         ci->me.key, ci->largest_reply, ci->largest_method ? ci->largest_method : "",
         ci->longest_rpc_ns / 1000, ci->longest_method);
  return n;
}

void rrpc_server_trim(rrpc_server *s, bool ack, bool ttl) {
  uint64_t now = rrpc_now_ns();
  size_t trimmed = 0;
  srv_client *dead = NULL;
  pthread_mutex_lock(&s->mu);
  size_t pos = 0;
  rrpc_map_ent *me = NULL;
  while ((me = rrpc_map_next(&s->clients, &pos, me)) != NULL) {
    srv_client *ci = rrpc_container_of(me, srv_client, me);
    pthread_mutex_lock(&ci->mu);
    if (ack)
      trim_ack(ci);
    if (ttl)
      trimmed += trim_ttl(s, ci, now);
    /* Idle or dead: no connection for client_expiry (keepalive ends the
     * connections of vanished hosts). */
    if (!ci->conn && now - ci->disconnected_ns >= s->cfg.client_expiry_ns) {
      ci->dead_next = dead;
      dead = ci;
    }
    pthread_mutex_unlock(&ci->mu);
  }
  for (srv_client *ci = dead; ci; ci = ci->dead_next)
    rrpc_map_remove(&s->clients, ci->me.key);
  pthread_mutex_unlock(&s->mu);
  while (dead) {
    srv_client *next = dead->dead_next;
    SLOG(s, LOG_LEVEL_INFO, "Trim - DELETE inactive clientInfo with ID: %" PRIu64,
         dead->me.key);
    client_unregister(dead);
    client_put(dead);
    dead = next;
  }
  if (ttl)
    SLOG(s, LOG_LEVEL_INFO, "Trimmed completed RetryRpcs - Total: %zu", trimmed);
}

static void *trim_main(void *arg) {
  rrpc_server *s = arg;
  uint64_t next_ttl = rrpc_now_ns() + s->cfg.long_trim_ns;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    rrpc_cond_wait_until(&s->cv, &s->mu, rrpc_now_ns() + s->cfg.short_trim_ns);
    if (s->stopping)
      break;
    pthread_mutex_unlock(&s->mu);
    uint64_t now = rrpc_now_ns();
    bool ttl = now >= next_ttl;
    if (ttl)
      next_ttl = now + s->cfg.long_trim_ns;
    rrpc_server_trim(s, true, ttl);
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* ---- public ----------------------------------------------------------- */

int rrpc_server_create(const rrpc_server_config *cfg, const rrpc_method *methods,
                       size_t nmethods, rrpc_server **out) {
  *out = NULL;
  for (size_t i = 0; i < nmethods; i++) {
    if (!methods[i].name || !*methods[i].name || !methods[i].fn)
      return -EINVAL;
    for (size_t j = 0; j < i; j++)
      if (!strcmp(methods[i].name, methods[j].name))
        return -EINVAL;
  }
  if ((cfg->tls_cert_file && *cfg->tls_cert_file) != (cfg->tls_key_file && *cfg->tls_key_file))
    return -EINVAL;
  rrpc_server *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->cfg = *cfg;
  s->cfg.addr = NULL;
  s->cfg.tls_cert_file = s->cfg.tls_key_file = NULL;
#define DEF(f, v) if (!s->cfg.f) s->cfg.f = (v)
  DEF(long_trim_ns, 600000000000ull);
  DEF(short_trim_ns, 100000000ull);
  DEF(deadline_io_ns, 60000000000ull);
  DEF(keepalive_ns, 60000000000ull);
  DEF(client_expiry_ns, s->cfg.long_trim_ns);
  DEF(workers, 8);
  DEF(max_queue, 1024);
  DEF(max_queue_bytes, (size_t)256 << 20);
  DEF(max_conn_out_bytes, (size_t)64 << 20);
  DEF(max_connections, 1024);
  DEF(max_frame, RRPC_DEFAULT_MAX_FRAME);
  DEF(cache_bytes_per_client, (size_t)64 << 20);
  DEF(cache_bytes_total, (size_t)1 << 30);
#undef DEF
  s->lfd = -1;
  pthread_mutex_init(&s->mu, NULL);
  rrpc_cond_init(&s->cv);
  pthread_mutex_init(&s->qmu, NULL);
  rrpc_cond_init(&s->qcv_put);
  rrpc_cond_init(&s->qcv_get);
  rrpc_map_init(&s->clients);
  atomic_init(&s->cache_bytes, 0);
  int rc = -ENOMEM;
  if (cfg->addr && !(s->cfg.addr = strdup(cfg->addr)))
    goto fail;
  if (!(s->q = calloc(s->cfg.max_queue, sizeof *s->q)) ||
      !(s->methods = calloc(nmethods ? nmethods : 1, sizeof *s->methods)))
    goto fail;
  for (size_t i = 0; i < nmethods; i++) {
    s->methods[i] = methods[i];
    if (!(s->methods[i].name = strdup(methods[i].name)))
      goto fail;
    s->nmethods++;
  }
  if (cfg->tls_cert_file && *cfg->tls_cert_file) {
    rc = -EINVAL;
    char err[256];
    if (!(s->tls = SSL_CTX_new(TLS_server_method())) ||
        SSL_CTX_set_min_proto_version(s->tls, TLS1_2_VERSION) != 1) {
      rrpc_tls_err(err, sizeof err);
      SLOG(s, LOG_LEVEL_ERROR, "retryrpc server: TLS setup failed: %s", err);
      goto fail;
    }
    SSL_CTX_set_mode(s->tls, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(s->tls, cfg->tls_cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(s->tls, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->tls) != 1) {
      rrpc_tls_err(err, sizeof err);
      SLOG(s, LOG_LEVEL_ERROR, "retryrpc server: cannot load %s / %s: %s",
           cfg->tls_cert_file, cfg->tls_key_file, err);
      goto fail;
    }
  }
  *out = s;
  return 0;
fail:
  rrpc_server_destroy(s);
  return rc;
}

int rrpc_server_start(rrpc_server *s) {
  if (s->started)
    return -EALREADY;
  int rc = rrpc_listen(s->cfg.addr, s->cfg.port, &s->lfd, &s->port);
  if (rc) {
    SLOG(s, LOG_LEVEL_ERROR, "retryrpc server: cannot listen on %s:%u: %s",
         s->cfg.addr ? s->cfg.addr : "*", s->cfg.port, strerror(-rc));
    return rc;
  }
  if (!(s->workers = calloc(s->cfg.workers, sizeof *s->workers)))
    return -ENOMEM;
  for (; s->nworkers < s->cfg.workers; s->nworkers++)
    if (pthread_create(&s->workers[s->nworkers], NULL, worker_main, s) != 0)
      return -EAGAIN; /* destroy joins those started */
  if (!s->cfg.manual_trim) {
    if (pthread_create(&s->trim_thread, NULL, trim_main, s) != 0)
      return -EAGAIN;
    s->trim_running = true;
  }
  if (pthread_create(&s->accept_thread, NULL, accept_main, s) != 0)
    return -EAGAIN;
  s->started = true;
  return 0;
}

uint16_t rrpc_server_port(const rrpc_server *s) { return s->port; }

int rrpc_server_send_upcall(rrpc_server *s, uint64_t client_id, const void *payload,
                            size_t len) {
  if (len > s->cfg.max_frame)
    return -EMSGSIZE;
  srv_client *ci = client_find(s, client_id);
  if (!ci) {
    SLOG(s, LOG_LEVEL_WARN,
         "SERVER: SendCallback() - unable to find client UniqueID: %" PRIu64, client_id);
    return -ENOENT;
  }
  pthread_mutex_lock(&ci->mu);
  srv_conn *c = ci->conn;
  if (c)
    conn_get(c);
  pthread_mutex_unlock(&ci->mu);
  client_put(ci);
  if (!c)
    return -ENOTCONN;
  int rc = send_new(c, RRPC_MSG_UPCALL, payload, len);
  conn_put(c);
  return rc == -ENOBUFS ? -EIO : rc;
}

void rrpc_server_close_client_conns(rrpc_server *s) {
  pthread_mutex_lock(&s->mu);
  for (srv_conn *c = s->conns; c; c = c->next)
    rrpc_sock_shutdown(&c->sock);
  pthread_mutex_unlock(&s->mu);
}

size_t rrpc_server_completed_count(rrpc_server *s) {
  size_t n = 0;
  pthread_mutex_lock(&s->mu);
  size_t pos = 0;
  rrpc_map_ent *me = NULL;
  while ((me = rrpc_map_next(&s->clients, &pos, me)) != NULL) {
    srv_client *ci = rrpc_container_of(me, srv_client, me);
    pthread_mutex_lock(&ci->mu);
    n += ci->ndone;
    pthread_mutex_unlock(&ci->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return n;
}

size_t rrpc_server_cache_bytes(rrpc_server *s) { return atomic_load(&s->cache_bytes); }

size_t rrpc_server_client_count(rrpc_server *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->clients.n;
  pthread_mutex_unlock(&s->mu);
  return n;
}

size_t rrpc_server_conn_count(rrpc_server *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->nconns;
  pthread_mutex_unlock(&s->mu);
  return n;
}

void rrpc_server_destroy(rrpc_server *s) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (s->started)
    pthread_join(s->accept_thread, NULL);
  if (s->trim_running)
    pthread_join(s->trim_thread, NULL);
  /* Readers end at their next slice or at once when shut down. */
  pthread_mutex_lock(&s->mu);
  for (srv_conn *c = s->conns; c; c = c->next)
    rrpc_sock_shutdown(&c->sock);
  while (s->nconns)
    pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
  pthread_mutex_lock(&s->qmu);
  s->qstop = true;
  pthread_cond_broadcast(&s->qcv_get);
  pthread_cond_broadcast(&s->qcv_put);
  pthread_mutex_unlock(&s->qmu);
  for (unsigned i = 0; i < s->nworkers; i++)
    pthread_join(s->workers[i], NULL);
  /* Every connection is gone now; the map holds the last references. */
  size_t pos = 0;
  rrpc_map_ent *me;
  while ((me = rrpc_map_next(&s->clients, &pos, NULL)) != NULL) {
    rrpc_map_remove(&s->clients, me->key);
    client_put(rrpc_container_of(me, srv_client, me));
  }
  rrpc_map_free(&s->clients);
  if (s->lfd >= 0)
    close(s->lfd);
  SSL_CTX_free(s->tls);
  for (size_t i = 0; i < s->nmethods; i++)
    free((char *)s->methods[i].name);
  free(s->methods);
  free(s->workers);
  free(s->q);
  free((char *)s->cfg.addr);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->qmu);
  pthread_cond_destroy(&s->qcv_put);
  pthread_cond_destroy(&s->qcv_get);
  free(s);
}
