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
use tokio::io::{AsyncBufReadExt, BufReader};

use super::fixture::{Connection, Fixture, Reply, Request, RequestLog, Response};
use super::sentry::{self, SentryListener};

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
    pub fixture: Fixture,
    state: Arc<Mutex<State>>,
}

impl RuntimeApi {
    /// Start the server; `sentry` is the listener whose events the posts are ordered against.
    pub async fn start(sentry: Option<&SentryListener>) -> RuntimeApi {
        let state = Arc::new(Mutex::new(State::default()));
        let sentry = sentry.map(|s| s.fixture.log());
        let server_state = state.clone();
        // The runtime keeps its connection alive between requests.
        let fixture = Fixture::start(
            "Lambda Runtime API",
            Connection::KeepAlive,
            move |request| answer(server_state.clone(), sentry.clone(), request),
        )
        .await;
        RuntimeApi {
            address: fixture.address().to_string(),
            fixture,
            state,
        }
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
}

/// The Runtime API's answer to one request.
async fn answer(state: Arc<Mutex<State>>, sentry: Option<RequestLog>, request: Request) -> Reply {
    match (request.method.as_str(), request.target.as_str()) {
        ("GET", "/2018-06-01/runtime/invocation/next") => {
            let invocation = next_invocation(&state).await;
            let deadline = SystemTime::now() + INVOCATION_TIMEOUT;
            let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
            Response::json(200, invocation.body)
                .header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
                .header("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string())
                .header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
                .header(
                    "Lambda-Runtime-Trace-Id",
                    "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
                )
                .into()
        }
        ("POST", path) => match post_kind(path) {
            Some((kind, request_id)) => {
                let body = &request.body;
                let post = Post {
                    kind,
                    request_id,
                    body: serde_json::from_slice(body).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(body).into_owned())
                    }),
                    error_type_header: request
                        .header("lambda-runtime-function-error-type")
                        .map(String::from),
                    sentry_events_before: sentry.as_ref().map_or(0, |s| sentry::events(s).len()),
                };
                state.lock().unwrap().posts.push(post);
                Response::json(202, r#"{"status":"OK"}"#).into()
            }
            None => Response::status(404).into(),
        },
        _ => Response::status(404).into(),
    }
}

/// The next queued invocation; like Lambda, `GET /next` waits until there is one.
async fn next_invocation(state: &Mutex<State>) -> Invocation {
    loop {
        {
            let mut state = state.lock().unwrap();
            if let Some(invocation) = state.queue.pop_front() {
                state.polls += 1;
                return invocation;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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
