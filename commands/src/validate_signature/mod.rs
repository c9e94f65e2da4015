//! `validate_signature`: for every monitor/changes entry, fetch the collection's changeset and
//! decide, as Firefox would, whether its content signature holds: payload, x5u chain, signer
//! name, signature. Changesets download in parallel within the client's in-flight cap; their
//! parsing, hashing and verification run on the blocking pool so downloads never wait for them.
//! The verification itself is the pure core in [`crate::signature`]; this module does the I/O.

pub(crate) mod chains;
mod root_pin;
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use tokio::sync::Semaphore;

use crate::client::{ClientError, ClientErrorKind, Request};
use crate::kinto::{ever_held_records, ChangesEntry, CollectionRef, Kinto};
use crate::monitored::{check_all, MonitorList};
use crate::command::{Command, CommandConfig, Runs, Threads};
use crate::settings::shared::{AUTH, MONITOR, MONITOR_BUCKET, MONITOR_COLLECTION};
use crate::settings::{quote, ServerSettings, RawSettings, Setting, SettingError};
use crate::signature::payload::{self, ChangesetDigest};
use crate::signature::{
    self, verify_entry, ChainPolicy, ErrorCode, VerifyError, Warning,
};
use crate::{CommandError, Context};

use chains::{off_executor, ChainCache};
pub use root_pin::RootPin;
pub use report::{CollectionResult, SignatureCheck, SignatureReport, Verdict};

pub const COMMAND: Command = Command {
    name: "validate_signature",
    about: "Verify the content signature and certificate chain of every published collection",
    problems_error_type: "ValidationError",
    writer: false,
    groups: &[MONITOR],
    settings: &[&ROOT_HASH, &SIGNER_NAME, &CHECK_AT],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const ROOT_HASH: Setting = Setting::new(
    "ROOT_HASH",
    "HEX",
    "Colon-hex SHA-256 of the only root certificate accepted, or `any` for any self-signed root",
)
.derived("the root Firefox pins on Mozilla's hosts, else any self-signed root");
pub const SIGNER_NAME: Setting = Setting::new(
    "SIGNER_NAME",
    "DNS_NAME",
    "The name the leaf certificate must carry, for every bucket (unset: onecrl.content-signature.mozilla.org for security-state(-preview), remote-settings.content-signature.mozilla.org elsewhere)",
)
.derived("per bucket");
pub const CHECK_AT: Setting = Setting::new(
    "CHECK_AT",
    "EPOCH_SECONDS",
    "Check certificates at this time, in seconds since the epoch",
)
.flag("at")
.derived("now");

/// The latest check time accepted (9999-12-31).
pub const MAX_CHECK_AT: u64 = 253_402_300_799;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub bucket: String,
    pub collection: String,
    /// Replaces the per-bucket signer names when set.
    pub signer_name: Option<String>,
    /// SHA-256 of the only acceptable root certificate.
    pub root_hash: Option<[u8; 32]>,
    /// Where that root comes from.
    pub root_pin: RootPin,
    /// The time certificates must be valid at, in seconds since the epoch.
    pub check_at: u64,
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl CommandConfig for Config {
    type Report = SignatureReport;
    /// One thread for the downloads, the command's own: parsing, hashing and verification run on
    /// the blocking pool, one per core ([`Run::cpu_work`]). Two workers cost 1-6 % more CPU and
    /// about 1 MiB more RSS, in wake-ups between threads, for no shorter wall time (alternated
    /// runs on the bench's memory server); the command's thread alone against one worker beside
    /// it: 7.42 and 7.54 against 7.79 and 8.23 ms/MB (`make bench`'s measurement, PostgreSQL).
    const THREADS: Threads = Threads::CommandThread;

    async fn run(&self, ctx: &Context) -> Result<SignatureReport, CommandError> {
        run(self, ctx).await
    }

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let signer_name = match raw.get(&SIGNER_NAME).map(str::trim) {
            None => None,
            Some(name) if is_dns_name(name) => Some(name.to_ascii_lowercase()),
            Some(name) => {
                return Err(SettingError::new(
                    SIGNER_NAME.env,
                    format!("{} is not a DNS name", quote(name)),
                ))
            }
        };
        let server = ServerSettings::from_settings(raw, &AUTH)?;
        let root_pin = RootPin::choose(raw.get(&ROOT_HASH), &server.url)
            .map_err(|message| SettingError::new(ROOT_HASH.env, message))?;
        Ok(Config {
            server,
            bucket: raw.kinto_id(&MONITOR_BUCKET)?,
            collection: raw.kinto_id(&MONITOR_COLLECTION)?,
            signer_name,
            root_hash: root_pin.hash(),
            root_pin,
            check_at: raw.uint_opt(&CHECK_AT, MAX_CHECK_AT)?.unwrap_or(now),
        })
    }
}

impl Config {
    fn policy(&self) -> ChainPolicy {
        ChainPolicy {
            at: self.check_at,
            root_hash: self.root_hash,
        }
    }
}

pub async fn run(config: &Config, ctx: &Context) -> Result<SignatureReport, CommandError> {
    let client = ctx.kinto(&config.server);
    let monitor = CollectionRef::new(&config.bucket, &config.collection);
    let list = MonitorList::read(&client, monitor).await?;
    // More collections in progress than requests in flight, so that verification of some
    // overlaps the downloads of others and downloads do not wait for it: up to twice the
    // requests in flight may wait with their bodies while each core verifies one. The client's
    // semaphore still caps the requests. With `parallel + cpus`, bodies waiting for a core held
    // back the next downloads: 1.27x the download floor with the server on its own core, against
    // 1.09x now (`make bench`, memory server, medians of 5).
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let in_progress = 2 * ctx.http.parallel() + cpus;
    let run = Run {
        client: &client,
        chains: ChainCache::new(ctx.http.clone(), config.policy()),
        cpu: Semaphore::new(cpus),
        config,
    };
    let run_ref = &run;
    let results = check_all(
        ctx,
        "Verifying signatures",
        in_progress,
        list.entries,
        |entry| run_ref.check_collection(entry),
    )
    .await;
    Ok(SignatureReport {
        monitor_path: list.monitor.path(),
        results,
        invalid: list.invalid,
        chains: run.chains.infos(),
        root_pinned: config.root_hash.is_some(),
        root_pin: config.root_pin,
    })
}

/// What the checks of one run share.
struct Run<'a> {
    client: &'a Kinto,
    chains: ChainCache,
    /// One permit per core for CPU-bound work.
    cpu: Semaphore,
    config: &'a Config,
}

impl Run<'_> {
    /// Run CPU-bound work on the blocking pool, at most one task per core.
    async fn cpu_work<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let _permit = self
            .cpu
            .acquire()
            .await
            .expect("the semaphore is never closed");
        off_executor(work).await
    }

    /// Download and digest the changeset of `entry`. A body that is not a changeset (not JSON,
    /// another shape: what a proxy or an overloaded server sends now and then) is retried like any
    /// transient fault; when it persists, the collection is unreadable (exit 3, naming the URL),
    /// never BAD. Returns the digest and the time spent digesting it.
    async fn fetch_changeset(
        &self,
        entry: &ChangesEntry,
    ) -> Result<(ChangesetDigest, Duration), ClientError> {
        let url = self
            .client
            .changeset_url(&entry.path(), entry.last_modified);
        let request = Request::new(Method::GET, url);
        self.client
            .send_checked_async(&request, |response| async move {
                let started = Instant::now();
                // The body moves to the blocking pool and is dropped there once parsed.
                let digest = self
                    .cpu_work(move || payload::digest_changeset(response.body))
                    .await;
                digest
                    .map(|digest| (digest, started.elapsed()))
                    .map_err(|error| ClientErrorKind::Shape(error.to_string()))
            })
            .await
    }

    async fn check_collection(&self, entry: ChangesEntry) -> CollectionResult {
        let (digest, digesting) = match self.fetch_changeset(&entry).await {
            Ok(fetched) => fetched,
            Err(error) => return CollectionResult::new(entry, Verdict::Unreadable(error)),
        };
        let started = Instant::now();
        let mut result = self.verify_changeset(entry, digest).await;
        result.duration = digesting + started.elapsed();
        result
    }

    async fn verify_changeset(
        &self,
        entry: ChangesEntry,
        digest: ChangesetDigest,
    ) -> CollectionResult {
        let mut result = CollectionResult::new(entry, Verdict::Ok);
        result.records = Some(digest.records);
        result.records_timestamp = Some(digest.timestamp);
        result.signed_on = digest.metadata_last_modified;
        result.warnings = digest.warnings.clone();
        if digest.signatures.is_empty() {
            result.verdict = if digest.records > 0 {
                Verdict::Bad(VerifyError::new(
                    ErrorCode::MetadataMissingSignature,
                    format!(
                        "the collection holds {} record(s) but its metadata has no signature",
                        digest.records
                    ),
                ))
            } else {
                match ever_held_records(self.client, &result.entry).await {
                Ok(false) => Verdict::Skip,
                Ok(true) => Verdict::Bad(VerifyError::new(
                    ErrorCode::MetadataMissingSignature,
                    "the collection held records (it has tombstones) but its metadata has no signature",
                )),
                Err(error) => Verdict::Unreadable(error),
            }
            };
            return result;
        }

        // Chains first (downloaded once per URL for the whole run), then the CPU work in one go.
        let mut planned = Vec::with_capacity(digest.signatures.len());
        for sig in &digest.signatures {
            let chain = match (&sig.x5u, &sig.signature) {
                _ if sig.unsupported().is_some() => Err(sig.unsupported().expect("checked")),
                (_, None) => Err(VerifyError::new(
                    ErrorCode::SignatureEncoding,
                    "the signature entry has no signature value",
                )),
                (None, _) => Err(VerifyError::new(
                    ErrorCode::X5uMissing,
                    "the signature entry has no x5u",
                )),
                (Some(x5u), Some(_)) => self.chains.get(x5u).await,
            };
            planned.push((sig.clone(), chain));
        }
        let expected =
            signature::signer_name(&result.entry.bucket, self.config.signer_name.as_deref())
                .to_string();
        let at = self.config.check_at;
        let checks: Vec<(SignatureCheck, Option<Warning>)> = self
            .cpu_work(move || {
                planned
                    .into_iter()
                    .map(|(sig, chain)| {
                        let warning = chain.as_ref().ok().and_then(|c| c.expiry_warning(at));
                        let outcome = chain.and_then(|chain| {
                            verify_entry(
                                &chain,
                                &expected,
                                sig.signature.as_deref().unwrap_or_default(),
                                &digest.digest,
                            )
                            .map(|()| Arc::clone(&chain))
                        });
                        let check = SignatureCheck {
                            x5u: sig.x5u,
                            root_sha256: outcome.as_ref().ok().map(|c| c.root_sha256),
                            error: outcome.err(),
                        };
                        (check, warning)
                    })
                    .collect()
            })
            .await;
        for (check, warning) in checks {
            if let Some(w) = warning {
                if !result.warnings.contains(&w) {
                    result.warnings.push(w);
                }
            }
            result.signatures.push(check);
        }
        // Any signature that verifies is enough; otherwise the first one's error is the verdict.
        if !result.signatures.iter().any(|s| s.error.is_none()) {
            let first = result.signatures[0]
                .error
                .clone()
                .expect("every check failed");
            result.verdict = Verdict::Bad(first);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_original_ones() {
        let c = Config::from_settings(&RawSettings::new()).unwrap();
        assert_eq!(
            (c.bucket.as_str(), c.collection.as_str()),
            ("monitor", "changes")
        );
        assert_eq!(c.signer_name, None);
        assert_eq!(c.root_hash, None);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(c.check_at.abs_diff(now) < 60);
    }

    #[test]
    fn settings_are_parsed_and_bad_ones_named() {
        let hash = "3C:01:44:6A:BE:90:36:CE:A9:A0:9A:CA:A3:A5:20:AC:62:8F:20:A7:AE:32:CE:86:1C:B2:EF:B7:0F:A0:C7:45";
        let c = Config::from_settings(&RawSettings::from_pairs(&[
            ("ROOT_HASH", hash),
            ("CHECK_AT", "1615559719"),
            (
                "SIGNER_NAME",
                "Pinning-Preload.content-signature.mozilla.org",
            ),
        ]))
        .unwrap();
        assert_eq!(c.check_at, 1_615_559_719);
        assert_eq!(
            c.signer_name.as_deref(),
            Some("pinning-preload.content-signature.mozilla.org")
        );
        assert_eq!(signature::colon_hex(&c.root_hash.unwrap()), hash);
        for (name, value) in [
            ("ROOT_HASH", "3C:01"),
            ("ROOT_HASH", "not hex at all"),
            ("CHECK_AT", "yesterday"),
            ("CHECK_AT", "-5"),
            ("CHECK_AT", "999999999999999"),
            ("SIGNER_NAME", "bad name"),
            ("SIGNER_NAME", "a..b"),
            ("BUCKET", "../x"),
        ] {
            let err =
                Config::from_settings(&RawSettings::from_pairs(&[(name, value)])).unwrap_err();
            assert_eq!(err.name, name, "{value}");
        }
    }
}
