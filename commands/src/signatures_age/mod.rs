//! `signatures_age`: on a writer server, every signed source collection (see [`crate::sources`])
//! must have been signed within `MAX_SIGNATURE_AGE_HOURS` of now (or of `--at`), or within its
//! own limit in `MAX_SIGNATURE_AGE_OVERRIDES`; its age is now − `last_signature_date`. Requests:
//! `GET /v1/`, one listing per per-bucket resource (its pages) and one read per per-collection
//! resource, whatever the number of collections.

mod report;

use std::collections::BTreeMap;

use crate::command::{Command, CommandConfig, Runs};
use crate::kinto::{CollectionRef, ServerInfo};
use crate::settings::{is_kinto_id, quote, ServerSettings, RawSettings, Setting, SettingError};
use crate::sources::{check_at, list_sources, CHECK_AT};
use crate::{CommandError, Context};

pub use report::{Age, AgeReport, SourceAge};

pub const COMMAND: Command = Command {
    name: "signatures_age",
    about: "Check that every signed source collection was signed recently (writer server)",
    problems_error_type: "SignatureAgeError",
    writer: true,
    groups: &[],
    settings: &[&MAX_SIGNATURE_AGE_HOURS, &MAX_SIGNATURE_AGE_OVERRIDES, &CHECK_AT],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const MAX_SIGNATURE_AGE_HOURS: Setting = Setting::new(
    "MAX_SIGNATURE_AGE_HOURS",
    "HOURS",
    "A source whose last signature is older than this many hours is unhealthy",
)
.default("168");
pub const MAX_SIGNATURE_AGE_OVERRIDES: Setting = Setting::new(
    "MAX_SIGNATURE_AGE_OVERRIDES",
    "PAIRS",
    "Per-source limits, `bucket/collection=hours` pairs separated by `;` or `,`",
);

/// A hundred years.
const MAX_HOURS: u64 = 876_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub max_age_hours: u64,
    /// Limits of some source collections, in hours.
    pub overrides: BTreeMap<CollectionRef, u64>,
    /// "Now", in seconds since the epoch.
    pub check_at: i64,
}

/// `bucket/collection=hours` pairs separated by `;` or `,`.
fn parse_overrides(value: &str) -> Result<BTreeMap<CollectionRef, u64>, String> {
    let mut overrides = BTreeMap::new();
    for pair in value.split([';', ',']).map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |why: &str| format!("{} {why}", quote(pair));
        let (name, hours) = pair
            .split_once('=')
            .ok_or_else(|| bad("is not `bucket/collection=hours`"))?;
        let (bid, cid) = name
            .trim()
            .split_once('/')
            .filter(|(b, c)| is_kinto_id(b) && is_kinto_id(c))
            .ok_or_else(|| bad("does not name a collection as `bucket/collection`"))?;
        let hours: u64 = hours
            .trim()
            .parse()
            .ok()
            .filter(|h| *h <= MAX_HOURS)
            .ok_or_else(|| bad(&format!("has no whole number of hours up to {MAX_HOURS}")))?;
        if overrides.insert(CollectionRef::new(bid, cid), hours).is_some() {
            return Err(bad("names a collection already given"));
        }
    }
    Ok(overrides)
}

impl CommandConfig for Config {
    type Report = AgeReport;

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let server = ServerSettings::reading_sources(raw)?;
        let overrides = parse_overrides(raw.get(&MAX_SIGNATURE_AGE_OVERRIDES).unwrap_or(""))
            .map_err(|m| SettingError::new(MAX_SIGNATURE_AGE_OVERRIDES.env, m))?;
        Ok(Config {
            server,
            max_age_hours: raw.uint(&MAX_SIGNATURE_AGE_HOURS, MAX_HOURS)?,
            overrides,
            check_at: check_at(raw)?,
        })
    }

    async fn run(&self, ctx: &Context) -> Result<AgeReport, CommandError> {
        let client = ctx.kinto(&self.server);
        let signer = ServerInfo::fetch(&client).await?.require_signer()?;
        let listed = list_sources(&client, &signer).await;
        let mut sources: Vec<SourceAge> = listed
            .sources
            .into_iter()
            .map(|source| {
                let limit_hours = self
                    .overrides
                    .get(&source.workflow.source)
                    .copied()
                    .unwrap_or(self.max_age_hours);
                let age = match source.date("last_signature_date") {
                    Some(signed) => Age::Signed {
                        signed,
                        seconds: self.check_at - signed,
                    },
                    None => Age::NeverSigned,
                };
                SourceAge {
                    source: source.workflow.source,
                    age,
                    limit_hours,
                }
            })
            .collect();
        // Oldest first; never signed before anything.
        sources.sort_by_key(|s| std::cmp::Reverse(s.age.sort_key()));
        Ok(AgeReport {
            check_at: self.check_at,
            sources,
            unreadable: listed.unreadable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_pairs_and_bad_ones_are_named() {
        let o = parse_overrides(" main-workspace/cfr=24; staging/addons = 2 ,a/b=0,").unwrap();
        assert_eq!(o[&CollectionRef::new("main-workspace", "cfr")], 24);
        assert_eq!(o[&CollectionRef::new("staging", "addons")], 2);
        assert_eq!(o[&CollectionRef::new("a", "b")], 0);
        for bad in ["main/cfr", "main=3", "../x/y=3", "a/b=-1", "a/b=1;a/b=2", "a/b=x"] {
            assert!(parse_overrides(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_overrides("a/b").unwrap_err(),
            "\"a/b\" is not `bucket/collection=hours`"
        );
    }

    #[test]
    fn auth_is_required_and_settings_are_named() {
        assert_eq!(
            Config::from_settings(&RawSettings::new()).unwrap_err().name,
            "AUTH"
        );
        let c = Config::from_settings(&RawSettings::from_pairs(&[
            ("AUTH", "u:p"),
            ("CHECK_AT", "1800000000"),
        ]))
        .unwrap();
        assert_eq!((c.max_age_hours, c.check_at), (168, 1_800_000_000));
        for (name, value) in [
            ("MAX_SIGNATURE_AGE_HOURS", "a week"),
            ("MAX_SIGNATURE_AGE_OVERRIDES", "x=1"),
            ("CHECK_AT", "-1"),
        ] {
            let raw = RawSettings::from_pairs(&[("AUTH", "u:p"), (name, value)]);
            assert_eq!(Config::from_settings(&raw).unwrap_err().name, name, "{value}");
        }
    }
}
