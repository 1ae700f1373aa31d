/* PD_Tensor over paddle.inference.Tensor. Copies go through the buffer protocol (memoryview +
 * numpy.frombuffer in, PyObject_GetBuffer out), so no numpy C headers are needed. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Index into the helper's dtypes tuple, in PD_TensorCopy*Cpu order. */
enum { K_FLOAT32, K_INT64, K_INT32, K_UINT8, K_INT8 };

static PyObject *g_frombuffer, *g_dtypes, *g_dtype_codes, *s_reshape;

/* Under the GIL. */
static int tensor_globals(const char *fn) {
  if (g_dtype_codes) return 0;
  PyObject *h = phot_helper();
  if (!h) return -1;
  PyObject *fb = PyObject_GetAttrString(h, "frombuffer");
  PyObject *dt = fb ? PyObject_GetAttrString(h, "dtypes") : NULL;
  PyObject *dc = dt ? PyObject_GetAttrString(h, "dtype_codes") : NULL;
  PyObject *rs = dc ? PyUnicode_InternFromString("reshape") : NULL;
  if (!rs) {
    Py_XDECREF(fb);
    Py_XDECREF(dt);
    Py_XDECREF(dc);
    phot_set_error_from_python(fn);
    return -1;
  }
  g_frombuffer = fb;
  g_dtypes = dt;
  s_reshape = rs;
  g_dtype_codes = dc; /* last: marks the set as complete */
  return 0;
}

void PD_TensorDestroy(PD_Tensor *t) {
  if (!t) return;
  PyGILState_STATE st;
  if (phot_enter(&st) == 0) {
    Py_XDECREF(t->m_reshape);
    Py_XDECREF(t->m_copy_from);
    Py_XDECREF(t->m_copy_to);
    Py_XDECREF(t->m_shape);
    Py_XDECREF(t->m_type);
    Py_XDECREF(t->handle);
    Py_XDECREF(t->pred);
    phot_leave(st);
  }
  free(t->name);
  free(t->shape);
  free(t);
}

void PD_TensorReshape(PD_Tensor *t, size_t n, int32_t *shape) {
  PHOT_CHECK_ARG(t && (shape || n == 0), "PD_TensorReshape", );
  int64_t *copy = malloc((n ? n : 1) * sizeof *copy);
  if (!copy) {
    phot_set_error("PD_TensorReshape: out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (shape[i] < 0) {
      free(copy);
      phot_set_error("PD_TensorReshape: negative dimension %d at %zu", (int)shape[i], i);
      return;
    }
    copy[i] = shape[i];
  }
  PyGILState_STATE st;
  if (phot_enter(&st) != 0) {
    free(copy);
    return;
  }
  PyObject *list = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; list && i < n; i++) {
    PyObject *d = PyLong_FromLong(shape[i]);
    if (!d) Py_CLEAR(list);
    else PyList_SET_ITEM(list, (Py_ssize_t)i, d);
  }
  PyObject *r = list ? PyObject_CallOneArg(t->m_reshape, list) : NULL;
  if (r) {
    free(t->shape);
    t->shape = copy;
    t->ndim = n;
    copy = NULL;
    Py_DECREF(r);
  } else {
    phot_set_error_from_python("PD_TensorReshape");
  }
  Py_XDECREF(list);
  phot_leave(st);
  free(copy);
}

/* Current shape as a tuple plus its element count; under the GIL. */
static PyObject *shape_tuple(PD_Tensor *t, size_t *numel, const char *fn) {
  PyObject *tup = NULL;
  size_t count = 1;
  if (t->shape) {
    tup = PyTuple_New((Py_ssize_t)t->ndim);
    for (size_t i = 0; tup && i < t->ndim; i++) {
      PyObject *d = PyLong_FromLongLong(t->shape[i]);
      if (!d) Py_CLEAR(tup);
      else PyTuple_SET_ITEM(tup, (Py_ssize_t)i, d);
      count *= (size_t)t->shape[i];
    }
  } else {
    PyObject *l = PyObject_CallNoArgs(t->m_shape);
    tup = l ? PySequence_Tuple(l) : NULL;
    Py_XDECREF(l);
    for (Py_ssize_t i = 0; tup && i < PyTuple_GET_SIZE(tup); i++) {
      long d = PyLong_AsLong(PyTuple_GET_ITEM(tup, i));
      if (d < 0) {
        Py_CLEAR(tup);
        if (!PyErr_Occurred()) {
          phot_set_error("%s: the shape is not set (call PD_TensorReshape first)", fn);
          return NULL;
        }
      } else {
        count *= (size_t)d;
      }
    }
  }
  if (!tup) phot_set_error_from_python(fn);
  *numel = count;
  return tup;
}

static void copy_from(PD_Tensor *t, const void *data, int kind, size_t esize, const char *fn) {
  PHOT_CHECK_ARG(t && data, fn, );
  PyGILState_STATE st;
  if (phot_enter(&st) != 0) return;
  PyObject *shape = NULL, *mv = NULL, *flat = NULL, *arr = NULL, *r = NULL;
  size_t numel = 0;
  if (tensor_globals(fn) != 0 || !(shape = shape_tuple(t, &numel, fn))) goto out;
  mv = PyMemoryView_FromMemory((char *)data, (Py_ssize_t)(numel * esize), PyBUF_READ);
  if (mv) {
    PyObject *a1[2] = {mv, PyTuple_GET_ITEM(g_dtypes, kind)};
    flat = PyObject_Vectorcall(g_frombuffer, a1, 2, NULL);
  }
  if (flat) {
    PyObject *a2[2] = {flat, shape};
    arr = PyObject_VectorcallMethod(s_reshape, a2, 2, NULL);
  }
  /* Paddle copies the data; the array over caller memory does not outlive this call. */
  r = arr ? PyObject_CallOneArg(t->m_copy_from, arr) : NULL;
  if (!r) phot_set_error_from_python(fn);
out:
  Py_XDECREF(r);
  Py_XDECREF(arr);
  Py_XDECREF(flat);
  Py_XDECREF(mv);
  Py_XDECREF(shape);
  phot_leave(st);
}

static int format_ok(const char *fmt, int kind) {
  if (!fmt) fmt = "B";
  while (*fmt == '<' || *fmt == '=' || *fmt == '@' || *fmt == '|') fmt++;
  if (fmt[0] == '\0' || fmt[1] != '\0') return 0;
  switch (kind) {
    case K_FLOAT32: return fmt[0] == 'f';
    case K_INT64: return fmt[0] == 'q' || fmt[0] == 'l';
    case K_INT32: return fmt[0] == 'i' || fmt[0] == 'l';
    case K_UINT8: return fmt[0] == 'B';
    case K_INT8: return fmt[0] == 'b';
  }
  return 0;
}

static void copy_to(PD_Tensor *t, void *data, int kind, size_t esize, const char *fn) {
  PHOT_CHECK_ARG(t && data, fn, );
  PyGILState_STATE st;
  if (phot_enter(&st) != 0) return;
  PyObject *arr = PyObject_CallNoArgs(t->m_copy_to);
  Py_buffer view;
  if (!arr || PyObject_GetBuffer(arr, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
    phot_set_error_from_python(fn);
  } else {
    if ((size_t)view.itemsize == esize && format_ok(view.format, kind))
      memcpy(data, view.buf, (size_t)view.len);
    else
      phot_set_error("%s: the tensor holds '%s' elements of %zd bytes; wrong copy function", fn,
                     view.format ? view.format : "B", view.itemsize);
    PyBuffer_Release(&view);
  }
  Py_XDECREF(arr);
  phot_leave(st);
}

#define PHOT_COPY_FUNCS(Type, ctype, kind)                                  \
  void PD_TensorCopyFromCpu##Type(PD_Tensor *t, const ctype *data) {        \
    copy_from(t, data, kind, sizeof(ctype), "PD_TensorCopyFromCpu" #Type); \
  }                                                                         \
  void PD_TensorCopyToCpu##Type(PD_Tensor *t, ctype *data) {                \
    copy_to(t, data, kind, sizeof(ctype), "PD_TensorCopyToCpu" #Type);     \
  }

PHOT_COPY_FUNCS(Float, float, K_FLOAT32)
PHOT_COPY_FUNCS(Int64, int64_t, K_INT64)
PHOT_COPY_FUNCS(Int32, int32_t, K_INT32)
PHOT_COPY_FUNCS(Uint8, uint8_t, K_UINT8)
PHOT_COPY_FUNCS(Int8, int8_t, K_INT8)

PD_OneDimArrayInt32 *PD_TensorGetShape(PD_Tensor *t) {
  PHOT_CHECK_ARG(t, "PD_TensorGetShape", NULL);
  PyGILState_STATE st;
  if (phot_enter(&st) != 0) return NULL;
  PD_OneDimArrayInt32 *a = NULL;
  PyObject *l = PyObject_CallNoArgs(t->m_shape);
  PyObject *seq = l ? PySequence_Fast(l, "shape() did not return a sequence") : NULL;
  if (!seq) {
    phot_set_error_from_python("PD_TensorGetShape");
    goto out;
  }
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  a = calloc(1, sizeof *a);
  if (a && n > 0) a->data = malloc((size_t)n * sizeof(int32_t));
  if (!a || (n > 0 && !a->data)) {
    PD_OneDimArrayInt32Destroy(a);
    a = NULL;
    phot_set_error("PD_TensorGetShape: out of memory");
    goto out;
  }
  a->size = (size_t)n;
  for (Py_ssize_t i = 0; i < n; i++) {
    long d = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
    if (d == -1 && PyErr_Occurred()) {
      phot_set_error_from_python("PD_TensorGetShape");
      PD_OneDimArrayInt32Destroy(a);
      a = NULL;
      goto out;
    }
    a->data[i] = (int32_t)d;
  }
out:
  Py_XDECREF(seq);
  Py_XDECREF(l);
  phot_leave(st);
  return a;
}

const char *PD_TensorGetName(PD_Tensor *t) {
  PHOT_CHECK_ARG(t, "PD_TensorGetName", NULL);
  return t->name;
}

PD_DataType PD_TensorGetDataType(PD_Tensor *t) {
  PHOT_CHECK_ARG(t, "PD_TensorGetDataType", PD_DATA_UNK);
  PyGILState_STATE st;
  if (phot_enter(&st) != 0) return PD_DATA_UNK;
  PD_DataType out = PD_DATA_UNK;
  PyObject *ty = tensor_globals("PD_TensorGetDataType") == 0 ? PyObject_CallNoArgs(t->m_type)
                                                              : NULL;
  PyObject *code = ty ? PyDict_GetItemWithError(g_dtype_codes, ty) : NULL; /* borrowed */
  if (code) {
    out = (PD_DataType)PyLong_AsLong(code);
  } else if (ty && !PyErr_Occurred()) {
    PyObject *s = PyObject_Str(ty);
    phot_set_error("PD_TensorGetDataType: no PD_DataType for %s",
                   s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "?");
    Py_XDECREF(s);
    PyErr_Clear();
  } else {
    phot_set_error_from_python("PD_TensorGetDataType");
  }
  Py_XDECREF(ty);
  phot_leave(st);
  return out;
}
