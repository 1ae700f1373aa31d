/* Bounded storage for a paddle::AnalysisConfig, whose size pdcapi does not know.
 *
 * The constructor writes into memory we provide; if Paddle's class outgrew our bound it would
 * write past it. So the box reserves PHOT_CONFIG_BOUND bytes (about 2.5x what the 3.3.1
 * constructor writes: 1,632 bytes) followed by a guard region with a known pattern, checked after
 * every construction: a config that touched the guard is never used (and the box is leaked, not
 * destroyed: its state is unknown). The build's self-test and tests/test_pdcapi.py measure the
 * bytes a construction writes against the bound. */
#ifndef PHOT_CONFIG_BOX_H
#define PHOT_CONFIG_BOX_H

#include <cstddef>

#include "paddle_cxx.h"

#ifndef PHOT_CONFIG_BOUND /* overridable only for the guard test */
#define PHOT_CONFIG_BOUND 4096
#endif
#define PHOT_CONFIG_GUARD 1024

struct alignas(64) ConfigBox {
  unsigned char bytes[PHOT_CONFIG_BOUND + PHOT_CONFIG_GUARD];
};

/* A new config in a new box: default-constructed (from == nullptr) or copied from `from`.
 * Returns nullptr with the error set (out of memory, or the guard was touched). May throw
 * whatever Paddle's constructor throws. */
__attribute__((visibility("hidden"))) paddle::AnalysisConfig* phot_config_new(
    const paddle::AnalysisConfig* from, const char* fn);

/* Destroy through libpaddle's exported destructor and free the box. NULL is allowed. */
__attribute__((visibility("hidden"))) void phot_config_delete(paddle::AnalysisConfig* c);

/* For the bound test: bytes a default construction writes (highest changed byte + 1) when the
 * whole box starts as `pattern`; the config is destroyed again. -1 if it cannot be measured. */
__attribute__((visibility("hidden"))) long phot_config_bytes_written(unsigned char pattern);

#endif
