//! The secrets sweep: every command, run by the real binary against the real stack with every
//! credential setting (`AUTH` in its Basic `user:password` and Bearer forms, `*_AUTH`,
//! `REDASH_API_KEY`, `AWS_SECRET_ACCESS_KEY`, the Sentry DSN's key) holding one distinctive
//! marker, in passing and failing runs (server down, 401/403 answers that echo the request's
//! `Authorization` back, a persistent 500, bad settings, the marker in a URL's user-info, a
//! panic), in text (`-vv`) and `--json` output, with Sentry on. The marker, and the base64 of the
//! Basic header that carries it, must show in no stdout, stderr, JSON report, Sentry event or
//! Lambda response/error; credentials go only where they belong: the Kinto server gets its
//! `Authorization`, an x5u host and the S3 endpoint get none of it (S3 only its SigV4 signature
//! naming the access key id), Redash only its API key in the query string.
//!
//! The runs of one command are its *cells*; they run concurrently, and a failure lists every cell
//! that leaked or ended with another exit code than the one pinned.

mod support;

use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::{json, Value};
use support::data::{monitored, records};
use support::lambda::{Bootstrap, Post, RuntimeApi};
use support::proxy::{Fault, Proxy};
use support::redash::{row, Redash};
use support::s3::ACCESS_KEY_ID;
use support::sentry::SentryListener;
use support::sweep::{
    assert_clean, b64, basic, bearer, envelope_problems, is_event, leaked, monitor_pass, problems,
    scenario, sweep, CellRun, Failing, KintoSweep, DOWN, DSN_KEY, MARKER, USER,
};
use support::{run_bin, unique, Kinto, Run, Stack};

/// The Kinto principal of the marker user (what permissions are granted to).
async fn marker_principal(stack: &Stack) -> String {
    let kinto = Kinto::new(&stack.server, &basic());
    let (status, info, _) = kinto.request(reqwest::Method::GET, "/", None).await;
    assert_eq!(status, 200, "{info}");
    info["user"]["id"].as_str().expect("a user id").to_string()
}

/// Every Kinto authorization a proxy saw is the marker user's Basic header.
fn assert_only_the_marker_basic(proxy: &Proxy) {
    let expected = format!("Basic {}", b64(&basic()));
    let auths = proxy.authorizations();
    assert!(!auths.is_empty(), "{:?}", proxy.requests());
    for (line, value) in auths {
        assert_eq!(value, expected, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_changes_collection_never_shows_a_credential() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 1).await.bucket;
    let sweep = KintoSweep::start(&stack.server).await;
    let kinto = Proxy::start(&stack.server).await;
    let basic = basic();
    let bearer = bearer();
    let pass = monitor_pass(&kinto.url, &bid, "mon", "AUTH");
    let others = vec![pass.clone().with("pass, Bearer", &[("AUTH", &bearer)], 0)];
    sweep
        .run("validate_changes_collection", &pass, others)
        .await;
    // The server got the credential where it belongs.
    assert!(kinto
        .authorizations()
        .iter()
        .any(|(_, v)| v == &format!("Basic {}", b64(&basic))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_signature_never_shows_a_credential_nor_sends_one_to_the_x5u_host() {
    let stack = Stack::get();
    let cid = unique("sig");
    let ts = stack.publish("staging", &cid, &records(2)).await;
    let (mon, _) = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
    // The changesets come through a proxy that points their x5u at another proxy in front of
    // the signing service, which records what the x5u download carried.
    let x5u = Proxy::start(&stack.autograph).await;
    let autograph_host = stack.autograph.trim_start_matches("http://").to_string();
    let x5u_host = x5u.url.trim_start_matches("http://").to_string();
    let kinto = Proxy::start(&stack.server).await;
    kinto.fail_always("/changeset", Fault::Replace(autograph_host, x5u_host));
    let sweep = KintoSweep::start(&stack.server).await;
    let basic = basic();
    let bearer = bearer();
    let pass = monitor_pass(&kinto.url, &mon, "changes", "AUTH").with(
        "pass, Basic",
        &[("ROOT_HASH", &stack.root_hash)],
        0,
    );
    let others = vec![pass.clone().with("pass, Bearer", &[("AUTH", &bearer)], 0)];
    sweep.run("validate_signature", &pass, others).await;
    assert!(x5u.count("/chains/") >= 4, "{:?}", x5u.requests());
    assert_eq!(x5u.authorizations(), Vec::<(String, String)>::new());
    let auths = kinto.authorizations();
    assert!(!auths.is_empty(), "{:?}", kinto.requests());
    assert!(auths
        .iter()
        .all(|(_, v)| v == &format!("Basic {}", b64(&basic)) || v == &format!("Bearer {MARKER}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_signature_never_shows_a_credential() {
    let stack = Stack::get();
    let principal = marker_principal(&stack).await;
    // One source collection for the text cells, one for the JSON cells, which the marker user
    // may write.
    let mut monitors = Vec::new();
    for _ in ["text", "json"] {
        let cid = unique("refresh");
        let ts = stack.publish("staging", &cid, &records(2)).await;
        stack
            .editor()
            .ok(
                reqwest::Method::PATCH,
                &format!("/buckets/staging/collections/{cid}"),
                Some(json!({"permissions": {"write": [&principal]}})),
            )
            .await;
        monitors.push(stack.scratch_monitor(&[("blocklists", &cid, ts)]).await.0);
    }
    let sweep = KintoSweep::start(&stack.server).await;
    let kinto = Proxy::start(&stack.server).await;
    let basic = basic();
    let bearer = bearer();
    let pass = monitor_pass(
        &kinto.url,
        &monitors[0],
        "changes",
        "REFRESH_SIGNATURE_AUTH",
    )
    .json_with(&[("BUCKET", &monitors[1])]);
    let others = vec![pass.clone().with(
        "Bearer, refused by the server",
        &[("REFRESH_SIGNATURE_AUTH", &bearer)],
        1,
    )];
    sweep.run("refresh_signature", &pass, others).await;
    assert!(kinto
        .authorizations()
        .iter()
        .any(|(_, v)| v == &format!("Basic {}", b64(&basic))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_checks_never_shows_a_credential() {
    let stack = Stack::get();
    let principal = marker_principal(&stack).await;
    let cid = unique("consistent");
    let ts = stack.publish("staging", &cid, &records(2)).await;
    stack
        .editor()
        .ok(
            reqwest::Method::PATCH,
            &format!("/buckets/staging/collections/{cid}"),
            Some(json!({"permissions": {"read": [principal]}})),
        )
        .await;
    let (mon, _) = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
    let sweep = KintoSweep::start(&stack.server).await;
    let bearer = bearer();
    let pass = monitor_pass(&stack.server, &mon, "changes", "AUTH");
    let others = vec![pass.clone().with(
        "pass, Bearer (anonymous, reads are public)",
        &[("AUTH", &bearer)],
        0,
    )];
    sweep.run("consistency_checks", &pass, others).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backport_records_never_shows_a_credential() {
    let stack = Stack::get();
    // The marker user owns the scratch bucket it backports in.
    let owner = Kinto::new(&stack.server, &basic());
    let bid = unique("secbp");
    owner.create_bucket(&bid).await;
    for cid in ["old", "old-json", "new"] {
        owner.create_collection(&bid, cid).await;
    }
    owner.put_records(&bid, "new", &records(3)).await;
    // Only the owner may write there: a Bearer token is anonymous to this Kinto.
    owner.create_collection(&bid, "bearer-dest").await;
    let sweep = KintoSweep::start(&stack.server).await;
    let kinto = Proxy::start(&stack.server).await;
    let basic = basic();
    let bearer = bearer();
    let pass = scenario(
        "pass, Basic source and dest",
        &[
            ("SERVER", &kinto.url),
            ("BACKPORT_RECORDS_SOURCE_AUTH", &basic),
            ("BACKPORT_RECORDS_DEST_AUTH", &basic),
            ("BACKPORT_RECORDS_SOURCE_BUCKET", &bid),
            ("BACKPORT_RECORDS_SOURCE_COLLECTION", "new"),
            ("BACKPORT_RECORDS_DEST_BUCKET", &bid),
            ("BACKPORT_RECORDS_DEST_COLLECTION", "old"),
        ],
        0,
    )
    .json_with(&[("BACKPORT_RECORDS_DEST_COLLECTION", "old-json")]);
    let others = vec![pass.clone().with(
        "Bearer dest, refused by the server",
        &[
            ("BACKPORT_RECORDS_DEST_AUTH", &bearer),
            ("BACKPORT_RECORDS_DEST_COLLECTION", "bearer-dest"),
        ],
        1,
    )];
    sweep.run("backport_records", &pass, others).await;
    assert!(kinto
        .authorizations()
        .iter()
        .any(|(_, v)| v == &format!("Basic {}", b64(&basic))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blockpages_generator_never_shows_a_credential_nor_sends_one_but_sigv4_to_s3() {
    let stack = Stack::get();
    let bid = unique("secpages");
    let editor = stack.editor();
    editor.create_bucket(&bid).await;
    for cid in ["addons", "plugins"] {
        editor.create_collection(&bid, cid).await;
    }
    editor
        .put_record(
            &bid,
            "addons",
            json!({"id": "a", "blockID": "i1", "guid": "a@example.com", "severity": 3,
                   "details": {"name": "One", "created": "2020-01-01T00:00:00Z", "why": "Bad."}}),
        )
        .await;
    let kinto = Proxy::start(&stack.server).await;
    let s3 = Proxy::start(&stack.s3_endpoint).await;
    let s3_error = Proxy::start(&stack.s3_endpoint).await;
    s3_error.fail_always("/", Fault::Status(500, None));
    let s3_echo = Proxy::start(&stack.s3_endpoint).await;
    s3_echo.fail_always("/", Fault::EchoAuth(403));
    let sweep = KintoSweep::start(&stack.server).await;
    let basic = basic();
    let aws_secret = format!("aws-{MARKER}");
    let session = format!("session-{MARKER}");
    let bucket = unique("secpages");
    let json_bucket = format!("{bucket}-json");
    let pass = scenario(
        "pass",
        &[
            ("SERVER", &kinto.url),
            ("AUTH", &basic),
            ("BUCKET", &bid),
            ("BUCKET_NAME", &bucket),
            ("AWS_ENDPOINT_URL", &s3.url),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", &aws_secret),
        ],
        0,
    )
    .json_with(&[("BUCKET_NAME", &json_bucket)]);
    let s3_userinfo = format!("http://{ACCESS_KEY_ID}:{MARKER}@127.0.0.1:9");
    let s3_bad_scheme = format!("s3://{ACCESS_KEY_ID}:{MARKER}@bucket");
    let others = vec![
        pass.clone()
            .with(
                "pass, session token",
                &[
                    ("AWS_SESSION_TOKEN", &session),
                    ("BUCKET_NAME", &format!("{bucket}-session")),
                ],
                0,
            )
            .json_with(&[("BUCKET_NAME", &format!("{bucket}-session-json"))]),
        pass.clone().with(
            "S3 500 persistent",
            &[("AWS_ENDPOINT_URL", &s3_error.url)],
            3,
        ),
        pass.clone().with(
            "S3 403 echoing the signature",
            &[("AWS_ENDPOINT_URL", &s3_echo.url)],
            3,
        ),
        pass.clone()
            .with("S3 down", &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")], 3),
        pass.clone().with(
            "marker in AWS_ENDPOINT_URL user-info",
            &[("AWS_ENDPOINT_URL", &s3_userinfo)],
            2,
        ),
        pass.clone().with(
            "marker in a non-http AWS_ENDPOINT_URL",
            &[("AWS_ENDPOINT_URL", &s3_bad_scheme)],
            2,
        ),
    ];
    sweep.run("blockpages_generator", &pass, others).await;
    assert_only_the_marker_basic(&kinto);
    // S3 requests carry SigV4 (in the header or a presigned query) naming the access key id,
    // never the Kinto credential nor the secret key or session token themselves.
    let mut s3_seen = 0;
    for proxy in [&s3, &s3_error, &s3_echo] {
        for (line, value) in proxy.authorizations() {
            assert!(
                value.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")),
                "{line}: {value}"
            );
            assert!(leaked(&value).is_none(), "{line}: {value}");
        }
        for line in proxy.requests() {
            // The session token travels to S3 (as X-Amz-Security-Token), by design.
            let without_token = line.replace(&session, "(session token)");
            assert!(leaked(&without_token).is_none(), "{line}");
            assert!(!line.contains(&aws_secret), "{line}");
            s3_seen += 1;
        }
    }
    assert!(s3_seen >= 6, "{:?}", s3.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uptake_health_never_shows_a_credential_and_sends_redash_only_its_key() {
    let key = format!("rdk-{MARKER}");
    let redash = Redash::start(
        &key,
        &[row(
            "main/ok",
            0,
            3_600_000,
            &[("up_to_date", 100_000), ("network_error", 1)],
        )],
    )
    .await;
    let origin = redash.query_url.split("/api/").next().unwrap().to_string();
    let path = redash.query_url.trim_start_matches(&origin).to_string();
    let front = Proxy::start(&origin).await;
    let error = Proxy::start(&origin).await;
    error.fail_always("/", Fault::Status(503, None));
    let basic = basic();
    let query_url = format!("{}{path}", front.url);
    let error_url = format!("{}{path}", error.url);
    let in_query = format!("ftp://127.0.0.1:9{path}?api_key={MARKER}");
    let userinfo = format!("http://u:{MARKER}@127.0.0.1:9{path}");
    let pass = scenario(
        "pass",
        &[
            ("REDASH_API_QUERY_URL", &query_url),
            ("REDASH_API_KEY", &key),
            ("AUTH", &basic),
        ],
        0,
    );
    let scenarios = vec![
        pass.clone(),
        pass.clone().with(
            "key refused",
            &[("REDASH_API_KEY", &format!("no-{MARKER}"))],
            3,
        ),
        pass.clone()
            .with("503 persistent", &[("REDASH_API_QUERY_URL", &error_url)], 3),
        pass.clone().with(
            "Redash down",
            &[(
                "REDASH_API_QUERY_URL",
                "http://127.0.0.1:9/api/queries/1/results.json",
            )],
            3,
        ),
        pass.clone().with(
            "marker as api_key of a non-http URL",
            &[("REDASH_API_QUERY_URL", &in_query)],
            2,
        ),
        pass.clone().with(
            "marker in the URL user-info",
            &[("REDASH_API_QUERY_URL", &userinfo)],
            2,
        ),
        pass.clone()
            .with("bad setting", &[("MIN_TOTAL_ENTRIES", "many")], 2),
    ];
    let problems = sweep("uptake_health", &scenarios).await;
    assert_clean(problems);
    // Redash gets the key in the query string only, and no Authorization at all.
    assert_eq!(front.authorizations(), Vec::<(String, String)>::new());
    assert_eq!(error.authorizations(), Vec::<(String, String)>::new());
    let requests = front.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    for line in requests.iter().chain(error.requests().iter()) {
        let key_param = line.split("api_key=").nth(1).unwrap_or_default();
        assert!(
            key_param == key || key_param == format!("no-{MARKER}"),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_ends_with_exit_3_one_line_and_a_sentry_event_without_secrets() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 1).await.bucket;
    let basic = basic();
    let userinfo_note = format!("http://{USER}:{MARKER}@127.0.0.1:9/v1");
    let commands: BTreeMap<&str, Vec<(&str, &str)>> = [
        (
            "validate_changes_collection",
            vec![("AUTH", basic.as_str())],
        ),
        ("validate_signature", vec![("AUTH", basic.as_str())]),
        (
            "refresh_signature",
            vec![("REFRESH_SIGNATURE_AUTH", basic.as_str())],
        ),
        ("consistency_checks", vec![("AUTH", basic.as_str())]),
        (
            "backport_records",
            vec![
                ("BACKPORT_RECORDS_SOURCE_AUTH", basic.as_str()),
                ("BACKPORT_RECORDS_DEST_AUTH", basic.as_str()),
            ],
        ),
        (
            "blockpages_generator",
            vec![("AWS_SECRET_ACCESS_KEY", basic.as_str())],
        ),
        ("uptake_health", vec![("REDASH_API_KEY", basic.as_str())]),
    ]
    .into_iter()
    .collect();
    // The hook is in the code every command runs: a panic in the run for every command (each
    // with its own credential settings), the other mode and format for one (a panic event costs
    // a debug build a second or two of stack trace symbolication).
    let mut cells = Vec::new();
    for (command, credentials) in &commands {
        cells.push((*command, credentials.clone(), "run", false));
        if *command == "validate_changes_collection" {
            cells.push((*command, credentials.clone(), "run", true));
            cells.push((*command, credentials.clone(), "task", false));
            cells.push((*command, credentials.clone(), "task", true));
        }
    }
    let server = stack.server.clone();
    let (bid_ref, server_ref, userinfo_ref) = (&bid, &server, &userinfo_note);
    let runs: Vec<(String, bool, Run, Vec<String>)> = futures::stream::iter(cells)
        .map(|(command, credentials, mode, json)| async move {
            let sentry = SentryListener::start().await;
            let dsn = sentry.dsn.replace("publickey", DSN_KEY);
            // The panic message holds SERVER: its user-info is hidden though it is no known
            // credential.
            let server = if mode == "run" {
                userinfo_ref
            } else {
                server_ref
            };
            let mut env = vec![
                ("SERVER", server.as_str()),
                ("BUCKET", bid_ref.as_str()),
                ("COLLECTION", "mon"),
                ("SENTRY_DSN", dsn.as_str()),
                ("RSL_DEBUG_PANIC", mode),
                // Loopback only, and fast: the `task` panic lets the run go on.
                (
                    "REDASH_API_QUERY_URL",
                    "http://127.0.0.1:9/api/queries/1/results.json",
                ),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
                ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.01"),
                ("REQUESTS_NB_RETRIES", "1"),
            ];
            env.extend(credentials);
            let args: &[&str] = if json {
                &[command, "--json"]
            } else {
                &[command]
            };
            let run = run_bin(args, &env).await;
            (
                format!(
                    "{command} / panic in the {mode} / {}",
                    if json { "json" } else { "text" }
                ),
                json,
                run,
                sentry.envelopes(),
            )
        })
        .buffer_unordered(6)
        .collect()
        .await;
    let mut all = Vec::new();
    for (label, json, run, envelopes) in &runs {
        let cell = CellRun {
            label: label.clone(),
            json: *json,
            expected: 3,
            run: Run {
                code: run.code,
                stdout: run.stdout.clone(),
                stderr: run.stderr.clone(),
            },
            envelopes: envelopes.clone(),
        };
        let mut found = problems(&cell);
        let lines: Vec<&str> = run.stderr.lines().collect();
        if lines.len() != 1
            || !lines[0].starts_with("error: the command panicked (a bug): RSL_DEBUG_PANIC: ")
        {
            found.push(format!(
                "{label}: stderr is not one panic line:\n{}",
                run.stderr
            ));
        }
        if *json {
            let doc: Value = serde_json::from_str(&run.stdout).unwrap_or_default();
            if doc["error"]["code"] != "Panic" || doc["exit_code"] != 3 {
                found.push(format!("{label}: JSON document {doc}"));
            }
        }
        let panics: Vec<&String> = envelopes
            .iter()
            .filter(|e| is_event(e) && e.contains("\"type\":\"panic\""))
            .collect();
        if panics.len() != 1 || envelopes.iter().filter(|e| is_event(e)).count() != 1 {
            found.push(format!(
                "{label}: expected exactly one Sentry event, the panic's: {envelopes:#?}"
            ));
        } else if !panics[0].contains("RSL_DEBUG_PANIC") || !panics[0].contains("[redacted]") {
            found.push(format!("{label}: the panic event: {}", panics[0]));
        }
        println!(
            "{label:<70} exit {} {}",
            run.code,
            if found.is_empty() { "clean" } else { "PROBLEM" }
        );
        all.extend(found);
    }
    assert_clean(all);
}

/// A Lambda bootstrap's outputs and posts, checked like a cell's.
fn lambda_problems(
    label: &str,
    lambda: &Bootstrap,
    posts: &[Post],
    sentry: &SentryListener,
) -> Vec<String> {
    let mut out = Vec::new();
    for (stream, text) in [("stdout", lambda.stdout()), ("stderr", lambda.stderr())] {
        if let Some(secret) = leaked(&text) {
            out.push(format!(
                "{label}: {secret} in the bootstrap's {stream}:\n{text}"
            ));
        }
        if text.contains(DSN_KEY) {
            out.push(format!("{label}: the DSN key in the bootstrap's {stream}"));
        }
    }
    for post in posts {
        let body = post.body.to_string();
        if let Some(secret) = leaked(&body) {
            out.push(format!(
                "{label}: {secret} posted to the Runtime API: {body}"
            ));
        }
    }
    out.extend(envelope_problems(label, &sentry.envelopes()));
    out
}

/// The environment of a Lambda bootstrap over a monitored bucket, with the marker user's Basic
/// credentials and Sentry on.
fn lambda_env(stack: &Stack, bid: &str, sentry: &SentryListener) -> Vec<(String, String)> {
    let (basic, dsn) = (basic(), sentry.dsn.replace("publickey", DSN_KEY));
    let pairs = [
        ("SERVER", stack.server.as_str()),
        ("BUCKET", bid),
        ("COLLECTION", "mon"),
        ("AUTH", basic.as_str()),
        ("SENTRY_DSN", dsn.as_str()),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.01"),
        ("REQUESTS_NB_RETRIES", "2"),
    ];
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_invocations_one_after_the_other_never_post_or_log_a_credential() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 1).await.bucket;
    let failing = Failing::start(&stack.server).await;
    let mut all = Vec::new();

    // One process, invocations one after the other: a pass, then failures whose event brings
    // its own credentials.
    let sentry = SentryListener::start().await;
    let api = RuntimeApi::start(Some(&sentry)).await;
    let env = lambda_env(&stack, &bid, &sentry);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lambda = Bootstrap::start(&api, "validate_changes_collection", &env_refs);
    let bad_scheme = format!("ftp://{USER}:{MARKER}@127.0.0.1:9/v1");
    let invocations = [
        ("pass", json!({}), None),
        (
            "500 persistent",
            json!({"server": failing.error.url}),
            Some("HttpError"),
        ),
        (
            "401 echoing a Bearer token from the event",
            json!({"server": failing.unauthorized.url, "auth": bearer()}),
            Some("HttpError"),
        ),
        (
            "403 echoing Basic credentials from the event",
            json!({"server": failing.forbidden.url, "auth": format!("other:{MARKER}")}),
            Some("HttpError"),
        ),
        (
            "marker in a non-http server",
            json!({"server": bad_scheme}),
            Some("ConfigError"),
        ),
        ("server down", json!({"server": DOWN}), Some("HttpError")),
    ];
    for (name, event, error_type) in &invocations {
        let id = api.invoke(event);
        let post = api.outcome(&id).await;
        let got = post.body.get("errorType").and_then(Value::as_str);
        if got != *error_type {
            all.push(format!(
                "lambda / {name}: errorType {got:?} instead of {error_type:?}: {}",
                post.body
            ));
        }
        println!(
            "{:<70} {}",
            format!("lambda validate_changes_collection / {name}"),
            got.unwrap_or("response")
        );
    }
    all.extend(lambda_problems(
        "lambda validate_changes_collection",
        &lambda,
        &api.posts(),
        &sentry,
    ));
    if sentry.events().len() < invocations.len() - 2 {
        all.push(format!(
            "lambda: too few Sentry events: {:#?}",
            sentry.envelopes()
        ));
    }
    // The other user's base64 form, from the event, is scrubbed too.
    let other = b64(&format!("other:{MARKER}"));
    for text in sentry
        .envelopes()
        .iter()
        .chain([lambda.stderr(), lambda.stdout()].iter())
    {
        if text.contains(&other) {
            all.push(format!("lambda: the event's Basic header leaked: {text}"));
        }
    }
    failing.assert_echoed();
    assert_clean(all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_panic_in_the_run_or_a_task_is_a_panic_error_without_secrets() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 1).await.bucket;
    let mut all = Vec::new();

    // A panic, in the run and in a task, is a `Panic` error without secrets.
    for mode in ["run", "task"] {
        let sentry = SentryListener::start().await;
        let api = RuntimeApi::start(Some(&sentry)).await;
        let mut env = lambda_env(&stack, &bid, &sentry);
        env.push(("RSL_DEBUG_PANIC".to_string(), mode.to_string()));
        let env_refs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let lambda = Bootstrap::start(&api, "validate_changes_collection", &env_refs);
        let id = api.invoke(&json!({"auth": format!("other:{MARKER}")}));
        let post = api.outcome(&id).await;
        let (error_type, message) = post.error();
        if error_type != "Panic"
            || !message.starts_with("the command panicked (a bug): RSL_DEBUG_PANIC")
            || post.sentry_events_before != 1
        {
            all.push(format!(
                "lambda panic in the {mode}: {post:?}\n{}",
                lambda.stderr()
            ));
        }
        println!(
            "{:<70} {error_type}",
            format!("lambda validate_changes_collection / panic in the {mode}")
        );
        all.extend(lambda_problems(
            &format!("lambda panic in the {mode}"),
            &lambda,
            &api.posts(),
            &sentry,
        ));
        if mode == "run" {
            // The process goes on serving invocations (this one panics again).
            let next = api.invoke(&json!({}));
            if api.outcome(&next).await.error().0 != "Panic" {
                all.push(format!(
                    "lambda: no second invocation after a panic: {:?}",
                    api.posts()
                ));
            }
        }
    }
    assert_clean(all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writers_credential_from_the_lambda_event_is_never_posted_or_logged() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 1).await.bucket;
    let unauthorized = Proxy::start(&stack.server).await;
    unauthorized.fail_always("/", Fault::EchoAuth(401));
    let basic = basic();
    let mut all = Vec::new();

    // A writer's own credential setting, from the event.
    let sentry = SentryListener::start().await;
    let api = RuntimeApi::start(Some(&sentry)).await;
    let env = lambda_env(&stack, &bid, &sentry);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lambda = Bootstrap::start(&api, "backport_records", &env_refs);
    let id = api.invoke(&json!({
        "server": unauthorized.url,
        "backport_records_source_auth": basic,
        "backport_records_source_bucket": bid, "backport_records_source_collection": "c0",
        "backport_records_dest_collection": "c1",
    }));
    let post = api.outcome(&id).await;
    println!(
        "{:<70} {}",
        "lambda backport_records / 401 echoing the source auth",
        post.error().0
    );
    all.extend(lambda_problems(
        "lambda backport_records",
        &lambda,
        &api.posts(),
        &sentry,
    ));
    // The request that reached the echoing server carried the credential: the cell tests
    // something.
    assert!(
        unauthorized
            .authorizations()
            .iter()
            .any(|(_, v)| v.starts_with("Basic ")),
        "{:?}",
        unauthorized.requests()
    );
    assert_clean(all);
}

/// The settings a command needs besides credentials to get as far as its first request (a
/// command not listed here needs none).
fn to_first_request(command: &str) -> &'static [(&'static str, &'static str)] {
    match command {
        "backport_records" => &[
            ("BACKPORT_RECORDS_SOURCE_BUCKET", "b"),
            ("BACKPORT_RECORDS_SOURCE_COLLECTION", "c"),
            ("BACKPORT_RECORDS_DEST_COLLECTION", "d"),
        ],
        "blockpages_generator" => &[("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)],
        "build_bundles" => &[
            ("STORAGE_URL", "s3://bundles/prefix"),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ],
        "server_compare" => &[("TARGET_SERVER", DOWN)],
        "backported_records" => &[("BACKPORT_RECORDS_MAPPINGS", "b/c -> b/d")],
        "expire_orphan_attachments" => &[("STORAGE_URL", "gs://attachments")],
        "uptake_health" => &[(
            "REDASH_API_QUERY_URL",
            "http://127.0.0.1:9/api/queries/1/results.json",
        )],
        _ => &[],
    }
}

/// Driven by the registry, so that a new command is swept by being registered: every command,
/// with every setting its declaration calls secret holding the marker, against servers that
/// answer nothing, in text and JSON with Sentry on: it gets as far as its requests (exit 3) and
/// the marker shows nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_command_hides_every_credential_it_declares() {
    let mut all = Vec::new();
    for command in commands::COMMANDS {
        let mut env: Vec<(String, String)> = vec![("SERVER".into(), DOWN.into())];
        let mut secrets = Vec::new();
        for setting in command.all_settings() {
            // The Sentry DSN is the sweep's own (its key is checked apart).
            if !setting.secret || setting.env == "SENTRY_DSN" {
                continue;
            }
            let value = match setting.value_name {
                "CREDENTIALS" => basic(),
                _ => format!("key-{MARKER}"),
            };
            secrets.push(setting.env);
            env.push((setting.env.into(), value));
        }
        assert!(
            !secrets.is_empty(),
            "{} declares no credential",
            command.name
        );
        env.extend(
            to_first_request(command.name)
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let name = format!("{} down", secrets.join(", "));
        all.extend(sweep(command.name, &[scenario(&name, &pairs, 3)]).await);
    }
    assert_clean(all);
}
