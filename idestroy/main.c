/*
 * idestroy [options] <iclient-conf-file> [ICLIENT.Key=value ...]
 *
 * Deletes every object of the container an iclient config points at
 * (ickpt-idestroy.md Part B). Upstream messages and exit codes are kept:
 * config load errors on stderr, every other failure on stdout, exit 1.
 * AuthPlugInPath must be present, as upstream, but names no file: Swift v1
 * auth (the iauth-swift plug-in) is built into swiftclient.
 * Options (all new in the C port):
 *   -strict       a missing container is an error (upstream's 404 failure)
 *   -container    delete the (then empty) container too
 *   -parallel N   N DELETEs at a time (1..64, default 1)
 *   -page N       names per listing request (default: the server's page)
 *   -passes N     full listings before giving up on objects that remain (20)
 *   -quiet        no progress line and no summary
 * The progress line (stderr, only on a terminal) and the summary go to
 * stderr so that stdout stays as quiet as upstream on success.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "idestroy.h"
#include "logger.h"
#include "swiftclient.h"

#define USAGE                                                                              \
  "usage: idestroy [-strict] [-container] [-parallel N] [-page N] [-passes N] [-quiet] "  \
  "<iclient-conf-file> [ICLIENT.Key=value ...]"

static int fail_auth(const char *why) {
  printf("iauth.PerformAuth(AuthPlugInPath, AuthPlugInEnvValue) failed: %s\n", why);
  return 1;
}

/* Authenticate as the iauth-swift plug-in does (swiftclient has it built
 * in: Swift v1 auth, Account replacing the token's account, the https
 * fix). Prints the failure and returns 1, or 0 with *out connected. */
static int connect_swift(const conf_map *m, const char *input, unsigned parallel,
                         swift_conn **out, swift_auth_input *in) {
  char err[CONF_ERR_MAX] = "";
  if (swift_auth_input_parse(input, in) != 0) {
    return fail_auth("AuthPlugInEnvValue is not iauth-swift JSON "
                     "({\"AuthURL\",\"AuthUser\",\"AuthKey\",\"Account\",\"Container\"})");
  }
  if (in->container == NULL || in->container[0] == '\0' || strlen(in->container) > 1024) {
    return fail_auth("AuthPlugInEnvValue names no Container (or one over 1024 bytes)");
  }
  swift_config cfg;
  swift_config_defaults(&cfg);
  if (swift_config_from_conf(m, "ICLIENT", &cfg, err, sizeof err) != 0) {
    printf("%s\n", err);
    return 1;
  }
  swift_auth_input_apply(in, &cfg);
  cfg.user_agent = "idestroy";
  if (cfg.connection_pool_size < parallel) {
    cfg.connection_pool_size = parallel;
  }
  int rc = swift_conn_create(&cfg, out);
  if (rc == -EACCES || rc == -EPERM) {
    return fail_auth(rc == -EACCES ? "authResponse.Status unexpected: 401 Unauthorized"
                                   : "authResponse.Status unexpected: 403 Forbidden");
  }
  if (rc != 0) {
    char why[512];
    snprintf(why, sizeof why, "GET %s failed: %s", in->auth_url, strerror(-rc));
    return fail_auth(why);
  }
  return 0;
}

int main(int argc, char *argv[]) {
  char msg[IDESTROY_MSG_MAX] = "";
  idestroy_opts o;
  if (idestroy_parse_args(argc, argv, &o, msg, sizeof msg) != 0) {
    fprintf(stderr, "%s\n%s\n", msg, USAGE);
    return 1;
  }
  conf_map *m = NULL;
  if (conf_load_args(o.conf_argc, o.conf_argv, &m, msg, sizeof msg) != 0) {
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  /* swiftclient logs each failed request; idestroy reports failures itself. */
  log_configure(NULL, false, false);

  char *plugin = NULL, *input = NULL;
  int status = 1;
  swift_auth_input in = {0};
  swift_conn *c = NULL;
  char display[4096];
  if (idestroy_auth_keys(m, &plugin, &input, msg, sizeof msg) != 0) {
    printf("%s\n", msg);
  } else if (connect_swift(m, input, o.parallel, &c, &in) != 0) {
    /* connect_swift printed why */
  } else if (swift_storage_url(c, display, sizeof display - 1 - strlen(in.container)) != 0) {
    printf("the storage URL of %s is too long\n", in.auth_url);
  } else {
    strcat(strcat(display, "/"), in.container);
    FILE *progress = !o.quiet && isatty(STDERR_FILENO) ? stderr : NULL;
    idestroy_result res;
    int rc = idestroy_run(c, in.container, display, &o, progress, &res, msg, sizeof msg);
    if (rc != 0) {
      printf("%s\n", msg);
    } else {
      status = 0;
      if (res.container_missing) {
        printf("%s\n", msg);
      } else if (!o.quiet) {
        fprintf(stderr,
                "idestroy: %s: deleted %llu objects (%llu already gone) in %llu passes, "
                "%.1f s, %.0f objects/s%s\n",
                display, (unsigned long long)res.deleted, (unsigned long long)res.already_gone,
                (unsigned long long)res.passes, res.seconds,
                res.seconds > 0 ? (double)(res.deleted + res.already_gone) / res.seconds : 0.0,
                res.container_deleted ? "; container deleted" : "");
      }
    }
  }
  swift_conn_destroy(c);
  swift_auth_input_free(&in);
  free(plugin);
  free(input);
  conf_free(m);
  return status;
}
