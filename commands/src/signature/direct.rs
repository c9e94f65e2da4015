//! The direct path from a changeset's text to its records' canonical bytes, for the common case:
//! one pass over the bytes, with no decoding of strings. Kinto escapes every non-ASCII character
//! (`\u00E9`), so serde_json's path decodes each escape and [`canonical::write_str`] encodes it
//! again; here an escape is rewritten in place (`\u00e9`) and raw text is copied.
//!
//! It handles what Kinto serves: objects whose keys have no escapes, arrays, strings, integers
//! within ±(2^53-1) written without fraction or exponent, `true`, `false`, `null`, records with a
//! string `id`, at most [`json::MAX_DEPTH`] levels. Anything else, valid or not,
//! stops it with [`Outside`], and the caller reads the whole changeset through serde_json's path
//! ([`super::stream`]) instead, which gives the same bytes for what both accept and the errors
//! for what is not a changeset. The tests below hold both paths to the same digests, warnings
//! and errors, on random changesets and on random damage to them.

use std::borrow::Cow;

use serde::de::{Deserialize, DeserializeSeed, Deserializer};
use serde_json::Value;

use super::canonical::{self, write_escaped, PLAIN};
use super::payload::{FIELD_DEPTH, RECORD_DEPTH};
use super::stream::{BoundedValue, Member, Writer};
use crate::json;

/// The text is outside what this path handles (not necessarily invalid).
#[derive(Debug, PartialEq, Eq)]
pub struct Outside;

type Step<T> = Result<T, Outside>;

/// What the top level of a changeset gave, its records aside.
pub struct Changeset {
    /// `metadata`'s value (`null` when absent).
    pub metadata: Value,
    pub timestamp: u64,
}

/// A record as the caller keeps it: its canonical bytes start at `start` in `writer.out` and run
/// to its end.
pub struct Record<'a> {
    pub start: usize,
    pub id: Cow<'a, str>,
    pub deleted: bool,
}

/// What an object tells its container.
struct Object<'a> {
    truthy: bool,
    /// For a record: the last `id` member, when it is a string.
    id: Option<Cow<'a, str>>,
    /// For a record: the truthiness of the last `deleted` member.
    deleted: bool,
}

/// Read `{metadata, timestamp, changes}` from `text`, writing each record's canonical bytes into
/// `writer.out` and handing it to `record` (which may truncate them). `metadata` is parsed by
/// serde_json where it stands, as its path parses it; other fields are read and forgotten.
pub fn changeset<'a>(
    text: &'a str,
    writer: &mut Writer,
    mut record: impl FnMut(&mut Writer, Record<'a>),
) -> Step<Changeset> {
    let mut scan = Scanner {
        text,
        at: 0,
        writer,
    };
    let (mut metadata, mut timestamp, mut changes) = (None, None, false);
    scan.ws();
    scan.expect(b'{')?;
    scan.members(|scan, key| {
        match key {
            "metadata" if metadata.is_none() => metadata = Some(scan.metadata()?),
            "timestamp" if timestamp.is_none() => timestamp = Some(scan.timestamp()?),
            "changes" if !changes => {
                scan.records(&mut record)?;
                changes = true;
            }
            "metadata" | "timestamp" | "changes" => return Err(Outside),
            _ => scan.forgotten(FIELD_DEPTH)?,
        }
        Ok(())
    })?;
    scan.ws();
    if scan.at != text.len() || !changes {
        return Err(Outside);
    }
    Ok(Changeset {
        metadata: metadata.unwrap_or(Value::Null),
        timestamp: timestamp.ok_or(Outside)?,
    })
}

/// `metadata`'s value as serde_json's path reads it ([`BoundedValue`] at [`FIELD_DEPTH`]).
struct Metadata(Value);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let seed = BoundedValue {
            too_deep: &mut false,
            depth: FIELD_DEPTH,
        };
        seed.deserialize(deserializer).map(Metadata)
    }
}

struct Scanner<'a, 'w> {
    text: &'a str,
    at: usize,
    writer: &'w mut Writer,
}

impl<'a> Scanner<'a, '_> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Step<u8> {
        self.bytes().get(self.at).copied().ok_or(Outside)
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Step<()> {
        if self.peek()? != byte {
            return Err(Outside);
        }
        self.at += 1;
        Ok(())
    }

    /// Step over `byte` if it is next.
    fn next_is(&mut self, byte: u8) -> Step<bool> {
        let is = self.peek()? == byte;
        self.at += usize::from(is);
        Ok(is)
    }

    /// An object's members, after its `{`, through its `}`: `member` reads each value, the key
    /// (without escapes) given.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Step<()>) -> Step<()> {
        self.ws();
        if self.next_is(b'}')? {
            return Ok(());
        }
        loop {
            self.expect(b'"')?;
            let key = self.key()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            member(self, key)?;
            self.ws();
            if !self.next_is(b',')? {
                return self.expect(b'}');
            }
            self.ws();
        }
    }

    /// An array's elements, after its `[`, through its `]`: `element` reads each, its index
    /// given.
    fn elements(&mut self, mut element: impl FnMut(&mut Self, usize) -> Step<()>) -> Step<()> {
        self.ws();
        if self.next_is(b']')? {
            return Ok(());
        }
        for index in 0.. {
            element(self, index)?;
            self.ws();
            if !self.next_is(b',')? {
                break;
            }
            self.ws();
        }
        self.expect(b']')
    }

    /// `metadata`'s value, parsed by serde_json where it stands.
    fn metadata(&mut self) -> Step<Value> {
        let mut deserializer = serde_json::Deserializer::from_str(&self.text[self.at..]);
        deserializer.disable_recursion_limit();
        let mut values = deserializer.into_iter::<Metadata>();
        let Some(Ok(Metadata(value))) = values.next() else {
            return Err(Outside);
        };
        self.at += values.byte_offset();
        Ok(value)
    }

    /// Read a value at `depth` and forget its canonical bytes.
    fn forgotten(&mut self, depth: usize) -> Step<()> {
        let start = self.writer.out.len();
        self.value(depth)?;
        self.writer.out.truncate(start);
        Ok(())
    }

    /// The changeset's `timestamp`: an integer within u64.
    fn timestamp(&mut self) -> Step<u64> {
        let digits = self.digits()?;
        let value = digits.bytes().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        value.ok_or(Outside)
    }

    /// The list of records: objects, each handed to `record` once written.
    fn records(&mut self, record: &mut impl FnMut(&mut Writer, Record<'a>)) -> Step<()> {
        self.expect(b'[')?;
        self.elements(|scan, _| {
            if scan.peek()? != b'{' {
                return Err(Outside);
            }
            let start = scan.writer.out.len();
            let object = scan.object(RECORD_DEPTH, true)?;
            let id = object.id.ok_or(Outside)?;
            let deleted = object.deleted;
            record(scan.writer, Record { start, id, deleted });
            Ok(())
        })
    }

    /// Write one value at nesting `depth`; returns its truthiness.
    fn value(&mut self, depth: usize) -> Step<bool> {
        match self.peek()? {
            b'{' => Ok(self.object(depth, false)?.truthy),
            b'[' => self.array(depth),
            b'"' => {
                self.at += 1;
                self.string()
            }
            b't' => self.literal("true", true),
            b'f' => self.literal("false", false),
            b'n' => self.literal("null", false),
            _ => self.integer(),
        }
    }

    fn literal(&mut self, word: &'static str, truthy: bool) -> Step<bool> {
        if !self.text[self.at..].starts_with(word) {
            return Err(Outside);
        }
        self.at += word.len();
        self.writer.out.extend_from_slice(word.as_bytes());
        Ok(truthy)
    }

    /// `0` or a run of digits without a leading zero, not followed by a fraction or exponent.
    fn digits(&mut self) -> Step<&'a str> {
        let start = self.at;
        let bytes = self.bytes();
        let end = start
            + bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
        let digits = &self.text[start..end];
        let leading_zero = digits.len() > 1 && digits.starts_with('0');
        if digits.is_empty() || leading_zero || matches!(bytes.get(end), Some(b'.' | b'e' | b'E')) {
            return Err(Outside);
        }
        self.at = end;
        Ok(digits)
    }

    /// An integer of at most 15 digits (so within ±(2^53-1), which Firefox holds exactly and the
    /// serializer writes as it is), other than `-0`.
    fn integer(&mut self) -> Step<bool> {
        let start = self.at;
        let negative = self.next_is(b'-')?;
        let digits = self.digits()?;
        if digits.len() > 15 || (negative && digits == "0") {
            return Err(Outside);
        }
        self.writer
            .out
            .extend_from_slice(&self.bytes()[start..self.at]);
        Ok(digits != "0")
    }

    /// An object key, after its opening quote: text without escapes.
    fn key(&mut self) -> Step<&'a str> {
        let start = self.at;
        let bytes = self.bytes();
        let end = start
            + bytes[start..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or(Outside)?;
        if bytes[end] != b'"' {
            return Err(Outside);
        }
        self.at = end + 1;
        Ok(&self.text[start..end])
    }

    fn object(&mut self, depth: usize, record: bool) -> Step<Object<'a>> {
        if depth > json::MAX_DEPTH {
            return Err(Outside);
        }
        self.at += 1;
        let mut object = Object {
            truthy: false,
            id: None,
            deleted: false,
        };
        let writer = &mut *self.writer;
        writer.out.push(b'{');
        let (start, first, keys_start) =
            (writer.out.len(), writer.members.len(), writer.keys.len());
        self.members(|scan, key| {
            let writer = &mut *scan.writer;
            if writer.members.len() > first {
                writer.out.push(b',');
            }
            let bytes_start = writer.out.len();
            let key_start = writer.keys.len();
            writer.keys.extend_from_slice(key.as_bytes());
            canonical::write_str(&mut writer.out, key);
            writer.out.push(b':');
            let value_start = scan.at;
            let truthy = scan.value(depth + 1)?;
            if record && key == "id" {
                object.id = scan.string_read(value_start)?;
            }
            if record && key == "deleted" {
                object.deleted = truthy;
            }
            let writer = &mut *scan.writer;
            writer.members.push(Member {
                key: key_start..writer.keys.len(),
                bytes: bytes_start..writer.out.len(),
                numbers: None,
            });
            Ok(())
        })?;
        let writer = &mut *self.writer;
        object.truthy = writer.members.len() > first;
        writer.sort_members(first, start);
        writer.keys.truncate(keys_start);
        writer.out.push(b'}');
        Ok(object)
    }

    /// The string just read from `start`, decoded, if it was one.
    fn string_read(&self, start: usize) -> Step<Option<Cow<'a, str>>> {
        if self.bytes()[start] != b'"' {
            return Ok(None);
        }
        let quoted = &self.text[start..self.at];
        let inner = &quoted[1..quoted.len() - 1];
        if !inner.contains('\\') {
            return Ok(Some(Cow::Borrowed(inner)));
        }
        let decoded = serde_json::from_str::<String>(quoted).map_err(|_| Outside)?;
        Ok(Some(Cow::Owned(decoded)))
    }

    fn array(&mut self, depth: usize) -> Step<bool> {
        if depth > json::MAX_DEPTH {
            return Err(Outside);
        }
        self.at += 1;
        self.writer.out.push(b'[');
        let mut truthy = false;
        self.elements(|scan, index| {
            if index > 0 {
                scan.writer.out.push(b',');
            }
            truthy = true;
            scan.value(depth + 1).map(drop)
        })?;
        self.writer.out.push(b']');
        Ok(truthy)
    }

    /// A string, after its opening quote, written in canonical form; returns whether it is
    /// non-empty. Raw printable ASCII is copied, raw DEL and non-ASCII characters are escaped,
    /// and escapes are rewritten as [`canonical::write_str`] writes the character they stand for.
    fn string(&mut self) -> Step<bool> {
        let bytes = self.bytes();
        let start = self.at;
        let out = &mut self.writer.out;
        out.push(b'"');
        let mut copied = start;
        let mut at = start;
        loop {
            at += plain_run(&bytes[at..]);
            let byte = *bytes.get(at).ok_or(Outside)?;
            if PLAIN[byte as usize] {
                at += 1;
                continue;
            }
            out.extend_from_slice(&bytes[copied..at]);
            match byte {
                b'"' => break,
                b'\\' => at = escape(bytes, at + 1, out)?,
                0..=0x1f => return Err(Outside),
                _ => {
                    // DEL or a non-ASCII character: `at` is a character boundary, since only
                    // whole characters and ASCII bytes were stepped over.
                    let c = self.text[at..].chars().next().ok_or(Outside)?;
                    write_escaped(out, c);
                    at += c.len_utf8();
                }
            }
            copied = at;
        }
        out.push(b'"');
        self.at = at + 1;
        Ok(at > start)
    }
}

/// How many bytes at the start of `bytes` are [`PLAIN`], counted 8 at a time: up to the first
/// byte that is not, or, when there is none in whole blocks of 8, up to the last (fewer than 8)
/// bytes, which the caller reads one by one.
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each byte that is 0, and perhaps of bytes above the lowest one.
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut n = 0;
    while let Some(block) = bytes.get(n..n + 8) {
        let x = u64::from_le_bytes(block.try_into().expect("8 bytes"));
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let del_or_above = (x.wrapping_add(ONES) | x) & HIGH;
        let special = below_space
            | del_or_above
            | zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')));
        if special != 0 {
            // The lowest flagged byte is always a special one.
            return n + (special.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n
}

/// Rewrite the escape whose letter is at `at`; returns where the text goes on.
fn escape(bytes: &[u8], at: usize, out: &mut Vec<u8>) -> Step<usize> {
    let c = match *bytes.get(at).ok_or(Outside)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let unit = hex4(bytes, at + 1)?;
            return match unit {
                0xd800..=0xdbff => {
                    if bytes.get(at + 5..at + 7) != Some(b"\\u") {
                        return Err(Outside);
                    }
                    let low = hex4(bytes, at + 7)?;
                    if !(0xdc00..=0xdfff).contains(&low) {
                        return Err(Outside);
                    }
                    let code =
                        0x10000 + ((u32::from(unit) - 0xd800) << 10) + (u32::from(low) - 0xdc00);
                    put(out, char::from_u32(code).ok_or(Outside)?);
                    Ok(at + 11)
                }
                0xdc00..=0xdfff => Err(Outside),
                _ => {
                    put(out, char::from_u32(u32::from(unit)).ok_or(Outside)?);
                    Ok(at + 5)
                }
            };
        }
        _ => return Err(Outside),
    };
    put(out, c);
    Ok(at + 1)
}

/// Write one decoded character in canonical form.
fn put(out: &mut Vec<u8>, c: char) {
    if c.is_ascii() && PLAIN[c as usize] {
        out.push(c as u8);
    } else {
        write_escaped(out, c);
    }
}

/// Four hex digits (either case) at `at`.
fn hex4(bytes: &[u8], at: usize) -> Step<u16> {
    let digits = bytes.get(at..at + 4).ok_or(Outside)?;
    digits.iter().try_fold(0u16, |n, &d| {
        let v = (d as char).to_digit(16).ok_or(Outside)?;
        Ok((n << 4) | v as u16)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::signature::canonical::tests::random_string;
    use crate::signature::payload::tests::{text_with_duplicates, Style};
    use crate::signature::payload::{digest_changeset, digest_read_with, CanonicalRecords};

    /// The records' canonical bytes as the direct path writes them, or where it stops.
    fn records(text: &str) -> Step<Vec<(String, String, bool)>> {
        let mut writer = Writer::default();
        let mut found = Vec::new();
        changeset(text, &mut writer, |writer, record| {
            let bytes = String::from_utf8(writer.out[record.start..].to_vec()).unwrap();
            found.push((record.id.to_string(), bytes, record.deleted));
        })?;
        Ok(found)
    }

    /// Both readers' outcome for `text` (digest and warnings, or the error), direct path first.
    fn outcomes(text: &str) -> (String, String) {
        let body = || text.as_bytes().to_vec();
        (
            format!("{:?}", digest_changeset(body())),
            format!(
                "{:?}",
                digest_read_with(body(), CanonicalRecords::read_serde)
            ),
        )
    }

    #[test]
    fn what_kinto_serves_is_rewritten_in_canonical_form_without_decoding() {
        // Metadata is parsed by serde_json where it stands, floats and all.
        let text = r#" {"metadata": {"id": "c", "signatures": [], "n": 0.5, "last_modified": 7},
            "unknown": [1, {"k": "v"}],
            "timestamp": 1700000000000, "changes": [
              {"id": "b", "title": "caf\u00E9 \uD834\uDD1E \/ \"q\" \\ \u0041\u007F\u0001\n",
               "n": -12, "zero": 0, "t": [true, false, null, [], {}], "z": {"y": 1, "x": "é"},
               "deleted": false},
              {"id":"a","deleted":"yes"}
            ]} "#;
        assert_eq!(
            records(text).unwrap(),
            [
                (
                    "b".into(),
                    concat!(
                        r#"{"deleted":false,"id":"b","n":-12,"t":[true,false,null,[],{}],"#,
                        r#""title":"caf\u00e9 \ud834\udd1e / \"q\" \\ A\u007f\u0001\n","#,
                        r#""z":{"x":"\u00e9","y":1},"zero":0}"#
                    )
                    .into(),
                    false
                ),
                ("a".into(), r#"{"deleted":"yes","id":"a"}"#.into(), true),
            ]
        );
        let (direct, serde) = outcomes(text);
        assert_eq!(direct, serde);
        assert!(
            direct.contains("metadata_last_modified: Some(7)"),
            "{direct}"
        );
    }

    #[test]
    fn what_the_direct_path_does_not_handle_goes_through_serde_json() {
        let changeset = |record: &str| {
            format!(r#"{{"metadata": {{}}, "timestamp": 1, "changes": [{record}]}}"#)
        };
        let outside = [
            changeset(r#"{"id": "a", "n": 1.5}"#),
            changeset(r#"{"id": "a", "n": 1e2}"#),
            changeset(r#"{"id": "a", "n": 9007199254740993}"#),
            changeset(r#"{"id": "a", "n": 1234567890123456}"#),
            changeset(r#"{"id": "a", "n": -0}"#),
            changeset(r#"{"id": "a", "n": 01}"#),
            changeset(r#"{"i\u0064": "a"}"#),
            changeset(r#"{"id": 1}"#),
            changeset(r#"{"id": "a", "s": "\uD834"}"#),
            changeset(r#"{"id": "a", "s": "\uDD1E"}"#),
            changeset(r#"{"id": "a", "s": "\uD834\u0041"}"#),
            changeset(r#"{"id": "a", "s": "\x"}"#),
            changeset("{\"id\": \"a\", \"s\": \"\u{1}\"}"),
            changeset(r#"{"id": "a",}"#),
            changeset(r#"["a"]"#),
            changeset(r#""a""#),
            r#"{"metadata": {}, "timestamp": 1, "timestamp": 2, "changes": []}"#.into(),
            r#"{"metadata": {}, "timestamp": -1, "changes": []}"#.into(),
            r#"{"metadata": {}, "timestamp": 18446744073709551616, "changes": []}"#.into(),
            r#"{"metadata": {}, "changes": []}"#.into(),
            r#"{"metadata": {}, "timestamp": 1}"#.into(),
            r#"{"metadata": {}, "timestamp": 1, "changes": []} x"#.into(),
        ];
        for text in outside {
            assert_eq!(records(&text).err(), Some(Outside), "{text}");
            let (direct, serde) = outcomes(&text);
            assert_eq!(direct, serde, "{text}");
        }
    }

    #[test]
    fn plain_runs_stop_at_the_first_byte_that_is_not_plain() {
        let reference = |bytes: &[u8]| {
            let first = bytes.iter().position(|&b| !PLAIN[b as usize]);
            first.unwrap_or(bytes.len()).min(bytes.len() / 8 * 8)
        };
        for len in [0, 7, 8, 24, 27] {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    assert_eq!(
                        plain_run(&bytes),
                        reference(&bytes),
                        "{byte:#x} at {at} of {len}"
                    );
                }
            }
        }
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..rng.usize(0..40))
                .map(|_| {
                    if rng.u8(0..8) == 0 {
                        rng.u8(..)
                    } else {
                        rng.u8(0x20..0x7f)
                    }
                })
                .collect();
            assert_eq!(plain_run(&bytes), reference(&bytes), "{bytes:?}");
        }
    }

    /// Keys a random record's objects use: with `id` and `deleted` nested too, non-ASCII, space.
    const KEYS: [&str; 8] = ["id", "deleted", "title", "a", "b", "clé", "日本", "x y"];

    /// A value of the kinds Kinto serves.
    fn kinto_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
        match rng.u8(0..if depth > 3 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.bool()),
            2 => Value::from(rng.i64(-999_999_999_999_999..=999_999_999_999_999)),
            3 => Value::from(rng.i64(-3..=3)),
            4 => Value::String(random_string(rng)),
            5 => (0..rng.usize(0..4))
                .map(|_| kinto_value(rng, depth + 1))
                .collect(),
            _ => Value::Object(
                (0..rng.usize(0..5))
                    .map(|_| {
                        (
                            KEYS[rng.usize(..KEYS.len())].into(),
                            kinto_value(rng, depth + 1),
                        )
                    })
                    .collect(),
            ),
        }
    }

    const KINTO: Style = Style {
        duplicate: |rng| kinto_value(rng, 3),
        escapes: true,
    };

    /// A changeset text of random records, written as [`KINTO`] says.
    fn random_changeset(rng: &mut fastrand::Rng) -> String {
        let records: Vec<Value> = (0..rng.usize(0..6))
            .map(|_| {
                let mut record = match kinto_value(rng, 2) {
                    Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                };
                let id: String = (0..rng.usize(0..6))
                    .map(|_| rng.choice(['a', 'b', 'Z', '0', '-', 'é', '日']).unwrap())
                    .collect();
                record.insert("id".into(), id.into());
                if rng.u8(0..3) == 0 {
                    let deleted = [json!(true), json!(0), json!(""), json!("x"), json!([0])];
                    record.insert(
                        "deleted".into(),
                        deleted[rng.usize(..deleted.len())].clone(),
                    );
                }
                Value::Object(record)
            })
            .collect();
        let metadata = json!({"id": "c", "last_modified": 42, "signatures": [{"signature": "s", "x5u": "http://x/y"}]});
        let mut fields = vec![
            ("metadata", metadata),
            ("timestamp", json!(rng.u64(..))),
            ("changes", Value::Array(records)),
        ];
        if rng.bool() {
            fields.push(("other", kinto_value(rng, 2)));
        }
        rng.shuffle(&mut fields);
        let mut text = String::from("{");
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            text.push_str(&format!("\"{key}\": "));
            text_with_duplicates(rng, value, &mut text, &KINTO);
        }
        text.push('}');
        text
    }

    #[test]
    fn random_changesets_get_the_same_digest_and_warnings_from_both_paths() {
        let mut rng = fastrand::Rng::with_seed(20261205);
        let (mut direct_read, mut records_read) = (0, 0);
        for _ in 0..3_000 {
            let text = random_changeset(&mut rng);
            let (direct, serde) = outcomes(&text);
            assert!(serde.starts_with("Ok("), "{text}: {serde}");
            assert_eq!(direct, serde, "{text}");
            if let Ok(found) = records(&text) {
                direct_read += 1;
                records_read += found.len();
            }
        }
        // Most of them went the direct way (escaped ids and random text keep some out).
        assert!(
            direct_read > 2_000 && records_read > 4_000,
            "{direct_read} {records_read}"
        );
    }

    #[test]
    fn damaged_changesets_get_the_same_outcome_from_both_paths() {
        let mut rng = fastrand::Rng::with_seed(5122026);
        let damage = [
            '"', '\\', '{', '}', '[', ']', ',', ':', '0', '1', '-', '.', 'e', 'u', 'D', ' ', 't',
            '\u{1}', '\u{7f}', 'é', '𝄞',
        ];
        let (mut refused, mut read_direct) = (0, 0);
        for _ in 0..6_000 {
            let mut chars: Vec<char> = random_changeset(&mut rng).chars().collect();
            for _ in 0..rng.usize(1..3) {
                let at = rng.usize(..chars.len());
                match rng.u8(0..4) {
                    0 => chars[at] = rng.choice(damage).unwrap(),
                    1 => {
                        chars.remove(at);
                    }
                    2 => chars.insert(at, rng.choice(damage).unwrap()),
                    _ => chars.truncate(at),
                }
                if chars.is_empty() {
                    chars.push('{');
                }
            }
            let text: String = chars.into_iter().collect();
            let (direct, serde) = outcomes(&text);
            assert_eq!(direct, serde, "{text}");
            refused += usize::from(serde.starts_with("Err("));
            read_direct += usize::from(records(&text).is_ok());
        }
        // Both kinds are many: damage that breaks the changeset, and damage the direct path
        // reads (inside a string, or a digit).
        assert!(
            refused > 2_500 && read_direct > 250,
            "{refused} {read_direct}"
        );
    }
}
