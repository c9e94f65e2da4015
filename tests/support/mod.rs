//! Shared by the integration tests: the real test stack (started by `make test` through
//! `testing/stack.py`, which exports `RSL_TEST_*`), a Kinto helper to create test data, and the
//! real binary run as a child process. Without the stack every test fails loudly. The submodules
//! hold the test kit: the loopback fixtures, all on one server type (`fixture`) that fails a test
//! leaving it unhit, the builders of test data (`data`), and the secrets sweep's scaffold
//! (`sweep`).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]

pub mod container_credentials;
pub mod data;
pub mod fixture;
pub mod gcs;
pub mod lambda;
pub mod proxy;
pub mod redash;
pub mod s3;
pub mod sentry;
pub mod sweep;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

/// Where the running test stack is.
#[derive(Debug, Clone)]
pub struct Stack {
    pub server: String,
    pub small_pages_server: String,
    /// A server of its own for tests that write thousands of records.
    pub bulk_server: String,
    /// A Kinto with the changes plugin but without the signer: no `capabilities.signer`.
    pub reader_server: String,
    /// The main server behind the production CDN's edge rules (`/v1`, testing/edge.py): what
    /// readers are pointed at, so that a request the CDN would refuse fails the test.
    pub edge: String,
    /// The main server behind a `/v2`-shaped (git-reader) front.
    pub v2: String,
    /// `user:pass` of the users: editor and reviewer write the workspace buckets, admin writes
    /// every bucket (destinations and previews too), nobody writes nothing.
    pub editor: String,
    pub reviewer: String,
    pub admin: String,
    pub nobody: String,
    /// Colon-hex SHA-256 of the run's root certificate (the `ROOT_HASH` that pins it).
    pub root_hash: String,
    pub autograph: String,
    /// moto's S3-compatible endpoint.
    pub s3_endpoint: String,
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
            bulk_server: var("RSL_TEST_BULK_SERVER"),
            reader_server: var("RSL_TEST_READER_SERVER"),
            edge: var("RSL_TEST_EDGE_SERVER"),
            v2: var("RSL_TEST_V2_SERVER"),
            editor: var("RSL_TEST_EDITOR_AUTH"),
            reviewer: var("RSL_TEST_REVIEWER_AUTH"),
            admin: var("RSL_TEST_ADMIN_AUTH"),
            nobody: var("RSL_TEST_NOBODY_AUTH"),
            root_hash: var("RSL_TEST_ROOT_HASH"),
            autograph: var("RSL_TEST_AUTOGRAPH_URL"),
            s3_endpoint: var("RSL_TEST_S3_ENDPOINT"),
        }
    }

    pub fn admin(&self) -> Kinto {
        Kinto::new(&self.server, &self.admin)
    }

    /// Create `source_bucket/cid` holding `records` and publish it through kinto-signer: in the
    /// buckets with review (`main-workspace`, `security-state-staging`) the editor asks for review
    /// and the reviewer approves; elsewhere the editor asks for signature directly. Returns the
    /// destination's records timestamp. (Creating a source collection signs it at once, so an
    /// empty collection is published by its creation alone.)
    pub async fn publish(&self, source_bucket: &str, cid: &str, records: &[Value]) -> u64 {
        let editor = self.editor();
        editor.create_collection(source_bucket, cid).await;
        editor.put_records(source_bucket, cid, records).await;
        self.sign(source_bucket, cid).await;
        let destination = match source_bucket {
            "main-workspace" => "main",
            "staging" => "blocklists",
            "security-state-staging" => "security-state",
            other => panic!("publish() does not know the destination of {other}"),
        };
        editor.records_timestamp(destination, cid).await
    }

    /// Ask for the signature of a source collection that has pending changes, with review
    /// where its bucket requires it.
    pub async fn sign(&self, source_bucket: &str, cid: &str) {
        let review = REVIEWED_WORKSPACES.contains(&source_bucket);
        if review {
            self.editor()
                .patch_collection(source_bucket, cid, json!({"status": "to-review"}))
                .await;
            self.reviewer()
                .patch_collection(source_bucket, cid, json!({"status": "to-sign"}))
                .await;
        } else {
            self.editor()
                .patch_collection(source_bucket, cid, json!({"status": "to-sign"}))
                .await;
        }
    }

    /// A scratch monitor collection listing exactly these `(bucket, collection, last_modified)`
    /// entries, for the commands' `BUCKET`/`COLLECTION` settings: tests see only their own
    /// collections, not what other tests publish meanwhile. Returns `(bucket, collection)`.
    pub async fn scratch_monitor(&self, entries: &[(&str, &str, u64)]) -> (String, String) {
        let bid = unique("mon");
        self.monitor_named(&bid, entries).await;
        (bid, "changes".to_string())
    }

    /// A monitor collection `bid/changes` listing exactly these entries, on this stack's server
    /// (tests comparing two servers give both a monitor of the same name).
    pub async fn monitor_named(&self, bid: &str, entries: &[(&str, &str, u64)]) {
        let kinto = self.editor();
        let bid = bid.to_string();
        kinto.create_bucket(&bid).await;
        kinto.create_collection(&bid, "changes").await;
        // Kinto keeps a given last_modified only when it is newer than the collection's: write
        // the entries oldest first.
        let mut sorted: Vec<_> = entries.to_vec();
        sorted.sort_by_key(|e| e.2);
        for (i, (bucket, collection, ts)) in sorted.iter().enumerate() {
            kinto
                .put_record(
                    &bid,
                    "changes",
                    json!({"id": format!("e{i}"), "bucket": bucket, "collection": collection,
                           "last_modified": ts, "host": ""}),
                )
                .await;
        }
    }

    pub fn editor(&self) -> Kinto {
        Kinto::new(&self.server, &self.editor)
    }

    pub fn reviewer(&self) -> Kinto {
        Kinto::new(&self.server, &self.reviewer)
    }
}

/// The stack's workspaces whose changes need a review (testing/stack.py's signer settings).
pub const REVIEWED_WORKSPACES: [&str; 2] = ["main-workspace", "security-state-staging"];

/// A unique id for this test run's scratch objects.
/// Seconds since the epoch (for `--at`/`CHECK_AT` moved from now).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

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

    /// Create a collection. In the workspaces with review, its review groups are then set up
    /// as an administrator of today's service does: kinto-remote-settings creates
    /// `{cid}-editors` (holding the creator) and an empty `{cid}-reviewers` with the collection,
    /// and refuses a review from anyone outside the latter; the stack's reviewer goes there. (The
    /// 2020 server checks no groups: they are plain groups there.)
    pub async fn create_collection(&self, bid: &str, cid: &str) {
        self.ok(
            reqwest::Method::PUT,
            &format!("/buckets/{bid}/collections/{cid}"),
            None,
        )
        .await;
        if REVIEWED_WORKSPACES.contains(&bid) {
            self.ok(
                reqwest::Method::PUT,
                &format!("/buckets/{bid}/groups/{cid}-reviewers"),
                Some(json!({"data": {"members": [var("RSL_TEST_REVIEWER_ID")]}})),
            )
            .await;
        }
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

    /// Create or replace many records through `/batch`, 25 per request.
    pub async fn put_records(&self, bid: &str, cid: &str, records: &[Value]) {
        for chunk in records.chunks(25) {
            let requests: Vec<Value> = chunk
                .iter()
                .map(|r| {
                    let id = r["id"].as_str().expect("record id");
                    json!({"method": "PUT",
                           "path": format!("/buckets/{bid}/collections/{cid}/records/{id}"),
                           "body": {"data": r}})
                })
                .collect();
            let answer = self
                .ok(
                    reqwest::Method::POST,
                    "/batch",
                    Some(json!({"requests": requests})),
                )
                .await;
            for response in answer["responses"].as_array().expect("batch responses") {
                let status = response["status"].as_u64().unwrap_or(0);
                assert!((200..300).contains(&status), "batch PUT: {response}");
            }
        }
    }

    /// Upload `content` as the attachment of record `rid` (created if need be), as
    /// kinto-attachment takes it: a multipart form with the file as `attachment`.
    pub async fn upload_attachment(
        &self,
        bid: &str,
        cid: &str,
        rid: &str,
        filename: &str,
        content: &[u8],
    ) {
        let boundary = "rsl-test-boundary-7f3a";
        let mut form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        form.extend_from_slice(content);
        form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let url = format!(
            "{}/buckets/{bid}/collections/{cid}/records/{rid}/attachment",
            self.base
        );
        let response = self
            .http
            .post(&url)
            .basic_auth(&self.user, Some(&self.password))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert!(response.status().is_success(), "POST {url}: {response:?}");
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

    /// A collection's metadata (its `data`: `status`, `last_editor_comment`...).
    pub async fn collection(&self, bid: &str, cid: &str) -> Value {
        self.ok(
            reqwest::Method::GET,
            &format!("/buckets/{bid}/collections/{cid}"),
            None,
        )
        .await["data"]
            .clone()
    }

    /// The records of a collection by id, as stored.
    pub async fn records_by_id(&self, bid: &str, cid: &str) -> BTreeMap<String, Value> {
        let list = self
            .ok(
                reqwest::Method::GET,
                &format!("/buckets/{bid}/collections/{cid}/records"),
                None,
            )
            .await;
        list["data"]
            .as_array()
            .expect("a list of records")
            .iter()
            .map(|r| (r["id"].as_str().expect("record id").to_string(), r.clone()))
            .collect()
    }

    /// The records of a collection by id without `last_modified`: what a copy must reproduce.
    pub async fn contents(&self, bid: &str, cid: &str) -> BTreeMap<String, Value> {
        let mut records = self.records_by_id(bid, cid).await;
        for record in records.values_mut() {
            record
                .as_object_mut()
                .expect("a record")
                .remove("last_modified");
        }
        records
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

    /// Panics if one of `secrets` shows in stdout or stderr.
    pub fn assert_hides(&self, secrets: &[&str]) {
        for secret in secrets {
            assert!(
                !self.stdout.contains(secret) && !self.stderr.contains(secret),
                "{secret} shown: {self:?}"
            );
        }
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
