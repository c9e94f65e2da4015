//! The one HTTP client of a run, for every service a command talks to (Kinto, S3, Redash, x5u
//! hosts, the ECS credentials endpoint). [`HttpClient`] is built once per run from the shared
//! HTTP settings and handed to commands in [`crate::Context`]; commands take *views* of it
//! ([`HttpClient::with_auth`], [`HttpClient::with_retry_policy`], ...) that share its in-flight
//! cap and the server's backoff, so `PARALLEL_REQUESTS` caps the whole run. This module owns the
//! client and its views; the files beside it own requests and answers ([`request`]), errors
//! ([`error`]), retries ([`retry`]), the attempt loop (`send`), the reqwest clients and
//! redirects ([`transport`]) and credentials (`auth`). The Kinto protocol is
//! [`crate::kinto`]'s.

mod auth;
pub mod error;
pub mod request;
pub mod retry;
mod send;
mod stream;
pub mod transport;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, Url};
use tokio::sync::Semaphore;

use crate::secrets::Auth;
use auth::OriginAuth;
use retry::ServerBackoff;
use transport::Transport;

pub use error::{ClientError, ClientErrorKind, ErrorDetail};
pub use request::{Request, Response, MAX_BODY_BYTES};
pub use retry::{RetryPolicy, MAX_SERVER_WAIT};
pub use stream::{Head, Sink};
pub use transport::{same_origin, USER_AGENT_VALUE};

/// What the client is built with: the run's shared HTTP settings, validated.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connect and per-read timeout of a request.
    pub timeout: Duration,
    /// Retries of one request after a transient failure.
    pub retries: u32,
    /// Base delay of the exponential backoff between retries.
    pub retry_backoff: Duration,
    /// At most this many requests in flight for the whole run.
    pub parallel: NonZeroUsize,
}

/// What every view of the run's client shares.
struct Shared {
    limits: Limits,
    in_flight: Semaphore,
    backoff: ServerBackoff,
}

/// The client, or a view of it. Cheap to clone: clones and views share the in-flight cap and
/// the server's backoff. The client itself sends no credentials and retries Kinto's way.
#[derive(Clone)]
pub struct HttpClient {
    shared: Arc<Shared>,
    transport: Arc<Transport>,
    retry_policy: RetryPolicy,
    error_detail: ErrorDetail,
    auth: Option<Arc<OriginAuth>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.transport.timeout)
            .field("retry_policy", &self.retry_policy)
            // Where the credentials go, never what they are.
            .field(
                "auth_origin",
                &self
                    .auth
                    .as_ref()
                    .map(|a| a.origin.origin().ascii_serialization()),
            )
            .finish()
    }
}

impl HttpClient {
    /// The run's client.
    pub fn new(limits: Limits) -> Self {
        HttpClient {
            shared: Arc::new(Shared {
                limits,
                in_flight: Semaphore::new(limits.parallel.get()),
                backoff: ServerBackoff::default(),
            }),
            transport: Arc::new(Transport::new(limits.timeout)),
            retry_policy: RetryPolicy::default(),
            error_detail: error::json_error_detail,
            auth: None,
        }
    }

    /// A view sending `auth` (when given) to `origin`'s scheme, host and port only; none
    /// otherwise (e.g. a backport destination's own credentials, or none for S3).
    pub fn with_auth(&self, origin: &Url, auth: Option<&Auth>) -> Self {
        HttpClient {
            auth: auth.map(|auth| Arc::new(OriginAuth::new(origin, auth))),
            ..self.clone()
        }
    }

    /// A view retrying the failures of `policy` instead.
    pub fn with_retry_policy(&self, policy: RetryPolicy) -> Self {
        HttpClient {
            retry_policy: policy,
            ..self.clone()
        }
    }

    /// A view with another connect and read timeout (e.g. Redash's, whose queries are slow).
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        HttpClient {
            transport: Arc::new(Transport::new(timeout)),
            ..self.clone()
        }
    }

    /// A view reading error bodies with `detail` (e.g. S3's XML errors).
    pub fn with_error_detail(&self, detail: ErrorDetail) -> Self {
        HttpClient {
            error_detail: detail,
            ..self.clone()
        }
    }

    /// The connect and per-read timeout of this view.
    pub fn timeout(&self) -> Duration {
        self.transport.timeout
    }

    /// The run's in-flight cap (`PARALLEL_REQUESTS`).
    pub fn parallel(&self) -> usize {
        self.shared.limits.parallel.get()
    }

    /// The limits the run's client was built with (for a library with its own HTTP client, e.g.
    /// the object store's S3 requests: same timeout and retries).
    pub fn limits(&self) -> Limits {
        self.shared.limits
    }

    /// Hold one of the run's in-flight slots, for a request sent by another client: dropping the
    /// permit frees the slot.
    pub async fn slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.shared
            .in_flight
            .acquire()
            .await
            .expect("the in-flight semaphore is never closed")
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
        let external = HttpClient {
            auth: None,
            ..self.clone()
        };
        let response = external
            .send(&Request::new(Method::GET, url.clone()).max_body(max_bytes))
            .await?;
        Ok(response.body)
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::secrets::Secret;

    #[test]
    fn a_view_with_credentials_does_not_show_them() {
        let origin = Url::parse("http://h/v1/").unwrap();
        let c = testing::fast_client(0).with_auth(
            &origin,
            Some(&Auth::Basic {
                user: "u".into(),
                password: Secret::new("hunter2"),
            }),
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{c:?}").contains("dTpodW50ZXIy"));
    }

    #[tokio::test]
    async fn credentials_go_to_their_origin_only() {
        let (kinto, kinto_heads) = testing::recording_server().await;
        let (elsewhere, elsewhere_heads) = testing::recording_server().await;
        let origin = Url::parse(&format!("{kinto}/v1/")).unwrap();
        let token = Auth::Bearer(Secret::new("tok-0rigin"));
        let view = testing::fast_client(0).with_auth(&origin, Some(&token));
        for url in [format!("{kinto}/v1/x"), format!("{elsewhere}/x")] {
            let request = Request::new(Method::GET, Url::parse(&url).unwrap());
            view.send(&request).await.unwrap();
        }
        let sent = |heads: &Mutex<Vec<String>>| heads.lock().unwrap().concat();
        assert!(
            sent(&kinto_heads).contains("authorization: bearer tok-0rigin"),
            "{}",
            sent(&kinto_heads)
        );
        assert!(!sent(&elsewhere_heads).contains("authorization"));
        assert!(!sent(&elsewhere_heads).contains("tok-0rigin"));
        // The run's client itself sends none.
        let plain = Request::new(Method::GET, origin.join("y").unwrap());
        testing::fast_client(0).send(&plain).await.unwrap();
        assert_eq!(kinto_heads.lock().unwrap().len(), 2);
        assert!(!kinto_heads.lock().unwrap()[1].contains("authorization"));
    }

    #[tokio::test]
    async fn views_share_the_in_flight_cap() {
        let client = HttpClient::new(Limits {
            parallel: NonZeroUsize::new(1).unwrap(),
            ..testing::limits(0, Duration::from_millis(1))
        });
        let view = client
            .with_retry_policy(RetryPolicy::Statuses(&[503]))
            .with_timeout(Duration::from_secs(5));
        let _permit = client.shared.in_flight.acquire().await.unwrap();
        assert_eq!(view.shared.in_flight.available_permits(), 0);
        assert_eq!(view.parallel(), 1);
        assert_eq!(view.timeout(), Duration::from_secs(5));
    }
}
