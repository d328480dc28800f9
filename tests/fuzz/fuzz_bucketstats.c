/*
 * Fuzz target for bucketstats' names and output: the input is split at NUL
 * bytes into a package, a group and a stat name (any bytes, valid UTF-8 or
 * not); the rest feeds values to one stat of each kind. The group is
 * printed in all three formats. Properties checked: no crash, no leak,
 * the text has one line per stat whose name holds no whitespace, ':', '*'
 * or '#'; the JSON parses back with one key per stat; every Prometheus
 * sample line starts with a valid metric name.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bucketstats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Next NUL-terminated part of the input, copied; the empty string at the end. */
static char *next_part(const uint8_t **p, const uint8_t *end) {
  const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
  size_t len = (size_t)((nul ? nul : end) - *p);
  char *s = malloc(len + 1);
  if (!s)
    abort();
  memcpy(s, *p, len);
  s[len] = '\0';
  *p = nul ? nul + 1 : end;
  return s;
}

static char *suffixed(const char *name, char c) {
  size_t len = strlen(name);
  char *s = malloc(len + 2);
  if (!s)
    abort();
  memcpy(s, name, len);
  s[len] = c;
  s[len + 1] = '\0';
  return s;
}

static void check_text(const char *out) {
  int lines = 0;
  for (const char *p = out; *p; lines++) {
    const char *sp = strchr(p, ' '), *nl = strchr(p, '\n');
    if (!sp || !nl || sp > nl)
      abort();
    for (const char *c = p; c < sp; c++)
      if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == ':' || *c == '*' || *c == '#')
        abort();
    p = nl + 1;
  }
  if (lines != 4)
    abort();
}

static bool prom_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

static void check_prometheus(const char *out) {
  for (const char *p = out; *p;) {
    const char *nl = strchr(p, '\n');
    if (!nl)
      abort();
    if (*p != '#') {
      if (!prom_name_char(*p, true))
        abort();
      const char *c = p + 1;
      while (prom_name_char(*c, false))
        c++;
      if (*c != ' ' && *c != '{')
        abort();
    }
    p = nl + 1;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p = data, *end = data + size;
  char *pkg = next_part(&p, end), *group = next_part(&p, end), *name = next_part(&p, end);
  char *names[4] = {suffixed(name, 't'), suffixed(name, 'a'), suffixed(name, 'l'),
                    suffixed(name, 'r')};
  bs_total t = {0};
  bs_average a = {0};
  bs_log2 l = {0};
  bs_logroot2 r = {0};
  if (p < end) {
    l.nbucket = *p;
    r.nbucket = *p;
  }
  const bs_stat_desc d[] = {
      BS_DESC_TOTAL(&t, names[0]),
      BS_DESC_AVERAGE(&a, names[1]),
      BS_DESC_LOG2(&l, names[2]),
      BS_DESC_LOGROOT2(&r, names[3]),
  };
  int rc = bs_register(pkg, group, d, 4);
  if (rc == 0) {
    for (; end - p >= 8; p += 8) {
      uint64_t v;
      memcpy(&v, p, sizeof v);
      bs_total_add(&t, v);
      bs_average_add(&a, v);
      bs_log2_add(&l, v);
      bs_logroot2_add(&r, v);
    }
    char *out;
    if (bs_sprint(BS_FORMAT_TEXT, pkg, group, &out) != 0)
      abort();
    check_text(out);
    free(out);
    if (bs_sprint(BS_FORMAT_JSON, pkg, group, &out) != 0)
      abort();
    json_t *root = json_loads(out, 0, NULL);
    if (!root || json_object_size(root) != 4)
      abort();
    json_decref(root);
    free(out);
    if (bs_sprint(BS_FORMAT_PROMETHEUS, pkg, group, &out) != 0)
      abort();
    check_prometheus(out);
    free(out);
    if (bs_unregister(pkg, group) != 0)
      abort();
  } else if (rc != -EINVAL || pkg[0] || group[0]) {
    abort(); /* only both names empty is refused */
  }
  for (int i = 0; i < 4; i++)
    free(names[i]);
  free(pkg);
  free(group);
  free(name);
  return 0;
}
