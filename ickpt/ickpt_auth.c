/*
 * Authorization against Swift (A.6.3): GET the X-Storage-Url with the
 * caller's X-Auth-Token; 2xx or 404 means the token is good for that
 * object. libcurl, a bounded pool of easy handles (each keeps its
 * connection alive), a timeout on every transfer, and the retry loop of
 * the Swift* config keys. The optional cache remembers (token, key) pairs
 * that Swift accepted, for AuthCacheTTL, at most AuthCacheMaxEntries.
 *
 * Locks: pool_mu and cache_mu guard only their arrays and are never held
 * across a transfer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/sha.h>

#include "ickpt_service.h"

typedef struct {
  uint8_t hash[SHA256_DIGEST_LENGTH]; /* of token NUL canonical */
  uint64_t expiry_ns;
} cache_entry;

struct ickpt_auth {
  ickpt_auth_config cfg;
  pthread_mutex_t pool_mu;
  CURL **idle;
  size_t nidle;
  pthread_mutex_t cache_mu;
  cache_entry *cache;
  size_t ncache;
};

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int ickpt_auth_create(const ickpt_auth_config *cfg, ickpt_auth **out) {
  *out = NULL;
  ickpt_auth *a = calloc(1, sizeof *a);
  if (a == NULL) {
    return -ENOMEM;
  }
  a->cfg = *cfg;
  if (a->cfg.pool_size == 0) {
    a->cfg.pool_size = 1;
  }
  a->idle = calloc(a->cfg.pool_size, sizeof *a->idle);
  a->cache = calloc(a->cfg.cache_max ? a->cfg.cache_max : 1, sizeof *a->cache);
  if (a->idle == NULL || a->cache == NULL) {
    free(a->idle);
    free(a->cache);
    free(a);
    return -ENOMEM;
  }
  pthread_mutex_init(&a->pool_mu, NULL);
  pthread_mutex_init(&a->cache_mu, NULL);
  *out = a;
  return 0;
}

void ickpt_auth_destroy(ickpt_auth *a) {
  if (a == NULL) {
    return;
  }
  for (size_t i = 0; i < a->nidle; i++) {
    curl_easy_cleanup(a->idle[i]);
  }
  pthread_mutex_destroy(&a->pool_mu);
  pthread_mutex_destroy(&a->cache_mu);
  free(a->idle);
  free(a->cache);
  free(a);
}

/* SHA-256 of token, NUL, canonical: the pair without keeping the token. */
static int cache_hash(const char *token, const char *canonical,
                      uint8_t out[SHA256_DIGEST_LENGTH]) {
  size_t tl = strlen(token), cl = strlen(canonical);
  unsigned char *buf = malloc(tl + 1 + cl);
  if (buf == NULL) {
    return -ENOMEM;
  }
  memcpy(buf, token, tl + 1);
  memcpy(buf + tl + 1, canonical, cl);
  SHA256(buf, tl + 1 + cl, out);
  free(buf);
  return 0;
}

static bool cache_lookup(ickpt_auth *a, const uint8_t h[SHA256_DIGEST_LENGTH]) {
  if (a->cfg.cache_ttl_ns == 0 || a->cfg.cache_max == 0) {
    return false;
  }
  uint64_t now = mono_ns();
  bool hit = false;
  pthread_mutex_lock(&a->cache_mu);
  for (size_t i = 0; i < a->ncache; i++) {
    if (a->cache[i].expiry_ns > now && memcmp(a->cache[i].hash, h, SHA256_DIGEST_LENGTH) == 0) {
      hit = true;
      break;
    }
  }
  pthread_mutex_unlock(&a->cache_mu);
  return hit;
}

/* Insert, reusing an entry of the same pair, else an expired one, else the
 * one that expires first. */
static void cache_insert(ickpt_auth *a, const uint8_t h[SHA256_DIGEST_LENGTH]) {
  if (a->cfg.cache_ttl_ns == 0 || a->cfg.cache_max == 0) {
    return;
  }
  uint64_t now = mono_ns();
  pthread_mutex_lock(&a->cache_mu);
  size_t slot = a->ncache;
  for (size_t i = 0; i < a->ncache; i++) {
    if (memcmp(a->cache[i].hash, h, SHA256_DIGEST_LENGTH) == 0 || a->cache[i].expiry_ns <= now) {
      slot = i;
      break;
    }
  }
  if (slot == a->ncache) {
    if (a->ncache < a->cfg.cache_max) {
      a->ncache++;
    } else {
      slot = 0;
      for (size_t i = 1; i < a->ncache; i++) {
        if (a->cache[i].expiry_ns < a->cache[slot].expiry_ns) {
          slot = i;
        }
      }
    }
  }
  memcpy(a->cache[slot].hash, h, SHA256_DIGEST_LENGTH);
  a->cache[slot].expiry_ns = now + a->cfg.cache_ttl_ns;
  pthread_mutex_unlock(&a->cache_mu);
}

size_t ickpt_auth_cache_count(ickpt_auth *a) {
  pthread_mutex_lock(&a->cache_mu);
  size_t n = a->ncache;
  pthread_mutex_unlock(&a->cache_mu);
  return n;
}

static CURL *handle_get(ickpt_auth *a) {
  CURL *h = NULL;
  pthread_mutex_lock(&a->pool_mu);
  if (a->nidle > 0) {
    h = a->idle[--a->nidle];
  }
  pthread_mutex_unlock(&a->pool_mu);
  return h ? h : curl_easy_init();
}

/* Keep at most pool_size idle handles (and so idle connections). */
static void handle_put(ickpt_auth *a, CURL *h) {
  pthread_mutex_lock(&a->pool_mu);
  if (a->nidle < a->cfg.pool_size) {
    a->idle[a->nidle++] = h;
    h = NULL;
  }
  pthread_mutex_unlock(&a->pool_mu);
  if (h != NULL) {
    curl_easy_cleanup(h);
  }
}

typedef struct {
  char *buf;
  size_t len, cap;
  bool too_large;
} body_sink;

static size_t on_body(char *p, size_t size, size_t n, void *ctx) {
  body_sink *b = ctx;
  size_t len = size * n;
  if (len > b->cap - b->len) {
    b->too_large = true;
    return 0; /* aborts the transfer: the value cannot be a checkpoint */
  }
  memcpy(b->buf + b->len, p, len);
  b->len += len;
  return len;
}

/* One GET; *status is 0 after a transport error. */
static CURLcode swift_get(ickpt_auth *a, const char *url, const char *token, body_sink *body,
                          long *status) {
  CURL *h = handle_get(a);
  if (h == NULL) {
    *status = 0;
    return CURLE_OUT_OF_MEMORY;
  }
  char hdr[8192];
  snprintf(hdr, sizeof hdr, "X-Auth-Token: %s", token);
  struct curl_slist *headers = curl_slist_append(NULL, hdr);
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "ickpt");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(a->cfg.timeout_ns / 1000000));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(a->cfg.timeout_ns / 1000000));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
  CURLcode rc = headers ? curl_easy_perform(h) : CURLE_OUT_OF_MEMORY;
  *status = 0;
  if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && body->too_large)) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  }
  curl_slist_free_all(headers);
  handle_put(a, h);
  return rc;
}

int ickpt_auth_check(ickpt_auth *a, const char *url, const char *canonical, const char *token,
                     bool want_value, ickpt_auth_result *res) {
  memset(res, 0, sizeof *res);
  if (token == NULL || token[0] == '\0') {
    snprintf(res->reason, sizeof res->reason, "missing X-Auth-Token");
    return -EACCES;
  }
  if (strlen(token) > 4096 || strpbrk(token, "\r\n") != NULL) {
    snprintf(res->reason, sizeof res->reason, "malformed X-Auth-Token");
    return -EACCES;
  }
  uint8_t h[SHA256_DIGEST_LENGTH];
  if (cache_hash(token, canonical, h) != 0) {
    return -ENOMEM;
  }
  if (!want_value && cache_lookup(a, h)) {
    res->cached = true;
    return 0;
  }

  body_sink body = {.cap = a->cfg.max_body};
  body.buf = malloc(body.cap + 1);
  if (body.buf == NULL) {
    return -ENOMEM;
  }
  uint64_t delay = a->cfg.retry_delay_ns;
  long status = 0;
  CURLcode crc = CURLE_OK;
  for (uint32_t attempt = 0;; attempt++) {
    body.len = 0;
    body.too_large = false;
    crc = swift_get(a, url, token, &body, &status);
    res->attempts = attempt + 1;
    bool retry = status == 0 || status >= 500;
    if (!retry || attempt >= a->cfg.retry_limit) {
      break;
    }
    struct timespec ts = {(time_t)(delay / 1000000000ull), (long)(delay % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    delay = (uint64_t)((double)delay * a->cfg.retry_backoff);
  }
  res->swift_status = (int)status;
  int rc;
  if (status >= 200 && status <= 299) {
    rc = 0;
    if (want_value && !body.too_large) {
      body.buf[body.len] = '\0';
      res->value = body.buf;
      res->value_len = body.len;
      body.buf = NULL;
    }
    res->value_too_large = body.too_large;
  } else if (status == 404) {
    rc = 0;
  } else if (status == 401 || status == 403) {
    snprintf(res->reason, sizeof res->reason, "Swift refused the token (%ld)", status);
    rc = -EACCES;
  } else if (status == 0) {
    snprintf(res->reason, sizeof res->reason, "Swift unreachable: %s", curl_easy_strerror(crc));
    rc = -EAGAIN;
  } else {
    snprintf(res->reason, sizeof res->reason, "Swift answered %ld", status);
    rc = -EAGAIN;
  }
  free(body.buf);
  if (rc == 0) {
    cache_insert(a, h);
  }
  return rc;
}
