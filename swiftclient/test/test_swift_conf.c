/* swift_config_from_conf: the original's Swift* keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
  assert_true(cfg.send_put_etag);
  set(m, "IMGR.SwiftPutETag=false");
  assert_int_equal(swift_config_from_conf(m, "IMGR", &cfg, err, sizeof err), 0);
  assert_false(cfg.send_put_etag);
  set(m, "IMGR.SwiftPutETag=maybe");
  assert_int_equal(swift_config_from_conf(m, "IMGR", &cfg, err, sizeof err), -EINVAL);
  set(m, "IMGR.SwiftPutETag=true");
  set(m, "ICLIENT.SwiftRetryExponentialBackoff=1.4"); /* iclient's name */
  assert_int_equal(swift_config_from_conf(m, "ICLIENT", &cfg, err, sizeof err), 0);
  assert_true(cfg.retry_exp_backoff == 1.4);
  set(m, "ICLIENT.SwiftRetryDelayVariance=25");
  assert_int_equal(swift_config_from_conf(m, "ICLIENT", &cfg, err, sizeof err), 0);
  assert_int_equal(cfg.retry_delay_variance, 25);
  set(m, "ICLIENT.SwiftRetryDelayVariance=0");
  assert_int_equal(swift_config_from_conf(m, "ICLIENT", &cfg, err, sizeof err), -EINVAL);
  set(m, "IMGR.SwiftRetryLimit=-1");
  assert_int_not_equal(swift_config_from_conf(m, "IMGR", &cfg, err, sizeof err), 0);
  conf_free(m);
}

static void test_auth_plugin_keys(void **state) {
  (void)state;
  conf_map *m = conf_new();
  swift_auth_input in;
  char err[CONF_ERR_MAX];
  set(m, "ICLIENT.AuthPlugInEnvValue={\"AuthURL\":\"http://s/auth/v1.0\",\"AuthUser\":\"u\"}");
  int rc = swift_auth_input_from_conf(m, "ICLIENT", &in, err, sizeof err);
  if (rc) fail_msg("%s", err);
  assert_string_equal(in.auth_url, "http://s/auth/v1.0");
  swift_auth_input_free(&in);
  set(m, "ICLIENT.AuthPlugInEnvName=PFS_TEST_AUTH_JSON");
  assert_int_equal(swift_auth_input_from_conf(m, "ICLIENT", &in, err, sizeof err), -EINVAL);
  set(m, "ICLIENT.AuthPlugInEnvValue=");
  setenv("PFS_TEST_AUTH_JSON", "{\"AuthURL\":\"http://e\",\"AuthUser\":\"v\"}", 1);
  assert_int_equal(swift_auth_input_from_conf(m, "ICLIENT", &in, err, sizeof err), 0);
  assert_string_equal(in.auth_user, "v");
  swift_auth_input_free(&in);
  unsetenv("PFS_TEST_AUTH_JSON");
  assert_int_equal(swift_auth_input_from_conf(m, "ICLIENT", &in, err, sizeof err), -ENOENT);
  conf_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_keys),
                                     cmocka_unit_test(test_auth_plugin_keys)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
