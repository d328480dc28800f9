/*
 * Parsing of .conf files and of "Section.Option=values" strings.
 *
 * The original matches each line against regular expressions; the same
 * regular languages are recognised here by tiny NFAs over character
 * classes (match_nfa), and lines are then split the way Go's
 * regexp.Split does (leftmost-first), quirks included.
 */
#include "conf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- character classes and NFAs --------------------------------------- */

enum {
    C_TOK = 1 << 0,    /* token: 0-9 A-Z a-z _ * - / : . [ ] */
    C_VAL = 1 << 1,    /* value: 0-9 A-Z a-z _ = * - + / : . [ ] " { } \ */
    C_SEC = 1 << 2,    /* section name: 0-9 A-Z a-z _ - / : . */
    C_BLANK = 1 << 3,  /* space, tab */
    C_ASSIGN = 1 << 4, /* = : */
    C_DOLLAR = 1 << 5,
    C_DOT = 1 << 6,
    C_COMMA = 1 << 7,
    C_LBRACKET = 1 << 8,
    C_RBRACKET = 1 << 9,
};

static unsigned classify(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
        c == '-' || c == '/')
        return C_TOK | C_VAL | C_SEC;
    switch (c) {
    case ':':
        return C_TOK | C_VAL | C_SEC | C_ASSIGN;
    case '.':
        return C_TOK | C_VAL | C_SEC | C_DOT;
    case '*':
        return C_TOK | C_VAL;
    case '[':
        return C_TOK | C_VAL | C_LBRACKET;
    case ']':
        return C_TOK | C_VAL | C_RBRACKET;
    case '=':
        return C_VAL | C_ASSIGN;
    case '+':
    case '"':
    case '{':
    case '}':
    case '\\':
        return C_VAL;
    case ' ':
    case '\t':
        return C_BLANK;
    case '$':
        return C_DOLLAR;
    case ',':
        return C_COMMA;
    default:
        return 0;
    }
}

struct edge {
    unsigned char from, to;
    unsigned short cls;
};

struct nfa {
    const struct edge *edges;
    size_t n;
    unsigned accept; /* bit set of accepting states; state 0 starts */
};

static bool match_nfa(const struct nfa *a, const char *s, size_t len)
{
    unsigned states = 1;

    for (size_t i = 0; i < len && states != 0; i++) {
        unsigned cls = classify((unsigned char)s[i]), next = 0;

        for (size_t e = 0; e < a->n; e++)
            if ((states & 1u << a->edges[e].from) && (cls & a->edges[e].cls))
                next |= 1u << a->edges[e].to;
        states = next;
    }
    return (states & a->accept) != 0;
}

/* token assignment [value (separator value)*] starting in state b, where b
 * is "token seen, no '$' yet". States b..b+7; b+3, b+4, b+5 accept. */
#define ASSIGN_AND_VALUES(b)                                                                     \
    {b, b + 1, C_DOLLAR}, {b, b + 2, C_BLANK}, {b, b + 3, C_ASSIGN}, {b + 1, b + 2, C_BLANK},    \
        {b + 1, b + 3, C_ASSIGN}, {b + 2, b + 2, C_BLANK}, {b + 2, b + 3, C_ASSIGN},             \
        {b + 3, b + 3, C_BLANK}, {b + 3, b + 4, C_VAL}, {b + 4, b + 4, C_VAL},                   \
        {b + 4, b + 5, C_DOLLAR}, {b + 4, b + 6, C_BLANK}, {b + 4, b + 7, C_COMMA},              \
        {b + 5, b + 6, C_BLANK}, {b + 5, b + 7, C_COMMA}, {b + 6, b + 6, C_BLANK},               \
        {b + 6, b + 7, C_COMMA}, {b + 6, b + 4, C_VAL}, {b + 7, b + 7, C_BLANK},                 \
        {b + 7, b + 4, C_VAL}
#define ASSIGN_AND_VALUES_ACCEPT(b) (7u << (b + 3))

/* Option line: token assignment [values]. */
static const struct edge option_edges[] = {{0, 1, C_TOK}, {1, 1, C_TOK}, ASSIGN_AND_VALUES(1)};
static const struct nfa option_nfa = {option_edges, sizeof(option_edges) / sizeof(struct edge),
                                      ASSIGN_AND_VALUES_ACCEPT(1)};

/* Override string: token '.' token assignment [values]. */
static const struct edge string_edges[] = {
    {0, 1, C_TOK}, {1, 1, C_TOK}, {1, 2, C_DOLLAR}, {1, 3, C_DOT}, {2, 3, C_DOT},
    {3, 4, C_TOK}, {4, 4, C_TOK}, ASSIGN_AND_VALUES(4)};
static const struct nfa string_nfa = {string_edges, sizeof(string_edges) / sizeof(struct edge),
                                      ASSIGN_AND_VALUES_ACCEPT(4)};

/* Section header: '[' token ']'. */
static const struct edge section_edges[] = {
    {0, 1, C_LBRACKET}, {1, 2, C_TOK},      {2, 2, C_TOK},
    {2, 3, C_DOLLAR},   {2, 4, C_RBRACKET}, {3, 4, C_RBRACKET}};
static const struct nfa section_nfa = {section_edges,
                                       sizeof(section_edges) / sizeof(struct edge), 1u << 4};

/* What follows ".include": blanks token. */
static const struct edge include_edges[] = {
    {0, 1, C_BLANK}, {1, 1, C_BLANK}, {1, 2, C_TOK}, {2, 2, C_TOK}, {2, 3, C_DOLLAR}};
static const struct nfa include_nfa = {include_edges,
                                       sizeof(include_edges) / sizeof(struct edge), 3u << 2};

/* --- splitting --------------------------------------------------------- */

/* The first match of assignment ([ \t]*[=:][ \t]*): [*start, *end). The
 * caller has matched a grammar that guarantees one exists. */
static void find_assignment(const char *s, size_t len, size_t *start, size_t *end)
{
    size_t p = 0;

    while (p < len && !(classify((unsigned char)s[p]) & C_ASSIGN))
        p++;
    *start = p;
    while (*start > 0 && (classify((unsigned char)s[*start - 1]) & C_BLANK))
        (*start)--;
    *end = p + 1;
    while (*end < len && (classify((unsigned char)s[*end]) & C_BLANK))
        (*end)++;
}

/* A copy of s[0..len) with \u0020 -> ' ' and \u002C -> ',' (u or U, C or c). */
static char *unescape(const char *s, size_t len)
{
    char *out = malloc(len + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len;) {
        if (s[i] == '\\' && len - i >= 6 && (s[i + 1] | 0x20) == 'u' &&
            memcmp(s + i + 2, "002", 3) == 0) {
            if (s[i + 5] == '0') {
                *o++ = ' ';
                i += 6;
                continue;
            }
            if ((s[i + 5] | 0x20) == 'c') {
                *o++ = ',';
                i += 6;
                continue;
            }
        }
        *o++ = s[i++];
    }
    *o = '\0';
    return out;
}

/*
 * Split values like Go's separator regexp ([ \t]+|[ \t]*,[ \t]*) with
 * Split(-1): leftmost-first, so a blank run is a separator on its own and
 * "a , b" gives "a", "", "b" exactly as the original does. A lone empty
 * piece means no values. Each piece is unescaped.
 */
static int split_values(const char *s, size_t len, char ***out, size_t *count)
{
    size_t n = 1, beg = 0, k = 0;
    char **vals;

    *out = NULL;
    *count = 0;
    if (len == 0)
        return 0;
    /* Separators: every comma, and every blank run not right after one. */
    for (size_t j = 0; j < len; j++) {
        unsigned c = classify((unsigned char)s[j]);

        if ((c & C_COMMA) || ((c & C_BLANK) && (j == 0 || !(classify((unsigned char)s[j - 1]) &
                                                           (C_BLANK | C_COMMA)))))
            n++;
    }
    vals = calloc(n, sizeof(*vals));
    if (vals == NULL)
        return -ENOMEM;
    for (;;) {
        size_t sep = beg;

        while (sep < len && !(classify((unsigned char)s[sep]) & (C_BLANK | C_COMMA)))
            sep++;
        vals[k] = unescape(s + beg, sep - beg);
        if (vals[k] == NULL) {
            for (size_t j = 0; j < k; j++)
                free(vals[j]);
            free(vals);
            return -ENOMEM;
        }
        k++;
        if (sep == len)
            break;
        /* The separator is the blank run, or the comma and the blanks after it. */
        for (beg = sep + 1; beg < len && (classify((unsigned char)s[beg]) & C_BLANK); beg++)
            ;
    }
    *out = vals;
    *count = k;
    return 0;
}

/* Store "option-name assignment values" (already grammar-checked) in
 * [section]. */
static int store_option(conf_map *m, const char *sec, size_t seclen, const char *s, size_t len)
{
    size_t astart, aend, count;
    char **vals;
    int rc;

    find_assignment(s, len, &astart, &aend);
    rc = split_values(s + aend, len - aend, &vals, &count);
    if (rc != 0)
        return rc;
    return conf_put(m, sec, seclen, s, astart, vals, count);
}

/* --- command-line overrides -------------------------------------------- */

int conf_update_from_string(conf_map *m, const char *s, char *err, size_t errlen)
{
    char q[CONF_SHOW_BUF];
    size_t len, b, e;
    const char *dot;
    int rc;

    if (m == NULL || s == NULL) {
        conf_err(err, errlen, "invalid argument");
        return -EINVAL;
    }
    len = strlen(s);
    for (b = 0; b < len && (s[b] == ' ' || s[b] == '\t'); b++)
        ;
    for (e = len; e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'); e--)
        ;
    if (b == e) {
        conf_err(err, errlen, "trimmed confString: \"%s\" was found to be empty",
                 conf_show(q, s, len, 0));
        return -EINVAL;
    }
    if (!match_nfa(&string_nfa, s + b, e - b)) {
        conf_err(err, errlen, "malformed confString: \"%s\"", conf_show(q, s, len, 0));
        return -EINVAL;
    }
    dot = memchr(s + b, '.', e - b);
    rc = store_option(m, s + b, (size_t)(dot - (s + b)), dot + 1, (size_t)(s + e - dot - 1));
    if (rc != 0)
        conf_err(err, errlen, "out of memory");
    return rc;
}

/* --- files ------------------------------------------------------------- */

struct load {
    conf_map *m;
    unsigned flags;
    size_t budget; /* bytes still allowed to be read */
    unsigned depth;
    struct {
        dev_t dev;
        ino_t ino;
    } open[CONF_INCLUDE_DEPTH_MAX + 1]; /* files being read, outermost first */
    char *err;
    size_t errlen;
};

static int parse_buffer(struct load *ld, const char *name, const char *data, size_t len);

/* Go-style "<op> <path>: <strerror in lower case>". */
static int os_error(struct load *ld, const char *op, const char *path, int e)
{
    char p[CONF_SHOW_BUF], msg[128];

    snprintf(msg, sizeof(msg), "%s", strerror(e));
    if (msg[0] >= 'A' && msg[0] <= 'Z' && !(msg[1] >= 'A' && msg[1] <= 'Z'))
        msg[0] = (char)(msg[0] | 0x20);
    conf_err(ld->err, ld->errlen, "%s %s: %s", op, conf_show(p, path, strlen(path), 0), msg);
    return -e;
}

/* Read all of fd, at most ld->budget bytes. */
static int read_all(struct load *ld, int fd, const char *path, char **out, size_t *outlen)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    char p[CONF_SHOW_BUF];

    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        ssize_t r;

        if (len == cap) {
            char *nb;

            if (len >= ld->budget) {
                free(buf);
                conf_err(ld->err, ld->errlen,
                         "file %s is too large (.conf input is limited to %u bytes in all)",
                         conf_show(p, path, strlen(path), 0), CONF_LOAD_MAX);
                return -EFBIG;
            }
            cap = cap * 2 > ld->budget + 1 ? ld->budget + 1 : cap * 2;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
        }
        r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;

            free(buf);
            return os_error(ld, "read", path, e);
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > ld->budget) {
        free(buf);
        conf_err(ld->err, ld->errlen,
                 "file %s is too large (.conf input is limited to %u bytes in all)",
                 conf_show(p, path, strlen(path), 0), CONF_LOAD_MAX);
        return -EFBIG;
    }
    ld->budget -= len;
    *out = buf;
    *outlen = len;
    return 0;
}

/* Open, check against the include chain, read and parse one file. */
static int load_file(struct load *ld, const char *path, const char *from, unsigned long lineno)
{
    bool is_stdin = ld->depth == 0 && strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    int rc;

    if (fd < 0)
        return os_error(ld, "open", path, errno);
    if (fstat(fd, &st) != 0) {
        rc = os_error(ld, "stat", path, errno);
        goto out;
    }
    for (unsigned i = 0; i < ld->depth; i++) {
        if (ld->open[i].dev == st.st_dev && ld->open[i].ino == st.st_ino) {
            char a[CONF_SHOW_BUF], b[CONF_SHOW_BUF];

            conf_err(ld->err, ld->errlen, "file %s line %lu: .include %s forms an include cycle",
                     conf_show(a, from, strlen(from), 0), lineno,
                     conf_show(b, path, strlen(path), 0));
            rc = -ELOOP;
            goto out;
        }
    }
    ld->open[ld->depth].dev = st.st_dev;
    ld->open[ld->depth].ino = st.st_ino;
    rc = read_all(ld, fd, path, &data, &len);
    if (rc == 0) {
        ld->depth++;
        rc = parse_buffer(ld, path, data, len);
        ld->depth--;
    }
out:
    free(data);
    if (!is_stdin)
        close(fd);
    return rc;
}

/* ".include <path>": a relative path is taken from the directory of the
 * including file, made absolute like Go's filepath.Abs would. */
static int include_file(struct load *ld, const char *name, unsigned long lineno,
                        const char *path, size_t plen)
{
    char a[CONF_SHOW_BUF], full[PATH_MAX];
    size_t used = 0;

    conf_show(a, name, strlen(name), 0);
    if (ld->flags & CONF_BUF_NO_INCLUDE) {
        conf_err(ld->err, ld->errlen, "file %s line %lu: .include is not allowed here", a, lineno);
        return -EPERM;
    }
    if (ld->depth > CONF_INCLUDE_DEPTH_MAX) {
        conf_err(ld->err, ld->errlen, "file %s line %lu: .include nested deeper than %u", a,
                 lineno, CONF_INCLUDE_DEPTH_MAX);
        return -ELOOP;
    }
    if (path[0] != '/') {
        const char *slash = strrchr(name, '/');
        size_t dlen = slash ? (size_t)(slash - name) : 0;

        if (name[0] != '/') {
            if (getcwd(full, sizeof(full)) == NULL)
                return os_error(ld, "getwd", ".", errno);
            used = strlen(full);
            full[used++] = '/';
        }
        if (used + dlen + 1 >= sizeof(full))
            goto too_long;
        memcpy(full + used, name, dlen);
        used += dlen;
        if (used == 0 || full[used - 1] != '/')
            full[used++] = '/';
    }
    if (used + plen + 1 > sizeof(full))
        goto too_long;
    memcpy(full + used, path, plen);
    full[used + plen] = '\0';
    return load_file(ld, full, name, lineno);
too_long:
    conf_err(ld->err, ld->errlen, "file %s line %lu: .include path too long", a, lineno);
    return -ENAMETOOLONG;
}

/* One line, comments not yet removed; sec and seclen track the section. */
static int parse_line(struct load *ld, const char *name, unsigned long lineno, const char *s,
                      size_t len, const char **sec, size_t *seclen)
{
    const char *cut;
    char a[CONF_SHOW_BUF], b[CONF_SHOW_BUF];
    int rc;

    if ((cut = memchr(s, ';', len)) != NULL)
        len = (size_t)(cut - s);
    if ((cut = memchr(s, '#', len)) != NULL)
        len = (size_t)(cut - s);
    while (len > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0)
        return 0;

    if (len > 8 && memcmp(s, ".include", 8) == 0 && match_nfa(&include_nfa, s + 8, len - 8)) {
        size_t p = 8;

        while (classify((unsigned char)s[p]) & C_BLANK)
            p++;
        rc = include_file(ld, name, lineno, s + p, len - p);
        *sec = NULL; /* the including file must open a new section */
        *seclen = 0;
        return rc;
    }
    if (match_nfa(&section_nfa, s, len)) {
        /* The name is the first run of section-name characters; a header
         * with none (e.g. "[*]") leaves no section current, as upstream. */
        size_t i = 0, j;

        while (i < len && !(classify((unsigned char)s[i]) & C_SEC))
            i++;
        for (j = i; j < len && (classify((unsigned char)s[j]) & C_SEC); j++)
            ;
        *sec = j > i ? s + i : NULL;
        *seclen = j - i;
        return 0;
    }
    if (*sec == NULL) {
        conf_err(ld->err, ld->errlen, "file %s did not start with a Section Name (line %lu)",
                 conf_show(a, name, strlen(name), 0), lineno);
        return -EINVAL;
    }
    if (!match_nfa(&option_nfa, s, len)) {
        conf_err(ld->err, ld->errlen, "file %s malformed line '%s' (line %lu)",
                 conf_show(a, name, strlen(name), 0), conf_show(b, s, len, 0), lineno);
        return -EINVAL;
    }
    rc = store_option(ld->m, *sec, *seclen, s, len);
    if (rc != 0)
        conf_err(ld->err, ld->errlen, "out of memory");
    return rc;
}

/*
 * Strict UTF-8 decode of one character at s (len > 0): its length, or 0 if
 * invalid. Like the original (which compares against utf8.RuneError), an
 * encoded U+FFFD counts as invalid too.
 */
static size_t utf8_char(const unsigned char *s, size_t len)
{
    unsigned c = s[0], cp;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFD)) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

static int parse_buffer(struct load *ld, const char *name, const char *data, size_t len)
{
    char a[CONF_SHOW_BUF];
    const char *sec = NULL;
    size_t seclen = 0, off = 0, line_start = 0;
    unsigned long lineno = 0;
    int rc;

    while (off < len) {
        size_t n = utf8_char((const unsigned char *)data + off, len - off);

        if (n == 0) {
            conf_err(ld->err, ld->errlen, "file %s contained invalid UTF-8 at byte %zu (line %lu)",
                     conf_show(a, name, strlen(name), 0), off, lineno + 1);
            return -EINVAL;
        }
        if (data[off] == '\n') {
            lineno++;
            rc = parse_line(ld, name, lineno, data + line_start, off - line_start, &sec, &seclen);
            if (rc != 0)
                return rc;
            line_start = off + 1;
        } else if (off + n - line_start > CONF_LINE_MAX) {
            conf_err(ld->err, ld->errlen, "file %s line %lu is longer than %u bytes",
                     conf_show(a, name, strlen(name), 0), lineno + 1, CONF_LINE_MAX);
            return -EINVAL;
        }
        off += n;
    }
    if (len > 0 && data[len - 1] != '\n') {
        conf_err(ld->err, ld->errlen, "file %s did not end in a '\\n' character",
                 conf_show(a, name, strlen(name), 0));
        return -EINVAL;
    }
    return 0;
}

static void load_init(struct load *ld, conf_map *m, unsigned flags, char *err, size_t errlen)
{
    memset(ld, 0, sizeof(*ld));
    ld->m = m;
    ld->flags = flags;
    ld->budget = CONF_LOAD_MAX;
    ld->err = err;
    ld->errlen = errlen;
}

int conf_update_from_file(conf_map *m, const char *path, char *err, size_t errlen)
{
    struct load ld;

    if (m == NULL || path == NULL) {
        conf_err(err, errlen, "invalid argument");
        return -EINVAL;
    }
    load_init(&ld, m, 0, err, errlen);
    return load_file(&ld, path, path, 0);
}

int conf_update_from_buffer(conf_map *m, const char *name, const char *data, size_t len,
                            unsigned flags, char *err, size_t errlen)
{
    struct load ld;

    if (m == NULL || name == NULL || (data == NULL && len > 0)) {
        conf_err(err, errlen, "invalid argument");
        return -EINVAL;
    }
    /* The buffer has no file identity, so it is not in the include chain. */
    load_init(&ld, m, flags, err, errlen);
    return parse_buffer(&ld, name, data, len);
}
