/* iswift's request parsers and record codec: pure functions, no I/O. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iswift_internal.h"

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

void isw_path_free(isw_path *p) {
  free(p->account);
  free(p->container);
  free(p->object);
  p->account = p->container = p->object = NULL;
}

int isw_parse_path(const char *path, isw_path *out) {
  memset(out, 0, sizeof *out);
  if (strncmp(path, "/v1/", 4) != 0) return -ENOENT;
  const char *a = path + 4;
  const char *s1 = strchr(a, '/');
  const char *cstart = s1 ? s1 + 1 : NULL;
  const char *s2 = cstart ? strchr(cstart, '/') : NULL;
  size_t alen = s1 ? (size_t)(s1 - a) : strlen(a);
  if (alen && !(out->account = dup_n(a, alen))) goto nomem;
  if (cstart) {
    size_t clen = s2 ? (size_t)(s2 - cstart) : strlen(cstart);
    if (clen && !(out->container = dup_n(cstart, clen))) goto nomem;
  }
  if (s2 && s2[1] && !(out->object = strdup(s2 + 1))) goto nomem;
  return 0;
nomem:
  isw_path_free(out);
  return -ENOMEM;
}

/* Decimal digits only, no overflow; empty → -ENODATA. */
static int parse_dec(const char *s, size_t n, uint64_t *v) {
  if (n == 0) return -ENODATA;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return -EINVAL;
    unsigned d = (unsigned)(s[i] - '0');
    if (x > (UINT64_MAX - d) / 10) return -EINVAL;
    x = x * 10 + d;
  }
  *v = x;
  return 0;
}

/* One "first-last" / "first-" / "-suffix" spec. -EINVAL when malformed;
 * *unsat when it cannot be satisfied for this size. */
static int parse_spec(const char *s, size_t n, uint64_t size, bool strict, isw_range *r,
                      bool *unsat) {
  *unsat = false;
  if (strict) { /* real Swift trims blanks around each spec */
    while (n && (*s == ' ' || *s == '\t')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
  }
  const char *dash = memchr(s, '-', n);
  if (!dash) return -EINVAL;
  uint64_t first = 0, last = 0;
  int rf = parse_dec(s, (size_t)(dash - s), &first);
  int rl = parse_dec(dash + 1, n - (size_t)(dash - s) - 1, &last);
  if ((rf && rf != -ENODATA) || (rl && rl != -ENODATA) || (rf && rl)) return -EINVAL;
  if (rf == -ENODATA) { /* suffix */
    if (last > size) {
      if (!strict) return -EINVAL;
      last = size;
    }
    if (last == 0) {
      *unsat = true;
      return 0;
    }
    r->first = size - last;
    r->last = size - 1;
    return 0;
  }
  if (rl == -ENODATA) last = UINT64_MAX;
  if (first > last) return -EINVAL;
  if (first >= size) { /* deviation from the original, which dropped the connection */
    *unsat = true;
    return 0;
  }
  r->first = first;
  r->last = last > size - 1 ? size - 1 : last;
  return 0;
}

int isw_parse_range(const char *hdr, uint64_t size, bool strict, isw_range *out,
                    size_t *n) {
  *n = 0;
  if (!hdr) return ISW_RANGE_NONE;
  if (strncmp(hdr, "bytes=", 6) != 0) return strict ? ISW_RANGE_NONE : -EINVAL;
  const char *p = hdr + 6;
  size_t total = strlen(p);
  size_t max = strict ? ISW_MAX_RANGES : 2;
  bool any_unsat = false;
  size_t count = 0;
  while (1) {
    /* the original splits at the first comma only: a second comma lands in
     * the second spec and makes it malformed */
    const char *comma = (strict || count == 0) ? memchr(p, ',', total) : NULL;
    size_t len = comma ? (size_t)(comma - p) : total;
    if (count == max) return strict ? ISW_RANGE_NONE : -EINVAL;
    bool unsat;
    isw_range r;
    if (parse_spec(p, len, size, strict, &r, &unsat)) {
      *n = 0;
      return strict ? ISW_RANGE_NONE : -EINVAL;
    }
    if (unsat)
      any_unsat = true;
    else
      out[(*n)++] = r;
    count++;
    if (!comma) break;
    total -= len + 1;
    p = comma + 1;
  }
  if (*n == 0 && any_unsat) return -ERANGE;
  /* the original answers 416 if any of its (at most two) ranges is past the end */
  if (!strict && any_unsat) {
    *n = 0;
    return -ERANGE;
  }
  return 0;
}

bool isw_utf8_valid(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = u[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      if (c == 0) return false;
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; k++) {
      if ((u[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (u[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

int isw_parse_listing(const char *marker, const char *end_marker, const char *prefix,
                      const char *delimiter, const char *limit, const char *format,
                      uint64_t server_limit, bool strict, isw_listing *out) {
  memset(out, 0, sizeof *out);
  out->marker = marker;
  out->limit = server_limit;
  if (!strict) return 0;
  if ((marker && !isw_utf8_valid(marker, strlen(marker))) ||
      (end_marker && !isw_utf8_valid(end_marker, strlen(end_marker))) ||
      (prefix && !isw_utf8_valid(prefix, strlen(prefix))) ||
      (delimiter && !isw_utf8_valid(delimiter, strlen(delimiter))))
    return -EINVAL;
  out->end_marker = end_marker;
  out->prefix = prefix;
  out->delimiter = delimiter && *delimiter ? delimiter : NULL;
  uint64_t lim;
  if (limit && parse_dec(limit, strlen(limit), &lim) == 0) {
    if (lim > server_limit) return -E2BIG;
    out->limit = lim;
  }
  out->json = format && strcmp(format, "json") == 0;
  return 0;
}

size_t isw_subdir_len(const char *name, size_t prefix_len, const char *delimiter) {
  if (!delimiter || !*delimiter || strlen(name) < prefix_len) return 0;
  const char *d = strstr(name + prefix_len, delimiter);
  return d ? (size_t)(d - name) + strlen(delimiter) : 0;
}

void isw_canonical_header(char *name) {
  bool up = true;
  for (char *p = name; *p; p++) {
    *p = (char)(up ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
    up = *p == '-';
  }
}

/* ---- records ---------------------------------------------------------- */

#define REC_MAGIC "ISWIFT1\n"

void isw_record_free(isw_record *rec) {
  free(rec->name);
  for (size_t i = 0; i < rec->nhdrs; i++) {
    free(rec->hnames[i]);
    free(rec->hvalues[i]);
  }
  free(rec->hnames);
  free(rec->hvalues);
  memset(rec, 0, sizeof *rec);
}

typedef struct {
  const unsigned char *p;
  size_t left;
} cursor;

/* "<tag> <dec>\n" or, with tag 0, "<dec> <dec>\n" (second number in *v2). */
static int get_line_nums(cursor *c, char tag, uint64_t *v1, uint64_t *v2) {
  const unsigned char *nl = memchr(c->p, '\n', c->left < 48 ? c->left : 48);
  if (!nl) return -EINVAL;
  size_t n = (size_t)(nl - c->p);
  const char *s = (const char *)c->p;
  if (tag) {
    if (n < 2 || s[0] != tag || s[1] != ' ') return -EINVAL;
    if (parse_dec(s + 2, n - 2, v1)) return -EINVAL;
  } else {
    const char *sp = memchr(s, ' ', n);
    if (!sp || parse_dec(s, (size_t)(sp - s), v1) ||
        parse_dec(sp + 1, n - (size_t)(sp - s) - 1, v2))
      return -EINVAL;
  }
  c->p += n + 1;
  c->left -= n + 1;
  return 0;
}

static int get_bytes(cursor *c, uint64_t len, char **out) {
  if (len > c->left) return -EINVAL;
  if (memchr(c->p, '\0', len)) return -EINVAL;
  if (!(*out = dup_n((const char *)c->p, len))) return -ENOMEM;
  c->p += len;
  c->left -= len;
  return 0;
}

static int get_newline(cursor *c) {
  if (!c->left || *c->p != '\n') return -EINVAL;
  c->p++;
  c->left--;
  return 0;
}

/* The fields of a record (see iswift_internal.h) up to and including the
 * "D <len>" line, whose value goes to *dlen. */
static int decode_fields(cursor *c, isw_record *rec, uint64_t *dlen) {
  uint64_t nlen, count;
  int rc;
  if (get_line_nums(c, 'N', &nlen, NULL)) return -EINVAL;
  if ((rc = get_bytes(c, nlen, &rec->name)) || (rc = get_newline(c))) return rc;
  if (get_line_nums(c, 'H', &count, NULL)) return -EINVAL;
  /* each header needs at least 5 bytes ("0 0\n" + "\n"): bound the count by
   * the input before allocating */
  if (count > c->left / 5) return -EINVAL;
  if (count && (!(rec->hnames = calloc(count, sizeof(char *))) ||
                !(rec->hvalues = calloc(count, sizeof(char *)))))
    return -ENOMEM;
  for (uint64_t i = 0; i < count; i++) {
    uint64_t hn, hv;
    if (get_line_nums(c, 0, &hn, &hv)) return -EINVAL;
    rec->nhdrs++;
    if ((rc = get_bytes(c, hn, &rec->hnames[i])) || (rc = get_bytes(c, hv, &rec->hvalues[i])) ||
        (rc = get_newline(c)))
      return rc;
  }
  return get_line_nums(c, 'D', dlen, NULL) ? -EINVAL : 0;
}

/* A version 2 record: data, then the fields, then the trailer naming the
 * fields' length. */
static int decode_v2(const unsigned char *buf, size_t len, isw_record *rec) {
  const size_t data_at = ISW_RECORD_MAGIC_LEN, tr = ISW_RECORD_TRAILER_LEN;
  if (len < data_at + tr) return -EINVAL;
  const char *t = (const char *)buf + len - tr;
  uint64_t flen, dlen;
  if (t[0] != 'T' || t[1] != ' ' || t[tr - 1] != '\n' || parse_dec(t + 2, tr - 3, &flen) ||
      flen > len - data_at - tr)
    return -EINVAL;
  size_t fields_at = len - tr - (size_t)flen;
  cursor c = {buf + fields_at, (size_t)flen};
  int rc = decode_fields(&c, rec, &dlen);
  if (rc) return rc;
  if (c.left != 0 || dlen != fields_at - data_at) return -EINVAL;
  rec->data = buf + data_at;
  rec->data_len = (size_t)dlen;
  return 0;
}

int isw_record_decode(const unsigned char *buf, size_t len, isw_record *rec) {
  memset(rec, 0, sizeof *rec);
  int rc = -EINVAL;
  if (len >= ISW_RECORD_MAGIC_LEN && memcmp(buf, REC_MAGIC, ISW_RECORD_MAGIC_LEN) == 0) {
    cursor c = {buf + ISW_RECORD_MAGIC_LEN, len - ISW_RECORD_MAGIC_LEN};
    uint64_t dlen;
    rc = decode_fields(&c, rec, &dlen);
    if (rc == 0 && dlen != c.left) rc = -EINVAL;
    if (rc == 0) {
      rec->data = c.p;
      rec->data_len = (size_t)dlen;
    }
  } else if (len >= ISW_RECORD_MAGIC_LEN &&
             memcmp(buf, ISW_RECORD_V2_MAGIC, ISW_RECORD_MAGIC_LEN) == 0) {
    rc = decode_v2(buf, len, rec);
  }
  if (rc) isw_record_free(rec);
  return rc;
}

/* magic (may be "") and fields into a malloc'd buffer with room for
 * `spare` more bytes. */
static int encode_fields(const char *magic, const char *name, size_t nhdrs, char *const *hnames,
                         char *const *hvalues, size_t data_len, size_t spare, char **out,
                         size_t *out_len) {
  /* the magic, the "N", "H" and "D" lines with 20-digit numbers: 78 */
  size_t cap = 96 + strlen(name) + spare;
  for (size_t i = 0; i < nhdrs; i++) cap += 48 + strlen(hnames[i]) + strlen(hvalues[i]);
  char *b = malloc(cap);
  if (!b) return -ENOMEM;
  size_t n = (size_t)snprintf(b, cap, "%sN %zu\n%s\nH %zu\n", magic, strlen(name), name, nhdrs);
  for (size_t i = 0; i < nhdrs; i++)
    n += (size_t)snprintf(b + n, cap - n, "%zu %zu\n%s%s\n", strlen(hnames[i]),
                          strlen(hvalues[i]), hnames[i], hvalues[i]);
  n += (size_t)snprintf(b + n, cap - n, "D %zu\n", data_len);
  *out = b;
  *out_len = n;
  return 0;
}

int isw_record_encode_head(const char *name, size_t nhdrs, char *const *hnames,
                           char *const *hvalues, size_t data_len, char **out,
                           size_t *out_len) {
  return encode_fields(REC_MAGIC, name, nhdrs, hnames, hvalues, data_len, 0, out, out_len);
}

int isw_record_encode_tail(const char *name, size_t nhdrs, char *const *hnames,
                           char *const *hvalues, size_t data_len, char **out,
                           size_t *out_len) {
  size_t n;
  int rc = encode_fields("", name, nhdrs, hnames, hvalues, data_len, ISW_RECORD_TRAILER_LEN + 1,
                         out, &n);
  if (rc) return rc;
  snprintf(*out + n, ISW_RECORD_TRAILER_LEN + 1, "T %020zu\n", n);
  *out_len = n + ISW_RECORD_TRAILER_LEN;
  return 0;
}
