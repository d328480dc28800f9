/* iswift's optional directory store (StoreDirPath) and the header map type
 * shared with the data model. Not a public header. */
#ifndef PFS_ISWIFT_DISK_H
#define PFS_ISWIFT_DISK_H

#include <stddef.h>

/* Stored headers: canonical names, values in request order. */
typedef struct {
  size_t n, cap;
  char **names, **values;
} isw_hdrmap;

typedef struct isw_blob isw_blob;

void isw_hm_free(isw_hdrmap *h);
int isw_hm_add(isw_hdrmap *h, const char *name, const char *value);

/*
 * Layout under dir (names hashed with SHA-256 so any Swift name fits a file
 * name): <H(a)>/.account, <H(a)>/<H(c)>/.container, <H(a)>/<H(c)>/<H(o)>;
 * each file one record (iswift_internal.h), written to a temporary file and
 * renamed, so a crash leaves the old or the new version.
 * The save/remove functions do nothing when dir is "" and return 0 or a
 * negative errno (also logged): the in-memory state stays authoritative.
 */
/* The headers of an account (c NULL) or a container. */
int isw_disk_save_meta(const char *dir, const char *a, const char *c, const isw_hdrmap *h);
int isw_disk_save_object(const char *dir, const char *a, const char *c, const char *o,
                         const isw_hdrmap *h, const unsigned char *data, size_t len);
/* A PUT body streamed to the store as it arrives, outside iswift's lock
 * (a version 2 record, iswift_internal.h): incoming_open makes a file
 * under dir/.incoming/ holding the magic (its path in tmp, tmplen >= 4096,
 * the file open in *fd, -errno on failure); the body is appended with
 * isw_disk_append; incoming_commit appends the record's fields (name o,
 * headers h, len data bytes) and renames the file to the object's path.
 * The caller closes fd; on any failure it unlinks tmp. A load empties
 * .incoming/. */
int isw_disk_incoming_open(const char *dir, char *tmp, size_t tmplen, int *fd);
int isw_disk_append(int fd, const void *p, size_t n);
int isw_disk_incoming_commit(const char *dir, int fd, const char *tmp, const char *a,
                             const char *c, const char *o, const isw_hdrmap *h, size_t len);
/* o NULL: the container (must be empty); c NULL too: the account. */
int isw_disk_remove(const char *dir, const char *a, const char *c, const char *o);

/* Reads everything back: fn is called for each account (c, o NULL), then its
 * containers (o NULL), then their objects. Corrupt files are skipped with a
 * log line; fn's error stops the load. Creates dir if missing. An object's
 * data is in its file mapped read-only (map, map_len), which fn owns from
 * then on (munmap it when done, also on error); for the others map is
 * NULL. */
typedef int (*isw_load_fn)(void *ctx, const char *a, const char *c, const char *o,
                           const isw_hdrmap *h, const unsigned char *data, size_t len,
                           void *map, size_t map_len);
int isw_disk_load(const char *dir, isw_load_fn fn, void *ctx);

#endif
