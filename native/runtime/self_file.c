/* See self_file.h. Reads only through pread on a bounded, checked layout: a truncated or foreign
 * file gives an error, never a crash. */
#define _GNU_SOURCE
#include "self_file.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct find_self {
  uintptr_t addr;
  char *buf;
  size_t cap;
};

static int find_self_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct find_self *fs = arg;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    if (fs->addr >= lo && fs->addr < hi && info->dlpi_name && info->dlpi_name[0]) {
      snprintf(fs->buf, fs->cap, "%s", info->dlpi_name);
      return 1;
    }
  }
  return 0;
}

int phot_self_path(const void *addr_inside, char *buf, size_t cap) {
  struct find_self fs = {(uintptr_t)addr_inside, buf, cap};
  buf[0] = '\0';
  return dl_iterate_phdr(find_self_cb, &fs) ? 0 : -1;
}

static int read_at(int fd, void *p, size_t n, off_t off) {
  char *c = p;
  while (n > 0) {
    ssize_t r = pread(fd, c, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    c += r;
    n -= (size_t)r;
    off += r;
  }
  return 0;
}

int phot_find_section(int fd, const char *name, off_t *off, uint64_t *size, char *err,
                      size_t errlen) {
  ElfW(Ehdr) eh;
  off_t end = lseek(fd, 0, SEEK_END);
  if (end < 0 || read_at(fd, &eh, sizeof eh, 0) != 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)) {
    snprintf(err, errlen, "not an ELF file of this class");
    return -1;
  }
  if (eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shnum == 0 || eh.e_shstrndx >= eh.e_shnum ||
      eh.e_shoff > (uint64_t)end ||
      (uint64_t)eh.e_shnum * sizeof(ElfW(Shdr)) > (uint64_t)end - eh.e_shoff) {
    snprintf(err, errlen, "bad or truncated section header table");
    return -1;
  }
  size_t tab = (size_t)eh.e_shnum * sizeof(ElfW(Shdr));
  ElfW(Shdr) *sh = malloc(tab);
  if (!sh || read_at(fd, sh, tab, (off_t)eh.e_shoff) != 0) {
    free(sh);
    snprintf(err, errlen, "cannot read the section headers");
    return -1;
  }
  const ElfW(Shdr) *strs = &sh[eh.e_shstrndx];
  size_t want = strlen(name) + 1;
  char *cand = malloc(want);
  int found = -1;
  for (int i = 0; cand && i < eh.e_shnum && found < 0; i++) {
    if (sh[i].sh_name >= strs->sh_size || strs->sh_size - sh[i].sh_name < want) continue;
    if (read_at(fd, cand, want, (off_t)(strs->sh_offset + sh[i].sh_name)) != 0) continue;
    if (memcmp(cand, name, want) == 0) found = i;
  }
  free(cand);
  int rc = -1;
  if (found < 0) {
    snprintf(err, errlen, "no section %s", name);
  } else if (sh[found].sh_type == SHT_NOBITS || sh[found].sh_offset > (uint64_t)end ||
             sh[found].sh_size > (uint64_t)end - sh[found].sh_offset) {
    snprintf(err, errlen, "section %s lies outside the file (truncated?)", name);
  } else {
    *off = (off_t)sh[found].sh_offset;
    *size = sh[found].sh_size;
    rc = 0;
  }
  free(sh);
  return rc;
}
