/*
 * The conf_map itself: sections and options kept in arrays sorted by byte
 * order (the order Go's sort.Strings gives Dump), looked up by binary
 * search; the typed getters; Dump, JSON and the daemons' argument loader.
 */
#include "conf_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

struct conf_option {
    char *name; /* first member: see name_at() */
    char **vals;
    size_t count;
};

struct conf_section {
    char *name; /* first member: see name_at() */
    struct conf_option *opts;
    size_t n, cap;
};

struct conf_map {
    struct conf_section *secs;
    size_t n, cap;
};

conf_map *conf_new(void)
{
    return calloc(1, sizeof(conf_map));
}

static void free_vals(char **vals, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(vals[i]);
    free(vals);
}

void conf_free(conf_map *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        struct conf_section *s = &m->secs[i];

        for (size_t j = 0; j < s->n; j++) {
            free(s->opts[j].name);
            free_vals(s->opts[j].vals, s->opts[j].count);
        }
        free(s->opts);
        free(s->name);
    }
    free(m->secs);
    free(m);
}

/* --- sorted arrays of named elements ---------------------------------- */

/* Both element types start with their name, so one search serves both. */
static const char *name_at(const void *base, size_t size, size_t i)
{
    return *(char *const *)(const void *)((const char *)base + i * size);
}

/* strcmp order between a C string and a span. */
static int span_cmp(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Index of name in base[0..n), or where it would be inserted. */
static size_t search(const void *base, size_t n, size_t size, const char *name, size_t len,
                     bool *found)
{
    size_t lo = 0, hi = n;

    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = span_cmp(name_at(base, size, mid), name, len);

        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Open a zeroed slot at index idx of a growable array; NULL on ENOMEM. */
static void *insert_slot(void **base, size_t *n, size_t *cap, size_t size, size_t idx)
{
    char *b;

    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        void *nb;

        if (ncap > SIZE_MAX / size)
            return NULL;
        nb = realloc(*base, ncap * size);
        if (nb == NULL)
            return NULL;
        *base = nb;
        *cap = ncap;
    }
    b = *base;
    memmove(b + (idx + 1) * size, b + idx * size, (*n - idx) * size);
    memset(b + idx * size, 0, size);
    (*n)++;
    return b + idx * size;
}

static struct conf_section *find_section(const conf_map *m, const char *name, size_t len)
{
    bool found;
    size_t i = search(m->secs, m->n, sizeof(*m->secs), name, len, &found);

    return found ? &m->secs[i] : NULL;
}

static struct conf_option *find_option(const struct conf_section *s, const char *name,
                                       size_t len)
{
    bool found;
    size_t i = search(s->opts, s->n, sizeof(*s->opts), name, len, &found);

    return found ? &s->opts[i] : NULL;
}

static struct conf_section *get_or_add_section(conf_map *m, const char *name, size_t len)
{
    bool found;
    size_t i = search(m->secs, m->n, sizeof(*m->secs), name, len, &found);
    struct conf_section *s;
    char *copy;

    if (found)
        return &m->secs[i];
    copy = strndup(name, len);
    if (copy == NULL)
        return NULL;
    s = insert_slot((void **)&m->secs, &m->n, &m->cap, sizeof(*m->secs), i);
    if (s == NULL) {
        free(copy);
        return NULL;
    }
    s->name = copy;
    return s;
}

int conf_put(conf_map *m, const char *section, size_t section_len, const char *option,
             size_t option_len, char **vals, size_t count)
{
    struct conf_section *s = get_or_add_section(m, section, section_len);
    struct conf_option *o;
    bool found;
    size_t i;
    char *copy;

    if (s == NULL)
        goto nomem;
    i = search(s->opts, s->n, sizeof(*s->opts), option, option_len, &found);
    if (found) {
        o = &s->opts[i];
        free_vals(o->vals, o->count);
    } else {
        copy = strndup(option, option_len);
        if (copy == NULL)
            goto nomem;
        o = insert_slot((void **)&s->opts, &s->n, &s->cap, sizeof(*s->opts), i);
        if (o == NULL) {
            free(copy);
            goto nomem;
        }
        o->name = copy;
    }
    o->vals = vals;
    o->count = count;
    return 0;
nomem:
    free_vals(vals, count);
    return -ENOMEM;
}

int conf_set(conf_map *m, const char *section, const char *option, const char *const *values,
             size_t count)
{
    char **vals = NULL;

    if (m == NULL || section == NULL || option == NULL || (values == NULL && count > 0))
        return -EINVAL;
    if (count > 0) {
        vals = calloc(count, sizeof(*vals));
        if (vals == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
            vals[i] = strdup(values[i] ? values[i] : "");
            if (vals[i] == NULL) {
                free_vals(vals, i);
                return -ENOMEM;
            }
        }
    }
    return conf_put(m, section, strlen(section), option, strlen(option), vals, count);
}

int conf_set_if_missing(conf_map *m, const char *section, const char *option,
                        const char *const *values, size_t count)
{
    if (conf_has_option(m, section, option))
        return 0;
    return conf_set(m, section, option, values, count);
}

bool conf_has_section(const conf_map *m, const char *section)
{
    return m != NULL && section != NULL && find_section(m, section, strlen(section)) != NULL;
}

static const struct conf_option *lookup(const conf_map *m, const char *section,
                                        const char *option)
{
    const struct conf_section *s;

    if (m == NULL || section == NULL || option == NULL)
        return NULL;
    s = find_section(m, section, strlen(section));
    return s ? find_option(s, option, strlen(option)) : NULL;
}

bool conf_has_option(const conf_map *m, const char *section, const char *option)
{
    return lookup(m, section, option) != NULL;
}

bool conf_is_missing_or_empty(const conf_map *m, const char *section, const char *option)
{
    const struct conf_option *o = lookup(m, section, option);

    return o == NULL || o->count == 0;
}

/* --- getters ----------------------------------------------------------- */

/* "[S]O" for messages, both names cut to CONF_SHOW_MAX. */
struct key_text {
    char s[CONF_SHOW_BUF], o[CONF_SHOW_BUF];
};

static struct key_text *key_text(struct key_text *k, const char *section, const char *option)
{
    conf_show(k->s, section, strlen(section), 0);
    conf_show(k->o, option, strlen(option), 0);
    return k;
}

static int get_option(const conf_map *m, const char *section, const char *option,
                      const struct conf_option **out, char *err, size_t errlen)
{
    const struct conf_section *s;
    struct key_text k;

    if (m == NULL || section == NULL || option == NULL) {
        conf_err(err, errlen, "invalid argument");
        return -EINVAL;
    }
    s = find_section(m, section, strlen(section));
    if (s == NULL) {
        key_text(&k, section, option);
        conf_err(err, errlen, "[%s] missing", k.s);
        return -ENOENT;
    }
    *out = find_option(s, option, strlen(option));
    if (*out == NULL) {
        key_text(&k, section, option);
        conf_err(err, errlen, "[%s]%s missing", k.s, k.o);
        return -ENOENT;
    }
    return 0;
}

int conf_get_list(const conf_map *m, const char *section, const char *option,
                  const char *const **values, size_t *count, char *err, size_t errlen)
{
    const struct conf_option *o;
    int rc = get_option(m, section, option, &o, err, errlen);

    if (rc != 0)
        return rc;
    *values = (const char *const *)o->vals;
    *count = o->count;
    return 0;
}

int conf_get_string(const conf_map *m, const char *section, const char *option,
                    const char **value, char *err, size_t errlen)
{
    const struct conf_option *o;
    struct key_text k;
    int rc = get_option(m, section, option, &o, err, errlen);

    if (rc != 0)
        return rc;
    if (o->count != 1) {
        key_text(&k, section, option);
        conf_err(err, errlen, "[%s]%s must be single-valued", k.s, k.o);
        return -EINVAL;
    }
    *value = o->vals[0];
    return 0;
}

int conf_get_bool(const conf_map *m, const char *section, const char *option, bool *value,
                  char *err, size_t errlen)
{
    const char *v = NULL;
    char q[CONF_SHOW_BUF];
    int rc = conf_get_string(m, section, option, &v, err, errlen);

    if (rc != 0)
        return rc;
    if (conf_parse_bool(v, value) != 0) {
        conf_err(err, errlen,
                 "Couldn't interpret %s as boolean (expected one of "
                 "'true'/'false'/'yes'/'no'/'on'/'off')",
                 conf_show(q, v, strlen(v), 1));
        return -EINVAL;
    }
    return 0;
}

/* "[S]O strconv.ParseX() error: strconv.ParseX: parsing "v": why". */
static int strconv_error(char *err, size_t errlen, const char *section, const char *option,
                         const char *fn, const char *v, int rc)
{
    struct key_text k;
    char q[CONF_SHOW_BUF];

    key_text(&k, section, option);
    conf_err(err, errlen, "[%s]%s strconv.%s() error: strconv.%s: parsing %s: %s", k.s, k.o,
             fn, fn, conf_show(q, v, strlen(v), 1),
             rc == -ERANGE ? "value out of range"
             : rc == -EINVAL ? "invalid syntax"
                             : "out of memory");
    return rc;
}

static int get_uint(const conf_map *m, const char *section, const char *option, uint64_t max,
                    uint64_t *value, char *err, size_t errlen)
{
    const char *v = NULL;
    int rc = conf_get_string(m, section, option, &v, err, errlen);

    if (rc != 0)
        return rc;
    rc = conf_parse_u64(v, max, value);
    if (rc != 0)
        return strconv_error(err, errlen, section, option, "ParseUint", v, rc);
    return 0;
}

int conf_get_u8(const conf_map *m, const char *section, const char *option, uint8_t *value,
                char *err, size_t errlen)
{
    uint64_t v;
    int rc = get_uint(m, section, option, UINT8_MAX, &v, err, errlen);

    if (rc == 0)
        *value = (uint8_t)v;
    return rc;
}

int conf_get_u16(const conf_map *m, const char *section, const char *option, uint16_t *value,
                 char *err, size_t errlen)
{
    uint64_t v;
    int rc = get_uint(m, section, option, UINT16_MAX, &v, err, errlen);

    if (rc == 0)
        *value = (uint16_t)v;
    return rc;
}

int conf_get_u32(const conf_map *m, const char *section, const char *option, uint32_t *value,
                 char *err, size_t errlen)
{
    uint64_t v;
    int rc = get_uint(m, section, option, UINT32_MAX, &v, err, errlen);

    if (rc == 0)
        *value = (uint32_t)v;
    return rc;
}

int conf_get_u64(const conf_map *m, const char *section, const char *option, uint64_t *value,
                 char *err, size_t errlen)
{
    return get_uint(m, section, option, UINT64_MAX, value, err, errlen);
}

int conf_get_double(const conf_map *m, const char *section, const char *option, double *value,
                    char *err, size_t errlen)
{
    const char *v = NULL;
    int rc = conf_get_string(m, section, option, &v, err, errlen);

    if (rc != 0)
        return rc;
    rc = conf_parse_float(v, value);
    if (rc != 0)
        return strconv_error(err, errlen, section, option, "ParseFloat", v, rc);
    return 0;
}

int conf_get_duration_ns(const conf_map *m, const char *section, const char *option,
                         uint64_t *ns, char *err, size_t errlen)
{
    const char *v = NULL;
    int64_t d;
    struct key_text k;
    int rc = conf_get_string(m, section, option, &v, err, errlen);

    if (rc != 0)
        return rc;
    /* The original returns time.ParseDuration's error text unwrapped. */
    rc = conf_parse_duration_signed(v, &d, err, errlen);
    if (rc != 0)
        return rc;
    if (d < 0) {
        key_text(&k, section, option);
        conf_err(err, errlen, "[%s]%s is negative", k.s, k.o);
        return -EINVAL;
    }
    *ns = (uint64_t)d;
    return 0;
}

/* value * mult rounded to nearest; 0 <= result < limit (limit is the
 * type's max as a double, which the original also refuses). */
static int get_scaled(const conf_map *m, const char *section, const char *option, double mult,
                      double limit, const char *type, double *scaled, char *err, size_t errlen)
{
    double v;
    struct key_text k;
    int rc = conf_get_double(m, section, option, &v, err, errlen);

    if (rc != 0)
        return rc;
    if (v < 0.0) {
        key_text(&k, section, option);
        conf_err(err, errlen, "[%s]%s is negative", k.s, k.o);
        return -EINVAL;
    }
    *scaled = v * mult + 0.5;
    /* Written so NaN (and a negative multiplier) fails too. */
    if (!(*scaled >= 0.0 && *scaled < limit)) {
        key_text(&k, section, option);
        conf_err(err, errlen, "[%s]%s after scaling won't fit in %s", k.s, k.o, type);
        return -ERANGE;
    }
    return 0;
}

int conf_get_float_scaled_u32(const conf_map *m, const char *section, const char *option,
                              double mult, uint32_t *value, char *err, size_t errlen)
{
    double d;
    int rc = get_scaled(m, section, option, mult, (double)UINT32_MAX, "uint32", &d, err, errlen);

    if (rc == 0)
        *value = (uint32_t)d;
    return rc;
}

int conf_get_float_scaled_u64(const conf_map *m, const char *section, const char *option,
                              double mult, uint64_t *value, char *err, size_t errlen)
{
    double d;
    int rc = get_scaled(m, section, option, mult, 18446744073709551616.0, "uint64", &d, err,
                        errlen);

    if (rc == 0)
        *value = (uint64_t)d;
    return rc;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int conf_get_uuid(const conf_map *m, const char *section, const char *option, uint8_t uuid[16],
                  char *err, size_t errlen)
{
    /* RFC 4122 fields: offset in the text, hex digits, name in messages. */
    static const struct {
        size_t off, len;
        const char *name;
    } fields[] = {
        {0, 8, "time_low"},        {9, 4, "time_mid"},     {14, 4, "time_hi_and_version"},
        {19, 2, "clk_seq_hi_res"}, {21, 2, "clk_seq_low"}, {24, 12, "node"},
    };
    const char *v = NULL;
    uint8_t out[16];
    size_t len, b = 0;
    struct key_text k;
    char q[CONF_SHOW_BUF];
    int rc = conf_get_string(m, section, option, &v, err, errlen);

    if (rc != 0)
        return rc;
    len = strlen(v);
    key_text(&k, section, option);
    if (len != 36) {
        conf_err(err, errlen, "[%s]%s UUID string (\"%s\") has invalid length (%zu)", k.s, k.o,
                 conf_show(q, v, len, 0), len);
        return -EINVAL;
    }
    if (v[8] != '-' || v[13] != '-' || v[18] != '-' || v[23] != '-') {
        conf_err(err, errlen, "[%s]%s UUID string (\"%s\") has missing '-' separators", k.s,
                 k.o, conf_show(q, v, len, 0));
        return -EINVAL;
    }
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        const char *p = v + fields[f].off;

        for (size_t i = 0; i < fields[f].len; i += 2) {
            int hi = hex_nibble(p[i]), lo = hex_nibble(p[i + 1]);

            if (hi < 0 || lo < 0) {
                conf_err(err, errlen, "[%s]%s %s (\"%s\") invalid", k.s, k.o, fields[f].name,
                         conf_show(q, p, fields[f].len, 0));
                return -EINVAL;
            }
            out[b++] = (uint8_t)(hi << 4 | lo);
        }
    }
    memcpy(uuid, out, sizeof(out));
    return 0;
}

/* --- output ------------------------------------------------------------ */

int conf_dump(const conf_map *m, FILE *out)
{
    if (m == NULL || out == NULL)
        return -EINVAL;
    for (size_t i = 0; i < m->n; i++) {
        const struct conf_section *s = &m->secs[i];
        size_t width = 0;

        if (i > 0)
            fputc('\n', out);
        fprintf(out, "[%s]\n", s->name);
        for (size_t j = 0; j < s->n; j++) {
            size_t l = strlen(s->opts[j].name);

            if (l > width)
                width = l;
        }
        for (size_t j = 0; j < s->n; j++) {
            const struct conf_option *o = &s->opts[j];

            fprintf(out, "%s:%*s", o->name, (int)(width - strlen(o->name)), "");
            for (size_t v = 0; v < o->count; v++)
                fprintf(out, "%s%s", v == 0 ? " " : ", ", o->vals[v]);
            fputc('\n', out);
        }
    }
    return ferror(out) ? -EIO : 0;
}

/* A JSON object {"Option":["v",...],...} for one section, NULL on failure
 * (no memory, or a name or value that is not UTF-8). */
static json_t *section_json(const struct conf_section *s)
{
    json_t *obj = json_object();

    for (size_t j = 0; obj != NULL && j < s->n; j++) {
        const struct conf_option *o = &s->opts[j];
        json_t *arr = json_array();

        for (size_t v = 0; arr != NULL && v < o->count; v++) {
            json_t *str = json_string(o->vals[v]);

            if (str == NULL || json_array_append_new(arr, str) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        if (arr == NULL || json_object_set_new(obj, o->name, arr) != 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

char *conf_to_json(const conf_map *m)
{
    json_t *root;
    char *text;

    if (m == NULL)
        return NULL;
    root = json_object();
    for (size_t i = 0; root != NULL && i < m->n; i++) {
        json_t *sec = section_json(&m->secs[i]);

        if (sec == NULL || json_object_set_new(root, m->secs[i].name, sec) != 0) {
            json_decref(root);
            root = NULL;
        }
    }
    if (root == NULL)
        return NULL;
    /* Insertion order is the sorted order, so the text is deterministic. */
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

/* --- daemons' command line --------------------------------------------- */

int conf_load_args(int argc, char *const argv[], conf_map **out, char *err, size_t errlen)
{
    char inner[CONF_ERR_MAX];
    conf_map *m;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (argc < 1 || argv == NULL || argv[0] == NULL) {
        conf_err(err, errlen, "no .conf file specified");
        return -EINVAL;
    }
    m = conf_new();
    if (m == NULL) {
        conf_err(err, errlen, "failed to load config: out of memory");
        return -ENOMEM;
    }
    inner[0] = '\0';
    rc = conf_update_from_file(m, argv[0], inner, sizeof(inner));
    if (rc != 0) {
        conf_err(err, errlen, "failed to load config: %s", inner);
        conf_free(m);
        return rc;
    }
    for (int i = 1; i < argc; i++) {
        rc = conf_update_from_string(m, argv[i], inner, sizeof(inner));
        if (rc != 0) {
            conf_err(err, errlen, "failed to apply config overrides: %s", inner);
            conf_free(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}
