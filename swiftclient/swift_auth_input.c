/* The auth plug-in input JSON (iclient.md 2.2). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "swiftclient.h"

void swift_auth_input_free(swift_auth_input *in) {
  free(in->auth_url);
  free(in->auth_user);
  free(in->auth_key);
  free(in->account);
  free(in->container);
  memset(in, 0, sizeof *in);
}

static int take(json_t *o, const char *key, bool required, char **out) {
  json_t *v = json_object_get(o, key);
  if (!v) {
    if (required) return -EINVAL;
    return (*out = strdup("")) ? 0 : -ENOMEM;
  }
  if (!json_is_string(v)) return -EINVAL;
  return (*out = strdup(json_string_value(v))) ? 0 : -ENOMEM;
}

int swift_auth_input_parse(const char *json, swift_auth_input *in) {
  memset(in, 0, sizeof *in);
  json_error_t jerr;
  json_t *o = json_loads(json, 0, &jerr);
  if (!json_is_object(o)) {
    json_decref(o);
    return -EINVAL;
  }
  int rc = take(o, "AuthURL", true, &in->auth_url);
  if (!rc) rc = take(o, "AuthUser", true, &in->auth_user);
  if (!rc) rc = take(o, "AuthKey", false, &in->auth_key);
  if (!rc) rc = take(o, "Account", false, &in->account);
  if (!rc) rc = take(o, "Container", false, &in->container);
  json_decref(o);
  if (rc) swift_auth_input_free(in);
  return rc;
}

void swift_auth_input_apply(const swift_auth_input *in, swift_config *cfg) {
  cfg->auth_url = in->auth_url;
  cfg->auth_user = in->auth_user;
  cfg->auth_key = in->auth_key;
  cfg->account = in->account && *in->account ? in->account : NULL;
}
