/* iswift executable: iswift CONF [ISWIFT.Key=value ...] (iswift.md 1),
 * run by the shared daemon skeleton (SIGINT/SIGTERM stop). */
#include <errno.h>
#include <stdio.h>

#include "iswift.h"
#include "logger.h"
#include "utils.h"

typedef struct {
  iswift *s;
} daemon_ctx;

static int start(const conf_map *conf, void *ctx) {
  daemon_ctx *d = ctx;
  iswift_config cfg;
  char err[CONF_ERR_MAX];
  int rc = iswift_config_from_conf(conf, &cfg, err, sizeof err);
  if (rc) {
    log_error("iswift: %s", err);
    return rc;
  }
  rc = iswift_start(&cfg, &d->s);
  if (!rc)
    log_info("iswift: serving http://%s:%u%s%s", cfg.addr, (unsigned)iswift_port(d->s),
             cfg.emulate_real_swift ? " (EmulateRealSwift)" : "",
             cfg.store_dir[0] ? " (directory store)" : "");
  return rc;
}

static int stop(void *ctx) {
  daemon_ctx *d = ctx;
  iswift_stop(d->s);
  d->s = NULL;
  return 0;
}

int main(int argc, char *argv[]) {
  daemon_ctx d = {0};
  ut_daemon dm = {.name = "iswift", .section = "ISWIFT", .start = start, .stop = stop,
                  .ctx = &d};
  return ut_daemon_main(&dm, argc, argv);
}
