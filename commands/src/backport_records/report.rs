//! The backport report: the original's lines (`Batch #i: PUT /buckets/…/records/<id> - 201`,
//! `Done. N changes applied.`, `Records are in sync. Nothing to do.`), one JSON result per
//! mapping with one entry per change, and the outcome: exit 1 when a change or a signature
//! request was refused (a concurrent edit, no permission), exit 3 when the server could not be
//! reached or answered unexpectedly.

use serde_json::{json, Value};

use super::apply::{record_path, Outcome};
use super::diff::Change;
use super::mapping::Mapping;
use crate::client::ClientError;
use crate::kinto::SignerStatus;
use crate::report::{client_error_json, Failure, Outcome as RunOutcome, Report};

/// The signature step of a mapping whose destination changed (or waits for a signature).
#[derive(Debug, Clone)]
pub enum Signing {
    /// The destination has no signer resource: nothing to ask.
    NotSigned,
    /// `to-review` or `to-sign` was asked.
    Requested(SignerStatus),
    /// Not asked because some changes were not applied.
    Skipped(SignerStatus),
    /// `DRY_RUN`: would be asked.
    WouldRequest(SignerStatus),
    Failed {
        request: SignerStatus,
        error: ClientError,
    },
}

#[derive(Debug, Clone)]
pub enum MappingState {
    /// The source or the destination could not be read: nothing was written.
    Unreadable(ClientError),
    /// Same records, and the destination is signed (or has no signer).
    InSync,
    /// Changes were written (or would be, in a dry run), then the signature step.
    Changed {
        changes: Vec<Change>,
        outcomes: Vec<Outcome>,
        signing: Signing,
    },
}

#[derive(Debug, Clone)]
pub struct MappingResult {
    pub mapping: Mapping,
    pub state: MappingState,
}

#[derive(Debug, Clone)]
pub struct BackportReport {
    pub dry_run: bool,
    /// Print each mapping before its lines (several mappings from `BACKPORT_RECORDS_MAPPINGS`).
    pub name_mappings: bool,
    pub results: Vec<MappingResult>,
}

/// How many changes ended how.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
struct Counts {
    changes: usize,
    applied: usize,
    already_applied: usize,
    conflicts: usize,
    failed: usize,
}

fn count(outcomes: &[Outcome]) -> Counts {
    let mut c = Counts {
        changes: outcomes.len(),
        ..Counts::default()
    };
    for o in outcomes {
        match o {
            Outcome::Applied { .. } => c.applied += 1,
            Outcome::AlreadyApplied { .. } | Outcome::AppliedUnheard(_) => c.already_applied += 1,
            Outcome::Conflict { .. } => c.conflicts += 1,
            Outcome::DryRun => {}
            _ => c.failed += 1,
        }
    }
    c
}

/// What a change line says after the method and path.
fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Applied { status } => status.to_string(),
        Outcome::AlreadyApplied { status } => format!("{status} (already applied)"),
        Outcome::Conflict {
            status,
            existing: Some(_),
        } => format!("{status} (modified meanwhile in the destination: not overwritten)"),
        Outcome::Conflict {
            status,
            existing: None,
        } => format!("{status} (deleted meanwhile in the destination: not recreated)"),
        Outcome::Refused { status, message } => format!("{status} ({message})"),
        Outcome::BatchFailed(error) => format!("failed, maybe not applied ({error})"),
        Outcome::AppliedUnheard(error) => {
            format!("applied, its answer lost (found in the destination after: {error})")
        }
        Outcome::NotApplied(error) => {
            format!("failed, not applied (not in the destination after: {error})")
        }
        Outcome::NotSent => "not sent (an earlier batch failed)".into(),
        Outcome::DryRun => "dry run".into(),
    }
}

impl MappingResult {
    fn write_text(&self, out: &mut dyn std::io::Write, dry_run: bool) -> std::io::Result<()> {
        let (changes, outcomes, signing) = match &self.state {
            MappingState::Unreadable(error) => {
                return writeln!(out, "Cannot backport {}: {error}", self.mapping)
            }
            MappingState::InSync => return writeln!(out, "Records are in sync. Nothing to do."),
            MappingState::Changed {
                changes,
                outcomes,
                signing,
            } => (changes, outcomes, signing),
        };
        let dest = &self.mapping.destination;
        for (index, (change, outcome)) in changes.iter().zip(outcomes).enumerate() {
            writeln!(
                out,
                "Batch #{index}: {} {} - {}",
                change.method(),
                record_path(dest, &change.id),
                outcome_text(outcome)
            )?;
        }
        let c = count(outcomes);
        let done = c.applied + c.already_applied;
        if dry_run {
            let n = changes.len();
            return match signing {
                Signing::WouldRequest(SignerStatus::ToReview) => {
                    writeln!(out, "Dry run. Would request review for {n} changes.")
                }
                Signing::WouldRequest(_) => {
                    writeln!(out, "Dry run. {n} changes would be applied and signed.")
                }
                _ => writeln!(out, "Dry run. {n} changes would be applied."),
            };
        }
        match signing {
            _ if done < changes.len() => {
                let not_signed = match signing {
                    Signing::Skipped(_) => "; no signature requested",
                    _ => "",
                };
                writeln!(
                    out,
                    "Failed. {done} changes applied, {} not applied{not_signed}.",
                    changes.len() - done
                )
            }
            Signing::NotSigned => writeln!(out, "Done. {done} changes applied."),
            Signing::Requested(SignerStatus::ToReview) => {
                writeln!(out, "Done. Requested review for {done} changes.")
            }
            Signing::Requested(_) => writeln!(out, "Done. {done} changes applied and signed."),
            Signing::Failed { request, error } => writeln!(
                out,
                "Failed. {done} changes applied, but asking for {request} failed: {error}"
            ),
            Signing::Skipped(_) | Signing::WouldRequest(_) => {
                writeln!(out, "Done. {done} changes applied.")
            }
        }
    }

    /// The changes that failed, with their index in the plan.
    fn failed_changes(&self) -> Vec<(usize, &Change, &Outcome)> {
        match &self.state {
            MappingState::Changed {
                changes, outcomes, ..
            } => changes
                .iter()
                .zip(outcomes)
                .enumerate()
                .filter(|(_, (_, o))| o.code().is_some())
                .map(|(i, (c, o))| (i, c, o))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn change_json(&self, index: usize, change: &Change, outcome: &Outcome) -> Value {
        let result = match outcome {
            Outcome::Applied { .. } => "applied",
            Outcome::AlreadyApplied { .. } | Outcome::AppliedUnheard(_) => "already_applied",
            Outcome::NotApplied(_) => "not_applied",
            Outcome::Conflict { .. } => "conflict",
            Outcome::Refused { .. } => "refused",
            Outcome::BatchFailed(_) => "batch_failed",
            Outcome::NotSent => "not_sent",
            Outcome::DryRun => "dry_run",
        };
        let mut item = json!({
            "batch": index,
            "kind": change.kind,
            "id": change.id,
            "method": change.method(),
            "path": record_path(&self.mapping.destination, &change.id),
            "status": outcome.status(),
            "result": result,
        });
        if let Some(code) = outcome.code() {
            item["code"] = json!(code);
            item["destination"] = json!(self.mapping.destination.to_string());
        }
        match outcome {
            Outcome::Refused { message, .. } => item["message"] = json!(message),
            Outcome::BatchFailed(error)
            | Outcome::AppliedUnheard(error)
            | Outcome::NotApplied(error) => item["error"] = client_error_json(error),
            Outcome::Conflict { existing, .. } => item["existing"] = json!(existing),
            _ => {}
        }
        item
    }

    fn signing_json(signing: &Signing) -> Value {
        match signing {
            Signing::NotSigned => json!({"result": "no_signer"}),
            Signing::Requested(r) => json!({"request": r, "result": "requested"}),
            Signing::Skipped(r) => json!({"request": r, "result": "skipped"}),
            Signing::WouldRequest(r) => json!({"request": r, "result": "dry_run"}),
            Signing::Failed { request, error } => json!({
                "request": request, "result": "failed", "code": error.code(),
                "error": client_error_json(error),
            }),
        }
    }

    fn to_json(&self) -> Value {
        let mut item = json!({
            "source": self.mapping.source.to_string(),
            "filters": self.mapping.filters,
            "destination": self.mapping.destination.to_string(),
        });
        match &self.state {
            MappingState::Unreadable(error) => {
                item["status"] = json!("error");
                item["code"] = json!(error.code());
                item["error"] = client_error_json(error);
            }
            MappingState::InSync => item["status"] = json!("in_sync"),
            MappingState::Changed {
                changes,
                outcomes,
                signing,
            } => {
                let ok = outcomes.iter().all(|o| o.code().is_none())
                    && !matches!(signing, Signing::Failed { .. });
                item["status"] = json!(if ok { "ok" } else { "problems" });
                item["changes"] = changes
                    .iter()
                    .zip(outcomes)
                    .enumerate()
                    .map(|(i, (c, o))| self.change_json(i, c, o))
                    .collect();
                item["totals"] = json!(count(outcomes));
                item["signature"] = Self::signing_json(signing);
            }
        }
        item
    }

    /// One clause for the run's error message, when this mapping had problems; and whether they
    /// include a runtime failure (server unreachable, unexpected answers).
    fn problem(&self) -> Option<(String, bool)> {
        match &self.state {
            MappingState::Unreadable(error) => Some((
                format!("{}: {error}", self.mapping),
                !error.is_client_status(),
            )),
            MappingState::InSync => None,
            MappingState::Changed {
                outcomes, signing, ..
            } => {
                let failed = self.failed_changes();
                if !failed.is_empty() {
                    let runtime = outcomes.iter().any(Outcome::is_runtime_failure);
                    let mut ids: Vec<String> = failed
                        .iter()
                        .take(5)
                        .map(|(_, c, o)| format!("{} ({})", c.id, o.code().unwrap_or_default()))
                        .collect();
                    if failed.len() > 5 {
                        ids.push(format!("and {} more", failed.len() - 5));
                    }
                    return Some((
                        format!(
                            "{} of {} changes not applied to {}: {}",
                            failed.len(),
                            outcomes.len(),
                            self.mapping.destination,
                            ids.join(", ")
                        ),
                        runtime,
                    ));
                }
                match signing {
                    Signing::Failed { request, error } => Some((
                        format!(
                            "asking for {request} on {} failed: {error}",
                            self.mapping.destination
                        ),
                        !error.is_client_status(),
                    )),
                    _ => None,
                }
            }
        }
    }
}

impl Report for BackportReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for result in &self.results {
            if self.name_mappings {
                writeln!(out, "{}", result.mapping)?;
            }
            result.write_text(out, self.dry_run)?;
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        let mut totals = Counts::default();
        let mut in_sync = 0;
        for r in &self.results {
            match &r.state {
                MappingState::Changed { outcomes, .. } => {
                    let c = count(outcomes);
                    totals.changes += c.changes;
                    totals.applied += c.applied;
                    totals.already_applied += c.already_applied;
                    totals.conflicts += c.conflicts;
                    totals.failed += c.failed;
                }
                MappingState::InSync => in_sync += 1,
                MappingState::Unreadable(_) => {}
            }
        }
        let mut totals = json!(totals);
        totals["mappings"] = json!(self.results.len());
        totals["in_sync"] = json!(in_sync);
        totals["dry_run"] = json!(self.dry_run);
        json!({
            "results": self.results.iter().map(MappingResult::to_json).collect::<Vec<_>>(),
            "totals": totals,
        })
    }

    fn outcome(&self) -> RunOutcome {
        let problems: Vec<(String, bool)> = self
            .results
            .iter()
            .filter_map(MappingResult::problem)
            .collect();
        if problems.is_empty() {
            return RunOutcome::Ok;
        }
        let mut items = Vec::new();
        for r in &self.results {
            match &r.state {
                MappingState::Unreadable(_) => items.push(r.to_json()),
                MappingState::Changed { signing, .. } => {
                    items.extend(
                        r.failed_changes()
                            .into_iter()
                            .take(100)
                            .map(|(i, c, o)| r.change_json(i, c, o)),
                    );
                    if let Signing::Failed { .. } = signing {
                        items.push(MappingResult::signing_json(signing));
                    }
                }
                MappingState::InSync => {}
            }
        }
        let runtime = problems.iter().any(|(_, runtime)| *runtime);
        let failure = Failure {
            message: problems
                .into_iter()
                .map(|(m, _)| m)
                .collect::<Vec<_>>()
                .join("; "),
            items,
        };
        if runtime {
            RunOutcome::Incomplete(failure)
        } else {
            RunOutcome::Problems(failure)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backport_records::diff::Kind;
    use crate::client::ClientErrorKind;
    use crate::kinto::CollectionRef;

    fn mapping() -> Mapping {
        Mapping {
            source: CollectionRef::new("ws", "new"),
            filters: Vec::new(),
            destination: CollectionRef::new("ws", "old"),
        }
    }

    fn change(kind: Kind, id: &str) -> Change {
        Change {
            kind,
            id: id.into(),
            content: None,
            read_timestamp: None,
        }
    }

    fn report(outcomes: Vec<Outcome>, signing: Signing) -> BackportReport {
        let kinds = [Kind::Create, Kind::Update, Kind::Delete];
        let changes = (0..outcomes.len())
            .map(|i| change(kinds[i % 3], &format!("r{i}")))
            .collect();
        BackportReport {
            dry_run: false,
            name_mappings: false,
            results: vec![MappingResult {
                mapping: mapping(),
                state: MappingState::Changed {
                    changes,
                    outcomes,
                    signing,
                },
            }],
        }
    }

    fn text(report: &BackportReport) -> String {
        let mut out = Vec::new();
        report.write_text(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn server_down() -> ClientError {
        ClientError {
            method: "POST".into(),
            url: "http://h/v1/batch".into(),
            attempts: 5,
            kind: ClientErrorKind::Timeout,
        }
    }

    #[test]
    fn final_lines_follow_the_signature_step() {
        let applied = || {
            vec![
                Outcome::Applied { status: 201 },
                Outcome::Applied { status: 200 },
            ]
        };
        for (signing, last) in [
            (Signing::NotSigned, "Done. 2 changes applied."),
            (
                Signing::Requested(SignerStatus::ToSign),
                "Done. 2 changes applied and signed.",
            ),
            (
                Signing::Requested(SignerStatus::ToReview),
                "Done. Requested review for 2 changes.",
            ),
        ] {
            let r = report(applied(), signing);
            assert_eq!(text(&r).lines().last(), Some(last));
            assert_eq!(r.outcome(), RunOutcome::Ok);
        }
        let r = report(applied(), Signing::NotSigned);
        assert_eq!(
            text(&r).lines().next(),
            Some("Batch #0: PUT /buckets/ws/collections/old/records/r0 - 201")
        );
    }

    #[test]
    fn refusals_are_problems_and_unreachable_servers_incomplete() {
        let r = report(
            vec![
                Outcome::Applied { status: 201 },
                Outcome::Conflict {
                    status: 412,
                    existing: None,
                },
                Outcome::Refused {
                    status: 403,
                    message: "Unauthorized".into(),
                },
            ],
            Signing::Skipped(SignerStatus::ToReview),
        );
        assert_eq!(
            text(&r).lines().collect::<Vec<_>>()[1..],
            [
                "Batch #1: PUT /buckets/ws/collections/old/records/r1 - 412 (deleted meanwhile in the destination: not recreated)",
                "Batch #2: DELETE /buckets/ws/collections/old/records/r2 - 403 (Unauthorized)",
                "Failed. 1 changes applied, 2 not applied; no signature requested.",
            ]
        );
        let RunOutcome::Problems(failure) = r.outcome() else {
            panic!("{:?}", r.outcome())
        };
        assert_eq!(
            failure.message,
            "2 of 3 changes not applied to ws/old: r1 (CONCURRENT_EDIT), r2 (FORBIDDEN)"
        );
        assert_eq!(failure.items.len(), 2);
        assert_eq!(failure.items[0]["batch"], 1);

        let r = report(
            vec![Outcome::BatchFailed(server_down()), Outcome::NotSent],
            Signing::NotSigned,
        );
        assert!(matches!(r.outcome(), RunOutcome::Incomplete(_)));
        let r = report(
            vec![Outcome::Applied { status: 201 }],
            Signing::Failed {
                request: SignerStatus::ToSign,
                error: server_down(),
            },
        );
        let RunOutcome::Incomplete(failure) = r.outcome() else {
            panic!("{:?}", r.outcome())
        };
        assert!(failure
            .message
            .starts_with("asking for to-sign on ws/old failed: POST"));
    }

    #[test]
    fn json_counts_every_change() {
        let r = report(
            vec![
                Outcome::Applied { status: 201 },
                Outcome::AlreadyApplied { status: 412 },
                Outcome::Refused {
                    status: 400,
                    message: "Invalid".into(),
                },
            ],
            Signing::NotSigned,
        );
        let doc = r.to_json();
        assert_eq!(
            doc["totals"],
            serde_json::json!({"changes": 3, "applied": 1, "already_applied": 1, "conflicts": 0,
                               "failed": 1, "mappings": 1, "in_sync": 0, "dry_run": false})
        );
        let changes = doc["results"][0]["changes"].as_array().unwrap();
        assert_eq!(changes[1]["result"], "already_applied");
        assert_eq!(changes[2]["code"], "SUBREQUEST_FAILED");
        assert_eq!(changes[2]["message"], "Invalid");
        assert_eq!(doc["results"][0]["status"], "problems");
    }
}
