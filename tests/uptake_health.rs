//! `uptake_health` end to end: the real binary against a loopback server speaking Redash's query
//! results API (`tests/support/redash.rs`), serving the seed README's example figures, and a
//! loopback Sentry where the test says so. No Kinto server is involved.

mod support;

use serde_json::Value;
use support::redash::{row, Redash, Row, Scripted, QUERY_ID};
use support::sentry::SentryListener;
use support::{run_bin, unique, Run};

/// The original README's example output (its `📅` shown there through a wrong encoding).
const SEED_EXAMPLE: &str = "\
📅 From 2019-03-12 00:00:00 to 2019-03-12 23:59:59\n\
blocklists/addons                        (good: 1,027,245 bad:    11,081)               1.07%\n\
blocklists/plugins                       (good:   943,780 bad:     6,149)               0.65%\n\
main/fxmonitor-breaches                  (good:   840,611 bad:     1,878)               0.22%\n\
main/onboarding                          (good:   887,404 bad:        38)               0.00%\n\
main/sites-classification                (good:   887,525 bad:        60)               0.01%\n\
main/tippytop                            (good:   828,329 bad:   132,338)              13.78%\n\
settings-changes-monitoring              (good: 3,314,418 bad:    57,722)               1.71%\n\
\n\
1 settings have a bad ratio over threshold.\n\
\n\
main/tippytop\n\
\tnetwork_error    13.32% (127,922)\n\
\tsync_error       0.42% (4,036)\n\
\tsign_retry_error 0.02% (222)\n\
\tunknown_error    0.01% (122)\n\
\tsign_error       0.00% (36)\n";

/// The key the tests give Redash: it must never show anywhere but in the request itself.
const KEY: &str = "K3y-m4rker-5a6b7c";

const DAY_START: u64 = 1_552_348_800; // 2019-03-12 00:00:00 UTC
const DAY_END: u64 = 1_552_435_199; // 2019-03-12 23:59:59 UTC

/// Rows that give the seed README's figures, in the query's order (by source), with the sources
/// the default settings exclude and skip around them.
fn seed_rows() -> Vec<Row> {
    let (a, b) = (DAY_START, DAY_END);
    vec![
        row(
            "blocklists/addons",
            a,
            b - 2,
            &[
                ("up_to_date", 1_000_000),
                ("success", 27_000),
                ("backoff", 245),
                ("network_error", 10_000),
                ("sync_error", 1_081),
            ],
        ),
        row(
            "blocklists/plugins",
            a + 3,
            b,
            &[
                ("up_to_date", 943_000),
                ("success", 780),
                ("network_error", 6_000),
                ("sign_error", 149),
            ],
        ),
        row("main/empty", a + 60, b - 60, &[]),
        row(
            "main/fxmonitor-breaches",
            a + 1,
            b,
            &[
                ("up_to_date", 840_000),
                ("success", 611),
                ("network_error", 1_878),
            ],
        ),
        row(
            "main/onboarding",
            a,
            b,
            &[("up_to_date", 887_404), ("sync_error", 38)],
        ),
        row(
            "main/sites-classification",
            a,
            b - 1,
            &[
                ("up_to_date", 887_500),
                ("pref_disabled", 25),
                ("network_error", 60),
            ],
        ),
        row(
            "main/tiny",
            a + 100,
            b - 100,
            &[("up_to_date", 400), ("network_error", 100)],
        ),
        row(
            "main/tippytop",
            a,
            b,
            &[
                ("up_to_date", 800_000),
                ("success", 28_329),
                ("sign_error", 36),
                ("sign_retry_error", 222),
                ("sync_error", 4_036),
                ("network_error", 127_922),
                ("unknown_error", 122),
            ],
        ),
        row(
            "main/url-classifier-skip-urls",
            a,
            b,
            &[("up_to_date", 1_000), ("network_error", 9_000)],
        ),
        row(
            "normandy/recipes",
            a,
            b,
            &[("up_to_date", 5_000), ("sync_error", 5_000)],
        ),
        row(
            "settings-changes-monitoring",
            a,
            b,
            &[
                ("up_to_date", 3_300_000),
                ("success", 14_418),
                ("network_error", 50_000),
                ("offline_error", 7_722),
            ],
        ),
        row(
            "shield-recipe-client/sample",
            a,
            b,
            &[("up_to_date", 10), ("parse_error", 20_000)],
        ),
    ]
}

/// The healthy variant: every source under the default threshold.
fn healthy_rows() -> Vec<Row> {
    let (a, b) = (DAY_START, DAY_END);
    vec![
        row(
            "blocklists/addons",
            a,
            b,
            &[("up_to_date", 1_000_000), ("network_error", 10_000)],
        ),
        row(
            "main/tippytop",
            a,
            b,
            &[("up_to_date", 990_000), ("network_error", 19_999)],
        ),
    ]
}

fn env<'a>(redash: &'a Redash, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("REDASH_API_QUERY_URL", redash.query_url.as_str()),
        ("REDASH_API_KEY", KEY),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.01"),
    ];
    env.extend_from_slice(extra);
    env
}

async fn uptake(redash: &Redash, extra: &[(&str, &str)]) -> Run {
    run_bin(&["uptake_health"], &env(redash, extra)).await
}

fn expected_request() -> String {
    format!("GET /api/queries/{QUERY_ID}/results.json?api_key={KEY}")
}

/// The query URL as errors show it.
fn shown_url(redash: &Redash) -> String {
    format!("{}?api_key=[redacted]", redash.query_url)
}

fn assert_no_key(run: &Run) {
    run.assert_hides(&["m4rker"]);
}

#[tokio::test]
async fn the_seed_example_prints_the_originals_report_and_exits_1() {
    let redash = Redash::start(KEY, &seed_rows()).await;
    let run = uptake(&redash, &[]).await;
    assert_eq!(run.stdout, SEED_EXAMPLE);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: 1 settings have a bad ratio over threshold.\n"
    );
    assert_eq!(redash.requests(), vec![expected_request()]);
}

#[tokio::test]
async fn the_kinto_server_settings_do_not_matter_to_uptake_health() {
    // The run's client is built from the shared request settings alone: a bad SERVER (which
    // uptake_health never reads) does not stop it.
    let redash = Redash::start(KEY, &seed_rows()).await;
    let run = uptake(&redash, &[("SERVER", "not a url")]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, SEED_EXAMPLE);
    assert_eq!(redash.requests(), vec![expected_request()]);
}

#[tokio::test]
async fn a_healthy_result_prints_every_source_and_exits_0() {
    let redash = Redash::start(KEY, &healthy_rows()).await;
    let run = run_bin(&["uptake-health"], &env(&redash, &[])).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "📅 From 2019-03-12 00:00:00 to 2019-03-12 23:59:59\n\
         blocklists/addons                        (good: 1,000,000 bad:    10,000)               0.99%\n\
         main/tippytop                            (good:   990,000 bad:    19,999)               1.98%\n"
    );
    assert_eq!(run.stderr, "");
    assert_eq!(redash.requests(), vec![expected_request()]);
}

#[tokio::test]
async fn connection_errors_503_and_504_are_retried_then_the_report_is_printed() {
    let redash = Redash::start(KEY, &seed_rows()).await;
    redash.script(vec![
        Scripted::Status(503),
        Scripted::Reset,
        Scripted::Status(504),
    ]);
    let run = uptake(&redash, &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, SEED_EXAMPLE);
    assert_eq!(redash.requests(), vec![expected_request(); 4]);

    // A Redash that stays unavailable: 1 attempt + REQUESTS_NB_RETRIES, then exit 3.
    let redash = Redash::start(KEY, &seed_rows()).await;
    redash.script(vec![Scripted::Status(503); 3]);
    let run = uptake(&redash, &[("REQUESTS_NB_RETRIES", "2")]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(redash.requests().len(), 3);
    assert_eq!(
        run.stderr,
        format!(
            "error: GET {} failed after 3 attempts: HTTP 503\n",
            shown_url(&redash)
        )
    );
    assert_eq!(run.stdout, "");
}

#[tokio::test]
async fn other_errors_of_redash_are_not_retried_and_exit_3() {
    for status in [500, 502, 429] {
        let redash = Redash::start(KEY, &seed_rows()).await;
        redash.script(vec![Scripted::Status(status)]);
        let run = uptake(&redash, &[]).await;
        assert_eq!(run.code, 3, "{status}: {run:?}");
        assert_eq!(redash.requests().len(), 1, "{status} is not retried");
        assert_eq!(
            run.stderr,
            format!("error: GET {} failed: HTTP {status}\n", shown_url(&redash))
        );
        assert_eq!(run.stdout, "");
    }
}

#[tokio::test]
async fn a_refused_key_is_exit_3_and_the_key_never_shows() {
    let redash = Redash::start("the-right-key", &seed_rows()).await;
    // Redash answers an unknown key as any unauthenticated API call: 404 with a message.
    for args in [
        &["uptake_health", "-vv"][..],
        &["uptake_health", "--json"][..],
    ] {
        let run = run_bin(args, &env(&redash, &[])).await;
        assert_eq!(run.code, 3, "{run:?}");
        assert_no_key(&run);
        let message = format!(
            "GET {} failed: HTTP 404 (Couldn't find resource. Please login and try again.)",
            shown_url(&redash)
        );
        if args.contains(&"--json") {
            let doc = run.json();
            assert_eq!(doc["status"], "error");
            assert_eq!(doc["error"]["message"], message);
        } else {
            assert!(
                run.stderr.ends_with(&format!("error: {message}\n")),
                "{}",
                run.stderr
            );
            // The debug log names the request, without the key.
            assert!(
                run.stderr
                    .contains(&format!("[DEBUG] GET {}", shown_url(&redash))),
                "{}",
                run.stderr
            );
        }
    }
    assert_eq!(redash.requests().len(), 2, "not retried");

    // An authenticating proxy in front of Redash answers 401.
    let redash = Redash::start(KEY, &seed_rows()).await;
    redash.script(vec![Scripted::Status(401)]);
    let run = uptake(&redash, &[]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        run.stderr,
        format!("error: GET {} failed: HTTP 401\n", shown_url(&redash))
    );
    assert_eq!(redash.requests().len(), 1);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_one_line_error_exit_3_not_retried() {
    let redash = Redash::start(KEY, &seed_rows()).await;
    redash.script(vec![Scripted::Body(
        "<html>Redash is upgrading</html>".into(),
    )]);
    let run = uptake(&redash, &[]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "error: Malformed Redash query result from GET {}: not JSON (expected value at line 1 column 1)\n",
            shown_url(&redash)
        )
    );
    assert_eq!(run.stdout, "");
    assert_eq!(redash.requests().len(), 1);
}

/// Write `text` to a scratch file and return its path.
fn scratch_file(text: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}.json", unique("uptake")));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn a_saved_result_file_gives_the_same_report_without_redash() {
    let redash = Redash::start(KEY, &seed_rows()).await;
    redash.expect_no_hits();
    let path = scratch_file(&redash.document());
    // Redash is configured too: the file wins, and Redash is never asked.
    let run = uptake(&redash, &[("REDASH_RESULT_FILE", path.as_str())]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, SEED_EXAMPLE);
    assert!(redash.requests().is_empty());

    // Malformed or missing files: one line naming the file and the problem, exit 3.
    let document = redash.document();
    let cases = [
        (
            r#"{"query_result": {"data": {"columns": []}}}"#.to_string(),
            "no query_result.data.rows",
        ),
        (
            document.replacen("\"network_error\": 10000", "\"network_error\": \"lots\"", 1),
            "row 1 (blocklists/addons): the count of \"network_error\" is not a whole number >= 0: \"lots\"",
        ),
        ("not json".to_string(), "not JSON (expected ident at line 1 column 2)"),
    ];
    for (text, expected) in cases {
        let path = scratch_file(&text);
        let run = run_bin(&["uptake_health"], &[("REDASH_RESULT_FILE", path.as_str())]).await;
        assert_eq!(run.code, 3, "{run:?}");
        assert_eq!(
            run.stderr,
            format!("error: Malformed Redash query result in {path}: {expected}\n")
        );
        assert_eq!(run.stdout, "");
    }
    let missing = std::env::temp_dir()
        .join(unique("missing"))
        .to_string_lossy()
        .into_owned();
    let run = run_bin(&["uptake_health", "--redash-result-file", &missing], &[]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.starts_with(&format!(
            "error: Could not read REDASH_RESULT_FILE {missing}: "
        )),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1);
}

/// The source column of the report's lines (between the date line and the summary).
fn reported_sources(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn thresholds_by_source_and_by_default_decide_who_is_over() {
    let redash = Redash::start(KEY, &seed_rows()).await;
    let tolerant = uptake(
        &redash,
        &[(
            "SPECIFIC_ERROR_THRESHOLD_PERCENTAGES",
            "main/tippytop = 13.78; foo/bar=12",
        )],
    )
    .await;
    assert_eq!(
        tolerant.code, 0,
        "13.7756% is over 13.78 only when rounded: {tolerant:?}"
    );
    assert!(!tolerant.stdout.contains("over threshold"));

    let strict = uptake(
        &redash,
        &[
            ("DEFAULT_ERROR_THRESHOLD_PERCENT", "1"),
            (
                "SPECIFIC_ERROR_THRESHOLD_PERCENTAGES",
                "settings-changes-monitoring=1.75",
            ),
        ],
    )
    .await;
    assert_eq!(strict.code, 1, "{strict:?}");
    let tail: Vec<&str> = strict.stdout.split("\n\n").skip(1).collect();
    assert_eq!(
        tail,
        vec![
            "2 settings have a bad ratio over threshold.",
            "blocklists/addons\n\tnetwork_error    0.96% (10,000)\n\tsync_error       0.10% (1,081)",
            "main/tippytop\n\tnetwork_error    13.32% (127,922)\n\tsync_error       0.42% (4,036)\n\tsign_retry_error 0.02% (222)\n\tunknown_error    0.01% (122)\n\tsign_error       0.00% (36)\n",
        ]
    );
}

#[tokio::test]
async fn exclusion_globs_and_the_minimum_total_decide_who_is_checked() {
    let redash = Redash::start(KEY, &seed_rows()).await;
    let run = uptake(&redash, &[("EXCLUDE_SOURCES", "main/*, settings-*")]).await;
    assert_eq!(
        reported_sources(&run),
        vec![
            "blocklists/addons",
            "blocklists/plugins",
            "normandy/recipes",
            "shield-recipe-client/sample"
        ]
    );
    assert_eq!(run.code, 1, "normandy and shield are checked now: {run:?}");

    let run = uptake(
        &redash,
        &[
            ("MIN_TOTAL_ENTRIES", "950000"),
            ("EXCLUDE_SOURCES", "shield-recipe-client/[!a-r]*"),
        ],
    )
    .await;
    assert_eq!(
        reported_sources(&run),
        vec![
            "blocklists/addons",
            "main/tippytop",
            "settings-changes-monitoring"
        ]
    );
    let run = uptake(&redash, &[("MIN_TOTAL_ENTRIES", "0")]).await;
    assert!(
        reported_sources(&run).contains(&"main/tiny".to_string()),
        "{}",
        run.stdout
    );
    assert!(
        !reported_sources(&run).contains(&"main/empty".to_string()),
        "no events: skipped"
    );
}

#[tokio::test]
async fn verbose_explains_every_status_and_every_skip() {
    let redash = Redash::start(KEY, &seed_rows()).await;
    let run = uptake(&redash, &[("VERBOSE", "true")]).await;
    assert_eq!(run.code, 1, "{run:?}");
    for line in [
        "Skipping 'normandy/recipes' because it's excluded",
        "Skipping 'main/url-classifier-skip-urls' because it's excluded",
        "Skipping 'main/tiny' because exactly too few good+bad statuses (500 < 1000)",
        "Skipping 'main/empty' because exactly 0 good+bad statuses",
        "network_error           127,922 bad",
        "up_to_date            3,300,000 good",
        "custom_5_error                0 bad",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "{line:?} missing from:\n{}",
            run.stdout
        );
    }
    // The report's own lines are all there, in the same order.
    let report: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| SEED_EXAMPLE.lines().any(|s| s == *l))
        .collect();
    let mut expected: Vec<&str> = SEED_EXAMPLE.lines().collect();
    expected.retain(|l| !l.is_empty() && !l.starts_with('\t'));
    let report: Vec<&str> = report
        .into_iter()
        .filter(|l| !l.is_empty() && !l.starts_with('\t'))
        .collect();
    assert_eq!(report, expected);
    let flagged = run_bin(&["uptake_health", "--explain"], &env(&redash, &[])).await;
    assert_eq!(flagged.stdout, run.stdout);
}

#[tokio::test]
async fn json_output_carries_the_same_numbers() {
    let redash = Redash::start(KEY, &seed_rows()).await;
    let run = run_bin(&["uptake_health", "--json"], &env(&redash, &[])).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_no_key(&run);
    let doc = run.json();
    assert_eq!(doc["command"], "uptake_health");
    assert_eq!(doc["server"], redash.query_url.as_str());
    assert_eq!(doc["status"], "problems");
    assert_eq!(doc["period"]["from"], "2019-03-12 00:00:00");
    assert_eq!(doc["period"]["to"], "2019-03-12 23:59:59");
    assert_eq!(
        doc["totals"],
        serde_json::json!({"sources": 12, "checked": 7, "ok": 6, "over_threshold": 1, "skipped": 2, "excluded": 3})
    );
    assert_eq!(
        doc["error"]["message"],
        "1 settings have a bad ratio over threshold."
    );
    let results = doc["results"].as_array().unwrap();
    let by_source = |s: &str| results.iter().find(|r| r["source"] == s).unwrap().clone();
    let tippytop = by_source("main/tippytop");
    assert_eq!(tippytop["status"], "over_threshold");
    assert_eq!(tippytop["code"], "ERROR_RATE_OVER_THRESHOLD");
    assert_eq!(
        (tippytop["good"].as_u64(), tippytop["bad"].as_u64()),
        (Some(828_329), Some(132_338))
    );
    assert_eq!(
        format!("{:.2}", tippytop["percent"].as_f64().unwrap()),
        "13.78"
    );
    assert_eq!(tippytop["threshold_percent"].as_f64(), Some(2.0));
    let breakdown: Vec<(String, u64)> = tippytop["bad_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["status"].as_str().unwrap().to_string(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(breakdown[0], ("network_error".to_string(), 127_922));
    assert_eq!(breakdown.len(), 5);
    // Every text line has its numbers in JSON.
    let text = uptake(&redash, &[]).await;
    for item in results.iter().filter(|r| r["good"].is_u64()) {
        let line = format!(
            "{:40} (good:{:>10} bad:{:>10})",
            item["source"].as_str().unwrap(),
            thousands(item["good"].as_u64().unwrap()),
            thousands(item["bad"].as_u64().unwrap())
        );
        assert!(text.stdout.contains(&line), "{line}");
    }
    assert_eq!(by_source("main/tiny")["skip_reason"], "too_few_events");
    assert_eq!(by_source("normandy/recipes")["status"], "excluded");
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test]
async fn bad_settings_exit_2_naming_the_variable_and_nothing_is_requested() {
    let redash = Redash::start(KEY, &seed_rows()).await;
    redash.expect_no_hits();
    let with_key = format!("{}?api_key={KEY}", redash.query_url);
    let cases: &[(&str, &str)] = &[
        ("SPECIFIC_ERROR_THRESHOLD_PERCENTAGES", "main/x = five"),
        ("SPECIFIC_ERROR_THRESHOLD_PERCENTAGES", "main/x"),
        ("REDASH_API_QUERY_URL", with_key.as_str()),
        ("REDASH_API_QUERY_URL", "file:///etc/passwd"),
        ("REDASH_TIMEOUT_SECONDS", "0"),
        ("REDASH_TIMEOUT_SECONDS", "a minute"),
        ("MIN_TOTAL_ENTRIES", "-5"),
        ("DEFAULT_ERROR_THRESHOLD_PERCENT", "two"),
        ("DEFAULT_ERROR_THRESHOLD_PERCENT", "-1"),
        ("VERBOSE", "loud"),
        ("REQUESTS_NB_RETRIES", "many"),
    ];
    for (name, value) in cases {
        let run = uptake(&redash, &[(name, value)]).await;
        assert_eq!(run.code, 2, "{name}={value}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.starts_with(&format!("error: invalid {name}: ")),
            "{}",
            run.stderr
        );
        assert_eq!(run.stdout, "");
        assert_no_key(&run);
    }
    let run = run_bin(
        &["uptake_health"],
        &[("REDASH_API_QUERY_URL", redash.query_url.as_str())],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: invalid REDASH_API_KEY: missing"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        "error: invalid REDASH_API_KEY: missing: set the Redash API key (or REDASH_RESULT_FILE to read a saved result)"
    );
    let run = uptake(
        &redash,
        &[("SPECIFIC_ERROR_THRESHOLD_PERCENTAGES", "main/x = five")],
    )
    .await;
    assert_eq!(
        run.stderr,
        "error: invalid SPECIFIC_ERROR_THRESHOLD_PERCENTAGES: \"main/x = five\": \"five\" is not a number (for main/x)\n"
    );
    assert!(redash.requests().is_empty(), "{:?}", redash.requests());
}

/// The event payloads (not sessions) of every envelope received.
fn sentry_events(sentry: &SentryListener) -> Vec<Value> {
    sentry
        .events()
        .iter()
        .filter_map(|envelope| {
            envelope
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v.get("event_id").is_some() && v.get("platform").is_some())
        })
        .collect()
}

#[tokio::test]
async fn sentry_gets_one_message_per_source_over_threshold_and_never_the_key() {
    let redash = Redash::start(KEY, &seed_rows()).await;
    let sentry = SentryListener::start().await;
    let run = uptake(
        &redash,
        &[
            ("SENTRY_DSN", sentry.dsn.as_str()),
            ("DEFAULT_ERROR_THRESHOLD_PERCENT", "1.0"),
            (
                "SPECIFIC_ERROR_THRESHOLD_PERCENTAGES",
                "blocklists/plugins = 0.5",
            ),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    let mut events = sentry_events(&sentry);
    assert_eq!(
        events.len(),
        4,
        "one per source over threshold, nothing else: {:#?}",
        sentry.envelopes()
    );
    events.sort_by_key(|e| e["message"].as_str().unwrap_or_default().to_string());
    let messages: Vec<&str> = events
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        vec![
            "blocklists/addons is erroring too much.\n\tnetwork_error    0.96% (10,000)\n\tsync_error       0.10% (1,081)",
            "blocklists/plugins is erroring too much.\n\tnetwork_error    0.63% (6,000)\n\tsign_error       0.02% (149)",
            "main/tippytop is erroring too much.\n\tnetwork_error    13.32% (127,922)\n\tsync_error       0.42% (4,036)\n\tsign_retry_error 0.02% (222)\n\tunknown_error    0.01% (122)\n\tsign_error       0.00% (36)",
            "settings-changes-monitoring is erroring too much.\n\tnetwork_error    1.48% (50,000)\n\toffline_error    0.23% (7,722)",
        ]
    );
    for event in &events {
        // Sentry leaves out the default level, error.
        assert!(event.get("level").is_none_or(|l| l == "error"), "{event}");
        assert_eq!(event["tags"]["command"], "uptake_health");
        assert_eq!(event["tags"]["server"], redash.query_url.as_str());
        let extra = &event["extra"];
        assert_eq!(extra["REDASH_API_QUERY_URL"], redash.query_url.as_str());
        assert_eq!(extra["DEFAULT_ERROR_THRESHOLD_PERCENT"], 1.0);
        assert_eq!(
            extra["SPECIFIC_ERROR_THRESHOLD_PERCENTAGES"],
            serde_json::json!({"blocklists/plugins": 0.5})
        );
        assert_eq!(
            extra["EXCLUDE_SOURCES"],
            serde_json::json!([
                "shield-recipe-client/*",
                "normandy/*",
                "main/url-classifier-skip-urls"
            ])
        );
        assert!(extra["threshold_percent"].is_f64());
    }
    sentry.assert_hides(&["m4rker"]);

    // A run that cannot read Redash sends the one failure event, without the key.
    let failing = Redash::start(KEY, &seed_rows()).await;
    failing.script(vec![Scripted::Status(500)]);
    let sentry = SentryListener::start().await;
    let run = uptake(&failing, &[("SENTRY_DSN", sentry.dsn.as_str())]).await;
    assert_eq!(run.code, 3, "{run:?}");
    let events = sentry_events(&sentry);
    assert_eq!(events.len(), 1, "{:#?}", sentry.envelopes());
    assert_eq!(
        events[0]["message"],
        format!("GET {} failed: HTTP 500", shown_url(&failing))
    );
    sentry.assert_hides(&["m4rker"]);

    // A healthy run sends nothing.
    let healthy = Redash::start(KEY, &healthy_rows()).await;
    let sentry = SentryListener::start().await;
    sentry.expect_no_hits();
    let run = uptake(&healthy, &[("SENTRY_DSN", sentry.dsn.as_str())]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(sentry_events(&sentry).is_empty());
}

#[tokio::test]
async fn the_key_does_not_show_in_help() {
    let run = run_bin(&["uptake_health", "--help"], &[("REDASH_API_KEY", KEY)]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("--redash-api-key"), "{}", run.stdout);
    assert_no_key(&run);
}
