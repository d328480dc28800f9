/*
 * ic_imgr: iclient's internal interface to imgr (imgr.md section 3.5).
 *
 * The inode layer talks to imgr only through an ic_imgr_ops table, so the
 * retryrpc-backed implementation (future work: it needs imgr's RPC server)
 * and the in-process test double (iclient/test/ic_fake_imgr.c) are
 * interchangeable.
 *
 * The request/reply structs mirror the JSON members of the RPCs one to one
 * (member name in the comment). Strings in requests are borrowed; replies own
 * nothing except where noted.
 *
 * Every op returns 0 or a negative errno. On failure with an imgr error
 * string, the op copies that string (truncated, NUL-terminated) into
 * err->msg and returns ic_rpc_errno(err->msg); transport failures return
 * -EIO/-ETIMEDOUT/-ENOTCONN with a message of their own.
 *
 * Threading: ops may be called from any thread concurrently; they must not
 * call back into the inode layer.
 */
#ifndef PFS_IC_IMGR_H
#define PFS_IC_IMGR_H

#include <stddef.h>
#include <stdint.h>

#define IC_MOUNT_ID_MAX 64 /* imgr's are 20 characters (base64 of 15 bytes) */

/* LeaseRequestType / LeaseResponseType (imgr.md 3.4). */
enum {
  IC_LEASE_REQUEST_SHARED = 0,
  IC_LEASE_REQUEST_PROMOTE = 1,
  IC_LEASE_REQUEST_EXCLUSIVE = 2,
  IC_LEASE_REQUEST_DEMOTE = 3,
  IC_LEASE_REQUEST_RELEASE = 4,
};
enum {
  IC_LEASE_RESPONSE_DENIED = 0,
  IC_LEASE_RESPONSE_SHARED = 1,
  IC_LEASE_RESPONSE_PROMOTED = 2,
  IC_LEASE_RESPONSE_EXCLUSIVE = 3,
  IC_LEASE_RESPONSE_DEMOTED = 4,
  IC_LEASE_RESPONSE_RELEASED = 5,
};
/* RPCInterruptType of upcalls. */
enum {
  IC_RPC_INTERRUPT_UNMOUNT = 0,
  IC_RPC_INTERRUPT_DEMOTE = 1,
  IC_RPC_INTERRUPT_RELEASE = 2,
};

typedef struct ic_rpc_err {
  char msg[256];
} ic_rpc_err;

typedef struct ic_mount_req {
  const char *volume_name; /* VolumeName */
  const char *auth_token;  /* AuthToken */
} ic_mount_req;
typedef struct ic_mount_reply {
  char mount_id[IC_MOUNT_ID_MAX]; /* MountID */
} ic_mount_reply;

typedef struct ic_renew_mount_req {
  const char *mount_id;   /* MountID */
  const char *auth_token; /* AuthToken */
} ic_renew_mount_req;

typedef struct ic_mount_id_req { /* Unmount, VolumeStatus, FetchNonceRange, Flush */
  const char *mount_id;          /* MountID */
} ic_mount_id_req;

typedef struct ic_volume_status_reply {
  uint64_t num_inodes;       /* NumInodes */
  uint64_t object_count;     /* ObjectCount */
  uint64_t bytes_written;    /* BytesWritten (older imgr: ObjectSize) */
  uint64_t bytes_referenced; /* BytesReferenced */
} ic_volume_status_reply;

typedef struct ic_fetch_nonce_range_reply {
  uint64_t next_nonce;         /* NextNonce */
  uint64_t num_nonces_fetched; /* NumNoncesFetched */
} ic_fetch_nonce_range_reply;

typedef struct ic_inode_req { /* GetInodeTableEntry, DeleteInodeTableEntry */
  const char *mount_id;       /* MountID */
  uint64_t inode_number;      /* InodeNumber */
} ic_inode_req;
typedef struct ic_get_inode_table_entry_reply {
  uint64_t inode_head_object_number; /* InodeHeadObjectNumber */
  uint64_t inode_head_length;        /* InodeHeadLength */
} ic_get_inode_table_entry_reply;

typedef struct ic_inode_table_entry { /* one UpdatedInodeTableEntryArray member */
  uint64_t inode_number;              /* InodeNumber */
  uint64_t inode_head_object_number;  /* InodeHeadObjectNumber */
  uint64_t inode_head_length;         /* InodeHeadLength */
} ic_inode_table_entry;

typedef struct ic_put_inode_table_entries_req {
  const char *mount_id;                /* MountID */
  const ic_inode_table_entry *entries; /* UpdatedInodeTableEntryArray */
  size_t entries_len;
  int64_t object_count_adjustment;     /* SuperBlockInodeObjectCountAdjustment */
  int64_t bytes_written_adjustment;    /* SuperBlockInodeBytesWrittenAdjustment */
  int64_t bytes_referenced_adjustment; /* SuperBlockInodeBytesReferencedAdjustment */
  const uint64_t *dereferenced;        /* DereferencedObjectNumberArray */
  size_t dereferenced_len;
} ic_put_inode_table_entries_req;

typedef struct ic_adjust_open_count_req {
  const char *mount_id;  /* MountID */
  uint64_t inode_number; /* InodeNumber */
  int64_t adjustment;    /* Adjustment */
} ic_adjust_open_count_req;

typedef struct ic_lease_req {
  const char *mount_id;        /* MountID */
  uint64_t inode_number;       /* InodeNumber */
  uint32_t lease_request_type; /* LeaseRequestType */
} ic_lease_req;
typedef struct ic_lease_reply {
  uint32_t lease_response_type; /* LeaseResponseType */
} ic_lease_reply;

typedef struct ic_imgr_ops {
  int (*mount)(void *ctx, const ic_mount_req *req, ic_mount_reply *rep, ic_rpc_err *err);
  int (*renew_mount)(void *ctx, const ic_renew_mount_req *req, ic_rpc_err *err);
  int (*unmount)(void *ctx, const ic_mount_id_req *req, ic_rpc_err *err);
  int (*volume_status)(void *ctx, const ic_mount_id_req *req, ic_volume_status_reply *rep,
                       ic_rpc_err *err);
  int (*fetch_nonce_range)(void *ctx, const ic_mount_id_req *req, ic_fetch_nonce_range_reply *rep,
                           ic_rpc_err *err);
  int (*get_inode_table_entry)(void *ctx, const ic_inode_req *req,
                               ic_get_inode_table_entry_reply *rep, ic_rpc_err *err);
  int (*put_inode_table_entries)(void *ctx, const ic_put_inode_table_entries_req *req,
                                 ic_rpc_err *err);
  int (*delete_inode_table_entry)(void *ctx, const ic_inode_req *req, ic_rpc_err *err);
  int (*adjust_inode_table_entry_open_count)(void *ctx, const ic_adjust_open_count_req *req,
                                             ic_rpc_err *err);
  int (*flush)(void *ctx, const ic_mount_id_req *req, ic_rpc_err *err);
  int (*lease)(void *ctx, const ic_lease_req *req, ic_lease_reply *rep, ic_rpc_err *err);
} ic_imgr_ops;

/*
 * The one table from imgr error strings (imgr.md 3.2, matched by prefix) to
 * errnos:
 *   EAuthTokenRejected:      -EACCES   (caller re-authenticates + RenewMount)
 *   EBadOpenCountAdjustment: -EINVAL
 *   ELeaseRequestDenied:     -ENOLCK
 *   EMissingLease:           -ENOLCK   (the lease was lost: iclient.md 4.3)
 *   ETooManyMounts           -EUSERS
 *   ETooManyOpens            -EMFILE
 *   EVolumeBeingDeleted:     -ESHUTDOWN
 *   EUnknownInodeNumber:     -ENOENT
 *   EUnknownMountID:         -ENOTCONN
 *   EUnknownVolumeName:      -ENODEV
 *   anything else            -EIO
 */
int ic_rpc_errno(const char *msg);

/* Fill err->msg with the formatted message and return ic_rpc_errno() of it:
 * what an ops implementation does when imgr answers with an error string. */
int ic_rpc_fail(ic_rpc_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
