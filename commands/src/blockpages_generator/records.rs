//! The blocklist records as the pages show them: one [`BlockedItem`] per Kinto record, built
//! without ever failing (an odd record gets defaults and a warning), newest first, each with a
//! safe and unique file name.

use std::collections::HashSet;

use reqwest::Url;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The longest file stem kept (S3 keys may be 1024 bytes; file systems allow 255).
const MAX_STEM: usize = 200;

/// One blocked add-on or plugin, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockedItem {
    /// The collection the record comes from.
    pub collection: String,
    pub record_id: String,
    /// The record's `blockID` (a string or a number), as given.
    pub block_id: Option<String>,
    /// `<blockID>.html`, or a fallback when the blockID is missing, unsafe or taken.
    pub file_name: String,
    pub name: String,
    /// `details.why` and `details.who` as given (HTML, sanitized when rendered).
    pub why: Option<String>,
    pub who: Option<String>,
    /// `details.bug` when it is an http(s) URL.
    pub bug: Option<Url>,
    /// When the block was created (`details.created`, else the record's `last_modified`).
    pub created: OffsetDateTime,
    pub last_modified: u64,
    /// `severity` 1: users may keep it enabled at their own risk.
    pub soft_block: bool,
    /// What was odd about the record and how the page copes with it.
    pub warnings: Vec<String>,
}

impl BlockedItem {
    /// `collection/record_id`, for warnings and reports.
    pub fn label(&self) -> String {
        format!("{}/{}", self.collection, self.record_id)
    }
}

/// Build the item shown for a record. Never fails: missing or odd fields get defaults and a
/// warning. The file name is set by [`assign_file_names`].
pub fn parse_record(collection: &str, record: &Value) -> BlockedItem {
    let mut warnings = Vec::new();
    let record_id = match record.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(other) => {
            warnings.push(format!("the record id is not a string: {other}"));
            other.to_string()
        }
        None => {
            warnings.push("the record has no id".into());
            String::new()
        }
    };
    let empty = Map::new();
    let details = match record.get("details") {
        Some(Value::Object(details)) => details,
        None | Some(Value::Null) => {
            warnings.push("no \"details\": the page shows defaults".into());
            &empty
        }
        Some(other) => {
            warnings.push(format!(
                "\"details\" is not an object ({}): the page shows defaults",
                kind(other)
            ));
            &empty
        }
    };
    let last_modified = record
        .get("last_modified")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| {
            warnings.push("no integer \"last_modified\"".into());
            0
        });
    let text = |name: &str| {
        details
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };

    let name = text("name").unwrap_or_else(|| {
        let fallback = ["guid", "matchName", "matchFilename"]
            .iter()
            .find_map(|field| record.get(*field).and_then(Value::as_str))
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| record_id.clone());
        if !details.is_empty() {
            warnings.push(format!("no \"details.name\": shown as {fallback:?}"));
        }
        fallback
    });

    let created = match details.get("created") {
        None | Some(Value::Null) => from_millis(last_modified),
        Some(Value::String(raw)) => parse_date(raw).unwrap_or_else(|| {
            warnings.push(format!(
                "\"details.created\" is not a date ({raw:?}): the record's last_modified is shown"
            ));
            from_millis(last_modified)
        }),
        Some(other) => {
            warnings.push(format!(
                "\"details.created\" is not a date ({other}): the record's last_modified is shown"
            ));
            from_millis(last_modified)
        }
    };

    let bug = text("bug").and_then(|raw| match Url::parse(&raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
        _ => {
            warnings.push(format!(
                "\"details.bug\" is not an http(s) URL ({raw:?}): no link to it"
            ));
            None
        }
    });

    let block_id = match record.get("blockID") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    BlockedItem {
        collection: collection.to_string(),
        record_id,
        block_id,
        file_name: String::new(),
        name,
        why: text("why"),
        who: text("who"),
        bug,
        created,
        last_modified,
        soft_block: record.get("severity").and_then(Value::as_i64) == Some(1),
        warnings,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The UTC time of an epoch in milliseconds (the epoch itself when out of range).
fn from_millis(millis: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A `details.created` value: RFC 3339 (`2013-05-13T10:00:00Z`), a date and time without offset
/// (taken as UTC), or a date alone.
pub fn parse_date(raw: &str) -> Option<OffsetDateTime> {
    let raw = raw.trim();
    if let Ok(date) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(date.to_offset(UtcOffset::UTC));
    }
    let with_t = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let with_space = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let without_fraction = raw.split('.').next().unwrap_or(raw);
    for format in [with_t, with_space] {
        if let Ok(date) = PrimitiveDateTime::parse(without_fraction, format) {
            return Some(date.assume_utc());
        }
    }
    Date::parse(raw, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|date| date.midnight().assume_utc())
}

/// A date as the pages show it: `May 13, 2013` (day on two digits, as the original).
pub fn human_date(date: OffsetDateTime) -> String {
    let format = format_description!("[month repr:short] [day], [year]");
    date.format(format)
        .unwrap_or_else(|_| date.date().to_string())
}

/// Newest first by (created, last_modified); ties in a stable order.
pub fn sort_newest_first(items: &mut [BlockedItem]) {
    items.sort_by(|a, b| {
        (b.created, b.last_modified)
            .cmp(&(a.created, a.last_modified))
            .then_with(|| a.collection.cmp(&b.collection))
            .then_with(|| a.record_id.cmp(&b.record_id))
    });
}

/// A file stem that is safe everywhere: `[A-Za-z0-9._-]`, not hidden, not `index`.
pub fn is_safe_stem(stem: &str) -> bool {
    !stem.is_empty()
        && stem.len() <= MAX_STEM
        && !stem.starts_with('.')
        && !stem.eq_ignore_ascii_case("index")
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Give every item its file name: `<blockID>.html`, else `<id>.html`, else a sanitized
/// `record-<id>.html`; a name already taken (compared without case, for case-insensitive file
/// systems) falls back the same way, then gets a numeric suffix. Each fallback is a warning.
pub fn assign_file_names(items: &mut [BlockedItem]) {
    let mut taken: HashSet<String> = HashSet::from(["index".to_string()]);
    for item in items.iter_mut() {
        let mut candidates = Vec::new();
        match &item.block_id {
            Some(b) if is_safe_stem(b) => candidates.push(b.clone()),
            Some(b) => item.warnings.push(format!(
                "the blockID {} is not a safe file name: the page is named after the record id",
                crate::settings::quote(b)
            )),
            None => item
                .warnings
                .push("no blockID: the page is named after the record id".into()),
        }
        if is_safe_stem(&item.record_id) {
            candidates.push(item.record_id.clone());
        }
        candidates.push(sanitized_stem(&item.record_id));
        let preferred = candidates[0].clone();
        let mut stem = candidates
            .iter()
            .find(|c| !taken.contains(&c.to_ascii_lowercase()))
            .cloned();
        if stem.is_none() {
            let base = candidates.last().cloned().unwrap_or_default();
            stem = (2..)
                .map(|n| format!("{base}-{n}"))
                .find(|c| !taken.contains(&c.to_ascii_lowercase()));
        }
        let stem = stem.expect("an unused numeric suffix exists");
        if stem != preferred {
            item.warnings.push(format!(
                "{preferred}.html is taken by another record: this page is {stem}.html"
            ));
        }
        taken.insert(stem.to_ascii_lowercase());
        item.file_name = format!("{stem}.html");
    }
}

/// `record-<id>` with every character outside `[A-Za-z0-9._-]` replaced by `_`.
fn sanitized_stem(id: &str) -> String {
    let cleaned: String = id
        .chars()
        .take(MAX_STEM - 7)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("record-{cleaned}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_complete_record_has_no_warning() {
        let record = json!({
            "id": "abc", "last_modified": 1_368_400_000_000u64, "blockID": "i123", "severity": 1,
            "details": {"name": "Bad", "why": "<b>why</b>", "who": "All users",
                        "created": "2013-05-13T10:00:00Z", "bug": "https://bugzilla.mozilla.org/1"}
        });
        let mut items = vec![parse_record("addons", &record)];
        assign_file_names(&mut items);
        let item = &items[0];
        assert_eq!(item.file_name, "i123.html");
        assert_eq!(item.name, "Bad");
        assert!(item.soft_block);
        assert_eq!(human_date(item.created), "May 13, 2013");
        assert_eq!(
            item.bug.as_ref().unwrap().as_str(),
            "https://bugzilla.mozilla.org/1"
        );
        assert!(item.warnings.is_empty(), "{:?}", item.warnings);
    }

    #[test]
    fn odd_records_get_defaults_and_warnings() {
        // No details at all: the name falls back to the guid, the date to last_modified.
        let bare = json!({"id": "r1", "guid": "x@y", "last_modified": 1_700_000_000_000u64});
        let item = parse_record("addons", &bare);
        assert_eq!(item.name, "x@y");
        assert_eq!(human_date(item.created), "Nov 14, 2023");
        assert!(!item.soft_block);
        assert!(item.warnings[0].contains("no \"details\""));
        // An unparsable date.
        let bad_date = json!({"id": "r2", "last_modified": 0, "details": {"name": "n", "created": "yesterday"}});
        let item = parse_record("plugins", &bad_date);
        assert_eq!(item.created, OffsetDateTime::UNIX_EPOCH);
        assert!(item.warnings.iter().any(|w| w.contains("not a date")));
        // A bug link that is not http(s) is left out.
        let js = json!({"id": "r3", "last_modified": 1, "details": {"name": "n", "bug": "javascript:alert(1)"}});
        let item = parse_record("addons", &js);
        assert_eq!(item.bug, None);
        assert_eq!(item.warnings.len(), 1);
    }

    #[test]
    fn dates_in_the_forms_records_use() {
        for raw in [
            "2013-05-13T10:00:00Z",
            "2013-05-13T10:00:00.123Z",
            "2013-05-13T12:00:00+02:00",
            "2013-05-13T10:00:00",
            "2013-05-13 10:00:00",
        ] {
            let date = parse_date(raw).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!(human_date(date), "May 13, 2013", "{raw}");
            assert_eq!(date.hour(), 10, "{raw}");
        }
        assert_eq!(
            human_date(parse_date("2014-01-05").unwrap()),
            "Jan 05, 2014"
        );
        assert_eq!(parse_date("13/05/2013"), None);
        assert_eq!(parse_date(""), None);
    }

    #[test]
    fn file_names_are_safe_and_unique() {
        let records = [
            json!({"id": "a", "blockID": "i1"}),
            json!({"id": "b", "blockID": "../../etc/passwd"}),
            json!({"id": "c", "blockID": null}),
            json!({"id": "d", "blockID": "index"}),
            json!({"id": "e", "blockID": "I1"}),
            json!({"id": "index"}),
            json!({"id": "g", "blockID": 42}),
            json!({"id": "h", "blockID": "<script>"}),
        ];
        let mut items: Vec<BlockedItem> =
            records.iter().map(|r| parse_record("addons", r)).collect();
        assign_file_names(&mut items);
        let names: Vec<&str> = items.iter().map(|i| i.file_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "i1.html",
                "b.html",
                "c.html",
                "d.html",
                "e.html",
                "record-index.html",
                "42.html",
                "h.html"
            ]
        );
        assert!(items[4].warnings.iter().any(|w| w.contains("taken")));
        for name in names {
            assert!(is_safe_stem(name.trim_end_matches(".html")), "{name}");
        }
    }

    #[test]
    fn newest_first_by_created_then_last_modified() {
        let mk = |id: &str, created: &str, lm: u64| {
            parse_record(
                "addons",
                &json!({"id": id, "last_modified": lm, "details": {"name": id, "created": created}}),
            )
        };
        let mut items = vec![
            mk("old", "2010-01-01T00:00:00Z", 5),
            mk("new", "2020-01-01T00:00:00Z", 1),
            mk("same-day-later", "2015-06-01T00:00:00Z", 9),
            mk("same-day-earlier", "2015-06-01T00:00:00Z", 3),
        ];
        sort_newest_first(&mut items);
        let ids: Vec<&str> = items.iter().map(|i| i.record_id.as_str()).collect();
        assert_eq!(ids, ["new", "same-day-later", "same-day-earlier", "old"]);
    }
}
