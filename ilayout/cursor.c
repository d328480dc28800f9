/* Little-endian cursors: the only place in ilayout that touches raw bytes.
 * Byte-by-byte assembly keeps the code independent of host endianness and
 * alignment. */
#include "ilayout.h"

#include <errno.h>
#include <string.h>

void ilayout_cursor_init(ilayout_cursor *c, const void *buf, size_t len)
{
    c->buf = buf;
    c->len = buf ? len : 0;
    c->pos = 0;
    c->err = 0;
}

size_t ilayout_cursor_remaining(const ilayout_cursor *c)
{
    return c->err ? 0 : c->len - c->pos;
}

int ilayout_cursor_error(const ilayout_cursor *c)
{
    return c->err;
}

/* Claims n bytes of input; on failure the cursor enters its sticky error. */
static const uint8_t *take(ilayout_cursor *c, size_t n)
{
    const uint8_t *p;

    if (c->err)
        return NULL;
    if (n > c->len - c->pos) {
        c->err = -EINVAL;
        return NULL;
    }
    p = c->buf + c->pos;
    c->pos += n;
    return p;
}

static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    while (n--)
        v = (v << 8) | p[n];
    return v;
}

int ilayout_get_u8(ilayout_cursor *c, uint8_t *v)
{
    const uint8_t *p = take(c, 1);

    *v = p ? p[0] : 0;
    return p ? 0 : c->err;
}

int ilayout_get_u16(ilayout_cursor *c, uint16_t *v)
{
    const uint8_t *p = take(c, 2);

    *v = p ? (uint16_t)load_le(p, 2) : 0;
    return p ? 0 : c->err;
}

int ilayout_get_u32(ilayout_cursor *c, uint32_t *v)
{
    const uint8_t *p = take(c, 4);

    *v = p ? (uint32_t)load_le(p, 4) : 0;
    return p ? 0 : c->err;
}

int ilayout_get_u64(ilayout_cursor *c, uint64_t *v)
{
    const uint8_t *p = take(c, 8);

    *v = p ? load_le(p, 8) : 0;
    return p ? 0 : c->err;
}

int ilayout_get_i64(ilayout_cursor *c, int64_t *v)
{
    uint64_t u;
    int rc = ilayout_get_u64(c, &u);

    /* Two's complement reinterpretation without implementation-defined
     * conversion of out-of-range values. */
    *v = u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
    return rc;
}

int ilayout_get_bytes(ilayout_cursor *c, void *dst, size_t n)
{
    const uint8_t *p = take(c, n);

    if (!p)
        return c->err;
    if (n)
        memcpy(dst, p, n);
    return 0;
}

int ilayout_get_view(ilayout_cursor *c, size_t n, const uint8_t **p)
{
    *p = take(c, n);
    return *p ? 0 : c->err;
}

int ilayout_get_lstr(ilayout_cursor *c, const uint8_t **p, size_t *len)
{
    uint64_t n;

    *p = NULL;
    *len = 0;
    if (ilayout_get_u64(c, &n))
        return c->err;
    if (n > c->len - c->pos) {
        c->err = -EINVAL;
        return c->err;
    }
    *len = (size_t)n;
    return ilayout_get_view(c, (size_t)n, p);
}

int ilayout_get_count(ilayout_cursor *c, size_t min_elem_len, size_t *count)
{
    uint64_t n;

    *count = 0;
    if (ilayout_get_u64(c, &n))
        return c->err;
    if (min_elem_len == 0)
        min_elem_len = 1;
    if (n > (c->len - c->pos) / min_elem_len) {
        c->err = -EINVAL;
        return c->err;
    }
    *count = (size_t)n;
    return 0;
}

void ilayout_wcursor_init(ilayout_wcursor *w, void *buf, size_t cap)
{
    w->buf = buf;
    w->cap = buf ? cap : SIZE_MAX;
    w->pos = 0;
    w->err = 0;
}

size_t ilayout_wcursor_pos(const ilayout_wcursor *w)
{
    return w->pos;
}

int ilayout_wcursor_error(const ilayout_wcursor *w)
{
    return w->err;
}

/* Reserves n bytes of output; NULL in counting mode and on error (w->err
 * tells them apart). */
static uint8_t *reserve(ilayout_wcursor *w, size_t n)
{
    uint8_t *p;

    if (w->err)
        return NULL;
    if (n > w->cap - w->pos) {
        w->err = w->buf ? -ENOSPC : -EOVERFLOW;
        return NULL;
    }
    p = w->buf ? w->buf + w->pos : NULL;
    w->pos += n;
    return p;
}

static int store_le(ilayout_wcursor *w, uint64_t v, size_t n)
{
    uint8_t *p = reserve(w, n);
    size_t i;

    if (p)
        for (i = 0; i < n; i++, v >>= 8)
            p[i] = (uint8_t)v;
    return w->err;
}

int ilayout_put_u8(ilayout_wcursor *w, uint8_t v)
{
    return store_le(w, v, 1);
}

int ilayout_put_u16(ilayout_wcursor *w, uint16_t v)
{
    return store_le(w, v, 2);
}

int ilayout_put_u32(ilayout_wcursor *w, uint32_t v)
{
    return store_le(w, v, 4);
}

int ilayout_put_u64(ilayout_wcursor *w, uint64_t v)
{
    return store_le(w, v, 8);
}

int ilayout_put_i64(ilayout_wcursor *w, int64_t v)
{
    return store_le(w, (uint64_t)v, 8);
}

int ilayout_put_bytes(ilayout_wcursor *w, const void *src, size_t n)
{
    uint8_t *p = reserve(w, n);

    if (p && n)
        memcpy(p, src, n);
    return w->err;
}

int ilayout_put_lstr(ilayout_wcursor *w, const void *src, size_t n)
{
    ilayout_put_u64(w, (uint64_t)n);
    return ilayout_put_bytes(w, src, n);
}
