//! The fault matrix of the commands that write: refresh_signature and backport_records (in front
//! of the real Kinto stack) and blockpages_generator (in front of Kinto for its reads, of moto's
//! S3 for its uploads). Every cell has its own data and its own proxy. A transient fault must be
//! retried and the run must end as a clean one; a persistent fault (or a write applied whose
//! answer is lost) must end with the documented exit code, a line naming the URL (never a
//! credential), output that says what was and was not applied, and a rerun without the fault must
//! complete the work without duplicates (checked on the server / in S3). See
//! `fault_matrix/common.rs` for the columns.

#[path = "fault_matrix/common.rs"]
#[allow(dead_code, reason = "each matrix file uses a different part")]
mod common;
mod support;

use std::future::Future;

use common::{
    attempted, cells, credential_markers, ensure, failed_naming_url, origin_of, run_matrix, show,
    with_fast, Cell, Kind, Verdict, ATTEMPTS,
};
use serde_json::{json, Value};
use support::proxy::{Match, Proxy};
use support::s3::{ACCESS_KEY_ID, S3, SECRET_ACCESS_KEY};
use support::{run_bin, unique, Kinto, Run, Stack};

/// `text` with each `(from, to)` replaced, for comparing runs over different scratch data.
fn replaced(text: &str, pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
}

/// Faults of a write whose server work is given a deadline longer than the request timeout (the
/// signing PATCH, a `/batch`): a slow answer is waited for, not retried.
fn tolerated_slow(cell: &Cell, deadline: bool) -> bool {
    deadline && cell.kind == Kind::Slow
}

/// Does the fault reach the server (the write is applied) although the client sees a failure?
fn applies(kind: Kind) -> bool {
    matches!(kind, Kind::Truncated | Kind::LostAnswer | Kind::Slow)
}

// refresh_signature ------------------------------------------------------------------------------

async fn refresh(server: &str, mon: &str, auth: &str) -> Run {
    let e = with_fast(&[
        ("SERVER", server),
        ("BUCKET", mon),
        ("COLLECTION", "changes"),
        ("REFRESH_SIGNATURE_AUTH", auth),
    ]);
    run_bin(&["refresh_signature"], &e).await
}

/// A refresh's lines, with the scratch names and the refresh time left out.
fn refresh_lines(run: &Run, mon: &str, cid: &str) -> Vec<String> {
    run.stdout
        .lines()
        .map(|l| {
            let l = replaced(l, &[(mon, "<MON>"), (cid, "<CID>")]);
            match l.find(": Refresh signature: status= signed at ") {
                Some(at) => format!("{}: Refresh signature: status= signed at <TIME>", &l[..at]),
                None => l,
            }
        })
        .collect()
}

fn refresh_on(label: &str, mon: &str, cid: &str) -> Match {
    let source = format!("/v1/buckets/staging/collections/{cid}");
    match label {
        "server info" => Match::exact("/v1/"),
        "monitor/changes" => {
            Match::contains(format!("/buckets/{mon}/collections/changes/changeset"))
        }
        "source metadata" => Match::exact(source).method("GET"),
        "PATCH to-resign" => Match::exact(source).method("PATCH"),
        other => panic!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_signature_retries_transient_faults_and_a_rerun_completes_what_failed() {
    let mut stack = Stack::get();
    // A Kinto process of its own (one per server): the matrix's load is spread.
    stack.server = stack.small_pages_server.clone();
    let clean_lines = vec![
        "Looking at /buckets/<MON>/collections/changes:".to_string(),
        "Looking at /buckets/staging/collections/<CID>: Refresh signature: status= signed at <TIME>"
            .to_string(),
    ];
    let secrets = credential_markers(&stack.editor);
    let all: &[Kind] = &Kind::ALL;
    let mut write: Vec<Kind> = Kind::ALL.to_vec();
    write.push(Kind::LostAnswer);
    run_matrix(
        "refresh_signature",
        cells(&[
            ("server info", all),
            ("monitor/changes", all),
            ("source metadata", all),
            ("PATCH to-resign", &write),
        ]),
        |cell| {
            let (stack, clean_lines, secrets) = (&stack, &clean_lines, &secrets);
            async move {
                // Published by its creation alone (kinto-signer signs a new source at once).
                let cid = unique("fm-rs");
                stack.editor().create_collection("staging", &cid).await;
                let ts = stack.editor().records_timestamp("blocklists", &cid).await;
                let (mon, _) = stack.scratch_monitor(&[("blocklists", &cid, ts)]).await;
                let on = refresh_on(cell.target, &mon, &cid);
                let proxy = Proxy::start(&stack.server).await;
                cell.arm(&proxy, &on);
                let r = refresh(&proxy.url, &mon, &stack.editor).await;
                let seen = proxy.count_on(&on);
                let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
                common::no_secrets(&r, &secrets)?;
                let is_patch = cell.target == "PATCH to-resign";
                let recovers =
                    !cell.persistent() || !cell.kind.fails() || tolerated_slow(&cell, is_patch);
                if recovers {
                    let expected = if tolerated_slow(&cell, is_patch) || !cell.kind.fails() {
                        1
                    } else {
                        cell.retried_count(1)
                    };
                    let lines = refresh_lines(&r, &mon, &cid);
                    common::recovered(&r, 0, clean_lines, &lines, seen, expected)?;
                    let status = stack.editor().collection("staging", &cid).await["status"].clone();
                    ensure(status == "signed", || format!("source status {status}"))?;
                    return Ok(format!("exit 0, same output; {seen} requests"));
                }
                // Reading the monitor or the server info: nothing can be done (exit 3); one
                // collection failing: its line says so, exit 1 (docs/commands/refresh_signature.md).
                let code = if is_patch || cell.target == "source metadata" {
                    1
                } else {
                    3
                };
                let line = failed_naming_url(&r, code, &origin_of(&proxy.url), &on.path, &secrets)?;
                attempted(seen, ATTEMPTS, &r)?;
                ensure(!r.stdout.contains("Refresh signature: status="), || {
                    format!("reported refreshed: {}", show(&r))
                })?;
                // A rerun without the fault refreshes it.
                let again = refresh(&stack.server, &mon, &stack.editor).await;
                common::recovered(
                    &again,
                    0,
                    clean_lines,
                    &refresh_lines(&again, &mon, &cid),
                    0,
                    0,
                )?;
                let status = stack.editor().collection("staging", &cid).await["status"].clone();
                ensure(status == "signed", || format!("source status {status}"))?;
                Ok(format!(
                    "exit {code} after {seen} attempts: `{line}`; rerun refreshed"
                ))
            }
        },
    )
    .await;
}

// backport_records -------------------------------------------------------------------------------

async fn backport(server: &str, auth: &str, bid: &str, cid: &str) -> Run {
    let e = with_fast(&[
        ("SERVER", server),
        ("BACKPORT_RECORDS_SOURCE_AUTH", auth),
        ("BACKPORT_RECORDS_SOURCE_BUCKET", bid),
        ("BACKPORT_RECORDS_SOURCE_COLLECTION", "new"),
        ("BACKPORT_RECORDS_DEST_BUCKET", "main-workspace"),
        ("BACKPORT_RECORDS_DEST_COLLECTION", cid),
    ]);
    run_bin(&["backport_records"], &e).await
}

fn backport_on(label: &str, bid: &str, cid: &str) -> Match {
    match label {
        "server info" => Match::exact("/v1/"),
        "source records" => Match::contains(format!("/buckets/{bid}/collections/new/records")),
        "destination records" => {
            Match::contains(format!("/buckets/main-workspace/collections/{cid}/records"))
                .method("GET")
        }
        "batch" => Match::exact("/v1/batch").method("POST"),
        "PATCH to-review" => {
            Match::exact(format!("/v1/buckets/main-workspace/collections/{cid}")).method("PATCH")
        }
        other => panic!("{other}"),
    }
}

/// The lines of a backport into `main-workspace/<CID>` that creates `a`, updates `b` and deletes
/// `c`, then asks for review.
fn backport_clean_lines() -> Vec<String> {
    let path = "/buckets/main-workspace/collections/<CID>/records";
    vec![
        format!("Batch #0: PUT {path}/a - 201"),
        format!("Batch #1: PUT {path}/b - 200"),
        format!("Batch #2: DELETE {path}/c - 200"),
        "Done. Requested review for 3 changes.".to_string(),
    ]
}

/// The destination holds the source's records, exactly once each, and awaits review.
async fn backported(kinto: &Kinto, bid: &str, cid: &str) -> Result<(), String> {
    let dest = kinto.contents("main-workspace", cid).await;
    let source = kinto.contents(bid, "new").await;
    ensure(dest == source, || {
        format!("destination {dest:?} != source {source:?}")
    })?;
    let status = kinto.collection("main-workspace", cid).await["status"].clone();
    ensure(status == "to-review", || {
        format!("destination status {status}")
    })
}

/// The backport matrix's cells: faults on every target, and lost answers on the writes.
fn backport_cells() -> Vec<Cell> {
    let all: &[Kind] = &Kind::ALL;
    let mut write: Vec<Kind> = Kind::ALL.to_vec();
    write.push(Kind::LostAnswer);
    cells(&[
        ("server info", all),
        ("source records", all),
        ("destination records", all),
        ("batch", &write),
        ("PATCH to-review", &write),
    ])
}

fn backport_is_write(cell: &Cell) -> bool {
    matches!(cell.target, "batch" | "PATCH to-review")
}

/// Does the run go through this cell's fault and end as a clean run?
fn backport_recovers(cell: &Cell) -> bool {
    !cell.persistent() || !cell.kind.fails() || tolerated_slow(cell, backport_is_write(cell))
}

/// One cell's run: a source with a and b, a signed destination of the reviewed workspace edited
/// since (b is outdated, c is gone from the source), backported through the cell's proxy.
struct BackportRun {
    stack: Stack,
    editor: Kinto,
    bid: String,
    cid: String,
    on: Match,
    proxy: Proxy,
    r: Run,
    seen: usize,
    secrets: Vec<String>,
    lines: Vec<String>,
    is_write: bool,
    slow_ok: bool,
}

async fn backport_run(
    stack: &Stack,
    cell: &Cell,
    secrets: &[String],
) -> Result<BackportRun, String> {
    let editor = stack.editor();
    let bid = unique("fm-bp");
    editor.create_bucket(&bid).await;
    editor.create_collection(&bid, "new").await;
    editor
        .put_records(
            &bid,
            "new",
            &[json!({"id": "a", "v": 1}), json!({"id": "b", "v": 2})],
        )
        .await;
    // A signed collection of the reviewed workspace, edited since: b is outdated,
    // c is gone from the source.
    let cid = unique("fm-bp");
    editor.create_collection("main-workspace", &cid).await;
    editor
        .put_records(
            "main-workspace",
            &cid,
            &[json!({"id": "b", "v": 1}), json!({"id": "c", "v": 0})],
        )
        .await;
    let on = backport_on(cell.target, &bid, &cid);
    let proxy = Proxy::start(&stack.server).await;
    cell.arm(&proxy, &on);
    let r = backport(&proxy.url, &stack.editor, &bid, &cid).await;
    let seen = proxy.count_on(&on);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    common::no_secrets(&r, &secrets)?;
    let lines: Vec<String> = r.stdout.lines().map(|l| l.replace(&cid, "<CID>")).collect();
    let is_write = backport_is_write(cell);
    let slow_ok = tolerated_slow(cell, is_write);
    let secrets = secrets.iter().map(|s| s.to_string()).collect();
    Ok(BackportRun {
        stack: stack.clone(),
        editor,
        bid,
        cid,
        on,
        proxy,
        r,
        seen,
        secrets,
        lines,
        is_write,
        slow_ok,
    })
}

/// Run the backport matrix over its recovering cells (or its failing ones), each cell's run
/// judged by `verdict`.
async fn backport_matrix<F, Fut>(recovering: bool, verdict: F)
where
    F: Fn(Cell, BackportRun) -> Fut,
    Fut: Future<Output = Verdict>,
{
    let mut stack = Stack::get();
    // A Kinto process of its own (one per server): the matrix's load is spread.
    stack.server = stack.bulk_server.clone();
    let secrets = credential_markers(&stack.editor);
    let cells = backport_cells()
        .into_iter()
        .filter(|c| backport_recovers(c) == recovering)
        .collect();
    run_matrix("backport_records", cells, |cell| {
        let (stack, secrets, verdict) = (&stack, &secrets, &verdict);
        async move {
            let run = backport_run(stack, &cell, secrets).await?;
            verdict(cell, run).await
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backport_records_retries_transient_faults_and_ends_as_a_clean_run() {
    backport_matrix(true, |cell, run| async move {
        let BackportRun {
            editor,
            bid,
            cid,
            r,
            seen,
            lines,
            slow_ok,
            ..
        } = run;
        ensure(r.code == 0, || format!("exit {}: {}", r.code, show(&r)))?;
        let clean = backport_clean_lines();
        // A batch applied whose answer was lost: the retry's sub-requests fail their
        // preconditions and are recognised as applied (docs/commands/backport_records.md).
        let already = |l: &String| {
            l.strip_suffix(" (already applied)").is_some_and(|head| {
                clean.iter().any(|c| {
                    c.rsplit_once(" - ").map(|(h, _)| h) == head.rsplit_once(" - ").map(|(h, _)| h)
                })
            })
        };
        let same = lines == clean;
        let applied_before_retry = cell.target == "batch"
            && applies(cell.kind)
            && !slow_ok
            && lines.len() == clean.len()
            && lines[3] == clean[3]
            && lines[..3].iter().all(already);
        ensure(same || applied_before_retry, || {
            format!("output differs from a clean run: {clean:#?}\n{}", show(&r))
        })?;
        let expected = if slow_ok || !cell.kind.fails() {
            1
        } else {
            cell.retried_count(1)
        };
        ensure(seen == expected, || {
            format!(
                "{seen} requests on the target, expected {expected}: {}",
                show(&r)
            )
        })?;
        backported(&editor, &bid, &cid).await?;
        Ok(format!(
            "exit 0, {}; {seen} requests; destination = source, to-review",
            if same {
                "same output"
            } else {
                "`(already applied)` lines"
            }
        ))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backport_records_fails_naming_the_url_on_persistent_faults_and_a_rerun_completes_without_duplicates(
) {
    backport_matrix(false, |cell, run| async move {
            let BackportRun {
                stack,
                editor,
                bid,
                cid,
                on,
                proxy,
                r,
                seen,
                secrets,
                lines,
                is_write,
                ..
            } = run;
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            // The server applied what the client never heard of: the batch's changes are
            // found in the destination afterwards, the review request is found asked.
            let batch_applied = cell.target == "batch" && applies(cell.kind);
            let review_asked = batch_applied || (is_write && applies(cell.kind));
            let origin = origin_of(&proxy.url);
            let summary = lines.last().cloned().unwrap_or_default();
            let line = if batch_applied {
                let lost = format!(
                    " - applied, its answer lost (found in the destination after: POST {origin}/v1/batch failed after 3 attempts: "
                );
                ensure(
                    r.code == 0
                        && lines[..3].iter().all(|l| l.contains(&lost))
                        && summary == "Done. Requested review for 3 changes.",
                    || format!("the output does not say what was applied: {}", show(&r)),
                )?;
                lines[0].clone()
            } else {
                failed_naming_url(&r, 3, &origin, &on.path, &secrets)?
            };
            attempted(seen, ATTEMPTS, &r)?;
            match cell.target {
                "batch" if !batch_applied => ensure(
                    summary.starts_with("Failed. 0 changes applied, 3 not applied")
                        && lines[..3].iter().all(|l| {
                            l.contains(" - failed, not applied (not in the destination after: ")
                        }),
                    || format!("the output does not say what was applied: {}", show(&r)),
                )?,
                "batch" => {}
                "PATCH to-review" => ensure(lines[..3] == backport_clean_lines()[..3], || {
                    format!("the applied changes are not listed: {}", show(&r))
                })?,
                _ => ensure(!r.stdout.contains("Batch #"), || {
                    format!("wrote without reading: {}", show(&r))
                })?,
            }
            // A rerun without the fault completes the work, writing nothing twice and asking
            // for review once in all.
            let clean_proxy = Proxy::start(&stack.server).await;
            let again = backport(&clean_proxy.url, &stack.editor, &bid, &cid).await;
            ensure(again.code == 0, || format!("rerun: {}", show(&again)))?;
            let patches = clean_proxy.count_on(&backport_on("PATCH to-review", &bid, &cid));
            let expected_patches = usize::from(!review_asked);
            ensure(patches == expected_patches, || {
                format!("rerun asked for review {patches} times: {}", show(&again))
            })?;
            ensure(!again.stdout.contains("(already applied)"), || {
                format!("rerun: {}", show(&again))
            })?;
            backported(&editor, &bid, &cid).await?;
            Ok(format!(
                "exit {} after {seen} attempts: `{line}`; `{summary}`; rerun: `{}`",
                r.code,
                again.stdout.lines().last().unwrap_or_default()
            ))
    })
    .await;
}

// blockpages_generator ---------------------------------------------------------------------------

fn addon(id: &str, block_id: &str) -> Value {
    json!({"id": id, "blockID": block_id, "guid": format!("{id}@example.com"), "severity": 3,
           "details": {"name": format!("Add-on {id}"), "created": "2020-01-01T00:00:00Z",
                       "why": "Malware."}})
}

const PAGES: [&str; 4] = ["i1.html", "i2.html", "index.html", "p1.html"];

async fn blockpages(kinto: &str, bid: &str, s3: &str, bucket: &str) -> Run {
    let e = with_fast(&[
        ("SERVER", kinto),
        ("BUCKET", bid),
        ("BUCKET_NAME", bucket),
        ("AWS_ENDPOINT_URL", s3),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
    ]);
    run_bin(&["blockpages_generator"], &e).await
}

/// The lines of a run, sorted (uploads finish in any order), scratch names and endpoints hidden.
fn blockpages_lines(run: &Run, pairs: &[(&str, &str)]) -> Vec<String> {
    let mut lines: Vec<String> = run.stdout.lines().map(|l| replaced(l, pairs)).collect();
    lines.sort();
    lines
}

fn blockpages_on(label: &str, bid: &str, bucket: &str) -> (bool, Match) {
    match label {
        "addons records" => (
            false,
            Match::contains(format!("/buckets/{bid}/collections/addons/records")),
        ),
        "S3 bucket HEAD" => (true, Match::exact(format!("/{bucket}/")).method("HEAD")),
        "S3 bucket creation" => (true, Match::exact(format!("/{bucket}/")).method("PUT")),
        "S3 page PUT" => (
            true,
            Match::contains(format!("/{bucket}/i1.html")).method("PUT"),
        ),
        "S3 index PUT" => (
            true,
            Match::contains(format!("/{bucket}/index.html")).method("PUT"),
        ),
        other => panic!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blockpages_generator_retries_transient_faults_and_a_rerun_uploads_what_failed() {
    let stack = Stack::get();
    let kinto = stack.editor();
    let bid = unique("fm-bp");
    kinto.create_bucket(&bid).await;
    kinto.create_collection(&bid, "addons").await;
    kinto
        .put_records(&bid, "addons", &[addon("a", "i1"), addon("b", "i2")])
        .await;
    kinto.create_collection(&bid, "plugins").await;
    kinto
        .put_records(
            &bid,
            "plugins",
            &[json!({"id": "p", "blockID": "p1", "matchName": "Flash",
                                                "details": {"created": "2020-01-02T00:00:00Z"}})],
        )
        .await;
    let clean = {
        let bucket = unique("fm-pages");
        let run = blockpages(&stack.server, &bid, &stack.s3_endpoint, &bucket).await;
        assert_eq!(run.code, 0, "{run:?}");
        blockpages_lines(&run, &[(&stack.s3_endpoint, "<S3>"), (&bucket, "<BUCKET>")])
    };
    let secrets = [SECRET_ACCESS_KEY, "X-Amz-Signature", "X-Amz-Credential"];
    let all: &[Kind] = &Kind::ALL;
    let mut s3_writes: Vec<Kind> = Kind::TRANSPORT.to_vec();
    s3_writes.push(Kind::LostAnswer);
    run_matrix(
        "blockpages_generator",
        cells(&[
            ("addons records", all),
            ("S3 bucket HEAD", &Kind::TRANSPORT),
            ("S3 bucket creation", &s3_writes),
            ("S3 page PUT", &s3_writes),
            ("S3 index PUT", &s3_writes),
        ]),
        |cell| {
            let (stack, bid, clean) = (&stack, &bid, &clean);
            async move {
                let bucket = unique("fm-pages");
                let (on_s3, on) = blockpages_on(cell.target, bid, &bucket);
                let kinto_proxy = Proxy::start(&stack.server).await;
                let s3_proxy = Proxy::start(&stack.s3_endpoint).await;
                let proxy = if on_s3 { &s3_proxy } else { &kinto_proxy };
                cell.arm(proxy, &on);
                let r = blockpages(&kinto_proxy.url, bid, &s3_proxy.url, &bucket).await;
                let seen = proxy.count_on(&on);
                common::no_secrets(&r, &secrets)?;
                let lines = blockpages_lines(&r, &[(&s3_proxy.url, "<S3>"), (&bucket, "<BUCKET>")]);
                let s3 = S3::new(&stack.s3_endpoint);
                if !cell.persistent() || !cell.kind.fails() {
                    // Each target is requested once in a clean run.
                    let clean_count = 1;
                    let expected = if cell.persistent() {
                        clean_count
                    } else {
                        cell.retried_count(clean_count)
                    };
                    // A bucket created whose answer was lost is reported created all the same.
                    common::recovered(&r, 0, clean, &lines, seen, expected)?;
                    ensure(s3.keys(&bucket).await == PAGES, || {
                        "pages missing".to_string()
                    })?;
                    return Ok(format!(
                        "exit 0, same output; {seen} requests; 4 pages in S3"
                    ));
                }
                let line = failed_naming_url(&r, 3, &origin_of(&proxy.url), &on.path, &secrets)?;
                attempted(seen, ATTEMPTS, &r)?;
                if !on_s3 {
                    ensure(s3_proxy.requests().is_empty(), || {
                        format!("uploaded without reading: {:?}", s3_proxy.requests())
                    })?;
                    s3_proxy.expect_no_hits();
                }
                // A rerun without the fault uploads every page.
                let again = blockpages(&stack.server, bid, &stack.s3_endpoint, &bucket).await;
                let again_lines = blockpages_lines(
                    &again,
                    &[(&stack.s3_endpoint, "<S3>"), (&bucket, "<BUCKET>")],
                );
                ensure(again.code == 0, || format!("rerun: {}", show(&again)))?;
                let created = again_lines
                    .iter()
                    .any(|l| l.starts_with("Created Amazon S3 bucket"));
                let first_created = !matches!(cell.target, "S3 bucket HEAD" | "addons records")
                    && (cell.target != "S3 bucket creation" || applies(cell.kind));
                ensure(created != first_created, || {
                    format!(
                        "bucket created twice or never: {}\n{}",
                        show(&r),
                        show(&again)
                    )
                })?;
                ensure(s3.keys(&bucket).await == PAGES, || {
                    "pages missing".to_string()
                })?;
                Ok(format!(
                    "exit 3 after {seen} attempts: `{line}`; rerun uploaded all 4 pages"
                ))
            }
        },
    )
    .await;
}
