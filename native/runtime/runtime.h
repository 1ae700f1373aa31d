/* The paddlehot plugin runtime: everything of a plugin that does not depend on the model (model
 * files from the plugin's own file, the predictor pool, input and output checks, run, errors).
 *
 * build-plugin compiles these sources with a short generated shim (shim.c.in: the model's
 * signature as a phot_rt_desc plus the five exported functions) into one .so. Every runtime symbol
 * is hidden, so each plugin carries its own copy and two plugins never share state.
 * The runtime calls Paddle Inference only through its C API (pd_inference_api.h). */
#ifndef PHOT_RUNTIME_H
#define PHOT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "paddlehot/plugin.h"

#define PHOT_HIDDEN __attribute__((visibility("hidden")))

/* One tensor of the model's signature. shape[d] == -1: any size. */
typedef struct {
  const char *name;
  phot_dtype dtype;
  int32_t rank;
  int64_t shape[PHOT_MAX_RANK];
} phot_rt_spec;

/* What the shim tells the runtime about its model. Lives as long as the plugin (static data). */
typedef struct {
  const char *model, *version;       /* for messages */
  const phot_rt_spec *inputs;        /* in the order Paddle lists them */
  int n_inputs;
  const phot_rt_spec *outputs;       /* in manifest order */
  int n_outputs;
  const char *input_names;           /* "x, y": for messages */
  const char *output_names;
  const char *prog_file;             /* model.json | model.pdmodel */
  const char *params_file;           /* model.pdiparams */
  int embedded;                      /* the model files are sections of the plugin's own file */
  const char *prog_section;          /* .paddlehot.model */
  const char *params_section;        /* .paddlehot.params */
  const void *self;                  /* any address inside the plugin: finds its file */
  /* From the variant's manifest (fp32: "fp32" and empty lists): its precision and the CPU flags
   * it requires, space-separated (all of `all`, one of `any`). */
  const char *precision;
  const char *cpu_flags_all;
  const char *cpu_flags_any;
} phot_rt_desc;

/* The five functions of plugin.h, for the model `d`. */
PHOT_HIDDEN int32_t phot_rt_open(const phot_rt_desc *d, const phot_open_options *options,
                                 phot_model **out);
PHOT_HIDDEN int32_t phot_rt_infer(phot_model *model, const phot_tensor *inputs, size_t n_inputs,
                                  phot_tensor *outputs, size_t n_outputs);
PHOT_HIDDEN int32_t phot_rt_close(phot_model *model);
PHOT_HIDDEN const char *phot_rt_last_error(void);

/* ---- shared between the runtime's sources */

/* Set the thread's last error; returns code. */
PHOT_HIDDEN int32_t phot_rt_fail(int32_t code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
PHOT_HIDDEN void phot_rt_clear_error(void);

/* Size of one element; 0 for an unknown dtype. */
PHOT_HIDDEN size_t phot_rt_dtype_size(phot_dtype d);
PHOT_HIDDEN const char *phot_rt_dtype_name(phot_dtype d);

/* The 1.0 size of phot_tensor: a caller's struct_size may be larger (appended fields), never
 * smaller. Arrays are walked with the caller's struct_size as the stride. */
#define PHOT_TENSOR_SIZE_1_0 ((uint32_t)sizeof(phot_tensor))

/* Validated view of the caller's arrays: element i of inputs/outputs and, per model input k, the
 * caller's index of that input; per requested output i, the model output it asks for. */
typedef struct {
  const char *in_base;
  size_t in_stride;
  char *out_base;
  size_t out_stride;
  size_t n_outputs;
  size_t *order; /* [n_inputs of the model] */
  int *which;    /* [n_outputs requested] */
} phot_rt_call;

PHOT_HIDDEN const phot_tensor *phot_rt_input(const phot_rt_call *c, size_t i);
PHOT_HIDDEN phot_tensor *phot_rt_output(const phot_rt_call *c, size_t i);

/* Check inputs and outputs against the signature (tensors.c). */
PHOT_HIDDEN int32_t phot_rt_check_call(const phot_rt_desc *d, const phot_tensor *inputs,
                                       size_t n_inputs, phot_tensor *outputs, size_t n_outputs,
                                       phot_rt_call *c);

/* Copy the inputs in, run, copy the outputs out (tensors.c). in/out: the predictor's tensor
 * handles in signature order. */
struct PD_Predictor;
struct PD_Tensor;
PHOT_HIDDEN int32_t phot_rt_run(const phot_rt_desc *d, struct PD_Predictor *pred,
                                struct PD_Tensor *const *in, struct PD_Tensor *const *out,
                                const phot_rt_call *c);

/* precision.c: a variant's CPU check (before any predictor) and its config switches. */
struct PD_Config;
PHOT_HIDDEN int phot_rt_is_fp32(const phot_rt_desc *d);
PHOT_HIDDEN int32_t phot_rt_check_precision(const phot_rt_desc *d);
PHOT_HIDDEN int32_t phot_rt_configure_precision(const phot_rt_desc *d, struct PD_Config *cfg);

/* The Paddle C API's last message, or a fixed text when it has none. */
PHOT_HIDDEN const char *phot_rt_capi_error(void);

#endif
