//! The comparison report: one line per collection listed on either server, with its lag (the
//! source's timestamp minus the target's) and, for a difference, how long ago the source changed;
//! the records' differences under it; the verdict (a difference older than the margin, an entry
//! only on the target, records that differ at one timestamp: exit 1; a collection that could not
//! be read: exit 3).

use serde::Serialize;
use serde_json::{json, Value};

use crate::client::ClientError;
use crate::consistency_checks::diff::PairDiff;
use crate::kinto::{CollectionRef, InvalidEntry};
use crate::report::{client_error_json, is_finding, judge, Failure, Outcome, Report};

/// One collection, as both servers serve it.
#[derive(Debug, Clone)]
pub struct Compared {
    pub collection: CollectionRef,
    /// Its timestamp on the source (its changeset's, or its monitor entry's when only listed).
    pub source_timestamp: Option<u64>,
    pub target_timestamp: Option<u64>,
    /// How the records differ (with `COMPARE_RECORDS`, when they do).
    pub records: Option<PairDiff>,
    /// The server (`source`, `target`) that could not serve it, and why.
    pub error: Option<(&'static str, ClientError)>,
}

/// How the servers differ about a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// Listed by the source's monitor only.
    MissingOnTarget,
    /// Listed by the target's monitor only: the source keeps no trace of when it went, so this
    /// is never taken for propagation.
    ExtraOnTarget,
    Timestamps,
    /// Same timestamp, other records: nothing is propagating.
    RecordsDiffer,
}

impl Difference {
    pub fn code(self) -> &'static str {
        match self {
            Difference::MissingOnTarget => "MISSING_ON_TARGET",
            Difference::ExtraOnTarget => "EXTRA_ON_TARGET",
            Difference::Timestamps => "TIMESTAMPS_DIFFER",
            Difference::RecordsDiffer => "RECORDS_DIFFER",
        }
    }
}

impl Compared {
    pub fn listed_once(collection: CollectionRef, source: Option<u64>, target: Option<u64>) -> Self {
        Compared {
            collection,
            source_timestamp: source,
            target_timestamp: target,
            records: None,
            error: None,
        }
    }

    pub fn read(
        collection: CollectionRef,
        source: u64,
        target: u64,
        records: Option<PairDiff>,
    ) -> Self {
        Compared {
            records,
            ..Compared::listed_once(collection, Some(source), Some(target))
        }
    }

    pub fn unreadable(collection: CollectionRef, side: &'static str, error: ClientError) -> Self {
        Compared {
            error: Some((side, error)),
            ..Compared::listed_once(collection, None, None)
        }
    }

    /// How the servers differ, if they do (`None` for an unreadable collection too).
    pub fn difference(&self) -> Option<Difference> {
        if self.error.is_some() {
            return None;
        }
        match (self.source_timestamp, self.target_timestamp) {
            (Some(_), None) => Some(Difference::MissingOnTarget),
            (None, Some(_)) => Some(Difference::ExtraOnTarget),
            (Some(s), Some(t)) if s != t => Some(Difference::Timestamps),
            _ if self.records.is_some() => Some(Difference::RecordsDiffer),
            _ => None,
        }
    }

    /// The source's timestamp minus the target's, in seconds (negative: the target is ahead).
    pub fn lag_seconds(&self) -> Option<f64> {
        Some((self.source_timestamp? as f64 - self.target_timestamp? as f64) / 1000.0)
    }

    /// How long ago the newer side changed, for a difference that can be propagating.
    fn age_ms(&self, now_ms: u64) -> Option<u64> {
        let newest = match self.difference()? {
            Difference::MissingOnTarget | Difference::Timestamps => self
                .source_timestamp
                .max(self.target_timestamp)
                .unwrap_or(0),
            Difference::ExtraOnTarget | Difference::RecordsDiffer => return None,
        };
        Some(now_ms.saturating_sub(newest))
    }
}

#[derive(Debug, Clone)]
pub struct ServerCompareReport {
    pub monitor: CollectionRef,
    pub margin_ms: u64,
    /// When the comparison started (ms since the epoch): ages are measured from it.
    pub now_ms: u64,
    /// By bucket and collection.
    pub compared: Vec<Compared>,
    /// Unusable monitor entries, with the server (`source`, `target`) that lists them.
    pub invalid: Vec<(&'static str, InvalidEntry)>,
}

#[derive(Serialize, Default)]
struct Counts {
    collections: usize,
    in_sync: usize,
    propagating: usize,
    lagging: usize,
    errors: usize,
    invalid_entries: usize,
    max_lag_seconds: f64,
}

/// Where a collection stands.
enum Status {
    InSync,
    Propagating(Difference, u64),
    Lagging(Difference, Option<u64>),
    Unreadable,
}

impl ServerCompareReport {
    fn status(&self, c: &Compared) -> Status {
        let Some(difference) = c.difference() else {
            return match c.error {
                Some(_) => Status::Unreadable,
                None => Status::InSync,
            };
        };
        match c.age_ms(self.now_ms) {
            Some(age) if age < self.margin_ms => Status::Propagating(difference, age),
            age => Status::Lagging(difference, age),
        }
    }

    fn counts(&self) -> Counts {
        let mut counts = Counts {
            collections: self.compared.len(),
            invalid_entries: self.invalid.len(),
            ..Counts::default()
        };
        for c in &self.compared {
            match self.status(c) {
                Status::InSync => counts.in_sync += 1,
                Status::Propagating(..) => counts.propagating += 1,
                Status::Lagging(..) => counts.lagging += 1,
                Status::Unreadable => counts.errors += 1,
            }
            let lag = c.lag_seconds().unwrap_or(0.0).abs();
            counts.max_lag_seconds = counts.max_lag_seconds.max(lag);
        }
        counts
    }

    fn item_json(&self, c: &Compared) -> Value {
        let mut item = json!({
            "bucket": c.collection.bucket, "collection": c.collection.collection,
            "source_timestamp": c.source_timestamp, "target_timestamp": c.target_timestamp,
            "lag_seconds": c.lag_seconds(),
        });
        let (status, difference, age) = match self.status(c) {
            Status::InSync => ("ok", None, None),
            Status::Propagating(d, age) => ("propagating", Some(d), Some(age)),
            Status::Lagging(d, age) => ("lagging", Some(d), age),
            Status::Unreadable => ("error", None, None),
        };
        item["status"] = json!(status);
        if let Some(d) = difference {
            item["code"] = json!(d.code());
            item["age_seconds"] = json!(age.map(|ms| ms / 1000));
        }
        if let Some(records) = &c.records {
            item["records"] = records.ids_json();
        }
        if let Some((side, error)) = &c.error {
            item["code"] = json!(error.code());
            item["side"] = json!(side);
            item["error"] = client_error_json(error);
        }
        item
    }

    fn items(&self) -> Vec<Value> {
        let mut items: Vec<Value> = self.compared.iter().map(|c| self.item_json(c)).collect();
        items.extend(self.invalid.iter().map(|(side, bad)| {
            json!({"id": bad.id, "side": side, "status": "invalid", "code": "INVALID_ENTRY", "error": bad.reason})
        }));
        items
    }

    fn line(&self, c: &Compared) -> String {
        let id = &c.collection;
        let lag = || match c.lag_seconds() {
            Some(lag) if lag < 0.0 => format!("lag {lag:.3} s (the target is ahead)"),
            Some(lag) => format!("lag {lag:.3} s"),
            None => String::new(),
        };
        let what = |d: Difference| match d {
            Difference::MissingOnTarget => "missing on the target".to_string(),
            Difference::ExtraOnTarget => "only on the target".to_string(),
            Difference::Timestamps => lag(),
            Difference::RecordsDiffer => format!(
                "records differ at the same timestamp {}",
                c.source_timestamp.unwrap_or(0)
            ),
        };
        let margin = self.margin_ms / 1000;
        match self.status(c) {
            Status::InSync => format!("{id} OK: {}, {}", lag(), c.source_timestamp.unwrap_or(0)),
            Status::Propagating(d, age) => {
                format!("{id} PROPAGATING: {}, changed {} s ago", what(d), age / 1000)
            }
            Status::Lagging(d, Some(age)) => format!(
                "{id} NOT OK: {}, changed {} s ago (margin {margin} s)",
                what(d),
                age / 1000
            ),
            Status::Lagging(d, None) => format!("{id} NOT OK: {}", what(d)),
            Status::Unreadable => match &c.error {
                Some((side, error)) => format!("{id} ERROR: could not read it from the {side}: {error}"),
                None => format!("{id} ERROR"),
            },
        }
    }
}

impl Report for ServerCompareReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for c in &self.compared {
            writeln!(out, "{}", self.line(c))?;
            if let Some(records) = &c.records {
                writeln!(out, "    records: {}", records.counts())?;
            }
        }
        for (side, bad) in &self.invalid {
            writeln!(out, "entry {} NOT OK ({side}): {}", bad.id, bad.reason)?;
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        json!({"results": self.items(), "totals": self.counts()})
    }

    fn outcome(&self) -> Outcome {
        let could_not_tell = self
            .compared
            .iter()
            .filter(|c| matches!(&c.error, Some((_, e)) if !is_finding(e)))
            .count();
        let counts = self.counts();
        let findings =
            counts.lagging + counts.invalid_entries + (counts.errors - could_not_tell);
        judge(findings, could_not_tell, || {
            let mut parts = Vec::new();
            if counts.lagging > 0 {
                parts.push(format!(
                    "{} collection(s) differ beyond the margin of {} s",
                    counts.lagging,
                    self.margin_ms / 1000
                ));
            }
            if counts.invalid_entries > 0 {
                parts.push(format!("{} invalid monitor entr(y/ies)", counts.invalid_entries));
            }
            if counts.errors > 0 {
                parts.push(format!("{} collection(s) could not be read", counts.errors));
            }
            Failure {
                message: format!("The target lags behind the source: {}", parts.join(", ")),
                items: self
                    .items()
                    .into_iter()
                    .filter(|i| !matches!(i["status"].as_str(), Some("ok" | "propagating")))
                    .collect(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consistency_checks::diff::Side;

    fn c() -> CollectionRef {
        CollectionRef::new("main", "cfr")
    }

    fn report(now_ms: u64, compared: Vec<Compared>) -> ServerCompareReport {
        ServerCompareReport {
            monitor: CollectionRef::new("monitor", "changes"),
            margin_ms: 1000,
            now_ms,
            compared,
            invalid: Vec::new(),
        }
    }

    fn lines(report: &ServerCompareReport) -> Vec<String> {
        let mut out = Vec::new();
        report.write_text(&mut out).unwrap();
        String::from_utf8(out).unwrap().lines().map(String::from).collect()
    }

    #[test]
    fn a_difference_propagates_until_the_newer_side_is_older_than_the_margin() {
        let lagging = || Compared::read(c(), 10_000, 9_000, None);
        let young = report(10_999, vec![lagging()]);
        assert_eq!(young.outcome(), Outcome::Ok);
        assert_eq!(lines(&young), ["main/cfr PROPAGATING: lag 1.000 s, changed 0 s ago"]);
        let old = report(11_000, vec![lagging()]);
        assert!(matches!(old.outcome(), Outcome::Problems(_)));
        assert_eq!(
            lines(&old),
            ["main/cfr NOT OK: lag 1.000 s, changed 1 s ago (margin 1 s)"]
        );
        // The target ahead: measured from its own, newer, timestamp.
        let ahead = report(10_500, vec![Compared::read(c(), 9_000, 10_000, None)]);
        assert_eq!(
            lines(&ahead),
            ["main/cfr PROPAGATING: lag -1.000 s (the target is ahead), changed 0 s ago"]
        );
    }

    #[test]
    fn some_differences_never_propagate() {
        let diff = PairDiff {
            left: (Side::Source, c()),
            right: (Side::Destination, c()),
            missing: vec!["r1".into()],
            extra: Vec::new(),
            changed: Vec::new(),
        };
        let r = report(
            5_000,
            vec![
                Compared::listed_once(c(), None, Some(5_000)),
                Compared::read(c(), 5_000, 5_000, Some(diff)),
                Compared::listed_once(c(), Some(5_000), None),
                Compared::read(c(), 7, 7, None),
            ],
        );
        assert_eq!(
            lines(&r),
            [
                "main/cfr NOT OK: only on the target",
                "main/cfr NOT OK: records differ at the same timestamp 5000",
                "    records: 1 missing (r1), 0 extra, 0 changed",
                "main/cfr PROPAGATING: missing on the target, changed 0 s ago",
                "main/cfr OK: lag 0.000 s, 7",
            ]
        );
        let json = r.to_json();
        assert_eq!(json["totals"]["lagging"], 2);
        assert_eq!(json["totals"]["propagating"], 1);
        assert_eq!(json["results"][0]["age_seconds"], Value::Null);
        assert_eq!(json["results"][1]["code"], "RECORDS_DIFFER");
    }
}
