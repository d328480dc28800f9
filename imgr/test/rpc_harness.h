/*
 * In-process harness for the imgr RPC tests and benchmark: iswift on an
 * ephemeral 127.0.0.1 port, a formatted and served volume "testVolume", the
 * imgr core and RPC layer (ephemeral retryrpc port), and retryrpc test
 * clients that queue their upcalls.
 */
#ifndef PFS_IMGR_RPC_HARNESS_H
#define PFS_IMGR_RPC_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "imgr.h"
#include "imgr_rpc.h"
#include "iswift.h"
#include "retryrpc.h"

#define HX_MAX_UPCALLS 256

typedef struct hx_client {
  rrpc_client *c;
  char mount_id[64];
  pthread_mutex_t mu;
  pthread_cond_t cond;
  struct {
    uint32_t type;
    uint64_t inode;
  } up[HX_MAX_UPCALLS];
  size_t nup;           /* received so far */
} hx_client;

typedef struct hx {
  iswift *sw;
  char storage_url[512]; /* <account>/testContainer */
  char token[256];
  conf_map *conf;
  imgr_config cfg;
  imgr_server *srv;
  imgr_rpc *rpc;
  imgr_rpc_options opt;
  uint16_t port;
  const char *ca_pem;    /* set before hx_client_open: clients use TLS */
} hx;

/* Starts iswift, authenticates, creates the container, then the server
 * with the config overrides ("IMGR.Key=value", NULL-terminated, may be
 * NULL), formats and serves testVolume (no static token) and starts the
 * RPC layer on port (0 = ephemeral). Returns 0 or a negative errno. */
int hx_start(hx *h, const char *const *overrides, const imgr_rpc_options *opt, uint16_t port);
/* Stops the RPC layer and the server (not iswift): a restart keeps data. */
void hx_stop_imgr(hx *h);
/* Restarts server and RPC layer on the same port, serving testVolume. */
int hx_restart_imgr(hx *h);
void hx_stop(hx *h);
/* A fresh token from iswift's auth (after iswift_force_reauth). */
int hx_auth(hx *h, char *token, size_t len);

int hx_client_open(hx *h, hx_client *cl);
void hx_client_close(hx_client *cl);
/* Send and wait (10 s). *reply (may be NULL) new reference; *err (may be
 * NULL) malloc'd error text. */
int hx_call(hx_client *cl, const char *method, json_t *req_stolen, json_t **reply, char **err);
/* Mount testVolume with token (NULL: h->token); fills cl->mount_id. */
int hx_mount(hx *h, hx_client *cl, const char *token, char **err);
/* Lease RPC; returns the LeaseResponseType or a negative errno. */
int hx_lease(hx_client *cl, uint64_t inode, uint32_t type, char **err);
/* Waits up to timeout_ms for upcall number idx (0-based); false on timeout. */
bool hx_wait_upcall(hx_client *cl, size_t idx, uint32_t *type, uint64_t *inode,
                    unsigned timeout_ms);
size_t hx_upcalls(hx_client *cl);

/* Writes a file inode head as object obj (the whole object is the head) and
 * returns its length. */
int hx_put_inode_object(hx *h, uint64_t ino, uint64_t obj, uint64_t *head_len);
/* Swift HEAD of an object of the container: 0, -ENOENT, ... */
int hx_object_head(hx *h, uint64_t obj);

#endif
