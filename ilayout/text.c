/* The two textual encodings of the format: object names (section 2.3) and
 * the checkpoint string (section 3). */
#include "ilayout.h"

#include <errno.h>
#include <stdbool.h>

static const char hex_upper[] = "0123456789ABCDEF";

/* Value of a hex digit, or -1. */
static int hex_value(char ch, bool allow_lower)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    if (allow_lower && ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

void ilayout_object_number_to_name(uint64_t object_number,
                                   char name[ILAYOUT_OBJECT_NAME_LEN + 1])
{
    int i;

    /* Least significant nibble first, so that consecutive numbers differ in
     * the first character and spread over Swift's prefix shards. */
    for (i = 0; i < ILAYOUT_OBJECT_NAME_LEN; i++)
        name[i] = hex_upper[(object_number >> (4 * i)) & 0xF];
    name[ILAYOUT_OBJECT_NAME_LEN] = '\0';
}

int ilayout_object_name_to_number(const char *name, size_t len,
                                  uint64_t *object_number)
{
    uint64_t n = 0;
    int i, d;

    *object_number = 0;
    if (len != ILAYOUT_OBJECT_NAME_LEN)
        return -EINVAL;
    for (i = 0; i < ILAYOUT_OBJECT_NAME_LEN; i++) {
        d = hex_value(name[i], false);
        if (d < 0)
            return -EINVAL;
        n |= (uint64_t)d << (4 * i);
    }
    *object_number = n;
    return 0;
}

static void put_hex16(char *out, uint64_t v)
{
    int i;

    for (i = 15; i >= 0; i--, v >>= 4)
        out[i] = hex_upper[v & 0xF];
}

int ilayout_checkpoint_v1_encode(const ilayout_checkpoint_v1 *ckpt,
                                 char text[ILAYOUT_CHECKPOINT_V1_LEN + 1])
{
    const uint64_t fields[4] = {ckpt->version, ckpt->superblock_object_number,
                                ckpt->superblock_length,
                                ckpt->reserved_to_nonce};
    int i;

    if (ckpt->version != ILAYOUT_CHECKPOINT_VERSION_V1)
        return -EINVAL;
    for (i = 0; i < 4; i++) {
        put_hex16(text + 17 * i, fields[i]);
        if (i < 3)
            text[17 * i + 16] = ' ';
    }
    text[ILAYOUT_CHECKPOINT_V1_LEN] = '\0';
    return 0;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/*
 * Scans up to nfields hex fields the way Go's "%016X %016X ..." does: blanks
 * before the first field are skipped, each field has 1..16 digits of either
 * case, and at least one blank must separate consecutive fields (a 17th digit
 * therefore fails where the separator is expected). Text after the last field
 * is not looked at.
 */
static int scan_hex_fields(const char *text, size_t len, uint64_t *fields,
                           int nfields)
{
    size_t pos = 0, digits;
    uint64_t v;
    int f, d;

    while (pos < len && is_blank(text[pos]))
        pos++;
    for (f = 0; f < nfields; f++) {
        if (f > 0) {
            if (pos >= len || !is_blank(text[pos]))
                return -EINVAL;
            while (pos < len && is_blank(text[pos]))
                pos++;
        }
        v = 0;
        for (digits = 0; digits < 16 && pos < len; digits++, pos++) {
            d = hex_value(text[pos], true);
            if (d < 0)
                break;
            v = (v << 4) | (uint64_t)d;
        }
        if (digits == 0)
            return -EINVAL;
        fields[f] = v;
    }
    return 0;
}

int ilayout_checkpoint_version_decode(const char *text, size_t len,
                                      uint64_t *version)
{
    int rc = scan_hex_fields(text, len, version, 1);

    if (rc)
        *version = 0;
    return rc;
}

int ilayout_checkpoint_v1_decode(const char *text, size_t len,
                                 ilayout_checkpoint_v1 *ckpt)
{
    uint64_t f[4];
    int rc = scan_hex_fields(text, len, f, 4);

    *ckpt = (ilayout_checkpoint_v1){0};
    if (rc)
        return rc;
    if (f[0] != ILAYOUT_CHECKPOINT_VERSION_V1)
        return -EINVAL;
    ckpt->version = f[0];
    ckpt->superblock_object_number = f[1];
    ckpt->superblock_length = f[2];
    ckpt->reserved_to_nonce = f[3];
    return 0;
}
