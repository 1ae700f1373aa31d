/* paddlehot extension to the Paddle Inference C API; NOT in the official library.
 * Declare it weak in code that must also link against the official library:
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

#ifdef __cplusplus
}
#endif
