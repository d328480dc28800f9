/* utils: the observability routes every daemon serves (architecture.md 4). */
#include "utils_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bucketstats.h"

#define PROMETHEUS_CONTENT_TYPE "text/plain; version=0.0.4"

/* The routes match by prefix; these pages answer their exact path only, as
 * the original's switch on the whole path does ("/statsx" is 404). */
static bool exact(const ut_http_request *req, const char *path)
{
  return strcmp(req->path, path) == 0;
}

static int reply_stats(ut_http_reply *rep, bs_format fmt, const char *content_type)
{
  char *text = NULL;
  int err = bs_sprint(fmt, "*", "*", &text);
  if (err != 0)
    return err;
  uti_http_reply_take(rep, 200, content_type, text, strlen(text));
  return 0;
}

static int get_stats(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  if (!exact(req, "/stats"))
    return -ENOENT;
  return reply_stats(rep, BS_FORMAT_TEXT, "text/plain");
}

static int get_metrics(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  if (!exact(req, "/metrics"))
    return -ENOENT;
  return reply_stats(rep, BS_FORMAT_PROMETHEUS, PROMETHEUS_CONTENT_TYPE);
}

static int get_version(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  if (!exact(req, "/version"))
    return -ENOENT;
  /* No newline, as the original. */
  return ut_http_reply_text(rep, 200, "text/plain", "%s", PFS_VERSION);
}

static int get_config(const ut_http_request *req, ut_http_reply *rep, void *ctx)
{
  if (!exact(req, "/config"))
    return -ENOENT;
  char *json = conf_to_json(ctx);
  if (json == NULL) /* out of memory, or a non-UTF-8 value set by code */
    return -ENOMEM;
  uti_http_reply_take(rep, 200, "application/json", json, strlen(json));
  return 0;
}

size_t ut_http_std_routes(const conf_map *conf, ut_http_route out[4])
{
  size_t n = 0;
  out[n++] = (ut_http_route){ "GET", "/stats", get_stats, NULL };
  out[n++] = (ut_http_route){ "GET", "/metrics", get_metrics, NULL };
  out[n++] = (ut_http_route){ "GET", "/version", get_version, NULL };
  if (conf != NULL)
    out[n++] = (ut_http_route){ "GET", "/config", get_config, (void *)conf };
  return n;
}
