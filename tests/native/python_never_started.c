/* LD_PRELOAD witness that a host process never starts a Python interpreter.
 *
 * - Every CPython entry point that starts an interpreter is interposed: a call prints
 *   "python-witness: STARTED by <fn>" and aborts (`python3 -c pass` under it aborts: the check
 *   can fail).
 * - Each dlclose() (hosts dlclose a plugin when they swap or stop; Go's os.Exit skips ELF
 *   destructors, so dlclose is the last moment both hosts reach) first prints whether libpython
 *   is mapped in the process and the real Py_IsInitialized():
 *   "python-witness: libpython=<path or none> initialized=<0|1|?>". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void started(const char *fn) {
  dprintf(2, "python-witness: STARTED by %s\n", fn);
  abort();
}

void Py_Initialize(void) { started("Py_Initialize"); }
void Py_InitializeEx(int i) { (void)i; started("Py_InitializeEx"); }
void *Py_InitializeFromConfig(const void *c) { (void)c; started("Py_InitializeFromConfig"); return 0; }
int Py_Main(int argc, void **argv) { (void)argc; (void)argv; started("Py_Main"); return 1; }
int Py_BytesMain(int argc, char **argv) { (void)argc; (void)argv; started("Py_BytesMain"); return 1; }
int Py_RunMain(void) { started("Py_RunMain"); return 1; }

static int find_libpython(struct dl_phdr_info *info, size_t size, void *out) {
  (void)size;
  if (info->dlpi_name && strstr(info->dlpi_name, "libpython")) {
    snprintf((char *)out, 512, "%s", info->dlpi_name);
    return 1;
  }
  return 0;
}

int dlclose(void *handle) {
  static int (*real)(void *);
  if (!real) real = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
  char lib[512] = "none";
  dl_iterate_phdr(find_libpython, lib);
  int (*is_init)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "Py_IsInitialized");
  dprintf(2, "python-witness: libpython=%s initialized=%s\n", lib,
          is_init ? (is_init() ? "1" : "0") : "?");
  return real(handle);
}
