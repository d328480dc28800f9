/*
 * Component test of swiftclient (and iswift's real-Swift answers).
 *
 *   swift_component iswift         client suite against in-process iswift
 *                                  (original and EmulateRealSwift modes), the
 *                                  bad-request table, fault injection
 *   swift_component real AUTH_URL  client suite and bad-request table against
 *                                  a real Swift (tempauth test:tester/testing)
 *
 * Prints one line per check; exits 1 at the first failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bucketstats.h"
#include "iswift.h"
#include "swift_delimiter_vectors.h"
#include "swiftclient.h"

static const char *target = "?";

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL [%s] ", target);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

#define CHECK(cond, ...) \
  do { if (!(cond)) fail(__VA_ARGS__); } while (0)
#define CHECK_RC(expr, want)                                                          \
  do {                                                                                \
    int rc_ = (expr);                                                                 \
    if (rc_ != (want)) fail("%s:%d %s = %d (%s), want %d", __FILE__, __LINE__, #expr, \
                            rc_, strerror(rc_ < 0 ? -rc_ : rc_), (want));             \
  } while (0)

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fill(unsigned char *b, size_t n, unsigned seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b[i] = (unsigned char)x;
  }
}

/* Defaults plus tempauth's test:tester with the given key and retries. */
static void auth_cfg(swift_config *cfg, const char *auth_url, const char *key,
                     uint32_t retries) {
  swift_config_defaults(cfg);
  cfg->auth_url = auth_url;
  cfg->auth_user = "test:tester";
  cfg->auth_key = key;
  cfg->retry_limit = retries;
}

static swift_conn *connect_auth(const char *auth_url, uint32_t retries, uint64_t delay_ns) {
  swift_config cfg;
  auth_cfg(&cfg, auth_url, "testing", retries);
  cfg.retry_delay_ns = delay_ns;
  cfg.timeout_ns = 30ull * 1000000000ull;
  cfg.connection_pool_size = 4;
  swift_conn *c = NULL;
  CHECK_RC(swift_conn_create(&cfg, &c), 0);
  return c;
}

/* ---- the client suite ---------------------------------------------------- */

typedef struct {
  char names[64][32];
  int n;
  int64_t bytes0;
} names;

static int collect(void *ctx, const swift_list_entry *e) {
  names *nm = ctx;
  if (nm->n == 0) nm->bytes0 = e->bytes;
  if (nm->n < 64) snprintf(nm->names[nm->n], sizeof nm->names[0], "%s", e->name);
  nm->n++;
  return 0;
}

typedef struct {
  unsigned char *buf;
  size_t len, cap;
} sinkbuf;

static int sink(void *ctx, const void *d, size_t n) {
  sinkbuf *s = ctx;
  if (n > s->cap - s->len) return -EOVERFLOW;
  memcpy(s->buf + s->len, d, n);
  s->len += n;
  return 0;
}

typedef struct {
  const unsigned char *data;
  size_t len, pos, chunk;
  int rewinds;
} source;

static long src_read(void *ctx, void *buf, size_t cap) {
  source *s = ctx;
  size_t n = s->len - s->pos;
  if (n > cap) n = cap;
  if (n > s->chunk) n = s->chunk;
  memcpy(buf, s->data + s->pos, n);
  s->pos += n;
  return (long)n;
}

static int src_rewind(void *ctx) {
  source *s = ctx;
  s->pos = 0;
  s->rewinds++;
  return 0;
}

typedef struct {
  swift_conn *c;
  const char *container;
  int id;
  int err;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  unsigned char data[20000], back[20000];
  char name[32];
  for (int i = 0; i < 5 && !w->err; i++) {
    snprintf(name, sizeof name, "par/%d/%d", w->id, i);
    fill(data, sizeof data, (unsigned)(w->id * 100 + i));
    size_t got;
    if ((w->err = swift_object_put(w->c, w->container, name, data, sizeof data, NULL, 0)))
      break;
    if ((w->err = swift_object_get(w->c, w->container, name, (swift_range){0}, back,
                                   sizeof back, &got, NULL)))
      break;
    if (got != sizeof data || memcmp(back, data, got)) w->err = -EBADMSG;
    if (!w->err) w->err = swift_object_delete(w->c, w->container, name);
  }
  return NULL;
}

static void client_suite(swift_conn *c, const char *container, bool is_iswift) {
  if (is_iswift) CHECK_RC(swift_account_put(c, NULL, 0), 0);
  CHECK_RC(swift_container_put(c, container, NULL, 0), 0);
  CHECK_RC(swift_container_put(c, container, NULL, 0), 0); /* 202 */
  swift_hdrs *h = NULL;
  CHECK_RC(swift_container_head(c, container, &h), 0);
  swift_hdrs_free(h);
  CHECK_RC(swift_container_head(c, "no-such-container-xyz", NULL), -ENOENT);

  /* small object with metadata */
  swift_header meta[] = {{"X-Object-Meta-Color", "red"}};
  CHECK_RC(swift_object_put(c, container, "hello", "hello", 5, meta, 1), 0);
  uint64_t size = 0;
  CHECK_RC(swift_object_head(c, container, "hello", &size, &h), 0);
  CHECK(size == 5, "head size %" PRIu64, size);
  CHECK(swift_hdrs_get(h, "x-object-meta-color") &&
            strcmp(swift_hdrs_get(h, "X-Object-Meta-Color"), "red") == 0,
        "metadata missing");
  swift_hdrs_free(h);
  char buf[64];
  size_t got;
  CHECK_RC(swift_object_get(c, container, "hello", (swift_range){0}, buf, sizeof buf, &got,
                            NULL), 0);
  CHECK(got == 5 && !memcmp(buf, "hello", 5), "whole GET");
  CHECK_RC(swift_object_get(c, container, "hello", (swift_range){0}, buf, 3, &got, NULL),
           -EOVERFLOW);
  CHECK_RC(swift_object_get(c, container, "hello", (swift_range){SWIFT_RANGE_SPAN, 1, 3}, buf,
                            sizeof buf, &got, NULL), 0);
  CHECK(got == 3 && !memcmp(buf, "ell", 3), "span GET");
  CHECK_RC(swift_object_get(c, container, "hello", (swift_range){SWIFT_RANGE_SPAN, 3, 100}, buf,
                            sizeof buf, &got, NULL), 0);
  CHECK(got == 2 && !memcmp(buf, "lo", 2), "clamped span GET");
  CHECK_RC(swift_object_get(c, container, "hello", (swift_range){SWIFT_RANGE_SPAN, 10, 5}, buf,
                            sizeof buf, &got, NULL), -ERANGE);
  CHECK_RC(swift_object_get(c, container, "hello", (swift_range){SWIFT_RANGE_TAIL, 0, 2}, buf,
                            sizeof buf, &got, NULL), 0);
  CHECK(got == 2 && !memcmp(buf, "lo", 2), "tail GET");
  CHECK_RC(swift_object_get(c, container, "hello", (swift_range){SWIFT_RANGE_TAIL, 0, 100}, buf,
                            sizeof buf, &got, NULL), 0);
  CHECK(got == 5 && !memcmp(buf, "hello", 5), "long tail GET");
  CHECK_RC(swift_object_get(c, container, "missing", (swift_range){0}, buf, sizeof buf, &got,
                            NULL), -ENOENT);
  printf("ok [%s] small object, metadata, ranges\n", target);

  /* names that need percent-encoding survive PUT, GET, listing and DELETE */
  const char *odd = "d i r/\xc3\xbc?x=1#frag%20+&;,";
  CHECK_RC(swift_object_put(c, container, odd, "odd", 3, NULL, 0), 0);
  CHECK_RC(swift_object_get(c, container, odd, (swift_range){0}, buf, sizeof buf, &got, NULL),
           0);
  CHECK(got == 3 && !memcmp(buf, "odd", 3), "odd name GET");
  names on = {0};
  swift_list_opts op = {.prefix = "d i r/"};
  CHECK_RC(swift_list(c, container, &op, collect, &on, NULL), 0);
  CHECK(on.n == 1 && !strcmp(on.names[0], odd), "odd name listing (%d)", on.n);
  CHECK_RC(swift_object_delete(c, container, odd), 0);
  CHECK_RC(swift_object_put(c, "a/b", "o", "x", 1, NULL, 0), -EINVAL);
  CHECK_RC(swift_object_put(c, container, "", "x", 1, NULL, 0), -EINVAL);
  printf("ok [%s] names with spaces, UTF-8 and URL delimiters\n", target);

  /* 1 MiB object: buffer and stream reads */
  size_t big = 1u << 20;
  unsigned char *data = malloc(big), *back = malloc(big);
  fill(data, big, 7);
  CHECK_RC(swift_object_put(c, container, "dir/big object", data, big, NULL, 0), 0);
  CHECK_RC(swift_object_get(c, container, "dir/big object", (swift_range){0}, back, big, &got,
                            NULL), 0);
  CHECK(got == big && !memcmp(back, data, big), "1 MiB GET");
  sinkbuf sb = {back, 0, big};
  memset(back, 0, big);
  CHECK_RC(swift_object_get_stream(c, container, "dir/big object", (swift_range){0}, sink, &sb),
           0);
  CHECK(sb.len == big && !memcmp(back, data, big), "1 MiB stream");
  sb.len = 0;
  CHECK_RC(swift_object_get_stream(c, container, "dir/big object",
                                   (swift_range){SWIFT_RANGE_SPAN, 1000, 300000}, sink, &sb), 0);
  CHECK(sb.len == 300000 && !memcmp(back, data + 1000, 300000), "range stream");

  /* chunked PUT of unknown length */
  source src = {data, 200000, 0, 7000, 0};
  CHECK_RC(swift_object_put_stream(c, container, "chunked", src_read, src_rewind, &src, NULL, 0),
           0);
  CHECK_RC(swift_object_get(c, container, "chunked", (swift_range){0}, back, big, &got, NULL), 0);
  CHECK(got == 200000 && !memcmp(back, data, got), "chunked PUT round trip");
  printf("ok [%s] 1 MiB object, streams, chunked PUT\n", target);

  /* listings: 25 names paged by 10, prefix, marker, JSON, max */
  for (int i = 0; i < 25; i++) {
    char n[32];
    snprintf(n, sizeof n, "l/%03d", i);
    CHECK_RC(swift_object_put(c, container, n, "x", 1, NULL, 0), 0);
  }
  names nm = {0};
  swift_list_opts lo = {.prefix = "l/", .page_limit = 10};
  CHECK_RC(swift_list(c, container, &lo, collect, &nm, NULL), 0);
  CHECK(nm.n == 25 && !strcmp(nm.names[0], "l/000") && !strcmp(nm.names[24], "l/024"),
        "prefix listing: %d", nm.n);
  memset(&nm, 0, sizeof nm);
  lo.json = true;
  lo.marker = "l/009";
  CHECK_RC(swift_list(c, container, &lo, collect, &nm, NULL), 0);
  CHECK(nm.n == 15 && !strcmp(nm.names[0], "l/010"), "json marker listing %d", nm.n);
  CHECK(nm.bytes0 == (is_iswift ? nm.bytes0 : 1), "json bytes");
  memset(&nm, 0, sizeof nm);
  swift_list_opts lmax = {.max_entries = 4};
  CHECK_RC(swift_list(c, container, &lmax, collect, &nm, NULL), 0);
  CHECK(nm.n == 4 && !strcmp(nm.names[0], "chunked"), "max listing");
  memset(&nm, 0, sizeof nm);
  swift_list_opts lnone = {.prefix = "zzz"};
  CHECK_RC(swift_list(c, container, &lnone, collect, &nm, NULL), 0);
  CHECK(nm.n == 0, "empty listing");
  printf("ok [%s] listings\n", target);

  /* metadata POST, then concurrency through a pool of 4 */
  swift_header blue[] = {{"X-Object-Meta-Color", "blue"}};
  CHECK_RC(swift_object_post(c, container, "hello", blue, 1), 0);
  CHECK_RC(swift_object_head(c, container, "hello", NULL, &h), 0);
  CHECK(!strcmp(swift_hdrs_get(h, "X-Object-Meta-Color"), "blue"), "post metadata");
  swift_hdrs_free(h);
  worker w[8];
  pthread_t t[8];
  for (int i = 0; i < 8; i++) {
    w[i] = (worker){c, container, i, 0};
    pthread_create(&t[i], NULL, worker_main, &w[i]);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    CHECK_RC(w[i].err, 0);
  }
  printf("ok [%s] POST metadata, 8 threads over a pool of 4\n", target);

  /* cleanup and the delete errors */
  CHECK_RC(swift_container_delete(c, container), -ENOTEMPTY);
  CHECK_RC(swift_object_delete(c, container, "hello"), 0);
  CHECK_RC(swift_object_delete(c, container, "hello"), -ENOENT);
  CHECK_RC(swift_object_delete(c, container, "dir/big object"), 0);
  CHECK_RC(swift_object_delete(c, container, "chunked"), 0);
  for (int i = 0; i < 25; i++) {
    char n[32];
    snprintf(n, sizeof n, "l/%03d", i);
    CHECK_RC(swift_object_delete(c, container, n), 0);
  }
  CHECK_RC(swift_container_delete(c, container), 0);
  CHECK_RC(swift_container_head(c, container, NULL), -ENOENT);
  printf("ok [%s] deletes\n", target);
  free(data);
  free(back);
}

/* ---- bad requests: the status codes of real Swift ------------------------ */

typedef struct {
  char *buf; /* NULL: the body is discarded */
  size_t len, cap;
} rawbody;

static size_t raw_write(char *d, size_t sz, size_t n, void *u) {
  rawbody *b = u;
  size_t k = sz * n;
  if (b->buf) {
    size_t room = b->cap - 1 - b->len, m = k < room ? k : room;
    memcpy(b->buf + b->len, d, m);
    b->len += m;
    b->buf[b->len] = '\0';
  }
  return k;
}

/* One request outside swiftclient; out (may be NULL) receives the body. */
static long raw(const char *storage_url, const char *token, const char *method,
                const char *path, const char *hdr, const char *body, bool no_length,
                rawbody *out) {
  CURL *h = curl_easy_init();
  char url[4096], th[512];
  snprintf(url, sizeof url, "%s%s", storage_url, path);
  struct curl_slist *l = NULL;
  if (token) {
    snprintf(th, sizeof th, "X-Auth-Token: %s", token);
    l = curl_slist_append(l, th);
  }
  if (hdr) l = curl_slist_append(l, hdr);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
  rawbody discard = {0};
  if (out && out->buf) {
    out->len = 0;
    out->buf[0] = '\0';
  }
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, raw_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, out ? out : &discard);
  if (body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  } else if (no_length) {
    l = curl_slist_append(l, "Content-Length:");
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
  long st = -1;
  if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
  curl_slist_free_all(l);
  curl_easy_cleanup(h);
  return st;
}

/* Expected statuses observed on Swift 2.30 (swift-aio.sh); iswift in
 * EmulateRealSwift mode must give the same. */
static void bad_requests(swift_conn *c, const char *container) {
  char su[1024], tok[256], longobj[1100], longcont[300], p[2048];
  CHECK_RC(swift_storage_url(c, su, sizeof su), 0);
  CHECK_RC(swift_auth_token(c, tok, sizeof tok), 0);
  CHECK_RC(swift_container_put(c, container, NULL, 0), 0);
  CHECK_RC(swift_object_put(c, container, "o1", "hello", 5, NULL, 0), 0);
  memset(longobj, 'b', 1025);
  longobj[1025] = 0;
  memset(longcont, 'a', 257);
  longcont[257] = 0;
  char o1[300];
  snprintf(o1, sizeof o1, "/%s/o1", container);
  struct {
    const char *what, *method, *path, *hdr, *body;
    bool token, no_length;
    long want;
  } t[] = {
      {"range past end", "GET", o1, "Range: bytes=10-20", NULL, true, false, 416},
      {"suffix -0", "GET", o1, "Range: bytes=-0", NULL, true, false, 416},
      {"first > last", "GET", o1, "Range: bytes=3-1", NULL, true, false, 200},
      {"not bytes=", "GET", o1, "Range: foo=1-2", NULL, true, false, 200},
      {"garbage range", "GET", o1, "Range: bytes=abc", NULL, true, false, 200},
      {"three ranges", "GET", o1, "Range: bytes=0-1,2-2,3-3", NULL, true, false, 206},
      {"long suffix", "GET", o1, "Range: bytes=-10", NULL, true, false, 206},
      {"unknown method", "PATCH", o1, NULL, NULL, true, false, 405},
      {"unknown method, no token", "FOO", o1, NULL, NULL, false, false, 405},
      {"missing token", "GET", o1, NULL, NULL, false, false, 401},
      {"bad token", "GET", o1, "X-Auth-Token: AUTH_tkbad", NULL, false, false, 401},
      {"limit too big", "GET", "", NULL, NULL, true, false, 412},
      {"marker not UTF-8", "GET", "", NULL, NULL, true, false, 400},
      {"prefix not UTF-8", "GET", "", NULL, NULL, true, false, 400},
      {"limit not a number", "GET", "", NULL, NULL, true, false, 200},
      {"object name not UTF-8", "GET", "", NULL, NULL, true, false, 412},
      {"object name too long", "PUT", "", NULL, "x", true, false, 400},
      {"container name too long", "PUT", "", NULL, NULL, true, true, 400},
      {"PUT without length", "PUT", "", NULL, NULL, true, true, 411},
      {"PUT wrong ETag", "PUT", "", "ETag: 00000000000000000000000000000000", "abc", true,
       false, 422},
      {"PUT into missing container", "PUT", "/no-such-container-xyz/o", NULL, "x", true, false,
       404},
  };
  char paths[8][2048];
  snprintf(paths[0], sizeof paths[0], "/%s?limit=10001", container);
  snprintf(paths[1], sizeof paths[1], "/%s?marker=%%ff", container);
  snprintf(paths[2], sizeof paths[2], "/%s?prefix=%%ff", container);
  snprintf(paths[3], sizeof paths[3], "/%s?limit=abc", container);
  snprintf(paths[4], sizeof paths[4], "/%s/%%ff", container);
  snprintf(paths[5], sizeof paths[5], "/%s/%s", container, longobj);
  snprintf(paths[6], sizeof paths[6], "/%s", longcont);
  snprintf(paths[7], sizeof paths[7], "/%s/nolength", container);
  const char **fillp[] = {&t[11].path, &t[12].path, &t[13].path, &t[14].path, &t[15].path,
                          &t[16].path, &t[17].path, &t[18].path};
  for (int i = 0; i < 8; i++) *fillp[i] = paths[i];
  snprintf(p, sizeof p, "/%s/etag", container);
  t[19].path = p;
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    long st = raw(su, t[i].token ? tok : NULL, t[i].method, t[i].path, t[i].hdr, t[i].body,
                  t[i].no_length, NULL);
    CHECK(st == t[i].want, "bad request '%s': status %ld, want %ld", t[i].what, st, t[i].want);
  }
  CHECK_RC(swift_object_delete(c, container, "o1"), 0);
  CHECK_RC(swift_container_delete(c, container), 0);
  printf("ok [%s] %zu bad requests answered like real Swift\n", target,
         sizeof t / sizeof *t);
}

/* ---- delimiter= ------------------------------------------------------------ */

typedef struct {
  char text[1024];
  size_t len;
} joined;

/* "name " per entry, "name* " for a subdir. */
static int join(void *ctx, const swift_list_entry *e) {
  joined *j = ctx;
  int n = snprintf(j->text + j->len, sizeof j->text - j->len, "%s%s ", e->name,
                   e->subdir ? "*" : "");
  if (n < 0 || (size_t)n >= sizeof j->text - j->len) return -E2BIG;
  CHECK(!e->subdir || (e->bytes == -1 && !e->hash), "subdir %s has object fields", e->name);
  j->len += (size_t)n;
  return 0;
}

/* swift_list with a delimiter gives the same entries from every server: real
 * Swift and EmulateRealSwift roll names up, the original iswift ignores
 * delimiter= and the client rolls them up. server_rolls: the server
 * implements delimiter= (checked on raw replies too, with the answers of
 * Swift 2.30). */
static void delimiter_suite(swift_conn *c, const char *container, bool server_rolls) {
  CHECK_RC(swift_container_put(c, container, NULL, 0), 0);
  for (size_t i = 0; i < N_DELIM_NAMES; i++)
    CHECK_RC(swift_object_put(c, container, delim_names[i], "x", 1, NULL, 0), 0);
  static const char all[] = "a a/* ab b/* c c/* d/* x-y x-y.z ";
  static const struct {
    swift_list_opts o;
    const char *want;
  } t[] = {
      {{.delimiter = "/"}, all},
      {{.delimiter = "/", .json = true}, all},
      {{.delimiter = "/", .page_limit = 2}, all}, /* pages ending on a subdir */
      {{.delimiter = "/", .page_limit = 3, .json = true}, all},
      {{.delimiter = "/", .prefix = "a/"}, "a/b a/c/* a/e "},
      {{.delimiter = "/", .prefix = "a/", .json = true}, "a/b a/c/* a/e "},
      {{.delimiter = "/", .prefix = "a"}, "a a/* ab "},
      {{.delimiter = "/", .prefix = "c/"}, "c/ "},
      {{.delimiter = "/", .prefix = "d/"}, "d//* "},
      {{.delimiter = "/", .marker = "a"}, "a/* ab b/* c c/* d/* x-y x-y.z "},
      {{.delimiter = "/", .marker = "a/"}, "ab b/* c c/* d/* x-y x-y.z "},
      {{.delimiter = "/", .marker = "a/c"}, "a/* ab b/* c c/* d/* x-y x-y.z "},
      {{.delimiter = "/", .max_entries = 3}, "a a/* ab "},
      {{.delimiter = "-"}, "a a/b a/c/d a/e ab b/x b/y c c/ d//e x-* "},
      {{.delimiter = "//"}, "a a/b a/c/d a/e ab b/x b/y c c/ d//* x-y x-y.z "},
      {{.delimiter = ""}, "a a/b a/c/d a/e ab b/x b/y c c/ d//e x-y x-y.z "},
  };
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
    joined j = {0};
    CHECK_RC(swift_list(c, container, &t[i].o, join, &j, NULL), 0);
    CHECK(!strcmp(j.text, t[i].want), "delimiter listing %zu: '%s', want '%s'", i, j.text,
          t[i].want);
  }
  printf("ok [%s] %zu delimiter listings through swiftclient\n", target, sizeof t / sizeof *t);

  char su[1024], tok[256], path[512], buf[4096];
  CHECK_RC(swift_storage_url(c, su, sizeof su), 0);
  CHECK_RC(swift_auth_token(c, tok, sizeof tok), 0);
  rawbody rb = {buf, 0, sizeof buf};
  size_t checked = 0;
  for (size_t i = 0; server_rolls && i < N_DELIM_VECTORS; i++, checked++) {
    const char *q = delim_vectors[i].query, *want = delim_vectors[i].body;
    snprintf(path, sizeof path, "/%s?%s", container, q);
    long st = raw(su, tok, "GET", path, NULL, NULL, false, &rb);
    CHECK(st == delim_vectors[i].status, "GET ?%s: status %ld, want %ld", q, st,
          delim_vectors[i].status);
    CHECK(!want || !strcmp(buf, want), "GET ?%s: body '%s', want '%s'", q, buf, want);
  }
  /* JSON: the rolled-up name as {"subdir": ...} (spacing differs: compare
   * without blanks) and no member of it */
  snprintf(path, sizeof path, "/%s?delimiter=/&prefix=a/&format=json", container);
  long st = raw(su, tok, "GET", path, NULL, NULL, false, &rb);
  size_t k = 0;
  for (size_t i = 0; i < rb.len; i++)
    if (buf[i] != ' ') buf[k++] = buf[i];
  buf[k] = '\0';
  if (server_rolls)
    CHECK(st == 200 && strstr(buf, "{\"subdir\":\"a/c/\"}") && !strstr(buf, "a/c/d") &&
              strstr(buf, "\"name\":\"a/b\""), "JSON delimiter listing: %ld %s", st, buf);
  else /* the original: parameters other than marker ignored, plain text */
    CHECK(st == 200 && !strcmp(buf, DELIM_ALL_NAMES), "original iswift listing: %ld %s", st,
          buf);
  if (server_rolls)
    printf("ok [%s] %zu raw delimiter replies as Swift 2.30 gives them\n", target, checked);
  else
    printf("ok [%s] raw listing: delimiter= ignored, as by the original\n", target);
  for (size_t i = 0; i < N_DELIM_NAMES; i++)
    CHECK_RC(swift_object_delete(c, container, delim_names[i]), 0);
  CHECK_RC(swift_container_delete(c, container), 0);
}

/* ---- PUT into a missing container; a real 403 ----------------------------- */

/* Both servers' "container missing" (404 real, 403 original iswift) is
 * -ENOENT; a 403 that means "forbidden" stays -EPERM. forbidden_url: a
 * storage URL the token may not write to (another account on real Swift,
 * the empty account that the original iswift refuses), or NULL. */
static void missing_container_put(swift_conn *c, const char *forbidden_url) {
  CHECK_RC(swift_object_put(c, "no-such-container-xyz", "o", "x", 1, NULL, 0), -ENOENT);
  unsigned char d[100];
  fill(d, sizeof d, 3);
  source src = {d, sizeof d, 0, 40, 0};
  CHECK_RC(swift_object_put_stream(c, "no-such-container-xyz", "o", src_read, src_rewind,
                                   &src, NULL, 0), -ENOENT);
  if (forbidden_url) {
    char tok[256];
    CHECK_RC(swift_auth_token(c, tok, sizeof tok), 0);
    swift_config cfg;
    swift_config_defaults(&cfg);
    cfg.storage_url = forbidden_url;
    cfg.auth_token = tok;
    cfg.retry_limit = 0;
    swift_conn *f = NULL;
    CHECK_RC(swift_conn_create(&cfg, &f), 0);
    CHECK_RC(swift_container_head(f, "c", NULL), -EPERM);
    CHECK_RC(swift_object_put(f, "c", "o", "x", 1, NULL, 0), -EPERM);
    swift_conn_destroy(f);
  }
  printf("ok [%s] PUT into a missing container: -ENOENT (buffer and stream)%s\n", target,
         forbidden_url ? "; a forbidden PUT: -EPERM" : "");
}

/* ---- faults (iswift only) ------------------------------------------------- */

static void admin_post(uint16_t port, const char *query) {
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/admin/faults?%s", (unsigned)port, query);
  CURL *h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
  FILE *devnull = fopen("/dev/null", "w");
  curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
  long st = 0;
  CHECK(curl_easy_perform(h) == CURLE_OK, "admin request");
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
  CHECK(st == 200, "admin status %ld", st);
  fclose(devnull);
  curl_easy_cleanup(h);
}

static void fault_suite(iswift *srv, const char *auth_url) {
  uint16_t port = iswift_port(srv);
  /* backoff shape: 20 ms, x2, limit 3 -> 4 attempts, sleeps 20+40+80 ms */
  swift_config cfg;
  auth_cfg(&cfg, auth_url, "testing", 3);
  cfg.retry_delay_ns = 20000000;
  cfg.retry_exp_backoff = 2.0;
  cfg.stats_pkg = "swiftclient";
  cfg.stats_group = "faults";
  swift_conn *c = NULL;
  CHECK_RC(swift_conn_create(&cfg, &c), 0);
  CHECK_RC(swift_account_put(c, NULL, 0), 0);
  CHECK_RC(swift_container_put(c, "faults", NULL, 0), 0);
  admin_post(port, "error_rate=100");
  uint64_t before = iswift_requests(srv), t0 = now_ms();
  CHECK_RC(swift_object_head(c, "faults", "x", NULL, NULL), -EIO);
  uint64_t el = now_ms() - t0, n = iswift_requests(srv) - before;
  CHECK(n == 4, "attempts %" PRIu64 ", want 4", n);
  CHECK(el >= 140, "backoff slept %" PRIu64 " ms, want >= 140", el);
  admin_post(port, "error_rate=0");
  char *txt = NULL;
  CHECK_RC(bs_sprint(BS_FORMAT_TEXT, "swiftclient", "faults", &txt), 0);
  printf("%s", txt);
  CHECK(strstr(txt, "SwiftRetries total:3") && strstr(txt, "SwiftErrors total:1"),
        "stats do not show 3 retries and 1 error");
  free(txt);
  before = iswift_requests(srv);
  CHECK_RC(swift_object_head(c, "faults", "x", NULL, NULL), -ENOENT);
  CHECK(iswift_requests(srv) - before == 1, "404 must not be retried");
  /* re-auth on 401 */
  iswift_force_reauth(srv);
  CHECK_RC(swift_container_head(c, "faults", NULL), 0);
  printf("ok [%s] retry count %" PRIu64 " and backoff %" PRIu64 " ms as configured; 404 not "
         "retried; re-auth after 401\n", target, n, el);
  /* keep-alive: sequential calls reuse one pooled connection */
  uint64_t conns = iswift_connections(srv);
  for (int i = 0; i < 50; i++) CHECK_RC(swift_container_head(c, "faults", NULL), 0);
  conns = iswift_connections(srv) - conns;
  CHECK(conns <= 1, "50 sequential requests opened %" PRIu64 " connections", conns);
  swift_conn_destroy(c);

  /* SwiftTimeout: a reply slower than the timeout is -ETIMEDOUT */
  auth_cfg(&cfg, auth_url, "testing", 0);
  cfg.timeout_ns = 300000000;
  CHECK_RC(swift_conn_create(&cfg, &c), 0);
  iswift_faults slow = {.latency_ns = 1500000000};
  iswift_set_faults(srv, &slow);
  t0 = now_ms();
  CHECK_RC(swift_container_head(c, "faults", NULL), -ETIMEDOUT);
  el = now_ms() - t0;
  CHECK(el < 1400, "timeout took %" PRIu64 " ms", el);
  iswift_faults none0 = {0};
  iswift_set_faults(srv, &none0);
  swift_conn_destroy(c);
  printf("ok [%s] keep-alive: 50 calls over %" PRIu64 " new connection(s); 300 ms timeout "
         "fired after %" PRIu64 " ms\n", target, conns, el);

  /* mixed faults: every call must succeed with the exact bytes */
  c = connect_auth(auth_url, 16, 1000000);
  iswift_faults f = {.error_rate = 20, .drop_rate = 5, .truncate_rate = 20,
                     .latency_ns = 200000};
  iswift_set_faults(srv, &f);
  enum { N = 40, SZ = 100000 };
  unsigned char *data = malloc(SZ), *back = malloc(SZ);
  before = iswift_requests(srv);
  int calls = 0;
  for (int i = 0; i < N; i++) {
    char name[32];
    snprintf(name, sizeof name, "f%02d", i);
    fill(data, SZ, (unsigned)i + 1000);
    CHECK_RC(swift_object_put(c, "faults", name, data, SZ, NULL, 0), 0);
    size_t got;
    memset(back, 0, SZ);
    CHECK_RC(swift_object_get(c, "faults", name, (swift_range){0}, back, SZ, &got, NULL), 0);
    CHECK(got == SZ && !memcmp(back, data, SZ), "corrupted whole GET %d", i);
    uint64_t off = (uint64_t)(i * 997) % (SZ / 2);
    CHECK_RC(swift_object_get(c, "faults", name, (swift_range){SWIFT_RANGE_SPAN, off, 40000},
                              back, SZ, &got, NULL), 0);
    CHECK(got == 40000 && !memcmp(back, data + off, got), "corrupted range GET %d", i);
    sinkbuf sb = {back, 0, SZ};
    memset(back, 0, SZ);
    CHECK_RC(swift_object_get_stream(c, "faults", name, (swift_range){0}, sink, &sb), 0);
    CHECK(sb.len == SZ && !memcmp(back, data, SZ), "corrupted stream GET %d", i);
    calls += 4;
  }
  uint64_t reqs = iswift_requests(srv) - before;
  CHECK(reqs > (uint64_t)calls, "faults were not injected");
  iswift_faults none = {0};
  iswift_set_faults(srv, &none);
  for (int i = 0; i < N; i++) {
    char name[32];
    snprintf(name, sizeof name, "f%02d", i);
    CHECK_RC(swift_object_delete(c, "faults", name), 0);
  }
  CHECK_RC(swift_container_delete(c, "faults"), 0);
  printf("ok [%s] %d calls under injected 503/500, drops and truncation: %" PRIu64
         " requests, no corrupted data\n", target, calls, reqs);
  free(data);
  free(back);
  swift_conn_destroy(c);
}

/* The auth plug-in input path of iclient: JSON -> config -> storage URL with
 * the Account segment replaced. */
static void plugin_check(const char *auth_url, const char *account) {
  char json[512], su[512], want_tail[128];
  snprintf(json, sizeof json,
           "{\"AuthURL\":\"%s\",\"AuthUser\":\"test:tester\",\"AuthKey\":\"testing\","
           "\"Account\":\"%s\",\"Container\":\"con\"}", auth_url, account);
  swift_auth_input in;
  CHECK_RC(swift_auth_input_parse(json, &in), 0);
  swift_config cfg;
  swift_config_defaults(&cfg);
  swift_auth_input_apply(&in, &cfg);
  swift_conn *c;
  CHECK_RC(swift_conn_create(&cfg, &c), 0);
  CHECK_RC(swift_storage_url(c, su, sizeof su), 0);
  snprintf(want_tail, sizeof want_tail, "/v1/%s", account);
  CHECK(strlen(su) > strlen(want_tail) &&
            !strcmp(su + strlen(su) - strlen(want_tail), want_tail), "plug-in storage URL %s", su);
  swift_conn_destroy(c);
  swift_auth_input_free(&in);
  printf("ok [%s] auth plug-in input: storage URL %s\n", target, su);
}

static int run_iswift(void) {
  for (int strict = 0; strict <= 1; strict++) {
    iswift_config cfg;
    iswift_config_defaults(&cfg);
    cfg.port = 0;
    cfg.emulate_real_swift = strict;
    cfg.fault_admin = true;
    iswift *srv;
    CHECK_RC(iswift_start(&cfg, &srv), 0);
    char auth[128];
    snprintf(auth, sizeof auth, "http://127.0.0.1:%u/auth/v1.0", (unsigned)iswift_port(srv));
    target = strict ? "iswift EmulateRealSwift" : "iswift original";
    swift_conn *c = connect_auth(auth, 4, 1000000);
    client_suite(c, "suite", true);
    /* the pool (size 4) bounds the connections, kept alive across all calls;
     * the one GET aborted for -EOVERFLOW closes its connection: +1 */
    uint64_t conns = iswift_connections(srv);
    CHECK(conns >= 1 && conns <= 5, "suite opened %" PRIu64 " connections, pool is 4", conns);
    printf("ok [%s] whole suite, 8 threads included, used %" PRIu64 " connection(s)\n", target,
           conns);
    if (strict) bad_requests(c, "badreq");
    delimiter_suite(c, "delim", strict);
    char forbidden[160];
    snprintf(forbidden, sizeof forbidden, "http://127.0.0.1:%u/v1/", (unsigned)iswift_port(srv));
    /* the original refuses the empty account with 403; EmulateRealSwift
     * has no 403 at all */
    missing_container_put(c, strict ? NULL : forbidden);
    swift_conn_destroy(c);
    if (!strict) fault_suite(srv, auth);
    if (!strict) plugin_check(auth, "AUTH_plugin");
    iswift_stop(srv);
  }
  return 0;
}

static int run_real(const char *auth_url) {
  target = "real Swift";
  char container[64], badc[64];
  snprintf(container, sizeof container, "pfs-swift-suite-%d-%ld", (int)getpid(),
           (long)time(NULL));
  snprintf(badc, sizeof badc, "pfs-swift-bad-%d-%ld", (int)getpid(), (long)time(NULL));
  swift_conn *c = connect_auth(auth_url, 4, 100000000);
  client_suite(c, container, false);
  bad_requests(c, badc);
  char delimc[64], su_other[1024];
  snprintf(delimc, sizeof delimc, "pfs-swift-delim-%d-%ld", (int)getpid(), (long)time(NULL));
  delimiter_suite(c, delimc, true);
  /* tempauth: test:tester may not write to another account (403) */
  CHECK_RC(swift_storage_url(c, su_other, sizeof su_other), 0);
  char *acct = strstr(su_other, "/v1/");
  CHECK(acct, "storage URL %s", su_other);
  snprintf(acct + 4, sizeof su_other - (size_t)(acct + 4 - su_other), "AUTH_pfs_other_%d",
           (int)getpid());
  missing_container_put(c, su_other);
  /* a wrong key is refused (iswift accepts any key) */
  swift_config cfg;
  auth_cfg(&cfg, auth_url, "wrong", 0);
  swift_conn *bad = NULL;
  CHECK_RC(swift_conn_create(&cfg, &bad), -EACCES);
  /* a static token that Swift does not know: 401 is final */
  char su[1024];
  CHECK_RC(swift_storage_url(c, su, sizeof su), 0);
  swift_config_defaults(&cfg);
  cfg.storage_url = su;
  cfg.auth_token = "AUTH_tkdeadbeef";
  CHECK_RC(swift_conn_create(&cfg, &bad), 0);
  CHECK_RC(swift_container_head(bad, container, NULL), -EACCES);
  swift_conn_destroy(bad);
  printf("ok [%s] wrong key and unknown static token refused\n", target);
  plugin_check(auth_url, "AUTH_test");
  swift_conn_destroy(c);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc;
  if (argc == 2 && strcmp(argv[1], "iswift") == 0)
    rc = run_iswift();
  else if (argc == 3 && strcmp(argv[1], "real") == 0)
    rc = run_real(argv[2]);
  else {
    fprintf(stderr, "usage: %s iswift | real AUTH_URL\n", argv[0]);
    rc = 2;
  }
  curl_global_cleanup();
  return rc;
}
