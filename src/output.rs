//! Formatters: the text report (the original's lines on stdout, one error line on stderr) or one
//! JSON document on stdout. Both are chosen once, from `OUTPUT`/`--json`.

use std::io::Write;
use std::time::Duration;

use commands::report::Exit;
use commands::settings::shared::OUTPUT;
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
            .get(&OUTPUT)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("text") => Ok(Format::Text),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(SettingError::new(
                OUTPUT.env,
                format!(
                    "{} is not 'text' or 'json'",
                    commands::settings::quote(other)
                ),
            )),
        }
    }
}

/// How a run ended, ready for the exit code, stderr, Sentry and Lambda: built once, from the
/// command and the run's result.
pub struct Ending {
    pub exit: Exit,
    pub message: Option<String>,
    pub items: Vec<Value>,
    /// Messages the report asks to send to Sentry instead of the failure event.
    pub alerts: Vec<Alert>,
    /// The stable code of the JSON document's `error` and the Lambda `errorType`: the error's own
    /// code for runs that stopped (`ConfigError`, `UsageError`, `HttpError`, `RuntimeError`,
    /// `Panic`), the command's kind of finding for a check that found problems (exit 1),
    /// `IncompleteError` for a report that could not be completed (exit 3); `None` for exit 0.
    pub error_type: Option<&'static str>,
}

impl Ending {
    pub fn from_result(
        command: &Command,
        result: &Result<Box<dyn Report>, CommandError>,
    ) -> Ending {
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                return Ending {
                    exit: e.exit(),
                    message: Some(e.to_string()),
                    items: Vec::new(),
                    alerts: Vec::new(),
                    error_type: Some(e.code()),
                }
            }
        };
        let outcome = report.outcome();
        let exit = outcome.exit();
        let (error_type, failure) = match outcome {
            Outcome::Ok => (None, None),
            Outcome::Problems(f) => (Some(command.problems_error_type), Some(f)),
            Outcome::Incomplete(f) => (Some("IncompleteError"), Some(f)),
        };
        let (message, items) = failure.map_or((None, Vec::new()), |f| (Some(f.message), f.items));
        Ending {
            exit,
            message,
            items,
            alerts: report.alerts(),
            error_type,
        }
    }
}

/// The JSON document of a run: command, status, exit code, timing, the report's own fields, and
/// the error when there is one.
pub fn json_document(
    command: &Command,
    server: &str,
    result: &Result<Box<dyn Report>, CommandError>,
    ending: &Ending,
    elapsed: Duration,
) -> Value {
    let mut doc = json!({
        "command": command.name,
        "server": server,
        "status": ending.exit.status(),
        "exit_code": ending.exit.code(),
        "duration_seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
    });
    if let Ok(report) = result {
        if let (Value::Object(d), Value::Object(r)) = (&mut doc, report.to_json()) {
            d.extend(r);
        }
    }
    if let Some(message) = &ending.message {
        let code = match (result, ending.exit) {
            (Err(e), _) => e.code(),
            (Ok(_), Exit::Problems) => "CheckFailed",
            (Ok(_), _) => "Incomplete",
        };
        doc["error"] = json!({"code": code, "message": message});
    }
    doc
}

/// Print the run's output and its one-line error, if any.
pub fn emit(
    format: Format,
    command: &Command,
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

    /// Every command names its kind of finding, and the README's errorType table (which users
    /// read) lists it.
    #[test]
    fn the_readme_lists_every_commands_problems_error_type() {
        let readme = include_str!("../README.md");
        for command in commands::COMMANDS {
            let error_type = command.problems_error_type;
            let row = format!("| `{error_type}` |");
            let name = format!("`{}`", command.name);
            assert!(
                readme
                    .lines()
                    .any(|line| line.starts_with(&row) && line.contains(&name)),
                "the README's errorType table has no row {row} naming {name}"
            );
        }
    }

    #[test]
    fn output_format_is_text_or_json_and_names_a_bad_value() {
        let command = commands::find_command("validate_signature").unwrap();
        let mut raw = RawSettings::declaring(command.all_settings());
        assert_eq!(Format::from_settings(&raw).unwrap(), Format::Text);
        raw.set("OUTPUT", " JSON ");
        assert_eq!(Format::from_settings(&raw).unwrap(), Format::Json);
        raw.set("OUTPUT", "yaml");
        let err = Format::from_settings(&raw).unwrap_err().to_string();
        assert_eq!(err, "invalid OUTPUT: \"yaml\" is not 'text' or 'json'");
    }
}
