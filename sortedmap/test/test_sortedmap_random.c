/* sortedmap against a sorted-array reference: seeded random operations at
 * several fan-outs (down to 4), u64 and string keys, interleaved with
 * flush, prune, cache drops, touches, reopening from the written pages and
 * injected read failures. After every phase: sm_validate(), a full
 * comparison, and the discard accounting (every node extent ever written is
 * either reachable from the root or reported obsolete, never both).
 *
 * SM_RANDOM_OPS (environment) overrides the operations per configuration. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sm_test_store.h"
#include "sortedmap.h"

#define KMAX 24

typedef struct ent {
  uint8_t k[KMAX];
  size_t klen;
  uint64_t v;
} ent;

typedef struct model {
  ent *e;
  size_t n, cap;
  bool strkeys;
} model;

static uint64_t rng_state;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int kcmp(const model *m, const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  if (!m->strkeys) {
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    return x < y ? -1 : x > y;
  }
  return sm_compare_bytes(a, al, b, bl);
}

/* first index with key >= k */
static size_t m_find(const model *m, const uint8_t *k, size_t kl, bool *found) {
  size_t lo = 0, hi = m->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (kcmp(m, m->e[mid].k, m->e[mid].klen, k, kl) < 0) lo = mid + 1;
    else hi = mid;
  }
  *found = lo < m->n && kcmp(m, m->e[lo].k, m->e[lo].klen, k, kl) == 0;
  return lo;
}

static void m_insert_at(model *m, size_t i, const uint8_t *k, size_t kl, uint64_t v) {
  if (m->n == m->cap) {
    m->cap = m->cap ? m->cap * 2 : 1024;
    m->e = realloc(m->e, m->cap * sizeof *m->e);
    assert_non_null(m->e);
  }
  memmove(m->e + i + 1, m->e + i, (m->n - i) * sizeof *m->e);
  memcpy(m->e[i].k, k, kl);
  m->e[i].klen = kl;
  m->e[i].v = v;
  m->n++;
}

static void m_delete_at(model *m, size_t i) {
  memmove(m->e + i, m->e + i + 1, (m->n - i - 1) * sizeof *m->e);
  m->n--;
}

static size_t random_key(const model *m, uint64_t space, uint8_t *k) {
  uint64_t x = rnd() % space;
  if (!m->strkeys) {
    memcpy(k, &x, 8);
    return 8;
  }
  /* names of varying length sharing prefixes: "n<x>" padded by x%5 'z's */
  int n = snprintf((char *)k, KMAX, "n%llu", (unsigned long long)x);
  for (uint64_t j = 0; j < x % 5 && n < KMAX; j++) k[n++] = 'z';
  return (size_t)n;
}

/* Compare the whole tree with the model through a cursor. */
static void compare_all(sm_tree *t, const model *m) {
  uint64_t len;
  assert_int_equal(sm_len(t, &len), 0);
  assert_int_equal(len, m->n);
  sm_cursor c;
  sm_cursor_init(&c, t, 0);
  uint8_t k[KMAX];
  size_t kl;
  uint64_t v;
  for (size_t i = 0; i < m->n; i++) {
    assert_int_equal(sm_cursor_next(&c, k, sizeof k, &kl, &v, 8, NULL), 0);
    assert_int_equal(kl, m->e[i].klen);
    assert_memory_equal(k, m->e[i].k, kl);
    assert_int_equal(v, m->e[i].v);
  }
  assert_int_equal(sm_cursor_next(&c, k, sizeof k, &kl, &v, 8, NULL), -ENOENT);
}

typedef struct run {
  uint64_t max_keys;
  bool strkeys;
  bool cached;
} run;

static void one_op(sm_tree *t, model *m, uint64_t space, bool inject) {
  uint8_t k[KMAX], gk[KMAX];
  size_t kl = random_key(m, space, k), gkl;
  uint64_t v = rnd(), gv;
  bool found;
  size_t at = m_find(m, k, kl, &found);
  unsigned r = (unsigned)(rnd() % 100);
  int rc;
  if (r < 35) {
    rc = sm_insert(t, k, kl, &v, 8);
    if (inject && rc == -EIO) return;
    assert_int_equal(rc, found ? -EEXIST : 0);
    if (!found) m_insert_at(m, at, k, kl, v);
  } else if (r < 55) {
    rc = sm_delete(t, k, kl);
    if (inject && rc == -EIO) return;
    assert_int_equal(rc, found ? 0 : -ENOENT);
    if (found) m_delete_at(m, at);
  } else if (r < 62) {
    rc = sm_put(t, k, kl, &v, 8);
    if (inject && rc == -EIO) return;
    assert_int_equal(rc, found ? 0 : -ENOENT);
    if (found) m->e[at].v = v;
  } else if (r < 72) {
    rc = sm_get(t, k, kl, &gv, 8, NULL);
    if (inject && rc == -EIO) return;
    assert_int_equal(rc, found ? 0 : -ENOENT);
    if (found) assert_int_equal(gv, m->e[at].v);
  } else if (r < 77) {
    uint64_t i = rnd() % (m->n + 2);
    rc = sm_get_by_index(t, i, gk, sizeof gk, &gkl, &gv, 8, NULL);
    if (inject && rc == -EIO) return;
    assert_int_equal(rc, i < m->n ? 0 : -ENOENT);
    if (i < m->n) {
      assert_int_equal(gkl, m->e[i].klen);
      assert_memory_equal(gk, m->e[i].k, gkl);
      assert_int_equal(gv, m->e[i].v);
    }
  } else if (r < 81) {
    uint64_t i = rnd() % (m->n + 1);
    rc = sm_delete_by_index(t, i);
    if (inject && rc == -EIO) return;
    assert_int_equal(rc, i < m->n ? 0 : -ENOENT);
    if (i < m->n) m_delete_at(m, i);
  } else if (r < 85) {
    uint64_t i = rnd() % (m->n + 1);
    rc = sm_put_by_index(t, i, &v, 8);
    if (inject && rc == -EIO) return;
    assert_int_equal(rc, i < m->n ? 0 : -ENOENT);
    if (i < m->n) m->e[i].v = v;
  } else if (r < 93) {
    int64_t idx;
    bool f;
    bool right = r & 1;
    rc = right ? sm_bisect_right(t, k, kl, &idx, &f) : sm_bisect_left(t, k, kl, &idx, &f);
    if (inject && rc == -EIO) return;
    assert_int_equal(rc, 0);
    assert_int_equal(f, found);
    int64_t want = found || right ? (int64_t)at : (int64_t)at - 1;
    assert_int_equal(idx, want);
  } else if (r < 97) {
    uint64_t i = rnd() % (m->n + 1);
    sm_cursor c;
    sm_cursor_init(&c, t, i);
    for (int j = 0; j < 20; j++, i++) {
      rc = sm_cursor_next(&c, gk, sizeof gk, &gkl, &gv, 8, NULL);
      if (inject && rc == -EIO) return;
      if (i >= m->n) {
        assert_int_equal(rc, -ENOENT);
        break;
      }
      assert_int_equal(rc, 0);
      assert_memory_equal(gk, m->e[i].k, gkl);
      assert_int_equal(gv, m->e[i].v);
    }
  } else {
    uint64_t len;
    rc = sm_len(t, &len);
    if (inject && rc == -EIO) return;
    assert_int_equal(rc, 0);
    assert_int_equal(len, m->n);
  }
}

static void flush_and_check(sm_tree *t, sm_test_store *s, sm_ref *root) {
  if (rnd() % 3 == 0) sm_test_store_next_object(s);
  assert_int_equal(sm_flush(t, root), 0);
  assert_int_equal(sm_test_store_check(s, t), 0);
  assert_int_equal(sm_pending_discards(t), 0);
}

static void do_run(const run *rp, uint64_t seed, uint64_t ops) {
  rng_state = seed;
  sm_test_store s;
  sm_test_store_init(&s, 1);
  sm_config cfg = sm_test_cfg_u64(&s, 8);
  if (rp->strkeys) cfg.key.kind = SM_CODEC_LSTR;
  sm_cache *cache = rp->cached ? sm_cache_create(16, 24, 0) : NULL;
  sm_tree *t;
  assert_int_equal(sm_create(&cfg, cache, rp->max_keys, &t), 0);
  model m = {.strkeys = rp->strkeys};
  uint64_t space = rp->max_keys * 40;
  if (space < 3000) space = 3000;
  if (space > 20000) space = 20000;
  const uint64_t phase = 1000;
  sm_ref root = {0, 0, 0};
  uint64_t reopens = 0, injected = 0;
  for (uint64_t op = 0; op < ops; op++) {
    bool inject = root.object_length && rnd() % 50 == 0;
    s.fail_reads = inject;
    one_op(t, &m, space, inject);
    s.fail_reads = 0;
    injected += inject;
    if ((op + 1) % phase) continue;
    switch (rnd() % 6) {
    case 0:
      flush_and_check(t, &s, &root);
      break;
    case 1:
      flush_and_check(t, &s, &root);
      assert_int_equal(sm_drop_clean(t), 0);
      break;
    case 2: {
      flush_and_check(t, &s, &root);
      sm_destroy(t);
      char err[160];
      assert_int_equal(sm_open(&cfg, cache, &root, &t, err, sizeof err), 0);
      reopens++;
      break;
    }
    case 3: {
      uint64_t next = rnd() % (m.n + 1);
      for (int i = 0; i < 3; i++) assert_int_equal(sm_touch_item(t, next, &next), 0);
      flush_and_check(t, &s, &root);
      break;
    }
    case 4:
      if (rnd() % 4 == 0) assert_int_equal(sm_touch(t), 0);
      flush_and_check(t, &s, &root);
      break;
    default: /* leave it dirty */
      break;
    }
    if (sm_validate(t)) fail_msg("validate: %s", sm_error_detail(t));
    compare_all(t, &m);
    if (cache) {
      sm_cache_stats st;
      sm_cache_stats_get(cache, &st);
      /* dirty nodes may exceed the cap; clean ones are evicted down to it */
      assert_true(st.clean_nodes + st.dirty_nodes <= 24 || st.clean_nodes == 0);
    }
  }
  flush_and_check(t, &s, &root);
  assert_int_equal(sm_validate(t), 0);
  print_message("fan-out %llu: %llu ops, %zu items at the end, %llu node writes, "
                "%llu reads, %llu discards, %llu reopens, %llu injected read failures\n",
                (unsigned long long)rp->max_keys, (unsigned long long)ops, m.n,
                (unsigned long long)s.writes, (unsigned long long)s.reads,
                (unsigned long long)s.discards, (unsigned long long)reopens,
                (unsigned long long)injected);
  assert_true(reopens > 0);
  assert_true(injected > 0);
  sm_destroy(t);
  sm_cache_destroy(cache);
  free(m.e);
  sm_test_store_free(&s);
}

static uint64_t ops_per_run(void) {
  const char *e = getenv("SM_RANDOM_OPS");
  return e ? strtoull(e, NULL, 10) : 200000;
}

static void test_fanout4_u64_cached(void **state) {
  run r = {4, false, true};
  do_run(&r, 0x9e3779b97f4a7c15ull, ops_per_run());
}
static void test_fanout6_str(void **state) {
  run r = {6, true, false};
  do_run(&r, 12345, ops_per_run());
}
static void test_fanout8_str_cached(void **state) {
  run r = {8, true, true};
  do_run(&r, 777, ops_per_run());
}
static void test_fanout32_u64(void **state) {
  run r = {32, false, false};
  do_run(&r, 4242, ops_per_run());
}
static void test_fanout1024_u64_cached(void **state) {
  run r = {1024, false, true};
  do_run(&r, 99, ops_per_run() / 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fanout4_u64_cached),
      cmocka_unit_test(test_fanout6_str),
      cmocka_unit_test(test_fanout8_str_cached),
      cmocka_unit_test(test_fanout32_u64),
      cmocka_unit_test(test_fanout1024_u64_cached),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
