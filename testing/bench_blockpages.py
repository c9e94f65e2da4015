"""`make bench` measurement of blockpages_generator (issue 6): 10,000 blocklist records (9/10
add-ons, 1/10 plugins, HTML in `why`) in a scratch bucket of the bulk Kinto, rendered into
TARGET_DIR and uploaded into an empty bucket of the stack's S3-compatible server (moto), once (the
upload of 10,000 pages to moto takes a minute or more, and the run reports its own phases).
Reports the run's own phase timings from its JSON report (read, render, write, upload),
its wall time, CPU seconds and peak RSS.
"""

import json
import os
import shutil
import tempfile

from bench import Seeder, measurement

RECORDS = 10_000


def record(i):
    addon = i % 10 != 0
    return {
        "id": f"rec-{i:05d}",
        "blockID": f"{'i' if addon else 'p'}{i}",
        "severity": 1 if i % 3 == 0 else 3,
        "guid": f"bad-{i}@example.com",
        "details": {
            "name": f"Bad add-on number {i} <with markup>",
            "created": f"20{10 + i % 15:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z",
            "why": f'This add-on is <b>malware</b>, see <a href="https://bugzilla.mozilla.org/{i}" '
                   f'onclick="x()">bug {i}</a>.',
            "who": "All Firefox users who have this add-on installed.",
            "bug": f"https://bugzilla.mozilla.org/show_bug.cgi?id={i}",
        },
    }


def seed(bench, bid):
    seeder = Seeder(bench.server)
    seeder.request("PUT", f"/buckets/{bid}", "editor", {"permissions": {"read": ["system.Everyone"]}})
    by_collection = {"addons": [], "plugins": []}
    for r in map(record, range(RECORDS)):
        by_collection["addons" if r["blockID"].startswith("i") else "plugins"].append(r)
    for cid, records in by_collection.items():
        seeder.request("PUT", f"/buckets/{bid}/collections/{cid}", "editor", {})
        seeder.put_records(bid, cid, records)


@measurement("blockpages_generator",
             "blockpages_generator: 10,000 records rendered and uploaded to S3 (phase timings)")
def bench_blockpages_generator(bench):
    bid = f"bench-blocklists-{os.getpid()}"
    seed(bench, bid)
    target = tempfile.mkdtemp(prefix="rsl-bench-blockpages-")
    env = bench.command_env(
        BUCKET=bid,
        BUCKET_NAME=f"bench-pages-{os.getpid()}",
        AWS_ENDPOINT_URL=bench.stack_env["RSL_TEST_S3_ENDPOINT"],
        AWS_ACCESS_KEY_ID="AKIARSLBENCH",
        AWS_SECRET_ACCESS_KEY="rsl-bench-secret",
        TARGET_DIR=target,
    )
    try:
        result = bench.run([bench.bin, "blockpages_generator", "--json"], env).check()
    finally:
        shutil.rmtree(target, ignore_errors=True)
    doc = json.loads(result.stdout)
    t, totals = doc["timings"], doc["totals"]
    return {
        "records": totals["records"],
        "pages": totals["pages"],
        "uploaded": totals["uploaded"],
        "parallel_requests": bench.parallel,
        "read_seconds": round(t["read_seconds"], 3),
        "render_seconds": round(t["render_seconds"], 3),
        "render_microseconds_per_page": round(t["render_seconds"] / totals["pages"] * 1e6),
        "write_seconds": round(t["write_seconds"], 3),
        "upload_seconds": round(t["upload_seconds"], 3),
        "pages_uploaded_per_second": round(totals["uploaded"] / max(t["upload_seconds"], 1e-9)),
        "wall_seconds": round(result.wall, 3),
        "cpu_seconds": round(result.cpu, 3),
        "peak_rss_mib": round(result.max_rss_bytes / 2**20, 1),
    }
