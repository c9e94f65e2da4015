//! `monitor_coverage` (writer server): the monitor list and the signer's published collections
//! must cover each other. Every collection that exists as a signer destination or preview must
//! have a monitor entry, and every monitor entry must name a destination or preview that exists.
//! Per-bucket resources are expanded to the collections their destination and preview buckets
//! hold (`GET /buckets/{bid}/collections`, one listing per bucket, in parallel); per-collection
//! ones to their collection when it exists. `INCLUDE_COLLECTIONS` / `EXCLUDE_COLLECTIONS` restrict
//! both sides to the collections an operator wants covered.

mod report;

use std::collections::{BTreeMap, BTreeSet};

use crate::client::ClientError;
use crate::kinto::Kinto;
use crate::collection_patterns::CollectionFilter;
use crate::command::{Command, CommandConfig, Runs};
use crate::kinto::{CollectionRef, Role, ServerInfo, SignerCapability};
use crate::monitored::MonitorList;
use crate::settings::shared::{AUTH, MONITOR, MONITOR_BUCKET, MONITOR_COLLECTION};
use crate::settings::{RawSettings, ServerSettings, Setting, SettingError};
use crate::{CommandError, Context};

pub use report::{Coverage, CoverageReport, Gap};

pub const COMMAND: Command = Command {
    name: "monitor_coverage",
    about: "Check that the monitor list and the signer's destination and preview collections cover each other (writer server)",
    problems_error_type: "CoverageError",
    writer: true,
    groups: &[MONITOR],
    settings: &[&INCLUDE_COLLECTIONS, &EXCLUDE_COLLECTIONS],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const INCLUDE_COLLECTIONS: Setting = Setting::new(
    "INCLUDE_COLLECTIONS",
    "PATTERNS",
    "Check only these collections: comma-separated `bucket/collection` patterns, `*` matching anything",
)
.default("*/*");
pub const EXCLUDE_COLLECTIONS: Setting = Setting::new(
    "EXCLUDE_COLLECTIONS",
    "PATTERNS",
    "Leave out these collections (known exceptions): patterns as INCLUDE_COLLECTIONS",
);

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub monitor: CollectionRef,
    pub filter: CollectionFilter,
}

impl CommandConfig for Config {
    type Report = CoverageReport;

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        Ok(Config {
            server: ServerSettings::from_settings(raw, &AUTH)?,
            monitor: CollectionRef::new(
                &raw.kinto_id(&MONITOR_BUCKET)?,
                &raw.kinto_id(&MONITOR_COLLECTION)?,
            ),
            filter: CollectionFilter::from_settings(
                raw,
                &INCLUDE_COLLECTIONS,
                &EXCLUDE_COLLECTIONS,
            )?,
        })
    }

    async fn run(&self, ctx: &Context) -> Result<CoverageReport, CommandError> {
        run(self, ctx).await
    }
}

/// The buckets where the signer publishes (destinations and previews), each once.
fn published_buckets(signer: &SignerCapability) -> BTreeSet<String> {
    signer
        .resources
        .iter()
        .flat_map(|r| std::iter::once(&r.destination).chain(r.preview.as_ref()))
        .map(|side| side.bucket.clone())
        .collect()
}

/// The collection ids of a bucket; a missing bucket holds none.
async fn list_collections(
    client: &Kinto,
    bucket: &str,
) -> Result<Vec<String>, ClientError> {
    match client
        .get_all(&format!("/buckets/{bucket}/collections"), &[])
        .await
    {
        Ok(objects) => Ok(objects
            .iter()
            .filter_map(|o| o.get("id").and_then(|id| id.as_str()).map(str::to_string))
            .collect()),
        Err(error) if error.status() == Some(404) => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

pub async fn run(config: &Config, ctx: &Context) -> Result<CoverageReport, CommandError> {
    let client = &ctx.kinto(&config.server);
    let signer = ServerInfo::fetch(client).await?.require_signer()?;
    let list = MonitorList::read(client, config.monitor.clone()).await?;
    let buckets = published_buckets(&signer);
    let listings = futures::future::join_all(buckets.iter().map(|bucket| async move {
        (bucket.clone(), list_collections(client, bucket).await)
    }))
    .await;

    // What exists and is published, by collection, with its role.
    let mut published: BTreeMap<CollectionRef, Role> = BTreeMap::new();
    let mut unreadable: BTreeMap<String, ClientError> = BTreeMap::new();
    for (bucket, listing) in listings {
        match listing {
            Ok(ids) => {
                for id in ids {
                    if let Some((_, role)) = signer.resolve_published(&bucket, &id) {
                        published.insert(CollectionRef::new(&bucket, &id), role);
                    }
                }
            }
            Err(error) => {
                unreadable.insert(bucket, error);
            }
        }
    }
    published.retain(|c, _| config.filter.keeps(c));
    let monitored: BTreeSet<CollectionRef> = list
        .entries
        .iter()
        .map(|e| CollectionRef::new(&e.bucket, &e.collection))
        .filter(|c| config.filter.keeps(c))
        .collect();

    let mut coverage = Vec::new();
    for (collection, role) in &published {
        coverage.push(if monitored.contains(collection) {
            Coverage::Ok {
                collection: collection.clone(),
                role: *role,
            }
        } else {
            Coverage::Gap {
                collection: collection.clone(),
                gap: Gap::NotMonitored(*role),
            }
        });
    }
    for collection in monitored.difference(&published.keys().cloned().collect()) {
        let gap = match signer.resolve_published(&collection.bucket, &collection.collection) {
            None => Gap::NotPublished,
            Some(_) => match unreadable.get(&collection.bucket) {
                Some(error) => Gap::Unreadable(error.clone()),
                None => Gap::Missing,
            },
        };
        coverage.push(Coverage::Gap {
            collection: collection.clone(),
            gap,
        });
    }
    coverage.sort_by(|a, b| a.collection().cmp(b.collection()));
    Ok(CoverageReport {
        monitor: list.monitor,
        coverage,
        invalid: list.invalid,
        unreadable_buckets: unreadable,
    })
}
