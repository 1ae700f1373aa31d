/* PIR programs given as buffers (PD_ConfigSetModelBuffer): Paddle 3.3.1 crashes (SIGSEGV) when a
 * PIR .json program goes through set_model_buffer, and it picks the PIR reader by the ".json"
 * suffix of a path. So the buffers go into memfds behind symlinks model.json / model.pdiparams
 * (native/runtime/memfiles.c), refcounted: a clone is a new predictor from a copy of the config,
 * which reads them again. Nothing touches the disk. */
#include <cstdlib>

#include "internal.h"

static void files_free(phot_files *f) {
  phot_memfiles_close(&f->mem);
  free(f);
}

phot_files *phot_files_create(const char *prog, size_t prog_len, const char *params,
                              size_t params_len) {
  char err[256];
  phot_files *f = static_cast<phot_files *>(calloc(1, sizeof *f));
  if (!f) {
    phot_set_error("PD_PredictorCreate: out of memory");
    return NULL;
  }
  f->refs = 1;
  if (phot_memfiles_open(&f->mem, "paddlehot-pdcapi", "model.json", "model.pdiparams", err,
                         sizeof err) != 0) {
    phot_set_error("PD_PredictorCreate: %s", err);
    free(f);
    return NULL;
  }
  if (phot_write_all(f->mem.fds[0], prog, prog_len) != 0 ||
      phot_write_all(f->mem.fds[1], params, params_len) != 0) {
    phot_set_error("PD_PredictorCreate: writing the model into a memfd failed");
    files_free(f);
    return NULL;
  }
  return f;
}

void phot_files_retain(phot_files *f) {
  if (f) __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
}

void phot_files_release(phot_files *f) {
  if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0) files_free(f);
}
