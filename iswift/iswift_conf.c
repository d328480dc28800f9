/* [ISWIFT] keys (iswift.md 2) plus this port's optional additions. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "iswift.h"

#define S "ISWIFT"

static int opt_double_pct(const conf_map *m, const char *key, double *v, char *err,
                          size_t errlen) {
  if (conf_is_missing_or_empty(m, S, key)) return 0;
  int rc = conf_get_double(m, S, key, v, err, errlen);
  if (!rc && (*v < 0 || *v > 100)) {
    if (err) snprintf(err, errlen, "[%s]%s must be between 0 and 100", S, key);
    rc = -EINVAL;
  }
  return rc;
}

int iswift_config_from_conf(const conf_map *m, iswift_config *cfg, char *err, size_t errlen) {
  iswift_config_defaults(cfg);
  const char *addr;
  int rc = conf_get_string(m, S, "SwiftProxyIPAddr", &addr, err, errlen);
  if (!rc && strlen(addr) >= sizeof cfg->addr) rc = -ENAMETOOLONG;
  if (!rc) snprintf(cfg->addr, sizeof cfg->addr, "%s", addr);
  if (!rc) rc = conf_get_u16(m, S, "SwiftProxyTCPPort", &cfg->port, err, errlen);
  if (!rc) rc = conf_get_u64(m, S, "MaxAccountNameLength", &cfg->max_account_name_length, err, errlen);
  if (!rc) rc = conf_get_u64(m, S, "MaxContainerNameLength", &cfg->max_container_name_length, err, errlen);
  if (!rc) rc = conf_get_u64(m, S, "MaxObjectNameLength", &cfg->max_object_name_length, err, errlen);
  if (!rc) rc = conf_get_u64(m, S, "AccountListingLimit", &cfg->account_listing_limit, err, errlen);
  if (!rc) rc = conf_get_u64(m, S, "ContainerListingLimit", &cfg->container_listing_limit, err, errlen);
  /* additions: optional */
  if (!rc && !conf_is_missing_or_empty(m, S, "EmulateRealSwift"))
    rc = conf_get_bool(m, S, "EmulateRealSwift", &cfg->emulate_real_swift, err, errlen);
  if (!rc && !conf_is_missing_or_empty(m, S, "StoreDirPath")) {
    const char *d;
    rc = conf_get_string(m, S, "StoreDirPath", &d, err, errlen);
    if (!rc && strlen(d) >= sizeof cfg->store_dir) rc = -ENAMETOOLONG;
    if (!rc) snprintf(cfg->store_dir, sizeof cfg->store_dir, "%s", d);
  }
  if (!rc && !conf_is_missing_or_empty(m, S, "MaxMemoryBytes"))
    rc = conf_get_u64(m, S, "MaxMemoryBytes", &cfg->max_memory, err, errlen);
  if (!rc && !conf_is_missing_or_empty(m, S, "MaxObjectSize"))
    rc = conf_get_u64(m, S, "MaxObjectSize", &cfg->max_object_size, err, errlen);
  if (!rc && !conf_is_missing_or_empty(m, S, "MaxConnections"))
    rc = conf_get_u32(m, S, "MaxConnections", &cfg->max_connections, err, errlen);
  if (!rc && !conf_is_missing_or_empty(m, S, "FaultAdminEnabled"))
    rc = conf_get_bool(m, S, "FaultAdminEnabled", &cfg->fault_admin, err, errlen);
  if (!rc) rc = opt_double_pct(m, "FaultErrorRate", &cfg->faults.error_rate, err, errlen);
  if (!rc) rc = opt_double_pct(m, "FaultDropRate", &cfg->faults.drop_rate, err, errlen);
  if (!rc) rc = opt_double_pct(m, "FaultTruncateRate", &cfg->faults.truncate_rate, err, errlen);
  if (!rc && !conf_is_missing_or_empty(m, S, "FaultLatency"))
    rc = conf_get_duration_ns(m, S, "FaultLatency", &cfg->faults.latency_ns, err, errlen);
  return rc;
}
