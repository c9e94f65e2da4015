#!/usr/bin/env python3
"""Seed a test stack with a Remote Settings-sized dataset for the writer-side benchmarks.

Publishes COLLECTIONS collections holding RECORDS records in all (sizes fall off like a real server's:
a few collections hold most records), spread over the stack's three per-bucket signer resources:
main-workspace (review, with preview), staging (no review) and security-state-staging (review, onecrl
signer). Every collection goes through the real kinto-signer flow (editor asks for review, reviewer
approves; or editor signs directly), so previews and destinations are signed and listed in
monitor/changes.

Usage: seed_writer_bench.py [--server URL] [--collections 150] [--records 50000] [--prefix bench]
(SERVER defaults to $RSL_TEST_SERVER). Importable: seed(server, collections, records, prefix).
"""

import argparse
import base64
import concurrent.futures
import json
import os
import sys
import time
import urllib.request

USERS = {"editor": "editor-pass", "reviewer": "reviewer-pass"}
SOURCES = ["main-workspace", "staging", "security-state-staging"]
REVIEWED = {"main-workspace", "security-state-staging"}
BATCH = 25  # the stack's kinto.batch_max_requests


def call(server, method, path, user, body=None):
    req = urllib.request.Request(server.rstrip("/") + path, method=method)
    token = base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, data=data, timeout=300) as resp:
        return json.loads(resp.read() or b"null")


def sizes(collections, records):
    """Record counts per collection, falling off as 1/rank, summing to `records`."""
    weights = [1 / (rank + 1) for rank in range(collections)]
    total = sum(weights)
    counts = [int(records * w / total) for w in weights]
    for i in range(records - sum(counts)):
        counts[i % collections] += 1
    return counts


def record(cid, i):
    """A record shaped like common Remote Settings entries (about 300 bytes)."""
    return {
        "id": f"{cid}-{i:06d}",
        "name": f"Entry {i} of {cid}",
        "url": f"https://example.com/{cid}/{i}?utm_source=remote-settings",
        "enabled": i % 7 != 0,
        "weight": (i * 7919) % 1000,
        "tags": ["bench", f"group-{i % 13}", f"shard-{i % 5}"],
        "filter_expression": f"env.version|versionCompare('{100 + i % 30}.0') >= 0",
    }


def publish(server, bucket, cid, count):
    call(server, "PUT", f"/buckets/{bucket}/collections/{cid}", "editor", {})
    for start in range(0, count, BATCH):
        requests = [
            {"method": "PUT", "path": f"/buckets/{bucket}/collections/{cid}/records/{r['id']}",
             "body": {"data": r}}
            for r in (record(cid, i) for i in range(start, min(start + BATCH, count)))
        ]
        answer = call(server, "POST", "/batch", "editor", {"requests": requests})
        bad = [r for r in answer["responses"] if not 200 <= r["status"] < 300]
        if bad:
            raise RuntimeError(f"{bucket}/{cid}: batch failed: {bad[0]}")
    if count == 0:
        return  # creating the collection signed it already
    path = f"/buckets/{bucket}/collections/{cid}"
    if bucket in REVIEWED:
        call(server, "PATCH", path, "editor", {"data": {"status": "to-review"}})
        call(server, "PATCH", path, "reviewer", {"data": {"status": "to-sign"}})
    else:
        call(server, "PATCH", path, "editor", {"data": {"status": "to-sign"}})


def seed(server, collections=150, records=50_000, prefix="bench", workers=4):
    started = time.monotonic()
    plan = [
        (SOURCES[i % len(SOURCES)], f"{prefix}-{i:03d}", n)
        for i, n in enumerate(sizes(collections, records))
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(publish, server, *p) for p in plan]:
            future.result()
    print(f"[seed] published {collections} collections, {records} records in "
          f"{time.monotonic() - started:.0f}s (largest {max(n for *_, n in plan)} records)",
          file=sys.stderr, flush=True)
    return plan


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default=os.environ.get("RSL_TEST_SERVER"))
    parser.add_argument("--collections", type=int, default=150)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--prefix", default="bench")
    args = parser.parse_args()
    if not args.server:
        parser.error("give --server or run under testing/stack.py (RSL_TEST_SERVER)")
    seed(args.server, args.collections, args.records, args.prefix)


if __name__ == "__main__":
    main()
