//! `validate_changes_collection`: every monitor/changes entry's `last_modified` must equal the
//! records timestamp of the collection it names, the `timestamp` of its fresh changeset. Entries
//! are checked in parallel and reported in their monitor order.

use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};

use crate::client::{ClientError, KintoClient};
use crate::kinto::{changeset_timestamp, read_changes, ChangesEntry, InvalidEntry};
use crate::progress::Progress;
use crate::report::{client_error_json, Failure, Outcome, Report};
use crate::settings::{HttpSettings, RawSettings, SettingError};
use crate::{CommandError, Context};

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpSettings,
    pub bucket: String,
    pub collection: String,
}

impl Config {
    pub fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        Ok(Config {
            http: HttpSettings::from_settings(raw, "AUTH")?,
            bucket: raw.kinto_id("BUCKET", "monitor")?,
            collection: raw.kinto_id("COLLECTION", "changes")?,
        })
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
    let client = KintoClient::new(&config.http);
    let (entries, invalid) = read_changes(&client, &config.bucket, &config.collection).await?;
    let progress = Progress::new(ctx.progress, entries.len() as u64, "Checking timestamps");
    let client = &client;
    let progress_ref = &progress;
    let mut checks: Vec<EntryCheck> = futures::stream::iter(entries)
        .map(|entry| async move {
            let result = changeset_timestamp(
                client,
                &entry.bucket,
                &entry.collection,
                entry.last_modified,
            )
            .await;
            progress_ref.inc();
            match result {
                Ok(ts) if ts == entry.last_modified => EntryCheck::Ok(entry),
                Ok(ts) => EntryCheck::Mismatch {
                    entry,
                    records_timestamp: ts,
                },
                Err(error) => EntryCheck::Unreadable { entry, error },
            }
        })
        .buffered(config.http.parallel.get())
        .collect()
        .await;
    progress.finish();
    checks.extend(invalid.into_iter().map(EntryCheck::Invalid));
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
        let failed: Vec<Value> = self
            .checks
            .iter()
            .filter(|c| !matches!(c, EntryCheck::Ok(_)))
            .map(Self::item_json)
            .collect();
        let unreachable: Vec<&ClientError> = self
            .checks
            .iter()
            .filter_map(|c| match c {
                EntryCheck::Unreadable { error, .. } if !error.is_client_status() => Some(error),
                _ => None,
            })
            .collect();
        if let Some(first) = unreachable.first() {
            Outcome::Incomplete(Failure {
                message: format!(
                    "Could not read {} collection(s): {first}",
                    unreachable.len()
                ),
                items: failed,
            })
        } else if !failed.is_empty() {
            Outcome::Problems(Failure {
                message: "One of the collection did not validate.".into(),
                items: failed,
            })
        } else {
            Outcome::Ok
        }
    }
}
