"""`make bench` measurement of backport_records (issues 5 and 17): 5,000 records into an empty
destination on the stack's bulk Kinto, in three ways per round, each into a new empty collection:

- `command`: the binary, with PARALLEL_REQUESTS as given to the bench (4 by default). It sends its
  `/batch` chunks one at a time whatever PARALLEL_REQUESTS allows (its reads run together).
- `floor`: the same chunks (the same sub-requests, `PUT` with `If-None-Match: *`, of
  `batch_max_requests` each) sent by the bench itself, one at a time: what one writer costs.
- `in_flight`: the same chunks sent by the bench with PARALLEL_REQUESTS of them in flight, a
  chunk refused with 409 (as a whole, or in a sub-response: Kinto then rolled back the chunk's
  transaction) sent again until it passes. This is what the server can gain from writers in
  flight into one collection, told by the server itself: its rate against the floor's, the 409s
  it answered, and its own CPU and time per request.

The order of the three turns from round to round, so that each gets the same share of the drift
of a server holding more and more records. Each run's destination is checked to hold every record.
Reports records per second of each way, command / floor, in_flight / floor (issue 17's 2.5×
target), the 409s, Kinto's and PostgreSQL's CPU seconds, and (--server pg) what the server logged.
"""

import concurrent.futures
import os
import statistics
import threading
import time

import stack as stack_module
from bench import Seeder, log as bench_log, measurement

RECORDS = 5000
WAYS = ("command", "floor", "in_flight")


def seed(bench, bid):
    """The scratch bucket with its `source` collection of RECORDS records; returns a function
    sending one request to the bench's Kinto as the editor."""
    seeder = Seeder(bench.server)

    def kinto(method, path, body=None):
        return seeder.request(method, path, "editor", body)

    kinto("PUT", f"/buckets/{bid}", {"permissions": {"read": ["system.Everyone"]}})
    kinto("PUT", f"/buckets/{bid}/collections/source", {})
    seeder.put_records(bid, "source", [
        {"id": f"rec-{i:05d}", "name": f"Record {i}", "enabled": i % 3 != 0,
         "filter_expression": f"env.version >= {i % 100}", "tags": ["bench", f"t{i % 7}"]}
        for i in range(RECORDS)
    ])
    return kinto, seeder.batch_size


def chunks_for(records, bid, dest, size):
    """The `/batch` bodies backport_records sends for an empty destination."""
    subs = [{"method": "PUT", "path": f"/buckets/{bid}/collections/{dest}/records/{r['id']}",
             "headers": {"If-None-Match": "*"},
             "body": {"data": {k: v for k, v in r.items() if k != "last_modified"}}}
            for r in records]
    return [{"requests": subs[i:i + size]} for i in range(0, len(subs), size)]


def send_chunks(server, chunks, in_flight):
    """Send the chunks, `in_flight` at a time, each again until Kinto takes it (a 412 sub-response
    is a write an earlier attempt applied). Returns the 409s: chunks refused as a whole, and chunks
    answered 200 with a 409 sub-response (rolled back)."""
    refused = {"batch_409": 0, "sub_response_409": 0}
    counting = threading.Lock()  # `+=` on a dict's value is not atomic across threads

    def count(kind):
        with counting:
            refused[kind] += 1

    def send(chunk):
        for _ in range(50):
            try:
                answer = stack_module.http("POST", server + "/batch", auth="editor", body=chunk,
                                           timeout=300)
            except RuntimeError as e:
                if "HTTP 409" not in str(e):
                    raise
                count("batch_409")
                continue
            statuses = [r["status"] for r in answer["responses"]]
            if 409 in statuses:
                count("sub_response_409")
                continue
            bad = [s for s in statuses if s not in (200, 201, 412)]
            if bad:
                raise RuntimeError(f"batch refused: {answer['responses'][statuses.index(bad[0])]}")
            return
        raise RuntimeError("a chunk was refused 50 times")

    with concurrent.futures.ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(send, chunks))
    return refused


@measurement("backport_records",
             "backport_records: 5,000 records into an empty destination, against the same batches "
             "sent one at a time, and what batches in flight gain on the server")
def bench_backport_records(bench):
    bid = f"bench-backport-{os.getpid()}"
    kinto, batch_size = seed(bench, bid)
    source = kinto("GET", f"/buckets/{bid}/collections/source/records")["data"]
    rates = {w: [] for w in WAYS}
    cpu = {w: {"kinto": [], "pg": []} for w in WAYS}
    refused = {"batch_409": [], "sub_response_409": []}
    # What the server says of each run (--server pg): requests by status and Kinto's own time per
    # kind of request, the statements PostgreSQL spent most time on.
    server_views = {w: [] for w in WAYS}
    failures = []
    for i in range(max(bench.rounds, 2)):
        for way in WAYS[i % 3:] + WAYS[:i % 3]:
            dest = f"dest-{i}-{way}"
            kinto("PUT", f"/buckets/{bid}/collections/{dest}", {})
            if bench.requests_log():
                bench.pg_statements_reset()
            mark = bench.requests_mark()
            before = bench.server_usage()
            if way == "command":
                env = bench.command_env(
                    BACKPORT_RECORDS_SOURCE_AUTH=bench.stack_env["RSL_TEST_EDITOR_AUTH"],
                    BACKPORT_RECORDS_SOURCE_BUCKET=bid,
                    BACKPORT_RECORDS_SOURCE_COLLECTION="source",
                    BACKPORT_RECORDS_DEST_COLLECTION=dest,
                )
                result = bench.run([bench.bin, "backport_records"], env)
                wall = result.wall
                last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
                if result.code != 0 or last != f"Done. {RECORDS} changes applied.":
                    failures.append({"code": result.code, "wall_seconds": round(wall, 3),
                                     "stdout_tail": result.stdout[-600:],
                                     "stderr_tail": result.stderr[-600:]})
                    bench_log(f"  backport_records into {dest} FAILED (exit {result.code}): "
                              f"{(result.stdout + result.stderr)[-300:]!r}")
                    continue
            else:
                chunks = chunks_for(source, bid, dest, batch_size)
                started = time.monotonic()
                counts = send_chunks(bench.server, chunks, 1 if way == "floor" else bench.parallel)
                wall = time.monotonic() - started
                if way == "in_flight":
                    for k, v in counts.items():
                        refused[k].append(v)
            kinto_cpu, postgres_cpu = bench.usage_since(before, bench.server_usage())
            view = bench.requests_since(mark)
            if view is not None:
                view["wall_seconds"] = round(wall, 3)
                view["kinto_cpu_seconds"], view["pg_cpu_seconds"] = kinto_cpu, postgres_cpu
                view["pg_top_statements"] = bench.pg_statements_top(5)
                server_views[way].append(view)
            # The bulk server pages by 10,000: one page holds the whole destination.
            copied = kinto("GET", f"/buckets/{bid}/collections/{dest}/records?_fields=id")["data"]
            if len(copied) != RECORDS:
                raise RuntimeError(f"{dest} holds {len(copied)} records, not {RECORDS}")
            extra = (f", 409s: {refused['batch_409'][-1]} batches, "
                     f"{refused['sub_response_409'][-1]} sub-responses" if way == "in_flight" else "")
            bench_log(f"  backport_records {way}: {RECORDS / wall:.0f} records/s, Kinto {kinto_cpu}s "
                      f"CPU, PostgreSQL {postgres_cpu}s CPU{extra}")
            rates[way].append(RECORDS / wall)
            if kinto_cpu is not None:
                cpu[way]["kinto"].append(round(kinto_cpu, 2))
            if postgres_cpu is not None:
                cpu[way]["pg"].append(round(postgres_cpu, 2))
    median = {w: statistics.median(r) if r else None for w, r in rates.items()}
    report = {
        "records": RECORDS,
        "parallel_requests": bench.parallel,
        "records_per_second": {w: round(m, 1) if m else None for w, m in median.items()},
        "runs": {w: [round(r, 1) for r in rates[w]] for w in WAYS},
        "in_flight_409s": refused,
        "cpu_seconds": cpu,
        "failures": failures,
        "server_views": server_views,
    }
    if median["command"] and median["floor"]:
        # Time ratio: the command's wall over the floor's, as for the other floors.
        report["command_vs_floor"] = round(median["floor"] / median["command"], 2)
        report["targets_met"] = {"command_vs_floor <= 1.3": report["command_vs_floor"] <= 1.3}
    if median["in_flight"] and median["floor"]:
        report["in_flight_speedup"] = round(median["in_flight"] / median["floor"], 2)
        report.setdefault("targets_met", {})["in_flight_speedup >= 2.5 (server)"] = \
            report["in_flight_speedup"] >= 2.5
    if failures:
        report.setdefault("targets_met", {})["no failed run"] = False
    return report
