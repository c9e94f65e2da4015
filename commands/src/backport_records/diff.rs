//! The content diff between the source's (filtered) records and the destination's: what to
//! create, update and delete so that the destination holds the same records. Records compare
//! by content, ignoring `last_modified` and `schema`; timestamps of the two collections are
//! never compared with each other.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::settings::{is_kinto_id, quote};

/// Fields that say when and under which schema a record was stored, not what it holds.
const METADATA_FIELDS: [&str; 2] = ["last_modified", "schema"];

/// A record's content: its fields without `last_modified` and `schema`.
pub fn content(record: &Map<String, Value>) -> Map<String, Value> {
    let mut content = record.clone();
    for field in METADATA_FIELDS {
        content.remove(field);
    }
    content
}

/// Do two records hold the same content?
pub fn same_content(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    content(a) == content(b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Create,
    Update,
    Delete,
}

/// One write to the destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: Kind,
    pub id: String,
    /// The content the destination record must hold (creations and updates).
    pub content: Option<Map<String, Value>>,
    /// The destination record's `last_modified` when it was read (updates and deletions): the
    /// write applies only if the record still has it.
    pub read_timestamp: Option<u64>,
}

impl Change {
    pub fn method(&self) -> &'static str {
        match self.kind {
            Kind::Create | Kind::Update => "PUT",
            Kind::Delete => "DELETE",
        }
    }
}

/// A record list as returned by Kinto, keyed by id. Tombstones (`deleted: true`, listed when
/// filters such as `_since` are used) are not records and are left out.
fn by_id(records: Vec<Value>, side: &str) -> Result<BTreeMap<String, Map<String, Value>>, String> {
    let mut map = BTreeMap::new();
    for record in records {
        let Value::Object(record) = record else {
            return Err(format!("a {side} record is not a JSON object"));
        };
        if record.get("deleted") == Some(&Value::Bool(true)) {
            continue;
        }
        let id = match record.get("id").and_then(Value::as_str) {
            Some(id) if is_kinto_id(id) => id.to_string(),
            Some(id) => {
                return Err(format!(
                    "a {side} record id is not a Kinto id: {}",
                    quote(id)
                ))
            }
            None => return Err(format!("a {side} record has no string id")),
        };
        map.insert(id, record);
    }
    Ok(map)
}

/// The changes that make the destination hold the source's records: creations, then updates,
/// then deletions, each sorted by id. An error names a record that cannot be handled.
pub fn plan(source: Vec<Value>, destination: Vec<Value>) -> Result<Vec<Change>, String> {
    let source = by_id(source, "source")?;
    let mut destination = by_id(destination, "destination")?;
    let mut creations = Vec::new();
    let mut updates = Vec::new();
    for (id, record) in source {
        match destination.remove(&id) {
            None => creations.push(Change {
                kind: Kind::Create,
                id,
                content: Some(content(&record)),
                read_timestamp: None,
            }),
            Some(existing) if !same_content(&record, &existing) => updates.push(Change {
                kind: Kind::Update,
                read_timestamp: Some(timestamp(&existing, &id)?),
                id,
                content: Some(content(&record)),
            }),
            Some(_) => {}
        }
    }
    let mut deletions = Vec::new();
    for (id, existing) in destination {
        deletions.push(Change {
            kind: Kind::Delete,
            read_timestamp: Some(timestamp(&existing, &id)?),
            id,
            content: None,
        });
    }
    creations.extend(updates);
    creations.extend(deletions);
    Ok(creations)
}

fn timestamp(record: &Map<String, Value>, id: &str) -> Result<u64, String> {
    record
        .get("last_modified")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("the destination record {id} has no integer last_modified"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn content_ignores_timestamps_and_schema_only() {
        let a = obj(json!({"id": "a", "n": 1, "last_modified": 10, "schema": 5}));
        let b = obj(json!({"id": "a", "n": 1, "last_modified": 99}));
        assert!(same_content(&a, &b));
        assert!(!same_content(&a, &obj(json!({"id": "a", "n": 2}))));
        assert!(!same_content(
            &a,
            &obj(json!({"id": "a", "n": 1, "extra": null}))
        ));
        assert!(!same_content(
            &obj(json!({"id": "a"})),
            &obj(json!({"id": "a", "n": 1}))
        ));
        assert_eq!(content(&a), obj(json!({"id": "a", "n": 1})));
    }

    #[test]
    fn plan_creates_updates_and_deletes_by_content() {
        let source = vec![
            json!({"id": "new", "v": 1, "last_modified": 5}),
            json!({"id": "same", "v": 1, "last_modified": 1}),
            json!({"id": "changed", "v": 2, "last_modified": 2}),
            json!({"id": "gone", "deleted": true, "last_modified": 3}),
        ];
        // The destination was touched after the source (greater timestamps): that says nothing
        // about its content.
        let destination = vec![
            json!({"id": "same", "v": 1, "last_modified": 100, "schema": 7}),
            json!({"id": "changed", "v": 1, "last_modified": 101}),
            json!({"id": "extra", "v": 0, "last_modified": 102}),
        ];
        let plan = plan(source, destination).unwrap();
        let summary: Vec<(Kind, &str, Option<u64>)> = plan
            .iter()
            .map(|c| (c.kind, c.id.as_str(), c.read_timestamp))
            .collect();
        assert_eq!(
            summary,
            [
                (Kind::Create, "new", None),
                (Kind::Update, "changed", Some(101)),
                (Kind::Delete, "extra", Some(102)),
            ]
        );
        assert_eq!(plan[0].content, Some(obj(json!({"id": "new", "v": 1}))));
        assert_eq!(plan[1].content, Some(obj(json!({"id": "changed", "v": 2}))));
        assert_eq!(plan[2].method(), "DELETE");
    }

    #[test]
    fn identical_collections_need_nothing() {
        let records = vec![
            json!({"id": "a", "last_modified": 1}),
            json!({"id": "b", "last_modified": 2}),
        ];
        assert_eq!(plan(records.clone(), records).unwrap(), vec![]);
    }

    #[test]
    fn records_that_cannot_be_addressed_are_refused() {
        assert!(plan(vec![json!({"id": "../x"})], vec![])
            .unwrap_err()
            .contains("not a Kinto id"));
        assert!(plan(vec![json!({"v": 1})], vec![]).is_err());
        assert!(plan(vec![], vec![json!({"id": "a"})])
            .unwrap_err()
            .contains("last_modified"));
    }
}
