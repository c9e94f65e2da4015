//! `server_compare` end to end: the real binary reading two real readers of the stack.
//!
//! In sync: the origin (`stack.server`) against the CDN edge rules (`stack.edge`) and the
//! `/v2`-shaped front (`stack.v2`), both in front of that same origin. Lagging: two distinct Kinto
//! servers of the stack (the main one as the source, the small-pages one as a "CDN" that missed
//! the latest changes), holding a monitor collection of the same name whose entries point at a
//! collection published on both at different times with different records, and at one published
//! on the source only.

mod support;

use serde_json::{json, Value};
use support::data::records;
use support::{run_bin, unique, Run, Stack};

async fn compare(source: &str, target: &str, mon: &str, extra: &[(&str, &str)]) -> Run {
    let mut env = vec![
        ("SOURCE_SERVER", source),
        ("TARGET_SERVER", target),
        ("BUCKET", mon),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ];
    env.extend_from_slice(extra);
    run_bin(&["server_compare"], &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_and_v2_serve_what_the_origin_serves() {
    let stack = Stack::get();
    let (a, b) = (unique("sc-a"), unique("sc-b"));
    let ta = stack.publish("main-workspace", &a, &records(3)).await;
    let tb = stack.publish("staging", &b, &records(1)).await;
    let (mon, _) = stack
        .scratch_monitor(&[("main", &a, ta), ("blocklists", &b, tb)])
        .await;
    for front in [&stack.edge, &stack.v2] {
        let run = compare(&stack.server, front, &mon, &[]).await;
        assert_eq!(run.code, 0, "{front}: {run:?}");
        assert_eq!(run.stderr, "");
        assert_eq!(
            run.lines(),
            [
                format!("blocklists/{b} OK: lag 0.000 s, {tb}"),
                format!("main/{a} OK: lag 0.000 s, {ta}"),
            ]
        );
        let run = compare(
            &stack.server,
            front,
            &mon,
            &[("COMPARE_RECORDS", "1"), ("OUTPUT", "json")],
        )
        .await;
        assert_eq!(run.code, 0, "{front}: {run:?}");
        let doc = run.json();
        assert_eq!(
            doc["results"][1],
            json!({"bucket": "main", "collection": a, "status": "ok", "source_timestamp": ta,
                   "target_timestamp": ta, "lag_seconds": 0.0})
        );
        assert_eq!(
            doc["totals"],
            json!({"collections": 2, "in_sync": 2, "propagating": 0, "lagging": 0, "errors": 0,
                   "invalid_entries": 0, "max_lag_seconds": 0.0})
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdn_lagging_behind_its_origin_is_propagating_within_the_margin_and_fails_beyond() {
    let stack = Stack::get();
    let origin = stack.clone();
    let cdn = Stack {
        server: stack.small_pages_server.clone(),
        ..stack.clone()
    };
    let (lagging, unseen) = (unique("sc-lag"), unique("sc-new"));
    // The CDN's copy: two records, published first; the origin then has three, and a collection
    // the CDN has not seen at all.
    let t_cdn = cdn.publish("staging", &lagging, &records(2)).await;
    let t_origin = origin.publish("staging", &lagging, &records(3)).await;
    let t_unseen = origin.publish("staging", &unseen, &records(1)).await;
    assert!(t_origin > t_cdn);
    let mon = unique("mon-sc");
    origin
        .monitor_named(
            &mon,
            &[
                ("blocklists", &lagging, t_origin),
                ("blocklists", &unseen, t_unseen),
            ],
        )
        .await;
    cdn.monitor_named(&mon, &[("blocklists", &lagging, t_cdn)])
        .await;
    let lag = format!("{:.3}", (t_origin - t_cdn) as f64 / 1000.0);

    // Just changed: propagating, exit 0, with the lag and the records that differ.
    let run = compare(
        &origin.server,
        &cdn.server,
        &mon,
        &[("COMPARE_RECORDS", "1")],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.lines();
    assert_eq!(lines.len(), 3, "{run:?}");
    assert!(
        lines[0].starts_with(&format!(
            "blocklists/{lagging} PROPAGATING: lag {lag} s, changed "
        )),
        "{run:?}"
    );
    assert_eq!(lines[1], "    records: 1 missing (r2), 0 extra, 0 changed");
    assert!(
        lines[2].starts_with(&format!(
            "blocklists/{unseen} PROPAGATING: missing on the target, changed "
        )),
        "{run:?}"
    );

    // Beyond the margin: the same differences fail the run.
    let run = compare(
        &origin.server,
        &cdn.server,
        &mon,
        &[
            ("MARGIN_SECONDS", "0"),
            ("OUTPUT", "json"),
            ("COMPARE_RECORDS", "1"),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["status"], "problems");
    let item = &doc["results"][0];
    assert_eq!(item["status"], "lagging");
    assert_eq!(item["code"], "TIMESTAMPS_DIFFER");
    assert_eq!(item["source_timestamp"], t_origin);
    assert_eq!(item["target_timestamp"], t_cdn);
    assert_eq!(
        item["records"]["missing"],
        json!({"count": 1, "ids": ["r2"]})
    );
    assert_eq!(doc["results"][1]["code"], "MISSING_ON_TARGET");
    assert_eq!(doc["results"][1]["target_timestamp"], Value::Null);
    assert_eq!(doc["totals"]["lagging"], 2);
    assert_eq!(
        doc["error"]["message"],
        "The target lags behind the source: 2 collection(s) differ beyond the margin of 0 s"
    );

    let run = compare(
        &origin.server,
        &cdn.server,
        &mon,
        &[("MARGIN_SECONDS", "0")],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.lines()[0].starts_with(&format!(
            "blocklists/{lagging} NOT OK: lag {lag} s, changed "
        )),
        "{run:?}"
    );
    assert!(run.lines()[0].ends_with(" s ago (margin 0 s)"), "{run:?}");

    // Swapped, the "CDN" is ahead and lists a collection the other does not: the entry only on
    // the target fails whatever the margin.
    let run = compare(&cdn.server, &origin.server, &mon, &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.lines()[0].contains(&format!("lag -{lag} s (the target is ahead)")),
        "{run:?}"
    );
    assert_eq!(
        run.lines()[1],
        format!("blocklists/{unseen} NOT OK: only on the target")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_is_required_and_must_be_a_url() {
    let run = run_bin(&["server_compare"], &[("SERVER", "http://127.0.0.1:9/v1")]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        "error: invalid TARGET_SERVER: required: the root URL of the reader to compare with the source"
    );
    let run = run_bin(&["server_compare", "--target-server", "ftp://x/v1"], &[]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("invalid TARGET_SERVER"), "{run:?}");
}
