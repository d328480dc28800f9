/* iclient: mounts one ProxyFS volume through FUSE (iclient.md 1.1).
 *   iclient <conf> [SECTION.Option=value ...] */
#include <stdlib.h> /* defines __GLIBC__ on glibc */
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "ic_daemon.h"

static int start(const conf_map *conf, void *ctx) { return ic_daemon_start(ctx, conf); }
static int stop(void *ctx) { return ic_daemon_stop(ctx); }

int main(int argc, char *argv[]) {
#ifdef __GLIBC__
  /* Log-segment buffers (up to FileFlushTriggerSize) and read-cache lines
   * are large and freed often, by whichever FUSE thread was serving.
   * glibc's dynamic mmap threshold then rises to their size and serves the
   * next ones from per-thread arenas, which keep the freed memory: a 5 GiB
   * write peaked at 84 MB instead of 23 MB, beyond the configured caps. A
   * fixed threshold (setting it turns the dynamic one off) keeps large
   * buffers in mmap, returned to the system when freed. */
  (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
  static ic_daemon d; /* no imgr set: start connects to imgr over retryrpc */
  ut_daemon spec = {"iclient", IC_CONF_SECTION, start, stop, NULL, &d};
  return ut_daemon_main(&spec, argc, argv);
}
