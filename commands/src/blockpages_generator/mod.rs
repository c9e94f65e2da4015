//! `blockpages_generator`: the add-ons and plugins blocklists as static HTML pages (`index.html`
//! and one page per record), written to `TARGET_DIR` and/or uploaded to an S3 bucket.
//!
//! The run reads both collections in parallel, turns every record into a [`records::BlockedItem`]
//! (an odd record gets a sensible page and a warning, never a failed run), renders the pages with
//! escaping templates ([`render`]), writes them, uploads them in parallel through the shared
//! object-store layer ([`crate::store`], in the bucket [`s3`] names), and with `--delete-stale`
//! removes the `.html` pages it no longer produces.

pub mod records;
pub mod render;
pub mod report;
pub mod s3;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;

use crate::progress::Progress;
use crate::command::{Command, CommandConfig, Runs};
use crate::settings::shared::{AUTH, DRY_RUN, DRY_RUN_GROUP};
use crate::settings::{ServerSettings, RawSettings, Setting, SettingError};
use crate::{CommandError, Context};
use records::{assign_file_names, parse_record, sort_newest_first, BlockedItem};
use render::Page;
pub use report::BlockpagesReport;
use report::{PageOutcome, StalePhase, Timings, UploadPhase};
use s3::{S3Settings, HTML_CONTENT_TYPE};
use crate::store::aws::{BucketState, CREDENTIALS, S3};
use crate::store::{Store, StoreError};

pub const COMMAND: Command = Command {
    name: "blockpages_generator",
    about: "Render the add-ons and plugins blocklists as HTML pages and upload them to S3",
    problems_error_type: "BlockpagesError",
    writer: false,
    groups: &[DRY_RUN_GROUP, CREDENTIALS],
    settings: &[
        &BUCKET,
        &ADDONS_COLLECTION,
        &PLUGINS_COLLECTION,
        &ADDONS_COLLECTIONS,
        &PLUGINS_COLLECTIONS,
        &s3::AWS_REGION,
        &s3::BUCKET_NAME,
        &s3::AWS_ENDPOINT_URL,
        &TARGET_DIR,
        &DELETE_STALE,
    ],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const BUCKET: Setting = Setting::new("BUCKET", "ID", "Kinto bucket of the blocklist collections")
    .default("blocklists")
    .event_key("bucket");
pub const ADDONS_COLLECTION: Setting =
    Setting::new("ADDONS_COLLECTION", "ID", "Add-ons blocklist collection")
        .default("addons")
        .event_key("addons-collection");
pub const PLUGINS_COLLECTION: Setting =
    Setting::new("PLUGINS_COLLECTION", "ID", "Plugins blocklist collection")
        .default("plugins")
        .event_key("plugins-collection");
/// The seed README's plural names, still accepted from the environment.
pub const ADDONS_COLLECTIONS: Setting = Setting::new(
    "ADDONS_COLLECTIONS",
    "ID",
    "Legacy alias of ADDONS_COLLECTION",
)
.hidden();
pub const PLUGINS_COLLECTIONS: Setting = Setting::new(
    "PLUGINS_COLLECTIONS",
    "ID",
    "Legacy alias of PLUGINS_COLLECTION",
)
.hidden();
pub const TARGET_DIR: Setting = Setting::new(
    "TARGET_DIR",
    "DIR",
    "Also write the pages into this directory (created when missing)",
);
pub const DELETE_STALE: Setting = Setting::switch(
    "DELETE_STALE",
    "Delete the bucket's .html pages that are no longer produced",
);

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    /// The Kinto bucket holding both collections.
    pub bucket: String,
    pub addons_collection: String,
    pub plugins_collection: String,
    pub s3: S3Settings,
    pub target_dir: Option<PathBuf>,
    pub dry_run: bool,
    pub delete_stale: bool,
}

/// A collection id from its setting, or from the plural name of the seed README.
fn collection_setting(
    raw: &RawSettings,
    setting: &Setting,
    plural: &Setting,
) -> Result<String, SettingError> {
    if raw.get(setting).is_none() && raw.get(plural).is_some() {
        raw.kinto_id(plural)
    } else {
        raw.kinto_id(setting)
    }
}

impl CommandConfig for Config {
    type Report = BlockpagesReport;

    async fn run(&self, ctx: &Context) -> Result<BlockpagesReport, CommandError> {
        run(self, ctx).await
    }

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let dry_run = raw.flag(&DRY_RUN)?;
        let addons_collection = collection_setting(raw, &ADDONS_COLLECTION, &ADDONS_COLLECTIONS)?;
        let plugins_collection =
            collection_setting(raw, &PLUGINS_COLLECTION, &PLUGINS_COLLECTIONS)?;
        if addons_collection == plugins_collection {
            return Err(SettingError::new(
                PLUGINS_COLLECTION.env,
                format!("must differ from ADDONS_COLLECTION (both are {addons_collection:?})"),
            ));
        }
        Ok(Config {
            server: ServerSettings::from_settings(raw, &AUTH)?,
            bucket: raw.kinto_id(&BUCKET)?,
            addons_collection,
            plugins_collection,
            s3: S3Settings::from_settings(raw)?,
            target_dir: raw.get(&TARGET_DIR).map(|d| PathBuf::from(d.trim())),
            dry_run,
            delete_stale: raw.flag(&DELETE_STALE)?,
        })
    }
}

pub async fn run(config: &Config, ctx: &Context) -> Result<BlockpagesReport, CommandError> {
    let client = ctx.kinto(&config.server);
    let mut timings = Timings::default();

    let started = Instant::now();
    let paths: Vec<(String, String)> = [&config.addons_collection, &config.plugins_collection]
        .into_iter()
        .map(|cid| {
            (
                cid.clone(),
                format!("/buckets/{}/collections/{cid}", config.bucket),
            )
        })
        .collect();
    let read = futures::future::try_join_all(paths.iter().map(|(_, path)| {
        let client = &client;
        async move { client.get_all(&format!("{path}/records"), &[]).await }
    }))
    .await?;
    timings.read = started.elapsed();

    let started = Instant::now();
    let mut collections = Vec::new();
    let mut items: Vec<BlockedItem> = Vec::new();
    for ((cid, path), records) in paths.iter().zip(&read) {
        collections.push((path.clone(), records.len()));
        items.extend(records.iter().map(|r| parse_record(cid, r)));
    }
    drop(read);
    let (items, pages) = tokio::task::spawn_blocking(move || {
        sort_newest_first(&mut items);
        assign_file_names(&mut items);
        let pages = render::render_all(&items);
        (items, pages)
    })
    .await
    .map_err(|e| CommandError::Runtime(format!("rendering the pages failed: {e}")))?;
    let mut pages = pages.map_err(|e| CommandError::Runtime(format!("rendering a page: {e}")))?;
    timings.render = started.elapsed();
    for item in &items {
        for warning in &item.warnings {
            log::info!("{} ({}): {warning}", item.label(), item.file_name);
        }
    }

    let mut outcomes: Vec<PageOutcome> = pages
        .iter()
        .enumerate()
        .map(|(i, page)| PageOutcome {
            file_name: page.file_name.clone(),
            item: i.checked_sub(1),
            written: None,
            uploaded: None,
        })
        .collect();

    if let Some(dir) = &config.target_dir {
        let started = Instant::now();
        let dir = dir.clone();
        // The pages go to the blocking task and come back for the upload, uncopied.
        let written;
        (pages, written) = tokio::task::spawn_blocking(move || {
            let written = write_pages(&dir, &pages);
            (pages, written)
        })
        .await
        .map_err(|e| CommandError::Runtime(format!("writing the pages failed: {e}")))?;
        for (outcome, result) in outcomes.iter_mut().zip(written) {
            outcome.written = Some(result);
        }
        timings.write = started.elapsed();
    }

    let upload = if config.dry_run {
        UploadPhase::DryRun {
            bucket: config.s3.bucket_name.clone(),
        }
    } else {
        let started = Instant::now();
        // The store's requests share the run's limits and in-flight cap; the Kinto credentials
        // are not among its credentials.
        let phase = match Store::new(&config.s3.store, &ctx.http) {
            Ok(Store::S3(bucket)) => {
                upload(&bucket, pages, &mut outcomes, config, ctx, &mut timings).await
            }
            Ok(Store::Gcs(_)) => unreachable!("the pages' store is an S3 bucket"),
            Err(error) => UploadPhase::BucketFailed {
                bucket: config.s3.bucket_name.clone(),
                error,
            },
        };
        timings.upload = started.elapsed() - timings.delete;
        phase
    };

    Ok(BlockpagesReport {
        collections,
        items,
        pages: outcomes,
        target_dir: config.target_dir.clone(),
        upload,
        timings,
    })
}

/// Write every page into `dir` (created when missing).
fn write_pages(dir: &Path, pages: &[Page]) -> Vec<Result<PathBuf, String>> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        let message = format!("cannot create {}: {e}", dir.display());
        return pages.iter().map(|_| Err(message.clone())).collect();
    }
    pages
        .iter()
        .map(|page| {
            let path = dir.join(&page.file_name);
            std::fs::write(&path, &page.html)
                .map(|()| path.clone())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        })
        .collect()
}

/// Make sure the bucket exists, upload the record pages then the index (so the index never
/// links to a page not yet there), then delete stale pages when asked.
async fn upload(
    bucket: &S3,
    pages: Vec<Page>,
    outcomes: &mut [PageOutcome],
    config: &Config,
    ctx: &Context,
    timings: &mut Timings,
) -> UploadPhase {
    let name = config.s3.bucket_name.clone();
    let created = match bucket.ensure_bucket().await {
        Ok(state) => state == BucketState::Created,
        Err(error) => {
            return UploadPhase::BucketFailed {
                bucket: name,
                error,
            }
        }
    };
    let produced: HashSet<String> = pages.iter().map(|p| p.file_name.clone()).collect();
    let progress = Progress::new(ctx.progress, pages.len() as u64, "Uploading pages");
    let parallel = ctx.http.parallel();
    let mut pages: Vec<(usize, Page)> = pages.into_iter().enumerate().collect();
    let index = pages.remove(0);
    let put = |(i, page): (usize, Page)| {
        let progress = &progress;
        async move {
            let result = bucket
                .put(&page.file_name, page.html.into_bytes(), HTML_CONTENT_TYPE)
                .await
                .map(|()| config.s3.public_url(&page.file_name));
            progress.inc();
            (i, result)
        }
    };
    let mut results: Vec<(usize, Result<String, StoreError>)> = futures::stream::iter(pages)
        .map(put)
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.push(put(index).await);
    progress.finish();
    let mut failed = false;
    for (i, result) in results {
        failed |= result.is_err();
        outcomes[i].uploaded = Some(result);
    }

    let started = Instant::now();
    let stale = if !config.delete_stale {
        StalePhase::NotAsked
    } else if failed {
        StalePhase::SkippedAfterFailures
    } else {
        delete_stale(bucket, &produced, parallel).await
    };
    timings.delete = started.elapsed();
    UploadPhase::Done {
        bucket: name,
        created,
        stale,
    }
}

/// Delete the bucket's top-level `.html` objects that this run did not produce.
async fn delete_stale(
    bucket: &S3,
    produced: &HashSet<String>,
    parallel: usize,
) -> StalePhase {
    let keys: Result<Vec<String>, StoreError> = bucket
        .list("")
        .map(|object| object.map(|o| o.key))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    let keys = match keys {
        // The top level only: pages are never in a "folder".
        Ok(keys) => keys.into_iter().filter(|k| !k.contains('/')),
        Err(error) => return StalePhase::ListFailed(error),
    };
    let mut stale: Vec<String> = keys
        .into_iter()
        .filter(|k| k.ends_with(".html") && !produced.contains(k))
        .collect();
    stale.sort();
    let deleted = futures::stream::iter(stale)
        .map(|key| async move {
            let result = bucket.delete(&key).await;
            (key, result)
        })
        .buffered(parallel)
        .collect()
        .await;
    StalePhase::Deleted(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_originals() {
        let config = Config::from_settings(&RawSettings::from_pairs(&[("DRY_RUN", "1")])).unwrap();
        assert_eq!(config.bucket, "blocklists");
        assert_eq!(config.addons_collection, "addons");
        assert_eq!(config.plugins_collection, "plugins");
        assert_eq!(config.s3.bucket_name, "amo-blocked-pages");
        assert_eq!(config.s3.region, "eu-central-1");
        assert!(config.dry_run);
        assert!(!config.delete_stale);
        assert_eq!(config.target_dir, None);
    }

    #[test]
    fn plural_collection_names_of_the_seed_readme_are_accepted() {
        let config = Config::from_settings(&RawSettings::from_pairs(&[
            ("DRY_RUN", "1"),
            ("ADDONS_COLLECTIONS", "a2"),
            ("PLUGINS_COLLECTIONS", "p2"),
        ]))
        .unwrap();
        assert_eq!(
            (
                config.addons_collection.as_str(),
                config.plugins_collection.as_str()
            ),
            ("a2", "p2")
        );
        // The singular name wins.
        let config = Config::from_settings(&RawSettings::from_pairs(&[
            ("DRY_RUN", "1"),
            ("ADDONS_COLLECTION", "a1"),
            ("ADDONS_COLLECTIONS", "a2"),
        ]))
        .unwrap();
        assert_eq!(config.addons_collection, "a1");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (pairs, name) in [
            (vec![("DRY_RUN", "maybe")], "DRY_RUN"),
            (
                vec![("DRY_RUN", "1"), ("DELETE_STALE", "2")],
                "DELETE_STALE",
            ),
            (vec![("DRY_RUN", "1"), ("BUCKET", "../x")], "BUCKET"),
            (
                vec![("DRY_RUN", "1"), ("ADDONS_COLLECTIONS", "a b")],
                "ADDONS_COLLECTIONS",
            ),
            (
                vec![("DRY_RUN", "1"), ("PLUGINS_COLLECTION", "addons")],
                "PLUGINS_COLLECTION",
            ),
            (vec![("AWS_ACCESS_KEY_ID", "AKIA")], "AWS_SECRET_ACCESS_KEY"),
        ] {
            let err = Config::from_settings(&RawSettings::from_pairs(&pairs)).unwrap_err();
            assert_eq!(err.name, name, "{pairs:?}");
        }
    }
}
