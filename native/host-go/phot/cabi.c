/* See cabi.h. */
#define _GNU_SOURCE
#include "cabi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_error(char *err, size_t errcap, const char *msg) {
  if (!err || errcap == 0) return;
  snprintf(err, errcap, "%s", msg ? msg : "");
}

static void copy_last_error(void *last_error_fn, char *err, size_t errcap) {
  copy_error(err, errcap, ((phot_last_error_fn)last_error_fn)());
}

void *phot_go_dlopen(const char *path, int global, char *err, size_t errcap) {
  void *lib = dlopen(path, RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
  if (!lib) copy_error(err, errcap, dlerror());
  return lib;
}

void *phot_go_dlsym(void *lib, const char *name, char *err, size_t errcap) {
  dlerror();
  void *p = dlsym(lib, name);
  if (!p) {
    const char *msg = dlerror();
    copy_error(err, errcap, msg ? msg : "symbol is NULL");
  }
  return p;
}

int phot_go_dlclose(void *lib, char *err, size_t errcap) {
  int rc = dlclose(lib);
  if (rc != 0) copy_error(err, errcap, dlerror());
  return rc;
}

int32_t phot_go_open(void *open_fn, void *last_error_fn, int32_t pool_initial, int32_t pool_max,
                     int32_t threads, int32_t pool_idle_ms, const char *model_dir,
                     phot_model **out, char *err, size_t errcap) {
  phot_open_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.pool_initial = pool_initial;
  o.pool_max = pool_max;
  o.threads = threads;
  o.model_dir = model_dir;
  o.pool_idle_ms = pool_idle_ms;
  int32_t rc = ((phot_open_fn)open_fn)(&o, out);
  if (rc != PHOT_OK) copy_last_error(last_error_fn, err, errcap);
  return rc;
}

/* descs: n_in inputs then n_out outputs, in Go memory, with data NULL for tensors 0..15 whose
 * data comes as p0..p15 (Go memory may be passed as an argument, but not stored in Go memory
 * handed to C). The plugin sees one C array that holds both; the fields it writes back (dtype,
 * rank, shape, byte_size) are copied to descs, the data pointers are not. */
int32_t phot_go_infer(void *infer_fn, void *last_error_fn, phot_model *model,
                      phot_tensor *descs, size_t n_in, size_t n_out,
                      void *p0, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6,
                      void *p7, void *p8, void *p9, void *p10, void *p11, void *p12, void *p13,
                      void *p14, void *p15, char *err, size_t errcap) {
  void *args[PHOT_GO_ARG_SLOTS] = {p0, p1, p2,  p3,  p4,  p5,  p6,  p7,
                                   p8, p9, p10, p11, p12, p13, p14, p15};
  size_t n = n_in + n_out;
  phot_tensor stack[8] = {{0}};
  phot_tensor *t = n <= 8 ? stack : malloc(n * sizeof *t); /* n == 0: stack, never read */
  if (!t) {
    copy_error(err, errcap, "out of memory for tensor descriptors");
    return PHOT_E_RUNTIME;
  }
  for (size_t i = 0; i < n; i++) {
    t[i] = descs[i];
    if (i < PHOT_GO_ARG_SLOTS && args[i]) t[i].data = args[i];
  }
  int32_t rc = ((phot_infer_fn)infer_fn)(model, t, n_in, t + n_in, n_out);
  for (size_t i = n_in; i < n; i++) {
    descs[i].dtype = t[i].dtype;
    descs[i].rank = t[i].rank;
    memcpy(descs[i].shape, t[i].shape, sizeof t[i].shape);
    descs[i].byte_size = t[i].byte_size;
  }
  if (t != stack) free(t);
  if (rc != PHOT_OK) copy_last_error(last_error_fn, err, errcap);
  return rc;
}

int32_t phot_go_close(void *close_fn, void *last_error_fn, phot_model *model, char *err,
                      size_t errcap) {
  int32_t rc = ((phot_close_fn)close_fn)(model);
  if (rc != PHOT_OK) copy_last_error(last_error_fn, err, errcap);
  return rc;
}

const char *phot_go_manifest(void *manifest_fn) { return ((phot_manifest_fn)manifest_fn)(); }

/* ---- signal handlers ----
 * Paddle, started by the first open() of a pdcapi plugin, installs its own handlers (SIGSEGV and
 * others, without SA_ONSTACK). In a Go process that turns every nil dereference into a Paddle
 * crash report and can break the runtime's own signals, so the host puts back what was there
 * before the call. */
#include <signal.h>

#define PHOT_GO_NSIG 65
static struct sigaction g_saved[PHOT_GO_NSIG];

void phot_go_signals_save(void) {
  for (int s = 1; s < PHOT_GO_NSIG; s++) sigaction(s, NULL, &g_saved[s]);
}

/* Restores every handler that changed since phot_go_signals_save; returns a bit set of them
 * (bit s-1 for signal s). */
uint64_t phot_go_signals_restore(void) {
  uint64_t changed = 0;
  for (int s = 1; s < PHOT_GO_NSIG; s++) {
    struct sigaction now;
    if (sigaction(s, NULL, &now) != 0) continue;
    if (now.sa_sigaction != g_saved[s].sa_sigaction || now.sa_flags != g_saved[s].sa_flags) {
      sigaction(s, &g_saved[s], NULL);
      changed |= 1ULL << (s - 1);
    }
  }
  return changed;
}

/* ---- benchmark baseline ----
 * n infer calls made straight from C with one input and one output, each output descriptor reset
 * as native/host does: what a C host pays per call. Returns the nanoseconds, or the failing
 * return code (negative). */
#include <time.h>

int64_t phot_go_c_loop(void *infer_fn, phot_model *model, const phot_tensor *input, void *in_data,
                       void *out_data, uint64_t out_cap, int64_t n) {
  phot_tensor in = *input;
  in.data = in_data;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int64_t i = 0; i < n; i++) {
    phot_tensor out;
    memset(&out, 0, sizeof out);
    out.struct_size = sizeof out;
    out.data = out_data;
    out.byte_size = out_cap;
    int32_t rc = ((phot_infer_fn)infer_fn)(model, &in, 1, &out, 1);
    if (rc != PHOT_OK) return rc;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
}

/* The Paddle Inference C library (a plugin's NEEDED entry) embeds an interpreter with thread
 * destructors and interpreter state that cannot be unloaded: once a plugin brought it in, it
 * stays (RTLD_NODELETE), whatever happens to the plugins. Returns 1 if it is loaded. */
int phot_go_pin_capi(void) {
  return dlopen("libpaddle_inference_c.so", RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != NULL;
}
