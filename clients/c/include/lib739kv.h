/*
 * lib739kv: the C client of the kv739 key-value store.
 *
 * The four kv739_* functions of the original contract (kv739_init,
 * kv739_shutdown, kv739_get, kv739_put) with their exact signatures, and
 * extensions with the same prefix, documented below. C99 and C++.
 *
 * Return codes: 0 = success (a value was found / replaced), 1 = the key has
 * no value, -1 = failure (invalid input, no server answered in time, or an
 * ERROR reply; kv739_last_error() says which).
 *
 * Behaviour:
 * - Connections are persistent and reused across calls. Each calling thread
 *   takes a connection of its own from a pool (threads never share a socket
 *   while a request is in flight), so threads call the library concurrently.
 * - A call goes first to the server that answered last. When a server
 *   refuses or drops the connection, does not answer within the timeout
 *   (default 2000 ms, environment variable KV739_TIMEOUT_MS read by
 *   kv739_init, or kv739_set_timeout_ms), or replies SHUTTING_DOWN,
 *   TOO_MANY_CONNECTIONS or NO_QUORUM, the call moves on to the next server of
 *   the list. A failed server is skipped for a backoff (100 ms doubling up to
 *   5 s) and then tried again, so a restarted server is used again; when every
 *   server is in backoff, they are tried anyway, the one whose backoff ends
 *   first first. A call therefore takes at most one timeout per server.
 * - OUTCOME_UNKNOWN (the write may or may not have been applied) fails the
 *   call with -1 and is not retried elsewhere. A PUT or DEL whose server timed
 *   out or died after the request was sent may have been applied there as
 *   well as on the next server.
 * - Host names (including "localhost") resolve through getaddrinfo, IPv6 and
 *   IPv4; every address is tried in turn. "[::1]:7390" gives an IPv6 literal.
 * - fork(): a child never uses its parent's connections (the library notices
 *   the new process id and connects again). SIGPIPE is never raised.
 * - Invalid keys and values are refused with -1 before anything is sent.
 *
 * Threads and server lists: kv739_init binds its list to the calling thread.
 * A thread that never called kv739_init uses the process's default list:
 * the list of a kv739_init made while there was no default (a later
 * kv739_init by the same thread replaces it), until it is shut down.
 * kv739_shutdown ends the calling thread's list (or the default list, for a
 * thread without its own), closes its idle connections (the others as their
 * calls end) and frees it once no call uses it.
 *
 * Settings (kv739_set_*) belong to the calling thread; a new thread starts
 * with the defaults.
 *
 * Build and link:   make -C clients/c
 *                   cc prog.c -Iclients/c/include clients/c/build/lib739kv.a -lpthread
 */
#ifndef LIB739KV_H
#define LIB739KV_H

#ifdef __cplusplus
extern "C" {
#endif

/* Keys are 1..MAX_KEY_SIZE bytes of printable ASCII (0x20-0x7e) without '[' and ']'. */
#define MAX_KEY_SIZE 128
/* Values are 0..MAX_VALUE_SIZE bytes without NUL; value buffers hold at least MAX_VALUE_SIZE + 1 bytes. */
#define MAX_VALUE_SIZE 2048

/* ---- The contract ---------------------------------------------------- */

/*
 * server_list: a NULL-terminated array of "host:port" strings (at most
 * KV739_MAX_SERVERS). 0 on success, -1 for a NULL, empty or malformed list.
 * Calling it again (after kv739_shutdown or not) replaces the calling
 * thread's list.
 */
int kv739_init(char **server_list);

/* Closes the connections of the calling thread's list and frees it. 0, or -1 when there is no list. */
int kv739_shutdown(void);

/* 0: the value is copied, NUL-terminated, into value (>= 2049 bytes); 1: no value; -1: failure. */
int kv739_get(char *key, char *value);

/*
 * Stores value under key. 0: there was an old value, copied NUL-terminated
 * into old_value (>= 2049 bytes); 1: there was none (old_value = ""); -1: failure.
 */
int kv739_put(char *key, char *value, char *old_value);

/* ---- Extensions -------------------------------------------------------- */

#define KV739_MAX_SERVERS 64

/*
 * Deletes key. 0: it had a value, copied into old_value (>= 2049 bytes)
 * unless old_value is NULL; 1: it had none (old_value = ""); -1: failure.
 */
int kv739_del(char *key, char *old_value);

/*
 * How long one server gets to connect and answer one request before the call
 * moves to the next server, in milliseconds (1..3600000). Applies to the
 * calling thread's later calls (a new thread starts with the default:
 * KV739_TIMEOUT_MS at its list's kv739_init, else 2000). 0 or -1 (bad value).
 */
int kv739_set_timeout_ms(int timeout_ms);

/*
 * Consistency level of the calling thread's later requests (flag bits 1-2 of
 * the frame). PUT/DEL: how many daemons must hold the write before it is
 * acknowledged; GET: ONE reads one daemon's store, MAJORITY returns a value at
 * least as new as every write acknowledged at MAJORITY or ALL before the read.
 * DEFAULT leaves the choice to the cluster. 0, or -1 for an unknown level.
 */
#define KV739_CONSISTENCY_DEFAULT 0
#define KV739_CONSISTENCY_ONE 1
#define KV739_CONSISTENCY_MAJORITY 2
#define KV739_CONSISTENCY_ALL 3
int kv739_set_consistency(int level);

/*
 * Read-through (flag bit 0) for the calling thread's later GETs: 1 = on a key
 * the daemon has not received yet, wait for the cluster to fetch it instead
 * of answering "no value" at once; 0 = off (the default). 0, or -1 for a
 * value other than 0 and 1.
 */
int kv739_set_read_through(int on);

/*
 * Why the calling thread's last call returned -1 (0 after a call that did
 * not fail): the server's ERROR code (1..99, e.g. KV739_ERR_OUTCOME_UNKNOWN)
 * or one of the library's own reasons below.
 */
#define KV739_ERR_NONE 0
#define KV739_ERR_STORE_FAILED 9
#define KV739_ERR_TOO_MANY_CONNECTIONS 11
#define KV739_ERR_SHUTTING_DOWN 12
#define KV739_ERR_OUTCOME_UNKNOWN 13
#define KV739_ERR_NO_QUORUM 14
#define KV739_ERR_INVALID_INPUT 100   /* bad key, value, buffer, list or setting: nothing was sent */
#define KV739_ERR_NOT_INITIALIZED 101 /* no kv739_init for this thread and no default list */
#define KV739_ERR_UNAVAILABLE 102     /* no server answered in time (refused, dropped, timed out) */
#define KV739_ERR_PROTOCOL 103        /* a server sent a reply that is not a valid answer */
#define KV739_ERR_NO_MEMORY 104
int kv739_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
