//! The coverage report: one line per collection seen on either side (`main/cfr OK (destination)`,
//! `… NOT OK: …` saying which side lacks it), unusable monitor entries and unlistable buckets
//! after them; the JSON results with a stable `code` per gap; the verdict (any gap: exit 1; a
//! bucket that could not be listed, without gaps: exit 3).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::client::ClientError;
use crate::kinto::{CollectionRef, InvalidEntry, Role};
use crate::report::{client_error_json, is_finding, judge, Failure, Outcome, Report};

/// What is missing for one collection.
#[derive(Debug, Clone)]
pub enum Gap {
    /// A published destination or preview without a monitor entry.
    NotMonitored(Role),
    /// A monitor entry naming a collection no signer resource publishes.
    NotPublished,
    /// A monitor entry naming a destination or preview that does not exist.
    Missing,
    /// A monitor entry whose bucket could not be listed.
    Unreadable(ClientError),
}

impl Gap {
    pub fn code(&self) -> &'static str {
        match self {
            Gap::NotMonitored(_) => "NOT_MONITORED",
            Gap::NotPublished => "NOT_PUBLISHED",
            Gap::Missing => "COLLECTION_MISSING",
            Gap::Unreadable(error) => error.code(),
        }
    }

    fn reason(&self) -> String {
        match self {
            Gap::NotMonitored(role) => format!("signer {} not in the monitor list", role_name(*role)),
            Gap::NotPublished => "monitored, but not a signer destination or preview".into(),
            Gap::Missing => "monitored, but the collection does not exist".into(),
            Gap::Unreadable(error) => format!("monitored, its bucket could not be listed: {error}"),
        }
    }

    /// A gap the check could not establish (its bucket unreadable, not a 4xx).
    fn could_not_tell(&self) -> bool {
        matches!(self, Gap::Unreadable(error) if !is_finding(error))
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Destination => "destination",
        Role::Preview => "preview",
    }
}

/// One collection, seen in the monitor list, among the published ones, or both.
#[derive(Debug, Clone)]
pub enum Coverage {
    Ok { collection: CollectionRef, role: Role },
    Gap { collection: CollectionRef, gap: Gap },
}

impl Coverage {
    pub fn collection(&self) -> &CollectionRef {
        match self {
            Coverage::Ok { collection, .. } | Coverage::Gap { collection, .. } => collection,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CoverageReport {
    pub monitor: CollectionRef,
    /// By bucket and collection.
    pub coverage: Vec<Coverage>,
    /// Monitor entries that name no collection.
    pub invalid: Vec<InvalidEntry>,
    /// Destination or preview buckets that could not be listed.
    pub unreadable_buckets: BTreeMap<String, ClientError>,
}

#[derive(Serialize, Default)]
struct Counts {
    collections: usize,
    ok: usize,
    not_monitored: usize,
    not_published: usize,
    missing: usize,
    invalid_entries: usize,
    unreadable_buckets: usize,
}

fn item_json(coverage: &Coverage) -> Value {
    let c = coverage.collection();
    match coverage {
        Coverage::Ok { role, .. } => json!({
            "bucket": c.bucket, "collection": c.collection, "status": "ok", "role": role,
        }),
        Coverage::Gap { gap, .. } => {
            let mut item = json!({
                "bucket": c.bucket, "collection": c.collection, "code": gap.code(),
                "status": if matches!(gap, Gap::NotMonitored(_)) { "not_monitored" } else { "not_published" },
                "error": gap.reason(),
            });
            match gap {
                Gap::NotMonitored(role) => item["role"] = json!(role),
                Gap::Unreadable(error) => item["error"] = client_error_json(error),
                _ => {}
            }
            item
        }
    }
}

fn invalid_json(bad: &InvalidEntry) -> Value {
    json!({"id": bad.id, "status": "invalid", "code": "INVALID_ENTRY", "error": bad.reason})
}

fn bucket_json(bucket: &str, error: &ClientError) -> Value {
    json!({"bucket": bucket, "status": "error", "code": error.code(), "error": client_error_json(error)})
}

impl CoverageReport {
    fn counts(&self) -> Counts {
        let mut c = Counts {
            collections: self.coverage.len(),
            invalid_entries: self.invalid.len(),
            unreadable_buckets: self.unreadable_buckets.len(),
            ..Counts::default()
        };
        for coverage in &self.coverage {
            match coverage {
                Coverage::Ok { .. } => c.ok += 1,
                Coverage::Gap { gap: Gap::NotMonitored(_), .. } => c.not_monitored += 1,
                Coverage::Gap { gap: Gap::NotPublished, .. } => c.not_published += 1,
                Coverage::Gap { .. } => c.missing += 1,
            }
        }
        c
    }

    fn items(&self) -> Vec<Value> {
        let mut items: Vec<Value> = self.coverage.iter().map(item_json).collect();
        items.extend(self.invalid.iter().map(invalid_json));
        items.extend(self.unreadable_buckets.iter().map(|(b, e)| bucket_json(b, e)));
        items
    }
}

impl Report for CoverageReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(out, "Read collection list from {}", self.monitor.path())?;
        for coverage in &self.coverage {
            match coverage {
                Coverage::Ok { collection, role } => {
                    writeln!(out, "{collection} OK ({})", role_name(*role))?
                }
                Coverage::Gap { collection, gap } => {
                    writeln!(out, "{collection} NOT OK: {}", gap.reason())?
                }
            }
        }
        for bad in &self.invalid {
            writeln!(out, "entry {} NOT OK: {}", bad.id, bad.reason)?;
        }
        for (bucket, error) in &self.unreadable_buckets {
            writeln!(out, "bucket {bucket} ERROR: could not list its collections: {error}")?;
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        json!({"results": self.items(), "totals": self.counts()})
    }

    fn outcome(&self) -> Outcome {
        let gaps: Vec<&Gap> = self
            .coverage
            .iter()
            .filter_map(|c| match c {
                Coverage::Gap { gap, .. } => Some(gap),
                Coverage::Ok { .. } => None,
            })
            .collect();
        let could_not_tell = self
            .unreadable_buckets
            .values()
            .filter(|e| !is_finding(e))
            .count();
        let findings = gaps.iter().filter(|g| !g.could_not_tell()).count()
            + self.invalid.len()
            + (self.unreadable_buckets.len() - could_not_tell);
        let counts = self.counts();
        judge(findings, could_not_tell, || {
            let mut message = String::new();
            if findings > 0 {
                message = format!(
                    "Monitor coverage incomplete: {} published collection(s) not monitored, {} monitor entr(y/ies) not published",
                    counts.not_monitored,
                    counts.not_published + counts.missing + counts.invalid_entries
                );
            }
            if could_not_tell > 0 {
                if !message.is_empty() {
                    message.push_str(". ");
                }
                message.push_str(&format!("Could not list {could_not_tell} bucket(s)"));
            }
            Failure {
                message,
                items: self
                    .items()
                    .into_iter()
                    .filter(|item| item["status"] != "ok")
                    .collect(),
            }
        })
    }
}
