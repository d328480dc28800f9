/* iswift in-process over raw HTTP: the upstream TestEmulator walk-through
 * (iswift.md 9) plus the error paths, pagination, large bodies, the
 * directory store and the real-Swift switch. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "iswift.h"
#include "../../tests/system/swift_delimiter_vectors.h"

typedef struct {
  long status;
  char hdrs[16384];
  size_t hl;
  unsigned char *body;
  size_t bl;
} resp;

static iswift *srv;
static char token[128];
static char base[64];

static size_t on_hdr(char *d, size_t s, size_t n, void *u) {
  resp *r = u;
  size_t len = s * n;
  if (len >= 5 && memcmp(d, "HTTP/", 5) == 0) r->hl = 0;
  if (r->hl + len < sizeof r->hdrs) {
    memcpy(r->hdrs + r->hl, d, len);
    r->hl += len;
    r->hdrs[r->hl] = '\0';
  }
  return len;
}

static size_t on_body(char *d, size_t s, size_t n, void *u) {
  resp *r = u;
  r->body = realloc(r->body, r->bl + s * n + 1);
  memcpy(r->body + r->bl, d, s * n);
  r->bl += s * n;
  r->body[r->bl] = 0;
  return s * n;
}

typedef struct {
  const unsigned char *p;
  size_t left, chunk;
} src;

static size_t on_read(char *buf, size_t s, size_t n, void *u) {
  src *sr = u;
  size_t k = s * n < sr->left ? s * n : sr->left;
  if (sr->chunk && k > sr->chunk) k = sr->chunk;
  memcpy(buf, sr->p, k);
  sr->p += k;
  sr->left -= k;
  return k;
}

/* body_len: >= 0 Content-Length body; -1 no body; -2 chunked with 2-byte
 * first chunk. extra: NULL-terminated "Name: value" lines. */
static long req(const char *method, const char *path, const char *const *extra,
                const void *body, long body_len, bool with_token, resp *r) {
  memset(r, 0, sizeof *r);
  CURL *h = curl_easy_init();
  char url[4096];
  snprintf(url, sizeof url, "%s%s", base, path);
  struct curl_slist *l = NULL;
  char th[200];
  if (with_token) {
    snprintf(th, sizeof th, "X-Auth-Token: %s", token);
    l = curl_slist_append(l, th);
  }
  for (size_t i = 0; extra && extra[i]; i++) l = curl_slist_append(l, extra[i]);
  src sr = {body, body_len > 0 ? (size_t)body_len : 0, body_len == -2 ? 2 : 0};
  if (body_len == -2) {
    sr.left = strlen(body);
    l = curl_slist_append(l, "Transfer-Encoding: chunked");
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_hdr);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "PUT") == 0 && body_len != -1) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &sr);
    if (body_len >= 0) curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  CURLcode cc = curl_easy_perform(h);
  r->status = cc == CURLE_OK ? 0 : -1;
  if (cc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(l);
  curl_easy_cleanup(h);
  return r->status;
}

static void resp_free(resp *r) { free(r->body); r->body = NULL; }

/* Value of header name in r (first one), copied to out; false if absent. */
static bool hdr(const resp *r, const char *name, char *out, size_t outlen) {
  const char *p = r->hdrs;
  size_t nl = strlen(name);
  while ((p = strstr(p, "\n"))) {
    p++;
    if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (*v == ' ') v++;
      size_t n = strcspn(v, "\r\n");
      if (n >= outlen) n = outlen - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return true;
    }
  }
  return false;
}

static void expect(const char *method, const char *path, const char *const *extra,
                   const void *body, long blen, long want) {
  resp r;
  long got = req(method, path, extra, body, blen, true, &r);
  if (got != want) fail_msg("%s %s: got %ld want %ld", method, path, got, want);
  resp_free(&r);
}

static uint64_t next_max_memory; /* 0 = default */

static void start(bool strict, uint64_t listing_limit, const char *dir) {
  iswift_config cfg;
  iswift_config_defaults(&cfg);
  if (next_max_memory) cfg.max_memory = next_max_memory;
  cfg.port = 0;
  cfg.emulate_real_swift = strict;
  cfg.container_listing_limit = cfg.account_listing_limit = listing_limit;
  cfg.max_object_size = 8u << 20;
  if (dir) snprintf(cfg.store_dir, sizeof cfg.store_dir, "%s", dir);
  assert_int_equal(iswift_start(&cfg, &srv), 0);
  snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)iswift_port(srv));
  resp r;
  const char *auth[] = {"X-Auth-User: test:tester", "X-Auth-Key: testing", NULL};
  assert_int_equal(req("GET", "/auth/v1.0", auth, NULL, -1, false, &r), 200);
  assert_true(hdr(&r, "X-Auth-Token", token, sizeof token));
  resp_free(&r);
}

static void test_walkthrough(void **state) {
  (void)state;
  start(false, 10000, NULL);
  resp r;
  char v[512], want_url[128];
  /* 1 */
  assert_int_equal(req("GET", "/info", NULL, NULL, -1, false, &r), 200);
  const char *info = "{\"swift\": {\"max_account_name_length\": 256,\"max_container_name_length\": "
                     "256,\"max_object_name_length\": 1024,\"account_listing_limit\": "
                     "10000,\"container_listing_limit\": 10000}}";
  assert_int_equal(r.bl, strlen(info));
  assert_memory_equal(r.body, info, r.bl);
  resp_free(&r);
  /* 2 */
  const char *auth[] = {"X-Auth-User: test:tester", "X-Auth-Key: testing", NULL};
  assert_int_equal(req("GET", "/auth/v1.0", auth, NULL, -1, false, &r), 200);
  assert_true(hdr(&r, "X-Auth-Token", v, sizeof v));
  assert_string_equal(v, "AUTH_tk0123456789abcde01234567800000000");
  assert_true(hdr(&r, "X-Storage-Url", v, sizeof v));
  snprintf(want_url, sizeof want_url, "%s/v1/AUTH_test", base);
  assert_string_equal(v, want_url);
  resp_free(&r);
  const char *noauth[] = {"X-Auth-User: test:tester", NULL};
  expect("GET", "/auth/v1.0", noauth, NULL, -1, 401);
  /* 3, 4 */
  const char *cat[] = {"Cat: Dog", NULL}, *mouse[] = {"Mouse: Bird", NULL},
             *nomouse[] = {"Mouse;", NULL};
  expect("PUT", "/v1/TestAccount", cat, NULL, -1, 201);
  iswift_force_reauth(srv);
  expect("HEAD", "/v1/TestAccount", NULL, NULL, -1, 401);
  snprintf(token, sizeof token, "AUTH_tk0123456789abcde01234567800000001");
  /* 5-7 account metadata */
  assert_int_equal(req("HEAD", "/v1/TestAccount", NULL, NULL, -1, true, &r), 204);
  assert_true(hdr(&r, "Cat", v, sizeof v));
  assert_string_equal(v, "Dog");
  resp_free(&r);
  expect("GET", "/v1/TestAccount", NULL, NULL, -1, 204);
  expect("POST", "/v1/TestAccount", mouse, NULL, -1, 204);
  assert_int_equal(req("HEAD", "/v1/TestAccount", NULL, NULL, -1, true, &r), 204);
  assert_true(hdr(&r, "Mouse", v, sizeof v) && hdr(&r, "Cat", v, sizeof v));
  resp_free(&r);
  expect("POST", "/v1/TestAccount", nomouse, NULL, -1, 204);
  assert_int_equal(req("HEAD", "/v1/TestAccount", NULL, NULL, -1, true, &r), 204);
  assert_false(hdr(&r, "Mouse", v, sizeof v));
  assert_true(hdr(&r, "Cat", v, sizeof v));
  resp_free(&r);
  expect("PUT", "/v1/TestAccount", mouse, NULL, -1, 202);
  /* 8, 9 */
  expect("PUT", "/v1/TestAccount/TestContainer", cat, NULL, -1, 201);
  assert_int_equal(req("GET", "/v1/TestAccount", NULL, NULL, -1, true, &r), 200);
  assert_int_equal(r.bl, 14);
  assert_memory_equal(r.body, "TestContainer\n", 14);
  resp_free(&r);
  expect("GET", "/v1/TestAccount?marker=AAA", NULL, NULL, -1, 200);
  expect("GET", "/v1/TestAccount?marker=ZZZ", NULL, NULL, -1, 204);
  /* 10 */
  expect("HEAD", "/v1/TestAccount/TestContainer", NULL, NULL, -1, 204);
  expect("GET", "/v1/TestAccount/TestContainer", NULL, NULL, -1, 204);
  expect("POST", "/v1/TestAccount/TestContainer", mouse, NULL, -1, 204);
  expect("PUT", "/v1/TestAccount/TestContainer", nomouse, NULL, -1, 202);
  /* 11, 12 */
  expect("PUT", "/v1/TestAccount/TestContainer/Foo", NULL, "\x00\x01\x02", 3, 201);
  expect("PUT", "/v1/TestAccount/TestContainer/Bar", NULL, "\xAA\xBB\xCC\xDD\xEE", -2, 201);
  /* 13 */
  assert_int_equal(req("GET", "/v1/TestAccount/TestContainer", NULL, NULL, -1, true, &r), 200);
  assert_int_equal(r.bl, 8);
  assert_memory_equal(r.body, "Bar\nFoo\n", 8);
  resp_free(&r);
  expect("GET", "/v1/TestAccount/TestContainer?marker=ZZZ", NULL, NULL, -1, 204);
  /* 14 */
  assert_int_equal(req("HEAD", "/v1/TestAccount/TestContainer/Foo", NULL, NULL, -1, true, &r), 200);
  assert_true(hdr(&r, "Content-Length", v, sizeof v));
  assert_string_equal(v, "3");
  resp_free(&r);
  assert_int_equal(req("GET", "/v1/TestAccount/TestContainer/Foo", NULL, NULL, -1, true, &r), 200);
  assert_int_equal(r.bl, 3);
  assert_memory_equal(r.body, "\x00\x01\x02", 3);
  resp_free(&r);
  /* 15-17 ranges */
  const char *r13[] = {"Range: bytes=1-3", NULL}, *r2[] = {"Range: bytes=0-1,3-3", NULL},
             *rt[] = {"Range: bytes=-2", NULL};
  assert_int_equal(req("GET", "/v1/TestAccount/TestContainer/Bar", r13, NULL, -1, true, &r), 206);
  assert_int_equal(r.bl, 3);
  assert_memory_equal(r.body, "\xBB\xCC\xDD", 3);
  resp_free(&r);
  assert_int_equal(req("GET", "/v1/TestAccount/TestContainer/Bar", r2, NULL, -1, true, &r), 206);
  assert_true(hdr(&r, "Content-Type", v, sizeof v));
  const char *bp = strstr(v, "boundary=");
  assert_non_null(bp);
  char expect_body[512];
  int eb = snprintf(expect_body, sizeof expect_body,
                    "--%s\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes "
                    "0-1/5\r\n\r\n\xAA\xBB\r\n--%s\r\nContent-Type: "
                    "application/octet-stream\r\nContent-Range: bytes 3-3/5\r\n\r\n\xDD\r\n--%s--",
                    bp + 9, bp + 9, bp + 9);
  assert_int_equal(r.bl, (size_t)eb);
  assert_memory_equal(r.body, expect_body, r.bl);
  resp_free(&r);
  assert_int_equal(req("GET", "/v1/TestAccount/TestContainer/Bar", rt, NULL, -1, true, &r), 206);
  assert_memory_equal(r.body, "\xDD\xEE", 2);
  resp_free(&r);
  /* 18 */
  expect("PUT", "/v1/TestAccount/TestContainer/ZigZag", cat, NULL, -1, 201);
  expect("POST", "/v1/TestAccount/TestContainer/ZigZag", mouse, NULL, -1, 204);
  expect("POST", "/v1/TestAccount/TestContainer/ZigZag", nomouse, NULL, -1, 204);
  assert_int_equal(req("HEAD", "/v1/TestAccount/TestContainer/ZigZag", NULL, NULL, -1, true, &r), 200);
  assert_true(hdr(&r, "Cat", v, sizeof v));
  assert_false(hdr(&r, "Mouse", v, sizeof v));
  resp_free(&r);
  /* error paths (not upstream) */
  const char *r416[] = {"Range: bytes=10-20", NULL}, *r400[] = {"Range: bytes=3-1", NULL};
  assert_int_equal(req("GET", "/v1/TestAccount/TestContainer/Bar", r416, NULL, -1, true, &r), 416);
  assert_true(hdr(&r, "Content-Range", v, sizeof v));
  assert_string_equal(v, "bytes */5");
  resp_free(&r);
  expect("GET", "/v1/TestAccount/TestContainer/Bar", r400, NULL, -1, 400);
  expect("DELETE", "/v1/TestAccount/TestContainer", NULL, NULL, -1, 409);
  expect("DELETE", "/v1/TestAccount", NULL, NULL, -1, 409);
  expect("PUT", "/v1/TestAccount/Nope/obj", NULL, "x", 1, 403);
  expect("PUT", "/v1/NoAccount/Nope", NULL, NULL, -1, 403);
  expect("GET", "/v1/TestAccount/Nope", NULL, NULL, -1, 404);
  expect("PATCH", "/v1/TestAccount", NULL, NULL, -1, 405);
  expect("GET", "/v1/", NULL, NULL, -1, 403);
  expect("GET", "/v2/x", NULL, NULL, -1, 404);
  assert_int_equal(req("GET", "/v1/TestAccount", NULL, NULL, -1, false, &r), 401);
  resp_free(&r);
  expect("PUT", "/v1/TestAccount/TestContainer/Empty", NULL, NULL, -1, 201);
  /* 19, 20 */
  expect("DELETE", "/v1/TestAccount/TestContainer/Foo", NULL, NULL, -1, 204);
  expect("DELETE", "/v1/TestAccount/TestContainer/Bar", NULL, NULL, -1, 204);
  expect("DELETE", "/v1/TestAccount/TestContainer/ZigZag", NULL, NULL, -1, 204);
  expect("DELETE", "/v1/TestAccount/TestContainer/Empty", NULL, NULL, -1, 204);
  expect("DELETE", "/v1/TestAccount/TestContainer/Foo", NULL, NULL, -1, 404);
  expect("GET", "/v1/TestAccount/TestContainer", NULL, NULL, -1, 204);
  expect("DELETE", "/v1/TestAccount/TestContainer", NULL, NULL, -1, 204);
  expect("GET", "/v1/TestAccount", NULL, NULL, -1, 204);
  expect("DELETE", "/v1/TestAccount", NULL, NULL, -1, 204);
  iswift_stop(srv);
}

static void test_pagination_and_large(void **state) {
  (void)state;
  start(false, 3, NULL);
  expect("PUT", "/v1/A", NULL, NULL, -1, 201);
  expect("PUT", "/v1/A/c", NULL, NULL, -1, 201);
  char path[64];
  for (int i = 0; i < 7; i++) {
    snprintf(path, sizeof path, "/v1/A/c/o%d", i);
    expect("PUT", path, NULL, "x", 1, 201);
  }
  resp r;
  assert_int_equal(req("GET", "/v1/A/c", NULL, NULL, -1, true, &r), 200);
  assert_string_equal((char *)r.body, "o0\no1\no2\n");
  resp_free(&r);
  assert_int_equal(req("GET", "/v1/A/c?marker=o5", NULL, NULL, -1, true, &r), 200);
  assert_string_equal((char *)r.body, "o6\n");
  resp_free(&r);
  /* 3 MiB body framing, and the 8 MiB cap */
  size_t big = 3u << 20;
  unsigned char *b = malloc(9u << 20);
  for (size_t i = 0; i < (9u << 20); i++) b[i] = (unsigned char)(i * 7 + (i >> 11));
  const char *exp100[] = {"Expect: 100-continue", NULL};
  expect("PUT", "/v1/A/c/big", exp100, b, (long)big, 201);
  assert_int_equal(req("GET", "/v1/A/c/big", NULL, NULL, -1, true, &r), 200);
  assert_int_equal(r.bl, big);
  assert_memory_equal(r.body, b, big);
  resp_free(&r);
  expect("PUT", "/v1/A/c/huge", NULL, b, 9l << 20, 413);
  free(b);
  iswift_stop(srv);
}

static void test_strict(void **state) {
  (void)state;
  start(true, 10000, NULL);
  /* account auto-created by a container PUT, as tempauth does */
  expect("PUT", "/v1/AUTH_test/c", NULL, NULL, -1, 201);
  expect("PUT", "/v1/AUTH_test/nope/o", NULL, "x", 1, 404);
  expect("PUT", "/v1/AUTH_test/c/o1", NULL, "hello", 5, 201);
  const char *r_bad[] = {"Range: bytes=3-1", NULL}, *r_unsat[] = {"Range: bytes=10-20", NULL},
             *r_suffix[] = {"Range: bytes=-10", NULL};
  expect("GET", "/v1/AUTH_test/c/o1", r_bad, NULL, -1, 200);
  expect("GET", "/v1/AUTH_test/c/o1", r_unsat, NULL, -1, 416);
  expect("GET", "/v1/AUTH_test/c/o1", r_suffix, NULL, -1, 206);
  expect("FOO", "/v1/AUTH_test/c/o1", NULL, NULL, -1, 405);
  expect("POST", "/v1/AUTH_test/c/o1", NULL, NULL, -1, 202);
  expect("PUT", "/v1/AUTH_test/c/o2", NULL, NULL, -1, 411);
  const char *bad_etag[] = {"ETag: 0000", NULL};
  expect("PUT", "/v1/AUTH_test/c/o3", bad_etag, "abc", 3, 422);
  const char *good_etag[] = {"ETag: \"900150983cd24fb0d6963f7d28e17f72\"", NULL};
  expect("PUT", "/v1/AUTH_test/c/o3", good_etag, "abc", 3, 201);
  expect("PUT", "/v1/AUTH_test/c/empty", NULL, "", 0, 201);
  expect("GET", "/v1/AUTH_test/c?limit=10001", NULL, NULL, -1, 412);
  expect("GET", "/v1/AUTH_test/c?marker=%ff", NULL, NULL, -1, 400);
  expect("GET", "/v1/AUTH_test/c/%ff", NULL, NULL, -1, 412);
  expect("GET", "/foo", NULL, NULL, -1, 412);
  resp r;
  assert_int_equal(req("GET", "/v1/AUTH_test/c?format=json", NULL, NULL, -1, true, &r), 200);
  assert_non_null(strstr((char *)r.body, "\"hash\":\"5d41402abc4b2a76b9719d911017c592\""));
  assert_non_null(strstr((char *)r.body, "\"hash\":\"900150983cd24fb0d6963f7d28e17f72\""));
  assert_non_null(strstr((char *)r.body, "\"hash\":\"d41d8cd98f00b204e9800998ecf8427e\""));
  resp_free(&r);
  iswift_stop(srv);
}

static void get_body(const char *path, long want_status, const char *want_body) {
  resp r;
  long st = req("GET", path, NULL, NULL, -1, true, &r);
  if (st != want_status) fail_msg("GET %s: got %ld want %ld", path, st, want_status);
  const char *body = r.body ? (const char *)r.body : "";
  if (strcmp(body, want_body) != 0)
    fail_msg("GET %s: body\n%s\nwant\n%s", path, body, want_body);
  resp_free(&r);
}

/* delimiter=: the vectors were observed on Swift 2.30; the original iswift
 * ignores the parameter. */
static void test_delimiter(void **state) {
  (void)state;
  char path[128];
  start(false, 10000, NULL);
  expect("PUT", "/v1/A", NULL, NULL, -1, 201);
  expect("PUT", "/v1/A/c", NULL, NULL, -1, 201);
  for (size_t i = 0; i < N_DELIM_NAMES; i++) {
    snprintf(path, sizeof path, "/v1/A/c/%s", delim_names[i]);
    expect("PUT", path, NULL, "x", 1, 201);
  }
  get_body("/v1/A/c?delimiter=/", 200, DELIM_ALL_NAMES);
  get_body("/v1/A/c?delimiter=/&marker=b/x", 200, "b/y\nc\nc/\nd//e\nx-y\nx-y.z\n");
  iswift_stop(srv);

  start(true, 10000, NULL);
  expect("PUT", "/v1/AUTH_test/c", NULL, NULL, -1, 201);
  for (size_t i = 0; i < N_DELIM_NAMES; i++) {
    snprintf(path, sizeof path, "/v1/AUTH_test/c/%s", delim_names[i]);
    expect("PUT", path, NULL, "x", 1, 201);
  }
  for (size_t i = 0; i < N_DELIM_VECTORS; i++) {
    snprintf(path, sizeof path, "/v1/AUTH_test/c?%s", delim_vectors[i].query);
    get_body(path, delim_vectors[i].status, delim_vectors[i].body ? delim_vectors[i].body : "");
  }
  /* JSON: subdir entries, objects in full */
  resp r;
  assert_int_equal(req("GET", "/v1/AUTH_test/c?delimiter=/&prefix=a/&format=json", NULL, NULL,
                       -1, true, &r), 200);
  assert_non_null(strstr((char *)r.body, "{\"subdir\":\"a/c/\"}"));
  assert_non_null(strstr((char *)r.body, "\"name\":\"a/b\""));
  assert_non_null(strstr((char *)r.body, "\"name\":\"a/e\""));
  assert_null(strstr((char *)r.body, "a/c/d"));
  resp_free(&r);
  /* account listings roll container names up the same way */
  expect("PUT", "/v1/AUTH_test/p-a-1", NULL, NULL, -1, 201);
  expect("PUT", "/v1/AUTH_test/p-a-2", NULL, NULL, -1, 201);
  expect("PUT", "/v1/AUTH_test/p-b", NULL, NULL, -1, 201);
  get_body("/v1/AUTH_test?prefix=p-&delimiter=-", 200, "p-a-\np-b\n");
  assert_int_equal(req("GET", "/v1/AUTH_test?prefix=p-&delimiter=-&format=json", NULL, NULL,
                       -1, true, &r), 200);
  assert_non_null(strstr((char *)r.body, "[{\"subdir\":\"p-a-\"},{\"name\":\"p-b\""));
  resp_free(&r);
  iswift_stop(srv);
}

static void test_memory_cap(void **state) {
  (void)state;
  next_max_memory = 4u << 20;
  start(false, 10000, NULL);
  next_max_memory = 0;
  unsigned char *b = calloc(1, 3u << 20);
  expect("PUT", "/v1/A", NULL, NULL, -1, 201);
  expect("PUT", "/v1/A/c", NULL, NULL, -1, 201);
  expect("PUT", "/v1/A/c/one", NULL, b, 3l << 20, 201);
  expect("PUT", "/v1/A/c/two", NULL, b, 3l << 20, 507);
  /* an upload is counted while it arrives, so even an overwrite needs room
   * for the old and the new contents at once */
  expect("PUT", "/v1/A/c/one", NULL, b, 3l << 20, 507);
  expect("PUT", "/v1/A/c/small", NULL, b, 1l << 20, 201);
  expect("DELETE", "/v1/A/c/small", NULL, NULL, -1, 204);
  expect("DELETE", "/v1/A/c/one", NULL, NULL, -1, 204);
  expect("PUT", "/v1/A/c/two", NULL, b, 3l << 20, 201);
  free(b);
  iswift_stop(srv);
}

static void test_directory_store(void **state) {
  (void)state;
  char dir[] = "/tmp/iswift_store_XXXXXX";
  assert_non_null(mkdtemp(dir));
  start(false, 10000, dir);
  const char *cat[] = {"Cat: Dog", NULL};
  expect("PUT", "/v1/A", NULL, NULL, -1, 201);
  expect("PUT", "/v1/A/c", cat, NULL, -1, 201);
  expect("PUT", "/v1/A/c/x/y", cat, "persist", 7, 201);
  expect("PUT", "/v1/A/c/gone", NULL, "z", 1, 201);
  expect("DELETE", "/v1/A/c/gone", NULL, NULL, -1, 204);
  /* an overwrite (streamed to the store) keeps the stored headers it does
   * not name, in the original's way */
  const char *fox[] = {"Fox: Hen", NULL};
  expect("PUT", "/v1/A/c/x/y", fox, "persist", 7, 201);
  /* a body left behind by a PUT that never finished */
  char stray[256];
  snprintf(stray, sizeof stray, "%s/.incoming/stray", dir);
  FILE *f = fopen(stray, "w");
  assert_non_null(f);
  fclose(f);
  iswift_stop(srv);
  start(false, 10000, dir);
  assert_int_equal(access(stray, F_OK), -1);
  resp r;
  char v[64];
  assert_int_equal(req("GET", "/v1/A/c/x/y", NULL, NULL, -1, true, &r), 200);
  assert_int_equal(r.bl, 7);
  assert_memory_equal(r.body, "persist", 7);
  assert_true(hdr(&r, "Cat", v, sizeof v));
  assert_true(hdr(&r, "Fox", v, sizeof v));
  resp_free(&r);
  assert_int_equal(req("GET", "/v1/A/c", NULL, NULL, -1, true, &r), 200);
  assert_string_equal((char *)r.body, "x/y\n");
  resp_free(&r);
  expect("DELETE", "/v1/A/c/x/y", NULL, NULL, -1, 204);
  expect("DELETE", "/v1/A/c", NULL, NULL, -1, 204);
  expect("DELETE", "/v1/A", NULL, NULL, -1, 204);
  iswift_stop(srv);
  /* everything removed on disk too, no PUT body left over */
  char incoming[256];
  snprintf(incoming, sizeof incoming, "%s/.incoming", dir);
  assert_int_equal(rmdir(incoming), 0);
  assert_int_equal(rmdir(dir), 0);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_walkthrough),
      cmocka_unit_test(test_pagination_and_large),
      cmocka_unit_test(test_strict),
      cmocka_unit_test(test_delimiter),
      cmocka_unit_test(test_memory_cap),
      cmocka_unit_test(test_directory_store),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
