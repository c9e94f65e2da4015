//! `certificates_expiration` end to end: the real binary, as a reader through the CDN edge
//! fixture, against the real Kinto stack whose signatures point at the stack's Autograph-shaped
//! signer's x5u chains. A record holding `"rsl-autograph": "near-expiry"` (or `"expired"`) makes
//! the signer use a chain whose leaf expires in 3 days (or expired 2 days ago); `--at` moves the
//! clock against the good chain (leaf valid 330 days, 300 of them ahead; margin 33 days).
//!
//! Every test lists only its own collections in a scratch monitor collection.

mod support;

use serde_json::{json, Value};
use support::data::records;
use support::{now, run_bin, unique, Run, Stack};

const DAY: u64 = 86_400;
const LEAF: &str = "certificate 1/3 (CN=remote-settings.content-signature.mozilla.org)";

fn marker(mode: &str) -> Value {
    json!({"id": "zz-marker", "rsl-autograph": mode})
}

/// Publish `blocklists/<cid>` (signed with `mode`'s chain when given) and return its entry.
async fn publish(stack: &Stack, prefix: &str, mode: Option<&str>) -> (String, u64) {
    let cid = unique(prefix);
    let mut data = records(2);
    data.extend(mode.map(marker));
    let ts = stack.publish("staging", &cid, &data).await;
    (cid, ts)
}

async fn run(stack: &Stack, monitor: &(String, String), extra: &[&str]) -> (Run, Run) {
    let env = [
        ("SERVER", stack.edge.as_str()),
        ("BUCKET", monitor.0.as_str()),
        ("COLLECTION", monitor.1.as_str()),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ];
    let mut args = vec!["certificates_expiration"];
    args.extend_from_slice(extra);
    let text = run_bin(&args, &env).await;
    args.push("--json");
    let json = run_bin(&args, &env).await;
    (text, json)
}

fn chain_url(stack: &Stack, name: &str) -> String {
    format!(
        "{}/chains/{name}.pem",
        stack.autograph.trim_end_matches('/')
    )
}

/// The line of `x5u`, which must start with `x5u` + `prefix`.
fn line<'a>(run: &'a Run, x5u: &str) -> &'a str {
    run.lines()
        .into_iter()
        .find(|l| l.starts_with(&format!("{x5u} ")))
        .unwrap_or_else(|| panic!("no line for {x5u} in:\n{}\n{}", run.stdout, run.stderr))
}

fn result<'a>(json: &'a Value, x5u: &str) -> &'a Value {
    json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["x5u"] == x5u)
        .unwrap_or_else(|| panic!("no result for {x5u} in {json:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_far_from_expiry_are_healthy_and_list_the_collections_they_sign() {
    let stack = Stack::get();
    let (a, a_ts) = publish(&stack, "ce-a", None).await;
    let (b, b_ts) = publish(&stack, "ce-b", None).await;
    let onecrl = unique("ce-ss");
    let onecrl_ts = stack
        .publish("security-state-staging", &onecrl, &records(1))
        .await;
    let monitor = stack
        .scratch_monitor(&[
            ("blocklists", &a, a_ts),
            ("blocklists", &b, b_ts),
            ("security-state", &onecrl, onecrl_ts),
        ])
        .await;
    let (text, json) = run(&stack, &monitor, &[]).await;
    assert_eq!(text.code, 0, "{text:?}");
    assert_eq!(text.stderr, "");
    let lines = text.lines();
    assert_eq!(
        lines[0],
        format!(
            "Read collection list from /buckets/{}/collections/changes",
            monitor.0
        )
    );
    assert!(lines[1].starts_with("Check time: "), "{}", lines[1]);
    assert_eq!(lines.len(), 4, "one line per chain:\n{}", text.stdout);
    let good = chain_url(&stack, "good");
    let l = line(&text, &good);
    assert!(
        l.starts_with(&format!("{good} OK: {LEAF} expires on ")),
        "{l}"
    );
    assert!(
        l.contains(", in 299.9 days (margin 33.0 days); ")
            || l.contains(", in 300.0 days (margin 33.0 days); "),
        "{l}"
    );
    assert!(
        l.ends_with(&format!("; used by blocklists/{a}, blocklists/{b}")),
        "{l}"
    );
    let onecrl_chain = chain_url(&stack, "good@onecrl");
    let l = line(&text, &onecrl_chain);
    assert!(
        l.contains(" OK: certificate 1/3 (CN=onecrl.content-signature.mozilla.org) expires on "),
        "{l}"
    );
    assert!(
        l.ends_with(&format!("; used by security-state/{onecrl}")),
        "{l}"
    );

    assert_eq!(json.code, 0, "{json:?}");
    let doc = json.json();
    assert_eq!(doc["status"], "ok");
    let r = result(&doc, &good);
    assert_eq!(r["status"], "ok");
    assert!(r.get("code").is_none(), "{r}");
    assert_eq!(
        r["collections"],
        json!([format!("blocklists/{a}"), format!("blocklists/{b}")])
    );
    assert_eq!(r["certificate"]["position"], 1);
    assert_eq!(r["certificate"]["count"], 3);
    assert_eq!(r["margin_days"], 33.0);
    assert_eq!(r["chain"].as_array().unwrap().len(), 3);
    assert_eq!(
        doc["totals"],
        json!({"chains": 2, "collections": 3, "ok": 2, "near_expiry": 0, "expired": 0, "bad": 0,
               "unreadable_collections": 0, "unsigned_collections": 0, "invalid_entries": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_near_expiry_or_expired_fails_with_its_certificate_and_days_left() {
    let stack = Stack::get();
    let (good, good_ts) = publish(&stack, "ce-good", None).await;
    let (near, near_ts) = publish(&stack, "ce-near", Some("near-expiry")).await;
    let (gone, gone_ts) = publish(&stack, "ce-expired", Some("expired")).await;
    let monitor = stack
        .scratch_monitor(&[
            ("blocklists", &good, good_ts),
            ("blocklists", &near, near_ts),
            ("blocklists", &gone, gone_ts),
        ])
        .await;
    let (text, json) = run(&stack, &monitor, &[]).await;
    assert_eq!(text.code, 1, "{text:?}");
    assert!(
        text.stderr
            .starts_with("error: 2 of 3 certificate chain(s) near expiry, expired or unusable"),
        "{}",
        text.stderr
    );
    let near_url = chain_url(&stack, "near-expiry");
    let l = line(&text, &near_url);
    // Lifespan 103 days: a margin of 10.3 days, 3 days left.
    assert!(
        l.starts_with(&format!(
            "{near_url} NOT OK CERT_NEAR_EXPIRY: {LEAF} expires on "
        )),
        "{l}"
    );
    assert!(l.contains(", in 3.0 days (margin 10.3 days); "), "{l}");
    assert!(l.ends_with(&format!("; used by blocklists/{near}")), "{l}");
    let gone_url = chain_url(&stack, "expired");
    let l = line(&text, &gone_url);
    assert!(
        l.starts_with(&format!(
            "{gone_url} NOT OK CERT_EXPIRED: {LEAF} expired on "
        )),
        "{l}"
    );
    assert!(l.contains(", in -2.0 days (margin 39.8 days); "), "{l}");
    assert!(line(&text, &chain_url(&stack, "good")).contains(" OK: "));

    assert_eq!(json.code, 1);
    let doc = json.json();
    assert_eq!(doc["status"], "problems");
    let r = result(&doc, &near_url);
    assert_eq!(r["status"], "near_expiry");
    assert_eq!(r["code"], "CERT_NEAR_EXPIRY");
    assert_eq!(r["days_left"], 3.0);
    assert_eq!(r["margin_days"], 10.3);
    assert_eq!(
        r["certificate"]["subject"],
        "remote-settings.content-signature.mozilla.org"
    );
    assert_eq!(r["collections"], json!([format!("blocklists/{near}")]));
    let r = result(&doc, &gone_url);
    assert_eq!(
        (r["status"].as_str(), r["code"].as_str()),
        (Some("expired"), Some("CERT_EXPIRED"))
    );
    assert_eq!(r["days_left"], -2.0);
    assert_eq!(doc["totals"]["near_expiry"], 1);
    assert_eq!(doc["totals"]["expired"], 1);
    assert_eq!(doc["totals"]["ok"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_moves_the_clock_into_the_margin_and_past_the_leaf() {
    let stack = Stack::get();
    let (cid, ts) = publish(&stack, "ce-at", None).await;
    let monitor = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
    let good = chain_url(&stack, "good");

    // 290 days on: 10 days left, inside the 33-day margin.
    let at = (now() + 290 * DAY).to_string();
    let (text, json) = run(&stack, &monitor, &["--at", &at]).await;
    assert_eq!(text.code, 1, "{text:?}");
    let l = line(&text, &good);
    assert!(
        l.starts_with(&format!(
            "{good} NOT OK CERT_NEAR_EXPIRY: {LEAF} expires on "
        )),
        "{l}"
    );
    assert!(
        l.contains(", in 10.0 days (margin 33.0 days); ")
            || l.contains(", in 9.9 days (margin 33.0 days); "),
        "{l}"
    );
    let doc = json.json();
    assert_eq!(doc["check_at"], at.parse::<u64>().unwrap());
    assert_eq!(result(&doc, &good)["code"], "CERT_NEAR_EXPIRY");

    // The same through CHECK_AT, a year on: the leaf has expired.
    let env = [
        ("SERVER", stack.edge.as_str()),
        ("BUCKET", monitor.0.as_str()),
        ("COLLECTION", monitor.1.as_str()),
        ("CHECK_AT", &*(now() + 365 * DAY).to_string()),
    ];
    let later = run_bin(&["certificates_expiration"], &env).await;
    assert_eq!(later.code, 1, "{later:?}");
    assert!(
        line(&later, &good).starts_with(&format!("{good} NOT OK CERT_EXPIRED: {LEAF} expired on "))
    );

    // A smaller margin brings the first run back to health.
    let (text, _) = run(
        &stack,
        &monitor,
        &["--at", &at, "--max-remaining-days", "7"],
    )
    .await;
    assert_eq!(text.code, 0, "{text:?}");
    assert!(line(&text, &good).contains(" OK: "), "{}", text.stdout);
}
