/*
 * fsbench: the workloads of tests/bench/run.sh, run against one directory
 * (a mount point or any directory) and printed one figure a line:
 *
 *   RESULT <workload> <value> <unit> <seconds> [capped <done>/<asked>]
 *
 *   fsbench DIR [--seq-bytes N] [--block N] [--rand-reads N] [--files N]
 *               [--dirs N] [--small-files N] [--small-size N]
 *               [--tarball PATH --tar-entries N] [--cap-seconds S]
 *               [WORKLOAD ...]
 *
 * Workloads, in the order they run (default: all): seqwrite (one file,
 * --block writes, fsync before the clock stops), seqread (page cache dropped,
 * then read again on the same descriptor: cold and warm), randread (4 KiB
 * preads at random aligned offsets of that file, caches dropped first),
 * meta (creates of --files empty files in one directory, stat of all and
 * `ls -l` each after dropping caches, then unlinks), dirs (mkdir then rmdir
 * of --dirs directories), small (write --small-files files of --small-size
 * bytes ended by syncfs, then read them after dropping caches), untar
 * (tar -xf of --tarball ended by syncfs, then rm -rf of the tree).
 *
 * Dropping the page cache (echo 3 > /proc/sys/vm/drop_caches) needs root;
 * without it the "cold" figures are printed as warm with a warning. Every
 * workload stops at --cap-seconds (default 120) and then reports the rate
 * of what it did, marked "capped", so a slow target cannot stall a run.
 * Figures only: nothing here asserts on time. Exit 1 when a workload fails.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct bench {
  const char *dir;
  uint64_t seq_bytes;
  size_t block;
  long rand_reads;
  long files;
  long dirs;
  long small_files;
  size_t small_size;
  const char *tarball;
  long tar_entries;
  double cap_seconds;
  bool can_drop;
  uint64_t seq_have; /* bytes of seq.dat actually written */
  long files_have;   /* files created by meta */
  long small_have;   /* small files written */
  int failures;
  char *buf; /* max(block, small_size) bytes */
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void result(const char *name, double amount, const char *unit, double secs,
                   long done, long asked) {
  double rate = secs > 0 ? amount / secs : 0;
  printf("RESULT %s %.1f %s %.3f", name, rate, unit, secs);
  if (done < asked)
    printf(" capped %ld/%ld", done, asked);
  printf("\n");
  fflush(stdout);
}

static void failed(struct bench *b, const char *name, const char *what, int err) {
  printf("RESULT %s FAIL %s: %s\n", name, what, strerror(err));
  fflush(stdout);
  b->failures++;
}

static void path_in(const struct bench *b, char *out, size_t len, const char *fmt, long i) {
  char leaf[64];
  snprintf(leaf, sizeof(leaf), fmt, i);
  snprintf(out, len, "%s/%s", b->dir, leaf);
}

/* Empties the page, dentry and inode caches so the next access goes to the
 * file system; the sync before it keeps dirty data from being timed later. */
static void drop_caches(struct bench *b) {
  if (!b->can_drop)
    return;
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd < 0 || write(fd, "3\n", 2) != 2) {
    fprintf(stderr, "fsbench: cannot drop caches (%s): cold figures are warm\n",
            strerror(errno));
    b->can_drop = false;
  }
  if (fd >= 0)
    close(fd);
}

static bool over(const struct bench *b, double start) { return now_s() - start > b->cap_seconds; }

static void seqwrite(struct bench *b) {
  char path[PATH_MAX];
  path_in(b, path, sizeof(path), "seq.dat", 0);
  for (size_t i = 0; i < b->block; i++)
    b->buf[i] = (char)(i * 7 + 1); /* not zeros: no file system may elide them */
  double t0 = now_s();
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    failed(b, "seqwrite", path, errno);
    return;
  }
  uint64_t done = 0;
  while (done < b->seq_bytes && !over(b, t0)) {
    size_t n = b->seq_bytes - done < b->block ? (size_t)(b->seq_bytes - done) : b->block;
    ssize_t w = write(fd, b->buf, n);
    if (w <= 0) {
      failed(b, "seqwrite", "write", w < 0 ? errno : EIO);
      close(fd);
      return;
    }
    done += (uint64_t)w;
  }
  if (fsync(fd) < 0 || close(fd) < 0) {
    failed(b, "seqwrite", "fsync/close", errno);
    return;
  }
  double secs = now_s() - t0;
  b->seq_have = done;
  result("seqwrite", (double)done / 1e6, "MB/s", secs, (long)(done >> 20),
         (long)(b->seq_bytes >> 20));
}

/* Reads the whole of FD from offset 0; returns bytes or -errno. */
static int64_t read_all(struct bench *b, int fd, double t0, const char *name) {
  uint64_t done = 0;
  while (done < b->seq_have && !over(b, t0)) {
    ssize_t r = pread(fd, b->buf, b->block, (off_t)done);
    if (r < 0) {
      failed(b, name, "pread", errno);
      return -1;
    }
    if (r == 0) {
      failed(b, name, "file shorter than written", EIO);
      return -1;
    }
    done += (uint64_t)r;
  }
  return (int64_t)done;
}

/* Opens seq.dat for reading with every cache dropped; -1 (reported as a
 * failure of NAME) when seqwrite has not run or the open fails. */
static int open_seq_cold(struct bench *b, const char *name, char *path, size_t len) {
  path_in(b, path, len, "seq.dat", 0);
  if (b->seq_have < 4096) {
    failed(b, name, "needs seqwrite first (4 KiB at least)", ENOENT);
    return -1;
  }
  drop_caches(b);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    failed(b, name, path, errno);
  return fd;
}

static void seqread(struct bench *b) {
  char path[PATH_MAX];
  int fd = open_seq_cold(b, "seqread", path, sizeof(path));
  if (fd < 0)
    return;
  const char *names[2] = {b->can_drop ? "seqread-cold" : "seqread-cold(warm!)", "seqread-warm"};
  for (int pass = 0; pass < 2; pass++) {
    double t0 = now_s();
    int64_t got = read_all(b, fd, t0, names[pass]);
    if (got < 0)
      break;
    result(names[pass], (double)got / 1e6, "MB/s", now_s() - t0, (long)(got >> 20),
           (long)(b->seq_have >> 20));
  }
  close(fd);
}

static void randread(struct bench *b) {
  char path[PATH_MAX];
  int fd = open_seq_cold(b, "randread", path, sizeof(path));
  if (fd < 0)
    return;
  uint64_t pages = b->seq_have / 4096;
  uint64_t x = 88172645463325252ull; /* xorshift64: a fixed, repeatable order */
  double t0 = now_s();
  long done = 0;
  for (; done < b->rand_reads && !over(b, t0); done++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    if (pread(fd, b->buf, 4096, (off_t)((x % pages) * 4096)) != 4096) {
      failed(b, "randread", "pread", errno ? errno : EIO);
      close(fd);
      return;
    }
  }
  result("randread-4k", (double)done, "ops/s", now_s() - t0, done, b->rand_reads);
  close(fd);
  /* The big file is done with; give its memory back before the next tests. */
  unlink(path);
}

/* Runs ARGV with stdout to /dev/null, killed at the cap. Returns its exit
 * status (0 = success), -ETIMEDOUT when killed, or -errno. */
static int run_capped(const struct bench *b, char *const argv[], double t0) {
  pid_t pid = fork();
  if (pid < 0)
    return -errno;
  if (pid == 0) {
    int nul = open("/dev/null", O_WRONLY);
    if (nul >= 0)
      dup2(nul, STDOUT_FILENO);
    execvp(argv[0], argv);
    _exit(127);
  }
  int status;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid)
      break;
    if (w < 0)
      return -errno;
    if (over(b, t0)) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -ETIMEDOUT;
    }
    struct timespec ms = {0, 5 * 1000 * 1000};
    nanosleep(&ms, NULL);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void meta(struct bench *b) {
  char dir[PATH_MAX], path[PATH_MAX];
  path_in(b, dir, sizeof(dir), "many", 0);
  if (mkdir(dir, 0755) < 0) {
    failed(b, "create", dir, errno);
    return;
  }
  double t0 = now_s();
  long n = 0;
  for (; n < b->files && !over(b, t0); n++) {
    path_in(b, path, sizeof(path), "many/file-%06ld", n);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || close(fd) < 0) {
      failed(b, "create", path, errno);
      break;
    }
  }
  b->files_have = n;
  result("create", (double)n, "ops/s", now_s() - t0, n, b->files);

  drop_caches(b);
  t0 = now_s();
  long i = 0;
  for (; i < b->files_have && !over(b, t0); i++) {
    struct stat st;
    path_in(b, path, sizeof(path), "many/file-%06ld", i);
    if (stat(path, &st) < 0) {
      failed(b, "stat", path, errno);
      break;
    }
  }
  result("stat", (double)i, "ops/s", now_s() - t0, i, b->files_have);

  drop_caches(b);
  char *ls[] = {"ls", "-l", dir, NULL};
  t0 = now_s();
  int rc = run_capped(b, ls, t0);
  if (rc == 0 || rc == -ETIMEDOUT)
    result("ls-l", (double)b->files_have, "entries/s", now_s() - t0,
           rc == 0 ? b->files_have : 0, b->files_have);
  else
    failed(b, "ls-l", "ls -l exit status", rc < 0 ? -rc : EIO);

  t0 = now_s();
  i = 0;
  for (; i < b->files_have && !over(b, t0); i++) {
    path_in(b, path, sizeof(path), "many/file-%06ld", i);
    if (unlink(path) < 0) {
      failed(b, "unlink", path, errno);
      break;
    }
  }
  result("unlink", (double)i, "ops/s", now_s() - t0, i, b->files_have);
  if (i == b->files_have)
    rmdir(dir);
}

static void dirs(struct bench *b) {
  char path[PATH_MAX];
  double t0 = now_s();
  long n = 0;
  for (; n < b->dirs && !over(b, t0); n++) {
    path_in(b, path, sizeof(path), "dir-%06ld", n);
    if (mkdir(path, 0755) < 0) {
      failed(b, "mkdir", path, errno);
      break;
    }
  }
  result("mkdir", (double)n, "ops/s", now_s() - t0, n, b->dirs);
  t0 = now_s();
  long i = 0;
  for (; i < n && !over(b, t0); i++) {
    path_in(b, path, sizeof(path), "dir-%06ld", i);
    if (rmdir(path) < 0) {
      failed(b, "rmdir", path, errno);
      break;
    }
  }
  result("rmdir", (double)i, "ops/s", now_s() - t0, i, n);
}

/* syncfs of the file system holding DIR: the end of a write workload. */
static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int rc = syncfs(fd) < 0 ? -errno : 0;
  close(fd);
  return rc;
}

static void small(struct bench *b) {
  char dir[PATH_MAX], path[PATH_MAX];
  path_in(b, dir, sizeof(dir), "small", 0);
  if (mkdir(dir, 0755) < 0) {
    failed(b, "small-write", dir, errno);
    return;
  }
  memset(b->buf, 'S', b->small_size);
  double t0 = now_s();
  long n = 0;
  for (; n < b->small_files && !over(b, t0); n++) {
    path_in(b, path, sizeof(path), "small/s-%06ld", n);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, b->buf, b->small_size) != (ssize_t)b->small_size ||
        close(fd) < 0) {
      failed(b, "small-write", path, errno ? errno : EIO);
      break;
    }
  }
  int rc = sync_dir(dir);
  if (rc != 0)
    failed(b, "small-write", "syncfs", -rc);
  double secs = now_s() - t0;
  b->small_have = n;
  result("small-write", (double)n, "files/s", secs, n, b->small_files);
  result("small-write-MB", (double)n * (double)b->small_size / 1e6, "MB/s", secs, n,
         b->small_files);

  drop_caches(b);
  t0 = now_s();
  long i = 0;
  for (; i < b->small_have && !over(b, t0); i++) {
    path_in(b, path, sizeof(path), "small/s-%06ld", i);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t r = fd < 0 ? -1 : read(fd, b->buf, b->small_size);
    if (fd >= 0)
      close(fd);
    if (r != (ssize_t)b->small_size) {
      failed(b, "small-read", path, r < 0 ? errno : EIO);
      break;
    }
  }
  secs = now_s() - t0;
  result("small-read", (double)i, "files/s", secs, i, b->small_have);
  result("small-read-MB", (double)i * (double)b->small_size / 1e6, "MB/s", secs, i,
         b->small_have);
  for (i = 0; i < b->small_have; i++) {
    path_in(b, path, sizeof(path), "small/s-%06ld", i);
    unlink(path);
  }
  rmdir(dir);
}

static void untar(struct bench *b) {
  if (b->tarball == NULL) {
    printf("fsbench: untar skipped: no --tarball\n");
    return;
  }
  struct stat st;
  if (stat(b->tarball, &st) < 0) {
    failed(b, "untar", b->tarball, errno);
    return;
  }
  char dir[PATH_MAX];
  path_in(b, dir, sizeof(dir), "untar", 0);
  if (mkdir(dir, 0755) < 0) {
    failed(b, "untar", dir, errno);
    return;
  }
  char *tar[] = {"tar", "--no-same-owner", "-xf", (char *)b->tarball, "-C", dir, NULL};
  double t0 = now_s();
  int rc = run_capped(b, tar, t0);
  if (rc == 0)
    rc = sync_dir(dir);
  double secs = now_s() - t0;
  if (rc == 0 || rc == -ETIMEDOUT) {
    long done = rc == 0 ? b->tar_entries : 0;
    result("untar", (double)b->tar_entries, "entries/s", secs, done, b->tar_entries);
    result("untar-MB", (double)st.st_size / 1e6, "MB/s", secs, done, b->tar_entries);
  } else {
    failed(b, "untar", "tar exit status (or syncfs)", rc < 0 ? -rc : EIO);
  }
  char *rm[] = {"rm", "-rf", dir, NULL};
  t0 = now_s();
  rc = run_capped(b, rm, t0);
  if (rc == 0)
    result("rm-rf-tree", (double)b->tar_entries, "entries/s", now_s() - t0, b->tar_entries,
           b->tar_entries);
  else
    failed(b, "rm-rf-tree", "rm -rf exit status", rc < 0 ? -rc : EIO);
}

static const struct {
  const char *name;
  void (*run)(struct bench *);
} workloads[] = {
    {"seqwrite", seqwrite}, {"seqread", seqread}, {"randread", randread}, {"meta", meta},
    {"dirs", dirs},         {"small", small},     {"untar", untar},
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

static void usage(void) {
  fprintf(stderr,
          "usage: fsbench DIR [--seq-bytes N] [--block N] [--rand-reads N] [--files N]\n"
          "       [--dirs N] [--small-files N] [--small-size N] [--tarball PATH]\n"
          "       [--tar-entries N] [--cap-seconds S] [WORKLOAD ...]\n"
          "workloads: seqwrite seqread randread meta dirs small untar (default: all)\n");
  exit(2);
}

static uint64_t num(const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno != 0 || end == s || s[0] == '-')
    usage();
  /* K, M, G suffixes: binary multiples. */
  switch (*end) {
  case '\0':
    return v;
  case 'K':
    return v << 10;
  case 'M':
    return v << 20;
  case 'G':
    return v << 30;
  default:
    usage();
  }
  return 0;
}

int main(int argc, char **argv) {
  struct bench b = {
      .seq_bytes = 1ull << 30,
      .block = 1 << 20,
      .rand_reads = 20000,
      .files = 10000,
      .dirs = 1000,
      .small_files = 2000,
      .small_size = 16384,
      .cap_seconds = 120,
      .can_drop = true,
  };
  bool want[NWORKLOADS] = {false};
  bool any = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] == '-' && a[1] == '-') {
      if (i + 1 >= argc)
        usage();
      const char *v = argv[++i];
      if (strcmp(a, "--seq-bytes") == 0)
        b.seq_bytes = num(v);
      else if (strcmp(a, "--block") == 0)
        b.block = (size_t)num(v);
      else if (strcmp(a, "--rand-reads") == 0)
        b.rand_reads = (long)num(v);
      else if (strcmp(a, "--files") == 0)
        b.files = (long)num(v);
      else if (strcmp(a, "--dirs") == 0)
        b.dirs = (long)num(v);
      else if (strcmp(a, "--small-files") == 0)
        b.small_files = (long)num(v);
      else if (strcmp(a, "--small-size") == 0)
        b.small_size = (size_t)num(v);
      else if (strcmp(a, "--tarball") == 0)
        b.tarball = v;
      else if (strcmp(a, "--tar-entries") == 0)
        b.tar_entries = (long)num(v);
      else if (strcmp(a, "--cap-seconds") == 0)
        b.cap_seconds = (double)num(v);
      else
        usage();
    } else if (b.dir == NULL) {
      b.dir = a;
    } else {
      size_t k = 0;
      while (k < NWORKLOADS && strcmp(workloads[k].name, a) != 0)
        k++;
      if (k == NWORKLOADS)
        usage();
      want[k] = any = true;
    }
  }
  if (b.dir == NULL || b.block == 0 || b.block > (64u << 20) || b.small_size == 0 ||
      b.small_size > (64u << 20))
    usage();
  b.buf = malloc(b.block > b.small_size ? b.block : b.small_size);
  if (b.buf == NULL) {
    fprintf(stderr, "fsbench: out of memory\n");
    return 1;
  }
  for (size_t k = 0; k < NWORKLOADS; k++)
    if (!any || want[k])
      workloads[k].run(&b);
  free(b.buf);
  return b.failures ? 1 : 0;
}
