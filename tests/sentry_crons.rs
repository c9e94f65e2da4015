//! Sentry Crons check-ins end to end: the real binary, run against the real Kinto stack, reports
//! each run to the monitor `SENTRY_MONITOR_SLUG` names, on the loopback Sentry listener
//! (`support::sentry`), whose envelopes are parsed as Sentry's ingest parses them: `in_progress`
//! when the run starts, then `ok` (exit 0) or `error` (exit 1, 2 with a readable monitor, 3, a
//! panic) under the same `check_in_id`, with the run's duration. Both front doors: the command
//! line and Lambda (each invocation is one run).

mod support;

use std::time::Instant;

use serde_json::{json, Value};
use support::data::{claim, monitor_env, monitored};
use support::lambda::{Bootstrap, PostKind, RuntimeApi};
use support::sentry::SentryListener;
use support::{run_bin, Kinto, Stack};

const SLUG: &str = "rsl-validate_changes-10min";

/// A public monitored bucket whose first entry claims a timestamp its collection does not have.
async fn mismatched(kinto: &Kinto) -> String {
    let bid = monitored(kinto, 2).await.bucket;
    let ts = kinto.records_timestamp(&bid, "c1").await;
    claim(kinto, &bid, 0, ts + 7).await;
    bid
}

/// The two check-ins of one run, as received: its `in_progress`, then its end with this status.
/// Both name the monitor and carry the same id and environment; only the end has a duration,
/// returned in seconds.
fn one_run(check_ins: &[Value], status: &str) -> f64 {
    assert_eq!(check_ins.len(), 2, "{check_ins:#?}");
    let (start, end) = (&check_ins[0], &check_ins[1]);
    assert_eq!(start["status"], "in_progress", "{start}");
    assert_eq!(end["status"], status, "{end}");
    let id = start["check_in_id"].as_str().expect("a check_in_id");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(end["check_in_id"], id);
    for check_in in [start, end] {
        assert_eq!(check_in["monitor_slug"], SLUG);
        assert!(check_in["environment"].is_string(), "{check_in}");
    }
    assert_eq!(end["environment"], start["environment"]);
    assert!(start.get("duration").is_none(), "{start}");
    let duration = end["duration"].as_f64().expect("the end's duration");
    assert!(duration > 0.0, "{end}");
    duration
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_run_checks_in_in_progress_then_ok_with_its_duration_and_the_schedule() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 2).await.bucket;
    let sentry = SentryListener::start().await;
    let password = "Cr0ns-pa55-marker";
    let auth = format!("someone:{password}");
    let mut env = monitor_env(&stack.edge, &bid);
    env.extend([
        ("SENTRY_DSN", sentry.dsn.as_str()),
        ("SENTRY_ENV", "crons-test"),
        ("SENTRY_MONITOR_SLUG", SLUG),
        ("SENTRY_MONITOR_SCHEDULE", "*/10 * * * *"),
        ("AUTH", &auth),
    ]);
    let started = Instant::now();
    let run = run_bin(&["validate_changes_collection"], &env).await;
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(run.code, 0, "{run:?}");

    let check_ins = sentry.check_ins();
    let duration = one_run(&check_ins, "ok");
    assert!(duration < wall, "{duration} s in a run of {wall} s");
    for check_in in &check_ins {
        assert_eq!(check_in["environment"], "crons-test");
        assert_eq!(
            check_in["monitor_config"],
            json!({"schedule": {"type": "crontab", "value": "*/10 * * * *"}})
        );
    }
    // One envelope per check-in, and no event for a passing run.
    assert_eq!(sentry.envelopes().len(), 2, "{:#?}", sentry.envelopes());
    assert!(sentry.events().is_empty());
    sentry.assert_hides(&[password]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_findings_checks_in_error_besides_its_error_event() {
    let stack = Stack::get();
    let bid = mismatched(&stack.editor()).await;
    let sentry = SentryListener::start().await;
    let mut env = monitor_env(&stack.edge, &bid);
    env.extend([
        ("SENTRY_DSN", sentry.dsn.as_str()),
        ("SENTRY_MONITOR_SLUG", SLUG),
    ]);
    let run = run_bin(&["validate_changes_collection"], &env).await;
    assert_eq!(run.code, 1, "{run:?}");

    let check_ins = sentry.check_ins();
    one_run(&check_ins, "error");
    assert!(check_ins[0].get("monitor_config").is_none(), "no schedule");
    assert_eq!(sentry.events().len(), 1, "{:#?}", sentry.envelopes());
    // Without SENTRY_ENV, check-ins carry the environment the events carry.
    let event: Value = sentry.events()[0]
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("extra").is_some())
        .expect("an event payload");
    assert_eq!(check_ins[1]["environment"], event["environment"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_that_cannot_complete_check_in_error_an_unreachable_server_and_a_panic() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 1).await.bucket;
    let cases = [
        ("unreachable", vec![("SERVER", "http://127.0.0.1:9/v1")]),
        (
            "panic",
            vec![("SERVER", stack.edge.as_str()), ("RSL_DEBUG_PANIC", "run")],
        ),
    ];
    for (case, extra) in cases {
        let sentry = SentryListener::start().await;
        let mut env = monitor_env(&stack.edge, &bid);
        env.extend([
            ("SENTRY_DSN", sentry.dsn.as_str()),
            ("SENTRY_MONITOR_SLUG", SLUG),
            ("REQUESTS_NB_RETRIES", "0"),
        ]);
        env.extend(extra);
        let run = run_bin(&["validate_changes_collection"], &env).await;
        assert_eq!(run.code, 3, "{case}: {run:?}");
        one_run(&sentry.check_ins(), "error");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_with_a_readable_monitor_exit_2_and_check_in_error() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 1).await.bucket;
    // A command's own setting, and a global one read before the run starts.
    for (name, value) in [("COLLECTION", "../admin"), ("OUTPUT", "yaml")] {
        let sentry = SentryListener::start().await;
        let mut env = monitor_env(&stack.edge, &bid);
        env.extend([
            ("SENTRY_DSN", sentry.dsn.as_str()),
            ("SENTRY_MONITOR_SLUG", SLUG),
            (name, value),
        ]);
        let run = run_bin(&["validate_changes_collection"], &env).await;
        assert_eq!(run.code, 2, "{name}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.starts_with(&format!("error: invalid {name}: ")),
            "{}",
            run.stderr
        );
        one_run(&sentry.check_ins(), "error");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_slug_a_passing_run_sends_nothing_to_sentry() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 1).await.bucket;
    let sentry = SentryListener::start().await;
    sentry.expect_no_hits();
    let mut env = monitor_env(&stack.edge, &bid);
    env.push(("SENTRY_DSN", &sentry.dsn));
    let run = run_bin(&["validate_changes_collection"], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_monitor_setting_exits_2_with_one_line_and_sends_nothing() {
    let stack = Stack::get();
    let sentry = SentryListener::start().await;
    sentry.expect_no_hits();
    let long = "a".repeat(51);
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("SENTRY_MONITOR_SLUG", "Nightly Check")],
            "error: invalid SENTRY_MONITOR_SLUG: \"Nightly Check\" is not a Sentry monitor slug \
             (lowercase letters, digits, '-' and '_', at most 50)",
        ),
        (
            &[("SENTRY_MONITOR_SLUG", &long)],
            "error: invalid SENTRY_MONITOR_SLUG: ",
        ),
        (
            &[("SENTRY_MONITOR_SLUG", "rsl/validate")],
            "error: invalid SENTRY_MONITOR_SLUG: ",
        ),
        (
            &[("SENTRY_DSN", ""), ("SENTRY_MONITOR_SLUG", SLUG)],
            "error: invalid SENTRY_MONITOR_SLUG: check-ins go to SENTRY_DSN, which is not set",
        ),
        (
            &[("SENTRY_MONITOR_SCHEDULE", "0 * * * *")],
            "error: invalid SENTRY_MONITOR_SCHEDULE: it needs SENTRY_MONITOR_SLUG, which is not set",
        ),
        (
            &[
                ("SENTRY_MONITOR_SLUG", SLUG),
                ("SENTRY_MONITOR_SCHEDULE", "every 10 minutes"),
            ],
            "error: invalid SENTRY_MONITOR_SCHEDULE: \"every 10 minutes\" is not a crontab \
             schedule (minute hour day-of-month month day-of-week)",
        ),
    ];
    for (settings, expected) in cases {
        let mut env = vec![
            ("SERVER", stack.edge.as_str()),
            ("SENTRY_DSN", sentry.dsn.as_str()),
        ];
        env.extend(settings.iter().copied());
        let run = run_bin(&["validate_changes_collection"], &env).await;
        assert_eq!(run.code, 2, "{settings:?}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.starts_with(expected), "{}", run.stderr);
        assert_eq!(run.stdout, "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lambda_invocation_checks_in_on_its_own_before_its_outcome_is_posted() {
    let stack = Stack::get();
    let good = monitored(&stack.editor(), 1).await.bucket;
    let bad = mismatched(&stack.editor()).await;
    let sentry = SentryListener::start().await;
    let api = RuntimeApi::start(Some(&sentry)).await;
    let mut env = monitor_env(&stack.server, &good);
    env.extend([
        ("SENTRY_DSN", sentry.dsn.as_str()),
        ("SENTRY_MONITOR_SLUG", SLUG),
    ]);
    let lambda = Bootstrap::start(&api, "validate_changes_collection", &env);

    let first = api.invoke(&json!({}));
    let post = api.outcome(&first).await;
    assert_eq!(post.kind, PostKind::Response, "{}", lambda.stderr());
    // Flushed before the response was posted.
    let after_first = sentry.check_ins();
    one_run(&after_first, "ok");

    let second = api.invoke(&json!({"bucket": bad}));
    assert_eq!(api.outcome(&second).await.error().0, "ValidationError");
    let check_ins = sentry.check_ins();
    assert_eq!(check_ins.len(), 4, "{check_ins:#?}");
    one_run(&check_ins[2..], "error");
    assert_ne!(
        check_ins[2]["check_in_id"], check_ins[0]["check_in_id"],
        "each invocation is a run of its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_init_errors_check_in_error_only_when_the_monitor_is_readable() {
    // A bad slug: an init error naming it, and nothing sent.
    let sentry = SentryListener::start().await;
    sentry.expect_no_hits();
    let api = RuntimeApi::start(None).await;
    let mut lambda = Bootstrap::start(
        &api,
        "validate_changes_collection",
        &[
            ("SENTRY_DSN", &sentry.dsn),
            ("SENTRY_MONITOR_SLUG", "Validate Changes"),
        ],
    );
    let post = api.init_error().await;
    let (error_type, message) = post.error();
    assert_eq!(error_type, "ConfigError");
    assert!(
        message.starts_with("invalid SENTRY_MONITOR_SLUG: \"Validate Changes\""),
        "{message}"
    );
    assert_eq!(lambda.exit_code().await, 2);

    // A readable monitor and another bad process-wide setting: the failed start checks in.
    let sentry = SentryListener::start().await;
    let api = RuntimeApi::start(None).await;
    let mut lambda = Bootstrap::start(
        &api,
        "validate_changes_collection",
        &[
            ("SENTRY_DSN", &sentry.dsn),
            ("SENTRY_MONITOR_SLUG", SLUG),
            ("OUTPUT", "yaml"),
        ],
    );
    let post = api.init_error().await;
    assert_eq!(post.error().0, "ConfigError");
    assert!(post.error().1.starts_with("invalid OUTPUT: "), "{post:?}");
    assert_eq!(lambda.exit_code().await, 2);
    one_run(&sentry.check_ins(), "error");
}
