//! The constraints a valid chain meets beyond its signatures: issuers that are CAs allowed to
//! sign certificates, codeSigning wherever an extendedKeyUsage is present, dNSName name
//! constraints, and every certificate's dates.

use x509_cert::der::oid::db::rfc5280;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::KeyUsages;

use super::cert::Link;
use super::err;
use crate::signature::{format_utc, ErrorCode, VerifyError};

/// Does `name` fall under the dNSName constraint `base` (RFC 5280; a leading dot means
/// subdomains only, as mozpkix reads it)?
pub fn dns_name_matches(name: &str, base: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let base = base.trim_end_matches('.').to_ascii_lowercase();
    if base.is_empty() {
        return true;
    }
    if base.starts_with('.') {
        return name.len() > base.len() && name.ends_with(&base);
    }
    name == base || name.ends_with(&format!(".{base}"))
}

pub(super) fn check_name_constraints(links: &[Link]) -> Result<(), VerifyError> {
    for (i, ca) in links.iter().enumerate().skip(1) {
        let Some(nc) = &ca.ext.name_constraints else {
            continue;
        };
        let mut permitted = Vec::new();
        let mut excluded = Vec::new();
        for (subtrees, out) in [
            (&nc.permitted_subtrees, &mut permitted),
            (&nc.excluded_subtrees, &mut excluded),
        ] {
            for subtree in subtrees.iter().flatten() {
                match &subtree.base {
                    GeneralName::DnsName(base) => out.push(base.as_str().to_string()),
                    _ => {
                        return Err(err(
                            ErrorCode::NameConstraintsViolation,
                            format!(
                                "{} has a name constraint of a type this verifier cannot check (only dNSName)",
                                ca.label
                            ),
                        ))
                    }
                }
            }
        }
        for subordinate in &links[..i] {
            for dns in subordinate.dns_names() {
                if let Some(base) = excluded.iter().find(|b| dns_name_matches(&dns, b)) {
                    return Err(err(
                        ErrorCode::NameConstraintsViolation,
                        format!(
                            "{dns:?} of {} is excluded by {base:?} in {}",
                            subordinate.label, ca.label
                        ),
                    ));
                }
                if !permitted.is_empty() && !permitted.iter().any(|b| dns_name_matches(&dns, b)) {
                    return Err(err(
                        ErrorCode::NameConstraintsViolation,
                        format!(
                            "{dns:?} of {} is outside the names permitted by {} ({})",
                            subordinate.label,
                            ca.label,
                            permitted.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

pub(super) fn check_issuers(links: &[Link]) -> Result<(), VerifyError> {
    for (i, ca) in links.iter().enumerate().skip(1) {
        match &ca.ext.basic {
            Some(bc) if bc.ca => {
                // Certificates between this CA and the leaf (the leaf itself not counted).
                let below = i - 1;
                if let Some(max) = bc.path_len_constraint {
                    if below > usize::from(max) {
                        return Err(err(
                            ErrorCode::PathLengthExceeded,
                            format!(
                                "{} allows {max} intermediate(s) below it, the chain has {below}",
                                ca.label
                            ),
                        ));
                    }
                }
            }
            _ => {
                return Err(err(
                    ErrorCode::IssuerNotCa,
                    format!("{} issues a certificate but is not a CA", ca.label),
                ))
            }
        }
        if let Some(ku) = &ca.ext.key_usage {
            if !ku.0.contains(KeyUsages::KeyCertSign) {
                return Err(err(
                    ErrorCode::IssuerKeyUsage,
                    format!(
                        "{} issues a certificate without the keyCertSign usage",
                        ca.label
                    ),
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn check_code_signing(links: &[Link]) -> Result<(), VerifyError> {
    for link in links {
        if let Some(eku) = &link.ext.eku {
            if !eku.0.contains(&rfc5280::ID_KP_CODE_SIGNING) {
                return Err(err(
                    ErrorCode::CodeSigningEkuMissing,
                    format!("{} has an extendedKeyUsage without codeSigning", link.label),
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn check_dates(links: &[Link], at: u64) -> Result<(), VerifyError> {
    for link in links {
        let (nb, na) = (link.not_before(), link.not_after());
        if at < nb {
            return Err(err(
                ErrorCode::CertNotYetValid,
                format!(
                    "{} is not valid before {} (check time {})",
                    link.label,
                    format_utc(nb as i64),
                    format_utc(at as i64)
                ),
            ));
        }
        if at > na {
            return Err(err(
                ErrorCode::CertExpired,
                format!(
                    "{} expired on {} (check time {})",
                    link.label,
                    format_utc(na as i64),
                    format_utc(at as i64)
                ),
            ));
        }
    }
    Ok(())
}
