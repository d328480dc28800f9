/* The FUSE layer mounted for real (fake imgr, in-memory store): POSIX calls
 * on the mount, then a second "client" (fresh volume over the same imgr and
 * store) mounts again and sees everything; a stale mount point left by a
 * dead client is detached. Needs root and /dev/fuse, else skipped. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ic_fuse.h"
#include "ic_test_doubles.h"

typedef struct client {
  ic_volume *v;
  ic_fs *fs;
} client;

static ic_fake_imgr g_f;
static ic_mem_store g_s;
static char g_dir[64];

static bool fuse_usable(void) {
  int fd = open("/dev/fuse", O_RDWR);
  if (fd < 0) return false;
  close(fd);
  return geteuid() == 0;
}

static void client_start(client *c) {
  ic_volume_params p = {
      .imgr = &ic_fake_imgr_ops,
      .imgr_ctx = &g_f,
      .store = &ic_mem_store_ops,
      .store_ctx = &g_s,
      .mount_id = "fakeMountID00000000=",
      .dir_max_keys = 8,
      .file_max_keys = 8,
      .payload_evict_low = 100,
      .payload_evict_high = 110,
      .read_cache_line_size = 4096,
      .read_cache_line_count_max = 16,
      .inode_cache_limit = 16,
      .file_flush_trigger_size = 1 << 20,
  };
  assert_int_equal(ic_volume_create(&p, &c->v), 0);
  ic_fs_params fp = {
      .vol = c->v,
      .imgr = &ic_fake_imgr_ops,
      .imgr_ctx = &g_f,
      .mount_id = "fakeMountID00000000=",
      .block_size = 512,
      .entry_valid_ns = 0,
      .attr_valid_ns = 0, /* no kernel caching: every call reaches us */
      .max_write = 131072,
      .max_read = 131072,
      .max_background = 100,
      .congestion_threshold = 0,
      .allow_other = false,
      .fsname = "testvol",
  };
  assert_int_equal(ic_fs_create(&fp, &c->fs), 0);
  assert_int_equal(ic_fs_mount(c->fs, g_dir), 0);
}

static void client_stop(client *c) {
  ic_fs_unmount(c->fs);
  ic_fs_destroy(c->fs);
  assert_int_equal(ic_volume_flush_all(c->v), 0); /* as the daemon does */
  ic_volume_destroy(c->v);
}

static int group_setup(void **state) {
  (void)state;
  if (!fuse_usable()) return 0;
  ic_fake_imgr_init(&g_f, 4, 100);
  ic_mem_store_init(&g_s);
  snprintf(g_dir, sizeof(g_dir), "/tmp/ic_fuse_XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  if (!g_dir[0]) return 0;
  (void)umount2(g_dir, MNT_DETACH); /* left mounted only by a failed test */
  rmdir(g_dir);
  ic_mem_store_fini(&g_s);
  ic_fake_imgr_fini(&g_f);
  return 0;
}

static void path(char *out, size_t n, const char *rel) { snprintf(out, n, "%s/%s", g_dir, rel); }

/* Commit the mount's root directory with its group (write-back). */
static void fsync_root(void) {
  int fd = open(g_dir, O_RDONLY | O_DIRECTORY);
  assert_true(fd >= 0);
  assert_int_equal(fsync(fd), 0);
  close(fd);
}

static void write_file(const char *rel, const void *data, size_t len, int flags) {
  char p[128];
  path(p, sizeof(p), rel);
  int fd = open(p, O_WRONLY | O_CREAT | flags, 0640);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  assert_int_equal(close(fd), 0);
}

static size_t read_file(const char *rel, void *buf, size_t cap) {
  char p[128];
  path(p, sizeof(p), rel);
  int fd = open(p, O_RDONLY);
  assert_true(fd >= 0);
  ssize_t n = read(fd, buf, cap);
  assert_true(n >= 0);
  close(fd);
  return (size_t)n;
}

static int count_entries(const char *rel, bool *saw_file_type) {
  char p[128];
  path(p, sizeof(p), rel);
  DIR *d = opendir(p);
  assert_non_null(d);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    n++;
    if (saw_file_type && strcmp(de->d_name, "moved") == 0) *saw_file_type = de->d_type == DT_REG;
  }
  closedir(d);
  return n;
}

static void test_posix_on_mount(void **state) {
  (void)state;
  if (!g_dir[0]) skip();
  assert_int_equal(ic_fake_imgr_format(&g_f, &ic_mem_store_ops, &g_s), 0);
  client c;
  client_start(&c);
  char p[128], q[128], buf[70000];
  struct stat st;

  /* files: create, append, overwrite, read back, O_TRUNC, O_EXCL */
  static uint8_t big[65536];
  for (size_t i = 0; i < sizeof(big); i++) big[i] = (uint8_t)(i * 31 + 7);
  write_file("f", big, sizeof(big), O_TRUNC);
  assert_int_equal(read_file("f", buf, sizeof(buf)), sizeof(big));
  assert_memory_equal(buf, big, sizeof(big));
  write_file("f", "tail", 4, O_APPEND);
  path(p, sizeof(p), "f");
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_size, sizeof(big) + 4);
  assert_int_equal(st.st_mode & 07777, 0640);
  /* blocks: the data plus the extent-map page(s) it needs */
  assert_true(st.st_blocks >= (blkcnt_t)((sizeof(big) + 4 + 511) / 512));
  assert_true(st.st_blocks <= (blkcnt_t)((sizeof(big) + 4 + 511) / 512 + 8));
  write_file("f", "short", 5, O_TRUNC);
  assert_int_equal(read_file("f", buf, sizeof(buf)), 5);
  assert_memory_equal(buf, "short", 5);
  assert_int_equal(open(p, O_WRONLY | O_CREAT | O_EXCL, 0600), -1);
  assert_int_equal(errno, EEXIST);

  /* truncate up (a hole reads as zeros), fallocate, punch */
  assert_int_equal(truncate(p, 10000), 0);
  assert_int_equal(read_file("f", buf, sizeof(buf)), 10000);
  assert_int_equal(stat(p, &st), 0);
  assert_true(st.st_blocks < 10000 / 512); /* the hole takes no blocks */
  for (int i = 5; i < 10000; i++) assert_int_equal(buf[i], 0);
  int fd = open(p, O_RDWR);
  assert_true(fd >= 0);
  assert_int_equal(fallocate(fd, 0, 0, 20000), 0);
  assert_int_equal(fstat(fd, &st), 0);
  assert_int_equal(st.st_size, 20000);
  assert_int_equal(pwrite(fd, "xxxxxxxx", 8, 100), 8);
  assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 102, 4), 0);
  assert_int_equal(pread(fd, buf, 8, 100), 8);
  assert_memory_equal(buf, "xx\0\0\0\0xx", 8);
  /* SEEK_DATA/SEEK_HOLE from the extent map: data [0,5) and [100,102),
   * [106,108); the rest up to 20000 is hole. */
  assert_int_equal(lseek(fd, 0, SEEK_DATA), 0);
  assert_int_equal(lseek(fd, 0, SEEK_HOLE), 5);
  assert_int_equal(lseek(fd, 5, SEEK_DATA), 100);
  assert_int_equal(lseek(fd, 101, SEEK_HOLE), 102);
  assert_int_equal(lseek(fd, 102, SEEK_DATA), 106);
  assert_int_equal(lseek(fd, 106, SEEK_HOLE), 108);
  assert_int_equal(lseek(fd, 108, SEEK_DATA), -1);
  assert_int_equal(errno, ENXIO);
  assert_int_equal(lseek(fd, 19999, SEEK_HOLE), 19999);
  assert_int_equal(lseek(fd, 20000, SEEK_HOLE), -1);
  assert_int_equal(errno, ENXIO);
  assert_int_equal(fsync(fd), 0);
  assert_int_equal(close(fd), 0);

  /* directories, rename (type kept), links, symlinks, xattrs */
  path(p, sizeof(p), "d");
  assert_int_equal(mkdir(p, 0750), 0);
  assert_int_equal(mkdir(p, 0750), -1);
  assert_int_equal(errno, EEXIST);
  path(p, sizeof(p), "d/sub");
  assert_int_equal(mkdir(p, 0700), 0);
  path(p, sizeof(p), "d");
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_nlink, 3);
  path(p, sizeof(p), "f");
  path(q, sizeof(q), "d/moved");
  assert_int_equal(rename(p, q), 0);
  bool is_reg = false;
  assert_int_equal(count_entries("d", &is_reg), 4); /* . .. sub moved */
  assert_true(is_reg);
  path(p, sizeof(p), "d/hard");
  assert_int_equal(link(q, p), 0);
  assert_int_equal(stat(q, &st), 0);
  assert_int_equal(st.st_nlink, 2);
  path(p, sizeof(p), "d");
  path(q, sizeof(q), "d/sub/loop");
  assert_int_equal(rename(p, q), -1);
  assert_int_equal(errno, EINVAL); /* the VFS refuses moving a dir under itself */
  path(p, sizeof(p), "sym");
  assert_int_equal(symlink("d/moved", p), 0);
  char target[64] = {0};
  assert_int_equal(readlink(p, target, sizeof(target)), 7);
  assert_string_equal(target, "d/moved");
  path(p, sizeof(p), "d/moved");
  assert_int_equal(setxattr(p, "user.color", "blue", 4, XATTR_CREATE), 0);
  assert_int_equal(setxattr(p, "user.color", "red", 3, XATTR_CREATE), -1);
  assert_int_equal(errno, EEXIST);
  assert_int_equal(getxattr(p, "user.color", buf, sizeof(buf)), 4);
  assert_memory_equal(buf, "blue", 4);
  assert_int_equal(listxattr(p, buf, sizeof(buf)), 11);
  assert_string_equal(buf, "user.color");
  assert_int_equal(getxattr(p, "user.none", buf, sizeof(buf)), -1);
  assert_int_equal(errno, ENODATA);
  path(p, sizeof(p), "fifo");
  assert_int_equal(mkfifo(p, 0600), -1);
  assert_int_equal(errno, EPERM);

  /* unlink, rmdir: errors and success */
  path(p, sizeof(p), "d");
  assert_int_equal(rmdir(p), -1);
  assert_int_equal(errno, ENOTEMPTY);
  assert_int_equal(unlink(p), -1);
  assert_int_equal(errno, EISDIR);
  path(p, sizeof(p), "d/hard");
  assert_int_equal(unlink(p), 0);
  path(p, sizeof(p), "d/sub");
  assert_int_equal(rmdir(p), 0);
  /* rename: NOREPLACE, replacing a file (the old one leaves imgr's table),
   * a directory over an empty one, over a non-empty one. */
  write_file("r1", "one", 3, O_TRUNC);
  write_file("r2", "two", 3, O_TRUNC);
  path(p, sizeof(p), "r1");
  path(q, sizeof(q), "r2");
  assert_int_equal(renameat2(AT_FDCWD, p, AT_FDCWD, q, RENAME_NOREPLACE), -1);
  assert_int_equal(errno, EEXIST);
  fsync_root();
  size_t entries = ic_fake_imgr_inodes(&g_f);
  assert_int_equal(rename(p, q), 0);
  fsync_root(); /* commits the rename; then the replaced file is deleted */
  assert_int_equal(ic_fake_imgr_inodes(&g_f), entries - 1);
  assert_int_equal(read_file("r2", buf, sizeof(buf)), 3);
  assert_memory_equal(buf, "one", 3);
  assert_int_equal(unlink(q), 0);
  path(p, sizeof(p), "e1");
  path(q, sizeof(q), "e2");
  assert_int_equal(mkdir(p, 0700), 0);
  assert_int_equal(mkdir(q, 0700), 0);
  assert_int_equal(rename(p, q), 0);
  path(p, sizeof(p), "e2/inner");
  assert_int_equal(mkdir(p, 0700), 0);
  path(p, sizeof(p), "e3");
  assert_int_equal(mkdir(p, 0700), 0);
  assert_int_equal(rename(p, q), -1);
  assert_int_equal(errno, ENOTEMPTY);
  assert_int_equal(rmdir(p), 0);
  path(p, sizeof(p), "e2/inner");
  assert_int_equal(rmdir(p), 0);
  assert_int_equal(rmdir(q), 0);

  /* readdir over several reply buffers: offsets continue correctly. */
  path(p, sizeof(p), "many");
  assert_int_equal(mkdir(p, 0755), 0);
  for (int i = 0; i < 300; i++) {
    char rel[64];
    snprintf(rel, sizeof(rel), "many/a-rather-long-file-name-to-fill-buffers-%03d", i);
    write_file(rel, "", 0, O_TRUNC);
  }
  assert_int_equal(count_entries("many", NULL), 302);
  for (int i = 0; i < 300; i++) {
    snprintf(q, sizeof(q), "%s/many/a-rather-long-file-name-to-fill-buffers-%03d", g_dir, i);
    assert_int_equal(unlink(q), 0);
  }
  assert_int_equal(rmdir(p), 0);

  struct statvfs sv;
  assert_int_equal(statvfs(g_dir, &sv), 0);
  assert_int_equal(sv.f_bsize, 512);
  assert_int_equal(sv.f_namemax, 255);
  assert_true(sv.f_bavail > 0 && sv.f_bavail < UINT64_MAX / 1024);
  client_stop(&c);

  /* A new client over the same volume sees all of it. */
  client_start(&c);
  assert_int_equal(count_entries("", NULL), 4); /* . .. d sym */
  assert_int_equal(read_file("d/moved", buf, sizeof(buf)), 20000);
  assert_memory_equal(buf, "short", 5);
  assert_memory_equal(buf + 100, "xx\0\0\0\0xx", 8);
  path(p, sizeof(p), "d/moved");
  assert_int_equal(getxattr(p, "user.color", buf, sizeof(buf)), 4);
  assert_int_equal(removexattr(p, "user.color"), 0);
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_nlink, 1);
  assert_int_equal(unlink(p), 0);
  path(p, sizeof(p), "sym");
  assert_int_equal(unlink(p), 0);
  path(p, sizeof(p), "d");
  assert_int_equal(rmdir(p), 0);
  assert_int_equal(count_entries("", NULL), 2);
  client_stop(&c);
  assert_int_equal(g_s.double_puts, 0);
  /* Only the root is left in imgr's table. */
  assert_int_equal(ic_fake_imgr_inodes(&g_f), 1);
  /* Read-only operations took shared leases; changes promoted them. */
  assert_true(ic_fake_imgr_leases(&g_f, IC_LEASE_REQUEST_SHARED) > 0);
  assert_true(ic_fake_imgr_leases(&g_f, IC_LEASE_REQUEST_PROMOTE) > 0);
}

/* A FUSE mount whose server died: the directory answers ENOTCONN until
 * ic_mount_point_prepare detaches it. */
static void test_stale_mount_point(void **state) {
  (void)state;
  if (!g_dir[0]) skip();
  int fd = open("/dev/fuse", O_RDWR);
  assert_true(fd >= 0);
  char opts[128];
  snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
  assert_int_equal(mount("stale", g_dir, "fuse.stale", MS_NOSUID | MS_NODEV, opts), 0);
  close(fd); /* the "server" is gone */
  struct stat st;
  assert_int_equal(stat(g_dir, &st), -1);
  assert_int_equal(errno, ENOTCONN);
  assert_int_equal(ic_mount_point_prepare(g_dir), 0);
  assert_int_equal(stat(g_dir, &st), 0);
  assert_int_equal(ic_mount_point_prepare(g_dir), 0); /* a plain directory is fine */
}

static void test_errno_table(void **state) {
  (void)state;
  assert_int_equal(ic_fuse_errno(-ENOENT), ENOENT);
  assert_int_equal(ic_fuse_errno(-ENOTEMPTY), ENOTEMPTY);
  assert_int_equal(ic_fuse_errno(-ENOLCK), EIO);    /* lease lost */
  assert_int_equal(ic_fuse_errno(-EUCLEAN), EIO);   /* accounting invariant */
  assert_int_equal(ic_fuse_errno(-ENOTCONN), EIO);  /* unknown mount */
  assert_int_equal(ic_fuse_errno(-EMFILE), EMFILE); /* ETooManyOpens */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errno_table),
      cmocka_unit_test(test_posix_on_mount),
      cmocka_unit_test(test_stale_mount_point),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
