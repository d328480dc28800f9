/*
 * idestroy: empty a volume's Swift container (ickpt-idestroy.md Part B).
 *
 *   idestroy [-strict] [-container] [-parallel N] [-page N] [-passes N] [-quiet]
 *            <iclient-conf-file> [ICLIENT.Key=value ...]
 *
 * This header exposes the pieces main.c is built from, so that they can be
 * unit-tested: option parsing, the [ICLIENT] auth keys with the original's
 * messages, and the destroy loop over a swift_conn. The iauth-swift input
 * JSON and the account rewrite of B.2 are swiftclient's
 * (swift_auth_input_parse, swift_config.account).
 * Errors are 0 or a negative errno; messages go into `msg` in the
 * original's wording where one exists.
 */
#ifndef PFS_IDESTROY_H
#define PFS_IDESTROY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct conf_map;
struct swift_conn;

#define IDESTROY_MAX_PARALLEL 64
#define IDESTROY_MSG_MAX 1024

typedef struct {
  bool strict;          /* upstream: a missing container is an error (exit 1) */
  bool container;       /* also DELETE the container at the end */
  bool quiet;           /* no progress line, no summary */
  unsigned parallel;    /* concurrent DELETEs, 1..IDESTROY_MAX_PARALLEL */
  unsigned page;        /* names per listing request; 0 = the server's default */
  unsigned passes;      /* full listings before giving up; >= 1 */
  int conf_argc;        /* argv from the conf file on */
  char **conf_argv;
} idestroy_opts;

/* Parse the leading options; the conf file and overrides follow them.
 * -EINVAL with a usage message in msg. */
int idestroy_parse_args(int argc, char **argv, idestroy_opts *o, char *msg, size_t msglen);

/*
 * The [ICLIENT] AuthPlugInPath / AuthPlugInEnvName / AuthPlugInEnvValue
 * rules of B.1. On success *path and *input are malloc'd (caller frees);
 * when AuthPlugInEnvName is set the input is that environment variable
 * (empty if unset).
 */
int idestroy_auth_keys(const struct conf_map *m, char **path, char **input, char *msg,
                       size_t msglen);

/* Counters of a run, for the summary and the tests. */
typedef struct {
  uint64_t deleted;         /* DELETE answered 2xx */
  uint64_t already_gone;    /* DELETE answered 404 (counted as success) */
  uint64_t passes;          /* full listings made */
  uint64_t total_estimate;  /* X-Container-Object-Count at start, 0 if unknown */
  bool container_missing;   /* the first listing answered 404 */
  bool container_deleted;
  double seconds;
} idestroy_result;

/*
 * Empty container (and with o->container delete it). progress (may be NULL)
 * gets a "\r"-refreshed progress line at most 5 times a second. Returns 0,
 * or a negative errno with msg set: -EACCES auth refused, -ENOENT container
 * missing with o->strict, -ENOTEMPTY objects remain after o->passes passes,
 * other errors of a listing or DELETE.
 */
int idestroy_run(struct swift_conn *c, const char *container, const char *display_url,
                 const idestroy_opts *o, FILE *progress, idestroy_result *res, char *msg,
                 size_t msglen);

#endif
