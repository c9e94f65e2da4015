//! A loopback AWS Lambda Runtime API (the `2018-06-01` interface Lambda gives a custom runtime's
//! `bootstrap`) and the real binary started as that bootstrap. Tests queue events; the binary polls
//! `GET /runtime/invocation/next` (answered with the request id, deadline and function ARN
//! headers), and the server records what comes back: `POST /runtime/invocation/{id}/response`,
//! `.../{id}/error` and `/runtime/init/error`. Each post notes how many events the Sentry listener
//! given at start had received when the post arrived, so tests can assert the order.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::sentry::SentryListener;

pub const FUNCTION_NAME: &str = "rsl-test-function";
pub const FUNCTION_VERSION: &str = "$LATEST";
pub const FUNCTION_ARN: &str =
    "arn:aws:lambda:eu-central-1:123456789012:function:rsl-test-function";
/// How long an invocation may run, as the deadline header tells the runtime.
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(60);

/// What the runtime posted back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostKind {
    Response,
    Error,
    InitError,
}

#[derive(Debug, Clone)]
pub struct Post {
    pub kind: PostKind,
    /// The invocation's request id (none for an init error).
    pub request_id: Option<String>,
    pub body: Value,
    /// The `Lambda-Runtime-Function-Error-Type` header, when sent.
    pub error_type_header: Option<String>,
    /// Events the Sentry listener had received when this post arrived.
    pub sentry_events_before: usize,
}

impl Post {
    /// The response document; panics (with the post) when this is not a response.
    pub fn response(&self) -> &Value {
        assert_eq!(self.kind, PostKind::Response, "not a response: {self:#?}");
        &self.body
    }

    /// `(errorType, errorMessage)`; panics when this is not an error.
    pub fn error(&self) -> (&str, &str) {
        assert_ne!(self.kind, PostKind::Response, "not an error: {self:#?}");
        (
            self.body["errorType"].as_str().expect("errorType"),
            self.body["errorMessage"].as_str().expect("errorMessage"),
        )
    }
}

struct Invocation {
    request_id: String,
    body: String,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Invocation>,
    posts: Vec<Post>,
    polls: usize,
}

#[derive(Clone)]
pub struct RuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    state: Arc<Mutex<State>>,
}

impl RuntimeApi {
    /// Start the server; `sentry` is the listener whose events the posts are ordered against.
    pub async fn start(sentry: Option<&SentryListener>) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let api = RuntimeApi { address, state };
        let server = api.clone();
        let sentry = sentry.cloned();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let server = server.clone();
                let sentry = sentry.clone();
                tokio::spawn(async move { server.serve(socket, sentry).await });
            }
        });
        api
    }

    /// Queue an invocation with this event; returns its request id.
    pub fn invoke(&self, event: &Value) -> String {
        let request_id = super::unique("req");
        self.state.lock().unwrap().queue.push_back(Invocation {
            request_id: request_id.clone(),
            body: event.to_string(),
        });
        request_id
    }

    /// What the runtime posted for this invocation (waits up to two minutes).
    pub async fn outcome(&self, request_id: &str) -> Post {
        self.wait_for(|p| p.request_id.as_deref() == Some(request_id))
            .await
    }

    /// The init error the runtime posted (waits up to two minutes).
    pub async fn init_error(&self) -> Post {
        self.wait_for(|p| p.kind == PostKind::InitError).await
    }

    /// Everything posted so far, in order.
    pub fn posts(&self) -> Vec<Post> {
        self.state.lock().unwrap().posts.clone()
    }

    /// How many `GET /next` requests were answered with an event.
    pub fn polls(&self) -> usize {
        self.state.lock().unwrap().polls
    }

    async fn wait_for(&self, found: impl Fn(&Post) -> bool) -> Post {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(post) = self.state.lock().unwrap().posts.iter().find(|p| found(p)) {
                return post.clone();
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "nothing posted within 120 s; posts so far: {:#?}",
                self.posts()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// One connection: HTTP/1.1 requests one after the other (the runtime keeps it alive).
    async fn serve(&self, socket: TcpStream, sentry: Option<SentryListener>) {
        let mut socket = BufReader::new(socket);
        while let Some((method, path, headers, body)) = read_request(&mut socket).await {
            let reply = match (method.as_str(), path.as_str()) {
                ("GET", "/2018-06-01/runtime/invocation/next") => {
                    let invocation = self.next_invocation().await;
                    let deadline = SystemTime::now() + INVOCATION_TIMEOUT;
                    let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Lambda-Runtime-Aws-Request-Id: {}\r\n\
                         Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n\
                         Lambda-Runtime-Invoked-Function-Arn: {FUNCTION_ARN}\r\n\
                         Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n\
                         Content-Length: {}\r\n\r\n{}",
                        invocation.request_id,
                        invocation.body.len(),
                        invocation.body
                    )
                }
                ("POST", path) => match post_kind(path) {
                    Some((kind, request_id)) => {
                        let post = Post {
                            kind,
                            request_id,
                            body: serde_json::from_slice(&body).unwrap_or_else(|_| {
                                Value::String(String::from_utf8_lossy(&body).into_owned())
                            }),
                            error_type_header: headers
                                .iter()
                                .find(|(k, _)| k == "lambda-runtime-function-error-type")
                                .map(|(_, v)| v.clone()),
                            sentry_events_before: sentry.as_ref().map_or(0, |s| s.events().len()),
                        };
                        self.state.lock().unwrap().posts.push(post);
                        let ok = r#"{"status":"OK"}"#;
                        format!(
                            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{ok}",
                            ok.len()
                        )
                    }
                    None => not_found(),
                },
                _ => not_found(),
            };
            if socket.get_mut().write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// The next queued invocation; like Lambda, `GET /next` waits until there is one.
    async fn next_invocation(&self) -> Invocation {
        loop {
            {
                let mut state = self.state.lock().unwrap();
                if let Some(invocation) = state.queue.pop_front() {
                    state.polls += 1;
                    return invocation;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn not_found() -> String {
    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
}

/// `(kind, request id)` of a runtime post path.
fn post_kind(path: &str) -> Option<(PostKind, Option<String>)> {
    if path == "/2018-06-01/runtime/init/error" {
        return Some((PostKind::InitError, None));
    }
    let rest = path.strip_prefix("/2018-06-01/runtime/invocation/")?;
    let (id, kind) = rest.split_once('/')?;
    let kind = match kind {
        "response" => PostKind::Response,
        "error" => PostKind::Error,
        _ => return None,
    };
    Some((kind, Some(id.to_string())))
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

/// One request: method, path, lower-cased headers, body (Content-Length or chunked).
async fn read_request(socket: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if socket.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        socket.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            socket.read_line(&mut size).await.ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            socket.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = header("content-length").and_then(|v| v.parse().ok()) {
        body = vec![0; length];
        socket.read_exact(&mut body).await.ok()?;
    }
    Some((method, path, headers, body))
}

/// The real binary running as a Lambda `bootstrap` against a [`RuntimeApi`]; killed when dropped.
pub struct Bootstrap {
    child: tokio::process::Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Bootstrap {
    /// Start the test build of the binary with `_HANDLER=handler`, Lambda's variables and `env`
    /// (nothing else inherited but PATH).
    pub fn start(api: &RuntimeApi, handler: &str, env: &[(&str, &str)]) -> Bootstrap {
        Bootstrap::start_binary(
            Path::new(env!("CARGO_BIN_EXE_remote-settings-lambdas")),
            api,
            handler,
            env,
        )
    }

    pub fn start_binary(
        binary: &Path,
        api: &RuntimeApi,
        handler: &str,
        env: &[(&str, &str)],
    ) -> Bootstrap {
        let mut cmd = tokio::process::Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("_HANDLER", handler)
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
            .env("AWS_LAMBDA_FUNCTION_VERSION", FUNCTION_VERSION)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_REGION", "eu-central-1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the binary starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), stdout.clone());
        collect(child.stderr.take().unwrap(), stderr.clone());
        Bootstrap {
            child,
            stdout,
            stderr,
        }
    }

    /// What the process printed so far (its CloudWatch logs, in Lambda).
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The exit code, once the process ends by itself (waits up to a minute).
    pub async fn exit_code(&mut self) -> i32 {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("the bootstrap exited within 60 s")
            .expect("wait for the bootstrap");
        status.code().unwrap_or(-1)
    }
}

fn collect(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static, into: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
}
