/* The server, the volume map, activation and the internal volume API the
 * RPC layer calls (imgr.md 4.1, 4.4-4.6). Lock order: see imgr.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imgr_internal.h"
#include "logger.h"

/* ---- small helpers ---------------------------------------------------------- */

bool imgr_stat_now(uint64_t *t0) {
  *t0 = ut_now_ns();
  return true;
}

void imgr_stat_done(bs_log2 *s, uint64_t t0) { bs_log2_add(s, (ut_now_ns() - t0) / 1000); }

int imgr_u64vec_push(imgr_u64vec *a, uint64_t x) {
  if (a->n == a->cap) {
    size_t nc = a->cap ? a->cap * 2 : 16;
    uint64_t *nv = realloc(a->v, nc * sizeof *nv);
    if (!nv) return -ENOMEM;
    a->v = nv;
    a->cap = nc;
  }
  a->v[a->n++] = x;
  return 0;
}

bool imgr_u64vec_has(const imgr_u64vec *a, uint64_t x) {
  for (size_t i = 0; i < a->n; i++)
    if (a->v[i] == x) return true;
  return false;
}

void imgr_u64vec_remove_front(imgr_u64vec *a, size_t n) {
  if (n > a->n) n = a->n;
  if (n == 0) return;
  memmove(a->v, a->v + n, (a->n - n) * sizeof *a->v);
  a->n -= n;
}

imgr_layout *imgr_layout_find(imgr_volume *vol, uint64_t obj) {
  for (size_t i = 0; i < vol->nlayout; i++)
    if (vol->layout[i].object_number == obj) return &vol->layout[i];
  return NULL;
}

int imgr_layout_add(imgr_volume *vol, uint64_t obj, uint64_t bytes) {
  imgr_layout *l = imgr_layout_find(vol, obj);
  if (!l) {
    if (vol->nlayout == vol->caplayout) {
      size_t nc = vol->caplayout ? vol->caplayout * 2 : 8;
      imgr_layout *nl = realloc(vol->layout, nc * sizeof *nl);
      if (!nl) return -ENOMEM;
      vol->layout = nl;
      vol->caplayout = nc;
    }
    l = &vol->layout[vol->nlayout++];
    *l = (imgr_layout){obj, 0, 0};
  }
  l->bytes_written += bytes;
  l->bytes_referenced += bytes;
  return 0;
}

static void layout_remove(imgr_volume *vol, imgr_layout *l) {
  *l = vol->layout[--vol->nlayout];
}

/* ---- inode-table callbacks ---------------------------------------------------- */

static int table_read_node(void *ctx, const sm_ref *ref, uint8_t *dst) {
  imgr_volume *vol = ctx;
  pthread_mutex_lock(&vol->mu);
  /* Nodes of an object not yet in Swift are served from memory. */
  const uint8_t *mem = NULL;
  size_t memlen = 0;
  if (ref->object_number == vol->cur_object && vol->cur_object) {
    mem = vol->cur_buf;
    memlen = vol->cur_len;
  }
  for (size_t i = 0; !mem && i < vol->nunwritten; i++)
    if (vol->unwritten[i].object_number == ref->object_number) {
      mem = vol->unwritten[i].buf;
      memlen = vol->unwritten[i].len;
    }
  if (mem) {
    int rc = 0;
    if (ref->object_offset > memlen || ref->object_length > memlen - ref->object_offset)
      rc = -EINVAL;
    else
      memcpy(dst, mem + ref->object_offset, ref->object_length);
    pthread_mutex_unlock(&vol->mu);
    return rc;
  }
  pthread_mutex_unlock(&vol->mu);
  bs_total_inc(&vol->srv->stats.InodeTableCacheMisses);
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(ref->object_number, name);
  swift_range r = {SWIFT_RANGE_SPAN, ref->object_offset, ref->object_length};
  size_t got = 0;
  int rc = imgr_vol_get(vol, name, r, dst, ref->object_length, &got);
  if (!rc && got != ref->object_length) rc = -EINVAL;
  if (rc) log_error("volume %s: reading inode-table node %s@%llu+%llu: %s", vol->name, name,
                    (unsigned long long)ref->object_offset,
                    (unsigned long long)ref->object_length, strerror(-rc));
  return rc;
}

static int table_write_node(void *ctx, const uint8_t *bytes, size_t len, uint64_t *obj,
                            uint64_t *off) {
  imgr_volume *vol = ctx;
  int rc = 0;
  pthread_mutex_lock(&vol->mu);
  if (!vol->cur_object) {
    rc = -EINVAL; /* only a checkpoint writes nodes */
  } else {
    if (vol->cur_len + len > vol->cur_cap) {
      size_t nc = vol->cur_cap ? vol->cur_cap : 4096;
      while (nc < vol->cur_len + len) nc *= 2;
      uint8_t *nb = realloc(vol->cur_buf, nc);
      if (!nb) rc = -ENOMEM;
      else vol->cur_buf = nb, vol->cur_cap = nc;
    }
    if (!rc) rc = imgr_layout_add(vol, vol->cur_object, len);
    if (!rc) {
      memcpy(vol->cur_buf + vol->cur_len, bytes, len);
      *obj = vol->cur_object;
      *off = vol->cur_len;
      vol->cur_len += len;
    }
  }
  pthread_mutex_unlock(&vol->mu);
  return rc;
}

static int table_discard_node(void *ctx, const sm_ref *ref) {
  imgr_volume *vol = ctx;
  pthread_mutex_lock(&vol->mu);
  imgr_layout *l = imgr_layout_find(vol, ref->object_number);
  int rc = 0;
  if (!l) {
    log_error("volume %s: discarded node in object %016llX not in the layout", vol->name,
              (unsigned long long)ref->object_number);
  } else {
    if (l->bytes_referenced < ref->object_length) {
      log_error("volume %s: referenced bytes of object %016llX would drop below zero",
                vol->name, (unsigned long long)ref->object_number);
      l->bytes_referenced = 0;
    } else {
      l->bytes_referenced -= ref->object_length;
    }
    if (l->bytes_referenced == 0) {
      uint64_t obj = l->object_number;
      layout_remove(vol, l);
      /* The committed superblock lives there: the next checkpoint queues it
       * as the previous checkpoint object. */
      if (obj != vol->committed.superblock_object_number)
        rc = imgr_u64vec_push(&vol->pending, obj);
      vol->dirty = true;
    }
  }
  pthread_mutex_unlock(&vol->mu);
  return rc;
}

void imgr_tree_config(sm_config *c, sm_codec_kind kk, size_t vlen) {
  memset(c, 0, sizeof *c);
  c->key.kind = kk;
  c->value.kind = SM_CODEC_FIXED;
  c->value.fixed_len = vlen;
}

void imgr_table_config(imgr_volume *vol, sm_config *c) {
  imgr_tree_config(c, SM_CODEC_U64, ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN);
  c->read_node = table_read_node;
  c->write_node = table_write_node;
  c->discard_node = table_discard_node;
  c->ctx = vol;
}

/* ---- server ------------------------------------------------------------------- */

static int register_stats(imgr_server *srv) {
  imgr_stats *s = &srv->stats;
#define L(n) BS_DESC_LOG2(&s->n, #n)
#define T(n) BS_DESC_TOTAL(&s->n, #n)
  bs_stat_desc d[] = {
      L(DeleteVolumeUsecs), L(GetConfigUsecs), L(GetStatsUsecs), L(GetVersionUsecs),
      L(GetVolumeInodeUsecs), L(GetVolumeListUsecs), L(GetVolumeUsecs), L(PostVolumeUsecs),
      L(PutVolumeUsecs), L(VolumeCheckPointUsecs), L(CheckPointReadUsecs),
      L(CheckPointWriteUsecs), L(FetchNonceRangeUsecs), L(FlushUsecs),
      L(PutInodeTableEntriesUsecs), L(GetInodeTableEntryUsecs), L(DeleteInodeTableEntryUsecs),
      L(VolumeStatusUsecs), L(SwiftObjectDeleteUsecs), L(SwiftObjectGetUsecs),
      L(SwiftObjectGetRangeUsecs), L(SwiftObjectGetTailUsecs), L(SwiftObjectPutUsecs),
      T(InodeTableCacheHits), T(InodeTableCacheMisses), T(ObjectDeletes),
      T(ObjectDeleteErrors), T(CheckPointFailures)};
#undef L
#undef T
  return bs_register("IMGR", "", d, sizeof d / sizeof d[0]);
}

int imgr_server_create(const imgr_config *cfg, imgr_server **out) {
  imgr_server *srv = calloc(1, sizeof *srv);
  if (!srv) return -ENOMEM;
  srv->cfg = cfg;
  pthread_mutex_init(&srv->mu, NULL);
  pthread_cond_init(&srv->ka_cond, NULL);
  int rc = register_stats(srv);
  if (rc) {
    log_error("registering IMGR stats: %s", strerror(-rc));
    goto fail;
  }
  srv->stats_registered = true;
  /* Both watermarks as configured (the original passed the low one twice). */
  srv->cache = sm_cache_create(cfg->inode_table_cache_evict_low_limit,
                               cfg->inode_table_cache_evict_high_limit, 0);
  if (!srv->cache) {
    rc = -ENOMEM;
    goto fail;
  }
  if ((rc = imgr_ickpt_create(cfg, &srv->ickpt))) goto fail;
  *out = srv;
  return 0;
fail:
  imgr_server_destroy(srv);
  return rc;
}

const imgr_config *imgr_server_config(const imgr_server *srv) { return srv->cfg; }

static void volume_free(imgr_volume *vol) {
  /* Normally quiesced already (unserve, server destroy); a reference held
   * past that may have started either again. */
  imgr_checkpoint_thread_stop(vol);
  imgr_volume_wait_deletes(vol);
  sm_destroy(vol->table);
  imgr_volume_drop_conn(vol);
  free(vol->name);
  free(vol->static_token);
  imgr_store_free(&vol->store);
  free(vol->layout);
  free(vol->pending.v);
  free(vol->deletable.v);
  free(vol->cur_buf);
  for (size_t i = 0; i < vol->nunwritten; i++) free(vol->unwritten[i].buf);
  free(vol->unwritten);
  pthread_mutex_destroy(&vol->ckpt_mu);
  pthread_mutex_destroy(&vol->obj0_mu);
  pthread_mutex_destroy(&vol->mu);
  pthread_rwlock_destroy(&vol->table_rw);
  pthread_cond_destroy(&vol->cond);
  free(vol);
}

void imgr_volume_put_ref(imgr_volume *vol) {
  if (!vol) return;
  imgr_server *srv = vol->srv;
  pthread_mutex_lock(&srv->mu);
  bool last = --vol->refs == 0;
  pthread_mutex_unlock(&srv->mu);
  if (last) volume_free(vol);
}

static ssize_t find_locked(imgr_server *srv, const char *name, bool *found) {
  size_t lo = 0, hi = srv->nvols;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(srv->vols[mid]->name, name);
    if (c == 0) {
      *found = true;
      return (ssize_t)mid;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  *found = false;
  return (ssize_t)lo;
}

int imgr_volume_get_ref(imgr_server *srv, const char *name, imgr_volume **out) {
  bool found;
  pthread_mutex_lock(&srv->mu);
  ssize_t i = find_locked(srv, name, &found);
  if (found) {
    *out = srv->vols[i];
    (*out)->refs++;
  }
  pthread_mutex_unlock(&srv->mu);
  return found ? 0 : -ENOENT;
}

/* Final checkpoint, deletes drained, thread stopped: the volume is quiet. */
static int volume_quiesce(imgr_volume *vol) {
  imgr_checkpoint_thread_stop(vol);
  int rc = imgr_volume_checkpoint(vol);
  if (rc) log_error("volume %s: final checkpoint failed: %s", vol->name, strerror(-rc));
  imgr_volume_wait_deletes(vol);
  return rc;
}

int imgr_server_destroy(imgr_server *srv) {
  if (!srv) return 0;
  imgr_keepalive_stop(srv);
  ut_http_server_stop(srv->http);
  srv->http = NULL;
  int first = 0;
  for (;;) {
    pthread_mutex_lock(&srv->mu);
    imgr_volume *vol = srv->nvols ? srv->vols[--srv->nvols] : NULL;
    if (vol) vol->served = false;
    pthread_mutex_unlock(&srv->mu);
    if (!vol) break;
    int rc = volume_quiesce(vol);
    if (rc && !first) first = rc;
    imgr_volume_put_ref(vol);
  }
  free(srv->vols);
  sm_cache_destroy(srv->cache);
  imgr_ickpt_destroy(srv->ickpt);
  if (srv->stats_registered) bs_unregister("IMGR", "");
  pthread_mutex_destroy(&srv->mu);
  pthread_cond_destroy(&srv->ka_cond);
  free(srv);
  return first;
}

/* ---- serve / unserve ------------------------------------------------------------- */

static bool name_ok(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > 255) return false;
  for (const char *p = n; *p; p++)
    if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f) return false;
  return true;
}

int imgr_volume_serve(imgr_server *srv, const char *name, const char *url, const char *token) {
  if (!name_ok(name)) return -EINVAL;
  imgr_volume *vol = calloc(1, sizeof *vol);
  if (!vol) return -ENOMEM;
  int rc = imgr_store_init(&vol->store, url);
  if (rc) {
    free(vol);
    return rc;
  }
  vol->srv = srv;
  vol->refs = 1;
  vol->name = strdup(name);
  vol->static_token = strdup(token ? token : "");
  pthread_mutex_init(&vol->ckpt_mu, NULL);
  pthread_mutex_init(&vol->obj0_mu, NULL);
  pthread_mutex_init(&vol->mu, NULL);
  pthread_rwlock_init(&vol->table_rw, NULL);
  pthread_cond_init(&vol->cond, NULL);
  if (!vol->name || !vol->static_token) {
    volume_free(vol);
    return -ENOMEM;
  }
  bool found;
  pthread_mutex_lock(&srv->mu);
  ssize_t i = find_locked(srv, name, &found);
  if (found) {
    rc = -EEXIST;
  } else if (srv->nvols == srv->capvols) {
    size_t nc = srv->capvols ? srv->capvols * 2 : 8;
    imgr_volume **nv = realloc(srv->vols, nc * sizeof *nv);
    if (!nv) rc = -ENOMEM;
    else srv->vols = nv, srv->capvols = nc;
  }
  if (!rc) {
    memmove(&srv->vols[i + 1], &srv->vols[i], (srv->nvols - (size_t)i) * sizeof *srv->vols);
    srv->vols[i] = vol;
    srv->nvols++;
    vol->served = true;
  }
  pthread_mutex_unlock(&srv->mu);
  if (rc) volume_free(vol);
  else log_info("volume %s served from %s", name, url);
  return rc;
}

int imgr_volume_unserve(imgr_server *srv, const char *name) {
  bool found;
  pthread_mutex_lock(&srv->mu);
  ssize_t i = find_locked(srv, name, &found);
  imgr_volume *vol = NULL;
  if (found) {
    vol = srv->vols[i];
    memmove(&srv->vols[i], &srv->vols[i + 1], (srv->nvols - (size_t)i - 1) * sizeof *srv->vols);
    srv->nvols--;
    vol->served = false;
  }
  pthread_mutex_unlock(&srv->mu);
  if (!vol) return -ENOENT;
  /* Unlike the original, the checkpoint thread stops and the last changes
   * are checkpointed (imgr.md 6.15). */
  volume_quiesce(vol);
  imgr_volume_put_ref(vol);
  log_info("volume %s no longer served", name);
  return 0;
}

json_t *imgr_volume_list_json(imgr_server *srv) {
  /* Take references under srv->mu, then ask for the mount counts without
   * it: the token source takes the RPC layer's locks. */
  pthread_mutex_lock(&srv->mu);
  size_t n = srv->nvols;
  imgr_volume **vols = calloc(n + 1, sizeof *vols);
  for (size_t i = 0; vols && i < n; i++) {
    vols[i] = srv->vols[i];
    vols[i]->refs++;
  }
  pthread_mutex_unlock(&srv->mu);
  if (!vols) return NULL;
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    imgr_volume *v = vols[i];
    imgr_mount_counts c;
    imgr_vol_mount_counts(v, &c);
    pthread_mutex_lock(&v->mu);
    if (a)
      json_array_append_new(
          a, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "Name", v->name, "StorageURL",
                       v->store.storage_url, "AuthToken", v->static_token, "HealthyMounts",
                       (json_int_t)c.healthy, "LeasesExpiredMounts", (json_int_t)c.leases_expired,
                       "AuthTokenExpiredMounts", (json_int_t)c.auth_token_expired));
    pthread_mutex_unlock(&v->mu);
    imgr_volume_put_ref(v);
  }
  free(vols);
  return a;
}

/* ---- activation ------------------------------------------------------------------- */

int imgr_volume_activate(imgr_volume *vol) {
  /* A reference kept past DELETE /volume cannot bring the volume back. */
  pthread_mutex_lock(&vol->srv->mu);
  bool served = vol->served;
  pthread_mutex_unlock(&vol->srv->mu);
  if (!served) return -ENOENT;
  pthread_mutex_lock(&vol->ckpt_mu);
  pthread_mutex_lock(&vol->mu);
  bool active = vol->active;
  pthread_mutex_unlock(&vol->mu);
  if (active) {
    pthread_mutex_unlock(&vol->ckpt_mu);
    return 0;
  }
  ilayout_checkpoint_v1 ck;
  ilayout_superblock_v1 sb = {0};
  uint8_t *buf = NULL;
  sm_tree *t = NULL;
  int rc = imgr_vol_read_checkpoint(vol, NULL, NULL, &ck);
  if (rc) goto out;
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(ck.superblock_object_number, name);
  rc = imgr_vol_get_tail(vol, ck.superblock_object_number, ck.superblock_length, &buf);
  if (!rc) rc = ilayout_superblock_v1_decode(buf, ck.superblock_length, &sb);
  if (rc) {
    log_error("volume %s: superblock %s unreadable: %s", vol->name, name, strerror(-rc));
    goto out;
  }
  pthread_mutex_lock(&vol->mu);
  vol->committed = ck;
  vol->inode_object_count = sb.inode_object_count;
  vol->inode_bytes_written = sb.inode_bytes_written;
  vol->inode_bytes_referenced = sb.inode_bytes_referenced;
  vol->nlayout = 0;
  for (size_t i = 0; !rc && i < sb.inode_table_layout_len; i++) {
    rc = imgr_layout_add(vol, sb.inode_table_layout[i].object_number, 0);
    if (!rc) {
      imgr_layout *l = imgr_layout_find(vol, sb.inode_table_layout[i].object_number);
      l->bytes_written = sb.inode_table_layout[i].bytes_written;
      l->bytes_referenced = sb.inode_table_layout[i].bytes_referenced;
    }
  }
  vol->pending.n = 0;
  /* Deletes recorded by the committed superblock resume now (404 is fine). */
  for (size_t i = 0; !rc && i < sb.pending_delete_object_numbers_len; i++)
    rc = imgr_u64vec_push(&vol->deletable, sb.pending_delete_object_numbers[i]);
  pthread_mutex_unlock(&vol->mu);
  if (rc) goto out;
  sm_config cfg;
  imgr_table_config(vol, &cfg);
  sm_ref root = {sb.inode_table_root_object_number, sb.inode_table_root_object_offset,
                 sb.inode_table_root_object_length};
  char err[256];
  rc = sm_open(&cfg, vol->srv->cache, &root, &t, err, sizeof err);
  if (rc) {
    log_error("volume %s: inode table unreadable: %s", vol->name, err);
    goto out;
  }
  pthread_mutex_lock(&vol->mu);
  vol->table = t;
  t = NULL;
  vol->active = true;
  pthread_mutex_unlock(&vol->mu);
  rc = imgr_checkpoint_thread_start(vol);
  if (!rc) log_info("volume %s activated: superblock %s, ReservedToNonce %llu", vol->name,
                    name, (unsigned long long)ck.reserved_to_nonce);
out:
  pthread_mutex_unlock(&vol->ckpt_mu);
  if (!rc) imgr_gc_launch(vol);
  sm_destroy(t);
  ilayout_superblock_v1_free(&sb);
  free(buf);
  return rc;
}

static int need_active(imgr_volume *vol) {
  pthread_mutex_lock(&vol->mu);
  bool a = vol->active;
  pthread_mutex_unlock(&vol->mu);
  return a ? 0 : imgr_volume_activate(vol);
}

/* ---- internal API --------------------------------------------------------------------- */

int imgr_volume_get_inode(imgr_volume *vol, uint64_t ino, imgr_inode_entry *out) {
  int rc = need_active(vol);
  if (rc) return rc;
  uint64_t t0;
  imgr_stat_now(&t0);
  uint8_t v[ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN];
  size_t vlen;
  rc = sm_get(vol->table, &ino, sizeof ino, v, sizeof v, &vlen);
  if (!rc) {
    ilayout_cursor c;
    ilayout_inode_table_entry_value_v1 e;
    ilayout_cursor_init(&c, v, vlen);
    rc = ilayout_inode_table_entry_value_v1_decode(&c, &e);
    if (!rc) *out = (imgr_inode_entry){ino, e.inode_head_object_number, e.inode_head_length};
  }
  imgr_stat_done(&vol->srv->stats.GetInodeTableEntryUsecs, t0);
  return rc;
}

static int adjust(uint64_t *cur, int64_t adj, bool apply) {
  uint64_t v = *cur;
  if (adj < 0) {
    uint64_t d = (uint64_t)(-(adj + 1)) + 1;
    if (d > v) return -EINVAL;
    v -= d;
  } else {
    if ((uint64_t)adj > UINT64_MAX - v) return -EINVAL;
    v += (uint64_t)adj;
  }
  if (apply) *cur = v;
  return 0;
}

static int encode_value(uint64_t obj, uint64_t len, uint8_t v[ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN]) {
  ilayout_wcursor w;
  ilayout_wcursor_init(&w, v, ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN);
  ilayout_inode_table_entry_value_v1 e = {obj, len};
  return ilayout_inode_table_entry_value_v1_encode(&e, &w);
}

/* Put (insert when absent). */
static int table_set(sm_tree *t, uint64_t ino, const uint8_t *v) {
  int rc = sm_put(t, &ino, sizeof ino, v, ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN);
  if (rc == -ENOENT) rc = sm_insert(t, &ino, sizeof ino, v, ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN);
  return rc;
}

static int validate_batch(imgr_volume *vol, const imgr_put_batch *b) {
  pthread_mutex_lock(&vol->mu);
  uint64_t max = vol->committed.reserved_to_nonce;
  int rc = 0;
  for (size_t i = 0; !rc && i < b->n_entries; i++) {
    const imgr_inode_entry *e = &b->entries[i];
    if (e->inode_number == 0 || e->inode_number > max || e->inode_head_object_number == 0 ||
        e->inode_head_object_number > max || e->inode_head_length < ILAYOUT_OBJECT_TRAILER_LEN)
      rc = -EINVAL;
  }
  for (size_t i = 0; !rc && i < b->n_dereferenced; i++) {
    uint64_t o = b->dereferenced[i];
    if (o == 0 || o > max || o == vol->committed.superblock_object_number ||
        imgr_layout_find(vol, o))
      rc = -EINVAL;
  }
  if (!rc) rc = adjust(&vol->inode_object_count, b->object_count_adjustment, false);
  if (!rc) rc = adjust(&vol->inode_bytes_written, b->bytes_written_adjustment, false);
  if (!rc) rc = adjust(&vol->inode_bytes_referenced, b->bytes_referenced_adjustment, false);
  pthread_mutex_unlock(&vol->mu);
  return rc;
}

/* Dirty pages cannot be evicted: when they pass the cache's high
 * watermark, the checkpoint thread runs now instead of at its next tick. */
static void early_checkpoint_if_needed(imgr_volume *vol) {
  sm_cache_stats cs;
  sm_cache_stats_get(vol->srv->cache, &cs);
  if (cs.dirty_nodes <= vol->srv->cfg->inode_table_cache_evict_high_limit) return;
  pthread_mutex_lock(&vol->mu);
  vol->flush_requested = true;
  pthread_cond_broadcast(&vol->cond);
  pthread_mutex_unlock(&vol->mu);
}

int imgr_volume_put_inodes(imgr_volume *vol, const imgr_put_batch *b) {
  int rc = need_active(vol);
  if (rc) return rc;
  if ((rc = validate_batch(vol, b))) return rc;
  uint64_t t0;
  imgr_stat_now(&t0);
  /* Old values first, so a failure half way can be undone. */
  uint8_t (*old)[ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN] = calloc(b->n_entries + 1, sizeof *old);
  bool *had = calloc(b->n_entries + 1, sizeof *had);
  if (!old || !had) {
    rc = -ENOMEM;
    goto out_free;
  }
  pthread_rwlock_rdlock(&vol->table_rw);
  for (size_t i = 0; !rc && i < b->n_entries; i++) {
    uint64_t ino = b->entries[i].inode_number;
    size_t vlen;
    int g = sm_get(vol->table, &ino, sizeof ino, old[i], sizeof old[i], &vlen);
    if (g == 0) had[i] = true;
    else if (g != -ENOENT) rc = g;
  }
  size_t done = 0;
  for (; !rc && done < b->n_entries; done++) {
    uint8_t v[ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN];
    rc = encode_value(b->entries[done].inode_head_object_number,
                      b->entries[done].inode_head_length, v);
    if (!rc) rc = table_set(vol->table, b->entries[done].inode_number, v);
    if (rc) break;
  }
  if (rc) {
    /* Undo in reverse so duplicates get their first old value back. */
    while (done-- > 0) {
      uint64_t ino = b->entries[done].inode_number;
      int u = had[done] ? table_set(vol->table, ino, old[done])
                        : sm_delete(vol->table, &ino, sizeof ino);
      if (u && u != -ENOENT)
        log_error("volume %s: undoing a failed batch on inode %llu: %s", vol->name,
                  (unsigned long long)ino, strerror(-u));
    }
  } else {
    pthread_mutex_lock(&vol->mu);
    adjust(&vol->inode_object_count, b->object_count_adjustment, true);
    adjust(&vol->inode_bytes_written, b->bytes_written_adjustment, true);
    adjust(&vol->inode_bytes_referenced, b->bytes_referenced_adjustment, true);
    for (size_t i = 0; !rc && i < b->n_dereferenced; i++)
      rc = imgr_u64vec_push(&vol->pending, b->dereferenced[i]);
    vol->dirty = true;
    pthread_mutex_unlock(&vol->mu);
  }
  pthread_rwlock_unlock(&vol->table_rw);
  if (!rc) early_checkpoint_if_needed(vol);
out_free:
  free(old);
  free(had);
  imgr_stat_done(&vol->srv->stats.PutInodeTableEntriesUsecs, t0);
  return rc;
}

static void sub_sat(imgr_volume *vol, uint64_t *cur, uint64_t d, const char *what) {
  if (d > *cur) {
    log_warn("volume %s: %s would drop below zero; clamped", vol->name, what);
    *cur = 0;
  } else {
    *cur -= d;
  }
}

int imgr_volume_delete_inode(imgr_volume *vol, uint64_t ino) {
  imgr_inode_entry e;
  int rc = imgr_volume_get_inode(vol, ino, &e);
  if (rc) return rc;
  uint64_t t0;
  imgr_stat_now(&t0);
  ilayout_inode_head_v1 h = {0};
  uint8_t *buf = NULL;
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(e.inode_head_object_number, name);
  rc = imgr_vol_get_tail(vol, e.inode_head_object_number, e.inode_head_length, &buf);
  if (!rc) rc = ilayout_inode_head_v1_decode(buf, e.inode_head_length, &h);
  if (!rc && h.inode_number != ino) rc = -EINVAL;
  if (rc) {
    log_error("volume %s: inode %llu head in %s unusable: %s", vol->name,
              (unsigned long long)ino, name, strerror(-rc));
    goto out;
  }
  pthread_rwlock_rdlock(&vol->table_rw);
  /* The entry must still be the one whose head we read. */
  imgr_inode_entry now;
  rc = imgr_volume_get_inode(vol, ino, &now);
  if (!rc && (now.inode_head_object_number != e.inode_head_object_number ||
              now.inode_head_length != e.inode_head_length))
    rc = -EAGAIN;
  if (!rc) rc = sm_delete(vol->table, &ino, sizeof ino);
  if (!rc) {
    pthread_mutex_lock(&vol->mu);
    bool head_listed = false;
    for (size_t i = 0; i < h.layout_len; i++) {
      const ilayout_layout_entry_v1 *l = &h.layout[i];
      if (l->object_number == e.inode_head_object_number) head_listed = true;
      imgr_u64vec_push(&vol->pending, l->object_number);
      sub_sat(vol, &vol->inode_object_count, 1, "InodeObjectCount");
      sub_sat(vol, &vol->inode_bytes_written, l->bytes_written, "InodeBytesWritten");
      sub_sat(vol, &vol->inode_bytes_referenced, l->bytes_referenced, "InodeBytesReferenced");
    }
    if (!head_listed) imgr_u64vec_push(&vol->pending, e.inode_head_object_number);
    vol->dirty = true; /* the original forgot this (imgr.md 6.7) */
    pthread_mutex_unlock(&vol->mu);
  }
  pthread_rwlock_unlock(&vol->table_rw);
out:
  ilayout_inode_head_v1_free(&h);
  free(buf);
  imgr_stat_done(&vol->srv->stats.DeleteInodeTableEntryUsecs, t0);
  return rc;
}

int imgr_volume_fetch_nonces(imgr_volume *vol, uint64_t *next, uint64_t *count) {
  int rc = need_active(vol);
  if (rc) return rc;
  uint64_t t0;
  imgr_stat_now(&t0);
  uint64_t n = vol->srv->cfg->fetch_nonce_range_to_return;
  rc = imgr_vol_reserve_nonces(vol, n, next);
  *count = rc ? 0 : n;
  if (rc) *next = 0;
  imgr_stat_done(&vol->srv->stats.FetchNonceRangeUsecs, t0);
  return rc;
}

int imgr_volume_status_get(imgr_volume *vol, imgr_volume_status *out) {
  int rc = need_active(vol);
  if (rc) return rc;
  uint64_t n = 0;
  if ((rc = sm_len(vol->table, &n))) return rc;
  pthread_mutex_lock(&vol->mu);
  *out = (imgr_volume_status){n,
                              vol->inode_object_count,
                              vol->inode_bytes_written,
                              vol->inode_bytes_referenced,
                              vol->committed.reserved_to_nonce,
                              vol->committed.superblock_object_number,
                              vol->pending.n + vol->deletable.n + vol->deletes_in_flight,
                              vol->dirty};
  pthread_mutex_unlock(&vol->mu);
  return 0;
}

int imgr_volume_flush(imgr_volume *vol) {
  int rc = need_active(vol);
  if (rc) return rc;
  uint64_t t0;
  imgr_stat_now(&t0);
  rc = imgr_volume_checkpoint(vol);
  imgr_stat_done(&vol->srv->stats.FlushUsecs, t0);
  return rc;
}
