/* swiftclient: connection pool, auth v1, the retry loop and the operations.
 * See swiftclient.h for the contract. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "bucketstats.h"
#include "logger.h"
#include "swift_internal.h"

#define DEFAULT_RETRY_DELAY_NS 100000000ull
#define DEFAULT_TIMEOUT_NS (600ull * 1000000000ull)
#define DEFAULT_POOL 128u
#define DEFAULT_LISTING_PAGE (32u * 1024u * 1024u)
#define URL_MAX 8192

struct swift_conn {
  swift_config cfg; /* strings below are owned copies */
  char *auth_url, *auth_user, *auth_key, *user_agent;
  char *storage_override; /* replaces X-Storage-Url after auth, or NULL */
  char *account;          /* replaces its account segment, or NULL */

  pthread_mutex_t mu; /* guards everything below; never held across I/O */
  pthread_cond_t auth_cv;
  pthread_cond_t pool_cv;
  char *token;
  char *storage_url;
  uint64_t auth_gen;   /* bumped by each successful auth */
  bool auth_running;
  int auth_rc;         /* result of the latest auth */
  CURL **idle;         /* idle easy handles (keep their live connections) */
  size_t nidle;
  size_t nhandles;     /* idle + in use */

  /* bucketstats (lock-free); registered only when cfg.stats_pkg is set */
  char *stats_pkg, *stats_group;
  bs_log2 get_us, get_range_us, get_tail_us, put_us, delete_us, head_us, other_us;
  bs_total retries, reauths, errors;
};

void swift_config_defaults(swift_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->retry_delay_ns = DEFAULT_RETRY_DELAY_NS;
  cfg->retry_exp_backoff = 2.0;
  cfg->retry_limit = 4;
  cfg->timeout_ns = DEFAULT_TIMEOUT_NS;
  cfg->connection_pool_size = DEFAULT_POOL;
  cfg->max_listing_page = DEFAULT_LISTING_PAGE;
  cfg->send_put_etag = true;
}

int swift_errno_from_status(long status) {
  switch (status) {
    case 400: case 411: case 412: return -EINVAL;
    case 401: return -EACCES;
    case 403: return -EPERM;
    case 404: return -ENOENT;
    case 405: return -EOPNOTSUPP;
    case 409: return -ENOTEMPTY;
    case 413: return -EFBIG;
    case 416: return -ERANGE;
    case 422: return -EBADMSG;
    case 408: case 504: return -ETIMEDOUT;
    case 507: return -ENOSPC;
    default: return status >= 200 && status < 300 ? 0 : -EIO;
  }
}

static bool status_retryable(long status) {
  return status >= 500 || status == 408 || status == 429;
}

static int errno_from_curl(CURLcode cc) {
  switch (cc) {
    case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
    case CURLE_OUT_OF_MEMORY: return -ENOMEM;
    default: return -EIO;
  }
}

static void sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

static struct timespec deadline_in(uint64_t ns) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t t = (uint64_t)ts.tv_nsec + ns % 1000000000ull;
  ts.tv_sec += (time_t)(ns / 1000000000ull + t / 1000000000ull);
  ts.tv_nsec = (long)(t % 1000000000ull);
  return ts;
}

/* ---- pool ----------------------------------------------------------- */

static int pool_get(swift_conn *c, CURL **out) {
  struct timespec dl = deadline_in(c->cfg.timeout_ns);
  pthread_mutex_lock(&c->mu);
  while (c->nidle == 0 && c->nhandles >= c->cfg.connection_pool_size) {
    if (pthread_cond_timedwait(&c->pool_cv, &c->mu, &dl) == ETIMEDOUT) {
      pthread_mutex_unlock(&c->mu);
      log_error("swift: no free connection within SwiftTimeout (pool size %" PRIu32 ")",
                c->cfg.connection_pool_size);
      return -ETIMEDOUT;
    }
  }
  CURL *h = NULL;
  if (c->nidle)
    h = c->idle[--c->nidle];
  else
    c->nhandles++;
  pthread_mutex_unlock(&c->mu);
  if (!h && !(h = curl_easy_init())) {
    pthread_mutex_lock(&c->mu);
    c->nhandles--;
    pthread_cond_signal(&c->pool_cv);
    pthread_mutex_unlock(&c->mu);
    return -ENOMEM;
  }
  *out = h;
  return 0;
}

static void pool_put(swift_conn *c, CURL *h) {
  /* reset keeps the handle's live connections, so keep-alive survives */
  curl_easy_reset(h);
  pthread_mutex_lock(&c->mu);
  c->idle[c->nidle++] = h;
  pthread_cond_signal(&c->pool_cv);
  pthread_mutex_unlock(&c->mu);
}

/* ---- one HTTP exchange ---------------------------------------------- */

typedef enum { BODY_DISCARD, BODY_BUFFER, BODY_GROW, BODY_SINK } body_mode;

typedef struct xfer xfer;
struct xfer {
  CURL *easy;
  /* request body: known length (up) or chunked (source) */
  const unsigned char *up;
  size_t up_len, up_pos;
  swift_source_fn source;
  void *source_ctx;
  bool source_started;
  int source_err;
  /* reply */
  body_mode mode;
  unsigned char *buf; /* BODY_BUFFER: the caller's; BODY_GROW: ours, NUL-ended */
  size_t cap, len;
  bool overflow;
  int (*sink)(xfer *x, const void *data, size_t len); /* BODY_SINK */
  void *sink_ctx;
  int sink_err;
  /* checks the 2xx reply's headers before the first body byte is used */
  int (*first_body)(xfer *x);
  bool body_started;
  int check_err;
  long status;
  swift_hdrs hdrs;
  int hdr_err;
};

static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  int rc = swift_hdrs_add_line(&x->hdrs, data, size * n);
  if (rc) {
    x->hdr_err = rc;
    return 0;
  }
  return size * n;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  size_t len = size * n;
  if (x->status == 0) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  if (x->status < 200 || x->status > 299) return len; /* error bodies are dropped */
  if (!x->body_started) {
    x->body_started = true;
    if (x->first_body && (x->check_err = x->first_body(x)) != 0) return 0;
  }
  switch (x->mode) {
    case BODY_DISCARD:
      return len;
    case BODY_BUFFER:
    case BODY_GROW:
      if (len > x->cap - x->len) {
        x->overflow = true;
        return 0;
      }
      if (x->mode == BODY_GROW) {
        unsigned char *nb = realloc(x->buf, x->len + len + 1);
        if (!nb) return 0;
        x->buf = nb;
        x->buf[x->len + len] = '\0';
      }
      memcpy(x->buf + x->len, data, len);
      x->len += len;
      return len;
    case BODY_SINK:
      if ((x->sink_err = x->sink(x, data, len)) != 0) return 0;
      x->len += len;
      return len;
  }
  return 0;
}

static size_t on_upload(char *buf, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  size_t cap = size * n;
  if (x->source) {
    x->source_started = true;
    long got = x->source(x->source_ctx, buf, cap);
    if (got < 0) {
      x->source_err = (int)got;
      return CURL_READFUNC_ABORT;
    }
    return (size_t)got > cap ? cap : (size_t)got;
  }
  size_t left = x->up_len - x->up_pos;
  if (cap > left) cap = left;
  memcpy(buf, x->up + x->up_pos, cap);
  x->up_pos += cap;
  return cap;
}

/* Performs one exchange. 0 when an HTTP status arrived (x->status);
 * otherwise an error, with *final telling whether a retry may help. */
static int perform(swift_conn *c, xfer *x, const char *method, const char *url,
                   struct curl_slist *headers, bool *final) {
  *final = false;
  CURL *h;
  int rc = pool_get(c, &h);
  if (rc) return rc;
  x->easy = h;
  x->status = 0;
  x->up_pos = 0;
  x->len = 0;
  x->overflow = false;
  x->body_started = false;
  x->check_err = x->sink_err = x->source_err = x->hdr_err = 0;
  swift_hdrs_clear(&x->hdrs);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(c->cfg.timeout_ns / 1000000ull));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(c->cfg.connect_timeout_ns / 1000000ull));
  curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "PUT") == 0) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
    curl_easy_setopt(h, CURLOPT_READDATA, x);
    if (!x->source) curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->up_len);
  } else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  CURLcode cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
  pool_put(c, h);
  x->easy = NULL;
  if (cc == CURLE_OK && x->status >= 200 && x->status <= 299 && !x->body_started &&
      x->first_body)
    x->check_err = x->first_body(x); /* an empty body still gets its check */
  if (x->check_err) return x->check_err; /* inconsistent reply: retry */
  if (cc == CURLE_OK) return 0;
  *final = true;
  if (x->hdr_err) return x->hdr_err == -E2BIG ? -EBADMSG : x->hdr_err;
  if (x->overflow) return -EOVERFLOW;
  if (x->sink_err) return x->sink_err < 0 ? x->sink_err : -ECANCELED;
  if (x->source_err) return x->source_err;
  *final = cc == CURLE_OUT_OF_MEMORY;
  return errno_from_curl(cc);
}

/* ---- the retry loop --------------------------------------------------- */

typedef struct op op;
struct op {
  const char *method;
  const char *path;      /* encoded, relative to the storage URL ("" = account) */
  const char *query;     /* NULL or "?..." */
  const char *abs_url;   /* instead of storage URL + path, without token (auth) */
  const swift_header *hdrs;
  size_t nhdrs;
  const char *extra[4];  /* further "Name: value" lines, set by before() */
  /* optional hooks */
  int (*before)(op *o, xfer *x);         /* per attempt: fill extra[] */
  int (*after)(op *o, xfer *x, bool *retry); /* on 2xx: 0 or an error */
  swift_rewind_fn rewind;                /* chunked bodies */
  void *ctx;
  char line[4][160];                     /* storage for extra[] */
  bool retry_422;                        /* we sent an ETag: 422 means damage */
  bs_log2 *stat;                         /* latency stat; NULL = other_us */
};

static const char *op_label(const op *o) { return o->abs_url ? "auth" : o->path; }

/* Snapshot of the current credentials; gen identifies them. */
static int creds_snapshot(swift_conn *c, char **token, char **url, uint64_t *gen) {
  pthread_mutex_lock(&c->mu);
  *token = c->token ? strdup(c->token) : strdup("");
  *url = c->storage_url ? strdup(c->storage_url) : strdup("");
  *gen = c->auth_gen;
  pthread_mutex_unlock(&c->mu);
  if (!*token || !*url) {
    free(*token);
    free(*url);
    return -ENOMEM;
  }
  return 0;
}

static int reauth_after(swift_conn *c, uint64_t seen_gen);

static struct curl_slist *build_headers(const op *o, const char *token, int *rc) {
  struct curl_slist *l = NULL, *t;
  char line[URL_MAX];
  *rc = -ENOMEM;
  /* curl would otherwise wait for 100 Continue before every large PUT */
  if (!(l = curl_slist_append(l, "Expect:"))) return NULL;
  if (token && *token) {
    snprintf(line, sizeof line, "X-Auth-Token: %s", token);
    if (!(t = curl_slist_append(l, line))) goto fail;
    l = t;
  }
  for (size_t i = 0; i < o->nhdrs; i++) {
    int n = o->hdrs[i].value && *o->hdrs[i].value
                ? snprintf(line, sizeof line, "%s: %s", o->hdrs[i].name, o->hdrs[i].value)
                : snprintf(line, sizeof line, "%s;", o->hdrs[i].name); /* empty value */
    if (n < 0 || (size_t)n >= sizeof line || strpbrk(line, "\r\n")) {
      *rc = -EINVAL;
      goto fail;
    }
    if (!(t = curl_slist_append(l, line))) goto fail;
    l = t;
  }
  for (size_t i = 0; i < 4 && o->extra[i]; i++) {
    if (!(t = curl_slist_append(l, o->extra[i]))) goto fail;
    l = t;
  }
  *rc = 0;
  return l;
fail:
  curl_slist_free_all(l);
  return NULL;
}

static int run_attempts(swift_conn *c, op *o, xfer *x) {
  uint64_t delay = c->cfg.retry_delay_ns;
  int last = -EIO;
  bool sleep_first = false;
  for (uint32_t attempt = 0; attempt <= c->cfg.retry_limit; attempt++) {
    if (attempt) bs_total_inc(&c->retries);
    if (sleep_first) {
      uint64_t cut = c->cfg.retry_delay_variance
                         ? (uint64_t)((double)delay * c->cfg.retry_delay_variance / 100.0 *
                                      ((double)(arc4random() % 10001) / 10000.0))
                         : 0;
      sleep_ns(delay - cut);
      delay = (uint64_t)((double)delay * c->cfg.retry_exp_backoff);
    }
    sleep_first = true;
    if (x->source_started) {
      if (!o->rewind) return last; /* the body is gone; cannot resend */
      int rrc = o->rewind(o->ctx);
      if (rrc) return rrc;
      x->source_started = false;
    }
    char *token = NULL, *base = NULL;
    uint64_t gen = 0;
    int rc = 0;
    if (!o->abs_url && (rc = creds_snapshot(c, &token, &base, &gen))) return rc;
    char url[URL_MAX];
    int n = o->abs_url ? snprintf(url, sizeof url, "%s", o->abs_url)
                       : snprintf(url, sizeof url, "%s%s%s", base, o->path,
                                  o->query ? o->query : "");
    free(base);
    memset(o->extra, 0, sizeof o->extra);
    if (n < 0 || (size_t)n >= sizeof url) rc = -ENAMETOOLONG;
    if (!rc && o->before) rc = o->before(o, x);
    struct curl_slist *hl = rc ? NULL : build_headers(o, token, &rc);
    free(token);
    if (rc) return rc;
    bool final;
    rc = perform(c, x, o->method, url, hl, &final);
    curl_slist_free_all(hl);
    if (rc) {
      if (final) return rc;
      log_warn("swift: %s %s: attempt %" PRIu32 " failed: %s", o->method, op_label(o),
               attempt + 1, strerror(-rc));
      last = rc;
      continue;
    }
    long st = x->status;
    if (st >= 200 && st <= 299) {
      if (!o->after) return 0;
      bool retry = false;
      rc = o->after(o, x, &retry);
      if (!rc || !retry) return rc;
      log_warn("swift: %s %s: attempt %" PRIu32 ": inconsistent reply (%s)", o->method,
               op_label(o), attempt + 1, strerror(-rc));
      last = rc;
      continue;
    }
    if (st == 401 && !o->abs_url && c->auth_url) {
      log_info("swift: %s %s: HTTP 401, re-authenticating", o->method, op_label(o));
      if ((rc = reauth_after(c, gen))) return rc;
      last = -EACCES;
      sleep_first = false; /* fresh token: no reason to wait */
      continue;
    }
    rc = swift_errno_from_status(st);
    if (status_retryable(st) || (st == 422 && o->retry_422)) {
      log_warn("swift: %s %s: attempt %" PRIu32 ": HTTP %ld", o->method, op_label(o),
               attempt + 1, st);
      last = rc;
      continue;
    }
    if (st != 404) log_error("swift: %s %s: HTTP %ld", o->method, op_label(o), st);
    return rc;
  }
  log_error("swift: %s %s: SwiftRetryLimit (%" PRIu32 ") exceeded: %s", o->method,
            op_label(o), c->cfg.retry_limit, strerror(-last));
  return last;
}

static uint64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* run_attempts, timed into the op's stat (retries included). */
static int run(swift_conn *c, op *o, xfer *x) {
  uint64_t t0 = mono_us();
  int rc = run_attempts(c, o, x);
  bs_log2_add(o->stat ? o->stat : &c->other_us, mono_us() - t0);
  if (rc && rc != -ENOENT) bs_total_inc(&c->errors);
  return rc;
}

/* ---- auth v1 ---------------------------------------------------------- */

static int auth_after(op *o, xfer *x, bool *retry) {
  (void)o;
  const char *tok = swift_hdrs_get(&x->hdrs, "X-Auth-Token");
  const char *url = swift_hdrs_get(&x->hdrs, "X-Storage-Url");
  if (!tok || !*tok || !url || !*url) {
    *retry = true;
    log_error("swift: auth reply lacks X-Auth-Token or X-Storage-Url");
    return -EBADMSG;
  }
  return 0;
}

/* One auth exchange (with retries); no lock held. */
static int auth_request(swift_conn *c, char **token, char **url) {
  swift_header h[2] = {{"X-Auth-User", c->auth_user}, {"X-Auth-Key", c->auth_key}};
  op o = {.method = "GET", .abs_url = c->auth_url, .hdrs = h, .nhdrs = 2,
          .after = auth_after};
  xfer x = {.mode = BODY_DISCARD};
  int rc = run(c, &o, &x);
  if (rc == 0) {
    *token = strdup(swift_hdrs_get(&x.hdrs, "X-Auth-Token"));
    rc = c->storage_override ? ((*url = strdup(c->storage_override)) ? 0 : -ENOMEM)
                             : swift_rewrite_storage_url(c->auth_url,
                                                         swift_hdrs_get(&x.hdrs, "X-Storage-Url"),
                                                         c->account, url);
    if (!rc && !*token) rc = -ENOMEM;
    if (rc == -EINVAL) log_error("swift: X-Storage-Url from %s has no account segment", c->auth_url);
  } else if (x.status == 401 || x.status == 403) {
    rc = -EACCES;
  }
  swift_hdrs_clear(&x.hdrs);
  free(x.hdrs.names);
  free(x.hdrs.values);
  return rc;
}

/* Re-authenticate unless someone already did since seen_gen. One auth runs
 * at a time; the others wait for its result. */
static int reauth_after(swift_conn *c, uint64_t seen_gen) {
  pthread_mutex_lock(&c->mu);
  if (c->auth_gen != seen_gen) {
    pthread_mutex_unlock(&c->mu);
    return 0;
  }
  if (c->auth_running) {
    struct timespec dl = deadline_in(c->cfg.timeout_ns);
    int w = 0;
    while (c->auth_running && w != ETIMEDOUT)
      w = pthread_cond_timedwait(&c->auth_cv, &c->mu, &dl);
    int rc = c->auth_running ? -ETIMEDOUT : c->auth_gen != seen_gen ? 0 : c->auth_rc;
    pthread_mutex_unlock(&c->mu);
    return rc;
  }
  c->auth_running = true;
  pthread_mutex_unlock(&c->mu);

  char *token = NULL, *url = NULL;
  int rc = auth_request(c, &token, &url);

  pthread_mutex_lock(&c->mu);
  if (rc == 0) {
    free(c->token);
    free(c->storage_url);
    c->token = token;
    c->storage_url = url;
    c->auth_gen++;
    bs_total_inc(&c->reauths);
  } else {
    free(token);
    free(url);
    log_error("swift: authentication at %s failed: %s", c->auth_url, strerror(-rc));
  }
  c->auth_rc = rc;
  c->auth_running = false;
  pthread_cond_broadcast(&c->auth_cv);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int swift_reauth(swift_conn *c) {
  if (!c->auth_url) return -EINVAL;
  pthread_mutex_lock(&c->mu);
  uint64_t gen = c->auth_gen;
  pthread_mutex_unlock(&c->mu);
  return reauth_after(c, gen);
}

/* Copy the token (which = false) or the storage URL under the lock. */
static int copy_out(swift_conn *c, bool url, char *buf, size_t buflen) {
  pthread_mutex_lock(&c->mu);
  const char *v = url ? c->storage_url : c->token;
  if (!v) v = "";
  size_t n = strlen(v);
  int rc = n < buflen ? 0 : -ERANGE;
  if (!rc) memcpy(buf, v, n + 1);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int swift_storage_url(swift_conn *c, char *buf, size_t buflen) {
  return copy_out(c, true, buf, buflen);
}

int swift_auth_token(swift_conn *c, char *buf, size_t buflen) {
  return copy_out(c, false, buf, buflen);
}

/* ---- create / destroy -------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static char *dup_opt(const char *s) { return s && *s ? strdup(s) : NULL; }

static int register_stats(swift_conn *c, const char *pkg, const char *group) {
  const bs_stat_desc d[] = {
      BS_DESC_LOG2(&c->delete_us, "SwiftObjectDeleteUsecs"),
      BS_DESC_LOG2(&c->get_us, "SwiftObjectGetUsecs"),
      BS_DESC_LOG2(&c->get_range_us, "SwiftObjectGetRangeUsecs"),
      BS_DESC_LOG2(&c->get_tail_us, "SwiftObjectGetTailUsecs"),
      BS_DESC_LOG2(&c->head_us, "SwiftObjectHeadUsecs"),
      BS_DESC_LOG2(&c->put_us, "SwiftObjectPutUsecs"),
      BS_DESC_LOG2(&c->other_us, "SwiftOtherUsecs"),
      BS_DESC_TOTAL(&c->retries, "SwiftRetries"),
      BS_DESC_TOTAL(&c->reauths, "SwiftReAuths"),
      BS_DESC_TOTAL(&c->errors, "SwiftErrors"),
  };
  int rc = bs_register(pkg, group, d, sizeof d / sizeof *d);
  if (rc) return rc;
  c->stats_pkg = strdup(pkg);
  c->stats_group = strdup(group);
  if (!c->stats_pkg || !c->stats_group) {
    bs_unregister(pkg, group);
    return -ENOMEM;
  }
  return 0;
}

int swift_conn_create(const swift_config *cfg, swift_conn **out) {
  *out = NULL;
  bool with_auth = cfg->auth_url && *cfg->auth_url;
  if (with_auth ? !cfg->auth_user || !cfg->auth_key
                : !cfg->storage_url || !*cfg->storage_url || !cfg->auth_token)
    return -EINVAL;
  if (cfg->retry_exp_backoff < 0 || cfg->retry_delay_variance > 100) return -EINVAL;
  pthread_once(&curl_once, curl_init_once);
  swift_conn *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->cfg = *cfg;
  if (!c->cfg.retry_delay_ns) c->cfg.retry_delay_ns = DEFAULT_RETRY_DELAY_NS;
  if (c->cfg.retry_exp_backoff == 0) c->cfg.retry_exp_backoff = 2.0;
  if (!c->cfg.timeout_ns) c->cfg.timeout_ns = DEFAULT_TIMEOUT_NS;
  if (!c->cfg.connect_timeout_ns)
    c->cfg.connect_timeout_ns = c->cfg.timeout_ns < 10000000000ull ? c->cfg.timeout_ns
                                                                    : 10000000000ull;
  if (!c->cfg.connection_pool_size) c->cfg.connection_pool_size = DEFAULT_POOL;
  if (!c->cfg.max_listing_page) c->cfg.max_listing_page = DEFAULT_LISTING_PAGE;
  c->auth_url = dup_opt(cfg->auth_url);
  c->account = dup_opt(cfg->account);
  c->auth_user = dup_opt(cfg->auth_user);
  c->auth_key = cfg->auth_key ? strdup(cfg->auth_key) : NULL;
  c->user_agent = strdup(cfg->user_agent && *cfg->user_agent ? cfg->user_agent
                                                              : "proxyfs-c");
  if (with_auth)
    c->storage_override = dup_opt(cfg->storage_url);
  else
    c->storage_url = strdup(cfg->storage_url);
  c->token = strdup(with_auth || !cfg->auth_token ? "" : cfg->auth_token);
  c->cfg.auth_url = c->cfg.auth_user = c->cfg.auth_key = c->cfg.auth_token = NULL;
  c->cfg.user_agent = c->cfg.storage_url = c->cfg.stats_pkg = c->cfg.stats_group = c->cfg.account = NULL;
  c->idle = calloc(c->cfg.connection_pool_size, sizeof *c->idle);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->auth_cv, NULL);
  pthread_cond_init(&c->pool_cv, NULL);
  if (!c->idle || !c->user_agent || !c->token || (with_auth ? !c->auth_user || !c->auth_key : !c->storage_url)) {
    swift_conn_destroy(c);
    return -ENOMEM;
  }
  if (cfg->stats_pkg && *cfg->stats_pkg) {
    int rc = register_stats(c, cfg->stats_pkg, cfg->stats_group ? cfg->stats_group : "");
    if (rc) {
      log_error("swift: cannot register stats %s.%s: %s", cfg->stats_pkg,
                cfg->stats_group ? cfg->stats_group : "", strerror(-rc));
      swift_conn_destroy(c);
      return rc;
    }
  }
  if (with_auth) {
    int rc = swift_reauth(c);
    if (rc) {
      swift_conn_destroy(c);
      return rc;
    }
  }
  *out = c;
  return 0;
}

void swift_conn_destroy(swift_conn *c) {
  if (!c) return;
  if (c->stats_pkg) bs_unregister(c->stats_pkg, c->stats_group);
  free(c->stats_pkg);
  free(c->stats_group);
  for (size_t i = 0; i < c->nidle; i++) curl_easy_cleanup(c->idle[i]);
  free(c->idle);
  free(c->storage_override);
  free(c->account);
  free(c->auth_url);
  free(c->auth_user);
  free(c->auth_key);
  free(c->user_agent);
  free(c->token);
  free(c->storage_url);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->auth_cv);
  pthread_cond_destroy(&c->pool_cv);
  free(c);
}

/* ---- paths -------------------------------------------------------------- */

/* "/<container>[/<object>]" percent-encoded; container NULL = account. */
static char *make_path(const char *container, const char *object) {
  if (!container) return strdup("");
  if (!*container || strchr(container, '/') || (object && !*object)) return NULL;
  char *ec = swift_pct_encode(container, 0);
  char *eo = object ? swift_pct_encode(object, 1) : NULL;
  char *p = NULL;
  if (ec && (!object || eo)) {
    size_t n = strlen(ec) + (eo ? strlen(eo) : 0) + 3;
    if ((p = malloc(n))) snprintf(p, n, "/%s%s%s", ec, eo ? "/" : "", eo ? eo : "");
  }
  free(ec);
  free(eo);
  return p;
}

static void xfer_done(xfer *x, swift_hdrs **hdrs_out) {
  if (hdrs_out) {
    swift_hdrs *h = malloc(sizeof *h);
    if (h) {
      *h = x->hdrs;
      *hdrs_out = h;
      return;
    }
    *hdrs_out = NULL;
  }
  swift_hdrs_clear(&x->hdrs);
  free(x->hdrs.names);
  free(x->hdrs.values);
}

/* A simple request without body in either direction. */
static int simple(swift_conn *c, const char *method, const char *container,
                  const char *object, const swift_header *hdrs, size_t nhdrs,
                  xfer *x) {
  char *path = make_path(container, object);
  if (!path) return -EINVAL;
  op o = {.method = method, .path = path, .hdrs = hdrs, .nhdrs = nhdrs};
  if (object && strcmp(method, "DELETE") == 0) o.stat = &c->delete_us;
  if (object && strcmp(method, "HEAD") == 0) o.stat = &c->head_us;
  if (strcmp(method, "PUT") == 0) x->up = (const unsigned char *)"";
  int rc = run(c, &o, x);
  free(path);
  return rc;
}

static int simple_hdrs(swift_conn *c, const char *method, const char *container,
                       const char *object, const swift_header *hdrs, size_t nhdrs,
                       swift_hdrs **hdrs_out) {
  xfer x = {.mode = BODY_DISCARD};
  if (hdrs_out) *hdrs_out = NULL;
  int rc = simple(c, method, container, object, hdrs, nhdrs, &x);
  xfer_done(&x, rc ? NULL : hdrs_out);
  return rc;
}

int swift_object_delete(swift_conn *c, const char *container, const char *object) {
  return simple_hdrs(c, "DELETE", container, object, NULL, 0, NULL);
}

int swift_object_post(swift_conn *c, const char *container, const char *object,
                      const swift_header *hdrs, size_t nhdrs) {
  return simple_hdrs(c, "POST", container, object, hdrs, nhdrs, NULL);
}

int swift_container_put(swift_conn *c, const char *container,
                        const swift_header *hdrs, size_t nhdrs) {
  return simple_hdrs(c, "PUT", container, NULL, hdrs, nhdrs, NULL);
}

int swift_container_head(swift_conn *c, const char *container, swift_hdrs **hdrs_out) {
  return simple_hdrs(c, "HEAD", container, NULL, NULL, 0, hdrs_out);
}

int swift_container_post(swift_conn *c, const char *container,
                         const swift_header *hdrs, size_t nhdrs) {
  return simple_hdrs(c, "POST", container, NULL, hdrs, nhdrs, NULL);
}

int swift_container_delete(swift_conn *c, const char *container) {
  return simple_hdrs(c, "DELETE", container, NULL, NULL, 0, NULL);
}

int swift_account_put(swift_conn *c, const swift_header *hdrs, size_t nhdrs) {
  return simple_hdrs(c, "PUT", NULL, NULL, hdrs, nhdrs, NULL);
}

int swift_account_head(swift_conn *c, swift_hdrs **hdrs_out) {
  return simple_hdrs(c, "HEAD", NULL, NULL, NULL, 0, hdrs_out);
}

static int parse_u64_header(const char *v, uint64_t *out) {
  if (!v || !*v) return -EBADMSG;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || *end || *v == '-') return -EBADMSG;
  *out = n;
  return 0;
}

int swift_object_head(swift_conn *c, const char *container, const char *object,
                      uint64_t *size, swift_hdrs **hdrs_out) {
  if (!object) return -EINVAL;
  xfer x = {.mode = BODY_DISCARD};
  if (hdrs_out) *hdrs_out = NULL;
  int rc = simple(c, "HEAD", container, object, NULL, 0, &x);
  if (!rc && size) rc = parse_u64_header(swift_hdrs_get(&x.hdrs, "Content-Length"), size);
  xfer_done(&x, rc ? NULL : hdrs_out);
  return rc;
}

/* ---- GET ------------------------------------------------------------- */

/* Ranges as sent; FROM (bytes=off-) only appears when a stream resumes. */
typedef enum { RG_ALL, RG_SPAN, RG_TAIL, RG_FROM } rg_kind;
typedef struct {
  rg_kind kind;
  uint64_t off, len;
} rg;

typedef struct {
  rg want;               /* what the caller asked for */
  rg sent;               /* this attempt's request */
  uint64_t delivered;    /* stream: bytes handed to the sink so far */
  uint64_t total;        /* object size once known, else UINT64_MAX */
  uint64_t expect_count; /* stream: bytes this attempt's reply must carry */
  char etag[80];
  EVP_MD_CTX *md5;       /* whole-object digest, when checkable */
  swift_sink_fn sink;
  void *sink_ctx;
} get_state;

static bool etag_md5(const char *v, char out[33]) {
  if (!v) return false;
  size_t n = strlen(v);
  if (n == 34 && v[0] == '"' && v[33] == '"') {
    v++;
    n = 32;
  }
  if (n != 32) return false;
  for (size_t i = 0; i < 32; i++) {
    char ch = v[i];
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
    out[i] = ch;
  }
  out[32] = '\0';
  return true;
}

static void md5_hex(EVP_MD_CTX *m, char out[33]) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned dl = 0;
  EVP_DigestFinal_ex(m, d, &dl);
  for (unsigned i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Can the whole-object MD5 be checked against this reply's ETag? */
static bool etag_checkable(const swift_hdrs *h, char md5[33]) {
  return etag_md5(swift_hdrs_get(h, "ETag"), md5) &&
         !swift_hdrs_get(h, "X-Object-Manifest") &&
         !swift_hdrs_get(h, "X-Static-Large-Object");
}

static int get_before(op *o, xfer *x) {
  (void)x;
  get_state *g = o->ctx;
  int n = 0;
  switch (g->sent.kind) {
    case RG_ALL: break;
    case RG_SPAN:
      n = snprintf(o->line[0], sizeof o->line[0], "Range: bytes=%" PRIu64 "-%" PRIu64,
                   g->sent.off, g->sent.off + g->sent.len - 1);
      break;
    case RG_TAIL:
      n = snprintf(o->line[0], sizeof o->line[0], "Range: bytes=-%" PRIu64, g->sent.len);
      break;
    case RG_FROM:
      n = snprintf(o->line[0], sizeof o->line[0], "Range: bytes=%" PRIu64 "-", g->sent.off);
      break;
  }
  size_t k = 0;
  if (n > 0) o->extra[k++] = o->line[0];
  if (g->delivered && g->etag[0]) {
    snprintf(o->line[1], sizeof o->line[1], "If-Match: %s", g->etag);
    o->extra[k++] = o->line[1];
  }
  return 0;
}

/* Check the reply's status/Content-Range/Content-Length against the range
 * sent. On success first and count give the bytes the body must carry. */
static int check_reply(get_state *g, xfer *x, uint64_t *first, uint64_t *count) {
  uint64_t clen = UINT64_MAX;
  const char *cl = swift_hdrs_get(&x->hdrs, "Content-Length");
  if (cl && parse_u64_header(cl, &clen)) return -EBADMSG;
  if (x->status == 206) {
    uint64_t a, b, total;
    if (swift_parse_content_range(swift_hdrs_get(&x->hdrs, "Content-Range"), &a, &b,
                                  &total) || total == UINT64_MAX)
      return -EBADMSG;
    uint64_t want_first = g->sent.off;
    if (g->sent.kind == RG_TAIL) want_first = total - (g->sent.len < total ? g->sent.len : total);
    if (g->sent.kind == RG_ALL) want_first = 0;
    if (a != want_first) return -EBADMSG;
    if (g->sent.kind == RG_SPAN && b > g->sent.off + g->sent.len - 1) return -EBADMSG;
    if (clen != UINT64_MAX && clen != b - a + 1) return -EBADMSG;
    if (g->total != UINT64_MAX && g->total != total) return -EBADMSG;
    g->total = total;
    *first = a;
    *count = b - a + 1;
    return 0;
  }
  if (x->status != 200) return -EBADMSG;
  /* 200: the whole object. Acceptable for a range only when the object lies
   * entirely inside it (servers answer short objects so). */
  if (clen == UINT64_MAX) return -EBADMSG; /* chunked whole body: no way to check */
  bool ok = g->sent.kind == RG_ALL || (g->sent.kind == RG_TAIL && clen <= g->sent.len) ||
            (g->sent.kind != RG_TAIL && g->sent.off == 0 &&
             (g->sent.kind == RG_FROM || clen <= g->sent.len));
  if (!ok) return -EBADMSG;
  if (g->total != UINT64_MAX && g->total != clen) return -EBADMSG;
  g->total = clen;
  *first = 0;
  *count = clen;
  return 0;
}

/* Buffer mode: the body must be exactly what the headers promise. */
static int get_after(op *o, xfer *x, bool *retry) {
  get_state *g = o->ctx;
  uint64_t first, count;
  *retry = true;
  int rc = check_reply(g, x, &first, &count);
  if (rc) return rc;
  if (count != x->len) return -EBADMSG;
  char want[33], got[33];
  if (first == 0 && count == g->total && etag_checkable(&x->hdrs, want)) {
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m) return -ENOMEM;
    EVP_DigestInit_ex(m, EVP_md5(), NULL);
    EVP_DigestUpdate(m, x->buf, x->len);
    md5_hex(m, got);
    EVP_MD_CTX_free(m);
    if (strcmp(want, got) != 0) {
      log_error("swift: GET %s: body MD5 %s does not match ETag %s", o->path, got, want);
      return -EBADMSG;
    }
  }
  return 0;
}

static int get_range_check(const swift_range *r, rg *out) {
  switch (r->kind) {
    case SWIFT_RANGE_ALL: *out = (rg){RG_ALL, 0, 0}; return 0;
    case SWIFT_RANGE_SPAN:
      if (!r->len || r->off > UINT64_MAX - r->len) return -EINVAL;
      *out = (rg){RG_SPAN, r->off, r->len};
      return 0;
    case SWIFT_RANGE_TAIL:
      if (!r->len) return -EINVAL;
      *out = (rg){RG_TAIL, 0, r->len};
      return 0;
  }
  return -EINVAL;
}

static bs_log2 *get_stat(swift_conn *c, const rg *want) {
  return want->kind == RG_SPAN ? &c->get_range_us
         : want->kind == RG_TAIL ? &c->get_tail_us : &c->get_us;
}

/* The original iswift answers 400 to a suffix range longer than the object
 * where real Swift returns the whole object (iswift.md 7.2). Switch such a
 * request to a whole-object GET; returns true when the caller should rerun. */
static bool tail_refused(get_state *g, const xfer *x, int rc) {
  if (rc != -EINVAL || x->status != 400 || g->want.kind != RG_TAIL || g->delivered) return false;
  g->want = g->sent = (rg){RG_ALL, 0, g->want.len};
  return true;
}

int swift_object_get(swift_conn *c, const char *container, const char *object,
                     swift_range range, void *buf, size_t buflen, size_t *got,
                     swift_hdrs **hdrs_out) {
  *got = 0;
  if (hdrs_out) *hdrs_out = NULL;
  get_state g = {.total = UINT64_MAX};
  int rc = get_range_check(&range, &g.want);
  if (rc) return rc;
  g.sent = g.want;
  char *path = object ? make_path(container, object) : NULL;
  if (!path) return -EINVAL;
  op o = {.method = "GET", .path = path, .before = get_before, .after = get_after,
          .ctx = &g, .stat = get_stat(c, &g.want)};
  xfer x = {.mode = BODY_BUFFER, .buf = buf, .cap = buflen};
  rc = run(c, &o, &x);
  if (tail_refused(&g, &x, rc)) {
    rc = run(c, &o, &x);
    if (!rc && x.len > g.want.len) rc = -EINVAL; /* larger after all: not a fallback case */
  }
  if (!rc) *got = x.len;
  xfer_done(&x, rc ? NULL : hdrs_out);
  free(path);
  return rc;
}

/* Stream mode: verify the headers before the first byte reaches the sink. */
static int stream_first_body(xfer *x) {
  get_state *g = x->sink_ctx;
  uint64_t first, count;
  int rc = check_reply(g, x, &first, &count);
  if (rc) return rc;
  (void)first;
  g->expect_count = count;
  if (!g->etag[0]) {
    const char *e = swift_hdrs_get(&x->hdrs, "ETag");
    if (e && strlen(e) < sizeof g->etag) snprintf(g->etag, sizeof g->etag, "%s", e);
  }
  char want[33];
  if (g->delivered == 0 && g->want.kind == RG_ALL && !g->md5 &&
      etag_checkable(&x->hdrs, want)) {
    if ((g->md5 = EVP_MD_CTX_new())) EVP_DigestInit_ex(g->md5, EVP_md5(), NULL);
  }
  return 0;
}

static int stream_sink(xfer *x, const void *data, size_t len) {
  get_state *g = x->sink_ctx;
  int rc = g->sink(g->sink_ctx, data, len);
  if (rc) return rc;
  if (g->md5) EVP_DigestUpdate(g->md5, data, len);
  g->delivered += len;
  return 0;
}

/* The range still missing after `delivered` bytes arrived. */
static void stream_resume_range(get_state *g) {
  if (!g->delivered) return;
  uint64_t start;
  switch (g->want.kind) {
    case RG_ALL: g->sent = (rg){RG_FROM, g->delivered, 0}; return;
    case RG_SPAN: g->sent = (rg){RG_SPAN, g->want.off + g->delivered, g->want.len - g->delivered}; return;
    case RG_TAIL:
      start = g->total - (g->want.len < g->total ? g->want.len : g->total);
      g->sent = (rg){RG_FROM, start + g->delivered, 0};
      return;
    case RG_FROM: return;
  }
}

static int stream_before(op *o, xfer *x) {
  stream_resume_range(o->ctx);
  return get_before(o, x);
}

static int stream_after(op *o, xfer *x, bool *retry) {
  get_state *g = o->ctx;
  *retry = true;
  if (!x->body_started) return 0; /* empty object: checked by first_body */
  if (x->len != g->expect_count) return -EBADMSG; /* truncated */
  if (g->md5 && g->delivered == g->total) {
    char want[33], got[33];
    *retry = false; /* the bytes are already out: cannot take them back */
    if (etag_checkable(&x->hdrs, want)) {
      md5_hex(g->md5, got);
      if (strcmp(want, got) != 0) {
        log_error("swift: GET %s: streamed MD5 %s does not match ETag %s", o->path, got,
                  want);
        return -EBADMSG;
      }
    }
  }
  return 0;
}

int swift_object_get_stream(swift_conn *c, const char *container, const char *object,
                            swift_range range, swift_sink_fn sink, void *ctx) {
  get_state g = {.total = UINT64_MAX, .sink = sink, .sink_ctx = ctx};
  int rc = get_range_check(&range, &g.want);
  if (rc) return rc;
  g.sent = g.want;
  char *path = object ? make_path(container, object) : NULL;
  if (!path) return -EINVAL;
  op o = {.method = "GET", .path = path, .before = stream_before, .after = stream_after,
          .ctx = &g, .stat = get_stat(c, &g.want)};
  xfer x = {.mode = BODY_SINK, .sink = stream_sink, .sink_ctx = &g,
            .first_body = stream_first_body};
  rc = run(c, &o, &x);
  if (tail_refused(&g, &x, rc)) rc = run(c, &o, &x);
  if (rc == -EINVAL && x.status == 412) rc = -ESTALE; /* changed between attempts */
  if (g.md5) EVP_MD_CTX_free(g.md5);
  xfer_done(&x, NULL);
  free(path);
  return rc;
}

/* ---- PUT ------------------------------------------------------------- */

static int put_before(op *o, xfer *x) {
  (void)x;
  o->extra[0] = o->line[2];
  return 0;
}

static int put_after(op *o, xfer *x, bool *retry) {
  const char *sent = o->ctx;
  char got[33];
  *retry = true;
  if (sent && etag_md5(swift_hdrs_get(&x->hdrs, "ETag"), got) && strcmp(got, sent) != 0)
    return -EBADMSG;
  return 0;
}

/*
 * An object PUT into a missing container is 404 on real Swift but 403 on the
 * original iswift (iswift.md 7.2); callers see -ENOENT for both. A 403 alone
 * cannot be trusted to mean that: real Swift answers 403 when the token may
 * not write there (container ACLs, another account). The original's 403 has
 * an empty body, but so may a 403 from middleware or a proxy in front of
 * Swift, so the body is no proof either. Instead, on this error path only,
 * HEAD the container: 404 means it (or the account) is missing -> -ENOENT;
 * any other answer (403, 204, a transport error) keeps -EPERM. A container
 * created or deleted between the two requests can only move the result
 * between these two answers, each of which was true at some instant.
 */
static int put_refused(swift_conn *c, const char *container, const xfer *x, int rc) {
  if (rc != -EPERM || x->status != 403) return rc;
  if (swift_container_head(c, container, NULL) != -ENOENT) return rc;
  log_info("swift: PUT into container %s: HTTP 403, and the container does not exist: "
           "reporting it missing", container);
  return -ENOENT;
}

int swift_object_put(swift_conn *c, const char *container, const char *object,
                     const void *data, size_t len,
                     const swift_header *hdrs, size_t nhdrs) {
  char *path = object ? make_path(container, object) : NULL;
  if (!path) return -EINVAL;
  op o = {.method = "PUT", .path = path, .hdrs = hdrs, .nhdrs = nhdrs, .after = put_after,
          .stat = &c->put_us};
  char md5[33];
  if (c->cfg.send_put_etag) {
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m) {
      free(path);
      return -ENOMEM;
    }
    EVP_DigestInit_ex(m, EVP_md5(), NULL);
    EVP_DigestUpdate(m, data, len);
    md5_hex(m, md5);
    EVP_MD_CTX_free(m);
    snprintf(o.line[2], sizeof o.line[2], "ETag: %s", md5);
    o.ctx = md5;
    o.before = put_before;
    o.retry_422 = true;
  }
  xfer x = {.mode = BODY_DISCARD, .up = data ? data : (const void *)"", .up_len = len};
  int rc = put_refused(c, container, &x, run(c, &o, &x));
  xfer_done(&x, NULL);
  free(path);
  return rc;
}

int swift_object_put_stream(swift_conn *c, const char *container, const char *object,
                            swift_source_fn source, swift_rewind_fn rewind, void *ctx,
                            const swift_header *hdrs, size_t nhdrs) {
  char *path = object ? make_path(container, object) : NULL;
  if (!path) return -EINVAL;
  op o = {.method = "PUT", .path = path, .hdrs = hdrs, .nhdrs = nhdrs, .rewind = rewind,
          .ctx = ctx, .stat = &c->put_us};
  xfer x = {.mode = BODY_DISCARD, .source = source, .source_ctx = ctx};
  int rc = put_refused(c, container, &x, run(c, &o, &x));
  xfer_done(&x, NULL);
  free(path);
  return rc;
}

/* ---- listings --------------------------------------------------------- */

typedef struct {
  const swift_list_opts *opts;
  swift_list_fn fn;
  void *ctx;
  char *last;          /* last name seen on this page */
  char *subdir;        /* last subdir reported (or the caller's marker) */
  uint64_t seen;       /* entries handed to fn */
  bool done;           /* prefix range passed or max reached */
  int stop;            /* fn's positive stop value */
} list_state;

static int list_entry(void *ctx, const swift_list_entry *e) {
  list_state *s = ctx;
  char *nl = strdup(e->name);
  if (!nl) return -ENOMEM;
  free(s->last);
  s->last = nl;
  const char *p = s->opts->prefix;
  if (p && *p) {
    int cmp = strncmp(e->name, p, strlen(p));
    if (cmp < 0) return 0;
    if (cmp > 0) { /* sorted: nothing further can match */
      s->done = true;
      return 1;
    }
  }
  swift_list_entry out = *e;
  const char *d = s->opts->delimiter;
  const char *hit = d && *d ? strstr(e->name + (p ? strlen(p) : 0), d) : NULL;
  if (hit) {
    /* Real Swift sends the subdir once; a server that ignores delimiter=
     * sends every name under it: report only the first. */
    size_t dl = (size_t)(hit - e->name) + strlen(d);
    if (s->subdir && strlen(s->subdir) == dl && strncmp(s->subdir, e->name, dl) == 0)
      return 0;
    char *sd = strndup(e->name, dl);
    if (!sd) return -ENOMEM;
    free(s->subdir);
    s->subdir = sd;
    out = (swift_list_entry){.name = sd, .bytes = -1, .count = -1, .subdir = true};
  }
  int rc = s->fn(s->ctx, &out);
  s->seen++;
  if (rc > 0) {
    s->stop = rc;
    s->done = true;
    return 1;
  }
  if (rc < 0) return rc;
  if (s->opts->max_entries && s->seen >= s->opts->max_entries) {
    s->done = true;
    return 1;
  }
  return 0;
}

static int append_param(char *q, size_t cap, const char *key, const char *val) {
  char *ev = swift_pct_encode(val, 0);
  if (!ev) return -ENOMEM;
  size_t used = strlen(q);
  int n = snprintf(q + used, cap - used, "%c%s=%s", used ? '&' : '?', key, ev);
  free(ev);
  return n < 0 || (size_t)n >= cap - used ? -ENAMETOOLONG : 0;
}

int swift_list(swift_conn *c, const char *container, const swift_list_opts *opts,
               swift_list_fn fn, void *ctx, swift_hdrs **hdrs_out) {
  swift_list_opts none = {0};
  if (!opts) opts = &none;
  if (hdrs_out) *hdrs_out = NULL;
  char *path = make_path(container, NULL);
  if (!path) return -EINVAL;
  list_state s = {.opts = opts, .fn = fn, .ctx = ctx};
  char *marker = opts->marker ? strdup(opts->marker) : strdup("");
  int rc = marker ? 0 : -ENOMEM;
  if (!rc && opts->marker && !(s.subdir = strdup(opts->marker))) rc = -ENOMEM;
  bool first_page = true;
  while (!rc && !s.done) {
    char q[4096] = "";
    if (opts->json) rc = append_param(q, sizeof q, "format", "json");
    if (!rc && *marker) rc = append_param(q, sizeof q, "marker", marker);
    if (!rc && opts->prefix && *opts->prefix)
      rc = append_param(q, sizeof q, "prefix", opts->prefix);
    if (!rc && opts->delimiter && *opts->delimiter)
      rc = append_param(q, sizeof q, "delimiter", opts->delimiter);
    if (!rc && opts->page_limit) {
      char lim[16];
      snprintf(lim, sizeof lim, "%" PRIu32, opts->page_limit);
      rc = append_param(q, sizeof q, "limit", lim);
    }
    if (rc) break;
    op o = {.method = "GET", .path = path, .query = q};
    xfer x = {.mode = BODY_GROW, .cap = c->cfg.max_listing_page};
    rc = run(c, &o, &x);
    if (!rc && x.status == 200 && x.len) {
      const char *ct = swift_hdrs_get(&x.hdrs, "Content-Type");
      int json = ct && strncasecmp(ct, "application/json", 16) == 0;
      free(s.last);
      s.last = NULL;
      rc = swift_parse_listing_page((const char *)x.buf, x.len, json, list_entry, &s);
      if (rc > 0) rc = 0;
      if (rc == -EINVAL) {
        log_error("swift: GET %s: malformed listing page", path);
        rc = -EBADMSG;
      }
      if (!rc && !s.done) {
        if (!s.last) {
          s.done = true; /* an empty JSON array */
        } else if (strcmp(s.last, marker) <= 0) {
          log_error("swift: GET %s: listing does not advance past marker", path);
          rc = -EBADMSG;
        } else {
          free(marker);
          marker = s.last;
          s.last = NULL;
        }
      }
    } else if (!rc) {
      s.done = true; /* 204 or an empty 200: the end */
    }
    free(x.buf);
    xfer_done(&x, !rc && first_page ? hdrs_out : NULL);
    first_page = false;
  }
  free(s.last);
  free(s.subdir);
  free(marker);
  free(path);
  return rc;
}
