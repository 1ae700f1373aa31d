/* PD_Predictor over paddle_infer::Predictor (CreatePredictor: libpaddle's own deleter). */
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>

#include "config_box.h"
#include "internal.h"

static bool looks_like_json(const char* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') continue;
    return ch == '{';
  }
  return false;
}

/* The model part of a new config, from the plain settings; false + error when refused. */
static bool set_model(paddle::AnalysisConfig* cfg, PD_Config* c, phot_files** files,
                      const char* fn) {
  if (c->from_buffer) {
    if (looks_like_json(c->prog_buf, c->prog_len)) {
      *files = phot_files_create(c->prog_buf, c->prog_len, c->params_buf, c->params_len);
      if (!*files) return false;
      char prog[PATH_MAX + 80], params[PATH_MAX + 80];
      phot_memfiles_path(&(*files)->mem, 0, prog, sizeof prog);
      phot_memfiles_path(&(*files)->mem, 1, params, sizeof params);
      cfg->SetModel(prog, params);
      return true;
    }
    if (!phot_check_program_bytes(c->prog_buf, c->prog_len, "the program buffer", fn))
      return false;
    cfg->SetModelBuffer(c->prog_buf, c->prog_len, c->params_buf, c->params_len);
    return true;
  }
  if (c->prog_file && *c->prog_file) {
    if (!phot_check_model_files(c->prog_file, c->params_file, fn)) return false;
    cfg->SetModel(c->prog_file, c->params_file ? c->params_file : "");
    return true;
  }
  if (c->model_dir && *c->model_dir) {
    cfg->SetModel(c->model_dir);
    return true;
  }
  phot_set_error("%s: no model set (PD_ConfigSetModel / SetModelDir / SetModelBuffer)", fn);
  return false;
}

static void apply_settings(paddle::AnalysisConfig* cfg, const PD_Config* c) {
  cfg->DisableGpu();
  cfg->SwitchIrOptim(c->ir_optim ? 1 : 0);
  if (c->memory_optim) cfg->EnableMemoryOptim(true);
  cfg->SetCpuMathLibraryNumThreads(c->threads);
  /* 0 too: Paddle's default is 10 (thread_runs.cc); a wheel without oneDNN would log an error */
  if (phot_paddle_has_onednn()) cfg->SetOnednnCacheCapacity(c->onednn_cache_capacity);
  if (c->glog_disabled) cfg->DisableGlogInfo();
  phot_apply_precision(cfg, c);
}

/* Paddle's interpreter gives every tensor it frees to a garbage-collector thread, one task per
 * tensor, when FLAGS_eager_delete_tensor_gb is at its default 0 (InterpreterCoreEventGarbageCollector
 * on CPU): on a small model those hand-offs (a futex wake-up, then the other thread's run) cost
 * more than the frees - the demo MLP's run_checked 124 -> 91 us with them batched. Above 0 the
 * collector gathers garbage and frees it in one task once it holds that many GB, as counted by
 * the tensors' sizes; what stays allocated meanwhile is more (with 1 MiB the MLP's RSS grew by
 * 24 MB and stayed there; with 64 KiB or less, by nothing measurable, at the same speed).
 * The flag is read when a predictor's interpreter is built, at its first run, so it is set once
 * for the process, before our first predictor (Paddle predictors made later in the process, e.g.
 * by the Python package, batch too). Left alone when the environment sets it (Paddle reads
 * FLAGS_* from there itself) or something already changed it. Weak: a wheel without the flag
 * keeps Paddle's default. */
extern "C" double phot_paddle_flag_eager_delete_tensor_gb __asm__(
    "_ZN12paddle_flags28FLAGS_eager_delete_tensor_gbE") __attribute__((weak));
static std::once_flag g_gc_once;

static void batch_garbage_collection() {
  double* flag = &phot_paddle_flag_eager_delete_tensor_gb;
  if (flag && *flag == 0.0 && !getenv("FLAGS_eager_delete_tensor_gb")) *flag = 1.0 / 16384;
}

/* Predictors made and not yet destroyed (paddlehot_pdcapi_predictors_alive). */
static std::atomic<int64_t> g_alive{0};

int64_t paddlehot_pdcapi_predictors_alive(void) { return g_alive.load(); }

/* A PD_Predictor around a new predictor made from `cfg` (taken: freed on failure);
 * `shape_cached`: cfg sets a oneDNN cache capacity above 0. */
static PD_Predictor* make(paddle::AnalysisConfig* cfg, phot_files* files, bool shape_cached,
                          const char* fn) {
  PD_Predictor* p = new (std::nothrow) PD_Predictor();
  if (!p) {
    phot_config_delete(cfg);
    phot_set_error("%s: out of memory", fn);
    return nullptr;
  }
  p->config = cfg;
  p->id = phot_new_predictor_id();
  p->shape_cached = shape_cached;
  try {
    std::call_once(g_gc_once, batch_garbage_collection);
    p->pred = phot_create_locked(*cfg);
    if (!p->pred) throw std::runtime_error("CreatePredictor returned no predictor");
    p->in_names = p->pred->GetInputNames();
    p->out_names = p->pred->GetOutputNames();
  } catch (...) {
    phot_set_error_from_current(fn);
    phot_destroy_locked(p->pred, p->config);
    delete p;
    return nullptr;
  }
  p->files = files;
  g_alive.fetch_add(1);
  return p;
}

PD_Predictor* PD_PredictorCreate(PD_Config* c) {
  static const char fn[] = "PD_PredictorCreate";
  PHOT_CHECK_ARG(c, fn, nullptr);
  phot_files* files = nullptr;
  paddle::AnalysisConfig* cfg = nullptr;
  PD_Predictor* out = phot_guard(fn, (PD_Predictor*)nullptr, [&]() -> PD_Predictor* {
    cfg = phot_config_new(nullptr, fn);
    if (!cfg || !set_model(cfg, c, &files, fn)) return nullptr;
    apply_settings(cfg, c);
    paddle::AnalysisConfig* mine = cfg;
    cfg = nullptr;
    return make(mine, files, c->onednn_cache_capacity > 0, fn);
  });
  if (!out) {
    phot_config_delete(cfg);
    phot_files_release(files);
  }
  return out; /* the config stays the caller's, as in Paddle's own capi_exp */
}

/* A new predictor from a copy of the first one's config: in Paddle 3.3.1 Clone() saves neither
 * time nor memory over this, and a cloned predictor could only be freed through an inline
 * destructor libpaddle does not export. */
PD_Predictor* PD_PredictorClone(PD_Predictor* p) {
  static const char fn[] = "PD_PredictorClone";
  PHOT_CHECK_ARG(p, fn, nullptr);
  return phot_guard(fn, (PD_Predictor*)nullptr, [&]() -> PD_Predictor* {
    paddle::AnalysisConfig* cfg = phot_config_new(p->config, fn);
    if (!cfg) return nullptr;
    phot_files_retain(p->files);
    PD_Predictor* out = make(cfg, p->files, p->shape_cached, fn);
    if (!out) phot_files_release(p->files);
    return out;
  });
}

void PD_PredictorDestroy(PD_Predictor* p) {
  if (!p) return;
  phot_guard_void("PD_PredictorDestroy", [&] { phot_destroy_locked(p->pred, p->config); });
  phot_files_release(p->files);
  delete p;
  g_alive.fetch_sub(1);
}

static PD_OneDimArrayCstr* names_array(const std::vector<std::string>& names, const char* fn) {
  PD_OneDimArrayCstr* a = static_cast<PD_OneDimArrayCstr*>(calloc(1, sizeof *a));
  if (a && !names.empty()) a->data = static_cast<char**>(calloc(names.size(), sizeof(char*)));
  bool ok = a && (names.empty() || a->data);
  if (ok) {
    a->size = names.size();
    for (size_t i = 0; i < names.size() && ok; i++) ok = (a->data[i] = strdup(names[i].c_str()));
  }
  if (!ok) {
    PD_OneDimArrayCstrDestroy(a);
    phot_set_error("%s: out of memory", fn);
    return nullptr;
  }
  return a;
}

PD_OneDimArrayCstr* PD_PredictorGetInputNames(PD_Predictor* p) {
  PHOT_CHECK_ARG(p, "PD_PredictorGetInputNames", nullptr);
  return names_array(p->in_names, "PD_PredictorGetInputNames");
}

PD_OneDimArrayCstr* PD_PredictorGetOutputNames(PD_Predictor* p) {
  PHOT_CHECK_ARG(p, "PD_PredictorGetOutputNames", nullptr);
  return names_array(p->out_names, "PD_PredictorGetOutputNames");
}

size_t PD_PredictorGetInputNum(PD_Predictor* p) {
  PHOT_CHECK_ARG(p, "PD_PredictorGetInputNum", 0);
  return p->in_names.size();
}

size_t PD_PredictorGetOutputNum(PD_Predictor* p) {
  PHOT_CHECK_ARG(p, "PD_PredictorGetOutputNum", 0);
  return p->out_names.size();
}

static PD_Tensor* get_handle(PD_Predictor* p, const char* name, bool input, const char* fn) {
  PHOT_CHECK_ARG(p && name, fn, nullptr);
  const std::vector<std::string>& names = input ? p->in_names : p->out_names;
  bool found = false;
  for (const std::string& n : names) found = found || n == name;
  if (!found) {
    phot_set_error("%s: the model has no %s named '%s'", fn, input ? "input" : "output", name);
    return nullptr;
  }
  return phot_guard(fn, (PD_Tensor*)nullptr, [&]() -> PD_Tensor* {
    paddle_infer::TensorHandle h = input ? p->pred->GetInputHandle(name)
                                         : p->pred->GetOutputHandle(name);
    if (!h.ptr) {
      phot_set_error("%s: Paddle returned no handle for '%s'", fn, name);
      return nullptr;
    }
    PD_Tensor* t = new PD_Tensor(); /* may throw: h frees the handle */
    t->name = name;
    t->t = h.release();
    return t;
  });
}

PD_Tensor* PD_PredictorGetInputHandle(PD_Predictor* p, const char* name) {
  return get_handle(p, name, true, "PD_PredictorGetInputHandle");
}

PD_Tensor* PD_PredictorGetOutputHandle(PD_Predictor* p, const char* name) {
  return get_handle(p, name, false, "PD_PredictorGetOutputHandle");
}

PD_Bool PD_PredictorRun(PD_Predictor* p) {
  static const char fn[] = "PD_PredictorRun";
  PHOT_CHECK_ARG(p, fn, FALSE);
  return phot_guard(fn, (PD_Bool)FALSE, [&]() -> PD_Bool {
    bool ran;
    {
      PhotRunGate in_flight(p); /* no thread exit under this run (thread_runs.cc) */
      ran = p->pred->Run();
    }
    if (ran) {
      phot_note_run(p);
      return TRUE;
    }
    phot_set_error("%s: Paddle's Run() returned false", fn);
    return FALSE;
  });
}

const char* PD_GetVersion() {
  static char version[256];
  static std::once_flag once;
  try {
    std::call_once(once, [] {
      std::string v = paddle_infer::GetVersion();
      snprintf(version, sizeof version, "%s", v.c_str());
    });
  } catch (...) {
    phot_set_error_from_current("PD_GetVersion");
  }
  return version;
}
