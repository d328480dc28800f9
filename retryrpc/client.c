/* retryrpc client (spec sections 2.2, 5, 7.1, 9, 10, 13). */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "bucketstats.h"
#include "logger.h"
#include "rrpc_internal.h"

#define SLICE_NS 200000000ull /* how often the reader looks at its state */

#define CLOG(c, lvl, ...) \
  do { if ((c)->cfg.log_enabled) log_msg(lvl, __VA_ARGS__); } while (0)

typedef struct {
  rrpc_map_ent me; /* key: request ID, in client->out while outstanding */
  rrpc_frame frame;
  pthread_cond_t cv;
  bool done;
  int rc;
  char *errstr;
  json_t *result;
  uint64_t sent_ns, rx_ns;
} creq;

typedef struct {
  atomic_int refs; /* the manager, each sender writing on it */
  rrpc_sock sock;
  pthread_mutex_t wmu; /* one whole frame at a time */
} cconn;

typedef struct upcall {
  struct upcall *next;
  size_t len;
  uint8_t data[];
} upcall;

struct rrpc_client {
  rrpc_client_config cfg;
  SSL_CTX *tls;

  pthread_mutex_t mu;
  pthread_cond_t mgr_cv;  /* work for the manager, or halting */
  pthread_cond_t idle_cv; /* senders dropped to 0 */
  _Atomic uint64_t id;    /* 0: no session; written under mu, read anywhere */
  uint64_t next_rid;
  rrpc_map out;           /* outstanding requests */
  rrpc_seen seen;
  cconn *conn;            /* current connection, NULL while (re)connecting */
  bool want_connect, halting, threads_started;
  unsigned quick_fails;   /* connections in a row that ended unheard */
  unsigned senders;
  uint64_t last_rx_ns;
  char last_error[256];
  pthread_t mgr_thread, up_thread;

  pthread_cond_t up_cv;
  upcall *uq_head, *uq_tail;
  unsigned uq_len;

  char group[48];
  bool registered;
  bs_total RetransmitsStarted, SendCalled, ReplyCalled, UpcallCalled;
  bs_log2 SeesIOAndSignalsChannel, TimeSendRPCUsec, SendToServer;
};

static void cconn_put(cconn *k) {
  if (k && atomic_fetch_sub(&k->refs, 1) == 1) {
    rrpc_sock_close(&k->sock);
    pthread_mutex_destroy(&k->wmu);
    free(k);
  }
}

static bool fault(rrpc_client *c, rrpc_fault_stage st, uint64_t rid) {
  return c->cfg.fault_hook && c->cfg.fault_hook(c->cfg.fault_ctx, st, c->id, rid);
}

/* Caller holds mu. */
static void set_error(rrpc_client *c, const char *msg) {
  snprintf(c->last_error, sizeof c->last_error, "%s", msg);
  CLOG(c, LOG_LEVEL_WARN, "retryrpc client: %s", msg);
}

/* Complete every outstanding request with rc; caller holds mu. They are
 * never re-sent, so they count as acknowledged (else the watermark would
 * stop below them for good). */
static void fail_all(rrpc_client *c, int rc) {
  size_t pos = 0;
  rrpc_map_ent *me;
  while ((me = rrpc_map_next(&c->out, &pos, NULL)) != NULL) {
    rrpc_map_remove(&c->out, me->key);
    rrpc_seen_add(&c->seen, me->key);
    creq *r = rrpc_container_of(me, creq, me);
    r->done = true;
    r->rc = rc;
    pthread_cond_signal(&r->cv);
  }
}

static void stats_unregister(rrpc_client *c) {
  if (c->registered)
    bs_unregister(RRPC_STATS_PKG, c->group);
  c->registered = false;
}

static void stats_register(rrpc_client *c) {
  stats_unregister(c);
  snprintf(c->group, sizeof c->group, "ClientSide-%" PRIu64, c->id);
  const bs_stat_desc d[] = {
      BS_DESC_TOTAL(&c->RetransmitsStarted, "RetransmitsStarted"),
      BS_DESC_TOTAL(&c->SendCalled, "SendCalled"),
      BS_DESC_TOTAL(&c->ReplyCalled, "ReplyCalled"),
      BS_DESC_TOTAL(&c->UpcallCalled, "UpcallCalled"),
      BS_DESC_LOG2(&c->SeesIOAndSignalsChannel, "SeesIOAndSignalsChannel"),
      BS_DESC_LOG2(&c->TimeSendRPCUsec, "TimeSendRPCUsec"),
      BS_DESC_LOG2(&c->SendToServer, "SendToServer"),
  };
  /* A clash (two clients with one ID in a process) costs only the stats. */
  c->registered = bs_register(RRPC_STATS_PKG, c->group, d, sizeof d / sizeof d[0]) == 0;
}

/* Write a frame on k; on failure shut k so the manager reconnects. */
static void send_frame(rrpc_client *c, cconn *k, const rrpc_frame *f, uint64_t rid) {
  if (fault(c, RRPC_FAULT_CLIENT_BEFORE_SEND, rid)) {
    rrpc_sock_shutdown(&k->sock);
    return;
  }
  bool cut = fault(c, RRPC_FAULT_CLIENT_MID_SEND, rid);
  size_t n = cut ? RRPC_HDR_LEN + (f->len - RRPC_HDR_LEN) / 2 : f->len;
  pthread_mutex_lock(&k->wmu);
  int rc = rrpc_sock_write(&k->sock, f->p, n, c->cfg.deadline_io_ns);
  if (rc || cut)
    rrpc_sock_shutdown(&k->sock);
  pthread_mutex_unlock(&k->wmu);
}

/* ---- connecting -------------------------------------------------------- */

/* One dial + TLS + ID exchange. id 0 asks for a new ID. */
static int dial_once(rrpc_client *c, uint64_t id, cconn **out, uint64_t *new_id,
                     char *err, size_t errlen) {
  int fd;
  int rc = rrpc_dial(c->cfg.host, c->cfg.port, c->cfg.connect_timeout_ns, &fd, err, errlen);
  if (rc)
    return rc;
  rrpc_set_keepalive(fd, c->cfg.keepalive_ns);
  SSL *ssl = NULL;
  if (c->tls) {
    if (!(ssl = SSL_new(c->tls)) || SSL_set_fd(ssl, fd) != 1 ||
        rrpc_tls_set_host(ssl, c->cfg.host) != 0) {
      SSL_free(ssl);
      close(fd);
      snprintf(err, errlen, "TLS setup failed");
      return -ENOMEM;
    }
    rc = rrpc_tls_handshake(ssl, fd, true, rrpc_now_ns() + c->cfg.connect_timeout_ns, err,
                            errlen);
    if (rc) {
      SSL_free(ssl);
      close(fd);
      return rc;
    }
  }
  cconn *k = calloc(1, sizeof *k);
  if (!k) {
    SSL_free(ssl);
    close(fd);
    return -ENOMEM;
  }
  atomic_init(&k->refs, 1);
  rrpc_sock_init(&k->sock, fd, ssl);
  pthread_mutex_init(&k->wmu, NULL);
  char b[24];
  rrpc_frame f;
  rc = id ? rrpc_frame_make(RRPC_MSG_PASS_ID, b, (size_t)rrpc_id_encode(id, b), &f)
          : rrpc_frame_make(RRPC_MSG_ASK_ID, NULL, 0, &f);
  if (!rc) {
    rc = rrpc_sock_write(&k->sock, f.p, f.len, c->cfg.deadline_io_ns);
    free(f.p);
  }
  *new_id = id;
  if (!rc && !id) {
    rrpc_hdr h;
    uint8_t *body;
    rc = rrpc_sock_read_frame(&k->sock, c->cfg.max_frame, 0, c->cfg.deadline_io_ns, &h,
                              &body);
    if (!rc && (h.type != RRPC_MSG_RETURN_ID || rrpc_id_decode(body, h.len, new_id) != 0 ||
                *new_id == 0))
      rc = -EPROTO;
    free(body);
  }
  if (rc) {
    if (!*err)
      snprintf(err, errlen, "handshake with %s:%u failed: %s", c->cfg.host, c->cfg.port,
               strerror(-rc));
    cconn_put(k);
    return rc;
  }
  *out = k;
  return 0;
}

/* Dial with the retry policy (spec 7.1; limit configurable, errors instead
 * of exit). A refused certificate is not retried. Called without mu. */
static int connect_session(rrpc_client *c, uint64_t id, cconn **out, uint64_t *new_id) {
  uint64_t delay = c->cfg.retry_delay_ns;
  char err[256];
  int rc = -ECONNREFUSED;
  for (unsigned attempt = 0; attempt <= c->cfg.retry_limit; attempt++) {
    err[0] = 0;
    rc = dial_once(c, id, out, new_id, err, sizeof err);
    if (rc == 0)
      return 0;
    pthread_mutex_lock(&c->mu);
    set_error(c, err);
    if (rc == -EACCES || attempt == c->cfg.retry_limit) {
      pthread_mutex_unlock(&c->mu);
      break;
    }
    uint64_t until = rrpc_now_ns() + delay;
    while (!c->halting && rrpc_cond_wait_until(&c->mgr_cv, &c->mu, until))
      ;
    bool halting = c->halting;
    pthread_mutex_unlock(&c->mu);
    if (halting)
      return -ESHUTDOWN;
    delay *= 2;
  }
  return rc;
}

/* ---- the manager: connect, re-send, read ------------------------------- */

static void deliver_upcall(rrpc_client *c, const uint8_t *p, size_t len) {
  bs_total_inc(&c->UpcallCalled);
  if (!c->cfg.upcall)
    return;
  upcall *u = malloc(sizeof *u + len);
  if (!u)
    return;
  u->next = NULL;
  u->len = len;
  memcpy(u->data, p, len);
  pthread_mutex_lock(&c->mu);
  if (c->uq_len >= c->cfg.max_upcalls) {
    /* Upcalls are best effort (spec 9); the server retries what matters. */
    CLOG(c, LOG_LEVEL_WARN, "retryrpc client: upcall queue full, dropping one");
    free(u);
  } else {
    if (c->uq_tail)
      c->uq_tail->next = u;
    else
      c->uq_head = u;
    c->uq_tail = u;
    c->uq_len++;
    pthread_cond_signal(&c->up_cv);
  }
  pthread_mutex_unlock(&c->mu);
}

/* Returns 0 if the reply was handled, -EINVAL if undecodable. */
static int handle_reply(rrpc_client *c, const uint8_t *body, size_t len) {
  rrpc_reply rp;
  int rc = rrpc_reply_decode(body, len, &rp);
  if (rc)
    return rc;
  bs_total_inc(&c->ReplyCalled);
  pthread_mutex_lock(&c->mu);
  rrpc_map_ent *me = rrpc_map_remove(&c->out, rp.request_id);
  if (me) {
    /* Dropped if not outstanding: a duplicate, or the caller gave up. */
    creq *r = rrpc_container_of(me, creq, me);
    r->done = true;
    r->rc = 0;
    r->rx_ns = rrpc_now_ns();
    r->errstr = rp.errstr;
    r->result = rp.result;
    rp.errstr = NULL;
    rp.result = NULL;
    rrpc_seen_add(&c->seen, rp.request_id);
    pthread_cond_signal(&r->cv);
  }
  pthread_mutex_unlock(&c->mu);
  rrpc_reply_clear(&rp);
  return 0;
}

/* True when requests have waited deadline_io with nothing heard: the
 * original's "read timeout with requests outstanding". Caller holds mu. */
static bool stalled(rrpc_client *c, uint64_t now) {
  if (now - c->last_rx_ns < c->cfg.deadline_io_ns)
    return false;
  size_t pos = 0;
  rrpc_map_ent *me = NULL;
  while ((me = rrpc_map_next(&c->out, &pos, me)) != NULL)
    if (now - rrpc_container_of(me, creq, me)->sent_ns >= c->cfg.deadline_io_ns)
      return true;
  return false;
}

static void read_loop(rrpc_client *c, cconn *k) {
  for (;;) {
    rrpc_hdr h;
    uint8_t *body;
    int rc = rrpc_sock_read_frame(&k->sock, c->cfg.max_frame, rrpc_now_ns() + SLICE_NS,
                                  c->cfg.deadline_io_ns, &h, &body);
    if (rc == -EAGAIN) {
      pthread_mutex_lock(&c->mu);
      bool stop = c->halting || stalled(c, rrpc_now_ns());
      pthread_mutex_unlock(&c->mu);
      if (stop)
        return;
      continue;
    }
    if (rc) {
      CLOG(c, LOG_LEVEL_INFO, "retryrpc client %" PRIu64 ": connection lost: %s", c->id,
           strerror(-rc));
      return;
    }
    pthread_mutex_lock(&c->mu);
    c->last_rx_ns = rrpc_now_ns();
    pthread_mutex_unlock(&c->mu);
    uint64_t id;
    if (h.type == RRPC_MSG_RPC) {
      rc = handle_reply(c, body, h.len);
    } else if (h.type == RRPC_MSG_UPCALL) {
      deliver_upcall(c, body, h.len);
    } else if (h.type == RRPC_MSG_RETURN_ID && rrpc_id_decode(body, h.len, &id) == 0 &&
               id == 0) {
      /* The server does not know us (restart or expiry): whatever was
       * outstanding may or may not have run there. */
      pthread_mutex_lock(&c->mu);
      set_error(c, "server lost this client's session");
      fail_all(c, -ESTALE);
      c->id = 0;
      stats_unregister(c);
      pthread_mutex_unlock(&c->mu);
      rc = -ESTALE;
    } else {
      CLOG(c, LOG_LEVEL_WARN, "retryrpc client: unexpected message type %u ignored", h.type);
    }
    free(body);
    if (rc)
      return;
  }
}

/* Copy the frames of every outstanding request, to re-send them. */
static rrpc_frame *snapshot(rrpc_client *c, size_t *n, uint64_t **rids) {
  rrpc_frame *fs = calloc(c->out.n ? c->out.n : 1, sizeof *fs);
  *rids = calloc(c->out.n ? c->out.n : 1, sizeof **rids);
  *n = 0;
  if (!fs || !*rids) {
    free(fs);
    free(*rids);
    *rids = NULL;
    return NULL;
  }
  size_t pos = 0;
  rrpc_map_ent *me = NULL;
  uint64_t now = rrpc_now_ns();
  while ((me = rrpc_map_next(&c->out, &pos, me)) != NULL) {
    creq *r = rrpc_container_of(me, creq, me);
    uint8_t *p = malloc(r->frame.len);
    if (!p)
      continue; /* re-sent after the next reconnect (stall detection) */
    memcpy(p, r->frame.p, r->frame.len);
    fs[*n] = (rrpc_frame){p, r->frame.len};
    (*rids)[(*n)++] = me->key;
    r->sent_ns = now;
  }
  return fs;
}

static void *mgr_main(void *arg) {
  rrpc_client *c = arg;
  pthread_mutex_lock(&c->mu);
  while (!c->halting) {
    if (!c->want_connect) {
      rrpc_cond_wait_until(&c->mgr_cv, &c->mu, rrpc_now_ns() + SLICE_NS);
      continue;
    }
    uint64_t id = c->id;
    pthread_mutex_unlock(&c->mu);
    cconn *k = NULL;
    uint64_t new_id = 0;
    int rc = connect_session(c, id, &k, &new_id);
    pthread_mutex_lock(&c->mu);
    if (rc || c->halting) {
      cconn_put(k);
      /* Give up for now; the next call tries again (spec 16.9). */
      fail_all(c, rc ? rc : -ESHUTDOWN);
      c->want_connect = false;
      continue;
    }
    if (new_id != id) {
      c->id = new_id;
      stats_register(c);
    }
    c->conn = k;
    atomic_fetch_add(&k->refs, 1);
    c->last_rx_ns = rrpc_now_ns();
    size_t n;
    uint64_t *rids;
    rrpc_frame *fs = snapshot(c, &n, &rids);
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
      send_frame(c, k, &fs[i], rids[i]);
      free(fs[i].p);
    }
    free(fs);
    free(rids);
    uint64_t connected_ns = c->last_rx_ns;
    read_loop(c, k);
    rrpc_sock_shutdown(&k->sock);
    pthread_mutex_lock(&c->mu);
    c->conn = NULL;
    cconn_put(k); /* c->conn's reference */
    cconn_put(k); /* ours */
    /* Reconnect at once, as the original (upcalls need a connection),
     * unless connections keep ending before a word is heard (a reconnect
     * with PassID reads nothing, so the dial retry policy never sees
     * these): then back off the same way, and give up after retry_limit. */
    c->want_connect = true;
    c->quick_fails = c->last_rx_ns > connected_ns ? 0 : c->quick_fails + 1;
    if (c->quick_fails > c->cfg.retry_limit) {
      set_error(c, "connections keep closing before any reply");
      fail_all(c, -ECONNRESET);
      c->want_connect = false;
      c->quick_fails = 0;
    } else if (c->quick_fails) {
      unsigned shift = c->quick_fails - 1 < 16 ? c->quick_fails - 1 : 16;
      uint64_t until = rrpc_now_ns() + (c->cfg.retry_delay_ns << shift);
      while (!c->halting && rrpc_cond_wait_until(&c->mgr_cv, &c->mu, until))
        ;
    }
    if (!c->halting)
      bs_total_inc(&c->RetransmitsStarted);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

static void *up_main(void *arg) {
  rrpc_client *c = arg;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->uq_head && !c->halting)
      pthread_cond_wait(&c->up_cv, &c->mu);
    if (c->halting)
      break;
    upcall *u = c->uq_head;
    c->uq_head = u->next;
    if (!c->uq_head)
      c->uq_tail = NULL;
    c->uq_len--;
    pthread_mutex_unlock(&c->mu);
    c->cfg.upcall(c->cfg.upcall_ctx, u->data, u->len);
    free(u);
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

/* ---- public ------------------------------------------------------------ */

int rrpc_client_create(const rrpc_client_config *cfg, rrpc_client **out) {
  *out = NULL;
  if (!cfg->host || !*cfg->host || !cfg->port)
    return -EINVAL;
  rrpc_client *c = calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->cfg = *cfg;
  c->cfg.ca_pem = NULL;
#define DEF(f, v) if (!c->cfg.f) c->cfg.f = (v)
  DEF(deadline_io_ns, 60000000000ull);
  DEF(keepalive_ns, 60000000000ull);
  DEF(connect_timeout_ns, 10000000000ull);
  DEF(call_timeout_ns, 60000000000ull);
  DEF(retry_limit, 8);
  DEF(retry_delay_ns, 100000000ull);
  DEF(max_frame, RRPC_DEFAULT_MAX_FRAME);
  DEF(max_upcalls, 1024);
#undef DEF
  pthread_mutex_init(&c->mu, NULL);
  rrpc_cond_init(&c->mgr_cv);
  rrpc_cond_init(&c->idle_cv);
  rrpc_cond_init(&c->up_cv);
  rrpc_map_init(&c->out);
  rrpc_seen_init(&c->seen);
  int rc = -ENOMEM;
  if (!(c->cfg.host = strdup(cfg->host)))
    goto fail;
  if (cfg->ca_pem) {
    rc = -EINVAL;
    if (!(c->tls = SSL_CTX_new(TLS_client_method())) ||
        SSL_CTX_set_min_proto_version(c->tls, TLS1_2_VERSION) != 1)
      goto fail;
    SSL_CTX_set_mode(c->tls, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Trust only the given CAs (spec 10): a fresh store, no defaults. */
    X509_STORE *st = X509_STORE_new();
    BIO *bio = BIO_new_mem_buf(cfg->ca_pem, (int)cfg->ca_pem_len);
    int n = 0;
    X509 *x;
    while (st && bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
      if (X509_STORE_add_cert(st, x) == 1)
        n++;
      X509_free(x);
    }
    ERR_clear_error();
    BIO_free(bio);
    if (!st || n == 0) {
      X509_STORE_free(st);
      if (cfg->log_enabled)
        log_error("x509CertPool.AppendCertsFromPEM() returned !ok");
      goto fail;
    }
    SSL_CTX_set_cert_store(c->tls, st);
    SSL_CTX_set_verify(c->tls, SSL_VERIFY_PEER, NULL);
  }
  *out = c;
  return 0;
fail:
  rrpc_client_destroy(c);
  return rc;
}

int rrpc_client_send(rrpc_client *c, const char *method, const json_t *request,
                     json_t **reply, char **errstr, uint64_t timeout_ns) {
  if (reply)
    *reply = NULL;
  if (errstr)
    *errstr = NULL;
  if (!method)
    return -EINVAL;
  uint64_t t0 = rrpc_now_ns();
  uint64_t deadline = t0 + (timeout_ns ? timeout_ns : c->cfg.call_timeout_ns);
  creq *r = calloc(1, sizeof *r);
  if (!r)
    return -ENOMEM;
  rrpc_cond_init(&r->cv);
  pthread_mutex_lock(&c->mu);
  int rc = c->halting ? -ESHUTDOWN : 0;
  if (!rc && !c->threads_started) {
    if (pthread_create(&c->mgr_thread, NULL, mgr_main, c) != 0)
      rc = -EAGAIN;
    else if (pthread_create(&c->up_thread, NULL, up_main, c) != 0) {
      c->halting = true; /* cannot run without it; destroy joins mgr */
      pthread_join(c->mgr_thread, NULL);
      rc = -EAGAIN;
    } else {
      c->threads_started = true;
    }
  }
  if (!rc) {
    r->me.key = ++c->next_rid;
    rc = rrpc_request_encode(c->id, r->me.key, c->seen.hc, method, request, &r->frame);
  }
  if (!rc && r->frame.len - RRPC_HDR_LEN > c->cfg.max_frame) {
    free(r->frame.p);
    rc = -EMSGSIZE;
  }
  if (!rc && (rc = rrpc_map_insert(&c->out, &r->me)) != 0)
    free(r->frame.p);
  if (rc) {
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return rc;
  }
  c->senders++;
  r->sent_ns = t0;
  cconn *k = c->conn;
  if (k) {
    atomic_fetch_add(&k->refs, 1);
  } else {
    c->want_connect = true;
    pthread_cond_signal(&c->mgr_cv);
  }
  pthread_mutex_unlock(&c->mu);
  bs_total_inc(&c->SendCalled);

  if (k) {
    /* A failure here needs nothing: the reader sees the broken socket and
     * the reconnect re-sends every outstanding request. */
    send_frame(c, k, &r->frame, r->me.key);
    bs_log2_add(&c->SendToServer, (rrpc_now_ns() - t0) / 1000);
    cconn_put(k);
  }

  pthread_mutex_lock(&c->mu);
  while (!r->done && rrpc_cond_wait_until(&r->cv, &c->mu, deadline))
    ;
  if (!r->done) {
    rrpc_map_remove(&c->out, r->me.key);
    /* Acknowledge it: we will never re-send it, so the server may drop
     * its reply. */
    rrpc_seen_add(&c->seen, r->me.key);
    r->rc = -ETIMEDOUT;
  }
  if (--c->senders == 0)
    pthread_cond_broadcast(&c->idle_cv);
  pthread_mutex_unlock(&c->mu);

  uint64_t t1 = rrpc_now_ns();
  rc = r->rc;
  if (!rc) {
    if (r->rx_ns)
      bs_log2_add(&c->SeesIOAndSignalsChannel, (t1 - r->rx_ns) / 1000);
    if (r->errstr && *r->errstr) {
      rc = rrpc_errno_from_errstr(r->errstr);
      if (errstr) {
        *errstr = r->errstr;
        r->errstr = NULL;
      }
    } else if (reply) {
      *reply = r->result;
      r->result = NULL;
    }
  }
  bs_log2_add(&c->TimeSendRPCUsec, (t1 - t0) / 1000);
  free(r->errstr);
  json_decref(r->result);
  free(r->frame.p);
  pthread_cond_destroy(&r->cv);
  free(r);
  return rc;
}

uint64_t rrpc_client_id(rrpc_client *c) {
  pthread_mutex_lock(&c->mu);
  uint64_t id = c->id;
  pthread_mutex_unlock(&c->mu);
  return id;
}

void rrpc_client_stats_group(rrpc_client *c, char *buf, size_t len) {
  snprintf(buf, len, "ClientSide-%" PRIu64, rrpc_client_id(c));
}

uint64_t rrpc_client_highest_consecutive(rrpc_client *c) {
  pthread_mutex_lock(&c->mu);
  uint64_t hc = c->seen.hc;
  pthread_mutex_unlock(&c->mu);
  return hc;
}

void rrpc_client_last_error(rrpc_client *c, char *buf, size_t len) {
  pthread_mutex_lock(&c->mu);
  snprintf(buf, len, "%s", c->last_error);
  pthread_mutex_unlock(&c->mu);
}

void rrpc_client_destroy(rrpc_client *c) {
  if (!c)
    return;
  pthread_mutex_lock(&c->mu);
  c->halting = true;
  fail_all(c, -ESHUTDOWN);
  if (c->conn)
    rrpc_sock_shutdown(&c->conn->sock);
  pthread_cond_broadcast(&c->mgr_cv);
  pthread_cond_broadcast(&c->up_cv);
  while (c->senders)
    pthread_cond_wait(&c->idle_cv, &c->mu);
  bool joined = c->threads_started;
  pthread_mutex_unlock(&c->mu);
  if (joined) {
    pthread_join(c->mgr_thread, NULL);
    pthread_join(c->up_thread, NULL);
  }
  while (c->uq_head) {
    upcall *u = c->uq_head;
    c->uq_head = u->next;
    free(u);
  }
  stats_unregister(c);
  rrpc_map_free(&c->out);
  rrpc_seen_free(&c->seen);
  SSL_CTX_free(c->tls);
  free((char *)c->cfg.host);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->mgr_cv);
  pthread_cond_destroy(&c->idle_cv);
  pthread_cond_destroy(&c->up_cv);
  free(c);
}
