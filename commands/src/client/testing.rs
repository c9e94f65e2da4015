//! Loopback servers and clients for the unit tests of the client and of the Kinto layer (the
//! integration tests run against the real stack).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{HttpClient, Limits};

/// The shared settings' defaults (timeout 2 s, 4 retries, backoff 0.5 s, 4 in flight) with
/// `retries` and `retry_backoff` as given.
pub fn limits(retries: u32, retry_backoff: Duration) -> Limits {
    Limits {
        timeout: Duration::from_secs(2),
        retries,
        retry_backoff,
        parallel: NonZeroUsize::new(4).unwrap(),
    }
}

/// A client retrying `retries` times, 1 ms apart.
pub fn fast_client(retries: u32) -> HttpClient {
    HttpClient::new(limits(retries, Duration::from_millis(1)))
}

/// A loopback server that answers every connection with `{}` after `delay`.
pub async fn slow_server(delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                              Content-Length: 2\r\nConnection: close\r\n\r\n{}";
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/v1")
}

/// A loopback server answering each connection with the next scripted reply (`None`
/// closes the connection unanswered) and counting requests.
pub async fn scripted(replies: Vec<Option<(u16, &'static str)>>) -> (String, Arc<Mutex<usize>>) {
    serve_script(
        replies
            .into_iter()
            .map(|r| r.map(|(status, body)| (status, "", body)))
            .collect(),
    )
    .await
}

/// [`scripted`], each reply with header lines of its own (`"Name: value\r\n"` each).
pub async fn scripted_with_headers(
    replies: Vec<(u16, &'static str, &'static str)>,
) -> (String, Arc<Mutex<usize>>) {
    serve_script(replies.into_iter().map(Some).collect()).await
}

async fn serve_script(
    replies: Vec<Option<(u16, &'static str, &'static str)>>,
) -> (String, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(0usize));
    let count = seen.clone();
    tokio::spawn(async move {
        let mut replies = replies.into_iter();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            *count.lock().unwrap() += 1;
            if let Some(Some((status, headers, body))) = replies.next() {
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        }
    });
    (base, seen)
}

/// A loopback server answering each connection with the next canned `(status, body)` and
/// keeping the request bodies it received.
pub async fn canned_server(answers: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<String>>>) {
    slow_canned_server(answers, Duration::ZERO).await
}

/// The same, answering each request after `delay`.
pub async fn slow_canned_server(
    answers: Vec<(u16, String)>,
    delay: Duration,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = received.clone();
    tokio::spawn(async move {
        for (status, body) in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body_start = loop {
                let n = socket.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
            };
            let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            while buf.len() < body_start + length {
                let n = socket.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[body_start..]).into_owned());
            tokio::time::sleep(delay).await;
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    (url, received)
}

/// A loopback server answering `{}` to every request and keeping the request heads it received
/// (request line and headers, lower-cased).
pub async fn recording_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).to_ascii_lowercase());
            let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: 2\r\nConnection: close\r\n\r\n{}";
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (base, heads)
}
