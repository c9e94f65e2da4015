//! `build_bundles` end to end: the real binary, through the CDN edge front, against the real Kinto
//! with kinto-attachment, whose files the stack's static file server serves. Every output is
//! decoded independently by Python (`lz4.block` from PyPI, `zipfile`) and compared with what the
//! server serves. Each test publishes its own collections in a scratch bucket, listed by a scratch
//! monitor; a corrupt file is made on the file server's disk (`RSL_TEST_ATTACHMENTS_DIR`).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::gcs::Gcs;
use support::s3::{ACCESS_KEY_ID, REGION, S3, SECRET_ACCESS_KEY};
use support::sentry::SentryListener;
use support::{run_bin, unique, Run, Stack};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run under testing/stack.py"))
}

/// The test venv's Python (`make test` builds `.venv` with testing/requirements.txt, lz4 included),
/// or `RSL_TEST_PYTHON`.
fn python() -> String {
    std::env::var("RSL_TEST_PYTHON")
        .unwrap_or_else(|_| format!("{}/.venv/bin/python", env!("CARGO_MANIFEST_DIR")))
}

/// Run a Python script on `file`; its stdout as JSON.
fn decode_with_python(script: &str, file: &Path) -> Value {
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

/// A mozlz4 file as Firefox reads it: the magic, then `lz4.block.decompress` (which takes the
/// 4-byte little-endian size itself), then JSON.
fn mozlz4_json(file: &Path) -> Value {
    decode_with_python(
        r#"
import json, sys, lz4.block
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"mozLz40\0", data[:8]
print(json.dumps(json.loads(lz4.block.decompress(data[8:]).decode("utf-8"))))
"#,
        file,
    )
}

/// A zip's members (name → bytes as latin-1 text), every one of them deflated.
fn zip_members(file: &Path) -> BTreeMap<String, Vec<u8>> {
    let members = decode_with_python(
        r#"
import base64, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
print(json.dumps({n: base64.b64encode(z.read(n)).decode() for n in z.namelist()}))
"#,
        file,
    );
    use base64::Engine;
    members
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, b64)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.as_str().unwrap())
                .unwrap();
            (name.clone(), bytes)
        })
        .collect()
}

/// `n` bytes that differ from one file to the next.
fn content(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A scratch bucket's collection with `metadata`, `plain` records and these attachments
/// (record id, size); returns the records timestamp.
async fn collection(
    stack: &Stack,
    bid: &str,
    cid: &str,
    metadata: Value,
    plain: usize,
    files: &[(&str, usize)],
) -> u64 {
    let editor = stack.editor();
    editor.create_collection(bid, cid).await;
    editor.patch_collection(bid, cid, metadata).await;
    for i in 0..plain {
        editor
            .put_record(
                bid,
                cid,
                json!({"id": format!("plain{i}"), "n": i, "text": "é ✓"}),
            )
            .await;
    }
    for (i, (rid, size)) in files.iter().enumerate() {
        editor
            .upload_attachment(
                bid,
                cid,
                rid,
                &format!("{rid}.bin"),
                &content(i as u8 + 7, *size),
            )
            .await;
    }
    editor.records_timestamp(bid, cid).await
}

/// The scratch data most tests use: `startup` (flagged startup, records only), `files`
/// (attachment.bundle, three files and a plain record), `plain` (no flags), in bucket `bid`,
/// listed by a scratch monitor. Returns the bucket and the monitor's bucket.
async fn scratch_data(stack: &Stack) -> (String, String) {
    let bid = unique("bundles");
    stack.editor().create_bucket(&bid).await;
    let startup = collection(
        stack,
        &bid,
        "startup",
        json!({"flags": ["startup"]}),
        3,
        &[],
    )
    .await;
    let files = collection(
        stack,
        &bid,
        "files",
        json!({"attachment": {"enabled": true, "bundle": true}}),
        1,
        &[("a", 1000), ("b", 20_000), ("c", 1)],
    )
    .await;
    let plain = collection(stack, &bid, "plain", json!({}), 2, &[]).await;
    let (monitor, _) = stack
        .scratch_monitor(&[
            (&bid, "startup", startup),
            (&bid, "files", files),
            (&bid, "plain", plain),
        ])
        .await;
    (bid, monitor)
}

async fn build(stack: &Stack, monitor: &str, extra: &[(&str, &str)], json: bool) -> Run {
    let mut env = vec![
        ("SERVER", stack.edge.as_str()),
        ("BUCKET", monitor),
        ("COLLECTION", "changes"),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ];
    env.extend_from_slice(extra);
    let args: &[&str] = if json {
        &["build_bundles", "--json"]
    } else {
        &["build_bundles"]
    };
    run_bin(args, &env).await
}

/// The changeset the server publishes for `bid/cid`, as readers get it.
async fn served_changeset(stack: &Stack, bid: &str, cid: &str) -> Value {
    let ts = stack.editor().records_timestamp(bid, cid).await;
    let url = format!(
        "{}/buckets/{bid}/collections/{cid}/changeset?_expected={ts}",
        stack.edge
    );
    reqwest::get(&url).await.unwrap().json().await.unwrap()
}

fn target_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("bundles-out"));
    assert!(!dir.exists());
    dir
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The changesets of a decoded mozlz4 list, by `bucket/collection`.
fn by_collection(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let m = &c["metadata"];
            (
                format!(
                    "{}/{}",
                    m["bucket"].as_str().unwrap(),
                    m["id"].as_str().unwrap()
                ),
                c.clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_builds_every_output_into_target_dir_as_the_server_publishes_it() {
    let stack = Stack::get();
    let (bid, monitor) = scratch_data(&stack).await;
    let dir = target_dir();
    let run = build(
        &stack,
        &monitor,
        &[("DRY_RUN", "1"), ("TARGET_DIR", dir.to_str().unwrap())],
        false,
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let mut expected = vec![
        "changesets.json.mozlz4".to_string(),
        format!("{bid}--files.zip"),
        "startup.json.mozlz4".to_string(),
    ];
    expected.sort();
    assert_eq!(names_in(&dir), expected);
    let lines = run.lines();
    assert_eq!(lines[0], format!("Read 3 published changesets from /buckets/{monitor}/collections/changes (0 previews left out)"));
    assert!(
        lines.iter().any(|l| l
            .starts_with("changesets.json.mozlz4: built, not uploaded (dry run) (3 collections, ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l
            .starts_with("startup.json.mozlz4: built, not uploaded (dry run) (1 collections, ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "{bid}--files.zip: built, not uploaded (dry run) (3 files, "
        ))),
        "{lines:?}"
    );
    assert_eq!(
        *lines.last().unwrap(),
        "no store (dry run): 0 written, 3 built, 0 unchanged, 0 too big, 0 failed, 0 deleted"
    );

    // Decoded by Python, the mozlz4 lists are the server's changesets.
    let mut served = BTreeMap::new();
    for cid in ["startup", "files", "plain"] {
        served.insert(
            format!("{bid}/{cid}"),
            served_changeset(&stack, &bid, cid).await,
        );
    }
    let all = by_collection(&mozlz4_json(&dir.join("changesets.json.mozlz4")));
    assert_eq!(all, served);
    let startup = by_collection(&mozlz4_json(&dir.join("startup.json.mozlz4")));
    assert_eq!(
        startup.keys().collect::<Vec<_>>(),
        [&format!("{bid}/startup")]
    );
    assert_eq!(
        startup[&format!("{bid}/startup")],
        served[&format!("{bid}/startup")]
    );

    // The zip holds each attachment under its record id, and the record beside it.
    let members = zip_members(&dir.join(format!("{bid}--files.zip")));
    let names: Vec<&String> = members.keys().collect();
    assert_eq!(
        names,
        ["a", "a.meta.json", "b", "b.meta.json", "c", "c.meta.json"]
    );
    let records = stack.editor().records_by_id(&bid, "files").await;
    for (i, (rid, size)) in [("a", 1000), ("b", 20_000), ("c", 1)]
        .into_iter()
        .enumerate()
    {
        assert_eq!(members[rid], content(i as u8 + 7, size), "{rid}");
        let meta: Value = serde_json::from_slice(&members[&format!("{rid}.meta.json")]).unwrap();
        assert_eq!(meta, records[rid]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_attachment_fails_its_bundle_names_the_file_and_nothing_of_it_is_written() {
    let stack = Stack::get();
    let (bid, monitor) = scratch_data(&stack).await;
    let records = stack.editor().records_by_id(&bid, "files").await;
    let location = records["b"]["attachment"]["location"].as_str().unwrap();
    let on_disk = PathBuf::from(var("RSL_TEST_ATTACHMENTS_DIR"))
        .join("main")
        .join(location);
    // Same length, other bytes.
    std::fs::write(&on_disk, content(200, 20_000)).unwrap();
    let actual = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(content(200, 20_000)))
    };
    let url = format!("{}/main/{location}", var("RSL_TEST_ATTACHMENTS_URL"));
    let dir = target_dir();
    let target = ("TARGET_DIR", dir.to_str().unwrap());

    let sentry = SentryListener::start().await;
    let dsn = ("SENTRY_DSN", sentry.dsn.as_str());
    let run = build(&stack, &monitor, &[("DRY_RUN", "1"), target, dsn], false).await;
    assert_eq!(run.code, 1, "{run:?}");
    // One Sentry event, for the bundle, naming the file.
    let events = sentry.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].contains(&format!("Bundle {bid}--files.zip failed")),
        "{}",
        events[0]
    );
    assert!(
        events[0].contains("HASH_MISMATCH") && events[0].contains(location),
        "{}",
        events[0]
    );
    let declared = records["b"]["attachment"]["hash"].as_str().unwrap();
    let failed = format!("{bid}--files.zip: FAILED, not uploaded:\n  b HASH_MISMATCH: sha256 {actual}, {declared} declared ({url})");
    assert!(run.stdout.contains(&failed), "{}", run.stdout);
    assert!(
        run.stderr.contains("error: 1 bundle(s) failed."),
        "{}",
        run.stderr
    );
    // The other outputs are built; nothing of the failed bundle is.
    assert_eq!(
        names_in(&dir),
        ["changesets.json.mozlz4", "startup.json.mozlz4"]
    );

    let run = build(&stack, &monitor, &[("DRY_RUN", "1")], true).await;
    assert_eq!(run.code, 1, "{run:?}");
    let doc = run.json();
    let zip = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == format!("{bid}--files.zip"))
        .unwrap()
        .clone();
    assert_eq!(zip["status"], "failed", "{zip}");
    assert_eq!(
        zip["files"],
        json!([{"record": "b", "location": location, "url": url, "code": "HASH_MISMATCH", "detail": format!("sha256 {actual}, {declared} declared")}])
    );
    assert_eq!(doc["totals"]["failed"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_over_the_size_limit_is_skipped_and_reported() {
    let stack = Stack::get();
    let (bid, monitor) = scratch_data(&stack).await;
    let dir = target_dir();
    // 21,001 bytes of attachments.
    let extra = [
        ("DRY_RUN", "1"),
        ("TARGET_DIR", dir.to_str().unwrap()),
        ("BUNDLE_MAX_SIZE_BYTES", "21_000"),
    ];
    let run = build(&stack, &monitor, &extra, false).await;
    assert_eq!(run.code, 0, "{run:?}");
    let line =
        format!("{bid}--files.zip: SKIPPED too big: 3 files, 21001 bytes of attachments > 21000");
    assert!(run.lines().contains(&line.as_str()), "{}", run.stdout);
    assert_eq!(
        names_in(&dir),
        ["changesets.json.mozlz4", "startup.json.mozlz4"]
    );

    let run = build(
        &stack,
        &monitor,
        &[("DRY_RUN", "1"), ("BUNDLE_MAX_SIZE_BYTES", "21001")],
        true,
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["totals"]["too_big"], 0);
    assert_eq!(run.json()["totals"]["built"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_changeset_builds_no_mozlz4_and_exits_3() {
    let stack = Stack::get();
    let (bid, _) = scratch_data(&stack).await;
    let files = stack.editor().records_timestamp(&bid, "files").await;
    // A monitored collection that the server does not serve.
    let (monitor, _) = stack
        .scratch_monitor(&[(&bid, "files", files), (&bid, "gone", files + 1)])
        .await;
    let dir = target_dir();
    let run = build(
        &stack,
        &monitor,
        &[("DRY_RUN", "1"), ("TARGET_DIR", dir.to_str().unwrap())],
        false,
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    let lines = run.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{bid}/gone: UNREADABLE changeset: "))),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"changesets.json.mozlz4: NOT BUILT: some changesets could not be read"),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"startup.json.mozlz4: NOT BUILT: some changesets could not be read"),
        "{lines:?}"
    );
    // The zips of the collections that were read are still built.
    assert_eq!(names_in(&dir), [format!("{bid}--files.zip")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_only_a_dry_run_may_run() {
    let run = run_bin(&["build_bundles"], &[("SERVER", "http://127.0.0.1:9/v1")]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("STORAGE_URL"), "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
}

// ---- With the object store: the stack's GCS emulator, a bucket per test. ----

/// `build` with the store at `gs://<gcs_bucket>/attachments` (the objects go under
/// `attachments/bundles/`).
async fn build_to_store(
    stack: &Stack,
    gcs: &Gcs,
    gcs_bucket: &str,
    monitor: &str,
    extra: &[(&str, &str)],
    json: bool,
) -> Run {
    let store = gcs.env(gcs_bucket, "attachments");
    let mut env: Vec<(&str, &str)> = store
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend_from_slice(extra);
    build(stack, monitor, &env, json).await
}

/// The bundles in the GCS bucket: name under `attachments/bundles/` → `updated`.
async fn stored(gcs: &Gcs, bucket: &str) -> BTreeMap<String, String> {
    gcs.objects(bucket)
        .await
        .iter()
        .map(|o| {
            let name = o["name"].as_str().unwrap();
            let name = name
                .strip_prefix("attachments/bundles/")
                .unwrap_or_else(|| panic!("{name} outside bundles/"));
            (name.to_string(), o["updated"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Download an object into a temporary file, for Python.
async fn downloaded(gcs: &Gcs, bucket: &str, name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(unique("bundle-dl"));
    std::fs::write(
        &path,
        gcs.download(bucket, &format!("attachments/bundles/{name}"))
            .await,
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_uploaded_and_a_second_run_rewrites_only_what_changed() {
    let stack = Stack::get();
    let gcs = Gcs::get();
    let (bid, monitor) = scratch_data(&stack).await;
    let bucket = gcs.new_bucket("bundles").await;
    let zip = format!("{bid}--files.zip");

    let run = build_to_store(&stack, &gcs, &bucket, &monitor, &[], false).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.lines();
    for prefix in [
        "changesets.json.mozlz4: written (3 collections, ".to_string(),
        "startup.json.mozlz4: written (1 collections, ".to_string(),
        format!("{zip}: written (3 files, "),
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(&prefix)),
            "{prefix} in {lines:?}"
        );
    }
    assert_eq!(*lines.last().unwrap(), format!("gs://{bucket}/attachments/bundles/: 3 written, 0 built, 0 unchanged, 0 too big, 0 failed, 0 deleted"));
    let first = stored(&gcs, &bucket).await;
    let mut names: Vec<&String> = first.keys().collect();
    names.sort();
    let mut expected = vec![
        "changesets.json.mozlz4".to_string(),
        zip.clone(),
        "startup.json.mozlz4".to_string(),
    ];
    expected.sort();
    assert_eq!(names, expected.iter().collect::<Vec<_>>());
    // What was uploaded is what the server publishes.
    let all = by_collection(&mozlz4_json(
        &downloaded(&gcs, &bucket, "changesets.json.mozlz4").await,
    ));
    for cid in ["startup", "files", "plain"] {
        assert_eq!(
            all[&format!("{bid}/{cid}")],
            served_changeset(&stack, &bid, cid).await,
            "{cid}"
        );
    }
    let members = zip_members(&downloaded(&gcs, &bucket, &zip).await);
    assert_eq!(members["b"], content(8, 20_000));

    // Nothing changed: nothing is written.
    let run = build_to_store(&stack, &gcs, &bucket, &monitor, &[], false).await;
    assert_eq!(run.code, 0, "{run:?}");
    for name in &expected {
        assert!(
            run.lines().contains(&format!("{name}: unchanged").as_str()),
            "{}",
            run.stdout
        );
    }
    assert_eq!(stored(&gcs, &bucket).await, first);

    // One collection changes: the mozlz4 files follow the newest collection, the zip its own.
    stack
        .editor()
        .put_record(&bid, "plain", json!({"id": "new", "n": 99}))
        .await;
    let ts = |cid: &'static str| {
        let (stack, bid) = (stack.clone(), bid.clone());
        async move { stack.editor().records_timestamp(&bid, cid).await }
    };
    let (startup, files, plain) = (ts("startup").await, ts("files").await, ts("plain").await);
    let (monitor, _) = stack
        .scratch_monitor(&[
            (&bid, "startup", startup),
            (&bid, "files", files),
            (&bid, "plain", plain),
        ])
        .await;
    let run = build_to_store(&stack, &gcs, &bucket, &monitor, &[], false).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.lines().contains(&format!("{zip}: unchanged").as_str()),
        "{}",
        run.stdout
    );
    let third = stored(&gcs, &bucket).await;
    assert_eq!(third[&zip], first[&zip]);
    assert_ne!(
        third["changesets.json.mozlz4"],
        first["changesets.json.mozlz4"]
    );
    assert_ne!(third["startup.json.mozlz4"], first["startup.json.mozlz4"]);
    let all = by_collection(&mozlz4_json(
        &downloaded(&gcs, &bucket, "changesets.json.mozlz4").await,
    ));
    assert_eq!(
        all[&format!("{bid}/plain")],
        served_changeset(&stack, &bid, "plain").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_that_loses_its_bundle_flag_has_its_zip_deleted_unless_a_changeset_is_unreadable(
) {
    let stack = Stack::get();
    let gcs = Gcs::get();
    let (bid, monitor) = scratch_data(&stack).await;
    let bucket = gcs.new_bucket("bundles").await;
    let zip = format!("{bid}--files.zip");
    let run = build_to_store(&stack, &gcs, &bucket, &monitor, &[], false).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(stored(&gcs, &bucket).await.contains_key(&zip));
    stack
        .editor()
        .patch_collection(
            &bid,
            "files",
            json!({"attachment": {"enabled": true, "bundle": false}}),
        )
        .await;

    // With a changeset that cannot be read, nothing is deleted.
    let files = stack.editor().records_timestamp(&bid, "files").await;
    let (partial, _) = stack
        .scratch_monitor(&[(&bid, "files", files), (&bid, "gone", files + 1)])
        .await;
    let run = build_to_store(&stack, &gcs, &bucket, &partial, &[], false).await;
    assert_eq!(run.code, 3, "{run:?}");
    let kept = format!("{zip}: kept, not deleted: some changesets could not be read (attachment.bundle is no longer set)");
    assert!(run.lines().contains(&kept.as_str()), "{}", run.stdout);
    assert!(stored(&gcs, &bucket).await.contains_key(&zip));

    // A dry run says so and deletes nothing.
    let run = build_to_store(&stack, &gcs, &bucket, &monitor, &[("DRY_RUN", "1")], false).await;
    assert_eq!(run.code, 0, "{run:?}");
    let would = format!("{zip}: would be deleted (dry run) (attachment.bundle is no longer set)");
    assert!(run.lines().contains(&would.as_str()), "{}", run.stdout);
    assert!(stored(&gcs, &bucket).await.contains_key(&zip));

    let run = build_to_store(&stack, &gcs, &bucket, &monitor, &[], false).await;
    assert_eq!(run.code, 0, "{run:?}");
    let deleted = format!("{zip}: deleted (attachment.bundle is no longer set)");
    assert!(run.lines().contains(&deleted.as_str()), "{}", run.stdout);
    let left: Vec<String> = stored(&gcs, &bucket).await.into_keys().collect();
    assert_eq!(left, ["changesets.json.mozlz4", "startup.json.mozlz4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_attachment_uploads_nothing_of_its_bundle() {
    let stack = Stack::get();
    let gcs = Gcs::get();
    let (bid, monitor) = scratch_data(&stack).await;
    let records = stack.editor().records_by_id(&bid, "files").await;
    let location = records["c"]["attachment"]["location"].as_str().unwrap();
    let on_disk = PathBuf::from(var("RSL_TEST_ATTACHMENTS_DIR"))
        .join("main")
        .join(location);
    // One byte more than declared.
    std::fs::write(&on_disk, b"xy").unwrap();
    let bucket = gcs.new_bucket("bundles").await;
    let run = build_to_store(&stack, &gcs, &bucket, &monitor, &[], false).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "{bid}--files.zip: FAILED, not uploaded:\n  c SIZE_MISMATCH: 2 bytes, 1 declared ("
        )),
        "{}",
        run.stdout
    );
    let names: Vec<String> = stored(&gcs, &bucket).await.into_keys().collect();
    assert_eq!(names, ["changesets.json.mozlz4", "startup.json.mozlz4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_go_to_an_s3_bucket_as_well() {
    let stack = Stack::get();
    let (bid, monitor) = scratch_data(&stack).await;
    let s3 = S3::new(&stack.s3_endpoint);
    let bucket = unique("bundles");
    s3.create_bucket(&bucket).await;
    let url = format!("s3://{bucket}/attachments");
    let env = [
        ("STORAGE_URL", url.as_str()),
        ("STORAGE_ENDPOINT", stack.s3_endpoint.as_str()),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
    ];
    let zip = format!("{bid}--files.zip");
    // S3 dates objects to the second: written a second after the last change, they are listed
    // as newer than it, and the second run below finds them unchanged.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let run = build(&stack, &monitor, &env, false).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        *run.lines().last().unwrap(),
        format!("{url}/bundles/: 3 written, 0 built, 0 unchanged, 0 too big, 0 failed, 0 deleted")
    );
    assert!(!run.stdout.contains(SECRET_ACCESS_KEY) && !run.stderr.contains(SECRET_ACCESS_KEY));
    let key = |name: &str| format!("attachments/bundles/{name}");
    let mut expected = vec![
        key("changesets.json.mozlz4"),
        key(&zip),
        key("startup.json.mozlz4"),
    ];
    expected.sort();
    assert_eq!(s3.keys(&bucket).await, expected);
    let file = std::env::temp_dir().join(unique("bundle-s3"));
    std::fs::write(
        &file,
        s3.bytes(&bucket, &key("changesets.json.mozlz4")).await,
    )
    .unwrap();
    let all = by_collection(&mozlz4_json(&file));
    assert_eq!(
        all[&format!("{bid}/plain")],
        served_changeset(&stack, &bid, "plain").await
    );
    let file = std::env::temp_dir().join(unique("bundle-s3"));
    std::fs::write(&file, s3.bytes(&bucket, &key(&zip)).await).unwrap();
    assert_eq!(zip_members(&file)["b"], content(8, 20_000));

    // The listing's dates say nothing changed since.
    let again = build(&stack, &monitor, &env, false).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        *again.lines().last().unwrap(),
        format!("{url}/bundles/: 0 written, 0 built, 3 unchanged, 0 too big, 0 failed, 0 deleted")
    );
}
