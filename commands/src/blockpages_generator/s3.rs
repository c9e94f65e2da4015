//! The S3 bucket the pages go to, on the object-store layer ([`crate::store`]): named by
//! `BUCKET_NAME` in `AWS_REGION` (or on `AWS_ENDPOINT_URL`), with the AWS credential chain the
//! layer reads. Only the bucket's settings and its public URLs are this command's own.

use reqwest::Url;

use crate::settings::{RawSettings, Setting, SettingError};
use crate::store::location::{check_bucket_name, Cloud, Location};
use crate::store::{aws::AwsCredentials, region, StoreSettings};

pub const AWS_REGION: Setting = crate::store::AWS_REGION.default("eu-central-1");
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

pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// Where the pages go, validated.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub region: String,
    pub bucket_name: String,
    /// `AWS_ENDPOINT_URL`: an S3-compatible server (path-style requests); `None` is AWS.
    pub endpoint: Option<Url>,
    pub store: StoreSettings,
}

impl S3Settings {
    pub fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let region = region(raw, &AWS_REGION)?;
        let bucket_name = raw.string(&BUCKET_NAME);
        check_bucket_name(&bucket_name)
            .map_err(|message| SettingError::new(BUCKET_NAME.env, message))?;
        if bucket_name.contains('_') {
            return Err(SettingError::new(
                BUCKET_NAME.env,
                format!("{bucket_name:?} is not an S3 bucket name ('_' is not allowed)"),
            ));
        }
        let endpoint = match raw.get(&AWS_ENDPOINT_URL) {
            Some(_) => Some(raw.server_url(&AWS_ENDPOINT_URL)?),
            None => None,
        };
        let store = StoreSettings {
            location: Location {
                cloud: Cloud::S3,
                bucket: bucket_name.clone(),
                prefix: String::new(),
            },
            endpoint: endpoint.clone(),
            region: region.clone(),
            google_credentials: None,
            aws: AwsCredentials::from_settings(raw)?,
        };
        Ok(S3Settings {
            region,
            bucket_name,
            endpoint,
            store,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_originals() {
        let settings = S3Settings::from_settings(&RawSettings::from_pairs(&[])).unwrap();
        assert_eq!(settings.region, "eu-central-1");
        assert_eq!(settings.bucket_name, "amo-blocked-pages");
        assert_eq!(settings.store.location.to_string(), "s3://amo-blocked-pages");
        assert_eq!(
            settings.public_url("index.html"),
            "https://s3.eu-central-1.amazonaws.com/amo-blocked-pages/index.html"
        );
    }

    #[test]
    fn bad_values_name_their_variable_and_never_echo_the_secret() {
        for (pairs, name) in [
            (vec![("AWS_REGION", "EU central")], "AWS_REGION"),
            (vec![("BUCKET_NAME", "Not_A_Bucket")], "BUCKET_NAME"),
            (vec![("BUCKET_NAME", "under_score")], "BUCKET_NAME"),
            (vec![("AWS_ENDPOINT_URL", "ftp://x")], "AWS_ENDPOINT_URL"),
            (
                vec![("AWS_SECRET_ACCESS_KEY", "sekrit-value")],
                "AWS_ACCESS_KEY_ID",
            ),
            (vec![("AWS_ACCESS_KEY_ID", "AKIA")], "AWS_SECRET_ACCESS_KEY"),
        ] {
            let err = S3Settings::from_settings(&RawSettings::from_pairs(&pairs)).unwrap_err();
            assert_eq!(err.name, name, "{pairs:?}");
            assert!(!err.to_string().contains("sekrit-value"), "{err}");
        }
    }

    #[test]
    fn custom_endpoints_keep_their_url_in_public_urls() {
        let settings = S3Settings::from_settings(&RawSettings::from_pairs(&[(
            "AWS_ENDPOINT_URL",
            "http://127.0.0.1:9000",
        )]))
        .unwrap();
        assert_eq!(
            settings.public_url("a.html"),
            "http://127.0.0.1:9000/amo-blocked-pages/a.html"
        );
    }
}
