"""Test driver for kv739.py, run by test/clients.test.ts: the same modes and
output as clients/c/test/kvtest.c (`python3 kvtest.py MODE host:port...`).
Prints "FAIL what" for every broken check, "PASS mode" at the end, exit 1 on
any failure."""

import os
import select
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kv739  # noqa: E402
from kv739 import kv739_del, kv739_get, kv739_init, kv739_last_error, kv739_put, kv739_shutdown  # noqa: E402

failures = 0
_report = threading.Lock()


def check(ok, what, error=None):
    global failures
    if ok:
        return
    with _report:
        failures += 1
        print("FAIL %s (last error %d)" % (what, kv739_last_error() if error is None else error), flush=True)


def mode_contract(servers):
    check(kv739_init(servers) == 0, "init")
    key = "contract-%d" % os.getpid()
    check(kv739_get(key) == (1, None), "get of a new key returns 1")
    check(kv739_put(key, "v1") == (1, None), "first put returns 1, no old value")
    check(kv739_last_error() == 0, "last error 0 after a call that did not fail")
    check(kv739_put(key, "v2") == (0, "v1"), "second put returns 0 and the old value")
    check(kv739_get(key) == (0, "v2"), "get returns the value")
    check(kv739_put(key, "") == (0, "v2"), "put of an empty value")
    check(kv739_get(key) == (0, ""), "an empty value is found (0), not missing")
    check(kv739_del(key) == (0, ""), "del of a key with an empty value returns 0")
    check(kv739_get(key) == (1, None), "get after del returns 1")
    check(kv739_del(key) == (1, None), "del of a missing key returns 1")

    pattern = "".join(chr(0x20 + (i * 7) % 95) for i in range(kv739.MAX_KEY_SIZE)).replace("[", ".").replace("]", ".")
    long_key = (key + pattern)[: kv739.MAX_KEY_SIZE]
    big = bytes(1 + i % 255 for i in range(kv739.MAX_VALUE_SIZE))
    check(kv739_put(long_key, big) == (1, None), "put with a 128-byte key and a 2048-byte value")
    rc, value = kv739_get(long_key)
    check(rc == 0 and value.encode("utf-8", "surrogateescape") == big, "2048 bytes of any non-NUL byte come back unchanged")
    rc, old = kv739_put(long_key, "small")
    check(rc == 0 and old.encode("utf-8", "surrogateescape") == big, "old value of 2048 bytes handed back whole")
    text = "gr\u00fc\u00dfe \u2603"
    check(kv739_put(key, text) == (1, None) and kv739_get(key) == (0, text), "UTF-8 text round trips")

    check(kv739_shutdown() == 0, "shutdown")
    check(kv739_get(key) == (-1, None) and kv739_last_error() == kv739.ERR_NOT_INITIALIZED, "get after shutdown fails, not initialized")
    check(kv739_shutdown() == -1, "shutdown without a list fails")
    check(kv739_init(servers) == 0, "init again after shutdown")
    check(kv739_get(key) == (0, text), "calls work after init again")
    check(kv739_init(servers) == 0, "init twice without shutdown replaces the list")
    check(kv739_get(key)[0] == 0, "calls work after the second init")
    check(kv739_shutdown() == 0, "final shutdown")
    with kv739.Client(servers) as client:
        check(client.get(key) == (0, text), "a Client as a context manager")
    check(client.get(key) == (-1, None) and client.last_error() == kv739.ERR_NOT_INITIALIZED, "a closed Client fails")


def mode_invalid(servers):
    def refused(result, what):
        rc = result[0] if isinstance(result, tuple) else result
        check(rc == -1 and kv739_last_error() == kv739.ERR_INVALID_INPUT, what)

    check(kv739_get("key") == (-1, None) and kv739_last_error() == kv739.ERR_NOT_INITIALIZED, "get before init")
    check(kv739_put("key", "v") == (-1, None), "put before init")
    for bad in (None, [], "127.0.0.1:7390", [None], [7390], ["127.0.0.1"], ["127.0.0.1:"], [":7390"], ["127.0.0.1:0"],
                ["127.0.0.1:65536"], ["127.0.0.1:73a0"], ["127.0.0.1:123456"], ["[::1:7390"], ["[::1]7390"],
                ["bad host:7390"], [""], ["127.0.0.1:7390", "nope"], ["127.0.0.1:\u0667"], [servers[0]] * 65):
        refused(kv739_init(bad), "init of a malformed list %r" % (bad,))
    check(kv739_get("key") == (-1, None) and kv739_last_error() == kv739.ERR_NOT_INITIALIZED, "a refused init leaves no list")

    check(kv739_init(servers) == 0, "init")
    for key in (None, "", "k" * 129, 5, b"key", "bad[", "bad]", "caf\u00e9"):
        refused(kv739_get(key), "get key %r" % (key,))
        refused(kv739_put(key, "v"), "put key %r" % (key,))
        refused(kv739_del(key), "del key %r" % (key,))
    for c in range(0, 256):
        if 0x20 <= c <= 0x7E and chr(c) not in "[]":
            continue
        key = "a" + chr(c) + "b"
        refused(kv739_get(key), "key with char 0x%02x" % c)
        refused(kv739_put(key, "v"), "key with char 0x%02x" % c)
    for value in (None, 5, "v" * 2049, b"v" * 2049, "a\0b", b"a\0b", "\u00e9" * 1025):
        refused(kv739_put("key", value), "put value %r" % (value if not isinstance(value, (str, bytes)) or len(value) < 10 else len(value),))
    for bad in (0, -5, 3600001, 1.5, True, "100"):
        refused(kv739.kv739_set_timeout_ms(bad), "timeout %r" % (bad,))
    for bad in (-1, 4, 1.0, True, "1"):
        refused(kv739.kv739_set_consistency(bad), "consistency %r" % (bad,))
    for bad in (2, -1, "1", 0.5):
        refused(kv739.kv739_set_read_through(bad), "read-through %r" % (bad,))
    for kwargs in ({"timeout_ms": 0}, {"consistency": 7}, {"read_through": 3}):
        try:
            kv739.Client(servers, **kwargs)
            check(False, "Client(%r) refused" % (kwargs,))
        except ValueError:
            pass
    check(kv739_shutdown() == 0, "shutdown")


THREADS = 8
THREAD_ROUNDS = 200


def mode_threads(servers):
    check(kv739_init(servers) == 0, "init")
    check(kv739_put("threads-main", "before")[0] != -1, "put before the threads")

    def run(index):
        # odd threads use a Client of their own (the second server argument if any)
        own = kv739.Client([servers[1] if len(servers) > 1 else servers[0]]) if index % 2 else None
        get = own.get if own else kv739_get
        put = own.put if own else kv739_put
        delete = own.delete if own else kv739_del
        for i in range(THREAD_ROUNDS):
            key = "thread-%d-%d" % (index, i % 10)
            expect = "value-%d-%d" % (index, i)
            if put(key, expect)[0] == -1:
                check(False, "put from a thread")
            if get(key) != (0, expect):
                check(False, "a thread reads back its own value")
            if i % 50 == 49 and delete(key)[0] != 0:
                check(False, "del from a thread")
        if own:
            own.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(kv739_get("threads-main") == (0, "before"), "the default client survives the threads' own clients")
    check(kv739_shutdown() == 0, "shutdown")


FORK_ROUNDS = 400


def fork_loop(who):
    for i in range(FORK_ROUNDS):
        key = "fork-%s-%d" % (who, i % 7)
        expect = "%s-%d" % (who, i)
        if kv739_put(key, expect)[0] == -1:
            check(False, who + " put")
        if kv739_get(key) != (0, expect):
            check(False, who + " get")


def mode_fork(servers):
    check(kv739_init(servers) == 0, "init")
    for _ in range(20):  # leave pooled connections behind for the child to inherit
        check(kv739_put("fork-before", "parent")[0] != -1, "put before fork")
    sys.stdout.flush()
    child = os.fork()
    if child == 0:
        fork_loop("child")
        check(kv739_get("fork-before") == (0, "parent"), "child reads the parent's write")
        sys.stdout.flush()
        os._exit(1 if failures else 0)
    fork_loop("parent")
    _pid, status = os.waitpid(child, 0)
    check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "the child's calls all worked")
    rc, value = kv739_get("fork-child-0")
    check(rc == 0 and value.startswith("child-"), "parent reads the child's write")
    check(kv739_shutdown() == 0, "shutdown")


def mode_loop(servers):
    check(kv739_init(servers) == 0, "init")
    ops = failed = 0
    slowest = 0.0
    while True:
        start = time.monotonic()
        key = "loop-%d" % (ops % 100)
        rc = kv739_get(key)[0] if ops % 2 else kv739_put(key, "loop-value")[0]
        slowest = max(slowest, time.monotonic() - start)
        if rc == -1:
            failed += 1
            print("call failed: error %d" % kv739_last_error(), flush=True)
        ops += 1
        if ops % 50 == 0:
            print("ops %d failures %d slowest_ms %d" % (ops, failed, slowest * 1000), flush=True)
        if select.select([sys.stdin], [], [], 0)[0]:
            line = sys.stdin.readline()
            if not line or line.strip() == "quit":
                break
            if line.startswith("check "):
                key = line[6:].strip()
                ok = kv739_put(key, "checked")[0] != -1 and kv739_get(key) == (0, "checked")
                print("checked %s" % ("ok" if ok else "fail"), flush=True)
    print("done ops %d failures %d slowest_ms %d" % (ops, failed, slowest * 1000), flush=True)
    check(failed == 0, "no call of the loop failed")
    kv739_shutdown()


def mode_flags(servers):
    check(kv739_init(servers) == 0, "init")
    for level in range(4):
        for rt in (0, 1):
            check(kv739.kv739_set_consistency(level) == 0 and kv739.kv739_set_read_through(rt) == 0, "setters")
            expect = str((level << 1) | rt)
            what = "flag of level %d read-through %d" % (level, rt)
            check(kv739_get("flag-get") == (0, expect), what)
            check(kv739_put("flag-put", "v") == (0, expect), what)
            check(kv739_del("flag-del") == (0, expect), what)
    check(kv739_shutdown() == 0, "shutdown")
    # the same bits from a Client's constructor
    with kv739.Client(servers, consistency=kv739.CONSISTENCY_ALL, read_through=True) as client:
        check(client.get("flag-get") == (0, "7"), "Client(consistency=ALL, read_through=True) sends flag 7")


def mode_levels(servers):
    check(kv739_init(servers) == 0, "init")
    for level in range(4):
        key = "level-%d" % level
        check(kv739.kv739_set_consistency(level) == 0 and kv739.kv739_set_read_through(1) == 0, "setters")
        ok = (kv739_put(key, "v") == (1, None) and kv739_get(key) == (0, "v")
              and kv739_del(key) == (0, "v") and kv739_get(key) == (1, None))
        check(ok, "calls at level %d with read-through" % level)
    check(kv739_shutdown() == 0, "shutdown")


def mode_errors(servers):
    cases = [("err-11", 0, 0), ("err-12", 0, 0), ("err-14", 0, 0),
             ("err-13", -1, kv739.ERR_OUTCOME_UNKNOWN), ("err-7", -1, 7), ("err-9", -1, kv739.ERR_STORE_FAILED)]
    for key, rc, error in cases:
        check(kv739_init(servers) == 0, "init")  # a fresh list: the call starts at the first server
        got = kv739_put(key, "v")
        check(got[0] == rc and kv739_last_error() == error, "put %s: %r, expected rc %d" % (key, got, rc))
        if rc == 0:
            check(got[1] == "second", "answered by the second server")
        check(kv739_init(servers) == 0, "init")
        got = kv739_get(key)
        check(got[0] == rc and kv739_last_error() == error, "get %s: %r, expected rc %d" % (key, got, rc))
    for key in ("err-11", "err-12", "err-14"):
        # with no other server, the refusal is the call's error
        check(kv739_init(servers[:1]) == 0, "init")
        got = kv739_put(key, "v")
        check(got == (-1, None) and kv739_last_error() == int(key[4:]), "put %s to the first server alone: %r" % (key, got))
    check(kv739_shutdown() == 0, "shutdown")


def mode_idle(servers):
    check(kv739_init(servers) == 0, "init")
    check(kv739_put("idle", "v")[0] != -1, "put before the idle time")
    print("waiting", flush=True)
    sys.stdin.readline()
    check(kv739_get("idle") == (0, "v"), "get after the server closed the idle connection")
    check(kv739_shutdown() == 0, "shutdown")


def mode_reinit(servers):
    check(len(servers) >= 2, "two servers given")
    if len(servers) < 2:
        return
    key = "reinit-%d" % os.getpid()
    for _ in range(3):
        check(kv739_init(servers[:1]) == 0, "init first")
        check(kv739_put(key, "first")[0] != -1, "put on the first server")
        check(kv739_shutdown() == 0, "shutdown")
        check(kv739_get(key)[0] == -1, "no calls between shutdown and init")
        check(kv739_init(servers[1:2]) == 0, "init second")
        check(kv739_get(key) == (1, None), "the second list's server is used (it does not have the key)")
        check(kv739_shutdown() == 0, "shutdown second")


MODES = {
    "contract": mode_contract, "invalid": mode_invalid, "threads": mode_threads, "fork": mode_fork,
    "loop": mode_loop, "flags": mode_flags, "levels": mode_levels, "errors": mode_errors,
    "idle": mode_idle, "reinit": mode_reinit,
}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in MODES:
        print("usage: kvtest.py MODE host:port...", file=sys.stderr)
        return 2
    mode = sys.argv[1]
    MODES[mode](sys.argv[2:])
    print("%s %s (%d failures)" % ("FAIL" if failures else "PASS", mode, failures), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
