/* Volume storage access: StorageURL parsing, token selection (imgr.md
 * 4.10), Swift calls and the checkpoint text in object 0 and ickpt. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imgr_internal.h"
#include "logger.h"

#define TOKEN_MAX 4096

int imgr_store_init(imgr_store *st, const char *url) {
  memset(st, 0, sizeof *st);
  const char *p = strstr(url, "://");
  if (!p || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) return -EINVAL;
  const char *path = strchr(p + 3, '/');
  const char *slash = strrchr(url, '/');
  /* <scheme>://<host>/<...account...>/<container>: at least one path element
   * before the container, and a non-empty container. */
  if (!path || slash == path || !slash[1] || strchr(url, '?') || strchr(url, '#'))
    return -EINVAL;
  st->storage_url = strdup(url);
  st->account_url = strndup(url, (size_t)(slash - url));
  st->container = strdup(slash + 1);
  if (!st->storage_url || !st->account_url || !st->container) {
    imgr_store_free(st);
    return -ENOMEM;
  }
  return 0;
}

void imgr_store_free(imgr_store *st) {
  free(st->storage_url);
  free(st->account_url);
  free(st->container);
  memset(st, 0, sizeof *st);
}

int imgr_store_connect(imgr_server *srv, const imgr_store *st, const char *token,
                       swift_conn **out) {
  const imgr_config *c = srv->cfg;
  swift_config sc;
  swift_config_defaults(&sc);
  sc.storage_url = st->account_url;
  sc.auth_token = token ? token : "";
  sc.retry_delay_ns = c->swift_retry_delay_ns;
  sc.retry_exp_backoff = c->swift_retry_exp_backoff;
  sc.retry_limit = c->swift_retry_limit;
  sc.timeout_ns = c->swift_timeout_ns;
  sc.connection_pool_size = c->swift_connection_pool_size;
  sc.user_agent = "proxyfs-c imgr";
  return swift_conn_create(&sc, out);
}

/* ---- token selection ------------------------------------------------------ */

typedef imgr_vol_tok vol_tok;

static void sconn_unref_locked(imgr_sconn *sc, imgr_sconn **gone) {
  *gone = NULL;
  if (sc && --sc->refs == 0) *gone = sc;
}

static void sconn_free(imgr_sconn *sc) {
  if (!sc) return;
  swift_conn_destroy(sc->conn);
  free(sc->token);
  free(sc);
}

/* A cached connection for tok: take a reference and move it to the front. */
static bool sconn_lookup(imgr_volume *vol, const char *tok, vol_tok *t) {
  pthread_mutex_lock(&vol->mu);
  for (size_t i = 0; i < IMGR_SCONN_CACHE && vol->sconn[i]; i++) {
    imgr_sconn *sc = vol->sconn[i];
    if (strcmp(sc->token, tok) == 0) {
      memmove(&vol->sconn[1], &vol->sconn[0], i * sizeof vol->sconn[0]);
      vol->sconn[0] = sc;
      sc->refs++;
      t->sc = sc;
      pthread_mutex_unlock(&vol->mu);
      return true;
    }
  }
  pthread_mutex_unlock(&vol->mu);
  return false;
}

int imgr_vol_tok_acquire(imgr_volume *vol, vol_tok *t) {
  char tok[TOKEN_MAX];
  memset(t, 0, sizeof *t);
  pthread_mutex_lock(&vol->mu);
  imgr_token_source src = vol->tsrc;
  pthread_mutex_unlock(&vol->mu);
  /* The RPC layer's pick takes its own locks: never under vol->mu. */
  if (src.pick && src.pick(src.ctx, tok, sizeof tok, &t->tid) == 0) {
    t->from_source = true;
  } else {
    pthread_mutex_lock(&vol->mu);
    if (!vol->static_token[0]) {
      pthread_mutex_unlock(&vol->mu);
      return -EACCES;
    }
    snprintf(tok, sizeof tok, "%s", vol->static_token);
    pthread_mutex_unlock(&vol->mu);
  }
  if (sconn_lookup(vol, tok, t)) return 0;
  /* A new token: a static-mode connection does no I/O when created. */
  imgr_sconn *sc = calloc(1, sizeof *sc);
  if (!sc || !(sc->token = strdup(tok))) {
    free(sc);
    return -ENOMEM;
  }
  int rc = imgr_store_connect(vol->srv, &vol->store, tok, &sc->conn);
  if (rc) {
    sconn_free(sc);
    return rc;
  }
  sc->refs = 2; /* the cache's and ours */
  imgr_sconn *gone;
  pthread_mutex_lock(&vol->mu);
  sconn_unref_locked(vol->sconn[IMGR_SCONN_CACHE - 1], &gone);
  memmove(&vol->sconn[1], &vol->sconn[0], (IMGR_SCONN_CACHE - 1) * sizeof vol->sconn[0]);
  vol->sconn[0] = sc;
  pthread_mutex_unlock(&vol->mu);
  sconn_free(gone);
  t->sc = sc;
  return 0;
}

void imgr_vol_tok_release(imgr_volume *vol, vol_tok *t, int rc) {
  imgr_sconn *gone, *evicted = NULL;
  imgr_token_source src;
  pthread_mutex_lock(&vol->mu);
  src = vol->tsrc;
  if (rc == -EACCES) {
    if (!t->from_source && strcmp(vol->static_token, t->sc->token) == 0) {
      /* imgr.md 4.10: a refused static token is forgotten. */
      log_warn("volume %s: static AuthToken refused by Swift; cleared", vol->name);
      vol->static_token[0] = '\0';
    }
    /* A refused token leaves the connection cache. */
    for (size_t i = 0; i < IMGR_SCONN_CACHE; i++)
      if (vol->sconn[i] == t->sc) {
        memmove(&vol->sconn[i], &vol->sconn[i + 1],
                (IMGR_SCONN_CACHE - 1 - i) * sizeof vol->sconn[0]);
        vol->sconn[IMGR_SCONN_CACHE - 1] = NULL;
        sconn_unref_locked(t->sc, &evicted);
        break;
      }
  }
  sconn_unref_locked(t->sc, &gone);
  pthread_mutex_unlock(&vol->mu);
  sconn_free(evicted);
  sconn_free(gone);
  /* The original's bug cleared the static token here too (imgr.md 6.6). */
  if (rc == -EACCES && t->from_source && src.rejected) src.rejected(src.ctx, t->tid);
}

void imgr_volume_set_token_source(imgr_volume *vol, const imgr_token_source *src) {
  pthread_mutex_lock(&vol->mu);
  if (src) vol->tsrc = *src;
  else memset(&vol->tsrc, 0, sizeof vol->tsrc);
  pthread_mutex_unlock(&vol->mu);
}

int imgr_swift_get(imgr_server *srv, swift_conn *conn, const char *container,
                   const char *object, swift_range r, void *buf, size_t buflen, size_t *got) {
  uint64_t t0;
  imgr_stat_now(&t0);
  int rc = swift_object_get(conn, container, object, r, buf, buflen, got, NULL);
  imgr_stat_done(r.kind == SWIFT_RANGE_SPAN   ? &srv->stats.SwiftObjectGetRangeUsecs
                 : r.kind == SWIFT_RANGE_TAIL ? &srv->stats.SwiftObjectGetTailUsecs
                                              : &srv->stats.SwiftObjectGetUsecs,
                 t0);
  return rc;
}

int imgr_swift_put(imgr_server *srv, swift_conn *conn, const char *container,
                   const char *object, const void *buf, size_t len) {
  uint64_t t0;
  imgr_stat_now(&t0);
  int rc = swift_object_put(conn, container, object, buf, len, NULL, 0);
  imgr_stat_done(&srv->stats.SwiftObjectPutUsecs, t0);
  return rc;
}

int imgr_swift_delete(imgr_server *srv, swift_conn *conn, const char *container,
                      const char *object) {
  uint64_t t0;
  imgr_stat_now(&t0);
  int rc = swift_object_delete(conn, container, object);
  imgr_stat_done(&srv->stats.SwiftObjectDeleteUsecs, t0);
  return rc;
}

void imgr_vol_mount_counts(imgr_volume *vol, imgr_mount_counts *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&vol->mu);
  imgr_token_source src = vol->tsrc;
  pthread_mutex_unlock(&vol->mu);
  /* The RPC layer's counts takes its own locks: never under vol->mu. */
  if (src.counts) src.counts(src.ctx, out);
}

void imgr_volume_drop_conn(imgr_volume *vol) {
  for (size_t i = 0; i < IMGR_SCONN_CACHE; i++) {
    imgr_sconn *gone;
    pthread_mutex_lock(&vol->mu);
    sconn_unref_locked(vol->sconn[i], &gone);
    vol->sconn[i] = NULL;
    pthread_mutex_unlock(&vol->mu);
    sconn_free(gone);
  }
}

/* ---- object calls ------------------------------------------------------------ */

int imgr_vol_get(imgr_volume *vol, const char *object, swift_range r, void *buf,
                 size_t buflen, size_t *got) {
  vol_tok t;
  int rc = imgr_vol_tok_acquire(vol, &t);
  if (rc) return rc;
  rc = imgr_swift_get(vol->srv, t.sc->conn, vol->store.container, object, r, buf, buflen, got);
  imgr_vol_tok_release(vol, &t, rc);
  return rc;
}

int imgr_vol_get_tail(imgr_volume *vol, uint64_t obj, uint64_t len, uint8_t **out) {
  if (len == 0 || len > ((uint64_t)64 << 20)) return -EINVAL;
  uint8_t *b = malloc(len);
  if (!b) return -ENOMEM;
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(obj, name);
  size_t got = 0;
  swift_range tail = {SWIFT_RANGE_TAIL, 0, len};
  int rc = imgr_vol_get(vol, name, tail, b, len, &got);
  if (!rc && got != len) rc = -EINVAL;
  if (rc) free(b);
  else *out = b;
  return rc;
}

int imgr_vol_put(imgr_volume *vol, const char *object, const void *buf, size_t len) {
  vol_tok t;
  int rc = imgr_vol_tok_acquire(vol, &t);
  if (rc) return rc;
  rc = imgr_swift_put(vol->srv, t.sc->conn, vol->store.container, object, buf, len);
  imgr_vol_tok_release(vol, &t, rc);
  return rc;
}

int imgr_vol_delete(imgr_volume *vol, uint64_t object_number) {
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(object_number, name);
  vol_tok t;
  int rc = imgr_vol_tok_acquire(vol, &t);
  if (rc) return rc;
  rc = imgr_swift_delete(vol->srv, t.sc->conn, vol->store.container, name);
  imgr_vol_tok_release(vol, &t, rc);
  /* Already gone (a replay after a restart): the goal is reached. */
  return rc == -ENOENT ? 0 : rc;
}

/* ---- checkpoint text -------------------------------------------------------- */

static char *object0_url(const imgr_store *st) {
  char *u;
  return asprintf(&u, "%s/0000000000000000", st->storage_url) < 0 ? NULL : u;
}

/* Read with an explicit connection + token (format, fresh reads), or with
 * the volume's token selection when explicit_conn is NULL. */
int imgr_vol_read_checkpoint(imgr_volume *vol, swift_conn *explicit_conn,
                             const char *explicit_token, ilayout_checkpoint_v1 *out) {
  char text[256];
  size_t len = 0;
  int rc;
  uint64_t t0;
  imgr_stat_now(&t0);
  vol_tok t = {0};
  swift_conn *conn = explicit_conn;
  const char *token = explicit_token;
  if (!conn) {
    if ((rc = imgr_vol_tok_acquire(vol, &t))) return rc;
    conn = t.sc->conn;
    token = t.sc->token;
  }
  if (vol->srv->ickpt) {
    char *u = object0_url(&vol->store);
    rc = u ? imgr_ickpt_read(vol->srv->ickpt, u, token, text, sizeof text - 1, &len) : -ENOMEM;
    free(u);
    imgr_stat_done(&vol->srv->stats.CheckPointReadUsecs, t0);
  } else {
    swift_range all = {SWIFT_RANGE_ALL, 0, 0};
    rc = imgr_swift_get(vol->srv, conn, vol->store.container, "0000000000000000", all, text,
                        sizeof text - 1, &len);
    if (rc == -EOVERFLOW) rc = -EINVAL;
  }
  if (!explicit_conn) imgr_vol_tok_release(vol, &t, rc);
  if (rc) return rc;
  rc = ilayout_checkpoint_v1_decode(text, len, out);
  if (rc) log_error("volume %s: checkpoint %.*s does not decode", vol->name, (int)len, text);
  return rc;
}

int imgr_vol_write_checkpoint(imgr_volume *vol, const ilayout_checkpoint_v1 *ck) {
  char text[ILAYOUT_CHECKPOINT_V1_LEN + 1];
  int rc = ilayout_checkpoint_v1_encode(ck, text);
  if (rc) return rc;
  uint64_t t0;
  imgr_stat_now(&t0);
  vol_tok t;
  if ((rc = imgr_vol_tok_acquire(vol, &t))) return rc;
  rc = imgr_swift_put(vol->srv, t.sc->conn, vol->store.container, "0000000000000000", text,
                      ILAYOUT_CHECKPOINT_V1_LEN);
  if (!rc && vol->srv->ickpt) {
    char *u = object0_url(&vol->store);
    rc = u ? imgr_ickpt_write(vol->srv->ickpt, u, t.sc->token, text, ILAYOUT_CHECKPOINT_V1_LEN)
           : -ENOMEM;
    free(u);
  }
  imgr_vol_tok_release(vol, &t, rc);
  imgr_stat_done(&vol->srv->stats.CheckPointWriteUsecs, t0);
  return rc;
}

/* Format and fresh reads use an explicit token; this writes the text with it. */
int imgr_store_write_checkpoint(imgr_server *srv, const imgr_store *st, swift_conn *conn,
                                const char *token, const ilayout_checkpoint_v1 *ck) {
  char text[ILAYOUT_CHECKPOINT_V1_LEN + 1];
  int rc = ilayout_checkpoint_v1_encode(ck, text);
  if (rc) return rc;
  rc = imgr_swift_put(srv, conn, st->container, "0000000000000000", text,
                      ILAYOUT_CHECKPOINT_V1_LEN);
  if (!rc && srv->ickpt) {
    char *u = object0_url(st);
    rc = u ? imgr_ickpt_write(srv->ickpt, u, token, text, ILAYOUT_CHECKPOINT_V1_LEN) : -ENOMEM;
    free(u);
  }
  return rc;
}

int imgr_vol_reserve_nonces(imgr_volume *vol, uint64_t n, uint64_t *first) {
  pthread_mutex_lock(&vol->obj0_mu);
  pthread_mutex_lock(&vol->mu);
  ilayout_checkpoint_v1 ck = vol->committed;
  pthread_mutex_unlock(&vol->mu);
  int rc = 0;
  if (ck.reserved_to_nonce > UINT64_MAX - n) {
    rc = -EOVERFLOW;
  } else {
    ck.reserved_to_nonce += n;
    rc = imgr_vol_write_checkpoint(vol, &ck);
  }
  if (!rc) {
    pthread_mutex_lock(&vol->mu);
    *first = vol->committed.reserved_to_nonce + 1;
    vol->committed.reserved_to_nonce = ck.reserved_to_nonce;
    pthread_mutex_unlock(&vol->mu);
  }
  pthread_mutex_unlock(&vol->obj0_mu);
  return rc;
}
