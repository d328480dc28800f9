/* An in-memory page store for sortedmap tests and the benchmark: objects
 * are byte arrays that nodes are appended to, and every node extent written
 * is tracked so that tests can check the discard accounting. */
#ifndef PFS_SM_TEST_STORE_H
#define PFS_SM_TEST_STORE_H

#include "sortedmap.h"

typedef struct sm_test_ext {
  uint64_t off, len;
  uint8_t state; /* 1 written, 2 discarded, 3 seen by a walk */
} sm_test_ext;

typedef struct sm_test_obj {
  uint8_t *p;
  size_t len, cap;
  sm_test_ext *ext;
  size_t next, ecap;
} sm_test_obj;

typedef struct sm_test_store {
  sm_test_obj *obj; /* indexed by object number */
  size_t nobj;
  uint64_t cur;     /* object nodes are appended to */
  uint64_t reads, writes, discards;
  uint64_t bad_discards; /* unknown extent, wrong length or twice */
  int fail_writes_after; /* >= 0: that many writes succeed, then -EIO */
  int fail_reads;        /* nonzero: reads fail with -EIO */
} sm_test_store;

void sm_test_store_init(sm_test_store *s, uint64_t first_object);
void sm_test_store_free(sm_test_store *s);
/* Later writes go to a fresh object (numbered above every existing one). */
void sm_test_store_next_object(sm_test_store *s);
/* Put raw bytes into object `obj` at its end (for decode tests). */
sm_ref sm_test_store_put(sm_test_store *s, uint64_t obj, const void *p, size_t n);

int sm_test_read(void *ctx, const sm_ref *ref, uint8_t *dst);
int sm_test_write(void *ctx, const uint8_t *bytes, size_t len, uint64_t *obj, uint64_t *off);
int sm_test_discard(void *ctx, const sm_ref *ref);

/* Written extents never discarded, and check that the tree references
 * exactly those: returns 0 if every written extent is either reachable
 * from t's root or discarded (never both, never neither), else -1 with a
 * message on stderr. Prunes t first. */
int sm_test_store_check(sm_test_store *s, sm_tree *t);

/* Configs of the three ProxyFS trees (ilayout.md 11.7) over this store. */
sm_config sm_test_cfg_u64(sm_test_store *s, size_t value_len);
sm_config sm_test_cfg_dir(sm_test_store *s);

#endif
