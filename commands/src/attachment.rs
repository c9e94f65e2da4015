//! Attachments as records declare them (`attachment: {location, hash, size, ...}`), where their
//! files are (`capabilities.attachments.base_url` + `location`), and the download of one file
//! checked against its declaration: streamed into a SHA-256 hasher and a byte count, kept only
//! when the caller needs the bytes ([`fetch`]), never trusted before both match.

use reqwest::{Method, Url};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::client::{ClientError, HttpClient, Request, Sink};
use crate::kinto::{CollectionRef, ServerInfo};
use crate::report::is_finding;

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

pub type Parsed = Result<Attachment, InvalidAttachment>;

fn is_sha256(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A record's attachment; `None` when it has none (no `attachment`, or `null`).
pub fn parse(collection: &CollectionRef, record: &Value) -> Option<Parsed> {
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

/// The files' base URL the server announces (`capabilities.attachments.base_url`).
pub fn base_url(info: &ServerInfo) -> Option<&str> {
    info.capabilities
        .get("attachments")
        .and_then(|a| a.get("base_url"))
        .and_then(Value::as_str)
}

/// What a run says when records have attachments and the server announces no base URL.
pub const NO_BASE_URL: &str =
    "records have attachments but the server announces no capabilities.attachments.base_url";

/// `base_url` + `location`, as clients join them; `None` when that is no http(s) URL.
pub fn file_url(base_url: &str, location: &str) -> Option<Url> {
    let joined = if base_url.ends_with('/') || location.starts_with('/') {
        format!("{base_url}{location}")
    } else {
        format!("{base_url}/{location}")
    };
    Url::parse(&joined)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// What one download found.
#[derive(Debug, Clone)]
pub enum Found {
    Ok,
    SizeMismatch {
        actual: u64,
    },
    HashMismatch {
        actual: String,
    },
    /// No 2xx answer, after retries (what it means is the caller's to say).
    Failed(ClientError),
}

/// The verdict on one download.
#[derive(Debug, Clone)]
pub enum Checked<'a> {
    Ok,
    /// A finding: its code (`MISSING`, `STATUS`, `SIZE_MISMATCH`, `HASH_MISMATCH`) and what
    /// differs.
    Bad(&'static str, String),
    /// No answer, or 5xx, after retries: the file could not be checked.
    CouldNotTell(&'a ClientError),
}

impl Found {
    /// What this download says of the file `declared` describes.
    pub fn checked(&self, declared: &Attachment) -> Checked<'_> {
        match self {
            Found::Ok => Checked::Ok,
            Found::SizeMismatch { actual } => Checked::Bad(
                "SIZE_MISMATCH",
                format!("{actual} bytes, {} declared", declared.size),
            ),
            Found::HashMismatch { actual } => Checked::Bad(
                "HASH_MISMATCH",
                format!("sha256 {actual}, {} declared", declared.hash),
            ),
            Found::Failed(error) if error.status() == Some(404) => {
                Checked::Bad("MISSING", "HTTP 404".into())
            }
            Found::Failed(error) if is_finding(error) => {
                Checked::Bad("STATUS", error.kind.to_string())
            }
            Found::Failed(error) => Checked::CouldNotTell(error),
        }
    }
}

/// A streamed body's SHA-256 and length, and its bytes when asked to keep them (never more than
/// the declared size: a file larger than declared is counted, not held).
struct Hasher {
    sha256: Sha256,
    bytes: u64,
    keep: Option<(Vec<u8>, u64)>,
}

impl Hasher {
    fn new(keep_up_to: Option<u64>) -> Self {
        Hasher {
            sha256: Sha256::new(),
            bytes: 0,
            keep: keep_up_to.map(|limit| (Vec::with_capacity(limit.min(1 << 26) as usize), limit)),
        }
    }
}

impl Sink for Hasher {
    fn write(&mut self, chunk: &[u8]) {
        self.sha256.update(chunk);
        self.bytes += chunk.len() as u64;
        if let Some((body, limit)) = &mut self.keep {
            if self.bytes <= *limit {
                body.extend_from_slice(chunk);
            }
        }
    }
}

async fn download(
    client: &HttpClient,
    attachment: &Attachment,
    url: &Url,
    keep: bool,
) -> (Found, Vec<u8>) {
    let request = Request::new(Method::GET, url.clone());
    let keep_up_to = keep.then_some(attachment.size);
    match client.stream(&request, || Hasher::new(keep_up_to)).await {
        Ok((_, hasher)) if hasher.bytes != attachment.size => (
            Found::SizeMismatch {
                actual: hasher.bytes,
            },
            Vec::new(),
        ),
        Ok((_, hasher)) => {
            let actual = format!("{:x}", hasher.sha256.finalize());
            if actual == attachment.hash {
                (Found::Ok, hasher.keep.map(|(b, _)| b).unwrap_or_default())
            } else {
                (Found::HashMismatch { actual }, Vec::new())
            }
        }
        Err(error) => (Found::Failed(error), Vec::new()),
    }
}

/// Download the file at `url` and compare it with what `attachment` declares (the size first,
/// then the hash), keeping nothing.
pub async fn check(client: &HttpClient, attachment: &Attachment, url: &Url) -> Found {
    download(client, attachment, url, false).await.0
}

/// Download the file at `url`: its bytes when they are what `attachment` declares, else what
/// differs (no bytes of a file that does not match are ever returned).
pub async fn fetch(
    client: &HttpClient,
    attachment: &Attachment,
    url: &Url,
) -> Result<Vec<u8>, Found> {
    match download(client, attachment, url, true).await {
        (Found::Ok, body) => Ok(body),
        (found, _) => Err(found),
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
        assert_eq!(
            (found.location.as_str(), found.size),
            ("main/cfr/x.bin", 12)
        );
        assert!(parse(&c, &json!({"id": "r2"})).is_none());
        assert!(parse(&c, &json!({"id": "r3", "deleted": true})).is_none());
        assert!(parse(&c, &json!({"id": "r4", "attachment": null})).is_none());
        for (bad, why) in [
            (json!({"hash": hash, "size": 1}), "location"),
            (json!({"location": "x", "hash": "abc", "size": 1}), "hash"),
            (json!({"location": "x", "hash": hash, "size": "1"}), "size"),
        ] {
            let err = parse(&c, &json!({"id": "r5", "attachment": bad}))
                .unwrap()
                .unwrap_err();
            assert!(err.reason.contains(why), "{}", err.reason);
            assert_eq!(err.record, "r5");
        }
    }

    #[test]
    fn file_urls_join_the_base_url_and_the_location() {
        let url = |b, l| file_url(b, l).map(|u| u.to_string());
        assert_eq!(
            url("http://f/main/", "b/c/x.bin").as_deref(),
            Some("http://f/main/b/c/x.bin")
        );
        assert_eq!(
            url("http://f/main", "b/c/x.bin").as_deref(),
            Some("http://f/main/b/c/x.bin")
        );
        assert_eq!(url("file:///etc/", "passwd"), None);
        assert_eq!(url("not a url/", "x"), None);
    }

    #[test]
    fn a_kept_body_never_grows_beyond_the_declared_size() {
        let mut hasher = Hasher::new(Some(4));
        hasher.write(b"abc");
        hasher.write(b"de");
        assert_eq!(hasher.bytes, 5);
        assert_eq!(hasher.keep.unwrap().0, b"abc");
    }
}
