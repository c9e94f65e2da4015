//! The Redash query result, as `GET /api/queries/<id>/results.json` answers it:
//! `{"query_result": {"data": {"columns": [...], "rows": [...]}, ...}}`, each row
//! `{source, min_timestamp, max_timestamp, <status>: count, ...}`. Rows are read in the order of
//! their keys (the query's column order): ties in the breakdown keep that order, as the
//! original's dicts do. Everything is validated here; an error is one line naming the row.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::text::utc_datetime;

/// One validated row: a source and its count per status, in column order.
#[derive(Debug, Clone, PartialEq)]
pub struct UptakeRow {
    pub source: String,
    pub min_timestamp: f64,
    pub max_timestamp: f64,
    pub statuses: Vec<(String, u64)>,
}

const NOT_STATUSES: [&str; 3] = ["source", "min_timestamp", "max_timestamp"];

#[derive(Deserialize)]
#[serde(expecting = "a JSON object holding \"query_result\"")]
struct Document {
    query_result: Option<QueryResult>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object holding \"data\"")]
struct QueryResult {
    data: Option<Data>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object holding \"rows\"")]
struct Data {
    rows: Option<Vec<RawRow>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRow {
    Object(OrderedObject),
    Other(Value),
}

/// A JSON object's entries in document order (a repeated key keeps its first place and its last
/// value, as a Python dict does).
struct OrderedObject(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut entries: Vec<(String, Value)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some(entry) => entry.1 = value,
                        None => entries.push((key, value)),
                    }
                }
                Ok(OrderedObject(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// A JSON value in an error message: compact, bounded.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

/// A count: a whole number >= 0 (a float without fraction, as some engines send, is accepted).
fn count(value: &Value) -> Option<u64> {
    if let Some(n) = value.as_u64() {
        return Some(n);
    }
    let f = value.as_f64()?;
    (f >= 0.0 && f.fract() == 0.0 && f < 2f64.powi(64)).then_some(f as u64)
}

fn row(index: usize, raw: RawRow) -> Result<UptakeRow, String> {
    let number = index + 1;
    let OrderedObject(entries) = match raw {
        RawRow::Object(object) => object,
        RawRow::Other(value) => {
            return Err(format!("row {number} is not an object: {}", shown(&value)))
        }
    };
    let field = |name: &str| entries.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let source = field("source")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("row {number} has no string \"source\""))?
        .to_string();
    let timestamp = |name: &str| -> Result<f64, String> {
        let value =
            field(name).ok_or_else(|| format!("row {number} ({source}) has no \"{name}\""))?;
        value
            .as_f64()
            .filter(|ts| utc_datetime(*ts).is_some())
            .ok_or_else(|| {
                format!(
                    "row {number} ({source}): \"{name}\" is not a Unix timestamp: {}",
                    shown(value)
                )
            })
    };
    let min_timestamp = timestamp("min_timestamp")?;
    let max_timestamp = timestamp("max_timestamp")?;
    let mut statuses = Vec::with_capacity(entries.len());
    for (status, value) in &entries {
        if NOT_STATUSES.contains(&status.as_str()) {
            continue;
        }
        let n = count(value).ok_or_else(|| {
            format!(
                "row {number} ({source}): the count of \"{status}\" is not a whole number >= 0: {}",
                shown(value)
            )
        })?;
        statuses.push((status.clone(), n));
    }
    Ok(UptakeRow {
        source,
        min_timestamp,
        max_timestamp,
        statuses,
    })
}

/// Parse and validate a query result document.
pub fn parse(body: &[u8]) -> Result<Vec<UptakeRow>, String> {
    let document: Document = serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            format!("not JSON ({e})")
        } else if !body.trim_ascii_start().starts_with(b"{") {
            "not a JSON object".to_string()
        } else {
            e.to_string()
        }
    })?;
    let rows = document
        .query_result
        .and_then(|r| r.data)
        .and_then(|d| d.rows)
        .ok_or("no query_result.data.rows")?;
    if rows.is_empty() {
        return Err("query_result.data.rows is empty: nothing to check".into());
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, raw)| row(i, raw))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Vec<UptakeRow>, String> {
        parse(text.as_bytes())
    }

    #[test]
    fn rows_keep_their_column_order() {
        let rows = parse_str(
            r#"{"query_result": {"id": 1, "data": {"columns": [], "rows": [
                {"source": "main/x", "min_timestamp": 1, "max_timestamp": 2,
                 "up_to_date": 5, "sync_error": 3, "backoff": 0, "network_error": 3.0}
            ]}}}"#,
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![UptakeRow {
                source: "main/x".into(),
                min_timestamp: 1.0,
                max_timestamp: 2.0,
                statuses: vec![
                    ("up_to_date".into(), 5),
                    ("sync_error".into(), 3),
                    ("backoff".into(), 0),
                    ("network_error".into(), 3),
                ],
            }]
        );
    }

    #[test]
    fn malformed_results_are_one_line_errors_naming_the_problem() {
        let row = |extra: &str| {
            format!(
                r#"{{"query_result": {{"data": {{"rows": [{{"source": "main/x", "min_timestamp": 1, "max_timestamp": 2{extra}}}]}}}}}}"#
            )
        };
        let cases = [
            ("<html>502</html>".to_string(), "not JSON ("),
            (r#"{"message": "x"}"#.into(), "no query_result.data.rows"),
            (r#"{"query_result": {"data": {}}}"#.into(), "no query_result.data.rows"),
            (r#"{"query_result": "x"}"#.into(), "expected an object holding \"data\""),
            (r#"[1]"#.into(), "not a JSON object"),
            (r#"{"query_result": {"data": {"rows": []}}}"#.into(), "is empty"),
            (r#"{"query_result": {"data": {"rows": [3]}}}"#.into(), "row 1 is not an object: 3"),
            (
                r#"{"query_result": {"data": {"rows": [{"min_timestamp": 1}]}}}"#.into(),
                "row 1 has no string \"source\"",
            ),
            (row(r#", "sync_error": "12""#), "row 1 (main/x): the count of \"sync_error\" is not a whole number >= 0: \"12\""),
            (row(r#", "sync_error": null"#), "\"sync_error\" is not a whole number >= 0: null"),
            (row(r#", "sync_error": -1"#), "\"sync_error\" is not a whole number >= 0: -1"),
            (row(r#", "sync_error": 1.5"#), "\"sync_error\" is not a whole number >= 0: 1.5"),
            (
                r#"{"query_result": {"data": {"rows": [{"source": "s", "min_timestamp": "x", "max_timestamp": 2}]}}}"#.into(),
                "row 1 (s): \"min_timestamp\" is not a Unix timestamp: \"x\"",
            ),
            (
                r#"{"query_result": {"data": {"rows": [{"source": "s", "min_timestamp": 1}]}}}"#.into(),
                "row 1 (s) has no \"max_timestamp\"",
            ),
        ];
        for (body, expected) in cases {
            let err = parse_str(&body).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
