/* Garbage collection (imgr.md 4.8): objects that the committed checkpoint
 * no longer references are deleted by up to ParallelObjectDeletePerVolumeLimit
 * worker threads per volume. A worker takes the next object as soon as one
 * finishes (the original waited for the next checkpoint). A 404 counts as
 * done (a replay after a restart); any other failure puts the object back
 * on the pending list, to be retried after the next checkpoint. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imgr_internal.h"
#include "logger.h"

static void *delete_worker(void *arg) {
  imgr_volume *vol = arg;
  pthread_mutex_lock(&vol->mu);
  while (vol->deletable.n) {
    uint64_t obj = vol->deletable.v[0];
    imgr_u64vec_remove_front(&vol->deletable, 1);
    vol->deletes_in_flight++;
    pthread_mutex_unlock(&vol->mu);
    int rc = imgr_vol_delete(vol, obj);
    pthread_mutex_lock(&vol->mu);
    vol->deletes_in_flight--;
    if (rc) {
      log_warn("volume %s: delete of object %016llX failed (%s); retried later", vol->name,
               (unsigned long long)obj, strerror(-rc));
      bs_total_inc(&vol->srv->stats.ObjectDeleteErrors);
      imgr_u64vec_push(&vol->pending, obj);
    } else {
      bs_total_inc(&vol->srv->stats.ObjectDeletes);
      vol->deleted_since_ckpt++;
    }
  }
  /* Record the shorter list. A single delete is the previous checkpoint
   * object of a checkpoint that changed nothing else: recording it would
   * create the next one (the original's "two" rule). */
  if (vol->deletes_in_flight == 0 && vol->deleted_since_ckpt >= 2) vol->dirty = true;
  /* Workers hold no reference: a volume is freed only after unserve or
   * server destroy waited for deletes_running to reach 0 under mu, and
   * this is the worker's last touch of the volume. */
  vol->deletes_running--;
  pthread_cond_broadcast(&vol->cond);
  pthread_mutex_unlock(&vol->mu);
  return NULL;
}

void imgr_gc_launch(imgr_volume *vol) {
  unsigned limit = vol->srv->cfg->parallel_object_delete_per_volume_limit;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_mutex_lock(&vol->mu);
  while (vol->deletes_running < limit && vol->deletes_running < vol->deletable.n) {
    pthread_t t;
    vol->deletes_running++;
    if (pthread_create(&t, &attr, delete_worker, vol) != 0) {
      vol->deletes_running--;
      break;
    }
  }
  pthread_mutex_unlock(&vol->mu);
  pthread_attr_destroy(&attr);
}

void imgr_volume_wait_deletes(imgr_volume *vol) {
  pthread_mutex_lock(&vol->mu);
  while (vol->deletes_running) pthread_cond_wait(&vol->cond, &vol->mu);
  pthread_mutex_unlock(&vol->mu);
}
