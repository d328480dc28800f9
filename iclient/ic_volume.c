/* ic_volume: the inode cache (table + LRU of unused clean inodes), leases
 * taken per cached inode, and the nonce pool (iclient.md 3.1, 3.4, 10.5). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "utils.h"

#include "ic_inode_internal.h"
#include "logger.h"

static void *flusher_main(void *arg);

static size_t bucket_of(const ic_volume *v, uint64_t ino) {
  uint64_t h = ino * UINT64_C(0x9E3779B97F4A7C15);
  return (size_t)((h >> 17) & (v->nbuckets - 1));
}

int ic_volume_create(const ic_volume_params *p, ic_volume **out) {
  if (!p->imgr || !p->store || !p->mount_id || p->inode_cache_limit == 0) return -EINVAL;
  ic_volume *v = calloc(1, sizeof(*v));
  if (!v) return -ENOMEM;
  v->p = *p;
  v->imgr = p->imgr;
  v->imgr_ctx = p->imgr_ctx;
  v->store = p->store;
  v->store_ctx = p->store_ctx;
  v->mount_id = strdup(p->mount_id);
  v->p.mount_id = v->mount_id;
  v->nbuckets = 256;
  while (v->nbuckets < p->inode_cache_limit && v->nbuckets < ((size_t)1 << 16)) v->nbuckets <<= 1;
  v->buckets = calloc(v->nbuckets, sizeof(*v->buckets));
  v->node_cache =
      sm_cache_create(p->payload_evict_low, p->payload_evict_high, p->payload_evict_bytes);
  int rc = (v->mount_id && v->buckets && v->node_cache) ? 0 : -ENOMEM;
  if (rc == 0)
    rc = ic_rcache_create(p->store, p->store_ctx, p->read_cache_line_size,
                          p->read_cache_line_count_max, p->read_ahead_lines,
                          p->read_ahead_threads, &v->rcache);
  if (rc) {
    sm_cache_destroy(v->node_cache);
    free(v->buckets);
    free(v->mount_id);
    free(v);
    return rc;
  }
  pthread_mutex_init(&v->mu, NULL);
  pthread_cond_init(&v->cv, NULL);
  pthread_cond_init(&v->flusher_cv, NULL);
  pthread_mutex_init(&v->seal_mu, NULL);
  pthread_cond_init(&v->seal_cv, NULL);
  if (ic_upload_start(v)) {
    ic_volume_destroy(v);
    return -EAGAIN;
  }
  if (p->file_flush_trigger_ns > 0) {
    if (pthread_create(&v->flusher, NULL, flusher_main, v) != 0) {
      ic_volume_destroy(v);
      return -EAGAIN;
    }
    v->flusher_running = true;
  }
  *out = v;
  return 0;
}

static void inode_free(ic_inode *in) {
  ic_inode_free_state(in);
  pthread_mutex_destroy(&in->lock);
  free(in);
}

void ic_volume_destroy(ic_volume *v) {
  if (!v) return;
  if (v->flusher_running) {
    pthread_mutex_lock(&v->mu);
    v->stopping = true;
    pthread_cond_broadcast(&v->flusher_cv);
    pthread_mutex_unlock(&v->mu);
    pthread_join(v->flusher, NULL);
  }
  ic_upload_stop(v);
  for (size_t i = 0; i < v->nbuckets; i++) {
    for (ic_inode *in = v->buckets[i], *next; in; in = next) {
      next = in->hnext;
      inode_free(in);
    }
  }
  ic_segbuf_drain(v);
  free(v->buckets);
  ic_rcache_destroy(v->rcache);
  sm_cache_destroy(v->node_cache); /* after the trees attached to it */
  pthread_cond_destroy(&v->cv);
  pthread_cond_destroy(&v->flusher_cv);
  pthread_cond_destroy(&v->seal_cv);
  pthread_mutex_destroy(&v->seal_mu);
  pthread_mutex_destroy(&v->mu);
  free(v->mount_id);
  free(v);
}

ic_rcache *ic_volume_rcache(ic_volume *v) { return v->rcache; }

int ic_volume_nonce(ic_volume *v, uint64_t *nonce) {
  pthread_mutex_lock(&v->mu);
  for (;;) {
    if (v->nonces_left > 0) {
      *nonce = v->next_nonce++;
      v->nonces_left--;
      pthread_mutex_unlock(&v->mu);
      return 0;
    }
    if (!v->nonce_fetching) break;
    pthread_cond_wait(&v->cv, &v->mu); /* one fetch at a time; others wait */
  }
  v->nonce_fetching = true;
  pthread_mutex_unlock(&v->mu);

  ic_mount_id_req req = {v->mount_id};
  ic_fetch_nonce_range_reply rep = {0, 0};
  ic_rpc_err err = {{0}};
  int rc = v->imgr->fetch_nonce_range(v->imgr_ctx, &req, &rep, &err);
  if (rc == 0 && (rep.num_nonces_fetched == 0 || rep.next_nonce == 0 ||
                  rep.next_nonce + rep.num_nonces_fetched < rep.next_nonce)) {
    snprintf(err.msg, sizeof(err.msg), "bad nonce range %llu+%llu",
             (unsigned long long)rep.next_nonce, (unsigned long long)rep.num_nonces_fetched);
    rc = -EIO;
  }
  if (rc) log_error("iclient: FetchNonceRange failed: %s", err.msg);

  pthread_mutex_lock(&v->mu);
  v->nonce_fetching = false;
  if (rc == 0) {
    *nonce = rep.next_nonce;
    v->next_nonce = rep.next_nonce + 1;
    v->nonces_left = rep.num_nonces_fetched - 1;
  }
  pthread_cond_broadcast(&v->cv);
  pthread_mutex_unlock(&v->mu);
  return rc;
}

static void lru_unlink(ic_volume *v, ic_inode *in) {
  if (in->lru_prev)
    in->lru_prev->lru_next = in->lru_next;
  else if (v->lru_head == in)
    v->lru_head = in->lru_next;
  else
    return; /* not on the LRU */
  if (in->lru_next)
    in->lru_next->lru_prev = in->lru_prev;
  else
    v->lru_tail = in->lru_prev;
  in->lru_prev = in->lru_next = NULL;
}

static void lru_append(ic_volume *v, ic_inode *in) {
  in->lru_prev = v->lru_tail;
  in->lru_next = NULL;
  if (v->lru_tail)
    v->lru_tail->lru_next = in;
  else
    v->lru_head = in;
  v->lru_tail = in;
}

static void hash_unlink(ic_volume *v, ic_inode *in) {
  ic_inode **pp = &v->buckets[bucket_of(v, in->ino)];
  while (*pp != in) pp = &(*pp)->hnext;
  *pp = in->hnext;
  v->ninodes--;
}

static int lease_request(ic_volume *v, uint64_t ino, uint32_t type, uint32_t want) {
  ic_lease_req req = {v->mount_id, ino, type};
  ic_lease_reply rep = {IC_LEASE_RESPONSE_DENIED};
  ic_rpc_err err = {{0}};
  int rc = v->imgr->lease(v->imgr_ctx, &req, &rep, &err);
  if (rc == 0 && rep.lease_response_type != want) {
    snprintf(err.msg, sizeof(err.msg), "LeaseResponseType %u", rep.lease_response_type);
    rc = -ENOLCK;
  }
  if (rc)
    log_error("iclient: Lease(%016llX, type %u) failed: %s", (unsigned long long)ino, type,
              err.msg);
  return rc;
}

/* The lease imgr knows this client holds (mu held): a new inode's is not
 * asked for yet. */
static ic_lease_state lease_at_imgr(ic_volume *v, const ic_inode *in) {
  return in->lease_unasked ? IC_LEASE_STATE_NONE : ic_volume_lease_of(v, in);
}

/* Leases held at imgr, by type (mu held; the flags of inodes in use are
 * read without their lock: a count to decide on eviction, not an account). */
static void count_leases(ic_volume *v, uint64_t n[3]) {
  n[IC_LEASE_STATE_NONE] = n[IC_LEASE_STATE_SHARED] = n[IC_LEASE_STATE_EXCLUSIVE] = 0;
  for (size_t i = 0; i < v->nbuckets; i++)
    for (ic_inode *in = v->buckets[i]; in; in = in->hnext) n[lease_at_imgr(v, in)]++;
}

/* Evict unused clean inodes, least recently used first, while the cache
 * holds more than InodeCacheLimit (all of them when `all`), or more leases
 * of a type than its cap (then only inodes holding that type). The victims
 * stay in the table, marked evicting, until their lease is released, so
 * that a new user of the inode number cannot race the Release. */
static void evict(ic_volume *v, bool all) {
  ic_inode *victims = NULL;
  pthread_mutex_lock(&v->mu);
  size_t limit = all ? 0 : v->p.inode_cache_limit;
  size_t resident = v->ninodes;
  uint64_t held[3], cap[3] = {0, v->p.max_shared_leases, v->p.max_exclusive_leases};
  if (cap[IC_LEASE_STATE_SHARED] || cap[IC_LEASE_STATE_EXCLUSIVE]) count_leases(v, held);
  else held[0] = held[1] = held[2] = 0;
  for (ic_inode *in = v->lru_head, *next; in; in = next) {
    next = in->lru_next;
    ic_lease_state s = lease_at_imgr(v, in);
    bool over_s = cap[1] && held[1] > cap[1], over_x = cap[2] && held[2] > cap[2];
    if (resident <= limit && !over_s && !over_x) break;
    if (resident <= limit && !(s == IC_LEASE_STATE_SHARED && over_s) &&
        !(s == IC_LEASE_STATE_EXCLUSIVE && over_x))
      continue; /* only a lease cap is passed, and this inode holds another type */
    lru_unlink(v, in);
    in->evicting = true;
    in->lru_next = victims; /* reuse the link for the local list */
    victims = in;
    resident--;
    if (held[s]) held[s]--;
  }
  pthread_mutex_unlock(&v->mu);
  while (victims) {
    ic_inode *in = victims;
    victims = in->lru_next;
    in->lru_next = NULL;
    if (ic_volume_lease_of(v, in) != IC_LEASE_STATE_NONE) /* failing: imgr drops it with the mount */
      (void)lease_request(v, in->ino, IC_LEASE_REQUEST_RELEASE, IC_LEASE_RESPONSE_RELEASED);
    pthread_mutex_lock(&v->mu);
    hash_unlink(v, in);
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    inode_free(in);
  }
}

size_t ic_volume_drop_clean(ic_volume *v) {
  evict(v, true);
  return ic_volume_inodes_cached(v);
}

size_t ic_volume_inodes_cached(ic_volume *v) {
  pthread_mutex_lock(&v->mu);
  size_t n = v->ninodes;
  pthread_mutex_unlock(&v->mu);
  return n;
}

static void set_lease(ic_volume *v, ic_inode *in, ic_lease_state s) {
  pthread_mutex_lock(&v->mu);
  in->lease = s;
  in->lease_gen = atomic_load(&v->lease_gen);
  pthread_mutex_unlock(&v->mu);
}

ic_lease_state ic_volume_lease_of(ic_volume *v, const ic_inode *in) {
  return in->lease_gen == atomic_load(&v->lease_gen) ? in->lease : IC_LEASE_STATE_NONE;
}

void ic_volume_leases_reset(ic_volume *v) {
  atomic_fetch_add(&v->lease_gen, 1);
  log_warn("iclient: every lease was lost with the mount: each cached inode asks again on its "
           "next use");
}

static int head_at_imgr(ic_volume *v, ic_inode *in, uint64_t *head) {
  ic_inode_req req = {v->mount_id, in->ino};
  ic_get_inode_table_entry_reply rep = {0, 0};
  ic_rpc_err err = {{0}};
  int rc = v->imgr->get_inode_table_entry(v->imgr_ctx, &req, &rep, &err);
  if (rc == -ENOENT) rc = 0; /* EUnknownInodeNumber: never committed */
  if (rc)
    log_error("iclient: GetInodeTableEntry(%016llX) failed: %s", (unsigned long long)in->ino,
              err.msg);
  *head = rep.inode_head_object_number;
  return rc;
}

uint64_t ic_volume_lease_gen(ic_volume *v) { return atomic_load(&v->lease_gen); }

int ic_volume_lease_regain(ic_volume *v, ic_inode *in, uint64_t since, uint64_t *imgr_head) {
  int rc = 0;
  bool granted_since = ic_volume_lease_of(v, in) == IC_LEASE_STATE_EXCLUSIVE &&
                       !in->lease_unasked && in->lease_gen != since;
  if (!granted_since) /* (asking again for a lease held would be denied) */
    rc = lease_request(v, in->ino, IC_LEASE_REQUEST_EXCLUSIVE, IC_LEASE_RESPONSE_EXCLUSIVE);
  if (rc == 0) {
    in->lease_unasked = false;
    set_lease(v, in, IC_LEASE_STATE_EXCLUSIVE);
  }
  return rc ? rc : head_at_imgr(v, in, imgr_head);
}

int ic_volume_lease_recover(ic_volume *v, ic_inode *in) {
  set_lease(v, in, IC_LEASE_STATE_NONE);
  if (!in->dirty) { /* the cache may be stale: another client, or an imgr that lost commits */
    ic_inode_free_state(in);
    in->loaded = false;
    return 0;
  }
  if (in->lease_unasked) { /* new, never committed: nobody else knows its number */
    set_lease(v, in, IC_LEASE_STATE_EXCLUSIVE);
    return 0;
  }
  uint64_t head;
  int rc = ic_volume_lease_regain(v, in, ic_volume_lease_gen(v), &head);
  if (rc == 0 && head != in->base_obj) {
    log_error("iclient: inode %016llX: its unsaved changes were made to head %016llX but imgr "
              "now has %016llX: they are dropped (EIO)", (unsigned long long)in->ino,
              (unsigned long long)in->base_obj, (unsigned long long)head);
    ic_inode_forget_deleted(in); /* reloaded on next use */
    rc = -EIO;
  }
  return rc;
}

/* Make sure the held inode has at least `want` (NONE: no lease wanted). */
static int lease_ensure1(ic_volume *v, ic_inode *in, ic_lease_state want) {
  ic_lease_state have = ic_volume_lease_of(v, in);
  if (have >= want) return 0;
  /* A lease died with the mount, or imgr expired the lease of a dirty one. */
  if (have == IC_LEASE_STATE_NONE && (in->lease != IC_LEASE_STATE_NONE || in->dirty)) {
    int rc = ic_volume_lease_recover(v, in);
    if (rc || ic_volume_lease_of(v, in) >= want) return rc;
  }
  int rc;
  if (want == IC_LEASE_STATE_SHARED)
    rc = lease_request(v, in->ino, IC_LEASE_REQUEST_SHARED, IC_LEASE_RESPONSE_SHARED);
  else if (in->lease == IC_LEASE_STATE_SHARED) {
    rc = lease_request(v, in->ino, IC_LEASE_REQUEST_PROMOTE, IC_LEASE_RESPONSE_PROMOTED);
    if (rc == -ENOLCK) {
      /* Denied: another holder's promotion is pending and imgr wants our
       * shared lease back (imgr.md 3.6, "2 Shared then 2 Promotions").
       * Give it back, forget what it covered, and queue for exclusive. */
      ic_inode_free_state(in);
      in->loaded = false;
      rc = lease_request(v, in->ino, IC_LEASE_REQUEST_RELEASE, IC_LEASE_RESPONSE_RELEASED);
      set_lease(v, in, IC_LEASE_STATE_NONE); /* either way: imgr will expire it */
      if (rc == 0)
        rc = lease_request(v, in->ino, IC_LEASE_REQUEST_EXCLUSIVE, IC_LEASE_RESPONSE_EXCLUSIVE);
    }
  } else
    rc = lease_request(v, in->ino, IC_LEASE_REQUEST_EXCLUSIVE, IC_LEASE_RESPONSE_EXCLUSIVE);
  if (rc == 0) set_lease(v, in, want);
  return rc;
}

/* lease_ensure1, once more if every lease died during it: a Promote (or a
 * Release) sent when imgr had forgotten the mount is answered under the
 * new one, where we hold nothing. */
static int lease_ensure(ic_volume *v, ic_inode *in, ic_lease_state want) {
  uint64_t gen = atomic_load(&v->lease_gen);
  int rc = lease_ensure1(v, in, want);
  if (rc && gen != atomic_load(&v->lease_gen)) rc = lease_ensure1(v, in, want);
  return rc;
}

/* An imgr request about the held inode failed with EMissingLease: if its
 * lease died with the mount since it was checked (imgr restarted and the
 * client mounted again during the request), take the same lease again
 * (reloading the head if it was loaded) so the request can be sent once
 * more: 0. Else -ENOLCK (imgr really took it), or the error of taking it. */
static int lease_refresh(ic_volume *v, ic_inode *in) {
  if (in->lease == IC_LEASE_STATE_NONE || ic_volume_lease_of(v, in) == in->lease)
    return -ENOLCK;
  bool loaded = in->loaded;
  int rc = lease_ensure(v, in, in->lease);
  return rc == 0 && loaded ? ic_inode_load(v, in) : rc;
}

static int inode_get(ic_volume *v, uint64_t ino, ic_lease_state want, ic_inode **out) {
  if (ino == 0) return -ENOENT; /* nonce 0 is the checkpoint object */
  ic_inode *in;
  pthread_mutex_lock(&v->mu);
  for (;;) {
    in = v->buckets[bucket_of(v, ino)];
    while (in && in->ino != ino) in = in->hnext;
    if (!in || !in->evicting) break;
    pthread_cond_wait(&v->cv, &v->mu);
  }
  if (in) {
    if (in->refs++ == 0) lru_unlink(v, in);
  } else {
    in = calloc(1, sizeof(*in));
    if (!in) {
      pthread_mutex_unlock(&v->mu);
      return -ENOMEM;
    }
    in->vol = v;
    in->ino = ino;
    in->refs = 1;
    pthread_mutex_init(&in->lock, NULL);
    size_t b = bucket_of(v, ino);
    in->hnext = v->buckets[b];
    v->buckets[b] = in;
    v->ninodes++;
  }
  pthread_mutex_unlock(&v->mu);

  pthread_mutex_lock(&in->lock);
  int rc = lease_ensure(v, in, want);
  if (rc) {
    ic_inode_put(v, in);
    return rc;
  }
  *out = in;
  return 0;
}

int ic_inode_get_new(ic_volume *v, uint64_t ino, ic_inode **out) {
  int rc = inode_get(v, ino, IC_LEASE_STATE_NONE, out);
  if (rc == 0 && !(*out)->loaded && ic_volume_lease_of(v, *out) == IC_LEASE_STATE_NONE) {
    set_lease(v, *out, IC_LEASE_STATE_EXCLUSIVE);
    (*out)->lease_unasked = true;
  }
  return rc;
}

int ic_inode_get(ic_volume *v, uint64_t ino, ic_inode **out) {
  return inode_get(v, ino, IC_LEASE_STATE_EXCLUSIVE, out);
}

int ic_inode_get_shared(ic_volume *v, uint64_t ino, ic_inode **out) {
  return inode_get(v, ino, IC_LEASE_STATE_SHARED, out);
}

const char *ic_lease_state_name(ic_lease_state s) {
  return s == IC_LEASE_STATE_SHARED      ? "SharedGranted"
         : s == IC_LEASE_STATE_EXCLUSIVE ? "ExclusiveGranted"
                                         : "None";
}

static int flush_group(ic_volume *v, ic_inode *seed);

void ic_volume_set_dir_released(ic_volume *v, ic_volume_dir_released_fn fn, void *ctx) {
  pthread_mutex_lock(&v->mu);
  v->dir_released = fn;
  v->dir_released_ctx = ctx;
  pthread_mutex_unlock(&v->mu);
}

/* The names of a held directory's open tree, NUL-separated, for
 * dir_released (best effort: what cannot be read is left out). */
static char *dir_names(ic_volume *v, ic_inode *in, size_t *n) {
  *n = 0;
  if (in->type != ILAYOUT_INODE_TYPE_DIR || !in->payload) return NULL;
  size_t cap = 4096, used = 0;
  char *buf = malloc(cap);
  for (uint64_t i = 0; buf && i < IC_DIR_RELEASED_NAMES_MAX; i++) {
    char name[IC_NAME_MAX + 1];
    size_t len;
    ic_dirent e;
    if (ic_dir_entry_at(v, in, i, name, &len, &e)) break;
    if (cap - used < len + 1) {
      char *p = realloc(buf, cap * 2);
      if (!p) break;
      buf = p;
      cap *= 2;
    }
    memcpy(buf + used, name, len + 1);
    used += len + 1;
    (*n)++;
  }
  return buf;
}

int ic_volume_lease_interrupt(ic_volume *v, uint32_t type, uint64_t ino) {
  if (type != IC_RPC_INTERRUPT_DEMOTE && type != IC_RPC_INTERRUPT_RELEASE) return -EINVAL;
  pthread_mutex_lock(&v->mu);
  ic_inode *in = v->buckets[bucket_of(v, ino)];
  while (in && in->ino != ino) in = in->hnext;
  bool act = in && !in->evicting && ic_volume_lease_of(v, in) != IC_LEASE_STATE_NONE;
  if (act && in->refs++ == 0) lru_unlink(v, in);
  pthread_mutex_unlock(&v->mu);
  if (!act) return 0;
  /* Its changes go first, with their whole group (which locks the inode,
   * waiting for its current user): imgr hands the inode on once we answer. */
  int rc = flush_group(v, in);
  pthread_mutex_lock(&in->lock);
  bool demote = type == IC_RPC_INTERRUPT_DEMOTE;
  char *names = NULL;
  size_t nnames = 0;
  if (rc) goto out;
  ic_lease_state held = ic_volume_lease_of(v, in);
  if (demote && held != IC_LEASE_STATE_EXCLUSIVE) goto out;
  if (held == IC_LEASE_STATE_NONE) goto out; /* released meanwhile */
  if (in->dirty || in->delete_pending) {
    rc = -EAGAIN; /* changed again meanwhile: imgr repeats the interrupt */
    goto out;
  }
  if (demote) {
    rc = lease_request(v, ino, IC_LEASE_REQUEST_DEMOTE, IC_LEASE_RESPONSE_DEMOTED);
    if (rc == 0) set_lease(v, in, IC_LEASE_STATE_SHARED);
  } else {
    pthread_mutex_lock(&v->mu);
    ic_volume_dir_released_fn fn = v->dir_released;
    void *fctx = v->dir_released_ctx;
    pthread_mutex_unlock(&v->mu);
    if (fn) names = dir_names(v, in, &nnames);
    /* Another client will change the inode: nothing cached may be reused. */
    ic_inode_free_state(in);
    in->loaded = false;
    rc = lease_request(v, ino, IC_LEASE_REQUEST_RELEASE, IC_LEASE_RESPONSE_RELEASED);
    set_lease(v, in, IC_LEASE_STATE_NONE); /* either way: imgr will expire it */
    ic_inode_put(v, in);
    for (size_t i = 0, off = 0; i < nnames; i++) { /* no lock held: the kernel may wait */
      size_t len = strlen(names + off);
      fn(fctx, ino, names + off, len);
      off += len + 1;
    }
    free(names);
    return rc;
  }
out:
  ic_inode_put(v, in);
  return rc;
}

static void dirty_set_check_caps(ic_volume *v);
static void unmark(ic_volume *v, ic_inode *in);
static void mark(ic_volume *v, ic_inode *in);

void ic_inode_put(ic_volume *v, ic_inode *in) {
  /* Read under the inode lock: nobody can change it once refs reach 0. */
  bool idle = !in->dirty && in->put_obj == 0 && !in->delete_pending;
  bool keep = !idle || in->opens > 0; /* open counts must not be forgotten */
  size_t put_len = in->put_len;
  pthread_mutex_unlock(&in->lock);
  pthread_mutex_lock(&v->mu);
  bool over = false;
  if (!idle) {
    mark(v, in);
    v->dirty_bytes += put_len - in->marked_bytes;
    in->marked_bytes = put_len;
    dirty_set_check_caps(v);
  } else if (in->marked && in->uf == in && in->gsize == 1) {
    unmark(v, in); /* committed on its own (ic_flush_inodes) */
  }
  if (--in->refs == 0) {
    if (!keep && !in->marked) lru_append(v, in); /* dirty inodes stay until committed */
    over = v->ninodes > v->p.inode_cache_limit;
    if ((v->p.max_shared_leases || v->p.max_exclusive_leases) &&
        ++v->puts_since_lease_check >= IC_LEASE_CAP_CHECK) {
      v->puts_since_lease_check = 0;
      over = true;
    }
  }
  pthread_mutex_unlock(&v->mu);
  if (over) evict(v, false);
}

int ic_volume_list_inodes(ic_volume *v, int (*fn)(void *ctx, uint64_t ino, ic_lease_state s),
                          void *ctx) {
  int rc = 0;
  pthread_mutex_lock(&v->mu);
  for (size_t i = 0; i < v->nbuckets && rc == 0; i++)
    for (ic_inode *in = v->buckets[i]; in && rc == 0; in = in->hnext)
      rc = fn(ctx, in->ino, ic_volume_lease_of(v, in));
  pthread_mutex_unlock(&v->mu);
  return rc;
}

/* ---- write-back: the dirty set and commit groups (ic_internal.h) ----
 * Under the table mutex. The groups are a union-find forest over the marked
 * inodes: uf is the parent, a root points to itself. Marked inodes are
 * never evicted, so the pointers stay valid until the group is committed,
 * when every member leaves the set together. */

static __thread ic_volume *tl_over_caps; /* backpressure owed by this thread */

static ic_inode *uf_find(ic_inode *in) {
  while (in->uf != in) {
    in->uf = in->uf->uf; /* path halving */
    in = in->uf;
  }
  return in;
}

static void mark(ic_volume *v, ic_inode *in) {
  if (in->marked) return;
  in->marked = true;
  in->marked_at = ut_now_ns();
  in->uf = in;
  in->gsize = 1;
  in->dprev = NULL;
  in->dnext = v->dirty_head;
  if (v->dirty_head) v->dirty_head->dprev = in;
  v->dirty_head = in;
  v->nmarked++;
}

static void unmark(ic_volume *v, ic_inode *in) {
  if (!in->marked) return;
  in->marked = false;
  if (in->dprev)
    in->dprev->dnext = in->dnext;
  else
    v->dirty_head = in->dnext;
  if (in->dnext) in->dnext->dprev = in->dprev;
  in->dnext = in->dprev = NULL;
  in->uf = NULL;
  v->nmarked--;
  v->dirty_bytes -= in->marked_bytes;
  in->marked_bytes = 0;
}

static void dirty_set_check_caps(ic_volume *v) {
  if (v->nmarked > v->p.inode_cache_limit / 2 + 1 ||
      v->dirty_bytes > 4 * v->p.file_flush_trigger_size)
    tl_over_caps = v;
}

void ic_volume_changed(ic_volume *v, ic_inode *const *inodes, size_t n) {
  pthread_mutex_lock(&v->mu);
  ic_inode *root = NULL;
  for (size_t i = 0; i < n; i++) {
    ic_inode *in = inodes[i];
    if (!in->dirty && !in->delete_pending) continue;
    mark(v, in);
    ic_inode *r = uf_find(in);
    if (!root) {
      root = r;
    } else if (r != root) {
      r->uf = root;
      root->gsize += r->gsize;
      if (r->marked_at < root->marked_at) root->marked_at = r->marked_at; /* oldest change */
    }
  }
  dirty_set_check_caps(v);
  pthread_mutex_unlock(&v->mu);
}

/* Inodes handled IC_COMMIT_THREADS at a time (ut_parallel). */
typedef struct member_batch {
  ic_volume *v;
  ic_inode *const *m;
} member_batch;

void ic_inode_unlinked(ic_inode *in) { in->delete_pending = true; }

static int ask_lease_one(void *ctx, size_t i) {
  member_batch *d = ctx;
  ic_inode *in = d->m[i];
  if (!in->lease_unasked) return 0;
  int rc = lease_request(d->v, in->ino, IC_LEASE_REQUEST_EXCLUSIVE, IC_LEASE_RESPONSE_EXCLUSIVE);
  if (rc == 0) {
    in->lease_unasked = false;
    set_lease(d->v, in, IC_LEASE_STATE_EXCLUSIVE); /* granted under the current mount */
  }
  return rc;
}

int ic_volume_ask_new_leases(ic_volume *v, ic_inode *const *inodes, size_t n) {
  member_batch b = {v, inodes};
  return ut_parallel(n, IC_COMMIT_THREADS, ask_lease_one, &b);
}

void ic_volume_dirty_stats(ic_volume *v, size_t *inodes, uint64_t *bytes) {
  pthread_mutex_lock(&v->mu);
  *inodes = v->nmarked;
  *bytes = v->dirty_bytes;
  pthread_mutex_unlock(&v->mu);
}

static void pin(ic_volume *v, ic_inode *in) {
  if (in->refs++ == 0) lru_unlink(v, in);
}

static int cmp_ino(const void *a, const void *b) {
  uint64_t x = (*(ic_inode *const *)a)->ino, y = (*(ic_inode *const *)b)->ino;
  return x < y ? -1 : x > y;
}

/* The members of seed's group, pinned (mu held). NULL with *n 0 when seed
 * is not marked; NULL with *n nonzero when out of memory. */
static ic_inode **group_members(ic_volume *v, ic_inode *seed, size_t *n) {
  *n = 0;
  if (!seed->marked) return NULL;
  ic_inode *root = uf_find(seed);
  size_t cap = 16;
  ic_inode **m = malloc(cap * sizeof(*m));
  for (ic_inode *in = v->dirty_head; m && in; in = in->dnext) {
    if (uf_find(in) != root) continue;
    if (*n == cap) {
      ic_inode **p = realloc(m, (cap *= 2) * sizeof(*m));
      if (!p) {
        free(m);
        m = NULL;
        break;
      }
      m = p;
    }
    m[(*n)++] = in;
  }
  if (!m) {
    *n = 1;
    return NULL;
  }
  for (size_t i = 0; i < *n; i++) pin(v, m[i]);
  return m;
}

/* Still exactly seed's group (mu held)? Members are locked by the caller,
 * so nobody can change them; a new inode may only have joined. */
static bool group_unchanged(ic_volume *v, ic_inode *seed, ic_inode **m, size_t n) {
  if (!seed->marked) return false;
  ic_inode *root = uf_find(seed);
  size_t count = 0;
  for (ic_inode *in = v->dirty_head; in; in = in->dnext) count += uf_find(in) == root;
  for (size_t i = 0; i < n && count == n; i++)
    if (!m[i]->marked || uf_find(m[i]) != root) return false;
  return count == n;
}

/* AdjustInodeTableEntryOpenCount for the held inode; EMissingLease right
 * after imgr forgot the mount: the lease is taken again, the count sent
 * once more. */
static int adjust_open(ic_volume *v, ic_inode *in, int64_t adj) {
  ic_adjust_open_count_req req = {v->mount_id, in->ino, adj};
  ic_rpc_err err = {{0}};
  int rc = v->imgr->adjust_inode_table_entry_open_count(v->imgr_ctx, &req, &err);
  if (rc == -ENOLCK && lease_refresh(v, in) == 0)
    rc = v->imgr->adjust_inode_table_entry_open_count(v->imgr_ctx, &req, &err);
  if (rc)
    log_error("iclient: AdjustInodeTableEntryOpenCount(%016llX, %lld) failed: %s",
              (unsigned long long)in->ino, (long long)adj, err.msg);
  return rc;
}

/* Tell imgr of the held inode's opens (one count per mount). */
static int open_tell(ic_volume *v, ic_inode *in) {
  int rc = adjust_open(v, in, 1);
  in->open_told = rc == 0;
  in->open_gen = atomic_load(&v->lease_gen);
  return rc;
}

/* Told under the current mount (a count told to a forgotten mount is gone). */
static bool open_told_now(ic_volume *v, const ic_inode *in) {
  return in->open_told && in->open_gen == atomic_load(&v->lease_gen);
}

int ic_inode_open(ic_volume *v, ic_inode *in) {
  if (in->opens == UINT32_MAX) return -EMFILE;
  if (in->known && !open_told_now(v, in)) {
    int rc = open_tell(v, in);
    if (rc) return rc;
  }
  in->opens++;
  return 0;
}

int ic_inode_close(ic_volume *v, ic_inode *in) {
  if (in->opens == 0) return -EBADF;
  if (--in->opens > 0 || !in->open_told) return 0;
  bool now = open_told_now(v, in);
  in->open_told = false;
  return now ? adjust_open(v, in, -1) : 0;
}

int ic_volume_reopen_all(ic_volume *v) {
  uint64_t *inos = NULL;
  size_t n = 0, cap = 0;
  int first = 0;
  pthread_mutex_lock(&v->mu);
  for (size_t b = 0; b < v->nbuckets && first == 0; b++)
    for (ic_inode *in = v->buckets[b]; in && first == 0; in = in->hnext) {
      if (in->opens == 0) continue; /* racy read: rechecked under the inode lock */
      if (n == cap) {
        uint64_t *p = realloc(inos, (cap = cap ? 2 * cap : 64) * sizeof(*inos));
        if (!p) {
          first = -ENOMEM;
          break;
        }
        inos = p;
      }
      inos[n++] = in->ino;
    }
  pthread_mutex_unlock(&v->mu);
  size_t told = 0;
  for (size_t i = 0; i < n; i++) {
    ic_inode *in;
    int rc = ic_inode_get_shared(v, inos[i], &in); /* the lease imgr wants for the count */
    if (rc == 0) {
      if (in->opens > 0 && in->known && !open_told_now(v, in)) {
        rc = open_tell(v, in);
        told += rc == 0;
      }
      ic_inode_put(v, in);
    }
    if (rc && !first) first = rc;
  }
  free(inos);
  if (n) log_info("iclient: %zu open inodes counted again at imgr", told);
  return first;
}

static void delete_inode(ic_volume *v, ic_inode *in) {
  if (in->known) {
    in->known = false;
    ic_inode_req req = {v->mount_id, in->ino};
    ic_rpc_err err = {{0}};
    int rc = v->imgr->delete_inode_table_entry(v->imgr_ctx, &req, &err);
    if (rc == -ENOLCK && lease_refresh(v, in) == 0)
      rc = v->imgr->delete_inode_table_entry(v->imgr_ctx, &req, &err);
    if (rc)
      log_error("iclient: DeleteInodeTableEntry(%016llX) failed: %s", (unsigned long long)in->ino,
                err.msg);
  }
  /* Still open here: imgr defers the removal to the last close, and the
   * handles keep reading and writing the inode (it is not committed again)
   * until then; the commit after the last close comes back here. */
  if (in->opens > 0) return;
  if (in->lease_unasked) { /* never committed: imgr never heard of it */
    in->lease_unasked = false;
    set_lease(v, in, IC_LEASE_STATE_NONE);
  }
  /* imgr stops the inode's lease and would interrupt us for it: give it
   * back first (an rm -rf would otherwise flood us with interrupts). */
  if (ic_volume_lease_of(v, in) != IC_LEASE_STATE_NONE) {
    (void)lease_request(v, in->ino, IC_LEASE_REQUEST_RELEASE, IC_LEASE_RESPONSE_RELEASED);
    set_lease(v, in, IC_LEASE_STATE_NONE);
  }
  ic_inode_forget_deleted(in);
  in->delete_pending = false;
}

static int delete_one(void *ctx, size_t i) {
  member_batch *d = ctx;
  if (d->m[i]->delete_pending) delete_inode(d->v, d->m[i]);
  return 0;
}

/* After the first commit of inodes opened meanwhile: imgr counts them. */
static int tell_opens(ic_volume *v, ic_inode **m, size_t n) {
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (m[i]->opens == 0 || open_told_now(v, m[i]) || !m[i]->known) continue;
    rc = open_tell(v, m[i]);
  }
  return rc;
}

/* Commit the locked members: a lost lease is asked for again, then one
 * PutInodeTableEntries (ic_flush_inodes), then imgr hears of opens and
 * deletes. */
static int commit_members(ic_volume *v, ic_inode **m, size_t n) {
  ic_inode **commit = malloc((n ? n : 1) * sizeof(*commit));
  if (!commit) return -ENOMEM;
  size_t nc = 0;
  for (size_t i = 0; i < n; i++)
    if (m[i]->dirty && !m[i]->delete_pending) commit[nc++] = m[i];
  int rc = 0;
  for (size_t i = 0; i < nc && rc == 0; i++) rc = lease_ensure(v, commit[i], IC_LEASE_STATE_EXCLUSIVE);
  if (rc == 0) rc = ic_flush_inodes(v, commit, nc);
  if (rc == 0) rc = tell_opens(v, commit, nc);
  free(commit);
  member_batch d = {v, m};
  if (rc == 0) (void)ut_parallel(n, IC_COMMIT_THREADS, delete_one, &d); /* failures logged */
  return rc;
}

#define GROUP_LOCK_TRIES 100

static int flush_group(ic_volume *v, ic_inode *seed) {
  for (int attempt = 0; attempt < GROUP_LOCK_TRIES; attempt++) {
    size_t n;
    pthread_mutex_lock(&v->mu);
    ic_inode **m = group_members(v, seed, &n);
    pthread_mutex_unlock(&v->mu);
    if (!m) return n ? -ENOMEM : 0;
    qsort(m, n, sizeof(*m), cmp_ino);
    for (size_t i = 0; i < n; i++) pthread_mutex_lock(&m[i]->lock);
    pthread_mutex_lock(&v->mu);
    bool same = group_unchanged(v, seed, m, n);
    pthread_mutex_unlock(&v->mu);
    int rc = same ? commit_members(v, m, n) : 0;
    if (same && rc == 0) {
      pthread_mutex_lock(&v->mu);
      for (size_t i = 0; i < n; i++) unmark(v, m[i]);
      pthread_mutex_unlock(&v->mu);
    }
    for (size_t i = 0; i < n; i++) ic_inode_put(v, m[i]); /* unlock, unpin */
    free(m);
    if (same) return rc;
  }
  return -EAGAIN; /* the group kept growing under us: the next round gets it */
}

int ic_volume_flush(ic_volume *v, uint64_t ino) {
  pthread_mutex_lock(&v->mu);
  ic_inode *in = v->buckets[bucket_of(v, ino)];
  while (in && in->ino != ino) in = in->hnext;
  bool act = in && in->marked;
  if (act) pin(v, in);
  pthread_mutex_unlock(&v->mu);
  if (!act) return 0;
  int rc = flush_group(v, in);
  pthread_mutex_lock(&in->lock);
  ic_inode_put(v, in);
  return rc;
}

/* Commit every group with a change older than cutoff; the first error is
 * returned (the failed group stays dirty for a later round). */
static int flush_older(ic_volume *v, uint64_t cutoff) {
  int first = 0;
  size_t budget;
  pthread_mutex_lock(&v->mu);
  budget = v->nmarked; /* each round commits a group or gives up on one */
  for (;;) {
    ic_inode *seed = v->dirty_head;
    while (seed && uf_find(seed)->marked_at > cutoff) seed = seed->dnext;
    if (!seed || budget-- == 0) break;
    pin(v, seed);
    pthread_mutex_unlock(&v->mu);
    int rc = flush_group(v, seed);
    if (rc && !first) first = rc;
    if (rc)
      log_warn("iclient: commit of the group of inode %016llX failed: %d",
               (unsigned long long)seed->ino, rc);
    pthread_mutex_lock(&seed->lock);
    ic_inode_put(v, seed);
    pthread_mutex_lock(&v->mu);
  }
  pthread_mutex_unlock(&v->mu);
  return first;
}

int ic_volume_flush_all(ic_volume *v) { return flush_older(v, ut_now_ns()); }

void ic_volume_backpressure(void) {
  ic_volume *v = tl_over_caps;
  if (!v) return;
  tl_over_caps = NULL;
  (void)ic_volume_flush_all(v); /* failures are logged; the groups stay dirty */
}

/* The flusher: commits groups FileFlushTriggerDuration after their first
 * change (iclient.md 6.4). */
static void *flusher_main(void *arg) {
  ic_volume *v = arg;
  uint64_t period = v->p.file_flush_trigger_ns / 4 + 1;
  pthread_mutex_lock(&v->mu);
  while (!v->stopping) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t at = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + period;
    ts.tv_sec = (time_t)(at / 1000000000u);
    ts.tv_nsec = (long)(at % 1000000000u);
    pthread_cond_timedwait(&v->flusher_cv, &v->mu, &ts);
    if (v->stopping) break;
    pthread_mutex_unlock(&v->mu);
    (void)flush_older(v, ut_now_ns() - v->p.file_flush_trigger_ns);
    pthread_mutex_lock(&v->mu);
  }
  pthread_mutex_unlock(&v->mu);
  return NULL;
}
