/* PD_Tensor over paddle_infer::Tensor (an input or output handle of one predictor). */
#include <cstdlib>
#include <cstring>

#include "internal.h"

/* libpaddle's std::unique_ptr<paddle::ZeroCopyTensor>::~unique_ptr(): the destructor of the
 * owner a handle comes in (see TensorHandle in paddle_cxx.h). Called with the address of a
 * one-pointer owner, as a member function gets `this`. Weak: the x86_64 3.3.1 wheel exports it,
 * the aarch64 3.2.2 wheel does not. Without it a handle is not destroyed (never through a
 * declaration that does not know its members): it is left allocated, ~150 bytes per handle.
 * That stays bounded: the plugin runtime takes one handle per input and output per predictor
 * (native/runtime/runtime.c) and reuses it for every run. */
extern "C" void phot_paddle_zero_copy_tensor_owner_dtor(void* owner) __asm__(
    "_ZNSt10unique_ptrIN6paddle14ZeroCopyTensorESt14default_deleteIS1_EED1Ev") __attribute__((weak));

namespace paddle_infer {

void DestroyTensor(Tensor* t) {
  void* owner = t;
  if (owner && phot_paddle_zero_copy_tensor_owner_dtor) {
    phot_paddle_zero_copy_tensor_owner_dtor(&owner);
  }
}

TensorHandle::~TensorHandle() { DestroyTensor(ptr); }

}  // namespace paddle_infer

void PD_TensorDestroy(PD_Tensor* t) {
  if (!t) return;
  paddle_infer::DestroyTensor(t->t);
  delete t;
}

void PD_TensorReshape(PD_Tensor* t, size_t n, int32_t* shape) {
  static const char fn[] = "PD_TensorReshape";
  PHOT_CHECK_ARG(t && (shape || n == 0), fn, );
  for (size_t i = 0; i < n; i++) {
    if (shape[i] < 0) {
      phot_set_error("%s: negative dimension %d at %zu", fn, (int)shape[i], i);
      return;
    }
  }
  phot_guard_void(fn, [&] { t->t->Reshape(std::vector<int>(shape, shape + n)); });
}

/* paddle_infer::DataType -> PD_DataType (their numbering differs). */
static PD_DataType pd_dtype(paddle_infer::DataType d) {
  switch (d) {
    case paddle_infer::FLOAT32: return PD_DATA_FLOAT32;
    case paddle_infer::INT32: return PD_DATA_INT32;
    case paddle_infer::INT64: return PD_DATA_INT64;
    case paddle_infer::UINT8: return PD_DATA_UINT8;
    case paddle_infer::INT8: return PD_DATA_INT8;
    default: return PD_DATA_UNK;
  }
}

static const char* dtype_name(paddle_infer::DataType d) {
  switch (d) {
    case paddle_infer::FLOAT32: return "float32";
    case paddle_infer::INT32: return "int32";
    case paddle_infer::INT64: return "int64";
    case paddle_infer::UINT8: return "uint8";
    case paddle_infer::INT8: return "int8";
    case paddle_infer::FLOAT16: return "float16";
    case paddle_infer::BOOL: return "bool";
    case paddle_infer::FLOAT64: return "float64";
    default: return "unknown";
  }
}

template <class T>
static void copy_from(PD_Tensor* t, const T* data, const char* fn) {
  PHOT_CHECK_ARG(t && data, fn, );
  phot_guard_void(fn, [&] {
    PhotSharedGate in_flight;
    t->t->CopyFromCpu<T>(data);
  });
}

/* Paddle's CopyToCpu<T> copies numel * sizeof(T) whatever the tensor holds: check the type. */
template <class T>
static void copy_to(PD_Tensor* t, T* data, paddle_infer::DataType want, const char* fn) {
  PHOT_CHECK_ARG(t && data, fn, );
  phot_guard_void(fn, [&] {
    paddle_infer::DataType have = t->t->type();
    if (have != want) {
      phot_set_error("%s: the tensor holds %s elements, not %s; wrong copy function", fn,
                     dtype_name(have), dtype_name(want));
      return;
    }
    PhotSharedGate in_flight;
    t->t->CopyToCpu<T>(data);
  });
}

#define PHOT_COPY_FUNCS(Type, ctype, dtype)                                          \
  void PD_TensorCopyFromCpu##Type(PD_Tensor* t, const ctype* data) {                 \
    copy_from<ctype>(t, data, "PD_TensorCopyFromCpu" #Type);                         \
  }                                                                                  \
  void PD_TensorCopyToCpu##Type(PD_Tensor* t, ctype* data) {                         \
    copy_to<ctype>(t, data, paddle_infer::dtype, "PD_TensorCopyToCpu" #Type);        \
  }

PHOT_COPY_FUNCS(Float, float, FLOAT32)
PHOT_COPY_FUNCS(Int64, int64_t, INT64)
PHOT_COPY_FUNCS(Int32, int32_t, INT32)
PHOT_COPY_FUNCS(Uint8, uint8_t, UINT8)
PHOT_COPY_FUNCS(Int8, int8_t, INT8)

PD_OneDimArrayInt32* PD_TensorGetShape(PD_Tensor* t) {
  static const char fn[] = "PD_TensorGetShape";
  PHOT_CHECK_ARG(t, fn, nullptr);
  return phot_guard(fn, (PD_OneDimArrayInt32*)nullptr, [&]() -> PD_OneDimArrayInt32* {
    std::vector<int> s = t->t->shape();
    PD_OneDimArrayInt32* a = static_cast<PD_OneDimArrayInt32*>(calloc(1, sizeof *a));
    if (a && !s.empty()) a->data = static_cast<int32_t*>(malloc(s.size() * sizeof(int32_t)));
    if (!a || (!s.empty() && !a->data)) {
      PD_OneDimArrayInt32Destroy(a);
      phot_set_error("%s: out of memory", fn);
      return nullptr;
    }
    a->size = s.size();
    for (size_t i = 0; i < s.size(); i++) a->data[i] = s[i];
    return a;
  });
}

const char* PD_TensorGetName(PD_Tensor* t) {
  PHOT_CHECK_ARG(t, "PD_TensorGetName", nullptr);
  return t->name.c_str();
}

PD_DataType PD_TensorGetDataType(PD_Tensor* t) {
  static const char fn[] = "PD_TensorGetDataType";
  PHOT_CHECK_ARG(t, fn, PD_DATA_UNK);
  return phot_guard(fn, (PD_DataType)PD_DATA_UNK, [&]() -> PD_DataType {
    paddle_infer::DataType d = t->t->type();
    PD_DataType out = pd_dtype(d);
    if (out == PD_DATA_UNK) phot_set_error("%s: no PD_DataType for %s", fn, dtype_name(d));
    return out;
  });
}
