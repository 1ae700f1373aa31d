/* The plugin runtime (native/runtime) on its own, without a model or a plugin: the memfd helper,
 * the ELF section reader, and the call checks (struct_size strides, NULL arrays, names, shapes).
 * Prints one "ok <case>" line per case; exits 1 on the first failure. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memfiles.h"
#include "runtime.h"
#include "self_file.h"

#define CHECK(cond, what)                                              \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "FAIL %s: %s (%s)\n", what, #cond, phot_rt_last_error()); \
      exit(1);                                                         \
    }                                                                  \
  } while (0)

static void test_memfiles(const char *tmp) {
  phot_memfiles f;
  char err[256], path[PATH_MAX + 80], buf[8] = {0};
  setenv("TMPDIR", tmp, 1);
  CHECK(phot_memfiles_open(&f, "rt", "model.json", "model.pdiparams", err, sizeof err) == 0,
        "memfiles open");
  CHECK(phot_write_all(f.fds[0], "{}\n", 3) == 0, "write");
  phot_memfiles_path(&f, 0, path, sizeof path);
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0 && read(fd, buf, 3) == 3 && memcmp(buf, "{}\n", 3) == 0, "read back by path");
  close(fd);
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", f.dir);
  phot_memfiles_close(&f);
  struct stat st;
  CHECK(stat(dir, &st) != 0 && f.fds[0] == -1, "close removes the dir and the fds");
  phot_memfiles_close(&f); /* twice is fine */
  /* mkdtemp fails: an error, and nothing outside the (never created) dir is touched */
  char victim[PATH_MAX];
  snprintf(victim, sizeof victim, "%s/model.json", tmp);
  FILE *v = fopen(victim, "w");
  fputs("keep", v);
  fclose(v);
  setenv("TMPDIR", "/nonexistent-paddlehot", 1);
  CHECK(phot_memfiles_open(&f, "rt", "model.json", "model.pdiparams", err, sizeof err) != 0 &&
            strstr(err, "mkdtemp"), "mkdtemp failure is an error");
  CHECK(stat(victim, &st) == 0, "nothing outside its own dir is unlinked");
  setenv("TMPDIR", tmp, 1);
  puts("ok memfiles");
}

static void test_sections(const char *tmp) {
  char err[256];
  off_t off;
  uint64_t size;
  int fd = open("/proc/self/exe", O_RDONLY);
  CHECK(phot_find_section(fd, ".comment", &off, &size, err, sizeof err) == 0 && size > 0,
        ".comment found");
  CHECK(phot_find_section(fd, ".paddlehot.nope", &off, &size, err, sizeof err) != 0 &&
            strstr(err, "no section"), "missing section is an error");
  /* a truncated copy of this file: an error, never a crash */
  char cut[PATH_MAX];
  snprintf(cut, sizeof cut, "%s/truncated", tmp);
  int out = open(cut, O_CREAT | O_TRUNC | O_WRONLY, 0600);
  CHECK(phot_copy_range(out, fd, 0, 4096) == 0, "copy_range");
  close(out);
  int tfd = open(cut, O_RDONLY);
  CHECK(phot_find_section(tfd, ".comment", &off, &size, err, sizeof err) != 0, "truncated");
  close(tfd);
  CHECK(phot_find_section(0 + open("/dev/null", O_RDONLY), ".comment", &off, &size, err,
                          sizeof err) != 0, "not ELF");
  close(fd);
  puts("ok sections");
}

/* A host built against a later plugin.h: one field appended. */
typedef struct {
  phot_tensor t;
  uint64_t appended;
} wide_tensor;

static const phot_rt_spec k_in[2] = {{"a", PHOT_DTYPE_FLOAT32, 2, {-1, 3}},
                                     {"b", PHOT_DTYPE_INT64, 1, {-1}}};
static const phot_rt_spec k_out[1] = {{"y", PHOT_DTYPE_FLOAT32, 2, {-1, 3}}};
static const phot_rt_desc k_desc = {.model = "m", .version = "1.0.0", .inputs = k_in,
                                    .n_inputs = 2, .outputs = k_out, .n_outputs = 1,
                                    .input_names = "a, b", .output_names = "y"};

static void test_checks(void) {
  float a[2][3] = {{0}};
  int64_t b[2] = {0};
  float y[6];
  size_t order[2];
  int which[1];
  phot_rt_call c = {.order = order, .which = which};
  wide_tensor in[2], out[1];
  memset(in, 0, sizeof in);
  memset(out, 0, sizeof out);
  /* given b first: names decide */
  in[0].t = (phot_tensor){sizeof(wide_tensor), PHOT_DTYPE_INT64, "b", 1, {2}, b, sizeof b};
  in[1].t = (phot_tensor){sizeof(wide_tensor), PHOT_DTYPE_FLOAT32, "a", 2, {2, 3}, a, sizeof a};
  out[0].t = (phot_tensor){.struct_size = sizeof(wide_tensor), .data = y, .byte_size = sizeof y};
  const phot_tensor *ins = &in[0].t;
  phot_tensor *outs = &out[0].t;
  CHECK(phot_rt_check_call(&k_desc, ins, 2, outs, 1, &c) == PHOT_OK, "wide tensors accepted");
  CHECK(order[0] == 1 && order[1] == 0 && c.in_stride == sizeof(wide_tensor), "walked by stride");
  CHECK(phot_rt_input(&c, 1)->byte_size == sizeof a, "element 1 at the caller's stride");
  in[1].t.struct_size = 104;
  CHECK(phot_rt_check_call(&k_desc, ins, 2, outs, 1, &c) == PHOT_E_INVALID_ARGUMENT &&
            strstr(phot_rt_last_error(), "one array, one size"), "mixed sizes refused");
  in[0].t.struct_size = in[1].t.struct_size = 96;
  CHECK(phot_rt_check_call(&k_desc, ins, 2, outs, 1, &c) == PHOT_E_INVALID_ARGUMENT,
        "below 1.0 refused");
  in[0].t.struct_size = in[1].t.struct_size = sizeof(wide_tensor);
  CHECK(phot_rt_check_call(&k_desc, NULL, 2, outs, 1, &c) == PHOT_E_INVALID_ARGUMENT,
        "NULL inputs with n > 0");
  CHECK(phot_rt_check_call(&k_desc, ins, 2, NULL, 1, &c) == PHOT_E_INVALID_ARGUMENT,
        "NULL outputs with n > 0");
  CHECK(phot_rt_check_call(&k_desc, ins, 1, outs, 1, &c) == PHOT_E_MISSING_INPUT, "missing");
  in[1].t.shape[1] = 4;
  CHECK(phot_rt_check_call(&k_desc, ins, 2, outs, 1, &c) == PHOT_E_SHAPE_MISMATCH, "fixed dim");
  in[1].t.shape[1] = 3;
  in[0].t.dtype = PHOT_DTYPE_INT32;
  CHECK(phot_rt_check_call(&k_desc, ins, 2, outs, 1, &c) == PHOT_E_DTYPE_MISMATCH, "dtype");
  in[0].t.dtype = PHOT_DTYPE_INT64;
  in[0].t.name = "zz";
  CHECK(phot_rt_check_call(&k_desc, ins, 2, outs, 1, &c) == PHOT_E_UNKNOWN_INPUT, "unknown");
  puts("ok checks");
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  test_memfiles(argv[1]);
  test_sections(argv[1]);
  test_checks();
  return 0;
}
