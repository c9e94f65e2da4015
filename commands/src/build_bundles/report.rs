//! The report of `build_bundles`: one line per output (`changesets.json.mozlz4`,
//! `startup.json.mozlz4`, each `{bid}--{cid}.zip`) saying what happened to it and its size, then
//! the totals. A bundle whose attachments do not verify, or whose records cannot be bundled, is a
//! finding (exit 1); a changeset that could not be read, a file that could not be downloaded, an
//! upload or a deletion that failed mean the run could not complete (exit 3).

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::attachment::{Attachment, Checked, Found};
use crate::client::ClientError;
use crate::kinto::{CollectionRef, InvalidEntry};
use crate::report::{client_error_json, judge, Alert, Failure, Outcome, Report};

/// An attachment of a bundle that did not verify.
#[derive(Debug, Clone)]
pub struct FileProblem {
    pub attachment: Attachment,
    /// The URL, as shown.
    pub url: String,
    pub found: Found,
}

impl FileProblem {
    fn code_and_detail(&self) -> (&'static str, String, bool) {
        match self.found.checked(&self.attachment) {
            Checked::Ok => ("OK", String::new(), true),
            Checked::Bad(code, detail) => (code, detail, true),
            Checked::CouldNotTell(error) => (error.code(), error.kind.to_string(), false),
        }
    }

    fn to_json(&self) -> Value {
        let (code, detail, _) = self.code_and_detail();
        json!({"record": self.attachment.record, "location": self.attachment.location,
               "url": self.url, "code": code, "detail": detail})
    }
}

/// What happened to one output.
#[derive(Debug, Clone)]
pub enum Action {
    /// Built and stored (and written to `TARGET_DIR` when given).
    Written,
    /// Dry run: built (and written to `TARGET_DIR` when given), not uploaded.
    Built,
    /// Its collections did not change since the stored object was written.
    Unchanged,
    /// The attachments weigh more than `BUNDLE_MAX_SIZE_BYTES`: not built.
    TooBig { declared: u64 },
    /// Attachments that did not verify: nothing built nor uploaded.
    Failed(Vec<FileProblem>),
    /// The records cannot be bundled (an attachment without hash, an id that is no file name).
    Invalid(String),
    /// Not built: some changesets could not be read.
    Incomplete,
    /// A flagged collection without attachments and without stored zip: nothing to do.
    NoAttachments,
    /// Built, but storing it (upload or `TARGET_DIR`) failed.
    StoreFailed(String),
    /// The stored zip was deleted, would be (dry run), was kept because some changesets could
    /// not be read, or its deletion failed; with the reason.
    Deleted(&'static str),
    WouldDelete(&'static str),
    DeletionWithheld(&'static str),
    DeleteFailed(&'static str, String),
}

/// One output and what happened to it.
#[derive(Debug, Clone)]
pub struct Output {
    /// The file name (`main--cfr.zip`), also the object's name under the store's `bundles/`.
    pub name: String,
    /// The collections of a mozlz4 file, the attachments of a zip.
    pub items: usize,
    /// Bytes of the built file (0 when not built).
    pub bytes: u64,
    pub action: Action,
    /// Where it was written in `TARGET_DIR`.
    pub written_to: Option<PathBuf>,
}

impl Output {
    pub fn new(name: impl Into<String>, items: usize, action: Action) -> Output {
        Output {
            name: name.into(),
            items,
            bytes: 0,
            action,
            written_to: None,
        }
    }

    fn is_zip(&self) -> bool {
        self.name.ends_with(".zip")
    }

    /// `status`, and whether it is a finding (`Some(true)`), could-not-tell (`Some(false)`) or
    /// fine (`None`).
    fn status(&self) -> (&'static str, Option<bool>) {
        match &self.action {
            Action::Written => ("written", None),
            Action::Built => ("built", None),
            Action::Unchanged => ("unchanged", None),
            Action::TooBig { .. } => ("too_big", None),
            Action::NoAttachments => ("no_attachments", None),
            Action::Failed(problems) => {
                let finding = problems.iter().any(|p| p.code_and_detail().2);
                ("failed", Some(finding))
            }
            Action::Invalid(_) => ("failed", Some(true)),
            Action::Incomplete => ("not_built", Some(false)),
            Action::StoreFailed(_) => ("store_failed", Some(false)),
            Action::Deleted(_) => ("deleted", None),
            Action::WouldDelete(_) => ("would_delete", None),
            Action::DeletionWithheld(_) => ("deletion_withheld", None),
            Action::DeleteFailed(..) => ("delete_failed", Some(false)),
        }
    }

    fn what(&self) -> String {
        let unit = if self.is_zip() { "files" } else { "collections" };
        format!("{} {unit}, {} bytes", self.items, self.bytes)
    }

    fn line(&self, limit: u64) -> String {
        let name = &self.name;
        match &self.action {
            Action::Written => format!("{name}: written ({})", self.what()),
            Action::Built => format!("{name}: built, not uploaded (dry run) ({})", self.what()),
            Action::Unchanged => format!("{name}: unchanged"),
            Action::TooBig { declared } => format!(
                "{name}: SKIPPED too big: {} files, {declared} bytes of attachments > {limit}",
                self.items
            ),
            Action::NoAttachments => format!("{name}: no attachments, nothing to bundle"),
            Action::Failed(problems) => {
                let mut text = format!("{name}: FAILED, not uploaded:");
                for p in problems {
                    let (code, detail, _) = p.code_and_detail();
                    text.push_str(&format!(
                        "\n  {} {code}: {detail} ({})",
                        p.attachment.record, p.url
                    ));
                }
                text
            }
            Action::Invalid(why) => format!("{name}: FAILED, not uploaded: {why}"),
            Action::Incomplete => format!("{name}: NOT BUILT: some changesets could not be read"),
            Action::StoreFailed(e) => format!("{name}: NOT STORED ({}): {e}", self.what()),
            Action::Deleted(why) => format!("{name}: deleted ({why})"),
            Action::WouldDelete(why) => format!("{name}: would be deleted (dry run) ({why})"),
            Action::DeletionWithheld(why) => format!(
                "{name}: kept, not deleted: some changesets could not be read ({why})"
            ),
            Action::DeleteFailed(why, e) => format!("{name}: NOT DELETED ({why}): {e}"),
        }
    }

    fn to_json(&self, limit: u64) -> Value {
        let (status, _) = self.status();
        let mut item = json!({
            "name": self.name, "status": status, "items": self.items, "bytes": self.bytes,
            "target_path": self.written_to,
        });
        let extra = match &self.action {
            Action::TooBig { declared } => json!({"declared_bytes": declared, "limit": limit}),
            Action::Failed(problems) => {
                json!({"files": problems.iter().map(FileProblem::to_json).collect::<Vec<_>>()})
            }
            Action::Invalid(why) | Action::StoreFailed(why) => json!({"error": why}),
            Action::Deleted(why) | Action::WouldDelete(why) | Action::DeletionWithheld(why) => {
                json!({"reason": why})
            }
            Action::DeleteFailed(why, e) => json!({"reason": why, "error": e}),
            _ => json!({}),
        };
        if let (Some(item), Value::Object(extra)) = (item.as_object_mut(), extra) {
            item.extend(extra);
        }
        item
    }
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct BundlesReport {
    /// The monitor collection read.
    pub monitor: String,
    /// Published changesets read, and monitored previews left out.
    pub changesets: usize,
    pub previews_ignored: usize,
    /// Where outputs go: the store (`gs://…/bundles/`), or none in a dry run without one.
    pub store: Option<String>,
    pub dry_run: bool,
    pub limit: u64,
    pub outputs: Vec<Output>,
    /// Collections whose changeset could not be read.
    pub unreadable: Vec<(CollectionRef, ClientError)>,
    pub invalid_entries: Vec<InvalidEntry>,
}

impl BundlesReport {
    fn count(&self, status: &str) -> usize {
        self.outputs.iter().filter(|o| o.status().0 == status).count()
    }

    fn problems(&self) -> (Vec<Value>, usize, usize) {
        let (mut items, mut findings, mut could_not_tell) = (Vec::new(), 0, 0);
        for output in &self.outputs {
            match output.status().1 {
                Some(true) => findings += 1,
                Some(false) => could_not_tell += 1,
                None => continue,
            }
            items.push(output.to_json(self.limit));
        }
        for (collection, error) in &self.unreadable {
            could_not_tell += 1;
            items.push(json!({"bucket": collection.bucket, "collection": collection.collection,
                              "status": "unreadable", "error": client_error_json(error)}));
        }
        (items, findings, could_not_tell)
    }
}

impl Report for BundlesReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(
            out,
            "Read {} published changesets from {} ({} previews left out)",
            self.changesets, self.monitor, self.previews_ignored
        )?;
        for (collection, error) in &self.unreadable {
            writeln!(out, "{collection}: UNREADABLE changeset: {error}")?;
        }
        for bad in &self.invalid_entries {
            writeln!(out, "entry {}: ignored: {}", bad.id, bad.reason)?;
        }
        for output in &self.outputs {
            writeln!(out, "{}", output.line(self.limit))?;
        }
        let store = match (&self.store, self.dry_run) {
            (Some(store), false) => store.clone(),
            (Some(store), true) => format!("{store} (dry run: nothing uploaded nor deleted)"),
            (None, _) => "no store (dry run)".into(),
        };
        writeln!(
            out,
            "{store}: {} written, {} built, {} unchanged, {} too big, {} failed, {} deleted",
            self.count("written"),
            self.count("built"),
            self.count("unchanged"),
            self.count("too_big"),
            self.count("failed") + self.count("not_built") + self.count("store_failed"),
            self.count("deleted"),
        )
    }

    fn to_json(&self) -> Value {
        let outputs: Vec<Value> = self.outputs.iter().map(|o| o.to_json(self.limit)).collect();
        let unreadable: Vec<Value> = self
            .unreadable
            .iter()
            .map(|(c, e)| json!({"bucket": c.bucket, "collection": c.collection, "error": client_error_json(e)}))
            .collect();
        let mut totals = json!({
            "changesets": self.changesets, "previews_ignored": self.previews_ignored,
            "unreadable_changesets": self.unreadable.len(),
            "invalid_entries": self.invalid_entries.len(),
            "bytes_written": self.outputs.iter().filter(|o| matches!(o.action, Action::Written)).map(|o| o.bytes).sum::<u64>(),
        });
        for status in [
            "written", "built", "unchanged", "too_big", "no_attachments", "failed", "not_built",
            "store_failed", "deleted", "would_delete", "deletion_withheld", "delete_failed",
        ] {
            totals[status] = json!(self.count(status));
        }
        json!({
            "store": self.store, "dry_run": self.dry_run, "bundle_max_size_bytes": self.limit,
            "results": outputs, "unreadable": unreadable, "totals": totals,
        })
    }

    fn outcome(&self) -> Outcome {
        let (items, findings, could_not_tell) = self.problems();
        judge(findings, could_not_tell, || {
            let mut parts = Vec::new();
            if findings > 0 {
                parts.push(format!("{findings} bundle(s) failed."));
            }
            if could_not_tell > 0 {
                parts.push(format!("{could_not_tell} output(s) or changeset(s) could not be completed."));
            }
            Failure {
                message: parts.join(" "),
                items,
            }
        })
    }

    /// One event per bundle that failed or was too big to build, and one for the rest of a run
    /// that could not complete.
    fn alerts(&self) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for output in &self.outputs {
            let message = match &output.action {
                Action::Failed(_) | Action::Invalid(_) => format!("Bundle {} failed", output.name),
                Action::TooBig { .. } => format!("Bundle {} is too big", output.name),
                _ => continue,
            };
            let mut extra = serde_json::Map::new();
            extra.insert("bundle".into(), output.to_json(self.limit));
            alerts.push(Alert { message, extra });
        }
        if alerts.is_empty() {
            return alerts;
        }
        let (_, _, could_not_tell) = self.problems();
        if could_not_tell > 0 {
            if let Outcome::Incomplete(failure) | Outcome::Problems(failure) = self.outcome() {
                let mut extra = serde_json::Map::new();
                extra.insert("failures".into(), Value::Array(failure.items));
                alerts.push(Alert {
                    message: failure.message,
                    extra,
                });
            }
        }
        alerts
    }
}
