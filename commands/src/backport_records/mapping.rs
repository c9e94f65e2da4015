//! Which collections to backport: one source/destination pair from the `BACKPORT_RECORDS_SOURCE_*`
//! and `_DEST_*` settings, or several from `BACKPORT_RECORDS_MAPPINGS` lines
//! (`sbid/scid[?querystring] -> dbid/dcid`), with the source filters turned into Kinto
//! querystring parameters. Everything is validated here, before any request.

use std::collections::BTreeSet;
use std::fmt;

use reqwest::Url;
use serde_json::Value;

use crate::kinto::CollectionRef;
use crate::settings::{is_kinto_id, quote, RawSettings, Setting, SettingError, Shape};

pub const MAPPINGS: Setting = Setting::new(
    "BACKPORT_RECORDS_MAPPINGS",
    "LINES",
    "Several pairs instead of the source/dest settings, one per line: `sbid/scid[?filters] -> dbid/dcid`",
)
.flag("mappings")
.event_key("backport_records_mappings")
.shape(Shape::Lines);
pub const SOURCE_BUCKET: Setting = Setting::new(
    "BACKPORT_RECORDS_SOURCE_BUCKET",
    "ID",
    "Bucket to read records from (required unless --mappings)",
)
.flag("source-bucket")
.event_key("backport_records_source_bucket")
.derived("none (required without mappings)");
pub const SOURCE_COLLECTION: Setting = Setting::new(
    "BACKPORT_RECORDS_SOURCE_COLLECTION",
    "ID",
    "Collection to read records from (required unless --mappings)",
)
.flag("source-collection")
.event_key("backport_records_source_collection")
.derived("none (required without mappings)");
pub const SOURCE_FILTERS: Setting = Setting::new(
    "BACKPORT_RECORDS_SOURCE_FILTERS",
    "JSON",
    "Filters selecting the source records, as a JSON object of Kinto querystring filters, e.g. {\"min_age\": 42}",
)
.flag("source-filters")
.event_key("backport_records_source_filters")
.shape(Shape::Json);
pub const DEST_BUCKET: Setting = Setting::new(
    "BACKPORT_RECORDS_DEST_BUCKET",
    "ID",
    "Bucket to copy records to",
)
.flag("dest-bucket")
.event_key("backport_records_dest_bucket")
.derived("the source bucket");
pub const DEST_COLLECTION: Setting = Setting::new(
    "BACKPORT_RECORDS_DEST_COLLECTION",
    "ID",
    "Collection to copy records to",
)
.flag("dest-collection")
.event_key("backport_records_dest_collection")
.derived("the source collection");

/// One source collection (with the filters that select its records) and the destination that
/// must end up holding exactly those records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub source: CollectionRef,
    /// Kinto querystring filters, e.g. `("min_age", "42")`; a key may repeat.
    pub filters: Vec<(String, String)>,
    pub destination: CollectionRef,
}

impl fmt::Display for Mapping {
    /// The mapping in the `BACKPORT_RECORDS_MAPPINGS` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if !self.filters.is_empty() {
            let mut url = Url::parse("http://h/").expect("a valid URL");
            url.query_pairs_mut().extend_pairs(&self.filters);
            write!(f, "?{}", url.query().unwrap_or_default())?;
        }
        write!(f, " -> {}", self.destination)
    }
}

/// The mappings to run, and whether they came from `BACKPORT_RECORDS_MAPPINGS`.
pub fn from_settings(raw: &RawSettings) -> Result<(Vec<Mapping>, bool), SettingError> {
    match raw.get(&MAPPINGS) {
        Some(lines) => {
            let ignored: Vec<&str> = [
                &SOURCE_BUCKET,
                &SOURCE_COLLECTION,
                &SOURCE_FILTERS,
                &DEST_BUCKET,
                &DEST_COLLECTION,
            ]
            .into_iter()
            .filter(|setting| raw.get(setting).is_some())
            .map(|setting| setting.env)
            .collect();
            if !ignored.is_empty() {
                log::warn!("{} is set: {} ignored", MAPPINGS.env, ignored.join(", "));
            }
            Ok((parse_mappings(lines)?, true))
        }
        None => Ok((vec![single_mapping(raw)?], false)),
    }
}

/// The pair given by the `_SOURCE_*` / `_DEST_*` settings; the destination defaults to the
/// source's bucket and collection, and must differ from the source.
fn single_mapping(raw: &RawSettings) -> Result<Mapping, SettingError> {
    let required = |setting: &Setting| -> Result<String, SettingError> {
        if raw.get(setting).is_none() {
            return Err(SettingError::new(
                setting.env,
                format!("required (or set {})", MAPPINGS.env),
            ));
        }
        raw.kinto_id(setting)
    };
    let source = CollectionRef::new(&required(&SOURCE_BUCKET)?, &required(&SOURCE_COLLECTION)?);
    let destination = CollectionRef::new(
        &raw.kinto_id_or(&DEST_BUCKET, &source.bucket)?,
        &raw.kinto_id_or(&DEST_COLLECTION, &source.collection)?,
    );
    if source == destination {
        return Err(SettingError::new(
            DEST_COLLECTION.env,
            format!(
                "the destination {destination} is the source: set {} or {}",
                DEST_BUCKET.env, DEST_COLLECTION.env
            ),
        ));
    }
    let filters = match raw.get(&SOURCE_FILTERS) {
        Some(json) => {
            filters_from_json(json).map_err(|m| SettingError::new(SOURCE_FILTERS.env, m))?
        }
        None => Vec::new(),
    };
    Ok(Mapping {
        source,
        filters,
        destination,
    })
}

/// `sbid/scid[?querystring] -> dbid/dcid`, one per line; blank lines are skipped. Two mappings
/// may not write to the same destination (each would delete the other's records).
pub fn parse_mappings(text: &str) -> Result<Vec<Mapping>, SettingError> {
    let mut mappings = Vec::new();
    let mut destinations = BTreeSet::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let error = |why: &str| {
            SettingError::new(
                MAPPINGS.env,
                format!("line {} {}: {why}", number + 1, quote(line)),
            )
        };
        let mapping = parse_line(line).map_err(|why| error(&why))?;
        if mapping.source == mapping.destination {
            return Err(error("the destination is the source"));
        }
        if !destinations.insert(mapping.destination.clone()) {
            return Err(error(&format!(
                "{} is already the destination of another line",
                mapping.destination
            )));
        }
        mappings.push(mapping);
    }
    if mappings.is_empty() {
        return Err(SettingError::new(MAPPINGS.env, "no mapping in it"));
    }
    Ok(mappings)
}

const SYNTAX: &str = "expected \"bucket/collection[?filters] -> bucket/collection\"";

fn parse_line(line: &str) -> Result<Mapping, String> {
    let (source, destination) = line.split_once(" -> ").ok_or(SYNTAX)?;
    let (source, querystring) = match source.split_once('?') {
        Some((ids, qs)) => (ids, Some(qs)),
        None => (source, None),
    };
    let collection = |text: &str| -> Result<CollectionRef, String> {
        let (bucket, collection) = text.trim().split_once('/').ok_or(SYNTAX)?;
        for id in [bucket, collection] {
            if !is_kinto_id(id) {
                return Err(format!("{} is not a Kinto id", quote(id)));
            }
        }
        Ok(CollectionRef::new(bucket, collection))
    };
    let filters = match querystring {
        Some(qs) => filters_from_querystring(qs)?,
        None => Vec::new(),
    };
    Ok(Mapping {
        source: collection(source)?,
        filters,
        destination: collection(destination)?,
    })
}

/// `field=value&key=a&key=b` (URL-encoded) as filter pairs.
fn filters_from_querystring(qs: &str) -> Result<Vec<(String, String)>, String> {
    let url = Url::parse(&format!("http://h/?{qs}")).map_err(|e| e.to_string())?;
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    check_filters(&pairs)?;
    Ok(pairs)
}

/// A JSON object such as `{"min_age": 42, "in_id": ["a", "b"]}` as filter pairs: strings as
/// they are, numbers and booleans in their JSON form, arrays as repeated parameters.
pub fn filters_from_json(json: &str) -> Result<Vec<(String, String)>, String> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| format!("{} is not JSON ({e})", quote(json)))?;
    let Value::Object(object) = value else {
        return Err(format!("{} is not a JSON object", quote(json)));
    };
    let scalar = |key: &str, v: &Value| -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(format!(
                "the value of {} must be a string, number, boolean or a list of them",
                quote(key)
            )),
        }
    };
    let mut pairs = Vec::new();
    for (key, value) in &object {
        match value {
            Value::Array(items) => {
                for item in items {
                    pairs.push((key.clone(), scalar(key, item)?));
                }
            }
            other => pairs.push((key.clone(), scalar(key, other)?)),
        }
    }
    check_filters(&pairs)?;
    Ok(pairs)
}

fn check_filters(pairs: &[(String, String)]) -> Result<(), String> {
    for (key, _) in pairs {
        if key.is_empty() {
            return Err("a filter has no name".into());
        }
        // Partial records would overwrite whole destination records.
        if key == "_fields" {
            return Err("_fields cannot be used: records must be copied whole".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn one_pair_defaults_the_destination_to_the_source_ids() {
        let (m, from_lines) = from_settings(&RawSettings::from_pairs(&[
            (SOURCE_BUCKET.env, "main-workspace"),
            (SOURCE_COLLECTION.env, "new"),
            (DEST_COLLECTION.env, "old"),
            (
                SOURCE_FILTERS.env,
                r#"{"min_age": 42, "in_id": ["a", "b"], "has_x": true}"#,
            ),
        ]))
        .unwrap();
        assert!(!from_lines);
        assert_eq!(m[0].source, CollectionRef::new("main-workspace", "new"));
        assert_eq!(
            m[0].destination,
            CollectionRef::new("main-workspace", "old")
        );
        assert_eq!(
            m[0].filters,
            pairs(&[
                ("has_x", "true"),
                ("in_id", "a"),
                ("in_id", "b"),
                ("min_age", "42")
            ])
        );
    }

    #[test]
    fn source_equal_to_destination_or_missing_ids_are_config_errors() {
        let err = from_settings(&RawSettings::from_pairs(&[
            (SOURCE_BUCKET.env, "b"),
            (SOURCE_COLLECTION.env, "c"),
        ]))
        .unwrap_err();
        assert_eq!(err.name, DEST_COLLECTION.env);
        assert!(err.to_string().contains("is the source"), "{err}");
        let err = from_settings(&RawSettings::from_pairs(&[(SOURCE_BUCKET.env, "b")])).unwrap_err();
        assert_eq!(err.name, SOURCE_COLLECTION.env);
        let err = from_settings(&RawSettings::from_pairs(&[
            (SOURCE_BUCKET.env, "../b"),
            (SOURCE_COLLECTION.env, "c"),
        ]))
        .unwrap_err();
        assert_eq!(err.name, SOURCE_BUCKET.env);
    }

    #[test]
    fn bad_filters_name_the_variable() {
        for bad in [
            "[1]",
            "{\"a\": {\"b\": 1}}",
            "{\"a\": null}",
            "not json",
            "{\"_fields\": \"id\"}",
        ] {
            let err = from_settings(&RawSettings::from_pairs(&[
                (SOURCE_BUCKET.env, "b"),
                (SOURCE_COLLECTION.env, "c"),
                (DEST_BUCKET.env, "d"),
                (SOURCE_FILTERS.env, bad),
            ]))
            .unwrap_err();
            assert_eq!(err.name, SOURCE_FILTERS.env, "{bad}");
        }
    }

    #[test]
    fn mapping_lines_with_querystrings_and_blank_lines() {
        let m = parse_mappings(
            "ws/scid?field=value&key=a%20b&key=c -> main/cid\n\n  ws/scid2 -> main/cid2  \n",
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].source, CollectionRef::new("ws", "scid"));
        assert_eq!(
            m[0].filters,
            pairs(&[("field", "value"), ("key", "a b"), ("key", "c")])
        );
        assert_eq!(m[0].destination, CollectionRef::new("main", "cid"));
        assert_eq!(m[1].filters, vec![]);
        assert_eq!(m[1].to_string(), "ws/scid2 -> main/cid2");
        assert_eq!(
            m[0].to_string(),
            "ws/scid?field=value&key=a+b&key=c -> main/cid"
        );
    }

    #[test]
    fn malformed_mapping_lines_are_quoted() {
        for (text, line) in [
            ("ws-scid -> main/cid", "line 1 \"ws-scid -> main/cid\""),
            (
                "ws/a -> main/a\nws/scid --> main/cid",
                "line 2 \"ws/scid --> main/cid\"",
            ),
            ("ws/a -> main/a/b", "line 1"),
            ("ws/a?_fields=x -> main/a", "_fields"),
            ("ws/a -> ws/a", "the destination is the source"),
            ("ws/a -> main/a\nws/b -> main/a", "already the destination"),
            ("../x/a -> main/a", "not a Kinto id"),
        ] {
            let err = parse_mappings(text).unwrap_err();
            assert_eq!(err.name, MAPPINGS.env);
            assert!(err.to_string().contains(line), "{text}: {err}");
        }
        assert!(parse_mappings("\n \n").is_err());
    }

    #[test]
    fn mappings_win_over_the_single_pair() {
        let (m, from_lines) = from_settings(&RawSettings::from_pairs(&[
            (MAPPINGS.env, "a/b -> c/d"),
            (SOURCE_BUCKET.env, "x"),
        ]))
        .unwrap();
        assert!(from_lines);
        assert_eq!(m.len(), 1);
    }
}
