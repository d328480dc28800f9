/*
 * utils: what every daemon and several libraries share (support.md section 4,
 * architecture.md section 3): time, random bytes, hex, the daemon skeleton,
 * and the HTTP server helper over libmicrohttpd.
 *
 * Errors: 0 or a negative errno, as everywhere in proxyfs-c.
 */
#ifndef PFS_UTILS_H
#define PFS_UTILS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "conf.h"

/* ---- time ------------------------------------------------------------- */

uint64_t ut_now_ns(void);        /* CLOCK_MONOTONIC */
uint64_t ut_wall_ns(void);       /* CLOCK_REALTIME  */
/* Sleep, restarting after signals. */
void ut_sleep_ns(uint64_t ns);
/* Absolute CLOCK_REALTIME timespec timeout_ns from now, for timed waits. */
struct timespec ut_deadline_ts(uint64_t timeout_ns);

/* ---- random and hex --------------------------------------------------- */

/* Cryptographic random bytes (getrandom). */
int ut_random_bytes(void *buf, size_t n);
uint64_t ut_random_u64(void);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void ut_hex_encode(const void *buf, size_t n, char *out);

/* ---- files ----------------------------------------------------------- */

/* Read a whole file of at most max bytes into a malloc'd, NUL-terminated
 * buffer (*len excludes the NUL). -EFBIG when the file is larger than max;
 * other failures are open/read's errno. */
int ut_read_file(const char *path, size_t max, char **out, size_t *len);

/* ---- parallel loops ---------------------------------------------------- */

/* Run fn(ctx, i) for every i in [0, n) on up to `threads` threads (the
 * caller's included; 1 or n == 1 runs inline). Indexes are handed out in
 * order; after the first nonzero return no new index is started, and that
 * value is returned (0 when all succeeded). When threads cannot be
 * created, the remaining work runs on the threads that exist. fn must be
 * thread-safe for distinct i. */
int ut_parallel(size_t n, unsigned threads, int (*fn)(void *ctx, size_t i), void *ctx);

/* ---- daemon skeleton -------------------------------------------------- */

/*
 * ut_daemon_main runs a daemon the way every proxyfs-c executable runs:
 *
 *   prog CONF [Section.Option=value ...]
 *
 * 1. load the config (errors to stderr, exit 1: "no .conf file specified",
 *    "failed to load config: ...", "failed to apply config overrides: ...");
 * 2. configure the logger from [section] LogFilePath/LogToConsole/TraceEnabled;
 * 3. block SIGINT, SIGTERM and SIGHUP in every thread (so threads started by
 *    start() inherit the mask) and ignore SIGPIPE (a peer closing a socket
 *    must not kill the daemon), then call start(); failure logs
 *    "<name>.Start() failed: <errno text>" and exits 1; success logs "UP";
 * 4. wait for signals: SIGHUP reopens the log file and calls hup();
 *    SIGINT/SIGTERM log "DOWN", call stop() and exit 0 (1 if stop failed).
 * A second SIGINT/SIGTERM during stop is ignored, not fatal.
 *
 * Returns the exit status for main() to return.
 */
typedef struct {
  const char *name;     /* "imgr", used in messages */
  const char *section;  /* config section holding the logger keys, "IMGR" */
  int (*start)(const conf_map *conf, void *ctx);
  int (*stop)(void *ctx);
  void (*hup)(void *ctx); /* optional */
  void *ctx;
} ut_daemon;

int ut_daemon_main(const ut_daemon *d, int argc, char *argv[]);

/* ---- HTTP server ------------------------------------------------------ */

/*
 * A small HTTP/1.1 server over libmicrohttpd (thread per connection,
 * bounded connection count). Requests are routed by method and path prefix;
 * the first matching route wins. Request bodies are read whole up to
 * max_body bytes (413 beyond). A method no route accepts gets 405; a known
 * method on an unmatched path gets 404.
 * Handlers run on the connection's thread and may block on I/O.
 * A HEAD request goes only to routes whose method is "HEAD" (or NULL); its
 * reply's body is never sent, and a reply with no body and a
 * "Content-Length" header announces that length (HEAD of a large object).
 * On other requests a "Content-Length" reply header is ignored: the server
 * sets it from the body. Requests refused before any handler runs (404, 405,
 * 413) carry no body; a body over max_body announced by Content-Length is
 * refused without being read, a chunked one is read and dropped.
 * A malformed request (bad chunking, bad headers) gets 400 from
 * libmicrohttpd; a client that disconnects mid-body never reaches a handler.
 */
typedef struct ut_http_server ut_http_server;

typedef struct ut_http_request {
  const char *method;    /* "GET", "PUT", ... */
  const char *path;      /* URL path, trailing '/' characters removed ("" for "/");
                            percent-decoded by libmicrohttpd, so "%2F" is '/' here */
  const char *raw_path;  /* the same path exactly as sent (still percent-encoded,
                            query removed, trailing '/' removed), for names that may
                            hold an encoded '/' (Swift objects) */
  const char *body;      /* NUL-terminated copy; may contain NULs; never NULL */
  size_t body_len;
  void *internal;        /* for the accessors below */
} ut_http_request;

/* Header (case-insensitive) or query argument of the request, or NULL.
 * Query values are percent-decoded; a key sent without '=' ("?bulk-delete")
 * gives "". The strings live until the handler returns. */
const char *ut_http_header(const ut_http_request *req, const char *name);
const char *ut_http_query(const ut_http_request *req, const char *name);

#define UT_HTTP_MAX_REPLY_HEADERS 16

typedef struct ut_http_reply {
  int status;                 /* default 200 */
  const char *content_type;   /* static string; NULL = no Content-Type */
  char *body;                 /* malloc'd, freed by the server; may be NULL */
  size_t body_len;
  size_t nheaders;
  struct { char *name, *value; } headers[UT_HTTP_MAX_REPLY_HEADERS]; /* malloc'd */
} ut_http_reply;

/* Reply helpers; each replaces any body already set. */
int ut_http_reply_json(ut_http_reply *rep, int status, json_t *json); /* steals json */
int ut_http_reply_text(ut_http_reply *rep, int status, const char *content_type,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int ut_http_reply_bytes(ut_http_reply *rep, int status, const char *content_type,
                        const void *body, size_t len); /* copies */
/* -EINVAL for a name that is not a token or a value holding CR/LF,
 * -ENOSPC beyond UT_HTTP_MAX_REPLY_HEADERS. */
int ut_http_reply_header(ut_http_reply *rep, const char *name, const char *value);

/* A handler fills rep and returns 0; a negative errno return sends the
 * status from ut_http_status_from_errno with no body. */
typedef int (*ut_http_handler)(const ut_http_request *req, ut_http_reply *rep, void *ctx);

typedef struct {
  const char *method;    /* NULL matches any method */
  const char *prefix;    /* path prefix, e.g. "/volume"; "" matches all */
  ut_http_handler handler;
  void *ctx;
} ut_http_route;

typedef struct {
  const char *addr;          /* "127.0.0.1"; NULL or "" = all addresses */
  uint16_t port;             /* 0 = ephemeral (see ut_http_server_port) */
  size_t max_body;           /* request body cap in bytes (0: no body accepted) */
  unsigned max_connections;  /* 0 = 64 */
  unsigned timeout_s;        /* idle connection timeout; 0 = 30 */
  /* HTTPS when both are set: PEM certificate (chain) and PKCS#8 key files
   * (Ed25519 or RSA, as icert writes them), TLS 1.2 or newer, no client
   * certificates. Both NULL or "": plain HTTP. One without the other: -EINVAL. */
  const char *tls_cert_file;
  const char *tls_key_file;
} ut_http_config;

/* routes is copied. */
int ut_http_server_start(const ut_http_config *cfg, const ut_http_route *routes,
                         size_t nroutes, ut_http_server **out);
uint16_t ut_http_server_port(const ut_http_server *s);
/* Stops accepting, lets running handlers finish and send their replies
 * (for up to timeout_s; past that their connections are cut, but stop still
 * waits for the handlers to return), closes idle connections, frees.
 * NULL is fine. */
void ut_http_server_stop(ut_http_server *s);

/* One table from negative errno to HTTP status: 0 200, -EINVAL/-EBADMSG 400,
 * -EACCES 401, -EPERM 403, -ENOENT 404, -EOPNOTSUPP 405, -EEXIST/-ENOTEMPTY
 * 409, -E2BIG/-EMSGSIZE 413, -ERANGE 416, -ENOSYS 501, -EIO 502,
 * -EAGAIN/-EBUSY 503, -ETIMEDOUT 504, others 500. */
int ut_http_status_from_errno(int err);

/*
 * Standard observability routes every daemon mounts (architecture.md 4):
 *   GET /stats    bucketstats text of all groups (text/plain)
 *   GET /metrics  Prometheus text exposition of all groups
 *   GET /version  the build's version (text/plain)
 *   GET /config   the daemon's config as JSON (ctx = const conf_map *;
 *                 the route is left out when conf is NULL)
 * Each answers its exact path only (404 for "/statsx" or "/stats/x").
 * ut_http_std_routes writes up to 4 routes into out and returns the count;
 * conf must outlive the server.
 */
size_t ut_http_std_routes(const conf_map *conf, ut_http_route out[4]);

#endif
