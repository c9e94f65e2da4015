//! Formatters: the text report (the original's lines on stdout, one error line on stderr) or one
//! JSON document on stdout. Both are chosen once, from `OUTPUT`/`--json`.

use std::io::Write;
use std::time::Duration;

use commands::{Alert, Command, CommandError, Outcome, RawSettings, Report, SettingError};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    pub fn from_settings(raw: &RawSettings) -> Result<Format, SettingError> {
        match raw
            .get("OUTPUT")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("text") => Ok(Format::Text),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(SettingError::new(
                "OUTPUT",
                format!(
                    "{} is not 'text' or 'json'",
                    commands::settings::quote(other)
                ),
            )),
        }
    }
}

/// How a run ended, ready for the exit code, stderr and Sentry.
pub struct Ending {
    pub exit_code: u8,
    pub message: Option<String>,
    pub items: Vec<Value>,
    /// Messages the report asks to send to Sentry instead of the failure event.
    pub alerts: Vec<Alert>,
}

impl Ending {
    pub fn from_result(result: &Result<Box<dyn Report>, CommandError>) -> Ending {
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                return Ending {
                    exit_code: e.exit_code() as u8,
                    message: Some(e.to_string()),
                    items: Vec::new(),
                    alerts: Vec::new(),
                }
            }
        };
        let (exit_code, failure) = match report.outcome() {
            Outcome::Ok => (0, None),
            Outcome::Problems(f) => (1, Some(f)),
            Outcome::Incomplete(f) => (3, Some(f)),
        };
        let (message, items) = failure.map_or((None, Vec::new()), |f| (Some(f.message), f.items));
        Ending {
            exit_code,
            message,
            items,
            alerts: report.alerts(),
        }
    }

    pub fn status(&self) -> &'static str {
        match self.exit_code {
            0 => "ok",
            1 => "problems",
            2 => "config_error",
            _ => "error",
        }
    }
}

/// The JSON document of a run: command, status, exit code, timing, the report's own fields, and
/// the error when there is one.
pub fn json_document(
    command: Command,
    server: &str,
    result: &Result<Box<dyn Report>, CommandError>,
    ending: &Ending,
    elapsed: Duration,
) -> Value {
    let mut doc = json!({
        "command": command.name(),
        "server": server,
        "status": ending.status(),
        "exit_code": ending.exit_code,
        "duration_seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
    });
    if let Ok(report) = result {
        if let (Value::Object(d), Value::Object(r)) = (&mut doc, report.to_json()) {
            d.extend(r);
        }
    }
    if let Some(message) = &ending.message {
        let code = match result {
            Err(e) => e.code(),
            Ok(_) if ending.exit_code == 1 => "CheckFailed",
            Ok(_) => "Incomplete",
        };
        doc["error"] = json!({"code": code, "message": message});
    }
    doc
}

/// The Lambda `errorType` of a run that did not end well (`None` for exit 0): the error's own code
/// for runs that stopped (`ConfigError`, `UsageError`, `HttpError`, `RuntimeError`), the command's
/// kind of finding for a check that found problems (exit 1), `IncompleteError` for a report that
/// could not be completed (exit 3).
pub fn error_type(
    command: Command,
    result: &Result<Box<dyn Report>, CommandError>,
    ending: &Ending,
) -> Option<&'static str> {
    match (result, ending.exit_code) {
        (_, 0) => None,
        (Err(e), _) => Some(e.code()),
        (Ok(_), 1) => Some(problems_error_type(command)),
        (Ok(_), _) => Some("IncompleteError"),
    }
}

/// What a check that found problems is called, per command (exhaustive: a new command must
/// name its kind of finding here).
pub fn problems_error_type(command: Command) -> &'static str {
    match command {
        Command::ValidateSignature | Command::ValidateChangesCollection => "ValidationError",
        Command::RefreshSignature => "RefreshError",
        Command::ConsistencyChecks => "ConsistencyError",
        Command::BackportRecords => "BackportError",
        Command::BlockpagesGenerator => "BlockpagesError",
        Command::UptakeHealth => "UptakeHealthError",
    }
}

/// Print the run's output and its one-line error, if any.
pub fn emit(
    format: Format,
    command: Command,
    server: &str,
    result: &Result<Box<dyn Report>, CommandError>,
    ending: &Ending,
    elapsed: Duration,
) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // A closed stdout (e.g. `| head`) must not turn a finished check into a panic.
    let _ = match format {
        Format::Text => match result {
            Ok(report) => report.write_text(&mut out),
            Err(_) => Ok(()),
        },
        Format::Json => {
            let doc = json_document(command, server, result, ending, elapsed);
            writeln!(out, "{doc}")
        }
    };
    let _ = out.flush();
    if let Some(message) = &ending.message {
        eprintln!("error: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `problems_error_type` is an exhaustive match, so the compiler already makes every command
    /// name one; what can drift is the README's table of `errorType`s, which users read.
    #[test]
    fn every_command_names_its_problems_error_type() {
        let readme = include_str!("../README.md");
        for command in Command::ALL {
            let error_type = problems_error_type(*command);
            assert_ne!(
                error_type,
                "CheckFailed",
                "{} has no errorType of its own: add it to problems_error_type and the README",
                command.name()
            );
            let row = format!("| `{error_type}` |");
            let name = format!("`{}`", command.name());
            assert!(
                readme
                    .lines()
                    .any(|line| line.starts_with(&row) && line.contains(&name)),
                "the README's errorType table has no row {row} naming {name}"
            );
        }
    }
}
