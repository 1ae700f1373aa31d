/* Paddle Inference C API subset (paddlehot): include everything. */
#pragma once

#include "pd_common.h"     // NOLINT
#include "pd_config.h"     // NOLINT
#include "pd_predictor.h"  // NOLINT
#include "pd_tensor.h"     // NOLINT
#include "pd_types.h"      // NOLINT
#include "pd_utils.h"      // NOLINT
