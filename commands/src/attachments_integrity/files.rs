//! The attachments of a published collection, as its changeset declares them, and the check of one
//! file: downloaded as a stream into a SHA-256 hasher and a byte count, never held whole.

use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::client::{ClientError, HttpClient, Request, Sink};
use crate::kinto::Kinto;
use crate::kinto::{ChangesEntry, CollectionRef};

/// One record's attachment, as declared in the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub collection: CollectionRef,
    pub record: String,
    pub location: String,
    /// Lowercase hex SHA-256.
    pub hash: String,
    pub size: u64,
}

/// A record whose `attachment` is not `{location, hash, size}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAttachment {
    pub collection: CollectionRef,
    pub record: String,
    pub reason: String,
}

/// The attachments of a collection's published records (tombstones and records without one are
/// skipped), read from its changeset at the monitor's timestamp.
pub async fn list(
    client: &Kinto,
    entry: &ChangesEntry,
) -> Result<(Vec<Attachment>, Vec<InvalidAttachment>), ClientError> {
    #[derive(Deserialize)]
    struct Changeset {
        changes: Vec<Value>,
    }
    let (changeset, _) = client
        .get_json::<Changeset>(
            &format!("{}/changeset", entry.path()),
            &[("_expected", &entry.last_modified.to_string())],
        )
        .await?;
    let collection = CollectionRef::new(&entry.bucket, &entry.collection);
    let (mut found, mut invalid) = (Vec::new(), Vec::new());
    for record in &changeset.changes {
        match parse(&collection, record) {
            Some(Ok(attachment)) => found.push(attachment),
            Some(Err(bad)) => invalid.push(bad),
            None => {}
        }
    }
    Ok((found, invalid))
}

type Parsed = Result<Attachment, InvalidAttachment>;

fn is_sha256(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A record's attachment; `None` when it has none.
fn parse(collection: &CollectionRef, record: &Value) -> Option<Parsed> {
    let declared = record.get("attachment").filter(|a| !a.is_null())?;
    let record_id = record
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("(no id)")
        .to_string();
    let invalid = |reason: &str| InvalidAttachment {
        collection: collection.clone(),
        record: record_id.clone(),
        reason: reason.to_string(),
    };
    let text = |name: &str| declared.get(name).and_then(Value::as_str);
    let Some(location) = text("location").filter(|l| !l.is_empty()) else {
        return Some(Err(invalid("no string \"location\"")));
    };
    let Some(hash) = text("hash").filter(|h| is_sha256(h)) else {
        return Some(Err(invalid("no SHA-256 \"hash\"")));
    };
    let Some(size) = declared.get("size").and_then(Value::as_u64) else {
        return Some(Err(invalid("no integer \"size\"")));
    };
    Some(Ok(Attachment {
        collection: collection.clone(),
        record: record_id,
        location: location.to_string(),
        hash: hash.to_ascii_lowercase(),
        size,
    }))
}

/// What one download found.
#[derive(Debug, Clone)]
pub enum Found {
    Ok,
    SizeMismatch { actual: u64 },
    HashMismatch { actual: String },
    /// No 2xx answer, after retries (what it means is the report's to say).
    Failed(ClientError),
}

/// A streamed body's SHA-256 and length.
#[derive(Default)]
struct Hasher {
    sha256: Sha256,
    bytes: u64,
}

impl Sink for Hasher {
    fn write(&mut self, chunk: &[u8]) {
        self.sha256.update(chunk);
        self.bytes += chunk.len() as u64;
    }
}

/// Download the file at `url` and compare it with what `attachment` declares: the size first,
/// then the hash.
pub async fn check(client: &HttpClient, attachment: &Attachment, url: &Url) -> Found {
    let request = Request::new(Method::GET, url.clone());
    match client.stream(&request, Hasher::default).await {
        Ok((_, hasher)) if hasher.bytes != attachment.size => Found::SizeMismatch {
            actual: hasher.bytes,
        },
        Ok((_, hasher)) => {
            let actual = format!("{:x}", hasher.sha256.finalize());
            if actual == attachment.hash {
                Found::Ok
            } else {
                Found::HashMismatch { actual }
            }
        }
        Err(error) => Found::Failed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_declare_their_attachment_or_none() {
        let c = CollectionRef::new("main", "cfr");
        let hash = "ab".repeat(32);
        let good = json!({"id": "r1", "attachment": {"location": "main/cfr/x.bin", "hash": hash, "size": 12}});
        let found = parse(&c, &good).unwrap().unwrap();
        assert_eq!((found.location.as_str(), found.size), ("main/cfr/x.bin", 12));
        assert!(parse(&c, &json!({"id": "r2"})).is_none());
        assert!(parse(&c, &json!({"id": "r3", "deleted": true})).is_none());
        assert!(parse(&c, &json!({"id": "r4", "attachment": null})).is_none());
        for (bad, why) in [
            (json!({"hash": hash, "size": 1}), "location"),
            (json!({"location": "x", "hash": "abc", "size": 1}), "hash"),
            (json!({"location": "x", "hash": hash, "size": "1"}), "size"),
        ] {
            let err = parse(&c, &json!({"id": "r5", "attachment": bad})).unwrap().unwrap_err();
            assert!(err.reason.contains(why), "{}", err.reason);
            assert_eq!(err.record, "r5");
        }
    }
}
