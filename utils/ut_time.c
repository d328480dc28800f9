/* utils: clocks, sleeping and deadlines. */
#include "utils.h"

#include <errno.h>
#include <time.h>

static uint64_t clock_ns(clockid_t id)
{
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ut_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t ut_wall_ns(void) { return clock_ns(CLOCK_REALTIME); }

void ut_sleep_ns(uint64_t ns)
{
  /* An absolute monotonic deadline makes a restart after a signal sleep
   * only what is left, without drift from repeated relative sleeps. */
  struct timespec now, until;
  clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t sec = ns / 1000000000u;
  long nsec = now.tv_nsec + (long)(ns % 1000000000u);
  if (nsec >= 1000000000L) {
    nsec -= 1000000000L;
    sec++;
  }
  if (sec > (uint64_t)(INT64_MAX - now.tv_sec))
    sec = (uint64_t)(INT64_MAX - now.tv_sec); /* "forever" */
  until.tv_sec = now.tv_sec + (time_t)sec;
  until.tv_nsec = nsec;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
    ;
}

struct timespec ut_deadline_ts(uint64_t timeout_ns)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t sec = timeout_ns / 1000000000u;
  long nsec = ts.tv_nsec + (long)(timeout_ns % 1000000000u);
  if (nsec >= 1000000000L) {
    nsec -= 1000000000L;
    sec++;
  }
  /* Saturate rather than wrap: a huge timeout means "never". */
  if (sec > (uint64_t)(INT64_MAX - ts.tv_sec)) {
    ts.tv_sec = INT64_MAX;
    ts.tv_nsec = 999999999L;
    return ts;
  }
  ts.tv_sec += (time_t)sec;
  ts.tv_nsec = nsec;
  return ts;
}
