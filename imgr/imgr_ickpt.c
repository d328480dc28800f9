/* ickpt client (imgr.md 4.13): majority read and two-phase majority write
 * of a volume's checkpoint text over libcurl, with the CheckPoint* retry
 * settings. Instances are asked one after another (N is small); each
 * request is bounded by CheckPointTimeout (the original used SwiftTimeout). */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imgr_internal.h"
#include "logger.h"

#define ICKPT_BODY_MAX 1024

struct imgr_ickpt {
  char **urls;
  size_t n;
  char *ca_file;            /* NULL: plain http */
  uint64_t timeout_ns, delay_ns;
  double backoff;
  uint32_t limit;
};

int imgr_ickpt_create(const imgr_config *cfg, imgr_ickpt **out) {
  *out = NULL;
  if (!cfg->check_point_ip_addrs_len) return 0;
  imgr_ickpt *k = calloc(1, sizeof *k);
  if (!k || !(k->urls = calloc(cfg->check_point_ip_addrs_len, sizeof(char *)))) {
    free(k);
    return -ENOMEM;
  }
  bool tls = cfg->check_point_ca_cert_file_path && cfg->check_point_ca_cert_file_path[0];
  for (size_t i = 0; i < cfg->check_point_ip_addrs_len; i++) {
    const char *a = cfg->check_point_ip_addrs[i];
    bool v6 = strchr(a, ':') != NULL;
    if (asprintf(&k->urls[i], "%s://%s%s%s:%u", tls ? "https" : "http", v6 ? "[" : "", a,
                 v6 ? "]" : "", (unsigned)cfg->check_point_port) < 0) {
      k->urls[i] = NULL;
      imgr_ickpt_destroy(k);
      return -ENOMEM;
    }
    k->n++;
  }
  if (tls && !(k->ca_file = strdup(cfg->check_point_ca_cert_file_path))) {
    imgr_ickpt_destroy(k);
    return -ENOMEM;
  }
  k->timeout_ns = cfg->check_point_timeout_ns ? cfg->check_point_timeout_ns : cfg->swift_timeout_ns;
  k->delay_ns = cfg->check_point_retry_delay_ns;
  k->backoff = cfg->check_point_retry_exp_backoff;
  k->limit = cfg->check_point_retry_limit;
  *out = k;
  return 0;
}

void imgr_ickpt_destroy(imgr_ickpt *k) {
  if (!k) return;
  for (size_t i = 0; i < k->n; i++) free(k->urls[i]);
  free(k->urls);
  free(k->ca_file);
  free(k);
}

typedef struct body {
  char buf[ICKPT_BODY_MAX];
  size_t len;
  bool over;
} body;

static size_t on_data(char *p, size_t sz, size_t nm, void *ctx) {
  body *b = ctx;
  size_t n = sz * nm;
  if (b->len + n > sizeof b->buf) {
    b->over = true;
    return 0;
  }
  memcpy(b->buf + b->len, p, n);
  b->len += n;
  return n;
}

typedef struct upload {
  const char *p;
  size_t left;
} upload;

static size_t on_read(char *dst, size_t sz, size_t nm, void *ctx) {
  upload *u = ctx;
  size_t n = sz * nm < u->left ? sz * nm : u->left;
  memcpy(dst, u->p, n);
  u->p += n;
  u->left -= n;
  return n;
}

/* One request: returns the HTTP status (0 on transport failure). */
static long request(imgr_ickpt *k, const char *method, const char *url, const char *object0,
                    const char *token, const char *text, size_t len, body *b) {
  CURL *h = curl_easy_init();
  if (!h) return 0;
  char *hs = NULL, *ht = NULL;
  struct curl_slist *hl = NULL;
  if (asprintf(&hs, "X-Storage-Url: %s", object0) < 0) hs = NULL;
  if (asprintf(&ht, "X-Auth-Token: %s", token ? token : "") < 0) ht = NULL;
  long status = 0;
  if (!hs || !ht) goto out;
  hl = curl_slist_append(hl, hs);
  hl = curl_slist_append(hl, ht);
  hl = curl_slist_append(hl, "Expect:");
  upload u = {text, len};
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(k->timeout_ns / 1000000));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
  if (k->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, k->ca_file);
  if (strcmp(method, "PUT") == 0) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &u);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
  } else if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
  }
  if (curl_easy_perform(h) == CURLE_OK && !b->over)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
out:
  curl_slist_free_all(hl);
  free(hs);
  free(ht);
  curl_easy_cleanup(h);
  return status;
}

/* One read attempt: 0 with the majority body, -EACCES, or -EIO. */
static int read_once(imgr_ickpt *k, const char *object0, const char *token, char *buf,
                     size_t buflen, size_t *len) {
  body *bodies = calloc(k->n, sizeof *bodies);
  bool *ok = calloc(k->n, sizeof *ok);
  int rc = -EIO;
  if (!bodies || !ok) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < k->n; i++) {
    long st = request(k, "GET", k->urls[i], object0, token, NULL, 0, &bodies[i]);
    if (st == 401) {
      rc = -EACCES;
      goto out;
    }
    ok[i] = st >= 200 && st < 300;
  }
  size_t majority = k->n / 2 + 1;
  for (size_t i = 0; i < k->n; i++) {
    if (!ok[i]) continue;
    size_t same = 0;
    for (size_t j = 0; j < k->n; j++)
      if (ok[j] && bodies[j].len == bodies[i].len &&
          memcmp(bodies[j].buf, bodies[i].buf, bodies[i].len) == 0)
        same++;
    if (same >= majority) {
      if (bodies[i].len > buflen) {
        rc = -EINVAL;
        goto out;
      }
      memcpy(buf, bodies[i].buf, bodies[i].len);
      *len = bodies[i].len;
      rc = 0;
      goto out;
    }
  }
  log_warn("ickpt read of %s: no majority was reached", object0);
out:
  free(bodies);
  free(ok);
  return rc;
}

static int write_once(imgr_ickpt *k, const char *object0, const char *token, const char *text,
                      size_t len) {
  uint8_t r[8];
  char txn[17];
  int rc = ut_random_bytes(r, sizeof r);
  if (rc) return rc;
  for (int i = 0; i < 8; i++) snprintf(txn + 2 * i, 3, "%02X", r[i]);
  bool *put_ok = calloc(k->n, sizeof *put_ok);
  if (!put_ok) return -ENOMEM;
  size_t majority = k->n / 2 + 1, nput = 0, npost = 0;
  rc = -EIO;
  for (size_t i = 0; i < k->n; i++) {
    char *u;
    if (asprintf(&u, "%s/%s", k->urls[i], txn) < 0) goto out;
    body b = {0};
    long st = request(k, "PUT", u, object0, token, text, len, &b);
    free(u);
    if (st == 401) {
      rc = -EACCES;
      goto out;
    }
    if (st >= 200 && st < 300) put_ok[i] = true, nput++;
  }
  if (nput < majority) {
    log_warn("ickpt write of %s: no majority was reached during PUT phase", object0);
    goto out;
  }
  for (size_t i = 0; i < k->n; i++) {
    if (!put_ok[i]) continue;
    char *u;
    if (asprintf(&u, "%s/%s", k->urls[i], txn) < 0) goto out;
    body b = {0};
    long st = request(k, "POST", u, object0, token, NULL, 0, &b);
    free(u);
    if (st == 401) {
      rc = -EACCES;
      goto out;
    }
    if (st >= 200 && st < 300) npost++;
  }
  if (npost >= majority) rc = 0;
  else log_warn("ickpt write of %s: no majority was reached during POST phase", object0);
out:
  free(put_ok);
  return rc;
}

/* The retry shape of the Swift loop; a refused token is final. */
#define RETRY(call)                                              \
  uint64_t delay = k->delay_ns;                                  \
  int rc = -EIO;                                                 \
  for (uint32_t attempt = 0; attempt <= k->limit; attempt++) {   \
    rc = (call);                                                 \
    if (rc != -EIO) break;                                       \
    if (attempt < k->limit) {                                    \
      ut_sleep_ns(delay);                                        \
      delay = (uint64_t)((double)delay * k->backoff);            \
    }                                                            \
  }                                                              \
  return rc

int imgr_ickpt_read(imgr_ickpt *k, const char *object0, const char *token, char *buf,
                    size_t buflen, size_t *len) {
  RETRY(read_once(k, object0, token, buf, buflen, len));
}

int imgr_ickpt_write(imgr_ickpt *k, const char *object0, const char *token, const char *text,
                     size_t len) {
  RETRY(write_once(k, object0, token, text, len));
}
