/*
 * ickpt: the checkpoint key-value service (ickpt-idestroy.md Part A).
 *
 * Three layers, each usable without the ones above it:
 *
 *   1. Pure helpers: key derivation from X-Storage-Url (A.6.2), transaction
 *      ID validation and the LMDB record layout (A.6.4). No I/O. The
 *      monotonic guard (A.6.6) reads checkpoints with ilayout's decoder.
 *   2. The store (ickpt_store): the LMDB environment, staged transactions
 *      in memory, conditional commits. No network.
 *   3. The service (ickpt_service): config, Swift authorization, the HTTP
 *      handlers. Lives in ickpt_service.c and main.c.
 *
 * Errors are 0 or a negative errno. The store uses these codes, which the
 * HTTP layer maps to status codes in one table (ickpt_status_from_errno):
 *   -EINVAL     bad request (key, txn ID, value not a checkpoint)   400
 *   -ENOENT     no record                                          404
 *   -E2BIG      value larger than the configured maximum           413
 *   -ECANCELED  If-Match / If-None-Match precondition failed        412
 *   -ESTALE     monotonic guard: value older than the stored one    409
 *   -ESRCH      POST of a transaction that is not staged            409
 *   -EBUSY      too many staged transactions (cap reached)         503
 *   -EIO, ...   LMDB failure                                       500
 * Functions that can fail for a reason worth telling the client take
 * `char *err, size_t errlen` and write a one-line reason there.
 */
#ifndef PFS_ICKPT_H
#define PFS_ICKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- keys (A.6.2) -------------------------------------------------------- */

#define ICKPT_KEY_LEN 32            /* SHA-256 */
#define ICKPT_MAX_CANONICAL 4096    /* longest canonical storage URL accepted */
#define ICKPT_MAX_TXN_LEN 128

/*
 * Canonical form of an X-Storage-Url value: the text after "://" with the
 * host lower-cased and a default port (:80 for http, :443 for https)
 * removed; userinfo, path and query are kept byte for byte. The scheme must
 * be http or https (any case). Writes a NUL-terminated string into out.
 * -EINVAL for NULL, no "://", another scheme, an empty host, a bad port or
 * a result longer than ICKPT_MAX_CANONICAL (or than outlen-1).
 */
int ickpt_canonical_url(const char *url, char *out, size_t outlen);

/* LMDB key of a canonical URL: SHA-256 of its bytes. */
void ickpt_key_of(const char *canonical, size_t len, uint8_t key[ICKPT_KEY_LEN]);

/* The key's external spelling (logs, error texts): standard base64 with
 * padding of the canonical URL, as upstream. Returns a malloc'd string or
 * NULL on allocation failure. */
char *ickpt_key_base64(const char *canonical, size_t len);

/* A transaction ID is 1..128 characters of [0-9A-Za-z_-]. */
bool ickpt_txn_valid(const char *txn);

/* ---- records (A.6.4) ----------------------------------------------------- */

/*
 * Record layout, little-endian, nothing else before or after:
 *   u32 format (= 1)
 *   u64 version            1 for the first committed PUT, +1 per PUT
 *   u64 commit_time_ns     CLOCK_REALTIME of the commit
 *   u16 canonical_len      followed by the canonical URL bytes
 *   u32 value_len          followed by the value bytes
 */
#define ICKPT_RECORD_FORMAT 1
#define ICKPT_RECORD_FIXED (4 + 8 + 8 + 2 + 4)

typedef struct {
  uint64_t version;
  uint64_t commit_time_ns;
  const char *canonical;     /* not NUL-terminated */
  size_t canonical_len;
  const char *value;
  size_t value_len;
} ickpt_record;

/* Encoded size, or 0 if a length does not fit its field. */
size_t ickpt_record_size(const ickpt_record *r);
/* Encode into buf (cap bytes); returns bytes written or -EINVAL/-ENOSPC. */
long ickpt_record_encode(const ickpt_record *r, uint8_t *buf, size_t cap);
/* Decode; r's pointers point into buf. -EINVAL on any inconsistency
 * (short input, wrong format, lengths past the end, trailing bytes). */
int ickpt_record_decode(const uint8_t *buf, size_t len, ickpt_record *r);

/* ---- conditional update (A.6.6) ----------------------------------------- */

typedef enum {
  ICKPT_COND_NONE,       /* no precondition */
  ICKPT_COND_MATCH,      /* If-Match: "<version>" */
  ICKPT_COND_NONE_MATCH, /* If-None-Match: * */
} ickpt_cond_kind;

typedef struct {
  ickpt_cond_kind kind;
  uint64_t version;      /* for ICKPT_COND_MATCH */
} ickpt_cond;

/*
 * Parse the If-Match / If-None-Match header values (either may be NULL).
 * If-Match takes one entity tag "<decimal version>" (quotes optional,
 * W/ prefix refused) or "*" (meaning: a record must exist, encoded as
 * ICKPT_COND_MATCH with version 0). If-None-Match takes only "*".
 * Both present, or anything else -> -EINVAL.
 */
int ickpt_cond_parse(const char *if_match, const char *if_none_match, ickpt_cond *out);

/* ---- the store ----------------------------------------------------------- */

typedef struct {
  const char *path;            /* DataBasePath; created (0700) if missing */
  uint64_t map_size;           /* LMDB map size in bytes; 0 = 64 MiB */
  size_t max_value;            /* 0 = 4096 */
  uint64_t txn_timeout_ns;     /* staged and committed-memo lifetime; 0 = 10 s */
  size_t max_staged;           /* cap on in-memory transactions; 0 = 4096 */
  bool enforce_monotonic;
} ickpt_store_config;

typedef struct ickpt_store ickpt_store;

typedef enum { ICKPT_SET, ICKPT_DELETE } ickpt_op;

/*
 * Open (creating) the environment in cfg->path, take an exclusive flock on
 * path/ickpt.pid (-EBUSY with a message if another process holds it), and
 * clear stale reader slots. err gets a reason on failure.
 */
int ickpt_store_open(const ickpt_store_config *cfg, ickpt_store **out,
                     char *err, size_t errlen);
/* Closes the environment and releases the flock. NULL is fine. */
void ickpt_store_close(ickpt_store *s);

/*
 * GET: discard every staged (uncommitted) transaction of this canonical
 * key, then read its record. On success *value is malloc'd (caller frees;
 * non-NULL even when empty) and *version > 0. -ENOENT when no record.
 */
int ickpt_store_get(ickpt_store *s, const char *canonical, char **value,
                    size_t *value_len, uint64_t *version, char *err, size_t errlen);

/*
 * PUT / DELETE /<txn>: stage op under (key, txn), replacing an earlier
 * stage of the same pair. The precondition and (for ICKPT_SET with the
 * monotonic guard on) the value are checked against the stored record now
 * and again at commit. value is copied. Errors: -EINVAL, -E2BIG,
 * -ECANCELED, -ESTALE, -EBUSY.
 */
int ickpt_store_stage(ickpt_store *s, const char *canonical, const char *txn,
                      ickpt_op op, const char *value, size_t value_len,
                      const ickpt_cond *cond, char *err, size_t errlen);

/*
 * POST /<txn>: commit the staged transaction durably (the LMDB commit has
 * synced data and meta pages when this returns 0). *version is the new
 * version (0 after a delete). A POST repeated within the transaction
 * timeout after a successful commit returns 0 and the same version without
 * applying again. Errors: -ESRCH (not staged, expired or discarded by a
 * GET), -ECANCELED, -ESTALE, other negative errno for LMDB failures. The
 * staged transaction is consumed by a failed commit too.
 */
int ickpt_store_commit(ickpt_store *s, const char *canonical, const char *txn,
                       uint64_t *version, char *err, size_t errlen);

/* Number of staged plus remembered-committed transactions (tests, stats). */
size_t ickpt_store_txn_count(ickpt_store *s);

/* Compacting copy of the database to path (A.6.7 backups). */
int ickpt_store_backup(ickpt_store *s, const char *path, char *err, size_t errlen);

#endif
