//! The report of `expire_orphan_attachments`: what the records reference, what the store holds
//! (counts and bytes per kind), what was marked and reprieved (or would be, in a dry run), and
//! why a run stopped. Unreadable references, a failed listing or failed updates: exit 3; the
//! mark cap reached without `FORCE`: exit 1. Reprieves done are sent to Sentry on their own.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::counts::Sweep;
use super::references::References;
use super::Config;
use crate::report::{client_error_json, judge, Alert, Failure, Outcome, Report};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientError, ClientErrorKind};
    use crate::report::Exit;
    use time::macros::datetime;

    fn report(sweep: Option<Sweep>, force: bool) -> ExpireReport {
        ExpireReport {
            storage: "gs://b".into(),
            dry_run: false,
            max_mark_percent: 5,
            force,
            references: References::default(),
            sweep,
        }
    }

    fn over_the_cap() -> Sweep {
        let mut sweep = Sweep::new(datetime!(2026-12-04 12:00:00.5 UTC), 365);
        sweep.survey.add(super::super::Class::Orphan, 3);
        sweep.survey.add(super::super::Class::Referenced, 3);
        sweep.cap_exceeded = true;
        sweep
    }

    #[test]
    fn the_cap_fails_the_run_unless_forced() {
        let stopped = report(Some(over_the_cap()), false).outcome();
        assert_eq!(stopped.exit(), Exit::Problems);
        assert_eq!(report(Some(over_the_cap()), true).outcome().exit(), Exit::Ok);
        let Outcome::Problems(failure) = stopped else {
            unreachable!()
        };
        assert_eq!(
            failure.message,
            "1 orphan(s) are 50.0% of the 2 objects judged, over MAX_MARK_PERCENT=5: nothing \
             marked (FORCE=1 marks them all the same)"
        );
    }

    #[test]
    fn unreadable_references_leave_the_run_incomplete() {
        let mut incomplete = report(None, true);
        let url = "http://h/v1/x".parse().unwrap();
        let error = ClientError::new(
            &reqwest::Method::GET,
            &url,
            1,
            ClientErrorKind::Status {
                status: 503,
                detail: None,
            },
        );
        incomplete.references.unreadable.push(("main/c".into(), error));
        let outcome = incomplete.outcome();
        assert_eq!(outcome.exit(), Exit::Incomplete);
        let Outcome::Incomplete(failure) = outcome else {
            unreachable!()
        };
        assert!(failure.message.contains("first main/c"), "{}", failure.message);
        assert!(failure.message.ends_with("nothing listed, nothing marked"));
        assert_eq!(failure.items.len(), 1);
    }

    #[test]
    fn marks_are_written_to_the_second_and_reprieves_a_year_later() {
        let sweep = Sweep::new(datetime!(2026-12-04 12:00:00.5 UTC), 365);
        assert_eq!(date(sweep.mark_time), "2026-12-04T12:00:00Z");
        assert_eq!(date(sweep.reprieve_until), "2027-12-04T12:00:00Z");
    }
}
