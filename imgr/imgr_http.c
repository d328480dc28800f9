/* The REST admin API (imgr.md 2): routing, request bodies, status codes,
 * content negotiation and keepalive. Error replies carry a one-line
 * text/plain reason (the original sent none). Unlike the original, paths
 * are matched by whole segments ("/volumeX" is 404). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "imgr_internal.h"
#include "logger.h"

static int fail(ut_http_reply *rep, int status, const char *fmt, const char *arg) {
  ut_http_reply_text(rep, status, "text/plain", fmt, arg ? arg : "");
  return 0;
}

/* Storage-facing errors: each errno to one status and a reason. */
static int storage_fail(ut_http_reply *rep, int rc, const char *what) {
  int status;
  const char *why;
  switch (rc) {
  case -EACCES: status = 401, why = "storage refused the AuthToken (or none is set)"; break;
  case -ENOENT: status = 404, why = "not found in storage"; break;
  case -EEXIST: status = 409, why = "already exists"; break;
  case -EINVAL: status = 400, why = "invalid request"; break;
  case -EBADMSG: status = 500, why = "stored data is corrupt"; break;
  case -ENOSYS: status = 501, why = "not implemented"; break;
  case -ENOMEM: status = 503, why = "out of memory"; break;
  default: status = 502, why = "storage did not answer or failed"; break;
  }
  ut_http_reply_text(rep, status, "text/plain", "%s: %s (%s)\n", what, why, strerror(-rc));
  return 0;
}

static bool wants_html(const ut_http_request *req) {
  return imgr_accepts_html(ut_http_header(req, "Accept"));
}

static int reply_json(ut_http_reply *rep, int status, json_t *j) {
  if (!j) return -ENOMEM;
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (!s) return -ENOMEM;
  int rc = ut_http_reply_bytes(rep, status, "application/json", s, strlen(s));
  free(s);
  return rc;
}

static int reply_page(ut_http_reply *rep, const char *kind, const char *title, json_t *j,
                      const char *extra) {
  char *page = imgr_html_page(kind, title, j, extra);
  json_decref(j);
  if (!page) return -ENOMEM;
  int rc = ut_http_reply_bytes(rep, 200, "text/html", page, strlen(page));
  free(page);
  return rc;
}

static int reply_data(const ut_http_request *req, ut_http_reply *rep, const char *kind,
                      const char *title, json_t *j, const char *extra) {
  return wants_html(req) ? reply_page(rep, kind, title, j, extra) : reply_json(rep, 200, j);
}

/* A JSON object body; member names matched case-insensitively as Go does. */
static const char *member(json_t *o, const char *name) {
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    if (strcasecmp(k, name) == 0) return json_is_string(v) ? json_string_value(v) : NULL;
  }
  return NULL;
}

static bool member_true(json_t *o, const char *name) {
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    if (strcasecmp(k, name) == 0) return json_is_true(v);
  }
  return false;
}

static json_t *parse_body(const ut_http_request *req, ut_http_reply *rep) {
  json_error_t e;
  json_t *j = json_loadb(req->body, req->body_len, 0, &e);
  if (!j || !json_is_object(j)) {
    json_decref(j);
    ut_http_reply_text(rep, 400, "text/plain", "malformed JSON body: %s\n",
                       j ? "not an object" : e.text);
    return NULL;
  }
  return j;
}

/* ---- keepalive (imgr.md 2.5): when the countdown expires every volume
 * stops being served. PUT /keepalive/<duration> 204, GET /keepalive 200
 * with the duration in Go syntax (404 when off), DELETE 204. ---- */

static void *ka_thread(void *arg) {
  imgr_server *srv = arg;
  pthread_mutex_lock(&srv->mu);
  while (!srv->ka_stop) {
    if (!srv->ka_duration_ns) {
      pthread_cond_wait(&srv->ka_cond, &srv->mu);
      continue;
    }
    uint64_t now = ut_now_ns();
    if (now < srv->ka_deadline_ns) {
      struct timespec dl = ut_deadline_ts(srv->ka_deadline_ns - now);
      pthread_cond_timedwait(&srv->ka_cond, &srv->mu, &dl);
      continue;
    }
    srv->ka_duration_ns = 0;
    log_warn("keepalive expired: no volume is served any more");
    while (srv->nvols) {
      char *name = strdup(srv->vols[0]->name);
      pthread_mutex_unlock(&srv->mu);
      if (name) imgr_volume_unserve(srv, name);
      free(name);
      pthread_mutex_lock(&srv->mu);
      if (!name) break;
    }
  }
  pthread_mutex_unlock(&srv->mu);
  return NULL;
}

static void ka_reset(imgr_server *srv) {
  pthread_mutex_lock(&srv->mu);
  if (srv->ka_duration_ns) {
    srv->ka_deadline_ns = ut_now_ns() + srv->ka_duration_ns;
    pthread_cond_broadcast(&srv->ka_cond);
  }
  pthread_mutex_unlock(&srv->mu);
}

void imgr_keepalive_stop(imgr_server *srv) {
  pthread_mutex_lock(&srv->mu);
  bool running = srv->ka_running;
  srv->ka_stop = true;
  srv->ka_running = false;
  pthread_cond_broadcast(&srv->ka_cond);
  pthread_mutex_unlock(&srv->mu);
  if (running) pthread_join(srv->ka_thread, NULL);
}

static int keepalive(imgr_server *srv, const ut_http_request *req, ut_http_reply *rep,
                     const char *arg) {
  if (strcmp(req->method, "GET") == 0 && !arg) {
    pthread_mutex_lock(&srv->mu);
    uint64_t d = srv->ka_duration_ns;
    if (d) srv->ka_deadline_ns = ut_now_ns() + d;
    pthread_mutex_unlock(&srv->mu);
    if (!d) return fail(rep, 404, "keepalive is not enabled\n", NULL);
    return ut_http_reply_text(rep, 200, "text/plain", "%lluns", (unsigned long long)d);
  }
  if (strcmp(req->method, "DELETE") == 0 && !arg) {
    pthread_mutex_lock(&srv->mu);
    srv->ka_duration_ns = 0;
    pthread_cond_broadcast(&srv->ka_cond);
    pthread_mutex_unlock(&srv->mu);
    rep->status = 204;
    return 0;
  }
  if (strcmp(req->method, "PUT") == 0 && arg) {
    uint64_t d;
    if (conf_parse_duration_ns(arg, &d) || d == 0)
      return fail(rep, 400, "bad keepalive duration '%s'\n", arg);
    int rc = 0;
    pthread_mutex_lock(&srv->mu);
    srv->ka_duration_ns = d;
    srv->ka_deadline_ns = ut_now_ns() + d;
    if (!srv->ka_running) {
      srv->ka_stop = false;
      rc = -pthread_create(&srv->ka_thread, NULL, ka_thread, srv);
      srv->ka_running = rc == 0;
    }
    pthread_cond_broadcast(&srv->ka_cond);
    pthread_mutex_unlock(&srv->mu);
    if (rc) return rc;
    rep->status = 204;
    return 0;
  }
  return fail(rep, 400, "bad keepalive request\n", NULL);
}

/* ---- handlers ---- */

static int get_volume(imgr_server *srv, const ut_http_request *req, ut_http_reply *rep,
                      const char *name, const char *inode) {
  imgr_volume *vol;
  if (imgr_volume_get_ref(srv, name, &vol)) return fail(rep, 404, "unknown volume '%s'\n", name);
  imgr_volume_put_ref(vol);
  const char *token = ut_http_header(req, "X-Auth-Token");
  json_t *j = NULL;
  uint64_t t0;
  imgr_stat_now(&t0);
  if (!inode) {
    int rc = imgr_volume_json(srv, name, token, &j);
    imgr_stat_done(&srv->stats.GetVolumeUsecs, t0);
    if (rc) return storage_fail(rep, rc, "reading the volume");
    return reply_data(req, rep, "volume", name, j, NULL);
  }
  uint64_t ino;
  if (conf_parse_u64(inode, UINT64_MAX, &ino)) return fail(rep, 400, "bad inode number '%s'\n", inode);
  int rc = imgr_volume_inode_json(srv, name, ino, token, &j);
  imgr_stat_done(&srv->stats.GetVolumeInodeUsecs, t0);
  if (rc == -ENOENT) return fail(rep, 404, "inode %s not found\n", inode);
  if (rc) return storage_fail(rep, rc, "reading the inode");
  char title[300];
  snprintf(title, sizeof title, "%s inode %s", name, inode);
  return reply_data(req, rep, "inode", title, j, name);
}

static int post_volume(imgr_server *srv, const ut_http_request *req, ut_http_reply *rep) {
  json_t *j = parse_body(req, rep);
  if (!j) return 0;
  const char *url = member(j, "StorageURL");
  const char *token = member(j, "AuthToken");
  int rc = 0;
  if (!url || !*url) fail(rep, 400, "StorageURL missing\n", NULL);
  else if ((rc = imgr_format(srv, url, token, member_true(j, "Force")))) {
    if (rc == -EINVAL) fail(rep, 400, "bad StorageURL '%s'\n", url);
    else if (rc == -EEXIST) fail(rep, 409, "%s is already formatted (add \"Force\":true to format anyway)\n", url);
    else storage_fail(rep, rc, "formatting");
  } else rep->status = 201;
  json_decref(j);
  return 0;
}

static int put_volume(imgr_server *srv, const ut_http_request *req, ut_http_reply *rep,
                      const char *name) {
  uint64_t t0;
  imgr_stat_now(&t0);
  json_t *j = parse_body(req, rep);
  if (!j) return 0;
  const char *url = member(j, "StorageURL");
  int rc = 0;
  if (!url || !*url) fail(rep, 400, "StorageURL missing\n", NULL);
  else if ((rc = imgr_volume_serve(srv, name, url, member(j, "AuthToken")))) {
    if (rc == -EEXIST) fail(rep, 409, "volume '%s' is already served\n", name);
    else if (rc == -EINVAL) fail(rep, 400, "bad volume name or StorageURL for '%s'\n", name);
    else storage_fail(rep, rc, "serving");
  } else {
    rep->status = 201;
    ka_reset(srv);
  }
  json_decref(j);
  imgr_stat_done(&srv->stats.PutVolumeUsecs, t0);
  return 0;
}

/* Split path into at most 6 segments after the leading '/'. */
static size_t split(char *p, char *seg[6]) {
  size_t n = 0;
  if (*p == '/') p++;
  while (n < 6) {
    seg[n++] = p;
    char *s = strchr(p, '/');
    if (!s) break;
    *s = '\0';
    p = s + 1;
  }
  return strchr(p, '/') && n == 6 ? 7 : n;
}

static int handle(const ut_http_request *req, ut_http_reply *rep, void *ctx) {
  imgr_server *srv = ctx;
  const char *m = req->method;
  bool get = !strcmp(m, "GET"), put = !strcmp(m, "PUT"), post = !strcmp(m, "POST"),
       del = !strcmp(m, "DELETE");
  if (!get && !put && !post && !del) {
    rep->status = 405;
    return 0;
  }
  char *path = strdup(req->path);
  if (!path) return -ENOMEM;
  char *seg[6];
  size_t n = split(path, seg);
  int rc = 0;
  uint64_t t0;
  imgr_stat_now(&t0);
  if (get && (!strcmp(req->path, "") || !strcmp(req->path, "/index.html"))) {
    rc = reply_page(rep, "index", "imgr", NULL, NULL);
  } else if (get && !strcmp(req->path, "/config")) {
    rc = reply_data(req, rep, "config", "Config", imgr_config_to_json(srv->cfg), NULL);
    imgr_stat_done(&srv->stats.GetConfigUsecs, t0);
  } else if (!strcmp(seg[0], "keepalive") && n <= 2) {
    rc = keepalive(srv, req, rep, n == 2 ? seg[1] : NULL);
  } else if (strcmp(seg[0], "volume") != 0) {
    rep->status = 404;
  } else if (get && n == 1) {
    ka_reset(srv);
    rc = reply_data(req, rep, "volumeList", "Volumes", imgr_volume_list_json(srv), NULL);
    imgr_stat_done(&srv->stats.GetVolumeListUsecs, t0);
  } else if (get && n == 2) {
    rc = get_volume(srv, req, rep, seg[1], NULL);
  } else if (get && n == 4 && !strcmp(seg[2], "inode")) {
    rc = get_volume(srv, req, rep, seg[1], seg[3]);
  } else if (get) {
    fail(rep, 400, "bad volume path\n", NULL);
  } else if (post) {
    if (n == 1) rc = post_volume(srv, req, rep);
    else rep->status = 404;
  } else if (put) {
    if (n == 2) rc = put_volume(srv, req, rep, seg[1]);
    else fail(rep, 400, "PUT needs /volume/<name>\n", NULL);
  } else { /* DELETE */
    if (n != 2) {
      fail(rep, 400, "DELETE needs /volume/<name>\n", NULL);
    } else {
      rc = imgr_volume_unserve(srv, seg[1]);
      if (rc == -ENOENT) fail(rep, 404, "unknown volume '%s'\n", seg[1]), rc = 0;
      else if (!rc) rep->status = 204;
      imgr_stat_done(&srv->stats.DeleteVolumeUsecs, t0);
    }
  }
  free(path);
  return rc;
}

/* /stats and /version come from utils, timed here. */
typedef struct timed {
  ut_http_route inner;
  bs_log2 *stat;
} timed;

static timed g_timed[3];

static int timed_handler(const ut_http_request *req, ut_http_reply *rep, void *ctx) {
  timed *t = ctx;
  uint64_t t0;
  imgr_stat_now(&t0);
  int rc = t->inner.handler(req, rep, t->inner.ctx);
  if (t->stat) imgr_stat_done(t->stat, t0);
  return rc;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx) {
  (void)p;
  (void)ctx;
  return size * n;
}

int imgr_http_up_check(const char *addr, uint16_t port) {
  char url[128];
  /* an IPv6 literal needs brackets in a URL */
  bool v6 = strchr(addr, ':') != NULL;
  if ((size_t)snprintf(url, sizeof url, "http://%s%s%s:%u/version", v6 ? "[" : "", addr,
                       v6 ? "]" : "", (unsigned)port) >= sizeof url)
    return -EINVAL;
  CURL *h = curl_easy_init();
  if (!h) return -ENOMEM;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, IMGR_HTTP_UP_CHECK_TIMEOUT_MS);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  int rc = -EIO;
  for (int i = 0; i < IMGR_HTTP_UP_CHECK_MAX_RETRIES && rc; i++) {
    if (i) ut_sleep_ns(IMGR_HTTP_UP_CHECK_DELAY_NS);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK &&
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200)
      rc = 0;
  }
  curl_easy_cleanup(h);
  if (rc)
    log_error("startHTTPServerUpCheckMaxRetries (%d) exceeded", IMGR_HTTP_UP_CHECK_MAX_RETRIES);
  return rc;
}

int imgr_http_start(imgr_server *srv) {
  ut_http_route std[4];
  size_t nstd = ut_http_std_routes(NULL, std);
  ut_http_route routes[5];
  size_t n = 0;
  for (size_t i = 0; i < nstd && i < 3; i++) {
    g_timed[i].inner = std[i];
    g_timed[i].stat = !strcmp(std[i].prefix, "/stats")     ? &srv->stats.GetStatsUsecs
                      : !strcmp(std[i].prefix, "/version") ? &srv->stats.GetVersionUsecs
                                                           : NULL;
    routes[n++] = (ut_http_route){std[i].method, std[i].prefix, timed_handler, &g_timed[i]};
  }
  routes[n++] = (ut_http_route){NULL, "", handle, srv};
  ut_http_config hc = {.addr = srv->cfg->private_ip_addr,
                       .port = srv->cfg->http_server_port,
                       .max_body = srv->cfg->http_max_body};
  int rc = ut_http_server_start(&hc, routes, n, &srv->http);
  if (rc) {
    log_error("HTTP server on %s:%u: %s", srv->cfg->private_ip_addr,
              (unsigned)srv->cfg->http_server_port, strerror(-rc));
    return rc;
  }
  log_info("HTTP server listening on %s:%u", srv->cfg->private_ip_addr,
           (unsigned)ut_http_server_port(srv->http));
  if ((rc = imgr_http_up_check(srv->cfg->private_ip_addr, ut_http_server_port(srv->http)))) {
    ut_http_server_stop(srv->http);
    srv->http = NULL;
  }
  return rc;
}

int imgr_server_start_http(imgr_server *srv) { return imgr_http_start(srv); }

uint16_t imgr_server_http_port(const imgr_server *srv) {
  return srv->http ? ut_http_server_port(srv->http) : 0;
}
