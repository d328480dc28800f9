/*
 * imgr core: the metadata server's volumes, checkpoints, garbage collection
 * and REST admin API (imgr.md sections 1, 2 and 4). The retryrpc RPC layer
 * and the lease engine sit on top of the internal volume API declared here.
 *
 * Errors: 0 or a negative errno (-ENOENT unknown volume or inode, -EEXIST
 * already served, -EACCES no usable token or token refused, -EIO storage
 * failure, -EINVAL bad input or corrupt stored data, -ENOSYS not yet built).
 *
 * Locks (the order in which they may be taken; never the other way round):
 *
 *   srv->mu            the volume map and the server's lists. Never held
 *                      across I/O; held only to find/insert/remove a volume.
 *   vol->ckpt_mu       serializes checkpoints of one volume (one at a time).
 *                      Held across that checkpoint's Swift PUT and object-0
 *                      write by design: only other checkpointers and Flush
 *                      callers (who must wait for it anyway) block on it.
 *   vol->table_rw      readers: batch puts and deletes on the inode table;
 *                      writer: the checkpoint's in-memory flush (no I/O in
 *                      it). Held shared across inode-table page-ins, which
 *                      only delays a checkpoint's flush, never a reader.
 *   (sortedmap tree)   the tree's own mutex, held by sortedmap across its
 *                      read_node callback (a Swift range GET).
 *   vol->obj0_mu       serializes writes of object 0 / ickpt (nonce
 *                      reservations and checkpoint commits). Held across
 *                      that write only.
 *   vol->mu            all other in-memory volume state. Never held across
 *                      I/O and never held while calling into sortedmap.
 *
 * Threading: every function may be called from any thread.
 */
#ifndef PFS_IMGR_H
#define PFS_IMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "conf.h"

/* ---- configuration (imgr.md 1.3) ---------------------------------------- */

#define IMGR_MAX_CKPT_ADDRS 16

typedef struct imgr_config {
  char *public_ip_addr;
  char *private_ip_addr;
  uint16_t retry_rpc_port;
  uint16_t http_server_port;
  size_t check_point_ip_addrs_len;
  char **check_point_ip_addrs;            /* NULL when unset */
  uint16_t check_point_port;
  char *check_point_ca_cert_file_path;    /* "" = plain http */
  uint64_t check_point_retry_delay_ns;
  double check_point_retry_exp_backoff;
  uint32_t check_point_retry_limit;
  uint64_t check_point_timeout_ns;
  uint32_t check_point_connection_pool_size;
  uint64_t retry_rpc_ttl_completed_ns;
  uint64_t retry_rpc_ack_trim_ns;
  uint64_t retry_rpc_deadline_io_ns;
  uint64_t retry_rpc_keep_alive_period_ns;
  char *retry_rpc_cert_file_path;         /* "" = plain TCP */
  char *retry_rpc_key_file_path;
  uint64_t check_point_interval_ns;
  uint64_t auth_token_check_interval_ns;
  uint64_t fetch_nonce_range_to_return;
  uint64_t mount_limit;
  uint64_t open_file_limit;
  uint64_t min_lease_duration_ns;
  uint64_t lease_interrupt_interval_ns;
  uint32_t lease_interrupt_limit;
  uint64_t lease_evict_low_limit;
  uint64_t lease_evict_high_limit;
  uint64_t swift_retry_delay_ns;
  double swift_retry_exp_backoff;
  uint32_t swift_retry_limit;
  uint64_t swift_timeout_ns;
  uint32_t swift_connection_pool_size;
  uint32_t parallel_object_delete_per_volume_limit;
  uint64_t inode_table_cache_evict_low_limit;
  uint64_t inode_table_cache_evict_high_limit;
  uint64_t inode_table_max_inodes_per_bplustree_page;
  uint64_t root_dir_max_dir_entries_per_bplustree_page;
  char *log_file_path;
  bool log_to_console;
  bool trace_enabled;
  bool retry_rpc_log_enabled;
  /* additions (optional; documented in dev.conf) */
  uint64_t http_max_body;                 /* HTTPMaxBodySize, default 1 MiB */
} imgr_config;

/* Parse and validate [IMGR]. On failure err names the key and the problem.
 * On success *cfg owns its strings (imgr_config_free). */
int imgr_config_parse(const conf_map *m, imgr_config *cfg, char *err, size_t errlen);
void imgr_config_free(imgr_config *cfg);
/* The GET /config object: one member per key in imgr.md 1.3 order,
 * durations in nanoseconds. New reference. */
json_t *imgr_config_to_json(const imgr_config *cfg);

/* ---- the server --------------------------------------------------------- */

typedef struct imgr_server imgr_server;
typedef struct imgr_volume imgr_volume;

/* Creates the volume manager (cache, Swift settings, ickpt client), no HTTP.
 * cfg is copied by reference: it must outlive the server. */
int imgr_server_create(const imgr_config *cfg, imgr_server **out);
/* Starts the HTTP admin server on PrivateIPAddr:HTTPServerPort (port 0:
 * ephemeral; see imgr_server_http_port). */
int imgr_server_start_http(imgr_server *srv);
uint16_t imgr_server_http_port(const imgr_server *srv);
/* Stops HTTP, takes a final checkpoint of every active volume, waits for
 * their deletes and frees everything. Returns the first checkpoint error
 * (everything is freed regardless). NULL is fine. */
int imgr_server_destroy(imgr_server *srv);
const imgr_config *imgr_server_config(const imgr_server *srv);

/* ---- volumes (REST operations) ------------------------------------------ */

/* POST /volume: write an empty file system (ilayout.md 13) into the
 * container at storage_url with token. -EEXIST when object 0 already exists
 * and force is false. */
int imgr_format(imgr_server *srv, const char *storage_url, const char *token, bool force);
/* PUT /volume/<name>: register the volume (no storage access). token may be
 * NULL or "" (no static token). -EEXIST, -EINVAL bad name or URL. */
int imgr_volume_serve(imgr_server *srv, const char *name, const char *storage_url,
                      const char *token);
/* DELETE /volume/<name>: final checkpoint if active, wait for deletes,
 * forget the volume. -ENOENT. */
int imgr_volume_unserve(imgr_server *srv, const char *name);

/* GET /volume: array sorted by name. New reference. */
json_t *imgr_volume_list_json(imgr_server *srv);
/* GET /volume/<name>: read afresh from storage with token (NULL: the
 * volume's token selection). *out new reference. */
int imgr_volume_json(imgr_server *srv, const char *name, const char *token, json_t **out);
int imgr_volume_inode_json(imgr_server *srv, const char *name, uint64_t inode_number,
                           const char *token, json_t **out);

/* ---- internal volume API (for the RPC layer) ----------------------------- */

/* A reference on a served volume; release with imgr_volume_put_ref. */
int imgr_volume_get_ref(imgr_server *srv, const char *name, imgr_volume **out);
void imgr_volume_put_ref(imgr_volume *vol);

/* Load checkpoint, superblock and inode table (the original's activation at
 * first Mount) and start the checkpoint thread. Idempotent. -ENOENT once the
 * volume is no longer served. The calls below activate on demand. */
int imgr_volume_activate(imgr_volume *vol);

typedef struct imgr_inode_entry {
  uint64_t inode_number;
  uint64_t inode_head_object_number;
  uint64_t inode_head_length;
} imgr_inode_entry;

/* -ENOENT when the inode is not in the table. */
int imgr_volume_get_inode(imgr_volume *vol, uint64_t inode_number, imgr_inode_entry *out);

typedef struct imgr_put_batch {
  const imgr_inode_entry *entries;
  size_t n_entries;
  int64_t object_count_adjustment;
  int64_t bytes_written_adjustment;
  int64_t bytes_referenced_adjustment;
  const uint64_t *dereferenced;          /* objects to delete after commit */
  size_t n_dereferenced;
} imgr_put_batch;

/* Apply a batch (later duplicates win). Validated first (inode and object
 * numbers must be reserved nonces, not 0; counters must not wrap; objects
 * to dereference must not be 0, the superblock object or an inode-table
 * object): -EINVAL and nothing changes. Atomic with respect to
 * checkpoints: a checkpoint contains all of a batch or none of it. */
int imgr_volume_put_inodes(imgr_volume *vol, const imgr_put_batch *b);
/* Remove an inode: its head is read and decoded, its Layout objects and
 * head object queued for deletion, the counters reduced. -ENOENT if absent. */
int imgr_volume_delete_inode(imgr_volume *vol, uint64_t inode_number);
/* Reserve FetchNonceRangeToReturn nonces, durable before returning. */
int imgr_volume_fetch_nonces(imgr_volume *vol, uint64_t *next, uint64_t *count);

typedef struct imgr_volume_status {
  uint64_t num_inodes;
  uint64_t object_count;
  uint64_t bytes_written;
  uint64_t bytes_referenced;
  uint64_t reserved_to_nonce;
  uint64_t superblock_object_number;      /* committed */
  uint64_t pending_deletes;               /* queued, not yet deleted */
  bool dirty;
} imgr_volume_status;
int imgr_volume_status_get(imgr_volume *vol, imgr_volume_status *out);
/* Checkpoint now and wait: everything applied before the call is durable
 * when it returns 0. */
int imgr_volume_flush(imgr_volume *vol);
/* Wait until no object delete is queued or running (tests, unserve). */
void imgr_volume_wait_deletes(imgr_volume *vol);

/* The volume's mounts by state, for GET /volume (imgr.md 2.4). */
typedef struct imgr_mount_counts {
  uint64_t healthy;
  uint64_t leases_expired;
  uint64_t auth_token_expired;
} imgr_mount_counts;

/* Storage token selection for the RPC layer (imgr.md 4.10): pick returns a
 * token into buf (0) or -EACCES when none; rejected is told about a token
 * that got 401; counts (may be NULL: all 0) fills in the volume's mounts.
 * The core calls these three without holding srv->mu or vol->mu, so they may
 * take the RPC layer's own locks. Without a source the volume uses its
 * static token. */
typedef struct imgr_token_source {
  int (*pick)(void *ctx, char *buf, size_t buflen, uint64_t *token_id);
  void (*rejected)(void *ctx, uint64_t token_id);
  void (*counts)(void *ctx, imgr_mount_counts *out);
  void *ctx;
} imgr_token_source;
void imgr_volume_set_token_source(imgr_volume *vol, const imgr_token_source *src);

#endif
