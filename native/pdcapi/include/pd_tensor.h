/* Paddle Inference C API subset (paddlehot): PD_Tensor (an input or output handle). */
#pragma once

#include "pd_common.h"  // NOLINT

typedef struct PD_Tensor PD_Tensor;
typedef struct PD_OneDimArrayInt32 PD_OneDimArrayInt32;

#ifdef __cplusplus
extern "C" {
#endif

PADDLE_CAPI_EXPORT extern void PD_TensorDestroy(__pd_take PD_Tensor* pd_tensor);
/* Set the shape of an input before PD_TensorCopyFromCpu*. */
PADDLE_CAPI_EXPORT extern void PD_TensorReshape(__pd_keep PD_Tensor* pd_tensor,
                                                size_t shape_size, int32_t* shape);

/* Copy product(shape) elements from host memory into the tensor. */
PADDLE_CAPI_EXPORT extern void PD_TensorCopyFromCpuFloat(__pd_keep PD_Tensor* pd_tensor,
                                                         const float* data);
PADDLE_CAPI_EXPORT extern void PD_TensorCopyFromCpuInt64(__pd_keep PD_Tensor* pd_tensor,
                                                         const int64_t* data);
PADDLE_CAPI_EXPORT extern void PD_TensorCopyFromCpuInt32(__pd_keep PD_Tensor* pd_tensor,
                                                         const int32_t* data);
PADDLE_CAPI_EXPORT extern void PD_TensorCopyFromCpuUint8(__pd_keep PD_Tensor* pd_tensor,
                                                         const uint8_t* data);
PADDLE_CAPI_EXPORT extern void PD_TensorCopyFromCpuInt8(__pd_keep PD_Tensor* pd_tensor,
                                                        const int8_t* data);

/* Copy the whole tensor to host memory; data must hold product(PD_TensorGetShape) elements. */
PADDLE_CAPI_EXPORT extern void PD_TensorCopyToCpuFloat(__pd_keep PD_Tensor* pd_tensor,
                                                       float* data);
PADDLE_CAPI_EXPORT extern void PD_TensorCopyToCpuInt64(__pd_keep PD_Tensor* pd_tensor,
                                                       int64_t* data);
PADDLE_CAPI_EXPORT extern void PD_TensorCopyToCpuInt32(__pd_keep PD_Tensor* pd_tensor,
                                                       int32_t* data);
PADDLE_CAPI_EXPORT extern void PD_TensorCopyToCpuUint8(__pd_keep PD_Tensor* pd_tensor,
                                                       uint8_t* data);
PADDLE_CAPI_EXPORT extern void PD_TensorCopyToCpuInt8(__pd_keep PD_Tensor* pd_tensor,
                                                      int8_t* data);

/* Free the result with PD_OneDimArrayInt32Destroy. */
PADDLE_CAPI_EXPORT extern __pd_give PD_OneDimArrayInt32* PD_TensorGetShape(
    __pd_keep PD_Tensor* pd_tensor);
/* Owned by the tensor; valid until PD_TensorDestroy. */
PADDLE_CAPI_EXPORT extern const char* PD_TensorGetName(__pd_keep PD_Tensor* pd_tensor);
PADDLE_CAPI_EXPORT extern PD_DataType PD_TensorGetDataType(__pd_keep PD_Tensor* pd_tensor);

#ifdef __cplusplus
}
#endif
