/* [ICLIENT] loading: the sample dev.conf and iclient.conf (docker-compose
 * deployment), the original's validation
 * messages, the AuthPlugInEnv* rule, defaults of optional keys, redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ic_conf.h"
#include "ic_imgr.h"

static conf_map *load_conf(const char *path) {
  conf_map *m = conf_new();
  char err[CONF_ERR_MAX];
  assert_non_null(m);
  assert_int_equal(conf_update_from_file(m, path, err, sizeof(err)), 0);
  return m;
}

static conf_map *dev_conf(void) { return load_conf(IC_DEV_CONF); }

static void set1(conf_map *m, const char *key, const char *value) {
  const char *v = value;
  assert_int_equal(conf_set(m, IC_CONF_SECTION, key, &v, value ? 1 : 0), 0);
}

static void expect_error(conf_map *m, int rc_want, const char *msg) {
  ic_config cfg;
  char err[CONF_ERR_MAX] = "";
  assert_int_equal(ic_config_load(m, &cfg, err, sizeof(err)), rc_want);
  assert_string_equal(err, msg);
  conf_free(m);
}

/* The thread and queue keys. */
static void expect_threads(const ic_config *cfg, uint32_t fuse, uint32_t upload_threads,
                           uint32_t upload_limit, uint32_t ahead_lines, uint32_t ahead_threads) {
  assert_int_equal(cfg->fuse_max_threads, fuse);
  assert_int_equal(cfg->segment_upload_threads, upload_threads);
  assert_int_equal(cfg->segment_upload_limit, upload_limit);
  assert_int_equal(cfg->read_ahead_lines, ahead_lines);
  assert_int_equal(cfg->read_ahead_threads, ahead_threads);
}

static void test_dev_conf(void **state) {
  (void)state;
  conf_map *m = dev_conf();
  ic_config cfg;
  char err[CONF_ERR_MAX] = "";
  assert_int_equal(ic_config_load(m, &cfg, err, sizeof(err)), 0);
  assert_string_equal(cfg.volume_name, "testvol");
  assert_int_equal(cfg.fuse_block_size, 512);
  assert_int_equal(cfg.fuse_max_read, 131076);
  assert_int_equal(cfg.fuse_entry_valid_ns, 250000000ULL);
  assert_int_equal(cfg.swift_timeout_ns, 600000000000ULL);
  assert_int_equal(cfg.swift_retry_delay_variance, 25);
  assert_true(cfg.swift_retry_exponential_backoff > 1.39 &&
              cfg.swift_retry_exponential_backoff < 1.41);
  assert_string_equal(cfg.retry_rpc_public_ip_addr, "127.0.0.1");
  assert_int_equal(cfg.retry_rpc_port, 32356);
  assert_string_equal(cfg.retry_rpc_ca_cert_file_path, "");
  assert_string_equal(cfg.auth_plug_in_env_name, "");
  assert_non_null(strstr(cfg.auth_plug_in_env_value, "\"AuthKey\":\"testing\","));
  assert_int_equal(cfg.dir_inode_max_keys_per_bplustree_page, 1024);
  assert_int_equal(cfg.file_inode_max_keys_per_bplustree_page, 2048);
  assert_int_equal(cfg.read_cache_line_size, 262144);
  assert_int_equal(cfg.read_cache_line_count_max, 1024);
  assert_int_equal(cfg.http_server_port, 15347);
  assert_int_equal(cfg.inode_cache_limit, 100000);
  assert_int_equal(cfg.max_shared_leases, 100000);
  assert_int_equal(cfg.max_exclusive_leases, 100000);
  assert_int_equal(cfg.inode_payload_evict_bytes_limit, 256 << 20);
  assert_int_equal(cfg.mount_retry_duration_ns, 30000000000ULL);
  expect_threads(&cfg, 16, 4, 4, 8, 2);
  assert_false(cfg.swift_put_etag);

  char *json = ic_config_to_json(&cfg);
  assert_non_null(json);
  assert_null(strstr(json, "testing")); /* the Swift key never shows */
  assert_non_null(strstr(json, "\"AuthPlugInEnvValue\": \"<redacted>\""));
  assert_non_null(strstr(json, "\"RetryRPCPort\": 32356"));
  free(json);
  ic_config_free(&cfg);
  conf_free(m);
}

/* The deploy image's conf: compose host names, TLS to imgr with the CA the
 * image makes, /mnt, and an HTTP server the host can reach. */
static void test_iclient_conf(void **state) {
  (void)state;
  conf_map *m = load_conf(IC_ICLIENT_CONF);
  ic_config cfg;
  char err[CONF_ERR_MAX] = "";
  assert_int_equal(ic_config_load(m, &cfg, err, sizeof(err)), 0);
  assert_string_equal(cfg.volume_name, "testvol");
  assert_string_equal(cfg.mount_point_dir_path, "/mnt");
  assert_true(cfg.fuse_allow_other);
  assert_string_equal(cfg.retry_rpc_public_ip_addr, "imgr");
  assert_int_equal(cfg.retry_rpc_port, 32356);
  assert_string_equal(cfg.retry_rpc_ca_cert_file_path, "ca_cert.pem");
  assert_non_null(strstr(cfg.auth_plug_in_env_value, "\"AuthURL\":\"http://swift:8080/auth/v1.0\","));
  assert_string_equal(cfg.http_server_ip_addr, "0.0.0.0");
  assert_int_equal(cfg.http_server_port, 15347);
  assert_string_equal(cfg.log_file_path, "");
  assert_true(cfg.log_to_console);
  ic_config_free(&cfg);
  conf_free(m);
}

static void test_optional_defaults(void **state) {
  (void)state;
  conf_map *m = dev_conf();
  const char *keys[] = {"RetryRPCCACertFilePath", "LogFilePath",    "LogToConsole",
                        "HTTPServerIPAddr",       "HTTPServerPort", "InodeCacheLimit",
                        "MountRetryDuration",     "MountKeepAlivePeriod",
                        "InodePayloadEvictBytesLimit", "FUSEMaxThreads", "SegmentUploadThreads",
                        "SegmentUploadLimit",     "ReadAheadLines", "ReadAheadThreads",
                        "SwiftPutETag"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) set1(m, keys[i], NULL);
  ic_config cfg;
  char err[CONF_ERR_MAX] = "";
  assert_int_equal(ic_config_load(m, &cfg, err, sizeof(err)), 0);
  assert_string_equal(cfg.log_file_path, "");
  assert_true(cfg.log_to_console);
  assert_string_equal(cfg.http_server_ip_addr, "0.0.0.0");
  assert_int_equal(cfg.http_server_port, 0);
  assert_int_equal(cfg.inode_cache_limit, 10000);
  assert_int_equal(cfg.inode_payload_evict_bytes_limit, 256 << 20);
  assert_int_equal(cfg.mount_retry_duration_ns, 0);
  assert_int_equal(cfg.mount_keep_alive_period_ns, 60000000000ULL);
  expect_threads(&cfg, 16, 4, 4, 4, 2);
  assert_false(cfg.swift_put_etag);
  ic_config_free(&cfg);
  set1(m, "SwiftPutETag", "true");
  assert_int_equal(ic_config_load(m, &cfg, err, sizeof(err)), 0);
  assert_true(cfg.swift_put_etag);
  ic_config_free(&cfg);
  conf_free(m);
}

static void test_missing_required(void **state) {
  (void)state;
  conf_map *m = conf_new();
  assert_int_equal(conf_update_from_string(m, "ICLIENT.VolumeName=v", NULL, 0), 0);
  expect_error(m, -ENOENT, "[ICLIENT]MountPointDirPath missing");
}

/* dev.conf with key set to value must fail to load with msg. */
static void expect_bad(const char *key, const char *value, const char *msg) {
  conf_map *m = dev_conf();
  set1(m, key, value);
  expect_error(m, -EINVAL, msg);
}

static void test_variance(void **state) {
  (void)state;
  expect_bad("SwiftRetryDelayVariance", "0", "[ICLIENT]SwiftRetryDelayVariance must be > 0");
  expect_bad("SwiftRetryDelayVariance", "101",
             "[ICLIENT]SwiftRetryDelayVariance (101) must be <= 100");
  expect_bad("InodeLockRetryDelayVariance", "200",
             "[ICLIENT]InodeLockRetryDelayVariance (200) must be <= 100");
}

static void test_auth_env_rule(void **state) {
  (void)state;
  conf_map *m = dev_conf();
  set1(m, "AuthPlugInEnvName", "IAUTH_INPUT");
  expect_error(m, -EINVAL,
               "If [ICLIENT]AuthPlugInEnvName is present and non-empty, "
               "[ICLIENT]AuthPlugInEnvValue must be missing or empty");

  m = dev_conf();
  set1(m, "AuthPlugInEnvName", "IAUTH_INPUT");
  set1(m, "AuthPlugInEnvValue", NULL);
  ic_config cfg;
  char err[CONF_ERR_MAX] = "";
  assert_int_equal(ic_config_load(m, &cfg, err, sizeof(err)), 0);
  assert_string_equal(cfg.auth_plug_in_env_name, "IAUTH_INPUT");
  assert_string_equal(cfg.auth_plug_in_env_value, "");
  ic_config_free(&cfg);
  conf_free(m);

  m = dev_conf();
  set1(m, "AuthPlugInEnvValue", NULL);
  expect_error(m, -EINVAL, "[ICLIENT]AuthPlugInEnvValue must be single-valued");
}

static void test_bad_values(void **state) {
  (void)state;
  expect_bad("DirInodeMaxKeysPerBPlusTreePage", "1023",
             "[ICLIENT]DirInodeMaxKeysPerBPlusTreePage (1023) must be even and in 4..1048576");
  expect_bad("InodePayloadEvictLowLimit", "200000",
             "[ICLIENT]InodePayloadEvictLowLimit must be <= [ICLIENT]InodePayloadEvictHighLimit");
  expect_bad("ReadCacheLineSize", "0", "[ICLIENT]ReadCacheLineSize must be > 0");
  expect_bad("SwiftRetryExponentialBackoff", "0.5",
             "[ICLIENT]SwiftRetryExponentialBackoff (0.5) must be >= 1");
  expect_bad("FUSEMaxThreads", "0", "[ICLIENT]FUSEMaxThreads (0) must be in 1..1024");
  expect_bad("ReadAheadThreads", "1025", "[ICLIENT]ReadAheadThreads (1025) must be in 1..1024");
  expect_bad("SegmentUploadLimit", "0", "[ICLIENT]SegmentUploadLimit (0) must be in 1..1024");
}

/* ReadAheadLines 0 turns read-ahead off: accepted. */
static void test_read_ahead_off(void **state) {
  (void)state;
  conf_map *m = dev_conf();
  set1(m, "ReadAheadLines", "0");
  ic_config cfg;
  char err[CONF_ERR_MAX] = "";
  assert_int_equal(ic_config_load(m, &cfg, err, sizeof(err)), 0);
  assert_int_equal(cfg.read_ahead_lines, 0);
  ic_config_free(&cfg);
  conf_free(m);
}

static void test_rpc_errno_table(void **state) {
  (void)state;
  assert_int_equal(ic_rpc_errno("EAuthTokenRejected: tok"), -EACCES);
  assert_int_equal(ic_rpc_errno("EMissingLease: 0000000000000001"), -ENOLCK);
  assert_int_equal(ic_rpc_errno("ELeaseRequestDenied: LeaseRequestType 9 not supported"), -ENOLCK);
  assert_int_equal(ic_rpc_errno("ETooManyMounts"), -EUSERS);
  assert_int_equal(ic_rpc_errno("ETooManyOpens"), -EMFILE);
  assert_int_equal(ic_rpc_errno("EUnknownInodeNumber: 0000000000000002"), -ENOENT);
  assert_int_equal(ic_rpc_errno("EUnknownMountID: x"), -ENOTCONN);
  assert_int_equal(ic_rpc_errno("EUnknownVolumeName: v"), -ENODEV);
  assert_int_equal(ic_rpc_errno("EVolumeBeingDeleted: v"), -ESHUTDOWN);
  assert_int_equal(ic_rpc_errno("EBadOpenCountAdjustment: 0000000000000001 0"), -EINVAL);
  assert_int_equal(ic_rpc_errno("globals.config.SwiftRetryLimit exceeded"), -EIO);
  ic_rpc_err e;
  assert_int_equal(ic_rpc_fail(&e, "EUnknownInodeNumber: %016llX", 0x2AULL), -ENOENT);
  assert_string_equal(e.msg, "EUnknownInodeNumber: 000000000000002A");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dev_conf),         cmocka_unit_test(test_iclient_conf),
      cmocka_unit_test(test_optional_defaults),
      cmocka_unit_test(test_missing_required), cmocka_unit_test(test_variance),
      cmocka_unit_test(test_auth_env_rule),    cmocka_unit_test(test_read_ahead_off),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_rpc_errno_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
