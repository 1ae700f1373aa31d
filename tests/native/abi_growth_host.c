/* A host of the two-input test model (feats float32 [2,4], ids int64 [2,3]; two outputs), built
 * either with plugin.h's phot_tensor exactly (EXTENDED=0) or with a phot_tensor that has one field
 * appended, as a host built against a later header would have (EXTENDED=1). It passes 2 inputs
 * and 2 outputs in one array each, prints the outputs, and exits 3 if the plugin wrote into the
 * appended field (a plugin writes only the fields it knows).
 *
 * usage: abi_growth_host PLUGIN.so SYMBOL_PREFIX */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "paddlehot/plugin.h"

#if EXTENDED
typedef struct {
  uint32_t struct_size;
  phot_dtype dtype;
  const char *name;
  int32_t rank;
  int64_t shape[PHOT_MAX_RANK];
  void *data;
  uint64_t byte_size;
  uint64_t appended; /* a field of a later ABI revision */
} host_tensor;
#else
typedef phot_tensor host_tensor;
#endif

#define SENTINEL 0xA5A5A5A5A5A5A5A5ull

static void *sym(void *lib, const char *prefix, const char *fn) {
  char name[256];
  snprintf(name, sizeof name, "%s%s", prefix, fn);
  void *p = dlsym(lib, name);
  if (!p) fprintf(stderr, "missing %s\n", name);
  return p;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  phot_open_fn open_ = (phot_open_fn)sym(lib, argv[2], "open");
  phot_infer_fn infer = (phot_infer_fn)sym(lib, argv[2], "infer");
  phot_close_fn close_ = (phot_close_fn)sym(lib, argv[2], "close");
  phot_last_error_fn last_error = (phot_last_error_fn)sym(lib, argv[2], "last_error");
  if (!open_ || !infer || !close_ || !last_error) return 2;
  phot_model *m = NULL;
  if (open_(NULL, &m) != PHOT_OK) {
    fprintf(stderr, "open: %s\n", last_error());
    return 1;
  }
  float feats[2][4] = {{1, 2, 3, 4}, {-1, 0.5f, 2, -3}};
  int64_t ids[2][3] = {{1, 2, 3}, {4, 5, 9}};
  float y[2][8];
  int64_t ids2[2][3];
  host_tensor in[2], out[2];
  memset(in, 0, sizeof in);
  memset(out, 0, sizeof out);
  for (int i = 0; i < 2; i++) {
    in[i].struct_size = out[i].struct_size = (uint32_t)sizeof(host_tensor);
#if EXTENDED
    in[i].appended = out[i].appended = SENTINEL;
#endif
  }
  /* given in the reverse of the model's order: names decide, not positions */
  in[1] = (host_tensor){.struct_size = sizeof(host_tensor), .dtype = PHOT_DTYPE_FLOAT32,
                        .name = "feats", .rank = 2, .shape = {2, 4}, .data = feats,
                        .byte_size = sizeof feats};
  in[0] = (host_tensor){.struct_size = sizeof(host_tensor), .dtype = PHOT_DTYPE_INT64,
                        .name = "ids", .rank = 2, .shape = {2, 3}, .data = ids,
                        .byte_size = sizeof ids};
  out[0].data = y;
  out[0].byte_size = sizeof y;
  out[1].data = ids2;
  out[1].byte_size = sizeof ids2;
#if EXTENDED
  in[0].appended = in[1].appended = SENTINEL;
#endif
  int32_t rc = infer(m, (const phot_tensor *)(void *)in, 2, (phot_tensor *)(void *)out, 2);
  if (rc != PHOT_OK) {
    fprintf(stderr, "infer: %d %s\n", rc, last_error());
    return 1;
  }
  printf("struct_size %zu\n", sizeof(host_tensor));
  for (int i = 0; i < 2; i++) {
    printf("out%d rank %d shape", i, (int)out[i].rank);
    for (int d = 0; d < out[i].rank; d++) printf(" %lld", (long long)out[i].shape[d]);
    printf(" bytes %llu\n", (unsigned long long)out[i].byte_size);
  }
  size_t ny = (size_t)(out[0].byte_size / sizeof(float));
  printf("y");
  for (size_t i = 0; i < ny; i++) printf(" %.7g", ((float *)y)[i]);
  printf("\nids2");
  for (int i = 0; i < 6; i++) printf(" %lld", (long long)((int64_t *)ids2)[i]);
  printf("\n");
  close_(m);
#if EXTENDED
  for (int i = 0; i < 2; i++)
    if (out[i].appended != SENTINEL || in[i].appended != SENTINEL) return 3;
#endif
  return 0;
}
