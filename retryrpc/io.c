/* Sockets with deadlines, plain or TLS (OpenSSL), all non-blocking. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "rrpc_internal.h"

uint64_t rrpc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void rrpc_cond_init(pthread_cond_t *cv) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &a);
  pthread_condattr_destroy(&a);
}

bool rrpc_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline) {
  struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000ull),
                        .tv_nsec = (long)(deadline % 1000000000ull)};
  return pthread_cond_timedwait(cv, mu, &ts) != ETIMEDOUT;
}

void rrpc_sock_init(rrpc_sock *s, int fd, SSL *ssl) {
  s->fd = fd;
  s->ssl = ssl;
  pthread_mutex_init(&s->ssl_mu, NULL);
}

void rrpc_sock_close(rrpc_sock *s) {
  if (s->ssl)
    SSL_free(s->ssl);
  if (s->fd >= 0)
    close(s->fd);
  s->ssl = NULL;
  s->fd = -1;
  pthread_mutex_destroy(&s->ssl_mu);
}

void rrpc_sock_shutdown(rrpc_sock *s) {
  if (s->fd >= 0)
    shutdown(s->fd, SHUT_RDWR);
}

/* Wait for events until the deadline. 0 ready, -EAGAIN timed out. */
static int wait_fd(int fd, short events, uint64_t deadline) {
  for (;;) {
    uint64_t now = rrpc_now_ns();
    if (now >= deadline)
      return -EAGAIN;
    uint64_t ms = (deadline - now + 999999) / 1000000;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, ms > 1000000 ? 1000000 : (int)ms);
    if (r > 0)
      return 0; /* errors and hangups surface in the next read/write */
    if (r < 0 && errno != EINTR)
      return -errno;
  }
}

/*
 * OpenSSL writes to the socket with write(2), which raises SIGPIPE on a
 * connection the peer closed; a library must not kill its process, nor
 * change the process's signal handling. So SIGPIPE is blocked in this
 * thread around SSL calls and a SIGPIPE they caused is consumed.
 */
typedef struct {
  sigset_t old;
  bool was_pending;
} pipe_guard;

static void pipe_block(pipe_guard *g) {
  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  sigpending(&pending);
  g->was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void pipe_unblock(pipe_guard *g) {
  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  sigpending(&pending);
  if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
    struct timespec zero = {0, 0};
    sigtimedwait(&set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* One non-blocking transfer: >0 bytes, 0 would block (*want = events),
 * <0 error (EOF is -ECONNRESET). */
static ssize_t xfer(rrpc_sock *s, void *buf, size_t n, bool rd, short *want) {
  if (!s->ssl) {
    ssize_t r = rd ? recv(s->fd, buf, n, 0) : send(s->fd, buf, n, MSG_NOSIGNAL);
    if (r > 0)
      return r;
    if (r == 0)
      return -ECONNRESET;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      *want = rd ? POLLIN : POLLOUT;
      return 0;
    }
    return errno == EPIPE ? -ECONNRESET : -errno;
  }
  if (n > INT32_MAX)
    n = INT32_MAX;
  pipe_guard g;
  pthread_mutex_lock(&s->ssl_mu);
  pipe_block(&g);
  ERR_clear_error();
  int r = rd ? SSL_read(s->ssl, buf, (int)n) : SSL_write(s->ssl, buf, (int)n);
  int err = r > 0 ? SSL_ERROR_NONE : SSL_get_error(s->ssl, r);
  ERR_clear_error();
  pipe_unblock(&g);
  pthread_mutex_unlock(&s->ssl_mu);
  switch (err) {
  case SSL_ERROR_NONE:
    return r;
  case SSL_ERROR_WANT_READ:
    *want = POLLIN;
    return 0;
  case SSL_ERROR_WANT_WRITE:
    *want = POLLOUT;
    return 0;
  default:
    return -ECONNRESET;
  }
}

/* Move exactly n bytes (see rrpc_sock_read for the idle phase). */
static int xfer_full(rrpc_sock *s, char *buf, size_t n, bool rd, uint64_t idle_until,
                     uint64_t deadline_io) {
  size_t done = 0;
  uint64_t deadline = idle_until ? idle_until : rrpc_now_ns() + deadline_io;
  while (done < n) {
    short want = 0;
    ssize_t r = xfer(s, buf + done, n - done, rd, &want);
    if (r == 0 && wait_fd(s->fd, want, deadline) == -EAGAIN) {
      /* Recheck once: data may have arrived with the deadline. */
      r = xfer(s, buf + done, n - done, rd, &want);
      if (r == 0)
        return done == 0 && idle_until ? -EAGAIN : -ETIMEDOUT;
    }
    if (r < 0)
      return (int)r;
    if (r > 0 && done == 0 && idle_until)
      deadline = rrpc_now_ns() + deadline_io;
    done += (size_t)r;
  }
  return 0;
}

int rrpc_sock_read(rrpc_sock *s, void *buf, size_t n, uint64_t idle_until,
                   uint64_t deadline_io) {
  return xfer_full(s, buf, n, true, idle_until, deadline_io);
}

int rrpc_sock_write(rrpc_sock *s, const void *buf, size_t n, uint64_t deadline_io) {
  /* xfer only reads from buf when rd is false. */
  return xfer_full(s, (char *)buf, n, false, 0, deadline_io);
}

int rrpc_sock_read_frame(rrpc_sock *s, size_t max_frame, uint64_t idle_until,
                         uint64_t deadline_io, rrpc_hdr *h, uint8_t **body) {
  uint8_t hb[RRPC_HDR_LEN];
  *body = NULL;
  int rc = rrpc_sock_read(s, hb, sizeof hb, idle_until, deadline_io);
  if (rc)
    return rc;
  rc = rrpc_hdr_decode(hb, max_frame, h);
  if (rc)
    return rc;
  if (h->len == 0)
    return 0;
  uint8_t *b = malloc((size_t)h->len + 1);
  if (!b)
    return -ENOMEM;
  rc = rrpc_sock_read(s, b, h->len, 0, deadline_io);
  if (rc) {
    free(b);
    return rc;
  }
  b[h->len] = 0;
  *body = b;
  return 0;
}

void rrpc_set_keepalive(int fd, uint64_t period_ns) {
  int one = 1;
  int secs = (int)(period_ns / 1000000000ull);
  if (secs < 1)
    secs = 1;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof secs);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &secs, sizeof secs);
}

static void set_nonblock_nodelay(int fd) {
  int one = 1;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int rrpc_listen(const char *host, uint16_t port, int *fd_out, uint16_t *bound) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *res;
  char ps[8];
  snprintf(ps, sizeof ps, "%u", port);
  if (getaddrinfo(host && *host ? host : NULL, ps, &hints, &res) != 0)
    return -EADDRNOTAVAIL;
  int rc = -EADDRNOTAVAIL;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
      continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 128) == 0) {
      struct sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      getsockname(fd, (struct sockaddr *)&ss, &sl);
      *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      *fd_out = fd;
      rc = 0;
      break;
    }
    rc = -errno;
    close(fd);
  }
  freeaddrinfo(res);
  return rc;
}

int rrpc_dial(const char *host, uint16_t port, uint64_t timeout_ns, int *fd_out,
              char *err, size_t errlen) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res;
  char ps[8];
  snprintf(ps, sizeof ps, "%u", port);
  int g = getaddrinfo(host, ps, &hints, &res);
  if (g != 0) {
    snprintf(err, errlen, "resolve %s: %s", host, gai_strerror(g));
    return -EHOSTUNREACH;
  }
  uint64_t deadline = rrpc_now_ns() + timeout_ns;
  int rc = -ECONNREFUSED;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      rc = -errno;
      continue;
    }
    set_nonblock_nodelay(fd);
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      rc = 0;
    } else if (errno == EINPROGRESS) {
      if (wait_fd(fd, POLLOUT, deadline) == -EAGAIN) {
        rc = -ETIMEDOUT;
      } else {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        rc = -soerr;
      }
    } else {
      rc = -errno;
    }
    if (rc == 0) {
      *fd_out = fd;
      break;
    }
    close(fd);
  }
  freeaddrinfo(res);
  if (rc)
    snprintf(err, errlen, "connect %s:%u: %s", host, port, strerror(-rc));
  return rc;
}

void rrpc_tls_err(char *buf, size_t len) {
  unsigned long e = ERR_get_error();
  if (e)
    ERR_error_string_n(e, buf, len);
  else
    snprintf(buf, len, "no OpenSSL error detail");
  ERR_clear_error();
}

int rrpc_tls_set_host(SSL *ssl, const char *host) {
  /* An IP literal must match an IP SAN, a name a DNS SAN (spec 10). SNI
   * is only meaningful, and only allowed, for names. */
  unsigned char tmp[16];
  if (inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1) {
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    return X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1 ? 0 : -EINVAL;
  }
  if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)
    return -EINVAL;
  return 0;
}

int rrpc_tls_handshake(SSL *ssl, int fd, bool client, uint64_t deadline, char *err,
                       size_t errlen) {
  for (;;) {
    pipe_guard g;
    pipe_block(&g);
    ERR_clear_error();
    int r = client ? SSL_connect(ssl) : SSL_accept(ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
    pipe_unblock(&g);
    if (r == 1)
      return 0;
    short want = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (want) {
      if (wait_fd(fd, want, deadline) == -EAGAIN) {
        snprintf(err, errlen, "TLS handshake timed out");
        return -ETIMEDOUT;
      }
      continue;
    }
    long vr = SSL_get_verify_result(ssl);
    if (client && vr != X509_V_OK) {
      snprintf(err, errlen, "TLS certificate verify failed: %s",
               X509_verify_cert_error_string(vr));
      ERR_clear_error();
      return -EACCES;
    }
    char detail[200];
    rrpc_tls_err(detail, sizeof detail);
    snprintf(err, errlen, "TLS handshake failed: %s", detail);
    return -EPROTO;
  }
}
