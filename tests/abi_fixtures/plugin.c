/* A plugin-shaped shared object for abi-check tests. PREFIX is phot_<model>_v<M>_<m>_<p>_.
 * Variants switch one rule-breaking feature on with -D flags (see helpers.py). */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "plugin.h"
#ifdef NEWER_GLIBC
#include <dlfcn.h>
#endif

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(n) CAT(PREFIX, n)
#define PHOT_EXPORT __attribute__((visibility("default")))
#ifdef WEAK_EXPORT
#define PHOT_WEAK __attribute__((weak))
#else
#define PHOT_WEAK
#endif

typedef struct PD_Config PD_Config;
extern PD_Config *PD_ConfigCreate(void);
extern void PD_ConfigDestroy(PD_Config *config);
extern const char *paddlehot_pdcapi_last_error(void) __attribute__((weak));
#ifdef MISSING_IMPORT
extern int phot_not_provided_anywhere(int x);
#endif

/* Mutation-corpus knobs (tests/test_abi_corpus.py): each changes one thing in the exported ABI. */
#ifndef N_INPUTS_T
#define N_INPUTS_T size_t
#endif
#ifndef CLOSE_RET_T
#define CLOSE_RET_T int32_t
#endif
#ifndef CLOSE_ARG_CONST
#define CLOSE_ARG_CONST
#endif
#ifndef MANIFEST_FN
#define MANIFEST_FN manifest
#endif
#ifdef EXTRA_INFER_PARAM
#define INFER_EXTRA , uint32_t flags
#else
#define INFER_EXTRA
#endif

struct phot_model { /* opaque in plugin.h: its layout is the plugin's own business */
  int32_t threads;
#ifdef PRIVATE_GROWN
  int64_t requests;
#endif
};
static struct phot_model the_model;

PHOT_EXPORT int32_t FN(open)(const phot_open_options *options, phot_model **out) {
  if (!options || !out || options->struct_size < sizeof(uint32_t)) return PHOT_E_INVALID_ARGUMENT;
#ifdef ABORT_IN_OPEN /* what a Paddle abort in a version's load does to the process */
  abort();
#endif
  PD_Config *config = PD_ConfigCreate();
  PD_ConfigDestroy(config);
  the_model.threads = options->threads;
  *out = &the_model;
  return PHOT_OK;
}

PHOT_EXPORT int32_t FN(infer)(phot_model *model, const phot_tensor *inputs, N_INPUTS_T n_inputs,
                              phot_tensor *outputs, size_t n_outputs INFER_EXTRA) {
  if (!model || !inputs || !outputs || n_inputs == 0 || n_outputs == 0) return PHOT_E_INVALID_ARGUMENT;
#ifdef MISSING_IMPORT
  if (phot_not_provided_anywhere(inputs[0].rank) < 0) return PHOT_E_RUNTIME;
#endif
  outputs[0].byte_size = inputs[0].byte_size;
  outputs[0].rank = inputs[0].rank;
  return inputs[0].name && strlen(inputs[0].name) > 0 ? PHOT_OK : PHOT_E_UNKNOWN_INPUT;
}

PHOT_EXPORT PHOT_WEAK CLOSE_RET_T FN(close)(CLOSE_ARG_CONST phot_model *model) {
#ifdef NEWER_GLIBC
  if (!model) return dlerror() ? PHOT_E_RUNTIME : PHOT_E_INVALID_ARGUMENT;
#endif
  return model ? PHOT_OK : PHOT_E_INVALID_ARGUMENT;
}

#ifdef PROTECTED_EXPORT
__attribute__((visibility("protected")))
#else
PHOT_EXPORT
#endif
const char *FN(MANIFEST_FN)(void) { return "{}"; }

#ifndef DROP_LAST_ERROR
static char last_error_text[256];

PHOT_EXPORT const char *FN(last_error)(void) {
  snprintf(last_error_text, sizeof last_error_text, "%s",
           paddlehot_pdcapi_last_error ? paddlehot_pdcapi_last_error() : "");
  return last_error_text;
}
#endif

#ifdef EXTRA_HELPER
PHOT_EXPORT int phot_leaked_helper(int x) { return x + 1; }
#endif
