#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "logger.h"

static char dir[64];
static char path[128];

static int setup(void **state) {
  (void)state;
  strcpy(dir, "/tmp/test_logger.XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(path, sizeof path, "%s/x.log", dir);
  return 0;
}

static int teardown(void **state) {
  char moved[160];
  (void)state;
  log_configure(NULL, false, false);
  snprintf(moved, sizeof moved, "%s.1", path);
  unlink(path);
  unlink(moved);
  rmdir(dir);
  return 0;
}

/* Reads the whole file (test files are small). */
static char *slurp(const char *p) {
  FILE *f = fopen(p, "r");
  char *buf;
  long n;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  rewind(f);
  buf = calloc(1, (size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
  fclose(f);
  return buf;
}

static void set_tz(const char *tz) {
  setenv("TZ", tz, 1);
  tzset();
}

static void test_time_format(void **state) {
  char buf[64];
  (void)state;
  set_tz("UTC");
  log_format_time(0, buf, sizeof buf);
  assert_string_equal(buf, "1970-01-01T00:00:00Z");
  log_format_time(1500000000LL, buf, sizeof buf);
  assert_string_equal(buf, "1970-01-01T00:00:01.5Z");
  log_format_time(1669918272LL * 1000000000LL + 123456789, buf, sizeof buf);
  assert_string_equal(buf, "2022-12-01T18:11:12.123456789Z");
  set_tz("PST8PDT");
  log_format_time(1669918272LL * 1000000000LL + 123456789, buf, sizeof buf);
  assert_string_equal(buf, "2022-12-01T10:11:12.123456789-08:00");
  set_tz("Asia/Kolkata");
  log_format_time(1669918272LL * 1000000000LL + 120000000, buf, sizeof buf);
  assert_string_equal(buf, "2022-12-01T23:41:12.12+05:30");
  set_tz("UTC");
}

/* "[<stamp>][LEVEL] msg" with a plausible stamp. */
static void assert_line(const char *line, const char *level, const char *msg) {
  char expect[256];
  const char *close = strchr(line, ']');
  assert_non_null(close);
  assert_int_equal(line[0], '[');
  assert_true(close - line >= 21); /* [YYYY-MM-DDTHH:MM:SSZ */
  snprintf(expect, sizeof expect, "][%s] %s\n", level, msg);
  assert_memory_equal(close, expect, strlen(expect));
}

static void test_file_levels_and_trace(void **state) {
  char *text, *second, *third;
  (void)state;
  set_tz("UTC");
  log_configure(path, false, false);
  log_info("hello %d", 42);
  log_trace("hidden");
  log_configure(path, false, true);
  log_trace("shown");
  log_error("bad %s", "thing");
  log_warn("careful");

  text = slurp(path);
  assert_non_null(text);
  assert_line(text, "INFO", "hello 42");
  second = strchr(text, '\n') + 1;
  assert_line(second, "TRACE", "shown");
  third = strchr(second, '\n') + 1;
  assert_line(third, "ERROR", "bad thing");
  assert_line(strchr(third, '\n') + 1, "WARN", "careful");
  assert_null(strstr(text, "hidden"));
  free(text);
}

static void test_long_line(void **state) {
  char *big = malloc(10000), *text;
  (void)state;
  memset(big, 'x', 9999);
  big[9999] = '\0';
  log_configure(path, false, false);
  log_info("%s", big);
  text = slurp(path);
  assert_non_null(strstr(text, big));
  assert_int_equal(text[strlen(text) - 1], '\n');
  free(text);
  free(big);
}

static void test_reopen_after_rotation(void **state) {
  char moved[160];
  char *old, *fresh;
  (void)state;
  snprintf(moved, sizeof moved, "%s.1", path);
  log_configure(path, false, false);
  log_info("before");
  assert_int_equal(rename(path, moved), 0);
  log_info("still old"); /* fd still open: goes to the moved file */
  log_reopen();
  log_info("after");
  old = slurp(moved);
  fresh = slurp(path);
  assert_non_null(old);
  assert_non_null(fresh);
  assert_non_null(strstr(old, "still old"));
  assert_null(strstr(old, "after"));
  assert_non_null(strstr(fresh, "after"));
  free(old);
  free(fresh);
}

static void test_unopenable_file_is_skipped(void **state) {
  (void)state;
  log_configure("/nonexistent-dir/x.log", false, false);
  log_info("goes nowhere, and does not crash");
}

#define THREADS 4
#define LINES 2000

static void *writer(void *arg) {
  for (int i = 0; i < LINES; i++) log_info("thread %ld line %d padding-padding-padding", (long)arg, i);
  return NULL;
}

static void test_threads_never_interleave(void **state) {
  pthread_t t[THREADS];
  char *text, *line;
  int count = 0;
  (void)state;
  log_configure(path, false, false);
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, writer, (void *)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  text = slurp(path);
  for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    assert_int_equal(line[0], '[');
    assert_non_null(strstr(line, "][INFO] thread "));
    assert_non_null(strstr(line, " padding-padding-padding"));
    count++;
  }
  assert_int_equal(count, THREADS * LINES);
  free(text);
}

static void test_fatal_exits_1(void **state) {
  int status;
  pid_t pid;
  char *text;
  (void)state;
  log_configure(path, false, false);
  pid = fork();
  if (pid == 0) log_fatal("the end %d", 7);
  assert_true(pid > 0);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 1);
  text = slurp(path);
  assert_line(text, "FATAL", "the end 7");
  assert_non_null(strstr(text, "][FATAL] STACK "));
  free(text);
}

static void test_configure_from_conf(void **state) {
  conf_map *m = conf_new();
  const char *p[] = { path };
  const char *yes[] = { "true" };
  const char *bad[] = { "maybe" };
  char err[CONF_ERR_MAX];
  char *text;
  (void)state;
  conf_set(m, "IMGR", "LogFilePath", p, 1);
  conf_set(m, "IMGR", "LogToConsole", NULL, 0);
  conf_set(m, "IMGR", "TraceEnabled", yes, 1);
  assert_int_equal(log_configure_from_conf(m, "IMGR", err, sizeof err), 0);
  log_trace("traced");
  text = slurp(path);
  assert_line(text, "TRACE", "traced");
  free(text);

  conf_set(m, "IMGR", "TraceEnabled", bad, 1);
  assert_int_equal(log_configure_from_conf(m, "IMGR", err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "maybe"));
  conf_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_time_format),
    cmocka_unit_test_setup_teardown(test_file_levels_and_trace, setup, teardown),
    cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reopen_after_rotation, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unopenable_file_is_skipped, setup, teardown),
    cmocka_unit_test_setup_teardown(test_threads_never_interleave, setup, teardown),
    cmocka_unit_test_setup_teardown(test_fatal_exits_1, setup, teardown),
    cmocka_unit_test_setup_teardown(test_configure_from_conf, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
