//! Content-signature verification (Mozilla's Content-Signature protocol): the canonical payload,
//! the x5u certificate chain and the ECDSA P-384 signature.
