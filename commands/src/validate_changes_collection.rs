//! `validate_changes_collection`: every monitor/changes entry's `last_modified` must equal the
//! records timestamp of the collection it names, the `timestamp` of its fresh changeset. Entries
//! are checked in parallel and reported in their monitor order.

use serde::Serialize;
use serde_json::{json, Value};

use crate::client::ClientError;
use crate::kinto::{changeset_timestamp, ChangesEntry, CollectionRef, InvalidEntry};
use crate::monitored::{check_all, MonitorList};
use crate::report::{client_error_json, is_finding, judge, Failure, Outcome, Report};
use crate::command::{Command, CommandConfig, Runs};
use crate::settings::shared::{AUTH, MONITOR, MONITOR_BUCKET, MONITOR_COLLECTION};
use crate::settings::{ServerSettings, RawSettings, SettingError};
use crate::{CommandError, Context};

pub const COMMAND: Command = Command {
    name: "validate_changes_collection",
    about: "Check that monitor/changes timestamps match each collection's records timestamp",
    problems_error_type: "ValidationError",
    writer: false,
    groups: &[MONITOR],
    settings: &[],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub bucket: String,
    pub collection: String,
}

impl CommandConfig for Config {
    type Report = ChangesReport;

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        Ok(Config {
            server: ServerSettings::from_settings(raw, &AUTH)?,
            bucket: raw.kinto_id(&MONITOR_BUCKET)?,
            collection: raw.kinto_id(&MONITOR_COLLECTION)?,
        })
    }

    async fn run(&self, ctx: &Context) -> Result<ChangesReport, CommandError> {
        run(self, ctx).await
    }
}

/// The verdict on one entry.
#[derive(Debug, Clone)]
pub enum EntryCheck {
    Ok(ChangesEntry),
    Mismatch {
        entry: ChangesEntry,
        records_timestamp: u64,
    },
    Unreadable {
        entry: ChangesEntry,
        error: ClientError,
    },
    Invalid(InvalidEntry),
}

#[derive(Debug, Clone)]
pub struct ChangesReport {
    pub checks: Vec<EntryCheck>,
}

pub async fn run(config: &Config, ctx: &Context) -> Result<ChangesReport, CommandError> {
    let client = &ctx.kinto(&config.server);
    let monitor = CollectionRef::new(&config.bucket, &config.collection);
    let list = MonitorList::read(client, monitor).await?;
    let in_progress = ctx.http.parallel();
    let mut checks = check_all(ctx, "Checking timestamps", in_progress, list.entries, |entry| async move {
        match changeset_timestamp(client, &entry.bucket, &entry.collection, entry.last_modified).await {
            Ok(ts) if ts == entry.last_modified => EntryCheck::Ok(entry),
            Ok(ts) => EntryCheck::Mismatch {
                entry,
                records_timestamp: ts,
            },
            Err(error) => EntryCheck::Unreadable { entry, error },
        }
    })
    .await;
    checks.extend(list.invalid.into_iter().map(EntryCheck::Invalid));
    Ok(ChangesReport { checks })
}

#[derive(Serialize)]
struct Counts {
    entries: usize,
    ok: usize,
    mismatched: usize,
    unreadable: usize,
    invalid: usize,
}

impl ChangesReport {
    fn counts(&self) -> Counts {
        let mut c = Counts {
            entries: self.checks.len(),
            ok: 0,
            mismatched: 0,
            unreadable: 0,
            invalid: 0,
        };
        for check in &self.checks {
            match check {
                EntryCheck::Ok(_) => c.ok += 1,
                EntryCheck::Mismatch { .. } => c.mismatched += 1,
                EntryCheck::Unreadable { .. } => c.unreadable += 1,
                EntryCheck::Invalid(_) => c.invalid += 1,
            }
        }
        c
    }

    fn item_json(check: &EntryCheck) -> Value {
        match check {
            EntryCheck::Ok(e) => json!({
                "bucket": e.bucket, "collection": e.collection, "status": "ok",
                "timestamp": e.last_modified,
            }),
            EntryCheck::Mismatch {
                entry,
                records_timestamp,
            } => json!({
                "bucket": entry.bucket, "collection": entry.collection, "status": "mismatch",
                "code": "TIMESTAMP_MISMATCH",
                "entry_timestamp": entry.last_modified, "records_timestamp": records_timestamp,
            }),
            EntryCheck::Unreadable { entry, error } => json!({
                "bucket": entry.bucket, "collection": entry.collection, "status": "error",
                "code": error.code(), "entry_timestamp": entry.last_modified,
                "error": client_error_json(error),
            }),
            EntryCheck::Invalid(bad) => json!({
                "id": bad.id, "status": "invalid", "code": "INVALID_ENTRY", "error": bad.reason,
            }),
        }
    }
}

impl Report for ChangesReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for check in &self.checks {
            match check {
                EntryCheck::Ok(e) => writeln!(
                    out,
                    "Etag OK for {}/{} : {}",
                    e.bucket, e.collection, e.last_modified
                )?,
                EntryCheck::Mismatch {
                    entry,
                    records_timestamp,
                } => writeln!(
                    out,
                    "Etag NOT OK for {}/{} : {} != {}",
                    entry.bucket, entry.collection, entry.last_modified, records_timestamp
                )?,
                EntryCheck::Unreadable { entry, error } => writeln!(
                    out,
                    "Etag NOT OK for {}/{} : {error}",
                    entry.bucket, entry.collection
                )?,
                EntryCheck::Invalid(bad) => {
                    writeln!(out, "Etag NOT OK for entry {} : {}", bad.id, bad.reason)?
                }
            }
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        json!({
            "results": self.checks.iter().map(Self::item_json).collect::<Vec<_>>(),
            "totals": self.counts(),
        })
    }

    fn outcome(&self) -> Outcome {
        let failed: Vec<&EntryCheck> = self
            .checks
            .iter()
            .filter(|c| !matches!(c, EntryCheck::Ok(_)))
            .collect();
        let could_not_tell: Vec<&ClientError> = self
            .checks
            .iter()
            .filter_map(|c| match c {
                EntryCheck::Unreadable { error, .. } if !is_finding(error) => Some(error),
                _ => None,
            })
            .collect();
        let findings = failed.len() - could_not_tell.len();
        judge(findings, could_not_tell.len(), || {
            let mut message = String::new();
            if findings > 0 {
                message.push_str("One of the collection did not validate.");
            }
            if let Some(first) = could_not_tell.first() {
                if !message.is_empty() {
                    message.push(' ');
                }
                message.push_str(&format!(
                    "Could not read {} collection(s): {first}",
                    could_not_tell.len()
                ));
            }
            Failure {
                message,
                items: failed.into_iter().map(Self::item_json).collect(),
            }
        })
    }
}
