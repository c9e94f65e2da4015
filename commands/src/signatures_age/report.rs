//! What `signatures_age` reports: each source's age, oldest first, against its limit.

use serde_json::{json, Value};

use crate::client::ClientError;
use crate::kinto::{CollectionRef, ResourceRef};
use crate::report::{is_finding, judge, Failure, Outcome, Report};
use crate::sources::{unreadable_json, unreadable_line, unreadable_message};
use crate::signature::format_utc;

const HOUR: f64 = 3600.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Age {
    /// Signed at `signed` (seconds since the epoch), `seconds` before the check time.
    Signed { signed: i64, seconds: i64 },
    /// No (readable) `last_signature_date`: its signing at creation failed, or it is being
    /// created. It has no age: reported, not a failure (whether its destination is signed is
    /// validate_signature's and consistency_checks' to tell).
    NeverSigned,
}

impl Age {
    /// Larger is older; never signed is the oldest.
    pub fn sort_key(&self) -> i64 {
        match self {
            Age::Signed { seconds, .. } => *seconds,
            Age::NeverSigned => i64::MAX,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourceAge {
    pub source: CollectionRef,
    pub age: Age,
    /// Its limit, `MAX_SIGNATURE_AGE_HOURS` or its override.
    pub limit_hours: u64,
}

impl SourceAge {
    fn code(&self) -> Option<&'static str> {
        match self.age {
            Age::NeverSigned => None,
            Age::Signed { seconds, .. } if seconds > self.limit_hours as i64 * 3600 => {
                Some("SIGNATURE_TOO_OLD")
            }
            Age::Signed { .. } => None,
        }
    }

    fn line(&self) -> String {
        let verdict = match self.code() {
            None if self.age == Age::NeverSigned => "UNKNOWN".to_string(),
            None => "OK".to_string(),
            Some(code) => format!("NOT OK {code}"),
        };
        match self.age {
            Age::Signed { signed, seconds } => format!(
                "{} {verdict}: signed {:.1} hours ago ({}), limit {} hours",
                self.source,
                seconds as f64 / HOUR,
                format_utc(signed),
                self.limit_hours
            ),
            Age::NeverSigned => format!(
                "{} {verdict}: no last_signature_date (never signed)",
                self.source
            ),
        }
    }

    fn to_json(&self) -> Value {
        let mut item = json!({
            "bucket": self.source.bucket,
            "collection": self.source.collection,
            "status": match (self.code(), self.age) {
                (Some(_), _) => "too_old",
                (None, Age::NeverSigned) => "unknown",
                (None, _) => "ok",
            },
            "limit_hours": self.limit_hours,
        });
        if let Some(code) = self.code() {
            item["code"] = json!(code);
        }
        if let Age::Signed { signed, seconds } = self.age {
            item["last_signature_date"] = json!(format_utc(signed));
            item["age_seconds"] = json!(seconds);
            item["age_hours"] = json!((seconds as f64 / HOUR * 10.0).round() / 10.0);
        }
        item
    }
}

#[derive(Debug, Clone)]
pub struct AgeReport {
    pub check_at: i64,
    /// Oldest first.
    pub sources: Vec<SourceAge>,
    /// Signer resources whose source could not be read.
    pub unreadable: Vec<(ResourceRef, ClientError)>,
}

impl Report for AgeReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(out, "Check time: {}", format_utc(self.check_at))?;
        for source in &self.sources {
            writeln!(out, "{}", source.line())?;
        }
        for item in &self.unreadable {
            writeln!(out, "{}", unreadable_line(item))?;
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        let too_old = self.sources.iter().filter(|s| s.code().is_some()).count();
        let unknown = self
            .sources
            .iter()
            .filter(|s| s.age == Age::NeverSigned)
            .count();
        let mut results: Vec<Value> = self.sources.iter().map(SourceAge::to_json).collect();
        results.extend(self.unreadable.iter().map(unreadable_json));
        json!({
            "check_at": self.check_at,
            "results": results,
            "totals": {
                "sources": self.sources.len(),
                "ok": self.sources.len() - too_old - unknown,
                "too_old": too_old,
                "unknown": unknown,
                "unreadable_resources": self.unreadable.len(),
            },
        })
    }

    fn outcome(&self) -> Outcome {
        let old: Vec<&SourceAge> = self.sources.iter().filter(|s| s.code().is_some()).collect();
        let refused = self.unreadable.iter().filter(|(_, e)| is_finding(e)).count();
        let findings = old.len() + refused;
        judge(findings, self.unreadable.len() - refused, || {
            let mut message = format!(
                "{} of {} source collection(s) signed too long ago",
                old.len(),
                self.sources.len()
            );
            message.push_str(&unreadable_message(&self.unreadable));
            let mut items: Vec<Value> = old.iter().map(|s| s.to_json()).collect();
            items.extend(self.unreadable.iter().map(unreadable_json));
            Failure { message, items }
        })
    }
}
