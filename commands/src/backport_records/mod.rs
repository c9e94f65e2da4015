//! `backport_records`: keep an old collection fed from a new source of truth. For each mapping
//! (one source/destination pair, or several `BACKPORT_RECORDS_MAPPINGS` lines), read the source's
//! filtered records and the destination's, diff them by content ([`diff`]), write the changes
//! through `/batch` with preconditions ([`apply`]), then ask the signer for a signature when the
//! destination is a signed source collection: `to-sign` when its resource needs no review,
//! `to-review` otherwise. Mappings run one after the other; a failed one does not stop the next.

pub mod apply;
pub mod diff;
pub mod mapping;
mod report;

use serde_json::Value;

use crate::client::{ClientError, Request};
use crate::kinto::{
    object_data, shape_error, CollectionRef, Kinto, ServerInfo, SignerCapability, SignerStatus,
};
use crate::progress::Progress;
use crate::command::{Command, CommandConfig, Runs};
use crate::secrets::Auth;
use crate::settings::shared::{DRY_RUN, DRY_RUN_GROUP};
use crate::settings::{ServerSettings, RawSettings, Setting, SettingError};
use crate::{CommandError, Context};

pub use apply::Outcome;
pub use diff::{Change, Kind};
pub use mapping::Mapping;
pub use report::{BackportReport, MappingResult, MappingState, Signing};

pub const COMMAND: Command = Command {
    name: "backport_records",
    about: "Copy record creations, updates and deletions from one collection to another, then ask for signature",
    problems_error_type: "BackportError",
    writer: true,
    groups: &[DRY_RUN_GROUP],
    settings: &[
        &SOURCE_AUTH,
        &mapping::SOURCE_BUCKET,
        &mapping::SOURCE_COLLECTION,
        &mapping::SOURCE_FILTERS,
        &DEST_AUTH,
        &mapping::DEST_BUCKET,
        &mapping::DEST_COLLECTION,
        &mapping::MAPPINGS,
    ],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const SOURCE_AUTH: Setting = Setting::credentials(
    "BACKPORT_RECORDS_SOURCE_AUTH",
    "Credentials for the source (and the destination unless --dest-auth): `user:pass` or a token (required)",
)
.flag("source-auth")
.event_key("backport_records_source_auth")
.derived("none (required)");
pub const DEST_AUTH: Setting = Setting::credentials(
    "BACKPORT_RECORDS_DEST_AUTH",
    "Credentials for the destination",
)
.flag("dest-auth")
.event_key("backport_records_dest_auth")
.derived("the source's");

#[derive(Debug, Clone)]
pub struct Config {
    /// The server, and the source's credentials.
    pub server: ServerSettings,
    /// The destination's credentials (default: the source's).
    pub dest_auth: Option<Auth>,
    pub mappings: Vec<Mapping>,
    /// The mappings came from `BACKPORT_RECORDS_MAPPINGS` (the report names each one).
    pub from_mapping_lines: bool,
    pub dry_run: bool,
}

impl CommandConfig for Config {
    type Report = BackportReport;

    async fn run(&self, ctx: &Context) -> Result<BackportReport, CommandError> {
        run(self, ctx).await
    }

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let server = ServerSettings::from_settings(raw, &SOURCE_AUTH)?;
        if server.auth.is_none() {
            return Err(SettingError::new(
                SOURCE_AUTH.env,
                "required: credentials (`user:pass` or a token) for the source and, unless BACKPORT_RECORDS_DEST_AUTH is set, the destination",
            ));
        }
        let (mappings, from_mapping_lines) = mapping::from_settings(raw)?;
        Ok(Config {
            dest_auth: raw
                .secret(&DEST_AUTH)
                .map(|s| Auth::parse(&s))
                .or_else(|| server.auth.clone()),
            server,
            mappings,
            from_mapping_lines,
            dry_run: raw.flag(&DRY_RUN)?,
        })
    }
}

pub async fn run(config: &Config, ctx: &Context) -> Result<BackportReport, CommandError> {
    let source = ctx.kinto(&config.server);
    let destination = source.with_auth(config.dest_auth.as_ref());
    let info = ServerInfo::fetch(&destination).await?;
    let signer = info.signer().map_err(CommandError::Runtime)?;
    let backport = Backport {
        config,
        ctx,
        source,
        destination,
        signer,
        chunk_size: info.batch_max_requests(),
    };
    let mut results = Vec::with_capacity(config.mappings.len());
    for mapping in &config.mappings {
        let state = backport.run(mapping).await;
        results.push(MappingResult {
            mapping: mapping.clone(),
            state,
        });
    }
    Ok(BackportReport {
        dry_run: config.dry_run,
        name_mappings: config.from_mapping_lines,
        results,
    })
}

/// What every mapping of a run shares.
struct Backport<'a> {
    config: &'a Config,
    ctx: &'a Context,
    source: Kinto,
    destination: Kinto,
    signer: Option<SignerCapability>,
    chunk_size: usize,
}

impl Backport<'_> {
    async fn run(&self, mapping: &Mapping) -> MappingState {
        let dest = &mapping.destination;
        if let Some((_, role)) = self
            .signer
            .as_ref()
            .and_then(|s| s.resolve_published(&dest.bucket, &dest.collection))
        {
            log::warn!(
                "{dest} is a signer {role:?} collection: writing there bypasses review, and its signature will not match"
            );
        }
        let filters: Vec<(&str, &str)> = mapping
            .filters
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let source_path = format!("{}/records", mapping.source.path());
        let dest_path = format!("{}/records", dest.path());
        let (source_records, dest_records) = futures::join!(
            self.source.get_all(&source_path, &filters),
            self.destination.get_all(&dest_path, &[]),
        );
        let (source_records, dest_records) = match (source_records, dest_records) {
            (Ok(s), Ok(d)) => (s, d),
            (Err(e), _) | (_, Err(e)) => return MappingState::Unreadable(e),
        };
        let changes = match diff::plan(source_records, dest_records) {
            Ok(changes) => changes,
            Err(why) => {
                return MappingState::Unreadable(shape_error(&self.destination, &dest_path, why))
            }
        };
        // The signer workflow of the destination, when it is a signed source collection.
        let signature_request = self
            .signer
            .as_ref()
            .and_then(|s| s.resolve_source(&dest.bucket, &dest.collection))
            .map(|wf| {
                if wf.to_review_enabled {
                    SignerStatus::ToReview
                } else {
                    SignerStatus::ToSign
                }
            });
        if changes.is_empty() {
            let Some(request) = &signature_request else {
                return MappingState::InSync;
            };
            // In sync, but changes made earlier may still wait for review or signature.
            match self.collection_status(dest).await {
                Err(e) => return MappingState::Unreadable(e),
                // Signed, or already waiting for what would be asked (a review asked by an
                // earlier run whose answer was lost): asking again would be a second request.
                Ok(Some(status)) if status == SignerStatus::Signed || &status == request => {
                    return MappingState::InSync
                }
                Ok(_) => log::info!("{dest} is in sync but not signed: asking for {request}"),
            }
        }
        if self.config.dry_run {
            let outcomes = vec![Outcome::DryRun; changes.len()];
            let signing = signature_request.map_or(Signing::NotSigned, Signing::WouldRequest);
            return MappingState::Changed {
                changes,
                outcomes,
                signing,
            };
        }
        let progress = Progress::new(
            self.ctx.progress,
            changes.len() as u64,
            &format!("Backporting to {dest}"),
        );
        let outcomes = apply::apply(
            &self.destination,
            dest,
            &changes,
            self.chunk_size,
            &progress,
        )
        .await;
        progress.finish();
        // A chunk that failed as a whole may have been applied (its answer lost): the destination
        // as it is now tells which of its changes were. Unreadable, they stay "maybe".
        let outcomes = if outcomes
            .iter()
            .any(|o| matches!(o, Outcome::BatchFailed(_)))
        {
            match self.destination.get_all(&dest_path, &[]).await {
                Ok(current) => apply::confirm(outcomes, &changes, &current),
                Err(error) => {
                    log::warn!("cannot tell which changes the failed batches applied: {error}");
                    outcomes
                }
            }
        } else {
            outcomes
        };
        let signing = match signature_request {
            None => Signing::NotSigned,
            Some(request) if !outcomes.iter().all(Outcome::is_done) => Signing::Skipped(request),
            Some(request) => match self.request_signature(dest, &request).await {
                Ok(()) => Signing::Requested(request),
                Err(error) => Signing::Failed { request, error },
            },
        };
        MappingState::Changed {
            changes,
            outcomes,
            signing,
        }
    }

    /// The destination collection's signer `status`, if it has one.
    async fn collection_status(
        &self,
        dest: &CollectionRef,
    ) -> Result<Option<SignerStatus>, ClientError> {
        let request = Request::new(reqwest::Method::GET, self.destination.url(&dest.path()));
        let (_, collection) = self.destination.send_checked(&request, object_data).await?;
        Ok(collection
            .get("status")
            .and_then(Value::as_str)
            .map(SignerStatus::parse))
    }

    /// PATCH the destination's status (`to-review` or `to-sign`), as the destination's user.
    async fn request_signature(
        &self,
        dest: &CollectionRef,
        status: &SignerStatus,
    ) -> Result<(), ClientError> {
        let url = self.destination.url(&dest.path());
        let request = Request::new(reqwest::Method::PATCH, url)
            .json(status.patch_body())
            .deadline(crate::kinto::SIGNING_DEADLINE);
        // The answer must be the collection: a 2xx with another body did not ask for anything.
        self.destination
            .send_checked(&request, object_data)
            .await
            .map(|_| ())
    }
}
