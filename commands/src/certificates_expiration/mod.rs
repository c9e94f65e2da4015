//! `certificates_expiration`: every x5u chain that signs a monitored collection (every entry of
//! `metadata.signatures[]`, else `metadata.signature`, of each changeset) is downloaded once and
//! parsed; the certificate of the whole chain that expires first must be further from its
//! notAfter than the margin: clamp(lifespan × `PERCENTAGE_REMAINING_VALIDITY` %,
//! `MIN_REMAINING_DAYS`, `MAX_REMAINING_DAYS`) days. One changeset request per collection, one
//! download per distinct x5u; the x5u fetching and certificate parsing are validate_signature's.

mod report;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use crate::client::ClientError;
use crate::kinto::Kinto;
use crate::command::{Command, CommandConfig, Runs};
use crate::kinto::{ChangesEntry, CollectionRef};
use crate::monitored::{check_all, MonitorList};
use crate::settings::shared::{AUTH, MONITOR, MONITOR_BUCKET, MONITOR_COLLECTION};
use crate::settings::{ServerSettings, RawSettings, Setting, SettingError};
use crate::signature::chain::{self, ExpiryMargin};
use crate::signature::payload::signature_entries;
use crate::validate_signature::chains::{download, off_executor, x5u_error, x5u_url};
use crate::validate_signature::{CHECK_AT, MAX_CHECK_AT};
use crate::{CommandError, Context};

pub use report::{ChainReport, ChainUse, ChainVerdict, ExpirationReport};

pub const COMMAND: Command = Command {
    name: "certificates_expiration",
    about: "Check that no certificate of the x5u chains in use is near its expiry date",
    problems_error_type: "CertificateExpirationError",
    writer: false,
    groups: &[MONITOR],
    settings: &[
        &PERCENTAGE_REMAINING_VALIDITY,
        &MIN_REMAINING_DAYS,
        &MAX_REMAINING_DAYS,
        &CHECK_AT,
    ],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const PERCENTAGE_REMAINING_VALIDITY: Setting = Setting::new(
    "PERCENTAGE_REMAINING_VALIDITY",
    "PERCENT",
    "Near expiry when less than this percentage of the certificate's lifespan is left",
)
.default("10");
pub const MIN_REMAINING_DAYS: Setting = Setting::new(
    "MIN_REMAINING_DAYS",
    "DAYS",
    "The margin is at least this many days, whatever the lifespan",
)
.default("7");
pub const MAX_REMAINING_DAYS: Setting = Setting::new(
    "MAX_REMAINING_DAYS",
    "DAYS",
    "The margin is at most this many days, whatever the lifespan",
)
.default("60");

/// About 27 years: more margin than any certificate lives.
const MAX_DAYS: u64 = 10_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub bucket: String,
    pub collection: String,
    pub margin: ExpiryMargin,
    /// The time the chains are judged at, in seconds since the epoch.
    pub check_at: u64,
}

impl CommandConfig for Config {
    type Report = ExpirationReport;

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let margin = ExpiryMargin {
            percent: raw.uint(&PERCENTAGE_REMAINING_VALIDITY, 100)?,
            min_days: raw.uint(&MIN_REMAINING_DAYS, MAX_DAYS)?,
            max_days: raw.uint(&MAX_REMAINING_DAYS, MAX_DAYS)?,
        };
        if margin.max_days < margin.min_days {
            return Err(SettingError::new(
                MAX_REMAINING_DAYS.env,
                format!(
                    "{} is less than MIN_REMAINING_DAYS ({})",
                    margin.max_days, margin.min_days
                ),
            ));
        }
        Ok(Config {
            server: ServerSettings::from_settings(raw, &AUTH)?,
            bucket: raw.kinto_id(&MONITOR_BUCKET)?,
            collection: raw.kinto_id(&MONITOR_COLLECTION)?,
            margin,
            check_at: raw.uint_opt(&CHECK_AT, MAX_CHECK_AT)?.unwrap_or_else(now),
        })
    }

    async fn run(&self, ctx: &Context) -> Result<ExpirationReport, CommandError> {
        run(self, ctx).await
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct Changeset {
    metadata: Value,
}

/// The x5u URLs a collection's changeset signs with, or why it could not be read.
async fn x5us_of(client: &Kinto, entry: &ChangesEntry) -> Result<Vec<String>, ClientError> {
    let expected = entry.last_modified.to_string();
    let (changeset, _) = client
        .get_json::<Changeset>(
            &format!("{}/changeset", entry.path()),
            &[("_expected", expected.as_str())],
        )
        .await?;
    let mut x5us: Vec<String> = signature_entries(&changeset.metadata)
        .into_iter()
        .filter_map(|s| s.x5u)
        .collect();
    x5us.dedup();
    Ok(x5us)
}

/// Download and judge one chain.
async fn check_chain(client: &Kinto, config: &Config, x5u: &str) -> ChainVerdict {
    let url = match x5u_url(x5u) {
        Ok(url) => url,
        Err(error) => return ChainVerdict::Bad(error),
    };
    let pem = match download(client, &url).await {
        Ok(pem) => pem,
        Err(error) => return ChainVerdict::Unreadable(x5u_error(&error), error),
    };
    match off_executor(move || chain::summaries(&pem)).await {
        Ok(certs) => ChainVerdict::checked(certs, &config.margin, config.check_at),
        Err(error) => ChainVerdict::Bad(error),
    }
}

pub async fn run(config: &Config, ctx: &Context) -> Result<ExpirationReport, CommandError> {
    let client = &ctx.kinto(&config.server);
    let monitor = CollectionRef::new(&config.bucket, &config.collection);
    let list = MonitorList::read(client, monitor).await?;
    let in_progress = ctx.http.parallel();
    let read = check_all(ctx, "Reading signatures", in_progress, list.entries, |entry| async move {
        let x5us = x5us_of(client, &entry).await;
        (entry, x5us)
    })
    .await;
    // Each chain once, with the collections that use it.
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unreadable = Vec::new();
    let mut unsigned = Vec::new();
    for (entry, x5us) in read {
        let name = format!("{}/{}", entry.bucket, entry.collection);
        match x5us {
            Ok(x5us) if x5us.is_empty() => unsigned.push(name),
            Ok(x5us) => {
                for x5u in x5us {
                    users.entry(x5u).or_default().push(name.clone());
                }
            }
            Err(error) => unreadable.push((name, error)),
        }
    }
    for collections in users.values_mut() {
        collections.sort();
    }
    let chains = check_all(ctx, "Checking chains", in_progress, users.into_iter().collect(), |(x5u, collections)| async move {
        let verdict = check_chain(client, config, &x5u).await;
        ChainUse {
            x5u,
            collections,
            verdict,
        }
    })
    .await;
    Ok(ExpirationReport {
        monitor_path: list.monitor.path(),
        check_at: config.check_at,
        chains,
        unreadable,
        unsigned,
        invalid: list.invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_telescopes_and_bad_values_are_named() {
        let c = Config::from_settings(&RawSettings::new()).unwrap();
        assert_eq!(c.margin, ExpiryMargin::DEFAULT);
        assert!(c.check_at.abs_diff(now()) < 60);
        let c = Config::from_settings(&RawSettings::from_pairs(&[("CHECK_AT", "1700000000")]))
            .unwrap();
        assert_eq!(c.check_at, 1_700_000_000);
        for (name, value) in [
            ("PERCENTAGE_REMAINING_VALIDITY", "101"),
            ("MIN_REMAINING_DAYS", "-1"),
            ("MAX_REMAINING_DAYS", "3"),
            ("CHECK_AT", "soon"),
        ] {
            let err =
                Config::from_settings(&RawSettings::from_pairs(&[(name, value)])).unwrap_err();
            assert_eq!(err.name, name, "{value}");
        }
    }
}
