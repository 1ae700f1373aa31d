/* PD_Config: plain C state; the paddle::AnalysisConfig is built in PD_PredictorCreate. */
#include <cstdlib>
#include <cstring>

#include "internal.h"

PD_Config *PD_ConfigCreate() {
  PD_Config *c = static_cast<PD_Config *>(calloc(1, sizeof *c));
  if (!c) {
    phot_set_error("PD_ConfigCreate: out of memory");
    return NULL;
  }
  c->threads = 1;         /* Paddle's default */
  c->ir_optim = TRUE;     /* Paddle's default */
  c->glog_disabled = TRUE; /* paddlehot default: keep Paddle quiet */
  c->onednn_cache_capacity = 0; /* paddlehot default: off (Paddle's is 10; thread_runs.cc) */
  return c;
}

static void clear_buffers(PD_Config *c) {
  free(c->prog_buf);
  free(c->params_buf);
  c->prog_buf = c->params_buf = NULL;
  c->prog_len = c->params_len = 0;
  c->from_buffer = 0;
}

void PD_ConfigDestroy(PD_Config *c) {
  if (!c) return;
  free(c->prog_file);
  free(c->params_file);
  free(c->model_dir);
  clear_buffers(c);
  free(c);
}

static void set_str(char **dst, const char *s) {
  free(*dst);
  *dst = s ? strdup(s) : NULL;
}

void PD_ConfigSetModel(PD_Config *c, const char *prog, const char *params) {
  PHOT_CHECK_ARG(c, "PD_ConfigSetModel", );
  set_str(&c->prog_file, prog);
  set_str(&c->params_file, params);
  clear_buffers(c);
}

void PD_ConfigSetProgFile(PD_Config *c, const char *prog) {
  PHOT_CHECK_ARG(c, "PD_ConfigSetProgFile", );
  set_str(&c->prog_file, prog);
  clear_buffers(c);
}

void PD_ConfigSetParamsFile(PD_Config *c, const char *params) {
  PHOT_CHECK_ARG(c, "PD_ConfigSetParamsFile", );
  set_str(&c->params_file, params);
}

void PD_ConfigSetModelDir(PD_Config *c, const char *dir) {
  PHOT_CHECK_ARG(c, "PD_ConfigSetModelDir", );
  set_str(&c->model_dir, dir);
  clear_buffers(c);
}

const char *PD_ConfigGetModelDir(PD_Config *c) {
  PHOT_CHECK_ARG(c, "PD_ConfigGetModelDir", "");
  return c->model_dir ? c->model_dir : "";
}
const char *PD_ConfigGetProgFile(PD_Config *c) {
  PHOT_CHECK_ARG(c, "PD_ConfigGetProgFile", "");
  return c->prog_file ? c->prog_file : "";
}
const char *PD_ConfigGetParamsFile(PD_Config *c) {
  PHOT_CHECK_ARG(c, "PD_ConfigGetParamsFile", "");
  return c->params_file ? c->params_file : "";
}

void PD_ConfigSetModelBuffer(PD_Config *c, const char *prog, size_t prog_len, const char *params,
                             size_t params_len) {
  PHOT_CHECK_ARG(c && (prog || !prog_len) && (params || !params_len), "PD_ConfigSetModelBuffer", );
  clear_buffers(c);
  c->prog_buf = static_cast<char *>(malloc(prog_len ? prog_len : 1));
  c->params_buf = static_cast<char *>(malloc(params_len ? params_len : 1));
  if (!c->prog_buf || !c->params_buf) {
    clear_buffers(c);
    phot_set_error("PD_ConfigSetModelBuffer: out of memory");
    return;
  }
  if (prog_len) memcpy(c->prog_buf, prog, prog_len);
  if (params_len) memcpy(c->params_buf, params, params_len);
  c->prog_len = prog_len;
  c->params_len = params_len;
  c->from_buffer = 1;
}

PD_Bool PD_ConfigModelFromMemory(PD_Config *c) {
  PHOT_CHECK_ARG(c, "PD_ConfigModelFromMemory", FALSE);
  return c->from_buffer ? TRUE : FALSE;
}

void PD_ConfigDisableGpu(PD_Config *c) { PHOT_CHECK_ARG(c, "PD_ConfigDisableGpu", ); }
PD_Bool PD_ConfigUseGpu(PD_Config *c) {
  PHOT_CHECK_ARG(c, "PD_ConfigUseGpu", FALSE);
  return FALSE; /* CPU only */
}

void PD_ConfigSwitchIrOptim(PD_Config *c, PD_Bool x) {
  PHOT_CHECK_ARG(c, "PD_ConfigSwitchIrOptim", );
  c->ir_optim = x ? TRUE : FALSE;
}
PD_Bool PD_ConfigIrOptim(PD_Config *c) {
  PHOT_CHECK_ARG(c, "PD_ConfigIrOptim", FALSE);
  return c->ir_optim;
}

void PD_ConfigSetCpuMathLibraryNumThreads(PD_Config *c, int32_t n) {
  PHOT_CHECK_ARG(c, "PD_ConfigSetCpuMathLibraryNumThreads", );
  c->threads = n > 0 ? n : 1;
}
int32_t PD_ConfigGetCpuMathLibraryNumThreads(PD_Config *c) {
  PHOT_CHECK_ARG(c, "PD_ConfigGetCpuMathLibraryNumThreads", 0);
  return c->threads;
}

void PD_ConfigEnableMemoryOptim(PD_Config *c, PD_Bool x) {
  PHOT_CHECK_ARG(c, "PD_ConfigEnableMemoryOptim", );
  c->memory_optim = x ? TRUE : FALSE;
}
PD_Bool PD_ConfigMemoryOptimEnabled(PD_Config *c) {
  PHOT_CHECK_ARG(c, "PD_ConfigMemoryOptimEnabled", FALSE);
  return c->memory_optim;
}

void PD_ConfigDisableGlogInfo(PD_Config *c) {
  PHOT_CHECK_ARG(c, "PD_ConfigDisableGlogInfo", );
  c->glog_disabled = TRUE;
}
PD_Bool PD_ConfigGlogInfoDisabled(PD_Config *c) {
  PHOT_CHECK_ARG(c, "PD_ConfigGlogInfoDisabled", FALSE);
  return c->glog_disabled;
}

void PD_ConfigSetMkldnnCacheCapacity(PD_Config *c, int32_t capacity) {
  PHOT_CHECK_ARG(c, "PD_ConfigSetMkldnnCacheCapacity", );
  c->onednn_cache_capacity = capacity > 0 ? capacity : 0;
}
