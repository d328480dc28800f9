#include "sm_test_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sm_test_obj *obj_get(sm_test_store *s, uint64_t n) {
  if (n >= s->nobj) {
    size_t nn = (size_t)n + 1;
    sm_test_obj *o = realloc(s->obj, nn * sizeof *o);
    if (!o) abort();
    memset(o + s->nobj, 0, (nn - s->nobj) * sizeof *o);
    s->obj = o;
    s->nobj = nn;
  }
  return &s->obj[n];
}

void sm_test_store_init(sm_test_store *s, uint64_t first_object) {
  memset(s, 0, sizeof *s);
  s->cur = first_object;
  s->fail_writes_after = -1;
  obj_get(s, first_object);
}

void sm_test_store_free(sm_test_store *s) {
  for (size_t i = 0; i < s->nobj; i++) {
    free(s->obj[i].p);
    free(s->obj[i].ext);
  }
  free(s->obj);
  memset(s, 0, sizeof *s);
}

void sm_test_store_next_object(sm_test_store *s) {
  s->cur = s->nobj;
  obj_get(s, s->cur);
}

static void obj_append(sm_test_obj *o, const void *p, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + n) cap *= 2;
    o->p = realloc(o->p, cap);
    if (!o->p) abort();
    o->cap = cap;
  }
  if (n) memcpy(o->p + o->len, p, n);
  o->len += n;
}

sm_ref sm_test_store_put(sm_test_store *s, uint64_t obj, const void *p, size_t n) {
  sm_test_obj *o = obj_get(s, obj);
  sm_ref r = {obj, o->len, n};
  obj_append(o, p, n);
  return r;
}

int sm_test_read(void *ctx, const sm_ref *ref, uint8_t *dst) {
  sm_test_store *s = ctx;
  s->reads++;
  if (s->fail_reads) return -EIO;
  if (ref->object_number >= s->nobj) return -EIO;
  sm_test_obj *o = &s->obj[ref->object_number];
  if (ref->object_offset > o->len || ref->object_length > o->len - ref->object_offset)
    return -EIO;
  memcpy(dst, o->p + ref->object_offset, ref->object_length);
  return 0;
}

int sm_test_write(void *ctx, const uint8_t *bytes, size_t len, uint64_t *obj, uint64_t *off) {
  sm_test_store *s = ctx;
  if (s->fail_writes_after == 0) return -EIO;
  if (s->fail_writes_after > 0) s->fail_writes_after--;
  s->writes++;
  sm_test_obj *o = obj_get(s, s->cur);
  *obj = s->cur;
  *off = o->len;
  obj_append(o, bytes, len);
  if (o->next == o->ecap) {
    o->ecap = o->ecap ? o->ecap * 2 : 64;
    o->ext = realloc(o->ext, o->ecap * sizeof *o->ext);
    if (!o->ext) abort();
  }
  o->ext[o->next++] = (sm_test_ext){*off, len, 1};
  return 0;
}

static sm_test_ext *ext_find(sm_test_store *s, const sm_ref *r) {
  if (r->object_number >= s->nobj) return NULL;
  sm_test_obj *o = &s->obj[r->object_number];
  size_t lo = 0, hi = o->next;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (o->ext[mid].off < r->object_offset) lo = mid + 1;
    else hi = mid;
  }
  if (lo < o->next && o->ext[lo].off == r->object_offset && o->ext[lo].len == r->object_length)
    return &o->ext[lo];
  return NULL;
}

int sm_test_discard(void *ctx, const sm_ref *ref) {
  sm_test_store *s = ctx;
  s->discards++;
  sm_test_ext *e = ext_find(s, ref);
  if (!e || e->state != 1) {
    s->bad_discards++;
    return 0;
  }
  e->state = 2;
  return 0;
}

static int walk_mark(void *arg, const sm_ref *ref) {
  sm_test_store *s = arg;
  sm_test_ext *e = ext_find(s, ref);
  if (!e || e->state != 1) {
    fprintf(stderr, "live ref (%llu,%llu,%llu) is %s\n", (unsigned long long)ref->object_number,
            (unsigned long long)ref->object_offset, (unsigned long long)ref->object_length,
            !e ? "unknown" : e->state == 2 ? "discarded" : "reached twice");
    return -1;
  }
  e->state = 3;
  return 0;
}

int sm_test_store_check(sm_test_store *s, sm_tree *t) {
  if (sm_prune(t)) return -1;
  if (s->bad_discards) {
    fprintf(stderr, "%llu bad discards\n", (unsigned long long)s->bad_discards);
    return -1;
  }
  int rc = sm_walk_refs(t, walk_mark, s);
  for (size_t i = 0; i < s->nobj; i++) {
    for (size_t j = 0; j < s->obj[i].next; j++) {
      sm_test_ext *e = &s->obj[i].ext[j];
      if (e->state == 1) {
        fprintf(stderr, "extent (%zu,%llu,%llu) neither live nor discarded\n", i,
                (unsigned long long)e->off, (unsigned long long)e->len);
        rc = -1;
      }
      if (e->state == 3) e->state = 1;
    }
  }
  return rc ? -1 : 0;
}

sm_config sm_test_cfg_u64(sm_test_store *s, size_t value_len) {
  sm_config c = {0};
  c.key.kind = SM_CODEC_U64;
  c.value.kind = SM_CODEC_FIXED;
  c.value.fixed_len = value_len;
  c.read_node = sm_test_read;
  c.write_node = sm_test_write;
  c.discard_node = sm_test_discard;
  c.ctx = s;
  return c;
}

sm_config sm_test_cfg_dir(sm_test_store *s) {
  sm_config c = sm_test_cfg_u64(s, 9);
  c.key.kind = SM_CODEC_LSTR;
  return c;
}
