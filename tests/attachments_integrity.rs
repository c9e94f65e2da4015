//! `attachments_integrity` end to end: the real binary, through the CDN edge front, against the
//! real Kinto with kinto-attachment, whose files the stack's real static file server serves.
//! Attachments are uploaded as production uploads them (multipart `POST …/records/<id>/attachment`);
//! a bad file is made by changing it on the file server's disk (`RSL_TEST_ATTACHMENTS_DIR`).
//! Each test watches only its own collections, through a scratch monitor collection.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use support::proxy::{Fault, Match, Proxy};
use support::{run_bin, unique, Run, Stack};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run under testing/stack.py"))
}

/// Upload `content` as the attachment of record `rid` (created if need be); returns the record.
async fn upload(stack: &Stack, bid: &str, cid: &str, rid: &str, content: &[u8]) -> Value {
    let editor = stack.editor();
    editor
        .upload_attachment(bid, cid, rid, &format!("{rid}.bin"), content)
        .await;
    editor.records_by_id(bid, cid).await[rid].clone()
}

/// Where the file server keeps the file of `record` (the main Kinto's folder).
fn file_on_disk(record: &Value) -> PathBuf {
    let location = record["attachment"]["location"].as_str().unwrap();
    PathBuf::from(var("RSL_TEST_ATTACHMENTS_DIR"))
        .join("main")
        .join(location)
}

/// `n` bytes that differ from one file to the next.
fn content(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A scratch bucket whose collection `files` holds these attachments (record id, size) and one
/// record without any, listed by a scratch monitor. Returns the bucket, the records and the
/// monitor's bucket.
async fn collection_with_files(
    stack: &Stack,
    files: &[(&str, usize)],
) -> (String, Vec<Value>, String) {
    let editor = stack.editor();
    let bid = unique("files");
    editor.create_bucket(&bid).await;
    editor.create_collection(&bid, "files").await;
    editor
        .put_record(&bid, "files", serde_json::json!({"id": "plain", "n": 1}))
        .await;
    let mut records = Vec::new();
    for (i, (rid, size)) in files.iter().enumerate() {
        records.push(upload(stack, &bid, "files", rid, &content(i as u8, *size)).await);
    }
    let ts = editor.records_timestamp(&bid, "files").await;
    let (monitor, _) = stack.scratch_monitor(&[(&bid, "files", ts)]).await;
    (bid, records, monitor)
}

async fn check(stack: &Stack, monitor: &str, extra: &[(&str, &str)], json: bool) -> Run {
    let mut env = vec![
        ("SERVER", stack.edge.as_str()),
        ("BUCKET", monitor),
        ("COLLECTION", "changes"),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ];
    env.extend_from_slice(extra);
    let args: &[&str] = if json {
        &["attachments_integrity", "--json"]
    } else {
        &["attachments_integrity"]
    };
    run_bin(args, &env).await
}

/// The JSON result of record `rid`.
fn result_of(doc: &Value, rid: &str) -> Value {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record"] == rid)
        .unwrap_or_else(|| panic!("{rid} in {doc}"))
        .clone()
}

fn records_of(run: &Run) -> BTreeSet<String> {
    run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_files_pass_with_totals_in_files_and_bytes_and_previews_are_left_out() {
    let stack = Stack::get();
    let (bid, records, _) =
        collection_with_files(&stack, &[("a", 1000), ("b", 20_000), ("c", 1)]).await;
    // A signed collection whose attachment is published: the destination counts, its preview
    // (the same file) does not.
    let cid = unique("signed");
    stack
        .editor()
        .create_collection("main-workspace", &cid)
        .await;
    upload(&stack, "main-workspace", &cid, "s1", &content(9, 300)).await;
    stack.sign("main-workspace", &cid).await;
    let main_ts = stack.editor().records_timestamp("main", &cid).await;
    let preview_ts = stack.editor().records_timestamp("main-preview", &cid).await;
    let files_ts = stack.editor().records_timestamp(&bid, "files").await;
    let (monitor, _) = stack
        .scratch_monitor(&[
            (&bid, "files", files_ts),
            ("main", &cid, main_ts),
            ("main-preview", &cid, preview_ts),
        ])
        .await;

    let run = check(&stack, &monitor, &[], false).await;
    assert_eq!(run.code, 0, "{run:?}");
    let mut lines = run.lines();
    lines.sort();
    let mut expected = vec![
        format!("main/{cid} OK: 1 files, 300 bytes"),
        format!("{bid}/files OK: 3 files, 21001 bytes"),
        "Slice 1/1: 4 files, 21301 bytes checked (4 files, 21301 bytes in all); 0 NOT OK"
            .to_string(),
    ];
    expected.sort();
    assert_eq!(lines, expected, "{}", run.stdout);

    let run = check(&stack, &monitor, &[], true).await;
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    let totals = &doc["totals"];
    assert_eq!(totals["files"], 4, "{doc}");
    assert_eq!(totals["bytes"], 21301);
    assert_eq!(totals["ok"], 4);
    assert_eq!(totals["bad"], 0);
    assert_eq!(totals["collections"], 2);
    assert_eq!(totals["previews_ignored"], 1);
    let base_url = var("RSL_TEST_ATTACHMENTS_URL");
    for result in doc["results"].as_array().unwrap() {
        assert_eq!(result["status"], "ok", "{result}");
        assert_ne!(result["bucket"], "main-preview");
        let url = result["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{base_url}/main/")), "{url}");
    }
    let a = result_of(&doc, "a");
    assert_eq!(a["hash"], records[0]["attachment"]["hash"]);
    assert_eq!(a["size"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_truncated_and_missing_files_are_named_and_exit_1() {
    let stack = Stack::get();
    let files = [
        ("good", 5000),
        ("tampered", 4000),
        ("truncated", 3000),
        ("missing", 2000),
    ];
    let (bid, records, monitor) = collection_with_files(&stack, &files).await;
    // Same length, other bytes.
    std::fs::write(file_on_disk(&records[1]), content(200, 4000)).unwrap();
    let truncated = std::fs::read(file_on_disk(&records[2])).unwrap();
    std::fs::write(file_on_disk(&records[2]), &truncated[..1000]).unwrap();
    std::fs::remove_file(file_on_disk(&records[3])).unwrap();
    let url = |i: usize| {
        format!(
            "{}/main/{}",
            var("RSL_TEST_ATTACHMENTS_URL"),
            records[i]["attachment"]["location"].as_str().unwrap()
        )
    };
    let tampered_hash = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(content(200, 4000)))
    };

    let run = check(&stack, &monitor, &[], false).await;
    assert_eq!(run.code, 1, "{run:?}");
    let declared_hash = records[1]["attachment"]["hash"].as_str().unwrap();
    let mut lines = run.lines();
    lines.sort();
    let mut expected = vec![
        format!(
            "{bid}/files tampered NOT OK HASH_MISMATCH: sha256 {tampered_hash}, {declared_hash} declared ({})",
            url(1)
        ),
        format!("{bid}/files truncated NOT OK SIZE_MISMATCH: 1000 bytes, 3000 declared ({})", url(2)),
        format!("{bid}/files missing NOT OK MISSING: HTTP 404 ({})", url(3)),
        format!("{bid}/files NOT OK: 3 of 4 files, 14000 bytes"),
        "Slice 1/1: 4 files, 14000 bytes checked (4 files, 14000 bytes in all); 3 NOT OK".to_string(),
    ];
    expected.sort();
    assert_eq!(lines, expected, "{}", run.stdout);
    assert!(
        run.stderr.contains("3 attachment problem(s) found."),
        "{}",
        run.stderr
    );

    let run = check(&stack, &monitor, &[], true).await;
    assert_eq!(run.code, 1, "{run:?}");
    let doc = run.json();
    let by_record = |rid: &str| result_of(&doc, rid);
    assert_eq!(by_record("good")["status"], "ok");
    let tampered = by_record("tampered");
    assert_eq!(
        (tampered["status"].as_str(), tampered["code"].as_str()),
        (Some("bad"), Some("HASH_MISMATCH"))
    );
    assert_eq!(tampered["actual_hash"], tampered_hash.as_str());
    assert_eq!(tampered["url"], url(1).as_str());
    let truncated = by_record("truncated");
    assert_eq!(truncated["code"], "SIZE_MISMATCH");
    assert_eq!(truncated["actual_size"], 1000);
    assert_eq!(truncated["size"], 3000);
    let missing = by_record("missing");
    assert_eq!(missing["code"], "MISSING");
    assert_eq!(missing["http_status"], 404);
    assert_eq!(missing["bucket"], bid.as_str());
    assert_eq!(missing["collection"], "files");
    let totals = &doc["totals"];
    assert_eq!(totals["ok"], 1, "{doc}");
    assert_eq!(totals["bad"], 3);
    assert_eq!(
        totals["by_code"],
        serde_json::json!({"HASH_MISMATCH": 1, "MISSING": 1, "SIZE_MISMATCH": 1})
    );
    assert_eq!(doc["status"], "problems", "{doc}");
}

/// Two fault proxies: one in front of the edge, whose server info it rewrites to name the other,
/// in front of the file server, as `capabilities.attachments.base_url`. Returns (edge, files).
async fn proxied(stack: &Stack) -> (Proxy, Proxy) {
    let files_url = var("RSL_TEST_ATTACHMENTS_URL");
    let files = Proxy::start(&files_url).await;
    let edge = Proxy::start(&stack.edge).await;
    let server_info = Match::exact(format!(
        "{}/",
        reqwest::Url::parse(&edge.url).unwrap().path()
    ));
    edge.fail_always_on(server_info, Fault::Replace(files_url, files.url.clone()));
    (edge, files)
}

fn location(record: &Value) -> String {
    record["attachment"]["location"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_server_failing_after_retries_means_could_not_tell_and_exit_3() {
    let stack = Stack::get();
    let (bid, records, monitor) = collection_with_files(&stack, &[("a", 3000), ("b", 2000)]).await;
    let (edge, files) = proxied(&stack).await;
    // A body cut midway is retried; a 503 that lasts is not a finding.
    files.fail(&location(&records[0]), vec![Fault::Truncate]);
    files.fail_always(&location(&records[1]), Fault::Status(503, None));
    let env = [
        ("SERVER", edge.url.as_str()),
        ("BUCKET", monitor.as_str()),
        ("COLLECTION", "changes"),
        ("REQUESTS_NB_RETRIES", "2"),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.01"),
    ];
    let run = run_bin(&["attachments_integrity"], &env).await;
    assert_eq!(run.code, 3, "{run:?}");
    let b_url = format!("{}/main/{}", files.url, location(&records[1]));
    assert!(
        run.stdout
            .contains(&format!("{bid}/files b NOT OK SERVER_ERROR: HTTP 503")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&b_url), "{}", run.stdout);
    assert_eq!(files.count(&location(&records[0])), 2);
    assert_eq!(files.count(&location(&records[1])), 3);

    let run = run_bin(&["attachments_integrity", "--json"], &env).await;
    assert_eq!(run.code, 3, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["status"], "error", "{doc}");
    assert_eq!(result_of(&doc, "a")["status"], "ok");
    let b = result_of(&doc, "b");
    assert_eq!(
        (b["status"].as_str(), b["code"].as_str()),
        (Some("error"), Some("SERVER_ERROR"))
    );
    assert_eq!(doc["totals"]["could_not_tell"], 1);
    assert_eq!(doc["totals"]["bad"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_stay_within_parallel_requests() {
    let stack = Stack::get();
    let files_spec: Vec<(String, usize)> = (0..6).map(|i| (format!("f{i}"), 1000 + i)).collect();
    let spec: Vec<(&str, usize)> = files_spec.iter().map(|(r, n)| (r.as_str(), *n)).collect();
    let (_, _, monitor) = collection_with_files(&stack, &spec).await;
    let (edge, files) = proxied(&stack).await;
    files.delay_all(std::time::Duration::from_millis(150));
    let env = [
        ("SERVER", edge.url.as_str()),
        ("BUCKET", monitor.as_str()),
        ("COLLECTION", "changes"),
        ("PARALLEL_REQUESTS", "2"),
    ];
    let run = run_bin(&["attachments_integrity", "--json"], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["totals"]["ok"], 6);
    assert_eq!(files.requests().len(), 6, "{:?}", files.requests());
    assert!(files.max_in_flight() <= 2, "{}", files.max_in_flight());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_together_check_every_file_exactly_once() {
    let stack = Stack::get();
    let files = [
        ("f0", 9000),
        ("f1", 100),
        ("f2", 4000),
        ("f3", 4000),
        ("f4", 50),
        ("f5", 7000),
        ("f6", 10),
    ];
    let (_, _, monitor) = collection_with_files(&stack, &files).await;
    let whole = check(&stack, &monitor, &[], true).await;
    assert_eq!(whole.code, 0, "{whole:?}");
    let all = records_of(&whole);
    assert_eq!(all.len(), files.len());

    let mut seen = Vec::new();
    let mut bytes = Vec::new();
    for k in 1..=3 {
        let slice = format!("{k}/3");
        let run = if k == 2 {
            // The flag and the variable are the same setting.
            let env = [
                ("SERVER", stack.edge.as_str()),
                ("BUCKET", monitor.as_str()),
                ("COLLECTION", "changes"),
            ];
            run_bin(
                &["attachments_integrity", "--json", "--slice", &slice],
                &env,
            )
            .await
        } else {
            check(&stack, &monitor, &[("SLICE", &slice)], true).await
        };
        assert_eq!(run.code, 0, "{run:?}");
        let doc = run.json();
        assert_eq!(doc["totals"]["slice"], slice.as_str());
        assert_eq!(doc["totals"]["all_files"], files.len());
        assert_eq!(doc["totals"]["all_bytes"], 24160);
        bytes.push(doc["totals"]["bytes"].as_u64().unwrap());
        seen.extend(records_of(&run));
    }
    seen.sort();
    assert_eq!(seen, all.into_iter().collect::<Vec<_>>());
    assert_eq!(bytes.iter().sum::<u64>(), 24160);
    // Greedy by bytes keeps the shards within the largest file (9000 bytes) of each other.
    let (most, least) = (bytes.iter().max().unwrap(), bytes.iter().min().unwrap());
    assert!(most - least <= 9000, "{bytes:?}");

    let run = check(&stack, &monitor, &[("SLICE", "4/3")], false).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("SLICE") && run.stderr.contains("4/3"),
        "{}",
        run.stderr
    );
}

/// Run the binary under /usr/bin/time, which reports the child's peak resident set size: the
/// JSON report and the peak in KiB.
async fn run_measured(stack: &Stack, monitor: &str) -> (Value, u64) {
    let output = tokio::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_remote-settings-lambdas"))
        .args(["attachments_integrity", "--json"])
        .env_clear()
        .env("SERVER", &stack.edge)
        .env("BUCKET", monitor)
        .env("COLLECTION", "changes")
        .env("REQUESTS_TIMEOUT_SECONDS", "30")
        .output()
        .await
        .expect("/usr/bin/time runs the binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let peak_kb: u64 = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .unwrap_or_else(|| panic!("no peak RSS in {stderr}"))
        .parse()
        .unwrap();
    (serde_json::from_str(&stdout).unwrap(), peak_kb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_is_streamed_in_bounded_memory() {
    let stack = Stack::get();
    const SIZE: usize = 50 * 1024 * 1024;
    let (_, _, small) = collection_with_files(&stack, &[("small", 1000)]).await;
    let (_, _, large) = collection_with_files(&stack, &[("large", SIZE)]).await;
    let (_, small_peak_kb) = run_measured(&stack, &small).await;
    let (doc, peak_kb) = run_measured(&stack, &large).await;
    assert_eq!(doc["totals"]["bytes"], SIZE, "{doc}");
    assert_eq!(doc["totals"]["ok"], 1, "{doc}");
    eprintln!(
        "peak RSS: {peak_kb} KiB checking a {} MiB file, {small_peak_kb} KiB checking 1000 bytes",
        SIZE >> 20
    );
    // The 50 MiB file costs the run a few MiB of buffers at most, nowhere near its size.
    assert!(
        peak_kb < small_peak_kb + 8 * 1024,
        "peak RSS {peak_kb} KiB for a {SIZE}-byte file, {small_peak_kb} KiB for 1000 bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_reader_without_the_signer_previews_are_told_by_their_bucket() {
    let stack = Stack::get();
    let reader = support::Kinto::new(&stack.reader_server, &stack.editor);
    let bid = unique("files");
    let preview = format!("{bid}-preview");
    let mut entries = Vec::new();
    for (i, bucket) in [&bid, &preview].into_iter().enumerate() {
        reader.create_bucket(bucket).await;
        reader.create_collection(bucket, "files").await;
        reader
            .upload_attachment(bucket, "files", "r1", "r1.bin", &content(i as u8, 700))
            .await;
        entries.push((
            bucket.clone(),
            reader.records_timestamp(bucket, "files").await,
        ));
    }
    let monitor = unique("mon");
    reader.create_bucket(&monitor).await;
    reader.create_collection(&monitor, "changes").await;
    for (i, (bucket, ts)) in entries.iter().enumerate() {
        let entry = serde_json::json!({"id": format!("e{i}"), "bucket": bucket,
                                       "collection": "files", "last_modified": ts});
        reader.put_record(&monitor, "changes", entry).await;
    }
    let env = [
        ("SERVER", stack.reader_server.as_str()),
        ("BUCKET", monitor.as_str()),
        ("COLLECTION", "changes"),
    ];
    let run = run_bin(&["attachments_integrity", "--json"], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["totals"]["previews_ignored"], 1, "{doc}");
    assert_eq!(doc["totals"]["files"], 1);
    let r1 = result_of(&doc, "r1");
    assert_eq!(
        (r1["bucket"].as_str(), r1["status"].as_str()),
        (Some(bid.as_str()), Some("ok"))
    );
    let url = r1["url"].as_str().unwrap();
    let base = format!("{}/reader/", var("RSL_TEST_ATTACHMENTS_URL"));
    assert!(url.starts_with(&base), "{url}");
}
