/* libFuzzer target for every ilayout decoder. The first input byte chooses
 * the decoder, the rest is its input. Whatever decodes is encoded again and
 * must give back the same bytes (or, for the lenient checkpoint text, the
 * same values); any mismatch aborts. Seeds: tests/fuzz/corpus/ilayout/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ilayout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    SEL_OBJECT_NAME,
    SEL_CHECKPOINT_VERSION,
    SEL_CHECKPOINT_V1,
    SEL_TRAILER,
    SEL_SUPERBLOCK,
    SEL_INODE_TABLE_VALUE,
    SEL_INODE_HEAD,
    SEL_DIRECTORY_VALUE,
    SEL_EXTENT_VALUE,
    SEL_CURSOR,
    SEL_COUNT
};

static void check(int ok)
{
    if (!ok)
        abort();
}

/* Encodes with enc into an exact-size buffer and compares with want. */
#define CHECK_REENCODES(enc, obj, want, want_len)                              \
    do {                                                                       \
        ilayout_wcursor w_;                                                    \
        uint8_t *b_;                                                           \
        size_t n_;                                                             \
        ilayout_wcursor_init(&w_, NULL, 0);                                    \
        check(enc(obj, &w_) == 0);                                             \
        n_ = ilayout_wcursor_pos(&w_);                                         \
        check(n_ == (want_len));                                               \
        b_ = malloc(n_ ? n_ : 1);                                              \
        check(b_ != NULL);                                                     \
        ilayout_wcursor_init(&w_, b_, n_);                                     \
        check(enc(obj, &w_) == 0);                                             \
        check(n_ == 0 || memcmp(b_, (want), n_) == 0);                         \
        free(b_);                                                              \
    } while (0)

static void fuzz_checkpoint(const uint8_t *d, size_t n)
{
    ilayout_checkpoint_v1 c, again;
    char text[ILAYOUT_CHECKPOINT_V1_LEN + 1];
    uint64_t version;

    if (ilayout_checkpoint_v1_decode((const char *)d, n, &c) != 0)
        return;
    check(c.version == ILAYOUT_CHECKPOINT_VERSION_V1);
    check(ilayout_checkpoint_version_decode((const char *)d, n, &version) == 0);
    check(version == ILAYOUT_CHECKPOINT_VERSION_V1);
    check(ilayout_checkpoint_v1_encode(&c, text) == 0);
    check(ilayout_checkpoint_v1_decode(text, ILAYOUT_CHECKPOINT_V1_LEN,
                                       &again) == 0);
    check(memcmp(&c, &again, sizeof(c)) == 0);
}

/* Drives the read cursor with the input itself: each op byte picks a get. */
static void fuzz_cursor(const uint8_t *d, size_t n)
{
    ilayout_cursor c;
    const uint8_t *p;
    size_t len, before;
    uint64_t u64;
    uint8_t u8, raw[8];
    uint16_t u16;
    uint32_t u32;
    int64_t i64;
    int rc;

    ilayout_cursor_init(&c, d, n);
    while (ilayout_cursor_error(&c) == 0 && ilayout_cursor_remaining(&c) > 0) {
        before = c.pos;
        ilayout_get_u8(&c, &u8);
        switch (u8 % 9) {
        case 0: rc = ilayout_get_u8(&c, &u8); break;
        case 1: rc = ilayout_get_u16(&c, &u16); break;
        case 2: rc = ilayout_get_u32(&c, &u32); break;
        case 3: rc = ilayout_get_u64(&c, &u64); break;
        case 4: rc = ilayout_get_i64(&c, &i64); break;
        case 5: rc = ilayout_get_bytes(&c, raw, u8 % 9); break;
        case 6:
            rc = ilayout_get_lstr(&c, &p, &len);
            check(rc != 0 || p + len <= d + n);
            break;
        case 7:
            rc = ilayout_get_count(&c, u8 % 40, &len);
            check(rc != 0 || len * (u8 % 40 ? u8 % 40 : 1) <= n - c.pos);
            break;
        default: rc = ilayout_get_view(&c, u8 % 17, &p); break;
        }
        check(c.pos <= n && c.pos > before);
        check(rc == ilayout_cursor_error(&c));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *d;
    size_t n;
    ilayout_cursor c;

    if (size < 1)
        return 0;
    d = data + 1;
    n = size - 1;
    switch (data[0] % SEL_COUNT) {
    case SEL_OBJECT_NAME: {
        char name[ILAYOUT_OBJECT_NAME_LEN + 1];
        uint64_t num;

        if (ilayout_object_name_to_number((const char *)d, n, &num) == 0) {
            ilayout_object_number_to_name(num, name);
            check(n == ILAYOUT_OBJECT_NAME_LEN && memcmp(name, d, n) == 0);
        }
        break;
    }
    case SEL_CHECKPOINT_VERSION: {
        uint64_t version;

        if (ilayout_checkpoint_version_decode((const char *)d, n, &version) ==
            0)
            check(n > 0);
        break;
    }
    case SEL_CHECKPOINT_V1:
        fuzz_checkpoint(d, n);
        break;
    case SEL_TRAILER: {
        ilayout_object_trailer t;

        if (ilayout_object_trailer_decode(d, n, &t) == 0) {
            check(t.length == n - ILAYOUT_OBJECT_TRAILER_LEN);
            CHECK_REENCODES(ilayout_object_trailer_encode, &t,
                            d + n - ILAYOUT_OBJECT_TRAILER_LEN,
                            ILAYOUT_OBJECT_TRAILER_LEN);
        }
        break;
    }
    case SEL_SUPERBLOCK: {
        ilayout_superblock_v1 sb;

        if (ilayout_superblock_v1_decode(d, n, &sb) == 0) {
            CHECK_REENCODES(ilayout_superblock_v1_encode, &sb, d, n);
            ilayout_superblock_v1_free(&sb);
        }
        break;
    }
    case SEL_INODE_TABLE_VALUE: {
        ilayout_inode_table_entry_value_v1 v;
        uint64_t version;

        ilayout_cursor_init(&c, d, n);
        if (ilayout_inode_table_entry_value_v1_decode(&c, &v) == 0) {
            check(c.pos == ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN);
            check(ilayout_inode_table_entry_value_version_decode(d, n,
                                                                 &version) == 0);
            check(version == ILAYOUT_INODE_TABLE_ENTRY_VALUE_VERSION_V1);
            CHECK_REENCODES(ilayout_inode_table_entry_value_v1_encode, &v, d,
                            c.pos);
        } else {
            check(c.pos == 0 && ilayout_cursor_error(&c) != 0);
        }
        break;
    }
    case SEL_INODE_HEAD: {
        ilayout_inode_head_v1 h;

        if (ilayout_inode_head_v1_decode(d, n, &h) == 0) {
            CHECK_REENCODES(ilayout_inode_head_v1_encode, &h, d, n);
            ilayout_inode_head_v1_free(&h);
        }
        break;
    }
    case SEL_DIRECTORY_VALUE: {
        ilayout_directory_entry_value_v1 v;

        ilayout_cursor_init(&c, d, n);
        if (ilayout_directory_entry_value_v1_decode(&c, &v) == 0) {
            check(c.pos == ILAYOUT_DIRECTORY_ENTRY_VALUE_V1_LEN);
            CHECK_REENCODES(ilayout_directory_entry_value_v1_encode, &v, d,
                            c.pos);
        }
        break;
    }
    case SEL_EXTENT_VALUE: {
        ilayout_extent_map_entry_value_v1 v;

        ilayout_cursor_init(&c, d, n);
        if (ilayout_extent_map_entry_value_v1_decode(&c, &v) == 0) {
            check(c.pos == ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN);
            CHECK_REENCODES(ilayout_extent_map_entry_value_v1_encode, &v, d,
                            c.pos);
        }
        break;
    }
    default:
        fuzz_cursor(d, n);
        break;
    }
    return 0;
}
