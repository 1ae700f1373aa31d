/* The model handle: open (model files, first predictors, pool), infer (acquire a predictor, run,
 * release), close (wait for calls in flight, release everything). See runtime.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memfiles.h"
#include "pd_inference_api.h"
#include "runtime.h"
#include "self_file.h"

/* The thread functions the pool thread needs, pinned to the symbol version every glibc of the arch
 * has (x86_64: 2.2.5, aarch64: 2.17). Built on glibc >= 2.34 they would import
 * pthread_create@GLIBC_2.34 and raise every plugin's glibc floor above the policy's 2.28
 * (abi-check PH122); older glibcs define these versions in libpthread.so.0, which Paddle loads. */
#if defined(__x86_64__)
#define PHOT_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define PHOT_GLIBC_BASE "GLIBC_2.17"
#endif
#ifdef PHOT_GLIBC_BASE
__asm__(".symver pthread_create,pthread_create@" PHOT_GLIBC_BASE);
__asm__(".symver pthread_join,pthread_join@" PHOT_GLIBC_BASE);
#endif

/* paddlehot's pdcapi has it, the official library does not: weak, checked before use. */
extern const char *paddlehot_pdcapi_last_error(void) __attribute__((weak));

/* ---------------------------------------------------------------- errors (thread-local) */

/* TLS (not a pthread key): a key's destructor would pin the library; TLS does not. */
static __thread char t_err[1024];

int32_t phot_rt_fail(int32_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t_err, sizeof t_err, fmt, ap);
  va_end(ap);
  return code;
}

void phot_rt_clear_error(void) { t_err[0] = '\0'; }

const char *phot_rt_last_error(void) { return t_err; }

const char *phot_rt_capi_error(void) {
  const char *m = paddlehot_pdcapi_last_error ? paddlehot_pdcapi_last_error() : NULL;
  return (m && *m) ? m : "no message from the Paddle Inference C API";
}

size_t phot_rt_dtype_size(phot_dtype d) {
  switch (d) {
    case PHOT_DTYPE_FLOAT32: case PHOT_DTYPE_INT32: return 4;
    case PHOT_DTYPE_INT64: case PHOT_DTYPE_FLOAT64: return 8;
    case PHOT_DTYPE_FLOAT16: return 2;
    case PHOT_DTYPE_UINT8: case PHOT_DTYPE_INT8: case PHOT_DTYPE_BOOL: return 1;
    default: return 0;
  }
}

const char *phot_rt_dtype_name(phot_dtype d) {
  static const char *names[] = {"?", "float32", "float16", "float64", "int32",
                                "int64", "uint8", "int8", "bool"};
  return (d >= 1 && d <= 8) ? names[d] : "unknown";
}

/* ---------------------------------------------------------------- the handle */

typedef struct slot {
  PD_Predictor *pred;
  PD_Tensor **in;  /* [n_inputs], signature order */
  PD_Tensor **out; /* [n_outputs], manifest order (= the predictor's output order) */
  struct slot *next_free;
  int64_t free_since_ns; /* CLOCK_MONOTONIC when it last came back to the free list */
  pthread_t user;        /* the thread that took it last (acquire prefers it: see there) */
  int has_user;
} slot_t;

struct phot_model {
  uint64_t magic;
  const phot_rt_desc *d;
  pthread_mutex_t mu;
  pthread_cond_t cv;  /* a slot was freed, or in_flight dropped */
  int closed;
  int in_flight;
  int alive;          /* predictors alive: all[0..alive) */
  int pool_min;       /* pool_initial: the predictors no idle time takes away */
  int pool_max;
  int64_t idle_ns;    /* a predictor above pool_min free this long is destroyed; <= 0: never */
  /* The pool thread (see keeper()) grows and reclaims: callers never create a predictor while
   * one exists; they wait for a free one and ask the pool thread for another. */
  pthread_t keeper;
  int has_keeper;
  int grow_wanted;        /* a caller found every predictor busy since the last growth */
  pthread_cond_t keep_cv; /* the keeper's: growth wanted, or closed */
  slot_t *free_list;  /* most recently freed first, so the idle ones gather at its end */
  slot_t **all;       /* pool_max entries; NULL where no predictor is */
  /* Every predictor serves (no template): a new one is created from the model files, as the
   * first was (in Paddle 3.3.1 a clone costs as much as a creation), by open() and then only by
   * the keeper, so one at a time. */
  int32_t threads;
  char prog[PATH_MAX + 80], params[PATH_MAX + 80];
  /* Embedded models: our own file, open while the pool may still grow (a rename over the path
   * does not change what it reads), and the model copied out of it into memory files only for
   * the length of a creation, so no copy of the model outlives what the predictors hold. */
  int self_fd;
  phot_memfiles files;
  struct phot_model *next_open; /* registry of open handles (for the destructor) */
};

#define PHOT_MAGIC 0x70686f742d6d6f64ull /* "phot-mod" */

/* Handles never closed (a host that exits without close) still get their temp dirs removed when
 * the process exits or the plugin is unloaded. Only files are touched there, never Paddle. */
static pthread_mutex_t g_open_mu = PTHREAD_MUTEX_INITIALIZER;
static struct phot_model *g_open;

static void registry_add(struct phot_model *m) {
  pthread_mutex_lock(&g_open_mu);
  m->next_open = g_open;
  g_open = m;
  pthread_mutex_unlock(&g_open_mu);
}

static void registry_remove(struct phot_model *m) {
  pthread_mutex_lock(&g_open_mu);
  for (struct phot_model **p = &g_open; *p; p = &(*p)->next_open)
    if (*p == m) {
      *p = m->next_open;
      break;
    }
  pthread_mutex_unlock(&g_open_mu);
}

__attribute__((destructor)) static void remove_leftover_dirs(void) {
  pthread_mutex_lock(&g_open_mu);
  for (struct phot_model *m = g_open; m; m = m->next_open) phot_memfiles_close(&m->files);
  pthread_mutex_unlock(&g_open_mu);
}

/* ---------------------------------------------------------------- model files */

/* Embedded: our own file, kept open in self_fd while predictors may be created. */
static int32_t self_open(struct phot_model *m) {
  char self[PATH_MAX];
  if (phot_self_path(m->d->self, self, sizeof self) != 0)
    return phot_rt_fail(PHOT_E_RUNTIME, "open: cannot find the file of this plugin");
  m->self_fd = open(self, O_RDONLY | O_CLOEXEC);
  if (m->self_fd < 0)
    return phot_rt_fail(PHOT_E_RUNTIME, "open: cannot read %s: %s", self, strerror(errno));
  return PHOT_OK;
}

/* Copy the two non-allocated sections of our own file into memfds (m->prog, m->params name
 * them) for one creation; files_drop() removes them. The sections are never mapped, so once the
 * predictors are made no byte of the model stays in this process's address space. */
static int32_t files_from_self(struct phot_model *m) {
  const phot_rt_desc *d = m->d;
  char err[256];
  if (phot_memfiles_open(&m->files, "paddlehot-plugin", d->prog_file, d->params_file, err,
                         sizeof err) != 0)
    return phot_rt_fail(PHOT_E_RUNTIME, "open: %s %s: %s", d->model, d->version, err);
  const char *sections[2] = {d->prog_section, d->params_section};
  for (int i = 0; i < 2; i++) {
    off_t off;
    uint64_t size;
    int32_t rc = PHOT_OK;
    if (phot_find_section(m->self_fd, sections[i], &off, &size, err, sizeof err) != 0)
      rc = phot_rt_fail(PHOT_E_RUNTIME, "open: %s %s: %s", d->model, d->version, err);
    else if (phot_copy_range(m->files.fds[i], m->self_fd, off, (size_t)size) != 0)
      rc = phot_rt_fail(PHOT_E_RUNTIME, "open: %s %s: copying %s out of the plugin: %s", d->model,
                        d->version, sections[i], strerror(errno));
    if (rc != PHOT_OK) {
      phot_memfiles_close(&m->files);
      return rc;
    }
  }
  phot_memfiles_path(&m->files, 0, m->prog, sizeof m->prog);
  phot_memfiles_path(&m->files, 1, m->params, sizeof m->params);
  return PHOT_OK;
}

static void files_drop(struct phot_model *m) { phot_memfiles_close(&m->files); }

static void self_close(struct phot_model *m) {
  if (m->self_fd >= 0) close(m->self_fd);
  m->self_fd = -1;
}

static int32_t files_from_dir(const phot_rt_desc *d, const char *dir, char *prog, char *params,
                              size_t cap) {
  char self[PATH_MAX];
  if (!dir || !*dir) {
    if (phot_self_path(d->self, self, sizeof self) != 0)
      return phot_rt_fail(PHOT_E_RUNTIME, "open: cannot find the directory of this plugin");
    char *slash = strrchr(self, '/');
    if (slash)
      *slash = '\0';
    else
      snprintf(self, sizeof self, ".");
    dir = self;
  }
  snprintf(prog, cap, "%s/%s", dir, d->prog_file);
  snprintf(params, cap, "%s/%s", dir, d->params_file);
  /* access(), not stat(): stat is a GLIBC_2.33 symbol, above the glibc 2.28 floor */
  if (access(prog, R_OK) != 0)
    return phot_rt_fail(PHOT_E_RUNTIME, "open: model file not found: %s", prog);
  if (access(params, R_OK) != 0)
    return phot_rt_fail(PHOT_E_RUNTIME, "open: parameters file not found: %s", params);
  return PHOT_OK;
}

/* ---------------------------------------------------------------- predictors */

static void slot_destroy(const phot_rt_desc *d, slot_t *s) {
  if (!s) return;
  for (int i = 0; s->in && i < d->n_inputs; i++)
    if (s->in[i]) PD_TensorDestroy(s->in[i]);
  for (int i = 0; s->out && i < d->n_outputs; i++)
    if (s->out[i]) PD_TensorDestroy(s->out[i]);
  free(s->in);
  free(s->out);
  if (s->pred) PD_PredictorDestroy(s->pred);
  free(s);
}

/* Wrap a predictor (taken, also on failure): check its inputs and outputs against the
 * signature, cache its tensor handles. */
static int32_t slot_make(const phot_rt_desc *d, PD_Predictor *pred, slot_t **out) {
  slot_t *s = calloc(1, sizeof *s);
  if (s) {
    s->in = calloc((size_t)d->n_inputs + 1, sizeof *s->in);
    s->out = calloc((size_t)d->n_outputs + 1, sizeof *s->out);
  }
  if (!s || !s->in || !s->out) {
    if (s) s->pred = pred;
    else PD_PredictorDestroy(pred);
    slot_destroy(d, s);
    return phot_rt_fail(PHOT_E_RUNTIME, "open: out of memory");
  }
  s->pred = pred;
  int32_t rc = PHOT_OK;
  PD_OneDimArrayCstr *ins = PD_PredictorGetInputNames(pred);
  PD_OneDimArrayCstr *outs = PD_PredictorGetOutputNames(pred);
  if (!ins || !outs)
    rc = phot_rt_fail(PHOT_E_RUNTIME, "open: cannot read the model's input/output names: %s",
                      phot_rt_capi_error());
  else if (ins->size != (size_t)d->n_inputs)
    rc = phot_rt_fail(PHOT_E_RUNTIME, "open: the model has %zu inputs, the manifest lists %d",
                      (size_t)ins->size, d->n_inputs);
  else if (outs->size != (size_t)d->n_outputs)
    rc = phot_rt_fail(PHOT_E_RUNTIME, "open: the model has %zu outputs, the manifest lists %d",
                      (size_t)outs->size, d->n_outputs);
  for (int i = 0; rc == PHOT_OK && i < d->n_inputs; i++) {
    s->in[i] = PD_PredictorGetInputHandle(pred, d->inputs[i].name);
    if (!s->in[i])
      rc = phot_rt_fail(PHOT_E_RUNTIME, "open: the model has no input '%s': %s",
                        d->inputs[i].name, phot_rt_capi_error());
  }
  for (int i = 0; rc == PHOT_OK && i < d->n_outputs; i++) {
    s->out[i] = PD_PredictorGetOutputHandle(pred, outs->data[i]);
    if (!s->out[i])
      rc = phot_rt_fail(PHOT_E_RUNTIME, "open: output handle '%s': %s", outs->data[i],
                        phot_rt_capi_error());
  }
  if (ins) PD_OneDimArrayCstrDestroy(ins);
  if (outs) PD_OneDimArrayCstrDestroy(outs);
  if (rc != PHOT_OK) {
    slot_destroy(d, s);
    return rc;
  }
  *out = s;
  return PHOT_OK;
}

static void model_release(struct phot_model *m) {
  for (int i = 0; m->all && i < m->pool_max; i++) {
    int j = m->pool_max - 1 - i; /* newest first */
    slot_destroy(m->d, m->all[j]);
    m->all[j] = NULL;
  }
  free(m->all);
  m->all = NULL;
  m->free_list = NULL;
  m->alive = 0;
  files_drop(m);
  self_close(m);
}

static void model_free(struct phot_model *m) {
  model_release(m);
  pthread_cond_destroy(&m->keep_cv);
  pthread_mutex_destroy(&m->mu);
  pthread_cond_destroy(&m->cv);
  m->magic = 0;
  free(m);
}

/* A predictor from m's model files and settings. PD_PredictorCreate does not free the config in
 * Paddle's own capi_exp (pd_predictor.cc reads it and returns), nor in pdcapi: we destroy it
 * ourselves. */
static int32_t create_predictor(struct phot_model *m, PD_Predictor **root) {
  PD_Config *cfg = PD_ConfigCreate();
  if (!cfg)
    return phot_rt_fail(PHOT_E_RUNTIME, "open: PD_ConfigCreate failed: %s", phot_rt_capi_error());
  PD_ConfigSetModel(cfg, m->prog, m->params);
  PD_ConfigDisableGpu(cfg);
  PD_ConfigSetCpuMathLibraryNumThreads(cfg, m->threads);
  PD_ConfigDisableGlogInfo(cfg);
  int32_t rc = phot_rt_configure_precision(m->d, cfg);
  if (rc != PHOT_OK) {
    PD_ConfigDestroy(cfg);
    return rc;
  }
  /* Paddle's default oneDNN shape cache (10) makes every run walk Paddle's process-wide kernel
   * map without its lock: a pool's other threads crash when they change that map meanwhile
   * (native/pdcapi/src/thread_runs.cc). pdcapi's default is 0; asked for explicitly, so plugins
   * get 0 from Paddle's official C library too (where oneDNN is on: a build without it would
   * log an error). */
  if (PD_ConfigMkldnnEnabled(cfg)) PD_ConfigSetMkldnnCacheCapacity(cfg, 0);
  *root = PD_PredictorCreate(cfg);
  PD_ConfigDestroy(cfg);
  if (!*root)
    return phot_rt_fail(PHOT_E_RUNTIME, "open: Paddle could not load %s %s: %s", m->d->model,
                        m->d->version, phot_rt_capi_error());
  return PHOT_OK;
}

#define OPT_FITS(o, field) \
  ((o)->struct_size >= offsetof(phot_open_options, field) + sizeof((o)->field))

static void *keeper(void *arg);

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The model files for one creation: embedded ones copied out of our file, or the paths. */
static int32_t files_ready(struct phot_model *m) {
  if (m->self_fd >= 0) return files_from_self(m);
  /* Paddle 3.3.1 creates a predictor without its parameters file, and it computes NaN */
  if (access(m->prog, R_OK) != 0 || access(m->params, R_OK) != 0)
    return phot_rt_fail(PHOT_E_RUNTIME, "open: the model files of %s %s are gone: %s", m->d->model,
                        m->d->version, m->params);
  return PHOT_OK;
}

/* One more predictor (open() and then only the keeper, so one at a time). */
static int32_t new_slot(struct phot_model *m, slot_t **out) {
  PD_Predictor *p = NULL;
  int32_t rc = files_ready(m);
  if (rc == PHOT_OK) rc = create_predictor(m, &p);
  files_drop(m);
  if (rc == PHOT_OK) rc = slot_make(m->d, p, out);
  if (rc == PHOT_OK) (*out)->free_since_ns = now_ns();
  return rc;
}

int32_t phot_rt_open(const phot_rt_desc *d, const phot_open_options *options, phot_model **out) {
  phot_rt_clear_error();
  if (!out) return phot_rt_fail(PHOT_E_INVALID_ARGUMENT, "open: out is NULL");
  *out = NULL;
  int32_t pool_initial = 1, pool_max = 0, threads = 1, idle_ms = 30000;
  const char *model_dir = NULL;
  if (options) {
    if (options->struct_size < sizeof(uint32_t))
      return phot_rt_fail(PHOT_E_INVALID_ARGUMENT, "open: options->struct_size is %u",
                          (unsigned)options->struct_size);
    if (OPT_FITS(options, pool_initial) && options->pool_initial)
      pool_initial = options->pool_initial;
    if (OPT_FITS(options, pool_max)) pool_max = options->pool_max;
    if (OPT_FITS(options, threads) && options->threads) threads = options->threads;
    if (OPT_FITS(options, model_dir)) model_dir = options->model_dir;
    if (OPT_FITS(options, pool_idle_ms) && options->pool_idle_ms)
      idle_ms = options->pool_idle_ms;
  }
  if (pool_max == 0) pool_max = pool_initial;
  if (pool_initial < 1 || pool_max < pool_initial || pool_max > 1024 || threads < 1)
    return phot_rt_fail(PHOT_E_INVALID_ARGUMENT,
                        "open: need 1 <= pool_initial <= pool_max <= 1024 and threads >= 1 "
                        "(got %d, %d, %d)", pool_initial, pool_max, threads);

  struct phot_model *m = calloc(1, sizeof *m);
  if (!m) return phot_rt_fail(PHOT_E_RUNTIME, "open: out of memory");
  m->magic = PHOT_MAGIC;
  m->d = d;
  m->files.fds[0] = m->files.fds[1] = -1;
  m->self_fd = -1;
  m->pool_min = pool_initial;
  m->pool_max = pool_max;
  m->idle_ns = idle_ms > 0 ? (int64_t)idle_ms * 1000000 : 0;
  m->all = calloc((size_t)pool_max, sizeof *m->all);
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv, NULL);
  pthread_cond_init(&m->keep_cv, NULL);
  m->threads = threads;
  int32_t rc = m->all ? PHOT_OK : phot_rt_fail(PHOT_E_RUNTIME, "open: out of memory");
  if (rc == PHOT_OK) rc = phot_rt_check_precision(d); /* before the model files are copied */
  if (rc == PHOT_OK)
    rc = (d->embedded && !model_dir)
             ? self_open(m)
             : files_from_dir(d, model_dir, m->prog, m->params, sizeof m->prog);
  for (int i = 0; rc == PHOT_OK && i < pool_initial; i++) {
    rc = new_slot(m, &m->all[i]);
  }
  if (rc != PHOT_OK) {
    model_free(m);
    return rc;
  }
  for (int i = pool_initial - 1; i >= 0; i--) {
    m->all[i]->next_free = m->free_list;
    m->free_list = m->all[i];
  }
  m->alive = pool_initial;
  if (pool_initial == pool_max) {
    self_close(m); /* no predictor will ever be made again */
  } else {
    int err = pthread_create(&m->keeper, NULL, keeper, m);
    if (err != 0) { /* a call must never create one itself: this handle could not grow */
      rc = phot_rt_fail(PHOT_E_RUNTIME, "open: %s %s: cannot start the thread that grows its "
                        "pool (pool_max %d > pool_initial %d): %s", d->model, d->version,
                        pool_max, pool_initial, strerror(err));
      model_free(m);
      return rc;
    }
    m->has_keeper = 1;
  }
  registry_add(m);
  *out = m;
  return PHOT_OK;
}

/* Wait on the keeper's condition until `deadline` (CLOCK_MONOTONIC ns; 0: no deadline). The
 * wait itself runs on CLOCK_REALTIME (a condattr clock would import a GLIBC_2.34 symbol, above
 * the plugins' 2.28 floor); the keeper re-reads the monotonic clock after every wake-up. */
static void keeper_wait(struct phot_model *m, int64_t deadline) {
  if (!deadline) {
    pthread_cond_wait(&m->keep_cv, &m->mu);
    return;
  }
  int64_t left = deadline - now_ns();
  if (left <= 0) return;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  int64_t ns = until.tv_nsec + left % 1000000000;
  until.tv_sec += (time_t)(left / 1000000000 + ns / 1000000000);
  until.tv_nsec = (long)(ns % 1000000000);
  pthread_cond_timedwait(&m->keep_cv, &m->mu, &until);
}

/* Under m->mu: take the predictors above pool_min that have been free for idle_ns out of the
 * pool (into *victims, linked by next_free); returns when the next one would expire (0: none). */
static int64_t take_idle(struct phot_model *m, slot_t **victims) {
  int64_t now = now_ns(), next = 0;
  for (slot_t **p = &m->free_list; *p && m->idle_ns > 0;) {
    slot_t *s = *p;
    int64_t expires = s->free_since_ns + m->idle_ns;
    if (m->alive <= m->pool_min) break;
    if (expires > now) {
      if (!next || expires < next) next = expires;
      p = &s->next_free;
      continue;
    }
    *p = s->next_free; /* out of the free list, and out of all[] (all[0..alive) stays dense) */
    for (int i = 0; i < m->alive; i++)
      if (m->all[i] == s) {
        m->all[i] = m->all[m->alive - 1];
        m->all[m->alive - 1] = NULL;
        break;
      }
    m->alive--;
    s->next_free = *victims;
    *victims = s;
  }
  return m->alive > m->pool_min ? next : 0;
}

/* The handle's pool thread, for pools with pool_max > pool_initial. It grows: one predictor at
 * a time, while callers found every predictor busy (grow_wanted) and the pool is below pool_max.
 * A request never creates one itself (a resnet18 predictor takes 1.2-1.8 s): it takes whichever
 * predictor comes free first, the new one or one coming back. A failed creation is retried after
 * 1 s, doubling to 30 s; callers keep the predictors that exist. And it reclaims: a predictor
 * above pool_initial that stayed free for idle_ns is destroyed, with no call needed to notice,
 * and malloc_trim() hands the freed heap back to the system. Niced 10, as paddlehot's Python
 * host grows pools and loads versions, so it takes what the requests leave. It ends at close,
 * or once the pool is full when reclaiming is off. */
static void *keeper(void *arg) {
  struct phot_model *m = arg;
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10); /* this thread only (Linux) */
  prctl(PR_SET_NAME, "phot-pool", 0, 0, 0); /* /proc/PID/task/TID/comm (prctl: an old symbol) */
  int backoff_s = 0;
  int64_t retry_at = 0;
  pthread_mutex_lock(&m->mu);
  while (!m->closed && (m->idle_ns > 0 || m->alive < m->pool_max)) {
    if (m->grow_wanted && m->alive < m->pool_max && now_ns() >= retry_at) {
      pthread_mutex_unlock(&m->mu);
      slot_t *s = NULL;
      int32_t rc = new_slot(m, &s);
      pthread_mutex_lock(&m->mu);
      if (rc != PHOT_OK) {
        backoff_s = backoff_s ? (backoff_s * 2 > 30 ? 30 : backoff_s * 2) : 1;
        retry_at = now_ns() + (int64_t)backoff_s * 1000000000;
        continue;
      }
      backoff_s = 0;
      retry_at = 0;
      m->all[m->alive++] = s;
      s->next_free = m->free_list;
      m->free_list = s;
      m->grow_wanted = 0; /* more only if a caller has to wait again */
      pthread_cond_broadcast(&m->cv);
      continue;
    }
    slot_t *victims = NULL;
    int64_t next = take_idle(m, &victims);
    if (victims) {
      pthread_mutex_unlock(&m->mu); /* calls go on with the others meanwhile */
      while (victims) {
        slot_t *s = victims;
        victims = s->next_free;
        slot_destroy(m->d, s);
      }
      malloc_trim(0);
      pthread_mutex_lock(&m->mu);
      continue;
    }
    /* every predictor above pool_min busy: none can expire sooner than idle_ns from now, and a
     * release does not wake this thread */
    if (!next && m->idle_ns > 0 && m->alive > m->pool_min) next = now_ns() + m->idle_ns;
    if (m->grow_wanted && m->alive < m->pool_max && (!next || retry_at < next)) next = retry_at;
    keeper_wait(m, next);
  }
  if (m->alive >= m->pool_max) self_close(m); /* reclaiming off: nothing is made again */
  pthread_mutex_unlock(&m->mu);
  return NULL;
}

/* Under m->mu: the free predictor this thread took last, else the one freed last. Paddle keeps
 * oneDNN kernels and reordered weights per thread and predictor (resnet18: ~49 MB for each
 * thread that ran a predictor, and a first run that costs two), so a thread that sticks to its
 * predictor keeps the process smaller and its calls faster. */
static slot_t *take_free(struct phot_model *m) {
  pthread_t self = pthread_self();
  slot_t **at = &m->free_list;
  for (slot_t **p = &m->free_list; *p; p = &(*p)->next_free)
    if ((*p)->has_user && pthread_equal((*p)->user, self)) {
      at = p;
      break;
    }
  slot_t *s = *at;
  *at = s->next_free;
  s->user = self;
  s->has_user = 1;
  return s;
}

/* Take a predictor: a free one, else wait for one coming back or the keeper's next one. */
static int32_t acquire(struct phot_model *m, slot_t **out) {
  pthread_mutex_lock(&m->mu);
  if (m->closed) {
    pthread_mutex_unlock(&m->mu);
    return phot_rt_fail(PHOT_E_CLOSED, "infer: the handle of %s %s is closed", m->d->model,
                        m->d->version);
  }
  m->in_flight++;
  for (;;) {
    if (m->free_list) {
      *out = take_free(m);
      pthread_mutex_unlock(&m->mu);
      return PHOT_OK;
    }
    if (m->alive < m->pool_max && !m->grow_wanted) { /* the keeper makes the next one */
      m->grow_wanted = 1;
      pthread_cond_signal(&m->keep_cv);
    }
    pthread_cond_wait(&m->cv, &m->mu);
  }
}

static void release(struct phot_model *m, slot_t *s) {
  pthread_mutex_lock(&m->mu);
  s->free_since_ns = m->idle_ns > 0 ? now_ns() : 0;
  s->next_free = m->free_list;
  m->free_list = s;
  m->in_flight--;
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
}

static int check_model(const struct phot_model *m) { return m && m->magic == PHOT_MAGIC; }

int32_t phot_rt_infer(phot_model *model, const phot_tensor *inputs, size_t n_inputs,
                      phot_tensor *outputs, size_t n_outputs) {
  phot_rt_clear_error();
  struct phot_model *m = model;
  if (!check_model(m))
    return phot_rt_fail(PHOT_E_INVALID_ARGUMENT, "infer: model is NULL or not a handle");
  const phot_rt_desc *d = m->d;
  size_t order[d->n_inputs > 0 ? d->n_inputs : 1];
  int which[d->n_outputs > 0 ? d->n_outputs : 1];
  phot_rt_call call = {.order = order, .which = which};
  int32_t rc = phot_rt_check_call(d, inputs, n_inputs, outputs, n_outputs, &call);
  if (rc != PHOT_OK) {
    /* a closed handle says so first */
    pthread_mutex_lock(&m->mu);
    int closed = m->closed;
    pthread_mutex_unlock(&m->mu);
    return closed ? phot_rt_fail(PHOT_E_CLOSED, "infer: the handle of %s %s is closed", d->model,
                                 d->version)
                  : rc;
  }
  slot_t *s = NULL;
  rc = acquire(m, &s);
  if (rc != PHOT_OK) return rc;
  rc = phot_rt_run(d, s->pred, s->in, s->out, &call);
  release(m, s);
  return rc;
}

int32_t phot_rt_close(phot_model *model) {
  phot_rt_clear_error();
  struct phot_model *m = model;
  if (!check_model(m))
    return phot_rt_fail(PHOT_E_INVALID_ARGUMENT, "close: model is NULL or not a handle");
  pthread_mutex_lock(&m->mu);
  if (m->closed) {
    pthread_mutex_unlock(&m->mu);
    return phot_rt_fail(PHOT_E_CLOSED, "close: the handle of %s %s is already closed",
                        m->d->model, m->d->version);
  }
  m->closed = 1;
  pthread_cond_signal(&m->keep_cv);
  while (m->in_flight > 0) pthread_cond_wait(&m->cv, &m->mu);
  if (m->has_keeper) { /* it may be creating: its predictor joins the pool, released below */
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->keeper, NULL);
    pthread_mutex_lock(&m->mu);
    m->has_keeper = 0;
  }
  registry_remove(m);
  model_release(m);
  pthread_mutex_unlock(&m->mu);
  /* The struct stays as a tombstone (a few hundred bytes, never freed) so later calls get
   * PHOT_E_CLOSED instead of touching freed memory. */
  return PHOT_OK;
}
