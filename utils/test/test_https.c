/* The HTTP helper over TLS, with certificates made by icert: a client that
 * trusts the CA is served; one that does not, or that names another host,
 * is refused by its own verification. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "icert.h"
#include "logger.h"
#include "utils.h"

static char dir[] = "/tmp/test_https.XXXXXX";
static char ca_cert[64], ca_key[64], cert[64], key[64], other_ca[64];

static void make_ca(const char *cert_path, const char *key_path, icert_pem *out)
{
  icert_options o = {.alg = ICERT_ED25519, .ttl_s = 3600, .subject = {.common_name = "RootCA"}};
  char err[256];
  assert_int_equal(icert_gen_ca(&o, cert_path, key_path, out, err, sizeof err), 0);
}

static int setup(void **state)
{
  (void)state;
  if (!mkdtemp(dir))
    return -1;
  snprintf(ca_cert, sizeof ca_cert, "%s/ca_cert.pem", dir);
  snprintf(ca_key, sizeof ca_key, "%s/ca_key.pem", dir);
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  snprintf(other_ca, sizeof other_ca, "%s/other_ca.pem", dir);

  icert_pem ca, other, ep;
  make_ca(ca_cert, ca_key, &ca);
  make_ca(other_ca, NULL, &other);
  const char *ips[] = {"127.0.0.1"};
  icert_options o = {.alg = ICERT_ED25519, .ttl_s = 3600, .ips = ips, .nips = 1,
                     .subject = {.common_name = "server"}};
  char err[256];
  int rc = icert_gen_endpoint(&o, &ca, cert, key, &ep, err, sizeof err);
  icert_pem_free(&ca);
  icert_pem_free(&other);
  icert_pem_free(&ep);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  log_configure(NULL, false, false);
  return rc;
}

static int teardown(void **state)
{
  (void)state;
  const char *files[] = {ca_cert, ca_key, cert, key, other_ca};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    unlink(files[i]);
  rmdir(dir);
  curl_global_cleanup();
  return 0;
}

static int hello(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  (void)req;
  (void)ctx;
  return ut_http_reply_text(rep, 200, "text/plain", "hello over tls");
}

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
  strncat(userdata, p, 63 - strlen(userdata) < size * n ? 63 - strlen(userdata) : size * n);
  return size * n;
}

/* GET url trusting ca; returns curl's code, the body in body[64]. */
static CURLcode get(const char *url, const char *ca, char body[64], long *status)
{
  CURL *h = curl_easy_init();
  body[0] = '\0';
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CAINFO, ca);
  curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
  CURLcode rc = curl_easy_perform(h);
  *status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  curl_easy_cleanup(h);
  return rc;
}

static ut_http_server *start(const char *c, const char *k, int *rc)
{
  ut_http_route routes[] = {{"GET", "", hello, NULL}};
  ut_http_config cfg = {.addr = "127.0.0.1", .max_body = 1024, .tls_cert_file = c,
                        .tls_key_file = k};
  ut_http_server *s = NULL;
  *rc = ut_http_server_start(&cfg, routes, 1, &s);
  return s;
}

static void test_https_served_to_a_trusting_client(void **state)
{
  (void)state;
  int rc;
  ut_http_server *s = start(cert, key, &rc);
  assert_int_equal(rc, 0);
  char url[64], body[64];
  long status;
  snprintf(url, sizeof url, "https://127.0.0.1:%u/", (unsigned)ut_http_server_port(s));
  assert_int_equal(get(url, ca_cert, body, &status), CURLE_OK);
  assert_int_equal(status, 200);
  assert_string_equal(body, "hello over tls");

  /* Plain HTTP to a TLS port gets no HTTP answer. */
  snprintf(url, sizeof url, "http://127.0.0.1:%u/", (unsigned)ut_http_server_port(s));
  assert_int_not_equal(get(url, ca_cert, body, &status), CURLE_OK);
  ut_http_server_stop(s);
}

static void test_https_refused_by_wrong_ca_and_wrong_name(void **state)
{
  (void)state;
  int rc;
  ut_http_server *s = start(cert, key, &rc);
  assert_int_equal(rc, 0);
  char url[64], body[64];
  long status;
  snprintf(url, sizeof url, "https://127.0.0.1:%u/", (unsigned)ut_http_server_port(s));
  assert_int_equal(get(url, other_ca, body, &status), CURLE_PEER_FAILED_VERIFICATION);
  /* The certificate names 127.0.0.1 only. */
  snprintf(url, sizeof url, "https://localhost:%u/", (unsigned)ut_http_server_port(s));
  assert_int_equal(get(url, ca_cert, body, &status), CURLE_PEER_FAILED_VERIFICATION);
  ut_http_server_stop(s);
}

static void test_tls_configuration_errors(void **state)
{
  (void)state;
  int rc;
  assert_null(start(cert, NULL, &rc));
  assert_int_equal(rc, -EINVAL);
  assert_null(start("", key, &rc));
  assert_int_equal(rc, -EINVAL);
  assert_null(start(cert, "/nonexistent/key.pem", &rc));
  assert_int_equal(rc, -ENOENT);
  /* A file that is not a key: the TLS library refuses it at start. */
  assert_null(start(cert, cert, &rc));
  assert_true(rc < 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_https_served_to_a_trusting_client),
    cmocka_unit_test(test_https_refused_by_wrong_ca_and_wrong_name),
    cmocka_unit_test(test_tls_configuration_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
