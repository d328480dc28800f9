/* iswift's directory store: see iswift_disk.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "iswift_disk.h"
#include "iswift_internal.h"
#include "logger.h"
#include "utils.h"

#define HASH_HEX 65
#define MAX_RECORD_FILE (1ull << 32) /* far above MaxObjectSize; bounds a load */
#define INCOMING ".incoming"      /* streamed PUT bodies not stored yet */

static void hash_name(const char *name, char out[HASH_HEX]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned ml = 0;
  EVP_Digest(name, strlen(name), md, &ml, EVP_sha256(), NULL);
  for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* dir/H(a)[/H(c)[/leaf]] where leaf is H(o) or a fixed name. */
static int make_path(char *buf, size_t len, const char *dir, const char *a, const char *c,
                     const char *leaf_name, const char *fixed_leaf) {
  char ha[HASH_HEX], hc[HASH_HEX], ho[HASH_HEX];
  hash_name(a, ha);
  int n;
  if (!c) {
    n = snprintf(buf, len, "%s/%s%s%s", dir, ha, fixed_leaf ? "/" : "",
                 fixed_leaf ? fixed_leaf : "");
  } else {
    hash_name(c, hc);
    const char *leaf = fixed_leaf;
    if (leaf_name) {
      hash_name(leaf_name, ho);
      leaf = ho;
    }
    n = snprintf(buf, len, "%s/%s/%s%s%s", dir, ha, hc, leaf ? "/" : "", leaf ? leaf : "");
  }
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *b = p;
  while (n) {
    ssize_t w = write(fd, b, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

int isw_disk_append(int fd, const void *p, size_t n) { return write_all(fd, p, n); }

int isw_disk_incoming_open(const char *dir, char *tmp, size_t tmplen, int *fd) {
  static atomic_uint_fast64_t seq;
  int n = snprintf(tmp, tmplen, "%s/" INCOMING "/%d.%" PRIuFAST64, dir, (int)getpid(),
                   atomic_fetch_add(&seq, 1));
  if (n < 0 || (size_t)n >= tmplen) return -ENAMETOOLONG;
  *fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (*fd < 0) return -errno;
  int rc = write_all(*fd, ISW_RECORD_V2_MAGIC, ISW_RECORD_MAGIC_LEN);
  if (rc) {
    close(*fd);
    *fd = -1;
    unlink(tmp);
  }
  return rc;
}

int isw_disk_incoming_commit(const char *dir, int fd, const char *tmp, const char *a,
                             const char *c, const char *o, const isw_hdrmap *h, size_t len) {
  char p[4096], *tail;
  size_t tlen;
  int rc = make_path(p, sizeof p, dir, a, c, o, NULL);
  if (!rc) rc = isw_record_encode_tail(o, h->n, h->names, h->values, len, &tail, &tlen);
  if (rc) return rc;
  rc = write_all(fd, tail, tlen);
  free(tail);
  if (!rc && rename(tmp, p)) rc = -errno;
  if (rc) log_error("iswift: cannot store %s: %s", p, strerror(-rc));
  return rc;
}

static int save_record(const char *path, const char *name, const isw_hdrmap *h,
                       const unsigned char *data, size_t len) {
  char *head;
  size_t hlen;
  int rc = isw_record_encode_head(name, h->n, h->names, h->values, len, &head, &hlen);
  if (rc) return rc;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = -errno;
  } else {
    rc = write_all(fd, head, hlen);
    if (!rc && len) rc = write_all(fd, data, len);
    if (close(fd) && !rc) rc = -errno;
    if (!rc && rename(tmp, path)) rc = -errno;
    if (rc) unlink(tmp);
  }
  free(head);
  if (rc) log_error("iswift: cannot write %s: %s", path, strerror(-rc));
  return rc;
}

static int ensure_dir(const char *path) {
  if (mkdir(path, 0755) && errno != EEXIST) return -errno;
  return 0;
}

int isw_disk_save_meta(const char *dir, const char *a, const char *c, const isw_hdrmap *h) {
  if (!*dir) return 0;
  char p[4096];
  int rc = make_path(p, sizeof p, dir, a, c, NULL, NULL);
  if (!rc) rc = ensure_dir(p);
  if (!rc) rc = make_path(p, sizeof p, dir, a, c, NULL, c ? ".container" : ".account");
  return rc ? rc : save_record(p, c ? c : a, h, NULL, 0);
}

int isw_disk_save_object(const char *dir, const char *a, const char *c, const char *o,
                         const isw_hdrmap *h, const unsigned char *data, size_t len) {
  if (!*dir) return 0;
  char p[4096];
  int rc = make_path(p, sizeof p, dir, a, c, o, NULL);
  return rc ? rc : save_record(p, o, h, data, len);
}

int isw_disk_remove(const char *dir, const char *a, const char *c, const char *o) {
  if (!*dir) return 0;
  char p[4096];
  int rc = 0;
  if (o) {
    rc = make_path(p, sizeof p, dir, a, c, o, NULL);
    if (!rc && unlink(p)) rc = -errno;
  } else {
    rc = make_path(p, sizeof p, dir, a, c, NULL, c ? ".container" : ".account");
    if (!rc && unlink(p) && errno != ENOENT) rc = -errno;
    if (!rc) rc = make_path(p, sizeof p, dir, a, c, NULL, NULL);
    if (!rc && rmdir(p)) rc = -errno;
  }
  if (rc) log_error("iswift: cannot remove %s: %s", p, strerror(-rc));
  return rc;
}

/* Map a whole record file (bounded) read-only and decode it. */
static int map_record(const char *path, void **map, size_t *map_len, isw_record *rec) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  int rc = fstat(fd, &st) ? -errno : 0;
  if (!rc && (st.st_size < ISW_RECORD_MAGIC_LEN || (uint64_t)st.st_size > MAX_RECORD_FILE))
    rc = -EINVAL;
  *map = NULL;
  if (!rc) {
    *map_len = (size_t)st.st_size;
    *map = mmap(NULL, *map_len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (*map == MAP_FAILED) {
      *map = NULL;
      rc = -errno;
    }
  }
  close(fd);
  if (!rc) rc = isw_record_decode(*map, *map_len, rec);
  if (rc && *map) {
    munmap(*map, *map_len);
    *map = NULL;
  }
  return rc;
}

static int load_one(const char *path, const char *a, const char *c, bool is_object,
                    isw_load_fn fn, void *ctx, char **name_out) {
  void *map;
  size_t map_len = 0;
  isw_record rec;
  int rc = map_record(path, &map, &map_len, &rec);
  if (rc) {
    log_error("iswift: skipping unreadable store file %s: %s", path, strerror(-rc));
    return rc == -ENOMEM ? rc : 1;
  }
  isw_hdrmap h = {.n = rec.nhdrs, .cap = rec.nhdrs, .names = rec.hnames, .values = rec.hvalues};
  if (!c)
    rc = fn(ctx, rec.name, NULL, NULL, &h, NULL, 0, NULL, 0);
  else if (!is_object)
    rc = fn(ctx, a, rec.name, NULL, &h, NULL, 0, NULL, 0);
  else
    rc = fn(ctx, a, c, rec.name, &h, rec.data, rec.data_len, map, map_len);
  if (!rc && name_out && !(*name_out = strdup(rec.name))) rc = -ENOMEM;
  isw_record_free(&rec);
  if (!is_object) munmap(map, map_len);
  return rc;
}

static bool is_hash(const char *n) { return strlen(n) == 64 && strspn(n, "0123456789abcdef") == 64; }

/* Bodies of PUTs that never finished (iswift stopped meanwhile): gone. */
static int incoming_reset(const char *dir) {
  char p[4096];
  snprintf(p, sizeof p, "%s/" INCOMING, dir);
  if (mkdir(p, 0755) && errno != EEXIST) return -errno;
  DIR *d = opendir(p);
  if (!d) return -errno;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' && unlinkat(dirfd(d), e->d_name, 0))
      log_error("iswift: cannot remove %s/%s: %s", p, e->d_name, strerror(errno));
  closedir(d);
  return 0;
}

int isw_disk_load(const char *dir, isw_load_fn fn, void *ctx) {
  if (mkdir(dir, 0755) && errno != EEXIST) return -errno;
  int rc0 = incoming_reset(dir);
  if (rc0) return rc0;
  DIR *d = opendir(dir);
  if (!d) return -errno;
  int rc = 0;
  struct dirent *e;
  char p[4096];
  while (!rc && (e = readdir(d))) {
    if (!is_hash(e->d_name)) continue;
    char *aname = NULL;
    snprintf(p, sizeof p, "%s/%s/.account", dir, e->d_name);
    rc = load_one(p, NULL, NULL, false, fn, ctx, &aname);
    if (rc) {
      rc = rc > 0 ? 0 : rc;
      continue;
    }
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    DIR *ad = opendir(p);
    struct dirent *ce;
    while (!rc && ad && (ce = readdir(ad))) {
      if (!is_hash(ce->d_name)) continue;
      char *cname = NULL;
      snprintf(p, sizeof p, "%s/%s/%s/.container", dir, e->d_name, ce->d_name);
      rc = load_one(p, aname, "", false, fn, ctx, &cname);
      if (rc) {
        rc = rc > 0 ? 0 : rc;
        continue;
      }
      snprintf(p, sizeof p, "%s/%s/%s", dir, e->d_name, ce->d_name);
      DIR *cd = opendir(p);
      struct dirent *oe;
      while (!rc && cd && (oe = readdir(cd))) {
        if (!is_hash(oe->d_name)) continue;
        snprintf(p, sizeof p, "%s/%s/%s/%s", dir, e->d_name, ce->d_name, oe->d_name);
        rc = load_one(p, aname, cname, true, fn, ctx, NULL);
        if (rc > 0) rc = 0;
      }
      if (cd) closedir(cd);
      free(cname);
    }
    if (ad) closedir(ad);
    free(aname);
  }
  closedir(d);
  return rc;
}
