/*
 * ic_stats: iclient's bucketstats (iclient.md 8), package "ICLIENT", group
 * "": every stat a BucketLog2Round of microseconds, except DoReadBytes and
 * DoWriteBytes (bytes per successful read/write). The names are the
 * original's. Recording works whether or not the group is registered.
 *
 * The RPC durations are taken by a decorator around any ic_imgr_ops, so
 * whichever implementation is used (retryrpc, the test double) is timed the
 * same way. (The original recorded RenewMount into DoGetAttrUsecs; here it
 * has its own stat.)
 */
#ifndef PFS_IC_STATS_H
#define PFS_IC_STATS_H

#include <stdint.h>

#include "ic_imgr.h"

typedef enum {
  IC_STAT_GetConfigUsecs,
  IC_STAT_GetLeasesUsecs,
  IC_STAT_GetStatsUsecs,
  IC_STAT_GetVersionUsecs,
  IC_STAT_PostLeasesDemoteUsecs,
  IC_STAT_PostLeasesReleaseUsecs,
  IC_STAT_AdjustInodeTableEntryOpenCountUsecs,
  IC_STAT_DeleteInodeTableEntryUsecs,
  IC_STAT_FetchNonceRangeUsecs,
  IC_STAT_FlushUsecs,
  IC_STAT_GetInodeTableEntryUsecs,
  IC_STAT_LeaseUsecs,
  IC_STAT_MountUsecs,
  IC_STAT_PutInodeTableEntriesUsecs,
  IC_STAT_RenewMountUsecs,
  IC_STAT_UnmountUsecs,
  IC_STAT_VolumeStatusUsecs,
  IC_STAT_DoLookupUsecs,
  IC_STAT_DoForgetUsecs,
  IC_STAT_DoGetAttrUsecs,
  IC_STAT_DoSetAttrUsecs,
  IC_STAT_DoReadLinkUsecs,
  IC_STAT_DoSymLinkUsecs,
  IC_STAT_DoMkNodUsecs,
  IC_STAT_DoMkDirUsecs,
  IC_STAT_DoUnlinkUsecs,
  IC_STAT_DoRmDirUsecs,
  IC_STAT_DoRenameUsecs,
  IC_STAT_DoLinkUsecs,
  IC_STAT_DoOpenUsecs,
  IC_STAT_DoReadUsecs,
  IC_STAT_DoWriteUsecs,
  IC_STAT_DoStatFSUsecs,
  IC_STAT_DoReleaseUsecs,
  IC_STAT_DoFSyncUsecs,
  IC_STAT_DoSetXAttrUsecs,
  IC_STAT_DoGetXAttrUsecs,
  IC_STAT_DoListXAttrUsecs,
  IC_STAT_DoRemoveXAttrUsecs,
  IC_STAT_DoFlushUsecs,
  IC_STAT_DoInitUsecs,
  IC_STAT_DoOpenDirUsecs,
  IC_STAT_DoReadDirUsecs,
  IC_STAT_DoReleaseDirUsecs,
  IC_STAT_DoFSyncDirUsecs,
  IC_STAT_DoGetLKUsecs,
  IC_STAT_DoSetLKUsecs,
  IC_STAT_DoSetLKWUsecs,
  IC_STAT_DoAccessUsecs,
  IC_STAT_DoCreateUsecs,
  IC_STAT_DoInterruptUsecs,
  IC_STAT_DoBMapUsecs,
  IC_STAT_DoDestroyUsecs,
  IC_STAT_DoPollUsecs,
  IC_STAT_DoBatchForgetUsecs,
  IC_STAT_DoFAllocateUsecs,
  IC_STAT_DoReadDirPlusUsecs,
  IC_STAT_DoRename2Usecs,
  IC_STAT_DoLSeekUsecs,
  IC_STAT_DoReadBytes,
  IC_STAT_DoWriteBytes,
  IC_STAT_COUNT
} ic_stat;

/* Register / unregister the group ("ICLIENT", ""): 0 or bs_register's errors. */
int ic_stats_register(void);
void ic_stats_unregister(void);
void ic_stat_add(ic_stat s, uint64_t value);
/* Microseconds since t0 (a ut_now_ns() value). */
void ic_stat_since(ic_stat s, uint64_t t0);
/* The stat's name in /stats, and how many values it has recorded so far
 * (the sum of its buckets; a consistent snapshot is not promised while
 * values are being added). */
const char *ic_stat_name(ic_stat s);
uint64_t ic_stat_count(ic_stat s);

/* ops = &ic_imgr_timed_ops with ctx = an ic_imgr_timed around the real ones. */
typedef struct ic_imgr_timed {
  const ic_imgr_ops *inner;
  void *inner_ctx;
} ic_imgr_timed;
extern const ic_imgr_ops ic_imgr_timed_ops;

#endif
