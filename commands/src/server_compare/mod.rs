//! `server_compare`: two readers of the same data (an origin and its CDN, `/v1` and `/v2`) must
//! serve the same monitor list and the same collections. It reads both monitor lists (fresh, as
//! changesets), then each collection listed on both sides from both servers: its changeset
//! timestamp, or with `COMPARE_RECORDS` its whole changeset, whose records are compared as
//! consistency_checks compares two sides ([`crate::consistency_checks::diff`]). A difference is
//! "propagating" while the source's change is younger than `MARGIN_SECONDS`, a failure after.
//! No credentials are sent to either server.

mod report;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::client::ClientError;
use crate::kinto::Kinto;
use crate::command::{Command, CommandConfig, Runs};
use crate::consistency_checks::diff::{self, PairDiff, Side};
use crate::kinto::{cache_bust, changeset_timestamp, CollectionRef, InvalidEntry};
use crate::monitored::{check_all, MonitorList};
use crate::settings::shared::{MONITOR, MONITOR_BUCKET, MONITOR_COLLECTION, SERVER};
use crate::settings::{RawSettings, ServerSettings, Setting, SettingError};
use crate::{CommandError, Context};

pub use report::{Compared, Difference, ServerCompareReport};

pub const COMMAND: Command = Command {
    name: "server_compare",
    about: "Compare two readers of the same data (origin and CDN, /v1 and /v2): monitor lists, timestamps and records",
    problems_error_type: "ServerCompareError",
    writer: false,
    groups: &[MONITOR],
    settings: &[
        &SOURCE_SERVER,
        &TARGET_SERVER,
        &MARGIN_SECONDS,
        &COMPARE_RECORDS,
    ],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const SOURCE_SERVER: Setting = Setting::new(
    "SOURCE_SERVER",
    "URL",
    "The reader that is ahead (the origin, /v1): its root URL",
)
.derived("`SERVER`");
pub const TARGET_SERVER: Setting = Setting::new(
    "TARGET_SERVER",
    "URL",
    "The reader that must catch up (the CDN, /v2): its root URL (required)",
)
.derived("none (required)");
pub const MARGIN_SECONDS: Setting = Setting::new(
    "MARGIN_SECONDS",
    "SECONDS",
    "A difference younger than this is propagating, not a failure",
)
.default("3600");
pub const COMPARE_RECORDS: Setting = Setting::switch(
    "COMPARE_RECORDS",
    "Compare the records too: missing, extra and changed ids (`--records`)",
)
.flag("records");

#[derive(Debug, Clone)]
pub struct Config {
    /// The two readers, without credentials.
    pub source: ServerSettings,
    pub target: ServerSettings,
    pub monitor: CollectionRef,
    pub margin_ms: u64,
    pub records: bool,
}

impl CommandConfig for Config {
    type Report = ServerCompareReport;

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let source = match raw.get(&SOURCE_SERVER) {
            Some(_) => raw.server_url(&SOURCE_SERVER)?,
            None => raw.server_url(&SERVER)?,
        };
        if raw.get(&TARGET_SERVER).is_none() {
            return Err(SettingError::new(
                TARGET_SERVER.env,
                "required: the root URL of the reader to compare with the source",
            ));
        }
        let target = raw.server_url(&TARGET_SERVER)?;
        Ok(Config {
            source: ServerSettings {
                url: source,
                auth: None,
            },
            target: ServerSettings {
                url: target,
                auth: None,
            },
            monitor: CollectionRef::new(
                &raw.kinto_id(&MONITOR_BUCKET)?,
                &raw.kinto_id(&MONITOR_COLLECTION)?,
            ),
            margin_ms: raw.uint(&MARGIN_SECONDS, 366 * 86_400)? * 1000,
            records: raw.flag(&COMPARE_RECORDS)?,
        })
    }

    async fn run(&self, ctx: &Context) -> Result<ServerCompareReport, CommandError> {
        run(self, ctx).await
    }
}

/// What one server serves of a collection.
#[derive(Debug, Clone)]
struct Served {
    timestamp: u64,
    /// Its records, when they are compared.
    records: Option<Vec<Value>>,
}

/// Read one collection from one server: its fresh changeset's timestamp (only the changes after
/// the monitor's entry, usually none), or the whole changeset.
async fn read(
    client: &Kinto,
    collection: &CollectionRef,
    since: u64,
    records: bool,
) -> Result<Served, ClientError> {
    if !records {
        let timestamp =
            changeset_timestamp(client, &collection.bucket, &collection.collection, since).await?;
        return Ok(Served {
            timestamp,
            records: None,
        });
    }
    #[derive(Deserialize)]
    struct Changeset {
        timestamp: u64,
        changes: Vec<Value>,
    }
    let path = format!("{}/changeset", collection.path());
    let (changeset, _) = client
        .get_json::<Changeset>(&path, &[("_expected", &cache_bust())])
        .await?;
    Ok(Served {
        timestamp: changeset.timestamp,
        records: Some(changeset.changes),
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub async fn run(config: &Config, ctx: &Context) -> Result<ServerCompareReport, CommandError> {
    let source = &ctx.kinto(&config.source);
    let target = &ctx.kinto(&config.target);
    let (source_list, target_list) = futures::join!(
        MonitorList::read(source, config.monitor.clone()),
        MonitorList::read(target, config.monitor.clone()),
    );
    let (source_list, target_list) = (source_list?, target_list?);
    let entries = |list: &MonitorList| -> BTreeMap<CollectionRef, u64> {
        list.entries
            .iter()
            .map(|e| (CollectionRef::new(&e.bucket, &e.collection), e.last_modified))
            .collect()
    };
    let (on_source, on_target) = (entries(&source_list), entries(&target_list));
    let mut keys: Vec<CollectionRef> = on_source.keys().chain(on_target.keys()).cloned().collect();
    keys.sort();
    keys.dedup();

    let started = now_ms();
    let (on_source, on_target) = (&on_source, &on_target);
    let label = "Comparing collections";
    let compared = check_all(ctx, label, ctx.http.parallel(), keys, |collection| async move {
        let (s, t) = (on_source.get(&collection), on_target.get(&collection));
        let (Some(&s), Some(&t)) = (s, t) else {
            return Compared::listed_once(collection, s.copied(), t.copied());
        };
        let (from_source, from_target) = futures::join!(
            read(source, &collection, s, config.records),
            read(target, &collection, t, config.records),
        );
        let (from_source, from_target) = match (from_source, from_target) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(error), _) => return Compared::unreadable(collection, "source", error),
            (_, Err(error)) => return Compared::unreadable(collection, "target", error),
        };
        let records = match (&from_source.records, &from_target.records) {
            (Some(a), Some(b)) => Some(diff::compare(
                (Side::Source, &collection, a),
                (Side::Destination, &collection, b),
            ))
            .filter(|d: &PairDiff| !d.is_empty()),
            _ => None,
        };
        Compared::read(collection, from_source.timestamp, from_target.timestamp, records)
    })
    .await;
    let invalid = |list: MonitorList, side: &'static str| {
        list.invalid
            .into_iter()
            .map(move |bad: InvalidEntry| (side, bad))
    };
    Ok(ServerCompareReport {
        monitor: config.monitor.clone(),
        margin_ms: config.margin_ms,
        now_ms: started,
        compared,
        invalid: invalid(source_list, "source")
            .chain(invalid(target_list, "target"))
            .collect(),
    })
}

impl Config {
}
