/* iclient start/stop with a real Swift (iswift in process) and the fake
 * imgr: config from dev.conf with overrides, Swift auth, Mount, HTTP
 * (/config redacted, /leases), the FUSE mount, orderly stop. Without an imgr
 * set, start dials a real one over retryrpc (here: unreachable).
 * The FUSE part needs root and /dev/fuse (skipped otherwise). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "ic_daemon.h"
#include "ic_test_doubles.h"
#include "iswift.h"

static iswift *g_srv;
static char g_dir[64];

static int group_setup(void **state) {
  (void)state;
  iswift_config cfg;
  iswift_config_defaults(&cfg);
  cfg.port = 0;
  if (iswift_start(&cfg, &g_srv)) return -1;
  snprintf(g_dir, sizeof(g_dir), "/tmp/ic_daemon_XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  iswift_stop(g_srv);
  (void)umount2(g_dir, MNT_DETACH); /* left mounted only by a failed test */
  rmdir(g_dir);
  return 0;
}

/* dev.conf pointed at this test's iswift, mount point and an ephemeral-ish
 * HTTP port (0 = off unless the test sets one). */
static conf_map *test_conf(uint16_t swift_port, uint16_t http_port) {
  conf_map *m = conf_new();
  assert_non_null(m);
  char err[CONF_ERR_MAX], line[512];
  assert_int_equal(conf_update_from_file(m, IC_DEV_CONF, err, sizeof(err)), 0);
  snprintf(
      line, sizeof(line),
      "ICLIENT.AuthPlugInEnvValue={\"AuthURL\":\"http://127.0.0.1:%u/auth/v1.0\"\\u002C"
      "\"AuthUser\":\"test:tester\"\\u002C\"AuthKey\":\"testing\"\\u002C\"Account\":\"AUTH_test\""
      "\\u002C\"Container\":\"icd\"}",
      (unsigned)swift_port);
  assert_int_equal(conf_update_from_string(m, line, err, sizeof(err)), 0);
  snprintf(line, sizeof(line), "ICLIENT.MountPointDirPath=%s", g_dir);
  assert_int_equal(conf_update_from_string(m, line, err, sizeof(err)), 0);
  snprintf(line, sizeof(line), "ICLIENT.HTTPServerPort=%u", (unsigned)http_port);
  assert_int_equal(conf_update_from_string(m, line, err, sizeof(err)), 0);
  assert_int_equal(conf_update_from_string(m, "ICLIENT.LogFilePath=", err, sizeof(err)), 0);
  assert_int_equal(conf_update_from_string(m, "ICLIENT.SwiftRetryDelay=1ms", err, sizeof(err)), 0);
  assert_int_equal(conf_update_from_string(m, "ICLIENT.SwiftRetryLimit=1", err, sizeof(err)), 0);
  return m;
}

static size_t collect(char *p, size_t sz, size_t n, void *ctx) {
  char *buf = ctx;
  size_t have = strlen(buf), add = sz * n;
  if (have + add >= 8192) add = 8191 - have;
  memcpy(buf + have, p, add);
  buf[have + add] = '\0';
  return sz * n;
}

static long http_req(uint16_t port, const char *method, const char *path, char *body) {
  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
  body[0] = '\0';
  CURL *c = curl_easy_init();
  assert_non_null(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  if (strcmp(method, "POST") == 0) curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  return status;
}

static long http_get(uint16_t port, const char *path, char *body) {
  return http_req(port, "GET", path, body);
}

/* The count of a stat in the bucketstats text ("<name> avg:.. count:N ..."). */
static long stat_count(const char *text, const char *name) {
  char key[96];
  snprintf(key, sizeof(key), "\n%s avg:", name);
  const char *p = strstr(text, key);
  if (!p && strncmp(text, key + 1, strlen(key + 1)) == 0) p = text - 1;
  if (!p) return -1;
  const char *c = strstr(p + 1, " count:");
  return c ? strtol(c + 7, NULL, 10) : -1;
}

/* No imgr set: start dials imgr over retryrpc; nothing listens on port 1,
 * so Mount fails with a transport error (after the call timeout, 2 x
 * RetryRPCDeadlineIO, at the latest) and start fails cleanly. */
static void test_imgr_unreachable(void **state) {
  (void)state;
  conf_map *m = test_conf(iswift_port(g_srv), 0);
  char err[CONF_ERR_MAX];
  assert_int_equal(conf_update_from_string(m, "ICLIENT.RetryRPCPort=1", err, sizeof(err)), 0);
  assert_int_equal(conf_update_from_string(m, "ICLIENT.RetryRPCDeadlineIO=1s", err, sizeof(err)),
                   0);
  assert_int_equal(conf_update_from_string(m, "ICLIENT.MountRetryDuration=0s", err, sizeof(err)),
                   0);
  ic_daemon d = {0};
  int rc = ic_daemon_start(&d, m);
  assert_true(rc == -ECONNREFUSED || rc == -ETIMEDOUT);
  assert_false(d.mounted);
  assert_int_equal(ic_daemon_stop(&d), 0);
  assert_null(d.imgr); /* the retryrpc client was ours: gone */
  conf_free(m);
}

static void test_swift_unreachable(void **state) {
  (void)state;
  conf_map *m = test_conf(1, 0); /* nothing listens on port 1 */
  ic_daemon d = {0};
  int rc = ic_daemon_start(&d, m);
  assert_true(rc == -ECONNREFUSED || rc == -EIO);
  assert_int_equal(ic_daemon_stop(&d), 0);
  conf_free(m);
}

static void test_start_serve_stop(void **state) {
  (void)state;
  int fd = open("/dev/fuse", O_RDWR);
  if (fd < 0 || geteuid() != 0) {
    if (fd >= 0) close(fd);
    skip();
  }
  close(fd);
  /* Format the volume's root into the container, as imgr would. */
  ic_fake_imgr f;
  ic_fake_imgr_init(&f, 4, 100);
  swift_config sc;
  swift_config_defaults(&sc);
  char auth[128];
  snprintf(auth, sizeof(auth), "http://127.0.0.1:%u/auth/v1.0", (unsigned)iswift_port(g_srv));
  sc.auth_url = auth;
  sc.auth_user = "test:tester";
  sc.auth_key = "testing";
  swift_conn *admin;
  assert_int_equal(swift_conn_create(&sc, &admin), 0);
  assert_int_equal(swift_account_put(admin, NULL, 0), 0);
  assert_int_equal(swift_container_put(admin, "icd", NULL, 0), 0);
  ic_store_swift st = {admin, "icd"};
  assert_int_equal(ic_fake_imgr_format(&f, &ic_store_swift_ops, &st), 0);

  /* The HTTP port is picked at random per run below the kernel's ephemeral
   * range (others test on this machine at the same time); taken: pick again. */
  uint16_t port = 0;
  conf_map *m = NULL;
  ic_daemon d = {.imgr = &ic_fake_imgr_ops, .imgr_ctx = &f};
  int rc = -EADDRINUSE;
  for (int attempt = 0; attempt < 10 && rc == -EADDRINUSE; attempt++) {
    conf_free(m);
    port = (uint16_t)(10000 + ut_random_u64() % 20000);
    m = test_conf(iswift_port(g_srv), port);
    rc = ic_daemon_start(&d, m);
    if (rc) assert_int_equal(ic_daemon_stop(&d), 0);
  }
  assert_int_equal(rc, 0);

  char p[128];
  snprintf(p, sizeof(p), "%s/hello", g_dir);
  int wfd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(wfd >= 0);
  assert_int_equal(write(wfd, "world", 5), 5);
  assert_int_equal(fsync(wfd), 0); /* commits (write-back otherwise) */
  assert_int_equal(close(wfd), 0);
  struct stat sb;
  assert_int_equal(stat(p, &sb), 0);
  assert_int_equal(sb.st_size, 5);

  char *body = calloc(1, 8192);
  assert_non_null(body);
  assert_int_equal(http_get(port, "/config", body), 200);
  assert_non_null(strstr(body, "\"VolumeName\": \"testvol\""));
  assert_null(strstr(body, "testing")); /* the Swift key is redacted */
  assert_int_equal(http_get(port, "/leases", body), 200);
  assert_true(strstr(body, "\"InodeNumber\": 1,") || strstr(body, "\"InodeNumber\":1,"));
  assert_non_null(strstr(body, "ExclusiveGranted"));
  assert_int_equal(http_get(port, "/version", body), 200);
  assert_int_equal(http_get(port, "/stats", body), 200);
  /* RPCs, FUSE ops and the HTTP calls above are counted. */
  assert_int_equal(stat_count(body, "ICLIENT.MountUsecs"), 1);
  assert_int_equal(stat_count(body, "ICLIENT.DoCreateUsecs"), 1);
  assert_int_equal(stat_count(body, "ICLIENT.DoWriteBytes"), 1);
  assert_true(stat_count(body, "ICLIENT.PutInodeTableEntriesUsecs") >= 1);
  assert_int_equal(stat_count(body, "ICLIENT.GetConfigUsecs"), 1);
  assert_int_equal(stat_count(body, "ICLIENT.DoBMapUsecs"), 0);
  assert_int_equal(http_req(port, "POST", "/leases/demote", body), 200);
  assert_true(ic_fake_imgr_leases(&f, IC_LEASE_REQUEST_DEMOTE) >= 1);
  assert_int_equal(http_get(port, "/leases", body), 200);
  assert_null(strstr(body, "ExclusiveGranted"));
  assert_int_equal(http_req(port, "POST", "/leases/release", body), 200);
  assert_true(ic_fake_imgr_leases(&f, IC_LEASE_REQUEST_RELEASE) >= 2);
  assert_int_equal(http_get(port, "/leases", body), 200);
  assert_null(strstr(body, "Granted"));
  assert_int_equal(http_req(port, "POST", "/leases/other", body), 404);
  assert_int_equal(stat(p, &sb), 0); /* still served: reloaded under new leases */
  assert_int_equal(sb.st_size, 5);
  free(body);

  assert_int_equal(ic_daemon_stop(&d), 0);
  assert_int_equal(stat(p, &sb), -1); /* unmounted */
  /* The file is in Swift and in imgr's table: root + hello. */
  assert_int_equal(ic_fake_imgr_inodes(&f), 2);
  conf_free(m);
  swift_conn_destroy(admin);
  ic_fake_imgr_fini(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_swift_unreachable),
      cmocka_unit_test(test_start_serve_stop), /* counts RPCs: before other Mounts */
      cmocka_unit_test(test_imgr_unreachable),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
