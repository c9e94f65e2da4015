//! `validate_signature`: for every monitor/changes entry, fetch the collection's changeset and
//! decide, as Firefox would, whether its content signature holds: payload, x5u chain, signer
//! name, signature. Changesets download in parallel within the client's in-flight cap; their
//! parsing, hashing and verification run on the blocking pool so downloads never wait for them.
//! The verification itself is the pure core in [`crate::signature`]; this module does the I/O.

mod chains;
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use reqwest::Method;
use tokio::sync::Semaphore;

use crate::client::{ClientError, ClientErrorKind, KintoClient, Request};
use crate::kinto::{ever_held_records, read_changes, ChangesEntry};
use crate::progress::Progress;
use crate::settings::{quote, HttpSettings, RawSettings, SettingError};
use crate::signature::payload::{self, ChangesetDigest};
use crate::signature::{
    self, parse_root_hash, verify_entry, ChainPolicy, ErrorCode, VerifyError, Warning,
};
use crate::{CommandError, Context};

use chains::{off_executor, ChainCache};
pub use report::{CollectionResult, SignatureCheck, SignatureReport, Verdict};

/// The latest check time accepted (9999-12-31).
const MAX_CHECK_AT: u64 = 253_402_300_799;

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpSettings,
    pub bucket: String,
    pub collection: String,
    /// Replaces the per-bucket signer names when set.
    pub signer_name: Option<String>,
    /// SHA-256 of the only acceptable root certificate.
    pub root_hash: Option<[u8; 32]>,
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

impl Config {
    pub fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let signer_name = match raw.get("SIGNER_NAME").map(str::trim) {
            None => None,
            Some(name) if is_dns_name(name) => Some(name.to_ascii_lowercase()),
            Some(name) => {
                return Err(SettingError::new(
                    "SIGNER_NAME",
                    format!("{} is not a DNS name", quote(name)),
                ))
            }
        };
        let root_hash = raw
            .get("ROOT_HASH")
            .map(|value| {
                parse_root_hash(value).map_err(|message| SettingError::new("ROOT_HASH", message))
            })
            .transpose()?;
        Ok(Config {
            http: HttpSettings::from_settings(raw, "AUTH")?,
            bucket: raw.kinto_id("BUCKET", "monitor")?,
            collection: raw.kinto_id("COLLECTION", "changes")?,
            signer_name,
            root_hash,
            check_at: raw.uint("CHECK_AT", now, MAX_CHECK_AT)?,
        })
    }

    fn policy(&self) -> ChainPolicy {
        ChainPolicy {
            at: self.check_at,
            root_hash: self.root_hash,
        }
    }
}

pub async fn run(config: &Config, ctx: &Context) -> Result<SignatureReport, CommandError> {
    let client = KintoClient::new(&config.http);
    let (entries, invalid) = read_changes(&client, &config.bucket, &config.collection).await?;
    let progress = Progress::new(ctx.progress, entries.len() as u64, "Verifying signatures");
    // More collections in progress than requests in flight, so that verification of some
    // overlaps the downloads of others; the client's semaphore still caps the requests, and
    // verification runs at most one collection per core.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let in_progress = config.http.parallel.get() + cpus;
    let run = Run {
        client: &client,
        chains: ChainCache::new(client.clone(), config.policy()),
        cpu: Semaphore::new(cpus),
        config,
    };
    let (run_ref, progress_ref) = (&run, &progress);
    let mut results: Vec<(usize, CollectionResult)> =
        futures::stream::iter(entries.into_iter().enumerate())
            .map(|(index, entry)| async move {
                let result = run_ref.check_collection(entry).await;
                progress_ref.inc();
                (index, result)
            })
            .buffer_unordered(in_progress)
            .collect()
            .await;
    progress.finish();
    results.sort_by_key(|(index, _)| *index);
    Ok(SignatureReport {
        monitor_path: format!(
            "/buckets/{}/collections/{}",
            config.bucket, config.collection
        ),
        results: results.into_iter().map(|(_, r)| r).collect(),
        invalid,
        chains: run.chains.infos(),
        root_pinned: config.root_hash.is_some(),
    })
}

/// What the checks of one run share.
struct Run<'a> {
    client: &'a KintoClient,
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
        let url = self.client.url_with_query(
            &format!("{}/changeset", entry.path()),
            &[("_expected", &entry.last_modified.to_string())],
        );
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
