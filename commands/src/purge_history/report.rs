//! What `purge_history` reports: per (bucket, user id) pair, the entries deleted (or that a dry
//! run would delete), or why the pair was left untouched or not finished; then the totals.

use serde_json::{json, Value};

use super::pair::{Pair, Purge};
use crate::client::ClientError;
use crate::report::{client_error_json, is_finding, judge, Failure, Outcome, Report};
use crate::signature::format_utc;

#[derive(Debug, Clone)]
pub struct PurgeReport {
    /// The cutoff, in epoch milliseconds.
    pub before_ms: u64,
    pub max_age_days: u64,
    pub max_delete: Option<u64>,
    pub dry_run: bool,
    /// Bucket by bucket, in the settings' order.
    pub results: Vec<(Pair, Purge)>,
}

impl Purge {
    /// Entries counted before the cutoff, when known.
    fn counted(&self) -> Option<u64> {
        match self {
            Purge::WouldDelete { counted }
            | Purge::Deleted { counted, .. }
            | Purge::OverCap { counted, .. }
            | Purge::DeleteFailed { counted, .. }
            | Purge::VerifyFailed { counted, .. }
            | Purge::Left { counted, .. } => Some(*counted),
            Purge::CountFailed(_) => None,
        }
    }

    fn deleted(&self) -> u64 {
        match self {
            Purge::Deleted { deleted, .. }
            | Purge::DeleteFailed { deleted, .. }
            | Purge::VerifyFailed { deleted, .. }
            | Purge::Left { deleted, .. } => *deleted,
            _ => 0,
        }
    }

    fn error(&self) -> Option<&ClientError> {
        match self {
            Purge::CountFailed(error)
            | Purge::DeleteFailed { error, .. }
            | Purge::VerifyFailed { error, .. } => Some(error),
            _ => None,
        }
    }

    fn is_failure(&self) -> bool {
        !matches!(self, Purge::WouldDelete { .. } | Purge::Deleted { .. })
    }

    /// A failure that is a finding (over the cap, or a 4xx answer: a bucket that does not
    /// exist or that `AUTH` may not write) rather than one that could not tell (no answer, 5xx,
    /// entries left after the deletes).
    fn is_finding(&self) -> bool {
        match self {
            Purge::OverCap { .. } => true,
            _ => self.error().is_some_and(is_finding),
        }
    }

    fn code(&self) -> Option<&'static str> {
        match self {
            Purge::OverCap { .. } => Some("OVER_MAX_DELETE"),
            Purge::Left { .. } => Some("ENTRIES_LEFT"),
            _ => self.error().map(ClientError::code),
        }
    }

    fn status(&self) -> &'static str {
        match self {
            Purge::WouldDelete { .. } => "would_delete",
            Purge::Deleted { .. } => "deleted",
            Purge::OverCap { .. } => "over_cap",
            Purge::Left { .. } => "entries_left",
            _ => "error",
        }
    }

    /// What follows `<pair>: ` on its line.
    fn describe(&self, dry_run: bool) -> String {
        match self {
            Purge::WouldDelete { counted } => {
                format!("{counted} entries would be purged (dry run).")
            }
            Purge::Deleted { deleted, .. } => format!("{deleted} entries purged from history."),
            Purge::OverCap { counted, cap } => format!(
                "NOT OK OVER_MAX_DELETE: {counted} entries older than the cutoff, more than \
                 MAX_DELETE ({cap}): {}",
                if dry_run {
                    "would be left untouched"
                } else {
                    "left untouched"
                }
            ),
            Purge::CountFailed(error) => format!(
                "NOT OK: could not count the entries, left untouched: {error}{}",
                hint(error)
            ),
            Purge::DeleteFailed {
                counted,
                deleted,
                error,
            } => format!(
                "NOT OK: {deleted} of {counted} entries purged, then: {error}{}",
                hint(error)
            ),
            Purge::VerifyFailed {
                counted,
                deleted,
                error,
            } => format!(
                "NOT OK: {deleted} of {counted} entries purged, then could not count what is \
                 left: {error}"
            ),
            Purge::Left {
                deleted, remaining, ..
            } => format!(
                "NOT OK ENTRIES_LEFT: {deleted} entries purged, {remaining} older than the \
                 cutoff still there"
            ),
        }
    }
}

/// What a 403 means on the history endpoint.
fn hint(error: &ClientError) -> &'static str {
    if error.status() == Some(403) {
        "; the bucket does not exist, or AUTH may not read (count) or write (delete) its history"
    } else {
        ""
    }
}

fn pair_name(pair: &Pair) -> String {
    format!("{} ({})", pair.bucket, pair.user_id)
}

fn result_json((pair, purge): &(Pair, Purge)) -> Value {
    let mut item = json!({
        "bucket": pair.bucket,
        "user_id": pair.user_id,
        "status": purge.status(),
        "counted": purge.counted(),
        "deleted": purge.deleted(),
    });
    if let Some(code) = purge.code() {
        item["code"] = json!(code);
    }
    if let Some(error) = purge.error() {
        item["error"] = client_error_json(error);
    }
    if let Purge::Left { remaining, .. } = purge {
        item["remaining"] = json!(remaining);
    }
    item
}

impl PurgeReport {
    fn before_date(&self) -> String {
        format_utc((self.before_ms / 1000) as i64)
    }

    fn deleted(&self) -> u64 {
        self.results.iter().map(|(_, p)| p.deleted()).sum()
    }

    fn would_delete(&self) -> u64 {
        self.results
            .iter()
            .filter_map(|(_, p)| match p {
                Purge::WouldDelete { counted } => Some(*counted),
                _ => None,
            })
            .sum()
    }

    fn failed(&self) -> impl Iterator<Item = &(Pair, Purge)> {
        self.results.iter().filter(|(_, p)| p.is_failure())
    }
}

impl Report for PurgeReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{} history entries older than {} ({} days, _before=\"{}\")",
            if self.dry_run {
                "Dry run (DRY_RUN=0 deletes): counting"
            } else {
                "Purging"
            },
            self.before_date(),
            self.max_age_days,
            self.before_ms
        )?;
        for (pair, purge) in &self.results {
            writeln!(out, "{}: {}", pair_name(pair), purge.describe(self.dry_run))?;
        }
        let failed = self.failed().count();
        if self.dry_run {
            writeln!(
                out,
                "Total: {} entries would be purged ({} pair(s), {failed} failed); nothing was deleted",
                self.would_delete(),
                self.results.len()
            )
        } else {
            writeln!(
                out,
                "Total: {} entries purged from history ({} pair(s), {failed} failed)",
                self.deleted(),
                self.results.len()
            )
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "dry_run": self.dry_run,
            "before": self.before_ms,
            "before_date": self.before_date(),
            "max_age_days": self.max_age_days,
            "max_delete": self.max_delete,
            "results": self.results.iter().map(result_json).collect::<Vec<_>>(),
            "totals": {
                "pairs": self.results.len(),
                "counted": self.results.iter().filter_map(|(_, p)| p.counted()).sum::<u64>(),
                "would_delete": self.would_delete(),
                "deleted": self.deleted(),
                "failed": self.failed().count(),
            },
        })
    }

    fn outcome(&self) -> Outcome {
        let findings = self.failed().filter(|(_, p)| p.is_finding()).count();
        let could_not_tell = self.failed().count() - findings;
        judge(findings, could_not_tell, || {
            let (pair, purge) = self.failed().next().expect("a failed pair");
            Failure {
                message: format!(
                    "{} of {} history purge(s) failed, first {}: {}",
                    self.failed().count(),
                    self.results.len(),
                    pair_name(pair),
                    purge.describe(self.dry_run)
                ),
                items: self.failed().map(result_json).collect(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientErrorKind;
    use crate::report::Exit;

    fn error(status: u16) -> ClientError {
        ClientError {
            method: "GET".into(),
            url: "http://h/v1/buckets/b/history".into(),
            attempts: 1,
            kind: ClientErrorKind::Status {
                status,
                detail: None,
            },
        }
    }

    fn exit(purges: Vec<Purge>) -> Exit {
        let results = purges
            .into_iter()
            .map(|p| {
                let pair = Pair {
                    bucket: "b".into(),
                    user_id: "account:a".into(),
                };
                (pair, p)
            })
            .collect();
        PurgeReport {
            before_ms: 1_000,
            max_age_days: 730,
            max_delete: Some(10),
            dry_run: false,
            results,
        }
        .outcome()
        .exit()
    }

    #[test]
    fn refusals_and_the_cap_are_findings_unanswered_requests_could_not_tell() {
        let done = || Purge::Deleted {
            counted: 3,
            deleted: 3,
        };
        assert_eq!(exit(vec![done()]), Exit::Ok);
        assert_eq!(exit(vec![done(), Purge::CountFailed(error(403))]), Exit::Problems);
        assert_eq!(exit(vec![Purge::OverCap { counted: 11, cap: 10 }]), Exit::Problems);
        assert_eq!(exit(vec![done(), Purge::CountFailed(error(503))]), Exit::Incomplete);
        let left = Purge::Left {
            counted: 3,
            deleted: 2,
            remaining: 1,
        };
        assert_eq!(exit(vec![left]), Exit::Incomplete);
        let failed = Purge::DeleteFailed {
            counted: 3,
            deleted: 1,
            error: error(503),
        };
        assert_eq!(
            exit(vec![failed, Purge::CountFailed(error(403))]),
            Exit::Problems
        );
    }
}
