/*
 * conf internals shared by the map (conf.c), the parsers (conf_parse.c)
 * and the value converters (conf_value.c). Not part of the public API;
 * the fuzz target uses conf_update_from_buffer().
 */
#ifndef PFS_CONF_INTERNAL_H
#define PFS_CONF_INTERNAL_H

#include "conf.h"

#include <stdarg.h>

/* Longest raw line accepted in a file (bytes, without the '\n'). */
#define CONF_LINE_MAX 65536u
/* Deepest .include nesting below the file handed to conf_update_from_file. */
#define CONF_INCLUDE_DEPTH_MAX 16u
/* Total bytes one conf_update_from_file may read, includes counted too. */
#define CONF_LOAD_MAX (16u << 20)
/* Bytes of user text (paths, lines, names, values) quoted in a message, so
 * that every message fits CONF_ERR_MAX even after conf_load_args prefixes it. */
#define CONF_SHOW_MAX 120u
#define CONF_SHOW_BUF (CONF_SHOW_MAX + 8u)

/* conf_update_from_buffer flags. */
#define CONF_BUF_NO_INCLUDE 0x1u /* refuse .include lines (fuzzing) */

/* Parse data[0..len) exactly as if it were the contents of file `name`
 * (relative .include paths resolve against name's directory). */
int conf_update_from_buffer(conf_map *m, const char *name, const char *data, size_t len,
                            unsigned flags, char *err, size_t errlen);

/* Replace [section]option with vals[0..count). Takes ownership of vals and
 * of every string in it, on success and on failure. Names are spans (no
 * NUL needed). Returns 0 or -ENOMEM. */
int conf_put(conf_map *m, const char *section, size_t section_len, const char *option,
             size_t option_len, char **vals, size_t count);

/* snprintf into err (if non-NULL), never overflowing. */
void conf_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Render s[0..len) for a message into out (CONF_SHOW_BUF bytes): control
 * and (if goquote) non-ASCII bytes as \xNN; if goquote, the result is
 * wrapped in double quotes with '"' and '\' escaped like Go's %q. Text past
 * CONF_SHOW_MAX output bytes is replaced by "...". Returns out. */
const char *conf_show(char *out, const char *s, size_t len, int goquote);

/* Go strconv.ParseFloat(s, 64): 0, -EINVAL (syntax) or -ERANGE (overflow). */
int conf_parse_float(const char *s, double *value);

/* Go time.ParseDuration, signed. 0 or -EINVAL; when err is given it gets
 * the Go text ("time: invalid duration \"x\"", "time: missing unit ...",
 * "time: unknown unit ..."). */
int conf_parse_duration_signed(const char *s, int64_t *ns, char *err, size_t errlen);

#endif
