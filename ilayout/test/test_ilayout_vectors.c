/* The exact test vectors of ilayout.md section 16 (TV1..TV14), the other
 * literal bytes of the spec (sections 3, 4, 13), the decoder error cases of
 * section 14 and the cursor primitives' edge cases. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ilayout.h"

/* 2021-01-01T00:00:00Z in ns: bytes 00 00 7C 78 9D F2 55 16. */
#define TS_2021 INT64_C(1609459200000000000)

/* ---- vectors (hex copied from the spec; offsets dropped) ------------------ */

static const char TV3[] = "42 53 01 00 58 00 00 00";

static const char TV4[] = "01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 "
                          "AE 00 00 00 00 00 00 00";

static const char TV5[] = "01 00 00 00 00 00 00 00 00";

static const char TV6[] = "00 10 00 00 00 00 00 00 2A 00 00 00 00 00 00 00 "
                          "10 00 00 00 00 00 00 00";

static const char TV8[] = "01 00 00 00 00 00 00 00 01 01 00 08 00 00 00 00 "
                          "00 00 01 00 00 00 00 00 00 00 01 00 00 00 00 00 "
                          "00 00 01 00 00 00 00 00 00 00 02 00 00 00 00 00 "
                          "00 00 AE 00 00 00 00 00 00 00";

static const char TV9[] = "02 00 00 00 00 00 00 00 01 01 00 04 00 00 00 00 "
                          "00 00 02 00 00 00 00 00 00 00 01 00 00 00 00 00 "
                          "00 00 2E 01 00 00 00 00 00 00 00 00 02 00 00 00 "
                          "00 00 00 00 2E 2E 01 00 00 00 00 00 00 00 00";

static const char TV10[] = "01 00 00 00 00 00 00 00 00 02 00 00 00 00 00 00 "
                           "00 01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 "
                           "00 2E 01 00 00 00 00 00 00 00 02 00 00 00 00 00 "
                           "00 00 2E 2E 00 00 00 00 00 00 00 00 00 00 7C 78 "
                           "9D F2 55 16 00 00 7C 78 9D F2 55 16 FF 01 00 00 "
                           "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
                           "00 00 00 00 00 00 02 00 00 00 00 00 00 00 00 00 "
                           "00 00 00 00 00 00 3F 00 00 00 00 00 00 00 00 00 "
                           "00 00 00 00 00 00 01 00 00 00 00 00 00 00 02 00 "
                           "00 00 00 00 00 00 3F 00 00 00 00 00 00 00 3F 00 "
                           "00 00 00 00 00 00 48 49 01 00 A6 00 00 00";

static const char TV11[] = "03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
                           "3A 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 "
                           "03 00 00 00 00 00 00 00 3A 00 00 00 00 00 00 00 "
                           "3A 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 "
                           "3F 00 00 00 00 00 00 00 3F 00 00 00 00 00 00 00 "
                           "00 00 00 00 00 00 00 00 42 53 01 00 58 00 00 00";

static const char TV12[] = "01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 "
                           "03 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 "
                           "0B 00 00 00 00 00 00 00 0C 00 00 00 00 00 00 00 "
                           "0D 00 00 00 00 00 00 00 15 00 00 00 00 00 00 00 "
                           "16 00 00 00 00 00 00 00 17 00 00 00 00 00 00 00 "
                           "04 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 "
                           "06 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00 "
                           "07 00 00 00 00 00 00 00 08 00 00 00 00 00 00 00 "
                           "09 00 00 00 00 00 00 00 42 53 01 00 88 00 00 00";

static const char TV13[] = "42 00 00 00 00 00 00 00 02 01 00 00 00 00 00 00 "
                           "00 01 00 00 00 00 00 00 00 04 00 00 00 00 00 00 "
                           "00 6C 69 6E 6B 00 00 00 00 00 00 00 00 00 00 7C "
                           "78 9D F2 55 16 01 00 7C 78 9D F2 55 16 FF 01 E8 "
                           "03 00 00 00 00 00 00 E8 03 00 00 00 00 00 00 01 "
                           "00 00 00 00 00 00 00 06 00 00 00 00 00 00 00 75 "
                           "73 65 72 2E 61 02 00 00 00 00 00 00 00 01 02 00 "
                           "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
                           "00 00 00 00 00 00 00 06 00 00 00 00 00 00 00 74 "
                           "61 72 67 65 74 00 00 00 00 00 00 00 00 48 49 01 "
                           "00 9D 00 00 00";

static const char TV14_LEFT[] =
    "02 00 00 00 00 00 00 00 00 01 02 00 00 00 00 00 "
    "00 00 01 00 00 00 00 00 00 00 01 00 00 00 00 00 "
    "00 00 01 01 00 00 00 00 00 00 A0 00 00 00 00 00 "
    "00 00 02 00 00 00 00 00 00 00 01 00 00 00 00 00 "
    "00 00 02 01 00 00 00 00 00 00 A0 00 00 00 00 00 "
    "00 00";

static const char TV14_RIGHT[] =
    "03 00 00 00 00 00 00 00 00 01 03 00 00 00 00 00 "
    "00 00 03 00 00 00 00 00 00 00 01 00 00 00 00 00 "
    "00 00 03 01 00 00 00 00 00 00 A0 00 00 00 00 00 "
    "00 00 04 00 00 00 00 00 00 00 01 00 00 00 00 00 "
    "00 00 04 01 00 00 00 00 00 00 A0 00 00 00 00 00 "
    "00 00 05 00 00 00 00 00 00 00 01 00 00 00 00 00 "
    "00 00 05 01 00 00 00 00 00 00 A0 00 00 00 00 00 "
    "00 00";

/* ---- helpers -------------------------------------------------------------- */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned hi, lo;

    for (;;) {
        while (*hex == ' ')
            hex++;
        if (!*hex)
            return n;
        assert_true(sscanf(hex, "%1x%1x", &hi, &lo) == 2);
        assert_true(n < cap);
        out[n++] = (uint8_t)(hi << 4 | lo);
        hex += 2;
    }
}

static void assert_bytes(const uint8_t *got, size_t got_len, const char *hex)
{
    uint8_t want[512];
    size_t want_len = unhex(hex, want, sizeof(want));

    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
}

/* ---- TV1: object names ---------------------------------------------------- */

static void test_tv1_object_names(void **state)
{
    static const struct {
        uint64_t n;
        const char *name;
    } ok[] = {
        {0, "0000000000000000"},
        {2, "2000000000000000"},
        {3, "3000000000000000"},
        {0x10, "0100000000000000"},
        {0x1234, "4321000000000000"},
        {UINT64_C(0x0123456789ABCDEF), "FEDCBA9876543210"},
        {UINT64_MAX, "FFFFFFFFFFFFFFFF"},
    };
    static const char *const bad[] = {
        "/EDCBA9876543210", ":EDCBA9876543210", "@EDCBA9876543210",
        "[EDCBA9876543210", "FED", "fEDCBA9876543210", "GEDCBA9876543210",
        "FEDCBA987654321 ", "",
    };
    char name[ILAYOUT_OBJECT_NAME_LEN + 1];
    uint64_t n;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ilayout_object_number_to_name(ok[i].n, name);
        assert_string_equal(name, ok[i].name);
        assert_int_equal(ilayout_object_name_to_number(ok[i].name, 16, &n), 0);
        assert_true(n == ok[i].n);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = 42;
        assert_int_equal(ilayout_object_name_to_number(bad[i], strlen(bad[i]),
                                                       &n),
                         -EINVAL);
        assert_true(n == 0);
    }
    /* A 17th character is a length error even if it is a hex digit. */
    assert_int_equal(
        ilayout_object_name_to_number("00000000000000000", 17, &n), -EINVAL);
}

/* ---- TV2: checkpoint ------------------------------------------------------ */

static void assert_ckpt(const char *text, uint64_t ob, uint64_t len,
                        uint64_t nonce)
{
    ilayout_checkpoint_v1 c;

    assert_int_equal(ilayout_checkpoint_v1_decode(text, strlen(text), &c), 0);
    assert_true(c.version == 1);
    assert_true(c.superblock_object_number == ob);
    assert_true(c.superblock_length == len);
    assert_true(c.reserved_to_nonce == nonce);
}

static void test_tv2_checkpoint(void **state)
{
    static const char fresh[] =
        "0000000000000001 0000000000000003 0000000000000060 0000000000000003";
    static const char upstream[] =
        "0000000000000001 0000000000000002 0000000000000003 0000000000000004";
    ilayout_checkpoint_v1 c = {ILAYOUT_CHECKPOINT_VERSION_V1,
                               ILAYOUT_FORMAT_SUPERBLOCK_OBJECT_NUMBER, 96,
                               ILAYOUT_FORMAT_RESERVED_TO_NONCE};
    char text[ILAYOUT_CHECKPOINT_V1_LEN + 1];
    uint64_t v;

    (void)state;
    assert_int_equal(sizeof(fresh) - 1, ILAYOUT_CHECKPOINT_V1_LEN);
    assert_int_equal(ilayout_checkpoint_v1_encode(&c, text), 0);
    assert_string_equal(text, fresh);
    c = (ilayout_checkpoint_v1){1, 2, 3, 4};
    assert_int_equal(ilayout_checkpoint_v1_encode(&c, text), 0);
    assert_string_equal(text, upstream);
    c = (ilayout_checkpoint_v1){1, UINT64_MAX, 0xABCDEF, 0x10};
    assert_int_equal(ilayout_checkpoint_v1_encode(&c, text), 0);
    assert_string_equal(
        text,
        "0000000000000001 FFFFFFFFFFFFFFFF 0000000000ABCDEF 0000000000000010");
    c.version = 2;
    assert_int_equal(ilayout_checkpoint_v1_encode(&c, text), -EINVAL);

    assert_ckpt(fresh, 3, 0x60, 3);
    assert_ckpt(upstream, 2, 3, 4);
    /* What Go's %016X scan also accepts (section 3.4). */
    assert_ckpt("1 3 60 3", 3, 0x60, 3);
    assert_ckpt("0000000000000001 0000000000000003 0000000000000060 "
                "0000000000000003\n",
                3, 0x60, 3);
    assert_ckpt("0000000000000001 000000000000000a 00000000000000Ff 3", 10,
                255, 3);
    assert_ckpt("  1   3\t60 3 trailing text", 3, 0x60, 3);
    assert_ckpt("1 FFFFFFFFFFFFFFFF 60 3x", UINT64_MAX, 0x60, 3);

    /* What it rejects. */
    assert_int_equal(ilayout_checkpoint_v1_decode(
                         "0000000000000002 0000000000000003 0000000000000060 "
                         "0000000000000003",
                         67, &c),
                     -EINVAL);
    assert_int_equal(ilayout_checkpoint_v1_decode(
                         "00000000000000001 0000000000000003 0000000000000060 "
                         "0000000000000003",
                         68, &c),
                     -EINVAL);
    assert_int_equal(ilayout_checkpoint_v1_decode("1 3 60", 6, &c), -EINVAL);
    assert_int_equal(ilayout_checkpoint_v1_decode("1 3 60 ", 7, &c), -EINVAL);
    assert_int_equal(ilayout_checkpoint_v1_decode("1 3 6G 3", 8, &c), -EINVAL);
    assert_int_equal(ilayout_checkpoint_v1_decode("1 3 x 3", 7, &c), -EINVAL);
    assert_int_equal(ilayout_checkpoint_v1_decode("1,3,60,3", 8, &c), -EINVAL);
    assert_int_equal(ilayout_checkpoint_v1_decode("\n1 3 60 3", 9, &c),
                     -EINVAL);
    assert_int_equal(ilayout_checkpoint_v1_decode("", 0, &c), -EINVAL);
    assert_true(c.version == 0 && c.reserved_to_nonce == 0);
    /* The length bounds the scan: the same text cut short. */
    assert_int_equal(ilayout_checkpoint_v1_decode(fresh, 50, &c), -EINVAL);

    assert_int_equal(ilayout_checkpoint_version_decode(fresh, 67, &v), 0);
    assert_true(v == 1);
    assert_int_equal(ilayout_checkpoint_version_decode("2", 1, &v), 0);
    assert_true(v == 2);
    assert_int_equal(ilayout_checkpoint_version_decode("zz", 2, &v), -EINVAL);
}

/* ---- TV3: object trailer -------------------------------------------------- */

static void test_tv3_trailer(void **state)
{
    ilayout_object_trailer t = {ILAYOUT_SUPERBLOCK_TYPE,
                                ILAYOUT_SUPERBLOCK_VERSION_V1, 88};
    uint8_t buf[96] = {0};
    ilayout_wcursor w;

    (void)state;
    ilayout_wcursor_init(&w, buf + 88, 8);
    assert_int_equal(ilayout_object_trailer_encode(&t, &w), 0);
    assert_int_equal(ilayout_wcursor_pos(&w), ILAYOUT_OBJECT_TRAILER_LEN);
    assert_bytes(buf + 88, 8, TV3);

    t = (ilayout_object_trailer){0};
    assert_int_equal(ilayout_object_trailer_decode(buf, 96, &t), 0);
    assert_int_equal(t.obj_type, 0x5342);
    assert_int_equal(t.version, 1);
    assert_int_equal(t.length, 88);
    /* Length must equal the bytes before the trailer. */
    assert_int_equal(ilayout_object_trailer_decode(buf + 1, 95, &t), -EINVAL);
    assert_int_equal(t.length, 0);
    assert_int_equal(ilayout_object_trailer_decode(buf + 88, 8, &t), -EINVAL);
    assert_int_equal(ilayout_object_trailer_decode(buf, 7, &t), -EINVAL);
    assert_int_equal(ilayout_object_trailer_decode(NULL, 0, &t), -EINVAL);
    /* A zero-length payload is legal for the trailer itself. */
    memset(buf, 0, 8);
    assert_int_equal(ilayout_object_trailer_decode(buf, 8, &t), 0);
    /* The IH trailer of TV10 as it appears in the spec (section 13.1). */
    t = (ilayout_object_trailer){ILAYOUT_INODE_HEAD_TYPE,
                                 ILAYOUT_INODE_HEAD_VERSION_V1, 166};
    ilayout_wcursor_init(&w, buf, 8);
    assert_int_equal(ilayout_object_trailer_encode(&t, &w), 0);
    assert_bytes(buf, 8, "48 49 01 00 A6 00 00 00");
}

/* ---- TV4, TV5, TV6: B+tree values ----------------------------------------- */

/* Encodes *obj with the value encoder fn and compares with the vector. */
#define ASSERT_VALUE_ENCODES(fn, obj, hex)                                     \
    do {                                                                       \
        uint8_t b_[64];                                                        \
        ilayout_wcursor w_;                                                    \
        ilayout_wcursor_init(&w_, b_, sizeof(b_));                             \
        assert_int_equal(fn(obj, &w_), 0);                                     \
        assert_bytes(b_, ilayout_wcursor_pos(&w_), hex);                       \
    } while (0)

/* Decodes the vector (plus one stray byte the value must not consume) with
 * the value decoder fn into *obj and checks the bytes consumed. */
#define ASSERT_VALUE_DECODES(fn, hex, obj, want_len)                           \
    do {                                                                       \
        uint8_t in_[64];                                                       \
        size_t n_ = unhex(hex, in_, sizeof(in_));                              \
        ilayout_cursor c_;                                                     \
        in_[n_++] = 0xEE;                                                      \
        memset(obj, 0x5A, sizeof(*(obj)));                                     \
        ilayout_cursor_init(&c_, in_, n_);                                     \
        assert_int_equal(fn(&c_, obj), 0);                                     \
        assert_int_equal(c_.pos, want_len);                                    \
        /* Every strict prefix fails without moving the cursor. */             \
        for (n_ = 0; n_ < (want_len); n_++) {                                  \
            ilayout_cursor_init(&c_, in_, n_);                                 \
            assert_int_equal(fn(&c_, obj), -EINVAL);                           \
            assert_int_equal(c_.pos, 0);                                       \
        }                                                                      \
        ilayout_cursor_init(&c_, in_, want_len);                               \
        assert_int_equal(fn(&c_, obj), 0);                                     \
    } while (0)

static void test_tv4_inode_table_entry_value(void **state)
{
    ilayout_inode_table_entry_value_v1 v = {2, 174};
    ilayout_cursor c;
    uint8_t in[32];
    uint64_t ver;
    size_t n;

    (void)state;
    ASSERT_VALUE_ENCODES(ilayout_inode_table_entry_value_v1_encode, &v, TV4);
    ASSERT_VALUE_DECODES(ilayout_inode_table_entry_value_v1_decode, TV4, &v,
                         ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN);
    assert_true(v.inode_head_object_number == 2 && v.inode_head_length == 174);

    n = unhex(TV4, in, sizeof(in));
    assert_int_equal(ilayout_inode_table_entry_value_version_decode(in, n, &ver),
                     0);
    assert_true(ver == ILAYOUT_INODE_TABLE_ENTRY_VALUE_VERSION_V1);
    assert_int_equal(ilayout_inode_table_entry_value_version_decode(in, 7, &ver),
                     -EINVAL);
    in[0] = 2; /* only version 1 exists */
    ilayout_cursor_init(&c, in, n);
    assert_int_equal(ilayout_inode_table_entry_value_v1_decode(&c, &v),
                     -EINVAL);
    assert_int_equal(c.pos, 0);
    assert_int_equal(ilayout_cursor_error(&c), -EINVAL);
    assert_true(v.inode_head_object_number == 0 && v.inode_head_length == 0);
}

static void test_tv5_directory_entry_value(void **state)
{
    ilayout_directory_entry_value_v1 v = {1, ILAYOUT_INODE_TYPE_DIR};

    (void)state;
    ASSERT_VALUE_ENCODES(ilayout_directory_entry_value_v1_encode, &v, TV5);
    ASSERT_VALUE_DECODES(ilayout_directory_entry_value_v1_decode, TV5, &v,
                         ILAYOUT_DIRECTORY_ENTRY_VALUE_V1_LEN);
    assert_true(v.inode_number == 1 && v.inode_type == ILAYOUT_INODE_TYPE_DIR);
}

static void test_tv6_extent_map_entry_value(void **state)
{
    ilayout_extent_map_entry_value_v1 v = {0x1000, 0x2A, 0x10};

    (void)state;
    ASSERT_VALUE_ENCODES(ilayout_extent_map_entry_value_v1_encode, &v, TV6);
    ASSERT_VALUE_DECODES(ilayout_extent_map_entry_value_v1_decode, TV6, &v,
                         ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN);
    assert_true(v.length == 0x1000 && v.object_number == 0x2A &&
                v.object_offset == 0x10);
}

/* ---- TV8, TV9, TV14: the key/value region of real nodes ------------------
 * The node framing (Items, Root, Leaf, maxKeys, N, ChildRefs) is sortedmap's
 * and is tested there; here the item bytes of each leaf vector are decoded
 * with our packings, and re-encoded to exactly the same bytes. TV7 (an empty
 * root leaf) holds no items and is left entirely to sortedmap. */

enum tree { INODE_TABLE, DIRECTORY };

/* Decodes n_items key/value pairs from node[off..] up to the node's end and
 * re-encodes them into the same bytes. */
static void check_leaf_items(const char *hex, size_t off, size_t n_items,
                             enum tree tree, const uint64_t *want_keys,
                             const char *const *want_names)
{
    uint8_t node[256], out[256];
    size_t len = unhex(hex, node, sizeof(node)), i, name_len;
    ilayout_cursor c;
    ilayout_wcursor w;
    const uint8_t *name;
    uint64_t key;

    ilayout_cursor_init(&c, node + off, len - off);
    ilayout_wcursor_init(&w, out, sizeof(out));
    for (i = 0; i < n_items; i++) {
        if (tree == INODE_TABLE) {
            ilayout_inode_table_entry_value_v1 v;

            assert_int_equal(ilayout_get_u64(&c, &key), 0);
            assert_true(key == want_keys[i]);
            assert_int_equal(ilayout_inode_table_entry_value_v1_decode(&c, &v),
                             0);
            ilayout_put_u64(&w, key);
            ilayout_inode_table_entry_value_v1_encode(&v, &w);
        } else {
            ilayout_directory_entry_value_v1 v;

            assert_int_equal(ilayout_get_lstr(&c, &name, &name_len), 0);
            assert_int_equal(name_len, strlen(want_names[i]));
            assert_memory_equal(name, want_names[i], name_len);
            assert_int_equal(ilayout_directory_entry_value_v1_decode(&c, &v), 0);
            assert_true(v.inode_number == 1 &&
                        v.inode_type == ILAYOUT_INODE_TYPE_DIR);
            ilayout_put_lstr(&w, name, name_len);
            ilayout_directory_entry_value_v1_encode(&v, &w);
        }
    }
    /* The items use the node up exactly. */
    assert_int_equal(ilayout_cursor_remaining(&c), 0);
    assert_int_equal(ilayout_wcursor_error(&w), 0);
    assert_int_equal(ilayout_wcursor_pos(&w), len - off);
    assert_memory_equal(out, node + off, len - off);
}

static void test_tv8_inode_table_leaf_items(void **state)
{
    static const uint64_t keys[] = {1};
    uint8_t node[64];
    ilayout_cursor c;
    ilayout_inode_table_entry_value_v1 v;

    (void)state;
    /* Root leaf: 10-byte header, maxKeys, N, then the items at 26. */
    check_leaf_items(TV8, 26, 1, INODE_TABLE, keys, NULL);
    unhex(TV8, node, sizeof(node));
    ilayout_cursor_init(&c, node + 34, 24);
    assert_int_equal(ilayout_inode_table_entry_value_v1_decode(&c, &v), 0);
    assert_true(v.inode_head_object_number == 2 && v.inode_head_length == 174);
}

static void test_tv9_directory_leaf_items(void **state)
{
    static const char *const names[] = {".", ".."};

    (void)state;
    check_leaf_items(TV9, 26, 2, DIRECTORY, NULL, names);
}

static void test_tv14_inode_table_leaf_items(void **state)
{
    static const uint64_t left[] = {1, 2}, right[] = {3, 4, 5};
    uint8_t node[128];
    ilayout_cursor c;
    ilayout_inode_table_entry_value_v1 v;
    size_t i;

    (void)state;
    /* Non-root leaves carry no maxKeys: the items start at 18. */
    check_leaf_items(TV14_LEFT, 18, 2, INODE_TABLE, left, NULL);
    check_leaf_items(TV14_RIGHT, 18, 3, INODE_TABLE, right, NULL);
    unhex(TV14_RIGHT, node, sizeof(node));
    for (i = 0; i < 3; i++) {
        ilayout_cursor_init(&c, node + 18 + 32 * i + 8, 24);
        assert_int_equal(ilayout_inode_table_entry_value_v1_decode(&c, &v), 0);
        assert_true(v.inode_head_object_number == 0x100 + right[i]);
        assert_true(v.inode_head_length == 0xA0);
    }
}

/* ---- TV10, TV13: inode heads ---------------------------------------------- */

static void assert_encodes_to(const ilayout_inode_head_v1 *h,
                              const ilayout_superblock_v1 *sb, const char *hex)
{
    uint8_t buf[512];
    ilayout_wcursor w;
    size_t counted;

    /* Counting pass first, then the real encode into an exact-size buffer. */
    ilayout_wcursor_init(&w, NULL, 0);
    assert_int_equal(h ? ilayout_inode_head_v1_encode(h, &w)
                       : ilayout_superblock_v1_encode(sb, &w),
                     0);
    counted = ilayout_wcursor_pos(&w);
    ilayout_wcursor_init(&w, buf, counted);
    assert_int_equal(h ? ilayout_inode_head_v1_encode(h, &w)
                       : ilayout_superblock_v1_encode(sb, &w),
                     0);
    assert_int_equal(ilayout_wcursor_pos(&w), counted);
    assert_bytes(buf, counted, hex);
    /* One byte short: -ENOSPC. */
    ilayout_wcursor_init(&w, buf, counted - 1);
    assert_int_equal(h ? ilayout_inode_head_v1_encode(h, &w)
                       : ilayout_superblock_v1_encode(sb, &w),
                     -ENOSPC);
}

static void test_tv10_root_dir_inode_head(void **state)
{
    ilayout_link_entry links[] = {{1, ".", 1}, {1, "..", 2}};
    ilayout_layout_entry_v1 layout[] = {{2, 63, 63}};
    ilayout_inode_head_v1 h = {
        .inode_number = ILAYOUT_ROOT_DIR_INODE_NUMBER,
        .inode_type = ILAYOUT_INODE_TYPE_DIR,
        .link_table_len = 2,
        .link_table = links,
        .modification_time_ns = TS_2021,
        .status_change_time_ns = TS_2021,
        .mode = ILAYOUT_INODE_MODE_MASK,
        .payload_object_number = ILAYOUT_FORMAT_ROOT_DIR_OBJECT_NUMBER,
        .payload_object_offset = 0,
        .payload_object_length = 63,
        .symlink_target = "",
        .layout_len = 1,
        .layout = layout,
    };
    ilayout_inode_head_v1 d;
    uint8_t obj[256];
    size_t len;

    (void)state;
    assert_encodes_to(&h, NULL, TV10);

    /* Object 2 of a fresh volume: TV9 then TV10, 237 bytes; the head is the
     * last InodeHeadLength (174) bytes. */
    len = unhex(TV9, obj, sizeof(obj));
    len += unhex(TV10, obj + len, sizeof(obj) - len);
    assert_int_equal(len, 237);
    assert_int_equal(ilayout_inode_head_v1_decode(obj + len - 174, 174, &d), 0);
    assert_true(d.inode_number == 1 && d.inode_type == ILAYOUT_INODE_TYPE_DIR);
    assert_int_equal(d.link_table_len, 2);
    assert_true(d.link_table[0].parent_dir_inode_number == 1);
    assert_string_equal(d.link_table[0].parent_dir_entry_name, ".");
    assert_int_equal(d.link_table[0].parent_dir_entry_name_len, 1);
    assert_true(d.link_table[1].parent_dir_inode_number == 1);
    assert_string_equal(d.link_table[1].parent_dir_entry_name, "..");
    assert_true(d.size == 0);
    assert_true(d.modification_time_ns == TS_2021);
    assert_true(d.status_change_time_ns == TS_2021);
    assert_int_equal(d.mode, 0777);
    assert_true(d.user_id == 0 && d.group_id == 0);
    assert_int_equal(d.stream_table_len, 0);
    assert_null(d.stream_table);
    assert_true(d.payload_object_number == 2 && d.payload_object_offset == 0 &&
                d.payload_object_length == 63);
    assert_int_equal(d.symlink_target_len, 0);
    assert_string_equal(d.symlink_target, "");
    assert_int_equal(d.layout_len, 1);
    assert_true(d.layout[0].object_number == 2 &&
                d.layout[0].bytes_written == 63 &&
                d.layout[0].bytes_referenced == 63);
    ilayout_inode_head_v1_free(&d);
    assert_null(d.link_table);
    /* The whole object is not an inode head: its trailer length says 166. */
    assert_int_equal(ilayout_inode_head_v1_decode(obj, len, &d), -EINVAL);
    /* A superblock decoder refuses the IH trailer. */
    {
        ilayout_superblock_v1 sb;

        assert_int_equal(ilayout_superblock_v1_decode(obj + 63, 174, &sb),
                         -EINVAL);
    }
}

static void test_tv13_symlink_inode_head(void **state)
{
    static const uint8_t xattr_value[] = {1, 2};
    ilayout_link_entry links[] = {{1, "link", 4}};
    ilayout_stream_entry streams[] = {{"user.a", 6, xattr_value, 2}};
    ilayout_inode_head_v1 h = {
        .inode_number = 0x42,
        .inode_type = ILAYOUT_INODE_TYPE_SYMLINK,
        .link_table_len = 1,
        .link_table = links,
        .modification_time_ns = TS_2021,
        .status_change_time_ns = TS_2021 + 1,
        .mode = 0777,
        .user_id = 1000,
        .group_id = 1000,
        .stream_table_len = 1,
        .stream_table = streams,
        .symlink_target = "target",
        .symlink_target_len = 6,
    };
    ilayout_inode_head_v1 d;
    uint8_t in[256];
    size_t len;

    (void)state;
    assert_encodes_to(&h, NULL, TV13);
    len = unhex(TV13, in, sizeof(in));
    assert_int_equal(len, 115 + (16 + 4) + (16 + 6 + 2) + 6);
    assert_int_equal(ilayout_inode_head_v1_decode(in, len, &d), 0);
    assert_true(d.inode_number == 0x42);
    assert_int_equal(d.inode_type, ILAYOUT_INODE_TYPE_SYMLINK);
    assert_int_equal(d.link_table_len, 1);
    assert_string_equal(d.link_table[0].parent_dir_entry_name, "link");
    assert_true(d.status_change_time_ns == TS_2021 + 1);
    assert_true(d.user_id == 1000 && d.group_id == 1000);
    assert_int_equal(d.stream_table_len, 1);
    assert_int_equal(d.stream_table[0].name_len, 6);
    assert_string_equal(d.stream_table[0].name, "user.a");
    assert_int_equal(d.stream_table[0].value_len, 2);
    assert_memory_equal(d.stream_table[0].value, xattr_value, 2);
    assert_true(d.payload_object_number == 0 && d.payload_object_length == 0);
    assert_int_equal(d.symlink_target_len, 6);
    assert_string_equal(d.symlink_target, "target");
    assert_int_equal(d.layout_len, 0);
    assert_null(d.layout);
    ilayout_inode_head_v1_free(&d);

    /* Trailer with the wrong version or type. */
    in[len - 6] = 2;
    assert_int_equal(ilayout_inode_head_v1_decode(in, len, &d), -EINVAL);
    in[len - 6] = 1;
    in[len - 8] = 0x42;
    assert_int_equal(ilayout_inode_head_v1_decode(in, len, &d), -EINVAL);
}

/* ---- TV11, TV12: superblocks ---------------------------------------------- */

static void test_tv11_fresh_superblock(void **state)
{
    ilayout_layout_entry_v1 layout[] = {{3, 58, 58}};
    ilayout_superblock_v1 sb = {
        .inode_table_root_object_number =
            ILAYOUT_FORMAT_SUPERBLOCK_OBJECT_NUMBER,
        .inode_table_root_object_offset = 0,
        .inode_table_root_object_length = 58,
        .inode_table_layout_len = 1,
        .inode_table_layout = layout,
        .inode_object_count = 1,
        .inode_bytes_written = 63,
        .inode_bytes_referenced = 63,
    };
    ilayout_superblock_v1 d;
    uint8_t obj[256];
    size_t len;

    (void)state;
    assert_encodes_to(NULL, &sb, TV11);
    /* Object 3 of a fresh volume: TV8 then TV11, 154 bytes; the checkpoint
     * says the superblock is its last 0x60 bytes. */
    len = unhex(TV8, obj, sizeof(obj));
    len += unhex(TV11, obj + len, sizeof(obj) - len);
    assert_int_equal(len, 154);
    assert_int_equal(ilayout_superblock_v1_decode(obj + len - 0x60, 0x60, &d),
                     0);
    assert_true(d.inode_table_root_object_number == 3 &&
                d.inode_table_root_object_offset == 0 &&
                d.inode_table_root_object_length == 58);
    assert_int_equal(d.inode_table_layout_len, 1);
    assert_true(d.inode_table_layout[0].object_number == 3 &&
                d.inode_table_layout[0].bytes_written == 58 &&
                d.inode_table_layout[0].bytes_referenced == 58);
    assert_true(d.inode_object_count == 1 && d.inode_bytes_written == 63 &&
                d.inode_bytes_referenced == 63);
    assert_int_equal(d.pending_delete_object_numbers_len, 0);
    assert_null(d.pending_delete_object_numbers);
    ilayout_superblock_v1_free(&d);
    /* The inode-head decoder refuses the SB trailer. */
    {
        ilayout_inode_head_v1 h;

        assert_int_equal(ilayout_inode_head_v1_decode(obj + 58, 96, &h),
                         -EINVAL);
    }
}

static void test_tv12_upstream_superblock(void **state)
{
    ilayout_layout_entry_v1 layout[] = {{11, 12, 13}, {21, 22, 23}};
    uint64_t pending[] = {7, 8, 9};
    ilayout_superblock_v1 sb = {1, 2, 3, 2, layout, 4, 5, 6, 3, pending};
    ilayout_superblock_v1 d;
    uint8_t in[256];
    size_t len, i;

    (void)state;
    assert_encodes_to(NULL, &sb, TV12);
    len = unhex(TV12, in, sizeof(in));
    assert_int_equal(len, ILAYOUT_SUPERBLOCK_V1_FIXED_LEN + 24 * 2 + 8 * 3);
    assert_int_equal(ilayout_superblock_v1_decode(in, len, &d), 0);
    assert_true(d.inode_table_root_object_number == 1 &&
                d.inode_table_root_object_offset == 2 &&
                d.inode_table_root_object_length == 3);
    assert_int_equal(d.inode_table_layout_len, 2);
    for (i = 0; i < 2; i++) {
        assert_true(d.inode_table_layout[i].object_number == layout[i].object_number);
        assert_true(d.inode_table_layout[i].bytes_written == layout[i].bytes_written);
        assert_true(d.inode_table_layout[i].bytes_referenced ==
                    layout[i].bytes_referenced);
    }
    assert_true(d.inode_object_count == 4 && d.inode_bytes_written == 5 &&
                d.inode_bytes_referenced == 6);
    assert_int_equal(d.pending_delete_object_numbers_len, 3);
    for (i = 0; i < 3; i++)
        assert_true(d.pending_delete_object_numbers[i] == pending[i]);
    ilayout_superblock_v1_free(&d);

    /* Section 14: a layout count larger than the bytes present, and a count
     * that would overflow a size computation, are refused before any
     * allocation (ASan would report the attempt). */
    in[24] = 0xFF;
    assert_int_equal(ilayout_superblock_v1_decode(in, len, &d), -EINVAL);
    memset(in + 24, 0xFF, 8);
    assert_int_equal(ilayout_superblock_v1_decode(in, len, &d), -EINVAL);
    unhex(TV12, in, sizeof(in));
    /* Pending count one too small: the data no longer ends at Length. */
    in[0x68] = 2;
    assert_int_equal(ilayout_superblock_v1_decode(in, len, &d), -EINVAL);
    assert_null(d.inode_table_layout);
    /* Pending count one too large: a read runs past the payload. */
    in[0x68] = 4;
    assert_int_equal(ilayout_superblock_v1_decode(in, len, &d), -EINVAL);
}

/* ---- constants and size formulas ------------------------------------------ */

static void test_constants(void **state)
{
    (void)state;
    assert_true(ILAYOUT_CHECKPOINT_OBJECT_NUMBER == 0);
    assert_true(ILAYOUT_CHECKPOINT_VERSION_V1 == 1);
    assert_int_equal(ILAYOUT_SUPERBLOCK_TYPE, 0x5342);
    assert_int_equal(ILAYOUT_INODE_HEAD_TYPE, 0x4948);
    assert_int_equal(ILAYOUT_SUPERBLOCK_VERSION_V1, 1);
    assert_int_equal(ILAYOUT_INODE_HEAD_VERSION_V1, 1);
    assert_true(ILAYOUT_INODE_TABLE_ENTRY_VALUE_VERSION_V1 == 1);
    assert_true(ILAYOUT_ROOT_DIR_INODE_NUMBER == 1);
    assert_int_equal(ILAYOUT_INODE_TYPE_DIR, 0);
    assert_int_equal(ILAYOUT_INODE_TYPE_FILE, 1);
    assert_int_equal(ILAYOUT_INODE_TYPE_SYMLINK, 2);
    assert_int_equal(ILAYOUT_INODE_MODE_MASK, 0x1FF);
    assert_true(ILAYOUT_FORMAT_ROOT_DIR_OBJECT_NUMBER ==
                ILAYOUT_ROOT_DIR_INODE_NUMBER + 1);
}

/* ---- timestamps ----------------------------------------------------------- */

static void test_signed_times(void **state)
{
    /* Go's zero time.Time and a pre-1970 instant are stored as the bit
     * patterns of negative numbers. */
    static const int64_t times[] = {INT64_C(-6795364578871345152), -1,
                                    INT64_MIN, INT64_MAX, 0};
    uint8_t buf[8];
    ilayout_wcursor w;
    ilayout_cursor c;
    int64_t v;
    uint64_t u;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        ilayout_wcursor_init(&w, buf, 8);
        assert_int_equal(ilayout_put_i64(&w, times[i]), 0);
        ilayout_cursor_init(&c, buf, 8);
        assert_int_equal(ilayout_get_u64(&c, &u), 0);
        assert_true(u == (uint64_t)times[i]);
        ilayout_cursor_init(&c, buf, 8);
        assert_int_equal(ilayout_get_i64(&c, &v), 0);
        assert_true(v == times[i]);
    }
    ilayout_wcursor_init(&w, buf, 8);
    ilayout_put_i64(&w, -1);
    assert_bytes(buf, 8, "FF FF FF FF FF FF FF FF");
}

/* ---- cursor primitives ---------------------------------------------------- */

static void test_cursor_gets(void **state)
{
    static const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
                                 0x0F, 0x10, 0x11};
    ilayout_cursor c;
    uint8_t u8, raw[4];
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    const uint8_t *p;
    size_t n;

    (void)state;
    ilayout_cursor_init(&c, in, sizeof(in));
    assert_int_equal(ilayout_get_u8(&c, &u8), 0);
    assert_int_equal(u8, 0x01);
    assert_int_equal(ilayout_get_u16(&c, &u16), 0);
    assert_int_equal(u16, 0x0302);
    assert_int_equal(ilayout_get_u32(&c, &u32), 0);
    assert_int_equal(u32, 0x07060504);
    assert_int_equal(ilayout_get_u64(&c, &u64), 0);
    assert_true(u64 == UINT64_C(0x0F0E0D0C0B0A0908));
    assert_int_equal(ilayout_cursor_remaining(&c), 2);
    assert_int_equal(ilayout_get_view(&c, 1, &p), 0);
    assert_int_equal(*p, 0x10);
    /* Past the end: -EINVAL, zeroed output, position kept, and sticky. */
    assert_int_equal(ilayout_get_u16(&c, &u16), -EINVAL);
    assert_int_equal(u16, 0);
    assert_int_equal(c.pos, 16);
    assert_int_equal(ilayout_get_u8(&c, &u8), -EINVAL);
    assert_int_equal(u8, 0);
    assert_int_equal(ilayout_cursor_remaining(&c), 0);
    assert_int_equal(ilayout_cursor_error(&c), -EINVAL);

    ilayout_cursor_init(&c, in, 3);
    assert_int_equal(ilayout_get_u32(&c, &u32), -EINVAL);
    ilayout_cursor_init(&c, in, 7);
    assert_int_equal(ilayout_get_u64(&c, &u64), -EINVAL);
    assert_true(u64 == 0);
    ilayout_cursor_init(&c, in, 4);
    assert_int_equal(ilayout_get_bytes(&c, raw, 4), 0);
    assert_memory_equal(raw, in, 4);
    assert_int_equal(ilayout_get_bytes(&c, raw, 1), -EINVAL);
    ilayout_cursor_init(&c, NULL, 5);
    assert_int_equal(ilayout_cursor_remaining(&c), 0);
    assert_int_equal(ilayout_get_u8(&c, &u8), -EINVAL);
    ilayout_cursor_init(&c, in, 0);
    assert_int_equal(ilayout_get_view(&c, 0, &p), 0);

    /* lstr: the length must fit in what remains, including huge values. */
    {
        uint8_t s[12] = {3, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c', 'd'};

        ilayout_cursor_init(&c, s, sizeof(s));
        assert_int_equal(ilayout_get_lstr(&c, &p, &n), 0);
        assert_int_equal(n, 3);
        assert_memory_equal(p, "abc", 3);
        assert_int_equal(ilayout_cursor_remaining(&c), 1);
        s[0] = 5;
        ilayout_cursor_init(&c, s, sizeof(s));
        assert_int_equal(ilayout_get_lstr(&c, &p, &n), -EINVAL);
        assert_null(p);
        assert_int_equal(n, 0);
        memset(s, 0xFF, 8);
        ilayout_cursor_init(&c, s, sizeof(s));
        assert_int_equal(ilayout_get_lstr(&c, &p, &n), -EINVAL);
    }
    /* count: bounded by remaining / element size, overflow-safe. */
    {
        uint8_t s[8 + 48] = {2};

        ilayout_cursor_init(&c, s, sizeof(s));
        assert_int_equal(ilayout_get_count(&c, 24, &n), 0);
        assert_int_equal(n, 2);
        s[0] = 3;
        ilayout_cursor_init(&c, s, sizeof(s));
        assert_int_equal(ilayout_get_count(&c, 24, &n), -EINVAL);
        assert_int_equal(n, 0);
        memset(s, 0xFF, 8);
        ilayout_cursor_init(&c, s, sizeof(s));
        assert_int_equal(ilayout_get_count(&c, 24, &n), -EINVAL);
        s[0] = 48;
        memset(s + 1, 0, 7);
        ilayout_cursor_init(&c, s, sizeof(s));
        assert_int_equal(ilayout_get_count(&c, 0, &n), 0);
        assert_int_equal(n, 48);
    }
}

static void test_cursor_puts(void **state)
{
    uint8_t buf[24];
    ilayout_wcursor w;

    (void)state;
    memset(buf, 0xAA, sizeof(buf));
    ilayout_wcursor_init(&w, buf, sizeof(buf));
    ilayout_wcursor_init(&w, buf, 16);
    assert_int_equal(ilayout_put_u8(&w, 0x01), 0);
    assert_int_equal(ilayout_put_u16(&w, 0x0302), 0);
    assert_int_equal(ilayout_put_u32(&w, 0x07060504), 0);
    assert_int_equal(ilayout_put_bytes(&w, "\x08\x09", 2), 0);
    assert_int_equal(ilayout_wcursor_pos(&w), 9);
    assert_bytes(buf, 9, "01 02 03 04 05 06 07 08 09");
    /* Does not fit: -ENOSPC, nothing written, sticky. */
    assert_int_equal(ilayout_put_u64(&w, 0), -ENOSPC);
    assert_int_equal(buf[9], 0xAA);
    assert_int_equal(ilayout_put_u8(&w, 0), -ENOSPC);
    assert_int_equal(ilayout_wcursor_pos(&w), 9);
    assert_int_equal(ilayout_wcursor_error(&w), -ENOSPC);

    ilayout_wcursor_init(&w, buf, sizeof(buf));
    assert_int_equal(ilayout_put_lstr(&w, "xy", 2), 0);
    assert_int_equal(ilayout_put_lstr(&w, NULL, 0), 0);
    assert_int_equal(ilayout_wcursor_pos(&w), 8 + 2 + 8);
    assert_bytes(buf, 10, "02 00 00 00 00 00 00 00 78 79");
    /* Counting mode never writes and never runs out of room. */
    ilayout_wcursor_init(&w, NULL, 0);
    assert_int_equal(ilayout_put_bytes(&w, NULL, 1000), 0);
    assert_int_equal(ilayout_put_lstr(&w, "abc", 3), 0);
    assert_int_equal(ilayout_wcursor_pos(&w), 1011);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tv1_object_names),
        cmocka_unit_test(test_tv2_checkpoint),
        cmocka_unit_test(test_tv3_trailer),
        cmocka_unit_test(test_tv4_inode_table_entry_value),
        cmocka_unit_test(test_tv5_directory_entry_value),
        cmocka_unit_test(test_tv6_extent_map_entry_value),
        cmocka_unit_test(test_tv8_inode_table_leaf_items),
        cmocka_unit_test(test_tv9_directory_leaf_items),
        cmocka_unit_test(test_tv10_root_dir_inode_head),
        cmocka_unit_test(test_tv11_fresh_superblock),
        cmocka_unit_test(test_tv12_upstream_superblock),
        cmocka_unit_test(test_tv13_symlink_inode_head),
        cmocka_unit_test(test_tv14_inode_table_leaf_items),
        cmocka_unit_test(test_constants),
        cmocka_unit_test(test_signed_times),
        cmocka_unit_test(test_cursor_gets),
        cmocka_unit_test(test_cursor_puts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
