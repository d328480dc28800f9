/*
 * bucketstats: lock-free stat updates, a registry of stat groups, and the
 * three output formats (support.md section 3).
 *
 * Updates touch only the caller's stat structs, with relaxed atomics: a
 * printed snapshot may see an Average's total before its count, as the
 * original may. The registry is a sorted array of groups under one mutex;
 * printing holds the mutex so that bs_unregister cannot return (and the
 * caller free the stats) while they are being read.
 */
#include "bucketstats_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fewer buckets than these would let a value below 256 (which is never
 * clamped by the original) land beyond the last bucket. */
#define LOG2_MIN_BUCKETS     10
#define LOGROOT2_MIN_BUCKETS 17

/* ---------------------------------------------------------------- updates */

void bs_total_add(bs_total *s, uint64_t v) {
  atomic_fetch_add_explicit(&s->total, v, memory_order_relaxed);
}

void bs_average_add(bs_average *s, uint64_t v) {
  atomic_fetch_add_explicit(&s->total, v, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

/* Index from the top 8 significant bits: each further bit of magnitude is
 * one Log2 bucket or two LogRoot2 buckets. For the largest values this
 * runs one past the table (65 or 128); the callers clamp, as the original
 * clamps to its last bucket. */
static unsigned raw_index(const uint8_t table[256], unsigned per_bit, uint64_t v) {
  if (v < 256)
    return table[v];
  unsigned shift = (unsigned)(64 - __builtin_clzll(v)) - 8;
  return table[v >> shift] + per_bit * shift;
}

static unsigned clamp_index(unsigned idx, unsigned nbucket) {
  return idx < nbucket ? idx : nbucket - 1;
}

unsigned bs_log2_index(uint64_t v) {
  return clamp_index(raw_index(bs_log2_idx, 1, v), BS_LOG2_MAX_BUCKETS);
}

unsigned bs_logroot2_index(uint64_t v) {
  return clamp_index(raw_index(bs_logroot2_idx, 2, v), BS_LOGROOT2_MAX_BUCKETS);
}

/* The number of buckets a stat uses. Registration stores the normalised
 * value, and adds read it without synchronisation, so a stat must be
 * registered before other threads add to it; an add before registration
 * (nbucket 0) still stays in bounds. */
static unsigned used_buckets(uint32_t nbucket, unsigned max) {
  return nbucket == 0 || nbucket > max ? max : nbucket;
}

void bs_log2_add(bs_log2 *s, uint64_t v) {
  unsigned idx = clamp_index(bs_log2_index(v), used_buckets(s->nbucket, BS_LOG2_MAX_BUCKETS));
  atomic_fetch_add_explicit(&s->bucket[idx], 1, memory_order_relaxed);
}

void bs_logroot2_add(bs_logroot2 *s, uint64_t v) {
  unsigned idx =
      clamp_index(bs_logroot2_index(v), used_buckets(s->nbucket, BS_LOGROOT2_MAX_BUCKETS));
  atomic_fetch_add_explicit(&s->bucket[idx], 1, memory_order_relaxed);
}

/* ---------------------------------------------------------------- snapshots */

/* One stat's values at one moment. Total fills only total; Average avg,
 * count and total; the bucketed kinds also their buckets in use, from
 * which avg, count and total are derived (as approximations). */
typedef struct {
  bs_kind kind;
  uint64_t avg;    /* total / count, 0 when count is 0 */
  uint64_t count;
  uint64_t total;  /* bucketed: sum of count * mean, saturated at 2^64-1
                      (the original's comment promises this; its code
                      keeps the low 64 bits) */
  unsigned first;  /* first non-empty bucket */
  unsigned end;    /* one past the last non-empty bucket; 0 when none */
  uint64_t bucket[BS_LOGROOT2_MAX_BUCKETS];
  bs_bucket_info info[BS_LOGROOT2_MAX_BUCKETS];
} snapshot;

static void snapshot_buckets(snapshot *s, const _Atomic uint32_t *buckets,
                             const bs_bucket_info *table, unsigned n, unsigned max) {
  memcpy(s->info, table, n * sizeof s->info[0]);
  for (unsigned i = 0; i < n; i++)
    s->bucket[i] = atomic_load_explicit(&buckets[i], memory_order_relaxed);

  /* The last bucket in use also holds every larger value, so it reaches
   * 2^64-1 and its mean moves with it (spec 3.1; the original meant to do
   * this but its adjustment reads the truncated copy and changes nothing). */
  if (n < max) {
    bs_bucket_info *last = &s->info[n - 1];
    last->range_high = UINT64_MAX;
    last->mean = last->range_low / 2 + last->range_high / 2 +
                 (last->range_low & last->range_high & 1);
  }

  /* At most 2^32 values in each of 128 buckets times a mean below 2^64:
   * the sum fits in 128 bits, and the average in 64. */
  unsigned __int128 sum = 0;
  for (unsigned i = 0; i < n; i++) {
    if (s->bucket[i] == 0)
      continue;
    if (s->end == 0)
      s->first = i;
    s->end = i + 1;
    s->count += s->bucket[i];
    sum += (unsigned __int128)s->bucket[i] * s->info[i].mean;
  }
  s->avg = s->count ? (uint64_t)(sum / s->count) : 0;
  s->total = sum > UINT64_MAX ? UINT64_MAX : (uint64_t)sum;
}

static void snapshot_take(snapshot *s, bs_kind kind, const void *stat) {
  s->kind = kind;
  s->avg = s->count = s->total = 0;
  s->first = s->end = 0;
  if (kind == BS_TOTAL) {
    const bs_total *t = stat;
    s->total = atomic_load_explicit(&t->total, memory_order_relaxed);
  } else if (kind == BS_AVERAGE) {
    const bs_average *a = stat;
    s->count = atomic_load_explicit(&a->count, memory_order_relaxed);
    s->total = atomic_load_explicit(&a->total, memory_order_relaxed);
    s->avg = s->count ? s->total / s->count : 0;
  } else if (kind == BS_LOG2) {
    const bs_log2 *l = stat;
    snapshot_buckets(s, l->bucket, bs_log2_buckets, used_buckets(l->nbucket, BS_LOG2_MAX_BUCKETS),
                     BS_LOG2_MAX_BUCKETS);
  } else {
    const bs_logroot2 *r = stat;
    snapshot_buckets(s, r->bucket, bs_logroot2_buckets,
                     used_buckets(r->nbucket, BS_LOGROOT2_MAX_BUCKETS), BS_LOGROOT2_MAX_BUCKETS);
  }
}

/* A bucket's printed name: its nominal value up to 3 digits, then a power
 * of two derived from the bucket index of the nominal value (so a LogRoot2
 * bucket i is named 2^((i-1)/2), with ".5" when i is even). */
static void bucket_label(const snapshot *s, unsigned i, char *buf, size_t size) {
  uint64_t nominal = s->info[i].nominal;
  if (nominal < 1024) {
    snprintf(buf, size, "%" PRIu64, nominal);
  } else if (s->kind == BS_LOG2) {
    snprintf(buf, size, "2^%u", bs_log2_index(nominal) - 1);
  } else {
    unsigned idx = bs_logroot2_index(nominal);
    if (idx % 2 == 1)
      snprintf(buf, size, "2^%u", (idx - 1) / 2);
    else
      snprintf(buf, size, "2^%u.5", (idx - 2) / 2);
  }
}

/* ------------------------------------------------------------------- names */

/* Length of the valid UTF-8 sequence at s (of at most len bytes) and its
 * code point, or 0 when the bytes are not valid UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
  size_t n;
  uint32_t c, min;
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  } else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
    n = 2, c = s[0] & 0x1f, min = 0x80;
  } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
    n = 3, c = s[0] & 0x0f, min = 0x800;
  } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
    n = 4, c = s[0] & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n > len)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    c = c << 6 | (s[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
    return 0;
  *cp = c;
  return n;
}

/* Whitespace and the unprintable code points a stat name may plausibly
 * contain: ASCII and C1 controls, Unicode spaces, format characters and
 * non-characters. */
static bool unprintable(uint32_t c) {
  return c <= 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
         (c >= 0x205f && c <= 0x2064) || c == 0x3000 || c == 0xfeff ||
         (c >= 0xfff9 && c <= 0xfffb) || (c & 0xfffe) == 0xfffe;
}

/* Append name to out with each whitespace, unprintable character, '*', ':'
 * and '#' replaced by one '_'; bytes that are not UTF-8 become '_' too. */
static size_t scrub(char *out, const char *name) {
  const unsigned char *s = (const unsigned char *)name;
  size_t len = strlen(name), o = 0;
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t n = utf8_decode(s + i, len - i, &c);
    if (n == 0 || unprintable(c) || c == '*' || c == ':' || c == '#') {
      out[o++] = '_';
      i += n ? n : 1;
    } else {
      memcpy(out + o, s + i, n);
      o += n;
      i += n;
    }
  }
  return o;
}

/* "pkg.group.stat" with empty parts left out, each part scrubbed; malloc'd. */
static char *full_name(const char *pkg, const char *group, const char *stat) {
  char *out = malloc(strlen(pkg) + strlen(group) + strlen(stat) + 3);
  if (!out)
    return NULL;
  size_t o = 0;
  const char *parts[2] = {pkg, group};
  for (int p = 0; p < 2; p++) {
    if (parts[p][0] == '\0')
      continue;
    o += scrub(out + o, parts[p]);
    out[o++] = '.';
  }
  o += scrub(out + o, stat);
  out[o] = '\0';
  return out;
}

/* The Prometheus metric name for a stat name: [a-zA-Z_:][a-zA-Z0-9_:]*,
 * every other byte replaced by '_' and a leading digit prefixed by '_'. */
static char *prom_name(const char *name) {
  size_t len = strlen(name);
  char *out = malloc(len + 2);
  if (!out)
    return NULL;
  size_t o = 0;
  if (name[0] >= '0' && name[0] <= '9')
    out[o++] = '_';
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':';
    out[o++] = ok ? c : '_';
  }
  out[o] = '\0';
  return out;
}

/* ---------------------------------------------------------------- registry */

typedef struct {
  char *name;
  bs_kind kind;
  void *stat;
} entry;

typedef struct {
  char *pkg;
  char *group;
  size_t n;
  entry *e;
} stat_group;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static stat_group **registry; /* sorted by (pkg, group) */
static size_t registry_len, registry_cap;

static int group_cmp(const char *pkg, const char *group, const stat_group *g) {
  int c = strcmp(pkg, g->pkg);
  return c ? c : strcmp(group, g->group);
}

/* Position of (pkg, group) in the registry, or where it would go. */
static size_t registry_find(const char *pkg, const char *group, bool *found) {
  size_t lo = 0, hi = registry_len;
  *found = false;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = group_cmp(pkg, group, registry[mid]);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

static void group_free(stat_group *g) {
  if (!g)
    return;
  for (size_t i = 0; i < g->n; i++)
    free(g->e[i].name);
  free(g->e);
  free(g->pkg);
  free(g->group);
  free(g);
}

static int validate(const char *pkg, const char *group, const bs_stat_desc *stats, size_t n) {
  if (!pkg || !group || (pkg[0] == '\0' && group[0] == '\0') || (n && !stats))
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (!stats[i].name || !stats[i].name[0] || !stats[i].stat ||
        (unsigned)stats[i].kind > BS_LOGROOT2)
      return -EINVAL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(stats[i].name, stats[j].name) == 0)
        return -EINVAL;
  }
  return 0;
}

static stat_group *group_copy(const char *pkg, const char *group, const bs_stat_desc *stats,
                              size_t n) {
  stat_group *g = calloc(1, sizeof *g);
  if (!g)
    return NULL;
  g->pkg = strdup(pkg);
  g->group = strdup(group);
  g->e = calloc(n ? n : 1, sizeof *g->e);
  if (!g->pkg || !g->group || !g->e) {
    group_free(g);
    return NULL;
  }
  for (; g->n < n; g->n++) {
    entry *e = &g->e[g->n];
    e->name = strdup(stats[g->n].name);
    if (!e->name) {
      group_free(g);
      return NULL;
    }
    e->kind = stats[g->n].kind;
    e->stat = stats[g->n].stat;
  }
  return g;
}

static uint32_t normal_nbucket(uint32_t nbucket, uint32_t min, uint32_t max) {
  if (nbucket == 0 || nbucket > max)
    return max;
  return nbucket < min ? min : nbucket;
}

int bs_register(const char *pkg, const char *group, const bs_stat_desc *stats, size_t n) {
  int rc = validate(pkg, group, stats, n);
  if (rc)
    return rc;
  stat_group *g = group_copy(pkg, group, stats, n);
  if (!g)
    return -ENOMEM;

  pthread_mutex_lock(&registry_lock);
  bool found;
  size_t pos = registry_find(pkg, group, &found);
  if (found) {
    rc = -EEXIST;
  } else if (registry_len == registry_cap) {
    size_t cap = registry_cap ? 2 * registry_cap : 16;
    stat_group **grown = realloc(registry, cap * sizeof *grown);
    if (grown) {
      registry = grown;
      registry_cap = cap;
    } else {
      rc = -ENOMEM;
    }
  }
  if (rc == 0) {
    /* Normalised only once the group is accepted, so a refused
     * registration leaves the caller's stats untouched. */
    for (size_t i = 0; i < n; i++) {
      if (stats[i].kind == BS_LOG2) {
        bs_log2 *s = stats[i].stat;
        s->nbucket = normal_nbucket(s->nbucket, LOG2_MIN_BUCKETS, BS_LOG2_MAX_BUCKETS);
      } else if (stats[i].kind == BS_LOGROOT2) {
        bs_logroot2 *s = stats[i].stat;
        s->nbucket = normal_nbucket(s->nbucket, LOGROOT2_MIN_BUCKETS, BS_LOGROOT2_MAX_BUCKETS);
      }
    }
    memmove(&registry[pos + 1], &registry[pos], (registry_len - pos) * sizeof *registry);
    registry[pos] = g;
    registry_len++;
  }
  pthread_mutex_unlock(&registry_lock);
  if (rc)
    group_free(g);
  return rc;
}

int bs_unregister(const char *pkg, const char *group) {
  if (!pkg || !group)
    return -EINVAL;
  pthread_mutex_lock(&registry_lock);
  bool found;
  size_t pos = registry_find(pkg, group, &found);
  stat_group *g = NULL;
  if (found) {
    g = registry[pos];
    memmove(&registry[pos], &registry[pos + 1], (registry_len - pos - 1) * sizeof *registry);
    registry_len--;
    if (registry_len == 0) {
      free(registry);
      registry = NULL;
      registry_cap = 0;
    }
  }
  pthread_mutex_unlock(&registry_lock);
  group_free(g);
  return found ? 0 : -ENOENT;
}

/* ------------------------------------------------------------------ output */

static void text_stat(FILE *f, const char *name, const snapshot *s) {
  if (s->kind == BS_TOTAL) {
    fprintf(f, "%s total:%" PRIu64 "\n", name, s->total);
    return;
  }
  fprintf(f, "%s avg:%" PRIu64 " count:%" PRIu64 " total:%" PRIu64, name, s->avg, s->count,
          s->total);
  for (unsigned i = s->first; i < s->end; i++) {
    char label[32];
    bucket_label(s, i, label, sizeof label);
    fprintf(f, " %s:%" PRIu64, label, s->bucket[i]);
  }
  fputc('\n', f);
}

static int prom_stat(FILE *f, const char *full, const snapshot *s) {
  char *name = prom_name(full);
  if (!name)
    return -ENOMEM;
  if (s->kind == BS_TOTAL) {
    fprintf(f, "# TYPE %s_total counter\n%s_total %" PRIu64 "\n", name, name, s->total);
  } else {
    fprintf(f, "# TYPE %s %s\n", name, s->kind == BS_AVERAGE ? "summary" : "histogram");
    /* Buckets up to the last non-empty one; one reaching 2^64-1 is the
     * +Inf bucket. */
    uint64_t cum = 0;
    for (unsigned i = 0; i < s->end && s->info[i].range_high != UINT64_MAX; i++) {
      cum += s->bucket[i];
      fprintf(f, "%s_bucket{le=\"%" PRIu64 "\"} %" PRIu64 "\n", name, s->info[i].range_high, cum);
    }
    if (s->kind != BS_AVERAGE)
      fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, s->count);
    fprintf(f, "%s_sum %" PRIu64 "\n%s_count %" PRIu64 "\n", name, s->total, name, s->count);
  }
  free(name);
  return 0;
}

/* jansson integers are signed 64-bit; larger values go out as reals. */
static int json_set_u64(json_t *obj, const char *key, uint64_t v) {
  json_t *n = v <= INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v);
  return json_object_set_new(obj, key, n) ? -ENOMEM : 0;
}

static int json_stat(json_t *root, const char *name, const snapshot *s) {
  json_t *obj = json_object();
  if (!obj || json_object_set_new(root, name, obj))
    return -ENOMEM;
  if (s->kind == BS_TOTAL)
    return json_set_u64(obj, "total", s->total);
  int rc = json_set_u64(obj, "avg", s->avg);
  rc = rc ? rc : json_set_u64(obj, "count", s->count);
  rc = rc ? rc : json_set_u64(obj, "total", s->total);
  if (rc || s->kind == BS_AVERAGE)
    return rc;
  json_t *buckets = json_object();
  if (!buckets || json_object_set_new(obj, "buckets", buckets))
    return -ENOMEM;
  for (unsigned i = s->first; rc == 0 && i < s->end; i++) {
    char label[32];
    bucket_label(s, i, label, sizeof label);
    rc = json_set_u64(buckets, label, s->bucket[i]);
  }
  return rc;
}

static bool selected(const char *want, const char *have) {
  return strcmp(want, "*") == 0 || strcmp(want, have) == 0;
}

/* Print every selected group; the caller holds registry_lock. f is the
 * text sink for TEXT and PROMETHEUS, root the object for JSON. */
static int print_groups(bs_format fmt, const char *pkg, const char *group, FILE *f, json_t *root,
                        size_t *matched) {
  *matched = 0;
  for (size_t gi = 0; gi < registry_len; gi++) {
    const stat_group *g = registry[gi];
    if (!selected(pkg, g->pkg) || !selected(group, g->group))
      continue;
    (*matched)++;
    for (size_t i = 0; i < g->n; i++) {
      char *name = full_name(g->pkg, g->group, g->e[i].name);
      if (!name)
        return -ENOMEM;
      snapshot s;
      snapshot_take(&s, g->e[i].kind, g->e[i].stat);
      int rc = 0;
      if (fmt == BS_FORMAT_TEXT)
        text_stat(f, name, &s);
      else if (fmt == BS_FORMAT_JSON)
        rc = json_stat(root, name, &s);
      else
        rc = prom_stat(f, name, &s);
      free(name);
      if (rc)
        return rc;
    }
  }
  return 0;
}

int bs_sprint(bs_format fmt, const char *pkg, const char *group, char **out) {
  if (!out)
    return -EINVAL;
  *out = NULL;
  if (!pkg || !group ||
      (fmt != BS_FORMAT_TEXT && fmt != BS_FORMAT_JSON && fmt != BS_FORMAT_PROMETHEUS))
    return -EINVAL;

  char *buf = NULL;
  size_t len = 0;
  FILE *f = NULL;
  json_t *root = NULL;
  if (fmt == BS_FORMAT_JSON)
    root = json_object();
  else
    f = open_memstream(&buf, &len);
  if (!f && !root)
    return -ENOMEM;

  size_t matched;
  pthread_mutex_lock(&registry_lock);
  int rc = print_groups(fmt, pkg, group, f, root, &matched);
  pthread_mutex_unlock(&registry_lock);
  /* Naming a package or group that selects nothing is an error; "*" for
   * both with an empty registry is just empty output. */
  if (rc == 0 && matched == 0 && (strcmp(pkg, "*") != 0 || strcmp(group, "*") != 0))
    rc = -ENOENT;

  if (f) {
    if (ferror(f) && rc == 0)
      rc = -ENOMEM;
    if (fclose(f) != 0 && rc == 0)
      rc = -ENOMEM;
  } else if (rc == 0) {
    buf = json_dumps(root, JSON_COMPACT);
    if (!buf)
      rc = -ENOMEM;
  }
  json_decref(root);
  if (rc) {
    free(buf);
    return rc;
  }
  *out = buf;
  return 0;
}
