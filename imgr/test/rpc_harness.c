/* In-process harness for the imgr RPC tests and benchmark (rpc_harness.h). */
#include "rpc_harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "ilayout.h"
#include "swiftclient.h"

#define CONTAINER "testContainer"

static const char *const base_conf[] = {
    "IMGR.PublicIPAddr=127.0.0.1",
    "IMGR.PrivateIPAddr=127.0.0.1",
    "IMGR.RetryRPCPort=0",
    "IMGR.HTTPServerPort=0",
    "IMGR.RetryRPCTTLCompleted=10m",
    "IMGR.RetryRPCAckTrim=100ms",
    "IMGR.RetryRPCDeadlineIO=60s",
    "IMGR.RetryRPCKeepAlivePeriod=60s",
    "IMGR.RetryRPCCertFilePath=",
    "IMGR.RetryRPCKeyFilePath=",
    "IMGR.CheckPointInterval=10s",
    "IMGR.AuthTokenCheckInterval=1m",
    "IMGR.FetchNonceRangeToReturn=100",
    "IMGR.MountLimit=10000",
    "IMGR.OpenFileLimit=100000",
    "IMGR.MinLeaseDuration=100ms",
    "IMGR.LeaseInterruptInterval=100ms",
    "IMGR.LeaseInterruptLimit=5",
    "IMGR.LeaseEvictLowLimit=100000",
    "IMGR.LeaseEvictHighLimit=100010",
    "IMGR.SwiftRetryDelay=10ms",
    "IMGR.SwiftRetryExpBackoff=2",
    "IMGR.SwiftRetryLimit=2",
    "IMGR.SwiftTimeout=10s",
    "IMGR.SwiftConnectionPoolSize=16",
    "IMGR.ParallelObjectDeletePerVolumeLimit=10",
    "IMGR.InodeTableCacheEvictLowLimit=10000",
    "IMGR.InodeTableCacheEvictHighLimit=10010",
    "IMGR.InodeTableMaxInodesPerBPlusTreePage=2048",
    "IMGR.RootDirMaxDirEntriesPerBPlusTreePage=1024",
    "IMGR.LogFilePath=",
    "IMGR.LogToConsole=false",
    "IMGR.TraceEnabled=false",
    "IMGR.RetryRPCLogEnabled=false",
    NULL,
};

static swift_conn *user_conn(hx *h) {
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/auth/v1.0", (unsigned)iswift_port(h->sw));
  swift_config sc;
  swift_config_defaults(&sc);
  sc.auth_url = url;
  sc.auth_user = "test:tester";
  sc.auth_key = "testing";
  sc.retry_limit = 1;
  swift_conn *c = NULL;
  return swift_conn_create(&sc, &c) ? NULL : c;
}

int hx_auth(hx *h, char *token, size_t len) {
  swift_conn *c = user_conn(h);
  if (!c) return -EIO;
  int rc = swift_reauth(c);
  if (!rc) rc = swift_auth_token(c, token, len);
  swift_conn_destroy(c);
  return rc;
}

static int start_imgr(hx *h) {
  int rc = imgr_server_create(&h->cfg, &h->srv);
  if (rc) return rc;
  if ((rc = imgr_volume_serve(h->srv, "testVolume", h->storage_url, NULL))) return rc;
  if ((rc = imgr_rpc_create(h->srv, &h->opt, &h->rpc))) return rc;
  if ((rc = imgr_rpc_start(h->rpc))) return rc;
  h->port = imgr_rpc_port(h->rpc);
  return 0;
}

int hx_start(hx *h, const char *const *overrides, const imgr_rpc_options *opt, uint16_t port) {
  memset(h, 0, sizeof *h);
  iswift_config ic;
  iswift_config_defaults(&ic);
  ic.port = 0;
  int rc = iswift_start(&ic, &h->sw);
  if (rc) return rc;
  swift_conn *c = user_conn(h);
  if (!c) return -EIO;
  char acct[400];
  rc = swift_reauth(c);
  if (!rc) rc = swift_auth_token(c, h->token, sizeof h->token);
  if (!rc) rc = swift_storage_url(c, acct, sizeof acct);
  if (!rc) rc = swift_account_put(c, NULL, 0);
  if (!rc) rc = swift_container_put(c, CONTAINER, NULL, 0);
  swift_conn_destroy(c);
  if (rc) return rc;
  snprintf(h->storage_url, sizeof h->storage_url, "%s/%s", acct, CONTAINER);
  h->conf = conf_new();
  if (!h->conf) return -ENOMEM;
  char err[CONF_ERR_MAX];
  for (const char *const *p = base_conf; *p; p++)
    if ((rc = conf_update_from_string(h->conf, *p, err, sizeof err))) return rc;
  for (const char *const *p = overrides; p && *p; p++)
    if ((rc = conf_update_from_string(h->conf, *p, err, sizeof err))) return rc;
  char portkv[64];
  snprintf(portkv, sizeof portkv, "IMGR.RetryRPCPort=%u", (unsigned)port);
  if ((rc = conf_update_from_string(h->conf, portkv, err, sizeof err))) return rc;
  if ((rc = imgr_config_parse(h->conf, &h->cfg, err, sizeof err))) {
    fprintf(stderr, "config: %s\n", err);
    conf_free(h->conf);
    h->conf = NULL;
    return rc;
  }
  if (opt) {
    h->opt = *opt;
  } else {
    imgr_rpc_options_defaults(&h->opt);
    h->opt.lease_stats_group = NULL;
    h->opt.rpc_stats_group = NULL;
  }
  if ((rc = imgr_server_create(&h->cfg, &h->srv))) return rc;
  if ((rc = imgr_format(h->srv, h->storage_url, h->token, false))) return rc;
  imgr_server_destroy(h->srv);
  h->srv = NULL;
  return start_imgr(h);
}

void hx_stop_imgr(hx *h) {
  imgr_rpc_stop(h->rpc);
  imgr_server_destroy(h->srv);
  imgr_rpc_destroy(h->rpc);
  h->rpc = NULL;
  h->srv = NULL;
}

int hx_restart_imgr(hx *h) {
  /* the same port, so that clients reconnect to the new process */
  char portkv[64];
  char err[CONF_ERR_MAX];
  snprintf(portkv, sizeof portkv, "IMGR.RetryRPCPort=%u", (unsigned)h->port);
  imgr_config_free(&h->cfg);
  int rc = conf_update_from_string(h->conf, portkv, err, sizeof err);
  if (!rc) rc = imgr_config_parse(h->conf, &h->cfg, err, sizeof err);
  return rc ? rc : start_imgr(h);
}

void hx_stop(hx *h) {
  if (h->srv || h->rpc) hx_stop_imgr(h);
  if (h->conf) imgr_config_free(&h->cfg);
  conf_free(h->conf);
  h->conf = NULL;
  iswift_stop(h->sw);
  h->sw = NULL;
}

static void on_upcall(void *ctx, const void *payload, size_t len) {
  hx_client *cl = ctx;
  json_t *j = json_loadb(payload, len, 0, NULL);
  pthread_mutex_lock(&cl->mu);
  if (j && cl->nup < HX_MAX_UPCALLS) {
    cl->up[cl->nup].type = (uint32_t)json_integer_value(json_object_get(j, "RPCInterruptType"));
    cl->up[cl->nup].inode = (uint64_t)json_integer_value(json_object_get(j, "InodeNumber"));
    cl->nup++;
    pthread_cond_broadcast(&cl->cond);
  }
  pthread_mutex_unlock(&cl->mu);
  json_decref(j);
}

int hx_client_open(hx *h, hx_client *cl) {
  memset(cl, 0, sizeof *cl);
  pthread_mutex_init(&cl->mu, NULL);
  pthread_cond_init(&cl->cond, NULL);
  rrpc_client_config cc = {0};
  cc.host = "127.0.0.1";
  cc.port = h->port;
  if (h->ca_pem) {
    cc.ca_pem = h->ca_pem;
    cc.ca_pem_len = strlen(h->ca_pem);
  }
  cc.upcall = on_upcall;
  cc.upcall_ctx = cl;
  cc.retry_limit = 3;
  cc.retry_delay_ns = 20000000;
  return rrpc_client_create(&cc, &cl->c);
}

void hx_client_close(hx_client *cl) {
  rrpc_client_destroy(cl->c);
  pthread_mutex_destroy(&cl->mu);
  pthread_cond_destroy(&cl->cond);
}

int hx_call(hx_client *cl, const char *method, json_t *req, json_t **reply, char **err) {
  if (err) *err = NULL;
  int rc = rrpc_client_send(cl->c, method, req, reply, err, 10ULL * 1000000000ULL);
  json_decref(req);
  return rc;
}

int hx_mount(hx *h, hx_client *cl, const char *token, char **err) {
  json_t *rep = NULL;
  int rc = hx_call(cl, "Mount",
                   json_pack("{s:s,s:s}", "VolumeName", "testVolume", "AuthToken",
                             token ? token : h->token),
                   &rep, err);
  if (!rc) {
    const char *id = json_string_value(json_object_get(rep, "MountID"));
    snprintf(cl->mount_id, sizeof cl->mount_id, "%s", id ? id : "");
  }
  json_decref(rep);
  return rc;
}

int hx_lease(hx_client *cl, uint64_t inode, uint32_t type, char **err) {
  json_t *rep = NULL;
  int rc = hx_call(cl, "Lease",
                   json_pack("{s:s,s:I,s:i}", "MountID", cl->mount_id, "InodeNumber",
                             (json_int_t)inode, "LeaseRequestType", (int)type),
                   &rep, err);
  if (!rc) rc = (int)json_integer_value(json_object_get(rep, "LeaseResponseType"));
  json_decref(rep);
  return rc;
}

bool hx_wait_upcall(hx_client *cl, size_t idx, uint32_t *type, uint64_t *inode,
                    unsigned timeout_ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += timeout_ms / 1000;
  ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&cl->mu);
  int w = 0;
  while (cl->nup <= idx && w == 0) w = pthread_cond_timedwait(&cl->cond, &cl->mu, &ts);
  bool ok = cl->nup > idx;
  if (ok) {
    if (type) *type = cl->up[idx].type;
    if (inode) *inode = cl->up[idx].inode;
  }
  pthread_mutex_unlock(&cl->mu);
  return ok;
}

size_t hx_upcalls(hx_client *cl) {
  pthread_mutex_lock(&cl->mu);
  size_t n = cl->nup;
  pthread_mutex_unlock(&cl->mu);
  return n;
}

int hx_put_inode_object(hx *h, uint64_t ino, uint64_t obj, uint64_t *head_len) {
  uint8_t buf[1024];
  ilayout_layout_entry_v1 lay = {obj, 0, 0};
  ilayout_inode_head_v1 hd = {0};
  hd.inode_number = ino;
  hd.inode_type = ILAYOUT_INODE_TYPE_FILE;
  hd.mode = 0644;
  hd.layout_len = 1;
  hd.layout = &lay;
  /* The head lists its own object; its length is known after encoding, and
   * the two counters are fixed-width, so encode twice. */
  ilayout_wcursor w;
  for (int pass = 0; pass < 2; pass++) {
    ilayout_wcursor_init(&w, buf, sizeof buf);
    int rc = ilayout_inode_head_v1_encode(&hd, &w);
    if (rc) return rc;
    lay.bytes_written = lay.bytes_referenced = ilayout_wcursor_pos(&w);
  }
  *head_len = ilayout_wcursor_pos(&w);
  swift_conn *c = user_conn(h);
  if (!c) return -EIO;
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(obj, name);
  int rc = swift_object_put(c, CONTAINER, name, buf, *head_len, NULL, 0);
  swift_conn_destroy(c);
  return rc;
}

int hx_object_head(hx *h, uint64_t obj) {
  swift_conn *c = user_conn(h);
  if (!c) return -EIO;
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(obj, name);
  int rc = swift_object_head(c, CONTAINER, name, NULL, NULL);
  swift_conn_destroy(c);
  return rc;
}
