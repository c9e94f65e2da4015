//! The HTTP client's settings, validated: server, timeout, retries, backoff, in-flight cap and the
//! run's credentials.

use std::num::NonZeroUsize;
use std::time::Duration;

use reqwest::Url;

use super::shared::{
    PARALLEL_REQUESTS, REQUESTS_NB_RETRIES, REQUESTS_RETRY_BACKOFF_SECONDS,
    REQUESTS_TIMEOUT_SECONDS, SERVER,
};
use super::{RawSettings, Setting, SettingError};
use crate::secrets::Auth;

/// Everything the HTTP client needs, validated.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub server: Url,
    pub timeout: Duration,
    pub retries: u32,
    pub parallel: NonZeroUsize,
    pub retry_backoff: Duration,
    pub auth: Option<Auth>,
}

impl HttpSettings {
    /// The settings shared by every command; `auth` is the setting holding this command's
    /// credentials (`AUTH`, `REFRESH_SIGNATURE_AUTH`, ...).
    pub fn from_settings(raw: &RawSettings, auth: &Setting) -> Result<Self, SettingError> {
        let server = raw.server_url(&SERVER)?;
        Ok(HttpSettings {
            auth: raw.secret(auth).map(|s| Auth::parse(&s)),
            ..HttpSettings::for_service(raw, server)?
        })
    }

    /// The settings of a command that reads the source (workspace) collections: `AUTH` is
    /// required, since those are not public.
    pub fn reading_sources(raw: &RawSettings) -> Result<Self, SettingError> {
        let http = HttpSettings::from_settings(raw, &super::shared::AUTH)?;
        if http.auth.is_none() {
            return Err(SettingError::new(
                super::shared::AUTH.env,
                "not set: credentials that can read the source (workspace) collections are \
                 required (user:pass or a Bearer token)",
            ));
        }
        Ok(http)
    }

    /// The shared request settings (timeout, retries, backoff, in-flight cap) for a client of
    /// another service than the Kinto server (e.g. Redash): `SERVER` and `AUTH` are not read, and
    /// no credentials are attached.
    pub fn for_service(raw: &RawSettings, server: Url) -> Result<Self, SettingError> {
        Ok(HttpSettings {
            server,
            timeout: raw.duration_secs(&REQUESTS_TIMEOUT_SECONDS)?,
            retries: raw.uint(&REQUESTS_NB_RETRIES, 20)? as u32,
            parallel: raw.nonzero(&PARALLEL_REQUESTS, 256)?,
            retry_backoff: raw.duration_secs(&REQUESTS_RETRY_BACKOFF_SECONDS)?,
            auth: None,
        })
    }
}
