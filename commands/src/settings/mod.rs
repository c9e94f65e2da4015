//! Configuration, stage one and two: raw string values keyed by their environment variable name
//! (filled from flags and env by the CLI, or from a Lambda event), then typed, validated settings
//! built from them. Readers take a setting's declaration ([`declare::Setting`]): its name and its
//! real default come from there, and in debug builds a command that reads a setting it did not
//! declare panics. Nothing below this module sees a raw value; every validation error names the
//! variable it is about.

pub mod declare;
mod http;
pub mod shared;

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use reqwest::Url;

pub use declare::{Setting, Shape};
pub use http::{HttpSettings, ServerSettings};

use crate::secrets::{self, Secret};

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

/// Raw values keyed by environment variable name, with the declarations of the settings the run
/// may read. An empty value counts as unset, as it does for the original's
/// `os.getenv(...) or default` style settings.
#[derive(Clone, Default)]
pub struct RawSettings {
    values: BTreeMap<String, String>,
    /// What the command declared; empty for settings built by hand (tests), which are unchecked.
    declared: Vec<&'static Setting>,
}

impl fmt::Debug for RawSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.values {
            if self.is_secret(k) {
                map.entry(k, &Secret::new(v.as_str()));
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

    /// Settings for a run that declares these settings: only they may be read, and the secret
    /// ones are scrubbed.
    pub fn declaring(declared: Vec<&'static Setting>) -> Self {
        RawSettings {
            values: BTreeMap::new(),
            declared,
        }
    }

    /// The same values, for a run that declares these settings.
    pub fn with_declared(mut self, declared: Vec<&'static Setting>) -> Self {
        self.declared = declared;
        self
    }

    pub fn declared(&self) -> &[&'static Setting] {
        &self.declared
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

    /// The value of a setting, untrimmed, `None` when unset or blank.
    pub fn get(&self, setting: &Setting) -> Option<&str> {
        self.check_declared(setting);
        self.get_named(setting.env)
    }

    /// The value of the declared setting with this variable name (tests, and messages that
    /// hold names rather than declarations).
    pub fn value_of(&self, name: &str) -> Option<&str> {
        match self.declared.iter().find(|d| d.env == name) {
            Some(setting) => self.get(setting),
            None => self.get_named(name),
        }
    }

    fn get_named(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// A run reads only what its command declared (debug builds: a test fails otherwise).
    fn check_declared(&self, setting: &Setting) {
        debug_assert!(
            self.declared.is_empty() || self.declared.iter().any(|d| **d == *setting),
            "the command reads {} without declaring it",
            setting.env
        );
    }

    /// The value, or the declared default value, or `None`.
    fn value_or_default(&self, setting: &Setting) -> Option<&str> {
        match (self.get(setting), setting.default) {
            (Some(value), _) => Some(value),
            (None, declare::Default::Value(default)) => Some(default),
            (None, _) => None,
        }
    }

    fn is_secret(&self, name: &str) -> bool {
        self.declared.iter().any(|d| d.env == name && d.secret)
    }

    /// Every secret value present, plus the forms in which it can travel (a Basic password
    /// alone, the base64 of `user:pass`), for scrubbing. Which settings are secret is declared.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, value) in &self.values {
            if value.is_empty() || !self.is_secret(name) {
                continue;
            }
            let credentials = self
                .declared
                .iter()
                .any(|d| d.env == name.as_str() && d.value_name == "CREDENTIALS");
            out.extend(secrets::forms_of_value(value, credentials));
        }
        out.sort();
        out.dedup();
        out
    }

    /// Refuse any value holding a control character (a newline, a carriage return, NUL...) inside
    /// it: leading and trailing whitespace is trimmed by every reader, but a value such as
    /// `http://host\nname/v1` would otherwise be read silently (URL parsing drops newlines) or end
    /// up in a header. Only multi-line settings ([`Setting::multi_line`]) may hold newlines and
    /// tabs. The error names the variable and the character's position, never the value (it may
    /// be a credential, and would print on several lines).
    pub fn check_control_characters(&self) -> Result<(), SettingError> {
        for (name, value) in &self.values {
            let multi_line = self
                .declared
                .iter()
                .any(|d| d.env == name.as_str() && d.multi_line());
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

    /// The value or the declared default, trimmed (empty when neither).
    pub fn string(&self, setting: &Setting) -> String {
        self.value_or_default(setting)
            .unwrap_or("")
            .trim()
            .to_string()
    }

    pub fn secret(&self, setting: &Setting) -> Option<Secret> {
        self.get(setting).map(|v| Secret::new(v.trim()))
    }

    pub fn float(
        &self,
        setting: &Setting,
        min_exclusive: f64,
    ) -> Result<Option<f64>, SettingError> {
        let name = setting.env;
        let Some(raw) = self.value_or_default(setting) else {
            return Ok(None);
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
        Ok(Some(value))
    }

    /// A duration in seconds, greater than 0 and at most one hour (declared with a default).
    pub fn duration_secs(&self, setting: &Setting) -> Result<Duration, SettingError> {
        let secs = self.float(setting, 0.0)?.unwrap_or(0.0);
        if secs > 3600.0 {
            return Err(SettingError::new(
                setting.env,
                format!("{secs} seconds is more than one hour"),
            ));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// A whole number up to `max`; `None` when unset without a declared default value.
    pub fn uint_opt(&self, setting: &Setting, max: u64) -> Result<Option<u64>, SettingError> {
        let name = setting.env;
        let Some(raw) = self.value_or_default(setting) else {
            return Ok(None);
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
        Ok(Some(value))
    }

    /// A whole number up to `max`, declared with a default value.
    pub fn uint(&self, setting: &Setting, max: u64) -> Result<u64, SettingError> {
        Ok(self.uint_opt(setting, max)?.unwrap_or(0))
    }

    pub fn nonzero(&self, setting: &Setting, max: usize) -> Result<NonZeroUsize, SettingError> {
        let value = self.uint(setting, max as u64)?;
        NonZeroUsize::new(value as usize)
            .ok_or_else(|| SettingError::new(setting.env, "must be at least 1, got 0"))
    }

    pub fn flag(&self, setting: &Setting) -> Result<bool, SettingError> {
        match self
            .value_or_default(setting)
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => Ok(false),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(SettingError::new(
                    setting.env,
                    format!("{} is not a boolean (use 1/0, true/false)", quote(&v)),
                )),
            },
        }
    }

    /// A list separated by `delimiter`, each item trimmed, empty items dropped (as the
    /// original's `decouple.Csv`).
    pub fn list(&self, setting: &Setting, delimiter: char) -> Vec<String> {
        self.value_or_default(setting)
            .unwrap_or("")
            .split(delimiter)
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// A Kinto object id (bucket or collection): `[A-Za-z0-9][A-Za-z0-9_-]*`; `fallback` when
    /// unset without a declared default value (a derived default).
    pub fn kinto_id_or(&self, setting: &Setting, fallback: &str) -> Result<String, SettingError> {
        let value = match self.value_or_default(setting) {
            Some(value) => value.trim().to_string(),
            None => fallback.to_string(),
        };
        if !is_kinto_id(&value) {
            return Err(SettingError::new(
                setting.env,
                format!(
                    "{} is not a Kinto id (letters, digits, '-' and '_')",
                    quote(&value)
                ),
            ));
        }
        Ok(value)
    }

    /// A Kinto object id, declared with a default value or required.
    pub fn kinto_id(&self, setting: &Setting) -> Result<String, SettingError> {
        self.kinto_id_or(setting, "")
    }

    /// An http(s) URL without credentials in it (a query string is allowed).
    pub fn http_url(&self, setting: &Setting) -> Result<Url, SettingError> {
        let name = setting.env;
        let raw = self.string(setting);
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
    pub fn server_url(&self, setting: &Setting) -> Result<Url, SettingError> {
        let mut url = self.http_url(setting)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(SettingError::new(
                setting.env,
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

/// Quote a URL-like value for an error message, as [`quote`], without what may be a credential
/// (see [`secrets::redact_url_text`]).
pub fn quote_url(value: &str) -> String {
    quote(&secrets::redact_url_text(value))
}

#[cfg(test)]
mod tests {
    use super::shared::{AUTH, GLOBAL, MONITOR_BUCKET, SERVER};
    use super::*;
    use crate::secrets::Auth;

    const LIST: Setting = Setting::new("L", "ITEMS", "a list").default("x;y");
    const MAPPINGS: Setting = Setting::new("MAPPINGS", "LINES", "lines").shape(Shape::Lines);
    const FILTERS: Setting = Setting::new("FILTERS", "JSON", "json").shape(Shape::Json);
    const API_KEY: Setting = Setting::new("REDASH_API_KEY", "KEY", "a key").secret();
    const RUN_AUTH: Setting = Setting::credentials("REFRESH_SIGNATURE_AUTH", "creds");

    fn declared(pairs: &[(&str, &str)], extra: &[&'static Setting]) -> RawSettings {
        let mut declared: Vec<&'static Setting> = GLOBAL.to_vec();
        declared.extend_from_slice(extra);
        let mut raw = RawSettings::declaring(declared);
        for (name, value) in pairs {
            raw.set(name, *value);
        }
        raw
    }

    #[test]
    fn defaults_match_the_original() {
        let server = ServerSettings::from_settings(&RawSettings::new(), &AUTH).unwrap();
        assert_eq!(server.url.as_str(), "http://localhost:8888/v1/");
        assert!(server.auth.is_none());
        let s = HttpSettings::from_settings(&RawSettings::new()).unwrap();
        assert_eq!(s.timeout, Duration::from_secs(2));
        assert_eq!(s.retries, 4);
        assert_eq!(s.parallel.get(), 4);
        assert_eq!(s.retry_backoff, Duration::from_millis(500));
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
            let raw = RawSettings::from_pairs(&[(name, value)]);
            let err = match name {
                "SERVER" => ServerSettings::from_settings(&raw, &AUTH).unwrap_err(),
                _ => HttpSettings::from_settings(&raw).unwrap_err(),
            };
            assert_eq!(err.name, name);
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    #[should_panic(expected = "the command reads BUCKET without declaring it")]
    fn reading_an_undeclared_setting_fails() {
        let _ = declared(&[], &[]).get(&MONITOR_BUCKET);
    }

    #[test]
    fn a_declared_setting_with_the_same_name_is_another_setting() {
        const BLOCKLISTS: Setting = Setting::new("BUCKET", "ID", "blocklists").default("b");
        let raw = declared(&[], &[&BLOCKLISTS]);
        assert_eq!(raw.kinto_id(&BLOCKLISTS).unwrap(), "b");
        let read = std::panic::catch_unwind(|| raw.kinto_id(&MONITOR_BUCKET));
        assert!(read.is_err(), "the monitor's BUCKET was not declared");
    }

    #[test]
    fn server_with_credentials_is_refused_without_echoing_them() {
        let err = RawSettings::from_pairs(&[("SERVER", "http://u:hunter2@h/v1")])
            .server_url(&SERVER)
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn declared_secrets_are_never_shown_in_debug() {
        let dbg = format!("{:?}", declared(&[("AUTH", "user:hunter2")], &[]));
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert_eq!(
            Auth::parse(&Secret::new("user:p")),
            Auth::Basic {
                user: "user".into(),
                password: Secret::new("p")
            }
        );
    }

    #[test]
    fn secret_values_cover_header_forms() {
        let v = declared(&[("AUTH", "user:hunter2"), ("SERVER", "http://x")], &[]).secret_values();
        assert!(v.contains(&"hunter2".to_string()));
        assert!(v.contains(&"dXNlcjpodW50ZXIy".to_string()));
        assert!(!v.iter().any(|s| s == "http://x"));
    }

    #[test]
    fn secret_values_leave_out_what_is_too_short_to_scrub() {
        let v = declared(&[("AUTH", "u:pw"), ("REDASH_API_KEY", "k")], &[&API_KEY]).secret_values();
        assert_eq!(v, ["dTpwdw==", "u:pw"], "{v:?}");
    }

    #[test]
    fn secret_values_cover_bearer_tokens_and_padded_values() {
        let v = declared(&[("AUTH", "Bearer tok-123\n")], &[]).secret_values();
        assert!(v.contains(&"tok-123".to_string()), "{v:?}");
        let v = declared(
            &[("REFRESH_SIGNATURE_AUTH", " user:hunter2 ")],
            &[&RUN_AUTH],
        )
        .secret_values();
        // base64("user:hunter2"), as the header carries the trimmed value.
        assert!(v.contains(&"dXNlcjpodW50ZXIy".to_string()), "{v:?}");
    }

    #[test]
    fn undeclared_values_are_not_taken_for_secrets() {
        let v = declared(&[("SOMETHING_AUTH", "user:hunter2")], &[]).secret_values();
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn the_client_settings_ignore_server_and_auth() {
        let r = RawSettings::from_pairs(&[
            ("SERVER", "not a url"),
            ("AUTH", "u:p"),
            ("REQUESTS_NB_RETRIES", "2"),
        ]);
        // A bad SERVER does not stop a command that never reads it (uptake_health).
        let s = HttpSettings::from_settings(&r).unwrap();
        assert_eq!(s.retries, 2);
        assert_eq!(
            ServerSettings::from_settings(&r, &AUTH).unwrap_err().name,
            "SERVER"
        );
    }

    #[test]
    fn http_urls_keep_their_query_and_refuse_credentials() {
        const U: Setting = Setting::new("U", "URL", "u");
        const P: Setting = Setting::new("P", "URL", "p");
        let r =
            RawSettings::from_pairs(&[("U", "https://h/api/q.json?x=1"), ("P", "https://u:pw@h/")]);
        assert_eq!(r.http_url(&U).unwrap().as_str(), "https://h/api/q.json?x=1");
        assert!(!r.http_url(&P).unwrap_err().to_string().contains("pw"));
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
                let setting = Setting::new(name, "URL", "a URL");
                let err = RawSettings::from_pairs(&[(name, value)])
                    .http_url(&setting)
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
        assert_eq!(r.list(&LIST, ','), vec!["a/*", "b", "c"]);
        assert_eq!(RawSettings::new().list(&LIST, ';'), vec!["x", "y"]);
    }

    #[test]
    fn defaults_are_read_through_the_same_checks_as_values() {
        const BAD_DEFAULT: Setting = Setting::new("N", "N", "n").default("many");
        let err = RawSettings::new().uint(&BAD_DEFAULT, 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid N: \"many\" is not a whole number >= 0"
        );
    }

    #[test]
    fn control_characters_inside_values_are_refused_without_echoing_them() {
        // Trailing newlines (a value read from a file) are trimmed as before.
        declared(&[("SERVER", "http://h/v1\n"), ("AUTH", " u:p\r\n")], &[])
            .check_control_characters()
            .unwrap();
        for (name, value, position) in [
            ("SERVER", "http://local\nhost/v1", 13),
            ("AUTH", "user:hunter\r\n2", 12),
            ("BUCKET", "main\u{0}x", 5),
            ("PARALLEL_REQUESTS", "4\u{1b}[2J", 2),
            ("MAPPINGS", "a/b -> c/d\u{7}", 11),
        ] {
            let err = declared(&[(name, value)], &[&MAPPINGS])
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
        declared(
            &[
                ("MAPPINGS", "a/b -> c/d\r\n\te/f -> g/h"),
                ("FILTERS", "{\n  \"a\": 1\n}"),
            ],
            &[&MAPPINGS, &FILTERS],
        )
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
