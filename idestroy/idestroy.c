/* idestroy's pieces (ickpt-idestroy.md B.1-B.5); see idestroy.h. */
#include "idestroy.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "swiftclient.h"

#define DEFAULT_BATCH 1000
#define DEFAULT_PASSES 20
#define PROGRESS_INTERVAL_NS 200000000ull

static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_msg(char *msg, size_t msglen, const char *fmt, ...) {
  if (msg == NULL || msglen == 0) {
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, msglen, fmt, ap);
  va_end(ap);
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- command line ---------------------------------------------------- */

static int parse_count(const char *flag, const char *v, unsigned lo, unsigned hi, unsigned *out,
                       char *msg, size_t msglen) {
  char *end;
  unsigned long n = v ? strtoul(v, &end, 10) : 0;
  if (v == NULL || *v == '\0' || *end != '\0' || n < lo || n > hi) {
    set_msg(msg, msglen, "%s needs a number in [%u, %u]", flag, lo, hi);
    return -EINVAL;
  }
  *out = (unsigned)n;
  return 0;
}

int idestroy_parse_args(int argc, char **argv, idestroy_opts *o, char *msg, size_t msglen) {
  memset(o, 0, sizeof *o);
  o->parallel = 1;
  o->passes = DEFAULT_PASSES;
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
    const char *a = argv[i][1] == '-' ? argv[i] + 1 : argv[i]; /* -x or --x */
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int rc = 0;
    if (strcmp(a, "-strict") == 0) {
      o->strict = true;
    } else if (strcmp(a, "-container") == 0) {
      o->container = true;
    } else if (strcmp(a, "-quiet") == 0) {
      o->quiet = true;
    } else if (strcmp(a, "-parallel") == 0) {
      rc = parse_count("-parallel", v, 1, IDESTROY_MAX_PARALLEL, &o->parallel, msg, msglen);
      i++;
    } else if (strcmp(a, "-page") == 0) {
      rc = parse_count("-page", v, 1, 100000, &o->page, msg, msglen);
      i++;
    } else if (strcmp(a, "-passes") == 0) {
      rc = parse_count("-passes", v, 1, 1000000, &o->passes, msg, msglen);
      i++;
    } else {
      set_msg(msg, msglen, "unknown option %s", argv[i]);
      rc = -EINVAL;
    }
    if (rc != 0) {
      return rc;
    }
  }
  o->conf_argc = argc - i;
  o->conf_argv = argv + i;
  return 0;
}

/* ---- [ICLIENT] auth keys --------------------------------------------- */

static int fetch_string(const conf_map *m, const char *key, char **out, char *msg,
                        size_t msglen) {
  char err[CONF_ERR_MAX] = "";
  const char *v;
  int rc = conf_get_string(m, "ICLIENT", key, &v, err, sizeof err);
  if (rc != 0) {
    set_msg(msg, msglen, "confMap.FetchOptionValueString(\"ICLIENT\", \"%s\") failed: %s", key,
            err);
    return rc;
  }
  *out = strdup(v);
  return *out ? 0 : -ENOMEM;
}

int idestroy_auth_keys(const conf_map *m, char **path, char **input, char *msg, size_t msglen) {
  *path = NULL;
  *input = NULL;
  char *env_name = NULL;
  int rc = fetch_string(m, "AuthPlugInPath", path, msg, msglen);
  if (rc == 0 && conf_is_missing_or_empty(m, "ICLIENT", "AuthPlugInEnvName")) {
    rc = fetch_string(m, "AuthPlugInEnvValue", input, msg, msglen);
  } else if (rc == 0) {
    rc = fetch_string(m, "AuthPlugInEnvName", &env_name, msg, msglen);
    if (rc == 0 && !conf_is_missing_or_empty(m, "ICLIENT", "AuthPlugInEnvValue")) {
      set_msg(msg, msglen,
              "If [ICLIENT]AuthPlugInEnvName is present and non-empty, "
              "[ICLIENT]AuthPlugInEnvValue must be missing or empty");
      rc = -EINVAL;
    }
    if (rc == 0) {
      const char *v = getenv(env_name);
      *input = strdup(v ? v : "");
      rc = *input ? 0 : -ENOMEM;
    }
  }
  free(env_name);
  if (rc != 0) {
    free(*path);
    free(*input);
    *path = *input = NULL;
  }
  return rc;
}

/* ---- the destroy loop ------------------------------------------------ */

typedef struct {
  swift_conn *c;
  const char *container;
  const char *display_url;
  FILE *progress;
  idestroy_result *res;
  uint64_t t0;
  /* the current batch */
  char **names;
  size_t n;
  _Atomic size_t next;
  _Atomic uint64_t deleted, gone;
  _Atomic bool failed;
  pthread_mutex_t mu; /* guards err/msg and the progress line */
  int err;
  char msg[IDESTROY_MSG_MAX];
  uint64_t last_print_ns;
  bool printed;
} run_state;

/* Upstream's message for a failed request: the status line when the error
 * is a known status, the transport failure otherwise. */
static void request_msg(char *msg, size_t msglen, const char *what, int err,
                        const char *url) {
  const char *status = err == -EACCES      ? "401 Unauthorized"
                       : err == -EPERM     ? "403 Forbidden"
                       : err == -ENOENT    ? "404 Not Found"
                       : err == -ENOTEMPTY ? "409 Conflict"
                                           : NULL;
  if (status != NULL) {
    set_msg(msg, msglen, "http%sResponse.Status unexpected: %s (%s)", what, status, url);
  } else {
    set_msg(msg, msglen, "httpClient.Do(http%sRequest) failed: %s (%s)", what, strerror(-err),
            url);
  }
}

static void print_progress(run_state *s, bool force) {
  if (s->progress == NULL) {
    return;
  }
  uint64_t now = mono_ns();
  if (!force && now - s->last_print_ns < PROGRESS_INTERVAL_NS) {
    return;
  }
  s->last_print_ns = now;
  uint64_t done = atomic_load(&s->deleted) + atomic_load(&s->gone);
  double secs = (double)(now - s->t0) / 1e9;
  double rate = secs > 0 ? (double)done / secs : 0;
  uint64_t total = s->res->total_estimate > done ? s->res->total_estimate : done;
  fprintf(s->progress, "\rdeleted %llu / %llu objects, %.0f objects/s, pass %llu ",
          (unsigned long long)done, (unsigned long long)total, rate,
          (unsigned long long)s->res->passes);
  fflush(s->progress);
  s->printed = true;
}

static void *delete_worker(void *p) {
  run_state *s = p;
  for (;;) {
    size_t i = atomic_fetch_add(&s->next, 1);
    if (i >= s->n || atomic_load(&s->failed)) {
      return NULL;
    }
    int rc = swift_object_delete(s->c, s->container, s->names[i]);
    if (rc == 0) {
      atomic_fetch_add(&s->deleted, 1);
    } else if (rc == -ENOENT) {
      atomic_fetch_add(&s->gone, 1); /* B.5.2: already gone is success */
    } else {
      pthread_mutex_lock(&s->mu);
      if (!atomic_exchange(&s->failed, true)) {
        char url[2048];
        snprintf(url, sizeof url, "%s/%s", s->display_url, s->names[i]);
        s->err = rc;
        request_msg(s->msg, sizeof s->msg, "DELETE", rc, url);
      }
      pthread_mutex_unlock(&s->mu);
      return NULL;
    }
    if (pthread_mutex_trylock(&s->mu) == 0) {
      print_progress(s, false);
      pthread_mutex_unlock(&s->mu);
    }
  }
}

static int delete_batch(run_state *s, unsigned parallel) {
  atomic_store(&s->next, 0);
  pthread_t t[IDESTROY_MAX_PARALLEL];
  unsigned started = 0;
  for (unsigned i = 1; i < parallel && i < s->n; i++) {
    if (pthread_create(&t[started], NULL, delete_worker, s) == 0) {
      started++;
    }
  }
  delete_worker(s); /* the calling thread works too */
  for (unsigned i = 0; i < started; i++) {
    pthread_join(t[i], NULL);
  }
  return atomic_load(&s->failed) ? s->err : 0;
}

typedef struct {
  char **names;
  size_t n, cap;
} name_batch;

static int collect(void *ctx, const swift_list_entry *e) {
  name_batch *b = ctx;
  if (b->n == b->cap) {
    return 1;
  }
  b->names[b->n] = strdup(e->name);
  if (b->names[b->n] == NULL) {
    return -ENOMEM;
  }
  b->n++;
  return 0;
}

static void batch_clear(name_batch *b) {
  for (size_t i = 0; i < b->n; i++) {
    free(b->names[i]);
  }
  b->n = 0;
}

/* One full listing from the start, deleting batch by batch. *listed is the
 * number of names seen; -ENOENT when the container does not exist. */
static int one_pass(run_state *s, const idestroy_opts *o, name_batch *b, uint64_t *listed) {
  char marker[1100] = "";
  *listed = 0;
  for (;;) {
    swift_list_opts lo = {
        .marker = marker[0] ? marker : NULL,
        .page_limit = o->page,
        .max_entries = b->cap,
    };
    batch_clear(b);
    int rc = swift_list(s->c, s->container, &lo, collect, b, NULL);
    if (rc != 0) {
      return rc;
    }
    if (b->n == 0) {
      return 0;
    }
    *listed += b->n;
    snprintf(marker, sizeof marker, "%s", b->names[b->n - 1]);
    s->names = b->names;
    s->n = b->n;
    rc = delete_batch(s, o->parallel);
    if (rc != 0) {
      return rc;
    }
    if (b->n < b->cap) {
      return 0; /* a short batch is the end of this listing */
    }
  }
}

static int run_passes(run_state *s, const idestroy_opts *o, name_batch *b, char *msg,
                      size_t msglen) {
  idestroy_result *res = s->res;
  uint64_t last_listed = 0;
  for (unsigned pass = 0; pass < o->passes; pass++) {
    uint64_t gone_before = atomic_load(&s->gone);
    res->passes++;
    int rc = one_pass(s, o, b, &last_listed);
    if (rc == -ENOENT && pass == 0 && atomic_load(&s->deleted) + atomic_load(&s->gone) == 0) {
      res->container_missing = true;
      if (o->strict) {
        set_msg(msg, msglen, "httpGETResponse.Status unexpected: 404 Not Found");
        return -ENOENT;
      }
      set_msg(msg, msglen, "container %s does not exist; nothing to destroy", s->display_url);
      return 0;
    }
    if (rc == -ENOENT) {
      return 0; /* removed by someone else meanwhile: it is empty */
    }
    if (rc != 0) {
      if (atomic_load(&s->failed)) {
        set_msg(msg, msglen, "%s", s->msg);
      } else {
        request_msg(msg, msglen, "GET", rc, s->display_url);
      }
      return rc;
    }
    if (last_listed == 0) {
      if (!o->container) {
        return 0;
      }
      rc = swift_container_delete(s->c, s->container);
      if (rc == 0 || rc == -ENOENT) {
        res->container_deleted = true;
        return 0;
      }
      if (rc != -ENOTEMPTY) {
        request_msg(msg, msglen, "DELETE", rc, s->display_url);
        return rc;
      }
      continue; /* objects reappeared (eventual consistency): one more pass */
    }
    if (atomic_load(&s->gone) - gone_before == last_listed) {
      /* Every listed name was already gone: the listing lags the deletes. */
      struct timespec ts = {1, 0};
      nanosleep(&ts, NULL);
    }
  }
  set_msg(msg, msglen, "objects remain in %s after %u passes (the last one listed %llu)",
          s->display_url, o->passes, (unsigned long long)last_listed);
  return -ENOTEMPTY;
}

int idestroy_run(swift_conn *c, const char *container, const char *display_url,
                 const idestroy_opts *o, FILE *progress, idestroy_result *res, char *msg,
                 size_t msglen) {
  memset(res, 0, sizeof *res);
  set_msg(msg, msglen, "%s", "");
  run_state *s = calloc(1, sizeof *s);
  name_batch b = {.cap = o->page ? o->page : DEFAULT_BATCH};
  if (b.cap < o->parallel) {
    b.cap = o->parallel;
  }
  b.names = calloc(b.cap, sizeof *b.names);
  if (s == NULL || b.names == NULL) {
    free(s);
    free(b.names);
    set_msg(msg, msglen, "out of memory");
    return -ENOMEM;
  }
  s->c = c;
  s->container = container;
  s->display_url = display_url;
  s->progress = progress;
  s->res = res;
  s->t0 = mono_ns();
  pthread_mutex_init(&s->mu, NULL);

  swift_hdrs *h = NULL;
  int rc = swift_container_head(c, container, &h);
  if (rc == 0) {
    const char *count = swift_hdrs_get(h, "X-Container-Object-Count");
    res->total_estimate = count ? strtoull(count, NULL, 10) : 0;
  }
  swift_hdrs_free(h);
  if (rc == -EACCES || rc == -EPERM) {
    request_msg(msg, msglen, "GET", rc, display_url);
  } else {
    /* A missing container is handled by the first listing, like upstream. */
    rc = run_passes(s, o, &b, msg, msglen);
  }
  res->deleted = atomic_load(&s->deleted);
  res->already_gone = atomic_load(&s->gone);
  res->seconds = (double)(mono_ns() - s->t0) / 1e9;
  if (s->printed) {
    print_progress(s, true);
    fputc('\n', progress);
  }
  batch_clear(&b);
  free(b.names);
  pthread_mutex_destroy(&s->mu);
  free(s);
  return rc;
}
