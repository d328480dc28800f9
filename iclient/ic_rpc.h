/*
 * ic_rpc: the retryrpc-backed ic_imgr_ops (iclient.md 2.1 step 2, 2.2, 4.3;
 * imgr.md 3): one rrpc_client per mount, at RetryRPCPublicIPAddr:
 * RetryRPCPort, over TLS when a CA file is given (the server's certificate
 * must name RetryRPCPublicIPAddr).
 *
 * Every op is: encode (ic_imgr_json), rrpc_client_send by method name,
 * decode. Errors:
 *   - imgr's error string: copied into err->msg, mapped by ic_rpc_errno
 *     (an unknown string, e.g. "EInvalidRequest: ...", is -EIO);
 *   - transport: -ETIMEDOUT, -ECONNREFUSED as retryrpc reports them, any
 *     other transport failure (TLS refused, unreachable) -EIO; err->msg
 *     says what happened, prefixed "retryrpc:". While imgr is down a call
 *     fails after the dial retries or call_timeout_ns, whichever is first;
 *   - an undecodable reply: -EIO ("bad reply ...").
 * No error ends the process.
 *
 * Reconnection. After a successful Mount the client remembers the volume
 * and the MountID, and every mount-scoped request is sent with the
 * *current* MountID (the one in the request struct is replaced). When imgr
 * restarts it loses retryrpc sessions and mounts:
 *   - a call that retryrpc fails with ESTALE (the session is gone; the
 *     request may or may not have run on the old imgr) is sent once more
 *     on a new session; the new imgr does not know the mount, so it runs
 *     nothing and answers EUnknownMountID (if instead imgr only expired
 *     our retryrpc session, after a disconnection of its client expiry,
 *     10 min by default, the mount is still known and the request may run
 *     twice);
 *   - EUnknownMountID (also when imgr unmounted a silent mount): one
 *     thread sends Mount again (others wait for it), the remount function
 *     (ic_rpc_set_remount) runs before the new MountID is used (the volume
 *     forgets its leases, which died with the old mount), and the request
 *     is sent once more with the new MountID. Unmount is not remounted.
 * A request needing a lease then fails with EMissingLease (-ENOLCK): the
 * inode layer takes the lease again (ic_internal.h, ic_flush_inodes).
 * The keep-alive remounts too, so an idle client recovers within one
 * renew period.
 *
 * EAuthTokenRejected from any RPC but Mount and RenewMount: the Swift
 * token is renewed (swift_reauth), RenewMount {MountID, AuthToken} is sent,
 * and the original request is sent once more (iclient.md 2.2). A failing
 * RenewMount fails the op (the original exited the process).
 *
 * Keep-alive: imgr unmounts a mount that sent no RPC for its MountTimeout
 * (imgr_rpc.h; default 1 h). After ic_rpc_keepalive_start, a thread sends
 * RenewMount every renew_period_ns (default 60 s), which also keeps imgr's
 * copy of the Swift token fresh.
 *
 * Upcalls ({"RPCInterruptType": n, "InodeNumber": i}) are decoded on
 * retryrpc's upcall thread and queued (bounded; one copy of each waiting
 * interrupt is enough, imgr repeats them; over the cap they are dropped and
 * logged), then handed to the function set with ic_rpc_set_upcall by
 * upcall_workers threads, so one interrupt waiting for a busy inode does
 * not hold up the others (their order across workers is not kept). With
 * no function set they are dropped (logged). Undecodable ones are logged
 * and dropped.
 *
 * Threading: the ops may be called from any thread at once.
 */
#ifndef PFS_IC_RPC_H
#define PFS_IC_RPC_H

#include <stdint.h>

#include "ic_imgr.h"
#include "swiftclient.h"

typedef struct ic_rpc_client ic_rpc_client;

typedef struct ic_rpc_params {
  const char *host;            /* RetryRPCPublicIPAddr (also the TLS name) */
  uint16_t port;               /* RetryRPCPort */
  const char *ca_cert_file;    /* RetryRPCCACertFilePath; NULL or "" = plain TCP */
  uint64_t deadline_io_ns;     /* RetryRPCDeadlineIO */
  uint64_t keepalive_ns;       /* RetryRPCKeepAlivePeriod */
  uint64_t call_timeout_ns;    /* per call [2 * deadline_io_ns] */
  unsigned retry_limit;        /* dials before a call fails [retryrpc's 8] */
  uint64_t renew_period_ns;    /* keep-alive RenewMount period [60 s] */
  unsigned upcall_workers;     /* threads delivering upcalls [4], at most 64 */
  size_t upcall_queue;         /* upcalls waiting for them [1024] */
  swift_conn *swift;           /* for tokens and re-auth; borrowed; required */
} ic_rpc_params;

/* No I/O yet (the first call connects); starts the upcall workers.
 * -EINVAL missing host/swift, too many workers or a CA file without a
 * certificate; the CA file's read error. */
int ic_rpc_client_create(const ic_rpc_params *p, ic_rpc_client **out);
/* Stops the keep-alive, closes the connection (outstanding calls fail with
 * -EIO), waits for a running upcall. NULL is fine. */
void ic_rpc_client_destroy(ic_rpc_client *c);

/* Where upcalls go; fn NULL: nowhere. Waits for the deliveries in
 * progress, so after ic_rpc_set_upcall(c, NULL, NULL) returns, the old fn
 * is not running and never will be again. fn runs on several threads at
 * once and must not call ic_rpc_set_upcall. */
typedef void (*ic_rpc_upcall_fn)(void *ctx, uint32_t rpc_interrupt_type, uint64_t inode_number);
void ic_rpc_set_upcall(ic_rpc_client *c, ic_rpc_upcall_fn fn, void *ctx);

/* Called once per remount, before the new MountID is used (not for the
 * first Mount). It runs on the thread whose call found the mount gone,
 * which may hold inode locks: it must not wait for any inode. */
typedef void (*ic_rpc_remount_fn)(void *ctx);
void ic_rpc_set_remount(ic_rpc_client *c, ic_rpc_remount_fn fn, void *ctx);
/* imgr said it unmounted us (RPCInterrupt Unmount): remount now, as on
 * EUnknownMountID. -ENOTCONN before the first Mount. */
int ic_rpc_mount_lost(ic_rpc_client *c);
/* Remounts done so far. */
uint64_t ic_rpc_remounts(ic_rpc_client *c);

/* Start / stop the RenewMount keep-alive for mount_id (copied). Start
 * twice: -EALREADY. Stop waits for the thread; safe when not started. */
int ic_rpc_keepalive_start(ic_rpc_client *c, const char *mount_id);
void ic_rpc_keepalive_stop(ic_rpc_client *c);

/* The ops; ctx is the ic_rpc_client. */
extern const ic_imgr_ops ic_rpc_ops;

#endif
