/* imgr configuration: the keys of imgr.md 1.3, their validation and the
 * GET /config encoding. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgr.h"

#define S "IMGR"

/* Name the key in a value error ("time: invalid duration" alone does not). */
static int keyed(int rc, const char *key, char *err, size_t errlen) {
  if (rc && !strstr(err, key)) {
    char tmp[CONF_ERR_MAX];
    snprintf(tmp, sizeof tmp, "%s", err);
    snprintf(err, errlen, "[" S "]%s: %s", key, tmp);
  }
  return rc;
}

/* An optional string: missing or empty gives "". */
static int opt_string(const conf_map *m, const char *key, char **out, char *err,
                      size_t errlen) {
  const char *v = "";
  if (!conf_is_missing_or_empty(m, S, key)) {
    int rc = conf_get_string(m, S, key, &v, err, errlen);
    if (rc) return rc;
  }
  *out = strdup(v);
  return *out ? 0 : -ENOMEM;
}

static int req_string(const conf_map *m, const char *key, char **out, char *err,
                      size_t errlen) {
  const char *v;
  int rc = conf_get_string(m, S, key, &v, err, errlen);
  if (rc) return rc;
  if (!*v) {
    snprintf(err, errlen, "[" S "]%s must not be empty", key);
    return -EINVAL;
  }
  *out = strdup(v);
  return *out ? 0 : -ENOMEM;
}


static int ckpt_keys(const conf_map *m, imgr_config *c, char *err, size_t errlen) {
  bool have = !conf_is_missing_or_empty(m, S, "CheckPointIPAddrs");
  if (have) {
    const char *const *vals;
    size_t n;
    int rc = conf_get_list(m, S, "CheckPointIPAddrs", &vals, &n, err, errlen);
    if (rc) return rc;
    if (n > IMGR_MAX_CKPT_ADDRS) {
      snprintf(err, errlen, "[" S "]CheckPointIPAddrs lists more than %d addresses",
               IMGR_MAX_CKPT_ADDRS);
      return -EINVAL;
    }
    c->check_point_ip_addrs = calloc(n, sizeof(char *));
    if (!c->check_point_ip_addrs) return -ENOMEM;
    c->check_point_ip_addrs_len = n;
    for (size_t i = 0; i < n; i++) {
      if (!*vals[i]) {
        snprintf(err, errlen, "[" S "]CheckPointIPAddrs holds an empty address");
        return -EINVAL;
      }
      if (!(c->check_point_ip_addrs[i] = strdup(vals[i]))) return -ENOMEM;
    }
  }
  /* With ickpt every key is required; without, a given value is still
   * parsed (a bad one is an error) and a missing one means 0. */
#define CK(getter, key, field)                                          \
  do {                                                                  \
    if (have || !conf_is_missing_or_empty(m, S, key)) {                 \
      int rc_ = getter(m, S, key, &c->field, err, errlen);              \
      if (rc_) return keyed(rc_, key, err, errlen);                     \
    }                                                                   \
  } while (0)
  CK(conf_get_u16, "CheckPointPort", check_point_port);
  CK(conf_get_duration_ns, "CheckPointRetryDelay", check_point_retry_delay_ns);
  CK(conf_get_double, "CheckPointRetryExpBackoff", check_point_retry_exp_backoff);
  CK(conf_get_u32, "CheckPointRetryLimit", check_point_retry_limit);
  CK(conf_get_duration_ns, "CheckPointTimeout", check_point_timeout_ns);
  CK(conf_get_u32, "CheckPointConnectionPoolSize", check_point_connection_pool_size);
#undef CK
  if (have && c->check_point_port == 0) {
    snprintf(err, errlen, "[" S "]CheckPointPort must not be 0 when CheckPointIPAddrs is set");
    return -EINVAL;
  }
  return opt_string(m, "CheckPointCACertFilePath", &c->check_point_ca_cert_file_path, err,
                    errlen);
}

static int tls_keys(const conf_map *m, imgr_config *c, char *err, size_t errlen) {
  bool cert_present = conf_has_option(m, S, "RetryRPCCertFilePath");
  bool key_given = !conf_is_missing_or_empty(m, S, "RetryRPCKeyFilePath");
  if (conf_is_missing_or_empty(m, S, "RetryRPCCertFilePath")) {
    if (key_given) {
      snprintf(err, errlen,
               cert_present ? "RetryRPCCertFilePath is present and empty but "
                              "RetryRPCKeyFilePath is present and non-empty"
                            : "RetryRPCCertFilePath is missing but RetryRPCKeyFilePath "
                              "is present and non-empty");
      return -EINVAL;
    }
    c->retry_rpc_cert_file_path = strdup("");
    c->retry_rpc_key_file_path = strdup("");
    return c->retry_rpc_cert_file_path && c->retry_rpc_key_file_path ? 0 : -ENOMEM;
  }
  int rc = req_string(m, "RetryRPCCertFilePath", &c->retry_rpc_cert_file_path, err, errlen);
  if (rc) return rc;
  return req_string(m, "RetryRPCKeyFilePath", &c->retry_rpc_key_file_path, err, errlen);
}

int imgr_config_parse(const conf_map *m, imgr_config *cfg, char *err, size_t errlen) {
  char dummy[CONF_ERR_MAX];
  if (!err) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  memset(cfg, 0, sizeof *cfg);
  int rc;
#define R(getter, key, field)                                   \
  if ((rc = keyed(getter(m, S, key, &cfg->field, err, errlen), key, err, errlen))) goto fail
  if ((rc = req_string(m, "PublicIPAddr", &cfg->public_ip_addr, err, errlen))) goto fail;
  if ((rc = req_string(m, "PrivateIPAddr", &cfg->private_ip_addr, err, errlen))) goto fail;
  R(conf_get_u16, "RetryRPCPort", retry_rpc_port);
  R(conf_get_u16, "HTTPServerPort", http_server_port);
  if ((rc = ckpt_keys(m, cfg, err, errlen))) goto fail;
  R(conf_get_duration_ns, "RetryRPCTTLCompleted", retry_rpc_ttl_completed_ns);
  R(conf_get_duration_ns, "RetryRPCAckTrim", retry_rpc_ack_trim_ns);
  R(conf_get_duration_ns, "RetryRPCDeadlineIO", retry_rpc_deadline_io_ns);
  R(conf_get_duration_ns, "RetryRPCKeepAlivePeriod", retry_rpc_keep_alive_period_ns);
  if ((rc = tls_keys(m, cfg, err, errlen))) goto fail;
  R(conf_get_duration_ns, "CheckPointInterval", check_point_interval_ns);
  R(conf_get_duration_ns, "AuthTokenCheckInterval", auth_token_check_interval_ns);
  R(conf_get_u64, "FetchNonceRangeToReturn", fetch_nonce_range_to_return);
  R(conf_get_u64, "MountLimit", mount_limit);
  R(conf_get_u64, "OpenFileLimit", open_file_limit);
  R(conf_get_duration_ns, "MinLeaseDuration", min_lease_duration_ns);
  R(conf_get_duration_ns, "LeaseInterruptInterval", lease_interrupt_interval_ns);
  R(conf_get_u32, "LeaseInterruptLimit", lease_interrupt_limit);
  R(conf_get_u64, "LeaseEvictLowLimit", lease_evict_low_limit);
  R(conf_get_u64, "LeaseEvictHighLimit", lease_evict_high_limit);
  R(conf_get_duration_ns, "SwiftRetryDelay", swift_retry_delay_ns);
  R(conf_get_double, "SwiftRetryExpBackoff", swift_retry_exp_backoff);
  R(conf_get_u32, "SwiftRetryLimit", swift_retry_limit);
  R(conf_get_duration_ns, "SwiftTimeout", swift_timeout_ns);
  R(conf_get_u32, "SwiftConnectionPoolSize", swift_connection_pool_size);
  R(conf_get_u32, "ParallelObjectDeletePerVolumeLimit", parallel_object_delete_per_volume_limit);
  R(conf_get_u64, "InodeTableCacheEvictLowLimit", inode_table_cache_evict_low_limit);
  R(conf_get_u64, "InodeTableCacheEvictHighLimit", inode_table_cache_evict_high_limit);
  R(conf_get_u64, "InodeTableMaxInodesPerBPlusTreePage", inode_table_max_inodes_per_bplustree_page);
  R(conf_get_u64, "RootDirMaxDirEntriesPerBPlusTreePage",
    root_dir_max_dir_entries_per_bplustree_page);
  if (!conf_has_option(m, S, "LogFilePath")) {
    snprintf(err, errlen, "LogFilePath must either be a valid string or empty");
    rc = -ENOENT;
    goto fail;
  }
  if ((rc = opt_string(m, "LogFilePath", &cfg->log_file_path, err, errlen))) goto fail;
  R(conf_get_bool, "LogToConsole", log_to_console);
  R(conf_get_bool, "TraceEnabled", trace_enabled);
  R(conf_get_bool, "RetryRPCLogEnabled", retry_rpc_log_enabled);
  cfg->http_max_body = 1 << 20;
  if (!conf_is_missing_or_empty(m, S, "HTTPMaxBodySize"))
    R(conf_get_u64, "HTTPMaxBodySize", http_max_body);
#undef R

  /* Sanity the original lacked: values that would make imgr misbehave. */
  const char *bad = NULL;
  if (cfg->fetch_nonce_range_to_return == 0) bad = "FetchNonceRangeToReturn must be > 0";
  else if (cfg->check_point_interval_ns == 0) bad = "CheckPointInterval must be > 0";
  else if (cfg->parallel_object_delete_per_volume_limit == 0)
    bad = "ParallelObjectDeletePerVolumeLimit must be > 0";
  else if (cfg->inode_table_cache_evict_low_limit == 0)
    bad = "InodeTableCacheEvictLowLimit must be > 0";
  else if (cfg->inode_table_cache_evict_high_limit < cfg->inode_table_cache_evict_low_limit)
    bad = "InodeTableCacheEvictHighLimit must be >= InodeTableCacheEvictLowLimit";
  else if (cfg->lease_evict_high_limit < cfg->lease_evict_low_limit)
    bad = "LeaseEvictHighLimit must be >= LeaseEvictLowLimit";
  else if (cfg->inode_table_max_inodes_per_bplustree_page < 4 ||
           cfg->inode_table_max_inodes_per_bplustree_page % 2 ||
           cfg->inode_table_max_inodes_per_bplustree_page > (1u << 20))
    bad = "InodeTableMaxInodesPerBPlusTreePage must be even and in 4..1048576";
  else if (cfg->root_dir_max_dir_entries_per_bplustree_page < 4 ||
           cfg->root_dir_max_dir_entries_per_bplustree_page % 2 ||
           cfg->root_dir_max_dir_entries_per_bplustree_page > (1u << 20))
    bad = "RootDirMaxDirEntriesPerBPlusTreePage must be even and in 4..1048576";
  else if (cfg->swift_retry_exp_backoff < 1.0) bad = "SwiftRetryExpBackoff must be >= 1";
  else if (cfg->check_point_ip_addrs_len && cfg->check_point_retry_exp_backoff < 1.0)
    bad = "CheckPointRetryExpBackoff must be >= 1";
  if (bad) {
    snprintf(err, errlen, "[" S "]%s", bad);
    rc = -EINVAL;
    goto fail;
  }
  return 0;
fail:
  imgr_config_free(cfg);
  return rc;
}

void imgr_config_free(imgr_config *c) {
  free(c->public_ip_addr);
  free(c->private_ip_addr);
  for (size_t i = 0; i < c->check_point_ip_addrs_len; i++) free(c->check_point_ip_addrs[i]);
  free(c->check_point_ip_addrs);
  free(c->check_point_ca_cert_file_path);
  free(c->retry_rpc_cert_file_path);
  free(c->retry_rpc_key_file_path);
  free(c->log_file_path);
  memset(c, 0, sizeof *c);
}

json_t *imgr_config_to_json(const imgr_config *c) {
  json_t *addrs = json_null();
  if (c->check_point_ip_addrs_len) {
    addrs = json_array();
    for (size_t i = 0; i < c->check_point_ip_addrs_len; i++)
      json_array_append_new(addrs, json_string(c->check_point_ip_addrs[i]));
  }
  /* Member order is imgr.md 1.3's table order; jansson keeps insertion
   * order when dumping with JSON_PRESERVE_ORDER. */
  return json_pack(
      "{s:s, s:s, s:I, s:I, s:o, s:I, s:s, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
      " s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I,"
      " s:I, s:I, s:I, s:I, s:I, s:s, s:b, s:b, s:b}",
      "PublicIPAddr", c->public_ip_addr, "PrivateIPAddr", c->private_ip_addr,
      "RetryRPCPort", (json_int_t)c->retry_rpc_port, "HTTPServerPort",
      (json_int_t)c->http_server_port, "CheckPointIPAddrs", addrs, "CheckPointPort",
      (json_int_t)c->check_point_port, "CheckPointCACertFilePath",
      c->check_point_ca_cert_file_path, "CheckPointRetryDelay",
      (json_int_t)c->check_point_retry_delay_ns, "CheckPointRetryExpBackoff",
      c->check_point_retry_exp_backoff, "CheckPointRetryLimit",
      (json_int_t)c->check_point_retry_limit, "CheckPointTimeout",
      (json_int_t)c->check_point_timeout_ns, "CheckPointConnectionPoolSize",
      (json_int_t)c->check_point_connection_pool_size, "RetryRPCTTLCompleted",
      (json_int_t)c->retry_rpc_ttl_completed_ns, "RetryRPCAckTrim",
      (json_int_t)c->retry_rpc_ack_trim_ns, "RetryRPCDeadlineIO",
      (json_int_t)c->retry_rpc_deadline_io_ns, "RetryRPCKeepAlivePeriod",
      (json_int_t)c->retry_rpc_keep_alive_period_ns, "RetryRPCCertFilePath",
      c->retry_rpc_cert_file_path, "RetryRPCKeyFilePath", c->retry_rpc_key_file_path,
      "CheckPointInterval", (json_int_t)c->check_point_interval_ns, "AuthTokenCheckInterval",
      (json_int_t)c->auth_token_check_interval_ns, "FetchNonceRangeToReturn",
      (json_int_t)c->fetch_nonce_range_to_return, "MountLimit", (json_int_t)c->mount_limit,
      "OpenFileLimit", (json_int_t)c->open_file_limit, "MinLeaseDuration",
      (json_int_t)c->min_lease_duration_ns, "LeaseInterruptInterval",
      (json_int_t)c->lease_interrupt_interval_ns, "LeaseInterruptLimit",
      (json_int_t)c->lease_interrupt_limit, "LeaseEvictLowLimit",
      (json_int_t)c->lease_evict_low_limit, "LeaseEvictHighLimit",
      (json_int_t)c->lease_evict_high_limit, "SwiftRetryDelay",
      (json_int_t)c->swift_retry_delay_ns, "SwiftRetryExpBackoff", c->swift_retry_exp_backoff,
      "SwiftRetryLimit", (json_int_t)c->swift_retry_limit, "SwiftTimeout",
      (json_int_t)c->swift_timeout_ns, "SwiftConnectionPoolSize",
      (json_int_t)c->swift_connection_pool_size, "ParallelObjectDeletePerVolumeLimit",
      (json_int_t)c->parallel_object_delete_per_volume_limit, "InodeTableCacheEvictLowLimit",
      (json_int_t)c->inode_table_cache_evict_low_limit, "InodeTableCacheEvictHighLimit",
      (json_int_t)c->inode_table_cache_evict_high_limit, "InodeTableMaxInodesPerBPlusTreePage",
      (json_int_t)c->inode_table_max_inodes_per_bplustree_page,
      "RootDirMaxDirEntriesPerBPlusTreePage",
      (json_int_t)c->root_dir_max_dir_entries_per_bplustree_page, "LogFilePath",
      c->log_file_path, "LogToConsole", c->log_to_console, "TraceEnabled", c->trace_enabled,
      "RetryRPCLogEnabled", c->retry_rpc_log_enabled);
}
