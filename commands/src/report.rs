//! What a command returns: a [`Report`] that knows its human lines, its JSON form and its outcome.
//! Printing is done once, by the front door, with the formatter chosen there.

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
