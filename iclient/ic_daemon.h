/*
 * ic_daemon: iclient's start and stop (iclient.md 2.1, 2.3), used by main.c
 * through ut_daemon_main.
 *
 * Start: [ICLIENT] config (logged as JSON, secrets redacted); the stats
 * group ("ICLIENT", ""); Swift auth v1
 * (built into swiftclient; AuthPlugInPath is ignored); Mount at imgr, retried
 * for MountRetryDuration while imgr answers with a transport error; the
 * volume (inode cache, read cache, payload node cache); the HTTP server
 * (HTTPServerPort 0 = none): / and /index.html (the status page, ic_html.h),
 * /stats, /metrics, /version, /config (redacted),
 * /leases, POST /leases/demote and /leases/release (demote or release
 * every lease held, flushing first); the FUSE mount (a stale mount point is
 * detached first).
 * Stop: FUSE unmount (lazy), HTTP server, Unmount at imgr (an error is only
 * logged), then everything is freed.
 *
 * imgr is reached through d->imgr/d->imgr_ctx when the caller sets them
 * before ic_daemon_start (tests: an in-process double); left NULL, start
 * creates the retryrpc client (ic_rpc.h) from the RetryRPC* keys, delivers
 * imgr's upcalls to ic_volume_lease_interrupt once the volume exists,
 * resets the volume's leases when the client mounts again after imgr
 * forgot the mount (ic_rpc.h, ic_volume_leases_reset) and counts the open
 * handles again (ic_fs_reopen_all), invalidates the kernel's copy of
 * what a released lease covered (ic_fs_invalidate, _entry), and
 * keeps the mount alive with RenewMount every MountKeepAlivePeriod. Stop detaches
 * the upcalls and the keep-alive before Unmount and destroys the client
 * after it.
 */
#ifndef PFS_IC_DAEMON_H
#define PFS_IC_DAEMON_H

#include "ic_conf.h"
#include "ic_fuse.h"
#include "ic_imgr.h"
#include "ic_internal.h"
#include "ic_rpc.h"
#include "ic_stats.h"
#include "swiftclient.h"
#include "utils.h"

/* A standard route with its duration recorded. */
typedef struct ic_timed_route {
  ut_http_route inner;
  ic_stat stat;
} ic_timed_route;

typedef struct ic_daemon {
  const ic_imgr_ops *imgr; /* set by the caller */
  void *imgr_ctx;
  ic_rpc_client *rpc; /* ours when the caller set no imgr */
  ic_imgr_timed timed; /* what the rest uses: imgr with RPC durations */
  bool stats_registered;
  ic_timed_route std[4];
  ic_config cfg;
  swift_auth_input auth;
  swift_conn *swift;
  ic_store_swift store;
  char mount_id[IC_MOUNT_ID_MAX];
  bool mounted; /* at imgr */
  ic_volume *vol;
  ic_fs *fs;
  ut_http_server *http;
  uint64_t started_ns; /* ut_now_ns() at start, for the status page's uptime */
  /* After a remount, a thread of its own counts the open handles again
   * (ic_fs_reopen_all takes inode locks; the remount may run under one). */
  pthread_mutex_t reopen_mu;
  pthread_cond_t reopen_cv;
  bool reopen_inited, reopen_running, reopen_wanted, reopen_stop;
  pthread_t reopen_thread;
} ic_daemon;

int ic_daemon_start(ic_daemon *d, const conf_map *conf);
/* Safe after a failed start (stops what was started). */
int ic_daemon_stop(ic_daemon *d);

#endif
