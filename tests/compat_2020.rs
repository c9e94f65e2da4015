//! The compatibility leg: one end-to-end run of each command that talks to Kinto against the 2020
//! Remote Settings server (Kinto 14.8, kinto-signer 8.1.1, kinto-changes 4.1.2), so that older
//! servers keep working. `make test` runs this file alone on that stack
//! (`testing/stack.py --server 2020`, from .venv-2020) after the main suite on today's server;
//! every test first proves that the server it talks to is the 2020 one. (uptake_health reads
//! Redash, not Kinto: nothing of it depends on the server's age.)
//!
//! Test names end in `_on_the_2020_server`: the main suite skips them by that name.

mod support;

use serde_json::{json, Value};
use support::s3::{ACCESS_KEY_ID, S3, SECRET_ACCESS_KEY};
use support::{run_bin, unique, Kinto, Stack};

/// The stack, after checking that it runs the 2020 server and its plugins.
async fn stack_2020() -> Stack {
    let stack = Stack::get();
    let (status, info, _) = stack.admin().request(reqwest::Method::GET, "/", None).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["project_version"], "14.8.0", "not the 2020 server");
    let signer = info["capabilities"]["signer"]["version"].as_str().unwrap();
    assert!(signer.starts_with("8.1."), "kinto-signer {signer}");
    let changes = info["capabilities"]["changes"]["version"].as_str().unwrap();
    assert!(changes.starts_with("4.1."), "kinto-changes {changes}");
    stack
}

fn records(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"id": format!("r{i}"), "title": format!("record {i}")}))
        .collect()
}

/// A collection published without review and one with (its preview too), listed in a scratch
/// monitor collection. Returns the monitor bucket and `(bucket, collection, timestamp)` entries,
/// in the order Kinto lists them (newest first).
async fn published(stack: &Stack) -> (String, Vec<(String, String, u64)>) {
    let (direct, reviewed) = (unique("c20-bl"), unique("c20-main"));
    let direct_ts = stack.publish("staging", &direct, &records(3)).await;
    let main_ts = stack
        .publish("main-workspace", &reviewed, &records(2))
        .await;
    let preview_ts = stack
        .editor()
        .records_timestamp("main-preview", &reviewed)
        .await;
    let mut entries = vec![
        ("blocklists".to_string(), direct, direct_ts),
        ("main".to_string(), reviewed.clone(), main_ts),
        ("main-preview".to_string(), reviewed, preview_ts),
    ];
    let refs: Vec<(&str, &str, u64)> = entries
        .iter()
        .map(|(b, c, t)| (b.as_str(), c.as_str(), *t))
        .collect();
    let (mon, _) = stack.scratch_monitor(&refs).await;
    entries.sort_by_key(|e| std::cmp::Reverse(e.2));
    (mon, entries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_signature_on_the_2020_server() {
    let stack = stack_2020().await;
    let (mon, entries) = published(&stack).await;
    let run = run_bin(
        &["validate_signature"],
        &[
            ("SERVER", stack.server.as_str()),
            ("BUCKET", mon.as_str()),
            ("ROOT_HASH", stack.root_hash.as_str()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.lines();
    assert_eq!(
        lines[0],
        format!("Read collection list from /buckets/{mon}/collections/changes")
    );
    for (i, (bucket, cid, _)) in entries.iter().enumerate() {
        let prefix = format!("0{}/03 /buckets/{bucket}/collections/{cid}:  OK (", i + 1);
        assert!(lines[i + 1].starts_with(&prefix), "{}", run.stdout);
    }
    // The real monitor/changes of kinto-changes, read as a changeset too.
    let run = run_bin(
        &["validate_signature", "--json"],
        &[
            ("SERVER", stack.server.as_str()),
            ("ROOT_HASH", stack.root_hash.as_str()),
        ],
    )
    .await;
    let doc = run.json();
    for (bucket, cid, _) in &entries {
        let result = doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["bucket"] == json!(bucket) && r["collection"] == json!(cid))
            .unwrap_or_else(|| panic!("{bucket}/{cid} not in monitor/changes: {doc}"));
        assert_eq!(result["status"], "ok", "{result}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_changes_collection_on_the_2020_server() {
    let stack = stack_2020().await;
    let (mon, entries) = published(&stack).await;
    let run = run_bin(
        &["validate_changes_collection"],
        &[("SERVER", stack.server.as_str()), ("BUCKET", mon.as_str())],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let expected: Vec<String> = entries
        .iter()
        .map(|(bucket, cid, ts)| format!("Etag OK for {bucket}/{cid} : {ts}"))
        .collect();
    assert_eq!(run.lines(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_checks_on_the_2020_server() {
    let stack = stack_2020().await;
    let (mon, entries) = published(&stack).await;
    let run = run_bin(
        &["consistency_checks"],
        &[
            ("SERVER", stack.server.as_str()),
            ("BUCKET", mon.as_str()),
            ("AUTH", stack.editor.as_str()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let named = |bucket: &str| entries.iter().find(|e| e.0 == bucket).unwrap().1.clone();
    let (direct, reviewed) = (named("blocklists"), named("main"));
    assert_eq!(
        run.lines(),
        [
            format!("Read collection list from /buckets/{mon}/collections/changes"),
            format!("blocklists/{direct} OK"),
            format!("main/{reviewed} OK"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_signature_on_the_2020_server() {
    let stack = stack_2020().await;
    let editor = stack.editor();
    let cid = unique("c20-refresh");
    let ts = stack.publish("staging", &cid, &records(2)).await;
    let before = editor.collection("blocklists", &cid).await;
    let (mon, _) = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
    let run = run_bin(
        &["refresh_signature"],
        &[
            ("SERVER", stack.server.as_str()),
            ("BUCKET", mon.as_str()),
            ("REFRESH_SIGNATURE_AUTH", stack.editor.as_str()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.lines();
    assert_eq!(
        lines[0],
        format!("Looking at /buckets/{mon}/collections/changes:")
    );
    assert!(
        lines[1].starts_with(&format!(
            "Looking at /buckets/staging/collections/{cid}: Refresh signature: status= signed at "
        )),
        "{}",
        run.stdout
    );
    let after = editor.collection("blocklists", &cid).await;
    assert_ne!(after["signature"], before["signature"], "re-signed");
    assert_eq!(
        editor.contents("blocklists", &cid).await,
        editor.contents("staging", &cid).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backport_records_on_the_2020_server() {
    let stack = stack_2020().await;
    let editor = stack.editor();
    let bid = unique("c20-bp");
    editor.create_bucket(&bid).await;
    editor.create_collection(&bid, "new").await;
    editor.put_records(&bid, "new", &records(2)).await;
    let cid = unique("c20-bp-dest");
    editor.create_collection("main-workspace", &cid).await;
    let run = run_bin(
        &["backport_records"],
        &[
            ("SERVER", stack.server.as_str()),
            ("BACKPORT_RECORDS_SOURCE_AUTH", stack.editor.as_str()),
            ("BACKPORT_RECORDS_SOURCE_BUCKET", bid.as_str()),
            ("BACKPORT_RECORDS_SOURCE_COLLECTION", "new"),
            ("BACKPORT_RECORDS_DEST_BUCKET", "main-workspace"),
            ("BACKPORT_RECORDS_DEST_COLLECTION", cid.as_str()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines().last().copied(),
        Some("Done. Requested review for 2 changes.")
    );
    stack
        .reviewer()
        .patch_collection("main-workspace", &cid, json!({"status": "to-sign"}))
        .await;
    assert_eq!(
        editor.contents("main", &cid).await,
        editor.contents(&bid, "new").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blockpages_generator_on_the_2020_server() {
    let stack = stack_2020().await;
    let kinto: Kinto = stack.editor();
    let bid = unique("c20-pages");
    kinto.create_bucket(&bid).await;
    kinto.create_collection(&bid, "addons").await;
    kinto.create_collection(&bid, "plugins").await;
    kinto
        .put_record(
            &bid,
            "addons",
            json!({"id": "a1", "blockID": "i1", "guid": "a1@example.com", "severity": 3,
                   "details": {"name": "Add-on 1", "created": "2020-01-01T00:00:00Z",
                               "why": "Malware."}}),
        )
        .await;
    let bucket = unique("pages");
    let run = run_bin(
        &["blockpages_generator"],
        &[
            ("SERVER", stack.server.as_str()),
            ("BUCKET", bid.as_str()),
            ("BUCKET_NAME", bucket.as_str()),
            ("AWS_ENDPOINT_URL", stack.s3_endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let s3 = S3::new(&stack.s3_endpoint);
    assert_eq!(s3.keys(&bucket).await, ["i1.html", "index.html"]);
    let page = s3.get(&bucket, "i1.html").await.unwrap();
    assert!(page.body.contains("Add-on 1"), "{}", page.body);
}
