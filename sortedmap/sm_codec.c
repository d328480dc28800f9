/* Key/value packing (ilayout.md 11.7) and key comparison. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sm_internal.h"

/* In-memory keys and values are kept in sm_kv with 32-bit lengths. */
#define SM_MAX_ITEM_LEN ((size_t)1 << 30)
#define SM_MAX_FIXED_LEN ((size_t)65536)

int sm_buf_put(sm_buf *b, const void *p, size_t n) {
  if (n > b->cap - b->len) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
      if (cap > SIZE_MAX / 2) return -ENOMEM;
      cap *= 2;
    }
    uint8_t *np = realloc(b->p, cap);
    if (!np) return -ENOMEM;
    b->p = np;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

int sm_buf_put_u64(sm_buf *b, uint64_t v) {
  uint8_t le[8];
  ilayout_wcursor w;
  ilayout_wcursor_init(&w, le, sizeof le);
  ilayout_put_u64(&w, v); /* cannot fail: the buffer holds exactly a u64 */
  return sm_buf_put(b, le, sizeof le);
}

void sm_buf_free(sm_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static int codec_check_len(const sm_codec *c, size_t len) {
  if (len > SM_MAX_ITEM_LEN) return -EINVAL;
  if (c->kind == SM_CODEC_U64 && len != 8) return -EINVAL;
  if (c->kind == SM_CODEC_FIXED && len != c->fixed_len) return -EINVAL;
  return 0;
}

static int codec_pack(const sm_codec *c, void *ctx, const void *mem, size_t len,
                      sm_buf *out) {
  switch (c->kind) {
  case SM_CODEC_LSTR: {
    int rc = sm_buf_put_u64(out, len);
    return rc ? rc : sm_buf_put(out, mem, len);
  }
  case SM_CODEC_U64: {
    uint64_t v;
    memcpy(&v, mem, 8);
    return sm_buf_put_u64(out, v);
  }
  case SM_CODEC_FIXED:
    return sm_buf_put(out, mem, len);
  case SM_CODEC_CUSTOM:
    return c->pack(ctx, mem, len, out);
  }
  return -EINVAL;
}

static int codec_unpack(const sm_codec *c, void *ctx, const uint8_t *src,
                        size_t avail, size_t *used, sm_buf *out) {
  out->len = 0;
  ilayout_cursor r;
  const uint8_t *p;
  uint64_t v;
  ilayout_cursor_init(&r, src, avail);
  switch (c->kind) {
  case SM_CODEC_LSTR:
    if (ilayout_get_u64(&r, &v) || v > SM_MAX_ITEM_LEN ||
        ilayout_get_view(&r, (size_t)v, &p))
      return -EINVAL;
    *used = 8 + (size_t)v;
    return sm_buf_put(out, p, (size_t)v);
  case SM_CODEC_U64:
    if (ilayout_get_u64(&r, &v)) return -EINVAL;
    *used = 8;
    return sm_buf_put(out, &v, 8);
  case SM_CODEC_FIXED:
    if (avail < c->fixed_len) return -EINVAL;
    *used = c->fixed_len;
    return sm_buf_put(out, src, c->fixed_len);
  case SM_CODEC_CUSTOM: {
    size_t u = 0;
    int rc = c->unpack(ctx, src, avail, &u, out);
    if (rc) return rc;
    if (u == 0 || u > avail || out->len > SM_MAX_ITEM_LEN) return -EINVAL;
    *used = u;
    return 0;
  }
  }
  return -EINVAL;
}

int sm_key_pack(sm_tree *t, const void *k, size_t len, sm_buf *out) {
  return codec_pack(&t->cfg.key, t->cfg.ctx, k, len, out);
}
int sm_val_pack(sm_tree *t, const void *v, size_t len, sm_buf *out) {
  return codec_pack(&t->cfg.value, t->cfg.ctx, v, len, out);
}
int sm_key_unpack(sm_tree *t, const uint8_t *src, size_t avail, size_t *used,
                  sm_buf *out) {
  return codec_unpack(&t->cfg.key, t->cfg.ctx, src, avail, used, out);
}
int sm_val_unpack(sm_tree *t, const uint8_t *src, size_t avail, size_t *used,
                  sm_buf *out) {
  return codec_unpack(&t->cfg.value, t->cfg.ctx, src, avail, used, out);
}
int sm_check_key(sm_tree *t, size_t klen) { return codec_check_len(&t->cfg.key, klen); }
int sm_check_val(sm_tree *t, size_t vlen) { return codec_check_len(&t->cfg.value, vlen); }

int sm_compare_bytes(const void *a, size_t alen, const void *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n ? memcmp(a, b, n) : 0;
  if (c) return c;
  return alen < blen ? -1 : alen > blen ? 1 : 0;
}

int sm_key_cmp(sm_tree *t, const void *a, size_t alen, const void *b,
               size_t blen) {
  if (t->cfg.compare) return t->cfg.compare(t->cfg.ctx, a, alen, b, blen);
  if (t->cfg.key.kind == SM_CODEC_U64) {
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    return x < y ? -1 : x > y;
  }
  return sm_compare_bytes(a, alen, b, blen);
}

int sm_config_check(const sm_config *cfg) {
  const sm_codec *cs[2] = {&cfg->key, &cfg->value};
  for (int i = 0; i < 2; i++) {
    const sm_codec *c = cs[i];
    if (c->kind > SM_CODEC_CUSTOM) return -EINVAL;
    if (c->kind == SM_CODEC_FIXED &&
        (c->fixed_len == 0 || c->fixed_len > SM_MAX_FIXED_LEN))
      return -EINVAL;
    if (c->kind == SM_CODEC_CUSTOM && (!c->pack || !c->unpack)) return -EINVAL;
  }
  return 0;
}
