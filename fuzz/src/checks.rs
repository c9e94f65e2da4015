//! What each fuzz target asserts about one input. Every function takes the raw bytes libFuzzer
//! hands the target and panics when an invariant breaks; nothing here may depend on more than
//! the `commands` crate and the crates `tests/fuzz_regressions.rs` has too (serde_json,
//! canonical_json, base64, p384, sha2), because that test compiles this file to replay kept inputs.
//!
//! Common to all: no panic, no unbounded recursion, and every error is one printable line
//! (reports print one line per item; a newline from hostile input would forge report lines).

use base64::Engine as _;
use commands::backport_records::mapping::{self, MAPPINGS};
use commands::command::CommandConfig as _;
use commands::settings::{is_kinto_id, RawSettings};
use commands::signature::chain::{self, ChainPolicy, MAX_CHAIN_CERTS};
use commands::signature::payload::{self, PREFIX};
use commands::signature::{decode_signature, verify_digest, ErrorCode, LeafKey};
use commands::uptake_health;
use serde_json::{json, Value};
use sha2::Digest as _;

/// A time within the validity of the chains under `tests/data/chains` (the seeds).
const CHECK_AT: u64 = 1_748_736_000;

/// An error text as reports show it: one line, no control character.
fn assert_one_line(text: &str) {
    assert!(
        !text.chars().any(char::is_control),
        "an error text holds a control character: {text:?}"
    );
}

/// `pem_chain`: the bytes as an x5u answer. The PEM parser and chain validation agree, never
/// accept fewer than 2 or more than `MAX_CHAIN_CERTS` certificates, and fail with one-line errors.
pub fn pem_chain(data: &[u8]) {
    let policy = ChainPolicy {
        at: CHECK_AT,
        root_hash: None,
    };
    let parsed = chain::pem_certificates(data);
    let validated = chain::validate(data, &policy);
    match (&parsed, &validated) {
        (Err(p), Err(v)) => assert_eq!(p, v, "validation fails on the PEM error first"),
        (Err(p), Ok(_)) => panic!("a chain was accepted from a PEM the parser refuses: {p}"),
        (Ok(ders), Ok(valid)) => {
            assert_eq!(valid.certs.len(), ders.len());
            assert!((2..=MAX_CHAIN_CERTS).contains(&ders.len()));
            for cert in &valid.certs {
                assert_one_line(&cert.subject);
            }
        }
        (Ok(_), Err(_)) => {}
    }
    for error in [parsed.err(), validated.err()].into_iter().flatten() {
        assert_one_line(&error.to_string());
    }
}

/// `der_chain`: the bytes as DER certificates (each prefixed with its length on 2 bytes, big
/// endian), written as a PEM chain the way Autograph publishes one. The PEM parser gives back
/// exactly those DER blobs, then validation goes on as for [`pem_chain`]. Mutating DER reaches
/// the X.509 decoding and extension checks that random PEM text rarely does.
pub fn der_chain(data: &[u8]) {
    let mut ders = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 && ders.len() < 16 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        ders.push(rest[2..end].to_vec());
        rest = &rest[end..];
    }
    if ders.is_empty() {
        return;
    }
    let mut pem = String::new();
    for der in &ders {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    assert_eq!(
        chain::pem_certificates(pem.as_bytes()).expect("a well-formed PEM file"),
        ders
    );
    pem_chain(pem.as_bytes());
}

/// `signature`: the bytes as a published signature value. A decoded signature is exactly the
/// base64url text given (surrounding whitespace and `=` aside: no other text decodes to the same
/// 96 bytes), and its verification against an unrelated key fails as a mismatch, not a panic.
pub fn signature(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match decode_signature(&text) {
        Ok(signature) => {
            let bytes = signature.to_bytes();
            assert_eq!(bytes.len(), 96);
            assert_eq!(
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
                text.trim().trim_end_matches('=')
            );
            let key = p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).expect("a valid scalar");
            let digest: [u8; 48] = sha2::Sha384::digest(data).into();
            if let Err(e) = verify_digest(&LeafKey::new(key.verifying_key()), &digest, &signature) {
                assert_eq!(e.code, ErrorCode::SignatureMismatch);
                assert_one_line(&e.to_string());
            }
        }
        Err(e) => {
            assert!(
                matches!(
                    e.code,
                    ErrorCode::SignatureEncoding
                        | ErrorCode::SignatureLength
                        | ErrorCode::SignatureMismatch
                ),
                "{e}"
            );
            assert_one_line(&e.to_string());
        }
    }
}

/// Python's truthiness of a `deleted` field, as the signer drops tombstones.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// The payload as the `canonical_json` crate serializes the whole document in one go.
fn reference_payload(records: &[Value], timestamp: u64) -> Vec<u8> {
    let mut kept: Vec<&Value> = records
        .iter()
        .filter(|r| !truthy(r.get("deleted")))
        .collect();
    kept.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let whole = json!({"data": kept, "last_modified": timestamp.to_string()});
    let mut out = PREFIX.to_vec();
    out.extend(
        canonical_json::to_string(&whole)
            .expect("JSON values serialize")
            .into_bytes(),
    );
    out
}

/// `payload`: the bytes as a changeset answer, and, when they are a JSON list, as the records of
/// a collection. A changeset either digests or fails with `CHANGESET_INVALID` on one line; a list
/// of records with string ids gives byte for byte the payload `canonical_json` gives for the
/// whole document, and the streamed changeset path hashes exactly those bytes.
pub fn payload(data: &[u8]) {
    match payload::digest_changeset(data.to_vec()) {
        Ok(digest) => assert!(digest.payload_len >= PREFIX.len()),
        Err(e) => {
            assert_eq!(e.code, ErrorCode::ChangesetInvalid, "{e}");
            assert_one_line(&e.to_string());
        }
    }
    let Ok(Value::Array(records)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let timestamp = 1_603_992_731_957;
    let bytes = match payload::payload_bytes(&records, timestamp) {
        Ok(bytes) => bytes,
        Err(e) => {
            assert_eq!(e.code, ErrorCode::ChangesetInvalid);
            assert_one_line(&e.to_string());
            assert!(
                records
                    .iter()
                    .any(|r| r.get("id").and_then(Value::as_str).is_none()),
                "refused records that all have string ids: {e}"
            );
            return;
        }
    };
    assert!(bytes == reference_payload(&records, timestamp));
    let changeset = serde_json::to_vec(
        &json!({"metadata": {"signature": {}}, "timestamp": timestamp, "changes": records}),
    )
    .expect("JSON values serialize");
    let digest = payload::digest_changeset(changeset).expect("a changeset of these records");
    assert_eq!(digest.payload_len, bytes.len());
    assert_eq!(
        digest.digest,
        <[u8; 48]>::from(sha2::Sha384::digest(&bytes))
    );
}

/// `mappings`: the bytes as `BACKPORT_RECORDS_MAPPINGS`. Accepted mappings hold only Kinto ids,
/// no `_fields` filter, distinct destinations, and print (as the report shows them) in a form
/// that parses back to the same mappings; refusals name the variable on one line. The bytes as
/// `BACKPORT_RECORDS_SOURCE_FILTERS` (JSON) fail on one line too.
pub fn mappings(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match mapping::parse_mappings(&text) {
        Ok(mappings) => {
            assert!(!mappings.is_empty());
            for m in &mappings {
                for id in [
                    &m.source.bucket,
                    &m.source.collection,
                    &m.destination.bucket,
                    &m.destination.collection,
                ] {
                    assert!(is_kinto_id(id), "{id:?}");
                }
                assert!(m
                    .filters
                    .iter()
                    .all(|(k, _)| !k.is_empty() && k != "_fields"));
                assert_ne!(m.source, m.destination);
            }
            let printed: Vec<String> = mappings.iter().map(ToString::to_string).collect();
            let again =
                mapping::parse_mappings(&printed.join("\n")).expect("printed mappings parse");
            assert_eq!(again, mappings);
        }
        Err(e) => {
            assert_eq!(e.name, MAPPINGS.env);
            assert_one_line(&e.to_string());
        }
    }
    if let Err(e) = mapping::filters_from_json(&text) {
        assert_one_line(&e);
    }
}

/// `thresholds`: the bytes as `SPECIFIC_ERROR_THRESHOLD_PERCENTAGES` and as
/// `DEFAULT_ERROR_THRESHOLD_PERCENT`. Accepted thresholds are finite percentages >= 0 for
/// non-empty trimmed source names and print back to the same map; errors name their variable on
/// one line.
pub fn thresholds(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match uptake_health::parse_thresholds(&text) {
        Ok(map) => {
            for (name, value) in &map {
                assert!(!name.is_empty() && name.trim() == name, "{name:?}");
                assert!(!name.contains(';') && !name.contains('='), "{name:?}");
                assert!(value.is_finite() && *value >= 0.0, "{value}");
            }
            let printed: Vec<String> = map.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            let again = uptake_health::parse_thresholds(&printed.join("; "))
                .expect("printed thresholds parse");
            assert_eq!(again, map);
        }
        Err(e) => assert_one_line(&e),
    }
    for name in [
        "SPECIFIC_ERROR_THRESHOLD_PERCENTAGES",
        "DEFAULT_ERROR_THRESHOLD_PERCENT",
    ] {
        let mut raw = RawSettings::new();
        raw.set("REDASH_RESULT_FILE", "result.json");
        raw.set(name, text.as_ref());
        match uptake_health::Config::from_settings(&raw) {
            Ok(config) => {
                assert!(config.default_threshold.is_finite() && config.default_threshold >= 0.0)
            }
            Err(e) => {
                assert_eq!(e.name, name);
                assert_one_line(&e.to_string());
            }
        }
    }
}
