#include "http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int tc_connect(uint16_t port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct timeval tv = { .tv_sec = 20 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int tc_send_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int tc_read_response(int fd, tc_resp *r)
{
  memset(r, 0, sizeof *r);
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (len == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
    }
    ssize_t n = recv(fd, buf + len, cap - len, 0);
    if (n <= 0)
      break; /* EOF, reset or timeout: parse what we have */
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  char *end = strstr(buf, "\r\n\r\n");
  if (end == NULL || (size_t)(end - buf) >= sizeof r->head ||
      sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
    free(buf);
    return -1;
  }
  memcpy(r->head, buf, (size_t)(end - buf) + 2);
  r->head[end - buf + 2] = '\0';
  r->body_len = len - (size_t)(end + 4 - buf);
  r->body = malloc(r->body_len + 1);
  memcpy(r->body, end + 4, r->body_len);
  r->body[r->body_len] = '\0';
  free(buf);
  return 0;
}

int tc_request(uint16_t port, const char *method, const char *target,
               const char *extra_headers, const void *body, size_t len, tc_resp *r)
{
  int fd = tc_connect(port);
  if (fd < 0)
    return -1;
  char head[4096];
  int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Connection: close\r\n%s", method, target, extra_headers);
  if (body != NULL)
    n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", len);
  n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
  if (tc_send_all(fd, head, (size_t)n) != 0 ||
      (body != NULL && len > 0 && tc_send_all(fd, body, len) != 0)) {
    close(fd);
    return -1;
  }
  return tc_read_response(fd, r);
}

const char *tc_header(const tc_resp *r, const char *name, char *buf, size_t buflen)
{
  size_t nlen = strlen(name);
  for (const char *line = strstr(r->head, "\r\n"); line != NULL;
       line = strstr(line + 2, "\r\n")) {
    const char *h = line + 2;
    if (strncasecmp(h, name, nlen) == 0 && h[nlen] == ':') {
      h += nlen + 1;
      while (*h == ' ')
        h++;
      size_t vlen = strcspn(h, "\r\n");
      if (vlen >= buflen)
        vlen = buflen - 1;
      memcpy(buf, h, vlen);
      buf[vlen] = '\0';
      return buf;
    }
  }
  return NULL;
}

void tc_free(tc_resp *r)
{
  free(r->body);
  r->body = NULL;
}
