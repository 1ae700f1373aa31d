/* Python runtime glue: find or start an interpreter, take the GIL, keep error messages. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifndef PHOT_PYTHON_EXECUTABLE
#define PHOT_PYTHON_EXECUTABLE ""
#endif
#ifndef PHOT_LIBPYTHON
#define PHOT_LIBPYTHON ""
#endif

static __thread char t_err[1024];

const char *paddlehot_pdcapi_last_error(void) { return t_err; }

void phot_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t_err, sizeof t_err, fmt, ap);
  va_end(ap);
  /* Paddle messages end with blank lines; keep the text tidy. */
  size_t n = strlen(t_err);
  while (n > 0 && (t_err[n - 1] == '\n' || t_err[n - 1] == ' ')) t_err[--n] = '\0';
}

void phot_set_error_from_python(const char *where) {
  PyObject *type = NULL, *value = NULL, *tb = NULL;
  PyErr_Fetch(&type, &value, &tb);
  if (!type) {
    phot_set_error("%s: failed without a Python exception", where);
    return;
  }
  PyErr_NormalizeException(&type, &value, &tb);
  const char *tname = PyType_Check(type) ? ((PyTypeObject *)type)->tp_name : "Error";
  const char *dot = strrchr(tname, '.');
  if (dot) tname = dot + 1;
  PyObject *s = value ? PyObject_Str(value) : NULL;
  const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
  if (!msg) {
    PyErr_Clear();
    msg = "";
  }
  phot_set_error("%s: %s: %s", where, tname, msg);
  Py_XDECREF(s);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
}

/* ---- interpreter ---- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_failed;
static char g_init_err[512];
static pthread_key_t g_pin_key;

/* A thread Python did not create gets one lasting thread state (see phot_enter); drop it when the
 * thread exits. Never after the interpreter is gone. */
static void pin_destructor(void *p) {
  if (!p || !Py_IsInitialized()) return;
  PyEval_RestoreThread((PyThreadState *)p);
  PyGILState_Release(PyGILState_UNLOCKED);
}

static void init_once(void) {
  pthread_key_create(&g_pin_key, pin_destructor);
  setenv("GLOG_minloglevel", "2", 0);
  if (Py_IsInitialized()) return; /* Python host: use its interpreter */

  /* C host. If a host dlopen()ed us RTLD_LOCAL, libpython is not global and extension modules
   * (numpy, paddle) could not resolve Py* symbols: promote the copy already mapped for us. */
  if (PHOT_LIBPYTHON[0]) dlopen(PHOT_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);

  const char *exe = getenv("PADDLEHOT_PYTHON");
  if (!exe || !*exe) exe = PHOT_PYTHON_EXECUTABLE;
  PyConfig cfg;
  PyConfig_InitPythonConfig(&cfg);
  cfg.install_signal_handlers = 0; /* signals belong to the host */
  cfg.parse_argv = 0;
  PyStatus st = PyStatus_Ok();
  if (exe[0]) {
    st = PyConfig_SetBytesString(&cfg, &cfg.program_name, exe);
    if (!PyStatus_Exception(st)) st = PyConfig_SetBytesString(&cfg, &cfg.executable, exe);
  }
  if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&cfg);
  PyConfig_Clear(&cfg);
  if (PyStatus_Exception(st)) {
    g_init_failed = 1;
    snprintf(g_init_err, sizeof g_init_err, "cannot start Python (%s): %s", exe,
             st.err_msg ? st.err_msg : "unknown error");
    return;
  }
  PyEval_SaveThread(); /* let any thread take the GIL */
}

int phot_enter(PyGILState_STATE *st) {
  pthread_once(&g_once, init_once);
  if (g_init_failed) {
    phot_set_error("%s", g_init_err);
    return -1;
  }
  if (PyGILState_GetThisThreadState() == NULL) {
    /* Without this, every call on a foreign thread would create and destroy a thread state. */
    (void)PyGILState_Ensure();
    pthread_setspecific(g_pin_key, PyEval_SaveThread());
  }
  *st = PyGILState_Ensure();
  return 0;
}

void phot_leave(PyGILState_STATE st) { PyGILState_Release(st); }

/* ---- helper module (runs once, under the GIL) ---- */

static const char HELPER_SRC[] =
    "import os as _os, warnings as _w\n"
    /* before oneDNN creates its first kernel: see PHOT_DEFAULT_ONEDNN_PRIMITIVE_CACHE */
    "_os.environ.setdefault('ONEDNN_PRIMITIVE_CACHE_CAPACITY', '" PHOT_DEFAULT_ONEDNN_PRIMITIVE_CACHE "')\n"
    "with _w.catch_warnings():\n"
    "    _w.simplefilter('ignore')\n"
    "    import numpy as _np\n"
    "    import paddle.inference as _pi\n"
    "frombuffer = _np.frombuffer\n"
    "dtypes = (_np.dtype('float32'), _np.dtype('int64'), _np.dtype('int32'),\n"
    "          _np.dtype('uint8'), _np.dtype('int8'))\n"
    "version = _pi.get_version()\n"
    "_D = _pi.DataType\n"
    "dtype_codes = {_D.FLOAT32: 0, _D.INT32: 1, _D.INT64: 2, _D.UINT8: 3, _D.INT8: 4}\n"
    /* Paddle 3.3.1 segfaults creating a predictor from a protobuf that parses to no blocks
     * (e.g. garbage bytes); the same parse in Python raises instead. */
    "def _check_legacy(data, what):\n"
    "    from paddle.base import core\n"
    "    try:\n"
    "        ok = core.ProgramDesc(data).num_blocks() > 0\n"
    "    except Exception:\n"
    "        ok = False\n"
    "    if not ok:\n"
    "        raise ValueError(what + ' is not a Paddle program (protobuf parse failed)')\n"
    "def create(prog, params, model_dir, prog_buf, params_buf, threads, ir, mem, quiet, cache):\n"
    "    c = _pi.Config()\n"
    "    if prog_buf is not None:\n"
    "        _check_legacy(prog_buf, 'the program buffer')\n"
    "        c.set_model_buffer(prog_buf, len(prog_buf), params_buf, len(params_buf))\n"
    "    elif prog:\n"
    "        for f in (prog, params):\n"
    "            if f and not _os.path.isfile(f):\n"
    "                raise FileNotFoundError('model file not found: ' + f)\n"
    "        if not prog.endswith('.json'):\n"
    "            with open(prog, 'rb') as fh:\n"
    "                _check_legacy(fh.read(), prog)\n"
    "        c.set_model(prog, params or '')\n"
    "    elif model_dir:\n"
    "        if not _os.path.isdir(model_dir):\n"
    "            raise FileNotFoundError('model directory not found: ' + model_dir)\n"
    "        c.set_model(model_dir)\n"
    "    else:\n"
    "        raise ValueError('no model set (PD_ConfigSetModel / SetModelDir / SetModelBuffer)')\n"
    "    c.disable_gpu()\n"
    "    c.switch_ir_optim(bool(ir))\n"
    "    if mem:\n"
    "        c.enable_memory_optim()\n"
    "    c.set_cpu_math_library_num_threads(threads)\n"
    "    if cache > 0 and c.mkldnn_enabled():\n"
    "        c.set_mkldnn_cache_capacity(cache)\n"
    "    if quiet:\n"
    "        c.disable_glog_info()\n"
    "    p = _pi.create_predictor(c)\n"
    "    return p, tuple(p.get_input_names()), tuple(p.get_output_names())\n";

static PyObject *g_helper;

PyObject *phot_helper(void) {
  if (g_helper) return g_helper;
  PyObject *code = Py_CompileString(HELPER_SRC, "<paddlehot_pdcapi>", Py_file_input);
  PyObject *mod = code ? PyImport_ExecCodeModule("_paddlehot_pdcapi", code) : NULL;
  Py_XDECREF(code);
  if (!mod) {
    phot_set_error_from_python("import paddle.inference");
    return NULL;
  }
  /* import may release the GIL; another thread may have finished first */
  if (g_helper)
    Py_DECREF(mod);
  else
    g_helper = mod;
  return g_helper;
}

const char *PD_GetVersion() {
  static char version[256];
  static int done;
  if (__atomic_load_n(&done, __ATOMIC_ACQUIRE)) return version;
  PyGILState_STATE st;
  if (phot_enter(&st) != 0) return "";
  if (!done) {
    PyObject *h = phot_helper();
    PyObject *v = h ? PyObject_GetAttrString(h, "version") : NULL;
    const char *s = v ? PyUnicode_AsUTF8(v) : NULL;
    if (s) {
      snprintf(version, sizeof version, "%s", s);
      __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    } else if (h) {
      phot_set_error_from_python("PD_GetVersion");
    }
    Py_XDECREF(v);
  }
  phot_leave(st);
  return version;
}
