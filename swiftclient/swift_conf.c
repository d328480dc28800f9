/* swift_config_from_conf: the original's Swift* keys (imgr.md 1.3,
 * iclient.md 1.2). Kept apart so programs that fill swift_config directly
 * need not link conf. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  if (!rc && !conf_is_missing_or_empty(m, section, "SwiftRetryDelayVariance")) {
    rc = conf_get_u8(m, section, "SwiftRetryDelayVariance", &cfg->retry_delay_variance, err,
                     errlen);
    if (!rc && (cfg->retry_delay_variance == 0 || cfg->retry_delay_variance > 100)) {
      if (err) snprintf(err, errlen, "[%s]SwiftRetryDelayVariance must be 1..100", section);
      rc = -EINVAL;
    }
  }
  if (!rc && !conf_is_missing_or_empty(m, section, "SwiftPutETag"))
    rc = conf_get_bool(m, section, "SwiftPutETag", &cfg->send_put_etag, err, errlen);
  if (!rc && cfg->retry_exp_backoff < 0) rc = -EINVAL;
  return rc;
}

int swift_auth_input_from_conf(const struct conf_map *m, const char *section,
                               swift_auth_input *in, char *err, size_t errlen) {
  const char *json = NULL;
  int rc = 0;
  if (!conf_is_missing_or_empty(m, section, "AuthPlugInEnvName")) {
    const char *var;
    if ((rc = conf_get_string(m, section, "AuthPlugInEnvName", &var, err, errlen))) return rc;
    if (!conf_is_missing_or_empty(m, section, "AuthPlugInEnvValue")) {
      if (err)
        snprintf(err, errlen,
                 "If [%s]AuthPlugInEnvName is present and non-empty, [%s]AuthPlugInEnvValue "
                 "must be missing or empty", section, section);
      return -EINVAL;
    }
    json = getenv(var);
    if (!json) {
      if (err) snprintf(err, errlen, "environment variable %s is not set", var);
      return -ENOENT;
    }
  } else {
    /* the value is JSON with commas; join it back if the list syntax split it */
    const char *const *vals;
    size_t n;
    if ((rc = conf_get_list(m, section, "AuthPlugInEnvValue", &vals, &n, err, errlen))) return rc;
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(vals[i]) + 1;
    char *joined = calloc(1, len);
    if (!joined) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
      if (i) strcat(joined, ",");
      strcat(joined, vals[i]);
    }
    rc = swift_auth_input_parse(joined, in);
    free(joined);
    if (rc == -EINVAL && err) snprintf(err, errlen, "[%s]AuthPlugInEnvValue is not valid auth JSON", section);
    return rc;
  }
  rc = swift_auth_input_parse(json, in);
  if (rc == -EINVAL && err) snprintf(err, errlen, "auth plug-in input is not valid auth JSON");
  return rc;
}
