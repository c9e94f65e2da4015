//! The secrets sweep's scaffold: the marker every credential setting holds, the scenarios a
//! command is run in (text and JSON cells, each with its own Sentry listener), what counts as a
//! leak, the Kinto servers that fail every request, and [`KintoSweep`], the run every Kinto
//! command's sweep shares. The sweeps themselves are in `tests/secrets.rs`.

use base64::Engine as _;
use futures::StreamExt;
use serde_json::Value;

use super::proxy::{Fault, Proxy};
use super::sentry::SentryListener;
use super::{run_bin, Run};

/// In every credential of every run.
pub const MARKER: &str = "Mk7q-zz-S3CRET-41x";
/// The Basic user whose password is the marker (a Kinto basicauth principal of its own).
pub const USER: &str = "rsl-secrets-user";
/// The public key of the Sentry DSN: it belongs in the envelope header sent to Sentry, nowhere
/// else.
pub const DSN_KEY: &str = "dsnkey5f1e0c7a9b";
/// Where nothing listens.
pub const DOWN: &str = "http://127.0.0.1:9/v1";

pub fn basic() -> String {
    format!("{USER}:{MARKER}")
}

pub fn bearer() -> String {
    format!("Bearer {MARKER}")
}

pub fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// What must never show: the marker, and the base64 of the Basic header that carries it.
pub fn forbidden() -> [String; 2] {
    [MARKER.to_string(), b64(&basic())]
}

pub fn leaked(text: &str) -> Option<String> {
    forbidden().into_iter().find(|f| text.contains(f.as_str()))
}

/// One way of running a command.
#[derive(Clone)]
pub struct Scenario {
    pub name: String,
    pub env: Vec<(String, String)>,
    /// Replaced in the JSON cell: writers get other targets there, so that the text and JSON
    /// cells running at the same time do not write the same objects.
    pub json_env: Vec<(String, String)>,
    pub code: i32,
}

pub fn scenario(name: &str, env: &[(&str, &str)], code: i32) -> Scenario {
    Scenario {
        name: name.into(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        json_env: Vec::new(),
        code,
    }
}

/// The passing scenario of a command that reads the monitor collection `bucket/collection` of
/// `server`, with the marker user's Basic credentials in `auth_setting`.
pub fn monitor_pass(server: &str, bucket: &str, collection: &str, auth_setting: &str) -> Scenario {
    let basic = basic();
    scenario(
        "pass, Basic",
        &[
            ("SERVER", server),
            ("BUCKET", bucket),
            ("COLLECTION", collection),
            (auth_setting, &basic),
        ],
        0,
    )
}

impl Scenario {
    /// The same with these settings added or replaced.
    pub fn with(mut self, name: &str, pairs: &[(&str, &str)], code: i32) -> Scenario {
        self.name = name.into();
        for (k, v) in pairs {
            self.env.retain(|(key, _)| key != k);
            self.json_env.retain(|(key, _)| key != k);
            self.env.push((k.to_string(), v.to_string()));
        }
        self.code = code;
        self
    }

    /// The same, with these settings in the JSON cell.
    pub fn json_with(mut self, pairs: &[(&str, &str)]) -> Scenario {
        self.json_env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }
}

/// What one cell (a scenario in one output format) did.
pub struct CellRun {
    pub label: String,
    pub json: bool,
    pub expected: i32,
    pub run: Run,
    pub envelopes: Vec<String>,
}

/// Every problem of a cell: exit code, a leak in any output or Sentry event, a JSON report that
/// does not parse, no Sentry event for a failed run.
pub fn problems(cell: &CellRun) -> Vec<String> {
    let mut out = Vec::new();
    let label = &cell.label;
    let run = &cell.run;
    if run.code != cell.expected {
        out.push(format!(
            "{label}: exit {} instead of {}\nstdout: {}\nstderr: {}",
            run.code, cell.expected, run.stdout, run.stderr
        ));
    }
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        if let Some(secret) = leaked(text) {
            out.push(format!("{label}: {secret} in {stream}:\n{text}"));
        }
        if text.contains(DSN_KEY) {
            out.push(format!("{label}: the DSN key in {stream}:\n{text}"));
        }
    }
    if cell.json && serde_json::from_str::<Value>(&run.stdout).is_err() {
        out.push(format!(
            "{label}: stdout is not one JSON document: {}",
            run.stdout
        ));
    }
    out.extend(envelope_problems(label, &cell.envelopes));
    if matches!(run.code, 1 | 3) && !cell.envelopes.iter().any(|e| is_event(e)) {
        out.push(format!("{label}: a failed run sent no Sentry event"));
    }
    out
}

pub fn is_event(envelope: &str) -> bool {
    envelope.contains("\"type\":\"event\"")
}

/// An envelope's header may name the DSN (it is sent to Sentry); nothing else in it may hold the
/// DSN key, and nothing at all a credential.
pub fn envelope_problems(label: &str, envelopes: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for envelope in envelopes {
        if let Some(secret) = leaked(envelope) {
            out.push(format!("{label}: {secret} sent to Sentry:\n{envelope}"));
        }
        let items: Vec<&str> = envelope.lines().skip(1).collect();
        if items.iter().any(|l| l.contains(DSN_KEY)) {
            out.push(format!(
                "{label}: the DSN key in an event's items:\n{envelope}"
            ));
        }
    }
    out
}

/// Run every scenario in text (`-vv`) and JSON, each with its own Sentry listener, several at
/// once; print one line per cell and return the problems found.
pub async fn sweep(command: &str, scenarios: &[Scenario]) -> Vec<String> {
    let mut cells = Vec::new();
    for s in scenarios {
        for json in [false, true] {
            cells.push((s.clone(), json));
        }
    }
    let runs: Vec<CellRun> = futures::stream::iter(cells)
        .map(|(s, json)| async move {
            let sentry = SentryListener::start().await;
            // Only a failed run (exit 1 or 3) sends an event: the others send nothing.
            if !matches!(s.code, 1 | 3) {
                sentry.expect_no_hits();
            }
            let dsn = sentry.dsn.replace("publickey", DSN_KEY);
            let mut env: Vec<(&str, &str)> = s
                .env
                .iter()
                .filter(|(k, _)| !json || !s.json_env.iter().any(|(j, _)| j == k))
                .chain(s.json_env.iter().filter(|_| json))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            env.push(("SENTRY_DSN", &dsn));
            env.push(("REQUESTS_RETRY_BACKOFF_SECONDS", "0.01"));
            env.push(("REQUESTS_NB_RETRIES", "2"));
            env.push(("REQUESTS_TIMEOUT_SECONDS", "2"));
            let args = [command, if json { "--json" } else { "-vv" }];
            let run = run_bin(&args, &env).await;
            CellRun {
                label: format!(
                    "{command} / {} / {}",
                    s.name,
                    if json { "json" } else { "text" }
                ),
                json,
                expected: s.code,
                run,
                envelopes: sentry.envelopes(),
            }
        })
        .buffer_unordered(6)
        .collect()
        .await;
    let mut all = Vec::new();
    for cell in &runs {
        let found = problems(cell);
        println!(
            "{:<70} exit {} {}",
            cell.label,
            cell.run.code,
            if found.is_empty() { "clean" } else { "PROBLEM" }
        );
        all.extend(found);
    }
    all
}

pub fn assert_clean(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// Kinto servers that fail every request: 401 and 403 echoing the `Authorization` they got, and
/// a persistent 500.
pub struct Failing {
    pub unauthorized: Proxy,
    pub forbidden: Proxy,
    pub error: Proxy,
}

impl Failing {
    pub async fn start(upstream: &str) -> Failing {
        let unauthorized = Proxy::start(upstream).await;
        unauthorized.fail_always("/", Fault::EchoAuth(401));
        let forbidden = Proxy::start(upstream).await;
        forbidden.fail_always("/", Fault::EchoAuth(403));
        let error = Proxy::start(upstream).await;
        error.fail_always("/", Fault::Status(500, None));
        Failing {
            unauthorized,
            forbidden,
            error,
        }
    }

    /// The requests that reached them carried the credential: the echo cells test something.
    pub fn assert_echoed(&self) {
        for proxy in [&self.unauthorized, &self.forbidden] {
            assert!(
                proxy
                    .authorizations()
                    .iter()
                    .any(|(_, v)| v.starts_with("Basic ") || v.starts_with("Bearer ")),
                "{:?}",
                proxy.requests()
            );
        }
    }
}

/// The failing scenarios every Kinto command gets, from its passing one (whose `SERVER` they
/// replace): each `(name, server, exit code)`.
pub fn kinto_failures(pass: &Scenario, failing: &Failing, codes: [i32; 4]) -> Vec<Scenario> {
    let userinfo = format!("http://{USER}:{MARKER}@127.0.0.1:9/v1");
    let bad_scheme = format!("ftp://{USER}:{MARKER}@127.0.0.1:9/v1");
    let no_scheme = format!("{USER}:{MARKER}@127.0.0.1:9/v1");
    vec![
        pass.clone()
            .with("server down", &[("SERVER", DOWN)], codes[0]),
        pass.clone().with(
            "401 echoing the credentials",
            &[("SERVER", &failing.unauthorized.url)],
            codes[1],
        ),
        pass.clone().with(
            "403 echoing the credentials",
            &[("SERVER", &failing.forbidden.url)],
            codes[2],
        ),
        pass.clone().with(
            "500 persistent",
            &[("SERVER", &failing.error.url)],
            codes[3],
        ),
        pass.clone()
            .with("marker in SERVER user-info", &[("SERVER", &userinfo)], 2),
        pass.clone()
            .with("marker in a non-http SERVER", &[("SERVER", &bad_scheme)], 2),
        pass.clone().with(
            "marker in a SERVER without scheme",
            &[("SERVER", &no_scheme)],
            2,
        ),
        pass.clone()
            .with("bad setting", &[("PARALLEL_REQUESTS", "lots")], 2),
    ]
}

/// What every Kinto command's sweep shares: the failing servers, and a run over the passing
/// scenario, the command's own other scenarios, and the Kinto failures (each exit 3).
pub struct KintoSweep {
    pub failing: Failing,
}

impl KintoSweep {
    pub async fn start(upstream: &str) -> KintoSweep {
        KintoSweep {
            failing: Failing::start(upstream).await,
        }
    }

    /// Sweep `command` over `pass`, `others` and the Kinto failures of `pass`; every cell must be
    /// clean, and the echoing servers must have received a credential.
    pub async fn run(&self, command: &str, pass: &Scenario, others: Vec<Scenario>) {
        let mut scenarios = vec![pass.clone()];
        scenarios.extend(others);
        scenarios.extend(kinto_failures(pass, &self.failing, [3, 3, 3, 3]));
        assert_clean(sweep(command, &scenarios).await);
        self.failing.assert_echoed();
    }
}
