//! JSON answers parsed with a nesting limit of this crate's own instead of serde_json's default of
//! 128 levels. Kinto stores, and kinto-signer signs, records nested a few hundred levels deep
//! (the stack's Kinto takes 200 and fails around 900), and a changeset or a records page adds
//! levels around each record: with the default limit, a legitimately signed collection holding a
//! record nested 130 levels deep read as an invalid changeset. Documents nested deeper than
//! [`MAX_DEPTH`] are refused before parsing (a hostile answer nested 100,000 levels deep costs one
//! linear scan), so parsing, hashing and dropping the values stay well within a 2 MiB thread
//! stack (unit-tested at the limit in a debug build).

use serde::de::DeserializeOwned;

/// The deepest nesting of arrays and objects accepted in an answer.
pub const MAX_DEPTH: usize = 512;

/// The deepest nesting of `[` and `{` outside strings, scanning no further than the first point
/// where it exceeds `limit`. For well-formed JSON this is the document's nesting; for malformed
/// JSON it is at least the nesting a parser reaches before its first error.
pub fn nesting_depth(text: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > deepest {
                    deepest = depth;
                    if deepest > limit {
                        break;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Why a document nested deeper than [`MAX_DEPTH`] is refused, on one line.
pub fn too_deep() -> String {
    format!("the JSON document is nested deeper than {MAX_DEPTH} levels")
}

/// Refuse a document nested deeper than [`MAX_DEPTH`], with a one-line reason.
pub fn check_depth(text: &[u8]) -> Result<(), String> {
    if nesting_depth(text, MAX_DEPTH) > MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(())
}

/// Parse a whole JSON document of type `T`, nested at most [`MAX_DEPTH`] levels.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    check_depth(bytes)?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    deserializer.disable_recursion_limit();
    let value = T::deserialize(&mut deserializer).map_err(|e| e.to_string())?;
    deserializer.end().map_err(|e| e.to_string())?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn nested(n: usize) -> String {
        format!("{}1{}", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert_eq!(nesting_depth(b"1", 10), 0);
        assert_eq!(nesting_depth(br#"{"a": [1, {"b": []}]}"#, 10), 4);
        assert_eq!(nesting_depth(br#"["[[[{{", "\"[[", "\\"]"#, 10), 1);
        assert_eq!(nesting_depth(nested(5).as_bytes(), 10), 5);
        // The scan stops once past the limit.
        assert_eq!(nesting_depth(nested(100_000).as_bytes(), 7), 8);
    }

    #[test]
    fn documents_deeper_than_serde_jsons_default_parse_up_to_the_limit() {
        let value: Value = from_slice(nested(200).as_bytes()).unwrap();
        assert!(value.is_array());
        let err = from_slice::<Value>(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert_eq!(
            err,
            format!("the JSON document is nested deeper than {MAX_DEPTH} levels")
        );
        assert!(from_slice::<Value>(nested(100_000).as_bytes()).is_err());
        assert!(from_slice::<Value>(b"[1] x").is_err());
    }

    #[test]
    fn the_deepest_document_parses_and_drops_on_a_2_mib_stack() {
        // Tokio's worker and blocking threads have 2 MiB stacks.
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                let value: Value = from_slice(nested(MAX_DEPTH).as_bytes()).unwrap();
                let text = serde_json::to_string(&value).unwrap();
                assert_eq!(text.len(), 2 * MAX_DEPTH + 1);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
