/* utils: the HTTP server, driven over 127.0.0.1 by a raw-socket client. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bucketstats.h"
#include "http_client.h"
#include "logger.h"
#include "utils.h"

/* ---- handlers --------------------------------------------------------- */

/* Replies "<tag> <method> <path> <raw_path>". */
static int h_echo_path(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  return ut_http_reply_text(rep, 200, "text/plain", "%s %s [%s] [%s]", (const char *)ctx,
                            req->method, req->path, req->raw_path);
}

/* Echoes the body; checks the promised NUL terminator. */
static int h_echo_body(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  if (req->body == NULL || req->body[req->body_len] != '\0')
    return -EIO;
  return ut_http_reply_bytes(rep, 201, "application/octet-stream", req->body,
                             req->body_len);
}

static int h_errno(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  /* A body set before an error must not be sent. */
  ut_http_reply_text(rep, 200, "text/plain", "never sent");
  return -(int)(intptr_t)ctx;
}

static int h_headers(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  const char *hdr = ut_http_header(req, "x-test");
  const char *a = ut_http_query(req, "a");
  const char *flag = ut_http_query(req, "flag");
  const char *missing = ut_http_query(req, "missing");
  int err = ut_http_reply_header(rep, "X-Reply", "yes");
  if (err == 0)
    err = ut_http_reply_header(rep, "ETag", "\"abc\"");
  if (err != 0)
    return err;
  json_t *j = json_pack("{s:s?,s:s?,s:s?,s:b}", "hdr", hdr, "a", a, "flag", flag,
                        "missing", missing == NULL);
  return ut_http_reply_json(rep, 200, j);
}

static int h_head(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  if (ctx != NULL) /* announce a length without a body */
    return ut_http_reply_header(rep, "Content-Length", "123456789");
  return ut_http_reply_text(rep, 200, "text/plain", "hello");
}

/* ---- fixture ---------------------------------------------------------- */

static ut_http_server *start(const ut_http_route *routes, size_t n, size_t max_body)
{
  ut_http_config cfg = { .addr = "127.0.0.1", .port = 0, .max_body = max_body };
  ut_http_server *srv = NULL;
  assert_int_equal(ut_http_server_start(&cfg, routes, n, &srv), 0);
  assert_non_null(srv);
  assert_int_not_equal(ut_http_server_port(srv), 0);
  return srv;
}

static void expect(uint16_t port, const char *method, const char *target, int status,
                   const char *body)
{
  tc_resp r;
  assert_int_equal(tc_request(port, method, target, "", NULL, 0, &r), 0);
  assert_int_equal(r.status, status);
  if (body != NULL)
    assert_string_equal(r.body, body);
  char cl[32];
  /* Content-Length is always set and matches what was sent. */
  assert_non_null(tc_header(&r, "Content-Length", cl, sizeof cl));
  if (strcmp(method, "HEAD") != 0)
    assert_int_equal(strtoull(cl, NULL, 10), r.body_len);
  tc_free(&r);
}

/* ---- tests ------------------------------------------------------------ */

static void test_routing(void **state)
{
  const ut_http_route routes[] = {
    { "GET", "/volume", h_echo_path, "vol" },
    { "GET", "/volume", h_echo_path, "second" }, /* never reached: first wins */
    { "GET", "/stats", h_echo_path, "stats" },
    { "PUT", "/volume", h_echo_path, "put" },
    { "DELETE", "/", h_echo_path, "del" },
  };
  ut_http_server *srv = start(routes, 5, 1024);
  uint16_t port = ut_http_server_port(srv);

  expect(port, "GET", "/volume", 200, "vol GET [/volume] [/volume]");
  /* trailing '/' removed, several too */
  expect(port, "GET", "/volume/", 200, "vol GET [/volume] [/volume]");
  expect(port, "GET", "/volume/x//", 200, "vol GET [/volume/x] [/volume/x]");
  /* prefix matching, as the original: /volumes goes to the volume route */
  expect(port, "GET", "/volumes", 200, "vol GET [/volumes] [/volumes]");
  expect(port, "GET", "/stats?x=1", 200, "stats GET [/stats] [/stats]");
  expect(port, "PUT", "/volume/a", 200, "put PUT [/volume/a] [/volume/a]");
  /* percent-decoding: path decoded, raw_path as sent */
  expect(port, "GET", "/volume/a%2Fb%20c", 200, "vol GET [/volume/a/b c] [/volume/a%2Fb%20c]");
  /* "/" becomes "" and does not match the prefix "/" */
  expect(port, "DELETE", "/", 404, "");
  expect(port, "DELETE", "/x", 200, "del DELETE [/x] [/x]");
  /* known method, unknown path: 404; unknown method: 405 */
  expect(port, "GET", "/", 404, "");
  expect(port, "GET", "/other", 404, "");
  expect(port, "PUT", "/stats", 404, "");
  expect(port, "POST", "/volume", 405, "");
  expect(port, "PATCH", "/volume", 405, "");
  /* HEAD is not implied by GET */
  expect(port, "HEAD", "/volume", 405, NULL);
  ut_http_server_stop(srv);
}

static void test_empty_prefix_and_any_method(void **state)
{
  const ut_http_route routes[] = { { NULL, "", h_echo_path, "any" } };
  ut_http_server *srv = start(routes, 1, 1024);
  uint16_t port = ut_http_server_port(srv);
  expect(port, "GET", "/", 200, "any GET [] []");
  expect(port, "POST", "/a/b/", 200, "any POST [/a/b] [/a/b]");
  expect(port, "PATCH", "/", 200, "any PATCH [] []");
  ut_http_server_stop(srv);
}

static void test_headers_and_query(void **state)
{
  const ut_http_route routes[] = { { "GET", "/h", h_headers, NULL } };
  ut_http_server *srv = start(routes, 1, 1024);
  tc_resp r;
  assert_int_equal(tc_request(ut_http_server_port(srv), "GET", "/h?a=x%20y&flag&z=1",
                              "X-Test: hello\r\n", NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"hdr\":\"hello\",\"a\":\"x y\",\"flag\":\"\",\"missing\":true}");
  char v[64];
  assert_string_equal(tc_header(&r, "x-reply", v, sizeof v), "yes");
  assert_string_equal(tc_header(&r, "ETag", v, sizeof v), "\"abc\"");
  assert_string_equal(tc_header(&r, "Content-Type", v, sizeof v), "application/json");
  tc_free(&r);
  ut_http_server_stop(srv);
}

static void test_binary_body_echo(void **state)
{
  const ut_http_route routes[] = { { "PUT", "/echo", h_echo_body, NULL } };
  ut_http_server *srv = start(routes, 1, 100000);
  uint16_t port = ut_http_server_port(srv);
  size_t len = 70000; /* several reads; every byte value, many NULs */
  unsigned char *body = malloc(len);
  for (size_t i = 0; i < len; i++)
    body[i] = (unsigned char)(i * 7 % 256);
  tc_resp r;
  assert_int_equal(tc_request(port, "PUT", "/echo", "", body, len, &r), 0);
  assert_int_equal(r.status, 201);
  assert_int_equal(r.body_len, len);
  assert_memory_equal(r.body, body, len);
  tc_free(&r);

  /* Empty body: still a valid "" */
  assert_int_equal(tc_request(port, "PUT", "/echo", "", "", 0, &r), 0);
  assert_int_equal(r.status, 201);
  assert_int_equal(r.body_len, 0);
  tc_free(&r);
  free(body);
  ut_http_server_stop(srv);
}

static int send_raw(uint16_t port, const char *raw, size_t len, tc_resp *r)
{
  int fd = tc_connect(port);
  if (fd < 0)
    return -1;
  if (tc_send_all(fd, raw, len) != 0) {
    close(fd);
    return -1;
  }
  return tc_read_response(fd, r);
}

static void test_body_limit(void **state)
{
  const ut_http_route routes[] = { { "PUT", "/echo", h_echo_body, NULL } };
  ut_http_server *srv = start(routes, 1, 10);
  uint16_t port = ut_http_server_port(srv);
  tc_resp r;

  /* exactly the cap: accepted */
  assert_int_equal(tc_request(port, "PUT", "/echo", "", "0123456789", 10, &r), 0);
  assert_int_equal(r.status, 201);
  assert_string_equal(r.body, "0123456789");
  tc_free(&r);

  /* one over: 413 */
  assert_int_equal(tc_request(port, "PUT", "/echo", "", "0123456789A", 11, &r), 0);
  assert_int_equal(r.status, 413);
  assert_int_equal(r.body_len, 0);
  tc_free(&r);

  /* A huge declared length is refused from the headers alone: the body is
   * never sent, and the answer still comes. */
  const char *big = "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n";
  assert_int_equal(send_raw(port, big, strlen(big), &r), 0);
  assert_int_equal(r.status, 413);
  tc_free(&r);

  /* Chunked over the cap: read, dropped, 413 */
  const char *chunked = "PUT /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n"
                        "8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n";
  assert_int_equal(send_raw(port, chunked, strlen(chunked), &r), 0);
  assert_int_equal(r.status, 413);
  tc_free(&r);

  /* Chunked within the cap, split in pieces */
  const char *small = "PUT /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n"
                      "3\r\na\0b\r\n2\r\ncd\r\n0\r\n\r\n";
  size_t small_len = strlen(small) + strlen(small + strlen(small) + 1) + 1;
  assert_int_equal(send_raw(port, small, small_len, &r), 0);
  assert_int_equal(r.status, 201);
  assert_int_equal(r.body_len, 5);
  assert_memory_equal(r.body, "a\0bcd", 5);
  tc_free(&r);

  /* Malformed chunking: libmicrohttpd answers 400 */
  const char *bad = "PUT /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    "Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n";
  assert_int_equal(send_raw(port, bad, strlen(bad), &r), 0);
  assert_int_equal(r.status, 400);
  tc_free(&r);
  ut_http_server_stop(srv);
}

static void test_errno_status(void **state)
{
  const ut_http_route routes[] = {
    { "GET", "/exist", h_errno, (void *)(intptr_t)EEXIST },
    { "GET", "/noent", h_errno, (void *)(intptr_t)ENOENT },
    { "GET", "/other", h_errno, (void *)(intptr_t)EXDEV },
  };
  ut_http_server *srv = start(routes, 3, 10);
  uint16_t port = ut_http_server_port(srv);
  expect(port, "GET", "/exist", 409, "");
  expect(port, "GET", "/noent", 404, "");
  expect(port, "GET", "/other", 500, "");
  ut_http_server_stop(srv);
}

static void test_head(void **state)
{
  const ut_http_route routes[] = {
    { "HEAD", "/big", h_head, (void *)1 },
    { "HEAD", "/small", h_head, NULL },
    { "GET", "/big", h_head, (void *)1 },
  };
  ut_http_server *srv = start(routes, 3, 10);
  uint16_t port = ut_http_server_port(srv);
  tc_resp r;
  char v[32];
  assert_int_equal(tc_request(port, "HEAD", "/big", "", NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(tc_header(&r, "Content-Length", v, sizeof v), "123456789");
  assert_int_equal(r.body_len, 0);
  tc_free(&r);

  assert_int_equal(tc_request(port, "HEAD", "/small", "", NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(tc_header(&r, "Content-Length", v, sizeof v), "5");
  assert_int_equal(r.body_len, 0);
  tc_free(&r);

  /* On GET the announced length is ignored: the (empty) body decides. */
  assert_int_equal(tc_request(port, "GET", "/big", "", NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(tc_header(&r, "Content-Length", v, sizeof v), "0");
  tc_free(&r);
  ut_http_server_stop(srv);
}

/* ---- concurrency ------------------------------------------------------ */

#define NCLIENTS 6
#define NREQUESTS 15

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_inside;

/* Waits until NCLIENTS handlers are inside at once: only possible when
 * requests really run in parallel. 504 if that never happens. */
static int h_gate(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  pthread_mutex_lock(&gate_mu);
  gate_inside++;
  pthread_cond_broadcast(&gate_cv);
  struct timespec deadline = ut_deadline_ts(10ull * 1000000000u);
  int rc = 0;
  while (gate_inside < NCLIENTS && rc == 0)
    rc = pthread_cond_timedwait(&gate_cv, &gate_mu, &deadline);
  pthread_mutex_unlock(&gate_mu);
  return rc == 0 ? ut_http_reply_text(rep, 200, "text/plain", "ok") : -ETIMEDOUT;
}

typedef struct {
  uint16_t port;
  int id;
  int ok;
} client_arg;

static void *client_gate(void *p)
{
  client_arg *a = p;
  tc_resp r;
  if (tc_request(a->port, "GET", "/gate", "", NULL, 0, &r) == 0) {
    a->ok = r.status == 200;
    tc_free(&r);
  }
  return NULL;
}

static void *client_loop(void *p)
{
  client_arg *a = p;
  for (int i = 0; i < NREQUESTS; i++) {
    char body[64], target[64];
    int n = snprintf(body, sizeof body, "client %d request %d", a->id, i);
    snprintf(target, sizeof target, "/echo/%d/%d", a->id, i);
    tc_resp r;
    if (tc_request(a->port, "PUT", target, "", body, (size_t)n, &r) != 0)
      return NULL;
    bool good = r.status == 201 && r.body_len == (size_t)n && memcmp(r.body, body, n) == 0;
    tc_free(&r);
    if (!good)
      return NULL;
  }
  a->ok = 1;
  return NULL;
}

static void test_concurrent(void **state)
{
  const ut_http_route routes[] = {
    { "GET", "/gate", h_gate, NULL },
    { "PUT", "/echo", h_echo_body, NULL },
  };
  ut_http_server *srv = start(routes, 2, 1024);
  pthread_t t[NCLIENTS];
  client_arg args[NCLIENTS];
  for (int i = 0; i < NCLIENTS; i++) {
    args[i] = (client_arg){ ut_http_server_port(srv), i, 0 };
    assert_int_equal(pthread_create(&t[i], NULL, client_gate, &args[i]), 0);
  }
  for (int i = 0; i < NCLIENTS; i++) {
    pthread_join(t[i], NULL);
    assert_true(args[i].ok);
  }
  for (int i = 0; i < NCLIENTS; i++) {
    args[i] = (client_arg){ ut_http_server_port(srv), i, 0 };
    assert_int_equal(pthread_create(&t[i], NULL, client_loop, &args[i]), 0);
  }
  for (int i = 0; i < NCLIENTS; i++) {
    pthread_join(t[i], NULL);
    assert_true(args[i].ok);
  }
  ut_http_server_stop(srv);
}

static void test_connection_limit(void **state)
{
  const ut_http_route routes[] = { { "GET", "", h_echo_path, "x" } };
  ut_http_config cfg = { .addr = "127.0.0.1", .max_body = 10, .max_connections = 2 };
  ut_http_server *srv = NULL;
  assert_int_equal(ut_http_server_start(&cfg, routes, 1, &srv), 0);
  uint16_t port = ut_http_server_port(srv);
  /* Two keep-alive connections, each proven accepted by a full exchange. */
  int fds[2];
  const char *req = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int i = 0; i < 2; i++) {
    fds[i] = tc_connect(port);
    assert_true(fds[i] >= 0);
    assert_int_equal(tc_send_all(fds[i], req, strlen(req)), 0);
    char buf[512];
    ssize_t n = recv(fds[i], buf, sizeof buf - 1, 0);
    assert_true(n > 12);
    assert_memory_equal(buf, "HTTP/1.1 200", 12);
  }
  /* A third waits unserved (libmicrohttpd stops accepting at the limit)... */
  int third = tc_connect(port);
  assert_true(third >= 0);
  assert_int_equal(tc_send_all(third, req, strlen(req)), 0);
  struct timeval short_wait = { .tv_usec = 300000 }, long_wait = { .tv_sec = 20 };
  setsockopt(third, SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof short_wait);
  char buf[512];
  ssize_t n = recv(third, buf, sizeof buf - 1, 0);
  assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  /* ...until a slot frees. */
  close(fds[0]);
  setsockopt(third, SOL_SOCKET, SO_RCVTIMEO, &long_wait, sizeof long_wait);
  n = recv(third, buf, sizeof buf - 1, 0);
  assert_true(n > 12);
  assert_memory_equal(buf, "HTTP/1.1 200", 12);
  close(third);
  close(fds[1]);
  ut_http_server_stop(srv);
}

/* ---- stop ------------------------------------------------------------- */

static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slow_cv = PTHREAD_COND_INITIALIZER;
static bool slow_entered, slow_done;

static int h_slow(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  pthread_mutex_lock(&slow_mu);
  slow_entered = true;
  pthread_cond_broadcast(&slow_cv);
  pthread_mutex_unlock(&slow_mu);
  ut_sleep_ns(300 * 1000000ull);
  pthread_mutex_lock(&slow_mu);
  slow_done = true;
  pthread_mutex_unlock(&slow_mu);
  return ut_http_reply_text(rep, 200, "text/plain", "slow");
}

static void *client_slow(void *p)
{
  client_arg *a = p;
  tc_resp r;
  if (tc_request(a->port, "GET", "/slow", "", NULL, 0, &r) == 0) {
    a->ok = r.status == 200 && strcmp(r.body, "slow") == 0;
    tc_free(&r);
  }
  return NULL;
}

static void test_stop_waits_for_handler(void **state)
{
  const ut_http_route routes[] = { { "GET", "/slow", h_slow, NULL } };
  ut_http_server *srv = start(routes, 1, 10);
  client_arg a = { ut_http_server_port(srv), 0, 0 };
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, client_slow, &a), 0);
  pthread_mutex_lock(&slow_mu);
  while (!slow_entered)
    pthread_cond_wait(&slow_cv, &slow_mu);
  pthread_mutex_unlock(&slow_mu);
  ut_http_server_stop(srv);
  /* stop returned only after the running handler finished */
  pthread_mutex_lock(&slow_mu);
  assert_true(slow_done);
  pthread_mutex_unlock(&slow_mu);
  pthread_join(t, NULL);
  assert_true(a.ok);
}

static void test_stop_with_idle_clients(void **state)
{
  const ut_http_route routes[] = { { "GET", "", h_echo_path, "x" } };
  /* A long idle timeout: stop must not wait for it. */
  ut_http_config cfg = { .addr = "127.0.0.1", .max_body = 10, .timeout_s = 3600 };
  ut_http_server *srv = NULL;
  assert_int_equal(ut_http_server_start(&cfg, routes, 1, &srv), 0);
  uint16_t port = ut_http_server_port(srv);
  /* one idle keep-alive connection after a request, one with half a request */
  int idle = tc_connect(port), half = tc_connect(port);
  assert_true(idle >= 0 && half >= 0);
  const char *req = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(tc_send_all(idle, req, strlen(req)), 0);
  char buf[512];
  assert_true(recv(idle, buf, sizeof buf, 0) > 0);
  assert_int_equal(tc_send_all(half, "GET /a HTTP/1.1\r\nHo", 19), 0);
  uint64_t t0 = ut_now_ns();
  ut_http_server_stop(srv);
  /* Far below the idle timeout: the connections were closed, not waited out. */
  assert_true(ut_now_ns() - t0 < 60ull * 1000000000u);
  /* the clients see the close (EOF or reset, not the receive timeout) */
  ssize_t n = recv(half, buf, sizeof buf, 0);
  assert_true(n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK));
  close(idle);
  close(half);
  ut_http_server_stop(NULL);
}

static void test_start_errors(void **state)
{
  const ut_http_route routes[] = { { "GET", "", h_echo_path, "x" } };
  ut_http_server *a = start(routes, 1, 10);
  ut_http_config cfg = { .addr = "127.0.0.1", .port = ut_http_server_port(a), .max_body = 10 };
  ut_http_server *b = (ut_http_server *)&cfg;
  assert_true(ut_http_server_start(&cfg, routes, 1, &b) < 0); /* port taken */
  assert_null(b);
  cfg.port = 0;
  cfg.addr = "not an address!";
  assert_int_equal(ut_http_server_start(&cfg, routes, 1, &b), -EINVAL);
  const ut_http_route bad[] = { { "GET", NULL, h_echo_path, "x" } };
  cfg.addr = "127.0.0.1";
  assert_int_equal(ut_http_server_start(&cfg, bad, 1, &b), -EINVAL);
  ut_http_server_stop(a);
}

/* ---- standard routes -------------------------------------------------- */

static bs_total std_total;

static void test_std_routes(void **state)
{
  conf_map *conf = conf_new();
  const char *v[] = { "value" };
  assert_int_equal(conf_set(conf, "SECTION", "Option", v, 1), 0);
  bs_total_add(&std_total, 42);
  const bs_stat_desc descs[] = { BS_DESC_TOTAL(&std_total, "UtilsTestTotal") };
  assert_int_equal(bs_register("UTILS", "Test", descs, 1), 0);

  ut_http_route routes[4];
  assert_int_equal(ut_http_std_routes(NULL, routes), 3);
  assert_int_equal(ut_http_std_routes(conf, routes), 4);
  ut_http_server *srv = start(routes, 4, 10);
  uint16_t port = ut_http_server_port(srv);
  tc_resp r;
  char v2[64];

  assert_int_equal(tc_request(port, "GET", "/stats", "", NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(tc_header(&r, "Content-Type", v2, sizeof v2), "text/plain");
  assert_non_null(strstr(r.body, "UtilsTestTotal"));
  assert_non_null(strstr(r.body, "42"));
  tc_free(&r);

  assert_int_equal(tc_request(port, "GET", "/metrics", "", NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(tc_header(&r, "Content-Type", v2, sizeof v2),
                      "text/plain; version=0.0.4");
  assert_non_null(strstr(r.body, "42"));
  tc_free(&r);

  assert_int_equal(tc_request(port, "GET", "/version/", "", NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, PFS_VERSION);
  tc_free(&r);

  assert_int_equal(tc_request(port, "GET", "/config", "", NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(tc_header(&r, "Content-Type", v2, sizeof v2), "application/json");
  json_t *j = json_loads(r.body, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_array_get(
                          json_object_get(json_object_get(j, "SECTION"), "Option"), 0)),
                      "value");
  json_decref(j);
  tc_free(&r);

  expect(port, "GET", "/statsx", 404, "");
  expect(port, "GET", "/config/x", 404, "");
  expect(port, "PUT", "/stats", 405, "");
  ut_http_server_stop(srv);
  assert_int_equal(bs_unregister("UTILS", "Test"), 0);
  conf_free(conf);
}

int main(void)
{
  log_configure(NULL, false, false);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_routing),
    cmocka_unit_test(test_empty_prefix_and_any_method),
    cmocka_unit_test(test_headers_and_query),
    cmocka_unit_test(test_binary_body_echo),
    cmocka_unit_test(test_body_limit),
    cmocka_unit_test(test_errno_status),
    cmocka_unit_test(test_head),
    cmocka_unit_test(test_concurrent),
    cmocka_unit_test(test_connection_limit),
    cmocka_unit_test(test_stop_waits_for_handler),
    cmocka_unit_test(test_stop_with_idle_clients),
    cmocka_unit_test(test_start_errors),
    cmocka_unit_test(test_std_routes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
