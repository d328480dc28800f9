/* Logger settings from a daemon's config section (kept apart from log.c so
 * that programs which configure the logger directly need not link conf). */
#include "logger.h"

#include <errno.h>

#include "conf.h"

static int optional_bool(const conf_map *m, const char *section, const char *option,
                         bool *value, char *err, size_t errlen) {
  if (conf_is_missing_or_empty(m, section, option)) return 0;
  return conf_get_bool(m, section, option, value, err, errlen);
}

int log_configure_from_conf(const struct conf_map *m, const char *section,
                            char *err, size_t errlen) {
  const char *path = NULL;
  bool to_console = true, trace = false;
  int rc;

  if (!conf_is_missing_or_empty(m, section, "LogFilePath")) {
    rc = conf_get_string(m, section, "LogFilePath", &path, err, errlen);
    if (rc < 0) return rc;
  }
  rc = optional_bool(m, section, "LogToConsole", &to_console, err, errlen);
  if (rc < 0) return rc;
  rc = optional_bool(m, section, "TraceEnabled", &trace, err, errlen);
  if (rc < 0) return rc;
  log_configure(path, to_console, trace);
  return 0;
}
