//! The monitor list: the entries of `monitor/changes` (or of any collection used as such), each
//! a published collection and its records timestamp, and the records timestamp of one
//! collection.

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use super::Kinto;
use crate::client::{ClientError, ClientErrorKind, Request};
use crate::settings::is_kinto_id;

/// One entry of `monitor/changes` (or of any collection used as such): a published collection and
/// its records timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangesEntry {
    pub bucket: String,
    pub collection: String,
    pub last_modified: u64,
}

impl ChangesEntry {
    pub fn path(&self) -> String {
        format!("/buckets/{}/collections/{}", self.bucket, self.collection)
    }
}

/// An entry that cannot be used: its raw form and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidEntry {
    pub id: String,
    pub reason: String,
}

/// Parse a monitor/changes record; bucket and collection must be Kinto ids (nothing else is
/// ever put in a URL).
pub fn parse_entry(record: &Value) -> Result<ChangesEntry, InvalidEntry> {
    let id = record
        .get("id")
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_else(|| "(no id)".into());
    let invalid = |reason: String| InvalidEntry {
        id: id.clone(),
        reason,
    };
    let field = |name: &str| -> Result<String, InvalidEntry> {
        let value = record
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("no string \"{name}\"")))?;
        if !is_kinto_id(value) {
            return Err(invalid(format!(
                "\"{name}\" is not a Kinto id: {}",
                crate::settings::quote(value)
            )));
        }
        Ok(value.to_string())
    };
    let bucket = field("bucket")?;
    let collection = field("collection")?;
    let last_modified = record
        .get("last_modified")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("no integer \"last_modified\"".into()))?;
    Ok(ChangesEntry {
        bucket,
        collection,
        last_modified,
    })
}

/// Read all entries of the monitor collection; unusable ones are returned apart.
pub async fn read_changes(
    client: &Kinto,
    bucket: &str,
    collection: &str,
) -> Result<(Vec<ChangesEntry>, Vec<InvalidEntry>), ClientError> {
    let path = format!("/buckets/{bucket}/collections/{collection}/records");
    let records = client.get_all(&path, &[]).await?;
    let mut entries = Vec::with_capacity(records.len());
    let mut invalid = Vec::new();
    for record in &records {
        match parse_entry(record) {
            Ok(entry) => entries.push(entry),
            Err(bad) => invalid.push(bad),
        }
    }
    Ok((entries, invalid))
}

impl Kinto {
    /// The records timestamp of a collection: the `ETag` of its records list.
    pub async fn records_timestamp(
        &self,
        bucket: &str,
        collection: &str,
    ) -> Result<u64, ClientError> {
        let path = format!("/buckets/{bucket}/collections/{collection}/records");
        let url = self.url_with_query(&path, &[("_limit", "1")]);
        let (_, timestamp) = self
            .send_checked(&Request::new(Method::GET, url), |response| {
                response
                    .header("ETag")
                    .and_then(|etag| etag.trim().trim_matches('"').parse().ok())
                    .ok_or_else(|| {
                        ClientErrorKind::Shape("no numeric ETag on the records list".into())
                    })
            })
            .await?;
        Ok(timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_with_odd_names_are_refused() {
        let ok = json!({"id": "x", "bucket": "main", "collection": "cfr", "last_modified": 12});
        assert_eq!(
            parse_entry(&ok).unwrap().path(),
            "/buckets/main/collections/cfr"
        );
        for bad in [
            json!({"id": "x", "bucket": "../admin", "collection": "c", "last_modified": 1}),
            json!({"id": "x", "bucket": "a%2Fb", "collection": "c", "last_modified": 1}),
            json!({"id": "x", "bucket": "b", "collection": "ünï", "last_modified": 1}),
            json!({"id": "x", "bucket": "b", "collection": "c"}),
            json!({"id": "x", "bucket": "b", "collection": "c", "last_modified": "12"}),
        ] {
            assert!(parse_entry(&bad).is_err(), "{bad}");
        }
    }
}
