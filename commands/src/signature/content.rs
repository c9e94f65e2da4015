//! The content signature itself: base64url text (padding tolerated) decoding to exactly 96 bytes,
//! the raw `r || s` of an ECDSA P-384 signature, verified over the SHA-384 of the payload with the
//! leaf certificate's key.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use p384::ecdsa::signature::hazmat::PrehashVerifier;
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

/// Verify a signature over a payload given by its SHA-384 digest.
pub fn verify_digest(
    key: &VerifyingKey,
    digest: &[u8; 48],
    signature: &Signature,
) -> Result<(), VerifyError> {
    key.verify_prehash(digest, signature).map_err(|_| {
        VerifyError::new(
            ErrorCode::SignatureMismatch,
            "the signature does not match the payload with the leaf certificate's key",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::ecdsa::signature::hazmat::PrehashSigner;
    use p384::ecdsa::SigningKey;
    use sha2::{Digest, Sha384};

    fn key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 48]).unwrap()
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
        let vk = VerifyingKey::from(&key());
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
        let vk = VerifyingKey::from(&key());
        let err = verify_digest(&vk, &other, &decode_signature(&text).unwrap()).unwrap_err();
        assert_eq!(err.code, ErrorCode::SignatureMismatch);
        let (text, digest) = signed(b"one");
        let stranger = VerifyingKey::from(&SigningKey::from_slice(&[9u8; 48]).unwrap());
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
}
