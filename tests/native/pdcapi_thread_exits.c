/* Threads that exit while others run: pdcapi must keep every answer exact and never crash.
 * Usage: pdcapi_thread_exits PROG PARAMS SECONDS [CACHE_CAPACITY]
 *   - STEADY threads take whichever pooled predictor is free, run it, compare bit for bit;
 *   - a spawner starts short-lived threads one after another, taking turns: one runs two pooled
 *     predictors (Paddle's exit of such a thread, and pdcapi's kernel clearing, touch the
 *     process-wide oneDNN cache the steady threads are using), the next clones the root and
 *     destroys the clone (creation and teardown write that cache too), then each exits;
 *   - CACHE_CAPACITY, when given, is every predictor's oneDNN shape cache (0: pdcapi's default,
 *     above 0: Paddle's walk of the cache without its lock after every run; thread_runs.cc).
 * Prints "exits ok runs=N exits=M" or the first failure and exits 1 (a crash is a signal). */
#include <stdlib.h>
#include <time.h>

#define POOL 4
enum { STEADY = 3 };
#include "pdcapi_pool.h"

static long exits;

static int run_one(const char *who) {
  float got[BATCH * OUT];
  PD_Predictor *p = take();
  if (!p) return 0;
  int ok = infer(p, got);
  give(p);
  if (!ok) fail(who);
  else if (memcmp(got, want, sizeof got) != 0) fail("output differs from the root's");
  __atomic_add_fetch(&runs, 1, __ATOMIC_RELAXED);
  return ok;
}

static void *steady(void *arg) {
  (void)arg;
  while (!stop) run_one("steady: infer");
  return NULL;
}

static void *short_lived(void *arg) {
  (void)arg;
  PD_Predictor *a = take(), *b = take(); /* two different predictors on this thread */
  float got[BATCH * OUT];
  for (int i = 0; a && b && i < 2; i++) {
    if (!infer(a, got) || memcmp(got, want, sizeof got) != 0) fail("short-lived: a");
    if (!infer(b, got) || memcmp(got, want, sizeof got) != 0) fail("short-lived: b");
  }
  if (a) give(a);
  if (b) give(b);
  return NULL;
}

static void *clone_and_exit(void *arg) {
  (void)arg;
  PD_Predictor *c = PD_PredictorClone(root);
  if (!c) fail("short-lived: clone");
  PD_PredictorDestroy(c);
  return NULL;
}

static void *spawner(void *arg) {
  (void)arg;
  while (!stop) {
    pthread_t t;
    pthread_create(&t, NULL, exits % 2 ? clone_and_exit : short_lived, NULL);
    pthread_join(t, NULL);
    exits++;
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  if (argc > 4) cache_capacity = atoi(argv[4]);
  if (!start_pool("exits", argv[1], argv[2])) return 1;
  pthread_t th[STEADY + 1];
  for (int i = 0; i < STEADY; i++) pthread_create(&th[i], NULL, steady, NULL);
  pthread_create(&th[STEADY], NULL, spawner, NULL);
  run_then_stop(atoi(argv[3]));
  for (int i = 0; i <= STEADY; i++) pthread_join(th[i], NULL);
  end_pool();
  if (failed) {
    printf("exits FAILED: %s (runs=%ld exits=%ld)\n", why, runs, exits);
    return 1;
  }
  printf("exits ok runs=%ld exits=%ld\n", runs, exits);
  return 0;
}
