/* The binary structures: object trailer, SuperBlock V1, InodeHead V1 and the
 * three B+tree value packings. Field order follows spec sections 4-9. */
#include "ilayout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- object trailer ----------------------------------------------------- */

int ilayout_object_trailer_encode(const ilayout_object_trailer *t,
                                  ilayout_wcursor *w)
{
    ilayout_put_u16(w, t->obj_type);
    ilayout_put_u16(w, t->version);
    return ilayout_put_u32(w, t->length);
}

int ilayout_object_trailer_decode(const void *buf, size_t len,
                                  ilayout_object_trailer *t)
{
    ilayout_cursor c;
    size_t payload;

    *t = (ilayout_object_trailer){0};
    if (len < ILAYOUT_OBJECT_TRAILER_LEN)
        return -EINVAL;
    payload = len - ILAYOUT_OBJECT_TRAILER_LEN;
    if ((uint64_t)payload > ILAYOUT_OBJECT_TRAILER_MAX_PAYLOAD)
        return -EINVAL;
    ilayout_cursor_init(&c, (const uint8_t *)buf + payload,
                        ILAYOUT_OBJECT_TRAILER_LEN);
    ilayout_get_u16(&c, &t->obj_type);
    ilayout_get_u16(&c, &t->version);
    ilayout_get_u32(&c, &t->length);
    if (t->length != payload) {
        *t = (ilayout_object_trailer){0};
        return -EINVAL;
    }
    return 0;
}

/* Checks the trailer of a tail-of-object structure and points c at the
 * payload that precedes it. Fields are parsed from this payload only, which
 * rejects exactly what Go rejects: a Go read that strays into the trailer
 * bytes ends past trailer.Length and fails its final position check. */
static int open_tail(const void *buf, size_t len, uint16_t obj_type,
                     uint16_t version, ilayout_cursor *c)
{
    ilayout_object_trailer t;
    int rc = ilayout_object_trailer_decode(buf, len, &t);

    if (rc)
        return rc;
    if (t.obj_type != obj_type || t.version != version)
        return -EINVAL;
    ilayout_cursor_init(c, buf, t.length);
    return 0;
}

/* Appends the trailer of a structure whose payload started at start. */
static int close_tail(ilayout_wcursor *w, size_t start, uint16_t obj_type,
                      uint16_t version)
{
    ilayout_object_trailer t = {obj_type, version, 0};
    uint64_t payload;

    if (w->err)
        return w->err;
    payload = (uint64_t)(w->pos - start);
    if (payload > ILAYOUT_OBJECT_TRAILER_MAX_PAYLOAD) {
        w->err = -EOVERFLOW;
        return w->err;
    }
    t.length = (uint32_t)payload;
    return ilayout_object_trailer_encode(&t, w);
}

/* ---- layout tables (shared by superblock and inode head) ------------------ */

static int put_layout_table(ilayout_wcursor *w,
                            const ilayout_layout_entry_v1 *e, size_t n)
{
    size_t i;

    ilayout_put_u64(w, (uint64_t)n);
    for (i = 0; i < n; i++) {
        ilayout_put_u64(w, e[i].object_number);
        ilayout_put_u64(w, e[i].bytes_written);
        ilayout_put_u64(w, e[i].bytes_referenced);
    }
    return w->err;
}

static int get_layout_table(ilayout_cursor *c, ilayout_layout_entry_v1 **out,
                            size_t *out_len)
{
    ilayout_layout_entry_v1 *e;
    size_t i, n;
    int rc = ilayout_get_count(c, ILAYOUT_LAYOUT_ENTRY_V1_LEN, &n);

    if (rc || n == 0)
        return rc;
    e = calloc(n, sizeof(*e));
    if (!e)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        ilayout_get_u64(c, &e[i].object_number);
        ilayout_get_u64(c, &e[i].bytes_written);
        ilayout_get_u64(c, &e[i].bytes_referenced);
    }
    *out = e;
    *out_len = n;
    return c->err;
}

/* ---- SuperBlock V1 -------------------------------------------------------- */

int ilayout_superblock_v1_encode(const ilayout_superblock_v1 *sb,
                                 ilayout_wcursor *w)
{
    size_t start = w->pos, i;

    ilayout_put_u64(w, sb->inode_table_root_object_number);
    ilayout_put_u64(w, sb->inode_table_root_object_offset);
    ilayout_put_u64(w, sb->inode_table_root_object_length);
    put_layout_table(w, sb->inode_table_layout, sb->inode_table_layout_len);
    ilayout_put_u64(w, sb->inode_object_count);
    ilayout_put_u64(w, sb->inode_bytes_written);
    ilayout_put_u64(w, sb->inode_bytes_referenced);
    ilayout_put_u64(w, (uint64_t)sb->pending_delete_object_numbers_len);
    for (i = 0; i < sb->pending_delete_object_numbers_len; i++)
        ilayout_put_u64(w, sb->pending_delete_object_numbers[i]);
    return close_tail(w, start, ILAYOUT_SUPERBLOCK_TYPE,
                      ILAYOUT_SUPERBLOCK_VERSION_V1);
}

void ilayout_superblock_v1_free(ilayout_superblock_v1 *sb)
{
    free(sb->inode_table_layout);
    free(sb->pending_delete_object_numbers);
    *sb = (ilayout_superblock_v1){0};
}

static int superblock_v1_parse(ilayout_cursor *c, ilayout_superblock_v1 *sb)
{
    size_t i, n;
    int rc;

    ilayout_get_u64(c, &sb->inode_table_root_object_number);
    ilayout_get_u64(c, &sb->inode_table_root_object_offset);
    ilayout_get_u64(c, &sb->inode_table_root_object_length);
    rc = get_layout_table(c, &sb->inode_table_layout,
                          &sb->inode_table_layout_len);
    if (rc)
        return rc;
    ilayout_get_u64(c, &sb->inode_object_count);
    ilayout_get_u64(c, &sb->inode_bytes_written);
    ilayout_get_u64(c, &sb->inode_bytes_referenced);
    rc = ilayout_get_count(c, 8, &n);
    if (rc || n == 0)
        return rc;
    sb->pending_delete_object_numbers = calloc(n, sizeof(uint64_t));
    if (!sb->pending_delete_object_numbers)
        return -ENOMEM;
    sb->pending_delete_object_numbers_len = n;
    for (i = 0; i < n; i++)
        ilayout_get_u64(c, &sb->pending_delete_object_numbers[i]);
    return c->err;
}

int ilayout_superblock_v1_decode(const void *buf, size_t len,
                                 ilayout_superblock_v1 *sb)
{
    ilayout_cursor c;
    int rc;

    *sb = (ilayout_superblock_v1){0};
    rc = open_tail(buf, len, ILAYOUT_SUPERBLOCK_TYPE,
                   ILAYOUT_SUPERBLOCK_VERSION_V1, &c);
    if (!rc)
        rc = superblock_v1_parse(&c, sb);
    if (!rc && ilayout_cursor_remaining(&c) != 0)
        rc = -EINVAL;
    if (rc)
        ilayout_superblock_v1_free(sb);
    return rc;
}

/* ---- InodeHead V1 --------------------------------------------------------- */

int ilayout_inode_head_v1_encode(const ilayout_inode_head_v1 *h,
                                 ilayout_wcursor *w)
{
    size_t start = w->pos, i;

    ilayout_put_u64(w, h->inode_number);
    ilayout_put_u8(w, h->inode_type);
    ilayout_put_u64(w, (uint64_t)h->link_table_len);
    for (i = 0; i < h->link_table_len; i++) {
        ilayout_put_u64(w, h->link_table[i].parent_dir_inode_number);
        ilayout_put_lstr(w, h->link_table[i].parent_dir_entry_name,
                         h->link_table[i].parent_dir_entry_name_len);
    }
    ilayout_put_u64(w, h->size);
    ilayout_put_i64(w, h->modification_time_ns);
    ilayout_put_i64(w, h->status_change_time_ns);
    ilayout_put_u16(w, h->mode);
    ilayout_put_u64(w, h->user_id);
    ilayout_put_u64(w, h->group_id);
    ilayout_put_u64(w, (uint64_t)h->stream_table_len);
    for (i = 0; i < h->stream_table_len; i++) {
        ilayout_put_lstr(w, h->stream_table[i].name,
                         h->stream_table[i].name_len);
        ilayout_put_lstr(w, h->stream_table[i].value,
                         h->stream_table[i].value_len);
    }
    ilayout_put_u64(w, h->payload_object_number);
    ilayout_put_u64(w, h->payload_object_offset);
    ilayout_put_u64(w, h->payload_object_length);
    ilayout_put_lstr(w, h->symlink_target, h->symlink_target_len);
    put_layout_table(w, h->layout, h->layout_len);
    return close_tail(w, start, ILAYOUT_INODE_HEAD_TYPE,
                      ILAYOUT_INODE_HEAD_VERSION_V1);
}

void ilayout_inode_head_v1_free(ilayout_inode_head_v1 *h)
{
    size_t i;

    /* Decoded strings are our own malloc'd copies; the const in the struct
     * is for callers that encode from read-only data. */
    for (i = 0; h->link_table && i < h->link_table_len; i++)
        free((void *)h->link_table[i].parent_dir_entry_name);
    for (i = 0; h->stream_table && i < h->stream_table_len; i++) {
        free((void *)h->stream_table[i].name);
        free((void *)h->stream_table[i].value);
    }
    free(h->link_table);
    free(h->stream_table);
    free((void *)h->symlink_target);
    free(h->layout);
    *h = (ilayout_inode_head_v1){0};
}

/* Reads an lstr into a fresh NUL-terminated copy; its size is bounded by the
 * input since the length was checked against the remaining bytes. */
static int get_lstr_copy(ilayout_cursor *c, void *out_ptr, size_t *out_len)
{
    const uint8_t *p;
    size_t n;
    char *s;
    int rc = ilayout_get_lstr(c, &p, &n);

    if (rc)
        return rc;
    s = malloc(n + 1);
    if (!s)
        return -ENOMEM;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    memcpy(out_ptr, &s, sizeof(s));
    *out_len = n;
    return 0;
}

static int inode_head_v1_parse(ilayout_cursor *c, ilayout_inode_head_v1 *h)
{
    size_t i, n;
    int rc;

    ilayout_get_u64(c, &h->inode_number);
    ilayout_get_u8(c, &h->inode_type);
    rc = ilayout_get_count(c, ILAYOUT_LINK_ENTRY_MIN_LEN, &n);
    if (rc)
        return rc;
    if (n) {
        h->link_table = calloc(n, sizeof(*h->link_table));
        if (!h->link_table)
            return -ENOMEM;
        h->link_table_len = n;
    }
    for (i = 0; i < n; i++) {
        ilayout_link_entry *e = &h->link_table[i];

        ilayout_get_u64(c, &e->parent_dir_inode_number);
        rc = get_lstr_copy(c, &e->parent_dir_entry_name,
                           &e->parent_dir_entry_name_len);
        if (rc)
            return rc;
    }
    ilayout_get_u64(c, &h->size);
    ilayout_get_i64(c, &h->modification_time_ns);
    ilayout_get_i64(c, &h->status_change_time_ns);
    ilayout_get_u16(c, &h->mode);
    ilayout_get_u64(c, &h->user_id);
    ilayout_get_u64(c, &h->group_id);
    rc = ilayout_get_count(c, ILAYOUT_STREAM_ENTRY_MIN_LEN, &n);
    if (rc)
        return rc;
    if (n) {
        h->stream_table = calloc(n, sizeof(*h->stream_table));
        if (!h->stream_table)
            return -ENOMEM;
        h->stream_table_len = n;
    }
    for (i = 0; i < n; i++) {
        ilayout_stream_entry *e = &h->stream_table[i];

        rc = get_lstr_copy(c, &e->name, &e->name_len);
        if (!rc)
            rc = get_lstr_copy(c, &e->value, &e->value_len);
        if (rc)
            return rc;
    }
    ilayout_get_u64(c, &h->payload_object_number);
    ilayout_get_u64(c, &h->payload_object_offset);
    ilayout_get_u64(c, &h->payload_object_length);
    rc = get_lstr_copy(c, &h->symlink_target, &h->symlink_target_len);
    if (rc)
        return rc;
    return get_layout_table(c, &h->layout, &h->layout_len);
}

int ilayout_inode_head_v1_decode(const void *buf, size_t len,
                                 ilayout_inode_head_v1 *h)
{
    ilayout_cursor c;
    int rc;

    *h = (ilayout_inode_head_v1){0};
    rc = open_tail(buf, len, ILAYOUT_INODE_HEAD_TYPE,
                   ILAYOUT_INODE_HEAD_VERSION_V1, &c);
    if (!rc)
        rc = inode_head_v1_parse(&c, h);
    if (!rc && ilayout_cursor_remaining(&c) != 0)
        rc = -EINVAL;
    if (rc)
        ilayout_inode_head_v1_free(h);
    return rc;
}

/* ---- B+tree values -------------------------------------------------------- */

/* The value decoders read on a copy of the caller's cursor (peek) so that the
 * caller's position only moves on success; on failure the caller's cursor
 * takes the error and the output value is zeroed. */
static int settle(ilayout_cursor *c, const ilayout_cursor *peek, void *v,
                  size_t v_size)
{
    if (peek->err) {
        memset(v, 0, v_size);
        c->err = peek->err;
        return c->err;
    }
    *c = *peek;
    return 0;
}

int ilayout_inode_table_entry_value_v1_encode(
    const ilayout_inode_table_entry_value_v1 *v, ilayout_wcursor *w)
{
    ilayout_put_u64(w, ILAYOUT_INODE_TABLE_ENTRY_VALUE_VERSION_V1);
    ilayout_put_u64(w, v->inode_head_object_number);
    return ilayout_put_u64(w, v->inode_head_length);
}

int ilayout_inode_table_entry_value_v1_decode(
    ilayout_cursor *c, ilayout_inode_table_entry_value_v1 *v)
{
    ilayout_cursor peek = *c;
    uint64_t version;

    ilayout_get_u64(&peek, &version);
    if (!peek.err && version != ILAYOUT_INODE_TABLE_ENTRY_VALUE_VERSION_V1)
        peek.err = -EINVAL;
    ilayout_get_u64(&peek, &v->inode_head_object_number);
    ilayout_get_u64(&peek, &v->inode_head_length);
    return settle(c, &peek, v, sizeof(*v));
}

int ilayout_inode_table_entry_value_version_decode(const void *buf, size_t len,
                                                   uint64_t *version)
{
    ilayout_cursor c;

    ilayout_cursor_init(&c, buf, len);
    return ilayout_get_u64(&c, version);
}

int ilayout_directory_entry_value_v1_encode(
    const ilayout_directory_entry_value_v1 *v, ilayout_wcursor *w)
{
    ilayout_put_u64(w, v->inode_number);
    return ilayout_put_u8(w, v->inode_type);
}

int ilayout_directory_entry_value_v1_decode(
    ilayout_cursor *c, ilayout_directory_entry_value_v1 *v)
{
    ilayout_cursor peek = *c;

    ilayout_get_u64(&peek, &v->inode_number);
    ilayout_get_u8(&peek, &v->inode_type);
    return settle(c, &peek, v, sizeof(*v));
}

int ilayout_extent_map_entry_value_v1_encode(
    const ilayout_extent_map_entry_value_v1 *v, ilayout_wcursor *w)
{
    ilayout_put_u64(w, v->length);
    ilayout_put_u64(w, v->object_number);
    return ilayout_put_u64(w, v->object_offset);
}

int ilayout_extent_map_entry_value_v1_decode(
    ilayout_cursor *c, ilayout_extent_map_entry_value_v1 *v)
{
    ilayout_cursor peek = *c;

    ilayout_get_u64(&peek, &v->length);
    ilayout_get_u64(&peek, &v->object_number);
    ilayout_get_u64(&peek, &v->object_offset);
    return settle(c, &peek, v, sizeof(*v));
}
