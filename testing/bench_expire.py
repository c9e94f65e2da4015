"""`make bench-expire` measurement of expire_orphan_attachments (issue 16): wall time, CPU and peak
RSS of the command over a store of 20,000 objects, and over one of 200,000 to show that memory is
bounded by the references, not by the store (the listing is streamed, the marks are batched).

References: 19 collections of `staging` on the bench's Kinto, 1,000 records each, whose records
carry an `attachment` (written with the records, as a client copying attachment metadata does;
kinto-attachment takes it as is), published through the signer to `blocklists`. They are read
alongside the seeded dataset's collections (about 180 signed collections in all).

The store: the GCS emulator answers a listing in one page whatever `maxResults` says, and rewrites
its whole metadata file on every upload and every PATCH (O(n) per write), so seeding 20,000
objects through it, or marking hundreds of them, is too slow for a bench. A listing server of the
bench's own speaks the JSON API instead: `GET /storage/v1/b/<bucket>/o` in pages of `maxResults`
(1,000) with `pageToken`, objects made up on the fly from the referenced locations, and `POST
/batch/storage/v1`, answering 200 to every PATCH of the batch and counting them. It keeps no
marks, so every round sees the same store:
- `store-20k`: the 19,000 referenced objects (50 of them marked on 2026-01-01: reprieves), 800
  orphans (4 % of the store, under the 5 % cap) and 200 bundles;
- `store-200k`: the same, plus 180,000 orphans marked already (left alone: no writes).

Runs, alternated for `--rounds`: a dry run over each store, and the marking run (`DRY_RUN=0`)
over `store-20k` (800 marks and 50 reprieves: 9 batch requests). Reported: medians of wall time
and CPU, the peak RSS of each, the PATCHes the server received per marking run.
"""

import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import stack as stack_module
from bench import Seeder, log, median, measurement

COLLECTIONS = 19
RECORDS = 1000
REPRIEVES = 50
ORPHANS = 800
BUNDLES = 200
EXTRA_MARKED = 180_000
UPDATED = "2026-06-01T00:00:00.000Z"
MARKED = "2026-01-01T00:00:00Z"


def seed_references(bench, prefix):
    """The collections whose records reference attachments; returns their locations, sorted."""
    seeder = Seeder(bench.server)
    locations = []
    for c in range(COLLECTIONS):
        cid = f"{prefix}-c{c}"
        seeder.request("PUT", f"/buckets/staging/collections/{cid}", "editor", {})
        records = []
        for r in range(RECORDS):
            location = f"staging/{cid}/{c:04d}{r:04d}-0000-4000-8000-000000000000.bin"
            records.append({"id": f"r{r}", "attachment": {
                "location": location, "size": 1000 + r, "hash": "0" * 64,
                "filename": f"r{r}.bin", "mimetype": "application/octet-stream"}})
            locations.append(location)
        seeder.put_records("staging", cid, records)
        seeder.request("PATCH", f"/buckets/staging/collections/{cid}", "editor",
                       {"data": {"status": "to-sign"}})
    log(f"seeded {len(locations)} records with attachments in {COLLECTIONS} collections")
    return sorted(locations)


class Listing:
    """The objects of each bucket, made up on the fly, in name order."""

    def __init__(self, locations):
        self.buckets = {"store-20k": self.objects(locations, 0),
                        "store-200k": self.objects(locations, EXTRA_MARKED)}
        self.patches = 0
        self.lock = threading.Lock()

    @staticmethod
    def objects(locations, extra_marked):
        items = []
        for i, name in enumerate(locations):
            items.append((name, 1000 + i % 1000, MARKED if i < REPRIEVES else None))
        items += [(f"staging/orphans/{i:06d}.bin", 2000, None) for i in range(ORPHANS)]
        items += [(f"bundles/b{i:04d}.zip", 50_000, None) for i in range(BUNDLES)]
        items += [(f"staging/gone/{i:06d}.bin", 3000, MARKED) for i in range(extra_marked)]
        items.sort()
        return items

    def page(self, bucket, start, size):
        items = self.buckets[bucket][start:start + size]
        page = {"kind": "storage#objects", "items": [
            dict({"name": name, "size": str(size), "updated": UPDATED},
                 **({"customTime": custom} if custom else {}))
            for name, size, custom in items]}
        if start + size < len(self.buckets[bucket]):
            page["nextPageToken"] = str(start + size)
        return page


def listing_server(listing):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            parts = url.path.split("/")
            if len(parts) != 6 or parts[1:4] != ["storage", "v1", "b"] or parts[5] != "o" \
                    or parts[4] not in listing.buckets:
                return self.answer(404, b'{"error": {"code": 404}}', "application/json")
            query = urllib.parse.parse_qs(url.query)
            start = int(query.get("pageToken", ["0"])[0])
            size = min(int(query.get("maxResults", ["1000"])[0]), 1000)
            body = json.dumps(listing.page(parts[4], start, size)).encode()
            self.answer(200, body, "application/json")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            ids = [line.split("+")[1].rstrip(">").strip() for line in body.split("\r\n")
                   if line.startswith("Content-ID: <item+")]
            with listing.lock:
                listing.patches += len(ids)
            boundary = "batch_answer"
            parts = "".join(
                f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-item+{i}>"
                f"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{{}}\r\n"
                for i in ids)
            self.answer(200, (parts + f"--{boundary}--\r\n").encode(),
                        f"multipart/mixed; boundary={boundary}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@measurement("expire_orphan_attachments",
             "expire_orphan_attachments over 20,000 and 200,000 objects: wall time, CPU, peak RSS")
def bench_expire_orphan_attachments(bench):
    locations = seed_references(bench, f"expire-bench-{os.getpid()}")
    listing = Listing(locations)
    server = listing_server(listing)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    admin = f"admin:{stack_module.USERS['admin']}"

    def env(bucket, **settings):
        return bench.command_env(AUTH=admin, STORAGE_URL=f"gs://{bucket}", STORAGE_ENDPOINT=endpoint,
                                 GOOGLE_APPLICATION_CREDENTIALS=bench.stack_env["RSL_TEST_GCS_CREDENTIALS"],
                                 OUTPUT="json", **settings)

    command = [bench.bin, "expire_orphan_attachments"]
    try:
        before = listing.patches
        results = bench.alternate([
            ("dry_run_20k", command, env("store-20k")),
            ("mark_20k", command, env("store-20k", DRY_RUN="0")),
            ("dry_run_200k", command, env("store-200k")),
        ])
        patches_per_run = (listing.patches - before) / bench.rounds
    finally:
        server.shutdown()
    figures = {"referenced_locations": len(locations), "rounds": bench.rounds,
               "parallel_requests": bench.parallel}
    for name, runs in results.items():
        doc = json.loads(runs[-1].stdout)
        totals = {k: v["count"] for k, v in doc["totals"].items()}
        figures[name] = {
            "objects": totals["listed"],
            "wall_seconds": round(median([r.wall for r in runs]), 3),
            "cpu_seconds": round(median([r.cpu for r in runs]), 3),
            "peak_rss_mib": round(max(r.max_rss_bytes for r in runs) / 2**20, 1),
            "totals": totals,
        }
    marked = figures["mark_20k"]["totals"]
    if (marked["marked"], marked["reprieved"]) != (ORPHANS, REPRIEVES) \
            or patches_per_run != ORPHANS + REPRIEVES:
        raise RuntimeError(f"the marking run did not mark what it should: {marked}, "
                           f"{patches_per_run} PATCHes per run")
    figures["mark_20k"]["patches_received_per_run"] = patches_per_run
    figures["rss_200k_over_20k"] = round(
        figures["dry_run_200k"]["peak_rss_mib"] / figures["dry_run_20k"]["peak_rss_mib"], 2)
    return figures
