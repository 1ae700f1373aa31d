/* One process-wide lock around predictor creation and destruction.
 *
 * Paddle's predictor construction and teardown touch process-wide state (the program and pass
 * registries, oneDNN's primitive cache, global flags, the memory allocators' tables) that is
 * not safe against another construction or teardown at the same time. Runs of different
 * predictors need no lock: each owns its scope and tensors. Under CPython the GIL used to give
 * this serialisation by accident; without it, it is this lock. */
#include <cstdlib>
#include <mutex>

#include "config_box.h"
#include "internal.h"

static std::mutex g_lifecycle;
static std::once_flag g_env_once;

/* Before oneDNN creates its first primitive: see PHOT_DEFAULT_ONEDNN_PRIMITIVE_CACHE. Under the
 * lock, so no other thread of ours is inside Paddle reading the environment. */
static void default_environment() {
  setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", PHOT_DEFAULT_ONEDNN_PRIMITIVE_CACHE, 0);
  setenv("GLOG_minloglevel", "2", 0);
}

std::shared_ptr<paddle_infer::Predictor> phot_create_locked(const paddle::AnalysisConfig& config) {
  /* this thread's exit is then ordered with runs (thread_runs.cc), even if creation throws */
  struct Bracket {
    Bracket() { phot_thread_before_paddle(); }
    ~Bracket() { phot_thread_after_paddle(); }
  } bracket;
  std::lock_guard<std::mutex> hold(g_lifecycle);
  std::call_once(g_env_once, default_environment);
  return paddle_infer::CreatePredictor(config);
}

void phot_destroy_locked(std::shared_ptr<paddle_infer::Predictor>& pred,
                         paddle::AnalysisConfig* config) {
  std::lock_guard<std::mutex> hold(g_lifecycle);
  pred.reset(); /* libpaddle's deleter, from the control block CreatePredictor made */
  phot_config_delete(config);
}

/* A shape-cached run holds it too (thread_runs.cc): no creation or teardown under its
 * unlocked walk of Paddle's oneDNN cache. */
void phot_lifecycle_lock() { g_lifecycle.lock(); }
void phot_lifecycle_unlock() { g_lifecycle.unlock(); }
