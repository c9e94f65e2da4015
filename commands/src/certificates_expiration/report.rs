//! What `certificates_expiration` reports: each chain with the collections that use it, the
//! certificate that expires first (subject, position, date), the days left and the margin.

use serde_json::{json, Value};

use crate::client::ClientError;
use crate::kinto::InvalidEntry;
use crate::report::{client_error_json, is_finding, judge, Failure, Outcome, Report};
use crate::signature::chain::{earliest_expiry, CertSummary, ExpiryMargin};
use crate::signature::{format_utc, VerifyError};

const DAY: f64 = 86_400.0;

/// The certificate of a chain that expires first, judged at the check time.
#[derive(Debug, Clone)]
pub struct ChainReport {
    pub certs: Vec<CertSummary>,
    /// Index in the chain (0: the leaf) of the certificate that expires first.
    pub earliest: usize,
    /// Seconds left before its notAfter (negative: expired).
    pub left: i64,
    /// Its margin, in seconds.
    pub margin: u64,
}

impl ChainReport {
    fn code(&self) -> Option<&'static str> {
        if self.left <= 0 {
            Some("CERT_EXPIRED")
        } else if (self.left as u64) < self.margin {
            Some("CERT_NEAR_EXPIRY")
        } else {
            None
        }
    }

    fn first(&self) -> &CertSummary {
        &self.certs[self.earliest]
    }

    /// "certificate 1/3 (CN=…) expires on … UTC, in 3.0 days (margin 10.3 days)"
    fn describe(&self) -> String {
        let cert = self.first();
        let verb = if self.left <= 0 { "expired" } else { "expires" };
        format!(
            "certificate {}/{} (CN={}) {verb} on {}, in {:.1} days (margin {:.1} days)",
            self.earliest + 1,
            self.certs.len(),
            cert.subject,
            format_utc(cert.not_after as i64),
            self.left as f64 / DAY,
            self.margin as f64 / DAY
        )
    }
}

#[derive(Debug, Clone)]
pub enum ChainVerdict {
    Checked(ChainReport),
    /// The chain is not one (not PEM, not certificates, not an http(s) URL...): a finding.
    Bad(VerifyError),
    /// The download failed: a finding on a 4xx, could not tell otherwise.
    Unreadable(VerifyError, ClientError),
}

impl ChainVerdict {
    pub fn checked(certs: Vec<CertSummary>, margin: &ExpiryMargin, at: u64) -> ChainVerdict {
        let Some((earliest, cert)) = earliest_expiry(&certs) else {
            return ChainVerdict::Bad(VerifyError::new(
                crate::signature::ErrorCode::PemInvalid,
                "no certificate in the chain",
            ));
        };
        let left = cert.not_after as i64 - at as i64;
        let margin = margin.seconds(cert.not_after.saturating_sub(cert.not_before));
        ChainVerdict::Checked(ChainReport {
            certs,
            earliest,
            left,
            margin,
        })
    }
}

/// One x5u and the collections signed with it.
#[derive(Debug, Clone)]
pub struct ChainUse {
    pub x5u: String,
    pub collections: Vec<String>,
    pub verdict: ChainVerdict,
}

impl ChainUse {
    /// The failure code, if any, and whether it is a finding (or could not tell).
    fn failure(&self) -> Option<(&'static str, bool)> {
        match &self.verdict {
            ChainVerdict::Checked(c) => c.code().map(|code| (code, true)),
            ChainVerdict::Bad(e) => Some((e.code.as_str(), true)),
            ChainVerdict::Unreadable(e, error) => Some((e.code.as_str(), is_finding(error))),
        }
    }

    fn to_json(&self) -> Value {
        let mut item = json!({"x5u": self.x5u, "collections": self.collections});
        let (status, code) = match (&self.verdict, self.failure()) {
            (_, None) => ("ok", None),
            (ChainVerdict::Checked(_), Some((code, _))) => {
                (if code == "CERT_EXPIRED" { "expired" } else { "near_expiry" }, Some(code))
            }
            (ChainVerdict::Unreadable(..), Some((code, false))) => ("error", Some(code)),
            (_, Some((code, _))) => ("bad", Some(code)),
        };
        item["status"] = json!(status);
        if let Some(code) = code {
            item["code"] = json!(code);
        }
        match &self.verdict {
            ChainVerdict::Checked(c) => {
                let first = c.first();
                item["certificate"] = json!({
                    "position": c.earliest + 1,
                    "count": c.certs.len(),
                    "subject": first.subject,
                    "not_before": first.not_before,
                    "not_after": first.not_after,
                    "not_after_utc": format_utc(first.not_after as i64),
                });
                item["seconds_left"] = json!(c.left);
                item["days_left"] = json!((c.left as f64 / DAY * 10.0).round() / 10.0);
                item["margin_days"] = json!((c.margin as f64 / DAY * 10.0).round() / 10.0);
                item["chain"] = json!(c.certs);
            }
            ChainVerdict::Bad(e) => item["detail"] = json!(e.detail),
            ChainVerdict::Unreadable(e, error) => {
                item["detail"] = json!(e.detail);
                item["error"] = client_error_json(error);
            }
        }
        item
    }
}

#[derive(Debug, Clone)]
pub struct ExpirationReport {
    pub monitor_path: String,
    pub check_at: u64,
    pub chains: Vec<ChainUse>,
    /// Collections whose changeset could not be read.
    pub unreadable: Vec<(String, ClientError)>,
    /// Collections without any signature (nothing to check).
    pub unsigned: Vec<String>,
    pub invalid: Vec<InvalidEntry>,
}

impl ExpirationReport {
    fn unreadable_json((name, error): &(String, ClientError)) -> Value {
        json!({"collection": name, "status": "error", "code": error.code(),
               "error": client_error_json(error)})
    }

    fn invalid_json(bad: &InvalidEntry) -> Value {
        json!({"id": bad.id, "status": "invalid", "code": "INVALID_ENTRY", "error": bad.reason})
    }
}

impl Report for ExpirationReport {
    fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(out, "Read collection list from {}", self.monitor_path)?;
        writeln!(out, "Check time: {}", format_utc(self.check_at as i64))?;
        for chain in &self.chains {
            let used_by = chain.collections.join(", ");
            match (&chain.verdict, chain.failure()) {
                (ChainVerdict::Checked(c), None) => {
                    writeln!(out, "{} OK: {}; used by {used_by}", chain.x5u, c.describe())?
                }
                (ChainVerdict::Checked(c), Some((code, _))) => writeln!(
                    out,
                    "{} NOT OK {code}: {}; used by {used_by}",
                    chain.x5u,
                    c.describe()
                )?,
                (ChainVerdict::Bad(e) | ChainVerdict::Unreadable(e, _), _) => writeln!(
                    out,
                    "{} NOT OK {}: {}; used by {used_by}",
                    chain.x5u,
                    e.code.as_str(),
                    e.detail
                )?,
            }
        }
        for (name, error) in &self.unreadable {
            writeln!(out, "{name} NOT OK: could not read its changeset: {error}")?;
        }
        for name in &self.unsigned {
            writeln!(out, "{name} skipped: no signature")?;
        }
        for bad in &self.invalid {
            writeln!(out, "entry {} NOT OK: {}", bad.id, bad.reason)?;
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        let mut results: Vec<Value> = self.chains.iter().map(ChainUse::to_json).collect();
        results.extend(self.unreadable.iter().map(Self::unreadable_json));
        results.extend(self.unsigned.iter().map(|name| {
            json!({"collection": name, "status": "skipped", "reason": "no signature"})
        }));
        results.extend(self.invalid.iter().map(Self::invalid_json));
        let count = |code: &str| {
            self.chains
                .iter()
                .filter(|c| c.failure().map(|f| f.0) == Some(code))
                .count()
        };
        let ok = self.chains.iter().filter(|c| c.failure().is_none()).count();
        json!({
            "check_at": self.check_at,
            "results": results,
            "totals": {
                "chains": self.chains.len(),
                "collections": self.chains.iter().map(|c| c.collections.len()).sum::<usize>(),
                "ok": ok,
                "near_expiry": count("CERT_NEAR_EXPIRY"),
                "expired": count("CERT_EXPIRED"),
                "bad": self.chains.len() - ok - count("CERT_NEAR_EXPIRY") - count("CERT_EXPIRED"),
                "unreadable_collections": self.unreadable.len(),
                "unsigned_collections": self.unsigned.len(),
                "invalid_entries": self.invalid.len(),
            },
        })
    }

    fn outcome(&self) -> Outcome {
        let failed: Vec<&ChainUse> = self.chains.iter().filter(|c| c.failure().is_some()).collect();
        let chain_findings = failed.iter().filter(|c| c.failure().is_some_and(|f| f.1)).count();
        let unreadable_findings = self.unreadable.iter().filter(|(_, e)| is_finding(e)).count();
        let findings = chain_findings + unreadable_findings + self.invalid.len();
        let could_not_tell = failed.len() - chain_findings + self.unreadable.len() - unreadable_findings;
        judge(findings, could_not_tell, || {
            let mut message = format!(
                "{} of {} certificate chain(s) near expiry, expired or unusable",
                failed.len(),
                self.chains.len()
            );
            if let Some((name, error)) = self.unreadable.first() {
                message.push_str(&format!(
                    "; could not read {} collection(s), first {name}: {error}",
                    self.unreadable.len()
                ));
            }
            let mut items: Vec<Value> = failed.iter().map(|c| c.to_json()).collect();
            items.extend(self.unreadable.iter().map(Self::unreadable_json));
            items.extend(self.invalid.iter().map(Self::invalid_json));
            Failure { message, items }
        })
    }
}
