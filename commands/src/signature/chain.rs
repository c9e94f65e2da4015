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

use serde::Serialize;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::certificate::Version;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::oid::db::{rfc4519, rfc5280, rfc5912};
use x509_cert::der::{Decode, Encode, Header, Reader, SliceReader};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, NameConstraints, SubjectAltName,
};
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use super::{format_utc, ErrorCode, VerifyError, Warning, WarningCode};

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
    leaf_key: p384::ecdsa::VerifyingKey,
    leaf_dns_names: Vec<String>,
}

fn err(code: ErrorCode, detail: impl Into<String>) -> VerifyError {
    VerifyError::new(code, detail)
}

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
fn tbs_bytes(der: &[u8]) -> x509_cert::der::Result<&[u8]> {
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

fn common_name(name: &Name) -> String {
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == rfc4519::CN {
                return String::from_utf8_lossy(atv.value.value()).into_owned();
            }
        }
    }
    name.to_string()
}

/// The extensions this verifier processes, decoded.
#[derive(Default)]
struct Extensions {
    basic: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    eku: Option<ExtendedKeyUsage>,
    san: Option<SubjectAltName>,
    name_constraints: Option<NameConstraints>,
}

/// One certificate of the chain being validated.
struct Link {
    der: Vec<u8>,
    cert: Certificate,
    ext: Extensions,
    /// "certificate 2/3 (intermediate, CN=...)"
    label: String,
}

impl Link {
    fn parse(der: Vec<u8>, index: usize, count: usize) -> Result<Link, VerifyError> {
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

    fn dns_names(&self) -> Vec<String> {
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

    fn not_before(&self) -> u64 {
        self.cert
            .tbs_certificate
            .validity
            .not_before
            .to_unix_duration()
            .as_secs()
    }

    fn not_after(&self) -> u64 {
        self.cert
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs()
    }

    fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.cert.tbs_certificate.subject_public_key_info
    }
}

/// The hash a certificate signature algorithm uses, and its key family.
#[derive(Clone, Copy)]
enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Clone, Copy, PartialEq)]
enum Family {
    Ecdsa,
    Rsa,
}

fn signature_algorithm(oid: ObjectIdentifier) -> Option<(Family, HashAlg)> {
    Some(match oid {
        rfc5912::ECDSA_WITH_SHA_256 => (Family::Ecdsa, HashAlg::Sha256),
        rfc5912::ECDSA_WITH_SHA_384 => (Family::Ecdsa, HashAlg::Sha384),
        rfc5912::ECDSA_WITH_SHA_512 => (Family::Ecdsa, HashAlg::Sha512),
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION => (Family::Rsa, HashAlg::Sha256),
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION => (Family::Rsa, HashAlg::Sha384),
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION => (Family::Rsa, HashAlg::Sha512),
        _ => return None,
    })
}

fn hash(alg: HashAlg, data: &[u8]) -> Vec<u8> {
    match alg {
        HashAlg::Sha256 => Sha256::digest(data).to_vec(),
        HashAlg::Sha384 => Sha384::digest(data).to_vec(),
        HashAlg::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// A public key that can check certificate signatures.
enum IssuerKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

fn ec_curve(spki: &SubjectPublicKeyInfoOwned) -> Option<ObjectIdentifier> {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
}

fn issuer_key(link: &Link) -> Result<IssuerKey, VerifyError> {
    let spki = link.spki();
    let bits = spki.subject_public_key.raw_bytes();
    let bad_key = |what: &str| {
        err(
            ErrorCode::CertInvalid,
            format!("{} has a malformed {what} public key", link.label),
        )
    };
    match spki.algorithm.oid {
        rfc5912::ID_EC_PUBLIC_KEY => match ec_curve(spki) {
            Some(rfc5912::SECP_256_R_1) => p256::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                .map(IssuerKey::P256)
                .map_err(|_| bad_key("P-256")),
            Some(rfc5912::SECP_384_R_1) => p384::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                .map(IssuerKey::P384)
                .map_err(|_| bad_key("P-384")),
            other => Err(err(
                ErrorCode::UnsupportedKey,
                format!(
                    "{} has an EC key on an unsupported curve ({})",
                    link.label,
                    other
                        .map(|o| o.to_string())
                        .unwrap_or_else(|| "none".into())
                ),
            )),
        },
        rfc5912::RSA_ENCRYPTION => {
            let pkcs1 = rsa::pkcs1::RsaPublicKey::from_der(bits).map_err(|_| bad_key("RSA"))?;
            let n = rsa::BigUint::from_bytes_be(pkcs1.modulus.as_bytes());
            let e = rsa::BigUint::from_bytes_be(pkcs1.public_exponent.as_bytes());
            if n.bits() < MIN_RSA_BITS {
                return Err(err(
                    ErrorCode::UnsupportedKey,
                    format!(
                        "{} has a {}-bit RSA key (at least {MIN_RSA_BITS})",
                        link.label,
                        n.bits()
                    ),
                ));
            }
            rsa::RsaPublicKey::new_with_max_size(n, e, 16_384)
                .map(IssuerKey::Rsa)
                .map_err(|_| bad_key("RSA"))
        }
        other => Err(err(
            ErrorCode::UnsupportedKey,
            format!("{} has a key of unsupported type {other}", link.label),
        )),
    }
}

/// Is `child` signed by `issuer`'s key?
fn verify_link(child: &Link, issuer: &Link) -> Result<(), VerifyError> {
    let alg_oid = child.cert.signature_algorithm.oid;
    let (family, hash_alg) = signature_algorithm(alg_oid).ok_or_else(|| {
        err(
            ErrorCode::UnsupportedAlgorithm,
            format!(
                "{} is signed with unsupported algorithm {alg_oid}",
                child.label
            ),
        )
    })?;
    let tbs = tbs_bytes(&child.der)
        .map_err(|e| err(ErrorCode::PemInvalid, format!("{}: {e}", child.label)))?;
    let digest = hash(hash_alg, tbs);
    let signature = child.cert.signature.as_bytes().ok_or_else(|| {
        err(
            ErrorCode::CertInvalid,
            format!("{} has a malformed signature", child.label),
        )
    })?;
    let key = issuer_key(issuer)?;
    let verified = match (&key, family) {
        (IssuerKey::P256(k), Family::Ecdsa) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|s| k.verify_prehash(&digest, &s).is_ok())
        }
        (IssuerKey::P384(k), Family::Ecdsa) => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            p384::ecdsa::Signature::from_der(signature)
                .is_ok_and(|s| k.verify_prehash(&digest, &s).is_ok())
        }
        (IssuerKey::Rsa(k), Family::Rsa) => {
            let scheme = match hash_alg {
                HashAlg::Sha256 => rsa::Pkcs1v15Sign::new::<Sha256>(),
                HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<Sha384>(),
                HashAlg::Sha512 => rsa::Pkcs1v15Sign::new::<Sha512>(),
            };
            k.verify(scheme, &digest, signature).is_ok()
        }
        _ => false,
    };
    if verified {
        Ok(())
    } else {
        Err(err(
            ErrorCode::ChainBroken,
            format!(
                "the signature of {} does not verify with the key of {}",
                child.label, issuer.label
            ),
        ))
    }
}

fn name_der(name: &Name) -> Vec<u8> {
    name.to_der().unwrap_or_default()
}

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

fn check_name_constraints(links: &[Link]) -> Result<(), VerifyError> {
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

fn check_issuers(links: &[Link]) -> Result<(), VerifyError> {
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

fn check_code_signing(links: &[Link]) -> Result<(), VerifyError> {
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

fn check_dates(links: &[Link], at: u64) -> Result<(), VerifyError> {
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

fn leaf_key(leaf: &Link) -> Result<p384::ecdsa::VerifyingKey, VerifyError> {
    match issuer_key(leaf) {
        Ok(IssuerKey::P384(key)) => Ok(key),
        Ok(_)
        | Err(VerifyError {
            code: ErrorCode::UnsupportedKey,
            ..
        }) => Err(err(
            ErrorCode::UnsupportedKey,
            format!("{} does not hold a P-384 key", leaf.label),
        )),
        Err(e) => Err(e),
    }
}

/// Validate a PEM chain (leaf first, root last) at `policy.at`.
pub fn validate(pem: &[u8], policy: &ChainPolicy) -> Result<CertChain, VerifyError> {
    let ders = pem_certificates(pem)?;
    let count = ders.len();
    if count > MAX_CHAIN_CERTS {
        return Err(err(
            ErrorCode::ChainTooLong,
            format!("the chain holds {count} certificates (at most {MAX_CHAIN_CERTS})"),
        ));
    }
    if count < 2 {
        return Err(err(
            ErrorCode::ChainBroken,
            "the chain holds only the leaf: its issuers are missing",
        ));
    }
    let links = ders
        .into_iter()
        .enumerate()
        .map(|(i, der)| Link::parse(der, i, count))
        .collect::<Result<Vec<_>, _>>()?;

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
    let leaf_key = leaf_key(leaf)?;
    check_code_signing(&links)?;
    check_name_constraints(&links)?;
    check_dates(&links, policy.at)?;
    Ok(CertChain {
        certs: links
            .iter()
            .map(|l| CertSummary {
                subject: common_name(&l.cert.tbs_certificate.subject),
                not_before: l.not_before(),
                not_after: l.not_after(),
            })
            .collect(),
        root_sha256,
        root_pinned: policy.root_hash.is_some(),
        leaf_key,
        leaf_dns_names: leaf.dns_names(),
    })
}

/// How close to its notAfter a certificate may get before a warning: 10% of its lifespan,
/// at least 7 days and at most 60.
pub fn near_expiry_threshold(lifespan_seconds: u64) -> u64 {
    (lifespan_seconds / 10).clamp(7 * DAY, 60 * DAY)
}

impl CertChain {
    pub fn leaf_key(&self) -> &p384::ecdsa::VerifyingKey {
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
        let (index, first) = self
            .certs
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.not_after)?;
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

#[cfg(test)]
mod tests;
