//! The `status` of a signed source collection, as kinto-signer reads and writes it: the states
//! of the review workflow, and the requests an editor or a job writes to move it on. A status
//! this code does not know is kept as it is ([`SignerStatus::Other`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A source collection's `status`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SignerStatus {
    /// Changes are being made, not yet submitted.
    WorkInProgress,
    /// Changes wait for a reviewer (written to ask for a review).
    ToReview,
    /// Written to ask for a signature (by a reviewer, or directly without review).
    ToSign,
    /// Written to have the destination signed again, unchanged.
    ToResign,
    /// Written to drop the changes not yet signed.
    ToRollback,
    /// The destination holds the source's records, signed.
    Signed,
    /// Any other value.
    Other(String),
}

impl SignerStatus {
    /// Every known status, with its wire form.
    const KNOWN: [(SignerStatus, &'static str); 6] = [
        (SignerStatus::WorkInProgress, "work-in-progress"),
        (SignerStatus::ToReview, "to-review"),
        (SignerStatus::ToSign, "to-sign"),
        (SignerStatus::ToResign, "to-resign"),
        (SignerStatus::ToRollback, "to-rollback"),
        (SignerStatus::Signed, "signed"),
    ];

    /// The status as the server writes it.
    pub fn as_str(&self) -> &str {
        match self {
            SignerStatus::Other(other) => other,
            known => {
                Self::KNOWN
                    .iter()
                    .find(|(status, _)| status == known)
                    .expect("every known status has its wire form")
                    .1
            }
        }
    }

    /// The status a server sent.
    pub fn parse(text: &str) -> SignerStatus {
        Self::KNOWN
            .iter()
            .find(|(_, wire)| *wire == text)
            .map(|(status, _)| status.clone())
            .unwrap_or_else(|| SignerStatus::Other(text.to_string()))
    }

    /// The `{"data": {"status": ...}}` body of a PATCH that writes this status.
    pub fn patch_body(&self) -> serde_json::Value {
        serde_json::json!({"data": {"status": self.as_str()}})
    }
}

impl std::fmt::Display for SignerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SignerStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SignerStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(SignerStatus::parse(&String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_and_write_in_kinto_signer_s_words() {
        for wire in [
            "work-in-progress",
            "to-review",
            "to-sign",
            "to-resign",
            "to-rollback",
            "signed",
        ] {
            let status = SignerStatus::parse(wire);
            assert!(!matches!(status, SignerStatus::Other(_)), "{wire}");
            assert_eq!(status.as_str(), wire);
            assert_eq!(serde_json::to_value(&status).unwrap(), wire);
        }
        assert_eq!(SignerStatus::parse("to-review"), SignerStatus::ToReview);
        assert_eq!(
            SignerStatus::ToResign.patch_body(),
            serde_json::json!({"data": {"status": "to-resign"}})
        );
    }

    #[test]
    fn an_unknown_status_is_kept_as_it_is() {
        let status: SignerStatus = serde_json::from_str(r#""to-be-decided""#).unwrap();
        assert_eq!(status, SignerStatus::Other("to-be-decided".into()));
        assert_eq!(status.to_string(), "to-be-decided");
        // The wire forms are exact: no case folding, no trimming.
        assert_eq!(
            SignerStatus::parse("Signed"),
            SignerStatus::Other("Signed".into())
        );
    }
}
