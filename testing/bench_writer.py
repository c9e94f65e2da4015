"""`make bench` measurements of the writer-side commands on the seeded dataset: consistency_checks
and refresh_signature (issue 4).

Each command runs once with `-vv`, whose log names every request attempt (`[DEBUG] METHOD URL`):
the requests sent per collection are counted from it, and they make the command's floor: the same
requests (same methods, URLs, credentials and bodies: refresh_signature's PATCHes carry
`{"data": {"status": "to-resign"}}`) sent by one `curl --parallel --parallel-max PARALLEL_REQUESTS`
from a config file, without the command's ordering between them. Then the command and its floor run
alternately `bench.rounds` times (median wall time, CPU seconds, peak RSS of the binary, the Kinto
server's and PostgreSQL's CPU seconds); the ratio of the medians is the command's, against a
target of 1.3. Every run must succeed: the seeded dataset is consistent,
and the reviewer may write every source. refresh_signature re-signs every collection; it is
registered after the read-only measurements so that they run first, and consistency_checks runs
once more afterwards (re-signing moves no record).
"""

import collections
import json
import os
import re
import statistics

from bench import log as bench_log, measurement, median_or_none

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


PATCH_BODIES = {"refresh_signature": '{"data": {"status": "to-resign"}}'}


def curl_floor(bench, command, stderr, auth):
    """A curl config sending the requests of a `-vv` log, and the argv running it."""
    lines = []
    count = 0
    for line in stderr.splitlines():
        m = REQUEST.match(line)
        if not m:
            continue
        method, url = m.groups()
        count += 1
        lines.append(f'url = "{url}"')
        if method != "GET":
            lines.append(f'request = "{method}"')
            lines.append('header = "Content-Type: application/json"')
            body = PATCH_BODIES[command]
            lines.append("data = " + json.dumps(body))
        lines.append(f'user = "{auth}"')
        lines.append('output = "/dev/null"')
        lines.append("next")
    if lines:
        lines.pop()  # a last `next` would start an operation without a URL
    path = os.path.join(bench.workdir(), f"{command}-floor.curl")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    argv = ["curl", "--silent", "--show-error", "--no-progress-meter", "--fail", "--parallel", "--parallel-max",
            str(bench.parallel), "--config", path]
    return argv, count


def failed_run(bench, command, result):
    """A command run that failed, as figures: on Kinto with PostgreSQL, requests in flight into one
    bucket can be refused with 409 errno 122 ("please retry"), which the commands do not retry."""
    conflicts = result.stdout.count("HTTP 409") + result.stderr.count("HTTP 409")
    bench_log(f"  {command} -vv FAILED (exit {result.code}), {conflicts} answers 409 named in its output: "
              "not measured")
    return {"failed": True, "exit_code": result.code, "parallel_requests": bench.parallel,
            "http_409_named_in_output": conflicts, "stderr_tail": result.stderr[-1500:],
            "targets_met": {"ratio <= 1.3": False}}


def measure_command(bench, command, env, auth):
    verbose = bench.run([bench.bin, command, "-vv"], env)
    if verbose.code != 0:
        return failed_run(bench, command, verbose)
    per_collection, reads, other = request_counts(verbose.stderr)
    floor_argv, floor_requests = curl_floor(bench, command, verbose.stderr, auth)
    results = bench.alternate([("floor", floor_argv, env), (command, [bench.bin, command], env)])
    runs, floor = results[command], results["floor"]
    wall = statistics.median(r.wall for r in runs)
    floor_wall = statistics.median(r.wall for r in floor)
    retries = [line for line in verbose.stderr.splitlines() if RETRY.match(line)]
    n = len(per_collection) or 1
    return {
        "collections": len(per_collection),
        "rounds": bench.rounds,
        "parallel_requests": bench.parallel,
        "wall_seconds": round(wall, 3),
        "walls_per_round": [round(r.wall, 3) for r in runs],
        "floor": f"the same {floor_requests} requests by curl --parallel-max {bench.parallel}",
        "floor_wall_seconds": round(floor_wall, 3),
        "floor_walls_per_round": [round(r.wall, 3) for r in floor],
        "ratio": round(wall / floor_wall, 3),
        "ratios_per_round": [round(c.wall / f.wall, 3) for c, f in zip(runs, floor)],
        "floor_server_cpu_seconds": median_or_none([r.server_cpu for r in floor]),
        "pg_cpu_seconds": median_or_none([r.pg_cpu for r in runs]),
        "floor_pg_cpu_seconds": median_or_none([r.pg_cpu for r in floor]),
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
    figures = measure_command(bench, "consistency_checks", env, bench.stack_env["RSL_TEST_EDITOR_AUTH"])
    if figures.get("failed"):
        return figures
    figures["targets_met"] = {
        "<= 3 record reads per collection": figures["record_reads_per_collection_max"] <= 3,
        "ratio <= 1.3": figures["ratio"] <= 1.3}
    return figures


@measurement("refresh_signature",
             "refresh_signature re-signing every seeded collection: wall, CPU, requests per collection")
def bench_refresh_signature(bench):
    env = bench.command_env(REFRESH_SIGNATURE_AUTH=bench.stack_env["RSL_TEST_REVIEWER_AUTH"])
    figures = measure_command(bench, "refresh_signature", env, bench.stack_env["RSL_TEST_REVIEWER_AUTH"])
    if figures.get("failed"):
        return figures
    figures["targets_met"] = {"ratio <= 1.3": figures["ratio"] <= 1.3}
    after = bench.run([bench.bin, "consistency_checks"],
                      bench.command_env(AUTH=bench.stack_env["RSL_TEST_EDITOR_AUTH"])).check()
    figures["consistency_checks_ok_afterwards"] = after.stdout.count(" OK")
    return figures
