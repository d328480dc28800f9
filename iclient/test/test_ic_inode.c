/* The inode layer over the fake imgr and an object store: files written,
 * flushed, dropped from the caches, reloaded and read back; directories with
 * thousands of entries; random overwrite/truncate sequences against a model;
 * exact superblock accounting and no leaked objects (iclient.md 10.6);
 * failures in the middle of a flush; the inode cache cap. Small B+tree pages
 * (8 keys) make every tree several levels deep. Every test runs over the
 * in-memory store double; all but the fault-injection one run again over a
 * real iswift (in process, ephemeral port) through swiftclient, one fresh
 * container per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ic_inode_internal.h"
#include "ic_test_doubles.h"
#include "iswift.h"
#include "swiftclient.h"
#include "utils.h"

typedef struct env {
  ic_fake_imgr f;
  ic_mem_store s; /* the store, or unused when over iswift */
  ic_store_swift sw;
  char container[32];
  ic_volume *v;
} env;

/* Set by the iswift group's setup. */
static iswift *g_srv;
static swift_conn *g_conn;
static int g_containers;

static int iswift_group_setup(void **state) {
  (void)state;
  iswift_config cfg;
  iswift_config_defaults(&cfg);
  cfg.port = 0;
  if (iswift_start(&cfg, &g_srv)) return -1;
  char auth[128];
  snprintf(auth, sizeof(auth), "http://127.0.0.1:%u/auth/v1.0", (unsigned)iswift_port(g_srv));
  swift_config sc;
  swift_config_defaults(&sc);
  sc.auth_url = auth;
  sc.auth_user = "test:tester";
  sc.auth_key = "testing";
  sc.retry_limit = 2;
  sc.retry_delay_ns = 1000000;
  sc.connection_pool_size = 8;
  if (swift_conn_create(&sc, &g_conn)) return -1;
  return swift_account_put(g_conn, NULL, 0) ? -1 : 0;
}

static int iswift_group_teardown(void **state) {
  (void)state;
  swift_conn_destroy(g_conn);
  iswift_stop(g_srv);
  g_conn = NULL;
  return 0;
}

/* The test volume over e's fake imgr and store (tests change fields). */
static ic_volume_params volume_params(env *e) {
  return (ic_volume_params){
      .imgr = &ic_fake_imgr_ops,
      .imgr_ctx = &e->f,
      .store = g_conn ? &ic_store_swift_ops : &ic_mem_store_ops,
      .store_ctx = g_conn ? (void *)&e->sw : (void *)&e->s,
      .mount_id = "fakeMountID00000000=",
      .dir_max_keys = 8,
      .file_max_keys = 8,
      .payload_evict_low = 40,
      .payload_evict_high = 50,
      .read_cache_line_size = 512,
      .read_cache_line_count_max = 16,
      .inode_cache_limit = 8,
      .file_flush_trigger_size = 1 << 20,
  };
}

static int setup(void **state) {
  env *e = calloc(1, sizeof(*e));
  if (!e) return -1;
  ic_fake_imgr_init(&e->f, 4, 100);
  ic_mem_store_init(&e->s);
  if (g_conn) {
    snprintf(e->container, sizeof(e->container), "iclient-test-%d", g_containers++);
    if (swift_container_put(g_conn, e->container, NULL, 0)) return -1;
    e->sw = (ic_store_swift){g_conn, e->container};
  }
  ic_volume_params p = volume_params(e);
  if (ic_volume_create(&p, &e->v)) return -1;
  *state = e;
  return 0;
}

static int teardown(void **state) {
  env *e = *state;
  ic_volume_destroy(e->v);
  ic_mem_store_fini(&e->s);
  ic_fake_imgr_fini(&e->f);
  free(e);
  return 0;
}

static uint8_t byte_at(uint64_t seed, uint64_t i) {
  return (uint8_t)((seed * 131 + i * 7 + (i >> 9)) | 1);
}

static ic_inode *reload(env *e, uint64_t ino) {
  ic_inode *in;
  assert_int_equal(ic_inode_get(e->v, ino, &in), 0);
  assert_int_equal(ic_inode_load(e->v, in), 0);
  return in;
}

static void flush1(env *e, ic_inode *in) {
  ic_inode *one = in;
  assert_int_equal(ic_flush_inodes(e->v, &one, 1), 0);
  assert_false(ic_inode_dirty(in));
  assert_int_equal(ic_inode_check_accounting(e->v, in), 0);
}

typedef struct stored {
  uint64_t *objs;
  size_t n, cap;
} stored;

static int stored_add(void *ctx, const swift_list_entry *le) {
  stored *st = ctx;
  uint64_t obj;
  if (ilayout_object_name_to_number(le->name, strlen(le->name), &obj)) return -EINVAL;
  if (st->n == st->cap) {
    st->cap = st->cap ? st->cap * 2 : 64;
    st->objs = realloc(st->objs, st->cap * sizeof(*st->objs));
    if (!st->objs) return -ENOMEM;
  }
  st->objs[st->n++] = obj;
  return 0;
}

/* Every object number the store holds. */
static void list_stored(env *e, stored *st) {
  if (g_conn) {
    swift_list_opts o = {0};
    assert_int_equal(swift_list(g_conn, e->container, &o, stored_add, st, NULL), 0);
    return;
  }
  for (size_t i = 0; i < e->s.nobjs; i++) {
    swift_list_entry le = {0};
    char name[ILAYOUT_OBJECT_NAME_LEN + 1];
    ilayout_object_number_to_name(e->s.objs[i].number, name);
    le.name = name;
    assert_int_equal(stored_add(st, &le), 0);
  }
}

/* imgr's counters equal the sums over the inodes' committed layouts, and
 * every stored object is either live (a layout object or a current head
 * object) or was reported dereferenced, never both. */
static void check_volume(env *e, const uint64_t *inos, size_t n) {
  assert_int_equal(ic_volume_drop_clean(e->v), 0);
  int64_t count = 0, written = 0, referenced = 0;
  uint64_t *live = calloc(1024, sizeof(*live));
  size_t nlive = 0;
  assert_non_null(live);
  for (size_t i = 0; i < n; i++) {
    const ic_inode_table_entry *te = ic_fake_imgr_entry(&e->f, inos[i]);
    assert_non_null(te);
    live[nlive++] = te->inode_head_object_number;
    ic_inode *in = reload(e, inos[i]);
    assert_int_equal(ic_inode_check_accounting(e->v, in), 0);
    for (size_t j = 0; j < in->nlayout; j++) {
      count++;
      written += (int64_t)in->layout[j].bytes_written;
      referenced += (int64_t)in->layout[j].bytes_referenced;
      assert_true(nlive < 1024);
      live[nlive++] = in->layout[j].object_number;
    }
    ic_inode_put(e->v, in);
  }
  assert_int_equal(e->f.object_count, count);
  assert_int_equal(e->f.bytes_written, written);
  assert_int_equal(e->f.bytes_referenced, referenced);
  stored st = {0};
  list_stored(e, &st);
  for (size_t i = 0; i < st.n; i++) {
    uint64_t obj = st.objs[i];
    bool is_live = false;
    for (size_t j = 0; j < nlive && !is_live; j++) is_live = live[j] == obj;
    bool dead = ic_fake_imgr_dereferenced(&e->f, obj);
    if (is_live == dead)
      fail_msg("object %016llX live %d dereferenced %d", (unsigned long long)obj, is_live, dead);
  }
  free(st.objs);
  assert_int_equal(e->s.double_puts, 0);
  free(live);
}

static void read_compare(env *e, ic_inode *in, const uint8_t *model, uint64_t size) {
  ic_attr a;
  ic_inode_attr(in, &a);
  assert_int_equal(a.size, size);
  uint8_t *buf = malloc(size + 100);
  assert_non_null(buf);
  size_t got;
  assert_int_equal(ic_file_read(e->v, in, 0, size + 100, buf, &got), 0);
  assert_int_equal(got, size);
  if (size) assert_memory_equal(buf, model, size);
  free(buf);
  (void)e;
}

static void test_file_round_trip(void **state) {
  env *e = *state;
  ic_inode *in;
  assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_FILE, 0644, 1000, 100, &in), 0);
  uint64_t ino = ic_inode_number(in);
  assert_int_equal(ic_inode_link_add(in, 1, "f", 1), 0);
  enum { SIZE = 20000 };
  uint8_t *model = calloc(SIZE, 1);
  assert_non_null(model);
  /* Sequential pieces (merged into one extent), then a hole, then a tail. */
  for (uint64_t off = 0; off < 6000; off += 1500) {
    for (uint64_t i = 0; i < 1500; i++) model[off + i] = byte_at(1, off + i);
    assert_int_equal(ic_file_write(e->v, in, off, model + off, 1500), 0);
  }
  for (uint64_t i = 15000; i < SIZE; i++) model[i] = byte_at(2, i);
  assert_int_equal(ic_file_write(e->v, in, 15000, model + 15000, SIZE - 15000), 0);
  uint64_t nextents;
  assert_int_equal(sm_len(in->payload, &nextents), 0);
  assert_int_equal(nextents, 2);
  read_compare(e, in, model, SIZE); /* served from the unflushed segment */
  flush1(e, in);
  ic_inode_put(e->v, in);
  assert_int_equal(ic_volume_drop_clean(e->v), 0);

  in = reload(e, ino);
  ic_attr a;
  ic_inode_attr(in, &a);
  assert_int_equal(a.type, ILAYOUT_INODE_TYPE_FILE);
  assert_int_equal(a.mode, 0644);
  assert_int_equal(a.uid, 1000);
  assert_int_equal(a.gid, 100);
  assert_int_equal(a.nlink, 1);
  read_compare(e, in, model, SIZE); /* from the store through the read cache */
  uint8_t small[10];
  size_t got;
  assert_int_equal(ic_file_read(e->v, in, SIZE - 4, 10, small, &got), 0);
  assert_int_equal(got, 4);
  assert_int_equal(ic_file_read(e->v, in, SIZE + 5, 10, small, &got), 0);
  assert_int_equal(got, 0);
  assert_int_equal(ic_file_write(e->v, in, 0, "x", 1), 0);
  model[0] = 'x';
  flush1(e, in);
  ic_inode_put(e->v, in);
  check_volume(e, &ino, 1);
  in = reload(e, ino);
  read_compare(e, in, model, SIZE);
  ic_inode_put(e->v, in);
  free(model);
}

static void test_directory_thousands(void **state) {
  env *e = *state;
  enum { N = 3000 };
  ic_inode *d;
  assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_DIR, 0755, 0, 0, &d), 0);
  uint64_t ino = ic_inode_number(d);
  ic_dirent self = {ino, ILAYOUT_INODE_TYPE_DIR};
  assert_int_equal(ic_dir_insert(e->v, d, ".", 1, &self), 0);
  assert_int_equal(ic_dir_insert(e->v, d, "..", 2, &self), 0);
  char name[64];
  for (int i = 0; i < N; i++) {
    int len = snprintf(name, sizeof(name), "entry-%05d", (i * 7919) % N);
    ic_dirent de = {1000000 + (uint64_t)((i * 7919) % N), ILAYOUT_INODE_TYPE_FILE};
    assert_int_equal(ic_dir_insert(e->v, d, name, (size_t)len, &de), 0);
    if (i % 700 == 699) flush1(e, d);
  }
  ic_dirent de = {1, ILAYOUT_INODE_TYPE_FILE};
  assert_int_equal(ic_dir_insert(e->v, d, "entry-00001", 11, &de), -EEXIST);
  assert_int_equal(ic_dir_insert(e->v, d, "a/b", 3, &de), -EINVAL);
  memset(name, 'n', sizeof(name));
  char longname[300];
  memset(longname, 'n', sizeof(longname));
  assert_int_equal(ic_dir_insert(e->v, d, longname, 256, &de), -ENAMETOOLONG);
  for (int i = 0; i < N; i += 3) {
    int len = snprintf(name, sizeof(name), "entry-%05d", i);
    assert_int_equal(ic_dir_delete(e->v, d, name, (size_t)len), 0);
  }
  assert_int_equal(ic_dir_delete(e->v, d, "entry-00000", 11), -ENOENT);
  flush1(e, d);
  ic_inode_put(e->v, d);
  check_volume(e, &ino, 1);

  d = reload(e, ino);
  uint64_t count;
  assert_int_equal(ic_dir_count(e->v, d, &count), 0);
  assert_int_equal(count, 2 + N - (N + 2) / 3);
  for (int i = 0; i < N; i++) {
    int len = snprintf(name, sizeof(name), "entry-%05d", i);
    ic_dirent got;
    int rc = ic_dir_lookup(e->v, d, name, (size_t)len, &got);
    if (i % 3 == 0) {
      assert_int_equal(rc, -ENOENT);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(got.inode_number, 1000000 + (uint64_t)i);
      assert_int_equal(got.inode_type, ILAYOUT_INODE_TYPE_FILE);
    }
  }
  /* Name order: ".", "..", then the entries ascending. */
  char prev[IC_NAME_MAX + 1] = "";
  for (uint64_t i = 0; i < count; i++) {
    char nm[IC_NAME_MAX + 1];
    size_t len;
    ic_dirent got;
    assert_int_equal(ic_dir_entry_at(e->v, d, i, nm, &len, &got), 0);
    if (i == 0) assert_string_equal(nm, ".");
    if (i == 1) assert_string_equal(nm, "..");
    if (i > 0) assert_true(strcmp(prev, nm) < 0);
    memcpy(prev, nm, len + 1);
  }
  char nm[IC_NAME_MAX + 1];
  size_t len;
  ic_dirent got;
  assert_int_equal(ic_dir_entry_at(e->v, d, count, nm, &len, &got), -ENOENT);
  ic_inode_put(e->v, d);
}

/* One random step against the model: write, overwrite, truncate, extend. */
static void random_step(env *e, ic_inode *in, uint8_t *model, uint64_t *size, uint64_t cap,
                        unsigned *seed) {
  unsigned r = (unsigned)rand_r(seed) % 10;
  if (r < 7) {
    uint64_t off = (uint64_t)rand_r(seed) % (cap - 4096);
    uint64_t len = 1 + (uint64_t)rand_r(seed) % 4000;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    for (uint64_t i = 0; i < len; i++) data[i] = (uint8_t)rand_r(seed);
    assert_int_equal(ic_file_write(e->v, in, off, data, len), 0);
    if (off > *size) memset(model + *size, 0, off - *size);
    memcpy(model + off, data, len);
    if (off + len > *size) *size = off + len;
    free(data);
  } else {
    uint64_t ns = (uint64_t)rand_r(seed) % cap;
    assert_int_equal(ic_file_truncate(e->v, in, ns), 0);
    if (ns > *size) memset(model + *size, 0, ns - *size);
    *size = ns;
  }
}

static void test_random_against_model(void **state) {
  env *e = *state;
  enum { CAP = 64 * 1024, STEPS = 800 };
  uint8_t *model = calloc(CAP, 1);
  assert_non_null(model);
  uint64_t size = 0;
  unsigned seed = 12345;
  ic_inode *in;
  assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_FILE, 0600, 0, 0, &in), 0);
  uint64_t ino = ic_inode_number(in);
  for (int step = 1; step <= STEPS; step++) {
    random_step(e, in, model, &size, CAP, &seed);
    if (step % 17 == 0) flush1(e, in);
    if (step % 50 == 0) read_compare(e, in, model, size);
    if (step % 120 == 0) { /* cold caches: everything from the store */
      flush1(e, in);
      ic_inode_put(e->v, in);
      check_volume(e, &ino, 1);
      in = reload(e, ino);
      read_compare(e, in, model, size);
    }
  }
  flush1(e, in);
  read_compare(e, in, model, size);
  ic_inode_put(e->v, in);
  check_volume(e, &ino, 1);
  free(model);
}

static void test_flush_failures_keep_everything(void **state) {
  env *e = *state;
  ic_inode *in;
  assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_FILE, 0600, 0, 0, &in), 0);
  uint64_t ino = ic_inode_number(in);
  uint8_t data[5000];
  for (size_t i = 0; i < sizeof(data); i++) data[i] = byte_at(9, i);
  assert_int_equal(ic_file_write(e->v, in, 0, data, sizeof(data)), 0);
  flush1(e, in);
  /* Overwrite the middle; the PUT of the segment fails. */
  memset(data + 1000, 0xAB, 2000);
  assert_int_equal(ic_file_write(e->v, in, 1000, data + 1000, 2000), 0);
  e->s.fail_puts = 1;
  ic_inode *one = in;
  assert_int_equal(ic_flush_inodes(e->v, &one, 1), -EIO);
  assert_true(ic_inode_dirty(in));
  read_compare(e, in, data, sizeof(data));
  /* The segment is stored but imgr refuses the commit (lease lost): the
   * lease is taken again and, imgr still having the changes' base, the
   * commit is sent again. */
  e->f.fail_puts = 1;
  uint64_t exclusive = e->f.leases[IC_LEASE_REQUEST_EXCLUSIVE];
  uint64_t puts = e->f.puts;
  assert_int_equal(ic_flush_inodes(e->v, &one, 1), 0);
  assert_false(ic_inode_dirty(in));
  assert_int_equal(e->f.leases[IC_LEASE_REQUEST_EXCLUSIVE], exclusive + 1);
  assert_int_equal(e->f.puts, puts + 1);
  /* Refused twice: the error stays, and so do the changes. */
  assert_int_equal(ic_file_write(e->v, in, 0, "z", 1), 0);
  e->f.fail_puts = 2;
  assert_int_equal(ic_flush_inodes(e->v, &one, 1), -ENOLCK);
  assert_true(ic_inode_dirty(in));
  assert_int_equal(ic_file_write(e->v, in, 0, data, 1), 0); /* undo the "z" */
  ic_inode_put(e->v, in);
  in = reload(e, ino);
  one = in;
  read_compare(e, in, data, sizeof(data)); /* now read from the stored segment */
  memset(data + 4000, 0xCD, 500);
  assert_int_equal(ic_file_write(e->v, in, 4000, data + 4000, 500), 0);
  flush1(e, in); /* sends everything still pending */
  ic_inode_put(e->v, in);
  check_volume(e, &ino, 1);
  in = reload(e, ino);
  read_compare(e, in, data, sizeof(data));
  ic_inode_put(e->v, in);
}

static void test_multi_inode_commit_is_one_rpc(void **state) {
  env *e = *state;
  ic_inode *d, *f, *l;
  assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_DIR, 0755, 0, 0, &d), 0);
  assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_FILE, 0644, 0, 0, &f), 0);
  assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_SYMLINK, 0777, 0, 0, &l), 0);
  uint64_t inos[3] = {ic_inode_number(d), ic_inode_number(f), ic_inode_number(l)};
  ic_dirent fe = {inos[1], ILAYOUT_INODE_TYPE_FILE}, le = {inos[2], ILAYOUT_INODE_TYPE_SYMLINK};
  assert_int_equal(ic_dir_insert(e->v, d, "file", 4, &fe), 0);
  assert_int_equal(ic_dir_insert(e->v, d, "link", 4, &le), 0);
  assert_int_equal(ic_inode_link_add(f, inos[0], "file", 4), 0);
  assert_int_equal(ic_inode_link_add(l, inos[0], "link", 4), 0);
  assert_int_equal(ic_inode_link_add(f, inos[0], "file", 4), -EEXIST);
  assert_int_equal(ic_file_write(e->v, l, 0, "x", 1), -EINVAL);
  assert_int_equal(ic_file_write(e->v, d, 0, "x", 1), -EISDIR);
  assert_int_equal(ic_dir_insert(e->v, f, "x", 1, &fe), -ENOTDIR);
  uint64_t puts = e->f.puts;
  ic_inode *all[3] = {d, f, l};
  assert_int_equal(ic_flush_inodes(e->v, all, 3), 0);
  assert_int_equal(e->f.puts, puts + 1);
  /* Clean inodes are skipped: no RPC at all. */
  assert_int_equal(ic_flush_inodes(e->v, all, 3), 0);
  assert_int_equal(e->f.puts, puts + 1);
  for (int i = 0; i < 3; i++) ic_inode_put(e->v, all[i]);
  check_volume(e, inos, 3);

  f = reload(e, inos[1]);
  assert_int_equal(ic_inode_link_remove(f, inos[0], "file", 4), 0);
  assert_int_equal(ic_inode_link_remove(f, inos[0], "file", 4), -ENOENT);
  ic_attr a;
  ic_inode_attr(f, &a);
  assert_int_equal(a.nlink, 0);
  flush1(e, f);
  /* Two more head-only segments for f, and a second one for the symlink:
   * each earlier head object is garbage and must be reported. */
  assert_int_equal(ic_inode_link_add(f, inos[0], "again", 5), 0);
  flush1(e, f);
  ic_inode_put(e->v, f);
  l = reload(e, inos[2]);
  assert_int_equal(ic_inode_link_add(l, inos[0], "l2", 2), 0);
  flush1(e, l);
  ic_inode_put(e->v, l);
  check_volume(e, inos, 3);
  ic_inode *gone;
  assert_int_equal(ic_inode_get(e->v, 0x7777777, &gone), 0);
  assert_int_equal(ic_inode_load(e->v, gone), -ENOENT);
  ic_inode_put(e->v, gone);
}

static void test_inode_cache_cap(void **state) {
  env *e = *state;
  uint64_t inos[20];
  for (int i = 0; i < 20; i++) {
    ic_inode *in;
    assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_FILE, 0644, 0, 0, &in), 0);
    inos[i] = ic_inode_number(in);
    assert_int_equal(ic_file_write(e->v, in, 0, &i, sizeof(i)), 0);
    flush1(e, in);
    ic_inode_put(e->v, in);
    assert_true(ic_volume_inodes_cached(e->v) <= 8);
  }
  /* Every evicted inode gave its lease back. */
  assert_int_equal(e->f.leases[IC_LEASE_REQUEST_EXCLUSIVE] - e->f.leases[IC_LEASE_REQUEST_RELEASE],
                   ic_volume_inodes_cached(e->v));
  for (int i = 0; i < 20; i++) {
    ic_inode *in = reload(e, inos[i]);
    int v = -1;
    size_t got;
    assert_int_equal(ic_file_read(e->v, in, 0, sizeof(v), &v, &got), 0);
    assert_int_equal(got, sizeof(v));
    assert_int_equal(v, i);
    ic_inode_put(e->v, in);
  }
  check_volume(e, inos, 20);
}

static void test_size_trigger_seals(void **state) {
  env *e = *state;
  ic_inode *in;
  assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_FILE, 0644, 0, 0, &in), 0);
  uint64_t ino = ic_inode_number(in);
  enum { CHUNK = 256 * 1024 };
  uint8_t *data = malloc(CHUNK);
  assert_non_null(data);
  uint64_t commits = e->f.puts;
  if (!g_conn) e->s.fail_puts = 1; /* the background PUT fails: the commit repeats it */
  for (int i = 0; i < 5; i++) {
    memset(data, 'a' + i, CHUNK);
    assert_int_equal(ic_file_write(e->v, in, (uint64_t)i * CHUNK, data, CHUNK), 0);
  }
  /* 1 MiB trigger: the fourth chunk filled the segment, which was sealed
   * and handed to an uploader; nothing is committed yet. Until it is
   * stored its bytes are read from memory. */
  assert_int_equal(e->f.puts, commits);
  assert_true(ic_inode_dirty(in));
  for (int i = 0; i < 5; i++) {
    size_t got;
    assert_int_equal(ic_file_read(e->v, in, (uint64_t)i * CHUNK, CHUNK, data, &got), 0);
    assert_int_equal(got, CHUNK);
    for (size_t j = 0; j < CHUNK; j += 4099) assert_int_equal(data[j], 'a' + i);
  }
  flush1(e, in);
  assert_int_equal(e->f.puts, commits + 1);
  if (!g_conn) assert_int_equal(e->s.fail_puts, 0);
  ic_inode_put(e->v, in);
  check_volume(e, &ino, 1);
  in = reload(e, ino);
  for (int i = 0; i < 5; i++) {
    size_t got;
    assert_int_equal(ic_file_read(e->v, in, (uint64_t)i * CHUNK, CHUNK, data, &got), 0);
    assert_int_equal(got, CHUNK);
    for (size_t j = 0; j < CHUNK; j += 4099) assert_int_equal(data[j], 'a' + i);
  }
  ic_inode_put(e->v, in);
  free(data);
}

/* A sequential writer's segments reuse the buffers of those already stored
 * (ic_segbuf_give): twelve 1 MiB segments, each chunk its own pattern; a
 * buffer handed on while still being uploaded would mix them. After the
 * fsync, spares are kept, within SegmentUploadLimit. */
static void test_segment_buffers_reused(void **state) {
  env *e = *state;
  ic_inode *in;
  assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_FILE, 0644, 0, 0, &in), 0);
  uint64_t ino = ic_inode_number(in);
  enum { CHUNK = 128 * 1024, CHUNKS = 96 };
  uint8_t *data = malloc(CHUNK), *want = malloc(CHUNK);
  assert_non_null(data);
  assert_non_null(want);
  for (int i = 0; i < CHUNKS; i++) {
    for (size_t j = 0; j < CHUNK; j++) data[j] = (uint8_t)(i * 7 + j / 4096);
    assert_int_equal(ic_file_write(e->v, in, (uint64_t)i * CHUNK, data, CHUNK), 0);
  }
  flush1(e, in);
  pthread_mutex_lock(&e->v->seal_mu);
  unsigned spares = e->v->nspare;
  pthread_mutex_unlock(&e->v->seal_mu);
  assert_true(spares >= 1 && spares <= IC_SEGBUF_SPARE);
  ic_inode_put(e->v, in);
  check_volume(e, &ino, 1);
  in = reload(e, ino);
  for (int i = 0; i < CHUNKS; i++) {
    size_t got;
    for (size_t j = 0; j < CHUNK; j++) want[j] = (uint8_t)(i * 7 + j / 4096);
    assert_int_equal(ic_file_read(e->v, in, (uint64_t)i * CHUNK, CHUNK, data, &got), 0);
    assert_int_equal(got, CHUNK);
    assert_memory_equal(data, want, CHUNK);
  }
  ic_inode_put(e->v, in);
  free(data);
  free(want);
}

/* TestInodeStress's shape: threads, each with its own file, random writes
 * and truncates with periodic flushes and full validation, while another
 * thread keeps dropping clean inodes (eviction racing with use). */
typedef struct stresser {
  env *e;
  unsigned seed;
  uint64_t ino;
  int errors;
} stresser;

static atomic_int g_stress_done; /* set by the main thread, read by the dropper */

static void *stress_main(void *arg) {
  stresser *st = arg;
  enum { CAP = 16384 };
  uint8_t *model = calloc(CAP, 1), *buf = malloc(CAP + 10), *data = malloc(4096);
  uint64_t size = 0;
  for (int step = 1; step <= 300 && model && buf && data; step++) {
    ic_inode *in;
    if (ic_inode_get(st->e->v, st->ino, &in) || ic_inode_load(st->e->v, in)) {
      st->errors++;
      break;
    }
    unsigned r = (unsigned)rand_r(&st->seed);
    if (r % 8 != 0) {
      uint64_t off = (uint64_t)rand_r(&st->seed) % (CAP - 4096);
      uint64_t len = 1 + (uint64_t)rand_r(&st->seed) % 4095;
      for (uint64_t i = 0; i < len; i++) data[i] = (uint8_t)rand_r(&st->seed);
      if (ic_file_write(st->e->v, in, off, data, len)) st->errors++;
      if (off > size) memset(model + size, 0, off - size);
      memcpy(model + off, data, len);
      if (off + len > size) size = off + len;
    } else {
      uint64_t ns = (uint64_t)rand_r(&st->seed) % CAP;
      if (ic_file_truncate(st->e->v, in, ns)) st->errors++;
      if (ns > size) memset(model + size, 0, ns - size);
      size = ns;
    }
    if (step % 10 == 0) {
      if (ic_flush_inodes(st->e->v, &in, 1) || ic_inode_check_accounting(st->e->v, in))
        st->errors++;
    }
    if (step % 25 == 0) {
      size_t got;
      if (ic_file_read(st->e->v, in, 0, CAP + 10, buf, &got) || got != size ||
          (size && memcmp(buf, model, size) != 0))
        st->errors++;
    }
    ic_inode_put(st->e->v, in);
  }
  ic_inode *in;
  if (ic_inode_get(st->e->v, st->ino, &in) == 0) {
    if (ic_flush_inodes(st->e->v, &in, 1)) st->errors++;
    ic_inode_put(st->e->v, in);
  }
  free(model);
  free(buf);
  free(data);
  return NULL;
}

static void *dropper_main(void *arg) {
  env *e = arg;
  while (!g_stress_done) {
    (void)ic_volume_drop_clean(e->v);
    ut_sleep_ns(1000000);
  }
  return NULL;
}

static void test_threads_stress(void **state) {
  env *e = *state;
  enum { THREADS = 4 };
  stresser st[THREADS];
  uint64_t inos[THREADS];
  for (int i = 0; i < THREADS; i++) {
    ic_inode *in;
    assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_FILE, 0644, 0, 0, &in), 0);
    inos[i] = ic_inode_number(in);
    assert_int_equal(ic_flush_inodes(e->v, &in, 1), 0);
    ic_inode_put(e->v, in);
    st[i] = (stresser){e, (unsigned)(i + 77), inos[i], 0};
  }
  g_stress_done = 0;
  pthread_t t[THREADS], dropper;
  assert_int_equal(pthread_create(&dropper, NULL, dropper_main, e), 0);
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, stress_main, &st[i]), 0);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  g_stress_done = 1;
  pthread_join(dropper, NULL);
  for (int i = 0; i < THREADS; i++) assert_int_equal(st[i].errors, 0);
  check_volume(e, inos, THREADS);
}

static void test_timed_flush(void **state) {
  env *e = *state;
  /* A second volume over the same imgr and store, with a 20 ms trigger. */
  ic_volume_params p = volume_params(e);
  p.file_flush_trigger_ns = 20000000;
  ic_volume *v;
  assert_int_equal(ic_volume_create(&p, &v), 0);
  ic_inode *in;
  assert_int_equal(ic_inode_create(v, ILAYOUT_INODE_TYPE_FILE, 0644, 0, 0, &in), 0);
  uint64_t ino = ic_inode_number(in);
  assert_int_equal(ic_file_write(v, in, 0, "timed", 5), 0);
  ic_inode_put(v, in); /* left dirty */
  assert_null(ic_fake_imgr_entry(&e->f, ino));
  /* Poll (up to 10 s) for the flusher; the duration itself is not asserted. */
  for (int i = 0; i < 1000 && !ic_fake_imgr_entry(&e->f, ino); i++) ut_sleep_ns(10000000);
  assert_non_null(ic_fake_imgr_entry(&e->f, ino));
  assert_int_equal(ic_inode_get(v, ino, &in), 0);
  assert_false(ic_inode_dirty(in));
  ic_inode_put(v, in);
  ic_volume_destroy(v);
  check_volume(e, &ino, 1);
}

static int count_state(void *ctx, uint64_t ino, ic_lease_state st) {
  (void)ino;
  size_t *n = ctx;
  n[st]++;
  return 0;
}

/* MaxExclusiveLeases / MaxSharedLeases: past a cap, clean unused inodes
 * holding that type give their lease back with the inode (LRU first); the
 * inode cache limit alone would have kept them. */
static void test_lease_caps(void **state) {
  env *e = *state;
  ic_volume_params p = volume_params(e);
  p.inode_cache_limit = 100;
  p.max_shared_leases = 2;
  p.max_exclusive_leases = 3;
  ic_volume *v;
  assert_int_equal(ic_volume_create(&p, &v), 0);
  uint64_t inos[10];
  for (int i = 0; i < 10; i++) {
    ic_inode *in;
    assert_int_equal(ic_inode_create(v, ILAYOUT_INODE_TYPE_FILE, 0644, 0, 0, &in), 0);
    inos[i] = ic_inode_number(in);
    assert_int_equal(ic_file_write(v, in, 0, &i, sizeof(i)), 0);
    ic_inode *one = in;
    assert_int_equal(ic_flush_inodes(v, &one, 1), 0); /* asks for the lease */
    ic_inode_put(v, in);
  }
  uint64_t released = e->f.leases[IC_LEASE_REQUEST_RELEASE];
  /* Enough releases of an inode for the cap check to run. */
  for (int i = 0; i < IC_LEASE_CAP_CHECK; i++) {
    ic_inode *in;
    assert_int_equal(ic_inode_get_shared(v, inos[9], &in), 0);
    ic_inode_put(v, in);
  }
  size_t n[3] = {0, 0, 0};
  assert_int_equal(ic_volume_list_inodes(v, count_state, n), 0);
  assert_true(n[IC_LEASE_STATE_EXCLUSIVE] <= 3);
  assert_int_equal(e->f.leases[IC_LEASE_REQUEST_RELEASE], released + 10 - n[IC_LEASE_STATE_EXCLUSIVE]);
  /* Shared leases: read 6 of them back (each asks for a shared lease). */
  for (int i = 0; i < 6; i++) {
    ic_inode *in;
    assert_int_equal(ic_inode_get_shared(v, inos[i], &in), 0);
    assert_int_equal(ic_inode_load(v, in), 0);
    ic_inode_put(v, in);
  }
  for (int i = 0; i < IC_LEASE_CAP_CHECK; i++) {
    ic_inode *in;
    assert_int_equal(ic_inode_get_shared(v, inos[9], &in), 0);
    ic_inode_put(v, in);
  }
  memset(n, 0, sizeof(n));
  assert_int_equal(ic_volume_list_inodes(v, count_state, n), 0);
  assert_true(n[IC_LEASE_STATE_SHARED] <= 2);
  assert_true(n[IC_LEASE_STATE_EXCLUSIVE] <= 3);
  /* Everything still reads back (the evicted ones reload). */
  for (int i = 0; i < 10; i++) {
    ic_inode *in;
    assert_int_equal(ic_inode_get_shared(v, inos[i], &in), 0);
    assert_int_equal(ic_inode_load(v, in), 0);
    int val = -1;
    size_t got;
    assert_int_equal(ic_file_read(v, in, 0, sizeof(val), &val, &got), 0);
    assert_int_equal(val, i);
    ic_inode_put(v, in);
  }
  ic_volume_destroy(v);
  check_volume(e, inos, 10);
}

/* Uploads that keep failing fill the sealed bytes' cap: a write that needs
 * room then fails with EIO (nothing recorded) as soon as every segment in
 * flight has failed, not after upload_wait_ns (10 minutes here: were it
 * waited for, ctest's timeout would fail the test); once the store works
 * again a commit stores everything. */
static void test_upload_room_fails_fast(void **state) {
  env *e = *state;
  if (g_conn) return; /* faults are the memory store's */
  ic_volume_params p = volume_params(e);
  p.file_flush_trigger_size = 64 * 1024; /* cap: 4 x 64 KiB in flight */
  p.upload_wait_ns = UINT64_C(600000000000);
  ic_volume *v;
  assert_int_equal(ic_volume_create(&p, &v), 0);
  ic_inode *in;
  assert_int_equal(ic_inode_create(v, ILAYOUT_INODE_TYPE_FILE, 0644, 0, 0, &in), 0);
  uint64_t ino = ic_inode_number(in);
  static uint8_t chunk[64 * 1024];
  e->s.fail_puts = 1000000;
  int rc = 0, i;
  for (i = 0; i < 10 && rc == 0; i++) {
    memset(chunk, 'a' + i, sizeof(chunk));
    rc = ic_file_write(v, in, (uint64_t)i * sizeof(chunk), chunk, sizeof(chunk));
  }
  assert_int_equal(rc, -EIO);
  uint64_t written = (uint64_t)(i - 1) * sizeof(chunk); /* the refused write left no trace */
  ic_attr a;
  ic_inode_attr(in, &a);
  assert_int_equal(a.size, written);
  e->s.fail_puts = 0;
  ic_inode *one = in;
  assert_int_equal(ic_flush_inodes(v, &one, 1), 0);
  for (uint64_t off = 0; off < written; off += sizeof(chunk)) {
    size_t got;
    assert_int_equal(ic_file_read(v, in, off, sizeof(chunk), chunk, &got), 0);
    assert_int_equal(got, sizeof(chunk));
    assert_int_equal(chunk[0], 'a' + off / sizeof(chunk));
  }
  ic_inode_put(v, in);
  ic_volume_destroy(v);
  check_volume(e, &ino, 1);
}

static void test_lease_interrupts(void **state) {
  env *e = *state;
  ic_inode *in;
  assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_FILE, 0644, 0, 0, &in), 0);
  uint64_t ino = ic_inode_number(in);
  assert_int_equal(ic_file_write(e->v, in, 0, "leased", 6), 0);
  ic_inode_put(e->v, in); /* dirty */

  /* Demote: flushed first, then Shared; reads need no lease request, a
   * change promotes. */
  assert_int_equal(ic_volume_lease_interrupt(e->v, IC_RPC_INTERRUPT_DEMOTE, ino), 0);
  assert_non_null(ic_fake_imgr_entry(&e->f, ino));
  assert_int_equal(e->f.leases[IC_LEASE_REQUEST_DEMOTE], 1);
  uint64_t before = e->f.leases[IC_LEASE_REQUEST_SHARED] + e->f.leases[IC_LEASE_REQUEST_EXCLUSIVE];
  assert_int_equal(ic_inode_get_shared(e->v, ino, &in), 0);
  char buf[8];
  size_t got;
  assert_int_equal(ic_file_read(e->v, in, 0, sizeof(buf), buf, &got), 0);
  assert_int_equal(got, 6);
  ic_inode_put(e->v, in);
  assert_int_equal(e->f.leases[IC_LEASE_REQUEST_SHARED] + e->f.leases[IC_LEASE_REQUEST_EXCLUSIVE],
                   before);
  assert_int_equal(ic_inode_get(e->v, ino, &in), 0);
  assert_int_equal(e->f.leases[IC_LEASE_REQUEST_PROMOTE], 1);
  assert_int_equal(ic_file_write(e->v, in, 6, "!", 1), 0);
  ic_inode_put(e->v, in);
  /* Demote again: the change is flushed and the lease demoted; a Demote of
   * the now shared lease is then nothing to do. */
  assert_int_equal(ic_volume_lease_interrupt(e->v, IC_RPC_INTERRUPT_DEMOTE, ino), 0);
  assert_int_equal(e->f.leases[IC_LEASE_REQUEST_DEMOTE], 2);
  assert_int_equal(ic_volume_lease_interrupt(e->v, IC_RPC_INTERRUPT_DEMOTE, ino), 0);
  assert_int_equal(e->f.leases[IC_LEASE_REQUEST_DEMOTE], 2);

  /* Release: the cache is dropped; the next use asks for a lease again and
   * reloads from the store. */
  assert_int_equal(ic_volume_lease_interrupt(e->v, IC_RPC_INTERRUPT_RELEASE, ino), 0);
  assert_int_equal(e->f.leases[IC_LEASE_REQUEST_RELEASE], 1);
  uint64_t tails = e->s.tail_gets;
  assert_int_equal(ic_inode_get_shared(e->v, ino, &in), 0);
  assert_int_equal(ic_inode_load(e->v, in), 0);
  if (!g_conn) assert_int_equal(e->s.tail_gets, tails + 1);
  assert_int_equal(ic_file_read(e->v, in, 0, sizeof(buf), buf, &got), 0);
  assert_int_equal(got, 7);
  assert_memory_equal(buf, "leased!", 7);
  /* Changing under a shared lease is refused at commit. */
  assert_int_equal(ic_file_write(e->v, in, 0, "x", 1), 0);
  ic_inode *one = in;
  assert_int_equal(ic_flush_inodes(e->v, &one, 1), -ENOLCK);
  assert_int_equal(ic_file_write(e->v, in, 0, "l", 1), 0);
  ic_inode_put(e->v, in);
  assert_int_equal(ic_inode_get(e->v, ino, &in), 0);
  assert_int_equal(ic_flush_inodes(e->v, &in, 1), 0);
  ic_inode_put(e->v, in);
  /* Not cached at all, or an unknown type. */
  assert_int_equal(ic_volume_lease_interrupt(e->v, IC_RPC_INTERRUPT_RELEASE, 0x123456), 0);
  assert_int_equal(ic_volume_lease_interrupt(e->v, IC_RPC_INTERRUPT_UNMOUNT, ino), -EINVAL);
  check_volume(e, &ino, 1);
}

/* imgr forgot the mount and the client mounted again (ic_volume_leases_reset):
 * every lease reads as none; clean inodes reload, dirty ones keep their
 * changes when imgr still has their base, else drop them with EIO; a
 * commit whose reply was lost is recognised as landed. */
static void test_leases_reset(void **state) {
  env *e = *state;
  ic_inode *in;
  assert_int_equal(ic_inode_create(e->v, ILAYOUT_INODE_TYPE_FILE, 0644, 0, 0, &in), 0);
  uint64_t ino = ic_inode_number(in);
  uint8_t data[3000];
  for (size_t i = 0; i < sizeof(data); i++) data[i] = byte_at(3, i);
  assert_int_equal(ic_file_write(e->v, in, 0, data, 1000), 0);
  flush1(e, in);
  assert_int_equal(ic_file_write(e->v, in, 1000, data + 1000, 1000), 0);
  ic_inode_put(e->v, in); /* dirty */

  /* Dirty, base unchanged at imgr: kept, committed under the new lease. */
  ic_volume_leases_reset(e->v);
  uint64_t exclusive = e->f.leases[IC_LEASE_REQUEST_EXCLUSIVE];
  assert_int_equal(ic_inode_get_shared(e->v, ino, &in), 0);
  assert_int_equal(e->f.leases[IC_LEASE_REQUEST_EXCLUSIVE], exclusive + 1);
  assert_true(ic_inode_dirty(in));
  flush1(e, in);
  ic_inode_put(e->v, in);

  /* Clean: the cached head is dropped and read again. */
  ic_volume_leases_reset(e->v);
  uint64_t tails = e->s.tail_gets;
  assert_int_equal(ic_inode_get_shared(e->v, ino, &in), 0);
  assert_int_equal(ic_inode_load(e->v, in), 0);
  if (!g_conn) assert_int_equal(e->s.tail_gets, tails + 1);
  read_compare(e, in, data, 2000);
  ic_inode_put(e->v, in);

  /* Dirty, but imgr went back to an older head (it lost a commit that was
   * never checkpointed) while the lease was gone: dropped, EIO. */
  const ic_inode_table_entry *te = ic_fake_imgr_entry(&e->f, ino);
  assert_non_null(te);
  ic_inode_table_entry committed = *te;
  assert_int_equal(ic_inode_get(e->v, ino, &in), 0);
  assert_int_equal(ic_file_write(e->v, in, 2000, data + 2000, 1000), 0);
  flush1(e, in);
  assert_int_equal(ic_file_write(e->v, in, 0, "lost", 4), 0);
  ic_inode_put(e->v, in);
  *(ic_inode_table_entry *)ic_fake_imgr_entry(&e->f, ino) = committed; /* rolled back */
  ic_volume_leases_reset(e->v);
  assert_int_equal(ic_inode_get(e->v, ino, &in), -EIO);
  assert_int_equal(ic_inode_get(e->v, ino, &in), 0);
  assert_false(ic_inode_dirty(in));
  assert_int_equal(ic_inode_load(e->v, in), 0);
  read_compare(e, in, data, 2000); /* what imgr has */

  /* The commit landed but its reply was lost: not sent a third time. */
  assert_int_equal(ic_file_write(e->v, in, 2000, data + 2000, 1000), 0);
  e->f.land_failed_puts = 1;
  uint64_t puts = e->f.puts;
  ic_inode *one = in;
  assert_int_equal(ic_flush_inodes(e->v, &one, 1), 0);
  assert_false(ic_inode_dirty(in));
  assert_int_equal(e->f.puts, puts + 1);
  ic_inode_put(e->v, in);
  in = reload(e, ino);
  read_compare(e, in, data, 3000);
  assert_int_equal(ic_inode_check_accounting(e->v, in), 0);
  ic_inode_put(e->v, in);
  /* (no check_volume: the rolled back commit left garbage, as in imgr) */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_file_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_directory_thousands, setup, teardown),
      cmocka_unit_test_setup_teardown(test_random_against_model, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flush_failures_keep_everything, setup, teardown),
      cmocka_unit_test_setup_teardown(test_multi_inode_commit_is_one_rpc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inode_cache_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_size_trigger_seals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_segment_buffers_reused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lease_caps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_upload_room_fails_fast, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timed_flush, setup, teardown),
      cmocka_unit_test_setup_teardown(test_threads_stress, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lease_interrupts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_leases_reset, setup, teardown),
  };
  const struct CMUnitTest over_iswift[] = {
      cmocka_unit_test_setup_teardown(test_file_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_directory_thousands, setup, teardown),
      cmocka_unit_test_setup_teardown(test_random_against_model, setup, teardown),
      cmocka_unit_test_setup_teardown(test_multi_inode_commit_is_one_rpc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_inode_cache_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_size_trigger_seals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_segment_buffers_reused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_threads_stress, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lease_interrupts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_leases_reset, setup, teardown),
  };
  int failed = cmocka_run_group_tests_name("mem_store", tests, NULL, NULL);
  failed +=
      cmocka_run_group_tests_name("iswift", over_iswift, iswift_group_setup, iswift_group_teardown);
  return failed;
}
