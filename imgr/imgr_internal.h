/* imgr internals shared by the core's files. See imgr.h for the lock order. */
#ifndef PFS_IMGR_INTERNAL_H
#define PFS_IMGR_INTERNAL_H

#include <pthread.h>

#include "bucketstats.h"
#include "ilayout.h"
#include "imgr.h"
#include "sortedmap.h"
#include "swiftclient.h"
#include "utils.h"

/* ---- statistics (imgr.md 4.15), package IMGR ---------------------------- */
typedef struct imgr_stats {
  bs_log2 DeleteVolumeUsecs, GetConfigUsecs, GetStatsUsecs, GetVersionUsecs,
      GetVolumeInodeUsecs, GetVolumeListUsecs, GetVolumeUsecs, PostVolumeUsecs,
      PutVolumeUsecs, VolumeCheckPointUsecs, CheckPointReadUsecs, CheckPointWriteUsecs,
      FetchNonceRangeUsecs, FlushUsecs, PutInodeTableEntriesUsecs, GetInodeTableEntryUsecs,
      DeleteInodeTableEntryUsecs, VolumeStatusUsecs, SwiftObjectDeleteUsecs,
      SwiftObjectGetUsecs, SwiftObjectGetRangeUsecs, SwiftObjectGetTailUsecs,
      SwiftObjectPutUsecs;
  bs_total InodeTableCacheHits, InodeTableCacheMisses, ObjectDeletes, ObjectDeleteErrors,
      CheckPointFailures;
} imgr_stats;

/* ---- storage access (imgr_storage.c) ------------------------------------ */

/* A swift connection for one token, shared by reference count. */
typedef struct imgr_sconn {
  swift_conn *conn;
  char *token;
  unsigned refs;
} imgr_sconn;

/* The account URL and container parsed out of a volume's StorageURL. */
typedef struct imgr_store {
  char *storage_url;       /* as given: <account URL>/<container> */
  char *account_url;
  char *container;
} imgr_store;

int imgr_store_init(imgr_store *st, const char *storage_url);
void imgr_store_free(imgr_store *st);
/* A one-off connection with an explicit token (format, fresh reads). */
int imgr_store_connect(imgr_server *srv, const imgr_store *st, const char *token,
                       swift_conn **out);

/* ---- ickpt client (imgr_ickpt.c) ----------------------------------------- */
typedef struct imgr_ickpt imgr_ickpt;
int imgr_ickpt_create(const imgr_config *cfg, imgr_ickpt **out);
void imgr_ickpt_destroy(imgr_ickpt *k);
/* Majority read of the checkpoint of object0_url. -EACCES any 401. */
int imgr_ickpt_read(imgr_ickpt *k, const char *object0_url, const char *token,
                    char *buf, size_t buflen, size_t *len);
/* Two-phase majority write. */
int imgr_ickpt_write(imgr_ickpt *k, const char *object0_url, const char *token,
                     const char *text, size_t len);

/* ---- the server ----------------------------------------------------------- */

struct imgr_server {
  const imgr_config *cfg;
  pthread_mutex_t mu;
  imgr_volume **vols;       /* sorted by name */
  size_t nvols, capvols;
  sm_cache *cache;          /* shared inode-table page cache */
  imgr_ickpt *ickpt;        /* NULL without CheckPointIPAddrs */
  imgr_stats stats;
  bool stats_registered;
  ut_http_server *http;
  /* keepalive (imgr.md 2.5) */
  pthread_t ka_thread;
  bool ka_running, ka_stop;
  pthread_cond_t ka_cond;
  uint64_t ka_duration_ns, ka_deadline_ns;
};

/* ---- volumes --------------------------------------------------------------- */

typedef struct imgr_layout {   /* inode-table object accounting */
  uint64_t object_number, bytes_written, bytes_referenced;
} imgr_layout;

typedef struct imgr_u64vec {
  uint64_t *v;
  size_t n, cap;
} imgr_u64vec;
int imgr_u64vec_push(imgr_u64vec *a, uint64_t x);
bool imgr_u64vec_has(const imgr_u64vec *a, uint64_t x);
void imgr_u64vec_remove_front(imgr_u64vec *a, size_t n);

/* An object built by a checkpoint whose PUT has not succeeded yet; its
 * inode-table nodes are served from here until it is in Swift. */
typedef struct imgr_unwritten {
  uint64_t object_number;
  uint8_t *buf;
  size_t len;
} imgr_unwritten;

struct imgr_volume {
  imgr_server *srv;
  char *name;
  imgr_store store;
  unsigned refs;            /* srv->mu */
  bool served;              /* srv->mu: still in the map */

  pthread_mutex_t ckpt_mu, obj0_mu, mu;
  pthread_rwlock_t table_rw;
  pthread_cond_t cond;      /* with mu: checkpoint thread wake-ups, deletes */

  /* --- under mu --- */
  char *static_token;       /* "" = none */
  imgr_token_source tsrc;
  /* Connections of the tokens used most recently (most recent first), so
   * that rotating among mount tokens keeps their HTTP connections alive. */
#define IMGR_SCONN_CACHE 8
  imgr_sconn *sconn[IMGR_SCONN_CACHE];
  bool active;              /* loaded */
  bool dirty;
  ilayout_checkpoint_v1 committed;   /* what object 0 says */
  uint64_t inode_object_count, inode_bytes_written, inode_bytes_referenced;
  imgr_layout *layout;      /* inode-table objects */
  size_t nlayout, caplayout;
  imgr_u64vec pending;      /* to delete after the next commit */
  imgr_u64vec deletable;    /* committed as unreferenced: delete now */
  unsigned deletes_running; /* delete worker threads alive */
  unsigned deletes_in_flight;
  uint64_t deleted_since_ckpt;
  uint64_t nonce_next, nonce_left;   /* the checkpointer's private reserve */
  uint64_t cur_object;      /* object a running flush appends to, else 0 */
  uint8_t *cur_buf;
  size_t cur_len, cur_cap;
  imgr_unwritten *unwritten;
  size_t nunwritten;
  /* checkpoint thread */
  bool thread_running, thread_stop, flush_requested;
  pthread_t thread;

  sm_tree *table;           /* the inode table; internally locked */
};

/* token selection for a sequence of calls (imgr_storage.c) */
typedef struct imgr_vol_tok {
  imgr_sconn *sc;
  uint64_t tid;
  bool from_source;
} imgr_vol_tok;
int imgr_vol_tok_acquire(imgr_volume *vol, imgr_vol_tok *t);
/* rc: the result of the calls made (-EACCES drops the refused token). */
void imgr_vol_tok_release(imgr_volume *vol, imgr_vol_tok *t, int rc);
void imgr_volume_drop_conn(imgr_volume *vol);
/* Every object GET, PUT and DELETE of imgr goes through these: they add the
 * call's duration (retries included) to SwiftObject*Usecs (imgr.md 4.15),
 * the GET by its range kind. Same contract as swift_object_get/put/delete. */
int imgr_swift_get(imgr_server *srv, swift_conn *conn, const char *container,
                   const char *object, swift_range r, void *buf, size_t buflen, size_t *got);
int imgr_swift_put(imgr_server *srv, swift_conn *conn, const char *container,
                   const char *object, const void *buf, size_t len);
int imgr_swift_delete(imgr_server *srv, swift_conn *conn, const char *container,
                      const char *object);
/* The token source's mount counts (all 0 without one). Call with neither
 * srv->mu nor vol->mu held. */
void imgr_vol_mount_counts(imgr_volume *vol, imgr_mount_counts *out);
int imgr_store_write_checkpoint(imgr_server *srv, const imgr_store *st, swift_conn *conn,
                                const char *token, const ilayout_checkpoint_v1 *ck);

/* volume internals used across files */
int imgr_volume_checkpoint(imgr_volume *vol);          /* imgr_checkpoint.c */
int imgr_checkpoint_thread_start(imgr_volume *vol);
void imgr_checkpoint_thread_stop(imgr_volume *vol);
void imgr_gc_launch(imgr_volume *vol);                   /* imgr_gc.c */
/* Storage with token selection; 404 on delete counts as success. */
int imgr_vol_get(imgr_volume *vol, const char *object, swift_range r, void *buf,
                 size_t buflen, size_t *got);
int imgr_vol_put(imgr_volume *vol, const char *object, const void *buf, size_t len);
int imgr_vol_delete(imgr_volume *vol, uint64_t object_number);
/* Checkpoint text: read (ickpt when configured, else object 0) / write
 * (object 0, then ickpt). token NULL: volume token selection. */
int imgr_vol_read_checkpoint(imgr_volume *vol, swift_conn *explicit_conn,
                             const char *explicit_token, ilayout_checkpoint_v1 *out);
int imgr_vol_write_checkpoint(imgr_volume *vol, const ilayout_checkpoint_v1 *ck);
/* Reserve n nonces (obj0_mu taken inside): *first = old ReservedToNonce+1. */
int imgr_vol_reserve_nonces(imgr_volume *vol, uint64_t n, uint64_t *first);
/* A tree config with key codec kk and fixed-size values of vlen bytes
 * (inode table, directories, extent maps); callbacks left NULL. */
void imgr_tree_config(sm_config *c, sm_codec_kind kk, size_t vlen);
/* The last len bytes of an object (superblock, inode head) into a new
 * buffer (*out, caller frees). -EINVAL when len is 0, over 64 MiB or the
 * object is shorter. */
int imgr_vol_get_tail(imgr_volume *vol, uint64_t obj, uint64_t len, uint8_t **out);
/* Inode-table tree configuration for this volume. */
void imgr_table_config(imgr_volume *vol, sm_config *cfg);
imgr_layout *imgr_layout_find(imgr_volume *vol, uint64_t object_number);
int imgr_layout_add(imgr_volume *vol, uint64_t object_number, uint64_t bytes);
bool imgr_stat_now(uint64_t *t0);
void imgr_stat_done(bs_log2 *s, uint64_t t0);

/* Parsers of untrusted bytes (imgr_parse.c). */
/* A stored B+tree node: whether it is a leaf, else its first child. */
int imgr_node_first_child(const uint8_t *buf, size_t len, bool is_root, bool *leaf,
                          sm_ref *child);
/* Whether an Accept header lists text/html as a media type. */
bool imgr_accepts_html(const char *accept);

/* HTTP (imgr_http.c) and HTML (imgr_html.c) */
int imgr_http_start(imgr_server *srv);
/* The start-up self-check (imgr.md 2.1): GET http://addr:port/version up
 * to IMGR_HTTP_UP_CHECK_MAX_RETRIES times, IMGR_HTTP_UP_CHECK_DELAY_NS
 * apart, each try bounded by IMGR_HTTP_UP_CHECK_TIMEOUT_MS. 0 on the first
 * 200, else -EIO and "startHTTPServerUpCheckMaxRetries (10) exceeded" is
 * logged. */
#define IMGR_HTTP_UP_CHECK_MAX_RETRIES 10
#define IMGR_HTTP_UP_CHECK_DELAY_NS 100000000ull
#define IMGR_HTTP_UP_CHECK_TIMEOUT_MS 1000L
int imgr_http_up_check(const char *addr, uint16_t port);
void imgr_keepalive_stop(imgr_server *srv);
char *imgr_html_page(const char *kind, const char *title, json_t *data, const char *extra);

#endif
