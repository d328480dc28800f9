/* imgr configuration: the sample files parse; each required key, when
 * missing, is named in the error; the conditional ickpt and TLS rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imgr.h"

static conf_map *load(const char *file) {
  char path[1024], err[CONF_ERR_MAX];
  const char *src = getenv("PFS_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/imgr/%s", src ? src : ".", file);
  conf_map *m = conf_new();
  assert_non_null(m);
  assert_int_equal(conf_update_from_file(m, path, err, sizeof err), 0);
  return m;
}

static void set(conf_map *m, const char *kv) {
  char err[CONF_ERR_MAX];
  assert_int_equal(conf_update_from_string(m, kv, err, sizeof err), 0);
}

static void test_dev_conf(void **state) {
  conf_map *m = load("dev.conf");
  imgr_config c;
  char err[CONF_ERR_MAX];
  assert_int_equal(imgr_config_parse(m, &c, err, sizeof err), 0);
  assert_string_equal(c.public_ip_addr, "127.0.0.1");
  assert_int_equal(c.http_server_port, 15346);
  assert_int_equal(c.check_point_ip_addrs_len, 0);
  assert_int_equal(c.check_point_interval_ns, 10000000000ull);
  assert_int_equal(c.parallel_object_delete_per_volume_limit, 10);
  assert_string_equal(c.retry_rpc_cert_file_path, "");
  assert_string_equal(c.log_file_path, "");
  assert_true(c.log_to_console);
  json_t *j = imgr_config_to_json(&c);
  char *s = json_dumps(j, JSON_COMPACT);
  /* First members in table order, durations in ns, no ickpt = null. */
  assert_non_null(strstr(s, "{\"PublicIPAddr\":\"127.0.0.1\",\"PrivateIPAddr\":\"127.0.0.1\","
                            "\"RetryRPCPort\":32356,\"HTTPServerPort\":15346,"
                            "\"CheckPointIPAddrs\":null"));
  assert_non_null(strstr(s, "\"CheckPointInterval\":10000000000"));
  assert_non_null(strstr(s, "\"RetryRPCLogEnabled\":false}"));
  free(s);
  json_decref(j);
  imgr_config_free(&c);
  conf_free(m);
}

static void test_imgr_conf(void **state) {
  conf_map *m = load("imgr.conf");
  imgr_config c;
  char err[CONF_ERR_MAX];
  assert_int_equal(imgr_config_parse(m, &c, err, sizeof err), 0);
  assert_int_equal(c.check_point_ip_addrs_len, 1);
  assert_string_equal(c.check_point_ip_addrs[0], "ickpt");
  assert_int_equal(c.check_point_port, 33123);
  assert_string_equal(c.retry_rpc_key_file_path, "imgr_key.pem");
  assert_true(c.check_point_retry_exp_backoff == 2.0);
  imgr_config_free(&c);
  conf_free(m);
}

static const char *required[] = {
    "PublicIPAddr", "PrivateIPAddr", "RetryRPCPort", "HTTPServerPort", "RetryRPCTTLCompleted",
    "RetryRPCAckTrim", "RetryRPCDeadlineIO", "RetryRPCKeepAlivePeriod", "CheckPointInterval",
    "AuthTokenCheckInterval", "FetchNonceRangeToReturn", "MountLimit", "OpenFileLimit",
    "MinLeaseDuration", "LeaseInterruptInterval", "LeaseInterruptLimit", "LeaseEvictLowLimit",
    "LeaseEvictHighLimit", "SwiftRetryDelay", "SwiftRetryExpBackoff", "SwiftRetryLimit",
    "SwiftTimeout", "SwiftConnectionPoolSize", "ParallelObjectDeletePerVolumeLimit",
    "InodeTableCacheEvictLowLimit", "InodeTableCacheEvictHighLimit",
    "InodeTableMaxInodesPerBPlusTreePage", "RootDirMaxDirEntriesPerBPlusTreePage",
    "LogFilePath", "LogToConsole", "TraceEnabled", "RetryRPCLogEnabled"};

/* Removing a key: rebuild the map from dev.conf without that line. */
static conf_map *without(const char *key) {
  conf_map *full = load("dev.conf");
  conf_map *m = conf_new();
  char err[CONF_ERR_MAX], kv[512];
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
    if (!strcmp(required[i], key)) continue;
    const char *const *v;
    size_t n;
    assert_int_equal(conf_get_list(full, "IMGR", required[i], &v, &n, err, sizeof err), 0);
    assert_int_equal(conf_set(m, "IMGR", required[i], v, n), 0);
  }
  (void)kv;
  conf_free(full);
  return m;
}

static void test_missing_keys_are_named(void **state) {
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
    conf_map *m = without(required[i]);
    imgr_config c;
    char err[CONF_ERR_MAX] = "";
    assert_int_not_equal(imgr_config_parse(m, &c, err, sizeof err), 0);
    if (!strstr(err, required[i])) fail_msg("missing %s: message '%s'", required[i], err);
    conf_free(m);
  }
  /* The full set (no ickpt keys at all) is fine. */
  conf_map *m = without("none");
  imgr_config c;
  char err[CONF_ERR_MAX];
  assert_int_equal(imgr_config_parse(m, &c, err, sizeof err), 0);
  imgr_config_free(&c);
  conf_free(m);
}

static void expect_error(conf_map *m, const char *needle) {
  imgr_config c;
  char err[CONF_ERR_MAX] = "";
  assert_int_not_equal(imgr_config_parse(m, &c, err, sizeof err), 0);
  if (!strstr(err, needle)) fail_msg("expected '%s' in '%s'", needle, err);
}

static void test_ickpt_rules(void **state) {
  conf_map *m = without("none");
  set(m, "IMGR.CheckPointIPAddrs=127.0.0.1");
  expect_error(m, "CheckPointPort");
  set(m, "IMGR.CheckPointPort=33123");
  expect_error(m, "CheckPointRetryDelay");
  set(m, "IMGR.CheckPointRetryDelay=100ms");
  set(m, "IMGR.CheckPointRetryExpBackoff=2");
  set(m, "IMGR.CheckPointRetryLimit=4");
  set(m, "IMGR.CheckPointTimeout=10m");
  expect_error(m, "CheckPointConnectionPoolSize");
  set(m, "IMGR.CheckPointConnectionPoolSize=10");
  imgr_config c;
  char err[CONF_ERR_MAX];
  assert_int_equal(imgr_config_parse(m, &c, err, sizeof err), 0);
  assert_string_equal(c.check_point_ca_cert_file_path, "");
  imgr_config_free(&c);
  conf_free(m);
  /* Without ickpt a given value is still parsed. */
  m = without("none");
  set(m, "IMGR.CheckPointRetryDelay=soon");
  expect_error(m, "CheckPointRetryDelay");
  conf_free(m);
}

static void test_tls_rules(void **state) {
  conf_map *m = without("none");
  set(m, "IMGR.RetryRPCKeyFilePath=key.pem");
  expect_error(m, "RetryRPCCertFilePath is missing but RetryRPCKeyFilePath is present and non-empty");
  set(m, "IMGR.RetryRPCCertFilePath=");
  expect_error(m, "RetryRPCCertFilePath is present and empty but RetryRPCKeyFilePath is present and non-empty");
  set(m, "IMGR.RetryRPCCertFilePath=cert.pem");
  imgr_config c;
  char err[CONF_ERR_MAX];
  assert_int_equal(imgr_config_parse(m, &c, err, sizeof err), 0);
  assert_string_equal(c.retry_rpc_cert_file_path, "cert.pem");
  imgr_config_free(&c);
  conf_free(m);
  m = without("none");
  set(m, "IMGR.RetryRPCCertFilePath=cert.pem");
  expect_error(m, "RetryRPCKeyFilePath");
  conf_free(m);
}

static void test_bad_values(void **state) {
  struct { const char *kv, *needle; } cases[] = {
      {"IMGR.HTTPServerPort=70000", "HTTPServerPort"},
      {"IMGR.SwiftTimeout=ten", "SwiftTimeout"},
      {"IMGR.LogToConsole=maybe", "LogToConsole"},
      {"IMGR.FetchNonceRangeToReturn=0", "FetchNonceRangeToReturn"},
      {"IMGR.InodeTableCacheEvictHighLimit=5", "InodeTableCacheEvictHighLimit"},
      {"IMGR.InodeTableMaxInodesPerBPlusTreePage=7", "InodeTableMaxInodesPerBPlusTreePage"},
      {"IMGR.PublicIPAddr=", "PublicIPAddr"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    conf_map *m = without("none");
    set(m, cases[i].kv);
    expect_error(m, cases[i].needle);
    conf_free(m);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dev_conf),       cmocka_unit_test(test_imgr_conf),
      cmocka_unit_test(test_missing_keys_are_named), cmocka_unit_test(test_ickpt_rules),
      cmocka_unit_test(test_tls_rules),      cmocka_unit_test(test_bad_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
