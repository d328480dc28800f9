/*
 * iswift: the Swift emulator (iswift.md), as a library for in-process use by
 * tests and by the iswift executable.
 *
 * Behaviour is the original's unless emulate_real_swift is set, which makes
 * the visible differences of iswift.md section 7 behave like real OpenStack
 * Swift (checked against swift-aio.sh, Swift 2.30): status codes of bad
 * requests, name and metadata limits, JSON listings with limit/prefix/
 * end_marker/delimiter, ETag, object PUT/POST replacing metadata, 404 for missing
 * parents, 411 without a length, account auto-creation.
 *
 * Deliberate deviation in both modes: a Range that starts at or past the end
 * of the object gets 416 with "Content-Range: bytes *\/<size>" (the original
 * dropped the connection after a panic; real Swift answers 416).
 *
 * Additions (all off by default): a directory store that survives restarts,
 * a memory cap (507 when exceeded), a maximum object size (413), and fault
 * injection for tests, set by config or at run time through
 * POST /admin/faults from loopback when fault_admin is enabled.
 */
#ifndef PFS_ISWIFT_H
#define PFS_ISWIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf_map;

typedef struct iswift iswift;

typedef struct iswift_faults {
  double error_rate;      /* percent of /v1/ requests answered 503 or 500 */
  uint64_t latency_ns;    /* added before each /v1/ request is handled */
  double drop_rate;       /* percent of /v1/ requests whose connection is closed
                             without a reply */
  double truncate_rate;   /* percent of GET bodies cut in half (the connection
                             is closed after the partial body) */
} iswift_faults;

typedef struct iswift_config {
  char addr[64];                     /* SwiftProxyIPAddr */
  uint16_t port;                     /* SwiftProxyTCPPort; 0 = ephemeral */
  uint64_t max_account_name_length;  /* MaxAccountNameLength */
  uint64_t max_container_name_length;
  uint64_t max_object_name_length;
  uint64_t account_listing_limit;    /* AccountListingLimit */
  uint64_t container_listing_limit;  /* ContainerListingLimit */
  /* additions */
  bool emulate_real_swift;           /* EmulateRealSwift (default false) */
  char store_dir[512];               /* StoreDirPath ("" = memory only; else
                                        bodies go to their files as they arrive,
                                        and are served from them mapped) */
  uint64_t max_memory;               /* MaxMemoryBytes: object bytes held plus
                                        request bodies being received (1 GiB) */
  uint64_t max_object_size;          /* MaxObjectSize (64 MiB) */
  unsigned max_connections;          /* MaxConnections (256) */
  bool fault_admin;                  /* FaultAdminEnabled */
  iswift_faults faults;              /* FaultErrorRate, FaultLatency,
                                        FaultDropRate, FaultTruncateRate */
} iswift_config;

/* The sample values of iswift.conf (127.0.0.1:8080, 256/256/1024,
 * 10000/10000) and the additions' defaults. */
void iswift_config_defaults(iswift_config *cfg);

/* Read [ISWIFT]: the original's keys are required; the additions are
 * optional. Message in err. */
int iswift_config_from_conf(const struct conf_map *m, iswift_config *cfg, char *err,
                            size_t errlen);

/* Starts serving on a thread of its own (loads store_dir first, if set). */
int iswift_start(const iswift_config *cfg, iswift **out);
uint16_t iswift_port(const iswift *s);
/* Invalidates every issued token (the next request with one gets 401). */
void iswift_force_reauth(iswift *s);
void iswift_set_faults(iswift *s, const iswift_faults *f);
/* Requests received and TCP connections accepted so far, for tests that
 * count retries and connection reuse. */
uint64_t iswift_requests(const iswift *s);
uint64_t iswift_connections(const iswift *s);
/* Closes all connections, frees all state (the directory store stays). */
void iswift_stop(iswift *s);

#endif
