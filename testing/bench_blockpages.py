#!/usr/bin/env python3
"""Time blockpages_generator on 10,000 blocklist records against the local test stack.

Run by `make bench-blockpages` inside `testing/stack.py run`, which exports RSL_TEST_*:
  bench_blockpages.py BINARY [RECORDS]

It fills a scratch Kinto bucket (9/10 add-ons, 1/10 plugins, with HTML in `why`), then runs the
binary once into an empty S3 bucket on the stack's S3-compatible server, with a TARGET_DIR, and
prints the run's own phase timings (read, render, write, upload) and the wall-clock time.
"""

import base64
import json
import resource
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def kinto(method, path, body=None):
    server = os.environ["RSL_TEST_SERVER"]
    req = urllib.request.Request(server + path, method=method)
    token = base64.b64encode(os.environ["RSL_TEST_EDITOR_AUTH"].encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, data=data, timeout=120) as resp:
        return json.loads(resp.read() or b"null")


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
            "why": f'This add-on is <b>malware</b>, see <a href="https://bugzilla.mozilla.org/{i}" onclick="x()">bug {i}</a>.',
            "who": "All Firefox users who have this add-on installed.",
            "bug": f"https://bugzilla.mozilla.org/show_bug.cgi?id={i}",
        },
    }


def seed(bid, count):
    kinto("PUT", f"/buckets/{bid}", {"permissions": {"read": ["system.Everyone"]}})
    for cid in ("addons", "plugins"):
        kinto("PUT", f"/buckets/{bid}/collections/{cid}", {})
    batches = []
    for start in range(0, count, 25):
        requests = []
        for i in range(start, min(start + 25, count)):
            r = record(i)
            cid = "addons" if r["blockID"].startswith("i") else "plugins"
            requests.append({"method": "PUT", "path": f"/buckets/{bid}/collections/{cid}/records/{r['id']}",
                             "body": {"data": r}})
        batches.append({"requests": requests})
    with ThreadPoolExecutor(max_workers=4) as pool:
        for answer in pool.map(lambda b: kinto("POST", "/batch", b), batches):
            bad = [r for r in answer["responses"] if r["status"] >= 300]
            if bad:
                sys.exit(f"seeding failed: {bad[0]}")


def main():
    binary = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    bid = f"bench-blocklists-{os.getpid()}"
    started = time.monotonic()
    seed(bid, count)
    print(f"seeded {count} records in {time.monotonic() - started:.1f}s", file=sys.stderr)
    target = tempfile.mkdtemp(prefix="rsl-bench-blockpages-")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SERVER": os.environ["RSL_TEST_SERVER"],
        "BUCKET": bid,
        "BUCKET_NAME": f"bench-pages-{os.getpid()}",
        "AWS_ENDPOINT_URL": os.environ["RSL_TEST_S3_ENDPOINT"],
        "AWS_ACCESS_KEY_ID": "AKIARSLBENCH",
        "AWS_SECRET_ACCESS_KEY": "rsl-bench-secret",
        "TARGET_DIR": target,
        "REQUESTS_TIMEOUT_SECONDS": "30",
    }
    if "PARALLEL_REQUESTS" in os.environ:
        env["PARALLEL_REQUESTS"] = os.environ["PARALLEL_REQUESTS"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run([binary, "blockpages_generator", "--json"], env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    shutil.rmtree(target, ignore_errors=True)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
        sys.exit(f"blockpages_generator exited {proc.returncode}")
    doc = json.loads(proc.stdout)
    t, totals = doc["timings"], doc["totals"]
    print(f"blockpages_generator, {totals['records']} records, {totals['pages']} pages, "
          f"PARALLEL_REQUESTS={env.get('PARALLEL_REQUESTS', '4 (default)')}:")
    print(f"  read    {t['read_seconds']:8.3f} s  (both collections from Kinto)")
    print(f"  render  {t['render_seconds']:8.3f} s  ({t['render_seconds'] / totals['pages'] * 1e6:.0f} µs per page)")
    print(f"  write   {t['write_seconds']:8.3f} s  (TARGET_DIR)")
    print(f"  upload  {t['upload_seconds']:8.3f} s  ({totals['uploaded'] / max(t['upload_seconds'], 1e-9):.0f} pages/s to the local S3 server)")
    print(f"  total   {doc['duration_seconds']:8.3f} s  (wall clock with process start: {wall:.3f} s)")
    print(f"  CPU     {cpu:8.3f} s  used by blockpages_generator itself (the rest is waiting on the servers)")


if __name__ == "__main__":
    main()
