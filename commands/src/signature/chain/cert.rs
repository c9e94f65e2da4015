//! Parsing a chain's certificates: PEM blocks to DER, DER to X.509, the signed bytes as sent,
//! and the extensions validation reads (refusing unknown critical ones).

use x509_cert::certificate::Version;
use x509_cert::der::oid::db::{rfc4519, rfc5280};
use x509_cert::der::{Decode, Encode, Header, Reader, SliceReader};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, NameConstraints, SubjectAltName,
};
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use super::err;
use crate::signature::{ErrorCode, VerifyError};

/// The DER certificates of a PEM file, in order. Text outside `CERTIFICATE` blocks is ignored,
/// as Firefox does; a block that does not decode is an error.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, VerifyError> {
    use base64::Engine as _;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(pem);
    let mut certs = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        match &mut block {
            None if line == BEGIN => block = Some(String::new()),
            None => {}
            Some(b64) if line == END => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| {
                        err(
                            ErrorCode::PemInvalid,
                            format!("PEM block #{} is not base64: {e}", certs.len() + 1),
                        )
                    })?;
                certs.push(der);
                block = None;
            }
            Some(_) if line.starts_with("-----") => {
                return Err(err(
                    ErrorCode::PemInvalid,
                    format!("PEM block #{} is not terminated", certs.len() + 1),
                ))
            }
            Some(b64) => b64.push_str(line),
        }
    }
    if block.is_some() {
        return Err(err(
            ErrorCode::PemInvalid,
            format!("PEM block #{} is not terminated", certs.len() + 1),
        ));
    }
    if certs.is_empty() {
        return Err(err(
            ErrorCode::PemInvalid,
            "no PEM certificate in the x5u answer",
        ));
    }
    Ok(certs)
}

/// The bytes of the `tbsCertificate` as sent (what the issuer signed), without re-encoding.
pub(super) fn tbs_bytes(der: &[u8]) -> x509_cert::der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    Header::decode(&mut reader)?;
    let start = usize::try_from(reader.position())?;
    let inner = Header::decode(&mut reader)?;
    let len = usize::try_from((inner.encoded_len()? + inner.length)?)?;
    der.get(start..start + len).ok_or_else(|| {
        x509_cert::der::ErrorKind::Incomplete {
            expected_len: (start + len).try_into().unwrap_or_default(),
            actual_len: der.len().try_into().unwrap_or_default(),
        }
        .into()
    })
}

pub(super) fn common_name(name: &Name) -> String {
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == rfc4519::CN {
                // Shown in reports: one line, whatever the certificate says.
                return crate::signature::one_line(
                    String::from_utf8_lossy(atv.value.value()).into_owned(),
                );
            }
        }
    }
    crate::signature::one_line(name.to_string())
}

/// The extensions this verifier processes, decoded.
#[derive(Default)]
pub(super) struct Extensions {
    pub(super) basic: Option<BasicConstraints>,
    pub(super) key_usage: Option<KeyUsage>,
    pub(super) eku: Option<ExtendedKeyUsage>,
    pub(super) san: Option<SubjectAltName>,
    pub(super) name_constraints: Option<NameConstraints>,
}

/// One certificate of the chain being validated.
pub(super) struct Link {
    pub(super) der: Vec<u8>,
    pub(super) cert: Certificate,
    pub(super) ext: Extensions,
    /// "certificate 2/3 (intermediate, CN=...)"
    pub(super) label: String,
}

impl Link {
    pub(super) fn parse(der: Vec<u8>, index: usize, count: usize) -> Result<Link, VerifyError> {
        let cert = Certificate::from_der(&der).map_err(|e| {
            err(
                ErrorCode::PemInvalid,
                format!(
                    "certificate {}/{count} is not a DER X.509 certificate: {e}",
                    index + 1
                ),
            )
        })?;
        let role = match index {
            0 => "leaf",
            i if i + 1 == count => "root",
            _ => "intermediate",
        };
        let label = format!(
            "certificate {}/{count} ({role}, CN={})",
            index + 1,
            common_name(&cert.tbs_certificate.subject)
        );
        let mut link = Link {
            der,
            cert,
            ext: Extensions::default(),
            label,
        };
        link.read_extensions()?;
        Ok(link)
    }

    fn read_extensions(&mut self) -> Result<(), VerifyError> {
        let tbs = &self.cert.tbs_certificate;
        if tbs.version != Version::V3 {
            return Err(err(
                ErrorCode::CertInvalid,
                format!("{} is not an X.509 v3 certificate", self.label),
            ));
        }
        if self.cert.signature_algorithm != tbs.signature {
            return Err(err(
                ErrorCode::CertInvalid,
                format!("{} names two different signature algorithms", self.label),
            ));
        }
        fn decode<'a, T: Decode<'a>>(
            slot: &mut Option<T>,
            bytes: &'a [u8],
            label: &str,
            what: &str,
        ) -> Result<(), VerifyError> {
            if slot.is_some() {
                return Err(err(
                    ErrorCode::CertInvalid,
                    format!("{label} has two {what} extensions"),
                ));
            }
            *slot = Some(T::from_der(bytes).map_err(|e| {
                err(
                    ErrorCode::CertInvalid,
                    format!("{label} has a malformed {what} extension: {e}"),
                )
            })?);
            Ok(())
        }
        let mut ext = Extensions::default();
        for e in tbs.extensions.as_deref().unwrap_or(&[]) {
            let bytes = e.extn_value.as_bytes();
            let label = &self.label;
            match e.extn_id {
                rfc5280::ID_CE_BASIC_CONSTRAINTS => {
                    decode(&mut ext.basic, bytes, label, "basicConstraints")?
                }
                rfc5280::ID_CE_KEY_USAGE => decode(&mut ext.key_usage, bytes, label, "keyUsage")?,
                rfc5280::ID_CE_EXT_KEY_USAGE => {
                    decode(&mut ext.eku, bytes, label, "extendedKeyUsage")?
                }
                rfc5280::ID_CE_SUBJECT_ALT_NAME => {
                    decode(&mut ext.san, bytes, label, "subjectAltName")?
                }
                rfc5280::ID_CE_NAME_CONSTRAINTS => {
                    decode(&mut ext.name_constraints, bytes, label, "nameConstraints")?
                }
                other if e.critical => {
                    return Err(err(
                        ErrorCode::CertCriticalExtension,
                        format!("{label} has a critical extension {other} that is not supported"),
                    ))
                }
                _ => {}
            }
        }
        self.ext = ext;
        Ok(())
    }

    pub(super) fn dns_names(&self) -> Vec<String> {
        self.ext
            .san
            .iter()
            .flat_map(|san| san.0.iter())
            .filter_map(|name| match name {
                GeneralName::DnsName(dns) => Some(dns.as_str().to_string()),
                _ => None,
            })
            .collect()
    }

    pub(super) fn not_before(&self) -> u64 {
        self.cert
            .tbs_certificate
            .validity
            .not_before
            .to_unix_duration()
            .as_secs()
    }

    pub(super) fn not_after(&self) -> u64 {
        self.cert
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs()
    }

    pub(super) fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.cert.tbs_certificate.subject_public_key_info
    }
}

pub(super) fn name_der(name: &Name) -> Vec<u8> {
    name.to_der().unwrap_or_default()
}
