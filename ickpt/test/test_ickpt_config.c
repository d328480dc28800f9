/* Unit tests of the [ICKPT] configuration: both sample files, defaults,
 * the TLS triple rule and refused values. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "ickpt_service.h"

static conf_map *load_sample(const char *name) {
  const char *src = getenv("PFS_SOURCE_DIR");
  char path[1024];
  snprintf(path, sizeof path, "%s/ickpt/%s", src ? src : ".", name);
  conf_map *m = conf_new();
  char err[CONF_ERR_MAX];
  int rc = conf_update_from_file(m, path, err, sizeof err);
  if (rc != 0) {
    fail_msg("%s: %s", path, err);
  }
  return m;
}

static void set(conf_map *m, const char *override) {
  char err[CONF_ERR_MAX];
  assert_int_equal(conf_update_from_string(m, override, err, sizeof err), 0);
}

/* ickpt.conf is the deploy image's: compose host name, HTTPS with the
 * image's PEM files, the database on the compose volume. */
static void test_sample_ickpt_conf(void **state) {
  (void)state;
  conf_map *m = load_sample("ickpt.conf");
  ickpt_config c;
  char err[CONF_ERR_MAX] = "";
  assert_int_equal(ickpt_config_parse(m, &c, err, sizeof err), 0);
  assert_string_equal(c.ip_addr, "ickpt");
  assert_int_equal(c.port, 33123);
  assert_string_equal(c.cert_file, "ickpt_cert.pem");
  assert_string_equal(c.key_file, "ickpt_key.pem");
  assert_string_equal(c.cacert_file, "ca_cert.pem");
  assert_string_equal(c.db_path, "/var/lib/ickpt");
  assert_string_equal(c.store.path, "/var/lib/ickpt");
  assert_true(c.auth.retry_delay_ns == 100000000ull);
  assert_true(c.auth.retry_backoff == 2.0);
  assert_int_equal(c.auth.retry_limit, 4);
  assert_true(c.auth.timeout_ns == 600ull * 1000000000ull);
  assert_int_equal(c.auth.pool_size, 128);
  assert_true(c.store.txn_timeout_ns == 10ull * 1000000000ull);
  assert_true(c.store.map_size == 64ull << 20);
  assert_int_equal(c.store.max_value, 4096);
  assert_int_equal(c.auth.max_body, 4096);
  assert_int_equal(c.store.max_staged, 4096);
  assert_true(c.store.enforce_monotonic);
  assert_true(c.auth.cache_ttl_ns == 0);
  assert_int_equal(c.auth.cache_max, 1024);
  assert_int_equal(c.max_connections, 64);
  ickpt_config_free(&c);
  conf_free(m);
}

static void test_sample_dev_conf_defaults(void **state) {
  (void)state;
  /* dev.conf lacks the SwiftRetry* keys the older impl required. */
  conf_map *m = load_sample("dev.conf");
  ickpt_config c;
  char err[CONF_ERR_MAX] = "";
  assert_int_equal(ickpt_config_parse(m, &c, err, sizeof err), 0);
  assert_string_equal(c.ip_addr, "127.0.0.1");
  assert_true(c.auth.retry_delay_ns == 100000000ull);
  assert_int_equal(c.auth.retry_limit, 4);
  assert_true(c.store.txn_timeout_ns == 10ull * 1000000000ull);
  ickpt_config_free(&c);
  set(m, "ICKPT.TransactionTimeout=250ms");
  set(m, "ICKPT.EnforceMonotonic=false");
  set(m, "ICKPT.AuthCacheTTL=1m");
  set(m, "ICKPT.MaxValueSize=67");
  assert_int_equal(ickpt_config_parse(m, &c, err, sizeof err), 0);
  assert_true(c.store.txn_timeout_ns == 250000000ull);
  assert_false(c.store.enforce_monotonic);
  assert_true(c.auth.cache_ttl_ns == 60ull * 1000000000ull);
  assert_int_equal(c.store.max_value, 67);
  ickpt_config_free(&c);
  conf_free(m);
}

static void expect_refused(const char *override, const char *needle) {
  conf_map *m = load_sample("dev.conf"); /* plain HTTP: no TLS key set */
  set(m, override);
  ickpt_config c;
  char err[CONF_ERR_MAX] = "";
  assert_true(ickpt_config_parse(m, &c, err, sizeof err) < 0);
  if (strstr(err, needle) == NULL) {
    fail_msg("%s: message \"%s\" lacks \"%s\"", override, err, needle);
  }
  assert_null(c.ip_addr);
  conf_free(m);
}

static void test_refused(void **state) {
  (void)state;
  const char *tls = "[ICKPT]{Cert|Key|CACert}FilePath must either all be present or all "
                    "Emtpy/Mising";
  expect_refused("ICKPT.CertFilePath=c.pem", tls);
  expect_refused("ICKPT.CACertFilePath=ca.pem", tls);
  expect_refused("ICKPT.Port=65536", "Port");
  expect_refused("ICKPT.Port=", "Port");
  expect_refused("ICKPT.DataBasePath=", "DataBasePath");
  expect_refused("ICKPT.SwiftTimeout=forever", "SwiftTimeout");
  expect_refused("ICKPT.SwiftRetryExpBackoff=0.5", "SwiftRetryExpBackoff");
  expect_refused("ICKPT.MaxValueSize=0", "MaxValueSize");
  expect_refused("ICKPT.MaxValueSize=2000000", "MaxValueSize");
  expect_refused("ICKPT.MaxStagedTransactions=0", "MaxStagedTransactions");
  expect_refused("ICKPT.DataBaseMapSize=4096", "DataBaseMapSize");
  expect_refused("ICKPT.EnforceMonotonic=maybe", "EnforceMonotonic");
  expect_refused("ICKPT.MaxConnections=0", "MaxConnections");
}

static void test_tls_triple(void **state) {
  (void)state;
  conf_map *m = load_sample("dev.conf");
  set(m, "ICKPT.CertFilePath=c.pem");
  set(m, "ICKPT.KeyFilePath=k.pem");
  set(m, "ICKPT.CACertFilePath=ca.pem");
  ickpt_config c;
  char err[CONF_ERR_MAX] = "";
  assert_int_equal(ickpt_config_parse(m, &c, err, sizeof err), 0);
  assert_string_equal(c.cert_file, "c.pem");
  assert_string_equal(c.key_file, "k.pem");
  assert_string_equal(c.cacert_file, "ca.pem");
  ickpt_config_free(&c);
  conf_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sample_ickpt_conf),
      cmocka_unit_test(test_sample_dev_conf_defaults),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_tls_triple),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
