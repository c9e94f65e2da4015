//! PLACEHOLDER on the `bundles` branch until the lead's object-store layer lands on `main`: the
//! API of /work/prompts/store_api.md, so that `build_bundles` compiles. Every call fails. Replaced
//! wholesale by main's `commands/src/store/` at the merge.

use futures::stream::BoxStream;
use time::OffsetDateTime;

use crate::client::HttpClient;
use crate::settings::{RawSettings, Setting, SettingError};

pub const STORAGE_URL: Setting = Setting::new(
    "STORAGE_URL",
    "URL",
    "Object store: `gs://bucket/prefix` or `s3://bucket/prefix`",
);
pub const STORAGE_ENDPOINT: Setting =
    Setting::new("STORAGE_ENDPOINT", "URL", "Object store endpoint override");
pub const SETTINGS: &[&Setting] = &[&STORAGE_URL, &STORAGE_ENDPOINT];

#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub url: String,
}

impl StoreSettings {
    pub fn from_settings(raw: &RawSettings) -> Result<StoreSettings, SettingError> {
        let url = raw
            .get(&STORAGE_URL)
            .ok_or_else(|| SettingError::new(STORAGE_URL.env, "is required"))?;
        Ok(StoreSettings { url: url.into() })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(String);

#[derive(Debug, Clone)]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
    pub updated: OffsetDateTime,
    pub custom_time: Option<OffsetDateTime>,
}

#[derive(Clone, Debug)]
pub struct Store {
    url: String,
}

impl Store {
    pub fn new(settings: &StoreSettings, _http: &HttpClient) -> Result<Store, StoreError> {
        Ok(Store {
            url: settings.url.clone(),
        })
    }
    pub fn describe(&self) -> String {
        self.url.clone()
    }
    pub async fn put(&self, key: &str, _body: Vec<u8>, _ct: &str) -> Result<(), StoreError> {
        Err(StoreError(format!("placeholder store: cannot put {key}")))
    }
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        Err(StoreError(format!(
            "placeholder store: cannot delete {key}"
        )))
    }
    pub fn list<'a>(&'a self, prefix: &str) -> BoxStream<'a, Result<StoredObject, StoreError>> {
        let error = StoreError(format!("placeholder store: cannot list {prefix}"));
        Box::pin(futures::stream::iter(vec![Err(error)]))
    }
}
