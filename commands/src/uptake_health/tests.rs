//! Unit tests of the settings, the evaluation and the text report (the end-to-end tests with a
//! Redash-speaking server are in `tests/uptake_health.rs`).

use super::query_result::UptakeRow;
use super::*;
use crate::report::{Outcome, Report};

fn config(pairs: &[(&str, &str)]) -> Config {
    let mut all = vec![("REDASH_API_KEY", "k")];
    all.extend_from_slice(pairs);
    Config::from_settings(&RawSettings::from_pairs(&all)).unwrap()
}

fn row(source: &str, statuses: &[(&str, u64)]) -> UptakeRow {
    UptakeRow {
        source: source.into(),
        min_timestamp: 1_551_657_600.0,
        max_timestamp: 1_551_743_999.0,
        statuses: statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
    }
}

fn text(report: &UptakeReport) -> String {
    let mut out = Vec::new();
    report.write_text(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn judge(rows: Vec<UptakeRow>, config: &Config) -> UptakeReport {
    report::evaluate(rows, config, Map::new()).unwrap()
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = config(&[]);
    assert_eq!(c.query_url.as_str(), "https://sql.telemetry.mozilla.org/api/queries/61352/results.json");
    assert_eq!(
        c.exclude_sources,
        vec![
            "shield-recipe-client/*",
            "normandy/*",
            "main/url-classifier-skip-urls"
        ]
    );
    assert_eq!(c.min_total_entries, 1000);
    assert_eq!(c.default_threshold, 2.0);
    assert!(c.thresholds.is_empty());
    assert!(!c.verbose);
    let ResultSource::Redash { api_key, timeout } = &c.source else {
        panic!("downloads by default");
    };
    assert_eq!(api_key.expose(), "k");
    assert_eq!(*timeout, Duration::from_secs(60));
    assert_eq!(
        c.query_url.origin().ascii_serialization(),
        "https://sql.telemetry.mozilla.org"
    );
}

#[test]
fn specific_thresholds_parse_like_the_original() {
    let t = parse_thresholds("main/mycollection = 5.5; foo/bar= 12;;  ").unwrap();
    assert_eq!(t.get("main/mycollection"), Some(&5.5));
    assert_eq!(t.get("foo/bar"), Some(&12.0));
    assert_eq!(t.len(), 2);
    assert_eq!(parse_thresholds("a=1; a=3").unwrap().get("a"), Some(&3.0));
    assert!(parse_thresholds("").unwrap().is_empty());
    for (bad, expected) in [
        (
            "main/x = five",
            "\"main/x = five\": \"five\" is not a number (for main/x)",
        ),
        ("main/x", "\"main/x\" is not `source = percent`"),
        ("main/x = 1 = 2", "is not `source = percent`"),
        (" = 5", "has no source name"),
        ("main/x = -1", "\"-1\" must be a number >= 0"),
        ("main/x = inf", "must be a number >= 0"),
    ] {
        let err = parse_thresholds(bad).unwrap_err();
        assert!(err.contains(expected), "{bad}: {err}");
    }
}

#[test]
fn threshold_errors_are_one_line_whatever_the_source_name_holds() {
    let err = parse_thresholds("main/\u{0}x\n = five").unwrap_err();
    assert!(!err.chars().any(char::is_control), "{err:?}");
    assert!(err.ends_with(r"(for main/\0x)"), "{err}");
}

#[test]
fn bad_settings_name_their_variable_without_echoing_the_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("SPECIFIC_ERROR_THRESHOLD_PERCENTAGES", "main/x = five")],
            "SPECIFIC_ERROR_THRESHOLD_PERCENTAGES",
        ),
        (
            &[(
                "REDASH_API_QUERY_URL",
                "https://r/api/queries/1/results.json?api_key=S3cret-m4rker",
            )],
            "REDASH_API_QUERY_URL",
        ),
        (
            &[("REDASH_API_QUERY_URL", "ftp://r/x")],
            "REDASH_API_QUERY_URL",
        ),
        (&[("REDASH_TIMEOUT_SECONDS", "0")], "REDASH_TIMEOUT_SECONDS"),
        (&[("MIN_TOTAL_ENTRIES", "-1")], "MIN_TOTAL_ENTRIES"),
        (
            &[("DEFAULT_ERROR_THRESHOLD_PERCENT", "-1")],
            "DEFAULT_ERROR_THRESHOLD_PERCENT",
        ),
        (
            &[("DEFAULT_ERROR_THRESHOLD_PERCENT", "two")],
            "DEFAULT_ERROR_THRESHOLD_PERCENT",
        ),
        (&[("VERBOSE", "maybe")], "VERBOSE"),
        (&[("REQUESTS_NB_RETRIES", "x")], "REQUESTS_NB_RETRIES"),
    ];
    for (pairs, name) in cases {
        let mut all = vec![("REDASH_API_KEY", "k")];
        all.extend_from_slice(pairs);
        // The whole configuration step: the run's client settings, then the command's.
        let err = (COMMAND.runs.configure)(&RawSettings::from_pairs(&all)).unwrap_err();
        assert_eq!(err.name, *name, "{pairs:?}: {err}");
        assert!(!err.to_string().contains("m4rker"), "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
    }
    let err = Config::from_settings(&RawSettings::from_pairs(&[])).unwrap_err();
    assert_eq!(err.name, "REDASH_API_KEY");
    // A saved result needs no key; the Kinto SERVER is not read.
    let c = Config::from_settings(&RawSettings::from_pairs(&[
        ("REDASH_RESULT_FILE", "/tmp/r.json"),
        ("SERVER", "nope"),
    ]))
    .unwrap();
    assert!(matches!(c.source, ResultSource::File(_)));
}

#[test]
fn the_originals_problem_example_is_over_the_default_threshold() {
    // The original test suite's example: 3.36% of bad statuses.
    let rows = vec![row(
        "foo/bar",
        &[
            ("success", 123_456),
            ("up_to_date", 234_567),
            ("network_error", 12_340),
            ("sync_error", 123),
            ("pref_disabled", 10),
        ],
    )];
    let report = judge(rows, &config(&[]));
    assert_eq!(
        text(&report),
        "📅 From 2019-03-04 00:00:00 to 2019-03-04 23:59:59\n\
         foo/bar                                  (good:   358,033 bad:    12,463)               3.36%\n\
         \n\
         1 settings have a bad ratio over threshold.\n\
         \n\
         foo/bar\n\
         \tnetwork_error    3.33% (12,340)\n\
         \tsync_error       0.03% (123)\n"
    );
    let Outcome::Problems(failure) = report.outcome() else {
        panic!("over threshold is a problem");
    };
    assert_eq!(
        failure.message,
        "1 settings have a bad ratio over threshold."
    );
    let alerts = report.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].message,
        "foo/bar is erroring too much.\n\tnetwork_error    3.33% (12,340)\n\tsync_error       0.03% (123)"
    );
}

#[test]
fn thresholds_exclusions_and_minimum_decide_what_is_checked() {
    let rows = vec![
        row("foo/bar", &[("up_to_date", 960), ("network_error", 40)]),
        row(
            "normandy/recipes",
            &[("up_to_date", 10), ("network_error", 990)],
        ),
        row("main/small", &[("up_to_date", 10), ("network_error", 989)]),
        row("main/none", &[("up_to_date", 0), ("network_error", 0)]),
    ];
    let strict = config(&[]);
    let report = judge(rows.clone(), &strict);
    assert_eq!(report.over_threshold_sources(), vec!["foo/bar"]);
    assert_eq!(report.checks[1].verdict, Verdict::Excluded);
    assert_eq!(report.checks[2].verdict, Verdict::TooFew { total: 999 });
    assert_eq!(report.checks[3].verdict, Verdict::NoEvents);

    let lenient = config(&[("SPECIFIC_ERROR_THRESHOLD_PERCENTAGES", "foo/bar = 4")]);
    let report = judge(rows.clone(), &lenient);
    assert!(
        report.over_threshold_sources().is_empty(),
        "4.00% is not over 4"
    );
    assert_eq!(report.outcome(), Outcome::Ok);
    assert!(report.alerts().is_empty());

    let everything = config(&[("EXCLUDE_SOURCES", ","), ("MIN_TOTAL_ENTRIES", "0")]);
    assert!(
        everything.exclude_sources.is_empty(),
        "',' excludes nothing"
    );
    let report = judge(rows, &everything);
    assert_eq!(
        report.over_threshold_sources(),
        vec!["foo/bar", "normandy/recipes", "main/small"]
    );
}

#[test]
fn verbose_explains_every_status_and_every_skip() {
    let rows = vec![
        row("normandy/recipes", &[("up_to_date", 5)]),
        row("it's/small", &[("up_to_date", 1_500), ("sync_error", 0)]),
        row("main/none", &[("up_to_date", 0)]),
    ];
    let report = judge(
        rows,
        &config(&[("VERBOSE", "1"), ("MIN_TOTAL_ENTRIES", "2000")]),
    );
    assert_eq!(
        text(&report),
        "📅 From 2019-03-04 00:00:00 to 2019-03-04 23:59:59\n\
         Skipping 'normandy/recipes' because it's excluded\n\
         up_to_date                1,500 good\n\
         sync_error                    0 bad\n\
         Skipping \"it's/small\" because exactly too few good+bad statuses (1500 < 2000)\n\
         up_to_date                    0 good\n\
         Skipping 'main/none' because exactly 0 good+bad statuses\n"
    );
}

#[test]
fn the_breakdown_sorts_by_count_and_keeps_column_order_on_ties() {
    let rows = vec![row(
        "main/x",
        &[
            ("up_to_date", 900),
            ("sync_error", 20),
            ("backoff", 0),
            ("network_error", 50),
            ("parse_error", 20),
            ("offline_error", 0),
            ("apply_error", 10),
        ],
    )];
    let report = judge(rows, &config(&[]));
    let lines: Vec<String> = report.checks[0]
        .breakdown()
        .into_iter()
        .map(|(s, n, _)| format!("{s} {n}"))
        .collect();
    assert_eq!(
        lines,
        vec![
            "network_error 50",
            "sync_error 20",
            "parse_error 20",
            "apply_error 10"
        ]
    );
}

#[test]
fn json_carries_the_same_numbers_as_the_text() {
    let rows = vec![
        row("foo/bar", &[("up_to_date", 960), ("network_error", 40)]),
        row("normandy/recipes", &[("up_to_date", 1)]),
    ];
    let doc = judge(rows, &config(&[])).to_json();
    assert_eq!(doc["period"]["from"], "2019-03-04 00:00:00");
    let first = &doc["results"][0];
    assert_eq!(first["status"], "over_threshold");
    assert_eq!(first["code"], "ERROR_RATE_OVER_THRESHOLD");
    assert_eq!(
        (first["good"].as_u64(), first["bad"].as_u64()),
        (Some(960), Some(40))
    );
    assert_eq!(first["percent"].as_f64(), Some(4.0));
    assert_eq!(first["threshold_percent"].as_f64(), Some(2.0));
    assert_eq!(first["bad_statuses"][0]["status"], "network_error");
    assert_eq!(doc["results"][1]["status"], "excluded");
    assert_eq!(
        doc["totals"],
        json!({"sources": 2, "checked": 1, "ok": 0, "over_threshold": 1, "skipped": 0, "excluded": 1})
    );
}
