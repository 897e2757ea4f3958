/*
 * Test driver for lib739kv, run by test/clients.test.ts against real daemons
 * and small fake servers: `kvtest MODE host:port...`. Each mode checks one
 * behaviour, prints "FAIL what" for every broken check and "PASS mode" at the
 * end, and exits 1 when anything failed. clients/python/kvtest.py is the same
 * driver for the Python module (same modes, same output).
 */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib739kv.h"

static int failures = 0;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

static void check(int ok, const char *what) {
  if (ok) return;
  pthread_mutex_lock(&report_lock);
  failures++;
  printf("FAIL %s (last error %d)\n", what, kv739_last_error());
  fflush(stdout);
  pthread_mutex_unlock(&report_lock);
}

static char **servers_of(int argc, char **argv) {
  /* argv[2..] followed by the NULL that ends argv */
  (void)argc;
  return argv + 2;
}

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- contract: the four functions and kv739_del on a real daemon ------ */

static void mode_contract(char **servers) {
  char key[MAX_KEY_SIZE + 1], value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1], big[MAX_VALUE_SIZE + 1];
  char long_key[MAX_KEY_SIZE + 1], high[256];
  int i;
  check(kv739_init(servers) == 0, "init");
  snprintf(key, sizeof key, "contract-%ld", (long)getpid());
  strcpy(value, "junk");
  check(kv739_get(key, value) == 1 && value[0] == '\0', "get of a new key returns 1");
  strcpy(old, "junk");
  check(kv739_put(key, "v1", old) == 1 && old[0] == '\0', "first put returns 1, old value empty");
  check(kv739_last_error() == 0, "last error 0 after a call that did not fail");
  check(kv739_put(key, "v2", old) == 0 && strcmp(old, "v1") == 0, "second put returns 0 and the old value");
  check(kv739_get(key, value) == 0 && strcmp(value, "v2") == 0, "get returns the value");
  check(kv739_put(key, "", old) == 0 && strcmp(old, "v2") == 0, "put of an empty value");
  strcpy(value, "junk");
  check(kv739_get(key, value) == 0 && value[0] == '\0', "an empty value is found (0), not missing");
  check(kv739_del(key, old) == 0 && old[0] == '\0', "del of a key with an empty value returns 0");
  check(kv739_get(key, value) == 1, "get after del returns 1");
  check(kv739_del(key, old) == 1 && old[0] == '\0', "del of a missing key returns 1");
  check(kv739_del(key, NULL) == 1, "del with a NULL old_value buffer");

  for (i = 0; i < MAX_KEY_SIZE; i++) long_key[i] = (char)(0x20 + (i * 7) % 95);
  long_key[MAX_KEY_SIZE] = '\0';
  for (i = 0; i < MAX_KEY_SIZE; i++)
    if (long_key[i] == '[' || long_key[i] == ']') long_key[i] = '.';
  memcpy(long_key, key, strlen(key)); /* unique per run */
  for (i = 0; i < MAX_VALUE_SIZE; i++) big[i] = (char)(1 + i % 255); /* every byte but NUL */
  big[MAX_VALUE_SIZE] = '\0';
  check(kv739_put(long_key, big, old) == 1, "put with a 128-byte key and a 2048-byte value");
  memset(value, 'x', sizeof value);
  check(kv739_get(long_key, value) == 0 && memcmp(value, big, MAX_VALUE_SIZE + 1) == 0, "2048 bytes of any non-NUL byte come back unchanged");
  memset(old, 'x', sizeof old);
  check(kv739_put(long_key, "small", old) == 0 && memcmp(old, big, MAX_VALUE_SIZE + 1) == 0, "old value of 2048 bytes handed back whole");
  for (i = 0; i < 255; i++) high[i] = (char)(i + 1);
  high[255] = '\0';
  check(kv739_put(key, high, old) == 1 && kv739_get(key, value) == 0 && strcmp(value, high) == 0, "bytes 0x01-0xff round trip");

  check(kv739_shutdown() == 0, "shutdown");
  check(kv739_get(key, value) == -1 && kv739_last_error() == KV739_ERR_NOT_INITIALIZED, "get after shutdown fails, not initialized");
  check(kv739_shutdown() == -1, "shutdown without a list fails");
  check(kv739_init(servers) == 0, "init again after shutdown");
  check(kv739_get(key, value) == 0 && strcmp(value, high) == 0, "calls work after init again");
  check(kv739_init(servers) == 0, "init twice without shutdown replaces the list");
  check(kv739_get(key, value) == 0, "calls work after the second init");
  check(kv739_shutdown() == 0, "final shutdown");
}

/* ---- invalid: every invalid input is refused with -1, nothing sent ---- */

static void mode_invalid(char **servers) {
  char value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1], long_key[MAX_KEY_SIZE + 2], long_value[MAX_VALUE_SIZE + 2];
  char bad[2];
  char *empty_list[] = {NULL};
  char *bad_lists[][3] = {
      {"127.0.0.1", NULL, NULL},        {"127.0.0.1:", NULL, NULL},     {":7390", NULL, NULL},
      {"127.0.0.1:0", NULL, NULL},      {"127.0.0.1:65536", NULL, NULL}, {"127.0.0.1:73a0", NULL, NULL},
      {"127.0.0.1:123456", NULL, NULL}, {"[::1:7390", NULL, NULL},       {"[::1]7390", NULL, NULL},
      {"bad host:7390", NULL, NULL},    {"", NULL, NULL},                {"127.0.0.1:7390", "nope", NULL},
  };
  char *too_many[KV739_MAX_SERVERS + 2];
  int i, c;

  check(kv739_get("key", value) == -1 && kv739_last_error() == KV739_ERR_NOT_INITIALIZED, "get before init");
  check(kv739_put("key", "v", old) == -1 && kv739_last_error() == KV739_ERR_NOT_INITIALIZED, "put before init");
  check(kv739_init(NULL) == -1, "init(NULL)");
  check(kv739_init(empty_list) == -1, "init of an empty list");
  for (i = 0; i < (int)(sizeof bad_lists / sizeof bad_lists[0]); i++) {
    char what[80];
    snprintf(what, sizeof what, "init of a malformed list #%d (%s)", i, bad_lists[i][0]);
    check(kv739_init(bad_lists[i]) == -1 && kv739_last_error() == KV739_ERR_INVALID_INPUT, what);
  }
  for (i = 0; i <= KV739_MAX_SERVERS; i++) too_many[i] = servers[0];
  too_many[KV739_MAX_SERVERS + 1] = NULL;
  check(kv739_init(too_many) == -1, "init of more than KV739_MAX_SERVERS servers");
  check(kv739_get("key", value) == -1 && kv739_last_error() == KV739_ERR_NOT_INITIALIZED, "a refused init leaves no list");

  check(kv739_init(servers) == 0, "init");
#define REFUSED(call, what) check((call) == -1 && kv739_last_error() == KV739_ERR_INVALID_INPUT, what)
  REFUSED(kv739_get(NULL, value), "get NULL key");
  REFUSED(kv739_get("", value), "get empty key");
  REFUSED(kv739_get("key", NULL), "get NULL value buffer");
  memset(long_key, 'k', MAX_KEY_SIZE + 1);
  long_key[MAX_KEY_SIZE + 1] = '\0';
  REFUSED(kv739_get(long_key, value), "get 129-byte key");
  REFUSED(kv739_put(long_key, "v", old), "put 129-byte key");
  REFUSED(kv739_del(long_key, old), "del 129-byte key");
  for (c = 1; c < 256; c++) {
    char key[4] = {'a', (char)c, 'b', '\0'};
    char what[40];
    if (c >= 0x20 && c <= 0x7e && c != '[' && c != ']') continue;
    snprintf(what, sizeof what, "key with byte 0x%02x", c);
    REFUSED(kv739_get(key, value), what);
    REFUSED(kv739_put(key, "v", old), what);
    REFUSED(kv739_del(key, NULL), what);
  }
  REFUSED(kv739_put(NULL, "v", old), "put NULL key");
  REFUSED(kv739_put("", "v", old), "put empty key");
  REFUSED(kv739_put("key", NULL, old), "put NULL value");
  REFUSED(kv739_put("key", "v", NULL), "put NULL old_value buffer");
  memset(long_value, 'v', MAX_VALUE_SIZE + 1);
  long_value[MAX_VALUE_SIZE + 1] = '\0';
  REFUSED(kv739_put("key", long_value, old), "put 2049-byte value");
  REFUSED(kv739_del(NULL, old), "del NULL key");
  REFUSED(kv739_del("", old), "del empty key");
  bad[0] = '[';
  bad[1] = '\0';
  REFUSED(kv739_get(bad, value), "key '['");
  REFUSED(kv739_set_timeout_ms(0), "timeout 0");
  REFUSED(kv739_set_timeout_ms(-5), "negative timeout");
  REFUSED(kv739_set_timeout_ms(3600001), "timeout over an hour");
  REFUSED(kv739_set_consistency(-1), "consistency -1");
  REFUSED(kv739_set_consistency(4), "consistency 4");
  REFUSED(kv739_set_read_through(2), "read-through 2");
  check(kv739_shutdown() == 0, "shutdown");
}

/* ---- threads: 8 at once, half on the default list, half on their own -- */

#define THREADS 8
#define THREAD_ROUNDS 200

typedef struct {
  int index;
  char *own_list[2]; /* a list of its own (NULL: the process's default list) */
} thread_arg;

static void *thread_main(void *p) {
  thread_arg *a = (thread_arg *)p;
  char key[64], value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1], expect[64];
  int i;
  if (a->own_list[0]) check(kv739_init(a->own_list) == 0, "thread's own init");
  for (i = 0; i < THREAD_ROUNDS; i++) {
    snprintf(key, sizeof key, "thread-%d-%d", a->index, i % 10);
    snprintf(expect, sizeof expect, "value-%d-%d", a->index, i);
    if (kv739_put(key, expect, old) == -1) check(0, "put from a thread");
    if (kv739_get(key, value) != 0 || strcmp(value, expect) != 0) check(0, "a thread reads back its own value");
    if (i % 50 == 49 && kv739_del(key, old) != 0) check(0, "del from a thread");
  }
  if (a->own_list[0]) check(kv739_shutdown() == 0, "thread's own shutdown");
  return NULL;
}

static void mode_threads(char **servers) {
  pthread_t threads[THREADS];
  thread_arg args[THREADS];
  char value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1];
  int i;
  check(kv739_init(servers) == 0, "init");
  check(kv739_put("threads-main", "before", old) != -1, "put before the threads");
  for (i = 0; i < THREADS; i++) {
    args[i].index = i;
    /* odd threads give their own list: the second server argument if any, else the same */
    args[i].own_list[0] = i % 2 ? (servers[1] ? servers[1] : servers[0]) : NULL;
    args[i].own_list[1] = NULL;
    if (pthread_create(&threads[i], NULL, thread_main, &args[i]) != 0) check(0, "pthread_create");
  }
  for (i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
  check(kv739_get("threads-main", value) == 0 && strcmp(value, "before") == 0, "the default list survives the threads' own shutdowns");
  check(kv739_shutdown() == 0, "shutdown");
}

/* ---- fork: parent and child both use the library at once -------------- */

#define FORK_ROUNDS 400

static void fork_loop(const char *who) {
  char key[64], value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1], expect[64];
  int i;
  for (i = 0; i < FORK_ROUNDS; i++) {
    snprintf(key, sizeof key, "fork-%s-%d", who, i % 7);
    snprintf(expect, sizeof expect, "%s-%d", who, i);
    if (kv739_put(key, expect, old) == -1) check(0, who);
    if (kv739_get(key, value) != 0 || strcmp(value, expect) != 0) check(0, who);
  }
}

static void mode_fork(char **servers) {
  char value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1];
  int status = 0, i;
  pid_t child;
  check(kv739_init(servers) == 0, "init");
  /* leave pooled connections behind for the child to inherit */
  for (i = 0; i < 20; i++) check(kv739_put("fork-before", "parent", old) != -1, "put before fork");
  fflush(stdout);
  child = fork();
  if (child == 0) {
    fork_loop("child");
    check(kv739_get("fork-before", value) == 0 && strcmp(value, "parent") == 0, "child reads the parent's write");
    fflush(stdout);
    _exit(failures ? 1 : 0);
  }
  check(child > 0, "fork");
  fork_loop("parent");
  check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's calls all worked");
  check(kv739_get("fork-child-0", value) == 0 && strncmp(value, "child-", 6) == 0, "parent reads the child's write");
  check(kv739_shutdown() == 0, "shutdown");
}

/* ---- loop: calls until told to stop (the test kills and stops servers) - */

/*
 * Prints "ops N failures F slowest_ms M" every 50 calls. Commands on stdin:
 * "check KEY" (put then get KEY: "checked ok" or "checked fail"), "quit".
 */
static void mode_loop(char **servers) {
  char key[64], value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1], line[256];
  long ops = 0, failed = 0;
  long long slowest_us = 0;
  struct pollfd in;
  check(kv739_init(servers) == 0, "init");
  in.fd = 0;
  in.events = POLLIN;
  for (;;) {
    long long start = now_us(), took;
    int rc;
    snprintf(key, sizeof key, "loop-%ld", ops % 100);
    rc = ops % 2 ? kv739_get(key, value) : kv739_put(key, "loop-value", old);
    took = now_us() - start;
    if (took > slowest_us) slowest_us = took;
    if (rc == -1) {
      failed++;
      printf("call failed: error %d\n", kv739_last_error());
    }
    ops++;
    if (ops % 50 == 0) {
      printf("ops %ld failures %ld slowest_ms %lld\n", ops, failed, slowest_us / 1000);
      fflush(stdout);
    }
    if (poll(&in, 1, 0) > 0) {
      if (!fgets(line, sizeof line, stdin)) break;
      line[strcspn(line, "\n")] = '\0';
      if (strcmp(line, "quit") == 0) break;
      if (strncmp(line, "check ", 6) == 0) {
        int ok = kv739_put(line + 6, "checked", old) != -1 && kv739_get(line + 6, value) == 0 && strcmp(value, "checked") == 0;
        printf("checked %s\n", ok ? "ok" : "fail");
        fflush(stdout);
      }
    }
  }
  printf("done ops %ld failures %ld slowest_ms %lld\n", ops, failed, slowest_us / 1000);
  check(failed == 0, "no call of the loop failed");
  kv739_shutdown();
}

/* ---- flags: consistency and read-through bits (fake server echoes the flag) */

static void *flags_other_thread(void *p) {
  char value[MAX_VALUE_SIZE + 1];
  (void)p;
  /* a new thread starts with the defaults, whatever the main thread set */
  check(kv739_get("flag-thread", value) == 0 && strcmp(value, "0") == 0, "a new thread sends flag 0");
  check(kv739_set_consistency(KV739_CONSISTENCY_ONE) == 0, "setter in a thread");
  check(kv739_get("flag-thread", value) == 0 && strcmp(value, "2") == 0, "the thread's own level");
  return NULL;
}

static void mode_flags(char **servers) {
  char value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1], expect[16], what[80];
  int level, rt;
  check(kv739_init(servers) == 0, "init");
  for (level = 0; level <= 3; level++) {
    for (rt = 0; rt <= 1; rt++) {
      check(kv739_set_consistency(level) == 0 && kv739_set_read_through(rt) == 0, "setters");
      snprintf(expect, sizeof expect, "%d", (level << 1) | rt);
      snprintf(what, sizeof what, "flag of level %d read-through %d", level, rt);
      check(kv739_get("flag-get", value) == 0 && strcmp(value, expect) == 0, what);
      check(kv739_put("flag-put", "v", old) == 0 && strcmp(old, expect) == 0, what);
      check(kv739_del("flag-del", old) == 0 && strcmp(old, expect) == 0, what);
    }
  }
  {
    pthread_t other;
    check(kv739_set_consistency(KV739_CONSISTENCY_ALL) == 0 && kv739_set_read_through(1) == 0, "setters");
    if (pthread_create(&other, NULL, flags_other_thread, NULL) == 0) pthread_join(other, NULL);
    else check(0, "pthread_create");
    check(kv739_get("flag-get", value) == 0 && strcmp(value, "7") == 0, "settings are the calling thread's own");
  }
  check(kv739_shutdown() == 0, "shutdown");
}

/* ---- levels: today's daemon accepts every level and read-through ------ */

static void mode_levels(char **servers) {
  char key[64], value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1], what[80];
  int level;
  check(kv739_init(servers) == 0, "init");
  for (level = 0; level <= 3; level++) {
    snprintf(key, sizeof key, "level-%d", level);
    snprintf(what, sizeof what, "calls at level %d with read-through", level);
    check(kv739_set_consistency(level) == 0 && kv739_set_read_through(1) == 0, "setters");
    check(kv739_put(key, "v", old) == 1 && kv739_get(key, value) == 0 && strcmp(value, "v") == 0 &&
              kv739_del(key, old) == 0 && kv739_get(key, value) == 1,
          what);
  }
  check(kv739_shutdown() == 0, "shutdown");
}

/* ---- errors: ERROR replies that move on and those that do not --------- */

static void mode_errors(char **servers) {
  static const struct {
    const char *key;
    int rc;
    int error;
  } cases[] = {
      {"err-11", 0, 0}, /* TOO_MANY_CONNECTIONS: next server */
      {"err-12", 0, 0}, /* SHUTTING_DOWN: next server */
      {"err-14", 0, 0}, /* NO_QUORUM: nothing applied, next server */
      {"err-13", -1, KV739_ERR_OUTCOME_UNKNOWN}, /* may have been applied: not retried */
      {"err-7", -1, 7},                           /* any other ERROR: the same everywhere */
      {"err-9", -1, KV739_ERR_STORE_FAILED},
  };
  char old[MAX_VALUE_SIZE + 1], value[MAX_VALUE_SIZE + 1], what[80];
  int i;
  /* cases[0..2] are the refusals */
  for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
    int rc;
    /* a fresh list each time, so the call starts at the first server */
    check(kv739_init(servers) == 0, "init");
    rc = kv739_put((char *)cases[i].key, "v", old);
    snprintf(what, sizeof what, "put %s: rc %d, expected %d", cases[i].key, rc, cases[i].rc);
    check(rc == cases[i].rc && kv739_last_error() == cases[i].error, what);
    if (rc == 0) check(strcmp(old, "second") == 0, "answered by the second server");
    check(kv739_init(servers) == 0, "init");
    rc = kv739_get((char *)cases[i].key, value);
    snprintf(what, sizeof what, "get %s: rc %d, expected %d", cases[i].key, rc, cases[i].rc);
    check(rc == cases[i].rc && kv739_last_error() == cases[i].error, what);
  }
  {
    /* with no other server, the refusal is the call's error */
    char *only_first[2];
    only_first[0] = servers[0];
    only_first[1] = NULL;
    for (i = 0; i < 3; i++) {
      check(kv739_init(only_first) == 0, "init");
      snprintf(what, sizeof what, "put %s to the first server alone", cases[i].key);
      check(kv739_put((char *)cases[i].key, "v", old) == -1 && kv739_last_error() == atoi(cases[i].key + 4), what);
    }
  }
  check(kv739_shutdown() == 0, "shutdown");
}

/* ---- idle: a pooled connection the server closed is replaced silently -- */

static void mode_idle(char **servers) {
  char value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1], line[64];
  check(kv739_init(servers) == 0, "init");
  check(kv739_put("idle", "v", old) != -1, "put before the idle time");
  printf("waiting\n");
  fflush(stdout);
  if (!fgets(line, sizeof line, stdin)) check(0, "read go");
  check(kv739_get("idle", value) == 0 && strcmp(value, "v") == 0, "get after the server closed the idle connection");
  check(kv739_shutdown() == 0, "shutdown");
}

/* ---- reinit: shutdown, then init with another list ------------------- */

static void mode_reinit(char **servers) {
  char *first[2], *second[2];
  char key[64], value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1];
  int round;
  first[0] = servers[0];
  second[0] = servers[1];
  first[1] = second[1] = NULL;
  check(servers[0] && servers[1], "two servers given");
  if (!servers[1]) return;
  snprintf(key, sizeof key, "reinit-%ld", (long)getpid());
  for (round = 0; round < 3; round++) {
    check(kv739_init(first) == 0, "init first");
    check(kv739_put(key, "first", old) != -1, "put on the first server");
    check(kv739_shutdown() == 0, "shutdown");
    check(kv739_get(key, value) == -1, "no calls between shutdown and init");
    check(kv739_init(second) == 0, "init second");
    check(kv739_get(key, value) == 1, "the second list's server is used (it does not have the key)");
    check(kv739_shutdown() == 0, "shutdown second");
  }
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  char **servers = servers_of(argc, argv);
  if (argc < 3) {
    fprintf(stderr, "usage: kvtest MODE host:port...\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strcmp(mode, "contract") == 0) mode_contract(servers);
  else if (strcmp(mode, "invalid") == 0) mode_invalid(servers);
  else if (strcmp(mode, "threads") == 0) mode_threads(servers);
  else if (strcmp(mode, "fork") == 0) mode_fork(servers);
  else if (strcmp(mode, "loop") == 0) mode_loop(servers);
  else if (strcmp(mode, "flags") == 0) mode_flags(servers);
  else if (strcmp(mode, "levels") == 0) mode_levels(servers);
  else if (strcmp(mode, "errors") == 0) mode_errors(servers);
  else if (strcmp(mode, "idle") == 0) mode_idle(servers);
  else if (strcmp(mode, "reinit") == 0) mode_reinit(servers);
  else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  printf("%s %s (%d failures)\n", failures ? "FAIL" : "PASS", mode, failures);
  return failures ? 1 : 0;
}
