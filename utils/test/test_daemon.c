/* utils: the daemon skeleton, driven from outside through daemon_fixture. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_client.h"
#include "utils.h"

#define WAIT_NS (20ull * 1000000000u) /* generous: the machine is shared */

typedef struct {
  char dir[64];
  char conf[128];
  char log[128];
  char err[128]; /* the child's stderr */
} tmp;

static int setup(void **state)
{
  tmp *t = calloc(1, sizeof *t);
  strcpy(t->dir, "/tmp/ut_daemon_XXXXXX");
  if (mkdtemp(t->dir) == NULL)
    return -1;
  snprintf(t->conf, sizeof t->conf, "%s/fixture.conf", t->dir);
  snprintf(t->log, sizeof t->log, "%s/fixture.log", t->dir);
  snprintf(t->err, sizeof t->err, "%s/stderr", t->dir);
  FILE *f = fopen(t->conf, "w");
  fprintf(f, "[FIXTURE]\nLogFilePath: %s\nLogToConsole: false\nTraceEnabled: false\n", t->log);
  fclose(f);
  *state = t;
  return 0;
}

static int teardown(void **state)
{
  tmp *t = *state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", t->dir);
  int rc = system(cmd);
  free(t);
  return rc == 0 ? 0 : -1;
}

/* Start the fixture with argv[1..] = args (NULL-terminated), stderr to t->err. */
static pid_t spawn(const tmp *t, const char *const *args)
{
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(t->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    const char *argv[8] = { UT_DAEMON_FIXTURE };
    for (int i = 0; args[i] != NULL && i < 6; i++)
      argv[i + 1] = args[i];
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  return pid;
}

/* Exit status of pid, or -1 if it did not exit normally in time (then it is
 * killed so the test cannot hang). */
static int wait_exit(pid_t pid)
{
  uint64_t deadline = ut_now_ns() + WAIT_NS;
  int st;
  while (waitpid(pid, &st, WNOHANG) == 0) {
    if (ut_now_ns() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    ut_sleep_ns(10 * 1000000ull);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Whole file as a string ("" if absent); caller frees. */
static char *slurp(const char *path)
{
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return strdup("");
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  int c;
  while ((c = fgetc(f)) != EOF)
    fputc(c, m);
  fclose(f);
  fclose(m);
  return buf;
}

static bool file_has(const char *path, const char *needle)
{
  char *s = slurp(path);
  bool found = strstr(s, needle) != NULL;
  free(s);
  return found;
}

static bool wait_for(const char *path, const char *needle)
{
  uint64_t deadline = ut_now_ns() + WAIT_NS;
  while (!file_has(path, needle)) {
    if (ut_now_ns() > deadline)
      return false;
    ut_sleep_ns(10 * 1000000ull);
  }
  return true;
}

static void test_no_conf(void **state)
{
  tmp *t = *state;
  const char *args[] = { NULL };
  assert_int_equal(wait_exit(spawn(t, args)), 1);
  assert_true(file_has(t->err, "no .conf file specified"));
}

static void test_bad_conf(void **state)
{
  tmp *t = *state;
  char missing[160];
  snprintf(missing, sizeof missing, "%s/missing.conf", t->dir);
  const char *args[] = { missing, NULL };
  assert_int_equal(wait_exit(spawn(t, args)), 1);
  assert_true(file_has(t->err, "failed to load config: "));
}

static void test_bad_override(void **state)
{
  tmp *t = *state;
  const char *args[] = { t->conf, "FIXTURE.StopFail=false", "no-dot-here", NULL };
  assert_int_equal(wait_exit(spawn(t, args)), 1);
  assert_true(file_has(t->err, "failed to apply config overrides: "));
  assert_false(file_has(t->log, "UP"));
}

static void test_start_fails(void **state)
{
  tmp *t = *state;
  const char *args[] = { t->conf, "FIXTURE.StartFail=true", NULL };
  assert_int_equal(wait_exit(spawn(t, args)), 1);
  assert_true(file_has(t->err, "fixture.Start() failed: Address already in use"));
  assert_true(file_has(t->log, "[ERROR] fixture.Start() failed: Address already in use"));
  assert_false(file_has(t->log, "UP"));
}

static void test_lifecycle(void **state)
{
  tmp *t = *state;
  const char *args[] = { t->conf, NULL };
  pid_t pid = spawn(t, args);
  assert_true(wait_for(t->log, "[INFO] UP\n"));

  /* the daemon's HTTP server answers, so start() really ran */
  char *log = slurp(t->log);
  const char *at = strstr(log, "listening on port ");
  assert_non_null(at);
  unsigned port = (unsigned)strtoul(at + strlen("listening on port "), NULL, 10);
  free(log);
  tc_resp r;
  assert_int_equal(tc_request((uint16_t)port, "GET", "/version", "", NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, PFS_VERSION);
  tc_free(&r);

  /* rotation: rename, HUP, the next line creates a new file */
  char rotated[160];
  snprintf(rotated, sizeof rotated, "%s.1", t->log);
  assert_int_equal(rename(t->log, rotated), 0);
  assert_int_equal(kill(pid, SIGHUP), 0);
  assert_true(wait_for(t->log, "HUP handled"));
  assert_false(file_has(rotated, "HUP handled"));

  assert_int_equal(kill(pid, SIGTERM), 0);
  assert_int_equal(wait_exit(pid), 0);
  assert_true(file_has(rotated, "[INFO] UP\n"));
  assert_true(file_has(t->log, "[INFO] DOWN\n"));
  assert_true(file_has(t->log, "stopping"));
  /* DOWN comes before stop() runs */
  char *s = slurp(t->log);
  assert_true(strstr(s, "DOWN") < strstr(s, "stopping"));
  free(s);
}

static void test_second_signal_during_stop(void **state)
{
  tmp *t = *state;
  const char *args[] = { t->conf, "FIXTURE.StopDelay=500ms", NULL };
  pid_t pid = spawn(t, args);
  assert_true(wait_for(t->log, "[INFO] UP\n"));
  assert_int_equal(kill(pid, SIGINT), 0);
  assert_true(wait_for(t->log, "stopping"));
  assert_int_equal(kill(pid, SIGTERM), 0);
  assert_int_equal(kill(pid, SIGINT), 0);
  assert_int_equal(kill(pid, SIGHUP), 0);
  assert_int_equal(wait_exit(pid), 0);
}

static void test_stop_fails(void **state)
{
  tmp *t = *state;
  const char *args[] = { t->conf, "FIXTURE.StopFail=true", NULL };
  pid_t pid = spawn(t, args);
  assert_true(wait_for(t->log, "[INFO] UP\n"));
  assert_int_equal(kill(pid, SIGTERM), 0);
  assert_int_equal(wait_exit(pid), 1);
  assert_true(file_has(t->err, "fixture.Stop() failed: Input/output error"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_no_conf, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_conf, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_override, setup, teardown),
    cmocka_unit_test_setup_teardown(test_start_fails, setup, teardown),
    cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
    cmocka_unit_test_setup_teardown(test_second_signal_during_stop, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stop_fails, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
