/* Internal declarations shared by the pdcapi sources (never installed). C++; no Python. */
#ifndef PHOT_PDCAPI_INTERNAL_H
#define PHOT_PDCAPI_INTERNAL_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "memfiles.h" /* native/runtime: the one memfd helper, shared with the plugin runtime */
#include "paddle_cxx.h"
#include "paddlehot_pdcapi_ext.h"
#include "pd_inference_api.h"

#define PHOT_HIDDEN __attribute__((visibility("hidden")))

/* Plain C state; the paddle::AnalysisConfig is built from it in PD_PredictorCreate, one per
 * predictor. No Paddle call happens before that. */
struct PD_Config {
  char *prog_file, *params_file, *model_dir;
  char *prog_buf, *params_buf; /* copies made by PD_ConfigSetModelBuffer */
  size_t prog_len, params_len;
  int from_buffer;
  int32_t threads;
  int32_t onednn_cache_capacity; /* PD_ConfigSetMkldnnCacheCapacity; 0 = off (thread_runs.cc) */
  PD_Bool ir_optim, memory_optim, glog_disabled;
  PD_Bool onednn, onednn_bf16, onednn_int8; /* asked for; precision.cc says what Paddle does */
};

/* paddlehot's bound on oneDNN's process-wide primitive cache (ONEDNN_PRIMITIVE_CACHE_CAPACITY,
 * unless the environment sets it): the same as core.paddle_runtime's
 * DEFAULT_ONEDNN_PRIMITIVE_CACHE (a test keeps them equal), so plugins over pdcapi, core.load and
 * serve bound memory alike under dynamic shapes. */
#define PHOT_DEFAULT_ONEDNN_PRIMITIVE_CACHE "256"

/* Private temp dir with symlinks to memfds, shared by a predictor and its clones: a clone is a
 * new predictor from a copy of the config, which names these files. */
struct phot_files {
  int refs;
  phot_memfiles mem;
};

struct PD_Predictor {
  paddle::AnalysisConfig* config;            /* this predictor's own, in a ConfigBox */
  std::shared_ptr<paddle_infer::Predictor> pred; /* from CreatePredictor: libpaddle's deleter */
  std::vector<std::string> in_names, out_names;
  phot_files* files; /* NULL unless loaded from a PIR buffer */
  uint64_t id;       /* unique in the process (thread_runs.cc: a reused address is another) */
  bool shape_cached; /* oneDNN cache capacity > 0: its runs run alone (thread_runs.cc) */
};

struct PD_Tensor {
  paddle_infer::Tensor* t; /* freed by paddle_infer::DestroyTensor */
  std::string name;
};

/* errors.cc */
PHOT_HIDDEN void phot_set_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
PHOT_HIDDEN void phot_clear_error(void);
/* The current exception (inside a catch block) as "fn: message". */
PHOT_HIDDEN void phot_set_error_from_current(const char* fn);

/* Run f(); any C++ exception becomes the last error and the result `fail`. Every PD_ entry point
 * that can reach Paddle or allocate goes through this: no exception crosses the C ABI. */
template <class R, class F>
static inline R phot_guard(const char* fn, R fail, F&& f) {
  try {
    return f();
  } catch (...) {
    phot_set_error_from_current(fn);
    return fail;
  }
}
template <class F>
static inline void phot_guard_void(const char* fn, F&& f) {
  try {
    f();
  } catch (...) {
    phot_set_error_from_current(fn);
  }
}

/* lifecycle.cc: the one process-wide lock around predictor create and destroy. */
PHOT_HIDDEN std::shared_ptr<paddle_infer::Predictor> phot_create_locked(
    const paddle::AnalysisConfig& config);
PHOT_HIDDEN void phot_destroy_locked(std::shared_ptr<paddle_infer::Predictor>& pred,
                                     paddle::AnalysisConfig* config);
PHOT_HIDDEN void phot_lifecycle_lock(void);
PHOT_HIDDEN void phot_lifecycle_unlock(void);

/* thread_runs.cc: thread exits vs runs and Paddle's oneDNN cache (comment at its top). Every
 * Paddle call a thread makes through pdcapi comes after phot_thread_before_paddle; runs go
 * through PhotRunGate, tensor copies between phot_run_enter and phot_run_leave. */
PHOT_HIDDEN void phot_thread_before_paddle(void);
PHOT_HIDDEN void phot_thread_after_paddle(void);
PHOT_HIDDEN void phot_run_enter(void);
PHOT_HIDDEN void phot_run_leave(void);
PHOT_HIDDEN bool phot_run_enter_for(const PD_Predictor* p); /* true: this run runs alone */
PHOT_HIDDEN void phot_run_leave_for(bool alone);
PHOT_HIDDEN uint64_t phot_new_predictor_id(void);
struct PhotRunGate {
  explicit PhotRunGate(const PD_Predictor* p) : alone(phot_run_enter_for(p)) {}
  ~PhotRunGate() { phot_run_leave_for(alone); }
  PhotRunGate(const PhotRunGate&) = delete;
  PhotRunGate& operator=(const PhotRunGate&) = delete;
  const bool alone;
};
/* A tensor copy may build oneDNN reorders in Paddle's cache: never under a shape-cached run. */
struct PhotSharedGate {
  PhotSharedGate() { phot_run_enter(); }
  ~PhotSharedGate() { phot_run_leave(); }
  PhotSharedGate(const PhotSharedGate&) = delete;
  PhotSharedGate& operator=(const PhotSharedGate&) = delete;
};
PHOT_HIDDEN void phot_note_run(const PD_Predictor* p);
PHOT_HIDDEN bool phot_forget_onednn_kernels(void); /* false where the wheel has no oneDNN */
PHOT_HIDDEN bool phot_paddle_has_onednn(void);

/* precision.cc: the oneDNN and precision switches applied to a new config. */
PHOT_HIDDEN void phot_apply_precision(paddle::AnalysisConfig* cfg, const PD_Config* c);

/* model_check.cc: refuse what Paddle would crash or abort on, before Paddle sees it. */
PHOT_HIDDEN bool phot_check_model_files(const char* prog, const char* params, const char* fn);
PHOT_HIDDEN bool phot_check_program_bytes(const char* data, size_t n, const char* what,
                                          const char* fn);

/* memfd.cc */
PHOT_HIDDEN phot_files* phot_files_create(const char* prog, size_t prog_len, const char* params,
                                          size_t params_len);
PHOT_HIDDEN void phot_files_retain(phot_files* f);
PHOT_HIDDEN void phot_files_release(phot_files* f);

#define PHOT_CHECK_ARG(cond, fn, ret)                    \
  do {                                                   \
    if (!(cond)) {                                       \
      phot_set_error("%s: invalid argument (NULL)", fn); \
      return ret;                                        \
    }                                                    \
  } while (0)

#endif
