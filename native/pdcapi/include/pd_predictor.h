/* Paddle Inference C API subset (paddlehot): PD_Predictor. */
#pragma once

#include "pd_common.h"  // NOLINT

typedef struct PD_Predictor PD_Predictor;
typedef struct PD_Config PD_Config;
typedef struct PD_Tensor PD_Tensor;
typedef struct PD_OneDimArrayCstr PD_OneDimArrayCstr;

#ifdef __cplusplus
extern "C" {
#endif

/* Reads the config and leaves it to the caller, who destroys it (as Paddle's capi_exp does). */
PADDLE_CAPI_EXPORT extern __pd_give PD_Predictor* PD_PredictorCreate(
    __pd_keep PD_Config* pd_config);
/* A new predictor sharing the weights of pd_predictor; destroy each one separately. */
PADDLE_CAPI_EXPORT extern __pd_give PD_Predictor* PD_PredictorClone(
    __pd_keep PD_Predictor* pd_predictor);
/* Free the result with PD_OneDimArrayCstrDestroy. */
PADDLE_CAPI_EXPORT extern __pd_give PD_OneDimArrayCstr* PD_PredictorGetInputNames(
    __pd_keep PD_Predictor* pd_predictor);
PADDLE_CAPI_EXPORT extern __pd_give PD_OneDimArrayCstr* PD_PredictorGetOutputNames(
    __pd_keep PD_Predictor* pd_predictor);
PADDLE_CAPI_EXPORT extern size_t PD_PredictorGetInputNum(__pd_keep PD_Predictor* pd_predictor);
PADDLE_CAPI_EXPORT extern size_t PD_PredictorGetOutputNum(__pd_keep PD_Predictor* pd_predictor);
/* Free the result with PD_TensorDestroy (before the predictor). */
PADDLE_CAPI_EXPORT extern __pd_give PD_Tensor* PD_PredictorGetInputHandle(
    __pd_keep PD_Predictor* pd_predictor, const char* name);
PADDLE_CAPI_EXPORT extern __pd_give PD_Tensor* PD_PredictorGetOutputHandle(
    __pd_keep PD_Predictor* pd_predictor, const char* name);
PADDLE_CAPI_EXPORT extern PD_Bool PD_PredictorRun(__pd_keep PD_Predictor* pd_predictor);
PADDLE_CAPI_EXPORT extern void PD_PredictorDestroy(__pd_take PD_Predictor* pd_predictor);

/* Static string owned by the library; do not free. */
PADDLE_CAPI_EXPORT extern const char* PD_GetVersion();

#ifdef __cplusplus
}
#endif
