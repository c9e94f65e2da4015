//! Where objects go: a `STORAGE_URL` (`gs://bucket/prefix` or `s3://bucket/prefix`) parsed into
//! its cloud, bucket and key prefix, and the keys under it.

use std::fmt;

use crate::settings::quote;

/// The cloud a store lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Gcs,
    S3,
}

/// A bucket and a prefix (without leading or trailing `/`; empty for the bucket's root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub cloud: Cloud,
    pub bucket: String,
    pub prefix: String,
}

impl Location {
    /// Parse `gs://bucket[/prefix]` or `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> Result<Location, String> {
        let url = url.trim();
        let (cloud, rest) = if let Some(rest) = url.strip_prefix("gs://") {
            (Cloud::Gcs, rest)
        } else if let Some(rest) = url.strip_prefix("s3://") {
            (Cloud::S3, rest)
        } else {
            return Err(format!(
                "{} is not a gs://bucket/prefix or s3://bucket/prefix URL",
                quote(url)
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket_name(bucket)?;
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..")
            || prefix.contains("//")
            || prefix
                .chars()
                .any(|c| c.is_control() || c == '?' || c == '#')
        {
            return Err(format!("{} is not an object prefix", quote(prefix)));
        }
        Ok(Location {
            cloud,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The full object name of `key` (relative to the prefix).
    pub fn object_name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// `key` of a full object name under the prefix (`None` outside it).
    pub fn key_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            return Some(name);
        }
        name.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.cloud {
            Cloud::Gcs => "gs",
            Cloud::S3 => "s3",
        };
        write!(f, "{scheme}://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// Whether [`percent_encode`] keeps `/` (S3: the name is the path) or encodes it (GCS: the name
/// is one path segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slashes {
    Kept,
    Encoded,
}

/// An object name for a URL path: every byte percent-encoded but the unreserved characters (and
/// `/` when kept), which is also how S3 canonicalizes a path for its signatures.
pub fn percent_encode(name: &str, slashes: Slashes) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(byte as char)
            }
            b'/' if slashes == Slashes::Kept => encoded.push('/'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// The bucket naming rules GCS and S3 share: 3 to 63 characters, lowercase letters, digits, `-`,
/// `_` (GCS only, tolerated) and `.`, starting and ending with a letter or digit.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let chars_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    let ends_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if (3..=63).contains(&name.len()) && chars_ok && ends_ok && !name.contains("..") {
        Ok(())
    } else {
        Err(format!(
            "{} is not a bucket name (3-63 lowercase letters, digits, '-', '_' and '.')",
            quote(name)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_percent_encoded_with_or_without_their_slashes() {
        assert_eq!(
            percent_encode("a/two words.json", Slashes::Kept),
            "a/two%20words.json"
        );
        assert_eq!(
            percent_encode("a/two words.json", Slashes::Encoded),
            "a%2Ftwo%20words.json"
        );
    }

    #[test]
    fn urls_name_the_cloud_the_bucket_and_the_prefix() {
        let gs = Location::parse("gs://remote-settings-prod/attachments/").unwrap();
        assert_eq!(
            (gs.cloud, gs.bucket.as_str(), gs.prefix.as_str()),
            (Cloud::Gcs, "remote-settings-prod", "attachments")
        );
        assert_eq!(gs.object_name("bundles/a.zip"), "attachments/bundles/a.zip");
        assert_eq!(gs.key_of("attachments/x/y.bin"), Some("x/y.bin"));
        assert_eq!(gs.key_of("other/x"), None);
        assert_eq!(gs.to_string(), "gs://remote-settings-prod/attachments");
        let s3 = Location::parse("s3://amo-blocked-pages").unwrap();
        assert_eq!((s3.cloud, s3.prefix.as_str()), (Cloud::S3, ""));
        assert_eq!(s3.object_name("index.html"), "index.html");
        assert_eq!(s3.key_of("index.html"), Some("index.html"));
    }

    #[test]
    fn other_urls_are_refused_with_the_reason() {
        for (url, says) in [
            ("https://bucket/x", "not a gs://bucket/prefix"),
            ("gs://", "not a bucket name"),
            ("gs://Bucket/x", "not a bucket name"),
            ("s3://b/x", "not a bucket name"),
            ("gs://bucket/a/../b", "not an object prefix"),
            ("gs://bucket/a//b", "not an object prefix"),
        ] {
            let err = Location::parse(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
    }
}
