/* Model files from memory: two memfds (program, parameters) reachable through symlinks named like
 * the files in a private temp dir. Paddle 3.3.1 crashes on a PIR program given as a buffer and
 * picks its reader by the ".json" suffix of a path, so it gets paths; nothing touches the disk.
 *
 * Shared by native/pdcapi (PD_ConfigSetModelBuffer) and the plugin runtime (embedded models).
 * Plain libc; no Paddle, no Python. Everything here is hidden inside the library that links it. */
#ifndef PHOT_MEMFILES_H
#define PHOT_MEMFILES_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" { /* pdcapi is C++ */
#endif

typedef struct phot_memfiles {
  int fds[2];                /* -1 when not open */
  char dir[PATH_MAX];        /* the directory we created; "" if none */
  char names[2][64];         /* file names inside dir, e.g. model.json, model.pdiparams */
} phot_memfiles;

/* Create the dir (under $TMPDIR or /tmp, named <prefix>-XXXXXX), two empty memfds and the two
 * symlinks. 0 on success; else -1 with a message in err, and nothing left behind. */
__attribute__((visibility("hidden"))) int phot_memfiles_open(phot_memfiles *f, const char *prefix,
                                                             const char *prog_name,
                                                             const char *params_name, char *err,
                                                             size_t errlen);

/* The path Paddle should open for file i (0: program, 1: parameters). */
__attribute__((visibility("hidden"))) void phot_memfiles_path(const phot_memfiles *f, int i,
                                                              char *buf, size_t cap);

/* Remove the symlinks and the dir (only what phot_memfiles_open created) and close the fds.
 * Safe to call twice and on a zeroed struct whose fds are -1. */
__attribute__((visibility("hidden"))) void phot_memfiles_close(phot_memfiles *f);

/* write() all of p, retrying on EINTR. 0 or -1 (errno set). */
__attribute__((visibility("hidden"))) int phot_write_all(int fd, const void *p, size_t n);

/* Copy len bytes at offset off of src into dst (at dst's position). 0 or -1 (errno set; a short
 * source gives EIO). */
__attribute__((visibility("hidden"))) int phot_copy_range(int dst, int src, off_t off, size_t len);

#ifdef __cplusplus
}
#endif

#endif
