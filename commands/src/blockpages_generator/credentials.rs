//! Where the S3 credentials come from, in the order of the AWS SDKs: the standard environment
//! variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; what Lambda
//! provides), else the container credentials endpoint that ECS tasks (and EKS Pod Identity) are
//! given (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, or `AWS_CONTAINER_CREDENTIALS_FULL_URI` with
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), read once per run before the first S3 request.
//! Its answer holds secrets: it is never logged, and errors about it never quote it.

use std::net::IpAddr;
use std::path::PathBuf;

use reqwest::{Method, Url};
use serde::Deserialize;

use super::s3::AwsCredentials;
use crate::client::{ClientError, ClientErrorKind, HttpClient, Request};
use crate::secrets::Secret;
use crate::settings::{quote, RawSettings, Setting, SettingError};

pub const AWS_ACCESS_KEY_ID: Setting = Setting::new(
    "AWS_ACCESS_KEY_ID",
    "ID",
    "AWS access key id (required to upload, unless a container credentials endpoint is set)",
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
    "ECS container credentials path on 169.254.170.2, used when AWS_ACCESS_KEY_ID is unset",
);
pub const AWS_CONTAINER_CREDENTIALS_FULL_URI: Setting = Setting::new(
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "URL",
    "Container credentials URL (https, or http to loopback / the ECS and EKS agents)",
);
pub const AWS_CONTAINER_AUTHORIZATION_TOKEN: Setting = Setting::new(
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "TOKEN",
    "Authorization header value for the container credentials URL",
)
.secret();
pub const AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: Setting = Setting::new(
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "FILE",
    "File holding that token, read at each run (EKS Pod Identity)",
);

/// The settings of the AWS credentials chain.
pub const SETTINGS: &[&Setting] = &[
    &AWS_ACCESS_KEY_ID,
    &AWS_SECRET_ACCESS_KEY,
    &AWS_SESSION_TOKEN,
    &AWS_CONTAINER_CREDENTIALS_RELATIVE_URI,
    &AWS_CONTAINER_CREDENTIALS_FULL_URI,
    &AWS_CONTAINER_AUTHORIZATION_TOKEN,
    &AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
];

/// The ECS agent's address for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
const ECS_CREDENTIALS_HOST: &str = "http://169.254.170.2";
/// A credentials answer is a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub enum CredentialSource {
    Environment(AwsCredentials),
    Container(ContainerEndpoint),
}

#[derive(Clone, Debug)]
pub struct ContainerEndpoint {
    pub url: Url,
    token: Option<TokenSource>,
}

#[derive(Clone, Debug)]
enum TokenSource {
    Value(Secret),
    /// Read at each run: EKS rotates the file.
    File(PathBuf),
}

impl CredentialSource {
    /// `None` when no source is configured (allowed only when nothing is uploaded).
    pub fn from_settings(
        raw: &RawSettings,
        required: bool,
    ) -> Result<Option<CredentialSource>, SettingError> {
        let access_key_id = raw.get(&AWS_ACCESS_KEY_ID).map(|v| v.trim().to_string());
        let secret_access_key = raw.secret(&AWS_SECRET_ACCESS_KEY);
        match (access_key_id, secret_access_key) {
            (Some(access_key_id), Some(secret_access_key)) => {
                return Ok(Some(CredentialSource::Environment(AwsCredentials {
                    access_key_id,
                    secret_access_key,
                    session_token: raw.secret(&AWS_SESSION_TOKEN),
                })))
            }
            (Some(_), None) => {
                return Err(SettingError::new(
                    AWS_SECRET_ACCESS_KEY.env,
                    "is required with AWS_ACCESS_KEY_ID",
                ))
            }
            (None, Some(_)) => {
                return Err(SettingError::new(
                    AWS_ACCESS_KEY_ID.env,
                    "is required with AWS_SECRET_ACCESS_KEY",
                ))
            }
            (None, None) => {}
        }
        let url = if let Some(relative) = raw.get(&AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) {
            let relative = relative.trim();
            if !relative.starts_with('/') {
                return Err(SettingError::new(
                    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI.env,
                    format!("{} is not a path starting with /", quote(relative)),
                ));
            }
            Url::parse(&format!("{ECS_CREDENTIALS_HOST}{relative}")).map_err(|e| {
                SettingError::new(
                    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI.env,
                    format!("{} is not a URL path ({e})", quote(relative)),
                )
            })?
        } else if raw.get(&AWS_CONTAINER_CREDENTIALS_FULL_URI).is_some() {
            let url = raw.http_url(&AWS_CONTAINER_CREDENTIALS_FULL_URI)?;
            if url.scheme() == "http" && !is_allowed_http_host(&url) {
                return Err(SettingError::new(
                    AWS_CONTAINER_CREDENTIALS_FULL_URI.env,
                    "http is allowed only to a loopback address or the ECS/EKS credentials \
                     addresses (169.254.170.2, 169.254.170.23, fd00:ec2::23); use https",
                ));
            }
            url
        } else if required {
            return Err(SettingError::new(
                AWS_ACCESS_KEY_ID.env,
                "is required to upload to S3 (with AWS_SECRET_ACCESS_KEY), unless DRY_RUN=1 or a \
                 container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or \
                 AWS_CONTAINER_CREDENTIALS_FULL_URI) is set",
            ));
        } else {
            return Ok(None);
        };
        let token = match (
            raw.get(&AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE),
            raw.secret(&AWS_CONTAINER_AUTHORIZATION_TOKEN),
        ) {
            (Some(path), _) => Some(TokenSource::File(PathBuf::from(path.trim()))),
            // Control characters in the value are refused with every setting's
            // (`RawSettings::check_control_characters`); the file is checked when read.
            (None, Some(token)) => Some(TokenSource::Value(token)),
            (None, None) => None,
        };
        Ok(Some(CredentialSource::Container(ContainerEndpoint {
            url,
            token,
        })))
    }

    /// The credentials to sign with: as configured, or fetched from the container endpoint
    /// through `client` (which must carry no Kinto credentials).
    pub async fn resolve(&self, client: &HttpClient) -> Result<AwsCredentials, ClientError> {
        match self {
            CredentialSource::Environment(credentials) => Ok(credentials.clone()),
            CredentialSource::Container(endpoint) => endpoint.fetch(client).await,
        }
    }
}

/// What the endpoint answers (the same shape for ECS and EKS Pod Identity).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
}

impl ContainerEndpoint {
    async fn fetch(&self, client: &HttpClient) -> Result<AwsCredentials, ClientError> {
        let mut request = Request::new(Method::GET, self.url.clone());
        request.max_body = MAX_ANSWER_BYTES;
        match &self.token {
            Some(TokenSource::Value(token)) => {
                request = request.secret_header("Authorization", token.expose());
            }
            Some(TokenSource::File(path)) => {
                let token = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
                    .and_then(|t| check_token(t.trim()).map(|()| t.trim().to_string()))
                    .map_err(|message| {
                        ClientError::new(
                            &Method::GET,
                            &self.url,
                            0,
                            ClientErrorKind::Forbidden(format!(
                                "to send no authorization token: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: {message}"
                            )),
                        )
                    })?;
                request = request.secret_header("Authorization", &token);
            }
            None => {}
        }
        let (_, answer) = client
            .send_checked(&request, |response| {
                // Never quote the body: it holds the secret key.
                serde_json::from_slice::<Answer>(&response.body)
                    .ok()
                    .filter(|a| !a.access_key_id.is_empty() && !a.secret_access_key.is_empty())
                    .ok_or_else(|| {
                        ClientErrorKind::Shape(
                            "the answer is not AWS credentials (AccessKeyId, SecretAccessKey)"
                                .into(),
                        )
                    })
            })
            .await?;
        Ok(AwsCredentials {
            access_key_id: answer.access_key_id,
            secret_access_key: Secret::new(&answer.secret_access_key),
            session_token: answer.token.as_deref().map(Secret::new),
        })
    }
}

/// The AWS SDKs' rule for plain http: loopback, or the addresses of the ECS and EKS agents.
fn is_allowed_http_host(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => true,
        Ok(ip) => ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"]
            .iter()
            .any(|allowed| allowed.parse::<IpAddr>().ok() == Some(ip)),
        Err(_) => false,
    }
}

/// A token goes into a header: no line breaks or other control characters.
fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        Err("the token is empty".into())
    } else if token.chars().any(|c| c.is_control()) {
        Err("the token holds a line break or another control character".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container_url(pairs: &[(&str, &str)]) -> Result<String, String> {
        match CredentialSource::from_settings(&RawSettings::from_pairs(pairs), true) {
            Ok(Some(CredentialSource::Container(e))) => Ok(e.url.to_string()),
            Ok(other) => panic!("not a container source: {other:?}"),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn environment_variables_come_first() {
        let source = CredentialSource::from_settings(
            &RawSettings::from_pairs(&[
                ("AWS_ACCESS_KEY_ID", "AKIA1"),
                ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
                (
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                    "/v2/credentials/x",
                ),
            ]),
            true,
        )
        .unwrap();
        assert!(
            matches!(source, Some(CredentialSource::Environment(c)) if c.access_key_id == "AKIA1")
        );
    }

    #[test]
    fn half_of_the_environment_pair_is_an_error_naming_the_missing_one() {
        let err = |pairs| {
            CredentialSource::from_settings(&RawSettings::from_pairs(pairs), false)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[("AWS_ACCESS_KEY_ID", "AKIA1")]).starts_with("invalid AWS_SECRET_ACCESS_KEY"));
        assert!(err(&[("AWS_SECRET_ACCESS_KEY", "x")]).starts_with("invalid AWS_ACCESS_KEY_ID"));
    }

    #[test]
    fn relative_uri_goes_to_the_ecs_agent_and_wins_over_full_uri() {
        assert_eq!(
            container_url(&[
                (
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                    "/v2/credentials/abc"
                ),
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/x"),
            ]),
            Ok("http://169.254.170.2/v2/credentials/abc".into())
        );
        let err = container_url(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/x")]).unwrap_err();
        assert!(
            err.starts_with("invalid AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            "{err}"
        );
    }

    #[test]
    fn full_uri_over_http_only_to_loopback_or_the_agents() {
        for ok in [
            "http://127.0.0.1:9/creds",
            "http://localhost/creds",
            "http://[::1]:80/creds",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "https://creds.example.com/x",
        ] {
            assert!(
                container_url(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", ok)]).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://creds.example.com/x",
            "http://10.0.0.1/x",
            "ftp://127.0.0.1/x",
        ] {
            let err = container_url(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", bad)]).unwrap_err();
            assert!(
                err.starts_with("invalid AWS_CONTAINER_CREDENTIALS_FULL_URI"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn no_source_is_an_error_only_when_uploading() {
        let err = CredentialSource::from_settings(&RawSettings::from_pairs(&[]), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            "{err}"
        );
        assert!(
            CredentialSource::from_settings(&RawSettings::from_pairs(&[]), false)
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_token_with_a_line_break_is_refused_without_being_quoted() {
        // In the setting: refused up front, like every setting's control characters.
        let raw = RawSettings::from_pairs(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/x"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok\nen-MARKER"),
        ]);
        let err = raw.check_control_characters().unwrap_err().to_string();
        assert!(
            err.starts_with("invalid AWS_CONTAINER_AUTHORIZATION_TOKEN"),
            "{err}"
        );
        assert!(!err.contains("MARKER"), "{err}");
        // In the token file: refused when read, before any request.
        let file = std::env::temp_dir().join(format!("rsl-token-{}", std::process::id()));
        std::fs::write(&file, "tok\nen-MARKER").unwrap();
        let raw = RawSettings::from_pairs(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/x"),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                file.to_str().unwrap(),
            ),
        ]);
        let source = CredentialSource::from_settings(&raw, true)
            .unwrap()
            .unwrap();
        let client = crate::client::testing::fast_client(4);
        let err = source.resolve(&client).await.unwrap_err().to_string();
        std::fs::remove_file(&file).unwrap();
        assert!(
            err.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            "{err}"
        );
        assert!(err.contains("line break"), "{err}");
        assert!(!err.contains("MARKER"), "{err}");
    }
}
