/*
 * The smallest daemon over ut_daemon_main, run by test_daemon as a child.
 * Its [FIXTURE] section holds the logger keys plus:
 *   StartFail  bool      start() fails with EADDRINUSE
 *   StopFail   bool      stop() fails with EIO
 *   StopDelay  duration  stop() sleeps this long first (signals during stop)
 * start() serves the standard routes on 127.0.0.1 (ephemeral port) and logs
 * "listening on port N"; hup() logs "HUP handled"; stop() logs "stopping".
 */
#include <errno.h>
#include <stdlib.h>

#include "logger.h"
#include "utils.h"

typedef struct {
  ut_http_server *http;
  bool stop_fail;
  uint64_t stop_delay_ns;
} fixture;

static bool get_flag(const conf_map *conf, const char *option)
{
  bool v = false;
  if (!conf_is_missing_or_empty(conf, "FIXTURE", option))
    conf_get_bool(conf, "FIXTURE", option, &v, NULL, 0);
  return v;
}

static int fx_start(const conf_map *conf, void *ctx)
{
  fixture *f = ctx;
  if (get_flag(conf, "StartFail"))
    return -EADDRINUSE;
  f->stop_fail = get_flag(conf, "StopFail");
  if (!conf_is_missing_or_empty(conf, "FIXTURE", "StopDelay"))
    conf_get_duration_ns(conf, "FIXTURE", "StopDelay", &f->stop_delay_ns, NULL, 0);
  ut_http_route routes[4];
  size_t n = ut_http_std_routes(conf, routes);
  ut_http_config cfg = { .addr = "127.0.0.1", .port = 0, .max_body = 1024 };
  int err = ut_http_server_start(&cfg, routes, n, &f->http);
  if (err != 0)
    return err;
  log_info("listening on port %u", (unsigned)ut_http_server_port(f->http));
  return 0;
}

static int fx_stop(void *ctx)
{
  fixture *f = ctx;
  log_info("stopping");
  ut_sleep_ns(f->stop_delay_ns);
  ut_http_server_stop(f->http);
  return f->stop_fail ? -EIO : 0;
}

static void fx_hup(void *ctx)
{
  log_info("HUP handled");
}

int main(int argc, char *argv[])
{
  fixture f = { 0 };
  const ut_daemon d = {
    .name = "fixture",
    .section = "FIXTURE",
    .start = fx_start,
    .stop = fx_stop,
    .hup = fx_hup,
    .ctx = &f,
  };
  return ut_daemon_main(&d, argc, argv);
}
