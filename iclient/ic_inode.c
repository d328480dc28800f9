/* ic_inode: loading and creating inodes, their link sets, the payload
 * B+tree and its page I/O callbacks (iclient.md 3.1, 3.2), directories. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ic_inode_internal.h"
#include "logger.h"
#include "utils.h"

/* An inode head is a few KiB; anything this large is a corrupt entry. */
#define IC_MAX_HEAD_LEN ((uint64_t)64 << 20)

void ic_inode_free_state(ic_inode *in) {
  ic_sealed_discard(in->vol, in);
  for (size_t i = 0; i < in->nlinks; i++) free(in->links[i].name);
  free(in->links);
  for (size_t i = 0; i < in->nstreams; i++) {
    free(in->streams[i].name);
    free(in->streams[i].value);
  }
  free(in->streams);
  free(in->symlink);
  free(in->layout);
  sm_destroy(in->payload);
  free(in->deref);
  ic_segbuf_give(in->vol, in->put_buf, in->put_cap);
  in->links = NULL;
  in->streams = NULL;
  in->symlink = NULL;
  in->layout = NULL;
  in->payload = NULL;
  in->deref = NULL;
  in->put_buf = NULL;
  in->nlinks = in->nstreams = in->symlink_len = in->nlayout = in->caplayout = 0;
  in->nderef = in->capderef = in->put_len = in->put_cap = 0;
}

uint64_t ic_inode_number(const ic_inode *in) { return in->ino; }
bool ic_inode_dirty(const ic_inode *in) { return in->dirty; }

void ic_inode_attr(const ic_inode *in, ic_attr *a) {
  a->inode_number = in->ino;
  a->type = in->type;
  a->size = in->size;
  a->mtime_ns = in->mtime_ns;
  a->ctime_ns = in->ctime_ns;
  a->mode = in->mode;
  a->uid = in->uid;
  a->gid = in->gid;
  a->nlink = in->nlinks;
}

/* ---- layout and log segment ---- */

ilayout_layout_entry_v1 *ic_layout_find(ic_inode *in, uint64_t obj) {
  for (size_t i = 0; i < in->nlayout; i++)
    if (in->layout[i].object_number == obj) return &in->layout[i];
  return NULL;
}

static ilayout_layout_entry_v1 *layout_add(ic_inode *in, uint64_t obj) {
  if (in->nlayout == in->caplayout) {
    size_t cap = in->caplayout ? in->caplayout * 2 : 4;
    void *p = realloc(in->layout, cap * sizeof(*in->layout));
    if (!p) return NULL;
    in->layout = p;
    in->caplayout = cap;
  }
  ilayout_layout_entry_v1 *e = &in->layout[in->nlayout++];
  e->object_number = obj;
  e->bytes_written = e->bytes_referenced = 0;
  return e;
}

int ic_deref_add(ic_inode *in, uint64_t obj) {
  for (size_t i = 0; i < in->nderef; i++)
    if (in->deref[i] == obj) return 0;
  if (in->nderef == in->capderef) {
    size_t cap = in->capderef ? in->capderef * 2 : 4;
    void *p = realloc(in->deref, cap * sizeof(*in->deref));
    if (!p) return -ENOMEM;
    in->deref = p;
    in->capderef = cap;
  }
  in->deref[in->nderef++] = obj;
  return 0;
}

int ic_layout_unref(ic_inode *in, uint64_t obj, uint64_t len) {
  ilayout_layout_entry_v1 *e = ic_layout_find(in, obj);
  if (!e || e->bytes_referenced < len) {
    log_error("iclient: inode %016llX unreferences %llu bytes of object %016llX, which "
              "references %llu",
              (unsigned long long)in->ino, (unsigned long long)len, (unsigned long long)obj,
              e ? (unsigned long long)e->bytes_referenced : 0ULL);
    return -EUCLEAN;
  }
  e->bytes_referenced -= len;
  if (obj == in->put_obj) return 0; /* folded in when it is PUT (ic_flush.c) */
  in->d_referenced -= (int64_t)len;
  if (e->bytes_referenced == 0) {
    int rc = ic_deref_add(in, obj);
    if (rc) return rc;
    in->d_count -= 1;
    in->d_written -= (int64_t)e->bytes_written;
    *e = in->layout[--in->nlayout];
  }
  return 0;
}

void ic_put_fold(ic_inode *in, ilayout_layout_entry_v1 *pe, bool keep) {
  if (keep) {
    in->d_count += 1;
    in->d_written += (int64_t)pe->bytes_written;
    in->d_referenced += (int64_t)pe->bytes_referenced;
  } else {
    *pe = in->layout[--in->nlayout];
  }
}

/* Room for cap bytes in the active segment's buffer: a spare whole-segment
 * buffer when one fits (the bytes so far copied over), else the buffer
 * grown in place. */
static int put_buf_grow(ic_inode *in, size_t cap) {
  ic_volume *v = in->vol;
  size_t spare_cap = 0;
  uint8_t *p = cap >= v->p.file_flush_trigger_size ? ic_segbuf_take(v, cap, &spare_cap) : NULL;
  if (p) {
    if (in->put_len) memcpy(p, in->put_buf, in->put_len);
    ic_segbuf_give(v, in->put_buf, in->put_cap);
    cap = spare_cap;
  } else if (!(p = realloc(in->put_buf, cap))) {
    return -ENOMEM;
  }
  in->put_buf = p;
  in->put_cap = cap;
  return 0;
}

/* Append to the log segment, starting one if none is active. */
int ic_put_append(ic_inode *in, const void *data, size_t len, uint64_t *obj, uint64_t *off) {
  if (in->put_obj == 0) {
    uint64_t n;
    int rc = ic_volume_nonce(in->vol, &n);
    if (rc) return rc;
    if (!layout_add(in, n)) return -ENOMEM;
    in->put_obj = n;
    in->put_len = 0;
  }
  if (len > SIZE_MAX - in->put_len) return -EFBIG;
  if (in->put_len + len > in->put_cap) {
    size_t cap = in->put_cap ? in->put_cap : 4096;
    while (cap < in->put_len + len) cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    /* A segment past 1 MiB is most likely a sequential writer's: give it
     * room for the whole segment at once rather than copying it again at
     * every doubling (untouched pages of the mapping cost no memory). */
    uint64_t whole = in->vol->p.file_flush_trigger_size + len;
    if (cap >= IC_SEGMENT_GROW_WHOLE && whole > cap && whole <= SIZE_MAX) cap = (size_t)whole;
    int rc = put_buf_grow(in, cap);
    if (rc) return rc;
  }
  ilayout_layout_entry_v1 *e = ic_layout_find(in, in->put_obj);
  if (!e) return -EUCLEAN;
  if (len) memcpy(in->put_buf + in->put_len, data, len);
  *obj = in->put_obj;
  *off = in->put_len;
  in->put_len += len;
  e->bytes_written += len;
  e->bytes_referenced += len;
  in->dirty = true;
  return 0;
}

/* ---- B+tree page callbacks ---- */

static int node_read(void *ctx, const sm_ref *ref, uint8_t *dst) {
  ic_inode *in = ctx;
  if (ref->object_number == in->put_obj && in->put_obj != 0) {
    if (ref->object_offset > in->put_len || ref->object_length > in->put_len - ref->object_offset)
      return -EINVAL;
    memcpy(dst, in->put_buf + ref->object_offset, ref->object_length);
    return 0;
  }
  size_t got = 0;
  int rc = in->vol->store->get(in->vol->store_ctx, ref->object_number, ref->object_offset,
                               ref->object_length, dst, &got);
  if (rc == 0 && got != ref->object_length) rc = -EIO;
  if (rc)
    log_error("iclient: inode %016llX: node %016llX@%llu+%llu unreadable: %d",
              (unsigned long long)in->ino, (unsigned long long)ref->object_number,
              (unsigned long long)ref->object_offset, (unsigned long long)ref->object_length, rc);
  return rc;
}

static int node_write(void *ctx, const uint8_t *bytes, size_t len, uint64_t *obj, uint64_t *off) {
  return ic_put_append(ctx, bytes, len, obj, off);
}

static int node_discard(void *ctx, const sm_ref *ref) {
  return ic_layout_unref(ctx, ref->object_number, ref->object_length);
}

static void tree_config(ic_inode *in, sm_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  if (in->type == ILAYOUT_INODE_TYPE_DIR) {
    cfg->key.kind = SM_CODEC_LSTR;
    cfg->value.kind = SM_CODEC_FIXED;
    cfg->value.fixed_len = ILAYOUT_DIRECTORY_ENTRY_VALUE_V1_LEN;
  } else {
    cfg->key.kind = SM_CODEC_U64;
    cfg->value.kind = SM_CODEC_FIXED;
    cfg->value.fixed_len = ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN;
  }
  cfg->read_node = node_read;
  cfg->write_node = node_write;
  cfg->discard_node = node_discard;
  cfg->ctx = in;
}

int ic_inode_payload(ic_volume *v, ic_inode *in, sm_tree **out) {
  if (!in->loaded) return -ENOENT;
  if (in->type != ILAYOUT_INODE_TYPE_DIR && in->type != ILAYOUT_INODE_TYPE_FILE) return -EINVAL;
  if (!in->payload) {
    sm_config cfg;
    tree_config(in, &cfg);
    char err[256] = "";
    int rc = sm_open(&cfg, v->node_cache, &in->payload_ref, &in->payload, err, sizeof(err));
    if (rc) {
      log_error("iclient: inode %016llX: payload tree does not open: %s",
                (unsigned long long)in->ino, err);
      return rc == -ENOMEM ? rc : -EIO;
    }
  }
  *out = in->payload;
  return 0;
}

/* ---- loading and creating ---- */

static char *memdup0(const void *p, size_t n) {
  char *s = malloc(n + 1);
  if (s) {
    if (n) memcpy(s, p, n);
    s[n] = '\0';
  }
  return s;
}

static int adopt_head(ic_inode *in, const ilayout_inode_head_v1 *h) {
  in->type = h->inode_type;
  in->size = h->size;
  in->mtime_ns = h->modification_time_ns;
  in->ctime_ns = h->status_change_time_ns;
  in->mode = h->mode;
  in->uid = h->user_id;
  in->gid = h->group_id;
  in->payload_ref.object_number = h->payload_object_number;
  in->payload_ref.object_offset = h->payload_object_offset;
  in->payload_ref.object_length = h->payload_object_length;
  in->links = calloc(h->link_table_len ? h->link_table_len : 1, sizeof(*in->links));
  in->streams = calloc(h->stream_table_len ? h->stream_table_len : 1, sizeof(*in->streams));
  in->layout = calloc(h->layout_len ? h->layout_len : 1, sizeof(*in->layout));
  in->symlink = memdup0(h->symlink_target, h->symlink_target_len);
  if (!in->links || !in->streams || !in->layout || !in->symlink) return -ENOMEM;
  in->symlink_len = h->symlink_target_len;
  in->caplayout = h->layout_len ? h->layout_len : 1;
  for (size_t i = 0; i < h->link_table_len; i++) {
    const ilayout_link_entry *l = &h->link_table[i];
    in->links[i].name = memdup0(l->parent_dir_entry_name, l->parent_dir_entry_name_len);
    if (!in->links[i].name) return -ENOMEM;
    in->links[i].parent = l->parent_dir_inode_number;
    in->links[i].len = l->parent_dir_entry_name_len;
    in->nlinks++;
  }
  for (size_t i = 0; i < h->stream_table_len; i++) {
    const ilayout_stream_entry *s = &h->stream_table[i];
    in->streams[i].name = memdup0(s->name, s->name_len);
    in->streams[i].value = (uint8_t *)memdup0(s->value, s->value_len);
    in->nstreams++;
    if (!in->streams[i].name || !in->streams[i].value) return -ENOMEM;
    in->streams[i].name_len = s->name_len;
    in->streams[i].value_len = s->value_len;
  }
  for (size_t i = 0; i < h->layout_len; i++) {
    if (h->layout[i].bytes_referenced > h->layout[i].bytes_written) return -EINVAL;
    in->layout[in->nlayout++] = h->layout[i];
  }
  return 0;
}

int ic_inode_load(ic_volume *v, ic_inode *in) {
  if (in->loaded) return 0;
  ic_inode_req req = {v->mount_id, in->ino};
  ic_get_inode_table_entry_reply rep = {0, 0};
  ic_rpc_err err = {{0}};
  int rc = v->imgr->get_inode_table_entry(v->imgr_ctx, &req, &rep, &err);
  if (rc) {
    if (rc != -ENOENT)
      log_error("iclient: GetInodeTableEntry(%016llX) failed: %s", (unsigned long long)in->ino,
                err.msg);
    return rc;
  }
  if (rep.inode_head_length < ILAYOUT_OBJECT_TRAILER_LEN ||
      rep.inode_head_length > IC_MAX_HEAD_LEN) {
    log_error("iclient: inode %016llX: InodeHeadLength %llu out of range",
              (unsigned long long)in->ino, (unsigned long long)rep.inode_head_length);
    return -EINVAL;
  }
  uint8_t *buf = malloc(rep.inode_head_length);
  if (!buf) return -ENOMEM;
  rc = v->store->get_tail(v->store_ctx, rep.inode_head_object_number, rep.inode_head_length, buf);
  ilayout_inode_head_v1 h;
  memset(&h, 0, sizeof(h));
  if (rc == 0) rc = ilayout_inode_head_v1_decode(buf, rep.inode_head_length, &h);
  free(buf);
  if (rc) {
    log_error("iclient: inode %016llX: head %016llX (-%llu) unusable: %d",
              (unsigned long long)in->ino, (unsigned long long)rep.inode_head_object_number,
              (unsigned long long)rep.inode_head_length, rc);
    return rc == -ENOMEM ? rc : (rc == -EINVAL ? -EINVAL : -EIO);
  }
  rc = adopt_head(in, &h);
  ilayout_inode_head_v1_free(&h);
  if (rc) {
    ic_inode_free_state(in);
    return rc;
  }
  in->head_obj = in->base_obj = rep.inode_head_object_number;
  in->head_len = rep.inode_head_length;
  in->loaded = true;
  in->known = true;
  return 0;
}

int ic_inode_create(ic_volume *v, uint8_t type, uint16_t mode, uint64_t uid, uint64_t gid,
                    ic_inode **out) {
  uint64_t ino;
  int rc = ic_volume_nonce(v, &ino);
  return rc ? rc : ic_inode_create_at(v, ino, type, mode, uid, gid, out);
}

int ic_inode_create_at(ic_volume *v, uint64_t ino, uint8_t type, uint16_t mode, uint64_t uid,
                       uint64_t gid, ic_inode **out) {
  if (type > ILAYOUT_INODE_TYPE_SYMLINK) return -EINVAL;
  ic_inode *in;
  int rc = ic_inode_get_new(v, ino, &in);
  if (rc) return rc;
  if (in->loaded) { /* the number is in use */
    ic_inode_put(v, in);
    return -EEXIST;
  }
  in->base_obj = 0; /* imgr has no head for it yet */
  in->type = type;
  in->mode = mode & IC_INODE_MODE_MASK;
  in->uid = uid;
  in->gid = gid;
  in->mtime_ns = in->ctime_ns = (int64_t)ut_wall_ns();
  in->symlink = memdup0("", 0);
  in->loaded = true;
  in->dirty = true;
  if (!in->symlink) rc = -ENOMEM;
  if (rc == 0 && type != ILAYOUT_INODE_TYPE_SYMLINK) {
    sm_config cfg;
    tree_config(in, &cfg);
    rc = sm_create(&cfg, v->node_cache,
                   type == ILAYOUT_INODE_TYPE_DIR ? v->p.dir_max_keys : v->p.file_max_keys,
                   &in->payload);
  }
  if (rc) {
    /* Never committed: forget it entirely so that it is not flushed. */
    ic_inode_free_state(in);
    in->loaded = in->dirty = false;
    ic_inode_put(v, in);
    return rc;
  }
  *out = in;
  return 0;
}

/* ---- link set ---- */

static ic_link *link_find(ic_inode *in, uint64_t parent, const char *name, size_t len) {
  for (size_t i = 0; i < in->nlinks; i++)
    if (in->links[i].parent == parent && in->links[i].len == len &&
        memcmp(in->links[i].name, name, len) == 0)
      return &in->links[i];
  return NULL;
}

int ic_inode_link_add(ic_inode *in, uint64_t parent, const char *name, size_t len) {
  if (!in->loaded) return -ENOENT;
  if (link_find(in, parent, name, len)) return -EEXIST;
  void *p = realloc(in->links, (in->nlinks + 1) * sizeof(*in->links));
  if (!p) return -ENOMEM;
  in->links = p;
  char *copy = memdup0(name, len);
  if (!copy) return -ENOMEM;
  in->links[in->nlinks++] = (ic_link){parent, copy, len};
  in->dirty = true;
  return 0;
}

int ic_inode_link_remove(ic_inode *in, uint64_t parent, const char *name, size_t len) {
  ic_link *l = in->loaded ? link_find(in, parent, name, len) : NULL;
  if (!l) return -ENOENT;
  free(l->name);
  *l = in->links[--in->nlinks];
  in->dirty = true;
  return 0;
}

/* ---- directories ---- */

static int dir_tree(ic_volume *v, ic_inode *dir, sm_tree **t) {
  if (!dir->loaded) return -ENOENT;
  if (dir->type != ILAYOUT_INODE_TYPE_DIR) return -ENOTDIR;
  return ic_inode_payload(v, dir, t);
}

static int name_ok(const char *name, size_t len) {
  if (len == 0 || memchr(name, '/', len) || memchr(name, '\0', len)) return -EINVAL;
  if (len > IC_NAME_MAX) return -ENAMETOOLONG;
  return 0;
}

static int dirent_decode(const uint8_t *val, size_t vlen, ic_dirent *out) {
  ilayout_cursor c;
  ilayout_cursor_init(&c, val, vlen);
  ilayout_directory_entry_value_v1 e;
  int rc = ilayout_directory_entry_value_v1_decode(&c, &e);
  if (rc) return rc;
  out->inode_number = e.inode_number;
  out->inode_type = e.inode_type;
  return 0;
}

int ic_dir_lookup(ic_volume *v, ic_inode *dir, const char *name, size_t len, ic_dirent *out) {
  sm_tree *t;
  int rc = dir_tree(v, dir, &t);
  if (rc) return rc;
  uint8_t val[ILAYOUT_DIRECTORY_ENTRY_VALUE_V1_LEN];
  size_t vlen;
  rc = sm_get(t, name, len, val, sizeof(val), &vlen);
  if (rc) return rc;
  return dirent_decode(val, vlen, out);
}

int ic_dir_insert(ic_volume *v, ic_inode *dir, const char *name, size_t len, const ic_dirent *e) {
  int rc = name_ok(name, len);
  sm_tree *t;
  if (rc == 0) rc = dir_tree(v, dir, &t);
  if (rc) return rc;
  uint8_t val[ILAYOUT_DIRECTORY_ENTRY_VALUE_V1_LEN];
  ilayout_wcursor w;
  ilayout_wcursor_init(&w, val, sizeof(val));
  ilayout_directory_entry_value_v1 dv = {e->inode_number, e->inode_type};
  rc = ilayout_directory_entry_value_v1_encode(&dv, &w);
  if (rc == 0) rc = sm_insert(t, name, len, val, sizeof(val));
  if (rc == 0) dir->dirty = true;
  return rc;
}

int ic_dir_delete(ic_volume *v, ic_inode *dir, const char *name, size_t len) {
  sm_tree *t;
  int rc = dir_tree(v, dir, &t);
  if (rc == 0) rc = sm_delete(t, name, len);
  if (rc == 0) dir->dirty = true;
  return rc;
}

int ic_dir_count(ic_volume *v, ic_inode *dir, uint64_t *n) {
  sm_tree *t;
  int rc = dir_tree(v, dir, &t);
  return rc ? rc : sm_len(t, n);
}

int ic_dir_entry_at(ic_volume *v, ic_inode *dir, uint64_t index, char name[IC_NAME_MAX + 1],
                    size_t *len, ic_dirent *out) {
  sm_tree *t;
  int rc = dir_tree(v, dir, &t);
  if (rc) return rc;
  uint8_t val[ILAYOUT_DIRECTORY_ENTRY_VALUE_V1_LEN];
  size_t vlen;
  rc = sm_get_by_index(t, index, name, IC_NAME_MAX, len, val, sizeof(val), &vlen);
  if (rc) return rc == -ERANGE ? -EINVAL : rc; /* a stored name over the limit */
  name[*len] = '\0';
  return dirent_decode(val, vlen, out);
}

/* ---- extended attributes (the StreamTable) ---- */

static ic_stream *stream_find(ic_inode *in, const char *name, size_t len) {
  for (size_t i = 0; i < in->nstreams; i++)
    if (in->streams[i].name_len == len && memcmp(in->streams[i].name, name, len) == 0)
      return &in->streams[i];
  return NULL;
}

int ic_inode_xattr_get(ic_inode *in, const char *name, void *buf, size_t cap, size_t *len) {
  ic_stream *s = in->loaded ? stream_find(in, name, strlen(name)) : NULL;
  if (!s) return -ENODATA;
  *len = s->value_len;
  if (cap == 0) return 0;
  if (cap < s->value_len) return -ERANGE;
  if (s->value_len) memcpy(buf, s->value, s->value_len);
  return 0;
}

int ic_inode_xattr_set(ic_inode *in, const char *name, const void *val, size_t vlen, int flags) {
  if (!in->loaded) return -ENOENT;
  size_t nlen = strlen(name);
  if (nlen == 0 || nlen > IC_NAME_MAX) return -ERANGE;
  if (flags & ~(IC_XATTR_CREATE | IC_XATTR_REPLACE)) return -EINVAL;
  ic_stream *s = stream_find(in, name, nlen);
  if (s && (flags & IC_XATTR_CREATE)) return -EEXIST;
  if (!s && (flags & IC_XATTR_REPLACE)) return -ENODATA;
  uint8_t *copy = (uint8_t *)memdup0(val, vlen);
  if (!copy) return -ENOMEM;
  if (!s) {
    void *p = realloc(in->streams, (in->nstreams + 1) * sizeof(*in->streams));
    char *n = p ? memdup0(name, nlen) : NULL;
    if (p) in->streams = p;
    if (!n) {
      free(copy);
      return -ENOMEM;
    }
    s = &in->streams[in->nstreams++];
    *s = (ic_stream){n, nlen, NULL, 0};
  }
  free(s->value);
  s->value = copy;
  s->value_len = vlen;
  in->dirty = true;
  return 0;
}

int ic_inode_xattr_remove(ic_inode *in, const char *name) {
  ic_stream *s = in->loaded ? stream_find(in, name, strlen(name)) : NULL;
  if (!s) return -ENODATA;
  free(s->name);
  free(s->value);
  *s = in->streams[--in->nstreams];
  in->dirty = true;
  return 0;
}

int ic_inode_xattr_list(ic_inode *in, char *buf, size_t cap, size_t *len) {
  if (!in->loaded) return -ENOENT;
  size_t need = 0;
  for (size_t i = 0; i < in->nstreams; i++) need += in->streams[i].name_len + 1;
  *len = need;
  if (cap == 0) return 0;
  if (cap < need) return -ERANGE;
  for (size_t i = 0; i < in->nstreams; i++) {
    memcpy(buf, in->streams[i].name, in->streams[i].name_len + 1);
    buf += in->streams[i].name_len + 1;
  }
  return 0;
}

int ic_inode_set_symlink(ic_inode *in, const char *target, size_t len) {
  if (!in->loaded || in->type != ILAYOUT_INODE_TYPE_SYMLINK) return -EINVAL;
  char *copy = memdup0(target, len);
  if (!copy) return -ENOMEM;
  free(in->symlink);
  in->symlink = copy;
  in->symlink_len = len;
  in->dirty = true;
  return 0;
}

void ic_inode_forget_deleted(ic_inode *in) {
  ic_inode_free_state(in);
  in->loaded = false;
  in->dirty = false;
  in->put_obj = 0;
  in->d_count = in->d_written = in->d_referenced = 0;
}
