//! Sentry: optional (`SENTRY_DSN`), one error event per failed run from one place (or the report's
//! own alerts, e.g. one per source over threshold), panics captured, events flushed before exit,
//! and every known credential scrubbed from every event.

use std::sync::Arc;
use std::time::Duration;

use commands::{Alert, Command, RawSettings, SettingError};

use crate::output::Ending;
use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

/// Keeps Sentry alive for the run; dropping it flushes pending events.
pub struct Telemetry {
    _guard: Option<sentry::ClientInitGuard>,
}

/// Replace every secret in an event, or drop the event when it cannot be cleaned.
pub fn scrub(
    event: sentry::protocol::Event<'static>,
    secrets: &[String],
) -> Option<sentry::protocol::Event<'static>> {
    let text = serde_json::to_string(&event).ok()?;
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Some(event);
    }
    let mut cleaned = text;
    for secret in secrets {
        cleaned = cleaned.replace(secret.as_str(), REDACTED);
    }
    serde_json::from_str(&cleaned).ok()
}

/// The values [`scrub`] replaces for these settings: every credential and the forms it travels in.
pub fn secrets(raw: &RawSettings) -> Vec<String> {
    raw.secret_values()
        .into_iter()
        .filter(|s| s.len() >= 3)
        .collect()
}

impl Telemetry {
    pub fn init(raw: &RawSettings) -> Result<Telemetry, SettingError> {
        let Some(dsn) = raw.get("SENTRY_DSN") else {
            return Ok(Telemetry { _guard: None });
        };
        let dsn: sentry::types::Dsn = dsn
            .trim()
            .parse()
            .map_err(|_| SettingError::new("SENTRY_DSN", "not a valid Sentry DSN"))?;
        let secrets = secrets(raw);
        let mut options = sentry::ClientOptions::new();
        options.dsn = Some(dsn);
        options.release =
            Some(concat!("remote-settings-lambdas@", env!("CARGO_PKG_VERSION")).into());
        options.environment = raw.get("SENTRY_ENV").map(|e| e.to_string().into());
        options.shutdown_timeout = Duration::from_secs(5);
        options.send_default_pii = false;
        options.before_send = Some(Arc::new(move |event| scrub(event, &secrets)));
        let guard = sentry::init(options);
        Ok(Telemetry {
            _guard: Some(guard),
        })
    }

    /// What a finished run sends: the report's alerts when it has any, else the one error event
    /// of a failed run (exit 1 or 3), else nothing.
    pub fn report_run(&self, command: Command, server: &str, ending: &Ending) {
        if !ending.alerts.is_empty() {
            self.report_alerts(command, server, &ending.alerts);
        } else if let (Some(message), 1 | 3) = (&ending.message, ending.exit_code) {
            self.report_failure(command, server, message, &ending.items);
        }
    }

    /// One error event per alert, with the alert's extra data.
    pub fn report_alerts(&self, command: Command, server: &str, alerts: &[Alert]) {
        if self._guard.is_none() {
            return;
        }
        for alert in alerts {
            sentry::with_scope(
                |scope| {
                    scope.set_tag("command", command.name());
                    scope.set_tag("server", server);
                    for (key, value) in &alert.extra {
                        scope.set_extra(key, value.clone());
                    }
                },
                || sentry::capture_message(&alert.message, sentry::Level::Error),
            );
        }
    }

    /// Send the one error event of a failed run.
    pub fn report_failure(&self, command: Command, server: &str, message: &str, items: &[Value]) {
        if self._guard.is_none() {
            return;
        }
        sentry::with_scope(
            |scope| {
                scope.set_tag("command", command.name());
                scope.set_tag("server", server);
                scope.set_extra("failures", Value::Array(items.to_vec()));
            },
            || sentry::capture_message(message, sentry::Level::Error),
        );
    }

    pub fn flush(&self) {
        if let Some(client) = sentry::Hub::current().client() {
            client.flush(Some(Duration::from_secs(5)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_secrets_everywhere() {
        let mut event = sentry::protocol::Event {
            message: Some("failed with user:hunter2".into()),
            ..Default::default()
        };
        event.extra.insert(
            "x".into(),
            Value::String("Basic dTpodW50ZXIy hunter2".into()),
        );
        let out = scrub(event, &["hunter2".into(), "dTpodW50ZXIy".into()]).unwrap();
        let text = serde_json::to_string(&out).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("dTpodW50ZXIy"),
            "{text}"
        );
        assert!(text.contains(REDACTED));
    }
}
