/*
 * The ickpt HTTP service (A.6.5): HEAD for liveness; GET, PUT, POST and
 * DELETE keyed by X-Storage-Url and authorized against Swift; /stats,
 * /metrics, /version and /config from the shared helper.
 *
 * Request order: cheap syntax checks (400/413) first so that garbage never
 * costs a Swift round trip, then authorization (401/503; network I/O, no
 * lock held), then the store (which takes its own per-key lock).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "bucketstats.h"
#include "conf.h"
#include "ickpt_service.h"
#include "ilayout.h"
#include "logger.h"
#include "utils.h"

#define STATS_PKG "ickpt"
#define STATS_GROUP "api"

typedef struct {
  bs_total head, get, put, post, del, other;
  bs_total status_2xx, status_4xx, status_5xx;
  bs_total auth_swift, auth_cached, auth_refused, auth_unavailable;
  bs_average get_usecs, put_usecs, post_usecs, delete_usecs;
} ickpt_stats;

struct ickpt_service {
  ickpt_config cfg;
  ickpt_store *store;
  ickpt_auth *auth;
  ut_http_server *http;
  ickpt_stats stats;
  bool stats_registered;
  bool curl_inited;
};

int ickpt_status_from_errno(int err) {
  switch (err) {
  case 0:
    return 200;
  case -EINVAL:
    return 400;
  case -EACCES:
    return 401;
  case -ENOENT:
    return 404;
  case -ESTALE:
  case -ESRCH:
    return 409;
  case -ECANCELED:
    return 412;
  case -E2BIG:
    return 413;
  case -EAGAIN:
  case -EBUSY:
    return 503;
  default:
    return 500;
  }
}

/* An error reply: status from the table, one text line, Retry-After on 503. */
static int reply_error(ut_http_reply *rep, const ut_http_request *req, int err,
                       const char *reason) {
  int status = ickpt_status_from_errno(err);
  ut_http_reply_text(rep, status, "text/plain", "%s\n", reason[0] ? reason : strerror(-err));
  if (status == 503) {
    ut_http_reply_header(rep, "Retry-After", "1");
  }
  if (status >= 500) {
    log_error("ickpt: %s %s: %d %s", req->method, req->path, status, reason);
  } else {
    log_trace("ickpt: %s %s: %d %s", req->method, req->path, status, reason);
  }
  return 0;
}

static void set_version(ut_http_reply *rep, uint64_t version, bool etag) {
  char v[32];
  snprintf(v, sizeof v, "%llu", (unsigned long long)version);
  ut_http_reply_header(rep, "X-Ickpt-Version", v);
  if (etag) {
    char e[40];
    snprintf(e, sizeof e, "\"%llu\"", (unsigned long long)version);
    ut_http_reply_header(rep, "ETag", e);
  }
}

static int authorize(ickpt_service *s, const char *url, const char *canonical, const char *token,
                     bool want_value, ickpt_auth_result *res) {
  int rc = ickpt_auth_check(s->auth, url, canonical, token, want_value, res);
  bs_total_inc(rc == 0 && res->cached ? &s->stats.auth_cached : &s->stats.auth_swift);
  if (rc == -EACCES) {
    bs_total_inc(&s->stats.auth_refused);
  } else if (rc != 0) {
    bs_total_inc(&s->stats.auth_unavailable);
  }
  return rc;
}

static int do_get(ickpt_service *s, ut_http_reply *rep, const ut_http_request *req, const char *url,
                  const char *canonical, const char *token, char *err, size_t errlen) {
  ickpt_auth_result ar;
  int rc = authorize(s, url, canonical, token, false, &ar);
  if (rc != 0) {
    return reply_error(rep, req, rc, ar.reason);
  }
  char *value;
  size_t len;
  uint64_t version;
  rc = ickpt_store_get(s->store, canonical, &value, &len, &version, err, errlen);
  if (rc == 0) {
    ut_http_reply_bytes(rep, 200, "text/plain", value, len);
    free(value);
    set_version(rep, version, true);
    return 0;
  }
  if (rc != -ENOENT) {
    return reply_error(rep, req, rc, err);
  }
  /* Nothing committed here yet: answer with what Swift holds (A.3). */
  rc = authorize(s, url, canonical, token, true, &ar);
  if (rc != 0) {
    return reply_error(rep, req, rc, ar.reason);
  }
  if (ar.value_too_large) {
    return reply_error(rep, req, -EIO, "Swift object is larger than MaxValueSize");
  }
  if (ar.value == NULL) {
    return reply_error(rep, req, -ENOENT, "no value stored and none in Swift");
  }
  ut_http_reply_bytes(rep, 200, "text/plain", ar.value, ar.value_len);
  free(ar.value);
  set_version(rep, 0, false);
  return 0;
}

static int do_update(ickpt_service *s, ut_http_reply *rep, const ut_http_request *req,
                     const char *url, const char *canonical, const char *token, char *err,
                     size_t errlen) {
  bool is_post = strcmp(req->method, "POST") == 0;
  bool is_put = strcmp(req->method, "PUT") == 0;
  /* As sent: a percent-encoded character is not part of a valid ID. */
  const char *txn = req->raw_path[0] == '/' ? req->raw_path + 1 : req->raw_path;
  if (!ickpt_txn_valid(txn)) {
    return reply_error(rep, req, -EINVAL,
                       "the path must be /<transaction ID> (1-128 of [0-9A-Za-z_-])");
  }
  ickpt_cond cond = {ICKPT_COND_NONE, 0};
  if (!is_post && ickpt_cond_parse(ut_http_header(req, "If-Match"),
                                   ut_http_header(req, "If-None-Match"), &cond) != 0) {
    return reply_error(rep, req, -EINVAL,
                       "If-Match must be one \"<version>\" or *, If-None-Match only *");
  }
  if (is_put && req->body_len > s->cfg.store.max_value) {
    return reply_error(rep, req, -E2BIG, "body larger than MaxValueSize");
  }
  if (is_put && s->cfg.store.enforce_monotonic) {
    ilayout_checkpoint_v1 cp;
    if (ilayout_checkpoint_v1_decode(req->body, req->body_len, &cp) != 0) {
      return reply_error(rep, req, -EINVAL, "body is not a CheckPoint V1 text");
    }
  }
  ickpt_auth_result ar;
  int rc = authorize(s, url, canonical, token, false, &ar);
  if (rc != 0) {
    return reply_error(rep, req, rc, ar.reason);
  }
  if (is_post) {
    uint64_t version;
    rc = ickpt_store_commit(s->store, canonical, txn, &version, err, errlen);
    if (rc != 0) {
      return reply_error(rep, req, rc, err);
    }
    rep->status = 204;
    set_version(rep, version, false);
    return 0;
  }
  rc = ickpt_store_stage(s->store, canonical, txn, is_put ? ICKPT_SET : ICKPT_DELETE, req->body,
                         is_put ? req->body_len : 0, &cond, err, errlen);
  if (rc != 0) {
    return reply_error(rep, req, rc, err);
  }
  rep->status = 202;
  return 0;
}

static bs_average *latency_stat(ickpt_service *s, const char *method) {
  if (strcmp(method, "GET") == 0) {
    bs_total_inc(&s->stats.get);
    return &s->stats.get_usecs;
  }
  if (strcmp(method, "PUT") == 0) {
    bs_total_inc(&s->stats.put);
    return &s->stats.put_usecs;
  }
  if (strcmp(method, "POST") == 0) {
    bs_total_inc(&s->stats.post);
    return &s->stats.post_usecs;
  }
  if (strcmp(method, "DELETE") == 0) {
    bs_total_inc(&s->stats.del);
    return &s->stats.delete_usecs;
  }
  return NULL;
}

static int dispatch(ickpt_service *s, const ut_http_request *req, ut_http_reply *rep) {
  char err[256] = "";
  const char *url = ut_http_header(req, "X-Storage-Url");
  char canonical[ICKPT_MAX_CANONICAL + 1];
  if (url == NULL || ickpt_canonical_url(url, canonical, sizeof canonical) != 0) {
    return reply_error(rep, req, -EINVAL,
                       "missing or bad X-Storage-Url (want http[s]://host/path)");
  }
  const char *token = ut_http_header(req, "X-Auth-Token");
  if (token == NULL || token[0] == '\0') {
    return reply_error(rep, req, -EACCES, "missing X-Auth-Token");
  }
  if (strcmp(req->method, "GET") == 0) {
    return do_get(s, rep, req, url, canonical, token, err, sizeof err);
  }
  return do_update(s, rep, req, url, canonical, token, err, sizeof err);
}

static int handle(const ut_http_request *req, ut_http_reply *rep, void *ctx) {
  ickpt_service *s = ctx;
  if (strcmp(req->method, "HEAD") == 0) {
    bs_total_inc(&s->stats.head);
    rep->status = 204;
    return 0;
  }
  bs_average *lat = latency_stat(s, req->method);
  if (lat == NULL) {
    bs_total_inc(&s->stats.other);
    ut_http_reply_text(rep, 405, "text/plain", "method %s not allowed\n", req->method);
    ut_http_reply_header(rep, "Allow", "HEAD, GET, PUT, POST, DELETE");
    return 0;
  }
  uint64_t t0 = ut_now_ns();
  int rc = dispatch(s, req, rep);
  bs_average_add(lat, (ut_now_ns() - t0) / 1000);
  bs_total_inc(rep->status >= 500   ? &s->stats.status_5xx
               : rep->status >= 400 ? &s->stats.status_4xx
                                    : &s->stats.status_2xx);
  return rc;
}

static int register_stats(ickpt_service *s) {
  ickpt_stats *t = &s->stats;
  const bs_stat_desc d[] = {
      BS_DESC_TOTAL(&t->head, "HeadRequests"),
      BS_DESC_TOTAL(&t->get, "GetRequests"),
      BS_DESC_TOTAL(&t->put, "PutRequests"),
      BS_DESC_TOTAL(&t->post, "PostRequests"),
      BS_DESC_TOTAL(&t->del, "DeleteRequests"),
      BS_DESC_TOTAL(&t->other, "OtherRequests"),
      BS_DESC_TOTAL(&t->status_2xx, "Status2xx"),
      BS_DESC_TOTAL(&t->status_4xx, "Status4xx"),
      BS_DESC_TOTAL(&t->status_5xx, "Status5xx"),
      BS_DESC_TOTAL(&t->auth_swift, "AuthSwiftChecks"),
      BS_DESC_TOTAL(&t->auth_cached, "AuthCacheHits"),
      BS_DESC_TOTAL(&t->auth_refused, "AuthRefused"),
      BS_DESC_TOTAL(&t->auth_unavailable, "AuthSwiftUnavailable"),
      BS_DESC_AVERAGE(&t->get_usecs, "GetUsecs"),
      BS_DESC_AVERAGE(&t->put_usecs, "PutUsecs"),
      BS_DESC_AVERAGE(&t->post_usecs, "PostUsecs"),
      BS_DESC_AVERAGE(&t->delete_usecs, "DeleteUsecs"),
  };
  int rc = bs_register(STATS_PKG, STATS_GROUP, d, sizeof d / sizeof d[0]);
  s->stats_registered = rc == 0;
  return rc;
}

/* Start-up self-probe as upstream: HEAD / until a 2xx, 11 tries 100 ms apart. */
/* All three TLS paths are set or none is (the config parser sees to it). */
static const char *scheme(const ickpt_service *s) {
  return s->cfg.cert_file != NULL ? "https" : "http";
}

static int self_probe(ickpt_service *s) {
  const char *host = s->cfg.ip_addr[0] ? s->cfg.ip_addr : "127.0.0.1";
  char url[512];
  snprintf(url, sizeof url, strchr(host, ':') ? "%s://[%s]:%u/" : "%s://%s:%u/",
           scheme(s), host, (unsigned)ut_http_server_port(s->http));
  CURL *h = curl_easy_init();
  if (h == NULL) {
    return -ENOMEM;
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "ickpt");
  if (s->cfg.cacert_file != NULL) {
    /* Verify ourselves as a client would: against the configured CA only. */
    curl_easy_setopt(h, CURLOPT_CAINFO, s->cfg.cacert_file);
    curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
  }
  int rc = -ETIMEDOUT;
  for (int i = 0; i < 11 && rc != 0; i++) {
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK &&
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status >= 200 &&
        status <= 299) {
      rc = 0;
    } else {
      ut_sleep_ns(100 * 1000000ull);
    }
  }
  curl_easy_cleanup(h);
  if (rc != 0) {
    log_error("startService() failed to establish that service is up (%s)", url);
  }
  return rc;
}

int ickpt_service_start(const conf_map *m, ickpt_service **out) {
  *out = NULL;
  ickpt_service *s = calloc(1, sizeof *s);
  if (s == NULL) {
    return -ENOMEM;
  }
  char err[CONF_ERR_MAX] = "";
  int rc = ickpt_config_parse(m, &s->cfg, err, sizeof err);
  if (rc != 0) {
    log_error("ickpt: %s", err);
    free(s);
    return rc;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
    ickpt_service_stop(s);
    return -ENOMEM;
  }
  s->curl_inited = true;
  rc = ickpt_auth_create(&s->cfg.auth, &s->auth);
  if (rc == 0) {
    rc = ickpt_store_open(&s->cfg.store, &s->store, err, sizeof err);
    if (rc != 0) {
      log_error("ickpt: %s", err);
    }
  }
  if (rc == 0) {
    rc = register_stats(s);
  }
  if (rc == 0) {
    ut_http_route routes[5];
    size_t n = ut_http_std_routes(m, routes);
    routes[n++] = (ut_http_route){NULL, "", handle, s};
    ut_http_config hc = {
        .addr = s->cfg.ip_addr,
        .port = s->cfg.port,
        .max_body = s->cfg.store.max_value,
        .max_connections = s->cfg.max_connections,
        .tls_cert_file = s->cfg.cert_file,
        .tls_key_file = s->cfg.key_file,
    };
    rc = ut_http_server_start(&hc, routes, n, &s->http);
    if (rc != 0) {
      log_error("ickpt: cannot serve HTTP on %s:%u: %s", s->cfg.ip_addr, (unsigned)s->cfg.port,
                strerror(-rc));
    }
  }
  if (rc == 0) {
    rc = self_probe(s);
  }
  if (rc != 0) {
    ickpt_service_stop(s);
    return rc;
  }
  log_info("ickpt: serving %s://%s:%u with DataBasePath %s", scheme(s), s->cfg.ip_addr,
           (unsigned)ut_http_server_port(s->http), s->cfg.db_path);
  *out = s;
  return 0;
}

uint16_t ickpt_service_port(const ickpt_service *s) {
  return ut_http_server_port(s->http);
}

int ickpt_service_backup(ickpt_service *s) {
  char path[4200], err[256] = "";
  snprintf(path, sizeof path, "%s/backup.mdb", s->cfg.db_path);
  int rc = ickpt_store_backup(s->store, path, err, sizeof err);
  if (rc != 0) {
    log_error("ickpt: %s", err);
  } else {
    log_info("ickpt: database copied to %s", path);
  }
  return rc;
}

void ickpt_service_stop(ickpt_service *s) {
  if (s == NULL) {
    return;
  }
  ut_http_server_stop(s->http); /* waits for running handlers */
  if (s->stats_registered) {
    bs_unregister(STATS_PKG, STATS_GROUP);
  }
  ickpt_store_close(s->store);
  ickpt_auth_destroy(s->auth);
  if (s->curl_inited) {
    curl_global_cleanup();
  }
  ickpt_config_free(&s->cfg);
  free(s);
}
