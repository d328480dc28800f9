/* The LMDB record layout (A.6.4). */
#include <errno.h>
#include <string.h>

#include "ickpt.h"

static void put_le(uint8_t *p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    p[i] = (uint8_t)(v >> (8 * i));
  }
}

static uint64_t get_le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    v |= (uint64_t)p[i] << (8 * i);
  }
  return v;
}

size_t ickpt_record_size(const ickpt_record *r) {
  if (r->canonical_len > UINT16_MAX || r->value_len > UINT32_MAX) {
    return 0;
  }
  return ICKPT_RECORD_FIXED + r->canonical_len + r->value_len;
}

long ickpt_record_encode(const ickpt_record *r, uint8_t *buf, size_t cap) {
  size_t size = ickpt_record_size(r);
  if (size == 0) {
    return -EINVAL;
  }
  if (size > cap) {
    return -ENOSPC;
  }
  uint8_t *p = buf;
  put_le(p, ICKPT_RECORD_FORMAT, 4);
  p += 4;
  put_le(p, r->version, 8);
  p += 8;
  put_le(p, r->commit_time_ns, 8);
  p += 8;
  put_le(p, r->canonical_len, 2);
  p += 2;
  if (r->canonical_len > 0) {
    memcpy(p, r->canonical, r->canonical_len);
  }
  p += r->canonical_len;
  put_le(p, r->value_len, 4);
  p += 4;
  if (r->value_len > 0) {
    memcpy(p, r->value, r->value_len);
  }
  return (long)size;
}

int ickpt_record_decode(const uint8_t *buf, size_t len, ickpt_record *r) {
  if (buf == NULL || len < ICKPT_RECORD_FIXED) {
    return -EINVAL;
  }
  const uint8_t *p = buf;
  const uint8_t *end = buf + len;
  if (get_le(p, 4) != ICKPT_RECORD_FORMAT) {
    return -EINVAL;
  }
  p += 4;
  r->version = get_le(p, 8);
  p += 8;
  r->commit_time_ns = get_le(p, 8);
  p += 8;
  r->canonical_len = (size_t)get_le(p, 2);
  p += 2;
  /* The fixed size already counted the value length field. */
  if (r->canonical_len > (size_t)(end - p) - 4) {
    return -EINVAL;
  }
  r->canonical = (const char *)p;
  p += r->canonical_len;
  r->value_len = (size_t)get_le(p, 4);
  p += 4;
  if (r->value_len != (size_t)(end - p)) {
    return -EINVAL;
  }
  r->value = (const char *)p;
  return 0;
}
