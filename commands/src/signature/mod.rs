//! Content-signature verification (Mozilla's Content-Signature protocol, as Firefox applies it to
//! Remote Settings): the canonical payload of a changeset ([`payload`], [`canonical`]), the x5u certificate chain
//! ([`chain`]), the ECDSA P-384 signature ([`content`]), the signer name expected per bucket, and
//! the stable error codes every failure carries. Everything here is pure and synchronous: no I/O,
//! no clock (the check time is a parameter), so it is unit-tested directly; the command module
//! downloads, caches and schedules.

pub mod canonical;
pub mod chain;
#[cfg(test)]
mod conformance;
pub mod content;
mod direct;
pub mod payload;
mod stream;

use serde::Serialize;

pub use chain::{CertChain, ChainPolicy};
pub use content::{decode_signature, verify_digest, LeafKey};
pub use payload::{ChangesetDigest, SignatureEntry};

/// The leaf name Remote Settings collections are signed with.
pub const DEFAULT_SIGNER_NAME: &str = "remote-settings.content-signature.mozilla.org";
/// The leaf name of the signer of the `security-state` buckets (OneCRL, intermediates...).
pub const ONECRL_SIGNER_NAME: &str = "onecrl.content-signature.mozilla.org";

/// The name the leaf certificate of `bucket`'s signature must carry (its SAN dNSName), as Firefox
/// expects it: `onecrl.` for the security-state buckets, `remote-settings.` elsewhere; an
/// operator's `SIGNER_NAME` replaces both.
pub fn signer_name<'a>(bucket: &str, configured: Option<&'a str>) -> &'a str {
    match configured {
        Some(name) => name,
        None if matches!(bucket, "security-state" | "security-state-preview") => ONECRL_SIGNER_NAME,
        None => DEFAULT_SIGNER_NAME,
    }
}

/// Why a collection's signature is not accepted. The serialized names are stable: reports,
/// JSON consumers and alerts key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The changeset is not `{metadata, timestamp, changes}` with records that have string ids.
    ChangesetInvalid,
    /// A collection that holds (or held) records has no signature in its metadata.
    MetadataMissingSignature,
    /// The signature value is missing or not base64url.
    SignatureEncoding,
    /// The decoded signature is not 96 bytes (P-384 r||s).
    SignatureLength,
    /// The signature does not verify over the payload with the leaf's key.
    SignatureMismatch,
    /// The signature entry's `mode` or `type` is not a P-384 content signature.
    UnsupportedSignature,
    /// The signature has no x5u URL.
    X5uMissing,
    /// The x5u is not an http(s) URL.
    X5uInvalidUrl,
    /// The x5u answered an error status, or redirected elsewhere.
    X5uHttpError,
    /// The x5u could not be reached (connection, timeout) after retries.
    X5uUnreachable,
    /// The x5u body is larger than the cap.
    X5uTooLarge,
    /// The x5u body holds no PEM certificate, or one that does not decode.
    PemInvalid,
    /// More certificates than a content-signature chain can hold.
    ChainTooLong,
    /// A certificate's notAfter is before the check time.
    CertExpired,
    /// A certificate's notBefore is after the check time.
    CertNotYetValid,
    /// A certificate is not issued (name or signature) by the next one in the chain.
    ChainBroken,
    /// The last certificate is not a self-signed root.
    RootNotSelfSigned,
    /// The root's SHA-256 is not `ROOT_HASH`.
    RootHashMismatch,
    /// An issuing certificate is not a CA (basicConstraints).
    IssuerNotCa,
    /// An issuing certificate's keyUsage lacks keyCertSign.
    IssuerKeyUsage,
    /// A CA's pathLenConstraint is exceeded.
    PathLengthExceeded,
    /// The leaf is a CA certificate.
    LeafIsCa,
    /// The leaf's keyUsage lacks digitalSignature.
    LeafKeyUsage,
    /// A certificate has an extendedKeyUsage without codeSigning.
    CodeSigningEkuMissing,
    /// A name in the chain is outside an issuer's name constraints.
    NameConstraintsViolation,
    /// The leaf's SAN does not name the expected signer.
    SignerNameMismatch,
    /// A certificate is signed with an algorithm Firefox does not accept here.
    UnsupportedAlgorithm,
    /// A key of a type or size that cannot be used (leaf not P-384, small RSA...).
    UnsupportedKey,
    /// A certificate has a critical extension this verifier does not process.
    CertCriticalExtension,
    /// A certificate is malformed beyond DER (version, mismatched algorithms, bad extension).
    CertInvalid,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ChangesetInvalid => "CHANGESET_INVALID",
            ErrorCode::MetadataMissingSignature => "METADATA_MISSING_SIGNATURE",
            ErrorCode::SignatureEncoding => "SIGNATURE_ENCODING",
            ErrorCode::SignatureLength => "SIGNATURE_LENGTH",
            ErrorCode::SignatureMismatch => "SIGNATURE_MISMATCH",
            ErrorCode::UnsupportedSignature => "UNSUPPORTED_SIGNATURE",
            ErrorCode::X5uMissing => "X5U_MISSING",
            ErrorCode::X5uInvalidUrl => "X5U_INVALID_URL",
            ErrorCode::X5uHttpError => "X5U_HTTP_ERROR",
            ErrorCode::X5uUnreachable => "X5U_UNREACHABLE",
            ErrorCode::X5uTooLarge => "X5U_TOO_LARGE",
            ErrorCode::PemInvalid => "PEM_INVALID",
            ErrorCode::ChainTooLong => "CHAIN_TOO_LONG",
            ErrorCode::CertExpired => "CERT_EXPIRED",
            ErrorCode::CertNotYetValid => "CERT_NOT_YET_VALID",
            ErrorCode::ChainBroken => "CHAIN_BROKEN",
            ErrorCode::RootNotSelfSigned => "ROOT_NOT_SELF_SIGNED",
            ErrorCode::RootHashMismatch => "ROOT_HASH_MISMATCH",
            ErrorCode::IssuerNotCa => "ISSUER_NOT_CA",
            ErrorCode::IssuerKeyUsage => "ISSUER_KEY_USAGE",
            ErrorCode::PathLengthExceeded => "PATH_LENGTH_EXCEEDED",
            ErrorCode::LeafIsCa => "LEAF_IS_CA",
            ErrorCode::LeafKeyUsage => "LEAF_KEY_USAGE",
            ErrorCode::CodeSigningEkuMissing => "CODE_SIGNING_EKU_MISSING",
            ErrorCode::NameConstraintsViolation => "NAME_CONSTRAINTS_VIOLATION",
            ErrorCode::SignerNameMismatch => "SIGNER_NAME_MISMATCH",
            ErrorCode::UnsupportedAlgorithm => "UNSUPPORTED_ALGORITHM",
            ErrorCode::UnsupportedKey => "UNSUPPORTED_KEY",
            ErrorCode::CertCriticalExtension => "CERT_CRITICAL_EXTENSION",
            ErrorCode::CertInvalid => "CERT_INVALID",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verification failure: its stable code and a one-line detail naming what failed (which
/// certificate, which date, which name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct VerifyError {
    pub code: ErrorCode,
    pub detail: String,
}

impl VerifyError {
    /// The detail is kept to one line: control characters (a newline in a certificate's name,
    /// from an untrusted x5u host) are escaped, so that no report line can be forged.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        VerifyError {
            code,
            detail: one_line(detail.into()),
        }
    }
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`...), unchanged when it has none.
pub fn one_line(text: String) -> String {
    if !text.chars().any(char::is_control) {
        return text;
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Something Firefox would still accept but an operator should look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WarningCode {
    /// The chain's earliest notAfter is close (see [`chain::near_expiry_threshold`]).
    CertNearExpiry,
    /// A record holds floats: Firefox serializes them differently than the signer.
    FloatNumber,
    /// A record holds integers beyond ±(2^53-1): Firefox cannot represent them exactly.
    UnsafeInteger,
}

impl WarningCode {
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::CertNearExpiry => "CERT_NEAR_EXPIRY",
            WarningCode::FloatNumber => "FLOAT_NUMBER",
            WarningCode::UnsafeInteger => "UNSAFE_INTEGER",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub code: WarningCode,
    pub detail: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

/// Check one published signature over a payload digest with its validated chain: the leaf must
/// name the expected signer, the signature must decode to 96 bytes and verify with the leaf's key.
pub fn verify_entry(
    chain: &CertChain,
    expected_signer: &str,
    signature: &str,
    digest: &[u8; 48],
) -> Result<(), VerifyError> {
    chain.check_signer_name(expected_signer)?;
    let signature = decode_signature(signature)?;
    verify_digest(chain.leaf_key(), digest, &signature)
}

/// `2018-03-05 13:57:31 UTC` for a time in seconds since the epoch (the original's date format).
pub fn format_utc(seconds: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("{seconds} (out of range)"))
}

/// Colon-separated upper-case hex, the form of `ROOT_HASH`.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parse a `ROOT_HASH`: 32 bytes of hex, colon-separated or not, any case.
pub fn parse_root_hash(text: &str) -> Result<[u8; 32], String> {
    let hex: String = text.trim().chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(
            "expected the SHA-256 of the root certificate as 32 hex bytes (AA:BB:...)".into(),
        );
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_names_per_bucket_and_override() {
        assert_eq!(signer_name("main", None), DEFAULT_SIGNER_NAME);
        assert_eq!(signer_name("main-preview", None), DEFAULT_SIGNER_NAME);
        assert_eq!(signer_name("blocklists", None), DEFAULT_SIGNER_NAME);
        assert_eq!(signer_name("security-state", None), ONECRL_SIGNER_NAME);
        assert_eq!(
            signer_name("security-state-preview", None),
            ONECRL_SIGNER_NAME
        );
        assert_eq!(
            signer_name("security-state", Some("x.example")),
            "x.example"
        );
        assert_eq!(signer_name("main", Some("x.example")), "x.example");
    }

    #[test]
    fn error_codes_serialize_as_their_stable_names() {
        for code in [
            ErrorCode::SignatureMismatch,
            ErrorCode::CertExpired,
            ErrorCode::X5uHttpError,
            ErrorCode::CodeSigningEkuMissing,
            ErrorCode::MetadataMissingSignature,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
        }
        assert_eq!(
            serde_json::to_value(WarningCode::CertNearExpiry).unwrap(),
            "CERT_NEAR_EXPIRY"
        );
        assert_eq!(
            VerifyError::new(ErrorCode::SignatureLength, "95 bytes").to_string(),
            "SIGNATURE_LENGTH: 95 bytes"
        );
    }

    #[test]
    fn error_details_are_one_line_whatever_a_certificate_holds() {
        let e = VerifyError::new(
            ErrorCode::ChainBroken,
            "certificate 1/3 (leaf, CN=a\n01/01 /buckets/x:  OK\u{1b}[2J)",
        );
        assert_eq!(
            e.detail,
            "certificate 1/3 (leaf, CN=a\\n01/01 /buckets/x:  OK\\u{1b}[2J)"
        );
        assert_eq!(one_line("é ❤ plain".into()), "é ❤ plain");
    }

    #[test]
    fn root_hashes_parse_in_both_forms() {
        let colon = "3C:01:44:6A:BE:90:36:CE:A9:A0:9A:CA:A3:A5:20:AC:62:8F:20:A7:AE:32:CE:86:1C:B2:EF:B7:0F:A0:C7:45";
        let parsed = parse_root_hash(colon).unwrap();
        assert_eq!(colon_hex(&parsed), colon);
        assert_eq!(
            parse_root_hash(&colon.replace(':', "").to_lowercase()).unwrap(),
            parsed
        );
        assert!(parse_root_hash("3C:01").is_err());
        assert!(parse_root_hash(&"ZZ".repeat(32)).is_err());
    }

    #[test]
    fn a_signature_verifies_only_with_its_chain_payload_and_signer_name() {
        use sha2::Digest as _;
        let fixture: serde_json::Value = serde_json::from_slice(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/chains/signature.json"
        )))
        .unwrap();
        let policy = ChainPolicy {
            at: 1_748_736_000,
            root_hash: Some(parse_root_hash(fixture["root_hash"].as_str().unwrap()).unwrap()),
        };
        let pem = |name: &str| {
            std::fs::read(format!(
                "{}/../tests/data/chains/{name}.pem",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        let good = chain::validate(&pem("good"), &policy).unwrap();
        let signature = fixture["signature"].as_str().unwrap();
        let payload = fixture["payload"].as_str().unwrap().as_bytes();
        let digest: [u8; 48] = sha2::Sha384::digest(payload).into();
        verify_entry(&good, DEFAULT_SIGNER_NAME, signature, &digest).unwrap();
        let code = |r: Result<(), VerifyError>| r.unwrap_err().code;
        let other: [u8; 48] = sha2::Sha384::digest(b"other").into();
        assert_eq!(
            code(verify_entry(&good, DEFAULT_SIGNER_NAME, signature, &other)),
            ErrorCode::SignatureMismatch
        );
        assert_eq!(
            code(verify_entry(&good, ONECRL_SIGNER_NAME, signature, &digest)),
            ErrorCode::SignerNameMismatch
        );
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let short = b64.encode(&b64.decode(signature).unwrap()[..95]);
        assert_eq!(
            code(verify_entry(&good, DEFAULT_SIGNER_NAME, &short, &digest)),
            ErrorCode::SignatureLength
        );
        // The onecrl leaf has another key: its chain cannot vouch for this signature.
        let onecrl = chain::validate(&pem("onecrl"), &policy).unwrap();
        assert_eq!(
            code(verify_entry(
                &onecrl,
                ONECRL_SIGNER_NAME,
                signature,
                &digest
            )),
            ErrorCode::SignatureMismatch
        );
    }

    #[test]
    fn dates_use_the_original_format() {
        assert_eq!(format_utc(1520258251), "2018-03-05 13:57:31 UTC");
    }
}
