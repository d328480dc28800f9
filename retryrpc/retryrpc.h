/*
 * retryrpc: request/response RPC over one long-lived TCP or TLS connection
 * per client, with at-most-once execution that survives broken connections
 * (../shared/spec/retryrpc.md).
 *
 * Wire format (big-endian 14-byte header: Len, Protocol 1, Version 1, Type,
 * Magic 0xCAFEFEED; JSON envelopes) is the original's, so Go peers interoperate.
 *
 * Model
 *   - The server gives every client an ID at its first connection
 *     (AskMyUniqueID); a reconnecting client presents it again (PassID).
 *   - The client numbers its requests 1, 2, 3, ... and keeps each one until
 *     its reply arrives; after a reconnect it re-sends all of them.
 *   - The server records each request in a per-client reply cache *before*
 *     running its method ("in progress"); a re-sent copy of a request that
 *     is in progress is ignored (the reply goes to the client's current
 *     connection when the method finishes), a re-sent copy of a finished one
 *     is answered from the cache, and a late copy of one the client has
 *     already acknowledged (its entry possibly trimmed) is dropped. So a
 *     method runs at most once per request.
 *   - Each request acknowledges the replies the client has seen (highest N
 *     with 1..N all seen); the server's acknowledgement trimmer drops those,
 *     the TTL trimmer drops anything older than long_trim.
 *   - The server can push upcalls (opaque bytes) to a client; the client
 *     delivers them in order on one thread.
 *
 * Differences from the original (spec section 16), all deliberate:
 *   - protocol errors (bad magic/protocol/version/type, oversized frame,
 *     unknown client ID, undecodable params) close that connection only;
 *   - an unknown client ID in PassID (server restarted, or the client was
 *     expired) is answered with ReturnUniqueID "0" before closing; the client
 *     then fails its outstanding calls with -ESTALE (they may or may not have
 *     run on the lost server) and the next call starts a new session with a
 *     new client ID;
 *   - client IDs are random (unguessable, unique across restarts) unless
 *     sequential_ids is set (the original's 1, 2, 3, ...);
 *   - frames are capped (max_frame), the reply cache is capped per client and
 *     in total (oldest replies are evicted first), the worker pool and its
 *     queue are bounded, upcalls are queued up to a cap then dropped;
 *   - every call has a deadline (rrpc_client_send's timeout); the client
 *     returns errors instead of exiting the process;
 *   - the handshake runs on the connection's own thread, not in the accept
 *     loop, and a half-read header never survives an idle timeout.
 *
 * Errors: 0 or a negative errno. Detail goes to the logger (when log_enabled)
 * and, on the client, to rrpc_client_last_error().
 *
 * Threading: every function is safe from any thread, except that destroy
 * must not race with other calls on the same handle.
 * Lock order (server): server lock -> client lock -> connection output
 * queue lock; no lock is held across socket I/O (each connection has a
 * writer thread fed by a bounded queue). On the client, a connection's
 * write lock is held while one frame is written (whole frames must not
 * interleave); only the callers of rrpc_client_send wait on it.
 *
 * Test hooks: both configs take an optional fault hook, compiled in always
 * and off unless set. It is called at each named stage below with the
 * client ID and request ID; returning true makes the library drop that
 * connection (shutdown(2) of the socket) at exactly that point, as if the
 * network had failed there. It runs on library threads; it must not call
 * back into the library.
 */
#ifndef PFS_RETRYRPC_H
#define PFS_RETRYRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct rrpc_server rrpc_server;
typedef struct rrpc_client rrpc_client;

#define RRPC_DEFAULT_MAX_FRAME (16u << 20) /* 16 MiB */
#define RRPC_STATS_PKG "proxyfs.retryrpc"

typedef enum {
  RRPC_FAULT_CLIENT_BEFORE_SEND,  /* request queued, dropped before writing it */
  RRPC_FAULT_CLIENT_MID_SEND,     /* header and half the body written, dropped */
  RRPC_FAULT_SERVER_RECEIVED,     /* request read, dropped before the method runs */
  RRPC_FAULT_SERVER_BEFORE_REPLY, /* method ran, reply cached, dropped unsent */
  RRPC_FAULT_SERVER_MID_REPLY,    /* header and half the reply written, dropped */
} rrpc_fault_stage;

typedef bool (*rrpc_fault_hook)(void *ctx, rrpc_fault_stage stage,
                                uint64_t client_id, uint64_t request_id);

/* ---- server ----------------------------------------------------------- */

/*
 * A method handler. request is params[0] of the call (any JSON value,
 * json null when absent; borrowed). On success return 0 and set *reply to
 * a new reference (NULL means json null). On failure return a negative
 * errno; the caller sees errstr "errno: N" unless the handler sets *errstr
 * to a malloc'd message of its own (taken over by the library).
 * client_id is the caller's ID (the original's 4-parameter form).
 * Handlers run on the server's worker threads, several at once.
 */
typedef int (*rrpc_handler)(void *ctx, uint64_t client_id, const json_t *request,
                            json_t **reply, char **errstr);

typedef struct {
  const char *name;  /* exact method name on the wire, e.g. "Mount" */
  rrpc_handler fn;
  void *ctx;
} rrpc_method;

/* Zero means the default in brackets. */
typedef struct {
  const char *addr;          /* listen host name or IP [all addresses] */
  uint16_t port;             /* 0 = ephemeral, see rrpc_server_port() */
  uint64_t long_trim_ns;     /* reply TTL and TTL trimmer period [10 min] */
  uint64_t short_trim_ns;    /* acknowledgement trimmer period [100 ms] */
  uint64_t deadline_io_ns;   /* per-frame I/O deadline [60 s] */
  uint64_t keepalive_ns;     /* TCP keepalive idle/interval [60 s] */
  uint64_t client_expiry_ns; /* a client without connection this long is
                                forgotten with its cache [long_trim] */
  const char *tls_cert_file; /* PEM chain; with tls_key_file => TLS */
  const char *tls_key_file;  /* PEM private key (PKCS#8 or traditional) */
  unsigned workers;          /* worker threads [8] */
  unsigned max_queue;        /* requests waiting for a worker [1024] */
  size_t max_queue_bytes;    /* their bodies' bytes [256 MiB]; a reader
                                waits (TCP back-pressure) while either is full */
  unsigned max_connections;  /* open connections [1024] */
  size_t max_conn_out_bytes; /* frames queued for one connection's writer;
                                beyond, the connection is dropped [64 MiB] */
  size_t max_frame;          /* body bytes per frame [RRPC_DEFAULT_MAX_FRAME] */
  /* Reply cache caps. Over a cap, the inserting client's oldest replies
   * are evicted (logged), never its newest; a re-sent request whose reply
   * was evicted would run again, so size the caps for the acknowledgement
   * lag, not for correctness. */
  size_t cache_bytes_per_client; /* [64 MiB] */
  size_t cache_bytes_total;  /* all clients [1 GiB] */
  bool sequential_ids;       /* client IDs 1, 2, 3... (the original) */
  bool manual_trim;          /* no trimmer thread (so no expiry either);
                                tests call rrpc_server_trim */
  bool log_enabled;          /* false: log nothing (the original without Logger) */
  rrpc_fault_hook fault_hook;
  void *fault_ctx;
} rrpc_server_config;

/* Copies config and methods (names must be unique, -EINVAL otherwise).
 * Loads the TLS certificate and key if configured (-EINVAL, logged, when
 * they cannot be loaded). No socket is opened yet. */
int rrpc_server_create(const rrpc_server_config *cfg, const rrpc_method *methods,
                       size_t nmethods, rrpc_server **out);
/* Bind, listen, start the accept, worker and trimmer threads. */
int rrpc_server_start(rrpc_server *s);
/* The bound port (after start). */
uint16_t rrpc_server_port(const rrpc_server *s);
/* Upcall: best effort, no acknowledgement; queued for the client's current
 * connection (never blocks on the network). -ENOENT unknown client,
 * -ENOTCONN no current connection, -EMSGSIZE over max_frame, -EIO the
 * connection's output queue is full (the connection is dropped). */
int rrpc_server_send_upcall(rrpc_server *s, uint64_t client_id,
                            const void *payload, size_t len);
/* Test helper: close every accepted connection (clients will reconnect). */
void rrpc_server_close_client_conns(rrpc_server *s);
/* Cached replies over all clients (the original's CompletedCnt). */
size_t rrpc_server_completed_count(rrpc_server *s);
size_t rrpc_server_cache_bytes(rrpc_server *s);
size_t rrpc_server_client_count(rrpc_server *s);
/* Open connections (handshake included). */
size_t rrpc_server_conn_count(rrpc_server *s);
/* Run the acknowledgement and/or TTL trim now (also expires clients). */
void rrpc_server_trim(rrpc_server *s, bool ack, bool ttl);
/* Stop accepting, close every connection, join every thread, free all.
 * Waits for running handlers. NULL is fine. */
void rrpc_server_destroy(rrpc_server *s);

/* ---- client ----------------------------------------------------------- */

/* Called on the client's upcall thread, in arrival order; payload is
 * borrowed for the call. It may call rrpc_client_send, but must return
 * and must not destroy the client (destroy waits for it). */
typedef void (*rrpc_upcall_fn)(void *ctx, const void *payload, size_t len);

typedef struct {
  const char *host;          /* server name or IP; also the TLS name checked */
  uint16_t port;
  const char *ca_pem;        /* CA certificate(s), PEM; NULL => plain TCP */
  size_t ca_pem_len;
  rrpc_upcall_fn upcall;     /* may be NULL: upcalls are discarded */
  void *upcall_ctx;
  uint64_t deadline_io_ns;   /* per-frame I/O deadline; a reply silent this
                                long makes the client reconnect [60 s] */
  uint64_t keepalive_ns;     /* [60 s] */
  uint64_t connect_timeout_ns; /* per dial (TCP + TLS handshake) [10 s] */
  uint64_t call_timeout_ns;  /* rrpc_client_send's timeout when 0 is passed [60 s] */
  unsigned retry_limit;      /* dial retries before failing calls [8] */
  uint64_t retry_delay_ns;   /* first retry delay, doubled each time [100 ms] */
  size_t max_frame;          /* [RRPC_DEFAULT_MAX_FRAME] */
  unsigned max_upcalls;      /* upcalls queued for delivery [1024] */
  bool log_enabled;
  rrpc_fault_hook fault_hook;
  void *fault_ctx;
} rrpc_client_config;

/* No I/O: the first call connects. -EINVAL when ca_pem holds no
 * certificate (logged as the original: "x509CertPool.AppendCertsFromPEM()
 * returned !ok") or host is missing. */
int rrpc_client_create(const rrpc_client_config *cfg, rrpc_client **out);

/*
 * Call method with request (params[0]; borrowed; NULL sends null) and wait
 * for the reply, across reconnects, for at most timeout_ns (0: the config's
 * call_timeout_ns). On success returns 0 and, if reply is not NULL, sets
 * *reply to a new reference (json null when the result was null).
 * Errors:
 *   remote error  errstr "errno: N" => -N; any other text => -EREMOTEIO.
 *                 If errstr is not NULL it receives the text (malloc'd).
 *   -ETIMEDOUT    no reply in time; the request is abandoned (it may still
 *                 run once on the server; it will never run twice)
 *   -ESTALE       the server lost this client's session (restart/expiry)
 *                 while the call was outstanding; it may or may not have run
 *   -EACCES       TLS: the server's certificate was refused (last_error says why)
 *   -ECONNREFUSED etc. the server could not be reached within retry_limit
 *   -ESHUTDOWN    the client is being destroyed
 */
int rrpc_client_send(rrpc_client *c, const char *method, const json_t *request,
                     json_t **reply, char **errstr, uint64_t timeout_ns);
/* The client ID, 0 before the first connection. */
uint64_t rrpc_client_id(rrpc_client *c);
/* "ClientSide-<id>", the client's stats group in RRPC_STATS_PKG. */
void rrpc_client_stats_group(rrpc_client *c, char *buf, size_t len);
/* Highest N with replies 1..N all seen (or abandoned). */
uint64_t rrpc_client_highest_consecutive(rrpc_client *c);
/* Text of the most recent connection-level error ("" if none yet); it is
 * kept after the client recovers. */
void rrpc_client_last_error(rrpc_client *c, char *buf, size_t len);
/* Fail outstanding calls with -ESHUTDOWN, close, join threads, free.
 * Waits for a running upcall callback and for a dial in progress (at most
 * connect_timeout). NULL is fine. */
void rrpc_client_destroy(rrpc_client *c);

/* "errno: N" => -N; anything else (including NULL/"") => -EREMOTEIO. */
int rrpc_errno_from_errstr(const char *errstr);

#endif
