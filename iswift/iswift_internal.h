/* iswift internals: the pure request parsers (fuzzed by tests/fuzz/fuzz_iswift.c)
 * and the store. Not a public header. */
#ifndef PFS_ISWIFT_INTERNAL_H
#define PFS_ISWIFT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- path ------------------------------------------------------------- */

/* The decoded URL path after "/v1/" split into at most three parts
 * (iswift.md 4.1). Empty parts are "not given". Strings are malloc'd. */
typedef struct {
  char *account, *container, *object;
} isw_path;

/* 0, -ENOENT when the path does not start with "/v1/", -ENOMEM. */
int isw_parse_path(const char *path, isw_path *out);
void isw_path_free(isw_path *p);

/* ---- Range ------------------------------------------------------------ */

typedef struct {
  uint64_t first, last; /* inclusive, already clamped to the object */
} isw_range;

#define ISW_MAX_RANGES 50 /* real Swift ignores a Range header with more */

/* Outcomes of isw_parse_range besides 0 (ranges in out[0..*n)):
 *   ISW_RANGE_NONE   no usable Range: send the whole object (200)
 *   -EINVAL          400 (original iswift only)
 *   -ERANGE          416 with Content-Range: bytes *\/size
 * strict = behave like real Swift (iswift.md 7.2, checked against the AIO):
 * malformed headers and first > last are ignored, any number of ranges up
 * to ISW_MAX_RANGES, unsatisfiable ones dropped, suffixes clamped.
 * The original accepts at most two ranges split at the first comma. */
#define ISW_RANGE_NONE 1
int isw_parse_range(const char *hdr, uint64_t size, bool strict, isw_range *out,
                    size_t *n);

/* ---- listing parameters ----------------------------------------------- */

typedef struct {
  const char *marker, *end_marker, *prefix; /* point into the query; may be NULL */
  const char *delimiter; /* NULL = none (an empty delimiter= is none too) */
  uint64_t limit;
  bool json;
} isw_listing;

/* Query values as given (NULL = absent). server_limit is the
 * Account/ContainerListingLimit. Original: only marker counts (the original
 * ignores delimiter=, like every other parameter), limit = server_limit.
 * Strict: marker/end_marker/prefix/delimiter must be UTF-8 (-EINVAL, 400),
 * limit > server_limit is -E2BIG (412), an unparsable limit is ignored,
 * format=json selects JSON, a non-empty delimiter (any length, as Swift 2.30
 * accepts) rolls names up (isw_subdir_len). */
int isw_parse_listing(const char *marker, const char *end_marker, const char *prefix,
                      const char *delimiter, const char *limit, const char *format,
                      uint64_t server_limit, bool strict, isw_listing *out);

/* Real Swift's roll-up of a listed name: when delimiter occurs in name at or
 * after prefix_len, the length of the "subdir" name (up to and including
 * that first occurrence), else 0. */
size_t isw_subdir_len(const char *name, size_t prefix_len, const char *delimiter);

/* ---- misc ------------------------------------------------------------- */

bool isw_utf8_valid(const char *s, size_t n);
/* "x-object-meta-foo" -> "X-Object-Meta-Foo" in place. */
void isw_canonical_header(char *name);

/* ---- on-disk records (the optional directory store) -------------------- */

/* One record: a name, headers, and (objects) data, in one of two layouts.
 * Version 1, written whole at once (accounts, containers, objects whose
 * data is in memory):
 *   "ISWIFT1\n" <fields> <data>
 * Version 2, an object whose body was streamed to the file as it arrived,
 * before its headers were final (isw_disk_incoming_*):
 *   "ISWIFT2\n" <data> <fields> "T " <20 decimal digits: fields' length> "\n"
 * where <fields> is
 *   "N <len>\n" <name> "\n" "H <count>\n"
 *   count x ( "<nlen> <vlen>\n" <name> <value> "\n" )
 *   "D <len>\n"
 * In both the data is one run of bytes (a file can be mapped and served).
 * Decoding checks every length against the bytes present. */
#define ISW_RECORD_MAGIC_LEN 8
#define ISW_RECORD_V2_MAGIC "ISWIFT2\n"
#define ISW_RECORD_TRAILER_LEN 23
typedef struct {
  char *name;
  size_t nhdrs;
  char **hnames, **hvalues;
  const unsigned char *data; /* points into the decoded buffer */
  size_t data_len;
} isw_record;

/* Returns 0 or -EINVAL (corrupt) / -ENOMEM. rec strings are malloc'd. */
int isw_record_decode(const unsigned char *buf, size_t len, isw_record *rec);
void isw_record_free(isw_record *rec);
/* Encode into a malloc'd buffer: head, a version 1 record's part before
 * its data (magic and fields); tail, a version 2 record's part after its
 * data (fields and trailer). */
int isw_record_encode_head(const char *name, size_t nhdrs, char *const *hnames,
                           char *const *hvalues, size_t data_len, char **out,
                           size_t *out_len);
int isw_record_encode_tail(const char *name, size_t nhdrs, char *const *hnames,
                           char *const *hvalues, size_t data_len, char **out,
                           size_t *out_len);

#endif
