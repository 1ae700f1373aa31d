/* paddlehot extensions to the Paddle Inference C API; NOT in the official library.
 * Declare them weak in code that must also link against the official library:
 *   extern const char *paddlehot_pdcapi_last_error(void) __attribute__((weak));
 *   if (paddlehot_pdcapi_last_error) msg = paddlehot_pdcapi_last_error(); */
#pragma once

#include "pd_common.h"  // NOLINT

#ifdef __cplusplus
extern "C" {
#endif

/* Message ("ExceptionType: text") of the last failed PD_* call on this thread, or "" if none.
 * Owned by the library; valid until the next failure on this thread. */
PADDLE_CAPI_EXPORT extern const char* paddlehot_pdcapi_last_error(void);

/* Predictors created (PD_PredictorCreate, PD_PredictorClone) and not yet destroyed, in this
 * process: how a host or a benchmark sees a plugin's pool breathe without asking the plugin. */
PADDLE_CAPI_EXPORT extern int64_t paddlehot_pdcapi_predictors_alive(void);

#ifdef __cplusplus
}
#endif
