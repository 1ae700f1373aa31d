/* C side of the Go host: dlopen/dlsym and one trampoline per plugin function (cgo cannot call C
 * function pointers). Every call that may fail copies the plugin's last_error() before returning:
 * the message is thread-local and a goroutine may run its next cgo call on another OS thread. */
#ifndef PHOT_GO_CABI_H
#define PHOT_GO_CABI_H

#include <stddef.h>
#include <stdint.h>

#include "paddlehot/plugin.h"

/* Tensors whose data is passed to phot_go_infer as arguments (so Go memory never has to be
 * stored in memory the Go code hands to C); the rest carry C memory in their descriptor. */
#define PHOT_GO_ARG_SLOTS 16

void *phot_go_dlopen(const char *path, int global, char *err, size_t errcap);
void *phot_go_dlsym(void *lib, const char *name, char *err, size_t errcap);
int phot_go_dlclose(void *lib, char *err, size_t errcap);

int32_t phot_go_open(void *open_fn, void *last_error_fn, int32_t pool_initial, int32_t pool_max,
                     int32_t threads, int32_t pool_idle_ms, const char *model_dir,
                     phot_model **out, char *err, size_t errcap);
int32_t phot_go_infer(void *infer_fn, void *last_error_fn, phot_model *model,
                      phot_tensor *descs, size_t n_in, size_t n_out,
                      void *p0, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6,
                      void *p7, void *p8, void *p9, void *p10, void *p11, void *p12, void *p13,
                      void *p14, void *p15, char *err, size_t errcap);
int32_t phot_go_close(void *close_fn, void *last_error_fn, phot_model *model, char *err,
                      size_t errcap);
const char *phot_go_manifest(void *manifest_fn);

int phot_go_pin_capi(void);
void phot_go_signals_save(void);
uint64_t phot_go_signals_restore(void);

int64_t phot_go_c_loop(void *infer_fn, phot_model *model, const phot_tensor *input, void *in_data,
                       void *out_data, uint64_t out_cap, int64_t n);

#endif
