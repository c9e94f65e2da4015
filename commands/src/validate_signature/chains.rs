//! The x5u chains of a run: each URL is downloaded once (however many collections and tasks ask
//! for it at the same time), without credentials, capped at [`MAX_X5U_BYTES`], validated off the
//! async executor, and the outcome, good or bad, is kept for the rest of the run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use reqwest::Url;
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::client::{ClientError, ClientErrorKind, HttpClient};
use crate::signature::chain::{self, MAX_X5U_BYTES};
use crate::signature::{colon_hex, CertChain, ChainPolicy, ErrorCode, VerifyError};

pub type ChainOutcome = Result<Arc<CertChain>, VerifyError>;

/// Run CPU-bound work on the blocking pool; a panic there is re-raised here.
pub async fn off_executor<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The URL of an x5u, which must be http(s) with a host.
pub fn x5u_url(x5u: &str) -> Result<Url, VerifyError> {
    Url::parse(x5u)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            VerifyError::new(
                ErrorCode::X5uInvalidUrl,
                format!("x5u {} is not an http(s) URL", crate::settings::quote(x5u)),
            )
        })
}

/// Download an x5u chain: without credentials, capped at [`MAX_X5U_BYTES`].
pub async fn download(client: &HttpClient, url: &Url) -> Result<Vec<u8>, ClientError> {
    client.get_external(url, MAX_X5U_BYTES).await
}

pub struct ChainCache {
    client: HttpClient,
    policy: ChainPolicy,
    cells: Mutex<BTreeMap<String, Arc<OnceCell<ChainOutcome>>>>,
}

/// What the report says about one x5u.
#[derive(Debug, Clone, Serialize)]
pub struct ChainInfo {
    pub x5u: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The earliest notAfter of the chain, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// The error code of an x5u download that failed.
pub fn x5u_error(err: &ClientError) -> VerifyError {
    let code = match err.kind {
        ClientErrorKind::TooLarge(_) => ErrorCode::X5uTooLarge,
        ClientErrorKind::Connect(_) | ClientErrorKind::Timeout | ClientErrorKind::Body(_) => {
            ErrorCode::X5uUnreachable
        }
        ClientErrorKind::Status { .. }
        | ClientErrorKind::Forbidden(_)
        | ClientErrorKind::Shape(_) => ErrorCode::X5uHttpError,
    };
    VerifyError::new(code, err.to_string())
}

impl ChainCache {
    pub fn new(client: HttpClient, policy: ChainPolicy) -> Self {
        ChainCache {
            client,
            policy,
            cells: Mutex::new(BTreeMap::new()),
        }
    }

    /// The validated chain behind `x5u`, downloading it on first use.
    pub async fn get(&self, x5u: &str) -> ChainOutcome {
        let cell = self
            .cells
            .lock()
            .expect("chain cache lock")
            .entry(x5u.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| self.fetch(x5u)).await.clone()
    }

    async fn fetch(&self, x5u: &str) -> ChainOutcome {
        let pem = download(&self.client, &x5u_url(x5u)?)
            .await
            .map_err(|e| x5u_error(&e))?;
        let policy = self.policy;
        off_executor(move || chain::validate(&pem, &policy).map(Arc::new))
            .await
            .map_err(|e| VerifyError::new(e.code, format!("{x5u}: {}", e.detail)))
    }

    /// Every x5u of the run and what became of it.
    pub fn infos(&self) -> Vec<ChainInfo> {
        let cells = self.cells.lock().expect("chain cache lock");
        cells
            .iter()
            .filter_map(|(x5u, cell)| {
                let outcome = cell.get()?;
                Some(match outcome {
                    Ok(chain) => ChainInfo {
                        x5u: x5u.clone(),
                        status: "ok",
                        code: None,
                        detail: None,
                        root_sha256: Some(colon_hex(&chain.root_sha256)),
                        root: chain.certs.last().map(|c| c.subject.clone()),
                        expires: chain.certs.iter().map(|c| c.not_after).min(),
                    },
                    Err(e) => ChainInfo {
                        x5u: x5u.clone(),
                        status: "bad",
                        code: Some(e.code),
                        detail: Some(e.detail.clone()),
                        root_sha256: None,
                        root: None,
                        expires: None,
                    },
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_error(kind: ClientErrorKind) -> ClientError {
        ClientError {
            method: "GET".into(),
            url: "http://h/chain.pem".into(),
            attempts: 1,
            kind,
        }
    }

    #[test]
    fn download_failures_map_to_x5u_codes() {
        let status = ClientErrorKind::Status {
            status: 404,
            detail: None,
        };
        assert_eq!(
            x5u_error(&client_error(status)).code,
            ErrorCode::X5uHttpError
        );
        let redirect = ClientErrorKind::Forbidden("a redirect to another origin (HTTP 302)".into());
        assert_eq!(
            x5u_error(&client_error(redirect)).code,
            ErrorCode::X5uHttpError
        );
        let big = ClientErrorKind::TooLarge(MAX_X5U_BYTES);
        assert_eq!(x5u_error(&client_error(big)).code, ErrorCode::X5uTooLarge);
        let timeout = ClientErrorKind::Timeout;
        let err = x5u_error(&client_error(timeout));
        assert_eq!(err.code, ErrorCode::X5uUnreachable);
        assert!(err.detail.contains("http://h/chain.pem"), "{}", err.detail);
    }
}
