/* Paddle Inference C API subset (paddlehot): PD_Config. */
#pragma once

#include "pd_common.h"  // NOLINT
#include "pd_types.h"   // NOLINT

typedef struct PD_Config PD_Config;

#ifdef __cplusplus
extern "C" {
#endif

/* New empty config. The caller always destroys it with PD_ConfigDestroy, also after
 * PD_PredictorCreate: Paddle's own capi_exp reads the config there and does not free it (despite
 * its __pd_take mark), and pdcapi does the same, so one rule holds on both libraries. */
PADDLE_CAPI_EXPORT extern __pd_give PD_Config* PD_ConfigCreate();
PADDLE_CAPI_EXPORT extern void PD_ConfigDestroy(__pd_take PD_Config* pd_config);

/* Combined model: program file (.json PIR or .pdmodel) and parameters file (.pdiparams). */
PADDLE_CAPI_EXPORT extern void PD_ConfigSetModel(__pd_keep PD_Config* pd_config,
                                                 const char* prog_file_path,
                                                 const char* params_file_path);
PADDLE_CAPI_EXPORT extern void PD_ConfigSetProgFile(__pd_keep PD_Config* pd_config,
                                                    const char* prog_file_path);
PADDLE_CAPI_EXPORT extern void PD_ConfigSetParamsFile(__pd_keep PD_Config* pd_config,
                                                      const char* params_file_path);
PADDLE_CAPI_EXPORT extern void PD_ConfigSetModelDir(__pd_keep PD_Config* pd_config,
                                                    const char* model_dir);
/* The strings stay owned by the config (valid until it changes or is destroyed). */
PADDLE_CAPI_EXPORT extern const char* PD_ConfigGetModelDir(__pd_keep PD_Config* pd_config);
PADDLE_CAPI_EXPORT extern const char* PD_ConfigGetProgFile(__pd_keep PD_Config* pd_config);
PADDLE_CAPI_EXPORT extern const char* PD_ConfigGetParamsFile(__pd_keep PD_Config* pd_config);

/* Model and parameters from memory; both buffers are copied. */
PADDLE_CAPI_EXPORT extern void PD_ConfigSetModelBuffer(__pd_keep PD_Config* pd_config,
                                                       const char* prog_buffer,
                                                       size_t prog_buffer_size,
                                                       const char* params_buffer,
                                                       size_t params_buffer_size);
PADDLE_CAPI_EXPORT extern PD_Bool PD_ConfigModelFromMemory(__pd_keep PD_Config* pd_config);

PADDLE_CAPI_EXPORT extern void PD_ConfigDisableGpu(__pd_keep PD_Config* pd_config);
PADDLE_CAPI_EXPORT extern PD_Bool PD_ConfigUseGpu(__pd_keep PD_Config* pd_config);

PADDLE_CAPI_EXPORT extern void PD_ConfigSwitchIrOptim(__pd_keep PD_Config* pd_config, PD_Bool x);
PADDLE_CAPI_EXPORT extern PD_Bool PD_ConfigIrOptim(__pd_keep PD_Config* pd_config);

PADDLE_CAPI_EXPORT extern void PD_ConfigSetCpuMathLibraryNumThreads(
    __pd_keep PD_Config* pd_config, int32_t cpu_math_library_num_threads);
PADDLE_CAPI_EXPORT extern int32_t PD_ConfigGetCpuMathLibraryNumThreads(
    __pd_keep PD_Config* pd_config);

PADDLE_CAPI_EXPORT extern void PD_ConfigEnableMemoryOptim(__pd_keep PD_Config* pd_config,
                                                          PD_Bool x);
PADDLE_CAPI_EXPORT extern PD_Bool PD_ConfigMemoryOptimEnabled(__pd_keep PD_Config* pd_config);

/* Input shapes for which a predictor keeps its oneDNN data (0 = off, the default). pdcapi bounds
 * memory under dynamic shapes with oneDNN's process-wide primitive cache instead
 * (ONEDNN_PRIMITIVE_CACHE_CAPACITY, 256 unless the environment sets it). */
PADDLE_CAPI_EXPORT extern void PD_ConfigSetMkldnnCacheCapacity(__pd_keep PD_Config* pd_config,
                                                               int32_t capacity);

/* oneDNN (Paddle still spells it MKLDNN in the C API). The *Enabled queries say what Paddle will
 * really do with this config on this box and build, not only what was asked: false where the
 * wheel has no oneDNN, where its CPU cannot run bfloat16 (Paddle's own rule in
 * AnalysisConfig::EnableMkldnnBfloat16), or where the wheel lacks the switch. */
PADDLE_CAPI_EXPORT extern void PD_ConfigEnableMKLDNN(__pd_keep PD_Config* pd_config);
PADDLE_CAPI_EXPORT extern PD_Bool PD_ConfigMkldnnEnabled(__pd_keep PD_Config* pd_config);
PADDLE_CAPI_EXPORT extern void PD_ConfigEnableMkldnnBfloat16(__pd_keep PD_Config* pd_config);
PADDLE_CAPI_EXPORT extern PD_Bool PD_ConfigMkldnnBfloat16Enabled(__pd_keep PD_Config* pd_config);
/* int8 kernels for a quantized program (all of its quantized operators). */
PADDLE_CAPI_EXPORT extern void PD_ConfigEnableMkldnnInt8(__pd_keep PD_Config* pd_config);
PADDLE_CAPI_EXPORT extern PD_Bool PD_ConfigMkldnnInt8Enabled(__pd_keep PD_Config* pd_config);

PADDLE_CAPI_EXPORT extern void PD_ConfigDisableGlogInfo(__pd_keep PD_Config* pd_config);
PADDLE_CAPI_EXPORT extern PD_Bool PD_ConfigGlogInfoDisabled(__pd_keep PD_Config* pd_config);

#ifdef __cplusplus
}
#endif
