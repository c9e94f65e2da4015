//! The one HTTP client every command uses. It owns timeouts, retries with exponential backoff and
//! jitter (connection errors, timeouts, 5xx, 429, honouring `Retry-After` and Kinto's `Backoff`),
//! `Next-Page` pagination, authentication (sent only to the server's origin), a global cap on
//! requests in flight, and errors that carry the method and URL but never the credentials.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::settings::{Auth, HttpSettings};

pub const USER_AGENT_VALUE: &str = concat!("remote-settings-lambdas/", env!("CARGO_PKG_VERSION"));

/// The longest wait a server can impose through `Retry-After` or `Backoff`.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(60);
/// The longest backoff between two attempts computed by the client itself.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Bodies larger than this are refused (a changeset of 50,000 records is about 25 MB).
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

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

/// A failed request: method, URL (never holding credentials) and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method} {url} failed{}: {kind}", if *attempts > 1 { format!(" after {attempts} attempts") } else { String::new() })]
pub struct ClientError {
    pub method: String,
    pub url: String,
    pub attempts: u32,
    pub kind: ClientErrorKind,
}

impl ClientError {
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

/// A successful response: status, headers and the whole body.
#[derive(Debug)]
pub struct Response {
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON of type `T`, for [`KintoClient::send_checked`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientErrorKind> {
        serde_json::from_slice(&self.body).map_err(|e| ClientErrorKind::Shape(e.to_string()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request to make: method, target, optional JSON body and extra headers.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    /// Refuse answers whose body grows beyond this many bytes (default [`MAX_BODY_BYTES`]).
    pub max_body: usize,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Self {
        Request {
            method,
            url,
            body: None,
            headers: Vec::new(),
            max_body: MAX_BODY_BYTES,
        }
    }
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    /// Cap this answer's body (at most [`MAX_BODY_BYTES`]): reading stops as soon as it is
    /// exceeded, and the request fails without retry.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes.min(MAX_BODY_BYTES);
        self
    }
}

/// The client. Cheap to clone: clones share the in-flight cap and the server's backoff.
#[derive(Clone)]
pub struct KintoClient {
    http: reqwest::Client,
    server: Url,
    auth_header: Option<HeaderValue>,
    retries: u32,
    retry_backoff: Duration,
    in_flight: Arc<Semaphore>,
    backoff_until: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for KintoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KintoClient")
            .field("server", &self.server.as_str())
            .field("auth", &self.auth_header.as_ref().map(|_| "(redacted)"))
            .finish()
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn auth_header(auth: &Auth) -> HeaderValue {
    use base64::Engine as _;
    let raw = match auth {
        Auth::Basic { user, password } => {
            let pair = format!("{user}:{}", password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
        Auth::Bearer(token) => format!("Bearer {}", token.expose()),
    };
    let mut value =
        HeaderValue::from_str(&raw).unwrap_or_else(|_| HeaderValue::from_static("Invalid"));
    value.set_sensitive(true);
    value
}

/// Build the shared reqwest client: rustls, timeouts, User-Agent, and redirects followed only
/// within the same origin (a redirect elsewhere is an error, so nothing leaks to another host).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let same = attempt
                .previous()
                .first()
                .is_some_and(|first| same_origin(first, attempt.url()));
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if same {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .build()
        .expect("the TLS backend initialises")
}

/// Text of the innermost cause of a reqwest error, which names what went wrong (connection
/// refused, reset...) without repeating the URL.
fn root_cause(err: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = err;
    while let Some(next) = source.source() {
        source = next;
    }
    let text = source.to_string();
    if text.contains("http://") || text.contains("https://") {
        "request failed".to_string()
    } else {
        text
    }
}

fn classify(err: &reqwest::Error) -> ClientErrorKind {
    if err.is_timeout() {
        ClientErrorKind::Timeout
    } else if err.is_connect() || err.is_request() {
        ClientErrorKind::Connect(root_cause(err))
    } else {
        ClientErrorKind::Body(root_cause(err))
    }
}

/// Seconds from a `Retry-After` or `Backoff` header (delta-seconds only).
fn header_seconds(headers: &HeaderMap, name: &str) -> Option<Duration> {
    let raw = headers.get(name)?.to_str().ok()?.trim();
    let secs: f64 = raw.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs).min(MAX_SERVER_WAIT))
}

/// The detail of a Kinto error body (`{"message": ...}`), bounded to one short line.
fn error_detail(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let message = value.get("message")?.as_str()?;
    let line: String = message
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Some(line)
}

enum Attempt {
    Done(Response),
    Retry(ClientErrorKind, Option<Duration>),
    Fail(ClientErrorKind),
}

impl KintoClient {
    pub fn new(settings: &HttpSettings) -> Self {
        KintoClient {
            http: http_client(settings.timeout),
            server: settings.server.clone(),
            auth_header: settings.auth.as_ref().map(auth_header),
            retries: settings.retries,
            retry_backoff: settings.retry_backoff,
            in_flight: Arc::new(Semaphore::new(settings.parallel.get())),
            backoff_until: Arc::new(Mutex::new(None)),
        }
    }

    /// Another client on the same server, sharing the in-flight cap and backoff, with other
    /// credentials (e.g. a backport destination).
    pub fn with_auth(&self, auth: Option<&Auth>) -> Self {
        KintoClient {
            auth_header: auth.map(auth_header),
            ..self.clone()
        }
    }

    pub fn server(&self) -> &Url {
        &self.server
    }

    /// The URL of an API path such as `/buckets/main/collections/cid/records` (segments are
    /// joined as given: callers pass validated ids).
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.server.clone();
        let joined = format!(
            "{}{}",
            self.server.path().trim_end_matches('/'),
            if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            }
        );
        url.set_path(&joined);
        url
    }

    /// Send one request with retries. Credentials are attached only when the URL is on the
    /// server's origin.
    pub async fn send(&self, request: &Request) -> Result<Response, ClientError> {
        self.send_checked(request, |_| Ok(()))
            .await
            .map(|(response, ())| response)
    }

    /// Send one request with retries, and read what the caller needs from a 2xx answer with
    /// `check`. An answer that `check` rejects (a body that is not JSON or not of the expected
    /// shape, a missing header) is retried like any transient fault: proxies and overloaded
    /// servers answer so now and then. The last rejection is the error once retries run out.
    pub async fn send_checked<T>(
        &self,
        request: &Request,
        check: impl Fn(&Response) -> Result<T, ClientErrorKind>,
    ) -> Result<(Response, T), ClientError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.wait_for_server_backoff().await;
            let outcome = {
                let _permit = self
                    .in_flight
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                self.attempt(request).await
            };
            let err = |kind| ClientError {
                method: request.method.to_string(),
                url: request.url.to_string(),
                attempts: attempt,
                kind,
            };
            let (kind, server_wait) = match outcome {
                Attempt::Done(response) => match check(&response) {
                    Ok(value) => return Ok((response, value)),
                    Err(kind) => (kind, None),
                },
                Attempt::Fail(kind) => return Err(err(kind)),
                Attempt::Retry(kind, server_wait) => (kind, server_wait),
            };
            if attempt > self.retries {
                return Err(err(kind));
            }
            let delay = server_wait.unwrap_or_else(|| self.backoff_delay(attempt));
            log::info!(
                "{} {}: {kind}; retry {attempt}/{} in {:.2}s",
                request.method,
                request.url,
                self.retries,
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Exponential backoff with jitter: base * 2^(n-1), between 50% and 100% of it, capped.
    fn backoff_delay(&self, attempt: u32) -> Duration {
        let exp = self
            .retry_backoff
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(MAX_BACKOFF);
        exp.mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    async fn wait_for_server_backoff(&self) {
        let until = *self.backoff_until.lock().expect("backoff lock");
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                tokio::time::sleep(until - now).await;
            }
        }
    }

    fn note_backoff(&self, headers: &HeaderMap) {
        if let Some(wait) = header_seconds(headers, "Backoff") {
            let until = Instant::now() + wait;
            let mut guard = self.backoff_until.lock().expect("backoff lock");
            if guard.is_none_or(|current| current < until) {
                log::info!("server asked to back off for {:.1}s", wait.as_secs_f64());
                *guard = Some(until);
            }
        }
    }

    async fn attempt(&self, request: &Request) -> Attempt {
        let mut builder = self
            .http
            .request(request.method.clone(), request.url.clone());
        if let Some(auth) = &self.auth_header {
            if same_origin(&request.url, &self.server) {
                builder = builder.header(AUTHORIZATION, auth.clone());
            }
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).expect("JSON values serialize"));
        }
        log::debug!("{} {}", request.method, request.url);
        let mut response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(classify(&e), None),
        };
        let status = response.status();
        let headers = response.headers().clone();
        self.note_backoff(&headers);
        if status.is_redirection() {
            return Attempt::Fail(ClientErrorKind::Forbidden(format!(
                "a redirect to another origin (HTTP {})",
                status.as_u16()
            )));
        }
        // Sized once from Content-Length (within the cap) rather than grown by doubling, which
        // would hold up to twice a large body in memory while copying.
        let declared =
            usize::try_from(response.content_length().unwrap_or(0)).unwrap_or(usize::MAX);
        if declared > request.max_body {
            return Attempt::Fail(ClientErrorKind::TooLarge(request.max_body));
        }
        let mut body = Vec::with_capacity(declared);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > request.max_body {
                        return Attempt::Fail(ClientErrorKind::TooLarge(request.max_body));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Attempt::Retry(classify(&e), None),
            }
        }
        if status.is_success() {
            return Attempt::Done(Response {
                url: request.url.clone(),
                status,
                headers,
                body,
            });
        }
        let kind = ClientErrorKind::Status {
            status: status.as_u16(),
            detail: error_detail(&body),
        };
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Attempt::Retry(kind, header_seconds(&headers, "Retry-After"))
        } else {
            Attempt::Fail(kind)
        }
    }

    /// GET a JSON document from an API path (with query parameters).
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(T, Response), ClientError> {
        let mut url = self.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let (response, value) = self
            .send_checked(&Request::new(Method::GET, url), Response::json)
            .await?;
        Ok((value, response))
    }

    /// All objects of a Kinto list endpoint, following `Next-Page` (only on the server's origin).
    pub async fn get_all(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Page {
            data: Vec<Value>,
        }
        let mut url = self.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut all = Vec::new();
        let mut pages = 0usize;
        loop {
            let (response, page) = self
                .send_checked(
                    &Request::new(Method::GET, url.clone()),
                    Response::json::<Page>,
                )
                .await?;
            all.extend(page.data);
            pages += 1;
            let Some(next) = response.header("Next-Page") else {
                break;
            };
            let fail = |kind| ClientError {
                method: "GET".into(),
                url: url.to_string(),
                attempts: 1,
                kind,
            };
            let next = Url::parse(next)
                .map_err(|_| fail(ClientErrorKind::Shape("Next-Page is not a URL".into())))?;
            if !same_origin(&next, &self.server) {
                return Err(fail(ClientErrorKind::Forbidden(
                    "a Next-Page link to another origin".into(),
                )));
            }
            if pages > 100_000 {
                return Err(fail(ClientErrorKind::Shape("too many pages".into())));
            }
            url = next;
        }
        Ok(all)
    }

    /// The records timestamp of a collection: the `ETag` of its records list.
    pub async fn records_timestamp(
        &self,
        bucket: &str,
        collection: &str,
    ) -> Result<u64, ClientError> {
        let path = format!("/buckets/{bucket}/collections/{collection}/records");
        let url = {
            let mut u = self.url(&path);
            u.query_pairs_mut().append_pair("_limit", "1");
            u
        };
        let (_, timestamp) = self
            .send_checked(&Request::new(Method::GET, url), |response| {
                response
                    .header("ETag")
                    .and_then(|etag| etag.trim().trim_matches('"').parse().ok())
                    .ok_or_else(|| {
                        ClientErrorKind::Shape("no numeric ETag on the records list".into())
                    })
            })
            .await?;
        Ok(timestamp)
    }

    /// Download a document from a URL that is not the Kinto server (e.g. an x5u chain): no
    /// credentials, http(s) only, the body capped at `max_bytes`.
    pub async fn get_external(&self, url: &Url, max_bytes: usize) -> Result<Vec<u8>, ClientError> {
        let fail = |kind| ClientError {
            method: "GET".into(),
            url: url.to_string(),
            attempts: 1,
            kind,
        };
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(fail(ClientErrorKind::Forbidden(format!(
                "a {} URL",
                url.scheme()
            ))));
        }
        let external = KintoClient {
            auth_header: None,
            ..self.clone()
        };
        let response = external
            .send(&Request::new(Method::GET, url.clone()).max_body(max_bytes))
            .await?;
        Ok(response.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{RawSettings, Secret};

    fn client(server: &str) -> KintoClient {
        let mut raw = RawSettings::new();
        raw.set("SERVER", server);
        KintoClient::new(&HttpSettings::from_settings(&raw, "AUTH").unwrap())
    }

    #[test]
    fn urls_join_with_or_without_trailing_slash() {
        for server in ["http://h:1/v1", "http://h:1/v1/"] {
            let c = client(server);
            assert_eq!(
                c.url("/buckets/a/collections/b").as_str(),
                "http://h:1/v1/buckets/a/collections/b"
            );
            assert_eq!(c.url("/").as_str(), "http://h:1/v1/");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = client("http://h/v1");
        let d1 = c.backoff_delay(1);
        let d4 = c.backoff_delay(4);
        assert!(d1 <= Duration::from_millis(500) && d1 >= Duration::from_millis(250));
        assert!(d4 >= Duration::from_secs(2) && d4 <= Duration::from_secs(4));
        assert!(c.backoff_delay(30) <= MAX_BACKOFF);
    }

    #[test]
    fn server_waits_are_read_and_capped() {
        let mut h = HeaderMap::new();
        h.insert("Retry-After", HeaderValue::from_static("3"));
        h.insert("Backoff", HeaderValue::from_static("100000"));
        assert_eq!(
            header_seconds(&h, "Retry-After"),
            Some(Duration::from_secs(3))
        );
        assert_eq!(header_seconds(&h, "Backoff"), Some(MAX_SERVER_WAIT));
    }

    #[test]
    fn auth_header_is_sensitive_and_debug_is_redacted() {
        let h = auth_header(&Auth::Basic {
            user: "u".into(),
            password: Secret::new("hunter2"),
        });
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Basic dTpodW50ZXIy");
        let mut raw = RawSettings::new();
        raw.set("AUTH", "u:hunter2");
        let c = KintoClient::new(&HttpSettings::from_settings(&raw, "AUTH").unwrap());
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{c:?}").contains("dTpodW50ZXIy"));
    }

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
