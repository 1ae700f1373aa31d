/* Thread exits, runs and Paddle's oneDNN cache: drop dead threads' kernels; keep Paddle's shape
 * cache, where a config asks for one, away from every other use of that cache.
 *
 * Why (1, the bare std::exception that failed every call of one predictor in one thread):
 * Paddle caches oneDNN kernels and memory objects in one process-wide map keyed by (thread id,
 * executor address, op names, shapes), and every thread has its own oneDNN engine and stream.
 * When a thread exits, Paddle erases only the entries of the *last* executor it ran. A thread
 * that ran predictor A, then B, and exits leaves its entries for A behind, bound to its dead
 * engine. Thread ids are pthread_t values, which the C library hands to the next thread at
 * once; when that thread runs A it finds those entries, oneDNN refuses a kernel of another
 * engine ("could not execute a primitive"), and Paddle's interpreter rethrows it as a bare
 * std::exception - on every call of A in that thread, until A is destroyed.
 * So each thread notes whether it ran more than one predictor; if it did, its exit clears the
 * cache the way Paddle's own ClearMKLDNNCache does (OneDNNContext::ResetBlobMap(nullptr) on the
 * CPU device context). Every thread rebuilds what it needs on its next run (a first-run cost,
 * once per such exit). The Python host's package mode does its part in core/onednn_threads.py.
 * Clearing is no memory bound: Paddle's per-executor index of the entries keeps the cleared ones
 * alive until their predictor is destroyed (clearing the text model's cache whenever 32 new
 * shapes had run grew it by 1.1 GB over 3,000 random shapes, against 0.19 GB never clearing).
 *
 * Why (2, the SIGSEGV of a running thread while another thread exits, creates or destroys a
 * predictor, or runs a new shape): with a oneDNN cache capacity above 0 - and Paddle 3.3.1's
 * AnalysisConfig defaults to 10 - every Run() ends in MkldnnPostReset, which counts the whole
 * map (OneDNNContext::GetCachedObjectsNumber) *without* the map's lock. Any insert or erase in
 * another thread meanwhile (a first run, a new input shape, a predictor's creation or teardown,
 * a thread's exit) can free what it walks. With capacity 0 that count never runs and every
 * other access to the map takes its lock: tests/native/pdcapi_thread_exits.c, with this file's
 * gate disabled, crashed 4 of 4 runs of 8 s at capacity 10 and passed 4 of 4 at 0. So pdcapi's
 * default capacity is 0 (config.cc), and the plugin runtime asks for 0 explicitly, so plugins
 * get it from Paddle's official C library too. A config that sets a capacity above 0 still
 * works: its runs take the lifecycle lock (no creation or teardown) and close the gate (no
 * other run, tensor copy or thread exit) - correct, but one such run at a time.
 *
 * The gate: runs and tensor copies pass it many at once (two uncontended atomics); a thread
 * exit and a shape-cached run close it: they wait for the ones in flight, new ones wait (writer
 * first, so a busy pool cannot starve an exit), then the gate opens. A thread exit closes it so
 * that clearing the map never runs under a shape-cached run. The exit brackets Paddle's own
 * thread-exit erase with two thread_local objects: `Tail` is made before this thread first
 * enters Paddle through pdcapi, `Head` after, and C++ destroys thread_locals in reverse order of
 * construction, so Head's destructor (close, clear) runs before Paddle's per-thread oneDNN state
 * is destroyed and Tail's (open) after it. A thread that used Paddle before its first pdcapi
 * call (Python's paddle package on the same thread) is not bracketed.
 *
 * Paddle's symbols here are weak: wheels without oneDNN (aarch64) have neither them nor the
 * problem (the gate still orders exits and runs). The CPU place is constructed once into storage
 * that is never destroyed (its layout is not ours to know; the bound is checked like the
 * config's). */
#include <atomic>
#include <condition_variable>
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

/* The run gate: runs and tensor copies pass it many at once; a thread exit or a shape-cached
 * run closes it (one closer at a time). */
std::atomic<int> g_running{0};
std::atomic<uint64_t> g_next_id{1};
std::atomic<bool> g_closed{false};
std::mutex g_gate_mu;
std::condition_variable g_gate_cv;
std::mutex g_exits; /* held from close to open: one closer at a time */

void close_gate() {
  g_exits.lock();
  g_closed.store(true);
  std::unique_lock<std::mutex> l(g_gate_mu);
  g_gate_cv.wait(l, [] { return g_running.load() == 0; });
}

void open_gate() {
  {
    std::lock_guard<std::mutex> l(g_gate_mu);
    g_closed.store(false);
  }
  g_gate_cv.notify_all();
  g_exits.unlock();
}

struct Tail { /* made before this thread's first Paddle call through pdcapi: destroyed last */
  bool gate_held = false;
  ~Tail() {
    if (gate_held) open_gate();
  }
};

Tail& tail() {
  static thread_local Tail t;
  return t;
}

struct Head { /* made after this thread's first Paddle call: destroyed before Paddle's state */
  uint64_t first = 0; /* the id of the first predictor this thread ran */
  bool several = false;
  ~Head() {
    close_gate();
    tail().gate_held = true; /* opened by Tail, after Paddle's own thread-exit erase */
    if (several) phot_forget_onednn_kernels();
  }
};

Head& head() {
  static thread_local Head h;
  return h;
}

}  // namespace

uint64_t phot_new_predictor_id() { return g_next_id.fetch_add(1); }

bool phot_run_enter_for(const PD_Predictor* p) {
  if (!p->shape_cached) {
    phot_run_enter();
    return false;
  }
  phot_thread_before_paddle();
  phot_lifecycle_lock();
  close_gate();
  return true;
}

void phot_run_leave_for(bool alone) {
  if (!alone) return phot_run_leave();
  open_gate();
  phot_lifecycle_unlock();
}

void phot_thread_before_paddle() { (void)tail(); }

void phot_thread_after_paddle() { (void)head(); }

void phot_run_enter() {
  phot_thread_before_paddle();
  for (;;) {
    g_running.fetch_add(1);
    if (!g_closed.load()) return;
    phot_run_leave(); /* an exit is closing the gate: back out and wait for it to open */
    std::unique_lock<std::mutex> l(g_gate_mu);
    g_gate_cv.wait(l, [] { return !g_closed.load(); });
  }
}

void phot_run_leave() {
  if (g_running.fetch_sub(1) == 1 && g_closed.load()) {
    std::lock_guard<std::mutex> l(g_gate_mu); /* the closer checks under this lock: no lost wake */
    g_gate_cv.notify_all();
  }
}

void phot_note_run(const PD_Predictor* p) {
  Head& r = head();
  if (!r.first) r.first = p->id;
  else if (r.first != p->id) r.several = true;
}

bool phot_paddle_has_onednn() { return phot_phi_reset_blob_map != nullptr; }

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
