//! The report of `attachments_integrity`: per collection its bad files (collection, record, URL,
//! what differs: `MISSING`, `STATUS`, `SIZE_MISMATCH`, `HASH_MISMATCH`) or an OK line, then the
//! totals in files and bytes. A 4xx answer is a finding; any other failed download means the
//! check could not tell (exit 3 when nothing else is wrong).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::attachment::{Attachment, Checked, Found, InvalidAttachment};
use super::slice::Slice;
use crate::client::ClientError;
use crate::kinto::{CollectionRef, InvalidEntry};
use crate::report::{client_error_json, is_finding, judge, Failure, Outcome, Report};

/// One downloaded file.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub attachment: Attachment,
    /// The URL, as shown.
    pub url: String,
    pub found: Found,
}

impl FileResult {
    pub fn checked(&self) -> Checked<'_> {
        self.found.checked(&self.attachment)
    }

    fn to_json(&self) -> Value {
        let a = &self.attachment;
        let mut item = json!({
            "bucket": a.collection.bucket, "collection": a.collection.collection,
            "record": a.record, "location": a.location, "url": self.url,
            "size": a.size, "hash": a.hash,
        });
        let verdict = match self.checked() {
            Checked::Ok => json!({"status": "ok"}),
            Checked::Bad(code, detail) => json!({"status": "bad", "code": code, "detail": detail}),
            Checked::CouldNotTell(error) => json!({
                "status": "error", "code": error.code(), "error": client_error_json(error),
            }),
        };
        merge(&mut item, verdict);
        let measured = match &self.found {
            Found::SizeMismatch { actual } => json!({"actual_size": actual}),
            Found::HashMismatch { actual } => json!({"actual_size": a.size, "actual_hash": actual}),
            Found::Failed(error) => json!({"http_status": error.status()}),
            Found::Ok => json!({"actual_size": a.size, "actual_hash": a.hash}),
        };
        let extra = measured;
        merge(&mut item, extra);
        item
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct AttachmentsReport {
    pub slice: Slice,
    /// The published collections whose records were read, in monitor order.
    pub collections: Vec<CollectionRef>,
    /// Monitored previews, left out.
    pub previews_ignored: usize,
    /// Every attachment of the published collections, all shards together.
    pub all_files: usize,
    pub all_bytes: u64,
    /// This shard's files, in location order.
    pub files: Vec<FileResult>,
    pub invalid: Vec<InvalidAttachment>,
    /// Collections whose changeset could not be read.
    pub unreadable: Vec<(CollectionRef, ClientError)>,
    pub invalid_entries: Vec<InvalidEntry>,
}

impl AttachmentsReport {
    pub fn new(slice: Slice, previews_ignored: usize, invalid_entries: Vec<InvalidEntry>) -> Self {
        AttachmentsReport {
            slice,
            collections: Vec::new(),
            previews_ignored,
            all_files: 0,
            all_bytes: 0,
            files: Vec::new(),
            invalid: Vec::new(),
            unreadable: Vec::new(),
            invalid_entries,
        }
    }

    fn invalid_json(bad: &InvalidAttachment) -> Value {
        json!({
            "bucket": bad.collection.bucket, "collection": bad.collection.collection,
            "record": bad.record, "status": "bad", "code": "INVALID_ATTACHMENT", "error": bad.reason,
        })
    }

    fn unreadable_json((collection, error): &(CollectionRef, ClientError)) -> Value {
        json!({
            "bucket": collection.bucket, "collection": collection.collection, "status": "error",
            "code": error.code(), "error": client_error_json(error),
        })
    }

    fn invalid_entry_json(bad: &InvalidEntry) -> Value {
        json!({"id": bad.id, "status": "bad", "code": "INVALID_ENTRY", "error": bad.reason})
    }

    /// Everything that is not OK, in JSON form, and how many of them are findings.
    fn failed(&self) -> (Vec<Value>, usize, Vec<&ClientError>) {
        let mut items = Vec::new();
        let mut could_not_tell = Vec::new();
        for file in &self.files {
            match file.checked() {
                Checked::Ok => continue,
                Checked::CouldNotTell(error) => could_not_tell.push(error),
                Checked::Bad(..) => {}
            }
            items.push(file.to_json());
        }
        items.extend(self.invalid.iter().map(Self::invalid_json));
        for unreadable in &self.unreadable {
            if !is_finding(&unreadable.1) {
                could_not_tell.push(&unreadable.1);
            }
            items.push(Self::unreadable_json(unreadable));
        }
        items.extend(self.invalid_entries.iter().map(Self::invalid_entry_json));
        let findings = items.len() - could_not_tell.len();
        (items, findings, could_not_tell)
    }

    fn totals(&self) -> Value {
        let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
        let (mut ok, mut bad, mut errors) = (0, 0, 0);
        for file in &self.files {
            match file.checked() {
                Checked::Ok => ok += 1,
                Checked::Bad(code, _) => {
                    bad += 1;
                    *codes.entry(code).or_default() += 1;
                }
                Checked::CouldNotTell(_) => errors += 1,
            }
        }
        json!({
            "slice": self.slice.to_string(),
            "collections": self.collections.len(),
            "previews_ignored": self.previews_ignored,
            "files": self.files.len(),
            "bytes": self.files.iter().map(|f| f.attachment.size).sum::<u64>(),
            "ok": ok, "bad": bad, "could_not_tell": errors, "by_code": codes,
            "invalid_attachments": self.invalid.len(),
            "unreadable_collections": self.unreadable.len(),
            "invalid_entries": self.invalid_entries.len(),
            "all_files": self.all_files,
            "all_bytes": self.all_bytes,
        })
    }
}

impl Report for AttachmentsReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for collection in &self.collections {
            let files: Vec<&FileResult> = self
                .files
                .iter()
                .filter(|f| &f.attachment.collection == collection)
                .collect();
            let mut not_ok = 0;
            for file in &files {
                let a = &file.attachment;
                let (code, detail) = match file.checked() {
                    Checked::Ok => continue,
                    Checked::Bad(code, detail) => (code, detail),
                    Checked::CouldNotTell(error) => (error.code(), error.kind.to_string()),
                };
                not_ok += 1;
                writeln!(
                    out,
                    "{collection} {} NOT OK {code}: {detail} ({})",
                    a.record, file.url
                )?;
            }
            for bad in self.invalid.iter().filter(|b| &b.collection == collection) {
                not_ok += 1;
                writeln!(
                    out,
                    "{collection} {} NOT OK INVALID_ATTACHMENT: {}",
                    bad.record, bad.reason
                )?;
            }
            let bytes: u64 = files.iter().map(|f| f.attachment.size).sum();
            if not_ok == 0 {
                writeln!(out, "{collection} OK: {} files, {bytes} bytes", files.len())?;
            } else {
                writeln!(
                    out,
                    "{collection} NOT OK: {not_ok} of {} files, {bytes} bytes",
                    files.len()
                )?;
            }
        }
        for (collection, error) in &self.unreadable {
            writeln!(out, "{collection} NOT OK: {error}")?;
        }
        for bad in &self.invalid_entries {
            writeln!(out, "entry {} NOT OK: {}", bad.id, bad.reason)?;
        }
        let (items, _, _) = self.failed();
        writeln!(
            out,
            "Slice {}: {} files, {} bytes checked ({} files, {} bytes in all); {} NOT OK",
            self.slice,
            self.files.len(),
            self.files.iter().map(|f| f.attachment.size).sum::<u64>(),
            self.all_files,
            self.all_bytes,
            items.len()
        )
    }

    fn to_json(&self) -> Value {
        let mut results: Vec<Value> = self.files.iter().map(FileResult::to_json).collect();
        results.extend(self.invalid.iter().map(Self::invalid_json));
        results.extend(self.unreadable.iter().map(Self::unreadable_json));
        results.extend(self.invalid_entries.iter().map(Self::invalid_entry_json));
        json!({"results": results, "totals": self.totals()})
    }

    fn outcome(&self) -> Outcome {
        let (items, findings, could_not_tell) = self.failed();
        judge(findings, could_not_tell.len(), || {
            let mut parts = Vec::new();
            if findings > 0 {
                parts.push(format!("{findings} attachment problem(s) found."));
            }
            if let Some(first) = could_not_tell.first() {
                parts.push(format!(
                    "Could not check {} item(s): {first}",
                    could_not_tell.len()
                ));
            }
            Failure {
                message: parts.join(" "),
                items,
            }
        })
    }
}
