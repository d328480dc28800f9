/*
 * Fuzz target for ickpt's decoders: the LMDB record (decode, then the
 * re-encoding must reproduce the input), the X-Storage-Url canonicaliser,
 * transaction IDs and If-Match/If-None-Match. (Checkpoint texts are
 * ilayout's decoder, fuzzed by fuzz_ilayout.)
 * The first input byte picks the decoder; the rest is its input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ickpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_record(const uint8_t *p, size_t n) {
  ickpt_record r;
  if (ickpt_record_decode(p, n, &r) != 0) {
    return;
  }
  uint8_t *buf = malloc(n ? n : 1);
  if (buf == NULL) {
    return;
  }
  long w = ickpt_record_encode(&r, buf, n);
  if (w != (long)n || memcmp(buf, p, n) != 0) {
    abort();
  }
  free(buf);
}

static void fuzz_text(uint8_t which, const uint8_t *p, size_t n) {
  char *s = malloc(n + 1);
  if (s == NULL) {
    return;
  }
  memcpy(s, p, n);
  s[n] = '\0';
  switch (which % 3) {
  case 0: {
    char out[ICKPT_MAX_CANONICAL + 1];
    if (ickpt_canonical_url(s, out, sizeof out) == 0) {
      /* Canonical form of a canonical URL is itself. */
      char again[ICKPT_MAX_CANONICAL + 16];
      char url[ICKPT_MAX_CANONICAL + 16];
      snprintf(url, sizeof url, "%s://%s", strncasecmp(s, "https", 5) == 0 ? "https" : "http",
               out);
      if (ickpt_canonical_url(url, again, sizeof again) == 0 && strcmp(again, out) != 0) {
        abort();
      }
      char *b = ickpt_key_base64(out, strlen(out));
      free(b);
    }
    break;
  }
  case 1:
    (void)ickpt_txn_valid(s);
    break;
  default: {
    ickpt_cond c;
    char *nl = strchr(s, '\n');
    if (nl != NULL) {
      *nl = '\0';
      (void)ickpt_cond_parse(s[0] ? s : NULL, nl[1] ? nl + 1 : NULL, &c);
    } else {
      (void)ickpt_cond_parse(s, NULL, &c);
    }
    break;
  }
  }
  free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) {
    return 0;
  }
  if (data[0] & 0x80) {
    fuzz_record(data + 1, size - 1);
  } else {
    fuzz_text(data[0], data + 1, size - 1);
  }
  return 0;
}
