/* The self-test every pdcapi build runs before it is cached (plugin/pdcapi.py): the library's
 * declarations of Paddle's C++ API are our own, and a wrong one still links, so this sends every
 * supported dtype and two batch sizes (a dynamic shape) through the model make_model.py wrote,
 * through a predictor and its clone, and checks dtypes, shapes and values exactly.
 * Usage: selftest MODEL.json MODEL.pdiparams. Prints "selftest ok" and exits 0, or names the
 * first mismatch and exits 1. Uses only the public C API. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paddlehot_pdcapi_ext.h"
#include "pd_inference_api.h"

static int failures;

#define CHECK(cond, ...)                                                         \
  do {                                                                           \
    if (!(cond)) {                                                               \
      printf("selftest MISMATCH: ");                                             \
      printf(__VA_ARGS__);                                                       \
      printf(" [last error: %s]\n", paddlehot_pdcapi_last_error());              \
      failures++;                                                                \
      return;                                                                    \
    }                                                                            \
  } while (0)

static PD_Tensor *input(PD_Predictor *p, const char *name, int batch, int cols) {
  PD_Tensor *t = PD_PredictorGetInputHandle(p, name);
  int32_t shape[2] = {batch, cols};
  if (t) PD_TensorReshape(t, 2, shape);
  return t;
}

static void check_shape(PD_Tensor *t, int batch, int cols, const char *what) {
  PD_OneDimArrayInt32 *s = PD_TensorGetShape(t);
  CHECK(s && s->size == 2 && s->data[0] == batch && s->data[1] == cols,
        "%s: shape is not [%d, %d]", what, batch, cols);
  PD_OneDimArrayInt32Destroy(s);
}

static void run_once(PD_Predictor *p, int batch) {
  enum { MAXB = 8 };
  float a[MAXB * 4], ya[MAXB * 2];
  int32_t b[MAXB * 3], yb[MAXB * 3];
  int64_t c[MAXB * 3], yc[MAXB * 3];
  uint8_t d[MAXB * 3], yd[MAXB * 3];
  int8_t e[MAXB * 3], ye[MAXB * 3];
  for (int i = 0; i < batch * 4; i++) a[i] = (float)(i % 7) - 2.5f;
  for (int i = 0; i < batch * 3; i++) {
    b[i] = 1000 * i - 7;
    c[i] = (int64_t)1 << (33 + i % 20); /* beyond 32 bits: a wrong width shows */
    d[i] = (uint8_t)(250 + i % 5);      /* 254 + 1 = 255: no sign confusion */
    e[i] = (int8_t)(-100 + 50 * (i % 5));
  }
  PD_Tensor *ta = input(p, "x_f32", batch, 4), *tb = input(p, "x_i32", batch, 3),
            *tc = input(p, "x_i64", batch, 3), *td = input(p, "x_u8", batch, 3),
            *te = input(p, "x_i8", batch, 3);
  CHECK(ta && tb && tc && td && te, "input handles x_f32..x_i8");
  PD_TensorCopyFromCpuFloat(ta, a);
  PD_TensorCopyFromCpuInt32(tb, b);
  PD_TensorCopyFromCpuInt64(tc, c);
  PD_TensorCopyFromCpuUint8(td, d);
  PD_TensorCopyFromCpuInt8(te, e);
  CHECK(PD_PredictorRun(p), "run with batch %d", batch);
  PD_OneDimArrayCstr *names = PD_PredictorGetOutputNames(p);
  CHECK(names && names->size == 5, "5 outputs");
  PD_Tensor *out[5];
  for (int i = 0; i < 5; i++) out[i] = PD_PredictorGetOutputHandle(p, names->data[i]);
  static const PD_DataType want[5] = {PD_DATA_FLOAT32, PD_DATA_INT32, PD_DATA_INT64,
                                      PD_DATA_UINT8, PD_DATA_INT8};
  for (int i = 0; i < 5; i++) {
    CHECK(out[i], "output handle %d", i);
    CHECK(PD_TensorGetDataType(out[i]) == want[i], "output %d: dtype %d, want %d", i,
          (int)PD_TensorGetDataType(out[i]), (int)want[i]);
    CHECK(strcmp(PD_TensorGetName(out[i]), names->data[i]) == 0, "output %d: name", i);
  }
  check_shape(out[0], batch, 2, "float32 output");
  for (int i = 1; i < 5; i++) check_shape(out[i], batch, 3, "integer output");
  PD_TensorCopyToCpuFloat(out[0], ya);
  PD_TensorCopyToCpuInt32(out[1], yb);
  PD_TensorCopyToCpuInt64(out[2], yc);
  PD_TensorCopyToCpuUint8(out[3], yd);
  PD_TensorCopyToCpuInt8(out[4], ye);
  for (int r = 0; r < batch; r++) {
    float sum = 0;
    for (int k = 0; k < 4; k++) sum += a[r * 4 + k];
    for (int j = 0; j < 2; j++)
      CHECK(ya[r * 2 + j] == 0.5f * sum + 0.25f, "float32 [%d,%d]: %g != %g", r, j,
            (double)ya[r * 2 + j], (double)(0.5f * sum + 0.25f));
  }
  for (int i = 0; i < batch * 3; i++) {
    CHECK(yb[i] == b[i] + 1, "int32 [%d]: %d != %d", i, yb[i], b[i] + 1);
    CHECK(yc[i] == c[i] * 3, "int64 [%d]: %lld != %lld", i, (long long)yc[i],
          (long long)(c[i] * 3));
    CHECK(yd[i] == (uint8_t)(d[i] + 1), "uint8 [%d]: %u != %u", i, yd[i], (uint8_t)(d[i] + 1));
    CHECK(ye[i] == (int8_t)(e[i] - 1), "int8 [%d]: %d != %d", i, ye[i], e[i] - 1);
  }
  int64_t wrong[MAXB * 2];
  PD_TensorCopyToCpuInt64(out[0], wrong); /* float32 tensor: refused, not copied */
  CHECK(strstr(paddlehot_pdcapi_last_error(), "wrong copy function"), "a wrong copy is refused");
  for (int i = 0; i < 5; i++) PD_TensorDestroy(out[i]);
  PD_OneDimArrayCstrDestroy(names);
  PD_TensorDestroy(ta);
  PD_TensorDestroy(tb);
  PD_TensorDestroy(tc);
  PD_TensorDestroy(td);
  PD_TensorDestroy(te);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.json MODEL.pdiparams\n", argv[0]);
    return 2;
  }
  PD_Config *cfg = PD_ConfigCreate();
  PD_ConfigSetModel(cfg, argv[1], argv[2]);
  PD_ConfigSetCpuMathLibraryNumThreads(cfg, 1);
  PD_Predictor *p = PD_PredictorCreate(cfg);
  PD_ConfigDestroy(cfg);
  if (!p) {
    printf("selftest MISMATCH: PD_PredictorCreate: %s\n", paddlehot_pdcapi_last_error());
    return 1;
  }
  if (PD_PredictorGetInputNum(p) != 5 || PD_PredictorGetOutputNum(p) != 5) {
    printf("selftest MISMATCH: %zu inputs, %zu outputs (want 5, 5)\n",
           PD_PredictorGetInputNum(p), PD_PredictorGetOutputNum(p));
    return 1;
  }
  PD_Predictor *clone = PD_PredictorClone(p);
  if (!clone) {
    printf("selftest MISMATCH: PD_PredictorClone: %s\n", paddlehot_pdcapi_last_error());
    return 1;
  }
  int batches[] = {1, 3, 8, 2};
  for (int i = 0; i < 4 && !failures; i++) run_once(i % 2 ? clone : p, batches[i]);
  PD_PredictorDestroy(clone);
  PD_PredictorDestroy(p);
  if (failures) return 1;
  printf("selftest ok\n");
  return 0;
}
