/*
 * utils: the HTTP server over libmicrohttpd.
 *
 * Threading model: MHD_USE_THREAD_PER_CONNECTION. Our handlers block (imgr
 * reads Swift objects, iswift touches its store), and with a fixed thread
 * pool a few slow handlers would starve every other connection, including
 * the /stats and /version probes. One thread per connection, capped by
 * MHD_OPTION_CONNECTION_LIMIT, keeps a slow request from delaying others
 * while the cap bounds the thread count. Stop lets running handlers finish
 * and their replies go out, then MHD_stop_daemon closes the remaining
 * (idle or half-read) connections and joins every connection thread.
 *
 * Per request, MHD calls the URI log callback first (we allocate our
 * request state there and keep the raw, still percent-encoded path), then
 * the access handler once with no body, again for each body piece, and a
 * last time with nothing left; the completion callback frees the state.
 */
#include "utils_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "logger.h"

#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_TIMEOUT_S 30
/* First body allocation; it doubles as data arrives, up to max_body. */
#define BODY_INITIAL_CAP 4096
#define TLS_PEM_MAX (1024 * 1024)
/* GnuTLS priorities: its defaults, less everything older than TLS 1.2. */
#define TLS_PRIORITIES "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"

struct ut_http_server {
  struct MHD_Daemon *mhd;
  unsigned timeout_s;
  /* Requests between handler start and reply sent, so stop can let them
   * finish before libmicrohttpd cuts every connection. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned active;
  ut_http_route *routes;
  size_t nroutes;
  size_t max_body;
  uint16_t port;
  char *tls_cert, *tls_key; /* PEM text, kept for the daemon's lifetime */
};

typedef struct {
  ut_http_server *srv;
  struct MHD_Connection *conn;
  char *raw_path;     /* as sent, query removed, trailing '/' removed */
  char *path;         /* percent-decoded by MHD, trailing '/' removed */
  bool started;       /* the first access-handler call has happened */
  bool too_large;     /* body exceeded max_body: drop it, answer 413 */
  bool active;        /* counted in srv->active */
  int route;          /* index into srv->routes */
  char *body;         /* NULL until data arrives; room for body_len + NUL */
  size_t body_len, body_cap;
} http_req;

size_t uti_http_trim_len(const char *path, size_t len)
{
  while (len > 0 && path[len - 1] == '/')
    len--;
  return len;
}

int uti_http_route_lookup(const ut_http_route *routes, size_t nroutes,
                          const char *method, const char *path)
{
  bool method_known = false;
  for (size_t i = 0; i < nroutes; i++) {
    if (routes[i].method != NULL && strcmp(routes[i].method, method) != 0)
      continue;
    method_known = true;
    if (strncmp(path, routes[i].prefix, strlen(routes[i].prefix)) == 0)
      return (int)i;
  }
  return method_known ? -ENOENT : -EOPNOTSUPP;
}

const char *ut_http_header(const ut_http_request *req, const char *name)
{
  const http_req *rq = req->internal;
  return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *ut_http_query(const ut_http_request *req, const char *name)
{
  const http_req *rq = req->internal;
  const char *value = NULL;
  /* "?bulk-delete" has a key and no value: present, so "" rather than NULL. */
  if (MHD_lookup_connection_value_n(rq->conn, MHD_GET_ARGUMENT_KIND, name,
                                    strlen(name), &value, NULL) != MHD_YES)
    return NULL;
  return value != NULL ? value : "";
}

static char *dup_trimmed(const char *s, size_t len)
{
  return strndup(s, uti_http_trim_len(s, len));
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
  http_req *rq = calloc(1, sizeof *rq);
  if (rq == NULL)
    return NULL;
  rq->srv = cls;
  rq->conn = conn;
  rq->raw_path = dup_trimmed(uri, strcspn(uri, "?"));
  if (rq->raw_path == NULL) {
    free(rq);
    return NULL;
  }
  return rq;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
  http_req *rq = *req_cls;
  if (rq == NULL)
    return;
  if (rq->active) {
    pthread_mutex_lock(&rq->srv->mu);
    if (--rq->srv->active == 0)
      pthread_cond_broadcast(&rq->srv->cv);
    pthread_mutex_unlock(&rq->srv->mu);
  }
  free(rq->raw_path);
  free(rq->path);
  free(rq->body);
  free(rq);
  *req_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  msg[strcspn(msg, "\n")] = '\0';
  log_warn("HTTP server: %s", msg);
}

/* MHD never asks a HEAD response for its body; this only guards misuse. */
static ssize_t no_content(void *cls, uint64_t pos, char *buf, size_t max)
{
  return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* The Content-Length a HEAD reply announces without carrying a body. */
static bool head_length(const ut_http_reply *rep, uint64_t *len)
{
  for (size_t i = 0; i < rep->nheaders; i++)
    if (strcasecmp(rep->headers[i].name, "Content-Length") == 0)
      return conf_parse_u64(rep->headers[i].value, UINT64_MAX - 1, len) == 0;
  return false;
}

/* Queue rep (whose body passes to MHD) and reset it. */
static enum MHD_Result send_reply(struct MHD_Connection *conn, const char *method,
                                  ut_http_reply *rep)
{
  struct MHD_Response *resp;
  uint64_t announced;
  if (rep->body == NULL && strcmp(method, "HEAD") == 0 && head_length(rep, &announced))
    resp = MHD_create_response_from_callback(announced, 4096, no_content, NULL, NULL);
  else if (rep->body != NULL)
    resp = MHD_create_response_from_buffer_with_free_callback(rep->body_len, rep->body,
                                                              free);
  else
    resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
  if (resp == NULL) {
    uti_http_reply_reset(rep);
    return MHD_NO;
  }
  if (rep->body != NULL)
    rep->body = NULL; /* now owned by resp */
  if (rep->content_type != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep->content_type);
  for (size_t i = 0; i < rep->nheaders; i++) {
    /* MHD computes Content-Length itself and refuses a manual one. */
    if (strcasecmp(rep->headers[i].name, "Content-Length") == 0)
      continue;
    if (MHD_add_response_header(resp, rep->headers[i].name, rep->headers[i].value) != MHD_YES)
      log_warn("HTTP server: reply header %s refused", rep->headers[i].name);
  }
  int status = rep->status;
  if (status < 100 || status > 599) {
    log_error("HTTP server: handler set invalid status %d", status);
    status = 500;
  }
  enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
  MHD_destroy_response(resp);
  uti_http_reply_reset(rep);
  return r;
}

static enum MHD_Result send_status(struct MHD_Connection *conn, const char *method,
                                   int status)
{
  ut_http_reply rep = { .status = status };
  return send_reply(conn, method, &rep);
}

/* Room for n more body bytes, growing geometrically but never past
 * max_body (+1 for the NUL). */
static int body_reserve(http_req *rq, size_t n)
{
  size_t need = rq->body_len + n + 1;
  if (need <= rq->body_cap)
    return 0;
  size_t cap = rq->body_cap ? rq->body_cap : BODY_INITIAL_CAP;
  while (cap < need)
    cap *= 2;
  if (cap > rq->srv->max_body + 1)
    cap = rq->srv->max_body + 1;
  char *p = realloc(rq->body, cap);
  if (p == NULL)
    return -ENOMEM;
  rq->body = p;
  rq->body_cap = cap;
  return 0;
}

/* First call: headers are in, no body yet. Answer at once what needs no
 * body (404, 405, a declared length over the cap): MHD then skips the
 * upload and closes the connection. */
static enum MHD_Result on_headers(http_req *rq, const char *url, const char *method)
{
  ut_http_server *srv = rq->srv;
  rq->path = dup_trimmed(url, strlen(url));
  if (rq->path == NULL)
    return MHD_NO;
  rq->route = uti_http_route_lookup(srv->routes, srv->nroutes, method, rq->path);
  if (rq->route < 0)
    return send_status(rq->conn, method, ut_http_status_from_errno(rq->route));
  const char *cl = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_LENGTH);
  uint64_t declared;
  if (cl != NULL && conf_parse_u64(cl, UINT64_MAX, &declared) == 0 &&
      declared > srv->max_body)
    return send_status(rq->conn, method, 413);
  return MHD_YES;
}

static enum MHD_Result on_body(http_req *rq, const char *data, size_t n)
{
  if (rq->too_large)
    return MHD_YES;
  if (n > rq->srv->max_body - rq->body_len) {
    /* A chunked body (no Content-Length) ran over. MHD 0.9.75 cannot queue
     * a reply mid-upload, so the rest is read and dropped, never stored. */
    rq->too_large = true;
    free(rq->body);
    rq->body = NULL;
    rq->body_len = rq->body_cap = 0;
    return MHD_YES;
  }
  if (body_reserve(rq, n) != 0)
    return MHD_NO;
  memcpy(rq->body + rq->body_len, data, n);
  rq->body_len += n;
  return MHD_YES;
}

static enum MHD_Result dispatch(http_req *rq, const char *method)
{
  if (rq->too_large)
    return send_status(rq->conn, method, 413);
  if (rq->body != NULL)
    rq->body[rq->body_len] = '\0';

  pthread_mutex_lock(&rq->srv->mu);
  rq->srv->active++;
  pthread_mutex_unlock(&rq->srv->mu);
  rq->active = true;

  const ut_http_route *route = &rq->srv->routes[rq->route];
  ut_http_request req = {
    .method = method,
    .path = rq->path,
    .raw_path = rq->raw_path,
    .body = rq->body != NULL ? rq->body : "",
    .body_len = rq->body_len,
    .internal = rq,
  };
  ut_http_reply rep = { .status = 200 };
  uint64_t t0 = ut_now_ns();
  int err = route->handler(&req, &rep, route->ctx);
  if (err < 0) {
    uti_http_reply_reset(&rep);
    rep.status = ut_http_status_from_errno(err);
  }
  log_trace("HTTP %s %s -> %d (%llu us)", method, rq->path, rep.status,
            (unsigned long long)((ut_now_ns() - t0) / 1000));
  return send_reply(rq->conn, method, &rep);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
  http_req *rq = *req_cls;
  if (rq == NULL) /* on_uri could not allocate: drop the connection */
    return MHD_NO;
  if (!rq->started) {
    rq->started = true;
    return on_headers(rq, url, method);
  }
  if (*upload_data_size > 0) {
    enum MHD_Result r = on_body(rq, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return r;
  }
  return dispatch(rq, method);
}

/* addr: numeric IPv4 or IPv6 address, or a name; NULL/"" = any IPv4. */
static int resolve(const char *addr, uint16_t port, struct sockaddr_storage *ss,
                   bool *ipv6)
{
  memset(ss, 0, sizeof *ss);
  *ipv6 = false;
  if (addr == NULL || *addr == '\0') {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    sin->sin_port = htons(port);
    return 0;
  }
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(addr, NULL, &hints, &res);
  if (rc != 0) {
    log_error("HTTP server: cannot resolve %s: %s", addr, gai_strerror(rc));
    return -EINVAL;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (ss->ss_family == AF_INET6) {
    ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    *ipv6 = true;
  } else {
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
  }
  return 0;
}

static void server_free(ut_http_server *srv)
{
  pthread_cond_destroy(&srv->cv);
  pthread_mutex_destroy(&srv->mu);
  free(srv->routes);
  free(srv->tls_cert);
  free(srv->tls_key);
  free(srv);
}

static bool is_set(const char *s)
{
  return s != NULL && s[0] != '\0';
}

/* Loads the certificate and key named in cfg and fills opts (ending in
 * MHD_OPTION_END) for MHD_OPTION_ARRAY; with no TLS configured, opts is
 * just the end marker. */
static int tls_options(const ut_http_config *cfg, ut_http_server *srv,
                       struct MHD_OptionItem opts[4])
{
  opts[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  if (!is_set(cfg->tls_cert_file) && !is_set(cfg->tls_key_file))
    return 0;
  if (!is_set(cfg->tls_cert_file) || !is_set(cfg->tls_key_file)) {
    log_error("HTTP server: a TLS certificate needs its key and the key its certificate");
    return -EINVAL;
  }
  int rc = ut_read_file(cfg->tls_cert_file, TLS_PEM_MAX, &srv->tls_cert, NULL);
  if (rc == 0)
    rc = ut_read_file(cfg->tls_key_file, TLS_PEM_MAX, &srv->tls_key, NULL);
  if (rc != 0) {
    log_error("HTTP server: cannot read %s / %s: %s", cfg->tls_cert_file, cfg->tls_key_file,
              strerror(-rc));
    return rc;
  }
  opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert};
  opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key};
  opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES};
  opts[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  return 0;
}

int ut_http_server_start(const ut_http_config *cfg, const ut_http_route *routes,
                         size_t nroutes, ut_http_server **out)
{
  *out = NULL;
  for (size_t i = 0; i < nroutes; i++)
    if (routes[i].prefix == NULL || routes[i].handler == NULL)
      return -EINVAL;
  struct sockaddr_storage ss;
  bool ipv6;
  int err = resolve(cfg->addr, cfg->port, &ss, &ipv6);
  if (err != 0)
    return err;

  ut_http_server *srv = calloc(1, sizeof *srv);
  if (srv == NULL)
    return -ENOMEM;
  srv->routes = calloc(nroutes ? nroutes : 1, sizeof *routes);
  if (srv->routes == NULL) {
    free(srv);
    return -ENOMEM;
  }
  if (nroutes > 0)
    memcpy(srv->routes, routes, nroutes * sizeof *routes);
  srv->nroutes = nroutes;
  pthread_mutex_init(&srv->mu, NULL);
  pthread_cond_init(&srv->cv, NULL);
  /* Keeps max_body + 1 (the NUL) from wrapping. */
  srv->max_body = cfg->max_body < SIZE_MAX ? cfg->max_body : SIZE_MAX - 1;

  struct MHD_OptionItem tls[4];
  err = tls_options(cfg, srv, tls);
  if (err != 0) {
    server_free(srv);
    return err;
  }
  /* MHD_USE_ITC: MHD_quiesce_daemon needs it in this threading mode. */
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                   MHD_USE_ITC | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0) |
                   (srv->tls_cert ? MHD_USE_TLS : 0);
  unsigned max_conn = cfg->max_connections ? cfg->max_connections : DEFAULT_MAX_CONNECTIONS;
  unsigned timeout = cfg->timeout_s ? cfg->timeout_s : DEFAULT_TIMEOUT_S;
  srv->timeout_s = timeout;
  errno = 0;
  srv->mhd = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, srv,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
      MHD_OPTION_CONNECTION_LIMIT, max_conn,
      MHD_OPTION_CONNECTION_TIMEOUT, timeout,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
      MHD_OPTION_ARRAY, tls,
      MHD_OPTION_END);
  if (srv->mhd == NULL) {
    /* MHD reports no reason; errno is bind's or socket's when it failed there. */
    err = errno != 0 ? -errno : -EIO;
    log_error("HTTP server: cannot listen on %s:%u", cfg->addr ? cfg->addr : "*",
              (unsigned)cfg->port);
    server_free(srv);
    return err;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = info != NULL ? info->port : cfg->port;
  *out = srv;
  return 0;
}

uint16_t ut_http_server_port(const ut_http_server *s)
{
  return s->port;
}

void ut_http_server_stop(ut_http_server *s)
{
  if (s == NULL)
    return;
  /* Stop accepting, let running handlers finish and their replies go out
   * (bounded by the connection timeout), then close every connection:
   * MHD_stop_daemon shuts idle and half-read ones down and joins all
   * connection threads. */
  MHD_socket listen_fd = MHD_quiesce_daemon(s->mhd);
  struct timespec deadline = ut_deadline_ts((uint64_t)s->timeout_s * 1000000000u);
  pthread_mutex_lock(&s->mu);
  while (s->active > 0)
    if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT) {
      log_warn("HTTP server: stopping with %u request(s) still running", s->active);
      break;
    }
  pthread_mutex_unlock(&s->mu);
  MHD_stop_daemon(s->mhd);
  if (listen_fd != MHD_INVALID_SOCKET)
    close(listen_fd);
  server_free(s);
}
