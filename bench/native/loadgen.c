/*
 * Closed-loop load generator for the benchmark: one thread per connection,
 * one request in flight per connection, blocking sockets. Speaks kv739
 * (4096-byte frames: GET or PUT) or Redis RESP (GET or SET), so the daemon,
 * the echo servers and Redis are driven by the same client. Prints one JSON
 * object: ops/s over the measured window, latency percentiles, errors.
 *
 * usage: loadgen HOST PORT kv|resp get|put CONNECTIONS WARMUP_S DURATION_S VALUE_BYTES KEYS KEY_PREFIX
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_BYTES 4096
#define OFF_ID 0
#define OFF_COMMAND 8
#define OFF_KEY_SIZE 24
#define OFF_VALUE_SIZE 28
#define OFF_PAYLOAD 40
#define CMD_GET 3
#define CMD_PUT 4
#define CMD_ERROR (-1)
/* latency histogram: 1 µs buckets up to 100 ms, then one overflow bucket */
#define HIST_BUCKETS 100001
#define MAX_CONNECTIONS 1024

enum { PHASE_WARMUP = 0, PHASE_MEASURE = 1, PHASE_STOP = 2 };
static _Atomic int phase = PHASE_WARMUP;

static const char *host;
static int port, resp, put, value_bytes, keys;
static const char *key_prefix;

struct worker {
  pthread_t thread;
  int id;
  uint64_t ops, errors;
  uint32_t *hist;
  int failed;
};

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int read_full(int fd, char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const char *buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, buf + done, n - done);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return -1;
    }
    done += (size_t)w;
  }
  return 0;
}

/* Reads one RESP reply (simple string, error, integer or bulk string); returns 0, or -1 on a closed connection. */
static int read_resp(int fd, char *buf, size_t cap, int *is_error) {
  size_t len = 0;
  for (;;) {
    if (len + 1 >= cap) return -1;
    ssize_t r = read(fd, buf + len, 1);
    if (r <= 0) return -1;
    len++;
    if (len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n') break;
  }
  *is_error = buf[0] == '-';
  if (buf[0] == '$') {
    long n = strtol(buf + 1, NULL, 10);
    if (n >= 0) {
      if ((size_t)n + 2 > cap) return -1;
      return read_full(fd, buf, (size_t)n + 2);
    }
  }
  return 0;
}

static uint32_t xorshift(uint32_t *s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

static void *run(void *arg) {
  struct worker *w = arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, host, &addr.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    w->failed = 1;
    return NULL;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char *req = calloc(1, FRAME_BYTES + 4096), *rep = calloc(1, FRAME_BYTES + 4096);
  char *value = malloc((size_t)value_bytes + 1);
  for (int i = 0; i < value_bytes; i++) value[i] = (char)('a' + i % 26);
  uint32_t rng = 2654435761u * (uint32_t)(w->id + 1);
  int64_t id = 0;
  while (atomic_load_explicit(&phase, memory_order_relaxed) != PHASE_STOP) {
    char key[160];
    int key_len = snprintf(key, sizeof key, "%s%u", key_prefix, xorshift(&rng) % (uint32_t)keys);
    size_t req_len;
    if (resp) {
      if (put)
        req_len = (size_t)sprintf(req, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", key_len, key, value_bytes);
      else
        req_len = (size_t)sprintf(req, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", key_len, key);
      if (put) {
        memcpy(req + req_len, value, (size_t)value_bytes);
        req_len += (size_t)value_bytes;
        memcpy(req + req_len, "\r\n", 2);
        req_len += 2;
      }
    } else {
      memset(req, 0, OFF_PAYLOAD + (size_t)key_len + 2 + (size_t)value_bytes);
      id++;
      int32_t cmd = put ? CMD_PUT : CMD_GET, ks = key_len, vs = put ? value_bytes : 0;
      memcpy(req + OFF_ID, &id, 8);
      memcpy(req + OFF_COMMAND, &cmd, 4);
      memcpy(req + OFF_KEY_SIZE, &ks, 4);
      memcpy(req + OFF_VALUE_SIZE, &vs, 4);
      memcpy(req + OFF_PAYLOAD, key, (size_t)key_len);
      if (put) memcpy(req + OFF_PAYLOAD + key_len + 1, value, (size_t)value_bytes);
      req_len = FRAME_BYTES;
    }
    double sent = now_us();
    int error = 0;
    if (write_full(fd, req, req_len) != 0) break;
    if (resp) {
      if (read_resp(fd, rep, FRAME_BYTES + 4096, &error) != 0) break;
    } else {
      if (read_full(fd, rep, FRAME_BYTES) != 0) break;
      int32_t cmd;
      int64_t rid;
      memcpy(&cmd, rep + OFF_COMMAND, 4);
      memcpy(&rid, rep + OFF_ID, 8);
      /* the echo servers send the request back: its id matches, its command is the request's */
      error = cmd == CMD_ERROR || rid != id;
    }
    if (atomic_load_explicit(&phase, memory_order_relaxed) == PHASE_MEASURE) {
      if (error) {
        w->errors++;
      } else {
        w->ops++;
        double us = now_us() - sent;
        size_t b = us < HIST_BUCKETS - 1 ? (size_t)us : HIST_BUCKETS - 1;
        w->hist[b]++;
      }
    }
  }
  close(fd);
  free(req);
  free(rep);
  free(value);
  return NULL;
}

static double percentile(const uint64_t *hist, uint64_t total, double p) {
  uint64_t want = (uint64_t)(total * p), seen = 0;
  for (size_t b = 0; b < HIST_BUCKETS; b++) {
    seen += hist[b];
    if (seen > want) return (double)b;
  }
  return HIST_BUCKETS - 1;
}

int main(int argc, char **argv) {
  if (argc != 11) {
    fprintf(stderr, "usage: loadgen HOST PORT kv|resp get|put CONNECTIONS WARMUP_S DURATION_S VALUE_BYTES KEYS KEY_PREFIX\n");
    return 2;
  }
  host = argv[1];
  port = atoi(argv[2]);
  resp = strcmp(argv[3], "resp") == 0;
  put = strcmp(argv[4], "put") == 0;
  int connections = atoi(argv[5]);
  double warmup_s = atof(argv[6]), duration_s = atof(argv[7]);
  value_bytes = atoi(argv[8]);
  keys = atoi(argv[9]);
  key_prefix = argv[10];
  if (connections < 1 || connections > MAX_CONNECTIONS || keys < 1 || value_bytes < 0 || value_bytes > 2048) {
    fprintf(stderr, "loadgen: connections 1-%d, keys >= 1, value bytes 0-2048\n", MAX_CONNECTIONS);
    return 2;
  }
  struct worker *workers = calloc((size_t)connections, sizeof *workers);
  for (int i = 0; i < connections; i++) {
    workers[i].id = i;
    workers[i].hist = calloc(HIST_BUCKETS, sizeof(uint32_t));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_create(&workers[i].thread, &attr, run, &workers[i]);
  }
  usleep((useconds_t)(warmup_s * 1e6));
  double start = now_us();
  atomic_store(&phase, PHASE_MEASURE);
  usleep((useconds_t)(duration_s * 1e6));
  atomic_store(&phase, PHASE_STOP);
  double elapsed_s = (now_us() - start) / 1e6;
  uint64_t *hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
  uint64_t ops = 0, errors = 0;
  int failed = 0;
  for (int i = 0; i < connections; i++) {
    pthread_join(workers[i].thread, NULL);
    ops += workers[i].ops;
    errors += workers[i].errors;
    failed += workers[i].failed;
    for (size_t b = 0; b < HIST_BUCKETS; b++) hist[b] += workers[i].hist[b];
  }
  printf("{\"ops\":%llu,\"opsPerSec\":%.1f,\"errors\":%llu,\"failedConnections\":%d,\"p50Us\":%.0f,\"p99Us\":%.0f,\"p999Us\":%.0f,\"elapsedS\":%.3f}\n",
         (unsigned long long)ops, ops / elapsed_s, (unsigned long long)errors, failed, percentile(hist, ops, 0.5), percentile(hist, ops, 0.99),
         percentile(hist, ops, 0.999), elapsed_s);
  return failed == connections ? 1 : 0;
}
