/*
 * conf: the ProxyFS .conf format (see ../shared/spec/support.md section 1).
 *
 * A conf_map holds: section -> option -> ordered list of string values.
 * Names are case-sensitive. Assigning an option again replaces its whole
 * value list; sections merge. Values are untyped until fetched.
 *
 * Errors: every function returns 0 or a negative errno. Where a message
 * helps (parse errors, missing keys, bad values) it is written into the
 * caller's buffer `err` (may be NULL) using the original's wording, e.g.
 *   "file x.conf malformed line 'a b c' (line 3)"  (parse, -EINVAL)
 *   "[S] missing"                                   (-ENOENT)
 *   "[S]O missing"                                  (-ENOENT)
 *   "[S]O must be single-valued"                    (-EINVAL)
 * (upstream conf/api.go texts; parse errors add the line number). Messages
 * quote at most 120 bytes of any path, line, name or value.
 *
 * Threading: a conf_map is not locked; build it on one thread, then share
 * it read-only.
 */
#ifndef PFS_CONF_H
#define PFS_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

#define CONF_ERR_MAX 512 /* a buffer this size always holds a whole message */

typedef struct conf_map conf_map;

conf_map *conf_new(void);
void conf_free(conf_map *m);

/* Load a file ("-" is standard input) into m: .include, comments, escapes.
 * Files must be UTF-8 and end in '\n' (an empty file is fine). */
int conf_update_from_file(conf_map *m, const char *path, char *err, size_t errlen);

/* Apply one "Section.Option=values" override (command line form). */
int conf_update_from_string(conf_map *m, const char *s, char *err, size_t errlen);

/* Parse the daemons' argument vector: argv[0] is the .conf path, the rest
 * are overrides. On failure *out is NULL and err says
 * "no .conf file specified", "failed to load config: ..." or
 * "failed to apply config overrides: ...". */
int conf_load_args(int argc, char *const argv[], conf_map **out, char *err, size_t errlen);

/* Presence. */
bool conf_has_section(const conf_map *m, const char *section);
bool conf_has_option(const conf_map *m, const char *section, const char *option);

/* Values as stored. *values points into the map (valid until the option is
 * changed or the map freed); *count may be 0. */
int conf_get_list(const conf_map *m, const char *section, const char *option,
                  const char *const **values, size_t *count, char *err, size_t errlen);

/* Typed getters: exactly one value is required. */
int conf_get_string(const conf_map *m, const char *section, const char *option,
                    const char **value, char *err, size_t errlen);
int conf_get_bool(const conf_map *m, const char *section, const char *option,
                  bool *value, char *err, size_t errlen);
/* Decimal only (no sign, no 0x, no suffix); checked against the type's max. */
int conf_get_u8(const conf_map *m, const char *section, const char *option,
                uint8_t *value, char *err, size_t errlen);
int conf_get_u16(const conf_map *m, const char *section, const char *option,
                 uint16_t *value, char *err, size_t errlen);
int conf_get_u32(const conf_map *m, const char *section, const char *option,
                 uint32_t *value, char *err, size_t errlen);
int conf_get_u64(const conf_map *m, const char *section, const char *option,
                 uint64_t *value, char *err, size_t errlen);
int conf_get_double(const conf_map *m, const char *section, const char *option,
                    double *value, char *err, size_t errlen);
/* Go duration syntax ("10s", "250ms", "1m30s", "1.5h", "0"), in nanoseconds.
 * Negative values are refused. */
int conf_get_duration_ns(const conf_map *m, const char *section, const char *option,
                         uint64_t *ns, char *err, size_t errlen);
/* A float times mult, which must land in [0, UINT32_MAX] / [0, UINT64_MAX]. */
int conf_get_float_scaled_u32(const conf_map *m, const char *section, const char *option,
                              double mult, uint32_t *value, char *err, size_t errlen);
int conf_get_float_scaled_u64(const conf_map *m, const char *section, const char *option,
                              double mult, uint64_t *value, char *err, size_t errlen);
/* RFC 4122 text -> 16 bytes. */
int conf_get_uuid(const conf_map *m, const char *section, const char *option,
                  uint8_t uuid[16], char *err, size_t errlen);

/* The original's "missing or empty" convention for optional keys: true when
 * the option is absent or has an empty value list. */
bool conf_is_missing_or_empty(const conf_map *m, const char *section, const char *option);

/* Set values (replacing); creates the section. values may be NULL if count 0. */
int conf_set(conf_map *m, const char *section, const char *option,
             const char *const *values, size_t count);
int conf_set_if_missing(conf_map *m, const char *section, const char *option,
                        const char *const *values, size_t count);

/* Standalone parsers, also used by the getters and by other modules. */
int conf_parse_duration_ns(const char *s, uint64_t *ns);
int conf_parse_bool(const char *s, bool *value);
int conf_parse_u64(const char *s, uint64_t max, uint64_t *value);

/* The original's Dump(): sections and options sorted, names padded. */
int conf_dump(const conf_map *m, FILE *out);

/* The whole map as a JSON object text {"SECTION":{"Option":["v",...]}}
 * (malloc'd; caller frees), for GET /config and start-up logging. Sections
 * and options appear sorted. NULL if memory runs out or a name or value set
 * through conf_set is not UTF-8 (parsed ones always are). */
char *conf_to_json(const conf_map *m);

#endif
