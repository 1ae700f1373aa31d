/* The oneDNN and precision switches of PD_Config (official names and signatures), over the weak
 * declarations in paddle_cxx.h.
 *
 * Setters only record what was asked (PD_Config is plain state until PD_PredictorCreate). The
 * queries answer what Paddle will really do, because a plugin refuses to run a variant at a
 * precision Paddle would silently drop: they build a throw-away AnalysisConfig, switch it the
 * same way and read Paddle's own answer (onednn_enabled, onednn_int8_enabled). bfloat16 has no
 * exported query: Paddle's EnableMkldnnBfloat16 keeps it only where SupportsBfloat16() holds
 * (oneDNN's avx512_core rule), so that is asked instead. */
#include <unordered_set>

#include "config_box.h"
#include "internal.h"

void phot_apply_precision(paddle::AnalysisConfig* cfg, const PD_Config* c) {
  if (c->onednn && phot_cfg_enable_onednn) phot_cfg_enable_onednn(cfg);
  if (c->onednn_bf16 && phot_cfg_enable_bf16) phot_cfg_enable_bf16(cfg);
  if (c->onednn_int8 && phot_cfg_enable_int8) {
    const std::unordered_set<std::string> all_ops; /* empty: every quantized operator */
    phot_cfg_enable_int8(cfg, &all_ops);
  }
}

/* Paddle's answer, through `query` (a weak getter: absent -> FALSE), for a config switched as
 * `c` asks. */
static PD_Bool paddle_says(PD_Config* c, bool (*query)(const paddle::AnalysisConfig*),
                           const char* fn) {
  if (!query) return FALSE;
  return phot_guard(fn, (PD_Bool)FALSE, [&]() -> PD_Bool {
    paddle::AnalysisConfig* probe = phot_config_new(nullptr, fn);
    if (!probe) return FALSE;
    probe->DisableGlogInfo();
    phot_apply_precision(probe, c);
    bool on = query(probe);
    phot_config_delete(probe);
    return on ? TRUE : FALSE;
  });
}

void PD_ConfigEnableMKLDNN(PD_Config* c) {
  PHOT_CHECK_ARG(c, "PD_ConfigEnableMKLDNN", );
  c->onednn = TRUE;
}
PD_Bool PD_ConfigMkldnnEnabled(PD_Config* c) {
  PHOT_CHECK_ARG(c, "PD_ConfigMkldnnEnabled", FALSE);
  return c->onednn ? paddle_says(c, phot_cfg_onednn_enabled, "PD_ConfigMkldnnEnabled") : FALSE;
}

/* Each switch is passed to Paddle as it is: callers turn oneDNN on first, as with Paddle's. */
void PD_ConfigEnableMkldnnBfloat16(PD_Config* c) {
  PHOT_CHECK_ARG(c, "PD_ConfigEnableMkldnnBfloat16", );
  c->onednn_bf16 = TRUE;
}
PD_Bool PD_ConfigMkldnnBfloat16Enabled(PD_Config* c) {
  PHOT_CHECK_ARG(c, "PD_ConfigMkldnnBfloat16Enabled", FALSE);
  if (!c->onednn_bf16 || !phot_cfg_enable_bf16 || !phot_paddle_supports_bf16) return FALSE;
  return (phot_paddle_supports_bf16() &&
          paddle_says(c, phot_cfg_onednn_enabled, "PD_ConfigMkldnnBfloat16Enabled"))
             ? TRUE : FALSE;
}

void PD_ConfigEnableMkldnnInt8(PD_Config* c) {
  PHOT_CHECK_ARG(c, "PD_ConfigEnableMkldnnInt8", );
  c->onednn_int8 = TRUE;
}
PD_Bool PD_ConfigMkldnnInt8Enabled(PD_Config* c) {
  PHOT_CHECK_ARG(c, "PD_ConfigMkldnnInt8Enabled", FALSE);
  return c->onednn_int8
             ? paddle_says(c, phot_cfg_onednn_int8_enabled, "PD_ConfigMkldnnInt8Enabled")
             : FALSE;
}
