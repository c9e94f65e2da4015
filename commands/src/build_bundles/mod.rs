//! `build_bundles`: what Firefox downloads instead of many requests at first start, built from
//! the published (non-preview) changesets the reader serves, into the object store's `bundles/`:
//! `changesets.json.mozlz4` (every changeset), `startup.json.mozlz4` (those flagged `startup`)
//! and `{bid}--{cid}.zip` (the attachments of collections flagged `attachment.bundle`).
//!
//! An output is rebuilt only when its collection (the newest collection, for the mozlz4 files)
//! changed since the stored object was written; zips whose attachments weigh more than
//! `BUNDLE_MAX_SIZE_BYTES` are skipped; every attachment is checked against its record before it
//! is bundled ([`archive`]); zips of collections that lost the flag or their attachments are
//! deleted, only when every changeset was read. `DRY_RUN` uploads and deletes nothing;
//! `TARGET_DIR` gets a copy of everything built. Files: [`changesets`] (reading), [`mozlz4`],
//! [`archive`] (zips), [`plan`] (what to do with each output), [`publish`] (store and directory),
//! [`report`].

mod archive;
mod changesets;
mod mozlz4;
mod plan;
mod publish;
mod report;

use std::path::PathBuf;

use futures::StreamExt;

use crate::attachment;
use crate::command::{Command, CommandConfig, Runs};
use crate::kinto::{ChangesEntry, CollectionRef, ServerInfo};
use crate::monitored::{check_all, is_preview, MonitorList};
use crate::progress::Progress;
use crate::settings::shared::{AUTH, DRY_RUN, DRY_RUN_GROUP, MONITOR, MONITOR_BUCKET, MONITOR_COLLECTION};
use crate::settings::{quote, RawSettings, ServerSettings, Setting, SettingError};
use crate::store::{self, Store, StoreSettings};
use crate::{CommandError, Context};

use changesets::Published;
use plan::{ZipJob, ZipPlan};
use publish::Destination;
pub use report::{Action, BundlesReport, Output};

pub const COMMAND: Command = Command {
    name: "build_bundles",
    about: "Build the changesets and attachments bundles Firefox downloads, into the object store",
    problems_error_type: "BundlesError",
    writer: false,
    groups: &[MONITOR, DRY_RUN_GROUP, store::SETTINGS, store::aws::CREDENTIALS],
    settings: &[&BUNDLE_MAX_SIZE_BYTES, &TARGET_DIR],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const BUNDLE_MAX_SIZE_BYTES: Setting = Setting::new(
    "BUNDLE_MAX_SIZE_BYTES",
    "BYTES",
    "Skip (and report) the zips of collections whose attachments weigh more than this",
)
.default("20000000")
.event_key("bundle_max_size_bytes");
pub const TARGET_DIR: Setting = Setting::new(
    "TARGET_DIR",
    "DIR",
    "Also write every output built into this directory (created when missing)",
);

/// Whether a changeset goes in a mozlz4 file.
type Belongs = fn(&Published) -> bool;

/// The mozlz4 files: name, and which changesets go in.
const MOZLZ4_FILES: [(&str, Belongs); 2] = [
    ("changesets.json.mozlz4", |_| true),
    ("startup.json.mozlz4", Published::is_startup),
];

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub monitor: CollectionRef,
    pub store: Option<StoreSettings>,
    pub dry_run: bool,
    pub target_dir: Option<PathBuf>,
    pub max_size: u64,
}

/// A byte count, with `_` separators allowed (`20_000_000`, as the Python job read it).
fn bytes_setting(raw: &RawSettings, setting: &Setting) -> Result<u64, SettingError> {
    let text = raw.string(setting);
    text.replace('_', "")
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| SettingError::new(setting.env, format!("{} is not a number of bytes > 0", quote(&text))))
}

impl CommandConfig for Config {
    type Report = BundlesReport;

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let dry_run = raw.flag(&DRY_RUN)?;
        // A dry run may go without a store (it then builds everything).
        let store = match raw.get(&store::STORAGE_URL) {
            Some(_) => Some(StoreSettings::from_settings(raw)?),
            None => None,
        };
        if store.is_none() && !dry_run {
            return Err(SettingError::new(
                store::STORAGE_URL.env,
                "is required to upload the bundles (or set DRY_RUN=1)",
            ));
        }
        Ok(Config {
            server: ServerSettings::from_settings(raw, &AUTH)?,
            monitor: CollectionRef::new(
                &raw.kinto_id(&MONITOR_BUCKET)?,
                &raw.kinto_id(&MONITOR_COLLECTION)?,
            ),
            store,
            dry_run,
            target_dir: raw.get(&TARGET_DIR).map(|d| PathBuf::from(d.trim())),
            max_size: bytes_setting(raw, &BUNDLE_MAX_SIZE_BYTES)?,
        })
    }

    async fn run(&self, ctx: &Context) -> Result<BundlesReport, CommandError> {
        run(self, ctx).await
    }
}

pub async fn run(config: &Config, ctx: &Context) -> Result<BundlesReport, CommandError> {
    let store = match &config.store {
        Some(settings) => Some(
            Store::new(settings, &ctx.http).map_err(|e| CommandError::Runtime(e.to_string()))?,
        ),
        None => None,
    };
    let destination = Destination {
        store,
        dry_run: config.dry_run,
        target_dir: config.target_dir.clone(),
    };
    let client = &ctx.kinto(&config.server);
    let info = ServerInfo::fetch(client).await?;
    let signer = info.signer().map_err(CommandError::Runtime)?;
    let list = MonitorList::read(client, config.monitor.clone()).await?;
    let (previews, entries): (Vec<ChangesEntry>, Vec<ChangesEntry>) = list
        .entries
        .into_iter()
        .partition(|entry| is_preview(signer.as_ref(), entry));
    let parallel = ctx.http.parallel();
    let read = check_all(ctx, "Reading changesets", parallel, entries.clone(), |entry| async move {
        changesets::read(client, &entry).await
    })
    .await;
    let (mut published, mut unreadable) = (Vec::new(), Vec::new());
    for (entry, result) in entries.iter().zip(read) {
        match result {
            Ok(changeset) => published.push(changeset),
            Err(error) => unreadable.push((CollectionRef::new(&entry.bucket, &entry.collection), error)),
        }
    }
    let existing = destination.existing().await.map_err(|e| {
        CommandError::Runtime(format!(
            "cannot list the bundles in {}: {e}",
            destination.describe().unwrap_or_default()
        ))
    })?;
    let complete = unreadable.is_empty();

    let mut outputs = mozlz4_outputs(&published, &existing, complete, &destination).await;
    let base_url = attachment::base_url(&info);
    let (mut jobs, mut done, mut deletions) = (Vec::new(), Vec::new(), Vec::new());
    for changeset in &published {
        match plan::zip_plan(changeset, base_url, &existing, config.max_size) {
            ZipPlan::Build(job) => jobs.push(job),
            ZipPlan::Done(output) => done.push(output),
            ZipPlan::Delete(name, why) => deletions.push((name, why)),
            ZipPlan::Nothing => {}
        }
    }
    done.extend(build_zips(ctx, &destination, jobs).await);
    done.extend(delete_zips(&destination, deletions, complete, parallel).await);
    done.sort_by(|a, b| a.name.cmp(&b.name));
    outputs.extend(done);

    Ok(BundlesReport {
        monitor: config.monitor.path(),
        changesets: published.len(),
        previews_ignored: previews.len(),
        store: destination.describe(),
        dry_run: config.dry_run,
        limit: config.max_size,
        outputs,
        unreadable,
        invalid_entries: list.invalid,
    })
}

/// `changesets.json.mozlz4` and `startup.json.mozlz4`, built when the newest collection changed
/// since they were stored, and only from a complete set of changesets.
async fn mozlz4_outputs(
    published: &[Published],
    existing: &publish::Existing,
    complete: bool,
    destination: &Destination,
) -> Vec<Output> {
    let newest = published.iter().map(|p| p.changeset.timestamp).max().unwrap_or(0);
    let mut outputs = Vec::new();
    for (name, belongs) in MOZLZ4_FILES {
        let members: Vec<&Published> = published.iter().filter(|p| belongs(p)).collect();
        let mut output = Output::new(name, members.len(), Action::Incomplete);
        if !complete {
            outputs.push(output);
            continue;
        }
        if !plan::changed_since(newest, existing.get(name)) {
            output.action = Action::Unchanged;
            outputs.push(output);
            continue;
        }
        let json = changesets::json_list(members.into_iter());
        match tokio::task::spawn_blocking(move || mozlz4::encode(&json)).await {
            Ok(Some(file)) => {
                destination
                    .deliver(&mut output, file, "application/octet-stream")
                    .await
            }
            _ => output.action = Action::StoreFailed("the JSON list is too large for mozlz4".into()),
        }
        outputs.push(output);
    }
    outputs
}

/// Fetch, check, zip and deliver every bundle to build: bundles and their files in parallel,
/// within the run's in-flight cap.
async fn build_zips(ctx: &Context, destination: &Destination, jobs: Vec<ZipJob>) -> Vec<Output> {
    let parallel = ctx.http.parallel();
    let progress = Progress::new(ctx.progress, jobs.len() as u64, "Building zips");
    // The files are public: no credentials go with them, whatever their origin.
    let files_client = &ctx.http;
    let progress_ref = &progress;
    let outputs = futures::stream::iter(jobs)
        .map(|job| async move {
            let mut output = job.output;
            match archive::fetch_all(files_client, &job.files, parallel).await {
                Err(problems) => output.action = Action::Failed(problems),
                Ok(bodies) => {
                    let files = job.files;
                    let zipped = tokio::task::spawn_blocking(move || archive::build(&files, &bodies)).await;
                    match zipped {
                        Ok(Ok(zip)) => destination.deliver(&mut output, zip, "application/zip").await,
                        Ok(Err(e)) => output.action = Action::StoreFailed(e),
                        Err(e) => output.action = Action::StoreFailed(format!("building the zip failed: {e}")),
                    }
                }
            }
            progress_ref.inc();
            output
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    progress.finish();
    outputs
}

/// Delete the zips that should no longer exist, unless some changeset could not be read.
async fn delete_zips(
    destination: &Destination,
    deletions: Vec<(String, &'static str)>,
    complete: bool,
    parallel: usize,
) -> Vec<Output> {
    futures::stream::iter(deletions)
        .map(|(name, why)| async move {
            let action = if complete {
                destination.delete(&name, why).await
            } else {
                Action::DeletionWithheld(why)
            };
            Output::new(name, 0, action)
        })
        .buffer_unordered(parallel)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_store_only_a_dry_run_may_run() {
        let err = Config::from_settings(&RawSettings::from_pairs(&[])).unwrap_err();
        assert_eq!(err.name, "STORAGE_URL");
        let config = Config::from_settings(&RawSettings::from_pairs(&[("DRY_RUN", "1")])).unwrap();
        assert!(config.dry_run && config.store.is_none());
        assert_eq!(config.max_size, 20_000_000);
        assert_eq!(config.monitor.path(), "/buckets/monitor/collections/changes");
    }

    #[test]
    fn the_size_limit_takes_the_python_jobs_spelling_and_refuses_nonsense() {
        let config = |v: &str| {
            Config::from_settings(&RawSettings::from_pairs(&[("DRY_RUN", "1"), ("BUNDLE_MAX_SIZE_BYTES", v)]))
        };
        assert_eq!(config("20_000_000").unwrap().max_size, 20_000_000);
        assert_eq!(config("1").unwrap().max_size, 1);
        for bad in ["0", "-1", "20MB", "2e7"] {
            assert_eq!(config(bad).unwrap_err().name, "BUNDLE_MAX_SIZE_BYTES", "{bad}");
        }
    }
}
