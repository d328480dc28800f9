/*
 * libFuzzer target for the imgr RPC request decoders and checks: input is
 * "<method index byte><JSON request>". A real in-process imgr (iswift, a
 * formatted volume, one live mount) answers; in the request, the string
 * "@" as MountID stands for that mount, so the fuzzer reaches the lease
 * checks, the put batch decoding and the core's validation as well as the
 * malformed-request paths. Every call must return 0 or an error, never crash.
 * Garbage collection runs only after a Flush (no timed checkpoints), and
 * each input waits for its deletes: a delete worker still busy when
 * libFuzzer checks the input for leaks would look like one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "rpc_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = {
    "Mount", "RenewMount", "VolumeStatus", "FetchNonceRange", "GetInodeTableEntry",
    "PutInodeTableEntries", "DeleteInodeTableEntry", "AdjustInodeTableEntryOpenCount",
    "Flush", "Lease", "Unmount",
};
#define NMETHODS (sizeof methods / sizeof methods[0])

static hx h;
static char mount_id[64];

static void remount(void) {
  json_t *rep = NULL;
  char *err = NULL;
  json_t *req = json_pack("{s:s,s:s}", "VolumeName", "testVolume", "AuthToken", h.token);
  if (imgr_rpc_call(h.rpc, 1, "Mount", req, &rep, &err) == 0)
    snprintf(mount_id, sizeof mount_id, "%s", json_string_value(json_object_get(rep, "MountID")));
  else
    abort();
  json_decref(req);
  json_decref(rep);
  free(err);
}

static void wait_for_deletes(void) {
  imgr_volume *vol;
  if (imgr_volume_get_ref(h.srv, "testVolume", &vol)) abort();
  imgr_volume_wait_deletes(vol);
  imgr_volume_put_ref(vol);
}

static void init(void) {
  log_configure(NULL, false, false);
  imgr_rpc_options o;
  imgr_rpc_options_defaults(&o);
  o.lease_stats_group = NULL;
  o.rpc_stats_group = NULL;
  o.lease_request_timeout_ns = 50000000; /* one mount: waits cannot happen anyway */
  static const char *const no_timed_checkpoints[] = {"IMGR.CheckPointInterval=1h", NULL};
  if (hx_start(&h, no_timed_checkpoints, &o, 0)) abort();
  remount();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    init();
    ready = 1;
  }
  if (size < 1) return 0;
  const char *method = methods[data[0] % NMETHODS];
  json_t *req = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
  if (!req) return 0;
  const char *k;
  json_t *v;
  json_object_foreach(req, k, v) if (json_is_string(v) && strcmp(json_string_value(v), "@") == 0)
      json_string_set(v, mount_id);
  json_t *rep = NULL;
  char *err = NULL;
  int rc = imgr_rpc_call(h.rpc, 1, method, req, &rep, &err);
  if (rc > 0) abort();
  json_decref(rep);
  free(err);
  json_decref(req);
  if (imgr_rpc_mount_count(h.rpc) == 0) remount(); /* the input unmounted it */
  wait_for_deletes();
  return 0;
}
