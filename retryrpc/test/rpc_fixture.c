#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "icert.h"
#include "rpc_fixture.h"

_Atomic unsigned fx_execs[FX_TOKENS];
_Atomic unsigned fx_large_calls;

static const char *msg_of(const json_t *req) {
  const char *m = json_string_value(json_object_get(req, "Message"));
  return m ? m : "";
}

static int ping(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **err) {
  *reply = json_sprintf("pong %zu bytes", strlen(msg_of(req)));
  *reply = json_pack("{s:o}", "Message", *reply);
  return 0;
}

static int ping_large(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                      char **err) {
  atomic_fetch_add(&fx_large_calls, 1);
  size_t n = 1000 * 102;
  char *s = malloc(64 + n);
  int l = sprintf(s, "pong %zu bytes", strlen(msg_of(req)));
  memset(s + l, '1', n);
  s[l + (int)n] = 0;
  *reply = json_pack("{s:s}", "Message", s);
  free(s);
  return 0;
}

static int ping_error(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                      char **err) {
  return -ENOENT;
}

static int ping_cid(void *ctx, uint64_t cid, const json_t *req, json_t **reply,
                    char **err) {
  *reply = json_pack("{s:o}", "Message",
                     json_sprintf("Client ID: %" PRIu64 " pong %zu bytes", cid,
                                  strlen(msg_of(req))));
  return 0;
}

static int exec(void *ctx, uint64_t cid, const json_t *req, json_t **reply, char **err) {
  json_int_t tok = json_integer_value(json_object_get(req, "Token"));
  json_int_t ms = json_integer_value(json_object_get(req, "SleepMs"));
  if (tok < 0 || tok >= FX_TOKENS)
    return -EINVAL;
  atomic_fetch_add(&fx_execs[tok], 1);
  if (ms > 0)
    usleep((useconds_t)ms * 1000);
  *reply = json_pack("{s:I}", "Token", tok);
  return 0;
}

static const rrpc_method methods[] = {
    {"RpcTestPing", ping, NULL},
    {"RpcTestPingLarge", ping_large, NULL},
    {"RpcTestPingWithError", ping_error, NULL},
    {"RpcTestPingWithClientID", ping_cid, NULL},
    {"Exec", exec, NULL},
};

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *b = malloc(1 << 16);
  *len = fread(b, 1, 1 << 16, f);
  fclose(f);
  return b;
}

void fx_env_init(fx_env *e, bool tls) {
  memset(e, 0, sizeof *e);
  e->tls = tls;
  if (!tls)
    return;
  snprintf(e->dir, sizeof e->dir, "/tmp/rrpc-test-XXXXXX");
  assert_non_null(mkdtemp(e->dir));
  char ca_cert[128], ca_key[128], err[256];
  snprintf(ca_cert, sizeof ca_cert, "%s/ca_cert.pem", e->dir);
  snprintf(ca_key, sizeof ca_key, "%s/ca_key.pem", e->dir);
  snprintf(e->cert, sizeof e->cert, "%s/cert.pem", e->dir);
  snprintf(e->key, sizeof e->key, "%s/key.pem", e->dir);
  icert_options o = {.alg = ICERT_ED25519, .ttl_s = 3600};
  o.subject.common_name = "RootCA";
  icert_pem ca = {0};
  assert_int_equal(icert_gen_ca(&o, ca_cert, ca_key, &ca, err, sizeof err), 0);
  const char *ips[] = {"127.0.0.1"};
  o.subject.common_name = "retryrpc test";
  o.ips = ips;
  o.nips = 1;
  assert_int_equal(icert_gen_endpoint(&o, &ca, e->cert, e->key, NULL, err, sizeof err), 0);
  icert_pem_free(&ca);
  e->ca_pem = slurp(ca_cert, &e->ca_pem_len);
}

void fx_env_free(fx_env *e) {
  if (e->tls) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
    assert_int_equal(system(cmd), 0);
  }
  free(e->ca_pem);
}

void fx_server_config(const fx_env *e, rrpc_server_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->addr = "127.0.0.1";
  cfg->deadline_io_ns = 10000000000ull;
  cfg->short_trim_ns = 100000000ull;
  cfg->long_trim_ns = 60000000000ull;
  cfg->sequential_ids = true;
  cfg->workers = 4;
  if (e->tls) {
    cfg->tls_cert_file = e->cert;
    cfg->tls_key_file = e->key;
  }
}

rrpc_server *fx_server_start(const rrpc_server_config *cfg) {
  rrpc_server *s;
  assert_int_equal(rrpc_server_create(cfg, methods, sizeof methods / sizeof methods[0], &s),
                   0);
  assert_int_equal(rrpc_server_start(s), 0);
  assert_true(rrpc_server_port(s) != 0);
  return s;
}

void fx_client_config(const fx_env *e, uint16_t port, rrpc_client_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->host = "127.0.0.1";
  cfg->port = port;
  cfg->deadline_io_ns = 10000000000ull;
  cfg->call_timeout_ns = 20000000000ull;
  cfg->retry_delay_ns = 20000000ull;
  if (e->tls) {
    cfg->ca_pem = e->ca_pem;
    cfg->ca_pem_len = e->ca_pem_len;
  }
}

rrpc_client *fx_client(const rrpc_client_config *cfg) {
  rrpc_client *c;
  assert_int_equal(rrpc_client_create(cfg, &c), 0);
  return c;
}

void fx_ping(rrpc_client *c, const char *msg) {
  json_t *req = json_pack("{s:s}", "Message", msg), *rep = NULL;
  assert_int_equal(rrpc_client_send(c, "RpcTestPing", req, &rep, NULL, 0), 0);
  char want[64];
  snprintf(want, sizeof want, "pong %zu bytes", strlen(msg));
  assert_string_equal(json_string_value(json_object_get(rep, "Message")), want);
  json_decref(req);
  json_decref(rep);
}

int fx_exec(rrpc_client *c, unsigned token, uint64_t timeout_ns) {
  json_t *req = json_pack("{s:i,s:i}", "Token", (int)token, "SleepMs", 0), *rep = NULL;
  int rc = rrpc_client_send(c, "Exec", req, &rep, NULL, timeout_ns);
  if (rc == 0)
    assert_int_equal(json_integer_value(json_object_get(rep, "Token")), token);
  json_decref(req);
  json_decref(rep);
  return rc;
}
