#!/usr/bin/env python3
"""Benchmark the writer-side commands (consistency_checks, refresh_signature) on a seeded stack.

Runs each command REPEAT times against SERVER and reports the median wall time, the CPU time
(user + system) and peak memory of the binary, then runs it once more with `-vv` to count the
requests it sent (every attempt is logged as `[DEBUG] METHOD URL`), per collection. Every run must
succeed (exit 0): the dataset is consistent, and the reviewer may write every source.

Usage, under `testing/stack.py run --` (which exports RSL_TEST_SERVER):
  bench_writer.py --bin target/release/remote-settings-lambdas [--seed] [--repeat 3] [--parallel 4]
`--seed` first publishes the dataset of seed_writer_bench.py (150 collections, 50,000 records);
without it the bench runs on whatever the server's monitor/changes lists (e.g. `make bench`'s data).
"""

import argparse
import collections
import os
import re
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_writer_bench  # noqa: E402

REQUEST = re.compile(r"^\[DEBUG\] (GET|PATCH|POST|PUT|DELETE) (\S+)$")
RETRY = re.compile(r"^\[INFO\] .*; retry \d+/\d+ in ")
COLLECTION = re.compile(r"/buckets/([^/?]+)/collections/([^/?]+)")


def run(binary, command, env, verbose=False):
    args = [binary, command] + (["-vv"] if verbose else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{command} exited with {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu, after.ru_maxrss / 1024


def request_counts(stderr, monitor):
    """Requests per collection id (sides of one per-bucket resource share it), and the others."""
    per_collection = collections.Counter()
    other = 0
    for line in stderr.splitlines():
        m = REQUEST.match(line)
        if not m:
            continue
        c = COLLECTION.search(m.group(2))
        if c and (c.group(1), c.group(2)) != monitor:
            per_collection[c.group(2)] += 1
        else:
            other += 1
    return per_collection, other


def bench(binary, command, env, repeat, monitor):
    walls, cpus, rss = [], [], 0.0
    for _ in range(repeat):
        proc, wall, cpu, maxrss = run(binary, command, env)
        walls.append(wall)
        cpus.append(cpu)
        rss = max(rss, maxrss)
    proc, *_ = run(binary, command, env, verbose=True)
    per_collection, other = request_counts(proc.stderr, monitor)
    total = sum(per_collection.values()) + other
    retries = [line for line in proc.stderr.splitlines() if RETRY.match(line)]
    n = len(per_collection) or 1
    print(f"{command}: {len(per_collection)} collections, "
          f"median wall {statistics.median(walls):.2f}s (runs: "
          f"{', '.join(f'{w:.2f}' for w in walls)}), CPU {statistics.median(cpus):.2f}s, "
          f"peak RSS {rss:.0f} MiB; requests {total} "
          f"({other} shared, per collection mean {sum(per_collection.values()) / n:.2f}, "
          f"max {max(per_collection.values(), default=0)}), {len(retries)} retried", flush=True)
    for line in retries[:5]:
        print(f"    {line}", flush=True)
    return proc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--server", default=os.environ.get("RSL_TEST_SERVER"))
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--collections", type=int, default=150)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallel", default="4")
    parser.add_argument("--timeout", default="2", help="REQUESTS_TIMEOUT_SECONDS")
    args = parser.parse_args()
    if not args.server:
        parser.error("give --server or run under testing/stack.py (RSL_TEST_SERVER)")
    if args.seed:
        seed_writer_bench.seed(args.server, args.collections, args.records)

    base = {"PATH": os.environ.get("PATH", ""), "SERVER": args.server,
            "PARALLEL_REQUESTS": args.parallel, "REQUESTS_TIMEOUT_SECONDS": args.timeout}
    monitor = ("monitor", "changes")
    print(f"bench-writer on {args.server}, PARALLEL_REQUESTS={args.parallel}, "
          f"REQUESTS_TIMEOUT_SECONDS={args.timeout}", flush=True)
    bench(args.bin, "consistency_checks", dict(base, AUTH="editor:editor-pass"),
          args.repeat, monitor)
    bench(args.bin, "refresh_signature",
          dict(base, REFRESH_SIGNATURE_AUTH="reviewer:reviewer-pass"), args.repeat, monitor)
    # Re-signing moved no record: everything is still consistent.
    proc, *_ = run(args.bin, "consistency_checks", dict(base, AUTH="editor:editor-pass"))
    print(f"consistency_checks after the refreshes: {proc.stdout.count(' OK')} OK", flush=True)


if __name__ == "__main__":
    main()
