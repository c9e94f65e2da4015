//! Certificate signatures: which algorithms a link may use (ECDSA P-256/P-384, RSA PKCS#1 v1.5,
//! with SHA-256/384/512), the issuer's key, and whether a certificate is signed by it.

use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::oid::db::rfc5912;
use x509_cert::der::Decode;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::cert::{tbs_bytes, Link};
use super::{err, MIN_RSA_BITS};
use crate::signature::{ErrorCode, VerifyError};

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
pub(super) fn verify_link(child: &Link, issuer: &Link) -> Result<(), VerifyError> {
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

pub(super) fn leaf_key(leaf: &Link) -> Result<p384::ecdsa::VerifyingKey, VerifyError> {
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
