//! Amazon S3 (and S3-compatible servers) through `object_store`: its credential chain as the AWS
//! SDKs read it (the key variables, the container credentials endpoint of ECS and EKS Pod
//! Identity, web identity, else instance metadata) and its object API. Requests hold one of the
//! run's in-flight slots each and retry as the run's client does.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutOptions, RetryConfig,
};
use reqwest::{Method, Url};
use time::OffsetDateTime;

use super::location::Location;
use super::{one_line, StoreError, StoredObject};
use crate::client::{HttpClient, Request};
use crate::settings::{quote, RawSettings, Setting, SettingError};

pub const AWS_ACCESS_KEY_ID: Setting = Setting::new(
    "AWS_ACCESS_KEY_ID",
    "ID",
    "AWS access key id (else the container credentials endpoint, web identity, instance metadata)",
);
pub const AWS_SECRET_ACCESS_KEY: Setting = Setting::new(
    "AWS_SECRET_ACCESS_KEY",
    "SECRET",
    "AWS secret access key (required with AWS_ACCESS_KEY_ID)",
)
.secret();
pub const AWS_SESSION_TOKEN: Setting = Setting::new(
    "AWS_SESSION_TOKEN",
    "TOKEN",
    "AWS session token, for temporary credentials",
)
.secret();
pub const AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: Setting = Setting::new(
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "PATH",
    "ECS container credentials path on 169.254.170.2",
);
pub const AWS_CONTAINER_CREDENTIALS_FULL_URI: Setting = Setting::new(
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "URL",
    "Container credentials URL (EKS Pod Identity), with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
);
pub const AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: Setting = Setting::new(
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "FILE",
    "File holding the container credentials URL's token, read at each request",
);
pub const AWS_WEB_IDENTITY_TOKEN_FILE: Setting = Setting::new(
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "FILE",
    "Web identity token file (with AWS_ROLE_ARN): credentials from STS",
);
pub const AWS_ROLE_ARN: Setting = Setting::new(
    "AWS_ROLE_ARN",
    "ARN",
    "Role assumed with the web identity token",
);

/// The settings of the AWS credential chain.
pub const CREDENTIALS: &[&Setting] = &[
    &AWS_ACCESS_KEY_ID,
    &AWS_SECRET_ACCESS_KEY,
    &AWS_SESSION_TOKEN,
    &AWS_CONTAINER_CREDENTIALS_RELATIVE_URI,
    &AWS_CONTAINER_CREDENTIALS_FULL_URI,
    &AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
    &AWS_WEB_IDENTITY_TOKEN_FILE,
    &AWS_ROLE_ARN,
];

/// The chain's settings that were given, for the builder (checked for pairs that go together).
#[derive(Clone, Default)]
pub struct AwsCredentials(Vec<(AmazonS3ConfigKey, String)>);

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Which sources are set, never their values.
        let keys: Vec<String> = self.0.iter().map(|(k, _)| k.as_ref().to_string()).collect();
        f.debug_tuple("AwsCredentials").field(&keys).finish()
    }
}

impl AwsCredentials {
    pub fn from_settings(raw: &RawSettings) -> Result<AwsCredentials, SettingError> {
        let get = |s: &Setting| {
            raw.get(s)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let pairs = [
            (&AWS_ACCESS_KEY_ID, &AWS_SECRET_ACCESS_KEY),
            (&AWS_SECRET_ACCESS_KEY, &AWS_ACCESS_KEY_ID),
            (
                &AWS_CONTAINER_CREDENTIALS_FULL_URI,
                &AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
            ),
            (&AWS_WEB_IDENTITY_TOKEN_FILE, &AWS_ROLE_ARN),
        ];
        for (given, needed) in pairs {
            if get(given).is_some() && get(needed).is_none() {
                return Err(SettingError::new(
                    needed.env,
                    format!("is required with {}", given.env),
                ));
            }
        }
        if let Some(relative) = get(&AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) {
            if !relative.starts_with('/') {
                return Err(SettingError::new(
                    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI.env,
                    format!("{} is not a path starting with /", quote(&relative)),
                ));
            }
        }
        if get(&AWS_CONTAINER_CREDENTIALS_FULL_URI).is_some() {
            raw.http_url(&AWS_CONTAINER_CREDENTIALS_FULL_URI)?;
        }
        let keys = [
            (&AWS_ACCESS_KEY_ID, AmazonS3ConfigKey::AccessKeyId),
            (&AWS_SECRET_ACCESS_KEY, AmazonS3ConfigKey::SecretAccessKey),
            (&AWS_SESSION_TOKEN, AmazonS3ConfigKey::Token),
            (
                &AWS_CONTAINER_CREDENTIALS_RELATIVE_URI,
                AmazonS3ConfigKey::ContainerCredentialsRelativeUri,
            ),
            (
                &AWS_CONTAINER_CREDENTIALS_FULL_URI,
                AmazonS3ConfigKey::ContainerCredentialsFullUri,
            ),
            (
                &AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
                AmazonS3ConfigKey::ContainerAuthorizationTokenFile,
            ),
            (
                &AWS_WEB_IDENTITY_TOKEN_FILE,
                AmazonS3ConfigKey::WebIdentityTokenFile,
            ),
            (&AWS_ROLE_ARN, AmazonS3ConfigKey::RoleArn),
        ];
        Ok(AwsCredentials(
            keys.into_iter()
                .filter_map(|(setting, key)| get(setting).map(|v| (key, v)))
                .collect(),
        ))
    }
}

#[derive(Clone)]
pub struct S3 {
    location: Location,
    store: Arc<AmazonS3>,
    http: HttpClient,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3({})", self.location)
    }
}

/// The crate's client options and retries, from the run's limits.
fn client_options(http: &HttpClient) -> (ClientOptions, RetryConfig) {
    let limits = http.limits();
    let options = ClientOptions::new()
        .with_timeout(limits.timeout)
        .with_connect_timeout(limits.timeout)
        .with_user_agent(reqwest::header::HeaderValue::from_static(
            crate::client::USER_AGENT_VALUE,
        ));
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: limits.retry_backoff.max(Duration::from_millis(10)),
            max_backoff: Duration::from_secs(30),
            base: 2.0,
        },
        max_retries: limits.retries as usize,
        retry_timeout: Duration::from_secs(5 * 60),
    };
    (options, retry)
}

impl S3 {
    /// `endpoint`: an S3-compatible server (path-style requests); `None` is AWS in `region`.
    pub fn new(
        location: &Location,
        region: &str,
        endpoint: Option<&Url>,
        credentials: &AwsCredentials,
        http: &HttpClient,
    ) -> Result<S3, StoreError> {
        let (mut options, retry) = client_options(http);
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&location.bucket)
            .with_region(region)
            .with_retry(retry);
        if let Some(endpoint) = endpoint {
            options = options.with_allow_http(endpoint.scheme() == "http");
            builder = builder
                .with_endpoint(endpoint.as_str().trim_end_matches('/'))
                .with_virtual_hosted_style_request(false);
        }
        for (key, value) in &credentials.0 {
            builder = builder.with_config(*key, value);
        }
        let store = builder
            .with_client_options(options)
            .build()
            .map_err(|e| StoreError::Credentials(one_line(&e)))?;
        Ok(S3 {
            location: location.clone(),
            store: Arc::new(store),
            http: http.clone(),
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    fn path(&self, key: &str) -> Path {
        Path::from(self.location.object_name(key))
    }

    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let _slot = self.http.slot().await;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_string().into());
        let options = PutOptions {
            attributes,
            ..Default::default()
        };
        self.store
            .put_opts(&self.path(key), body.into(), options)
            .await
            .map(drop)
            .map_err(|e| self.error("PUT", key, e))
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let _slot = self.http.slot().await;
        let result = self.store.get(&self.path(key)).await;
        let bytes = match result {
            Ok(result) => result.bytes().await,
            Err(e) => Err(e),
        };
        bytes
            .map(|b| b.to_vec())
            .map_err(|e| self.error("GET", key, e))
    }

    pub async fn head(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        let _slot = self.http.slot().await;
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(self.object(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("HEAD", key, e)),
        }
    }

    /// Delete an object (S3 answers success for one already gone).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let _slot = self.http.slot().await;
        self.store
            .delete(&self.path(key))
            .await
            .map_err(|e| self.error("DELETE", key, e))
    }

    /// The objects under `prefix`, every page, streamed.
    pub fn list(&self, prefix: &str) -> BoxStream<'static, Result<StoredObject, StoreError>> {
        let full = self.location.object_name(prefix);
        let this = self.clone();
        let prefix = (!full.is_empty()).then(|| Path::from(full));
        self.store
            .list(prefix.as_ref())
            .filter_map(move |item| {
                let this = this.clone();
                async move {
                    match item {
                        Ok(meta) => this.object(meta).map(Ok),
                        Err(e) => Some(Err(this.error("LIST", "", e))),
                    }
                }
            })
            .boxed()
    }

    /// The object's key under the prefix (`None` outside it: S3 lists by string prefix).
    fn object(&self, meta: ObjectMeta) -> Option<StoredObject> {
        let key = self.location.key_of(meta.location.as_ref())?.to_string();
        Some(StoredObject {
            key,
            size: meta.size,
            updated: OffsetDateTime::from_unix_timestamp(meta.last_modified.timestamp())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            custom_time: None,
        })
    }

    fn error(&self, what: &str, key: &str, error: object_store::Error) -> StoreError {
        StoreError::Object(format!(
            "{what} {}/{} failed: {}",
            self.location,
            key,
            one_line(&error)
        ))
    }

    /// Create the bucket unless it exists (what `blockpages_generator` has always done). The
    /// crate has no bucket API: the bucket's own URL is presigned (`HeadBucket` and `CreateBucket`
    /// are requests on it) and sent with the run's client. A 403 on the check (credentials that
    /// may write objects but not read the bucket) counts as existing: the uploads will tell.
    pub async fn ensure_bucket(&self, region: &str) -> Result<BucketState, StoreError> {
        let root = &Path::from("");
        let sign = |method: Method| async move {
            self.store
                .signed_url(method, root, SIGNATURE_TTL)
                .await
                .map_err(|e| StoreError::Credentials(one_line(&e)))
        };
        let head = sign(Method::HEAD).await?;
        match self.http.send(&Request::new(Method::HEAD, head)).await {
            Ok(_) => return Ok(BucketState::Existed),
            Err(e) if e.status() == Some(403) => {
                log::info!("{e}: uploading to the bucket without checking it");
                return Ok(BucketState::Existed);
            }
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
        let mut create = Request::new(Method::PUT, sign(Method::PUT).await?);
        // Outside us-east-1, S3 wants the region in the body too.
        if region != "us-east-1" {
            let body = format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            );
            create = create
                .bytes(body.into_bytes())
                .header("Content-Type", "application/xml");
        }
        match self.http.send(&create).await {
            Ok(_) => Ok(BucketState::Created),
            // Ours already: made by an earlier attempt whose answer was lost, or by another run.
            Err(e) if e.status() == Some(409) && e.to_string().contains("AlreadyOwnedByYou") => {
                Ok(if e.attempts > 1 {
                    BucketState::Created
                } else {
                    BucketState::Existed
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// How long a presigned bucket request stays valid: long enough for every retry of it.
const SIGNATURE_TTL: Duration = Duration::from_secs(15 * 60);

/// Whether the bucket was there already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketState {
    Existed,
    Created,
}
