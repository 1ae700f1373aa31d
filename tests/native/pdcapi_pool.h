/* What the pdcapi concurrency stresses share (pdcapi_soak.c, pdcapi_thread_exits.c): a root
 * predictor and its answer, a stack of POOL pooled predictors any thread takes and gives back,
 * one fixed input, and the first failure. The includer defines POOL first. */
#ifndef PDCAPI_POOL_H
#define PDCAPI_POOL_H
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "paddlehot_pdcapi_ext.h"
#include "pd_inference_api.h"

enum { BATCH = 2, IN = 16, OUT = 4 };

static PD_Predictor *root, *stack[POOL];
static int top;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static volatile int stop, failed;
static long runs;
static float want[BATCH * OUT];
static char why[1024];
static int cache_capacity = -1; /* >= 0: the root's PD_ConfigSetMkldnnCacheCapacity (clones copy it) */

static void fail(const char *what) {
  pthread_mutex_lock(&mu);
  if (!failed) snprintf(why, sizeof why, "%s: %s", what, paddlehot_pdcapi_last_error());
  failed = 1;
  stop = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static int infer(PD_Predictor *p, float *out) {
  static const float x[BATCH * IN] = {0.5f, -1.0f, 0.25f, 2.0f, 0.0f, 1.5f, -0.75f, 3.0f};
  PD_Tensor *in = PD_PredictorGetInputHandle(p, "x");
  if (!in) return 0;
  int32_t shape[2] = {BATCH, IN};
  PD_TensorReshape(in, 2, shape);
  PD_TensorCopyFromCpuFloat(in, x);
  PD_Bool ok = PD_PredictorRun(p);
  PD_TensorDestroy(in);
  if (!ok) return 0;
  PD_OneDimArrayCstr *names = PD_PredictorGetOutputNames(p);
  PD_Tensor *y = names ? PD_PredictorGetOutputHandle(p, names->data[0]) : NULL;
  if (y) PD_TensorCopyToCpuFloat(y, out);
  PD_TensorDestroy(y);
  PD_OneDimArrayCstrDestroy(names);
  return y != NULL;
}

static PD_Predictor *take(void) {
  pthread_mutex_lock(&mu);
  while (top == 0 && !stop) pthread_cond_wait(&cv, &mu);
  PD_Predictor *p = top > 0 ? stack[--top] : NULL;
  pthread_mutex_unlock(&mu);
  return p;
}

static void give(PD_Predictor *p) {
  pthread_mutex_lock(&mu);
  stack[top++] = p;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
}

/* The root predictor (1 math thread), its answer, and POOL clones on the stack; 0 on failure
 * (the reason printed after `who`). */
static int start_pool(const char *who, const char *prog, const char *params) {
  PD_Config *c = PD_ConfigCreate();
  PD_ConfigSetModel(c, prog, params);
  PD_ConfigSetCpuMathLibraryNumThreads(c, 1);
  if (cache_capacity >= 0) PD_ConfigSetMkldnnCacheCapacity(c, cache_capacity);
  root = PD_PredictorCreate(c);
  PD_ConfigDestroy(c);
  if (!root || !infer(root, want)) {
    printf("%s FAILED: root: %s\n", who, paddlehot_pdcapi_last_error());
    return 0;
  }
  for (int i = 0; i < POOL; i++)
    if (!(stack[top++] = PD_PredictorClone(root))) return 0;
  return 1;
}

/* Run for `seconds` or until a failure, then tell every thread to stop. */
static void run_then_stop(int seconds) {
  time_t end = time(NULL) + seconds;
  while (!stop && time(NULL) < end) {
    struct timespec nap = {0, 50 * 1000 * 1000};
    nanosleep(&nap, NULL);
  }
  pthread_mutex_lock(&mu);
  stop = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

/* Destroy the pool and the root. */
static void end_pool(void) {
  for (int i = 0; i < top; i++) PD_PredictorDestroy(stack[i]);
  PD_PredictorDestroy(root);
}

#endif
