/* Whole-file reads for small files (certificates, keys, configs). */
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int ut_read_file(const char *path, size_t max, char **out, size_t *len)
{
  *out = NULL;
  if (len)
    *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  /* Read up to max + 1 bytes: one more than allowed tells "too big" apart
   * from "exactly max". fstat's size only sizes the first buffer (so a big
   * file is read without regrowing); the file may still change under us. */
  size_t cap = 4096, n = 0;
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    cap = (uint64_t)st.st_size < max ? (size_t)st.st_size + 1 : max + 1;
  char *buf = malloc(cap);
  int rc = buf ? 0 : -ENOMEM;
  while (rc == 0) {
    if (n == cap) {
      size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
      char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
      if (nb == NULL) {
        rc = ncap > cap ? -ENOMEM : -EFBIG;
        break;
      }
      buf = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      rc = -errno;
    else if (r == 0)
      break;
    else
      n += (size_t)r;
    if (n > max)
      rc = -EFBIG;
  }
  close(fd);
  if (rc == 0) {
    char *nb = realloc(buf, n + 1);
    if (nb == NULL)
      rc = -ENOMEM;
    else
      buf = nb;
  }
  if (rc != 0) {
    free(buf);
    return rc;
  }
  buf[n] = '\0';
  *out = buf;
  if (len)
    *len = n;
  return 0;
}
