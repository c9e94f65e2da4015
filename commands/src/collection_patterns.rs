//! Which collections a check looks at: comma-separated `bucket/collection` patterns where `*`
//! matches any run of characters (`main/*`, `*/cfr`, `*/*`). A check keeps a collection when it
//! matches one of its include patterns and none of its exclude patterns.

use crate::kinto::CollectionRef;
use crate::settings::{quote, RawSettings, Setting, SettingError};

/// One `bucket/collection` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    bucket: String,
    collection: String,
}

/// Include and exclude patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionFilter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl CollectionFilter {
    /// The filter of two settings holding pattern lists; `include` is declared with a default.
    pub fn from_settings(
        raw: &RawSettings,
        include: &Setting,
        exclude: &Setting,
    ) -> Result<Self, SettingError> {
        Ok(CollectionFilter {
            include: patterns(raw, include)?,
            exclude: patterns(raw, exclude)?,
        })
    }

    /// Does the check look at this collection?
    pub fn keeps(&self, collection: &CollectionRef) -> bool {
        let matches = |p: &Pattern| {
            glob(&p.bucket, &collection.bucket) && glob(&p.collection, &collection.collection)
        };
        self.include.iter().any(matches) && !self.exclude.iter().any(matches)
    }
}

fn patterns(raw: &RawSettings, setting: &Setting) -> Result<Vec<Pattern>, SettingError> {
    raw.list(setting, ',')
        .into_iter()
        .map(|item| {
            let valid = |part: &str| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*'))
            };
            match item.split_once('/') {
                Some((b, c)) if valid(b) && valid(c) => Ok(Pattern {
                    bucket: b.to_string(),
                    collection: c.to_string(),
                }),
                _ => Err(SettingError::new(
                    setting.env,
                    format!(
                        "{} is not a bucket/collection pattern (ids and `*`)",
                        quote(&item)
                    ),
                )),
            }
        })
        .collect()
}

/// `*` matches any run of characters, everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INCLUDE: Setting = Setting::new("INCLUDE", "PATTERNS", "").default("*/*");
    const EXCLUDE: Setting = Setting::new("EXCLUDE", "PATTERNS", "");

    fn filter(include: &str, exclude: &str) -> Result<CollectionFilter, SettingError> {
        let raw = RawSettings::from_pairs(&[("INCLUDE", include), ("EXCLUDE", exclude)]);
        CollectionFilter::from_settings(&raw, &INCLUDE, &EXCLUDE)
    }

    #[test]
    fn stars_match_any_run_of_characters() {
        for (pattern, text, expected) in [
            ("*", "", true),
            ("*", "main", true),
            ("main", "main", true),
            ("main", "main-preview", false),
            ("main*", "main-preview", true),
            ("*-preview", "main-preview", true),
            ("*-preview", "main", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxcyyb", false),
            ("ab*ba", "aba", false),
        ] {
            assert_eq!(glob(pattern, text), expected, "{pattern} {text}");
        }
    }

    #[test]
    fn include_then_exclude() {
        let f = filter("main/*, blocklists/addons", "main/skip-*").unwrap();
        let keeps = |b, c| f.keeps(&CollectionRef::new(b, c));
        assert!(keeps("main", "cfr"));
        assert!(keeps("blocklists", "addons"));
        assert!(!keeps("main", "skip-me"));
        assert!(!keeps("blocklists", "plugins"));
        // Unset include: the declared default, every collection.
        let f = filter("", "").unwrap();
        assert!(f.keeps(&CollectionRef::new("any", "thing")));
    }

    #[test]
    fn bad_patterns_name_the_setting() {
        assert_eq!(filter("main", "").unwrap_err().name, "INCLUDE");
        assert_eq!(filter("*/*", "a/b/c").unwrap_err().name, "EXCLUDE");
        assert_eq!(filter("../x", "").unwrap_err().name, "INCLUDE");
    }
}
