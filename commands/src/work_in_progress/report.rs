//! What `work_in_progress` reports: the stale sources with their last editor and editors, and
//! the pending ones still within the limit.

use serde_json::{json, Value};

use crate::client::ClientError;
use crate::kinto::{CollectionRef, ResourceRef};
use crate::report::{client_error_json, is_finding, judge, Failure, Outcome, Report};
use crate::sources::{unreadable_json, unreadable_line, unreadable_message};
use crate::signature::format_utc;

const DAY: f64 = 86_400.0;

/// A source with changes waiting (`work-in-progress` or `to-review`).
#[derive(Debug, Clone)]
pub struct Pending {
    pub source: CollectionRef,
    pub status: String,
    /// `last_edit_date`, in seconds since the epoch (`None`: absent or unreadable).
    pub last_edit: Option<i64>,
    pub last_edit_by: Option<String>,
}

impl Pending {
    fn describe(&self, now: i64) -> String {
        let by = self.last_edit_by.as_deref().unwrap_or("nobody known");
        match self.last_edit {
            Some(at) => format!(
                "{}, last edited {:.1} days ago ({}) by {by}",
                self.status,
                (now - at) as f64 / DAY,
                format_utc(at)
            ),
            None => format!("{}, no last_edit_date, last edited by {by}", self.status),
        }
    }

    fn to_json(&self, now: i64) -> Value {
        json!({
            "bucket": self.source.bucket,
            "collection": self.source.collection,
            "collection_status": self.status,
            "last_edit_date": self.last_edit.map(format_utc),
            "age_days": self.last_edit.map(|at| ((now - at) as f64 / DAY * 10.0).round() / 10.0),
            "last_edit_by": self.last_edit_by,
        })
    }
}

/// A source pending for too long, with the members of its editors group (or why they, or its
/// records, could not be read).
#[derive(Debug, Clone)]
pub struct Stale {
    pub pending: Pending,
    pub editors: Result<Vec<String>, ClientError>,
    /// Its records or its destination's could not be read (the error is in `editors`): whether
    /// anything is pending is unknown.
    pub records_unread: bool,
}

impl Stale {
    /// Whether it could not be told pending: its records were unreadable for another reason than
    /// a 4xx answer (see [`crate::report::judge`]).
    fn undecided(&self) -> bool {
        self.records_unread && self.editors.as_ref().is_err_and(|e| !is_finding(e))
    }
}

impl Stale {
    fn code(&self) -> &'static str {
        if self.pending.status == "to-review" {
            "STALE_TO_REVIEW"
        } else {
            "STALE_WORK_IN_PROGRESS"
        }
    }

    fn to_json(&self, now: i64) -> Value {
        let mut item = self.pending.to_json(now);
        item["status"] = json!("stale");
        item["code"] = json!(self.code());
        match &self.editors {
            Ok(members) => item["editors"] = json!(members),
            Err(error) => item["error"] = client_error_json(error),
        }
        item
    }
}

#[derive(Debug, Clone)]
pub struct WipReport {
    pub check_at: i64,
    pub max_age_days: u64,
    /// How many source collections were looked at.
    pub sources: usize,
    /// Pending within the limit.
    pub fresh: Vec<Pending>,
    pub stale: Vec<Stale>,
    pub unreadable: Vec<(ResourceRef, ClientError)>,
}

impl Report for WipReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(out, "Check time: {}", format_utc(self.check_at))?;
        for stale in &self.stale {
            let what = stale.pending.describe(self.check_at);
            match &stale.editors {
                Ok(members) if members.is_empty() => writeln!(
                    out,
                    "{} NOT OK {}: {what}; editors: none",
                    stale.pending.source,
                    stale.code()
                )?,
                Ok(members) => writeln!(
                    out,
                    "{} NOT OK {}: {what}; editors: {}",
                    stale.pending.source,
                    stale.code(),
                    members.join(", ")
                )?,
                Err(error) => writeln!(
                    out,
                    "{} NOT OK {}: {what}; could not read more: {error}",
                    stale.pending.source,
                    stale.code()
                )?,
            }
        }
        for pending in &self.fresh {
            writeln!(out, "{} OK: {}", pending.source, pending.describe(self.check_at))?;
        }
        for item in &self.unreadable {
            writeln!(out, "{}", unreadable_line(item))?;
        }
        writeln!(
            out,
            "{} of {} source collection(s) pending for more than {} day(s)",
            self.stale.len(),
            self.sources,
            self.max_age_days
        )
    }

    fn to_json(&self) -> Value {
        let mut results: Vec<Value> = self.stale.iter().map(|s| s.to_json(self.check_at)).collect();
        results.extend(self.fresh.iter().map(|p| {
            let mut item = p.to_json(self.check_at);
            item["status"] = json!("ok");
            item
        }));
        results.extend(self.unreadable.iter().map(unreadable_json));
        json!({
            "check_at": self.check_at,
            "results": results,
            "totals": {
                "sources": self.sources,
                "pending": self.stale.len() + self.fresh.len(),
                "stale": self.stale.len(),
                "unreadable_resources": self.unreadable.len(),
            },
        })
    }

    fn outcome(&self) -> Outcome {
        // A stale source is a finding even when its editors could not be read; one whose
        // records could not be compared (no answer, 5xx) could not be told pending.
        let refused = self.unreadable.iter().filter(|(_, e)| is_finding(e)).count();
        let undecided = self.stale.iter().filter(|s| s.undecided()).count();
        let findings = self.stale.len() - undecided + refused;
        let could_not_tell = self.unreadable.len() - refused + undecided;
        judge(findings, could_not_tell, || {
            let mut message = format!(
                "{} source collection(s) pending for more than {} day(s)",
                self.stale.len(),
                self.max_age_days
            );
            message.push_str(&unreadable_message(&self.unreadable));
            let mut items: Vec<Value> =
                self.stale.iter().map(|s| s.to_json(self.check_at)).collect();
            items.extend(self.unreadable.iter().map(unreadable_json));
            Failure { message, items }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientErrorKind;
    use crate::report::Exit;

    fn stale(status: u16, records_unread: bool) -> Stale {
        Stale {
            pending: Pending {
                source: CollectionRef::new("main-workspace", "cfr"),
                status: "work-in-progress".into(),
                last_edit: Some(0),
                last_edit_by: Some("account:editor".into()),
            },
            editors: Err(ClientError {
                method: "GET".into(),
                url: "http://h/v1/buckets/main/collections/cfr/changeset".into(),
                attempts: 1,
                kind: ClientErrorKind::Status {
                    status,
                    detail: None,
                },
            }),
            records_unread,
        }
    }

    fn exit(stale: Vec<Stale>) -> Exit {
        WipReport {
            check_at: 30 * 86_400,
            max_age_days: 7,
            sources: stale.len(),
            fresh: Vec::new(),
            stale,
            unreadable: Vec::new(),
        }
        .outcome()
        .exit()
    }

    #[test]
    fn a_stale_source_whose_records_could_not_be_compared_could_not_be_told_pending() {
        assert_eq!(exit(vec![stale(503, true)]), Exit::Incomplete);
        // Refused (4xx): a finding, as everywhere.
        assert_eq!(exit(vec![stale(404, true)]), Exit::Problems);
        // Its editors alone unreadable: still stale.
        assert_eq!(exit(vec![stale(503, false)]), Exit::Problems);
        assert_eq!(exit(vec![stale(503, true), stale(503, false)]), Exit::Problems);
    }
}
