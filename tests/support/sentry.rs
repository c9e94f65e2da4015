//! A loopback Sentry ingest endpoint: accepts envelope POSTs at `/api/<project>/envelope/` like
//! sentry.io does, answers 200, and keeps every body for the test to read.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct SentryListener {
    /// A DSN pointing at this listener.
    pub dsn: String,
    received: Arc<Mutex<Vec<(String, String)>>>,
}

impl SentryListener {
    pub async fn start() -> SentryListener {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    break;
                };
                let store = store.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 16384];
                    loop {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() < head_end + 4 + length {
                            continue;
                        }
                        let path = head.split(' ').nth(1).unwrap_or("").to_string();
                        let body =
                            String::from_utf8_lossy(&buf[head_end + 4..head_end + 4 + length])
                                .into_owned();
                        store.lock().unwrap().push((path, body));
                        let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
                        let _ = socket.write_all(reply.as_bytes()).await;
                        return;
                    }
                });
            }
        });
        SentryListener {
            dsn: format!("http://publickey@127.0.0.1:{port}/1"),
            received,
        }
    }

    /// Bodies of the envelopes received, in order.
    pub fn envelopes(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Envelopes that hold an event (not sessions or client reports).
    pub fn events(&self) -> Vec<String> {
        self.envelopes()
            .into_iter()
            .filter(|b| b.contains("\"type\":\"event\""))
            .collect()
    }
}
