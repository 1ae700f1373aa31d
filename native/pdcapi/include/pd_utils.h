/* Paddle Inference C API subset (paddlehot): destroy functions for the returned arrays. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "pd_types.h"  // NOLINT

#ifdef __cplusplus
extern "C" {
#endif

/* Each frees the array and everything it points to; NULL is allowed. */
PADDLE_CAPI_EXPORT extern void PD_OneDimArrayInt32Destroy(__pd_take PD_OneDimArrayInt32* array);
PADDLE_CAPI_EXPORT extern void PD_OneDimArrayCstrDestroy(__pd_take PD_OneDimArrayCstr* array);
PADDLE_CAPI_EXPORT extern void PD_OneDimArraySizeDestroy(__pd_take PD_OneDimArraySize* array);
PADDLE_CAPI_EXPORT extern void PD_TwoDimArraySizeDestroy(__pd_take PD_TwoDimArraySize* array);
PADDLE_CAPI_EXPORT extern void PD_CstrDestroy(__pd_take PD_Cstr* cstr);

#ifdef __cplusplus
}
#endif
