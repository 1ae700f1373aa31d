/* Test driver for native/pdcapi: a C host (no Python of its own) using the Paddle Inference C API
 * exactly as a plugin would. Usage:
 *   pdcapi_demo run|buffer PROG PARAMS BATCH   print the outputs for a fixed input
 *   pdcapi_demo threads PROG PARAMS N ITERS    N threads, one clone each, compare with the root
 *   pdcapi_demo fail PROG PARAMS               failure paths; the process must live
 *   pdcapi_demo open PROG PARAMS [DIM]         create, then run one [2, DIM] input (default 16);
 *                                              prints "open ok" or "open|run NULL | message",
 *                                              then "alive": a bad model is an error, not a crash
 *   pdcapi_demo bench PROG PARAMS ITERS        microseconds per call, as a plugin's infer does */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "paddlehot_pdcapi_ext.h"
#include "pd_inference_api.h"

/* weak, so this also links against the official library, which lacks it */
extern const char *paddlehot_pdcapi_last_error(void) __attribute__((weak));
static const char *last_error(void) {
  return paddlehot_pdcapi_last_error ? paddlehot_pdcapi_last_error() : "(no message)";
}

#define DIE(...)                    \
  do {                              \
    fprintf(stderr, __VA_ARGS__);   \
    fprintf(stderr, ": %s\n", last_error()); \
    exit(1);                        \
  } while (0)

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc(len ? (size_t)len : 1);
  *n = fread(buf, 1, (size_t)len, f);
  fclose(f);
  return buf;
}

static PD_Predictor *create(const char *mode, const char *prog, const char *params) {
  PD_Config *c = PD_ConfigCreate();
  if (strcmp(mode, "buffer") == 0) {
    size_t np = 0, nw = 0;
    char *p = slurp(prog, &np), *w = slurp(params, &nw);
    if (!p || !w) DIE("read model files");
    PD_ConfigSetModelBuffer(c, p, np, w, nw);
    free(p); /* the config keeps copies */
    free(w);
  } else {
    PD_ConfigSetModel(c, prog, params);
  }
  PD_ConfigDisableGpu(c);
  PD_ConfigSetCpuMathLibraryNumThreads(c, 1);
  PD_ConfigDisableGlogInfo(c);
  PD_Predictor *pr = PD_PredictorCreate(c);
  PD_ConfigDestroy(c); /* the caller's, as in Paddle's capi_exp */
  if (!pr) DIE("PD_PredictorCreate");
  return pr;
}

/* one inference on a fixed input; returns malloc'd outputs of the first output */
static float *infer(PD_Predictor *pr, int batch, float bias, size_t *n_out, int32_t *out_shape) {
  PD_OneDimArrayCstr *in = PD_PredictorGetInputNames(pr);
  PD_OneDimArrayCstr *out = PD_PredictorGetOutputNames(pr);
  if (!in || !out) DIE("names");
  PD_Tensor *x = PD_PredictorGetInputHandle(pr, in->data[0]);
  if (!x) DIE("input handle");
  int32_t shape[2] = {batch, 16};
  float *data = malloc(sizeof(float) * (size_t)batch * 16);
  for (int i = 0; i < batch * 16; i++) data[i] = (float)((i % 13) - 6) * 0.125f + bias;
  PD_TensorReshape(x, 2, shape);
  PD_TensorCopyFromCpuFloat(x, data);
  if (!PD_PredictorRun(pr)) DIE("run");
  PD_Tensor *y = PD_PredictorGetOutputHandle(pr, out->data[0]);
  if (!y) DIE("output handle");
  PD_OneDimArrayInt32 *s = PD_TensorGetShape(y);
  if (!s) DIE("shape");
  size_t n = 1;
  for (size_t i = 0; i < s->size; i++) {
    n *= (size_t)s->data[i];
    if (out_shape && i < 2) out_shape[i] = s->data[i];
  }
  if (PD_TensorGetDataType(y) != PD_DATA_FLOAT32) DIE("dtype");
  float *res = malloc(sizeof(float) * n);
  PD_TensorCopyToCpuFloat(y, res);
  *n_out = n;
  PD_OneDimArrayInt32Destroy(s);
  PD_TensorDestroy(x);
  PD_TensorDestroy(y);
  PD_OneDimArrayCstrDestroy(in);
  PD_OneDimArrayCstrDestroy(out);
  free(data);
  return res;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

typedef struct {
  PD_Predictor *root;
  int iters, id, ok;
  const float *want;
  size_t n;
} job;

static void *worker(void *arg) {
  job *j = arg;
  PD_Predictor *mine = PD_PredictorClone(j->root);
  if (!mine) DIE("clone");
  j->ok = 1;
  for (int i = 0; i < j->iters; i++) {
    size_t n = 0;
    float *got = infer(mine, 3, 0.5f, &n, NULL);
    if (n != j->n || memcmp(got, j->want, n * sizeof(float)) != 0) j->ok = 0;
    free(got);
  }
  PD_PredictorDestroy(mine);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s run|buffer|threads|fail PROG PARAMS [...]\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1], *prog = argv[2], *params = argv[3];
  if (strcmp(mode, "run") == 0 || strcmp(mode, "buffer") == 0) {
    PD_Predictor *pr = create(mode, prog, params);
    printf("version %s\n", strtok(strdup(PD_GetVersion()), "\n"));
    printf("inputs %zu outputs %zu\n", PD_PredictorGetInputNum(pr), PD_PredictorGetOutputNum(pr));
    size_t n = 0;
    int32_t shape[2] = {0, 0};
    float *y = infer(pr, argc > 4 ? atoi(argv[4]) : 2, 0.0f, &n, shape);
    printf("shape %d %d\n", shape[0], shape[1]);
    for (size_t i = 0; i < n; i++) printf("%.9g\n", y[i]);
    free(y);
    PD_PredictorDestroy(pr);
    return 0;
  }
  if (strcmp(mode, "threads") == 0) {
    int nt = argc > 4 ? atoi(argv[4]) : 2, iters = argc > 5 ? atoi(argv[5]) : 50;
    PD_Predictor *root = create("run", prog, params);
    size_t n = 0;
    float *want = infer(root, 3, 0.5f, &n, NULL);
    pthread_t th[16];
    job jobs[16];
    for (int i = 0; i < nt; i++) {
      jobs[i] = (job){root, iters, i, 0, want, n};
      pthread_create(&th[i], NULL, worker, &jobs[i]);
    }
    int ok = 1;
    for (int i = 0; i < nt; i++) {
      pthread_join(th[i], NULL);
      ok &= jobs[i].ok;
    }
    PD_PredictorDestroy(root);
    free(want);
    printf("threads %s\n", ok ? "ok" : "MISMATCH");
    return ok ? 0 : 1;
  }
  if (strcmp(mode, "bench") == 0) {
    int iters = argc > 4 ? atoi(argv[4]) : 20000;
    PD_Predictor *pr = create("run", prog, params);
    PD_OneDimArrayCstr *in = PD_PredictorGetInputNames(pr), *out = PD_PredictorGetOutputNames(pr);
    PD_Tensor *x = PD_PredictorGetInputHandle(pr, in->data[0]);
    PD_Tensor *y = PD_PredictorGetOutputHandle(pr, out->data[0]);
    int32_t shape[2] = {1, 16};
    float data[16] = {0}, res[64];
    double t[5] = {0};
    for (int i = 0; i < iters + 500; i++) {
      double t0 = now_us();
      PD_TensorReshape(x, 2, shape);
      double t1 = now_us();
      PD_TensorCopyFromCpuFloat(x, data);
      double t2 = now_us();
      if (!PD_PredictorRun(pr)) DIE("run");
      double t3 = now_us();
      PD_OneDimArrayInt32 *s = PD_TensorGetShape(y);
      double t4 = now_us();
      PD_TensorCopyToCpuFloat(y, res);
      double t5 = now_us();
      PD_OneDimArrayInt32Destroy(s);
      if (i < 500) continue; /* warm-up */
      t[0] += t1 - t0, t[1] += t2 - t1, t[2] += t3 - t2, t[3] += t4 - t3, t[4] += t5 - t4;
    }
    printf("reshape %.3f copy_from %.3f run %.3f get_shape %.3f copy_to %.3f total %.3f us\n",
           t[0] / iters, t[1] / iters, t[2] / iters, t[3] / iters, t[4] / iters,
           (t[0] + t[1] + t[2] + t[3] + t[4]) / iters);
    PD_TensorDestroy(x);
    PD_TensorDestroy(y);
    PD_OneDimArrayCstrDestroy(in);
    PD_OneDimArrayCstrDestroy(out);
    PD_PredictorDestroy(pr);
    return 0;
  }
  if (strcmp(mode, "open") == 0) {
    PD_Config *c = PD_ConfigCreate();
    PD_ConfigSetModel(c, prog, params);
    PD_ConfigDisableGlogInfo(c);
    PD_Predictor *pr = PD_PredictorCreate(c);
    PD_ConfigDestroy(c);
    if (!pr) {
      printf("open NULL | %s\nalive\n", last_error());
      return 0;
    }
    int dim = argc > 4 ? atoi(argv[4]) : 16;
    PD_OneDimArrayCstr *in = PD_PredictorGetInputNames(pr);
    PD_Tensor *x = PD_PredictorGetInputHandle(pr, in->data[0]);
    int32_t shape[2] = {2, dim};
    float *data = calloc((size_t)(2 * dim), sizeof(float));
    PD_TensorReshape(x, 2, shape);
    PD_TensorCopyFromCpuFloat(x, data);
    PD_Bool ok = PD_PredictorRun(pr);
    printf(ok ? "open ok\n" : "run NULL | %s\n", last_error());
    free(data);
    PD_TensorDestroy(x);
    PD_OneDimArrayCstrDestroy(in);
    PD_PredictorDestroy(pr);
    printf("alive\n");
    return 0;
  }
  if (strcmp(mode, "fail") == 0) {
    PD_Config *c = PD_ConfigCreate();
    PD_ConfigSetModel(c, "/nonexistent/model.json", "/nonexistent/model.pdiparams");
    PD_Predictor *bad = PD_PredictorCreate(c);
    printf("bad_path %s | %s\n", bad ? "NOT NULL" : "NULL", last_error());
    PD_ConfigDestroy(c);
    PD_Predictor *pr = create("run", prog, params);
    PD_Tensor *t = PD_PredictorGetInputHandle(pr, "no_such_input");
    printf("bad_input %s | %s\n", t ? "NOT NULL" : "NULL", last_error());
    t = PD_PredictorGetOutputHandle(pr, "no_such_output");
    printf("bad_output %s | %s\n", t ? "NOT NULL" : "NULL", last_error());
    PD_PredictorDestroy(pr);
    printf("alive\n");
    return 0;
  }
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
