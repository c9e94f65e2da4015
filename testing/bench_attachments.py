"""`make bench` measurement of attachments_integrity (issue 15): 2,000 attachments of about 200 MB
in all, uploaded through kinto-attachment to the bench's Kinto and served by the stack's static
file server, checked by the command (every body streamed into SHA-256) against a plain parallel
download of the same files by curl (`--parallel --parallel-max PARALLEL_REQUESTS`, bodies to
/dev/null), alternating, same parallelism. Reports the median wall times, their ratio (target
<= 1.3) and the command's peak RSS (target < 40 MB).

Seeding: 10 collections of 200 records in a scratch bucket, each record's file random bytes of 10
to 190 KB (100 KB on average), uploaded as production does (multipart `POST
…/records/<id>/attachment`, 4 at a time); a scratch monitor collection lists the 10 collections.
`make bench BENCH_ARGS="--only attachments_integrity --collections 3 --records 30"` runs it alone on
a small records dataset.
"""

import base64
import concurrent.futures
import json
import os
import random
import tempfile
import urllib.error
import urllib.request

import stack as stack_module
from bench import Seeder, log, median, measurement, please_retry, with_retries

FILES = 2000
COLLECTIONS = 10
MIN_SIZE, MAX_SIZE = 10_000, 190_000


def upload(server, user, path, content):
    """One kinto-attachment upload: a multipart form with the file as `attachment`."""
    boundary = "rsl-bench-boundary-51f0"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; "
            f"filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    body += content + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(server + path, data=body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Authorization": "Basic " + base64.b64encode(
            f"{user}:{stack_module.USERS[user]}".encode()).decode(),
    })
    # On PostgreSQL, concurrent uploads into one collection may be refused with 409 errno 122
    # "please retry" (see bench.please_retry), or with 503 when PostgreSQL broke a deadlock between
    # them (seen in a full `make bench`): Kinto rolled the record back; send it again.
    def send():
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                answer.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"POST {path}: HTTP {e.code}: {e.read()[:500]!r}") from None

    with_retries(send, lambda e: please_retry(e) or "HTTP 503" in str(e))


def seed(bench, bid):
    """The scratch bucket, its collections with FILES attachments and a monitor; returns the file
    URLs and their total size."""
    seeder = Seeder(bench.server)
    seeder.request("PUT", f"/buckets/{bid}", "editor", {"permissions": {"read": ["system.Everyone"]}})
    seeder.request("PUT", f"/buckets/{bid}/collections/changes", "editor", {})
    rng = random.Random(15)
    uploads = []
    for c in range(COLLECTIONS):
        seeder.request("PUT", f"/buckets/{bid}/collections/c{c}", "editor", {})
        for r in range(FILES // COLLECTIONS):
            uploads.append((f"/buckets/{bid}/collections/c{c}/records/r{r}/attachment",
                            rng.randint(MIN_SIZE, MAX_SIZE)))
    total = sum(size for _, size in uploads)
    log(f"uploading {len(uploads)} attachments, {total / 1e6:.0f} MB")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda u: upload(bench.server, "editor", u[0], os.urandom(u[1])), uploads))
    info = stack_module.http("GET", bench.server + "/")
    base_url = info["capabilities"]["attachments"]["base_url"]
    urls = []
    for c in range(COLLECTIONS):
        records = seeder.request("GET", f"/buckets/{bid}/collections/c{c}/records", "editor")["data"]
        urls += [base_url + r["attachment"]["location"] for r in records]
        ts = max(r["last_modified"] for r in records)
        seeder.request("PUT", f"/buckets/{bid}/collections/changes/records/e{c}", "editor",
                       {"data": {"bucket": bid, "collection": f"c{c}", "last_modified": ts}})
    return urls, total


@measurement("attachments_integrity",
             "attachments_integrity over 2,000 attachments (200 MB) vs a plain parallel curl download of the same files")
def bench_attachments_integrity(bench):
    bid = f"bench-files-{os.getpid()}"
    urls, total = seed(bench, bid)
    env = bench.command_env(BUCKET=bid, COLLECTION="changes", OUTPUT="json")
    with tempfile.NamedTemporaryFile("w", suffix=".curl") as config:
        for url in urls:
            config.write(f'url = "{url}"\noutput = "/dev/null"\n')
        config.flush()
        curl = ["curl", "--silent", "--fail", "--parallel", "--parallel-max", str(bench.parallel),
                "--config", config.name]
        results = bench.alternate([
            ("floor", curl, env),
            ("attachments_integrity", [bench.bin, "attachments_integrity"], env),
        ])
    floor, checks = results["floor"], results["attachments_integrity"]
    totals = json.loads(checks[-1].stdout)["totals"]
    if totals["ok"] != len(urls) or totals["bytes"] != total:
        raise RuntimeError(f"not every file checked OK: {totals}")
    wall = median([r.wall for r in checks])
    floor_wall = median([r.wall for r in floor])
    rss = max(r.max_rss_bytes for r in checks)
    return {
        "files": len(urls),
        "bytes": total,
        "rounds": bench.rounds,
        "parallel_requests": bench.parallel,
        "wall_seconds": round(wall, 3),
        "floor_wall_seconds": round(floor_wall, 3),
        "ratio": round(wall / floor_wall, 3),
        "ratios_per_round": [round(c.wall / f.wall, 3) for c, f in zip(checks, floor)],
        "cpu_seconds": round(median([r.cpu for r in checks]), 3),
        "floor_cpu_seconds": round(median([r.cpu for r in floor]), 3),
        "megabytes_per_second": round(total / wall / 1e6, 1),
        "peak_rss_mib": round(rss / 2**20, 1),
        "targets_met": {"ratio <= 1.3": wall / floor_wall <= 1.3, "peak RSS < 40 MB": rss < 40e6},
    }
