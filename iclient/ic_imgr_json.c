/* ic_imgr_json: RPC bodies to and from JSON (see ic_imgr_json.h). */
#include "ic_imgr_json.h"

#include <errno.h>
#include <string.h>

/* Go writes uint64 as a plain JSON number; values above INT64_MAX do not
 * occur in practice (nonces and sizes), and jansson cannot hold them. */
static json_t *u64(uint64_t v) { return json_integer((json_int_t)v); }

json_t *ic_json_mount_req(const ic_mount_req *r) {
  return json_pack("{s:s,s:s}", "VolumeName", r->volume_name, "AuthToken", r->auth_token);
}

json_t *ic_json_renew_mount_req(const ic_renew_mount_req *r) {
  return json_pack("{s:s,s:s}", "MountID", r->mount_id, "AuthToken", r->auth_token);
}

json_t *ic_json_mount_id_req(const ic_mount_id_req *r) {
  return json_pack("{s:s}", "MountID", r->mount_id);
}

json_t *ic_json_inode_req(const ic_inode_req *r) {
  return json_pack("{s:s,s:o}", "MountID", r->mount_id, "InodeNumber", u64(r->inode_number));
}

json_t *ic_json_adjust_open_count_req(const ic_adjust_open_count_req *r) {
  return json_pack("{s:s,s:o,s:I}", "MountID", r->mount_id, "InodeNumber", u64(r->inode_number),
                   "Adjustment", (json_int_t)r->adjustment);
}

json_t *ic_json_lease_req(const ic_lease_req *r) {
  return json_pack("{s:s,s:o,s:I}", "MountID", r->mount_id, "InodeNumber", u64(r->inode_number),
                   "LeaseRequestType", (json_int_t)r->lease_request_type);
}

json_t *ic_json_put_inode_table_entries_req(const ic_put_inode_table_entries_req *r) {
  json_t *entries = json_array(), *deref = json_array();
  int bad = !entries || !deref;
  for (size_t i = 0; !bad && i < r->entries_len; i++) {
    const ic_inode_table_entry *e = &r->entries[i];
    bad |= json_array_append_new(entries, json_pack("{s:o,s:o,s:o}", "InodeNumber",
                                                    u64(e->inode_number), "InodeHeadObjectNumber",
                                                    u64(e->inode_head_object_number),
                                                    "InodeHeadLength", u64(e->inode_head_length)));
  }
  for (size_t i = 0; !bad && i < r->dereferenced_len; i++)
    bad |= json_array_append_new(deref, u64(r->dereferenced[i]));
  if (bad) {
    json_decref(entries);
    json_decref(deref);
    return NULL;
  }
  /* The newest imgr reads SuperBlockInodeBytesWrittenAdjustment (the
   * older name was ...ObjectSizeAdjustment). */
  return json_pack(
      "{s:s,s:o,s:I,s:I,s:I,s:o}", "MountID", r->mount_id, "UpdatedInodeTableEntryArray", entries,
      "SuperBlockInodeObjectCountAdjustment", (json_int_t)r->object_count_adjustment,
      "SuperBlockInodeBytesWrittenAdjustment", (json_int_t)r->bytes_written_adjustment,
      "SuperBlockInodeBytesReferencedAdjustment", (json_int_t)r->bytes_referenced_adjustment,
      "DereferencedObjectNumberArray", deref);
}

/* ---- decoding ---- */

static int reply_object(const json_t *j) {
  return j == NULL || json_is_null(j) || json_is_object(j) ? 0 : -EINVAL;
}

static const json_t *member(const json_t *j, const char *name) {
  json_t *m = j && json_is_object(j) ? json_object_get(j, name) : NULL;
  return m && !json_is_null(m) ? m : NULL;
}

static int get_u64(const json_t *j, const char *name, uint64_t max, uint64_t *out) {
  const json_t *m = member(j, name);
  *out = 0;
  if (!m) return 0;
  if (!json_is_integer(m) || json_integer_value(m) < 0 || (uint64_t)json_integer_value(m) > max)
    return -EINVAL;
  *out = (uint64_t)json_integer_value(m);
  return 0;
}

int ic_json_mount_reply(const json_t *j, ic_mount_reply *rep) {
  memset(rep, 0, sizeof(*rep));
  int rc = reply_object(j);
  const json_t *m = member(j, "MountID");
  if (rc || !m) return rc;
  if (!json_is_string(m) || json_string_length(m) >= sizeof(rep->mount_id) ||
      strlen(json_string_value(m)) != json_string_length(m))
    return -EINVAL;
  memcpy(rep->mount_id, json_string_value(m), json_string_length(m) + 1);
  return 0;
}

int ic_json_volume_status_reply(const json_t *j, ic_volume_status_reply *rep) {
  ic_volume_status_reply r;
  memset(rep, 0, sizeof(*rep));
  int rc = reply_object(j);
  if (rc == 0) rc = get_u64(j, "NumInodes", UINT64_MAX, &r.num_inodes);
  if (rc == 0) rc = get_u64(j, "ObjectCount", UINT64_MAX, &r.object_count);
  if (rc == 0) rc = get_u64(j, "BytesWritten", UINT64_MAX, &r.bytes_written);
  if (rc == 0 && !member(j, "BytesWritten")) /* an older imgr */
    rc = get_u64(j, "ObjectSize", UINT64_MAX, &r.bytes_written);
  if (rc == 0) rc = get_u64(j, "BytesReferenced", UINT64_MAX, &r.bytes_referenced);
  if (rc == 0) *rep = r;
  return rc;
}

int ic_json_fetch_nonce_range_reply(const json_t *j, ic_fetch_nonce_range_reply *rep) {
  ic_fetch_nonce_range_reply r;
  memset(rep, 0, sizeof(*rep));
  int rc = reply_object(j);
  if (rc == 0) rc = get_u64(j, "NextNonce", UINT64_MAX, &r.next_nonce);
  if (rc == 0) rc = get_u64(j, "NumNoncesFetched", UINT64_MAX, &r.num_nonces_fetched);
  if (rc == 0) *rep = r;
  return rc;
}

int ic_json_get_inode_table_entry_reply(const json_t *j, ic_get_inode_table_entry_reply *rep) {
  ic_get_inode_table_entry_reply r;
  memset(rep, 0, sizeof(*rep));
  int rc = reply_object(j);
  if (rc == 0) rc = get_u64(j, "InodeHeadObjectNumber", UINT64_MAX, &r.inode_head_object_number);
  if (rc == 0) rc = get_u64(j, "InodeHeadLength", UINT64_MAX, &r.inode_head_length);
  if (rc == 0) *rep = r;
  return rc;
}

int ic_json_lease_reply(const json_t *j, ic_lease_reply *rep) {
  uint64_t v = 0;
  memset(rep, 0, sizeof(*rep));
  int rc = reply_object(j);
  if (rc == 0) rc = get_u64(j, "LeaseResponseType", UINT32_MAX, &v);
  if (rc == 0) rep->lease_response_type = (uint32_t)v;
  return rc;
}
