//! `consistency_checks`: on a writer server, every monitored (non-preview) collection is resolved
//! to its signer resource, and the records of its source, preview and destination must agree with
//! the source's `status`:
//!
//! - `to-review`: source = preview (no preview: nothing to compare, skipped);
//! - `signed` (or `null`): source = preview = destination (source = destination without preview);
//! - `work-in-progress`: skipped, anything may differ while editors work;
//! - no `status` attribute, any other status, an unknown collection or a missing side: inconsistent.
//!
//! Each side is read with one `changeset` request (metadata and every record in one answer, no
//! pagination): the source first, since its status says what to compare, then the preview and the
//! destination together. That is one to three requests per collection. The destination is read with
//! `_expected` set to its monitor/changes timestamp, the others with the run's start time, so no
//! cache can serve an older copy. Collections are checked in parallel under the client's cap.

pub mod diff;
mod report;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::{ClientError, Request, Response};
use crate::kinto::{
    ChangesEntry, CollectionRef, Kinto, Role, ServerInfo, SignedCollection, SignerCapability,
    SignerStatus,
};
use crate::monitored::{check_all, MonitorList};
use crate::command::{Command, CommandConfig, Runs};
use crate::settings::shared::{MONITOR, MONITOR_BUCKET, MONITOR_COLLECTION};
use crate::settings::{RawSettings, ServerSettings, SettingError};
use crate::{CommandError, Context};

pub const COMMAND: Command = Command {
    name: "consistency_checks",
    about: "Check that source, preview and destination records agree with the review status (writer server)",
    problems_error_type: "ConsistencyError",
    writer: true,
    groups: &[MONITOR],
    settings: &[],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub use diff::{compare, PairDiff, Side};
pub use report::ConsistencyReport;

#[derive(Debug, Clone)]
pub struct Config {
    /// Server, timeouts, and `AUTH`, which must be able to read the workspace buckets.
    pub server: ServerSettings,
    pub bucket: String,
    pub collection: String,
}

impl CommandConfig for Config {
    type Report = ConsistencyReport;

    async fn run(&self, ctx: &Context) -> Result<ConsistencyReport, CommandError> {
        run(self, ctx).await
    }

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let server = ServerSettings::reading_sources(raw)?;
        Ok(Config {
            server,
            bucket: raw.kinto_id(&MONITOR_BUCKET)?,
            collection: raw.kinto_id(&MONITOR_COLLECTION)?,
        })
    }
}

/// Why a monitored collection is inconsistent.
#[derive(Debug, Clone, PartialEq)]
pub enum Inconsistency {
    /// The monitor entry's bucket or collection is not a Kinto id.
    InvalidEntry(String),
    /// No signer resource publishes this collection.
    UnknownCollection,
    /// The source collection has no `status` attribute.
    StatusMissing,
    /// The source's status is not one a collection can rest in.
    UnexpectedStatus(String),
    /// One side of the workflow does not exist (HTTP 404).
    CollectionMissing {
        side: Side,
        collection: CollectionRef,
    },
    /// Records differ between sides that must be equal (only the pairs that differ).
    RecordsDiffer(Vec<PairDiff>),
}

impl Inconsistency {
    /// A stable code for JSON reports.
    pub fn code(&self) -> &'static str {
        match self {
            Inconsistency::InvalidEntry(_) => "INVALID_ENTRY",
            Inconsistency::UnknownCollection => "UNKNOWN_COLLECTION",
            Inconsistency::StatusMissing => "STATUS_MISSING",
            Inconsistency::UnexpectedStatus(_) => "UNEXPECTED_STATUS",
            Inconsistency::CollectionMissing { .. } => "COLLECTION_MISSING",
            Inconsistency::RecordsDiffer(_) => "RECORDS_DIFFER",
        }
    }
}

/// The verdict on one monitored collection.
#[derive(Debug, Clone)]
pub enum Verdict {
    Ok,
    /// Nothing to compare in this state (e.g. `work-in-progress`).
    Skip(String),
    Inconsistent(Inconsistency),
    /// A side could not be read (after retries, or refused): the check is incomplete.
    Unreadable {
        side: Side,
        collection: CollectionRef,
        error: ClientError,
    },
}

/// One monitored collection, checked.
#[derive(Debug, Clone)]
pub struct Check {
    /// `bucket/collection` as monitored (or `entry <id>` for an unusable entry).
    pub identifier: String,
    /// The source collection, when a signer resource publishes the collection.
    pub source: Option<CollectionRef>,
    /// The source's `status`, when it was read and is a string.
    pub status: Option<SignerStatus>,
    pub verdict: Verdict,
}

/// A `changeset` answer: collection metadata and all live records.
#[derive(Debug, Deserialize)]
pub(crate) struct Changeset {
    pub(crate) metadata: Map<String, Value>,
    pub(crate) changes: Vec<Value>,
}

pub async fn run(config: &Config, ctx: &Context) -> Result<ConsistencyReport, CommandError> {
    let client = ctx.kinto(&config.server);
    let signer = ServerInfo::fetch(&client).await?.require_signer()?;
    let monitor = CollectionRef::new(&config.bucket, &config.collection);
    let MonitorList {
        monitor,
        mut entries,
        invalid,
    } = MonitorList::read(&client, monitor).await?;
    // The original lists them with `_sort=bucket,collection`.
    entries.sort_by(|a, b| (&a.bucket, &a.collection).cmp(&(&b.bucket, &b.collection)));
    let before = entries.len();
    entries.retain(|e| {
        !matches!(
            signer.resolve_published(&e.bucket, &e.collection),
            Some((_, Role::Preview))
        )
    });
    let previews = before - entries.len();
    let run_started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);

    let (client, signer) = (&client, &signer);
    let in_progress = ctx.http.parallel();
    let mut checks = check_all(ctx, "Checking consistency", in_progress, entries, |entry| async move {
        check_entry(client, signer, &entry, run_started_ms).await
    })
    .await;
    checks.extend(invalid.into_iter().map(|bad| Check {
        identifier: format!("entry {}", bad.id),
        source: None,
        status: None,
        verdict: Verdict::Inconsistent(Inconsistency::InvalidEntry(bad.reason)),
    }));
    Ok(ConsistencyReport {
        monitor,
        checks,
        previews,
    })
}

/// A collection's changeset (one request), `_expected` set to `expected`.
pub(crate) async fn read_changeset(
    client: &Kinto,
    collection: &CollectionRef,
    expected: u64,
) -> Result<Changeset, ClientError> {
    let request = Request::new(Method::GET, client.changeset_url(&collection.path(), expected));
    let (_, changeset) = client
        .send_checked(&request, Response::json::<Changeset>)
        .await?;
    Ok(changeset)
}

/// Read one side: its changeset, or the verdict its failure means (a 404 is an inconsistency,
/// anything else leaves the check incomplete).
async fn read_side(
    client: &Kinto,
    side: Side,
    collection: &CollectionRef,
    expected: u64,
) -> Result<Changeset, Verdict> {
    match read_changeset(client, collection, expected).await {
        Ok(changeset) => Ok(changeset),
        Err(error) if error.status() == Some(404) => {
            Err(Verdict::Inconsistent(Inconsistency::CollectionMissing {
                side,
                collection: collection.clone(),
            }))
        }
        Err(error) => Err(Verdict::Unreadable {
            side,
            collection: collection.clone(),
            error,
        }),
    }
}

async fn check_entry(
    client: &Kinto,
    signer: &SignerCapability,
    entry: &ChangesEntry,
    run_started_ms: u64,
) -> Check {
    let mut check = Check {
        identifier: format!("{}/{}", entry.bucket, entry.collection),
        source: None,
        status: None,
        verdict: Verdict::Ok,
    };
    let Some((workflow, _)) = signer.resolve_published(&entry.bucket, &entry.collection) else {
        check.verdict = Verdict::Inconsistent(Inconsistency::UnknownCollection);
        return check;
    };
    check.source = Some(workflow.source.clone());
    let source = match read_side(client, Side::Source, &workflow.source, run_started_ms).await {
        Ok(changeset) => changeset,
        Err(verdict) => {
            check.verdict = verdict;
            return check;
        }
    };
    let status = match source.metadata.get("status") {
        None => {
            check.verdict = Verdict::Inconsistent(Inconsistency::StatusMissing);
            return check;
        }
        Some(Value::Null) => None,
        Some(Value::String(s)) => Some(SignerStatus::parse(s)),
        Some(other) => {
            check.verdict =
                Verdict::Inconsistent(Inconsistency::UnexpectedStatus(other.to_string()));
            return check;
        }
    };
    check.status = status.clone();
    let sides = Sides {
        client,
        workflow: &workflow,
        source: &source,
        destination_expected: entry.last_modified,
        run_started_ms,
    };
    check.verdict = match status {
        Some(SignerStatus::WorkInProgress) => {
            Verdict::Skip(SignerStatus::WorkInProgress.to_string())
        }
        Some(SignerStatus::ToReview) => sides.compare_under_review().await,
        None | Some(SignerStatus::Signed) => sides.compare_signed().await,
        Some(other) => Verdict::Inconsistent(Inconsistency::UnexpectedStatus(other.to_string())),
    };
    check
}

/// The reads and comparisons after the source has been read.
struct Sides<'a> {
    client: &'a Kinto,
    workflow: &'a SignedCollection,
    source: &'a Changeset,
    destination_expected: u64,
    run_started_ms: u64,
}

impl Sides<'_> {
    /// Under review, the preview must hold exactly the source's records.
    async fn compare_under_review(&self) -> Verdict {
        let Some(preview_ref) = &self.workflow.preview else {
            return Verdict::Skip("to-review, no preview to compare".into());
        };
        let preview =
            match read_side(self.client, Side::Preview, preview_ref, self.run_started_ms).await {
                Ok(changeset) => changeset,
                Err(verdict) => return verdict,
            };
        verdict_of(vec![compare(
            (Side::Source, &self.workflow.source, &self.source.changes),
            (Side::Preview, preview_ref, &preview.changes),
        )])
    }

    /// Signed, every side holds the same records.
    async fn compare_signed(&self) -> Verdict {
        let destination_ref = &self.workflow.destination;
        let destination = read_side(
            self.client,
            Side::Destination,
            destination_ref,
            self.destination_expected,
        );
        let Some(preview_ref) = &self.workflow.preview else {
            return match destination.await {
                Ok(destination) => verdict_of(vec![compare(
                    (Side::Source, &self.workflow.source, &self.source.changes),
                    (Side::Destination, destination_ref, &destination.changes),
                )]),
                Err(verdict) => verdict,
            };
        };
        let preview = read_side(self.client, Side::Preview, preview_ref, self.run_started_ms);
        let (preview, destination) = match futures::join!(preview, destination) {
            (Ok(p), Ok(d)) => (p, d),
            (Err(verdict), _) | (_, Err(verdict)) => return verdict,
        };
        verdict_of(vec![
            compare(
                (Side::Source, &self.workflow.source, &self.source.changes),
                (Side::Preview, preview_ref, &preview.changes),
            ),
            compare(
                (Side::Preview, preview_ref, &preview.changes),
                (Side::Destination, destination_ref, &destination.changes),
            ),
        ])
    }
}

fn verdict_of(diffs: Vec<PairDiff>) -> Verdict {
    let differing: Vec<PairDiff> = diffs.into_iter().filter(|d| !d.is_empty()).collect();
    if differing.is_empty() {
        Verdict::Ok
    } else {
        Verdict::Inconsistent(Inconsistency::RecordsDiffer(differing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_is_required_before_anything_is_sent() {
        let err = Config::from_settings(&RawSettings::new()).unwrap_err();
        assert_eq!(err.name, "AUTH");
        let mut raw = RawSettings::new();
        raw.set("AUTH", "u:p");
        raw.set("COLLECTION", "a/b");
        assert_eq!(Config::from_settings(&raw).unwrap_err().name, "COLLECTION");
    }
}
