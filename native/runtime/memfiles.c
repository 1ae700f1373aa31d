/* See memfiles.h. */
#define _GNU_SOURCE
#include "memfiles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int phot_write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int phot_copy_range(int dst, int src, off_t off, size_t len) {
  enum { CHUNK = 1 << 20 };
  char *buf = malloc(CHUNK);
  if (!buf) return -1;
  int rc = 0;
  while (len > 0 && rc == 0) {
    ssize_t r = pread(src, buf, len < CHUNK ? len : CHUNK, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;
      rc = -1;
      break;
    }
    rc = phot_write_all(dst, buf, (size_t)r);
    off += r;
    len -= (size_t)r;
  }
  free(buf);
  return rc;
}

void phot_memfiles_path(const phot_memfiles *f, int i, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s", f->dir, f->names[i]);
}

void phot_memfiles_close(phot_memfiles *f) {
  if (f->dir[0]) { /* only inside the directory we created, never a path without it */
    char path[PATH_MAX + 80];
    for (int i = 0; i < 2; i++) {
      if (!f->names[i][0]) continue;
      phot_memfiles_path(f, i, path, sizeof path);
      unlink(path);
    }
    rmdir(f->dir);
    f->dir[0] = '\0';
  }
  for (int i = 0; i < 2; i++) {
    if (f->fds[i] >= 0) close(f->fds[i]);
    f->fds[i] = -1;
  }
}

int phot_memfiles_open(phot_memfiles *f, const char *prefix, const char *prog_name,
                       const char *params_name, char *err, size_t errlen) {
  const char *names[2] = {prog_name, params_name};
  memset(f, 0, sizeof *f);
  f->fds[0] = f->fds[1] = -1;
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp) tmp = "/tmp";
  snprintf(f->dir, sizeof f->dir, "%s/%s-XXXXXX", tmp, prefix);
  if (!mkdtemp(f->dir)) {
    snprintf(err, errlen, "mkdtemp in %s: %s", tmp, strerror(errno));
    f->dir[0] = '\0';
    return -1;
  }
  for (int i = 0; i < 2; i++) {
    char target[64], link[PATH_MAX + 80];
    /* the syscall: memfd_create() is a GLIBC_2.27 symbol, newer than abi-check's oldest floors */
    f->fds[i] = (int)syscall(SYS_memfd_create, names[i], 1u /* MFD_CLOEXEC */);
    if (f->fds[i] < 0) {
      snprintf(err, errlen, "memfd for %s: %s", names[i], strerror(errno));
      phot_memfiles_close(f);
      return -1;
    }
    snprintf(target, sizeof target, "/proc/%ld/fd/%d", (long)getpid(), f->fds[i]);
    snprintf(f->names[i], sizeof f->names[i], "%s", names[i]);
    phot_memfiles_path(f, i, link, sizeof link);
    if (symlink(target, link) != 0) {
      snprintf(err, errlen, "symlink %s: %s", link, strerror(errno));
      f->names[i][0] = '\0'; /* not created: never unlink it */
      phot_memfiles_close(f);
      return -1;
    }
  }
  return 0;
}
