/*
 * retryrpc internals shared by client.c, server.c, the tests and the fuzz
 * target: frame and envelope codecs (wire.c), an intrusive u64 hash map
 * (map.c) and the socket/TLS layer (io.c).
 */
#ifndef PFS_RRPC_INTERNAL_H
#define PFS_RRPC_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "retryrpc.h"

/* ---- framing (spec 3.1) ----------------------------------------------- */

#define RRPC_HDR_LEN 14
#define RRPC_MAGIC 0xCAFEFEEDu
#define RRPC_PROTOCOL_JSON 1
#define RRPC_VERSION 1

enum {
  RRPC_MSG_RPC = 1,
  RRPC_MSG_UPCALL = 2,
  RRPC_MSG_ASK_ID = 3,
  RRPC_MSG_RETURN_ID = 4,
  RRPC_MSG_PASS_ID = 5,
};

typedef struct {
  uint32_t len;
  uint16_t type;
} rrpc_hdr;

void rrpc_hdr_encode(uint8_t out[RRPC_HDR_LEN], uint32_t len, uint16_t type);
/* -EINVAL: bad magic, protocol, version or type; -EMSGSIZE: len > max_frame. */
int rrpc_hdr_decode(const uint8_t in[RRPC_HDR_LEN], size_t max_frame, rrpc_hdr *h);

/* A whole frame (header + body) in one malloc'd buffer. */
typedef struct {
  uint8_t *p;
  size_t len; /* header + body */
} rrpc_frame;

/* Build a frame of type with body (len bytes). -ENOMEM. */
int rrpc_frame_make(uint16_t type, const void *body, size_t len, rrpc_frame *f);

/* Client IDs as JSON numbers: decimal ASCII, no sign, no spaces. */
int rrpc_id_encode(uint64_t id, char buf[24]); /* returns the length */
int rrpc_id_decode(const void *buf, size_t len, uint64_t *id); /* -EINVAL */

/* ---- envelopes (spec 3.2) --------------------------------------------- */

typedef struct {
  uint64_t client_id, request_id, highest_reply_seen;
  char *method;    /* malloc'd */
  json_t *params0; /* new reference; json null when absent */
} rrpc_request;

typedef struct {
  uint64_t client_id, request_id;
  char *errstr;    /* malloc'd, "" on success */
  json_t *result;  /* new reference; json null when absent */
} rrpc_reply;

/* Encoders produce the whole frame (Type 1), byte-identical to Go's
 * encoding/json for the envelope itself. */
int rrpc_request_encode(uint64_t client_id, uint64_t request_id, uint64_t hrs,
                        const char *method, const json_t *params0, rrpc_frame *f);
int rrpc_reply_encode(uint64_t client_id, uint64_t request_id, const char *errstr,
                      const json_t *result, rrpc_frame *f);
/* Decoders: -EINVAL on anything that is not a well-formed envelope. */
int rrpc_request_decode(const void *body, size_t len, rrpc_request *r);
void rrpc_request_clear(rrpc_request *r);
int rrpc_reply_decode(const void *body, size_t len, rrpc_reply *r);
void rrpc_reply_clear(rrpc_reply *r);

/* ---- intrusive u64 map ------------------------------------------------ */

typedef struct rrpc_map_ent {
  uint64_t key;
  struct rrpc_map_ent *next;
} rrpc_map_ent;

typedef struct {
  rrpc_map_ent **b;
  size_t nb, n;
} rrpc_map;

void rrpc_map_init(rrpc_map *m);
void rrpc_map_free(rrpc_map *m); /* frees the table, not the entries */
rrpc_map_ent *rrpc_map_find(const rrpc_map *m, uint64_t key);
/* e->key must be set and not present. -ENOMEM only when growing fails
 * and the table is empty. */
int rrpc_map_insert(rrpc_map *m, rrpc_map_ent *e);
rrpc_map_ent *rrpc_map_remove(rrpc_map *m, uint64_t key);
/* Iterate: start with *pos = 0, e = NULL; returns NULL at the end. The
 * current entry may be removed during iteration. */
rrpc_map_ent *rrpc_map_next(const rrpc_map *m, size_t *pos, rrpc_map_ent *e);

#define rrpc_container_of(p, type, member) \
  ((type *)((char *)(p) - offsetof(type, member)))

/* Highest consecutive acknowledged ID (spec section 5): hc is the highest N
 * with 1..N all seen, set holds seen IDs above N+1. */
typedef struct {
  uint64_t hc;
  rrpc_map set;
} rrpc_seen;

void rrpc_seen_init(rrpc_seen *s);
void rrpc_seen_free(rrpc_seen *s);
void rrpc_seen_add(rrpc_seen *s, uint64_t id);

/* ---- sockets and TLS -------------------------------------------------- */

uint64_t rrpc_now_ns(void); /* CLOCK_MONOTONIC */
/* Condition variables timed on CLOCK_MONOTONIC. */
void rrpc_cond_init(pthread_cond_t *cv);
/* Returns false when the deadline (rrpc_now_ns based) passed. */
bool rrpc_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline);

typedef struct {
  int fd;
  SSL *ssl;               /* NULL for plain TCP */
  pthread_mutex_t ssl_mu; /* SSL objects are not thread-safe: every SSL_*
                             call on ssl runs under it (sockets are
                             non-blocking, so it is never held while waiting) */
} rrpc_sock;

void rrpc_sock_init(rrpc_sock *s, int fd, SSL *ssl);
void rrpc_sock_close(rrpc_sock *s); /* frees ssl, closes fd */
/* Wake anyone blocked on the socket and make further I/O fail. */
void rrpc_sock_shutdown(rrpc_sock *s);

/*
 * Read exactly n bytes. Until the first byte arrives the wait ends at
 * idle_until (monotonic ns; 0 = no idle phase) with -EAGAIN and nothing
 * consumed; once data flows, the whole read must finish within deadline_io
 * of its first byte (-ETIMEDOUT). EOF or error: -ECONNRESET.
 */
int rrpc_sock_read(rrpc_sock *s, void *buf, size_t n, uint64_t idle_until,
                   uint64_t deadline_io);
/* Write exactly n bytes within deadline_io (-ETIMEDOUT). */
int rrpc_sock_write(rrpc_sock *s, const void *buf, size_t n, uint64_t deadline_io);

/* Read one frame: header (idle phase as above) and body (malloc'd, NUL
 * appended, *body NULL when len 0). -EINVAL/-EMSGSIZE from the header. */
int rrpc_sock_read_frame(rrpc_sock *s, size_t max_frame, uint64_t idle_until,
                         uint64_t deadline_io, rrpc_hdr *h, uint8_t **body);

void rrpc_set_keepalive(int fd, uint64_t period_ns);
/* Listening socket on host:port (port 0 = ephemeral); *bound gets the port. */
int rrpc_listen(const char *host, uint16_t port, int *fd, uint16_t *bound);
/* Dial host:port with a timeout; the socket is non-blocking, TCP_NODELAY. */
int rrpc_dial(const char *host, uint16_t port, uint64_t timeout_ns, int *fd,
              char *err, size_t errlen);
/* TLS handshake on a connected non-blocking socket by the deadline. On the
 * client, host is verified (DNS name or IP literal) and sent as SNI.
 * -EACCES when the peer's certificate was refused, -EPROTO otherwise;
 * err gets the reason. */
int rrpc_tls_handshake(SSL *ssl, int fd, bool client, uint64_t deadline,
                       char *err, size_t errlen);
/* Set verification of host on a client SSL. */
int rrpc_tls_set_host(SSL *ssl, const char *host);
/* One line of OpenSSL's error queue (cleared) into buf. */
void rrpc_tls_err(char *buf, size_t len);

#endif
