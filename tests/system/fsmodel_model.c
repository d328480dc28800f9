/* The in-memory model of fsmodel; see fsmodel_model.h. */
#include "fsmodel_model.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct fsm_file {
  uint8_t *data; /* max_size bytes, allocated on first growth */
  size_t size;
  bool exists;
};

struct fsm_model {
  size_t nfiles;
  size_t max_size;
  struct fsm_file files[];
};

void fsm_rng_seed(fsm_rng *r, uint64_t seed) { r->state = seed; }

uint64_t fsm_rng_next(fsm_rng *r) {
  uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fsm_rng_below(fsm_rng *r, uint64_t n) {
  /* Rejection keeps it exactly uniform; the loop almost never repeats. */
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do
    v = fsm_rng_next(r);
  while (v >= limit);
  return v % n;
}

void fsm_rng_fill(fsm_rng *r, uint8_t *buf, size_t len) {
  while (len > 0) {
    uint64_t v = fsm_rng_next(r);
    size_t n = len < sizeof(v) ? len : sizeof(v);
    memcpy(buf, &v, n);
    buf += n;
    len -= n;
  }
}

fsm_model *fsm_model_create(size_t nfiles, size_t max_size) {
  if (nfiles == 0 || max_size == 0)
    return NULL;
  fsm_model *m = calloc(1, sizeof(*m) + nfiles * sizeof(m->files[0]));
  if (m == NULL)
    return NULL;
  m->nfiles = nfiles;
  m->max_size = max_size;
  return m;
}

void fsm_model_destroy(fsm_model *m) {
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->nfiles; i++)
    free(m->files[i].data);
  free(m);
}

size_t fsm_model_nfiles(const fsm_model *m) { return m->nfiles; }
size_t fsm_model_max_size(const fsm_model *m) { return m->max_size; }
bool fsm_model_exists(const fsm_model *m, size_t slot) { return m->files[slot].exists; }
size_t fsm_model_size(const fsm_model *m, size_t slot) { return m->files[slot].size; }

const uint8_t *fsm_model_data(const fsm_model *m, size_t slot) {
  return m->files[slot].size ? m->files[slot].data : NULL;
}

void fsm_model_create_file(fsm_model *m, size_t slot) { m->files[slot].exists = true; }

/* Grows F to SIZE bytes, the new bytes zero. */
static int fsm_grow(const fsm_model *m, struct fsm_file *f, uint64_t size) {
  if (size > m->max_size)
    return -EFBIG;
  if (size <= f->size)
    return 0;
  if (f->data == NULL && (f->data = malloc(m->max_size)) == NULL)
    return -ENOMEM;
  memset(f->data + f->size, 0, size - f->size);
  f->size = size;
  return 0;
}

static int fsm_check_range(const fsm_model *m, uint64_t off, uint64_t len) {
  return off > m->max_size || len > m->max_size - off ? -EFBIG : 0;
}

int fsm_model_write(fsm_model *m, size_t slot, uint64_t off, const uint8_t *buf, size_t len) {
  struct fsm_file *f = &m->files[slot];
  if (!f->exists)
    return -ENOENT;
  int rc = fsm_check_range(m, off, len);
  if (rc == 0)
    rc = fsm_grow(m, f, off + len);
  if (rc == 0 && len > 0)
    memcpy(f->data + off, buf, len);
  return rc;
}

long fsm_model_read(const fsm_model *m, size_t slot, uint64_t off, uint8_t *out, size_t len) {
  const struct fsm_file *f = &m->files[slot];
  if (!f->exists)
    return -ENOENT;
  if (off >= f->size)
    return 0;
  size_t n = f->size - off < len ? f->size - off : len;
  memcpy(out, f->data + off, n);
  return (long)n;
}

int fsm_model_truncate(fsm_model *m, size_t slot, uint64_t size) {
  struct fsm_file *f = &m->files[slot];
  if (!f->exists)
    return -ENOENT;
  if (size > m->max_size)
    return -EFBIG;
  if (size <= f->size) {
    f->size = size;
    return 0;
  }
  return fsm_grow(m, f, size);
}

int fsm_model_allocate(fsm_model *m, size_t slot, uint64_t off, uint64_t len) {
  struct fsm_file *f = &m->files[slot];
  if (!f->exists)
    return -ENOENT;
  int rc = fsm_check_range(m, off, len);
  return rc != 0 ? rc : fsm_grow(m, f, off + len);
}

int fsm_model_punch(fsm_model *m, size_t slot, uint64_t off, uint64_t len) {
  struct fsm_file *f = &m->files[slot];
  if (!f->exists)
    return -ENOENT;
  int rc = fsm_check_range(m, off, len);
  if (rc != 0)
    return rc;
  if (off < f->size) {
    uint64_t end = off + len < f->size ? off + len : f->size;
    memset(f->data + off, 0, end - off);
  }
  return 0;
}

int fsm_model_rename(fsm_model *m, size_t from, size_t to) {
  if (!m->files[from].exists)
    return -ENOENT;
  if (from == to)
    return 0;
  free(m->files[to].data);
  m->files[to] = m->files[from];
  m->files[from] = (struct fsm_file){0};
  return 0;
}

int fsm_model_unlink(fsm_model *m, size_t slot) {
  if (!m->files[slot].exists)
    return -ENOENT;
  free(m->files[slot].data);
  m->files[slot] = (struct fsm_file){0};
  return 0;
}

long fsm_first_diff(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  if (n > 0 && memcmp(a, b, n) == 0)
    return alen == blen ? -1 : (long)n;
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i])
      return (long)i;
  return alen == blen ? -1 : (long)n;
}
