//! JSON text to Mozilla canonical JSON in one pass, without `serde_json::Value` trees: serde_json's
//! parser hands each value to [`Canonical`], which writes its canonical form at once.
//! Strings go through [`canonical::write_str`], numbers through [`canonical::write_scalar`] (the
//! serializer of [`canonical::write`]);
//! an object's members are written as they come, then put in key order (duplicate keys: the last
//! one wins, as in a `Value`). The nesting limit ([`json::MAX_DEPTH`]) is counted here, so that a
//! hostile document stops at the first level past it.
//!
//! Along the way each value's numbers that Firefox would not serialize as the signer did are
//! counted, with the first example in canonical order, exactly as the payload's `NumberScan`
//! finds them in a `Value` (the tests of `payload` compare both).

use std::ops::Range;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::canonical;
use super::payload::MAX_SAFE_INTEGER;
use crate::json;

/// A step of a JSON pointer, innermost first in an [`Example`].
#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Where a number was found (innermost step first) and the number.
#[derive(Debug, Clone)]
pub struct Example {
    path: Vec<Segment>,
    number: Number,
}

impl Example {
    fn new(number: Number) -> Box<Example> {
        Box::new(Example {
            path: Vec::new(),
            number,
        })
    }

    /// `/key/0/...: number`, outermost step first.
    pub fn describe(&self) -> (String, &Number) {
        let pointer = self
            .path
            .iter()
            .rev()
            .map(|s| match s {
                Segment::Key(k) => format!("/{k}"),
                Segment::Index(i) => format!("/{i}"),
            })
            .collect();
        (pointer, &self.number)
    }
}

/// Floats and integers beyond ±(2^53-1) in a value, with the first of each in canonical order.
#[derive(Debug, Default)]
pub struct Numbers {
    pub floats: usize,
    pub unsafe_integers: usize,
    pub float_example: Option<Box<Example>>,
    pub integer_example: Option<Box<Example>>,
}

impl Numbers {
    fn float(number: Number) -> Option<Box<Numbers>> {
        Some(Box::new(Numbers {
            floats: 1,
            float_example: Some(Example::new(number)),
            ..Numbers::default()
        }))
    }

    fn unsafe_integer(number: Number) -> Option<Box<Numbers>> {
        Some(Box::new(Numbers {
            unsafe_integers: 1,
            integer_example: Some(Example::new(number)),
            ..Numbers::default()
        }))
    }

    /// Add the numbers of a member found at `step` (members come in canonical order).
    fn add(
        total: &mut Option<Box<Numbers>>,
        member: Option<Box<Numbers>>,
        step: impl Fn() -> Segment,
    ) {
        let Some(mut member) = member else { return };
        for example in [&mut member.float_example, &mut member.integer_example]
            .into_iter()
            .flatten()
        {
            example.path.push(step());
        }
        let Some(total) = total else {
            *total = Some(member);
            return;
        };
        total.floats += member.floats;
        total.unsafe_integers += member.unsafe_integers;
        if total.float_example.is_none() {
            total.float_example = member.float_example;
        }
        if total.integer_example.is_none() {
            total.integer_example = member.integer_example;
        }
    }
}

/// What a written value tells its container.
pub struct Written {
    /// Python's truthiness of the value (how the signer reads `deleted`).
    pub truthy: bool,
    pub numbers: Option<Box<Numbers>>,
}

impl Written {
    fn scalar(truthy: bool) -> Written {
        Written {
            truthy,
            numbers: None,
        }
    }
}

/// A member of an object being written: its decoded key (in `Writer::keys`), its `"key":value`
/// bytes (in `Writer::out`), and its numbers.
pub(super) struct Member {
    pub(super) key: Range<usize>,
    pub(super) bytes: Range<usize>,
    pub(super) numbers: Option<Box<Numbers>>,
}

/// The output and the buffers reused from value to value.
#[derive(Default)]
pub struct Writer {
    /// The canonical bytes written so far.
    pub out: Vec<u8>,
    pub(super) keys: Vec<u8>,
    pub(super) members: Vec<Member>,
    scratch: Vec<u8>,
    /// The next string written is a record's `id`: keep it in `id`.
    capture_id: bool,
    /// The last record's string `id`, if it has one.
    pub id: Option<String>,
    /// The last record's `deleted` is truthy.
    pub deleted: bool,
    /// The document is nested deeper than [`json::MAX_DEPTH`].
    pub too_deep: bool,
}

impl Writer {
    pub fn with_capacity(bytes: usize) -> Self {
        Writer {
            out: crate::buffers::LARGE.take(bytes),
            ..Writer::default()
        }
    }

    /// Forget everything written, keeping the output buffer.
    pub fn restart(&mut self) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        *self = Writer {
            out,
            ..Writer::default()
        };
    }

    fn enter<E: serde::de::Error>(&mut self, depth: usize) -> Result<(), E> {
        if depth > json::MAX_DEPTH {
            self.too_deep = true;
            return Err(E::custom(json::too_deep()));
        }
        Ok(())
    }

    /// Put the members from `first` on in key order (the last of equal keys kept), from the
    /// object's first member byte `start` on, and return their numbers in that order.
    pub(super) fn sort_members(&mut self, first: usize, start: usize) -> Option<Box<Numbers>> {
        let keys = &self.keys;
        let members = &mut self.members[first..];
        let in_order = members
            .windows(2)
            .all(|w| keys[w[0].key.clone()] < keys[w[1].key.clone()]);
        if !in_order {
            members.sort_by(|a, b| keys[a.key.clone()].cmp(&keys[b.key.clone()]));
            self.scratch.clear();
            self.scratch.extend_from_slice(&self.out[start..]);
            self.out.truncate(start);
            let mut kept = 0;
            for i in 0..members.len() {
                let last_of_key = members
                    .get(i + 1)
                    .is_none_or(|next| keys[next.key.clone()] != keys[members[i].key.clone()]);
                if !last_of_key {
                    continue;
                }
                if kept > 0 {
                    self.out.push(b',');
                }
                let bytes = members[i].bytes.start - start..members[i].bytes.end - start;
                let at = self.out.len();
                self.out.extend_from_slice(&self.scratch[bytes]);
                members[i].bytes = at..self.out.len();
                members.swap(kept, i);
                kept += 1;
            }
            self.members.truncate(first + kept);
        }
        let mut numbers = None;
        for member in self.members.drain(first..) {
            let key = &self.keys[member.key];
            Numbers::add(&mut numbers, member.numbers, || {
                Segment::Key(String::from_utf8_lossy(key).into_owned())
            });
        }
        numbers
    }
}

/// Write one value (at nesting `depth`, counting the arrays and objects around it) in canonical
/// form. For a record (`record`), its `id` and `deleted` members are noted in the writer.
pub struct Canonical<'w> {
    pub writer: &'w mut Writer,
    pub depth: usize,
    pub record: bool,
}

impl<'de> DeserializeSeed<'de> for Canonical<'_> {
    type Value = Written;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Written, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Canonical<'_> {
    type Value = Written;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Written, E> {
        self.writer.capture_id = false;
        self.writer.out.extend_from_slice(b"null");
        Ok(Written::scalar(false))
    }

    fn visit_bool<E>(self, b: bool) -> Result<Written, E> {
        self.writer.capture_id = false;
        self.writer
            .out
            .extend_from_slice(if b { b"true" } else { b"false" });
        Ok(Written::scalar(b))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Written, E> {
        self.writer.capture_id = false;
        canonical::write_scalar(&mut self.writer.out, u);
        Ok(Written {
            truthy: u != 0,
            numbers: if u > MAX_SAFE_INTEGER {
                Numbers::unsafe_integer(u.into())
            } else {
                None
            },
        })
    }

    fn visit_i64<E>(self, i: i64) -> Result<Written, E> {
        self.writer.capture_id = false;
        canonical::write_scalar(&mut self.writer.out, i);
        Ok(Written {
            truthy: i != 0,
            numbers: if i.unsigned_abs() > MAX_SAFE_INTEGER {
                Numbers::unsafe_integer(i.into())
            } else {
                None
            },
        })
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Written, E> {
        self.writer.capture_id = false;
        let number = Number::from_f64(f).ok_or_else(|| E::custom("a number that is not finite"))?;
        canonical::write_scalar(&mut self.writer.out, f);
        Ok(Written {
            truthy: f != 0.0,
            numbers: Numbers::float(number),
        })
    }

    fn visit_str<E>(self, s: &str) -> Result<Written, E> {
        if std::mem::take(&mut self.writer.capture_id) {
            self.writer.id = Some(s.to_owned());
        }
        canonical::write_str(&mut self.writer.out, s);
        Ok(Written::scalar(!s.is_empty()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Written, A::Error> {
        let writer = self.writer;
        writer.capture_id = false;
        writer.enter(self.depth)?;
        writer.out.push(b'[');
        let (mut count, mut numbers) = (0, None);
        loop {
            if count > 0 {
                writer.out.push(b',');
            }
            let element = Canonical {
                writer: &mut *writer,
                depth: self.depth + 1,
                record: false,
            };
            let Some(written) = seq.next_element_seed(element)? else {
                if count > 0 {
                    writer.out.pop();
                }
                break;
            };
            Numbers::add(&mut numbers, written.numbers, || Segment::Index(count));
            count += 1;
        }
        writer.out.push(b']');
        Ok(Written {
            truthy: count > 0,
            numbers,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Written, A::Error> {
        let writer = self.writer;
        writer.capture_id = false;
        writer.enter(self.depth)?;
        writer.out.push(b'{');
        let (start, first, keys_start) =
            (writer.out.len(), writer.members.len(), writer.keys.len());
        while let Some(key) = map.next_key_seed(KeySeed(&mut writer.keys))? {
            if writer.members.len() > first {
                writer.out.push(b',');
            }
            let bytes_start = writer.out.len();
            let name = &writer.keys[key.clone()];
            let name = std::str::from_utf8(name).expect("keys are copied from strings");
            canonical::write_str(&mut writer.out, name);
            writer.out.push(b':');
            let (is_id, is_deleted) = (
                self.record && name == "id",
                self.record && name == "deleted",
            );
            if is_id {
                writer.id = None;
                writer.capture_id = true;
            }
            let written = map.next_value_seed(Canonical {
                writer: &mut *writer,
                depth: self.depth + 1,
                record: false,
            })?;
            if is_deleted {
                writer.deleted = written.truthy;
            }
            writer.members.push(Member {
                key,
                bytes: bytes_start..writer.out.len(),
                numbers: written.numbers,
            });
        }
        let truthy = writer.members.len() > first;
        let numbers = writer.sort_members(first, start);
        writer.keys.truncate(keys_start);
        writer.out.push(b'}');
        Ok(Written { truthy, numbers })
    }
}

/// An object key, decoded, appended to the key buffer.
struct KeySeed<'k>(&'k mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Range<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Range<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Range<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, s: &str) -> Result<Range<usize>, E> {
        let start = self.0.len();
        self.0.extend_from_slice(s.as_bytes());
        Ok(start..self.0.len())
    }
}

/// A `serde_json::Value` read at nesting `depth`, refused past [`json::MAX_DEPTH`] (the flag is
/// then set).
pub struct BoundedValue<'f> {
    pub too_deep: &'f mut bool,
    pub depth: usize,
}

impl BoundedValue<'_> {
    fn inner(&mut self) -> BoundedValue<'_> {
        BoundedValue {
            too_deep: &mut *self.too_deep,
            depth: self.depth + 1,
        }
    }

    fn enter<E: serde::de::Error>(&mut self) -> Result<(), E> {
        if self.depth > json::MAX_DEPTH {
            *self.too_deep = true;
            return Err(E::custom(json::too_deep()));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for BoundedValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BoundedValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(u.into())
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(i.into())
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Number::from_f64(f).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.inner())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.inner())?;
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}
