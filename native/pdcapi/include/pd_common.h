/* Paddle Inference C API subset (paddlehot): common macros and enums.
 * Names, values and ownership annotations follow the official capi_exp headers so that
 * code written against them compiles unchanged against this subset. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#if defined(_WIN32)
#ifdef PADDLE_DLL_INFERENCE
#define PADDLE_CAPI_EXPORT __declspec(dllexport)
#else
#define PADDLE_CAPI_EXPORT __declspec(dllimport)
#endif
#else
#define PADDLE_CAPI_EXPORT __attribute__((visibility("default")))
#endif

/* Ownership markers (expand to nothing):
 *   __pd_give  the function returns a new object; the caller must pass it to exactly one
 *              __pd_take parameter (the matching *Destroy function) later.
 *   __pd_take  the function takes over the object; the caller must not use it afterwards.
 *   __pd_keep  the function only borrows the object for the duration of the call. */
#ifndef __pd_give
#define __pd_give
#endif
#ifndef __pd_take
#define __pd_take
#endif
#ifndef __pd_keep
#define __pd_keep
#endif

typedef int8_t PD_Bool;
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

#define PD_ENUM(type)   \
  typedef int32_t type; \
  enum

PD_ENUM(PD_PrecisionType){PD_PRECISION_FLOAT32 = 0, PD_PRECISION_INT8, PD_PRECISION_HALF};

PD_ENUM(PD_PlaceType){PD_PLACE_UNK = -1, PD_PLACE_CPU, PD_PLACE_GPU, PD_PLACE_XPU};

PD_ENUM(PD_DataType){
    PD_DATA_UNK = -1,   PD_DATA_FLOAT32, /* 0 */
    PD_DATA_INT32,      /* 1 */
    PD_DATA_INT64,      /* 2 */
    PD_DATA_UINT8,      /* 3 */
    PD_DATA_INT8,       /* 4 */
};
