"""`make bench` measurements of the writer-side commands on the seeded dataset: consistency_checks
and refresh_signature (issue 4).

Each command runs `bench.rounds` times (median wall time, CPU seconds, peak RSS of the binary), then
once more with `-vv`, whose log names every request attempt (`[DEBUG] METHOD URL`): the requests
sent per collection are counted from it. Every run must succeed: the seeded dataset is consistent,
and the reviewer may write every source. refresh_signature re-signs every collection; it is
registered after the read-only measurements so that they run first, and consistency_checks runs
once more afterwards (re-signing moves no record).
"""

import collections
import re
import statistics

from bench import measurement

REQUEST = re.compile(r"^\[DEBUG\] (GET|PATCH|POST|PUT|DELETE) (\S+)$")
RETRY = re.compile(r"^\[INFO\] .*; retry \d+/\d+ in ")
COLLECTION = re.compile(r"/buckets/([^/?]+)/collections/([^/?]+)")
MONITOR = ("monitor", "changes")


def request_counts(stderr):
    """Requests per collection id (the sides of one signer resource share it), record reads (GET of
    records or changeset) per collection id, and the other requests (server info, monitor/changes)."""
    per_collection = collections.Counter()
    reads = collections.Counter()
    other = 0
    for line in stderr.splitlines():
        m = REQUEST.match(line)
        if not m:
            continue
        c = COLLECTION.search(m.group(2))
        if c and (c.group(1), c.group(2)) != MONITOR:
            per_collection[c.group(2)] += 1
            if m.group(1) == "GET" and re.search(r"/(records|changeset)\b", m.group(2)):
                reads[c.group(2)] += 1
        else:
            other += 1
    return per_collection, reads, other


def measure_command(bench, command, env):
    runs = bench.alternate([(command, [bench.bin, command], env)])[command]
    verbose = bench.run([bench.bin, command, "-vv"], env).check()
    per_collection, reads, other = request_counts(verbose.stderr)
    retries = [line for line in verbose.stderr.splitlines() if RETRY.match(line)]
    n = len(per_collection) or 1
    return {
        "collections": len(per_collection),
        "rounds": bench.rounds,
        "parallel_requests": bench.parallel,
        "wall_seconds": round(statistics.median(r.wall for r in runs), 3),
        "walls_per_round": [round(r.wall, 3) for r in runs],
        "cpu_seconds": round(statistics.median(r.cpu for r in runs), 3),
        "peak_rss_mib": round(max(r.max_rss_bytes for r in runs) / 2**20, 1),
        "server_cpu_seconds": None if None in [r.server_cpu for r in runs]
        else round(statistics.median(r.server_cpu for r in runs), 3),
        "requests_total": sum(per_collection.values()) + other,
        "requests_shared": other,
        "requests_per_collection_mean": round(sum(per_collection.values()) / n, 2),
        "requests_per_collection_max": max(per_collection.values(), default=0),
        "record_reads_per_collection_max": max(reads.values(), default=0),
        "retries": len(retries),
    }


@measurement("consistency_checks",
             "consistency_checks on every seeded collection: wall, CPU, requests per collection")
def bench_consistency_checks(bench):
    env = bench.command_env(AUTH=bench.stack_env["RSL_TEST_EDITOR_AUTH"])
    figures = measure_command(bench, "consistency_checks", env)
    figures["targets_met"] = {
        "<= 3 record reads per collection": figures["record_reads_per_collection_max"] <= 3}
    return figures


@measurement("refresh_signature",
             "refresh_signature re-signing every seeded collection: wall, CPU, requests per collection")
def bench_refresh_signature(bench):
    env = bench.command_env(REFRESH_SIGNATURE_AUTH=bench.stack_env["RSL_TEST_REVIEWER_AUTH"])
    figures = measure_command(bench, "refresh_signature", env)
    after = bench.run([bench.bin, "consistency_checks"],
                      bench.command_env(AUTH=bench.stack_env["RSL_TEST_EDITOR_AUTH"])).check()
    figures["consistency_checks_ok_afterwards"] = after.stdout.count(" OK")
    return figures
