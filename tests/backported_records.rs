//! `backported_records` end to end: the real binary against the real Kinto stack, checking what
//! the real `backport_records` left, then a source changed after it. Each test works in its own
//! scratch bucket.

mod support;

use serde_json::json;
use support::data::records;
use support::{run_bin, unique, Run, Stack};

async fn backported(server: &str, mappings: &str, extra: &[(&str, &str)]) -> Run {
    let mut env = vec![
        ("SERVER", server),
        ("BACKPORT_RECORDS_MAPPINGS", mappings),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ];
    env.extend_from_slice(extra);
    run_bin(&["backported_records"], &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backported_destination_is_ok_then_a_changed_source_is_behind_within_the_lag_and_fails_beyond(
) {
    let stack = Stack::get();
    let kinto = stack.editor();
    let bid = unique("bpd");
    kinto.create_bucket(&bid).await;
    for cid in ["new", "old", "all"] {
        kinto.create_collection(&bid, cid).await;
    }
    kinto.put_records(&bid, "new", &records(3)).await;
    let (filtered, whole) = (
        format!("{bid}/new?min_n=1 -> {bid}/old"),
        format!("{bid}/new -> {bid}/all"),
    );
    let mappings = format!("{filtered}\n{whole}\n");
    let run = run_bin(
        &["backport_records"],
        &[
            ("SERVER", stack.server.as_str()),
            ("BACKPORT_RECORDS_SOURCE_AUTH", stack.editor.as_str()),
            ("BACKPORT_RECORDS_MAPPINGS", mappings.as_str()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");

    let run = backported(&stack.server, &mappings, &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.lines(),
        [format!("{filtered} OK"), format!("{whole} OK")]
    );
    let run = backported(&stack.server, &mappings, &[("OUTPUT", "json")]).await;
    let doc = run.json();
    assert_eq!(doc["results"][0]["status"], "ok");
    assert_eq!(doc["results"][0]["mapping"], filtered);
    assert_eq!(
        doc["totals"],
        json!({"mappings": 2, "in_sync": 2, "within_lag": 0, "lagging": 0, "errors": 0})
    );

    // The source changes after the backport: one record added, one changed, one deleted.
    kinto
        .put_record(
            &bid,
            "new",
            json!({"id": "r3", "n": 3, "title": "record 3"}),
        )
        .await;
    kinto
        .put_record(&bid, "new", json!({"id": "r1", "n": 1, "title": "edited"}))
        .await;
    kinto.delete_record(&bid, "new", "r0").await;

    // Within the lag: reported as behind, exit 0.
    let run = backported(&stack.server, &mappings, &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.lines();
    assert!(
        lines[0].starts_with(&format!(
            "{filtered} BEHIND: 1 missing (r3), 0 extra, 1 changed (r1); timestamps "
        )) && lines[0].ends_with(" s apart, within 300 s"),
        "{run:?}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{whole} BEHIND: 1 missing (r3), 1 extra (r0), 1 changed (r1); timestamps "
        )),
        "{run:?}"
    );

    // No lag allowed: the same differences fail the run.
    let run = backported(&stack.server, &mappings, &[("MAX_LAG_SECONDS", "0")]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.lines()[0].starts_with(&format!("{filtered} NOT OK: 1 missing (r3)"))
            && run.lines()[0].ends_with(" s apart (max lag 0 s)"),
        "{run:?}"
    );
    assert_eq!(
        run.stderr.trim(),
        "error: Backported records out of sync: 2 destination(s) differ from their source beyond 0 s"
    );
    let run = backported(
        &stack.server,
        &mappings,
        &[("MAX_LAG_SECONDS", "0"), ("OUTPUT", "json")],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    let doc = run.json();
    let item = &doc["results"][1];
    assert_eq!(item["status"], "lagging");
    assert_eq!(item["code"], "RECORDS_DIFFER");
    assert_eq!(item["records"]["extra"], json!({"count": 1, "ids": ["r0"]}));
    assert!(item["source_timestamp"].as_u64() > item["destination_timestamp"].as_u64());
    assert_eq!(
        doc["totals"],
        json!({"mappings": 2, "in_sync": 0, "within_lag": 0, "lagging": 2, "errors": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_destination_is_a_finding_and_mappings_are_required() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let bid = unique("bpd");
    kinto.create_bucket(&bid).await;
    kinto.create_collection(&bid, "new").await;
    let mappings = format!("{bid}/new -> {bid}/nowhere");
    let run = backported(&stack.server, &mappings, &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.lines()[0].starts_with(&format!("{mappings} ERROR: ")),
        "{run:?}"
    );
    let run = run_bin(
        &["backported_records"],
        &[("SERVER", stack.server.as_str())],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: invalid BACKPORT_RECORDS_MAPPINGS: required"),
        "{run:?}"
    );
}
