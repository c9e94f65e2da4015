//! When to try a request again and how long to wait: the [`RetryPolicy`] of a view, the
//! classification of transport failures, exponential backoff with jitter, and the waits a server
//! imposes (`Retry-After` on one answer, Kinto's `Backoff` for every request of the run).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::ClientErrorKind;

/// The longest wait a server can impose through `Retry-After` or `Backoff`.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(60);
/// The longest backoff between two attempts computed by the client itself.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Which failures a client retries (connection errors and timeouts always are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryPolicy {
    /// Kinto's: every 5xx, 429, Kinto's 409 "please retry" (see [`is_retry_conflict`]), and 2xx
    /// answers that the caller's check rejects.
    #[default]
    Transient,
    /// Only these HTTP statuses (e.g. `&[503, 504]` for Redash); every other answer is final,
    /// including a 2xx the caller's check rejects.
    Statuses(&'static [u16]),
}

/// A failed answer the policy tries again, and the wait the server asked for that it honours
/// (`None`: the client's own backoff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retried {
    pub server_wait: Option<Duration>,
}

impl RetryPolicy {
    /// Is this failed answer worth another attempt, and after what?
    ///
    /// A `Retry-After` is honoured, except on Kinto's 409 "please retry": there it is Kinto's one
    /// `retry_after_seconds` (3 s by default), meant for an overloaded backend, while the race
    /// the 409 reports ended when the other transaction committed, before the 409 was sent.
    /// Honoured, it made every collision of a refresh_signature run cost 3 s on the bench server.
    pub(crate) fn retried(
        self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Retried> {
        let retry_after = || header_seconds(headers, "Retry-After");
        let server_wait = match self {
            RetryPolicy::Transient if is_retry_conflict(status, body) => None,
            RetryPolicy::Transient
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
            {
                retry_after()
            }
            RetryPolicy::Statuses(statuses) if statuses.contains(&status.as_u16()) => retry_after(),
            _ => return None,
        };
        Some(Retried { server_wait })
    }

    pub(crate) fn retries_rejected_answers(self) -> bool {
        self == RetryPolicy::Transient
    }
}

/// Kinto's answer to a write that lost a race in its storage: 409, errno 122, "Integrity
/// constraint violated, please retry." (with `Retry-After`). On PostgreSQL, concurrent writes to
/// one collection, or to one bucket's history, can pick the same timestamp; Kinto rolls the
/// request back and asks for it again. Other 409s (errno 122 also says "already exists") are final.
fn is_retry_conflict(status: StatusCode, body: &[u8]) -> bool {
    if status != StatusCode::CONFLICT {
        return false;
    }
    let Ok(error) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    error["errno"] == 122
        && error["message"]
            .as_str()
            .is_some_and(|m| m.contains("please retry"))
}

/// Exponential backoff with jitter: base * 2^(n-1), between 50% and 100% of it, capped.
pub(crate) fn backoff_delay(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(MAX_BACKOFF);
    exp.mul_f64(0.5 + fastrand::f64() * 0.5)
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

/// What a transport failure is (all of them are retried).
pub(crate) fn classify(err: &reqwest::Error) -> ClientErrorKind {
    if err.is_timeout() {
        ClientErrorKind::Timeout
    } else if err.is_connect() || err.is_request() {
        ClientErrorKind::Connect(root_cause(err))
    } else {
        ClientErrorKind::Body(root_cause(err))
    }
}

/// Seconds from a `Retry-After` or `Backoff` header (delta-seconds only).
pub(crate) fn header_seconds(headers: &HeaderMap, name: &str) -> Option<Duration> {
    let raw = headers.get(name)?.to_str().ok()?.trim();
    let secs: f64 = raw.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs).min(MAX_SERVER_WAIT))
}

/// The `Backoff` a server asked for: every request of the run waits until it is over.
#[derive(Debug, Default)]
pub(crate) struct ServerBackoff {
    until: Mutex<Option<Instant>>,
}

impl ServerBackoff {
    pub(crate) async fn wait(&self) {
        let until = *self.until.lock().expect("backoff lock");
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                tokio::time::sleep(until - now).await;
            }
        }
    }

    /// Note an answer's `Backoff` header, keeping the later of two waits.
    pub(crate) fn note(&self, headers: &HeaderMap) {
        if let Some(wait) = header_seconds(headers, "Backoff") {
            let until = Instant::now() + wait;
            let mut guard = self.until.lock().expect("backoff lock");
            if guard.is_none_or(|current| current < until) {
                log::info!("server asked to back off for {:.1}s", wait.as_secs_f64());
                *guard = Some(until);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_grows_and_is_capped() {
        // REQUESTS_RETRY_BACKOFF_SECONDS's default.
        let base = Duration::from_millis(500);
        let d1 = backoff_delay(base, 1);
        let d4 = backoff_delay(base, 4);
        assert!(d1 <= Duration::from_millis(500) && d1 >= Duration::from_millis(250));
        assert!(d4 >= Duration::from_secs(2) && d4 <= Duration::from_secs(4));
        assert!(backoff_delay(base, 30) <= MAX_BACKOFF);
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
}
