//! What a `blockpages_generator` run did: records read, warnings about odd records, pages
//! written and uploaded, stale pages deleted, and how long each phase took.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::records::BlockedItem;
use crate::store::StoreError;
use crate::report::{Failure, Outcome, Report};

/// One generated file and what became of it.
#[derive(Debug, Clone)]
pub struct PageOutcome {
    pub file_name: String,
    /// The index in [`BlockpagesReport::items`] of the record it shows (`None` for the index).
    pub item: Option<usize>,
    /// Written to `TARGET_DIR` (path), or why not; `None` when there is no `TARGET_DIR`.
    pub written: Option<Result<PathBuf, String>>,
    /// Uploaded (public URL) or why not; `None` when nothing was uploaded (dry run, no bucket).
    pub uploaded: Option<Result<String, StoreError>>,
}

/// The S3 side of the run.
#[derive(Debug, Clone)]
pub enum UploadPhase {
    /// `DRY_RUN=1`: S3 was not contacted.
    DryRun { bucket: String },
    /// The bucket could not be found or created: nothing was uploaded.
    BucketFailed { bucket: String, error: StoreError },
    Done {
        bucket: String,
        created: bool,
        stale: StalePhase,
    },
}

/// `--delete-stale`: what happened to pages no longer produced.
#[derive(Debug, Clone)]
pub enum StalePhase {
    NotAsked,
    /// Some uploads failed: nothing is deleted on a partial upload.
    SkippedAfterFailures,
    ListFailed(StoreError),
    Deleted(Vec<(String, Result<(), StoreError>)>),
}

#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub read: Duration,
    pub render: Duration,
    pub write: Duration,
    pub upload: Duration,
    pub delete: Duration,
}

#[derive(Debug, Clone)]
pub struct BlockpagesReport {
    /// `(collection path, records read)`.
    pub collections: Vec<(String, usize)>,
    /// The records as shown, in index order (with their warnings).
    pub items: Vec<BlockedItem>,
    /// `index.html` first, then the record pages in index order.
    pub pages: Vec<PageOutcome>,
    pub target_dir: Option<PathBuf>,
    pub upload: UploadPhase,
    pub timings: Timings,
}

impl BlockpagesReport {
    fn bucket(&self) -> &str {
        match &self.upload {
            UploadPhase::DryRun { bucket }
            | UploadPhase::BucketFailed { bucket, .. }
            | UploadPhase::Done { bucket, .. } => bucket,
        }
    }

    fn stale(&self) -> Option<&StalePhase> {
        match &self.upload {
            UploadPhase::Done { stale, .. } => Some(stale),
            _ => None,
        }
    }

    fn warnings(&self) -> impl Iterator<Item = String> + '_ {
        self.items.iter().flat_map(|item| {
            item.warnings
                .iter()
                .map(move |w| format!("{} ({}): {w}", item.label(), item.file_name))
        })
    }

    fn count(&self, pick: impl Fn(&PageOutcome) -> bool) -> usize {
        self.pages.iter().filter(|p| pick(p)).count()
    }

    fn stale_deletions(&self) -> &[(String, Result<(), StoreError>)] {
        match self.stale() {
            Some(StalePhase::Deleted(done)) => done,
            _ => &[],
        }
    }

    fn page_json(&self, page: &PageOutcome) -> Value {
        let item = page.item.and_then(|i| self.items.get(i));
        let mut value = json!({
            "file": page.file_name,
            "record": item.map(BlockedItem::label),
            "status": "ok",
            "written": page.written.as_ref().and_then(|w| w.as_ref().ok()),
            "uploaded": matches!(page.uploaded, Some(Ok(_))),
            "url": page.uploaded.as_ref().and_then(|u| u.as_ref().ok()),
            "warnings": item.map(|i| i.warnings.as_slice()).unwrap_or_default(),
        });
        if let Some(Err(error)) = &page.written {
            value["status"] = json!("error");
            value["code"] = json!("WRITE_FAILED");
            value["error"] = json!({"code": "WRITE_FAILED", "message": error});
        }
        if let Some(Err(error)) = &page.uploaded {
            value["status"] = json!("error");
            value["code"] = json!("UPLOAD_FAILED");
            value["error"] = error.json();
        }
        value
    }

    fn stale_json(key: &str, result: &Result<(), StoreError>) -> Value {
        match result {
            Ok(()) => json!({"file": key, "stale": true, "status": "deleted"}),
            Err(error) => json!({
                "file": key, "stale": true, "status": "error", "code": "DELETE_FAILED",
                "error": error.json(),
            }),
        }
    }

    fn failed_items(&self) -> Vec<Value> {
        let mut items: Vec<Value> = self
            .pages
            .iter()
            .filter(|p| matches!(p.written, Some(Err(_))) || matches!(p.uploaded, Some(Err(_))))
            .map(|p| self.page_json(p))
            .collect();
        items.extend(
            self.stale_deletions()
                .iter()
                .filter(|(_, r)| r.is_err())
                .map(|(k, r)| Self::stale_json(k, r)),
        );
        items
    }
}

impl Report for BlockpagesReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for (path, count) in &self.collections {
            writeln!(out, "Read {count} records from {path}")?;
        }
        writeln!(
            out,
            "Generated {} pages (index.html and {} record pages)",
            self.pages.len(),
            self.pages.len().saturating_sub(1)
        )?;
        for warning in self.warnings() {
            writeln!(out, "Warning: {warning}")?;
        }
        for page in &self.pages {
            match &page.written {
                Some(Ok(path)) => writeln!(out, "Writing {}", path.display())?,
                Some(Err(e)) => writeln!(out, "Could not write {}: {e}", page.file_name)?,
                None => {}
            }
        }
        let bucket = self.bucket();
        match &self.upload {
            UploadPhase::DryRun { .. } => writeln!(
                out,
                "Dry run: nothing uploaded to Amazon S3 bucket {bucket}."
            )?,
            UploadPhase::BucketFailed { error, .. } => {
                writeln!(out, "Could not prepare Amazon S3 bucket {bucket}: {error}")?
            }
            UploadPhase::Done { created, stale, .. } => {
                if *created {
                    writeln!(out, "Created Amazon S3 bucket {bucket}")?;
                }
                for page in &self.pages {
                    writeln!(
                        out,
                        "Uploading {} to Amazon S3 bucket {bucket}",
                        page.file_name
                    )?;
                    match &page.uploaded {
                        Some(Ok(url)) => writeln!(out, "File uploaded to {url}")?,
                        Some(Err(e)) => writeln!(out, "Upload failed for {}: {e}", page.file_name)?,
                        None => {}
                    }
                }
                match stale {
                    StalePhase::NotAsked => {}
                    StalePhase::SkippedAfterFailures => {
                        writeln!(out, "Stale pages not deleted: some uploads failed.")?
                    }
                    StalePhase::ListFailed(e) => {
                        writeln!(out, "Could not list the stale pages: {e}")?
                    }
                    StalePhase::Deleted(done) => {
                        for (key, result) in done {
                            match result {
                                Ok(()) => writeln!(
                                    out,
                                    "Deleted stale page {key} from Amazon S3 bucket {bucket}"
                                )?,
                                Err(e) => writeln!(out, "Could not delete stale page {key}: {e}")?,
                            }
                        }
                    }
                }
            }
        }
        let written = self.count(|p| matches!(p.written, Some(Ok(_))));
        let uploaded = self.count(|p| matches!(p.uploaded, Some(Ok(_))));
        let mut summary = format!("Done. {} pages generated", self.pages.len());
        if let Some(dir) = &self.target_dir {
            summary.push_str(&format!(", {written} written to {}", dir.display()));
        }
        if matches!(self.upload, UploadPhase::Done { .. }) {
            summary.push_str(&format!(
                ", {uploaded} uploaded to Amazon S3 bucket {bucket}"
            ));
        }
        if matches!(self.stale(), Some(StalePhase::Deleted(_))) {
            let deleted = self
                .stale_deletions()
                .iter()
                .filter(|(_, r)| r.is_ok())
                .count();
            summary.push_str(&format!(", {deleted} stale pages deleted"));
        }
        let warnings = self.warnings().count();
        writeln!(out, "{summary}, {warnings} warnings.")
    }

    fn to_json(&self) -> Value {
        let mut results: Vec<Value> = self.pages.iter().map(|p| self.page_json(p)).collect();
        results.extend(
            self.stale_deletions()
                .iter()
                .map(|(k, r)| Self::stale_json(k, r)),
        );
        let secs = |d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
        json!({
            "results": results,
            "totals": {
                "records": self.items.len(),
                "pages": self.pages.len(),
                "written": self.count(|p| matches!(p.written, Some(Ok(_)))),
                "uploaded": self.count(|p| matches!(p.uploaded, Some(Ok(_)))),
                "failed": self.failed_items().len(),
                "stale_deleted": self.stale_deletions().iter().filter(|(_, r)| r.is_ok()).count(),
                "warnings": self.warnings().count(),
                "bucket": self.bucket(),
                "bucket_created": matches!(self.upload, UploadPhase::Done { created: true, .. }),
                "dry_run": matches!(self.upload, UploadPhase::DryRun { .. }),
            },
            "timings": {
                "read_seconds": secs(self.timings.read),
                "render_seconds": secs(self.timings.render),
                "write_seconds": secs(self.timings.write),
                "upload_seconds": secs(self.timings.upload),
                "delete_seconds": secs(self.timings.delete),
            },
        })
    }

    fn outcome(&self) -> Outcome {
        let bucket = self.bucket();
        let items = self.failed_items();
        let first_write = self.pages.iter().find_map(|p| match &p.written {
            Some(Err(e)) => Some(format!("{}: {e}", p.file_name)),
            _ => None,
        });
        let upload_errors: Vec<&StoreError> = self
            .pages
            .iter()
            .filter_map(|p| match &p.uploaded {
                Some(Err(e)) => Some(e),
                _ => None,
            })
            .collect();
        let delete_errors: Vec<&StoreError> = self
            .stale_deletions()
            .iter()
            .filter_map(|(_, r)| r.as_ref().err())
            .collect();
        let message = if let UploadPhase::BucketFailed { error, .. } = &self.upload {
            Some(format!(
                "Could not prepare Amazon S3 bucket {bucket}: {error}"
            ))
        } else if let Some(first) = upload_errors.first() {
            Some(format!(
                "{} of {} pages could not be uploaded to Amazon S3 bucket {bucket}: {first}",
                upload_errors.len(),
                self.pages.len()
            ))
        } else if let Some(first) = first_write {
            Some(format!("Some pages could not be written: {first}"))
        } else if let Some(StalePhase::ListFailed(error)) = self.stale() {
            Some(format!("Could not list the stale pages: {error}"))
        } else {
            delete_errors.first().map(|first| {
                format!(
                    "{} stale pages could not be deleted: {first}",
                    delete_errors.len()
                )
            })
        };
        match message {
            Some(message) => Outcome::Incomplete(Failure { message, items }),
            None => Outcome::Ok,
        }
    }
}
