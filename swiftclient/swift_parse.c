/* Pure helpers of swiftclient: reply headers, Content-Range, listings, URL
 * encoding. No I/O, so they are unit-tested and fuzzed directly. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "swift_internal.h"

void swift_hdrs_clear(swift_hdrs *h) {
  for (size_t i = 0; i < h->n; i++) {
    free(h->names[i]);
    free(h->values[i]);
  }
  h->n = 0;
  h->bytes = 0;
}

void swift_hdrs_free(swift_hdrs *h) {
  if (!h) return;
  swift_hdrs_clear(h);
  free(h->names);
  free(h->values);
  free(h);
}

const char *swift_hdrs_get(const swift_hdrs *h, const char *name) {
  if (!h) return NULL;
  for (size_t i = 0; i < h->n; i++)
    if (strcasecmp(h->names[i], name) == 0) return h->values[i];
  return NULL;
}

size_t swift_hdrs_count(const swift_hdrs *h) { return h ? h->n : 0; }

void swift_hdrs_at(const swift_hdrs *h, size_t i, const char **name, const char **value) {
  *name = h->names[i];
  *value = h->values[i];
}

static char *dup_trimmed(const char *s, size_t len) {
  while (len && (*s == ' ' || *s == '\t')) { s++; len--; }
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
                 s[len - 1] == '\n'))
    len--;
  char *d = malloc(len + 1);
  if (d) {
    memcpy(d, s, len);
    d[len] = '\0';
  }
  return d;
}

int swift_hdrs_add_line(swift_hdrs *h, const char *line, size_t len) {
  if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
    swift_hdrs_clear(h);
    return 0;
  }
  const char *colon = memchr(line, ':', len);
  if (!colon || colon == line) return 0; /* blank line ending the block */
  if (h->bytes + len > SWIFT_HDRS_MAX_BYTES) return -E2BIG;
  if (h->n == h->cap) {
    size_t ncap = h->cap ? h->cap * 2 : 16;
    char **nn = realloc(h->names, ncap * sizeof *nn);
    if (!nn) return -ENOMEM;
    h->names = nn;
    char **nv = realloc(h->values, ncap * sizeof *nv);
    if (!nv) return -ENOMEM;
    h->values = nv;
    h->cap = ncap;
  }
  char *name = dup_trimmed(line, (size_t)(colon - line));
  char *value = dup_trimmed(colon + 1, len - (size_t)(colon - line) - 1);
  if (!name || !value) {
    free(name);
    free(value);
    return -ENOMEM;
  }
  h->names[h->n] = name;
  h->values[h->n] = value;
  h->n++;
  h->bytes += len;
  return 0;
}

/* Decimal u64 without sign; advances *p. */
static int parse_u64(const char **p, uint64_t *out) {
  const char *s = *p;
  uint64_t v = 0;
  if (!isdigit((unsigned char)*s)) return -EINVAL;
  while (isdigit((unsigned char)*s)) {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return -EINVAL;
    v = v * 10 + d;
    s++;
  }
  *p = s;
  *out = v;
  return 0;
}

int swift_parse_content_range(const char *v, uint64_t *first, uint64_t *last,
                              uint64_t *total) {
  if (!v || strncasecmp(v, "bytes ", 6) != 0) return -EINVAL;
  const char *p = v + 6;
  while (*p == ' ') p++;
  if (parse_u64(&p, first) || *p++ != '-' || parse_u64(&p, last) || *p++ != '/')
    return -EINVAL;
  if (*p == '*' && p[1] == '\0') {
    *total = UINT64_MAX;
  } else if (parse_u64(&p, total) || *p != '\0') {
    return -EINVAL;
  }
  if (*first > *last || (*total != UINT64_MAX && *last >= *total)) return -EINVAL;
  return 0;
}

int swift_rewrite_storage_url(const char *auth_url, const char *su, const char *account,
                              char **out) {
  *out = NULL;
  bool https = strncmp(auth_url, "https://", 8) == 0 && strncmp(su, "http://", 7) == 0;
  const char *rest = https ? su + 7 : su;
  /* "scheme:" "" "host" "v1" "<account>" ...: the account is element 4 */
  const char *seg = su;
  for (int i = 0; i < 4 && seg; i++) {
    seg = strchr(seg, '/');
    if (seg) seg++;
  }
  if (account && (!seg || seg < rest)) return -EINVAL;
  const char *seg_end = seg ? seg + strcspn(seg, "/") : NULL;
  size_t n = strlen(su) + 2 + (account ? strlen(account) : 0);
  char *u = malloc(n);
  if (!u) return -ENOMEM;
  if (!account)
    snprintf(u, n, "%s%s", https ? "https://" : "", rest);
  else
    snprintf(u, n, "%s%.*s%s%s", https ? "https://" : "", (int)(seg - rest), rest, account,
             seg_end);
  *out = u;
  return 0;
}

char *swift_pct_encode(const char *s, int keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s);
  char *out = malloc(3 * n + 1), *o = out;
  if (!out) return NULL;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' ||
        (keep_slash && ch == '/')) {
      *o++ = (char)ch;
    } else {
      *o++ = '%';
      *o++ = hex[ch >> 4];
      *o++ = hex[ch & 15];
    }
  }
  *o = '\0';
  return out;
}

static int64_t json_i64(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static const char *json_str(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int parse_json_page(const char *body, size_t len, swift_page_fn fn, void *ctx) {
  json_error_t jerr;
  json_t *arr = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!json_is_array(arr)) {
    json_decref(arr);
    return -EINVAL;
  }
  int rc = 0;
  for (size_t i = 0; i < json_array_size(arr) && rc == 0; i++) {
    json_t *o = json_array_get(arr, i);
    swift_list_entry e = {.bytes = -1, .count = -1};
    e.name = json_str(o, "name");
    if (!e.name) e.subdir = (e.name = json_str(o, "subdir")) != NULL;
    if (!json_is_object(o) || !e.name) {
      rc = -EINVAL;
      break;
    }
    e.bytes = json_i64(o, "bytes");
    e.count = json_i64(o, "count");
    e.hash = json_str(o, "hash");
    e.content_type = json_str(o, "content_type");
    e.last_modified = json_str(o, "last_modified");
    rc = fn(ctx, &e);
  }
  json_decref(arr);
  return rc;
}

int swift_parse_listing_page(const char *body, size_t len, int json,
                             swift_page_fn fn, void *ctx) {
  if (json) return parse_json_page(body, len, fn, ctx);
  size_t pos = 0;
  char *name = NULL;
  int rc = 0;
  while (pos < len && rc == 0) {
    const char *nl = memchr(body + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - body) : len;
    size_t n = end - pos;
    if (n && body[pos + n - 1] == '\r') n--;
    if (n) {
      if (memchr(body + pos, '\0', n)) {
        rc = -EINVAL;
        break;
      }
      char *nn = realloc(name, n + 1);
      if (!nn) {
        rc = -ENOMEM;
        break;
      }
      name = nn;
      memcpy(name, body + pos, n);
      name[n] = '\0';
      swift_list_entry e = {.name = name, .bytes = -1, .count = -1};
      rc = fn(ctx, &e);
    }
    pos = end + 1;
  }
  free(name);
  return rc;
}
