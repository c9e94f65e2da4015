//! The settings every command, or a group of commands, shares: declared once here, listed in the
//! README's "Shared settings". A command names the groups it takes in its declaration.

use super::declare::Setting;

pub const SERVER: Setting = Setting::new("SERVER", "URL", "Server root URL")
    .default("http://localhost:8888/v1")
    .event_key("server");
pub const REQUESTS_TIMEOUT_SECONDS: Setting = Setting::new(
    "REQUESTS_TIMEOUT_SECONDS",
    "SECONDS",
    "Connect and read timeout per request, in seconds",
)
.default("2");
pub const REQUESTS_NB_RETRIES: Setting = Setting::new(
    "REQUESTS_NB_RETRIES",
    "N",
    "Retries of one request after a transient failure",
)
.default("4");
pub const REQUESTS_RETRY_BACKOFF_SECONDS: Setting = Setting::new(
    "REQUESTS_RETRY_BACKOFF_SECONDS",
    "SECONDS",
    "Base delay of the exponential backoff between retries, in seconds",
)
.default("0.5");
pub const PARALLEL_REQUESTS: Setting = Setting::new(
    "PARALLEL_REQUESTS",
    "N",
    "At most this many requests in flight for the whole run",
)
.default("4");
pub const AUTH: Setting =
    Setting::credentials("AUTH", "Credentials: `user:pass` (Basic) or a Bearer token")
        .event_key("auth");
pub const SENTRY_DSN: Setting =
    Setting::new("SENTRY_DSN", "DSN", "Report failures to this Sentry DSN").secret();
pub const SENTRY_ENV: Setting = Setting::new("SENTRY_ENV", "NAME", "Sentry environment name");
pub const SENTRY_MONITOR_SLUG: Setting = Setting::new(
    "SENTRY_MONITOR_SLUG",
    "SLUG",
    "Check in to this Sentry Crons monitor: in_progress at start, then ok or error (needs SENTRY_DSN)",
);
pub const SENTRY_MONITOR_SCHEDULE: Setting = Setting::new(
    "SENTRY_MONITOR_SCHEDULE",
    "CRONTAB",
    "Create or update the monitor with this crontab schedule (UTC) at each check-in",
);
pub const OUTPUT: Setting = Setting::new(
    "OUTPUT",
    "FORMAT",
    "Output format: text or json (`--json` is the same as OUTPUT=json)",
)
.default("text");

/// What every command takes: the HTTP client's settings, credentials, Sentry and the output
/// format. These are global flags of the command line.
pub const GLOBAL: &[&Setting] = &[
    &SERVER,
    &REQUESTS_TIMEOUT_SECONDS,
    &REQUESTS_NB_RETRIES,
    &REQUESTS_RETRY_BACKOFF_SECONDS,
    &PARALLEL_REQUESTS,
    &AUTH,
    &SENTRY_DSN,
    &SENTRY_ENV,
    &SENTRY_MONITOR_SLUG,
    &SENTRY_MONITOR_SCHEDULE,
    &OUTPUT,
];

pub const MONITOR_BUCKET: Setting =
    Setting::new("BUCKET", "ID", "Bucket of the monitor collection")
        .default("monitor")
        .event_key("bucket");
pub const MONITOR_COLLECTION: Setting = Setting::new(
    "COLLECTION",
    "ID",
    "Monitor collection listing the published collections",
)
.default("changes")
.event_key("collection");

/// The monitor list that per-collection commands read.
pub const MONITOR: &[&Setting] = &[&MONITOR_BUCKET, &MONITOR_COLLECTION];

pub const DRY_RUN: Setting = Setting::switch(
    "DRY_RUN",
    "Say what would be done, and write nothing (`--dry-run`, or DRY_RUN=1)",
);

/// Commands that write, and can say instead what they would write.
pub const DRY_RUN_GROUP: &[&Setting] = &[&DRY_RUN];

/// The destructive jobs' `DRY_RUN` (`purge_history`, `expire_orphan_attachments`): on unless set
/// to `0`, so that a job deletes or marks only when asked to in so many words. Each job lists it
/// among its own settings (and its page documents it), not as the shared group.
pub const DESTRUCTIVE_DRY_RUN: Setting = Setting::switch(
    "DRY_RUN",
    "Say what would be deleted or marked, and change nothing; act only with DRY_RUN=0 (`--dry-run=0`)",
)
.default("1");

/// The shared groups, by the name the README gives them.
pub const GROUPS: &[(&str, &[&Setting])] = &[
    ("global", GLOBAL),
    ("monitor", MONITOR),
    ("dry run", DRY_RUN_GROUP),
    ("object store", crate::store::SETTINGS),
    ("AWS credentials", crate::store::aws::CREDENTIALS),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Shape;

    #[test]
    fn credentials_are_declared_secret() {
        for setting in GLOBAL {
            let looks_secret = setting.env.ends_with("AUTH") || setting.env.ends_with("DSN");
            assert_eq!(setting.secret, looks_secret, "{}", setting.env);
        }
        assert_eq!(DRY_RUN.shape, Shape::Switch);
    }
}
