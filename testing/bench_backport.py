"""`make bench` measurement of backport_records (issue 5): 5,000 records into an empty destination,
with several batches in flight (PARALLEL_REQUESTS as given to the bench, 4 by default) against one
batch at a time (PARALLEL_REQUESTS=1, the original's sequential way), in the same run on the same
server (the stack's bulk Kinto).

The source is a scratch bucket of the bulk server, seeded once. Each round runs both modes, in the
order sequential, parallel in odd rounds and parallel, sequential in even ones, each into a new
empty collection: the server slows down a little as it holds more records, and this order gives
both modes the same share of that drift. Reports records per second of each mode, their ratio and
the Kinto server's CPU seconds (Kinto is one Python process: when its CPU time is close to the wall
time, the server is the bottleneck and batches in flight can only queue there).
"""

import os
import statistics

from bench import Seeder, log as bench_log, measurement

RECORDS = 5000


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
    return kinto


@measurement("backport_records",
             "backport_records: 5,000 records into an empty destination, batches in flight vs one at a time")
def bench_backport_records(bench):
    bid = f"bench-backport-{os.getpid()}"
    kinto = seed(bench, bid)
    rates = {1: [], bench.parallel: []}
    server_cpu = {1: [], bench.parallel: []}
    pg_cpu = {1: [], bench.parallel: []}
    # What the server says of each run (--server pg): requests by status and Kinto's own time per
    # kind of request, the statements PostgreSQL spent most time on; failed runs and their cause.
    server_views = {1: [], bench.parallel: []}
    failures = {1: [], bench.parallel: []}
    for i in range(max(bench.rounds, 2)):
        order = [1, bench.parallel] if i % 2 == 0 else [bench.parallel, 1]
        for parallel in order:
            dest = f"dest-{i}-{parallel}"
            kinto("PUT", f"/buckets/{bid}/collections/{dest}", {})
            env = bench.command_env(
                PARALLEL_REQUESTS=parallel,
                BACKPORT_RECORDS_SOURCE_AUTH=bench.stack_env["RSL_TEST_EDITOR_AUTH"],
                BACKPORT_RECORDS_SOURCE_BUCKET=bid,
                BACKPORT_RECORDS_SOURCE_COLLECTION="source",
                BACKPORT_RECORDS_DEST_COLLECTION=dest,
            )
            if bench.requests_log():
                bench.pg_statements_reset()
            mark = bench.requests_mark()
            before = bench.server_usage()
            result = bench.run([bench.bin, "backport_records"], env)
            kinto_cpu, postgres_cpu = bench.usage_since(before, bench.server_usage())
            view = bench.requests_since(mark)
            if view is not None:
                view["wall_seconds"] = round(result.wall, 3)
                view["kinto_cpu_seconds"], view["pg_cpu_seconds"] = kinto_cpu, postgres_cpu
                view["pg_top_statements"] = bench.pg_statements_top(5)
                server_views[parallel].append(view)
            last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
            if result.code != 0 or last != f"Done. {RECORDS} changes applied.":
                # Reported, not raised: on PostgreSQL, Kinto refuses some concurrent batches with
                # 409 (see bench.Seeder.request), and the command does not retry a 409.
                failures[parallel].append({"code": result.code, "wall_seconds": round(result.wall, 3),
                                           "stdout_tail": result.stdout[-600:],
                                           "stderr_tail": result.stderr[-600:]})
                bench_log(f"  backport_records PARALLEL_REQUESTS={parallel} into {dest} FAILED "
                          f"(exit {result.code}): {(result.stdout + result.stderr)[-300:]!r}")
                continue
            # The bulk server pages by 10,000: one page holds the whole destination.
            copied = kinto("GET", f"/buckets/{bid}/collections/{dest}/records?_fields=id")["data"]
            if len(copied) != RECORDS:
                raise RuntimeError(f"{dest} holds {len(copied)} records, not {RECORDS}")
            bench_log(f"  backport_records PARALLEL_REQUESTS={parallel}: {RECORDS / result.wall:.0f} "
                      f"records/s, Kinto {kinto_cpu}s CPU, PostgreSQL {postgres_cpu}s CPU")
            rates[parallel].append(RECORDS / result.wall)
            if kinto_cpu is not None:
                server_cpu[parallel].append(kinto_cpu)
            if postgres_cpu is not None:
                pg_cpu[parallel].append(postgres_cpu)
    if not rates[1] or not rates[bench.parallel]:
        return {"records": RECORDS, "parallel_requests": bench.parallel, "failures": failures,
                "server_views": server_views, "targets_met": {"ratio >= 2.5": False}}
    seq, par = statistics.mean(rates[1]), statistics.mean(rates[bench.parallel])
    return {
        "records": RECORDS,
        "parallel_requests": bench.parallel,
        "runs_per_mode": len(rates[1]),
        "sequential_records_per_second": round(seq, 1),
        "parallel_records_per_second": round(par, 1),
        "ratio": round(par / seq, 2),
        "sequential_runs": [round(r, 1) for r in rates[1]],
        "parallel_runs": [round(r, 1) for r in rates[bench.parallel]],
        "server_cpu_seconds_sequential": [round(c, 2) for c in server_cpu[1]],
        "server_cpu_seconds_parallel": [round(c, 2) for c in server_cpu[bench.parallel]],
        "pg_cpu_seconds_sequential": [round(c, 2) for c in pg_cpu[1]],
        "pg_cpu_seconds_parallel": [round(c, 2) for c in pg_cpu[bench.parallel]],
        "failures": failures,
        "server_views": server_views,
        "targets_met": {"ratio >= 2.5": par / seq >= 2.5},
    }
