//! The stack's reader fronts refuse what production refuses (testing/edge.py, SPEC §1.1): the
//! reader tests run through them, so these tests prove they are not silent. The CDN's edge on
//! `/v1` (`RSL_TEST_EDGE_SERVER`) and the `/v2`-shaped front (`RSL_TEST_V2_SERVER`) both stand
//! before the stack's main Kinto. The last test also proves the stack serves kinto-attachment's
//! files as production does (a file server of their own, at the announced base URL), and `/v2`'s
//! attachments route.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest as _;
use support::{unique, Stack};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run under testing/stack.py"))
}

/// An anonymous reader that sees redirects instead of following them.
fn reader() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Send and return the status, the `Location` header and the JSON body (`null` when not JSON).
async fn send(method: Method, url: &str) -> (StatusCode, Option<String>, Value) {
    let mut request = reader().request(method.clone(), url);
    if method != Method::GET {
        request = request
            .header("Content-Type", "application/json")
            .body(r#"{"data": {}}"#);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("Location")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, location, body)
}

async fn get(url: &str) -> (StatusCode, Option<String>, Value) {
    send(Method::GET, url).await
}

/// A published collection of the main server: `(bucket, collection, timestamp)`.
async fn published(stack: &Stack) -> (&'static str, String, u64) {
    let cid = unique("fronts");
    let ts = stack
        .publish("staging", &cid, &[json!({"id": "r1", "n": 1})])
        .await;
    ("blocklists", cid, ts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_serves_what_firefox_reads_as_kinto_answers_it() {
    let stack = Stack::get();
    let edge = var("RSL_TEST_EDGE_SERVER");
    let (bid, cid, ts) = published(&stack).await;
    let collection = format!("/buckets/{bid}/collections/{cid}");
    for path in [
        "/".to_string(),
        "/buckets".to_string(),
        format!("/buckets/{bid}"),
        format!("/buckets/{bid}/collections"),
        collection.clone(),
        format!("{collection}/records"),
        format!("{collection}/changeset?_expected={ts}"),
        "/buckets/monitor/collections/changes/changeset?_expected=999999123456".to_string(),
    ] {
        let (status, _, body) = get(&format!("{edge}{path}")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (_, _, changeset) = get(&format!("{edge}{collection}/changeset?_expected={ts}")).await;
    let (_, _, direct) = get(&format!(
        "{}{collection}/changeset?_expected={ts}",
        stack.server
    ))
    .await;
    assert_eq!(changeset, direct);
    assert_eq!(changeset["timestamp"], json!(ts));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_refuses_monitor_changes_records_and_every_other_endpoint_with_406() {
    let stack = Stack::get();
    let edge = var("RSL_TEST_EDGE_SERVER");
    let (bid, cid, _) = published(&stack).await;
    let (status, _, body) = get(&format!(
        "{edge}/buckets/monitor/collections/changes/records"
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(body["message"], "Decommissioned monitor/changes records");
    // The same endpoint is there behind the edge: the refusal is the edge's.
    let (direct, _, _) = get(&format!(
        "{}/buckets/monitor/collections/changes/records",
        stack.server
    ))
    .await;
    assert_eq!(direct, StatusCode::OK);
    for path in [
        "/__heartbeat__".to_string(),
        "/__broadcasts__".to_string(),
        format!("/buckets/{bid}/collections/{cid}/records/r1"),
        format!("/buckets/{bid}/groups"),
        format!("/buckets/{bid}/collections/{cid}/history"),
        "/buckets/monitor/collections/changes/records?_limit=1".to_string(),
    ] {
        let (status, _, body) = get(&format!("{edge}{path}")).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{path}: {body}");
    }
    let origin = edge.trim_end_matches("/v1");
    let (status, _, _) = get(&format!("{origin}/v2/")).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_wants_a_numeric_expected_on_changesets_and_unquotes_it() {
    let stack = Stack::get();
    let edge = var("RSL_TEST_EDGE_SERVER");
    let (bid, cid, ts) = published(&stack).await;
    let changeset = format!("{edge}/buckets/{bid}/collections/{cid}/changeset");
    for query in [
        "",
        "?_since=1",
        "?_expected=",
        "?_expected=abc",
        "?_expected=-1",
    ] {
        let (status, _, body) = get(&format!("{changeset}{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    let (status, location, _) = get(&format!("{changeset}?_expected=%22{ts}%22&_since=1")).await;
    assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
    let location = location.expect("a Location");
    assert!(
        location.ends_with(&format!("/changeset?_expected={ts}&_since=1")),
        "{location}"
    );
    let monitor = format!("{edge}/buckets/monitor/collections/changes/changeset");
    let (status, _, _) = get(&monitor).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_fronts_refuse_writes_and_nothing_is_written() {
    let stack = Stack::get();
    for base in [var("RSL_TEST_EDGE_SERVER"), var("RSL_TEST_V2_SERVER")] {
        let bid = unique("fronts-write");
        for method in [Method::PUT, Method::POST, Method::PATCH, Method::DELETE] {
            let (status, _, _) = send(method.clone(), &format!("{base}/buckets/{bid}")).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} on {base}");
        }
        let (status, _, _) = send(Method::POST, &format!("{base}/batch")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "batch on {base}");
        let (status, _, _) = stack
            .admin()
            .request(Method::GET, &format!("/buckets/{bid}"), None)
            .await;
        assert_eq!(status, 404, "the bucket was not created through {base}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_serves_changesets_and_the_root_and_nothing_else_under_buckets() {
    let stack = Stack::get();
    let v2 = var("RSL_TEST_V2_SERVER");
    let (bid, cid, ts) = published(&stack).await;
    let collection = format!("/buckets/{bid}/collections/{cid}");
    let (status, _, changeset) = get(&format!("{v2}{collection}/changeset?_expected={ts}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(changeset["timestamp"], json!(ts));
    let (status, _, monitor) = get(&format!(
        "{v2}/buckets/monitor/collections/changes/changeset?_expected=0"
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(monitor["changes"].as_array().is_some(), "{monitor}");
    let (status, _, _) = get(&format!("{v2}/")).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/buckets".to_string(),
        format!("/buckets/{bid}"),
        format!("/buckets/{bid}/collections"),
        collection.clone(),
        format!("{collection}/records"),
        "/buckets/monitor/collections/changes/records".to_string(),
        "/__heartbeat__".to_string(),
    ] {
        let (status, _, body) = get(&format!("{v2}{path}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_wants_an_unquoted_expected_on_changesets_with_422() {
    let stack = Stack::get();
    let v2 = var("RSL_TEST_V2_SERVER");
    let (bid, cid, ts) = published(&stack).await;
    for url in [
        format!("{v2}/buckets/{bid}/collections/{cid}/changeset"),
        format!("{v2}/buckets/{bid}/collections/{cid}/changeset?_since=1"),
        format!("{v2}/buckets/{bid}/collections/{cid}/changeset?_expected=%22{ts}%22"),
        format!("{v2}/buckets/monitor/collections/changes/changeset"),
        format!("{v2}/buckets/monitor/collections/changes/changeset?_expected=%220%22"),
    ] {
        let (status, _, body) = get(&url).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_come_from_the_file_server_the_capabilities_name_and_through_v2() {
    let stack = Stack::get();
    let v2 = var("RSL_TEST_V2_SERVER");
    let editor = stack.editor();
    let bid = unique("fronts-files");
    editor.create_bucket(&bid).await;
    editor.create_collection(&bid, "files").await;
    let content = "hello from an attachment\n";
    editor
        .upload_attachment(&bid, "files", "r1", "hello.txt", content.as_bytes())
        .await;
    let record = editor.records_by_id(&bid, "files").await["r1"].clone();
    let location = record["attachment"]["location"]
        .as_str()
        .unwrap()
        .to_string();
    // As production stores it: relative to the announced base URL.
    assert!(location.starts_with(&format!("{bid}/files/")), "{location}");
    let (_, _, info) = get(&format!("{}/", stack.server)).await;
    let base_url = info["capabilities"]["attachments"]["base_url"]
        .as_str()
        .unwrap()
        .to_string();
    for url in [
        format!("{base_url}{location}"),
        format!("{v2}/attachments/{location}"),
    ] {
        let body = reader()
            .get(&url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, content, "{url}");
    }
    let hash = record["attachment"]["hash"].as_str().unwrap();
    assert_eq!(hash, format!("{:x}", sha2::Sha256::digest(content)));
}
