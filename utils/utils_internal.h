/*
 * utils internals shared between the utils sources and their unit tests.
 * Not part of the public interface.
 */
#ifndef PFS_UTILS_INTERNAL_H
#define PFS_UTILS_INTERNAL_H

#include "utils.h"

/* Length of path[0..len) once trailing '/' characters are removed
 * ("/volume/" -> "/volume", "/" -> ""). */
size_t uti_http_trim_len(const char *path, size_t len);

/*
 * Route lookup, the server's dispatch rule: the first route whose method
 * equals `method` (or is NULL) and whose prefix starts `path` wins and its
 * index is returned. -EOPNOTSUPP (405) when no route accepts the method at
 * all, -ENOENT (404) when some route accepts the method but none matches
 * the path.
 */
int uti_http_route_lookup(const ut_http_route *routes, size_t nroutes,
                          const char *method, const char *path);

/* Free what a reply owns and reset it to the defaults (200, empty). */
void uti_http_reply_reset(ut_http_reply *rep);

/* Replace rep's body with the malloc'd body (ownership passes; NULL when
 * len is 0) and set status and content type. */
void uti_http_reply_take(ut_http_reply *rep, int status, const char *content_type,
                         char *body, size_t len);

#endif
