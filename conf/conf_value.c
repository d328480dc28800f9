/*
 * Value conversions with the Go standard library's acceptance rules
 * (strconv.ParseUint base 10, strconv.ParseFloat, time.ParseDuration), and
 * the message helpers every conf file shares.
 */
#include "conf_internal.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void conf_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Length of the UTF-8 sequence a lead byte announces (1 for anything odd). */
static size_t utf8_seq_len(unsigned char c)
{
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    return 1;
}

const char *conf_show(char *out, const char *s, size_t len, int goquote)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i = 0;

    if (goquote)
        out[o++] = '"';
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        char piece[8];
        size_t plen = 0, consumed = 1;

        if (c < 0x20 || c == 0x7F || (goquote && c >= 0x80)) {
            piece[plen++] = '\\';
            piece[plen++] = 'x';
            piece[plen++] = hex[c >> 4];
            piece[plen++] = hex[c & 0xF];
        } else if (goquote && (c == '"' || c == '\\')) {
            piece[plen++] = '\\';
            piece[plen++] = (char)c;
        } else if (c >= 0x80) {
            /* Keep a multi-byte character whole so a cut never splits it. */
            consumed = utf8_seq_len(c);
            if (consumed > len - i)
                consumed = len - i;
            memcpy(piece, s + i, consumed);
            plen = consumed;
        } else {
            piece[plen++] = (char)c;
        }
        if (o + plen > CONF_SHOW_MAX + (goquote ? 1u : 0u)) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, piece, plen);
        o += plen;
        i += consumed;
    }
    if (goquote)
        out[o++] = '"';
    out[o] = '\0';
    return out;
}

int conf_parse_u64(const char *s, uint64_t max, uint64_t *value)
{
    uint64_t n = 0;

    if (s == NULL || *s == '\0')
        return -EINVAL;
    /* Same order of checks as Go's ParseUint: a digit that overflows is a
     * range error even if a bad character follows it. */
    for (; *s != '\0'; s++) {
        uint64_t d;

        if (*s < '0' || *s > '9')
            return -EINVAL;
        d = (uint64_t)(*s - '0');
        if (n > UINT64_MAX / 10)
            return -ERANGE;
        n *= 10;
        if (n + d < n || n + d > max)
            return -ERANGE;
        n += d;
    }
    *value = n;
    return 0;
}

int conf_parse_bool(const char *s, bool *value)
{
    static const char *const yes[] = {"yes", "on", "true"};
    static const char *const no[] = {"no", "off", "false"};

    if (s == NULL)
        return -EINVAL;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *value = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *value = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Case-insensitive count of leading bytes s shares with lower-case word. */
static size_t prefix_ci(const char *s, const char *word)
{
    size_t n = 0;

    while (s[n] != '\0' && word[n] != '\0' && (s[n] | 0x20) == word[n])
        n++;
    return n;
}

/* Go's ParseFloat grammar without underscores (only legal after a 0x
 * prefix in Go, and unused in configuration files). */
static bool float_syntax_ok(const char *s, bool *is_inf)
{
    size_t i = 0, n;
    bool hexa = false, digits = false, dot = false;

    *is_inf = false;
    if (s[0] == 'n' || s[0] == 'N')
        return prefix_ci(s, "nan") == 3 && s[3] == '\0';
    if (s[i] == '+' || s[i] == '-')
        i++;
    if (s[i] == 'i' || s[i] == 'I') {
        n = prefix_ci(s + i, "infinity");
        *is_inf = (n == 3 || n == 8) && s[i + n] == '\0';
        return *is_inf;
    }
    if (s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        hexa = true;
        i += 2;
    }
    for (;; i++) {
        char c = s[i];

        if (c == '.' && !dot)
            dot = true;
        else if ((c >= '0' && c <= '9') ||
                 (hexa && ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')))
            digits = true;
        else
            break;
    }
    if (!digits)
        return false;
    if ((s[i] | 0x20) == (hexa ? 'p' : 'e')) {
        i++;
        if (s[i] == '+' || s[i] == '-')
            i++;
        if (s[i] < '0' || s[i] > '9')
            return false;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    } else if (hexa) {
        return false; /* a hexadecimal mantissa needs a 'p' exponent */
    }
    return s[i] == '\0';
}

int conf_parse_float(const char *s, double *value)
{
    bool is_inf;
    locale_t c_locale;
    double v;

    if (s == NULL || !float_syntax_ok(s, &is_inf))
        return -EINVAL;
    /* The syntax is already Go's; strtod does the correctly rounded
     * conversion, in the C locale whatever the process has set. */
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0)
        return -ENOMEM;
    v = strtod_l(s, NULL, c_locale);
    freelocale(c_locale);
    if ((v == HUGE_VAL || v == -HUGE_VAL) && !is_inf)
        return -ERANGE; /* underflow to 0 or a denormal is not an error in Go */
    *value = v;
    return 0;
}

/* --- time.ParseDuration ---------------------------------------------- */

#define DUR_LIMIT (UINT64_C(1) << 63)

static const struct {
    const char *name;
    uint64_t ns;
} duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000}, /* U+03BC Greek small mu */
    {"ms", 1000000},
    {"s", UINT64_C(1000000000)},
    {"m", UINT64_C(60000000000)},
    {"h", UINT64_C(3600000000000)},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int duration_error(char *err, size_t errlen, const char *what, const char *orig)
{
    char q[CONF_SHOW_BUF];

    conf_err(err, errlen, "time: %s duration %s", what, conf_show(q, orig, strlen(orig), 1));
    return -EINVAL;
}

int conf_parse_duration_signed(const char *orig, int64_t *ns, char *err, size_t errlen)
{
    const char *s = orig;
    uint64_t d = 0;
    bool neg = false;

    if (orig == NULL)
        return -EINVAL;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0')
        return duration_error(err, errlen, "invalid", orig);
    while (*s != '\0') {
        uint64_t v = 0, f = 0, unit = 0;
        double scale = 1.0;
        bool pre = false, post = false, f_overflow = false;
        const char *u;
        size_t ulen, k;

        if (!(*s == '.' || is_digit(*s)))
            return duration_error(err, errlen, "invalid", orig);
        for (; is_digit(*s); s++) {
            pre = true;
            if (v > DUR_LIMIT / 10)
                return duration_error(err, errlen, "invalid", orig);
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > DUR_LIMIT)
                return duration_error(err, errlen, "invalid", orig);
        }
        if (*s == '.') {
            /* Fraction digits beyond 63 bits of precision are skipped. */
            for (s++; is_digit(*s); s++) {
                post = true;
                if (f_overflow)
                    continue;
                if (f > (DUR_LIMIT - 1) / 10 || f * 10 + (uint64_t)(*s - '0') > DUR_LIMIT) {
                    f_overflow = true;
                    continue;
                }
                f = f * 10 + (uint64_t)(*s - '0');
                scale *= 10;
            }
        }
        if (!pre && !post)
            return duration_error(err, errlen, "invalid", orig);
        u = s;
        while (*s != '\0' && *s != '.' && !is_digit(*s))
            s++;
        ulen = (size_t)(s - u);
        if (ulen == 0)
            return duration_error(err, errlen, "missing unit in", orig);
        for (k = 0; k < sizeof(duration_units) / sizeof(duration_units[0]); k++) {
            if (strlen(duration_units[k].name) == ulen &&
                memcmp(duration_units[k].name, u, ulen) == 0) {
                unit = duration_units[k].ns;
                break;
            }
        }
        if (unit == 0) {
            char qu[CONF_SHOW_BUF], qo[CONF_SHOW_BUF];

            conf_err(err, errlen, "time: unknown unit %s in duration %s",
                     conf_show(qu, u, ulen, 1), conf_show(qo, orig, strlen(orig), 1));
            return -EINVAL;
        }
        if (v > DUR_LIMIT / unit)
            return duration_error(err, errlen, "invalid", orig);
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > DUR_LIMIT)
                return duration_error(err, errlen, "invalid", orig);
        }
        d += v;
        if (d > DUR_LIMIT)
            return duration_error(err, errlen, "invalid", orig);
    }
    if (neg) {
        *ns = d == DUR_LIMIT ? INT64_MIN : -(int64_t)d;
        return 0;
    }
    if (d > DUR_LIMIT - 1)
        return duration_error(err, errlen, "invalid", orig);
    *ns = (int64_t)d;
    return 0;
}

int conf_parse_duration_ns(const char *s, uint64_t *ns)
{
    int64_t d;
    int rc = conf_parse_duration_signed(s, &d, NULL, 0);

    if (rc != 0)
        return rc;
    if (d < 0)
        return -EINVAL;
    *ns = (uint64_t)d;
    return 0;
}
