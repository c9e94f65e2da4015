//! `refresh_signature` end to end: the real binary against the real Kinto + kinto-signer stack.
//!
//! Every test lists its own collections in a scratch monitor collection (`BUCKET`/`COLLECTION`),
//! so it refreshes only those while other tests publish in parallel. A refresh is proven on the
//! server: the destination's signature changed, its records did not, the new signature verifies
//! over those records (with the key the signer returned, `signature_verifies` below), and
//! `validate_signature`, which also checks the x5u chain, passes afterwards.

mod support;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use p384::ecdsa::signature::Verifier as _;
use p384::ecdsa::{Signature, VerifyingKey};
use serde_json::{json, Value};
use support::data::records;
use support::proxy::{Fault, Proxy};
use support::sentry::SentryListener;
use support::{run_bin, unique, Kinto, Stack};

/// A published collection as clients read it.
#[derive(Debug, Clone)]
struct Published {
    signature: Value,
    /// Live records, sorted by id.
    records: Vec<Value>,
    timestamp: u64,
}

async fn published(kinto: &Kinto, bid: &str, cid: &str) -> Published {
    let path = format!(
        "/buckets/{bid}/collections/{cid}/changeset?_expected={}",
        unique("x")
    );
    let (status, body, _) = kinto.request(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    let mut records: Vec<Value> = body["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|r| r.get("deleted") != Some(&json!(true)))
        .cloned()
        .collect();
    records.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Published {
        signature: body["metadata"]["signature"].clone(),
        records,
        timestamp: body["timestamp"].as_u64().expect("timestamp"),
    }
}

/// Verify a content signature as Firefox does (canonical JSON of the sorted records and the
/// records timestamp, ECDSA P-384), with the public key the signer returned in the metadata.
fn signature_verifies(p: &Published) -> bool {
    let payload = json!({"data": p.records, "last_modified": p.timestamp.to_string()});
    let mut message = b"Content-Signature:\x00".to_vec();
    message.extend(canonical_json::to_string(&payload).unwrap().as_bytes());
    let spki = STANDARD
        .decode(p.signature["public_key"].as_str().expect("public_key"))
        .unwrap();
    // A P-384 SubjectPublicKeyInfo ends with the 97-byte uncompressed point.
    let key = VerifyingKey::from_sec1_bytes(&spki[spki.len() - 97..]).unwrap();
    let raw = URL_SAFE_NO_PAD
        .decode(
            p.signature["signature"]
                .as_str()
                .expect("signature")
                .trim_end_matches('='),
        )
        .unwrap();
    let signature = Signature::from_slice(&raw).unwrap();
    key.verify(&message, &signature).is_ok()
}

fn env<'a>(server: &'a str, mon: &'a str, auth: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SERVER", server),
        ("BUCKET", mon),
        ("COLLECTION", "changes"),
        ("REFRESH_SIGNATURE_AUTH", auth),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ]
}

/// The timestamp printed on a `Refresh signature` line for this source, after checking the
/// line's shape: `… status= <status> at YYYY-MM-DD HH:MM:SS UTC ( <ms> )`.
fn refreshed_at(line: &str, source_bucket: &str, cid: &str, status: &str) -> u64 {
    let prefix = format!(
        "Looking at /buckets/{source_bucket}/collections/{cid}: Refresh signature: status= {status} at "
    );
    let rest = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("expected {prefix:?}…, got {line:?}"));
    let (date, ts) = rest.split_once(" UTC ( ").expect("a date in UTC");
    assert_eq!(date.len(), "2018-03-05 13:57:31".len(), "{line}");
    ts.strip_suffix(" )").expect("( ts )").parse().unwrap()
}

/// Monitor order: Kinto lists the entries newest first.
fn monitor_order<'a>(entries: &[(&'a str, &'a str, u64)]) -> Vec<(&'a str, &'a str)> {
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|e| e.2);
    sorted.reverse();
    sorted.into_iter().map(|(b, c, _)| (b, c)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_and_previews_are_re_signed_and_their_records_left_alone() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let (reviewed, direct, onecrl) = (unique("rs-main"), unique("rs-bl"), unique("rs-ss"));
    let main_ts = stack
        .publish("main-workspace", &reviewed, &records(12))
        .await;
    let bl_ts = stack.publish("staging", &direct, &records(3)).await;
    let ss_ts = stack
        .publish("security-state-staging", &onecrl, &records(2))
        .await;
    let preview_ts = kinto.records_timestamp("main-preview", &reviewed).await;
    let ss_preview_ts = kinto
        .records_timestamp("security-state-preview", &onecrl)
        .await;
    let entries = [
        ("main", reviewed.as_str(), main_ts),
        ("main-preview", reviewed.as_str(), preview_ts),
        ("blocklists", direct.as_str(), bl_ts),
        ("security-state", onecrl.as_str(), ss_ts),
        ("security-state-preview", onecrl.as_str(), ss_preview_ts),
    ];
    let (mon, _) = stack.scratch_monitor(&entries).await;
    let published_sides = [
        ("main", reviewed.as_str()),
        ("main-preview", reviewed.as_str()),
        ("blocklists", direct.as_str()),
        ("security-state", onecrl.as_str()),
        ("security-state-preview", onecrl.as_str()),
    ];
    let mut before = Vec::new();
    for (bid, cid) in published_sides {
        let p = published(&kinto, bid, cid).await;
        assert!(signature_verifies(&p), "{bid}/{cid} verifies before");
        before.push(p);
    }
    // The verifier can fail: the same signature over other records does not verify.
    let mut tampered = before[0].clone();
    tampered.records[0]["title"] = json!("tampered");
    assert!(!signature_verifies(&tampered));
    let sources_before = [
        kinto.collection("main-workspace", &reviewed).await,
        kinto.collection("staging", &direct).await,
        kinto.collection("security-state-staging", &onecrl).await,
    ];

    let run = run_bin(
        &["refresh_signature"],
        &env(&stack.server, &mon, &stack.reviewer),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");

    // One line per destination (previews are refreshed with it), in the monitor's order.
    let expected: Vec<(&str, &str)> = monitor_order(&entries)
        .into_iter()
        .filter(|(b, _)| !b.ends_with("-preview"))
        .map(|(b, c)| {
            let source = match b {
                "main" => "main-workspace",
                "blocklists" => "staging",
                _ => "security-state-staging",
            };
            (source, c)
        })
        .collect();
    let lines = run.lines();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert_eq!(
        lines[0],
        format!("Looking at /buckets/{mon}/collections/changes:")
    );
    for ((source, cid), line) in expected.iter().zip(&lines[1..]) {
        let ts = refreshed_at(line, source, cid, "signed");
        let old = sources_before
            .iter()
            .find(|m| m["id"] == json!(cid))
            .unwrap();
        assert!(ts > old["last_modified"].as_u64().unwrap(), "{line}");
    }

    for ((bid, cid), old) in published_sides.iter().zip(&before) {
        let new = published(&kinto, bid, cid).await;
        assert_ne!(
            new.signature["signature"], old.signature["signature"],
            "{bid}/{cid} has a new signature"
        );
        assert_ne!(new.signature["ref"], old.signature["ref"]);
        assert_eq!(new.records, old.records, "{bid}/{cid} records unchanged");
        assert_eq!(
            new.timestamp, old.timestamp,
            "{bid}/{cid} timestamp unchanged"
        );
        assert!(
            signature_verifies(&new),
            "{bid}/{cid} new signature verifies"
        );
    }
    // And the whole check Firefox would make passes: validate_signature, chains and all.
    let check = run_bin(
        &["validate_signature", "--json"],
        &[
            ("SERVER", stack.server.as_str()),
            ("BUCKET", mon.as_str()),
            ("COLLECTION", "changes"),
            ("ROOT_HASH", stack.root_hash.as_str()),
        ],
    )
    .await;
    assert_eq!(check.code, 0, "{check:?}");
    let doc: Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(
        doc["totals"]["entries"],
        json!(published_sides.len()),
        "{doc}"
    );
    assert_eq!(doc["totals"]["ok"], json!(published_sides.len()), "{doc}");
    // Sources are back to their status, with a newer signature date.
    for old in &sources_before {
        let bid = match old["id"].as_str().unwrap() {
            id if id == reviewed => "main-workspace",
            id if id == direct => "staging",
            _ => "security-state-staging",
        };
        let now = kinto.collection(bid, old["id"].as_str().unwrap()).await;
        assert_eq!(now["status"], "signed");
        assert!(
            now["last_signature_date"].as_str() > old["last_signature_date"].as_str(),
            "{now}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_collection_resource_is_refreshed_through_its_renamed_source() {
    // The stack's only per-collection resource is pinning-workspace/pins -> pinning/pins-v2, shared
    // with any other test that needs one: this test creates it when missing, and asserts only what
    // holds whatever others do to it meanwhile (the line, a new signature); the records and the
    // verification are checked on the per-bucket collection refreshed in the same run.
    let stack = Stack::get();
    let kinto = stack.editor();
    let (status, body, _) = kinto
        .request(
            reqwest::Method::PUT,
            "/buckets/pinning-workspace/collections/pins",
            None,
        )
        .await;
    assert!(matches!(status, 200 | 201), "{status}: {body}");
    let bucketed = unique("rs-bucket");
    let bl_ts = stack.publish("staging", &bucketed, &records(2)).await;
    let pins_ts = kinto.records_timestamp("pinning", "pins-v2").await;
    let (mon, _) = stack
        .scratch_monitor(&[
            ("pinning", "pins-v2", pins_ts),
            ("blocklists", &bucketed, bl_ts),
        ])
        .await;
    let pins_before = published(&kinto, "pinning", "pins-v2").await;
    let bl_before = published(&kinto, "blocklists", &bucketed).await;

    let run = run_bin(
        &["refresh-signature"],
        &env(&stack.server, &mon, &stack.editor),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let pins_line = run
        .lines()
        .into_iter()
        .find(|l| l.starts_with("Looking at /buckets/pinning-workspace/collections/pins: "))
        .unwrap_or_else(|| panic!("no line for the renamed source:\n{}", run.stdout));
    assert!(
        pins_line.contains(": Refresh signature: status= "),
        "{pins_line}"
    );
    let bl_line = run
        .lines()
        .into_iter()
        .find(|l| l.contains(&format!("/buckets/staging/collections/{bucketed}:")))
        .expect("a line for the per-bucket source");
    refreshed_at(bl_line, "staging", &bucketed, "signed");

    let pins_after = published(&kinto, "pinning", "pins-v2").await;
    assert_ne!(
        pins_after.signature["signature"],
        pins_before.signature["signature"]
    );
    assert_ne!(pins_after.signature["ref"], pins_before.signature["ref"]);
    let bl_after = published(&kinto, "blocklists", &bucketed).await;
    assert_ne!(
        bl_after.signature["signature"],
        bl_before.signature["signature"]
    );
    assert_eq!(bl_after.records, bl_before.records);
    assert!(signature_verifies(&bl_after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_the_user_may_not_write_is_reported_while_the_others_are_refreshed() {
    let stack = Stack::get();
    let admin = stack.admin();
    // restricted-workspace is writable by admin only. Its collection is made readable by
    // everyone, so the editor's refresh fails on the write itself.
    let locked = unique("rs-locked");
    admin
        .ok(
            reqwest::Method::PUT,
            &format!("/buckets/restricted-workspace/collections/{locked}"),
            Some(json!({"permissions": {"read": ["system.Everyone"]}})),
        )
        .await;
    admin
        .put_records("restricted-workspace", &locked, &records(2))
        .await;
    admin
        .patch_collection(
            "restricted-workspace",
            &locked,
            json!({"status": "to-sign"}),
        )
        .await;
    let locked_ts = admin.records_timestamp("restricted", &locked).await;
    let open = unique("rs-open");
    let open_ts = stack.publish("staging", &open, &records(2)).await;
    let (mon, _) = stack
        .scratch_monitor(&[
            ("restricted", &locked, locked_ts),
            ("blocklists", &open, open_ts),
        ])
        .await;
    let locked_before = published(&admin, "restricted", &locked).await;
    let open_before = published(&admin, "blocklists", &open).await;

    let sentry = SentryListener::start().await;
    let mut e = env(&stack.server, &mon, &stack.editor);
    e.push(("SENTRY_DSN", &sentry.dsn));
    let run = run_bin(&["refresh_signature"], &e).await;
    assert_eq!(run.code, 1, "{run:?}");

    let url = format!(
        "{}/buckets/restricted-workspace/collections/{locked}",
        stack.server
    );
    // In the monitor's order (newest first): the open source, then the locked one.
    refreshed_at(run.lines()[1], "staging", &open, "signed");
    let locked_line = format!(
        "Looking at /buckets/restricted-workspace/collections/{locked}: Refresh signature: PATCH {url} failed: HTTP 403"
    );
    assert!(
        run.lines()[2].starts_with(&locked_line),
        "{:?} does not start with {locked_line:?}",
        run.lines()[2]
    );
    assert!(
        run.stderr
            .starts_with("error: Signature refresh failed for 1 collection(s):\n"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&format!(
        "/buckets/restricted-workspace/collections/{locked}: PATCH {url} failed: HTTP 403"
    )));

    // The other source was refreshed all the same; the locked one was not.
    let open_after = published(&admin, "blocklists", &open).await;
    assert_ne!(
        open_after.signature["signature"],
        open_before.signature["signature"]
    );
    assert!(signature_verifies(&open_after));
    let locked_after = published(&admin, "restricted", &locked).await;
    assert_eq!(locked_after.signature, locked_before.signature);

    // One Sentry event, naming the failure, without the password.
    let events = sentry.events();
    assert_eq!(events.len(), 1, "{:#?}", sentry.envelopes());
    assert!(events[0].contains(&format!("restricted-workspace/collections/{locked}")));
    assert!(events[0].contains("refresh_signature"));
    sentry.assert_hides(&["editor-pass"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_signature_age_skips_recent_signatures_and_refreshes_older_ones() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let (fresh, old) = (unique("rs-fresh"), unique("rs-old"));
    let fresh_ts = stack.publish("staging", &fresh, &records(2)).await;
    let old_ts = stack.publish("staging", &old, &records(2)).await;
    // Backdate the old one's last signature. kinto-signer refuses to change tracking fields
    // (HTTP 400), but only after the memory backend has stored the change, so the date sticks.
    let (status, body, _) = kinto
        .request(
            reqwest::Method::PATCH,
            &format!("/buckets/staging/collections/{old}"),
            Some(json!({"data": {"last_signature_date": "2020-01-01T00:00:00+00:00"}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        kinto.collection("staging", &old).await["last_signature_date"],
        "2020-01-01T00:00:00+00:00",
        "the test stack keeps the backdated signature date"
    );
    let (mon, _) = stack
        .scratch_monitor(&[
            ("blocklists", &fresh, fresh_ts),
            ("blocklists", &old, old_ts),
        ])
        .await;
    let fresh_before = published(&kinto, "blocklists", &fresh).await;
    let old_before = published(&kinto, "blocklists", &old).await;

    let mut e = env(&stack.server, &mon, &stack.editor);
    e.push(("MAX_SIGNATURE_AGE", "7"));
    let run = run_bin(&["refresh_signature"], &e).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.lines();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    refreshed_at(lines[1], "staging", &old, "signed");
    assert_eq!(
        lines[2],
        format!("Looking at /buckets/staging/collections/{fresh}: SKIP (only 0 days old)")
    );
    let fresh_after = published(&kinto, "blocklists", &fresh).await;
    assert_eq!(fresh_after.signature, fresh_before.signature);
    let old_after = published(&kinto, "blocklists", &old).await;
    assert_ne!(
        old_after.signature["signature"],
        old_before.signature["signature"]
    );
    assert!(signature_verifies(&old_after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_says_what_would_be_refreshed_and_writes_nothing() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let cid = unique("rs-dry");
    let ts = stack.publish("staging", &cid, &records(2)).await;
    let (mon, _) = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
    let before = published(&kinto, "blocklists", &cid).await;
    let source_before = kinto.collection("staging", &cid).await;
    let proxy = Proxy::start(&stack.server).await;

    let by_env = {
        let mut e = env(&proxy.url, &mon, &stack.editor);
        e.push(("DRY_RUN", "1"));
        run_bin(&["refresh_signature"], &e).await
    };
    let by_flag = run_bin(
        &["refresh_signature", "--dry-run"],
        &env(&proxy.url, &mon, &stack.editor),
    )
    .await;
    for run in [&by_env, &by_flag] {
        assert_eq!(run.code, 0, "{run:?}");
        let line = run.lines()[1];
        let prefix = format!(
            "Looking at /buckets/staging/collections/{cid}: Would refresh signature (dry run): status= signed, last signed at "
        );
        assert!(line.starts_with(&prefix), "{line}");
        assert!(line.ends_with(" UTC"), "{line}");
    }
    assert!(
        proxy.requests().iter().all(|r| r.starts_with("GET ")),
        "only reads: {:#?}",
        proxy.requests()
    );
    assert_eq!(
        published(&kinto, "blocklists", &cid).await.signature,
        before.signature
    );
    assert_eq!(kinto.collection("staging", &cid).await, source_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_request_may_take_longer_than_the_request_timeout() {
    // Re-signing a big collection keeps the server busy for seconds before it answers: the PATCH
    // waits for that answer instead of timing out and making the server sign again.
    let stack = Stack::get();
    let kinto = stack.editor();
    let cid = unique("rs-slow");
    let ts = stack.publish("staging", &cid, &records(2)).await;
    let (mon, _) = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
    let before = published(&kinto, "blocklists", &cid).await;
    let proxy = Proxy::start(&stack.server).await;
    let patch = format!("PATCH /v1/buckets/staging/collections/{cid}");
    proxy.fail(
        &format!("/buckets/staging/collections/{cid}"),
        vec![Fault::Delay(std::time::Duration::ZERO)],
    );
    proxy.fail_always(
        &format!("/buckets/staging/collections/{cid}"),
        Fault::Delay(std::time::Duration::from_millis(3000)),
    );
    let mut e = env(&proxy.url, &mon, &stack.editor);
    // Half the PATCH's delay, and well above a loaded machine's slowest good answer.
    e.push(("REQUESTS_TIMEOUT_SECONDS", "1.5"));
    let run = run_bin(&["refresh_signature"], &e).await;
    assert_eq!(run.code, 0, "{run:?}");
    refreshed_at(run.lines()[1], "staging", &cid, "signed");
    assert_eq!(proxy.count(&patch), 1, "{:#?}", proxy.requests());
    let after = published(&kinto, "blocklists", &cid).await;
    assert_ne!(after.signature["signature"], before.signature["signature"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_report_lists_refreshed_and_ignored_entries() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let cid = unique("rs-json");
    let ts = stack.publish("main-workspace", &cid, &records(1)).await;
    let preview_ts = kinto.records_timestamp("main-preview", &cid).await;
    // A monitored collection no signer resource publishes.
    let scratch = unique("rs-unsigned");
    kinto.create_bucket(&scratch).await;
    kinto.create_collection(&scratch, "c").await;
    let (mon, _) = stack
        .scratch_monitor(&[
            ("main", &cid, ts),
            ("main-preview", &cid, preview_ts),
            (&scratch, "c", 1),
        ])
        .await;
    let run = run_bin(
        &["refresh_signature", "--json"],
        &env(&stack.server, &mon, &stack.reviewer),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["command"], "refresh_signature");
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["dry_run"], false);
    assert_eq!(
        doc["totals"],
        json!({"destinations": 1, "refreshed": 1, "would_refresh": 0, "skipped": 0,
               "errors": 0, "ignored": 2})
    );
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results[0]["source"], format!("main-workspace/{cid}"));
    assert_eq!(results[0]["destination"], format!("main/{cid}"));
    assert_eq!(results[0]["result"], "refreshed");
    assert_eq!(results[0]["previous_status"], "signed");
    assert!(results[0]["last_modified"].as_u64().unwrap() > ts);
    let ignored: Vec<(&str, &str)> = results[1..]
        .iter()
        .map(|r| (r["bucket"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert!(
        ignored.contains(&("main-preview", "preview")),
        "{ignored:?}"
    );
    assert!(
        ignored.contains(&(scratch.as_str(), "not_signed")),
        "{ignored:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_and_servers_without_the_signer_exit_2() {
    let stack = Stack::get();
    let proxy = Proxy::start(&stack.server).await;
    proxy.expect_no_hits();
    let cases: &[(&str, &str)] = &[
        ("MAX_SIGNATURE_AGE", "-3"),
        ("MAX_SIGNATURE_AGE", "a week"),
        ("DRY_RUN", "perhaps"),
        ("BUCKET", "../monitor"),
    ];
    for (name, value) in cases {
        let run = run_bin(
            &["refresh_signature"],
            &[
                ("SERVER", proxy.url.as_str()),
                ("REFRESH_SIGNATURE_AUTH", stack.editor.as_str()),
                (name, value),
            ],
        )
        .await;
        assert_eq!(run.code, 2, "{name}={value}: {run:?}");
        assert!(run.stderr.contains(name), "{}", run.stderr);
    }
    // Without its credentials the command cannot write: refused before sending anything.
    let run = run_bin(
        &["refresh_signature"],
        &[
            ("SERVER", proxy.url.as_str()),
            ("AUTH", stack.editor.as_str()),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: invalid REFRESH_SIGNATURE_AUTH: not set"),
        "{}",
        run.stderr
    );
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());

    // A server without kinto-signer (a reader node).
    let run = run_bin(
        &["refresh_signature"],
        &[
            ("SERVER", stack.reader_server.as_str()),
            ("REFRESH_SIGNATURE_AUTH", stack.editor.as_str()),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: No signer capabilities found. Run on *writer* server!\n"
    );
    assert_eq!(run.stdout, "");
}
