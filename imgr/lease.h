/*
 * lease: imgr's per-inode shared/exclusive lease engine (imgr.md 3.5 "Lease",
 * 3.6). One engine per imgr process; the RPC handlers call it.
 *
 * Shape. The original runs one goroutine per inode lease, each with its own
 * timers. Here one engine object holds every lease behind ONE mutex and keeps
 * two timer lists (the "long ago" MinLeaseDuration timer and the
 * LeaseInterruptInterval timer; a lease runs at most one of them at a time).
 * Time comes from a clock callback; a single timer thread (the built-in one,
 * lease_engine_timer_start, or the caller's, or a test with a fake clock)
 * asks lease_engine_next_deadline() and calls lease_engine_tick(now).
 *
 * Objects.
 *   mount   registered with lease_mount_add(id, volume); requests name it by id.
 *   lease   one per (volume of the mount, inode number) while anyone holds or
 *           waits for it; freed as soon as it is idle (the original keeps a
 *           dead handler thread per inode: imgr.md 6.11).
 *   record  one per (mount, inode): the mount's request state
 *           (lease_record_state). A mount has at most one record per inode,
 *           so every per-lease list (shared, releasing, FIFO) is bounded by
 *           the number of mounts.
 *
 * Replies. lease_request() answers at once when it can (*reply set, no
 * callback). Otherwise *reply is LEASE_REPLY_PENDING, *ticket is set, and the
 * answer comes later through fn(arg, reply): exactly once, unless
 * lease_cancel() returned 0. lease_request_wait() wraps this for a blocking
 * RPC handler with a deadline.
 *
 * Callbacks and locking (the rule). Replies, interrupts (upcalls) and
 * "mount expired" notices are decided under the engine mutex, collected in
 * an outbox, and delivered AFTER the mutex is released, on the thread of the
 * call that caused them (lease_request, lease_cancel, lease_mount_remove,
 * lease_stop, lease_engine_tick). Callbacks may therefore call back into the
 * engine. The caller of those functions must not hold a lock that a callback
 * takes. Deliveries from different threads are not ordered with respect to
 * each other (as in the original, an upcall can overtake the reply of the
 * grant it concerns); within one call they come in decision order.
 * Lock order: callers' locks -> engine mutex. The engine never calls out
 * while holding its mutex.
 *
 * Deliberate differences from the original (imgr.md 6, items 9-12):
 *   - A Shared request in SharedGrantedRecently is granted at once only when
 *     nothing is queued and no promotion is pending; otherwise it queues
 *     (shared bursts can no longer starve a waiting Exclusive/Promote).
 *   - ExclusiveDemoting + Release hands the lease to the queue head by the
 *     HEAD's own type (the original looks at the second entry): an exclusive
 *     head gets Exclusive; a shared head gets Shared with the following
 *     shared requests, or Exclusive when it is alone (the original's
 *     lone-shared upgrade, kept; the same rule applies when the last shared
 *     holder releases).
 *   - A deferred Promote makes its record SharedPromoting at once (the
 *     original flips it at the long-ago pop); a Release from it is Denied
 *     until the Promote is answered.
 *   - A promotion completed by expiry answers Promoted (not Exclusive).
 *   - Expiry while stopping treats the holders like any expiry: records
 *     removed, mounts declared expired (no stale None records).
 *   - A pending promotion is denied by lease_stop in every state (the
 *     original only did so in SharedPromoting and left the RPC hanging).
 *   - Expiry: the holder's mount is declared expired (expired callback;
 *     imgr then unmounts it) and ALL its records are revoked at once: its
 *     holds are dropped (waiters proceed) and its waiting requests are
 *     Denied. Requests from an expired mount return -ESRCH.
 *   - lease_mount_remove (Unmount, dead mount) does the same at once: holds
 *     dropped, waiting requests Denied (imgr.md 6.12).
 *   - When the last waiter of an interrupt round goes away (cancel, unmount,
 *     expiry) the round ends and the holders keep the lease in the LongAgo
 *     state; their answer to the interrupt (Release, or Demote) is still
 *     accepted there. Nobody is expired for a lease nobody wants.
 *   - The original's "impossible state" checks that exit the process have
 *     no counterpart: those states cannot arise here, and an unexpected
 *     timer pop is logged and ignored.
 *   - Eviction (lease_stop of LRU leases beyond LeaseEvictHighLimit) runs
 *     synchronously in the request that created the new lease; it skips
 *     leases already stopping instead of giving up at the first one.
 *
 * Errors: 0 or a negative errno, as listed per function.
 */
#ifndef PFS_IMGR_LEASE_H
#define PFS_IMGR_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wire values (imgr.md 3.4). */
typedef enum {
  LEASE_REQUEST_SHARED = 0,
  LEASE_REQUEST_PROMOTE = 1,
  LEASE_REQUEST_EXCLUSIVE = 2,
  LEASE_REQUEST_DEMOTE = 3,
  LEASE_REQUEST_RELEASE = 4,
} lease_request_type;

typedef enum {
  LEASE_REPLY_DENIED = 0,
  LEASE_REPLY_SHARED = 1,
  LEASE_REPLY_PROMOTED = 2,
  LEASE_REPLY_EXCLUSIVE = 3,
  LEASE_REPLY_DEMOTED = 4,
  LEASE_REPLY_RELEASED = 5,
  LEASE_REPLY_PENDING = 0xFF, /* not on the wire: answer comes via callback */
} lease_reply;

typedef enum {
  LEASE_INTERRUPT_UNMOUNT = 0, /* defined by the protocol; the engine never sends it */
  LEASE_INTERRUPT_DEMOTE = 1,
  LEASE_INTERRUPT_RELEASE = 2,
} lease_interrupt_type;

/* Inode lease states (imgr.md 3.6.1; the two *Expired states are transient
 * inside one engine step and never observable). */
typedef enum {
  LEASE_STATE_NONE,
  LEASE_STATE_SHARED_GRANTED_RECENTLY,
  LEASE_STATE_SHARED_GRANTED_LONG_AGO,
  LEASE_STATE_SHARED_PROMOTING,
  LEASE_STATE_SHARED_RELEASING,
  LEASE_STATE_EXCLUSIVE_GRANTED_RECENTLY,
  LEASE_STATE_EXCLUSIVE_GRANTED_LONG_AGO,
  LEASE_STATE_EXCLUSIVE_DEMOTING,
  LEASE_STATE_EXCLUSIVE_RELEASING,
} lease_state;

/* Per-mount record states. A pending promoter is SharedPromoting from the
 * moment its Promote is deferred (the original flips it at the long-ago pop;
 * the rights are the same). */
typedef enum {
  LEASE_RECORD_NONE,
  LEASE_RECORD_SHARED_REQUESTED,
  LEASE_RECORD_SHARED_GRANTED,
  LEASE_RECORD_SHARED_PROMOTING,
  LEASE_RECORD_SHARED_RELEASING,
  LEASE_RECORD_EXCLUSIVE_REQUESTED,
  LEASE_RECORD_EXCLUSIVE_GRANTED,
  LEASE_RECORD_EXCLUSIVE_DEMOTING,
  LEASE_RECORD_EXCLUSIVE_RELEASING,
} lease_record_state;

typedef enum { LEASE_ACCESS_READ, LEASE_ACCESS_WRITE } lease_access;

/* Longest mount id accepted (imgr's are 20 characters). */
#define LEASE_MOUNT_ID_MAX 64

typedef struct lease_engine lease_engine;

typedef void (*lease_reply_fn)(void *arg, lease_reply reply);

typedef struct {
  /* imgr.conf keys (all required by imgr; lease_config_defaults() fills the
   * sample values 250ms / 250ms / 20 / 100000 / 100010). Durations > 0. */
  uint64_t min_lease_duration_ns;      /* MinLeaseDuration */
  uint64_t lease_interrupt_interval_ns; /* LeaseInterruptInterval */
  uint32_t lease_interrupt_limit;      /* LeaseInterruptLimit, >= 1 */
  uint64_t lease_evict_low_limit;      /* LeaseEvictLowLimit */
  uint64_t lease_evict_high_limit;     /* LeaseEvictHighLimit, >= low */
  /* Caps added by the port (0 = default). */
  uint64_t max_leases;   /* hard cap on inode leases (stopping ones linger
                            until their holders go); default 2 x high limit */
  uint64_t max_waiting;  /* cap on requests waiting for an answer, all leases
                            together; default 100000 */
  uint64_t max_mounts;   /* cap on registered mounts; default 10000 (MountLimit) */
  /* Clock in nanoseconds, monotonic. NULL = CLOCK_MONOTONIC. */
  uint64_t (*now_ns)(void *clock_arg);
  void *clock_arg;
  /* Upcall: send RPCInterrupt{type, inode} to the mount's client. Best effort
   * (the engine resends at the interval). May be NULL (interrupts dropped). */
  void (*interrupt)(void *cb_arg, const char *mount_id, lease_interrupt_type type,
                    uint64_t inode);
  /* The mount ignored LeaseInterruptLimit interrupts: its leases are already
   * revoked; imgr should unmount it (lease_mount_remove then just frees it).
   * Called once per mount. May be NULL. */
  void (*expired)(void *cb_arg, const char *mount_id);
  void *cb_arg;
  /* bucketstats group under package "IMGR" (e.g. "Lease"); NULL = do not
   * register. Registration failure (e.g. -EEXIST) fails create. */
  const char *stats_group;
} lease_config;

/* Sample-config values, no callbacks, CLOCK_MONOTONIC, no stats group. */
void lease_config_defaults(lease_config *cfg);

/* Copies cfg. -EINVAL on a zero duration, a zero interrupt limit or
 * low > high; -ENOMEM; the bs_register error. */
int lease_engine_create(const lease_config *cfg, lease_engine **out);
/* Stops the timer thread if running. Waiting requests are NOT answered:
 * call lease_mount_remove for every mount first (imgr does so at shutdown).
 * Frees everything; unregisters the stats. NULL is a no-op. */
void lease_engine_destroy(lease_engine *e);

/* Mounts. mount_id: 1..LEASE_MOUNT_ID_MAX bytes; volume: non-empty.
 * add: -EINVAL, -EEXIST (id in use), -ENOSPC (max_mounts), -ENOMEM.
 * remove: releases every lease the mount holds and Denies its waiting
 * requests (their callbacks run before this returns), then forgets the mount.
 * -ESRCH if unknown. */
int lease_mount_add(lease_engine *e, const char *mount_id, const char *volume);
int lease_mount_remove(lease_engine *e, const char *mount_id);

/* The Lease RPC. On 0, *reply is the answer, or LEASE_REPLY_PENDING with
 * *ticket set (fn(arg, reply) will follow; fn must be non-NULL for Shared,
 * Exclusive and Promote, which may wait). The volume is the mount's.
 * Errors (*reply = Denied for the first two, untouched otherwise):
 *   -EINVAL  unknown request type ("LeaseRequestType <n> not supported");
 *            also fn NULL for Shared/Exclusive/Promote (*reply untouched)
 *   -ENOENT  Promote/Demote/Release on an inode with no lease object
 *            ("... not allowed for non-existent Lease")
 *   -ESRCH   unknown or expired mount (EUnknownMountID)
 *   -ENOBUFS the request would wait and max_waiting requests already wait
 *   -ENOSPC  a new lease is needed and max_leases leases exist
 *   -ENOMEM */
int lease_request(lease_engine *e, const char *mount_id, uint64_t inode,
                  lease_request_type type, lease_reply_fn fn, void *arg,
                  lease_reply *reply, uint64_t *ticket);

/* Withdraw a pending request (RPC deadline passed, connection gone).
 * 0: withdrawn, fn will never be called. A queued Shared/Exclusive request
 * disappears as if never made; a deferred Promote stays in effect but
 * unanswered (the mount may end up exclusive without knowing, which is safe:
 * it keeps at least the rights it believes it has and is interrupted as
 * usual). -EALREADY: the answer is decided, fn has run or is about to run on
 * another thread (also returned for a ticket already withdrawn: tickets are
 * not remembered once their record is gone). -ENOENT: the ticket was never
 * issued, or the mount's record for the inode belongs to another request. */
int lease_cancel(lease_engine *e, const char *mount_id, uint64_t inode, uint64_t ticket);

/* lease_request + wait up to timeout_ns (CLOCK_MONOTONIC, real time) for the
 * answer; on timeout the request is cancelled and -ETIMEDOUT returned (if the
 * answer raced the timeout it is returned instead). Errors as lease_request. */
int lease_request_wait(lease_engine *e, const char *mount_id, uint64_t inode,
                       lease_request_type type, uint64_t timeout_ns, lease_reply *reply);

/* RPC lease checks (imgr.md 3.5): READ = readable record state, WRITE =
 * writable. 0, -EACCES (EMissingLease), -ESRCH (unknown/expired mount). */
int lease_check(lease_engine *e, const char *mount_id, uint64_t inode, lease_access access);

/* Inode removed (imgr.md 4.9): revoke the lease (3.6.7). 0 (also when it was
 * already stopping), -ENOENT when the volume has no lease on the inode. */
int lease_stop(lease_engine *e, const char *volume, uint64_t inode);

/* Timers. next_deadline: 0 and *deadline_ns = the earliest timer, or -ENOENT
 * when no timer runs. tick: run every timer due at or before now_ns (the
 * clock of the config's now_ns), delivering callbacks between pops. */
int lease_engine_next_deadline(lease_engine *e, uint64_t *deadline_ns);
void lease_engine_tick(lease_engine *e, uint64_t now_ns);

/* Built-in timer thread (only with the default CLOCK_MONOTONIC clock):
 * sleeps until the next deadline, woken early when an earlier one appears.
 * start: 0, -EALREADY, -EINVAL (custom clock), or pthread_create's error.
 * stop: joins; no-op if not running. */
int lease_engine_timer_start(lease_engine *e);
void lease_engine_timer_stop(lease_engine *e);

/* Read-only snapshot for the HTTP pages. Records are listed holders first
 * (exclusive, demoting, promoting, shared, releasing) then waiters in FIFO
 * order. */
typedef struct {
  char mount_id[LEASE_MOUNT_ID_MAX + 1];
  lease_record_state state;
} lease_snapshot_record;

typedef struct {
  char *volume;
  uint64_t inode;
  lease_state state;
  bool stopping;
  uint32_t interrupts_sent; /* interrupts of the current round, 0 if none */
  size_t nrecords;
  lease_snapshot_record *records;
} lease_snapshot_lease;

typedef struct {
  size_t nleases;            /* entries, in LRU order (least recent first) */
  lease_snapshot_lease *leases;
  size_t nmounts;            /* registered mounts */
  size_t nwaiting;           /* requests waiting for an answer */
} lease_snapshot;

/* volume NULL = all volumes. -ENOMEM. Free with lease_snapshot_free. */
int lease_engine_snapshot(lease_engine *e, const char *volume, lease_snapshot **out);
void lease_snapshot_free(lease_snapshot *s);

/* Counters, also registered with bucketstats as IMGR.<stats_group>.<Name>
 * (Name in parentheses), all bs_total. */
typedef struct {
  uint64_t shared_grants;       /* (SharedGrants) Shared replies */
  uint64_t exclusive_grants;    /* (ExclusiveGrants) Exclusive replies */
  uint64_t promotions;          /* (Promotions) Promoted replies */
  uint64_t demotions;           /* (Demotions) Demoted replies */
  uint64_t releases;            /* (Releases) Released replies */
  uint64_t denials;             /* (Denials) Denied replies */
  uint64_t release_interrupts;  /* (ReleaseInterrupts) Release upcalls */
  uint64_t demote_interrupts;   /* (DemoteInterrupts) Demote upcalls */
  uint64_t expiries;            /* (Expiries) holders expired */
  uint64_t expired_mounts;      /* (ExpiredMounts) mounts declared expired */
  uint64_t stops;               /* (Stops) leases stopped (removal or eviction) */
  uint64_t evictions;           /* (Evictions) stops caused by the LRU */
  uint64_t cancels;             /* (Cancels) lease_cancel successes */
  uint64_t rejected_full;       /* (RejectedFull) -ENOBUFS and -ENOSPC */
} lease_stats;

void lease_engine_stats(lease_engine *e, lease_stats *out);

/* Names for logs and pages ("SharedGrantedRecently", "Exclusive", ...);
 * "?" for out-of-range values. */
const char *lease_state_name(lease_state s);
const char *lease_record_state_name(lease_record_state s);
const char *lease_request_name(lease_request_type t);
const char *lease_reply_name(lease_reply r);

#endif
