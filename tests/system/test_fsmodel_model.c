/* Unit tests of fsmodel's in-memory model: the semantics the checker holds
 * a real file system to must themselves be right. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fsmodel_model.h"

static void read_all(fsm_model *m, size_t slot, uint8_t *out, size_t cap, long want) {
  assert_int_equal(fsm_model_read(m, slot, 0, out, cap), want);
}

static void test_write_extends_with_zeros(void **state) {
  fsm_model *m = fsm_model_create(2, 64);
  assert_non_null(m);
  assert_false(fsm_model_exists(m, 0));
  assert_int_equal(fsm_model_write(m, 0, 0, (const uint8_t *)"x", 1), -ENOENT);
  fsm_model_create_file(m, 0);
  assert_true(fsm_model_exists(m, 0));
  assert_int_equal(fsm_model_size(m, 0), 0);
  assert_null(fsm_model_data(m, 0));

  assert_int_equal(fsm_model_write(m, 0, 4, (const uint8_t *)"abc", 3), 0);
  assert_int_equal(fsm_model_size(m, 0), 7);
  uint8_t out[64];
  read_all(m, 0, out, sizeof(out), 7);
  assert_memory_equal(out, "\0\0\0\0abc", 7);

  /* Overwrite in the middle keeps the size. */
  assert_int_equal(fsm_model_write(m, 0, 1, (const uint8_t *)"ZZ", 2), 0);
  assert_int_equal(fsm_model_size(m, 0), 7);
  read_all(m, 0, out, sizeof(out), 7);
  assert_memory_equal(out, "\0ZZ\0abc", 7);

  /* Beyond the maximum is refused and changes nothing. */
  assert_int_equal(fsm_model_write(m, 0, 60, (const uint8_t *)"12345", 5), -EFBIG);
  assert_int_equal(fsm_model_write(m, 0, UINT64_MAX, (const uint8_t *)"1", 1), -EFBIG);
  assert_int_equal(fsm_model_size(m, 0), 7);
  assert_int_equal(fsm_model_write(m, 0, 59, (const uint8_t *)"12345", 5), 0);
  assert_int_equal(fsm_model_size(m, 0), 64);
  fsm_model_destroy(m);
}

static void test_read_short_at_eof(void **state) {
  fsm_model *m = fsm_model_create(1, 32);
  uint8_t out[16];
  assert_int_equal(fsm_model_read(m, 0, 0, out, sizeof(out)), -ENOENT);
  fsm_model_create_file(m, 0);
  assert_int_equal(fsm_model_read(m, 0, 0, out, sizeof(out)), 0);
  assert_int_equal(fsm_model_write(m, 0, 0, (const uint8_t *)"0123456789", 10), 0);
  assert_int_equal(fsm_model_read(m, 0, 8, out, sizeof(out)), 2);
  assert_memory_equal(out, "89", 2);
  assert_int_equal(fsm_model_read(m, 0, 10, out, sizeof(out)), 0);
  assert_int_equal(fsm_model_read(m, 0, 1000, out, sizeof(out)), 0);
  assert_int_equal(fsm_model_read(m, 0, 2, out, 3), 3);
  assert_memory_equal(out, "234", 3);
  fsm_model_destroy(m);
}

static void test_truncate_shrink_then_grow_zeroes(void **state) {
  fsm_model *m = fsm_model_create(1, 32);
  fsm_model_create_file(m, 0);
  assert_int_equal(fsm_model_write(m, 0, 0, (const uint8_t *)"abcdefgh", 8), 0);
  assert_int_equal(fsm_model_truncate(m, 0, 3), 0);
  assert_int_equal(fsm_model_size(m, 0), 3);
  /* The bytes cut off must not come back when the file grows again. */
  assert_int_equal(fsm_model_truncate(m, 0, 6), 0);
  uint8_t out[32];
  read_all(m, 0, out, sizeof(out), 6);
  assert_memory_equal(out, "abc\0\0\0", 6);
  assert_int_equal(fsm_model_truncate(m, 0, 33), -EFBIG);
  assert_int_equal(fsm_model_truncate(m, 0, 0), 0);
  assert_int_equal(fsm_model_size(m, 0), 0);
  fsm_model_destroy(m);
}

static void test_allocate_and_punch(void **state) {
  fsm_model *m = fsm_model_create(1, 32);
  fsm_model_create_file(m, 0);
  assert_int_equal(fsm_model_write(m, 0, 0, (const uint8_t *)"abcdefgh", 8), 0);
  /* Mode 0 inside the file changes nothing; past the end it grows it. */
  assert_int_equal(fsm_model_allocate(m, 0, 2, 4), 0);
  assert_int_equal(fsm_model_size(m, 0), 8);
  assert_int_equal(fsm_model_allocate(m, 0, 6, 6), 0);
  assert_int_equal(fsm_model_size(m, 0), 12);
  uint8_t out[32];
  read_all(m, 0, out, sizeof(out), 12);
  assert_memory_equal(out, "abcdefgh\0\0\0\0", 12);
  assert_int_equal(fsm_model_allocate(m, 0, 30, 3), -EFBIG);

  /* Punch zeroes inside the file, never changes the size, and may reach
   * past the end. */
  assert_int_equal(fsm_model_punch(m, 0, 1, 2), 0);
  assert_int_equal(fsm_model_punch(m, 0, 7, 20), 0);
  assert_int_equal(fsm_model_size(m, 0), 12);
  read_all(m, 0, out, sizeof(out), 12);
  assert_memory_equal(out, "a\0\0defg\0\0\0\0\0", 12);
  assert_int_equal(fsm_model_punch(m, 0, 20, 4), 0);
  assert_int_equal(fsm_model_size(m, 0), 12);
  fsm_model_destroy(m);
}

static void test_rename_and_unlink(void **state) {
  fsm_model *m = fsm_model_create(3, 16);
  assert_int_equal(fsm_model_rename(m, 0, 1), -ENOENT);
  fsm_model_create_file(m, 0);
  assert_int_equal(fsm_model_write(m, 0, 0, (const uint8_t *)"zero", 4), 0);
  fsm_model_create_file(m, 1);
  assert_int_equal(fsm_model_write(m, 1, 0, (const uint8_t *)"one!!", 5), 0);

  assert_int_equal(fsm_model_rename(m, 0, 0), 0);
  assert_true(fsm_model_exists(m, 0));

  /* Replacing: 1 takes 0's bytes and size, 0 disappears. */
  assert_int_equal(fsm_model_rename(m, 0, 1), 0);
  assert_false(fsm_model_exists(m, 0));
  assert_int_equal(fsm_model_size(m, 0), 0);
  assert_int_equal(fsm_model_size(m, 1), 4);
  uint8_t out[16];
  read_all(m, 1, out, sizeof(out), 4);
  assert_memory_equal(out, "zero", 4);

  /* To an absent name. */
  assert_int_equal(fsm_model_rename(m, 1, 2), 0);
  assert_false(fsm_model_exists(m, 1));
  read_all(m, 2, out, sizeof(out), 4);

  assert_int_equal(fsm_model_unlink(m, 1), -ENOENT);
  assert_int_equal(fsm_model_unlink(m, 2), 0);
  assert_false(fsm_model_exists(m, 2));
  /* A new file in a freed slot starts empty. */
  fsm_model_create_file(m, 2);
  assert_int_equal(fsm_model_size(m, 2), 0);
  fsm_model_destroy(m);
}

static void test_first_diff(void **state) {
  const uint8_t a[] = "abcdef", b[] = "abcxef";
  assert_int_equal(fsm_first_diff(a, 6, a, 6), -1);
  assert_int_equal(fsm_first_diff(a, 6, b, 6), 3);
  assert_int_equal(fsm_first_diff(a, 6, a, 4), 4);
  assert_int_equal(fsm_first_diff(a, 0, b, 2), 0);
  assert_int_equal(fsm_first_diff(a, 0, b, 0), -1);
}

static void test_rng_reproducible(void **state) {
  fsm_rng r1, r2;
  fsm_rng_seed(&r1, 42);
  fsm_rng_seed(&r2, 42);
  /* splitmix64's published first output for seed 0 pins the algorithm. */
  fsm_rng r0;
  fsm_rng_seed(&r0, 0);
  assert_true(fsm_rng_next(&r0) == 0xE220A8397B1DCDAFull);
  for (int i = 0; i < 1000; i++) {
    uint64_t n = (uint64_t)i + 1;
    uint64_t v = fsm_rng_below(&r1, n);
    assert_true(v < n);
    assert_true(v == fsm_rng_below(&r2, n));
  }
  uint8_t b1[13], b2[13];
  fsm_rng_fill(&r1, b1, sizeof(b1));
  fsm_rng_fill(&r2, b2, sizeof(b2));
  assert_memory_equal(b1, b2, sizeof(b1));
}

static void test_create_rejects_zero(void **state) {
  assert_null(fsm_model_create(0, 10));
  assert_null(fsm_model_create(1, 0));
  fsm_model_destroy(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_write_extends_with_zeros),
      cmocka_unit_test(test_read_short_at_eof),
      cmocka_unit_test(test_truncate_shrink_then_grow_zeroes),
      cmocka_unit_test(test_allocate_and_punch),
      cmocka_unit_test(test_rename_and_unlink),
      cmocka_unit_test(test_first_diff),
      cmocka_unit_test(test_rng_reproducible),
      cmocka_unit_test(test_create_rejects_zero),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
