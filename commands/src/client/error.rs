//! Why a request failed: [`ClientErrorKind`] and [`ClientError`] (method, URL shown without its
//! credentials, attempts), their stable codes for JSON reports, the scrubbing of credentials a
//! server echoes back into an error text, and how an error body's detail is read
//! ([`ErrorDetail`], by default the JSON `message` field that Kinto and Redash send).

use reqwest::{Method, Url};
use serde_json::Value;

use crate::secrets::{display_url, scrub, secret_query_values};

/// Why a request failed, after retries where the failure was transient.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientErrorKind {
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("timed out")]
    Timeout,
    #[error("HTTP {status}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Status { status: u16, detail: Option<String> },
    #[error("invalid response body: {0}")]
    Body(String),
    #[error("response body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("unexpected response: {0}")]
    Shape(String),
    #[error("refused to follow {0}")]
    Forbidden(String),
}

/// A failed request: method, URL (never holding credentials: see [`crate::secrets::display_url`]) and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method} {url} failed{}: {kind}", if *attempts > 1 { format!(" after {attempts} attempts") } else { String::new() })]
pub struct ClientError {
    pub method: String,
    pub url: String,
    pub attempts: u32,
    pub kind: ClientErrorKind,
}

impl ClientErrorKind {
    /// The same kind with every one of `secrets` replaced, for texts a server or a library
    /// built from the request (an error body may echo the query string).
    pub(crate) fn without(self, secrets: &[String]) -> ClientErrorKind {
        if secrets.is_empty() {
            return self;
        }
        let clean = |text: String| scrub(&text, secrets);
        match self {
            ClientErrorKind::Connect(t) => ClientErrorKind::Connect(clean(t)),
            ClientErrorKind::Status { status, detail } => ClientErrorKind::Status {
                status,
                detail: detail.map(clean),
            },
            ClientErrorKind::Body(t) => ClientErrorKind::Body(clean(t)),
            ClientErrorKind::Shape(t) => ClientErrorKind::Shape(clean(t)),
            ClientErrorKind::Forbidden(t) => ClientErrorKind::Forbidden(clean(t)),
            kind @ (ClientErrorKind::Timeout | ClientErrorKind::TooLarge(_)) => kind,
        }
    }
}

impl ClientError {
    /// An error about `url`, shown without its credentials.
    pub fn new(method: &Method, url: &Url, attempts: u32, kind: ClientErrorKind) -> Self {
        ClientError {
            method: method.to_string(),
            url: display_url(url),
            attempts,
            kind: kind.without(&secret_query_values(url)),
        }
    }

    /// A stable code for JSON reports.
    pub fn code(&self) -> &'static str {
        match &self.kind {
            ClientErrorKind::Connect(_) => "CONNECTION_FAILED",
            ClientErrorKind::Timeout => "TIMEOUT",
            ClientErrorKind::Status { status, .. } if *status >= 500 => "SERVER_ERROR",
            ClientErrorKind::Status { status: 429, .. } => "TOO_MANY_REQUESTS",
            ClientErrorKind::Status { status: 404, .. } => "NOT_FOUND",
            ClientErrorKind::Status {
                status: 401 | 403, ..
            } => "FORBIDDEN",
            ClientErrorKind::Status { .. } => "HTTP_ERROR",
            ClientErrorKind::Body(_) => "INVALID_BODY",
            ClientErrorKind::TooLarge(_) => "BODY_TOO_LARGE",
            ClientErrorKind::Shape(_) => "UNEXPECTED_RESPONSE",
            ClientErrorKind::Forbidden(_) => "FORBIDDEN_URL",
        }
    }

    /// True when the server answered clearly (a 4xx other than 429): the run's problem is with
    /// that item, not with reaching the server.
    pub fn is_client_status(&self) -> bool {
        matches!(self.kind, ClientErrorKind::Status { status, .. } if (400..500).contains(&status) && status != 429)
    }

    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ClientErrorKind::Status { status, .. } => Some(status),
            _ => None,
        }
    }
}

/// How a view of the client reads the detail of an error body (a 4xx or 5xx answer's), shown
/// in the error as `HTTP 403 (detail)`. It must return one short line, and nothing of the body
/// that may hold credentials.
pub type ErrorDetail = fn(&[u8]) -> Option<String>;

/// The default [`ErrorDetail`]: the `message` of a JSON error body (Kinto's, Redash's).
pub fn json_error_detail(body: &[u8]) -> Option<String> {
    json_message(&serde_json::from_slice::<Value>(body).ok()?)
}

/// The `message` of a JSON error body, bounded to one short line.
pub fn json_message(body: &Value) -> Option<String> {
    Some(one_line(body.get("message")?.as_str()?))
}

/// The first line of `text`, at most 200 characters.
pub fn one_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_come_from_a_json_message() {
        assert_eq!(
            json_error_detail(br#"{"code": 403, "message": "Unauthorized"}"#).as_deref(),
            Some("Unauthorized")
        );
        assert_eq!(json_error_detail(b"<html>oops</html>"), None);
        assert_eq!(
            json_error_detail(br#"{"message": "first\nsecond"}"#).as_deref(),
            Some("first")
        );
    }

    #[test]
    fn presigned_urls_lose_their_query_in_errors() {
        let url = Url::parse(
            "http://s3/b/k.html?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID&X-Amz-Security-Token=tok&X-Amz-Signature=f00",
        )
        .unwrap();
        assert_eq!(display_url(&url), "http://s3/b/k.html");
        let err = ClientError::new(&Method::PUT, &url, 1, ClientErrorKind::Timeout);
        assert!(!err.to_string().contains("AKID") && !err.to_string().contains("tok"));
        // Without a signature, the credential parameters alone are still hidden.
        let url = Url::parse("http://s3/b/k.html?X-Amz-Security-Token=tok&x=1").unwrap();
        assert_eq!(
            display_url(&url),
            "http://s3/b/k.html?X-Amz-Security-Token=[redacted]&x=1"
        );
    }

    #[test]
    fn error_codes_and_messages() {
        let e = ClientError {
            method: "GET".into(),
            url: "http://h/v1/x".into(),
            attempts: 5,
            kind: ClientErrorKind::Status {
                status: 503,
                detail: Some("down".into()),
            },
        };
        assert_eq!(e.code(), "SERVER_ERROR");
        assert_eq!(
            e.to_string(),
            "GET http://h/v1/x failed after 5 attempts: HTTP 503 (down)"
        );
        assert!(!e.is_client_status());
    }
}
