//! Google Cloud Storage through its JSON API, sent with the run's client (its retries, timeouts
//! and in-flight cap). The bearer token comes from `object_store`'s Google credential chain: the
//! service account file of `GOOGLE_APPLICATION_CREDENTIALS`, the gcloud application default
//! credentials, else the metadata server. The JSON API rather than the crate's own GCS client
//! because listings must carry `customTime` and marks must set it, which the crate does not do.

use std::sync::Arc;

use futures::StreamExt;
use object_store::gcp::{GcpCredentialProvider, GoogleCloudStorageBuilder};
use reqwest::{Method, Url};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::location::{percent_encode, Location, Slashes};
use super::{StoreError, StoredObject};
use crate::client::{HttpClient, Request, Response};

/// Google's endpoint, unless `STORAGE_ENDPOINT` says otherwise.
pub const GOOGLE_ENDPOINT: &str = "https://storage.googleapis.com";
/// The JSON API takes at most 100 calls in one batch.
pub const BATCH_SIZE: usize = 100;
/// Objects per listing page (the API's maximum).
const PAGE_SIZE: &str = "1000";

#[derive(Clone)]
pub struct Gcs {
    location: Location,
    endpoint: Url,
    http: HttpClient,
    credentials: Option<GcpCredentialProvider>,
}

impl std::fmt::Debug for Gcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gcs({})", self.location)
    }
}

/// One object of a listing page, as the JSON API spells it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    name: String,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    updated: Option<String>,
    #[serde(default)]
    custom_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl Gcs {
    /// `application_credentials`: the service account file (`GOOGLE_APPLICATION_CREDENTIALS`).
    pub fn new(
        location: &Location,
        endpoint: Option<&Url>,
        application_credentials: Option<&str>,
        http: &HttpClient,
    ) -> Result<Gcs, StoreError> {
        let mut builder = GoogleCloudStorageBuilder::new().with_bucket_name(&location.bucket);
        if let Some(path) = application_credentials {
            builder = builder.with_application_credentials(path);
        }
        let store = builder
            .build()
            .map_err(|e| StoreError::Credentials(super::one_line(&e)))?;
        let endpoint = match endpoint {
            Some(url) => url.clone(),
            None => Url::parse(GOOGLE_ENDPOINT).expect("a valid URL"),
        };
        Ok(Gcs {
            location: location.clone(),
            endpoint,
            http: http.clone(),
            credentials: Some(Arc::clone(store.credentials())),
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.endpoint.clone();
        url.set_path(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// `/storage/v1/b/<bucket>/o/<name>` with the name percent-encoded as one segment.
    fn object_path(&self, key: &str) -> String {
        format!(
            "/storage/v1/b/{}/o/{}",
            self.location.bucket,
            percent_encode(&self.location.object_name(key), Slashes::Encoded)
        )
    }

    /// The request with this run's bearer token (none when the credentials say so, as the
    /// emulator's service-account files may).
    async fn authorized(&self, request: Request) -> Result<Request, StoreError> {
        let Some(provider) = &self.credentials else {
            return Ok(request);
        };
        let credential = provider
            .get_credential()
            .await
            .map_err(|e| StoreError::Credentials(super::one_line(&e)))?;
        if credential.bearer.is_empty() {
            return Ok(request);
        }
        Ok(request.secret_header("Authorization", &format!("Bearer {}", credential.bearer)))
    }

    async fn send(&self, request: Request) -> Result<Response, StoreError> {
        let request = self.authorized(request).await?;
        Ok(self.http.send(&request).await?)
    }

    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let path = format!("/upload/storage/v1/b/{}/o", self.location.bucket);
        let name = self.location.object_name(key);
        let url = self.url(&path, &[("uploadType", "media"), ("name", &name)]);
        let request = Request::new(Method::POST, url)
            .bytes(body)
            .header("Content-Type", content_type.to_string());
        self.send(request).await.map(drop)
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let url = self.url(&self.object_path(key), &[("alt", "media")]);
        Ok(self.send(Request::new(Method::GET, url)).await?.body)
    }

    pub async fn head(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        let url = self.url(&self.object_path(key), &[]);
        match self.send(Request::new(Method::GET, url)).await {
            Ok(response) => {
                let item: Item = response
                    .json()
                    .map_err(|e| StoreError::Shape(e.to_string()))?;
                self.object(item).map(Some)
            }
            Err(StoreError::Http(e)) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Delete an object; one already gone counts as deleted (a retry whose first answer was lost).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let url = self.url(&self.object_path(key), &[]);
        match self.send(Request::new(Method::DELETE, url)).await {
            Ok(_) => Ok(()),
            Err(StoreError::Http(e)) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One page of the objects under `prefix` (relative to the store's), from `token`.
    pub async fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<(Vec<StoredObject>, Option<String>), StoreError> {
        let path = format!("/storage/v1/b/{}/o", self.location.bucket);
        let full_prefix = self.location.object_name(prefix);
        let mut query = vec![
            ("prefix", full_prefix.as_str()),
            ("maxResults", PAGE_SIZE),
            (
                "fields",
                "items(name,size,updated,customTime),nextPageToken",
            ),
        ];
        if let Some(token) = token {
            query.push(("pageToken", token));
        }
        let response = self
            .send(Request::new(Method::GET, self.url(&path, &query)))
            .await?;
        let page: Page = response
            .json()
            .map_err(|e| StoreError::Shape(e.to_string()))?;
        let objects = page
            .items
            .into_iter()
            .map(|item| self.object(item))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((objects, page.next_page_token.filter(|t| !t.is_empty())))
    }

    fn object(&self, item: Item) -> Result<StoredObject, StoreError> {
        let key = self
            .location
            .key_of(&item.name)
            .ok_or_else(|| StoreError::Shape(format!("{} is outside the prefix", item.name)))?
            .to_string();
        let size = match &item.size {
            Some(size) => size
                .parse()
                .map_err(|_| StoreError::Shape(format!("{key}: size {size:?} is not a number")))?,
            None => 0,
        };
        let date = |field: &Option<String>,
                    what: &str|
         -> Result<Option<OffsetDateTime>, StoreError> {
            field
                .as_deref()
                .map(|v| {
                    OffsetDateTime::parse(v, &Rfc3339).map_err(|_| {
                        StoreError::Shape(format!("{key}: {what} {v:?} is not an RFC 3339 date"))
                    })
                })
                .transpose()
        };
        Ok(StoredObject {
            updated: date(&item.updated, "updated")?.unwrap_or(OffsetDateTime::UNIX_EPOCH),
            custom_time: date(&item.custom_time, "customTime")?,
            size,
            key,
        })
    }

    /// Set `customTime` on each of `keys`, in batches of [`BATCH_SIZE`] calls (the JSON API's
    /// batch endpoint), as many batches at once as the run's in-flight cap allows. The results
    /// come in the order of `keys`.
    pub async fn set_custom_time(
        &self,
        keys: &[String],
        at: OffsetDateTime,
    ) -> Vec<Result<(), StoreError>> {
        let at = at.format(&Rfc3339).expect("a date formats as RFC 3339");
        let at = &at;
        futures::stream::iter(keys.chunks(BATCH_SIZE))
            .map(|chunk| self.patch_batch(chunk, at))
            .buffered(self.http.parallel())
            .flat_map(futures::stream::iter)
            .collect()
            .await
    }

    async fn patch_batch(&self, keys: &[String], at: &str) -> Vec<Result<(), StoreError>> {
        let body = super::batch::patch_body(
            keys.iter().map(|key| self.object_path(key)),
            &serde_json::json!({ "customTime": at }).to_string(),
        );
        let request = Request::new(Method::POST, self.url("/batch/storage/v1", &[]))
            .header("Content-Type", body.content_type())
            .bytes(body.bytes);
        let response = match self.send(request).await {
            Ok(response) => response,
            Err(e) => return keys.iter().map(|_| Err(e.clone())).collect(),
        };
        super::batch::statuses(&response, keys.len())
            .into_iter()
            .zip(keys)
            .map(|(status, key)| match status {
                Ok(200..=299) => Ok(()),
                Ok(status) => Err(StoreError::Shape(format!(
                    "setting customTime on {key} answered HTTP {status}"
                ))),
                Err(why) => Err(StoreError::Shape(format!("{key}: {why}"))),
            })
            .collect()
    }
}
