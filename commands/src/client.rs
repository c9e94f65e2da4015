//! The one HTTP client every command uses. It owns timeouts, retries with exponential backoff and
//! jitter (connection errors, timeouts, 5xx, 429, honouring `Retry-After` and Kinto's `Backoff`),
//! `Next-Page` pagination, `POST /batch` with its sub-responses, authentication (sent only to the
//! server's origin), a global cap on requests in flight, and errors that carry the method and URL
//! but never the credentials. Which failures are retried is a [`RetryPolicy`] chosen per client
//! (Kinto's by default). URLs are shown (errors, logs) through [`crate::secrets::display_url`], which hides
//! credentials held in query strings.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::secrets::{display_url, scrub, secret_query_values, Auth};
use crate::settings::HttpSettings;

mod stream;
pub use stream::{Head, Sink};

pub const USER_AGENT_VALUE: &str = concat!("remote-settings-lambdas/", env!("CARGO_PKG_VERSION"));

/// The longest wait a server can impose through `Retry-After` or `Backoff`.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(60);
/// The longest backoff between two attempts computed by the client itself.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// At most this much is allocated up front for a body, from its `Content-Length`.
const PREALLOCATE_MAX: usize = 32 * 1024 * 1024;
/// Bodies larger than this are refused (a changeset of 50,000 records is about 25 MB).
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// Which failures a client retries (connection errors and timeouts always are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryPolicy {
    /// Kinto's: every 5xx, 429, and 2xx answers that the caller's check rejects.
    #[default]
    Transient,
    /// Only these HTTP statuses (e.g. `&[503, 504]` for Redash); every other answer is final,
    /// including a 2xx the caller's check rejects.
    Statuses(&'static [u16]),
}

impl RetryPolicy {
    fn retries_status(self, status: StatusCode) -> bool {
        match self {
            RetryPolicy::Transient => {
                status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
            }
            RetryPolicy::Statuses(statuses) => statuses.contains(&status.as_u16()),
        }
    }

    fn retries_rejected_answers(self) -> bool {
        self == RetryPolicy::Transient
    }
}

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
    fn without(self, secrets: &[String]) -> ClientErrorKind {
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

/// The client. Cheap to clone: clones share the in-flight cap and the server's backoff.
#[derive(Clone)]
pub struct KintoClient {
    http: reqwest::Client,
    /// The same without the per-read timeout, for requests with a [`Request::deadline`].
    http_deadline: reqwest::Client,
    timeout: Duration,
    server: Url,
    auth_header: Option<HeaderValue>,
    /// The credentials' forms (password or token, `user:pass` and its base64), removed from any
    /// text a server sends back into an error: a server or proxy may echo the request.
    auth_secrets: Arc<[String]>,
    retries: u32,
    retry_backoff: Duration,
    retry_policy: RetryPolicy,
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

/// The forms in which `auth` travels, for scrubbing error texts (see [`Auth::forms`]).
fn auth_secrets(auth: Option<&Auth>) -> Arc<[String]> {
    auth.map(Auth::forms).unwrap_or_default().into()
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
    http_client_builder(timeout)
        .read_timeout(timeout)
        .build()
        .expect("the TLS backend initialises")
}

fn http_client_builder(connect_timeout: Duration) -> reqwest::ClientBuilder {
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(connect_timeout)
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

/// The detail of an error body, bounded to one short line: Kinto's `{"message": ...}`, or the
/// `<Code>` and `<Message>` of an S3 XML error (nothing else of it: S3 errors may echo the
/// request's credential scope).
fn error_detail(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => kinto_error_message(&value),
        Err(_) => Some(one_line(&xml_error_detail(body)?)),
    }
}

/// The `message` of a Kinto error body, bounded to one short line.
fn kinto_error_message(body: &Value) -> Option<String> {
    Some(one_line(body.get("message")?.as_str()?))
}

/// The first line of `text`, at most 200 characters.
fn one_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// `Code: Message` of an S3-style XML error body.
fn xml_error_detail(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let element = |name: &str| -> Option<String> {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(text[start..end].trim().to_string()).filter(|v| !v.is_empty())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (code, message) => code.or(message),
    }
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
            http_deadline: http_client_builder(settings.timeout)
                .build()
                .expect("the TLS backend initialises"),
            timeout: settings.timeout,
            server: settings.server.clone(),
            auth_header: settings.auth.as_ref().map(auth_header),
            auth_secrets: auth_secrets(settings.auth.as_ref()),
            retries: settings.retries,
            retry_backoff: settings.retry_backoff,
            retry_policy: RetryPolicy::default(),
            in_flight: Arc::new(Semaphore::new(settings.parallel.get())),
            backoff_until: Arc::new(Mutex::new(None)),
        }
    }

    /// Another client on the same server, sharing the in-flight cap and backoff, with other
    /// credentials (e.g. a backport destination).
    pub fn with_auth(&self, auth: Option<&Auth>) -> Self {
        KintoClient {
            auth_header: auth.map(auth_header),
            auth_secrets: auth_secrets(auth),
            ..self.clone()
        }
    }

    /// The same client retrying the failures of `policy` instead.
    pub fn with_retry_policy(&self, policy: RetryPolicy) -> Self {
        KintoClient {
            retry_policy: policy,
            ..self.clone()
        }
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

    /// [`Self::url`] with query parameters (none: no `?`).
    pub fn url_with_query(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
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
        let check = &check;
        self.send_checked_async(request, move |response| async move {
            let value = check(&response)?;
            Ok((response, value))
        })
        .await
    }

    /// [`Self::send_checked`] with a check that takes the answer and runs as a future, for checks
    /// that must not run on the async executor (parsing a large body on the blocking pool): the
    /// answer is the check's to keep or drop, and a rejection is retried the same way.
    pub async fn send_checked_async<T, F, Fut>(
        &self,
        request: &Request,
        check: F,
    ) -> Result<T, ClientError>
    where
        F: Fn(Response) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientErrorKind>>,
    {
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
            let err = |kind: ClientErrorKind| {
                ClientError::new(
                    &request.method,
                    &request.url,
                    attempt,
                    kind.without(&self.auth_secrets).without(&request.secrets),
                )
            };
            let (kind, server_wait) = match outcome {
                Attempt::Done(response) => match check(response).await {
                    Ok(value) => return Ok(value),
                    Err(kind) if !self.retry_policy.retries_rejected_answers() => {
                        return Err(err(kind))
                    }
                    Err(kind) => (kind, None),
                },
                Attempt::Fail(kind) => return Err(err(kind)),
                Attempt::Retry(kind, server_wait) => (kind, server_wait),
            };
            let shown = err(kind);
            if attempt > self.retries {
                return Err(shown);
            }
            let delay = server_wait.unwrap_or_else(|| self.backoff_delay(attempt));
            log::info!(
                "{} {}: {}; retry {attempt}/{} in {:.2}s",
                shown.method,
                shown.url,
                shown.kind,
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
        let mut builder = match request.deadline {
            None => self
                .http
                .request(request.method.clone(), request.url.clone()),
            // A deadline lets a request wait longer than the client's timeout, never shorter.
            Some(deadline) => self
                .http_deadline
                .request(request.method.clone(), request.url.clone())
                .timeout(deadline.max(self.timeout)),
        };
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
        } else if let Some(bytes) = &request.bytes {
            builder = builder.body(bytes.clone());
        }
        log::debug!("{} {}", request.method, display_url(&request.url));
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
        // would hold up to twice a large body in memory while copying; but never more than
        // PREALLOCATE_MAX on the server's word alone.
        let declared =
            usize::try_from(response.content_length().unwrap_or(0)).unwrap_or(usize::MAX);
        if declared > request.max_body {
            return Attempt::Fail(ClientErrorKind::TooLarge(request.max_body));
        }
        let mut body = Vec::with_capacity(declared.min(PREALLOCATE_MAX));
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
        if self.retry_policy.retries_status(status) {
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
        let url = self.url_with_query(path, query);
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
        let mut url = self.url_with_query(path, query);
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
            let fail = |kind| ClientError::new(&Method::GET, &url, 1, kind);
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

    /// Download a document from a URL that is not the Kinto server (e.g. an x5u chain): no
    /// credentials, http(s) only, the body capped at `max_bytes`.
    pub async fn get_external(&self, url: &Url, max_bytes: usize) -> Result<Vec<u8>, ClientError> {
        let fail = |kind| ClientError::new(&Method::GET, url, 1, kind);
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

/// One sub-request of `POST /batch`: method, API path without the version prefix (e.g.
/// `/buckets/b/collections/c/records/r`), extra headers and an optional JSON body.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BatchRequest {
    pub method: String,
    pub path: String,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "headers_object"
    )]
    pub headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

fn headers_object<S: serde::Serializer>(
    headers: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(headers.len()))?;
    for (name, value) in headers {
        map.serialize_entry(name, value)?;
    }
    map.end()
}

impl BatchRequest {
    pub fn new(method: &str, path: impl Into<String>) -> Self {
        BatchRequest {
            method: method.to_string(),
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// The answer to one sub-request: its own status and body (a Kinto error body for 4xx/5xx).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct BatchResponse {
    pub status: u16,
    #[serde(default)]
    pub body: Value,
}

impl BatchResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `message` of a Kinto error body, bounded to one short line.
    pub fn error_message(&self) -> Option<String> {
        kinto_error_message(&self.body)
    }
}

impl KintoClient {
    /// Send sub-requests in one `POST /batch` (at most the server's `batch_max_requests`) and
    /// return their responses, in order. Each sub-response carries its own status: the caller
    /// checks them. The batch is retried like any request (and when the answer does not hold
    /// one response per sub-request), so a lost answer means the server may see the same
    /// sub-requests twice: give them preconditions (`If-Match`, `If-None-Match: *`) that make a
    /// second application fail instead of applying again. The server works through the
    /// sub-requests one by one, so the batch as a whole has the timeout of each of them added up.
    pub async fn batch(
        &self,
        requests: &[BatchRequest],
    ) -> Result<Vec<BatchResponse>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            responses: Vec<BatchResponse>,
        }
        let request = Request::new(Method::POST, self.url("/batch"))
            .json(serde_json::json!({ "requests": requests }))
            .deadline(self.timeout.saturating_mul(requests.len().max(1) as u32));
        let (_, responses) = self
            .send_checked(&request, |response| {
                let answer: Answer = response.json()?;
                if answer.responses.len() != requests.len() {
                    return Err(ClientErrorKind::Shape(format!(
                        "{} responses to {} batched requests",
                        answer.responses.len(),
                        requests.len()
                    )));
                }
                Ok(answer.responses)
            })
            .await?;
        Ok(responses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{is_secret_query_param, Secret};
    use crate::settings::shared::AUTH;
    use crate::settings::RawSettings;

    fn client(server: &str) -> KintoClient {
        let mut raw = RawSettings::new();
        raw.set("SERVER", server);
        KintoClient::new(&HttpSettings::from_settings(&raw, &AUTH).unwrap())
    }

    /// A loopback server that answers every connection with `{}` after `delay`.
    async fn slow_server(delay: Duration) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                  Content-Length: 2\r\nConnection: close\r\n\r\n{}";
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        format!("http://127.0.0.1:{port}/v1")
    }

    #[tokio::test]
    async fn a_deadline_lets_a_request_wait_longer_than_the_client_timeout_never_shorter() {
        let server = slow_server(Duration::from_millis(600)).await;
        let mut raw = RawSettings::new();
        raw.set("SERVER", &server);
        raw.set("REQUESTS_TIMEOUT_SECONDS", "0.2");
        raw.set("REQUESTS_NB_RETRIES", "0");
        let c = KintoClient::new(&HttpSettings::from_settings(&raw, &AUTH).unwrap());
        let plain = Request::new(Method::PATCH, c.url("/x"));
        let err = c.send(&plain).await.unwrap_err();
        assert_eq!(err.kind, ClientErrorKind::Timeout);
        let patient = plain.clone().deadline(Duration::from_secs(5));
        assert_eq!(c.send(&patient).await.unwrap().body, b"{}");
        // A deadline shorter than the client's timeout does not shorten it: 0.2 s still applies.
        let shorter = plain.deadline(Duration::from_millis(50));
        let started = Instant::now();
        assert_eq!(
            c.send(&shorter).await.unwrap_err().kind,
            ClientErrorKind::Timeout
        );
        assert!(started.elapsed() >= Duration::from_millis(190));
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
        let c = KintoClient::new(&HttpSettings::from_settings(&raw, &AUTH).unwrap());
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{c:?}").contains("dTpodW50ZXIy"));
    }

    /// A loopback server answering each connection with the next scripted reply (`None`
    /// closes the connection unanswered) and counting requests.
    async fn scripted(replies: Vec<Option<(u16, &'static str)>>) -> (String, Arc<Mutex<usize>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(0usize));
        let count = seen.clone();
        tokio::spawn(async move {
            let mut replies = replies.into_iter();
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                *count.lock().unwrap() += 1;
                if let Some(Some((status, body))) = replies.next() {
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                }
            }
        });
        (base, seen)
    }

    fn fast_client(server: &str) -> KintoClient {
        let mut raw = RawSettings::new();
        raw.set("SERVER", server);
        raw.set("REQUESTS_RETRY_BACKOFF_SECONDS", "0.001");
        raw.set("REQUESTS_NB_RETRIES", "4");
        KintoClient::new(&HttpSettings::from_settings(&raw, &AUTH).unwrap())
    }

    async fn get_json_from(
        client: &KintoClient,
        url: &str,
    ) -> Result<(Response, Value), ClientError> {
        let request = Request::new(Method::GET, Url::parse(url).unwrap());
        client.send_checked(&request, Response::json::<Value>).await
    }

    #[tokio::test]
    async fn the_default_policy_retries_5xx_429_and_rejected_answers() {
        let (base, seen) = scripted(vec![
            Some((500, "{}")),
            Some((429, "{}")),
            Some((200, "not json")),
            None,
            Some((200, r#"{"ok": true}"#)),
        ])
        .await;
        let (_, value) = get_json_from(&fast_client(&base), &format!("{base}/x"))
            .await
            .unwrap();
        assert_eq!(value["ok"], true);
        assert_eq!(*seen.lock().unwrap(), 5);
    }

    #[tokio::test]
    async fn an_async_check_takes_the_answer_and_its_rejections_are_retried() {
        let (base, seen) = scripted(vec![
            Some((200, "not a changeset")),
            Some((200, r#"{"ok": true}"#)),
        ])
        .await;
        let client = fast_client(&base);
        let request = Request::new(Method::GET, Url::parse(&format!("{base}/x")).unwrap());
        let check = |response: Response| async move {
            // The body is the check's own (e.g. to move it to the blocking pool).
            let body = response.body;
            tokio::task::spawn_blocking(move || serde_json::from_slice::<Value>(&body))
                .await
                .unwrap()
                .map_err(|e| ClientErrorKind::Shape(e.to_string()))
        };
        let value = client.send_checked_async(&request, check).await.unwrap();
        assert_eq!(value["ok"], true);
        assert_eq!(*seen.lock().unwrap(), 2);

        // A rejection that persists is the error, naming the URL, once retries run out.
        let (base, seen) = scripted(vec![Some((200, "<html>")); 5]).await;
        let request = Request::new(Method::GET, Url::parse(&format!("{base}/y")).unwrap());
        let err = fast_client(&base)
            .send_checked_async(&request, check)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNEXPECTED_RESPONSE");
        assert_eq!((err.attempts, *seen.lock().unwrap()), (5, 5));
        assert!(
            err.to_string()
                .starts_with(&format!("GET {base}/y failed after 5 attempts")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_status_policy_retries_connection_errors_and_its_statuses_only() {
        let policy = RetryPolicy::Statuses(&[503, 504]);
        let (base, seen) = scripted(vec![
            Some((503, "{}")),
            None,
            Some((504, "{}")),
            Some((200, r#"{"ok": true}"#)),
        ])
        .await;
        let client = fast_client(&base).with_retry_policy(policy);
        let (_, value) = get_json_from(&client, &format!("{base}/x")).await.unwrap();
        assert_eq!(value["ok"], true);
        assert_eq!(*seen.lock().unwrap(), 4);

        for (status, body, code) in [
            (500, "{}", "SERVER_ERROR"),
            (502, "{}", "SERVER_ERROR"),
            (429, "{}", "TOO_MANY_REQUESTS"),
            (200, "not json", "UNEXPECTED_RESPONSE"),
        ] {
            let (base, seen) = scripted(vec![Some((status, body)), Some((200, "{}"))]).await;
            let client = fast_client(&base).with_retry_policy(policy);
            let err = get_json_from(&client, &format!("{base}/x"))
                .await
                .unwrap_err();
            assert_eq!(err.code(), code, "{status}: {err}");
            assert_eq!(err.attempts, 1, "{status} is not retried");
            assert_eq!(*seen.lock().unwrap(), 1, "{status} is not retried");
        }
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

    #[tokio::test]
    async fn errors_never_hold_a_key_sent_in_the_query_string() {
        // The server echoes the key in its error body, as some do.
        let (base, _) = scripted(vec![Some((
            401,
            r#"{"message": "invalid api_key K3y/m4rker+x"}"#,
        ))])
        .await;
        let url = format!("{base}/api/queries/1/results.json?api_key=K3y%2Fm4rker%2Bx");
        let err = get_json_from(&fast_client(&base), &url).await.unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("m4rker"), "{text}");
        assert!(
            text.contains("/api/queries/1/results.json?api_key=[redacted] failed: HTTP 401 (invalid api_key [redacted])"),
            "{text}"
        );
        assert!(!format!("{err:?}").contains("m4rker"));
        assert!(!crate::report::client_error_json(&err)
            .to_string()
            .contains("m4rker"));
    }

    #[tokio::test]
    async fn errors_never_hold_the_credentials_a_server_echoes_back() {
        // user:hunter2 is dXNlcjpodW50ZXIy in base64.
        let (base, _) = scripted(vec![
            Some((
                401,
                r#"{"message": "refused Basic dXNlcjpodW50ZXIy (user:hunter2)"}"#,
            )),
            Some((403, r#"{"message": "refused token tok-m4rker"}"#)),
        ])
        .await;
        let url = format!("{base}/v1/");
        let basic = fast_client(&base).with_auth(Some(&Auth::Basic {
            user: "user".into(),
            password: Secret::new("hunter2"),
        }));
        let err = get_json_from(&basic, &url).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("dXNlcjpodW50ZXIy"),
            "{text}"
        );
        assert!(
            text.contains("HTTP 401 (refused Basic [redacted] ([redacted]))"),
            "{text}"
        );
        let bearer = fast_client(&base).with_auth(Some(&Auth::Bearer(Secret::new("tok-m4rker"))));
        let err = get_json_from(&bearer, &url).await.unwrap_err();
        assert!(!format!("{err} {err:?}").contains("m4rker"), "{err}");
        assert_eq!(err.status(), Some(403));
    }

    #[tokio::test]
    async fn a_secret_header_echoed_by_the_server_stays_out_of_errors() {
        let (base, _) = scripted(vec![Some((
            401,
            r#"{"message": "refused token tok-h3ader-m4rker"}"#,
        ))])
        .await;
        let url = Url::parse(&format!("{base}/creds")).unwrap();
        let request =
            Request::new(Method::GET, url).secret_header("Authorization", "tok-h3ader-m4rker");
        let err = fast_client(&base).send(&request).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("m4rker"), "{text}");
        assert!(
            text.contains("HTTP 401 (refused token [redacted])"),
            "{text}"
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
    fn error_details_come_from_kinto_json_or_s3_xml() {
        assert_eq!(
            error_detail(br#"{"code": 403, "message": "Unauthorized"}"#).as_deref(),
            Some("Unauthorized")
        );
        let xml = br#"<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>The signature does not match.</Message><AWSAccessKeyId>AKID</AWSAccessKeyId></Error>"#;
        let detail = error_detail(xml).unwrap();
        assert_eq!(
            detail,
            "SignatureDoesNotMatch: The signature does not match."
        );
        assert_eq!(error_detail(b"<html>oops</html>"), None);
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

    /// A loopback server answering each connection with the next canned `(status, body)` and
    /// keeping the request bodies it received.
    async fn canned_server(answers: Vec<(u16, String)>) -> (String, Arc<Mutex<Vec<String>>>) {
        slow_canned_server(answers, Duration::ZERO).await
    }

    /// The same, answering each request after `delay`.
    async fn slow_canned_server(
        answers: Vec<(u16, String)>,
        delay: Duration,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let seen = received.clone();
        tokio::spawn(async move {
            for (status, body) in answers {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body_start = loop {
                    let n = socket.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                while buf.len() < body_start + length {
                    let n = socket.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[body_start..]).into_owned());
                tokio::time::sleep(delay).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (url, received)
    }

    fn fast_retry_client(server: &str) -> KintoClient {
        let mut raw = RawSettings::new();
        raw.set("SERVER", server);
        raw.set("REQUESTS_NB_RETRIES", "2");
        raw.set("REQUESTS_RETRY_BACKOFF_SECONDS", "0.001");
        KintoClient::new(&HttpSettings::from_settings(&raw, &AUTH).unwrap())
    }

    fn two_requests() -> Vec<BatchRequest> {
        vec![
            BatchRequest::new("PUT", "/buckets/b/collections/c/records/r1")
                .header("If-None-Match", "*")
                .json(serde_json::json!({"data": {"id": "r1"}})),
            BatchRequest::new("DELETE", "/buckets/b/collections/c/records/r2")
                .header("If-Match", "\"12\""),
        ]
    }

    #[tokio::test]
    async fn batch_posts_kinto_sub_requests_and_returns_their_responses_in_order() {
        let answer = r#"{"responses": [
            {"status": 201, "path": "/v1/buckets/b/collections/c/records/r1", "body": {"data": {"id": "r1"}}},
            {"status": 412, "path": "/v1/buckets/b/collections/c/records/r2", "body": {"code": 412, "message": "Resource was modified meanwhile"}}
        ]}"#;
        let (url, received) = canned_server(vec![(200, answer.into())]).await;
        let responses = fast_retry_client(&url)
            .batch(&two_requests())
            .await
            .unwrap();
        assert_eq!(
            responses.iter().map(|r| r.status).collect::<Vec<_>>(),
            [201, 412]
        );
        assert!(responses[0].is_success() && !responses[1].is_success());
        assert_eq!(
            responses[1].error_message().as_deref(),
            Some("Resource was modified meanwhile")
        );
        let sent: Value = serde_json::from_str(&received.lock().unwrap()[0]).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"requests": [
                {"method": "PUT", "path": "/buckets/b/collections/c/records/r1",
                 "headers": {"If-None-Match": "*"}, "body": {"data": {"id": "r1"}}},
                {"method": "DELETE", "path": "/buckets/b/collections/c/records/r2",
                 "headers": {"If-Match": "\"12\""}},
            ]})
        );
    }

    #[tokio::test]
    async fn batch_answers_missing_responses_are_retried_then_an_error() {
        let short = r#"{"responses": [{"status": 201, "body": {}}]}"#.to_string();
        let full = r#"{"responses": [{"status": 201, "body": {}}, {"status": 200, "body": {}}]}"#
            .to_string();
        let (url, received) = canned_server(vec![(200, short.clone()), (200, full)]).await;
        let responses = fast_retry_client(&url)
            .batch(&two_requests())
            .await
            .unwrap();
        assert_eq!(responses.len(), 2);
        assert_eq!(received.lock().unwrap().len(), 2);

        let (url, _) = canned_server(vec![
            (200, short.clone()),
            (200, short.clone()),
            (200, short),
        ])
        .await;
        let err = fast_retry_client(&url)
            .batch(&two_requests())
            .await
            .unwrap_err();
        assert_eq!(err.attempts, 3);
        assert_eq!(err.code(), "UNEXPECTED_RESPONSE");
        assert!(
            err.to_string()
                .contains("1 responses to 2 batched requests"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn batch_refused_as_a_whole_is_not_retried() {
        let refused = r#"{"code": 400, "message": "Number of requests is limited to 25"}"#;
        let (url, received) = canned_server(vec![(400, refused.into())]).await;
        let err = fast_retry_client(&url)
            .batch(&two_requests())
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert!(err.to_string().contains("limited to 25"), "{err}");
        assert_eq!(received.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_batch_has_the_timeout_of_its_sub_requests_added_up() {
        let mut raw = RawSettings::new();
        raw.set("REQUESTS_TIMEOUT_SECONDS", "0.3");
        raw.set("REQUESTS_NB_RETRIES", "0");
        let requests = vec![BatchRequest::new("DELETE", "/buckets/b/collections/c/records/r"); 4];
        let answer = r#"{"responses": [{"status": 200}, {"status": 200}, {"status": 200}, {"status": 200}]}"#;
        // Answering after 0.7 s: past one request's timeout, within four's.
        let delay = Duration::from_millis(700);
        let (url, _) =
            slow_canned_server(vec![(200, answer.into()), (200, "{}".into())], delay).await;
        raw.set("SERVER", &url);
        let client = KintoClient::new(&HttpSettings::from_settings(&raw, &AUTH).unwrap());
        assert_eq!(client.batch(&requests).await.unwrap().len(), 4);
        let err = client.get_json::<Value>("/", &[]).await.unwrap_err();
        assert_eq!(err.kind, ClientErrorKind::Timeout);
    }
}
