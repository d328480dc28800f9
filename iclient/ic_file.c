/* ic_file: file data: recordExtent / unmapExtent (iclient.md 6.2), the read
 * plan (5.3), truncation. */
#include <errno.h>
#include <string.h>

#include "ic_inode_internal.h"
#include "logger.h"
#include "utils.h"

typedef ilayout_extent_map_entry_value_v1 extent;

static int ext_decode(const uint8_t *val, size_t vlen, uint64_t key, extent *e) {
  ilayout_cursor c;
  ilayout_cursor_init(&c, val, vlen);
  int rc = ilayout_extent_map_entry_value_v1_decode(&c, e);
  if (rc == 0 && (e->length == 0 || key + e->length < key)) rc = -EINVAL;
  return rc;
}

static int ext_at(sm_tree *t, uint64_t index, uint64_t *key, extent *e) {
  uint8_t val[ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN];
  size_t klen, vlen;
  int rc = sm_get_by_index(t, index, key, sizeof(*key), &klen, val, sizeof(val), &vlen);
  return rc ? rc : ext_decode(val, vlen, *key, e);
}

/* Like ext_at, but past the end is 0 and an extent 1. */
static int ext_next(sm_tree *t, uint64_t index, uint64_t *key, extent *e) {
  int rc = ext_at(t, index, key, e);
  return rc == -ENOENT ? 0 : rc < 0 ? rc : 1;
}

static void ext_encode(const extent *e, uint8_t val[ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN]) {
  ilayout_wcursor w;
  ilayout_wcursor_init(&w, val, ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN);
  (void)ilayout_extent_map_entry_value_v1_encode(e, &w); /* fixed size: cannot fail */
}

static int ext_insert(sm_tree *t, uint64_t key, const extent *e) {
  uint8_t val[ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN];
  ext_encode(e, val);
  return sm_insert(t, &key, sizeof(key), val, sizeof(val));
}

static int ext_replace(sm_tree *t, uint64_t index, const extent *e) {
  uint8_t val[ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN];
  ext_encode(e, val);
  return sm_put_by_index(t, index, val, sizeof(val));
}

static int file_tree(ic_volume *v, ic_inode *in, sm_tree **t) {
  if (!in->loaded) return -ENOENT;
  if (in->type == ILAYOUT_INODE_TYPE_DIR) return -EISDIR;
  if (in->type != ILAYOUT_INODE_TYPE_FILE) return -EINVAL;
  return ic_inode_payload(v, in, t);
}

/* Index of the first extent that may overlap [off, ...). */
static int first_index(sm_tree *t, uint64_t off, uint64_t *index) {
  int64_t i;
  bool found;
  int rc = sm_bisect_left(t, &off, sizeof(off), &i, &found);
  *index = i < 0 ? 0 : (uint64_t)i;
  return rc;
}

/* unmapExtent: no extent keeps bytes of [off, end) afterwards; the bytes
 * dropped are unreferenced exactly once (the original subtracted twice in
 * one branch: iclient.md 6.2 / 10.6). */
static int unmap(ic_inode *in, sm_tree *t, uint64_t off, uint64_t end) {
  uint64_t n, idx, k;
  extent e;
  int rc = sm_len(t, &n);
  if (rc == 0) rc = first_index(t, off, &idx);
  if (rc) return rc;
  if (idx < n) {
    rc = ext_at(t, idx, &k, &e);
    if (rc) return rc;
    if (k < off) {
      uint64_t k_end = k + e.length;
      if (k_end > off) { /* keep the head [k, off) */
        extent head = e;
        head.length = off - k;
        if (k_end > end) { /* the range is inside this extent: split it */
          extent tail = {k_end - end, e.object_number, e.object_offset + (end - k)};
          rc = ext_replace(t, idx, &head);
          if (rc == 0) rc = ext_insert(t, end, &tail);
          return rc ? rc : ic_layout_unref(in, e.object_number, end - off);
        }
        rc = ext_replace(t, idx, &head);
        if (rc == 0) rc = ic_layout_unref(in, e.object_number, k_end - off);
        if (rc) return rc;
      }
      idx++;
    }
  }
  for (;;) {
    rc = ext_next(t, idx, &k, &e);
    if (rc <= 0 || k >= end) return rc < 0 ? rc : 0;
    uint64_t k_end = k + e.length;
    rc = sm_delete_by_index(t, idx);
    if (rc) return rc;
    if (k_end <= end) {
      rc = ic_layout_unref(in, e.object_number, e.length);
      if (rc) return rc;
      continue; /* the next extent moved to idx */
    }
    uint64_t cut = end - k; /* keep the part past end */
    extent tail = {e.length - cut, e.object_number, e.object_offset + cut};
    rc = ext_insert(t, end, &tail);
    return rc ? rc : ic_layout_unref(in, e.object_number, cut);
  }
}

int ic_file_write(ic_volume *v, ic_inode *in, uint64_t off, const void *data, size_t len) {
  sm_tree *t;
  int rc = file_tree(v, in, &t);
  if (rc) return rc;
  if (len == 0) return 0;
  if (off + len < off || off + len > (uint64_t)INT64_MAX) return -EFBIG;
  /* This write fills the segment: make room for it among those in flight
   * first, while nothing is recorded yet (a write that cannot fails whole). */
  if (in->put_len + len >= v->p.file_flush_trigger_size && (rc = ic_upload_room(v))) return rc;
  rc = unmap(in, t, off, off + len);
  uint64_t obj, obj_off;
  if (rc == 0) rc = ic_put_append(in, data, len, &obj, &obj_off);
  if (rc) return rc;

  /* Grow the previous extent when this write continues it in the file and
   * in the log segment (a sequential writer gets one extent per object). */
  uint64_t idx, k;
  extent e;
  bool grown = false;
  int64_t i;
  bool found;
  rc = sm_bisect_left(t, &off, sizeof(off), &i, &found);
  if (rc == 0 && i >= 0 && !found) {
    idx = (uint64_t)i;
    rc = ext_at(t, idx, &k, &e);
    if (rc == 0 && k + e.length == off && e.object_number == obj &&
        e.object_offset + e.length == obj_off) {
      e.length += len;
      rc = ext_replace(t, idx, &e);
      grown = true;
    }
  }
  if (rc == 0 && !grown) {
    extent ne = {len, obj, obj_off};
    rc = ext_insert(t, off, &ne);
  }
  if (rc) return rc;
  if (off + len > in->size) in->size = off + len;
  in->mtime_ns = in->ctime_ns = (int64_t)ut_wall_ns();
  in->dirty = true;
  if (in->put_len >= v->p.file_flush_trigger_size) return ic_seal_segment(v, in);
  return 0;
}

int ic_file_read(ic_volume *v, ic_inode *in, uint64_t off, size_t len, void *buf, size_t *got) {
  sm_tree *t;
  int rc = file_tree(v, in, &t);
  *got = 0;
  if (rc) return rc;
  if (off >= in->size || len == 0) return 0;
  uint64_t end = in->size - off < len ? in->size : off + len;
  uint8_t *dst = buf;
  memset(dst, 0, end - off); /* holes and the sparse tail read as zeros */
  uint64_t idx;
  rc = first_index(t, off, &idx);
  for (; rc == 0; idx++) {
    uint64_t k;
    extent e;
    rc = ext_next(t, idx, &k, &e);
    if (rc <= 0) break;
    rc = 0;
    if (k >= end) break;
    uint64_t k_end = k + e.length;
    if (k_end <= off) continue;
    uint64_t s = k > off ? k : off, f = k_end < end ? k_end : end;
    uint64_t src = e.object_offset + (s - k);
    if (e.object_number == in->put_obj && in->put_obj != 0) {
      if (src > in->put_len || f - s > in->put_len - src) {
        rc = -EIO;
        break;
      }
      memcpy(dst + (s - off), in->put_buf + src, f - s);
    } else if ((rc = ic_sealed_copy(v, in, e.object_number, src, f - s, dst + (s - off))) == 1) {
      rc = ic_rcache_read(v->rcache, e.object_number, src, f - s, dst + (s - off));
    }
  }
  if (rc) {
    log_error("iclient: inode %016llX: read at %llu failed: %d", (unsigned long long)in->ino,
              (unsigned long long)off, rc);
    return rc == -ENOMEM ? rc : -EIO;
  }
  *got = (size_t)(end - off);
  return 0;
}

int ic_file_truncate(ic_volume *v, ic_inode *in, uint64_t size) {
  sm_tree *t;
  int rc = file_tree(v, in, &t);
  if (rc) return rc;
  if (size > (uint64_t)INT64_MAX) return -EFBIG;
  if (size < in->size) rc = unmap(in, t, size, UINT64_MAX);
  if (rc) return rc;
  in->size = size;
  in->mtime_ns = in->ctime_ns = (int64_t)ut_wall_ns();
  in->dirty = true;
  return 0;
}

int ic_file_punch_hole(ic_volume *v, ic_inode *in, uint64_t off, uint64_t len) {
  sm_tree *t;
  int rc = file_tree(v, in, &t);
  if (rc || len == 0 || off >= in->size) return rc;
  uint64_t end = off + len < off || off + len > in->size ? in->size : off + len;
  rc = unmap(in, t, off, end);
  if (rc) return rc;
  in->mtime_ns = in->ctime_ns = (int64_t)ut_wall_ns();
  in->dirty = true;
  return 0;
}

int ic_file_seek_data(ic_volume *v, ic_inode *in, uint64_t off, bool hole, uint64_t *out) {
  sm_tree *t;
  int rc = file_tree(v, in, &t);
  if (rc) return rc;
  if (off >= in->size) return -ENXIO;
  uint64_t idx, pos = off;
  bool data = false; /* pos is a data byte */
  rc = first_index(t, off, &idx);
  for (; rc == 0; idx++) {
    uint64_t k;
    extent e;
    rc = ext_next(t, idx, &k, &e);
    if (rc <= 0) break;
    rc = 0;
    if (k + e.length <= pos) continue; /* ends before pos */
    if (k > pos) {                     /* pos is in a hole */
      if (!hole) {
        pos = k;
        data = true;
      }
      break;
    }
    if (!hole) { /* pos is data */
      data = true;
      break;
    }
    pos = k + e.length; /* data up to here: the hole may follow */
  }
  if (rc) return rc;
  if (!hole && (!data || pos >= in->size)) return -ENXIO;
  *out = pos < in->size ? pos : in->size;
  return 0;
}
