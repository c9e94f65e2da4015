//! Hostile input, end to end: the real binary against the real stack, with the answers a hostile
//! or broken server could give. The Kinto answers go through the fault-injecting proxy
//! (`tests/support/proxy.rs`), which also records every request; x5u chains come from a loopback
//! "x5u host" of this file, which records what it is asked and can redirect to a second host.
//!
//! What every case asserts: a per-item error with its stable code and a one-line detail, bounded
//! time (cut by the settings: `REQUESTS_TIMEOUT_SECONDS`, retries) and memory (size caps), and no
//! request outside the intended URLs. The x5u modes of the stack already covered in
//! `tests/validate_signature.rs` (garbage, huge with a Content-Length, slow, 50 certificates,
//! 404, redirect) are not repeated; what they leave open is here.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{json, Value};
use support::fixture::{Connection, Fixture, Response};
use support::proxy::{Fault, Proxy};
use support::{run_bin, unique, Run, Stack};

// --- A loopback x5u host ----------------------------------------------------------------------

/// An HTTP host serving x5u answers by path, recording the paths asked and the bytes it managed
/// to send.
#[derive(Clone)]
struct X5uHost {
    url: String,
    fixture: Fixture,
    bytes_sent: Arc<AtomicUsize>,
}

/// What the host answers for a path.
#[derive(Clone)]
enum Answer {
    /// 302 to this URL.
    Redirect(String),
    /// Wait this long, then 404.
    Slow(Duration),
    /// 200 with a chunked body (no Content-Length) of this many bytes of PEM-looking text.
    Endless(usize),
    NotFound,
}

impl X5uHost {
    /// A host answering these paths (anything else is a 404).
    async fn start(routes: Vec<(&'static str, Answer)>) -> X5uHost {
        let bytes_sent = Arc::new(AtomicUsize::new(0));
        let counter = bytes_sent.clone();
        let fixture = Fixture::start("x5u host", Connection::Close, move |request| {
            let answer = routes
                .iter()
                .find(|(p, _)| *p == request.target)
                .map_or(Answer::NotFound, |(_, a)| a.clone());
            let counter = counter.clone();
            async move {
                match answer {
                    Answer::Redirect(to) => Response::status(302).header("Location", to).into(),
                    Answer::Slow(wait) => {
                        tokio::time::sleep(wait).await;
                        Response::status(404).into()
                    }
                    Answer::NotFound => Response::status(404).into(),
                    Answer::Endless(total) => Response::status(200)
                        .header("Content-Type", "application/x-pem-file")
                        .chunked(endless(total, counter))
                        .into(),
                }
            }
        })
        .await;
        X5uHost {
            url: fixture.origin(),
            fixture,
            bytes_sent,
        }
    }

    fn paths(&self) -> Vec<String> {
        self.fixture
            .requests()
            .into_iter()
            .map(|r| r.target)
            .collect()
    }
}

/// 64 KiB chunks of PEM-looking text up to `total` bytes; `sent` counts the bytes of the chunks
/// written (a chunk counts once the server asks for the next one).
fn endless(total: usize, sent: Arc<AtomicUsize>) -> BoxStream<'static, Vec<u8>> {
    let mut chunk = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    chunk.resize(64 * 1024, b'A');
    futures::stream::unfold(0, move |written| {
        let chunk = chunk.clone();
        sent.store(written, Ordering::SeqCst);
        async move { (written < total).then(|| (chunk.clone(), written + chunk.len())) }
    })
    .boxed()
}

// --- Helpers ----------------------------------------------------------------------------------

/// A changeset as Kinto answers it, with this signature entry and records.
fn changeset(ts: u64, signature: &str, x5u: &str, records: Vec<Value>) -> String {
    json!({
        "metadata": {"id": "c", "last_modified": ts,
                     "signature": {"signature": signature, "x5u": x5u, "mode": "p384ecdsa"}},
        "timestamp": ts,
        "changes": records,
    })
    .to_string()
}

/// A signature-shaped value: `n` bytes, base64url without padding.
fn b64url(n: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vec![0x5au8; n])
}

/// The same as a value.
fn nested_value(n: usize) -> Value {
    (0..n).fold(json!(1), |v, _| json!([v]))
}

/// Publish `staging/cid` holding one record nested 200 levels deep (written on its own: the
/// test helper's parser stops at 128 levels, so `/batch` answers echoing it do not parse).
async fn publish_deep(stack: &Stack, cid: &str) -> u64 {
    let editor = stack.editor();
    editor.create_collection("staging", cid).await;
    editor
        .put_record(
            "staging",
            cid,
            json!({"id": "deep", "v": nested_value(200)}),
        )
        .await;
    stack.sign("staging", cid).await;
    editor.records_timestamp("blocklists", cid).await
}

/// `n` levels of nested lists around a number: `[[[...1...]]]`.
fn nested(n: usize) -> String {
    format!("{}1{}", "[".repeat(n), "]".repeat(n))
}

/// The JSON result of one collection of a `--json` run.
fn result(run: &Run, collection: &str) -> Value {
    run.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["collection"] == collection)
        .cloned()
        .unwrap_or_else(|| panic!("no result for {collection} in:\n{}", run.stdout))
}

/// Every text of the per-item results of a JSON report is one line.
fn assert_one_line_texts(run: &Run) {
    fn walk(v: &Value) {
        match v {
            Value::String(s) => assert!(!s.chars().any(char::is_control), "{s:?}"),
            Value::Array(a) => a.iter().for_each(walk),
            Value::Object(o) => o.values().for_each(walk),
            _ => {}
        }
    }
    let report = run.json();
    assert!(report["results"].is_array(), "{}", run.stdout);
    walk(&report["results"]);
}

fn base_env<'a>(proxy: &'a Proxy, monitor: &'a (String, String)) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SERVER", proxy.url.as_str()),
        ("BUCKET", monitor.0.as_str()),
        ("COLLECTION", monitor.1.as_str()),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.01"),
        ("REQUESTS_NB_RETRIES", "1"),
        // Well short of the slow host's 10 s, well above a loaded machine's slowest good answer.
        ("REQUESTS_TIMEOUT_SECONDS", "2"),
    ]
}

// --- x5u and signatures -----------------------------------------------------------------------

/// One validate_signature run over collections whose changesets (answered by the proxy) point at
/// hostile x5u hosts or carry malformed signatures. Each collection gets its own code; the slow
/// host is cut by the timeout after one retry; the endless body is cut by the 1 MiB cap long
/// before it ends; the redirect is not followed, so the second host sees nothing; URLs that are
/// not http(s) are never requested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_x5u_hosts_and_malformed_signatures_are_per_collection_errors() {
    let stack = Stack::get();
    let elsewhere = X5uHost::start(Vec::new()).await;
    elsewhere.fixture.expect_no_hits();
    let x5u = X5uHost::start(vec![
        (
            "/redirect.pem",
            Answer::Redirect(format!("{}/good.pem", elsewhere.url)),
        ),
        ("/slow.pem", Answer::Slow(Duration::from_secs(10))),
        ("/endless.pem", Answer::Endless(256 * 1024 * 1024)),
    ])
    .await;
    let good_x5u = format!("{}/chains/good.pem", stack.autograph.trim_end_matches('/'));
    let ts = 1_700_000_000_000u64;
    let records = vec![json!({"id": "r1", "last_modified": ts})];
    let good_sig = b64url(96);
    // (collection suffix, signature, x5u, expected code)
    let cells: Vec<(&str, String, String, &str)> = vec![
        (
            "redirect",
            good_sig.clone(),
            format!("{}/redirect.pem", x5u.url),
            "X5U_HTTP_ERROR",
        ),
        (
            "slow",
            good_sig.clone(),
            format!("{}/slow.pem", x5u.url),
            "X5U_UNREACHABLE",
        ),
        (
            "endless",
            good_sig.clone(),
            format!("{}/endless.pem", x5u.url),
            "X5U_TOO_LARGE",
        ),
        (
            "file",
            good_sig.clone(),
            "file:///etc/passwd".into(),
            "X5U_INVALID_URL",
        ),
        (
            "ftp",
            good_sig.clone(),
            format!("ftp://127.0.0.1/{}", "x.pem"),
            "X5U_INVALID_URL",
        ),
        (
            "relative",
            good_sig.clone(),
            "chains/good.pem".into(),
            "X5U_INVALID_URL",
        ),
        (
            "std-alphabet",
            format!("{}+/", &b64url(96)[..126]),
            good_x5u.clone(),
            "SIGNATURE_ENCODING",
        ),
        (
            "inner-newline",
            format!("{}\n{}", &good_sig[..64], &good_sig[64..]),
            good_x5u.clone(),
            "SIGNATURE_ENCODING",
        ),
        ("len-97", b64url(97), good_x5u.clone(), "SIGNATURE_LENGTH"),
        (
            "len-95-padded",
            base64::engine::general_purpose::URL_SAFE.encode([1u8; 95]),
            good_x5u.clone(),
            "SIGNATURE_LENGTH",
        ),
        ("len-0", String::new(), good_x5u.clone(), "SIGNATURE_LENGTH"),
        (
            "len-1m",
            b64url(768 * 1024),
            good_x5u.clone(),
            "SIGNATURE_LENGTH",
        ),
    ];
    let names: Vec<String> = cells.iter().map(|c| unique(c.0)).collect();
    let entries: Vec<(&str, &str, u64)> = names
        .iter()
        .map(|n| ("blocklists", n.as_str(), ts))
        .collect();
    let monitor = stack.scratch_monitor(&entries).await;
    let proxy = Proxy::start(&stack.server).await;
    for ((_, signature, url, _), name) in cells.iter().zip(&names) {
        proxy.fail_always(
            &format!("/collections/{name}/changeset"),
            Fault::Body(changeset(ts, signature, url, records.clone())),
        );
    }
    let env = base_env(&proxy, &monitor);
    let run = run_bin(&["validate_signature", "--json"], &env).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_one_line_texts(&run);
    for ((label, _, _, code), name) in cells.iter().zip(&names) {
        let r = result(&run, name);
        assert_eq!(r["status"], "bad", "{label}: {r}");
        assert_eq!(r["code"], *code, "{label}: {r}");
    }
    // The redirect was seen once and not followed: the other host was never asked.
    assert_eq!(
        x5u.paths().iter().filter(|p| *p == "/redirect.pem").count(),
        1
    );
    assert!(elsewhere.paths().is_empty(), "{:?}", elsewhere.paths());
    // The slow host was cut by REQUESTS_TIMEOUT_SECONDS: one attempt and one retry.
    assert_eq!(x5u.paths().iter().filter(|p| *p == "/slow.pem").count(), 2);
    assert!(result(&run, &names[1])["detail"]
        .as_str()
        .unwrap()
        .contains("timed out"));
    // The endless body was dropped once past the cap (not retried): the host could not write
    // more than the cap plus what the sockets buffer, far from the 256 MiB it offered.
    assert_eq!(
        x5u.paths().iter().filter(|p| *p == "/endless.pem").count(),
        1
    );
    let sent = x5u.bytes_sent.load(Ordering::SeqCst);
    assert!(sent < 64 * 1024 * 1024, "{sent} bytes sent");
    // Only the x5u paths were asked of the x5u host; only Kinto paths of the proxy.
    assert!(x5u
        .paths()
        .iter()
        .all(|p| ["/redirect.pem", "/slow.pem", "/endless.pem"].contains(&p.as_str())));
    assert_requests_within(&proxy, &monitor, &names);
}

/// Every request the proxy saw is the monitor list or a changeset of a listed collection.
fn assert_requests_within(proxy: &Proxy, monitor: &(String, String), names: &[String]) {
    let list = format!(
        "GET /v1/buckets/{}/collections/{}/changeset",
        monitor.0, monitor.1
    );
    for request in proxy.requests() {
        let ok = request.starts_with(&list)
            || names.iter().any(|n| {
                request.starts_with(&format!("GET /v1/buckets/blocklists/collections/{n}/"))
            });
        assert!(ok, "unexpected request {request}");
    }
}

/// A real collection holding a record nested 200 levels deep (Kinto and the signer take it;
/// serde_json's default limit of 128 made it CHANGESET_INVALID) verifies, also with `==` padding
/// and surrounding whitespace on its signature; a record nested 100,000 levels deep is refused
/// before parsing (no stack overflow): an answer that is no changeset Kinto could serve, so the
/// collection is unreadable (exit 3, one line naming the URL), never OK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padded_signatures_and_200_levels_verify_and_100000_levels_are_a_one_line_error() {
    let stack = Stack::get();
    let real = unique("padded");
    let real_ts = stack
        .publish("staging", &real, &[json!({"id": "r1", "n": 1})])
        .await;
    let legit = unique("deep200");
    let legit_ts = publish_deep(&stack, &legit).await;
    let (_, real_changeset, _) = stack
        .admin()
        .request(
            reqwest::Method::GET,
            &format!("/buckets/blocklists/collections/{real}/changeset?_expected={real_ts}"),
            None,
        )
        .await;
    let mut padded = real_changeset.clone();
    let sig = padded["metadata"]["signature"]["signature"]
        .as_str()
        .unwrap()
        .to_string();
    padded["metadata"]["signature"]["signature"] = json!(format!(" {sig}==\n"));
    let x5u = padded["metadata"]["signature"]["x5u"]
        .as_str()
        .unwrap()
        .to_string();
    let deep = unique("deep");
    let ts = 1_700_000_000_000u64;
    let deep_changeset = format!(
        r#"{{"metadata": {{"signature": {{"signature": "{}", "x5u": "{x5u}"}}}}, "timestamp": {ts}, "changes": [{{"id": "d", "v": {}}}]}}"#,
        b64url(96),
        nested(100_000)
    );
    let monitor = stack
        .scratch_monitor(&[
            ("blocklists", &real, real_ts),
            ("blocklists", &legit, legit_ts),
            ("blocklists", &deep, ts),
        ])
        .await;
    let proxy = Proxy::start(&stack.server).await;
    proxy.fail_always(
        &format!("/collections/{real}/changeset"),
        Fault::Body(padded.to_string()),
    );
    proxy.fail_always(
        &format!("/collections/{deep}/changeset"),
        Fault::Body(deep_changeset),
    );
    let mut env = base_env(&proxy, &monitor);
    env.push(("ROOT_HASH", stack.root_hash.as_str()));
    env.retain(|(k, _)| *k != "REQUESTS_TIMEOUT_SECONDS");
    let run = run_bin(&["validate_signature", "--json"], &env).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert_one_line_texts(&run);
    assert_eq!(result(&run, &real)["status"], "ok", "{}", run.stdout);
    assert_eq!(result(&run, &legit)["status"], "ok", "{}", run.stdout);
    let r = result(&run, &deep);
    assert_eq!(
        (r["status"].as_str(), r["code"].as_str()),
        (Some("error"), Some("UNEXPECTED_RESPONSE")),
        "{r}"
    );
    assert!(
        r["detail"].as_str().unwrap().contains(&format!(
            "/collections/{deep}/changeset?_expected={ts} failed after 2 attempts"
        )),
        "{r}"
    );
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("the JSON document is nested deeper than 512 levels"),
        "{r}"
    );
    assert_requests_within(&proxy, &monitor, &[real, legit, deep]);
}

// --- Odd names in monitor/changes -------------------------------------------------------------

/// The request targets a run may send: every path segment is an API word or a Kinto id (so no
/// `..`, no percent-encoded separator, no query or fragment smuggled through a name).
fn assert_paths_are_kinto_ids(proxy: &Proxy, command: &str) {
    let requests = proxy.requests();
    assert!(!requests.is_empty(), "{command} sent nothing");
    for request in requests {
        let target = request.split(' ').nth(1).unwrap_or_default();
        let path = target.split('?').next().unwrap();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            assert!(
                segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{command}: {request} has the segment {segment:?}"
            );
        }
        assert!(!target.contains(".."), "{command}: {request}");
    }
}

/// The items of a JSON report that stand for a refused monitor entry.
fn invalid_items(report: &Value) -> usize {
    match report {
        Value::Object(o) => {
            let own = usize::from(
                o.get("code").is_some_and(|c| c == "INVALID_ENTRY")
                    || o.get("reason").is_some_and(|r| r == "invalid_entry"),
            );
            own + o.values().map(invalid_items).sum::<usize>()
        }
        Value::Array(a) => a.iter().map(invalid_items).sum(),
        _ => 0,
    }
}

/// Every command that reads monitor/changes, over one list holding a real collection and entries
/// whose bucket or collection is `..`, holds `/`, `%2F`, `?`, `#`, a newline, unicode, nothing,
/// or 300 characters: each odd entry is its own refused item (one line, the name quoted), the
/// real collection is still checked, and no request names anything but Kinto ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_monitor_entries_are_refused_items_and_never_reach_a_url() {
    let stack = Stack::get();
    let cid = unique("plain");
    let ts = stack
        .publish("staging", &cid, &[json!({"id": "r1", "n": 1})])
        .await;
    let long = "a".repeat(300);
    let climb = format!("../../buckets/blocklists/collections/{cid}");
    let odd: Vec<(&str, &str)> = vec![
        ("..", &cid),
        ("../admin", &cid),
        ("blocklists", &climb),
        ("blocklists%2F..", &cid),
        ("blocklists", "a%2Fb"),
        ("blocklists", "x?_limit=1"),
        ("blocklists", "x#frag"),
        ("blocklists", "line\nbreak"),
        ("blocklists", "ünïcödé"),
        ("bl\u{202e}ocklists", &cid),
        ("blocklists", ""),
        ("blocklists", &long),
    ];
    let mut entries = vec![("blocklists", cid.as_str(), ts)];
    entries.extend(odd.iter().map(|(b, c)| (*b, *c, ts)));
    let monitor = stack.scratch_monitor(&entries).await;
    let commands: Vec<(&str, Option<&str>)> = vec![
        ("validate_signature", None),
        ("validate_changes_collection", None),
        ("consistency_checks", Some("AUTH")),
        ("refresh_signature", Some("REFRESH_SIGNATURE_AUTH")),
    ];
    let runs = futures::future::join_all(commands.iter().map(|(command, auth)| {
        let (stack, monitor) = (&stack, &monitor);
        async move {
            let proxy = Proxy::start(&stack.server).await;
            let mut env = base_env(&proxy, monitor);
            env.retain(|(k, _)| *k != "REQUESTS_TIMEOUT_SECONDS");
            env.push(("ROOT_HASH", stack.root_hash.as_str()));
            if let Some(name) = auth {
                env.push((name, stack.editor.as_str()));
            }
            let run = run_bin(&[command, "--json"], &env).await;
            (proxy, run)
        }
    }))
    .await;
    for ((command, _), (proxy, run)) in commands.iter().zip(&runs) {
        assert!(run.code == 0 || run.code == 1, "{command}: {run:?}");
        let report = run.json();
        assert_eq!(
            invalid_items(&report),
            odd.len(),
            "{command}: {}",
            run.stdout
        );
        assert_one_line_texts(run);
        let checked = report["results"].as_array().unwrap().iter().any(|item| {
            item.get("code").is_none_or(|c| c != "INVALID_ENTRY")
                && item.as_object().unwrap().values().any(|v| {
                    v.as_str()
                        .is_some_and(|s| s == cid || s == format!("blocklists/{cid}"))
                })
        });
        assert!(checked, "{command} did not check {cid}: {}", run.stdout);
        assert_paths_are_kinto_ids(proxy, command);
        for smuggled in ["%2F", "%3F", "%23", "frag", "%0A", "%C3", "%E2"] {
            assert!(
                !proxy.requests().iter().any(|r| r.contains(smuggled)),
                "{command} sent {smuggled}: {:?}",
                proxy.requests()
            );
        }
    }
}

// --- Settings with control characters ---------------------------------------------------------

/// A value with a newline (or another control character) inside is refused before anything is
/// sent, by every command: exit 2, one stderr line naming the variable, the value not echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_with_control_characters_exit_2_naming_the_variable_and_send_nothing() {
    let stack = Stack::get();
    let proxy = Proxy::start(&stack.server).await;
    proxy.expect_no_hits();
    let server_with_newline = format!("{}\nEVIL", proxy.url);
    let cells: Vec<(&str, &str, String)> = vec![
        ("validate_signature", "SERVER", server_with_newline.clone()),
        (
            "validate_signature",
            "BUCKET",
            "monitor\nEVIL: forged line".into(),
        ),
        (
            "validate_signature",
            "ROOT_HASH",
            format!("{}\r\nEVIL", stack.root_hash),
        ),
        (
            "validate_changes_collection",
            "REQUESTS_TIMEOUT_SECONDS",
            "1\n2".into(),
        ),
        ("consistency_checks", "AUTH", "editor:EVIL\npass".into()),
        (
            "refresh_signature",
            "REFRESH_SIGNATURE_AUTH",
            "editor:EVIL\u{7}".into(),
        ),
        (
            "backport_records",
            "BACKPORT_RECORDS_SOURCE_BUCKET",
            "main\u{1b}[2JEVIL".into(),
        ),
        ("blockpages_generator", "BUCKET", "blocklists\tEVIL".into()),
        ("uptake_health", "REDASH_API_KEY", "key\nEVIL".into()),
    ];
    let runs = futures::future::join_all(cells.iter().map(|(command, name, value)| {
        let proxy = &proxy;
        async move {
            let mut env = vec![
                ("SERVER", proxy.url.as_str()),
                ("REDASH_API_QUERY_URL", proxy.url.as_str()),
                ("REDASH_API_KEY", "k"),
                ("AUTH", "editor:pass"),
                ("REFRESH_SIGNATURE_AUTH", "editor:pass"),
            ];
            env.retain(|(k, _)| k != name);
            env.push((name, value.as_str()));
            run_bin(&[command], &env).await
        }
    }))
    .await;
    for ((command, name, _), run) in cells.iter().zip(&runs) {
        assert_eq!(run.code, 2, "{command} {name}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{command}: {}", run.stderr);
        assert!(
            run.stderr.starts_with(&format!("error: invalid {name}: ")),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("EVIL"), "{command}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{command}");
    }
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}

// --- Records that read big or deep --------------------------------------------------------------

/// A published collection holding a 10 MB record and one nested 200 levels deep: validate_signature
/// verifies it, and consistency_checks and backport_records (the commands that read records)
/// handle it like any other: OK, and copied whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_record_is_read_verified_and_copied() {
    let stack = Stack::get();
    let cid = unique("ten-mb");
    let blob = "x".repeat(10 * 1024 * 1024);
    stack
        .publish("staging", &cid, &[json!({"id": "big", "blob": blob})])
        .await;
    stack
        .editor()
        .put_record(
            "staging",
            &cid,
            json!({"id": "deep", "v": nested_value(200)}),
        )
        .await;
    stack.sign("staging", &cid).await;
    let ts = stack.editor().records_timestamp("blocklists", &cid).await;
    let monitor = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
    let dest = unique("ten-mb-copy");
    stack.editor().create_collection("staging", &dest).await;
    let proxy = Proxy::start(&stack.server).await;
    let mut env = base_env(&proxy, &monitor);
    env.retain(|(k, _)| *k != "REQUESTS_TIMEOUT_SECONDS");
    env.push(("ROOT_HASH", stack.root_hash.as_str()));
    env.push(("AUTH", stack.editor.as_str()));
    env.push(("BACKPORT_RECORDS_SOURCE_AUTH", stack.editor.as_str()));
    env.push(("BACKPORT_RECORDS_SOURCE_BUCKET", "staging"));
    env.push(("BACKPORT_RECORDS_SOURCE_COLLECTION", cid.as_str()));
    env.push(("BACKPORT_RECORDS_DEST_COLLECTION", dest.as_str()));
    let (validate, consistency, backport) = futures::join!(
        run_bin(&["validate_signature", "--json"], &env),
        run_bin(&["consistency_checks", "--json"], &env),
        run_bin(&["backport_records", "--json"], &env),
    );
    assert_eq!(validate.code, 0, "{validate:?}");
    assert_eq!(result(&validate, &cid)["status"], "ok");
    assert_eq!(consistency.code, 0, "{consistency:?}");
    assert_eq!(backport.code, 0, "{backport:?}");
    let copied = stack
        .editor()
        .ok(
            reqwest::Method::GET,
            &format!("/buckets/staging/collections/{dest}/records/big"),
            None,
        )
        .await;
    assert_eq!(
        copied["data"]["blob"].as_str().map(str::len),
        Some(blob.len())
    );
    let copied = stack
        .editor()
        .ok(
            reqwest::Method::GET,
            &format!("/buckets/staging/collections/{dest}/records/deep"),
            None,
        )
        .await;
    // Deeper than the test helper parses: read with the product's own parser.
    let copied: Value = commands::json::from_slice(copied.as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(copied["data"]["v"], nested_value(200));
}

/// Records lists nested 100,000 levels deep (as a hostile server or proxy could answer them):
/// consistency_checks and backport_records refuse them past 512 levels before parsing (no stack
/// overflow), after the configured retries, with exit 3 and a one-line error naming the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_nested_100000_levels_deep_are_an_error_naming_the_url() {
    let stack = Stack::get();
    let cid = unique("deep");
    let ts = stack
        .publish("staging", &cid, &[json!({"id": "r1", "n": 1})])
        .await;
    let monitor = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
    // Deep before any field is read, in the shape of a records list and of a changeset alike.
    let deep = format!(
        r#"{{"data": [{{"id": "r1", "v": {0}}}], "changes": [{{"id": "r1", "v": {0}}}], "metadata": {{}}, "timestamp": 1}}"#,
        nested(100_000)
    );
    let proxy = Proxy::start(&stack.server).await;
    for endpoint in ["records", "changeset"] {
        proxy.fail_always(
            &format!("/collections/{cid}/{endpoint}"),
            Fault::Body(deep.clone()),
        );
    }
    let mut env = base_env(&proxy, &monitor);
    env.push(("AUTH", stack.editor.as_str()));
    env.push(("BACKPORT_RECORDS_SOURCE_AUTH", stack.editor.as_str()));
    env.push(("BACKPORT_RECORDS_SOURCE_BUCKET", "staging"));
    env.push(("BACKPORT_RECORDS_SOURCE_COLLECTION", cid.as_str()));
    env.push(("BACKPORT_RECORDS_DEST_BUCKET", "blocklists"));
    env.push(("BACKPORT_RECORDS_DEST_COLLECTION", cid.as_str()));
    env.push(("DRY_RUN", "1"));
    let (consistency, backport) = futures::join!(
        run_bin(&["consistency_checks"], &env),
        run_bin(&["backport_records"], &env),
    );
    for (command, run) in [
        ("consistency_checks", &consistency),
        ("backport_records", &backport),
    ] {
        assert_eq!(run.code, 3, "{command}: {run:?}");
        let text = format!("{}{}", run.stdout, run.stderr);
        let line = text
            .lines()
            .find(|l| l.contains("nested deeper than 512 levels"))
            .unwrap_or_else(|| panic!("{command}: {text}"));
        assert!(
            line.contains(&format!("/collections/{cid}/")),
            "{command}: {line}"
        );
        assert!(
            line.contains("failed after 2 attempts"),
            "{command}: {line}"
        );
    }
}
