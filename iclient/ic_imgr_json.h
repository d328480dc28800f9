/*
 * ic_imgr_json: the JSON bodies of imgr's RPCs (imgr.md 3.5), as jansson
 * values for retryrpc (rrpc_client_send takes and returns json_t). The
 * retryrpc-backed ic_imgr_ops is then: encode, send by method name, map an
 * error string with ic_rpc_fail, decode.
 *
 * Encoders return a new reference, or NULL when memory runs out. Member
 * names are the original's (Go field names).
 *
 * Decoders read a reply that came off the network: they accept a missing or
 * null member as zero/empty (Go's encoding/json behaviour), refuse a member
 * of the wrong JSON type, a negative or fractional number, a value out of
 * the field's range, and a MountID longer than IC_MOUNT_ID_MAX - 1, with
 * -EINVAL; the reply itself must be an object (or null: all zero). The
 * output is zeroed first and fully set only on success.
 */
#ifndef PFS_IC_IMGR_JSON_H
#define PFS_IC_IMGR_JSON_H

#include <jansson.h>

#include "ic_imgr.h"

json_t *ic_json_mount_req(const ic_mount_req *r);
json_t *ic_json_renew_mount_req(const ic_renew_mount_req *r);
/* Unmount, VolumeStatus, FetchNonceRange, Flush. */
json_t *ic_json_mount_id_req(const ic_mount_id_req *r);
/* GetInodeTableEntry, DeleteInodeTableEntry. */
json_t *ic_json_inode_req(const ic_inode_req *r);
json_t *ic_json_put_inode_table_entries_req(const ic_put_inode_table_entries_req *r);
json_t *ic_json_adjust_open_count_req(const ic_adjust_open_count_req *r);
json_t *ic_json_lease_req(const ic_lease_req *r);

int ic_json_mount_reply(const json_t *j, ic_mount_reply *rep);
int ic_json_volume_status_reply(const json_t *j, ic_volume_status_reply *rep);
int ic_json_fetch_nonce_range_reply(const json_t *j, ic_fetch_nonce_range_reply *rep);
int ic_json_get_inode_table_entry_reply(const json_t *j, ic_get_inode_table_entry_reply *rep);
int ic_json_lease_reply(const json_t *j, ic_lease_reply *rep);

#endif
