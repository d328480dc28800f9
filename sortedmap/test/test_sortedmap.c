/* sortedmap: byte-exact node vectors (ilayout.md TV7, TV8, TV9, TV14), the
 * decoder's rejections, and the API's contracts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "sm_test_store.h"
#include "sortedmap.h"

static size_t hex(const char *s, uint8_t *out) {
  size_t n = 0;
  while (*s) {
    if (*s == ' ' || *s == '\n') {
      s++;
      continue;
    }
    unsigned v;
    assert_int_equal(sscanf(s, "%2x", &v), 1);
    out[n++] = (uint8_t)v;
    s += 2;
  }
  return n;
}

static const char TV7[] = "00 00 00 00 00 00 00 00 01 01 00 08 00 00 00 00"
                          "00 00 00 00 00 00 00 00 00 00";
static const char TV8[] = "01 00 00 00 00 00 00 00 01 01 00 08 00 00 00 00"
                          "00 00 01 00 00 00 00 00 00 00 01 00 00 00 00 00"
                          "00 00 01 00 00 00 00 00 00 00 02 00 00 00 00 00"
                          "00 00 AE 00 00 00 00 00 00 00";
static const char TV9[] = "02 00 00 00 00 00 00 00 01 01 00 04 00 00 00 00"
                          "00 00 02 00 00 00 00 00 00 00 01 00 00 00 00 00"
                          "00 00 2E 01 00 00 00 00 00 00 00 00 02 00 00 00"
                          "00 00 00 00 2E 2E 01 00 00 00 00 00 00 00 00";
static const char TV14_LEFT[] = "02 00 00 00 00 00 00 00 00 01 02 00 00 00 00 00"
                                "00 00 01 00 00 00 00 00 00 00 01 00 00 00 00 00"
                                "00 00 01 01 00 00 00 00 00 00 A0 00 00 00 00 00"
                                "00 00 02 00 00 00 00 00 00 00 01 00 00 00 00 00"
                                "00 00 02 01 00 00 00 00 00 00 A0 00 00 00 00 00"
                                "00 00";
static const char TV14_RIGHT[] = "03 00 00 00 00 00 00 00 00 01 03 00 00 00 00 00"
                                 "00 00 03 00 00 00 00 00 00 00 01 00 00 00 00 00"
                                 "00 00 03 01 00 00 00 00 00 00 A0 00 00 00 00 00"
                                 "00 00 04 00 00 00 00 00 00 00 01 00 00 00 00 00"
                                 "00 00 04 01 00 00 00 00 00 00 A0 00 00 00 00 00"
                                 "00 00 05 00 00 00 00 00 00 00 01 00 00 00 00 00"
                                 "00 00 05 01 00 00 00 00 00 00 A0 00 00 00 00 00"
                                 "00 00";
static const char TV14_ROOT[] = "05 00 00 00 00 00 00 00 01 00 04 00 00 00 00 00"
                                "00 00 02 00 00 00 00 00 00 00 20 00 00 00 00 00"
                                "00 00 00 00 00 00 00 00 00 00 52 00 00 00 00 00"
                                "00 00 02 00 00 00 00 00 00 00 03 00 00 00 00 00"
                                "00 00 20 00 00 00 00 00 00 00 52 00 00 00 00 00"
                                "00 00 72 00 00 00 00 00 00 00 03 00 00 00 00 00"
                                "00 00";

/* InodeTableEntryValueV1 {version 1, object, length} (ilayout TV4). */
static void itv(uint8_t v[24], uint64_t obj, uint64_t len) {
  uint64_t f[3] = {1, obj, len};
  for (int i = 0; i < 24; i++) v[i] = (uint8_t)(f[i / 8] >> (8 * (i % 8)));
}

static void expect_object(sm_test_store *s, uint64_t obj, const char *hexstr) {
  uint8_t want[512];
  size_t n = hex(hexstr, want);
  assert_true(obj < s->nobj);
  assert_int_equal(s->obj[obj].len, n);
  assert_memory_equal(s->obj[obj].p, want, n);
}

static void test_tv7_empty_extent_map(void **state) {
  sm_test_store s;
  sm_test_store_init(&s, 7);
  sm_config cfg = sm_test_cfg_u64(&s, 24);
  sm_tree *t;
  assert_int_equal(sm_create(&cfg, NULL, 2048, &t), 0);
  sm_ref root;
  assert_int_equal(sm_flush(t, &root), 0);
  assert_int_equal(root.object_number, 7);
  assert_int_equal(root.object_offset, 0);
  assert_int_equal(root.object_length, 26);
  expect_object(&s, 7, TV7);
  /* flushing a clean tree writes nothing */
  assert_int_equal(sm_flush(t, &root), 0);
  assert_int_equal(s.writes, 1);
  sm_destroy(t);

  assert_int_equal(sm_open(&cfg, NULL, &root, &t, NULL, 0), 0);
  uint64_t n = 99;
  assert_int_equal(sm_len(t, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(sm_max_keys(t), 2048);
  assert_int_equal(sm_validate(t), 0);
  sm_destroy(t);
  sm_test_store_free(&s);
}

static void test_tv8_inode_table_root(void **state) {
  sm_test_store s;
  sm_test_store_init(&s, 3);
  sm_config cfg = sm_test_cfg_u64(&s, 24);
  sm_tree *t;
  assert_int_equal(sm_create(&cfg, NULL, 2048, &t), 0);
  uint64_t ino = 1;
  uint8_t v[24];
  itv(v, 2, 174);
  assert_int_equal(sm_insert(t, &ino, 8, v, 24), 0);
  sm_ref root;
  assert_int_equal(sm_flush(t, &root), 0);
  assert_int_equal(root.object_length, 58);
  expect_object(&s, 3, TV8);
  sm_destroy(t);

  /* decode the vector itself */
  sm_test_store d;
  sm_test_store_init(&d, 3);
  uint8_t b[64];
  size_t n = hex(TV8, b);
  cfg = sm_test_cfg_u64(&d, 24);
  root = sm_test_store_put(&d, 3, b, n);
  assert_int_equal(sm_open(&cfg, NULL, &root, &t, NULL, 0), 0);
  uint8_t got[24];
  size_t glen = 0;
  assert_int_equal(sm_get(t, &ino, 8, got, sizeof got, &glen), 0);
  assert_int_equal(glen, 24);
  assert_memory_equal(got, v, 24);
  sm_destroy(t);
  sm_test_store_free(&d);
  sm_test_store_free(&s);
}

static void test_tv9_root_directory(void **state) {
  sm_test_store s;
  sm_test_store_init(&s, 2);
  sm_config cfg = sm_test_cfg_dir(&s);
  sm_tree *t;
  assert_int_equal(sm_create(&cfg, NULL, 1024, &t), 0);
  uint8_t dir[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0}; /* TV5: inode 1, Dir (type 0) */
  /* inserted out of order on purpose: the node keeps "." before ".." */
  assert_int_equal(sm_insert(t, "..", 2, dir, 9), 0);
  assert_int_equal(sm_insert(t, ".", 1, dir, 9), 0);
  sm_ref root;
  assert_int_equal(sm_flush(t, &root), 0);
  assert_int_equal(root.object_length, 63);
  expect_object(&s, 2, TV9);
  sm_destroy(t);

  assert_int_equal(sm_open(&cfg, NULL, &root, &t, NULL, 0), 0);
  char name[8];
  size_t nl;
  assert_int_equal(sm_get_by_index(t, 1, name, sizeof name, &nl, NULL, 0, NULL), 0);
  assert_int_equal(nl, 2);
  assert_memory_equal(name, "..", 2);
  assert_int_equal(sm_validate(t), 0);
  sm_destroy(t);
  sm_test_store_free(&s);
}

static sm_tree *build_tv14(sm_test_store *s, sm_config *cfg, sm_ref *root) {
  sm_test_store_init(s, 0x20);
  *cfg = sm_test_cfg_u64(s, 24);
  sm_tree *t;
  assert_int_equal(sm_create(cfg, NULL, 4, &t), 0);
  for (uint64_t k = 1; k <= 5; k++) {
    uint8_t v[24];
    itv(v, 0x100 + k, 0xA0);
    assert_int_equal(sm_insert(t, &k, 8, v, 24), 0);
  }
  assert_int_equal(sm_validate(t), 0);
  assert_int_equal(sm_flush(t, root), 0);
  return t;
}

static void test_tv14_two_levels(void **state) {
  sm_test_store s;
  sm_config cfg;
  sm_ref root;
  sm_tree *t = build_tv14(&s, &cfg, &root);
  assert_int_equal(root.object_number, 0x20);
  assert_int_equal(root.object_offset, 196);
  assert_int_equal(root.object_length, 98);
  char all[3000];
  snprintf(all, sizeof all, "%s%s%s", TV14_LEFT, TV14_RIGHT, TV14_ROOT);
  expect_object(&s, 0x20, all);
  assert_int_equal(s.obj[0x20].len, 294);
  assert_int_equal(sm_test_store_check(&s, t), 0);
  sm_ref rr = sm_root_ref(t);
  assert_memory_equal(&rr, &root, sizeof rr);
  char *text = NULL;
  size_t tlen = 0;
  FILE *f = open_memstream(&text, &tlen);
  assert_non_null(f);
  assert_int_equal(sm_dump(t, f), 0);
  fclose(f);
  /* the root, the separator 3 and the item 5 of the right leaf */
  assert_non_null(strstr(text, "node clean items=5 ref=(32,196,98)"));
  assert_non_null(strstr(text, "sep 0300000000000000"));
  assert_non_null(strstr(text, "item 0500000000000000 = 0100000000000000050100"));
  free(text);
  sm_destroy(t);

  /* reload from the written bytes: 5 items, lazily loaded */
  uint64_t reads = s.reads;
  assert_int_equal(sm_open(&cfg, NULL, &root, &t, NULL, 0), 0);
  assert_int_equal(s.reads, reads + 1);
  uint64_t n;
  assert_int_equal(sm_len(t, &n), 0);
  assert_int_equal(n, 5);
  for (uint64_t k = 1; k <= 5; k++) {
    uint8_t v[24], want[24];
    itv(want, 0x100 + k, 0xA0);
    assert_int_equal(sm_get(t, &k, 8, v, sizeof v, NULL), 0);
    assert_memory_equal(v, want, 24);
  }
  assert_int_equal(s.reads, reads + 3);
  assert_int_equal(sm_validate(t), 0);
  sm_destroy(t);
  sm_test_store_free(&s);
}

/* ---- decoder rejections ---- */

static int open_bytes(const uint8_t *b, size_t n, uint64_t obj_len_override) {
  sm_test_store s;
  sm_test_store_init(&s, 1);
  sm_config cfg = sm_test_cfg_u64(&s, 24);
  sm_ref r = sm_test_store_put(&s, 1, b, n);
  if (obj_len_override) r.object_length = obj_len_override;
  sm_tree *t = NULL;
  char err[160] = "";
  int rc = sm_open(&cfg, NULL, &r, &t, err, sizeof err);
  if (rc == 0) {
    /* walk everything: lazily loaded children must fail the same way */
    rc = sm_validate(t);
    sm_destroy(t);
  } else {
    assert_true(err[0] != 0 || rc == -EIO);
  }
  sm_test_store_free(&s);
  return rc;
}

static void test_decode_truncations(void **state) {
  uint8_t b[128];
  size_t n = hex(TV8, b);
  assert_int_equal(open_bytes(b, n, 0), 0);
  for (size_t len = 0; len < n; len++) assert_int_equal(open_bytes(b, len, 0), -EINVAL);
  uint8_t longer[129];
  memcpy(longer, b, n);
  longer[n] = 0;
  assert_int_equal(open_bytes(longer, n + 1, 0), -EINVAL); /* trailing byte */
  /* the reference claims more than the object holds: read error */
  assert_int_equal(open_bytes(b, n, n + 8), -EIO);
}

static void test_decode_header_fields(void **state) {
  uint8_t b[128];
  size_t n = hex(TV8, b);
  uint8_t c[128];
  /* maxKeys odd, too small, too large */
  uint64_t bad_max[] = {3, 2, 0, 2049, (uint64_t)1 << 40};
  for (size_t i = 0; i < sizeof bad_max / sizeof *bad_max; i++) {
    memcpy(c, b, n);
    for (int j = 0; j < 8; j++) c[10 + j] = (uint8_t)(bad_max[i] >> (8 * j));
    assert_int_equal(open_bytes(c, n, 0), -EINVAL);
  }
  /* root without the Root flag */
  memcpy(c, b, n);
  c[8] = 0;
  assert_int_equal(open_bytes(c, n, 0), -EINVAL);
  /* Items disagrees with N */
  memcpy(c, b, n);
  c[0] = 2;
  assert_int_equal(open_bytes(c, n, 0), -EINVAL);
  /* a huge N must fail without allocating for it */
  memcpy(c, b, n);
  memset(c + 18, 0xff, 8);
  assert_int_equal(open_bytes(c, n, 0), -EINVAL);
  /* any non-zero flag byte reads as true */
  memcpy(c, b, n);
  c[8] = 0x7f;
  c[9] = 0x80;
  assert_int_equal(open_bytes(c, n, 0), 0);
}

static void test_decode_directory_lengths(void **state) {
  uint8_t b[128];
  size_t n = hex(TV9, b);
  sm_test_store s;
  sm_test_store_init(&s, 1);
  sm_config cfg = sm_test_cfg_dir(&s);
  /* name length pointing past the end; then duplicate and unsorted names */
  uint8_t c[128];
  int cases = 0;
  for (int k = 0; k < 3; k++) {
    memcpy(c, b, n);
    if (k == 0) memset(c + 26, 0xee, 8);
    if (k == 1) c[54] = 0x2E, c[46] = 1, memmove(c + 54, c + 55, 8), c[62] = 0; /* ".." -> "." */
    if (k == 2) c[34] = 0x2F;                                         /* "/" > ".." */
    sm_ref r = sm_test_store_put(&s, 1, c, n);
    sm_tree *t;
    int rc = sm_open(&cfg, NULL, &r, &t, NULL, 0);
    if (rc == 0) sm_destroy(t);
    assert_int_equal(rc, -EINVAL);
    cases++;
  }
  assert_int_equal(cases, 3);
  sm_test_store_free(&s);
}

static void put_le(uint8_t *p, uint64_t v) {
  for (int j = 0; j < 8; j++) p[j] = (uint8_t)(v >> (8 * j));
}

/* Reopen the TV14 tree after patching 8 bytes of object 0x20, and walk it. */
static int open_patched(sm_test_store *s, sm_config *cfg, sm_ref *root, size_t at,
                        uint64_t v) {
  uint8_t *o = s->obj[0x20].p, save[8];
  memcpy(save, o + at, 8);
  put_le(o + at, v);
  sm_tree *t;
  int rc = sm_open(cfg, NULL, root, &t, NULL, 0);
  if (rc == 0) {
    rc = sm_validate(t);
    sm_destroy(t);
  }
  memcpy(o + at, save, 8);
  return rc;
}

/* Internal nodes: Items that do not add up, bad ChildRefs, a child that
 * is the root again (a cycle), and a chain deeper than SM_MAX_DEPTH. */
static void test_decode_child_refs(void **state) {
  sm_test_store s;
  sm_config cfg;
  sm_ref root;
  sm_tree *t = build_tv14(&s, &cfg, &root);
  sm_destroy(t);
  const size_t R = 196; /* the root node in object 0x20 */
  assert_int_equal(open_patched(&s, &cfg, &root, R, 5), 0);
  assert_int_equal(open_patched(&s, &cfg, &root, R + 0, 6), -EINVAL);  /* Items 6 != 2+3 */
  assert_int_equal(open_patched(&s, &cfg, &root, R + 42, 0), -EINVAL); /* child length 0 */
  assert_int_equal(open_patched(&s, &cfg, &root, R + 42, (uint64_t)1 << 40), -EINVAL);
  assert_int_equal(open_patched(&s, &cfg, &root, R + 18, 1), -EINVAL);  /* one child */
  assert_int_equal(open_patched(&s, &cfg, &root, R + 18, 3), -EINVAL);  /* 3 children */
  /* child 0 claims 3 items and the root 6: the leaf says 2 */
  uint8_t *o = s.obj[0x20].p;
  put_le(o + R, 6);
  assert_int_equal(open_patched(&s, &cfg, &root, R + 50, 3), -EINVAL);
  put_le(o + R, 5);
  /* separator 3 -> 2: the left leaf's key 2 is no longer below it */
  assert_int_equal(open_patched(&s, &cfg, &root, R + 58, 2), -EINVAL);
  /* child 0 is the root itself: it carries the Root flag */
  put_le(o + R + 34, R);
  put_le(o + R + 42, 98);
  put_le(o + R + 50, 5);
  put_le(o + R, 8);
  assert_int_equal(sm_open(&cfg, NULL, &root, &t, NULL, 0), 0);
  uint64_t k = 1;
  assert_int_equal(sm_get(t, &k, 8, NULL, 0, NULL), -EINVAL);
  assert_non_null(strstr(sm_error_detail(t), "Root flag"));
  sm_destroy(t);
  sm_test_store_free(&s);

  /* 40 internal nodes, each the child 0 of the one before: node i at
   * offset 90*(i-1) of object 9 (the root, node 0, after them) */
  enum { CHAIN = 40 };
  sm_test_store_init(&s, 9);
  cfg = sm_test_cfg_u64(&s, 24);
  uint8_t nd[98];
  for (int i = 1; i <= CHAIN; i++) {
    size_t n = 0;
    uint64_t items = 2 * (uint64_t)(CHAIN - i) + 4;
    put_le(nd, items);
    nd[8] = 0;
    nd[9] = 0;
    n = 10;
    put_le(nd + n, 2), n += 8;
    uint64_t f[] = {9, 90 * (uint64_t)i, 90, items - 2, 1000 - (uint64_t)i, 7, 0, 64, 2};
    for (int j = 0; j < 9; j++) put_le(nd + n, f[j]), n += 8;
    assert_int_equal(n, 90);
    sm_test_store_put(&s, 9, nd, n);
  }
  uint64_t items0 = 2 * (CHAIN - 1) + 4; /* node 1 */
  size_t n = 0;
  put_le(nd, items0 + 2);
  nd[8] = 1;
  nd[9] = 0;
  n = 10;
  put_le(nd + n, 4), n += 8;
  put_le(nd + n, 2), n += 8;
  uint64_t f0[] = {9, 0, 90, items0, 1000, 7, 0, 64, 2};
  for (int j = 0; j < 9; j++) put_le(nd + n, f0[j]), n += 8;
  assert_int_equal(n, 98);
  root = sm_test_store_put(&s, 9, nd, n);
  assert_int_equal(sm_open(&cfg, NULL, &root, &t, NULL, 0), 0);
  k = 0;
  assert_int_equal(sm_get(t, &k, 8, NULL, 0, NULL), -EINVAL);
  assert_non_null(strstr(sm_error_detail(t), "deeper"));
  sm_destroy(t);
  sm_test_store_free(&s);
}

/* ---- API contracts ---- */

static void test_api_basics(void **state) {
  sm_test_store s;
  sm_test_store_init(&s, 1);
  sm_config cfg = sm_test_cfg_u64(&s, 8);
  sm_tree *t;
  assert_int_equal(sm_create(&cfg, NULL, 3, &t), -EINVAL);
  assert_int_equal(sm_create(&cfg, NULL, 2, &t), -EINVAL);
  assert_int_equal(sm_create(&cfg, NULL, 4, &t), 0);
  for (uint64_t k = 10; k <= 100; k += 10) assert_int_equal(sm_insert(t, &k, 8, &k, 8), 0);
  uint64_t k = 50, v = 0;
  assert_int_equal(sm_insert(t, &k, 8, &k, 8), -EEXIST);
  assert_int_equal(sm_insert(t, &k, 4, &k, 8), -EINVAL); /* u64 key of 4 bytes */
  assert_int_equal(sm_insert(t, &k, 8, &k, 7), -EINVAL); /* fixed value of 7 */
  k = 55;
  assert_int_equal(sm_put(t, &k, 8, &k, 8), -ENOENT);
  assert_int_equal(sm_delete(t, &k, 8), -ENOENT);
  assert_int_equal(sm_get(t, &k, 8, &v, 8, NULL), -ENOENT);
  k = 50;
  v = 5000;
  assert_int_equal(sm_put(t, &k, 8, &v, 8), 0);
  v = 0;
  size_t vl = 0;
  uint8_t small[4];
  assert_int_equal(sm_get(t, &k, 8, small, sizeof small, &vl), -ERANGE);
  assert_int_equal(vl, 8);
  assert_int_equal(sm_get(t, &k, 8, &v, 8, NULL), 0);
  assert_int_equal(v, 5000);

  /* bisect: Go semantics */
  int64_t idx;
  bool found;
  k = 50;
  assert_int_equal(sm_bisect_left(t, &k, 8, &idx, &found), 0);
  assert_true(found);
  assert_int_equal(idx, 4);
  k = 55;
  assert_int_equal(sm_bisect_left(t, &k, 8, &idx, &found), 0);
  assert_false(found);
  assert_int_equal(idx, 4);
  assert_int_equal(sm_bisect_right(t, &k, 8, &idx, &found), 0);
  assert_int_equal(idx, 5);
  k = 5;
  assert_int_equal(sm_bisect_left(t, &k, 8, &idx, &found), 0);
  assert_int_equal(idx, -1);
  k = 500;
  assert_int_equal(sm_bisect_right(t, &k, 8, &idx, &found), 0);
  assert_int_equal(idx, 10);

  /* by index */
  uint64_t key = 0;
  assert_int_equal(sm_get_by_index(t, 9, &key, 8, NULL, &v, 8, NULL), 0);
  assert_int_equal(key, 100);
  assert_int_equal(sm_get_by_index(t, 10, &key, 8, NULL, &v, 8, NULL), -ENOENT);
  v = 7;
  assert_int_equal(sm_put_by_index(t, 0, &v, 8), 0);
  k = 10;
  assert_int_equal(sm_get(t, &k, 8, &v, 8, NULL), 0);
  assert_int_equal(v, 7);
  assert_int_equal(sm_delete_by_index(t, 0), 0);
  assert_int_equal(sm_get(t, &k, 8, &v, 8, NULL), -ENOENT);

  /* cursor from index 2, with a change in the middle */
  sm_cursor c;
  sm_cursor_init(&c, t, 2);
  uint64_t seen[16];
  int ns = 0;
  while (sm_cursor_next(&c, &key, 8, NULL, NULL, 0, NULL) == 0) {
    seen[ns++] = key;
    if (key == 60) {
      k = 40; /* deleting before the cursor shifts positions by one */
      assert_int_equal(sm_delete(t, &k, 8), 0);
    }
  }
  assert_int_equal(ns, 6);
  assert_int_equal(seen[5], 100);
  assert_int_equal(seen[0], 40);
  assert_int_equal(seen[1], 50);
  assert_int_equal(seen[2], 60);
  assert_int_equal(seen[3], 80); /* 70 moved to the index already read */
  assert_int_equal(seen[4], 90);
  assert_int_equal(sm_validate(t), 0);
  sm_destroy(t);
  sm_test_store_free(&s);
}

static void test_flush_failure_and_retry(void **state) {
  sm_test_store s;
  sm_test_store_init(&s, 1);
  sm_config cfg = sm_test_cfg_u64(&s, 8);
  sm_tree *t;
  assert_int_equal(sm_create(&cfg, NULL, 4, &t), 0);
  for (uint64_t k = 0; k < 40; k++) assert_int_equal(sm_insert(t, &k, 8, &k, 8), 0);
  s.fail_writes_after = 3;
  sm_ref root;
  assert_int_equal(sm_flush(t, &root), -EIO);
  /* the written nodes are dirty again: a retry writes everything */
  assert_int_equal(sm_validate(t), 0);
  s.fail_writes_after = -1;
  sm_test_store_next_object(&s);
  uint64_t before = s.writes;
  assert_int_equal(sm_flush(t, &root), 0);
  assert_true(s.writes - before > 3);
  assert_int_equal(sm_validate(t), 0);
  /* the failed flush's 3 nodes were never referenced: mark them as the
   * owner would (it drops that output) */
  for (size_t j = 0; j < s.obj[1].next; j++) s.obj[1].ext[j].state = 2;
  assert_int_equal(sm_test_store_check(&s, t), 0);
  sm_destroy(t);
  sm_test_store_free(&s);
}

static void test_read_failure_leaves_tree_intact(void **state) {
  sm_test_store s;
  sm_config cfg;
  sm_ref root;
  sm_tree *t = build_tv14(&s, &cfg, &root);
  assert_int_equal(sm_drop_clean(t), 0);
  s.fail_reads = 1;
  uint64_t k = 3, v[3];
  assert_int_equal(sm_get(t, &k, 8, v, sizeof v, NULL), -EIO);
  assert_int_equal(sm_delete(t, &k, 8), -EIO);
  s.fail_reads = 0;
  /* a delete whose rebalance needs a sibling: reads fail before any change */
  assert_int_equal(sm_get(t, &k, 8, v, sizeof v, NULL), 0); /* loads root + right */
  k = 1;
  s.fail_reads = 1;
  assert_int_equal(sm_delete(t, &k, 8), -EIO);
  s.fail_reads = 0;
  assert_int_equal(sm_validate(t), 0);
  uint64_t n;
  assert_int_equal(sm_len(t, &n), 0);
  assert_int_equal(n, 5);
  sm_destroy(t);
  sm_test_store_free(&s);
}

static void test_touch_prune_discard(void **state) {
  sm_test_store s;
  sm_config cfg;
  sm_ref root;
  sm_tree *t = build_tv14(&s, &cfg, &root);
  assert_int_equal(sm_pending_discards(t), 0);
  /* touching one item rewrites its leaf and the root */
  uint64_t next;
  assert_int_equal(sm_touch_item(t, 3, &next), 0);
  assert_int_equal(next, 5);
  assert_int_equal(sm_pending_discards(t), 2);
  assert_int_equal(sm_touch_item(t, 99, &next), 0); /* wraps to 0 */
  assert_int_equal(next, 2);
  assert_int_equal(sm_pending_discards(t), 3);
  sm_test_store_next_object(&s);
  assert_int_equal(sm_flush(t, &root), 0);
  assert_int_equal(root.object_number, 0x21);
  assert_int_equal(sm_test_store_check(&s, t), 0);
  assert_int_equal(s.discards, 3);
  /* touch everything: the next flush rewrites every node */
  assert_int_equal(sm_touch(t), 0);
  sm_test_store_next_object(&s);
  uint64_t w = s.writes;
  assert_int_equal(sm_flush(t, &root), 0);
  assert_int_equal(s.writes - w, 3);
  assert_int_equal(sm_test_store_check(&s, t), 0);
  /* discard reports every live node, without loading the leaves */
  assert_int_equal(sm_drop_clean(t), 0);
  uint64_t reads = s.reads, d = s.discards;
  assert_int_equal(sm_discard(t), 0);
  assert_int_equal(s.discards - d, 3);
  assert_int_equal(s.reads - reads, 1);
  assert_int_equal(s.bad_discards, 0);
  uint64_t n;
  assert_int_equal(sm_len(t, &n), -EINVAL);
  sm_destroy(t);
  sm_test_store_free(&s);
}

static void test_cache_bounds(void **state) {
  sm_test_store s;
  sm_test_store_init(&s, 1);
  sm_config cfg = sm_test_cfg_u64(&s, 8);
  sm_cache *c = sm_cache_create(8, 10, 0);
  sm_tree *a, *b;
  assert_int_equal(sm_create(&cfg, c, 4, &a), 0);
  assert_int_equal(sm_create(&cfg, c, 4, &b), 0);
  for (uint64_t k = 0; k < 300; k++) {
    assert_int_equal(sm_insert(a, &k, 8, &k, 8), 0);
    assert_int_equal(sm_insert(b, &k, 8, &k, 8), 0);
  }
  sm_cache_stats st;
  sm_cache_stats_get(c, &st);
  assert_int_equal(st.clean_nodes, 0); /* all dirty: nothing evictable */
  assert_true(st.dirty_nodes > 100);
  sm_ref ra, rb;
  assert_int_equal(sm_flush(a, &ra), 0);
  assert_int_equal(sm_flush(b, &rb), 0);
  /* the flush made them clean; the next operation evicts down to low */
  uint64_t k = 7, v;
  assert_int_equal(sm_get(a, &k, 8, &v, 8, NULL), 0);
  sm_cache_stats_get(c, &st);
  assert_true(st.clean_nodes + st.dirty_nodes <= 8);
  assert_true(st.evictions > 0);
  /* everything is still there, loaded again on demand */
  for (k = 0; k < 300; k++) {
    assert_int_equal(sm_get(a, &k, 8, &v, 8, NULL), 0);
    assert_int_equal(v, k);
    assert_int_equal(sm_get(b, &k, 8, &v, 8, NULL), 0);
    sm_cache_stats_get(c, &st);
    assert_true(st.clean_nodes + st.dirty_nodes <= 10);
  }
  assert_int_equal(sm_validate(a), 0);
  assert_int_equal(sm_validate(b), 0);
  sm_cache_stats_get(c, &st);
  assert_true(st.misses > 0 && st.hits > 0);
  /* a byte cap alone also bounds the cache */
  sm_cache_set_limits(c, 0, 0, 2000);
  assert_int_equal(sm_get(b, &k, 8, &v, 8, NULL), -ENOENT);
  sm_cache_stats_get(c, &st);
  assert_true(st.bytes <= 2000);
  sm_destroy(a);
  sm_destroy(b);
  sm_cache_stats_get(c, &st);
  assert_int_equal(st.clean_nodes + st.dirty_nodes, 0);
  assert_int_equal(st.bytes, 0);
  sm_cache_destroy(c);
  sm_test_store_free(&s);
}

static int rev_cmp(void *ctx, const void *a, size_t al, const void *b, size_t bl) {
  return -sm_compare_bytes(a, al, b, bl);
}

/* A custom codec: one length byte then the bytes. */
static int pack1(void *ctx, const void *m, size_t len, sm_buf *out) {
  if (len > 255) return -EINVAL;
  uint8_t l = (uint8_t)len;
  int rc = sm_buf_put(out, &l, 1);
  return rc ? rc : sm_buf_put(out, m, len);
}
static int unpack1(void *ctx, const uint8_t *src, size_t avail, size_t *used, sm_buf *out) {
  if (avail < 1 || src[0] > avail - 1) return -EINVAL;
  *used = 1 + (size_t)src[0];
  return sm_buf_put(out, src + 1, src[0]);
}

static void test_custom_codec_and_compare(void **state) {
  sm_test_store s;
  sm_test_store_init(&s, 1);
  sm_config cfg = sm_test_cfg_dir(&s);
  cfg.compare = rev_cmp;
  cfg.value.kind = SM_CODEC_CUSTOM;
  cfg.value.pack = pack1;
  cfg.value.unpack = unpack1;
  sm_tree *t;
  assert_int_equal(sm_create(&cfg, NULL, 4, &t), 0);
  const char *names[] = {"a", "b", "c", "d", "e", "f", "g"};
  for (int i = 0; i < 7; i++) assert_int_equal(sm_insert(t, names[i], 1, "0123456", (size_t)i), 0);
  sm_ref root;
  assert_int_equal(sm_flush(t, &root), 0);
  sm_destroy(t);
  assert_int_equal(sm_open(&cfg, NULL, &root, &t, NULL, 0), 0);
  char k[4], v[8];
  size_t kl, vl;
  assert_int_equal(sm_get_by_index(t, 0, k, sizeof k, &kl, v, sizeof v, &vl), 0);
  assert_int_equal(k[0], 'g'); /* reversed order */
  assert_int_equal(vl, 6);
  assert_int_equal(sm_validate(t), 0);
  sm_destroy(t);
  cfg.value.unpack = NULL;
  assert_int_equal(sm_create(&cfg, NULL, 4, &t), -EINVAL);
  sm_test_store_free(&s);
}

/* Two threads, each with its own tree and store, sharing one small cache:
 * eviction crosses trees (try-locking the other tree) while both work. */
typedef struct thread_arg {
  sm_cache *cache;
  uint64_t seed;
  int failures;
} thread_arg;

static void *tree_worker(void *p) {
  thread_arg *a = p;
  sm_test_store s;
  sm_test_store_init(&s, 1);
  sm_config cfg = sm_test_cfg_u64(&s, 8);
  sm_tree *t;
  if (sm_create(&cfg, a->cache, 4, &t)) {
    a->failures++;
    return NULL;
  }
  sm_ref root;
  for (uint64_t round = 0; round < 40; round++) {
    for (uint64_t i = 0; i < 200; i++) {
      uint64_t k = (i * 7 + round * 13 + a->seed) % 500, v = k * 3;
      int rc = sm_insert(t, &k, 8, &v, 8);
      if (rc && rc != -EEXIST) a->failures++;
    }
    if (sm_flush(t, &root) || sm_prune(t)) a->failures++;
    for (uint64_t k = 0; k < 500; k += 3) {
      uint64_t v;
      int rc = sm_get(t, &k, 8, &v, 8, NULL);
      if ((rc && rc != -ENOENT) || (!rc && v != k * 3)) a->failures++;
      if (!rc && k % 2 && sm_delete(t, &k, 8)) a->failures++;
    }
  }
  if (sm_validate(t) || sm_test_store_check(&s, t)) a->failures++;
  sm_destroy(t);
  sm_test_store_free(&s);
  return NULL;
}

static void test_threads_share_cache(void **state) {
  sm_cache *c = sm_cache_create(8, 16, 0);
  thread_arg a[2] = {{c, 1, 0}, {c, 2, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, tree_worker, &a[i]), 0);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  assert_int_equal(a[0].failures, 0);
  assert_int_equal(a[1].failures, 0);
  sm_cache_stats st;
  sm_cache_stats_get(c, &st);
  assert_true(st.evictions > 0);
  assert_int_equal(st.clean_nodes + st.dirty_nodes, 0);
  sm_cache_destroy(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tv7_empty_extent_map),
      cmocka_unit_test(test_tv8_inode_table_root),
      cmocka_unit_test(test_tv9_root_directory),
      cmocka_unit_test(test_tv14_two_levels),
      cmocka_unit_test(test_decode_truncations),
      cmocka_unit_test(test_decode_header_fields),
      cmocka_unit_test(test_decode_directory_lengths),
      cmocka_unit_test(test_decode_child_refs),
      cmocka_unit_test(test_api_basics),
      cmocka_unit_test(test_flush_failure_and_retry),
      cmocka_unit_test(test_read_failure_leaves_tree_intact),
      cmocka_unit_test(test_touch_prune_discard),
      cmocka_unit_test(test_cache_bounds),
      cmocka_unit_test(test_custom_codec_and_compare),
      cmocka_unit_test(test_threads_share_cache),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
