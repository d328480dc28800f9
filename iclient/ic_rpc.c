/* ic_rpc: imgr error strings -> errno (the one table, see ic_imgr.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ic_imgr.h"

static const struct {
  const char *prefix;
  int err;
} ERRS[] = {
    {"EAuthTokenRejected:", -EACCES},     {"EBadOpenCountAdjustment:", -EINVAL},
    {"ELeaseRequestDenied:", -ENOLCK},    {"EMissingLease:", -ENOLCK},
    {"ETooManyMounts", -EUSERS},          {"ETooManyOpens", -EMFILE},
    {"EVolumeBeingDeleted:", -ESHUTDOWN}, {"EUnknownInodeNumber:", -ENOENT},
    {"EUnknownMountID:", -ENOTCONN},      {"EUnknownVolumeName:", -ENODEV},
};

int ic_rpc_errno(const char *msg) {
  for (size_t i = 0; i < sizeof(ERRS) / sizeof(ERRS[0]); i++)
    if (strncmp(msg, ERRS[i].prefix, strlen(ERRS[i].prefix)) == 0) return ERRS[i].err;
  return -EIO;
}

int ic_rpc_fail(ic_rpc_err *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  va_end(ap);
  return ic_rpc_errno(err->msg);
}
