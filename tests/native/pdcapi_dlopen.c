/* A host that dlopen()s libpaddle_inference_c.so RTLD_LOCAL, as a plugin host loads plugins:
 * the embedded interpreter must still import numpy/paddle (their extension modules need the
 * Py* symbols in the global scope). Usage: pdcapi_dlopen LIB PROG PARAMS */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>

typedef void *(*create_fn)(void);
typedef void (*set_model_fn)(void *, const char *, const char *);
typedef void *(*pred_fn)(void *);
typedef size_t (*num_fn)(void *);
typedef void (*destroy_fn)(void *);
typedef const char *(*err_fn)(void);

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    printf("dlopen failed: %s\n", dlerror());
    return 1;
  }
  create_fn cfg_create = (create_fn)dlsym(lib, "PD_ConfigCreate");
  set_model_fn set_model = (set_model_fn)dlsym(lib, "PD_ConfigSetModel");
  pred_fn create = (pred_fn)dlsym(lib, "PD_PredictorCreate");
  num_fn n_in = (num_fn)dlsym(lib, "PD_PredictorGetInputNum");
  destroy_fn destroy = (destroy_fn)dlsym(lib, "PD_PredictorDestroy");
  err_fn last_error = (err_fn)dlsym(lib, "paddlehot_pdcapi_last_error");
  void *c = cfg_create();
  set_model(c, argv[2], argv[3]);
  void *p = create(c);
  if (!p) {
    printf("create failed: %s\n", last_error());
    return 1;
  }
  printf("inputs %zu\n", n_in(p));
  destroy(p);
  return 0;
}
