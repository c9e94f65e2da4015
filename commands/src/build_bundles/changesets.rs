//! The published changesets a run bundles: each monitored, non-preview collection's
//! `…/changeset?_expected=<its timestamp>`, as the CDN serves it. The records stay the server's
//! bytes ([`RawValue`]) until a zip needs them; the metadata is parsed for the flags that decide
//! which bundles a collection is in.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::client::ClientError;
use crate::kinto::{ChangesEntry, CollectionRef, Kinto};

/// One collection's changeset, `{metadata, timestamp, changes}`.
#[derive(Debug, Deserialize)]
pub struct Changeset {
    pub metadata: Map<String, Value>,
    pub timestamp: u64,
    pub changes: Box<RawValue>,
}

/// A published collection and its changeset.
#[derive(Debug)]
pub struct Published {
    pub collection: CollectionRef,
    pub changeset: Changeset,
}

impl Published {
    /// Its metadata `flags` hold `startup`.
    pub fn is_startup(&self) -> bool {
        self.changeset
            .metadata
            .get("flags")
            .and_then(Value::as_array)
            .is_some_and(|flags| flags.iter().any(|f| f == "startup"))
    }

    /// Its metadata says `attachment.bundle: true`.
    pub fn wants_zip(&self) -> bool {
        self.changeset
            .metadata
            .get("attachment")
            .and_then(|a| a.get("bundle"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Its records (tombstones included: a changeset from the start has none).
    pub fn records(&self) -> Result<Vec<Value>, String> {
        serde_json::from_str(self.changeset.changes.get())
            .map_err(|e| format!("the changes of {} are not a list: {e}", self.collection))
    }
}

/// Read the changeset of `entry` at the monitor's timestamp.
pub async fn read(client: &Kinto, entry: &ChangesEntry) -> Result<Published, ClientError> {
    let expected = entry.last_modified.to_string();
    let (changeset, _) = client
        .get_json::<Changeset>(
            &format!("{}/changeset", entry.path()),
            &[("_expected", &expected)],
        )
        .await?;
    Ok(Published {
        collection: CollectionRef::new(&entry.bucket, &entry.collection),
        changeset,
    })
}

/// The UTF-8 JSON list of `changesets` (`[{metadata, timestamp, changes}, …]`), the records as the
/// server sent them.
pub fn json_list<'a>(changesets: impl Iterator<Item = &'a Published>) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        metadata: &'a Map<String, Value>,
        timestamp: u64,
        changes: &'a RawValue,
    }
    let entries: Vec<Entry<'_>> = changesets
        .map(|p| Entry {
            metadata: &p.changeset.metadata,
            timestamp: p.changeset.timestamp,
            changes: &p.changeset.changes,
        })
        .collect();
    serde_json::to_vec(&entries).expect("JSON values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(json: &str) -> Published {
        Published {
            collection: CollectionRef::new("main", "c"),
            changeset: serde_json::from_str(json).unwrap(),
        }
    }

    #[test]
    fn flags_decide_the_bundles_a_collection_is_in() {
        let p = published(r#"{"metadata": {"flags": ["startup", "x"], "attachment": {"bundle": true}}, "timestamp": 5, "changes": []}"#);
        assert!(p.is_startup() && p.wants_zip());
        let p = published(r#"{"metadata": {"flags": "startup", "attachment": {"bundle": "yes"}}, "timestamp": 5, "changes": []}"#);
        assert!(!p.is_startup() && !p.wants_zip());
        let p = published(r#"{"metadata": {}, "timestamp": 5, "changes": []}"#);
        assert!(!p.is_startup() && !p.wants_zip());
    }

    #[test]
    fn the_list_keeps_the_records_as_sent() {
        let p = published(r#"{"metadata": {"id": "c"}, "timestamp": 7, "changes": [{"id":"r","n":1.50}]}"#);
        let list: Value = serde_json::from_slice(&json_list([&p].into_iter())).unwrap();
        assert_eq!(list[0]["timestamp"], 7);
        assert_eq!(list[0]["metadata"]["id"], "c");
        let text = String::from_utf8(json_list([&p].into_iter())).unwrap();
        assert!(text.contains(r#""changes":[{"id":"r","n":1.50}]"#), "{text}");
    }
}
