/*
 * Throughput of lib739kv: `kvbench get|put THREADS SECONDS host:port...`.
 * Each thread runs a tight loop of kv739_get or kv739_put (persistent
 * connections, one request in flight per thread) over a 1000-key set with
 * 128-byte values (written first for GET) and counts the calls that did not fail.
 * Prints one JSON line with the calls per second and the client's own CPU
 * time per call (user + system, all threads: robust to other load on the
 * machine). clients/bench.ts runs it next to the TypeScript client.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib739kv.h"

#define KEYS 1000
#define VALUE_BYTES 128
#define MAX_THREADS 256

static int is_put;
static volatile int stop;
static char value_128[VALUE_BYTES + 1];

typedef struct {
  int index;
  long ok;
  long failed;
} worker;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static void *run(void *p) {
  worker *w = (worker *)p;
  char key[32], out[MAX_VALUE_SIZE + 1];
  unsigned i = (unsigned)w->index * 7919u;
  while (!stop) {
    int rc;
    snprintf(key, sizeof key, "bench-%u", i++ % KEYS);
    rc = is_put ? kv739_put(key, value_128, out) : kv739_get(key, out);
    if (rc == -1) w->failed++;
    else w->ok++;
  }
  return NULL;
}

int main(int argc, char **argv) {
  pthread_t threads[MAX_THREADS];
  worker workers[MAX_THREADS];
  char key[32], out[MAX_VALUE_SIZE + 1];
  int n, i;
  double seconds, start, elapsed, cpu_start, cpu;
  long ok = 0, failed = 0;
  struct timespec pause;
  if (argc < 5 || (strcmp(argv[1], "get") && strcmp(argv[1], "put"))) {
    fprintf(stderr, "usage: kvbench get|put THREADS SECONDS host:port...\n");
    return 2;
  }
  is_put = strcmp(argv[1], "put") == 0;
  n = atoi(argv[2]);
  seconds = atof(argv[3]);
  if (n < 1 || n > MAX_THREADS || seconds <= 0) {
    fprintf(stderr, "THREADS is 1..%d, SECONDS above 0\n", MAX_THREADS);
    return 2;
  }
  memset(value_128, 'v', VALUE_BYTES);
  if (kv739_init(argv + 4) != 0) {
    fprintf(stderr, "kv739_init failed\n");
    return 1;
  }
  for (i = 0; i < KEYS && !is_put; i++) {
    snprintf(key, sizeof key, "bench-%d", i);
    if (kv739_put(key, value_128, out) == -1) {
      fprintf(stderr, "preload failed (error %d)\n", kv739_last_error());
      return 1;
    }
  }
  cpu_start = cpu_s();
  for (i = 0; i < n; i++) {
    workers[i].index = i;
    workers[i].ok = workers[i].failed = 0;
    pthread_create(&threads[i], NULL, run, &workers[i]);
  }
  start = now_s();
  pause.tv_sec = (time_t)seconds;
  pause.tv_nsec = (long)((seconds - (double)pause.tv_sec) * 1e9);
  nanosleep(&pause, NULL);
  stop = 1;
  for (i = 0; i < n; i++) {
    pthread_join(threads[i], NULL);
    ok += workers[i].ok;
    failed += workers[i].failed;
  }
  elapsed = now_s() - start;
  cpu = cpu_s() - cpu_start;
  printf("{\"client\":\"c\",\"op\":\"%s\",\"threads\":%d,\"seconds\":%.2f,\"ops\":%ld,\"failed\":%ld,\"opsPerSecond\":%.0f,\"cpuUsPerOp\":%.1f}\n",
         argv[1], n, elapsed, ok, failed, ok / elapsed, ok ? cpu * 1e6 / ok : 0.0);
  kv739_shutdown();
  return failed ? 1 : 0;
}
