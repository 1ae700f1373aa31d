/* Caller tensors against the model's signature, and the copies in and out of Paddle.
 *
 * ABI growth: a caller built against a later plugin.h may pass a larger phot_tensor (fields
 * appended). Its arrays are walked with its struct_size as the stride, only the 1.0 fields are
 * read, and only dtype, rank, shape and byte_size of outputs are written. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "pd_inference_api.h"
#include "runtime.h"

const phot_tensor *phot_rt_input(const phot_rt_call *c, size_t i) {
  return (const phot_tensor *)(const void *)(c->in_base + i * c->in_stride);
}

phot_tensor *phot_rt_output(const phot_rt_call *c, size_t i) {
  return (phot_tensor *)(void *)(c->out_base + i * c->out_stride);
}

/* The stride of a caller array: its first element's struct_size, the same for every element. */
static int32_t array_stride(const phot_tensor *first, size_t n, const char *what, size_t *stride) {
  *stride = PHOT_TENSOR_SIZE_1_0;
  if (n == 0) return PHOT_OK;
  if (!first) return phot_rt_fail(PHOT_E_INVALID_ARGUMENT, "infer: %s is NULL", what);
  uint32_t s = first->struct_size;
  if (s < PHOT_TENSOR_SIZE_1_0 || s % _Alignof(phot_tensor) != 0)
    return phot_rt_fail(PHOT_E_INVALID_ARGUMENT,
                        "infer: %s[0].struct_size is %u; need a multiple of %zu that is >= %u",
                        what, (unsigned)s, (size_t)_Alignof(phot_tensor),
                        (unsigned)PHOT_TENSOR_SIZE_1_0);
  for (size_t i = 1; i < n; i++) {
    const phot_tensor *t = (const phot_tensor *)(const void *)((const char *)first + i * s);
    if (t->struct_size != s)
      return phot_rt_fail(PHOT_E_INVALID_ARGUMENT,
                          "infer: %s[%zu].struct_size is %u, %s[0] has %u (one array, one size)",
                          what, i, (unsigned)t->struct_size, what, (unsigned)s);
  }
  *stride = s;
  return PHOT_OK;
}

static int32_t check_one_input(const phot_rt_spec *sp, const phot_tensor *t) {
  if (t->dtype != sp->dtype)
    return phot_rt_fail(PHOT_E_DTYPE_MISMATCH,
                        "infer: input '%s' has dtype %s, the model expects %s", sp->name,
                        phot_rt_dtype_name(t->dtype), phot_rt_dtype_name(sp->dtype));
  if (t->rank != sp->rank)
    return phot_rt_fail(PHOT_E_SHAPE_MISMATCH, "infer: input '%s' has rank %d, the model expects %d",
                        sp->name, (int)t->rank, (int)sp->rank);
  uint64_t count = 1, esize = phot_rt_dtype_size(sp->dtype);
  for (int d = 0; d < sp->rank; d++) {
    int64_t got = t->shape[d];
    if (got <= 0 || got > INT32_MAX)
      return phot_rt_fail(PHOT_E_SHAPE_MISMATCH, "infer: input '%s' dim %d is %lld", sp->name, d,
                          (long long)got);
    if (sp->shape[d] != -1 && got != sp->shape[d])
      return phot_rt_fail(PHOT_E_SHAPE_MISMATCH,
                          "infer: input '%s' dim %d is %lld, the model expects %lld", sp->name, d,
                          (long long)got, (long long)sp->shape[d]);
    if (count > UINT64_MAX / (uint64_t)got)
      return phot_rt_fail(PHOT_E_SHAPE_MISMATCH, "infer: input '%s' is too large", sp->name);
    count *= (uint64_t)got;
  }
  if (esize == 0 || count > UINT64_MAX / esize || t->byte_size != count * esize)
    return phot_rt_fail(PHOT_E_SHAPE_MISMATCH,
                        "infer: input '%s' has byte_size %llu, its shape needs %llu", sp->name,
                        (unsigned long long)t->byte_size, (unsigned long long)(count * esize));
  if (!t->data)
    return phot_rt_fail(PHOT_E_INVALID_ARGUMENT, "infer: input '%s' data is NULL", sp->name);
  return PHOT_OK;
}

static int32_t check_inputs(const phot_rt_desc *d, size_t n, phot_rt_call *c) {
  int seen[d->n_inputs > 0 ? d->n_inputs : 1];
  memset(seen, 0, sizeof seen);
  for (size_t i = 0; i < n; i++) {
    const phot_tensor *t = phot_rt_input(c, i);
    if (!t->name)
      return phot_rt_fail(PHOT_E_INVALID_ARGUMENT, "infer: inputs[%zu].name is NULL", i);
    int k = -1;
    for (int j = 0; j < d->n_inputs; j++)
      if (strcmp(t->name, d->inputs[j].name) == 0) k = j;
    if (k < 0)
      return phot_rt_fail(PHOT_E_UNKNOWN_INPUT, "infer: unknown input '%.100s'; the model takes: %s",
                          t->name, d->input_names);
    if (seen[k])
      return phot_rt_fail(PHOT_E_INVALID_ARGUMENT, "infer: input '%s' given twice",
                          d->inputs[k].name);
    seen[k] = 1;
    c->order[k] = i;
  }
  for (int k = 0; k < d->n_inputs; k++)
    if (!seen[k])
      return phot_rt_fail(PHOT_E_MISSING_INPUT, "infer: missing input '%s'; the model takes: %s",
                          d->inputs[k].name, d->input_names);
  for (int k = 0; k < d->n_inputs; k++) {
    int32_t rc = check_one_input(&d->inputs[k], phot_rt_input(c, c->order[k]));
    if (rc != PHOT_OK) return rc;
  }
  return PHOT_OK;
}

static int32_t check_outputs(const phot_rt_desc *d, size_t n, phot_rt_call *c) {
  if (n > (size_t)d->n_outputs)
    return phot_rt_fail(PHOT_E_INVALID_ARGUMENT, "infer: %zu outputs requested, the model has %d",
                        n, d->n_outputs);
  for (size_t i = 0; i < n; i++) {
    const phot_tensor *t = phot_rt_output(c, i);
    int k = (int)i;
    if (t->name) {
      k = -1;
      for (int j = 0; j < d->n_outputs; j++)
        if (strcmp(t->name, d->outputs[j].name) == 0) k = j;
      if (k < 0)
        return phot_rt_fail(PHOT_E_INVALID_ARGUMENT,
                            "infer: unknown output '%.100s'; the model has: %s", t->name,
                            d->output_names);
    }
    c->which[i] = k;
    if (!t->data && t->byte_size > 0)
      return phot_rt_fail(PHOT_E_INVALID_ARGUMENT, "infer: outputs[%zu].data is NULL", i);
  }
  return PHOT_OK;
}

int32_t phot_rt_check_call(const phot_rt_desc *d, const phot_tensor *inputs, size_t n_inputs,
                           phot_tensor *outputs, size_t n_outputs, phot_rt_call *c) {
  int32_t rc = array_stride(inputs, n_inputs, "inputs", &c->in_stride);
  if (rc == PHOT_OK) rc = array_stride(outputs, n_outputs, "outputs", &c->out_stride);
  if (rc != PHOT_OK) return rc;
  c->in_base = (const char *)inputs;
  c->out_base = (char *)outputs;
  c->n_outputs = n_outputs;
  rc = check_inputs(d, n_inputs, c);
  return rc == PHOT_OK ? check_outputs(d, n_outputs, c) : rc;
}

/* ---------------------------------------------------------------- copies and the run */

static phot_dtype from_pd(PD_DataType t) {
  switch (t) {
    case PD_DATA_FLOAT32: return PHOT_DTYPE_FLOAT32;
    case PD_DATA_INT32: return PHOT_DTYPE_INT32;
    case PD_DATA_INT64: return PHOT_DTYPE_INT64;
    case PD_DATA_UINT8: return PHOT_DTYPE_UINT8;
    case PD_DATA_INT8: return PHOT_DTYPE_INT8;
    default: return 0;
  }
}

static int set_input(PD_Tensor *h, const phot_tensor *t) {
  int32_t shape[PHOT_MAX_RANK];
  for (int d = 0; d < t->rank; d++) shape[d] = (int32_t)t->shape[d];
  PD_TensorReshape(h, (size_t)t->rank, shape);
  switch (t->dtype) {
    case PHOT_DTYPE_FLOAT32: PD_TensorCopyFromCpuFloat(h, (const float *)t->data); break;
    case PHOT_DTYPE_INT64: PD_TensorCopyFromCpuInt64(h, (const int64_t *)t->data); break;
    case PHOT_DTYPE_INT32: PD_TensorCopyFromCpuInt32(h, (const int32_t *)t->data); break;
    case PHOT_DTYPE_UINT8: PD_TensorCopyFromCpuUint8(h, (const uint8_t *)t->data); break;
    case PHOT_DTYPE_INT8: PD_TensorCopyFromCpuInt8(h, (const int8_t *)t->data); break;
    default: return -1;
  }
  return 0;
}

static void get_output(PD_Tensor *h, phot_dtype d, void *data) {
  switch (d) {
    case PHOT_DTYPE_FLOAT32: PD_TensorCopyToCpuFloat(h, (float *)data); break;
    case PHOT_DTYPE_INT64: PD_TensorCopyToCpuInt64(h, (int64_t *)data); break;
    case PHOT_DTYPE_INT32: PD_TensorCopyToCpuInt32(h, (int32_t *)data); break;
    case PHOT_DTYPE_UINT8: PD_TensorCopyToCpuUint8(h, (uint8_t *)data); break;
    case PHOT_DTYPE_INT8: PD_TensorCopyToCpuInt8(h, (int8_t *)data); break;
    default: break;
  }
}

/* Shape and dtype of output handle h into t; the bytes it needs into *need. */
static int32_t describe_output(const phot_rt_spec *sp, PD_Tensor *h, phot_tensor *t,
                               uint64_t *need) {
  PD_OneDimArrayInt32 *shape = PD_TensorGetShape(h);
  if (!shape)
    return phot_rt_fail(PHOT_E_RUNTIME, "infer: shape of output '%s': %s", sp->name,
                        phot_rt_capi_error());
  int32_t rc = PHOT_OK;
  phot_dtype dt = from_pd(PD_TensorGetDataType(h));
  if (shape->size > PHOT_MAX_RANK) {
    rc = phot_rt_fail(PHOT_E_RUNTIME, "infer: output '%s' has rank > %d", sp->name, PHOT_MAX_RANK);
  } else if (!dt) {
    rc = phot_rt_fail(PHOT_E_RUNTIME, "infer: output '%s' has a dtype the C API cannot copy",
                      sp->name);
  } else {
    uint64_t count = 1;
    t->rank = (int32_t)shape->size;
    for (size_t d = 0; d < shape->size; d++) {
      t->shape[d] = shape->data[d];
      count *= (uint64_t)(shape->data[d] < 0 ? 0 : shape->data[d]);
    }
    t->dtype = dt;
    *need = count * phot_rt_dtype_size(dt);
  }
  PD_OneDimArrayInt32Destroy(shape);
  return rc;
}

int32_t phot_rt_run(const phot_rt_desc *d, PD_Predictor *pred, PD_Tensor *const *in,
                    PD_Tensor *const *out, const phot_rt_call *c) {
  for (int k = 0; k < d->n_inputs; k++)
    if (set_input(in[k], phot_rt_input(c, c->order[k])) != 0)
      return phot_rt_fail(PHOT_E_DTYPE_MISMATCH, "infer: dtype of input '%s' is not supported",
                          d->inputs[k].name);
  if (!PD_PredictorRun(pred))
    return phot_rt_fail(PHOT_E_RUNTIME, "infer: Paddle failed: %s", phot_rt_capi_error());
  size_t n = c->n_outputs;
  uint64_t need[n > 0 ? n : 1];
  int too_small = 0;
  for (size_t i = 0; i < n; i++) {
    phot_tensor *t = phot_rt_output(c, i);
    int32_t rc = describe_output(&d->outputs[c->which[i]], out[c->which[i]], t, &need[i]);
    if (rc != PHOT_OK) return rc;
    if (need[i] > t->byte_size) too_small = 1;
  }
  for (size_t i = 0; i < n; i++) {
    phot_tensor *t = phot_rt_output(c, i);
    if (!too_small && need[i] > 0) get_output(out[c->which[i]], t->dtype, t->data);
    t->byte_size = need[i]; /* too small: what it needs, nothing written */
  }
  if (too_small)
    return phot_rt_fail(PHOT_E_BUFFER_TOO_SMALL,
                        "infer: an output buffer is too small; byte_size and shape say what is "
                        "needed");
  return PHOT_OK;
}
