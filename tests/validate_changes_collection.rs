//! `validate_changes_collection` end to end: the real binary against the real Kinto stack, with a
//! fault-injecting proxy in front of it where the test says so.
//!
//! Most tests point `BUCKET`/`COLLECTION` at a scratch collection that the test fills with entries
//! naming real collections (written in ascending timestamp order, so Kinto keeps the given
//! `last_modified`), which keeps them independent of what other tests publish meanwhile.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::data::{claim, monitor_env, monitored};
use support::proxy::{Fault, Proxy};
use support::sentry::SentryListener;
use support::{run_bin, unique, Kinto, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_server_reports_every_entry_ok_and_exits_0() {
    let stack = Stack::get();
    let (bid, targets) = monitored(&stack.editor(), 3).await.split();
    let run = run_bin(
        &["validate_changes_collection"],
        &monitor_env(&stack.edge, &bid),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    // In the monitor collection's order, as Kinto lists it: newest first.
    let expected: Vec<String> = targets
        .iter()
        .rev()
        .map(|(cid, ts)| format!("Etag OK for {bid}/{cid} : {ts}"))
        .collect();
    assert_eq!(run.lines(), expected);
    assert_eq!(run.stderr, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_last_modified_is_not_ok_with_both_timestamps_and_exit_1() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let (bid, targets) = monitored(&kinto, 3).await.split();
    // An entry for c1 claiming a later timestamp than the collection really has.
    let wrong = targets[2].1 + 1000;
    claim(&kinto, &bid, 1, wrong).await;
    let run = run_bin(
        &["validate-changes-collection"],
        &monitor_env(&stack.edge, &bid),
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("Etag OK for {bid}/c0 : {}", targets[0].1)),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "Etag NOT OK for {bid}/c1 : {wrong} != {}",
            targets[1].1
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("Etag OK for {bid}/c2 : {}", targets[2].1)),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("One of the collection did not validate."),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_parses_and_carries_the_same_results_as_text() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let (bid, targets) = monitored(&kinto, 2).await.split();
    let wrong = targets[1].1 + 7;
    claim(&kinto, &bid, 0, wrong).await;
    let text = run_bin(
        &["validate_changes_collection"],
        &monitor_env(&stack.edge, &bid),
    )
    .await;
    let json_run = run_bin(
        &["validate_changes_collection", "--json"],
        &monitor_env(&stack.edge, &bid),
    )
    .await;
    let mut with_env = monitor_env(&stack.edge, &bid);
    with_env.push(("OUTPUT", "json"));
    let env_run = run_bin(&["validate_changes_collection"], &with_env).await;
    assert_eq!((text.code, json_run.code, env_run.code), (1, 1, 1));
    let doc = json_run.json();
    assert_eq!(doc["command"], "validate_changes_collection");
    assert_eq!(doc["status"], "problems");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(
        doc["totals"],
        json!({"entries": 2, "ok": 1, "mismatched": 1, "unreadable": 0, "invalid": 0})
    );
    assert_eq!(
        doc["error"]["message"],
        "One of the collection did not validate."
    );
    // Every text line has its JSON twin.
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), text.lines().len());
    for (line, item) in text.lines().iter().zip(results) {
        let cid = item["collection"].as_str().unwrap();
        match item["status"].as_str().unwrap() {
            "ok" => assert_eq!(
                *line,
                format!("Etag OK for {bid}/{cid} : {}", item["timestamp"])
            ),
            "mismatch" => assert_eq!(
                *line,
                format!(
                    "Etag NOT OK for {bid}/{cid} : {} != {}",
                    item["entry_timestamp"], item["records_timestamp"]
                )
            ),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(env_run.json()["results"], doc["results"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_list_is_one_fresh_changeset_and_each_timestamp_one_more() {
    let stack = Stack::get();
    let (bid, targets) = monitored(&stack.editor(), 5).await.split();
    let proxy = Proxy::start(&stack.edge).await;
    let mut bust_values = Vec::new();
    for _ in 0..2 {
        let run = run_bin(
            &["validate_changes_collection"],
            &monitor_env(&proxy.url, &bid),
        )
        .await;
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.lines().len(), 5);
        let requests = proxy.requests();
        // One request for the list, one per collection: each a changeset, none a records list.
        let list = format!("GET /v1/buckets/{bid}/collections/mon/changeset?_expected=");
        let lists: Vec<&String> = requests.iter().filter(|r| r.starts_with(&list)).collect();
        assert_eq!(lists.len(), bust_values.len() + 1, "{requests:#?}");
        let value: u64 = lists.last().unwrap()[list.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (999_999_000_000..=999_999_999_999).contains(&value),
            "{value}"
        );
        bust_values.push(value);
        for (cid, ts) in &targets {
            let path = format!("GET /v1/buckets/{bid}/collections/{cid}/changeset?_expected=");
            let asked: Vec<&String> = requests.iter().filter(|r| r.starts_with(&path)).collect();
            assert_eq!(asked.len(), bust_values.len(), "{requests:#?}");
            assert!(
                asked[0].contains(&format!("_since=%22{ts}%22")),
                "{}",
                asked[0]
            );
        }
        assert_eq!(requests.len(), bust_values.len() * 6, "{requests:#?}");
    }
    assert_ne!(
        bust_values[0], bust_values[1],
        "a changing _expected busts the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_monitor_changes_of_signed_collections_validate() {
    let stack = Stack::get();
    // The small-pages server is shared only with tests that use scratch buckets, so what this test
    // publishes is all that changes in its monitor/changes while it runs.
    let editor = Kinto::new(&stack.small_pages_server, &stack.editor);
    let mut published = Vec::new();
    // Today's plugin bounds a changeset by the server's page size (3 here), the monitor list too:
    // three collections fit.
    for i in 0..3 {
        let cid = unique(&format!("pub{i}"));
        editor.create_collection("staging", &cid).await;
        editor
            .put_record("staging", &cid, json!({"id": "a", "v": i}))
            .await;
        editor
            .patch_collection("staging", &cid, json!({"status": "to-sign"}))
            .await;
        published.push(cid);
    }
    let run = run_bin(
        &["validate_changes_collection"],
        &[("SERVER", stack.small_pages_server.as_str())],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    for cid in &published {
        assert!(
            run.stdout
                .contains(&format!("Etag OK for blocklists/{cid} : ")),
            "{cid} missing from:\n{}",
            run.stdout
        );
    }
    assert!(
        run.lines().iter().all(|l| l.starts_with("Etag OK for ")),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_and_the_run_succeeds() {
    let stack = Stack::get();
    let (bid, targets) = monitored(&stack.editor(), 4).await.split();
    let proxy = Proxy::start(&stack.edge).await;
    proxy.fail(
        "/collections/mon/changeset",
        vec![Fault::Reset, Fault::Status(503, Some(1))],
    );
    proxy.fail(
        "/collections/c0/changeset",
        vec![Fault::Status(429, Some(0)), Fault::Status(502, None)],
    );
    proxy.fail(
        "/collections/c1/changeset",
        vec![Fault::Delay(Duration::from_millis(3000))],
    );
    proxy.fail(
        "/collections/c2/changeset",
        vec![Fault::Truncate, Fault::Status(504, None)],
    );
    proxy.fail(
        "/collections/c3/changeset",
        vec![Fault::Body("not json".into())],
    );
    let mut e = monitor_env(&proxy.url, &bid);
    // Half the slow answer's delay, and well above a loaded machine's slowest good answer.
    e.push(("REQUESTS_TIMEOUT_SECONDS", "1.5"));
    let started = Instant::now();
    let run = run_bin(&["validate_changes_collection"], &e).await;
    assert_eq!(run.code, 0, "{run:?}");
    for (cid, ts) in &targets {
        assert!(
            run.stdout
                .contains(&format!("Etag OK for {bid}/{cid} : {ts}")),
            "{}",
            run.stdout
        );
    }
    assert_eq!(proxy.count("/collections/mon/changeset"), 3);
    assert_eq!(proxy.count("/collections/c0/changeset"), 3);
    assert_eq!(proxy.count("/collections/c1/changeset"), 2);
    assert_eq!(proxy.count("/collections/c2/changeset"), 3);
    // A 200 whose body is not what was asked for (no ETag, not JSON) is retried too.
    assert_eq!(proxy.count("/collections/c3/changeset"), 2);
    // Retry-After: 1 on the monitor read was honoured.
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_faults_give_up_after_the_retries_with_exit_3_naming_the_url() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 2).await.bucket;
    let proxy = Proxy::start(&stack.edge).await;
    proxy.fail_always("/collections/c1/changeset", Fault::Status(503, None));
    let mut e = monitor_env(&proxy.url, &bid);
    e.push(("REQUESTS_NB_RETRIES", "2"));
    let run = run_bin(&["validate_changes_collection"], &e).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        proxy.count("/collections/c1/changeset"),
        3,
        "1 attempt + 2 retries"
    );
    let url = format!("{}/buckets/{bid}/collections/c1/changeset", proxy.url);
    assert!(run.stderr.contains(&url), "{}", run.stderr);
    assert!(
        run.stderr.contains("after 3 attempts: HTTP 503"),
        "{}",
        run.stderr
    );
    // The collection it could not read is never reported OK; the other one is.
    assert!(run.stdout.contains(&format!("Etag OK for {bid}/c0 : ")));
    assert!(
        run.stdout
            .contains(&format!("Etag NOT OK for {bid}/c1 : GET {url}")),
        "{}",
        run.stdout
    );

    // Unreachable server: exit 3, the URL in the message.
    proxy.fail_always("/collections/mon/changeset", Fault::Reset);
    let run = run_bin(&["validate_changes_collection"], &e).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "{}/buckets/{bid}/collections/mon/changeset",
            proxy.url
        )),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_is_not_retried() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 2).await.bucket;
    let proxy = Proxy::start(&stack.edge).await;
    proxy.fail_always("/collections/c0/changeset", Fault::Status(404, None));
    let run = run_bin(
        &["validate_changes_collection"],
        &monitor_env(&proxy.url, &bid),
    )
    .await;
    assert_eq!(proxy.count("/collections/c0/changeset"), 1);
    assert_eq!(
        run.code, 1,
        "a collection listed but missing is a finding: {run:?}"
    );
    assert!(
        run.stdout
            .contains(&format!("Etag NOT OK for {bid}/c0 : GET ")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("HTTP 404"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinto_backoff_header_delays_the_next_requests() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 1).await.bucket;
    let proxy = Proxy::start(&stack.edge).await;
    proxy.fail("/collections/mon/changeset", vec![Fault::Backoff(2)]);
    let started = Instant::now();
    let run = run_bin(
        &["validate_changes_collection"],
        &monitor_env(&proxy.url, &bid),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_cap_holds_for_the_whole_run() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 10).await.bucket;
    for parallel in ["2", "5"] {
        let proxy = Proxy::start(&stack.edge).await;
        proxy.delay_all(Duration::from_millis(150));
        let mut e = monitor_env(&proxy.url, &bid);
        e.push(("PARALLEL_REQUESTS", parallel));
        let run = run_bin(&["validate_changes_collection"], &e).await;
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(proxy.count("/changeset"), 11);
        assert_eq!(
            proxy.max_in_flight().to_string(),
            parallel,
            "requests ran in parallel up to the cap"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_exit_2_naming_the_variable_and_send_nothing() {
    let stack = Stack::get();
    let proxy = Proxy::start(&stack.edge).await;
    proxy.expect_no_hits();
    let cases: &[(&str, &str)] = &[
        ("PARALLEL_REQUESTS", "0"),
        ("PARALLEL_REQUESTS", "abc"),
        ("REQUESTS_TIMEOUT_SECONDS", "-2"),
        ("REQUESTS_TIMEOUT_SECONDS", "soon"),
        ("REQUESTS_NB_RETRIES", "-1"),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0"),
        ("BUCKET", "../admin"),
        ("COLLECTION", "a/b"),
        ("OUTPUT", "yaml"),
        ("SENTRY_DSN", "not-a-dsn"),
    ];
    for (name, value) in cases {
        let run = run_bin(
            &["validate_changes_collection"],
            &[("SERVER", proxy.url.as_str()), (name, value)],
        )
        .await;
        assert_eq!(run.code, 2, "{name}={value}: {run:?}");
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "{name}={value}: one line: {}",
            run.stderr
        );
        assert!(run.stderr.contains(name), "{name}={value}: {}", run.stderr);
        assert_eq!(run.stdout, "");
    }
    for server in [
        "ftp://127.0.0.1/v1",
        "localhost:8888",
        "http://user:s3cret@127.0.0.1/v1",
    ] {
        let run = run_bin(&["validate_changes_collection"], &[("SERVER", server)]).await;
        assert_eq!(run.code, 2, "{server}: {run:?}");
        assert!(
            run.stderr.starts_with("error: invalid SERVER"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("s3cret"));
    }
    // Flags win over env, and are validated the same way.
    let run = run_bin(
        &["validate_changes_collection", "--parallel-requests", "0"],
        &[("SERVER", proxy.url.as_str()), ("PARALLEL_REQUESTS", "3")],
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("PARALLEL_REQUESTS"));
    assert!(
        proxy.requests().is_empty(),
        "no request was sent: {:?}",
        proxy.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_sends_exactly_one_sentry_event_without_the_password() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let (bid, targets) = monitored(&kinto, 2).await.split();
    claim(&kinto, &bid, 0, targets[1].1 + 5).await;
    let sentry = SentryListener::start().await;
    let password = "Pa55-marker-7731";
    let auth = format!("someone:{password}");
    let mut e = monitor_env(&stack.edge, &bid);
    e.push(("SENTRY_DSN", &sentry.dsn));
    e.push(("SENTRY_ENV", "test"));
    e.push(("AUTH", &auth));
    let run = run_bin(&["validate_changes_collection"], &e).await;
    assert_eq!(run.code, 1, "{run:?}");
    let events = sentry.events();
    assert_eq!(events.len(), 1, "{:#?}", sentry.envelopes());
    let event = &events[0];
    let payload: Value = event
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("message").is_some() || v.get("logentry").is_some())
        .expect("an event payload");
    assert_eq!(payload["tags"]["command"], "validate_changes_collection");
    assert_eq!(
        payload["tags"]["server"],
        format!("{}/", stack.edge.trim_end_matches('/'))
    );
    assert_eq!(payload["environment"], "test");
    let failures = payload["extra"]["failures"]
        .as_array()
        .expect("failures extra");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["collection"], "c0");
    assert!(event.contains("One of the collection did not validate."));
    sentry.assert_hides(&[password]);
    run.assert_hides(&[password]);

    // A healthy run sends nothing.
    let bid = monitored(&kinto, 1).await.bucket;
    let sentry = SentryListener::start().await;
    sentry.expect_no_hits();
    let mut e = monitor_env(&stack.edge, &bid);
    e.push(("SENTRY_DSN", &sentry.dsn));
    let run = run_bin(&["validate_changes_collection"], &e).await;
    assert_eq!(run.code, 0);
    assert!(sentry.events().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_published_with_and_without_review_validate() {
    let stack = Stack::get();
    let reviewed = unique("reviewed");
    let direct = unique("direct");
    let records: Vec<Value> = (0..30).map(|i| json!({"id": format!("r{i:02}")})).collect();
    let main_ts = stack.publish("main-workspace", &reviewed, &records).await;
    let preview_ts = stack
        .editor()
        .records_timestamp("main-preview", &reviewed)
        .await;
    let blocklists_ts = stack.publish("staging", &direct, &records[..3]).await;
    let (bid, cid) = stack
        .scratch_monitor(&[
            ("main", &reviewed, main_ts),
            ("main-preview", &reviewed, preview_ts),
            ("blocklists", &direct, blocklists_ts),
        ])
        .await;
    // Behind the CDN's edge on /v1, and behind /v2 (git-reader), which serves changesets only.
    for server in [&stack.edge, &stack.v2] {
        let run = run_bin(
            &["validate_changes_collection"],
            &[
                ("SERVER", server.as_str()),
                ("BUCKET", &bid),
                ("COLLECTION", &cid),
            ],
        )
        .await;
        assert_eq!(run.code, 0, "{server}: {run:?}");
        assert_eq!(
            run.lines(),
            vec![
                format!("Etag OK for blocklists/{direct} : {blocklists_ts}"),
                format!("Etag OK for main/{reviewed} : {main_ts}"),
                format!("Etag OK for main-preview/{reviewed} : {preview_ts}"),
            ],
            "{server}"
        );
    }
}
