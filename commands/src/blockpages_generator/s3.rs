//! The S3 bucket the pages go to. Requests are presigned (SigV4, query-string form) by
//! `rusty-s3` and sent through the project's one HTTP client, without the Kinto credentials, so
//! they share its timeouts, retries and in-flight cap. Presigned URLs hold the access key id
//! and any session token in their query string: errors and logs show them without it.

use std::time::Duration;

use reqwest::{Method, Url};
use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};

use super::credentials::CredentialSource;
use crate::client::error::one_line;
use crate::client::{ClientError, ClientErrorKind, HttpClient, Request, Response};
use crate::secrets::Secret;
use crate::settings::{quote, RawSettings, Setting, SettingError};

pub const AWS_REGION: Setting = Setting::new("AWS_REGION", "REGION", "AWS region of the S3 bucket")
    .default("eu-central-1")
    .event_key("aws_region");
pub const BUCKET_NAME: Setting = Setting::new(
    "BUCKET_NAME",
    "NAME",
    "S3 bucket the pages are uploaded to, created when missing",
)
.default("amo-blocked-pages")
.event_key("bucket_name");
pub const AWS_ENDPOINT_URL: Setting = Setting::new(
    "AWS_ENDPOINT_URL",
    "URL",
    "S3-compatible endpoint instead of AWS (path-style requests)",
)
.derived("AWS, in AWS_REGION");

/// How long a presigned request stays valid: long enough for every retry of it.
const SIGNATURE_TTL: Duration = Duration::from_secs(15 * 60);
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// AWS credentials, from the environment or the container credentials endpoint.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// Where the pages go, validated.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub region: String,
    pub bucket_name: String,
    /// `AWS_ENDPOINT_URL`: an S3-compatible server (path-style requests); `None` is AWS.
    pub endpoint: Option<Url>,
    /// `None` only in a dry run.
    pub credentials: Option<CredentialSource>,
}

impl S3Settings {
    /// `required_credentials`: false in a dry run, where nothing is sent to S3.
    pub fn from_settings(
        raw: &RawSettings,
        required_credentials: bool,
    ) -> Result<Self, SettingError> {
        let region = raw.string(&AWS_REGION);
        let valid_region = !region.is_empty()
            && region.len() <= 64
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_region {
            return Err(SettingError::new(
                AWS_REGION.env,
                format!("{} is not an AWS region name", quote(&region)),
            ));
        }
        let bucket_name = raw.string(&BUCKET_NAME);
        if let Err(message) = check_bucket_name(&bucket_name) {
            return Err(SettingError::new(BUCKET_NAME.env, message));
        }
        let endpoint = match raw.get(&AWS_ENDPOINT_URL) {
            Some(_) => Some(raw.server_url(&AWS_ENDPOINT_URL)?),
            None => None,
        };
        let credentials = CredentialSource::from_settings(raw, required_credentials)?;
        Ok(S3Settings {
            region,
            bucket_name,
            endpoint,
            credentials,
        })
    }

    /// Where a page can be read, as the report shows it (`https://s3.<region>.amazonaws.com/
    /// <bucket>/<key>` on AWS, as the original printed).
    pub fn public_url(&self, key: &str) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{endpoint}{}/{key}", self.bucket_name),
            None => format!(
                "https://s3.{}.amazonaws.com/{}/{key}",
                self.region, self.bucket_name
            ),
        }
    }
}

/// S3 bucket naming rules: 3 to 63 characters, lowercase letters, digits, `-` and `.`, starting
/// and ending with a letter or digit.
fn check_bucket_name(name: &str) -> Result<(), String> {
    let chars_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ends_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if (3..=63).contains(&name.len()) && chars_ok && ends_ok && !name.contains("..") {
        Ok(())
    } else {
        Err(format!(
            "{} is not an S3 bucket name (3-63 lowercase letters, digits, '-' and '.')",
            quote(name)
        ))
    }
}

/// Whether the bucket was there already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketState {
    Existed,
    Created,
}

/// The target bucket, with credentials, and the client that sends its requests.
pub struct S3Bucket {
    http: HttpClient,
    bucket: Bucket,
    credentials: Credentials,
    settings: S3Settings,
}

impl S3Bucket {
    /// `client` must carry no credentials of its own (the run's, not a Kinto view); `creds`
    /// come from [`CredentialSource::resolve`].
    pub fn new(
        settings: &S3Settings,
        creds: &AwsCredentials,
        client: HttpClient,
    ) -> Result<Self, String> {
        let credentials = match &creds.session_token {
            Some(token) => Credentials::new_with_token(
                creds.access_key_id.clone(),
                creds.secret_access_key.expose(),
                token.expose(),
            ),
            None => Credentials::new(
                creds.access_key_id.clone(),
                creds.secret_access_key.expose(),
            ),
        };
        let (endpoint, style) = match &settings.endpoint {
            Some(url) => (url.clone(), UrlStyle::Path),
            None => {
                let aws = format!("https://s3.{}.amazonaws.com", settings.region);
                // A dotted name would not match AWS's wildcard certificate as a host name.
                let style = if settings.bucket_name.contains('.') {
                    UrlStyle::Path
                } else {
                    UrlStyle::VirtualHost
                };
                (Url::parse(&aws).map_err(|e| e.to_string())?, style)
            }
        };
        let bucket = Bucket::new(
            endpoint,
            style,
            settings.bucket_name.clone(),
            settings.region.clone(),
        )
        .map_err(|e| format!("S3 endpoint: {e}"))?;
        Ok(S3Bucket {
            http: client.with_error_detail(error_detail),
            bucket,
            credentials,
            settings: settings.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.settings.bucket_name
    }

    pub fn public_url(&self, key: &str) -> String {
        self.settings.public_url(key)
    }

    fn request(&self, method: Method, url: Url) -> Request {
        Request::new(method, url)
    }

    /// Create the bucket unless it exists. A 403 on the check (credentials that may write
    /// objects but not list the bucket) counts as existing: the uploads will tell.
    pub async fn ensure_exists(&self) -> Result<BucketState, ClientError> {
        let head = self.bucket.head_bucket(Some(&self.credentials));
        let url = head.sign(SIGNATURE_TTL);
        match self.http.send(&self.request(Method::HEAD, url)).await {
            Ok(_) => return Ok(BucketState::Existed),
            Err(e) if e.status() == Some(403) => {
                log::info!("{e}: uploading to the bucket without checking it");
                return Ok(BucketState::Existed);
            }
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
        }
        let create = self.bucket.create_bucket(&self.credentials);
        let mut request = self.request(Method::PUT, create.sign(SIGNATURE_TTL));
        // Outside us-east-1, S3 wants the region in the body too.
        if self.settings.region != "us-east-1" {
            let body = format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.settings.region
            );
            request = request
                .bytes(body.into_bytes())
                .header("Content-Type", "application/xml");
        }
        match self.http.send(&request).await {
            Ok(_) => Ok(BucketState::Created),
            // Ours already: created by an earlier attempt whose answer was lost (the check just
            // before found no bucket), or, on a first attempt, by another run of ours meanwhile.
            Err(e) if e.status() == Some(409) && format!("{e}").contains("AlreadyOwnedByYou") => {
                Ok(if e.attempts > 1 {
                    BucketState::Created
                } else {
                    BucketState::Existed
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Upload one HTML page.
    pub async fn put_html(&self, key: &str, html: Vec<u8>) -> Result<(), ClientError> {
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        action
            .headers_mut()
            .insert("content-type", HTML_CONTENT_TYPE);
        let request = self
            .request(Method::PUT, action.sign(SIGNATURE_TTL))
            .bytes(html)
            .header("Content-Type", HTML_CONTENT_TYPE);
        self.http.send(&request).await.map(|_| ())
    }

    /// The keys at the bucket's top level (no `/` in them), every page of the listing.
    pub async fn list_top_level_keys(&self) -> Result<Vec<String>, ClientError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            action.with_delimiter("/");
            if let Some(token) = &token {
                action.with_continuation_token(token.clone());
            }
            let request = self.request(Method::GET, action.sign(SIGNATURE_TTL));
            let (_, listing) = self
                .http
                .send_checked(&request, |response: &Response| {
                    let text = std::str::from_utf8(&response.body)
                        .map_err(|e| ClientErrorKind::Shape(e.to_string()))?;
                    ListObjectsV2::parse_response(text).map_err(|e| {
                        ClientErrorKind::Shape(format!("not an S3 object listing: {e}"))
                    })
                })
                .await?;
            keys.extend(listing.contents.into_iter().map(|c| c.key));
            match listing.next_continuation_token {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => break,
            }
        }
        Ok(keys)
    }

    pub async fn delete(&self, key: &str) -> Result<(), ClientError> {
        let action = self.bucket.delete_object(Some(&self.credentials), key);
        let request = self.request(Method::DELETE, action.sign(SIGNATURE_TTL));
        self.http.send(&request).await.map(|_| ())
    }
}

/// The detail of an S3 error body, for the client's [`crate::client::ErrorDetail`] hook: its
/// `<Code>` and `<Message>` on one line, nothing else of it (S3 errors may echo the request's
/// credential scope).
fn error_detail(body: &[u8]) -> Option<String> {
    xml_error_detail(body).map(|detail| one_line(&detail))
}

/// `Code: Message` of an S3-style XML error body.
fn xml_error_detail(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let element = |name: &str| -> Option<String> {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(text[start..end].trim().to_string()).filter(|v| !v.is_empty())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (code, message) => code.or(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::fast_client;

    const KEYS: [(&str, &str); 2] = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret"),
    ];

    fn env_creds(settings: &S3Settings) -> AwsCredentials {
        match &settings.credentials {
            Some(CredentialSource::Environment(creds)) => creds.clone(),
            other => panic!("not environment credentials: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_originals() {
        let s = S3Settings::from_settings(&RawSettings::from_pairs(&KEYS), true).unwrap();
        assert_eq!(s.region, "eu-central-1");
        assert_eq!(s.bucket_name, "amo-blocked-pages");
        assert_eq!(s.endpoint, None);
        assert_eq!(
            s.public_url("index.html"),
            "https://s3.eu-central-1.amazonaws.com/amo-blocked-pages/index.html"
        );
    }

    #[test]
    fn bad_values_name_their_variable_and_never_echo_the_secret() {
        for (name, value) in [
            ("AWS_REGION", "EU central"),
            ("BUCKET_NAME", "Amo_Pages"),
            ("BUCKET_NAME", "ab"),
            ("BUCKET_NAME", "-pages"),
            ("AWS_ENDPOINT_URL", "ftp://s3.local"),
        ] {
            let mut pairs = KEYS.to_vec();
            pairs.push((name, value));
            let err =
                S3Settings::from_settings(&RawSettings::from_pairs(&pairs), true).unwrap_err();
            assert_eq!(err.name, name);
        }
        let err =
            S3Settings::from_settings(&RawSettings::from_pairs(&KEYS[..1]), true).unwrap_err();
        assert_eq!(err.name, "AWS_SECRET_ACCESS_KEY");
        let err =
            S3Settings::from_settings(&RawSettings::from_pairs(&KEYS[1..]), true).unwrap_err();
        assert_eq!(err.name, "AWS_ACCESS_KEY_ID");
        assert!(!err.to_string().contains("wJalrXUtnFEMI"));
        // A dry run needs no credentials.
        assert!(
            S3Settings::from_settings(&RawSettings::from_pairs(&[]), false)
                .unwrap()
                .credentials
                .is_none()
        );
    }

    #[test]
    fn aws_urls_are_virtual_hosted_unless_the_name_has_dots() {
        let raw_for = |name: &str| {
            let mut pairs = KEYS.to_vec();
            pairs.push(("BUCKET_NAME", name));
            RawSettings::from_pairs(&pairs)
        };
        for (name, expected) in [
            (
                "amo-blocked-pages",
                "https://amo-blocked-pages.s3.eu-central-1.amazonaws.com/i1.html?",
            ),
            (
                "pages.example.com",
                "https://s3.eu-central-1.amazonaws.com/pages.example.com/i1.html?",
            ),
        ] {
            let raw = raw_for(name);
            let settings = S3Settings::from_settings(&raw, true).unwrap();
            let client = fast_client(0);
            let bucket = S3Bucket::new(&settings, &env_creds(&settings), client).unwrap();
            let url = bucket
                .bucket
                .put_object(Some(&bucket.credentials), "i1.html")
                .sign(SIGNATURE_TTL);
            assert!(url.as_str().starts_with(expected), "{url}");
        }
    }

    #[test]
    fn custom_endpoints_use_path_style_urls() {
        let mut pairs = KEYS.to_vec();
        pairs.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"));
        pairs.push(("SERVER", "http://127.0.0.1:8888/v1"));
        pairs.push(("AWS_SESSION_TOKEN", "session-token-secret"));
        let raw = RawSettings::from_pairs(&pairs);
        let settings = S3Settings::from_settings(&raw, true).unwrap();
        let client = fast_client(0);
        let bucket =
            S3Bucket::new(&settings, &env_creds(&settings), client).unwrap();
        let put = bucket
            .bucket
            .put_object(Some(&bucket.credentials), "i1.html");
        let url = put.sign(SIGNATURE_TTL);
        assert!(url
            .as_str()
            .starts_with("http://127.0.0.1:9000/amo-blocked-pages/i1.html?"));
        let request = bucket.request(Method::PUT, url);
        assert!(request.url.as_str().contains("X-Amz-Security-Token"));
        assert_eq!(
            crate::secrets::display_url(&request.url),
            "http://127.0.0.1:9000/amo-blocked-pages/i1.html"
        );
        assert_eq!(
            settings.public_url("i1.html"),
            "http://127.0.0.1:9000/amo-blocked-pages/i1.html"
        );
    }

    #[test]
    fn error_details_are_the_code_and_message_of_an_s3_xml_error() {
        let xml = br#"<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>The signature does not match.</Message><AWSAccessKeyId>AKID</AWSAccessKeyId></Error>"#;
        let detail = error_detail(xml).unwrap();
        assert_eq!(
            detail,
            "SignatureDoesNotMatch: The signature does not match."
        );
        assert_eq!(error_detail(b"<html>oops</html>"), None);
    }
}
