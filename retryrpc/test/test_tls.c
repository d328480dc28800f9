/*
 * TLS refusals with icert-made certificates: a wrong CA, an expired
 * certificate and a wrong host name (IP and DNS) are refused at once with
 * -EACCES and a clear reason; a DNS-name certificate and RSA keys work.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "icert.h"
#include "rpc_fixture.h"
#include "rrpc_internal.h"

static char dir[64];
static icert_pem ca, other_ca;

static void path(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s", dir, name);
}

static icert_options opts(icert_alg alg) {
  icert_options o = {.alg = alg, .ttl_s = 3600};
  o.subject.common_name = "test";
  return o;
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/rrpc-tls-XXXXXX");
  assert_non_null(mkdtemp(dir));
  char err[256];
  icert_options o = opts(ICERT_ED25519);
  assert_int_equal(icert_gen_ca(&o, NULL, NULL, &ca, err, sizeof err), 0);
  assert_int_equal(icert_gen_ca(&o, NULL, NULL, &other_ca, err, sizeof err), 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
  icert_pem_free(&ca);
  icert_pem_free(&other_ca);
  return 0;
}

/* Serve with an endpoint certificate made from o by signer; call once from
 * a client trusting trust and dialling host. Returns the call's rc and the
 * client's last error. */
static int try_call(const icert_options *o, const icert_pem *signer, const icert_pem *trust,
                    const char *host, char *err, size_t errlen) {
  static int seq;
  char cert[128], key[128], name[32], e[256];
  snprintf(name, sizeof name, "c%d.pem", seq);
  path(cert, sizeof cert, name);
  snprintf(name, sizeof name, "k%d.pem", seq++);
  path(key, sizeof key, name);
  assert_int_equal(icert_gen_endpoint(o, signer, cert, key, NULL, e, sizeof e), 0);

  fx_env env = {.tls = true};
  snprintf(env.cert, sizeof env.cert, "%s", cert);
  snprintf(env.key, sizeof env.key, "%s", key);
  env.ca_pem = trust->cert;
  env.ca_pem_len = trust->cert_len;
  rrpc_server_config sc;
  fx_server_config(&env, &sc);
  rrpc_server *s = fx_server_start(&sc);
  rrpc_client_config cc;
  fx_client_config(&env, rrpc_server_port(s), &cc);
  cc.host = host;
  rrpc_client *c = fx_client(&cc);
  uint64_t t0 = rrpc_now_ns();
  json_t *req = json_pack("{s:s}", "Message", "hello"), *rep = NULL;
  int rc = rrpc_client_send(c, "RpcTestPing", req, &rep, NULL, 10000000000ull);
  /* a refusal is final: no retry loop, no waiting for the deadline */
  assert_true(rrpc_now_ns() - t0 < 3000000000ull);
  if (rc == 0)
    assert_string_equal(json_string_value(json_object_get(rep, "Message")), "pong 5 bytes");
  json_decref(req);
  json_decref(rep);
  rrpc_client_last_error(c, err, errlen);
  rrpc_client_destroy(c);
  rrpc_server_destroy(s);
  return rc;
}

static const char *ip_localhost[] = {"127.0.0.1"};

static void test_good_ip_certificate(void **state) {
  (void)state;
  icert_options o = opts(ICERT_ED25519);
  o.ips = ip_localhost;
  o.nips = 1;
  char err[256];
  assert_int_equal(try_call(&o, &ca, &ca, "127.0.0.1", err, sizeof err), 0);
}

static void test_good_dns_certificate(void **state) {
  (void)state;
  const char *dns[] = {"localhost"};
  icert_options o = opts(ICERT_ED25519);
  o.dns = dns;
  o.ndns = 1;
  char err[256];
  assert_int_equal(try_call(&o, &ca, &ca, "localhost", err, sizeof err), 0);
}

static void test_wrong_ca_refused(void **state) {
  (void)state;
  icert_options o = opts(ICERT_ED25519);
  o.ips = ip_localhost;
  o.nips = 1;
  char err[256];
  assert_int_equal(try_call(&o, &ca, &other_ca, "127.0.0.1", err, sizeof err), -EACCES);
  assert_non_null(strstr(err, "TLS certificate verify failed"));
  assert_non_null(strstr(err, "unable to get local issuer certificate"));
}

static void test_expired_refused(void **state) {
  (void)state;
  icert_options o = opts(ICERT_ED25519);
  o.ips = ip_localhost;
  o.nips = 1;
  o.not_before = (int64_t)time(NULL) - 2 * 86400;
  o.ttl_s = 86400;
  char err[256];
  assert_int_equal(try_call(&o, &ca, &ca, "127.0.0.1", err, sizeof err), -EACCES);
  assert_non_null(strstr(err, "certificate has expired"));
}

static void test_wrong_host_refused(void **state) {
  (void)state;
  const char *other_ip[] = {"10.9.9.9"};
  icert_options o = opts(ICERT_ED25519);
  o.ips = other_ip;
  o.nips = 1;
  char err[256];
  assert_int_equal(try_call(&o, &ca, &ca, "127.0.0.1", err, sizeof err), -EACCES);
  assert_non_null(strstr(err, "IP address mismatch"));
  /* a name the certificate does not carry */
  o.ips = ip_localhost;
  assert_int_equal(try_call(&o, &ca, &ca, "localhost", err, sizeof err), -EACCES);
  assert_non_null(strstr(err, "hostname mismatch"));
}

static void test_rsa_keys(void **state) {
  (void)state;
  char err[256];
  icert_options o = opts(ICERT_RSA);
  icert_pem rsa_ca;
  assert_int_equal(icert_gen_ca(&o, NULL, NULL, &rsa_ca, err, sizeof err), 0);
  o.ips = ip_localhost;
  o.nips = 1;
  assert_int_equal(try_call(&o, &rsa_ca, &rsa_ca, "127.0.0.1", err, sizeof err), 0);
  icert_pem_free(&rsa_ca);
}

static void test_bad_ca_pem(void **state) {
  (void)state;
  rrpc_client_config cc = {.host = "127.0.0.1", .port = 1};
  cc.ca_pem = "not a certificate";
  cc.ca_pem_len = strlen(cc.ca_pem);
  rrpc_client *c;
  assert_int_equal(rrpc_client_create(&cc, &c), -EINVAL);
}

static void test_server_bad_key_file(void **state) {
  (void)state;
  rrpc_server_config sc = {.addr = "127.0.0.1"};
  sc.tls_cert_file = "/nonexistent/cert.pem";
  sc.tls_key_file = "/nonexistent/key.pem";
  rrpc_server *s;
  assert_int_equal(rrpc_server_create(&sc, NULL, 0, &s), -EINVAL);
  sc.tls_key_file = NULL; /* one without the other */
  assert_int_equal(rrpc_server_create(&sc, NULL, 0, &s), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_ip_certificate),
      cmocka_unit_test(test_good_dns_certificate),
      cmocka_unit_test(test_wrong_ca_refused),
      cmocka_unit_test(test_expired_refused),
      cmocka_unit_test(test_wrong_host_refused),
      cmocka_unit_test(test_rsa_keys),
      cmocka_unit_test(test_bad_ca_pem),
      cmocka_unit_test(test_server_bad_key_file),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
