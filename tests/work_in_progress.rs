//! `work_in_progress` end to end: the real binary against the real Kinto +
//! kinto-remote-settings stack (a writer server), whose source collections carry the `status`,
//! `last_edit_date` and `last_edit_by` the signer sets, and the `{cid}-editors` group it creates
//! with each collection. The server sets those dates itself, so stale work is made by moving
//! "now" with `--at`/`CHECK_AT`. The command reads every source of the server, other tests' too:
//! each test asserts on its own collections' lines, and on exit codes that hold whatever they
//! publish (nothing on a fresh stack was edited a week ago; a month ahead, anything pending is).

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::data::records;
use support::{now, run_bin, unique, Run, Stack};

const DAY: u64 = 86_400;

async fn run(stack: &Stack, extra: &[(&str, &str)]) -> Run {
    let mut env = vec![
        ("SERVER", stack.server.as_str()),
        ("AUTH", stack.admin.as_str()),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ];
    env.extend_from_slice(extra);
    run_bin(&["work_in_progress"], &env).await
}

fn line<'a>(run: &'a Run, source: &str) -> Option<&'a str> {
    run.lines()
        .into_iter()
        .find(|l| l.starts_with(&format!("{source} ")))
}

fn result<'a>(doc: &'a Value, bucket: &str, cid: &str) -> Option<&'a Value> {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["bucket"] == bucket && r["collection"] == cid)
}

/// Three main-workspace collections: one with unsigned changes (work in progress), one asking
/// for review, one edited then restored to its published records (work in progress with nothing
/// pending). Returns their ids and the editor's user id.
async fn pending_work(stack: &Stack) -> (String, String, String, String) {
    let editor = stack.editor();
    let me = editor.ok(Method::GET, "/", None).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let wip = unique("wip-edit");
    editor.create_collection("main-workspace", &wip).await;
    editor
        .put_records("main-workspace", &wip, &records(2))
        .await;
    let review = unique("wip-review");
    editor.create_collection("main-workspace", &review).await;
    editor
        .put_records("main-workspace", &review, &records(1))
        .await;
    editor
        .patch_collection("main-workspace", &review, json!({"status": "to-review"}))
        .await;
    let restored = unique("wip-restored");
    stack
        .publish("main-workspace", &restored, &records(2))
        .await;
    let original = editor.records_by_id("main-workspace", &restored).await["r0"].clone();
    let mut changed = original.clone();
    changed["title"] = json!("edited");
    editor
        .put_record("main-workspace", &restored, changed)
        .await;
    editor
        .put_record("main-workspace", &restored, original)
        .await;
    let status = editor.collection("main-workspace", &restored).await["status"].clone();
    assert_eq!(
        status, "work-in-progress",
        "the edit put it back in progress"
    );
    (wip, review, restored, me)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_pending_for_longer_than_the_limit_names_its_editors() {
    let stack = Stack::get();
    let (wip, review, restored, me) = pending_work(&stack).await;
    let at = (now() + 8 * DAY).to_string();

    let text = run(&stack, &[("CHECK_AT", &at)]).await;
    assert_eq!(text.code, 1, "{text:?}");
    assert!(
        text.stderr.starts_with("error: ")
            && text
                .stderr
                .contains(" source collection(s) pending for more than 7 day(s)"),
        "{}",
        text.stderr
    );
    let l = line(&text, &format!("main-workspace/{wip}")).expect("a line for the work in progress");
    assert!(
        l.starts_with(&format!(
            "main-workspace/{wip} NOT OK STALE_WORK_IN_PROGRESS: work-in-progress, last edited 8.0 days ago ("
        )),
        "{l}"
    );
    assert!(l.ends_with(&format!(") by {me}; editors: {me}")), "{l}");
    let l = line(&text, &format!("main-workspace/{review}")).expect("a line for the review");
    assert!(
        l.starts_with(&format!(
            "main-workspace/{review} NOT OK STALE_TO_REVIEW: to-review, last edited 8.0 days ago ("
        )),
        "{l}"
    );
    assert!(l.ends_with(&format!("; editors: {me}")), "{l}");
    // Nothing pending: the same records as the destination.
    assert_eq!(
        line(&text, &format!("main-workspace/{restored}")),
        None,
        "{}",
        text.stdout
    );

    let json = run(&stack, &[("CHECK_AT", &at), ("OUTPUT", "json")]).await;
    assert_eq!(json.code, 1);
    let doc = json.json();
    assert_eq!(doc["status"], "problems");
    let r = result(&doc, "main-workspace", &wip).unwrap();
    assert_eq!(r["status"], "stale");
    assert_eq!(r["code"], "STALE_WORK_IN_PROGRESS");
    assert_eq!(r["collection_status"], "work-in-progress");
    assert_eq!(r["last_edit_by"], me.as_str());
    assert_eq!(r["editors"], json!([me]));
    assert_eq!(r["age_days"], 8.0);
    assert_eq!(
        result(&doc, "main-workspace", &review).unwrap()["code"],
        "STALE_TO_REVIEW"
    );
    assert!(result(&doc, "main-workspace", &restored).is_none());
    assert!(doc["totals"]["stale"].as_u64().unwrap() >= 2);

    // A longer limit brings them back within it.
    let longer = run(&stack, &[("CHECK_AT", &at), ("MAX_AGE_DAYS", "30")]).await;
    assert_eq!(longer.code, 0, "{longer:?}");
    let l = line(&longer, &format!("main-workspace/{wip}")).unwrap();
    assert!(
        l.starts_with(&format!(
            "main-workspace/{wip} OK: work-in-progress, last edited 8.0 days ago ("
        )),
        "{l}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_work_in_progress_is_healthy() {
    let stack = Stack::get();
    let (wip, review, restored, me) = pending_work(&stack).await;

    let text = run(&stack, &[]).await;
    assert_eq!(text.code, 0, "{text:?}");
    assert_eq!(text.stderr, "");
    assert!(
        text.lines()[0].starts_with("Check time: "),
        "{}",
        text.stdout
    );
    let l = line(&text, &format!("main-workspace/{wip}")).unwrap();
    assert!(
        l.starts_with(&format!(
            "main-workspace/{wip} OK: work-in-progress, last edited 0.0 days ago ("
        )),
        "{l}"
    );
    assert!(l.ends_with(&format!(") by {me}")), "{l}");
    assert!(line(&text, &format!("main-workspace/{review}"))
        .unwrap()
        .contains(" OK: to-review, "));
    // Within the limit, nothing is compared: the restored collection is listed as pending.
    assert!(line(&text, &format!("main-workspace/{restored}")).is_some());
    let last = text.lines().last().unwrap().to_string();
    assert!(
        last.starts_with("0 of ")
            && last.ends_with(" source collection(s) pending for more than 7 day(s)"),
        "{last}"
    );

    let json = run(&stack, &[("OUTPUT", "json")]).await;
    assert_eq!(json.code, 0);
    let doc = json.json();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["totals"]["stale"], 0);
    let r = result(&doc, "main-workspace", &wip).unwrap();
    assert_eq!(
        (r["status"].as_str(), r["last_edit_by"].as_str()),
        (Some("ok"), Some(me.as_str()))
    );
}
