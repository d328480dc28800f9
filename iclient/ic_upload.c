/* ic_upload: full log segments stored in the background (see
 * ic_inode_internal.h, "sealed segments").
 *
 * Why: a sequential writer used to stop at every FileFlushTriggerSize bytes
 * while its segment was PUT and committed, with the inode locked. Now the
 * full segment is sealed (its object number and bytes stay valid for the
 * extents that name them) and handed to an uploader thread, and the writer
 * goes on filling the next one. The commit that follows (fsync, the
 * flusher, a lease interrupt) waits for the inode's uploads and retries a
 * failed one, so nothing is committed that is not stored. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ic_inode_internal.h"
#include "logger.h"
#include "utils.h"

static uint64_t upload_cap(const ic_volume *v) {
  return (v->p.upload_limit ? v->p.upload_limit : IC_UPLOAD_LIMIT_DEFAULT) *
         v->p.file_flush_trigger_size;
}

/* Spares and sealed segments together stay within SegmentUploadLimit
 * segments: the memory budget of the uploads covers both. */
static void segbuf_give_locked(ic_volume *v, uint8_t *buf, size_t cap) {
  uint64_t trigger = v->p.file_flush_trigger_size;
  if (buf && cap >= trigger && v->nspare < IC_SEGBUF_SPARE &&
      v->sealed_bytes + (v->nspare + 1) * trigger <= upload_cap(v)) {
    v->spare[v->nspare].buf = buf;
    v->spare[v->nspare++].cap = cap;
  } else {
    free(buf);
  }
}

void ic_segbuf_give(ic_volume *v, uint8_t *buf, size_t cap) {
  if (!buf) return;
  pthread_mutex_lock(&v->seal_mu);
  segbuf_give_locked(v, buf, cap);
  pthread_mutex_unlock(&v->seal_mu);
}

uint8_t *ic_segbuf_take(ic_volume *v, size_t need, size_t *cap) {
  uint8_t *buf = NULL;
  pthread_mutex_lock(&v->seal_mu);
  for (unsigned i = 0; i < v->nspare; i++) {
    if (v->spare[i].cap < need) continue;
    buf = v->spare[i].buf;
    *cap = v->spare[i].cap;
    v->spare[i] = v->spare[--v->nspare];
    break;
  }
  pthread_mutex_unlock(&v->seal_mu);
  return buf;
}

void ic_segbuf_drain(ic_volume *v) {
  while (v->nspare) free(v->spare[--v->nspare].buf);
}

/* A sealed segment is stored (or dropped): its buffer is not needed any
 * more and its bytes leave those in flight. Under seal_mu. */
static void sealed_release(ic_volume *v, ic_sealed *s) {
  v->sealed_bytes -= s->len;
  segbuf_give_locked(v, s->buf, s->cap);
  s->buf = NULL;
  pthread_cond_broadcast(&v->seal_cv);
}

static void *uploader_main(void *arg) {
  ic_volume *v = arg;
  pthread_mutex_lock(&v->seal_mu);
  for (;;) {
    while (!v->upload_head && !v->upload_stopping) pthread_cond_wait(&v->seal_cv, &v->seal_mu);
    ic_sealed *s = v->upload_head;
    if (!s) break; /* stopping, and the queue is drained */
    v->upload_head = s->qnext;
    if (!v->upload_head) v->upload_tail = NULL;
    v->uploading++;
    pthread_mutex_unlock(&v->seal_mu);
    int rc = v->store->put(v->store_ctx, s->obj, s->buf, s->len);
    if (rc)
      log_warn("iclient: background PUT of log segment %016llX (%zu bytes) failed: %d; the "
               "commit retries it",
               (unsigned long long)s->obj, s->len, rc);
    pthread_mutex_lock(&v->seal_mu);
    v->uploading--;
    s->state = rc ? IC_SEALED_FAILED : IC_SEALED_STORED;
    if (rc == 0)
      sealed_release(v, s);
    else
      pthread_cond_broadcast(&v->seal_cv);
  }
  pthread_mutex_unlock(&v->seal_mu);
  return NULL;
}

int ic_upload_start(ic_volume *v) {
  unsigned n = v->p.upload_threads ? v->p.upload_threads : IC_UPLOAD_THREADS_DEFAULT;
  if (!(v->uploaders = calloc(n, sizeof(*v->uploaders)))) return -ENOMEM;
  for (; v->nuploaders < n; v->nuploaders++)
    if (pthread_create(&v->uploaders[v->nuploaders], NULL, uploader_main, v) != 0) break;
  return v->nuploaders > 0 ? 0 : -EAGAIN;
}

void ic_upload_stop(ic_volume *v) {
  pthread_mutex_lock(&v->seal_mu);
  v->upload_stopping = true;
  pthread_cond_broadcast(&v->seal_cv);
  pthread_mutex_unlock(&v->seal_mu);
  for (unsigned i = 0; i < v->nuploaders; i++) pthread_join(v->uploaders[i], NULL);
  v->nuploaders = 0;
  free(v->uploaders);
  v->uploaders = NULL;
}

int ic_upload_room(ic_volume *v) {
  uint64_t cap = upload_cap(v);
  uint64_t wait = v->p.upload_wait_ns ? v->p.upload_wait_ns : UINT64_C(60000000000);
  struct timespec until = ut_deadline_ts(wait);
  int rc = 0;
  bool all_failed = false;
  pthread_mutex_lock(&v->seal_mu);
  /* One segment always goes, whatever its size. When none is queued or
   * being stored, every one in flight failed (their commits retry them):
   * waiting would only hold this inode, and the flusher behind it. */
  while (rc == 0 && v->sealed_bytes > 0 && v->sealed_bytes + v->p.file_flush_trigger_size > cap) {
    if ((all_failed = !v->upload_head && !v->uploading))
      rc = -EIO;
    else if (pthread_cond_timedwait(&v->seal_cv, &v->seal_mu, &until) == ETIMEDOUT)
      rc = -EIO;
  }
  pthread_mutex_unlock(&v->seal_mu);
  if (all_failed)
    log_error("iclient: the log segments in flight could not be stored: write refused");
  else if (rc)
    log_error("iclient: no log segment stored for %llu s (Swift unreachable?): write refused",
              (unsigned long long)(wait / 1000000000u));
  return rc;
}

int ic_seal_segment(ic_volume *v, ic_inode *in) {
  ilayout_layout_entry_v1 *pe = ic_layout_find(in, in->put_obj);
  if (!pe) return -EUCLEAN;
  bool keep = pe->bytes_referenced > 0;
  ic_sealed **arr = in->sealed;
  if (keep && in->nsealed == in->capsealed) {
    size_t cap = in->capsealed ? in->capsealed * 2 : 4;
    arr = realloc(in->sealed, cap * sizeof(*arr));
    if (!arr) return -ENOMEM;
    in->sealed = arr;
    in->capsealed = cap;
  }
  ic_sealed *s = keep ? calloc(1, sizeof(*s)) : NULL;
  if (keep && !s) return -ENOMEM;
  ic_put_fold(in, pe, keep);
  if (!keep) { /* every byte was overwritten meanwhile: nothing to store */
    ic_segbuf_give(v, in->put_buf, in->put_cap);
  } else {
    *s = (ic_sealed){in->put_obj, in->put_buf, in->put_len, in->put_cap, IC_SEALED_UPLOADING,
                     NULL};
    in->sealed[in->nsealed++] = s;
    pthread_mutex_lock(&v->seal_mu);
    v->sealed_bytes += s->len; /* the writer made room first (ic_upload_room) */
    if (v->upload_tail)
      v->upload_tail->qnext = s;
    else
      v->upload_head = s;
    v->upload_tail = s;
    pthread_cond_broadcast(&v->seal_cv);
    pthread_mutex_unlock(&v->seal_mu);
  }
  in->put_obj = 0;
  in->put_buf = NULL;
  in->put_len = in->put_cap = 0;
  return 0;
}

int ic_sealed_copy(ic_volume *v, ic_inode *in, uint64_t obj, uint64_t off, uint64_t len,
                   void *dst) {
  for (size_t i = 0; i < in->nsealed; i++) {
    ic_sealed *s = in->sealed[i];
    if (s->obj != obj) continue;
    pthread_mutex_lock(&v->seal_mu);
    int rc = 1; /* stored: read it like any object */
    if (s->buf) rc = off > s->len || len > s->len - off ? -EIO : 0;
    if (rc == 0) memcpy(dst, s->buf + off, len);
    pthread_mutex_unlock(&v->seal_mu);
    return rc;
  }
  return 1;
}

int ic_sealed_wait(ic_volume *v, ic_inode *in) {
  int rc = 0;
  size_t kept = 0;
  for (size_t i = 0; i < in->nsealed; i++) {
    ic_sealed *s = in->sealed[i];
    pthread_mutex_lock(&v->seal_mu);
    while (s->state == IC_SEALED_UPLOADING) pthread_cond_wait(&v->seal_cv, &v->seal_mu);
    bool failed = s->state == IC_SEALED_FAILED;
    pthread_mutex_unlock(&v->seal_mu);
    if (failed && rc == 0 && v->store->put(v->store_ctx, s->obj, s->buf, s->len) == 0) {
      pthread_mutex_lock(&v->seal_mu);
      s->state = IC_SEALED_STORED;
      sealed_release(v, s);
      pthread_mutex_unlock(&v->seal_mu);
      failed = false;
    }
    if (failed) {
      if (rc == 0)
        log_error("iclient: inode %016llX: PUT of log segment %016llX failed again",
                  (unsigned long long)in->ino, (unsigned long long)s->obj);
      rc = -EIO;
      in->sealed[kept++] = s; /* kept for the next commit */
    } else {
      free(s);
    }
  }
  in->nsealed = kept;
  return rc;
}

void ic_sealed_discard(ic_volume *v, ic_inode *in) {
  for (size_t i = 0; i < in->nsealed; i++) {
    ic_sealed *s = in->sealed[i];
    pthread_mutex_lock(&v->seal_mu);
    while (s->state == IC_SEALED_UPLOADING) pthread_cond_wait(&v->seal_cv, &v->seal_mu);
    if (s->buf) sealed_release(v, s);
    pthread_mutex_unlock(&v->seal_mu);
    free(s);
  }
  free(in->sealed);
  in->sealed = NULL;
  in->nsealed = in->capsealed = 0;
}
