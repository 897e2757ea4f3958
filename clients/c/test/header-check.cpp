// The header compiles as C++ (extern "C") and a C++ program links against the C library.
#include <cstdio>

#include "lib739kv.h"

int main() {
  char key[] = "cxx-header-check";
  char value[MAX_VALUE_SIZE + 1];
  // not initialized: every call fails with -1 and nothing is sent
  int rc = kv739_get(key, value);
  std::printf("%s header-cxx-check\n", rc == -1 && kv739_last_error() == KV739_ERR_NOT_INITIALIZED ? "PASS" : "FAIL");
  return rc == -1 ? 0 : 1;
}
