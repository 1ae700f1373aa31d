/* Thread exits and Paddle's oneDNN cache: drop dead threads' kernels, and never while a run is in
 * flight.
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
 *
 * Why (2, the SIGSEGV in a C host whose worker threads exit while others still run):
 * clearing the map, or Paddle's own erase at thread exit (ResetBlobMap(last executor), or of
 * everything for a thread that created a predictor but never ran one), while another thread is
 * inside Run() crashes that thread: Paddle reads the map without its lock in places and assumes
 * an entry it found a moment ago is still there. tests/native/pdcapi_thread_exits.c crashed 2 of
 * 3 runs of 15 s before this. So runs pass a gate (many at once), and a thread exit closes it:
 * the exit waits for the runs in flight, new runs wait (writer first, so a busy pool cannot
 * starve an exit), the clearing and Paddle's own thread-exit erase run alone, then the gate
 * opens. The exit brackets Paddle's erase with two thread_local objects: `Tail` is made before
 * this thread first enters Paddle through pdcapi, `Head` after, and C++ destroys thread_locals
 * in reverse order of construction, so Head's destructor (close, clear) runs before Paddle's
 * per-thread oneDNN state is destroyed and Tail's (open) after it. A thread that used Paddle
 * before its first pdcapi call (Python's paddle package on the same thread) is not bracketed.
 * Two more writers of that map run alone too: a thread's first run of a predictor since the last
 * exit (it inserts this thread's entries; tracked per predictor id and exit generation), and a
 * predictor's destruction (lifecycle.cc; it erases its entries).
 * Known, not fixed: a predictor *created* on a short-lived thread while others run still crashes
 * a running thread now and then (the create-and-exit mode of tests/native/pdcapi_thread_exits.c,
 * about 1 run in 3 of 8 s); creation is not gated because it takes seconds (resnet18) and every
 * run would wait for it.
 *
 * Paddle's symbols here are weak: wheels without oneDNN (aarch64) have neither them nor the
 * problem (the gate still orders exits and runs; it costs two uncontended atomics per run). The
 * CPU place is constructed once into storage that is never destroyed (its layout is not ours
 * to know; the bound is checked like the config's). */
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <unordered_map>

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

/* The run gate: runs enter and leave (many at once); a thread exit closes it (one at a time). */
std::atomic<int> g_running{0};
std::atomic<uint64_t> g_generation{1}; /* +1 at every thread exit (entries erased) */
std::atomic<uint64_t> g_next_id{1};
std::atomic<bool> g_closed{false};
std::mutex g_gate_mu;
std::condition_variable g_gate_cv;
std::mutex g_exits; /* held from close to open: one exiting thread at a time */

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
  const PD_Predictor* first = nullptr;
  bool several = false;
  ~Head() {
    close_gate();
    tail().gate_held = true; /* opened by Tail, after Paddle's own thread-exit erase */
    if (several) phot_forget_onednn_kernels();
    g_generation.fetch_add(1); /* entries were erased: every thread's next runs rebuild alone */
  }
};

Head& head() {
  static thread_local Head h;
  return h;
}

/* Which predictors this thread ran since the last clearing (by id: the generation it ran them
 * in). A first run builds this thread's cache entries: it runs alone. */
std::unordered_map<uint64_t, uint64_t>& ran_here() {
  static thread_local std::unordered_map<uint64_t, uint64_t> m;
  return m;
}

}  // namespace

uint64_t phot_new_predictor_id() { return g_next_id.fetch_add(1); }

bool phot_run_enter_for(const PD_Predictor* p) {
  phot_thread_before_paddle();
  auto& mine = ran_here();
  auto it = mine.find(p->id);
  uint64_t now = g_generation.load();
  if (it != mine.end() && it->second == now) {
    phot_run_enter();
    return false;
  }
  close_gate();
  if (mine.size() > 256) mine.clear(); /* ids of destroyed predictors: forget, rerun alone */
  mine[p->id] = g_generation.load();
  return true;
}

void phot_alone_begin() { close_gate(); }
void phot_alone_end() { open_gate(); }

void phot_run_leave_for(bool alone) {
  if (alone) open_gate();
  else phot_run_leave();
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
