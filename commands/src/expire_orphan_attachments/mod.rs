//! `expire_orphan_attachments`: marks the attachment files that no record references any more,
//! so that the store's lifecycle rule deletes them later. On a writer server (`AUTH` reads the
//! workspaces), every `location` referenced by a record of any signed collection's source,
//! preview or destination is collected ([`references`]); then the store (`STORAGE_URL`, Google
//! Cloud Storage only: marks are `customTime`) is listed, streamed, and each object outside
//! `bundles/` is judged against that set ([`sweep`]): an orphan without `customTime` gets it set
//! to the run's start; a referenced object that was marked gets it pushed `REPRIEVE_DAYS` ahead
//! (GCS never moves `customTime` back).
//!
//! Safety: dry-run unless `DRY_RUN=0`; nothing is listed nor marked when any changeset could not
//! be read; the listing is read twice (a survey, then the marking pass) so that a run that would
//! mark more than `MAX_MARK_PERCENT` % of the store stops before marking anything (unless
//! `FORCE`), and a listing that fails midway stops the run before any mark; objects written
//! since the run started are never marked.

mod counts;
mod references;
mod report;
mod sweep;

use time::OffsetDateTime;

use crate::command::{Command, CommandConfig, Runs};
use crate::kinto::ServerInfo;
use crate::settings::shared::DESTRUCTIVE_DRY_RUN;
use crate::settings::{RawSettings, ServerSettings, Setting, SettingError};
use crate::store::{self, Store, StoreSettings};
use crate::{CommandError, Context};

pub use counts::{Survey, Sweep, Tally};
pub use report::ExpireReport;
pub use sweep::Class;

pub const COMMAND: Command = Command {
    name: "expire_orphan_attachments",
    about: "Mark the attachment files no record references (GCS customTime) for the store's lifecycle rule to delete (writer server)",
    problems_error_type: "ExpireAttachmentsError",
    writer: true,
    groups: &[],
    settings: &[
        &DESTRUCTIVE_DRY_RUN,
        &store::STORAGE_URL,
        &store::STORAGE_ENDPOINT,
        &store::GOOGLE_APPLICATION_CREDENTIALS,
        &MAX_MARK_PERCENT,
        &FORCE,
        &REPRIEVE_DAYS,
    ],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const MAX_MARK_PERCENT: Setting = Setting::new(
    "MAX_MARK_PERCENT",
    "PERCENT",
    "Stop, marking nothing, when a run would mark more than this percentage of the store's objects (a whole number, 0 to 100)",
)
.default("5")
.event_key("max_mark_percent");
pub const FORCE: Setting = Setting::switch(
    "FORCE",
    "Mark even when more than MAX_MARK_PERCENT % of the store would be marked",
)
.event_key("force");
pub const REPRIEVE_DAYS: Setting = Setting::new(
    "REPRIEVE_DAYS",
    "DAYS",
    "A marked object referenced again gets its customTime pushed this many days ahead",
)
.default("365")
.event_key("reprieve_days");

#[derive(Debug, Clone)]
pub struct Config {
    /// Server, timeouts, and `AUTH`, which must be able to read the workspace buckets.
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub dry_run: bool,
    pub max_mark_percent: u64,
    pub force: bool,
    pub reprieve_days: u64,
}

impl CommandConfig for Config {
    type Report = ExpireReport;

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let server = ServerSettings::reading_sources(raw)?;
        Ok(Config {
            server,
            // Marks are GCS `customTime`, which S3 has not.
            store: StoreSettings::gcs_only(
                raw,
                "marks are Google Cloud Storage customTime, which other stores do not have",
            )?,
            dry_run: raw.flag(&DESTRUCTIVE_DRY_RUN)?,
            max_mark_percent: raw.uint(&MAX_MARK_PERCENT, 100)?,
            force: raw.flag(&FORCE)?,
            reprieve_days: raw.nonzero(&REPRIEVE_DAYS, 36_500)?.get() as u64,
        })
    }

    async fn run(&self, ctx: &Context) -> Result<ExpireReport, CommandError> {
        run(self, ctx).await
    }
}

pub async fn run(config: &Config, ctx: &Context) -> Result<ExpireReport, CommandError> {
    let started = OffsetDateTime::now_utc();
    let client = ctx.kinto(&config.server);
    let signer = ServerInfo::fetch(&client).await?.require_signer()?;
    let store = Store::new(&config.store, &ctx.http)
        .map_err(|e| CommandError::Runtime(format!("{}: {e}", config.store.location)))?;
    let references = references::collect(ctx, &client, &signer, started).await;
    let mut report = ExpireReport::new(config, store.describe(), references);
    // Never act on partial knowledge: without every reference, the store is not even listed.
    if report.references.unreadable.is_empty() {
        let referenced = &report.references.locations;
        report.sweep = Some(sweep::sweep(ctx, &store, config, referenced, started).await);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawSettings {
        let mut all = vec![("AUTH", "u:p"), ("STORAGE_URL", "gs://bucket/files")];
        all.extend_from_slice(pairs);
        RawSettings::from_pairs(&all)
    }

    #[test]
    fn it_is_a_dry_run_unless_dry_run_is_0() {
        let config = Config::from_settings(&raw(&[])).unwrap();
        assert!(config.dry_run);
        assert_eq!((config.max_mark_percent, config.reprieve_days), (5, 365));
        assert!(!config.force);
        let config = Config::from_settings(&raw(&[("DRY_RUN", "0")])).unwrap();
        assert!(!config.dry_run);
    }

    #[test]
    fn the_store_must_be_google_cloud_storage() {
        let err = Config::from_settings(&raw(&[("STORAGE_URL", "s3://bucket/files")]));
        let err = err.unwrap_err();
        assert_eq!(err.name, "STORAGE_URL");
        assert!(err.to_string().contains("not a gs:// URL"), "{err}");
        let err = Config::from_settings(&RawSettings::from_pairs(&[("AUTH", "u:p")]));
        assert_eq!(err.unwrap_err().name, "STORAGE_URL");
    }

    #[test]
    fn bad_numbers_are_refused() {
        for (name, value) in [
            ("MAX_MARK_PERCENT", "101"),
            ("MAX_MARK_PERCENT", "five"),
            ("REPRIEVE_DAYS", "0"),
            ("FORCE", "maybe"),
        ] {
            let err = Config::from_settings(&raw(&[(name, value)])).unwrap_err();
            assert_eq!(err.name, name, "{err}");
        }
    }

    #[test]
    fn auth_is_required() {
        let raw = RawSettings::from_pairs(&[("STORAGE_URL", "gs://bucket")]);
        assert_eq!(Config::from_settings(&raw).unwrap_err().name, "AUTH");
    }
}
