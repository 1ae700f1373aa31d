/* PD_Predictor over paddle.inference.Predictor. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static PD_Bool looks_like_json(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') continue;
    return ch == '{';
  }
  return FALSE;
}

static PD_Predictor *wrap(PyObject *pred, PyObject *in_names, PyObject *out_names,
                          phot_files *files, const char *fn) {
  PD_Predictor *p = calloc(1, sizeof *p);
  if (!p) {
    phot_set_error("%s: out of memory", fn);
    return NULL;
  }
  Py_INCREF(pred);
  Py_INCREF(in_names);
  Py_INCREF(out_names);
  p->pred = pred;
  p->in_names = in_names;
  p->out_names = out_names;
  p->files = files;
  return p;
}

PD_Predictor *PD_PredictorCreate(PD_Config *c) {
  PHOT_CHECK_ARG(c, "PD_PredictorCreate", NULL);
  PD_Predictor *out = NULL;
  phot_files *files = NULL;
  PyGILState_STATE st;
  if (phot_enter(&st) != 0) return NULL;
  PyObject *h = phot_helper();
  PyObject *prog_buf = NULL, *params_buf = NULL, *res = NULL;
  char prog_path[PATH_MAX + 80], params_path[PATH_MAX + 80];
  const char *prog = c->prog_file, *params = c->params_file, *dir = c->model_dir;
  if (!h) goto done;
  if (c->from_buffer) {
    dir = NULL;
    if (looks_like_json(c->prog_buf, c->prog_len)) {
      files = phot_files_create(c->prog_buf, c->prog_len, c->params_buf, c->params_len);
      if (!files) goto done;
      phot_memfiles_path(&files->mem, 0, prog_path, sizeof prog_path);
      phot_memfiles_path(&files->mem, 1, params_path, sizeof params_path);
      prog = prog_path;
      params = params_path;
    } else {
      prog = params = NULL;
      prog_buf = PyBytes_FromStringAndSize(c->prog_buf, (Py_ssize_t)c->prog_len);
      params_buf = PyBytes_FromStringAndSize(c->params_buf, (Py_ssize_t)c->params_len);
      if (!prog_buf || !params_buf) {
        phot_set_error_from_python("PD_PredictorCreate");
        goto done;
      }
    }
  }
  res = PyObject_CallMethod(h, "create", "zzzOOiiiii", prog, params, dir,
                            prog_buf ? prog_buf : Py_None, params_buf ? params_buf : Py_None,
                            (int)c->threads, (int)c->ir_optim, (int)c->memory_optim,
                            (int)c->glog_disabled, (int)c->onednn_cache_capacity);
  if (!res) {
    phot_set_error_from_python("PD_PredictorCreate");
    goto done;
  }
  out = wrap(PyTuple_GET_ITEM(res, 0), PyTuple_GET_ITEM(res, 1), PyTuple_GET_ITEM(res, 2), files,
             "PD_PredictorCreate");
  if (out) files = NULL; /* now owned by the predictor */
done:
  Py_XDECREF(res);
  Py_XDECREF(prog_buf);
  Py_XDECREF(params_buf);
  phot_files_release(files);
  phot_leave(st);
  return out; /* the config stays the caller's, as in Paddle's own capi_exp */
}

PD_Predictor *PD_PredictorClone(PD_Predictor *p) {
  PHOT_CHECK_ARG(p, "PD_PredictorClone", NULL);
  PyGILState_STATE st;
  if (phot_enter(&st) != 0) return NULL;
  PD_Predictor *out = NULL;
  PyObject *q = PyObject_CallMethod(p->pred, "clone", NULL);
  if (!q) {
    phot_set_error_from_python("PD_PredictorClone");
  } else {
    out = wrap(q, p->in_names, p->out_names, p->files, "PD_PredictorClone");
    if (out) phot_files_retain(p->files);
    Py_DECREF(q);
  }
  phot_leave(st);
  return out;
}

void PD_PredictorDestroy(PD_Predictor *p) {
  if (!p) return;
  PyGILState_STATE st;
  if (phot_enter(&st) == 0) {
    Py_XDECREF(p->pred);
    Py_XDECREF(p->in_names);
    Py_XDECREF(p->out_names);
    phot_leave(st);
  }
  phot_files_release(p->files);
  free(p);
}

/* Names are fixed at creation; these need no Python beyond reading the tuples. */
static PD_OneDimArrayCstr *names_array(PyObject *names, const char *fn) {
  PyGILState_STATE st;
  if (phot_enter(&st) != 0) return NULL;
  Py_ssize_t n = PyTuple_GET_SIZE(names);
  PD_OneDimArrayCstr *a = calloc(1, sizeof *a);
  if (a && n > 0) a->data = calloc((size_t)n, sizeof(char *));
  if (!a || (n > 0 && !a->data)) goto oom;
  a->size = (size_t)n;
  for (Py_ssize_t i = 0; i < n; i++) {
    const char *s = PyUnicode_AsUTF8(PyTuple_GET_ITEM(names, i));
    if (!s) {
      phot_set_error_from_python(fn);
      PD_OneDimArrayCstrDestroy(a);
      a = NULL;
      goto out;
    }
    if (!(a->data[i] = strdup(s))) goto oom;
  }
  goto out;
oom:
  PD_OneDimArrayCstrDestroy(a);
  a = NULL;
  phot_set_error("%s: out of memory", fn);
out:
  phot_leave(st);
  return a;
}

PD_OneDimArrayCstr *PD_PredictorGetInputNames(PD_Predictor *p) {
  PHOT_CHECK_ARG(p, "PD_PredictorGetInputNames", NULL);
  return names_array(p->in_names, "PD_PredictorGetInputNames");
}

PD_OneDimArrayCstr *PD_PredictorGetOutputNames(PD_Predictor *p) {
  PHOT_CHECK_ARG(p, "PD_PredictorGetOutputNames", NULL);
  return names_array(p->out_names, "PD_PredictorGetOutputNames");
}

/* Tuples are immutable and never freed while p lives: their sizes need no GIL. */
size_t PD_PredictorGetInputNum(PD_Predictor *p) {
  PHOT_CHECK_ARG(p, "PD_PredictorGetInputNum", 0);
  return (size_t)PyTuple_GET_SIZE(p->in_names);
}

size_t PD_PredictorGetOutputNum(PD_Predictor *p) {
  PHOT_CHECK_ARG(p, "PD_PredictorGetOutputNum", 0);
  return (size_t)PyTuple_GET_SIZE(p->out_names);
}

static PD_Tensor *get_handle(PD_Predictor *p, const char *name, int input, const char *fn) {
  PHOT_CHECK_ARG(p && name, fn, NULL);
  PyGILState_STATE st;
  if (phot_enter(&st) != 0) return NULL;
  PD_Tensor *t = NULL;
  PyObject *names = input ? p->in_names : p->out_names;
  int found = 0;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names) && !found; i++)
    found = PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(names, i), name) == 0;
  if (!found) {
    phot_set_error("%s: the model has no %s named '%s'", fn, input ? "input" : "output", name);
    goto out;
  }
  PyObject *h = PyObject_CallMethod(p->pred, input ? "get_input_handle" : "get_output_handle",
                                    "s", name);
  if (!h) {
    phot_set_error_from_python(fn);
    goto out;
  }
  t = calloc(1, sizeof *t);
  if (!t || !(t->name = strdup(name))) {
    free(t);
    t = NULL;
    Py_DECREF(h);
    phot_set_error("%s: out of memory", fn);
    goto out;
  }
  t->handle = h;
  t->pred = p->pred;
  Py_INCREF(t->pred);
  /* bound methods, looked up once: saves an attribute lookup per call */
  t->m_reshape = PyObject_GetAttrString(h, "reshape");
  t->m_copy_from = PyObject_GetAttrString(h, "_copy_from_cpu_bind");
  if (!t->m_copy_from) {
    PyErr_Clear();
    t->m_copy_from = PyObject_GetAttrString(h, "copy_from_cpu");
  }
  t->m_copy_to = t->m_copy_from ? PyObject_GetAttrString(h, "copy_to_cpu") : NULL;
  t->m_shape = t->m_copy_to ? PyObject_GetAttrString(h, "shape") : NULL;
  t->m_type = t->m_shape ? PyObject_GetAttrString(h, "type") : NULL;
  if (!t->m_reshape || !t->m_type) {
    phot_set_error_from_python(fn);
    PD_TensorDestroy(t);
    t = NULL;
  }
out:
  phot_leave(st);
  return t;
}

PD_Tensor *PD_PredictorGetInputHandle(PD_Predictor *p, const char *name) {
  return get_handle(p, name, 1, "PD_PredictorGetInputHandle");
}

PD_Tensor *PD_PredictorGetOutputHandle(PD_Predictor *p, const char *name) {
  return get_handle(p, name, 0, "PD_PredictorGetOutputHandle");
}

PD_Bool PD_PredictorRun(PD_Predictor *p) {
  PHOT_CHECK_ARG(p, "PD_PredictorRun", FALSE);
  static PyObject *s_run;
  PyGILState_STATE st;
  if (phot_enter(&st) != 0) return FALSE;
  PD_Bool ok = FALSE;
  if (!s_run) s_run = PyUnicode_InternFromString("run");
  PyObject *r = s_run ? PyObject_CallMethodNoArgs(p->pred, s_run) : NULL;
  if (r) {
    ok = TRUE;
    Py_DECREF(r);
  } else {
    phot_set_error_from_python("PD_PredictorRun");
  }
  phot_leave(st);
  return ok;
}
