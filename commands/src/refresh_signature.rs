//! `refresh_signature`: re-sign every published collection as it is. Each monitor/changes entry
//! that is a signer *destination* is resolved to its source collection, which is asked for
//! `{"status": "to-resign"}`: kinto-signer then signs the destination (and the preview) again
//! without moving any record, and puts the source back in its previous status. Preview entries and
//! collections no signer resource publishes are not refreshed. Sources are handled in parallel
//! (two requests each: read the metadata, then PATCH); a failure is reported for its collection and
//! the others go on.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::client::{ClientError, Request, Response};
use crate::kinto::{
    ChangesEntry, CollectionRef, InvalidEntry, Kinto, Role, ServerInfo, SignerStatus,
};
use crate::monitored::{check_all, MonitorList};
use crate::report::{client_error_json, Failure, Outcome, Report};
use crate::command::{Command, CommandConfig, Runs};
use crate::settings::shared::{
    DRY_RUN, DRY_RUN_GROUP, MONITOR, MONITOR_BUCKET, MONITOR_COLLECTION,
};
use crate::settings::{ServerSettings, RawSettings, Setting, SettingError};
use crate::{CommandError, Context};

pub const COMMAND: Command = Command {
    name: "refresh_signature",
    about: "Re-sign every published collection as it is (writer server)",
    problems_error_type: "RefreshError",
    writer: true,
    groups: &[MONITOR, DRY_RUN_GROUP],
    settings: &[&REFRESH_SIGNATURE_AUTH, &MAX_SIGNATURE_AGE],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

/// The credentials that may write the source collections.
pub const REFRESH_SIGNATURE_AUTH: Setting = Setting::credentials(
    "REFRESH_SIGNATURE_AUTH",
    "Credentials allowed to write the source collections: `user:pass` (Basic) or a Bearer token (required)",
)
.event_key("refresh_signature_auth")
.derived("none (required)");
pub const MAX_SIGNATURE_AGE: Setting = Setting::new(
    "MAX_SIGNATURE_AGE",
    "DAYS",
    "Skip sources whose last signature is fewer than this many days old (0 refreshes all)",
)
.default("0");

#[derive(Debug, Clone)]
pub struct Config {
    /// Server, timeouts, and `REFRESH_SIGNATURE_AUTH` as the credentials.
    pub server: ServerSettings,
    pub bucket: String,
    pub collection: String,
    /// Sources whose last signature is fewer than this many days old are skipped; 0 refreshes
    /// every source.
    pub max_signature_age_days: u64,
    /// Read and report, write nothing.
    pub dry_run: bool,
}

impl CommandConfig for Config {
    type Report = RefreshReport;

    async fn run(&self, ctx: &Context) -> Result<RefreshReport, CommandError> {
        run(self, ctx).await
    }

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let server = ServerSettings::from_settings(raw, &REFRESH_SIGNATURE_AUTH)?;
        if server.auth.is_none() {
            return Err(SettingError::new(
                REFRESH_SIGNATURE_AUTH.env,
                "not set: credentials allowed to write the source collections are required \
                 (user:pass or a Bearer token)",
            ));
        }
        Ok(Config {
            server,
            bucket: raw.kinto_id(&MONITOR_BUCKET)?,
            collection: raw.kinto_id(&MONITOR_COLLECTION)?,
            max_signature_age_days: raw.uint(&MAX_SIGNATURE_AGE, 36_500)?,
            dry_run: raw.flag(&DRY_RUN)?,
        })
    }
}

/// The parts of a source collection's metadata this command reads.
#[derive(Debug, Clone, Deserialize)]
struct CollectionBody {
    data: SourceMetadata,
}

#[derive(Debug, Clone, Deserialize)]
struct SourceMetadata {
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    last_signature_date: Option<String>,
    last_modified: u64,
}

impl SourceMetadata {
    /// The status as the original printed it (`None` when there is none).
    fn status_text(&self) -> String {
        match &self.status {
            None | Some(Value::Null) => "None".into(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    }
}

/// The request that failed for a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading the source collection's metadata.
    Read,
    /// Asking for the new signature.
    Refresh,
}

/// What became of one source collection.
#[derive(Debug, Clone)]
pub enum Refresh {
    /// Re-signed; `last_modified` is the source's timestamp after the request, as printed.
    Refreshed {
        previous_status: String,
        last_modified: u64,
    },
    /// `DRY_RUN`: would have been re-signed.
    WouldRefresh {
        status: String,
        last_signature_date: Option<String>,
    },
    /// Signed more recently than `MAX_SIGNATURE_AGE` days.
    TooRecent {
        age_days: i64,
    },
    Failed {
        step: Step,
        error: ClientError,
    },
}

#[derive(Debug, Clone)]
pub struct SourceResult {
    pub source: CollectionRef,
    pub destination: CollectionRef,
    pub refresh: Refresh,
}

/// A monitor/changes entry that is not refreshed, and why.
#[derive(Debug, Clone)]
pub enum Ignored {
    /// A preview collection: refreshed with its destination.
    Preview(ChangesEntry),
    /// No signer resource publishes it.
    NotSigned(ChangesEntry),
    /// Its bucket or collection is not a Kinto id.
    Invalid(InvalidEntry),
}

#[derive(Debug, Clone)]
pub struct RefreshReport {
    pub monitor: CollectionRef,
    pub dry_run: bool,
    /// In the monitor collection's order.
    pub results: Vec<SourceResult>,
    pub ignored: Vec<Ignored>,
}

pub async fn run(config: &Config, ctx: &Context) -> Result<RefreshReport, CommandError> {
    let client = ctx.kinto(&config.server);
    let signer = ServerInfo::fetch(&client).await?.require_signer()?;
    let monitor = CollectionRef::new(&config.bucket, &config.collection);
    let MonitorList {
        monitor,
        entries,
        invalid,
    } = MonitorList::read(&client, monitor).await?;

    let mut ignored: Vec<Ignored> = invalid.into_iter().map(Ignored::Invalid).collect();
    let mut sources: Vec<(CollectionRef, CollectionRef)> = Vec::new();
    for entry in entries {
        match signer.resolve_published(&entry.bucket, &entry.collection) {
            Some((workflow, Role::Destination)) => {
                // Two entries of one source (never seen, but cheap to avoid) refresh it once.
                if !sources.iter().any(|(s, _)| *s == workflow.source) {
                    sources.push((workflow.source, workflow.destination));
                }
            }
            Some((_, Role::Preview)) => ignored.push(Ignored::Preview(entry)),
            None => ignored.push(Ignored::NotSigned(entry)),
        }
    }

    let client = &client;
    let in_progress = ctx.http.parallel();
    let results = check_all(
        ctx,
        "Refreshing signatures",
        in_progress,
        sources,
        |(source, destination)| async move {
            let refresh = refresh_one(client, config, &source).await;
            SourceResult {
                source,
                destination,
                refresh,
            }
        },
    )
    .await;
    Ok(RefreshReport {
        monitor,
        dry_run: config.dry_run,
        results,
        ignored,
    })
}

async fn refresh_one(client: &Kinto, config: &Config, source: &CollectionRef) -> Refresh {
    let path = source.path();
    let metadata = match client.get_json::<CollectionBody>(&path, &[]).await {
        Ok((body, _)) => body.data,
        Err(error) => {
            return Refresh::Failed {
                step: Step::Read,
                error,
            }
        }
    };
    if config.max_signature_age_days > 0 {
        let age = metadata
            .last_signature_date
            .as_deref()
            .and_then(|date| age_in_days(date, OffsetDateTime::now_utc()));
        if let Some(age_days) = age {
            if age_days < config.max_signature_age_days as i64 {
                return Refresh::TooRecent { age_days };
            }
        }
    }
    if config.dry_run {
        return Refresh::WouldRefresh {
            status: metadata.status_text(),
            last_signature_date: metadata.last_signature_date.clone(),
        };
    }
    // No If-Match: asking for `to-resign` twice only signs twice, whereas a precondition would
    // turn a retried success into a failure.
    let request = Request::new(Method::PATCH, client.url(&path))
        .json(SignerStatus::ToResign.patch_body())
        .deadline(crate::kinto::SIGNING_DEADLINE);
    match client
        .send_checked(&request, Response::json::<CollectionBody>)
        .await
    {
        Ok((_, body)) => Refresh::Refreshed {
            previous_status: metadata.status_text(),
            last_modified: body.data.last_modified,
        },
        Err(error) => Refresh::Failed {
            step: Step::Refresh,
            error,
        },
    }
}

/// Whole days between an ISO 8601 date (as kinto-signer writes `last_signature_date`) and `now`,
/// rounded down like Python's `timedelta.days`. `None` when the date cannot be read.
fn age_in_days(date: &str, now: OffsetDateTime) -> Option<i64> {
    let then = crate::sources::parse_signer_date(date)?;
    Some((now.unix_timestamp() - then).div_euclid(86_400))
}

/// A Kinto timestamp (epoch milliseconds) as the original prints it: `2018-03-05 13:57:31 UTC`.
pub fn timestamp_to_date(timestamp_ms: u64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    i64::try_from(timestamp_ms / 1000)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|date| date.format(&format).ok())
        .unwrap_or_else(|| timestamp_ms.to_string())
}

/// An ISO date as `2018-03-05 13:57:31 UTC`, or as given when it cannot be read.
fn iso_to_date(date: &str) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    OffsetDateTime::parse(date.trim(), &Rfc3339)
        .ok()
        .and_then(|d| d.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| date.to_string())
}

#[derive(Serialize, Default)]
struct Counts {
    destinations: usize,
    refreshed: usize,
    would_refresh: usize,
    skipped: usize,
    errors: usize,
    ignored: usize,
}

impl RefreshReport {
    fn counts(&self) -> Counts {
        let mut c = Counts {
            destinations: self.results.len(),
            ignored: self.ignored.len(),
            ..Counts::default()
        };
        for r in &self.results {
            match r.refresh {
                Refresh::Refreshed { .. } => c.refreshed += 1,
                Refresh::WouldRefresh { .. } => c.would_refresh += 1,
                Refresh::TooRecent { .. } => c.skipped += 1,
                Refresh::Failed { .. } => c.errors += 1,
            }
        }
        c
    }

    fn result_json(r: &SourceResult) -> Value {
        let mut item = json!({
            "source": r.source.to_string(),
            "destination": r.destination.to_string(),
        });
        let extra = match &r.refresh {
            Refresh::Refreshed {
                previous_status,
                last_modified,
            } => json!({"result": "refreshed", "previous_status": previous_status,
                        "last_modified": last_modified}),
            Refresh::WouldRefresh {
                status,
                last_signature_date,
            } => json!({"result": "would_refresh", "previous_status": status,
                        "last_signature_date": last_signature_date}),
            Refresh::TooRecent { age_days } => {
                json!({"result": "skipped", "code": "SIGNATURE_TOO_RECENT",
                       "signature_age_days": age_days})
            }
            Refresh::Failed { step, error } => json!({
                "result": "error",
                "code": error.code(),
                "step": match step { Step::Read => "read", Step::Refresh => "refresh" },
                "error": client_error_json(error),
            }),
        };
        if let (Value::Object(item), Value::Object(extra)) = (&mut item, extra) {
            item.extend(extra);
        }
        item
    }

    fn ignored_json(i: &Ignored) -> Value {
        match i {
            Ignored::Preview(e) => json!({"bucket": e.bucket, "collection": e.collection,
                                          "result": "ignored", "reason": "preview"}),
            Ignored::NotSigned(e) => json!({"bucket": e.bucket, "collection": e.collection,
                                            "result": "ignored", "reason": "not_signed"}),
            Ignored::Invalid(bad) => json!({"id": bad.id, "result": "ignored",
                                            "reason": "invalid_entry", "error": bad.reason}),
        }
    }
}

impl Report for RefreshReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(out, "Looking at {}:", self.monitor.path())?;
        for r in &self.results {
            write!(out, "Looking at {}: ", r.source.path())?;
            match &r.refresh {
                Refresh::Refreshed {
                    previous_status,
                    last_modified,
                } => writeln!(
                    out,
                    "Refresh signature: status= {previous_status} at {} ( {last_modified} )",
                    timestamp_to_date(*last_modified)
                )?,
                Refresh::WouldRefresh {
                    status,
                    last_signature_date,
                } => writeln!(
                    out,
                    "Would refresh signature (dry run): status= {status}, last signed {}",
                    last_signature_date
                        .as_deref()
                        .map(|d| format!("at {}", iso_to_date(d)))
                        .unwrap_or_else(|| "at an unknown date".into())
                )?,
                Refresh::TooRecent { age_days } => {
                    writeln!(out, "SKIP (only {age_days} days old)")?
                }
                Refresh::Failed {
                    step: Step::Read,
                    error,
                } => writeln!(out, "{error}")?,
                Refresh::Failed {
                    step: Step::Refresh,
                    error,
                } => writeln!(out, "Refresh signature: {error}")?,
            }
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        let mut results: Vec<Value> = self.results.iter().map(Self::result_json).collect();
        results.extend(self.ignored.iter().map(Self::ignored_json));
        json!({
            "dry_run": self.dry_run,
            "results": results,
            "totals": self.counts(),
        })
    }

    fn outcome(&self) -> Outcome {
        let failed: Vec<&SourceResult> = self
            .results
            .iter()
            .filter(|r| matches!(r.refresh, Refresh::Failed { .. }))
            .collect();
        if failed.is_empty() {
            return Outcome::Ok;
        }
        let lines: Vec<String> = failed
            .iter()
            .filter_map(|r| match &r.refresh {
                Refresh::Failed { error, .. } => Some(format!("{}: {error}", r.source.path())),
                _ => None,
            })
            .collect();
        Outcome::Problems(Failure {
            message: format!(
                "Signature refresh failed for {} collection(s):\n{}",
                failed.len(),
                lines.join("\n")
            ),
            items: failed.into_iter().map(Self::result_json).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_like_the_original() {
        assert_eq!(timestamp_to_date(1520258251343), "2018-03-05 13:57:31 UTC");
        assert_eq!(
            iso_to_date("2019-01-11T15:11:07.807323+00:00"),
            "2019-01-11 15:11:07 UTC"
        );
        assert_eq!(
            iso_to_date("2019-01-11T16:11:07+01:00"),
            "2019-01-11 15:11:07 UTC"
        );
        assert_eq!(iso_to_date("yesterday"), "yesterday");
    }

    #[test]
    fn signature_age_is_counted_in_whole_days_rounded_down() {
        let now = OffsetDateTime::parse("2019-01-20T00:00:00+00:00", &Rfc3339).unwrap();
        assert_eq!(
            age_in_days("2019-01-11T15:11:07.807323+00:00", now),
            Some(8)
        );
        assert_eq!(age_in_days("2019-01-19T00:00:01+00:00", now), Some(0));
        assert_eq!(age_in_days("2019-01-20T00:00:01+00:00", now), Some(-1));
        assert_eq!(age_in_days("not a date", now), None);
    }

    #[test]
    fn settings_are_checked_up_front() {
        let ok = Config::from_settings(&RawSettings::from_pairs(&[(REFRESH_SIGNATURE_AUTH.env, "u:p")])).unwrap();
        assert_eq!(ok.max_signature_age_days, 0);
        assert!(!ok.dry_run);
        assert_eq!(
            (ok.bucket.as_str(), ok.collection.as_str()),
            ("monitor", "changes")
        );
        // AUTH is not what this command writes with.
        let err = Config::from_settings(&RawSettings::from_pairs(&[("AUTH", "u:p")])).unwrap_err();
        assert_eq!(err.name, REFRESH_SIGNATURE_AUTH.env);
        for (name, value) in [
            ("MAX_SIGNATURE_AGE", "-1"),
            ("MAX_SIGNATURE_AGE", "week"),
            ("DRY_RUN", "maybe"),
            ("BUCKET", "../x"),
        ] {
            let err = Config::from_settings(&RawSettings::from_pairs(&[
                (REFRESH_SIGNATURE_AUTH.env, "u:p"),
                (name, value),
            ]))
            .unwrap_err();
            assert_eq!(err.name, name);
        }
    }
}
