/*
 * passthrough_ll: a FUSE file system that mirrors a source directory, written
 * with the libfuse3 low-level API. It is the yardstick of tests/bench/run.sh:
 * mounted over tmpfs it costs only what FUSE itself costs, so its figures are
 * the limit any FUSE file system on this machine can reach.
 *
 *   passthrough_ll -o source=DIR[,timeout=SECONDS][,writeback][,cache=MODE]
 *                  [-f] [-d] [-s] MOUNTPOINT
 *
 * cache=never|auto|always picks the kernel caching: no attribute/entry cache
 * and direct I/O; attribute/entry cache for `timeout` seconds (default 1);
 * or a day-long cache with page cache kept across opens. writeback asks for
 * the kernel's writeback cache.
 *
 * Every inode the kernel knows is an O_PATH descriptor of the source object,
 * found again by (st_dev, st_ino) in a hash table so that hard links and
 * repeated lookups share one node; the kernel's lookup count decides when it
 * is freed.
 */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct pt_inode {
  struct pt_inode *next; /* hash chain */
  int fd;                /* O_PATH descriptor of the source object */
  dev_t dev;
  ino_t ino;
  uint64_t nlookup; /* kernel references; guarded by pt_fs.lock */
};

enum pt_cache { PT_CACHE_NEVER, PT_CACHE_AUTO, PT_CACHE_ALWAYS };

struct pt_fs {
  pthread_mutex_t lock;
  struct pt_inode root;
  struct pt_inode **buckets;
  size_t nbuckets;
  size_t count;
  /* options */
  char *source;
  char *cache_name;
  double timeout;
  int timeout_set;
  int writeback;
  enum pt_cache cache;
};

struct pt_dir {
  DIR *dp;
  struct dirent *entry; /* read but not yet handed to the kernel */
  off_t offset;
};

static struct pt_fs *pt_fs_of(fuse_req_t req) { return fuse_req_userdata(req); }

static struct pt_inode *pt_inode_of(fuse_req_t req, fuse_ino_t ino) {
  if (ino == FUSE_ROOT_ID)
    return &pt_fs_of(req)->root;
  return (struct pt_inode *)(uintptr_t)ino;
}

static int pt_fd_of(fuse_req_t req, fuse_ino_t ino) { return pt_inode_of(req, ino)->fd; }

static size_t pt_hash(const struct pt_fs *fs, dev_t dev, ino_t ino) {
  uint64_t h = ((uint64_t)ino * 0x9E3779B97F4A7C15ull) ^ (uint64_t)dev;
  return (size_t)(h >> 20) & (fs->nbuckets - 1);
}

/* Doubles the table when it holds more nodes than buckets; the caller holds
 * the lock. On allocation failure the old table stays (only slower). */
static void pt_table_grow(struct pt_fs *fs) {
  size_t old_n = fs->nbuckets;
  struct pt_inode **old = fs->buckets;
  struct pt_inode **nb = calloc(old_n * 2, sizeof(*nb));
  if (nb == NULL)
    return;
  fs->buckets = nb;
  fs->nbuckets = old_n * 2;
  for (size_t i = 0; i < old_n; i++) {
    struct pt_inode *n = old[i];
    while (n != NULL) {
      struct pt_inode *next = n->next;
      size_t h = pt_hash(fs, n->dev, n->ino);
      n->next = nb[h];
      nb[h] = n;
      n = next;
    }
  }
  free(old);
}

static struct pt_inode *pt_table_find(struct pt_fs *fs, dev_t dev, ino_t ino) {
  if (fs->root.dev == dev && fs->root.ino == ino)
    return &fs->root;
  for (struct pt_inode *n = fs->buckets[pt_hash(fs, dev, ino)]; n != NULL; n = n->next)
    if (n->dev == dev && n->ino == ino)
      return n;
  return NULL;
}

static void pt_table_remove(struct pt_fs *fs, struct pt_inode *node) {
  struct pt_inode **p = &fs->buckets[pt_hash(fs, node->dev, node->ino)];
  while (*p != node)
    p = &(*p)->next;
  *p = node->next;
  fs->count--;
}

static void pt_unref(struct pt_fs *fs, struct pt_inode *node, uint64_t n) {
  pthread_mutex_lock(&fs->lock);
  node->nlookup -= n;
  bool gone = node->nlookup == 0 && node != &fs->root;
  if (gone)
    pt_table_remove(fs, node);
  pthread_mutex_unlock(&fs->lock);
  if (gone) {
    close(node->fd);
    free(node);
  }
}

static double pt_entry_timeout(const struct pt_fs *fs) {
  return fs->cache == PT_CACHE_NEVER ? 0.0 : fs->timeout;
}

/* Looks NAME up under PARENT and takes one kernel reference on its node. */
static int pt_lookup_entry(fuse_req_t req, fuse_ino_t parent, const char *name,
                           struct fuse_entry_param *e) {
  struct pt_fs *fs = pt_fs_of(req);
  memset(e, 0, sizeof(*e));
  e->attr_timeout = pt_entry_timeout(fs);
  e->entry_timeout = pt_entry_timeout(fs);

  int fd = openat(pt_fd_of(req, parent), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno;
  if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
    int err = errno;
    close(fd);
    return err;
  }
  pthread_mutex_lock(&fs->lock);
  struct pt_inode *node = pt_table_find(fs, e->attr.st_dev, e->attr.st_ino);
  if (node != NULL) {
    node->nlookup++;
    pthread_mutex_unlock(&fs->lock);
    close(fd);
  } else {
    node = calloc(1, sizeof(*node));
    if (node == NULL) {
      pthread_mutex_unlock(&fs->lock);
      close(fd);
      return ENOMEM;
    }
    node->fd = fd;
    node->dev = e->attr.st_dev;
    node->ino = e->attr.st_ino;
    node->nlookup = 1;
    if (fs->count >= fs->nbuckets)
      pt_table_grow(fs);
    size_t h = pt_hash(fs, node->dev, node->ino);
    node->next = fs->buckets[h];
    fs->buckets[h] = node;
    fs->count++;
    pthread_mutex_unlock(&fs->lock);
  }
  e->ino = node == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)node;
  return 0;
}

static void pt_reply_entry(fuse_req_t req, fuse_ino_t parent, const char *name) {
  struct fuse_entry_param e;
  int err = pt_lookup_entry(req, parent, name, &e);
  if (err != 0)
    fuse_reply_err(req, err);
  else
    fuse_reply_entry(req, &e);
}

/* The /proc path that reopens an O_PATH descriptor with real access. */
static void pt_proc_path(char *buf, size_t len, int fd) {
  snprintf(buf, len, "/proc/self/fd/%d", fd);
}

static void pt_init(void *userdata, struct fuse_conn_info *conn) {
  struct pt_fs *fs = userdata;
  if (fs->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  if (conn->capable & FUSE_CAP_FLOCK_LOCKS)
    conn->want |= FUSE_CAP_FLOCK_LOCKS;
}

static void pt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  pt_reply_entry(req, parent, name);
}

static void pt_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  pt_unref(pt_fs_of(req), pt_inode_of(req, ino), nlookup);
  fuse_reply_none(req);
}

static void pt_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  for (size_t i = 0; i < count; i++)
    pt_unref(pt_fs_of(req), pt_inode_of(req, forgets[i].ino), forgets[i].nlookup);
  fuse_reply_none(req);
}

static void pt_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  struct stat st;
  if (fstatat(pt_fd_of(req, ino), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
    fuse_reply_err(req, errno);
  else
    fuse_reply_attr(req, &st, pt_entry_timeout(pt_fs_of(req)));
}

static void pt_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
                       struct fuse_file_info *fi) {
  int ifd = pt_fd_of(req, ino);
  char path[64];
  pt_proc_path(path, sizeof(path), ifd);
  int rc = 0;

  if (valid & FUSE_SET_ATTR_MODE)
    rc = fi != NULL ? fchmod((int)fi->fh, attr->st_mode) : chmod(path, attr->st_mode);
  if (rc == 0 && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
    uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
    gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
    rc = fchownat(ifd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  }
  if (rc == 0 && (valid & FUSE_SET_ATTR_SIZE))
    rc = fi != NULL ? ftruncate((int)fi->fh, attr->st_size) : truncate(path, attr->st_size);
  if (rc == 0 && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
    struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
    if (valid & FUSE_SET_ATTR_ATIME_NOW)
      tv[0].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_ATIME)
      tv[0] = attr->st_atim;
    if (valid & FUSE_SET_ATTR_MTIME_NOW)
      tv[1].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_MTIME)
      tv[1] = attr->st_mtim;
    rc = fi != NULL ? futimens((int)fi->fh, tv) : utimensat(AT_FDCWD, path, tv, 0);
  }
  if (rc != 0)
    fuse_reply_err(req, errno);
  else
    pt_getattr(req, ino, fi);
}

static void pt_readlink(fuse_req_t req, fuse_ino_t ino) {
  char buf[PATH_MAX + 1];
  ssize_t n = readlinkat(pt_fd_of(req, ino), "", buf, sizeof(buf));
  if (n < 0)
    fuse_reply_err(req, errno);
  else if ((size_t)n == sizeof(buf))
    fuse_reply_err(req, ENAMETOOLONG);
  else {
    buf[n] = '\0';
    fuse_reply_readlink(req, buf);
  }
}

static void pt_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                     dev_t rdev) {
  if (mknodat(pt_fd_of(req, parent), name, mode, rdev) < 0)
    fuse_reply_err(req, errno);
  else
    pt_reply_entry(req, parent, name);
}

static void pt_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  if (mkdirat(pt_fd_of(req, parent), name, mode) < 0)
    fuse_reply_err(req, errno);
  else
    pt_reply_entry(req, parent, name);
}

static void pt_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  if (symlinkat(link, pt_fd_of(req, parent), name) < 0)
    fuse_reply_err(req, errno);
  else
    pt_reply_entry(req, parent, name);
}

static void pt_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  char path[64];
  pt_proc_path(path, sizeof(path), pt_fd_of(req, ino));
  if (linkat(AT_FDCWD, path, pt_fd_of(req, newparent), newname, AT_SYMLINK_FOLLOW) < 0)
    fuse_reply_err(req, errno);
  else
    pt_reply_entry(req, newparent, newname);
}

static void pt_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  fuse_reply_err(req, unlinkat(pt_fd_of(req, parent), name, 0) < 0 ? errno : 0);
}

static void pt_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  fuse_reply_err(req, unlinkat(pt_fd_of(req, parent), name, AT_REMOVEDIR) < 0 ? errno : 0);
}

static void pt_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags) {
  int rc = renameat2(pt_fd_of(req, parent), name, pt_fd_of(req, newparent), newname, flags);
  fuse_reply_err(req, rc < 0 ? errno : 0);
}

/* Open flags for the source file. With the writeback cache the kernel reads
 * pages of files opened write-only and does appends itself. */
static int pt_open_flags(const struct pt_fs *fs, int flags) {
  flags &= ~O_NOFOLLOW;
  if (fs->writeback) {
    if ((flags & O_ACCMODE) == O_WRONLY)
      flags = (flags & ~O_ACCMODE) | O_RDWR;
    flags &= ~O_APPEND;
  }
  return flags | O_CLOEXEC;
}

static void pt_set_file_caching(const struct pt_fs *fs, struct fuse_file_info *fi) {
  if (fs->cache == PT_CACHE_NEVER)
    fi->direct_io = 1;
  else if (fs->cache == PT_CACHE_ALWAYS)
    fi->keep_cache = 1;
}

static void pt_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  struct pt_fs *fs = pt_fs_of(req);
  char path[64];
  pt_proc_path(path, sizeof(path), pt_fd_of(req, ino));
  int fd = open(path, pt_open_flags(fs, fi->flags));
  if (fd < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  fi->fh = (uint64_t)fd;
  pt_set_file_caching(fs, fi);
  if (fuse_reply_open(req, fi) == -ENOENT)
    close(fd); /* the caller went away */
}

static void pt_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi) {
  struct pt_fs *fs = pt_fs_of(req);
  int fd = openat(pt_fd_of(req, parent), name, pt_open_flags(fs, fi->flags | O_CREAT), mode);
  if (fd < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  struct fuse_entry_param e;
  int err = pt_lookup_entry(req, parent, name, &e);
  if (err != 0) {
    close(fd);
    fuse_reply_err(req, err);
    return;
  }
  fi->fh = (uint64_t)fd;
  pt_set_file_caching(fs, fi);
  if (fuse_reply_create(req, &e, fi) == -ENOENT) {
    close(fd);
    pt_unref(fs, pt_inode_of(req, e.ino), 1);
  }
}

static void pt_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  /* An fd buffer lets libfuse splice from the source without a copy. */
  struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
  buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  buf.buf[0].fd = (int)fi->fh;
  buf.buf[0].pos = off;
  fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void pt_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
                         struct fuse_file_info *fi) {
  struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
  out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  out.buf[0].fd = (int)fi->fh;
  out.buf[0].pos = off;
  ssize_t n = fuse_buf_copy(&out, in_buf, 0);
  if (n < 0)
    fuse_reply_err(req, (int)-n);
  else
    fuse_reply_write(req, (size_t)n);
}

static void pt_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  /* Closing a duplicate runs the source's flush (close-time errors, locks)
   * without giving up the descriptor the kernel still uses. */
  int fd = dup((int)fi->fh);
  fuse_reply_err(req, fd < 0 ? errno : (close(fd) < 0 ? errno : 0));
}

static void pt_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  close((int)fi->fh);
  fuse_reply_err(req, 0);
}

static void pt_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  int rc = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
  fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void pt_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  struct pt_dir *d = calloc(1, sizeof(*d));
  if (d == NULL) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  int fd = openat(pt_fd_of(req, ino), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || (d->dp = fdopendir(fd)) == NULL) {
    int err = errno;
    if (fd >= 0)
      close(fd);
    free(d);
    fuse_reply_err(req, err);
    return;
  }
  fi->fh = (uint64_t)(uintptr_t)d;
  if (pt_fs_of(req)->cache == PT_CACHE_ALWAYS)
    fi->cache_readdir = 1;
  if (fuse_reply_open(req, fi) == -ENOENT) {
    closedir(d->dp);
    free(d);
  }
}

static bool pt_is_dot(const char *name) {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* Fills one reply buffer from the directory stream; with PLUS each entry
 * (but . and ..) is looked up, and the lookup undone when it does not fit. */
static void pt_do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                          struct fuse_file_info *fi, bool plus) {
  struct pt_dir *d = (struct pt_dir *)(uintptr_t)fi->fh;
  char *buf = malloc(size);
  if (buf == NULL) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  if (offset != d->offset) {
    seekdir(d->dp, offset);
    d->entry = NULL;
    d->offset = offset;
  }
  size_t used = 0;
  int err = 0;
  for (;;) {
    if (d->entry == NULL) {
      errno = 0;
      d->entry = readdir(d->dp);
      if (d->entry == NULL) {
        err = errno;
        break;
      }
    }
    off_t next = d->entry->d_off;
    const char *name = d->entry->d_name;
    size_t n;
    if (plus) {
      struct fuse_entry_param e = {0};
      if (pt_is_dot(name)) {
        e.attr.st_ino = d->entry->d_ino;
        e.attr.st_mode = (mode_t)d->entry->d_type << 12;
      } else if ((err = pt_lookup_entry(req, ino, name, &e)) != 0) {
        if (err != ENOENT)
          break;
        /* Removed since readdir saw it: leave it out, as a later readdir would. */
        err = 0;
        d->entry = NULL;
        d->offset = next;
        continue;
      }
      n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, next);
      if (n > size - used) {
        if (e.ino != 0)
          pt_unref(pt_fs_of(req), pt_inode_of(req, e.ino), 1);
        break;
      }
    } else {
      struct stat st = {.st_ino = d->entry->d_ino, .st_mode = (mode_t)d->entry->d_type << 12};
      n = fuse_add_direntry(req, buf + used, size - used, name, &st, next);
      if (n > size - used)
        break;
    }
    used += n;
    d->entry = NULL;
    d->offset = next;
  }
  /* An error after some entries is reported on the next call instead. */
  if (err != 0 && used == 0)
    fuse_reply_err(req, err);
  else
    fuse_reply_buf(req, buf, used);
  free(buf);
}

static void pt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                       struct fuse_file_info *fi) {
  pt_do_readdir(req, ino, size, offset, fi, false);
}

static void pt_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                           struct fuse_file_info *fi) {
  pt_do_readdir(req, ino, size, offset, fi, true);
}

static void pt_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  struct pt_dir *d = (struct pt_dir *)(uintptr_t)fi->fh;
  closedir(d->dp);
  free(d);
  fuse_reply_err(req, 0);
}

static void pt_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi) {
  struct pt_dir *d = (struct pt_dir *)(uintptr_t)fi->fh;
  int fd = dirfd(d->dp);
  int rc = datasync ? fdatasync(fd) : fsync(fd);
  fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void pt_statfs(fuse_req_t req, fuse_ino_t ino) {
  struct statvfs sv;
  if (fstatvfs(pt_fd_of(req, ino), &sv) < 0)
    fuse_reply_err(req, errno);
  else
    fuse_reply_statfs(req, &sv);
}

static void pt_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi) {
  int rc = fallocate((int)fi->fh, mode, offset, length);
  fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void pt_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op) {
  fuse_reply_err(req, flock((int)fi->fh, op) < 0 ? errno : 0);
}

static void pt_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi) {
  off_t r = lseek((int)fi->fh, off, whence);
  if (r < 0)
    fuse_reply_err(req, errno);
  else
    fuse_reply_lseek(req, r);
}

static const struct fuse_lowlevel_ops pt_ops = {
    .init = pt_init,
    .lookup = pt_lookup,
    .forget = pt_forget,
    .forget_multi = pt_forget_multi,
    .getattr = pt_getattr,
    .setattr = pt_setattr,
    .readlink = pt_readlink,
    .mknod = pt_mknod,
    .mkdir = pt_mkdir,
    .symlink = pt_symlink,
    .link = pt_link,
    .unlink = pt_unlink,
    .rmdir = pt_rmdir,
    .rename = pt_rename,
    .open = pt_open,
    .create = pt_create,
    .read = pt_read,
    .write_buf = pt_write_buf,
    .flush = pt_flush,
    .release = pt_release,
    .fsync = pt_fsync,
    .opendir = pt_opendir,
    .readdir = pt_readdir,
    .readdirplus = pt_readdirplus,
    .releasedir = pt_releasedir,
    .fsyncdir = pt_fsyncdir,
    .statfs = pt_statfs,
    .fallocate = pt_fallocate,
    .flock = pt_flock,
    .lseek = pt_lseek,
};

#define PT_OPT(t, p, v) {t, offsetof(struct pt_fs, p), v}
static const struct fuse_opt pt_opts[] = {
    PT_OPT("source=%s", source, 0),
    PT_OPT("timeout=%lf", timeout, 0),
    PT_OPT("timeout=", timeout_set, 1),
    PT_OPT("writeback", writeback, 1),
    PT_OPT("cache=%s", cache_name, 0),
    FUSE_OPT_END,
};

static int pt_parse_cache(struct pt_fs *fs) {
  const char *c = fs->cache_name;
  if (c == NULL || strcmp(c, "auto") == 0)
    fs->cache = PT_CACHE_AUTO;
  else if (strcmp(c, "never") == 0)
    fs->cache = PT_CACHE_NEVER;
  else if (strcmp(c, "always") == 0)
    fs->cache = PT_CACHE_ALWAYS;
  else
    return -EINVAL;
  if (!fs->timeout_set)
    fs->timeout = fs->cache == PT_CACHE_ALWAYS ? 86400.0 : 1.0;
  return 0;
}

static void pt_usage(const char *prog) {
  printf("usage: %s -o source=DIR[,timeout=S][,writeback][,cache=never|auto|always] "
         "[options] MOUNTPOINT\n",
         prog);
  fuse_cmdline_help();
  fuse_lowlevel_help();
}

int main(int argc, char *argv[]) {
  struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
  struct fuse_cmdline_opts opts;
  struct pt_fs fs;
  int ret = 1;

  memset(&fs, 0, sizeof(fs));
  pthread_mutex_init(&fs.lock, NULL);
  fs.root.fd = -1;
  if (fuse_parse_cmdline(&args, &opts) != 0)
    return 1;
  if (opts.show_help) {
    pt_usage(argv[0]);
    ret = 0;
    goto out_args;
  }
  if (opts.show_version) {
    fuse_lowlevel_version();
    ret = 0;
    goto out_args;
  }
  if (fuse_opt_parse(&args, &fs, pt_opts, NULL) == -1)
    goto out_args;
  if (opts.mountpoint == NULL || fs.source == NULL) {
    pt_usage(argv[0]);
    goto out_args;
  }
  if (pt_parse_cache(&fs) != 0) {
    fprintf(stderr, "passthrough_ll: bad cache=%s\n", fs.cache_name);
    goto out_args;
  }
  fs.nbuckets = 1024;
  fs.buckets = calloc(fs.nbuckets, sizeof(*fs.buckets));
  fs.root.fd = open(fs.source, O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (fs.buckets == NULL || fs.root.fd < 0 || fstat(fs.root.fd, &st) < 0) {
    fprintf(stderr, "passthrough_ll: source %s: %s\n", fs.source, strerror(errno));
    goto out_args;
  }
  fs.root.dev = st.st_dev;
  fs.root.ino = st.st_ino;
  fs.root.nlookup = 2; /* never freed */

  struct fuse_session *se = fuse_session_new(&args, &pt_ops, sizeof(pt_ops), &fs);
  if (se == NULL)
    goto out_args;
  if (fuse_set_signal_handlers(se) != 0)
    goto out_session;
  if (fuse_session_mount(se, opts.mountpoint) != 0)
    goto out_signals;
  fuse_daemonize(opts.foreground);
  if (opts.singlethread) {
    ret = fuse_session_loop(se);
  } else {
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    if (cfg == NULL) {
      ret = 1;
    } else {
      fuse_loop_cfg_set_clone_fd(cfg, opts.clone_fd);
      /* libfuse 3.14 leaves both at UINT_MAX ("not given") and warns when
       * that is passed on; the loop's own defaults then apply. */
      if (opts.max_threads != UINT_MAX)
        fuse_loop_cfg_set_max_threads(cfg, opts.max_threads);
      if (opts.max_idle_threads != UINT_MAX)
        fuse_loop_cfg_set_idle_threads(cfg, opts.max_idle_threads);
      ret = fuse_session_loop_mt(se, cfg);
      fuse_loop_cfg_destroy(cfg);
    }
  }
  fuse_session_unmount(se);
out_signals:
  fuse_remove_signal_handlers(se);
out_session:
  fuse_session_destroy(se);
out_args:
  free(opts.mountpoint);
  fuse_opt_free_args(&args);
  if (fs.root.fd >= 0)
    close(fs.root.fd);
  free(fs.buckets);
  free(fs.source);
  free(fs.cache_name);
  return ret ? 1 : 0;
}
