/*
 * iswift: the emulator's HTTP front end and data model (iswift.md).
 *
 * HTTP is libmicrohttpd used directly, not utils' ut_http server helper,
 * because iswift needs what that helper's whole-body model hides: the raw
 * path with its trailing slash (it changes the level, iswift.md 4.1),
 * repeated request headers and any number of reply headers, bodies up to
 * MaxObjectSize streamed out of a shared buffer without a copy, and
 * fault injection that drops the connection or cuts a body short.
 *
 * Locking: one mutex (s->mu) guards the data model and is held only while a
 * request reads or changes it; request bodies are received before it is
 * taken and reply bodies are sent from reference-counted buffers after it
 * is released, so no lock is held across network I/O. Each request is still
 * atomic with respect to the others (iswift.md 3).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>

#include "iswift.h"
#include "iswift_disk.h"
#include "iswift_internal.h"
#include "logger.h"

#define TOKEN_PREFIX "AUTH_tk0123456789abcde012345678"

/* ---- data model -------------------------------------------------------- */

/* An object's bytes: in memory right after this struct, or in its store
 * file mapped read-only (a streamed PUT: the bytes are kept once, in the
 * page cache, not a second time in the heap). */
struct isw_blob {
  atomic_long refs;
  size_t len;
  unsigned char *data;
  void *map; /* the mapping data points into, or NULL */
  size_t map_len;
};

static isw_blob *blob_new(size_t len) {
  isw_blob *b = malloc(sizeof *b + len + 1);
  if (b) *b = (isw_blob){.refs = 1, .len = len, .data = (unsigned char *)(b + 1)};
  return b;
}

/* The len bytes at data inside a mapping, which the blob then owns: NULL
 * (and the mapping gone) when out of memory. */
static isw_blob *blob_of_map(void *map, size_t map_len, const unsigned char *data, size_t len) {
  isw_blob *b = malloc(sizeof *b);
  if (!b) {
    munmap(map, map_len);
    return NULL;
  }
  *b = (isw_blob){.refs = 1, .len = len, .data = (unsigned char *)data, .map = map,
                  .map_len = map_len};
  return b;
}

/* The len data bytes of a version 2 record file (after its magic). The
 * pages are mapped in at once (MAP_POPULATE, here and in the loader):
 * taking them one fault at a time while serving GETs made a cold
 * sequential read of the file system half as fast, for 0.2 s of CPU per
 * GiB stored here. */
static isw_blob *blob_map(int fd, size_t len) {
  size_t map_len = ISW_RECORD_MAGIC_LEN + len;
  void *m = mmap(NULL, map_len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (m == MAP_FAILED) return NULL;
  return blob_of_map(m, map_len, (unsigned char *)m + ISW_RECORD_MAGIC_LEN, len);
}
static isw_blob *blob_ref(isw_blob *b) {
  atomic_fetch_add(&b->refs, 1);
  return b;
}
static void blob_unref(isw_blob *b) {
  if (!b || atomic_fetch_sub(&b->refs, 1) != 1) return;
  if (b->map) munmap(b->map, b->map_len);
  free(b);
}

void isw_hm_free(isw_hdrmap *h) {
  for (size_t i = 0; i < h->n; i++) {
    free(h->names[i]);
    free(h->values[i]);
  }
  free(h->names);
  free(h->values);
  memset(h, 0, sizeof *h);
}

int isw_hm_add(isw_hdrmap *h, const char *name, const char *value) {
  if (h->n == h->cap) {
    size_t nc = h->cap ? 2 * h->cap : 8;
    char **nn = realloc(h->names, nc * sizeof *nn);
    if (!nn) return -ENOMEM;
    h->names = nn;
    char **nv = realloc(h->values, nc * sizeof *nv);
    if (!nv) return -ENOMEM;
    h->values = nv;
    h->cap = nc;
  }
  char *n = strdup(name), *v = strdup(value);
  if (!n || !v) {
    free(n);
    free(v);
    return -ENOMEM;
  }
  h->names[h->n] = n;
  h->values[h->n] = v;
  h->n++;
  return 0;
}

static void hm_remove_if(isw_hdrmap *h, bool (*pred)(const char *name, const void *arg),
                         const void *arg) {
  size_t k = 0;
  for (size_t i = 0; i < h->n; i++) {
    if (pred(h->names[i], arg)) {
      free(h->names[i]);
      free(h->values[i]);
    } else {
      h->names[k] = h->names[i];
      h->values[k] = h->values[i];
      k++;
    }
  }
  h->n = k;
}

static bool name_is(const char *name, const void *arg) { return strcasecmp(name, arg) == 0; }
static bool name_has_prefix(const char *name, const void *arg) {
  return strncasecmp(name, arg, strlen(arg)) == 0;
}

static const char *hm_get(const isw_hdrmap *h, const char *name) {
  for (size_t i = 0; i < h->n; i++)
    if (strcasecmp(h->names[i], name) == 0) return h->values[i];
  return NULL;
}

typedef struct {
  char *name;
  isw_hdrmap h;
  isw_blob *data;
  char etag[33];
  double ts;
} object;

typedef struct {
  char *name;
  isw_hdrmap h;
  void **v; /* object *, sorted by name */
  size_t n, cap;
  uint64_t bytes;
  double ts;
} container;

typedef struct {
  char *name;
  isw_hdrmap h;
  void **v; /* container *, sorted by name */
  size_t n, cap;
  double ts;
} account;

/* Sorted vectors of structs whose first member is the name. */
static size_t sv_lower(void *const *v, size_t n, const char *name) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(*(char *const *)v[mid], name) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}
static void *sv_find(void *const *v, size_t n, const char *name) {
  size_t i = sv_lower(v, n, name);
  return i < n && strcmp(*(char *const *)v[i], name) == 0 ? v[i] : NULL;
}
static size_t sv_upper(void *const *v, size_t n, const char *name) {
  size_t i = sv_lower(v, n, name);
  return i < n && strcmp(*(char *const *)v[i], name) == 0 ? i + 1 : i;
}
static int sv_insert(void ***v, size_t *n, size_t *cap, void *item) {
  if (*n == *cap) {
    size_t nc = *cap ? 2 * *cap : 16;
    void **nv = realloc(*v, nc * sizeof *nv);
    if (!nv) return -ENOMEM;
    *v = nv;
    *cap = nc;
  }
  size_t i = sv_lower(*v, *n, *(char **)item);
  memmove(*v + i + 1, *v + i, (*n - i) * sizeof **v);
  (*v)[i] = item;
  (*n)++;
  return 0;
}
static void sv_remove(void **v, size_t *n, const char *name) {
  size_t i = sv_lower(v, *n, name);
  if (i < *n && strcmp(*(char **)v[i], name) == 0) {
    memmove(v + i, v + i + 1, (*n - i - 1) * sizeof *v);
    (*n)--;
  }
}

static void object_free(object *o) {
  if (!o) return;
  free(o->name);
  isw_hm_free(&o->h);
  blob_unref(o->data);
  free(o);
}
static void container_free(container *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) object_free(c->v[i]);
  free(c->v);
  free(c->name);
  isw_hm_free(&c->h);
  free(c);
}
static void account_free(account *a) {
  if (!a) return;
  for (size_t i = 0; i < a->n; i++) container_free(a->v[i]);
  free(a->v);
  free(a->name);
  isw_hm_free(&a->h);
  free(a);
}

struct iswift {
  iswift_config cfg;
  struct MHD_Daemon *mhd;
  uint16_t port;
  pthread_mutex_t mu; /* guards everything below */
  uint32_t nonce;
  void **accts;       /* account *, sorted */
  size_t nacct, acap;
  uint64_t mem_used;  /* bytes of object contents held */
  iswift_faults faults;
  uint64_t inflight;  /* bytes reserved by request bodies being received */
  atomic_uint_fast64_t requests;
  atomic_uint_fast64_t connections;
};

static double now_ts(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A percentage in [0, 100) for the fault dice. */
static double dice(void) { return (double)arc4random_uniform(1000000) / 10000.0; }

/* ---- requests and replies --------------------------------------------- */

static void md5_hex_of(const unsigned char md[16], char out[33]) {
  for (unsigned i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void md5_hex(const unsigned char *d, size_t n, char out[33]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned ml = 0;
  EVP_Digest(d, n, md, &ml, EVP_md5(), NULL);
  md5_hex_of(md, out);
}

static void md5_final_hex(EVP_MD_CTX *m, char out[33]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned ml = 0;
  EVP_DigestFinal_ex(m, md, &ml);
  md5_hex_of(md, out);
}

typedef struct {
  bool started;
  bool too_large;   /* over MaxObjectSize: 413 */
  bool no_space;    /* over MaxMemoryBytes: 507 */
  bool has_length;  /* Content-Length or chunked framing was given */
  isw_blob *body;   /* becomes the object's contents on PUT, without a copy */
  size_t len, cap;  /* cap bytes are reserved in s->inflight */
  /* With a directory store a PUT body goes to its store file as it
   * arrives instead of into body (isw_disk_incoming_*): tmp is that file
   * (NULL until the first bytes, and again once it is the object's), fd
   * the open file (-1 when none), store_failed a write that failed (507). */
  bool stream, store_failed;
  char *tmp;
  int fd;
  isw_blob *mapped; /* the body's bytes in tmp, once complete */
  /* A PUT body's MD5, updated as the bytes arrive: its ETag is then ready
   * without a pass over the whole body under s->mu. Only when emulating
   * real Swift: the original neither checks nor shows ETags. */
  EVP_MD_CTX *md5;
  char etag[33];    /* its hex, set when the body is complete */
} reqctx;

typedef struct {
  const char *str; /* owned copy when blob is NULL */
  size_t len;
  isw_blob *blob;
  size_t off;
} segment;

typedef struct {
  int status;
  isw_hdrmap h;
  char *text; /* owned */
  size_t text_len;
  segment *segs;
  size_t nsegs;
  uint64_t total;
  bool has_stream;
  bool truncate;
} reply;

static void reply_free(reply *r) {
  isw_hm_free(&r->h);
  free(r->text);
  for (size_t i = 0; i < r->nsegs; i++) {
    if (r->segs[i].blob)
      blob_unref(r->segs[i].blob);
    else
      free((char *)r->segs[i].str);
  }
  free(r->segs);
  memset(r, 0, sizeof *r);
}

static int reply_seg_text(reply *r, char *owned, size_t len) {
  segment *ns = realloc(r->segs, (r->nsegs + 1) * sizeof *ns);
  if (!ns) {
    free(owned);
    return -ENOMEM;
  }
  r->segs = ns;
  r->segs[r->nsegs++] = (segment){.str = owned, .len = len};
  r->total += len;
  r->has_stream = true;
  return 0;
}

static int reply_seg_blob(reply *r, isw_blob *b, size_t off, size_t len) {
  segment *ns = realloc(r->segs, (r->nsegs + 1) * sizeof *ns);
  if (!ns) return -ENOMEM;
  r->segs = ns;
  r->segs[r->nsegs++] = (segment){.blob = blob_ref(b), .off = off, .len = len};
  r->total += len;
  r->has_stream = true;
  return 0;
}

typedef struct {
  reply r;
  uint64_t cut; /* stop with an error at this offset (truncation fault) */
} stream;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  stream *st = cls;
  if (pos >= st->cut) return MHD_CONTENT_READER_END_WITH_ERROR;
  uint64_t base = 0;
  for (size_t i = 0; i < st->r.nsegs; i++) {
    segment *sg = &st->r.segs[i];
    if (pos < base + sg->len) {
      size_t off = (size_t)(pos - base), n = sg->len - off;
      if (n > max) n = max;
      if (pos + n > st->cut) n = (size_t)(st->cut - pos);
      memcpy(buf, (sg->blob ? (const char *)sg->blob->data + sg->off : sg->str) + off, n);
      return (ssize_t)n;
    }
    base += sg->len;
  }
  return MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_free(void *cls) {
  stream *st = cls;
  reply_free(&st->r);
  free(st);
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, reply *r) {
  struct MHD_Response *resp;
  if (r->has_stream) {
    stream *st = malloc(sizeof *st);
    if (!st) {
      reply_free(r);
      return MHD_NO;
    }
    st->r = *r;
    st->cut = r->truncate ? r->total / 2 : UINT64_MAX;
    memset(r, 0, sizeof *r);
    resp = MHD_create_response_from_callback(st->r.total, 64 * 1024, stream_read, st,
                                             stream_free);
    if (!resp) {
      stream_free(st);
      return MHD_NO;
    }
    r = &st->r; /* headers below come from the stream's copy */
  } else {
    resp = MHD_create_response_from_buffer(r->text_len, r->text ? r->text : (char *)"",
                                           r->text ? MHD_RESPMEM_MUST_FREE
                                                   : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
      reply_free(r);
      return MHD_NO;
    }
    r->text = NULL;
  }
  for (size_t i = 0; i < r->h.n; i++)
    MHD_add_response_header(resp, r->h.names[i], r->h.values[i]);
  int status = r->status;
  if (!r->has_stream) reply_free(r);
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* ---- header rules -------------------------------------------------------- */

static const char *const never_stored[] = {"Accept", "Accept-Encoding", "User-Agent",
                                           "Content-Length", "Host", "Connection",
                                           "Transfer-Encoding", "Expect", "Keep-Alive",
                                           "Te", "Upgrade"};

static bool storable(const iswift *s, const char *name, const char *type) {
  for (size_t i = 0; i < sizeof never_stored / sizeof *never_stored; i++)
    if (strcasecmp(name, never_stored[i]) == 0) return false;
  if (!s->cfg.emulate_real_swift) return true;
  /* real Swift keeps user metadata and a few system headers only */
  char meta[32];
  snprintf(meta, sizeof meta, "X-%s-Meta-", type);
  static const char *const sys[] = {"Content-Type", "Content-Encoding", "Content-Disposition",
                                    "X-Object-Manifest", "X-Delete-At", "X-Container-Read",
                                    "X-Container-Write", "X-Versions-Location"};
  if (strncasecmp(name, meta, strlen(meta)) == 0) return true;
  for (size_t i = 0; i < sizeof sys / sizeof *sys; i++)
    if (strcasecmp(name, sys[i]) == 0) return true;
  return false;
}

/* Merge request headers into stored ones (iswift.md 6): each named header's
 * values replace the stored list; all-empty values delete it. Real Swift
 * also honours X-Remove-<Type>-Meta-<Name>. */
static int merge_headers(const iswift *s, isw_hdrmap *stored, const isw_hdrmap *req,
                         const char *type) {
  char rm[32];
  snprintf(rm, sizeof rm, "X-Remove-%s-Meta-", type);
  for (size_t i = 0; i < req->n; i++) {
    const char *name = req->names[i];
    bool seen = false;
    for (size_t k = 0; k < i && !seen; k++) seen = strcasecmp(req->names[k], name) == 0;
    if (seen) continue;
    if (s->cfg.emulate_real_swift && strncasecmp(name, rm, strlen(rm)) == 0) {
      char target[512];
      snprintf(target, sizeof target, "X-%s-Meta-%s", type, name + strlen(rm));
      hm_remove_if(stored, name_is, target);
      continue;
    }
    if (!storable(s, name, type)) continue;
    hm_remove_if(stored, name_is, name);
    for (size_t k = i; k < req->n; k++)
      if (strcasecmp(req->names[k], name) == 0 && *req->values[k] &&
          isw_hm_add(stored, name, req->values[k]))
        return -ENOMEM;
  }
  return 0;
}

/* Real Swift's metadata limits (constraints.py defaults). */
static bool meta_ok(const isw_hdrmap *req, const char *type) {
  char meta[32];
  snprintf(meta, sizeof meta, "X-%s-Meta-", type);
  size_t count = 0, total = 0, pl = strlen(meta);
  for (size_t i = 0; i < req->n; i++) {
    if (strncasecmp(req->names[i], meta, pl) != 0) continue;
    size_t nl = strlen(req->names[i]) - pl, vl = strlen(req->values[i]);
    if (nl == 0 || nl > 128 || vl > 256) return false;
    count++;
    total += nl + vl;
  }
  return count <= 90 && total <= 4096;
}

static int hm_copy(isw_hdrmap *dst, const isw_hdrmap *src) {
  for (size_t i = 0; i < src->n; i++)
    if (isw_hm_add(dst, src->names[i], src->values[i])) return -ENOMEM;
  return 0;
}

static int add_u64(reply *r, const char *name, uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "%" PRIu64, v);
  return isw_hm_add(&r->h, name, b);
}

static void http_date(double ts, char *buf, size_t len) {
  time_t t = (time_t)ts;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void iso_date(double ts, char *buf, size_t len) {
  time_t t = (time_t)ts;
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, len - n, ".%06d", (int)((ts - (double)t) * 1e6));
}

/* ---- account / container / object handlers -------------------------------- */

typedef struct {
  iswift *s;
  const char *method;
  isw_path p;
  isw_hdrmap req;          /* request headers, canonical names */
  struct MHD_Connection *conn;
  reqctx *rc;
  reply *r;
  bool strict;
} call;

static account *find_account(call *c) { return sv_find(c->s->accts, c->s->nacct, c->p.account); }

static account *new_account(call *c, int *err) {
  account *a = calloc(1, sizeof *a);
  if (!a || !(a->name = strdup(c->p.account)) ||
      sv_insert(&c->s->accts, &c->s->nacct, &c->s->acap, a)) {
    if (a) free(a->name);
    free(a);
    *err = -ENOMEM;
    return NULL;
  }
  a->ts = now_ts();
  return a;
}

static int account_counts(const account *a, uint64_t *objects, uint64_t *bytes) {
  *objects = *bytes = 0;
  for (size_t i = 0; a && i < a->n; i++) {
    container *ct = a->v[i];
    *objects += ct->n;
    *bytes += ct->bytes;
  }
  return 0;
}

/* Appends name[0..nl) and a newline to the growing text body. */
static int text_append(char **text, size_t *len, size_t *cap, const char *name, size_t nl) {
  if (*len + nl + 2 > *cap) {
    size_t nc = 2 * (*len + nl + 2);
    char *nt = realloc(*text, nc);
    if (!nt) return -ENOMEM;
    *text = nt;
    *cap = nc;
  }
  memcpy(*text + *len, name, nl);
  *len += nl;
  (*text)[(*len)++] = '\n';
  return 0;
}

/* The JSON entry of one listed object or container. */
static json_t *listing_entry(const void *item, bool of_objects) {
  char lm[40];
  if (of_objects) {
    const object *o = item;
    const char *ct = hm_get(&o->h, "Content-Type");
    iso_date(o->ts, lm, sizeof lm);
    return json_pack("{s:s,s:s,s:I,s:s,s:s}", "name", o->name, "hash", o->etag, "bytes",
                     (json_int_t)o->data->len, "content_type",
                     ct ? ct : "application/octet-stream", "last_modified", lm);
  }
  const container *ct = item;
  iso_date(ct->ts, lm, sizeof lm);
  return json_pack("{s:s,s:I,s:I,s:s}", "name", ct->name, "count", (json_int_t)ct->n,
                   "bytes", (json_int_t)ct->bytes, "last_modified", lm);
}

/* The listing body of an account or container: names after marker (and,
 * emulating real Swift, within prefix, before end_marker, rolled up at the
 * delimiter). */
static int listing(call *c, void *const *v, size_t n, bool of_objects, uint64_t server_limit) {
  isw_listing lp;
  struct MHD_Connection *conn = c->conn;
  int rc = isw_parse_listing(
      MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "marker"),
      MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "end_marker"),
      MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "prefix"),
      MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "delimiter"),
      MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit"),
      MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "format"), server_limit,
      c->strict, &lp);
  if (rc == -EINVAL) return 400;
  if (rc == -E2BIG) return 412;
  size_t i = lp.marker ? sv_upper(v, n, lp.marker) : 0;
  if (lp.prefix && (!lp.marker || strcmp(lp.prefix, lp.marker) > 0))
    i = sv_lower(v, n, lp.prefix);
  size_t plen = lp.prefix ? strlen(lp.prefix) : 0;
  json_t *arr = lp.json ? json_array() : NULL;
  size_t cap = 0, len = 0, count = 0;
  char *text = NULL;
  for (; i < n && count < lp.limit && !rc; i++) {
    const char *name = *(char *const *)v[i];
    if (lp.prefix && strncmp(name, lp.prefix, plen) != 0) break;
    if (lp.end_marker && strcmp(name, lp.end_marker) >= 0) break;
    size_t dl = isw_subdir_len(name, plen, lp.delimiter);
    if (dl) {
      /* Real Swift lists the subdir once in place of every name under it,
       * except when it equals the marker: the page before ended with it. */
      size_t k = i + 1;
      while (k < n && strncmp(*(char *const *)v[k], name, dl) == 0) k++;
      bool is_marker = lp.marker && strlen(lp.marker) == dl && !strncmp(lp.marker, name, dl);
      i = k - 1;
      if (is_marker) continue;
      count++;
      if (arr) {
        json_t *e = json_pack("{s:s%}", "subdir", name, dl);
        rc = !e || json_array_append_new(arr, e) ? -ENOMEM : 0;
      } else {
        rc = text_append(&text, &len, &cap, name, dl);
      }
      continue;
    }
    count++;
    if (arr) {
      json_t *e = listing_entry(v[i], of_objects);
      rc = !e || json_array_append_new(arr, e) ? -ENOMEM : 0;
    } else {
      rc = text_append(&text, &len, &cap, name, strlen(name));
    }
  }
  if (rc) {
    json_decref(arr);
    free(text);
    return 500;
  }
  if (arr) {
    c->r->text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!c->r->text) return 500;
    c->r->text_len = strlen(c->r->text);
    isw_hm_add(&c->r->h, "Content-Type", "application/json; charset=utf-8");
    return 200;
  }
  c->r->text = text;
  c->r->text_len = len;
  if (!count) return 204;
  isw_hm_add(&c->r->h, "Content-Type", "text/plain; charset=utf-8");
  return 200;
}

static int do_account(call *c) {
  iswift *s = c->s;
  account *a = find_account(c);
  const char *m = c->method;
  int err = 0;
  if (strcmp(m, "PUT") == 0) {
    bool created = !a;
    if (!a && !(a = new_account(c, &err))) return 500;
    if (merge_headers(s, &a->h, &c->req, "Account")) return 500;
    isw_disk_save_meta(s->cfg.store_dir, a->name, NULL, &a->h);
    return created ? 201 : 202;
  }
  if (strcmp(m, "POST") == 0) {
    if (!a) return 404;
    if (c->strict && !meta_ok(&c->req, "Account")) return 400;
    if (merge_headers(s, &a->h, &c->req, "Account")) return 500;
    isw_disk_save_meta(s->cfg.store_dir, a->name, NULL, &a->h);
    return 204;
  }
  if (strcmp(m, "DELETE") == 0) {
    if (!a) return 404;
    if (a->n) return 409;
    isw_disk_remove(s->cfg.store_dir, a->name, NULL, NULL);
    sv_remove(s->accts, &s->nacct, a->name);
    account_free(a);
    return 204;
  }
  /* GET / HEAD: real Swift (account_autocreate) shows a missing account as empty */
  if (!a && !c->strict) return 404;
  if (a && hm_copy(&c->r->h, &a->h)) return 500;
  if (c->strict) {
    uint64_t objs, bytes;
    account_counts(a, &objs, &bytes);
    add_u64(c->r, "X-Account-Container-Count", a ? a->n : 0);
    add_u64(c->r, "X-Account-Object-Count", objs);
    add_u64(c->r, "X-Account-Bytes-Used", bytes);
  }
  if (strcmp(m, "HEAD") == 0) return 204;
  return listing(c, a ? a->v : NULL, a ? a->n : 0, false, s->cfg.account_listing_limit);
}

static int do_container(call *c) {
  iswift *s = c->s;
  account *a = find_account(c);
  container *ct = a ? sv_find(a->v, a->n, c->p.container) : NULL;
  const char *m = c->method;
  int err = 0;
  if (strcmp(m, "PUT") == 0) {
    if (!a) {
      if (!c->strict) return 403;
      if (!(a = new_account(c, &err))) return 500;
      isw_disk_save_meta(s->cfg.store_dir, a->name, NULL, &a->h);
    }
    if (c->strict && !meta_ok(&c->req, "Container")) return 400;
    bool created = !ct;
    if (!ct) {
      ct = calloc(1, sizeof *ct);
      if (!ct || !(ct->name = strdup(c->p.container)) || sv_insert(&a->v, &a->n, &a->cap, ct)) {
        if (ct) free(ct->name);
        free(ct);
        return 500;
      }
      ct->ts = now_ts();
    }
    if (merge_headers(s, &ct->h, &c->req, "Container")) return 500;
    isw_disk_save_meta(s->cfg.store_dir, a->name, ct->name, &ct->h);
    return created ? 201 : 202;
  }
  if (!ct) return 404;
  if (strcmp(m, "POST") == 0) {
    if (c->strict && !meta_ok(&c->req, "Container")) return 400;
    if (merge_headers(s, &ct->h, &c->req, "Container")) return 500;
    isw_disk_save_meta(s->cfg.store_dir, a->name, ct->name, &ct->h);
    return 204;
  }
  if (strcmp(m, "DELETE") == 0) {
    if (ct->n) return 409;
    isw_disk_remove(s->cfg.store_dir, a->name, ct->name, NULL);
    sv_remove(a->v, &a->n, ct->name);
    container_free(ct);
    return 204;
  }
  if (hm_copy(&c->r->h, &ct->h)) return 500;
  if (c->strict) {
    add_u64(c->r, "X-Container-Object-Count", ct->n);
    add_u64(c->r, "X-Container-Bytes-Used", ct->bytes);
  }
  if (strcmp(m, "HEAD") == 0) return 204;
  return listing(c, ct->v, ct->n, true, s->cfg.container_listing_limit);
}

/* A new, empty object named name in ct, or NULL (no memory). */
static object *object_add(container *ct, const char *name) {
  object *o = calloc(1, sizeof *o);
  if (!o || !(o->name = strdup(name)) || sv_insert(&ct->v, &ct->n, &ct->cap, o)) {
    if (o) free(o->name);
    free(o);
    return NULL;
  }
  return o;
}

/* A streamed PUT body becomes the object's stored record: the fields of
 * its headers (the object's merged with the request's) appended, the file
 * renamed into place. *b its bytes (mapped before s->mu was taken), *h the
 * headers. */
static int object_store_streamed(call *c, account *a, container *ct, const object *o,
                                 isw_blob **b, isw_hdrmap *h) {
  reqctx *rq = c->rc;
  *h = (isw_hdrmap){0};
  if ((o && !c->strict && hm_copy(h, &o->h)) || merge_headers(c->s, h, &c->req, "Object")) {
    isw_hm_free(h);
    return 500;
  }
  if (isw_disk_incoming_commit(c->s->cfg.store_dir, rq->fd, rq->tmp, a->name, ct->name,
                               c->p.object, h, rq->len)) {
    isw_hm_free(h);
    return 507;
  }
  free(rq->tmp);
  rq->tmp = NULL; /* the object's now */
  *b = rq->mapped;
  rq->mapped = NULL;
  return 0;
}

static int object_put(call *c, account *a, container *ct, object *o) {
  iswift *s = c->s;
  reqctx *rq = c->rc;
  if (rq->too_large) return 413;
  if (c->strict && !rq->has_length) return 411;
  if (c->strict && !meta_ok(&c->req, "Object")) return 400;
  const char *etag = rq->etag;
  if (rq->no_space || rq->store_failed) return 507;
  if (!rq->tmp && !rq->body && !(rq->body = blob_new(0))) return 500;
  const char *want = hm_get(&c->req, "Etag");
  if (c->strict && want) {
    char w[40];
    snprintf(w, sizeof w, "%s", want);
    size_t wl = strlen(w);
    if (wl == 34 && w[0] == '"' && w[33] == '"') {
      memmove(w, w + 1, 32);
      w[32] = '\0';
    }
    if (strcasecmp(w, etag) != 0) return 422;
  }
  uint64_t old = o ? o->data->len : 0;
  /* the body's reservation is still counted in inflight: compare without it */
  if (s->mem_used - old + rq->len > s->cfg.max_memory) return 507;
  bool streamed = rq->tmp != NULL;
  isw_hdrmap h = {0};
  isw_blob *b = rq->body;
  if (streamed) {
    int status = object_store_streamed(c, a, ct, o, &b, &h);
    if (status) return status;
  } else {
    b->len = rq->len;
  }
  if (!o && !(o = object_add(ct, c->p.object))) {
    if (streamed) {
      isw_disk_remove(s->cfg.store_dir, a->name, ct->name, c->p.object);
      blob_unref(b);
      isw_hm_free(&h);
    }
    return 500;
  }
  /* real Swift: an overwrite replaces all metadata; streamed, h already
   * holds the merged headers */
  if (c->strict || streamed) isw_hm_free(&o->h);
  if (streamed) o->h = h;
  blob_unref(o->data);
  o->data = b;
  if (!streamed) rq->body = NULL; /* now the object's */
  s->inflight -= rq->cap; /* the reservation becomes mem_used */
  rq->cap = 0;
  memcpy(o->etag, etag, sizeof o->etag);
  o->ts = now_ts();
  ct->bytes = ct->bytes - old + rq->len;
  s->mem_used = s->mem_used - old + rq->len;
  if (!streamed) {
    if (merge_headers(s, &o->h, &c->req, "Object")) return 500;
    isw_disk_save_object(s->cfg.store_dir, a->name, ct->name, o->name, &o->h, b->data, b->len);
  }
  if (c->strict) isw_hm_add(&c->r->h, "Etag", etag);
  return 201;
}

static int object_get(call *c, object *o, bool head) {
  reply *r = c->r;
  if (hm_copy(&r->h, &o->h)) return 500;
  const char *stored_ct = hm_get(&o->h, "Content-Type");
  if (c->strict) {
    char lm[64];
    http_date(o->ts, lm, sizeof lm);
    isw_hm_add(&r->h, "Etag", o->etag);
    isw_hm_add(&r->h, "Last-Modified", lm);
    isw_hm_add(&r->h, "Accept-Ranges", "bytes");
    if (!stored_ct) isw_hm_add(&r->h, "Content-Type", "application/octet-stream");
  } else if (!head) {
    /* the original adds this even when a Content-Type is stored */
    isw_hm_add(&r->h, "Content-Type", "application/octet-stream");
  }
  uint64_t size = o->data->len;
  if (head) {
    /* the stream's length becomes Content-Length; a HEAD sends no body */
    reply_seg_blob(r, o->data, 0, o->data->len);
    return 200;
  }
  isw_range rg[ISW_MAX_RANGES];
  size_t n = 0;
  int rc = isw_parse_range(MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Range"),
                           size, c->strict, rg, &n);
  if (rc == -EINVAL) return 400;
  if (rc == -ERANGE) {
    char cr[48];
    snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
    isw_hm_add(&r->h, "Content-Range", cr);
    return 416;
  }
  if (rc == ISW_RANGE_NONE) {
    reply_seg_blob(r, o->data, 0, size);
    return 200;
  }
  char cr[80];
  if (n == 1) {
    snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, rg[0].first, rg[0].last,
             size);
    isw_hm_add(&r->h, "Content-Range", cr);
    reply_seg_blob(r, o->data, rg[0].first, rg[0].last - rg[0].first + 1);
    return 206;
  }
  unsigned char rnd[16];
  char boundary[33];
  arc4random_buf(rnd, sizeof rnd);
  for (size_t i = 0; i < 16; i++) snprintf(boundary + 2 * i, 3, "%02x", rnd[i]);
  const char *part_ct = c->strict && stored_ct ? stored_ct : "application/octet-stream";
  hm_remove_if(&r->h, name_is, "Content-Type");
  char mct[80];
  snprintf(mct, sizeof mct, "multipart/byteranges; boundary=%s", boundary);
  isw_hm_add(&r->h, "Content-Type", mct);
  for (size_t i = 0; i < n; i++) {
    char *part;
    int pl = asprintf(&part,
                      "--%s\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64
                      "/%" PRIu64 "\r\n\r\n",
                      boundary, part_ct, rg[i].first, rg[i].last, size);
    if (pl < 0 || reply_seg_text(r, part, (size_t)pl) ||
        reply_seg_blob(r, o->data, rg[i].first, rg[i].last - rg[i].first + 1) ||
        reply_seg_text(r, strdup("\r\n"), 2))
      return 500;
  }
  char *end;
  int el = asprintf(&end, "--%s--", boundary);
  if (el < 0 || reply_seg_text(r, end, (size_t)el)) return 500;
  return 206;
}

static int do_object(call *c) {
  iswift *s = c->s;
  account *a = find_account(c);
  container *ct = a ? sv_find(a->v, a->n, c->p.container) : NULL;
  object *o = ct ? sv_find(ct->v, ct->n, c->p.object) : NULL;
  const char *m = c->method;
  if (strcmp(m, "PUT") == 0) {
    if (!ct) return c->strict ? 404 : 403;
    return object_put(c, a, ct, o);
  }
  if (!o) return 404;
  if (strcmp(m, "POST") == 0) {
    if (c->strict) {
      if (!meta_ok(&c->req, "Object")) return 400;
      /* real Swift: POST replaces all user metadata */
      hm_remove_if(&o->h, name_has_prefix, "X-Object-Meta-");
    }
    if (merge_headers(s, &o->h, &c->req, "Object")) return 500;
    isw_disk_save_object(s->cfg.store_dir, a->name, ct->name, o->name, &o->h, o->data->data,
                         o->data->len);
    return c->strict ? 202 : 204;
  }
  if (strcmp(m, "DELETE") == 0) {
    isw_disk_remove(s->cfg.store_dir, a->name, ct->name, o->name);
    ct->bytes -= o->data->len;
    s->mem_used -= o->data->len;
    sv_remove(ct->v, &ct->n, o->name);
    object_free(o);
    return 204;
  }
  return object_get(c, o, strcmp(m, "HEAD") == 0);
}

/* ---- dispatch ------------------------------------------------------------- */

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
  (void)kind;
  isw_hdrmap *h = cls;
  char name[256];
  snprintf(name, sizeof name, "%s", key);
  isw_canonical_header(name);
  return isw_hm_add(h, name, value ? value : "") ? MHD_NO : MHD_YES;
}

static void current_token(iswift *s, char *buf, size_t len) {
  pthread_mutex_lock(&s->mu);
  snprintf(buf, len, TOKEN_PREFIX "%08" PRIx32, s->nonce);
  pthread_mutex_unlock(&s->mu);
}

static int do_auth(iswift *s, call *c) {
  const char *user = hm_get(&c->req, "X-Auth-User");
  const char *key = hm_get(&c->req, "X-Auth-Key");
  if (c->strict && (!user || !*user)) {
    user = hm_get(&c->req, "X-Storage-User");
    key = hm_get(&c->req, "X-Storage-Pass");
  }
  if (!user || !*user || !key || !*key) return 401;
  char tok[64], url[1024];
  current_token(s, tok, sizeof tok);
  size_t ul = strcspn(user, ":");
  bool v6 = strchr(s->cfg.addr, ':') != NULL;
  snprintf(url, sizeof url, "http://%s%s%s:%u/v1/AUTH_%.*s", v6 ? "[" : "", s->cfg.addr,
           v6 ? "]" : "", (unsigned)s->port, (int)ul, user);
  isw_hm_add(&c->r->h, "X-Auth-Token", tok);
  isw_hm_add(&c->r->h, "X-Storage-Url", url);
  if (c->strict) isw_hm_add(&c->r->h, "X-Storage-Token", tok);
  return 200;
}

static int do_info(iswift *s, call *c) {
  int n = asprintf(&c->r->text,
                   "{\"swift\": {\"max_account_name_length\": %" PRIu64
                   ",\"max_container_name_length\": %" PRIu64
                   ",\"max_object_name_length\": %" PRIu64 ",\"account_listing_limit\": %" PRIu64
                   ",\"container_listing_limit\": %" PRIu64 "}}",
                   s->cfg.max_account_name_length, s->cfg.max_container_name_length,
                   s->cfg.max_object_name_length, s->cfg.account_listing_limit,
                   s->cfg.container_listing_limit);
  if (n < 0) {
    c->r->text = NULL;
    return 500;
  }
  c->r->text_len = (size_t)n;
  isw_hm_add(&c->r->h, "Content-Type", "text/plain; charset=utf-8");
  return 200;
}

static bool from_loopback(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!ci || !ci->client_addr) return false;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a6) ||
           (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
  }
  return false;
}

static double query_double(struct MHD_Connection *conn, const char *key, double dflt) {
  const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
  if (!v || !*v) return dflt;
  char *end;
  double d = strtod(v, &end);
  return *end || d < 0 ? -1 : d;
}

/* POST /admin/faults?error_rate=&latency_ms=&drop_rate=&truncate_rate=
 * (missing keys keep their value), GET shows them, POST /admin/reauth
 * is ForceReAuth. */
static int do_admin(iswift *s, call *c, const char *url) {
  if (strcmp(url, "/admin/reauth") == 0 && strcmp(c->method, "POST") == 0) {
    iswift_force_reauth(s);
    return 204;
  }
  if (strcmp(url, "/admin/faults") != 0) return 404;
  pthread_mutex_lock(&s->mu);
  iswift_faults f = s->faults;
  pthread_mutex_unlock(&s->mu);
  if (strcmp(c->method, "POST") == 0) {
    f.error_rate = query_double(c->conn, "error_rate", f.error_rate);
    double lat = query_double(c->conn, "latency_ms", (double)f.latency_ns / 1e6);
    f.drop_rate = query_double(c->conn, "drop_rate", f.drop_rate);
    f.truncate_rate = query_double(c->conn, "truncate_rate", f.truncate_rate);
    if (f.error_rate < 0 || f.error_rate > 100 || lat < 0 || f.drop_rate < 0 ||
        f.drop_rate > 100 || f.truncate_rate < 0 || f.truncate_rate > 100)
      return 400;
    f.latency_ns = (uint64_t)(lat * 1e6);
    iswift_set_faults(s, &f);
  } else if (strcmp(c->method, "GET") != 0) {
    return 405;
  }
  int n = asprintf(&c->r->text,
                   "error_rate=%g latency_ms=%g drop_rate=%g truncate_rate=%g\n", f.error_rate,
                   (double)f.latency_ns / 1e6, f.drop_rate, f.truncate_rate);
  if (n < 0) {
    c->r->text = NULL;
    return 500;
  }
  c->r->text_len = (size_t)n;
  return 200;
}

static bool known_method(const char *m) {
  return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") || !strcmp(m, "POST") ||
         !strcmp(m, "DELETE");
}

/* Checks of real Swift's proxy before the data model is touched. */
static int strict_checks(iswift *s, const isw_path *p) {
  const char *parts[3] = {p->account, p->container, p->object};
  for (int i = 0; i < 3; i++)
    if (parts[i] && !isw_utf8_valid(parts[i], strlen(parts[i]))) return 412;
  if (p->container && strlen(p->container) > s->cfg.max_container_name_length) return 400;
  if (p->object && strlen(p->object) > s->cfg.max_object_name_length) return 400;
  if (p->account && strlen(p->account) > s->cfg.max_account_name_length) return 400;
  return 0;
}

/* Returns the status, or 0 to drop the connection (fault). */
static int dispatch(iswift *s, call *c, const char *url) {
  bool strict = c->strict;
  if (s->cfg.fault_admin && strncmp(url, "/admin/", 7) == 0 && from_loopback(c->conn))
    return do_admin(s, c, url);
  if (strcmp(c->method, "GET") == 0 && strcmp(url, "/info") == 0) return do_info(s, c);
  if (strcmp(c->method, "GET") == 0 && strcmp(url, "/auth/v1.0") == 0) return do_auth(s, c);
  /* real Swift rejects a method it does not know before looking at the token */
  if (strict && !known_method(c->method)) return 405;
  char tok[64];
  current_token(s, tok, sizeof tok);
  const char *given = hm_get(&c->req, "X-Auth-Token");
  if (!given || strcmp(given, tok) != 0) return 401;
  if (strncmp(url, "/v1/", 4) == 0) {
    pthread_mutex_lock(&s->mu);
    iswift_faults f = s->faults;
    pthread_mutex_unlock(&s->mu);
    if (f.latency_ns) {
      struct timespec ts = {(time_t)(f.latency_ns / 1000000000ull),
                            (long)(f.latency_ns % 1000000000ull)};
      nanosleep(&ts, NULL);
    }
    if (f.drop_rate > 0 && dice() < f.drop_rate) return 0;
    if (f.error_rate > 0 && dice() < f.error_rate) return dice() < 50 ? 503 : 500;
    if (f.truncate_rate > 0 && strcmp(c->method, "GET") == 0 && dice() < f.truncate_rate)
      c->r->truncate = true;
  }
  int rc = isw_parse_path(url, &c->p);
  if (rc == -ENOENT) return strict ? 412 : 404;
  if (rc) return 500;
  if (!c->p.account) return strict ? 412 : 403;
  if (!known_method(c->method)) return 405;
  if (strict && (rc = strict_checks(s, &c->p))) return rc;
  pthread_mutex_lock(&s->mu);
  if (!c->p.container)
    rc = do_account(c);
  else if (!c->p.object)
    rc = do_container(c);
  else
    rc = do_object(c);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* Room for need body bytes, reserved against MaxMemoryBytes together with
 * the stored objects (so concurrent uploads cannot exceed it either).
 * false sets no_space. */
static bool body_reserve(iswift *s, reqctx *rq, size_t need) {
  if (need <= rq->cap) return true;
  size_t nc = rq->cap ? rq->cap : 64 * 1024;
  while (nc < need) nc *= 2;
  if (nc > s->cfg.max_object_size) nc = need > s->cfg.max_object_size ? need : s->cfg.max_object_size;
  pthread_mutex_lock(&s->mu);
  bool ok = s->mem_used + s->inflight + (nc - rq->cap) <= s->cfg.max_memory;
  if (ok) s->inflight += nc - rq->cap;
  pthread_mutex_unlock(&s->mu);
  isw_blob *nb = NULL;
  if (ok && !rq->stream && (nb = realloc(rq->body, sizeof *nb + nc + 1)))
    nb->data = (unsigned char *)(nb + 1);
  if (!ok || (!rq->stream && !nb)) {
    if (ok) {
      pthread_mutex_lock(&s->mu);
      s->inflight -= nc - rq->cap;
      pthread_mutex_unlock(&s->mu);
    }
    rq->no_space = true;
    return false;
  }
  if (nb && !rq->body) atomic_init(&nb->refs, 1);
  if (nb) rq->body = nb;
  rq->cap = nc;
  return true;
}

/* Append a chunk of a PUT body to its store file, opening one first. */
static void body_stream(iswift *s, reqctx *rq, const char *data, size_t n) {
  if (rq->store_failed) return;
  int rc = 0;
  if (!rq->tmp) {
    enum { TMP_PATH_MAX = 4096 };
    if (!(rq->tmp = malloc(TMP_PATH_MAX)))
      rc = -ENOMEM;
    else if ((rc = isw_disk_incoming_open(s->cfg.store_dir, rq->tmp, TMP_PATH_MAX, &rq->fd))) {
      free(rq->tmp);
      rq->tmp = NULL;
    }
  }
  if (!rc) rc = isw_disk_append(rq->fd, data, n);
  if (rc) {
    log_error("iswift: cannot write a PUT body to the store: %s", strerror(-rc));
    rq->store_failed = true;
  }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  (void)version;
  iswift *s = cls;
  reqctx *rq = *con_cls;
  if (!rq) {
    if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
    *con_cls = rq;
    rq->fd = -1;
    rq->stream = strcmp(method, "PUT") == 0 && s->cfg.store_dir[0];
    if (strcmp(method, "PUT") == 0 && s->cfg.emulate_real_swift &&
        (!(rq->md5 = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(rq->md5, EVP_md5(), NULL)))
      return MHD_NO; /* on_completed frees what was made */
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    rq->has_length = cl || (te && strcasecmp(te, "chunked") == 0);
    if (cl) {
      unsigned long long want = strtoull(cl, NULL, 10);
      if (want > s->cfg.max_object_size)
        rq->too_large = true;
      else if (want)
        body_reserve(s, rq, (size_t)want);
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (!rq->too_large && n > s->cfg.max_object_size - rq->len) rq->too_large = true;
    /* past a limit: keep reading, answer 413/507 at the end */
    if (rq->too_large || rq->no_space || !body_reserve(s, rq, rq->len + n)) return MHD_YES;
    if (rq->stream)
      body_stream(s, rq, upload_data, n);
    else
      memcpy(rq->body->data + rq->len, upload_data, n);
    rq->len += n;
    if (rq->md5) EVP_DigestUpdate(rq->md5, upload_data, n);
    return MHD_YES;
  }
  if (rq->md5) md5_final_hex(rq->md5, rq->etag);
  /* mapped (and its pages mapped in) before taking s->mu */
  if (rq->tmp && !rq->store_failed && !(rq->mapped = blob_map(rq->fd, rq->len)))
    rq->store_failed = true;
  atomic_fetch_add(&s->requests, 1);
  reply r = {0};
  call c = {.s = s, .method = method, .conn = conn, .rc = rq, .r = &r,
            .strict = s->cfg.emulate_real_swift};
  MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &c.req);
  int status = dispatch(s, &c, url);
  isw_hm_free(&c.req);
  isw_path_free(&c.p);
  if (status == 0) {
    reply_free(&r);
    return MHD_NO; /* injected fault: close without a reply */
  }
  if (status >= 300 && status != 416) reply_free(&r); /* errors: no stored headers */
  if (status == 204 || status >= 300) {
    free(r.text);
    r.text = NULL;
    r.text_len = 0;
  }
  r.status = status;
  return send_reply(conn, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)conn;
  (void)toe;
  iswift *s = cls;
  reqctx *rq = *con_cls;
  if (rq) {
    pthread_mutex_lock(&s->mu);
    s->inflight -= rq->cap;
    pthread_mutex_unlock(&s->mu);
    free(rq->body);
    blob_unref(rq->mapped);
    if (rq->fd >= 0) close(rq->fd);
    if (rq->tmp) unlink(rq->tmp); /* never became an object */
    free(rq->tmp);
    EVP_MD_CTX_free(rq->md5);
    free(rq);
    *con_cls = NULL;
  }
}

/* ---- life cycle --------------------------------------------------------- */

/* Memory per connection (libmicrohttpd's default is 32 KiB): its read
 * buffer comes out of it, and a 10 MiB PUT read 32 KiB at a time spent a
 * sixth more system time in iswift. MaxConnections of them at most. */
#define ISW_CONNECTION_MEMORY (256 * 1024)

void iswift_config_defaults(iswift_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->addr, sizeof cfg->addr, "127.0.0.1");
  cfg->port = 8080;
  cfg->max_account_name_length = 256;
  cfg->max_container_name_length = 256;
  cfg->max_object_name_length = 1024;
  cfg->account_listing_limit = 10000;
  cfg->container_listing_limit = 10000;
  cfg->max_memory = 1ull << 30;
  cfg->max_object_size = 64ull << 20;
  cfg->max_connections = 256;
}

void iswift_force_reauth(iswift *s) {
  pthread_mutex_lock(&s->mu);
  s->nonce++;
  pthread_mutex_unlock(&s->mu);
}

void iswift_set_faults(iswift *s, const iswift_faults *f) {
  pthread_mutex_lock(&s->mu);
  s->faults = *f;
  pthread_mutex_unlock(&s->mu);
}

uint16_t iswift_port(const iswift *s) { return s->port; }

uint64_t iswift_requests(const iswift *s) { return atomic_load(&s->requests); }

uint64_t iswift_connections(const iswift *s) { return atomic_load(&s->connections); }

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code) {
  (void)conn;
  (void)socket_ctx;
  iswift *s = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) atomic_fetch_add(&s->connections, 1);
}

static void free_all(iswift *s) {
  for (size_t i = 0; i < s->nacct; i++) account_free(s->accts[i]);
  free(s->accts);
  s->accts = NULL;
  s->nacct = s->acap = 0;
}

/* One record of the directory store into the model; b (an object's
 * bytes, else NULL) becomes the object's only on success. */
static int load_entry(iswift *s, const char *acct, const char *cont, const char *obj,
                      const isw_hdrmap *h, isw_blob *b) {
  call c = {.s = s, .p = {.account = (char *)acct}};
  int err = 0;
  account *a = find_account(&c);
  if (!a && !(a = new_account(&c, &err))) return err;
  if (!cont) return hm_copy(&a->h, h);
  container *ct = sv_find(a->v, a->n, cont);
  if (!ct) {
    if (!(ct = calloc(1, sizeof *ct)) || !(ct->name = strdup(cont)) ||
        sv_insert(&a->v, &a->n, &a->cap, ct)) {
      if (ct) free(ct->name);
      free(ct);
      return -ENOMEM;
    }
    ct->ts = now_ts();
  }
  if (!obj) return hm_copy(&ct->h, h);
  if (s->mem_used + b->len > s->cfg.max_memory) return -ENOSPC;
  object *o = object_add(ct, obj);
  if (!o || hm_copy(&o->h, h)) return -ENOMEM;
  if (s->cfg.emulate_real_swift) md5_hex(b->data, b->len, o->etag);
  o->ts = now_ts();
  ct->bytes += b->len;
  s->mem_used += b->len;
  o->data = b;
  return 0;
}

/* Loader callback of the directory store: rebuild the model, an object's
 * bytes left in its mapped file. */
static int load_cb(void *ctx, const char *acct, const char *cont, const char *obj,
                   const isw_hdrmap *h, const unsigned char *data, size_t len, void *map,
                   size_t map_len) {
  isw_blob *b = NULL;
  if (map && !(b = blob_of_map(map, map_len, data, len))) return -ENOMEM;
  int rc = load_entry(ctx, acct, cont, obj, h, b);
  if (rc) blob_unref(b);
  return rc;
}

int iswift_start(const iswift_config *cfg, iswift **out) {
  *out = NULL;
  iswift *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->cfg = *cfg;
  s->faults = cfg->faults;
  pthread_mutex_init(&s->mu, NULL);
  int rc = 0;
  if (cfg->store_dir[0] && (rc = isw_disk_load(cfg->store_dir, load_cb, s))) {
    iswift_stop(s);
    return rc;
  }
  struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
  struct addrinfo *ai = NULL;
  char port[8];
  snprintf(port, sizeof port, "%u", (unsigned)cfg->port);
  if (getaddrinfo(cfg->addr[0] ? cfg->addr : NULL, port, &hints, &ai) || !ai) {
    iswift_stop(s);
    return -EINVAL;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  s->mhd = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ISW_CONNECTION_MEMORY,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!s->mhd) {
    iswift_stop(s);
    return -EADDRINUSE;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
  s->port = di ? di->port : cfg->port;
  *out = s;
  return 0;
}

void iswift_stop(iswift *s) {
  if (!s) return;
  if (s->mhd) MHD_stop_daemon(s->mhd);
  free_all(s);
  pthread_mutex_destroy(&s->mu);
  free(s);
}
