//! Amazon S3 (and S3-compatible servers) through `object_store`: its credential chain as the AWS
//! SDKs read it (the key variables, the container credentials endpoint of ECS and EKS Pod
//! Identity, web identity, else instance metadata) and its SigV4 signer. The requests are the
//! run's own (its client, retries, timeouts and in-flight cap), as for Google Cloud Storage.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;

use super::location::{percent_encode, Location, Slashes};
use super::{one_line, StoreError, StoredObject};
use crate::client::{HttpClient, Request, Response};
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

/// An S3 bucket (or an S3-compatible server's), requested with the run's client: its retries,
/// timeouts and in-flight cap, as every other request of the run. Each request is signed (SigV4,
/// payload hash included) with the credentials of `object_store`'s AWS chain, fetched and
/// refreshed by it.
#[derive(Clone)]
pub struct S3 {
    location: Location,
    /// The bucket's URL, ending in `/`: `https://<bucket>.s3.<region>.amazonaws.com/`, or
    /// `<endpoint>/<bucket>/` (path-style).
    bucket_url: Url,
    region: String,
    credentials: AwsCredentialProvider,
    http: HttpClient,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3({})", self.location)
    }
}

/// One object of a `ListObjectsV2` page.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Contents {
    key: String,
    last_modified: String,
    size: u64,
}

/// A `ListObjectsV2` page.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    contents: Vec<Contents>,
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_continuation_token: Option<String>,
}

/// The options of the credential chain's own requests (STS, the container endpoint, instance
/// metadata), from the run's limits.
fn client_options(http: &HttpClient) -> (ClientOptions, RetryConfig) {
    let limits = http.limits();
    let options = ClientOptions::new()
        .with_timeout(limits.timeout)
        .with_connect_timeout(limits.timeout)
        .with_user_agent(HeaderValue::from_static(crate::client::USER_AGENT_VALUE));
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
            builder = builder.with_endpoint(endpoint.as_str().trim_end_matches('/'));
        }
        for (key, value) in &credentials.0 {
            builder = builder.with_config(*key, value);
        }
        // Only the crate's credential chain is used: the requests are the run's own.
        let store = builder
            .with_client_options(options)
            .build()
            .map_err(|e| StoreError::Credentials(one_line(&e)))?;
        Ok(S3 {
            location: location.clone(),
            bucket_url: bucket_url(&location.bucket, region, endpoint)?,
            region: region.to_string(),
            credentials: Arc::clone(store.credentials()),
            http: http.with_error_detail(s3_error_code),
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The object's URL, its name encoded as S3 canonicalizes it (each byte but the unreserved
    /// ones and `/`), so that the signed path is the path S3 reads.
    fn object_url(&self, key: &str) -> Url {
        let mut url = self.bucket_url.clone();
        let path = format!(
            "{}{}",
            url.path(),
            percent_encode(&self.location.object_name(key), Slashes::Kept)
        );
        url.set_path(&path);
        url
    }

    /// `request` signed with the chain's current credentials (the payload's SHA-256 included).
    async fn signed(&self, request: Request) -> Result<Request, StoreError> {
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| StoreError::Credentials(one_line(&e)))?;
        let mut http_request = HttpRequest::new(HttpRequestBody::empty());
        *http_request.method_mut() = request.method.clone();
        *http_request.uri_mut() = request
            .url
            .as_str()
            .parse()
            .map_err(|e| StoreError::Shape(format!("{}: {e}", request.url)))?;
        for (name, value) in &request.headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| StoreError::Shape(format!("header {name} is not a header value")))?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| StoreError::Shape(format!("{name} is not a header name")))?;
            http_request.headers_mut().insert(name, value);
        }
        let payload = Sha256::digest(request.bytes.as_deref().unwrap_or_default());
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut http_request, Some(&payload))
            .map_err(|e| StoreError::Credentials(one_line(&e)))?;
        let mut signed = request;
        for (name, secret) in SIGNATURE_HEADERS {
            let Some(value) = http_request.headers().get(name) else {
                continue;
            };
            let value = value.to_str().unwrap_or_default();
            signed = match secret {
                true => signed.secret_header(name, value),
                false => signed.header(name, value),
            };
        }
        Ok(signed)
    }

    async fn send(&self, request: Request) -> Result<Response, StoreError> {
        let request = self.signed(request).await?;
        Ok(self.http.send(&request).await?)
    }

    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let request = Request::new(Method::PUT, self.object_url(key))
            .header("content-type", content_type)
            .bytes(body);
        self.send(request).await.map(drop)
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let request = Request::new(Method::GET, self.object_url(key));
        Ok(self.send(request).await?.body)
    }

    pub async fn head(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        let response = match self
            .send(Request::new(Method::HEAD, self.object_url(key)))
            .await
        {
            Ok(response) => response,
            Err(StoreError::Http(e)) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = response
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Shape(format!("HEAD {key}: no Content-Length")))?;
        let updated = response
            .header("last-modified")
            .and_then(|v| OffsetDateTime::parse(v, &Rfc2822).ok())
            .ok_or_else(|| StoreError::Shape(format!("HEAD {key}: no Last-Modified date")))?;
        Ok(Some(StoredObject {
            key: key.to_string(),
            size,
            updated,
            custom_time: None,
        }))
    }

    /// Delete an object (S3 answers success for one already gone).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let request = Request::new(Method::DELETE, self.object_url(key));
        self.send(request).await.map(drop)
    }

    /// The objects under `prefix`, every page, streamed (see [`super::Store::list`]).
    pub fn list(&self, prefix: &str) -> BoxStream<'static, Result<StoredObject, StoreError>> {
        super::Store::S3(self.clone()).list(prefix)
    }

    /// One page of the objects under `prefix` (relative to the store's), from `token`.
    pub async fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<(Vec<StoredObject>, Option<String>), StoreError> {
        let mut url = self.bucket_url.clone();
        {
            let full = self.location.object_name(prefix);
            let mut query = url.query_pairs_mut();
            query.append_pair("list-type", "2");
            if !full.is_empty() {
                query.append_pair("prefix", &full);
            }
            if let Some(token) = token {
                query.append_pair("continuation-token", token);
            }
        }
        let response = self.send(Request::new(Method::GET, url)).await?;
        let text = std::str::from_utf8(&response.body)
            .map_err(|_| StoreError::Shape("a listing that is not UTF-8".into()))?;
        let page: ListBucketResult = quick_xml::de::from_str(text).map_err(|e| {
            StoreError::Shape(format!("a listing that is not ListObjectsV2's: {e}"))
        })?;
        let mut objects = Vec::with_capacity(page.contents.len());
        for item in page.contents {
            // S3 lists by string prefix: `a/bc` is under the prefix `a/b` but not under the
            // store's prefix `a/b/`.
            let Some(key) = self.location.key_of(&item.key) else {
                continue;
            };
            let updated = OffsetDateTime::parse(&item.last_modified, &Rfc3339).map_err(|_| {
                StoreError::Shape(format!(
                    "{key}: LastModified {:?} is not an ISO 8601 date",
                    item.last_modified
                ))
            })?;
            objects.push(StoredObject {
                key: key.to_string(),
                size: item.size,
                updated,
                custom_time: None,
            });
        }
        let next = match page.is_truncated {
            true => Some(
                page.next_continuation_token
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        StoreError::Shape("a truncated listing without a continuation token".into())
                    })?,
            ),
            false => None,
        };
        Ok((objects, next))
    }

    /// Create the bucket unless it exists (what `blockpages_generator` has always done). A 403
    /// on the check (credentials that may write objects but not read the bucket) counts as
    /// existing: the uploads will tell.
    pub async fn ensure_bucket(&self) -> Result<BucketState, StoreError> {
        let head = Request::new(Method::HEAD, self.bucket_url.clone());
        match self.send(head).await {
            Ok(_) => return Ok(BucketState::Existed),
            Err(e) if e.status() == Some(403) => {
                log::info!("{e}: uploading to the bucket without checking it");
                return Ok(BucketState::Existed);
            }
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
        }
        let mut create = Request::new(Method::PUT, self.bucket_url.clone());
        // Outside us-east-1, S3 wants the region in the body too.
        if self.region != "us-east-1" {
            let body = format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            );
            create = create
                .bytes(body.into_bytes())
                .header("content-type", "application/xml");
        }
        match self.send(create).await {
            Ok(_) => Ok(BucketState::Created),
            // Ours already: made by an earlier attempt whose answer was lost, or by another run.
            Err(StoreError::Http(e))
                if e.status() == Some(409) && e.to_string().contains("AlreadyOwnedByYou") =>
            {
                Ok(if e.attempts > 1 {
                    BucketState::Created
                } else {
                    BucketState::Existed
                })
            }
            Err(e) => Err(e),
        }
    }
}

/// The headers a signature adds, and whether each is a credential.
const SIGNATURE_HEADERS: [(&str, bool); 4] = [
    ("authorization", true),
    ("x-amz-date", false),
    ("x-amz-content-sha256", false),
    ("x-amz-security-token", true),
];

/// The bucket's URL: virtual-hosted on AWS, unless a dot in the name would break TLS on it;
/// path-style on any other endpoint.
fn bucket_url(bucket: &str, region: &str, endpoint: Option<&Url>) -> Result<Url, StoreError> {
    let text = match endpoint {
        Some(endpoint) => format!("{}/{bucket}/", endpoint.as_str().trim_end_matches('/')),
        None if bucket.contains('.') => format!("https://s3.{region}.amazonaws.com/{bucket}/"),
        None => format!("https://{bucket}.s3.{region}.amazonaws.com/"),
    };
    Url::parse(&text).map_err(|e| StoreError::Shape(format!("bucket URL {text}: {e}")))
}

/// The S3 error's `Code` (`NoSuchKey`, `BucketAlreadyOwnedByYou`...), for the client's error
/// texts (XML bodies, which the client's default JSON reader skips).
fn s3_error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let code = text.split_once("<Code>")?.1.split_once("</Code>")?.0;
    Some(crate::client::error::one_line(code))
}

/// Whether the bucket was there already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketState {
    Existed,
    Created,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_s3_canonicalizes_them() {
        assert_eq!(
            percent_encode("bundles/main--a b.zip", Slashes::Kept),
            "bundles/main--a%20b.zip"
        );
        assert_eq!(
            percent_encode("x+y*~z=é", Slashes::Kept),
            "x%2By%2A~z%3D%C3%A9"
        );
    }

    #[test]
    fn buckets_are_virtual_hosted_on_aws_and_path_style_elsewhere() {
        let url = |bucket, endpoint: Option<&str>| {
            let endpoint = endpoint.map(|e| Url::parse(e).unwrap());
            bucket_url(bucket, "eu-west-1", endpoint.as_ref())
                .unwrap()
                .to_string()
        };
        assert_eq!(
            url("pages", None),
            "https://pages.s3.eu-west-1.amazonaws.com/"
        );
        assert_eq!(url("a.b", None), "https://s3.eu-west-1.amazonaws.com/a.b/");
        assert_eq!(
            url("pages", Some("http://127.0.0.1:9/")),
            "http://127.0.0.1:9/pages/"
        );
    }

    #[test]
    fn error_codes_come_from_the_xml_body() {
        assert_eq!(
            s3_error_code(b"<Error><Code>BucketAlreadyOwnedByYou</Code></Error>").as_deref(),
            Some("BucketAlreadyOwnedByYou")
        );
        assert_eq!(s3_error_code(b"{}"), None);
    }
}
