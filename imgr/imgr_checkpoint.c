/* Checkpoints (imgr.md 4.7, ilayout.md 12.3) and the per-volume checkpoint
 * thread. The order makes every commit whole: first the new object (inode
 * table pages + superblock) is PUT, then object 0 (and ickpt) is switched to
 * it, and only then are obsolete objects deleted. A failure at any step
 * leaves the committed checkpoint untouched and the volume dirty; pages that
 * were handed to an object whose PUT failed stay readable from memory and
 * that object is PUT again before the next commit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imgr_internal.h"
#include "logger.h"

static int take_nonce(imgr_volume *vol, uint64_t *obj) {
  pthread_mutex_lock(&vol->mu);
  bool empty = vol->nonce_left == 0;
  pthread_mutex_unlock(&vol->mu);
  if (empty) {
    uint64_t first, n = vol->srv->cfg->fetch_nonce_range_to_return;
    int rc = imgr_vol_reserve_nonces(vol, n, &first);
    if (rc) return rc;
    pthread_mutex_lock(&vol->mu);
    vol->nonce_next = first;
    vol->nonce_left = n;
    pthread_mutex_unlock(&vol->mu);
  }
  pthread_mutex_lock(&vol->mu);
  *obj = vol->nonce_next++;
  vol->nonce_left--;
  pthread_mutex_unlock(&vol->mu);
  return 0;
}

static int put_object(imgr_volume *vol, uint64_t obj, const uint8_t *buf, size_t len) {
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(obj, name);
  int rc = imgr_vol_put(vol, name, buf, len);
  if (rc) log_warn("volume %s: PUT of checkpoint object %s failed: %s", vol->name, name,
                   strerror(-rc));
  return rc;
}

/* PUT objects left over from failed checkpoints. ckpt_mu is held, so only
 * this thread removes entries. */
static int put_unwritten(imgr_volume *vol) {
  for (;;) {
    pthread_mutex_lock(&vol->mu);
    imgr_unwritten u = vol->nunwritten ? vol->unwritten[0] : (imgr_unwritten){0};
    pthread_mutex_unlock(&vol->mu);
    if (!u.buf) return 0;
    int rc = put_object(vol, u.object_number, u.buf, u.len);
    if (rc) return rc;
    pthread_mutex_lock(&vol->mu);
    memmove(&vol->unwritten[0], &vol->unwritten[1],
            (--vol->nunwritten) * sizeof *vol->unwritten);
    pthread_mutex_unlock(&vol->mu);
    free(u.buf);
  }
}

/* Under mu: append the superblock to cur_buf. */
static int append_superblock(imgr_volume *vol, const sm_ref *root, bool add_prev,
                             uint64_t *sblen) {
  ilayout_superblock_v1 sb = {0};
  sb.inode_table_root_object_number = root->object_number;
  sb.inode_table_root_object_offset = root->object_offset;
  sb.inode_table_root_object_length = root->object_length;
  sb.inode_table_layout_len = vol->nlayout;
  sb.inode_table_layout = calloc(vol->nlayout + 1, sizeof *sb.inode_table_layout);
  size_t npend = vol->deletable.n + vol->pending.n + (add_prev ? 1 : 0);
  sb.pending_delete_object_numbers = calloc(npend + 1, sizeof(uint64_t));
  int rc = -ENOMEM;
  if (!sb.inode_table_layout || !sb.pending_delete_object_numbers) goto out;
  for (size_t i = 0; i < vol->nlayout; i++)
    sb.inode_table_layout[i] = (ilayout_layout_entry_v1){
        vol->layout[i].object_number, vol->layout[i].bytes_written,
        vol->layout[i].bytes_referenced};
  /* Deletes not yet done are recorded so a restart resumes them. */
  size_t k = 0;
  for (size_t i = 0; i < vol->deletable.n; i++) sb.pending_delete_object_numbers[k++] = vol->deletable.v[i];
  for (size_t i = 0; i < vol->pending.n; i++) sb.pending_delete_object_numbers[k++] = vol->pending.v[i];
  if (add_prev) sb.pending_delete_object_numbers[k++] = vol->committed.superblock_object_number;
  sb.pending_delete_object_numbers_len = k;
  sb.inode_object_count = vol->inode_object_count;
  sb.inode_bytes_written = vol->inode_bytes_written;
  sb.inode_bytes_referenced = vol->inode_bytes_referenced;
  ilayout_wcursor w;
  ilayout_wcursor_init(&w, NULL, 0);
  if ((rc = ilayout_superblock_v1_encode(&sb, &w))) goto out;
  size_t need = ilayout_wcursor_pos(&w);
  if (vol->cur_len + need > vol->cur_cap) {
    uint8_t *nb = realloc(vol->cur_buf, vol->cur_len + need);
    if (!nb) {
      rc = -ENOMEM;
      goto out;
    }
    vol->cur_buf = nb;
    vol->cur_cap = vol->cur_len + need;
  }
  ilayout_wcursor_init(&w, vol->cur_buf + vol->cur_len, need);
  if ((rc = ilayout_superblock_v1_encode(&sb, &w))) goto out;
  vol->cur_len += need;
  *sblen = need;
out:
  free(sb.inode_table_layout);
  free(sb.pending_delete_object_numbers);
  return rc;
}

static int checkpoint_locked(imgr_volume *vol) {
  pthread_mutex_lock(&vol->mu);
  bool need = vol->active && (vol->dirty || vol->nunwritten);
  vol->dirty = false;
  pthread_mutex_unlock(&vol->mu);
  if (!need) return 0;
  uint64_t obj;
  int rc = take_nonce(vol, &obj);
  if (!rc) rc = put_unwritten(vol);
  if (rc) goto fail;

  /* Room for this object on the unwritten list, so that nothing can fail
   * between the flush and handing the nodes' bytes over. */
  pthread_mutex_lock(&vol->mu);
  imgr_unwritten *nu = realloc(vol->unwritten, (vol->nunwritten + 1) * sizeof *nu);
  if (nu) vol->unwritten = nu;
  pthread_mutex_unlock(&vol->mu);
  if (!nu) {
    rc = -ENOMEM;
    goto fail;
  }

  /* 1. Flush the inode table into a new object, in memory. */
  pthread_rwlock_wrlock(&vol->table_rw);
  pthread_mutex_lock(&vol->mu);
  vol->cur_object = obj;
  vol->cur_len = 0;
  pthread_mutex_unlock(&vol->mu);
  sm_ref root;
  rc = sm_flush(vol->table, &root);
  bool flushed = rc == 0;
  uint64_t sblen = 0;
  size_t n_snap = 0;
  bool add_prev = false;
  uint64_t prev = 0;
  imgr_unwritten u = {obj, NULL, 0};
  pthread_mutex_lock(&vol->mu);
  if (flushed) {
    prev = vol->committed.superblock_object_number;
    add_prev = prev && !imgr_layout_find(vol, prev) && !imgr_u64vec_has(&vol->pending, prev) &&
               !imgr_u64vec_has(&vol->deletable, prev);
    n_snap = vol->pending.n;
    rc = append_superblock(vol, &root, add_prev, &sblen);
  } else {
    /* sortedmap made the nodes dirty again: nothing references obj. */
    imgr_layout *l = imgr_layout_find(vol, obj);
    if (l) *l = vol->layout[--vol->nlayout];
  }
  /* From here on the object's nodes are served from memory until the PUT. */
  u.buf = vol->cur_buf;
  u.len = vol->cur_len;
  vol->cur_buf = NULL;
  vol->cur_len = vol->cur_cap = 0;
  vol->cur_object = 0;
  bool referenced = imgr_layout_find(vol, obj) != NULL;
  if (referenced) vol->unwritten[vol->nunwritten++] = u; /* room reserved above */
  pthread_mutex_unlock(&vol->mu);
  pthread_rwlock_unlock(&vol->table_rw);
  if (rc) {
    if (!referenced) free(u.buf);
    goto fail;
  }

  /* 2. PUT the object (pages + superblock). A referenced object that fails
   * stays on the unwritten list; one holding only a superblock is
   * forgotten: nothing points at it. */
  rc = put_object(vol, obj, u.buf, u.len);
  if (!rc && referenced) {
    pthread_mutex_lock(&vol->mu);
    for (size_t i = 0; i < vol->nunwritten; i++)
      if (vol->unwritten[i].object_number == obj) {
        vol->unwritten[i] = vol->unwritten[--vol->nunwritten];
        break;
      }
    pthread_mutex_unlock(&vol->mu);
  }
  if (!rc || !referenced) free(u.buf);
  if (rc) goto fail;

  /* 3. Commit: object 0 (and ickpt) now names the new superblock. */
  pthread_mutex_lock(&vol->obj0_mu);
  pthread_mutex_lock(&vol->mu);
  ilayout_checkpoint_v1 ck = vol->committed;
  pthread_mutex_unlock(&vol->mu);
  ck.superblock_object_number = obj;
  ck.superblock_length = sblen;
  rc = imgr_vol_write_checkpoint(vol, &ck);
  pthread_mutex_lock(&vol->mu);
  if (rc) {
    /* The new object is in Swift but not committed: if it holds no live
     * pages it is garbage once a later checkpoint commits. */
    if (!imgr_layout_find(vol, obj)) imgr_u64vec_push(&vol->pending, obj);
  } else {
    vol->committed = ck;
    /* What the committed superblock lists as pending is deletable now. */
    for (size_t i = 0; i < n_snap && i < vol->pending.n; i++)
      imgr_u64vec_push(&vol->deletable, vol->pending.v[i]);
    imgr_u64vec_remove_front(&vol->pending, n_snap);
    if (add_prev) imgr_u64vec_push(&vol->deletable, prev);
    vol->deleted_since_ckpt = 0;
  }
  pthread_mutex_unlock(&vol->mu);
  pthread_mutex_unlock(&vol->obj0_mu);
  if (rc) goto fail;

  /* 4. Nodes superseded before this commit are no longer referenced. */
  rc = sm_prune(vol->table);
  if (rc) log_warn("volume %s: prune after checkpoint: %s", vol->name, strerror(-rc));
  imgr_gc_launch(vol);
  log_trace("volume %s: checkpoint %016llX committed", vol->name, (unsigned long long)obj);
  return 0;
fail:
  pthread_mutex_lock(&vol->mu);
  vol->dirty = true;
  pthread_mutex_unlock(&vol->mu);
  bs_total_inc(&vol->srv->stats.CheckPointFailures);
  return rc;
}

int imgr_volume_checkpoint(imgr_volume *vol) {
  uint64_t t0;
  imgr_stat_now(&t0);
  pthread_mutex_lock(&vol->ckpt_mu);
  int rc = checkpoint_locked(vol);
  pthread_mutex_unlock(&vol->ckpt_mu);
  imgr_stat_done(&vol->srv->stats.VolumeCheckPointUsecs, t0);
  return rc;
}

static void *checkpoint_thread(void *arg) {
  imgr_volume *vol = arg;
  uint64_t interval = vol->srv->cfg->check_point_interval_ns;
  pthread_mutex_lock(&vol->mu);
  while (!vol->thread_stop) {
    struct timespec dl = ut_deadline_ts(interval);
    int w = 0;
    while (!vol->thread_stop && !vol->flush_requested && w == 0)
      w = pthread_cond_timedwait(&vol->cond, &vol->mu, &dl);
    if (vol->thread_stop) break;
    vol->flush_requested = false;
    pthread_mutex_unlock(&vol->mu);
    int rc = imgr_volume_checkpoint(vol);
    if (rc) log_warn("volume %s: checkpoint failed: %s", vol->name, strerror(-rc));
    pthread_mutex_lock(&vol->mu);
  }
  pthread_mutex_unlock(&vol->mu);
  return NULL;
}

int imgr_checkpoint_thread_start(imgr_volume *vol) {
  pthread_mutex_lock(&vol->mu);
  int rc = 0;
  if (!vol->thread_running) {
    vol->thread_stop = false;
    rc = -pthread_create(&vol->thread, NULL, checkpoint_thread, vol);
    if (!rc) vol->thread_running = true;
  }
  pthread_mutex_unlock(&vol->mu);
  return rc;
}

void imgr_checkpoint_thread_stop(imgr_volume *vol) {
  pthread_mutex_lock(&vol->mu);
  bool running = vol->thread_running;
  vol->thread_stop = true;
  vol->thread_running = false;
  pthread_cond_broadcast(&vol->cond);
  pthread_mutex_unlock(&vol->mu);
  if (running) pthread_join(vol->thread, NULL);
}
