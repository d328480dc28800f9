/* Unit tests of the LMDB store: staging, commits, preconditions, the
 * monotonic guard, expiry, caps, the pid lock, durability across a
 * SIGKILL, and concurrent conditional writers. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ickpt.h"
#include "ilayout.h"

#define URL "swift:8080/v1/AUTH_test/con/0000000000000000"
#define URL2 "swift:8080/v1/AUTH_test/other/0000000000000000"

typedef struct {
  char dir[64];
  ickpt_store *s;
  char err[256];
} fixture;

static const ickpt_cond no_cond = {ICKPT_COND_NONE, 0};

static void cp_text(char out[68], uint64_t sbo, uint64_t rtn) {
  snprintf(out, 68, "%016llX %016llX %016llX %016llX", 1ull, (unsigned long long)sbo, 0x60ull,
           (unsigned long long)rtn);
}

static void rm_rf(const char *dir) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static ickpt_store_config config_of(const char *dir) {
  ickpt_store_config c = {.path = dir, .enforce_monotonic = true};
  return c;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/ickpt-test-XXXXXX");
  if (mkdtemp(f->dir) == NULL) {
    return -1;
  }
  ickpt_store_config c = config_of(f->dir);
  if (ickpt_store_open(&c, &f->s, f->err, sizeof f->err) != 0) {
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ickpt_store_close(f->s);
  rm_rf(f->dir);
  free(f);
  return 0;
}

/* Stage and commit value under txn; returns the commit's result. */
static int put_commit(fixture *f, const char *url, const char *txn, const char *value,
                      const ickpt_cond *cond, uint64_t *version) {
  int rc = ickpt_store_stage(f->s, url, txn, ICKPT_SET, value, strlen(value), cond, f->err,
                             sizeof f->err);
  if (rc != 0) {
    return rc;
  }
  return ickpt_store_commit(f->s, url, txn, version, f->err, sizeof f->err);
}

static void expect_stored(fixture *f, const char *url, const char *want, uint64_t want_version) {
  char *v;
  size_t n;
  uint64_t ver;
  assert_int_equal(ickpt_store_get(f->s, url, &v, &n, &ver, f->err, sizeof f->err), 0);
  assert_int_equal(n, strlen(want));
  assert_memory_equal(v, want, n);
  assert_true(ver == want_version);
  free(v);
}

static void expect_absent(fixture *f, const char *url) {
  char *v;
  size_t n;
  uint64_t ver;
  assert_int_equal(ickpt_store_get(f->s, url, &v, &n, &ver, f->err, sizeof f->err), -ENOENT);
  assert_null(v);
}

static void test_put_post_get(void **state) {
  fixture *f = *state;
  char a[68], b[68];
  cp_text(a, 3, 3);
  cp_text(b, 5, 9);
  uint64_t ver;
  expect_absent(f, URL);
  assert_int_equal(ickpt_store_stage(f->s, URL, "T1", ICKPT_SET, a, 67, &no_cond, f->err,
                                     sizeof f->err), 0);
  /* Staged is not visible to a GET of another key, nor stored. */
  expect_absent(f, URL2);
  assert_int_equal(ickpt_store_commit(f->s, URL, "T1", &ver, f->err, sizeof f->err), 0);
  assert_int_equal(ver, 1);
  expect_stored(f, URL, a, 1);
  assert_int_equal(put_commit(f, URL, "T2", b, &no_cond, &ver), 0);
  assert_int_equal(ver, 2);
  expect_stored(f, URL, b, 2);
  expect_absent(f, URL2);
  /* Same text again is accepted and is a new version. */
  assert_int_equal(put_commit(f, URL, "T3", b, &no_cond, &ver), 0);
  assert_int_equal(ver, 3);
}

static void test_post_unknown_and_retry(void **state) {
  fixture *f = *state;
  char a[68];
  cp_text(a, 3, 3);
  uint64_t ver;
  assert_int_equal(ickpt_store_commit(f->s, URL, "NOPE", &ver, f->err, sizeof f->err), -ESRCH);
  assert_int_equal(put_commit(f, URL, "T1", a, &no_cond, &ver), 0);
  assert_int_equal(ver, 1);
  /* A retried POST is answered again and does not apply twice. */
  assert_int_equal(ickpt_store_commit(f->s, URL, "T1", &ver, f->err, sizeof f->err), 0);
  assert_int_equal(ver, 1);
  expect_stored(f, URL, a, 1);
  /* The txn of one key is unknown for another. */
  assert_int_equal(ickpt_store_commit(f->s, URL2, "T1", &ver, f->err, sizeof f->err), -ESRCH);
  /* A GET discards staged txns of its key but not the commit memo. */
  assert_int_equal(ickpt_store_stage(f->s, URL, "T2", ICKPT_SET, a, 67, &no_cond, f->err,
                                     sizeof f->err), 0);
  assert_int_equal(ickpt_store_stage(f->s, URL2, "T2", ICKPT_SET, a, 67, &no_cond, f->err,
                                     sizeof f->err), 0);
  expect_stored(f, URL, a, 1);
  assert_int_equal(ickpt_store_commit(f->s, URL, "T2", &ver, f->err, sizeof f->err), -ESRCH);
  assert_int_equal(ickpt_store_commit(f->s, URL, "T1", &ver, f->err, sizeof f->err), 0);
  assert_int_equal(ver, 1);
  assert_int_equal(ickpt_store_commit(f->s, URL2, "T2", &ver, f->err, sizeof f->err), 0);
  assert_int_equal(ver, 1);
}

static void test_restage_replaces(void **state) {
  fixture *f = *state;
  char a[68], b[68];
  cp_text(a, 3, 3);
  cp_text(b, 4, 4);
  uint64_t ver;
  assert_int_equal(ickpt_store_stage(f->s, URL, "T1", ICKPT_SET, a, 67, &no_cond, f->err,
                                     sizeof f->err), 0);
  assert_int_equal(ickpt_store_stage(f->s, URL, "T1", ICKPT_SET, b, 67, &no_cond, f->err,
                                     sizeof f->err), 0);
  assert_int_equal(ickpt_store_txn_count(f->s), 1);
  assert_int_equal(ickpt_store_commit(f->s, URL, "T1", &ver, f->err, sizeof f->err), 0);
  expect_stored(f, URL, b, 1);
}

static void test_expiry(void **state) {
  fixture *f = *state;
  ickpt_store_close(f->s);
  ickpt_store_config c = config_of(f->dir);
  c.txn_timeout_ns = 50 * 1000000ull;
  assert_int_equal(ickpt_store_open(&c, &f->s, f->err, sizeof f->err), 0);
  char a[68];
  cp_text(a, 3, 3);
  uint64_t ver;
  assert_int_equal(ickpt_store_stage(f->s, URL, "T1", ICKPT_SET, a, 67, &no_cond, f->err,
                                     sizeof f->err), 0);
  assert_int_equal(ickpt_store_txn_count(f->s), 1);
  usleep(120 * 1000);
  assert_int_equal(ickpt_store_commit(f->s, URL, "T1", &ver, f->err, sizeof f->err), -ESRCH);
  assert_non_null(strstr(f->err, "not staged"));
  assert_int_equal(ickpt_store_txn_count(f->s), 0);
  expect_absent(f, URL);
  /* The commit memo expires too. */
  assert_int_equal(put_commit(f, URL, "T2", a, &no_cond, &ver), 0);
  usleep(120 * 1000);
  assert_int_equal(ickpt_store_commit(f->s, URL, "T2", &ver, f->err, sizeof f->err), -ESRCH);
}

static void test_delete(void **state) {
  fixture *f = *state;
  char a[68];
  cp_text(a, 3, 3);
  uint64_t ver = 99;
  /* Deleting an absent key commits fine. */
  assert_int_equal(ickpt_store_stage(f->s, URL, "D0", ICKPT_DELETE, NULL, 0, &no_cond, f->err,
                                     sizeof f->err), 0);
  assert_int_equal(ickpt_store_commit(f->s, URL, "D0", &ver, f->err, sizeof f->err), 0);
  assert_int_equal(ver, 0);
  assert_int_equal(put_commit(f, URL, "T1", a, &no_cond, &ver), 0);
  assert_int_equal(ickpt_store_stage(f->s, URL, "D1", ICKPT_DELETE, NULL, 0, &no_cond, f->err,
                                     sizeof f->err), 0);
  expect_stored(f, URL, a, 1); /* ...which discards D1 */
  assert_int_equal(ickpt_store_commit(f->s, URL, "D1", &ver, f->err, sizeof f->err), -ESRCH);
  assert_int_equal(ickpt_store_stage(f->s, URL, "D2", ICKPT_DELETE, NULL, 0, &no_cond, f->err,
                                     sizeof f->err), 0);
  ver = 99;
  assert_int_equal(ickpt_store_commit(f->s, URL, "D2", &ver, f->err, sizeof f->err), 0);
  assert_int_equal(ver, 0);
  expect_absent(f, URL);
}

static void test_preconditions(void **state) {
  fixture *f = *state;
  char a[68], b[68], c[68];
  cp_text(a, 3, 3);
  cp_text(b, 4, 4);
  cp_text(c, 5, 5);
  uint64_t ver;
  ickpt_cond m1 = {ICKPT_COND_MATCH, 1};
  ickpt_cond any = {ICKPT_COND_MATCH, 0};
  ickpt_cond none = {ICKPT_COND_NONE_MATCH, 0};
  /* If-Match on an absent key fails; If-None-Match: * succeeds once. */
  assert_int_equal(put_commit(f, URL, "T0", a, &m1, &ver), -ECANCELED);
  assert_int_equal(put_commit(f, URL, "T0", a, &any, &ver), -ECANCELED);
  assert_int_equal(put_commit(f, URL, "T1", a, &none, &ver), 0);
  assert_int_equal(put_commit(f, URL, "T2", b, &none, &ver), -ECANCELED);
  assert_non_null(strstr(f->err, "precondition failed"));
  /* Two writers read version 1 and both stage with If-Match 1: the first
   * commit wins, the second is refused at commit. */
  assert_int_equal(ickpt_store_stage(f->s, URL, "W1", ICKPT_SET, b, 67, &m1, f->err,
                                     sizeof f->err), 0);
  assert_int_equal(ickpt_store_stage(f->s, URL, "W2", ICKPT_SET, c, 67, &m1, f->err,
                                     sizeof f->err), 0);
  assert_int_equal(ickpt_store_commit(f->s, URL, "W1", &ver, f->err, sizeof f->err), 0);
  assert_int_equal(ver, 2);
  assert_int_equal(ickpt_store_commit(f->s, URL, "W2", &ver, f->err, sizeof f->err),
                   -ECANCELED);
  expect_stored(f, URL, b, 2);
  /* A failed commit consumes the txn. */
  assert_int_equal(ickpt_store_commit(f->s, URL, "W2", &ver, f->err, sizeof f->err), -ESRCH);
  /* Stale If-Match is refused already at stage. */
  assert_int_equal(ickpt_store_stage(f->s, URL, "W3", ICKPT_SET, c, 67, &m1, f->err,
                                     sizeof f->err), -ECANCELED);
  ickpt_cond m2 = {ICKPT_COND_MATCH, 2};
  assert_int_equal(put_commit(f, URL, "W4", c, &m2, &ver), 0);
  assert_int_equal(ver, 3);
  assert_int_equal(put_commit(f, URL, "W5", c, &any, &ver), 0);
  /* DELETE honours preconditions too. */
  assert_int_equal(ickpt_store_stage(f->s, URL, "D1", ICKPT_DELETE, NULL, 0, &m1, f->err,
                                     sizeof f->err), -ECANCELED);
}

static void test_monotonic(void **state) {
  fixture *f = *state;
  char a[68], lower_nonce[68], lower_sbo[68], higher[68];
  cp_text(a, 10, 100);
  cp_text(lower_nonce, 11, 99);
  cp_text(lower_sbo, 9, 101);
  cp_text(higher, 10, 200);
  uint64_t ver;
  assert_int_equal(put_commit(f, URL, "T1", a, &no_cond, &ver), 0);
  assert_int_equal(put_commit(f, URL, "T2", lower_nonce, &no_cond, &ver), -ESTALE);
  assert_string_equal(f->err, "stale checkpoint");
  assert_int_equal(put_commit(f, URL, "T3", lower_sbo, &no_cond, &ver), -ESTALE);
  /* Same text and non-lowering values pass; Go-style spelling too. */
  assert_int_equal(put_commit(f, URL, "T4", a, &no_cond, &ver), 0);
  assert_int_equal(put_commit(f, URL, "T5", "1 a 60 64", &no_cond, &ver), 0);
  assert_int_equal(put_commit(f, URL, "T6", higher, &no_cond, &ver), 0);
  expect_stored(f, URL, higher, 4);
  /* Not a checkpoint. */
  assert_int_equal(put_commit(f, URL, "T7", "hello", &no_cond, &ver), -EINVAL);
  assert_int_equal(put_commit(f, URL, "T7", "", &no_cond, &ver), -EINVAL);
  /* Stale at commit: two staged txns, the higher one commits first. */
  char h2[68], h3[68];
  cp_text(h2, 12, 300);
  cp_text(h3, 13, 400);
  assert_int_equal(ickpt_store_stage(f->s, URL, "S2", ICKPT_SET, h2, 67, &no_cond, f->err,
                                     sizeof f->err), 0);
  assert_int_equal(ickpt_store_stage(f->s, URL, "S3", ICKPT_SET, h3, 67, &no_cond, f->err,
                                     sizeof f->err), 0);
  assert_int_equal(ickpt_store_commit(f->s, URL, "S3", &ver, f->err, sizeof f->err), 0);
  assert_int_equal(ickpt_store_commit(f->s, URL, "S2", &ver, f->err, sizeof f->err), -ESTALE);
  expect_stored(f, URL, h3, 5);
}

static void test_guard_off_and_limits(void **state) {
  fixture *f = *state;
  ickpt_store_close(f->s);
  ickpt_store_config c = config_of(f->dir);
  c.enforce_monotonic = false;
  c.max_value = 8;
  c.max_staged = 3;
  assert_int_equal(ickpt_store_open(&c, &f->s, f->err, sizeof f->err), 0);
  uint64_t ver;
  assert_int_equal(put_commit(f, URL, "T1", "hello", &no_cond, &ver), 0);
  assert_int_equal(put_commit(f, URL, "T2", "", &no_cond, &ver), 0);
  expect_stored(f, URL, "", 2);
  assert_int_equal(put_commit(f, URL, "T3", "12345678", &no_cond, &ver), 0);
  assert_int_equal(put_commit(f, URL, "T4", "123456789", &no_cond, &ver), -E2BIG);
  /* T1..T3 are remembered commits: the cap counts them. */
  assert_int_equal(ickpt_store_txn_count(f->s), 3);
  assert_int_equal(ickpt_store_stage(f->s, URL2, "X", ICKPT_SET, "a", 1, &no_cond, f->err,
                                     sizeof f->err), -EBUSY);
  /* Re-staging an existing pair is not a new entry. */
  assert_int_equal(ickpt_store_stage(f->s, URL, "T3", ICKPT_SET, "a", 1, &no_cond, f->err,
                                     sizeof f->err), 0);
  /* Bad arguments. */
  assert_int_equal(ickpt_store_stage(f->s, URL, "a/b", ICKPT_SET, "a", 1, &no_cond, f->err,
                                     sizeof f->err), -EINVAL);
  assert_int_equal(ickpt_store_stage(f->s, "", "a", ICKPT_SET, "a", 1, &no_cond, f->err,
                                     sizeof f->err), -EINVAL);
  assert_int_equal(ickpt_store_commit(f->s, URL, "", &ver, f->err, sizeof f->err), -EINVAL);
}

static void test_reopen_and_pid_lock(void **state) {
  fixture *f = *state;
  char a[68];
  cp_text(a, 3, 3);
  uint64_t ver;
  assert_int_equal(put_commit(f, URL, "T1", a, &no_cond, &ver), 0);
  /* A second store on the same path is refused while the first is open. */
  ickpt_store *other;
  ickpt_store_config c = config_of(f->dir);
  char err[256];
  assert_int_equal(ickpt_store_open(&c, &other, err, sizeof err), -EBUSY);
  assert_null(other);
  assert_non_null(strstr(err, "in use by another ickpt"));
  ickpt_store_close(f->s);
  assert_int_equal(ickpt_store_open(&c, &f->s, f->err, sizeof f->err), 0);
  expect_stored(f, URL, a, 1);
  /* Staged state is volatile by design. */
  assert_int_equal(ickpt_store_txn_count(f->s), 0);
  /* DataBasePath is created (with parents) with mode 0700. */
  char sub[128];
  snprintf(sub, sizeof sub, "%s/x/y", f->dir);
  c.path = sub;
  assert_int_equal(ickpt_store_open(&c, &other, err, sizeof err), 0);
  struct stat st;
  assert_int_equal(stat(sub, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  ickpt_store_close(other);
  /* A path through a regular file fails cleanly. */
  snprintf(sub, sizeof sub, "%s/data.mdb/z", f->dir);
  assert_true(ickpt_store_open(&c, &other, err, sizeof err) < 0);
  assert_null(other);
}

static void test_backup(void **state) {
  fixture *f = *state;
  char a[68];
  cp_text(a, 3, 3);
  uint64_t ver;
  assert_int_equal(put_commit(f, URL, "T1", a, &no_cond, &ver), 0);
  char path[128];
  snprintf(path, sizeof path, "%s/backup.mdb", f->dir);
  assert_int_equal(ickpt_store_backup(f->s, path, f->err, sizeof f->err), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_true(st.st_size > 0);
  assert_int_equal(ickpt_store_backup(f->s, "/nonexistent/dir/b.mdb", f->err, sizeof f->err),
                   -ENOENT);
}

/* A child commits, tells the parent, and is SIGKILLed at once; the value
 * must be there when the parent opens the store. */
static void test_sigkill_after_commit(void **state) {
  fixture *f = *state;
  ickpt_store_close(f->s);
  f->s = NULL;
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    ickpt_store *s;
    ickpt_store_config c = config_of(f->dir);
    char err[256], a[68];
    cp_text(a, 7, 7);
    uint64_t ver;
    if (ickpt_store_open(&c, &s, err, sizeof err) != 0 ||
        ickpt_store_stage(s, URL, "K1", ICKPT_SET, a, 67, &no_cond, err, sizeof err) != 0 ||
        ickpt_store_commit(s, URL, "K1", &ver, err, sizeof err) != 0) {
      _exit(2);
    }
    if (write(p[1], "k", 1) != 1) {
      _exit(3);
    }
    for (;;) {
      pause(); /* killed here, store still open */
    }
  }
  close(p[1]);
  char c;
  assert_int_equal(read(p[0], &c, 1), 1);
  kill(pid, SIGKILL);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  close(p[0]);
  ickpt_store_config cfg = config_of(f->dir);
  assert_int_equal(ickpt_store_open(&cfg, &f->s, f->err, sizeof f->err), 0);
  char a[68];
  cp_text(a, 7, 7);
  expect_stored(f, URL, a, 1);
}

/* Concurrent writers: each adds 1 to ReservedToNonce with a read, then a
 * PUT/POST conditioned on the version read, retrying on 412/409. Nothing
 * may be lost: the final nonce equals the number of successful updates. */
#define WRITERS 4
#define UPDATES 25

typedef struct {
  fixture *f;
  int id;
  int done;
} writer_arg;

static void *writer(void *p) {
  writer_arg *w = p;
  char err[256];
  int n = 0;
  while (w->done < UPDATES && n < 100000) {
    n++;
    char *v;
    size_t len;
    uint64_t ver;
    if (ickpt_store_get(w->f->s, URL, &v, &len, &ver, err, sizeof err) != 0) {
      continue;
    }
    ilayout_checkpoint_v1 cp;
    int prc = ilayout_checkpoint_v1_decode(v, len, &cp);
    free(v);
    if (prc != 0) {
      return NULL;
    }
    char next[68], txn[32];
    cp_text(next, cp.superblock_object_number + 1, cp.reserved_to_nonce + 1);
    snprintf(txn, sizeof txn, "w%d-%d", w->id, n);
    ickpt_cond cond = {ICKPT_COND_MATCH, ver};
    if (ickpt_store_stage(w->f->s, URL, txn, ICKPT_SET, next, 67, &cond, err, sizeof err) != 0) {
      continue;
    }
    uint64_t nv;
    if (ickpt_store_commit(w->f->s, URL, txn, &nv, err, sizeof err) == 0) {
      w->done++;
    }
  }
  return NULL;
}

static void test_concurrent_writers(void **state) {
  fixture *f = *state;
  char a[68];
  cp_text(a, 0, 0);
  uint64_t ver;
  assert_int_equal(put_commit(f, URL, "T0", a, &no_cond, &ver), 0);
  pthread_t t[WRITERS];
  writer_arg w[WRITERS];
  for (int i = 0; i < WRITERS; i++) {
    w[i] = (writer_arg){f, i, 0};
    assert_int_equal(pthread_create(&t[i], NULL, writer, &w[i]), 0);
  }
  for (int i = 0; i < WRITERS; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(w[i].done, UPDATES);
  }
  cp_text(a, WRITERS * UPDATES, WRITERS * UPDATES);
  expect_stored(f, URL, a, 1 + WRITERS * UPDATES);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_put_post_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_post_unknown_and_retry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restage_replaces, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_preconditions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_monotonic, setup, teardown),
      cmocka_unit_test_setup_teardown(test_guard_off_and_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_and_pid_lock, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sigkill_after_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
