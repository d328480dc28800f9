/*
 * ic_conf: the [ICLIENT] section (iclient.md 1.2).
 *
 * Every key of the original is read with its original name. Keys the
 * original fetched with log-fatal are required here too (a missing one
 * fails with the conf library's "[ICLIENT]<Key> missing"); the optional ones
 * are RetryRPCCACertFilePath, LogFilePath, LogToConsole (default true),
 * HTTPServerIPAddr (default 0.0.0.0), HTTPServerPort (default 0 = off), as in
 * the original, plus the C port's new keys:
 *   InodeCacheLimit     (u64, default 10000)  cap on cached inodes; clean
 *                       inodes nobody uses are evicted LRU first
 *   InodePayloadEvictBytesLimit (u64, default 268435456) cap on the bytes of
 *                       cached B+tree pages (directories, extent maps), on
 *                       top of the original's page counts: one page of long
 *                       names can be hundreds of KiB (0 = no byte cap)
 *   MountRetryDuration  (duration, default 0) how long start keeps retrying
 *                       Mount while imgr is not up (iclient.md 10.7)
 *   MountKeepAlivePeriod (duration, default 60s, 0 = off) RenewMount this
 *                       often, so imgr (which unmounts a mount silent for its
 *                       MountTimeout, default 1h) keeps an idle mount
 */
#ifndef PFS_IC_CONF_H
#define PFS_IC_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf_map;

#define IC_CONF_SECTION "ICLIENT"

typedef struct ic_config {
  char *volume_name;
  char *mount_point_dir_path;
  uint32_t fuse_block_size;
  bool fuse_allow_other;
  uint16_t fuse_max_background;
  uint16_t fuse_congestion_threshhold;
  uint32_t fuse_max_read;
  uint32_t fuse_max_write;
  uint64_t fuse_entry_valid_ns;
  uint64_t fuse_attr_valid_ns;
  char *auth_plug_in_path;      /* accepted, ignored: auth v1 is built into swiftclient */
  char *auth_plug_in_env_name;  /* "" when unused */
  char *auth_plug_in_env_value; /* "" when AuthPlugInEnvName is used; secret */
  uint64_t swift_timeout_ns;
  uint64_t swift_retry_limit;
  uint64_t swift_retry_delay_ns;
  uint8_t swift_retry_delay_variance; /* 1..100 */
  double swift_retry_exponential_backoff;
  uint32_t swift_connection_pool_size;
  bool swift_put_etag; /* SwiftPutETag (addition): false unless set, unlike swiftclient's */
  char *retry_rpc_public_ip_addr;
  uint16_t retry_rpc_port;
  uint64_t retry_rpc_deadline_io_ns;
  uint64_t retry_rpc_keep_alive_period_ns;
  char *retry_rpc_ca_cert_file_path; /* "" = plain TCP */
  uint64_t max_shared_leases;
  uint64_t max_exclusive_leases;
  uint64_t inode_payload_evict_low_limit;
  uint64_t inode_payload_evict_high_limit;
  uint64_t dir_inode_max_keys_per_bplustree_page;
  uint64_t file_inode_max_keys_per_bplustree_page;
  uint64_t read_cache_line_size;
  uint64_t read_cache_line_count_max;
  uint64_t file_flush_trigger_size;
  uint64_t file_flush_trigger_duration_ns;
  uint64_t inode_lock_retry_delay_ns;
  uint8_t inode_lock_retry_delay_variance; /* percent, 0..100 */
  char *log_file_path;                     /* "" = none */
  bool log_to_console;
  bool trace_enabled;
  bool fuse_log_enabled;
  char *http_server_ip_addr;
  uint16_t http_server_port; /* 0 = no HTTP server */
  uint64_t inode_cache_limit;
  uint64_t inode_payload_evict_bytes_limit;
  uint64_t mount_retry_duration_ns;
  uint64_t mount_keep_alive_period_ns;
  /* New in the C port: threads and queues that were fixed numbers. */
  uint32_t fuse_max_threads;       /* FUSEMaxThreads: FUSE worker threads */
  uint32_t segment_upload_threads; /* SegmentUploadThreads: background log segment PUTs */
  uint32_t segment_upload_limit;   /* SegmentUploadLimit: full segments not stored yet */
  uint32_t read_ahead_lines;       /* ReadAheadLines: 0 = no read-ahead */
  uint32_t read_ahead_threads;     /* ReadAheadThreads */
} ic_config;

/* The most any thread or queue key may ask for. */
#define IC_CONF_THREADS_MAX 1024

/*
 * Fill cfg from [ICLIENT] of m. 0, or -ENOENT (missing key) / -EINVAL (bad
 * value) with a message naming the key in err. On failure cfg holds nothing
 * that needs freeing. On success release with ic_config_free().
 */
int ic_config_load(const struct conf_map *m, ic_config *cfg, char *err, size_t errlen);
void ic_config_free(ic_config *cfg);

/* The config as a JSON text for logging and GET /config, with
 * AuthPlugInEnvValue redacted (iclient.md 10.7). malloc'd; NULL on ENOMEM. */
char *ic_config_to_json(const ic_config *cfg);

#endif
