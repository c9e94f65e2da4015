//! Sentry: optional (`SENTRY_DSN`), one error event per failed run from one place (or the report's
//! own alerts, e.g. one per source over threshold), panics captured, events flushed before exit,
//! every known credential scrubbed from every event; and, with `SENTRY_MONITOR_SLUG`, each run's
//! Sentry Crons check-ins ([`CheckIn`]): `in_progress` when it starts, `ok` or `error` with its
//! duration when it ends.

mod crons;

use std::sync::Arc;
use std::time::Duration;

use commands::report::Exit;
use commands::secrets::redact_text;
use commands::settings::shared::{SENTRY_DSN, SENTRY_ENV};
use commands::{Alert, Command, RawSettings, SettingError};

use crate::output::Ending;
use serde_json::Value;

pub use crons::CheckIn;
use crons::Monitor;

/// Keeps Sentry alive for the run; dropping it flushes pending events.
pub struct Telemetry {
    _guard: Option<sentry::ClientInitGuard>,
    /// The Crons monitor the runs check in to (only with a client).
    monitor: Option<Monitor>,
    secrets: Vec<String>,
}

/// Replace every secret in an event (and any user-info in a URL), or drop the event when it
/// cannot be cleaned.
pub fn scrub(
    event: sentry::protocol::Event<'static>,
    secrets: &[String],
) -> Option<sentry::protocol::Event<'static>> {
    let text = serde_json::to_string(&event).ok()?;
    match redacted(&text, secrets) {
        None => Some(event),
        Some(cleaned) => serde_json::from_str(&cleaned).ok(),
    }
}

/// The JSON text of what goes to Sentry with every secret (and any user-info in a URL) replaced,
/// or `None` when there was nothing to replace.
fn redacted(text: &str, secrets: &[String]) -> Option<String> {
    let cleaned = redact_text(text, secrets);
    (cleaned != text).then_some(cleaned)
}

/// Tag the current scope with the run's command and server: every event of the run (its failure,
/// its alerts, a panic) carries them.
pub fn tag_run(scope: &mut sentry::Scope, command: &Command, server: &str) {
    scope.set_tag("command", command.name);
    scope.set_tag("server", server);
}

impl Telemetry {
    /// Sentry from `SENTRY_DSN` (none without it), and the Crons monitor when one is set.
    pub fn init(raw: &RawSettings) -> Result<Telemetry, SettingError> {
        let monitor = Monitor::from_settings(raw)?;
        let secrets = raw.secret_values();
        let Some(dsn) = raw.get(&SENTRY_DSN) else {
            return Ok(Telemetry {
                _guard: None,
                monitor: None,
                secrets,
            });
        };
        let dsn: sentry::types::Dsn = dsn
            .trim()
            .parse()
            .map_err(|_| SettingError::new(SENTRY_DSN.env, "not a valid Sentry DSN"))?;
        let mut options = sentry::ClientOptions::new();
        options.dsn = Some(dsn);
        options.release =
            Some(concat!("remote-settings-lambdas@", env!("CARGO_PKG_VERSION")).into());
        options.environment = raw.get(&SENTRY_ENV).map(|e| e.to_string().into());
        options.shutdown_timeout = Duration::from_secs(5);
        options.send_default_pii = false;
        let scrubbed = secrets.clone();
        options.before_send = Some(Arc::new(move |event| scrub(event, &scrubbed)));
        let guard = sentry::init(options);
        Ok(Telemetry {
            _guard: Some(guard),
            monitor,
            secrets,
        })
    }

    /// Start a run's check-in (`in_progress` now); nothing is sent without a monitor.
    pub fn check_in(&self) -> CheckIn {
        match (&self.monitor, sentry::Hub::current().client()) {
            (Some(monitor), Some(client)) => CheckIn::start(client, monitor, self.secrets.clone()),
            _ => CheckIn::none(),
        }
    }

    /// A run that stopped at its settings before it could start (exit 2, e.g. a bad `OUTPUT`)
    /// still checks in, as `error`, when the monitor could be read.
    pub fn check_in_refused_settings(&self) {
        self.check_in().finish(Exit::Usage);
        self.flush();
    }

    /// What a finished run sends: the report's alerts when it has any, else the one error event
    /// of a failed run (exit 1 or 3), else nothing. The run's scope carries its tags ([`tag_run`]).
    pub fn report_run(&self, ending: &Ending) {
        if !ending.alerts.is_empty() {
            self.report_alerts(&ending.alerts);
        } else if let (Some(message), true) = (&ending.message, ending.exit.is_failure()) {
            self.report_failure(message, &ending.items);
        }
    }

    /// One error event per alert, with the alert's extra data.
    pub fn report_alerts(&self, alerts: &[Alert]) {
        if self._guard.is_none() {
            return;
        }
        for alert in alerts {
            sentry::with_scope(
                |scope| {
                    for (key, value) in &alert.extra {
                        scope.set_extra(key, value.clone());
                    }
                },
                || sentry::capture_message(&alert.message, sentry::Level::Error),
            );
        }
    }

    /// Send the one error event of a failed run.
    pub fn report_failure(&self, message: &str, items: &[Value]) {
        if self._guard.is_none() {
            return;
        }
        sentry::with_scope(
            |scope| scope.set_extra("failures", Value::Array(items.to_vec())),
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
        assert!(text.contains(commands::secrets::REDACTED));
    }

    #[test]
    fn scrub_hides_a_password_held_in_a_url() {
        let event = sentry::protocol::Event {
            message: Some("GET http://u:in-url-secret@h/v1 failed".into()),
            ..Default::default()
        };
        let out = scrub(event, &[]).unwrap();
        let text = serde_json::to_string(&out).unwrap();
        assert!(!text.contains("in-url-secret"), "{text}");
    }
}
