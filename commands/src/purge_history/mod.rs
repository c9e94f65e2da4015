//! `purge_history`: delete the history entries (Kinto's history plugin) older than
//! `MAX_AGE_DAYS` that the users of `USER_IDS` left in the buckets of `BUCKETS`. For every
//! (bucket, user id) pair it first counts the entries older than the cutoff (a paginated
//! `GET /buckets/{b}/history?_before="<ms>"&user_id=<id>`); only when every count is known does
//! it delete, and only the pairs whose count was read and is within `MAX_DELETE`. Dry-run unless
//! `DRY_RUN=0` (a dry run counts and deletes nothing). A server without the history capability is a
//! usage error (exit 2). See [`pair`] for one pair's purge.

mod pair;
mod report;

use crate::command::{Command, CommandConfig, Runs};
use crate::kinto::ServerInfo;
use crate::monitored::check_all;
use crate::settings::shared::{AUTH, DESTRUCTIVE_DRY_RUN};
use crate::settings::{quote, RawSettings, ServerSettings, Setting, SettingError};
use crate::sources::{check_at, CHECK_AT};
use crate::{CommandError, Context};

pub use pair::{Pair, Purge};
pub use report::PurgeReport;

pub const COMMAND: Command = Command {
    name: "purge_history",
    about: "Delete the history entries older than MAX_AGE_DAYS of some users in some buckets (writer server; dry-run unless DRY_RUN=0)",
    problems_error_type: "PurgeHistoryError",
    writer: true,
    groups: &[],
    settings: &[
        &BUCKETS,
        &USER_IDS,
        &MAX_AGE_DAYS,
        &MAX_DELETE,
        &DESTRUCTIVE_DRY_RUN,
        &CHECK_AT,
    ],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

/// The successor's defaults (mozilla/remote-settings cronjobs): the workspace buckets, where
/// editors and automation write.
pub const BUCKETS: Setting = Setting::new(
    "BUCKETS",
    "IDS",
    "Buckets whose history is purged, comma-separated",
)
.default("staging, security-state-staging, main-workspace")
.event_key("buckets");
/// The successor's defaults: the administrator, the production automation account and the
/// signer plugin itself.
pub const USER_IDS: Setting = Setting::new(
    "USER_IDS",
    "IDS",
    "Kinto user ids (`prefix:name`) whose entries are purged, comma-separated",
)
.default("account:admin, account:cloudservices_kinto_prod, plugin:remote-settings")
.event_key("user_ids");
pub const MAX_AGE_DAYS: Setting = Setting::new(
    "MAX_AGE_DAYS",
    "DAYS",
    "Purge the entries older than this many days",
)
.default("730")
.event_key("max_age_days");
pub const MAX_DELETE: Setting = Setting::new(
    "MAX_DELETE",
    "N",
    "A pair (bucket, user id) with more entries to purge than this is left untouched and reported (0: no cap)",
)
.default("10000")
.event_key("max_delete");

const DAY: i64 = 86_400;
/// A hundred years.
const MAX_DAYS: u64 = 36_500;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub buckets: Vec<String>,
    pub user_ids: Vec<String>,
    pub max_age_days: u64,
    /// Entries whose `last_modified` is before this (epoch milliseconds) are purged.
    pub before_ms: u64,
    /// `None`: no cap.
    pub max_delete: Option<u64>,
    pub dry_run: bool,
}

impl CommandConfig for Config {
    type Report = PurgeReport;

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let server = ServerSettings::from_settings(raw, &AUTH)?;
        if server.auth.is_none() {
            return Err(SettingError::new(
                AUTH.env,
                "not set: credentials with write permission on the buckets are required \
                 (user:pass or a Bearer token)",
            ));
        }
        let max_age_days = raw.uint(&MAX_AGE_DAYS, MAX_DAYS)?;
        // Now to the millisecond, as the successor computes it, or `--at`.
        let at_ms = match raw.get(&CHECK_AT) {
            Some(_) => i128::from(check_at(raw)?) * 1000,
            None => time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
        };
        let before = at_ms - i128::from(max_age_days as i64 * DAY * 1000);
        if before <= 0 {
            return Err(SettingError::new(
                MAX_AGE_DAYS.env,
                format!("{max_age_days} days before the check time is before 1970"),
            ));
        }
        Ok(Config {
            server,
            buckets: ids(raw, &BUCKETS, crate::settings::is_kinto_id, "a Kinto bucket id")?,
            user_ids: ids(raw, &USER_IDS, is_user_id, "a Kinto user id (`prefix:name`)")?,
            max_age_days,
            before_ms: before as u64,
            max_delete: Some(raw.uint(&MAX_DELETE, u64::MAX)?).filter(|&n| n > 0),
            dry_run: raw.flag(&DESTRUCTIVE_DRY_RUN)?,
        })
    }

    async fn run(&self, ctx: &Context) -> Result<PurgeReport, CommandError> {
        run(self, ctx).await
    }
}

/// A comma-separated list of ids, each checked, without duplicates, never empty.
fn ids(
    raw: &RawSettings,
    setting: &Setting,
    valid: fn(&str) -> bool,
    what: &str,
) -> Result<Vec<String>, SettingError> {
    let mut out: Vec<String> = Vec::new();
    for item in raw.list(setting, ',') {
        if !valid(&item) {
            return Err(SettingError::new(
                setting.env,
                format!("{} is not {what}", quote(&item)),
            ));
        }
        if !out.contains(&item) {
            out.push(item);
        }
    }
    if out.is_empty() {
        return Err(SettingError::new(setting.env, "the list is empty"));
    }
    Ok(out)
}

/// A Kinto user id as the history plugin records it: the authentication policy's prefix, a
/// colon, the name (`account:admin`, `plugin:remote-settings`, `basicauth:<hmac>`), printable
/// ASCII without spaces. A name without its prefix would match no entry.
pub fn is_user_id(value: &str) -> bool {
    let Some((prefix, name)) = value.split_once(':') else {
        return false;
    };
    !prefix.is_empty()
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_graphic())
        && value.len() <= 256
}

/// What it says on a server without the history plugin.
pub const NO_HISTORY_MESSAGE: &str =
    "No history capability found: run on a server with Kinto's history plugin (kinto.plugins.history)";

/// Check that the server keeps history, count every pair, then (unless dry-run) purge those whose
/// count was read and is within the cap. Pairs run in parallel within the client's in-flight
/// cap; one pair's requests follow one another.
pub async fn run(config: &Config, ctx: &Context) -> Result<PurgeReport, CommandError> {
    let client = &ctx.kinto(&config.server);
    if !ServerInfo::fetch(client)
        .await?
        .capabilities
        .contains_key("history")
    {
        return Err(CommandError::Usage(NO_HISTORY_MESSAGE.into()));
    }
    let pairs: Vec<Pair> = config
        .buckets
        .iter()
        .flat_map(|bucket| {
            config.user_ids.iter().map(move |user_id| Pair {
                bucket: bucket.clone(),
                user_id: user_id.clone(),
            })
        })
        .collect();
    let in_progress = ctx.http.parallel();
    let counted = check_all(ctx, "Counting history entries", in_progress, pairs, |pair| async move {
        let count = pair.count(client, config.before_ms).await;
        (pair, count)
    })
    .await;
    let results = if config.dry_run {
        counted
            .into_iter()
            .map(|(pair, count)| (pair, Purge::dry_run(count, config.max_delete)))
            .collect()
    } else {
        check_all(ctx, "Purging history", in_progress, counted, |(pair, count)| async move {
            let purge = pair
                .purge(client, config.before_ms, count, config.max_delete)
                .await;
            (pair, purge)
        })
        .await
    };
    Ok(PurgeReport {
        before_ms: config.before_ms,
        max_age_days: config.max_age_days,
        max_delete: config.max_delete,
        dry_run: config.dry_run,
        results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, SettingError> {
        let mut all = vec![("AUTH", "u:p"), ("CHECK_AT", "1796400000")];
        all.extend_from_slice(pairs);
        Config::from_settings(&RawSettings::from_pairs(&all))
    }

    #[test]
    fn defaults_are_the_successors_and_dry_run() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.buckets,
            ["staging", "security-state-staging", "main-workspace"]
        );
        assert_eq!(
            c.user_ids,
            [
                "account:admin",
                "account:cloudservices_kinto_prod",
                "plugin:remote-settings"
            ]
        );
        assert_eq!(c.max_age_days, 730);
        assert_eq!(c.before_ms, (1_796_400_000 - 730 * 86_400) * 1000);
        assert_eq!(c.max_delete, Some(10_000));
        assert!(c.dry_run);
        assert!(!config(&[("DRY_RUN", "0")]).unwrap().dry_run);
        assert_eq!(config(&[("MAX_DELETE", "0")]).unwrap().max_delete, None);
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (name, value) in [
            ("BUCKETS", " , ,"),
            ("BUCKETS", "main,../x"),
            ("USER_IDS", "admin"),
            ("USER_IDS", "account:"),
            ("USER_IDS", "account:a b"),
            ("USER_IDS", ":x"),
            ("MAX_AGE_DAYS", "two years"),
            ("MAX_AGE_DAYS", "-1"),
            ("MAX_AGE_DAYS", "30000"),
            ("MAX_DELETE", "many"),
            ("DRY_RUN", "maybe"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert_eq!(err.name, name, "{value}: {err}");
        }
        let unset = Config::from_settings(&RawSettings::new()).unwrap_err();
        assert_eq!(unset.name, "AUTH");
    }

    #[test]
    fn lists_are_trimmed_and_deduplicated() {
        let c = config(&[("BUCKETS", " b1, b2 ,b1"), ("USER_IDS", "account:a,account:a")]).unwrap();
        assert_eq!(c.buckets, ["b1", "b2"]);
        assert_eq!(c.user_ids, ["account:a"]);
    }
}
