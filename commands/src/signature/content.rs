//! The content signature itself: base64url text (padding tolerated) decoding to exactly 96 bytes,
//! the raw `r || s` of an ECDSA P-384 signature, verified over the SHA-384 of the payload with the
//! leaf certificate's key.
//!
//! Decoding and the range checks of `r` and `s` are the `p384` crate's, which stays the reference
//! implementation; the verification itself runs on AWS-LC (`aws-lc-rs`, already linked for TLS),
//! about four times faster. The tests below check that both agree on the conformance vectors and
//! on thousands of random signatures, good and bad.

use std::sync::Arc;

use aws_lc_rs::digest::{Digest as LcDigest, SHA384};
use aws_lc_rs::signature::{ParsedPublicKey, UnparsedPublicKey, ECDSA_P384_SHA384_FIXED};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use p384::ecdsa::{Signature, VerifyingKey};

use super::{ErrorCode, VerifyError};

/// Bytes of a P-384 `r || s` signature.
pub const SIGNATURE_LEN: usize = 96;

const BASE64URL_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decode a published signature value.
pub fn decode_signature(text: &str) -> Result<Signature, VerifyError> {
    let bytes = BASE64URL_ANY_PADDING
        .decode(text.trim().trim_end_matches('='))
        .map_err(|e| {
            VerifyError::new(
                ErrorCode::SignatureEncoding,
                format!("the signature is not base64url: {e}"),
            )
        })?;
    if bytes.len() != SIGNATURE_LEN {
        return Err(VerifyError::new(
            ErrorCode::SignatureLength,
            format!(
                "the signature is {} bytes, a P-384 signature is {SIGNATURE_LEN}",
                bytes.len()
            ),
        ));
    }
    Signature::from_slice(&bytes).map_err(|_| {
        VerifyError::new(
            ErrorCode::SignatureMismatch,
            "the signature is not a valid P-384 signature (r or s out of range)",
        )
    })
}

/// A leaf certificate's P-384 key: the `p384` key it was read as, and the same point parsed
/// once for the verifying backend.
#[derive(Clone)]
pub struct LeafKey {
    key: VerifyingKey,
    parsed: Arc<ParsedPublicKey>,
}

impl LeafKey {
    pub fn new(key: &VerifyingKey) -> Self {
        let point = key.to_encoded_point(false);
        let parsed = UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, point.as_bytes())
            .parse()
            .expect("AWS-LC parses every point the p384 crate accepts");
        LeafKey {
            key: *key,
            parsed: Arc::new(parsed),
        }
    }

    /// The key as the `p384` crate holds it.
    pub fn p384(&self) -> &VerifyingKey {
        &self.key
    }
}

impl std::fmt::Debug for LeafKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LeafKey").field(&self.key).finish()
    }
}

/// Verify a signature over a payload given by its SHA-384 digest.
pub fn verify_digest(
    key: &LeafKey,
    digest: &[u8; 48],
    signature: &Signature,
) -> Result<(), VerifyError> {
    let digest = LcDigest::import_less_safe(digest, &SHA384).expect("48 bytes are a SHA-384");
    key.parsed
        .verify_digest_sig(&digest, &signature.to_bytes())
        .map_err(|_| {
            VerifyError::new(
                ErrorCode::SignatureMismatch,
                "the signature does not match the payload with the leaf certificate's key",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
    use p384::ecdsa::SigningKey;
    use sha2::{Digest, Sha384};

    fn key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 48]).unwrap()
    }

    fn leaf(key: &SigningKey) -> LeafKey {
        LeafKey::new(key.verifying_key())
    }

    fn signed(payload: &[u8]) -> (String, [u8; 48]) {
        let digest: [u8; 48] = Sha384::digest(payload).into();
        let signature: Signature = key().sign_prehash(&digest).unwrap();
        (
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.to_bytes()),
            digest,
        )
    }

    #[test]
    fn a_good_signature_verifies_with_or_without_padding() {
        let (text, digest) = signed(b"Content-Signature:\x00{}");
        let vk = leaf(&key());
        assert_eq!(text.len(), 128);
        verify_digest(&vk, &digest, &decode_signature(&text).unwrap()).unwrap();
        // 96 bytes need no padding, but padding characters are tolerated.
        verify_digest(
            &vk,
            &digest,
            &decode_signature(&format!("{text}==")).unwrap(),
        )
        .unwrap();
        verify_digest(
            &vk,
            &digest,
            &decode_signature(&format!(" {text}\n")).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn another_payload_or_key_is_a_mismatch() {
        let (text, _) = signed(b"one");
        let other: [u8; 48] = Sha384::digest(b"two").into();
        let vk = leaf(&key());
        let err = verify_digest(&vk, &other, &decode_signature(&text).unwrap()).unwrap_err();
        assert_eq!(err.code, ErrorCode::SignatureMismatch);
        let (text, digest) = signed(b"one");
        let stranger = leaf(&SigningKey::from_slice(&[9u8; 48]).unwrap());
        let err = verify_digest(&stranger, &digest, &decode_signature(&text).unwrap()).unwrap_err();
        assert_eq!(err.code, ErrorCode::SignatureMismatch);
    }

    #[test]
    fn length_and_encoding_errors_have_their_codes() {
        let b64 = |n: usize| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vec![1u8; n]);
        assert_eq!(
            decode_signature(&b64(95)).unwrap_err().code,
            ErrorCode::SignatureLength
        );
        let padded = base64::engine::general_purpose::URL_SAFE.encode(vec![1u8; 95]);
        assert!(padded.ends_with('='));
        assert_eq!(
            decode_signature(&padded).unwrap_err().code,
            ErrorCode::SignatureLength
        );
        assert_eq!(
            decode_signature(&b64(97)).unwrap_err().code,
            ErrorCode::SignatureLength
        );
        assert_eq!(
            decode_signature("").unwrap_err().code,
            ErrorCode::SignatureLength
        );
        // Standard base64 characters are not base64url.
        let standard = format!("{}+/", &b64(96)[..126]);
        assert_eq!(
            decode_signature(&standard).unwrap_err().code,
            ErrorCode::SignatureEncoding
        );
        assert_eq!(
            decode_signature("not base64!").unwrap_err().code,
            ErrorCode::SignatureEncoding
        );
        // r = 0 is no signature.
        let zeros = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0u8; 96]);
        assert_eq!(
            decode_signature(&zeros).unwrap_err().code,
            ErrorCode::SignatureMismatch
        );
    }

    /// What the reference implementation says of a signature over a digest.
    fn p384_accepts(key: &VerifyingKey, digest: &[u8; 48], signature: &Signature) -> bool {
        key.verify_prehash(digest, signature).is_ok()
    }

    #[test]
    fn aws_lc_agrees_with_p384_on_random_signatures_good_and_bad() {
        let mut rng = fastrand::Rng::with_seed(20261204);
        let mut bytes = |n: usize| -> Vec<u8> { (0..n).map(|_| rng.u8(..)).collect() };
        let (mut accepted, mut refused) = (0, 0);
        for round in 0..40 {
            let Ok(signer) = SigningKey::from_slice(&bytes(48)) else {
                continue;
            };
            let key = leaf(&signer);
            let digest: [u8; 48] = bytes(48).try_into().unwrap();
            let good: Signature = signer.sign_prehash(&digest).unwrap();
            // The same signature with s negated (high-S) verifies too, in both.
            let mut candidates = vec![(good, digest)];
            let (r, s) = good.split_scalars();
            candidates.push((Signature::from_scalars(r, -s).unwrap(), digest));
            // Another digest, a flipped bit of the signature, an unrelated (r, s).
            let mut other = digest;
            other[round % 48] ^= 1 << (round % 8);
            candidates.push((good, other));
            let mut flipped = good.to_bytes();
            flipped[round % 96] ^= 1 << (round % 7);
            if let Ok(flipped) = Signature::from_slice(&flipped) {
                candidates.push((flipped, digest));
            }
            if let Ok(random) = Signature::from_slice(&bytes(96)) {
                candidates.push((random, digest));
            }
            for (signature, digest) in candidates {
                let reference = p384_accepts(key.p384(), &digest, &signature);
                let ours = verify_digest(&key, &digest, &signature);
                assert_eq!(ours.is_ok(), reference, "{signature:?} over {digest:?}");
                if reference {
                    accepted += 1;
                } else {
                    assert_eq!(ours.unwrap_err().code, ErrorCode::SignatureMismatch);
                    refused += 1;
                }
            }
        }
        assert!(accepted >= 70 && refused >= 90, "{accepted} / {refused}");
    }
}
