//! Mozilla canonical JSON through the `canonical_json` crate's formatter, written straight into a
//! sink. Two things differ from calling `canonical_json::to_string`, neither in its output:
//!
//! - no intermediate `String`: bytes go to the caller's writer (the payload hasher);
//! - string fragments are escaped character by character without the crate's per-character
//!   `String`s: printable ASCII (0x20..=0x7E) as is, every other character as `\uXXXX` with
//!   lower-case hex, and characters beyond the BMP as a surrogate pair. That is exactly what the
//!   crate's `write_string_fragment` produces (Rust's `escape_default`, `\'` turned back into `'`,
//!   `\u{..}` normalized to 4 digits or a surrogate pair); serde_json never hands it `"`, `\` or
//!   control characters, which go through the crate's `write_char_escape`. Numbers go through the
//!   crate's `write_f64`.
//!
//! Keys are sorted here as the crate sorts them, whatever serde_json's map order. The tests below
//! compare the output with `canonical_json::to_string` on the conformance document and on
//! thousands of random values.

use std::io::{self, Write};

use canonical_json::JsonFormatter;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::ser::{CharEscape, Formatter};
use serde_json::Value;

struct CanonicalFormatter;

fn printable_ascii(byte: u8) -> bool {
    (0x20..=0x7e).contains(&byte)
}

impl Formatter for CanonicalFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        JsonFormatter.write_f64(writer, value)
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        JsonFormatter.write_char_escape(writer, char_escape)
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while !rest.is_empty() {
            let ascii = rest.bytes().take_while(|b| printable_ascii(*b)).count();
            writer.write_all(&rest.as_bytes()[..ascii])?;
            rest = &rest[ascii..];
            // ASCII bytes are character boundaries.
            let other = rest.bytes().position(printable_ascii).unwrap_or(rest.len());
            for c in rest[..other].chars() {
                escape_char(writer, c)?;
            }
            rest = &rest[other..];
        }
        Ok(())
    }
}

/// `\uXXXX` (lower-case hex), or a surrogate pair beyond the BMP.
fn escape_char<W: ?Sized + Write>(writer: &mut W, c: char) -> io::Result<()> {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        writer.write_all(&unit_escape(*unit))?;
    }
    Ok(())
}

/// `\uXXXX` for one UTF-16 code unit, in lower-case hex.
fn unit_escape(unit: u16) -> [u8; 6] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let u = unit as usize;
    [
        b'\\',
        b'u',
        HEX[(u >> 12) & 0xf],
        HEX[(u >> 8) & 0xf],
        HEX[(u >> 4) & 0xf],
        HEX[u & 0xf],
    ]
}

/// A value serialized with its object keys sorted (as `canonical_json` does).
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serializer.serialize_map(Some(keys.len()))?;
                for key in keys {
                    out.serialize_entry(key, &Sorted(&map[key]))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Sorted(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// Append the canonical JSON of a string to `out`, as [`write`] and the crate write it (the tests
/// compare them on every ASCII character and thousands of random strings), in one loop over its
/// bytes: runs of printable ASCII are copied, `"` and `\` are escaped with a backslash, control
/// characters as serde_json hands them to [`CanonicalFormatter::write_char_escape`] (`\n`...,
/// else `\u00XX`), and every other character as `\uXXXX` of its UTF-16 units ([`unit_escape`],
/// as [`escape_char`] writes them).
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    let bytes = text.as_bytes();
    let (mut copied, mut i) = (0, 0);
    while let Some(&byte) = bytes.get(i) {
        if PLAIN[byte as usize] {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[copied..i]);
        // `i` is a character boundary: runs of plain bytes are ASCII.
        let c = text[i..].chars().next().expect("not at the end");
        write_escaped(out, c);
        i += c.len_utf8();
        copied = i;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// Append the canonical form of one character that is not [`PLAIN`]: `"` and `\` with a
/// backslash, the control characters serde_json hands to [`CanonicalFormatter::write_char_escape`]
/// as `\n`..., and every other character (control, DEL, non-ASCII) as `\uXXXX` of its UTF-16 units.
pub(super) fn write_escaped(out: &mut Vec<u8>, c: char) {
    let short = match c {
        '"' => b'"',
        '\\' => b'\\',
        '\u{8}' => b'b',
        '\t' => b't',
        '\n' => b'n',
        '\u{c}' => b'f',
        '\r' => b'r',
        _ => 0,
    };
    if short != 0 {
        out.extend_from_slice(&[b'\\', short]);
        return;
    }
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        out.extend_from_slice(&unit_escape(*unit));
    }
}

/// The bytes a canonical string holds as they are: printable ASCII but `"` and `\`.
pub(super) static PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0x20;
    while byte <= 0x7e {
        table[byte] = byte != b'"' as usize && byte != b'\\' as usize;
        byte += 1;
    }
    table
};

/// Append the canonical JSON of one number (integer or float) to `out`: the same serializer as
/// [`write`], for the streamed records of [`super::stream`].
pub fn write_scalar<T: Serialize>(out: &mut Vec<u8>, scalar: T) {
    let mut serializer = serde_json::Serializer::with_formatter(out, CanonicalFormatter);
    scalar
        .serialize(&mut serializer)
        .expect("scalars serialize into memory");
}

/// Write the canonical JSON of `value` into `out`.
pub fn write<W: Write>(value: &Value, out: W) -> serde_json::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(out, CanonicalFormatter);
    Sorted(value).serialize(&mut serializer)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn ours(value: &Value) -> String {
        let mut out = Vec::new();
        write(value, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_conformance_document_is_byte_identical() {
        let doc: Value = serde_json::from_slice(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/conformance/prod-search-config-v2.changeset.json"
        )))
        .unwrap();
        let expected: &[u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/conformance/prod-search-config-v2.canonical.json"
        ));
        assert!(ours(&doc).as_bytes() == expected);
    }

    pub(in crate::signature) fn random_string(rng: &mut fastrand::Rng) -> String {
        let len = rng.usize(0..12);
        (0..len)
            .map(|_| match rng.u8(0..10) {
                0 => rng.char('\u{0}'..='\u{1f}'),
                1 => rng
                    .choice(['"', '\\', '/', '\'', '\u{7f}', '{', '}', 'u'])
                    .unwrap(),
                2 => rng.char('\u{80}'..='\u{7ff}'),
                3 => rng.char('\u{800}'..='\u{d7ff}'),
                4 => rng.char('\u{e000}'..='\u{ffff}'),
                5 => rng.char('\u{10000}'..='\u{10ffff}'),
                _ => rng.char(' '..='~'),
            })
            .collect()
    }

    pub(in crate::signature) fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
        match rng.u8(0..if depth > 3 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.bool()),
            2 => Value::from(rng.i64(..)),
            3 => Value::from(rng.u64(..)),
            4 => serde_json::Number::from_f64(f64::from_bits(rng.u64(..)))
                .map(Value::Number)
                .unwrap_or(Value::Null),
            5 => Value::String(random_string(rng)),
            6 => Value::Array(
                (0..rng.usize(0..4))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.usize(0..5))
                    .map(|_| (random_string(rng), random_value(rng, depth + 1)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn strings_written_directly_are_the_crates_strings() {
        let check = |text: &str| {
            let mut out = Vec::new();
            write_str(&mut out, text);
            let expected = canonical_json::to_string(&Value::String(text.into())).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{text:?}");
        };
        for c in '\u{0}'..='\u{ff}' {
            check(&c.to_string());
            check(&format!("a{c}b{c}"));
        }
        let mut rng = fastrand::Rng::with_seed(20261204);
        for _ in 0..5_000 {
            check(&random_string(&mut rng));
        }
        for text in [
            "",
            "\u{ffff}",
            "\u{10000}",
            "\u{10ffff}",
            "\u{d7ff}\u{e000}",
            "é \\u{41} it's",
        ] {
            check(text);
        }
    }

    #[test]
    fn random_values_serialize_exactly_as_the_crate_does() {
        let mut rng = fastrand::Rng::with_seed(20261122);
        for _ in 0..5_000 {
            let value = random_value(&mut rng, 0);
            assert_eq!(
                ours(&value),
                canonical_json::to_string(&value).unwrap(),
                "{value:?}"
            );
        }
        // Literal text that looks like the crate's escapes stays as the crate leaves it.
        for text in [
            "I \\u{} testing",
            "I \\u{1234 testing",
            "é \\u{41}",
            "it's",
            "a\u{7f}b",
        ] {
            let value = Value::String(text.into());
            assert_eq!(ours(&value), canonical_json::to_string(&value).unwrap());
        }
    }
}
