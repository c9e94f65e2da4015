//! Sentry: optional (`SENTRY_DSN`), one error event per failed run from one place (or the report's
//! own alerts, e.g. one per source over threshold), panics captured, events flushed before exit,
//! every known credential scrubbed from every event; and, with `SENTRY_MONITOR_SLUG`, each run's
//! Sentry Crons check-ins ([`CheckIn`]): `in_progress` when it starts, `ok` or `error` with its
//! duration when it ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::report::Exit;
use commands::secrets::redact_text;
use commands::settings::quote;
use commands::settings::shared::{
    SENTRY_DSN, SENTRY_ENV, SENTRY_MONITOR_SCHEDULE, SENTRY_MONITOR_SLUG,
};
use commands::{Alert, Command, RawSettings, SettingError};
use sentry::protocol::{
    Envelope, MonitorCheckIn, MonitorCheckInStatus, MonitorConfig, MonitorSchedule,
};

use crate::output::Ending;
use serde_json::Value;

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

/// A check-in, cleaned as [`scrub`] cleans events (check-ins do not go through `before_send`).
fn scrub_check_in(check_in: MonitorCheckIn, secrets: &[String]) -> Option<MonitorCheckIn> {
    let text = serde_json::to_string(&check_in).ok()?;
    match redacted(&text, secrets) {
        None => Some(check_in),
        Some(cleaned) => serde_json::from_str(&cleaned).ok(),
    }
}

/// The JSON text of what goes to Sentry with every secret (and any user-info in a URL) replaced,
/// or `None` when there was nothing to replace.
fn redacted(text: &str, secrets: &[String]) -> Option<String> {
    let cleaned = redact_text(text, secrets);
    (cleaned != text).then_some(cleaned)
}

/// The longest Sentry monitor slug.
const MAX_SLUG: usize = 50;

/// The Sentry Crons monitor that runs check in to (`SENTRY_MONITOR_SLUG`), and the schedule each
/// check-in creates or updates it with (`SENTRY_MONITOR_SCHEDULE`).
#[derive(Debug, Clone, PartialEq)]
struct Monitor {
    slug: String,
    config: Option<MonitorConfig>,
}

impl Monitor {
    /// `None` without a slug. A slug must be Sentry's (lowercase letters, digits, `-`, `_`, at
    /// most 50) and needs `SENTRY_DSN`; a schedule needs a slug and must be a crontab.
    fn from_settings(raw: &RawSettings) -> Result<Option<Monitor>, SettingError> {
        let schedule = raw.get(&SENTRY_MONITOR_SCHEDULE).map(str::trim);
        let Some(slug) = raw.get(&SENTRY_MONITOR_SLUG).map(str::trim) else {
            return match schedule {
                None => Ok(None),
                Some(_) => Err(SettingError::new(
                    SENTRY_MONITOR_SCHEDULE.env,
                    "it needs SENTRY_MONITOR_SLUG, which is not set",
                )),
            };
        };
        let valid = slug.len() <= MAX_SLUG
            && slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return Err(SettingError::new(
                SENTRY_MONITOR_SLUG.env,
                format!(
                    "{} is not a Sentry monitor slug (lowercase letters, digits, '-' and '_', \
                     at most {MAX_SLUG})",
                    quote(slug)
                ),
            ));
        }
        if raw.get(&SENTRY_DSN).is_none() {
            return Err(SettingError::new(
                SENTRY_MONITOR_SLUG.env,
                "check-ins go to SENTRY_DSN, which is not set",
            ));
        }
        let config = match schedule {
            None => None,
            Some(crontab) => Some(MonitorConfig {
                schedule: MonitorSchedule::from_crontab(crontab).map_err(|_| {
                    SettingError::new(
                        SENTRY_MONITOR_SCHEDULE.env,
                        format!(
                            "{} is not a crontab schedule (minute hour day-of-month month \
                             day-of-week)",
                            quote(crontab)
                        ),
                    )
                })?,
                checkin_margin: None,
                max_runtime: None,
                timezone: None,
                failure_issue_threshold: None,
                recovery_threshold: None,
            }),
        };
        Ok(Some(Monitor {
            slug: slug.to_string(),
            config,
        }))
    }
}

/// One run's Sentry Crons check-in: `in_progress` is sent when it starts ([`Telemetry::check_in`]),
/// and [`CheckIn::finish`] sends its end under the same `check_in_id`, with the run's duration.
/// One dropped unfinished (a panic unwound past the run's end) ends as `error`. Without a monitor
/// it sends nothing.
pub struct CheckIn(Option<OpenCheckIn>);

struct OpenCheckIn {
    client: Arc<sentry::Client>,
    /// The `in_progress` check-in; its end differs only in `status` and `duration`.
    started: MonitorCheckIn,
    since: Instant,
    secrets: Vec<String>,
}

impl CheckIn {
    fn start(client: Arc<sentry::Client>, monitor: &Monitor, secrets: Vec<String>) -> CheckIn {
        let started = MonitorCheckIn {
            check_in_id: sentry::types::random_uuid(),
            monitor_slug: monitor.slug.clone(),
            status: MonitorCheckInStatus::InProgress,
            environment: client.options().environment.as_ref().map(|e| e.to_string()),
            duration: None,
            monitor_config: monitor.config.clone(),
        };
        let open = OpenCheckIn {
            client,
            started,
            since: Instant::now(),
            secrets,
        };
        open.send(open.started.clone());
        CheckIn(Some(open))
    }

    /// End the run's check-in: `ok` for exit 0; `error` for exit 1 and 3, and for exit 2 (a
    /// broken configuration of a scheduled job is a failure its monitor should show).
    pub fn finish(mut self, exit: Exit) {
        if let Some(open) = self.0.take() {
            let status = match exit {
                Exit::Ok => MonitorCheckInStatus::Ok,
                Exit::Problems | Exit::Usage | Exit::Incomplete => MonitorCheckInStatus::Error,
            };
            open.end(status);
        }
    }
}

impl Drop for CheckIn {
    fn drop(&mut self) {
        if let Some(open) = self.0.take() {
            open.end(MonitorCheckInStatus::Error);
        }
    }
}

impl OpenCheckIn {
    fn end(self, status: MonitorCheckInStatus) {
        let end = MonitorCheckIn {
            status,
            duration: Some(self.since.elapsed().as_secs_f64()),
            ..self.started.clone()
        };
        self.send(end);
    }

    fn send(&self, check_in: MonitorCheckIn) {
        if let Some(check_in) = scrub_check_in(check_in, &self.secrets) {
            self.client.send_envelope(Envelope::from(check_in));
        }
    }
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
            _ => CheckIn(None),
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
    use commands::settings::shared::GLOBAL;
    use sentry::protocol::EnvelopeItem;
    use std::panic::AssertUnwindSafe;
    use std::sync::Mutex;

    fn settings(pairs: &[(&str, &str)]) -> RawSettings {
        let mut raw = RawSettings::declaring(GLOBAL.to_vec());
        for (name, value) in pairs {
            raw.set(name, *value);
        }
        raw
    }

    const DSN: (&str, &str) = ("SENTRY_DSN", "http://key@127.0.0.1:9/1");

    #[test]
    fn a_monitor_needs_a_sentry_slug_and_a_dsn_and_takes_a_crontab() {
        let monitor = |pairs: &[(&str, &str)]| Monitor::from_settings(&settings(pairs));
        assert_eq!(monitor(&[DSN]), Ok(None));
        let slug50 = "a".repeat(50);
        let found = monitor(&[DSN, ("SENTRY_MONITOR_SLUG", &slug50)]).unwrap();
        assert_eq!(found.map(|m| (m.slug, m.config)), Some((slug50, None)));
        let found = monitor(&[
            DSN,
            ("SENTRY_MONITOR_SLUG", " rsl_validate-signature-2 "),
            ("SENTRY_MONITOR_SCHEDULE", "*/10 * * * *"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(found.slug, "rsl_validate-signature-2");
        assert_eq!(
            found.config.unwrap().schedule,
            MonitorSchedule::Crontab {
                value: "*/10 * * * *".into()
            }
        );

        let error = |pairs: &[(&str, &str)]| monitor(pairs).unwrap_err().to_string();
        let bad_slug = |slug: &str| {
            format!(
                "invalid SENTRY_MONITOR_SLUG: {slug:?} is not a Sentry monitor slug (lowercase \
                 letters, digits, '-' and '_', at most 50)"
            )
        };
        for slug in ["Nightly", "a b", "a/b", "é", &"a".repeat(51)] {
            assert_eq!(error(&[DSN, ("SENTRY_MONITOR_SLUG", slug)]), bad_slug(slug));
        }
        assert_eq!(
            error(&[("SENTRY_MONITOR_SLUG", "nightly")]),
            "invalid SENTRY_MONITOR_SLUG: check-ins go to SENTRY_DSN, which is not set"
        );
        assert_eq!(
            error(&[DSN, ("SENTRY_MONITOR_SCHEDULE", "0 * * * *")]),
            "invalid SENTRY_MONITOR_SCHEDULE: it needs SENTRY_MONITOR_SLUG, which is not set"
        );
        for crontab in ["every hour", "* * * *", "61 * * * *"] {
            assert_eq!(
                error(&[
                    DSN,
                    ("SENTRY_MONITOR_SLUG", "nightly"),
                    ("SENTRY_MONITOR_SCHEDULE", crontab)
                ]),
                format!(
                    "invalid SENTRY_MONITOR_SCHEDULE: {crontab:?} is not a crontab schedule \
                     (minute hour day-of-month month day-of-week)"
                )
            );
        }
    }

    /// A transport that keeps what the client sends.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Envelope>>);

    impl sentry::Transport for Recorder {
        fn send_envelope(&self, envelope: Envelope) {
            self.0.lock().unwrap().push(envelope);
        }
    }

    impl Recorder {
        fn check_ins(&self) -> Vec<MonitorCheckIn> {
            let envelopes = self.0.lock().unwrap();
            let items = envelopes.iter().flat_map(|e| e.items());
            items
                .map(|item| match item {
                    EnvelopeItem::MonitorCheckIn(check_in) => check_in.clone(),
                    other => panic!("not a check-in: {other:?}"),
                })
                .collect()
        }
    }

    fn client(recorder: &Arc<Recorder>, environment: &'static str) -> Arc<sentry::Client> {
        let mut options = sentry::ClientOptions::new();
        options.dsn = Some(DSN.1.parse().unwrap());
        options.environment = Some(environment.into());
        options.transport = Some(Arc::new(recorder.clone()));
        Arc::new(sentry::Client::from_config(options))
    }

    fn nightly() -> (Arc<Recorder>, CheckIn) {
        let recorder = Arc::new(Recorder::default());
        let monitor = Monitor {
            slug: "nightly".into(),
            config: None,
        };
        let check_in = CheckIn::start(client(&recorder, "stage"), &monitor, Vec::new());
        (recorder, check_in)
    }

    #[test]
    fn a_check_in_starts_in_progress_and_ends_under_the_same_id_with_its_duration() {
        for (exit, status) in [
            (Exit::Ok, MonitorCheckInStatus::Ok),
            (Exit::Problems, MonitorCheckInStatus::Error),
            (Exit::Usage, MonitorCheckInStatus::Error),
            (Exit::Incomplete, MonitorCheckInStatus::Error),
        ] {
            let (recorder, check_in) = nightly();
            let started = recorder.check_ins();
            assert_eq!(started.len(), 1);
            assert_eq!(started[0].status, MonitorCheckInStatus::InProgress);
            assert_eq!(started[0].duration, None);
            std::thread::sleep(Duration::from_millis(20));
            check_in.finish(exit);
            let [start, end] = <[MonitorCheckIn; 2]>::try_from(recorder.check_ins()).unwrap();
            assert_eq!(end.check_in_id, start.check_in_id);
            assert_eq!(end.status, status, "{exit:?}");
            assert!(end.duration.unwrap() >= 0.02, "{end:?}");
            for c in [start, end] {
                assert_eq!(c.monitor_slug, "nightly");
                assert_eq!(c.environment.as_deref(), Some("stage"));
            }
        }
    }

    #[test]
    fn a_check_in_dropped_unfinished_ends_as_error() {
        let (recorder, check_in) = nightly();
        let unwound = std::panic::catch_unwind(AssertUnwindSafe(move || {
            let _check_in = check_in;
            panic!("a bug past the run's end");
        }));
        assert!(unwound.is_err());
        let check_ins = recorder.check_ins();
        assert_eq!(check_ins.len(), 2);
        assert_eq!(check_ins[1].status, MonitorCheckInStatus::Error);
        assert_eq!(check_ins[1].check_in_id, check_ins[0].check_in_id);
    }

    #[test]
    fn check_ins_are_scrubbed_like_events() {
        // A credential that happens to be the environment's name.
        let recorder = Arc::new(Recorder::default());
        let client = client(&recorder, "hunter2");
        let monitor = Monitor {
            slug: "nightly".into(),
            config: None,
        };
        CheckIn::start(client, &monitor, vec!["hunter2".into()]).finish(Exit::Ok);
        let check_ins = recorder.check_ins();
        assert_eq!(check_ins.len(), 2);
        for check_in in check_ins {
            assert_eq!(
                check_in.environment.as_deref(),
                Some(commands::secrets::REDACTED)
            );
        }
    }

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
