//! A loopback HTTP/1.1 proxy in front of the real Kinto that injects faults on chosen requests
//! (resets, error statuses with `Retry-After`, `Backoff`, slow answers, truncated or foreign
//! bodies) and records what it saw: every request line and the peak number in flight.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fixture::{Connection, Fixture, Reply, Request, Response};

#[derive(Debug, Clone)]
pub enum Fault {
    /// Close the connection without answering (TCP reset).
    Reset,
    /// Answer this status with a Kinto-style error body, and `Retry-After` when given.
    Status(u16, Option<u32>),
    /// Forward, adding a `Backoff: N` header to the answer.
    Backoff(u32),
    /// Wait this long, then forward (past the client's timeout, the client has given up).
    Delay(Duration),
    /// Forward, but send only half of the body (with the full Content-Length).
    Truncate,
    /// Answer 200 with this body instead of forwarding.
    Body(String),
    /// Forward, wait for the server's answer, then reset the connection instead of answering:
    /// the server applied the request but the client never hears it. The answer is kept (see
    /// [`Proxy::lost_answers`]).
    LoseAnswer,
    /// Answer this status with a Kinto-style error body whose message echoes the request's
    /// `Authorization` header, as a careless server or proxy might.
    EchoAuth(u16),
    /// Forward, and replace every occurrence of the first text by the second in the answer's
    /// body (e.g. to point a signature's x5u at another server).
    Replace(String, String),
}

struct Rule {
    on: Match,
    faults: VecDeque<Fault>,
    forever: bool,
}

/// Which requests a rule applies to: the path (with its query string) contains `path`, or is
/// exactly `path` (without the query string) when `exact`; and the method, when given.
#[derive(Debug, Clone)]
pub struct Match {
    pub method: Option<&'static str>,
    pub path: String,
    pub exact: bool,
}

impl Match {
    /// Requests whose path contains `path`, whatever their method.
    pub fn contains(path: impl Into<String>) -> Match {
        Match {
            method: None,
            path: path.into(),
            exact: false,
        }
    }

    /// Requests whose path, without query string, is exactly `path` (e.g. the server info `/v1/`).
    pub fn exact(path: impl Into<String>) -> Match {
        Match {
            method: None,
            path: path.into(),
            exact: true,
        }
    }

    /// Only requests with this method.
    pub fn method(mut self, method: &'static str) -> Match {
        self.method = Some(method);
        self
    }

    pub fn matches(&self, method: &str, target: &str) -> bool {
        let path_ok = if self.exact {
            target.split('?').next() == Some(self.path.as_str())
        } else {
            target.contains(&self.path)
        };
        path_ok && self.method.is_none_or(|m| m == method)
    }

    /// Does a request line as [`Proxy::requests`] lists it (`GET /v1/...`) match?
    pub fn matches_line(&self, line: &str) -> bool {
        line.split_once(' ')
            .is_some_and(|(method, target)| self.matches(method, target))
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    in_flight: usize,
    max_in_flight: usize,
    /// The same, for writes only (any method but GET and HEAD).
    writes_in_flight: usize,
    max_writes_in_flight: usize,
    delay_all: Option<Duration>,
    lost_answers: Vec<String>,
}

#[derive(Clone)]
pub struct Proxy {
    /// The proxy's root URL, `http://127.0.0.1:<port>/v1`.
    pub url: String,
    pub fixture: Fixture,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = reqwest::Url::parse(upstream).expect("upstream URL");
        let state = Arc::new(Mutex::new(State::default()));
        // No idle connections kept to the upstream: many short-lived proxies (one per cell of
        // the fault matrix) would otherwise hold the server's connection slots.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let server_state = state.clone();
        let base = upstream.clone();
        let fixture = Fixture::start("fault proxy", Connection::Close, move |request| {
            handle(request, server_state.clone(), client.clone(), base.clone())
        })
        .await;
        Proxy {
            url: format!(
                "{}{}",
                fixture.origin(),
                upstream.path().trim_end_matches('/')
            ),
            fixture,
            state,
        }
    }

    /// The test expects no request to reach the proxy (checked when it is dropped).
    pub fn expect_no_hits(&self) {
        self.fixture.expect_no_hits();
    }

    /// Apply these faults, in order, to the next requests whose path contains `path_contains`.
    pub fn fail(&self, path_contains: &str, faults: Vec<Fault>) {
        self.fail_on(Match::contains(path_contains), faults);
    }

    /// Apply this fault to every request whose path contains `path_contains`.
    pub fn fail_always(&self, path_contains: &str, fault: Fault) {
        self.fail_always_on(Match::contains(path_contains), fault);
    }

    /// Apply these faults, in order, to the next requests that `on` matches.
    pub fn fail_on(&self, on: Match, faults: Vec<Fault>) {
        self.state.lock().unwrap().rules.push(Rule {
            on,
            faults: faults.into(),
            forever: false,
        });
    }

    /// Apply this fault to every request that `on` matches.
    pub fn fail_always_on(&self, on: Match, fault: Fault) {
        self.state.lock().unwrap().rules.push(Rule {
            on,
            faults: vec![fault].into(),
            forever: true,
        });
    }

    /// How many requests `on` matched.
    pub fn count_on(&self, on: &Match) -> usize {
        self.requests()
            .iter()
            .filter(|r| on.matches_line(r))
            .count()
    }

    /// Hold every forwarded request this long (to make concurrency observable).
    pub fn delay_all(&self, delay: Duration) {
        self.state.lock().unwrap().delay_all = Some(delay);
    }

    /// Request lines seen, e.g. `GET /v1/buckets/...`.
    pub fn requests(&self) -> Vec<String> {
        self.fixture.requests().iter().map(Request::line).collect()
    }

    pub fn count(&self, path_contains: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.contains(path_contains))
            .count()
    }

    /// `(request line, Authorization value)` of every request that carried one.
    pub fn authorizations(&self) -> Vec<(String, String)> {
        self.fixture
            .requests()
            .iter()
            .filter_map(|r| Some((r.line(), r.header("authorization")?.to_string())))
            .collect()
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// The most writes (requests other than GET and HEAD) that were in flight at once.
    pub fn max_writes_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_writes_in_flight
    }

    /// The bodies of the answers withheld by [`Fault::LoseAnswer`], in order.
    pub fn lost_answers(&self) -> Vec<String> {
        self.state.lock().unwrap().lost_answers.clone()
    }
}

struct InFlight {
    state: Arc<Mutex<State>>,
    write: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap();
        s.in_flight -= 1;
        if self.write {
            s.writes_in_flight -= 1;
        }
    }
}

/// What the proxy answers: `None` resets the connection.
struct Forwarded {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The Content-Length announced (more than `body.len()` for a truncated answer).
    declared_len: usize,
}

impl Forwarded {
    fn json(status: u16, headers: Vec<(String, String)>, body: String) -> Forwarded {
        let mut headers = headers;
        headers.push(("Content-Type".into(), "application/json".into()));
        let body = body.into_bytes();
        Forwarded {
            status,
            headers,
            declared_len: body.len(),
            body,
        }
    }
}

async fn handle(
    request: Request,
    state: Arc<Mutex<State>>,
    client: reqwest::Client,
    upstream: reqwest::Url,
) -> Reply {
    let Request {
        method,
        target,
        headers,
        body,
        ..
    } = request;
    let write = !matches!(method.as_str(), "GET" | "HEAD");
    let (fault, delay_all) = {
        let mut s = state.lock().unwrap();
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        if write {
            s.writes_in_flight += 1;
            s.max_writes_in_flight = s.max_writes_in_flight.max(s.writes_in_flight);
        }
        let mut fault = None;
        for rule in s.rules.iter_mut() {
            if rule.on.matches(&method, &target) && !rule.faults.is_empty() {
                fault = if rule.forever {
                    rule.faults.front().cloned()
                } else {
                    rule.faults.pop_front()
                };
                break;
            }
        }
        (fault, s.delay_all)
    };
    let in_flight = InFlight {
        state: state.clone(),
        write,
    };
    if let Some(delay) = delay_all {
        tokio::time::sleep(delay).await;
    }
    let lose = matches!(fault, Some(Fault::LoseAnswer));
    let mut reply = answer(fault, &method, &target, &headers, body, &client, &upstream).await;
    if lose {
        if let Some(r) = reply.take() {
            let text = String::from_utf8_lossy(&r.body).into_owned();
            state.lock().unwrap().lost_answers.push(text);
        }
    }
    // A request stops counting as in flight once its answer starts: the client may send its next
    // request as soon as it has read this answer, before this task gets to run again.
    drop(in_flight);
    match reply {
        Some(r) => {
            let mut response = Response::status(r.status);
            response.headers = r.headers;
            response.body(r.body).declared_len(r.declared_len).into()
        }
        None => Reply::Reset,
    }
}

async fn answer(
    fault: Option<Fault>,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    client: &reqwest::Client,
    upstream: &reqwest::Url,
) -> Option<Forwarded> {
    match &fault {
        Some(Fault::Reset) => return None,
        Some(Fault::Status(status, retry_after)) => {
            let h = retry_after
                .map(|secs| vec![("Retry-After".to_string(), secs.to_string())])
                .unwrap_or_default();
            let body = format!(
                r#"{{"code": {status}, "errno": 999, "error": "injected", "message": "injected fault"}}"#
            );
            return Some(Forwarded::json(*status, h, body));
        }
        Some(Fault::Body(text)) => return Some(Forwarded::json(200, Vec::new(), text.clone())),
        Some(Fault::EchoAuth(status)) => {
            let auth = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map_or("(none)", |(_, v)| v.as_str());
            let body = serde_json::json!({"code": status, "errno": 104, "error": "Unauthorized",
                "message": format!("refused Authorization: {auth}")});
            return Some(Forwarded::json(*status, Vec::new(), body.to_string()));
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let url = upstream.join(target).ok()?;
    let mut req = client.request(method.parse().ok()?, url).body(body);
    for (k, v) in headers {
        if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("connection") {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    let resp = req.send().await.ok()?;
    let status = resp.status().as_u16();
    let mut out_headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k != "content-length" && k != "transfer-encoding" && k != "connection"
        })
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut body = resp.bytes().await.ok()?.to_vec();
    let declared_len = body.len();
    let mut declared_len = declared_len;
    match fault {
        Some(Fault::Backoff(secs)) => out_headers.push(("Backoff".into(), secs.to_string())),
        Some(Fault::Truncate) => body.truncate(declared_len / 2),
        Some(Fault::Replace(from, to)) => {
            body = String::from_utf8_lossy(&body)
                .replace(&from, &to)
                .into_bytes();
            declared_len = body.len();
        }
        _ => {}
    }
    Some(Forwarded {
        status,
        headers: out_headers,
        body,
        declared_len,
    })
}
