/* icert: the library's certificates checked with OpenSSL, and the command
 * line's messages and exit codes (support.md 5). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "icert.h"

static char dir[64];

static const char *p(const char *name) {
  static char buf[4][160];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
  return buf[i];
}

static X509 *cert_of(const icert_pem *pem) {
  BIO *b = BIO_new_mem_buf(pem->cert, (int)pem->cert_len);
  X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
  BIO_free(b);
  assert_non_null(x);
  return x;
}

static EVP_PKEY *key_of(const icert_pem *pem) {
  BIO *b = BIO_new_mem_buf(pem->key, (int)pem->key_len);
  EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  BIO_free(b);
  assert_non_null(k);
  return k;
}

static void assert_mode_0400(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0400);
}

static int verify(X509 *ca, X509 *leaf) {
  X509_STORE *st = X509_STORE_new();
  X509_STORE_add_cert(st, ca);
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, st, leaf, NULL);
  int ok = X509_verify_cert(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(st);
  return ok;
}

static void test_ca_and_endpoint_ed25519(void **state) {
  (void)state;
  char err[256];
  const char *orgs[] = {"NVIDIA", "proxyfs-c"};
  const char *countries[] = {"US"};
  icert_options o = {.alg = ICERT_ED25519, .ttl_s = 3560 * 86400ull};
  o.subject.common_name = "RootCA";
  o.subject.organization = (icert_list){orgs, 2};
  o.subject.country = (icert_list){countries, 1};
  icert_pem ca;
  assert_int_equal(icert_gen_ca(&o, p("ca_cert.pem"), p("ca_key.pem"), &ca, err, sizeof err), 0);
  assert_mode_0400(p("ca_cert.pem"));
  assert_mode_0400(p("ca_key.pem"));
  assert_non_null(strstr(ca.key, "-----BEGIN PRIVATE KEY-----")); /* PKCS#8 */
  assert_non_null(strstr(ca.cert, "-----BEGIN CERTIFICATE-----"));
  X509 *cx = cert_of(&ca);
  EVP_PKEY *ck = key_of(&ca);
  assert_int_equal(EVP_PKEY_get_id(ck), EVP_PKEY_ED25519);
  assert_int_equal(X509_check_ca(cx), 1);
  assert_true(X509_get_key_usage(cx) & KU_KEY_CERT_SIGN);
  assert_true(X509_get_extended_key_usage(cx) & XKU_SSL_SERVER);
  assert_true(X509_get_extended_key_usage(cx) & XKU_SSL_CLIENT);
  assert_int_equal(X509_verify(cx, ck), 1); /* self-signed */
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(cx), buf, sizeof buf);
  assert_string_equal(buf, "/C=US/O=NVIDIA/O=proxyfs-c/CN=RootCA");
  int days, secs;
  assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cx), X509_get0_notAfter(cx)), 1);
  assert_int_equal(days, 3560);
  assert_int_equal(secs, 0);
  const ASN1_INTEGER *serial = X509_get0_serialNumber(cx);
  assert_true(serial->length >= 28); /* 256 random bits */

  const char *dns[] = {"imgr"};
  const char *ips[] = {"127.0.0.1", "::1"};
  icert_options e = {.alg = ICERT_ED25519, .ttl_s = 3600, .dns = dns, .ndns = 1,
                     .ips = ips, .nips = 2};
  e.subject.common_name = "imgr";
  icert_pem ep;
  assert_int_equal(icert_gen_endpoint(&e, &ca, p("cert.pem"), p("key.pem"), &ep, err, sizeof err), 0);
  X509 *ex = cert_of(&ep);
  assert_int_equal(X509_check_ca(ex), 0);
  assert_false(X509_get_key_usage(ex) & KU_KEY_CERT_SIGN);
  assert_true(X509_get_key_usage(ex) & KU_DIGITAL_SIGNATURE);
  assert_int_equal(verify(cx, ex), 1);
  assert_int_equal(X509_check_host(ex, "imgr", 0, 0, NULL), 1);
  assert_int_equal(X509_check_host(ex, "other", 0, 0, NULL), 0);
  assert_int_equal(X509_check_ip_asc(ex, "127.0.0.1", 0), 1);
  assert_int_equal(X509_check_ip_asc(ex, "::1", 0), 1);
  assert_int_equal(X509_check_ip_asc(ex, "10.0.0.1", 0), 0);
  assert_mode_0400(p("key.pem"));

  /* read back from the files, as the command line does */
  icert_pem back;
  assert_int_equal(icert_read_pem(p("cert.pem"), p("key.pem"), &back, err, sizeof err), 0);
  assert_string_equal(back.cert, ep.cert);
  assert_string_equal(back.key, ep.key);
  icert_pem_free(&back);

  /* cert and key in one file */
  assert_int_equal(icert_gen_endpoint(&e, &ca, p("both.pem"), p("both.pem"), NULL, err, sizeof err), 0);
  assert_int_equal(icert_read_pem(p("both.pem"), p("both.pem"), &back, err, sizeof err), 0);
  char *c = strstr(back.cert, "-----BEGIN CERTIFICATE-----");
  char *k = strstr(back.cert, "-----BEGIN PRIVATE KEY-----");
  assert_true(c && k && c < k);
  icert_pem_free(&back);

  X509_free(ex);
  X509_free(cx);
  EVP_PKEY_free(ck);
  icert_pem_free(&ep);
  icert_pem_free(&ca);
}

static void test_rsa_4096(void **state) {
  (void)state;
  char err[256];
  icert_options o = {.alg = ICERT_RSA, .ttl_s = 86400};
  icert_pem ca;
  assert_int_equal(icert_gen_ca(&o, NULL, NULL, &ca, err, sizeof err), 0);
  EVP_PKEY *k = key_of(&ca);
  assert_int_equal(EVP_PKEY_get_id(k), EVP_PKEY_RSA);
  assert_int_equal(EVP_PKEY_get_bits(k), 4096);
  assert_non_null(strstr(ca.key, "-----BEGIN PRIVATE KEY-----"));
  EVP_PKEY_free(k);
  icert_pem_free(&ca);
}

/* With no subject flags the CA still gets a name: an empty issuer name in
 * the endpoint certificates would make OpenSSL-based clients refuse them. */
static void test_empty_ca_subject_gets_a_name(void **state) {
  (void)state;
  char err[256], cn[64];
  icert_options o = {.alg = ICERT_ED25519, .ttl_s = 3600};
  icert_pem ca, ep;
  assert_int_equal(icert_gen_ca(&o, NULL, NULL, &ca, err, sizeof err), 0);
  const char *ips[] = {"127.0.0.1"};
  o.ips = ips;
  o.nips = 1;
  assert_int_equal(icert_gen_endpoint(&o, &ca, NULL, NULL, &ep, err, sizeof err), 0);
  X509 *cx = cert_of(&ca), *ex = cert_of(&ep);
  assert_int_equal(X509_NAME_get_text_by_NID(X509_get_subject_name(cx), NID_commonName, cn,
                                             sizeof cn), 6);
  assert_string_equal(cn, "RootCA");
  assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(ex), X509_get_subject_name(cx)), 0);
  /* The endpoint keeps the original's empty subject (its SAN names it). */
  assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(ex)), 0);
  assert_int_equal(verify(cx, ex), 1);
  X509_free(cx);
  X509_free(ex);
  icert_pem_free(&ca);
  icert_pem_free(&ep);
}

static void test_library_errors(void **state) {
  (void)state;
  char err[256];
  icert_options o = {.alg = ICERT_ED25519, .ttl_s = 3600};
  icert_pem ca;
  assert_int_equal(icert_gen_ca(&o, "/nonexistent/dir/ca.pem", NULL, NULL, err, sizeof err), -ENOENT);
  assert_string_equal(err, "open /nonexistent/dir/ca.pem: No such file or directory");
  o.ttl_s = 0;
  assert_int_equal(icert_gen_ca(&o, NULL, NULL, NULL, err, sizeof err), -EINVAL);
  o.ttl_s = 3600;
  assert_int_equal(icert_gen_ca(&o, NULL, NULL, &ca, err, sizeof err), 0);
  assert_int_equal(icert_gen_endpoint(&o, &ca, NULL, NULL, NULL, err, sizeof err), -EINVAL);
  assert_string_equal(err, "at least one DNS name or IP address is required");
  const char *bad_ip[] = {"1.2.3"};
  o.ips = bad_ip;
  o.nips = 1;
  assert_int_equal(icert_gen_endpoint(&o, &ca, NULL, NULL, NULL, err, sizeof err), -EINVAL);
  assert_string_equal(err, "invalid IP address \"1.2.3\"");
  icert_pem junk = {.cert = "junk", .cert_len = 4, .key = "junk", .key_len = 4};
  o.ips = NULL;
  o.nips = 0;
  const char *dns[] = {"x"};
  o.dns = dns;
  o.ndns = 1;
  assert_int_equal(icert_gen_endpoint(&o, &junk, NULL, NULL, NULL, err, sizeof err), -EIO);
  assert_non_null(strstr(err, "CA certificate"));
  icert_pem_free(&ca);
  assert_int_equal(icert_read_pem("/nonexistent/c.pem", "/nonexistent/k.pem", &ca, err, sizeof err), -ENOENT);
}

/* Run the icert command; returns its exit status, output in out. */
static int run(char *out, size_t outlen, const char *args) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cd %s && %s %s 2>&1", dir, ICERT_EXE, args);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  size_t n = fread(out, 1, outlen - 1, f);
  out[n] = 0;
  int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_messages(void **state) {
  (void)state;
  static const struct {
    const char *args, *msg;
    int status;
  } cases[] = {
      {"-ttl 1 -caCert a -caKey b", "Precisely one of -ed25519 or -rsa must be specified\n", 1},
      {"-ed25519 -rsa -ttl 1 -caCert a -caKey b",
       "Precisely one of -ed25519 or -rsa must be specified\n", 1},
      {"-ed25519 -caCert a -caKey b", "A non-zero -ttl must be specified\n", 1},
      {"-ed25519 -ttl 1 -caCert a", "Both -caCert and -caKey must be specified\n", 1},
      {"-ca -ed25519 -ttl 1 -caCert a -caKey b -cert c",
       "If -ca is specified, neither -cert nor -key may be specified\n", 1},
      {"-ca -ed25519 -ttl 1 -caCert a -caKey b -ip 1.2.3.4",
       "If -ca is specified, neither -dns nor -ip may be specified\n", 1},
      {"-ed25519 -ttl 1 -caCert a -caKey b -key k -dns x",
       "If -ca is not specified, both -cert and -key must be specified\n", 1},
      {"-ed25519 -ttl 1 -caCert a -caKey b -cert c -key k",
       "If -ca is not specified, at least one -dns or -ip must be specified\n", 1},
      {"-ca -ed25519 -ttl 1 -caCert /nonexistent/a -caKey b",
       "icertpkg.GenCACert() failed: open /nonexistent/a: No such file or directory\n", 1},
      {"-ed25519 -ttl 1 -caCert missing.pem -caKey missing.pem -cert c -key k -dns x",
       "icertpkg.GenEndpointCert() failed: open missing.pem: No such file or directory\n", 1},
  };
  char out[4096];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(run(out, sizeof out, cases[i].args), cases[i].status);
    assert_string_equal(out, cases[i].msg);
  }
  /* usage errors, as Go's flag package: exit 2 and the usage text */
  assert_int_equal(run(out, sizeof out, "-bogus"), 2);
  assert_non_null(strstr(out, "flag provided but not defined: -bogus\nUsage of icert:\n"));
  assert_int_equal(run(out, sizeof out, "-ttl abc"), 2);
  assert_non_null(strstr(out, "invalid value \"abc\" for flag -ttl: parse error"));
  assert_int_equal(run(out, sizeof out, "-caCert"), 2);
  assert_non_null(strstr(out, "flag needs an argument: -caCert"));
}

static void test_cli_generates(void **state) {
  (void)state;
  char out[4096];
  assert_int_equal(run(out, sizeof out,
                       "-v -ca -ed25519 -caCert cli_ca.pem -caKey cli_ca_key.pem "
                       "-commonName RootCA -ttl=3560"), 0);
  assert_non_null(strstr(out, "                         caFlag: true\n"));
  assert_non_null(strstr(out, "                    ttlDaysFlag: 3560\n"));
  assert_non_null(strstr(out, "icertpkg.GenCACert() generated caCert: \"cli_ca.pem\" and "
                              "caKey: \"cli_ca_key.pem\"\n"));
  assert_int_equal(run(out, sizeof out,
                       "--ed25519 -caCert cli_ca.pem -caKey cli_ca_key.pem -commonName imgr "
                       "-ttl 3560 -cert imgr_cert.pem -key imgr_key.pem -dns imgr -dns alt "
                       "-ip 127.0.0.1 -organization O1 -organization O2"), 0);
  assert_string_equal(out, "");
  char err[256];
  icert_pem ca, ep;
  assert_int_equal(icert_read_pem(p("cli_ca.pem"), p("cli_ca_key.pem"), &ca, err, sizeof err), 0);
  assert_int_equal(icert_read_pem(p("imgr_cert.pem"), p("imgr_key.pem"), &ep, err, sizeof err), 0);
  X509 *cx = cert_of(&ca), *ex = cert_of(&ep);
  assert_int_equal(verify(cx, ex), 1);
  assert_int_equal(X509_check_host(ex, "alt", 0, 0, NULL), 1);
  assert_int_equal(X509_check_ip_asc(ex, "127.0.0.1", 0), 1);
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(ex), buf, sizeof buf);
  assert_string_equal(buf, "/O=O1/O=O2/CN=imgr");
  assert_mode_0400(p("imgr_key.pem"));
  X509_free(cx);
  X509_free(ex);
  icert_pem_free(&ca);
  icert_pem_free(&ep);
  /* a bad -ip is refused (the original silently made an empty IP) */
  assert_int_equal(run(out, sizeof out,
                       "-ed25519 -caCert cli_ca.pem -caKey cli_ca_key.pem -ttl 1 "
                       "-cert x.pem -key y.pem -ip 1.2.3"), 1);
  assert_string_equal(out, "icertpkg.GenEndpointCert() failed: invalid IP address \"1.2.3\"\n");
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/icert-test-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ca_and_endpoint_ed25519),
      cmocka_unit_test(test_rsa_4096),
      cmocka_unit_test(test_empty_ca_subject_gets_a_name),
      cmocka_unit_test(test_library_errors),
      cmocka_unit_test(test_cli_messages),
      cmocka_unit_test(test_cli_generates),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
