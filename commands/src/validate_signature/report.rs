//! The report of `validate_signature`: the original's lines (`NN/TT /buckets/b/collections/c:  OK
//! (0.01s)`, `SKIP`, `⚠ BAD Signature ⚠`) with the error code and detail, warnings under their
//! collection, the original's failure blocks in the run's error message, and the same data as
//! JSON.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use super::chains::ChainInfo;
use crate::client::ClientError;
use crate::kinto::{ChangesEntry, InvalidEntry};
use crate::report::{client_error_json, is_finding, judge, Failure, Outcome, Report};
use crate::signature::{colon_hex, format_utc, VerifyError, Warning};

/// The verdict on one collection.
#[derive(Debug, Clone)]
pub enum Verdict {
    Ok,
    /// No signature, and the collection never held records (newly configured).
    Skip,
    Bad(VerifyError),
    /// The changeset could not be downloaded.
    Unreadable(ClientError),
}

/// One published signature and what became of it.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    pub x5u: Option<String>,
    pub root_sha256: Option<[u8; 32]>,
    pub error: Option<VerifyError>,
}

#[derive(Debug, Clone)]
pub struct CollectionResult {
    pub entry: ChangesEntry,
    pub verdict: Verdict,
    /// Time spent verifying, once the changeset was downloaded.
    pub duration: Duration,
    pub records: Option<usize>,
    pub records_timestamp: Option<u64>,
    /// The metadata's `last_modified`: when the signature was written.
    pub signed_on: Option<u64>,
    pub warnings: Vec<Warning>,
    pub signatures: Vec<SignatureCheck>,
}

impl CollectionResult {
    /// The 1-based position of the first signature entry that verified, if one did.
    pub fn verified_by(&self) -> Option<usize> {
        self.signatures
            .iter()
            .position(|s| s.error.is_none())
            .map(|i| i + 1)
    }

    pub fn new(entry: ChangesEntry, verdict: Verdict) -> Self {
        CollectionResult {
            entry,
            verdict,
            duration: Duration::ZERO,
            records: None,
            records_timestamp: None,
            signed_on: None,
            warnings: Vec::new(),
            signatures: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct SignatureReport {
    pub monitor_path: String,
    pub results: Vec<CollectionResult>,
    pub invalid: Vec<InvalidEntry>,
    pub chains: Vec<ChainInfo>,
    pub root_pinned: bool,
    /// Where the accepted root comes from.
    pub root_pin: super::RootPin,
}

#[derive(Serialize)]
struct Totals {
    entries: usize,
    ok: usize,
    skip: usize,
    bad: usize,
    unreadable: usize,
    invalid: usize,
    warnings: usize,
    x5u_downloads: usize,
}

fn millis_date(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => format!("{ms} ({})", format_utc((ms / 1000) as i64)),
        None => "unknown".into(),
    }
}

impl SignatureReport {
    fn totals(&self) -> Totals {
        let mut t = Totals {
            entries: self.results.len() + self.invalid.len(),
            ok: 0,
            skip: 0,
            bad: 0,
            unreadable: 0,
            invalid: self.invalid.len(),
            warnings: 0,
            x5u_downloads: self.chains.len(),
        };
        for r in &self.results {
            t.warnings += r.warnings.len();
            match r.verdict {
                Verdict::Ok => t.ok += 1,
                Verdict::Skip => t.skip += 1,
                Verdict::Bad(_) => t.bad += 1,
                Verdict::Unreadable(_) => t.unreadable += 1,
            }
        }
        t
    }

    /// Roots accepted without a pin: `AA:BB:… (CN)`.
    fn unpinned_roots(&self) -> Vec<String> {
        let mut roots: Vec<String> = self
            .chains
            .iter()
            .filter_map(|c| {
                Some(format!(
                    "{} ({})",
                    c.root_sha256.as_ref()?,
                    c.root.as_deref().unwrap_or("?")
                ))
            })
            .collect();
        roots.sort();
        roots.dedup();
        roots
    }

    fn item_json(r: &CollectionResult) -> Value {
        let (status, code, detail) = match &r.verdict {
            Verdict::Ok => ("ok", None, None),
            Verdict::Skip => ("skip", None, None),
            Verdict::Bad(e) => ("bad", Some(e.code.as_str()), Some(e.detail.clone())),
            Verdict::Unreadable(e) => ("error", Some(e.code()), Some(e.to_string())),
        };
        let mut item = json!({
            "bucket": r.entry.bucket,
            "collection": r.entry.collection,
            "status": status,
            "entry_timestamp": r.entry.last_modified,
            "records_timestamp": r.records_timestamp,
            "signed_on": r.signed_on,
            "records": r.records,
            "duration_seconds": (r.duration.as_secs_f64() * 1000.0).round() / 1000.0,
            "warnings": r.warnings,
            "verified_by": r.verified_by(),
            "signatures": r.signatures.iter().map(|s| json!({
                "x5u": s.x5u,
                "status": if s.error.is_none() { "ok" } else { "bad" },
                "code": s.error.as_ref().map(|e| e.code),
                "detail": s.error.as_ref().map(|e| e.detail.clone()),
                "root_sha256": s.root_sha256.map(|h| colon_hex(&h)),
            })).collect::<Vec<_>>(),
        });
        if let (Some(code), Some(detail)) = (code, detail) {
            item["code"] = json!(code);
            item["detail"] = json!(detail);
        }
        if let Verdict::Unreadable(e) = &r.verdict {
            item["error"] = client_error_json(e);
        }
        item
    }

    fn invalid_json(bad: &InvalidEntry) -> Value {
        json!({"id": bad.id, "status": "invalid", "code": "INVALID_ENTRY", "detail": bad.reason})
    }

    /// The original's block for a collection whose signature failed.
    fn failure_block(r: &CollectionResult, error: &VerifyError) -> String {
        format!(
            "Signature verification failed on {}\n - Signed on: {}\n - Records timestamp: {}\n - Error: {error}",
            r.entry.path(),
            millis_date(r.signed_on),
            millis_date(r.records_timestamp),
        )
    }
}

impl Report for SignatureReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(out, "Read collection list from {}", self.monitor_path)?;
        let total = self.results.len() + self.invalid.len();
        for (i, r) in self.results.iter().enumerate() {
            let prefix = format!("{:02}/{:02} {}:  ", i + 1, total, r.entry.path());
            match &r.verdict {
                Verdict::Ok => {
                    writeln!(out, "{prefix}OK ({:.2}s)", r.duration.as_secs_f64())?;
                    if let (Some(n), true) = (r.verified_by(), r.signatures.len() > 1) {
                        let x5u = r.signatures[n - 1].x5u.as_deref().unwrap_or_default();
                        let total = r.signatures.len();
                        writeln!(out, "    verified by signature {n}/{total} ({x5u})")?;
                    }
                }
                Verdict::Skip => writeln!(out, "{prefix}SKIP")?,
                Verdict::Bad(e) => writeln!(out, "{prefix}⚠ BAD Signature ⚠ {e}")?,
                Verdict::Unreadable(e) => writeln!(out, "{prefix}⚠ ERROR ⚠ {}: {e}", e.code())?,
            }
            for w in &r.warnings {
                writeln!(out, "    warning {w}")?;
            }
        }
        for (i, bad) in self.invalid.iter().enumerate() {
            writeln!(
                out,
                "{:02}/{:02} entry {}:  ⚠ ERROR ⚠ INVALID_ENTRY: {}",
                self.results.len() + i + 1,
                total,
                bad.id,
                bad.reason
            )?;
        }
        let roots = self.unpinned_roots();
        if !self.root_pinned && !roots.is_empty() {
            writeln!(
                out,
                "Root not pinned ({}): accepted self-signed root {}",
                match self.root_pin {
                    super::RootPin::Any => "ROOT_HASH=any",
                    _ => "ROOT_HASH is not set and the server is none of Mozilla's",
                },
                roots.join(", ")
            )?;
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        let mut results: Vec<Value> = self.results.iter().map(Self::item_json).collect();
        results.extend(self.invalid.iter().map(Self::invalid_json));
        json!({
            "results": results,
            "totals": self.totals(),
            "root_pinned": self.root_pinned,
            "root_pin": self.root_pin.name(),
            "chains": self.chains,
        })
    }

    fn outcome(&self) -> Outcome {
        let mut items = Vec::new();
        let mut blocks = Vec::new();
        let mut bad = Vec::new();
        let mut unreachable = Vec::new();
        let mut missing = Vec::new();
        for r in &self.results {
            match &r.verdict {
                Verdict::Ok | Verdict::Skip => continue,
                Verdict::Bad(e) => {
                    bad.push(r.entry.path());
                    blocks.push(Self::failure_block(r, e));
                }
                Verdict::Unreadable(e) if is_finding(e) => missing.push(e),
                Verdict::Unreadable(e) => unreachable.push(e),
            }
            items.push(Self::item_json(r));
        }
        items.extend(self.invalid.iter().map(Self::invalid_json));
        let mut lines = Vec::new();
        if !bad.is_empty() {
            lines.push(format!(
                "Signature verification failed on {} collection(s): {}",
                bad.len(),
                bad.join(", ")
            ));
        }
        if !missing.is_empty() || !unreachable.is_empty() {
            let first = missing.first().or(unreachable.first()).expect("one error");
            lines.push(format!(
                "Could not read {} collection(s): {first}",
                missing.len() + unreachable.len()
            ));
        }
        if !self.invalid.is_empty() {
            lines.push(format!(
                "{} monitor entry(ies) are not valid",
                self.invalid.len()
            ));
        }
        let findings = bad.len() + missing.len() + self.invalid.len();
        judge(findings, unreachable.len(), || {
            let mut message = lines.join("\n");
            for block in blocks {
                message.push_str("\n\n");
                message.push_str(&block);
            }
            Failure { message, items }
        })
    }
}
