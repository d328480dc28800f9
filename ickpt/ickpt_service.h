/*
 * ickpt internals above the store: configuration, Swift authorization and
 * the HTTP service. Used by main.c and the tests; not a library interface.
 */
#ifndef PFS_ICKPT_SERVICE_H
#define PFS_ICKPT_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ickpt.h"

struct conf_map;

/* ---- Swift authorization (A.6.3) ---------------------------------------- */

typedef struct {
  uint64_t timeout_ns;       /* SwiftTimeout: connect and whole transfer */
  uint32_t pool_size;        /* SwiftConnectionPoolSize: idle handles kept */
  uint64_t retry_delay_ns;   /* SwiftRetryDelay */
  double retry_backoff;      /* SwiftRetryExpBackoff */
  uint32_t retry_limit;      /* SwiftRetryLimit: retries after the first try */
  uint64_t cache_ttl_ns;     /* AuthCacheTTL; 0 = no cache */
  size_t cache_max;          /* AuthCacheMaxEntries */
  size_t max_body;           /* longest Swift value kept (MaxValueSize) */
} ickpt_auth_config;

typedef struct ickpt_auth ickpt_auth;

typedef struct {
  bool cached;               /* answered from the cache, Swift not asked */
  int swift_status;          /* last HTTP status, 0 after a transport error */
  unsigned attempts;
  char *value;               /* with want_value and a 2xx: malloc'd body */
  size_t value_len;
  bool value_too_large;      /* 2xx but the body exceeded max_body */
  char reason[192];          /* why it failed, one line */
} ickpt_auth_result;

int ickpt_auth_create(const ickpt_auth_config *cfg, ickpt_auth **out);
void ickpt_auth_destroy(ickpt_auth *a);

/*
 * GET url from Swift with token. 0: authorized (2xx or 404); with
 * want_value and a 2xx, res->value holds the body (caller frees) and the
 * cache is bypassed. -EACCES: token missing or refused (401/403).
 * -EAGAIN: any other status, or transport errors after the retries.
 * Thread-safe; no lock is held during the transfer.
 */
int ickpt_auth_check(ickpt_auth *a, const char *url, const char *canonical, const char *token,
                     bool want_value, ickpt_auth_result *res);
size_t ickpt_auth_cache_count(ickpt_auth *a);

/* ---- configuration (A.6.1) ---------------------------------------------- */

typedef struct {
  char *ip_addr;
  uint16_t port;
  char *cert_file, *key_file, *cacert_file; /* all NULL or all set */
  char *db_path;
  ickpt_store_config store;                 /* store.path = db_path */
  ickpt_auth_config auth;
  unsigned max_connections;
} ickpt_config;

/* Parse [ICKPT]; on failure err holds the message and *cfg is freed. */
int ickpt_config_parse(const struct conf_map *m, ickpt_config *cfg, char *err, size_t errlen);
void ickpt_config_free(ickpt_config *cfg);

/* ---- the service -------------------------------------------------------- */

typedef struct ickpt_service ickpt_service;

/* Status code of a store/auth error (the one table of A.6.5). */
int ickpt_status_from_errno(int err);

/*
 * Parse the config, open the store, start HTTP on IPAddr:Port (Port 0 =
 * ephemeral) and probe it with HEAD / before returning. m must outlive the
 * service (GET /config serves it). Logs the reason of a failure.
 */
int ickpt_service_start(const struct conf_map *m, ickpt_service **out);
uint16_t ickpt_service_port(const ickpt_service *s);
/* Compacting copy of the database to DataBasePath/backup.mdb. */
int ickpt_service_backup(ickpt_service *s);
void ickpt_service_stop(ickpt_service *s);

#endif
