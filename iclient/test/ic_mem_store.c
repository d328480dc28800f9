/* ic_mem_store: in-memory object store test double (ic_test_doubles.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ic_test_doubles.h"

void ic_mem_store_init(ic_mem_store *s) {
  memset(s, 0, sizeof(*s));
  pthread_mutex_init(&s->mu, NULL);
}

void ic_mem_store_fini(ic_mem_store *s) {
  for (size_t i = 0; i < s->nobjs; i++) free(s->objs[i].data);
  free(s->objs);
  pthread_mutex_destroy(&s->mu);
}

static ic_mem_object *find(ic_mem_store *s, uint64_t n) {
  for (size_t i = 0; i < s->nobjs; i++)
    if (s->objs[i].number == n) return &s->objs[i];
  return NULL;
}

const ic_mem_object *ic_mem_store_find(ic_mem_store *s, uint64_t number) {
  pthread_mutex_lock(&s->mu);
  const ic_mem_object *o = find(s, number);
  pthread_mutex_unlock(&s->mu);
  return o;
}

static int add(ic_mem_store *s, uint64_t n, const void *data, size_t len) {
  if (find(s, n)) {
    s->double_puts++;
    return -EEXIST;
  }
  if (s->nobjs == s->capobjs) {
    size_t cap = s->capobjs ? s->capobjs * 2 : 16;
    void *p = realloc(s->objs, cap * sizeof(*s->objs));
    if (!p) return -ENOMEM;
    s->objs = p;
    s->capobjs = cap;
  }
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) return -ENOMEM;
  if (len) memcpy(copy, data, len);
  s->objs[s->nobjs++] = (ic_mem_object){n, copy, len};
  return 0;
}

int ic_mem_store_add(ic_mem_store *s, uint64_t number, const void *data, size_t len) {
  pthread_mutex_lock(&s->mu);
  int rc = add(s, number, data, len);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static int ms_get(void *ctx, uint64_t n, uint64_t off, uint64_t len, void *buf, size_t *got) {
  ic_mem_store *s = ctx;
  pthread_mutex_lock(&s->mu);
  s->gets++;
  int rc = 0;
  ic_mem_object *o = find(s, n);
  if (s->fail_gets > 0) {
    s->fail_gets--;
    rc = -EIO;
  } else if (!o) {
    rc = -ENOENT;
  } else if (off >= o->len) {
    rc = -ERANGE;
  } else {
    size_t m = o->len - off < len ? o->len - off : len;
    memcpy(buf, o->data + off, m);
    *got = m;
    s->get_bytes += m;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static int ms_get_tail(void *ctx, uint64_t n, uint64_t len, void *buf) {
  ic_mem_store *s = ctx;
  pthread_mutex_lock(&s->mu);
  s->tail_gets++;
  ic_mem_object *o = find(s, n);
  int rc = !o ? -ENOENT : (o->len < len ? -EIO : 0);
  if (rc == 0) memcpy(buf, o->data + (o->len - len), len);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static int ms_put(void *ctx, uint64_t n, const void *buf, size_t len) {
  ic_mem_store *s = ctx;
  pthread_mutex_lock(&s->mu);
  s->puts++;
  int rc;
  if (s->fail_puts > 0) {
    s->fail_puts--;
    rc = -EIO;
  } else {
    rc = add(s, n, buf, len);
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

const ic_store_ops ic_mem_store_ops = {ms_get, ms_get_tail, ms_put};
