/* imgr core against an in-process iswift: format (byte layout of
 * ilayout.md 13), the internal volume API (put/get/delete entries, nonces,
 * status, flush), checkpoints, orderly restart, kill -9 restart (a child
 * process of this binary), garbage collection, bad input and storage
 * failures. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bucketstats.h"
#include "ilayout.h"
#include "imgr.h"
#include "imgr_internal.h" /* the inode table, to drop clean pages */
#include "iswift.h"
#include "logger.h"
#include "sortedmap.h"
#include "swiftclient.h"
#include "utils.h"

static iswift *g_sw;
static swift_conn *g_conn;   /* the test's own view of the account */
static char g_token[256], g_account[512];
static char g_self[1024];
static unsigned g_container_seq;

typedef struct env {
  conf_map *conf;
  imgr_config cfg;
  imgr_server *srv;
  char container[64];
  char url[700];
} env;

static void make_container(env *e) {
  snprintf(e->container, sizeof e->container, "con%u_%u", (unsigned)getpid(), g_container_seq++);
  assert_int_equal(swift_container_put(g_conn, e->container, NULL, 0), 0);
  snprintf(e->url, sizeof e->url, "%s/%s", g_account, e->container);
}

/* The server of the running test, torn down even when an assertion fails
 * (otherwise its IMGR stats registration fails every later test). */
static env *g_cur;

static int teardown(void **state) {
  if (g_cur && g_cur->srv) {
    iswift_set_faults(g_sw, &(iswift_faults){0});
    imgr_server_destroy(g_cur->srv);
    g_cur->srv = NULL;
    imgr_config_free(&g_cur->cfg);
    conf_free(g_cur->conf);
  }
  g_cur = NULL;
  return 0;
}

/* dev.conf plus overrides (NULL-terminated). */
static void server_up(env *e, const char *const *overrides) {
  char path[1024], err[CONF_ERR_MAX];
  const char *src = getenv("PFS_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/imgr/dev.conf", src ? src : ".");
  e->conf = conf_new();
  assert_int_equal(conf_update_from_file(e->conf, path, err, sizeof err), 0);
  const char *base[] = {"IMGR.CheckPointInterval=1h", "IMGR.SwiftRetryLimit=1",
                        "IMGR.SwiftRetryDelay=10ms", "IMGR.FetchNonceRangeToReturn=10",
                        "IMGR.LogToConsole=false", NULL};
  for (const char *const *o = base; *o; o++)
    assert_int_equal(conf_update_from_string(e->conf, *o, err, sizeof err), 0);
  for (const char *const *o = overrides; o && *o; o++)
    assert_int_equal(conf_update_from_string(e->conf, *o, err, sizeof err), 0);
  if (imgr_config_parse(e->conf, &e->cfg, err, sizeof err)) fail_msg("%s", err);
  assert_int_equal(imgr_server_create(&e->cfg, &e->srv), 0);
  g_cur = e;
}

static void server_down(env *e) {
  assert_int_equal(imgr_server_destroy(e->srv), 0);
  e->srv = NULL;
  imgr_config_free(&e->cfg);
  conf_free(e->conf);
  e->conf = NULL;
  g_cur = NULL;
}

static imgr_volume *serve(env *e, const char *token) {
  assert_int_equal(imgr_volume_serve(e->srv, "vol", e->url, token), 0);
  imgr_volume *v;
  assert_int_equal(imgr_volume_get_ref(e->srv, "vol", &v), 0);
  return v;
}

static size_t get_obj(env *e, uint64_t obj, uint8_t *buf, size_t cap) {
  char name[17];
  ilayout_object_number_to_name(obj, name);
  size_t got = 0;
  swift_range all = {SWIFT_RANGE_ALL, 0, 0};
  assert_int_equal(swift_object_get(g_conn, e->container, name, all, buf, cap, &got, NULL), 0);
  return got;
}

static bool exists(env *e, uint64_t obj) {
  char name[17];
  ilayout_object_number_to_name(obj, name);
  int rc = swift_object_head(g_conn, e->container, name, NULL, NULL);
  assert_true(rc == 0 || rc == -ENOENT);
  return rc == 0;
}

typedef struct names { char n[64][32]; size_t count; } names;
static int collect(void *ctx, const swift_list_entry *le) {
  names *ns = ctx;
  if (ns->count < 64) snprintf(ns->n[ns->count++], 32, "%s", le->name);
  return 0;
}

/* ---- format ----------------------------------------------------------- */

static void test_format_layout(void **state) {
  env e = {0};
  make_container(&e);
  server_up(&e, NULL);
  assert_int_equal(imgr_format(e.srv, e.url, g_token, false), 0);
  names ns = {0};
  assert_int_equal(swift_list(g_conn, e.container, &(swift_list_opts){0}, collect, &ns, NULL), 0);
  assert_int_equal(ns.count, 3);
  assert_string_equal(ns.n[0], "0000000000000000");
  assert_string_equal(ns.n[1], "2000000000000000");
  assert_string_equal(ns.n[2], "3000000000000000");
  uint8_t buf[1024];
  size_t n = get_obj(&e, 0, buf, sizeof buf);
  assert_int_equal(n, 67);
  assert_memory_equal(buf, "0000000000000001 0000000000000003 0000000000000060 0000000000000003", 67);
  /* Object 3: 58 bytes of inode table, then the 96-byte superblock. */
  n = get_obj(&e, 3, buf, sizeof buf);
  assert_int_equal(n, 154);
  ilayout_superblock_v1 sb;
  assert_int_equal(ilayout_superblock_v1_decode(buf + 58, 96, &sb), 0);
  assert_int_equal(sb.inode_table_root_object_number, 3);
  assert_int_equal(sb.inode_table_root_object_offset, 0);
  assert_int_equal(sb.inode_table_root_object_length, 58);
  assert_int_equal(sb.inode_table_layout_len, 1);
  assert_int_equal(sb.inode_table_layout[0].bytes_written, 58);
  assert_int_equal(sb.inode_object_count, 1);
  assert_int_equal(sb.inode_bytes_written, 63);
  assert_int_equal(sb.inode_bytes_referenced, 63);
  assert_int_equal(sb.pending_delete_object_numbers_len, 0);
  ilayout_superblock_v1_free(&sb);
  static const uint8_t trailer_sb[8] = {0x42, 0x53, 0x01, 0x00, 0x58, 0x00, 0x00, 0x00};
  assert_memory_equal(buf + 146, trailer_sb, 8);
  /* Object 2: 63 bytes of directory, then the 174-byte root inode head. */
  n = get_obj(&e, 2, buf, sizeof buf);
  assert_int_equal(n, 237);
  ilayout_inode_head_v1 h;
  assert_int_equal(ilayout_inode_head_v1_decode(buf + 63, 174, &h), 0);
  assert_int_equal(h.inode_number, 1);
  assert_int_equal(h.inode_type, ILAYOUT_INODE_TYPE_DIR);
  assert_int_equal(h.link_table_len, 2);
  assert_int_equal(h.mode, 0777);
  assert_int_equal(h.payload_object_number, 2);
  assert_int_equal(h.payload_object_length, 63);
  assert_int_equal(h.layout_len, 1);
  assert_int_equal(h.layout[0].bytes_referenced, 63);
  ilayout_inode_head_v1_free(&h);
  static const uint8_t trailer_ih[8] = {0x48, 0x49, 0x01, 0x00, 0xA6, 0x00, 0x00, 0x00};
  assert_memory_equal(buf + 229, trailer_ih, 8);

  /* A second format is refused unless forced. */
  assert_int_equal(imgr_format(e.srv, e.url, g_token, false), -EEXIST);
  assert_int_equal(imgr_format(e.srv, e.url, g_token, true), 0);
  /* Bad input. */
  assert_int_equal(imgr_format(e.srv, "not a url", g_token, false), -EINVAL);
  assert_int_equal(imgr_format(e.srv, e.url, "AUTH_wrong", true), -EACCES);

  /* The fresh-read JSON of §2.3. */
  imgr_volume *v = serve(&e, g_token);
  json_t *j;
  assert_int_equal(imgr_volume_json(e.srv, "vol", NULL, &j), 0);
  char *s = json_dumps(j, JSON_COMPACT);
  char expect[2048];
  snprintf(expect, sizeof expect,
           "{\"Name\":\"vol\",\"StorageURL\":\"%s\",\"AuthToken\":\"%s\",\"HealthyMounts\":0,"
           "\"LeasesExpiredMounts\":0,\"AuthTokenExpiredMounts\":0,"
           "\"SuperBlockObjectName\":\"3000000000000000\",\"SuperBlockLength\":96,"
           "\"ReservedToNonce\":3,\"InodeTableMinInodesPerNode\":1024,"
           "\"InodeTableMaxInodesPerNode\":2048,\"InodeTableInodeCount\":1,\"InodeTableHeight\":1,"
           "\"InodeTableLayout\":[{\"ObjectName\":\"3000000000000000\",\"ObjectSize\":58,"
           "\"BytesReferenced\":58}],\"InodeObjectCount\":1,\"InodeObjectSize\":63,"
           "\"InodeBytesReferenced\":63,\"PendingDeleteObjectNameArray\":[],"
           "\"InodeTable\":[{\"InodeNumber\":1,\"InodeHeadObjectName\":\"2000000000000000\","
           "\"InodeHeadLength\":174}]}",
           e.url, g_token);
  assert_string_equal(s, expect);
  free(s);
  json_decref(j);
  assert_int_equal(imgr_volume_inode_json(e.srv, "vol", 1, NULL, &j), 0);
  s = json_dumps(j, JSON_COMPACT);
  assert_non_null(strstr(s, "\"Mode\":511,\"UserID\":0,\"GroupID\":0,\"StreamTable\":[],"
                            "\"MinDirEntriesPerNode\":512,\"MaxDirEntriesPerNode\":1024,"
                            "\"DirEntryCount\":2,\"DirectoryHeight\":1,\"Payload\":[{\"BaseName\":"
                            "\".\",\"InodeNumber\":1,\"InodeType\":\"Dir\"},{\"BaseName\":\"..\","
                            "\"InodeNumber\":1,\"InodeType\":\"Dir\"}],\"Layout\":[{\"ObjectName\":"
                            "\"2000000000000000\",\"ObjectSize\":63,\"BytesReferenced\":63}]}"));
  free(s);
  json_decref(j);
  assert_int_equal(imgr_volume_inode_json(e.srv, "vol", 99, NULL, &j), -ENOENT);
  assert_int_equal(imgr_volume_json(e.srv, "nope", NULL, &j), -ENOENT);
  imgr_volume_put_ref(v);
  server_down(&e);
}

/* ---- internal API ------------------------------------------------------ */

/* A client-written file inode: data + head in object obj. */
static uint64_t write_inode(env *e, uint64_t ino, uint64_t obj) {
  uint8_t data[16] = "0123456789abcdef";
  ilayout_layout_entry_v1 lay = {obj, sizeof data, sizeof data};
  ilayout_inode_head_v1 h = {0};
  h.inode_number = ino;
  h.inode_type = ILAYOUT_INODE_TYPE_FILE;
  h.mode = 0644;
  h.size = sizeof data;
  h.layout_len = 1;
  h.layout = &lay;
  uint8_t buf[512];
  memcpy(buf, data, sizeof data);
  ilayout_wcursor w;
  ilayout_wcursor_init(&w, buf + sizeof data, sizeof buf - sizeof data);
  assert_int_equal(ilayout_inode_head_v1_encode(&h, &w), 0);
  size_t hl = ilayout_wcursor_pos(&w);
  char name[17];
  ilayout_object_number_to_name(obj, name);
  assert_int_equal(swift_object_put(g_conn, e->container, name, buf, sizeof data + hl, NULL, 0), 0);
  return hl;
}

/* put_range(first, n, objbase) gives inode first+i -> (objbase+i, 100+i). */
static void check_entries_len(imgr_volume *v, uint64_t first, uint64_t n, uint64_t objbase,
                              uint64_t lenbase) {
  for (uint64_t i = 0; i < n; i++) {
    imgr_inode_entry got;
    assert_int_equal(imgr_volume_get_inode(v, first + i, &got), 0);
    assert_int_equal(got.inode_head_object_number, objbase + i);
    assert_int_equal(got.inode_head_length, lenbase + i);
  }
}

static void check_entries(imgr_volume *v, uint64_t first, uint64_t n, uint64_t objbase) {
  check_entries_len(v, first, n, objbase, 100);
}

static const char *const small_tree[] = {"IMGR.InodeTableMaxInodesPerBPlusTreePage=4",
                                         "IMGR.InodeTableCacheEvictLowLimit=4",
                                         "IMGR.InodeTableCacheEvictHighLimit=8", NULL};

static void put_range(imgr_volume *v, uint64_t first, uint64_t n, uint64_t objbase) {
  imgr_inode_entry *es = calloc(n, sizeof *es);
  for (uint64_t i = 0; i < n; i++) es[i] = (imgr_inode_entry){first + i, objbase + i, 100 + i};
  imgr_put_batch b = {es, n, (int64_t)n, 16 * (int64_t)n, 16 * (int64_t)n, NULL, 0};
  assert_int_equal(imgr_volume_put_inodes(v, &b), 0);
  free(es);
}

static uint64_t reserve(imgr_volume *v, uint64_t want) {
  uint64_t first = 0, got = 0;
  while (got < want) {
    uint64_t next, n;
    assert_int_equal(imgr_volume_fetch_nonces(v, &next, &n), 0);
    if (!first) first = next;
    assert_int_equal(next, first + got);
    got += n;
  }
  return first;
}

static void test_entries_checkpoint_restart(void **state) {
  env e = {0};
  make_container(&e);
  server_up(&e, small_tree);
  assert_int_equal(imgr_format(e.srv, e.url, g_token, false), 0);
  imgr_volume *v = serve(&e, g_token);
  uint64_t next, n;
  assert_int_equal(imgr_volume_fetch_nonces(v, &next, &n), 0);
  assert_int_equal(next, 4);
  assert_int_equal(n, 10);
  uint64_t first = reserve(v, 400);
  /* Half of the 400 nonces are inodes, half their objects. */
  put_range(v, first, 200, first + 200);
  check_entries(v, first, 200, first + 200);
  imgr_volume_status st;
  assert_int_equal(imgr_volume_status_get(v, &st), 0);
  assert_int_equal(st.num_inodes, 201);
  assert_int_equal(st.object_count, 201);
  assert_int_equal(imgr_volume_flush(v), 0);
  assert_int_equal(imgr_volume_status_get(v, &st), 0);
  assert_int_not_equal(st.superblock_object_number, 3);
  /* The first flush made object 3 garbage (dirty again, to record it); the
   * second records it and deletes it; then the volume is clean. */
  assert_int_equal(imgr_volume_flush(v), 0);
  imgr_volume_wait_deletes(v);
  assert_int_equal(imgr_volume_status_get(v, &st), 0);
  assert_false(st.dirty);
  assert_int_equal(st.pending_deletes, 0);
  uint64_t sbo = st.superblock_object_number;
  assert_int_equal(imgr_volume_flush(v), 0); /* clean: no new checkpoint */
  assert_int_equal(imgr_volume_status_get(v, &st), 0);
  assert_int_equal(st.superblock_object_number, sbo);
  /* Small cache: entries come back through page-ins. */
  check_entries(v, first, 200, first + 200);
  /* Unflushed changes survive an orderly stop (final checkpoint). */
  put_range(v, first, 50, first + 300);
  imgr_volume_put_ref(v);
  server_down(&e);

  server_up(&e, small_tree);
  v = serve(&e, g_token);
  check_entries(v, first, 50, first + 300);
  check_entries_len(v, first + 50, 150, first + 250, 150);
  assert_int_equal(imgr_volume_status_get(v, &st), 0);
  assert_int_equal(st.num_inodes, 201);
  assert_int_equal(st.object_count, 251); /* 1 + 200 + 50: both batches counted */
  /* Nonces are never handed out twice across a restart. */
  assert_int_equal(imgr_volume_fetch_nonces(v, &next, &n), 0);
  assert_true(next > first + 400);
  json_t *j;
  assert_int_equal(imgr_volume_json(e.srv, "vol", NULL, &j), 0);
  assert_true(json_integer_value(json_object_get(j, "InodeTableHeight")) >= 3);
  assert_int_equal(json_integer_value(json_object_get(j, "InodeTableInodeCount")), 201);
  json_decref(j);
  imgr_volume_put_ref(v);
  server_down(&e);
}

/* Dirty pages beyond the cache's high watermark start a checkpoint at
 * once (the interval here is an hour). */
static void test_early_checkpoint(void **state) {
  env e = {0};
  make_container(&e);
  server_up(&e, small_tree);
  assert_int_equal(imgr_format(e.srv, e.url, g_token, false), 0);
  imgr_volume *v = serve(&e, g_token);
  uint64_t first = reserve(v, 200);
  put_range(v, first, 100, first + 100);
  imgr_volume_status st = {0};
  for (int i = 0; i < 200; i++) {
    assert_int_equal(imgr_volume_status_get(v, &st), 0);
    if (st.superblock_object_number != 3) break;
    ut_sleep_ns(50000000);
  }
  assert_int_not_equal(st.superblock_object_number, 3);
  imgr_volume_put_ref(v);
  server_down(&e);
}

/* Writers, readers and the checkpoint thread (every 5 ms) at once. */
/* Inode first+i -> (objbase+i, lenbase+i). */
typedef struct worker_arg {
  imgr_volume *v;
  uint64_t first, n, objbase, lenbase;
  int rc;
} worker_arg;

static void *writer(void *p) {
  worker_arg *a = p;
  for (uint64_t i = 0; i < a->n && !a->rc; i += 10) {
    imgr_inode_entry es[10];
    for (int k = 0; k < 10; k++)
      es[k] = (imgr_inode_entry){a->first + i + k, a->objbase + i + k, a->lenbase + i + k};
    imgr_put_batch b = {es, 10, 10, 160, 160, NULL, 0};
    a->rc = imgr_volume_put_inodes(a->v, &b);
  }
  return NULL;
}

static void *reader(void *p) {
  worker_arg *a = p;
  for (int round = 0; round < 20 && !a->rc; round++)
    for (uint64_t i = 0; i < a->n; i++) {
      imgr_inode_entry got;
      int rc = imgr_volume_get_inode(a->v, a->first + i, &got);
      if (rc == 0 && got.inode_head_length != a->lenbase + i) a->rc = -EINVAL;
      else if (rc && rc != -ENOENT) a->rc = rc;
    }
  return NULL;
}

static void test_concurrency(void **state) {
  env e = {0};
  make_container(&e);
  const char *const ov[] = {"IMGR.InodeTableMaxInodesPerBPlusTreePage=8",
                            "IMGR.InodeTableCacheEvictLowLimit=16",
                            "IMGR.InodeTableCacheEvictHighLimit=32",
                            "IMGR.CheckPointInterval=5ms", "IMGR.FetchNonceRangeToReturn=1000",
                            NULL};
  server_up(&e, ov);
  assert_int_equal(imgr_format(e.srv, e.url, g_token, false), 0);
  imgr_volume *v = serve(&e, g_token);
  uint64_t first = reserve(v, 2000);
  worker_arg w[4], r[2];
  pthread_t tw[4], tr[2];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker_arg){v, first + 250 * i, 250, first + 1000 + 250 * i, 100 + 250 * i, 0};
    assert_int_equal(pthread_create(&tw[i], NULL, writer, &w[i]), 0);
  }
  for (int i = 0; i < 2; i++) {
    r[i] = (worker_arg){v, first + 500 * i, 500, 0, 100 + 500 * i, 0};
    assert_int_equal(pthread_create(&tr[i], NULL, reader, &r[i]), 0);
  }
  for (int i = 0; i < 4; i++) pthread_join(tw[i], NULL);
  for (int i = 0; i < 2; i++) pthread_join(tr[i], NULL);
  for (int i = 0; i < 4; i++) assert_int_equal(w[i].rc, 0);
  for (int i = 0; i < 2; i++) assert_int_equal(r[i].rc, 0);
  assert_int_equal(imgr_volume_flush(v), 0);
  imgr_volume_put_ref(v);
  server_down(&e);
  server_up(&e, small_tree);
  v = serve(&e, g_token);
  check_entries(v, first, 1000, first + 1000);
  imgr_volume_status st;
  assert_int_equal(imgr_volume_status_get(v, &st), 0);
  assert_int_equal(st.num_inodes, 1001);
  assert_int_equal(st.object_count, 1001);
  imgr_volume_put_ref(v);
  server_down(&e);
}

static void test_bad_batches(void **state) {
  env e = {0};
  make_container(&e);
  server_up(&e, NULL);
  assert_int_equal(imgr_format(e.srv, e.url, g_token, false), 0);
  imgr_volume *v = serve(&e, g_token);
  uint64_t first = reserve(v, 10);
  imgr_inode_entry ok = {first, first + 1, 100};
  imgr_inode_entry bad_ino = {first + 1000, first + 1, 100};
  imgr_inode_entry zero_obj = {first, 0, 100};
  uint64_t sbobj = 3, future = first + 1000;
  imgr_put_batch b1 = {&bad_ino, 1, 0, 0, 0, NULL, 0};
  imgr_put_batch b2 = {&zero_obj, 1, 0, 0, 0, NULL, 0};
  imgr_put_batch b3 = {&ok, 1, 0, 0, 0, &sbobj, 1};
  imgr_put_batch b4 = {&ok, 1, -5, 0, 0, NULL, 0};
  imgr_put_batch b5 = {&ok, 1, 0, 0, 0, &future, 1};
  imgr_put_batch b6 = {&ok, 1, INT64_MAX, 0, 0, NULL, 0};
  assert_int_equal(imgr_volume_put_inodes(v, &b1), -EINVAL);
  assert_int_equal(imgr_volume_put_inodes(v, &b2), -EINVAL);
  assert_int_equal(imgr_volume_put_inodes(v, &b3), -EINVAL);
  assert_int_equal(imgr_volume_put_inodes(v, &b4), -EINVAL);
  assert_int_equal(imgr_volume_put_inodes(v, &b5), -EINVAL);
  assert_int_equal(imgr_volume_put_inodes(v, &b6), 0);
  imgr_put_batch b7 = {&ok, 1, INT64_MAX, 0, 0, NULL, 0};
  assert_int_equal(imgr_volume_put_inodes(v, &b7), 0);
  assert_int_equal(imgr_volume_put_inodes(v, &b7), -EINVAL); /* would wrap */
  imgr_inode_entry got;
  assert_int_equal(imgr_volume_get_inode(v, first + 5, &got), -ENOENT);
  assert_int_equal(imgr_volume_delete_inode(v, first + 5), -ENOENT);
  imgr_volume_put_ref(v);
  /* Unknown volume, duplicate serve, bad names and URLs. */
  assert_int_equal(imgr_volume_get_ref(e.srv, "other", &v), -ENOENT);
  assert_int_equal(imgr_volume_serve(e.srv, "vol", e.url, NULL), -EEXIST);
  assert_int_equal(imgr_volume_serve(e.srv, "a/b", e.url, NULL), -EINVAL);
  assert_int_equal(imgr_volume_serve(e.srv, "x", "ftp://h/v1/a/c", NULL), -EINVAL);
  assert_int_equal(imgr_volume_unserve(e.srv, "other"), -ENOENT);
  server_down(&e);
}

static void test_tokens(void **state) {
  env e = {0};
  make_container(&e);
  server_up(&e, NULL);
  assert_int_equal(imgr_format(e.srv, e.url, g_token, false), 0);
  /* No token: nothing can be read. */
  imgr_volume *v = serve(&e, NULL);
  assert_int_equal(imgr_volume_activate(v), -EACCES);
  json_t *j;
  assert_int_equal(imgr_volume_json(e.srv, "vol", NULL, &j), -EACCES);
  /* An explicit token (X-Auth-Token) works without changing the volume. */
  assert_int_equal(imgr_volume_json(e.srv, "vol", g_token, &j), 0);
  json_decref(j);
  imgr_volume_put_ref(v);
  assert_int_equal(imgr_volume_unserve(e.srv, "vol"), 0);
  /* A wrong static token is refused and then forgotten. */
  v = serve(&e, "AUTH_wrong");
  assert_int_equal(imgr_volume_activate(v), -EACCES);
  json_t *list = imgr_volume_list_json(e.srv);
  assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "AuthToken")), "");
  json_decref(list);
  imgr_volume_put_ref(v);
  /* A storage URL that does not answer. */
  assert_int_equal(imgr_volume_serve(e.srv, "dead", "http://127.0.0.1:1/v1/AUTH_x/c", g_token), 0);
  assert_int_equal(imgr_volume_get_ref(e.srv, "dead", &v), 0);
  int rc = imgr_volume_activate(v);
  assert_true(rc == -ECONNREFUSED || rc == -EIO);
  imgr_volume_put_ref(v);
  server_down(&e);
}

/* The RPC layer's token source: mount tokens are picked round-robin; a
 * refused one is reported and the static token is left alone. */
typedef struct tsrc_state {
  const char *tokens[2];
  bool bad[2];       /* the RPC layer moves a refused mount off the healthy list */
  unsigned next, picks;
  uint64_t rejected_id;
  unsigned rejected;
} tsrc_state;

static int tsrc_pick(void *ctx, char *buf, size_t len, uint64_t *id) {
  tsrc_state *t = ctx;
  for (int k = 0; k < 2; k++) {
    unsigned i = t->next++ % 2;
    if (t->bad[i]) continue;
    t->picks++;
    snprintf(buf, len, "%s", t->tokens[i]);
    *id = i;
    return 0;
  }
  return -EACCES;
}

static void tsrc_rejected(void *ctx, uint64_t id) {
  tsrc_state *t = ctx;
  t->rejected++;
  t->rejected_id = id;
  t->bad[id] = true;
}

static void test_token_source(void **state) {
  env e = {0};
  make_container(&e);
  server_up(&e, NULL);
  assert_int_equal(imgr_format(e.srv, e.url, g_token, false), 0);
  imgr_volume *v = serve(&e, "AUTH_static_unused");
  tsrc_state ts = {{g_token, "AUTH_bad_mount"}, {false, false}, 0, 0, 0, 0};
  imgr_token_source src = {tsrc_pick, tsrc_rejected, NULL, &ts};
  imgr_volume_set_token_source(v, &src);
  /* Checkpoint read with the good token, superblock with the bad one. */
  assert_int_equal(imgr_volume_activate(v), -EACCES);
  assert_int_equal(ts.rejected, 1);
  assert_int_equal(ts.rejected_id, 1);
  assert_int_equal(imgr_volume_activate(v), 0);
  uint64_t next, n;
  for (int i = 0; i < 4; i++) assert_int_equal(imgr_volume_fetch_nonces(v, &next, &n), 0);
  assert_int_equal(ts.rejected, 1);
  ts.bad[0] = true; /* no healthy mount: no token, no static fallback needed */
  json_t *list = imgr_volume_list_json(e.srv);
  assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "AuthToken")),
                      "AUTH_static_unused");
  json_decref(list);
  imgr_volume_set_token_source(v, NULL);
  /* Back to the static token, which is wrong: refused, then cleared. */
  assert_int_equal(imgr_volume_fetch_nonces(v, &next, &n), -EACCES);
  list = imgr_volume_list_json(e.srv);
  assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "AuthToken")), "");
  json_decref(list);
  imgr_volume_put_ref(v);
  server_down(&e);
}

/* The count of the registered stat IMGR.<name> (imgr.md 4.15). */
static uint64_t stat_count(const char *name) {
  char *text;
  assert_int_equal(bs_sprint(BS_FORMAT_JSON, "IMGR", "", &text), 0);
  json_t *root = json_loads(text, 0, NULL);
  free(text);
  assert_non_null(root);
  const char *key;
  json_t *val, *found = NULL;
  size_t nl = strlen(name);
  json_object_foreach(root, key, val) {
    size_t kl = strlen(key);
    if (kl > nl && key[kl - nl - 1] == '.' && strcmp(key + kl - nl, name) == 0) found = val;
  }
  assert_non_null(found);
  uint64_t n = (uint64_t)json_integer_value(json_object_get(found, "count"));
  json_decref(root);
  return n;
}

static const char *const swift_stats[] = {"SwiftObjectGetUsecs", "SwiftObjectGetRangeUsecs",
                                          "SwiftObjectGetTailUsecs", "SwiftObjectPutUsecs",
                                          "SwiftObjectDeleteUsecs"};

/* Also checks that every Swift object stat was fed along the way. */
static void test_gc(void **state) {
  env e = {0};
  make_container(&e);
  server_up(&e, (const char *const[]){"IMGR.ParallelObjectDeletePerVolumeLimit=2",
                                      "IMGR.InodeTableMaxInodesPerBPlusTreePage=4", NULL});
  uint64_t before[5];
  for (int k = 0; k < 5; k++) before[k] = stat_count(swift_stats[k]);
  assert_int_equal(imgr_format(e.srv, e.url, g_token, false), 0);
  imgr_volume *v = serve(&e, g_token);
  uint64_t first = reserve(v, 30);
  /* 5 inodes, each in its own object, then each rewritten to a new one. */
  imgr_inode_entry es[5];
  for (int i = 0; i < 5; i++) {
    uint64_t hl = write_inode(&e, first + i, first + 10 + i);
    es[i] = (imgr_inode_entry){first + i, first + 10 + i, hl};
  }
  imgr_put_batch b = {es, 5, 5, 5 * 16, 5 * 16, NULL, 0};
  assert_int_equal(imgr_volume_put_inodes(v, &b), 0);
  assert_int_equal(imgr_volume_flush(v), 0);
  uint64_t old[5];
  for (int i = 0; i < 5; i++) {
    uint64_t hl = write_inode(&e, first + i, first + 20 + i);
    old[i] = first + 10 + i;
    es[i] = (imgr_inode_entry){first + i, first + 20 + i, hl};
  }
  imgr_put_batch b2 = {es, 5, 0, 0, 0, old, 5};
  assert_int_equal(imgr_volume_put_inodes(v, &b2), 0);
  /* Not deleted before a checkpoint commits their dereference. */
  for (int i = 0; i < 5; i++) assert_true(exists(&e, old[i]));
  assert_int_equal(imgr_volume_flush(v), 0);
  imgr_volume_wait_deletes(v);
  for (int i = 0; i < 5; i++) {
    assert_false(exists(&e, old[i]));
    assert_true(exists(&e, first + 20 + i));
  }
  /* An object already gone (a replay after a restart) counts as deleted. */
  uint64_t ghost = first + 29;
  imgr_put_batch b3 = {NULL, 0, 0, 0, 0, &ghost, 1};
  assert_int_equal(imgr_volume_put_inodes(v, &b3), 0);
  assert_int_equal(imgr_volume_flush(v), 0);
  imgr_volume_wait_deletes(v);
  /* Deleting an inode queues its objects. */
  assert_int_equal(imgr_volume_delete_inode(v, first), 0);
  imgr_inode_entry got;
  assert_int_equal(imgr_volume_get_inode(v, first, &got), -ENOENT);
  assert_int_equal(imgr_volume_flush(v), 0);
  imgr_volume_wait_deletes(v);
  assert_false(exists(&e, first + 20));
  imgr_volume_status st;
  assert_int_equal(imgr_volume_status_get(v, &st), 0);
  assert_int_equal(st.object_count, 5); /* root + 4 files */
  /* Nothing live was deleted: every table object and inode object is
   * there, and only live objects, 0 and pending ones remain. */
  assert_int_equal(imgr_volume_flush(v), 0);
  imgr_volume_wait_deletes(v);
  json_t *j;
  assert_int_equal(imgr_volume_json(e.srv, "vol", NULL, &j), 0);
  json_t *lay = json_object_get(j, "InodeTableLayout"), *it;
  size_t i;
  json_array_foreach(lay, i, it) {
    uint64_t o;
    const char *nm = json_string_value(json_object_get(it, "ObjectName"));
    assert_int_equal(ilayout_object_name_to_number(nm, 16, &o), 0);
    assert_true(exists(&e, o));
  }
  size_t live = json_array_size(lay) + 1 /* 0 */ + 1 /* 2 */ + 4 /* inodes */ + 1 /* sb */;
  size_t pend = json_array_size(json_object_get(j, "PendingDeleteObjectNameArray"));
  names ns = {0};
  assert_int_equal(swift_list(g_conn, e.container, &(swift_list_opts){0}, collect, &ns, NULL), 0);
  assert_true(ns.count <= live + pend);
  json_decref(j);
  for (int k = 1; k < 5; k++) assert_true(exists(&e, first + 20 + k));
  for (int k = 0; k < 5; k++)
    if (stat_count(swift_stats[k]) <= before[k]) fail_msg("%s not fed", swift_stats[k]);
  imgr_volume_put_ref(v);
  server_down(&e);
}

/* The start-up self-check (imgr.md 2.1): passes against the running
 * server; against a port nobody listens on it gives up after 10 tries. */
static void test_http_up_check(void **state) {
  env e = {0};
  server_up(&e, (const char *const[]){"IMGR.HTTPServerPort=0", NULL});
  assert_int_equal(imgr_server_start_http(e.srv), 0);
  uint16_t port = imgr_server_http_port(e.srv);
  assert_int_not_equal(port, 0);
  assert_int_equal(imgr_http_up_check("127.0.0.1", port), 0);
  server_down(&e);
  /* A bound socket that does not listen: every connect is refused. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  uint64_t t0 = ut_now_ns();
  assert_int_equal(imgr_http_up_check("127.0.0.1", ntohs(sa.sin_port)), -EIO);
  /* all 10 tries were made: 9 pauses of 100 ms between them */
  assert_true(ut_now_ns() - t0 >= 9 * IMGR_HTTP_UP_CHECK_DELAY_NS);
  close(fd);
}

/* Swift fails during checkpoints: nothing half-committed, the pages of
 * the object whose PUT failed stay readable (from memory, even with every
 * Swift request failing), then recovery. A large cache keeps the early
 * checkpoint out of the way. */
static void test_checkpoint_failures(void **state) {
  env e = {0};
  make_container(&e);
  server_up(&e, (const char *const[]){"IMGR.InodeTableMaxInodesPerBPlusTreePage=4", NULL});
  assert_int_equal(imgr_format(e.srv, e.url, g_token, false), 0);
  imgr_volume *v = serve(&e, g_token);
  uint64_t first = reserve(v, 100);
  put_range(v, first, 40, first + 50);
  assert_int_equal(imgr_volume_flush(v), 0);
  imgr_volume_status before;
  assert_int_equal(imgr_volume_status_get(v, &before), 0);
  put_range(v, first, 40, first + 60);
  iswift_faults f = {.error_rate = 100};
  iswift_set_faults(g_sw, &f);
  assert_int_not_equal(imgr_volume_flush(v), 0);
  assert_int_not_equal(imgr_volume_flush(v), 0);
  imgr_volume_status st;
  assert_int_equal(imgr_volume_status_get(v, &st), 0);
  assert_int_equal(st.superblock_object_number, before.superblock_object_number);
  assert_true(st.dirty);
  assert_int_equal(sm_drop_clean(v->table), 0);
  check_entries(v, first, 40, first + 60);
  iswift_set_faults(g_sw, &(iswift_faults){0});
  assert_int_equal(imgr_volume_flush(v), 0);
  imgr_volume_put_ref(v);
  server_down(&e);
  server_up(&e, small_tree);
  v = serve(&e, g_token);
  check_entries(v, first, 40, first + 60);
  imgr_volume_put_ref(v);
  server_down(&e);
}

/* kill -9: a child process puts, flushes, puts more, and is killed. */
static void test_kill9(void **state) {
  env e = {0};
  make_container(&e);
  server_up(&e, small_tree);
  assert_int_equal(imgr_format(e.srv, e.url, g_token, false), 0);
  server_down(&e);
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char fd[16];
    snprintf(fd, sizeof fd, "%d", pfd[1]);
    close(pfd[0]);
    execl(g_self, g_self, "--child", e.url, g_token, fd, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  uint64_t first = 0;
  ssize_t r = read(pfd[0], &first, sizeof first);
  assert_int_equal(r, sizeof first);
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  close(pfd[0]);
  assert_true(WIFSIGNALED(status));
  server_up(&e, small_tree);
  imgr_volume *v = serve(&e, g_token);
  check_entries(v, first, 60, first + 60);
  imgr_volume_put_ref(v);
  server_down(&e);
}

static int child(const char *url, const char *token, int fd) {
  env e = {0};
  snprintf(e.url, sizeof e.url, "%s", url);
  server_up(&e, small_tree);
  imgr_volume *v = serve(&e, token);
  uint64_t first = reserve(v, 130);
  put_range(v, first, 60, first + 60);
  if (imgr_volume_flush(v)) return 1;
  put_range(v, first + 60, 10, first + 120); /* not flushed: may be lost */
  if (write(fd, &first, sizeof first) != sizeof first) return 1;
  for (;;) pause();
}

int main(int argc, char *argv[]) {
  log_configure(NULL, false, false);
  if (argc == 5 && !strcmp(argv[1], "--child")) return child(argv[2], argv[3], atoi(argv[4]));
  if (!realpath("/proc/self/exe", g_self)) return 1;
  iswift_config ic;
  iswift_config_defaults(&ic);
  snprintf(ic.addr, sizeof ic.addr, "127.0.0.1");
  ic.port = 0;
  if (iswift_start(&ic, &g_sw)) return 1;
  char auth[128];
  snprintf(auth, sizeof auth, "http://127.0.0.1:%u/auth/v1.0", (unsigned)iswift_port(g_sw));
  swift_config sc;
  swift_config_defaults(&sc);
  sc.auth_url = auth;
  sc.auth_user = "test:tester";
  sc.auth_key = "testing";
  sc.retry_limit = 0;
  if (swift_conn_create(&sc, &g_conn) || swift_account_put(g_conn, NULL, 0)) return 1;
  swift_auth_token(g_conn, g_token, sizeof g_token);
  swift_storage_url(g_conn, g_account, sizeof g_account);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_format_layout, teardown),     cmocka_unit_test_teardown(test_entries_checkpoint_restart, teardown),
      cmocka_unit_test_teardown(test_bad_batches, teardown),       cmocka_unit_test_teardown(test_tokens, teardown),
      cmocka_unit_test_teardown(test_token_source, teardown),      cmocka_unit_test_teardown(test_early_checkpoint, teardown),
      cmocka_unit_test_teardown(test_concurrency, teardown),
      cmocka_unit_test_teardown(test_gc, teardown),                cmocka_unit_test_teardown(test_checkpoint_failures, teardown),
      cmocka_unit_test_teardown(test_kill9, teardown),
      cmocka_unit_test_teardown(test_http_up_check, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  swift_conn_destroy(g_conn);
  iswift_stop(g_sw);
  return rc;
}
