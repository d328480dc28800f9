/* Formatting a container (imgr.md 4.3, ilayout.md 13.1): objects 2 (root
 * directory pages + root inode head), 3 (inode table page + superblock),
 * then the checkpoint in object 0 (and ickpt). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imgr_internal.h"
#include "logger.h"

typedef struct objbuf {
  uint64_t object_number;
  uint8_t *buf;
  size_t len, cap;
} objbuf;

static int objbuf_append(objbuf *o, const void *p, size_t n) {
  if (o->len + n > o->cap) {
    size_t nc = o->cap ? o->cap : 512;
    while (nc < o->len + n) nc *= 2;
    uint8_t *nb = realloc(o->buf, nc);
    if (!nb) return -ENOMEM;
    o->buf = nb;
    o->cap = nc;
  }
  memcpy(o->buf + o->len, p, n);
  o->len += n;
  return 0;
}

static int write_to_objbuf(void *ctx, const uint8_t *bytes, size_t len, uint64_t *obj,
                           uint64_t *off) {
  objbuf *o = ctx;
  *obj = o->object_number;
  *off = o->len;
  return objbuf_append(o, bytes, len);
}

/* Encode with a counting pass first, then append. */
#define APPEND_ENCODED(o, encode_call_with_w)                  \
  do {                                                         \
    ilayout_wcursor w;                                         \
    ilayout_wcursor_init(&w, NULL, 0);                         \
    if ((rc = (encode_call_with_w))) goto out;                 \
    size_t n_ = ilayout_wcursor_pos(&w);                       \
    uint8_t *tmp_ = malloc(n_);                                \
    if (!tmp_) { rc = -ENOMEM; goto out; }                     \
    ilayout_wcursor_init(&w, tmp_, n_);                        \
    rc = (encode_call_with_w);                                 \
    if (!rc) rc = objbuf_append((o), tmp_, n_);                \
    free(tmp_);                                                \
    if (rc) goto out;                                          \
  } while (0)

/* A new tree holding keys[i] -> value (the same value for every key),
 * flushed into o; *root receives its root reference. */
static int flush_new_tree(objbuf *o, sm_codec_kind kk, size_t vlen, uint64_t max_keys,
                          size_t n, const void *const keys[], const size_t klens[],
                          const uint8_t *value, sm_ref *root) {
  sm_config c;
  imgr_tree_config(&c, kk, vlen);
  c.write_node = write_to_objbuf;
  c.ctx = o;
  sm_tree *t = NULL;
  int rc = sm_create(&c, NULL, max_keys, &t);
  for (size_t i = 0; !rc && i < n; i++) rc = sm_insert(t, keys[i], klens[i], value, vlen);
  if (!rc) rc = sm_flush(t, root);
  sm_destroy(t);
  return rc;
}

static int build_objects(const imgr_config *cfg, objbuf *o2, objbuf *o3, uint64_t *sblen) {
  int rc;
  uint8_t dv[ILAYOUT_DIRECTORY_ENTRY_VALUE_V1_LEN];
  ilayout_wcursor w0;
  ilayout_wcursor_init(&w0, dv, sizeof dv);
  ilayout_directory_entry_value_v1 de = {ILAYOUT_ROOT_DIR_INODE_NUMBER, ILAYOUT_INODE_TYPE_DIR};
  if ((rc = ilayout_directory_entry_value_v1_encode(&de, &w0))) goto out;
  const void *names[2] = {".", ".."};
  const size_t name_lens[2] = {1, 2};
  sm_ref droot;
  if ((rc = flush_new_tree(o2, SM_CODEC_LSTR, sizeof dv,
                           cfg->root_dir_max_dir_entries_per_bplustree_page, 2, names, name_lens,
                           dv, &droot)))
    goto out;

  int64_t now = (int64_t)(ut_wall_ns() / 1000000000ull) * 1000000000; /* whole seconds */
  ilayout_link_entry links[2] = {{ILAYOUT_ROOT_DIR_INODE_NUMBER, ".", 1},
                                 {ILAYOUT_ROOT_DIR_INODE_NUMBER, "..", 2}};
  ilayout_layout_entry_v1 lay = {o2->object_number, droot.object_length, droot.object_length};
  ilayout_inode_head_v1 h = {0};
  h.inode_number = ILAYOUT_ROOT_DIR_INODE_NUMBER;
  h.inode_type = ILAYOUT_INODE_TYPE_DIR;
  h.link_table_len = 2;
  h.link_table = links;
  h.modification_time_ns = h.status_change_time_ns = now;
  h.mode = ILAYOUT_INODE_MODE_MASK;
  h.payload_object_number = droot.object_number;
  h.payload_object_offset = droot.object_offset;
  h.payload_object_length = droot.object_length;
  h.layout_len = 1;
  h.layout = &lay;
  size_t head_off = o2->len;
  APPEND_ENCODED(o2, ilayout_inode_head_v1_encode(&h, &w));
  uint64_t head_len = o2->len - head_off;

  uint8_t tv[ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN];
  ilayout_wcursor_init(&w0, tv, sizeof tv);
  ilayout_inode_table_entry_value_v1 te = {o2->object_number, head_len};
  if ((rc = ilayout_inode_table_entry_value_v1_encode(&te, &w0))) goto out;
  const uint64_t root_ino = ILAYOUT_ROOT_DIR_INODE_NUMBER;
  const void *inos[1] = {&root_ino};
  const size_t ino_lens[1] = {sizeof root_ino};
  sm_ref troot;
  if ((rc = flush_new_tree(o3, SM_CODEC_U64, sizeof tv,
                           cfg->inode_table_max_inodes_per_bplustree_page, 1, inos, ino_lens, tv,
                           &troot)))
    goto out;

  ilayout_layout_entry_v1 tlay = {o3->object_number, troot.object_length, troot.object_length};
  ilayout_superblock_v1 sb = {0};
  sb.inode_table_root_object_number = troot.object_number;
  sb.inode_table_root_object_offset = troot.object_offset;
  sb.inode_table_root_object_length = troot.object_length;
  sb.inode_table_layout_len = 1;
  sb.inode_table_layout = &tlay;
  sb.inode_object_count = 1;
  /* The newest original counts the root's Layout bytes (ilayout.md 13.2). */
  sb.inode_bytes_written = lay.bytes_written;
  sb.inode_bytes_referenced = lay.bytes_referenced;
  size_t sb_off = o3->len;
  APPEND_ENCODED(o3, ilayout_superblock_v1_encode(&sb, &w));
  *sblen = o3->len - sb_off;
out:
  return rc;
}

int imgr_format(imgr_server *srv, const char *storage_url, const char *token, bool force) {
  imgr_store st;
  int rc = imgr_store_init(&st, storage_url);
  if (rc) return rc;
  uint64_t t0;
  imgr_stat_now(&t0);
  swift_conn *conn = NULL;
  objbuf o2 = {ILAYOUT_FORMAT_ROOT_DIR_OBJECT_NUMBER, NULL, 0, 0};
  objbuf o3 = {ILAYOUT_FORMAT_SUPERBLOCK_OBJECT_NUMBER, NULL, 0, 0};
  if ((rc = imgr_store_connect(srv, &st, token, &conn))) goto out;
  if (!force) {
    /* The original formatted over live volumes (imgr.md 6.16). */
    rc = swift_object_head(conn, st.container, "0000000000000000", NULL, NULL);
    if (rc == 0) {
      log_warn("format of %s refused: object 0 exists (use \"Force\":true)", storage_url);
      rc = -EEXIST;
      goto out;
    }
    if (rc != -ENOENT) goto out;
  }
  uint64_t sblen;
  if ((rc = build_objects(srv->cfg, &o2, &o3, &sblen))) goto out;
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(o2.object_number, name);
  if ((rc = imgr_swift_put(srv, conn, st.container, name, o2.buf, o2.len))) goto out;
  ilayout_object_number_to_name(o3.object_number, name);
  if ((rc = imgr_swift_put(srv, conn, st.container, name, o3.buf, o3.len))) goto out;
  ilayout_checkpoint_v1 ck = {ILAYOUT_CHECKPOINT_VERSION_V1, o3.object_number, sblen,
                              ILAYOUT_FORMAT_RESERVED_TO_NONCE};
  rc = imgr_store_write_checkpoint(srv, &st, conn, token, &ck);
out:
  if (rc) log_warn("format of %s failed: %s", storage_url, strerror(-rc));
  else log_info("formatted %s", storage_url);
  swift_conn_destroy(conn);
  free(o2.buf);
  free(o3.buf);
  imgr_store_free(&st);
  imgr_stat_done(&srv->stats.PostVolumeUsecs, t0);
  return rc;
}
