//! Everything about credentials in one place: the [`Secret`] type, [`Auth`] and the forms in which
//! credentials travel, and the redaction of texts that may hold them: a URL's user-info, the
//! values of credential query parameters, and known secret values anywhere in a text. Whatever
//! shows a URL or a text that a server or a library built calls this module.

use std::fmt;

use reqwest::Url;

/// What a hidden credential is replaced with, in errors, logs, reports and Sentry events.
pub const REDACTED: &str = "[redacted]";

/// Forms shorter than this are never scrubbed: replacing them would mangle every text.
const MIN_SCRUBBED_LEN: usize = 3;

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

    /// The forms in which these credentials travel (a Basic password alone, `user:pass` and its
    /// base64; a token), for scrubbing texts.
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
        forms.retain(|f| f.len() >= MIN_SCRUBBED_LEN);
        forms
    }
}

/// Every form in which the value of a secret setting can appear in a text: the value as given and
/// as used (trimmed), and for credentials ([`Auth`]) the forms they travel in; for a Sentry DSN,
/// its key. Forms too short to scrub are left out.
pub fn forms_of_value(value: &str, is_credentials: bool) -> Vec<String> {
    use base64::Engine as _;
    let mut out = vec![value.to_string()];
    let used = value.trim();
    out.push(used.to_string());
    if is_credentials {
        out.push(base64::engine::general_purpose::STANDARD.encode(value));
        out.extend(Auth::parse(&Secret::new(used)).forms());
    }
    if let Ok(url) = Url::parse(used) {
        if !url.username().is_empty() {
            out.push(url.username().to_string());
        }
    }
    out.retain(|s| s.len() >= MIN_SCRUBBED_LEN);
    out
}

/// `text` with every one of `secrets` replaced by [`REDACTED`].
pub fn scrub(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), REDACTED))
}

/// `text` with every one of `secrets` replaced, and the user-info part of every URL in it
/// (`http://user:password@host`) too: a credential put into a URL is no known setting value.
pub fn redact_text(text: &str, secrets: &[String]) -> String {
    let cleaned = scrub(text, secrets);
    let mut out = String::with_capacity(cleaned.len());
    let mut rest = cleaned.as_str();
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '\\') || c.is_whitespace())
            .unwrap_or(after.len());
        out.push_str(&redact_user_info(&after[..end]));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// An authority (`user:password@host:port`) without its user-info.
fn redact_user_info(authority: &str) -> String {
    match authority.rfind('@') {
        Some(at) => format!("{REDACTED}{}", &authority[at..]),
        None => authority.to_string(),
    }
}

/// A URL-like value as typed by a user (with or without a scheme, maybe not even a valid URL),
/// without its user-info and without the values of its credential query parameters.
pub fn redact_url_text(value: &str) -> String {
    let (scheme, rest) = match value.find("://") {
        Some(i) => value.split_at(i + 3),
        None => ("", value),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
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
    format!("{scheme}{}{tail}", redact_user_info(authority))
}

/// Query parameters whose values are credentials (compared case-insensitively, `-` as `_`).
/// Kinto's own parameters (`_token` of `Next-Page` links, `_since`, ...) are not among them.
const SECRET_QUERY_PARAMS: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "auth",
    "key",
    "password",
    "secret",
    "signature",
    "token",
    "x_amz_credential",
    "x_amz_security_token",
    "x_amz_signature",
];

pub fn is_secret_query_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('-', "_");
    SECRET_QUERY_PARAMS.contains(&name.as_str())
}

/// A URL as it may be shown in an error, a log line or a report: without user-info, and with the
/// values of credential query parameters (`api_key=...`) replaced by [`REDACTED`]; the rest is
/// kept byte for byte. A presigned URL (SigV4 `X-Amz-Signature`) is shown without its query,
/// which is all signing material.
pub fn display_url(url: &Url) -> String {
    let presigned = url
        .query_pairs()
        .any(|(name, _)| name.eq_ignore_ascii_case("x-amz-signature"));
    if presigned {
        let mut shown = url.clone();
        shown.set_query(None);
        return redact_url_text(shown.as_str());
    }
    redact_url_text(url.as_str())
}

/// A query string (without `?`) with the values of its credential parameters (names compared
/// once decoded) replaced by [`REDACTED`]; every other pair is kept byte for byte.
pub fn redact_query(query: &str) -> String {
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let secret = form_urlencoded::parse(name.as_bytes())
                .next()
                .is_some_and(|(decoded, _)| is_secret_query_param(&decoded));
            if secret {
                format!("{name}={REDACTED}")
            } else {
                pair.to_string()
            }
        })
        .collect();
    pairs.join("&")
}

/// The values of a URL's credential query parameters, decoded and as sent, for scrubbing texts.
pub fn secret_query_values(url: &Url) -> Vec<String> {
    let mut values = Vec::new();
    for (name, value) in url.query_pairs() {
        if is_secret_query_param(&name) && !value.is_empty() {
            let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            values.push(encoded);
            values.push(value.into_owned());
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_values_parse_as_basic_or_bearer() {
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
        assert_eq!(format!("{}", Secret::new("x")), "(redacted)");
    }

    #[test]
    fn credentials_travel_as_the_pair_its_base64_and_the_password() {
        let forms = forms_of_value(" user:hunter2 ", true);
        for form in ["user:hunter2", "dXNlcjpodW50ZXIy", "hunter2"] {
            assert!(forms.iter().any(|f| f == form), "{form} in {forms:?}");
        }
        assert!(forms_of_value("k", false).is_empty(), "too short to scrub");
    }

    #[test]
    fn user_info_is_hidden_in_urls_typed_texts_and_free_text() {
        assert_eq!(
            redact_url_text("u:pw@host/v1?api_key=k&x=1#f"),
            "[redacted]@host/v1?api_key=[redacted]&x=1#f"
        );
        assert_eq!(
            redact_text("GET http://u:pw@h/x and https://h2/ok", &[]),
            "GET http://[redacted]@h/x and https://h2/ok"
        );
        let url = Url::parse("http://u:hunter2@h/p?token=abc&_token=next").unwrap();
        assert_eq!(
            display_url(&url),
            "http://[redacted]@h/p?token=[redacted]&_token=next"
        );
        assert_eq!(scrub("a hunter2 b", &["hunter2".into()]), "a [redacted] b");
    }
    #[test]
    fn redact_text_hides_secrets_and_url_user_info_only() {
        let text = "GET http://user:pw1@h:8/v1/x?a=b and https://tok@h2 \"ftp://a:b@c\" http://plain/path hunter2";
        let out = redact_text(text, &["hunter2".into()]);
        assert_eq!(
            out,
            "GET http://[redacted]@h:8/v1/x?a=b and https://[redacted]@h2 \"ftp://[redacted]@c\" http://plain/path [redacted]"
        );
    }

    #[test]
    fn secret_query_values_are_hidden_where_urls_are_shown() {
        let url = Url::parse(
            "https://r.example/api/queries/1/results.json?a=1&api_key=K3y-m4rker&Token=t0k#frag",
        )
        .unwrap();
        assert_eq!(
            display_url(&url),
            "https://r.example/api/queries/1/results.json?a=1&api_key=[redacted]&Token=[redacted]#frag"
        );
        // Kinto's pagination token and other parameters are shown as they are.
        let next = Url::parse("http://h/v1/buckets/b/collections/c/records?_limit=1&_token=abc%3D")
            .unwrap();
        assert_eq!(display_url(&next), next.as_str());
        let with_password = Url::parse("http://u:hunter2@h/v1/").unwrap();
        assert!(!display_url(&with_password).contains("hunter2"));
        assert!(is_secret_query_param("API-KEY") && !is_secret_query_param("_token"));
    }
}
