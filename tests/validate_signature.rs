//! `validate_signature` end to end: the real binary against the real Kinto stack, whose
//! signatures are made by kinto-signer through the stack's Autograph-shaped service. Negative
//! cases are real too: a record holding `"rsl-autograph": "<mode>"` makes the service sign its
//! collection with another key, a short signature, or point x5u at a bad chain (see `MODES` in
//! `testing/stack.py`).
//!
//! Every test lists only its own collections in a scratch monitor collection (`BUCKET` /
//! `COLLECTION`), so tests running in parallel do not see each other's data.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::data::records;
use support::proxy::{Fault, Proxy};
use support::sentry::SentryListener;
use support::{run_bin, unique, Kinto, Run, Stack};

/// A record that makes the signing service use `mode` for its whole collection.
fn marker(mode: &str) -> Value {
    json!({"id": "zz-marker", "rsl-autograph": mode})
}

/// The environment of a run over a scratch monitor collection, with the run's root pinned.
fn env<'a>(stack: &'a Stack, monitor: &'a (String, String)) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SERVER", stack.edge.as_str()),
        ("BUCKET", monitor.0.as_str()),
        ("COLLECTION", monitor.1.as_str()),
        ("ROOT_HASH", stack.root_hash.as_str()),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ]
}

/// The report line of one collection.
fn line<'a>(run: &'a Run, bucket: &str, cid: &str) -> &'a str {
    let needle = format!(" /buckets/{bucket}/collections/{cid}:  ");
    run.lines()
        .into_iter()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no line for {bucket}/{cid} in:\n{}", run.stdout))
}

fn assert_ok(run: &Run, bucket: &str, cid: &str) {
    let l = line(run, bucket, cid);
    let verdict = l.split(":  ").nth(1).unwrap_or_default();
    assert!(
        verdict.starts_with("OK (") && verdict.ends_with("s)"),
        "{bucket}/{cid} is not OK: {l}\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

fn assert_bad(run: &Run, bucket: &str, cid: &str, code: &str) {
    let l = line(run, bucket, cid);
    assert!(
        l.contains(&format!(":  ⚠ BAD Signature ⚠ {code}: ")),
        "{bucket}/{cid} is not BAD with {code}: {l}\n{}",
        run.stdout
    );
    // The original's failure block, in the run's error message.
    let block = format!(
        "Signature verification failed on /buckets/{bucket}/collections/{cid}\n - Signed on: "
    );
    assert!(run.stderr.contains(&block), "{}", run.stderr);
    assert!(
        run.stderr.contains(" - Records timestamp: "),
        "{}",
        run.stderr
    );
}

/// One good and one `mode` collection, published without review; the run must find the second
/// BAD with `code`, the first still OK, and exit 1.
async fn one_bad_among_good(mode: &str, code: &str, extra_env: &[(&str, &str)]) -> Run {
    let stack = Stack::get();
    let good = unique("good");
    let bad = unique(mode);
    let good_ts = stack.publish("staging", &good, &records(2)).await;
    let mut with_marker = records(2);
    with_marker.push(marker(mode));
    let bad_ts = stack.publish("staging", &bad, &with_marker).await;
    let monitor = stack
        .scratch_monitor(&[("blocklists", &good, good_ts), ("blocklists", &bad, bad_ts)])
        .await;
    let mut e = env(&stack, &monitor);
    e.extend_from_slice(extra_env);
    let run = run_bin(&["validate_signature"], &e).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.lines()[0],
        format!(
            "Read collection list from /buckets/{}/collections/changes",
            monitor.0
        )
    );
    assert_bad(&run, "blocklists", &bad, code);
    assert_ok(&run, "blocklists", &good);
    assert!(
        run.stderr
            .starts_with("error: Signature verification failed on 1 collection(s): "),
        "{}",
        run.stderr
    );
    run
}

/// Published collections of every kind, listed in one scratch monitor: reviewed (main and
/// main-preview) with unicode records, with tombstones, signed by the onecrl signer (and its
/// preview), empty, and larger with an integer beyond 2^53.
struct EveryKind {
    monitor: (String, String),
    unicode: String,
    tombstones: String,
    tombstones_ts: u64,
    onecrl: String,
    empty: String,
    large: String,
}

async fn publish_every_kind(stack: &Stack) -> EveryKind {
    let editor = stack.editor();
    // Reviewed: published to main-preview and main.
    let unicode = unique("unicode");
    let unicode_records = vec![
        json!({"id": "accents", "fr": "Ça été déjà vu — « guillemets »", "de": "Größe", "é-key": "clé"}),
        json!({"id": "scripts", "ja": "日本語のテキスト", "ar": "مرحبا بالعالم", "ru": "Привет", "he": "שלום"}),
        json!({"id": "astral", "emoji": "🦊🔥 👩‍👩‍👧", "music": "𝄞", "math": "𝗠𝗼𝘇"}),
        json!({"id": "escapes", "s": "quote \" backslash \\ slash / tab \t newline \n cr \r bell \u{7} del \u{7f}"}),
        json!({"id": "nested", "list": [{"b": "ü", "a": ["ß", {"z": 1, "y": null}]}], "flag": true}),
        json!({"id": "combining", "s": "e\u{301} n\u{303} \u{200b}zero-width\u{feff}", "bidi": "\u{202e}reversed"}),
    ];
    let main_ts = stack
        .publish("main-workspace", &unicode, &unicode_records)
        .await;
    let preview_ts = editor.records_timestamp("main-preview", &unicode).await;
    // Tombstones: published, then records deleted and published again.
    let tombstones = unique("tombstones");
    stack.publish("staging", &tombstones, &records(6)).await;
    for id in ["r1", "r4"] {
        editor.delete_record("staging", &tombstones, id).await;
    }
    stack.sign("staging", &tombstones).await;
    let tombstones_ts = editor.records_timestamp("blocklists", &tombstones).await;
    // Signed by the onecrl signer.
    let onecrl = unique("onecrl");
    let onecrl_ts = stack
        .publish("security-state-staging", &onecrl, &records(3))
        .await;
    let onecrl_preview_ts = editor
        .records_timestamp("security-state-preview", &onecrl)
        .await;
    // Empty: signed by its creation alone.
    let empty = unique("empty");
    editor.create_collection("staging", &empty).await;
    let empty_ts = editor.records_timestamp("blocklists", &empty).await;
    // Larger, with integers Firefox cannot represent exactly (signed exactly by the server).
    let large = unique("large");
    let mut large_records = records(300);
    large_records.push(json!({"id": "big-int", "n": 9007199254740993u64}));
    let large_ts = stack.publish("staging", &large, &large_records).await;

    let monitor = stack
        .scratch_monitor(&[
            ("main", &unicode, main_ts),
            ("main-preview", &unicode, preview_ts),
            ("blocklists", &tombstones, tombstones_ts),
            ("security-state", &onecrl, onecrl_ts),
            ("security-state-preview", &onecrl, onecrl_preview_ts),
            ("blocklists", &empty, empty_ts),
            ("blocklists", &large, large_ts),
        ])
        .await;
    EveryKind {
        monitor,
        unicode,
        tombstones,
        tombstones_ts,
        onecrl,
        empty,
        large,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_collection_verifies_with_tombstones_unicode_previews_and_onecrl() {
    let stack = Stack::get();
    let EveryKind {
        monitor,
        unicode,
        tombstones,
        onecrl,
        empty,
        large,
        ..
    } = publish_every_kind(&stack).await;
    let published = [
        ("main", &unicode),
        ("main-preview", &unicode),
        ("blocklists", &tombstones),
        ("security-state", &onecrl),
        ("security-state-preview", &onecrl),
        ("blocklists", &empty),
        ("blocklists", &large),
    ];
    // The same behind /v2 (git-reader), which serves changesets and nothing else under /buckets.
    let mut on_v2 = env(&stack, &monitor);
    on_v2[0] = ("SERVER", stack.v2.as_str());
    let run = run_bin(&["validate_signature"], &on_v2).await;
    assert_eq!(run.code, 0, "{run:?}");
    for (bucket, cid) in published {
        assert_ok(&run, bucket, cid);
    }
    // Behind the CDN's edge on /v1.
    let run = run_bin(&["validate_signature"], &env(&stack, &monitor)).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");
    for (bucket, cid) in published {
        assert_ok(&run, bucket, cid);
    }
    // Numbered as the original: NN/TT, in the monitor collection's order.
    let numbers: Vec<&str> = run
        .lines()
        .iter()
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        numbers,
        ["01/07", "02/07", "03/07", "04/07", "05/07", "06/07", "07/07"]
    );
    // The big integer verifies (the server signs it exactly) and is warned about.
    let warning = run
        .lines()
        .into_iter()
        .find(|l| l.contains("UNSAFE_INTEGER"))
        .unwrap_or_else(|| panic!("no warning:\n{}", run.stdout));
    assert!(
        warning.starts_with("    warning UNSAFE_INTEGER: 1 integer(s) beyond 2^53-1"),
        "{warning}"
    );
    assert!(
        warning.contains("record \"big-int\" at /n: 9007199254740993"),
        "{warning}"
    );
    // The root is pinned: no note about it.
    assert!(!run.stdout.contains("Root not pinned"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_carries_the_verdicts_the_payload_sizes_and_the_chains_used() {
    let stack = Stack::get();
    let EveryKind {
        monitor,
        tombstones,
        tombstones_ts,
        large,
        ..
    } = publish_every_kind(&stack).await;
    // JSON carries the same verdicts, the payload sizes and the chains used.
    let mut e = env(&stack, &monitor);
    e.push(("OUTPUT", "json"));
    let doc = run_bin(&["validate_signature"], &e).await.json();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["totals"]["entries"], 7);
    assert_eq!(doc["totals"]["ok"], 7);
    assert_eq!(doc["totals"]["bad"], 0);
    assert_eq!(doc["root_pinned"], true);
    let by_collection = |bucket: &str, cid: &str| -> Value {
        doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["bucket"] == bucket && r["collection"] == cid)
            .cloned()
            .unwrap()
    };
    let tomb = by_collection("blocklists", &tombstones);
    assert_eq!(tomb["records"], 4, "tombstones are not in the payload");
    assert_eq!(tomb["records_timestamp"], tombstones_ts);
    assert_eq!(tomb["signatures"][0]["status"], "ok");
    assert_eq!(
        tomb["signatures"][0]["root_sha256"],
        stack.root_hash.as_str()
    );
    assert_eq!(by_collection("blocklists", &large)["records"], 301);
    // Two signers, two x5u chains, each downloaded once for the whole run.
    assert_eq!(doc["totals"]["x5u_downloads"], 2);
    let chains: Vec<&str> = doc["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["x5u"].as_str().unwrap())
        .collect();
    assert!(
        chains.iter().any(|u| u.ends_with("/chains/good.pem")),
        "{chains:?}"
    );
    assert!(
        chains
            .iter()
            .any(|u| u.ends_with("/chains/good@onecrl.pem")),
        "{chains:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_root_hash_the_self_signed_root_is_accepted_and_the_report_says_unpinned() {
    let stack = Stack::get();
    let EveryKind { monitor, .. } = publish_every_kind(&stack).await;
    // Without ROOT_HASH the self-signed root is accepted, and the report says it was not pinned.
    let unpinned: Vec<(&str, &str)> = env(&stack, &monitor)
        .into_iter()
        .filter(|(k, _)| *k != "ROOT_HASH")
        .collect();
    let run = run_bin(&["validate_signature"], &unpinned).await;
    assert_eq!(run.code, 0, "{run:?}");
    let note = run.lines().last().unwrap().to_string();
    assert_eq!(
        note,
        format!(
            "Root not pinned (ROOT_HASH is not set and the server is none of Mozilla's): accepted self-signed root {} (rsl test root)",
            stack.root_hash
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changeset_cut_to_the_servers_page_size_is_bad_never_ok() {
    let stack = Stack::get();
    // This server pages records by 3, and today's plugin bounds changesets by the page size too
    // (production sets no page size): the signer signs all 20 records, the changeset serves 3.
    let editor = Kinto::new(&stack.small_pages_server, &stack.editor);
    let cid = unique("paged");
    editor.create_collection("staging", &cid).await;
    editor.put_records("staging", &cid, &records(20)).await;
    editor
        .patch_collection("staging", &cid, json!({"status": "to-sign"}))
        .await;
    let ts = editor.records_timestamp("blocklists", &cid).await;
    let monitor_bucket = unique("mon");
    editor.create_bucket(&monitor_bucket).await;
    editor.create_collection(&monitor_bucket, "changes").await;
    editor
        .put_record(
            &monitor_bucket,
            "changes",
            json!({"id": "e0", "bucket": "blocklists", "collection": cid, "last_modified": ts}),
        )
        .await;
    let run = run_bin(
        &["validate_signature", "--json"],
        &[
            ("SERVER", stack.small_pages_server.as_str()),
            ("BUCKET", monitor_bucket.as_str()),
            ("ROOT_HASH", stack.root_hash.as_str()),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    let doc = run.json();
    let result = &doc["results"][0];
    assert_eq!(result["status"], "bad", "{doc}");
    assert_eq!(result["code"], "SIGNATURE_MISMATCH");
    assert_eq!(result["records"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_signed_by_another_key_is_bad_with_signature_mismatch() {
    let run = one_bad_among_good("wrong-key", "SIGNATURE_MISMATCH", &[]).await;
    assert!(
        run.stdout.contains("does not match the payload"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_95_byte_signature_is_bad_with_signature_length() {
    let run = one_bad_among_good("short-signature", "SIGNATURE_LENGTH", &[]).await;
    assert!(
        run.stdout.contains("the signature is 95 bytes"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_chain_is_bad_with_cert_expired_naming_the_certificate_and_date() {
    let run = one_bad_among_good("expired", "CERT_EXPIRED", &[]).await;
    assert!(
        run.stdout.contains(
            "certificate 1/3 (leaf, CN=remote-settings.content-signature.mozilla.org) expired on "
        ),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_not_yet_valid_is_bad_with_cert_not_yet_valid() {
    let run = one_bad_among_good("not-yet-valid", "CERT_NOT_YET_VALID", &[]).await;
    assert!(
        run.stdout.contains("is not valid before "),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_for_another_name_is_bad_with_signer_name_mismatch() {
    let run = one_bad_among_good("wrong-san", "SIGNER_NAME_MISMATCH", &[]).await;
    assert!(
        run.stdout.contains(r#"the leaf certificate is for "other.content-signature.mozilla.org", expected "remote-settings.content-signature.mozilla.org""#),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_link_is_bad_with_chain_broken() {
    one_bad_among_good("broken-link", "CHAIN_BROKEN", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_ca_intermediate_is_bad_with_issuer_not_ca() {
    one_bad_among_good("non-ca-intermediate", "ISSUER_NOT_CA", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_root_is_bad_with_root_hash_mismatch() {
    let run = one_bad_among_good("foreign-root", "ROOT_HASH_MISMATCH", &[]).await;
    assert!(run.stdout.contains("CN=rsl foreign root"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x5u_answering_404_is_bad_with_x5u_http_error() {
    let run = one_bad_among_good("x5u-404", "X5U_HTTP_ERROR", &[]).await;
    assert!(
        run.stdout.contains("/chains/missing.pem failed: HTTP 404"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x5u_answering_garbage_is_bad_with_pem_invalid() {
    one_bad_among_good("x5u-garbage", "PEM_INVALID", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x5u_larger_than_one_mebibyte_is_bad_with_x5u_too_large() {
    one_bad_among_good("x5u-huge", "X5U_TOO_LARGE", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x5u_redirecting_to_another_origin_is_not_followed() {
    let run = one_bad_among_good("x5u-redirect", "X5U_HTTP_ERROR", &[]).await;
    assert!(
        run.stdout.contains("redirect to another origin"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x5u_too_slow_to_answer_is_bad_with_x5u_unreachable() {
    one_bad_among_good(
        "x5u-slow",
        "X5U_UNREACHABLE",
        &[
            // Well short of the host's 10 s, well above a loaded machine's slowest good answer.
            ("REQUESTS_TIMEOUT_SECONDS", "2"),
            ("REQUESTS_NB_RETRIES", "1"),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_extension_checks_catch_eku_name_constraints_and_length() {
    one_bad_among_good("no-code-signing", "CODE_SIGNING_EKU_MISSING", &[]).await;
    one_bad_among_good("name-constraints", "NAME_CONSTRAINTS_VIOLATION", &[]).await;
    one_bad_among_good("many-certs", "CHAIN_TOO_LONG", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_close_to_expiry_is_ok_with_a_warning_and_the_check_time_is_settable() {
    let stack = Stack::get();
    let cid = unique("near");
    let ts = stack
        .publish(
            "staging",
            &cid,
            &[json!({"id": "a"}), marker("near-expiry")],
        )
        .await;
    let monitor = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
    let run = run_bin(&["validate_signature"], &env(&stack, &monitor)).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_ok(&run, "blocklists", &cid);
    let warning = run.lines()[2];
    // The leaf lives 103 days: warned 10.3 days before its end; it has 3 left.
    assert!(
        warning.starts_with("    warning CERT_NEAR_EXPIRY: certificate 1/3 (CN=remote-settings.content-signature.mozilla.org) expires on "),
        "{warning}"
    );
    assert!(
        warning.contains(", in 3.0 days (warning from 10 days before)"),
        "{warning}"
    );

    // --at moves the check time: past the leaf's end, before its start.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let later = (now + 10 * 86_400).to_string();
    let run = run_bin(
        &["validate_signature", "--at", &later],
        &env(&stack, &monitor),
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_bad(&run, "blocklists", &cid, "CERT_EXPIRED");
    let earlier = (now - 101 * 86_400).to_string();
    let mut e = env(&stack, &monitor);
    e.push(("CHECK_AT", &earlier));
    let run = run_bin(&["validate_signature"], &e).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_bad(&run, "blocklists", &cid, "CERT_NOT_YET_VALID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signer_name_replaces_the_per_bucket_names() {
    let stack = Stack::get();
    let good = unique("good");
    let other = unique("other-name");
    let good_ts = stack.publish("staging", &good, &records(1)).await;
    let other_ts = stack
        .publish(
            "staging",
            &other,
            &[json!({"id": "a"}), marker("wrong-san")],
        )
        .await;
    let monitor = stack
        .scratch_monitor(&[
            ("blocklists", &good, good_ts),
            ("blocklists", &other, other_ts),
        ])
        .await;
    let mut e = env(&stack, &monitor);
    e.push(("SIGNER_NAME", "other.content-signature.mozilla.org"));
    let run = run_bin(&["validate_signature"], &e).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_ok(&run, "blocklists", &other);
    assert_bad(&run, "blocklists", &good, "SIGNER_NAME_MISMATCH");
}

/// The changeset of a published collection.
async fn changeset(editor: &Kinto, cid: &str) -> Value {
    let (status, changeset, _) = editor
        .request(
            reqwest::Method::GET,
            &format!("/buckets/blocklists/collections/{cid}/changeset?_expected=0"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{changeset}");
    changeset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_valid_signature_of_the_list_passes_and_none_is_bad() {
    let stack = Stack::get();
    let editor = stack.editor();
    // A writable collection that will hold exactly the records of a published one (same
    // contents and timestamps), so that the published signature is valid for it while the test
    // writes its metadata. It is created, and its records timestamp set, first: Kinto then keeps
    // the copied (later) timestamps.
    let bucket = unique("multi");
    editor.create_bucket(&bucket).await;
    let copy = unique("copy");
    editor.create_collection(&bucket, &copy).await;
    editor.records_timestamp(&bucket, &copy).await;
    let signed = unique("signed");
    let other = unique("other");
    stack.publish("staging", &signed, &records(3)).await;
    stack.publish("staging", &other, &records(2)).await;
    let original = changeset(&editor, &signed).await;
    let mut changes = original["changes"].as_array().unwrap().clone();
    changes.sort_by_key(|r| r["last_modified"].as_u64());
    for record in changes {
        editor.put_record(&bucket, &copy, record).await;
    }
    let ts = editor.records_timestamp(&bucket, &copy).await;
    assert_eq!(
        ts,
        original["timestamp"].as_u64().unwrap(),
        "the copy has the signed timestamp"
    );
    let signature = original["metadata"]["signature"].clone();
    let foreign = changeset(&editor, &other).await["metadata"]["signature"].clone();
    let monitor = stack.scratch_monitor(&[(&bucket, &copy, ts)]).await;

    // The list is read before the legacy field: a bad first entry and a good second one pass.
    editor
        .patch_collection(
            &bucket,
            &copy,
            json!({"signatures": [foreign, signature], "signature": foreign}),
        )
        .await;
    let mut e = env(&stack, &monitor);
    e.push(("OUTPUT", "json"));
    let run = run_bin(&["validate_signature"], &e).await;
    assert_eq!(run.code, 0, "{run:?}");
    let result = &run.json()["results"][0];
    assert_eq!(result["status"], "ok");
    assert_eq!(result["signatures"][0]["code"], "SIGNATURE_MISMATCH");
    assert_eq!(result["signatures"][1]["status"], "ok");
    assert_eq!(result["verified_by"], 2);
    // The text report names the entry that verified.
    let text = run_bin(&["validate_signature"], &env(&stack, &monitor)).await;
    assert_ok(&text, &bucket, &copy);
    let x5u = signature["x5u"].as_str().unwrap();
    assert!(
        text.stdout
            .contains(&format!("    verified by signature 2/2 ({x5u})")),
        "{}",
        text.stdout
    );

    // An entry that is not a P-384 content signature is reported, not verified, not a crash.
    let mut other_mode = signature.clone();
    other_mode["mode"] = json!("rs256");
    other_mode["type"] = json!("autograph-rsa");
    editor
        .patch_collection(
            &bucket,
            &copy,
            json!({"signatures": [other_mode, signature], "signature": other_mode}),
        )
        .await;
    let run = run_bin(&["validate_signature"], &e).await;
    assert_eq!(run.code, 0, "{run:?}");
    let result = &run.json()["results"][0];
    assert_eq!(result["signatures"][0]["code"], "UNSUPPORTED_SIGNATURE");
    assert_eq!(result["verified_by"], 2);
    editor
        .patch_collection(
            &bucket,
            &copy,
            json!({"signatures": [other_mode], "signature": other_mode}),
        )
        .await;
    let run = run_bin(&["validate_signature"], &env(&stack, &monitor)).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_bad(&run, &bucket, &copy, "UNSUPPORTED_SIGNATURE");

    // None valid: BAD with the first one's error; the good signature with an expired chain fails.
    let mut expired_chain = signature.clone();
    let x5u = signature["x5u"]
        .as_str()
        .unwrap()
        .replace("/good.pem", "/expired.pem");
    expired_chain["x5u"] = json!(x5u);
    editor
        .patch_collection(
            &bucket,
            &copy,
            json!({"signatures": [foreign, expired_chain]}),
        )
        .await;
    let run = run_bin(&["validate_signature"], &e).await;
    assert_eq!(run.code, 1, "{run:?}");
    let result = &run.json()["results"][0];
    assert_eq!(result["status"], "bad");
    assert_eq!(result["code"], "SIGNATURE_MISMATCH");
    assert_eq!(result["signatures"][1]["code"], "CERT_EXPIRED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_without_signature_is_skipped_only_if_it_never_held_records() {
    let stack = Stack::get();
    let editor = stack.editor();
    let bucket = unique("unsigned");
    editor.create_bucket(&bucket).await;
    for cid in ["fresh", "emptied", "full"] {
        editor.create_collection(&bucket, cid).await;
    }
    editor
        .put_record(&bucket, "emptied", json!({"id": "a"}))
        .await;
    editor.delete_record(&bucket, "emptied", "a").await;
    editor.put_record(&bucket, "full", json!({"id": "a"})).await;
    let signed = unique("signed");
    let signed_ts = stack.publish("staging", &signed, &records(1)).await;
    let mut entries = vec![("blocklists", signed.as_str(), signed_ts)];
    let mut timestamps = Vec::new();
    for cid in ["fresh", "emptied", "full"] {
        timestamps.push((cid, editor.records_timestamp(&bucket, cid).await));
    }
    for (cid, ts) in &timestamps {
        entries.push((bucket.as_str(), cid, *ts));
    }
    let monitor = stack.scratch_monitor(&entries).await;
    // Behind the CDN's edge and behind /v2: the tombstones are asked of the changeset there.
    let mut on_v2 = env(&stack, &monitor);
    on_v2[0] = ("SERVER", stack.v2.as_str());
    for e in [env(&stack, &monitor), on_v2] {
        let run = run_bin(&["validate_signature"], &e).await;
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            line(&run, &bucket, "fresh").ends_with(":  SKIP"),
            "{}",
            run.stdout
        );
        assert_bad(&run, &bucket, "emptied", "METADATA_MISSING_SIGNATURE");
        assert_bad(&run, &bucket, "full", "METADATA_MISSING_SIGNATURE");
        assert_ok(&run, "blocklists", &signed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_gives_codes_details_and_totals_and_x5u_is_downloaded_once_per_url() {
    let stack = Stack::get();
    let mut entries = Vec::new();
    let mut names = Vec::new();
    for mode in [None, None, None, Some("expired")] {
        let cid = unique("json");
        let mut recs = records(2);
        recs.extend(mode.map(marker));
        let ts = stack.publish("staging", &cid, &recs).await;
        names.push(cid.clone());
        entries.push(("blocklists".to_string(), cid, ts));
    }
    let borrowed: Vec<(&str, &str, u64)> = entries
        .iter()
        .map(|(b, c, t)| (b.as_str(), c.as_str(), *t))
        .collect();
    let monitor = stack.scratch_monitor(&borrowed).await;
    let run = run_bin(&["validate_signature", "--json"], &env(&stack, &monitor)).await;
    assert_eq!(run.code, 1, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["command"], "validate_signature");
    assert_eq!(doc["status"], "problems");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["totals"]["entries"], 4);
    assert_eq!(doc["totals"]["ok"], 3);
    assert_eq!(doc["totals"]["bad"], 1);
    assert_eq!(doc["totals"]["skip"], 0);
    // Three collections share good.pem: two chains, each downloaded once.
    assert_eq!(doc["totals"]["x5u_downloads"], 2);
    assert_eq!(doc["chains"].as_array().unwrap().len(), 2);
    let bad = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "bad")
        .unwrap();
    assert_eq!(bad["collection"], names[3].as_str());
    assert_eq!(bad["code"], "CERT_EXPIRED");
    assert!(
        bad["detail"].as_str().unwrap().contains("expired on "),
        "{bad}"
    );
    assert_eq!(bad["records_timestamp"], entries[3].2);
    assert!(bad["signed_on"].as_u64().unwrap() >= entries[3].2);
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!(
        "Signature verification failed on /buckets/blocklists/collections/{}",
        names[3]
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_sends_one_sentry_event_listing_the_bad_collections() {
    let sentry = SentryListener::start().await;
    let run = one_bad_among_good(
        "wrong-key",
        "SIGNATURE_MISMATCH",
        &[("SENTRY_DSN", &sentry.dsn)],
    )
    .await;
    let events = sentry.events();
    assert_eq!(events.len(), 1, "{:#?}", sentry.envelopes());
    let payload: Value = events[0]
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("extra").is_some())
        .expect("an event payload");
    assert_eq!(payload["tags"]["command"], "validate_signature");
    let failures = payload["extra"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["code"], "SIGNATURE_MISMATCH");
    let bad = failures[0]["collection"].as_str().unwrap();
    assert!(run
        .stdout
        .contains(&format!("/collections/{bad}:  ⚠ BAD Signature ⚠")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_changesets_are_exit_3_unless_a_signature_is_bad() {
    let stack = Stack::get();
    let good = unique("good");
    let down = unique("down");
    let good_ts = stack.publish("staging", &good, &records(1)).await;
    let down_ts = stack.publish("staging", &down, &records(1)).await;
    let monitor = stack
        .scratch_monitor(&[
            ("blocklists", &good, good_ts),
            ("blocklists", &down, down_ts),
        ])
        .await;
    let proxy = Proxy::start(&stack.edge).await;
    proxy.fail_always(
        &format!("/collections/{down}/changeset"),
        Fault::Status(503, None),
    );
    let mut e = env(&stack, &monitor);
    e[0] = ("SERVER", proxy.url.as_str());
    e.push(("REQUESTS_NB_RETRIES", "1"));
    let run = run_bin(&["validate_signature"], &e).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert_ok(&run, "blocklists", &good);
    assert!(
        line(&run, "blocklists", &down).contains(":  ⚠ ERROR ⚠ SERVER_ERROR: GET "),
        "{}",
        run.stdout
    );
    assert_eq!(proxy.count(&format!("/collections/{down}/changeset")), 2);
    assert!(
        run.stderr.contains("Could not read 1 collection(s)"),
        "{}",
        run.stderr
    );
    // Every changeset request busts caches with the entry's timestamp.
    assert!(proxy.requests().iter().any(|r| r.contains(&format!(
        "/collections/{good}/changeset?_expected={good_ts}"
    ))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changesets_download_in_parallel_within_the_in_flight_cap() {
    let stack = Stack::get();
    let mut entries = Vec::new();
    for _ in 0..8 {
        let cid = unique("par");
        let ts = stack.publish("staging", &cid, &records(2)).await;
        entries.push((cid, ts));
    }
    let borrowed: Vec<(&str, &str, u64)> = entries
        .iter()
        .map(|(c, t)| ("blocklists", c.as_str(), *t))
        .collect();
    let monitor = stack.scratch_monitor(&borrowed).await;
    let proxy = Proxy::start(&stack.edge).await;
    proxy.delay_all(Duration::from_millis(150));
    let mut e = env(&stack, &monitor);
    e[0] = ("SERVER", proxy.url.as_str());
    e.push(("PARALLEL_REQUESTS", "3"));
    let run = run_bin(&["validate_signature"], &e).await;
    assert_eq!(run.code, 0, "{run:?}");
    // The 8 collections and the monitor list.
    assert_eq!(proxy.count("/changeset?_expected="), 9);
    assert_eq!(
        proxy.max_in_flight(),
        3,
        "requests ran in parallel up to the cap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_exit_2_naming_the_variable_and_send_nothing() {
    let stack = Stack::get();
    let proxy = Proxy::start(&stack.edge).await;
    proxy.expect_no_hits();
    for (name, value) in [
        ("ROOT_HASH", "3C:01:44"),
        ("ROOT_HASH", "not-a-hash"),
        ("CHECK_AT", "tomorrow"),
        ("CHECK_AT", "-1"),
        ("SIGNER_NAME", "not a name"),
        ("BUCKET", "../monitor"),
    ] {
        let run = run_bin(
            &["validate_signature"],
            &[("SERVER", proxy.url.as_str()), (name, value)],
        )
        .await;
        assert_eq!(run.code, 2, "{name}={value}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(name), "{}", run.stderr);
        assert_eq!(run.stdout, "");
    }
    let run = run_bin(
        &["validate_signature", "--at", "soon"],
        &[("SERVER", proxy.url.as_str())],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("CHECK_AT"), "{}", run.stderr);
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}

/// The stack under one of Mozilla's host names (resolved to loopback by the debug build's
/// `RSL_TEST_RESOLVE` hook), keeping the edge's port.
fn as_host(stack: &Stack, host: &str) -> String {
    let edge = reqwest::Url::parse(&stack.edge).unwrap();
    format!("http://{host}:{}{}", edge.port().unwrap(), edge.path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mozillas_hosts_pin_firefoxs_root_by_default_so_the_stacks_own_root_is_refused() {
    let stack = Stack::get();
    let cid = unique("pinned");
    let ts = stack.publish("staging", &cid, &records(2)).await;
    let monitor = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
    for (host, pin) in [
        ("firefox.settings.services.mozilla.com", "production"),
        ("remote-settings.allizom.org", "stage"),
    ] {
        let server = as_host(&stack, host);
        let resolve = format!("{host}=127.0.0.1");
        let mut e: Vec<(&str, &str)> = env(&stack, &monitor)
            .into_iter()
            .filter(|(k, _)| *k != "ROOT_HASH" && *k != "SERVER")
            .collect();
        e.push(("SERVER", &server));
        e.push(("RSL_TEST_RESOLVE", &resolve));
        let run = run_bin(&["validate_signature"], &e).await;
        assert_eq!(run.code, 1, "{host}: {run:?}");
        assert_bad(&run, "blocklists", &cid, "ROOT_HASH_MISMATCH");
        e.push(("OUTPUT", "json"));
        let doc = run_bin(&["validate_signature"], &e).await.json();
        assert_eq!(doc["root_pin"], pin, "{host}");
        assert_eq!(doc["root_pinned"], true, "{host}");
        // ROOT_HASH=any opts out, and the report says so.
        e.retain(|(k, _)| *k != "OUTPUT");
        e.push(("ROOT_HASH", "any"));
        let run = run_bin(&["validate_signature"], &e).await;
        assert_eq!(run.code, 0, "{host}: {run:?}");
        assert_ok(&run, "blocklists", &cid);
        assert!(
            run.stdout.contains("Root not pinned (ROOT_HASH=any)"),
            "{}",
            run.stdout
        );
    }
}
