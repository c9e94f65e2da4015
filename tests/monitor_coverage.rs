//! `monitor_coverage` end to end: the real binary against the real Kinto + kinto-remote-settings
//! stack, whose signer resources and changes resources are production's shape.
//!
//! Other tests publish collections on the same server meanwhile, so each test names its own
//! collections with a unique prefix and restricts the check to them with `INCLUDE_COLLECTIONS`.
//! The healthy case reads the server's own `monitor/changes`; the gaps are made with a scratch
//! monitor collection listing less (and more) than what the signer publishes.

mod support;

use serde_json::{json, Value};
use support::data::records;
use support::{run_bin, unique, Run, Stack};

async fn coverage(stack: &Stack, monitor_bucket: &str, prefix: &str) -> Run {
    let include = format!("*/{prefix}*");
    run_bin(
        &["monitor_coverage", "--json"],
        &[
            ("SERVER", stack.server.as_str()),
            ("AUTH", stack.editor.as_str()),
            ("BUCKET", monitor_bucket),
            ("INCLUDE_COLLECTIONS", include.as_str()),
        ],
    )
    .await
}

async fn text(stack: &Stack, monitor_bucket: &str, prefix: &str) -> Run {
    let include = format!("*/{prefix}*");
    run_bin(
        &["monitor_coverage"],
        &[
            ("SERVER", stack.server.as_str()),
            ("AUTH", stack.editor.as_str()),
            ("BUCKET", monitor_bucket),
            ("INCLUDE_COLLECTIONS", include.as_str()),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_own_monitor_list_covers_what_the_signer_publishes() {
    let stack = Stack::get();
    let prefix = unique("cov-ok");
    let (reviewed, direct) = (format!("{prefix}-a"), format!("{prefix}-b"));
    stack
        .publish("main-workspace", &reviewed, &records(2))
        .await;
    stack.publish("staging", &direct, &records(1)).await;

    let run = text(&stack, "monitor", &prefix).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.lines(),
        [
            "Read collection list from /buckets/monitor/collections/changes".to_string(),
            format!("blocklists/{direct} OK (destination)"),
            format!("main/{reviewed} OK (destination)"),
            format!("main-preview/{reviewed} OK (preview)"),
        ]
    );

    let run = coverage(&stack, "monitor", &prefix).await;
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["status"], "ok");
    assert_eq!(
        doc["results"][2],
        json!({"bucket": "main-preview", "collection": reviewed, "status": "ok", "role": "preview"})
    );
    assert_eq!(
        doc["totals"],
        json!({"collections": 3, "ok": 3, "not_monitored": 0, "not_published": 0, "missing": 0,
               "invalid_entries": 0, "unreadable_buckets": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncovered_collection_and_stray_entries_are_reported_on_each_side_with_exit_1() {
    let stack = Stack::get();
    let prefix = unique("cov-gap");
    let published = format!("{prefix}-a");
    let ghost = format!("{prefix}-ghost");
    let ts = stack
        .publish("main-workspace", &published, &records(2))
        .await;
    // The monitor lists the destination but not its preview, a destination collection that does
    // not exist, a source collection (not published) and an entry that names no collection.
    let (mon, _) = stack
        .scratch_monitor(&[
            ("../x", "y", 1),
            ("main", &published, ts),
            ("main", &ghost, ts + 1),
            ("main-workspace", &published, ts + 2),
        ])
        .await;

    let run = text(&stack, &mon, &prefix).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.lines(),
        [
            format!("Read collection list from /buckets/{mon}/collections/changes"),
            format!("main/{published} OK (destination)"),
            format!("main/{ghost} NOT OK: monitored, but the collection does not exist"),
            format!("main-preview/{published} NOT OK: signer preview not in the monitor list"),
            format!(
                "main-workspace/{published} NOT OK: monitored, but not a signer destination or preview"
            ),
            "entry e0 NOT OK: \"bucket\" is not a Kinto id: \"../x\"".to_string(),
        ]
    );
    assert_eq!(
        run.stderr.trim(),
        "error: Monitor coverage incomplete: 1 published collection(s) not monitored, 3 monitor entr(y/ies) not published"
    );

    let run = coverage(&stack, &mon, &prefix).await;
    assert_eq!(run.code, 1, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["status"], "problems");
    let codes: Vec<(&str, &str)> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["collection"].as_str().or(r["id"].as_str()).unwrap(),
                r["code"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            (published.as_str(), "-"),
            (ghost.as_str(), "COLLECTION_MISSING"),
            (published.as_str(), "NOT_MONITORED"),
            (published.as_str(), "NOT_PUBLISHED"),
            ("e0", "INVALID_ENTRY"),
        ]
    );
    assert_eq!(doc["results"][2]["role"], "preview");
    assert_eq!(doc["results"][2]["status"], "not_monitored");
    assert_eq!(
        doc["totals"],
        json!({"collections": 4, "ok": 1, "not_monitored": 1, "not_published": 1, "missing": 1,
               "invalid_entries": 1, "unreadable_buckets": 0})
    );
    let failures: Vec<&Value> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "ok")
        .collect();
    assert_eq!(failures.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_collections_are_known_exceptions() {
    let stack = Stack::get();
    let prefix = unique("cov-ex");
    let published = format!("{prefix}-a");
    let ts = stack.publish("staging", &published, &records(1)).await;
    let (mon, _) = stack
        .scratch_monitor(&[("blocklists", &format!("{prefix}-gone"), ts)])
        .await;
    let include = format!("*/{prefix}*");
    let run = run_bin(
        &["monitor_coverage"],
        &[
            ("SERVER", stack.server.as_str()),
            ("BUCKET", mon.as_str()),
            ("INCLUDE_COLLECTIONS", include.as_str()),
            ("EXCLUDE_COLLECTIONS", "blocklists/*-gone, main/*"),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.lines()[1..],
        [format!(
            "blocklists/{published} NOT OK: signer destination not in the monitor list"
        )]
    );
    let run = run_bin(
        &["monitor_coverage"],
        &[
            ("SERVER", stack.server.as_str()),
            ("BUCKET", mon.as_str()),
            ("EXCLUDE_COLLECTIONS", "blocklists/*"),
            ("INCLUDE_COLLECTIONS", "blocklists/nothing, ../x"),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        "error: invalid INCLUDE_COLLECTIONS: \"../x\" is not a bucket/collection pattern (ids and `*`)"
    );
}
