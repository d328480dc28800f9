/* ic_stats: iclient's statistics (see ic_stats.h). */
#include "ic_stats.h"

#include <errno.h>

#include "bucketstats.h"
#include "utils.h"

static const char *const NAMES[IC_STAT_COUNT] = {
    "GetConfigUsecs",
    "GetLeasesUsecs",
    "GetStatsUsecs",
    "GetVersionUsecs",
    "PostLeasesDemoteUsecs",
    "PostLeasesReleaseUsecs",
    "AdjustInodeTableEntryOpenCountUsecs",
    "DeleteInodeTableEntryUsecs",
    "FetchNonceRangeUsecs",
    "FlushUsecs",
    "GetInodeTableEntryUsecs",
    "LeaseUsecs",
    "MountUsecs",
    "PutInodeTableEntriesUsecs",
    "RenewMountUsecs",
    "UnmountUsecs",
    "VolumeStatusUsecs",
    "DoLookupUsecs",
    "DoForgetUsecs",
    "DoGetAttrUsecs",
    "DoSetAttrUsecs",
    "DoReadLinkUsecs",
    "DoSymLinkUsecs",
    "DoMkNodUsecs",
    "DoMkDirUsecs",
    "DoUnlinkUsecs",
    "DoRmDirUsecs",
    "DoRenameUsecs",
    "DoLinkUsecs",
    "DoOpenUsecs",
    "DoReadUsecs",
    "DoWriteUsecs",
    "DoStatFSUsecs",
    "DoReleaseUsecs",
    "DoFSyncUsecs",
    "DoSetXAttrUsecs",
    "DoGetXAttrUsecs",
    "DoListXAttrUsecs",
    "DoRemoveXAttrUsecs",
    "DoFlushUsecs",
    "DoInitUsecs",
    "DoOpenDirUsecs",
    "DoReadDirUsecs",
    "DoReleaseDirUsecs",
    "DoFSyncDirUsecs",
    "DoGetLKUsecs",
    "DoSetLKUsecs",
    "DoSetLKWUsecs",
    "DoAccessUsecs",
    "DoCreateUsecs",
    "DoInterruptUsecs",
    "DoBMapUsecs",
    "DoDestroyUsecs",
    "DoPollUsecs",
    "DoBatchForgetUsecs",
    "DoFAllocateUsecs",
    "DoReadDirPlusUsecs",
    "DoRename2Usecs",
    "DoLSeekUsecs",
    "DoReadBytes",
    "DoWriteBytes",
};

static bs_log2 g_stats[IC_STAT_COUNT];

int ic_stats_register(void) {
  bs_stat_desc d[IC_STAT_COUNT];
  for (int i = 0; i < IC_STAT_COUNT; i++) d[i] = (bs_stat_desc)BS_DESC_LOG2(&g_stats[i], NAMES[i]);
  return bs_register("ICLIENT", "", d, IC_STAT_COUNT);
}

void ic_stats_unregister(void) { (void)bs_unregister("ICLIENT", ""); }

void ic_stat_add(ic_stat s, uint64_t value) { bs_log2_add(&g_stats[s], value); }

void ic_stat_since(ic_stat s, uint64_t t0) { ic_stat_add(s, (ut_now_ns() - t0) / 1000); }

const char *ic_stat_name(ic_stat s) { return NAMES[s]; }

uint64_t ic_stat_count(ic_stat s) {
  uint64_t n = 0;
  for (unsigned i = 0; i < BS_LOG2_MAX_BUCKETS; i++) n += atomic_load(&g_stats[s].bucket[i]);
  return n;
}

/* ---- the timing decorator ---- */

#define TIMED(stat, call)                                                                          \
  do {                                                                                             \
    const ic_imgr_timed *t = ctx;                                                                  \
    uint64_t t0 = ut_now_ns();                                                                     \
    int rc = t->inner->call;                                                                       \
    ic_stat_since(stat, t0);                                                                       \
    return rc;                                                                                     \
  } while (0)

static int t_mount(void *ctx, const ic_mount_req *req, ic_mount_reply *rep, ic_rpc_err *err) {
  TIMED(IC_STAT_MountUsecs, mount(t->inner_ctx, req, rep, err));
}
static int t_renew(void *ctx, const ic_renew_mount_req *req, ic_rpc_err *err) {
  TIMED(IC_STAT_RenewMountUsecs, renew_mount(t->inner_ctx, req, err));
}
static int t_unmount(void *ctx, const ic_mount_id_req *req, ic_rpc_err *err) {
  TIMED(IC_STAT_UnmountUsecs, unmount(t->inner_ctx, req, err));
}
static int t_status(void *ctx, const ic_mount_id_req *req, ic_volume_status_reply *rep,
                    ic_rpc_err *err) {
  TIMED(IC_STAT_VolumeStatusUsecs, volume_status(t->inner_ctx, req, rep, err));
}
static int t_nonces(void *ctx, const ic_mount_id_req *req, ic_fetch_nonce_range_reply *rep,
                    ic_rpc_err *err) {
  TIMED(IC_STAT_FetchNonceRangeUsecs, fetch_nonce_range(t->inner_ctx, req, rep, err));
}
static int t_get(void *ctx, const ic_inode_req *req, ic_get_inode_table_entry_reply *rep,
                 ic_rpc_err *err) {
  TIMED(IC_STAT_GetInodeTableEntryUsecs, get_inode_table_entry(t->inner_ctx, req, rep, err));
}
static int t_put(void *ctx, const ic_put_inode_table_entries_req *req, ic_rpc_err *err) {
  TIMED(IC_STAT_PutInodeTableEntriesUsecs, put_inode_table_entries(t->inner_ctx, req, err));
}
static int t_delete(void *ctx, const ic_inode_req *req, ic_rpc_err *err) {
  TIMED(IC_STAT_DeleteInodeTableEntryUsecs, delete_inode_table_entry(t->inner_ctx, req, err));
}
static int t_open_count(void *ctx, const ic_adjust_open_count_req *req, ic_rpc_err *err) {
  TIMED(IC_STAT_AdjustInodeTableEntryOpenCountUsecs,
        adjust_inode_table_entry_open_count(t->inner_ctx, req, err));
}
static int t_flush(void *ctx, const ic_mount_id_req *req, ic_rpc_err *err) {
  TIMED(IC_STAT_FlushUsecs, flush(t->inner_ctx, req, err));
}
static int t_lease(void *ctx, const ic_lease_req *req, ic_lease_reply *rep, ic_rpc_err *err) {
  TIMED(IC_STAT_LeaseUsecs, lease(t->inner_ctx, req, rep, err));
}

const ic_imgr_ops ic_imgr_timed_ops = {
    .mount = t_mount,
    .renew_mount = t_renew,
    .unmount = t_unmount,
    .volume_status = t_status,
    .fetch_nonce_range = t_nonces,
    .get_inode_table_entry = t_get,
    .put_inode_table_entries = t_put,
    .delete_inode_table_entry = t_delete,
    .adjust_inode_table_entry_open_count = t_open_count,
    .flush = t_flush,
    .lease = t_lease,
};
