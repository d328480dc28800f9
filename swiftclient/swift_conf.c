/* swift_config_from_conf: the original's Swift* keys (imgr.md 1.3,
 * iclient.md 1.2). Kept apart so programs that fill swift_config directly
 * need not link conf. */
#include <errno.h>

#include "conf.h"
#include "swiftclient.h"

int swift_config_from_conf(const struct conf_map *m, const char *section,
                           swift_config *cfg, char *err, size_t errlen) {
  int rc = 0;
  if (!conf_is_missing_or_empty(m, section, "SwiftRetryDelay"))
    rc = conf_get_duration_ns(m, section, "SwiftRetryDelay", &cfg->retry_delay_ns, err, errlen);
  const char *backoff = conf_has_option(m, section, "SwiftRetryExpBackoff")
                            ? "SwiftRetryExpBackoff"
                            : "SwiftRetryExponentialBackoff";
  if (!rc && !conf_is_missing_or_empty(m, section, backoff))
    rc = conf_get_double(m, section, backoff, &cfg->retry_exp_backoff, err, errlen);
  if (!rc && !conf_is_missing_or_empty(m, section, "SwiftRetryLimit"))
    rc = conf_get_u32(m, section, "SwiftRetryLimit", &cfg->retry_limit, err, errlen);
  if (!rc && !conf_is_missing_or_empty(m, section, "SwiftTimeout"))
    rc = conf_get_duration_ns(m, section, "SwiftTimeout", &cfg->timeout_ns, err, errlen);
  if (!rc && !conf_is_missing_or_empty(m, section, "SwiftConnectionPoolSize"))
    rc = conf_get_u32(m, section, "SwiftConnectionPoolSize", &cfg->connection_pool_size,
                      err, errlen);
  if (!rc && cfg->retry_exp_backoff < 0) rc = -EINVAL;
  return rc;
}
