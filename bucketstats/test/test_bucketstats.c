/* Unit tests for bucketstats: the tables against upstream, the index rule,
 * the registry, and the three output formats (support.md section 3). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bucketstats_internal.h"

/* ------------------------------------------------------------------ tables */

static FILE *open_fixture(void) {
  char path[PATH_MAX];
  const char *src = getenv("PFS_SOURCE_DIR");
  if (src) {
    snprintf(path, sizeof path, "%s/bucketstats/test/upstream_tables.txt", src);
  } else {
    /* run by hand: the fixture sits next to this file */
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0),
             "upstream_tables.txt");
  }
  FILE *f = fopen(path, "r");
  if (!f)
    fail_msg("cannot open %s", path);
  return f;
}

/* Every value of the original's four tables, as transcribed from upstream. */
static void test_tables_equal_upstream(void **state) {
  (void)state;
  FILE *f = open_fixture();
  char line[512];
  unsigned log2_idx = 0, logroot2_idx = 0, log2_rows = 0, logroot2_rows = 0;
  while (fgets(line, sizeof line, f)) {
    char kind[16];
    int off;
    if (line[0] == '#' || sscanf(line, "%15s%n", kind, &off) != 1)
      continue;
    const char *p = line + off;
    if (strcmp(kind, "log2idx") == 0 || strcmp(kind, "logroot2idx") == 0) {
      bool is_log2 = kind[3] == '2';
      unsigned *pos = is_log2 ? &log2_idx : &logroot2_idx;
      const uint8_t *table = is_log2 ? bs_log2_idx : bs_logroot2_idx;
      unsigned v;
      int n;
      while (sscanf(p, "%u%n", &v, &n) == 1) {
        assert_true(*pos < 256);
        assert_int_equal(table[*pos], v);
        (*pos)++;
        p += n;
      }
    } else {
      bool is_log2 = strcmp(kind, "log2") == 0;
      assert_true(is_log2 || strcmp(kind, "logroot2") == 0);
      unsigned i;
      uint64_t lo, hi, nom, mean;
      assert_int_equal(sscanf(p, "%u %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &i, &lo, &hi,
                              &nom, &mean),
                       5);
      unsigned *rows = is_log2 ? &log2_rows : &logroot2_rows;
      assert_int_equal(i, *rows);
      assert_true(i < (is_log2 ? BS_LOG2_MAX_BUCKETS : BS_LOGROOT2_MAX_BUCKETS));
      const bs_bucket_info *b = is_log2 ? &bs_log2_buckets[i] : &bs_logroot2_buckets[i];
      assert_int_equal(b->range_low, lo);
      assert_int_equal(b->range_high, hi);
      assert_int_equal(b->nominal, nom);
      assert_int_equal(b->mean, mean);
      (*rows)++;
    }
  }
  fclose(f);
  assert_int_equal(log2_idx, 256);
  assert_int_equal(logroot2_idx, 256);
  assert_int_equal(log2_rows, BS_LOG2_MAX_BUCKETS);
  assert_int_equal(logroot2_rows, BS_LOGROOT2_MAX_BUCKETS);
}

/* The rows the spec quotes (low, high, nominal, mean). */
static void test_first_rows_from_spec(void **state) {
  (void)state;
  static const uint64_t log2[][4] = {
      {0, 0, 0, 0},          {1, 1, 1, 1},         {2, 2, 2, 2},         {3, 5, 4, 4},
      {6, 11, 8, 8},         {12, 22, 16, 17},     {23, 45, 32, 34},     {46, 90, 64, 68},
      {91, 181, 128, 136},   {182, 363, 256, 272}, {364, 727, 512, 545}, {728, 1455, 1024, 1091},
  };
  static const uint64_t logroot2[][4] = {
      {0, 0, 0, 0},     {1, 1, 1, 1},     {2, 2, 2, 2},     {3, 3, 3, 3},     {4, 4, 4, 4},
      {5, 6, 6, 5},     {7, 9, 8, 8},     {10, 13, 11, 11}, {14, 19, 16, 16}, {20, 26, 23, 23},
      {27, 38, 32, 32}, {39, 53, 45, 46}, {54, 76, 64, 65},
  };
  for (size_t i = 0; i < sizeof log2 / sizeof log2[0]; i++) {
    assert_int_equal(bs_log2_buckets[i].range_low, log2[i][0]);
    assert_int_equal(bs_log2_buckets[i].range_high, log2[i][1]);
    assert_int_equal(bs_log2_buckets[i].nominal, log2[i][2]);
    assert_int_equal(bs_log2_buckets[i].mean, log2[i][3]);
  }
  for (size_t i = 0; i < sizeof logroot2 / sizeof logroot2[0]; i++) {
    assert_int_equal(bs_logroot2_buckets[i].range_low, logroot2[i][0]);
    assert_int_equal(bs_logroot2_buckets[i].range_high, logroot2[i][1]);
    assert_int_equal(bs_logroot2_buckets[i].nominal, logroot2[i][2]);
    assert_int_equal(bs_logroot2_buckets[i].mean, logroot2[i][3]);
  }
}

/* Ranges tile [0, 2^64-1]; each bucket's low, high, nominal and mean value
 * all index to that bucket (upstream's TestBucketer property). */
static void check_structure(const bs_bucket_info *t, unsigned n, unsigned (*index)(uint64_t)) {
  assert_int_equal(t[0].range_low, 0);
  for (unsigned i = 0; i < n; i++) {
    if (i > 0)
      assert_int_equal(t[i].range_low, t[i - 1].range_high + 1);
    assert_true(t[i].range_low <= t[i].nominal && t[i].nominal <= t[i].range_high);
    assert_int_equal(t[i].mean, t[i].range_low / 2 + t[i].range_high / 2 +
                                    (t[i].range_low & t[i].range_high & 1));
    assert_int_equal(index(t[i].range_low), i);
    assert_int_equal(index(t[i].range_high), i);
    assert_int_equal(index(t[i].nominal), i);
    assert_int_equal(index(t[i].mean), i);
  }
  assert_int_equal(t[n - 1].range_high, UINT64_MAX);
}

static void test_table_structure(void **state) {
  (void)state;
  check_structure(bs_log2_buckets, BS_LOG2_MAX_BUCKETS, bs_log2_index);
  check_structure(bs_logroot2_buckets, BS_LOGROOT2_MAX_BUCKETS, bs_logroot2_index);
}

/* The bucket whose [RangeLow, RangeHigh] holds v, by a plain scan. */
static unsigned reference_index(const bs_bucket_info *t, unsigned n, uint64_t v) {
  for (unsigned i = 0; i < n; i++)
    if (t[i].range_low <= v && v <= t[i].range_high)
      return i;
  fail_msg("value %" PRIu64 " in no bucket", v);
  return 0;
}

static void test_index_matches_ranges(void **state) {
  (void)state;
  for (uint64_t v = 0; v <= 300000; v++) {
    assert_int_equal(bs_log2_index(v), reference_index(bs_log2_buckets, BS_LOG2_MAX_BUCKETS, v));
    assert_int_equal(bs_logroot2_index(v),
                     reference_index(bs_logroot2_buckets, BS_LOGROOT2_MAX_BUCKETS, v));
  }
  /* every power of two, its neighbours, and the top of the range */
  for (unsigned k = 1; k < 64; k++) {
    uint64_t p = (uint64_t)1 << k;
    uint64_t vals[] = {p - 1, p, p + 1, p + p / 2};
    for (size_t j = 0; j < sizeof vals / sizeof vals[0]; j++) {
      uint64_t v = vals[j];
      assert_int_equal(bs_log2_index(v),
                       reference_index(bs_log2_buckets, BS_LOG2_MAX_BUCKETS, v));
      assert_int_equal(bs_logroot2_index(v),
                       reference_index(bs_logroot2_buckets, BS_LOGROOT2_MAX_BUCKETS, v));
    }
  }
  assert_int_equal(bs_log2_index(UINT64_MAX), BS_LOG2_MAX_BUCKETS - 1);
  assert_int_equal(bs_logroot2_index(UINT64_MAX), BS_LOGROOT2_MAX_BUCKETS - 1);
}

/* ---------------------------------------------------------------- printing */

static char *sprint(bs_format fmt, const char *pkg, const char *group) {
  char *out = NULL;
  assert_int_equal(bs_sprint(fmt, pkg, group, &out), 0);
  assert_non_null(out);
  return out;
}

static void assert_text(const char *pkg, const char *group, const char *expected) {
  char *out = sprint(BS_FORMAT_TEXT, pkg, group);
  assert_string_equal(out, expected);
  free(out);
}

/* The retryrpc-like group of the spec's verified example. */
typedef struct {
  bs_total RPCattempted;
  bs_average Avg;
  bs_log2 ReplySize;
  bs_logroot2 Lat;
} example_stats;

static void example_register(example_stats *s) {
  memset(s, 0, sizeof *s);
  const bs_stat_desc d[] = {
      BS_DESC_TOTAL(&s->RPCattempted, "RPCattempted"),
      BS_DESC_AVERAGE(&s->Avg, "Avg"),
      BS_DESC_LOG2(&s->ReplySize, "ReplySize"),
      BS_DESC_LOGROOT2(&s->Lat, "Lat"),
  };
  assert_int_equal(bs_register("proxyfs.retryrpc", "1", d, 4), 0);
  bs_total_add(&s->RPCattempted, 3);
  bs_average_add(&s->Avg, 10);
  bs_average_add(&s->Avg, 20);
  static const uint64_t vals[] = {0, 1, 2, 3, 5, 100, 1000, 1500, 70000, 8192};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    bs_log2_add(&s->ReplySize, vals[i]);
    bs_logroot2_add(&s->Lat, vals[i]);
  }
}

static const char example_text[] =
    "proxyfs.retryrpc.1.RPCattempted total:3\n"
    "proxyfs.retryrpc.1.Avg avg:15 count:2 total:30\n"
    "proxyfs.retryrpc.1.ReplySize avg:8204 count:10 total:82043 0:1 1:1 2:1 4:2 8:0 16:0 32:0 "
    "64:0 128:1 256:0 512:0 2^10:1 2^11:1 2^12:0 2^13:1 2^14:0 2^15:0 2^16:1\n"
    "proxyfs.retryrpc.1.Lat avg:7778 count:10 total:77787 0:1 1:1 2:1 3:1 4:0 6:1 8:0 11:0 16:0 "
    "23:0 32:0 45:0 64:0 91:1 128:0 181:0 256:0 362:0 512:0 724:0 2^9.5:1 2^10:1 2^10.5:0 "
    "2^11:0 2^11.5:0 2^12:0 2^12.5:1 2^13:0 2^13.5:0 2^14:0 2^14.5:0 2^15:0 2^15.5:1\n";

static void test_spec_example_text(void **state) {
  (void)state;
  example_stats s;
  example_register(&s);
  assert_text("proxyfs.retryrpc", "1", example_text);
  assert_text("*", "*", example_text);
  assert_int_equal(bs_unregister("proxyfs.retryrpc", "1"), 0);
}

static void test_name_scrubbing(void **state) {
  (void)state;
  bs_total t = {0};
  bs_stat_desc d[] = {BS_DESC_TOTAL(&t, "RPCattempted")};
  assert_int_equal(bs_register("", "my group:x", d, 1), 0);
  bs_total_inc(&t);
  assert_text("", "my group:x", "my_group_x.RPCattempted total:1\n");
  assert_int_equal(bs_unregister("", "my group:x"), 0);

  /* pkg only; tab, newline, '*', '#', DEL, invalid UTF-8 and U+00A0 become
   * one '_' each; printable non-ASCII ("é") and '"' stay */
  bs_stat_desc d2[] = {BS_DESC_TOTAL(&t, "a\tb\nc*d#e\x7f" "f\xff" "g\xc2\xa0h\xc3\xa9\"")};
  assert_int_equal(bs_register("p k", "", d2, 1), 0);
  assert_text("p k", "", "p_k.a_b_c_d_e_f_g_h\xc3\xa9\" total:1\n");
  assert_int_equal(bs_unregister("p k", ""), 0);
}

static void test_empty_bucketed(void **state) {
  (void)state;
  bs_log2 a = {0};
  bs_logroot2 b = {0};
  bs_stat_desc d[] = {BS_DESC_LOG2(&a, "A"), BS_DESC_LOGROOT2(&b, "B")};
  assert_int_equal(bs_register("pkg", "grp", d, 2), 0);
  assert_text("pkg", "grp", "pkg.grp.A avg:0 count:0 total:0\npkg.grp.B avg:0 count:0 total:0\n");
  assert_int_equal(bs_unregister("pkg", "grp"), 0);
}

/* The last buckets, 2^63 in both kinds, and the saturated total. */
static void test_top_buckets(void **state) {
  (void)state;
  bs_log2 a = {0};
  bs_logroot2 b = {0};
  bs_stat_desc d[] = {BS_DESC_LOG2(&a, "A"), BS_DESC_LOGROOT2(&b, "B")};
  assert_int_equal(bs_register("top", "", d, 2), 0);
  bs_log2_add(&a, UINT64_MAX);
  bs_logroot2_add(&b, UINT64_MAX);
  assert_text("top", "",
              "top.A avg:12501992565580496895 count:1 total:12501992565580496895 2^63:1\n"
              "top.B avg:14735777980756262911 count:1 total:14735777980756262911 2^63:1\n");
  /* two of them overflow 64 bits: the total saturates, the average not */
  bs_log2_add(&a, UINT64_MAX);
  bs_logroot2_add(&b, (uint64_t)1 << 63); /* bucket 126: 2^62.5 */
  assert_text("top", "",
              "top.A avg:12501992565580496895 count:2 total:18446744073709551615 2^63:2\n"
              "top.B avg:12069647001352929279 count:2 total:18446744073709551615 2^62.5:1 "
              "2^63:1\n");
  assert_int_equal(bs_unregister("top", ""), 0);
}

static void test_nbucket_clamping(void **state) {
  (void)state;
  bs_log2 l0 = {0}, l1 = {.nbucket = 1}, l30 = {.nbucket = 30}, l99 = {.nbucket = 99};
  bs_logroot2 r0 = {0}, r1 = {.nbucket = 1}, r30 = {.nbucket = 30}, r200 = {.nbucket = 200};
  bs_stat_desc d[] = {
      BS_DESC_LOG2(&l0, "l0"),         BS_DESC_LOG2(&l1, "l1"),
      BS_DESC_LOG2(&l30, "l30"),       BS_DESC_LOG2(&l99, "l99"),
      BS_DESC_LOGROOT2(&r0, "r0"),     BS_DESC_LOGROOT2(&r1, "r1"),
      BS_DESC_LOGROOT2(&r30, "r30"),   BS_DESC_LOGROOT2(&r200, "r200"),
  };
  assert_int_equal(bs_register("clamp", "", d, 8), 0);
  assert_int_equal(l0.nbucket, 65);
  assert_int_equal(l1.nbucket, 10);
  assert_int_equal(l30.nbucket, 30);
  assert_int_equal(l99.nbucket, 65);
  assert_int_equal(r0.nbucket, 128);
  assert_int_equal(r1.nbucket, 17);
  assert_int_equal(r30.nbucket, 30);
  assert_int_equal(r200.nbucket, 128);

  /* A large value lands in the last bucket in use, which then stands for
   * everything up to 2^64-1: its mean is the midpoint of that range. */
  bs_log2_add(&l1, 1000000);
  bs_log2_add(&l1, 255);
  assert_int_equal(atomic_load(&l1.bucket[9]), 2);
  bs_logroot2_add(&r1, 1000000);
  bs_logroot2_add(&r1, 255);
  assert_int_equal(atomic_load(&r1.bucket[16]), 2);
  bs_stat_desc one_l[] = {BS_DESC_LOG2(&l1, "l1")};
  bs_stat_desc one_r[] = {BS_DESC_LOGROOT2(&r1, "r1")};
  assert_int_equal(bs_register("clamp", "l", one_l, 1), 0);
  assert_int_equal(bs_register("clamp", "r", one_r, 1), 0);
  /* l1 bucket 9: 182..2^64-1, mean 9223372036854775898; r1 bucket 16:
   * 216..2^64-1, mean 9223372036854775915 */
  assert_text("clamp", "l",
              "clamp.l.l1 avg:9223372036854775898 count:2 total:18446744073709551615 256:2\n");
  assert_text("clamp", "r",
              "clamp.r.r1 avg:9223372036854775915 count:2 total:18446744073709551615 256:2\n");

  /* and in Prometheus the clamped bucket is the +Inf one */
  char *out = sprint(BS_FORMAT_PROMETHEUS, "clamp", "l");
  assert_non_null(strstr(out, "clamp_l_l1_bucket{le=\"181\"} 0\n"
                              "clamp_l_l1_bucket{le=\"+Inf\"} 2\n"));
  free(out);
  assert_int_equal(bs_unregister("clamp", "l"), 0);
  assert_int_equal(bs_unregister("clamp", "r"), 0);
  assert_int_equal(bs_unregister("clamp", ""), 0);

  /* a refused registration leaves nbucket alone */
  bs_log2 keep = {.nbucket = 3};
  bs_stat_desc dk[] = {BS_DESC_LOG2(&keep, "keep"), BS_DESC_LOG2(&keep, "keep")};
  assert_int_equal(bs_register("clamp", "", dk, 2), -EINVAL);
  assert_int_equal(keep.nbucket, 3);
}

/* An add before registration (nbucket still 0) stays in bounds. */
static void test_add_before_register(void **state) {
  (void)state;
  bs_log2 a = {0};
  bs_logroot2 b = {0};
  bs_log2_add(&a, UINT64_MAX);
  bs_logroot2_add(&b, UINT64_MAX);
  assert_int_equal(atomic_load(&a.bucket[64]), 1);
  assert_int_equal(atomic_load(&b.bucket[127]), 1);
}

static void test_wildcards(void **state) {
  (void)state;
  bs_total t[5] = {{0}};
  bs_stat_desc d0[] = {BS_DESC_TOTAL(&t[0], "t")};
  bs_stat_desc d1[] = {BS_DESC_TOTAL(&t[1], "t")};
  bs_stat_desc d2[] = {BS_DESC_TOTAL(&t[2], "t")};
  bs_stat_desc d3[] = {BS_DESC_TOTAL(&t[3], "t")};
  bs_stat_desc d4[] = {BS_DESC_TOTAL(&t[4], "t")};
  /* registered out of order; printed sorted by (package, group) */
  assert_int_equal(bs_register("b", "g1", d0, 1), 0);
  assert_int_equal(bs_register("a", "g2", d1, 1), 0);
  assert_int_equal(bs_register("a", "g1", d2, 1), 0);
  assert_int_equal(bs_register("", "g1", d3, 1), 0);
  assert_int_equal(bs_register("a", "", d4, 1), 0);
  for (int i = 0; i < 5; i++)
    bs_total_add(&t[i], (uint64_t)i);

  assert_text("*", "*",
              "g1.t total:3\na.t total:4\na.g1.t total:2\na.g2.t total:1\nb.g1.t total:0\n");
  assert_text("a", "*", "a.t total:4\na.g1.t total:2\na.g2.t total:1\n");
  assert_text("*", "g1", "g1.t total:3\na.g1.t total:2\nb.g1.t total:0\n");
  assert_text("b", "g1", "b.g1.t total:0\n");

  char *out = (char *)1;
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, "*", "nope", &out), -ENOENT);
  assert_null(out);
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, "nope", "*", &out), -ENOENT);
  assert_int_equal(bs_sprint(BS_FORMAT_JSON, "b", "g2", &out), -ENOENT);
  assert_int_equal(bs_sprint(BS_FORMAT_PROMETHEUS, "c", "g1", &out), -ENOENT);

  assert_int_equal(bs_unregister("b", "g1"), 0);
  assert_int_equal(bs_unregister("a", "g2"), 0);
  assert_int_equal(bs_unregister("a", "g1"), 0);
  assert_int_equal(bs_unregister("", "g1"), 0);
  assert_int_equal(bs_unregister("a", ""), 0);

  /* nothing registered: all-wildcards prints nothing in each format */
  assert_text("*", "*", "");
  out = sprint(BS_FORMAT_JSON, "*", "*");
  assert_string_equal(out, "{}");
  free(out);
  out = sprint(BS_FORMAT_PROMETHEUS, "*", "*");
  assert_string_equal(out, "");
  free(out);
}

static void test_unregister(void **state) {
  (void)state;
  bs_total t = {0};
  bs_average a = {0};
  bs_stat_desc d[] = {BS_DESC_TOTAL(&t, "t")};
  bs_stat_desc d2[] = {BS_DESC_AVERAGE(&a, "a")};
  assert_int_equal(bs_register("u", "g", d, 1), 0);
  assert_int_equal(bs_unregister("u", "g"), 0);
  char *out = NULL;
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, "u", "g", &out), -ENOENT);
  assert_int_equal(bs_unregister("u", "g"), -ENOENT);
  /* the name is free again, for a different set of stats */
  assert_int_equal(bs_register("u", "g", d2, 1), 0);
  bs_average_add(&a, 7);
  assert_text("u", "g", "u.g.a avg:7 count:1 total:7\n");
  assert_int_equal(bs_unregister("u", "g"), 0);
  /* a group without stats is allowed and prints nothing */
  assert_int_equal(bs_register("u", "empty", NULL, 0), 0);
  assert_text("u", "empty", "");
  assert_int_equal(bs_unregister("u", "empty"), 0);
}

static void test_errors(void **state) {
  (void)state;
  bs_total t = {0}, t2 = {0};
  bs_stat_desc ok[] = {BS_DESC_TOTAL(&t, "t")};
  assert_int_equal(bs_register("e", "g", ok, 1), 0);
  assert_int_equal(bs_register("e", "g", ok, 1), -EEXIST);
  assert_int_equal(bs_register("", "", ok, 1), -EINVAL);
  assert_int_equal(bs_register(NULL, "g", ok, 1), -EINVAL);
  assert_int_equal(bs_register("e", NULL, ok, 1), -EINVAL);
  assert_int_equal(bs_register("e", "h", NULL, 1), -EINVAL);

  bs_stat_desc null_stat[] = {BS_DESC_TOTAL(NULL, "t")};
  assert_int_equal(bs_register("e", "h", null_stat, 1), -EINVAL);
  bs_stat_desc null_name[] = {BS_DESC_TOTAL(&t, NULL)};
  assert_int_equal(bs_register("e", "h", null_name, 1), -EINVAL);
  bs_stat_desc empty_name[] = {BS_DESC_TOTAL(&t, "")};
  assert_int_equal(bs_register("e", "h", empty_name, 1), -EINVAL);
  bs_stat_desc dup[] = {BS_DESC_TOTAL(&t, "x"), BS_DESC_TOTAL(&t2, "y"), BS_DESC_TOTAL(&t2, "x")};
  assert_int_equal(bs_register("e", "h", dup, 3), -EINVAL);
  bs_stat_desc bad_kind[] = {{"k", (bs_kind)42, &t}};
  assert_int_equal(bs_register("e", "h", bad_kind, 1), -EINVAL);
  /* none of the refused ones got in */
  char *out = NULL;
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, "e", "h", &out), -ENOENT);

  assert_int_equal(bs_unregister(NULL, "g"), -EINVAL);
  assert_int_equal(bs_unregister("e", "nope"), -ENOENT);
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, "e", "g", NULL), -EINVAL);
  assert_int_equal(bs_sprint(BS_FORMAT_TEXT, NULL, "g", &out), -EINVAL);
  assert_int_equal(bs_sprint((bs_format)9, "e", "g", &out), -EINVAL);
  assert_null(out);
  assert_int_equal(bs_unregister("e", "g"), 0);
}

/* ------------------------------------------------------------- concurrency */

#define THREADS 4
#define ADDS    100000

static example_stats shared;

static void *adder(void *arg) {
  (void)arg;
  for (uint64_t v = 0; v < ADDS; v++) {
    bs_total_add(&shared.RPCattempted, v);
    bs_average_add(&shared.Avg, v);
    bs_log2_add(&shared.ReplySize, v * 37);
    bs_logroot2_add(&shared.Lat, v * 37);
  }
  return NULL;
}

static void test_concurrent_adds(void **state) {
  (void)state;
  memset(&shared, 0, sizeof shared);
  const bs_stat_desc d[] = {
      BS_DESC_TOTAL(&shared.RPCattempted, "t"),
      BS_DESC_AVERAGE(&shared.Avg, "a"),
      BS_DESC_LOG2(&shared.ReplySize, "l"),
      BS_DESC_LOGROOT2(&shared.Lat, "r"),
  };
  assert_int_equal(bs_register("conc", "", d, 4), 0);
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, adder, NULL), 0);
  /* print while they add: the snapshot is consistent enough to parse */
  for (int i = 0; i < 20; i++) {
    char *out = sprint(i % 2 ? BS_FORMAT_JSON : BS_FORMAT_PROMETHEUS, "*", "*");
    assert_non_null(strstr(out, "conc"));
    free(out);
  }
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);

  uint64_t sum = (uint64_t)ADDS * (ADDS - 1) / 2;
  assert_int_equal(atomic_load(&shared.RPCattempted.total), THREADS * sum);
  assert_int_equal(atomic_load(&shared.Avg.total), THREADS * sum);
  assert_int_equal(atomic_load(&shared.Avg.count), THREADS * ADDS);

  /* each bucket holds exactly THREADS times what one thread put there */
  uint32_t l[BS_LOG2_MAX_BUCKETS] = {0}, r[BS_LOGROOT2_MAX_BUCKETS] = {0};
  for (uint64_t v = 0; v < ADDS; v++) {
    l[bs_log2_index(v * 37)] += THREADS;
    r[bs_logroot2_index(v * 37)] += THREADS;
  }
  for (unsigned i = 0; i < BS_LOG2_MAX_BUCKETS; i++)
    assert_int_equal(atomic_load(&shared.ReplySize.bucket[i]), l[i]);
  for (unsigned i = 0; i < BS_LOGROOT2_MAX_BUCKETS; i++)
    assert_int_equal(atomic_load(&shared.Lat.bucket[i]), r[i]);
  assert_int_equal(bs_unregister("conc", ""), 0);
}

/* --------------------------------------------------------- JSON, Prometheus */

static json_int_t json_int_at(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  assert_non_null(v);
  assert_true(json_is_integer(v));
  return json_integer_value(v);
}

static void test_json_parses_back(void **state) {
  (void)state;
  example_stats s;
  example_register(&s);
  char *out = sprint(BS_FORMAT_JSON, "proxyfs.retryrpc", "1");
  json_error_t err;
  json_t *root = json_loads(out, 0, &err);
  free(out);
  assert_non_null(root);
  assert_int_equal(json_object_size(root), 4);

  json_t *t = json_object_get(root, "proxyfs.retryrpc.1.RPCattempted");
  assert_int_equal(json_object_size(t), 1);
  assert_int_equal(json_int_at(t, "total"), 3);

  json_t *a = json_object_get(root, "proxyfs.retryrpc.1.Avg");
  assert_int_equal(json_object_size(a), 3);
  assert_int_equal(json_int_at(a, "avg"), 15);
  assert_int_equal(json_int_at(a, "count"), 2);
  assert_int_equal(json_int_at(a, "total"), 30);

  json_t *l = json_object_get(root, "proxyfs.retryrpc.1.ReplySize");
  assert_int_equal(json_int_at(l, "avg"), 8204);
  assert_int_equal(json_int_at(l, "count"), 10);
  assert_int_equal(json_int_at(l, "total"), 82043);
  json_t *lb = json_object_get(l, "buckets");
  assert_int_equal(json_object_size(lb), 18); /* "0" .. "2^16" */
  assert_int_equal(json_int_at(lb, "0"), 1);
  assert_int_equal(json_int_at(lb, "4"), 2);
  assert_int_equal(json_int_at(lb, "8"), 0);
  assert_int_equal(json_int_at(lb, "2^16"), 1);

  json_t *r = json_object_get(root, "proxyfs.retryrpc.1.Lat");
  assert_int_equal(json_int_at(r, "avg"), 7778);
  assert_int_equal(json_int_at(r, "total"), 77787);
  json_t *rb = json_object_get(r, "buckets");
  assert_int_equal(json_object_size(rb), 33); /* "0" .. "2^15.5" */
  assert_int_equal(json_int_at(rb, "2^9.5"), 1);
  assert_int_equal(json_int_at(rb, "2^15.5"), 1);
  assert_int_equal(json_int_at(rb, "724"), 0);

  /* keys keep the print order */
  const char *key;
  json_t *v;
  const char *order[] = {"proxyfs.retryrpc.1.RPCattempted", "proxyfs.retryrpc.1.Avg",
                         "proxyfs.retryrpc.1.ReplySize", "proxyfs.retryrpc.1.Lat"};
  size_t k = 0;
  json_object_foreach(root, key, v) {
    (void)v;
    assert_string_equal(key, order[k++]);
  }
  json_decref(root);
  assert_int_equal(bs_unregister("proxyfs.retryrpc", "1"), 0);

  /* beyond INT64_MAX values go out as JSON reals */
  bs_total big = {0};
  bs_stat_desc d[] = {BS_DESC_TOTAL(&big, "big")};
  assert_int_equal(bs_register("j", "", d, 1), 0);
  bs_total_add(&big, UINT64_MAX);
  out = sprint(BS_FORMAT_JSON, "j", "");
  root = json_loads(out, 0, &err);
  free(out);
  assert_non_null(root);
  json_t *bt = json_object_get(json_object_get(root, "j.big"), "total");
  assert_true(json_is_real(bt));
  assert_true(json_real_value(bt) == 18446744073709551616.0);
  json_decref(root);
  assert_int_equal(bs_unregister("j", ""), 0);
}

static void test_prometheus_example(void **state) {
  (void)state;
  example_stats s;
  example_register(&s);
  static const char *const expected[] = {
      "# TYPE proxyfs_retryrpc_1_RPCattempted_total counter",
      "proxyfs_retryrpc_1_RPCattempted_total 3",
      "# TYPE proxyfs_retryrpc_1_Avg summary",
      "proxyfs_retryrpc_1_Avg_sum 30",
      "proxyfs_retryrpc_1_Avg_count 2",
      "# TYPE proxyfs_retryrpc_1_ReplySize histogram",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"0\"} 1",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"1\"} 2",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"2\"} 3",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"5\"} 5",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"11\"} 5",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"22\"} 5",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"45\"} 5",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"90\"} 5",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"181\"} 6",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"363\"} 6",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"727\"} 6",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"1455\"} 7",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"2911\"} 8",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"5823\"} 8",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"11647\"} 9",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"23295\"} 9",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"46591\"} 9",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"93183\"} 10",
      "proxyfs_retryrpc_1_ReplySize_bucket{le=\"+Inf\"} 10",
      "proxyfs_retryrpc_1_ReplySize_sum 82043",
      "proxyfs_retryrpc_1_ReplySize_count 10",
      "# TYPE proxyfs_retryrpc_1_Lat histogram",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"0\"} 1",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"1\"} 2",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"2\"} 3",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"3\"} 4",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"4\"} 4",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"6\"} 5",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"9\"} 5",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"13\"} 5",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"19\"} 5",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"26\"} 5",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"38\"} 5",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"53\"} 5",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"76\"} 5",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"107\"} 6",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"152\"} 6",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"215\"} 6",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"305\"} 6",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"431\"} 6",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"611\"} 6",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"863\"} 6",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"1223\"} 7",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"1727\"} 8",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"2447\"} 8",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"3455\"} 8",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"4895\"} 8",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"6911\"} 8",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"9791\"} 9",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"13823\"} 9",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"19583\"} 9",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"27647\"} 9",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"39167\"} 9",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"55295\"} 9",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"78335\"} 10",
      "proxyfs_retryrpc_1_Lat_bucket{le=\"+Inf\"} 10",
      "proxyfs_retryrpc_1_Lat_sum 77787",
      "proxyfs_retryrpc_1_Lat_count 10",
  };
  char *out = sprint(BS_FORMAT_PROMETHEUS, "proxyfs.retryrpc", "1");
  size_t n = 0;
  char *save = NULL;
  for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    assert_true(n < sizeof expected / sizeof expected[0]);
    assert_string_equal(line, expected[n]);
    n++;
  }
  assert_int_equal(n, sizeof expected / sizeof expected[0]);
  free(out);
  assert_int_equal(bs_unregister("proxyfs.retryrpc", "1"), 0);

  /* names are sanitised to [a-zA-Z0-9_:], a leading digit gets a '_' */
  bs_total t = {0};
  bs_stat_desc d[] = {BS_DESC_TOTAL(&t, "x-y\xc3\xa9")};
  assert_int_equal(bs_register("", "9g", d, 1), 0);
  out = sprint(BS_FORMAT_PROMETHEUS, "", "9g");
  assert_string_equal(out, "# TYPE _9g_x_y___total counter\n_9g_x_y___total 0\n");
  free(out);
  assert_int_equal(bs_unregister("", "9g"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tables_equal_upstream),
      cmocka_unit_test(test_first_rows_from_spec),
      cmocka_unit_test(test_table_structure),
      cmocka_unit_test(test_index_matches_ranges),
      cmocka_unit_test(test_spec_example_text),
      cmocka_unit_test(test_name_scrubbing),
      cmocka_unit_test(test_empty_bucketed),
      cmocka_unit_test(test_top_buckets),
      cmocka_unit_test(test_nbucket_clamping),
      cmocka_unit_test(test_add_before_register),
      cmocka_unit_test(test_wildcards),
      cmocka_unit_test(test_unregister),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_concurrent_adds),
      cmocka_unit_test(test_json_parses_back),
      cmocka_unit_test(test_prometheus_example),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
