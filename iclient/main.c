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
  /* Log-segment buffers (up to FileFlushTriggerSize, 10 MiB) are large
   * and freed by whichever thread was serving. glibc's dynamic mmap
   * threshold would rise to their size and serve the next ones from
   * per-thread arenas, which keep the freed memory: a 5 GiB write peaked at
   * 84 MB instead of 23 MB. A fixed threshold (setting it turns the dynamic
   * one off) keeps them in mmap, returned to the system when freed. It is
   * 4 MiB, not lower: FUSE read replies (128 KiB) and read-cache lines
   * (ReadCacheLineSize, 256 KiB to 1 MiB) come and go all the time, and
   * as fresh mappings each one paid its page faults again (a cold 1 GiB
   * read with 1 MiB lines: 1.6 s of system CPU in iclient, 0.4 s from the
   * heap; 712 -> 1,400 MB/s). */
  (void)mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
#endif
  static ic_daemon d; /* no imgr set: start connects to imgr over retryrpc */
  ut_daemon spec = {"iclient", IC_CONF_SECTION, start, stop, NULL, &d};
  return ut_daemon_main(&spec, argc, argv);
}
