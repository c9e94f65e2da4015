//! The attempt loop: wait for the server's backoff, take a place in the in-flight cap, send one
//! attempt (credentials only to their origin, redirects elsewhere refused, the body read within
//! its cap), then succeed, retry after a backoff, or fail with an error free of credentials.

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;

use super::retry::{backoff_delay, classify, Retried};
use super::transport::same_origin;
use super::{ClientError, ClientErrorKind, HttpClient, Request, Response};
use crate::secrets::display_url;

/// At most this much is allocated up front for a body, from its `Content-Length`.
const PREALLOCATE_MAX: usize = 32 * 1024 * 1024;

/// How one attempt ended: with what the caller wanted, with a failure worth retrying (after the
/// server's wait, if it gave one), or with a final failure.
pub(crate) enum Attempt<T> {
    Done(T),
    Retry(ClientErrorKind, Option<std::time::Duration>),
    Fail(ClientErrorKind),
}

impl HttpClient {
    /// Send one request with retries. Credentials are attached only when the URL is on the
    /// origin they were given for.
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
        let check = &check;
        self.retrying(request, move || async move {
            match self.within_cap(self.attempt(request)).await {
                Attempt::Done(response) => match check(response).await {
                    Ok(value) => Attempt::Done(value),
                    Err(kind) if !self.retry_policy.retries_rejected_answers() => {
                        Attempt::Fail(kind)
                    }
                    Err(kind) => Attempt::Retry(kind, None),
                },
                Attempt::Retry(kind, wait) => Attempt::Retry(kind, wait),
                Attempt::Fail(kind) => Attempt::Fail(kind),
            }
        })
        .await
    }

    /// The retry loop every request shares, whatever its attempts do with the answer: wait for
    /// the server's backoff, make an attempt, then succeed, fail, or retry after a backoff (the
    /// server's wait when it gave one), with errors free of credentials.
    pub(crate) async fn retrying<T, A, Fut>(
        &self,
        request: &Request,
        mut attempt: A,
    ) -> Result<T, ClientError>
    where
        A: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let retries = self.shared.limits.retries;
        let no_secrets = Vec::new();
        let auth_secrets = self.auth.as_ref().map_or(&no_secrets, |a| &a.secrets);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            self.shared.backoff.wait().await;
            let outcome = attempt().await;
            let err = |kind: ClientErrorKind| {
                ClientError::new(
                    &request.method,
                    &request.url,
                    attempts,
                    kind.without(auth_secrets).without(&request.secrets),
                )
            };
            let (kind, server_wait) = match outcome {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(kind) => return Err(err(kind)),
                Attempt::Retry(kind, server_wait) => (kind, server_wait),
            };
            let shown = err(kind);
            if attempts > retries {
                return Err(shown);
            }
            let delay = server_wait
                .unwrap_or_else(|| backoff_delay(self.shared.limits.retry_backoff, attempts));
            log::info!(
                "{} {}: {}; retry {attempts}/{retries} in {:.2}s",
                shown.method,
                shown.url,
                shown.kind,
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Run one attempt holding a place in the run's in-flight cap.
    pub(crate) async fn within_cap<T>(&self, attempt: impl std::future::Future<Output = T>) -> T {
        let _permit = self
            .shared
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        attempt.await
    }

    async fn attempt(&self, request: &Request) -> Attempt<Response> {
        let mut builder = self.request_builder(request);
        if let Some(body) = &request.body {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).expect("JSON values serialize"));
        } else if let Some(bytes) = &request.bytes {
            builder = builder.body(bytes.clone());
        }
        let (mut response, status, headers) = match self.answer(request, builder).await {
            Ok(answer) => answer,
            Err(failed) => return failed,
        };
        // Sized once from Content-Length (within the cap) rather than grown by doubling, which
        // would hold up to twice a large body in memory while copying; but never more than
        // PREALLOCATE_MAX on the server's word alone. A large one comes from the pool, where
        // readers that are done with a body hand it back (`buffers::LARGE.give`).
        let declared =
            usize::try_from(response.content_length().unwrap_or(0)).unwrap_or(usize::MAX);
        if declared > request.max_body {
            return Attempt::Fail(ClientErrorKind::TooLarge(request.max_body));
        }
        let mut body = crate::buffers::LARGE.take(declared.min(PREALLOCATE_MAX));
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
        self.error_status(status, &headers, &body)
    }

    /// A request's builder: its method and URL, its timeout or deadline, its headers, and the
    /// credentials only when the URL is on the origin they were given for.
    pub(crate) fn request_builder(&self, request: &Request) -> reqwest::RequestBuilder {
        let mut builder = self.transport.request(
            request.method.clone(),
            request.url.clone(),
            request.deadline,
        );
        if let Some(auth) = &self.auth {
            if same_origin(&request.url, &auth.origin) {
                builder = builder.header(AUTHORIZATION, auth.header.clone());
            }
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        builder
    }

    /// Send a built request and take its head: the server's `Backoff` is noted, and a redirect
    /// (to another origin: same-origin ones were followed) fails the request.
    pub(crate) async fn answer<T>(
        &self,
        request: &Request,
        builder: reqwest::RequestBuilder,
    ) -> Result<(reqwest::Response, StatusCode, HeaderMap), Attempt<T>> {
        log::debug!("{} {}", request.method, display_url(&request.url));
        let response = builder
            .send()
            .await
            .map_err(|e| Attempt::Retry(classify(&e), None))?;
        let status = response.status();
        let headers = response.headers().clone();
        self.shared.backoff.note(&headers);
        if status.is_redirection() {
            return Err(Attempt::Fail(ClientErrorKind::Forbidden(format!(
                "a redirect to another origin (HTTP {})",
                status.as_u16()
            ))));
        }
        Ok((response, status, headers))
    }

    /// A non-2xx answer: retried when the policy says so (after the server's wait when the
    /// policy honours it), else final.
    pub(crate) fn error_status<T>(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Attempt<T> {
        let kind = ClientErrorKind::Status {
            status: status.as_u16(),
            detail: (self.error_detail)(body),
        };
        match self.retry_policy.retried(status, headers, body) {
            Some(Retried { server_wait }) => Attempt::Retry(kind, server_wait),
            None => Attempt::Fail(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use reqwest::{Method, Url};
    use serde_json::Value;

    use super::super::testing::{
        canned_server, fast_client, limits, scripted, scripted_with_headers, slow_server,
    };
    use super::super::RetryPolicy;
    use super::*;
    use crate::secrets::{Auth, Secret};

    async fn get_json_from(
        client: &HttpClient,
        url: &str,
    ) -> Result<(Response, Value), ClientError> {
        let request = Request::new(Method::GET, Url::parse(url).unwrap());
        client.send_checked(&request, Response::json::<Value>).await
    }

    #[tokio::test]
    async fn a_large_body_is_read_into_a_buffer_from_the_pool() {
        // Each test runs in its own process (nextest): the pool holds only what this one gives.
        let given = crate::buffers::LARGE.take(1 << 20);
        let address = given.as_ptr();
        crate::buffers::LARGE.give(given);
        let body = format!("\"{}\"", "x".repeat(300_000));
        let (base, _) = canned_server(vec![(200, body.clone())]).await;
        let request = Request::new(Method::GET, Url::parse(&format!("{base}/big")).unwrap());
        let response = fast_client(0).send(&request).await.unwrap();
        assert_eq!(response.body, body.as_bytes());
        assert_eq!(response.body.as_ptr(), address, "the pooled buffer");
        assert_eq!(crate::buffers::LARGE.kept().0, 0);
    }

    #[tokio::test]
    async fn a_deadline_lets_a_request_wait_longer_than_the_client_timeout_never_shorter() {
        let server = slow_server(Duration::from_millis(600)).await;
        let c = HttpClient::new(super::super::Limits {
            timeout: Duration::from_millis(200),
            ..limits(0, Duration::from_millis(500))
        });
        let plain = Request::new(Method::PATCH, Url::parse(&format!("{server}/x")).unwrap());
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
        let (_, value) = get_json_from(&fast_client(4), &format!("{base}/x"))
            .await
            .unwrap();
        assert_eq!(value["ok"], true);
        assert_eq!(*seen.lock().unwrap(), 5);
    }

    const PLEASE_RETRY: &str = r#"{"code": 409, "errno": 122, "error": "Conflict", "message": "Integrity constraint violated, please retry."}"#;

    #[tokio::test]
    async fn kintos_please_retry_conflict_is_retried_and_other_conflicts_are_final() {
        const EXISTS: &str = r#"{"code": 409, "errno": 122, "error": "Conflict", "message": "Conflict of field id on record r1"}"#;
        let (base, seen) = scripted(vec![
            Some((409, PLEASE_RETRY)),
            Some((200, r#"{"ok": true}"#)),
        ])
        .await;
        let (_, value) = get_json_from(&fast_client(4), &format!("{base}/x"))
            .await
            .unwrap();
        assert_eq!(value["ok"], true);
        assert_eq!(*seen.lock().unwrap(), 2);

        let (base, seen) = scripted(vec![Some((409, EXISTS)), Some((200, "{}"))]).await;
        let err = get_json_from(&fast_client(4), &format!("{base}/x"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(409));
        assert_eq!(*seen.lock().unwrap(), 1);
        // A status policy retries its statuses only.
        let redash = fast_client(4).with_retry_policy(RetryPolicy::Statuses(&[503]));
        let (base, seen) = scripted(vec![Some((409, PLEASE_RETRY)), Some((200, "{}"))]).await;
        assert!(get_json_from(&redash, &format!("{base}/x")).await.is_err());
        assert_eq!(*seen.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_please_retry_conflict_is_retried_after_the_clients_backoff_not_its_retry_after() {
        // Kinto sends its one `retry_after_seconds` with this 409 (3 by default, 30 in kinto.core).
        let (base, seen) = scripted_with_headers(vec![
            (409, "Retry-After: 30\r\n", PLEASE_RETRY),
            (200, "", r#"{"ok": true}"#),
        ])
        .await;
        let started = Instant::now();
        let (_, value) = get_json_from(&fast_client(4), &format!("{base}/x"))
            .await
            .unwrap();
        assert_eq!(value["ok"], true);
        assert_eq!(*seen.lock().unwrap(), 2);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );

        // Another retried answer's Retry-After is still honoured.
        let (base, _) = scripted_with_headers(vec![
            (503, "Retry-After: 1\r\n", "{}"),
            (200, "", r#"{"ok": true}"#),
        ])
        .await;
        let started = Instant::now();
        get_json_from(&fast_client(4), &format!("{base}/x"))
            .await
            .unwrap();
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn an_async_check_takes_the_answer_and_its_rejections_are_retried() {
        let (base, seen) = scripted(vec![
            Some((200, "not a changeset")),
            Some((200, r#"{"ok": true}"#)),
        ])
        .await;
        let client = fast_client(4);
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
        let err = fast_client(4)
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
        let client = fast_client(4).with_retry_policy(policy);
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
            let client = fast_client(4).with_retry_policy(policy);
            let err = get_json_from(&client, &format!("{base}/x"))
                .await
                .unwrap_err();
            assert_eq!(err.code(), code, "{status}: {err}");
            assert_eq!(err.attempts, 1, "{status} is not retried");
            assert_eq!(*seen.lock().unwrap(), 1, "{status} is not retried");
        }
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
        let err = get_json_from(&fast_client(4), &url).await.unwrap_err();
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
        let origin = Url::parse(&url).unwrap();
        let basic = fast_client(4).with_auth(
            &origin,
            Some(&Auth::Basic {
                user: "user".into(),
                password: Secret::new("hunter2"),
            }),
        );
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
        let bearer =
            fast_client(4).with_auth(&origin, Some(&Auth::Bearer(Secret::new("tok-m4rker"))));
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
        let err = fast_client(4).send(&request).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("m4rker"), "{text}");
        assert!(
            text.contains("HTTP 401 (refused token [redacted])"),
            "{text}"
        );
    }
}
