//! x5u certificate chains: the PEM file a signature's `x5u` points at, leaf first and root last,
//! validated the way Firefox (NSS/mozpkix) accepts a content-signature chain at a given time:
//! every certificate within its dates, every link's signature (ECDSA P-256/P-384 and RSA PKCS#1
//! v1.5 with SHA-256/384/512), issuers that are CAs allowed to sign certificates (pathLen
//! included), a codeSigning extendedKeyUsage wherever the extension is present, dNSName name
//! constraints, no unknown critical extension, a P-384 leaf, and optionally a pinned root.
//! The leaf's name is checked per collection ([`CertChain::check_signer_name`]) because the
//! same chain serves several buckets.
//!
//! The chain must be given in order (each certificate issued by the next one); unlike a path
//! builder this never reorders or skips certificates, so a chain Firefox accepts only after
//! reordering is refused here (Autograph always publishes ordered chains).

mod cert;
mod checks;
mod link;
#[cfg(test)]
mod tests;

use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::KeyUsages;

use super::content::LeafKey;
use super::{format_utc, ErrorCode, VerifyError, Warning, WarningCode};
pub use cert::pem_certificates;
use cert::{common_name, name_der, Link};
pub use checks::dns_name_matches;
use checks::{check_code_signing, check_dates, check_issuers, check_name_constraints};
use link::{leaf_key, verify_link};

/// The most certificates a chain may hold (mozpkix allows 6 sub-CAs between leaf and root).
pub const MAX_CHAIN_CERTS: usize = 8;
/// The largest x5u body accepted.
pub const MAX_X5U_BYTES: usize = 1024 * 1024;
/// The smallest RSA modulus accepted in a chain, in bits.
pub const MIN_RSA_BITS: usize = 2048;

const DAY: u64 = 86_400;

/// What a chain is validated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPolicy {
    /// The check time, in seconds since the epoch.
    pub at: u64,
    /// SHA-256 of the DER of the only acceptable root, when pinned.
    pub root_hash: Option<[u8; 32]>,
}

/// A certificate of a validated chain, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    pub subject: String,
    pub not_before: u64,
    pub not_after: u64,
}

/// A chain that passed validation: what signature verification and reports need from it.
#[derive(Debug, Clone)]
pub struct CertChain {
    pub certs: Vec<CertSummary>,
    pub root_sha256: [u8; 32],
    pub root_pinned: bool,
    leaf_key: LeafKey,
    leaf_dns_names: Vec<String>,
}

fn err(code: ErrorCode, detail: impl Into<String>) -> VerifyError {
    VerifyError::new(code, detail)
}

/// Validate a PEM chain (leaf first, root last) at `policy.at`.
pub fn validate(pem: &[u8], policy: &ChainPolicy) -> Result<CertChain, VerifyError> {
    let links = parse_links(pem)?;
    if links.len() < 2 {
        return Err(err(
            ErrorCode::ChainBroken,
            "the chain holds only the leaf: its issuers are missing",
        ));
    }

    // Each certificate is issued by the next one, the last one by itself.
    for pair in links.windows(2) {
        let (child, issuer) = (&pair[0], &pair[1]);
        if name_der(&child.cert.tbs_certificate.issuer)
            != name_der(&issuer.cert.tbs_certificate.subject)
        {
            return Err(err(
                ErrorCode::ChainBroken,
                format!(
                    "{} names issuer {:?}, not the subject of {}",
                    child.label,
                    child.cert.tbs_certificate.issuer.to_string(),
                    issuer.label
                ),
            ));
        }
        verify_link(child, issuer)?;
    }
    let root = links.last().expect("at least two certificates");
    if name_der(&root.cert.tbs_certificate.issuer) != name_der(&root.cert.tbs_certificate.subject)
        || verify_link(root, root).is_err()
    {
        return Err(err(
            ErrorCode::RootNotSelfSigned,
            format!("{} is not a self-signed root", root.label),
        ));
    }
    let root_sha256: [u8; 32] = Sha256::digest(&root.der).into();
    if let Some(pin) = policy.root_hash {
        if pin != root_sha256 {
            return Err(err(
                ErrorCode::RootHashMismatch,
                format!(
                    "the SHA-256 of {} is {}, ROOT_HASH is {}",
                    root.label,
                    super::colon_hex(&root_sha256),
                    super::colon_hex(&pin)
                ),
            ));
        }
    }
    check_issuers(&links)?;
    let leaf = &links[0];
    if leaf.ext.basic.as_ref().is_some_and(|bc| bc.ca) {
        return Err(err(
            ErrorCode::LeafIsCa,
            format!("{} is a CA certificate", leaf.label),
        ));
    }
    if let Some(ku) = &leaf.ext.key_usage {
        if !ku.0.contains(KeyUsages::DigitalSignature) {
            return Err(err(
                ErrorCode::LeafKeyUsage,
                format!("{} lacks the digitalSignature usage", leaf.label),
            ));
        }
    }
    let leaf_key = LeafKey::new(&leaf_key(leaf)?);
    check_code_signing(&links)?;
    check_name_constraints(&links)?;
    check_dates(&links, policy.at)?;
    Ok(CertChain {
        certs: links.iter().map(summary).collect(),
        root_sha256,
        root_pinned: policy.root_hash.is_some(),
        leaf_key,
        leaf_dns_names: leaf.dns_names(),
    })
}

fn summary(link: &Link) -> CertSummary {
    CertSummary {
        subject: common_name(&link.cert.tbs_certificate.subject),
        not_before: link.not_before(),
        not_after: link.not_after(),
    }
}

/// The certificates of a PEM chain, parsed but not validated (no dates, links or signatures
/// checked): what an expiry report needs even from a chain that has already expired.
pub fn summaries(pem: &[u8]) -> Result<Vec<CertSummary>, VerifyError> {
    Ok(parse_links(pem)?.iter().map(summary).collect())
}

/// The certificates of a PEM chain, parsed in order, at most [`MAX_CHAIN_CERTS`].
fn parse_links(pem: &[u8]) -> Result<Vec<Link>, VerifyError> {
    let ders = pem_certificates(pem)?;
    let count = ders.len();
    if count > MAX_CHAIN_CERTS {
        return Err(err(
            ErrorCode::ChainTooLong,
            format!("the chain holds {count} certificates (at most {MAX_CHAIN_CERTS})"),
        ));
    }
    ders.into_iter()
        .enumerate()
        .map(|(i, der)| Link::parse(der, i, count))
        .collect()
}

/// The certificate that expires first, with its index in the chain.
pub fn earliest_expiry(certs: &[CertSummary]) -> Option<(usize, &CertSummary)> {
    certs.iter().enumerate().min_by_key(|(_, c)| c.not_after)
}

/// How close to its notAfter a certificate may get before it is near expiry: a percentage of
/// its lifespan, clamped between a minimum and a maximum number of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryMargin {
    pub percent: u64,
    pub min_days: u64,
    pub max_days: u64,
}

impl ExpiryMargin {
    /// 10% of the lifespan, at least 7 days and at most 60 (Autograph's and Telescope's).
    pub const DEFAULT: ExpiryMargin = ExpiryMargin {
        percent: 10,
        min_days: 7,
        max_days: 60,
    };

    /// The margin, in seconds, of a certificate that lives `lifespan_seconds`.
    pub fn seconds(&self, lifespan_seconds: u64) -> u64 {
        let max = self.max_days.max(self.min_days);
        (lifespan_seconds.saturating_mul(self.percent) / 100)
            .clamp(self.min_days.saturating_mul(DAY), max.saturating_mul(DAY))
    }
}

/// The default near-expiry margin ([`ExpiryMargin::DEFAULT`]) of a certificate's lifespan.
pub fn near_expiry_threshold(lifespan_seconds: u64) -> u64 {
    ExpiryMargin::DEFAULT.seconds(lifespan_seconds)
}

impl CertChain {
    pub fn leaf_key(&self) -> &LeafKey {
        &self.leaf_key
    }

    pub fn leaf_dns_names(&self) -> &[String] {
        &self.leaf_dns_names
    }

    /// The leaf must name the expected signer in its subjectAltName (ASCII case-insensitive, no
    /// wildcard).
    pub fn check_signer_name(&self, expected: &str) -> Result<(), VerifyError> {
        if self
            .leaf_dns_names
            .iter()
            .any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(expected))
        {
            return Ok(());
        }
        Err(err(
            ErrorCode::SignerNameMismatch,
            format!(
                "the leaf certificate is for {}, expected {expected:?}",
                if self.leaf_dns_names.is_empty() {
                    "no DNS name".to_string()
                } else {
                    format!("{:?}", self.leaf_dns_names.join(", "))
                }
            ),
        ))
    }

    /// A warning when the certificate that expires first is within its warning threshold.
    pub fn expiry_warning(&self, at: u64) -> Option<Warning> {
        let (index, first) = earliest_expiry(&self.certs)?;
        let threshold = near_expiry_threshold(first.not_after.saturating_sub(first.not_before));
        let left = first.not_after.saturating_sub(at);
        (left < threshold).then(|| Warning {
            code: WarningCode::CertNearExpiry,
            detail: format!(
                "certificate {}/{} (CN={}) expires on {}, in {:.1} days (warning from {} days before)",
                index + 1,
                self.certs.len(),
                first.subject,
                format_utc(first.not_after as i64),
                left as f64 / DAY as f64,
                threshold / DAY
            ),
        })
    }
}
