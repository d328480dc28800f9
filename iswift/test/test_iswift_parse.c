/* Unit tests of iswift's pure parsers and record codec. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iswift_internal.h"

static void path_case(const char *url, int want_rc, const char *a, const char *c,
                      const char *o) {
  isw_path p;
  assert_int_equal(isw_parse_path(url, &p), want_rc);
  if (a) assert_string_equal(p.account, a); else assert_null(p.account);
  if (c) assert_string_equal(p.container, c); else assert_null(p.container);
  if (o) assert_string_equal(p.object, o); else assert_null(p.object);
  isw_path_free(&p);
}

static void test_path(void **state) {
  (void)state;
  path_case("/v1/AUTH_test", 0, "AUTH_test", NULL, NULL);
  path_case("/v1/AUTH_test/", 0, "AUTH_test", NULL, NULL);
  path_case("/v1/AUTH_test/con", 0, "AUTH_test", "con", NULL);
  path_case("/v1/AUTH_test/con/", 0, "AUTH_test", "con", NULL);
  path_case("/v1/AUTH_test/con/a/b/", 0, "AUTH_test", "con", "a/b/");
  path_case("/v1/", 0, NULL, NULL, NULL);
  path_case("/v1//con/obj", 0, NULL, "con", "obj");
  path_case("/v1", -ENOENT, NULL, NULL, NULL);
  path_case("/auth/v1.0", -ENOENT, NULL, NULL, NULL);
}

static int rng(const char *h, uint64_t size, bool strict, isw_range *r, size_t *n) {
  return isw_parse_range(h, size, strict, r, n);
}

static void test_range_original(void **state) {
  (void)state;
  isw_range r[ISW_MAX_RANGES];
  size_t n;
  assert_int_equal(rng(NULL, 5, false, r, &n), ISW_RANGE_NONE);
  assert_int_equal(rng("bytes=1-3", 5, false, r, &n), 0);
  assert_true(n == 1 && r[0].first == 1 && r[0].last == 3);
  assert_int_equal(rng("bytes=0-1,3-3", 5, false, r, &n), 0);
  assert_true(n == 2 && r[1].first == 3 && r[1].last == 3);
  assert_int_equal(rng("bytes=-2", 5, false, r, &n), 0);
  assert_true(n == 1 && r[0].first == 3 && r[0].last == 4);
  assert_int_equal(rng("bytes=2-", 5, false, r, &n), 0);
  assert_true(r[0].first == 2 && r[0].last == 4);
  assert_int_equal(rng("bytes=1-99", 5, false, r, &n), 0);
  assert_true(r[0].last == 4);
  /* 400s of the original */
  assert_int_equal(rng("foo=1-2", 5, false, r, &n), -EINVAL);
  assert_int_equal(rng("bytes=0-1,2-2,3-3", 5, false, r, &n), -EINVAL);
  assert_int_equal(rng("bytes=0-1, 3-3", 5, false, r, &n), -EINVAL);
  assert_int_equal(rng("bytes=a-1", 5, false, r, &n), -EINVAL);
  assert_int_equal(rng("bytes=-", 5, false, r, &n), -EINVAL);
  assert_int_equal(rng("bytes=3-1", 5, false, r, &n), -EINVAL);
  assert_int_equal(rng("bytes=-6", 5, false, r, &n), -EINVAL);
  assert_int_equal(rng("bytes=99999999999999999999-", 5, false, r, &n), -EINVAL);
  /* the deviation: unsatisfiable → 416 instead of a dropped connection */
  assert_int_equal(rng("bytes=10-20", 5, false, r, &n), -ERANGE);
  assert_int_equal(rng("bytes=0-1", 0, false, r, &n), -ERANGE);
  assert_int_equal(rng("bytes=-0", 5, false, r, &n), -ERANGE);
  assert_int_equal(rng("bytes=0-1,7-8", 5, false, r, &n), -ERANGE);
}

/* Expected values observed on Swift 2.30 (swift-aio.sh), 5-byte object. */
static void test_range_strict(void **state) {
  (void)state;
  isw_range r[ISW_MAX_RANGES];
  size_t n;
  assert_int_equal(rng("bytes=10-20", 5, true, r, &n), -ERANGE);
  assert_int_equal(rng("bytes=-0", 5, true, r, &n), -ERANGE);
  assert_int_equal(rng("bytes=5-", 5, true, r, &n), -ERANGE);
  assert_int_equal(rng("bytes=10-20,30-40", 5, true, r, &n), -ERANGE);
  assert_int_equal(rng("bytes=-10", 5, true, r, &n), 0);
  assert_true(n == 1 && r[0].first == 0 && r[0].last == 4);
  assert_int_equal(rng("bytes=3-1", 5, true, r, &n), ISW_RANGE_NONE);
  assert_int_equal(rng("bytes=abc", 5, true, r, &n), ISW_RANGE_NONE);
  assert_int_equal(rng("foo=1-2", 5, true, r, &n), ISW_RANGE_NONE);
  assert_int_equal(rng("bytes=-", 5, true, r, &n), ISW_RANGE_NONE);
  assert_int_equal(rng("bytes=", 5, true, r, &n), ISW_RANGE_NONE);
  assert_int_equal(rng("bytes=0-1, 3-3", 5, true, r, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(rng("bytes=0-1,2-2,3-3", 5, true, r, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(rng("bytes=1-2,10-20", 5, true, r, &n), 0);
  assert_true(n == 1 && r[0].first == 1 && r[0].last == 2);
  assert_int_equal(rng("bytes=4-10", 5, true, r, &n), 0);
  assert_true(r[0].first == 4 && r[0].last == 4);
}

static void test_listing_params(void **state) {
  (void)state;
  isw_listing l;
  assert_int_equal(isw_parse_listing("m", NULL, "p", NULL, "5", "json", 100, false, &l), 0);
  assert_string_equal(l.marker, "m");
  assert_null(l.prefix);
  assert_true(l.limit == 100 && !l.json);
  assert_int_equal(isw_parse_listing("m", "z", "p", NULL, "5", "json", 100, true, &l), 0);
  assert_true(l.limit == 5 && l.json);
  assert_string_equal(l.prefix, "p");
  assert_string_equal(l.end_marker, "z");
  assert_int_equal(isw_parse_listing(NULL, NULL, NULL, NULL, "abc", NULL, 100, true, &l), 0);
  assert_true(l.limit == 100);
  assert_int_equal(isw_parse_listing(NULL, NULL, NULL, NULL, "-1", NULL, 100, true, &l), 0);
  assert_int_equal(isw_parse_listing(NULL, NULL, NULL, NULL, "101", NULL, 100, true, &l), -E2BIG);
  assert_int_equal(isw_parse_listing("\xff", NULL, NULL, NULL, NULL, NULL, 100, true, &l), -EINVAL);
  assert_int_equal(isw_parse_listing(NULL, NULL, "\xc3", NULL, NULL, NULL, 100, true, &l), -EINVAL);
  /* delimiter: ignored by the original, checked and kept when strict, and
   * an empty one means none (as on Swift 2.30) */
  assert_int_equal(isw_parse_listing(NULL, NULL, NULL, "/", NULL, NULL, 100, false, &l), 0);
  assert_null(l.delimiter);
  assert_int_equal(isw_parse_listing(NULL, NULL, NULL, "/", NULL, NULL, 100, true, &l), 0);
  assert_string_equal(l.delimiter, "/");
  assert_int_equal(isw_parse_listing(NULL, NULL, NULL, "", NULL, NULL, 100, true, &l), 0);
  assert_null(l.delimiter);
  assert_int_equal(isw_parse_listing(NULL, NULL, NULL, "\xff", NULL, NULL, 100, true, &l),
                   -EINVAL);
}

static void test_subdir_len(void **state) {
  (void)state;
  assert_int_equal(isw_subdir_len("a/b/c", 0, "/"), 2);   /* "a/" */
  assert_int_equal(isw_subdir_len("a/b/c", 2, "/"), 4);   /* after prefix "a/": "a/b/" */
  assert_int_equal(isw_subdir_len("a/b", 2, "/"), 0);     /* no delimiter after the prefix */
  assert_int_equal(isw_subdir_len("c/", 0, "/"), 2);      /* an object "c/" rolls up too */
  assert_int_equal(isw_subdir_len("d//e", 2, "/"), 3);    /* "d//" */
  assert_int_equal(isw_subdir_len("x-y.z", 0, "-"), 2);
  assert_int_equal(isw_subdir_len("d//e", 0, "//"), 3);   /* multi-byte delimiters */
  assert_int_equal(isw_subdir_len("ab", 0, "ab"), 2);
  assert_int_equal(isw_subdir_len("a", 5, "/"), 0);       /* shorter than the prefix */
  assert_int_equal(isw_subdir_len("a/b", 0, NULL), 0);
  assert_int_equal(isw_subdir_len("a/b", 0, ""), 0);
}

static void test_utf8_and_canon(void **state) {
  (void)state;
  assert_true(isw_utf8_valid("h\xc3\xa9llo", 6));
  assert_false(isw_utf8_valid("\xc0\xaf", 2));      /* overlong */
  assert_false(isw_utf8_valid("\xed\xa0\x80", 3));  /* surrogate */
  assert_false(isw_utf8_valid("\xf4\x90\x80\x80", 4));
  assert_false(isw_utf8_valid("a\0b", 3));
  char h[] = "x-object-META-foo";
  isw_canonical_header(h);
  assert_string_equal(h, "X-Object-Meta-Foo");
}

static void test_record(void **state) {
  (void)state;
  char *names[] = {"Cat", "X-Object-Meta-Empty"}, *values[] = {"Dog", ""};
  char *head;
  size_t hl;
  assert_int_equal(isw_record_encode_head("a/b c", 2, names, values, 3, &head, &hl), 0);
  unsigned char buf[512];
  memcpy(buf, head, hl);
  memcpy(buf + hl, "\x00\x01\x02", 3);
  free(head);
  isw_record rec;
  assert_int_equal(isw_record_decode(buf, hl + 3, &rec), 0);
  assert_string_equal(rec.name, "a/b c");
  assert_int_equal(rec.nhdrs, 2);
  assert_string_equal(rec.hvalues[0], "Dog");
  assert_string_equal(rec.hvalues[1], "");
  assert_int_equal(rec.data_len, 3);
  assert_memory_equal(rec.data, "\x00\x01\x02", 3);
  isw_record_free(&rec);
  /* every truncation is refused */
  for (size_t cut = 0; cut < hl + 3; cut++)
    assert_int_equal(isw_record_decode(buf, cut, &rec), -EINVAL);
  const char *bad = "ISWIFT1\nN 1\na\nH 99999999\n";
  assert_int_equal(isw_record_decode((const unsigned char *)bad, strlen(bad), &rec), -EINVAL);
}

/* Version 2: the data first, the fields after it, then the trailer. */
static void test_record_v2(void **state) {
  (void)state;
  char *tail;
  size_t tl;
  assert_int_equal(isw_record_encode_tail("o", 0, NULL, NULL, 3, &tail, &tl), 0);
  const char want[] = "N 1\no\nH 0\nD 3\nT 00000000000000000014\n";
  assert_int_equal(tl, sizeof(want) - 1);
  assert_memory_equal(tail, want, tl);
  unsigned char buf[512];
  memcpy(buf, ISW_RECORD_V2_MAGIC "xyz", 11);
  memcpy(buf + 11, tail, tl);
  free(tail);
  isw_record rec;
  assert_int_equal(isw_record_decode(buf, 11 + tl, &rec), 0);
  assert_string_equal(rec.name, "o");
  assert_int_equal(rec.nhdrs, 0);
  assert_int_equal(rec.data_len, 3);
  assert_memory_equal(rec.data, "xyz", 3);
  isw_record_free(&rec);
  for (size_t cut = 0; cut < 11 + tl; cut++)
    assert_int_equal(isw_record_decode(buf, cut, &rec), -EINVAL);
  /* the fields must account for every byte between magic and trailer */
  char *names[] = {"Content-Type"}, *values[] = {"text/plain"};
  assert_int_equal(isw_record_encode_tail("o", 1, names, values, 2, &tail, &tl), 0);
  memcpy(buf + 11, tail, tl);
  free(tail);
  assert_int_equal(isw_record_decode(buf, 11 + tl, &rec), -EINVAL); /* 3 bytes, D 2 */
  memmove(buf + 10, buf + 11, tl);
  assert_int_equal(isw_record_decode(buf, 10 + tl, &rec), 0);
  assert_string_equal(rec.hvalues[0], "text/plain");
  assert_memory_equal(rec.data, "xy", 2);
  isw_record_free(&rec);
  const char *huge = ISW_RECORD_V2_MAGIC "T 99999999999999999999\n";
  assert_int_equal(isw_record_decode((const unsigned char *)huge, strlen(huge), &rec), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_path),           cmocka_unit_test(test_range_original),
      cmocka_unit_test(test_range_strict),   cmocka_unit_test(test_listing_params),
      cmocka_unit_test(test_utf8_and_canon), cmocka_unit_test(test_record),
      cmocka_unit_test(test_record_v2),
      cmocka_unit_test(test_subdir_len),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
