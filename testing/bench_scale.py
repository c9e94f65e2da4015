"""`make bench` measurement of how the readers' cost grows with the data (issue 17, goal 4):
validate_signature and consistency_checks on 1x, 4x and 16x the seeded dataset.

Seeding 16x the dataset (about 730 MB of changesets) into Kinto would take hours, and would
measure the seeder more than the commands. So the data is multiplied in front of the server
instead: a relay (edge.py's, with a rewrite) lists every collection of the monitor list `k` times,
the copies named `x<i>--<cid>` (the whole list once, then each round of copies in the same
order, also once sorted by name as consistency_checks does), and sends every request for a copy to the real collection. Each
copy is then a real, signed collection for the commands: its changeset, its records, its preview
and its signature are the server's own, read from Kinto at every request. Only collections that a
bucket-wide signer resource covers are multiplied (a copy's name must resolve to the same source,
preview and destination); the others appear once at every factor.

At each factor, both commands run alternately with their floors (validate_signature: the
`download_changesets` example; consistency_checks: the same requests by curl, see
bench_writer.py), through the same relay. Reported per factor: wall, CPU, peak RSS, and the
changesets' total and largest sizes; then each figure's growth, `figure(k) / (k x figure(1))`,
which is at most 1 when it grows at most linearly. The largest changeset does not grow with `k`,
so neither may peak RSS beyond what each collection leaves in the report: it is bounded by the
changesets in flight, not by the total.
"""

import json
import os
import re
import urllib.request

import edge
from bench import log, measurement, validate_signature_against_floor
from bench_writer import measure_command

COPY = re.compile(r"(/collections/)x\d+--(?=[A-Za-z0-9_-]+(/|$))")
MONITOR_CHANGESET = "/buckets/monitor/collections/changes/changeset"
# Linear growth, with room for a round's noise.
LINEAR = 1.1
# Peak RSS that does not follow the data: each collection's line of the report is all a run keeps
# (a 16x run adds 730 MB of changesets; at this bound, at most 12 MB of RSS).
PER_COLLECTION_KIB = 4


def add_arguments(parser):
    parser.add_argument("--scale-factors", default="1,4,16",
                        help="scale: the factors the dataset is multiplied by (default 1,4,16)")
    parser.add_argument("--scale-rounds", type=int, default=1,
                        help="scale: rounds per factor (default 1: 16x alone is minutes a round)")


def multiplied_buckets(server):
    """The buckets of the signer resources that cover whole buckets: their collections may be
    multiplied, since a copy's name resolves like the original's."""
    with urllib.request.urlopen(server.rstrip("/") + "/") as answer:
        info = json.load(answer)
    buckets = set()
    for resource in info["capabilities"]["signer"]["resources"]:
        sides = [resource.get(side) for side in ("source", "preview", "destination")]
        if all(s is None or s.get("collection") is None for s in sides):
            buckets.update(s["bucket"] for s in sides if s)
    return buckets


def copy_route(path, _query):
    """A copy's requests go to the collection it copies."""
    return ("kinto", COPY.sub(r"\1", path))


def multiplying(factor, buckets):
    """The rewrite listing each entry of the monitor list `factor` times (copies `x1--`...)."""
    def rewrite(path, body):
        if not path.rstrip("/").endswith(MONITOR_CHANGESET):
            return body
        data = json.loads(body)
        entries = data["changes"]
        # The list, then each round of copies in the same order: the changesets in flight at any
        # moment are drawn from the same sizes at every factor (copies listed next to their
        # original would put `PARALLEL_REQUESTS` copies of the largest one in flight together).
        data["changes"] = entries + [
            dict(entry, id=f"{entry['id']}-x{i}", collection=f"x{i}--{entry['collection']}")
            for i in range(1, factor) for entry in entries if entry["bucket"] in buckets]
        return json.dumps(data).encode()
    return rewrite


def growth(per_factor, figure):
    """`figure(k) / (k x figure(1))` for each factor k after the first."""
    base_factor = per_factor[0]["factor"]
    base = per_factor[0][figure]
    return {str(p["factor"]): round(p[figure] * base_factor / (p["factor"] * base), 3)
            for p in per_factor[1:]}


def validate_signature_at(bench, env):
    figures, _, _ = validate_signature_against_floor(bench, env)
    keep = ("collections", "changeset_bytes_total", "largest_changeset_bytes", "wall_seconds",
            "floor_wall_seconds", "ratio", "cpu_seconds", "peak_rss_mib")
    return {k: figures[k] for k in keep}


def consistency_checks_at(bench, env, auth):
    figures = measure_command(bench, "consistency_checks", env, auth)
    if figures.get("failed"):
        raise RuntimeError(f"consistency_checks failed: {figures['stderr_tail']}")
    keep = ("collections", "wall_seconds", "floor_wall_seconds", "ratio", "cpu_seconds", "peak_rss_mib",
            "requests_total")
    return {k: figures[k] for k in keep}


def rss_per_added_collection_kib(per_factor):
    """Peak RSS gained per collection added between the first factor and the last, in KiB."""
    first, last = per_factor[0], per_factor[-1]
    added = last["collections"] - first["collections"]
    return round((last["peak_rss_mib"] - first["peak_rss_mib"]) * 1024 / added, 2) if added else 0.0


def targets(per_factor, largest_bytes=None):
    """Linear growth of wall and CPU; peak RSS that does not follow the bytes (what each collection
    leaves in the report, at most PER_COLLECTION_KIB, and no more) and, for validate_signature,
    within its budget of 4 x the largest changeset + 30 MB at every factor."""
    met = {}
    for figure in ("wall_seconds", "cpu_seconds"):
        worst = max(growth(per_factor, figure).values(), default=0)
        met[f"{figure} grows at most linearly (growth <= {LINEAR})"] = worst <= LINEAR
    per_collection = rss_per_added_collection_kib(per_factor)
    met[f"peak RSS gains <= {PER_COLLECTION_KIB} KiB per added collection"] = (
        per_collection <= PER_COLLECTION_KIB)
    if largest_bytes is not None:
        budget = (4 * largest_bytes + 30 * 2**20) / 2**20
        rss = max(p["peak_rss_mib"] for p in per_factor)
        met[f"peak RSS < 4 x largest changeset + 30 MB ({budget:.1f} MiB)"] = rss < budget
    return met


@measurement("scale",
             "validate_signature and consistency_checks on 1x, 4x, 16x the dataset: growth of wall, CPU, peak RSS")
def bench_scale(bench):
    factors = [int(f) for f in bench.options.scale_factors.split(",")]
    bench = bench.with_rounds(bench.options.scale_rounds)
    buckets = multiplied_buckets(bench.server)
    upstream = bench.server.rsplit("/v1", 1)[0]
    auth = bench.stack_env["RSL_TEST_EDITOR_AUTH"]
    logfile = os.path.join(bench.workdir(), "scale-relay.log")
    validate, consistency = [], []
    for factor in factors:
        log(f"  scale x{factor}: every collection of {sorted(buckets)} listed {factor} times")
        relay = edge.start_relay(edge.make_relay(copy_route, {"kinto": upstream}, logfile,
                                                 rewrite=multiplying(factor, buckets)))
        try:
            server = f"http://127.0.0.1:{relay.server_port}/v1"
            root_hash = bench.stack_env["RSL_TEST_ROOT_HASH"]
            validate.append({"factor": factor, **validate_signature_at(
                bench, bench.command_env(SERVER=server, ROOT_HASH=root_hash, OUTPUT="json"))})
            consistency.append({"factor": factor, **consistency_checks_at(
                bench, bench.command_env(SERVER=server, AUTH=auth), auth)})
        finally:
            relay.shutdown()
            relay.server_close()
    largest = max(p["largest_changeset_bytes"] for p in validate)
    figures = ("wall_seconds", "cpu_seconds", "peak_rss_mib")
    return {
        "factors": factors,
        "multiplied_buckets": sorted(buckets),
        "rounds": bench.rounds,
        "parallel_requests": bench.parallel,
        "validate_signature": validate,
        "validate_signature_growth": {f: growth(validate, f) for f in figures},
        "validate_signature_rss_per_added_collection_kib": rss_per_added_collection_kib(validate),
        "consistency_checks": consistency,
        "consistency_checks_growth": {f: growth(consistency, f) for f in figures},
        "consistency_checks_rss_per_added_collection_kib": rss_per_added_collection_kib(consistency),
        "targets_met": {
            **{f"validate_signature: {k}": v for k, v in targets(validate, largest).items()},
            **{f"consistency_checks: {k}": v for k, v in targets(consistency).items()},
        },
    }
