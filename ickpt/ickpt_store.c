/*
 * The store: LMDB for committed values, an in-memory table for staged
 * transactions (A.6.4-A.6.7).
 *
 * Locks, in order: a key stripe (serialises every operation on one key,
 * held across the LMDB commit's fsync but never across network I/O, which
 * happens in the service before the store is called), then txn_mu (the
 * transaction table, held only for list walks). LMDB itself serialises
 * write transactions of different keys.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "ickpt.h"
#include "ilayout.h"

#define STRIPES 64
#define DEFAULT_MAP_SIZE (64ull << 20)
#define DEFAULT_MAX_VALUE 4096
#define DEFAULT_TXN_TIMEOUT_NS (10ull * 1000000000ull)
#define DEFAULT_MAX_STAGED 4096

typedef struct txn_entry {
  uint8_t key[ICKPT_KEY_LEN];
  char txn[ICKPT_MAX_TXN_LEN + 1];
  ickpt_op op;
  ickpt_cond cond;
  char *value;
  size_t value_len;
  uint64_t expiry_ns;          /* CLOCK_MONOTONIC */
  bool committed;              /* memo of a successful POST, for retries */
  uint64_t committed_version;
  struct txn_entry *next;
} txn_entry;

struct ickpt_store {
  ickpt_store_config cfg;
  char *path;
  MDB_env *env;
  MDB_dbi dbi;
  int pid_fd;
  pthread_mutex_t stripe[STRIPES];
  pthread_mutex_t txn_mu;
  txn_entry *txns;
  size_t ntxns;
};

static uint64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int errno_of_mdb(int rc) {
  if (rc > 0) {
    return -rc; /* LMDB passes system errors through */
  }
  switch (rc) {
  case MDB_NOTFOUND:
    return -ENOENT;
  case MDB_MAP_FULL:
    return -ENOSPC;
  default:
    return -EIO;
  }
}

static int mkdir_p(const char *path, char *err, size_t errlen) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) {
    snprintf(err, errlen, "DataBasePath '%s' is empty or too long", path);
    return -EINVAL;
  }
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char saved = buf[i];
      buf[i] = '\0';
      if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "mkdir(%s) failed: %s", buf, strerror(e));
        return -e;
      }
      buf[i] = saved;
    }
  }
  return 0;
}

static int take_pid_lock(ickpt_store *s, char *err, size_t errlen) {
  char file[4200];
  snprintf(file, sizeof file, "%s/ickpt.pid", s->path);
  s->pid_fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s->pid_fd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot open %s: %s", file, strerror(e));
    return -e;
  }
  if (flock(s->pid_fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char other[32] = "";
    ssize_t got = pread(s->pid_fd, other, sizeof other - 1, 0);
    other[got > 0 ? got : 0] = '\0';
    other[strcspn(other, "\n")] = '\0';
    snprintf(err, errlen, "DataBasePath %s is in use by another ickpt (pid %s)", s->path,
             other[0] ? other : "?");
    return e == EWOULDBLOCK ? -EBUSY : -e;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(s->pid_fd, 0) != 0 || pwrite(s->pid_fd, pid, (size_t)n, 0) != n) {
    int e = errno;
    snprintf(err, errlen, "cannot write %s: %s", file, strerror(e));
    return -e;
  }
  return 0;
}

int ickpt_store_open(const ickpt_store_config *cfg, ickpt_store **out, char *err,
                     size_t errlen) {
  *out = NULL;
  if (cfg == NULL || cfg->path == NULL) {
    snprintf(err, errlen, "no DataBasePath");
    return -EINVAL;
  }
  ickpt_store *s = calloc(1, sizeof *s);
  if (s == NULL || (s->path = strdup(cfg->path)) == NULL) {
    free(s);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  s->pid_fd = -1;
  s->cfg = *cfg;
  s->cfg.path = s->path;
  if (s->cfg.map_size == 0) {
    s->cfg.map_size = DEFAULT_MAP_SIZE;
  }
  if (s->cfg.max_value == 0) {
    s->cfg.max_value = DEFAULT_MAX_VALUE;
  }
  if (s->cfg.txn_timeout_ns == 0) {
    s->cfg.txn_timeout_ns = DEFAULT_TXN_TIMEOUT_NS;
  }
  if (s->cfg.max_staged == 0) {
    s->cfg.max_staged = DEFAULT_MAX_STAGED;
  }
  for (int i = 0; i < STRIPES; i++) {
    pthread_mutex_init(&s->stripe[i], NULL);
  }
  pthread_mutex_init(&s->txn_mu, NULL);

  int rc = mkdir_p(s->path, err, errlen);
  if (rc == 0 && access(s->path, W_OK) != 0) {
    rc = -errno;
    snprintf(err, errlen, "DataBasePath %s is not writable: %s", s->path, strerror(-rc));
  }
  if (rc == 0) {
    rc = take_pid_lock(s, err, errlen);
  }
  if (rc == 0) {
    /* No MDB_NOSYNC / NOMETASYNC / WRITEMAP / MAPASYNC: mdb_txn_commit must
     * fsync before a POST is acknowledged. MDB_NOTLS because read
     * transactions may run on any of the HTTP server's threads. */
    int mrc = mdb_env_create(&s->env);
    if (mrc == 0) {
      mrc = mdb_env_set_mapsize(s->env, (size_t)s->cfg.map_size);
    }
    if (mrc == 0) {
      mrc = mdb_env_set_maxdbs(s->env, 1);
    }
    if (mrc == 0) {
      mrc = mdb_env_open(s->env, s->path, MDB_NOTLS, 0600);
    }
    int dead = 0;
    if (mrc == 0) {
      mrc = mdb_reader_check(s->env, &dead);
    }
    MDB_txn *t = NULL;
    if (mrc == 0) {
      mrc = mdb_txn_begin(s->env, NULL, 0, &t);
    }
    if (mrc == 0) {
      mrc = mdb_dbi_open(t, "ckpt", MDB_CREATE, &s->dbi);
      if (mrc == 0) {
        mrc = mdb_txn_commit(t);
      } else {
        mdb_txn_abort(t);
      }
    }
    if (mrc != 0) {
      snprintf(err, errlen, "LMDB open of %s failed: %s", s->path, mdb_strerror(mrc));
      rc = errno_of_mdb(mrc);
    }
  }
  if (rc != 0) {
    ickpt_store_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

static void free_entry(txn_entry *e) {
  free(e->value);
  free(e);
}

void ickpt_store_close(ickpt_store *s) {
  if (s == NULL) {
    return;
  }
  if (s->env != NULL) {
    mdb_env_close(s->env);
  }
  if (s->pid_fd >= 0) {
    close(s->pid_fd); /* releases the flock */
  }
  while (s->txns != NULL) {
    txn_entry *e = s->txns;
    s->txns = e->next;
    free_entry(e);
  }
  for (int i = 0; i < STRIPES; i++) {
    pthread_mutex_destroy(&s->stripe[i]);
  }
  pthread_mutex_destroy(&s->txn_mu);
  free(s->path);
  free(s);
}

static pthread_mutex_t *stripe_of(ickpt_store *s, const uint8_t key[ICKPT_KEY_LEN]) {
  return &s->stripe[key[0] % STRIPES];
}

/* Caller holds txn_mu. Drops expired entries, and when key is non-NULL
 * also every uncommitted entry of that key (a GET's rule). */
static void txn_sweep(ickpt_store *s, const uint8_t *key) {
  uint64_t now = clock_ns(CLOCK_MONOTONIC);
  txn_entry **pp = &s->txns;
  while (*pp != NULL) {
    txn_entry *e = *pp;
    bool drop = e->expiry_ns <= now ||
                (key != NULL && !e->committed && memcmp(e->key, key, ICKPT_KEY_LEN) == 0);
    if (drop) {
      *pp = e->next;
      s->ntxns--;
      free_entry(e);
    } else {
      pp = &e->next;
    }
  }
}

/* Caller holds txn_mu. Returns the link pointing at (key, txn) or NULL. */
static txn_entry **txn_find(ickpt_store *s, const uint8_t key[ICKPT_KEY_LEN], const char *txn) {
  for (txn_entry **pp = &s->txns; *pp != NULL; pp = &(*pp)->next) {
    if (memcmp((*pp)->key, key, ICKPT_KEY_LEN) == 0 && strcmp((*pp)->txn, txn) == 0) {
      return pp;
    }
  }
  return NULL;
}

/* Read the record of key inside t. 0 with *found false when absent. The
 * stored canonical URL must equal ours, else the SHA-256 collided. */
static int read_record(ickpt_store *s, MDB_txn *t, const uint8_t key[ICKPT_KEY_LEN],
                       const char *canonical, ickpt_record *rec, bool *found, char *err,
                       size_t errlen) {
  MDB_val k = {ICKPT_KEY_LEN, (void *)key};
  MDB_val v;
  *found = false;
  int mrc = mdb_get(t, s->dbi, &k, &v);
  if (mrc == MDB_NOTFOUND) {
    return 0;
  }
  if (mrc != 0) {
    snprintf(err, errlen, "LMDB read failed: %s", mdb_strerror(mrc));
    return errno_of_mdb(mrc);
  }
  if (ickpt_record_decode(v.mv_data, v.mv_size, rec) != 0) {
    snprintf(err, errlen, "stored record is corrupt");
    return -EIO;
  }
  if (rec->canonical_len != strlen(canonical) ||
      memcmp(rec->canonical, canonical, rec->canonical_len) != 0) {
    snprintf(err, errlen, "key hash collision");
    return -EIO;
  }
  *found = true;
  return 0;
}

/* The precondition and monotonic rules of A.6.6 against the current record
 * (cur NULL when there is none). */
static int check_update(const ickpt_store *s, ickpt_op op, const ickpt_cond *cond,
                        const char *value, size_t value_len, const ickpt_record *cur,
                        char *err, size_t errlen) {
  if (cond->kind == ICKPT_COND_MATCH) {
    if (cur == NULL) {
      snprintf(err, errlen, "precondition failed: no stored value");
      return -ECANCELED;
    }
    if (cond->version != 0 && cond->version != cur->version) {
      snprintf(err, errlen, "precondition failed: stored version is %llu, not %llu",
               (unsigned long long)cur->version, (unsigned long long)cond->version);
      return -ECANCELED;
    }
  } else if (cond->kind == ICKPT_COND_NONE_MATCH && cur != NULL) {
    snprintf(err, errlen, "precondition failed: a value is stored (version %llu)",
             (unsigned long long)cur->version);
    return -ECANCELED;
  }
  if (op != ICKPT_SET || !s->cfg.enforce_monotonic || cur == NULL) {
    return 0;
  }
  if (cur->value_len == value_len && memcmp(cur->value, value, value_len) == 0) {
    return 0; /* identical text: an idempotent rewrite */
  }
  ilayout_checkpoint_v1 old, neu;
  if (ilayout_checkpoint_v1_decode(cur->value, cur->value_len, &old) != 0) {
    return 0; /* stored before the guard was on: nothing to compare with */
  }
  if (ilayout_checkpoint_v1_decode(value, value_len, &neu) != 0) {
    snprintf(err, errlen, "value is not a CheckPoint V1 text");
    return -EINVAL;
  }
  if (neu.reserved_to_nonce < old.reserved_to_nonce ||
      neu.superblock_object_number < old.superblock_object_number) {
    snprintf(err, errlen, "stale checkpoint");
    return -ESTALE;
  }
  return 0;
}

static int validate_args(ickpt_store *s, const char *canonical, const char *txn,
                         uint8_t key[ICKPT_KEY_LEN], char *err, size_t errlen) {
  size_t n = canonical ? strlen(canonical) : 0;
  if (n == 0 || n > ICKPT_MAX_CANONICAL) {
    snprintf(err, errlen, "bad storage URL");
    return -EINVAL;
  }
  if (txn != NULL && !ickpt_txn_valid(txn)) {
    snprintf(err, errlen, "bad transaction ID (1-%d characters of [0-9A-Za-z_-])",
             ICKPT_MAX_TXN_LEN);
    return -EINVAL;
  }
  ickpt_key_of(canonical, n, key);
  return 0;
}

int ickpt_store_get(ickpt_store *s, const char *canonical, char **value, size_t *value_len,
                    uint64_t *version, char *err, size_t errlen) {
  uint8_t key[ICKPT_KEY_LEN];
  *value = NULL;
  *value_len = 0;
  *version = 0;
  int rc = validate_args(s, canonical, NULL, key, err, errlen);
  if (rc != 0) {
    return rc;
  }
  pthread_mutex_t *stripe = stripe_of(s, key);
  pthread_mutex_lock(stripe);
  pthread_mutex_lock(&s->txn_mu);
  txn_sweep(s, key);
  pthread_mutex_unlock(&s->txn_mu);

  MDB_txn *t;
  int mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t);
  if (mrc != 0) {
    pthread_mutex_unlock(stripe);
    snprintf(err, errlen, "LMDB read failed: %s", mdb_strerror(mrc));
    return errno_of_mdb(mrc);
  }
  ickpt_record rec;
  bool found;
  rc = read_record(s, t, key, canonical, &rec, &found, err, errlen);
  if (rc == 0 && !found) {
    snprintf(err, errlen, "no value stored");
    rc = -ENOENT;
  }
  if (rc == 0) {
    *value = malloc(rec.value_len + 1);
    if (*value == NULL) {
      rc = -ENOMEM;
    } else {
      memcpy(*value, rec.value, rec.value_len);
      (*value)[rec.value_len] = '\0';
      *value_len = rec.value_len;
      *version = rec.version;
    }
  }
  mdb_txn_abort(t);
  pthread_mutex_unlock(stripe);
  return rc;
}

int ickpt_store_stage(ickpt_store *s, const char *canonical, const char *txn, ickpt_op op,
                      const char *value, size_t value_len, const ickpt_cond *cond, char *err,
                      size_t errlen) {
  uint8_t key[ICKPT_KEY_LEN];
  int rc = validate_args(s, canonical, txn, key, err, errlen);
  if (rc != 0) {
    return rc;
  }
  if (op == ICKPT_DELETE) {
    value_len = 0;
  }
  if (value_len > s->cfg.max_value) {
    snprintf(err, errlen, "value of %zu bytes exceeds MaxValueSize %zu", value_len,
             s->cfg.max_value);
    return -E2BIG;
  }
  ilayout_checkpoint_v1 cp;
  if (op == ICKPT_SET && s->cfg.enforce_monotonic &&
      ilayout_checkpoint_v1_decode(value, value_len, &cp) != 0) {
    snprintf(err, errlen, "value is not a CheckPoint V1 text");
    return -EINVAL;
  }
  txn_entry *e = calloc(1, sizeof *e);
  if (e == NULL || (e->value = malloc(value_len + 1)) == NULL) {
    free(e);
    return -ENOMEM;
  }
  memcpy(e->key, key, ICKPT_KEY_LEN);
  snprintf(e->txn, sizeof e->txn, "%s", txn);
  e->op = op;
  e->cond = *cond;
  if (value_len > 0) {
    memcpy(e->value, value, value_len);
  }
  e->value_len = value_len;

  pthread_mutex_t *stripe = stripe_of(s, key);
  pthread_mutex_lock(stripe);
  /* Early check, so that a writer learns of a conflict at PUT time. */
  MDB_txn *t;
  int mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t);
  if (mrc != 0) {
    snprintf(err, errlen, "LMDB read failed: %s", mdb_strerror(mrc));
    rc = errno_of_mdb(mrc);
  } else {
    ickpt_record rec;
    bool found;
    rc = read_record(s, t, key, canonical, &rec, &found, err, errlen);
    if (rc == 0) {
      rc = check_update(s, op, cond, e->value, value_len, found ? &rec : NULL, err, errlen);
    }
    mdb_txn_abort(t);
  }
  if (rc == 0) {
    pthread_mutex_lock(&s->txn_mu);
    txn_sweep(s, NULL);
    txn_entry **old = txn_find(s, key, txn);
    if (old != NULL) {
      txn_entry *o = *old;
      *old = o->next;
      s->ntxns--;
      free_entry(o);
    }
    if (s->ntxns >= s->cfg.max_staged) {
      snprintf(err, errlen, "too many staged transactions (%zu)", s->ntxns);
      rc = -EBUSY;
    } else {
      e->expiry_ns = clock_ns(CLOCK_MONOTONIC) + s->cfg.txn_timeout_ns;
      e->next = s->txns;
      s->txns = e;
      s->ntxns++;
      e = NULL;
    }
    pthread_mutex_unlock(&s->txn_mu);
  }
  pthread_mutex_unlock(stripe);
  if (e != NULL) {
    free_entry(e);
  }
  return rc;
}

/* Apply e in one LMDB write transaction; the commit syncs. */
static int apply(ickpt_store *s, const char *canonical, txn_entry *e, uint64_t *version,
                 char *err, size_t errlen) {
  MDB_txn *t;
  int mrc = mdb_txn_begin(s->env, NULL, 0, &t);
  if (mrc != 0) {
    snprintf(err, errlen, "LMDB write failed: %s", mdb_strerror(mrc));
    return errno_of_mdb(mrc);
  }
  ickpt_record cur;
  bool found;
  int rc = read_record(s, t, e->key, canonical, &cur, &found, err, errlen);
  if (rc == 0) {
    rc = check_update(s, e->op, &e->cond, e->value, e->value_len, found ? &cur : NULL, err,
                      errlen);
  }
  MDB_val k = {ICKPT_KEY_LEN, e->key};
  if (rc == 0 && e->op == ICKPT_DELETE) {
    *version = 0;
    mrc = found ? mdb_del(t, s->dbi, &k, NULL) : 0;
  } else if (rc == 0) {
    ickpt_record rec = {
        .version = found ? cur.version + 1 : 1,
        .commit_time_ns = clock_ns(CLOCK_REALTIME),
        .canonical = canonical,
        .canonical_len = strlen(canonical),
        .value = e->value,
        .value_len = e->value_len,
    };
    MDB_val v = {ickpt_record_size(&rec), NULL};
    mrc = mdb_put(t, s->dbi, &k, &v, MDB_RESERVE);
    if (mrc == 0) {
      ickpt_record_encode(&rec, v.mv_data, v.mv_size);
      *version = rec.version;
    }
  }
  if (rc != 0) {
    mdb_txn_abort(t);
    return rc;
  }
  if (mrc != 0) {
    mdb_txn_abort(t);
  } else {
    mrc = mdb_txn_commit(t);
  }
  if (mrc != 0) {
    snprintf(err, errlen, "LMDB write failed: %s", mdb_strerror(mrc));
    return errno_of_mdb(mrc);
  }
  return 0;
}

int ickpt_store_commit(ickpt_store *s, const char *canonical, const char *txn,
                       uint64_t *version, char *err, size_t errlen) {
  uint8_t key[ICKPT_KEY_LEN];
  *version = 0;
  int rc = validate_args(s, canonical, txn, key, err, errlen);
  if (rc != 0) {
    return rc;
  }
  pthread_mutex_t *stripe = stripe_of(s, key);
  pthread_mutex_lock(stripe);
  pthread_mutex_lock(&s->txn_mu);
  txn_sweep(s, NULL);
  txn_entry **pp = txn_find(s, key, txn);
  txn_entry *e = pp ? *pp : NULL;
  if (e == NULL) {
    snprintf(err, errlen, "transaction %s is not staged (never, expired, or discarded by a GET)",
             txn);
    rc = -ESRCH;
  } else if (e->committed) {
    *version = e->committed_version;
    e = NULL;
  } else {
    *pp = e->next;
    s->ntxns--;
  }
  pthread_mutex_unlock(&s->txn_mu);

  if (e != NULL) {
    rc = apply(s, canonical, e, version, err, errlen);
    if (rc != 0) {
      free_entry(e);
    } else {
      /* Remember the commit so that a retried POST is answered again. */
      free(e->value);
      e->value = NULL;
      e->value_len = 0;
      e->committed = true;
      e->committed_version = *version;
      e->expiry_ns = clock_ns(CLOCK_MONOTONIC) + s->cfg.txn_timeout_ns;
      pthread_mutex_lock(&s->txn_mu);
      e->next = s->txns;
      s->txns = e;
      s->ntxns++;
      pthread_mutex_unlock(&s->txn_mu);
    }
  }
  pthread_mutex_unlock(stripe);
  return rc;
}

size_t ickpt_store_txn_count(ickpt_store *s) {
  pthread_mutex_lock(&s->txn_mu);
  txn_sweep(s, NULL);
  size_t n = s->ntxns;
  pthread_mutex_unlock(&s->txn_mu);
  return n;
}

int ickpt_store_backup(ickpt_store *s, const char *path, char *err, size_t errlen) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(e));
    return -e;
  }
  int mrc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
  int rc = mrc ? errno_of_mdb(mrc) : 0;
  if (rc == 0 && fsync(fd) != 0) {
    rc = -errno;
  }
  close(fd);
  if (rc == 0 && rename(tmp, path) != 0) {
    rc = -errno;
  }
  if (rc != 0) {
    unlink(tmp);
    snprintf(err, errlen, "backup to %s failed: %s", path,
             mrc ? mdb_strerror(mrc) : strerror(-rc));
  }
  return rc;
}
