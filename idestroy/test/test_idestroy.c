/* Unit tests of idestroy's pieces that need no Swift: options and the
 * [ICLIENT] auth keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "idestroy.h"

static void test_parse_args(void **state) {
  (void)state;
  char msg[256];
  idestroy_opts o;
  char *a1[] = {"idestroy", "iclient.conf", "ICLIENT.X=1", NULL};
  assert_int_equal(idestroy_parse_args(3, a1, &o, msg, sizeof msg), 0);
  assert_int_equal(o.parallel, 1);
  assert_false(o.strict);
  assert_false(o.container);
  assert_int_equal(o.page, 0);
  assert_int_equal(o.conf_argc, 2);
  assert_string_equal(o.conf_argv[0], "iclient.conf");

  char *a2[] = {"idestroy", "-strict", "--container", "-parallel", "8", "-page", "100",
                "-passes", "3", "-quiet", "c.conf", NULL};
  assert_int_equal(idestroy_parse_args(11, a2, &o, msg, sizeof msg), 0);
  assert_true(o.strict);
  assert_true(o.container);
  assert_true(o.quiet);
  assert_int_equal(o.parallel, 8);
  assert_int_equal(o.page, 100);
  assert_int_equal(o.passes, 3);
  assert_int_equal(o.conf_argc, 1);

  /* No conf file: left to conf_load_args ("no .conf file specified"). */
  char *a3[] = {"idestroy", NULL};
  assert_int_equal(idestroy_parse_args(1, a3, &o, msg, sizeof msg), 0);
  assert_int_equal(o.conf_argc, 0);

  char *bad[][3] = {{"idestroy", "-parallel", "0"},   {"idestroy", "-parallel", "65"},
                    {"idestroy", "-parallel", "x"},   {"idestroy", "-page", ""},
                    {"idestroy", "-bogus", "c.conf"}, {"idestroy", "-passes", "0"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(idestroy_parse_args(3, bad[i], &o, msg, sizeof msg), -EINVAL);
    assert_true(strlen(msg) > 0);
  }
  char *a4[] = {"idestroy", "-parallel", NULL};
  assert_int_equal(idestroy_parse_args(2, a4, &o, msg, sizeof msg), -EINVAL);
}

static conf_map *conf_of(const char *const *lines) {
  conf_map *m = conf_new();
  char err[CONF_ERR_MAX];
  for (; *lines; lines++) {
    assert_int_equal(conf_update_from_string(m, *lines, err, sizeof err), 0);
  }
  return m;
}

static void test_auth_keys(void **state) {
  (void)state;
  char msg[IDESTROY_MSG_MAX];
  char *path, *input;

  /* Newest iclient style: name empty, value given. */
  const char *const l1[] = {"ICLIENT.AuthPlugInPath=iauth/iauth-swift/iauth-swift.so",
                            "ICLIENT.AuthPlugInEnvName=", "ICLIENT.AuthPlugInEnvValue=abc",
                            NULL};
  conf_map *m = conf_of(l1);
  assert_int_equal(idestroy_auth_keys(m, &path, &input, msg, sizeof msg), 0);
  assert_string_equal(path, "iauth/iauth-swift/iauth-swift.so");
  assert_string_equal(input, "abc");
  free(path);
  free(input);
  conf_free(m);

  /* Name given: the value comes from the environment. */
  setenv("IDESTROY_TEST_AUTH", "from-env", 1);
  const char *const l2[] = {"ICLIENT.AuthPlugInPath=p.so",
                            "ICLIENT.AuthPlugInEnvName=IDESTROY_TEST_AUTH", NULL};
  m = conf_of(l2);
  assert_int_equal(idestroy_auth_keys(m, &path, &input, msg, sizeof msg), 0);
  assert_string_equal(input, "from-env");
  free(path);
  free(input);
  /* ...and then the value key must be missing or empty. */
  char err[CONF_ERR_MAX];
  assert_int_equal(conf_update_from_string(m, "ICLIENT.AuthPlugInEnvValue=x", err, sizeof err),
                   0);
  assert_int_equal(idestroy_auth_keys(m, &path, &input, msg, sizeof msg), -EINVAL);
  assert_string_equal(msg, "If [ICLIENT]AuthPlugInEnvName is present and non-empty, "
                           "[ICLIENT]AuthPlugInEnvValue must be missing or empty");
  assert_null(path);
  conf_free(m);

  /* Old-style key names: the AuthPlugInPath fetch fails. */
  const char *const l3[] = {"ICLIENT.PlugInPath=p.so", "ICLIENT.PlugInEnvValue=x", NULL};
  m = conf_of(l3);
  assert_true(idestroy_auth_keys(m, &path, &input, msg, sizeof msg) < 0);
  assert_true(strncmp(msg,
                      "confMap.FetchOptionValueString(\"ICLIENT\", \"AuthPlugInPath\") failed: ",
                      68) == 0);
  conf_free(m);

  /* Neither name nor value. */
  const char *const l4[] = {"ICLIENT.AuthPlugInPath=p.so", NULL};
  m = conf_of(l4);
  assert_true(idestroy_auth_keys(m, &path, &input, msg, sizeof msg) < 0);
  assert_non_null(strstr(msg, "\"AuthPlugInEnvValue\") failed: "));
  conf_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_args),
      cmocka_unit_test(test_auth_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
