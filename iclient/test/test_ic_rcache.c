/* Read cache: multi-line objects read back exactly at every offset (the
 * original's line-offset bug, iclient.md 5.2), the line cap, failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ic_internal.h"
#include "ic_test_doubles.h"

#define OBJ 0x1234
#define OBJ_LEN 1000

static uint8_t pattern(uint64_t obj, uint64_t i) { return (uint8_t)(obj * 7 + i * 13 + (i >> 8)); }

static void fill_store(ic_mem_store *s, uint64_t obj, size_t len) {
  uint8_t *b = malloc(len);
  assert_non_null(b);
  for (size_t i = 0; i < len; i++) b[i] = pattern(obj, i);
  assert_int_equal(ic_mem_store_add(s, obj, b, len), 0);
  free(b);
}

static void test_every_offset(void **state) {
  (void)state;
  ic_mem_store s;
  ic_mem_store_init(&s);
  fill_store(&s, OBJ, OBJ_LEN);
  ic_rcache *rc;
  /* 64-byte lines: an object spans 16 lines, the last one short. */
  assert_int_equal(ic_rcache_create(&ic_mem_store_ops, &s, 64, 4, 0, 0, &rc), 0);
  uint8_t buf[300];
  for (uint64_t off = 0; off < OBJ_LEN; off += 37) {
    for (uint64_t len = 1; len <= 300 && off + len <= OBJ_LEN; len += 61) {
      memset(buf, 0xEE, sizeof(buf));
      assert_int_equal(ic_rcache_read(rc, OBJ, off, len, buf), 0);
      for (uint64_t i = 0; i < len; i++) assert_int_equal(buf[i], pattern(OBJ, off + i));
    }
  }
  ic_rcache_stats st;
  ic_rcache_stats_get(rc, &st);
  assert_true(st.lines <= 4);
  assert_true(st.evictions > 0);
  assert_true(st.hits > 0);
  ic_rcache_destroy(rc);
  ic_mem_store_fini(&s);
}

static void test_past_end_and_failures(void **state) {
  (void)state;
  ic_mem_store s;
  ic_mem_store_init(&s);
  fill_store(&s, OBJ, OBJ_LEN);
  ic_rcache *rc;
  assert_int_equal(ic_rcache_create(&ic_mem_store_ops, &s, 128, 8, 0, 0, &rc), 0);
  uint8_t buf[256];
  /* Ends one byte past the object: inside the short last line. */
  assert_int_equal(ic_rcache_read(rc, OBJ, OBJ_LEN - 10, 11, buf), -EIO);
  /* Starts in a line that does not exist. */
  assert_int_equal(ic_rcache_read(rc, OBJ, 2048, 4, buf), -EIO);
  assert_int_equal(ic_rcache_read(rc, 0x999, 0, 4, buf), -EIO);
  /* A failed fill is not cached: the next read fetches again and works. */
  s.fail_gets = 1;
  assert_int_equal(ic_rcache_read(rc, OBJ, 300, 10, buf), -EIO);
  uint64_t gets = s.gets;
  assert_int_equal(ic_rcache_read(rc, OBJ, 300, 10, buf), 0);
  assert_int_equal(s.gets, gets + 1);
  for (int i = 0; i < 10; i++) assert_int_equal(buf[i], pattern(OBJ, 300 + i));
  /* And now it is: no further GET. */
  assert_int_equal(ic_rcache_read(rc, OBJ, 290, 20, buf), 0);
  assert_int_equal(s.gets, gets + 1);
  ic_rcache_destroy(rc);
  ic_mem_store_fini(&s);
}

typedef struct {
  ic_rcache *rc;
  unsigned seed;
  int bad;
} reader_arg;

static void *reader(void *p) {
  reader_arg *a = p;
  uint8_t buf[200];
  for (int n = 0; n < 2000; n++) {
    uint64_t obj = 100 + (uint64_t)(rand_r(&a->seed) % 3);
    uint64_t off = (uint64_t)(rand_r(&a->seed) % (OBJ_LEN - 200));
    uint64_t len = 1 + (uint64_t)(rand_r(&a->seed) % 200);
    if (ic_rcache_read(a->rc, obj, off, len, buf) != 0) a->bad++;
    for (uint64_t i = 0; i < len; i++)
      if (buf[i] != pattern(obj, off + i)) a->bad++;
  }
  return NULL;
}

static void test_threads_within_cap(void **state) {
  (void)state;
  ic_mem_store s;
  ic_mem_store_init(&s);
  for (uint64_t o = 100; o < 103; o++) fill_store(&s, o, OBJ_LEN);
  ic_rcache *rc;
  /* Fewer lines than readers may need at once: some wait for a free line,
   * and read-ahead competes for them too. */
  assert_int_equal(ic_rcache_create(&ic_mem_store_ops, &s, 32, 3, 2, 2, &rc), 0);
  pthread_t t[4];
  reader_arg a[4];
  for (int i = 0; i < 4; i++) {
    a[i] = (reader_arg){rc, (unsigned)i + 1, 0};
    assert_int_equal(pthread_create(&t[i], NULL, reader, &a[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(a[i].bad, 0);
  }
  ic_rcache_stats st;
  ic_rcache_stats_get(rc, &st);
  assert_true(st.lines <= 3);
  ic_rcache_destroy(rc);
  ic_mem_store_fini(&s);
}

/* Reading an object in order: the lines ahead are fetched meanwhile, so the
 * reader itself misses only the first line; a random reader triggers none;
 * lines past the end fail quietly and are not kept. */
static void test_read_ahead(void **state) {
  (void)state;
  ic_mem_store s;
  ic_mem_store_init(&s);
  fill_store(&s, OBJ, OBJ_LEN); /* 16 lines of 64 bytes, the last short */
  ic_rcache *rc;
  assert_int_equal(ic_rcache_create(&ic_mem_store_ops, &s, 64, 16, 4, 2, &rc), 0);
  uint8_t buf[64];
  for (uint64_t off = 0; off < OBJ_LEN; off += 64) {
    uint64_t len = OBJ_LEN - off < 64 ? OBJ_LEN - off : 64;
    assert_int_equal(ic_rcache_read(rc, OBJ, off, len, buf), 0);
    for (uint64_t i = 0; i < len; i++) assert_int_equal(buf[i], pattern(OBJ, off + i));
    if (off == 0) { /* let the first read-ahead land before going on */
      ic_rcache_stats st;
      for (int tries = 0; tries < 2000; tries++) {
        ic_rcache_stats_get(rc, &st);
        if (st.lines >= 5) break;
        usleep(1000);
      }
      assert_true(st.lines >= 5);
    }
  }
  ic_rcache_stats st;
  ic_rcache_stats_get(rc, &st);
  assert_true(st.prefetches >= 4);
  assert_true(st.hits + st.misses >= 16);
  assert_true(st.misses < 16); /* the reader did not fetch every line itself */
  assert_true(st.lines <= 16); /* nothing past the end was kept */
  ic_rcache_destroy(rc);

  /* Random lines: no neighbour cached, so no read-ahead (beyond line 0). */
  assert_int_equal(ic_rcache_create(&ic_mem_store_ops, &s, 64, 16, 4, 2, &rc), 0);
  const uint64_t lines[] = {9, 3, 13, 6};
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
    assert_int_equal(ic_rcache_read(rc, OBJ, lines[i] * 64, 8, buf), 0);
  ic_rcache_stats_get(rc, &st);
  assert_int_equal(st.prefetches, 0);
  ic_rcache_destroy(rc);
  ic_mem_store_fini(&s);
}

/* A random miss fetches the 32 KiB blocks it needs, not its 128 KiB line;
 * other bytes of that line then fetch the whole line once; an in-order
 * miss fetches whole lines; a random miss at the object's end reads short
 * and a read past the end fails. */
static void test_random_miss_fills_part(void **state) {
  (void)state;
  enum { KiB = 1024, LINE = 128 * KiB, BLOCK = 32 * KiB, LEN = 4 * LINE + 1000 };
  ic_mem_store s;
  ic_mem_store_init(&s);
  fill_store(&s, OBJ, LEN);
  ic_rcache *rc;
  assert_int_equal(ic_rcache_create(&ic_mem_store_ops, &s, LINE, 16, 0, 0, &rc), 0);
  static uint8_t buf[2 * BLOCK];
  uint64_t off = 2 * LINE + BLOCK + 100; /* line 2, its second block */
  assert_int_equal(ic_rcache_read(rc, OBJ, off, 4 * KiB, buf), 0);
  for (uint64_t i = 0; i < 4 * KiB; i++) assert_int_equal(buf[i], pattern(OBJ, off + i));
  assert_int_equal(s.get_bytes, BLOCK);
  /* the same block again: a hit; a read across two blocks of it: the line */
  assert_int_equal(ic_rcache_read(rc, OBJ, off + KiB, KiB, buf), 0);
  assert_int_equal(s.get_bytes, BLOCK);
  off = 2 * LINE + 3 * BLOCK - 10;
  assert_int_equal(ic_rcache_read(rc, OBJ, off, 20, buf), 0);
  for (uint64_t i = 0; i < 20; i++) assert_int_equal(buf[i], pattern(OBJ, off + i));
  assert_int_equal(s.get_bytes, BLOCK + LINE);
  assert_int_equal(ic_rcache_read(rc, OBJ, 2 * LINE, 2 * BLOCK, buf), 0);
  assert_int_equal(s.get_bytes, BLOCK + LINE);
  /* in order from line 3 on (line 2 was just used): whole lines */
  assert_int_equal(ic_rcache_read(rc, OBJ, 3 * LINE + 5, 10, buf), 0);
  assert_int_equal(s.get_bytes, BLOCK + 2 * LINE);
  /* a random miss in the short last line (1000 bytes), then past its end */
  ic_rcache_destroy(rc);
  assert_int_equal(ic_rcache_create(&ic_mem_store_ops, &s, LINE, 16, 0, 0, &rc), 0);
  uint64_t before = s.get_bytes;
  assert_int_equal(ic_rcache_read(rc, OBJ, 4 * LINE + 900, 100, buf), 0);
  for (uint64_t i = 0; i < 100; i++) assert_int_equal(buf[i], pattern(OBJ, 4 * LINE + 900 + i));
  assert_int_equal(s.get_bytes - before, 1000);
  assert_int_equal(ic_rcache_read(rc, OBJ, 4 * LINE + 990, 20, buf), -EIO);
  assert_int_equal(ic_rcache_read(rc, OBJ, 4 * LINE + 1000, 1, buf), -EIO);
  assert_int_equal(s.get_bytes - before, 1000);
  ic_rcache_destroy(rc);
  ic_mem_store_fini(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_offset),
      cmocka_unit_test(test_past_end_and_failures),
      cmocka_unit_test(test_threads_within_cap),
      cmocka_unit_test(test_read_ahead),
      cmocka_unit_test(test_random_miss_fills_part),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
