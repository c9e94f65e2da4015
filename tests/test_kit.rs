//! The test kit checks itself: the loopback fixture every fake server stands on
//! (`support/fixture.rs`) records what it is sent, speaks HTTP/1.1 as its handler says, and fails
//! the test that leaves it unhit, or that hits it when it said no request would come. No stack
//! needed.

mod support;

use futures::StreamExt;
use support::fixture::{Connection, Fixture, Reply, Response};

/// A fixture answering every request 200 `ok`.
async fn probe() -> Fixture {
    Fixture::start("probe", Connection::Close, |_| async {
        Response::with_body(200, "text/plain", "ok").into()
    })
    .await
}

#[tokio::test]
#[should_panic(expected = "the probe fixture at 127.0.0.1:")]
async fn a_fixture_never_hit_fails_the_test_naming_it() {
    let _fixture = probe().await;
}

#[tokio::test]
#[should_panic(expected = "got 1 request(s) instead of 0")]
async fn a_fixture_that_expects_no_hits_fails_the_test_when_hit() {
    let fixture = probe().await;
    fixture.expect_no_hits();
    reqwest::get(format!("{}/x", fixture.origin()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_fixture_that_expects_no_hits_passes_unhit() {
    let fixture = probe().await;
    fixture.expect_no_hits();
}

#[tokio::test]
async fn every_request_is_recorded_with_its_line_headers_and_body() {
    let fixture = probe().await;
    let answer = reqwest::Client::new()
        .post(format!("{}/a/b?c=1", fixture.origin()))
        .header("Authorization", "Bearer t")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "ok");
    let requests = fixture.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.line(), "POST /a/b?c=1");
    assert_eq!(request.path(), "/a/b");
    assert_eq!(request.version, "HTTP/1.1");
    assert_eq!(request.header("authorization"), Some("Bearer t"));
    assert_eq!(request.body, b"payload");
}

#[tokio::test]
async fn a_reset_reply_closes_the_connection_without_an_answer() {
    let fixture = Fixture::start("reset", Connection::Close, |_| async { Reply::Reset }).await;
    let answer = reqwest::get(fixture.origin()).await;
    assert!(answer.is_err(), "{answer:?}");
    assert_eq!(fixture.requests().len(), 1);
}

#[tokio::test]
async fn chunked_and_truncated_bodies_are_sent_as_announced() {
    let fixture = Fixture::start("bodies", Connection::Close, |request| async move {
        if request.path() == "/chunked" {
            let chunks = futures::stream::iter(vec![b"ab".to_vec(), b"cd".to_vec()]).boxed();
            Response::status(200).chunked(chunks).into()
        } else {
            Response::with_body(200, "text/plain", "half")
                .declared_len(8)
                .into()
        }
    })
    .await;
    let chunked = reqwest::get(format!("{}/chunked", fixture.origin()))
        .await
        .unwrap();
    assert_eq!(chunked.headers()["transfer-encoding"], "chunked");
    assert_eq!(chunked.text().await.unwrap(), "abcd");
    let truncated = reqwest::get(format!("{}/truncated", fixture.origin()))
        .await
        .unwrap();
    assert_eq!(truncated.headers()["content-length"], "8");
    assert!(
        truncated.text().await.is_err(),
        "a body shorter than announced"
    );
}

#[tokio::test]
async fn a_keep_alive_fixture_answers_without_closing_the_connection() {
    let fixture = Fixture::start("keep-alive", Connection::KeepAlive, |_| async {
        Response::json(200, "{}").into()
    })
    .await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let answer = client.get(fixture.origin()).send().await.unwrap();
        assert!(answer.headers().get("connection").is_none());
        assert_eq!(answer.text().await.unwrap(), "{}");
    }
    assert_eq!(fixture.requests().len(), 3);
}
