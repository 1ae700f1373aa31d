/* A variant plugin's precision (docs/variants.md): refuse where it cannot really run, else
 * switch the predictor's config to it. Never a silent fp32 fallback: Paddle keeps running fp32
 * when its CPU or build cannot do bf16/int8, so both the CPU flags the variant's manifest requires
 * and Paddle's own answer (PD_ConfigMkldnn*Enabled) are checked. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "pd_inference_api.h"
#include "runtime.h"

/* Weak: an fp32 plugin never needs them, and a C API without them is named, not a dlopen
 * failure. */
extern void PD_ConfigEnableMKLDNN(PD_Config *) __attribute__((weak));
extern PD_Bool PD_ConfigMkldnnEnabled(PD_Config *) __attribute__((weak));
extern void PD_ConfigEnableMkldnnBfloat16(PD_Config *) __attribute__((weak));
extern PD_Bool PD_ConfigMkldnnBfloat16Enabled(PD_Config *) __attribute__((weak));
extern void PD_ConfigEnableMkldnnInt8(PD_Config *) __attribute__((weak));
extern PD_Bool PD_ConfigMkldnnInt8Enabled(PD_Config *) __attribute__((weak));

int phot_rt_is_fp32(const phot_rt_desc *d) {
  return !d->precision || strcmp(d->precision, "fp32") == 0;
}

/* The CPU's flag line (x86 "flags", Arm "Features") into buf; 0, or -1 if not found. */
static int cpu_flag_line(char *buf, size_t cap) {
  FILE *f = fopen("/proc/cpuinfo", "re");
  if (!f) return -1;
  char line[8192];
  int found = -1;
  while (found < 0 && fgets(line, sizeof line, f)) {
    if (strncmp(line, "flags", 5) != 0 && strncmp(line, "Features", 8) != 0) continue;
    const char *colon = strchr(line, ':');
    if (!colon) continue;
    snprintf(buf, cap, " %s", colon + 1);
    buf[strcspn(buf, "\n")] = ' ';
    found = 0;
  }
  fclose(f);
  return found;
}

/* Is the whole word flag[0..n) in the space-separated `line` (which starts with a space)? */
static int has_flag(const char *line, const char *flag, size_t n) {
  for (const char *p = line; (p = strchr(p + 1, *flag)) != NULL;)
    if (p[-1] == ' ' && strncmp(p, flag, n) == 0 && (p[n] == ' ' || p[n] == '\0')) return 1;
  return 0;
}

/* The first word of the space-separated `words` whose presence among the CPU's `flags` is
 * `present`, copied into `word` (cut at its size); 0 if there is none. */
static int first_word(const char *flags, const char *words, int present, char *word,
                      size_t cap) {
  for (const char *p = words; *p;) {
    size_t n = strcspn(p, " ");
    if (n && has_flag(flags, p, n) == present) {
      snprintf(word, cap, "%.*s", (int)n, p);
      return 1;
    }
    p += n + (p[n] == ' ');
  }
  return 0;
}

/* Every word of `all`, and one of `any` (if given), in the CPU's flags; else the error. */
static int32_t check_cpu(const phot_rt_desc *d) {
  char flags[8192], word[64];
  if (cpu_flag_line(flags, sizeof flags) != 0)
    return phot_rt_fail(PHOT_E_RUNTIME, "open: %s %s is a %s variant and this CPU's flags "
                        "cannot be read (/proc/cpuinfo)", d->model, d->version, d->precision);
  const char *all = d->cpu_flags_all ? d->cpu_flags_all : "";
  const char *any = d->cpu_flags_any ? d->cpu_flags_any : "";
  if (first_word(flags, all, 0, word, sizeof word))
    return phot_rt_fail(PHOT_E_RUNTIME, "open: %s %s: %s needs the CPU flag %s, which this CPU "
                        "lacks", d->model, d->version, d->precision, word);
  if (*any && !first_word(flags, any, 1, word, sizeof word))
    return phot_rt_fail(PHOT_E_RUNTIME, "open: %s %s: %s needs a CPU with one of: %s; this CPU "
                        "has none of them (a slow or silent fp32 fallback is refused)", d->model,
                        d->version, d->precision, any);
  return PHOT_OK;
}

int32_t phot_rt_check_precision(const phot_rt_desc *d) {
  return phot_rt_is_fp32(d) ? PHOT_OK : check_cpu(d);
}

int32_t phot_rt_configure_precision(const phot_rt_desc *d, PD_Config *cfg) {
  if (phot_rt_is_fp32(d)) return PHOT_OK;
  int bf16 = strcmp(d->precision, "bf16") == 0, int8 = strcmp(d->precision, "int8") == 0;
  void (*enable)(PD_Config *) = bf16 ? PD_ConfigEnableMkldnnBfloat16
                                     : int8 ? PD_ConfigEnableMkldnnInt8 : NULL;
  PD_Bool (*enabled)(PD_Config *) = bf16 ? PD_ConfigMkldnnBfloat16Enabled
                                         : int8 ? PD_ConfigMkldnnInt8Enabled : NULL;
  if (!bf16 && !int8)
    return phot_rt_fail(PHOT_E_RUNTIME, "open: %s %s: unknown precision '%s'", d->model,
                        d->version, d->precision);
  if (!PD_ConfigEnableMKLDNN || !PD_ConfigMkldnnEnabled || !enable || !enabled)
    return phot_rt_fail(PHOT_E_RUNTIME, "open: %s %s is a %s variant; the Paddle Inference C API "
                        "in this process lacks the oneDNN %s switches", d->model, d->version,
                        d->precision, d->precision);
  PD_ConfigEnableMKLDNN(cfg);
  enable(cfg);
  if (!PD_ConfigMkldnnEnabled(cfg))
    return phot_rt_fail(PHOT_E_RUNTIME, "open: %s %s: %s needs a Paddle with oneDNN; this one "
                        "has none (it would silently run fp32)", d->model, d->version,
                        d->precision);
  if (!enabled(cfg))
    return phot_rt_fail(PHOT_E_RUNTIME, "open: %s %s: this Paddle and CPU cannot run %s kernels "
                        "(PD_ConfigMkldnn%sEnabled is false: it would silently run fp32)",
                        d->model, d->version, d->precision, bf16 ? "Bfloat16" : "Int8");
  return PHOT_OK;
}
