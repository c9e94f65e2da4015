//! What a command returns: a [`Report`] that knows its human lines, its JSON form and its outcome.
//! Printing is done once, by the front door, with the formatter chosen there. How a run ends is
//! an [`Exit`], decided once: from the report's [`Outcome`], or from the error that stopped it;
//! what an item that could not be read means is decided by one policy, [`judge`].

use serde_json::Value;

use crate::client::ClientError;

/// How a run ended, as far as the report is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// All good: exit 0.
    Ok,
    /// The check found problems: exit 1.
    Problems(Failure),
    /// The check could not be completed (server unreachable, unexpected answers): exit 3.
    Incomplete(Failure),
}

impl Outcome {
    pub fn exit(&self) -> Exit {
        match self {
            Outcome::Ok => Exit::Ok,
            Outcome::Problems(_) => Exit::Problems,
            Outcome::Incomplete(_) => Exit::Incomplete,
        }
    }
}

/// How a run ended: its exit code, its `status` in JSON, its kind of Sentry event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// All good: exit 0.
    Ok,
    /// The check found problems: exit 1.
    Problems,
    /// Usage or configuration error, nothing sent: exit 2.
    Usage,
    /// The run could not complete, or could not tell: exit 3.
    Incomplete,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Problems => 1,
            Exit::Usage => 2,
            Exit::Incomplete => 3,
        }
    }

    /// The `status` of the JSON document.
    pub fn status(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Problems => "problems",
            Exit::Usage => "config_error",
            Exit::Incomplete => "error",
        }
    }

    /// A failed run, which sends one Sentry event (a usage error is the caller's to fix).
    pub fn is_failure(self) -> bool {
        matches!(self, Exit::Problems | Exit::Incomplete)
    }
}

/// The one policy for a check over many items (README "Exit codes"). An item that could not be
/// read because the server answered 4xx (missing, forbidden) is a *finding*, like a bad signature
/// or an inconsistency: [`is_finding`]. An item that could not be read otherwise (no answer, 5xx
/// or a body that is not what was asked, after retries) means the check *could not tell*. Any
/// finding fails the run (exit 1), even when other items could not be checked (they are listed
/// too); without findings, any item that could not be checked makes the run incomplete (exit 3).
pub fn judge(findings: usize, could_not_tell: usize, failure: impl FnOnce() -> Failure) -> Outcome {
    if findings > 0 {
        Outcome::Problems(failure())
    } else if could_not_tell > 0 {
        Outcome::Incomplete(failure())
    } else {
        Outcome::Ok
    }
}

/// Whether a failed read is a finding about the item (a 4xx answer) rather than a sign that the
/// check could not tell; see [`judge`].
pub fn is_finding(error: &ClientError) -> bool {
    error.is_client_status()
}

/// The message of a failed run and the items that failed, for stderr, Sentry and Lambda.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub message: String,
    pub items: Vec<Value>,
}

/// A message a report asks to send to Sentry on its own, with extra data.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub message: String,
    pub extra: serde_json::Map<String, Value>,
}

pub trait Report: Send + Sync {
    /// The human report: the original's lines.
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()>;
    /// The command-specific part of the JSON document (results, totals).
    fn to_json(&self) -> Value;
    fn outcome(&self) -> Outcome;
    /// Messages to send to Sentry, one event each, instead of the single failure event of a
    /// failed run (e.g. one per source over threshold). None by default.
    fn alerts(&self) -> Vec<Alert> {
        Vec::new()
    }
}

/// An item that could not be checked because a request failed, in JSON form.
pub fn client_error_json(err: &ClientError) -> Value {
    serde_json::json!({
        "code": err.code(),
        "message": err.to_string(),
        "url": err.url,
        "status": err.status(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> Failure {
        Failure {
            message: "m".into(),
            items: Vec::new(),
        }
    }

    #[test]
    fn findings_fail_the_run_even_when_other_items_could_not_be_read() {
        assert_eq!(judge(1, 3, failure).exit(), Exit::Problems);
        assert_eq!(judge(0, 3, failure).exit(), Exit::Incomplete);
        assert_eq!(judge(0, 0, failure).exit(), Exit::Ok);
    }

    #[test]
    fn exits_have_their_documented_codes_and_statuses() {
        let all = [Exit::Ok, Exit::Problems, Exit::Usage, Exit::Incomplete];
        let codes: Vec<u8> = all.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3]);
        let statuses: Vec<&str> = all.iter().map(|e| e.status()).collect();
        assert_eq!(statuses, ["ok", "problems", "config_error", "error"]);
        let failures: Vec<bool> = all.iter().map(|e| e.is_failure()).collect();
        assert_eq!(failures, [false, true, false, true]);
    }
}
