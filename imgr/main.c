/* imgr: the ProxyFS metadata server (imgr.md 1.1). */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgr.h"
#include "imgr_rpc.h"
#include "logger.h"
#include "utils.h"

typedef struct imgr_main {
  imgr_config cfg;
  bool have_cfg;
  imgr_server *srv;
  imgr_rpc *rpc;
} imgr_main;

/* The retryrpc key pair must load (imgr.md 1.3) even before the RPC
 * server, which comes with the retryrpc layer, uses it. */
static int check_key_pair(const imgr_config *c) {
  if (!c->retry_rpc_cert_file_path[0]) return 0;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  int rc = -EINVAL;
  if (ctx && SSL_CTX_use_certificate_chain_file(ctx, c->retry_rpc_cert_file_path) == 1 &&
      SSL_CTX_use_PrivateKey_file(ctx, c->retry_rpc_key_file_path, SSL_FILETYPE_PEM) == 1 &&
      SSL_CTX_check_private_key(ctx) == 1)
    rc = 0;
  else
    log_error("RetryRPCCertFilePath %s / RetryRPCKeyFilePath %s: not a usable key pair",
              c->retry_rpc_cert_file_path, c->retry_rpc_key_file_path);
  SSL_CTX_free(ctx);
  return rc;
}

static int start(const conf_map *conf, void *ctx) {
  imgr_main *m = ctx;
  char err[CONF_ERR_MAX];
  int rc = imgr_config_parse(conf, &m->cfg, err, sizeof err);
  if (rc) {
    log_error("%s", err);
    return rc;
  }
  m->have_cfg = true;
  json_t *j = imgr_config_to_json(&m->cfg);
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  log_info("config: %s", s ? s : "(unavailable)");
  free(s);
  json_decref(j);
  if ((rc = check_key_pair(&m->cfg))) return rc;
  if ((rc = imgr_server_create(&m->cfg, &m->srv))) return rc;
  imgr_rpc_options ro;
  imgr_rpc_options_defaults(&ro);
  if ((rc = imgr_rpc_options_from_conf(conf, &ro, err, sizeof err))) log_error("%s", err);
  if (rc || (rc = imgr_rpc_create(m->srv, &ro, &m->rpc)) || (rc = imgr_rpc_start(m->rpc)))
    return rc;
  return imgr_server_start_http(m->srv);
}

static int stop(void *ctx) {
  imgr_main *m = ctx;
  imgr_rpc_stop(m->rpc);
  int rc = imgr_server_destroy(m->srv);
  m->srv = NULL;
  imgr_rpc_destroy(m->rpc);
  m->rpc = NULL;
  if (m->have_cfg) imgr_config_free(&m->cfg);
  m->have_cfg = false;
  return rc;
}

int main(int argc, char *argv[]) {
  static imgr_main m;
  ut_daemon d = {"imgrpkg", "IMGR", start, stop, NULL, &m};
  return ut_daemon_main(&d, argc, argv);
}
