/*
 * Unit tests for conf: every rule of support.md section 1, the cases of
 * upstream conf/api_test.go, and malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"

static char tmpdir[64];
static char err[CONF_ERR_MAX];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test_conf.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    err[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Path of name inside the temp dir (one of 4 rotating static buffers). */
static const char *tpath(const char *name)
{
    static char bufs[4][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 4];

    snprintf(b, PATH_MAX, "%s/%s", tmpdir, name);
    return b;
}

static const char *write_bytes(const char *name, const char *data, size_t len)
{
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return p;
}

static const char *write_file(const char *name, const char *text)
{
    return write_bytes(name, text, strlen(text));
}

/* Load text as a file into a fresh map; returns the rc, map in *out. */
static int load_text(const char *text, conf_map **out)
{
    const char *p = write_file("t.conf", text);

    *out = conf_new();
    assert_non_null(*out);
    err[0] = '\0';
    return conf_update_from_file(*out, p, err, sizeof(err));
}

/* The values of [s]o joined with '|' ("" for an empty list). */
static const char *joined(const conf_map *m, const char *s, const char *o)
{
    static char buf[1024];
    const char *const *v;
    size_t n, used = 0;

    assert_int_equal(conf_get_list(m, s, o, &v, &n, err, sizeof(err)), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "|" : "", v[i]);
    return buf;
}

static void assert_err_contains(const char *want)
{
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

/* --- upstream api_test.go ---------------------------------------------- */

static void test_upstream_update(void **state)
{
    conf_map *m = conf_new();
    const char *f1 = write_file("f1", "# A comment on it's own line\n"
                                      "[TestNamespace:Test_-_Section]\n"
                                      "Test_-_Option : TestValue1,TestValue2 # A comment at the "
                                      "end of a line\n");
    const char *f2 = write_file("f2", "; A comment on it's own line\n"
                                      "[TestNamespace:Test_-_Section] ; A comment at the end of a "
                                      "line\n"
                                      "Test_-_Option =\n");
    const char *f3 = write_file("f3", "[TestNamespace:Test_-_Section]\n"
                                      "Test_-_Option = http://Test.Value.3/ TestValue4$\tTestValue5$\n");
    const char *S = "TestNamespace:Test_-_Section";
    (void)state;

    assert_int_equal(conf_update_from_file(m, f1, err, sizeof(err)), 0);
    assert_string_equal(joined(m, S, "Test_-_Option"), "TestValue1|TestValue2");
    assert_int_equal(conf_update_from_file(m, f2, err, sizeof(err)), 0);
    assert_string_equal(joined(m, S, "Test_-_Option"), "");
    assert_int_equal(conf_update_from_file(m, f3, err, sizeof(err)), 0);
    assert_string_equal(joined(m, S, "Test_-_Option"),
                        "http://Test.Value.3/|TestValue4$|TestValue5$");
    assert_int_equal(conf_update_from_string(m,
                                             "TestNamespace:Test_-_Section.Test_-_Option = "
                                             "TestValue6,http://Test.Value_-_7/",
                                             err, sizeof(err)),
                     0);
    assert_string_equal(joined(m, S, "Test_-_Option"), "TestValue6|http://Test.Value_-_7/");
    assert_int_equal(conf_update_from_string(m,
                                             "TestNamespace:Test_-_Section.Test_-_Option = "
                                             "TestValue8$,http://Test.Value_-_9/$",
                                             err, sizeof(err)),
                     0);
    assert_string_equal(joined(m, S, "Test_-_Option"), "TestValue8$|http://Test.Value_-_9/$");
    assert_int_equal(conf_update_from_string(m, "TestNamespace:Test_-_Section.Test_-_Option =",
                                             err, sizeof(err)),
                     0);
    assert_string_equal(joined(m, S, "Test_-_Option"), "");
    assert_true(conf_is_missing_or_empty(m, S, "Test_-_Option"));
    conf_free(m);
}

static void test_upstream_nonexistent(void **state)
{
    conf_map *m = conf_new();
    (void)state;

    assert_int_equal(conf_update_from_file(m, "/does/not/exist", err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "open /does/not/exist: no such file or directory");
    conf_free(m);
}

static void test_upstream_fetch(void **state)
{
    static const char *const strings[] = {
        "TestNamespace:Test_-_Section.Test_-_OptionStringSlice1=",
        "TestNamespace:Test_-_Section.Test_-_OptionStringSlice2=TestString1,TestString2",
        "TestNamespace:Test_-_Section.Test_-_OptionString=TestString3",
        "TestNamespace:Test_-_Section.Test_-_OptionBool=true",
        "TestNamespace:Test_-_Section.Test_-_OptionUint8=91",
        "TestNamespace:Test_-_Section.Test_-_OptionUint16=12",
        "TestNamespace:Test_-_Section.Test_-_OptionUint32=345",
        "TestNamespace:Test_-_Section.Test_-_OptionUint64=6789",
        "TestNamespace:Test_-_Section.Test_-_OptionMilliseconds32=0.123",
        "TestNamespace:Test_-_Section.Test_-_OptionMilliseconds64=0.456",
        "TestNamespace:Test_-_Section.Test_-_OptionDuration=1.2s",
        "TestNamespace:Test_-_Section.Test_-_OptionGUIDString=12345678-1234-1234-1234-123456789ABC",
    };
    static const uint8_t guid[16] = {0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x12, 0x34,
                                     0x12, 0x34, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC};
    const char *S = "TestNamespace:Test_-_Section";
    conf_map *m = conf_new();
    const char *str;
    bool b;
    uint8_t u8, uuid[16];
    uint16_t u16;
    uint32_t u32;
    uint64_t u64, ns;
    double d;
    (void)state;

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        assert_int_equal(conf_update_from_string(m, strings[i], err, sizeof(err)), 0);

    assert_false(conf_has_option(m, S, "Test_-_OptionStringSlice0"));
    assert_true(conf_is_missing_or_empty(m, S, "Test_-_OptionStringSlice0"));
    assert_true(conf_has_option(m, S, "Test_-_OptionStringSlice1"));
    assert_true(conf_is_missing_or_empty(m, S, "Test_-_OptionStringSlice1"));
    assert_false(conf_is_missing_or_empty(m, S, "Test_-_OptionStringSlice2"));

    assert_string_equal(joined(m, S, "Test_-_OptionStringSlice1"), "");
    assert_string_equal(joined(m, S, "Test_-_OptionStringSlice2"), "TestString1|TestString2");
    assert_int_equal(conf_get_string(m, S, "Test_-_OptionString", &str, err, sizeof(err)), 0);
    assert_string_equal(str, "TestString3");
    assert_int_equal(conf_get_bool(m, S, "Test_-_OptionBool", &b, err, sizeof(err)), 0);
    assert_true(b);
    assert_int_equal(conf_get_u8(m, S, "Test_-_OptionUint8", &u8, err, sizeof(err)), 0);
    assert_int_equal(u8, 91);
    assert_int_equal(conf_get_u16(m, S, "Test_-_OptionUint16", &u16, err, sizeof(err)), 0);
    assert_int_equal(u16, 12);
    assert_int_equal(conf_get_u32(m, S, "Test_-_OptionUint32", &u32, err, sizeof(err)), 0);
    assert_int_equal(u32, 345);
    assert_int_equal(conf_get_u64(m, S, "Test_-_OptionUint64", &u64, err, sizeof(err)), 0);
    assert_int_equal(u64, 6789);
    assert_int_equal(conf_get_double(m, S, "Test_-_OptionMilliseconds64", &d, err, sizeof(err)),
                     0);
    assert_true(d == 0.456);
    assert_int_equal(conf_get_float_scaled_u32(m, S, "Test_-_OptionMilliseconds32", 1000, &u32,
                                               err, sizeof(err)),
                     0);
    assert_int_equal(u32, 123);
    assert_int_equal(conf_get_float_scaled_u64(m, S, "Test_-_OptionMilliseconds64", 1000, &u64,
                                               err, sizeof(err)),
                     0);
    assert_int_equal(u64, 456);
    assert_int_equal(conf_get_duration_ns(m, S, "Test_-_OptionDuration", &ns, err, sizeof(err)),
                     0);
    assert_int_equal(ns, 1200000000);
    assert_int_equal(conf_get_uuid(m, S, "Test_-_OptionGUIDString", uuid, err, sizeof(err)), 0);
    assert_memory_equal(uuid, guid, 16);
    conf_free(m);
}

static void test_upstream_include(void **state)
{
    conf_map *m = conf_new();
    const char *f5;
    (void)state;

    write_file("f4", "");
    f5 = write_file("f5", ".include ./f4\n");
    assert_int_equal(conf_update_from_file(m, f5, err, sizeof(err)), 0);
    conf_free(m);
}

static const char file6[] = "[TestNamespace:Test_-_Section_-_1]\n"
                            "Option_-_1_-_No_-_Values  :\n"
                            "Option_-_2_-_One_-_Value  : Value_-_1\n"
                            "Option_-_3_-_Two_-_Values : Value_-_1, Value_-_2\n"
                            "\n"
                            "[TestNamespace:Test_-_Section_-_2]\n"
                            "Option : Value\n";

/* conf_dump output of m, malloc'd. */
static char *dump_text(const conf_map *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(conf_dump(m, f), 0);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static void test_upstream_dump(void **state)
{
    conf_map *m6, *m7 = conf_new();
    char *d6, *d7;
    (void)state;

    assert_int_equal(load_text(file6, &m6), 0);
    d6 = dump_text(m6);
    assert_string_equal(d6, "[TestNamespace:Test_-_Section_-_1]\n"
                            "Option_-_1_-_No_-_Values: \n"
                            "Option_-_2_-_One_-_Value:  Value_-_1\n"
                            "Option_-_3_-_Two_-_Values: Value_-_1, Value_-_2\n"
                            "\n"
                            "[TestNamespace:Test_-_Section_-_2]\n"
                            "Option: Value\n");
    /* The dump reads back to the same map. */
    assert_int_equal(conf_update_from_file(m7, write_file("f7", d6), err, sizeof(err)), 0);
    d7 = dump_text(m7);
    assert_string_equal(d6, d7);
    free(d6);
    free(d7);
    conf_free(m6);
    conf_free(m7);
}

/* --- file syntax -------------------------------------------------------- */

/* Files that load, and the values (joined by '|') some options must get. */
static void test_option_lines(void **state)
{
    static const struct {
        const char *text;
        struct {
            const char *option, *want;
        } expect[6];
    } cases[] = {
        /* Comments anywhere, blank lines, spaces and tabs trimmed. */
        {"  ; comment\n"
         "\t# comment\n"
         "\n"
         " \t \n"
         "\t[S]\t; x\n"
         "\tA = x # y ; z\n"
         "B = p;q#r\n"
         "C = u#v;w\n"
         "D : ; nothing\n",
         {{"A", "x"}, {"B", "p"}, {"C", "u"}, {"D", ""}}},
        /* The name ends at the first assignment, even where the grammar
         * matched a later one ("Baz:b = c" gives values b, =, c). */
        {"[S]\n"
         "Foo: http://x/\n"
         "Bar=b=c\n"
         "Baz:b = c\n"
         "Opt$ = v$\n"
         "Sp  :  \t v\n",
         {{"Foo", "http://x/"}, {"Bar", "b=c"}, {"Baz", "b|=|c"}, {"Opt$", "v$"}, {"Sp", "v"}}},
        /* Go's leftmost-first split: a blank run before a comma is a
         * separator of its own, so the original yields an empty value. */
        {"[S]\n"
         "A = x y,z\n"
         "B = x\t \ty ,\tz\n"
         "C = x , y\n"
         "D = \"{a}\" [b] +c\\d *e\n",
         {{"A", "x|y|z"}, {"B", "x|y||z"}, {"C", "x||y"}, {"D", "\"{a}\"|[b]|+c\\d|*e"}}},
        /* Escapes for space and comma, in values only. */
        {"[S]\n"
         "A = a\\u0020b a\\U0020b\n"
         "B = 1\\u002C2 1\\U002C2 1\\u002c2 1\\U002c2\n"
         "C = \\u0021 \\x0020 \\u002\n"
         "PlugInEnvValue:           {\"AuthURL\":\"http://swift:8080/auth/"
         "v1.0\"\\u002C\"AuthUser\":\"test:tester\"}\n",
         {{"A", "a b|a b"},
          {"B", "1,2|1,2|1,2|1,2"},
          {"C", "\\u0021|\\x0020|\\u002"},
          {"PlugInEnvValue",
           "{\"AuthURL\":\"http://swift:8080/auth/v1.0\",\"AuthUser\":\"test:tester\"}"}}},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conf_map *m;

        assert_int_equal(load_text(cases[i].text, &m), 0);
        for (size_t j = 0; j < 6 && cases[i].expect[j].option; j++)
            assert_string_equal(joined(m, "S", cases[i].expect[j].option),
                                cases[i].expect[j].want);
        conf_free(m);
    }
}

/* The sample configurations shipped as fuzz seeds load and type-check. */
static void test_sample_configs(void **state)
{
    const char *src = getenv("PFS_SOURCE_DIR");
    char p[PATH_MAX + 64], here[PATH_MAX];
    conf_map *m = conf_new();
    const char *s;
    uint16_t port;
    uint64_t ns;
    bool b;
    (void)state;

    if (src == NULL) {
        /* Run outside ctest: the source tree is three levels above this file. */
        char *cut;

        snprintf(here, sizeof(here), "%s", __FILE__);
        cut = strstr(here, "/conf/test/test_conf.c");
        assert_non_null(cut);
        *cut = '\0';
        src = here;
    }
    snprintf(p, sizeof(p), "%s/tests/fuzz/corpus/conf/imgr.conf", src);
    assert_int_equal(conf_update_from_file(m, p, err, sizeof(err)), 0);
    snprintf(p, sizeof(p), "%s/tests/fuzz/corpus/conf/iclient.conf", src);
    assert_int_equal(conf_update_from_file(m, p, err, sizeof(err)), 0);
    assert_int_equal(conf_get_u16(m, "IMGR", "RetryRPCPort", &port, err, sizeof(err)), 0);
    assert_int_equal(port, 32356);
    assert_int_equal(conf_get_duration_ns(m, "IMGR", "MinLeaseDuration", &ns, err, sizeof(err)),
                     0);
    assert_int_equal(ns, 250000000);
    assert_int_equal(conf_get_bool(m, "IMGR", "LogToConsole", &b, err, sizeof(err)), 0);
    assert_true(b);
    assert_true(conf_is_missing_or_empty(m, "IMGR", "LogFilePath"));
    assert_true(conf_is_missing_or_empty(m, "ICLIENT", "RetryRPCCACertFilePath"));
    assert_int_equal(conf_get_string(m, "ICLIENT", "AuthPlugInEnvValue", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "{\"AuthURL\":\"http://swift:8080/auth/v1.0\",\"AuthUser\":\"test:"
                           "tester\",\"AuthKey\":\"testing\",\"Account\":\"AUTH_test\","
                           "\"Container\":\"con\"}");
    conf_free(m);
}

/* The in-memory entry point the fuzz target uses. */
static void test_buffer_entry(void **state)
{
    static const char text[] = "[S]\nA = 1\n.include x.conf\n";
    conf_map *m = conf_new();
    (void)state;

    assert_int_equal(conf_update_from_buffer(m, "mem", text, sizeof(text) - 1,
                                             CONF_BUF_NO_INCLUDE, err, sizeof(err)),
                     -EPERM);
    assert_string_equal(err, "file mem line 3: .include is not allowed here");
    assert_string_equal(joined(m, "S", "A"), "1");
    conf_free(m);
}

static void test_sections(void **state)
{
    conf_map *m;
    (void)state;

    assert_int_equal(load_text("[A]\n"
                               "X = 1\n"
                               "[B]\n"
                               "Y = 2\n"
                               "[A]\n"
                               "Z = 3\n"
                               "X = 4 5\n"
                               "[a]b]\n"
                               "W = 6\n"
                               "[x*y]\n"
                               "V = 7\n"
                               "[Dollar$]\n"
                               "U = 8\n",
                               &m),
                     0);
    assert_string_equal(joined(m, "A", "X"), "4|5");
    assert_string_equal(joined(m, "A", "Z"), "3");
    assert_string_equal(joined(m, "B", "Y"), "2");
    /* The name is the first run of section-name characters. */
    assert_string_equal(joined(m, "a", "W"), "6");
    assert_string_equal(joined(m, "x", "V"), "7");
    assert_string_equal(joined(m, "Dollar", "U"), "8");
    assert_true(conf_has_section(m, "A"));
    assert_false(conf_has_section(m, "C"));
    assert_false(conf_has_section(m, "a]b"));
    conf_free(m);

    /* A header with no name characters leaves no section current. */
    assert_int_equal(load_text("[*]\nA = 1\n", &m), -EINVAL);
    assert_err_contains("did not start with a Section Name (line 2)");
    conf_free(m);
}

/* Each malformed file and a piece of the error it must give. */
static void test_malformed(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"A = 1\n", "did not start with a Section Name (line 1)"},
        {"[abc\nA = 1\n", "did not start with a Section Name (line 1)"},
        {"[S]\n[abc\n", "malformed line '[abc' (line 2)"},
        {"[S]\nabc]\n", "malformed line 'abc]' (line 2)"},
        {"[S]\n[a b]\n", "malformed line '[a b]' (line 2)"},
        {"[S]\nA = x@y\n", "malformed line 'A = x@y' (line 2)"},
        {"[S]\nA = x,\n", "malformed line 'A = x,' (line 2)"},
        {"[S]\nA = ,x\n", "malformed line 'A = ,x' (line 2)"},
        {"[S]\nno assignment\n", "malformed line 'no assignment' (line 2)"},
        {"[S]\n= x\n", "malformed line '= x' (line 2)"},
        {"[S]\nA$$ = x\n", "malformed line 'A$$ = x' (line 2)"},
        {"[S]\nA = x$y\n", "malformed line 'A = x$y' (line 2)"},
        {"[S]\na = b\r\n", "malformed line 'a = b\\x0d' (line 2)"},
        {"[S]\n.include\n", "malformed line '.include' (line 2)"},
        {"[S]\n.includex y\n", "malformed line '.includex y' (line 2)"},
        {"[S]\nA = 1\nB = 2", "did not end in a '\\n' character"},
        {"[S]\nA = 1\n[T", "did not end in a '\\n' character"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conf_map *m;

        assert_int_equal(load_text(cases[i].text, &m), -EINVAL);
        assert_err_contains(cases[i].want);
        assert_err_contains("file /tmp/test_conf.");
        conf_free(m);
    }
}

static void test_empty_file(void **state)
{
    conf_map *m;
    char *json;
    (void)state;

    assert_int_equal(load_text("", &m), 0);
    json = conf_to_json(m);
    assert_string_equal(json, "{}");
    free(json);
    conf_free(m);
}

static void test_utf8(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *want; /* NULL: accepted */
    } cases[] = {
#define BYTES(lit) lit, sizeof(lit) - 1
        {BYTES("[S]\nA = 1 # caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n"), NULL},
        {BYTES("[S]\n\xff\n"), "contained invalid UTF-8 at byte 4 (line 2)"},
        {BYTES("[S]\n#\xc0\xaf\n"), "contained invalid UTF-8 at byte 5"},         /* overlong */
        {BYTES("[S]\n#\xed\xa0\x80\n"), "contained invalid UTF-8 at byte 5"},     /* surrogate */
        {BYTES("[S]\n#\xf4\x90\x80\x80\n"), "contained invalid UTF-8 at byte 5"}, /* > U+10FFFF */
        {BYTES("[S]\n#\xe2\x82\n"), "contained invalid UTF-8 at byte 5"},         /* truncated */
        {BYTES("[S]\n#\xef\xbf\xbd\n"), "contained invalid UTF-8 at byte 5"},     /* U+FFFD */
        {BYTES("#\xe2\x82"), "contained invalid UTF-8 at byte 1 (line 1)"},
#undef BYTES
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conf_map *m = conf_new();
        const char *p = write_bytes("u.conf", cases[i].bytes, cases[i].len);
        int rc = conf_update_from_file(m, p, err, sizeof(err));

        if (cases[i].want == NULL) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_err_contains(cases[i].want);
        }
        conf_free(m);
    }
}

static void test_binary_garbage(void **state)
{
    static const char garbage[] = "[S]\nA = \x01\x02\x00\x7f\n";
    static const char in_comment[] = "[S]\nA = 1 ; \x01\x00\x7f\n";
    conf_map *m = conf_new();
    (void)state;

    assert_int_equal(conf_update_from_file(m, write_bytes("g", garbage, sizeof(garbage) - 1), err,
                                           sizeof(err)),
                     -EINVAL);
    assert_err_contains("malformed line 'A = \\x01\\x02\\x00\\x7f' (line 2)");
    /* Control bytes in a comment are ignored, as upstream. */
    assert_int_equal(conf_update_from_file(m, write_bytes("h", in_comment, sizeof(in_comment) - 1),
                                           err, sizeof(err)),
                     0);
    assert_string_equal(joined(m, "S", "A"), "1");
    conf_free(m);
}

static void test_long_lines(void **state)
{
    size_t n = 70000;
    char *text = malloc(n + 16);
    conf_map *m;
    (void)state;

    assert_non_null(text);
    /* Exactly the limit is fine. */
    memcpy(text, "[S]\n#", 5);
    memset(text + 5, 'x', 65535);
    strcpy(text + 5 + 65535, "\nA = 1\n");
    assert_int_equal(load_text(text, &m), 0);
    assert_string_equal(joined(m, "S", "A"), "1");
    conf_free(m);

    memcpy(text, "[S]\nA = ", 8);
    memset(text + 8, 'v', n);
    strcpy(text + 8 + n, "\n");
    assert_int_equal(load_text(text, &m), -EINVAL);
    assert_err_contains("line 2 is longer than 65536 bytes");
    assert_true(strlen(err) < CONF_ERR_MAX - 1);
    conf_free(m);

    /* No newline at all: still the line-length error, not a crash. */
    text[8 + n] = '\0';
    assert_int_equal(load_text(text, &m), -EINVAL);
    assert_err_contains("line 2 is longer than 65536 bytes");
    conf_free(m);
    free(text);
}

static void test_directory_and_stdin(void **state)
{
    conf_map *m = conf_new();
    int saved, fd;
    (void)state;

    assert_int_equal(conf_update_from_file(m, tmpdir, err, sizeof(err)), -EISDIR);
    assert_err_contains("read /tmp/test_conf.");
    assert_err_contains(": is a directory");

    fd = open(write_file("in.conf", "[S]\nA = from-stdin\n"), O_RDONLY);
    assert_true(fd >= 0);
    saved = dup(STDIN_FILENO);
    assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
    assert_int_equal(conf_update_from_file(m, "-", err, sizeof(err)), 0);
    assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
    close(saved);
    close(fd);
    assert_string_equal(joined(m, "S", "A"), "from-stdin");
    conf_free(m);
}

/* --- .include ----------------------------------------------------------- */

static void test_include(void **state)
{
    conf_map *m = conf_new();
    char text[PATH_MAX + 64];
    const char *main_conf;
    (void)state;

    assert_int_equal(mkdir(tpath("sub"), 0700), 0);
    assert_int_equal(mkdir(tpath("sub/deeper"), 0700), 0);
    write_file("sub/inc.conf", "[Inc]\nA = 1\n.include deeper/more.conf\n");
    write_file("sub/deeper/more.conf", "[More]\nB = 2\n");
    snprintf(text, sizeof(text),
             "[Main]\nM = 0\n.include sub/inc.conf\n[Main]\nN = 1\n.include %s\n[Main]\nO = 2\n",
             tpath("abs.conf"));
    write_file("abs.conf", "[Abs]\nC = 3\n");
    main_conf = write_file("main.conf", text);
    assert_int_equal(conf_update_from_file(m, main_conf, err, sizeof(err)), 0);
    assert_string_equal(joined(m, "Inc", "A"), "1");
    assert_string_equal(joined(m, "More", "B"), "2");
    assert_string_equal(joined(m, "Abs", "C"), "3");
    assert_string_equal(joined(m, "Main", "N"), "1");
    assert_string_equal(joined(m, "Main", "O"), "2");

    /* After an include no section is current, even if it was empty. */
    write_file("empty.conf", "");
    assert_int_equal(conf_update_from_file(m, write_file("r.conf", "[S]\n.include empty.conf\nA = 1\n"),
                                           err, sizeof(err)),
                     -EINVAL);
    assert_err_contains("r.conf did not start with a Section Name (line 3)");

    /* A missing include names the resolved path. */
    assert_int_equal(conf_update_from_file(m, write_file("x.conf", ".include nope.conf\n"), err,
                                           sizeof(err)),
                     -ENOENT);
    assert_err_contains("open /tmp/test_conf.");
    assert_err_contains("/nope.conf: no such file or directory");
    conf_free(m);
}

static void test_include_relative_to_cwd(void **state)
{
    char cwd[PATH_MAX];
    conf_map *m = conf_new();
    (void)state;

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    write_file("c1.conf", ".include c2.conf\n");
    write_file("c2.conf", "[C]\nA = 1\n");
    assert_int_equal(conf_update_from_file(m, "c1.conf", err, sizeof(err)), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(joined(m, "C", "A"), "1");
    conf_free(m);
}

static void test_include_cycle(void **state)
{
    conf_map *m = conf_new();
    (void)state;

    write_file("a.conf", "[A]\nX = 1\n.include b.conf\n");
    write_file("b.conf", ".include a.conf\n");
    assert_int_equal(conf_update_from_file(m, tpath("a.conf"), err, sizeof(err)), -ELOOP);
    assert_err_contains("b.conf line 1: .include ");
    assert_err_contains("forms an include cycle");

    write_file("self.conf", "\n.include self.conf\n");
    assert_int_equal(conf_update_from_file(m, tpath("self.conf"), err, sizeof(err)), -ELOOP);
    assert_err_contains("self.conf line 2: .include ");
    conf_free(m);
}

static void test_include_depth(void **state)
{
    char name[32], text[64];
    conf_map *m = conf_new();
    (void)state;

    /* d0 includes d1 ... includes d17: 17 levels of nesting. */
    for (int i = 0; i <= 17; i++) {
        snprintf(name, sizeof(name), "d%d.conf", i);
        if (i < 17)
            snprintf(text, sizeof(text), ".include d%d.conf\n", i + 1);
        else
            snprintf(text, sizeof(text), "[Deep]\nA = 1\n");
        write_file(name, text);
    }
    assert_int_equal(conf_update_from_file(m, tpath("d1.conf"), err, sizeof(err)), 0);
    assert_string_equal(joined(m, "Deep", "A"), "1");
    assert_int_equal(conf_update_from_file(m, tpath("d0.conf"), err, sizeof(err)), -ELOOP);
    assert_err_contains("d16.conf line 1: .include nested deeper than 16");
    conf_free(m);
}

/* --- overrides and argument vectors ------------------------------------- */

static void test_update_from_string(void **state)
{
    static const struct {
        const char *s, *want_err; /* NULL: accepted */
    } bad[] = {
        {"", "trimmed confString: \"\" was found to be empty"},
        {" \t ", "trimmed confString: \" \\x09 \" was found to be empty"},
        {"S.O", "malformed confString: \"S.O\""},
        {"SO=1", "malformed confString: \"SO=1\""},
        {".O=1", "malformed confString: \".O=1\""},
        {"S.=1", "malformed confString: \"S.=1\""},
        {"S.O=a b,", "malformed confString: \"S.O=a b,\""},
        {"S.O=a@b", "malformed confString: \"S.O=a@b\""},
        {"S.O=caf\xc3\xa9", "malformed confString: \"S.O=caf\xc3\xa9\""},
    };
    conf_map *m = conf_new();
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(conf_update_from_string(m, bad[i].s, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, bad[i].want_err);
    }
    assert_int_equal(conf_update_from_string(m, "  IMGR.RetryRPCPort=32357\t", err, sizeof(err)),
                     0);
    assert_string_equal(joined(m, "IMGR", "RetryRPCPort"), "32357");
    assert_int_equal(conf_update_from_string(m, "a.b.c : x y,z", err, sizeof(err)), 0);
    assert_string_equal(joined(m, "a", "b.c"), "x|y|z");
    assert_int_equal(conf_update_from_string(m, "S.O=", err, sizeof(err)), 0);
    assert_true(conf_has_option(m, "S", "O"));
    assert_true(conf_is_missing_or_empty(m, "S", "O"));
    assert_int_equal(conf_update_from_string(m, "S.O=a\\u0020b\\u002Cc", err, sizeof(err)), 0);
    assert_string_equal(joined(m, "S", "O"), "a b,c");
    assert_int_equal(conf_update_from_string(m, "S$.O$=v$", err, sizeof(err)), 0);
    assert_string_equal(joined(m, "S$", "O$"), "v$");
    conf_free(m);
}

static void test_load_args(void **state)
{
    char *argv[4];
    conf_map *m = (conf_map *)1;
    const char *path = write_file("args.conf", "[IMGR]\nPort = 1\n");
    (void)state;

    assert_int_equal(conf_load_args(0, argv, &m, err, sizeof(err)), -EINVAL);
    assert_null(m);
    assert_string_equal(err, "no .conf file specified");

    argv[0] = (char *)"/does/not/exist";
    assert_int_equal(conf_load_args(1, argv, &m, err, sizeof(err)), -ENOENT);
    assert_null(m);
    assert_string_equal(err,
                        "failed to load config: open /does/not/exist: no such file or directory");

    argv[0] = (char *)path;
    argv[1] = (char *)"IMGR.Port=2";
    argv[2] = (char *)"bad";
    assert_int_equal(conf_load_args(3, argv, &m, err, sizeof(err)), -EINVAL);
    assert_null(m);
    assert_string_equal(err, "failed to apply config overrides: malformed confString: \"bad\"");

    argv[2] = (char *)"IMGR.Other=x y";
    assert_int_equal(conf_load_args(3, argv, &m, err, sizeof(err)), 0);
    assert_non_null(m);
    assert_string_equal(joined(m, "IMGR", "Port"), "2");
    assert_string_equal(joined(m, "IMGR", "Other"), "x|y");
    conf_free(m);
}

/* --- getters ------------------------------------------------------------ */

static conf_map *one_value(const char *v)
{
    conf_map *m = conf_new();
    const char *vals[1] = {v};

    assert_non_null(m);
    assert_int_equal(conf_set(m, "S", "O", vals, 1), 0);
    return m;
}

static void test_missing_and_single(void **state)
{
    conf_map *m = conf_new();
    const char *const *list;
    const char *two[2] = {"a", "b"}, *s;
    size_t n;
    uint64_t u;
    (void)state;

    assert_int_equal(conf_get_list(m, "S", "O", &list, &n, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "[S] missing");
    assert_int_equal(conf_set(m, "S", "Other", NULL, 0), 0);
    assert_int_equal(conf_get_u64(m, "S", "O", &u, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "[S]O missing");
    assert_int_equal(conf_get_string(m, "S", "Other", &s, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "[S]Other must be single-valued");
    assert_int_equal(conf_set(m, "S", "Two", two, 2), 0);
    assert_int_equal(conf_get_string(m, "S", "Two", &s, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "[S]Two must be single-valued");
    assert_int_equal(conf_get_list(m, "S", "Two", &list, &n, NULL, 0), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[1], "b");
    conf_free(m);
}

static void test_bool(void **state)
{
    static const struct {
        const char *v;
        int rc;
        bool want;
    } cases[] = {
        {"yes", 0, true},   {"on", 0, true},       {"true", 0, true},  {"TRUE", 0, true},
        {"Yes", 0, true},   {"no", 0, false},      {"off", 0, false},  {"false", 0, false},
        {"OFF", 0, false},  {"1", -EINVAL, false}, {"", -EINVAL, false}, {"tru", -EINVAL, false},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conf_map *m = one_value(cases[i].v);
        bool b = !cases[i].want;

        assert_int_equal(conf_get_bool(m, "S", "O", &b, err, sizeof(err)), cases[i].rc);
        if (cases[i].rc == 0)
            assert_int_equal(b, cases[i].want);
        conf_free(m);
    }
    {
        conf_map *m = one_value("1");
        bool b;

        assert_int_equal(conf_get_bool(m, "S", "O", &b, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Couldn't interpret \"1\" as boolean (expected one of "
                                 "'true'/'false'/'yes'/'no'/'on'/'off')");
        conf_free(m);
    }
}

/* Fetch v with the getter for bits (8/16/32/64). */
static int get_bits(const char *v, int bits, uint64_t *out)
{
    conf_map *m = one_value(v);
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    int rc;

    switch (bits) {
    case 8:
        rc = conf_get_u8(m, "S", "O", &u8, err, sizeof(err));
        *out = u8;
        break;
    case 16:
        rc = conf_get_u16(m, "S", "O", &u16, err, sizeof(err));
        *out = u16;
        break;
    case 32:
        rc = conf_get_u32(m, "S", "O", &u32, err, sizeof(err));
        *out = u32;
        break;
    default:
        rc = conf_get_u64(m, "S", "O", out, err, sizeof(err));
        break;
    }
    conf_free(m);
    return rc;
}

static void test_uints(void **state)
{
    static const struct {
        const char *v;
        int bits, rc;
        uint64_t want;
    } cases[] = {
        {"91", 8, 0, 91},
        {"0", 8, 0, 0},
        {"255", 8, 0, 255},
        {"00255", 8, 0, 255},
        {"256", 8, -ERANGE, 0},
        {"65535", 16, 0, 65535},
        {"65536", 16, -ERANGE, 0},
        {"4294967295", 32, 0, 4294967295u},
        {"4294967296", 32, -ERANGE, 0},
        {"18446744073709551615", 64, 0, UINT64_MAX},
        {"18446744073709551616", 64, -ERANGE, 0},
        {"99999999999999999999999", 64, -ERANGE, 0},
        {"999a", 8, -ERANGE, 0}, /* Go reports the overflow it meets first */
        {"12a", 8, -EINVAL, 0},
        {"-1", 64, -EINVAL, 0},
        {"+1", 64, -EINVAL, 0},
        {"0x10", 64, -EINVAL, 0},
        {"1k", 64, -EINVAL, 0},
        {"1_000", 64, -EINVAL, 0},
        {" 1", 64, -EINVAL, 0},
        {"", 64, -EINVAL, 0},
    };
    uint64_t v;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = get_bits(cases[i].v, cases[i].bits, &v);

        if (rc != cases[i].rc)
            fail_msg("\"%s\" as u%d: rc %d, want %d", cases[i].v, cases[i].bits, rc,
                     cases[i].rc);
        if (rc == 0)
            assert_int_equal(v, cases[i].want);
    }
    assert_int_equal(get_bits("256", 8, &v), -ERANGE);
    assert_string_equal(err, "[S]O strconv.ParseUint() error: strconv.ParseUint: parsing "
                             "\"256\": value out of range");
    assert_int_equal(get_bits("1k", 32, &v), -EINVAL);
    assert_string_equal(err, "[S]O strconv.ParseUint() error: strconv.ParseUint: parsing "
                             "\"1k\": invalid syntax");
    assert_int_equal(conf_parse_u64("1000", 999, &v), -ERANGE);
    assert_int_equal(conf_parse_u64("999", 999, &v), 0);
    assert_int_equal(v, 999);
}

static void test_double(void **state)
{
    static const struct {
        const char *v;
        int rc;
        double want;
    } cases[] = {
        {"0.123", 0, 0.123}, {"1e3", 0, 1000},     {"-2.5E-1", 0, -0.25}, {".5", 0, 0.5},
        {"5.", 0, 5},        {"0x1p-2", 0, 0.25},  {"0X1.8P1", 0, 3},     {"+7", 0, 7},
        {"1e-400", 0, 0},    {"1e400", -ERANGE, 0}, {"-1e400", -ERANGE, 0}, {"abc", -EINVAL, 0},
        {".", -EINVAL, 0},   {"1e", -EINVAL, 0},   {"1.2.3", -EINVAL, 0}, {"0x1", -EINVAL, 0},
        {"1_0", -EINVAL, 0}, {"", -EINVAL, 0},     {"infin", -EINVAL, 0}, {"+nan", -EINVAL, 0},
        {"1 ", -EINVAL, 0},
    };
    double d;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conf_map *m = one_value(cases[i].v);
        int rc = conf_get_double(m, "S", "O", &d, err, sizeof(err));

        if (rc != cases[i].rc)
            fail_msg("\"%s\": rc %d, want %d (%s)", cases[i].v, rc, cases[i].rc, err);
        if (rc == 0 && d != cases[i].want)
            fail_msg("\"%s\": %g, want %g", cases[i].v, d, cases[i].want);
        conf_free(m);
    }
    {
        conf_map *m = one_value("Infinity");

        assert_int_equal(conf_get_double(m, "S", "O", &d, err, sizeof(err)), 0);
        assert_true(isinf(d) && d > 0);
        conf_free(m);
        m = one_value("NaN");
        assert_int_equal(conf_get_double(m, "S", "O", &d, err, sizeof(err)), 0);
        assert_true(isnan(d));
        conf_free(m);
        m = one_value("-inf");
        assert_int_equal(conf_get_double(m, "S", "O", &d, err, sizeof(err)), 0);
        assert_true(isinf(d) && d < 0);
        conf_free(m);
        m = one_value("x1");
        assert_int_equal(conf_get_double(m, "S", "O", &d, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "[S]O strconv.ParseFloat() error: strconv.ParseFloat: "
                                 "parsing \"x1\": invalid syntax");
        conf_free(m);
    }
}

static void test_float_scaled(void **state)
{
    static const struct {
        const char *v;
        double mult;
        int rc32, rc64;
        uint64_t want;
        const char *err32;
    } cases[] = {
        {"0.123", 1000, 0, 0, 123, NULL},
        {"0.0005", 1000, 0, 0, 1, NULL}, /* rounds half up */
        {"0.00049", 1000, 0, 0, 0, NULL},
        {"4294967294.4", 1, 0, 0, 4294967294u, NULL},
        {"4294967294.5", 1, -ERANGE, 0, 4294967295u, "[S]O after scaling won't fit in uint32"},
        {"5e9", 1, -ERANGE, 0, 5000000000u, NULL},
        {"2e19", 1, -ERANGE, -ERANGE, 0, NULL},
        {"-1", 1000, -EINVAL, -EINVAL, 0, "[S]O is negative"},
        {"NaN", 1, -ERANGE, -ERANGE, 0, NULL},
        {"inf", 1, -ERANGE, -ERANGE, 0, NULL},
        {"abc", 1, -EINVAL, -EINVAL, 0, NULL},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conf_map *m = one_value(cases[i].v);
        uint32_t u32 = 7;
        uint64_t u64 = 7;
        int rc;

        rc = conf_get_float_scaled_u32(m, "S", "O", cases[i].mult, &u32, err, sizeof(err));
        if (rc != cases[i].rc32)
            fail_msg("\"%s\" u32: rc %d want %d", cases[i].v, rc, cases[i].rc32);
        if (rc == 0)
            assert_int_equal(u32, cases[i].want);
        if (cases[i].err32)
            assert_string_equal(err, cases[i].err32);
        rc = conf_get_float_scaled_u64(m, "S", "O", cases[i].mult, &u64, err, sizeof(err));
        if (rc != cases[i].rc64)
            fail_msg("\"%s\" u64: rc %d want %d", cases[i].v, rc, cases[i].rc64);
        if (rc == 0)
            assert_int_equal(u64, cases[i].want);
        conf_free(m);
    }
}

static void test_duration(void **state)
{
    static const struct {
        const char *v;
        int rc;
        uint64_t want;
        const char *err; /* exact getter message, or NULL */
    } cases[] = {
        {"0", 0, 0, NULL},
        {"+0", 0, 0, NULL},
        {"-0", 0, 0, NULL},
        {"0s", 0, 0, NULL},
        {"10s", 0, 10000000000u, NULL},
        {"250ms", 0, 250000000, NULL},
        {"1m30s", 0, 90000000000u, NULL},
        {"1.5h", 0, 5400000000000u, NULL},
        {"1.2s", 0, 1200000000, NULL},
        {"1h30m", 0, 5400000000000u, NULL},
        {"100ns", 0, 100, NULL},
        {"100us", 0, 100000, NULL},
        {"100\xc2\xb5s", 0, 100000, NULL},
        {"100\xce\xbcs", 0, 100000, NULL},
        {".5s", 0, 500000000, NULL},
        {"5.s", 0, 5000000000u, NULL},
        {"+5s", 0, 5000000000u, NULL},
        {"1.000000001s", 0, 1000000001, NULL},
        {"0.1234567890123456789012345s", 0, 123456789, NULL},
        {"9223372036854775807ns", 0, INT64_MAX, NULL},
        {"2562047h47m16.854775807s", 0, INT64_MAX, NULL},
        {"10", -EINVAL, 0, "time: missing unit in duration \"10\""},
        {"1x", -EINVAL, 0, "time: unknown unit \"x\" in duration \"1x\""},
        {"1.5sec", -EINVAL, 0, "time: unknown unit \"sec\" in duration \"1.5sec\""},
        {"-1s", -EINVAL, 0, "[S]O is negative"},
        {"99999999999h", -EINVAL, 0, "time: invalid duration \"99999999999h\""},
        {"9223372036854775808ns", -EINVAL, 0, "time: invalid duration \"9223372036854775808ns\""},
        {"2562048h", -EINVAL, 0, NULL},
        {"", -EINVAL, 0, "time: invalid duration \"\""},
        {"-", -EINVAL, 0, "time: invalid duration \"-\""},
        {".", -EINVAL, 0, "time: invalid duration \".\""},
        {"s", -EINVAL, 0, "time: invalid duration \"s\""},
        {"1s 2s", -EINVAL, 0, "time: unknown unit \"s \" in duration \"1s 2s\""},
        {"1.s.", -EINVAL, 0, "time: invalid duration \"1.s.\""},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conf_map *m = one_value(cases[i].v);
        uint64_t ns = 7, ns2 = 7;
        int rc = conf_get_duration_ns(m, "S", "O", &ns, err, sizeof(err));

        if (rc != cases[i].rc)
            fail_msg("\"%s\": rc %d want %d (%s)", cases[i].v, rc, cases[i].rc, err);
        if (rc == 0 && ns != cases[i].want)
            fail_msg("\"%s\": %llu want %llu", cases[i].v, (unsigned long long)ns,
                     (unsigned long long)cases[i].want);
        if (cases[i].err)
            assert_string_equal(err, cases[i].err);
        /* The standalone parser agrees, negatives included. */
        assert_int_equal(conf_parse_duration_ns(cases[i].v, &ns2), cases[i].rc);
        if (rc == 0)
            assert_int_equal(ns2, ns);
        conf_free(m);
    }
}

static void test_uuid(void **state)
{
    static const struct {
        const char *v, *err;
    } bad[] = {
        {"12345678-1234-1234-1234-123456789AB",
         "[S]O UUID string (\"12345678-1234-1234-1234-123456789AB\") has invalid length (35)"},
        {"12345678x1234-1234-1234-123456789ABC",
         "[S]O UUID string (\"12345678x1234-1234-1234-123456789ABC\") has missing '-' separators"},
        {"1234567G-1234-1234-1234-123456789ABC", "[S]O time_low (\"1234567G\") invalid"},
        {"12345678-12 4-1234-1234-123456789ABC", "[S]O time_mid (\"12 4\") invalid"},
        {"12345678-1234-+234-1234-123456789ABC", "[S]O time_hi_and_version (\"+234\") invalid"},
        {"12345678-1234-1234-x234-123456789ABC", "[S]O clk_seq_hi_res (\"x2\") invalid"},
        {"12345678-1234-1234-12-4-123456789ABC", "[S]O clk_seq_low (\"-4\") invalid"},
        {"12345678-1234-1234-1234-123456789ABZ", "[S]O node (\"123456789ABZ\") invalid"},
    };
    static const uint8_t want[16] = {0x0a, 0xbc, 0xde, 0xf0, 0xab, 0xcd, 0xef, 0xef,
                                     0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    uint8_t u[16];
    conf_map *m;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = one_value(bad[i].v);
        assert_int_equal(conf_get_uuid(m, "S", "O", u, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, bad[i].err);
        conf_free(m);
    }
    m = one_value("0abcdef0-ABCD-efef-0123-456789abcDEF");
    assert_int_equal(conf_get_uuid(m, "S", "O", u, err, sizeof(err)), 0);
    assert_memory_equal(u, want, 16);
    conf_free(m);
}

/* --- set, dump, JSON, messages ------------------------------------------ */

static void test_set(void **state)
{
    conf_map *m = conf_new();
    const char *a[2] = {"1", "2"}, *b[1] = {"9"};
    (void)state;

    assert_int_equal(conf_set(m, "S", "O", NULL, 1), -EINVAL);
    assert_int_equal(conf_set(m, "S", "O", a, 2), 0);
    assert_int_equal(conf_set_if_missing(m, "S", "O", b, 1), 0);
    assert_string_equal(joined(m, "S", "O"), "1|2");
    assert_int_equal(conf_set_if_missing(m, "S", "P", b, 1), 0);
    assert_string_equal(joined(m, "S", "P"), "9");
    assert_int_equal(conf_set_if_missing(m, "New", "E", NULL, 0), 0);
    assert_true(conf_has_section(m, "New"));
    assert_true(conf_is_missing_or_empty(m, "New", "E"));
    assert_int_equal(conf_set(m, "S", "O", b, 1), 0);
    assert_string_equal(joined(m, "S", "O"), "9");
    /* Many sections and options stay sorted and findable. */
    for (int i = 99; i >= 0; i--) {
        char s[16], o[16];

        snprintf(s, sizeof(s), "S%02d", i);
        snprintf(o, sizeof(o), "O%02d", i % 7);
        assert_int_equal(conf_set(m, s, o, b, 1), 0);
    }
    for (int i = 0; i < 100; i++) {
        char s[16], o[16];

        snprintf(s, sizeof(s), "S%02d", i);
        snprintf(o, sizeof(o), "O%02d", i % 7);
        assert_true(conf_has_option(m, s, o));
    }
    assert_false(conf_has_option(NULL, "S", "O"));
    assert_true(conf_is_missing_or_empty(NULL, "S", "O"));
    conf_free(m);
    conf_free(NULL);
}

static void test_dump_and_json(void **state)
{
    conf_map *m;
    char *d, *j;
    (void)state;

    assert_int_equal(load_text("[b]\n"
                               "zz = 1\n"
                               "a = x y\n"
                               "long_name:\n"
                               "[a]\n"
                               "k = \"q\"\\u0020r\n",
                               &m),
                     0);
    d = dump_text(m);
    assert_string_equal(d, "[a]\n"
                           "k: \"q\" r\n"
                           "\n"
                           "[b]\n"
                           "a:         x, y\n"
                           "long_name:\n"
                           "zz:        1\n");
    j = conf_to_json(m);
    assert_string_equal(j, "{\"a\":{\"k\":[\"\\\"q\\\" r\"]},\"b\":{\"a\":[\"x\",\"y\"],"
                           "\"long_name\":[],\"zz\":[\"1\"]}}");
    free(d);
    free(j);
    conf_free(m);
}

static void test_message_bounds(void **state)
{
    char big[4000], small[16];
    conf_map *m = conf_new();
    uint64_t v;
    const char *vals[1] = {big};
    (void)state;

    memset(big, 'n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(conf_set(m, big, big, vals, 1), 0);
    assert_int_equal(conf_get_u64(m, big, big, &v, err, sizeof(err)), -EINVAL);
    assert_true(strlen(err) < CONF_ERR_MAX - 1);
    assert_err_contains("...");
    assert_err_contains("\": invalid syntax");
    assert_int_equal(conf_get_u64(m, big, big, &v, small, sizeof(small)), -EINVAL);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(conf_get_u64(m, big, big, &v, NULL, 0), -EINVAL);
    conf_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upstream_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_nonexistent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_include, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_dump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sample_configs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_and_stdin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_relative_to_cwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_from_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_double, setup, teardown),
        cmocka_unit_test_setup_teardown(test_float_scaled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uuid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_and_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_bounds, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
