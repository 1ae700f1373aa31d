/* PIR programs given as buffers: Paddle 3.3.1 crashes (SIGSEGV) when a PIR .json program goes
 * through set_model_buffer, and it picks the PIR reader by the ".json" suffix of a path. So each
 * blob goes into a memfd and Paddle gets symlinks model.json / model.pdiparams in a private temp
 * dir that point at /proc/self/fd/<n>. Nothing is written to disk. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void files_free(phot_files *f) {
  static const char *names[2] = {"model.json", "model.pdiparams"};
  char path[512];
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", f->dir, names[i]);
    unlink(path);
    if (f->fds[i] >= 0) close(f->fds[i]);
  }
  if (f->dir[0]) rmdir(f->dir);
  free(f);
}

phot_files *phot_files_create(const char *prog, size_t prog_len, const char *params,
                              size_t params_len) {
  static const char *names[2] = {"model.json", "model.pdiparams"};
  const char *data[2] = {prog, params};
  size_t lens[2] = {prog_len, params_len};
  phot_files *f = calloc(1, sizeof *f);
  if (!f) {
    phot_set_error("PD_PredictorCreate: out of memory");
    return NULL;
  }
  f->refs = 1;
  f->fds[0] = f->fds[1] = -1;
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp) tmp = "/tmp";
  snprintf(f->dir, sizeof f->dir, "%s/paddlehot-pdcapi-XXXXXX", tmp);
  if (!mkdtemp(f->dir)) {
    phot_set_error("PD_PredictorCreate: mkdtemp in %s: %s", tmp, strerror(errno));
    f->dir[0] = '\0';
    files_free(f);
    return NULL;
  }
  for (int i = 0; i < 2; i++) {
    char target[64], link[512];
    f->fds[i] = memfd_create(names[i], MFD_CLOEXEC);
    if (f->fds[i] < 0 || write_all(f->fds[i], data[i], lens[i]) != 0) {
      phot_set_error("PD_PredictorCreate: memfd for %s: %s", names[i], strerror(errno));
      files_free(f);
      return NULL;
    }
    snprintf(target, sizeof target, "/proc/self/fd/%d", f->fds[i]);
    snprintf(link, sizeof link, "%s/%s", f->dir, names[i]);
    if (symlink(target, link) != 0) {
      phot_set_error("PD_PredictorCreate: symlink %s: %s", link, strerror(errno));
      files_free(f);
      return NULL;
    }
  }
  return f;
}

void phot_files_retain(phot_files *f) {
  if (f) __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
}

void phot_files_release(phot_files *f) {
  if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0) files_free(f);
}
