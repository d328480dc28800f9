/* [ICKPT] configuration (ickpt-idestroy.md A.2 and A.6.1). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ickpt_service.h"

#define SECTION "ICKPT"

/* Name the key in a getter's message when the conf text does not. */
static int keyed(int rc, const char *key, char *err, size_t errlen) {
  if (rc != 0 && err != NULL && strstr(err, key) == NULL) {
    char inner[CONF_ERR_MAX];
    snprintf(inner, sizeof inner, "%s", err);
    snprintf(err, errlen, "[" SECTION "]%s: %s", key, inner);
  }
  return rc;
}

/* Optional keys: missing or empty keeps the default. */
static bool given(const conf_map *m, const char *key) {
  return !conf_is_missing_or_empty(m, SECTION, key);
}

static int opt_duration(const conf_map *m, const char *key, uint64_t dflt, uint64_t *out, char *err,
                        size_t errlen) {
  *out = dflt;
  return given(m, key)
             ? keyed(conf_get_duration_ns(m, SECTION, key, out, err, errlen), key, err, errlen)
             : 0;
}

static int opt_u64(const conf_map *m, const char *key, uint64_t dflt, uint64_t *out, char *err,
                   size_t errlen) {
  *out = dflt;
  return given(m, key) ? keyed(conf_get_u64(m, SECTION, key, out, err, errlen), key, err, errlen)
                       : 0;
}

static int dup_string(const conf_map *m, const char *key, char **out, char *err, size_t errlen) {
  const char *v;
  int rc = keyed(conf_get_string(m, SECTION, key, &v, err, errlen), key, err, errlen);
  if (rc == 0 && (*out = strdup(v)) == NULL) {
    rc = -ENOMEM;
  }
  return rc;
}

/* The TLS triple: all missing/empty (plain HTTP) or all non-empty. */
static int parse_tls(const conf_map *m, ickpt_config *c, char *err, size_t errlen) {
  static const char *const keys[3] = {"CertFilePath", "KeyFilePath", "CACertFilePath"};
  char **outs[3] = {&c->cert_file, &c->key_file, &c->cacert_file};
  int present = 0;
  for (int i = 0; i < 3; i++) {
    present += given(m, keys[i]);
  }
  if (present == 0) {
    return 0;
  }
  if (present != 3) {
    /* The original's wording, typos included. */
    snprintf(err, errlen,
             "[ICKPT]{Cert|Key|CACert}FilePath must either all be present or all Emtpy/Mising");
    return -EINVAL;
  }
  for (int i = 0; i < 3; i++) {
    int rc = dup_string(m, keys[i], outs[i], err, errlen);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

int ickpt_config_parse(const conf_map *m, ickpt_config *c, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  uint32_t pool = 0;
  uint64_t map_size, max_value, max_staged, cache_max;
  bool monotonic = true;
  int rc = dup_string(m, "IPAddr", &c->ip_addr, err, errlen);
  if (rc == 0) {
    rc = keyed(conf_get_u16(m, SECTION, "Port", &c->port, err, errlen), "Port", err, errlen);
  }
  if (rc == 0) {
    rc = parse_tls(m, c, err, errlen);
  }
  if (rc == 0) {
    rc = dup_string(m, "DataBasePath", &c->db_path, err, errlen);
  }
  if (rc == 0) {
    rc = keyed(conf_get_duration_ns(m, SECTION, "SwiftTimeout", &c->auth.timeout_ns, err, errlen),
               "SwiftTimeout", err, errlen);
  }
  if (rc == 0) {
    rc = keyed(conf_get_u32(m, SECTION, "SwiftConnectionPoolSize", &pool, err, errlen),
               "SwiftConnectionPoolSize", err, errlen);
  }
  /* Required by the older impl.go, absent from dev.conf: optional here. */
  if (rc == 0) {
    rc = opt_duration(m, "SwiftRetryDelay", 100 * 1000000ull, &c->auth.retry_delay_ns, err, errlen);
  }
  c->auth.retry_backoff = 2.0;
  if (rc == 0 && given(m, "SwiftRetryExpBackoff")) {
    rc = keyed(
        conf_get_double(m, SECTION, "SwiftRetryExpBackoff", &c->auth.retry_backoff, err, errlen),
        "SwiftRetryExpBackoff", err, errlen);
    if (rc == 0 && !(c->auth.retry_backoff >= 1.0 && c->auth.retry_backoff <= 100.0)) {
      snprintf(err, errlen, "[ICKPT]SwiftRetryExpBackoff must be in [1, 100]");
      rc = -EINVAL;
    }
  }
  c->auth.retry_limit = 4;
  if (rc == 0 && given(m, "SwiftRetryLimit")) {
    rc = keyed(conf_get_u32(m, SECTION, "SwiftRetryLimit", &c->auth.retry_limit, err, errlen),
               "SwiftRetryLimit", err, errlen);
  }
  if (rc == 0) {
    rc = opt_duration(m, "TransactionTimeout", 10ull * 1000000000ull, &c->store.txn_timeout_ns, err,
                      errlen);
  }
  if (rc == 0) {
    rc = opt_u64(m, "DataBaseMapSize", 64ull << 20, &map_size, err, errlen);
  }
  if (rc == 0) {
    rc = opt_u64(m, "MaxValueSize", 4096, &max_value, err, errlen);
  }
  if (rc == 0) {
    rc = opt_u64(m, "MaxStagedTransactions", 4096, &max_staged, err, errlen);
  }
  if (rc == 0 && given(m, "EnforceMonotonic")) {
    rc = keyed(conf_get_bool(m, SECTION, "EnforceMonotonic", &monotonic, err, errlen),
               "EnforceMonotonic", err, errlen);
  }
  if (rc == 0) {
    rc = opt_duration(m, "AuthCacheTTL", 0, &c->auth.cache_ttl_ns, err, errlen);
  }
  if (rc == 0) {
    rc = opt_u64(m, "AuthCacheMaxEntries", 1024, &cache_max, err, errlen);
  }
  uint64_t max_conn = 64;
  if (rc == 0) {
    rc = opt_u64(m, "MaxConnections", 64, &max_conn, err, errlen);
  }
  if (rc == 0 && (max_conn == 0 || max_conn > 10000)) {
    snprintf(err, errlen, "[ICKPT]MaxConnections must be in [1, 10000]");
    rc = -EINVAL;
  }
  if (rc == 0 && (max_value == 0 || max_value > (1u << 20))) {
    snprintf(err, errlen, "[ICKPT]MaxValueSize must be in [1, 1048576]");
    rc = -EINVAL;
  }
  if (rc == 0 && (max_staged == 0 || max_staged > 1000000 || cache_max > 1000000)) {
    snprintf(err, errlen,
             "[ICKPT]MaxStagedTransactions must be in [1, 1000000] and "
             "AuthCacheMaxEntries at most 1000000");
    rc = -EINVAL;
  }
  if (rc == 0 && (map_size < (1u << 20) || c->auth.timeout_ns < 1000000)) {
    snprintf(err, errlen,
             "[ICKPT]DataBaseMapSize must be at least 1048576 and SwiftTimeout at least 1ms");
    rc = -EINVAL;
  }
  if (rc != 0) {
    ickpt_config_free(c);
    return rc;
  }
  c->auth.pool_size = pool;
  c->max_connections = (unsigned)max_conn;
  c->auth.cache_max = (size_t)cache_max;
  c->auth.max_body = (size_t)max_value;
  c->store.path = c->db_path;
  c->store.map_size = map_size;
  c->store.max_value = (size_t)max_value;
  c->store.max_staged = (size_t)max_staged;
  c->store.enforce_monotonic = monotonic;
  return 0;
}

void ickpt_config_free(ickpt_config *c) {
  free(c->ip_addr);
  free(c->cert_file);
  free(c->key_file);
  free(c->cacert_file);
  free(c->db_path);
  memset(c, 0, sizeof *c);
}
