/*
 * swiftclient: OpenStack Swift over libcurl (architecture.md section 2,
 * imgr.md section 4.12, iclient.md sections 2.2 and 5.1, iswift.md section 7).
 *
 * One swift_conn is one authenticated identity against one Swift cluster:
 *   - auth v1: GET <auth_url> with X-Auth-User / X-Auth-Key, remembering
 *     X-Auth-Token and X-Storage-Url; a 401 on any request re-authenticates
 *     (one re-auth at a time; concurrent callers wait for it) and retries;
 *   - or a static token + storage URL (imgr's mount tokens): a 401 is then
 *     final (-EACCES).
 * Object, container and account names are given unescaped; the library
 * percent-encodes them. Every call returns 0 or a negative errno:
 *   -ENOENT 404, -EACCES 401 (after re-auth), -EPERM 403, -ENOTEMPTY 409,
 *   -EINVAL 400/411/412, -EFBIG 413, -ERANGE 416, -EBADMSG 422 or a body that
 *   failed an integrity check, -EOVERFLOW caller's buffer too small,
 *   -ETIMEDOUT, -ECONNREFUSED, -EIO other transport errors and 5xx after all
 *   retries, -ENOMEM.
 * The HTTP status and the URL go to the logger where the error is known.
 * An object PUT into a missing container is -ENOENT whether the server says
 * 404 (real Swift) or 403 (the original iswift; told apart from a real 403
 * by a HEAD of the container, on that error path only).
 *
 * Retries (imgr.md 4.12): up to retry_limit+1 attempts; after a failed attempt
 * sleep the current delay (starting at retry_delay_ns), then multiply it by
 * retry_exp_backoff. Unlike the original we do not sleep after the final
 * attempt. Retried: transport errors, 5xx, 408, 429, truncated or
 * inconsistent bodies, and 401 after re-auth. Not retried: other 4xx.
 *
 * Integrity: a body is accepted only if its length matches Content-Length /
 * Content-Range and the range asked for; a whole-object GET whose reply has
 * an MD5 ETag is checked against it. Buffer calls never report a body that
 * failed a check (they retry). Streams hand bytes to the sink as they arrive,
 * once the reply's status and Content-Range are verified; when an attempt
 * breaks off, the retry resumes after the last byte delivered (If-Match on
 * the first reply's ETag, so a replaced object gives -ESTALE instead of a
 * mix). A whole-object stream whose MD5 disagrees with the ETag at the end
 * returns -EBADMSG: its bytes were already delivered, so callers that cannot
 * take bytes back must treat that as a failed read.
 *
 * Memory: no call buffers an object body; callers supply bounded buffers or
 * stream with callbacks. Listing pages and response headers are capped.
 *
 * Threading: a swift_conn is safe from any number of threads. Up to
 * connection_pool_size transfers run at once (more callers wait, at most
 * timeout_ns); idle connections are kept alive for reuse. No lock is held
 * across network I/O.
 */
#ifndef PFS_SWIFTCLIENT_H
#define PFS_SWIFTCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf_map;

typedef struct swift_conn swift_conn;

typedef struct swift_config {
  /* Auth v1. When auth_url is NULL/"" the connection uses the static
   * storage_url + auth_token below and never re-authenticates. */
  const char *auth_url;     /* "http://127.0.0.1:8080/auth/v1.0" */
  const char *auth_user;    /* "test:tester" */
  const char *auth_key;     /* "testing" */
  /* Static mode: both required. With auth_url set, storage_url (if given)
   * replaces the X-Storage-Url from auth; auth_token is ignored. */
  const char *storage_url;  /* "http://127.0.0.1:8080/v1/AUTH_test" */
  const char *auth_token;
  /* As the iauth-swift plug-in does: when set, the account segment of
   * X-Storage-Url (the path element after /v1/) is replaced by it. With an
   * https auth_url, an http:// storage URL from auth is always switched to
   * https:// (Swift behind a TLS terminator). */
  const char *account;
  const char *user_agent;   /* NULL = "proxyfs-c" */
  uint64_t retry_delay_ns;  /* SwiftRetryDelay; 0 = 100ms */
  double retry_exp_backoff; /* SwiftRetryExpBackoff; 0 = 2.0 */
  uint8_t retry_delay_variance; /* iclient's SwiftRetryDelayVariance: each sleep is
                                   shortened by a random 0..variance% (0 = none) */
  uint32_t retry_limit;     /* SwiftRetryLimit (retries, attempts = +1) */
  uint64_t timeout_ns;      /* SwiftTimeout: whole request; 0 = 10 min */
  uint64_t connect_timeout_ns; /* 0 = min(timeout, 10 s) */
  uint32_t connection_pool_size; /* SwiftConnectionPoolSize; 0 = 128 */
  size_t max_listing_page;  /* cap on one listing page body; 0 = 32 MiB */
  /* Send the MD5 of known-length PUT bodies as their ETag, so that Swift
   * refuses a body that arrived damaged (422; the PUT is retried). It
   * costs a pass of MD5 over every byte written (about 1.2 s of CPU per
   * GiB on the 2-core development VM). */
  bool send_put_etag;
  /* When stats_pkg is set, the connection registers bucketstats under
   * (stats_pkg, stats_group) for its lifetime: BucketLog2Round microseconds
   * (retries and backoff included, as the original measures)
   * SwiftObjectGetUsecs, SwiftObjectGetRangeUsecs, SwiftObjectGetTailUsecs,
   * SwiftObjectPutUsecs, SwiftObjectDeleteUsecs, SwiftObjectHeadUsecs,
   * SwiftOtherUsecs (container/account calls, listing pages), and totals
   * SwiftRetries, SwiftReAuths, SwiftErrors. The pair must be unique. */
  const char *stats_pkg;
  const char *stats_group;
} swift_config;

/* Fill cfg with the defaults above (retry_limit 4, send_put_etag true). */
void swift_config_defaults(swift_config *cfg);

/*
 * Read the original's keys from [section]: SwiftRetryDelay,
 * SwiftRetryExpBackoff (or iclient's SwiftRetryExponentialBackoff, which
 * the original read but never applied; here it is applied),
 * SwiftRetryDelayVariance (1..100 when present),
 * SwiftRetryLimit, SwiftTimeout, SwiftConnectionPoolSize, and this port's
 * SwiftPutETag (send_put_etag); missing keys keep cfg's current values.
 * Strings are not touched. Message in err.
 */
int swift_config_from_conf(const struct conf_map *m, const char *section,
                           swift_config *cfg, char *err, size_t errlen);

/*
 * The auth plug-in input of iclient/imgr (iclient.md 2.2):
 *   {"AuthURL":..,"AuthUser":..,"AuthKey":..,"Account":..,"Container":..}
 * Swift v1 auth is built into this library, so AuthPlugInPath is accepted
 * and ignored; the JSON is parsed here and fills a swift_config
 * (auth_url, auth_user, auth_key, account) plus the container name.
 */
typedef struct swift_auth_input {
  char *auth_url, *auth_user, *auth_key, *account, *container; /* malloc'd */
} swift_auth_input;

/* -EINVAL for malformed JSON or a missing/non-string AuthURL or AuthUser
 * (the others default to ""). */
int swift_auth_input_parse(const char *json, swift_auth_input *in);
void swift_auth_input_free(swift_auth_input *in);
/* Point cfg's auth fields at in's strings (in must outlive the create). */
void swift_auth_input_apply(const swift_auth_input *in, swift_config *cfg);

/*
 * The input JSON from [section]: the environment variable named by
 * AuthPlugInEnvName when that is non-empty (AuthPlugInEnvValue must then be
 * missing or empty), else AuthPlugInEnvValue. Message in err.
 */
int swift_auth_input_from_conf(const struct conf_map *m, const char *section,
                               swift_auth_input *in, char *err, size_t errlen);

/* Copies every string in cfg. With auth_url set, authenticates now (with
 * retries); a failure fails the create. */
int swift_conn_create(const swift_config *cfg, swift_conn **out);
/* Waits for nothing: all calls must have returned. NULL is fine. */
void swift_conn_destroy(swift_conn *c);

/* Force a new auth v1 request now (static mode: -EINVAL). */
int swift_reauth(swift_conn *c);
/* Copy the current storage URL / token into buf (NUL-terminated);
 * -ERANGE if buflen is too small. */
int swift_storage_url(swift_conn *c, char *buf, size_t buflen);
int swift_auth_token(swift_conn *c, char *buf, size_t buflen);

/* ---- headers ---------------------------------------------------------- */

/* Request headers: name and value as sent ("X-Object-Meta-Color", "red").
 * An empty value removes metadata on real Swift and on iswift. */
typedef struct swift_header {
  const char *name;
  const char *value;
} swift_header;

/* Response headers of HEAD/GET/listing calls, in arrival order, names as
 * received. At most 64 KiB in total. */
typedef struct swift_hdrs swift_hdrs;
/* First value of name (case-insensitive) or NULL. */
const char *swift_hdrs_get(const swift_hdrs *h, const char *name);
size_t swift_hdrs_count(const swift_hdrs *h);
/* i < count; pointers valid until swift_hdrs_free. */
void swift_hdrs_at(const swift_hdrs *h, size_t i, const char **name, const char **value);
void swift_hdrs_free(swift_hdrs *h);

/* ---- objects ---------------------------------------------------------- */

typedef enum {
  SWIFT_RANGE_ALL,   /* whole object */
  SWIFT_RANGE_SPAN,  /* bytes=off-(off+len-1); len > 0 */
  SWIFT_RANGE_TAIL,  /* bytes=-len; len > 0 */
} swift_range_kind;

typedef struct swift_range {
  swift_range_kind kind;
  uint64_t off;
  uint64_t len;
} swift_range;

/*
 * GET into a caller buffer. *got = bytes stored. A SPAN past the end of the
 * object returns the bytes that exist (short read, like Swift's clamping);
 * a SPAN starting at or past the end returns -ERANGE. A reply larger than
 * buflen returns -EOVERFLOW (nothing partial is reported).
 * hdrs_out (may be NULL) receives the reply headers.
 */
int swift_object_get(swift_conn *c, const char *container, const char *object,
                     swift_range range, void *buf, size_t buflen, size_t *got,
                     swift_hdrs **hdrs_out);

/* Streaming GET: sink is called with consecutive chunks (see Integrity
 * above); a nonzero return from sink aborts with that value (if negative) or
 * -ECANCELED, without retrying. */
typedef int (*swift_sink_fn)(void *ctx, const void *data, size_t len);
int swift_object_get_stream(swift_conn *c, const char *container, const char *object,
                            swift_range range, swift_sink_fn sink, void *ctx);

/* PUT a body of known length (re-sent whole on each retry). -ENOENT when
 * the container is missing, -EPERM when Swift refuses the write. */
int swift_object_put(swift_conn *c, const char *container, const char *object,
                     const void *data, size_t len,
                     const swift_header *hdrs, size_t nhdrs);

/*
 * Chunked PUT of unknown length. source fills buf with up to cap bytes and
 * returns the count (0 = end) or a negative errno. rewind (may be NULL)
 * restarts the source for a retry; without it, a failure after the body
 * started is returned, not retried.
 */
typedef long (*swift_source_fn)(void *ctx, void *buf, size_t cap);
typedef int (*swift_rewind_fn)(void *ctx);
int swift_object_put_stream(swift_conn *c, const char *container, const char *object,
                            swift_source_fn source, swift_rewind_fn rewind, void *ctx,
                            const swift_header *hdrs, size_t nhdrs);

/* HEAD: *size = Content-Length (may be NULL); hdrs_out may be NULL. */
int swift_object_head(swift_conn *c, const char *container, const char *object,
                      uint64_t *size, swift_hdrs **hdrs_out);
int swift_object_delete(swift_conn *c, const char *container, const char *object);
/* POST metadata (real Swift replaces all X-Object-Meta-*, iswift merges). */
int swift_object_post(swift_conn *c, const char *container, const char *object,
                      const swift_header *hdrs, size_t nhdrs);

/* ---- containers and the account --------------------------------------- */

/* PUT container: 0 whether created (201) or existing (202). */
int swift_container_put(swift_conn *c, const char *container,
                        const swift_header *hdrs, size_t nhdrs);
int swift_container_head(swift_conn *c, const char *container, swift_hdrs **hdrs_out);
int swift_container_post(swift_conn *c, const char *container,
                         const swift_header *hdrs, size_t nhdrs);
/* -ENOTEMPTY when it holds objects. */
int swift_container_delete(swift_conn *c, const char *container);

/* Account PUT, only for iswift (real Swift answers 403 to normal users). */
int swift_account_put(swift_conn *c, const swift_header *hdrs, size_t nhdrs);
int swift_account_head(swift_conn *c, swift_hdrs **hdrs_out);

/* One listing entry. bytes/hash/content_type/last_modified are only known
 * from JSON listings of real Swift (-1 / NULL otherwise). Pointers are valid
 * during the callback only. */
typedef struct swift_list_entry {
  const char *name;
  int64_t bytes;          /* objects: size; containers: bytes used */
  int64_t count;          /* containers only: object count */
  const char *hash;
  const char *content_type;
  const char *last_modified;
  bool subdir;            /* a rolled-up name (opts.delimiter); the other
                             fields are then -1 / NULL */
} swift_list_entry;

typedef struct swift_list_opts {
  const char *prefix;     /* only names starting with it; NULL = all */
  const char *marker;     /* start after this name; NULL = start */
  /* Swift's delimiter= (NULL or "" = none): every name with the delimiter at
   * or after the prefix is reported once, as a subdir entry whose name ends
   * at the first such delimiter ("a/b/c" with prefix "a/" and "/" -> "a/b/");
   * a subdir equal to marker is not reported (real Swift's rule). The roll-up
   * is also done here, so servers that ignore delimiter= (the original
   * iswift) give the same entries, after paging through every name. */
  const char *delimiter;
  uint32_t page_limit;    /* names per request (limit=); 0 = server default */
  uint64_t max_entries;   /* stop after this many; 0 = no limit */
  bool json;              /* ask for format=json (falls back to plain when
                             the server answers text, as iswift does) */
} swift_list_opts;

/* Return 0 to continue, >0 to stop early (the listing then returns 0), <0 to
 * abort with that error. */
typedef int (*swift_list_fn)(void *ctx, const swift_list_entry *e);

/*
 * Page through a container (or, with container NULL, the account) with the
 * portable loop of iswift.md 7.4: marker=<last name> until 204 or an empty
 * page. The prefix is filtered client-side as well, so servers that ignore
 * prefix= (iswift) give the same result. hdrs_out gets the first page's
 * headers.
 */
int swift_list(swift_conn *c, const char *container, const swift_list_opts *opts,
               swift_list_fn fn, void *ctx, swift_hdrs **hdrs_out);

/* The errno for an HTTP status (the one table of this module). */
int swift_errno_from_status(long status);

#endif
