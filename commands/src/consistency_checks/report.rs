//! The consistency report: the original's `bid/cid OK` / `bid/cid SKIP (…)` lines, one
//! `INCONSISTENT` line per inconsistency with the differing pairs under it, and the run's verdict
//! (`Inconsistencies detected on …`, exit 1; a collection that could not be read, exit 3).

use serde::Serialize;
use serde_json::{json, Value};

use super::{Check, Inconsistency, Verdict};
use crate::kinto::{CollectionRef, SignerStatus};
use crate::report::{client_error_json, judge, Failure, Outcome, Report};

#[derive(Debug, Clone)]
pub struct ConsistencyReport {
    pub monitor: CollectionRef,
    /// In `bucket, collection` order, unusable monitor entries last.
    pub checks: Vec<Check>,
    /// Preview entries of the monitor collection, not checked on their own.
    pub previews: usize,
}

#[derive(Serialize, Default)]
struct Counts {
    collections: usize,
    ok: usize,
    skipped: usize,
    inconsistent: usize,
    errors: usize,
    previews_ignored: usize,
}

fn reason(inconsistency: &Inconsistency) -> String {
    match inconsistency {
        Inconsistency::InvalidEntry(why) => format!("invalid monitor entry: {why}"),
        Inconsistency::UnknownCollection => "no signer resource publishes this collection".into(),
        Inconsistency::StatusMissing => "\"status\" attribute missing".into(),
        Inconsistency::UnexpectedStatus(status) => format!("unexpected status {status:?}"),
        Inconsistency::CollectionMissing { side, collection } => {
            format!("the {side} {collection} does not exist")
        }
        Inconsistency::RecordsDiffer(_) => "records differ".into(),
    }
}

impl ConsistencyReport {
    fn counts(&self) -> Counts {
        let mut c = Counts {
            collections: self.checks.len(),
            previews_ignored: self.previews,
            ..Counts::default()
        };
        for check in &self.checks {
            match check.verdict {
                Verdict::Ok => c.ok += 1,
                Verdict::Skip(_) => c.skipped += 1,
                Verdict::Inconsistent(_) => c.inconsistent += 1,
                Verdict::Unreadable { .. } => c.errors += 1,
            }
        }
        c
    }

    fn check_json(check: &Check) -> Value {
        let mut item = json!({
            "collection": check.identifier,
            "source": check.source.as_ref().map(ToString::to_string),
            "source_status": check.status,
        });
        let extra = match &check.verdict {
            Verdict::Ok => json!({"result": "ok"}),
            Verdict::Skip(why) => json!({"result": "skipped", "reason": why}),
            Verdict::Inconsistent(inconsistency) => {
                let mut v = json!({"result": "inconsistent", "code": inconsistency.code(),
                                   "reason": reason(inconsistency)});
                if let Inconsistency::RecordsDiffer(diffs) = inconsistency {
                    v["diffs"] = diffs.iter().map(|d| d.to_json()).collect();
                }
                v
            }
            Verdict::Unreadable {
                side,
                collection,
                error,
            } => json!({"result": "error", "code": error.code(), "side": side,
                        "unreadable": collection.to_string(),
                        "error": client_error_json(error)}),
        };
        if let (Value::Object(item), Value::Object(extra)) = (&mut item, extra) {
            item.extend(extra);
        }
        item
    }

    fn identifiers(&self, pick: fn(&Verdict) -> bool) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| pick(&c.verdict))
            .map(|c| c.identifier.as_str())
            .collect()
    }
}

impl Report for ConsistencyReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(out, "Read collection list from {}", self.monitor.path())?;
        for check in &self.checks {
            let id = &check.identifier;
            match &check.verdict {
                Verdict::Ok => writeln!(out, "{id} OK")?,
                Verdict::Skip(why) => writeln!(out, "{id} SKIP ({why})")?,
                Verdict::Inconsistent(Inconsistency::RecordsDiffer(diffs)) => {
                    let status = check.status.as_ref().map_or("None", SignerStatus::as_str);
                    writeln!(out, "{id} INCONSISTENT: records differ (status {status})")?;
                    for diff in diffs {
                        writeln!(out, "    {}", diff.summary())?;
                    }
                }
                Verdict::Inconsistent(other) => {
                    writeln!(out, "{id} INCONSISTENT: {}", reason(other))?
                }
                Verdict::Unreadable {
                    side,
                    collection,
                    error,
                } => writeln!(
                    out,
                    "{id} ERROR: could not read the {side} {collection}: {error}"
                )?,
            }
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        json!({
            "results": self.checks.iter().map(Self::check_json).collect::<Vec<_>>(),
            "totals": self.counts(),
        })
    }

    fn outcome(&self) -> Outcome {
        let inconsistent = self.identifiers(|v| matches!(v, Verdict::Inconsistent(_)));
        let unreadable: Vec<&Check> = self
            .checks
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Unreadable { .. }))
            .collect();
        let items: Vec<Value> = self
            .checks
            .iter()
            .filter(|c| {
                matches!(
                    c.verdict,
                    Verdict::Inconsistent(_) | Verdict::Unreadable { .. }
                )
            })
            .map(Self::check_json)
            .collect();
        // A 404 on any side is already an inconsistency; what is left unreadable could not be
        // checked.
        judge(inconsistent.len(), unreadable.len(), || {
            let mut parts = Vec::new();
            if let Some(Verdict::Unreadable { error, .. }) = unreadable.first().map(|c| &c.verdict)
            {
                parts.push(format!(
                    "Could not check {} collection(s): {error}",
                    unreadable.len()
                ));
            }
            if !inconsistent.is_empty() {
                parts.push(format!(
                    "Inconsistencies detected on {}",
                    inconsistent.join(", ")
                ));
            }
            Failure {
                message: parts.join("; "),
                items,
            }
        })
    }
}
