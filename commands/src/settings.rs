//! Configuration, stage one and two: raw string values keyed by their environment variable name
//! (filled from flags and env by the CLI, or from a Lambda event), then typed, validated settings
//! built from them. Nothing below this module sees a raw value; every validation error names the
//! variable it is about.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use reqwest::Url;

/// A bad configuration value. Displays as one line naming the variable; never echoes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name}: {message}")]
pub struct SettingError {
    pub name: String,
    pub message: String,
}

impl SettingError {
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        SettingError {
            name: name.to_string(),
            message: message.into(),
        }
    }
}

/// Names of the settings that hold credentials: their values are never printed, and are scrubbed
/// from anything sent to Sentry.
pub fn is_secret_name(name: &str) -> bool {
    name == "AUTH"
        || name.ends_with("_AUTH")
        || name.ends_with("API_KEY")
        || name == "AWS_SECRET_ACCESS_KEY"
        || name == "AWS_SESSION_TOKEN"
        || name == "AWS_CONTAINER_AUTHORIZATION_TOKEN"
        || name == "SENTRY_DSN"
}

/// Raw values keyed by environment variable name. An empty value counts as unset, as it does for
/// the original's `os.getenv(...) or default` style settings.
#[derive(Clone, Default)]
pub struct RawSettings {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for RawSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.values {
            if is_secret_name(k) {
                map.entry(k, &"(redacted)");
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

impl RawSettings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings holding these values (tests, and callers that have pairs rather than flags).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let mut raw = Self::new();
        for (name, value) in pairs {
            raw.set(name, *value);
        }
        raw
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_string(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// Every credential value present, plus the forms in which it can travel (a Basic password
    /// alone, the base64 of `user:pass`), for scrubbing. Values shorter than 3 characters are
    /// left out, as [`Auth::forms`] does: replacing them would mangle every text.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, value) in &self.values {
            if !is_secret_name(name) || value.is_empty() {
                continue;
            }
            out.push(value.clone());
            if name.ends_with("AUTH") {
                // The forms the value travels in, from the value as it is used (trimmed).
                use base64::Engine as _;
                let used = value.trim();
                out.push(used.to_string());
                out.push(base64::engine::general_purpose::STANDARD.encode(value));
                out.extend(Auth::parse(&Secret::new(used)).forms());
            }
            if name == "SENTRY_DSN" {
                // Only the key part of a DSN is secret-ish; the whole value is scrubbed anyway.
                if let Ok(url) = Url::parse(value) {
                    if !url.username().is_empty() {
                        out.push(url.username().to_string());
                    }
                }
            }
        }
        out.retain(|s| s.len() >= 3);
        out.sort();
        out.dedup();
        out
    }

    /// Refuse any value holding a control character (a newline, a carriage return, NUL...) inside
    /// it: leading and trailing whitespace is trimmed by every reader, but a value such as
    /// `http://host\nname/v1` would otherwise be read silently (URL parsing drops newlines) or end
    /// up in a header. Only the settings of [`MULTI_LINE_SETTINGS`] may hold newlines and tabs.
    /// The error names the variable and the character's position, never the value (it may be
    /// a credential, and would print on several lines).
    pub fn check_control_characters(&self) -> Result<(), SettingError> {
        for (name, value) in &self.values {
            let multi_line = MULTI_LINE_SETTINGS.contains(&name.as_str());
            let bad =
                value.trim().chars().enumerate().find(|(_, c)| {
                    c.is_control() && !(multi_line && matches!(c, '\n' | '\r' | '\t'))
                });
            if let Some((position, c)) = bad {
                return Err(SettingError::new(
                    name,
                    format!(
                        "the value holds a control character (U+{:04X}) at character {}{}",
                        c as u32,
                        position + 1,
                        if multi_line {
                            ""
                        } else {
                            ": it must be one line"
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).trim().to_string()
    }

    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.get(name).map(|v| Secret::new(v.trim()))
    }

    pub fn float(&self, name: &str, default: f64, min_exclusive: f64) -> Result<f64, SettingError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let value: f64 = raw
            .trim()
            .parse()
            .map_err(|_| SettingError::new(name, format!("{} is not a number", quote(raw))))?;
        if !value.is_finite() || value <= min_exclusive {
            return Err(SettingError::new(
                name,
                format!(
                    "{} must be a number greater than {min_exclusive}",
                    quote(raw)
                ),
            ));
        }
        Ok(value)
    }

    pub fn duration_secs(&self, name: &str, default: f64) -> Result<Duration, SettingError> {
        let secs = self.float(name, default, 0.0)?;
        if secs > 3600.0 {
            return Err(SettingError::new(
                name,
                format!("{secs} seconds is more than one hour"),
            ));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    pub fn uint(&self, name: &str, default: u64, max: u64) -> Result<u64, SettingError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let value: u64 = raw.trim().parse().map_err(|_| {
            SettingError::new(name, format!("{} is not a whole number >= 0", quote(raw)))
        })?;
        if value > max {
            return Err(SettingError::new(
                name,
                format!("{value} is more than the maximum {max}"),
            ));
        }
        Ok(value)
    }

    pub fn nonzero(
        &self,
        name: &str,
        default: usize,
        max: usize,
    ) -> Result<NonZeroUsize, SettingError> {
        let value = self.uint(name, default as u64, max as u64)?;
        NonZeroUsize::new(value as usize)
            .ok_or_else(|| SettingError::new(name, "must be at least 1, got 0"))
    }

    pub fn flag(&self, name: &str) -> Result<bool, SettingError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(SettingError::new(
                    name,
                    format!("{} is not a boolean (use 1/0, true/false)", quote(&v)),
                )),
            },
        }
    }

    /// A list separated by `delimiter`, each item trimmed, empty items dropped (as the
    /// original's `decouple.Csv`).
    pub fn list(&self, name: &str, default: &str, delimiter: char) -> Vec<String> {
        self.get(name)
            .unwrap_or(default)
            .split(delimiter)
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// A Kinto object id (bucket or collection): `[A-Za-z0-9][A-Za-z0-9_-]*`.
    pub fn kinto_id(&self, name: &str, default: &str) -> Result<String, SettingError> {
        let value = self.string_or(name, default);
        if !is_kinto_id(&value) {
            return Err(SettingError::new(
                name,
                format!(
                    "{} is not a Kinto id (letters, digits, '-' and '_')",
                    quote(&value)
                ),
            ));
        }
        Ok(value)
    }

    /// An http(s) URL without credentials in it (a query string is allowed).
    pub fn http_url(&self, name: &str, default: &str) -> Result<Url, SettingError> {
        let raw = self.string_or(name, default);
        let url = Url::parse(&raw).map_err(|e| {
            SettingError::new(name, format!("{} is not a URL ({e})", quote_url(&raw)))
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(SettingError::new(
                name,
                format!("{} is not an http(s) URL", quote_url(&raw)),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SettingError::new(name, "the URL has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(SettingError::new(
                name,
                "the URL must not hold credentials: use AUTH",
            ));
        }
        Ok(url)
    }

    /// An http(s) base URL without credentials, normalised to end with `/`.
    pub fn server_url(&self, name: &str, default: &str) -> Result<Url, SettingError> {
        let mut url = self.http_url(name, default)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(SettingError::new(
                name,
                "the URL must not have a query string or fragment",
            ));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }
}

/// The settings whose values may span several lines: one mapping per line, and JSON that may be
/// pretty-printed.
pub const MULTI_LINE_SETTINGS: &[&str] = &[
    "BACKPORT_RECORDS_MAPPINGS",
    "BACKPORT_RECORDS_SOURCE_FILTERS",
];

pub fn is_kinto_id(value: &str) -> bool {
    let mut chars = value.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && value.len() <= 256
}

/// Quote a user value for an error message, one line, bounded.
pub fn quote(value: &str) -> String {
    let mut s: String = value.chars().take(80).collect();
    if value.chars().count() > 80 {
        s.push('…');
    }
    format!("{s:?}")
}

/// Quote a URL-like value for an error message, as [`quote`], without what may be a credential:
/// the user-info part (`user:password@`, with or without a scheme) and the values of credential
/// query parameters (`api_key=...`) show as `[redacted]`.
pub fn quote_url(value: &str) -> String {
    use crate::client::{redact_query, REDACTED_VALUE};
    let (scheme, rest) = match value.find("://") {
        Some(i) => value.split_at(i + 3),
        None => ("", value),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("{REDACTED_VALUE}{}", &authority[at..]),
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        None => tail.to_string(),
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, format!("#{f}")),
                None => (query, String::new()),
            };
            format!("{path}?{}{fragment}", redact_query(query))
        }
    };
    quote(&format!("{scheme}{authority}{tail}"))
}

/// A credential. `Debug` and `Display` print `(redacted)`; only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// Credentials for the Kinto server: `user:pass` is Basic auth, anything else a Bearer token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    Basic { user: String, password: Secret },
    Bearer(Secret),
}

impl Auth {
    pub fn parse(value: &Secret) -> Auth {
        match value.expose().split_once(':') {
            Some((user, password)) => Auth::Basic {
                user: user.to_string(),
                password: Secret::new(password),
            },
            None => {
                let token = value.expose();
                // Accept a value that already says "Bearer xyz".
                let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
                Auth::Bearer(Secret::new(token))
            }
        }
    }

    pub fn from_settings(raw: &RawSettings, name: &str) -> Option<Auth> {
        raw.secret(name).map(|s| Auth::parse(&s))
    }

    /// The forms in which these credentials travel (a Basic password alone, `user:pass` and its
    /// base64; a token), for scrubbing texts. Forms shorter than 3 characters are left out: they
    /// would mangle every text.
    pub fn forms(&self) -> Vec<String> {
        use base64::Engine as _;
        let mut forms = Vec::new();
        match self {
            Auth::Basic { user, password } => {
                let pair = format!("{user}:{}", password.expose());
                forms.push(base64::engine::general_purpose::STANDARD.encode(&pair));
                forms.push(pair);
                forms.push(password.expose().to_string());
            }
            Auth::Bearer(token) => forms.push(token.expose().to_string()),
        }
        forms.retain(|f| f.len() >= 3);
        forms
    }
}

/// Everything the HTTP client needs, validated.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub server: Url,
    pub timeout: Duration,
    pub retries: u32,
    pub parallel: NonZeroUsize,
    pub retry_backoff: Duration,
    pub auth: Option<Auth>,
}

pub const DEFAULT_SERVER: &str = "http://localhost:8888/v1";

impl HttpSettings {
    /// The settings shared by every command; `auth_name` is the variable holding this command's
    /// credentials (`AUTH`, `REFRESH_SIGNATURE_AUTH`, ...).
    pub fn from_settings(raw: &RawSettings, auth_name: &str) -> Result<Self, SettingError> {
        let server = raw.server_url("SERVER", DEFAULT_SERVER)?;
        Ok(HttpSettings {
            auth: Auth::from_settings(raw, auth_name),
            ..HttpSettings::for_service(raw, server)?
        })
    }

    /// The shared request settings (timeout, retries, backoff, in-flight cap) for a client of
    /// another service than the Kinto server (e.g. Redash): `SERVER` and `AUTH` are not read, and
    /// no credentials are attached.
    pub fn for_service(raw: &RawSettings, server: Url) -> Result<Self, SettingError> {
        Ok(HttpSettings {
            server,
            timeout: raw.duration_secs("REQUESTS_TIMEOUT_SECONDS", 2.0)?,
            retries: raw.uint("REQUESTS_NB_RETRIES", 4, 20)? as u32,
            parallel: raw.nonzero("PARALLEL_REQUESTS", 4, 256)?,
            retry_backoff: raw.duration_secs("REQUESTS_RETRY_BACKOFF_SECONDS", 0.5)?,
            auth: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original() {
        let s = HttpSettings::from_settings(&RawSettings::new(), "AUTH").unwrap();
        assert_eq!(s.server.as_str(), "http://localhost:8888/v1/");
        assert_eq!(s.timeout, Duration::from_secs(2));
        assert_eq!(s.retries, 4);
        assert_eq!(s.parallel.get(), 4);
        assert!(s.auth.is_none());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("PARALLEL_REQUESTS", "0"),
            ("PARALLEL_REQUESTS", "abc"),
            ("REQUESTS_TIMEOUT_SECONDS", "-1"),
            ("REQUESTS_TIMEOUT_SECONDS", "nan"),
            ("REQUESTS_NB_RETRIES", "1.5"),
            ("SERVER", "ftp://example.com"),
            ("SERVER", "not a url"),
        ] {
            let err =
                HttpSettings::from_settings(&RawSettings::from_pairs(&[(name, value)]), "AUTH")
                    .unwrap_err();
            assert_eq!(err.name, name);
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn server_with_credentials_is_refused_without_echoing_them() {
        let err = RawSettings::from_pairs(&[("SERVER", "http://u:hunter2@h/v1")])
            .server_url("SERVER", DEFAULT_SERVER)
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn auth_forms() {
        assert_eq!(
            Auth::parse(&Secret::new("user:p:ss")),
            Auth::Basic {
                user: "user".into(),
                password: Secret::new("p:ss")
            }
        );
        assert_eq!(
            Auth::parse(&Secret::new("Bearer tok")),
            Auth::Bearer(Secret::new("tok"))
        );
        assert_eq!(format!("{:?}", Secret::new("x")), "(redacted)");
        let dbg = format!("{:?}", RawSettings::from_pairs(&[("AUTH", "user:hunter2")]));
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn secret_values_cover_header_forms() {
        let v = RawSettings::from_pairs(&[("AUTH", "user:hunter2"), ("SERVER", "http://x")])
            .secret_values();
        assert!(v.contains(&"hunter2".to_string()));
        assert!(v.contains(&"dXNlcjpodW50ZXIy".to_string()));
        assert!(!v.iter().any(|s| s == "http://x"));
    }

    #[test]
    fn secret_values_leave_out_what_is_too_short_to_scrub() {
        let v =
            RawSettings::from_pairs(&[("AUTH", "u:pw"), ("REDASH_API_KEY", "k")]).secret_values();
        assert_eq!(v, ["dTpwdw==", "u:pw"], "{v:?}");
    }

    #[test]
    fn secret_values_cover_bearer_tokens_and_padded_values() {
        let v = RawSettings::from_pairs(&[("AUTH", "Bearer tok-123\n")]).secret_values();
        assert!(v.contains(&"tok-123".to_string()), "{v:?}");
        let v = RawSettings::from_pairs(&[("REFRESH_SIGNATURE_AUTH", " user:hunter2 ")])
            .secret_values();
        // base64("user:hunter2"), as the header carries the trimmed value.
        assert!(v.contains(&"dXNlcjpodW50ZXIy".to_string()), "{v:?}");
    }

    #[test]
    fn service_settings_ignore_server_and_auth() {
        let r = RawSettings::from_pairs(&[
            ("SERVER", "not a url"),
            ("AUTH", "u:p"),
            ("REQUESTS_NB_RETRIES", "2"),
        ]);
        let s =
            HttpSettings::for_service(&r, Url::parse("https://redash.example/").unwrap()).unwrap();
        assert_eq!(s.server.as_str(), "https://redash.example/");
        assert!(s.auth.is_none());
        assert_eq!(s.retries, 2);
    }

    #[test]
    fn http_urls_keep_their_query_and_refuse_credentials() {
        let r =
            RawSettings::from_pairs(&[("U", "https://h/api/q.json?x=1"), ("P", "https://u:pw@h/")]);
        assert_eq!(
            r.http_url("U", "").unwrap().as_str(),
            "https://h/api/q.json?x=1"
        );
        assert!(!r.http_url("P", "").unwrap_err().to_string().contains("pw"));
    }

    #[test]
    fn bad_urls_are_quoted_without_their_credentials() {
        for value in [
            "ftp://u:pw-secret@h/v1",
            "http://u:pw-secret@ho st/v1",
            "u:pw-secret@host/v1",
            "gopher://h/q?api_key=pw-secret&x=1",
            "gopher://h/q?x=1&api%5Fkey=pw-secret",
            "not a url?token=pw-secret#f",
        ] {
            for name in ["SERVER", "REDASH_API_QUERY_URL", "AWS_ENDPOINT_URL"] {
                let err = RawSettings::from_pairs(&[(name, value)])
                    .http_url(name, "")
                    .unwrap_err();
                let text = err.to_string();
                assert!(!text.contains("pw-secret"), "{value}: {text}");
                assert!(text.contains("[redacted]"), "{value}: {text}");
            }
        }
        assert_eq!(quote_url("ftp://h/p?x=1"), "\"ftp://h/p?x=1\"");
    }

    #[test]
    fn lists_are_trimmed_without_empty_items() {
        let r = RawSettings::from_pairs(&[("L", " a/* , b ,, c ")]);
        assert_eq!(r.list("L", "", ','), vec!["a/*", "b", "c"]);
        assert_eq!(r.list("MISSING", "x;y", ';'), vec!["x", "y"]);
    }

    #[test]
    fn control_characters_inside_values_are_refused_without_echoing_them() {
        // Trailing newlines (a value read from a file) are trimmed as before.
        RawSettings::from_pairs(&[("SERVER", "http://h/v1\n"), ("AUTH", " u:p\r\n")])
            .check_control_characters()
            .unwrap();
        for (name, value, position) in [
            ("SERVER", "http://local\nhost/v1", 13),
            ("AUTH", "user:hunter\r\n2", 12),
            ("BUCKET", "main\u{0}x", 5),
            ("PARALLEL_REQUESTS", "4\u{1b}[2J", 2),
            ("BACKPORT_RECORDS_MAPPINGS", "a/b -> c/d\u{7}", 11),
        ] {
            let err = RawSettings::from_pairs(&[(name, value)])
                .check_control_characters()
                .unwrap_err();
            assert_eq!(err.name, name);
            let text = err.to_string();
            assert!(!text.chars().any(char::is_control), "{text:?}");
            assert!(text.contains(&format!("at character {position}")), "{text}");
            assert!(
                !text.contains("hunter") && !text.contains("local"),
                "{text}"
            );
        }
        // Mappings are one per line, filters may be pretty-printed JSON.
        RawSettings::from_pairs(&[
            ("BACKPORT_RECORDS_MAPPINGS", "a/b -> c/d\r\n\te/f -> g/h"),
            ("BACKPORT_RECORDS_SOURCE_FILTERS", "{\n  \"a\": 1\n}"),
        ])
        .check_control_characters()
        .unwrap();
    }

    #[test]
    fn kinto_ids() {
        assert!(is_kinto_id("main-workspace"));
        assert!(is_kinto_id("a_b"));
        assert!(!is_kinto_id("../x"));
        assert!(!is_kinto_id("a%2Fb"));
        assert!(!is_kinto_id(""));
        assert!(!is_kinto_id("é"));
    }
}
