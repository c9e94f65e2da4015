//! The reqwest clients under [`super::HttpClient`]: rustls, User-Agent, connect and read
//! timeouts, and redirects followed only within the same origin (a redirect elsewhere is an
//! error, so nothing leaks to another host).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, USER_AGENT};
use reqwest::Url;

pub const USER_AGENT_VALUE: &str = concat!("remote-settings-lambdas/", env!("CARGO_PKG_VERSION"));

/// The same scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A timeout and the two reqwest clients that apply it.
#[derive(Debug)]
pub(crate) struct Transport {
    /// Connect and per-read timeout.
    pub timeout: Duration,
    pub http: reqwest::Client,
    /// The same without the per-read timeout, for requests with a
    /// [`super::Request::deadline`].
    pub http_deadline: reqwest::Client,
}

impl Transport {
    pub(crate) fn new(timeout: Duration) -> Self {
        Transport {
            timeout,
            http: builder(timeout)
                .read_timeout(timeout)
                .build()
                .expect("the TLS backend initialises"),
            http_deadline: builder(timeout)
                .build()
                .expect("the TLS backend initialises"),
        }
    }

    /// The request builder for `method url`: with the per-read timeout, or with a deadline for
    /// the whole request (which lets a request wait longer than the timeout, never shorter).
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: Url,
        deadline: Option<Duration>,
    ) -> reqwest::RequestBuilder {
        match deadline {
            None => self.http.request(method, url),
            Some(deadline) => self
                .http_deadline
                .request(method, url)
                .timeout(deadline.max(self.timeout)),
        }
    }
}

fn builder(connect_timeout: Duration) -> reqwest::ClientBuilder {
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    test_resolve(reqwest::Client::builder())
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

/// Test hook, compiled into debug builds only (the release and Lambda builds do not have it):
/// `RSL_TEST_RESOLVE=host=127.0.0.1` makes `host` resolve to that address, so that a test can
/// aim at a loopback stack under one of Mozilla's host names (the URL keeps the port).
#[cfg(debug_assertions)]
fn test_resolve(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    let Ok(value) = std::env::var("RSL_TEST_RESOLVE") else {
        return builder;
    };
    let (host, ip) = value.split_once('=').expect("RSL_TEST_RESOLVE is host=ip");
    let ip: std::net::IpAddr = ip
        .trim()
        .parse()
        .expect("RSL_TEST_RESOLVE names an IP address");
    builder.resolve(host.trim(), std::net::SocketAddr::new(ip, 0))
}

#[cfg(not(debug_assertions))]
fn test_resolve(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    builder
}
