//! The HTTP settings, validated: the run's client settings shared by every command (timeout,
//! retries, backoff, in-flight cap), and the Kinto server a command talks to with its
//! credentials.

use std::num::NonZeroUsize;
use std::time::Duration;

use reqwest::Url;

use super::shared::{
    PARALLEL_REQUESTS, REQUESTS_NB_RETRIES, REQUESTS_RETRY_BACKOFF_SECONDS,
    REQUESTS_TIMEOUT_SECONDS, SERVER,
};
use super::{RawSettings, Setting, SettingError};
use crate::secrets::Auth;

/// What the run's HTTP client is built with, whatever service a command talks to: `SERVER` and
/// the credentials are not read.
#[derive(Clone, Copy, Debug)]
pub struct HttpSettings {
    pub timeout: Duration,
    pub retries: u32,
    pub parallel: NonZeroUsize,
    pub retry_backoff: Duration,
}

impl HttpSettings {
    pub fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        Ok(HttpSettings {
            timeout: raw.duration_secs(&REQUESTS_TIMEOUT_SECONDS)?,
            retries: raw.uint(&REQUESTS_NB_RETRIES, 20)? as u32,
            parallel: raw.nonzero(&PARALLEL_REQUESTS, 256)?,
            retry_backoff: raw.duration_secs(&REQUESTS_RETRY_BACKOFF_SECONDS)?,
        })
    }
}

/// The Kinto server a command talks to (`SERVER`) and the command's credentials for it.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub url: Url,
    pub auth: Option<Auth>,
}

impl ServerSettings {
    /// The server of a command that reads the source (workspace) collections: `AUTH` is
    /// required, since those are not public.
    pub fn reading_sources(raw: &RawSettings) -> Result<Self, SettingError> {
        let server = ServerSettings::from_settings(raw, &super::shared::AUTH)?;
        if server.auth.is_none() {
            return Err(SettingError::new(
                super::shared::AUTH.env,
                "not set: credentials that can read the source (workspace) collections are \
                 required (user:pass or a Bearer token)",
            ));
        }
        Ok(server)
    }

    /// `auth` is the setting holding this command's credentials (`AUTH`,
    /// `REFRESH_SIGNATURE_AUTH`, ...).
    pub fn from_settings(raw: &RawSettings, auth: &Setting) -> Result<Self, SettingError> {
        Ok(ServerSettings {
            url: raw.server_url(&SERVER)?,
            auth: raw.secret(auth).map(|s| Auth::parse(&s)),
        })
    }
}
