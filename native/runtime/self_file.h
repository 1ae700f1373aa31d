/* Questions a shared object asks about its own file: where it is, and where a (non-allocated)
 * section lies in it. The plugin keeps its embedded model in sections the loader never maps, and
 * reads them from its own file in open(). */
#ifndef PHOT_SELF_FILE_H
#define PHOT_SELF_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The path this object was loaded from (as given to dlopen), found from an address inside it.
 * 0 on success; -1 if not found. Uses dl_iterate_phdr, not dladdr (a GLIBC_2.34 symbol). */
__attribute__((visibility("hidden"))) int phot_self_path(const void *addr_inside, char *buf,
                                                         size_t cap);

/* Find section `name` in the ELF file open at fd: its file offset and size. 0 on success; -1 with
 * a message in err (not ELF, wrong class, truncated, no such section). */
__attribute__((visibility("hidden"))) int phot_find_section(int fd, const char *name, off_t *off,
                                                            uint64_t *size, char *err,
                                                            size_t errlen);

#endif
