/* Key derivation, transaction IDs and precondition headers (A.6.2, A.6.4-6). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "ickpt.h"

/* Appends n bytes to out at *pos; false when it would not fit with a NUL. */
static bool put_bytes(char *out, size_t outlen, size_t *pos, const char *p, size_t n) {
  if (n >= outlen - *pos) {
    return false;
  }
  memcpy(out + *pos, p, n);
  *pos += n;
  return true;
}

/* Port text to a number: empty is "no port"; digits only, at most 65535. */
static int parse_port(const char *p, size_t n, long *port) {
  if (n == 0) {
    *port = -1;
    return 0;
  }
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') {
      return -EINVAL;
    }
    v = v * 10 + (p[i] - '0');
    if (v > 65535) {
      return -EINVAL;
    }
  }
  *port = v;
  return 0;
}

int ickpt_canonical_url(const char *url, char *out, size_t outlen) {
  if (url == NULL || out == NULL || outlen == 0) {
    return -EINVAL;
  }
  for (const char *c = url; *c != '\0'; c++) {
    /* Header values cannot carry these; refusing them keeps keys printable. */
    if ((unsigned char)*c < 0x20 || *c == 0x7f) {
      return -EINVAL;
    }
  }
  const char *sep = strstr(url, "://");
  if (sep == NULL) {
    return -EINVAL;
  }
  size_t scheme_len = (size_t)(sep - url);
  long default_port;
  if (scheme_len == 4 && strncasecmp(url, "http", 4) == 0) {
    default_port = 80;
  } else if (scheme_len == 5 && strncasecmp(url, "https", 5) == 0) {
    default_port = 443;
  } else {
    return -EINVAL;
  }

  const char *auth = sep + 3;
  size_t auth_len = strcspn(auth, "/?");
  const char *rest = auth + auth_len;

  /* userinfo@ is kept as is; the host starts after the last '@'. */
  const char *host = auth;
  for (size_t i = 0; i < auth_len; i++) {
    if (auth[i] == '@') {
      host = auth + i + 1;
    }
  }
  size_t userinfo_len = (size_t)(host - auth);
  size_t hostport_len = auth_len - userinfo_len;

  size_t host_len;
  const char *port_text = NULL;
  size_t port_len = 0;
  if (hostport_len > 0 && host[0] == '[') {
    const char *close = memchr(host, ']', hostport_len);
    if (close == NULL) {
      return -EINVAL;
    }
    host_len = (size_t)(close - host) + 1;
    if (host_len < hostport_len) {
      if (host[host_len] != ':') {
        return -EINVAL;
      }
      port_text = host + host_len + 1;
      port_len = hostport_len - host_len - 1;
    }
  } else {
    const char *colon = NULL;
    for (size_t i = 0; i < hostport_len; i++) {
      if (host[i] == ':') {
        colon = host + i;
      }
    }
    host_len = colon ? (size_t)(colon - host) : hostport_len;
    if (colon != NULL) {
      port_text = colon + 1;
      port_len = hostport_len - host_len - 1;
    }
  }
  if (host_len == 0 || (host_len == 2 && host[0] == '[')) {
    return -EINVAL;
  }
  if (host[0] != '[' && strcspn(host, ":[]") < host_len) {
    return -EINVAL; /* the port split would not be stable */
  }
  long port = -1;
  if (port_text != NULL && parse_port(port_text, port_len, &port) != 0) {
    return -EINVAL;
  }

  size_t pos = 0;
  if (!put_bytes(out, outlen, &pos, auth, userinfo_len)) {
    return -EINVAL;
  }
  if (host_len >= outlen - pos) {
    return -EINVAL;
  }
  for (size_t i = 0; i < host_len; i++) {
    out[pos++] = (char)tolower((unsigned char)host[i]);
  }
  if (port >= 0 && port != default_port) {
    char buf[8];
    int n = snprintf(buf, sizeof buf, ":%ld", port);
    if (!put_bytes(out, outlen, &pos, buf, (size_t)n)) {
      return -EINVAL;
    }
  }
  if (!put_bytes(out, outlen, &pos, rest, strlen(rest))) {
    return -EINVAL;
  }
  if (pos > ICKPT_MAX_CANONICAL) {
    return -EINVAL;
  }
  out[pos] = '\0';
  return 0;
}

void ickpt_key_of(const char *canonical, size_t len, uint8_t key[ICKPT_KEY_LEN]) {
  SHA256((const unsigned char *)canonical, len, key);
}

char *ickpt_key_base64(const char *canonical, size_t len) {
  if (len > ICKPT_MAX_CANONICAL) {
    return NULL;
  }
  char *out = malloc(4 * ((len + 2) / 3) + 1);
  if (out != NULL) {
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)canonical, (int)len);
  }
  return out;
}

bool ickpt_txn_valid(const char *txn) {
  if (txn == NULL) {
    return false;
  }
  size_t n = 0;
  for (; txn[n] != '\0'; n++) {
    char c = txn[n];
    bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '_' || c == '-';
    if (!ok || n >= ICKPT_MAX_TXN_LEN) {
      return false;
    }
  }
  return n > 0;
}

/* The header value without surrounding blanks, into buf; false if too long. */
static bool trimmed(const char *s, char *buf, size_t buflen) {
  while (*s == ' ' || *s == '\t') {
    s++;
  }
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
    n--;
  }
  if (n >= buflen) {
    return false;
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
  return true;
}

int ickpt_cond_parse(const char *if_match, const char *if_none_match, ickpt_cond *out) {
  char buf[32];
  out->kind = ICKPT_COND_NONE;
  out->version = 0;
  if (if_match != NULL && if_none_match != NULL) {
    return -EINVAL;
  }
  if (if_none_match != NULL) {
    if (!trimmed(if_none_match, buf, sizeof buf) || strcmp(buf, "*") != 0) {
      return -EINVAL;
    }
    out->kind = ICKPT_COND_NONE_MATCH;
    return 0;
  }
  if (if_match == NULL) {
    return 0;
  }
  if (!trimmed(if_match, buf, sizeof buf)) {
    return -EINVAL;
  }
  out->kind = ICKPT_COND_MATCH;
  if (strcmp(buf, "*") == 0) {
    return 0;
  }
  char *digits = buf;
  size_t n = strlen(buf);
  if (n >= 2 && buf[0] == '"' && buf[n - 1] == '"') {
    buf[n - 1] = '\0';
    digits = buf + 1;
    n -= 2;
  }
  if (n == 0 || n > 20) {
    return -EINVAL;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (digits[i] < '0' || digits[i] > '9') {
      return -EINVAL;
    }
    uint64_t d = (uint64_t)(digits[i] - '0');
    if (v > (UINT64_MAX - d) / 10) {
      return -EINVAL;
    }
    v = v * 10 + d;
  }
  if (v == 0) {
    return -EINVAL; /* no record ever has version 0; "*" says "exists" */
  }
  out->version = v;
  return 0;
}
