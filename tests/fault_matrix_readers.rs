//! The fault matrix of the commands that only read: validate_changes_collection,
//! validate_signature, consistency_checks (in front of the real Kinto stack) and uptake_health (in
//! front of the Redash fixture). Each cell runs the real binary through its own fault-injecting
//! proxy: a transient fault (the next 2 requests of a target, fewer than the 3 attempts) must be
//! retried and the run must end exactly as a clean one; a persistent fault must end with the
//! documented exit code and a line naming the URL (never a credential), and a collection that
//! could not be read is never reported OK. See `fault_matrix/common.rs` for the columns. The
//! reader commands' proxies stand before the CDN edge fixture (`Stack::edge`), as readers do in
//! production.

#[path = "fault_matrix/common.rs"]
#[allow(dead_code, reason = "each matrix file uses a different part")]
mod common;
mod support;

use std::collections::BTreeMap;

use common::{
    attempted, cells, credential_markers, ensure, failed_naming_url, origin_of, recovered,
    run_matrix, show, with_fast, without_durations, Cell, Kind, Target, ATTEMPTS, TIMEOUT_SECONDS,
};
use serde_json::json;
use support::data::{monitored, records};
use support::proxy::{Fault, Match, Proxy};
use support::redash::{row, Redash};
use support::{run_bin, unique, Run, Stack};

fn lines_of(run: &Run) -> Vec<String> {
    run.stdout.lines().map(without_durations).collect()
}

/// A clean run through a recording proxy: its exit code, output lines and the requests of each
/// target.
struct Clean {
    code: i32,
    lines: Vec<String>,
    counts: BTreeMap<&'static str, usize>,
}

fn clean_from(proxy: &Proxy, r: &Run, targets: &[Target]) -> Clean {
    Clean {
        code: r.code,
        lines: lines_of(r),
        counts: targets
            .iter()
            .map(|t| (t.label, proxy.count_on(&t.on)))
            .collect(),
    }
}

fn target<'a>(targets: &'a [Target], label: &str) -> &'a Target {
    targets.iter().find(|t| t.label == label).unwrap()
}

/// The verdict of a cell where the fault is transient (or a persistent `Backoff`): the run ends
/// as the clean one, after the retries the fault called for.
fn expect_recovered(cell: &Cell, clean: &Clean, run: &Run, seen: usize) -> common::Verdict {
    let clean_count = clean.counts[cell.target];
    let expected = if cell.persistent() {
        clean_count
    } else {
        cell.retried_count(clean_count)
    };
    recovered(
        run,
        clean.code,
        &clean.lines,
        &lines_of(run),
        seen,
        expected,
    )
}

// validate_changes_collection --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_changes_collection_retries_transient_faults_and_never_reports_unread_collections_ok(
) {
    let stack = Stack::get();
    let kinto = stack.editor();
    let bid = monitored(&kinto, 2).await.bucket;
    let targets = vec![
        Target::new(
            "monitor/changes",
            Match::contains("/collections/mon/changeset"),
        ),
        Target::new(
            "records timestamp",
            Match::contains("/collections/c1/changeset"),
        ),
    ];
    let run = async |server: &str| {
        let e = with_fast(&[
            ("SERVER", server),
            ("BUCKET", bid.as_str()),
            ("COLLECTION", "mon"),
        ]);
        run_bin(&["validate_changes_collection"], &e).await
    };
    let proxy = Proxy::start(&stack.edge).await;
    let clean = clean_from(&proxy, &run(&proxy.url).await, &targets);
    assert_eq!(clean.code, 0, "{:?}", clean.lines);
    assert_eq!(clean.lines.len(), 2);
    let secrets: Vec<String> = vec![];
    let all: &[Kind] = &Kind::ALL;
    run_matrix(
        "validate_changes_collection",
        cells(&[("monitor/changes", all), ("records timestamp", all)]),
        |cell| {
            let (stack, targets, clean, bid, secrets, run) =
                (&stack, &targets, &clean, &bid, &secrets, &run);
            async move {
                let t = target(targets, cell.target);
                let proxy = Proxy::start(&stack.edge).await;
                cell.arm(&proxy, &t.on);
                let r = run(&proxy.url).await;
                let seen = proxy.count_on(&t.on);
                if !cell.persistent() || !cell.kind.fails() {
                    return expect_recovered(&cell, clean, &r, seen);
                }
                let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
                let line = failed_naming_url(&r, 3, &origin_of(&proxy.url), &t.on.path, &secrets)?;
                attempted(seen, ATTEMPTS, &r)?;
                if cell.target == "records timestamp" {
                    ensure(
                        !r.stdout.contains(&format!("Etag OK for {bid}/c1 ")),
                        || format!("c1 reported OK: {}", show(&r)),
                    )?;
                    ensure(
                        r.stdout.contains(&format!("Etag OK for {bid}/c0 : ")),
                        || format!("c0 not checked: {}", show(&r)),
                    )?;
                } else {
                    ensure(r.stdout.is_empty(), || format!("output: {}", show(&r)))?;
                }
                Ok(format!("exit 3 after {seen} attempts: `{line}`"))
            }
        },
    )
    .await;
}

// validate_signature -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_signature_retries_transient_faults_and_never_reports_unread_collections_ok() {
    let stack = Stack::get();
    let (a, b) = (unique("fm-vs-a"), unique("fm-vs-b"));
    let a_ts = stack.publish("staging", &a, &records(2)).await;
    let b_ts = stack.publish("staging", &b, &records(1)).await;
    let (mon, _) = stack
        .scratch_monitor(&[("blocklists", &a, a_ts), ("blocklists", &b, b_ts)])
        .await;
    // A's changeset as published, for the x5u cells: the same with its x5u pointing at a proxy
    // in front of the signing service (x5u is not part of the signed payload).
    let (_, changeset, _) = stack
        .editor()
        .request(
            reqwest::Method::GET,
            &format!("/buckets/blocklists/collections/{a}/changeset?_expected={a_ts}"),
            None,
        )
        .await;
    let x5u =
        reqwest::Url::parse(changeset["metadata"]["signature"]["x5u"].as_str().unwrap()).unwrap();
    let x5u_origin = format!(
        "{}://{}:{}",
        x5u.scheme(),
        x5u.host_str().unwrap(),
        x5u.port_or_known_default().unwrap()
    );
    let x5u_path = x5u.path().to_string();

    let targets = vec![
        Target::new(
            "monitor/changes",
            Match::contains(format!("/buckets/{mon}/collections/changes/changeset")),
        ),
        Target::new(
            "changeset",
            Match::contains(format!("/collections/{a}/changeset")),
        ),
        Target::new("x5u", Match::contains(x5u_path.clone())),
    ];
    let run = async |server: &str| {
        let e = with_fast(&[
            ("SERVER", server),
            ("BUCKET", mon.as_str()),
            ("COLLECTION", "changes"),
            ("ROOT_HASH", stack.root_hash.as_str()),
        ]);
        run_bin(&["validate_signature"], &e).await
    };
    let proxy = Proxy::start(&stack.edge).await;
    let clean = clean_from(&proxy, &run(&proxy.url).await, &targets);
    assert_eq!(clean.code, 0, "{:?}", clean.lines);
    let mut clean = clean;
    clean.counts.insert("x5u", 1);

    let all: &[Kind] = &Kind::ALL;
    // The body of an x5u is PEM, not JSON: a non-PEM answer is a BAD chain (the hostile-input
    // tests); here only the faults of getting it.
    let transport: &[Kind] = &Kind::TRANSPORT;
    run_matrix(
        "validate_signature",
        cells(&[
            ("monitor/changes", all),
            ("changeset", all),
            ("x5u", transport),
        ]),
        |cell| {
            let (stack, targets, clean, a, b, run) = (&stack, &targets, &clean, &a, &b, &run);
            let (changeset, x5u_origin) = (&changeset, &x5u_origin);
            async move {
                let t = target(targets, cell.target);
                let kinto = Proxy::start(&stack.edge).await;
                let (r, seen, origin) = if cell.target == "x5u" {
                    let x5u_proxy = Proxy::start(&format!("{x5u_origin}/")).await;
                    let mut doc = changeset.clone();
                    // In `signature` and in every `signatures[]` entry (today's server).
                    let x5u = json!(format!("{}{}", x5u_proxy.url, t.on.path));
                    doc["metadata"]["signature"]["x5u"] = x5u.clone();
                    for entry in doc["metadata"]["signatures"]
                        .as_array_mut()
                        .into_iter()
                        .flatten()
                    {
                        entry["x5u"] = x5u.clone();
                    }
                    kinto.fail_always(
                        &format!("/collections/{a}/changeset"),
                        Fault::Body(doc.to_string()),
                    );
                    cell.arm(&x5u_proxy, &t.on);
                    let r = run(&kinto.url).await;
                    let seen = x5u_proxy.count_on(&t.on);
                    (r, seen, origin_of(&x5u_proxy.url))
                } else {
                    cell.arm(&kinto, &t.on);
                    let r = run(&kinto.url).await;
                    let seen = kinto.count_on(&t.on);
                    (r, seen, origin_of(&kinto.url))
                };
                if !cell.persistent() || !cell.kind.fails() {
                    return expect_recovered(&cell, clean, &r, seen);
                }
                // An x5u that cannot be downloaded is a BAD chain (X5U_*), exit 1
                // (docs/commands/validate_signature.md).
                let code = if cell.target == "x5u" { 1 } else { 3 };
                let line = failed_naming_url(&r, code, &origin, &t.on.path, &[])?;
                attempted(seen, ATTEMPTS, &r)?;
                if cell.target == "monitor/changes" {
                    ensure(r.stdout.is_empty(), || format!("output: {}", show(&r)))?;
                } else {
                    let a_line = r
                        .stdout
                        .lines()
                        .find(|l| l.contains(&format!("/collections/{a}:  ")))
                        .unwrap_or_default();
                    ensure(!a_line.contains(":  OK"), || {
                        format!("{a} reported OK: {}", show(&r))
                    })?;
                    ensure(
                        r.stdout
                            .lines()
                            .any(|l| l.contains(&format!("/collections/{b}:  OK"))),
                        || format!("{b} not verified: {}", show(&r)),
                    )?;
                }
                Ok(format!("exit {code} after {seen} attempts: `{line}`"))
            }
        },
    )
    .await;
}

// consistency_checks -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_checks_retries_transient_faults_and_never_reports_unread_collections_ok() {
    let mut stack = Stack::get();
    // A Kinto process of its own (one per server): the matrix's load is spread.
    stack.server = stack.bulk_server.clone();
    let cid = unique("fm-cc");
    let ts = stack.publish("staging", &cid, &records(2)).await;
    let (mon, _) = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
    let targets = vec![
        Target::new("server info", Match::exact("/v1/")),
        Target::new(
            "monitor/changes",
            Match::contains(format!("/buckets/{mon}/collections/changes/changeset")),
        ),
        Target::new(
            "source changeset",
            Match::contains(format!("/buckets/staging/collections/{cid}/changeset")),
        ),
        Target::new(
            "destination changeset",
            Match::contains(format!("/buckets/blocklists/collections/{cid}/changeset")),
        ),
    ];
    let run = async |server: &str| {
        let e = with_fast(&[
            ("SERVER", server),
            ("BUCKET", mon.as_str()),
            ("COLLECTION", "changes"),
            ("AUTH", stack.editor.as_str()),
        ]);
        run_bin(&["consistency_checks"], &e).await
    };
    let proxy = Proxy::start(&stack.server).await;
    let clean = clean_from(&proxy, &run(&proxy.url).await, &targets);
    assert_eq!(clean.code, 0, "{:?}", clean.lines);
    assert_eq!(clean.lines[1], format!("blocklists/{cid} OK"));
    let secrets = credential_markers(&stack.editor);
    let all: &[Kind] = &Kind::ALL;
    run_matrix(
        "consistency_checks",
        cells(&[
            ("server info", all),
            ("monitor/changes", all),
            ("source changeset", all),
            ("destination changeset", all),
        ]),
        |cell| {
            let (stack, targets, clean, cid, secrets, run) =
                (&stack, &targets, &clean, &cid, &secrets, &run);
            async move {
                let t = target(targets, cell.target);
                let proxy = Proxy::start(&stack.server).await;
                cell.arm(&proxy, &t.on);
                let r = run(&proxy.url).await;
                let seen = proxy.count_on(&t.on);
                if !cell.persistent() || !cell.kind.fails() {
                    return expect_recovered(&cell, clean, &r, seen);
                }
                let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
                let line = failed_naming_url(&r, 3, &origin_of(&proxy.url), &t.on.path, &secrets)?;
                attempted(seen, ATTEMPTS, &r)?;
                ensure(
                    !r.stdout
                        .lines()
                        .any(|l| l == format!("blocklists/{cid} OK")),
                    || format!("reported OK: {}", show(&r)),
                )?;
                Ok(format!("exit 3 after {seen} attempts: `{line}`"))
            }
        },
    )
    .await;
}

// uptake_health ----------------------------------------------------------------------------------

/// The key given to Redash: it must never be shown.
const KEY: &str = "fm-K3y-m4rker-99";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uptake_health_retries_what_redash_may_fail_transiently_and_never_shows_the_key() {
    let day = 1_552_348_800;
    let redash = Redash::start(
        KEY,
        &[
            row(
                "main/a",
                day,
                day + 86_399,
                &[("up_to_date", 5000), ("network_error", 10)],
            ),
            row(
                "main/b",
                day,
                day + 86_399,
                &[("success", 3000), ("sync_error", 900)],
            ),
        ],
    )
    .await;
    let on = Match::contains("/results.json");
    let targets = vec![Target::new("query results", on.clone())];
    let run = async |query_url: &str| {
        let e = with_fast(&[
            ("REDASH_API_QUERY_URL", query_url),
            ("REDASH_API_KEY", KEY),
            ("REDASH_TIMEOUT_SECONDS", TIMEOUT_SECONDS),
        ]);
        run_bin(&["uptake_health"], &e).await
    };
    let proxy = Proxy::start(&redash.query_url).await;
    let clean = clean_from(&proxy, &run(&proxy.url).await, &targets);
    assert_eq!(clean.code, 1, "main/b is over threshold: {:?}", clean.lines);
    let all: &[Kind] = &Kind::ALL;
    run_matrix("uptake_health", cells(&[("query results", all)]), |cell| {
        let (redash, clean, on, run) = (&redash, &clean, &on, &run);
        async move {
            let proxy = Proxy::start(&redash.query_url).await;
            cell.arm(&proxy, on);
            let r = run(&proxy.url).await;
            let seen = proxy.count_on(on);
            common::no_secrets(&r, &[KEY])?;
            // Redash's client retries connection errors, timeouts, 503 and 504 only
            // (docs/commands/uptake_health.md):
            // any other answer ends the run at once.
            let retried = matches!(
                cell.kind,
                Kind::Reset | Kind::S503 | Kind::S504 | Kind::Slow | Kind::Truncated
            );
            let recovers = !cell.kind.fails() || (retried && !cell.persistent());
            if recovers {
                return expect_recovered(&cell, clean, &r, seen);
            }
            let attempts = if retried { ATTEMPTS } else { 1 };
            let line = failed_naming_url(
                &r,
                3,
                &origin_of(&proxy.url),
                "/results.json?api_key=[redacted]",
                &[KEY],
            )?;
            attempted(seen, attempts, &r)?;
            let how = if retried { "after" } else { "not retried:" };
            Ok(format!("exit 3 {how} {seen} attempt(s): `{line}`"))
        }
    })
    .await;
}
