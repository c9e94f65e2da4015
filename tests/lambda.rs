//! Lambda mode end to end: the real binary as a custom runtime's `bootstrap`, polling a loopback
//! Runtime API (`support::lambda`), running `validate_changes_collection` against the real Kinto
//! stack, and posting back the response, an error with its `errorType`, or an init error.

mod support;

use serde_json::{json, Value};
use support::data::{claim, monitor_env, monitored, monitored_private};
use support::lambda::{
    Bootstrap, PostKind, RuntimeApi, FUNCTION_ARN, FUNCTION_NAME, FUNCTION_VERSION,
    INVOCATION_TIMEOUT,
};
use support::proxy::{Fault, Proxy};
use support::sentry::SentryListener;
use support::{run_bin, unique, Kinto, Stack};

/// A public monitored bucket whose first entry claims a timestamp its collection does not have.
async fn mismatched(kinto: &Kinto) -> String {
    let bid = monitored(kinto, 2).await.bucket;
    let ts = kinto.records_timestamp(&bid, "c1").await;
    claim(kinto, &bid, 0, ts + 7).await;
    bid
}

fn without_duration(mut doc: Value) -> Value {
    let duration = doc
        .as_object_mut()
        .and_then(|d| d.remove("duration_seconds"));
    assert!(duration.is_some_and(|d| d.is_f64() || d.is_u64()), "{doc}");
    doc
}

/// The JSON payload of a Sentry envelope's event item.
fn event_payload(envelope: &str) -> Value {
    envelope
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("extra").is_some())
        .unwrap_or_else(|| panic!("no event payload in {envelope}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_run_posts_the_same_document_as_the_clis_json_for_both_handler_forms() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 3).await.bucket;
    let env = monitor_env(&stack.server, &bid);
    let cli = run_bin(&["validate_changes_collection", "--json"], &env).await;
    assert_eq!(cli.code, 0, "{cli:?}");
    let cli_text = run_bin(&["validate_changes_collection"], &env).await;

    for handler in [
        "validate_changes_collection",
        "aws_lambda.validate_changes_collection",
    ] {
        let api = RuntimeApi::start(None).await;
        let lambda = Bootstrap::start(&api, handler, &env);
        let id = api.invoke(&json!({}));
        let post = api.outcome(&id).await;
        assert_eq!(
            without_duration(post.response().clone()),
            without_duration(cli.json()),
            "{handler}: stderr {}",
            lambda.stderr()
        );
        // The logs (stdout, CloudWatch in Lambda) hold the original's lines.
        assert_eq!(lambda.stdout(), cli_text.stdout, "{handler}");
        assert_eq!(api.posts().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_posts_a_validation_error_after_sentry_got_the_event_with_the_request_id() {
    let stack = Stack::get();
    let bid = mismatched(&stack.editor()).await;
    let sentry = SentryListener::start().await;
    let api = RuntimeApi::start(Some(&sentry)).await;
    let password = "Ev3nt-pa55-marker";
    let mut env = monitor_env(&stack.server, &bid);
    env.push(("SENTRY_DSN", &sentry.dsn));
    let _lambda = Bootstrap::start(&api, "validate_changes_collection", &env);
    // Credentials given by the event are scrubbed like those from the environment.
    let id = api.invoke(&json!({"auth": format!("someone:{password}")}));
    let post = api.outcome(&id).await;

    assert_eq!(post.kind, PostKind::Error);
    assert_eq!(
        post.error(),
        ("ValidationError", "One of the collection did not validate.")
    );
    assert_eq!(
        post.sentry_events_before, 1,
        "the Sentry event arrived before the error was posted"
    );
    let events = sentry.events();
    assert_eq!(events.len(), 1, "{:#?}", sentry.envelopes());
    let event = event_payload(&events[0]);
    assert_eq!(event["extra"]["aws_request_id"], json!(id));
    assert_eq!(event["extra"]["function_name"], FUNCTION_NAME);
    assert_eq!(event["extra"]["function_version"], FUNCTION_VERSION);
    assert_eq!(event["extra"]["invoked_function_arn"], FUNCTION_ARN);
    let remaining = event["extra"]["remaining_time_ms"]
        .as_u64()
        .expect("remaining_time_ms");
    assert!(
        remaining > 0 && remaining <= INVOCATION_TIMEOUT.as_millis() as u64,
        "{remaining}"
    );
    assert_eq!(event["tags"]["command"], "validate_changes_collection");
    assert_eq!(event["extra"]["failures"][0]["collection"], "c0");
    sentry.assert_hides(&[password]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_keys_override_env_and_scheduled_or_non_object_events_fall_back_to_env() {
    let stack = Stack::get();
    let good = monitored(&stack.editor(), 2).await.bucket;
    let bad = mismatched(&stack.editor()).await;
    let proxy = Proxy::start(&stack.server).await;
    let api = RuntimeApi::start(None).await;
    let lambda = Bootstrap::start(
        &api,
        "validate_changes_collection",
        &monitor_env(&stack.server, &good),
    );

    // `server` and `bucket` from the event win over SERVER and BUCKET.
    let overridden = api.invoke(&json!({"server": proxy.url, "bucket": bad}));
    let post = api.outcome(&overridden).await;
    assert_eq!(post.error().0, "ValidationError", "{}", lambda.stderr());
    assert_eq!(
        proxy.count(&format!("/buckets/{bad}/collections/mon/changeset")),
        1
    );

    // An EventBridge scheduled event and a non-object event carry no settings: env is used.
    let scheduled = json!({
        "version": "0", "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
        "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "time": "2026-11-22T22:00:00Z", "region": "eu-central-1",
        "resources": ["arn:aws:events:eu-central-1:123456789012:rule/rsl-every-10-minutes"],
        "detail": {}
    });
    for event in [scheduled, json!("run"), json!(null)] {
        let id = api.invoke(&event);
        let doc = api.outcome(&id).await.response().clone();
        assert_eq!(doc["status"], "ok", "{event}");
        let buckets: Vec<&Value> = doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["bucket"])
            .collect();
        assert_eq!(buckets, vec![&json!(good), &json!(good)], "{event}");
    }
    assert_eq!(
        proxy.requests().len(),
        3,
        "only the first invocation used the event's server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_in_one_process_are_independent() {
    let stack = Stack::get();
    let private = monitored_private(&stack.editor(), 1).await.bucket;
    let bad = mismatched(&stack.editor()).await;
    let sentry = SentryListener::start().await;
    let api = RuntimeApi::start(Some(&sentry)).await;
    let mut env = monitor_env(&stack.server, &bad);
    env.push(("SENTRY_DSN", &sentry.dsn));
    let lambda = Bootstrap::start(&api, "validate_changes_collection", &env);

    // 1. The editor's credentials, from the event, read the private bucket.
    let first = api.invoke(&json!({"auth": stack.editor, "bucket": private}));
    let doc = api.outcome(&first).await.response().clone();
    assert_eq!(doc["totals"]["ok"], 1, "{}", lambda.stderr());

    // 2. Without them, the same bucket cannot be read: the first event's auth did not stay.
    let second = api.invoke(&json!({"bucket": private}));
    let post = api.outcome(&second).await;
    let (error_type, message) = post.error();
    assert_eq!(error_type, "HttpError");
    assert!(
        message.contains(&format!("/buckets/{private}/collections/mon/changeset"))
            && message.contains("HTTP 401"),
        "{message}"
    );

    // 3. Nor did its bucket: env's BUCKET is used again.
    let third = api.invoke(&json!({}));
    let post = api.outcome(&third).await;
    assert_eq!(post.error().0, "ValidationError");

    // One Sentry event per failed invocation, each with its own request id only.
    assert_eq!(post.sentry_events_before, 2);
    let events = sentry.events();
    assert_eq!(events.len(), 2, "{:#?}", sentry.envelopes());
    for (envelope, id) in events.iter().zip([&second, &third]) {
        assert_eq!(
            event_payload(envelope)["extra"]["aws_request_id"],
            json!(id)
        );
        assert!(!envelope.contains(&first));
    }
    assert!(!events[1].contains(&second));
    let editor_password = stack.editor.split_once(':').unwrap().1;
    sentry.assert_hides(&[&format!("{}:{editor_password}", "editor")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_values_of_the_wrong_type_are_a_config_error_and_nothing_is_sent() {
    let stack = Stack::get();
    let good = monitored(&stack.editor(), 1).await.bucket;
    let proxy = Proxy::start(&stack.server).await;
    let api = RuntimeApi::start(None).await;
    let _lambda = Bootstrap::start(
        &api,
        "validate_changes_collection",
        &monitor_env(&proxy.url, &good),
    );

    let cases = [
        (
            json!({"server": 8888}),
            "invalid event key \"server\": must be a string (it sets SERVER), got a number",
        ),
        (
            json!({"bucket": ["a", "b"]}),
            "invalid event key \"bucket\": must be a string (it sets BUCKET), got an array",
        ),
        // Event values are validated like env values.
        (
            json!({"collection": "../admin"}),
            "invalid COLLECTION: \"../admin\" is not a Kinto id (letters, digits, '-' and '_')",
        ),
    ];
    for (event, expected) in cases {
        let id = api.invoke(&event);
        let post = api.outcome(&id).await;
        assert_eq!(post.error(), ("ConfigError", expected), "{event}");
    }
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());

    // The process goes on serving.
    let id = api.invoke(&json!({}));
    assert_eq!(api.outcome(&id).await.response()["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_failures_post_http_and_incomplete_errors() {
    let stack = Stack::get();
    let bid = monitored(&stack.editor(), 2).await.bucket;
    let proxy = Proxy::start(&stack.server).await;
    let api = RuntimeApi::start(None).await;
    let mut env = monitor_env(&proxy.url, &bid);
    env.push(("REQUESTS_NB_RETRIES", "0"));
    let _lambda = Bootstrap::start(&api, "validate_changes_collection", &env);

    // One collection cannot be read: the report is incomplete.
    proxy.fail("/collections/c1/changeset", vec![Fault::Status(503, None)]);
    let id = api.invoke(&json!({}));
    let post = api.outcome(&id).await;
    let (error_type, message) = post.error();
    assert_eq!(error_type, "IncompleteError");
    assert!(
        message.starts_with("Could not read 1 collection(s): GET "),
        "{message}"
    );

    // The monitor collection cannot be read: the run stops.
    proxy.fail("/collections/mon/changeset", vec![Fault::Reset]);
    let id = api.invoke(&json!({}));
    let post = api.outcome(&id).await;
    let (error_type, message) = post.error();
    assert_eq!(error_type, "HttpError");
    assert!(
        message.contains(&format!(
            "{}/buckets/{bid}/collections/mon/changeset",
            proxy.url
        )),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_or_missing_handler_posts_an_init_error_and_exits_2() {
    for handler in ["aws_lambda.validate_everything", ""] {
        let api = RuntimeApi::start(None).await;
        let mut lambda = Bootstrap::start(&api, handler, &[]);
        assert_eq!(
            lambda.exit_code().await,
            2,
            "{handler:?}: {}",
            lambda.stderr()
        );
        let post = api.init_error().await;
        let (error_type, message) = post.error();
        assert_eq!(error_type, "Runtime.HandlerNotFound");
        assert_eq!(
            post.error_type_header.as_deref(),
            Some("Runtime.HandlerNotFound")
        );
        assert!(message.contains("validate_changes_collection"), "{message}");
        if !handler.is_empty() {
            assert!(
                message.starts_with("unknown handler \"aws_lambda.validate_everything\""),
                "{message}"
            );
        }
        assert_eq!(api.polls(), 0, "no event was taken");
        assert_eq!(api.posts().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_environment_posts_a_config_init_error() {
    let cases = [
        (
            ("SENTRY_DSN", "not-a-dsn"),
            "invalid SENTRY_DSN: not a valid Sentry DSN",
        ),
        (
            ("AWS_LAMBDA_FUNCTION_NAME", ""),
            "AWS_LAMBDA_FUNCTION_NAME is not set: Lambda sets it for every function",
        ),
    ];
    for (setting, expected) in cases {
        let api = RuntimeApi::start(None).await;
        let mut lambda = Bootstrap::start(&api, "validate_changes_collection", &[setting]);
        assert_eq!(lambda.exit_code().await, 2, "{setting:?}");
        assert_eq!(api.init_error().await.error(), ("ConfigError", expected));
        assert_eq!(api.polls(), 0);
    }
}

/// The Lambda zip that `make test` builds with the release pipeline (`RSL_TEST_LAMBDA_ZIP`): its
/// `bootstrap`, linked against glibc 2.34 by zig, serves invocations like the test build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zipped_bootstrap_serves_invocations() {
    let zip = std::env::var("RSL_TEST_LAMBDA_ZIP").expect(
        "RSL_TEST_LAMBDA_ZIP is not set: run the tests with `make test`, which builds the Lambda zip",
    );
    let stack = Stack::get();
    let good = monitored(&stack.editor(), 2).await.bucket;
    let bad = mismatched(&stack.editor()).await;
    let dir = std::env::temp_dir().join(unique("lambda-zip"));
    let unzip = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-e", &zip])
        .arg(&dir)
        .status()
        .expect("python3 runs");
    assert!(unzip.success(), "extract {zip}");
    let bootstrap = dir.join("bootstrap");
    // Python's zipfile does not restore modes; the zip's own mode is checked by lambda_zip.py.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();

    let api = RuntimeApi::start(None).await;
    let lambda = Bootstrap::start_binary(
        &bootstrap,
        &api,
        "aws_lambda.validate_changes_collection",
        &monitor_env(&stack.server, &good),
    );
    let ok = api.invoke(&json!({}));
    let failing = api.invoke(&json!({"bucket": bad}));
    let post = api.outcome(&ok).await;
    assert_eq!(post.response()["totals"]["ok"], 2, "{}", lambda.stderr());
    let post = api.outcome(&failing).await;
    assert_eq!(
        post.error(),
        ("ValidationError", "One of the collection did not validate.")
    );
    drop(lambda);
    std::fs::remove_dir_all(&dir).unwrap();
}
