/*
 * A program written only against the original contract (CLIENT-API.md): the
 * four functions, their return codes and the 2049-byte buffers. Usage:
 * contract-example host:port [host:port...]; exit 0 when every check holds.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib739kv.h"

static int failures = 0;

static void check(int ok, const char *what) {
  if (!ok) {
    failures++;
    printf("FAIL %s\n", what);
  }
}

int main(int argc, char **argv) {
  char key[MAX_KEY_SIZE + 1], value[MAX_VALUE_SIZE + 1], old[MAX_VALUE_SIZE + 1];
  int i;
  if (argc < 2) {
    fprintf(stderr, "usage: %s host:port [host:port...]\n", argv[0]);
    return 2;
  }
  check(kv739_init(argv + 1) == 0, "init");
  snprintf(key, sizeof key, "example-%ld-%ld", (long)getpid(), (long)time(NULL));
  check(kv739_get(key, value) == 1, "get of a new key returns 1");
  check(kv739_put(key, "first", old) == 1 && old[0] == '\0', "first put returns 1 and an empty old value");
  check(kv739_put(key, "second", old) == 0 && strcmp(old, "first") == 0, "second put returns 0 and the old value");
  check(kv739_get(key, value) == 0 && strcmp(value, "second") == 0, "get returns 0 and the value");
  for (i = 0; i < MAX_VALUE_SIZE; i++) value[i] = (char)('a' + i % 26);
  value[MAX_VALUE_SIZE] = '\0';
  check(kv739_put(key, value, old) == 0 && strcmp(old, "second") == 0, "put of a 2048-byte value");
  memset(old, 0, sizeof old);
  check(kv739_get(key, old) == 0 && strcmp(old, value) == 0, "get of a 2048-byte value");
  check(kv739_get("bad[key]", value) == -1, "invalid key refused");
  check(kv739_shutdown() == 0, "shutdown");
  check(kv739_init(argv + 1) == 0, "init after shutdown");
  check(kv739_get(key, old) == 0 && strcmp(old, value) == 0, "get after init again");
  check(kv739_shutdown() == 0, "second shutdown");
  printf("%s contract-example (%d failures)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
