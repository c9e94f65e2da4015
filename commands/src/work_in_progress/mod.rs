//! `work_in_progress`: on a writer server, every signed source collection (see
//! [`crate::sources`]) left in `work-in-progress` or `to-review` for longer than `MAX_AGE_DAYS`
//! since its `last_edit_date` is reported with its last editor and the members of its
//! `{cid}-editors` group. A work-in-progress source whose records equal its destination's (all
//! fields but `last_modified` and `schema`, as consistency_checks compares) has nothing pending
//! and is left out. Requests: the sources' listings, then for each stale source only, its
//! editors group, and for a stale work-in-progress one, its and its destination's changesets.

mod report;

use serde::Deserialize;

use crate::client::ClientError;
use crate::kinto::Kinto;
use crate::command::{Command, CommandConfig, Runs};
use crate::consistency_checks::{compare, read_changeset, Side};
use crate::kinto::ServerInfo;
use crate::monitored::check_all;
use crate::settings::{ServerSettings, RawSettings, Setting, SettingError};
use crate::sources::{check_at, list_sources, Source, CHECK_AT};
use crate::{CommandError, Context};

pub use report::{Pending, Stale, WipReport};

pub const COMMAND: Command = Command {
    name: "work_in_progress",
    about: "List source collections whose changes have waited too long in work-in-progress or to-review (writer server)",
    problems_error_type: "WorkInProgressError",
    writer: true,
    groups: &[],
    settings: &[&MAX_AGE_DAYS, &CHECK_AT],
    server_tag: Command::kinto_server_tag,
    runs: Runs::of::<Config>(),
};

pub const MAX_AGE_DAYS: Setting = Setting::new(
    "MAX_AGE_DAYS",
    "DAYS",
    "Changes pending for more than this many days since the last edit are stale",
)
.default("7");

const DAY: i64 = 86_400;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub max_age_days: u64,
    /// "Now", in seconds since the epoch.
    pub check_at: i64,
}

impl CommandConfig for Config {
    type Report = WipReport;

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        Ok(Config {
            server: ServerSettings::reading_sources(raw)?,
            max_age_days: raw.uint(&MAX_AGE_DAYS, 36_500)?,
            check_at: check_at(raw)?,
        })
    }

    async fn run(&self, ctx: &Context) -> Result<WipReport, CommandError> {
        run(self, ctx).await
    }
}

/// The states in which changes wait for someone.
const PENDING: [&str; 2] = ["work-in-progress", "to-review"];

#[derive(Deserialize)]
struct Group {
    data: GroupData,
}

#[derive(Deserialize)]
struct GroupData {
    #[serde(default)]
    members: Vec<String>,
}

pub async fn run(config: &Config, ctx: &Context) -> Result<WipReport, CommandError> {
    let client = &ctx.kinto(&config.server);
    let signer = ServerInfo::fetch(client).await?.require_signer()?;
    let listed = list_sources(client, &signer).await;
    let sources = listed.sources.len();
    let limit = config.max_age_days as i64 * DAY;
    let mut fresh = Vec::new();
    let mut candidates = Vec::new();
    for source in listed.sources {
        let Some(status) = source.text("status").filter(|s| PENDING.contains(s)) else {
            continue;
        };
        let pending = Pending {
            source: source.workflow.source.clone(),
            status: status.to_string(),
            last_edit: source.date("last_edit_date"),
            last_edit_by: source.text("last_edit_by").map(String::from),
        };
        match pending.last_edit {
            Some(edited) if config.check_at - edited <= limit => fresh.push(pending),
            _ => candidates.push((source, pending)),
        }
    }
    let in_progress = ctx.http.parallel();
    let checked = check_all(ctx, "Checking pending changes", in_progress, candidates, |(source, pending)| async move {
        check_stale(client, source, pending, config.check_at).await
    })
    .await;
    Ok(WipReport {
        check_at: config.check_at,
        max_age_days: config.max_age_days,
        sources,
        fresh,
        stale: checked.into_iter().flatten().collect(),
        unreadable: listed.unreadable,
    })
}

/// A stale candidate: left out when it is work in progress with nothing pending, otherwise with
/// its editors.
async fn check_stale(
    client: &Kinto,
    source: Source,
    pending: Pending,
    now: i64,
) -> Option<Stale> {
    let workflow = &source.workflow;
    let expected = (now.max(0) as u64) * 1000;
    if pending.status == "work-in-progress" {
        let (src, dest) = futures::join!(
            read_changeset(client, &workflow.source, expected),
            read_changeset(client, &workflow.destination, expected)
        );
        match (src, dest) {
            (Ok(src), Ok(dest)) => {
                let diff = compare(
                    (Side::Source, &workflow.source, &src.changes),
                    (Side::Destination, &workflow.destination, &dest.changes),
                );
                if diff.is_empty() {
                    return None;
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                return Some(Stale {
                    pending,
                    editors: Err(error),
                    records_unread: true,
                })
            }
        }
    }
    let editors = read_editors(client, &source).await;
    Some(Stale {
        pending,
        editors,
        records_unread: false,
    })
}

/// The members of `{cid}-editors` in the source bucket (none when the group does not exist).
async fn read_editors(client: &Kinto, source: &Source) -> Result<Vec<String>, ClientError> {
    let src = &source.workflow.source;
    let path = format!("/buckets/{}/groups/{}-editors", src.bucket, src.collection);
    match client.get_json::<Group>(&path, &[]).await {
        Ok((group, _)) => Ok(group.data.members),
        Err(error) if error.status() == Some(404) => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_is_required_and_the_age_is_in_days() {
        assert_eq!(
            Config::from_settings(&RawSettings::new()).unwrap_err().name,
            "AUTH"
        );
        let c = Config::from_settings(&RawSettings::from_pairs(&[("AUTH", "u:p")])).unwrap();
        assert_eq!(c.max_age_days, 7);
        let raw = RawSettings::from_pairs(&[("AUTH", "u:p"), ("MAX_AGE_DAYS", "a week")]);
        assert_eq!(Config::from_settings(&raw).unwrap_err().name, "MAX_AGE_DAYS");
    }
}
