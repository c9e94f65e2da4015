//! `backport_records` end to end: the real binary against the real Kinto stack (with the signer),
//! through the fault-injecting proxy where the test needs to see or disturb the requests.
//!
//! Every test works in its own scratch bucket (or its own collection of a signed workspace
//! bucket), so tests run in parallel without seeing each other's records.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::proxy::{Fault, Proxy};
use support::{run_bin, unique, Kinto, Run, Stack};

/// A scratch bucket readable by everyone, with empty collections `cids`.
async fn scratch(kinto: &Kinto, cids: &[&str]) -> String {
    let bid = unique("bp");
    kinto.create_bucket(&bid).await;
    for cid in cids {
        kinto.create_collection(&bid, cid).await;
    }
    bid
}

/// A scratch bucket whose collections `new` and `old` hold these records.
async fn pair(kinto: &Kinto, new: &[Value], old: &[Value]) -> String {
    let bid = scratch(kinto, &["new", "old"]).await;
    kinto.put_records(&bid, "new", new).await;
    kinto.put_records(&bid, "old", old).await;
    bid
}

/// The settings of one source/destination pair.
fn env<'a>(
    server: &'a str,
    auth: &'a str,
    source: (&'a str, &'a str),
    dest: (&'a str, &'a str),
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SERVER", server),
        ("BACKPORT_RECORDS_SOURCE_AUTH", auth),
        ("BACKPORT_RECORDS_SOURCE_BUCKET", source.0),
        ("BACKPORT_RECORDS_SOURCE_COLLECTION", source.1),
        ("BACKPORT_RECORDS_DEST_BUCKET", dest.0),
        ("BACKPORT_RECORDS_DEST_COLLECTION", dest.1),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ]
}

async fn backport(env: &[(&str, &str)]) -> Run {
    run_bin(&["backport_records"], env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_updates_and_deletions_propagate_then_a_second_run_is_in_sync() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let bid = pair(
        &kinto,
        &[
            json!({"id": "created", "v": 1}),
            json!({"id": "same", "v": 1}),
            json!({"id": "updated", "v": 2, "nested": {"a": [1, 2]}}),
        ],
        &[
            json!({"id": "same", "v": 1}),
            json!({"id": "updated", "v": 1}),
            json!({"id": "deleted", "v": 0}),
        ],
    )
    .await;
    let e = env(&stack.server, &stack.editor, (&bid, "new"), (&bid, "old"));
    let run = backport(&e).await;
    assert_eq!(run.code, 0, "{run:?}");
    let path = format!("/buckets/{bid}/collections/old/records");
    assert_eq!(
        run.lines(),
        [
            format!("Batch #0: PUT {path}/created - 201"),
            format!("Batch #1: PUT {path}/updated - 200"),
            format!("Batch #2: DELETE {path}/deleted - 200"),
            "Done. 3 changes applied.".to_string(),
        ]
    );
    assert_eq!(
        kinto.contents(&bid, "old").await,
        kinto.contents(&bid, "new").await
    );

    let again = backport(&e).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.lines(), ["Records are in sync. Nothing to do."]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_touched_after_the_source_still_receives_its_changes() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let records = [json!({"id": "a", "v": 1}), json!({"id": "b", "v": 1})];
    let bid = pair(&kinto, &records, &records).await;
    // The source changes first, then someone touches the destination: the destination's
    // timestamp is now the newer one, which says nothing about its content.
    kinto
        .put_record(&bid, "new", json!({"id": "a", "v": 2}))
        .await;
    kinto
        .put_record(&bid, "old", json!({"id": "unrelated", "v": 0}))
        .await;
    assert!(
        kinto.records_timestamp(&bid, "old").await > kinto.records_timestamp(&bid, "new").await
    );
    let run = backport(&env(
        &stack.server,
        &stack.editor,
        (&bid, "new"),
        (&bid, "old"),
    ))
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let path = format!("/buckets/{bid}/collections/old/records");
    assert_eq!(
        run.lines(),
        [
            format!("Batch #0: PUT {path}/a - 200"),
            format!("Batch #1: DELETE {path}/unrelated - 200"),
            "Done. 2 changes applied.".to_string(),
        ]
    );
    assert_eq!(
        kinto.contents(&bid, "old").await,
        kinto.contents(&bid, "new").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_filters_select_the_records_the_destination_holds() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let bid = pair(
        &kinto,
        &[
            json!({"id": "young", "age": 10}),
            json!({"id": "adult", "age": 30}),
            json!({"id": "senior", "age": 70}),
        ],
        &[json!({"id": "young", "age": 10})],
    )
    .await;
    let mut e = env(&stack.server, &stack.editor, (&bid, "new"), (&bid, "old"));
    e.push(("BACKPORT_RECORDS_SOURCE_FILTERS", r#"{"min_age": 20}"#));
    let run = backport(&e).await;
    assert_eq!(run.code, 0, "{run:?}");
    let path = format!("/buckets/{bid}/collections/old/records");
    assert_eq!(
        run.lines(),
        [
            format!("Batch #0: PUT {path}/adult - 201"),
            format!("Batch #1: PUT {path}/senior - 201"),
            format!("Batch #2: DELETE {path}/young - 200"),
            "Done. 3 changes applied.".to_string(),
        ]
    );
    let old = kinto.contents(&bid, "old").await;
    assert_eq!(old.keys().collect::<Vec<_>>(), ["adult", "senior"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_run_several_pairs_each_with_its_filters() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let bid = scratch(&kinto, &["a", "a-old", "b", "b-old"]).await;
    kinto
        .put_records(
            &bid,
            "a",
            &[
                json!({"id": "x", "lang": "fr"}),
                json!({"id": "y", "lang": "de"}),
            ],
        )
        .await;
    kinto
        .put_records(&bid, "b", &[json!({"id": "z", "v": 1})])
        .await;
    kinto
        .put_records(&bid, "b-old", &[json!({"id": "z", "v": 1})])
        .await;
    let mappings = format!("{bid}/a?lang=fr -> {bid}/a-old\n\n{bid}/b -> {bid}/b-old\n");
    let run = backport(&[
        ("SERVER", &stack.server),
        ("BACKPORT_RECORDS_SOURCE_AUTH", &stack.editor),
        ("BACKPORT_RECORDS_MAPPINGS", &mappings),
    ])
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines(),
        [
            format!("{bid}/a?lang=fr -> {bid}/a-old"),
            format!("Batch #0: PUT /buckets/{bid}/collections/a-old/records/x - 201"),
            "Done. 1 changes applied.".to_string(),
            format!("{bid}/b -> {bid}/b-old"),
            "Records are in sync. Nothing to do.".to_string(),
        ]
    );
    let a_old = kinto.contents(&bid, "a-old").await;
    assert_eq!(a_old.keys().collect::<Vec<_>>(), ["x"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_source_is_exit_1_and_the_next_mapping_still_runs() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let bid = scratch(&kinto, &["b", "a-old", "b-old"]).await;
    kinto
        .put_records(&bid, "b", &[json!({"id": "z", "v": 1})])
        .await;
    let mappings = format!("{bid}/missing -> {bid}/a-old\n{bid}/b -> {bid}/b-old");
    let run = backport(&[
        ("SERVER", &stack.server),
        ("BACKPORT_RECORDS_SOURCE_AUTH", &stack.editor),
        ("BACKPORT_RECORDS_MAPPINGS", &mappings),
    ])
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    let lines = run.lines();
    assert_eq!(lines[0], format!("{bid}/missing -> {bid}/a-old"));
    assert!(
        lines[1].starts_with(&format!(
            "Cannot backport {bid}/missing -> {bid}/a-old: GET {}/buckets/{bid}/collections/missing/records failed: HTTP 404",
            stack.server
        )),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2..],
        [
            format!("{bid}/b -> {bid}/b-old"),
            format!("Batch #0: PUT /buckets/{bid}/collections/b-old/records/z - 201"),
            "Done. 1 changes applied.".to_string(),
        ]
    );
    assert!(
        run.stderr
            .contains(&format!("error: {bid}/missing -> {bid}/a-old: GET ")),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_exit_2_and_send_nothing() {
    let stack = Stack::get();
    let proxy = Proxy::start(&stack.server).await;
    proxy.expect_no_hits();
    let auth = stack.editor.as_str();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            // The destination defaults to the source's ids.
            vec![
                ("BACKPORT_RECORDS_SOURCE_BUCKET", "main-workspace"),
                ("BACKPORT_RECORDS_SOURCE_COLLECTION", "cfr"),
            ],
            "invalid BACKPORT_RECORDS_DEST_COLLECTION: the destination main-workspace/cfr is the source",
        ),
        (
            vec![("BACKPORT_RECORDS_MAPPINGS", "ws/a -> main/a\nws-scid -> main/cid")],
            "invalid BACKPORT_RECORDS_MAPPINGS: line 2 \"ws-scid -> main/cid\": expected",
        ),
        (
            vec![
                ("BACKPORT_RECORDS_SOURCE_BUCKET", "ws"),
                ("BACKPORT_RECORDS_SOURCE_COLLECTION", "a"),
                ("BACKPORT_RECORDS_DEST_BUCKET", "main"),
                ("BACKPORT_RECORDS_SOURCE_FILTERS", "{\"min_age\": {}}"),
            ],
            "invalid BACKPORT_RECORDS_SOURCE_FILTERS",
        ),
    ];
    for (settings, message) in cases {
        let mut e = vec![
            ("SERVER", proxy.url.as_str()),
            ("BACKPORT_RECORDS_SOURCE_AUTH", auth),
        ];
        e.extend(settings);
        let run = backport(&e).await;
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(message), "{message}: {}", run.stderr);
        assert_eq!(run.stdout, "");
    }
    // Credentials are required: the original needed them too.
    let run = backport(&[
        ("SERVER", proxy.url.as_str()),
        ("BACKPORT_RECORDS_SOURCE_BUCKET", "ws"),
        ("BACKPORT_RECORDS_SOURCE_COLLECTION", "a"),
        ("BACKPORT_RECORDS_DEST_BUCKET", "main"),
    ])
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("BACKPORT_RECORDS_SOURCE_AUTH"),
        "{}",
        run.stderr
    );
    assert_eq!(proxy.requests(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_with_review_gets_to_review_from_the_backport_user() {
    let stack = Stack::get();
    let editor = stack.editor();
    let bid = scratch(&editor, &["new"]).await;
    let records = [json!({"id": "a", "v": 1}), json!({"id": "b", "v": 2})];
    editor.put_records(&bid, "new", &records).await;
    // A signed collection in the review-enabled workspace (created empty, hence signed).
    let cid = unique("bp-review");
    editor.create_collection("main-workspace", &cid).await;
    let run = backport(&env(
        &stack.server,
        &stack.editor,
        (&bid, "new"),
        ("main-workspace", &cid),
    ))
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines().last().copied(),
        Some("Done. Requested review for 2 changes.")
    );
    assert_eq!(
        editor.collection("main-workspace", &cid).await["status"],
        "to-review"
    );
    // The preview holds the changes for the reviewer, who can approve them: the backport user
    // is the editor.
    assert_eq!(
        editor.contents("main-preview", &cid).await,
        editor.contents(&bid, "new").await
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
async fn a_destination_without_review_is_signed_directly() {
    let stack = Stack::get();
    let editor = stack.editor();
    let bid = scratch(&editor, &["new"]).await;
    editor
        .put_records(&bid, "new", &[json!({"id": "a", "v": 1})])
        .await;
    let cid = unique("bp-sign");
    editor.create_collection("staging", &cid).await;
    let e = env(
        &stack.server,
        &stack.editor,
        (&bid, "new"),
        ("staging", &cid),
    );
    let run = backport(&e).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.lines(),
        [
            format!("Batch #0: PUT /buckets/staging/collections/{cid}/records/a - 201"),
            "Done. 1 changes applied and signed.".to_string(),
        ]
    );
    assert_eq!(editor.collection("staging", &cid).await["status"], "signed");
    assert_eq!(
        editor.contents("blocklists", &cid).await,
        editor.contents(&bid, "new").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_sync_records_in_an_unsigned_destination_still_get_signed() {
    let stack = Stack::get();
    let editor = stack.editor();
    let bid = scratch(&editor, &["new"]).await;
    let records = [json!({"id": "a", "v": 1})];
    editor.put_records(&bid, "new", &records).await;
    let cid = unique("bp-pending");
    editor.create_collection("staging", &cid).await;
    // Someone already copied the records, but nobody asked for the signature.
    editor.put_records("staging", &cid, &records).await;
    assert_eq!(
        editor.collection("staging", &cid).await["status"],
        "work-in-progress"
    );
    let e = env(
        &stack.server,
        &stack.editor,
        (&bid, "new"),
        ("staging", &cid),
    );
    let run = backport(&e).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.lines(), ["Done. 0 changes applied and signed."]);
    assert_eq!(editor.collection("staging", &cid).await["status"], "signed");
    assert_eq!(
        editor.contents("blocklists", &cid).await,
        editor.contents(&bid, "new").await
    );
    let again = backport(&e).await;
    assert_eq!(again.lines(), ["Records are in sync. Nothing to do."]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_plan_and_leaves_the_server_unchanged() {
    let stack = Stack::get();
    let editor = stack.editor();
    let bid = scratch(&editor, &["new"]).await;
    editor
        .put_records(
            &bid,
            "new",
            &[json!({"id": "a", "v": 2}), json!({"id": "b", "v": 1})],
        )
        .await;
    let cid = unique("bp-dry");
    editor.create_collection("staging", &cid).await;
    editor
        .put_records(
            "staging",
            &cid,
            &[json!({"id": "a", "v": 1}), json!({"id": "c", "v": 1})],
        )
        .await;
    let before = editor.records_by_id("staging", &cid).await;
    let before_ts = editor.records_timestamp("staging", &cid).await;
    let mut e = env(
        &stack.server,
        &stack.editor,
        (&bid, "new"),
        ("staging", &cid),
    );
    e.push(("DRY_RUN", "1"));
    let run = backport(&e).await;
    assert_eq!(run.code, 0, "{run:?}");
    let path = format!("/buckets/staging/collections/{cid}/records");
    assert_eq!(
        run.lines(),
        [
            format!("Batch #0: PUT {path}/b - dry run"),
            format!("Batch #1: PUT {path}/a - dry run"),
            format!("Batch #2: DELETE {path}/c - dry run"),
            "Dry run. 3 changes would be applied and signed.".to_string(),
        ]
    );
    assert_eq!(editor.records_by_id("staging", &cid).await, before);
    assert_eq!(editor.records_timestamp("staging", &cid).await, before_ts);
    assert_eq!(
        editor.collection("staging", &cid).await["status"],
        "work-in-progress"
    );
    // The flag form too.
    let flag = run_bin(&["backport_records", "--dry-run"], &e[..e.len() - 1]).await;
    assert_eq!(flag.stdout, run.stdout);
    assert_eq!(editor.records_by_id("staging", &cid).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_edit_of_a_destination_record_is_reported_not_overwritten() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let bid = pair(
        &kinto,
        &[json!({"id": "r1", "v": 2}), json!({"id": "r2", "v": 2})],
        &[json!({"id": "r1", "v": 1}), json!({"id": "r2", "v": 1})],
    )
    .await;
    // The batch waits in the proxy while someone edits r1 in the destination.
    let proxy = Proxy::start(&stack.server).await;
    proxy.fail("/batch", vec![Fault::Delay(Duration::from_millis(1500))]);
    let mut e = env(&proxy.url, &stack.editor, (&bid, "new"), (&bid, "old"));
    e.push(("REQUESTS_TIMEOUT_SECONDS", "20"));
    let edit = async {
        for _ in 0..2000 {
            if proxy.count("POST /v1/batch") > 0 {
                kinto
                    .put_record(&bid, "old", json!({"id": "r1", "v": "edited"}))
                    .await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the backport never sent its batch");
    };
    let (run, ()) = tokio::join!(backport(&e), edit);
    assert_eq!(run.code, 1, "{run:?}");
    let path = format!("/buckets/{bid}/collections/old/records");
    assert_eq!(
        run.lines(),
        [
            format!(
                "Batch #0: PUT {path}/r1 - 412 (modified meanwhile in the destination: not overwritten)"
            ),
            format!("Batch #1: PUT {path}/r2 - 200"),
            "Failed. 1 changes applied, 1 not applied.".to_string(),
        ]
    );
    assert!(
        run.stderr.contains(&format!(
            "1 of 2 changes not applied to {bid}/old: r1 (CONCURRENT_EDIT)"
        )),
        "{}",
        run.stderr
    );
    let old = kinto.contents(&bid, "old").await;
    assert_eq!(old["r1"], json!({"id": "r1", "v": "edited"}));
    assert_eq!(old["r2"], json!({"id": "r2", "v": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sub_request_is_exit_1_naming_the_record() {
    let stack = Stack::get();
    let admin = stack.admin();
    let editor = stack.editor();
    let bid = scratch(&editor, &["new"]).await;
    editor
        .put_records(
            &bid,
            "new",
            &[
                json!({"id": "fresh", "v": 1}),
                json!({"id": "owned", "v": 2}),
            ],
        )
        .await;
    // A destination where the editor may create records but not touch the admin's.
    let dest = unique("bp-perm");
    admin.create_bucket(&dest).await;
    admin
        .ok(
            reqwest::Method::PUT,
            &format!("/buckets/{dest}/collections/old"),
            Some(json!({"permissions": {"record:create": ["system.Authenticated"]}})),
        )
        .await;
    admin
        .put_records(
            &dest,
            "old",
            &[
                json!({"id": "owned", "v": 1}),
                json!({"id": "stale", "v": 1}),
            ],
        )
        .await;
    let e = env(&stack.server, &stack.editor, (&bid, "new"), (&dest, "old"));
    let mut json_env = e.clone();
    json_env.push(("OUTPUT", "json"));
    let run = backport(&json_env).await;
    assert_eq!(run.code, 1, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["status"], "problems");
    let changes = doc["results"][0]["changes"].as_array().unwrap();
    let summary: Vec<(&str, &str, &Value)> = changes
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap(),
                c["result"].as_str().unwrap(),
                &c["code"],
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("fresh", "applied", &Value::Null),
            ("owned", "refused", &json!("FORBIDDEN")),
            ("stale", "refused", &json!("FORBIDDEN")),
        ]
    );
    assert_eq!(changes[1]["status"], 403);
    assert_eq!(
        doc["results"][0]["totals"],
        json!({"changes": 3, "applied": 1, "already_applied": 0, "conflicts": 0, "failed": 2})
    );
    // The text report of the same situation: the creation is done, the refusals remain.
    let run = backport(&e).await;
    assert_eq!(run.code, 1, "{run:?}");
    let path = format!("/buckets/{dest}/collections/old/records");
    assert!(
        run.lines()[0].starts_with(&format!("Batch #0: PUT {path}/owned - 403 (")),
        "{}",
        run.stdout
    );
    assert!(
        run.lines()[1].starts_with(&format!("Batch #1: DELETE {path}/stale - 403 (")),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(&format!(
            "2 of 2 changes not applied to {dest}/old: owned (FORBIDDEN), stale (FORBIDDEN)"
        )),
        "{}",
        run.stderr
    );
    let old = editor.contents(&dest, "old").await;
    assert_eq!(old["fresh"], json!({"id": "fresh", "v": 1}));
    assert_eq!(old["owned"], json!({"id": "owned", "v": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_answer_was_lost_is_retried_without_applying_twice() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let bid = pair(
        &kinto,
        &[json!({"id": "add", "v": 1}), json!({"id": "upd", "v": 2})],
        &[json!({"id": "upd", "v": 1}), json!({"id": "del", "v": 0})],
    )
    .await;
    // The server applies the first batch, but its answer never reaches the client.
    let proxy = Proxy::start(&stack.server).await;
    proxy.fail("/batch", vec![Fault::LoseAnswer]);
    let run = backport(&env(
        &proxy.url,
        &stack.editor,
        (&bid, "new"),
        (&bid, "old"),
    ))
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let path = format!("/buckets/{bid}/collections/old/records");
    assert_eq!(
        run.lines(),
        [
            format!("Batch #0: PUT {path}/add - 412 (already applied)"),
            format!("Batch #1: PUT {path}/upd - 412 (already applied)"),
            format!("Batch #2: DELETE {path}/del - 404 (already applied)"),
            "Done. 3 changes applied.".to_string(),
        ]
    );
    assert_eq!(proxy.count("POST /v1/batch"), 2, "{:#?}", proxy.requests());
    // The records are as the first, lost, attempt left them: the retry wrote nothing.
    let lost: Value = serde_json::from_str(&proxy.lost_answers()[0]).unwrap();
    let statuses: Vec<&Value> = lost["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, [&json!(201), &json!(200), &json!(200)]);
    let old = kinto.records_by_id(&bid, "old").await;
    for (i, id) in ["add", "upd"].iter().enumerate() {
        assert_eq!(
            old[*id]["last_modified"], lost["responses"][i]["body"]["data"]["last_modified"],
            "{id}"
        );
    }
    assert_eq!(
        kinto.contents(&bid, "old").await,
        kinto.contents(&bid, "new").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failing_after_retries_stops_the_writes_with_exit_3() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let records: Vec<Value> = (0..60).map(|i| json!({"id": format!("r{i:02}")})).collect();
    let bid = pair(&kinto, &records, &[]).await;
    let proxy = Proxy::start(&stack.server).await;
    proxy.fail_always("/batch", Fault::Status(503, None));
    let mut e = env(&proxy.url, &stack.editor, (&bid, "new"), (&bid, "old"));
    e.extend([("REQUESTS_NB_RETRIES", "1"), ("PARALLEL_REQUESTS", "1")]);
    let run = backport(&e).await;
    assert_eq!(run.code, 3, "{run:?}");
    // Three chunks of 25: the first one failed twice, the others were never sent.
    assert_eq!(proxy.count("POST /v1/batch"), 2, "{:#?}", proxy.requests());
    let lines = run.lines();
    assert_eq!(lines.len(), 61);
    let path = format!("/buckets/{bid}/collections/old/records");
    assert!(
        lines[0].starts_with(&format!(
            "Batch #0: PUT {path}/r00 - failed, not applied (not in the destination after: POST {}/batch failed after 2 attempts: HTTP 503",
            proxy.url
        )),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[25],
        format!("Batch #25: PUT {path}/r25 - not sent (an earlier batch failed)")
    );
    assert_eq!(lines[60], "Failed. 0 changes applied, 60 not applied.");
    assert!(
        run.stderr.contains(&format!(
            "60 of 60 changes not applied to {bid}/old: r00 (SERVER_ERROR)"
        )),
        "{}",
        run.stderr
    );
    assert!(kinto.contents(&bid, "old").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_records_are_written_one_batch_at_a_time() {
    let stack = Stack::get();
    // The bulk server: thousands of writes there neither wait for nor slow down other tests.
    let kinto = Kinto::new(&stack.bulk_server, &stack.editor);
    let records: Vec<Value> = (0..5000)
        .map(|i| json!({"id": format!("r{i:04}"), "n": i}))
        .collect();
    let bid = pair(&kinto, &records, &[]).await;
    let proxy = Proxy::start(&stack.bulk_server).await;
    let run = backport(&env(
        &proxy.url,
        &stack.editor,
        (&bid, "new"),
        (&bid, "old"),
    ))
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = run.lines();
    assert_eq!(lines.len(), 5001);
    assert_eq!(
        lines[4999],
        format!("Batch #4999: PUT /buckets/{bid}/collections/old/records/r4999 - 201")
    );
    assert_eq!(lines[5000], "Done. 5000 changes applied.");
    // The stack's batch_max_requests is 25. Whatever PARALLEL_REQUESTS allows (4 by default),
    // batches into one collection go one at a time: Kinto would refuse concurrent ones (409).
    assert_eq!(proxy.count("POST /v1/batch"), 200);
    assert_eq!(proxy.max_writes_in_flight(), 1);
    let old = kinto.contents(&bid, "old").await;
    assert_eq!(old.len(), 5000);
    assert_eq!(old, kinto.contents(&bid, "new").await);
}
