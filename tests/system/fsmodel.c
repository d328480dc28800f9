/*
 * fsmodel: a random-I/O model checker for a POSIX file system.
 *
 *   fsmodel DIR [--seed N] [--ops N] [--files N] [--max-size BYTES]
 *               [--max-io BYTES] [--keep]
 *
 * In a fresh directory DIR/fsmodel.XXXXXX it runs N random operations on a
 * few files (writes, reads, truncates, fallocates in mode 0, KEEP_SIZE and
 * PUNCH_HOLE, renames, unlinks, fsyncs, closing every descriptor) and holds
 * the same files in memory (fsmodel_model.h). Every read, every file size
 * after a change, and at the end the directory listing and every file's
 * bytes are compared with the model. The same seed gives the same sequence.
 *
 * A fallocate mode the file system refuses with EOPNOTSUPP is reported once
 * and then left out. On a mismatch or an unexpected error it prints the
 * failing operation, the operations before it and the first differing
 * bytes, and exits 1 (keeping the directory). Exit 2 is a usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsmodel_model.h"

enum op_kind {
  OP_WRITE,
  OP_READ,
  OP_TRUNCATE,
  OP_FALLOC,
  OP_FALLOC_KEEP,
  OP_PUNCH,
  OP_RENAME,
  OP_UNLINK,
  OP_FSYNC,
  OP_CLOSE_ALL,
  OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "write", "read", "truncate", "fallocate", "fallocate-keep-size", "punch-hole",
    "rename", "unlink", "fsync", "close-all"};
/* Relative frequencies: reads and writes dominate, namespace changes are
 * rare enough that files grow to interesting sizes. */
static const unsigned op_weights[OP_COUNT] = {30, 26, 7, 4, 3, 5, 5, 2, 5, 3};

#define HISTORY 16
/* A slot path: the directory plus "/f" and a number. */
#define PATHBUF (PATH_MAX + 32)

struct op_rec {
  long index;
  enum op_kind kind;
  size_t slot, slot2;
  uint64_t off, len;
};

struct checker {
  const char *base;
  char dir[PATH_MAX];
  uint64_t seed;
  long ops;
  size_t max_io;
  bool keep;
  fsm_rng rng;
  fsm_model *model;
  int *fds; /* one descriptor per slot, -1 when closed */
  bool unsupported[OP_COUNT];
  long counts[OP_COUNT];
  struct op_rec history[HISTORY];
  long done;
  uint8_t *buf, *expect; /* max_io bytes each */
};

static void describe(const struct op_rec *r, char *out, size_t len) {
  switch (r->kind) {
  case OP_RENAME:
    snprintf(out, len, "#%ld rename f%zu -> f%zu", r->index, r->slot, r->slot2);
    break;
  case OP_UNLINK:
  case OP_FSYNC:
    snprintf(out, len, "#%ld %s f%zu", r->index, op_names[r->kind], r->slot);
    break;
  case OP_CLOSE_ALL:
    snprintf(out, len, "#%ld close-all", r->index);
    break;
  case OP_TRUNCATE:
    snprintf(out, len, "#%ld truncate f%zu to %" PRIu64, r->index, r->slot, r->off);
    break;
  default:
    snprintf(out, len, "#%ld %s f%zu off %" PRIu64 " len %" PRIu64, r->index,
             op_names[r->kind], r->slot, r->off, r->len);
  }
}

static void hexdump(const char *label, const uint8_t *p, size_t n, uint64_t at) {
  fprintf(stderr, "  %s @%-9" PRIu64 ":", label, at);
  for (size_t i = 0; i < n; i++)
    fprintf(stderr, " %02x", p[i]);
  fprintf(stderr, "\n");
}

/* Prints the failure with the recent operations and exits 1. */
__attribute__((format(printf, 2, 3), noreturn)) static void fail(struct checker *c,
                                                                  const char *fmt, ...) {
  char what[160];
  struct op_rec *cur = &c->history[c->done % HISTORY];
  describe(cur, what, sizeof(what));
  fprintf(stderr, "fsmodel: FAIL (seed %" PRIu64 ") at op %s: ", c->seed, what);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nfsmodel: the operations before it:\n");
  long first = c->done >= HISTORY ? c->done - HISTORY + 1 : 0;
  for (long i = first; i < c->done; i++) {
    describe(&c->history[i % HISTORY], what, sizeof(what));
    fprintf(stderr, "  %s\n", what);
  }
  fprintf(stderr, "fsmodel: directory kept: %s\n", c->dir);
  exit(1);
}

/* Reports the first differing byte of a read of SLOT at OFF and fails. */
__attribute__((noreturn)) static void fail_diff(struct checker *c, size_t slot, uint64_t off,
                                                 const uint8_t *want, size_t wlen,
                                                 const uint8_t *got, size_t glen, long at) {
  fprintf(stderr, "fsmodel: f%zu: expected %zu bytes at %" PRIu64 ", got %zu; first difference "
                  "at file offset %" PRIu64 "\n",
          slot, wlen, off, glen, off + (uint64_t)at);
  size_t from = at > 8 ? (size_t)at - 8 : 0;
  size_t wn = wlen > from ? (wlen - from < 32 ? wlen - from : 32) : 0;
  size_t gn = glen > from ? (glen - from < 32 ? glen - from : 32) : 0;
  hexdump("expected", want + from, wn, off + from);
  hexdump("actual  ", got + from, gn, off + from);
  fail(c, "read returned different bytes");
}

static void path_of(const struct checker *c, size_t slot, char *out, size_t len) {
  snprintf(out, len, "%s/f%zu", c->dir, slot);
}

/* The open descriptor of SLOT, opened (and created if asked) on demand. */
static int slot_fd(struct checker *c, size_t slot, bool create) {
  if (c->fds[slot] >= 0)
    return c->fds[slot];
  char path[PATHBUF];
  path_of(c, slot, path, sizeof(path));
  int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
  if (fd < 0)
    fail(c, "open %s: %s", path, strerror(errno));
  if (create)
    fsm_model_create_file(c->model, slot);
  c->fds[slot] = fd;
  return fd;
}

static void close_slot(struct checker *c, size_t slot) {
  if (c->fds[slot] >= 0 && close(c->fds[slot]) < 0)
    fail(c, "close f%zu: %s", slot, strerror(errno));
  c->fds[slot] = -1;
}

static void check_size(struct checker *c, size_t slot) {
  struct stat st;
  if (fstat(slot_fd(c, slot, false), &st) < 0)
    fail(c, "fstat f%zu: %s", slot, strerror(errno));
  if ((uint64_t)st.st_size != fsm_model_size(c->model, slot))
    fail(c, "f%zu has size %lld, the model %zu", slot, (long long)st.st_size,
         fsm_model_size(c->model, slot));
}

/* Reads [OFF, OFF+LEN) of SLOT through its descriptor into c->buf and
 * compares with the model. */
static void check_range(struct checker *c, size_t slot, uint64_t off, size_t len) {
  int fd = slot_fd(c, slot, false);
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, c->buf + got, len - got, (off_t)(off + got));
    if (n < 0)
      fail(c, "pread: %s", strerror(errno));
    if (n == 0)
      break;
    got += (size_t)n;
  }
  long want = fsm_model_read(c->model, slot, off, c->expect, len);
  long at = fsm_first_diff(c->expect, (size_t)want, c->buf, got);
  if (at >= 0)
    fail_diff(c, slot, off, c->expect, (size_t)want, c->buf, got, at);
}

/* A slot holding a file, or -1 when there is none. */
static long pick_existing(struct checker *c) {
  size_t n = fsm_model_nfiles(c->model);
  size_t start = (size_t)fsm_rng_below(&c->rng, n);
  for (size_t i = 0; i < n; i++)
    if (fsm_model_exists(c->model, (start + i) % n))
      return (long)((start + i) % n);
  return -1;
}

static enum op_kind pick_kind(struct checker *c) {
  unsigned total = 0;
  for (int k = 0; k < OP_COUNT; k++)
    total += c->unsupported[k] ? 0 : op_weights[k];
  uint64_t r = fsm_rng_below(&c->rng, total);
  for (int k = 0; k < OP_COUNT; k++) {
    if (c->unsupported[k])
      continue;
    if (r < op_weights[k])
      return (enum op_kind)k;
    r -= op_weights[k];
  }
  return OP_WRITE;
}

/* An I/O range: at the end, inside, or anywhere below the maximum size. */
static void pick_range(struct checker *c, size_t slot, uint64_t *off, uint64_t *len) {
  uint64_t max = fsm_model_max_size(c->model);
  uint64_t size = fsm_model_size(c->model, slot);
  *len = 1 + fsm_rng_below(&c->rng, c->max_io < max ? c->max_io : max);
  switch (fsm_rng_below(&c->rng, 3)) {
  case 0:
    *off = size;
    break;
  case 1:
    *off = fsm_rng_below(&c->rng, size + 1);
    break;
  default:
    *off = fsm_rng_below(&c->rng, max);
  }
  if (*off > max - *len)
    *off = max - *len;
}

static void do_write(struct checker *c, struct op_rec *r) {
  int fd = slot_fd(c, r->slot, true);
  pick_range(c, r->slot, &r->off, &r->len);
  fsm_rng_fill(&c->rng, c->buf, r->len);
  for (uint64_t done = 0; done < r->len;) {
    ssize_t n = pwrite(fd, c->buf + done, r->len - done, (off_t)(r->off + done));
    if (n <= 0)
      fail(c, "pwrite: %s", n < 0 ? strerror(errno) : "wrote nothing");
    done += (uint64_t)n;
  }
  if (fsm_model_write(c->model, r->slot, r->off, c->buf, r->len) != 0)
    fail(c, "model write refused");
  check_size(c, r->slot);
}

static void do_read(struct checker *c, struct op_rec *r) {
  r->off = fsm_rng_below(&c->rng, fsm_model_size(c->model, r->slot) + 4096);
  r->len = 1 + fsm_rng_below(&c->rng, c->max_io);
  check_range(c, r->slot, r->off, r->len);
}

static void do_truncate(struct checker *c, struct op_rec *r) {
  uint64_t max = fsm_model_max_size(c->model);
  uint64_t size = fsm_model_size(c->model, r->slot);
  /* Mostly near the current size, sometimes anywhere, sometimes to zero. */
  switch (fsm_rng_below(&c->rng, 4)) {
  case 0:
    r->off = 0;
    break;
  case 1:
    r->off = fsm_rng_below(&c->rng, max + 1);
    break;
  default: {
    uint64_t lo = size > c->max_io ? size - c->max_io : 0;
    r->off = lo + fsm_rng_below(&c->rng, size - lo + c->max_io);
    if (r->off > max)
      r->off = max;
  }
  }
  if (ftruncate(slot_fd(c, r->slot, false), (off_t)r->off) < 0)
    fail(c, "ftruncate: %s", strerror(errno));
  if (fsm_model_truncate(c->model, r->slot, r->off) != 0)
    fail(c, "model truncate refused");
  check_size(c, r->slot);
}

static void do_fallocate(struct checker *c, struct op_rec *r) {
  static const int modes[OP_COUNT] = {
      [OP_FALLOC] = 0,
      [OP_FALLOC_KEEP] = FALLOC_FL_KEEP_SIZE,
      [OP_PUNCH] = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
  };
  pick_range(c, r->slot, &r->off, &r->len);
  if (fallocate(slot_fd(c, r->slot, false), modes[r->kind], (off_t)r->off, (off_t)r->len) < 0) {
    if (errno == EOPNOTSUPP) {
      printf("fsmodel: %s is not supported here (EOPNOTSUPP); left out from now on\n",
             op_names[r->kind]);
      c->unsupported[r->kind] = true;
      c->counts[r->kind]--; /* not done after all */
      return;
    }
    fail(c, "fallocate: %s", strerror(errno));
  }
  int rc = 0;
  if (r->kind == OP_FALLOC)
    rc = fsm_model_allocate(c->model, r->slot, r->off, r->len);
  else if (r->kind == OP_PUNCH)
    rc = fsm_model_punch(c->model, r->slot, r->off, r->len);
  if (rc != 0)
    fail(c, "model refused the fallocate");
  check_size(c, r->slot);
  /* Read the range back now so a wrong hole is caught at its cause. */
  check_range(c, r->slot, r->off, r->len);
}

/* Runs a namespace call and checks its outcome against the model's. */
static void check_outcome(struct checker *c, int sys_rc, int sys_errno, int model_rc) {
  if (sys_rc == 0 && model_rc != 0)
    fail(c, "succeeded, the model says %s", strerror(-model_rc));
  if (sys_rc != 0 && model_rc == 0)
    fail(c, "failed with %s, the model says it succeeds", strerror(sys_errno));
  if (sys_rc != 0 && sys_errno != -model_rc)
    fail(c, "failed with %s, the model says %s", strerror(sys_errno), strerror(-model_rc));
}

static void do_rename(struct checker *c, struct op_rec *r) {
  size_t n = fsm_model_nfiles(c->model);
  r->slot = (size_t)fsm_rng_below(&c->rng, n);
  r->slot2 = (size_t)fsm_rng_below(&c->rng, n);
  char from[PATHBUF], to[PATHBUF];
  path_of(c, r->slot, from, sizeof(from));
  path_of(c, r->slot2, to, sizeof(to));
  /* A replaced file's descriptor would keep an unlinked file the model
   * does not track; close it first. */
  if (r->slot != r->slot2 && fsm_model_exists(c->model, r->slot))
    close_slot(c, r->slot2);
  int rc = rename(from, to);
  int err = errno;
  check_outcome(c, rc, err, fsm_model_rename(c->model, r->slot, r->slot2));
  if (rc == 0 && r->slot != r->slot2) {
    c->fds[r->slot2] = c->fds[r->slot];
    c->fds[r->slot] = -1;
  }
}

static void do_unlink(struct checker *c, struct op_rec *r) {
  r->slot = (size_t)fsm_rng_below(&c->rng, fsm_model_nfiles(c->model));
  char path[PATHBUF];
  path_of(c, r->slot, path, sizeof(path));
  close_slot(c, r->slot);
  int rc = unlink(path);
  int err = errno;
  check_outcome(c, rc, err, fsm_model_unlink(c->model, r->slot));
}

static void do_fsync(struct checker *c, struct op_rec *r) {
  if (fsync(slot_fd(c, r->slot, false)) < 0)
    fail(c, "fsync: %s", strerror(errno));
  if (fsm_rng_below(&c->rng, 4) == 0) {
    int dfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0)
      fail(c, "fsync of the directory: %s", strerror(errno));
    close(dfd);
  }
}

static void step(struct checker *c) {
  struct op_rec *r = &c->history[c->done % HISTORY];
  memset(r, 0, sizeof(*r));
  r->index = c->done;
  r->kind = pick_kind(c);
  /* Operations on a file's contents need one; writes create it. */
  if (r->kind != OP_RENAME && r->kind != OP_UNLINK && r->kind != OP_CLOSE_ALL) {
    long slot = r->kind == OP_WRITE && fsm_rng_below(&c->rng, 8) == 0
                    ? (long)fsm_rng_below(&c->rng, fsm_model_nfiles(c->model))
                    : pick_existing(c);
    if (slot < 0) {
      r->kind = OP_WRITE;
      slot = (long)fsm_rng_below(&c->rng, fsm_model_nfiles(c->model));
    }
    r->slot = (size_t)slot;
  }
  c->counts[r->kind]++;
  switch (r->kind) {
  case OP_WRITE:
    do_write(c, r);
    break;
  case OP_READ:
    do_read(c, r);
    break;
  case OP_TRUNCATE:
    do_truncate(c, r);
    break;
  case OP_FALLOC:
  case OP_FALLOC_KEEP:
  case OP_PUNCH:
    do_fallocate(c, r);
    break;
  case OP_RENAME:
    do_rename(c, r);
    break;
  case OP_UNLINK:
    do_unlink(c, r);
    break;
  case OP_FSYNC:
    do_fsync(c, r);
    break;
  case OP_CLOSE_ALL:
  case OP_COUNT:
    for (size_t i = 0; i < fsm_model_nfiles(c->model); i++)
      close_slot(c, i);
    break;
  }
  c->done++;
}

/* The end: the directory lists exactly the model's files, and each one,
 * opened afresh, holds the model's bytes. */
static void final_compare(struct checker *c) {
  struct op_rec *r = &c->history[c->done % HISTORY];
  *r = (struct op_rec){.index = c->done, .kind = OP_CLOSE_ALL};
  size_t n = fsm_model_nfiles(c->model);
  for (size_t i = 0; i < n; i++)
    close_slot(c, i);

  DIR *d = opendir(c->dir);
  if (d == NULL)
    fail(c, "opendir: %s", strerror(errno));
  size_t listed = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char *end;
    unsigned long slot = e->d_name[0] == 'f' ? strtoul(e->d_name + 1, &end, 10) : ULONG_MAX;
    if (slot >= n || *end != '\0' || !fsm_model_exists(c->model, slot)) {
      closedir(d);
      fail(c, "final listing has %s, which the model does not", e->d_name);
    }
    listed++;
  }
  closedir(d);
  size_t want = 0;
  for (size_t i = 0; i < n; i++)
    want += fsm_model_exists(c->model, i);
  if (listed != want)
    fail(c, "final listing has %zu files, the model %zu", listed, want);

  for (size_t i = 0; i < n; i++) {
    if (!fsm_model_exists(c->model, i))
      continue;
    check_size(c, i);
    uint64_t size = fsm_model_size(c->model, i);
    for (uint64_t off = 0; off <= size; off += c->max_io)
      check_range(c, i, off, c->max_io);
    close_slot(c, i);
  }
}

static int remove_dir(struct checker *c) {
  for (size_t i = 0; i < fsm_model_nfiles(c->model); i++) {
    char path[PATHBUF];
    path_of(c, i, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
      return -errno;
  }
  return rmdir(c->dir) < 0 ? -errno : 0;
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
    return -EINVAL;
  *out = v;
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: fsmodel DIR [--seed N] [--ops N] [--files N] [--max-size BYTES] "
                  "[--max-io BYTES] [--keep]\n");
  exit(2);
}

int main(int argc, char **argv) {
  struct checker c = {.ops = 10000, .max_io = 65536};
  uint64_t nfiles = 4, max_size = 1 << 20, v;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  c.seed = (uint64_t)now.tv_sec * 1000003u ^ (uint64_t)now.tv_nsec ^ (uint64_t)getpid();

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--keep") == 0) {
      c.keep = true;
    } else if (a[0] == '-' && a[1] == '-') {
      if (i + 1 >= argc || parse_u64(argv[i + 1], &v) != 0)
        usage();
      i++;
      if (strcmp(a, "--seed") == 0)
        c.seed = v;
      else if (strcmp(a, "--ops") == 0 && v <= LONG_MAX)
        c.ops = (long)v;
      else if (strcmp(a, "--files") == 0 && v >= 1 && v <= 1000)
        nfiles = v;
      else if (strcmp(a, "--max-size") == 0 && v >= 1 && v <= (1u << 30))
        max_size = v;
      else if (strcmp(a, "--max-io") == 0 && v >= 1 && v <= (16u << 20))
        c.max_io = (size_t)v;
      else
        usage();
    } else if (c.base == NULL) {
      c.base = a;
    } else {
      usage();
    }
  }
  if (c.base == NULL)
    usage();

  snprintf(c.dir, sizeof(c.dir), "%s/fsmodel.XXXXXX", c.base);
  if (mkdtemp(c.dir) == NULL) {
    fprintf(stderr, "fsmodel: mkdtemp in %s: %s\n", c.base, strerror(errno));
    return 1;
  }
  fsm_rng_seed(&c.rng, c.seed);
  c.model = fsm_model_create((size_t)nfiles, (size_t)max_size);
  c.fds = malloc(nfiles * sizeof(*c.fds));
  c.buf = malloc(c.max_io);
  c.expect = malloc(c.max_io);
  if (c.model == NULL || c.fds == NULL || c.buf == NULL || c.expect == NULL) {
    fprintf(stderr, "fsmodel: out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < nfiles; i++)
    c.fds[i] = -1;
  printf("fsmodel: seed %" PRIu64 ", ops %ld, files %" PRIu64 ", max size %" PRIu64
         ", max io %zu, in %s\n",
         c.seed, c.ops, nfiles, max_size, c.max_io, c.dir);
  fflush(stdout);

  while (c.done < c.ops)
    step(&c);
  final_compare(&c);

  printf("fsmodel: ok: %ld ops (seed %" PRIu64 ") matched the model:", c.done, c.seed);
  for (int k = 0; k < OP_COUNT; k++)
    printf(" %s %ld%s", op_names[k], c.counts[k], c.unsupported[k] ? " (unsupported)" : "");
  printf("\n");
  int rc = c.keep ? 0 : remove_dir(&c);
  if (rc != 0)
    fprintf(stderr, "fsmodel: removing %s: %s\n", c.dir, strerror(-rc));
  fsm_model_destroy(c.model);
  free(c.fds);
  free(c.buf);
  free(c.expect);
  return rc != 0;
}
