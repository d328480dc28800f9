/*
 * imgr RPC layer (imgr.md section 3): the retryrpc server, the mount table,
 * open counts, and the lease engine wired to retryrpc upcalls. It sits on the
 * core's internal volume API (imgr.h).
 *
 * Differences from the original (imgr.md 6), all deliberate:
 *   - Unmounted mounts leave the tables; MountLimit counts live mounts only
 *     (6.1). Unmount releases leases and denies the mount's waiting requests.
 *   - Dead mounts: a mount that sends no RPC at all for MountTimeout (key
 *     IMGR.MountTimeout, optional, default 1h, 0 = never) is unmounted by a
 *     janitor thread (6.13). Any RPC of the mount counts as a sign of life;
 *     an idle client should send RenewMount (or VolumeStatus) more often.
 *   - A mount whose lease expired (LeaseInterruptLimit ignored interrupts) is
 *     unmounted by the same janitor, never on the thread that noticed it.
 *   - A forced unmount (lease expiry, MountTimeout) sends the client an
 *     upcall {"RPCInterruptType":0,"InodeNumber":0} (RPCInterruptTypeUnmount,
 *     which the original defines but never sends), best effort.
 *   - Shutdown denies waiting Lease requests at once (they would otherwise
 *     hold the shutdown up to LeaseRequestTimeout).
 *   - EAuthTokenRejected never echoes the token (6.19): its detail is the
 *     mount ID or volume name. Mount reports storage failures other than 401
 *     as plain errors instead of EAuthTokenRejected.
 *   - EVolumeBeingDeleted is returned by every RPC (but RenewMount and
 *     Unmount) of a mount whose volume was unserved (DELETE /volume) after
 *     it mounted.
 *   - TraceEnabled lines never show an AuthToken.
 *   - Client mistakes are errors, never process exits: deleting an unknown
 *     inode gives EUnknownInodeNumber, an invalid batch gives
 *     "EInvalidRequest: ..." (the core validates nonces and counters, 6.18).
 *   - Lease waits have a deadline (LeaseRequestTimeout below); a request that
 *     times out is withdrawn and answered with the error
 *     "ELeaseRequestDenied: LeaseRequestType <n> timed out". At most
 *     workers - 4 Lease requests wait at once (each holds a worker thread);
 *     beyond that "ELeaseRequestDenied: LeaseRequestType <n> too many waiting
 *     requests" is returned at once, so waiting Lease calls can never occupy
 *     every worker and block the Release that would answer them.
 *   - Race closed: a lease grant on an inode is only replied to after every
 *     PutInodeTableEntries / DeleteInodeTableEntry naming that inode that
 *     may have passed its lease check has been applied (writes mark their
 *     inodes before checking), so an expired holder's put cannot land after
 *     the new holder has been told it owns the inode. If that takes longer
 *     than LeaseRequestTimeout the reply is "ELeaseRequestDenied: ... timed
 *     out" (the engine's grant stays; the mount is interrupted as usual).
 *
 * Lock order: the RPC mutex is never held while calling into the core
 * (which calls the token source, which takes it) or into a lease function
 * that delivers callbacks (which take it).
 */
#ifndef PFS_IMGR_RPC_H
#define PFS_IMGR_RPC_H

#include <stdint.h>

#include <jansson.h>

#include "conf.h"
#include "imgr.h"

typedef struct imgr_rpc imgr_rpc;

typedef struct imgr_rpc_options {
  uint64_t mount_timeout_ns;       /* MountTimeout [1h]; UINT64_MAX = never */
  uint64_t lease_request_timeout_ns; /* LeaseRequestTimeout [30s] */
  unsigned workers;                /* RetryRPCWorkers [64], >= 8 */
  uint64_t janitor_period_ns;      /* dead-mount scan period [1s] */
  const char *lease_stats_group;   /* bucketstats group under IMGR; NULL: none */
  /* bucketstats group under IMGR for <Method>Usecs, AuthTokenCheckUsecs and
   * <Type>LeaseRequestUsecs (the original has them in IMGR itself, which
   * the core owns); NULL: not registered */
  const char *rpc_stats_group;
} imgr_rpc_options;

/* Defaults above, lease_stats_group "Lease", rpc_stats_group "RPC". */
void imgr_rpc_options_defaults(imgr_rpc_options *o);
/* Read the optional keys IMGR.MountTimeout (duration, 0 = never),
 * IMGR.LeaseRequestTimeout (duration > 0) and IMGR.RetryRPCWorkers (>= 8)
 * over the defaults. -EINVAL with err naming the key. */
int imgr_rpc_options_from_conf(const conf_map *m, imgr_rpc_options *o, char *err,
                               size_t errlen);

/* Creates the lease engine and the retryrpc server (TLS when the config has
 * a cert/key pair) for srv's config; PublicIPAddr:RetryRPCPort (port 0:
 * ephemeral, see imgr_rpc_port). Nothing listens yet. */
int imgr_rpc_create(imgr_server *srv, const imgr_rpc_options *o, imgr_rpc **out);
/* Listen; start the lease timer and the janitor. */
int imgr_rpc_start(imgr_rpc *r);
uint16_t imgr_rpc_port(const imgr_rpc *r);
/* Shutdown, step 1 (before imgr_server_destroy): stop serving RPCs (waits
 * for running handlers), stop the timer and janitor, drop the volume
 * references. Mount tokens stay available to the core's final checkpoint.
 * Idempotent. */
void imgr_rpc_stop(imgr_rpc *r);
/* Step 2, ONLY after imgr_server_destroy (the volumes keep pointers to
 * this layer's token sources until they are freed): free everything. Calls
 * stop if needed. NULL is fine. */
void imgr_rpc_destroy(imgr_rpc *r);

/* Run a method in-process exactly as a retryrpc call from client_id would
 * (tests, fuzzing): 0 with *reply (new reference, may be NULL = null), or
 * a negative errno with *errstr (malloc'd, may be NULL). -ENOSYS: no such
 * method. Works before imgr_rpc_start (no upcalls are sent then). */
int imgr_rpc_call(imgr_rpc *r, uint64_t client_id, const char *method, const json_t *request,
                  json_t **reply, char **errstr);

/* Live mounts (tests, pages). */
size_t imgr_rpc_mount_count(imgr_rpc *r);

#endif
