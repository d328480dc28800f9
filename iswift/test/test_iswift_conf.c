/* [ISWIFT] parsing, including the shipped sample files. */
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
#include "iswift.h"

static conf_map *load(const char *name) {
  char path[1024];
  const char *src = getenv("PFS_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/iswift/%s", src ? src : ".", name);
  conf_map *m = conf_new();
  char err[CONF_ERR_MAX];
  if (conf_update_from_file(m, path, err, sizeof err)) fail_msg("%s: %s", path, err);
  return m;
}

static void test_samples(void **state) {
  (void)state;
  iswift_config cfg;
  char err[CONF_ERR_MAX];
  conf_map *m = load("iswift.conf");
  assert_int_equal(iswift_config_from_conf(m, &cfg, err, sizeof err), 0);
  assert_string_equal(cfg.addr, "127.0.0.1");
  assert_int_equal(cfg.port, 8080);
  assert_int_equal(cfg.max_object_name_length, 1024);
  assert_int_equal(cfg.container_listing_limit, 10000);
  assert_false(cfg.emulate_real_swift);
  assert_string_equal(cfg.store_dir, "");
  assert_int_equal(cfg.max_object_size, 64u << 20);
  conf_free(m);
  m = load("dev.conf");
  assert_int_equal(iswift_config_from_conf(m, &cfg, err, sizeof err), 0);
  assert_true(cfg.emulate_real_swift && cfg.fault_admin);
  assert_string_equal(cfg.store_dir, "/tmp/iswiftStore");
  conf_free(m);
}

static void test_required_and_bad(void **state) {
  (void)state;
  iswift_config cfg;
  char err[CONF_ERR_MAX];
  conf_map *m = load("iswift.conf");
  assert_int_equal(conf_update_from_string(m, "ISWIFT.FaultErrorRate=101", err, sizeof err), 0);
  assert_int_equal(iswift_config_from_conf(m, &cfg, err, sizeof err), -EINVAL);
  assert_int_equal(conf_update_from_string(m, "ISWIFT.FaultErrorRate=12.5", err, sizeof err), 0);
  assert_int_equal(conf_update_from_string(m, "ISWIFT.FaultLatency=250ms", err, sizeof err), 0);
  assert_int_equal(iswift_config_from_conf(m, &cfg, err, sizeof err), 0);
  assert_true(cfg.faults.error_rate == 12.5 && cfg.faults.latency_ns == 250000000);
  assert_int_equal(conf_update_from_string(m, "ISWIFT.SwiftProxyTCPPort=70000", err, sizeof err),
                   0);
  assert_int_not_equal(iswift_config_from_conf(m, &cfg, err, sizeof err), 0);
  conf_free(m);
  m = conf_new();
  assert_int_not_equal(iswift_config_from_conf(m, &cfg, err, sizeof err), 0); /* all required */
  conf_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_samples),
      cmocka_unit_test(test_required_and_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
