//! `purge_history` end to end: the real binary against the real Kinto 26 stack and its history
//! plugin. Each test makes its own history: the editor creates scratch buckets (and so may read
//! and delete their history: the plugin gives history `read` to the bucket's readers and
//! writers, `write` to its writers; the stack's admin, a writer of every bucket by
//! `bucket_write_principals` only, gets 403 on another user's bucket history) and lets the
//! reviewer write there too, so that two users leave entries. "Older than the cutoff" is made
//! by moving "now" with `--at`/`CHECK_AT`, as the server sets `last_modified` itself.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::lambda::{Bootstrap, RuntimeApi};
use support::proxy::{Fault, Match, Proxy};
use support::sentry::SentryListener;
use support::{now, run_bin, unique, Kinto, Run, Stack};

const DAY: u64 = 86_400;

/// A scratch bucket in which the editor leaves `editor_records + 2` entries (the bucket, a
/// collection, the records) and the reviewer `reviewer_records`.
async fn scratch(
    stack: &Stack,
    server: &str,
    editor_records: usize,
    reviewer_records: usize,
) -> String {
    let editor = Kinto::new(server, &stack.editor);
    let reviewer = Kinto::new(server, &stack.reviewer);
    let bid = unique("hist");
    let reviewer_id = std::env::var("RSL_TEST_REVIEWER_ID").unwrap();
    editor
        .ok(
            Method::PUT,
            &format!("/buckets/{bid}"),
            Some(json!({"permissions": {"write": [reviewer_id]}})),
        )
        .await;
    editor.create_collection(&bid, "c").await;
    for i in 0..editor_records {
        editor
            .put_record(&bid, "c", json!({"id": format!("e{i}")}))
            .await;
    }
    for i in 0..reviewer_records {
        reviewer
            .put_record(&bid, "c", json!({"id": format!("r{i}")}))
            .await;
    }
    bid
}

fn editor_id() -> String {
    std::env::var("RSL_TEST_EDITOR_ID").unwrap()
}

fn reviewer_id() -> String {
    std::env::var("RSL_TEST_REVIEWER_ID").unwrap()
}

/// The history entries of `user_id` in `bid`, as the editor reads them (every page).
async fn history(stack: &Stack, server: &str, bid: &str, user_id: &str) -> Vec<Value> {
    let editor = Kinto::new(server, &stack.editor);
    let mut path = format!(
        "/buckets/{bid}/history?user_id={}",
        user_id.replace(':', "%3A")
    );
    let mut all = Vec::new();
    loop {
        let (status, body, headers) = editor.request(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        all.extend(body["data"].as_array().unwrap().iter().cloned());
        match headers.get("Next-Page") {
            Some(next) => {
                path = next
                    .to_str()
                    .unwrap()
                    .trim_start_matches(&editor.base)
                    .to_string();
            }
            None => return all,
        }
    }
}

async fn run(server: &str, auth: &str, extra: &[(&str, &str)]) -> Run {
    let mut env = vec![
        ("SERVER", server),
        ("AUTH", auth),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ];
    env.extend_from_slice(extra);
    run_bin(&["purge_history"], &env).await
}

/// The line of a pair.
fn line<'a>(run: &'a Run, bid: &str, user_id: &str) -> &'a str {
    run.lines()
        .into_iter()
        .find(|l| l.starts_with(&format!("{bid} ({user_id}): ")))
        .unwrap_or_else(|| panic!("no line for {bid} {user_id}:\n{}", run.stdout))
}

fn result<'a>(doc: &'a Value, bid: &str, user_id: &str) -> &'a Value {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["bucket"] == bid && r["user_id"] == user_id)
        .unwrap_or_else(|| panic!("no result for {bid} {user_id}: {doc}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_it_counts_what_would_go_and_deletes_nothing() {
    let stack = Stack::get();
    let b1 = scratch(&stack, &stack.server, 3, 2).await;
    let b2 = scratch(&stack, &stack.server, 1, 0).await;
    let (editor, reviewer) = (editor_id(), reviewer_id());
    let users = format!("{editor},{reviewer}");
    let buckets = format!("{b1},{b2}");
    let settings = [
        ("BUCKETS", buckets.as_str()),
        ("USER_IDS", users.as_str()),
        ("MAX_AGE_DAYS", "0"),
    ];

    let text = run(&stack.server, &stack.editor, &settings).await;
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.lines()[0]
            .starts_with("Dry run (DRY_RUN=0 deletes): counting history entries older than "),
        "{}",
        text.stdout
    );
    assert_eq!(
        line(&text, &b1, &editor),
        format!("{b1} ({editor}): 5 entries would be purged (dry run).")
    );
    assert_eq!(
        line(&text, &b1, &reviewer),
        format!("{b1} ({reviewer}): 2 entries would be purged (dry run).")
    );
    assert_eq!(
        line(&text, &b2, &editor),
        format!("{b2} ({editor}): 3 entries would be purged (dry run).")
    );
    assert_eq!(
        line(&text, &b2, &reviewer),
        format!("{b2} ({reviewer}): 0 entries would be purged (dry run).")
    );
    assert_eq!(
        text.lines().last().unwrap(),
        &"Total: 10 entries would be purged (4 pair(s), 0 failed); nothing was deleted"
    );

    let json = run(
        &stack.server,
        &stack.editor,
        &[&settings[..], &[("OUTPUT", "json")]].concat(),
    )
    .await;
    assert_eq!(json.code, 0, "{json:?}");
    let doc = json.json();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["max_delete"], 10_000);
    let r = result(&doc, &b1, &editor);
    assert_eq!(r["status"], "would_delete");
    assert_eq!(r["counted"], 5);
    assert_eq!(r["deleted"], 0);
    assert_eq!(
        doc["totals"],
        json!({"pairs": 4, "counted": 10, "would_delete": 10, "deleted": 0, "failed": 0})
    );

    // Nothing went.
    assert_eq!(history(&stack, &stack.server, &b1, &editor).await.len(), 5);
    assert_eq!(
        history(&stack, &stack.server, &b1, &reviewer).await.len(),
        2
    );
    assert_eq!(history(&stack, &stack.server, &b2, &editor).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_0_deletes_exactly_the_old_entries_of_the_given_users_in_the_given_buckets() {
    let stack = Stack::get();
    let b1 = scratch(&stack, &stack.server, 3, 2).await;
    let b2 = scratch(&stack, &stack.server, 2, 0).await;
    let (editor, reviewer) = (editor_id(), reviewer_id());
    // Entries after the cutoff: the cutoff is a whole second, past every entry made so far.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let cutoff = now();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let writer = Kinto::new(&stack.server, &stack.editor);
    for i in 0..2 {
        writer
            .put_record(&b1, "c", json!({"id": format!("late{i}")}))
            .await;
    }
    let before: Vec<Value> = history(&stack, &stack.server, &b1, &editor).await;
    assert_eq!(before.len(), 7);
    // One day before `--at` is the cutoff.
    let at = (cutoff + DAY).to_string();
    let settings = [
        ("BUCKETS", b1.as_str()),
        ("USER_IDS", editor.as_str()),
        ("MAX_AGE_DAYS", "1"),
        ("CHECK_AT", at.as_str()),
        ("DRY_RUN", "0"),
    ];

    let purged = run(&stack.server, &stack.editor, &settings).await;
    assert_eq!(purged.code, 0, "{purged:?}");
    assert!(
        purged.lines()[0].starts_with("Purging history entries older than "),
        "{}",
        purged.stdout
    );
    assert!(
        purged.lines()[0].ends_with(&format!("(1 days, _before=\"{}\")", cutoff * 1000)),
        "{}",
        purged.stdout
    );
    assert_eq!(
        line(&purged, &b1, &editor),
        format!("{b1} ({editor}): 5 entries purged from history.")
    );
    assert_eq!(
        purged.lines().last().unwrap(),
        &"Total: 5 entries purged from history (1 pair(s), 0 failed)"
    );

    // The editor's two late entries are kept, and they are the late records'.
    let kept = history(&stack, &stack.server, &b1, &editor).await;
    let mut kept_ids: Vec<&str> = kept
        .iter()
        .map(|e| e["record_id"].as_str().unwrap())
        .collect();
    kept_ids.sort_unstable();
    assert_eq!(kept_ids, ["late0", "late1"]);
    assert!(kept
        .iter()
        .all(|e| e["last_modified"].as_u64().unwrap() >= cutoff * 1000));
    // Other users' entries, and other buckets', are kept.
    assert_eq!(
        history(&stack, &stack.server, &b1, &reviewer).await.len(),
        2
    );
    assert_eq!(history(&stack, &stack.server, &b2, &editor).await.len(), 4);

    // A second run finds nothing; `--dry-run=0` is the same as DRY_RUN=0.
    let json = run_bin(
        &["purge_history", "--json", "--dry-run=0"],
        &[
            ("SERVER", stack.server.as_str()),
            ("AUTH", stack.editor.as_str()),
            ("BUCKETS", b1.as_str()),
            ("USER_IDS", editor.as_str()),
            ("MAX_AGE_DAYS", "1"),
            ("CHECK_AT", at.as_str()),
        ],
    )
    .await;
    assert_eq!(json.code, 0, "{json:?}");
    let doc = json.json();
    assert_eq!(doc["dry_run"], false);
    assert_eq!(doc["before"], cutoff * 1000);
    let r = result(&doc, &b1, &editor);
    assert_eq!(
        (
            r["status"].as_str(),
            r["counted"].as_u64(),
            r["deleted"].as_u64()
        ),
        (Some("deleted"), Some(0), Some(0))
    );
    assert_eq!(history(&stack, &stack.server, &b1, &editor).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_are_sent_again_until_kinto_has_no_next_page_and_a_last_count_finds_none() {
    // The small-pages server deletes at most 3 entries per DELETE (`kinto.paginate_by = 3`).
    let stack = Stack::get();
    let bid = scratch(&stack, &stack.small_pages_server, 8, 1).await;
    let editor = editor_id();
    let proxy = Proxy::start(&stack.small_pages_server).await;
    let settings = [
        ("BUCKETS", bid.as_str()),
        ("USER_IDS", editor.as_str()),
        ("MAX_AGE_DAYS", "0"),
        ("DRY_RUN", "0"),
    ];
    let purged = run(&proxy.url, &stack.editor, &settings).await;
    assert_eq!(purged.code, 0, "{purged:?}");
    assert_eq!(
        line(&purged, &bid, &editor),
        format!("{bid} ({editor}): 10 entries purged from history.")
    );
    // 3 + 3 + 3 + 1, each with `_limit` = what was counted and not yet deleted.
    let deletes: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("DELETE "))
        .collect();
    let limits: Vec<&str> = deletes
        .iter()
        .map(|r| {
            r.split("_limit=")
                .nth(1)
                .unwrap()
                .split(['&', ' '])
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(limits, ["10", "7", "4", "1"], "{deletes:#?}");
    assert!(
        deletes
            .iter()
            .all(|r| r.contains("_before=%22") && !r.contains("_token")),
        "{deletes:#?}"
    );
    // Counted page by page (4 pages of 3) before, and once after (nothing left).
    assert_eq!(
        proxy.count_on(&Match::contains("/history").method("GET")),
        4 + 1
    );
    assert!(history(&stack, &stack.small_pages_server, &bid, &editor)
        .await
        .is_empty());
    assert_eq!(
        history(&stack, &stack.small_pages_server, &bid, &reviewer_id())
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_delete_answer_is_sent_again_and_never_deletes_more_than_was_counted() {
    let stack = Stack::get();
    let bid = scratch(&stack, &stack.small_pages_server, 5, 0).await;
    let editor = editor_id();
    let proxy = Proxy::start(&stack.small_pages_server).await;
    proxy.fail_on(
        Match::contains("/history").method("DELETE"),
        vec![Fault::LoseAnswer],
    );
    let settings = [
        ("BUCKETS", bid.as_str()),
        ("USER_IDS", editor.as_str()),
        ("MAX_AGE_DAYS", "0"),
        ("DRY_RUN", "0"),
    ];
    let purged = run(&proxy.url, &stack.editor, &settings).await;
    assert_eq!(purged.code, 0, "{purged:?}");
    assert_eq!(proxy.lost_answers().len(), 1);
    assert_eq!(
        line(&purged, &bid, &editor),
        format!("{bid} ({editor}): 7 entries purged from history.")
    );
    assert!(history(&stack, &stack.small_pages_server, &bid, &editor)
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_with_more_entries_than_max_delete_is_left_untouched_and_fails_the_run() {
    let stack = Stack::get();
    let bid = scratch(&stack, &stack.server, 3, 1).await;
    let (editor, reviewer) = (editor_id(), reviewer_id());
    let users = format!("{editor},{reviewer}");
    let sentry = SentryListener::start().await;
    let settings = [
        ("BUCKETS", bid.as_str()),
        ("USER_IDS", users.as_str()),
        ("MAX_AGE_DAYS", "0"),
        ("MAX_DELETE", "4"),
        ("DRY_RUN", "0"),
        ("SENTRY_DSN", sentry.dsn.as_str()),
    ];
    let purged = run(&stack.server, &stack.editor, &settings).await;
    assert_eq!(purged.code, 1, "{purged:?}");
    assert_eq!(
        line(&purged, &bid, &editor),
        format!("{bid} ({editor}): NOT OK OVER_MAX_DELETE: 5 entries older than the cutoff, more than MAX_DELETE (4): left untouched")
    );
    assert_eq!(
        line(&purged, &bid, &reviewer),
        format!("{bid} ({reviewer}): 1 entries purged from history.")
    );
    assert!(
        purged
            .stderr
            .contains("error: 1 of 2 history purge(s) failed, first "),
        "{}",
        purged.stderr
    );
    assert_eq!(history(&stack, &stack.server, &bid, &editor).await.len(), 5);
    assert!(history(&stack, &stack.server, &bid, &reviewer)
        .await
        .is_empty());
    let events = sentry.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].contains("OVER_MAX_DELETE") && events[0].contains("purge_history"),
        "{}",
        events[0]
    );

    // A dry run says the same, and exits 1 too.
    let dry = run(&stack.server, &stack.editor, &settings[..4]).await;
    assert_eq!(dry.code, 1, "{dry:?}");
    assert!(
        line(&dry, &bid, &editor).ends_with("more than MAX_DELETE (4): would be left untouched")
    );
    assert_eq!(history(&stack, &stack.server, &bid, &editor).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_is_missing_or_refused_fails_its_pairs_and_the_others_are_purged() {
    let stack = Stack::get();
    let bid = scratch(&stack, &stack.server, 1, 0).await;
    let missing = unique("missing");
    let editor = editor_id();
    let buckets = format!("{missing},{bid}");
    let settings = [
        ("BUCKETS", buckets.as_str()),
        ("USER_IDS", editor.as_str()),
        ("MAX_AGE_DAYS", "0"),
        ("DRY_RUN", "0"),
        ("OUTPUT", "json"),
    ];
    let purged = run(&stack.server, &stack.editor, &settings).await;
    assert_eq!(purged.code, 1, "{purged:?}");
    let doc = purged.json();
    assert_eq!(doc["status"], "problems");
    let r = result(&doc, &missing, &editor);
    assert_eq!(r["status"], "error");
    assert_eq!(r["error"]["status"], 403);
    assert_eq!(r["counted"], Value::Null);
    let r = result(&doc, &bid, &editor);
    assert_eq!(
        (r["status"].as_str(), r["deleted"].as_u64()),
        (Some("deleted"), Some(3))
    );

    // Someone who may not write the bucket's history: refused, nothing deleted (the admin of
    // the stack writes every bucket by a setting, which does not reach history).
    let again = scratch(&stack, &stack.server, 1, 0).await;
    for auth in [&stack.admin, &stack.nobody] {
        let settings = [
            ("BUCKETS", again.as_str()),
            ("USER_IDS", editor.as_str()),
            ("MAX_AGE_DAYS", "0"),
            ("DRY_RUN", "0"),
        ];
        let refused = run(&stack.server, auth, &settings).await;
        assert_eq!(refused.code, 1, "{refused:?}");
        let l = line(&refused, &again, &editor);
        assert!(
            l.contains("NOT OK: could not count the entries, left untouched: GET "),
            "{l}"
        );
        assert!(l.contains("HTTP 403") && l.ends_with("the bucket does not exist, or AUTH may not read (count) or write (delete) its history"), "{l}");
    }
    assert_eq!(
        history(&stack, &stack.server, &again, &editor).await.len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_fails_is_exit_3_and_a_pair_not_counted_is_not_deleted() {
    let stack = Stack::get();
    let b1 = scratch(&stack, &stack.server, 1, 0).await;
    let b2 = scratch(&stack, &stack.server, 1, 0).await;
    let editor = editor_id();
    let proxy = Proxy::start(&stack.server).await;
    proxy.fail_always_on(
        Match::contains(format!("/buckets/{b1}/history")).method("GET"),
        Fault::Status(503, None),
    );
    let buckets = format!("{b1},{b2}");
    let settings = [
        ("BUCKETS", buckets.as_str()),
        ("USER_IDS", editor.as_str()),
        ("MAX_AGE_DAYS", "0"),
        ("DRY_RUN", "0"),
        ("REQUESTS_NB_RETRIES", "1"),
    ];
    let purged = run(&proxy.url, &stack.editor, &settings).await;
    assert_eq!(purged.code, 3, "{purged:?}");
    assert!(
        line(&purged, &b1, &editor).contains("could not count the entries, left untouched: GET ")
    );
    assert!(line(&purged, &b1, &editor).contains("HTTP 503"));
    assert_eq!(
        line(&purged, &b2, &editor),
        format!("{b2} ({editor}): 3 entries purged from history.")
    );
    assert_eq!(
        proxy.count_on(&Match::contains(format!("/buckets/{b1}/history")).method("DELETE")),
        0
    );
    assert_eq!(history(&stack, &stack.server, &b1, &editor).await.len(), 3);

    // A DELETE that keeps failing: what was deleted before is reported, exit 3.
    let proxy = Proxy::start(&stack.server).await;
    proxy.fail_always_on(
        Match::contains("/history").method("DELETE"),
        Fault::Status(500, None),
    );
    let purged = run(&proxy.url, &stack.editor, &settings).await;
    assert_eq!(purged.code, 3, "{purged:?}");
    assert!(
        line(&purged, &b1, &editor).starts_with(&format!(
            "{b1} ({editor}): NOT OK: 0 of 3 entries purged, then: DELETE "
        )),
        "{}",
        purged.stdout
    );
    assert_eq!(history(&stack, &stack.server, &b1, &editor).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_exit_2_with_one_line_before_any_request() {
    let stack = Stack::get();
    let proxy = Proxy::start(&stack.server).await;
    proxy.expect_no_hits();
    for (settings, name) in [
        (vec![("AUTH", "")], "AUTH"),
        (vec![("USER_IDS", "admin")], "USER_IDS"),
        (vec![("USER_IDS", " , ")], "USER_IDS"),
        (vec![("BUCKETS", "main-workspace, ../main")], "BUCKETS"),
        (vec![("BUCKETS", ",")], "BUCKETS"),
        (vec![("MAX_AGE_DAYS", "two years")], "MAX_AGE_DAYS"),
        (vec![("MAX_DELETE", "-1")], "MAX_DELETE"),
        (vec![("DRY_RUN", "perhaps")], "DRY_RUN"),
    ] {
        let mut env = vec![("AUTH", stack.editor.as_str())];
        env.extend(settings);
        let failed = {
            let mut all = vec![("SERVER", proxy.url.as_str())];
            all.extend(env.iter().copied());
            run_bin(&["purge_history"], &all).await
        };
        assert_eq!(failed.code, 2, "{name}: {failed:?}");
        assert_eq!(failed.stderr.lines().count(), 1, "{failed:?}");
        assert!(
            failed
                .stderr
                .starts_with(&format!("error: invalid {name}: ")),
            "{failed:?}"
        );
        assert!(failed.stdout.is_empty(), "{failed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_lambda_the_event_names_the_buckets_users_and_age_and_it_stays_a_dry_run() {
    let stack = Stack::get();
    let bid = scratch(&stack, &stack.server, 1, 0).await;
    let editor = editor_id();
    let api = RuntimeApi::start(None).await;
    let lambda = Bootstrap::start(
        &api,
        "purge_history",
        &[
            ("SERVER", stack.server.as_str()),
            ("AUTH", stack.editor.as_str()),
        ],
    );
    let id = api.invoke(&json!({"buckets": bid, "user_ids": editor, "max_age_days": "0"}));
    let post = api.outcome(&id).await;
    let doc = post.response();
    assert_eq!(doc["dry_run"], true, "{}", lambda.stderr());
    assert_eq!(doc["max_age_days"], 0);
    let r = result(doc, &bid, &editor);
    assert_eq!(
        (r["status"].as_str(), r["counted"].as_u64()),
        (Some("would_delete"), Some(3))
    );
    assert_eq!(history(&stack, &stack.server, &bid, &editor).await.len(), 3);

    // A pair over the cap is a PurgeHistoryError.
    let id = api.invoke(
        &json!({"buckets": bid, "user_ids": editor, "max_age_days": "0", "max_delete": "2"}),
    );
    let post = api.outcome(&id).await;
    let (kind, message) = post.error();
    assert_eq!(kind, "PurgeHistoryError");
    assert!(message.contains("OVER_MAX_DELETE"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_history_plugin_is_a_usage_error() {
    let stack = Stack::get();
    // The real server info, with its history capability renamed.
    let proxy = Proxy::start(&stack.server).await;
    proxy.fail_always_on(
        Match::exact("/v1/"),
        Fault::Replace("\"history\":".into(), "\"not-history\":".into()),
    );
    let editor = editor_id();
    let settings = [
        ("BUCKETS", "main-workspace"),
        ("USER_IDS", editor.as_str()),
        ("DRY_RUN", "0"),
    ];
    let refused = run(&proxy.url, &stack.editor, &settings).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert_eq!(
        refused.stderr.trim_end(),
        "error: No history capability found: run on a server with Kinto's history plugin (kinto.plugins.history)"
    );
    assert_eq!(proxy.requests(), ["GET /v1/"]);
}
