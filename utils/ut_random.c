/* utils: cryptographic random bytes and hex. */
#include "utils.h"

#include <errno.h>
#include <sys/random.h>

#include "logger.h"

int ut_random_bytes(void *buf, size_t n)
{
  unsigned char *p = buf;
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

uint64_t ut_random_u64(void)
{
  unsigned char b[8];
  int err = ut_random_bytes(b, sizeof b);
  /* The original panics here too: without randomness nothing that needs a
   * random number (nonces, IDs) can be made safely. */
  if (err != 0)
    log_fatal("getrandom failed: errno %d", -err);
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) /* little-endian, as FetchRandomUint64 */
    v = (v << 8) | b[i];
  return v;
}

void ut_hex_encode(const void *buf, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  const unsigned char *p = buf;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 0xf];
  }
  out[2 * n] = '\0';
}
