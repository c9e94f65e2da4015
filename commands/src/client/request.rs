//! What one request is ([`Request`]: method, URL, body, headers, its own credentials, deadline
//! and body cap) and what a successful answer is ([`Response`]: status, headers, the whole body).

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ClientErrorKind;

/// Bodies larger than this are refused (a changeset of 50,000 records is about 25 MB).
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// A successful response: status, headers and the whole body.
#[derive(Debug)]
pub struct Response {
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON of type `T`, for [`super::HttpClient::send_checked`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientErrorKind> {
        crate::json::from_slice(&self.body).map_err(ClientErrorKind::Shape)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request to make: method, target, optional JSON or raw body and extra headers.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub body: Option<Value>,
    /// A raw body (sent as is; give its `Content-Type` in `headers`). Ignored when `body` is set.
    pub bytes: Option<Vec<u8>>,
    pub headers: Vec<(&'static str, String)>,
    /// A deadline for the whole request instead of the per-read timeout, for requests whose
    /// server work grows with their size (a `/batch`).
    pub deadline: Option<Duration>,
    /// Refuse answers whose body grows beyond this many bytes (default [`MAX_BODY_BYTES`]).
    pub max_body: usize,
    /// Credentials this request carries in `headers` (see [`Request::secret_header`]): kept out
    /// of its error texts and retry log lines, like the client's own `AUTH`.
    pub secrets: Vec<String>,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Self {
        Request {
            method,
            url,
            body: None,
            bytes: None,
            headers: Vec::new(),
            deadline: None,
            max_body: MAX_BODY_BYTES,
            secrets: Vec::new(),
        }
    }
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    /// A header holding a credential (e.g. a token for a credentials endpoint): sent as is,
    /// never shown in this request's errors or logs even when the server echoes it.
    pub fn secret_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self.secrets.push(value.to_string());
        self
    }
    pub fn bytes(mut self, body: Vec<u8>) -> Self {
        self.bytes = Some(body);
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }
    /// Cap this answer's body (at most [`MAX_BODY_BYTES`]): reading stops as soon as it is
    /// exceeded, and the request fails without retry.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes.min(MAX_BODY_BYTES);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_cap_is_per_request_and_never_above_the_global_one() {
        let url = Url::parse("http://h/x").unwrap();
        assert_eq!(
            Request::new(Method::GET, url.clone()).max_body,
            MAX_BODY_BYTES
        );
        assert_eq!(
            Request::new(Method::GET, url.clone())
                .max_body(1024)
                .max_body,
            1024
        );
        assert_eq!(
            Request::new(Method::GET, url).max_body(usize::MAX).max_body,
            MAX_BODY_BYTES
        );
    }
}
