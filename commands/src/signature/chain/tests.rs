//! Unit tests of chain validation, on the fixtures of `tests/data/chains/` (made by
//! `testing/make_chain_fixtures.py`: valid from 2024-01-01 to 2034-01-01 unless named otherwise).

use super::cert::{pem_certificates, tbs_bytes};
use super::*;
use crate::signature::{parse_root_hash, DEFAULT_SIGNER_NAME};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/chains/",
            $name,
            ".pem"
        ))
    };
}

/// 2025-06-01T00:00:00Z
const AT: u64 = 1_748_736_000;

fn fixture_root_hash() -> [u8; 32] {
    let json: serde_json::Value = serde_json::from_slice(include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/chains/signature.json"
    )))
    .unwrap();
    parse_root_hash(json["root_hash"].as_str().unwrap()).unwrap()
}

fn policy() -> ChainPolicy {
    ChainPolicy {
        at: AT,
        root_hash: None,
    }
}

fn code(pem: &[u8], policy: &ChainPolicy) -> ErrorCode {
    match validate(pem, policy) {
        Ok(_) => panic!("the chain was accepted"),
        Err(e) => {
            assert!(!e.detail.is_empty());
            e.code
        }
    }
}

#[test]
fn a_good_chain_is_accepted_and_describes_itself() {
    let chain = validate(fixture!("good"), &policy()).unwrap();
    assert_eq!(chain.certs.len(), 3);
    assert_eq!(chain.certs[0].subject, DEFAULT_SIGNER_NAME);
    assert_eq!(chain.certs[2].subject, "rsl fixture root");
    assert_eq!(chain.certs[0].not_before, 1_704_067_200);
    assert_eq!(chain.leaf_dns_names(), [DEFAULT_SIGNER_NAME.to_string()]);
    assert!(!chain.root_pinned);
    assert_eq!(chain.root_sha256, fixture_root_hash());
    chain.check_signer_name(DEFAULT_SIGNER_NAME).unwrap();
    chain
        .check_signer_name("REMOTE-SETTINGS.content-signature.mozilla.org")
        .unwrap();
    let err = chain
        .check_signer_name("onecrl.content-signature.mozilla.org")
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SignerNameMismatch);
    assert!(err
        .detail
        .contains("remote-settings.content-signature.mozilla.org"));
}

#[test]
fn every_link_algorithm_used_by_real_chains_verifies() {
    // ECDSA P-384 leaf links, RSA SHA-256/384/512 links, and P-256 ECDSA-SHA256 links.
    for pem in [
        &fixture!("good")[..],
        fixture!("rsa-sha512"),
        fixture!("p256-root"),
        fixture!("onecrl"),
    ] {
        validate(pem, &policy()).unwrap();
    }
}

#[test]
fn dates_are_checked_for_every_certificate_at_the_check_time() {
    let good = fixture!("good");
    let at = |at| ChainPolicy {
        at,
        root_hash: None,
    };
    // The bounds are inclusive.
    validate(good, &at(1_704_067_200)).unwrap();
    validate(good, &at(2_019_686_400)).unwrap();
    assert_eq!(code(good, &at(1_704_067_199)), ErrorCode::CertNotYetValid);
    let err = validate(good, &at(2_019_686_401)).unwrap_err();
    assert_eq!(err.code, ErrorCode::CertExpired);
    assert!(
        err.detail.contains("certificate 1/3 (leaf, CN=remote-settings.content-signature.mozilla.org) expired on 2034-01-01 00:00:00 UTC"),
        "{}",
        err.detail
    );
    // Only the leaf is short-lived here: it decides.
    let short = fixture!("short-leaf");
    assert_eq!(code(short, &policy()), ErrorCode::CertExpired);
    assert_eq!(code(short, &at(1_720_000_000)), ErrorCode::CertNotYetValid);
}

#[test]
fn the_root_pin_is_enforced_when_given() {
    let pinned = ChainPolicy {
        at: AT,
        root_hash: Some(fixture_root_hash()),
    };
    assert!(validate(fixture!("good"), &pinned).unwrap().root_pinned);
    let other = ChainPolicy {
        at: AT,
        root_hash: Some([7; 32]),
    };
    let err = validate(fixture!("good"), &other).unwrap_err();
    assert_eq!(err.code, ErrorCode::RootHashMismatch);
    assert!(err
        .detail
        .contains(&crate::signature::colon_hex(&fixture_root_hash())));
    // Another root altogether, valid in itself: only the pin refuses it.
    validate(fixture!("p256-root"), &policy()).unwrap();
    assert_eq!(
        code(fixture!("p256-root"), &pinned),
        ErrorCode::RootHashMismatch
    );
}

#[test]
fn broken_or_incomplete_chains_are_refused() {
    let p = policy();
    assert_eq!(code(fixture!("broken-link"), &p), ErrorCode::ChainBroken);
    assert_eq!(
        code(fixture!("wrong-issuer-name"), &p),
        ErrorCode::ChainBroken
    );
    assert_eq!(code(fixture!("unordered"), &p), ErrorCode::ChainBroken);
    assert_eq!(code(fixture!("leaf-only"), &p), ErrorCode::ChainBroken);
    assert_eq!(code(fixture!("no-root"), &p), ErrorCode::RootNotSelfSigned);
    assert_eq!(code(fixture!("too-long"), &p), ErrorCode::ChainTooLong);
    let err = validate(fixture!("broken-link"), &p).unwrap_err();
    assert!(
        err.detail.contains("certificate 1/3 (leaf"),
        "{}",
        err.detail
    );
    assert!(
        err.detail.contains("certificate 2/3 (intermediate"),
        "{}",
        err.detail
    );
}

#[test]
fn issuer_and_leaf_constraints_are_enforced() {
    let p = policy();
    assert_eq!(
        code(fixture!("non-ca-intermediate"), &p),
        ErrorCode::IssuerNotCa
    );
    assert_eq!(
        code(fixture!("issuer-key-usage"), &p),
        ErrorCode::IssuerKeyUsage
    );
    assert_eq!(
        code(fixture!("path-length"), &p),
        ErrorCode::PathLengthExceeded
    );
    assert_eq!(code(fixture!("leaf-is-ca"), &p), ErrorCode::LeafIsCa);
    assert_eq!(code(fixture!("leaf-p256"), &p), ErrorCode::UnsupportedKey);
    assert_eq!(
        code(fixture!("no-code-signing"), &p),
        ErrorCode::CodeSigningEkuMissing
    );
    assert_eq!(
        code(fixture!("critical-extension"), &p),
        ErrorCode::CertCriticalExtension
    );
    let err = validate(fixture!("name-constraints"), &p).unwrap_err();
    assert_eq!(err.code, ErrorCode::NameConstraintsViolation);
    assert!(err.detail.contains("example.com"), "{}", err.detail);
}

#[test]
fn pem_problems_are_pem_invalid() {
    let p = policy();
    assert_eq!(
        code(b"this is not a PEM certificate chain\n", &p),
        ErrorCode::PemInvalid
    );
    assert_eq!(code(b"", &p), ErrorCode::PemInvalid);
    let good = std::str::from_utf8(fixture!("good")).unwrap();
    // Truncated in the middle of a block.
    assert_eq!(
        code(&good.as_bytes()[..good.len() / 2], &p),
        ErrorCode::PemInvalid
    );
    // A block that is base64 but not a certificate.
    let bogus = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert_eq!(
        code(format!("{bogus}{good}").as_bytes(), &p),
        ErrorCode::PemInvalid
    );
    // Text around blocks is ignored, CRLF line ends are fine.
    let decorated = format!(
        "subject=whatever\r\n{}\r\ntrailing",
        good.replace('\n', "\r\n")
    );
    validate(decorated.as_bytes(), &p).unwrap();
}

#[test]
fn dns_name_constraints_follow_rfc_5280() {
    assert!(dns_name_matches(
        "a.content-signature.mozilla.org",
        "content-signature.mozilla.org"
    ));
    assert!(dns_name_matches(
        "content-signature.mozilla.org",
        "content-signature.mozilla.org"
    ));
    assert!(dns_name_matches(
        "A.Content-Signature.Mozilla.org",
        "content-signature.mozilla.org"
    ));
    assert!(!dns_name_matches(
        "evilcontent-signature.mozilla.org",
        "content-signature.mozilla.org"
    ));
    assert!(dns_name_matches(
        "a.content-signature.mozilla.org",
        ".content-signature.mozilla.org"
    ));
    assert!(!dns_name_matches(
        "content-signature.mozilla.org",
        ".content-signature.mozilla.org"
    ));
    assert!(!dns_name_matches(
        "mozilla.org",
        "content-signature.mozilla.org"
    ));
    assert!(dns_name_matches("anything.example", ""));
}

#[test]
fn near_expiry_warns_within_ten_percent_of_the_lifespan_clamped() {
    assert_eq!(near_expiry_threshold(10 * 365 * DAY), 60 * DAY);
    assert_eq!(near_expiry_threshold(30 * DAY), 7 * DAY);
    assert_eq!(near_expiry_threshold(300 * DAY), 30 * DAY);
    let chain = validate(fixture!("good"), &policy()).unwrap();
    // Ten-year certificates: warned 60 days before 2034-01-01.
    let not_after = 2_019_686_400;
    assert!(chain.expiry_warning(not_after - 61 * DAY).is_none());
    let warning = chain.expiry_warning(not_after - 59 * DAY).unwrap();
    assert_eq!(warning.code, WarningCode::CertNearExpiry);
    assert!(
        warning
            .detail
            .contains("expires on 2034-01-01 00:00:00 UTC, in 59.0 days"),
        "{}",
        warning.detail
    );
}

#[test]
fn tbs_bytes_are_the_signed_bytes_as_sent() {
    for der in pem_certificates(fixture!("good")).unwrap() {
        let cert = Certificate::from_der(&der).unwrap();
        assert_eq!(
            tbs_bytes(&der).unwrap(),
            cert.tbs_certificate.to_der().unwrap()
        );
    }
}
