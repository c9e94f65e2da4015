//! Sentry Crons: the monitor a run checks in to (`SENTRY_MONITOR_SLUG`, with the schedule
//! `SENTRY_MONITOR_SCHEDULE` upserts), and one run's [`CheckIn`]: `in_progress` when it starts,
//! `ok` or `error` with its duration when it ends, sent as envelopes through the run's Sentry
//! client and scrubbed like events.

use std::sync::Arc;
use std::time::Instant;

use commands::report::Exit;
use commands::settings::quote;
use commands::settings::shared::{SENTRY_DSN, SENTRY_MONITOR_SCHEDULE, SENTRY_MONITOR_SLUG};
use commands::{RawSettings, SettingError};
use sentry::protocol::{
    Envelope, MonitorCheckIn, MonitorCheckInStatus, MonitorConfig, MonitorSchedule,
};

use super::redacted;

/// The longest Sentry monitor slug.
const MAX_SLUG: usize = 50;

/// The Sentry Crons monitor that runs check in to (`SENTRY_MONITOR_SLUG`), and the schedule each
/// check-in creates or updates it with (`SENTRY_MONITOR_SCHEDULE`).
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    slug: String,
    config: Option<MonitorConfig>,
}

impl Monitor {
    /// `None` without a slug. A slug must be Sentry's (lowercase letters, digits, `-`, `_`, at
    /// most 50) and needs `SENTRY_DSN`; a schedule needs a slug and must be a crontab.
    pub fn from_settings(raw: &RawSettings) -> Result<Option<Monitor>, SettingError> {
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
    /// A check-in of a run without a monitor: sends nothing.
    pub fn none() -> CheckIn {
        CheckIn(None)
    }

    /// Send the `in_progress` check-in of a run starting now, through `client`.
    pub fn start(client: Arc<sentry::Client>, monitor: &Monitor, secrets: Vec<String>) -> CheckIn {
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

/// A check-in, cleaned as [`super::scrub`] cleans events (check-ins do not go through
/// `before_send`).
fn scrub_check_in(check_in: MonitorCheckIn, secrets: &[String]) -> Option<MonitorCheckIn> {
    let text = serde_json::to_string(&check_in).ok()?;
    match redacted(&text, secrets) {
        None => Some(check_in),
        Some(cleaned) => serde_json::from_str(&cleaned).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commands::settings::shared::GLOBAL;
    use sentry::protocol::EnvelopeItem;
    use std::panic::AssertUnwindSafe;
    use std::sync::Mutex;
    use std::time::Duration;

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
}
