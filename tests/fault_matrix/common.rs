//! The vocabulary of the fault matrix (`tests/fault_matrix_*.rs`): the faults (columns), how a
//! cell arms its own proxy (transient: the next requests of one target fail, fewer than the
//! retries; persistent: every one does), the checks every cell shares (a transient fault is
//! retried and the run ends as a clean one; a persistent one ends with the documented exit code
//! and a line naming the URL, without credentials), and the table the matrix prints.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt as _;

use crate::support::proxy::{Fault, Match, Proxy};
use crate::support::Run;

/// The request timeout of every cell, in seconds. It only fires on the `slow` fault, whose answer
/// comes [`SLOW`] late; every other answer must come within it, also on a loaded 2-core CI machine
/// running 8 cells and other tests at once (0.5 s was once too short there).
pub const TIMEOUT_SECONDS: &str = "1.5";

/// How late a `slow` answer comes: twice [`TIMEOUT_SECONDS`], and within the deadline of a
/// 3-request batch (3 timeouts).
const SLOW: Duration = Duration::from_millis(3000);

/// Settings that keep every cell fast: 3 attempts 10 ms apart, a [`TIMEOUT_SECONDS`] timeout.
pub const FAST: [(&str, &str); 3] = [
    ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.01"),
    ("REQUESTS_NB_RETRIES", "2"),
    ("REQUESTS_TIMEOUT_SECONDS", TIMEOUT_SECONDS),
];

/// Attempts of one request with [`FAST`]: the first and 2 retries.
pub const ATTEMPTS: usize = 3;

/// Cells of one command run at the same time (each with its own proxy and data).
pub const CONCURRENT_CELLS: usize = 8;

/// One fault (a column of the matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reset,
    S500,
    S502,
    S503,
    S504,
    /// 429 with `Retry-After: 1`.
    TooMany,
    /// A `Backoff: 1` header on a good answer: not a failure, the client waits.
    Backoff,
    /// An answer slower than the timeout ([`SLOW`]).
    Slow,
    Truncated,
    NotJson,
    WrongShape,
    /// Forwarded and applied, but the answer never reaches the client (writes only).
    LostAnswer,
}

use Kind::*;

impl Kind {
    /// Every fault of a JSON API read.
    pub const ALL: [Kind; 11] = [
        Reset, S500, S502, S503, S504, TooMany, Backoff, Slow, Truncated, NotJson, WrongShape,
    ];
    /// Faults whose answer is not a body (for targets whose body nobody reads: x5u, S3).
    pub const TRANSPORT: [Kind; 8] = [Reset, S500, S502, S503, S504, TooMany, Backoff, Slow];

    pub fn name(self) -> &'static str {
        match self {
            Reset => "reset",
            S500 => "500",
            S502 => "502",
            S503 => "503",
            S504 => "504",
            TooMany => "429+Retry-After",
            Backoff => "Backoff",
            Slow => "slow",
            Truncated => "truncated",
            NotJson => "not JSON",
            WrongShape => "wrong shape",
            LostAnswer => "lost answer",
        }
    }

    pub fn fault(self) -> Fault {
        match self {
            Reset => Fault::Reset,
            S500 => Fault::Status(500, None),
            S502 => Fault::Status(502, None),
            S503 => Fault::Status(503, None),
            S504 => Fault::Status(504, None),
            TooMany => Fault::Status(429, Some(1)),
            Backoff => Fault::Backoff(1),
            Slow => Fault::Delay(SLOW),
            Truncated => Fault::Truncate,
            NotJson => Fault::Body("<html><body>502 Bad Gateway</body></html>".into()),
            WrongShape => Fault::Body(r#"{"data": 42, "responses": 42, "code": 200}"#.into()),
            LostAnswer => Fault::LoseAnswer,
        }
    }

    /// Does the request fail (rather than only be answered with a `Backoff`)?
    pub fn fails(self) -> bool {
        self != Backoff
    }

    /// How many requests a transient fault spoils: 2 (of the 3 attempts), 1 for a `Backoff`.
    pub fn transient_count(self) -> usize {
        if self.fails() {
            2
        } else {
            1
        }
    }
}

/// Transient (the next requests of the target) or persistent (all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Transient,
    Persistent,
}

impl Mode {
    pub const BOTH: [Mode; 2] = [Mode::Transient, Mode::Persistent];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Transient => "transient",
            Mode::Persistent => "persistent",
        }
    }
}

/// The requests a cell disturbs: a label for the table and what the proxy matches.
#[derive(Debug, Clone)]
pub struct Target {
    pub label: &'static str,
    pub on: Match,
}

impl Target {
    pub fn new(label: &'static str, on: Match) -> Target {
        Target { label, on }
    }
}

/// One cell: a fault, transient or persistent, on one target.
#[derive(Debug, Clone)]
pub struct Cell {
    pub target: &'static str,
    pub kind: Kind,
    pub mode: Mode,
}

impl Cell {
    pub fn persistent(&self) -> bool {
        self.mode == Mode::Persistent
    }

    /// Arm `proxy` for this cell on `on`.
    pub fn arm(&self, proxy: &Proxy, on: &Match) {
        match self.mode {
            Mode::Persistent => proxy.fail_always_on(on.clone(), self.kind.fault()),
            Mode::Transient => proxy.fail_on(
                on.clone(),
                vec![self.kind.fault(); self.kind.transient_count()],
            ),
        }
    }

    /// Requests a transient fault adds to the `clean` count of its target: one per spoiled
    /// attempt (none for a `Backoff`).
    pub fn retried_count(&self, clean: usize) -> usize {
        clean
            + if self.kind.fails() {
                self.kind.transient_count()
            } else {
                0
            }
    }
}

/// Every cell of these targets and faults, both modes.
pub fn cells(targets: &[(&'static str, &[Kind])]) -> Vec<Cell> {
    let mut cells = Vec::new();
    for (target, kinds) in targets {
        for kind in kinds.iter() {
            for mode in Mode::BOTH {
                cells.push(Cell {
                    target,
                    kind: *kind,
                    mode,
                });
            }
        }
    }
    cells
}

/// What one cell found: `Ok(summary)` or `Err(what went wrong)`.
pub type Verdict = Result<String, String>;

/// Run every cell (at most [`CONCURRENT_CELLS`] at a time), print the command's table, and fail
/// with every failing cell listed.
pub async fn run_matrix<F, Fut>(command: &str, cells: Vec<Cell>, run_cell: F)
where
    F: Fn(Cell) -> Fut,
    Fut: Future<Output = Verdict>,
{
    let run_cell = &run_cell;
    let results: Vec<(Cell, Verdict)> = futures::stream::iter(cells)
        .map(|cell| async move {
            let verdict = run_cell(cell.clone()).await;
            (cell, verdict)
        })
        .buffered(CONCURRENT_CELLS)
        .collect()
        .await;
    let mut failures = Vec::new();
    println!("| command | target | fault | mode | result |");
    println!("|---|---|---|---|---|");
    for (cell, verdict) in &results {
        let text = match verdict {
            Ok(summary) => summary.clone(),
            Err(why) => {
                failures.push(format!(
                    "{command} × {} × {} × {}: {why}",
                    cell.target,
                    cell.kind.name(),
                    cell.mode.name()
                ));
                format!("FAILED: {}", why.lines().next().unwrap_or_default())
            }
        };
        println!(
            "| {command} | {} | {} | {} | {text} |",
            cell.target,
            cell.kind.name(),
            cell.mode.name()
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cells failed:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n\n")
    );
}

/// `Err` with `why` unless `ok`.
pub fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

/// The whole run, for failure messages.
pub fn show(run: &Run) -> String {
    format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

/// A transient fault: retried (the proxy saw `expected_count` requests on the target) and the
/// run ended as the clean one did (`clean_code`, the same normalized output).
pub fn recovered(
    run: &Run,
    clean_code: i32,
    clean_lines: &[String],
    lines: &[String],
    seen: usize,
    expected_count: usize,
) -> Verdict {
    ensure(run.code == clean_code, || {
        format!("exit {} instead of {clean_code}: {}", run.code, show(run))
    })?;
    ensure(lines == clean_lines, || {
        format!(
            "output differs from a clean run:\n{clean_lines:#?}\nvs\n{lines:#?}\n{}",
            show(run)
        )
    })?;
    ensure(seen == expected_count, || {
        format!(
            "{seen} requests on the target, expected {expected_count}: {}",
            show(run)
        )
    })?;
    Ok(format!(
        "exit {clean_code}, same output; {seen} requests (retried)"
    ))
}

/// A persistent fault: exit `code`, a line naming the target's URL (`origin` + a path that
/// contains `path`) with the method, and none of `secrets` anywhere in the output.
pub fn failed_naming_url(
    run: &Run,
    code: i32,
    origin: &str,
    path: &str,
    secrets: &[&str],
) -> Result<String, String> {
    ensure(run.code == code, || {
        format!("exit {} instead of {code}: {}", run.code, show(run))
    })?;
    let line = run
        .stdout
        .lines()
        .chain(run.stderr.lines())
        .find(|l| {
            l.find(origin).is_some_and(|at| l[at..].contains(path))
                && ["GET ", "PUT ", "POST ", "PATCH ", "HEAD ", "DELETE "]
                    .iter()
                    .any(|m| l.contains(&format!("{m}{origin}")))
        })
        .ok_or_else(|| format!("no line names {origin}…{path}: {}", show(run)))?;
    no_secrets(run, secrets)?;
    ensure(run.stderr.starts_with("error: "), || {
        format!("no `error:` line on stderr: {}", show(run))
    })?;
    Ok(line.to_string())
}

/// The origin a run names for requests through the proxy at `proxy_url` (`http://127.0.0.1:port`).
pub fn origin_of(proxy_url: &str) -> String {
    let url = reqwest::Url::parse(proxy_url).expect("the proxy's URL");
    format!("http://127.0.0.1:{}", url.port().expect("the proxy's port"))
}

/// `Err` unless the proxy saw `expected` requests on the target (the attempts of one request).
pub fn attempted(seen: usize, expected: usize, run: &Run) -> Result<(), String> {
    ensure(seen == expected, || {
        format!("{seen} attempts: {}", show(run))
    })
}

/// None of `secrets` in stdout or stderr.
pub fn no_secrets(run: &Run, secrets: &[&str]) -> Result<(), String> {
    for secret in secrets {
        ensure(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            || format!("a credential is shown: {}", show(run)),
        )?;
    }
    Ok(())
}

/// The password of a `user:pass` pair and its Basic header value: what must never be shown.
pub fn credential_markers(user_pass: &str) -> Vec<String> {
    use base64::Engine as _;
    let password = user_pass.split_once(':').map_or(user_pass, |(_, p)| p);
    vec![
        password.to_string(),
        base64::engine::general_purpose::STANDARD.encode(user_pass),
    ]
}

/// The environment of a cell: `base`, with [`FAST`] unless overridden there.
pub fn with_fast<'a>(base: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env: Vec<(&str, &str)> = FAST
        .iter()
        .filter(|(k, _)| !base.iter().any(|(b, _)| b == k))
        .copied()
        .collect();
    env.extend_from_slice(base);
    env
}

/// `text` with every run-specific duration `(0.01s)` written `(…s)`.
pub fn without_durations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let digits = after
            .find("s)")
            .filter(|&end| end > 0 && after[..end].chars().all(|c| c.is_ascii_digit() || c == '.'));
        match digits {
            Some(end) => {
                out.push_str("(…s)");
                rest = &after[end + 2..];
            }
            None => {
                out.push('(');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
