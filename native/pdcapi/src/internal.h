/* Internal declarations shared by the pdcapi sources (never installed). */
#ifndef PHOT_PDCAPI_INTERNAL_H
#define PHOT_PDCAPI_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "memfiles.h" /* native/runtime: the one memfd helper, shared with the plugin runtime */
#include "paddlehot_pdcapi_ext.h"
#include "pd_inference_api.h"

#define PHOT_HIDDEN __attribute__((visibility("hidden")))

struct PD_Config {
  char *prog_file, *params_file, *model_dir;
  char *prog_buf, *params_buf; /* copies made by PD_ConfigSetModelBuffer */
  size_t prog_len, params_len;
  int from_buffer;
  int32_t threads;
  int32_t onednn_cache_capacity; /* PD_ConfigSetMkldnnCacheCapacity; 0 = off (Paddle's default) */
  PD_Bool ir_optim, memory_optim, glog_disabled;
};

/* paddlehot's bound on oneDNN's process-wide primitive cache (ONEDNN_PRIMITIVE_CACHE_CAPACITY,
 * unless the environment sets it): the same as core.paddle_runtime's
 * DEFAULT_ONEDNN_PRIMITIVE_CACHE (a test keeps them equal), so plugins over pdcapi, core.load and
 * serve bound memory alike under dynamic shapes. */
#define PHOT_DEFAULT_ONEDNN_PRIMITIVE_CACHE "256"

/* Private temp dir with symlinks to memfds, shared by a predictor and its clones: Paddle re-reads
 * the program files on Clone for PIR models, so they must outlive every clone. */
typedef struct phot_files {
  int refs;
  phot_memfiles mem;
} phot_files;

struct PD_Predictor {
  PyObject *pred;      /* paddle.inference.Predictor */
  PyObject *in_names;  /* tuple of str */
  PyObject *out_names; /* tuple of str */
  phot_files *files;   /* NULL unless loaded from a PIR buffer */
};

struct PD_Tensor {
  PyObject *handle;  /* paddle.inference.Tensor */
  PyObject *pred;    /* keeps the Python predictor alive while the handle exists */
  PyObject *m_reshape, *m_copy_from, *m_copy_to, *m_shape, *m_type; /* cached bound methods */
  char *name;
  size_t ndim;
  int64_t *shape; /* last shape given to PD_TensorReshape; NULL if never set */
};

/* runtime.c */
PHOT_HIDDEN int phot_enter(PyGILState_STATE *st); /* 0 on success (GIL held); else error set */
PHOT_HIDDEN void phot_leave(PyGILState_STATE st);
PHOT_HIDDEN PyObject *phot_helper(void); /* borrowed helper module; NULL + error on failure */
PHOT_HIDDEN void phot_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
PHOT_HIDDEN void phot_set_error_from_python(const char *where); /* consumes the Python error */

/* memfd.c */
PHOT_HIDDEN phot_files *phot_files_create(const char *prog, size_t prog_len, const char *params,
                                          size_t params_len);
PHOT_HIDDEN void phot_files_retain(phot_files *f);
PHOT_HIDDEN void phot_files_release(phot_files *f);

#define PHOT_CHECK_ARG(cond, fn, ret)                  \
  do {                                                 \
    if (!(cond)) {                                     \
      phot_set_error("%s: invalid argument (NULL)", fn); \
      return ret;                                      \
    }                                                  \
  } while (0)

#endif
