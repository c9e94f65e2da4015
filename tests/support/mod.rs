//! Shared by the integration tests: the real test stack (started by `make test` through
//! `testing/stack.py`, which exports `RSL_TEST_*`), a Kinto helper to create test data, and the
//! real binary run as a child process. Without the stack every test fails loudly.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]

pub mod proxy;
pub mod sentry;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

/// Where the running test stack is.
#[derive(Debug, Clone)]
pub struct Stack {
    pub server: String,
    pub small_pages_server: String,
    pub editor: String,
    pub reviewer: String,
    pub root_hash: String,
    pub autograph: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the integration tests need the real Kinto stack. \
             Run them with `make test` (or `.venv/bin/python testing/stack.py run -- cargo nextest run`)."
        )
    })
}

impl Stack {
    pub fn get() -> Stack {
        Stack {
            server: var("RSL_TEST_SERVER"),
            small_pages_server: var("RSL_TEST_SMALL_PAGES_SERVER"),
            editor: var("RSL_TEST_EDITOR_AUTH"),
            reviewer: var("RSL_TEST_REVIEWER_AUTH"),
            root_hash: var("RSL_TEST_ROOT_HASH"),
            autograph: var("RSL_TEST_AUTOGRAPH_URL"),
        }
    }

    pub fn editor(&self) -> Kinto {
        Kinto::new(&self.server, &self.editor)
    }

    pub fn reviewer(&self) -> Kinto {
        Kinto::new(&self.server, &self.reviewer)
    }
}

/// A unique id for this test run's scratch objects.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// A thin Kinto client for arranging test data (not the code under test).
#[derive(Clone)]
pub struct Kinto {
    pub base: String,
    http: reqwest::Client,
    user: String,
    password: String,
}

impl Kinto {
    pub fn new(server: &str, auth: &str) -> Kinto {
        let (user, password) = auth.split_once(':').expect("user:pass");
        Kinto {
            base: server.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            user: user.into(),
            password: password.into(),
        }
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let url = format!("{}{}", self.base, path);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .basic_auth(&self.user, Some(&self.password));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, headers)
    }

    /// Send and require a 2xx.
    pub async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value, _) = self.request(method.clone(), path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: HTTP {status}: {value}"
        );
        value
    }

    pub async fn create_bucket(&self, bid: &str) {
        self.ok(
            reqwest::Method::PUT,
            &format!("/buckets/{bid}"),
            Some(json!({"permissions": {"read": ["system.Everyone"]}})),
        )
        .await;
    }

    pub async fn create_collection(&self, bid: &str, cid: &str) {
        self.ok(
            reqwest::Method::PUT,
            &format!("/buckets/{bid}/collections/{cid}"),
            None,
        )
        .await;
    }

    pub async fn put_record(&self, bid: &str, cid: &str, record: Value) -> Value {
        let id = record["id"].as_str().expect("record id").to_string();
        self.ok(
            reqwest::Method::PUT,
            &format!("/buckets/{bid}/collections/{cid}/records/{id}"),
            Some(json!({"data": record})),
        )
        .await["data"]
            .clone()
    }

    pub async fn delete_record(&self, bid: &str, cid: &str, id: &str) {
        self.ok(
            reqwest::Method::DELETE,
            &format!("/buckets/{bid}/collections/{cid}/records/{id}"),
            None,
        )
        .await;
    }

    pub async fn patch_collection(&self, bid: &str, cid: &str, data: Value) -> Value {
        self.ok(
            reqwest::Method::PATCH,
            &format!("/buckets/{bid}/collections/{cid}"),
            Some(json!({"data": data})),
        )
        .await["data"]
            .clone()
    }

    /// The records timestamp (ETag) of a collection.
    pub async fn records_timestamp(&self, bid: &str, cid: &str) -> u64 {
        let (status, _, headers) = self
            .request(
                reqwest::Method::GET,
                &format!("/buckets/{bid}/collections/{cid}/records"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        headers["ETag"]
            .to_str()
            .unwrap()
            .trim_matches('"')
            .parse()
            .unwrap()
    }
}

/// What the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Run the real binary with exactly these environment variables (nothing inherited but PATH).
pub async fn run_bin(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_remote-settings-lambdas"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    let env: BTreeMap<&str, &str> = env.iter().copied().collect();
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("the binary finished within 120 s")
        .expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
