/*
 * delimiter= test vectors shared by iswift's unit test (iswift/test/
 * test_iswift.c) and the component suite (swift_component.c, which also runs
 * them against a real Swift): the objects, and for each container GET query
 * the status and plain-text body observed on Swift 2.30 (swift-aio.sh).
 *
 * The names cover a name equal to a subdir's stem ("a", "c"), an object
 * ending in the delimiter ("c/"), nested and doubled delimiters, and names
 * sorting between a subdir's members.
 */
#ifndef PFS_SWIFT_DELIMITER_VECTORS_H
#define PFS_SWIFT_DELIMITER_VECTORS_H

static const char *const delim_names[] = {"a", "a/b", "a/c/d", "a/e", "ab", "b/x",
                                          "b/y", "c", "c/", "d//e", "x-y.z", "x-y"};
#define N_DELIM_NAMES (sizeof delim_names / sizeof *delim_names)

/* The original iswift ignores delimiter= (and every parameter but marker). */
#define DELIM_ALL_NAMES "a\na/b\na/c/d\na/e\nab\nb/x\nb/y\nc\nc/\nd//e\nx-y\nx-y.z\n"

static const struct {
  const char *query;
  long status;
  const char *body; /* NULL: not compared (real Swift explains errors) */
} delim_vectors[] = {
    {"delimiter=/", 200, "a\na/\nab\nb/\nc\nc/\nd/\nx-y\nx-y.z\n"},
    {"delimiter=/&prefix=a/", 200, "a/b\na/c/\na/e\n"},
    {"delimiter=/&prefix=a", 200, "a\na/\nab\n"},
    {"delimiter=/&marker=a", 200, "a/\nab\nb/\nc\nc/\nd/\nx-y\nx-y.z\n"},
    {"delimiter=/&marker=a/", 200, "ab\nb/\nc\nc/\nd/\nx-y\nx-y.z\n"},
    {"delimiter=/&marker=a/c", 200, "a/\nab\nb/\nc\nc/\nd/\nx-y\nx-y.z\n"},
    {"delimiter=/&limit=2", 200, "a\na/\n"},
    {"delimiter=/&limit=3&marker=a/", 200, "ab\nb/\nc\n"},
    {"delimiter=/&limit=0", 204, ""},
    {"delimiter=/&end_marker=b", 200, "a\na/\nab\n"},
    {"delimiter=/&end_marker=a/c", 200, "a\na/\n"},
    {"delimiter=/&end_marker=a/", 200, "a\n"},
    {"delimiter=/&prefix=a/&marker=a/c/", 200, "a/e\n"},
    {"delimiter=/&prefix=d/", 200, "d//\n"},
    {"delimiter=/&prefix=c/", 200, "c/\n"},
    {"delimiter=/&prefix=zz", 204, ""},
    {"delimiter=/&prefix=zz&format=json", 200, "[]"},
    {"delimiter=-", 200, "a\na/b\na/c/d\na/e\nab\nb/x\nb/y\nc\nc/\nd//e\nx-\n"},
    {"delimiter=//", 200, "a\na/b\na/c/d\na/e\nab\nb/x\nb/y\nc\nc/\nd//\nx-y\nx-y.z\n"},
    {"delimiter=", 200, DELIM_ALL_NAMES},
    {"delimiter=%ff", 400, NULL},
};
#define N_DELIM_VECTORS (sizeof delim_vectors / sizeof *delim_vectors)

#endif
