/* ic_flush: the commit protocol (iclient.md 6.3) and the accounting check
 * of iclient.md 10.6. See ic_inode_internal.h for the accounting rules. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ic_inode_internal.h"
#include "logger.h"
#include "utils.h"

/* The head as encoded: arrays borrowed from the inode except the layout,
 * which leaves out the active log segment when it references nothing. */
typedef struct head_view {
  ilayout_inode_head_v1 h;
  ilayout_link_entry *links;
  ilayout_stream_entry *streams;
  ilayout_layout_entry_v1 *layout;
} head_view;

static void head_view_free(head_view *hv) {
  free(hv->links);
  free(hv->streams);
  free(hv->layout);
}

static int head_view_build(ic_inode *in, bool keep_put, head_view *hv) {
  memset(hv, 0, sizeof(*hv));
  hv->links = calloc(in->nlinks + 1, sizeof(*hv->links));
  hv->streams = calloc(in->nstreams + 1, sizeof(*hv->streams));
  hv->layout = calloc(in->nlayout + 1, sizeof(*hv->layout));
  if (!hv->links || !hv->streams || !hv->layout) {
    head_view_free(hv);
    return -ENOMEM;
  }
  for (size_t i = 0; i < in->nlinks; i++)
    hv->links[i] = (ilayout_link_entry){in->links[i].parent, in->links[i].name, in->links[i].len};
  for (size_t i = 0; i < in->nstreams; i++)
    hv->streams[i] = (ilayout_stream_entry){in->streams[i].name, in->streams[i].name_len,
                                            in->streams[i].value, in->streams[i].value_len};
  size_t nl = 0;
  for (size_t i = 0; i < in->nlayout; i++) {
    const ilayout_layout_entry_v1 *e = &in->layout[i];
    if (e->object_number == in->put_obj && !keep_put) continue;
    hv->layout[nl++] = *e;
  }
  ilayout_inode_head_v1 *h = &hv->h;
  h->inode_number = in->ino;
  h->inode_type = in->type;
  h->link_table_len = in->nlinks;
  h->link_table = hv->links;
  h->size = in->type == ILAYOUT_INODE_TYPE_FILE ? in->size : 0;
  h->modification_time_ns = in->mtime_ns;
  h->status_change_time_ns = in->ctime_ns;
  h->mode = in->mode & IC_INODE_MODE_MASK;
  h->user_id = in->uid;
  h->group_id = in->gid;
  h->stream_table_len = in->nstreams;
  h->stream_table = hv->streams;
  if (in->type != ILAYOUT_INODE_TYPE_SYMLINK) {
    h->payload_object_number = in->payload_ref.object_number;
    h->payload_object_offset = in->payload_ref.object_offset;
    h->payload_object_length = in->payload_ref.object_length;
  }
  h->symlink_target = in->symlink;
  h->symlink_target_len = in->symlink_len;
  h->layout_len = nl;
  h->layout = hv->layout;
  return 0;
}

/* Flush the tree and PUT the log segment with the head at its end. On
 * success the segment is closed and its accounting folded into the pending
 * deltas; on failure the inode keeps everything for a retry. */
static int write_segment(ic_volume *v, ic_inode *in) {
  if (!in->loaded) return -EINVAL;
  int rc = ic_sealed_wait(v, in); /* the head names their extents */
  if (rc) return rc;
  if (in->payload) {
    sm_ref root;
    rc = sm_flush(in->payload, &root);
    if (rc == 0) {
      in->payload_ref = root;
      rc = sm_prune(in->payload); /* old nodes: unreferenced, maybe dereferenced */
    }
    if (rc) return rc;
  }
  uint64_t obj, off;
  rc = ic_put_append(in, NULL, 0, &obj, &off); /* a segment even for a head alone */
  if (rc) return rc;
  ilayout_layout_entry_v1 *pe = ic_layout_find(in, in->put_obj);
  if (!pe) return -EUCLEAN;
  bool keep = pe->bytes_referenced > 0;

  head_view hv;
  rc = head_view_build(in, keep, &hv);
  if (rc) return rc;
  ilayout_wcursor w;
  ilayout_wcursor_init(&w, NULL, 0);
  rc = ilayout_inode_head_v1_encode(&hv.h, &w);
  size_t hlen = ilayout_wcursor_pos(&w);
  size_t head_at = in->put_len;
  if (rc == 0 && in->put_cap - in->put_len < hlen) {
    size_t cap = in->put_len + hlen;
    void *p = realloc(in->put_buf, cap);
    if (!p)
      rc = -ENOMEM;
    else {
      in->put_buf = p;
      in->put_cap = cap;
    }
  }
  if (rc == 0) {
    ilayout_wcursor_init(&w, in->put_buf + head_at, hlen);
    rc = ilayout_inode_head_v1_encode(&hv.h, &w);
  }
  head_view_free(&hv);
  if (rc) return rc;
  in->put_len = head_at + hlen;
  rc = v->store->put(v->store_ctx, in->put_obj, in->put_buf, in->put_len);
  if (rc) {
    log_error("iclient: inode %016llX: PUT of log segment %016llX (%zu bytes) failed: %d",
              (unsigned long long)in->ino, (unsigned long long)in->put_obj, in->put_len, rc);
    in->put_len = head_at;
    return -EIO;
  }
  ic_put_fold(in, ic_layout_find(in, in->put_obj), keep);
  /* The previous head is garbage now unless its object holds live bytes. */
  if (in->head_obj != 0 && !ic_layout_find(in, in->head_obj)) {
    rc = ic_deref_add(in, in->head_obj);
    if (rc) return rc;
  }
  in->head_obj = in->put_obj;
  in->head_len = hlen;
  in->put_obj = 0;
  in->put_len = 0;
  ic_segbuf_give(v, in->put_buf, in->put_cap); /* a whole segment's is kept spare */
  in->put_buf = NULL;
  in->put_cap = 0;
  return 0;
}

typedef struct segments {
  ic_volume *v;
  ic_inode **dirty;
} segments;

static int segment_one(void *ctx, size_t i) {
  segments *s = ctx;
  return write_segment(s->v, s->dirty[i]);
}

/* Each dirty inode's log segment, PUT IC_COMMIT_THREADS at a time. */
static int write_segments(ic_volume *v, ic_inode *const *inodes, size_t n, size_t *ndirty) {
  segments s = {v, malloc((n ? n : 1) * sizeof(ic_inode *))};
  if (!s.dirty) return -ENOMEM;
  *ndirty = 0;
  for (size_t i = 0; i < n; i++)
    if (inodes[i]->dirty) s.dirty[(*ndirty)++] = inodes[i];
  int rc = ut_parallel(*ndirty, IC_COMMIT_THREADS, segment_one, &s);
  free(s.dirty);
  return rc;
}

/* After EMissingLease on a commit of the dirty inodes among inodes: take
 * their leases again and compare imgr's heads with what we sent. All at
 * their base: send again (0). All at the heads sent: the commit did land
 * (a reply lost at an imgr restart; *landed). Anything else: another
 * writer got in between, or imgr lost part of the history: the changes are
 * dropped, -EIO. */
static int regain(ic_volume *v, ic_inode *const *inodes, size_t n, uint64_t since,
                  bool *landed) {
  size_t ndirty = 0, at_base = 0, at_sent = 0;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    ic_inode *in = inodes[i];
    if (!in->dirty) continue;
    uint64_t head;
    rc = ic_volume_lease_regain(v, in, since, &head);
    ndirty++;
    at_base += rc == 0 && head == in->base_obj;
    at_sent += rc == 0 && head == in->head_obj;
  }
  if (rc) return rc;
  *landed = at_sent == ndirty;
  if (at_base == ndirty || *landed) return 0;
  for (size_t i = 0; i < n; i++)
    if (inodes[i]->dirty) {
      log_error("iclient: inode %016llX: imgr's head is neither the base of its changes nor "
                "the one sent: the changes are dropped (EIO)", (unsigned long long)inodes[i]->ino);
      ic_inode_forget_deleted(inodes[i]);
    }
  return -EIO;
}

int ic_flush_inodes(ic_volume *v, ic_inode *const *inodes, size_t n) {
  size_t ndirty = 0, nderef = 0;
  int rc = 0;
  uint64_t gen = ic_volume_lease_gen(v); /* leases granted after it are the new mount's */
  for (size_t i = 0; i < n; i++) {
    ic_inode *in = inodes[i];
    ic_lease_state have = ic_volume_lease_of(v, in);
    if (!in->dirty || have == IC_LEASE_STATE_EXCLUSIVE) continue;
    if (have == IC_LEASE_STATE_SHARED) {
      log_error("iclient: inode %016llX changed without an exclusive lease",
                (unsigned long long)in->ino);
      return -ENOLCK;
    }
    rc = ic_volume_lease_recover(v, in); /* lost with the mount, or expired */
    if (rc) return rc;
  }
  rc = ic_volume_ask_new_leases(v, inodes, n);
  if (rc == 0) rc = write_segments(v, inodes, n, &ndirty);
  if (rc || ndirty == 0) return rc;
  for (size_t i = 0; i < n; i++)
    if (inodes[i]->dirty) nderef += inodes[i]->nderef;

  ic_inode_table_entry *entries = calloc(ndirty, sizeof(*entries));
  uint64_t *deref = calloc(nderef + 1, sizeof(*deref));
  if (!entries || !deref) {
    free(entries);
    free(deref);
    return -ENOMEM;
  }
  ic_put_inode_table_entries_req req = {
      .mount_id = v->mount_id, .entries = entries, .dereferenced = deref};
  for (size_t i = 0; i < n; i++) {
    ic_inode *in = inodes[i];
    if (!in->dirty) continue;
    entries[req.entries_len++] = (ic_inode_table_entry){in->ino, in->head_obj, in->head_len};
    req.object_count_adjustment += in->d_count;
    req.bytes_written_adjustment += in->d_written;
    req.bytes_referenced_adjustment += in->d_referenced;
    if (in->nderef) memcpy(deref + req.dereferenced_len, in->deref, in->nderef * sizeof(*deref));
    req.dereferenced_len += in->nderef;
  }
  bool landed = false;
  for (int attempt = 0;; attempt++) {
    ic_rpc_err err = {{0}};
    rc = v->imgr->put_inode_table_entries(v->imgr_ctx, &req, &err);
    if (rc == 0) break;
    log_error("iclient: PutInodeTableEntries of %zu inodes failed: %s", req.entries_len, err.msg);
    if (rc != -ENOLCK || attempt > 0) break;
    /* EMissingLease: imgr expired our leases, or forgot the mount (it
     * restarted) and we mounted again. Take them again and commit once
     * more if imgr still has the heads the changes were made to. */
    rc = regain(v, inodes, n, gen, &landed);
    if (rc || landed) break;
  }
  if (rc == 0) {
    for (size_t i = 0; i < n; i++) {
      ic_inode *in = inodes[i];
      if (in->dirty) {
        in->known = true;
        in->base_obj = in->head_obj;
      }
      in->dirty = false;
      in->d_count = in->d_written = in->d_referenced = 0;
      in->nderef = 0;
    }
  }
  free(entries);
  free(deref);
  return rc;
}

/* ---- accounting check ---- */

typedef struct acct {
  ilayout_layout_entry_v1 *sum; /* object_number + bytes_referenced used */
  size_t n, cap;
  int err;
} acct;

static void acct_add(acct *a, uint64_t obj, uint64_t len) {
  for (size_t i = 0; i < a->n; i++)
    if (a->sum[i].object_number == obj) {
      a->sum[i].bytes_referenced += len;
      return;
    }
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 8;
    void *p = realloc(a->sum, cap * sizeof(*a->sum));
    if (!p) {
      a->err = -ENOMEM;
      return;
    }
    a->sum = p;
    a->cap = cap;
  }
  a->sum[a->n++] = (ilayout_layout_entry_v1){obj, 0, len};
}

static int acct_ref(void *arg, const sm_ref *ref) {
  acct_add(arg, ref->object_number, ref->object_length);
  return 0;
}

int ic_inode_check_accounting(ic_volume *v, ic_inode *in) {
  if (!in->loaded) return -ENOENT;
  if (in->type == ILAYOUT_INODE_TYPE_SYMLINK) return in->nlayout == 0 ? 0 : -EUCLEAN;
  sm_tree *t;
  int rc = ic_inode_payload(v, in, &t);
  if (rc) return rc;
  acct a = {0};
  rc = sm_walk_refs(t, acct_ref, &a);
  if (rc == 0 && in->type == ILAYOUT_INODE_TYPE_FILE) {
    sm_cursor c;
    sm_cursor_init(&c, t, 0);
    for (;;) {
      uint64_t k;
      uint8_t val[ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN];
      size_t klen, vlen;
      rc = sm_cursor_next(&c, &k, sizeof(k), &klen, val, sizeof(val), &vlen);
      if (rc) break;
      ilayout_cursor cur;
      ilayout_cursor_init(&cur, val, vlen);
      ilayout_extent_map_entry_value_v1 e;
      rc = ilayout_extent_map_entry_value_v1_decode(&cur, &e);
      if (rc) break;
      acct_add(&a, e.object_number, e.length);
    }
    if (rc == -ENOENT) rc = 0;
  }
  if (rc == 0) rc = a.err;
  for (size_t i = 0; rc == 0 && i < a.n; i++) {
    const ilayout_layout_entry_v1 *e = ic_layout_find(in, a.sum[i].object_number);
    uint64_t have = e ? e->bytes_referenced : 0;
    if (have != a.sum[i].bytes_referenced) {
      log_error("iclient: inode %016llX: object %016llX: layout says %llu bytes referenced, "
                "extents and nodes use %llu",
                (unsigned long long)in->ino, (unsigned long long)a.sum[i].object_number,
                (unsigned long long)have, (unsigned long long)a.sum[i].bytes_referenced);
      rc = -EUCLEAN;
    }
  }
  /* Every layout entry must be used by something (else it should be gone). */
  if (rc == 0 && in->nlayout != a.n) {
    log_error("iclient: inode %016llX: %zu layout entries, %zu objects in use",
              (unsigned long long)in->ino, in->nlayout, a.n);
    rc = -EUCLEAN;
  }
  free(a.sum);
  return rc;
}
