/*
 * ilayout: the on-object format of a ProxyFS "i-generation" volume.
 *
 * Encoders and decoders for every structure stored in the Swift container of a
 * volume: the checkpoint text (object 0), the 8-byte object trailer, the
 * SuperBlock V1, the InodeHead V1, and the key/value packings that imgr and
 * iclient plug into the sortedmap B+tree (inode table entry values, directory
 * entry values, extent map values). Also the object number <-> object name
 * mapping. The B+tree node framing itself belongs to sortedmap, which reuses
 * the cursor helpers declared here.
 *
 * The byte layouts are those of ../shared/spec/ilayout.md; the section numbers
 * below refer to it. Everything is little-endian and packed.
 *
 * Conventions shared by every function of this header:
 *
 *  - Return value: 0 on success or a negative errno. Decoders return -EINVAL
 *    for any input that is short, inconsistent or otherwise not a valid
 *    encoding, and -ENOMEM when an allocation fails. Encoders return -ENOSPC
 *    when the destination buffer is too small, -EOVERFLOW when a structure
 *    exceeds what the format can express (a payload over 4 GiB - 1), and
 *    -EINVAL when a field holds a value the format cannot carry.
 *  - Decoders never read outside the bytes they are given and never allocate
 *    more than a small constant factor of the input length: every count read
 *    from the input is checked against the bytes that remain before anything
 *    is allocated.
 *  - Threading: no global state. Functions are safe to call concurrently on
 *    distinct objects; a cursor or struct must not be shared between threads
 *    without the caller's locking.
 *  - Ownership: structs produced by a decoder own every array and string they
 *    point to (malloc'd; strings are copies with a terminating NUL that is not
 *    counted in their length) and must be released with the matching
 *    ilayout_*_free(), which also resets the struct to all zero. Structs that a
 *    caller fills in for encoding may point anywhere (string literals, stack
 *    arrays); never pass those to ilayout_*_free(). Encoders only read them.
 *    The small fixed-size values (trailer, inode table entry value, directory
 *    entry value, extent map value, checkpoint) own nothing and have no free.
 */
#ifndef ILAYOUT_ILAYOUT_H
#define ILAYOUT_ILAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * Constants (spec sections 2, 3, 4, 5, 6, 7, 13).
 */

/* Object 0 holds the checkpoint text; it is the only object ever rewritten. */
#define ILAYOUT_CHECKPOINT_OBJECT_NUMBER UINT64_C(0)
#define ILAYOUT_CHECKPOINT_VERSION_V1 UINT64_C(1)
/* Canonical V1 text: four 16-digit upper-case hex fields, single spaces. */
#define ILAYOUT_CHECKPOINT_V1_LEN 67

/* Object trailer ObjType values and versions (section 4). */
#define ILAYOUT_SUPERBLOCK_TYPE UINT16_C(0x5342)
#define ILAYOUT_SUPERBLOCK_VERSION_V1 UINT16_C(1)
#define ILAYOUT_INODE_HEAD_TYPE UINT16_C(0x4948)
#define ILAYOUT_INODE_HEAD_VERSION_V1 UINT16_C(1)
#define ILAYOUT_OBJECT_TRAILER_LEN 8
/* The trailer's Length field is a u32: the largest payload it can describe. */
#define ILAYOUT_OBJECT_TRAILER_MAX_PAYLOAD UINT64_C(0xFFFFFFFF)

#define ILAYOUT_INODE_TABLE_ENTRY_VALUE_VERSION_V1 UINT64_C(1)

/* Inode numbers and types (section 6.1). Inode number 0 never names an inode:
 * nonce 0 is the checkpoint object. */
#define ILAYOUT_ROOT_DIR_INODE_NUMBER UINT64_C(1)
#define ILAYOUT_INODE_TYPE_DIR UINT8_C(0)
#define ILAYOUT_INODE_TYPE_FILE UINT8_C(1)
#define ILAYOUT_INODE_TYPE_SYMLINK UINT8_C(2)
/* The only permission bits stored: no setuid/setgid/sticky, no type bits. */
#define ILAYOUT_INODE_MODE_MASK UINT16_C(0777)

/* Nonces consumed by formatting a volume (section 13.1): 0 checkpoint object,
 * 1 root inode number, 2 the root directory's inode object, 3 the first
 * checkpoint (superblock) object; ReservedToNonce starts at 3. */
#define ILAYOUT_FORMAT_ROOT_DIR_OBJECT_NUMBER UINT64_C(2)
#define ILAYOUT_FORMAT_SUPERBLOCK_OBJECT_NUMBER UINT64_C(3)
#define ILAYOUT_FORMAT_RESERVED_TO_NONCE UINT64_C(3)

/* Object names: 16 upper-case hex digits, least significant nibble first. */
#define ILAYOUT_OBJECT_NAME_LEN 16

/* Encoded sizes of the fixed-size structures. */
#define ILAYOUT_LAYOUT_ENTRY_V1_LEN 24
#define ILAYOUT_INODE_TABLE_ENTRY_VALUE_V1_LEN 24
#define ILAYOUT_DIRECTORY_ENTRY_VALUE_V1_LEN 9
#define ILAYOUT_EXTENT_MAP_ENTRY_VALUE_V1_LEN 24
/* SuperBlock V1 total = 72 + 24 * layout entries + 8 * pending deletes. */
#define ILAYOUT_SUPERBLOCK_V1_FIXED_LEN 72
/* InodeHead V1 total = 115 + variable parts (section 7.2). */
#define ILAYOUT_INODE_HEAD_V1_FIXED_LEN 115
/* Minimum encoded sizes of table entries, used to bound decoded counts. */
#define ILAYOUT_LINK_ENTRY_MIN_LEN 16   /* u64 inode + u64 name length */
#define ILAYOUT_STREAM_ENTRY_MIN_LEN 16 /* u64 name length + u64 value length */

/* ---------------------------------------------------------------------------
 * Cursors: the little-endian put/get primitives every layout is built from.
 * sortedmap and the daemons use them for the B+tree node framing and keys.
 *
 * A read cursor walks a caller-owned buffer (never copied, never freed).
 * Every get checks the bytes that remain; past the end it returns -EINVAL,
 * leaves the position unchanged, zeroes its outputs and makes the error
 * sticky: every later get on the same cursor also fails. A sequence of gets
 * may therefore be checked once at the end with ilayout_cursor_error(), as
 * long as no value read in between was used to size an allocation or index
 * memory (use ilayout_get_count() for counts).
 *
 * A write cursor appends to a caller-owned buffer of fixed capacity, or, when
 * initialised with a NULL buffer, only counts the bytes that would be written
 * (to size a buffer before the real encode). A put that does not fit returns
 * -ENOSPC, writes nothing and makes the error sticky in the same way.
 */
typedef struct ilayout_cursor {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    int err; /* first error, sticky; 0 while all gets succeeded */
} ilayout_cursor;

typedef struct ilayout_wcursor {
    uint8_t *buf; /* NULL: counting mode */
    size_t cap;
    size_t pos;
    int err;
} ilayout_wcursor;

void ilayout_cursor_init(ilayout_cursor *c, const void *buf, size_t len);
/* Bytes not yet consumed (0 once the cursor is in error). */
size_t ilayout_cursor_remaining(const ilayout_cursor *c);
/* The sticky error: 0 or the first negative errno a get returned. */
int ilayout_cursor_error(const ilayout_cursor *c);

int ilayout_get_u8(ilayout_cursor *c, uint8_t *v);
int ilayout_get_u16(ilayout_cursor *c, uint16_t *v);
int ilayout_get_u32(ilayout_cursor *c, uint32_t *v);
int ilayout_get_u64(ilayout_cursor *c, uint64_t *v);
/* A u64 holding a signed value in two's complement (timestamps, section 0.4). */
int ilayout_get_i64(ilayout_cursor *c, int64_t *v);
/* Copies exactly n bytes into dst. */
int ilayout_get_bytes(ilayout_cursor *c, void *dst, size_t n);
/* Consumes n bytes and points *p at them inside the cursor's buffer. */
int ilayout_get_view(ilayout_cursor *c, size_t n, const uint8_t **p);
/* A length-prefixed string (u64 length, then bytes): consumes it and returns
 * a view into the cursor's buffer. -EINVAL if the length exceeds what remains. */
int ilayout_get_lstr(ilayout_cursor *c, const uint8_t **p, size_t *len);
/* A u64 element count, accepted only if count * min_elem_len bytes remain
 * (min_elem_len 0 is treated as 1), so a corrupt count can never size an
 * allocation beyond the input. */
int ilayout_get_count(ilayout_cursor *c, size_t min_elem_len, size_t *count);

void ilayout_wcursor_init(ilayout_wcursor *w, void *buf, size_t cap);
/* Bytes written (or counted) so far. */
size_t ilayout_wcursor_pos(const ilayout_wcursor *w);
int ilayout_wcursor_error(const ilayout_wcursor *w);

int ilayout_put_u8(ilayout_wcursor *w, uint8_t v);
int ilayout_put_u16(ilayout_wcursor *w, uint16_t v);
int ilayout_put_u32(ilayout_wcursor *w, uint32_t v);
int ilayout_put_u64(ilayout_wcursor *w, uint64_t v);
int ilayout_put_i64(ilayout_wcursor *w, int64_t v);
int ilayout_put_bytes(ilayout_wcursor *w, const void *src, size_t n);
/* u64 length n, then the n bytes of src (src may be NULL when n is 0). */
int ilayout_put_lstr(ilayout_wcursor *w, const void *src, size_t n);

/* ---------------------------------------------------------------------------
 * Object numbers and names (section 2.3).
 */

/* Writes the 16 characters and a terminating NUL into name. */
void ilayout_object_number_to_name(uint64_t object_number,
                                   char name[ILAYOUT_OBJECT_NAME_LEN + 1]);
/* name need not be NUL-terminated; len must be exactly 16 and every character
 * one of 0-9 A-F (lower case is rejected). -EINVAL otherwise. */
int ilayout_object_name_to_number(const char *name, size_t len,
                                  uint64_t *object_number);

/* ---------------------------------------------------------------------------
 * CheckPoint V1 (section 3): the text body of object 0.
 */
typedef struct ilayout_checkpoint_v1 {
    uint64_t version; /* ILAYOUT_CHECKPOINT_VERSION_V1 */
    uint64_t superblock_object_number;
    uint64_t superblock_length; /* includes the 8-byte trailer */
    uint64_t reserved_to_nonce;
} ilayout_checkpoint_v1;

/* Writes the canonical 67-character form plus a NUL. -EINVAL unless
 * version is ILAYOUT_CHECKPOINT_VERSION_V1. */
int ilayout_checkpoint_v1_encode(const ilayout_checkpoint_v1 *ckpt,
                                 char text[ILAYOUT_CHECKPOINT_V1_LEN + 1]);
/*
 * Decoding accepts what the Go original's "%016X %016X %016X %016X" scan
 * accepts (section 3.4): each field is 1 to 16 hex digits of either case;
 * spaces or tabs before the first field are skipped; fields are separated by
 * one or more spaces or tabs; anything after the fourth field is ignored.
 * A 17th digit, a missing field or a non-hex character is -EINVAL, and so is
 * a version other than 1. Because a shortened fourth field still scans, the
 * caller must pass the complete object body (Swift GETs are length-checked).
 * text need not be NUL-terminated.
 */
int ilayout_checkpoint_v1_decode(const char *text, size_t len,
                                 ilayout_checkpoint_v1 *ckpt);
/* Scans only the leading field: what a reader uses to choose the version. */
int ilayout_checkpoint_version_decode(const char *text, size_t len,
                                      uint64_t *version);

/* ---------------------------------------------------------------------------
 * Object trailer (section 4): the last 8 bytes of every object but object 0.
 */
typedef struct ilayout_object_trailer {
    uint16_t obj_type; /* ILAYOUT_SUPERBLOCK_TYPE or ILAYOUT_INODE_HEAD_TYPE */
    uint16_t version;
    uint32_t length; /* bytes of the structure preceding the trailer */
} ilayout_object_trailer;

int ilayout_object_trailer_encode(const ilayout_object_trailer *t,
                                  ilayout_wcursor *w);
/* buf is the whole referenced tail (structure + trailer). Decodes the last 8
 * bytes and checks that length equals len - 8; -EINVAL if len < 8, if
 * len - 8 exceeds the u32 range, or on a mismatch. The caller checks
 * obj_type and version. */
int ilayout_object_trailer_decode(const void *buf, size_t len,
                                  ilayout_object_trailer *t);

/* ---------------------------------------------------------------------------
 * Layout entries (sections 5.3 and 7.5). InodeTableLayoutEntryV1 and
 * InodeHeadLayoutEntryV1 have the same three u64 fields, so one type serves
 * both tables.
 */
typedef struct ilayout_layout_entry_v1 {
    uint64_t object_number;
    uint64_t bytes_written; /* upstream's older name: ObjectSize */
    uint64_t bytes_referenced;
} ilayout_layout_entry_v1;

/* ---------------------------------------------------------------------------
 * SuperBlock V1 (section 5): the tail of a checkpoint object.
 */
typedef struct ilayout_superblock_v1 {
    uint64_t inode_table_root_object_number;
    uint64_t inode_table_root_object_offset;
    uint64_t inode_table_root_object_length;
    size_t inode_table_layout_len;
    ilayout_layout_entry_v1 *inode_table_layout;
    uint64_t inode_object_count;
    uint64_t inode_bytes_written; /* upstream's older name: InodeObjectSize */
    uint64_t inode_bytes_referenced;
    size_t pending_delete_object_numbers_len;
    uint64_t *pending_delete_object_numbers;
} ilayout_superblock_v1;

/* Appends the superblock and its trailer. The total written is what the
 * checkpoint's SuperBlockLength must say. Use a counting cursor to size the
 * buffer first. */
int ilayout_superblock_v1_encode(const ilayout_superblock_v1 *sb,
                                 ilayout_wcursor *w);
/* buf is exactly the last SuperBlockLength bytes of the checkpoint object.
 * On success *sb owns its arrays (release with ilayout_superblock_v1_free);
 * on failure *sb is left all zero. */
int ilayout_superblock_v1_decode(const void *buf, size_t len,
                                 ilayout_superblock_v1 *sb);
void ilayout_superblock_v1_free(ilayout_superblock_v1 *sb);

/* ---------------------------------------------------------------------------
 * Inode table entry value V1 (section 6.3): the value of the inode table
 * B+tree, whose key is the inode number packed as a plain u64.
 */
typedef struct ilayout_inode_table_entry_value_v1 {
    uint64_t inode_head_object_number;
    uint64_t inode_head_length; /* includes the 8-byte trailer */
} ilayout_inode_table_entry_value_v1;

/* Appends the 24 bytes (leading version word, then the two fields). */
int ilayout_inode_table_entry_value_v1_encode(
    const ilayout_inode_table_entry_value_v1 *v, ilayout_wcursor *w);
/* Reads one value from the cursor's position (-EINVAL if its version word is
 * not 1); the cursor advances by the bytes consumed (always 24), so a B+tree
 * unpack callback reports the position difference. */
int ilayout_inode_table_entry_value_v1_decode(
    ilayout_cursor *c, ilayout_inode_table_entry_value_v1 *v);
/* Reads just the leading version word of an encoded value. */
int ilayout_inode_table_entry_value_version_decode(const void *buf, size_t len,
                                                   uint64_t *version);

/* ---------------------------------------------------------------------------
 * InodeHead V1 (section 7): the tail of an inode object.
 */
typedef struct ilayout_link_entry {
    uint64_t parent_dir_inode_number;
    const char *parent_dir_entry_name;
    size_t parent_dir_entry_name_len;
} ilayout_link_entry;

typedef struct ilayout_stream_entry { /* an extended attribute */
    const char *name;
    size_t name_len;
    const uint8_t *value;
    size_t value_len;
} ilayout_stream_entry;

typedef struct ilayout_inode_head_v1 {
    uint64_t inode_number;
    uint8_t inode_type; /* ILAYOUT_INODE_TYPE_*; not range-checked (Go compat) */
    size_t link_table_len;
    ilayout_link_entry *link_table;
    uint64_t size;
    int64_t modification_time_ns; /* ns since the epoch, may be negative */
    int64_t status_change_time_ns;
    uint16_t mode; /* writers keep it within ILAYOUT_INODE_MODE_MASK */
    uint64_t user_id;
    uint64_t group_id;
    size_t stream_table_len;
    ilayout_stream_entry *stream_table;
    uint64_t payload_object_number; /* root node of the dir / extent tree */
    uint64_t payload_object_offset;
    uint64_t payload_object_length;
    const char *symlink_target;
    size_t symlink_target_len;
    size_t layout_len;
    ilayout_layout_entry_v1 *layout;
} ilayout_inode_head_v1;

/* Appends the head and its trailer; the total written is the InodeHeadLength
 * of the inode table entry. The trailer's length counts from the cursor
 * position at entry, so the head may be appended to a larger object buffer.
 * String pointers may be NULL when their length is 0. */
int ilayout_inode_head_v1_encode(const ilayout_inode_head_v1 *h,
                                 ilayout_wcursor *w);
/* buf is exactly the last InodeHeadLength bytes of the inode object. No
 * semantic checks beyond the format (type, mode and inode number are passed
 * through, as Go does). On success *h owns its arrays and strings (release
 * with ilayout_inode_head_v1_free); on failure *h is left all zero. */
int ilayout_inode_head_v1_decode(const void *buf, size_t len,
                                 ilayout_inode_head_v1 *h);
void ilayout_inode_head_v1_free(ilayout_inode_head_v1 *h);

/* ---------------------------------------------------------------------------
 * Directory entry value V1 (section 8): the value of a directory B+tree,
 * whose key is the entry name packed with ilayout_put_lstr.
 */
typedef struct ilayout_directory_entry_value_v1 {
    uint64_t inode_number;
    uint8_t inode_type;
} ilayout_directory_entry_value_v1;

int ilayout_directory_entry_value_v1_encode(
    const ilayout_directory_entry_value_v1 *v, ilayout_wcursor *w);
/* Consumes 9 bytes from the cursor. */
int ilayout_directory_entry_value_v1_decode(
    ilayout_cursor *c, ilayout_directory_entry_value_v1 *v);

/* ---------------------------------------------------------------------------
 * Extent map entry value V1 (section 9.2, the current 24-byte layout): the
 * value of a file's extent B+tree, whose key is the file offset as a u64.
 */
typedef struct ilayout_extent_map_entry_value_v1 {
    uint64_t length;
    uint64_t object_number;
    uint64_t object_offset;
} ilayout_extent_map_entry_value_v1;

int ilayout_extent_map_entry_value_v1_encode(
    const ilayout_extent_map_entry_value_v1 *v, ilayout_wcursor *w);
/* Consumes 24 bytes from the cursor. */
int ilayout_extent_map_entry_value_v1_decode(
    ilayout_cursor *c, ilayout_extent_map_entry_value_v1 *v);

#endif /* ILAYOUT_ILAYOUT_H */
