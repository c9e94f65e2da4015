"""`make bench` measurement of build_bundles (issue 16 "Speed"): every output written into a fresh
bucket of the stack's GCS emulator, against a floor of curl doing the same transfers: downloading
the same changesets (the monitor's, then each published collection's with `_expected`) and the
same attachments, then uploading the same outputs to the emulator's upload endpoint, both with
`--parallel --parallel-max PARALLEL_REQUESTS`. Alternating, medians; target: ratio <= 1.5. Reports
the command's wall time, CPU and peak RSS.

The dataset is the bench's seeded one (`make bench-bundles`: 200 collections, 60,000 records) plus,
seeded here: every tenth published collection flagged `startup` (its published collection's
metadata, as an administrator sets it), and `--attachments` files (default 500, 50 to 150 KB of
random bytes each, 50 MB in all) uploaded through kinto-attachment, 50 to a collection, onto new
records of the seeded `staging` collections (signed again, into `blocklists`), whose published
collections get `attachment.bundle: true`. The outputs the floor uploads are those of a `DRY_RUN`
run with `TARGET_DIR`, made first (it also checks that every bundle builds).

`make bench-bundles BENCH_ARGS="--collections 20 --records 6000 --attachments 50"` runs it on a
small dataset.
"""

import concurrent.futures
import json
import math
import os
import random
import shlex
import shutil
import tempfile
import urllib.parse

import stack as stack_module
from bench import Seeder, log, median, measurement
from bench_attachments import upload

FILES_PER_COLLECTION = 50
MIN_SIZE, MAX_SIZE = 50_000, 150_000
STARTUP_EVERY = 10


def add_arguments(parser):
    parser.add_argument("--attachments", type=int, default=500,
                        help="build_bundles: attachments in bundled collections (default 500)")


def published(dataset):
    """(bucket, collection) of every seeded collection's published, non-preview copy."""
    return [(p["bucket"], p["collection"]) for p in dataset["published"]
            if not p["bucket"].endswith("-preview")]


def seed(bench, attachments):
    """Flag collections `startup` and `attachment.bundle` (the latter with `attachments` files);
    returns the bundled collections and the files' total size."""
    seeder = Seeder(bench.server)
    flagged = published(bench.dataset)[::STARTUP_EVERY]
    for bid, cid in flagged:
        seeder.request("PATCH", f"/buckets/{bid}/collections/{cid}", "admin",
                       {"data": {"flags": ["startup"]}})
    staging = [c["id"] for c in bench.dataset["collections"] if c["source"] == "staging"]
    wanted = math.ceil(attachments / FILES_PER_COLLECTION)
    if len(staging) < wanted:
        raise RuntimeError(f"{attachments} attachments need {wanted} staging collections, "
                           f"the dataset has {len(staging)}: seed more collections")
    rng = random.Random(16)
    uploads = [(staging[i // FILES_PER_COLLECTION], f"file-{i:04d}", rng.randint(MIN_SIZE, MAX_SIZE))
               for i in range(attachments)]
    total = sum(size for _, _, size in uploads)
    log(f"flagged {len(flagged)} collections startup; uploading {attachments} attachments "
        f"({total / 1e6:.1f} MB) into {wanted} collections")
    def send(u):
        upload(bench.server, "editor",
               f"/buckets/staging/collections/{u[0]}/records/{u[1]}/attachment", os.urandom(u[2]))

    # The first file of each collection alone: kinto-attachment's filesystem backend creates the
    # collection's folder unless it exists, and two first uploads in parallel race for it (500).
    firsts = uploads[::FILES_PER_COLLECTION]
    for u in firsts:
        send(u)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(send, [u for u in uploads if u not in firsts]))
    bundled = staging[:wanted]
    for cid in bundled:
        seeder.request("PATCH", f"/buckets/staging/collections/{cid}", "editor",
                       {"data": {"status": "to-sign"}})
        seeder.request("PATCH", f"/buckets/blocklists/collections/{cid}", "admin",
                       {"data": {"attachment": {"enabled": True, "bundle": True}}})
    return {"startup_collections": len(flagged), "bundled_collections": len(bundled),
            "attachments": attachments, "attachment_bytes": total}


def floor_downloads(bench):
    """The URLs build_bundles reads: the monitor's changeset, each published collection's at its
    timestamp, and the files of the bundled collections."""
    server = bench.server
    monitor = f"{server}/buckets/monitor/collections/changes/changeset"
    urls = [f"{monitor}?_expected={random.randint(999999000000, 999999999999)}"]
    entries = stack_module.http("GET", f"{monitor}?_expected=0", timeout=120)["changes"]
    base_url = stack_module.http("GET", server + "/")["capabilities"]["attachments"]["base_url"]
    files = []
    for e in entries:
        if e["bucket"].endswith("-preview"):
            continue
        url = (f"{server}/buckets/{e['bucket']}/collections/{e['collection']}/changeset"
               f"?_expected={e['last_modified']}")
        urls.append(url)
        changeset = stack_module.http("GET", url, timeout=120)
        if changeset["metadata"].get("attachment", {}).get("bundle"):
            files += [base_url + r["attachment"]["location"] for r in changeset["changes"]
                      if "attachment" in r]
    return urls, files


def new_bucket(endpoint, label, counter=[0]):
    counter[0] += 1
    name = f"bench-bundles-{os.getpid()}-{label}-{counter[0]}"
    stack_module.http("POST", f"{endpoint}/storage/v1/b?project=rsl-test", body={"name": name})
    return name


def curl(parallel, config):
    return ["curl", "--silent", "--show-error", "--no-progress-meter", "--fail",
            "--parallel", "--parallel-max", str(parallel), "--config", config]


@measurement("build_bundles",
             "build_bundles into a fresh GCS bucket vs curl downloading the same changesets and files and uploading the outputs")
def bench_build_bundles(bench):
    seeded = seed(bench, bench.options.attachments)
    endpoint = bench.stack_env["RSL_TEST_GCS_ENDPOINT"]
    store_env = {"STORAGE_ENDPOINT": endpoint,
                 "GOOGLE_APPLICATION_CREDENTIALS": bench.stack_env["RSL_TEST_GCS_CREDENTIALS"],
                 "OUTPUT": "json"}
    work = tempfile.mkdtemp(prefix="bench-bundles-")
    try:
        outputs_dir = os.path.join(work, "outputs")
        dry = bench.run([bench.bin, "build_bundles"], bench.command_env(
            DRY_RUN="1", TARGET_DIR=outputs_dir, OUTPUT="json")).check()
        built = json.loads(dry.stdout)["totals"]
        outputs = sorted(os.listdir(outputs_dir))
        if built["built"] != 2 + seeded["bundled_collections"] or len(outputs) != built["built"]:
            raise RuntimeError(f"the dry run did not build every output: {built}, {outputs}")
        urls, files = floor_downloads(bench)
        if len(files) != seeded["attachments"]:
            raise RuntimeError(f"{len(files)} files in the bundled changesets, "
                               f"{seeded['attachments']} seeded")
        downloads = os.path.join(work, "downloads.curl")
        with open(downloads, "w") as f:
            f.writelines(f'url = "{u}"\noutput = "/dev/null"\n' for u in urls + files)

        def floor_argv(bucket):
            config = os.path.join(work, f"upload-{bucket}.curl")
            with open(config, "w") as f:
                for name in outputs:
                    key = urllib.parse.quote(f"bundles/{name}", safe="")
                    f.write(f'url = "{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={key}"\n'
                            f'upload-file = "{os.path.join(outputs_dir, name)}"\noutput = "/dev/null"\n')
            upload_cmd = curl(bench.parallel, config) + [
                "--request", "POST", "--header", "Expect:",
                "--header", "Content-Type: application/octet-stream"]
            script = shlex.join(curl(bench.parallel, downloads)) + " && " + shlex.join(upload_cmd)
            return ["sh", "-c", script]

        runs = {"floor": [], "build_bundles": []}
        for i in range(bench.rounds):
            for name in runs:
                bucket = new_bucket(endpoint, name)
                if name == "floor":
                    argv, env = floor_argv(bucket), bench.command_env()
                else:
                    argv = [bench.bin, "build_bundles"]
                    env = bench.command_env(STORAGE_URL=f"gs://{bucket}", **store_env)
                before = bench.server_cpu()
                result = bench.run(argv, env).check()
                after = bench.server_cpu()
                result.server_cpu = None if before is None or after is None else after - before
                if name == "build_bundles":
                    totals = json.loads(result.stdout)["totals"]
                    if totals["written"] != len(outputs):
                        raise RuntimeError(f"not every output was written: {totals}")
                stored = stack_module.http("GET", f"{endpoint}/storage/v1/b/{bucket}/o")
                if len(stored.get("items", [])) != len(outputs):
                    raise RuntimeError(f"{name} left {len(stored.get('items', []))} objects in {bucket}")
                runs[name].append(result)
                log(f"  round {i + 1}/{bench.rounds} {name}: {result.wall:.2f}s wall, "
                    f"{result.cpu:.2f}s CPU, {result.max_rss_bytes / 2**20:.1f} MiB peak RSS"
                    + ("" if result.server_cpu is None else f", server {result.server_cpu:.2f}s CPU"))
        output_bytes = sum(os.path.getsize(os.path.join(outputs_dir, n)) for n in outputs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor, command = runs["floor"], runs["build_bundles"]
    wall = median([r.wall for r in command])
    floor_wall = median([r.wall for r in floor])
    server = [r.server_cpu for r in command]
    return {
        "changesets": len(urls) - 1,
        **seeded,
        "outputs": len(outputs),
        "output_bytes": output_bytes,
        "rounds": bench.rounds,
        "parallel_requests": bench.parallel,
        "wall_seconds": round(wall, 3),
        "floor_wall_seconds": round(floor_wall, 3),
        "ratio": round(wall / floor_wall, 3),
        "ratios_per_round": [round(c.wall / f.wall, 3) for c, f in zip(command, floor)],
        "cpu_seconds": round(median([r.cpu for r in command]), 3),
        "floor_cpu_seconds": round(median([r.cpu for r in floor]), 3),
        "server_cpu_seconds": None if None in server else round(median(server), 3),
        "peak_rss_mib": round(max(r.max_rss_bytes for r in command) / 2**20, 1),
        "targets_met": {"ratio <= 1.5": wall / floor_wall <= 1.5},
    }
