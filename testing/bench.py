#!/usr/bin/env python3
"""Benchmarks of the commands on a seeded Remote Settings stack (`make bench`; not part of `make test`).

It starts the test stack (testing/stack.py), seeds it with a dataset shaped like production (150+
signed collections, 50,000+ records, collections of 1 to 5,000 records, some published through
review into preview buckets, some signed by the onecrl signer), builds the release binary and the
examples, runs every registered measurement, prints a report and writes .bench/results.json.

Usage:
  testing/bench.py [--only NAME[,NAME]] [--rounds N] [--parallel N]   seed, measure, stop
        [--server pg|memory] [--workers N] [--threads N] [--no-build]
  testing/bench.py serve                      seed, print the stack's environment, wait (Ctrl-C)
  testing/bench.py measure [--only ...]       measure against a stack started by `serve`
                                              (reads RSL_TEST_* and .bench/dataset.json)
  testing/bench.py list                       the registered measurements

Adding a measurement: write a function taking the `Bench` context and returning a dict of figures,
decorated with `@measurement("name", "one line saying what it compares")`, in this file or in a
module `testing/bench_<name>.py` (imported automatically). `Bench` gives the seeded dataset
(`bench.dataset`: collections with bucket, source bucket, id, records), the stack's environment
(`bench.stack_env`, users' credentials included), the command line (`bench.options`; a module's
`add_arguments(parser)` adds options of its own), the release binary (`bench.bin`) and examples
(`bench.example(name)`), `bench.command_env(**settings)` for the commands' settings, and
`bench.run(argv, env)`, which returns wall time, CPU seconds and peak RSS of the child process. Run
the command and its floor alternately for `bench.rounds` rounds (`bench.alternate`, which also
records the Kinto server's CPU seconds during each run) so that load on the machine hits both
alike, and report medians. Seeding goes through `/batch` like a real client, into the stack's
"bulk" Kinto.

The bulk Kinto (`--server`):
- `pg` (the default, `make bench`): as production runs it, on PostgreSQL (storage, permission and
  cache backends `kinto.core.*.postgresql`, schema by `kinto migrate`) in a temporary cluster of
  Debian's PostgreSQL that the bench creates and removes (pgcluster.py), served by granian's WSGI
  interface with `--workers` processes (default 4) of `--threads` threads (default 4). Its CPU
  seconds are those of granian and all its workers; PostgreSQL's (the postmaster and its backends)
  are reported beside them (`bench.pg_cpu()`). Kinto logs every request's own time
  (`.bench/stack/kinto-bulk-requests.log`, read by `bench.requests_since(mark)`), and
  pg_stat_statements is loaded (`bench.pg_statements_top()`). Kinto on PostgreSQL refuses a
  write that races another on the same collection's or bucket's timestamps with 409 ("please
  retry"): the seeder retries it and reports how often.
- `memory`: the test stack's own server, one waitress process on memory backends, whose
  permission backend is indexed (see kinto_indexed_permission.py: the stock memory backend makes
  seeding quadratic); seeding takes about two minutes.
The edge fixture (RSL_TEST_EDGE_SERVER) fronts the stack's main server, not the bulk one: no
measurement reads through it, so commands and floors alike go to the bulk Kinto directly.
"""

import argparse
import concurrent.futures
import contextlib
import copy
import glob
import importlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import pgcluster  # noqa: E402
import stack as stack_module  # noqa: E402

BENCH_DIR = os.path.join(ROOT, ".bench")
MEASUREMENTS = {}


def measurement(name, description):
    """Register a benchmark: `fn(bench) -> dict` of figures."""

    def register(fn):
        MEASUREMENTS[name] = (fn, description)
        return fn

    return register


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- The dataset -----------------------------------------------------------------------------------

# Source bucket -> (published buckets, review needed).
SOURCES = {
    "main-workspace": (["main", "main-preview"], True),
    "staging": (["blocklists"], False),
    "security-state-staging": (["security-state", "security-state-preview"], True),
}
WORDS = ("remote settings signer collection record preview review firefox blocklist certificate "
         "intermediate engine search partner locale region channel telemetry experiment").split()
UNICODE_WORDS = ["données", "Größe", "日本語", "русский", "مرحبا", "🦊", "𝄞", "naïve", "café", "ß"]


def collection_sizes(count, total, seed):
    """`count` sizes from 1 to 5,000 (both present), skewed small like production, summing to
    about `total`."""
    rng = random.Random(seed)
    raw = sorted(rng.lognormvariate(0, 1.5) for _ in range(count - 2))
    scale = (total - 5001) / sum(raw)
    sizes = [max(1, min(5000, round(r * scale))) for r in raw]
    # Clipping loses records: give them back to the mid-sized collections.
    missing = total - 5001 - sum(sizes)
    i = len(sizes) // 2
    while missing > 0:
        room = 5000 - sizes[i]
        take = min(room, missing)
        sizes[i] += take
        missing -= take
        i = (i + 1) % len(sizes)
    return [1] + sizes + [5000]


def make_record(rng, index):
    words = lambda n: " ".join(rng.choice(WORDS + UNICODE_WORDS) for _ in range(n))  # noqa: E731
    record = {
        "id": f"{index:06d}-{rng.getrandbits(48):012x}",
        "title": words(rng.randint(2, 8)),
        "enabled": rng.random() < 0.8,
        "weight": rng.randint(0, 10_000),
        "tags": [rng.choice(WORDS) for _ in range(rng.randint(0, 5))],
        "details": {
            "created": f"20{rng.randint(10, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "url": f"https://example.com/{rng.choice(WORDS)}/{rng.getrandbits(32):08x}",
            "bug": rng.randint(1_000_000, 2_000_000),
        },
    }
    # Sizes from about 200 bytes to 2.5 KB.
    if rng.random() < 0.7:
        record["description"] = words(rng.randint(5, 60 if rng.random() < 0.9 else 300))
    return record


class RolledBack(Exception):
    """A `/batch` answer holding a 409 sub-response: Kinto aborted the batch's one transaction
    there, so the sub-requests before it were rolled back although they answered 2xx."""


def please_retry(error):
    """Is this failure one Kinto asks to send again? Its 409 "Integrity constraint violated, please
    retry" (errno 122): on PostgreSQL, two transactions writing the same collection, or the same
    bucket's history, gave two objects the same last_modified (its bump_timestamp trigger cannot
    see the other's uncommitted rows), and the whole request was rolled back; or a batch
    [`RolledBack`] at such a 409."""
    text = str(error)
    return isinstance(error, RolledBack) or ("HTTP 409" in text and '"errno":122' in text)


def with_retries(call, retryable=please_retry):
    """`call()`, again after a short growing pause while it fails in a way `retryable` accepts (at
    most 20 attempts); each retry is counted in `Seeder.conflicts`."""
    for attempt in range(20):
        try:
            return call()
        except Exception as e:  # noqa: BLE001 - `retryable` decides, the rest is raised
            if not retryable(e) or attempt == 19:
                raise
        Seeder.conflicts += 1
        time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))


class Seeder:
    def __init__(self, server):
        self.server = server.rstrip("/")
        info = stack_module.http("GET", self.server + "/")
        self.batch_size = int(info.get("settings", {}).get("batch_max_requests", 25))

    # Requests Kinto on PostgreSQL asked to send again (see `please_retry`).
    conflicts = 0

    def request(self, method, path, user, body=None):
        """One request, sent again while Kinto asks to (the seeder's writes carry no precondition,
        so sending one twice writes the same thing)."""
        def call():
            answer = stack_module.http(method, self.server + path, auth=user, body=body, timeout=900)
            responses = answer.get("responses") if isinstance(answer, dict) else None
            if responses and any(r["status"] == 409 for r in responses):
                raise RolledBack(f"{method} {path}: a sub-response 409")
            return answer
        return with_retries(call)

    def put_records(self, bucket, cid, records):
        for start in range(0, len(records), self.batch_size):
            chunk = records[start:start + self.batch_size]
            answer = self.request("POST", "/batch", "editor", {
                "defaults": {"method": "PUT"},
                "requests": [{"path": f"/buckets/{bucket}/collections/{cid}/records/{r['id']}",
                              "body": {"data": r}} for r in chunk],
            })
            bad = [r for r in answer["responses"] if not 200 <= r["status"] < 300]
            if bad:
                raise RuntimeError(f"batch write to {bucket}/{cid} failed: {bad[0]}")

    def publish(self, spec):
        bucket, cid = spec["source"], spec["id"]
        self.request("PUT", f"/buckets/{bucket}/collections/{cid}", "editor", {})
        rng = random.Random(spec["seed"])
        records = [make_record(rng, i) for i in range(spec["records"])]
        self.put_records(bucket, cid, records)
        path = f"/buckets/{bucket}/collections/{cid}"
        if SOURCES[bucket][1]:
            method, group_path, body = stack_module.reviewers_group(bucket, cid)
            self.request(method, group_path, "editor", body)
            self.request("PATCH", path, "editor", {"data": {"status": "to-review"}})
            self.request("PATCH", path, "reviewer", {"data": {"status": "to-sign"}})
        else:
            self.request("PATCH", path, "editor", {"data": {"status": "to-sign"}})
        return len(json.dumps(records))


def seed(server, collections, records, seed_value, workers):
    sizes = collection_sizes(collections, records, seed_value)
    rng = random.Random(seed_value)
    rng.shuffle(sizes)
    specs = []
    for i, size in enumerate(sizes):
        # About a quarter reviewed into main-preview, a few for the onecrl signer.
        source = "security-state-staging" if i % 40 == 7 else "main-workspace" if i % 4 == 1 else "staging"
        specs.append({"id": f"bench-{i:03d}", "source": source, "records": size,
                      "seed": seed_value * 1000 + i,
                      "published": SOURCES[source][0]})
    seeder = Seeder(server)
    started = time.monotonic()
    done = 0
    written = 0
    log(f"seeding {len(specs)} collections, {sum(sizes)} records, /batch of {seeder.batch_size}, "
        f"{workers} writers")
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for spec, size in zip(specs, pool.map(seeder.publish, specs)):
            done += 1
            written += spec["records"]
            spec["json_bytes"] = size
            if done % 20 == 0 or done == len(specs):
                elapsed = time.monotonic() - started
                log(f"  {done}/{len(specs)} collections, {written} records, {elapsed:.0f}s "
                    f"({written / elapsed:.0f} records/s)")
    elapsed = time.monotonic() - started
    published = [{"bucket": b, "collection": s["id"], "records": s["records"]}
                 for s in specs for b in s["published"]]
    return {
        "seed": seed_value,
        "collections": specs,
        "published": published,
        "source_records": sum(sizes),
        "published_records": sum(p["records"] for p in published),
        "seconds": round(elapsed, 1),
        "records_per_second": round(sum(sizes) / elapsed),
        "writes_retried_after_409": Seeder.conflicts,
    }


# --- Running and measuring -------------------------------------------------------------------------


# Forks and execs the measured command, then writes "wall user system max_rss_kb exit_code".
LAUNCHER = """
import os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
started = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.monotonic() - started
with open(out, "w") as f:
    f.write(f"{wall} {usage.ru_utime} {usage.ru_stime} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


class Result:
    def __init__(self, argv, code, wall, user, system, max_rss_kb, stdout, stderr):
        self.argv, self.code, self.wall = argv, code, wall
        self.user, self.system, self.cpu = user, system, user + system
        self.max_rss_bytes = max_rss_kb * 1024
        self.stdout, self.stderr = stdout, stderr

    def check(self):
        if self.code != 0:
            raise RuntimeError(f"{' '.join(self.argv)} exited {self.code}:\n{self.stdout[-2000:]}\n"
                               f"{self.stderr[-2000:]}")
        return self


class SplitCores:
    """The cores given to the server and to the client by `Bench.split_cores`."""

    def __init__(self, server, client):
        self.server, self.client = server, client
        self.prefix = ["taskset", "-c", ",".join(map(str, client))]


class Bench:
    def __init__(self, stack_env, dataset, rounds, parallel, options=None):
        self.stack_env = stack_env
        self.options = options
        self.server = stack_env["RSL_TEST_BULK_SERVER"]
        self.dataset = dataset
        self.rounds = rounds
        self.parallel = parallel
        self.bin = os.path.join(ROOT, "target", "release", "remote-settings-lambdas")

    def workdir(self):
        """A directory for a measurement's files (curl configs...), under .bench/."""
        path = os.path.join(BENCH_DIR, "work")
        os.makedirs(path, exist_ok=True)
        return path

    def example(self, name):
        return os.path.join(ROOT, "target", "release", "examples", name)

    def command_env(self, **settings):
        """Settings for a command run against the seeded server (only what is given, plus PATH)."""
        env = {"PATH": os.environ.get("PATH", ""), "SERVER": self.server,
               "PARALLEL_REQUESTS": str(self.parallel),
               # Kinto may take seconds to serialize a 5,000-record changeset on a busy machine.
               "REQUESTS_TIMEOUT_SECONDS": "120"}
        env.update({k: str(v) for k, v in settings.items()})
        return env

    def run(self, argv, env):
        """Run a child process; wall time, CPU seconds and peak RSS are its own.

        The child is started by a small `python3 -S` launcher rather than by this process: the
        peak RSS the kernel reports for a child (ru_maxrss) includes the memory of the process it
        was forked from, and this one holds the whole test stack's libraries. The launcher's own
        footprint (about 9 MB) is the floor of what can be measured."""
        with tempfile.NamedTemporaryFile("r", suffix=".rusage") as usage_file:
            proc = subprocess.run(
                [sys.executable, "-S", "-E", "-c", LAUNCHER, usage_file.name, *argv],
                env=env, capture_output=True,
            )
            fields = usage_file.read().split()
        if proc.returncode != 0 or len(fields) != 5:
            raise RuntimeError(f"the launcher failed for {argv}: {proc.stderr[-2000:]!r}")
        wall, user, system, max_rss_kb, code = fields
        return Result(argv, int(code), float(wall), float(user), float(system), int(max_rss_kb),
                      proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))

    def server_cpu(self):
        """CPU seconds used so far by the Kinto server, when it runs on this machine: its process
        and every descendant (granian's worker processes), live or exited."""
        pid = self.dataset.get("server_pid")
        try:
            return pgcluster.tree_cpu_seconds(int(pid)) if pid else None
        except (OSError, ValueError, TypeError):
            return None

    def pg_cpu(self):
        """CPU seconds used so far by the PostgreSQL server behind Kinto (the postmaster and its
        backends, live or exited), when there is one."""
        pid = self.dataset.get("pg_pid")
        try:
            return pgcluster.tree_cpu_seconds(int(pid)) if pid else None
        except (OSError, ValueError, TypeError):
            return None

    def server_usage(self):
        """(Kinto CPU seconds, PostgreSQL CPU seconds) so far, for differences around a run."""
        return self.server_cpu(), self.pg_cpu()

    def requests_log(self):
        """The bulk Kinto's request summaries (--server pg: one JSON line per request, with its
        time `t` in ms), or None."""
        path = os.path.join(self.stack_env.get("RSL_TEST_LOG_DIR", ""), "kinto-bulk-requests.log")
        return path if os.path.exists(path) else None

    def requests_mark(self):
        path = self.requests_log()
        return os.path.getsize(path) if path else None

    def requests_since(self, mark):
        """What the server logged since `mark`: requests by status, and per method and kind of
        path (`/batch`, `records`, `collection`...) their count, median and 90th percentile of
        Kinto's own time in ms."""
        path = self.requests_log()
        if path is None or mark is None:
            return None
        with open(path) as f:
            f.seek(mark)
            entries = [json.loads(line)["Fields"] for line in f if line.startswith("{")]
        codes, times = {}, {}
        for e in entries:
            codes[str(e.get("code"))] = codes.get(str(e.get("code")), 0) + 1
            parts = e.get("path", "").rstrip("/").split("/")
            kind = "batch" if parts[-1] == "batch" else (
                "records" if "records" in parts[-2:] else parts[-2] if len(parts) > 2 else "root")
            times.setdefault(f"{e.get('method')} {kind} {e.get('code')}", []).append(e.get("t", 0))
        summary = {}
        for key, values in sorted(times.items()):
            values.sort()
            summary[key] = {"count": len(values), "median_ms": values[len(values) // 2],
                            "p90_ms": values[int(len(values) * 0.9)], "total_ms": sum(values)}
        return {"requests": len(entries), "by_status": codes, "by_kind": summary}

    def pg_sql(self, query):
        url = self.stack_env.get("RSL_TEST_BULK_PG_URL")
        if not url:
            return None
        out = subprocess.run(["psql", "-X", "-At", "-F", "\t", url, "-c", query],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr[-1000:]}")
        return [line.split("\t") for line in out.stdout.splitlines()]

    def pg_statements_reset(self):
        self.pg_sql("SELECT pg_stat_statements_reset()")

    def pg_statements_top(self, n=8):
        """pg_stat_statements since the last reset: the statements taking most time."""
        rows = self.pg_sql(
            "SELECT calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3), "
            "regexp_replace(left(query, 160), '\\s+', ' ', 'g') FROM pg_stat_statements "
            f"ORDER BY total_exec_time DESC LIMIT {int(n)}")
        return None if rows is None else [
            {"calls": int(c), "total_ms": float(t), "mean_ms": float(m), "query": q}
            for c, t, m, q in rows]

    @staticmethod
    def usage_since(before, after):
        return tuple(None if b is None or a is None else round(a - b, 3)
                     for b, a in zip(before, after))

    @contextlib.contextmanager
    def split_cores(self):
        """Within it, the server (Kinto's processes and PostgreSQL's) runs on the first half of the
        cores and what is measured on the other half, as in production, where the server is not on
        the client's machine. Yields the `SplitCores` (whose `prefix` puts a child on the client's
        cores), or None when the server is not a local process or there is only one core."""
        cpus = sorted(os.sched_getaffinity(0))
        pids = [int(p) for p in (self.dataset.get("server_pid"), self.dataset.get("pg_pid")) if p]
        if len(cpus) < 2 or not pids:
            yield None
            return
        cores = SplitCores(server=cpus[:len(cpus) // 2], client=cpus[len(cpus) // 2:])
        for pid in pids:
            pgcluster.pin_tree(pid, set(cores.server))
        try:
            yield cores
        finally:
            for pid in pids:
                pgcluster.pin_tree(pid, set(cpus))

    def with_rounds(self, rounds):
        """This bench, running `rounds` rounds."""
        other = copy.copy(self)
        other.rounds = rounds
        return other

    def alternate(self, runs):
        """Run each `(name, argv, env)` once per round, alternating; returns name -> [Result].
        Each result also carries `server_cpu`: the Kinto server's CPU seconds during the run (the
        server shares this machine's cores with the measured command)."""
        results = {name: [] for name, _, _ in runs}
        for i in range(self.rounds):
            for name, argv, env in runs:
                before = self.server_usage()
                result = self.run(argv, env).check()
                result.server_cpu, result.pg_cpu = self.usage_since(before, self.server_usage())
                results[name].append(result)
                server = "" if result.server_cpu is None else f", server {result.server_cpu:.2f}s CPU"
                if result.pg_cpu is not None:
                    server += f", PostgreSQL {result.pg_cpu:.2f}s CPU"
                log(f"  round {i + 1}/{self.rounds} {name}: {result.wall:.2f}s wall, "
                    f"{result.cpu:.2f}s CPU, {result.max_rss_bytes / 2**20:.1f} MiB peak RSS{server}")
        return results


def median(values):
    return statistics.median(values)


def median_or_none(values):
    return None if None in values else round(statistics.median(values), 3)


# --- Measurements ----------------------------------------------------------------------------------


def validate_signature_against_floor(bench, env, prefix=(), label=""):
    """validate_signature and its floor, a plain parallel download of the same changesets with the
    same client and PARALLEL_REQUESTS (`commands/examples/download_changesets.rs`), run alternately
    (each argv after `prefix`; `label` after their names in the log). Every collection must verify.
    Returns the figures, medians over the rounds, and the runs of each."""
    results = bench.alternate([
        (f"floor{label}", [*prefix, bench.example("download_changesets")], env),
        (f"validate_signature{label}", [*prefix, bench.bin, "validate_signature"], env),
    ])
    floor, runs = results.values()
    report = json.loads(runs[-1].stdout)
    if report["totals"]["ok"] != report["totals"]["entries"]:
        raise RuntimeError(f"not every collection verified: {report['totals']}")
    sizes = json.loads(floor[-1].stdout)
    wall, floor_wall = median([r.wall for r in runs]), median([r.wall for r in floor])
    cpu = median([r.cpu for r in runs])
    figures = {
        "collections": report["totals"]["entries"],
        "changeset_bytes_total": sizes["bytes"],
        "largest_changeset_bytes": sizes["largest_bytes"],
        "wall_seconds": round(wall, 3),
        "floor_wall_seconds": round(floor_wall, 3),
        "ratio": round(wall / floor_wall, 3),
        "ratios_per_round": [round(v.wall / f.wall, 3) for v, f in zip(runs, floor)],
        "cpu_seconds": round(cpu, 3),
        "floor_cpu_seconds": round(median([r.cpu for r in floor]), 3),
        "cpu_ms_per_mb": round(cpu * 1000 / (sizes["bytes"] / 1e6), 2),
        "peak_rss_mib": round(max(r.max_rss_bytes for r in runs) / 2**20, 1),
    }
    return figures, floor, runs


@measurement("validate_signature",
             "validate_signature vs a plain parallel download of the same changesets (same PARALLEL_REQUESTS)")
def bench_validate_signature(bench):
    env = bench.command_env(ROOT_HASH=bench.stack_env["RSL_TEST_ROOT_HASH"], OUTPUT="json")
    shared, floor, validate = validate_signature_against_floor(bench, env)
    split = None
    with bench.split_cores() as cores:
        if cores is not None:
            figures, _, _ = validate_signature_against_floor(
                bench, env, cores.prefix, ", server on its own cores")
            split = {"server_cores": len(cores.server), "client_cores": len(cores.client),
                     **{k: figures[k] for k in ("wall_seconds", "floor_wall_seconds", "ratio",
                                                "ratios_per_round", "cpu_seconds", "cpu_ms_per_mb",
                                                "peak_rss_mib")}}
    largest = shared["largest_changeset_bytes"]
    rss_budget = 4 * largest + 30 * 2**20
    peak_rss = max(r.max_rss_bytes for r in validate)
    # The server shares this machine's cores: the command's CPU, Kinto's and PostgreSQL's during its
    # runs, spread perfectly over every core, is a wall time no run can beat on this machine.
    busy = [r.cpu + (r.server_cpu or 0) + (r.pg_cpu or 0) for r in validate]
    floor_wall = median([r.wall for r in floor])
    best_wall = max(floor_wall, median(busy) / (os.cpu_count() or 1))
    return {
        "collections_verified": shared.pop("collections"),
        **shared,
        "rounds": bench.rounds,
        "parallel_requests": bench.parallel,
        "server_cpu_seconds": median_or_none([r.server_cpu for r in validate]),
        "floor_server_cpu_seconds": median_or_none([r.server_cpu for r in floor]),
        "pg_cpu_seconds": median_or_none([r.pg_cpu for r in validate]),
        "floor_pg_cpu_seconds": median_or_none([r.pg_cpu for r in floor]),
        "rss_budget_mib": round(rss_budget / 2**20, 1),
        "rss_over_largest_changeset": round(peak_rss / largest, 2),
        "machine_bound_ratio": round(best_wall / floor_wall, 3),
        "split_cores": split,
        "targets_met": {"ratio <= 1.15": shared["ratio"] <= 1.15,
                        **({} if split is None else {
                            "ratio <= 1.15, server on its own cores": split["ratio"] <= 1.15}),
                        "CPU <= 8 ms per MB": shared["cpu_ms_per_mb"] <= 8,
                        "peak RSS < 4 x largest + 30 MB": peak_rss < rss_budget},
    }


def load_plugins(parser):
    """Import the `bench_<name>.py` modules; a module's `add_arguments(parser)`, when it has one,
    adds its own options (the measurement reads them from `bench.options`)."""
    # The plugins `from bench import measurement`: when this file runs as a script, make that name
    # this very module, or they would register into a second copy of it.
    sys.modules.setdefault("bench", sys.modules[__name__])
    for path in sorted(glob.glob(os.path.join(HERE, "bench_*.py"))):
        module = importlib.import_module(os.path.splitext(os.path.basename(path))[0])
        if hasattr(module, "add_arguments"):
            module.add_arguments(parser)


# --- Main ------------------------------------------------------------------------------------------


def build(args):
    if args.no_build:
        log("--no-build: using the release binary and examples in target/release as they are")
        return
    log("building the release binary and examples")
    subprocess.run(["cargo", "build", "--release", "--workspace", "--bins", "--examples"],
                   cwd=ROOT, check=True)


def measure(stack_env, dataset, args):
    names = args.only.split(",") if args.only else list(MEASUREMENTS)
    unknown = [n for n in names if n not in MEASUREMENTS]
    if unknown:
        sys.exit(f"unknown measurement(s): {', '.join(unknown)}; see `bench.py list`")
    bench = Bench(stack_env, dataset, args.rounds, args.parallel, args)
    load = os.getloadavg()
    results = {"dataset": {k: v for k, v in dataset.items()
                           if k not in ("collections", "published", "server_pid", "pg_pid")},
               "machine": {"cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in load]},
               "measurements": {}}
    for name in names:
        fn, description = MEASUREMENTS[name]
        log(f"measuring {name}: {description}")
        try:
            results["measurements"][name] = fn(bench)
        except Exception as e:  # noqa: BLE001 - told in the results and the summary, the run goes on
            log(f"  {name} FAILED: {type(e).__name__}: {e}")
            results["measurements"][name] = {"error": f"{type(e).__name__}: {e}"}
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        # Written after each measurement, so that an interrupted run keeps what it measured.
        os.makedirs(BENCH_DIR, exist_ok=True)
        with open(os.path.join(BENCH_DIR, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
    print_summary(results)
    return results


# Headline figures of a measurement's results: its ratios against floors and growths.
HEADLINE = ("ratio", "machine_bound_ratio", "command_vs_floor", "in_flight_speedup", "cpu_ms_per_mb",
            "peak_rss_mib")


def failed(results):
    """The exit status of a run: 1 when a measurement failed."""
    return int(any("error" in m for m in results["measurements"].values()))


def print_summary(results):
    """Every measurement's headline figures and targets, after the JSON (on stdout)."""
    print("\nSummary (targets: met / NOT met)")
    for name, figures in results["measurements"].items():
        if "error" in figures:
            print(f"  {name}: FAILED ({figures['error']})")
            continue
        heads = ", ".join(f"{k} {figures[k]}" for k in HEADLINE if k in figures)
        if figures.get("split_cores"):
            split = figures["split_cores"]
            heads += (f"; server on its own cores: ratio {split['ratio']}, "
                      f"cpu_ms_per_mb {split['cpu_ms_per_mb']}")
        print(f"  {name}: {heads}" if heads else f"  {name}:")
        for target, met in figures.get("targets_met", {}).items():
            print(f"    {'met' if met else 'NOT met'}: {target}")


def server_description(args):
    if args.server == "memory":
        return {"kind": "memory", "backends": "kinto.core.*.memory (indexed permissions)",
                "server": "waitress, 1 process, 8 threads"}
    return {"kind": "pg", "backends": "kinto.core.*.postgresql",
            "postgresql": os.path.basename(os.path.dirname(pgcluster.find_bindir())),
            "server": f"granian --interface wsgi, {args.workers} workers, "
                      f"{args.threads} blocking threads each"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", default="all", choices=["all", "serve", "measure", "list"])
    parser.add_argument("--only", help="comma-separated measurement names")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=4, help="PARALLEL_REQUESTS (default 4)")
    parser.add_argument("--collections", type=int, default=160)
    parser.add_argument("--records", type=int, default=52_000)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--writers", type=int, default=2, help="parallel seeding requests")
    parser.add_argument("--server", choices=["pg", "memory"], default="pg",
                        help="the bulk Kinto the benches seed and measure: 'pg' (default) on "
                             "PostgreSQL in a temporary cluster, served by granian with --workers "
                             "processes, as production runs it; 'memory': one waitress process on "
                             "memory backends (the test stack's own server)")
    parser.add_argument("--workers", type=int, default=4, help="granian worker processes (--server pg)")
    parser.add_argument("--threads", type=int, default=4,
                        help="granian blocking threads per worker (--server pg)")
    parser.add_argument("--no-build", action="store_true",
                        help="do not run cargo: use target/release as it is")
    load_plugins(parser)
    args = parser.parse_args()
    if args.mode == "list":
        for name, (_, description) in MEASUREMENTS.items():
            print(f"{name:30} {description}")
        return 0
    if args.mode == "measure":
        stack_env = {k: v for k, v in os.environ.items() if k.startswith("RSL_TEST_")}
        if "RSL_TEST_BULK_SERVER" not in stack_env:
            sys.exit("RSL_TEST_* is not set: start the seeded stack with `bench.py serve` and export its lines")
        with open(os.path.join(BENCH_DIR, "dataset.json")) as f:
            dataset = json.load(f)
        build(args)
        return failed(measure(stack_env, dataset, args))

    if args.mode == "all":
        build(args)
    bulk_pg = {"workers": args.workers, "threads": args.threads} if args.server == "pg" else None
    the_stack = stack_module.Stack(os.path.join(BENCH_DIR, "stack"), bulk_pg=bulk_pg)

    def on_signal(signum, frame):
        the_stack.stop()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    os.makedirs(BENCH_DIR, exist_ok=True)
    the_stack.start()
    try:
        dataset = seed(the_stack.env["RSL_TEST_BULK_SERVER"], args.collections, args.records, args.seed,
                       args.writers)
        dataset["server_pid"] = int(the_stack.env["RSL_TEST_BULK_PID"])
        if "RSL_TEST_BULK_PG_PID" in the_stack.env:
            dataset["pg_pid"] = int(the_stack.env["RSL_TEST_BULK_PG_PID"])
        dataset["server"] = server_description(args)
        log(f"seeded {dataset['source_records']} records in {len(dataset['collections'])} collections "
            f"({dataset['published_records']} published records in {len(dataset['published'])} "
            f"collections) in {dataset['seconds']}s ({dataset['records_per_second']} records/s)")
        with open(os.path.join(BENCH_DIR, "dataset.json"), "w") as f:
            json.dump(dataset, f, indent=1)
        if args.mode == "serve":
            for k, v in the_stack.env.items():
                print(f"export {k}={v}")
            sys.stdout.flush()
            log("serving the seeded stack; run `testing/bench.py measure` with these variables; Ctrl-C stops")
            while True:
                time.sleep(3600)
        return failed(measure(the_stack.env, dataset, args))
    finally:
        the_stack.stop()


if __name__ == "__main__":
    sys.exit(main())
