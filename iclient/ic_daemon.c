/* ic_daemon: start and stop of the iclient process (see ic_daemon.h). */
#include "ic_daemon.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ic_html.h"
#include "ic_stats.h"
#include "logger.h"

static int swift_start(ic_daemon *d, const conf_map *conf) {
  char err[CONF_ERR_MAX] = "";
  swift_config sc;
  swift_config_defaults(&sc);
  int rc = swift_config_from_conf(conf, IC_CONF_SECTION, &sc, err, sizeof(err));
  if (rc == 0) rc = swift_auth_input_from_conf(conf, IC_CONF_SECTION, &d->auth, err, sizeof(err));
  if (rc) {
    log_error("iclient: %s", err);
    return rc;
  }
  swift_auth_input_apply(&d->auth, &sc);
  sc.send_put_etag = d->cfg.swift_put_etag; /* iclient's default differs: see ic_conf.c */
  sc.user_agent = "iclient";
  rc = swift_conn_create(&sc, &d->swift);
  if (rc) {
    log_error("iclient: Swift authentication at %s failed: %d", d->auth.auth_url, rc);
    return rc;
  }
  d->store = (ic_store_swift){d->swift, d->auth.container};
  return 0;
}

/* Mount, retried while imgr is unreachable (iclient.md 10.7). */
static int imgr_mount(ic_daemon *d) {
  char token[4096];
  int rc = swift_auth_token(d->swift, token, sizeof(token));
  if (rc) return rc;
  ic_mount_req req = {d->cfg.volume_name, token};
  ic_mount_reply rep;
  uint64_t deadline = ut_now_ns() + d->cfg.mount_retry_duration_ns;
  for (;;) {
    ic_rpc_err err = {{0}};
    memset(&rep, 0, sizeof(rep));
    rc = ic_imgr_timed_ops.mount(&d->timed, &req, &rep, &err);
    bool transport = rc == -ETIMEDOUT || rc == -ECONNREFUSED || (rc == -EIO && !err.msg[0]);
    if (rc == 0 || !transport || ut_now_ns() >= deadline) {
      if (rc)
        log_error("iclient: Mount(%s) failed: %s (%d)", d->cfg.volume_name,
                  /* EAuthTokenRejected: carries the token: never log it */
                  rc == -EACCES ? "EAuthTokenRejected:" : err.msg, rc);
      break;
    }
    ut_sleep_ns(250000000);
  }
  if (rc) return rc;
  memcpy(d->mount_id, rep.mount_id, sizeof(d->mount_id));
  d->mount_id[sizeof(d->mount_id) - 1] = '\0';
  d->mounted = true;
  return 0;
}

/* A released directory's names: the kernel forgets its entries for them. */
static void on_dir_released(void *ctx, uint64_t dir, const char *name, size_t len) {
  ic_daemon *d = ctx;
  ic_fs_invalidate_entry(d->fs, dir, name, len);
}

/* imgr's RPCInterrupt upcalls (iclient.md 4.3), on retryrpc's upcall thread. */
static void on_interrupt(void *ctx, uint32_t type, uint64_t ino) {
  ic_daemon *d = ctx;
  if (type == IC_RPC_INTERRUPT_UNMOUNT) { /* the original ignored it */
    log_warn("iclient: imgr sent RPCInterrupt Unmount: mounting again");
    (void)ic_rpc_mount_lost(d->rpc); /* a failure is logged; the next call tries again */
    return;
  }
  int rc = ic_volume_lease_interrupt(d->vol, type, ino);
  /* Released: another client changes it now; the kernel must not serve
   * its cached attributes and pages until the attribute timeout. */
  if (rc == 0 && type == IC_RPC_INTERRUPT_RELEASE) ic_fs_invalidate(d->fs, ino);
  if (rc)
    log_warn("iclient: RPCInterrupt %s of inode %016llX failed: %d (imgr will repeat it)",
             type == IC_RPC_INTERRUPT_DEMOTE ? "Demote" : "Release", (unsigned long long)ino,
             rc);
}

/* imgr forgot the mount and ic_rpc mounted again: the old leases and open
 * counts are gone. */
static void on_remount(void *ctx) {
  ic_daemon *d = ctx;
  ic_volume_leases_reset(d->vol);
  pthread_mutex_lock(&d->reopen_mu);
  d->reopen_wanted = true;
  pthread_cond_signal(&d->reopen_cv);
  pthread_mutex_unlock(&d->reopen_mu);
}

static void *reopen_main(void *arg) {
  ic_daemon *d = arg;
  pthread_mutex_lock(&d->reopen_mu);
  for (;;) {
    while (!d->reopen_wanted && !d->reopen_stop) pthread_cond_wait(&d->reopen_cv, &d->reopen_mu);
    if (d->reopen_stop) break;
    d->reopen_wanted = false;
    pthread_mutex_unlock(&d->reopen_mu);
    int rc = ic_volume_reopen_all(d->vol);
    if (rc) log_error("iclient: counting the open handles again failed: %d", rc);
    pthread_mutex_lock(&d->reopen_mu);
  }
  pthread_mutex_unlock(&d->reopen_mu);
  return NULL;
}

static void reopen_stop(ic_daemon *d) {
  if (!d->reopen_inited) return;
  pthread_mutex_lock(&d->reopen_mu);
  d->reopen_stop = true;
  pthread_cond_signal(&d->reopen_cv);
  bool running = d->reopen_running;
  d->reopen_running = false;
  pthread_mutex_unlock(&d->reopen_mu);
  if (running) pthread_join(d->reopen_thread, NULL);
}

static int rpc_start(ic_daemon *d) {
  ic_rpc_params p = {
      .host = d->cfg.retry_rpc_public_ip_addr,
      .port = d->cfg.retry_rpc_port,
      .ca_cert_file = d->cfg.retry_rpc_ca_cert_file_path,
      .deadline_io_ns = d->cfg.retry_rpc_deadline_io_ns,
      .keepalive_ns = d->cfg.retry_rpc_keep_alive_period_ns,
      .renew_period_ns = d->cfg.mount_keep_alive_period_ns,
      .swift = d->swift,
  };
  int rc = ic_rpc_client_create(&p, &d->rpc);
  if (rc) {
    log_error("iclient: retryrpc client for %s:%u: %d", p.host, p.port, rc);
    return rc;
  }
  d->imgr = &ic_rpc_ops;
  d->imgr_ctx = d->rpc;
  return 0;
}

static int get_config(const ut_http_request *req, ut_http_reply *rep, void *ctx) {
  (void)req;
  ic_daemon *d = ctx;
  uint64_t t0 = ut_now_ns();
  char *json = ic_config_to_json(&d->cfg);
  if (!json) return -ENOMEM;
  int rc = ut_http_reply_bytes(rep, 200, "application/json", json, strlen(json));
  free(json);
  ic_stat_since(IC_STAT_GetConfigUsecs, t0);
  return rc;
}

static int add_lease(void *ctx, uint64_t ino, ic_lease_state s) {
  json_t *o =
      json_pack("{s:I,s:s}", "InodeNumber", (json_int_t)ino, "State", ic_lease_state_name(s));
  return o ? json_array_append_new(ctx, o) : -ENOMEM;
}

static int get_leases(const ut_http_request *req, ut_http_reply *rep, void *ctx) {
  (void)req;
  ic_daemon *d = ctx;
  uint64_t t0 = ut_now_ns();
  json_t *a = json_array();
  if (!a) return -ENOMEM;
  int rc = ic_volume_list_inodes(d->vol, add_lease, a);
  if (rc) {
    json_decref(a);
    return rc;
  }
  rc = ut_http_reply_json(rep, 200, a);
  ic_stat_since(IC_STAT_GetLeasesUsecs, t0);
  return rc;
}

typedef struct ino_list {
  uint64_t *inos;
  size_t n, cap;
} ino_list;

static int add_ino(void *ctx, uint64_t ino, ic_lease_state s) {
  ino_list *l = ctx;
  if (s == IC_LEASE_STATE_NONE) return 0;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    void *p = realloc(l->inos, cap * sizeof(*l->inos));
    if (!p) return -ENOMEM;
    l->inos = p;
    l->cap = cap;
  }
  l->inos[l->n++] = ino;
  return 0;
}

/* POST /leases/demote and /leases/release: what imgr's interrupts do, for
 * every lease held (the original only logged a TODO). */
static int post_leases(const ut_http_request *req, ut_http_reply *rep, void *ctx) {
  ic_daemon *d = ctx;
  uint64_t t0 = ut_now_ns();
  uint32_t type;
  if (strcmp(req->path, "/leases/demote") == 0)
    type = IC_RPC_INTERRUPT_DEMOTE;
  else if (strcmp(req->path, "/leases/release") == 0)
    type = IC_RPC_INTERRUPT_RELEASE;
  else
    return -ENOENT;
  ino_list l = {0};
  int rc = ic_volume_list_inodes(d->vol, add_ino, &l);
  for (size_t i = 0; rc == 0 && i < l.n; i++)
    rc = ic_volume_lease_interrupt(d->vol, type, l.inos[i]);
  free(l.inos);
  ic_stat_since(type == IC_RPC_INTERRUPT_DEMOTE ? IC_STAT_PostLeasesDemoteUsecs
                                                : IC_STAT_PostLeasesReleaseUsecs,
                t0);
  return rc ? rc : ut_http_reply_text(rep, 200, "text/plain", "%s", "");
}

typedef struct lease_tally {
  uint64_t shared, exclusive;
} lease_tally;

static int tally_lease(void *ctx, uint64_t ino, ic_lease_state s) {
  (void)ino;
  lease_tally *t = ctx;
  if (s == IC_LEASE_STATE_SHARED) t->shared++;
  if (s == IC_LEASE_STATE_EXCLUSIVE) t->exclusive++;
  return 0;
}

/* The operations the status page counts: the busiest FUSE calls and the
 * RPCs that carry a mount's traffic to imgr. */
static const ic_stat PAGE_COUNTS[] = {
    IC_STAT_DoLookupUsecs, IC_STAT_DoGetAttrUsecs, IC_STAT_DoReadUsecs,
    IC_STAT_DoWriteUsecs,  IC_STAT_DoCreateUsecs,  IC_STAT_DoMkDirUsecs,
    IC_STAT_DoUnlinkUsecs, IC_STAT_DoRenameUsecs,  IC_STAT_DoFSyncUsecs,
    IC_STAT_LeaseUsecs,    IC_STAT_FlushUsecs,     IC_STAT_PutInodeTableEntriesUsecs,
};
#define NPAGE_COUNTS (sizeof(PAGE_COUNTS) / sizeof(PAGE_COUNTS[0]))

/* GET / and /index.html: the status page, figures read now. */
static int get_index(const ut_http_request *req, ut_http_reply *rep, void *ctx) {
  if (strcmp(req->path, "") != 0 && strcmp(req->path, "/index.html") != 0) return -ENOENT;
  ic_daemon *d = ctx;
  lease_tally leases = {0, 0};
  int rc = ic_volume_list_inodes(d->vol, tally_lease, &leases);
  if (rc) return rc;
  ic_html_count counts[NPAGE_COUNTS];
  for (size_t i = 0; i < NPAGE_COUNTS; i++)
    counts[i] = (ic_html_count){ic_stat_name(PAGE_COUNTS[i]), ic_stat_count(PAGE_COUNTS[i])};
  size_t dirty_inodes;
  uint64_t dirty_bytes;
  ic_volume_dirty_stats(d->vol, &dirty_inodes, &dirty_bytes);
  ic_html_status st = {
      .volume_name = d->cfg.volume_name,
      .mount_id = d->mount_id,
      .mount_point = d->cfg.mount_point_dir_path,
      .uptime_s = (ut_now_ns() - d->started_ns) / 1000000000u,
      .inodes_cached = ic_volume_inodes_cached(d->vol),
      .leases_shared = leases.shared,
      .leases_exclusive = leases.exclusive,
      .dirty_inodes = dirty_inodes,
      .dirty_bytes = dirty_bytes,
      .counts = counts,
      .ncounts = NPAGE_COUNTS,
  };
  ic_rcache_stats_get(ic_volume_rcache(d->vol), &st.rcache);
  char *page = ic_html_status_page(&st);
  if (!page) return -ENOMEM;
  rc = ut_http_reply_bytes(rep, 200, "text/html; charset=utf-8", page, strlen(page));
  free(page);
  return rc;
}

static int timed_std(const ut_http_request *req, ut_http_reply *rep, void *ctx) {
  const ic_timed_route *r = ctx;
  uint64_t t0 = ut_now_ns();
  int rc = r->inner.handler(req, rep, r->inner.ctx);
  if (r->stat != IC_STAT_COUNT) ic_stat_since(r->stat, t0);
  return rc;
}

static int http_start(ic_daemon *d) {
  if (d->cfg.http_server_port == 0) return 0;
  ut_http_route std[4], routes[8];
  size_t n = ut_http_std_routes(NULL, std); /* /config is ours: redacted */
  for (size_t i = 0; i < n; i++) {
    ic_stat st = strcmp(std[i].prefix, "/stats") == 0     ? IC_STAT_GetStatsUsecs
                 : strcmp(std[i].prefix, "/version") == 0 ? IC_STAT_GetVersionUsecs
                                                          : IC_STAT_COUNT; /* /metrics: none */
    d->std[i] = (ic_timed_route){std[i], st};
    routes[i] = (ut_http_route){std[i].method, std[i].prefix, timed_std, &d->std[i]};
  }
  routes[n++] = (ut_http_route){"GET", "/config", get_config, d};
  routes[n++] = (ut_http_route){"GET", "/leases", get_leases, d};
  routes[n++] = (ut_http_route){"POST", "/leases/", post_leases, d};
  routes[n++] = (ut_http_route){"GET", "", get_index, d}; /* last: "" matches every path */
  /* Plain HTTP, as the original (no TLS keys among iclient's settings). */
  ut_http_config hc = {.addr = d->cfg.http_server_ip_addr,
                       .port = d->cfg.http_server_port,
                       .max_body = 4096};
  int rc = ut_http_server_start(&hc, routes, n, &d->http);
  if (rc)
    log_error("iclient: HTTP server on %s:%u failed: %d", d->cfg.http_server_ip_addr,
              d->cfg.http_server_port, rc);
  return rc;
}

int ic_daemon_start(ic_daemon *d, const conf_map *conf) {
  char err[CONF_ERR_MAX] = "";
  pthread_mutex_init(&d->reopen_mu, NULL);
  pthread_cond_init(&d->reopen_cv, NULL);
  d->reopen_inited = true;
  d->started_ns = ut_now_ns();
  int rc = ic_config_load(conf, &d->cfg, err, sizeof(err));
  if (rc) {
    log_error("iclient: %s", err);
    return rc;
  }
  char *json = ic_config_to_json(&d->cfg);
  if (json) log_info("iclient config:\n%s", json);
  free(json);
  rc = ic_stats_register();
  if (rc) {
    log_error("iclient: registering stats failed: %d", rc);
    return rc;
  }
  d->stats_registered = true;
  rc = swift_start(d, conf);
  if (rc) return rc;
  if (!d->imgr) {
    rc = rpc_start(d);
    if (rc) return rc;
  }
  d->timed = (ic_imgr_timed){d->imgr, d->imgr_ctx};
  rc = imgr_mount(d);
  if (rc) return rc;
  ic_volume_params vp = {
      .imgr = &ic_imgr_timed_ops,
      .imgr_ctx = &d->timed,
      .store = &ic_store_swift_ops,
      .store_ctx = &d->store,
      .mount_id = d->mount_id,
      .dir_max_keys = d->cfg.dir_inode_max_keys_per_bplustree_page,
      .file_max_keys = d->cfg.file_inode_max_keys_per_bplustree_page,
      .payload_evict_low = d->cfg.inode_payload_evict_low_limit,
      .payload_evict_high = d->cfg.inode_payload_evict_high_limit,
      .payload_evict_bytes = d->cfg.inode_payload_evict_bytes_limit,
      .read_cache_line_size = d->cfg.read_cache_line_size,
      .read_cache_line_count_max = d->cfg.read_cache_line_count_max,
      .read_ahead_lines = d->cfg.read_ahead_lines,
      .read_ahead_threads = d->cfg.read_ahead_threads,
      .inode_cache_limit = d->cfg.inode_cache_limit,
      .max_shared_leases = d->cfg.max_shared_leases,
      .max_exclusive_leases = d->cfg.max_exclusive_leases,
      .file_flush_trigger_size = d->cfg.file_flush_trigger_size,
      .upload_threads = d->cfg.segment_upload_threads,
      .upload_limit = d->cfg.segment_upload_limit,
      .upload_wait_ns = d->cfg.swift_timeout_ns,
      .file_flush_trigger_ns = d->cfg.file_flush_trigger_duration_ns,
  };
  rc = ic_volume_create(&vp, &d->vol);
  if (rc == 0 && d->rpc) {
    ic_rpc_set_upcall(d->rpc, on_interrupt, d);
    ic_rpc_set_remount(d->rpc, on_remount, d);
    if (d->cfg.mount_keep_alive_period_ns)
      rc = ic_rpc_keepalive_start(d->rpc, d->mount_id);
  }
  if (rc == 0) rc = http_start(d);
  if (rc) return rc;
  ic_fs_params fp = {
      .vol = d->vol,
      .imgr = &ic_imgr_timed_ops,
      .imgr_ctx = &d->timed,
      .mount_id = d->mount_id,
      .block_size = d->cfg.fuse_block_size,
      .entry_valid_ns = d->cfg.fuse_entry_valid_ns,
      .attr_valid_ns = d->cfg.fuse_attr_valid_ns,
      .max_write = d->cfg.fuse_max_write,
      .max_read = d->cfg.fuse_max_read,
      .max_threads = d->cfg.fuse_max_threads,
      .max_background = d->cfg.fuse_max_background,
      .congestion_threshold = d->cfg.fuse_congestion_threshhold,
      .allow_other = d->cfg.fuse_allow_other,
      .fsname = d->cfg.volume_name,
  };
  /* Deliveries read d->fs (invalidations): none may run while it is set. */
  if (d->rpc) ic_rpc_set_upcall(d->rpc, NULL, NULL);
  rc = ic_fs_create(&fp, &d->fs);
  if (d->rpc) ic_rpc_set_upcall(d->rpc, on_interrupt, d);
  if (rc == 0) ic_volume_set_dir_released(d->vol, on_dir_released, d);
  if (rc == 0) {
    rc = ic_fs_mount(d->fs, d->cfg.mount_point_dir_path);
    if (rc) log_error("iclient: mounting %s failed: %d", d->cfg.mount_point_dir_path, rc);
  }
  if (rc == 0) {
    pthread_mutex_lock(&d->reopen_mu);
    rc = -pthread_create(&d->reopen_thread, NULL, reopen_main, d);
    d->reopen_running = rc == 0;
    pthread_mutex_unlock(&d->reopen_mu);
  }
  return rc;
}

int ic_daemon_stop(ic_daemon *d) {
  reopen_stop(d); /* before the file system goes */
  if (d->fs) {
    ic_fs_unmount(d->fs);
    if (d->rpc) ic_rpc_set_upcall(d->rpc, NULL, NULL); /* they may use d->fs */
    if (d->vol) ic_volume_set_dir_released(d->vol, NULL, NULL);
    ic_fs_destroy(d->fs);
  }
  if (d->vol && d->mounted && ic_volume_flush_all(d->vol)) /* write-back: commit what is left */
    log_error("iclient: some changes could not be committed before unmounting");
  ut_http_server_stop(d->http);
  if (d->rpc) {
    ic_rpc_keepalive_stop(d->rpc);
    ic_rpc_set_upcall(d->rpc, NULL, NULL); /* Unmount releases every lease */
    ic_rpc_set_remount(d->rpc, NULL, NULL);
  }
  if (d->mounted) {
    ic_mount_id_req req = {d->mount_id};
    ic_rpc_err err = {{0}};
    if (ic_imgr_timed_ops.unmount(&d->timed, &req, &err))
      log_error("iclient: Unmount failed: %s", err.msg);
  }
  ic_volume_destroy(d->vol);
  ic_rpc_client_destroy(d->rpc);
  swift_conn_destroy(d->swift);
  swift_auth_input_free(&d->auth);
  ic_config_free(&d->cfg);
  if (d->stats_registered) ic_stats_unregister();
  if (d->reopen_inited) {
    pthread_cond_destroy(&d->reopen_cv);
    pthread_mutex_destroy(&d->reopen_mu);
  }
  const ic_imgr_ops *imgr = d->rpc ? NULL : d->imgr; /* the caller's, if any */
  void *ctx = d->rpc ? NULL : d->imgr_ctx;
  memset(d, 0, sizeof(*d));
  d->imgr = imgr;
  d->imgr_ctx = ctx;
  return 0;
}
