"""Throughput of kv739.py: `python3 kvbench.py get|put THREADS SECONDS host:port...`.
Each thread runs a tight loop on its own Client connection (one request in
flight per thread) over a 1000-key set with 128-byte values, like
clients/c/bench/kvbench.c. Prints one JSON line (calls/s and the client's own
CPU time per call)."""

import json
import os
import resource
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kv739  # noqa: E402

KEYS = 1000
VALUE = "v" * 128


def _cpu_s():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main():
    if len(sys.argv) < 5 or sys.argv[1] not in ("get", "put"):
        print("usage: kvbench.py get|put THREADS SECONDS host:port...", file=sys.stderr)
        return 2
    op, threads, seconds, servers = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    client = kv739.Client(servers)
    for i in range(KEYS if op == "get" else 0):
        if client.put("bench-%d" % i, VALUE)[0] == -1:
            print("preload failed (error %d)" % client.last_error(), file=sys.stderr)
            return 1
    stop = threading.Event()
    counts = [[0, 0] for _ in range(threads)]

    def run(index):
        call = client.put if op == "put" else client.get
        i = index * 7919
        count = counts[index]
        while not stop.is_set():
            key = "bench-%d" % (i % KEYS)
            i += 1
            rc = call(key, VALUE)[0] if op == "put" else call(key)[0]
            count[0 if rc != -1 else 1] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    start = time.monotonic()
    cpu_start = _cpu_s()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - start
    cpu = _cpu_s() - cpu_start
    ok = sum(c[0] for c in counts)
    failed = sum(c[1] for c in counts)
    print(json.dumps({"client": "python", "op": op, "threads": threads, "seconds": round(elapsed, 2),
                      "ops": ok, "failed": failed, "opsPerSecond": round(ok / elapsed),
                      "cpuUsPerOp": round(cpu * 1e6 / ok, 1) if ok else 0}))
    client.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
