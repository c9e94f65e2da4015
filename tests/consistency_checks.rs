//! `consistency_checks` end to end: the real binary against the real Kinto + kinto-signer stack.
//!
//! Each test lists its own collections in a scratch monitor collection (`BUCKET`/`COLLECTION`).
//! Inconsistencies are made for real: the `admin` user, who may write the preview and destination
//! buckets (which only kinto-signer should write), edits them behind the signer's back; each test
//! says what it changed.

mod support;

use serde_json::{json, Value};
use support::data::records;
use support::proxy::{Fault, Proxy};
use support::{run_bin, unique, Run, Stack};

fn env<'a>(server: &'a str, mon: &'a str, auth: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SERVER", server),
        ("BUCKET", mon),
        ("COLLECTION", "changes"),
        ("AUTH", auth),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ]
}

/// Publish `records` from `source_bucket/cid` and return the monitor entries of its destination
/// and, where there is one, its preview.
async fn publish<'a>(
    stack: &Stack,
    source_bucket: &str,
    cid: &'a str,
    n: usize,
) -> Vec<(String, &'a str, u64)> {
    let ts = stack.publish(source_bucket, cid, &records(n)).await;
    let (destination, preview) = match source_bucket {
        "main-workspace" => ("main", Some("main-preview")),
        "security-state-staging" => ("security-state", Some("security-state-preview")),
        _ => ("blocklists", None),
    };
    let mut entries = vec![(destination.to_string(), cid, ts)];
    if let Some(preview) = preview {
        let pts = stack.editor().records_timestamp(preview, cid).await;
        entries.push((preview.to_string(), cid, pts));
    }
    entries
}

/// Run `consistency_checks` over the monitor collection `mon`.
async fn check(server: &str, mon: &str, auth: &str) -> Run {
    run_bin(&["consistency_checks"], &env(server, mon, auth)).await
}

async fn monitor(stack: &Stack, entries: &[(String, &str, u64)]) -> String {
    let refs: Vec<(&str, &str, u64)> = entries
        .iter()
        .map(|(b, c, ts)| (b.as_str(), *c, *ts))
        .collect();
    stack.scratch_monitor(&refs).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshly_signed_collections_are_ok_with_at_most_three_reads_each() {
    let stack = Stack::get();
    let (reviewed, direct, onecrl) = (unique("cc-main"), unique("cc-bl"), unique("cc-ss"));
    let mut entries = publish(&stack, "main-workspace", &reviewed, 8).await;
    entries.extend(publish(&stack, "staging", &direct, 3).await);
    entries.extend(publish(&stack, "security-state-staging", &onecrl, 2).await);
    let mon = monitor(&stack, &entries).await;
    let proxy = Proxy::start(&stack.server).await;

    let run = check(&proxy.url, &mon, &stack.editor).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");
    // Sorted by bucket and collection, previews not listed on their own.
    assert_eq!(
        run.lines(),
        [
            format!("Read collection list from /buckets/{mon}/collections/changes"),
            format!("blocklists/{direct} OK"),
            format!("main/{reviewed} OK"),
            format!("security-state/{onecrl} OK"),
        ]
    );
    // Server info, the monitor list, then one changeset per side: 3 with a preview, 2 without.
    let requests = proxy.requests();
    let reads = |cid: &str| {
        requests
            .iter()
            .filter(|r| r.contains(&format!("/collections/{cid}/")))
            .count()
    };
    assert_eq!(reads(&reviewed), 3, "{requests:#?}");
    assert_eq!(reads(&direct), 2, "{requests:#?}");
    assert_eq!(reads(&onecrl), 3, "{requests:#?}");
    assert_eq!(requests.len(), 2 + 8, "{requests:#?}");
    for side in [
        format!("/buckets/main-workspace/collections/{reviewed}/changeset?_expected="),
        format!("/buckets/main-preview/collections/{reviewed}/changeset?_expected="),
        format!("/buckets/main/collections/{reviewed}/changeset?_expected="),
    ] {
        assert_eq!(proxy.count(&side), 1, "{side}: {requests:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_in_progress_is_skipped_after_a_single_read() {
    let stack = Stack::get();
    let editor = stack.editor();
    let (edited, asked) = (unique("cc-wip"), unique("cc-asked"));
    let mut entries = publish(&stack, "main-workspace", &edited, 2).await;
    entries.extend(publish(&stack, "staging", &asked, 2).await);
    // An edit after signing puts the source in work-in-progress.
    editor
        .put_record(
            "main-workspace",
            &edited,
            json!({"id": "new", "title": "draft"}),
        )
        .await;
    // A review request where the resource has no preview leaves nothing to compare.
    editor
        .put_record("staging", &asked, json!({"id": "new", "title": "draft"}))
        .await;
    editor
        .patch_collection("staging", &asked, json!({"status": "to-review"}))
        .await;
    let mon = monitor(&stack, &entries).await;
    let proxy = Proxy::start(&stack.server).await;

    let run = check(&proxy.url, &mon, &stack.editor).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines()[1..],
        [
            format!("blocklists/{asked} SKIP (to-review, no preview to compare)"),
            format!("main/{edited} SKIP (work-in-progress)"),
        ]
    );
    assert_eq!(proxy.count(&format!("/collections/{edited}/")), 1);
    assert_eq!(proxy.count(&format!("/collections/{asked}/")), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_review_a_preview_matching_the_source_is_ok() {
    let stack = Stack::get();
    let editor = stack.editor();
    let cid = unique("cc-review");
    let entries = publish(&stack, "main-workspace", &cid, 3).await;
    editor
        .put_record(
            "main-workspace",
            &cid,
            json!({"id": "r0", "title": "reworded"}),
        )
        .await;
    editor.delete_record("main-workspace", &cid, "r1").await;
    editor
        .patch_collection("main-workspace", &cid, json!({"status": "to-review"}))
        .await;
    let mon = monitor(&stack, &entries).await;

    let run = check(&stack.server, &mon, &stack.editor).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.lines()[1..], [format!("main/{cid} OK")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_review_a_preview_that_differs_from_the_source_is_reported() {
    let stack = Stack::get();
    let editor = stack.editor();
    let admin = stack.admin();
    let cid = unique("cc-tampered");
    let entries = publish(&stack, "main-workspace", &cid, 4).await;
    editor
        .put_record(
            "main-workspace",
            &cid,
            json!({"id": "r3", "title": "edited"}),
        )
        .await;
    editor
        .patch_collection("main-workspace", &cid, json!({"status": "to-review"}))
        .await;
    // Behind the signer's back, admin adds a record to the preview, changes one and deletes one.
    admin
        .put_record(
            "main-preview",
            &cid,
            json!({"id": "intruder", "title": "?"}),
        )
        .await;
    admin
        .put_record(
            "main-preview",
            &cid,
            json!({"id": "r0", "title": "changed"}),
        )
        .await;
    admin.delete_record("main-preview", &cid, "r2").await;
    let mon = monitor(&stack, &entries).await;

    let run = check(&stack.server, &mon, &stack.editor).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.lines()[1..],
        [
            format!("main/{cid} INCONSISTENT: records differ (status to-review)"),
            format!(
                "    source main-workspace/{cid} -> preview main-preview/{cid}: \
                 1 missing (r2), 1 extra (intruder), 1 changed (r0)"
            ),
        ]
    );
    assert_eq!(
        run.stderr,
        format!("error: Inconsistencies detected on main/{cid}\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_collections_whose_published_records_differ_are_reported() {
    let stack = Stack::get();
    let admin = stack.admin();
    let (reviewed, direct, intact) = (unique("cc-dest"), unique("cc-bl"), unique("cc-intact"));
    let mut entries = publish(&stack, "main-workspace", &reviewed, 3).await;
    entries.extend(publish(&stack, "staging", &direct, 3).await);
    entries.extend(publish(&stack, "staging", &intact, 3).await);
    // Admin changes one destination record of main/reviewed and adds seven; the preview is left
    // as signed. From blocklists/direct (no preview), admin deletes a record.
    admin
        .put_record("main", &reviewed, json!({"id": "r1", "title": "changed"}))
        .await;
    let extra: Vec<Value> = (0..7)
        .map(|i| json!({"id": format!("e{i}"), "title": "extra"}))
        .collect();
    admin.put_records("main", &reviewed, &extra).await;
    admin.delete_record("blocklists", &direct, "r2").await;
    let mon = monitor(&stack, &entries).await;

    let run = check(&stack.server, &mon, &stack.editor).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.lines()[1..],
        [
            format!("blocklists/{direct} INCONSISTENT: records differ (status signed)"),
            format!(
                "    source staging/{direct} -> destination blocklists/{direct}: \
                 1 missing (r2), 0 extra, 0 changed"
            ),
            format!("blocklists/{intact} OK"),
            format!("main/{reviewed} INCONSISTENT: records differ (status signed)"),
            format!(
                "    preview main-preview/{reviewed} -> destination main/{reviewed}: \
                 0 missing, 7 extra (e0, e1, e2, e3, e4, …), 1 changed (r1)"
            ),
        ]
    );
    assert_eq!(
        run.stderr,
        format!("error: Inconsistencies detected on blocklists/{direct}, main/{reviewed}\n")
    );

    // The JSON report says the same, with counts and ids.
    let json_run = run_bin(
        &["consistency_checks", "--json"],
        &env(&stack.server, &mon, &stack.editor),
    )
    .await;
    assert_eq!(json_run.code, 1);
    let doc = json_run.json();
    assert_eq!(doc["status"], "problems");
    assert_eq!(
        doc["totals"],
        json!({"collections": 3, "ok": 1, "skipped": 0, "inconsistent": 2, "errors": 0,
               "previews_ignored": 1})
    );
    let main = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["collection"] == json!(format!("main/{reviewed}")))
        .unwrap();
    assert_eq!(main["code"], "RECORDS_DIFFER");
    assert_eq!(main["source"], format!("main-workspace/{reviewed}"));
    assert_eq!(main["source_status"], "signed");
    assert_eq!(
        main["diffs"],
        json!([{
            "left": {"side": "preview", "collection": format!("main-preview/{reviewed}")},
            "right": {"side": "destination", "collection": format!("main/{reviewed}")},
            "missing": {"count": 0, "ids": []},
            "extra": {"count": 7, "ids": ["e0", "e1", "e2", "e3", "e4"]},
            "changed": {"count": 1, "ids": ["r1"]},
        }])
    );
    assert_eq!(
        doc["error"]["message"],
        format!("Inconsistencies detected on blocklists/{direct}, main/{reviewed}")
    );
}

/// Create a source collection in `staging` holding `data` as its metadata, bypassing
/// kinto-signer: it refuses the request (a tracking field is set, HTTP 400), but only after the
/// memory backend stored the collection, and before the signer gave it a status. Admin then creates
/// its (empty) destination.
async fn unsigned_source(stack: &Stack, cid: &str, mut data: Value) {
    data["last_signature_by"] = json!("someone");
    let (status, body, _) = stack
        .editor()
        .request(
            reqwest::Method::PUT,
            &format!("/buckets/staging/collections/{cid}"),
            Some(json!({"data": data})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let stored = stack.editor().collection("staging", cid).await;
    assert_eq!(
        stored.get("status"),
        data.get("status"),
        "the test stack kept the collection as sent: {stored}"
    );
    stack.admin().create_collection("blocklists", cid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_without_status_is_inconsistent_and_a_null_status_counts_as_signed() {
    let stack = Stack::get();
    let (missing, null) = (unique("cc-nostatus"), unique("cc-null"));
    unsigned_source(&stack, &missing, json!({})).await;
    unsigned_source(&stack, &null, json!({"status": null})).await;
    let kinto = stack.editor();
    let entries = vec![
        (
            "blocklists".to_string(),
            missing.as_str(),
            kinto.records_timestamp("blocklists", &missing).await,
        ),
        (
            "blocklists".to_string(),
            null.as_str(),
            kinto.records_timestamp("blocklists", &null).await,
        ),
    ];
    let mon = monitor(&stack, &entries).await;

    let run = check(&stack.server, &mon, &stack.editor).await;
    assert_eq!(run.code, 1, "{run:?}");
    let mut expected = vec![
        format!("blocklists/{missing} INCONSISTENT: \"status\" attribute missing"),
        format!("blocklists/{null} OK"),
    ];
    expected.sort();
    assert_eq!(run.lines()[1..], expected);
    assert_eq!(
        run.stderr,
        format!("error: Inconsistencies detected on blocklists/{missing}\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_collections_and_missing_sources_are_inconsistencies_not_crashes() {
    let stack = Stack::get();
    let editor = stack.editor();
    let fine = unique("cc-fine");
    let mut entries = publish(&stack, "staging", &fine, 1).await;
    // A monitored collection no signer resource publishes.
    let scratch = unique("cc-unsigned");
    editor.create_bucket(&scratch).await;
    editor.create_collection(&scratch, "c").await;
    entries.push((scratch.clone(), "c", 1));
    // kinto-signer 8.1.1 lists a per-collection resource security-state-staging/autograph
    // (from the per-bucket `autograph.hawk_id` setting) whose source does not exist.
    entries.push(("security-state".to_string(), "autograph", 2));
    let mon = monitor(&stack, &entries).await;

    let run = check(&stack.server, &mon, &stack.editor).await;
    assert_eq!(run.code, 1, "{run:?}");
    let mut expected = vec![
        format!("blocklists/{fine} OK"),
        format!("{scratch}/c INCONSISTENT: no signer resource publishes this collection"),
        "security-state/autograph INCONSISTENT: the source security-state-staging/autograph does not exist"
            .to_string(),
    ];
    expected.sort();
    assert_eq!(run.lines()[1..], expected);
    let mut named = [
        format!("{scratch}/c"),
        "security-state/autograph".to_string(),
    ];
    named.sort();
    assert_eq!(
        run.stderr,
        format!("error: Inconsistencies detected on {}\n", named.join(", "))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_side_that_cannot_be_read_leaves_the_check_incomplete_with_exit_3() {
    let stack = Stack::get();
    let cid = unique("cc-down");
    let entries = publish(&stack, "main-workspace", &cid, 2).await;
    let mon = monitor(&stack, &entries).await;
    let proxy = Proxy::start(&stack.server).await;
    proxy.fail_always(
        &format!("/buckets/main-preview/collections/{cid}/changeset"),
        Fault::Status(503, None),
    );
    let mut e = env(&proxy.url, &mon, &stack.editor);
    e.push(("REQUESTS_NB_RETRIES", "2"));

    let run = run_bin(&["consistency_checks"], &e).await;
    assert_eq!(run.code, 3, "{run:?}");
    let url = format!(
        "{}/buckets/main-preview/collections/{cid}/changeset",
        proxy.url
    );
    let line = run.lines()[1];
    assert!(
        line.starts_with(&format!(
            "main/{cid} ERROR: could not read the preview main-preview/{cid}: GET {url}?_expected="
        )),
        "{line}"
    );
    assert!(
        line.ends_with("failed after 3 attempts: HTTP 503 (injected fault)"),
        "{line}"
    );
    assert!(
        run.stderr
            .starts_with("error: Could not check 1 collection(s): GET "),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_servers_and_credentials_are_required() {
    let stack = Stack::get();
    let reader = [
        ("SERVER", stack.reader_server.as_str()),
        ("AUTH", stack.editor.as_str()),
    ];
    let run = run_bin(&["consistency_checks"], &reader).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: No signer capabilities found. Run on *writer* server!\n"
    );
    assert_eq!(run.stdout, "");
    let json_run = run_bin(&["consistency_checks", "--json"], &reader).await;
    assert_eq!(json_run.code, 2);
    assert_eq!(json_run.json()["error"]["code"], "UsageError");

    let proxy = Proxy::start(&stack.server).await;
    proxy.expect_no_hits();
    let run = run_bin(&["consistency-checks"], &[("SERVER", proxy.url.as_str())]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.starts_with("error: invalid AUTH: not set"),
        "{}",
        run.stderr
    );
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}
