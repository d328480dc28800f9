/* ic_fuse: FUSE low-level operations over the inode layer (see ic_fuse.h). */
#define FUSE_USE_VERSION 312
#include "ic_fuse.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "ic_inode_internal.h"
#include "ic_stats.h"
#include "logger.h"
#include "utils.h"

#define FH_BUCKETS 256
#define HOLD_MAX 4
#define RETRY_MAX 1000

typedef struct fh_entry {
  uint64_t fh, ino;
  bool append, dir;
  struct fh_entry *next;
} fh_entry;

struct ic_fs {
  ic_fs_params p;
  char *mount_id, *fsname;
  pthread_mutex_t mu; /* handles */
  fh_entry *handles[FH_BUCKETS];
  struct fuse_session *se;
  char *mountpoint;
  pthread_t loop;
  bool looping;
};

int ic_fuse_errno(int rc) {
  switch (-rc) {
  case ENOENT:
  case ENOTDIR:
  case EISDIR:
  case EEXIST:
  case ENOTEMPTY:
  case ENAMETOOLONG:
  case EINVAL:
  case EPERM:
  case ERANGE:
  case ENODATA:
  case EFBIG:
  case ENOSPC:
  case EMFILE:
  case ENOMEM:
  case EBADF:
  case EACCES:
  case EOPNOTSUPP:
  case ENOSYS:
  case ELOOP:
  case ENXIO: return -rc;
  default: return EIO; /* lost leases, Swift and imgr failures, corrupt objects */
  }
}

/* ---- handles ---- */

static int fh_open(ic_fs *fs, uint64_t ino, bool append, bool dir, uint64_t *fh) {
  fh_entry *e = malloc(sizeof(*e));
  if (!e) return -ENOMEM;
  int rc = ic_volume_nonce(fs->p.vol, &e->fh); /* never repeats, as in the original */
  if (rc) {
    free(e);
    return rc;
  }
  e->ino = ino;
  e->append = append;
  e->dir = dir;
  pthread_mutex_lock(&fs->mu);
  e->next = fs->handles[e->fh % FH_BUCKETS];
  fs->handles[e->fh % FH_BUCKETS] = e;
  pthread_mutex_unlock(&fs->mu);
  *fh = e->fh;
  return 0;
}

/* The handle's inode, checked against the request's inode and kind. */
static int fh_get(ic_fs *fs, uint64_t fh, uint64_t ino, bool dir, bool *append, bool remove) {
  pthread_mutex_lock(&fs->mu);
  fh_entry **pp = &fs->handles[fh % FH_BUCKETS];
  while (*pp && (*pp)->fh != fh) pp = &(*pp)->next;
  fh_entry *e = *pp;
  int rc = (!e || e->ino != ino || e->dir != dir) ? -EBADF : 0;
  if (rc == 0 && append) *append = e->append;
  if (rc == 0 && remove) *pp = e->next;
  pthread_mutex_unlock(&fs->mu);
  if (rc == 0 && remove) free(e);
  return rc;
}

/* ---- holding inodes ---- */

typedef struct held {
  ic_inode *in[HOLD_MAX];
  size_t n;
} held;

static void release_all(ic_fs *fs, held *h) {
  while (h->n > 0) ic_inode_put(fs->p.vol, h->in[--h->n]);
}

static ic_inode *held_find(held *h, uint64_t ino) {
  for (size_t i = 0; i < h->n; i++)
    if (h->in[i]->ino == ino) return h->in[i];
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Lock and load the given inodes (0s and duplicates ignored) in ascending
 * order, with exclusive leases unless `shared`. On failure nothing is held. */
static int hold_mode(ic_fs *fs, const uint64_t *inos, size_t n, bool shared, held *h) {
  uint64_t s[HOLD_MAX];
  size_t m = 0;
  for (size_t i = 0; i < n; i++) s[m++] = inos[i];
  qsort(s, m, sizeof(*s), cmp_u64);
  h->n = 0;
  for (size_t i = 0; i < m; i++) {
    if (s[i] == 0 || (i > 0 && s[i] == s[i - 1])) continue;
    ic_inode *in;
    int rc =
        shared ? ic_inode_get_shared(fs->p.vol, s[i], &in) : ic_inode_get(fs->p.vol, s[i], &in);
    if (rc == 0) {
      rc = ic_inode_load(fs->p.vol, in);
      if (rc) ic_inode_put(fs->p.vol, in);
    }
    if (rc) {
      release_all(fs, h);
      return rc;
    }
    h->in[h->n++] = in;
  }
  return 0;
}

static int hold(ic_fs *fs, const uint64_t *inos, size_t n, held *h) {
  return hold_mode(fs, inos, n, false, h);
}

/* One inode for an operation that changes nothing. */
static int hold_reader(ic_fs *fs, uint64_t ino, held *h) { return hold_mode(fs, &ino, 1, true, h); }

static int lookup_in(ic_fs *fs, ic_inode *dir, const char *name, ic_dirent *e) {
  int rc = ic_dir_lookup(fs->p.vol, dir, name, strlen(name), e);
  if (rc == -ENOENT) {
    e->inode_number = 0;
    rc = 0;
  }
  return rc;
}

/* Hold dirs[0..n), the inodes their names[i] name (found[i].inode_number is
 * 0 when absent) and `extra` (0 = none), consistently: names are looked up
 * again once everything is locked, and the whole thing restarts if one
 * changed meanwhile. */
static int hold_entries(ic_fs *fs, const uint64_t *dirs, const char *const *names, size_t n,
                        uint64_t extra, held *h, ic_dirent *found) {
  for (int attempt = 0; attempt < RETRY_MAX; attempt++) {
    uint64_t inos[HOLD_MAX];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) inos[m++] = dirs[i];
    int rc = hold(fs, inos, m, h);
    for (size_t i = 0; i < n && rc == 0; i++)
      rc = lookup_in(fs, held_find(h, dirs[i]), names[i], &found[i]);
    release_all(fs, h);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) inos[m++] = found[i].inode_number;
    if (extra) inos[m++] = extra;
    rc = hold(fs, inos, m, h);
    if (rc == -ENOENT) continue; /* a named inode went away: look again */
    if (rc) return rc;
    bool same = true;
    for (size_t i = 0; i < n && rc == 0 && same; i++) {
      ic_dirent again;
      rc = lookup_in(fs, held_find(h, dirs[i]), names[i], &again);
      same = again.inode_number == found[i].inode_number;
    }
    if (rc == 0 && same) return 0;
    release_all(fs, h);
    if (rc) return rc;
  }
  return -EIO;
}

/* Check the handle, then hold its inode. */
static int hold_handle(ic_fs *fs, fuse_ino_t ino, const struct fuse_file_info *fi, bool dir,
                       bool *append, bool shared, held *h) {
  int rc = fh_get(fs, fi->fh, ino, dir, append, false);
  uint64_t n = ino;
  return rc ? rc : hold_mode(fs, &n, 1, shared, h);
}

/* ---- attributes ---- */

static double secs(uint64_t ns) { return (double)ns / 1e9; }

static void fill_stat(const ic_inode *in, struct stat *st) {
  ic_attr a;
  ic_inode_attr(in, &a);
  memset(st, 0, sizeof(*st));
  st->st_ino = a.inode_number;
  mode_t type = a.type == ILAYOUT_INODE_TYPE_DIR    ? S_IFDIR
                : a.type == ILAYOUT_INODE_TYPE_FILE ? S_IFREG
                                                    : S_IFLNK;
  st->st_mode = type | (a.mode & IC_INODE_MODE_MASK);
  st->st_nlink = a.nlink;
  st->st_uid = (uid_t)a.uid;
  st->st_gid = (gid_t)a.gid;
  if (a.type == ILAYOUT_INODE_TYPE_FILE) {
    /* Blocks: the bytes of data and extent-map pages the file references
     * (holes and overwritten bytes take none), not ceil(size/512). */
    uint64_t used = 0;
    for (size_t i = 0; i < in->nlayout; i++) used += in->layout[i].bytes_referenced;
    st->st_size = (off_t)a.size;
    st->st_blocks = (blkcnt_t)((used + 511) / 512);
    st->st_blksize = 512;
  } else if (a.type == ILAYOUT_INODE_TYPE_SYMLINK) {
    st->st_size = (off_t)in->symlink_len; /* readlink buffers need it (the original: 0) */
  }
  st->st_mtim.tv_sec = a.mtime_ns / 1000000000;
  st->st_mtim.tv_nsec = a.mtime_ns % 1000000000;
  st->st_atim = st->st_mtim; /* atime is not stored */
  st->st_ctim.tv_sec = a.ctime_ns / 1000000000;
  st->st_ctim.tv_nsec = a.ctime_ns % 1000000000;
}

static void fill_entry(ic_fs *fs, const ic_inode *in, struct fuse_entry_param *e) {
  memset(e, 0, sizeof(*e));
  e->ino = in->ino;
  fill_stat(in, &e->attr);
  e->attr_timeout = secs(fs->p.attr_valid_ns);
  e->entry_timeout = secs(fs->p.entry_valid_ns);
}

/* The held inodes changed together: they join one commit group. */
static void changed_held(ic_fs *fs, held *h) { ic_volume_changed(fs->p.vol, h->in, h->n); }

static void reply_rc(fuse_req_t req, int rc) { fuse_reply_err(req, rc ? ic_fuse_errno(rc) : 0); }

/* ---- operations ----
 * Each op_x_impl is wrapped by TIMED_OP into op_x, which records its
 * duration in the op's Do<Op>Usecs stat and then, holding nothing, commits
 * the dirty set if the op pushed it over its caps. */
#define TIMED_OP(name, stat, params, args)                                                         \
  static void name params {                                                                        \
    uint64_t t0 = ut_now_ns();                                                                     \
    name##_impl args;                                                                              \
    ic_stat_since(stat, t0);                                                                       \
    ic_volume_backpressure();                                                                      \
  }

static void op_init_impl(void *ud, struct fuse_conn_info *conn) {
  ic_fs *fs = ud;
  conn->max_write = fs->p.max_write;
  conn->max_read = fs->p.max_read; /* must match the mount option */
  conn->max_background = fs->p.max_background;
  conn->congestion_threshold = fs->p.congestion_threshold;
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
}

TIMED_OP(op_init, IC_STAT_DoInitUsecs, (void *ud, struct fuse_conn_info *conn), (ud, conn))

static void op_lookup_impl(fuse_req_t req, fuse_ino_t parent, const char *name) {
  ic_fs *fs = fuse_req_userdata(req);
  ic_dirent e;
  held h;
  if (strlen(name) > IC_NAME_MAX) return reply_rc(req, -ENAMETOOLONG); /* no such name */
  int rc = hold_reader(fs, parent, &h);
  if (rc == 0) {
    rc = ic_dir_lookup(fs->p.vol, h.in[0], name, strlen(name), &e);
    release_all(fs, &h); /* one inode at a time */
  }
  if (rc == 0) rc = hold_reader(fs, e.inode_number, &h);
  if (rc) return reply_rc(req, rc);
  struct fuse_entry_param ep;
  fill_entry(fs, h.in[0], &ep);
  release_all(fs, &h);
  fuse_reply_entry(req, &ep);
}

TIMED_OP(op_lookup, IC_STAT_DoLookupUsecs, (fuse_req_t req, fuse_ino_t parent, const char *name),
         (req, parent, name))

/* The inode cache evicts clean inodes by itself (they reload on demand), so
 * the kernel's lookup counts need no bookkeeping. */
static void op_forget_impl(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  (void)ino;
  (void)nlookup;
  fuse_reply_none(req);
}

TIMED_OP(op_forget, IC_STAT_DoForgetUsecs, (fuse_req_t req, fuse_ino_t ino, uint64_t nlookup),
         (req, ino, nlookup))

static void op_forget_multi_impl(fuse_req_t req, size_t count, struct fuse_forget_data *f) {
  (void)count;
  (void)f;
  fuse_reply_none(req);
}

TIMED_OP(op_forget_multi, IC_STAT_DoBatchForgetUsecs,
         (fuse_req_t req, size_t count, struct fuse_forget_data *f), (req, count, f))

static void op_getattr_impl(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  int rc = hold_reader(fs, ino, &h);
  if (rc) return reply_rc(req, rc);
  struct stat st;
  fill_stat(h.in[0], &st);
  release_all(fs, &h);
  fuse_reply_attr(req, &st, secs(fs->p.attr_valid_ns));
}

TIMED_OP(op_getattr, IC_STAT_DoGetAttrUsecs,
         (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))

static void op_setattr_impl(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                            struct fuse_file_info *fi) {
  (void)fi;
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  uint64_t n = ino;
  int rc = hold(fs, &n, 1, &h);
  if (rc) return reply_rc(req, rc);
  ic_inode *in = h.in[0];
  int64_t now = (int64_t)ut_wall_ns();
  if (to_set & FUSE_SET_ATTR_SIZE) {
    rc = in->type == ILAYOUT_INODE_TYPE_DIR
             ? -EISDIR
             : ic_file_truncate(fs->p.vol, in, (uint64_t)attr->st_size);
  }
  if (rc == 0) {
    if (to_set & FUSE_SET_ATTR_MODE) in->mode = attr->st_mode & IC_INODE_MODE_MASK;
    if (to_set & FUSE_SET_ATTR_UID) in->uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) in->gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW)
      in->mtime_ns = now;
    else if (to_set & FUSE_SET_ATTR_MTIME)
      in->mtime_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
    if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_MTIME |
                  FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_CTIME)) {
      in->ctime_ns = now;
      in->dirty = true;
    }
  }
  struct stat st;
  if (rc == 0) fill_stat(in, &st);
  release_all(fs, &h);
  if (rc) return reply_rc(req, rc);
  fuse_reply_attr(req, &st, secs(fs->p.attr_valid_ns));
}

TIMED_OP(op_setattr, IC_STAT_DoSetAttrUsecs,
         (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi),
         (req, ino, attr, to_set, fi))

static void op_readlink_impl(fuse_req_t req, fuse_ino_t ino) {
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  int rc = hold_reader(fs, ino, &h);
  if (rc) return reply_rc(req, rc);
  if (h.in[0]->type != ILAYOUT_INODE_TYPE_SYMLINK) {
    release_all(fs, &h);
    return reply_rc(req, -EINVAL);
  }
  char *target = strdup(h.in[0]->symlink);
  release_all(fs, &h);
  if (!target) return reply_rc(req, -ENOMEM);
  fuse_reply_readlink(req, target);
  free(target);
}

TIMED_OP(op_readlink, IC_STAT_DoReadLinkUsecs, (fuse_req_t req, fuse_ino_t ino), (req, ino))

/* Create name in parent: a new inode of `type` linked there, in one commit
 * group with the parent. On success the new inode stays held in h (the
 * last one) for the caller, which releases everything. */
static int make_entry(fuse_req_t req, fuse_ino_t parent, const char *name, uint8_t type,
                      mode_t mode, const char *target, held *h, ic_inode **out) {
  ic_fs *fs = fuse_req_userdata(req);
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  uint64_t p = parent;
  ic_dirent found;
  int rc = hold_entries(fs, &p, &name, 1, 0, h, &found);
  if (rc) return rc;
  ic_inode *dir = held_find(h, parent);
  if (dir->type != ILAYOUT_INODE_TYPE_DIR)
    rc = -ENOTDIR;
  else if (found.inode_number)
    rc = -EEXIST;
  else if (strlen(name) > IC_NAME_MAX)
    rc = -ENAMETOOLONG;
  ic_inode *in = NULL;
  /* A setgid directory passes its group on, and its setgid bit to subdirectories. */
  uint64_t gid = ctx->gid;
  if (rc == 0 && (dir->mode & S_ISGID)) {
    gid = dir->gid;
    if (type == ILAYOUT_INODE_TYPE_DIR) mode |= S_ISGID;
  }
  if (rc == 0)
    rc = ic_inode_create(fs->p.vol, type, (uint16_t)(mode & ~ctx->umask), ctx->uid, gid, &in);
  if (rc) {
    release_all(fs, h);
    return rc;
  }
  h->in[h->n++] = in; /* a fresh number: no ordering concern */
  ic_dirent e = {in->ino, type};
  size_t len = strlen(name);
  rc = ic_dir_insert(fs->p.vol, dir, name, len, &e);
  if (rc == 0) rc = ic_inode_link_add(in, dir->ino, name, len);
  if (rc == 0 && type == ILAYOUT_INODE_TYPE_DIR) {
    ic_dirent self = {in->ino, ILAYOUT_INODE_TYPE_DIR}, up = {dir->ino, ILAYOUT_INODE_TYPE_DIR};
    rc = ic_dir_insert(fs->p.vol, in, ".", 1, &self);
    if (rc == 0) rc = ic_dir_insert(fs->p.vol, in, "..", 2, &up);
    if (rc == 0) rc = ic_inode_link_add(in, in->ino, ".", 1);
    if (rc == 0) rc = ic_inode_link_add(dir, in->ino, "..", 2);
  }
  if (rc == 0 && target) rc = ic_inode_set_symlink(in, target, strlen(target));
  if (rc == 0) {
    dir->mtime_ns = dir->ctime_ns = (int64_t)ut_wall_ns();
  } else {
    ic_inode_unlinked(in); /* half made: never committed */
  }
  changed_held(fs, h);
  if (rc) {
    release_all(fs, h);
    return rc;
  }
  *out = in;
  return 0;
}

static void reply_made(fuse_req_t req, fuse_ino_t parent, const char *name, uint8_t type,
                       mode_t mode, const char *target) {
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  ic_inode *in;
  int rc = make_entry(req, parent, name, type, mode, target, &h, &in);
  if (rc) return reply_rc(req, rc);
  struct fuse_entry_param ep;
  fill_entry(fs, in, &ep);
  release_all(fs, &h);
  fuse_reply_entry(req, &ep);
}

static void op_mkdir_impl(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  reply_made(req, parent, name, ILAYOUT_INODE_TYPE_DIR, mode, NULL);
}

TIMED_OP(op_mkdir, IC_STAT_DoMkDirUsecs,
         (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode),
         (req, parent, name, mode))

static void op_symlink_impl(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  reply_made(req, parent, name, ILAYOUT_INODE_TYPE_SYMLINK, 0777, link);
}

TIMED_OP(op_symlink, IC_STAT_DoSymLinkUsecs,
         (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name),
         (req, link, parent, name))

/* The format has no type for devices, FIFOs or sockets (ilayout 6.1). */
static void op_mknod_impl(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                          dev_t rdev) {
  (void)rdev;
  if (!S_ISREG(mode)) return reply_rc(req, -EPERM);
  reply_made(req, parent, name, ILAYOUT_INODE_TYPE_FILE, mode, NULL);
}

TIMED_OP(op_mknod, IC_STAT_DoMkNodUsecs,
         (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev),
         (req, parent, name, mode, rdev))

/* Remove name from parent (unlink, rmdir). */
static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, bool rmdir) {
  ic_fs *fs = fuse_req_userdata(req);
  uint64_t p = parent;
  ic_dirent found;
  held h;
  int rc = hold_entries(fs, &p, &name, 1, 0, &h, &found);
  if (rc) return reply_rc(req, rc);
  ic_inode *dir = held_find(&h, parent);
  ic_inode *child = found.inode_number ? held_find(&h, found.inode_number) : NULL;
  size_t len = strlen(name);
  if (dir->type != ILAYOUT_INODE_TYPE_DIR)
    rc = -ENOTDIR;
  else if (!child)
    rc = -ENOENT;
  else if (rmdir && (strcmp(name, ".") == 0))
    rc = -EINVAL;
  else if (rmdir && strcmp(name, "..") == 0)
    rc = -ENOTEMPTY;
  else if (rmdir && child->type != ILAYOUT_INODE_TYPE_DIR)
    rc = -ENOTDIR;
  else if (!rmdir && child->type == ILAYOUT_INODE_TYPE_DIR)
    rc = -EISDIR;
  if (rc == 0 && rmdir) {
    uint64_t n;
    rc = ic_dir_count(fs->p.vol, child, &n);
    if (rc == 0 && n > 2) rc = -ENOTEMPTY;
  }
  if (rc == 0) rc = ic_dir_delete(fs->p.vol, dir, name, len);
  if (rc == 0) rc = ic_inode_link_remove(child, dir->ino, name, len);
  if (rc == 0 && rmdir) {
    rc = ic_inode_link_remove(dir, child->ino, "..", 2);
    if (rc == 0) rc = ic_inode_link_remove(child, child->ino, ".", 1);
  }
  if (rc == 0) {
    dir->mtime_ns = dir->ctime_ns = child->ctime_ns = (int64_t)ut_wall_ns();
    if (child->nlinks == 0) ic_inode_unlinked(child);
  }
  changed_held(fs, &h);
  release_all(fs, &h);
  reply_rc(req, rc);
}

static void op_unlink_impl(fuse_req_t req, fuse_ino_t parent, const char *name) {
  remove_entry(req, parent, name, false);
}

TIMED_OP(op_unlink, IC_STAT_DoUnlinkUsecs, (fuse_req_t req, fuse_ino_t parent, const char *name),
         (req, parent, name))

static void op_rmdir_impl(fuse_req_t req, fuse_ino_t parent, const char *name) {
  remove_entry(req, parent, name, true);
}

TIMED_OP(op_rmdir, IC_STAT_DoRmDirUsecs, (fuse_req_t req, fuse_ino_t parent, const char *name),
         (req, parent, name))

/* Point directory d's existing entry `name` at inode `to`, which gets the
 * link (d, name); a directory `to` that came from parent `was` also gets its
 * ".." pointed at d, and its ".." link moves from `was` to d. */
static int repoint_entry(ic_fs *fs, ic_inode *d, const char *name, ic_inode *to, ic_inode *was) {
  size_t len = strlen(name);
  ic_dirent e = {to->ino, to->type};
  int rc = ic_dir_delete(fs->p.vol, d, name, len);
  if (rc == 0) rc = ic_dir_insert(fs->p.vol, d, name, len, &e);
  if (rc == 0) rc = ic_inode_link_add(to, d->ino, name, len);
  if (rc == 0 && to->type == ILAYOUT_INODE_TYPE_DIR && was != d) {
    ic_dirent up = {d->ino, ILAYOUT_INODE_TYPE_DIR};
    rc = ic_dir_delete(fs->p.vol, to, "..", 2);
    if (rc == 0) rc = ic_dir_insert(fs->p.vol, to, "..", 2, &up);
    if (rc == 0) rc = ic_inode_link_remove(was, to->ino, "..", 2);
    if (rc == 0) rc = ic_inode_link_add(d, to->ino, "..", 2);
  }
  return rc;
}

/* Hold a rename's two directories and the inodes their names name:
 * in[0] old dir, in[1] new dir, in[2] and in[3] the named inodes (NULL when
 * absent). */
static int hold_rename(ic_fs *fs, fuse_ino_t olddir, const char *oldname, fuse_ino_t newdir,
                       const char *newname, held *h, ic_inode *in[4]) {
  uint64_t dirs[2] = {olddir, newdir};
  const char *names[2] = {oldname, newname};
  ic_dirent found[2];
  int rc = hold_entries(fs, dirs, names, 2, 0, h, found);
  if (rc) return rc;
  in[0] = held_find(h, olddir);
  in[1] = held_find(h, newdir);
  for (int i = 0; i < 2; i++)
    in[2 + i] = found[i].inode_number ? held_find(h, found[i].inode_number) : NULL;
  return 0;
}

/* RENAME_EXCHANGE: both names exist and swap inodes (any types). */
static void exchange_entries(fuse_req_t req, fuse_ino_t olddir, const char *oldname,
                             fuse_ino_t newdir, const char *newname) {
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  ic_inode *in[4];
  int rc = hold_rename(fs, olddir, oldname, newdir, newname, &h, in);
  if (rc) return reply_rc(req, rc);
  ic_inode *od = in[0], *nd = in[1], *a = in[2], *b = in[3];
  if (od->type != ILAYOUT_INODE_TYPE_DIR || nd->type != ILAYOUT_INODE_TYPE_DIR)
    rc = -ENOTDIR;
  else if (!a || !b)
    rc = -ENOENT;
  if (rc == 0 && a != b) {
    rc = ic_inode_link_remove(a, od->ino, oldname, strlen(oldname));
    if (rc == 0) rc = ic_inode_link_remove(b, nd->ino, newname, strlen(newname));
    if (rc == 0) rc = repoint_entry(fs, nd, newname, a, od);
    if (rc == 0) rc = repoint_entry(fs, od, oldname, b, nd);
    if (rc == 0) {
      int64_t now = (int64_t)ut_wall_ns();
      od->mtime_ns = od->ctime_ns = nd->mtime_ns = nd->ctime_ns = a->ctime_ns = b->ctime_ns = now;
    }
  }
  changed_held(fs, &h);
  release_all(fs, &h);
  reply_rc(req, rc);
}

static void op_rename_impl(fuse_req_t req, fuse_ino_t olddir, const char *oldname,
                           fuse_ino_t newdir, const char *newname, unsigned int flags) {
  ic_fs *fs = fuse_req_userdata(req);
  if (flags == RENAME_EXCHANGE) return exchange_entries(req, olddir, oldname, newdir, newname);
  if (flags & ~RENAME_NOREPLACE) return reply_rc(req, -EINVAL); /* WHITEOUT, both */
  held h;
  ic_inode *in[4];
  int rc = hold_rename(fs, olddir, oldname, newdir, newname, &h, in);
  if (rc) return reply_rc(req, rc);
  ic_inode *od = in[0], *nd = in[1], *src = in[2], *dst = in[3];
  size_t olen = strlen(oldname), nlen = strlen(newname);
  bool src_dir = src && src->type == ILAYOUT_INODE_TYPE_DIR;
  if (od->type != ILAYOUT_INODE_TYPE_DIR || nd->type != ILAYOUT_INODE_TYPE_DIR)
    rc = -ENOTDIR;
  else if (!src)
    rc = -ENOENT;
  else if (nlen > IC_NAME_MAX)
    rc = -ENAMETOOLONG;
  else if (dst && (flags & RENAME_NOREPLACE))
    rc = -EEXIST;
  else if (dst && src_dir && dst->type != ILAYOUT_INODE_TYPE_DIR)
    rc = -ENOTDIR;
  else if (dst && !src_dir && dst->type == ILAYOUT_INODE_TYPE_DIR)
    rc = -EISDIR;
  if (rc || src == dst) { /* same inode (or same entry): nothing to do */
    release_all(fs, &h);
    return reply_rc(req, rc);
  }
  if (dst && src_dir) {
    uint64_t n;
    rc = ic_dir_count(fs->p.vol, dst, &n);
    if (rc == 0 && n > 2) rc = -ENOTEMPTY;
  }
  /* Replace: the old target loses its entry (and, for a dir, its dots). */
  if (rc == 0 && dst) {
    rc = ic_dir_delete(fs->p.vol, nd, newname, nlen);
    if (rc == 0) rc = ic_inode_link_remove(dst, nd->ino, newname, nlen);
    if (rc == 0 && src_dir) {
      rc = ic_inode_link_remove(nd, dst->ino, "..", 2);
      if (rc == 0) rc = ic_inode_link_remove(dst, dst->ino, ".", 1);
    }
  }
  ic_dirent moved = {src->ino, src->type}; /* the entry keeps the inode's type */
  if (rc == 0) rc = ic_dir_delete(fs->p.vol, od, oldname, olen);
  if (rc == 0) rc = ic_dir_insert(fs->p.vol, nd, newname, nlen, &moved);
  if (rc == 0) rc = ic_inode_link_remove(src, od->ino, oldname, olen);
  if (rc == 0) rc = ic_inode_link_add(src, nd->ino, newname, nlen);
  if (rc == 0 && src_dir && od != nd) {
    ic_dirent up = {nd->ino, ILAYOUT_INODE_TYPE_DIR};
    rc = ic_dir_delete(fs->p.vol, src, "..", 2);
    if (rc == 0) rc = ic_dir_insert(fs->p.vol, src, "..", 2, &up);
    if (rc == 0) rc = ic_inode_link_remove(od, src->ino, "..", 2);
    if (rc == 0) rc = ic_inode_link_add(nd, src->ino, "..", 2);
  }
  if (rc == 0) {
    int64_t now = (int64_t)ut_wall_ns();
    od->mtime_ns = od->ctime_ns = nd->mtime_ns = nd->ctime_ns = src->ctime_ns = now;
    if (dst) dst->ctime_ns = now; /* it lost a link */
    if (dst && dst->nlinks == 0) ic_inode_unlinked(dst);
  }
  changed_held(fs, &h);
  release_all(fs, &h);
  reply_rc(req, rc);
}

TIMED_OP(op_rename, IC_STAT_DoRenameUsecs,
         (fuse_req_t req, fuse_ino_t olddir, const char *oldname, fuse_ino_t newdir,
          const char *newname, unsigned int flags),
         (req, olddir, oldname, newdir, newname, flags))

static void op_link_impl(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                         const char *newname) {
  ic_fs *fs = fuse_req_userdata(req);
  uint64_t p = newparent;
  ic_dirent found;
  held h;
  int rc = hold_entries(fs, &p, &newname, 1, ino, &h, &found);
  if (rc) return reply_rc(req, rc);
  ic_inode *dir = held_find(&h, newparent), *in = held_find(&h, ino);
  size_t len = strlen(newname);
  if (dir->type != ILAYOUT_INODE_TYPE_DIR)
    rc = -ENOTDIR;
  else if (in->type == ILAYOUT_INODE_TYPE_DIR)
    rc = -EPERM;
  else if (found.inode_number)
    rc = -EEXIST;
  ic_dirent e = {in->ino, in->type};
  if (rc == 0) rc = ic_dir_insert(fs->p.vol, dir, newname, len, &e);
  if (rc == 0) rc = ic_inode_link_add(in, dir->ino, newname, len);
  if (rc == 0) {
    dir->mtime_ns = dir->ctime_ns = in->ctime_ns = (int64_t)ut_wall_ns();
  }
  changed_held(fs, &h);
  struct fuse_entry_param ep;
  if (rc == 0) fill_entry(fs, in, &ep);
  release_all(fs, &h);
  if (rc) return reply_rc(req, rc);
  fuse_reply_entry(req, &ep);
}

TIMED_OP(op_link, IC_STAT_DoLinkUsecs,
         (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname),
         (req, ino, newparent, newname))

/* Open an inode that is held: O_TRUNC truncates for real (Size 0), then
 * imgr counts the open and a handle is made. */
static int open_held(ic_fs *fs, ic_inode *in, struct fuse_file_info *fi) {
  if (in->type == ILAYOUT_INODE_TYPE_DIR) return -EISDIR;
  if (in->type != ILAYOUT_INODE_TYPE_FILE) return -ELOOP;
  int rc = 0;
  if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY)
    rc = ic_file_truncate(fs->p.vol, in, 0);
  if (rc == 0) rc = ic_inode_open(fs->p.vol, in);
  uint64_t fh;
  if (rc == 0) {
    rc = fh_open(fs, in->ino, (fi->flags & O_APPEND) != 0, false, &fh);
    if (rc) (void)ic_inode_close(fs->p.vol, in);
  }
  if (rc == 0) fi->fh = fh;
  return rc;
}

static void op_open_impl(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  uint64_t n = ino;
  bool trunc = (fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY;
  int rc = hold_mode(fs, &n, 1, !trunc, &h);
  if (rc == 0) {
    rc = open_held(fs, h.in[0], fi);
    release_all(fs, &h);
  }
  if (rc) return reply_rc(req, rc);
  fuse_reply_open(req, fi);
}

TIMED_OP(op_open, IC_STAT_DoOpenUsecs, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
         (req, ino, fi))

static void op_create_impl(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                           struct fuse_file_info *fi) {
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  ic_inode *in;
  int rc = make_entry(req, parent, name, ILAYOUT_INODE_TYPE_FILE, mode, NULL, &h, &in);
  if (rc == -EEXIST && !(fi->flags & O_EXCL)) { /* O_CREAT on an existing name: open it */
    uint64_t p = parent;
    ic_dirent found;
    rc = hold_entries(fs, &p, &name, 1, 0, &h, &found);
    in = rc == 0 && found.inode_number ? held_find(&h, found.inode_number) : NULL;
    if (rc == 0 && !in) {
      release_all(fs, &h);
      rc = -ENOENT; /* removed meanwhile; the kernel retries the lookup */
    }
  }
  if (rc) return reply_rc(req, rc);
  rc = open_held(fs, in, fi);
  struct fuse_entry_param ep;
  if (rc == 0) fill_entry(fs, in, &ep);
  release_all(fs, &h);
  if (rc) return reply_rc(req, rc);
  fuse_reply_create(req, &ep, fi);
}

TIMED_OP(op_create, IC_STAT_DoCreateUsecs,
         (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
          struct fuse_file_info *fi),
         (req, parent, name, mode, fi))

static void op_read_impl(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                         struct fuse_file_info *fi) {
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  int rc = hold_handle(fs, ino, fi, false, NULL, true, &h);
  if (rc) return reply_rc(req, rc);
  char *buf = malloc(size ? size : 1);
  size_t got = 0;
  rc = buf ? ic_file_read(fs->p.vol, h.in[0], (uint64_t)off, size, buf, &got) : -ENOMEM;
  release_all(fs, &h);
  if (rc == 0) {
    ic_stat_add(IC_STAT_DoReadBytes, got);
    fuse_reply_buf(req, buf, got);
  } else {
    reply_rc(req, rc);
  }
  free(buf);
}

TIMED_OP(op_read, IC_STAT_DoReadUsecs,
         (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
         (req, ino, size, off, fi))

static void op_write_impl(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                          struct fuse_file_info *fi) {
  ic_fs *fs = fuse_req_userdata(req);
  bool append = false;
  held h;
  int rc = hold_handle(fs, ino, fi, false, &append, false, &h);
  if (rc) return reply_rc(req, rc);
  uint64_t at = append ? h.in[0]->size : (uint64_t)off;
  rc = ic_file_write(fs->p.vol, h.in[0], at, buf, size);
  release_all(fs, &h);
  if (rc) return reply_rc(req, rc);
  ic_stat_add(IC_STAT_DoWriteBytes, size);
  fuse_reply_write(req, size);
}

TIMED_OP(op_write, IC_STAT_DoWriteUsecs,
         (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
          struct fuse_file_info *fi),
         (req, ino, buf, size, off, fi))

/* Commit an inode's changes with their group (FSYNC, FSYNCDIR); with
 * `checkpoint`, imgr then makes them durable (Flush). */
static int flush_ino(ic_fs *fs, uint64_t ino, bool checkpoint) {
  int rc = ic_volume_flush(fs->p.vol, ino);
  if (rc == 0 && checkpoint) {
    ic_mount_id_req req = {fs->mount_id};
    ic_rpc_err err = {{0}};
    rc = fs->p.imgr->flush(fs->p.imgr_ctx, &req, &err);
    if (rc) log_error("iclient: Flush failed: %s", err.msg);
  }
  return rc;
}

/* close(): write-back, nothing to do (fsync commits; other clients see the
 * changes through the lease interrupts). */
static void op_flush_impl(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  ic_fs *fs = fuse_req_userdata(req);
  reply_rc(req, fh_get(fs, fi->fh, ino, false, NULL, false));
}

TIMED_OP(op_flush, IC_STAT_DoFlushUsecs,
         (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))

/* FSYNC, FSYNCDIR: check the handle, then commit (with imgr's checkpoint
 * unless only the data was asked for). */
static void fsync_common(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi,
                         bool dir) {
  ic_fs *fs = fuse_req_userdata(req);
  int rc = fh_get(fs, fi->fh, ino, dir, NULL, false);
  if (rc == 0) rc = flush_ino(fs, ino, !datasync);
  reply_rc(req, rc);
}

static void op_fsync_impl(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  fsync_common(req, ino, datasync, fi, false);
}

TIMED_OP(op_fsync, IC_STAT_DoFSyncUsecs,
         (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi),
         (req, ino, datasync, fi))

static void op_fsyncdir_impl(fuse_req_t req, fuse_ino_t ino, int datasync,
                             struct fuse_file_info *fi) {
  fsync_common(req, ino, datasync, fi, true);
}

TIMED_OP(op_fsyncdir, IC_STAT_DoFSyncDirUsecs,
         (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi),
         (req, ino, datasync, fi))

static void release_common(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, bool dir) {
  ic_fs *fs = fuse_req_userdata(req);
  int rc = fh_get(fs, fi->fh, ino, dir, NULL, true);
  held h;
  if (rc == 0) rc = hold_reader(fs, ino, &h);
  if (rc == 0) {
    rc = ic_inode_close(fs->p.vol, h.in[0]);
    release_all(fs, &h);
  }
  reply_rc(req, rc);
}

static void op_release_impl(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  release_common(req, ino, fi, false);
}

TIMED_OP(op_release, IC_STAT_DoReleaseUsecs,
         (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))

static void op_releasedir_impl(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  release_common(req, ino, fi, true);
}

TIMED_OP(op_releasedir, IC_STAT_DoReleaseDirUsecs,
         (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))

static void op_opendir_impl(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  ic_fs *fs = fuse_req_userdata(req);
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_APPEND)) return reply_rc(req, -EACCES);
  held h;
  int rc = hold_reader(fs, ino, &h);
  if (rc) return reply_rc(req, rc);
  if (h.in[0]->type != ILAYOUT_INODE_TYPE_DIR) rc = -ENOTDIR;
  if (rc == 0) rc = ic_inode_open(fs->p.vol, h.in[0]);
  uint64_t fh;
  if (rc == 0) {
    rc = fh_open(fs, ino, false, true, &fh);
    if (rc) (void)ic_inode_close(fs->p.vol, h.in[0]);
  }
  release_all(fs, &h);
  if (rc) return reply_rc(req, rc);
  fi->fh = fh;
  fuse_reply_open(req, fi);
}

TIMED_OP(op_opendir, IC_STAT_DoOpenDirUsecs,
         (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi), (req, ino, fi))

/* Entry i of a held directory: 0, 1 past the last one, or a negative errno. */
static int entry_or_end(ic_fs *fs, ic_inode *dir, uint64_t i, char name[IC_NAME_MAX + 1],
                        size_t *len, ic_dirent *e) {
  int rc = ic_dir_entry_at(fs->p.vol, dir, i, name, len, e);
  return rc == -ENOENT ? 1 : rc;
}

/* Offsets are entry indexes in name order; entry k carries offset k+1. */
static void op_readdir_impl(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                            struct fuse_file_info *fi) {
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  int rc = hold_handle(fs, ino, fi, true, NULL, true, &h);
  if (rc) return reply_rc(req, rc);
  char *buf = malloc(size ? size : 1);
  size_t used = 0;
  if (!buf) rc = -ENOMEM;
  for (uint64_t i = (uint64_t)off; rc == 0; i++) {
    char name[IC_NAME_MAX + 1];
    size_t len;
    ic_dirent e;
    rc = entry_or_end(fs, h.in[0], i, name, &len, &e);
    if (rc) {
      rc = rc > 0 ? 0 : rc;
      break;
    }
    struct stat st = {0};
    st.st_ino = e.inode_number;
    st.st_mode = (e.inode_type == ILAYOUT_INODE_TYPE_DIR    ? S_IFDIR
                  : e.inode_type == ILAYOUT_INODE_TYPE_FILE ? S_IFREG
                                                            : S_IFLNK);
    size_t need = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)(i + 1));
    if (need > size - used) break;
    used += need;
  }
  release_all(fs, &h);
  if (rc == 0)
    fuse_reply_buf(req, buf, used);
  else
    reply_rc(req, rc);
  free(buf);
}

TIMED_OP(op_readdir, IC_STAT_DoReadDirUsecs,
         (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
         (req, ino, size, off, fi))

/* An entry READDIRPLUS collected: its index, inode and name (in an arena). */
typedef struct plus_entry {
  uint64_t index;
  ic_dirent e;
  size_t name_at;
} plus_entry;

static bool dot_or_dotdot(const char *name) {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* READDIRPLUS: readdir with each child's attributes, which saves the kernel
 * a LOOKUP per name (ls -l). The names that fit are collected with the
 * directory held; then each child is held alone, one inode at a time as in
 * lookup (holding the directory too would take locks out of order); a child
 * that went away meanwhile is left out. The kernel takes no lookup count for
 * "." and "..", so they carry no inode. */
static void op_readdirplus_impl(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                                struct fuse_file_info *fi) {
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  int rc = hold_handle(fs, ino, fi, true, NULL, true, &h);
  if (rc) return reply_rc(req, rc);
  size_t cap = size / fuse_add_direntry_plus(req, NULL, 0, "", NULL, 0) + 1;
  plus_entry *ents = malloc(cap * sizeof(*ents));
  char *names = malloc(size + cap); /* each name is shorter than its entry */
  char *buf = malloc(size ? size : 1);
  size_t n = 0, est = 0, names_used = 0;
  if (!ents || !names || !buf) rc = -ENOMEM;
  for (uint64_t i = (uint64_t)off; rc == 0 && n < cap; i++) {
    char name[IC_NAME_MAX + 1];
    size_t len;
    ic_dirent e;
    rc = entry_or_end(fs, h.in[0], i, name, &len, &e);
    if (rc) {
      rc = rc > 0 ? 0 : rc;
      break;
    }
    size_t need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
    if (need > size - est) break;
    est += need;
    memcpy(names + names_used, name, len + 1);
    ents[n++] = (plus_entry){i, e, names_used};
    names_used += len + 1;
  }
  release_all(fs, &h);
  size_t used = 0;
  for (size_t k = 0; k < n && rc == 0; k++) {
    const char *name = names + ents[k].name_at;
    struct fuse_entry_param ep;
    memset(&ep, 0, sizeof(ep));
    if (dot_or_dotdot(name)) {
      ep.attr.st_ino = ents[k].e.inode_number;
      ep.attr.st_mode = S_IFDIR;
    } else {
      int hrc = hold_reader(fs, ents[k].e.inode_number, &h);
      if (hrc == -ENOENT) continue;
      if (hrc) {
        rc = used ? 0 : hrc; /* return what is there; the error comes next time */
        break;
      }
      fill_entry(fs, h.in[0], &ep);
      release_all(fs, &h);
    }
    used += fuse_add_direntry_plus(req, buf + used, size - used, name, &ep,
                                   (off_t)(ents[k].index + 1));
  }
  if (rc == 0)
    fuse_reply_buf(req, buf, used);
  else
    reply_rc(req, rc);
  free(buf);
  free(names);
  free(ents);
}

TIMED_OP(op_readdirplus, IC_STAT_DoReadDirPlusUsecs,
         (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
         (req, ino, size, off, fi))

static void op_statfs_impl(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  ic_fs *fs = fuse_req_userdata(req);
  ic_mount_id_req r = {fs->mount_id};
  ic_volume_status_reply vs;
  ic_rpc_err err = {{0}};
  int rc = fs->p.imgr->volume_status(fs->p.imgr_ctx, &r, &vs, &err);
  if (rc) {
    log_error("iclient: VolumeStatus failed: %s", err.msg);
    return reply_rc(req, rc);
  }
  struct statvfs st = {0};
  uint64_t bs = fs->p.block_size;
  st.f_bsize = st.f_frsize = bs;
  /* Swift has no fixed capacity: report 1 PiB free instead of 2^64-1. */
  uint64_t free_blocks = (UINT64_C(1) << 50) / bs;
  st.f_blocks = (vs.bytes_written + bs - 1) / bs + free_blocks;
  st.f_bfree = st.f_bavail = free_blocks;
  st.f_files = vs.num_inodes + (UINT64_C(1) << 32);
  st.f_ffree = st.f_favail = UINT64_C(1) << 32;
  st.f_namemax = IC_NAME_MAX;
  fuse_reply_statfs(req, &st);
}

TIMED_OP(op_statfs, IC_STAT_DoStatFSUsecs, (fuse_req_t req, fuse_ino_t ino), (req, ino))

static void op_setxattr_impl(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                             size_t size, int flags) {
  ic_fs *fs = fuse_req_userdata(req);
  int f = 0;
  if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) return reply_rc(req, -EOPNOTSUPP);
  if (flags & XATTR_CREATE) f |= IC_XATTR_CREATE;
  if (flags & XATTR_REPLACE) f |= IC_XATTR_REPLACE;
  held h;
  uint64_t n = ino;
  int rc = hold(fs, &n, 1, &h);
  if (rc) return reply_rc(req, rc);
  rc = ic_inode_xattr_set(h.in[0], name, value, size, f);
  if (rc == 0) {
    h.in[0]->ctime_ns = (int64_t)ut_wall_ns(); /* an attribute change: ctime only */
  }
  release_all(fs, &h);
  reply_rc(req, rc);
}

TIMED_OP(op_setxattr, IC_STAT_DoSetXAttrUsecs,
         (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
          int flags),
         (req, ino, name, value, size, flags))

/* getxattr and listxattr: size 0 asks for the length. */
static void xattr_reply(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  int rc = hold_reader(fs, ino, &h);
  if (rc) return reply_rc(req, rc);
  char *buf = size ? malloc(size) : NULL;
  size_t len = 0;
  if (size && !buf)
    rc = -ENOMEM;
  else if (name)
    rc = ic_inode_xattr_get(h.in[0], name, buf, size, &len);
  else
    rc = ic_inode_xattr_list(h.in[0], buf, size, &len);
  release_all(fs, &h);
  if (rc)
    reply_rc(req, rc);
  else if (size == 0)
    fuse_reply_xattr(req, len);
  else
    fuse_reply_buf(req, buf, len);
  free(buf);
}

static void op_getxattr_impl(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  xattr_reply(req, ino, name, size);
}

TIMED_OP(op_getxattr, IC_STAT_DoGetXAttrUsecs,
         (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size), (req, ino, name, size))

static void op_listxattr_impl(fuse_req_t req, fuse_ino_t ino, size_t size) {
  xattr_reply(req, ino, NULL, size);
}

TIMED_OP(op_listxattr, IC_STAT_DoListXAttrUsecs, (fuse_req_t req, fuse_ino_t ino, size_t size),
         (req, ino, size))

static void op_removexattr_impl(fuse_req_t req, fuse_ino_t ino, const char *name) {
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  uint64_t n = ino;
  int rc = hold(fs, &n, 1, &h);
  if (rc) return reply_rc(req, rc);
  rc = ic_inode_xattr_remove(h.in[0], name);
  if (rc == 0) {
    h.in[0]->ctime_ns = (int64_t)ut_wall_ns(); /* an attribute change: ctime only */
  }
  release_all(fs, &h);
  reply_rc(req, rc);
}

TIMED_OP(op_removexattr, IC_STAT_DoRemoveXAttrUsecs,
         (fuse_req_t req, fuse_ino_t ino, const char *name), (req, ino, name))

/* Mode 0 extends Size (holes read as zeros: nothing to allocate),
 * KEEP_SIZE alone does nothing, PUNCH_HOLE|KEEP_SIZE unmaps the range. */
static void op_fallocate_impl(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                              struct fuse_file_info *fi) {
  ic_fs *fs = fuse_req_userdata(req);
  int rc = 0;
  if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE &&
      mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
    rc = -EOPNOTSUPP;
  if (rc == 0 && (off < 0 || len <= 0)) rc = -EINVAL;
  held h;
  if (rc == 0) rc = hold_handle(fs, ino, fi, false, NULL, false, &h);
  if (rc) return reply_rc(req, rc);
  ic_inode *in = h.in[0];
  uint64_t end = (uint64_t)off + (uint64_t)len;
  if (mode == 0 && end > in->size)
    rc = ic_file_truncate(fs->p.vol, in, end);
  else if (mode & FALLOC_FL_PUNCH_HOLE)
    rc = ic_file_punch_hole(fs->p.vol, in, (uint64_t)off, (uint64_t)len);
  release_all(fs, &h);
  reply_rc(req, rc);
}

TIMED_OP(op_fallocate, IC_STAT_DoFAllocateUsecs,
         (fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
          struct fuse_file_info *fi),
         (req, ino, mode, off, len, fi))

/* The kernel sends only SEEK_DATA and SEEK_HOLE here. */
static void op_lseek_impl(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                          struct fuse_file_info *fi) {
  ic_fs *fs = fuse_req_userdata(req);
  held h;
  int rc = whence == SEEK_DATA || whence == SEEK_HOLE ? 0 : -EINVAL;
  if (rc == 0 && off < 0) rc = -ENXIO;
  if (rc == 0) rc = hold_handle(fs, ino, fi, false, NULL, true, &h);
  uint64_t pos = 0;
  if (rc == 0) {
    rc = ic_file_seek_data(fs->p.vol, h.in[0], (uint64_t)off, whence == SEEK_HOLE, &pos);
    release_all(fs, &h);
  }
  if (rc)
    reply_rc(req, rc);
  else
    fuse_reply_lseek(req, (off_t)pos);
}

TIMED_OP(op_lseek, IC_STAT_DoLSeekUsecs,
         (fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi),
         (req, ino, off, whence, fi))

/*
 * Not implemented (libfuse answers ENOSYS, and the kernel then falls back):
 * getlk/setlk/flock (kernel-local locks), access (default_permissions),
 * bmap, ioctl, poll, copy_file_range,
 * retrieve_reply, write_buf.
 */
static const struct fuse_lowlevel_ops OPS = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .create = op_create,
    .fallocate = op_fallocate,
    .lseek = op_lseek,
};

/* ---- lifetime and mounting ---- */

int ic_fs_create(const ic_fs_params *p, ic_fs **out) {
  if (!p->vol || !p->imgr || !p->mount_id || !p->fsname || p->block_size == 0) return -EINVAL;
  ic_fs *fs = calloc(1, sizeof(*fs));
  if (!fs) return -ENOMEM;
  fs->p = *p;
  fs->mount_id = strdup(p->mount_id);
  fs->fsname = strdup(p->fsname);
  if (!fs->mount_id || !fs->fsname) {
    free(fs->mount_id);
    free(fs->fsname);
    free(fs);
    return -ENOMEM;
  }
  pthread_mutex_init(&fs->mu, NULL);
  *out = fs;
  return 0;
}

void ic_fs_destroy(ic_fs *fs) {
  if (!fs) return;
  for (size_t i = 0; i < FH_BUCKETS; i++)
    for (fh_entry *e = fs->handles[i], *next; e; e = next) {
      next = e->next;
      free(e);
    }
  pthread_mutex_destroy(&fs->mu);
  free(fs->mount_id);
  free(fs->fsname);
  free(fs->mountpoint);
  free(fs);
}

void ic_fs_invalidate(ic_fs *fs, uint64_t ino) {
  if (!fs || !fs->looping) return;
  /* -ENOENT: the kernel has nothing cached for it; anything else only
   * means the attribute timeout will do it. */
  int rc = fuse_lowlevel_notify_inval_inode(fs->se, (fuse_ino_t)ino, 0, 0);
  if (rc && rc != -ENOENT)
    log_warn("iclient: invalidating inode %016llX in the kernel failed: %d",
             (unsigned long long)ino, rc);
}

void ic_fs_invalidate_entry(ic_fs *fs, uint64_t parent, const char *name, size_t len) {
  if (!fs || !fs->looping) return;
  int rc = fuse_lowlevel_notify_inval_entry(fs->se, (fuse_ino_t)parent, name, len);
  if (rc && rc != -ENOENT)
    log_warn("iclient: invalidating entry %.*s of %016llX in the kernel failed: %d", (int)len,
             name, (unsigned long long)parent, rc);
}

int ic_mount_point_prepare(const char *dir) {
  struct stat st;
  if (stat(dir, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
  if (errno != ENOTCONN) return -errno;
  log_warn("iclient: %s is a stale FUSE mount: detaching it", dir);
  if (umount2(dir, MNT_DETACH) != 0) return -errno;
  return stat(dir, &st) == 0 ? 0 : -errno;
}

static void *loop_main(void *arg) {
  ic_fs *fs = arg;
  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  if (cfg) {
    fuse_loop_cfg_set_max_threads(cfg, fs->p.max_threads ? fs->p.max_threads : 16);
    int rc = fuse_session_loop_mt(fs->se, cfg);
    if (rc) log_error("iclient: FUSE loop ended: %d", rc);
    fuse_loop_cfg_destroy(cfg);
  }
  return NULL;
}

int ic_fs_mount(ic_fs *fs, const char *dir) {
  int rc = ic_mount_point_prepare(dir);
  if (rc) return rc;
  char opts[512];
  int n =
      snprintf(opts, sizeof(opts), "fsname=%s,subtype=ProxyFS,max_read=%u,default_permissions%s",
               fs->fsname, fs->p.max_read, fs->p.allow_other ? ",allow_other" : "");
  if (n < 0 || (size_t)n >= sizeof(opts) || strchr(fs->fsname, ',')) return -EINVAL;
  char *argv[] = {"iclient", "-o", opts, NULL};
  struct fuse_args args = FUSE_ARGS_INIT(3, argv);
  fs->se = fuse_session_new(&args, &OPS, sizeof(OPS), fs);
  fuse_opt_free_args(&args); /* the session may have added to them */
  if (!fs->se) return -EIO;
  free(fs->mountpoint);
  fs->mountpoint = strdup(dir);
  if (!fs->mountpoint || fuse_session_mount(fs->se, dir) != 0) {
    fuse_session_destroy(fs->se);
    fs->se = NULL;
    return fs->mountpoint ? -EIO : -ENOMEM;
  }
  if (pthread_create(&fs->loop, NULL, loop_main, fs) != 0) {
    fuse_session_unmount(fs->se);
    fuse_session_destroy(fs->se);
    fs->se = NULL;
    return -EAGAIN;
  }
  fs->looping = true;
  return 0;
}

void ic_fs_unmount(ic_fs *fs) {
  if (!fs->se) return;
  fuse_session_exit(fs->se);
  /* Detaching the mount ends the kernel connection, so the loop's reads
   * fail and it returns while the device is still open; closing the device
   * under a reading thread (fuse_session_unmount first) would race. A busy
   * mount point is detached all the same (iclient.md 2.4). */
  if (umount2(fs->mountpoint, MNT_DETACH) != 0) {
    log_warn("iclient: unmounting %s: %s; closing the FUSE device instead", fs->mountpoint,
             strerror(errno));
    fuse_session_unmount(fs->se);
  }
  if (fs->looping) pthread_join(fs->loop, NULL);
  fs->looping = false;
  fuse_session_unmount(fs->se); /* closes the device; the mount is gone already */
  fuse_session_destroy(fs->se);
  fs->se = NULL;
}
