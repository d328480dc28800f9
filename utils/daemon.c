/* utils: the daemon skeleton every proxyfs-c executable runs (utils.h). */
#include "utils.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "logger.h"

/* Errors before and around start/stop go to stderr as the original prints
 * them, and to the log; when the log already writes to the console, once. */
static void report_failure(const ut_daemon *d, const conf_map *conf, const char *what,
                           int err)
{
  bool to_console = true; /* the logger's default */
  if (!conf_is_missing_or_empty(conf, d->section, "LogToConsole"))
    conf_get_bool(conf, d->section, "LogToConsole", &to_console, NULL, 0);
  log_error("%s.%s() failed: %s", d->name, what, strerror(-err));
  if (!to_console)
    fprintf(stderr, "%s.%s() failed: %s\n", d->name, what, strerror(-err));
}

/* Throw away signals that arrived while we were not waiting for them (a
 * second SIGTERM during stop), so restoring the caller's mask cannot
 * deliver them. */
static void drain(const sigset_t *set)
{
  const struct timespec zero = { 0, 0 };
  while (sigtimedwait(set, NULL, &zero) > 0)
    ;
}

int ut_daemon_main(const ut_daemon *d, int argc, char *argv[])
{
  char err[CONF_ERR_MAX];
  conf_map *conf = NULL;
  /* argv[0] is the program; conf_load_args wants the .conf path first. */
  if (conf_load_args(argc > 0 ? argc - 1 : 0, argc > 0 ? argv + 1 : argv, &conf, err,
                     sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  if (log_configure_from_conf(conf, d->section, err, sizeof err) != 0) {
    fprintf(stderr, "%s.Start() failed: %s\n", d->name, err);
    conf_free(conf);
    return 1;
  }

  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe;
  sigaction(SIGPIPE, &ign, &old_pipe);

  int status = 0;
  int rc = d->start(conf, d->ctx);
  if (rc != 0) {
    report_failure(d, conf, "Start", rc);
    status = 1;
    goto out;
  }
  log_info("UP");

  for (;;) {
    int sig;
    if (sigwait(&set, &sig) != 0)
      continue;
    if (sig == SIGHUP) {
      log_reopen();
      if (d->hup != NULL)
        d->hup(d->ctx);
      continue;
    }
    break; /* SIGINT or SIGTERM */
  }
  log_info("DOWN");
  /* The signals stay blocked and unwaited during stop: a second SIGINT or
   * SIGTERM just stays pending and is drained below. */
  rc = d->stop(d->ctx);
  if (rc != 0) {
    report_failure(d, conf, "Stop", rc);
    status = 1;
  }
out:
  drain(&set);
  sigaction(SIGPIPE, &old_pipe, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  conf_free(conf);
  return status;
}
