//! Conformance with Mozilla's own vectors (`tests/data/conformance/`, see its README): the
//! canonical JSON of a production changeset byte for byte, the production signature over its
//! payload, and the Mozilla test chain with its RSA root.

use base64::Engine as _;
use p384::ecdsa::signature::hazmat::PrehashVerifier as _;
use serde_json::Value;
use x509_cert::der::Decode;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::chain::{validate, ChainPolicy};
use super::payload::{digest_changeset, digest_read_with, payload_bytes, CanonicalRecords, PREFIX};
use super::{
    decode_signature, parse_root_hash, verify_digest, ErrorCode, LeafKey, DEFAULT_SIGNER_NAME,
};

macro_rules! vector {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/conformance/",
            $name
        ))
    };
}

const CHANGESET: &[u8] = vector!("prod-search-config-v2.changeset.json");
const CANONICAL: &[u8] = vector!("prod-search-config-v2.canonical.json");
const TEST_CHAIN: &[u8] = vector!("mozilla-test-chain.pem");
const TEST_ROOT_HASH: &str =
    "3C:01:44:6A:BE:90:36:CE:A9:A0:9A:CA:A3:A5:20:AC:62:8F:20:A7:AE:32:CE:86:1C:B2:EF:B7:0F:A0:C7:45";
const TEST_SIGNATURE: &str = "fJJcOpwdnkjEWFeHXfdOJN6GaGLuDTPGzQOxA2jn6ldIleIk6KqMhZcy2GZv2uYiGwl6DERWwpaoUfQFLyCAOcVjck1qlaaEFZGY1BQba9p99xEc9FNQ3YPPfvSSZqsw";
const TEST_CHAIN_VALID_AT: u64 = 1_615_559_719;

fn prod_key(changeset: &Value) -> LeafKey {
    let b64 = changeset["metadata"]["signature"]["public_key"]
        .as_str()
        .unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let spki = SubjectPublicKeyInfoOwned::from_der(&der).unwrap();
    LeafKey::new(
        &p384::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap(),
    )
}

#[test]
fn the_production_changeset_serializes_byte_for_byte() {
    let doc: Value = serde_json::from_slice(CHANGESET).unwrap();
    let ours = canonical_json::to_string(&doc).unwrap();
    assert_eq!(ours.len(), 122_770);
    assert!(ours.as_bytes() == CANONICAL, "canonical JSON differs");
}

#[test]
fn the_production_signature_verifies_over_our_payload() {
    let doc: Value = serde_json::from_slice(CHANGESET).unwrap();
    let key = prod_key(&doc);
    let digest = digest_changeset(CHANGESET.to_vec()).unwrap();
    assert_eq!(digest.timestamp, 1_774_874_010_729);
    assert_eq!(digest.records, 156);
    assert_eq!(digest.payload_len, PREFIX.len() + 105_410);
    assert!(digest.warnings.is_empty(), "{:?}", digest.warnings);
    // Both published forms carry the same signature.
    assert_eq!(digest.signatures.len(), 1);
    let signature = decode_signature(digest.signatures[0].signature.as_ref().unwrap()).unwrap();
    verify_digest(&key, &digest.digest, &signature).unwrap();
    // The reference implementation agrees.
    key.p384()
        .verify_prehash(&digest.digest, &signature)
        .unwrap();
    let legacy = doc["metadata"]["signature"]["signature"].as_str().unwrap();
    verify_digest(&key, &digest.digest, &decode_signature(legacy).unwrap()).unwrap();

    // The same payload built from the records directly.
    let records = doc["changes"].as_array().unwrap();
    let bytes = payload_bytes(records, 1_774_874_010_729).unwrap();
    let sha: [u8; 48] = <sha2::Sha384 as sha2::Digest>::digest(&bytes).into();
    assert_eq!(sha, digest.digest);

    // Any other payload fails: the metadata timestamp instead of the records one, a record less.
    for other in [
        payload_bytes(records, 1_776_124_808_870).unwrap(),
        payload_bytes(&records[1..], 1_774_874_010_729).unwrap(),
    ] {
        let sha: [u8; 48] = <sha2::Sha384 as sha2::Digest>::digest(&other).into();
        let err = verify_digest(&key, &sha, &signature).unwrap_err();
        assert_eq!(err.code, ErrorCode::SignatureMismatch);
        assert!(key.p384().verify_prehash(&sha, &signature).is_err());
    }
}

#[test]
fn the_production_changeset_is_read_by_the_direct_path_with_the_same_digest() {
    let text = std::str::from_utf8(CHANGESET).unwrap();
    let mut records = 0;
    let read = super::direct::changeset(text, &mut Default::default(), |_, _| records += 1);
    assert!(read.is_ok());
    assert_eq!(records, 156);
    let through_serde = digest_read_with(CHANGESET.to_vec(), CanonicalRecords::read_serde);
    assert_eq!(
        format!("{:?}", digest_changeset(CHANGESET.to_vec())),
        format!("{through_serde:?}")
    );
}

#[test]
fn the_mozilla_test_chain_verifies_at_its_time_with_its_pinned_rsa_root() {
    let policy = ChainPolicy {
        at: TEST_CHAIN_VALID_AT,
        root_hash: Some(parse_root_hash(TEST_ROOT_HASH).unwrap()),
    };
    let chain = validate(TEST_CHAIN, &policy).unwrap();
    assert!(chain.root_pinned);
    assert_eq!(chain.certs.len(), 3);
    assert_eq!(chain.certs[2].subject, "test.addons.signing.root.ca");
    chain.check_signer_name(DEFAULT_SIGNER_NAME).unwrap();
    let signature = decode_signature(TEST_SIGNATURE).unwrap();
    let payload = payload_bytes(&[], 1_603_992_731_957).unwrap();
    assert_eq!(
        payload,
        b"Content-Signature:\x00{\"data\":[],\"last_modified\":\"1603992731957\"}".to_vec()
    );
    let sha = |bytes: &[u8]| -> [u8; 48] { <sha2::Sha384 as sha2::Digest>::digest(bytes).into() };
    verify_digest(chain.leaf_key(), &sha(&payload), &signature).unwrap();
    let reference = chain.leaf_key().p384();
    reference
        .verify_prehash(&sha(&payload), &signature)
        .unwrap();
    // Any other payload must fail.
    let other = payload_bytes(&[], 1_603_992_731_958).unwrap();
    assert_eq!(
        verify_digest(chain.leaf_key(), &sha(&other), &signature)
            .unwrap_err()
            .code,
        ErrorCode::SignatureMismatch
    );
    assert!(reference.verify_prehash(&sha(&other), &signature).is_err());
    // Unpinned, the self-signed root is accepted and said so.
    let unpinned = validate(
        TEST_CHAIN,
        &ChainPolicy {
            at: TEST_CHAIN_VALID_AT,
            root_hash: None,
        },
    )
    .unwrap();
    assert!(!unpinned.root_pinned);
    assert_eq!(
        unpinned.root_sha256,
        parse_root_hash(TEST_ROOT_HASH).unwrap()
    );
}

#[test]
fn the_mozilla_test_chain_is_expired_now() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let err = validate(
        TEST_CHAIN,
        &ChainPolicy {
            at: now,
            root_hash: Some(parse_root_hash(TEST_ROOT_HASH).unwrap()),
        },
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::CertExpired, "{err}");
    // The leaf expired first (2021-04-24), and the detail says so.
    assert!(
        err.detail.contains("certificate 1/3 (leaf"),
        "{}",
        err.detail
    );
    assert!(err.detail.contains("2021-04-24"), "{}", err.detail);
}
