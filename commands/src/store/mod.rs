//! The object-store layer: one [`Store`] for Google Cloud Storage and Amazon S3, addressed by a
//! URL (`STORAGE_URL=gs://bucket/prefix` or `s3://bucket/prefix`, `STORAGE_ENDPOINT` for an
//! emulator or an S3-compatible server), with credentials from each cloud's own chain as its
//! SDKs read it (see [`gcs`] and [`aws`]). Keys are relative to the URL's prefix. Requests go
//! through the run's limits: its timeout, retries and in-flight cap.

pub mod aws;
mod batch;
pub mod gcs;
pub mod location;

use futures::stream::{self, BoxStream, StreamExt};
use reqwest::Url;
use time::OffsetDateTime;

use crate::client::{ClientError, HttpClient};
use crate::settings::{RawSettings, Setting, SettingError};
pub use location::{Cloud, Location};

pub const STORAGE_URL: Setting = Setting::new(
    "STORAGE_URL",
    "URL",
    "Where the objects are: gs://bucket/prefix (Google Cloud Storage) or s3://bucket/prefix",
)
.event_key("storage_url");
pub const STORAGE_ENDPOINT: Setting = Setting::new(
    "STORAGE_ENDPOINT",
    "URL",
    "Endpoint of the store's API instead of the cloud's (an emulator, an S3-compatible server)",
)
.derived("the cloud's");
pub const GOOGLE_APPLICATION_CREDENTIALS: Setting = Setting::new(
    "GOOGLE_APPLICATION_CREDENTIALS",
    "FILE",
    "Google service account key file (else gcloud's application default credentials, else the metadata server)",
);
pub const AWS_REGION: Setting = Setting::new("AWS_REGION", "REGION", "AWS region of an S3 store")
    .default("us-east-1")
    .event_key("aws_region");

/// What a command that uses a store takes (with [`aws::CREDENTIALS`] for S3 stores): where, and
/// Google's credentials.
pub const SETTINGS: &[&Setting] = &[
    &STORAGE_URL,
    &STORAGE_ENDPOINT,
    &AWS_REGION,
    &GOOGLE_APPLICATION_CREDENTIALS,
];

/// An object of a listing, or of a `head`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Relative to the store's prefix.
    pub key: String,
    pub size: u64,
    /// Last modification.
    pub updated: OffsetDateTime,
    /// GCS `customTime` (what lifecycle rules such as "delete 30 days after" count from).
    pub custom_time: Option<OffsetDateTime>,
}

/// Why a store operation failed: one line, never a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Http(#[from] ClientError),
    #[error("{0}")]
    Object(String),
    #[error("store credentials: {0}")]
    Credentials(String),
    #[error("unexpected store answer: {0}")]
    Shape(String),
    #[error("{0}")]
    Unsupported(String),
}

impl StoreError {
    /// The error in JSON reports: the client's fields for an HTTP failure, else a code and the
    /// message.
    pub fn json(&self) -> serde_json::Value {
        let code = match self {
            StoreError::Http(e) => return crate::report::client_error_json(e),
            StoreError::Object(_) => "STORE_FAILED",
            StoreError::Credentials(_) => "STORE_CREDENTIALS",
            StoreError::Shape(_) => "UNEXPECTED_RESPONSE",
            StoreError::Unsupported(_) => "UNSUPPORTED",
        };
        serde_json::json!({ "code": code, "message": self.to_string() })
    }

    /// The HTTP status of the failed request, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            StoreError::Http(e) => e.status(),
            _ => None,
        }
    }
}

/// An error's text on one line.
pub(crate) fn one_line(error: &dyn std::fmt::Display) -> String {
    crate::client::error::one_line(&error.to_string())
}

/// A store's settings, validated.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub location: Location,
    pub endpoint: Option<Url>,
    pub region: String,
    pub google_credentials: Option<String>,
    pub aws: aws::AwsCredentials,
}

impl StoreSettings {
    /// `STORAGE_URL` is required.
    pub fn from_settings(raw: &RawSettings) -> Result<StoreSettings, SettingError> {
        Self::at(raw, location(raw, "is required")?)
    }

    /// The store at `location`, with the rest of the settings (for a command that names its
    /// bucket otherwise, as `blockpages_generator` does).
    pub fn at(raw: &RawSettings, location: Location) -> Result<StoreSettings, SettingError> {
        Ok(StoreSettings {
            region: region(raw, &AWS_REGION)?,
            aws: aws::AwsCredentials::from_settings(raw)?,
            ..Self::google_at(raw, location)?
        })
    }

    /// A Google Cloud Storage store only (`STORAGE_URL` required and `gs://`), for a command
    /// that uses what only GCS has (`customTime`) and so declares no AWS settings.
    pub fn gcs_only(raw: &RawSettings, why: &str) -> Result<StoreSettings, SettingError> {
        let location = location(raw, "is required (gs://bucket/prefix)")?;
        if location.cloud != Cloud::Gcs {
            return Err(SettingError::new(
                STORAGE_URL.env,
                format!("{location} is not a gs:// URL: {why}"),
            ));
        }
        Self::google_at(raw, location)
    }

    /// The settings every store reads: its endpoint and Google's credentials file.
    fn google_at(raw: &RawSettings, location: Location) -> Result<StoreSettings, SettingError> {
        let endpoint = match raw.get(&STORAGE_ENDPOINT) {
            Some(_) => Some(raw.server_url(&STORAGE_ENDPOINT)?),
            None => None,
        };
        Ok(StoreSettings {
            location,
            endpoint,
            region: String::new(),
            google_credentials: raw
                .get(&GOOGLE_APPLICATION_CREDENTIALS)
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty()),
            aws: aws::AwsCredentials::default(),
        })
    }
}

/// `STORAGE_URL`, parsed; `missing` says why it is needed when it is not set.
fn location(raw: &RawSettings, missing: &str) -> Result<Location, SettingError> {
    let url = raw
        .get(&STORAGE_URL)
        .ok_or_else(|| SettingError::new(STORAGE_URL.env, missing))?;
    Location::parse(url).map_err(|e| SettingError::new(STORAGE_URL.env, e))
}

/// An AWS region name from `setting`.
pub fn region(raw: &RawSettings, setting: &Setting) -> Result<String, SettingError> {
    let region = raw.string(setting);
    let valid = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(region)
    } else {
        Err(SettingError::new(
            setting.env,
            format!(
                "{} is not an AWS region name",
                crate::settings::quote(&region)
            ),
        ))
    }
}

/// A bucket (and prefix) in one of the clouds.
#[derive(Debug, Clone)]
pub enum Store {
    Gcs(gcs::Gcs),
    S3(aws::S3),
}

impl Store {
    /// The store, its credential chain ready (credentials are fetched at the first request).
    pub fn new(settings: &StoreSettings, http: &HttpClient) -> Result<Store, StoreError> {
        match settings.location.cloud {
            Cloud::Gcs => Ok(Store::Gcs(gcs::Gcs::new(
                &settings.location,
                settings.endpoint.as_ref(),
                settings.google_credentials.as_deref(),
                http,
            )?)),
            Cloud::S3 => Ok(Store::S3(aws::S3::new(
                &settings.location,
                &settings.region,
                settings.endpoint.as_ref(),
                &settings.aws,
                http,
            )?)),
        }
    }

    pub fn is_gcs(&self) -> bool {
        matches!(self, Store::Gcs(_))
    }

    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        match self {
            Store::Gcs(s) => s.put(key, body, content_type).await,
            Store::S3(s) => s.put(key, body, content_type).await,
        }
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        match self {
            Store::Gcs(s) => s.get(key).await,
            Store::S3(s) => s.get(key).await,
        }
    }

    /// The object, or `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        match self {
            Store::Gcs(s) => s.head(key).await,
            Store::S3(s) => s.head(key).await,
        }
    }

    /// Delete an object; one already gone counts as deleted.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::Gcs(s) => s.delete(key).await,
            Store::S3(s) => s.delete(key).await,
        }
    }

    /// Every object whose key starts with `prefix`, streamed: pages are fetched as the stream is
    /// read, so a listing of any size runs in the memory of one page.
    pub fn list(&self, prefix: &str) -> BoxStream<'static, Result<StoredObject, StoreError>> {
        enum State {
            Start,
            Next(String),
            Done,
        }
        let (store, prefix) = (self.clone(), prefix.to_string());
        stream::unfold(State::Start, move |state| {
            let (store, prefix) = (store.clone(), prefix.clone());
            async move {
                let token = match state {
                    State::Done => return None,
                    State::Start => None,
                    State::Next(token) => Some(token),
                };
                match store.list_page(&prefix, token.as_deref()).await {
                    Ok((objects, next)) => {
                        let state = next.map_or(State::Done, State::Next);
                        Some((stream::iter(objects.into_iter().map(Ok)).boxed(), state))
                    }
                    Err(e) => Some((stream::iter([Err(e)]).boxed(), State::Done)),
                }
            }
        })
        .flatten()
        .boxed()
    }

    /// One page of the listing, and the token of the next one.
    async fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<(Vec<StoredObject>, Option<String>), StoreError> {
        match self {
            Store::Gcs(s) => s.list_page(prefix, token).await,
            Store::S3(s) => s.list_page(prefix, token).await,
        }
    }

    /// Set GCS `customTime` on `keys` (batched); the results come in the order of `keys`. Other
    /// clouds have no such field: every key fails with why.
    pub async fn set_custom_time(
        &self,
        keys: &[String],
        at: OffsetDateTime,
    ) -> Vec<Result<(), StoreError>> {
        match self {
            Store::Gcs(s) => s.set_custom_time(keys, at).await,
            Store::S3(_) => keys
                .iter()
                .map(|_| {
                    Err(StoreError::Unsupported(
                        "customTime marks are a Google Cloud Storage feature".into(),
                    ))
                })
                .collect(),
        }
    }

    /// `gs://bucket/prefix`, for reports.
    pub fn describe(&self) -> String {
        match self {
            Store::Gcs(s) => s.location().to_string(),
            Store::S3(s) => s.location().to_string(),
        }
    }
}
