/*
 * paddlehot reference host: the smallest C service that hot-swaps a model version.
 *
 * It dlopen()s version 1 of a model's plugin, starts worker threads that call infer in a loop,
 * and once half the calls (-n) are done it loads version 2 (dlopen + open, while v1 keeps serving),
 * flips an atomic pointer to v2, waits for v1's calls in flight to drain (a per-version
 * refcount), closes v1 and dlclose()s it. Every result is compared with the expected output of
 * the version that computed it. Exit 0 only if every call succeeded and matched, and both
 * versions served calls.
 *
 *   host [-t THREADS] [-n CALLS] [-p POOL_MAX]
 *        -i NAME:DTYPE:D0,D1,...:INPUT.bin
 *        V1.so V1_PREFIX V1_EXPECTED.bin  V2.so V2_PREFIX V2_EXPECTED.bin
 *
 * INPUT.bin holds the raw input tensor (C order); EXPECTED.bin the raw float32 first output (in
 * manifest order) for that input. PREFIX is the manifest's plugin.symbol_prefix, e.g.
 * phot_mlp_v1_0_0_. The plugins need libpaddle_inference_c.so: put its directory on
 * LD_LIBRARY_PATH (paddlehot's pdcapi starts no Python: libpython only has to be present).
 *
 * A Go service does the same with cgo: dlopen/dlsym the five functions, keep an
 * atomic.Pointer to the serving version, and count calls in flight per version.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "paddlehot/plugin.h"

typedef struct version {
  const char *label;
  void *lib;
  phot_open_fn open;
  phot_infer_fn infer;
  phot_close_fn close;
  phot_manifest_fn manifest;
  phot_last_error_fn last_error;
  phot_model *handle;
  float *expected;
  size_t expected_n;
  atomic_int refs;   /* calls in flight on this version */
  atomic_long calls; /* calls served */
} version;

static _Atomic(version *) g_current;
static atomic_long g_done, g_failed;
static atomic_int g_stop;
static long g_total = 400;
static int g_threads = 4;

static phot_tensor g_input;

static void *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc(len > 0 ? (size_t)len : 1);
  *n = fread(buf, 1, (size_t)len, f);
  fclose(f);
  return buf;
}

static int dtype_code(const char *s, size_t *size) {
  static const struct { const char *name; int code; size_t size; } t[] = {
      {"float32", PHOT_DTYPE_FLOAT32, 4}, {"int32", PHOT_DTYPE_INT32, 4},
      {"int64", PHOT_DTYPE_INT64, 8},     {"uint8", PHOT_DTYPE_UINT8, 1},
      {"int8", PHOT_DTYPE_INT8, 1}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcmp(s, t[i].name) == 0) {
      *size = t[i].size;
      return t[i].code;
    }
  return 0;
}

/* NAME:DTYPE:D0,D1:FILE */
static int parse_input(char *spec) {
  char *name = strtok(spec, ":"), *dt = strtok(NULL, ":"), *dims = strtok(NULL, ":"),
       *file = strtok(NULL, "");
  if (!name || !dt || !dims || !file) return -1;
  size_t esize = 0;
  memset(&g_input, 0, sizeof g_input);
  g_input.struct_size = sizeof g_input;
  g_input.name = name;
  g_input.dtype = dtype_code(dt, &esize);
  if (!g_input.dtype) return -1;
  uint64_t count = 1;
  for (char *d = strtok(dims, ","); d; d = strtok(NULL, ",")) {
    if (g_input.rank == PHOT_MAX_RANK) return -1;
    g_input.shape[g_input.rank++] = atoll(d);
    count *= (uint64_t)atoll(d);
  }
  size_t n = 0;
  g_input.data = read_file(file, &n);
  g_input.byte_size = count * esize;
  if (!g_input.data || n != g_input.byte_size) {
    fprintf(stderr, "host: %s has %zu bytes, the input needs %llu\n", file, n,
            (unsigned long long)g_input.byte_size);
    return -1;
  }
  return 0;
}

static void *sym(version *v, const char *prefix, const char *fn) {
  char name[256];
  snprintf(name, sizeof name, "%s%s", prefix, fn);
  void *p = dlsym(v->lib, name);
  if (!p) fprintf(stderr, "host: %s: no symbol %s\n", v->label, name);
  return p;
}

static int load_version(version *v, const char *so, const char *prefix, const char *expect) {
  v->label = so;
  /* RTLD_GLOBAL on purpose: versioned names never clash, even in the global scope */
  v->lib = dlopen(so, RTLD_NOW | RTLD_GLOBAL);
  if (!v->lib) {
    fprintf(stderr, "host: dlopen %s: %s\n", so, dlerror());
    return -1;
  }
  v->open = (phot_open_fn)sym(v, prefix, "open");
  v->infer = (phot_infer_fn)sym(v, prefix, "infer");
  v->close = (phot_close_fn)sym(v, prefix, "close");
  v->manifest = (phot_manifest_fn)sym(v, prefix, "manifest");
  v->last_error = (phot_last_error_fn)sym(v, prefix, "last_error");
  if (!v->open || !v->infer || !v->close || !v->manifest || !v->last_error) return -1;
  size_t n = 0;
  v->expected = read_file(expect, &n);
  if (!v->expected || n % 4) {
    fprintf(stderr, "host: cannot read %s\n", expect);
    return -1;
  }
  v->expected_n = n / 4;
  phot_open_options o = {0};
  o.struct_size = sizeof o;
  o.pool_initial = 1;
  o.pool_max = g_threads;
  o.threads = 1;
  int32_t rc = v->open(&o, &v->handle);
  if (rc != PHOT_OK) {
    fprintf(stderr, "host: open %s: %d %s\n", so, rc, v->last_error());
    return -1;
  }
  /* warm up before serving */
  float *out = malloc(v->expected_n * 4);
  phot_tensor t = {0};
  t.struct_size = sizeof t;
  t.data = out;
  t.byte_size = v->expected_n * 4;
  rc = v->infer(v->handle, &g_input, 1, &t, 1);
  free(out);
  if (rc != PHOT_OK) {
    fprintf(stderr, "host: warm-up %s: %d %s\n", so, rc, v->last_error());
    return -1;
  }
  return 0;
}

static version *acquire(void) {
  for (;;) {
    version *v = atomic_load(&g_current);
    atomic_fetch_add(&v->refs, 1);
    if (atomic_load(&g_current) == v) return v;
    atomic_fetch_sub(&v->refs, 1); /* swapped under us: retry on the new one */
  }
}

/* Workers call infer until told to stop: -n/2 calls on v1, a swap, then -n/2 on v2. */
static void *worker(void *arg) {
  (void)arg;
  size_t cap = 0;
  float *out = NULL;
  while (!atomic_load(&g_stop)) {
    version *v = acquire();
    if (cap < v->expected_n) {
      cap = v->expected_n;
      out = realloc(out, cap * 4);
    }
    phot_tensor t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    t.name = NULL; /* first output in manifest order */
    t.data = out;
    t.byte_size = cap * 4;
    int32_t rc = v->infer(v->handle, &g_input, 1, &t, 1);
    int ok = rc == PHOT_OK && t.dtype == PHOT_DTYPE_FLOAT32 && t.byte_size == v->expected_n * 4;
    if (rc != PHOT_OK) fprintf(stderr, "host: infer on %s: %d %s\n", v->label, rc, v->last_error());
    for (size_t i = 0; ok && i < v->expected_n; i++)
      if (!(fabsf(out[i] - v->expected[i]) <= 1e-5f + 1e-4f * fabsf(v->expected[i]))) {
        fprintf(stderr, "host: %s: output[%zu] = %g, expected %g\n", v->label, i, out[i],
                v->expected[i]);
        ok = 0;
      }
    atomic_fetch_add(&v->calls, 1);
    atomic_fetch_sub(&v->refs, 1);
    if (!ok) atomic_fetch_add(&g_failed, 1);
    atomic_fetch_add(&g_done, 1);
  }
  free(out);
  return NULL;
}

/* Is the file at `path` mapped into this process? (by device and inode, from /proc/self/maps) */
static int mapped(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  char line[4096];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned maj, min;
    unsigned long ino;
    if (sscanf(line, "%*s %*s %*s %x:%x %lu", &maj, &min, &ino) == 3 && ino == st.st_ino &&
        makedev(maj, min) == st.st_dev)
      found = 1;
  }
  fclose(f);
  return found;
}

int main(int argc, char **argv) {
  int opt, pool = 0;
  char *input = NULL;
  while ((opt = getopt(argc, argv, "t:n:p:i:")) != -1) {
    if (opt == 't') g_threads = atoi(optarg);
    else if (opt == 'n') g_total = atol(optarg);
    else if (opt == 'p') pool = atoi(optarg);
    else if (opt == 'i') input = optarg;
    else return 2;
  }
  (void)pool;
  if (!input || argc - optind != 6 || g_threads < 1 || g_total < 2) {
    fprintf(stderr,
            "usage: host [-t THREADS] [-n CALLS] -i NAME:DTYPE:D0,D1:INPUT.bin "
            "V1.so V1_PREFIX V1_EXPECTED.bin V2.so V2_PREFIX V2_EXPECTED.bin\n");
    return 2;
  }
  if (parse_input(input) != 0) {
    fprintf(stderr, "host: bad -i %s\n", input);
    return 2;
  }
  char **a = argv + optind;
  static version v1, v2;
  if (load_version(&v1, a[0], a[1], a[2]) != 0) return 1;
  atomic_store(&g_current, &v1);

  pthread_t *tids = calloc((size_t)g_threads, sizeof *tids);
  for (int i = 0; i < g_threads; i++) pthread_create(&tids[i], NULL, worker, NULL);

  while (atomic_load(&g_done) < g_total / 2) usleep(200);
  /* load and warm v2 while v1 serves, flip, drain v1, release it */
  if (load_version(&v2, a[3], a[4], a[5]) != 0) return 1;
  atomic_store(&g_current, &v2);
  while (atomic_load(&v1.refs) > 0) usleep(100);
  long v1_calls = atomic_load(&v1.calls);
  int32_t rc = v1.close(v1.handle);
  int32_t rc_after = v1.infer(v1.handle, &g_input, 1, NULL, 0); /* tombstone: PHOT_E_CLOSED */
  if (rc != PHOT_OK || rc_after != PHOT_E_CLOSED) {
    fprintf(stderr, "host: close v1 gave %d, infer after close gave %d\n", rc, rc_after);
    atomic_fetch_add(&g_failed, 1);
  }
  if (dlclose(v1.lib) != 0) {
    fprintf(stderr, "host: dlclose v1: %s\n", dlerror());
    atomic_fetch_add(&g_failed, 1);
  }
  /* the library really left: nothing (TLS, destructors, NODELETE) pinned it */
  int v1_mapped = mapped(a[0]);
  printf("host: v1 still mapped after dlclose: %s\n", v1_mapped ? "yes" : "no");
  if (v1_mapped) atomic_fetch_add(&g_failed, 1);

  /* v2 serves the second half */
  while (atomic_load(&v2.calls) < g_total / 2) usleep(200);
  atomic_store(&g_stop, 1);
  for (int i = 0; i < g_threads; i++) pthread_join(tids[i], NULL);
  long v2_calls = atomic_load(&v2.calls);
  v2.close(v2.handle);
  long failed = atomic_load(&g_failed);
  printf("host: %ld calls on v1, %ld on v2, %ld failed, %d threads\n", v1_calls, v2_calls,
         failed, g_threads);
  return (failed == 0 && v1_calls > 0 && v2_calls > 0) ? 0 : 1;
}
