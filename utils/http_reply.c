/* utils: HTTP reply helpers and the errno -> status table. */
#include "utils_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void uti_http_reply_reset(ut_http_reply *rep)
{
  free(rep->body);
  for (size_t i = 0; i < rep->nheaders; i++) {
    free(rep->headers[i].name);
    free(rep->headers[i].value);
  }
  memset(rep, 0, sizeof *rep);
  rep->status = 200;
}

void uti_http_reply_take(ut_http_reply *rep, int status, const char *content_type,
                      char *body, size_t len)
{
  free(rep->body);
  rep->status = status;
  rep->content_type = content_type;
  rep->body = body;
  rep->body_len = len;
}

int ut_http_reply_json(ut_http_reply *rep, int status, json_t *json)
{
  if (json == NULL)
    return -EINVAL;
  /* Compact, like Go's json.Marshal that the original's handlers use. */
  char *text = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(json);
  if (text == NULL)
    return -ENOMEM;
  uti_http_reply_take(rep, status, "application/json", text, strlen(text));
  return 0;
}

int ut_http_reply_text(ut_http_reply *rep, int status, const char *content_type,
                       const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *text = NULL;
  int n = vasprintf(&text, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -ENOMEM;
  uti_http_reply_take(rep, status, content_type, text, (size_t)n);
  return 0;
}

int ut_http_reply_bytes(ut_http_reply *rep, int status, const char *content_type,
                        const void *body, size_t len)
{
  char *copy = NULL;
  if (len > 0) {
    copy = malloc(len);
    if (copy == NULL)
      return -ENOMEM;
    memcpy(copy, body, len);
  }
  uti_http_reply_take(rep, status, content_type, copy, len);
  return 0;
}

/* A field name is an RFC 9110 token; a value may not break the line. */
static bool header_name_ok(const char *s)
{
  if (*s == '\0')
    return false;
  for (; *s != '\0'; s++)
    if (*s <= ' ' || *s >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *s) != NULL)
      return false;
  return true;
}

static bool header_value_ok(const char *s)
{
  return strpbrk(s, "\r\n") == NULL;
}

int ut_http_reply_header(ut_http_reply *rep, const char *name, const char *value)
{
  if (!header_name_ok(name) || !header_value_ok(value))
    return -EINVAL;
  if (rep->nheaders == UT_HTTP_MAX_REPLY_HEADERS)
    return -ENOSPC;
  char *n = strdup(name), *v = strdup(value);
  if (n == NULL || v == NULL) {
    free(n);
    free(v);
    return -ENOMEM;
  }
  rep->headers[rep->nheaders].name = n;
  rep->headers[rep->nheaders].value = v;
  rep->nheaders++;
  return 0;
}

int ut_http_status_from_errno(int err)
{
  static const struct { int err, status; } table[] = {
    { 0, 200 },
    { -EINVAL, 400 },      { -EBADMSG, 400 },
    { -EACCES, 401 },
    { -EPERM, 403 },
    { -ENOENT, 404 },
    { -EOPNOTSUPP, 405 },
    { -EEXIST, 409 },      { -ENOTEMPTY, 409 },
    { -E2BIG, 413 },       { -EMSGSIZE, 413 },
    { -ERANGE, 416 },
    { -ENOSYS, 501 },
    { -EIO, 502 },
    { -EAGAIN, 503 },      { -EBUSY, 503 },
    { -ETIMEDOUT, 504 },
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (table[i].err == err)
      return table[i].status;
  return 500;
}
