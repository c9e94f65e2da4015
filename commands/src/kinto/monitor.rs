//! The monitor list: the entries of `monitor/changes` (or of any collection used as such), each
//! a published collection and its records timestamp, and the records timestamp of one
//! collection. Readers ask only for what the production CDN and `/v2` serve: the monitor list and
//! collection timestamps are read as changesets (`…/changeset?_expected=N`), never from
//! `…/records` (the CDN refuses monitor/changes records, `/v2` serves no records list).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Kinto;
use crate::client::ClientError;
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

/// A changing `_expected` that makes a CDN answer fresh: a random number from 999999000000 to
/// 999999999999, as the service's own monitors send (`/v2` gives those a short cache life).
pub fn cache_bust() -> String {
    fastrand::u64(999_999_000_000..=999_999_999_999).to_string()
}

/// The path of a collection's changeset.
fn changeset_path(bucket: &str, collection: &str) -> String {
    format!("/buckets/{bucket}/collections/{collection}/changeset")
}

/// Read all entries of the monitor collection, fresh: its changeset with a cache-busting
/// `_expected` (newest first, like the records list it replaces); unusable ones are returned apart.
pub async fn read_changes(
    client: &Kinto,
    bucket: &str,
    collection: &str,
) -> Result<(Vec<ChangesEntry>, Vec<InvalidEntry>), ClientError> {
    #[derive(Deserialize)]
    struct Changeset {
        changes: Vec<Value>,
    }
    let path = changeset_path(bucket, collection);
    let (changeset, _) = client
        .get_json::<Changeset>(&path, &[("_expected", &cache_bust())])
        .await?;
    let records = changeset.changes;
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

/// A collection's records timestamp as its fresh changeset gives it (`timestamp`), asking only for
/// the changes after `since` (usually none, so the answer stays small on large collections).
pub async fn changeset_timestamp(
    client: &Kinto,
    bucket: &str,
    collection: &str,
    since: u64,
) -> Result<u64, ClientError> {
    #[derive(Deserialize)]
    struct Changeset {
        timestamp: u64,
    }
    let since = format!("\"{since}\"");
    let (changeset, _) = client
        .get_json::<Changeset>(
            &changeset_path(bucket, collection),
            &[("_expected", &cache_bust()), ("_since", &since)],
        )
        .await?;
    Ok(changeset.timestamp)
}

/// Did this collection ever hold records? Its changeset since the beginning (`_since="1"`)
/// lists tombstones too (the original's `_since=1` rule, on the endpoint readers may use).
pub async fn ever_held_records(client: &Kinto, entry: &ChangesEntry) -> Result<bool, ClientError> {
    #[derive(Deserialize)]
    struct Changeset {
        changes: Vec<serde::de::IgnoredAny>,
    }
    let expected = entry.last_modified.to_string();
    let (changeset, _) = client
        .get_json::<Changeset>(
            &changeset_path(&entry.bucket, &entry.collection),
            &[("_expected", &expected), ("_since", "\"1\"")],
        )
        .await?;
    Ok(!changeset.changes.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cache_busting_values_are_what_the_services_own_monitors_send_and_change() {
        let values: std::collections::BTreeSet<u64> = (0..50)
            .map(|_| cache_bust().parse().expect("a number"))
            .collect();
        assert!(values
            .iter()
            .all(|v| (999_999_000_000..=999_999_999_999).contains(v)));
        assert!(values.len() > 45, "{values:?}");
    }

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
