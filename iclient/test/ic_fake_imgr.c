/* ic_fake_imgr: in-process imgr test double (ic_test_doubles.h). Answers
 * with imgr's error strings so that the errno table is exercised. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ic_test_doubles.h"

#define FAKE_MOUNT_ID "fakeMountID00000000="

void ic_fake_imgr_init(ic_fake_imgr *f, uint64_t first_nonce, uint64_t range) {
  memset(f, 0, sizeof(*f));
  pthread_mutex_init(&f->mu, NULL);
  f->next_nonce = first_nonce;
  f->range = range;
}

void ic_fake_imgr_fini(ic_fake_imgr *f) {
  free(f->table);
  free(f->deref);
  pthread_mutex_destroy(&f->mu);
}

static ic_inode_table_entry *find(ic_fake_imgr *f, uint64_t ino) {
  for (size_t i = 0; i < f->ntable; i++)
    if (f->table[i].inode_number == ino) return &f->table[i];
  return NULL;
}

size_t ic_fake_imgr_inodes(ic_fake_imgr *f) {
  pthread_mutex_lock(&f->mu);
  size_t n = f->ntable;
  pthread_mutex_unlock(&f->mu);
  return n;
}

uint64_t ic_fake_imgr_leases(ic_fake_imgr *f, uint32_t type) {
  pthread_mutex_lock(&f->mu);
  uint64_t n = type <= IC_LEASE_REQUEST_RELEASE ? f->leases[type] : 0;
  pthread_mutex_unlock(&f->mu);
  return n;
}

const ic_inode_table_entry *ic_fake_imgr_entry(ic_fake_imgr *f, uint64_t ino) {
  pthread_mutex_lock(&f->mu);
  const ic_inode_table_entry *e = find(f, ino);
  pthread_mutex_unlock(&f->mu);
  return e;
}

bool ic_fake_imgr_dereferenced(ic_fake_imgr *f, uint64_t obj) {
  pthread_mutex_lock(&f->mu);
  bool r = false;
  for (size_t i = 0; i < f->nderef && !r; i++) r = f->deref[i] == obj;
  pthread_mutex_unlock(&f->mu);
  return r;
}

static int check_mount(const char *id, ic_rpc_err *err) {
  if (id && strcmp(id, FAKE_MOUNT_ID) == 0) return 0;
  return ic_rpc_fail(err, "EUnknownMountID: %s", id ? id : "");
}

static int fk_mount(void *ctx, const ic_mount_req *req, ic_mount_reply *rep, ic_rpc_err *err) {
  (void)ctx;
  if (strcmp(req->volume_name, "testvol") != 0)
    return ic_rpc_fail(err, "EUnknownVolumeName: %s", req->volume_name);
  snprintf(rep->mount_id, sizeof(rep->mount_id), "%s", FAKE_MOUNT_ID);
  return 0;
}

static int fk_renew(void *ctx, const ic_renew_mount_req *req, ic_rpc_err *err) {
  (void)ctx;
  return check_mount(req->mount_id, err);
}

static int fk_mount_id_only(void *ctx, const ic_mount_id_req *req, ic_rpc_err *err) {
  (void)ctx;
  return check_mount(req->mount_id, err);
}

static int fk_status(void *ctx, const ic_mount_id_req *req, ic_volume_status_reply *rep,
                     ic_rpc_err *err) {
  ic_fake_imgr *f = ctx;
  int rc = check_mount(req->mount_id, err);
  if (rc) return rc;
  pthread_mutex_lock(&f->mu);
  rep->num_inodes = f->ntable;
  rep->object_count = (uint64_t)f->object_count;
  rep->bytes_written = (uint64_t)f->bytes_written;
  rep->bytes_referenced = (uint64_t)f->bytes_referenced;
  pthread_mutex_unlock(&f->mu);
  return 0;
}

static int fk_nonces(void *ctx, const ic_mount_id_req *req, ic_fetch_nonce_range_reply *rep,
                     ic_rpc_err *err) {
  ic_fake_imgr *f = ctx;
  int rc = check_mount(req->mount_id, err);
  if (rc) return rc;
  pthread_mutex_lock(&f->mu);
  rep->next_nonce = f->next_nonce;
  rep->num_nonces_fetched = f->range;
  f->next_nonce += f->range;
  f->nonce_fetches++;
  pthread_mutex_unlock(&f->mu);
  return 0;
}

static int fk_get(void *ctx, const ic_inode_req *req, ic_get_inode_table_entry_reply *rep,
                  ic_rpc_err *err) {
  ic_fake_imgr *f = ctx;
  int rc = check_mount(req->mount_id, err);
  if (rc) return rc;
  pthread_mutex_lock(&f->mu);
  const ic_inode_table_entry *e = find(f, req->inode_number);
  if (e) {
    rep->inode_head_object_number = e->inode_head_object_number;
    rep->inode_head_length = e->inode_head_length;
  }
  pthread_mutex_unlock(&f->mu);
  if (!e)
    return ic_rpc_fail(err, "EUnknownInodeNumber: %016llX", (unsigned long long)req->inode_number);
  return 0;
}

static int fk_put(void *ctx, const ic_put_inode_table_entries_req *req, ic_rpc_err *err) {
  ic_fake_imgr *f = ctx;
  int rc = check_mount(req->mount_id, err);
  if (rc) return rc;
  pthread_mutex_lock(&f->mu);
  if (f->fail_puts > 0) {
    f->fail_puts--;
    pthread_mutex_unlock(&f->mu);
    return ic_rpc_fail(err, "EMissingLease: %016llX",
                       (unsigned long long)(req->entries_len ? req->entries[0].inode_number : 0));
  }
  bool lose_reply = f->land_failed_puts > 0;
  if (lose_reply) f->land_failed_puts--;
  f->puts++;
  for (size_t i = 0; i < req->entries_len && rc == 0; i++) {
    ic_inode_table_entry *e = find(f, req->entries[i].inode_number);
    if (!e) {
      if (f->ntable == f->captable) {
        size_t cap = f->captable ? f->captable * 2 : 16;
        void *p = realloc(f->table, cap * sizeof(*f->table));
        if (!p) {
          rc = -ENOMEM;
          break;
        }
        f->table = p;
        f->captable = cap;
      }
      e = &f->table[f->ntable++];
    }
    *e = req->entries[i];
  }
  f->object_count += req->object_count_adjustment;
  f->bytes_written += req->bytes_written_adjustment;
  f->bytes_referenced += req->bytes_referenced_adjustment;
  for (size_t i = 0; i < req->dereferenced_len && rc == 0; i++) {
    if (f->nderef == f->capderef) {
      size_t cap = f->capderef ? f->capderef * 2 : 16;
      void *p = realloc(f->deref, cap * sizeof(*f->deref));
      if (!p) {
        rc = -ENOMEM;
        break;
      }
      f->deref = p;
      f->capderef = cap;
    }
    f->deref[f->nderef++] = req->dereferenced[i];
  }
  pthread_mutex_unlock(&f->mu);
  if (rc == 0 && lose_reply)
    return ic_rpc_fail(err, "EMissingLease: %016llX",
                       (unsigned long long)(req->entries_len ? req->entries[0].inode_number : 0));
  return rc;
}

static int fk_delete(void *ctx, const ic_inode_req *req, ic_rpc_err *err) {
  ic_fake_imgr *f = ctx;
  int rc = check_mount(req->mount_id, err);
  if (rc) return rc;
  pthread_mutex_lock(&f->mu);
  ic_inode_table_entry *e = find(f, req->inode_number);
  if (e) *e = f->table[--f->ntable];
  pthread_mutex_unlock(&f->mu);
  return e ? 0
           : ic_rpc_fail(err, "EUnknownInodeNumber: %016llX",
                         (unsigned long long)req->inode_number);
}

static int fk_open_count(void *ctx, const ic_adjust_open_count_req *req, ic_rpc_err *err) {
  (void)ctx;
  if (req->adjustment == 0)
    return ic_rpc_fail(err, "EBadOpenCountAdjustment: %016llX 0",
                       (unsigned long long)req->inode_number);
  return check_mount(req->mount_id, err);
}

static int fk_lease(void *ctx, const ic_lease_req *req, ic_lease_reply *rep, ic_rpc_err *err) {
  ic_fake_imgr *f = ctx;
  static const uint32_t grant[5] = {IC_LEASE_RESPONSE_SHARED, IC_LEASE_RESPONSE_PROMOTED,
                                    IC_LEASE_RESPONSE_EXCLUSIVE, IC_LEASE_RESPONSE_DEMOTED,
                                    IC_LEASE_RESPONSE_RELEASED};
  if (req->lease_request_type > IC_LEASE_REQUEST_RELEASE) {
    rep->lease_response_type = IC_LEASE_RESPONSE_DENIED;
    return ic_rpc_fail(err, "ELeaseRequestDenied: LeaseRequestType %u not supported",
                       req->lease_request_type);
  }
  int rc = check_mount(req->mount_id, err);
  if (rc) return rc;
  pthread_mutex_lock(&f->mu);
  f->leases[req->lease_request_type]++;
  pthread_mutex_unlock(&f->mu);
  rep->lease_response_type = grant[req->lease_request_type];
  return 0;
}

int ic_fake_imgr_format(ic_fake_imgr *f, const ic_store_ops *store, void *store_ctx) {
  ic_volume_params p = {
      .imgr = &ic_fake_imgr_ops,
      .imgr_ctx = f,
      .store = store,
      .store_ctx = store_ctx,
      .mount_id = FAKE_MOUNT_ID,
      .dir_max_keys = 1024,
      .file_max_keys = 2048,
      .read_cache_line_size = 4096,
      .read_cache_line_count_max = 4,
      .inode_cache_limit = 4,
      .file_flush_trigger_size = 1 << 20,
  };
  ic_volume *v;
  int rc = ic_volume_create(&p, &v);
  if (rc) return rc;
  ic_inode *root;
  rc = ic_inode_create_at(v, ILAYOUT_ROOT_DIR_INODE_NUMBER, ILAYOUT_INODE_TYPE_DIR, 0777, 0, 0,
                          &root);
  if (rc == 0) {
    ic_dirent self = {ILAYOUT_ROOT_DIR_INODE_NUMBER, ILAYOUT_INODE_TYPE_DIR};
    rc = ic_dir_insert(v, root, ".", 1, &self);
    if (rc == 0) rc = ic_dir_insert(v, root, "..", 2, &self);
    if (rc == 0) rc = ic_inode_link_add(root, ILAYOUT_ROOT_DIR_INODE_NUMBER, ".", 1);
    if (rc == 0) rc = ic_inode_link_add(root, ILAYOUT_ROOT_DIR_INODE_NUMBER, "..", 2);
    if (rc == 0) rc = ic_flush_inodes(v, &root, 1);
    ic_inode_put(v, root);
  }
  ic_volume_destroy(v);
  return rc;
}

const ic_imgr_ops ic_fake_imgr_ops = {
    .mount = fk_mount,
    .renew_mount = fk_renew,
    .unmount = fk_mount_id_only,
    .volume_status = fk_status,
    .fetch_nonce_range = fk_nonces,
    .get_inode_table_entry = fk_get,
    .put_inode_table_entries = fk_put,
    .delete_inode_table_entry = fk_delete,
    .adjust_inode_table_entry_open_count = fk_open_count,
    .flush = fk_mount_id_only,
    .lease = fk_lease,
};
