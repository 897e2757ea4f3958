/*
 * lib739kv: the kv739 client library (see include/lib739kv.h for the API and
 * its behaviour). One request per call on a persistent connection taken from
 * a per-server pool, so that threads never share a socket mid-request; the
 * 4096-byte frame is the one of docs/protocol.md, little-endian.
 *
 * Locking: one process-wide mutex guards the lists, their pools and their
 * servers' backoff state. It is held only to take or return a connection and
 * to update a server's state, never across I/O.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include "lib739kv.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---- Wire format (docs/protocol.md) ------------------------------------ */

#define FRAME_BYTES 4096
#define HEADER_BYTES 40
#define PAYLOAD_BYTES (FRAME_BYTES - HEADER_BYTES)

#define OFF_ID 0
#define OFF_COMMAND 8
#define OFF_FLAG 12
#define OFF_PARAM 16
#define OFF_KEY_SIZE 24
#define OFF_VALUE_SIZE 28

#define CMD_OK 1
#define CMD_GET 3
#define CMD_PUT 4
#define CMD_NO_VAL 5
#define CMD_DEL 6
#define CMD_ERROR (-1)

#define FLAG_READ_THROUGH 1u
#define FLAG_CONSISTENCY_SHIFT 1
#define FLAG_CONSISTENCY_MASK (3u << FLAG_CONSISTENCY_SHIFT)

/* ---- Limits ------------------------------------------------------------ */

#define DEFAULT_TIMEOUT_MS 2000
#define MAX_TIMEOUT_MS 3600000
#define BACKOFF_INITIAL_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_HOST_BYTES 255
#define MAX_IDLE_CONNECTIONS_PER_SERVER 256

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE is set on each socket instead */
#endif

/* ---- State ------------------------------------------------------------- */

typedef struct kv_conn {
  int fd;
  pid_t owner_pid;     /* the process that opened it; a forked child never uses it */
  int io_timeout_ms;   /* SO_RCVTIMEO/SO_SNDTIMEO currently set on fd (0: none yet) */
  int64_t next_id;
  struct kv_conn *next;
} kv_conn;

typedef struct {
  char host[MAX_HOST_BYTES + 1];
  char port[6];
  int failures;          /* consecutive failures; sets the backoff */
  int64_t retry_at_ms;   /* monotonic time before which the server is skipped */
  kv_conn *idle;         /* pool of connections not in use */
  int idle_count;
} kv_server;

typedef struct {
  int refs;              /* thread bindings + the default slot + calls in progress */
  int shut;              /* kv739_shutdown was called on it */
  int preferred;         /* index of the server that answered last */
  int default_timeout_ms;
  int server_count;
  kv_server servers[KV739_MAX_SERVERS];
} kv_list;

typedef struct {
  kv_list *list;         /* the list this thread gave kv739_init (a reference), or NULL */
  int timeout_ms;        /* 0: the list's default */
  unsigned flag;         /* consistency bits and read-through, sent with every request */
  int last_error;
} kv_thread;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static kv_list *g_default;    /* a reference; see the header for which list this is */
static pid_t g_pid;           /* this process; updated in a forked child */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_thread_key;
static int g_key_ok;

/* ---- Helpers ----------------------------------------------------------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_le(unsigned char *p, uint64_t v, int bytes) {
  int i;
  for (i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  int i;
  for (i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static int32_t get_i32(const unsigned char *p) { return (int32_t)(uint32_t)get_le(p, 4); }

static void close_conn(kv_conn *c) {
  if (!c) return;
  close(c->fd);
  free(c);
}

static void drop_idle(kv_server *s) {
  while (s->idle) {
    kv_conn *c = s->idle;
    s->idle = c->next;
    close_conn(c);
  }
  s->idle_count = 0;
}

/* Call with g_lock held. */
static void list_unref_locked(kv_list *l) {
  int i;
  if (--l->refs > 0) return;
  for (i = 0; i < l->server_count; i++) drop_idle(&l->servers[i]);
  free(l);
}

static void thread_state_free(void *p) {
  kv_thread *t = (kv_thread *)p;
  pthread_mutex_lock(&g_lock);
  if (t->list) list_unref_locked(t->list);
  pthread_mutex_unlock(&g_lock);
  free(t);
}

/* fork(): the child must not find the lock held by a thread it does not have. */
static void atfork_prepare(void) { pthread_mutex_lock(&g_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&g_lock); }
static void atfork_child(void) {
  g_pid = getpid();
  pthread_mutex_unlock(&g_lock); /* taken by this same thread in atfork_prepare */
}

static void init_once(void) {
  g_pid = getpid();
  g_key_ok = pthread_key_create(&g_thread_key, thread_state_free) == 0;
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static kv_thread *thread_state(void) {
  kv_thread *t;
  pthread_once(&g_once, init_once);
  if (!g_key_ok) return NULL;
  t = (kv_thread *)pthread_getspecific(g_thread_key);
  if (t) return t;
  t = (kv_thread *)calloc(1, sizeof *t);
  if (!t) return NULL;
  if (pthread_setspecific(g_thread_key, t) != 0) {
    free(t);
    return NULL;
  }
  return t;
}

static int fail(kv_thread *t, int error) {
  if (t) t->last_error = error;
  return -1;
}

/* ---- Server list ------------------------------------------------------- */

/* "host:port" or "[v6]:port" into s; 0 or -1. */
static int parse_server(const char *text, kv_server *s) {
  const char *host = text, *host_end, *port;
  size_t host_len, port_len, i;
  long port_value = 0;
  if (text[0] == '[') {
    host = text + 1;
    host_end = strchr(host, ']');
    if (!host_end || host_end[1] != ':') return -1;
    port = host_end + 2;
  } else {
    host_end = strrchr(text, ':');
    if (!host_end) return -1;
    port = host_end + 1;
  }
  host_len = (size_t)(host_end - host);
  port_len = strlen(port);
  if (host_len == 0 || host_len > MAX_HOST_BYTES || port_len == 0 || port_len > 5) return -1;
  for (i = 0; i < host_len; i++) {
    unsigned char ch = (unsigned char)host[i];
    if (ch <= 0x20 || ch >= 0x7f) return -1;
  }
  for (i = 0; i < port_len; i++) {
    if (port[i] < '0' || port[i] > '9') return -1;
    port_value = port_value * 10 + (port[i] - '0');
  }
  if (port_value < 1 || port_value > 65535) return -1;
  memcpy(s->host, host, host_len);
  s->host[host_len] = '\0';
  memcpy(s->port, port, port_len);
  s->port[port_len] = '\0';
  return 0;
}

static int timeout_from_env(void) {
  const char *v = getenv("KV739_TIMEOUT_MS");
  char *end;
  long ms;
  if (!v || !*v) return DEFAULT_TIMEOUT_MS;
  errno = 0;
  ms = strtol(v, &end, 10);
  if (errno || *end || ms < 1 || ms > MAX_TIMEOUT_MS) return DEFAULT_TIMEOUT_MS;
  return (int)ms;
}

int kv739_init(char **server_list) {
  kv_thread *t = thread_state();
  kv_list *l, *old;
  int n = 0;
  if (!t) return -1;
  if (!server_list || !server_list[0]) return fail(t, KV739_ERR_INVALID_INPUT);
  l = (kv_list *)calloc(1, sizeof *l);
  if (!l) return fail(t, KV739_ERR_NO_MEMORY);
  for (n = 0; server_list[n]; n++) {
    if (n == KV739_MAX_SERVERS || parse_server(server_list[n], &l->servers[n]) != 0) {
      free(l);
      return fail(t, KV739_ERR_INVALID_INPUT);
    }
  }
  l->server_count = n;
  l->default_timeout_ms = timeout_from_env();
  l->refs = 1; /* the thread's binding */

  pthread_mutex_lock(&g_lock);
  old = t->list;
  t->list = l;
  if (!g_default || g_default == old) {
    if (g_default) list_unref_locked(g_default);
    g_default = l;
    l->refs++;
  }
  if (old) list_unref_locked(old);
  pthread_mutex_unlock(&g_lock);
  t->last_error = 0;
  return 0;
}

int kv739_shutdown(void) {
  kv_thread *t = thread_state();
  kv_list *l;
  int i;
  if (!t) return -1;
  pthread_mutex_lock(&g_lock);
  l = t->list ? t->list : g_default;
  if (!l) {
    pthread_mutex_unlock(&g_lock);
    return fail(t, KV739_ERR_NOT_INITIALIZED);
  }
  l->refs++; /* held while it is taken out of its slots */
  l->shut = 1;
  for (i = 0; i < l->server_count; i++) drop_idle(&l->servers[i]);
  if (t->list == l) {
    t->list = NULL;
    list_unref_locked(l);
  }
  if (g_default == l) {
    g_default = NULL;
    list_unref_locked(l);
  }
  list_unref_locked(l);
  pthread_mutex_unlock(&g_lock);
  t->last_error = 0;
  return 0;
}

/* ---- Settings ---------------------------------------------------------- */

int kv739_set_timeout_ms(int timeout_ms) {
  kv_thread *t = thread_state();
  if (!t) return -1;
  if (timeout_ms < 1 || timeout_ms > MAX_TIMEOUT_MS) return fail(t, KV739_ERR_INVALID_INPUT);
  t->timeout_ms = timeout_ms;
  return 0;
}

int kv739_set_consistency(int level) {
  kv_thread *t = thread_state();
  if (!t) return -1;
  if (level < KV739_CONSISTENCY_DEFAULT || level > KV739_CONSISTENCY_ALL) return fail(t, KV739_ERR_INVALID_INPUT);
  t->flag = (t->flag & ~FLAG_CONSISTENCY_MASK) | ((unsigned)level << FLAG_CONSISTENCY_SHIFT);
  return 0;
}

int kv739_set_read_through(int on) {
  kv_thread *t = thread_state();
  if (!t) return -1;
  if (on != 0 && on != 1) return fail(t, KV739_ERR_INVALID_INPUT);
  t->flag = on ? (t->flag | FLAG_READ_THROUGH) : (t->flag & ~FLAG_READ_THROUGH);
  return 0;
}

int kv739_last_error(void) {
  kv_thread *t = thread_state();
  return t ? t->last_error : KV739_ERR_NO_MEMORY;
}

/* ---- Connections ------------------------------------------------------- */

/*
 * Bounds the next blocking send or recv by the time left (SO_RCVTIMEO and
 * SO_SNDTIMEO). The options change only when the current bound is longer
 * than what is left, or (raise = 1, before a request) shorter, by more than
 * the slack, so that a reused connection with a steady timeout costs no
 * extra system calls; a wait may overrun the deadline by the slack.
 */
#define IO_TIMEOUT_SLACK_MS 10
static int bound_io(kv_conn *c, int64_t left_ms, int raise) {
  struct timeval tv;
  int ms = left_ms < 1 ? 1 : (int)left_ms;
  if (c->io_timeout_ms != 0 && c->io_timeout_ms <= ms + IO_TIMEOUT_SLACK_MS && (!raise || c->io_timeout_ms + IO_TIMEOUT_SLACK_MS >= ms)) return 0;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return -1;
  if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) return -1;
  c->io_timeout_ms = ms;
  return 0;
}

/* Non-blocking connect bounded by the deadline; the socket is left blocking. */
static int connect_addr(const struct addrinfo *a, int64_t deadline_ms) {
  int fd, flags, err = 0, one = 1;
  socklen_t len = sizeof err;
  fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
  if (fd < 0) return -1;
  fcntl(fd, F_SETFD, FD_CLOEXEC);
#ifdef SO_NOSIGPIPE
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) goto fail;
  if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
    struct pollfd p;
    int r;
    if (errno != EINPROGRESS) goto fail;
    p.fd = fd;
    p.events = POLLOUT;
    for (;;) {
      int64_t left = deadline_ms - now_ms();
      if (left <= 0) goto fail;
      r = poll(&p, 1, (int)left);
      if (r > 0) break;
      if (r == 0 || errno != EINTR) goto fail;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) goto fail;
  }
  if (fcntl(fd, F_SETFL, flags) != 0) goto fail;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
fail:
  close(fd);
  return -1;
}

/* A new connection to s, trying each address of its name in turn. */
static kv_conn *open_conn(const kv_server *s, int64_t deadline_ms) {
  struct addrinfo hints, *res = NULL, *a;
  kv_conn *c;
  int fd = -1;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  if (getaddrinfo(s->host, s->port, &hints, &res) != 0) return NULL;
  for (a = res; a && fd < 0; a = a->ai_next) {
    if (now_ms() >= deadline_ms) break;
    fd = connect_addr(a, deadline_ms);
  }
  freeaddrinfo(res);
  if (fd < 0) return NULL;
  c = (kv_conn *)calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return NULL;
  }
  c->fd = fd;
  c->owner_pid = g_pid;
  c->next_id = 1;
  return c;
}

static kv_conn *pool_take(kv_list *l, int index) {
  kv_server *s = &l->servers[index];
  kv_conn *c;
  pthread_mutex_lock(&g_lock);
  while ((c = s->idle) != NULL) {
    s->idle = c->next;
    s->idle_count--;
    if (c->owner_pid == g_pid) break;
    /* the parent's socket: closing our copy leaves the parent's connection open */
    close_conn(c);
  }
  pthread_mutex_unlock(&g_lock);
  return c;
}

static void pool_return(kv_list *l, int index, kv_conn *c) {
  kv_server *s = &l->servers[index];
  pthread_mutex_lock(&g_lock);
  if (l->shut || s->idle_count >= MAX_IDLE_CONNECTIONS_PER_SERVER || c->owner_pid != g_pid) {
    pthread_mutex_unlock(&g_lock);
    close_conn(c);
    return;
  }
  c->next = s->idle;
  s->idle = c;
  s->idle_count++;
  pthread_mutex_unlock(&g_lock);
}

/* ---- One request ------------------------------------------------------- */

enum { IO_OK, IO_FAILED, IO_TIMEOUT };

/*
 * Sends the frame and reads one reply frame before the deadline.
 * *received says whether any reply byte arrived.
 */
static int exchange(kv_conn *c, const unsigned char *request, unsigned char *reply, int64_t deadline_ms, int *received) {
  size_t sent = 0, got = 0;
  *received = 0;
  while (sent < FRAME_BYTES) {
    int64_t left = deadline_ms - now_ms();
    ssize_t n;
    if (left <= 0) return IO_TIMEOUT;
    if (bound_io(c, left, sent == 0) != 0) return IO_FAILED;
    n = send(c->fd, request + sent, FRAME_BYTES - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return IO_TIMEOUT;
    } else {
      return IO_FAILED;
    }
  }
  while (got < FRAME_BYTES) {
    int64_t left = deadline_ms - now_ms();
    ssize_t n;
    if (left <= 0) return IO_TIMEOUT;
    if (bound_io(c, left, 0) != 0) return IO_FAILED;
    n = recv(c->fd, reply + got, FRAME_BYTES - got, 0);
    if (n > 0) {
      got += (size_t)n;
      *received = 1;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return IO_TIMEOUT;
    } else {
      return IO_FAILED; /* closed or reset */
    }
  }
  return IO_OK;
}

enum { ATTEMPT_OK, ATTEMPT_NEXT, ATTEMPT_FINAL };

/*
 * One request to one server. ATTEMPT_OK: reply holds OK or NO_VAL.
 * ATTEMPT_NEXT: try the next server (*error says why). ATTEMPT_FINAL: the
 * server answered with an ERROR that another server would answer alike, or
 * that must not be retried (*error is its code).
 */
static int attempt(kv_list *l, int index, unsigned char *request, unsigned char *reply, int timeout_ms, int *error) {
  int64_t deadline_ms = now_ms() + timeout_ms;
  kv_conn *c = pool_take(l, index);
  int reused = c != NULL, received, r;
  int32_t command, key_size, value_size;

  if (!c) c = open_conn(&l->servers[index], deadline_ms);
  if (!c) {
    *error = KV739_ERR_UNAVAILABLE;
    return ATTEMPT_NEXT;
  }
  put_le(request + OFF_ID, (uint64_t)c->next_id, 8);
  r = exchange(c, request, reply, deadline_ms, &received);
  if (r == IO_FAILED && reused && !received) {
    /*
     * A pooled connection the server had closed (idle timeout, restart):
     * connect again once. If the server died after reading the request, the
     * new connection is refused and the call moves on.
     */
    close_conn(c);
    c = open_conn(&l->servers[index], deadline_ms);
    if (!c) {
      *error = KV739_ERR_UNAVAILABLE;
      return ATTEMPT_NEXT;
    }
    put_le(request + OFF_ID, (uint64_t)c->next_id, 8);
    r = exchange(c, request, reply, deadline_ms, &received);
  }
  if (r != IO_OK) {
    close_conn(c);
    *error = KV739_ERR_UNAVAILABLE;
    return ATTEMPT_NEXT;
  }

  command = get_i32(reply + OFF_COMMAND);
  key_size = get_i32(reply + OFF_KEY_SIZE);
  value_size = get_i32(reply + OFF_VALUE_SIZE);
  if (command == CMD_ERROR && get_le(reply + OFF_ID, 8) == 0 && get_le(reply + OFF_PARAM, 8) == KV739_ERR_TOO_MANY_CONNECTIONS) {
    /* sent with id 0 as the connection is accepted, then closed */
    close_conn(c);
    *error = KV739_ERR_TOO_MANY_CONNECTIONS;
    return ATTEMPT_NEXT;
  }
  if ((int64_t)get_le(reply + OFF_ID, 8) != c->next_id || key_size < 0 || key_size > MAX_KEY_SIZE ||
      value_size < 0 || value_size > MAX_VALUE_SIZE ||
      (command != CMD_OK && command != CMD_NO_VAL && command != CMD_ERROR)) {
    close_conn(c);
    *error = KV739_ERR_PROTOCOL;
    return ATTEMPT_NEXT;
  }
  c->next_id++;
  if (command == CMD_ERROR) {
    int64_t code = (int64_t)get_le(reply + OFF_PARAM, 8);
    *error = code > 0 && code < 100 ? (int)code : KV739_ERR_PROTOCOL;
    switch (code) {
      case KV739_ERR_TOO_MANY_CONNECTIONS: /* the server closes this connection */
      case KV739_ERR_SHUTTING_DOWN:        /* it is draining: no use keeping it */
        close_conn(c);
        return ATTEMPT_NEXT;
      case KV739_ERR_NO_QUORUM: /* nothing applied; another daemon may reach a quorum */
        pool_return(l, index, c);
        return ATTEMPT_NEXT;
      default: /* OUTCOME_UNKNOWN may have been applied: never retried elsewhere */
        pool_return(l, index, c);
        return ATTEMPT_FINAL;
    }
  }
  pool_return(l, index, c);
  return ATTEMPT_OK;
}

static void server_failed(kv_list *l, int index) {
  kv_server *s = &l->servers[index];
  int64_t wait = BACKOFF_INITIAL_MS;
  int i;
  pthread_mutex_lock(&g_lock);
  s->failures++;
  for (i = 1; i < s->failures && wait < BACKOFF_MAX_MS; i++) wait *= 2;
  if (wait > BACKOFF_MAX_MS) wait = BACKOFF_MAX_MS;
  s->retry_at_ms = now_ms() + wait;
  pthread_mutex_unlock(&g_lock);
}

/*
 * The order of servers for one call: from the preferred one round the list,
 * those in backoff last, the one whose backoff ends first first.
 */
static int call_order(kv_list *l, int *order) {
  int n = l->server_count, count = 0, waiting = 0, i, j;
  int later[KV739_MAX_SERVERS];
  int64_t now = now_ms();
  for (i = 0; i < n; i++) {
    int index = (l->preferred + i) % n;
    if (l->servers[index].retry_at_ms <= now) order[count++] = index;
    else later[waiting++] = index;
  }
  for (i = 1; i < waiting; i++) {
    int x = later[i];
    for (j = i; j > 0 && l->servers[later[j - 1]].retry_at_ms > l->servers[x].retry_at_ms; j--) later[j] = later[j - 1];
    later[j] = x;
  }
  for (i = 0; i < waiting; i++) order[count++] = later[i];
  return count;
}

static int valid_key(const char *key) {
  size_t n, i;
  if (!key) return 0;
  n = strnlen(key, MAX_KEY_SIZE + 1);
  if (n == 0 || n > MAX_KEY_SIZE) return 0;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)key[i];
    if (ch < 0x20 || ch > 0x7e || ch == '[' || ch == ']') return 0;
  }
  return 1;
}

/* GET, PUT or DEL: validated input, the failover loop, and the reply copied out. */
static int call(int command, const char *key, const char *value, char *out) {
  kv_thread *t = thread_state();
  kv_list *l;
  unsigned char request[FRAME_BYTES], reply[FRAME_BYTES];
  int order[KV739_MAX_SERVERS];
  size_t key_size, value_size = 0;
  int count, i, timeout_ms, error = KV739_ERR_UNAVAILABLE, outcome = ATTEMPT_NEXT;

  if (!t) return -1;
  if (!valid_key(key)) return fail(t, KV739_ERR_INVALID_INPUT);
  if (command == CMD_PUT) {
    if (!value) return fail(t, KV739_ERR_INVALID_INPUT);
    value_size = strnlen(value, MAX_VALUE_SIZE + 1);
    if (value_size > MAX_VALUE_SIZE) return fail(t, KV739_ERR_INVALID_INPUT);
  }
  if (!out && command != CMD_DEL) return fail(t, KV739_ERR_INVALID_INPUT);
  key_size = strlen(key);

  memset(request, 0, sizeof request);
  put_le(request + OFF_COMMAND, (uint64_t)(uint32_t)command, 4);
  put_le(request + OFF_FLAG, t->flag, 4);
  put_le(request + OFF_KEY_SIZE, key_size, 4);
  put_le(request + OFF_VALUE_SIZE, value_size, 4);
  memcpy(request + HEADER_BYTES, key, key_size);
  if (value_size) memcpy(request + HEADER_BYTES + key_size + 1, value, value_size);

  pthread_mutex_lock(&g_lock);
  l = t->list ? t->list : g_default;
  if (!l || l->shut) {
    pthread_mutex_unlock(&g_lock);
    return fail(t, KV739_ERR_NOT_INITIALIZED);
  }
  l->refs++;
  count = call_order(l, order);
  pthread_mutex_unlock(&g_lock);
  timeout_ms = t->timeout_ms ? t->timeout_ms : l->default_timeout_ms;

  for (i = 0; i < count; i++) {
    outcome = attempt(l, order[i], request, reply, timeout_ms, &error);
    if (outcome == ATTEMPT_OK) {
      pthread_mutex_lock(&g_lock);
      l->servers[order[i]].failures = 0;
      l->servers[order[i]].retry_at_ms = 0;
      l->preferred = order[i];
      pthread_mutex_unlock(&g_lock);
      break;
    }
    if (outcome == ATTEMPT_FINAL) break;
    server_failed(l, order[i]);
  }
  pthread_mutex_lock(&g_lock);
  list_unref_locked(l);
  pthread_mutex_unlock(&g_lock);

  if (outcome != ATTEMPT_OK) return fail(t, error);
  t->last_error = 0;
  if (get_i32(reply + OFF_COMMAND) == CMD_NO_VAL) {
    if (out) out[0] = '\0';
    return 1;
  }
  if (out) {
    size_t reply_key = (size_t)get_i32(reply + OFF_KEY_SIZE), reply_value = (size_t)get_i32(reply + OFF_VALUE_SIZE);
    memcpy(out, reply + HEADER_BYTES + reply_key + 1, reply_value);
    out[reply_value] = '\0';
  }
  return 0;
}

int kv739_get(char *key, char *value) { return call(CMD_GET, key, NULL, value); }

int kv739_put(char *key, char *value, char *old_value) { return call(CMD_PUT, key, value, old_value); }

int kv739_del(char *key, char *old_value) { return call(CMD_DEL, key, NULL, old_value); }
