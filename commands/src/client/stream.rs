//! Streamed answers: a request whose 2xx body is handed chunk by chunk to a [`Sink`] and never
//! held whole (attachments of any size, hashed as they arrive). Same timeouts, retries, backoff,
//! in-flight cap and credential rules as [`HttpClient::send`]; an attempt that fails midway is
//! retried with a fresh sink, so a sink only ever sees one whole body.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::retry::classify;
use super::send::Attempt;
use super::{ClientError, HttpClient, Request};

/// What a streamed body is written to, one chunk at a time.
pub trait Sink {
    fn write(&mut self, chunk: &[u8]);
}

/// The status and headers of a streamed answer; its body went to the sink.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

/// At most this much of an error answer is read, for its detail.
const ERROR_BODY_MAX: usize = 64 * 1024;

impl HttpClient {
    /// Send `request` with retries and write its 2xx body into a sink made by `new_sink` for each
    /// attempt; the sink of the attempt that succeeded is returned with the answer's head. A
    /// non-2xx answer is an error, as with [`HttpClient::send`] (its body is read up to 64 KiB).
    pub async fn stream<S: Sink>(
        &self,
        request: &Request,
        new_sink: impl Fn() -> S,
    ) -> Result<(Head, S), ClientError> {
        let new_sink = &new_sink;
        self.retrying(request, move || async move {
            self.within_cap(self.stream_attempt(request, new_sink()))
                .await
        })
        .await
    }

    async fn stream_attempt<S: Sink>(&self, request: &Request, mut sink: S) -> Attempt<(Head, S)> {
        let builder = self.request_builder(request);
        let (mut response, status, headers) = match self.answer(request, builder).await {
            Ok(answer) => answer,
            Err(failed) => return failed,
        };
        let mut error_body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if status.is_success() => sink.write(&chunk),
                Ok(Some(chunk)) => {
                    let room = ERROR_BODY_MAX.saturating_sub(error_body.len());
                    error_body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if error_body.len() >= ERROR_BODY_MAX {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return Attempt::Retry(classify(&e), None),
            }
        }
        if status.is_success() {
            return Attempt::Done((Head { status, headers }, sink));
        }
        self.error_status(status, &headers, &error_body)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::fast_client;
    use super::*;
    use reqwest::{Method, Url};
    use std::sync::{Arc, Mutex};

    /// A loopback server answering each connection with the next raw reply, then closing it;
    /// returns its URL and the number of requests it took.
    async fn raw_server(replies: Vec<String>) -> (String, Arc<Mutex<usize>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/f.bin", listener.local_addr().unwrap());
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
                if let Some(reply) = replies.next() {
                    let _ = socket.write_all(reply.as_bytes()).await;
                }
            }
        });
        (url, seen)
    }

    fn reply(status: u16, declared_length: usize, body: &str) -> String {
        format!("HTTP/1.1 {status} X\r\nContent-Length: {declared_length}\r\nConnection: close\r\n\r\n{body}")
    }

    /// Collects the chunks of one body.
    #[derive(Debug, Default)]
    struct Collect(Vec<u8>);

    impl Sink for Collect {
        fn write(&mut self, chunk: &[u8]) {
            self.0.extend_from_slice(chunk);
        }
    }

    fn client(_url: &str) -> HttpClient {
        fast_client(4)
    }

    #[tokio::test]
    async fn a_body_cut_midway_is_retried_with_a_fresh_sink() {
        let (url, seen) = raw_server(vec![
            reply(200, 11, "hello"),
            reply(503, 2, "{}"),
            reply(200, 11, "hello world"),
        ])
        .await;
        let request = Request::new(Method::GET, Url::parse(&url).unwrap());
        let (head, sink) = client(&url)
            .stream(&request, Collect::default)
            .await
            .unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(sink.0, b"hello world");
        assert_eq!(*seen.lock().unwrap(), 3);
    }

    #[tokio::test]
    async fn a_4xx_is_final_and_not_retried() {
        let body = r#"{"message": "gone"}"#;
        let (url, seen) = raw_server(vec![reply(404, body.len(), body)]).await;
        let request = Request::new(Method::GET, Url::parse(&url).unwrap());
        let err = client(&url)
            .stream(&request, Collect::default)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(404));
        assert_eq!(
            err.to_string(),
            format!("GET {url} failed: HTTP 404 (gone)")
        );
        assert_eq!(*seen.lock().unwrap(), 1);
    }
}
