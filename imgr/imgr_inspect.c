/* GET /volume/<name> and GET /volume/<name>/inode/<n> (imgr.md 2.3): a
 * read-only walk of what is committed in storage, with a private page cache
 * and no volume lock held (the original held the global lock and mutated
 * the volume's token). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imgr_internal.h"
#include "logger.h"

#define FRESH_MAX_TAIL ((uint64_t)64 << 20)

typedef struct fresh {
  imgr_server *srv;
  swift_conn *conn;
  const char *container;
} fresh;

static int fresh_get(fresh *f, uint64_t obj, swift_range r, uint8_t *dst, size_t len) {
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(obj, name);
  size_t got = 0;
  int rc = imgr_swift_get(f->srv, f->conn, f->container, name, r, dst, len, &got);
  return rc ? rc : (got == len ? 0 : -EINVAL);
}

static int fresh_read_node(void *ctx, const sm_ref *ref, uint8_t *dst) {
  swift_range r = {SWIFT_RANGE_SPAN, ref->object_offset, ref->object_length};
  return fresh_get(ctx, ref->object_number, r, dst, ref->object_length);
}

static int fresh_tail(fresh *f, uint64_t obj, uint64_t len, uint8_t **out) {
  if (len == 0 || len > FRESH_MAX_TAIL) return -EINVAL;
  uint8_t *b = malloc(len);
  if (!b) return -ENOMEM;
  swift_range r = {SWIFT_RANGE_TAIL, 0, len};
  int rc = fresh_get(f, obj, r, b, len);
  if (rc) free(b);
  else *out = b;
  return rc;
}

/* Height: follow child 0 down from the root. */
static int tree_height(fresh *f, sm_ref ref, uint64_t *height) {
  for (uint64_t h = 1; h <= SM_MAX_DEPTH; h++) {
    if (ref.object_length < 10 || ref.object_length > SM_DEFAULT_MAX_NODE_BYTES) return -EINVAL;
    uint8_t *b = malloc(ref.object_length);
    if (!b) return -ENOMEM;
    bool leaf = false;
    sm_ref child = {0};
    int rc = fresh_read_node(f, &ref, b);
    if (!rc) rc = imgr_node_first_child(b, ref.object_length, h == 1, &leaf, &child);
    free(b);
    if (rc) return rc;
    if (leaf) {
      *height = h;
      return 0;
    }
    ref = child;
  }
  return -EINVAL;
}

static json_t *name_of(uint64_t obj) {
  char n[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(obj, n);
  return json_string(n);
}

static json_t *layout_json(const ilayout_layout_entry_v1 *l, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, json_pack("{s:o, s:I, s:I}", "ObjectName",
                                       name_of(l[i].object_number), "ObjectSize",
                                       (json_int_t)l[i].bytes_written, "BytesReferenced",
                                       (json_int_t)l[i].bytes_referenced));
  return a;
}

/* Open a tree read-only with a private cache. */
static int open_tree(fresh *f, sm_codec_kind kk, size_t vlen, sm_ref root, sm_cache *cache,
                     sm_tree **t) {
  sm_config c;
  imgr_tree_config(&c, kk, vlen);
  c.read_node = fresh_read_node;
  c.ctx = f;
  char err[200];
  int rc = sm_open(&c, cache, &root, t, err, sizeof err);
  if (rc) log_warn("inspect: B+tree at %016llX unreadable: %s",
                   (unsigned long long)root.object_number, err);
  return rc;
}

typedef struct state {
  fresh f;
  imgr_volume *vol;
  imgr_vol_tok tok;
  bool own_conn, have_tok;
  sm_cache *cache;
  ilayout_checkpoint_v1 ck;
  ilayout_superblock_v1 sb;
  sm_tree *table;
} state;

static void state_done(state *s, int rc) {
  sm_destroy(s->table);
  sm_cache_destroy(s->cache);
  ilayout_superblock_v1_free(&s->sb);
  if (s->own_conn) swift_conn_destroy(s->f.conn);
  if (s->have_tok) imgr_vol_tok_release(s->vol, &s->tok, rc);
  imgr_volume_put_ref(s->vol);
}

static int state_open(imgr_server *srv, const char *name, const char *token, state *s) {
  memset(s, 0, sizeof *s);
  int rc = imgr_volume_get_ref(srv, name, &s->vol);
  if (rc) return rc;
  s->f.srv = srv;
  s->f.container = s->vol->store.container;
  const char *tk = token;
  if (token && *token) {
    if ((rc = imgr_store_connect(srv, &s->vol->store, token, &s->f.conn))) return rc;
    s->own_conn = true;
  } else {
    if ((rc = imgr_vol_tok_acquire(s->vol, &s->tok))) return rc;
    s->have_tok = true;
    s->f.conn = s->tok.sc->conn;
    tk = s->tok.sc->token;
  }
  if ((rc = imgr_vol_read_checkpoint(s->vol, s->f.conn, tk, &s->ck))) return rc;
  uint8_t *b = NULL;
  if ((rc = fresh_tail(&s->f, s->ck.superblock_object_number, s->ck.superblock_length, &b)))
    return rc;
  rc = ilayout_superblock_v1_decode(b, s->ck.superblock_length, &s->sb);
  free(b);
  if (rc) return rc;
  if (!(s->cache = sm_cache_create(1000, 1010, 0))) return -ENOMEM;
  sm_ref root = {s->sb.inode_table_root_object_number, s->sb.inode_table_root_object_offset,
                 s->sb.inode_table_root_object_length};
  return open_tree(&s->f, SM_CODEC_U64, ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN, root, s->cache,
                   &s->table);
}

int imgr_volume_json(imgr_server *srv, const char *name, const char *token, json_t **out) {
  state s;
  int rc = state_open(srv, name, token, &s);
  json_t *table = NULL, *o = NULL;
  if (rc) goto out;
  uint64_t count, height;
  sm_ref root = {s.sb.inode_table_root_object_number, s.sb.inode_table_root_object_offset,
                 s.sb.inode_table_root_object_length};
  if ((rc = sm_len(s.table, &count)) || (rc = tree_height(&s.f, root, &height))) goto out;
  table = json_array();
  sm_cursor c;
  sm_cursor_init(&c, s.table, 0);
  uint64_t key;
  uint8_t v[ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN];
  size_t kl, vl;
  while ((rc = sm_cursor_next(&c, &key, sizeof key, &kl, v, sizeof v, &vl)) == 0) {
    ilayout_cursor cur;
    ilayout_inode_table_entry_value_v1 e;
    ilayout_cursor_init(&cur, v, vl);
    if ((rc = ilayout_inode_table_entry_value_v1_decode(&cur, &e))) goto out;
    json_array_append_new(table, json_pack("{s:I, s:o, s:I}", "InodeNumber", (json_int_t)key,
                                           "InodeHeadObjectName",
                                           name_of(e.inode_head_object_number),
                                           "InodeHeadLength", (json_int_t)e.inode_head_length));
  }
  if (rc != -ENOENT) goto out;
  json_t *pend = json_array();
  for (size_t i = 0; i < s.sb.pending_delete_object_numbers_len; i++)
    json_array_append_new(pend, name_of(s.sb.pending_delete_object_numbers[i]));
  imgr_mount_counts mc;
  imgr_vol_mount_counts(s.vol, &mc);
  pthread_mutex_lock(&s.vol->mu);
  json_t *static_token = json_string(s.vol->static_token);
  pthread_mutex_unlock(&s.vol->mu);
  uint64_t maxk = sm_max_keys(s.table);
  o = json_pack(
      "{s:s, s:s, s:o, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I,"
      " s:o, s:o}",
      "Name", s.vol->name, "StorageURL", s.vol->store.storage_url, "AuthToken", static_token,
      "HealthyMounts", (json_int_t)mc.healthy, "LeasesExpiredMounts",
      (json_int_t)mc.leases_expired, "AuthTokenExpiredMounts", (json_int_t)mc.auth_token_expired,
      "SuperBlockObjectName", name_of(s.ck.superblock_object_number), "SuperBlockLength",
      (json_int_t)s.ck.superblock_length, "ReservedToNonce", (json_int_t)s.ck.reserved_to_nonce,
      "InodeTableMinInodesPerNode", (json_int_t)(maxk / 2), "InodeTableMaxInodesPerNode",
      (json_int_t)maxk, "InodeTableInodeCount", (json_int_t)count, "InodeTableHeight",
      (json_int_t)height, "InodeTableLayout",
      layout_json(s.sb.inode_table_layout, s.sb.inode_table_layout_len), "InodeObjectCount",
      (json_int_t)s.sb.inode_object_count, "InodeObjectSize",
      (json_int_t)s.sb.inode_bytes_written, "InodeBytesReferenced",
      (json_int_t)s.sb.inode_bytes_referenced, "PendingDeleteObjectNameArray", pend,
      "InodeTable", table);
  table = NULL;
  rc = o ? 0 : -ENOMEM;
out:
  json_decref(table);
  state_done(&s, rc);
  if (!rc) *out = o;
  return rc;
}

static json_t *rfc3339(int64_t ns) {
  time_t t = (time_t)(ns / 1000000000);
  if (ns < 0 && ns % 1000000000) t--;
  struct tm tm;
  char b[64];
  gmtime_r(&t, &tm);
  strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return json_string(b);
}

static json_t *hex_pairs(const uint8_t *p, size_t n) {
  char *s = malloc(n * 3 + 1);
  if (!s) return NULL;
  s[0] = '\0';
  for (size_t i = 0; i < n; i++) snprintf(s + 3 * i, 4, i + 1 < n ? "%02X " : "%02X", p[i]);
  json_t *j = json_string(s);
  free(s);
  return j;
}

static const char *type_name(uint8_t t) {
  return t == ILAYOUT_INODE_TYPE_DIR ? "Dir"
         : t == ILAYOUT_INODE_TYPE_FILE ? "File"
         : t == ILAYOUT_INODE_TYPE_SYMLINK ? "SymLink" : NULL;
}

/* Payload members of a Dir or File inode. */
static int payload_json(state *s, const ilayout_inode_head_v1 *h, json_t *o) {
  bool dir = h->inode_type == ILAYOUT_INODE_TYPE_DIR;
  sm_ref root = {h->payload_object_number, h->payload_object_offset, h->payload_object_length};
  sm_tree *t = NULL;
  uint64_t count = 0, height = 0;
  json_t *payload = json_array();
  int rc = 0;
  if (root.object_length) {
    rc = open_tree(&s->f, dir ? SM_CODEC_LSTR : SM_CODEC_U64,
                   dir ? ILAYOUT_DIRECTORY_ENTRY_VALUE_V1_LEN : ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN,
                   root, s->cache, &t);
    if (!rc) rc = sm_len(t, &count);
    if (!rc) rc = tree_height(&s->f, root, &height);
    sm_cursor c;
    if (!rc) sm_cursor_init(&c, t, 0);
    char key[4096];
    uint8_t v[ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN];
    size_t kl, vl;
    while (!rc && (rc = sm_cursor_next(&c, key, sizeof key - 1, &kl, v, sizeof v, &vl)) == 0) {
      ilayout_cursor cur;
      ilayout_cursor_init(&cur, v, vl);
      if (dir) {
        ilayout_directory_entry_value_v1 d;
        if ((rc = ilayout_directory_entry_value_v1_decode(&cur, &d))) break;
        const char *tn = type_name(d.inode_type);
        json_array_append_new(payload, json_pack("{s:s%, s:I, s:s}", "BaseName", key, kl,
                                                 "InodeNumber", (json_int_t)d.inode_number,
                                                 "InodeType", tn ? tn : "Unknown"));
      } else {
        ilayout_extent_map_entry_value_v1 e;
        uint64_t off;
        memcpy(&off, key, sizeof off);
        if ((rc = ilayout_extent_map_entry_value_v1_decode(&cur, &e))) break;
        json_array_append_new(payload, json_pack("{s:I, s:I, s:o, s:I}", "FileOffset",
                                                 (json_int_t)off, "Length",
                                                 (json_int_t)e.length, "ObjectName",
                                                 name_of(e.object_number), "ObjectOffset",
                                                 (json_int_t)e.object_offset));
      }
    }
    if (rc == -ENOENT) rc = 0;
  }
  uint64_t maxk = t ? sm_max_keys(t) : 0;
  sm_destroy(t);
  if (rc) {
    json_decref(payload);
    return rc;
  }
  if (dir) {
    json_object_set_new(o, "MinDirEntriesPerNode", json_integer((json_int_t)(maxk / 2)));
    json_object_set_new(o, "MaxDirEntriesPerNode", json_integer((json_int_t)maxk));
    json_object_set_new(o, "DirEntryCount", json_integer((json_int_t)count));
    json_object_set_new(o, "DirectoryHeight", json_integer((json_int_t)height));
  } else {
    json_object_set_new(o, "Size", json_integer((json_int_t)h->size));
    json_object_set_new(o, "MinExtentsPerNode", json_integer((json_int_t)(maxk / 2)));
    json_object_set_new(o, "MaxExtentsPerNode", json_integer((json_int_t)maxk));
    json_object_set_new(o, "ExtentCount", json_integer((json_int_t)count));
    json_object_set_new(o, "ExtentMapHeight", json_integer((json_int_t)height));
  }
  json_object_set_new(o, "Payload", payload);
  json_object_set_new(o, "Layout", layout_json(h->layout, h->layout_len));
  return 0;
}

int imgr_volume_inode_json(imgr_server *srv, const char *name, uint64_t ino, const char *token,
                           json_t **out) {
  state s;
  ilayout_inode_head_v1 h = {0};
  uint8_t *b = NULL;
  json_t *o = NULL;
  int rc = state_open(srv, name, token, &s);
  if (rc) goto out;
  uint8_t v[ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN];
  size_t vl;
  if ((rc = sm_get(s.table, &ino, sizeof ino, v, sizeof v, &vl))) goto out;
  ilayout_cursor cur;
  ilayout_inode_table_entry_value_v1 e;
  ilayout_cursor_init(&cur, v, vl);
  if ((rc = ilayout_inode_table_entry_value_v1_decode(&cur, &e))) goto out;
  if ((rc = fresh_tail(&s.f, e.inode_head_object_number, e.inode_head_length, &b))) goto out;
  if ((rc = ilayout_inode_head_v1_decode(b, e.inode_head_length, &h))) goto out;
  const char *tn = type_name(h.inode_type);
  if (h.inode_number != ino || !tn) {
    /* The original exited here (imgr.md 6.8). */
    log_error("volume %s: inode %llu: head says inode %llu type %u", name,
              (unsigned long long)ino, (unsigned long long)h.inode_number, h.inode_type);
    rc = -EBADMSG;
    goto out;
  }
  json_t *links = json_array(), *streams = json_array();
  for (size_t i = 0; i < h.link_table_len; i++)
    json_array_append_new(links, json_pack("{s:I, s:s%}", "ParentDirInodeNumber",
                                           (json_int_t)h.link_table[i].parent_dir_inode_number,
                                           "ParentDirEntryName",
                                           h.link_table[i].parent_dir_entry_name,
                                           h.link_table[i].parent_dir_entry_name_len));
  for (size_t i = 0; i < h.stream_table_len; i++)
    json_array_append_new(streams, json_pack("{s:s%, s:o}", "Name", h.stream_table[i].name,
                                             h.stream_table[i].name_len, "Value",
                                             hex_pairs(h.stream_table[i].value,
                                                       h.stream_table[i].value_len)));
  o = json_pack("{s:I, s:s, s:o, s:o, s:o, s:I, s:I, s:I, s:o}", "InodeNumber", (json_int_t)ino,
                "InodeType", tn, "LinkTable", links, "ModificationTime",
                rfc3339(h.modification_time_ns), "StatusChangeTime",
                rfc3339(h.status_change_time_ns), "Mode", (json_int_t)h.mode, "UserID",
                (json_int_t)h.user_id, "GroupID", (json_int_t)h.group_id, "StreamTable", streams);
  if (!o) {
    rc = -ENOMEM;
    goto out;
  }
  if (h.inode_type == ILAYOUT_INODE_TYPE_SYMLINK)
    json_object_set_new(o, "SymLinkTarget",
                        json_stringn(h.symlink_target ? h.symlink_target : "", h.symlink_target_len));
  else
    rc = payload_json(&s, &h, o);
out:
  if (rc) {
    json_decref(o);
    o = NULL;
  }
  ilayout_inode_head_v1_free(&h);
  free(b);
  state_done(&s, rc);
  if (!rc) *out = o;
  return rc;
}
