//! The signed payload of a changeset: its records without tombstones, sorted by `id`, as
//! `{"data": records, "last_modified": "<timestamp>"}` in Mozilla's canonical JSON (the
//! `canonical_json` crate's formatter, the signer's own serializer, see [`super::canonical`]),
//! prefixed with `Content-Signature:\0`.
//!
//! A changeset can hold tens of megabytes, so it is never turned into `serde_json::Value`s: once
//! its UTF-8 is checked, the body is parsed once ([`super::stream`]: the nesting limit is counted
//! in the same pass), each record written in canonical form as it is parsed, keeping only those
//! bytes; they are then fed in id order to the SHA-384 hasher. Canonical JSON of an array or object is its members'
//! canonical forms joined with `,` (no whitespace, keys sorted), so this form is byte for byte
//! the crate's output for the whole payload (unit-tested below). Records a client holds as
//! `Value`s ([`payload_bytes`]) go through [`canonical::write`] instead: the tests and the
//! `payload` fuzz target check that both paths give the same payload and warnings.

use std::io::Write;

use std::ops::Range;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sha2::{Digest, Sha384};

use crate::buffers;

use super::direct;
use super::stream::{BoundedValue, Canonical, Numbers, Writer};
use super::{canonical, ErrorCode, VerifyError, Warning, WarningCode};

/// What Content-Signature puts before the signed data.
pub const PREFIX: &[u8] = b"Content-Signature:\x00";

/// The largest integer Firefox (a JavaScript double) represents exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// One signature of the collection metadata (`metadata.signatures[i]` or
/// `metadata.signature`), as published: its fields are checked when used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry {
    pub signature: Option<String>,
    pub x5u: Option<String>,
    /// Autograph's `mode` (`p384ecdsa` for a content signature), when the signer wrote one.
    pub mode: Option<String>,
    /// Autograph's signer `type` (`contentsignature`), when the signer wrote one.
    pub kind: Option<String>,
}

impl SignatureEntry {
    /// Why this entry is not a P-384 content signature this verifier can check, if it is not:
    /// a `mode` other than `p384ecdsa` or a `type` other than `contentsignature` (entries
    /// without them are the older signer's, which only made those).
    pub fn unsupported(&self) -> Option<VerifyError> {
        let mode_ok = self.mode.as_deref().is_none_or(|m| m == "p384ecdsa");
        let kind_ok = self.kind.as_deref().is_none_or(|k| k == "contentsignature");
        (!mode_ok || !kind_ok).then(|| {
            VerifyError::new(
                ErrorCode::UnsupportedSignature,
                format!(
                    "the signature entry is not a P-384 content signature (mode {}, type {})",
                    self.mode
                        .as_deref()
                        .map_or("unset".into(), crate::settings::quote),
                    self.kind
                        .as_deref()
                        .map_or("unset".into(), crate::settings::quote),
                ),
            )
        })
    }
}

/// Everything verification needs from a changeset, once its body is dropped.
#[derive(Debug, Clone)]
pub struct ChangesetDigest {
    /// The changeset's `timestamp`: the records timestamp, the one that is signed.
    pub timestamp: u64,
    /// `metadata.last_modified`: when the collection metadata (and its signature) was written.
    pub metadata_last_modified: Option<u64>,
    pub signatures: Vec<SignatureEntry>,
    /// Records in the payload (tombstones excluded).
    pub records: usize,
    /// Bytes of the payload, prefix included.
    pub payload_len: usize,
    /// SHA-384 of the payload, prefix included.
    pub digest: [u8; 48],
    pub warnings: Vec<Warning>,
}

fn invalid(detail: impl Into<String>) -> VerifyError {
    VerifyError::new(ErrorCode::ChangesetInvalid, detail)
}

/// The signatures listed in collection metadata: every entry of `signatures` when it is a
/// non-empty list, else the single `signature` object, else none.
pub fn signature_entries(metadata: &Value) -> Vec<SignatureEntry> {
    let text = |v: &Value, field: &str| v.get(field).and_then(Value::as_str).map(String::from);
    let entry = |v: &Value| SignatureEntry {
        signature: text(v, "signature"),
        x5u: text(v, "x5u"),
        mode: text(v, "mode"),
        kind: text(v, "type"),
    };
    match metadata.get("signatures").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list.iter().map(entry).collect(),
        _ => match metadata.get("signature") {
            Some(v) if v.is_object() => vec![entry(v)],
            _ => Vec::new(),
        },
    }
}

/// Is this record a tombstone? The signer drops records whose `deleted` is truthy (Python's
/// `not r.get("deleted", False)`), and Firefox treats them as deletions too.
fn is_deleted(deleted: Option<&Value>) -> bool {
    match deleted {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// Numbers Firefox would not serialize as the signer did, counted with a first example each.
#[derive(Default)]
struct NumberScan {
    floats: usize,
    float_example: Option<String>,
    unsafe_integers: usize,
    integer_example: Option<String>,
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

impl NumberScan {
    fn record(&mut self, id: &str, value: &Value) {
        let mut path = Vec::new();
        self.walk(id, value, &mut path);
    }

    fn walk<'a>(&mut self, id: &str, value: &'a Value, path: &mut Vec<Segment<'a>>) {
        match value {
            Value::Number(n) => {
                let unsafe_integer = n
                    .as_u64()
                    .map(|u| u > MAX_SAFE_INTEGER)
                    .or_else(|| n.as_i64().map(|i| i.unsigned_abs() > MAX_SAFE_INTEGER));
                let example = || {
                    let pointer: String = path
                        .iter()
                        .map(|s| match s {
                            Segment::Key(k) => format!("/{k}"),
                            Segment::Index(i) => format!("/{i}"),
                        })
                        .collect();
                    format!("record {id:?} at {pointer}: {n}")
                };
                match unsafe_integer {
                    Some(true) => {
                        self.unsafe_integers += 1;
                        if self.integer_example.is_none() {
                            self.integer_example = Some(example());
                        }
                    }
                    Some(false) => {}
                    None => {
                        self.floats += 1;
                        if self.float_example.is_none() {
                            self.float_example = Some(example());
                        }
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Segment::Index(i));
                    self.walk(id, item, path);
                    path.pop();
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    path.push(Segment::Key(k));
                    self.walk(id, v, path);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// Add the numbers the streamed record `id` holds.
    fn add(&mut self, id: &str, numbers: Option<Box<Numbers>>) {
        let Some(numbers) = numbers else { return };
        self.floats += numbers.floats;
        self.unsafe_integers += numbers.unsafe_integers;
        let describe = |example: &super::stream::Example| {
            let (pointer, n) = example.describe();
            format!("record {id:?} at {pointer}: {n}")
        };
        if self.float_example.is_none() {
            self.float_example = numbers.float_example.as_deref().map(describe);
        }
        if self.integer_example.is_none() {
            self.integer_example = numbers.integer_example.as_deref().map(describe);
        }
    }

    fn warnings(self) -> Vec<Warning> {
        let mut out = Vec::new();
        if let Some(example) = self.float_example {
            out.push(Warning {
                code: WarningCode::FloatNumber,
                detail: format!(
                    "{} float number(s), serialized differently by Firefox, e.g. {example}",
                    self.floats
                ),
            });
        }
        if let Some(example) = self.integer_example {
            out.push(Warning {
                code: WarningCode::UnsafeInteger,
                detail: format!(
                    "{} integer(s) beyond 2^53-1, not exact in Firefox, e.g. {example}",
                    self.unsafe_integers
                ),
            });
        }
        out
    }
}

/// The canonical JSON of a payload's records, collected in the order received and written in id
/// order. Each record is parsed and canonicalized once; only its canonical bytes are kept.
pub(super) struct CanonicalRecords {
    /// The canonical bytes of the records (`writer.out`).
    writer: Writer,
    index: Vec<(String, Range<usize>)>,
    numbers: NumberScan,
}

impl CanonicalRecords {
    fn with_capacity(bytes: usize) -> Self {
        CanonicalRecords {
            writer: Writer::with_capacity(bytes),
            index: Vec::new(),
            numbers: NumberScan::default(),
        }
    }

    /// Parse and add the next record of a changeset's `changes` (`position` for messages);
    /// tombstones are dropped. `None` at the end of the list.
    fn add_streamed<'de, A: SeqAccess<'de>>(
        &mut self,
        position: usize,
        seq: &mut A,
    ) -> Result<Option<()>, A::Error> {
        let start = self.writer.out.len();
        self.writer.id = None;
        self.writer.deleted = false;
        let record = Canonical {
            writer: &mut self.writer,
            depth: RECORD_DEPTH,
            record: true,
        };
        let Some(written) = seq.next_element_seed(record)? else {
            return Ok(None);
        };
        let Some(id) = self.writer.id.take() else {
            return Err(A::Error::custom(format!(
                "record #{position} is not an object with a string id"
            )));
        };
        if self.writer.deleted {
            self.writer.out.truncate(start);
            return Ok(Some(()));
        }
        self.numbers.add(&id, written.numbers);
        self.index.push((id, start..self.writer.out.len()));
        Ok(Some(()))
    }

    /// Add one record as received (`position` for messages); tombstones are dropped.
    fn add(&mut self, position: usize, record: &Value) -> Result<(), VerifyError> {
        let id = record.get("id").and_then(Value::as_str).ok_or_else(|| {
            invalid(format!(
                "record #{position} is not an object with a string id"
            ))
        })?;
        if is_deleted(record.get("deleted")) {
            return Ok(());
        }
        self.numbers.record(id, record);
        let start = self.writer.out.len();
        canonical::write(record, &mut self.writer.out)
            .map_err(|e| invalid(format!("record {id:?} cannot be serialized: {e}")))?;
        self.index
            .push((id.to_string(), start..self.writer.out.len()));
        Ok(())
    }

    /// Write the payload into `out`: prefix, records sorted by id (Python's `sorted()` by id:
    /// code point order, which is UTF-8 byte order; stable), timestamp. Returns the sink, the
    /// payload's length, its record count and the number warnings.
    fn write_payload<W: Write>(
        mut self,
        timestamp: u64,
        mut out: W,
    ) -> (W, usize, usize, Vec<Warning>) {
        self.index.sort_by(|a, b| a.0.cmp(&b.0));
        let mut len = 0;
        let mut put = |bytes: &[u8]| {
            len += bytes.len();
            out.write_all(bytes)
                .expect("payload sinks are in memory and do not fail");
        };
        put(PREFIX);
        put(b"{\"data\":[");
        for (i, (_, range)) in self.index.iter().enumerate() {
            if i > 0 {
                put(b",");
            }
            put(&self.writer.out[range.clone()]);
        }
        put(format!("],\"last_modified\":\"{timestamp}\"}}").as_bytes());
        buffers::LARGE.give(self.writer.out);
        (out, len, self.index.len(), self.numbers.warnings())
    }
}

/// The nesting of a changeset's fields (inside the changeset object) and of its records (inside
/// `changes`), as [`crate::json::MAX_DEPTH`] counts it.
pub(super) const FIELD_DEPTH: usize = 2;
pub(super) const RECORD_DEPTH: usize = 3;

/// Reads `{metadata, timestamp, changes}`, handing each record of `changes` to the collector as
/// it is parsed (the records are never all held as JSON values).
struct ChangesetVisitor<'r> {
    records: &'r mut CanonicalRecords,
}

struct ChangesSeed<'r> {
    records: &'r mut CanonicalRecords,
}

impl<'de> DeserializeSeed<'de> for ChangesSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChangesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut position = 0;
        while self.records.add_streamed(position, &mut seq)?.is_some() {
            position += 1;
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for ChangesetVisitor<'_> {
    type Value = (Value, u64);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a changeset {metadata, timestamp, changes}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(Value, u64), A::Error> {
        let (mut metadata, mut timestamp, mut changes) = (None, None, false);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metadata" if metadata.is_none() => {
                    metadata = Some(map.next_value_seed(BoundedValue {
                        too_deep: &mut self.records.writer.too_deep,
                        depth: FIELD_DEPTH,
                    })?)
                }
                "timestamp" if timestamp.is_none() => timestamp = Some(map.next_value::<u64>()?),
                "changes" if !changes => {
                    map.next_value_seed(ChangesSeed {
                        records: &mut *self.records,
                    })?;
                    changes = true;
                }
                "metadata" | "timestamp" | "changes" => {
                    return Err(A::Error::custom(format!("duplicate field `{key}`")))
                }
                _ => {
                    // Read like a record (its nesting counted), then forgotten.
                    let writer = &mut self.records.writer;
                    let start = writer.out.len();
                    map.next_value_seed(Canonical {
                        writer: &mut *writer,
                        depth: FIELD_DEPTH,
                        record: false,
                    })?;
                    writer.out.truncate(start);
                }
            }
        }
        let timestamp = timestamp.ok_or_else(|| A::Error::missing_field("timestamp"))?;
        if !changes {
            return Err(A::Error::missing_field("changes"));
        }
        Ok((metadata.unwrap_or(Value::Null), timestamp))
    }
}

/// Parse a changeset response body and hash its payload. The body is handed back to the pool
/// of large buffers as soon as it is parsed, before hashing.
pub fn digest_changeset(body: Vec<u8>) -> Result<ChangesetDigest, VerifyError> {
    digest_read_with(body, CanonicalRecords::read)
}

/// How a reader fills the records from a changeset's text: its metadata and timestamp, or why it
/// is not a changeset.
type Read = fn(&mut CanonicalRecords, &str) -> Result<(Value, u64), VerifyError>;

/// [`digest_changeset`], the text read by `read`.
pub(super) fn digest_read_with(body: Vec<u8>, read: Read) -> Result<ChangesetDigest, VerifyError> {
    let mut records = CanonicalRecords::with_capacity(body.len());
    let (metadata, timestamp) = {
        // The whole body's UTF-8 is checked first: std's check of a mostly ASCII buffer costs a
        // fraction of serde_json's per-string checks (`from_slice`), which `from_str` skips.
        let text = std::str::from_utf8(&body).map_err(|e| invalid(format!("not UTF-8: {e}")))?;
        read(&mut records, text)?
    };
    buffers::LARGE.give(body);
    let (hasher, payload_len, count, warnings) = records.write_payload(timestamp, Sha384::new());
    Ok(ChangesetDigest {
        timestamp,
        metadata_last_modified: metadata.get("last_modified").and_then(Value::as_u64),
        signatures: signature_entries(&metadata),
        records: count,
        payload_len,
        digest: hasher.finalize().into(),
        warnings,
    })
}

impl CanonicalRecords {
    /// Read the changeset through [`direct`], else, for what that path does not handle, through
    /// serde_json's path.
    fn read(&mut self, text: &str) -> Result<(Value, u64), VerifyError> {
        if let Some(parts) = self.read_direct(text) {
            return Ok(parts);
        }
        self.restart();
        self.read_serde(text)
    }

    /// Read the changeset through [`direct`]: its metadata and timestamp, or `None` when the
    /// text is outside what that path handles (records may then have been added).
    fn read_direct(&mut self, text: &str) -> Option<(Value, u64)> {
        let index = &mut self.index;
        let parts = direct::changeset(text, &mut self.writer, |writer, record| {
            if record.deleted {
                writer.out.truncate(record.start);
            } else {
                index.push((record.id.into_owned(), record.start..writer.out.len()));
            }
        })
        .ok()?;
        Some((parts.metadata, parts.timestamp))
    }

    /// Forget what a reading added, keeping the buffer of canonical bytes.
    fn restart(&mut self) {
        self.writer.restart();
        self.index.clear();
        self.numbers = NumberScan::default();
    }

    /// Read the changeset through serde_json's path ([`super::stream`]), the nesting limit
    /// counted by the visitors during the parse: its metadata and timestamp, or why it is not a
    /// changeset.
    pub(super) fn read_serde(&mut self, text: &str) -> Result<(Value, u64), VerifyError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        deserializer.disable_recursion_limit();
        let parsed = deserializer
            .deserialize_map(ChangesetVisitor { records: self })
            .and_then(|parsed| deserializer.end().map(|()| parsed));
        parsed.map_err(|e| {
            if self.writer.too_deep {
                invalid(crate::json::too_deep())
            } else {
                invalid(format!(
                    "not a changeset ({{metadata, timestamp, changes}}): {e}"
                ))
            }
        })
    }
}

/// The whole payload, prefix included, for records as a client holds them (tombstones are
/// dropped, order does not matter), through [`canonical::write`].
pub fn payload_bytes(records: &[Value], timestamp: u64) -> Result<Vec<u8>, VerifyError> {
    let mut collected = CanonicalRecords::with_capacity(0);
    for (position, record) in records.iter().enumerate() {
        collected.add(position, record)?;
    }
    Ok(collected.write_payload(timestamp, Vec::new()).0)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// The payload as the crate serializes it in one go.
    fn reference(records: &[Value], timestamp: u64) -> Vec<u8> {
        let mut kept: Vec<Value> = records
            .iter()
            .filter(|r| !is_deleted(r.get("deleted")))
            .cloned()
            .collect();
        kept.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        let whole = json!({"data": kept, "last_modified": timestamp.to_string()});
        let mut out = PREFIX.to_vec();
        out.extend(canonical_json::to_string(&whole).unwrap().into_bytes());
        out
    }

    fn changeset(records: &[Value], timestamp: u64) -> Vec<u8> {
        serde_json::to_vec(&json!({"metadata": {"id": "c", "last_modified": 42}, "timestamp": timestamp, "changes": records}))
            .unwrap()
    }

    #[test]
    fn serde_json_keeps_maps_sorted_in_this_build() {
        // `preserve_order` would keep insertion order; canonical_json >= 0.7 sorts anyway, and
        // this guard says if some crate ever turns the feature on.
        let map: Value = serde_json::from_str(r#"{"b": 1, "a": 2}"#).unwrap();
        assert_eq!(map.as_object().unwrap().keys().next().unwrap(), "a");
    }

    #[test]
    fn a_large_changesets_body_and_canonical_bytes_go_back_to_the_pool() {
        // Each test runs in its own process (nextest): the pool holds only what this one gives.
        let records: Vec<Value> = (0..2_000)
            .map(|i| json!({"id": format!("r{i:05}"), "text": "some words ".repeat(10)}))
            .collect();
        let body = changeset(&records, 7);
        assert!(body.len() > 2 * buffers::MAPPED_MIN);
        let digest = digest_changeset(body).unwrap();
        assert_eq!(digest.records, 2_000);
        assert_eq!(
            buffers::LARGE.kept().0,
            2,
            "the body and the canonical bytes"
        );
    }

    #[test]
    fn empty_collection_payload() {
        let bytes = payload_bytes(&[], 1603992731957).unwrap();
        assert_eq!(
            bytes,
            b"Content-Signature:\x00{\"data\":[],\"last_modified\":\"1603992731957\"}".to_vec()
        );
    }

    #[test]
    fn tombstones_are_dropped_and_records_sorted_by_id() {
        let records = vec![
            json!({"id": "b", "last_modified": 3, "z": 1, "a": [3, 1]}),
            json!({"id": "gone", "last_modified": 4, "deleted": true}),
            json!({"id": "a", "last_modified": 2}),
            json!({"id": "B", "last_modified": 1, "deleted": false}),
            // Python-truthy `deleted` values are tombstones for the signer too.
            json!({"id": "c", "deleted": 1}),
            json!({"id": "d", "deleted": "yes"}),
            json!({"id": "e", "deleted": null}),
            json!({"id": "f", "deleted": []}),
        ];
        let bytes = payload_bytes(&records, 5).unwrap();
        let text = std::str::from_utf8(&bytes[PREFIX.len()..]).unwrap();
        assert_eq!(
            text,
            r#"{"data":[{"deleted":false,"id":"B","last_modified":1},{"id":"a","last_modified":2},{"a":[3,1],"id":"b","last_modified":3,"z":1},{"deleted":null,"id":"e"},{"deleted":[],"id":"f"}],"last_modified":"5"}"#
        );
        assert_eq!(bytes, reference(&records, 5));
    }

    #[test]
    fn streamed_payload_equals_the_crate_output_for_the_whole_document() {
        let records = vec![
            json!({"id": "u1", "text": "I ❤ testing, é, 𝄞 and \u{10FFFF}", "nested": {"z": "\u{7f}", "a": "\t\n\r\u{1}\"\\/"}}),
            json!({"id": "u0", "list": [{"b": 2, "a": 1}, "x"], "big": 9007199254740993u64, "neg": -12, "f": 1.5, "quote": "it's"}),
            json!({"id": "u2", "empty": {}, "arr": [], "null": null, "t": true}),
        ];
        let bytes = payload_bytes(&records, 1774874010729).unwrap();
        assert_eq!(bytes, reference(&records, 1774874010729));
        let digest = digest_changeset(changeset(&records, 1774874010729)).unwrap();
        assert_eq!(digest.digest, <[u8; 48]>::from(Sha384::digest(&bytes)));
        assert_eq!(digest.payload_len, bytes.len());
        assert_eq!(digest.records, 3);
        assert_eq!(digest.timestamp, 1774874010729);
        assert_eq!(digest.metadata_last_modified, Some(42));
    }

    /// The crate's documented outputs (its README and tests), through this module's path.
    #[test]
    fn canonical_json_edge_cases() {
        let one = |record: Value| -> String {
            let bytes = payload_bytes(&[record], 0).unwrap();
            let text = String::from_utf8(bytes[PREFIX.len()..].to_vec()).unwrap();
            text.strip_prefix(r#"{"data":["#)
                .and_then(|t| t.strip_suffix(r#"],"last_modified":"0"}"#))
                .unwrap()
                .to_string()
        };
        // Key order, at every depth; arrays keep their order.
        assert_eq!(
            one(json!({"id": "1", "b": "b", "a": {"d": 1, "c": [3, 2, 1]}})),
            r#"{"a":{"c":[3,2,1],"d":1},"b":"b","id":"1"}"#
        );
        // Escapes: quotes, backslashes, control characters; '/' and "'" are kept.
        assert_eq!(
            one(json!({"id": "1", "s": "q\" b\\ n\n t\t r\r \u{8}\u{c} \u{1f} a/b it's"})),
            r#"{"id":"1","s":"q\" b\\ n\n t\t r\r \b\f \u001f a/b it's"}"#
        );
        // Non-ASCII as \u escapes (lower-case hex, 4 digits), astral characters as surrogate
        // pairs, keys included; keys sort by code point ("é" after "m").
        assert_eq!(
            one(json!({"id": "1", "é": "I ❤ ę", "m": "𝄞", "hi": "\u{10000} \u{10FFFF}"})),
            r#"{"hi":"\ud800\udc00 \udbff\udfff","id":"1","m":"\ud834\udd1e","\u00e9":"I \u2764 \u0119"}"#
        );
        // DEL is escaped too (Rust's escape_default), unlike other printable ASCII.
        assert_eq!(one(json!({"id": "\u{7f}"})), r#"{"id":"\u007f"}"#);
        // Integers are written exactly, also beyond 2^53 (the signer's Python keeps them exact).
        assert_eq!(
            one(
                json!({"id": "1", "a": 9007199254740993u64, "b": -9007199254740993i64, "c": 18446744073709551615u64})
            ),
            r#"{"a":9007199254740993,"b":-9007199254740993,"c":18446744073709551615,"id":"1"}"#
        );
        // Floats in the crate's exponent form.
        assert_eq!(
            one(json!({"id": "1", "a": 23.1, "b": 1.0, "c": 0.000001, "d": 1e21})),
            r#"{"a":2.31E1,"b":1E0,"c":1E-6,"d":1E21,"id":"1"}"#
        );
    }

    #[test]
    fn numbers_firefox_would_serialize_differently_are_warned_about() {
        let records = vec![
            json!({"id": "a", "n": 9007199254740991u64, "m": -9007199254740991i64}),
            json!({"id": "b", "deep": {"list": [1, 2.5]}}),
            json!({"id": "c", "n": 9007199254740992u64, "f": 0.5}),
            json!({"id": "d", "m": -9007199254740993i64}),
        ];
        let d = digest_changeset(changeset(&records, 1)).unwrap();
        let codes: Vec<_> = d.warnings.iter().map(|w| w.code).collect();
        assert_eq!(
            codes,
            vec![WarningCode::FloatNumber, WarningCode::UnsafeInteger]
        );
        assert_eq!(
            d.warnings[0].detail,
            "2 float number(s), serialized differently by Firefox, e.g. record \"b\" at /deep/list/1: 2.5"
        );
        assert_eq!(
            d.warnings[1].detail,
            "2 integer(s) beyond 2^53-1, not exact in Firefox, e.g. record \"c\" at /n: 9007199254740992"
        );
        // Safe integers alone: no warning.
        let d = digest_changeset(changeset(&records[..1], 1)).unwrap();
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn signatures_come_from_the_list_else_the_single_one() {
        let one = json!({"signature": "abc", "x5u": "https://x/chain.pem", "mode": "p384ecdsa"});
        let two = json!({"signature": "def", "x5u": "https://y/chain.pem"});
        let entries = signature_entries(&json!({"signature": one, "signatures": [two, one]}));
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].signature.as_deref(), Some("def"));
        assert_eq!(entries[1].x5u.as_deref(), Some("https://x/chain.pem"));
        let entries = signature_entries(&json!({"signature": one, "signatures": []}));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].signature.as_deref(), Some("abc"));
        assert_eq!(
            signature_entries(&json!({"signature": {}})),
            vec![SignatureEntry {
                signature: None,
                x5u: None,
                mode: None,
                kind: None,
            }]
        );
        assert!(signature_entries(&json!({"id": "c"})).is_empty());
        assert!(signature_entries(&json!({"signature": null})).is_empty());
    }

    #[test]
    fn floats_parse_correctly_rounded_as_the_signer_parses_them() {
        // Found by the `payload` fuzz target: without serde_json's float_roundtrip, these parse
        // one ulp away from the correctly rounded value (Python's, Rust's `str::parse`), so the
        // canonical payload of such a record differed from the one the signer signed.
        for text in [
            "900719925474099254740993",
            "9.007199254740993e23",
            "9.007199254740993e+23",
            "0.30000000000000004",
            "1.7976931348623157e308",
            "5e-324",
        ] {
            let parsed: f64 = serde_json::from_str(text).unwrap();
            assert_eq!(
                parsed.to_bits(),
                text.parse::<f64>().unwrap().to_bits(),
                "{text}"
            );
        }
        let record = r#"[{"id": "f", "big": 900719925474099254740993}]"#;
        let records: Vec<Value> = serde_json::from_str(record).unwrap();
        let bytes = payload_bytes(&records, 1).unwrap();
        let digest = digest_changeset(changeset(&records, 1)).unwrap();
        assert_eq!(digest.digest, <[u8; 48]>::from(Sha384::digest(&bytes)));
    }

    #[test]
    fn records_nested_deeper_than_serde_jsons_default_are_signed_payloads_too() {
        // kinto-signer signs a record nested 130 levels deep; serde_json alone stops at 128.
        let mut deep = json!(1);
        for _ in 0..300 {
            deep = json!([deep]);
        }
        let records = vec![json!({"id": "deep", "v": deep})];
        let digest = digest_changeset(changeset(&records, 7)).unwrap();
        let bytes = payload_bytes(&records, 7).unwrap();
        assert_eq!(digest.digest, <[u8; 48]>::from(Sha384::digest(&bytes)));
        // Past the limit: one line, the parse stopped at the first level too deep.
        let hostile = format!(
            r#"{{"metadata": {{}}, "timestamp": 1, "changes": [{{"id": "d", "v": {}1{}}}]}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = digest_changeset(hostile.into_bytes()).unwrap_err();
        assert_eq!(err.code, ErrorCode::ChangesetInvalid);
        assert_eq!(
            err.detail,
            "the JSON document is nested deeper than 512 levels"
        );
    }

    #[test]
    fn malformed_changesets_are_refused_with_their_code() {
        for body in [
            &b"not json"[..],
            br#"{"metadata": {}, "changes": []}"#,
            br#"{"metadata": {}, "timestamp": "12", "changes": []}"#,
            br#"{"metadata": {}, "timestamp": 12, "changes": [{"no": "id"}]}"#,
            br#"{"metadata": {}, "timestamp": 12, "changes": [{"id": 3}]}"#,
            br#"{"metadata": {}, "timestamp": 12, "changes": [[]]}"#,
            b"{\"metadata\": {}, \"timestamp\": 12, \"changes\": [{\"id\": \"\xff\"}]}",
            // Invalid UTF-8 wherever it is: a key, a tombstone, the metadata, an unknown field.
            b"{\"metadata\": {}, \"timestamp\": 12, \"changes\": [{\"id\": \"a\", \"\xc3\": 1}]}",
            b"{\"metadata\": {}, \"timestamp\": 12, \"changes\": [{\"id\": \"a\", \"deleted\": true, \"x\": \"\xed\xa0\x80\"}]}",
            b"{\"metadata\": {\"x\": \"\xff\"}, \"timestamp\": 12, \"changes\": []}",
            b"{\"other\": [\"\xc0\xaf\"], \"metadata\": {}, \"timestamp\": 12, \"changes\": []}",
            b"{\"metadata\": {}, \"timestamp\": 12, \"changes\": []}\xff",
        ] {
            let err = digest_changeset(body.to_vec()).unwrap_err();
            assert_eq!(err.code, ErrorCode::ChangesetInvalid, "{err}");
        }
    }

    /// How [`text_with_duplicates`] writes a value.
    pub(in crate::signature) struct Style {
        /// The value of a duplicate member.
        pub duplicate: fn(&mut fastrand::Rng) -> Value,
        /// Strings are written with random escapes ([`escaped`]), not as serde_json writes them.
        pub escapes: bool,
    }

    /// A duplicate member's value as the crate's random values make it.
    const ANY_DUPLICATE: Style = Style {
        duplicate: |rng| canonical::tests::random_value(rng, 3),
        escapes: false,
    };

    /// JSON text of `value`, its object members in random order, now and then preceded by a
    /// member of the same key (which the last one replaces), with random whitespace.
    pub(in crate::signature) fn text_with_duplicates(
        rng: &mut fastrand::Rng,
        value: &Value,
        out: &mut String,
        style: &Style,
    ) {
        let space = |rng: &mut fastrand::Rng, out: &mut String| {
            if rng.u8(0..4) == 0 {
                out.push_str([" ", "\n", "\t ", "\r\n  "][rng.usize(0..4)]);
            }
        };
        match value {
            Value::Object(map) => {
                let mut members: Vec<(&String, Value)> =
                    map.iter().map(|(k, v)| (k, v.clone())).collect();
                rng.shuffle(&mut members);
                let mut all = Vec::new();
                for (key, value) in members {
                    if rng.u8(0..4) == 0 {
                        all.push((key, (style.duplicate)(rng)));
                    }
                    all.push((key, value));
                }
                out.push('{');
                for (i, (key, value)) in all.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    space(rng, out);
                    out.push_str(&serde_json::to_string(key).unwrap());
                    space(rng, out);
                    out.push(':');
                    text_with_duplicates(rng, value, out, style);
                }
                space(rng, out);
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    space(rng, out);
                    text_with_duplicates(rng, item, out, style);
                }
                space(rng, out);
                out.push(']');
            }
            Value::String(text) if style.escapes => {
                space(rng, out);
                escaped(rng, text, out);
            }
            scalar => {
                space(rng, out);
                out.push_str(&serde_json::to_string(scalar).unwrap());
            }
        }
    }

    /// A JSON string of `text`, each character written raw where JSON allows it, or escaped in
    /// one of the ways JSON allows: `\uXXXX` in either case (a surrogate pair beyond the BMP, as
    /// Kinto writes every non-ASCII character), or its short escape.
    fn escaped(rng: &mut fastrand::Rng, text: &str, out: &mut String) {
        out.push('"');
        for c in text.chars() {
            let short = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '/' => Some("\\/"),
                '\u{8}' => Some("\\b"),
                '\u{c}' => Some("\\f"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                _ => None,
            };
            let raw_allowed = !matches!(c, '"' | '\\' | '\0'..='\u{1f}');
            match rng.u8(0..3) {
                0 if raw_allowed => out.push(c),
                1 if short.is_some() => out.push_str(short.unwrap()),
                _ => {
                    let upper = rng.bool();
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        let hex = format!("{unit:04x}");
                        out.push_str("\\u");
                        out.push_str(&if upper { hex.to_uppercase() } else { hex });
                    }
                }
            }
        }
        out.push('"');
    }

    fn random_record(rng: &mut fastrand::Rng) -> Value {
        let mut record = match canonical::tests::random_value(rng, 1) {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        record.insert("id".into(), canonical::tests::random_string(rng).into());
        if rng.bool() {
            let deleted = [
                json!(true),
                json!(false),
                json!(0),
                json!(-0.0),
                json!(2.5),
                json!(""),
                json!("no"),
                json!([]),
                json!([0]),
                json!({}),
                json!(null),
            ];
            record.insert(
                "deleted".into(),
                deleted[rng.usize(0..deleted.len())].clone(),
            );
        }
        for _ in 0..rng.usize(0..3) {
            let n = [
                json!(1.5),
                json!(1e300),
                json!(-0.0),
                json!(1u64 << 60),
                json!(-(1i64 << 55)),
            ];
            let key = format!("n{}", rng.u8(0..4));
            record.insert(key, n[rng.usize(0..n.len())].clone());
        }
        Value::Object(record)
    }

    #[test]
    fn streamed_changesets_give_the_payload_and_warnings_of_their_records_as_values() {
        let mut rng = fastrand::Rng::with_seed(20261204);
        let (mut warned, mut kept) = (0, 0);
        for _ in 0..1_500 {
            let records: Vec<Value> = (0..rng.usize(0..5))
                .map(|_| random_record(&mut rng))
                .collect();
            let mut text = String::from(r#"{"metadata": {"signature": {}}, "changes": "#);
            text_with_duplicates(&mut rng, &Value::Array(records), &mut text, &ANY_DUPLICATE);
            text.push_str(r#", "timestamp": 1234}"#);
            // The reference: the records as serde_json reads them (the last of equal keys wins).
            let changeset: Value = serde_json::from_str(&text).unwrap();
            let mut collected = CanonicalRecords::with_capacity(0);
            for (i, record) in changeset["changes"].as_array().unwrap().iter().enumerate() {
                collected.add(i, record).unwrap();
            }
            let (bytes, len, count, warnings) = collected.write_payload(1234, Vec::new());
            let digest = digest_changeset(text.clone().into_bytes()).unwrap();
            assert_eq!(
                (digest.payload_len, digest.records, &digest.warnings),
                (len, count, &warnings),
                "{text}"
            );
            assert_eq!(
                digest.digest,
                <[u8; 48]>::from(Sha384::digest(&bytes)),
                "{text}"
            );
            warned += usize::from(!warnings.is_empty());
            kept += count;
        }
        // The cases above are not all trivial.
        assert!(warned > 300 && kept > 1_000, "{warned} {kept}");
    }

    #[test]
    fn the_nesting_limit_holds_in_every_part_of_a_changeset_in_one_pass() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        // (text with the value nested n levels, the deepest n accepted).
        type Place = fn(&str) -> String;
        let places: [(Place, usize); 3] = [
            (
                |v| {
                    format!(
                        r#"{{"metadata": {{}}, "timestamp": 1, "changes": [{{"id": "d", "v": {v}}}]}}"#
                    )
                },
                crate::json::MAX_DEPTH - 3,
            ),
            (
                |v| format!(r#"{{"metadata": {{"v": {v}}}, "timestamp": 1, "changes": []}}"#),
                crate::json::MAX_DEPTH - 2,
            ),
            (
                |v| format!(r#"{{"metadata": {{}}, "other": {v}, "timestamp": 1, "changes": []}}"#),
                crate::json::MAX_DEPTH - 1,
            ),
        ];
        for (place, deepest) in places {
            let text = place(&nested(deepest));
            assert_eq!(
                crate::json::nesting_depth(text.as_bytes(), usize::MAX),
                crate::json::MAX_DEPTH
            );
            // At the limit, on a 2 MiB stack (tokio's blocking threads), in a debug build.
            std::thread::Builder::new()
                .stack_size(2 * 1024 * 1024)
                .spawn(move || digest_changeset(text.into_bytes()).unwrap())
                .unwrap()
                .join()
                .unwrap();
            for n in [deepest + 1, 100_000] {
                let err = digest_changeset(place(&nested(n)).into_bytes()).unwrap_err();
                assert_eq!(err.code, ErrorCode::ChangesetInvalid);
                assert_eq!(
                    err.detail,
                    "the JSON document is nested deeper than 512 levels"
                );
            }
        }
    }
}
