/* When a thread that ran two or more predictors exits, drop Paddle's oneDNN kernel cache.
 *
 * Why (the bare std::exception that failed every call of one predictor in one thread):
 * Paddle caches oneDNN kernels and memory objects in one process-wide map keyed by (thread id,
 * executor address, op names, shapes), and every thread has its own oneDNN engine and stream.
 * When a thread exits, Paddle erases only the entries of the *last* executor it ran. A thread
 * that ran predictor A, then B, and exits leaves its entries for A behind, bound to its dead
 * engine. Thread ids are pthread_t values, which the C library hands to the next thread at
 * once; when that thread runs A it finds those entries, oneDNN refuses a kernel of another
 * engine ("could not execute a primitive"), and Paddle's interpreter rethrows it as a bare
 * std::exception - on every call of A in that thread, until A is destroyed.
 *
 * The fix: each thread notes whether it ran more than one predictor; if it did, its exit clears
 * the cache the way Paddle's own ClearMKLDNNCache does (OneDNNContext::ResetBlobMap(nullptr) on
 * the CPU device context). Kernels in use stay alive (the cache hands out shared pointers);
 * every thread rebuilds what it needs on its next run (a first-run cost, once per such exit).
 * Threads that ran one predictor - serve's workers, Go's scheduler threads - cost nothing. The
 * Python host's package mode does its part in core/onednn_threads.py.
 *
 * Paddle's symbols here are weak: wheels without oneDNN (aarch64) have neither them nor the
 * problem. The CPU place is constructed once into storage that is never destroyed (its layout
 * is not ours to know; the bound is checked like the config's). */
#include <cstring>
#include <mutex>

#include "internal.h"

namespace phi {
class Place;
class DeviceContextPool;
}  // namespace phi

extern "C" {
void phot_phi_cpu_place_ctor(void* self) __asm__("_ZN3phi8CPUPlaceC1Ev") __attribute__((weak));
void* phot_phi_pool_instance() __asm__("_ZN3phi17DeviceContextPool8InstanceEv")
    __attribute__((weak));
void* phot_phi_pool_get(void* pool, const void* place) __asm__(
    "_ZN3phi17DeviceContextPool3GetERKNS_5PlaceE") __attribute__((weak));
void phot_phi_reset_blob_map(void* onednn_ctx, void* executor) __asm__(
    "_ZN3phi13OneDNNContext12ResetBlobMapEPv") __attribute__((weak));
}

namespace {

constexpr size_t kPlaceBound = 256; /* a phi::Place is a few bytes; see place_guard_intact */
constexpr size_t kPlaceGuard = 64;
alignas(64) unsigned char g_place[kPlaceBound + kPlaceGuard];
void* g_cpu_ctx = nullptr; /* the CPU device context (a OneDNNContext in oneDNN builds) */
std::once_flag g_ctx_once;

bool place_guard_intact() {
  for (size_t i = kPlaceBound; i < sizeof g_place; i++)
    if (g_place[i] != 0xA5) return false;
  return true;
}

void find_cpu_context() {
  if (!phot_phi_cpu_place_ctor || !phot_phi_pool_instance || !phot_phi_pool_get ||
      !phot_phi_reset_blob_map)
    return;
  memset(g_place, 0xA5, sizeof g_place);
  phot_phi_cpu_place_ctor(g_place);
  if (!place_guard_intact()) return; /* never use a place that outgrew its storage */
  g_cpu_ctx = phot_phi_pool_get(phot_phi_pool_instance(), g_place);
}

struct ThreadRuns {
  const PD_Predictor* first = nullptr;
  bool several = false;
  ~ThreadRuns() {
    if (several) phot_forget_onednn_kernels();
  }
};

thread_local ThreadRuns t_runs;

}  // namespace

void phot_note_run(const PD_Predictor* p) {
  ThreadRuns& r = t_runs;
  if (!r.first) r.first = p;
  else if (r.first != p) r.several = true;
}

bool phot_forget_onednn_kernels() {
  try {
    std::call_once(g_ctx_once, find_cpu_context);
    if (!g_cpu_ctx) return false;
    phot_phi_reset_blob_map(g_cpu_ctx, nullptr);
    return true;
  } catch (...) { /* a thread exit must not throw */
    return false;
  }
}
