/*
 * Fuzz target for conf: the input is parsed as a .conf file (from memory,
 * .include refused so the fuzzer cannot reach the file system), its first
 * line is also applied as a command-line override, and every getter then
 * runs on every option that was parsed. Properties checked: no crash, no
 * leak, every message NUL-terminated inside CONF_ERR_MAX, and the map
 * always renders as JSON (all names and values are UTF-8).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(const char *err)
{
    if (memchr(err, '\0', CONF_ERR_MAX) == NULL)
        abort();
}

static void run_getters(const conf_map *m, const char *s, const char *o)
{
    char err[CONF_ERR_MAX] = "";
    const char *const *list;
    const char *str;
    size_t n;
    bool b;
    uint8_t u8, uuid[16];
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    double d;

    if (conf_get_list(m, s, o, &list, &n, err, sizeof(err)) != 0)
        abort(); /* it came out of the map */
    for (size_t i = 0; i < n; i++)
        if (list[i] == NULL)
            abort();
    (void)conf_get_string(m, s, o, &str, err, sizeof(err));
    (void)conf_get_bool(m, s, o, &b, err, sizeof(err));
    (void)conf_get_u8(m, s, o, &u8, err, sizeof(err));
    (void)conf_get_u16(m, s, o, &u16, err, sizeof(err));
    (void)conf_get_u32(m, s, o, &u32, err, sizeof(err));
    (void)conf_get_u64(m, s, o, &u64, err, sizeof(err));
    (void)conf_get_double(m, s, o, &d, err, sizeof(err));
    (void)conf_get_duration_ns(m, s, o, &u64, err, sizeof(err));
    (void)conf_get_float_scaled_u32(m, s, o, 1000.0, &u32, err, sizeof(err));
    (void)conf_get_float_scaled_u64(m, s, o, 1e9, &u64, err, sizeof(err));
    (void)conf_get_uuid(m, s, o, uuid, err, sizeof(err));
    (void)conf_is_missing_or_empty(m, s, o);
    check_err(err);
}

/* Walk the map through its JSON form: the public API has no iterator. */
static void walk(const conf_map *m)
{
    char *text = conf_to_json(m);
    json_t *root, *sec, *opt;
    const char *sname, *oname;

    if (text == NULL)
        abort();
    root = json_loads(text, 0, NULL);
    if (root == NULL)
        abort();
    json_object_foreach(root, sname, sec) {
        json_object_foreach(sec, oname, opt) {
            run_getters(m, sname, oname);
        }
    }
    json_decref(root);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    char err[CONF_ERR_MAX] = "";
    conf_map *m = conf_new();
    const char *nl = memchr(data, '\n', size);
    char *line;
    uint64_t u64;
    bool b;

    if (m == NULL)
        return 0;
    if (devnull == NULL)
        devnull = fopen("/dev/null", "w");
    (void)conf_update_from_buffer(m, "fuzz.conf", (const char *)data, size, CONF_BUF_NO_INCLUDE,
                                  err, sizeof(err));
    check_err(err);
    line = strndup((const char *)data, nl ? (size_t)(nl - (const char *)data) : size);
    if (line != NULL) {
        (void)conf_update_from_string(m, line, err, sizeof(err));
        check_err(err);
        (void)conf_parse_duration_ns(line, &u64);
        (void)conf_parse_bool(line, &b);
        (void)conf_parse_u64(line, UINT64_MAX, &u64);
        free(line);
    }
    walk(m);
    if (devnull != NULL)
        (void)conf_dump(m, devnull);
    conf_free(m);
    return 0;
}
