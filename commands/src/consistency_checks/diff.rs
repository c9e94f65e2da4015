//! Comparing the records of two collections of one signer workflow (source/preview,
//! preview/destination or source/destination). Records are matched by id and compare equal when
//! everything but `last_modified` and `schema` is equal; tombstones are not records.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::kinto::CollectionRef;

/// Fields that differ between copies of one record without the record being different.
const IGNORED_FIELDS: [&str; 2] = ["last_modified", "schema"];

/// At most this many ids of each kind are shown.
pub const SHOWN_IDS: usize = 5;

/// Which side of a signer resource a collection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Source,
    Preview,
    Destination,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Preview => "preview",
            Side::Destination => "destination",
        })
    }
}

/// The differences between an upstream collection (`left`, e.g. the source) and the one that
/// should hold the same records (`right`, e.g. the preview). Ids are sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct PairDiff {
    pub left: (Side, CollectionRef),
    pub right: (Side, CollectionRef),
    /// In `left`, absent from `right`.
    pub missing: Vec<String>,
    /// In `right`, absent from `left`.
    pub extra: Vec<String>,
    /// In both, with other content.
    pub changed: Vec<String>,
}

impl PairDiff {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.changed.is_empty()
    }

    /// `source main-workspace/x -> preview main-preview/x: 1 missing (r2), 0 extra, 1 changed (r1)`
    pub fn summary(&self) -> String {
        format!(
            "{} {} -> {} {}: {}",
            self.left.0,
            self.left.1,
            self.right.0,
            self.right.1,
            self.counts(),
        )
    }

    /// `1 missing (r2), 0 extra, 1 changed (r1)`
    pub fn counts(&self) -> String {
        format!(
            "{}, {}, {}",
            counted(&self.missing, "missing"),
            counted(&self.extra, "extra"),
            counted(&self.changed, "changed"),
        )
    }

    /// `missing`, `extra` and `changed`, each with its `count` and at most five `ids`.
    pub fn ids_json(&self) -> Value {
        let ids = |ids: &[String]| json!({"count": ids.len(), "ids": ids.iter().take(SHOWN_IDS).collect::<Vec<_>>()});
        json!({
            "missing": ids(&self.missing),
            "extra": ids(&self.extra),
            "changed": ids(&self.changed),
        })
    }

    pub fn to_json(&self) -> Value {
        let mut value = self.ids_json();
        value["left"] = json!({"side": self.left.0, "collection": self.left.1.to_string()});
        value["right"] = json!({"side": self.right.0, "collection": self.right.1.to_string()});
        value
    }
}

/// `3 missing (a, b, c)`, `0 extra`, `7 changed (a, b, c, d, e, …)`.
fn counted(ids: &[String], what: &str) -> String {
    if ids.is_empty() {
        return format!("0 {what}");
    }
    let shown: Vec<&str> = ids.iter().take(SHOWN_IDS).map(String::as_str).collect();
    let more = if ids.len() > SHOWN_IDS { ", …" } else { "" };
    format!("{} {what} ({}{more})", ids.len(), shown.join(", "))
}

/// A record's id as text (a non-string id, which Kinto never serves, is shown as JSON).
fn record_id(record: &Map<String, Value>) -> String {
    match record.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(other) => other.to_string(),
        None => "(no id)".into(),
    }
}

/// Live records by id (tombstones left out).
fn by_id(records: &[Value]) -> BTreeMap<String, &Map<String, Value>> {
    records
        .iter()
        .filter_map(Value::as_object)
        .filter(|r| r.get("deleted") != Some(&Value::Bool(true)))
        .map(|r| (record_id(r), r))
        .collect()
}

fn same_content(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let relevant = |r: &Map<String, Value>| {
        r.keys()
            .filter(|k| !IGNORED_FIELDS.contains(&k.as_str()))
            .count()
    };
    relevant(a) == relevant(b)
        && a.iter()
            .filter(|(k, _)| !IGNORED_FIELDS.contains(&k.as_str()))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Compare the records of `left` with those of `right`.
pub fn compare(
    left: (Side, &CollectionRef, &[Value]),
    right: (Side, &CollectionRef, &[Value]),
) -> PairDiff {
    let l = by_id(left.2);
    let r = by_id(right.2);
    let mut diff = PairDiff {
        left: (left.0, left.1.clone()),
        right: (right.0, right.1.clone()),
        missing: Vec::new(),
        extra: Vec::new(),
        changed: Vec::new(),
    };
    for (id, record) in &l {
        match r.get(id) {
            None => diff.missing.push(id.clone()),
            Some(other) if !same_content(record, other) => diff.changed.push(id.clone()),
            Some(_) => {}
        }
    }
    diff.extra = r
        .keys()
        .filter(|id| !l.contains_key(*id))
        .cloned()
        .collect();
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(b: &str) -> CollectionRef {
        CollectionRef::new(b, "cid")
    }

    #[test]
    fn timestamps_schema_and_tombstones_do_not_count() {
        let a = vec![
            json!({"id": "r1", "v": 1, "last_modified": 1, "schema": 10}),
            json!({"id": "gone", "deleted": true, "last_modified": 3}),
        ];
        let b = vec![json!({"id": "r1", "v": 1, "last_modified": 2})];
        let diff = compare(
            (Side::Source, &c("s"), &a),
            (Side::Destination, &c("d"), &b),
        );
        assert!(diff.is_empty(), "{diff:?}");
    }

    #[test]
    fn missing_extra_and_changed_records_are_named() {
        let a = vec![
            json!({"id": "r1", "v": 1}),
            json!({"id": "r2", "v": 1}),
            json!({"id": "r3", "v": 1}),
        ];
        let b = vec![
            json!({"id": "r1", "v": 2}),
            json!({"id": "r3", "v": 1, "new": true}),
            json!({"id": "x", "v": 1}),
        ];
        let diff = compare((Side::Source, &c("s"), &a), (Side::Preview, &c("p"), &b));
        assert_eq!(diff.missing, ["r2"]);
        assert_eq!(diff.extra, ["x"]);
        assert_eq!(diff.changed, ["r1", "r3"]);
        assert_eq!(
            diff.summary(),
            "source s/cid -> preview p/cid: 1 missing (r2), 1 extra (x), 2 changed (r1, r3)"
        );
    }

    #[test]
    fn at_most_five_ids_are_shown() {
        let b: Vec<Value> = (0..7).map(|i| json!({"id": format!("e{i}")})).collect();
        let diff = compare(
            (Side::Source, &c("s"), &[]),
            (Side::Destination, &c("d"), &b),
        );
        assert_eq!(
            diff.summary(),
            "source s/cid -> destination d/cid: 0 missing, 7 extra (e0, e1, e2, e3, e4, …), 0 changed"
        );
        assert_eq!(diff.to_json()["extra"]["count"], 7);
        assert_eq!(diff.to_json()["extra"]["ids"].as_array().unwrap().len(), 5);
    }
}
