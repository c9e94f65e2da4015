//! `backported_records` (writer server): for each `BACKPORT_RECORDS_MAPPINGS` pair, the
//! destination must hold the source's filtered records, as `backport_records` would leave it:
//! the same mappings ([`crate::backport_records::mapping`]) and the same content diff
//! ([`crate::backport_records::diff::plan`]), nothing written. A difference is a failure only
//! when the two collections' records timestamps are more than `MAX_LAG_SECONDS` apart: within
//! that, the next scheduled backport is expected to catch up.

mod report;

use serde_json::Value;

use crate::backport_records::diff::{plan, Kind};
use crate::backport_records::mapping::{parse_mappings, Mapping, MAPPINGS};
use crate::client::ClientError;
use crate::kinto::Kinto;
use crate::command::{Command, CommandConfig, Runs};
use crate::consistency_checks::diff::{PairDiff, Side};
use crate::kinto::{changeset_timestamp, shape_error};
use crate::monitored::check_all;
use crate::settings::shared::AUTH;
use crate::settings::{RawSettings, ServerSettings, Setting, SettingError};
use crate::{CommandError, Context};

pub use report::{Backported, BackportedReport};

pub const COMMAND: Command = Command {
    name: "backported_records",
    about: "Check that each backport destination holds its source's filtered records (writer server)",
    problems_error_type: "BackportedError",
    writer: true,
    groups: &[],
    settings: &[&MAPPINGS, &MAX_LAG_SECONDS],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const MAX_LAG_SECONDS: Setting = Setting::new(
    "MAX_LAG_SECONDS",
    "SECONDS",
    "Records that differ are a failure only when the two records timestamps are further apart",
)
.default("300");

#[derive(Debug, Clone)]
pub struct Config {
    /// The server, and `AUTH` when the collections are not public.
    pub server: ServerSettings,
    pub mappings: Vec<Mapping>,
    pub max_lag_ms: u64,
}

impl CommandConfig for Config {
    type Report = BackportedReport;

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let Some(lines) = raw.get(&MAPPINGS) else {
            return Err(SettingError::new(
                MAPPINGS.env,
                "required: the pairs to check, one per line: `sbid/scid[?filters] -> dbid/dcid`",
            ));
        };
        Ok(Config {
            server: ServerSettings::from_settings(raw, &AUTH)?,
            mappings: parse_mappings(lines)?,
            max_lag_ms: raw.uint(&MAX_LAG_SECONDS, 366 * 86_400)? * 1000,
        })
    }

    async fn run(&self, ctx: &Context) -> Result<BackportedReport, CommandError> {
        let client = &ctx.kinto(&self.server);
        let label = "Checking backports";
        let in_progress = ctx.http.parallel();
        let results = check_all(ctx, label, in_progress, self.mappings.clone(), |mapping| {
            check(client, mapping)
        })
        .await;
        Ok(BackportedReport {
            max_lag_ms: self.max_lag_ms,
            results,
        })
    }
}

/// A collection's records (filtered) and its records timestamp, which counts deletions too: the
/// `timestamp` of its changeset since its newest live record (so few records come back).
async fn read(
    client: &Kinto,
    collection: &crate::kinto::CollectionRef,
    filters: &[(String, String)],
) -> Result<(Vec<Value>, u64), ClientError> {
    let filters: Vec<(&str, &str)> = filters
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let records = client
        .get_all(&format!("{}/records", collection.path()), &filters)
        .await?;
    let newest = records
        .iter()
        .filter_map(|r| r.get("last_modified").and_then(Value::as_u64))
        .max()
        .unwrap_or(0);
    let timestamp =
        changeset_timestamp(client, &collection.bucket, &collection.collection, newest).await?;
    Ok((records, timestamp))
}

async fn check(client: &Kinto, mapping: Mapping) -> Backported {
    let (source, destination) = futures::join!(
        read(client, &mapping.source, &mapping.filters),
        read(client, &mapping.destination, &[]),
    );
    let ((source_records, source_ts), (dest_records, dest_ts)) = match (source, destination) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(error), _) | (_, Err(error)) => return Backported::unreadable(mapping, error),
    };
    let changes = match plan(source_records, dest_records) {
        Ok(changes) => changes,
        Err(why) => {
            let path = format!("{}/records", mapping.destination.path());
            return Backported::unreadable(mapping, shape_error(client, &path, why));
        }
    };
    let ids = |kind: Kind| -> Vec<String> {
        changes
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.id.clone())
            .collect()
    };
    let diff = PairDiff {
        left: (Side::Source, mapping.source.clone()),
        right: (Side::Destination, mapping.destination.clone()),
        missing: ids(Kind::Create),
        extra: ids(Kind::Delete),
        changed: ids(Kind::Update),
    };
    Backported::read(mapping, source_ts, dest_ts, diff)
}
