//! `signatures_age` end to end: the real binary against the real Kinto + kinto-remote-settings
//! stack (a writer server), whose source collections carry the `last_signature_date` the signer
//! sets. The server sets those dates itself, so an old signature is made by moving "now" with
//! `--at`/`CHECK_AT`. The command reads every source of the server, other tests' too: each test
//! asserts on its own collections' lines, and on exit codes that hold whatever they publish
//! (every collection of a fresh stack was signed within the week, or never on request).

mod support;

use serde_json::{json, Value};
use support::data::records;
use support::proxy::Proxy;
use support::{now, run_bin, unique, Run, Stack};

const HOUR: u64 = 3600;

async fn run(server: &str, auth: &str, extra: &[(&str, &str)]) -> Run {
    let mut env = vec![
        ("SERVER", server),
        ("AUTH", auth),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ];
    env.extend_from_slice(extra);
    run_bin(&["signatures_age"], &env).await
}

fn line<'a>(run: &'a Run, source: &str) -> &'a str {
    run.lines()
        .into_iter()
        .find(|l| l.starts_with(&format!("{source} ")))
        .unwrap_or_else(|| panic!("no line for {source} in:\n{}\n{}", run.stdout, run.stderr))
}

fn result<'a>(doc: &'a Value, bucket: &str, cid: &str) -> &'a Value {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["bucket"] == bucket && r["collection"] == cid)
        .unwrap_or_else(|| panic!("no result for {bucket}/{cid} in {doc:#}"))
}

/// The hours of an `OK: signed 0.0 hours ago (…)` line.
fn hours(line: &str) -> f64 {
    let after = line.split("signed ").nth(1).expect("an age");
    after.split(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshly_signed_sources_are_healthy_in_a_few_requests() {
    let stack = Stack::get();
    let (reviewed, direct) = (unique("sa-main"), unique("sa-bl"));
    stack
        .publish("main-workspace", &reviewed, &records(2))
        .await;
    stack.publish("staging", &direct, &records(1)).await;
    // A source whose signing at creation failed (the signer refuses a client-set tracking
    // field with a 400; the memory backend keeps the collection): no last_signature_date.
    let created = unique("sa-unsigned");
    let (status, body, _) = stack
        .editor()
        .request(
            reqwest::Method::PUT,
            &format!("/buckets/staging/collections/{created}"),
            Some(json!({"data": {"last_signature_by": "someone"}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let stored = stack.editor().collection("staging", &created).await;
    assert!(stored.get("last_signature_date").is_none(), "{stored}");
    let proxy = Proxy::start(&stack.server).await;

    let text = run(&proxy.url, &stack.admin, &[]).await;
    assert_eq!(text.code, 0, "{text:?}");
    assert_eq!(text.stderr, "");
    assert!(
        text.lines()[0].starts_with("Check time: "),
        "{}",
        text.stdout
    );
    for source in [
        format!("main-workspace/{reviewed}"),
        format!("staging/{direct}"),
    ] {
        let l = line(&text, &source);
        assert!(l.starts_with(&format!("{source} OK: signed ")), "{l}");
        assert!(l.ends_with(" UTC), limit 168 hours"), "{l}");
        assert!(hours(l) < 0.2, "{l}");
    }
    assert_eq!(
        line(&text, &format!("staging/{created}")),
        format!("staging/{created} UNKNOWN: no last_signature_date (never signed)")
    );
    // Oldest first.
    let ages: Vec<f64> = text.lines()[1..]
        .iter()
        .filter(|l| l.contains(" OK: signed "))
        .map(|l| hours(l))
        .collect();
    assert!(ages.windows(2).all(|w| w[0] >= w[1]), "{ages:?}");
    // GET /v1/, one listing per per-bucket resource (4 on the stack), one read for pins.
    let requests = proxy.requests();
    assert!(requests.len() <= 10, "{requests:#?}");
    assert!(!requests
        .iter()
        .any(|r| r.contains(&format!("/collections/{reviewed}"))));

    let json = run(&stack.server, &stack.admin, &[("OUTPUT", "json")]).await;
    assert_eq!(json.code, 0);
    let doc = json.json();
    assert_eq!(doc["status"], "ok");
    let r = result(&doc, "staging", &direct);
    assert_eq!(r["status"], "ok");
    assert_eq!(r["limit_hours"], 168);
    assert!(r["age_seconds"].as_i64().unwrap() < 600, "{r}");
    assert!(r.get("code").is_none());
    assert_eq!(doc["totals"]["too_old"], 0);
    let r = result(&doc, "staging", &created);
    assert_eq!(r["status"], "unknown");
    assert!(
        r.get("age_seconds").is_none() && r.get("code").is_none(),
        "{r}"
    );
    let totals = &doc["totals"];
    assert!(totals["unknown"].as_u64().unwrap() >= 1, "{totals}");
    assert_eq!(
        totals["ok"].as_u64().unwrap() + totals["unknown"].as_u64().unwrap(),
        totals["sources"].as_u64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_older_than_the_limit_fail_and_overrides_change_the_limit() {
    let stack = Stack::get();
    let (old, kept) = (unique("sa-old"), unique("sa-kept"));
    stack.publish("staging", &old, &records(1)).await;
    stack
        .publish("security-state-staging", &kept, &records(1))
        .await;
    let at = (now() + 200 * HOUR).to_string();
    let overrides = format!("security-state-staging/{kept}=240; staging/other=1");

    let text = run(
        &stack.server,
        &stack.admin,
        &[
            ("CHECK_AT", &at),
            ("MAX_SIGNATURE_AGE_OVERRIDES", &overrides),
        ],
    )
    .await;
    assert_eq!(text.code, 1, "{text:?}");
    assert!(
        text.stderr.starts_with("error: ")
            && text
                .stderr
                .contains(" source collection(s) signed too long ago"),
        "{}",
        text.stderr
    );
    let l = line(&text, &format!("staging/{old}"));
    assert!(
        l.starts_with(&format!("staging/{old} NOT OK SIGNATURE_TOO_OLD: signed ")),
        "{l}"
    );
    assert!(l.ends_with(" UTC), limit 168 hours"), "{l}");
    assert!((199.8..=200.2).contains(&hours(l)), "{l}");
    let l = line(&text, &format!("security-state-staging/{kept}"));
    assert!(
        l.contains(" OK: signed ") && l.ends_with(", limit 240 hours"),
        "{l}"
    );

    let json = run(
        &stack.server,
        &stack.admin,
        &[
            ("CHECK_AT", &at),
            ("MAX_SIGNATURE_AGE_OVERRIDES", &overrides),
            ("OUTPUT", "json"),
        ],
    )
    .await;
    assert_eq!(json.code, 1);
    let doc = json.json();
    assert_eq!(doc["status"], "problems");
    assert_eq!(doc["check_at"], json!(at.parse::<u64>().unwrap()));
    let r = result(&doc, "staging", &old);
    assert_eq!(
        (r["status"].as_str(), r["code"].as_str()),
        (Some("too_old"), Some("SIGNATURE_TOO_OLD"))
    );
    let age = r["age_hours"].as_f64().unwrap();
    assert!((199.8..=200.2).contains(&age), "{r}");
    assert_eq!(
        result(&doc, "security-state-staging", &kept)["status"],
        "ok"
    );
    // Sorted by age, oldest first.
    let ages: Vec<i64> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["age_seconds"].as_i64())
        .collect();
    assert!(ages.windows(2).all(|w| w[0] >= w[1]), "{ages:?}");

    // Through the flag, with a bad override named before anything is sent.
    let bad = run_bin(
        &[
            "signatures_age",
            "--max-signature-age-overrides",
            "staging=3",
        ],
        &[
            ("SERVER", stack.server.as_str()),
            ("AUTH", stack.admin.as_str()),
        ],
    )
    .await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.contains("MAX_SIGNATURE_AGE_OVERRIDES"),
        "{}",
        bad.stderr
    );
}
