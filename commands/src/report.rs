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

pub trait Report: Send + Sync {
    /// The human report: the original's lines.
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()>;
    /// The command-specific part of the JSON document (results, totals).
    fn to_json(&self) -> Value;
    fn outcome(&self) -> Outcome;
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
