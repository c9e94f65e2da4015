//! `blockpages_generator` end to end: the real binary reads blocklist records from the real Kinto
//! stack (a scratch bucket per test, as `BUCKET`), renders the pages, and uploads them to the
//! stack's S3-compatible server (a scratch S3 bucket per test, as `BUCKET_NAME`); the test reads
//! the objects back with signed requests, and loads the pages in headless Chromium.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::container_credentials::CredentialsEndpoint;
use support::proxy::{Fault, Proxy};
use support::s3::{ACCESS_KEY_ID, S3, SECRET_ACCESS_KEY};
use support::{run_bin, unique, Run, Stack};

/// A scratch Kinto bucket holding `addons` and `plugins` with these records.
async fn blocklist(stack: &Stack, addons: &[Value], plugins: &[Value]) -> String {
    let kinto = stack.editor();
    let bid = unique("bp");
    kinto.create_bucket(&bid).await;
    for (cid, records) in [("addons", addons), ("plugins", plugins)] {
        kinto.create_collection(&bid, cid).await;
        kinto.put_records(&bid, cid, records).await;
    }
    bid
}

/// A fresh S3 bucket name (lowercase, as S3 wants).
fn s3_bucket() -> String {
    unique("pages")
}

fn addon(id: &str, block_id: &str, name: &str, created: &str, severity: u8) -> Value {
    json!({
        "id": id, "blockID": block_id, "guid": format!("{id}@example.com"), "severity": severity,
        "details": {"name": name, "created": created, "why": "Malware.",
                    "bug": format!("https://bugzilla.mozilla.org/show_bug.cgi?id={block_id}")},
    })
}

#[derive(Clone)]
struct Env(Vec<(String, String)>);

impl Env {
    fn new(stack: &Stack, bid: &str, bucket: &str, s3_endpoint: &str) -> Env {
        Env(vec![
            ("SERVER".into(), stack.server.clone()),
            ("BUCKET".into(), bid.into()),
            ("BUCKET_NAME".into(), bucket.into()),
            ("AWS_ENDPOINT_URL".into(), s3_endpoint.into()),
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_ACCESS_KEY.into()),
            ("REQUESTS_RETRY_BACKOFF_SECONDS".into(), "0.05".into()),
        ])
    }

    fn with(mut self, name: &str, value: &str) -> Env {
        self.0.retain(|(k, _)| k != name);
        self.0.push((name.into(), value.into()));
        self
    }

    fn without(mut self, name: &str) -> Env {
        self.0.retain(|(k, _)| k != name);
        self
    }

    async fn run(&self, args: &[&str]) -> Run {
        let env: Vec<(&str, &str)> = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut all = vec!["blockpages_generator"];
        all.extend_from_slice(args);
        run_bin(&all, &env).await
    }
}

/// A fresh scratch directory, removed by the test when it passes.
fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(unique("rsl-blockpages"))
}

/// The order in which `needles` appear in `haystack` (panics when one is missing).
fn positions(haystack: &str, needles: &[&str]) -> Vec<usize> {
    needles
        .iter()
        .map(|n| {
            haystack
                .find(n)
                .unwrap_or_else(|| panic!("{n:?} not in:\n{haystack}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_uploaded_as_utf8_html_and_the_index_lists_newest_first() {
    let stack = Stack::get();
    let bid = blocklist(
        &stack,
        &[
            addon("a-old", "i10", "Old Add-on", "2013-05-13T10:00:00Z", 3),
            addon("a-new", "i30", "New Add-on", "2021-01-02T00:00:00Z", 3),
            addon("a-mid", "i20", "Middle Add-on", "2017-07-07T07:07:07Z", 1),
        ],
        &[json!({"id": "p-1", "blockID": "p5", "matchName": "Flash", "severity": 0,
                 "details": {"name": "Plugin é ✓", "created": "2019-03-04T00:00:00Z", "why": "Old."}})],
    )
    .await;
    let bucket = s3_bucket();
    let run = Env::new(&stack, &bid, &bucket, &stack.s3_endpoint)
        .run(&[])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");

    let s3 = S3::new(&stack.s3_endpoint);
    assert_eq!(
        s3.keys(&bucket).await,
        ["i10.html", "i20.html", "i30.html", "index.html", "p5.html"]
    );
    let index = s3.get(&bucket, "index.html").await.unwrap();
    assert_eq!(index.content_type, "text/html; charset=utf-8");
    let order = positions(
        &index.body,
        &[
            r#"<span class="dt">Jan 02, 2021</span>: <a href="i30.html">New Add-on</a>"#,
            r#"<span class="dt">Mar 04, 2019</span>: <a href="p5.html">Plugin é ✓</a>"#,
            r#"<span class="dt">Jul 07, 2017</span>: <a href="i20.html">Middle Add-on</a>"#,
            r#"<span class="dt">May 13, 2013</span>: <a href="i10.html">Old Add-on</a>"#,
        ],
    );
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", index.body);
    let page = s3.get(&bucket, "i10.html").await.unwrap();
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page
        .body
        .contains("<h1><b>Old Add-on</b> has been blocked for your protection.</h1>"));
    assert!(page
        .body
        .contains("<dt>Why was it blocked?</dt>\n<dd>Malware.</dd>"));
    assert!(page.body.contains(
        r#"Blocked on May 13, 2013. <a href="https://bugzilla.mozilla.org/show_bug.cgi?id=i10">View block request</a>."#
    ));

    // The original's lines, with the URL each page can be read at.
    let lines = run.lines();
    assert_eq!(
        lines[0],
        format!("Read 3 records from /buckets/{bid}/collections/addons")
    );
    assert_eq!(
        lines[1],
        format!("Read 1 records from /buckets/{bid}/collections/plugins")
    );
    assert!(
        lines.contains(&format!("Created Amazon S3 bucket {bucket}").as_str()),
        "{run:?}"
    );
    assert!(lines.contains(&format!("Uploading i20.html to Amazon S3 bucket {bucket}").as_str()));
    assert!(lines
        .contains(&format!("File uploaded to {}/{bucket}/i20.html", stack.s3_endpoint).as_str()));
    assert_eq!(
        lines.last().unwrap(),
        &format!("Done. 5 pages generated, 5 uploaded to Amazon S3 bucket {bucket}, 0 warnings.")
    );

    // A second run finds the bucket and replaces the pages.
    let again = Env::new(&stack, &bid, &bucket, &stack.s3_endpoint)
        .run(&[])
        .await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        !again.stdout.contains("Created Amazon S3 bucket"),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_blocks_and_hard_blocks_are_worded_differently() {
    let stack = Stack::get();
    let bid = blocklist(
        &stack,
        &[
            addon("soft", "i1", "Soft", "2020-01-01T00:00:00Z", 1),
            addon("hard", "i3", "Hard", "2020-01-01T00:00:00Z", 3),
        ],
        &[json!({"id": "nosev", "blockID": "p1", "details": {"name": "No severity", "who": "All <b>Windows</b> users"}})],
    )
    .await;
    let bucket = s3_bucket();
    let run = Env::new(&stack, &bid, &bucket, &stack.s3_endpoint)
        .run(&[])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let s3 = S3::new(&stack.s3_endpoint);
    let soft = s3.get(&bucket, "i1.html").await.unwrap().body;
    let hard = s3.get(&bucket, "i3.html").await.unwrap().body;
    let unset = s3.get(&bucket, "p1.html").await.unwrap().body;
    let soft_words = "may choose to continue using it if they accept the risks described";
    let hard_words = "will be automatically disabled and no longer usable";
    assert!(
        soft.contains(soft_words) && !soft.contains(hard_words),
        "{soft}"
    );
    assert!(
        hard.contains(hard_words) && !hard.contains(soft_words),
        "{hard}"
    );
    assert!(
        unset.contains(hard_words),
        "no severity is a hard block: {unset}"
    );
    // "Who is affected?" only where the record says.
    assert!(!hard.contains("Who is affected?"));
    assert!(
        unset.contains("<dt>Who is affected?</dt>\n<dd>All <b>Windows</b> users</dd>"),
        "{unset}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_in_a_name_is_escaped_on_both_pages() {
    let stack = Stack::get();
    let evil = r#"<script>alert("x")</script><img src=x onerror=alert(1)> & Co"#;
    let bid = blocklist(
        &stack,
        &[addon("evil", "i666", evil, "2020-01-01T00:00:00Z", 3)],
        &[],
    )
    .await;
    let bucket = s3_bucket();
    let run = Env::new(&stack, &bid, &bucket, &stack.s3_endpoint)
        .run(&[])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let s3 = S3::new(&stack.s3_endpoint);
    for key in ["index.html", "i666.html"] {
        let html = s3.get(&bucket, key).await.unwrap().body;
        assert!(!html.contains("<script"), "{key}: {html}");
        assert!(!html.contains("<img"), "{key}: {html}");
        assert!(html.contains("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#60;img src=x onerror=alert(1)&#62; &#38; Co"), "{key}: {html}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_keeps_its_link_and_loses_the_onclick() {
    let stack = Stack::get();
    let mut record = addon("linky", "i7", "Linky", "2020-01-01T00:00:00Z", 3);
    record["details"]["why"] = json!(
        r#"It <em>steals</em> data, see <a href="https://blog.mozilla.org/addons/x" onclick="steal()" style="color:red">the post</a>.<script>steal()</script> <a href="javascript:steal()">more</a>"#
    );
    let bid = blocklist(&stack, &[record], &[]).await;
    let bucket = s3_bucket();
    let run = Env::new(&stack, &bid, &bucket, &stack.s3_endpoint)
        .run(&[])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let html = S3::new(&stack.s3_endpoint)
        .get(&bucket, "i7.html")
        .await
        .unwrap()
        .body;
    assert!(html.contains(
        r#"It <em>steals</em> data, see <a href="https://blog.mozilla.org/addons/x" rel="noopener noreferrer nofollow">the post</a>."#
    ), "{html}");
    for gone in ["onclick", "steal()", "style=\"color", "javascript:"] {
        assert!(!html.contains(gone), "{gone} kept: {html}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_records_get_a_page_and_a_warning_and_the_run_goes_on() {
    let stack = Stack::get();
    let bid = blocklist(
        &stack,
        &[
            json!({"id": "no-details", "blockID": "i1", "guid": "nodetails@example.com"}),
            json!({"id": "null-block-id", "blockID": null, "details": {"name": "Null blockID", "created": "2020-02-02T00:00:00Z"}}),
            json!({"id": "bad-date", "blockID": "i3", "details": {"name": "Bad date", "created": "the 5th of May"}}),
            json!({"id": "traversal", "blockID": "../../index", "details": {"name": "Traversal", "created": "2020-02-03T00:00:00Z"}}),
            addon("fine", "i5", "Fine", "2020-02-04T00:00:00Z", 3),
        ],
        &[],
    )
    .await;
    let bucket = s3_bucket();
    let run = Env::new(&stack, &bid, &bucket, &stack.s3_endpoint)
        .run(&["--json"])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["totals"]["records"], 5);
    assert_eq!(doc["totals"]["pages"], 6);
    assert_eq!(doc["totals"]["uploaded"], 6);
    assert_eq!(doc["totals"]["warnings"], 4);
    let warnings = |file: &str| -> Vec<String> {
        let result = doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["file"] == file)
            .unwrap_or_else(|| panic!("{file} not in {doc}"));
        result["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect()
    };
    assert!(warnings("i1.html")[0].contains("no \"details\""), "{doc}");
    assert!(
        warnings("null-block-id.html")[0].contains("no blockID"),
        "{doc}"
    );
    assert!(
        warnings("i3.html")[0].contains("\"details.created\" is not a date"),
        "{doc}"
    );
    assert!(
        warnings("traversal.html")[0].contains("not a safe file name"),
        "{doc}"
    );
    assert!(warnings("i5.html").is_empty());

    let s3 = S3::new(&stack.s3_endpoint);
    assert_eq!(
        s3.keys(&bucket).await,
        [
            "i1.html",
            "i3.html",
            "i5.html",
            "index.html",
            "null-block-id.html",
            "traversal.html"
        ]
    );
    let bare = s3.get(&bucket, "i1.html").await.unwrap().body;
    assert!(
        bare.contains("<b>nodetails@example.com</b> has been blocked"),
        "{bare}"
    );
    assert!(bare.contains("No reason was given."), "{bare}");
    // The index still lists every record, the traversal attempt under its record id.
    let index = s3.get(&bucket, "index.html").await.unwrap().body;
    assert!(
        index.contains(r#"<a href="traversal.html">Traversal</a>"#),
        "{index}"
    );

    // The same run as text: the warnings are lines of their own, the run still ends well.
    let text = Env::new(&stack, &bid, &bucket, &stack.s3_endpoint)
        .run(&[])
        .await;
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.lines().iter().any(|l| l
            .starts_with("Warning: addons/bad-date (i3.html): \"details.created\" is not a date")),
        "{text:?}"
    );
    assert!(
        text.stdout.ends_with(&format!(
            "6 uploaded to Amazon S3 bucket {bucket}, 4 warnings.\n"
        )),
        "{text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_stale_removes_only_html_pages_no_longer_produced() {
    let stack = Stack::get();
    let bid = blocklist(
        &stack,
        &[addon("a", "i1", "One", "2020-01-01T00:00:00Z", 3)],
        &[],
    )
    .await;
    let bucket = s3_bucket();
    let s3 = S3::new(&stack.s3_endpoint);
    s3.create_bucket(&bucket).await;
    s3.put(&bucket, "i999.html", "<p>unblocked since</p>", "text/html")
        .await;
    s3.put(&bucket, "robots.txt", "User-agent: *", "text/plain")
        .await;
    s3.put(&bucket, "archive/i1.html", "<p>kept</p>", "text/html")
        .await;
    let env = Env::new(&stack, &bid, &bucket, &stack.s3_endpoint);

    // Off by default.
    let run = env.run(&[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(s3.get(&bucket, "i999.html").await.is_some());

    let run = env.run(&["--delete-stale"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.lines().contains(
            &format!("Deleted stale page i999.html from Amazon S3 bucket {bucket}").as_str()
        ),
        "{run:?}"
    );
    assert!(
        run.stdout.ends_with(&format!(
            "2 uploaded to Amazon S3 bucket {bucket}, 1 stale pages deleted, 0 warnings.\n"
        )),
        "{run:?}"
    );
    assert_eq!(
        s3.keys(&bucket).await,
        ["archive/i1.html", "i1.html", "index.html", "robots.txt"]
    );

    // The environment form, on a bucket with nothing stale.
    let run = env.with("DELETE_STALE", "1").run(&[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(", 0 stale pages deleted"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_is_reported_with_exit_3_and_nothing_stale_is_deleted() {
    let stack = Stack::get();
    let bid = blocklist(
        &stack,
        &[
            addon("a", "i1", "One", "2020-01-01T00:00:00Z", 3),
            addon("b", "i2", "Two", "2020-01-02T00:00:00Z", 3),
        ],
        &[],
    )
    .await;
    let bucket = s3_bucket();
    let s3 = S3::new(&stack.s3_endpoint);
    s3.create_bucket(&bucket).await;
    s3.put(&bucket, "old.html", "<p>old</p>", "text/html").await;
    let proxy = Proxy::start(&stack.s3_endpoint).await;
    proxy.fail_always(&format!("/{bucket}/i2.html"), Fault::Status(500, None));
    let run = Env::new(&stack, &bid, &bucket, &proxy.url)
        .with("REQUESTS_NB_RETRIES", "2")
        .run(&["--delete-stale"])
        .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        proxy.count(&format!("PUT /{bucket}/i2.html")),
        3,
        "first try and 2 retries"
    );
    assert!(
        run.lines().iter().any(|l| l.starts_with(&format!(
            "Upload failed for i2.html: PUT {}/{bucket}/i2.html failed after 3 attempts: HTTP 500",
            proxy.url
        ))),
        "{run:?}"
    );
    assert!(
        run.lines()
            .contains(&"Stale pages not deleted: some uploads failed."),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "error: 1 of 3 pages could not be uploaded to Amazon S3 bucket {bucket}"
        )),
        "{run:?}"
    );
    // The other pages went up; the stale one stays until a complete run.
    assert_eq!(
        s3.keys(&bucket).await,
        ["i1.html", "index.html", "old.html"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_requests_never_carry_the_kinto_credentials_even_on_the_same_origin() {
    let stack = Stack::get();
    let bid = blocklist(
        &stack,
        &[addon("a", "i1", "One", "2020-01-01T00:00:00Z", 3)],
        &[],
    )
    .await;
    let bucket = s3_bucket();
    // One recording proxy is both SERVER (its /v1 path) and the S3 endpoint (its root): the
    // Kinto requests get AUTH, the S3 ones (which Kinto then refuses) must not.
    let proxy = Proxy::start(&stack.server).await;
    let origin = proxy.url.trim_end_matches("/v1").to_string();
    let run = Env::new(&stack, &bid, &bucket, &origin)
        .with("SERVER", &proxy.url)
        .with("AUTH", &stack.editor)
        .run(&[])
        .await;
    assert_eq!(run.code, 3, "Kinto is no S3 server: {run:?}");
    let authorized = proxy.authorizations();
    assert!(
        authorized
            .iter()
            .any(|(l, _)| l
                .starts_with(&format!("GET /v1/buckets/{bid}/collections/addons/records"))),
        "the Kinto requests carry AUTH: {authorized:?}"
    );
    assert!(
        proxy.count(&format!("HEAD /{bucket}/")) >= 1,
        "{:?}",
        proxy.requests()
    );
    // Everything else is an S3 request (or follows Kinto's redirect of one): signed, never AUTH.
    assert!(
        authorized
            .iter()
            .any(|(l, _)| l.starts_with(&format!("HEAD /{bucket}/"))),
        "the S3 requests are signed: {authorized:?}"
    );
    for (line, authorization) in &authorized {
        if !line.contains(" /v1/buckets/") {
            assert!(
                authorization.starts_with("AWS4-HMAC-SHA256 Credential="),
                "an S3 request carried {authorization}: {line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_secrets_never_show_in_output_logs_or_errors() {
    let stack = Stack::get();
    let bid = blocklist(
        &stack,
        &[addon("a", "i1", "One", "2020-01-01T00:00:00Z", 3)],
        &[],
    )
    .await;
    let bucket = s3_bucket();
    let token = "rsl-session-token-DO-NOT-PRINT-77ab";
    let proxy = Proxy::start(&stack.s3_endpoint).await;
    let env = Env::new(&stack, &bid, &bucket, &proxy.url)
        .with("AWS_SESSION_TOKEN", token)
        .with("REQUESTS_NB_RETRIES", "1");
    let run = env.run(&["-vv"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        proxy.count(&format!("PUT /{bucket}/i1.html")),
        1,
        "{:?}",
        proxy.requests()
    );
    // Failing S3 answers: the errors name the URL without its presigned query.
    proxy.fail_always(&format!("/{bucket}"), Fault::Status(503, None));
    for args in [&["-vv"][..], &["--json", "-vv"][..]] {
        let run = env.run(args).await;
        assert_eq!(run.code, 3, "{run:?}");
        assert!(
            run.stderr.contains(&format!(
                "HEAD {}/{bucket}/ failed after 2 attempts: HTTP 503",
                proxy.url
            )),
            "{run:?}"
        );
        run.assert_hides(&[
            SECRET_ACCESS_KEY,
            token,
            "X-Amz-Signature",
            "X-Amz-Credential",
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_target_dir_without_touching_s3_or_needing_credentials() {
    let stack = Stack::get();
    let bid = blocklist(
        &stack,
        &[addon("a", "i1", "One", "2020-01-01T00:00:00Z", 3)],
        &[],
    )
    .await;
    let bucket = s3_bucket();
    let dir = scratch_dir();
    let run = Env::new(&stack, &bid, &bucket, &stack.s3_endpoint)
        .without("AWS_ACCESS_KEY_ID")
        .without("AWS_SECRET_ACCESS_KEY")
        .with("DRY_RUN", "1")
        .with("TARGET_DIR", dir.to_str().unwrap())
        .run(&[])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.lines()
            .contains(&format!("Writing {}", dir.join("i1.html").display()).as_str()),
        "{run:?}"
    );
    assert!(run
        .lines()
        .contains(&format!("Dry run: nothing uploaded to Amazon S3 bucket {bucket}.").as_str()));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["i1.html", "index.html"]);
    assert!(std::fs::read_to_string(dir.join("i1.html"))
        .unwrap()
        .contains("<b>One</b> has been blocked"));
    assert!(!S3::new(&stack.s3_endpoint).bucket_exists(&bucket).await);

    // Without DRY_RUN, missing credentials are a configuration error: exit 2, nothing sent.
    let run = Env::new(&stack, &bid, &bucket, &stack.s3_endpoint)
        .without("AWS_ACCESS_KEY_ID")
        .with("TARGET_DIR", dir.to_str().unwrap())
        .run(&[])
        .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("AWS_ACCESS_KEY_ID"), "{run:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_collection_stops_the_run_with_exit_3() {
    let stack = Stack::get();
    let bid = blocklist(&stack, &[], &[]).await;
    let run = Env::new(&stack, &bid, &s3_bucket(), &stack.s3_endpoint)
        .with("PLUGINS_COLLECTIONS", "nope")
        .run(&[])
        .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("/buckets/{bid}/collections/nope/records")),
        "{run:?}"
    );
}

/// Where Debian's Chromium is (`make test` installs it when missing).
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(
        path.exists(),
        "{} is missing: `make test` installs Debian's chromium package",
        path.display()
    );
    path
}

/// The DOM of a local page once headless Chromium has loaded it.
async fn browser_dom(page: &Path) -> String {
    let profile = scratch_dir();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(90),
        tokio::process::Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(format!("file://{}", page.display()))
            .output(),
    )
    .await
    .expect("chromium finished within 90 s")
    .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The text a reader sees in a DOM dump: the body's, without tags, entities decoded, spaces
/// collapsed.
fn visible_text(dom: &str) -> String {
    let mut text = String::new();
    let mut rest = &dom[dom.find("<body").expect("a body")..];
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        let tail = &rest[start..];
        let skip_to = if tail.starts_with("<style") {
            tail.find("</style>").map(|i| i + "</style>".len())
        } else {
            tail.find('>').map(|i| i + 1)
        };
        text.push(' ');
        rest = &tail[skip_to.unwrap_or(tail.len())..];
    }
    text.push_str(rest);
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_render_in_a_real_browser() {
    let stack = Stack::get();
    let mut evil = addon(
        "evil",
        "i9",
        r#"<script>document.body.innerHTML = "PWNED"</script>Evil"#,
        "2020-03-01T00:00:00Z",
        3,
    );
    evil["details"]["why"] = json!(
        r#"Read <a href="https://example.com/x" onclick="x()">this</a><img src=x onerror="document.title='PWNED'">."#
    );
    let bid = blocklist(
        &stack,
        &[
            addon("good", "i1", "Good Old Add-on", "2013-05-13T10:00:00Z", 1),
            evil,
        ],
        &[],
    )
    .await;
    let dir = scratch_dir();
    let run = Env::new(&stack, &bid, &s3_bucket(), &stack.s3_endpoint)
        .with("DRY_RUN", "1")
        .with("TARGET_DIR", dir.to_str().unwrap())
        .run(&[])
        .await;
    assert_eq!(run.code, 0, "{run:?}");

    let index = visible_text(&browser_dom(&dir.join("index.html")).await);
    let order = positions(
        &index,
        &[
            "Blocked Add-ons The following software is known to cause serious security",
            r#"Mar 01, 2020 : <script>document.body.innerHTML = "PWNED"</script>Evil"#,
            "May 13, 2013 : Good Old Add-on",
        ],
    );
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{index}");

    let dom = browser_dom(&dir.join("i9.html")).await;
    assert!(
        dom.contains(
            r#"<a href="https://example.com/x" rel="noopener noreferrer nofollow">this</a>"#
        ),
        "{dom}"
    );
    assert!(!dom.contains("onclick") && !dom.contains("<img"), "{dom}");
    let page = visible_text(&dom);
    assert!(page.contains(r#"<script>document.body.innerHTML = "PWNED"</script>Evil has been blocked for your protection."#), "{page}");
    assert!(page.contains("Why was it blocked? Read this ."), "{page}");
    assert!(
        page.contains(
            "What does this mean? The problematic add-on or plugin will be automatically disabled"
        ),
        "{page}"
    );
    assert!(
        page.contains("Blocked on Mar 01, 2020. View block request ."),
        "{page}"
    );

    let soft = visible_text(&browser_dom(&dir.join("i1.html")).await);
    assert!(
        soft.contains("Users are strongly encouraged to disable the problematic add-on or plugin"),
        "{soft}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_credentials_are_fetched_once_with_the_token_and_sign_the_uploads() {
    let stack = Stack::get();
    let bid = blocklist(
        &stack,
        &[addon("a", "i1", "One", "2020-01-01T00:00:00Z", 3)],
        &[],
    )
    .await;
    let bucket = s3_bucket();
    let (key_id, secret, session) = (
        "ASIARSLCONTAINERKEY01",
        "rsl-container-secret-DO-NOT-PRINT",
        "rsl-container-session-DO-NOT-PRINT",
    );
    let token = "rsl-task-token-DO-NOT-PRINT";
    let endpoint = CredentialsEndpoint::start(Some(token), key_id, secret, session).await;
    let token_file = token_file(token);
    let proxy = Proxy::start(&stack.s3_endpoint).await;
    let run = Env::new(&stack, &bid, &bucket, &proxy.url)
        .without("AWS_ACCESS_KEY_ID")
        .without("AWS_SECRET_ACCESS_KEY")
        .with("AWS_CONTAINER_CREDENTIALS_FULL_URI", &endpoint.url)
        .with("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file)
        .run(&["-vv"])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        endpoint.requests(),
        [(
            format!("GET {} HTTP/1.1", support::container_credentials::PATH),
            Some(token.to_string())
        )],
        "one request, with the token: the credentials are cached for the run"
    );
    // Every S3 request is signed with the fetched key: the bucket's presigned check and
    // creation in their query, the uploads in their Authorization header.
    let presigned: Vec<String> = proxy.requests();
    let signed = proxy.authorizations();
    assert!(presigned.len() >= 4, "{presigned:?}");
    for line in &presigned {
        let in_query = line.contains(&format!("X-Amz-Credential={key_id}"))
            && line.contains("X-Amz-Security-Token=");
        let in_header = signed.iter().any(|(l, authorization)| {
            l == line && authorization.contains(&format!("Credential={key_id}/"))
        });
        assert!(in_query || in_header, "{line}: {signed:?}");
    }
    let s3 = S3::new(&stack.s3_endpoint);
    assert_eq!(s3.keys(&bucket).await, ["i1.html", "index.html"]);
    run.assert_hides(&[secret, session, token]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_credentials_endpoint_is_exit_3_naming_it_and_nothing_reaches_s3() {
    let stack = Stack::get();
    let bid = blocklist(
        &stack,
        &[addon("a", "i1", "One", "2020-01-01T00:00:00Z", 3)],
        &[],
    )
    .await;
    let bucket = s3_bucket();
    let endpoint =
        CredentialsEndpoint::start(Some("right-token"), "ASIAX", "sekrit-value", "tok").await;
    let proxy = Proxy::start(&stack.s3_endpoint).await;
    proxy.expect_no_hits();
    let env = Env::new(&stack, &bid, &bucket, &proxy.url)
        .without("AWS_ACCESS_KEY_ID")
        .without("AWS_SECRET_ACCESS_KEY")
        .with("AWS_CONTAINER_CREDENTIALS_FULL_URI", &endpoint.url)
        .with("REQUESTS_NB_RETRIES", "1");

    // A wrong token: 401, the run stops before any S3 request.
    let wrong = token_file("wrong-token");
    let run = env
        .clone()
        .with("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &wrong)
        .run(&[])
        .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "Could not prepare Amazon S3 bucket {bucket}: store credentials: "
        )) && run.stderr.contains("401"),
        "{run:?}"
    );
    // An answer that is not credentials: named without quoting it.
    let body = r#"{"AccessKeyId": "ASIAX", "SecretAccessKey": "", "leaked": "sekrit-value"}"#;
    endpoint.script(vec![
        support::container_credentials::Scripted::Body(body.into()),
        support::container_credentials::Scripted::Body(body.into()),
    ]);
    let right = token_file("right-token");
    let run = env
        .clone()
        .with("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &right)
        .run(&[])
        .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "Could not prepare Amazon S3 bucket {bucket}: store credentials: "
        )),
        "{run:?}"
    );
    run.assert_hides(&["sekrit-value"]);
    assert_eq!(proxy.requests(), Vec::<String>::new(), "nothing reached S3");

    // The endpoint without its token file: a configuration error naming it, exit 2.
    let run = env.run(&[]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: is required with AWS_CONTAINER_CREDENTIALS_FULL_URI"
        ),
        "{run:?}"
    );
}

/// A container credentials token file holding `token`, as EKS mounts it.
fn token_file(token: &str) -> String {
    let path = std::env::temp_dir().join(unique("rsl-token"));
    std::fs::write(&path, token).unwrap();
    path.to_string_lossy().into_owned()
}
