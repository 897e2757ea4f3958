"""kv739: the Python client of the kv739 key-value store.

One file, Python 3.8+, standard library only. The module-level functions
mirror the C library (lib739kv.h)::

    import kv739
    kv739.kv739_init(["127.0.0.1:7390", "localhost:7391"])   # 0, or -1 for a bad list
    rc, old = kv739.kv739_put("key", "value")   # 0 and the old value, 1 and None, or -1 and None
    rc, value = kv739.kv739_get("key")          # 0 and the value, 1 and None, or -1 and None
    rc, old = kv739.kv739_del("key")
    kv739.kv739_shutdown()

``Client`` holds its own servers, connections and settings (a context
manager); the module functions use one default Client. Both are safe to call
from several threads (each call takes a connection of its own from a pool)
and across ``os.fork()`` (a child never uses its parent's connections).

Behaviour, as in the C library: a call goes first to the server that
answered last; on a refused or dropped connection, a timeout (default 2000 ms
per server, ``KV739_TIMEOUT_MS``), or a SHUTTING_DOWN, TOO_MANY_CONNECTIONS or
NO_QUORUM reply it moves on to the next server; a failed server is skipped for
a backoff (100 ms doubling to 5 s) and tried again after it, or when every
server is in backoff. OUTCOME_UNKNOWN fails the call without trying another
server. Keys are 1-128 characters of printable ASCII without ``[`` and ``]``;
values (``str``, encoded as UTF-8, or ``bytes``) are at most 2048 bytes and
contain no NUL, like the C strings of the original API. Invalid input is
refused with -1 before anything is sent. Values come back as ``str`` (UTF-8;
bytes that are not UTF-8 are kept as surrogate escapes, so
``value.encode("utf-8", "surrogateescape")`` gives the stored bytes).
"""

import os
import socket
import struct
import threading
import time
import weakref

__all__ = [
    "Client",
    "kv739_init",
    "kv739_shutdown",
    "kv739_get",
    "kv739_put",
    "kv739_del",
    "kv739_set_timeout_ms",
    "kv739_set_consistency",
    "kv739_set_read_through",
    "kv739_last_error",
    "MAX_KEY_SIZE",
    "MAX_VALUE_SIZE",
    "CONSISTENCY_DEFAULT",
    "CONSISTENCY_ONE",
    "CONSISTENCY_MAJORITY",
    "CONSISTENCY_ALL",
]

MAX_KEY_SIZE = 128
MAX_VALUE_SIZE = 2048
MAX_SERVERS = 64

CONSISTENCY_DEFAULT = 0
CONSISTENCY_ONE = 1
CONSISTENCY_MAJORITY = 2
CONSISTENCY_ALL = 3

# kv739_last_error(): the server's ERROR code (1..99) or one of these.
ERR_NONE = 0
ERR_STORE_FAILED = 9
ERR_TOO_MANY_CONNECTIONS = 11
ERR_SHUTTING_DOWN = 12
ERR_OUTCOME_UNKNOWN = 13
ERR_NO_QUORUM = 14
ERR_INVALID_INPUT = 100
ERR_NOT_INITIALIZED = 101
ERR_UNAVAILABLE = 102
ERR_PROTOCOL = 103

# The 4096-byte frame of docs/protocol.md: id i64, command i32, flag u32,
# param i64, key_size i32, value_size i32, value_timestamp i64, then the key,
# a NUL and the value.
_FRAME_BYTES = 4096
_HEADER = struct.Struct("<qiIqiiq")
_CMD_OK, _CMD_GET, _CMD_PUT, _CMD_NO_VAL, _CMD_DEL, _CMD_ERROR = 1, 3, 4, 5, 6, -1
_FLAG_READ_THROUGH = 1
_CONSISTENCY_SHIFT = 1

_DEFAULT_TIMEOUT_MS = 2000
_MAX_TIMEOUT_MS = 3_600_000
_BACKOFF_INITIAL_S = 0.1
_BACKOFF_MAX_S = 5.0
_MAX_IDLE_CONNECTIONS_PER_SERVER = 256
_MOVE_ON = frozenset((ERR_TOO_MANY_CONNECTIONS, ERR_SHUTTING_DOWN, ERR_NO_QUORUM))
_CLOSE_AFTER = frozenset((ERR_TOO_MANY_CONNECTIONS, ERR_SHUTTING_DOWN))


class _InvalidInput(Exception):
    pass


def _parse_server(text):
    if not isinstance(text, str):
        raise _InvalidInput()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise _InvalidInput()
        host, port = text[1:end], text[end + 2 :]
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise _InvalidInput()
    if not host or len(host) > 255 or any(c <= " " or c >= "\x7f" for c in host):
        raise _InvalidInput()
    if not (1 <= len(port) <= 5) or not port.isdigit() or not port.isascii() or not 1 <= int(port) <= 65535:
        raise _InvalidInput()
    return host, int(port)


def _key_bytes(key):
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_SIZE:
        raise _InvalidInput()
    for c in key:
        if c < " " or c > "~" or c == "[" or c == "]":
            raise _InvalidInput()
    return key.encode("ascii")


def _value_bytes(value):
    if isinstance(value, str):
        try:
            value = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise _InvalidInput()
    elif not isinstance(value, (bytes, bytearray)):
        raise _InvalidInput()
    if len(value) > MAX_VALUE_SIZE or b"\0" in value:
        raise _InvalidInput()
    return bytes(value)


def _timeout_from_env():
    try:
        ms = int(os.environ.get("KV739_TIMEOUT_MS", ""), 10)
    except ValueError:
        return _DEFAULT_TIMEOUT_MS
    return ms if 1 <= ms <= _MAX_TIMEOUT_MS else _DEFAULT_TIMEOUT_MS


class _Server:
    __slots__ = ("host", "port", "failures", "retry_at", "idle")

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.failures = 0
        self.retry_at = 0.0  # time.monotonic() before which the server is skipped
        self.idle = []  # pooled connections: (socket, owner pid, next request id)


class _Unavailable(Exception):
    """No reply in time, or the connection failed mid-reply."""


class _Stale(Exception):
    """The connection failed before any reply byte arrived."""


class _Final(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


class _MoveOn(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


_clients = weakref.WeakSet()


def _after_fork_in_child():
    # A lock held by another thread at fork time would never be released in
    # the child; the parent's sockets are dropped here (our copies only).
    for client in list(_clients):
        client._lock = threading.Lock()
        for server in client._servers:
            for sock, _pid, _next_id in server.idle:
                try:
                    sock.close()
                except OSError:
                    pass
            server.idle = []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Client:
    """Servers, pooled connections and settings of one kv739 client.

    ``Client(["host:port", ...], timeout_ms=None, consistency=0,
    read_through=False)`` raises ValueError for a bad list or setting. Calls
    return ``(rc, value or None)`` like the C library; ``last_error()`` says
    why the calling thread's last call returned -1.
    """

    def __init__(self, servers, timeout_ms=None, consistency=CONSISTENCY_DEFAULT, read_through=False):
        try:
            if isinstance(servers, (str, bytes)) or not servers or len(servers) > MAX_SERVERS:
                raise _InvalidInput()
            parsed = [_parse_server(s) for s in servers]
        except (_InvalidInput, TypeError):
            raise ValueError("servers must be a list of 1 to %d 'host:port' strings" % MAX_SERVERS)
        self._servers = [_Server(h, p) for h, p in parsed]
        self._lock = threading.Lock()
        self._preferred = 0
        self._closed = False
        self._local = threading.local()
        self._timeout_ms = _timeout_from_env()
        self._flag = 0
        if timeout_ms is not None and self.set_timeout_ms(timeout_ms) != 0:
            raise ValueError("timeout_ms must be an int from 1 to %d" % _MAX_TIMEOUT_MS)
        if self.set_consistency(consistency) != 0:
            raise ValueError("consistency must be 0 (default), 1 (ONE), 2 (MAJORITY) or 3 (ALL)")
        if self.set_read_through(read_through) != 0:
            raise ValueError("read_through must be a bool")
        _clients.add(self)

    # -- settings ----------------------------------------------------------

    def set_timeout_ms(self, timeout_ms):
        """How long one server gets to connect and answer one request (ms). 0 or -1."""
        if type(timeout_ms) is not int or not 1 <= timeout_ms <= _MAX_TIMEOUT_MS:
            return self._fail(ERR_INVALID_INPUT)
        self._timeout_ms = timeout_ms
        return 0

    def set_consistency(self, level):
        """Consistency level of later requests (flag bits 1-2). 0 or -1."""
        if type(level) is not int or not 0 <= level <= 3:
            return self._fail(ERR_INVALID_INPUT)
        self._flag = (self._flag & ~(3 << _CONSISTENCY_SHIFT)) | (level << _CONSISTENCY_SHIFT)
        return 0

    def set_read_through(self, on):
        """Read-through (flag bit 0) for later GETs. 0 or -1."""
        if type(on) not in (bool, int) or on not in (0, 1):
            return self._fail(ERR_INVALID_INPUT)
        self._flag = (self._flag | _FLAG_READ_THROUGH) if on else (self._flag & ~_FLAG_READ_THROUGH)
        return 0

    def last_error(self):
        return getattr(self._local, "error", ERR_NONE)

    # -- calls -------------------------------------------------------------

    def get(self, key):
        """(0, value) found, (1, None) no value, (-1, None) failure."""
        return self._call(_CMD_GET, key, None)

    def put(self, key, value):
        """(0, old value) replaced, (1, None) the key was new, (-1, None) failure."""
        return self._call(_CMD_PUT, key, value)

    def delete(self, key):
        """(0, old value) deleted, (1, None) the key had no value, (-1, None) failure."""
        return self._call(_CMD_DEL, key, None)

    def close(self):
        """Closes the idle connections (the others as their calls end); later calls fail with -1."""
        with self._lock:
            self._closed = True
            for server in self._servers:
                for sock, _pid, _next_id in server.idle:
                    sock.close()
                server.idle = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _fail(self, code):
        self._local.error = code
        return -1

    def _call(self, command, key, value):
        try:
            key_bytes = _key_bytes(key)
            value_bytes = _value_bytes(value) if command == _CMD_PUT else b""
        except _InvalidInput:
            return self._fail(ERR_INVALID_INPUT), None
        frame = bytearray(_FRAME_BYTES)
        _HEADER.pack_into(frame, 0, 0, command, self._flag, 0, len(key_bytes), len(value_bytes), 0)
        frame[40 : 40 + len(key_bytes)] = key_bytes
        start = 41 + len(key_bytes)
        frame[start : start + len(value_bytes)] = value_bytes
        timeout_s = self._timeout_ms / 1000.0

        with self._lock:
            if self._closed:
                return self._fail(ERR_NOT_INITIALIZED), None
            order = self._order()
        error = ERR_UNAVAILABLE
        for index in order:
            try:
                reply_command, reply_value = self._attempt(index, frame, timeout_s)
            except _Final as e:
                return self._fail(e.code), None
            except _MoveOn as e:
                error = e.code
                self._server_failed(index)
                continue
            with self._lock:
                server = self._servers[index]
                server.failures = 0
                server.retry_at = 0.0
                self._preferred = index
            self._local.error = ERR_NONE
            if reply_command == _CMD_NO_VAL:
                return 1, None
            return 0, reply_value.decode("utf-8", "surrogateescape")
        return self._fail(error), None

    def _order(self):
        """From the preferred server round the list; those in backoff last, the soonest first."""
        now = time.monotonic()
        n = len(self._servers)
        ready, later = [], []
        for i in range(n):
            index = (self._preferred + i) % n
            (ready if self._servers[index].retry_at <= now else later).append(index)
        later.sort(key=lambda i: self._servers[i].retry_at)
        return ready + later

    def _server_failed(self, index):
        with self._lock:
            server = self._servers[index]
            server.failures += 1
            wait = min(_BACKOFF_MAX_S, _BACKOFF_INITIAL_S * 2 ** min(server.failures - 1, 16))
            server.retry_at = time.monotonic() + wait

    def _take(self, index):
        pid = os.getpid()
        with self._lock:
            idle = self._servers[index].idle
            while idle:
                conn = idle.pop()
                if conn[1] == pid:
                    return conn
                conn[0].close()  # the parent's: closing our copy leaves its connection open
        return None

    def _give_back(self, index, sock, next_id):
        with self._lock:
            idle = self._servers[index].idle
            if not self._closed and len(idle) < _MAX_IDLE_CONNECTIONS_PER_SERVER:
                idle.append((sock, os.getpid(), next_id))
                return
        sock.close()

    def _connect(self, index, deadline):
        server = self._servers[index]
        left = deadline - time.monotonic()
        if left <= 0:
            raise _MoveOn(ERR_UNAVAILABLE)
        try:
            # tries every address of the name (IPv6 and IPv4) in turn
            sock = socket.create_connection((server.host, server.port), timeout=left)
        except OSError:
            raise _MoveOn(ERR_UNAVAILABLE)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _attempt(self, index, frame, timeout_s):
        """One request to one server: (reply command, value), or _MoveOn / _Final."""
        deadline = time.monotonic() + timeout_s
        conn = self._take(index)
        reused = conn is not None
        sock, _pid, request_id = conn if conn else (self._connect(index, deadline), None, 1)
        try:
            reply = _exchange(sock, frame, request_id, deadline)
        except _Stale:
            sock.close()
            if not reused:
                raise _MoveOn(ERR_UNAVAILABLE)
            # a pooled connection the server had closed (idle timeout, restart): connect again once
            sock, request_id = self._connect(index, deadline), 1
            try:
                reply = _exchange(sock, frame, request_id, deadline)
            except (_Stale, _Unavailable):
                sock.close()
                raise _MoveOn(ERR_UNAVAILABLE)
        except _Unavailable:
            sock.close()
            raise _MoveOn(ERR_UNAVAILABLE)

        reply_id, command, _flag, param, key_size, value_size, _ts = _HEADER.unpack_from(reply, 0)
        if command == _CMD_ERROR and reply_id == 0 and param == ERR_TOO_MANY_CONNECTIONS:
            # sent with id 0 as the connection is accepted, then closed
            sock.close()
            raise _MoveOn(ERR_TOO_MANY_CONNECTIONS)
        if (
            reply_id != request_id
            or not 0 <= key_size <= MAX_KEY_SIZE
            or not 0 <= value_size <= MAX_VALUE_SIZE
            or command not in (_CMD_OK, _CMD_NO_VAL, _CMD_ERROR)
        ):
            sock.close()
            raise _MoveOn(ERR_PROTOCOL)
        if command == _CMD_ERROR:
            code = param if 0 < param < 100 else ERR_PROTOCOL
            if code in _CLOSE_AFTER:
                sock.close()
            else:
                self._give_back(index, sock, request_id + 1)
            if code in _MOVE_ON:
                raise _MoveOn(code)
            # OUTCOME_UNKNOWN may have been applied: never retried elsewhere
            raise _Final(code)
        self._give_back(index, sock, request_id + 1)
        start = 41 + key_size
        return command, bytes(reply[start : start + value_size])


def _exchange(sock, frame, request_id, deadline):
    """Sends the frame and reads one reply frame before the deadline."""
    struct.pack_into("<q", frame, 0, request_id)
    reply = bytearray(_FRAME_BYTES)
    view = memoryview(reply)
    got = 0
    try:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Unavailable()
        sock.settimeout(left)
        sock.sendall(frame)
        while got < _FRAME_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Unavailable()
            sock.settimeout(left)
            n = sock.recv_into(view[got:])
            if n == 0:
                raise _Stale() if got == 0 else _Unavailable()
            got += n
        return reply
    except socket.timeout:
        raise _Unavailable()
    except OSError:
        # reset or broken pipe (Python ignores SIGPIPE and raises instead)
        raise _Stale() if got == 0 else _Unavailable()


# -- the module-level API (one default Client) ------------------------------

_default = None
_default_lock = threading.Lock()
_module_error = threading.local()


def kv739_init(servers):
    """servers: a list of "host:port" strings. 0, or -1 for an empty or malformed list."""
    global _default
    try:
        client = Client(servers)
    except ValueError:
        _module_error.error = ERR_INVALID_INPUT
        return -1
    with _default_lock:
        old, _default = _default, client
    if old is not None:
        old.close()
    _module_error.error = ERR_NONE
    return 0


def kv739_shutdown():
    """Closes the default client's connections. 0, or -1 when there is none."""
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is None:
        _module_error.error = ERR_NOT_INITIALIZED
        return -1
    old.close()
    _module_error.error = ERR_NONE
    return 0


def _with_default(call):
    client = _default
    if client is None:
        _module_error.error = ERR_NOT_INITIALIZED
        return -1, None
    rc, value = call(client)
    _module_error.error = client.last_error()
    return rc, value


def kv739_get(key):
    return _with_default(lambda c: c.get(key))


def kv739_put(key, value):
    return _with_default(lambda c: c.put(key, value))


def kv739_del(key):
    return _with_default(lambda c: c.delete(key))


def _set(method, arg):
    client = _default
    if client is None:
        _module_error.error = ERR_NOT_INITIALIZED
        return -1
    rc = getattr(client, method)(arg)
    _module_error.error = client.last_error() if rc else ERR_NONE
    return rc


def kv739_set_timeout_ms(timeout_ms):
    """Per-server timeout of the default client's later requests (ms). 0 or -1."""
    return _set("set_timeout_ms", timeout_ms)


def kv739_set_consistency(level):
    """Consistency level (0 default, 1 ONE, 2 MAJORITY, 3 ALL) of the default client's later requests."""
    return _set("set_consistency", level)


def kv739_set_read_through(on):
    """Read-through (flag bit 0) for the default client's later GETs."""
    return _set("set_read_through", on)


def kv739_last_error():
    """Why the calling thread's last module-level call returned -1 (0: it did not)."""
    return getattr(_module_error, "error", ERR_NONE)
