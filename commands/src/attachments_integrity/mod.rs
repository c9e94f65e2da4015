//! `attachments_integrity`: every attachment of the published (non-preview) monitored collections
//! is downloaded from `capabilities.attachments.base_url` + its `location`, and must answer 2xx
//! with the declared `size` and SHA-256 `hash`. Bodies are streamed into the hash, never held
//! whole; downloads run within the in-flight cap; `SLICE` (`K/N`) checks one of N shards balanced
//! by bytes (`slice.rs`). Previews are told apart by the signer capability when the server has
//! it, else by their bucket's `-preview` suffix.

mod files;
mod report;
mod slice;

use reqwest::Url;

use crate::attachment::{self, file_url, Attachment, InvalidAttachment, NO_BASE_URL};
use crate::command::{Command, CommandConfig, Runs, Threads};
use crate::kinto::Kinto;
use crate::kinto::{ChangesEntry, CollectionRef, ServerInfo};
use crate::monitored::{check_all, is_preview, MonitorList};
use crate::settings::shared::{AUTH, MONITOR, MONITOR_BUCKET, MONITOR_COLLECTION};
use crate::settings::{quote, RawSettings, ServerSettings, Setting, SettingError};
use crate::{CommandError, Context};

pub use crate::attachment::Checked;
pub use report::{AttachmentsReport, FileResult};
pub use slice::Slice;

pub const COMMAND: Command = Command {
    name: "attachments_integrity",
    about: "Check that every published attachment is served with its declared size and SHA-256",
    problems_error_type: "AttachmentsError",
    writer: false,
    groups: &[MONITOR],
    settings: &[&SLICE],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const SLICE: Setting = Setting::new(
    "SLICE",
    "K/N",
    "Check only the K-th of N shards of the attachments, balanced by bytes (N scheduled runs cover every file once)",
)
.default("1/1")
.event_key("slice");

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub bucket: String,
    pub collection: String,
    pub slice: Slice,
}

impl CommandConfig for Config {
    type Report = AttachmentsReport;
    /// One thread, the command's own: each body is hashed as it arrives, on the thread that
    /// reads it. Threads spent their time waking each other (medians of 6 alternated runs over
    /// `make bench`'s 2,000 files): two workers 0.50 s of CPU and 0.735 s of wall, one worker
    /// beside the command's thread 0.41 s and 0.635 s; then, in another run, one worker 0.475 s
    /// and 0.73 s, the command's thread alone 0.355 s and 0.62 s.
    const THREADS: Threads = Threads::CommandThread;

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        Ok(Config {
            server: ServerSettings::from_settings(raw, &AUTH)?,
            bucket: raw.kinto_id(&MONITOR_BUCKET)?,
            collection: raw.kinto_id(&MONITOR_COLLECTION)?,
            slice: Slice::parse(SLICE.env, &raw.string(&SLICE))?,
        })
    }

    async fn run(&self, ctx: &Context) -> Result<AttachmentsReport, CommandError> {
        run(self, ctx).await
    }
}

pub async fn run(config: &Config, ctx: &Context) -> Result<AttachmentsReport, CommandError> {
    let client = &ctx.kinto(&config.server);
    let info = ServerInfo::fetch(client).await?;
    let signer = info.signer().map_err(CommandError::Runtime)?;
    let monitor = CollectionRef::new(&config.bucket, &config.collection);
    let list = MonitorList::read(client, monitor).await?;
    let (previews, published): (Vec<ChangesEntry>, Vec<ChangesEntry>) = list
        .entries
        .into_iter()
        .partition(|entry| is_preview(signer.as_ref(), entry));
    let mut report = AttachmentsReport::new(config.slice, previews.len(), list.invalid);
    let parallel = ctx.http.parallel();
    let all = list_attachments(client, ctx, parallel, published, &mut report).await;
    report.all_files = all.len();
    report.all_bytes = all.iter().map(|a| a.size).sum();
    let picked = config.slice.pick(&all, |a| (a.location.as_str(), a.size));
    let shard: Vec<Attachment> = picked.into_iter().map(|i| all[i].clone()).collect();
    let mine = with_urls(&info, shard, &mut report)?;
    // The files are public: no credentials go with them, whatever their origin.
    let files_client = &ctx.http;
    let label = "Checking attachments";
    report.files = check_all(ctx, label, parallel, mine, |(attachment, url)| async move {
        let found = attachment::check(files_client, &attachment, &url).await;
        let url = crate::secrets::display_url(&url);
        FileResult {
            attachment,
            url,
            found,
        }
    })
    .await;
    Ok(report)
}

/// The attachments of the published collections, in parallel; what cannot be listed goes to the
/// report.
async fn list_attachments(
    client: &Kinto,
    ctx: &Context,
    parallel: usize,
    published: Vec<ChangesEntry>,
    report: &mut AttachmentsReport,
) -> Vec<Attachment> {
    let entries = published.clone();
    let listed = check_all(ctx, "Listing attachments", parallel, entries, |entry| async move {
        files::list(client, &entry).await
    })
    .await;
    let mut all = Vec::new();
    for (entry, listing) in published.into_iter().zip(listed) {
        let collection = CollectionRef::new(&entry.bucket, &entry.collection);
        match listing {
            Ok((found, invalid)) => {
                all.extend(found);
                report.invalid.extend(invalid);
                report.collections.push(collection);
            }
            Err(error) => report.unreadable.push((collection, error)),
        }
    }
    all
}

/// Each attachment with its URL, `capabilities.attachments.base_url` + `location`; one that makes
/// no http(s) URL is an invalid attachment.
fn with_urls(
    info: &ServerInfo,
    attachments: Vec<Attachment>,
    report: &mut AttachmentsReport,
) -> Result<Vec<(Attachment, Url)>, CommandError> {
    if attachments.is_empty() {
        return Ok(Vec::new());
    }
    let base_url = attachment::base_url(info).ok_or_else(|| CommandError::Runtime(NO_BASE_URL.into()))?;
    let mut mine = Vec::with_capacity(attachments.len());
    for attachment in attachments {
        match file_url(base_url, &attachment.location) {
            Some(url) => mine.push((attachment, url)),
            None => report.invalid.push(InvalidAttachment {
                reason: format!(
                    "{} + {} is not an http(s) URL",
                    quote(base_url),
                    quote(&attachment.location)
                ),
                collection: attachment.collection,
                record: attachment.record,
            }),
        }
    }
    Ok(mine)
}
