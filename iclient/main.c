/* iclient: mounts one ProxyFS volume through FUSE (iclient.md 1.1).
 *   iclient <conf> [SECTION.Option=value ...] */
#include "ic_daemon.h"

static int start(const conf_map *conf, void *ctx) { return ic_daemon_start(ctx, conf); }
static int stop(void *ctx) { return ic_daemon_stop(ctx); }

int main(int argc, char *argv[]) {
  static ic_daemon d; /* no imgr RPC client yet: see ic_daemon.h */
  ut_daemon spec = {"iclient", IC_CONF_SECTION, start, stop, NULL, &d};
  return ut_daemon_main(&spec, argc, argv);
}
