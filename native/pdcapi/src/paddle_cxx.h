/* Our own declarations of the part of Paddle Inference's C++ API that pdcapi calls, written from
 * the symbol table of the pip wheel's paddle/base/libpaddle.so (`nm -DC --defined-only`) and
 * Paddle's public API documentation. Not Paddle's headers: nothing here knows a member or a size.
 *
 * Rules that keep these declarations honest:
 *  - Only names, parameter types and `const` come from the symbol table; return types, enum
 *    values and the ownership of what is returned are facts checked by the build's self-test
 *    (native/pdcapi/selftest), which fails the build on any mismatch.
 *  - No object is ever sized, copied or destroyed by code compiled here: configs live in bounded
 *    storage (config_box.h) and are destroyed through libpaddle's exported destructor; predictors
 *    come from CreatePredictor with libpaddle's own shared_ptr deleter; tensor handles are freed
 *    by libpaddle's own unique_ptr<ZeroCopyTensor> destructor (TensorHandle below).
 *  - plugin/pdcapi_symbols.py checks, at build time, that every symbol this library imports from
 *    the paddle namespaces is defined by the target's libpaddle.so. */
#ifndef PHOT_PADDLE_CXX_H
#define PHOT_PADDLE_CXX_H

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace paddle {

/* paddle::AnalysisConfig (= paddle_infer::Config). Never a value: construct it only with
 * placement new into a ConfigBox (its size is not known here). */
class AnalysisConfig {
 public:
  AnalysisConfig();
  AnalysisConfig(const AnalysisConfig& other); /* "a config makes one predictor": copy per one */
  ~AnalysisConfig();                           /* exported (weak) by libpaddle: its definition */
  void SetModel(const std::string& prog_file, const std::string& params_file);
  void SetModel(const std::string& model_dir);
  void SetModelBuffer(const char* prog, size_t prog_len, const char* params, size_t params_len);
  void DisableGpu();
  void SwitchIrOptim(int x);
  void EnableMemoryOptim(bool x);
  void SetCpuMathLibraryNumThreads(int n);
  void SetOnednnCacheCapacity(int capacity); /* SetMkldnn...: the same, with a deprecation log */
  void DisableGlogInfo();

  AnalysisConfig& operator=(const AnalysisConfig&) = delete;
};

}  // namespace paddle

/* The oneDNN and precision switches of paddle::AnalysisConfig, and what Python's
 * paddle.base.core.supports_bfloat16()/supports_int8() answer. Declared as plain functions
 * taking the config (the Itanium C++ ABI passes `this` first) under their mangled names, weak:
 * a wheel built without oneDNN may lack them, and a weak member function cannot be tested for
 * NULL. precision.cc checks each before calling it. onednn_enabled and onednn_int8_enabled are
 * inline in Paddle's header and emitted (weak) by libpaddle. */
extern "C" {
void phot_cfg_enable_onednn(paddle::AnalysisConfig* c) __asm__(
    "_ZN6paddle14AnalysisConfig12EnableMKLDNNEv") __attribute__((weak));
void phot_cfg_enable_bf16(paddle::AnalysisConfig* c) __asm__(
    "_ZN6paddle14AnalysisConfig20EnableMkldnnBfloat16Ev") __attribute__((weak));
void phot_cfg_enable_int8(paddle::AnalysisConfig* c, const std::unordered_set<std::string>* ops)
    __asm__("_ZN6paddle14AnalysisConfig16EnableMkldnnInt8ERKSt13unordered_setINSt7__cxx1112"
            "basic_stringIcSt11char_traitsIcESaIcEEESt4hashIS7_ESt8equal_toIS7_ESaIS7_EE")
        __attribute__((weak));
bool phot_cfg_onednn_enabled(const paddle::AnalysisConfig* c) __asm__(
    "_ZNK6paddle14AnalysisConfig14onednn_enabledEv") __attribute__((weak));
bool phot_cfg_onednn_int8_enabled(const paddle::AnalysisConfig* c) __asm__(
    "_ZNK6paddle14AnalysisConfig19onednn_int8_enabledEv") __attribute__((weak));
bool phot_paddle_supports_bf16() __asm__("_ZN6paddle6pybind16SupportsBfloat16Ev")
    __attribute__((weak));
}

namespace paddle_infer {

/* paddle_infer::DataType as Paddle Inference numbers it (public docs; the Python binding
 * paddle.inference.DataType agrees on 3.3.1). The self-test checks every value pdcapi maps. */
enum DataType : int {
  FLOAT32 = 0,
  INT64 = 1,
  INT32 = 2,
  UINT8 = 3,
  INT8 = 4,
  FLOAT16 = 5,
  BOOL = 6,
  FLOAT64 = 7,
};

class Tensor {
 public:
  void Reshape(const std::vector<int>& shape);
  template <typename T>
  void CopyFromCpu(const T* data);
  template <typename T>
  void CopyToCpu(T* data) const;
  std::vector<int> shape() const;
  DataType type() const;

  Tensor() = delete;
  Tensor(const Tensor&) = delete;
  ~Tensor() = delete; /* not exported: never destroyed through this declaration */
};

/* What Predictor::Get{Input,Output}Handle return: a std::unique_ptr<Tensor> (one pointer, not
 * trivially destructible, so returned in memory, like this struct). The object behind it is a
 * paddle::ZeroCopyTensor (AnalysisPredictor allocates one, 104 bytes on 3.3.1), and libpaddle
 * exports std::unique_ptr<paddle::ZeroCopyTensor>'s destructor: that destroys it. The return
 * type of a non-template function is not part of its symbol, so this declaration links to the
 * same function; the layout match (a single owning pointer) is checked by the self-test. */
struct TensorHandle {
  Tensor* ptr = nullptr;
  TensorHandle() = default;
  TensorHandle(const TensorHandle&) = delete;
  TensorHandle(TensorHandle&& o) noexcept : ptr(o.ptr) { o.ptr = nullptr; }
  ~TensorHandle();
  Tensor* release() {
    Tensor* p = ptr;
    ptr = nullptr;
    return p;
  }
};

/* Free a tensor handle the way libpaddle does (see TensorHandle). NULL is allowed. */
void DestroyTensor(Tensor* t);

class Predictor {
 public:
  std::vector<std::string> GetInputNames();
  std::vector<std::string> GetOutputNames();
  TensorHandle GetInputHandle(const std::string& name);
  TensorHandle GetOutputHandle(const std::string& name);
  bool Run();

  Predictor() = delete;
  Predictor(const Predictor&) = delete;
  ~Predictor() = delete; /* inline in Paddle, not exported: shared_ptr's own deleter frees it */
};

/* The predictor comes with libpaddle's std::default_delete<Predictor> in its control block. */
std::shared_ptr<Predictor> CreatePredictor(const paddle::AnalysisConfig& config);

std::string GetVersion();

}  // namespace paddle_infer

#endif
