/* See config_box.h. */
#include "config_box.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "internal.h"

static_assert(sizeof(ConfigBox) == PHOT_CONFIG_BOUND + PHOT_CONFIG_GUARD, "no padding");

static const unsigned char kGuardByte = 0xA5;

static ConfigBox* box_of(paddle::AnalysisConfig* c) { return reinterpret_cast<ConfigBox*>(c); }

static bool guard_intact(const ConfigBox* b) {
  for (size_t i = PHOT_CONFIG_BOUND; i < sizeof b->bytes; i++)
    if (b->bytes[i] != kGuardByte) return false;
  return true;
}

paddle::AnalysisConfig* phot_config_new(const paddle::AnalysisConfig* from, const char* fn) {
  void* mem = nullptr;
  if (posix_memalign(&mem, alignof(ConfigBox), sizeof(ConfigBox)) != 0) {
    phot_set_error("%s: out of memory", fn);
    return nullptr;
  }
  ConfigBox* b = static_cast<ConfigBox*>(mem);
  memset(b->bytes, 0, PHOT_CONFIG_BOUND);
  memset(b->bytes + PHOT_CONFIG_BOUND, kGuardByte, PHOT_CONFIG_GUARD);
  paddle::AnalysisConfig* c;
  try {
    c = from ? new (b->bytes) paddle::AnalysisConfig(*from) : new (b->bytes) paddle::AnalysisConfig();
  } catch (...) {
    free(b);
    throw;
  }
  if (!guard_intact(b)) {
    /* Paddle wrote past our bound: its object may own memory we cannot free; leak the box. */
    phot_set_error("%s: paddle::AnalysisConfig is larger than the %d bytes pdcapi reserves for "
                   "it; rebuild pdcapi for this Paddle (its self-test measures the size)",
                   fn, PHOT_CONFIG_BOUND);
    return nullptr;
  }
  return c;
}

void phot_config_delete(paddle::AnalysisConfig* c) {
  if (!c) return;
  c->~AnalysisConfig();
  free(box_of(c));
}

long phot_config_bytes_written(unsigned char pattern) {
  void* mem = nullptr;
  if (posix_memalign(&mem, alignof(ConfigBox), sizeof(ConfigBox)) != 0) return -1;
  ConfigBox* b = static_cast<ConfigBox*>(mem);
  memset(b->bytes, pattern, sizeof b->bytes);
  paddle::AnalysisConfig* c;
  try {
    c = new (b->bytes) paddle::AnalysisConfig();
  } catch (...) {
    free(b);
    return -1;
  }
  long last = -1;
  for (size_t i = 0; i < sizeof b->bytes; i++)
    if (b->bytes[i] != pattern) last = (long)i;
  c->~AnalysisConfig();
  free(b);
  return last + 1;
}
