/*
 * Fuzz target for the utils HTTP server: each input is sent as raw bytes
 * over a fresh 127.0.0.1 connection (then half-closed) to one server that
 * lives for the whole run, and the reply is read until the server closes.
 * Routes cover every path through our code: prefix routing, trailing-slash
 * trimming, raw vs decoded path, query and header lookups, the body cap
 * (declared and chunked), HEAD with an announced length, errno replies.
 * Properties checked: no crash, no leak, no hang (receive timeout), and
 * every reply that arrives starts with an HTTP status line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "logger.h"
#include "utils.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int h_echo(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  const char *q = ut_http_query(req, "q");
  const char *h = ut_http_header(req, "X-H");
  int err = ut_http_reply_header(rep, "X-Raw", req->raw_path);
  if (err == 0 && h != NULL)
    err = ut_http_reply_header(rep, "X-Echo", h); /* may be refused: CR/LF */
  if (err != 0 && err != -EINVAL)
    return err;
  if (q != NULL && strcmp(q, "json") == 0)
    return ut_http_reply_json(rep, 200, json_pack("{s:s,s:s%}", "path", req->path, "body",
                                                  req->body, req->body_len));
  return ut_http_reply_bytes(rep, 200, "application/octet-stream", req->body, req->body_len);
}

static int h_head(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  return ut_http_reply_header(rep, "Content-Length", "1000");
}

static int h_fail(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  return -(int)(strlen(req->path) % 140);
}

static ut_http_server *server;

static void start_server(void)
{
  static const ut_http_route routes[] = {
    { "GET", "/echo", h_echo, NULL },
    { "PUT", "/echo", h_echo, NULL },
    { "POST", "/echo", h_echo, NULL },
    { "HEAD", "/head", h_head, NULL },
    { "DELETE", "", h_fail, NULL },
  };
  ut_http_config cfg = { .addr = "127.0.0.1", .max_body = 256, .timeout_s = 5 };
  log_configure(NULL, false, false);
  if (ut_http_server_start(&cfg, routes, sizeof routes / sizeof routes[0], &server) != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (server == NULL)
    start_server();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = { .tv_sec = 10 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(ut_http_server_port(server)) };
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
    abort();
  /* The server may answer and close before reading everything: a failed
   * send is fine, the reply is what we check. */
  for (size_t off = 0; off < size;) {
    ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n <= 0)
      break;
    off += (size_t)n;
  }
  shutdown(fd, SHUT_WR);
  char buf[4096];
  size_t got = 0;
  char first[5] = "";
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      abort(); /* the server hung on this input */
    if (n <= 0)
      break;
    if (got < 5)
      memcpy(first + got, buf, (size_t)n < 5 - got ? (size_t)n : 5 - got);
    got += (size_t)n;
  }
  close(fd);
  if (got >= 5 && memcmp(first, "HTTP/", 5) != 0)
    abort();
  return 0;
}
