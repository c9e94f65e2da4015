//! The verdict on each source of the query result, and the report: the original's lines, the JSON
//! form with the same numbers, exit 1 when a source is over its threshold, and one Sentry alert
//! per such source.

use serde_json::{json, Map, Value};

use super::query_result::UptakeRow;
use super::text::{fnmatch, py_repr, thousands, utc_datetime};
use super::Config;
use crate::report::{Alert, Failure, Outcome, Report};

/// Statuses ending with this are bad; every other one is good.
const BAD_SUFFIX: &str = "_error";

pub fn is_bad(status: &str) -> bool {
    status.ends_with(BAD_SUFFIX)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Matched one of `EXCLUDE_SOURCES`.
    Excluded,
    /// No event at all.
    NoEvents,
    /// Fewer events than `MIN_TOTAL_ENTRIES`.
    TooFew { total: u64 },
    Checked {
        good: u64,
        bad: u64,
        /// `100 * bad / (good + bad)`.
        percent: f64,
        threshold: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceCheck {
    pub source: String,
    pub statuses: Vec<(String, u64)>,
    pub verdict: Verdict,
}

impl SourceCheck {
    pub fn is_over_threshold(&self) -> bool {
        matches!(self.verdict, Verdict::Checked { percent, threshold, .. } if percent > threshold)
    }

    /// The bad statuses with events, most frequent first (ties in column order), with their share
    /// of all events.
    pub fn breakdown(&self) -> Vec<(&str, u64, f64)> {
        let Verdict::Checked { good, bad, .. } = self.verdict else {
            return Vec::new();
        };
        let total = (good + bad) as f64;
        let mut bad_statuses: Vec<(&str, u64, f64)> = self
            .statuses
            .iter()
            .filter(|(status, n)| is_bad(status) && *n > 0)
            .map(|(status, n)| (status.as_str(), *n, *n as f64 / total * 100.0))
            .collect();
        // A stable sort: ties keep the column order.
        bad_statuses.sort_by_key(|&(_, n, _)| std::cmp::Reverse(n));
        bad_statuses
    }

    /// The original's breakdown lines: `\t{status:<16} {pct:.2}% ({count:,})`.
    fn breakdown_lines(&self) -> Vec<String> {
        self.breakdown()
            .into_iter()
            .map(|(status, n, pct)| format!("\t{status:<16} {pct:.2}% ({})", thousands(n)))
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct UptakeReport {
    /// The period of the data, as the original prints it.
    pub from: String,
    pub to: String,
    pub checks: Vec<SourceCheck>,
    pub min_total: u64,
    /// Print the `VERBOSE` lines (every status and why a source was skipped).
    pub verbose: bool,
    /// Where the data came from and the thresholds, for Sentry.
    pub context: Map<String, Value>,
}

fn sum(mut counts: impl Iterator<Item = u64>, source: &str) -> Result<u64, String> {
    counts
        .try_fold(0u64, u64::checked_add)
        .ok_or_else(|| format!("the counts of {source} add up to more than {}", u64::MAX))
}

/// Judge every row with the configured exclusions, minimum and thresholds.
pub fn evaluate(
    rows: Vec<UptakeRow>,
    config: &Config,
    context: Map<String, Value>,
) -> Result<UptakeReport, String> {
    let min = rows
        .iter()
        .map(|r| r.min_timestamp)
        .fold(f64::INFINITY, f64::min);
    let max = rows
        .iter()
        .map(|r| r.max_timestamp)
        .fold(f64::NEG_INFINITY, f64::max);
    let (from, to) = match (utc_datetime(min), utc_datetime(max)) {
        (Some(from), Some(to)) => (from, to),
        _ => return Err("the query result has no timestamps".into()),
    };
    let mut checks = Vec::with_capacity(rows.len());
    for row in rows {
        let verdict = if config
            .exclude_sources
            .iter()
            .any(|pattern| fnmatch(&row.source, pattern))
        {
            Verdict::Excluded
        } else {
            let counts = |bad: bool| {
                row.statuses
                    .iter()
                    .filter(move |(s, _)| is_bad(s) == bad)
                    .map(|(_, n)| *n)
            };
            let good = sum(counts(false), &row.source)?;
            let bad = sum(counts(true), &row.source)?;
            let total = good
                .checked_add(bad)
                .ok_or_else(|| format!("the counts of {} overflow", row.source))?;
            if total == 0 {
                Verdict::NoEvents
            } else if total < config.min_total_entries {
                Verdict::TooFew { total }
            } else {
                Verdict::Checked {
                    good,
                    bad,
                    percent: (100 * u128::from(bad)) as f64 / total as f64,
                    threshold: config.threshold(&row.source),
                }
            }
        };
        checks.push(SourceCheck {
            source: row.source,
            statuses: row.statuses,
            verdict,
        });
    }
    Ok(UptakeReport {
        from,
        to,
        checks,
        min_total: config.min_total_entries,
        verbose: config.verbose,
        context,
    })
}

impl UptakeReport {
    /// The sources over their threshold, in the query's order.
    pub fn over_threshold_sources(&self) -> Vec<&str> {
        self.over_threshold().map(|c| c.source.as_str()).collect()
    }

    fn over_threshold(&self) -> impl Iterator<Item = &SourceCheck> {
        self.checks.iter().filter(|c| c.is_over_threshold())
    }

    fn over_threshold_message(&self) -> Option<String> {
        let n = self.over_threshold().count();
        (n > 0).then(|| format!("{n} settings have a bad ratio over threshold."))
    }

    fn item_json(check: &SourceCheck) -> Value {
        let mut item = json!({"source": check.source});
        let fields = match &check.verdict {
            Verdict::Excluded => json!({"status": "excluded"}),
            Verdict::NoEvents => {
                json!({"status": "skipped", "skip_reason": "no_events", "total": 0})
            }
            Verdict::TooFew { total } => {
                json!({"status": "skipped", "skip_reason": "too_few_events", "total": total})
            }
            Verdict::Checked {
                good,
                bad,
                percent,
                threshold,
            } => {
                let over = check.is_over_threshold();
                let breakdown: Vec<Value> = check
                    .breakdown()
                    .into_iter()
                    .map(|(status, count, percent)| {
                        json!({"status": status, "count": count, "percent": percent})
                    })
                    .collect();
                let mut fields = json!({
                    "status": if over { "over_threshold" } else { "ok" },
                    "good": good, "bad": bad, "total": good + bad,
                    "percent": percent, "threshold_percent": threshold,
                    "bad_statuses": breakdown,
                });
                if over {
                    fields["code"] = json!("ERROR_RATE_OVER_THRESHOLD");
                }
                fields
            }
        };
        if let (Value::Object(item), Value::Object(fields)) = (&mut item, fields) {
            item.extend(fields);
        }
        item
    }

    fn write_verbose(
        &self,
        out: &mut dyn std::io::Write,
        check: &SourceCheck,
    ) -> std::io::Result<()> {
        let repr = py_repr(&check.source);
        if check.verdict == Verdict::Excluded {
            return writeln!(out, "Skipping {repr} because it's excluded");
        }
        for (status, n) in &check.statuses {
            let kind = if is_bad(status) { "bad" } else { "good" };
            writeln!(out, "{status:<20} {:>10} {kind}", thousands(*n))?;
        }
        match check.verdict {
            Verdict::NoEvents => {
                writeln!(out, "Skipping {repr} because exactly 0 good+bad statuses")
            }
            Verdict::TooFew { total } => writeln!(
                out,
                "Skipping {repr} because exactly too few good+bad statuses ({total} < {})",
                self.min_total
            ),
            _ => Ok(()),
        }
    }
}

impl Report for UptakeReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(out, "📅 From {} to {}", self.from, self.to)?;
        for check in &self.checks {
            if self.verbose {
                self.write_verbose(out, check)?;
            }
            if let Verdict::Checked {
                good, bad, percent, ..
            } = check.verdict
            {
                let stats = format!("(good:{:>10} bad:{:>10})", thousands(good), thousands(bad));
                writeln!(out, "{:40} {stats:40} {percent:>10.2}%", check.source)?;
            }
        }
        if let Some(message) = self.over_threshold_message() {
            writeln!(out, "\n{message}")?;
        }
        for check in self.over_threshold() {
            writeln!(
                out,
                "\n{}\n{}",
                check.source,
                check.breakdown_lines().join("\n")
            )?;
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        let count = |f: fn(&SourceCheck) -> bool| self.checks.iter().filter(|c| f(c)).count();
        json!({
            "period": {"from": self.from, "to": self.to},
            "results": self.checks.iter().map(Self::item_json).collect::<Vec<_>>(),
            "totals": {
                "sources": self.checks.len(),
                "checked": count(|c| matches!(c.verdict, Verdict::Checked { .. })),
                "ok": count(|c| matches!(c.verdict, Verdict::Checked { .. }) && !c.is_over_threshold()),
                "over_threshold": count(SourceCheck::is_over_threshold),
                "skipped": count(|c| matches!(c.verdict, Verdict::NoEvents | Verdict::TooFew { .. })),
                "excluded": count(|c| c.verdict == Verdict::Excluded),
            },
        })
    }

    fn outcome(&self) -> Outcome {
        match self.over_threshold_message() {
            None => Outcome::Ok,
            Some(message) => Outcome::Problems(Failure {
                message,
                items: self.over_threshold().map(Self::item_json).collect(),
            }),
        }
    }

    /// `<source> is erroring too much.` and its breakdown, per source over threshold.
    fn alerts(&self) -> Vec<Alert> {
        self.over_threshold()
            .map(|check| {
                let mut extra = self.context.clone();
                extra.insert("source".into(), json!(check.source));
                if let Verdict::Checked {
                    percent, threshold, ..
                } = check.verdict
                {
                    extra.insert("error_percent".into(), json!(percent));
                    extra.insert("threshold_percent".into(), json!(threshold));
                }
                Alert {
                    message: format!(
                        "{} is erroring too much.\n{}",
                        check.source,
                        check.breakdown_lines().join("\n")
                    ),
                    extra,
                }
            })
            .collect()
    }
}
