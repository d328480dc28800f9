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

/* A 64-bit time_t holds now + UINT64_MAX ns (under 600 years) without
 * overflow, so no timeout needs clamping. */
_Static_assert(sizeof(time_t) == 8, "64-bit time_t assumed");

/* The clock's now plus ns, normalised. */
static struct timespec clock_after(clockid_t id, uint64_t ns)
{
  struct timespec ts;
  clock_gettime(id, &ts);
  uint64_t sec = ns / 1000000000u;
  long nsec = ts.tv_nsec + (long)(ns % 1000000000u);
  if (nsec >= 1000000000L) {
    nsec -= 1000000000L;
    sec++;
  }
  ts.tv_sec += (time_t)sec;
  ts.tv_nsec = nsec;
  return ts;
}

void ut_sleep_ns(uint64_t ns)
{
  /* An absolute deadline makes a restart after a signal sleep only what is
   * left, without drift from repeated relative sleeps. */
  struct timespec until = clock_after(CLOCK_MONOTONIC, ns);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
    ;
}

struct timespec ut_deadline_ts(uint64_t timeout_ns)
{
  return clock_after(CLOCK_REALTIME, timeout_ns);
}
