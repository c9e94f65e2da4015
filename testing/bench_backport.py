#!/usr/bin/env python3
"""Benchmark of backport_records: 5,000 records into an empty destination, with several batches in
flight (the default PARALLEL_REQUESTS=4) against one batch at a time (PARALLEL_REQUESTS=1, the
original's sequential way), measured in the same run on the same server.

Run through the test stack (it needs RSL_TEST_BULK_SERVER and RSL_TEST_EDITOR_AUTH):
    make bench-backport
or  .venv/bin/python testing/stack.py run -- .venv/bin/python testing/bench_backport.py BINARY

Each mode runs twice, in the order sequential, parallel, parallel, sequential, each into a new empty
collection: the server slows down a little as it holds more records, and this order gives both
modes the same share of that drift. Prints one line per run, then the mean records per second of
each mode and their ratio.
"""

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

RECORDS = 5000
BATCH = 25


def kinto(server, auth, method, path, body=None):
    req = urllib.request.Request(server + path, method=method)
    req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, data=data, timeout=120) as resp:
        return json.loads(resp.read() or b"null")


def seed(server, auth, bid):
    kinto(server, auth, "PUT", f"/buckets/{bid}", {"permissions": {"read": ["system.Everyone"]}})
    kinto(server, auth, "PUT", f"/buckets/{bid}/collections/source", {})
    records = [
        {"id": f"rec-{i:05d}", "name": f"Record {i}", "enabled": i % 3 != 0,
         "filter_expression": f"env.version >= {i % 100}", "tags": ["bench", f"t{i % 7}"]}
        for i in range(RECORDS)
    ]
    for start in range(0, RECORDS, BATCH):
        requests = [
            {"method": "PUT", "path": f"/buckets/{bid}/collections/source/records/{r['id']}",
             "body": {"data": r}}
            for r in records[start:start + BATCH]
        ]
        answer = kinto(server, auth, "POST", "/batch", {"requests": requests})
        assert all(r["status"] in (200, 201) for r in answer["responses"]), answer


def cpu_seconds(pid):
    """User + system CPU time of a process so far (Linux /proc), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backport(binary, server, auth, bid, dest, parallel):
    kinto(server, auth, "PUT", f"/buckets/{bid}/collections/{dest}", {})
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SERVER": server,
        "BACKPORT_RECORDS_SOURCE_AUTH": auth,
        "BACKPORT_RECORDS_SOURCE_BUCKET": bid,
        "BACKPORT_RECORDS_SOURCE_COLLECTION": "source",
        "BACKPORT_RECORDS_DEST_COLLECTION": dest,
        "PARALLEL_REQUESTS": str(parallel),
    }
    started = time.monotonic()
    run = subprocess.run([binary, "backport_records"], env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    if run.returncode != 0 or last != f"Done. {RECORDS} changes applied.":
        sys.exit(f"backport into {dest} failed (exit {run.returncode}): {last}\n{run.stderr[-2000:]}")
    copied = kinto(server, auth, "GET", f"/buckets/{bid}/collections/{dest}/records")["data"]
    if len(copied) != RECORDS:
        sys.exit(f"{dest} holds {len(copied)} records, not {RECORDS}")
    return elapsed


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    server = os.environ["RSL_TEST_BULK_SERVER"]
    auth = os.environ["RSL_TEST_EDITOR_AUTH"]
    bid = f"bench-backport-{os.getpid()}"
    load = os.getloadavg()[0]
    started = time.monotonic()
    seed(server, auth, bid)
    print(f"seeded {RECORDS} source records in {time.monotonic() - started:.1f}s "
          f"(load average {load:.1f} on {os.cpu_count()} CPUs)")
    times = {1: [], 4: []}
    server_pid = int(os.environ["RSL_TEST_BULK_PID"])
    for run, parallel in enumerate([1, 4, 4, 1]):
        server_cpu = cpu_seconds(server_pid)
        elapsed = backport(binary, server, auth, bid, f"dest-{run}", parallel)
        server_cpu = cpu_seconds(server_pid) - server_cpu
        times[parallel].append(elapsed)
        mode = "one batch at a time  " if parallel == 1 else "4 batches in flight  "
        # Kinto is one Python process: when its CPU time is close to the wall time, the server is
        # the bottleneck and batches in flight can only queue there.
        print(f"{mode} PARALLEL_REQUESTS={parallel}: {elapsed:6.2f}s {RECORDS / elapsed:7.1f} records/s, "
              f"Kinto CPU {server_cpu:5.2f}s ({100 * server_cpu / elapsed:.0f}% of wall time)")
    rate = {p: RECORDS * len(t) / sum(t) for p, t in times.items()}
    print(f"mean: sequential {rate[1]:.1f} records/s, parallel {rate[4]:.1f} records/s, "
          f"ratio {rate[4] / rate[1]:.2f}x (load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
