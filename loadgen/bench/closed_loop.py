#!/usr/bin/env python3
"""Client CPU per request, wrk against loadgen, rounds interleaved (bench.sh step 1).

Each round runs wrk -t2, loadgen --threads 1 and loadgen --threads 2 one
after the other against the same server, so background load hits all three
alike; prints every run and the medians over rounds with their ratio to wrk.
CPU is the client process's user+sys time from wait4(2) (all its threads).

Usage: closed_loop.py URL SECS CONNS ROUNDS LOADGEN TMPDIR
"""
import json
import os
import re
import statistics
import subprocess
import sys

url, secs, conns, rounds, loadgen, tmp = sys.argv[1:]
js = os.path.join(tmp, "closed.json")


def lg(threads):
    return [loadgen, "--target", f"nginx={url}", "-c", conns, "-d", f"{secs}s",
            "--threads", str(threads), "-q", "--json", js]


clients = [
    ("wrk -t2", ["wrk", "-t2", f"-c{conns}", f"-d{secs}s", url]),
    ("loadgen --threads 1", lg(1)),
    ("loadgen --threads 2", lg(2)),
]
per = {name: [] for name, _ in clients}
for r in range(int(rounds)):
    for name, argv in clients:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.stdout.read().decode()
        _, status, ru = os.wait4(p.pid, 0)
        if status != 0:
            sys.exit(f"{name} failed (wait status {status}): {out}")
        cpu = ru.ru_utime + ru.ru_stime
        if name.startswith("wrk"):
            n = int(re.search(r"(\d+) requests in", out).group(1))
            bad = re.search(r"Socket errors.*|Non-2xx.*", out)
            errors = bad.group(0) if bad else "0 errors"
        else:
            with open(js) as f:
                t = json.load(f)["total"]
            n = t["requests"]
            errors = f"{sum(t['errors'].values())} errors, {t['status'].get('2xx', 0)} 2xx"
        us = cpu / n * 1e6
        per[name].append(us)
        print(f"round {r + 1}  {name:20} {n:9d} requests  user {ru.ru_utime:6.2f} s"
              f"  sys {ru.ru_stime:6.2f} s  {us:6.2f} us/request"
              f"  {n / float(secs):8.0f} req/s  ({errors})", flush=True)
ref = statistics.median(per["wrk -t2"])
for name, _ in clients:
    m = statistics.median(per[name])
    rounds_text = ", ".join(f"{x:.2f}" for x in per[name])
    print(f"median {name:20} {m:6.2f} us/request  ratio to wrk {m / ref:.3f}  (rounds: {rounds_text})")
