/* utils: time, random, hex, the status table, reply helpers and routing. */
#include <errno.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "logger.h"
#include "utils_internal.h"

static void test_clocks(void **state)
{
  uint64_t a = ut_now_ns(), b = ut_now_ns();
  assert_true(b >= a);
  /* wall clock is after 2020-01-01 */
  assert_true(ut_wall_ns() > 1577836800ull * 1000000000u);
}

static void test_sleep(void **state)
{
  uint64_t t0 = ut_now_ns();
  ut_sleep_ns(20 * 1000000ull);
  assert_true(ut_now_ns() - t0 >= 20 * 1000000ull);
  ut_sleep_ns(0);
}

static void test_deadline(void **state)
{
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct timespec d = ut_deadline_ts(2500000000ull); /* 2.5 s */
  assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
  long long diff_ns = (long long)(d.tv_sec - now.tv_sec) * 1000000000LL +
                      (d.tv_nsec - now.tv_nsec);
  assert_true(diff_ns >= 2500000000LL);
  assert_true(diff_ns < 3500000000LL);
  /* the largest timeout lands about 584 years ahead, without wrapping */
  d = ut_deadline_ts(UINT64_MAX);
  assert_true(d.tv_sec - now.tv_sec >= 18446744073LL);
  assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
}

static void test_hex(void **state)
{
  const unsigned char in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
  char out[2 * sizeof in + 1];
  memset(out, 'x', sizeof out);
  ut_hex_encode(in, sizeof in, out);
  assert_string_equal(out, "00017f80abff");
  ut_hex_encode(in, 0, out);
  assert_string_equal(out, "");
}

static void test_random(void **state)
{
  unsigned char a[32], b[32];
  assert_int_equal(ut_random_bytes(a, sizeof a), 0);
  assert_int_equal(ut_random_bytes(b, sizeof b), 0);
  /* 2^-256 chance of a false failure */
  assert_memory_not_equal(a, b, sizeof a);
  assert_int_equal(ut_random_bytes(a, 0), 0);
  /* a large request is filled completely (getrandom may return short) */
  size_t big = 1 << 20;
  unsigned char *buf = calloc(1, big);
  assert_int_equal(ut_random_bytes(buf, big), 0);
  size_t zero_tail = 0;
  for (size_t i = big - 64; i < big; i++)
    zero_tail += buf[i] == 0;
  assert_true(zero_tail < 64);
  free(buf);
  uint64_t x = ut_random_u64(), y = ut_random_u64();
  assert_true(x != y);
}

static void test_status_table(void **state)
{
  static const struct { int err, status; } cases[] = {
    { 0, 200 },           { -EINVAL, 400 },   { -EBADMSG, 400 }, { -EACCES, 401 },
    { -EPERM, 403 },      { -ENOENT, 404 },   { -EOPNOTSUPP, 405 }, { -EEXIST, 409 },
    { -ENOTEMPTY, 409 },  { -E2BIG, 413 },    { -EMSGSIZE, 413 }, { -ERANGE, 416 },
    { -ENOSYS, 501 },     { -EIO, 502 },      { -EAGAIN, 503 },  { -EBUSY, 503 },
    { -ETIMEDOUT, 504 },  { -ENOMEM, 500 },   { -EXDEV, 500 },   { 12345, 500 },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_int_equal(ut_http_status_from_errno(cases[i].err), cases[i].status);
}

static void test_trim(void **state)
{
  assert_int_equal(uti_http_trim_len("/volume/", 8), 7);
  assert_int_equal(uti_http_trim_len("/volume///", 10), 7);
  assert_int_equal(uti_http_trim_len("/", 1), 0);
  assert_int_equal(uti_http_trim_len("", 0), 0);
  assert_int_equal(uti_http_trim_len("/a/b", 4), 4);
}

static int h_dummy(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  return 0;
}

static void test_route_lookup(void **state)
{
  const ut_http_route routes[] = {
    { "GET", "/volume", h_dummy, NULL },
    { "GET", "/volume/x", h_dummy, NULL }, /* shadowed by the first */
    { "GET", "", h_dummy, NULL },
    { "PUT", "/volume", h_dummy, NULL },
    { NULL, "/any", h_dummy, NULL },
  };
  assert_int_equal(uti_http_route_lookup(routes, 5, "GET", "/volume"), 0);
  assert_int_equal(uti_http_route_lookup(routes, 5, "GET", "/volume/x"), 0);
  assert_int_equal(uti_http_route_lookup(routes, 5, "GET", "/volumes"), 0);
  assert_int_equal(uti_http_route_lookup(routes, 5, "GET", ""), 2);
  assert_int_equal(uti_http_route_lookup(routes, 5, "GET", "/elsewhere"), 2);
  assert_int_equal(uti_http_route_lookup(routes, 5, "PUT", "/volume/a"), 3);
  assert_int_equal(uti_http_route_lookup(routes, 5, "PUT", "/vol"), -ENOENT);
  assert_int_equal(uti_http_route_lookup(routes, 5, "POST", "/any/thing"), 4);
  /* POST is known through the NULL-method route, so this is 404, not 405 */
  assert_int_equal(uti_http_route_lookup(routes, 5, "POST", "/volume"), -ENOENT);
  /* without the NULL-method route POST is unknown */
  assert_int_equal(uti_http_route_lookup(routes, 4, "POST", "/volume"), -EOPNOTSUPP);
  /* methods are case-sensitive; HEAD is not GET */
  assert_int_equal(uti_http_route_lookup(routes, 4, "get", "/volume"), -EOPNOTSUPP);
  assert_int_equal(uti_http_route_lookup(routes, 4, "HEAD", "/volume"), -EOPNOTSUPP);
  assert_int_equal(uti_http_route_lookup(routes, 0, "GET", ""), -EOPNOTSUPP);
}

static void test_read_file(void **state)
{
  char dir[] = "/tmp/test_utils.XXXXXX", path[64], *buf;
  size_t len;
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/f", dir);

  assert_int_equal(ut_read_file(path, 100, &buf, &len), -ENOENT);
  assert_null(buf);

  /* 10,000 bytes with a NUL inside: read whole, NUL-terminated. */
  char *data = malloc(10000);
  for (int i = 0; i < 10000; i++)
    data[i] = (char)('a' + i % 26);
  data[5000] = '\0';
  FILE *f = fopen(path, "w");
  assert_int_equal(fwrite(data, 1, 10000, f), 10000);
  fclose(f);
  assert_int_equal(ut_read_file(path, 10000, &buf, &len), 0);
  assert_int_equal(len, 10000);
  assert_memory_equal(buf, data, 10000);
  assert_int_equal(buf[10000], '\0');
  free(buf);

  /* One byte over the cap is refused, whatever the initial buffer size. */
  assert_int_equal(ut_read_file(path, 9999, &buf, &len), -EFBIG);
  assert_null(buf);
  assert_int_equal(ut_read_file(path, 10, &buf, &len), -EFBIG);
  free(data);

  /* An empty file is an empty string. */
  f = fopen(path, "w");
  fclose(f);
  assert_int_equal(ut_read_file(path, 0, &buf, &len), 0);
  assert_int_equal(len, 0);
  assert_string_equal(buf, "");
  free(buf);
  unlink(path);
  rmdir(dir);
}

static void test_reply_helpers(void **state)
{
  ut_http_reply rep = { .status = 200 };
  assert_int_equal(ut_http_reply_text(&rep, 201, "text/plain", "n=%d", 42), 0);
  assert_int_equal(rep.status, 201);
  assert_string_equal(rep.content_type, "text/plain");
  assert_int_equal(rep.body_len, 4);
  assert_memory_equal(rep.body, "n=42", 4);

  /* each helper replaces the body (ASan would report the old one leaked) */
  assert_int_equal(ut_http_reply_bytes(&rep, 200, "application/octet-stream", "a\0b", 3), 0);
  assert_int_equal(rep.body_len, 3);
  assert_memory_equal(rep.body, "a\0b", 3);
  assert_int_equal(ut_http_reply_bytes(&rep, 204, NULL, NULL, 0), 0);
  assert_null(rep.body);
  assert_int_equal(rep.body_len, 0);
  assert_null(rep.content_type);

  json_t *j = json_pack("{s:i,s:[s,b]}", "a", 1, "b", "x", 1);
  assert_int_equal(ut_http_reply_json(&rep, 200, j), 0);
  assert_string_equal(rep.content_type, "application/json");
  assert_int_equal(rep.body_len, strlen("{\"a\":1,\"b\":[\"x\",true]}"));
  assert_memory_equal(rep.body, "{\"a\":1,\"b\":[\"x\",true]}", rep.body_len);
  assert_int_equal(ut_http_reply_json(&rep, 200, NULL), -EINVAL);

  assert_int_equal(ut_http_reply_header(&rep, "X-Good", "value with spaces"), 0);
  assert_int_equal(ut_http_reply_header(&rep, "X-Bad", "a\r\nInjected: 1"), -EINVAL);
  assert_int_equal(ut_http_reply_header(&rep, "X Bad", "v"), -EINVAL);
  assert_int_equal(ut_http_reply_header(&rep, "X-Bad:", "v"), -EINVAL);
  assert_int_equal(ut_http_reply_header(&rep, "", "v"), -EINVAL);
  assert_int_equal(rep.nheaders, 1);
  assert_string_equal(rep.headers[0].name, "X-Good");
  assert_string_equal(rep.headers[0].value, "value with spaces");
  for (size_t i = 1; i < UT_HTTP_MAX_REPLY_HEADERS; i++)
    assert_int_equal(ut_http_reply_header(&rep, "X-N", "v"), 0);
  assert_int_equal(ut_http_reply_header(&rep, "X-Full", "v"), -ENOSPC);
  assert_int_equal(rep.nheaders, UT_HTTP_MAX_REPLY_HEADERS);

  uti_http_reply_reset(&rep);
  assert_int_equal(rep.status, 200);
  assert_null(rep.body);
  assert_int_equal(rep.nheaders, 0);
}

/* Every index runs exactly once, on several threads at once; the first
 * error stops new indexes and is returned. */
typedef struct par_ctx {
  _Atomic unsigned hits[1000];
  _Atomic unsigned running, max_running, calls;
  size_t fail_at;
} par_ctx;

static int par_fn(void *arg, size_t i) {
  par_ctx *c = arg;
  unsigned now = ++c->running;
  unsigned seen = c->max_running;
  while (now > seen && !atomic_compare_exchange_weak(&c->max_running, &seen, now)) {
  }
  c->calls++;
  c->hits[i]++;
  ut_sleep_ns(100000); /* long enough for the others to overlap */
  c->running--;
  return i == c->fail_at ? -EIO : 0;
}

static void test_parallel(void **state) {
  (void)state;
  static par_ctx c;
  memset(&c, 0, sizeof(c));
  c.fail_at = SIZE_MAX;
  assert_int_equal(ut_parallel(1000, 8, par_fn, &c), 0);
  for (size_t i = 0; i < 1000; i++) assert_int_equal(c.hits[i], 1);
  assert_true(c.max_running > 1 && c.max_running <= 8);
  /* One thread: inline, one at a time. */
  memset(&c, 0, sizeof(c));
  c.fail_at = SIZE_MAX;
  assert_int_equal(ut_parallel(50, 1, par_fn, &c), 0);
  assert_int_equal(c.max_running, 1);
  assert_int_equal(c.calls, 50);
  /* An error at index 10 on one thread: indexes after it never start. */
  memset(&c, 0, sizeof(c));
  c.fail_at = 10;
  assert_int_equal(ut_parallel(100, 1, par_fn, &c), -EIO);
  assert_int_equal(c.calls, 11);
  /* ... and on many, at most the ones already running finish. */
  memset(&c, 0, sizeof(c));
  c.fail_at = 10;
  assert_int_equal(ut_parallel(1000, 4, par_fn, &c), -EIO);
  assert_true(c.calls < 1000);
  assert_int_equal(ut_parallel(0, 4, par_fn, &c), 0);
}

int main(void)
{
  log_configure(NULL, false, false);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_clocks),
    cmocka_unit_test(test_sleep),
    cmocka_unit_test(test_deadline),
    cmocka_unit_test(test_hex),
    cmocka_unit_test(test_random),
    cmocka_unit_test(test_status_table),
    cmocka_unit_test(test_trim),
    cmocka_unit_test(test_route_lookup),
    cmocka_unit_test(test_reply_helpers),
    cmocka_unit_test(test_read_file),
    cmocka_unit_test(test_parallel),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
