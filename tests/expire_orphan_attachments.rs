//! `expire_orphan_attachments` end to end: the real binary against the real Kinto with
//! kinto-attachment (attachments uploaded as production uploads them, collections signed through
//! the real signer) and the stack's GCS emulator, each test in a bucket of its own holding
//! objects named by its records' locations and orphans of its own. The signer resources are
//! shared with the tests running meanwhile: the job reads all of them, and the tests look only
//! at their own objects.

mod support;

use serde_json::{json, Value};
use support::gcs::Gcs;
use support::proxy::{Fault, Match, Proxy};
use support::sentry::SentryListener;
use support::{now, run_bin, unique, Run, Stack};

/// A signed collection of `staging` (no review) whose records `r0…` have attachments, published
/// to `blocklists`. Returns the collection id and the attachments' locations.
async fn published_files(stack: &Stack, files: usize) -> (String, Vec<String>) {
    let editor = stack.editor();
    let cid = unique("expire");
    editor.create_collection("staging", &cid).await;
    for i in 0..files {
        let rid = format!("r{i}");
        let body = format!("file {i} of {cid}");
        editor
            .upload_attachment(
                "staging",
                &cid,
                &rid,
                &format!("{rid}.bin"),
                body.as_bytes(),
            )
            .await;
    }
    stack.sign("staging", &cid).await;
    let records = editor.records_by_id("blocklists", &cid).await;
    let mut locations: Vec<String> = records
        .values()
        .map(|r| r["attachment"]["location"].as_str().unwrap().to_string())
        .collect();
    locations.sort();
    assert_eq!(locations.len(), files);
    (cid, locations)
}

/// A bucket of the emulator holding these objects.
async fn bucket_with(gcs: &Gcs, names: &[&str]) -> String {
    let bucket = gcs.new_bucket("expire").await;
    for name in names {
        gcs.put(&bucket, name, b"some bytes", "application/octet-stream")
            .await;
    }
    bucket
}

async fn expire(stack_env: &[(&str, &str)], gcs_env: &[(String, String)], args: &[&str]) -> Run {
    let mut env: Vec<(&str, &str)> = vec![("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05")];
    env.extend(gcs_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    env.extend_from_slice(stack_env);
    let mut all = vec!["expire_orphan_attachments"];
    all.extend_from_slice(args);
    run_bin(&all, &env).await
}

/// `SERVER` and the admin's `AUTH` (the admin reads every workspace of the stack).
fn as_admin(stack: &Stack) -> Vec<(&str, &str)> {
    vec![
        ("SERVER", stack.server.as_str()),
        ("AUTH", stack.admin.as_str()),
    ]
}

async fn custom_time(gcs: &Gcs, bucket: &str, name: &str) -> Option<String> {
    let object = gcs.object(bucket, name).await.expect("the object is there");
    object["customTime"].as_str().map(String::from)
}

/// Seconds since the epoch of an RFC 3339 UTC date (`2026-12-04T17:12:45Z`).
fn epoch(date: &str) -> i64 {
    let n = |range: std::ops::Range<usize>| date[range].parse::<i64>().unwrap();
    assert!(date.ends_with('Z') && date.len() == 20, "{date}");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

fn total(doc: &Value, what: &str) -> u64 {
    doc["totals"][what]["count"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_marks_nothing_and_says_what_it_would_mark() {
    let (stack, gcs) = (Stack::get(), Gcs::get());
    let (cid, locations) = published_files(&stack, 2).await;
    let orphans = [
        format!("staging/{cid}/gone-1.bin"),
        format!("staging/{cid}/gone-2.bin"),
    ];
    let mut names: Vec<&str> = locations.iter().map(String::as_str).collect();
    names.extend(orphans.iter().map(String::as_str));
    let bucket = bucket_with(&gcs, &names).await;
    let gcs_env = gcs.env(&bucket, "");

    let run = expire(
        &as_admin(&stack),
        &gcs_env,
        &["--max-mark-percent=100", "--json"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(total(&doc, "listed"), 4);
    assert_eq!(total(&doc, "referenced"), 2);
    assert_eq!(total(&doc, "to_mark"), 2);
    assert_eq!(total(&doc, "marked"), 0);
    assert_eq!(doc["totals"]["to_mark"]["bytes"], 20);
    assert_eq!(doc["to_mark_sample"], json!(orphans));
    for name in &names {
        assert_eq!(custom_time(&gcs, &bucket, name).await, None, "{name}");
    }

    let text = expire(&as_admin(&stack), &gcs_env, &["--max-mark-percent=100"]).await;
    assert_eq!(text.code, 0, "{text:?}");
    let lines = text.lines();
    assert_eq!(
        lines[0],
        "DRY RUN: nothing is marked nor reprieved (DRY_RUN=0 acts)"
    );
    assert!(
        lines.contains(&"Referenced: 2 object(s), 20 bytes"),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"Orphaned: 2 object(s), 20 bytes (0 already marked, 2 newly orphaned)"),
        "{lines:#?}"
    );
    let would = lines
        .iter()
        .position(|l| l.starts_with("Would mark 2 object(s), 20 bytes"));
    let would = would.unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(lines[would + 1], format!("  {}", orphans[0]));
    assert_eq!(lines[would + 2], format!("  {}", orphans[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marking_sets_custom_time_on_the_orphans_and_nothing_else() {
    let (stack, gcs) = (Stack::get(), Gcs::get());
    let (cid, locations) = published_files(&stack, 3).await;
    // r0 is deleted from the source but still published: its destination still references it.
    stack.editor().delete_record("staging", &cid, "r0").await;
    let r0 = stack.editor().records_by_id("blocklists", &cid).await["r0"]["attachment"]["location"]
        .as_str()
        .unwrap()
        .to_string();
    let orphan = format!("staging/{cid}/orphan.bin");
    let marked_before = format!("staging/{cid}/marked-before.bin");
    let bundle = format!("bundles/staging--{cid}.zip");
    let mut names: Vec<&str> = locations.iter().map(String::as_str).collect();
    names.extend([orphan.as_str(), marked_before.as_str(), bundle.as_str()]);
    let bucket = bucket_with(&gcs, &names).await;
    gcs.set_custom_time(&bucket, &marked_before, "2026-11-01T00:00:00Z")
        .await;

    let gcs_env = gcs.env(&bucket, "");
    let args = ["--max-mark-percent=100", "--dry-run=0", "--json"];
    let run = expire(&as_admin(&stack), &gcs_env, &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    assert_eq!(total(&doc, "marked"), 1);
    assert_eq!(total(&doc, "already_marked"), 1);
    assert_eq!(total(&doc, "orphaned"), 2);
    assert_eq!(total(&doc, "referenced"), 3);
    assert_eq!(total(&doc, "bundles"), 1);
    let mark_time = doc["mark_time"].as_str().unwrap();
    assert!((epoch(mark_time) - now() as i64).abs() < 120, "{mark_time}");

    assert_eq!(
        custom_time(&gcs, &bucket, &orphan).await.as_deref(),
        Some(mark_time)
    );
    // Marked earlier: left as it was, its deletion date unmoved.
    assert_eq!(
        custom_time(&gcs, &bucket, &marked_before).await.as_deref(),
        Some("2026-11-01T00:00:00Z")
    );
    assert!(locations.contains(&r0));
    for name in locations.iter().chain([&bundle]) {
        assert_eq!(custom_time(&gcs, &bucket, name).await, None, "{name}");
    }

    // A second run finds nothing new to mark.
    let again = expire(&as_admin(&stack), &gcs_env, &args).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(total(&again.json(), "marked"), 0);
    assert_eq!(total(&again.json(), "already_marked"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marked_object_referenced_again_is_reprieved_a_year_ahead() {
    let (stack, gcs) = (Stack::get(), Gcs::get());
    let (_, locations) = published_files(&stack, 1).await;
    let bucket = bucket_with(&gcs, &[&locations[0]]).await;
    gcs.set_custom_time(&bucket, &locations[0], "2026-10-01T00:00:00Z")
        .await;
    let gcs_env = gcs.env(&bucket, "");

    // A dry run says so and changes nothing.
    let dry = expire(&as_admin(&stack), &gcs_env, &[]).await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.lines()
            .iter()
            .any(|l| l.starts_with("Would reprieve 1 object(s), 10 bytes")),
        "{dry:?}"
    );
    assert_eq!(
        custom_time(&gcs, &bucket, &locations[0]).await.as_deref(),
        Some("2026-10-01T00:00:00Z")
    );

    let sentry = SentryListener::start().await;
    let mut env = as_admin(&stack);
    env.push(("SENTRY_DSN", &sentry.dsn));
    env.push(("DRY_RUN", "0"));
    let run = expire(&env, &gcs_env, &["--json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    assert_eq!(total(&doc, "reprieved"), 1);
    let (mark_time, until) = (
        doc["mark_time"].as_str().unwrap(),
        doc["reprieve_until"].as_str().unwrap(),
    );
    assert_eq!(epoch(until) - epoch(mark_time), 365 * 86_400);
    assert_eq!(
        custom_time(&gcs, &bucket, &locations[0]).await.as_deref(),
        Some(until)
    );
    // A reprieve is news: an object was marked while a record referenced it.
    let events = sentry.events();
    assert_eq!(events.len(), 1, "{:#?}", sentry.envelopes());
    assert!(events[0].contains("were referenced again"), "{}", events[0]);
    sentry.assert_hides(&["admin-pass"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_changeset_blocks_every_mark() {
    let (stack, gcs) = (Stack::get(), Gcs::get());
    let (cid, locations) = published_files(&stack, 1).await;
    let orphan = format!("staging/{cid}/orphan.bin");
    let bucket = bucket_with(&gcs, &[&locations[0], &orphan]).await;
    let proxy = Proxy::start(&stack.server).await;
    proxy.fail_always(
        &format!("/buckets/blocklists/collections/{cid}/changeset"),
        Fault::Status(503, None),
    );
    let sentry = SentryListener::start().await;
    let env = [
        ("SERVER", proxy.url.as_str()),
        ("AUTH", stack.admin.as_str()),
        ("REQUESTS_NB_RETRIES", "1"),
        ("SENTRY_DSN", &sentry.dsn),
    ];
    let args = ["--dry-run=0", "--force"];
    let run = expire(&env, &gcs.env(&bucket, ""), &args).await;
    assert_eq!(run.code, 3, "{run:?}");
    let line = format!("blocklists/{cid} NOT OK: could not be read: ");
    assert!(run.lines().iter().any(|l| l.starts_with(&line)), "{run:?}");
    assert!(
        run.lines()
            .contains(&"Nothing listed, nothing marked: the references are incomplete"),
        "{run:?}"
    );
    assert!(run.stderr.contains("HTTP 503"), "{}", run.stderr);
    assert_eq!(custom_time(&gcs, &bucket, &orphan).await, None);
    assert_eq!(sentry.events().len(), 1, "{:#?}", sentry.envelopes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_the_user_cannot_read_blocks_every_mark() {
    let (stack, gcs) = (Stack::get(), Gcs::get());
    let orphan = format!("staging/{}/orphan.bin", unique("expire"));
    let bucket = bucket_with(&gcs, &[&orphan]).await;
    // The editor may not list restricted-workspace, a signer source.
    let env = [
        ("SERVER", stack.server.as_str()),
        ("AUTH", stack.editor.as_str()),
    ];
    let run = expire(
        &env,
        &gcs.env(&bucket, ""),
        &["--dry-run=0", "--force", "--json"],
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["listed"], false);
    let unreadable = doc["unreadable"].as_array().unwrap();
    assert!(
        unreadable
            .iter()
            .any(|u| u["resource"] == "restricted-workspace" && u["code"] == "FORBIDDEN"),
        "{doc}"
    );
    assert_eq!(custom_time(&gcs, &bucket, &orphan).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_fails_blocks_every_mark() {
    let (stack, gcs) = (Stack::get(), Gcs::get());
    let orphan = format!("staging/{}/orphan.bin", unique("expire"));
    let bucket = bucket_with(&gcs, &[&orphan]).await;
    let proxy = Proxy::start(&gcs.endpoint).await;
    proxy.fail_always(&format!("/storage/v1/b/{bucket}/o?"), Fault::Truncate);
    let mut gcs_env = gcs.env(&bucket, "");
    gcs_env[1].1 = proxy.url.clone();
    let mut env = as_admin(&stack);
    env.push(("REQUESTS_NB_RETRIES", "1"));
    let run = expire(&env, &gcs_env, &["--dry-run=0", "--force"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("listing gs://{bucket} failed")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing marked"), "{}", run.stderr);
    assert_eq!(proxy.count("/batch/storage/v1"), 0);
    assert_eq!(custom_time(&gcs, &bucket, &orphan).await, None);
}

/// A listing page of the JSON API, as Google serves it (`nextPageToken` when more follow).
fn listing_page(names: &[&str], next: Option<&str>) -> String {
    let items: Vec<Value> = names
        .iter()
        .map(|name| json!({"name": name, "size": "10", "updated": "2026-12-01T00:00:00.000Z"}))
        .collect();
    let mut page = json!({ "kind": "storage#objects", "items": items });
    if let Some(token) = next {
        page["nextPageToken"] = json!(token);
    }
    page.to_string()
}

/// A bucket of one referenced file and two orphans, listed in two pages (the referenced file and
/// the first orphan, then the second orphan) by a proxy in front of the emulator: Google pages
/// listings by 1,000 objects, the emulator answers everything at once. The objects themselves are
/// real; the listing answers are `pages` as the proxy serves them, one per listing request.
struct TwoPages {
    bucket: String,
    referenced: String,
    first: String,
    second: String,
    proxy: Proxy,
    listing: Match,
    gcs_env: Vec<(String, String)>,
}

/// The answers a listing request may get from [`two_pages`].
enum Page {
    One,
    Two,
    Fails,
}

async fn two_pages(stack: &Stack, gcs: &Gcs, pages: &[Page]) -> TwoPages {
    let (cid, locations) = published_files(stack, 1).await;
    let referenced = locations[0].clone();
    let first = format!("staging/{cid}/orphan-on-page-1.bin");
    let second = format!("staging/{cid}/orphan-on-page-2.bin");
    let bucket = bucket_with(gcs, &[&referenced, &first, &second]).await;
    let proxy = Proxy::start(&gcs.endpoint).await;
    let listing = Match::contains(format!("/storage/v1/b/{bucket}/o?"));
    let answers = pages
        .iter()
        .map(|page| match page {
            Page::One => Fault::Body(listing_page(&[&referenced, &first], Some("page-2"))),
            Page::Two => Fault::Body(listing_page(&[&second], None)),
            Page::Fails => Fault::Status(500, None),
        })
        .collect();
    proxy.fail_on(listing.clone(), answers);
    let mut gcs_env = gcs.env(&bucket, "");
    gcs_env[1].1 = proxy.url.clone();
    TwoPages {
        bucket,
        referenced,
        first,
        second,
        proxy,
        listing,
        gcs_env,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_of_several_pages_is_read_to_its_last_page() {
    let (stack, gcs) = (Stack::get(), Gcs::get());
    // Listed twice, both times in two pages: the survey, then the marking pass.
    let store = two_pages(&stack, &gcs, &[Page::One, Page::Two, Page::One, Page::Two]).await;
    let args = ["--dry-run=0", "--force", "--json"];
    let run = expire(&as_admin(&stack), &store.gcs_env, &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    assert_eq!(total(&doc, "listed"), 3);
    assert_eq!(total(&doc, "marked"), 2);
    let listings: Vec<String> = store
        .proxy
        .requests()
        .into_iter()
        .filter(|line| store.listing.matches_line(line))
        .collect();
    assert_eq!(listings.len(), 4, "{listings:#?}");
    for (listing, token) in listings
        .iter()
        .zip([None, Some("page-2"), None, Some("page-2")])
    {
        match token {
            None => assert!(!listing.contains("pageToken"), "{listing}"),
            Some(token) => assert!(listing.contains(&format!("pageToken={token}")), "{listing}"),
        }
    }
    for orphan in [&store.first, &store.second] {
        assert!(
            custom_time(&gcs, &store.bucket, orphan).await.is_some(),
            "{orphan}"
        );
    }
    assert_eq!(
        custom_time(&gcs, &store.bucket, &store.referenced).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marking_listing_that_fails_midway_keeps_the_marks_made_and_exits_3() {
    let (stack, gcs) = (Stack::get(), Gcs::get());
    // The survey reads both pages; the marking pass reads the first, then the second fails
    // (twice: one retry).
    let pages = [Page::One, Page::Two, Page::One, Page::Fails, Page::Fails];
    let store = two_pages(&stack, &gcs, &pages).await;
    let mut env = as_admin(&stack);
    env.push(("REQUESTS_NB_RETRIES", "1"));
    let run = expire(&env, &store.gcs_env, &["--dry-run=0", "--force"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.lines()
            .iter()
            .any(|l| l.starts_with("Listing NOT OK while marking: ")),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("failed while marking") && run.stderr.contains("1 marked before"),
        "{}",
        run.stderr
    );
    // The orphan of the first page was judged on complete references: its mark stands.
    assert!(custom_time(&gcs, &store.bucket, &store.first)
        .await
        .is_some());
    assert_eq!(custom_time(&gcs, &store.bucket, &store.second).await, None);
    assert_eq!(
        custom_time(&gcs, &store.bucket, &store.referenced).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mark_cap_stops_the_run_unless_forced() {
    let (stack, gcs) = (Stack::get(), Gcs::get());
    let (cid, locations) = published_files(&stack, 1).await;
    let orphan = format!("staging/{cid}/orphan.bin");
    let bucket = bucket_with(&gcs, &[&locations[0], &orphan]).await;
    let gcs_env = gcs.env(&bucket, "");
    let mut env = as_admin(&stack);
    env.push(("DRY_RUN", "0"));

    // One orphan of two objects is 50 %, over the default 5 %.
    let run = expire(&env, &gcs_env, &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let message = "1 orphan(s) are 50.0% of the 2 objects judged, over MAX_MARK_PERCENT=5: \
                   nothing marked (FORCE=1 marks them all the same)";
    assert!(run.lines().contains(&message), "{run:?}");
    assert_eq!(run.stderr.trim_end(), format!("error: {message}"));
    assert_eq!(custom_time(&gcs, &bucket, &orphan).await, None);

    let forced = expire(&env, &gcs_env, &["--force"]).await;
    assert_eq!(forced.code, 0, "{forced:?}");
    assert!(custom_time(&gcs, &bucket, &orphan).await.is_some());
    assert_eq!(custom_time(&gcs, &bucket, &locations[0]).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_store_and_a_missing_auth_are_refused_before_anything_is_sent() {
    let stack = Stack::get();
    let proxy = Proxy::start(&stack.server).await;
    proxy.expect_no_hits();
    let s3 = [
        ("SERVER", proxy.url.as_str()),
        ("AUTH", stack.admin.as_str()),
        ("STORAGE_URL", "s3://attachments/files"),
    ];
    let run = run_bin(&["expire_orphan_attachments"], &s3).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("STORAGE_URL") && run.stderr.contains("not a gs:// URL"),
        "{}",
        run.stderr
    );
    let no_auth = [
        ("SERVER", proxy.url.as_str()),
        ("STORAGE_URL", "gs://attachments"),
    ];
    let run = run_bin(&["expire_orphan_attachments"], &no_auth).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("AUTH"), "{}", run.stderr);
}
