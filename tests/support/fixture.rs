//! The one loopback server type every fixture stands on (the Sentry ingest endpoint, the Lambda
//! Runtime API, the fault-injecting proxy, the Redash API, the container credentials endpoint,
//! the x5u hosts): a small HTTP/1.1 server on `127.0.0.1:0` that records every request and
//! answers through the fixture's own handler.
//!
//! A fixture must be hit: when the last handle of a [`Fixture`] is dropped, it panics, naming the
//! fixture, if no request reached it. A test that expects no request says so with
//! [`Fixture::expect_no_hits`] (then a request is the failure), or pins the number with
//! [`Fixture::expect_hits`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request as the fixture read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target: path and query string.
    pub target: String,
    /// `HTTP/1.1`, as the request line says.
    pub version: String,
    /// Header names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body (Content-Length or chunked, decoded).
    pub body: Vec<u8>,
}

impl Request {
    /// `METHOD target`, e.g. `GET /v1/buckets?x=1`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }

    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The value of a header (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The body of an answer.
pub enum Body {
    /// These bytes, announced with this Content-Length (more than the bytes for a truncated
    /// answer).
    Bytes { data: Vec<u8>, declared_len: usize },
    /// `Transfer-Encoding: chunked`, one chunk per item, until the stream ends or the client
    /// goes away.
    Chunked(BoxStream<'static, Vec<u8>>),
}

/// An HTTP answer.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    /// This status, no header, an empty body.
    pub fn status(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Bytes {
                data: Vec::new(),
                declared_len: 0,
            },
        }
    }

    /// This status with a body of this content type.
    pub fn with_body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response::status(status)
            .header("Content-Type", content_type)
            .body(body)
    }

    /// This status with a JSON body.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::with_body(status, "application/json", body)
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replace the body (its Content-Length is its length).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        let data = body.into();
        self.body = Body::Bytes {
            declared_len: data.len(),
            data,
        };
        self
    }

    /// Announce this Content-Length whatever the body holds (a truncated answer).
    pub fn declared_len(mut self, len: usize) -> Response {
        if let Body::Bytes { declared_len, .. } = &mut self.body {
            *declared_len = len;
        }
        self
    }

    /// A chunked body made of what `chunks` yields.
    pub fn chunked(mut self, chunks: BoxStream<'static, Vec<u8>>) -> Response {
        self.body = Body::Chunked(chunks);
        self
    }
}

/// What a handler does with a request.
pub enum Reply {
    Answer(Response),
    /// Close the connection without answering (a TCP reset).
    Reset,
}

impl From<Response> for Reply {
    fn from(response: Response) -> Reply {
        Reply::Answer(response)
    }
}

/// What a fixture does with a connection once it has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Every answer says `Connection: close` and ends its connection (one request each).
    Close,
    /// HTTP/1.1 keep-alive: requests one after the other on the same connection.
    KeepAlive,
}

/// How many requests the fixture must have seen when it is dropped.
#[derive(Debug, Clone, Copy)]
enum Expect {
    AtLeastOne,
    Exactly(usize),
}

/// The requests a fixture received, in arrival order; a view that does not keep the fixture
/// alive (for another fixture's handler to read).
#[derive(Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<Request>>>);

impl RequestLog {
    pub fn all(&self) -> Vec<Request> {
        self.0.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&self, request: Request) {
        self.0.lock().unwrap().push(request);
    }
}

type Handler = Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

struct Inner {
    name: String,
    address: String,
    log: RequestLog,
    expect: Mutex<Expect>,
    server: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.server.abort();
        if std::thread::panicking() {
            return;
        }
        let hits = self.log.len();
        let (name, address) = (&self.name, &self.address);
        match *self.expect.lock().unwrap() {
            Expect::AtLeastOne => assert!(
                hits > 0,
                "the {name} fixture at {address} was never hit: the test does not exercise it \
                 (if no request is the point, say so with `.expect_no_hits()`)"
            ),
            Expect::Exactly(n) => assert_eq!(
                hits,
                n,
                "the {name} fixture at {address} got {hits} request(s) instead of {n}: {:?}",
                self.log.all().iter().map(Request::line).collect::<Vec<_>>()
            ),
        }
    }
}

/// A running loopback server; clones share it, and the last one dropped checks the hits.
#[derive(Clone)]
pub struct Fixture {
    inner: Arc<Inner>,
}

impl Fixture {
    /// Serve `handler` on a free loopback port, handling connections as `connection` says.
    /// `name` is what the hit check names.
    pub async fn start<F, Fut>(name: &str, connection: Connection, handler: F) -> Fixture
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |request| Box::pin(handler(request)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let log = RequestLog::default();
        let server_log = log.clone();
        let close = connection == Connection::Close;
        let server = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (log, handler) = (server_log.clone(), handler.clone());
                tokio::spawn(serve(socket, log, handler, close));
            }
        });
        Fixture {
            inner: Arc::new(Inner {
                name: name.into(),
                address,
                log,
                expect: Mutex::new(Expect::AtLeastOne),
                server: server.abort_handle(),
            }),
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.inner.address)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.inner.log.all()
    }

    /// The request log, as a view that does not keep the fixture alive.
    pub fn log(&self) -> RequestLog {
        self.inner.log.clone()
    }

    /// The test expects this fixture to get no request at all.
    pub fn expect_no_hits(&self) {
        self.expect_hits(0);
    }

    /// The test expects exactly `n` requests.
    pub fn expect_hits(&self, n: usize) {
        *self.inner.expect.lock().unwrap() = Expect::Exactly(n);
    }
}

/// One connection: requests one after the other until the client or a `close` answer ends it.
async fn serve(socket: TcpStream, log: RequestLog, handler: Handler, close: bool) {
    let mut socket = BufReader::new(socket);
    while let Some(request) = read_request(&mut socket).await {
        log.push(request.clone());
        match handler(request).await {
            Reply::Reset => {
                let _ = socket.get_mut().set_zero_linger();
                return;
            }
            Reply::Answer(response) => {
                if write_response(socket.get_mut(), response, close)
                    .await
                    .is_err()
                    || close
                {
                    return;
                }
            }
        }
    }
}

/// One request: method, target, headers, body (Content-Length or chunked); `None` when the client
/// goes away first.
async fn read_request(socket: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if socket.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let version = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if socket.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let mut request = Request {
        method,
        target,
        version,
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            socket.read_line(&mut size).await.ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            socket.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            request.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
    {
        request.body = vec![0; length];
        socket.read_exact(&mut request.body).await.ok()?;
    }
    Some(request)
}

async fn write_response(
    socket: &mut TcpStream,
    response: Response,
    close: bool,
) -> std::io::Result<()> {
    let reason = http::StatusCode::from_u16(response.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Status");
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (k, v) in &response.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &response.body {
        Body::Bytes { declared_len, .. } => {
            head.push_str(&format!("Content-Length: {declared_len}\r\n"))
        }
        Body::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await?;
    match response.body {
        Body::Bytes { data, .. } => socket.write_all(&data).await?,
        Body::Chunked(mut chunks) => {
            while let Some(chunk) = chunks.next().await {
                let framed =
                    [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                socket.write_all(&framed).await?;
            }
            socket.write_all(b"0\r\n\r\n").await?;
        }
    }
    socket.flush().await
}
