/*
 * ickpt CONF [ICKPT.Key=value ...]
 *
 * The checkpoint key-value service (ickpt-idestroy.md Part A). The shared
 * daemon skeleton loads the config, runs until SIGINT/SIGTERM and stops in
 * order; SIGHUP (after the log reopen) writes a compacting copy of the
 * database to DataBasePath/backup.mdb.
 */
#include "ickpt_service.h"
#include "utils.h"

static int start(const conf_map *conf, void *ctx) {
  return ickpt_service_start(conf, (ickpt_service **)ctx);
}

static int stop(void *ctx) {
  ickpt_service_stop(*(ickpt_service **)ctx);
  return 0;
}

static void hup(void *ctx) {
  (void)ickpt_service_backup(*(ickpt_service **)ctx);
}

int main(int argc, char *argv[]) {
  ickpt_service *svc = NULL;
  const ut_daemon d = {"ickpt", "ICKPT", start, stop, hup, &svc};
  return ut_daemon_main(&d, argc, argv);
}
