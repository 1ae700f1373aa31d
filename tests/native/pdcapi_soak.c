/* Soak for pdcapi's concurrency: predictors used from changing threads while others are created
 * and destroyed. Usage: pdcapi_soak PROG PARAMS SECONDS
 *   - a shared stack of POOL predictors: WORKERS threads each take whichever is free, run it on a
 *     fixed input, compare with the root's answer bit for bit, and put it back (so every
 *     predictor runs on many threads, as under Go's scheduler or a Python executor);
 *   - a churn thread clones the root, runs the clone once, destroys it, and every few rounds
 *     replaces a pooled predictor with a fresh clone (create and destroy under load).
 * Prints "soak ok runs=N churn=M rss_kb_start=A rss_kb_end=B" or the first failure, exit 1. */
#include <stdlib.h>
#include <time.h>

#define POOL 3
enum { WORKERS = 4 };
#include "pdcapi_pool.h"

static long churns;

static void *worker(void *arg) {
  (void)arg;
  float got[BATCH * OUT];
  while (!stop) {
    PD_Predictor *p = take();
    if (!p) break;
    int ok = infer(p, got);
    give(p);
    if (!ok) fail("worker: infer");
    else if (memcmp(got, want, sizeof got) != 0) fail("worker: output differs from the root's");
    __atomic_add_fetch(&runs, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void *churn(void *arg) {
  (void)arg;
  float got[BATCH * OUT];
  while (!stop) {
    PD_Predictor *c = PD_PredictorClone(root);
    if (!c) {
      fail("churn: clone");
      break;
    }
    if (!infer(c, got) || memcmp(got, want, sizeof got) != 0) fail("churn: new clone's answer");
    if (++churns % 4 == 0) { /* swap it into the pool; destroy the one it replaces */
      PD_Predictor *old = take();
      give(c);
      c = old;
    }
    PD_PredictorDestroy(c);
  }
  return NULL;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
  if (f) fclose(f);
  return kb;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  if (!start_pool("soak", argv[1], argv[2])) return 1;
  long rss0 = rss_kb();
  pthread_t th[WORKERS + 1];
  for (int i = 0; i < WORKERS; i++) pthread_create(&th[i], NULL, worker, NULL);
  pthread_create(&th[WORKERS], NULL, churn, NULL);
  run_then_stop(atoi(argv[3]));
  for (int i = 0; i <= WORKERS; i++) pthread_join(th[i], NULL);
  long rss1 = rss_kb();
  end_pool();
  if (failed) {
    printf("soak FAILED: %s (runs=%ld churn=%ld)\n", why, runs, churns);
    return 1;
  }
  printf("soak ok runs=%ld churn=%ld rss_kb_start=%ld rss_kb_end=%ld\n", runs, churns, rss0, rss1);
  return 0;
}
