/*
 * bench_utils: throughput of the utils HTTP server on 127.0.0.1.
 *
 *   bench_utils [clients] [requests-per-client] [body-bytes]
 *
 * Each client thread keeps one connection alive and PUTs a body that the
 * handler echoes back. Prints requests per second and MB/s; asserts nothing
 * about time.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "logger.h"
#include "utils.h"

static int h_echo(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  return ut_http_reply_bytes(rep, 200, "application/octet-stream", req->body, req->body_len);
}

typedef struct {
  uint16_t port;
  int requests;
  size_t body_len;
  int failures;
} client;

static int read_exact(int fd, char *buf, size_t len)
{
  while (len > 0) {
    ssize_t n = recv(fd, buf, len, 0);
    if (n <= 0)
      return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* One keep-alive exchange: headers byte by byte up to the blank line (small),
 * then exactly Content-Length bytes. */
static int exchange(int fd, const char *req, size_t req_len, char *body, size_t body_cap)
{
  if (send(fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len)
    return -1;
  char head[1024];
  size_t h = 0;
  while (h < 4 || memcmp(head + h - 4, "\r\n\r\n", 4) != 0) {
    if (h == sizeof head - 1 || read_exact(fd, head + h, 1) != 0)
      return -1;
    h++;
  }
  head[h] = '\0';
  const char *cl = strcasestr(head, "Content-Length:");
  size_t len = cl ? strtoul(cl + 15, NULL, 10) : 0;
  if (strncmp(head, "HTTP/1.1 200", 12) != 0 || len > body_cap)
    return -1;
  return read_exact(fd, body, len);
}

static void *run_client(void *p)
{
  client *c = p;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(c->port) };
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
    c->failures = c->requests;
    close(fd);
    return NULL;
  }
  size_t head_len = 128;
  char *req = malloc(head_len + c->body_len);
  int n = snprintf(req, head_len, "PUT /echo HTTP/1.1\r\nHost: b\r\nContent-Length: %zu\r\n\r\n",
                   c->body_len);
  memset(req + n, 'x', c->body_len);
  char *body = malloc(c->body_len + 1);
  for (int i = 0; i < c->requests; i++)
    if (exchange(fd, req, (size_t)n + c->body_len, body, c->body_len) != 0) {
      c->failures = c->requests - i;
      break;
    }
  free(req);
  free(body);
  close(fd);
  return NULL;
}

int main(int argc, char **argv)
{
  int nclients = argc > 1 ? atoi(argv[1]) : 4;
  int requests = argc > 2 ? atoi(argv[2]) : 2000;
  size_t body_len = argc > 3 ? strtoul(argv[3], NULL, 10) : 100;
  log_configure(NULL, false, false);
  const ut_http_route routes[] = { { "PUT", "/echo", h_echo, NULL } };
  ut_http_config cfg = { .addr = "127.0.0.1", .max_body = body_len };
  ut_http_server *srv;
  if (ut_http_server_start(&cfg, routes, 1, &srv) != 0) {
    fprintf(stderr, "cannot start the server\n");
    return 1;
  }
  pthread_t *t = calloc((size_t)nclients, sizeof *t);
  client *c = calloc((size_t)nclients, sizeof *c);
  uint64_t t0 = ut_now_ns();
  for (int i = 0; i < nclients; i++) {
    c[i] = (client){ ut_http_server_port(srv), requests, body_len, 0 };
    pthread_create(&t[i], NULL, run_client, &c[i]);
  }
  int failures = 0;
  for (int i = 0; i < nclients; i++) {
    pthread_join(t[i], NULL);
    failures += c[i].failures;
  }
  double secs = (double)(ut_now_ns() - t0) / 1e9;
  double total = (double)nclients * requests - failures;
  printf("clients=%d requests=%d body=%zu: %.0f req/s, %.1f MB/s each way, %d failed\n",
         nclients, nclients * requests, body_len, total / secs,
         total * (double)body_len / secs / 1e6, failures);
  ut_http_server_stop(srv);
  free(t);
  free(c);
  return failures != 0;
}
