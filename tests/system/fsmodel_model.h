/*
 * fsmodel_model: the in-memory model the fsmodel checker compares a real
 * file system against. A small set of named slots, each either absent or a
 * regular file whose bytes are held in memory. Pure logic, no system calls,
 * so it is unit-tested on its own (tests/system/test_fsmodel_model.c).
 *
 * Functions return 0 or a negative errno. They are not thread-safe; one
 * model belongs to one checker.
 */
#ifndef FSMODEL_MODEL_H
#define FSMODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* splitmix64: small, seedable, the same sequence on every platform. */
typedef struct {
  uint64_t state;
} fsm_rng;

void fsm_rng_seed(fsm_rng *r, uint64_t seed);
uint64_t fsm_rng_next(fsm_rng *r);
/* Uniform in [0, n); n must be > 0. */
uint64_t fsm_rng_below(fsm_rng *r, uint64_t n);
void fsm_rng_fill(fsm_rng *r, uint8_t *buf, size_t len);

typedef struct fsm_model fsm_model;

/* A model of NFILES slots, each file at most MAX_SIZE bytes. NULL when out
 * of memory or an argument is 0. */
fsm_model *fsm_model_create(size_t nfiles, size_t max_size);
void fsm_model_destroy(fsm_model *m);

size_t fsm_model_nfiles(const fsm_model *m);
size_t fsm_model_max_size(const fsm_model *m);
bool fsm_model_exists(const fsm_model *m, size_t slot);
/* Size of the file in SLOT; 0 when absent. */
size_t fsm_model_size(const fsm_model *m, size_t slot);
/* The file's bytes (valid until the next mutation); NULL when empty. */
const uint8_t *fsm_model_data(const fsm_model *m, size_t slot);

/* Creates an empty file in SLOT if absent (open with O_CREAT). */
void fsm_model_create_file(fsm_model *m, size_t slot);
/* pwrite: the gap between the old end and OFF reads as zeros afterwards.
 * -EFBIG when OFF + LEN exceeds the model's maximum size; -ENOENT if absent. */
int fsm_model_write(fsm_model *m, size_t slot, uint64_t off, const uint8_t *buf, size_t len);
/* pread into OUT: returns the number of bytes a file system must return
 * (short at end of file), or -ENOENT. */
long fsm_model_read(const fsm_model *m, size_t slot, uint64_t off, uint8_t *out, size_t len);
/* ftruncate to SIZE (zero-filled growth). -EFBIG beyond the maximum. */
int fsm_model_truncate(fsm_model *m, size_t slot, uint64_t size);
/* fallocate mode 0: the size grows to OFF + LEN if that is larger; the
 * bytes already there do not change. KEEP_SIZE changes nothing visible, so
 * it has no model function. */
int fsm_model_allocate(fsm_model *m, size_t slot, uint64_t off, uint64_t len);
/* fallocate PUNCH_HOLE|KEEP_SIZE: [OFF, OFF+LEN) inside the file reads as
 * zeros; the size does not change. */
int fsm_model_punch(fsm_model *m, size_t slot, uint64_t off, uint64_t len);
/* rename(FROM, TO): -ENOENT when FROM is absent; TO is replaced; FROM == TO
 * is a no-op that succeeds. */
int fsm_model_rename(fsm_model *m, size_t from, size_t to);
/* unlink: -ENOENT when absent. */
int fsm_model_unlink(fsm_model *m, size_t slot);

/* The first index where A (ALEN bytes) and B (BLEN bytes) differ, or -1
 * when they are equal; a length difference counts at the shorter length. */
long fsm_first_diff(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
