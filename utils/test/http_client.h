/* A tiny blocking HTTP/1.1 client for the utils tests: raw bytes out, the
 * whole response (read until the server closes) parsed back. Every socket
 * has a receive timeout so a broken server fails the test instead of
 * hanging it. */
#ifndef UT_TEST_HTTP_CLIENT_H
#define UT_TEST_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int status;
  char head[8192];    /* status line and headers, NUL-terminated */
  char *body;         /* malloc'd, NUL-terminated */
  size_t body_len;
} tc_resp;

/* Connected socket to 127.0.0.1:port, or -1. */
int tc_connect(uint16_t port);
int tc_send_all(int fd, const void *buf, size_t len);
/* Read until EOF and parse; closes fd. 0 or -1 (no/garbled response). */
int tc_read_response(int fd, tc_resp *r);
/* One request with "Connection: close"; extra_headers is "" or lines ending
 * in CRLF; a body gets a Content-Length. */
int tc_request(uint16_t port, const char *method, const char *target,
               const char *extra_headers, const void *body, size_t len, tc_resp *r);
/* Value of a response header (case-insensitive) copied into buf, or NULL. */
const char *tc_header(const tc_resp *r, const char *name, char *buf, size_t buflen);
void tc_free(tc_resp *r);

#endif
