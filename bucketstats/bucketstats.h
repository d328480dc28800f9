/*
 * bucketstats: the original's statistics (support.md section 3).
 *
 * Four kinds of stat, each a plain struct the caller embeds anywhere:
 *   bs_total        a running total                 prints total:N
 *   bs_average      count and total                 prints avg: count: total:
 *   bs_log2         up to 65 power-of-2 buckets     prints a distribution
 *   bs_logroot2     up to 128 power-of-sqrt2 buckets
 * Updates are lock-free atomics and may run on any thread at any time.
 *
 * A group of stats is registered under (package, group) with an array of
 * descriptors naming each stat in print order; the registry copies the
 * names and keeps the pointers, so the stats must outlive the registration.
 * Output: the original's "parsable" text, JSON, or Prometheus text
 * exposition. Groups print in sorted (package, group) order.
 *
 * Errors: 0 or a negative errno (-EEXIST already registered, -EINVAL bad
 * descriptors or duplicate names, -ENOENT unknown group, -ENOMEM).
 */
#ifndef PFS_BUCKETSTATS_H
#define PFS_BUCKETSTATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define BS_LOG2_MAX_BUCKETS     65
#define BS_LOGROOT2_MAX_BUCKETS 128

typedef struct { _Atomic uint64_t total; } bs_total;
typedef struct { _Atomic uint64_t count; _Atomic uint64_t total; } bs_average;
/* nbucket: 0 means the maximum; it is clamped to [10, 65] / [17, 128] at
 * registration. Zero-initialise, set nbucket if wanted, then register. */
typedef struct { uint32_t nbucket; _Atomic uint32_t bucket[BS_LOG2_MAX_BUCKETS]; } bs_log2;
typedef struct { uint32_t nbucket; _Atomic uint32_t bucket[BS_LOGROOT2_MAX_BUCKETS]; } bs_logroot2;

void bs_total_add(bs_total *s, uint64_t v);
static inline void bs_total_inc(bs_total *s) { bs_total_add(s, 1); }
void bs_average_add(bs_average *s, uint64_t v);
void bs_log2_add(bs_log2 *s, uint64_t v);
void bs_logroot2_add(bs_logroot2 *s, uint64_t v);

/* Bucket index of v, as the original computes it (exposed for tests). */
unsigned bs_log2_index(uint64_t v);
unsigned bs_logroot2_index(uint64_t v);

typedef enum { BS_TOTAL, BS_AVERAGE, BS_LOG2, BS_LOGROOT2 } bs_kind;

typedef struct {
  const char *name; /* printed name; unique within the group */
  bs_kind kind;
  void *stat;       /* bs_total *, bs_average *, bs_log2 * or bs_logroot2 * */
} bs_stat_desc;

/* Descriptor helpers: BS_DESC_TOTAL(&g->RPCattempted, "RPCattempted"). */
#define BS_DESC_TOTAL(p, n)     { (n), BS_TOTAL, (p) }
#define BS_DESC_AVERAGE(p, n)   { (n), BS_AVERAGE, (p) }
#define BS_DESC_LOG2(p, n)      { (n), BS_LOG2, (p) }
#define BS_DESC_LOGROOT2(p, n)  { (n), BS_LOGROOT2, (p) }

/* pkg and group may be "" but not both. */
int bs_register(const char *pkg, const char *group, const bs_stat_desc *stats, size_t n);
int bs_unregister(const char *pkg, const char *group);

typedef enum {
  BS_FORMAT_TEXT,       /* the original's StatFormatParsable1, one line per stat */
  BS_FORMAT_JSON,       /* {"pkg.group.Name": {"total":..,...}, ...} */
  BS_FORMAT_PROMETHEUS, /* text exposition format 0.0.4 */
} bs_format;

/* Print the stats of (pkg, group); either may be "*" for all. On success
 * *out is a malloc'd NUL-terminated string the caller frees. -ENOENT when
 * a named group is not registered. */
int bs_sprint(bs_format fmt, const char *pkg, const char *group, char **out);

#endif
