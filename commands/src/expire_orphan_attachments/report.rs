//! The report of `expire_orphan_attachments`: what the records reference, what the store holds
//! (counts and bytes per kind), what was marked and reprieved (or would be, in a dry run), and
//! why a run stopped. Unreadable references, a failed listing or failed updates: exit 3; the
//! mark cap reached without `FORCE`: exit 1. Reprieves done are sent to Sentry on their own.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::references::References;
use super::sweep::{days_after, Class};
use super::Config;
use crate::report::{client_error_json, judge, Alert, Failure, Outcome, Report};

/// A number of objects and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn add(&mut self, size: u64) {
        self.count += 1;
        self.bytes += size;
    }

    fn plus(self, other: Tally) -> Tally {
        Tally {
            count: self.count + other.count,
            bytes: self.bytes + other.bytes,
        }
    }

    fn json(self) -> Value {
        json!({"count": self.count, "bytes": self.bytes})
    }

    fn text(self) -> String {
        format!("{} object(s), {} bytes", self.count, self.bytes)
    }
}

/// The survey of the store: every listed object, by class.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub listed: Tally,
    pub bundles: Tally,
    pub placeholders: Tally,
    pub recent: Tally,
    pub referenced: Tally,
    pub to_reprieve: Tally,
    pub to_mark: Tally,
    pub already_marked: Tally,
}

impl Survey {
    pub fn add(&mut self, class: Class, size: u64) {
        self.listed.add(size);
        let tally = match class {
            Class::Bundle => &mut self.bundles,
            Class::Placeholder => &mut self.placeholders,
            Class::Recent => &mut self.recent,
            Class::Referenced => &mut self.referenced,
            Class::Reprieve => &mut self.to_reprieve,
            Class::Orphan => &mut self.to_mark,
            Class::AlreadyMarked => &mut self.already_marked,
        };
        tally.add(size);
    }

    /// The objects this job judges (all but bundles and folder placeholders).
    pub fn judged(&self) -> Tally {
        self.referenced
            .plus(self.to_reprieve)
            .plus(self.to_mark)
            .plus(self.already_marked)
            .plus(self.recent)
    }
}

/// What happened in the store.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The `customTime` of new marks: the run's start, to the second.
    pub mark_time: OffsetDateTime,
    /// The `customTime` of reprieves: `REPRIEVE_DAYS` after `mark_time`.
    pub reprieve_until: OffsetDateTime,
    pub survey: Survey,
    /// The survey's listing failed: nothing was marked.
    pub survey_error: Option<String>,
    /// The marking pass's listing failed: the marks sent before stand.
    pub marking_error: Option<String>,
    pub cap_exceeded: bool,
    pub marked: Tally,
    pub reprieved: Tally,
    pub write_failures: usize,
    /// The first few failed updates.
    pub write_errors: Vec<String>,
    pub to_mark_sample: Vec<String>,
    pub to_reprieve_sample: Vec<String>,
}

impl Sweep {
    pub fn new(started: OffsetDateTime, reprieve_days: u64) -> Sweep {
        let mark_time = started.replace_nanosecond(0).unwrap_or(started);
        Sweep {
            mark_time,
            reprieve_until: days_after(mark_time, reprieve_days),
            survey: Survey::default(),
            survey_error: None,
            marking_error: None,
            cap_exceeded: false,
            marked: Tally::default(),
            reprieved: Tally::default(),
            write_failures: 0,
            write_errors: Vec::new(),
            to_mark_sample: Vec::new(),
            to_reprieve_sample: Vec::new(),
        }
    }

    fn percent(&self) -> f64 {
        let judged = self.survey.judged().count.max(1) as f64;
        self.survey.to_mark.count as f64 * 100.0 / judged
    }
}

/// The whole run.
#[derive(Debug)]
pub struct ExpireReport {
    pub storage: String,
    pub dry_run: bool,
    pub max_mark_percent: u64,
    pub force: bool,
    pub references: References,
    /// `None` when the store was not listed (the references were incomplete).
    pub sweep: Option<Sweep>,
}

fn date(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

impl ExpireReport {
    pub fn new(config: &Config, storage: String, references: References) -> Self {
        ExpireReport {
            storage,
            dry_run: config.dry_run,
            max_mark_percent: config.max_mark_percent,
            force: config.force,
            references,
            sweep: None,
        }
    }

    fn cap_line(&self, sweep: &Sweep) -> String {
        let s = &sweep.survey;
        let head = format!(
            "{} orphan(s) are {:.1}% of the {} objects judged, over MAX_MARK_PERCENT={}",
            s.to_mark.count,
            sweep.percent(),
            s.judged().count,
            self.max_mark_percent
        );
        match (self.force, self.dry_run) {
            (true, _) => format!("{head}: marking them all the same (FORCE)"),
            (false, true) => format!(
                "{head}: DRY_RUN=0 would mark nothing (FORCE=1 marks them all the same)"
            ),
            (false, false) => format!("{head}: nothing marked (FORCE=1 marks them all the same)"),
        }
    }

    /// Why the run failed, and whether it is a finding (the cap) or could not complete.
    fn problems(&self) -> (Vec<String>, Vec<String>) {
        let (mut findings, mut incomplete) = (Vec::new(), Vec::new());
        let r = &self.references;
        if let Some((what, error)) = r.unreadable.first() {
            incomplete.push(format!(
                "could not read {} listing(s) or changeset(s), first {what}: {error}; nothing listed, nothing marked",
                r.unreadable.len()
            ));
        }
        let Some(sweep) = &self.sweep else {
            return (findings, incomplete);
        };
        if let Some(error) = &sweep.survey_error {
            incomplete.push(format!("listing {} failed: {error}; nothing marked", self.storage));
        }
        if let Some(error) = &sweep.marking_error {
            incomplete.push(format!(
                "listing {} failed while marking: {error}; {} marked before",
                self.storage, sweep.marked.count
            ));
        }
        if sweep.write_failures > 0 {
            incomplete.push(format!(
                "{} customTime update(s) failed, first {}",
                sweep.write_failures,
                sweep.write_errors.first().map_or("", String::as_str)
            ));
        }
        if sweep.cap_exceeded && !self.force {
            findings.push(self.cap_line(sweep));
        }
        (findings, incomplete)
    }

    fn totals(&self, sweep: &Sweep) -> Value {
        let s = &sweep.survey;
        json!({
            "listed": s.listed.json(), "bundles": s.bundles.json(),
            "placeholders": s.placeholders.json(), "recent": s.recent.json(),
            "referenced": s.referenced.plus(s.to_reprieve).json(),
            "orphaned": s.to_mark.plus(s.already_marked).json(),
            "already_marked": s.already_marked.json(),
            "to_mark": s.to_mark.json(), "marked": sweep.marked.json(),
            "to_reprieve": s.to_reprieve.json(), "reprieved": sweep.reprieved.json(),
        })
    }

    fn write_sample(out: &mut dyn std::io::Write, keys: &[String], all: u64) -> std::io::Result<()> {
        for key in keys {
            writeln!(out, "  {key}")?;
        }
        let more = all.saturating_sub(keys.len() as u64);
        if more > 0 {
            writeln!(out, "  … and {more} more")?;
        }
        Ok(())
    }
}

impl Report for ExpireReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        if self.dry_run {
            writeln!(out, "DRY RUN: nothing is marked nor reprieved (DRY_RUN=0 acts)")?;
        }
        let r = &self.references;
        writeln!(
            out,
            "Read {} changeset(s) of {} signed collection(s) ({} side(s) missing): {} attachment location(s) referenced{}",
            r.changesets,
            r.collections,
            r.missing_sides,
            r.locations.len(),
            match r.invalid_attachments {
                0 => String::new(),
                n => format!(", {n} record(s) with an unusable attachment location"),
            }
        )?;
        for (what, error) in &r.unreadable {
            writeln!(out, "{what} NOT OK: could not be read: {error}")?;
        }
        let Some(sweep) = &self.sweep else {
            return writeln!(out, "Nothing listed, nothing marked: the references are incomplete");
        };
        let s = &sweep.survey;
        writeln!(
            out,
            "Listed {}: {}; left alone: {} under bundles/, {} written since the run started, {} folder placeholder(s)",
            self.storage,
            s.listed.text(),
            s.bundles.count,
            s.recent.count,
            s.placeholders.count
        )?;
        if let Some(error) = &sweep.survey_error {
            writeln!(out, "Listing NOT OK: {error}; nothing marked")?;
        }
        writeln!(out, "Referenced: {}", s.referenced.plus(s.to_reprieve).text())?;
        writeln!(
            out,
            "Orphaned: {} ({} already marked, {} newly orphaned)",
            s.to_mark.plus(s.already_marked).text(),
            s.already_marked.count,
            s.to_mark.count
        )?;
        if sweep.cap_exceeded {
            writeln!(out, "{}", self.cap_line(sweep))?;
        }
        let (mark_verb, reprieve_verb, marked, reprieved) = if self.dry_run {
            ("Would mark", "Would reprieve", s.to_mark, s.to_reprieve)
        } else {
            ("Marked", "Reprieved", sweep.marked, sweep.reprieved)
        };
        if marked.count > 0 || s.to_mark.count > 0 {
            writeln!(
                out,
                "{mark_verb} {} (customTime {})",
                marked.text(),
                date(sweep.mark_time)
            )?;
            Self::write_sample(out, &sweep.to_mark_sample, s.to_mark.count)?;
        }
        if reprieved.count > 0 || s.to_reprieve.count > 0 {
            writeln!(
                out,
                "{reprieve_verb} {}, referenced again after being marked (customTime pushed to {})",
                reprieved.text(),
                date(sweep.reprieve_until)
            )?;
            Self::write_sample(out, &sweep.to_reprieve_sample, s.to_reprieve.count)?;
        }
        if let Some(error) = &sweep.marking_error {
            writeln!(out, "Listing NOT OK while marking: {error}")?;
        }
        for error in &sweep.write_errors {
            writeln!(out, "customTime NOT OK: {error}")?;
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        let r = &self.references;
        let unreadable: Vec<Value> = r
            .unreadable
            .iter()
            .map(|(what, error)| {
                json!({"resource": what, "status": "error", "code": error.code(),
                       "error": client_error_json(error)})
            })
            .collect();
        let mut doc = json!({
            "storage_url": self.storage,
            "dry_run": self.dry_run,
            "references": {
                "collections": r.collections, "changesets": r.changesets,
                "missing_sides": r.missing_sides, "locations": r.locations.len(),
                "invalid_attachments": r.invalid_attachments,
            },
            "unreadable": unreadable,
            "listed": self.sweep.is_some(),
        });
        if let Some(sweep) = &self.sweep {
            let extra = json!({
                "mark_time": date(sweep.mark_time),
                "reprieve_until": date(sweep.reprieve_until),
                "totals": self.totals(sweep),
                "cap": {"max_mark_percent": self.max_mark_percent, "percent": sweep.percent(),
                        "exceeded": sweep.cap_exceeded, "forced": self.force},
                "to_mark_sample": sweep.to_mark_sample,
                "to_reprieve_sample": sweep.to_reprieve_sample,
                "listing_error": sweep.survey_error.as_ref().or(sweep.marking_error.as_ref()),
                "write_failures": sweep.write_failures,
                "write_errors": sweep.write_errors,
            });
            if let (Value::Object(doc), Value::Object(extra)) = (&mut doc, extra) {
                doc.extend(extra);
            }
        }
        doc
    }

    fn outcome(&self) -> Outcome {
        let (findings, incomplete) = self.problems();
        judge(findings.len(), incomplete.len(), || {
            let mut parts = findings.clone();
            parts.extend(incomplete.iter().cloned());
            Failure {
                message: parts.join("; "),
                items: self.to_json()["unreadable"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            }
        })
    }

    /// Reprieves done are worth an event of their own (an object was marked, then referenced
    /// again: something nearly deleted a live file); a failed run's event then goes with it.
    fn alerts(&self) -> Vec<Alert> {
        let Some(sweep) = self.sweep.as_ref().filter(|s| s.reprieved.count > 0) else {
            return Vec::new();
        };
        let mut alerts = Vec::new();
        if let Outcome::Problems(failure) | Outcome::Incomplete(failure) = self.outcome() {
            alerts.push(Alert {
                message: failure.message,
                extra: Map::new(),
            });
        }
        let mut extra = Map::new();
        extra.insert("objects".into(), json!(sweep.to_reprieve_sample));
        extra.insert("storage_url".into(), json!(self.storage));
        alerts.push(Alert {
            message: format!(
                "{} marked attachment(s) of {} were referenced again: customTime pushed to {}",
                sweep.reprieved.count,
                self.storage,
                date(sweep.reprieve_until)
            ),
            extra,
        });
        alerts
    }
}
