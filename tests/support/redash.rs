//! A loopback Redash speaking its query results API, since Redash itself cannot run here:
//! `GET /api/queries/<id>/results.json?api_key=<key>` answers
//! `{"query_result": {"id", "query_hash", "query", "data": {"columns", "rows"}, "data_source_id",
//! "runtime", "retrieved_at"}}` with `Content-Type: application/json`, as Redash does. A missing or
//! wrong key gets Redash's own answer to an unauthenticated API call (404
//! `{"message": "Couldn't find resource. Please login and try again."}`, see `redirect_to_login`
//! in redash/authentication), another query id a 404. Scripted replies (an auth proxy's 401, a
//! load balancer's 503, a body that is not JSON, a reset) can be queued for the next requests.
//! Every request line is recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::fixture::{Connection, Fixture, Reply, Request, Response};

/// The status columns of the original's query (`uptake_health.sql`), in its order.
pub const STATUS_COLUMNS: &[&str] = &[
    "up_to_date",
    "success",
    "backoff",
    "pref_disabled",
    "parse_error",
    "content_error",
    "sign_error",
    "sign_retry_error",
    "conflict_error",
    "sync_error",
    "apply_error",
    "server_error",
    "certificate_error",
    "download_error",
    "timeout_error",
    "network_error",
    "offline_error",
    "cleanup_error",
    "unknown_error",
    "custom_1_error",
    "custom_2_error",
    "custom_3_error",
    "custom_4_error",
    "custom_5_error",
];

pub const QUERY_ID: u32 = 61352;

/// One row of the query: a source, its time range, and a count for every status column.
#[derive(Debug, Clone)]
pub struct Row {
    pub source: String,
    pub min_timestamp: u64,
    pub max_timestamp: u64,
    pub counts: Vec<(String, u64)>,
}

/// A row with every status column of the query: the given counts, 0 elsewhere.
pub fn row(source: &str, min_timestamp: u64, max_timestamp: u64, counts: &[(&str, u64)]) -> Row {
    let mut all: Vec<(String, u64)> = STATUS_COLUMNS.iter().map(|s| (s.to_string(), 0)).collect();
    for (status, n) in counts {
        match all.iter_mut().find(|(s, _)| s == status) {
            Some(entry) => entry.1 = *n,
            None => all.push((status.to_string(), *n)),
        }
    }
    Row {
        source: source.into(),
        min_timestamp,
        max_timestamp,
        counts: all,
    }
}

/// The JSON of rows, keys in column order (as Redash serializes them).
fn rows_json(rows: &[Row]) -> String {
    let objects: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut fields = vec![
                format!("\"source\": {}", json!(r.source)),
                format!("\"min_timestamp\": {}", r.min_timestamp),
                format!("\"max_timestamp\": {}", r.max_timestamp),
            ];
            fields.extend(
                r.counts
                    .iter()
                    .map(|(status, n)| format!("{}: {n}", json!(status))),
            );
            format!("{{{}}}", fields.join(", "))
        })
        .collect();
    format!("[{}]", objects.join(", "))
}

/// A Redash results document holding these rows.
pub fn document(rows: &[Row]) -> String {
    let mut names = vec!["source", "min_timestamp", "max_timestamp"];
    if let Some(first) = rows.first() {
        names.extend(first.counts.iter().map(|(s, _)| s.as_str()));
    }
    let columns: Vec<Value> = names
        .iter()
        .map(|n| {
            let kind = if *n == "source" { "string" } else { "integer" };
            json!({"name": n, "friendly_name": n, "type": kind})
        })
        .collect();
    format!(
        r#"{{"query_result": {{"id": 4242, "query_hash": "5d41402abc4b2a76b9719d911017c592", "query": "SELECT uptake.source, ... FROM main_summary ...", "data": {{"columns": {}, "rows": {}}}, "data_source_id": 1, "runtime": 12.5, "retrieved_at": "2019-03-13T00:05:00.000Z"}}}}"#,
        Value::Array(columns),
        rows_json(rows)
    )
}

/// A reply queued for the next request, instead of the normal answer.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// This status with a short HTML body (what proxies and load balancers send).
    Status(u16),
    /// 200 with this body.
    Body(String),
    /// Close the connection without answering.
    Reset,
}

struct State {
    api_key: String,
    body: String,
    script: VecDeque<Scripted>,
}

#[derive(Clone)]
pub struct Redash {
    /// `REDASH_API_QUERY_URL` for this server's query.
    pub query_url: String,
    pub fixture: Fixture,
    state: Arc<Mutex<State>>,
}

impl Redash {
    /// Serve `rows` as query `QUERY_ID`'s latest result to holders of `api_key`.
    pub async fn start(api_key: &str, rows: &[Row]) -> Redash {
        let state = Arc::new(Mutex::new(State {
            api_key: api_key.into(),
            body: document(rows),
            script: VecDeque::new(),
        }));
        let server_state = state.clone();
        let fixture = Fixture::start("Redash", Connection::Close, move |request| {
            let reply = handle(&server_state, &request);
            async move { reply }
        })
        .await;
        Redash {
            query_url: format!("{}/api/queries/{QUERY_ID}/results.json", fixture.origin()),
            fixture,
            state,
        }
    }

    /// The test expects no request to reach Redash (checked when it is dropped).
    pub fn expect_no_hits(&self) {
        self.fixture.expect_no_hits();
    }

    /// Answer the next requests with these replies, in order.
    pub fn script(&self, replies: Vec<Scripted>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Request lines received, e.g. `GET /api/queries/61352/results.json?api_key=...`.
    pub fn requests(&self) -> Vec<String> {
        self.fixture.requests().iter().map(Request::line).collect()
    }

    /// The document served to a right key.
    pub fn document(&self) -> String {
        self.state.lock().unwrap().body.clone()
    }
}

fn handle(state: &Mutex<State>, request: &Request) -> Reply {
    let (method, target) = (request.method.as_str(), request.target.as_str());
    let (scripted, api_key, body) = {
        let mut s = state.lock().unwrap();
        (s.script.pop_front(), s.api_key.clone(), s.body.clone())
    };
    let (status, content_type, body) = match scripted {
        Some(Scripted::Reset) => return Reply::Reset,
        Some(Scripted::Status(status)) => (
            status,
            "text/html",
            format!("<html><body><h1>{status}</h1></body></html>"),
        ),
        Some(Scripted::Body(text)) => (200, "application/json", text),
        None => answer(method, target, &api_key, body),
    };
    Response::with_body(status, content_type, body).into()
}

/// What Redash answers to a request.
fn answer(method: &str, target: &str, api_key: &str, body: String) -> (u16, &'static str, String) {
    let url = reqwest::Url::parse(&format!("http://redash{target}")).expect("a request target");
    let key = url
        .query_pairs()
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| v.into_owned());
    let json_error = |status: u16, message: &str| {
        (
            status,
            "application/json",
            json!({ "message": message }).to_string(),
        )
    };
    if key.as_deref() != Some(api_key) {
        return json_error(404, "Couldn't find resource. Please login and try again.");
    }
    if method != "GET" {
        return json_error(405, "The method is not allowed for the requested URL.");
    }
    if url.path() != format!("/api/queries/{QUERY_ID}/results.json") {
        return json_error(404, "Query not found.");
    }
    (200, "application/json", body)
}
