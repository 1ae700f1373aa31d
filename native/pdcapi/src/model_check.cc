/* Checks for model inputs that Paddle does not turn into an exception: a legacy program that
 * parses to no blocks makes Paddle 3.3.1 segfault while creating the predictor, so such programs
 * are refused here first. Missing files get a clear message instead of Paddle's. */
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "internal.h"

static bool readable_file(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

static bool ends_with(const std::string& s, const char* suffix) {
  std::string t = suffix;
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

static bool read_all(const char* path, std::vector<char>* out) {
  FILE* f = fopen(path, "rb");
  if (!f) return false;
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  bool ok = !ferror(f);
  fclose(f);
  return ok;
}

static bool varint(const unsigned char*& p, const unsigned char* end, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    unsigned char b = *p++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

/* Protobuf wire format of a ProgramDesc: its top level must parse, and hold at least one
 * `blocks` field (number 1, length-delimited). */
static bool program_has_blocks(const char* data, size_t n) {
  const unsigned char *p = reinterpret_cast<const unsigned char*>(data), *end = p + n;
  int blocks = 0;
  while (p < end) {
    uint64_t key, v;
    if (!varint(p, end, &key) || (key >> 3) == 0) return false;
    switch (key & 7) {
      case 0:
        if (!varint(p, end, &v)) return false;
        break;
      case 1:
        if (end - p < 8) return false;
        p += 8;
        break;
      case 2:
        if (!varint(p, end, &v) || v > (uint64_t)(end - p)) return false;
        p += v;
        if ((key >> 3) == 1) blocks++;
        break;
      case 5:
        if (end - p < 4) return false;
        p += 4;
        break;
      default:
        return false;
    }
  }
  return blocks > 0;
}

bool phot_check_program_bytes(const char* data, size_t n, const char* what, const char* fn) {
  if (program_has_blocks(data, n)) return true;
  phot_set_error("%s: %s is not a Paddle program (protobuf parse failed)", fn, what);
  return false;
}

bool phot_check_model_files(const char* prog, const char* params, const char* fn) {
  for (const char* f : {prog, params}) {
    if (f && *f && !readable_file(f)) {
      phot_set_error("%s: FileNotFoundError: model file not found: %s", fn, f);
      return false;
    }
  }
  if (ends_with(prog, ".json")) return true; /* PIR: Paddle raises on what it cannot parse */
  std::vector<char> bytes;
  if (!read_all(prog, &bytes)) {
    phot_set_error("%s: cannot read %s", fn, prog);
    return false;
  }
  return phot_check_program_bytes(bytes.data(), bytes.size(), prog, fn);
}
