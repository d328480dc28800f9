/*
 * Shared fixture of the retryrpc tests: the upstream test service
 * (ping_test.go) plus an "Exec" method that counts executions per token,
 * and helpers to start servers and clients over TCP or TLS.
 */
#ifndef RRPC_FIXTURE_H
#define RRPC_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "retryrpc.h"

#define FX_TOKENS 4096

typedef struct {
  bool tls;
  char dir[64];       /* temp dir with certificates (TLS) */
  char cert[128], key[128];
  char *ca_pem;       /* the CA clients trust */
  size_t ca_pem_len;
} fx_env;

extern _Atomic unsigned fx_execs[FX_TOKENS];
extern _Atomic unsigned fx_large_calls; /* RpcTestPingLarge calls run */

/* Create the certificates when tls (CA + endpoint for IP 127.0.0.1). */
void fx_env_init(fx_env *e, bool tls);
void fx_env_free(fx_env *e);

/* Sensible test defaults: 127.0.0.1, ephemeral port, sequential IDs. */
void fx_server_config(const fx_env *e, rrpc_server_config *cfg);
rrpc_server *fx_server_start(const rrpc_server_config *cfg);
void fx_client_config(const fx_env *e, uint16_t port, rrpc_client_config *cfg);
rrpc_client *fx_client(const rrpc_client_config *cfg);

/* Calls; each asserts success and the expected reply. */
void fx_ping(rrpc_client *c, const char *msg);
/* Exec(token): returns the call's rc; on success checks the echoed token. */
int fx_exec(rrpc_client *c, unsigned token, uint64_t timeout_ns);

#endif
