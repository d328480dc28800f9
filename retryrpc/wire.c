/* Frame header and JSON envelope codecs (spec 3.1, 3.2). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rrpc_internal.h"

void rrpc_hdr_encode(uint8_t out[RRPC_HDR_LEN], uint32_t len, uint16_t type) {
  out[0] = (uint8_t)(len >> 24);
  out[1] = (uint8_t)(len >> 16);
  out[2] = (uint8_t)(len >> 8);
  out[3] = (uint8_t)len;
  out[4] = 0;
  out[5] = RRPC_PROTOCOL_JSON;
  out[6] = 0;
  out[7] = RRPC_VERSION;
  out[8] = (uint8_t)(type >> 8);
  out[9] = (uint8_t)type;
  out[10] = 0xca;
  out[11] = 0xfe;
  out[12] = 0xfe;
  out[13] = 0xed;
}

static uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

int rrpc_hdr_decode(const uint8_t in[RRPC_HDR_LEN], size_t max_frame, rrpc_hdr *h) {
  /* The original checks only the magic; we also reject what we would not
   * know how to read (spec 16.7). */
  if (get_be32(in + 10) != RRPC_MAGIC || get_be16(in + 4) != RRPC_PROTOCOL_JSON ||
      get_be16(in + 6) != RRPC_VERSION)
    return -EINVAL;
  uint16_t type = get_be16(in + 8);
  if (type < RRPC_MSG_RPC || type > RRPC_MSG_PASS_ID)
    return -EINVAL;
  uint32_t len = get_be32(in);
  if (len > max_frame)
    return -EMSGSIZE;
  h->len = len;
  h->type = type;
  return 0;
}

/* ---- a growable buffer that starts with room for the header ---------- */

typedef struct {
  uint8_t *p;
  size_t len, cap;
  bool oom;
} buf_t;

static void buf_reserve(buf_t *b, size_t more) {
  if (b->oom || b->len + more <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + more)
    cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) {
    b->oom = true;
    return;
  }
  b->p = p;
  b->cap = cap;
}

static void buf_put(buf_t *b, const void *d, size_t n) {
  buf_reserve(b, n);
  if (b->oom)
    return;
  memcpy(b->p + b->len, d, n);
  b->len += n;
}

static void buf_str(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_u64(buf_t *b, uint64_t v) {
  char tmp[24];
  buf_put(b, tmp, (size_t)rrpc_id_encode(v, tmp));
}

static int buf_dump_cb(const char *d, size_t n, void *ctx) {
  buf_put(ctx, d, n);
  return ((buf_t *)ctx)->oom ? -1 : 0;
}

static void buf_json(buf_t *b, const json_t *j) {
  if (!j) {
    buf_str(b, "null");
    return;
  }
  if (json_dump_callback(j, buf_dump_cb, b, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
    b->oom = true;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const uint8_t *s, size_t n, uint32_t *cp) {
  uint8_t c = s[0];
  size_t len;
  uint32_t v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    len = 2, v = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3, v = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    v = v << 6 | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
    return 0;
  *cp = v;
  return len;
}

/* A JSON string as Go's encoding/json writes it: <, >, & and U+2028/9
 * escaped, invalid UTF-8 replaced by \ufffd. */
static void buf_go_string(buf_t *b, const char *str) {
  static const char hex[] = "0123456789abcdef";
  const uint8_t *s = (const uint8_t *)str;
  size_t n = strlen(str);
  buf_put(b, "\"", 1);
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t l = utf8_len(s + i, n - i, &cp);
    if (l == 0) {
      buf_str(b, "\\ufffd");
      i++;
      continue;
    }
    if (cp == '"' || cp == '\\') {
      char e[2] = {'\\', (char)cp};
      buf_put(b, e, 2);
    } else if (cp == '\n') {
      buf_str(b, "\\n");
    } else if (cp == '\r') {
      buf_str(b, "\\r");
    } else if (cp == '\t') {
      buf_str(b, "\\t");
    } else if (cp < 0x20 || cp == '<' || cp == '>' || cp == '&') {
      char e[6] = {'\\', 'u', '0', '0', hex[cp >> 4], hex[cp & 15]};
      buf_put(b, e, 6);
    } else if (cp == 0x2028 || cp == 0x2029) {
      buf_str(b, cp == 0x2028 ? "\\u2028" : "\\u2029");
    } else {
      buf_put(b, s + i, l);
    }
    i += l;
  }
  buf_put(b, "\"", 1);
}

static void buf_begin(buf_t *b) {
  uint8_t hdr[RRPC_HDR_LEN] = {0};
  buf_put(b, hdr, sizeof hdr);
}

static int buf_finish(buf_t *b, uint16_t type, rrpc_frame *f) {
  if (b->oom || b->len - RRPC_HDR_LEN > UINT32_MAX) {
    free(b->p);
    return -ENOMEM;
  }
  rrpc_hdr_encode(b->p, (uint32_t)(b->len - RRPC_HDR_LEN), type);
  f->p = b->p;
  f->len = b->len;
  return 0;
}

int rrpc_frame_make(uint16_t type, const void *body, size_t len, rrpc_frame *f) {
  buf_t b = {0};
  buf_begin(&b);
  if (len)
    buf_put(&b, body, len);
  return buf_finish(&b, type, f);
}

int rrpc_id_encode(uint64_t id, char buf[24]) {
  return snprintf(buf, 24, "%" PRIu64, id);
}

int rrpc_id_decode(const void *buf, size_t len, uint64_t *id) {
  const char *s = buf;
  if (len == 0 || len > 20)
    return -EINVAL;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -EINVAL;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -EINVAL;
    v = v * 10 + d;
  }
  *id = v;
  return 0;
}

int rrpc_request_encode(uint64_t client_id, uint64_t request_id, uint64_t hrs,
                        const char *method, const json_t *params0, rrpc_frame *f) {
  buf_t b = {0};
  buf_begin(&b);
  buf_str(&b, "{\"myuniqueid\":");
  buf_u64(&b, client_id);
  buf_str(&b, ",\"requestid\":");
  buf_u64(&b, request_id);
  buf_str(&b, ",\"highestReplySeen\":");
  buf_u64(&b, hrs);
  buf_str(&b, ",\"method\":");
  buf_go_string(&b, method);
  buf_str(&b, ",\"params\":[");
  buf_json(&b, params0);
  buf_str(&b, "]}");
  return buf_finish(&b, RRPC_MSG_RPC, f);
}

int rrpc_reply_encode(uint64_t client_id, uint64_t request_id, const char *errstr,
                      const json_t *result, rrpc_frame *f) {
  buf_t b = {0};
  buf_begin(&b);
  buf_str(&b, "{\"myuniqueid\":");
  buf_u64(&b, client_id);
  buf_str(&b, ",\"requestid\":");
  buf_u64(&b, request_id);
  buf_str(&b, ",\"errstr\":");
  buf_go_string(&b, errstr ? errstr : "");
  buf_str(&b, ",\"result\":");
  buf_json(&b, errstr && *errstr ? NULL : result);
  buf_str(&b, "}");
  return buf_finish(&b, RRPC_MSG_RPC, f);
}

/* ---- decoding: Go matches keys case-insensitively, ignores unknown ones */

typedef enum { F_U64, F_STR, F_PARAMS, F_ANY } field_kind;

typedef struct {
  const char *key;
  field_kind kind;
  void *dst; /* uint64_t *, char **, json_t ** */
} field;

static int get_field(const field *f, const json_t *v) {
  if (json_is_null(v) && f->kind != F_ANY)
    return 0; /* Go leaves the zero value */
  switch (f->kind) {
  case F_U64:
    if (!json_is_integer(v) || json_integer_value(v) < 0)
      return -EINVAL;
    *(uint64_t *)f->dst = (uint64_t)json_integer_value(v);
    return 0;
  case F_STR: {
    if (!json_is_string(v))
      return -EINVAL;
    char *str = strndup(json_string_value(v), json_string_length(v));
    if (!str)
      return -ENOMEM;
    free(*(char **)f->dst);
    *(char **)f->dst = str;
    return 0;
  }
  case F_PARAMS: /* [params0, ...]: only the first element is used */
    if (!json_is_array(v) || json_array_size(v) < 1)
      return -EINVAL;
    v = json_array_get(v, 0);
    break;
  case F_ANY:
    break;
  }
  json_decref(*(json_t **)f->dst);
  *(json_t **)f->dst = json_incref((json_t *)v);
  return 0;
}

/* Decode a JSON object into fields; a missing string becomes "", a
 * missing value json null. On error everything set is freed. */
static int decode_object(const void *body, size_t len, const field *fs, size_t n) {
  json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
  int rc = json_is_object(j) ? 0 : -EINVAL;
  const char *k;
  json_t *v;
  if (!rc) {
    json_object_foreach(j, k, v) {
      for (size_t i = 0; i < n && !rc; i++)
        if (!strcasecmp(k, fs[i].key))
          rc = get_field(&fs[i], v);
      if (rc)
        break;
    }
  }
  json_decref(j);
  for (size_t i = 0; i < n && !rc; i++) {
    if (fs[i].kind == F_STR && !*(char **)fs[i].dst && !(*(char **)fs[i].dst = strdup("")))
      rc = -ENOMEM;
    if ((fs[i].kind == F_PARAMS || fs[i].kind == F_ANY) && !*(json_t **)fs[i].dst)
      *(json_t **)fs[i].dst = json_null();
  }
  return rc;
}

int rrpc_request_decode(const void *body, size_t len, rrpc_request *r) {
  memset(r, 0, sizeof *r);
  const field fs[] = {
      {"myuniqueid", F_U64, &r->client_id},
      {"requestid", F_U64, &r->request_id},
      {"highestReplySeen", F_U64, &r->highest_reply_seen},
      {"method", F_STR, &r->method},
      {"params", F_PARAMS, &r->params0},
  };
  int rc = decode_object(body, len, fs, sizeof fs / sizeof fs[0]);
  if (rc)
    rrpc_request_clear(r);
  return rc;
}

void rrpc_request_clear(rrpc_request *r) {
  free(r->method);
  json_decref(r->params0);
  memset(r, 0, sizeof *r);
}

int rrpc_reply_decode(const void *body, size_t len, rrpc_reply *r) {
  memset(r, 0, sizeof *r);
  const field fs[] = {
      {"myuniqueid", F_U64, &r->client_id},
      {"requestid", F_U64, &r->request_id},
      {"errstr", F_STR, &r->errstr},
      {"result", F_ANY, &r->result},
  };
  int rc = decode_object(body, len, fs, sizeof fs / sizeof fs[0]);
  if (rc)
    rrpc_reply_clear(r);
  return rc;
}

void rrpc_reply_clear(rrpc_reply *r) {
  free(r->errstr);
  json_decref(r->result);
  memset(r, 0, sizeof *r);
}

int rrpc_errno_from_errstr(const char *errstr) {
  int n;
  char extra;
  if (errstr && sscanf(errstr, "errno: %d%c", &n, &extra) == 1 && n > 0)
    return -n;
  return -EREMOTEIO;
}
