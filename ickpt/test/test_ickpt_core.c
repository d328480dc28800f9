/* Unit tests of ickpt's pure helpers: keys, txn IDs, preconditions,
 * and records. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ickpt.h"

static void expect_canonical(const char *url, const char *want) {
  char out[ICKPT_MAX_CANONICAL + 1];
  int rc = ickpt_canonical_url(url, out, sizeof out);
  if (want == NULL) {
    assert_int_equal(rc, -EINVAL);
  } else {
    assert_int_equal(rc, 0);
    assert_string_equal(out, want);
  }
}

static void test_canonical_url(void **state) {
  (void)state;
  /* What imgr sends: kept, scheme dropped. */
  expect_canonical("http://swift:8080/v1/AUTH_test/con/0000000000000000",
                   "swift:8080/v1/AUTH_test/con/0000000000000000");
  /* http and https of the same object are one key, as upstream. */
  expect_canonical("https://swift:8080/v1/AUTH_test/con/0000000000000000",
                   "swift:8080/v1/AUTH_test/con/0000000000000000");
  expect_canonical("HTTP://SWIFT:8080/v1/AUTH_Test/Con", "swift:8080/v1/AUTH_Test/Con");
  expect_canonical("http://h:80/a", "h/a");
  expect_canonical("https://h:443/a", "h/a");
  expect_canonical("https://h:80/a", "h:80/a");
  expect_canonical("http://h:443/a", "h:443/a");
  expect_canonical("http://h:/a", "h/a");
  expect_canonical("http://h:08080/a", "h:8080/a");
  expect_canonical("http://h", "h");
  expect_canonical("http://h?x=%41", "h?x=%41");
  expect_canonical("http://h/a%2Fb?Q=1", "h/a%2Fb?Q=1");
  expect_canonical("http://User:PW@Host:80/p", "User:PW@host/p");
  expect_canonical("http://[::1]:8080/v1", "[::1]:8080/v1");
  expect_canonical("http://[FE80::1]:80/v1", "[fe80::1]/v1");
  expect_canonical("http://[::1]/v1", "[::1]/v1");
  /* Refused. */
  expect_canonical(NULL, NULL);
  expect_canonical("", NULL);
  expect_canonical("swift:8080/v1", NULL);
  expect_canonical("ftp://h/x", NULL);
  expect_canonical("httpx://h/x", NULL);
  expect_canonical("://h/x", NULL);
  expect_canonical("http:///x", NULL);
  expect_canonical("http://:8080/x", NULL);
  expect_canonical("http://u@/x", NULL);
  expect_canonical("http://h:8x/x", NULL);
  expect_canonical("http://h:65536/x", NULL);
  expect_canonical("http://h:-1/x", NULL);
  expect_canonical("http://[::1/x", NULL);
  expect_canonical("http://[::1]x/x", NULL);
  expect_canonical("http://[]/x", NULL);
  expect_canonical("http://e[x:80/x", NULL);
  expect_canonical("http://a]b/x", NULL);
  expect_canonical("http://us@e[rFE80::?b", NULL);
  expect_canonical("http://h/a\tb", NULL);
  expect_canonical("http://h/a\x7f", NULL);

  /* Length limits: the result must fit ICKPT_MAX_CANONICAL and outlen. */
  size_t n = ICKPT_MAX_CANONICAL + 16;
  char *url = malloc(n + 1);
  assert_non_null(url);
  memcpy(url, "http://h/", 9);
  memset(url + 9, 'a', n - 9);
  url[ICKPT_MAX_CANONICAL + 7] = '\0'; /* canonical = h/ + MAX-2 a's = MAX */
  char *out = malloc(ICKPT_MAX_CANONICAL + 1);
  assert_non_null(out);
  assert_int_equal(ickpt_canonical_url(url, out, ICKPT_MAX_CANONICAL + 1), 0);
  assert_int_equal(strlen(out), ICKPT_MAX_CANONICAL);
  url[ICKPT_MAX_CANONICAL + 7] = 'a';
  url[ICKPT_MAX_CANONICAL + 8] = '\0';
  assert_int_equal(ickpt_canonical_url(url, out, ICKPT_MAX_CANONICAL + 1), -EINVAL);
  char small[8];
  assert_int_equal(ickpt_canonical_url("http://hostname/abc", small, sizeof small), -EINVAL);
  assert_int_equal(ickpt_canonical_url("http://host/abc", small, sizeof small), -EINVAL);
  assert_int_equal(ickpt_canonical_url("http://HOST:80/ab", small, sizeof small), 0);
  assert_string_equal(small, "host/ab");
  free(url);
  free(out);
}

static void test_key_and_base64(void **state) {
  (void)state;
  uint8_t k[ICKPT_KEY_LEN];
  /* SHA-256("abc") */
  static const uint8_t abc[ICKPT_KEY_LEN] = {
      0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
      0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
      0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  ickpt_key_of("abc", 3, k);
  assert_memory_equal(k, abc, ICKPT_KEY_LEN);

  char *b = ickpt_key_base64("abc", 3);
  assert_string_equal(b, "YWJj");
  free(b);
  b = ickpt_key_base64("ab", 2);
  assert_string_equal(b, "YWI=");
  free(b);
  b = ickpt_key_base64("swift:8080/v1", 13);
  assert_string_equal(b, "c3dpZnQ6ODA4MC92MQ==");
  free(b);
  b = ickpt_key_base64("", 0);
  assert_string_equal(b, "");
  free(b);
}

static void test_txn_valid(void **state) {
  (void)state;
  assert_true(ickpt_txn_valid("0123456789ABCDEF"));
  assert_true(ickpt_txn_valid("a"));
  assert_true(ickpt_txn_valid("a_b-C9"));
  assert_false(ickpt_txn_valid(NULL));
  assert_false(ickpt_txn_valid(""));
  assert_false(ickpt_txn_valid("a/b"));
  assert_false(ickpt_txn_valid("a b"));
  assert_false(ickpt_txn_valid("a.b"));
  assert_false(ickpt_txn_valid("%41"));
  char t[ICKPT_MAX_TXN_LEN + 2];
  memset(t, 'x', sizeof t);
  t[ICKPT_MAX_TXN_LEN] = '\0';
  assert_true(ickpt_txn_valid(t));
  t[ICKPT_MAX_TXN_LEN] = 'x';
  t[ICKPT_MAX_TXN_LEN + 1] = '\0';
  assert_false(ickpt_txn_valid(t));
}

static void test_cond_parse(void **state) {
  (void)state;
  ickpt_cond c;
  assert_int_equal(ickpt_cond_parse(NULL, NULL, &c), 0);
  assert_int_equal(c.kind, ICKPT_COND_NONE);
  assert_int_equal(ickpt_cond_parse("\"7\"", NULL, &c), 0);
  assert_int_equal(c.kind, ICKPT_COND_MATCH);
  assert_int_equal(c.version, 7);
  assert_int_equal(ickpt_cond_parse(" 18446744073709551615 ", NULL, &c), 0);
  assert_true(c.version == UINT64_MAX);
  assert_int_equal(ickpt_cond_parse("*", NULL, &c), 0);
  assert_int_equal(c.kind, ICKPT_COND_MATCH);
  assert_int_equal(c.version, 0);
  assert_int_equal(ickpt_cond_parse(NULL, " * ", &c), 0);
  assert_int_equal(c.kind, ICKPT_COND_NONE_MATCH);

  assert_int_equal(ickpt_cond_parse("18446744073709551616", NULL, &c), -EINVAL);
  assert_int_equal(ickpt_cond_parse("\"0\"", NULL, &c), -EINVAL);
  assert_int_equal(ickpt_cond_parse("W/\"1\"", NULL, &c), -EINVAL);
  assert_int_equal(ickpt_cond_parse("\"\"", NULL, &c), -EINVAL);
  assert_int_equal(ickpt_cond_parse("\"1", NULL, &c), -EINVAL);
  assert_int_equal(ickpt_cond_parse("1,2", NULL, &c), -EINVAL);
  assert_int_equal(ickpt_cond_parse("", NULL, &c), -EINVAL);
  assert_int_equal(ickpt_cond_parse(NULL, "\"1\"", &c), -EINVAL);
  assert_int_equal(ickpt_cond_parse("1", "*", &c), -EINVAL);
  assert_int_equal(ickpt_cond_parse("111111111111111111111111111111111111", NULL, &c), -EINVAL);
}

static const uint8_t record_vector[] = {
    0x01, 0x00, 0x00, 0x00,                         /* format */
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* version */
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* commit_time_ns */
    0x03, 0x00, 'h',  '/',  'x',                    /* canonical */
    0x02, 0x00, 0x00, 0x00, 'a',  'b',              /* value */
};

static void test_record_vector(void **state) {
  (void)state;
  ickpt_record r = {2, 0x0102030405060708ull, "h/x", 3, "ab", 2};
  uint8_t buf[64];
  assert_int_equal(ickpt_record_size(&r), sizeof record_vector);
  assert_int_equal(ickpt_record_encode(&r, buf, sizeof buf), sizeof record_vector);
  assert_memory_equal(buf, record_vector, sizeof record_vector);
  assert_int_equal(ickpt_record_encode(&r, buf, sizeof record_vector - 1), -ENOSPC);

  ickpt_record d;
  assert_int_equal(ickpt_record_decode(record_vector, sizeof record_vector, &d), 0);
  assert_int_equal(d.version, 2);
  assert_true(d.commit_time_ns == 0x0102030405060708ull);
  assert_int_equal(d.canonical_len, 3);
  assert_memory_equal(d.canonical, "h/x", 3);
  assert_int_equal(d.value_len, 2);
  assert_memory_equal(d.value, "ab", 2);

  /* Empty canonical and value encode to the fixed part only. */
  ickpt_record e = {1, 0, NULL, 0, NULL, 0};
  assert_int_equal(ickpt_record_encode(&e, buf, sizeof buf), ICKPT_RECORD_FIXED);
  assert_int_equal(ickpt_record_decode(buf, ICKPT_RECORD_FIXED, &d), 0);
  assert_int_equal(d.canonical_len, 0);
  assert_int_equal(d.value_len, 0);

  ickpt_record big = {1, 0, "x", 70000, "v", 1};
  assert_int_equal(ickpt_record_size(&big), 0);
  assert_int_equal(ickpt_record_encode(&big, buf, sizeof buf), -EINVAL);
}

static void test_record_corrupt(void **state) {
  (void)state;
  ickpt_record d;
  uint8_t buf[sizeof record_vector + 1];
  /* Every truncation fails. */
  for (size_t n = 0; n < sizeof record_vector; n++) {
    assert_int_equal(ickpt_record_decode(record_vector, n, &d), -EINVAL);
  }
  assert_int_equal(ickpt_record_decode(NULL, 0, &d), -EINVAL);
  /* A trailing byte fails. */
  memcpy(buf, record_vector, sizeof record_vector);
  buf[sizeof record_vector] = 0;
  assert_int_equal(ickpt_record_decode(buf, sizeof buf, &d), -EINVAL);
  /* Wrong format. */
  memcpy(buf, record_vector, sizeof record_vector);
  buf[0] = 2;
  assert_int_equal(ickpt_record_decode(buf, sizeof record_vector, &d), -EINVAL);
  /* canonical_len past the end. */
  memcpy(buf, record_vector, sizeof record_vector);
  buf[20] = 0xff;
  buf[21] = 0xff;
  assert_int_equal(ickpt_record_decode(buf, sizeof record_vector, &d), -EINVAL);
  /* value_len too large and too small. */
  memcpy(buf, record_vector, sizeof record_vector);
  buf[28] = 0xff;
  assert_int_equal(ickpt_record_decode(buf, sizeof record_vector, &d), -EINVAL);
  buf[25] = 1;
  buf[28] = 0;
  assert_int_equal(ickpt_record_decode(buf, sizeof record_vector, &d), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_canonical_url),  cmocka_unit_test(test_key_and_base64),
      cmocka_unit_test(test_txn_valid),      cmocka_unit_test(test_cond_parse),
      cmocka_unit_test(test_record_vector),  cmocka_unit_test(test_record_corrupt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
