/*
 * The process-wide logger. One mutex guards the file descriptor and the
 * settings; each line is formatted outside the lock and written with a
 * single write(2), so lines from many threads never interleave.
 */
#include "logger.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_STACK 1024 /* most lines fit; longer ones are heap-formatted */
#define LOG_STACK_DEPTH 64

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static char *log_path;          /* NULL: no file */
static int log_fd = -1;         /* opened lazily */
static bool log_to_console = true;
static atomic_bool log_trace;
static atomic_bool log_reopen_wanted;

static const char *const level_names[] = {
  [LOG_LEVEL_FATAL] = "FATAL", [LOG_LEVEL_ERROR] = "ERROR", [LOG_LEVEL_WARN] = "WARN",
  [LOG_LEVEL_INFO] = "INFO",   [LOG_LEVEL_TRACE] = "TRACE",
};

void log_configure(const char *path, bool to_console, bool trace_enabled) {
  char *copy = (path && *path) ? strdup(path) : NULL;

  pthread_mutex_lock(&log_mutex);
  free(log_path);
  log_path = copy;
  if (log_fd >= 0) close(log_fd);
  log_fd = -1;
  log_to_console = to_console;
  atomic_store(&log_trace, trace_enabled);
  pthread_mutex_unlock(&log_mutex);
}

void log_reopen(void) { atomic_store(&log_reopen_wanted, true); }

bool log_trace_enabled(void) { return atomic_load(&log_trace); }

/* Go's RFC3339Nano: fraction without trailing zeros (and without the dot
 * when it is zero), "Z" for UTC, otherwise +hh:mm. */
size_t log_format_time(long long ns, char *buf, size_t buflen) {
  time_t secs = (time_t)(ns / 1000000000LL);
  long frac = (long)(ns % 1000000000LL);
  struct tm tm;
  size_t n;

  if (frac < 0) { frac += 1000000000L; secs -= 1; }
  localtime_r(&secs, &tm);
  n = strftime(buf, buflen, "%Y-%m-%dT%H:%M:%S", &tm);
  if (frac != 0 && n < buflen) {
    char digits[16];
    int len = snprintf(digits, sizeof digits, "%09ld", frac);
    while (len > 0 && digits[len - 1] == '0') digits[--len] = '\0';
    n += (size_t)snprintf(buf + n, buflen - n, ".%s", digits);
  }
  if (n >= buflen) return buflen ? buflen - 1 : 0;
  if (tm.tm_gmtoff == 0) {
    n += (size_t)snprintf(buf + n, buflen - n, "Z");
  } else {
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    n += (size_t)snprintf(buf + n, buflen - n, "%c%02ld:%02ld", sign, off / 3600, (off % 3600) / 60);
  }
  return n < buflen ? n : buflen - 1;
}

/* Called with log_mutex held. */
static void write_line_locked(const char *line, size_t len) {
  if (atomic_exchange(&log_reopen_wanted, false) && log_fd >= 0) {
    close(log_fd);
    log_fd = -1;
  }
  if (log_path && log_fd < 0)
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  if (log_fd >= 0 && write(log_fd, line, len) < 0) {
    /* Nothing sensible to report a failed log write to; the console may still get it. */
  }
  if (log_to_console && write(STDERR_FILENO, line, len) < 0) {
    /* As above. */
  }
}

static void vlog(log_level level, const char *fmt, va_list ap) {
  char stackbuf[LOG_LINE_STACK];
  char *line = stackbuf;
  char stamp[64];
  struct timespec ts;
  int prefix, body;
  va_list ap2;

  clock_gettime(CLOCK_REALTIME, &ts);
  log_format_time((long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, stamp, sizeof stamp);
  prefix = snprintf(stackbuf, sizeof stackbuf, "[%s][%s] ", stamp, level_names[level]);

  va_copy(ap2, ap);
  body = vsnprintf(stackbuf + prefix, sizeof stackbuf - (size_t)prefix, fmt, ap);
  if (body < 0) body = 0;
  if ((size_t)(prefix + body + 1) >= sizeof stackbuf) {
    line = malloc((size_t)prefix + (size_t)body + 2);
    if (line) {
      memcpy(line, stackbuf, (size_t)prefix);
      vsnprintf(line + prefix, (size_t)body + 1, fmt, ap2);
    } else {
      line = stackbuf; /* out of memory: keep the truncated line */
      body = (int)(sizeof stackbuf - (size_t)prefix - 2);
    }
  }
  va_end(ap2);
  line[prefix + body] = '\n';

  pthread_mutex_lock(&log_mutex);
  write_line_locked(line, (size_t)(prefix + body + 1));
  pthread_mutex_unlock(&log_mutex);
  if (line != stackbuf) free(line);
}

void log_msg(log_level level, const char *fmt, ...) {
  va_list ap;

  if (level == LOG_LEVEL_TRACE && !log_trace_enabled()) return;
  va_start(ap, fmt);
  vlog(level, fmt, ap);
  va_end(ap);
}

/* The original prints every goroutine's stack after a FATAL line; we print
 * this thread's return addresses, symbolised where the binary allows. */
static void log_stack(void) {
  void *frames[LOG_STACK_DEPTH];
  int n = backtrace(frames, LOG_STACK_DEPTH);
  char **names = backtrace_symbols(frames, n);

  for (int i = 0; names && i < n; i++) log_msg(LOG_LEVEL_FATAL, "STACK %s", names[i]);
  free(names);
}

void log_fatal(const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vlog(LOG_LEVEL_FATAL, fmt, ap);
  va_end(ap);
  log_stack();
  exit(1);
}
