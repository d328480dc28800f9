/*
 * Test doubles for the iclient unit tests (never linked into iclient):
 *   ic_fake_imgr: an in-process stand-in for imgr's RPC API: an inode table
 *     in memory, nonce ranges, superblock counters adjusted by the deltas,
 *     the dereferenced objects recorded, and every lease granted;
 *   ic_mem_store: the volume's objects in memory, write-once (a second PUT
 *     of one object number fails the test), with fault switches.
 */
#ifndef PFS_IC_TEST_DOUBLES_H
#define PFS_IC_TEST_DOUBLES_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ic_internal.h"

typedef struct ic_fake_imgr {
  pthread_mutex_t mu;
  ic_inode_table_entry *table;
  size_t ntable, captable;
  uint64_t next_nonce, range; /* range = NumNoncesFetched per FetchNonceRange */
  int64_t object_count, bytes_written, bytes_referenced;
  uint64_t *deref;
  size_t nderef, capderef;
  uint64_t puts, leases[5], nonce_fetches;
  int fail_puts; /* > 0: that many PutInodeTableEntries fail with EMissingLease */
  /* > 0: that many PutInodeTableEntries are applied, then answered with
   * EMissingLease (the reply lost at an imgr restart, the re-sent copy
   * refused under the new mount) */
  int land_failed_puts;
} ic_fake_imgr;

extern const ic_imgr_ops ic_fake_imgr_ops;
void ic_fake_imgr_init(ic_fake_imgr *f, uint64_t first_nonce, uint64_t range);
void ic_fake_imgr_fini(ic_fake_imgr *f);
/* Locked reads for tests whose other threads (FUSE) call the fake. */
size_t ic_fake_imgr_inodes(ic_fake_imgr *f);
uint64_t ic_fake_imgr_leases(ic_fake_imgr *f, uint32_t lease_request_type);
/* The table entry of ino, or NULL. */
const ic_inode_table_entry *ic_fake_imgr_entry(ic_fake_imgr *f, uint64_t ino);
bool ic_fake_imgr_dereferenced(ic_fake_imgr *f, uint64_t obj);
/* What imgr's POST /volume does for the root: inode 1, a directory with
 * "." and "..", written to the store and entered in the table. */
int ic_fake_imgr_format(ic_fake_imgr *f, const ic_store_ops *store, void *store_ctx);

typedef struct ic_mem_object {
  uint64_t number;
  uint8_t *data;
  size_t len;
} ic_mem_object;

typedef struct ic_mem_store {
  pthread_mutex_t mu;
  ic_mem_object *objs;
  size_t nobjs, capobjs;
  uint64_t gets, tail_gets, puts, double_puts;
  uint64_t get_bytes; /* bytes the ranged GETs returned */
  int fail_puts; /* > 0: that many PUTs fail with -EIO */
  int fail_gets; /* > 0: that many ranged GETs fail with -EIO */
} ic_mem_store;

extern const ic_store_ops ic_mem_store_ops;
void ic_mem_store_init(ic_mem_store *s);
void ic_mem_store_fini(ic_mem_store *s);
/* Store an object directly (test setup). */
int ic_mem_store_add(ic_mem_store *s, uint64_t number, const void *data, size_t len);
const ic_mem_object *ic_mem_store_find(ic_mem_store *s, uint64_t number);

#endif
