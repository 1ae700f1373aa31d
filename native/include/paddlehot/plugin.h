/*
 * paddlehot plugin C ABI, revision 1.1 (GNU symbol version node PADDLEHOT_1.0: a minor revision
 * adds no function, so the exports keep the node of 1.0).
 *
 * A plugin is one shared object per model version. It exports exactly five functions, named
 *
 *     phot_<model>_v<MAJOR>_<MINOR>_<PATCH>_<function>
 *
 * where <model> is the model name reduced to [a-z0-9_] and <function> is one of
 * open, infer, close, manifest, last_error. Example for model "mlp" version 1.2.0:
 * phot_mlp_v1_2_0_infer. Because the version is in every name, two versions of one model can be
 * loaded into one process (even with RTLD_GLOBAL) without clashing. A host finds the prefix in the
 * manifest (JSON key plugin.symbol_prefix), or builds it from the model name and version. The
 * plugin of a precision variant (version 1.2.0 at int8, key 1.2.0-int8) inserts the precision:
 * phot_mlp_v1_2_0_int8_infer.
 * Every other symbol is hidden; every export is bound to the version node PADDLEHOT_1.0.
 *
 * Return codes: 0 is success, negative values are errors (PHOT_E_*). Values >= 100 are reserved
 * for later ABI revisions; a host must treat an unknown code as an error.
 *
 * Memory: the caller owns every buffer it passes (options, input tensors and their data, output
 * tensors and their data). A plugin never returns memory the caller must free. Strings returned
 * by manifest() live until the plugin is unloaded; the string from last_error() lives until the
 * next call into the plugin on the same thread.
 *
 * Threads: one handle may be used from many threads at once. Inside, a pool of predictors
 * (initial and maximum size from the open options) serves concurrent infer calls. A call never
 * creates a predictor: when every one is busy it waits for the first to come free, and the
 * handle's pool thread (named phot-pool) creates the next one up to pool_max. Predictors above
 * pool_initial that stay idle for pool_idle_ms are destroyed again (revision 1.1). close() waits for calls in flight on that
 * handle, then releases it; any later call on a closed handle returns PHOT_E_CLOSED. No C++
 * exception ever crosses this boundary: every failure becomes a return code and a message.
 *
 * Growth: every struct that crosses the boundary starts with uint32_t struct_size, which the
 * caller sets to sizeof() of the struct as it was compiled. Later revisions only append fields;
 * existing fields never move, change size or change type. The rules a plugin keeps:
 *   - phot_open_options: fields that do not fit in struct_size take their defaults.
 *   - phot_tensor arrays: the plugin walks them with the caller's struct_size as the stride
 *     (element i is at (char *)array + i * struct_size), so a caller built against a later header
 *     passes its own, larger elements. Every element of one array has the same struct_size; it
 *     must be >= sizeof(phot_tensor) of revision 1.0 (104 on LP64) and a multiple of its
 *     alignment (8), else PHOT_E_INVALID_ARGUMENT. The plugin reads only the fields it knows and
 *     writes only dtype, rank, shape and byte_size of outputs: appended fields are never touched.
 * A host can tell from the manifest (plugin.struct_sizes, plugin.abi_version) which revision the
 * plugin knows; a 1.0 plugin ignores the fields of 1.1 (its pools never shrink).
 * enum phot_abi_growth below states the same rules per struct, for abi-check: a struct it does not
 * name has a size fixed for callers, and appending a field to it breaks them.
 *
 * Unloading: a plugin holds nothing that pins it (no DF_1_NODELETE, no STB_GNU_UNIQUE symbol, no
 * pthread key, no atexit handler; its thread-local error buffer does not pin it either). After
 * close() returned for every handle, a host may dlclose() the plugin and it leaves the process.
 * The embedded model lives in sections that are never mapped: open() reads them from the plugin's
 * own file (the path it was dlopened by) and hands them to Paddle; so that file must stay
 * readable until open() returns. A handle whose pool may still grow keeps that file open (one
 * descriptor, closed by close()) and reads the model from it for each new predictor, so a file
 * renamed over the path or deleted afterwards changes nothing. Hosts that must survive the file
 * being overwritten in place load a private copy (paddlehot's Python host dlopens a sealed
 * memfd, /proc/self/fd/N).
 *
 * The official Paddle Inference C library: it reports many failures by throwing a C++ exception
 * through its C functions, which aborts the process (std::terminate). A plugin calls it only
 * with arguments it checked first (NULL handles, names of the signature, dtypes it can copy,
 * shapes with the right rank and byte size), which is how a bad request becomes a PHOT_E_* code
 * instead of an abort; a model file that the library itself cannot parse can still abort in
 * open(). PD_PredictorCreate does not free its PD_Config there (despite __pd_take): the plugin
 * destroys the config itself, and paddlehot's pdcapi behaves the same way.
 */
#ifndef PADDLEHOT_PLUGIN_H
#define PADDLEHOT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PHOT_ABI_MAJOR 1
#define PHOT_ABI_MINOR 1
#define PHOT_ABI_NODE "PADDLEHOT_1.0"

/* Return codes. */
#define PHOT_OK 0
#define PHOT_E_INVALID_ARGUMENT (-1) /* NULL pointer, bad struct_size, bad count */
#define PHOT_E_UNKNOWN_INPUT (-2)    /* an input name the model does not have */
#define PHOT_E_MISSING_INPUT (-3)    /* an input of the model was not given */
#define PHOT_E_DTYPE_MISMATCH (-4)   /* dtype differs from the model signature */
#define PHOT_E_SHAPE_MISMATCH (-5)   /* rank, fixed dim, or byte_size does not fit */
#define PHOT_E_BUFFER_TOO_SMALL (-6) /* an output buffer is too small; see phot_tensor */
#define PHOT_E_RUNTIME (-7)          /* the inference runtime failed; see last_error() */
#define PHOT_E_CLOSED (-8)           /* the handle was closed */

/* Element types (values are part of the ABI). */
typedef int32_t phot_dtype;
#define PHOT_DTYPE_FLOAT32 1
#define PHOT_DTYPE_FLOAT16 2
#define PHOT_DTYPE_FLOAT64 3
#define PHOT_DTYPE_INT32 4
#define PHOT_DTYPE_INT64 5
#define PHOT_DTYPE_UINT8 6
#define PHOT_DTYPE_INT8 7
#define PHOT_DTYPE_BOOL 8

#define PHOT_MAX_RANK 8

/* Opaque model handle: one loaded model version with its pool of predictors. */
typedef struct phot_model phot_model;

/*
 * A tensor descriptor.
 * Inputs: the caller fills every field; byte_size is the number of bytes at data and must equal
 * the element count times the element size.
 * Outputs: the caller sets struct_size, name (or NULL to take outputs in manifest order), data
 * and byte_size (the capacity of data). On success the plugin sets dtype, rank, shape and
 * byte_size (bytes written). When data is too small the plugin sets dtype, rank, shape and
 * byte_size to what it needs, writes nothing, and infer returns PHOT_E_BUFFER_TOO_SMALL.
 */
typedef struct phot_tensor {
  uint32_t struct_size;
  phot_dtype dtype;
  const char *name;
  int32_t rank;
  int64_t shape[PHOT_MAX_RANK];
  void *data;
  uint64_t byte_size;
} phot_tensor;

/* Options for open(). Zero means "default" for every numeric field. */
typedef struct phot_open_options {
  uint32_t struct_size;
  int32_t pool_initial; /* predictors created at open (default 1) */
  int32_t pool_max;     /* most predictors ever alive (default: pool_initial) */
  int32_t threads;      /* intra-op CPU threads per predictor (default 1) */
  const char *model_dir; /* directory with the model files; NULL: embedded files, else the
                            directory of the .so */
  /* revision 1.1 */
  int32_t pool_idle_ms; /* a predictor above pool_initial idle this long is destroyed (default
                           30000; negative: never, the pool only grows) */
} phot_open_options;

/* Function types; the exported names carry the model and version (see above). */
typedef int32_t (*phot_open_fn)(const phot_open_options *options, phot_model **out);
typedef int32_t (*phot_infer_fn)(phot_model *model, const phot_tensor *inputs, size_t n_inputs,
                                 phot_tensor *outputs, size_t n_outputs);
typedef int32_t (*phot_close_fn)(phot_model *model);
typedef const char *(*phot_manifest_fn)(void);
typedef const char *(*phot_last_error_fn)(void);

/*
 * The ABI record: the values above as enums, and the function types, gathered in one static
 * object so that every object file built with -g carries them in its debug info. abi-check
 * compares the record of a plugin with its baseline's (a changed code or size is a break) and
 * each phot_<fn>_fn with the plugin's export of <fn>. The #defines stay the API; each enumerator
 * is defined from one of them. The record costs a few bytes of read-only data per object.
 */
enum phot_abi_return_code {
  PHOT_ABI_OK = PHOT_OK,
  PHOT_ABI_E_INVALID_ARGUMENT = PHOT_E_INVALID_ARGUMENT,
  PHOT_ABI_E_UNKNOWN_INPUT = PHOT_E_UNKNOWN_INPUT,
  PHOT_ABI_E_MISSING_INPUT = PHOT_E_MISSING_INPUT,
  PHOT_ABI_E_DTYPE_MISMATCH = PHOT_E_DTYPE_MISMATCH,
  PHOT_ABI_E_SHAPE_MISMATCH = PHOT_E_SHAPE_MISMATCH,
  PHOT_ABI_E_BUFFER_TOO_SMALL = PHOT_E_BUFFER_TOO_SMALL,
  PHOT_ABI_E_RUNTIME = PHOT_E_RUNTIME,
  PHOT_ABI_E_CLOSED = PHOT_E_CLOSED
};
enum phot_abi_dtype_code {
  PHOT_ABI_DTYPE_FLOAT32 = PHOT_DTYPE_FLOAT32,
  PHOT_ABI_DTYPE_FLOAT16 = PHOT_DTYPE_FLOAT16,
  PHOT_ABI_DTYPE_FLOAT64 = PHOT_DTYPE_FLOAT64,
  PHOT_ABI_DTYPE_INT32 = PHOT_DTYPE_INT32,
  PHOT_ABI_DTYPE_INT64 = PHOT_DTYPE_INT64,
  PHOT_ABI_DTYPE_UINT8 = PHOT_DTYPE_UINT8,
  PHOT_ABI_DTYPE_INT8 = PHOT_DTYPE_INT8,
  PHOT_ABI_DTYPE_BOOL = PHOT_DTYPE_BOOL
};
enum phot_abi_limit {
  PHOT_ABI_MAJOR_VALUE = PHOT_ABI_MAJOR,
  PHOT_ABI_MINOR_VALUE = PHOT_ABI_MINOR,
  PHOT_ABI_MAX_RANK = PHOT_MAX_RANK,
  /* sizeof() of each struct per revision (LP64) */
  PHOT_ABI_TENSOR_SIZE_1_0 = 104,
  PHOT_ABI_OPEN_OPTIONS_SIZE_1_0 = 24,
  PHOT_ABI_OPEN_OPTIONS_SIZE_1_1 = 32
};
/* How the runtime accepts a struct from a caller built against an older revision (see Growth):
 * TAIL: fields past the caller's struct_size take their defaults; TAIL_STRIDE: also, arrays of it
 * are walked with the caller's struct_size as the stride. Only the structs named here may grow. */
enum phot_abi_growth_kind { PHOT_GROWTH_NONE = 0, PHOT_GROWTH_TAIL = 1, PHOT_GROWTH_TAIL_STRIDE = 2 };
enum phot_abi_growth {
  PHOT_GROWS_phot_open_options = PHOT_GROWTH_TAIL,
  PHOT_GROWS_phot_tensor = PHOT_GROWTH_TAIL_STRIDE
};
typedef struct phot_abi_record {
  enum phot_abi_return_code return_codes;
  enum phot_abi_dtype_code dtype_codes;
  enum phot_abi_limit limits;
  enum phot_abi_growth_kind growth_kinds;
  enum phot_abi_growth growth;
  phot_open_fn open;
  phot_infer_fn infer;
  phot_close_fn close;
  phot_manifest_fn manifest;
  phot_last_error_fn last_error;
} phot_abi_record_t;
#if defined(__GNUC__)
__attribute__((used, unused))
#endif
static const phot_abi_record_t phot_abi_record
#ifdef __cplusplus
    = {};
#else
    = {.return_codes = PHOT_ABI_OK};
#endif

#ifdef __cplusplus
}
#endif

#endif /* PADDLEHOT_PLUGIN_H */
