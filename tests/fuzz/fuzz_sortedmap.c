/* libFuzzer target: open a sortedmap tree from arbitrary node bytes and use
 * it. Input: u8 config | u16 root offset | u16 root length | object bytes.
 * Every object number reads the same bytes, so ChildRefs into any object
 * resolve. Config: bit 0-1 = key/value packing (inode table, directory,
 * u64->8 bytes), bit 2 = a tiny shared cache (forces eviction and
 * reloading). Whatever decodes is validated, iterated, changed, fully
 * rewritten and reopened: what sortedmap writes must always load again
 * with the same contents. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "sortedmap.h"

typedef struct store {
  const uint8_t *in;
  size_t inlen;
  uint8_t *out; /* object 1 of the rewrite */
  size_t outlen, outcap;
  bool reading_out;
} store;

static int rd(void *ctx, const sm_ref *r, uint8_t *dst) {
  store *s = ctx;
  const uint8_t *p = s->reading_out ? s->out : s->in;
  size_t n = s->reading_out ? s->outlen : s->inlen;
  if (r->object_offset > n || r->object_length > n - r->object_offset) return -EIO;
  memcpy(dst, p + r->object_offset, r->object_length);
  return 0;
}

static int wr(void *ctx, const uint8_t *b, size_t len, uint64_t *obj, uint64_t *off) {
  store *s = ctx;
  if (s->outlen + len > s->outcap) {
    size_t cap = s->outcap ? s->outcap : 4096;
    while (cap < s->outlen + len) cap *= 2;
    uint8_t *p = realloc(s->out, cap);
    if (!p) return -ENOMEM;
    s->out = p;
    s->outcap = cap;
  }
  memcpy(s->out + s->outlen, b, len);
  *obj = 1;
  *off = s->outlen;
  s->outlen += len;
  return 0;
}

static int dis(void *ctx, const sm_ref *r) { return 0; }

static void abort_if(bool bad) {
  if (bad) abort();
}

/* The same items in the same order, compared through cursors. */
static void same_items(sm_tree *a, sm_tree *b) {
  uint64_t na = 0, nb = 0;
  abort_if(sm_len(a, &na) != 0 || sm_len(b, &nb) != 0 || na != nb);
  sm_cursor ca, cb;
  sm_cursor_init(&ca, a, 0);
  sm_cursor_init(&cb, b, 0);
  uint8_t ka[512], kb[512], va[64], vb[64];
  size_t kla, klb, vla, vlb;
  for (uint64_t i = 0; i < na; i++) {
    int ra = sm_cursor_next(&ca, ka, sizeof ka, &kla, va, sizeof va, &vla);
    int rb = sm_cursor_next(&cb, kb, sizeof kb, &klb, vb, sizeof vb, &vlb);
    if (ra == -ERANGE && rb == -ERANGE) return; /* a long key: stop here */
    abort_if(ra != 0 || rb != 0 || kla != klb || vla != vlb);
    abort_if(memcmp(ka, kb, kla) != 0 || memcmp(va, vb, vla) != 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  log_configure(NULL, false, false); /* corrupt nodes are the norm here */
  if (size < 5) return 0;
  uint8_t conf = data[0];
  sm_ref root = {1, (uint64_t)data[1] | (uint64_t)data[2] << 8,
                 (uint64_t)data[3] | (uint64_t)data[4] << 8};
  store s = {.in = data + 5, .inlen = size - 5};
  sm_config cfg = {0};
  switch (conf & 3) {
  case 0: /* inode table */
  case 3:
    cfg.key.kind = SM_CODEC_U64;
    cfg.value.kind = SM_CODEC_FIXED;
    cfg.value.fixed_len = 24;
    break;
  case 1: /* directory */
    cfg.key.kind = SM_CODEC_LSTR;
    cfg.value.kind = SM_CODEC_FIXED;
    cfg.value.fixed_len = 9;
    break;
  case 2:
    cfg.key.kind = SM_CODEC_U64;
    cfg.value.kind = SM_CODEC_FIXED;
    cfg.value.fixed_len = 8;
    break;
  }
  cfg.read_node = rd;
  cfg.write_node = wr;
  cfg.discard_node = dis;
  cfg.ctx = &s;
  cfg.max_node_bytes = 1 << 16;
  sm_cache *cache = (conf & 4) ? sm_cache_create(2, 4, 0) : NULL;
  sm_tree *t = NULL;
  if (sm_open(&cfg, cache, &root, &t, NULL, 0) != 0) goto out;
  bool valid = sm_validate(t) == 0;
  uint64_t n = 0;
  if (sm_len(t, &n) != 0) goto out;
  sm_cursor c;
  sm_cursor_init(&c, t, 0);
  uint8_t k[512], v[64];
  size_t kl, vl;
  for (int i = 0; i < 64 && sm_cursor_next(&c, k, sizeof k, &kl, v, sizeof v, &vl) == 0; i++) {
    int64_t idx;
    bool found;
    if (sm_bisect_left(t, k, kl, &idx, &found) == 0) abort_if(valid && (!found || idx != i));
  }
  /* change it: deletes of present items, inserts of new u64 keys */
  for (uint64_t i = 0; i < 8 && n; i++) {
    if (sm_get_by_index(t, (i * 7919) % n, k, sizeof k, &kl, NULL, 0, NULL) == 0)
      (void)sm_delete(t, k, kl);
  }
  if (cfg.key.kind == SM_CODEC_U64) {
    uint8_t val[24] = {1};
    for (uint64_t key = 0; key < 16; key++)
      (void)sm_insert(t, &key, 8, val, cfg.value.fixed_len);
  }
  /* rewrite everything into the output object and reopen it from there */
  if (sm_touch(t) != 0) goto out;
  sm_ref nr;
  if (sm_flush(t, &nr) != 0) goto out;
  s.reading_out = true;
  sm_tree *t2 = NULL;
  abort_if(sm_open(&cfg, cache, &nr, &t2, NULL, 0) != 0);
  abort_if(valid && sm_validate(t2) != 0);
  same_items(t, t2);
  sm_destroy(t2);
out:
  sm_destroy(t);
  sm_cache_destroy(cache);
  free(s.out);
  return 0;
}
