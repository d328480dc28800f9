/*
 * logger: the i-generation daemons' log (support.md section 2).
 *
 * Line format, one write(2) per line:
 *   [2022-12-01T10:11:12.123456789-08:00][INFO] Volume testvol mounted
 * RFC 3339 local time with nanoseconds, trailing zeros of the fraction
 * removed ("Z" for UTC). Levels FATAL, ERROR, WARN, INFO, TRACE (TRACE only
 * when enabled). The file is opened lazily (O_CREAT|O_APPEND, 0666) at the
 * first line and again after log_reopen() (called on SIGHUP), so external
 * rotation works; if it cannot be opened the line is not written to a file
 * and opening is retried at the next line. Console lines go to stderr.
 *
 * Threading: all functions are safe from any thread. The logger is one
 * process-wide instance: a daemon logs for itself.
 */
#ifndef PFS_LOGGER_H
#define PFS_LOGGER_H

#include <stdbool.h>
#include <stddef.h>

struct conf_map;

typedef enum {
  LOG_LEVEL_FATAL,
  LOG_LEVEL_ERROR,
  LOG_LEVEL_WARN,
  LOG_LEVEL_INFO,
  LOG_LEVEL_TRACE,
} log_level;

/* Configure directly. path NULL or "" disables the file. Default before any
 * call: no file, console on, trace off. */
void log_configure(const char *path, bool to_console, bool trace_enabled);

/* Configure from [section] LogFilePath, LogToConsole, TraceEnabled.
 * Missing or empty keys keep the defaults above (LogFilePath empty = no file). */
int log_configure_from_conf(const struct conf_map *m, const char *section,
                            char *err, size_t errlen);

/* Close the file; the next line reopens it (SIGHUP, log rotation).
 * Async-signal-safe. */
void log_reopen(void);

bool log_trace_enabled(void);

void log_msg(log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes the line, then exits the process with status 1. */
void log_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_trace(...) \
  do { if (log_trace_enabled()) log_msg(LOG_LEVEL_TRACE, __VA_ARGS__); } while (0)

/* Format a timestamp (CLOCK_REALTIME ns since the epoch) as the line prefix
 * does, without brackets. Returns the length written (buf >= 40 bytes). */
size_t log_format_time(long long ns, char *buf, size_t buflen);

#endif
