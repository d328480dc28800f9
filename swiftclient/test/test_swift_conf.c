/* swift_config_from_conf: the original's Swift* keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf.h"
#include "swiftclient.h"

static void set(conf_map *m, const char *s) {
  char err[CONF_ERR_MAX];
  assert_int_equal(conf_update_from_string(m, s, err, sizeof err), 0);
}

static void test_keys(void **state) {
  (void)state;
  conf_map *m = conf_new();
  swift_config cfg;
  swift_config_defaults(&cfg);
  char err[CONF_ERR_MAX];
  assert_int_equal(swift_config_from_conf(m, "IMGR", &cfg, err, sizeof err), 0);
  assert_true(cfg.retry_limit == 4 && cfg.retry_exp_backoff == 2.0);
  set(m, "IMGR.SwiftRetryDelay=250ms");
  set(m, "IMGR.SwiftRetryExpBackoff=1.5");
  set(m, "IMGR.SwiftRetryLimit=7");
  set(m, "IMGR.SwiftTimeout=2m");
  set(m, "IMGR.SwiftConnectionPoolSize=9");
  assert_int_equal(swift_config_from_conf(m, "IMGR", &cfg, err, sizeof err), 0);
  assert_true(cfg.retry_delay_ns == 250000000ull && cfg.retry_exp_backoff == 1.5);
  assert_true(cfg.retry_limit == 7 && cfg.timeout_ns == 120000000000ull);
  assert_int_equal(cfg.connection_pool_size, 9);
  set(m, "ICLIENT.SwiftRetryExponentialBackoff=1.4"); /* iclient's name */
  assert_int_equal(swift_config_from_conf(m, "ICLIENT", &cfg, err, sizeof err), 0);
  assert_true(cfg.retry_exp_backoff == 1.4);
  set(m, "IMGR.SwiftRetryLimit=-1");
  assert_int_not_equal(swift_config_from_conf(m, "IMGR", &cfg, err, sizeof err), 0);
  conf_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_keys)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
