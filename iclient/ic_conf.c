/* ic_conf: loading and validating [ICLIENT] (see ic_conf.h). */
#include "ic_conf.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

typedef enum { K_STR, K_BOOL, K_U8, K_U16, K_U32, K_U64, K_DUR, K_DOUBLE } key_kind;

/* How a key behaves when absent: required keys fail; optional ones take the
 * default text, parsed like a configured value. */
typedef struct key_spec {
  const char *name;
  key_kind kind;
  size_t off;
  const char *dflt; /* NULL = required */
} key_spec;

#define F(field) offsetof(ic_config, field)

/* The AuthPlugInEnv* pair is handled separately: its rule ties two keys. */
static const key_spec KEYS[] = {
    {"VolumeName", K_STR, F(volume_name), NULL},
    {"MountPointDirPath", K_STR, F(mount_point_dir_path), NULL},
    {"FUSEBlockSize", K_U32, F(fuse_block_size), NULL},
    {"FUSEAllowOther", K_BOOL, F(fuse_allow_other), NULL},
    {"FUSEMaxBackground", K_U16, F(fuse_max_background), NULL},
    {"FUSECongestionThreshhold", K_U16, F(fuse_congestion_threshhold), NULL},
    {"FUSEMaxRead", K_U32, F(fuse_max_read), NULL},
    {"FUSEMaxWrite", K_U32, F(fuse_max_write), NULL},
    {"FUSEEntryValidDuration", K_DUR, F(fuse_entry_valid_ns), NULL},
    {"FUSEAttrValidDuration", K_DUR, F(fuse_attr_valid_ns), NULL},
    {"AuthPlugInPath", K_STR, F(auth_plug_in_path), NULL},
    {"SwiftTimeout", K_DUR, F(swift_timeout_ns), NULL},
    {"SwiftRetryLimit", K_U64, F(swift_retry_limit), NULL},
    {"SwiftRetryDelay", K_DUR, F(swift_retry_delay_ns), NULL},
    {"SwiftRetryDelayVariance", K_U8, F(swift_retry_delay_variance), NULL},
    {"SwiftRetryExponentialBackoff", K_DOUBLE, F(swift_retry_exponential_backoff), NULL},
    {"SwiftConnectionPoolSize", K_U32, F(swift_connection_pool_size), NULL},
    /* off unless set: an MD5 pass over all file data (iclient/dev.conf) */
    {"SwiftPutETag", K_BOOL, F(swift_put_etag), "false"},
    {"RetryRPCPublicIPAddr", K_STR, F(retry_rpc_public_ip_addr), NULL},
    {"RetryRPCPort", K_U16, F(retry_rpc_port), NULL},
    {"RetryRPCDeadlineIO", K_DUR, F(retry_rpc_deadline_io_ns), NULL},
    {"RetryRPCKeepAlivePeriod", K_DUR, F(retry_rpc_keep_alive_period_ns), NULL},
    {"RetryRPCCACertFilePath", K_STR, F(retry_rpc_ca_cert_file_path), ""},
    {"MaxSharedLeases", K_U64, F(max_shared_leases), NULL},
    {"MaxExclusiveLeases", K_U64, F(max_exclusive_leases), NULL},
    {"InodePayloadEvictLowLimit", K_U64, F(inode_payload_evict_low_limit), NULL},
    {"InodePayloadEvictHighLimit", K_U64, F(inode_payload_evict_high_limit), NULL},
    {"DirInodeMaxKeysPerBPlusTreePage", K_U64, F(dir_inode_max_keys_per_bplustree_page), NULL},
    {"FileInodeMaxKeysPerBPlusTreePage", K_U64, F(file_inode_max_keys_per_bplustree_page), NULL},
    {"ReadCacheLineSize", K_U64, F(read_cache_line_size), NULL},
    {"ReadCacheLineCountMax", K_U64, F(read_cache_line_count_max), NULL},
    {"FileFlushTriggerSize", K_U64, F(file_flush_trigger_size), NULL},
    {"FileFlushTriggerDuration", K_DUR, F(file_flush_trigger_duration_ns), NULL},
    {"InodeLockRetryDelay", K_DUR, F(inode_lock_retry_delay_ns), NULL},
    {"InodeLockRetryDelayVariance", K_U8, F(inode_lock_retry_delay_variance), NULL},
    {"LogFilePath", K_STR, F(log_file_path), ""},
    {"LogToConsole", K_BOOL, F(log_to_console), "true"},
    {"TraceEnabled", K_BOOL, F(trace_enabled), NULL},
    {"FUSELogEnabled", K_BOOL, F(fuse_log_enabled), NULL},
    {"HTTPServerIPAddr", K_STR, F(http_server_ip_addr), "0.0.0.0"},
    {"HTTPServerPort", K_U16, F(http_server_port), "0"},
    {"InodeCacheLimit", K_U64, F(inode_cache_limit), "10000"},
    {"InodePayloadEvictBytesLimit", K_U64, F(inode_payload_evict_bytes_limit), "268435456"},
    {"MountRetryDuration", K_DUR, F(mount_retry_duration_ns), "0"},
    {"MountKeepAlivePeriod", K_DUR, F(mount_keep_alive_period_ns), "60s"},
    {"FUSEMaxThreads", K_U32, F(fuse_max_threads), "16"},
    {"SegmentUploadThreads", K_U32, F(segment_upload_threads), "4"},
    {"SegmentUploadLimit", K_U32, F(segment_upload_limit), "4"},
    {"ReadAheadLines", K_U32, F(read_ahead_lines), "4"},
    {"ReadAheadThreads", K_U32, F(read_ahead_threads), "2"},
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* A default goes through a scratch map so that it is parsed by exactly the
 * code that parses configured values. */
static int load_key(const conf_map *m, conf_map *dflt, const key_spec *k, ic_config *cfg, char *err,
                    size_t errlen) {
  const conf_map *src = m;
  if (k->dflt && conf_is_missing_or_empty(m, IC_CONF_SECTION, k->name)) {
    const char *v = k->dflt;
    int rc = conf_set(dflt, IC_CONF_SECTION, k->name, &v, k->dflt[0] ? 1 : 0);
    if (rc) return rc;
    src = dflt;
  }
  void *dst = (char *)cfg + k->off;
  switch (k->kind) {
  case K_STR: {
    const char *s = "";
    const char *const *vals;
    size_t n;
    /* An optional string may be present with an empty value list. */
    int rc = conf_get_list(src, IC_CONF_SECTION, k->name, &vals, &n, err, errlen);
    if (rc) return rc;
    if (n > 1 || (n == 0 && !k->dflt)) {
      rc = conf_get_string(src, IC_CONF_SECTION, k->name, &s, err, errlen);
      if (rc) return rc;
    } else if (n == 1) {
      s = vals[0];
    }
    char *copy = strdup(s);
    if (!copy) return -ENOMEM;
    *(char **)dst = copy;
    return 0;
  }
  case K_BOOL: return conf_get_bool(src, IC_CONF_SECTION, k->name, dst, err, errlen);
  case K_U8: return conf_get_u8(src, IC_CONF_SECTION, k->name, dst, err, errlen);
  case K_U16: return conf_get_u16(src, IC_CONF_SECTION, k->name, dst, err, errlen);
  case K_U32: return conf_get_u32(src, IC_CONF_SECTION, k->name, dst, err, errlen);
  case K_U64: return conf_get_u64(src, IC_CONF_SECTION, k->name, dst, err, errlen);
  case K_DUR: return conf_get_duration_ns(src, IC_CONF_SECTION, k->name, dst, err, errlen);
  case K_DOUBLE: return conf_get_double(src, IC_CONF_SECTION, k->name, dst, err, errlen);
  }
  return -EINVAL;
}

/* The original's rule: AuthPlugInEnvName missing or empty -> AuthPlugInEnvValue
 * is required; otherwise AuthPlugInEnvValue must be missing or empty. */
static int load_auth_env(const conf_map *m, ic_config *cfg, char *err, size_t errlen) {
  const char *name = "", *value = "";
  int rc;
  if (!conf_is_missing_or_empty(m, IC_CONF_SECTION, "AuthPlugInEnvName")) {
    rc = conf_get_string(m, IC_CONF_SECTION, "AuthPlugInEnvName", &name, err, errlen);
    if (rc) return rc;
    if (!conf_is_missing_or_empty(m, IC_CONF_SECTION, "AuthPlugInEnvValue"))
      return fail(err, errlen, -EINVAL,
                  "If [ICLIENT]AuthPlugInEnvName is present and non-empty, "
                  "[ICLIENT]AuthPlugInEnvValue must be missing or empty");
  } else {
    rc = conf_get_string(m, IC_CONF_SECTION, "AuthPlugInEnvValue", &value, err, errlen);
    if (rc) return rc;
  }
  cfg->auth_plug_in_env_name = strdup(name);
  cfg->auth_plug_in_env_value = strdup(value);
  if (!cfg->auth_plug_in_env_name || !cfg->auth_plug_in_env_value) return -ENOMEM;
  return 0;
}

static int max_keys_ok(uint64_t v) { return v >= 4 && v % 2 == 0 && v <= (UINT64_C(1) << 20); }

/* The thread and queue keys: each within 1..IC_CONF_THREADS_MAX
 * (ReadAheadLines may be 0). */
static int validate_threads(const ic_config *c, char *err, size_t errlen) {
  const struct {
    const char *name;
    uint32_t v, min;
  } k[] = {
      {"FUSEMaxThreads", c->fuse_max_threads, 1},
      {"SegmentUploadThreads", c->segment_upload_threads, 1},
      {"SegmentUploadLimit", c->segment_upload_limit, 1},
      {"ReadAheadLines", c->read_ahead_lines, 0},
      {"ReadAheadThreads", c->read_ahead_threads, 1},
  };
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (k[i].v < k[i].min || k[i].v > IC_CONF_THREADS_MAX)
      return fail(err, errlen, -EINVAL, "[ICLIENT]%s (%u) must be in %u..%u", k[i].name, k[i].v,
                  k[i].min, IC_CONF_THREADS_MAX);
  return 0;
}

/* Checks the original did (variance) and the ones a value must pass for the
 * C port to work at all (instead of failing later in a less clear place). */
static int validate(const ic_config *c, char *err, size_t errlen) {
  if (c->swift_retry_delay_variance == 0)
    return fail(err, errlen, -EINVAL, "[ICLIENT]SwiftRetryDelayVariance must be > 0");
  if (c->swift_retry_delay_variance > 100)
    return fail(err, errlen, -EINVAL, "[ICLIENT]SwiftRetryDelayVariance (%u) must be <= 100",
                c->swift_retry_delay_variance);
  if (c->inode_lock_retry_delay_variance > 100)
    return fail(err, errlen, -EINVAL, "[ICLIENT]InodeLockRetryDelayVariance (%u) must be <= 100",
                c->inode_lock_retry_delay_variance);
  if (!(c->swift_retry_exponential_backoff >= 1.0))
    return fail(err, errlen, -EINVAL, "[ICLIENT]SwiftRetryExponentialBackoff (%g) must be >= 1",
                c->swift_retry_exponential_backoff);
  if (c->volume_name[0] == '\0')
    return fail(err, errlen, -EINVAL, "[ICLIENT]VolumeName must not be empty");
  if (c->mount_point_dir_path[0] == '\0')
    return fail(err, errlen, -EINVAL, "[ICLIENT]MountPointDirPath must not be empty");
  if (c->fuse_block_size == 0)
    return fail(err, errlen, -EINVAL, "[ICLIENT]FUSEBlockSize must be > 0");
  if (c->fuse_max_write == 0 || c->fuse_max_read == 0)
    return fail(err, errlen, -EINVAL, "[ICLIENT]FUSEMaxRead and FUSEMaxWrite must be > 0");
  if (!max_keys_ok(c->dir_inode_max_keys_per_bplustree_page))
    return fail(err, errlen, -EINVAL,
                "[ICLIENT]DirInodeMaxKeysPerBPlusTreePage (%llu) must be even and in 4..1048576",
                (unsigned long long)c->dir_inode_max_keys_per_bplustree_page);
  if (!max_keys_ok(c->file_inode_max_keys_per_bplustree_page))
    return fail(err, errlen, -EINVAL,
                "[ICLIENT]FileInodeMaxKeysPerBPlusTreePage (%llu) must be even and in 4..1048576",
                (unsigned long long)c->file_inode_max_keys_per_bplustree_page);
  if (c->inode_payload_evict_low_limit > c->inode_payload_evict_high_limit)
    return fail(
        err, errlen, -EINVAL,
        "[ICLIENT]InodePayloadEvictLowLimit must be <= [ICLIENT]InodePayloadEvictHighLimit");
  if (c->read_cache_line_size == 0)
    return fail(err, errlen, -EINVAL, "[ICLIENT]ReadCacheLineSize must be > 0");
  if (c->read_cache_line_count_max == 0)
    return fail(err, errlen, -EINVAL, "[ICLIENT]ReadCacheLineCountMax must be > 0");
  if (c->file_flush_trigger_size == 0)
    return fail(err, errlen, -EINVAL, "[ICLIENT]FileFlushTriggerSize must be > 0");
  if (c->inode_cache_limit == 0)
    return fail(err, errlen, -EINVAL, "[ICLIENT]InodeCacheLimit must be > 0");
  return validate_threads(c, err, errlen);
}

int ic_config_load(const conf_map *m, ic_config *cfg, char *err, size_t errlen) {
  memset(cfg, 0, sizeof(*cfg));
  conf_map *dflt = conf_new();
  if (!dflt) return -ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]) && rc == 0; i++)
    rc = load_key(m, dflt, &KEYS[i], cfg, err, errlen);
  conf_free(dflt);
  if (rc == 0) rc = load_auth_env(m, cfg, err, errlen);
  if (rc == 0) rc = validate(cfg, err, errlen);
  if (rc) ic_config_free(cfg);
  return rc;
}

void ic_config_free(ic_config *cfg) {
  for (size_t i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++)
    if (KEYS[i].kind == K_STR) free(*(char **)((char *)cfg + KEYS[i].off));
  free(cfg->auth_plug_in_env_name);
  free(cfg->auth_plug_in_env_value);
  memset(cfg, 0, sizeof(*cfg));
}

static json_t *key_json(const ic_config *c, const key_spec *k) {
  const void *p = (const char *)c + k->off;
  switch (k->kind) {
  case K_STR: return json_string(*(char *const *)p);
  case K_BOOL: return json_boolean(*(const bool *)p);
  case K_U8: return json_integer(*(const uint8_t *)p);
  case K_U16: return json_integer(*(const uint16_t *)p);
  case K_U32: return json_integer(*(const uint32_t *)p);
  case K_U64:
  case K_DUR: return json_integer((json_int_t) * (const uint64_t *)p);
  case K_DOUBLE: return json_real(*(const double *)p);
  }
  return NULL;
}

char *ic_config_to_json(const ic_config *cfg) {
  json_t *o = json_object();
  if (!o) return NULL;
  int bad = 0;
  for (size_t i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++)
    bad |= json_object_set_new(o, KEYS[i].name, key_json(cfg, &KEYS[i]));
  bad |= json_object_set_new(o, "AuthPlugInEnvName", json_string(cfg->auth_plug_in_env_name));
  /* The value carries the Swift key: never show it. */
  bad |= json_object_set_new(o, "AuthPlugInEnvValue",
                             json_string(cfg->auth_plug_in_env_value[0] ? "<redacted>" : ""));
  char *s = bad ? NULL : json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(o);
  return s;
}
