//! The backport check's report: one line per mapping (`… OK`, `… BEHIND: …` within the lag,
//! `… NOT OK: …` beyond it, `… ERROR: …`), the records' differences named as the destination
//! lacks, adds or changes them; the verdict (a difference beyond the lag: exit 1; a side that
//! could not be read: exit 3, or 1 for a 4xx).

use serde::Serialize;
use serde_json::{json, Value};

use crate::backport_records::mapping::Mapping;
use crate::client::ClientError;
use crate::consistency_checks::diff::PairDiff;
use crate::report::{client_error_json, is_finding, judge, Failure, Outcome, Report};

/// One mapping, checked.
#[derive(Debug, Clone)]
pub struct Backported {
    pub mapping: Mapping,
    /// The two records timestamps and how the records differ, when both sides were read.
    pub read: Option<(u64, u64, PairDiff)>,
    pub error: Option<ClientError>,
}

impl Backported {
    pub fn read(mapping: Mapping, source_ts: u64, dest_ts: u64, diff: PairDiff) -> Self {
        Backported {
            mapping,
            read: Some((source_ts, dest_ts, diff)),
            error: None,
        }
    }

    pub fn unreadable(mapping: Mapping, error: ClientError) -> Self {
        Backported {
            mapping,
            read: None,
            error: Some(error),
        }
    }

    /// How far apart the two records timestamps are, in ms.
    fn apart_ms(&self) -> Option<u64> {
        self.read.as_ref().map(|(s, d, _)| s.abs_diff(*d))
    }
}

#[derive(Debug, Clone)]
pub struct BackportedReport {
    pub max_lag_ms: u64,
    pub results: Vec<Backported>,
}

enum Status {
    InSync,
    WithinLag,
    Lagging,
    Unreadable,
}

#[derive(Serialize, Default)]
struct Counts {
    mappings: usize,
    in_sync: usize,
    within_lag: usize,
    lagging: usize,
    errors: usize,
}

impl BackportedReport {
    fn status(&self, b: &Backported) -> Status {
        match (&b.read, b.apart_ms()) {
            (Some((_, _, diff)), _) if diff.is_empty() => Status::InSync,
            (Some(_), Some(apart)) if apart <= self.max_lag_ms => Status::WithinLag,
            (Some(_), _) => Status::Lagging,
            (None, _) => Status::Unreadable,
        }
    }

    fn counts(&self) -> Counts {
        let mut c = Counts {
            mappings: self.results.len(),
            ..Counts::default()
        };
        for b in &self.results {
            match self.status(b) {
                Status::InSync => c.in_sync += 1,
                Status::WithinLag => c.within_lag += 1,
                Status::Lagging => c.lagging += 1,
                Status::Unreadable => c.errors += 1,
            }
        }
        c
    }

    fn item_json(&self, b: &Backported) -> Value {
        let mut item = json!({
            "mapping": b.mapping.to_string(),
            "source": b.mapping.source.to_string(),
            "destination": b.mapping.destination.to_string(),
        });
        let status = match self.status(b) {
            Status::InSync => "ok",
            Status::WithinLag => "within_lag",
            Status::Lagging => "lagging",
            Status::Unreadable => "error",
        };
        item["status"] = json!(status);
        if let Some((source_ts, dest_ts, diff)) = &b.read {
            item["source_timestamp"] = json!(source_ts);
            item["destination_timestamp"] = json!(dest_ts);
            item["apart_seconds"] = json!(source_ts.abs_diff(*dest_ts) as f64 / 1000.0);
            if !diff.is_empty() {
                item["code"] = json!("RECORDS_DIFFER");
                item["records"] = diff.ids_json();
            }
        }
        if let Some(error) = &b.error {
            item["code"] = json!(error.code());
            item["error"] = client_error_json(error);
        }
        item
    }

    fn line(&self, b: &Backported) -> String {
        let m = &b.mapping;
        let max = self.max_lag_ms / 1000;
        let apart = b.apart_ms().unwrap_or(0) as f64 / 1000.0;
        let differs = || match &b.read {
            Some((_, _, diff)) => diff.counts(),
            None => String::new(),
        };
        match self.status(b) {
            Status::InSync => format!("{m} OK"),
            Status::WithinLag => format!(
                "{m} BEHIND: {}; timestamps {apart:.3} s apart, within {max} s",
                differs()
            ),
            Status::Lagging => format!(
                "{m} NOT OK: {}; timestamps {apart:.3} s apart (max lag {max} s)",
                differs()
            ),
            Status::Unreadable => match &b.error {
                Some(error) => format!("{m} ERROR: {error}"),
                None => format!("{m} ERROR"),
            },
        }
    }
}

impl Report for BackportedReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for b in &self.results {
            writeln!(out, "{}", self.line(b))?;
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        json!({
            "results": self.results.iter().map(|b| self.item_json(b)).collect::<Vec<_>>(),
            "totals": self.counts(),
        })
    }

    fn outcome(&self) -> Outcome {
        let could_not_tell = self
            .results
            .iter()
            .filter(|b| matches!(&b.error, Some(e) if !is_finding(e)))
            .count();
        let counts = self.counts();
        let findings = counts.lagging + counts.errors - could_not_tell;
        judge(findings, could_not_tell, || {
            let mut parts = Vec::new();
            if counts.lagging > 0 {
                parts.push(format!(
                    "{} destination(s) differ from their source beyond {} s",
                    counts.lagging,
                    self.max_lag_ms / 1000
                ));
            }
            if counts.errors > 0 {
                parts.push(format!("{} mapping(s) could not be read", counts.errors));
            }
            Failure {
                message: format!("Backported records out of sync: {}", parts.join(", ")),
                items: self
                    .results
                    .iter()
                    .map(|b| self.item_json(b))
                    .filter(|i| !matches!(i["status"].as_str(), Some("ok" | "within_lag")))
                    .collect(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backport_records::mapping::parse_mappings;
    use crate::consistency_checks::diff::Side;

    fn checked(source_ts: u64, dest_ts: u64, missing: &[&str]) -> Backported {
        let mapping = parse_mappings("a/b?min_n=1 -> a/c").unwrap().remove(0);
        let diff = PairDiff {
            left: (Side::Source, mapping.source.clone()),
            right: (Side::Destination, mapping.destination.clone()),
            missing: missing.iter().map(|s| s.to_string()).collect(),
            extra: Vec::new(),
            changed: Vec::new(),
        };
        Backported::read(mapping, source_ts, dest_ts, diff)
    }

    #[test]
    fn records_that_differ_fail_only_when_the_timestamps_are_further_apart_than_the_lag() {
        let report = |results| BackportedReport {
            max_lag_ms: 300_000,
            results,
        };
        let equal = report(vec![checked(1, 999_999, &[])]);
        assert_eq!(equal.outcome(), Outcome::Ok);
        let within = report(vec![checked(400_000, 100_000, &["r1"])]);
        assert_eq!(within.outcome(), Outcome::Ok);
        assert_eq!(within.to_json()["results"][0]["status"], "within_lag");
        // Either way round: the destination newer than its source by more than the lag too.
        let beyond = report(vec![checked(100_000, 400_001, &["r1"])]);
        let Outcome::Problems(failure) = beyond.outcome() else {
            panic!("{:?}", beyond.outcome())
        };
        assert_eq!(
            failure.message,
            "Backported records out of sync: 1 destination(s) differ from their source beyond 300 s"
        );
        assert_eq!(failure.items[0]["records"]["missing"]["ids"][0], "r1");
    }
}
