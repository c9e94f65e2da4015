//! A small signed client for the stack's S3-compatible server (moto), to arrange and inspect
//! buckets in tests: presigned with `rusty-s3`, sent with a plain reqwest client.

use std::time::Duration;

use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};

/// Credentials for moto (it accepts any pair; tests check these never leak).
pub const ACCESS_KEY_ID: &str = "AKIARSLTESTKEY0000001";
pub const SECRET_ACCESS_KEY: &str = "rsl-test-secret-DO-NOT-PRINT-4d2f9a";
pub const REGION: &str = "eu-central-1";

const TTL: Duration = Duration::from_secs(300);

pub struct S3 {
    pub endpoint: String,
    credentials: Credentials,
    http: reqwest::Client,
}

/// An object as stored.
#[derive(Debug)]
pub struct Object {
    pub content_type: String,
    pub body: String,
}

impl S3 {
    pub fn new(endpoint: &str) -> S3 {
        S3 {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            credentials: Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
            http: reqwest::Client::new(),
        }
    }

    fn bucket(&self, name: &str) -> Bucket {
        Bucket::new(
            format!("{}/", self.endpoint).parse().unwrap(),
            UrlStyle::Path,
            name.to_string(),
            REGION,
        )
        .unwrap()
    }

    pub async fn create_bucket(&self, name: &str) {
        let bucket = self.bucket(name);
        let url = bucket.create_bucket(&self.credentials).sign(TTL);
        let body = format!(
            "<CreateBucketConfiguration><LocationConstraint>{REGION}</LocationConstraint></CreateBucketConfiguration>"
        );
        let resp = self.http.put(url).body(body).send().await.unwrap();
        assert!(
            resp.status().is_success(),
            "create bucket {name}: {}",
            resp.status()
        );
    }

    pub async fn bucket_exists(&self, name: &str) -> bool {
        let bucket = self.bucket(name);
        let url = bucket.head_bucket(Some(&self.credentials)).sign(TTL);
        let status = self.http.head(url).send().await.unwrap().status();
        assert!(
            status.is_success() || status == 404,
            "HEAD bucket {name}: {status}"
        );
        status.is_success()
    }

    pub async fn put(&self, name: &str, key: &str, body: &str, content_type: &str) {
        let bucket = self.bucket(name);
        let url = bucket.put_object(Some(&self.credentials), key).sign(TTL);
        let resp = self
            .http
            .put(url)
            .header("Content-Type", content_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "put {key}: {}", resp.status());
    }

    /// The object, or `None` when it does not exist.
    pub async fn get(&self, name: &str, key: &str) -> Option<Object> {
        let bucket = self.bucket(name);
        let url = bucket.get_object(Some(&self.credentials), key).sign(TTL);
        let resp = self.http.get(url).send().await.unwrap();
        if resp.status() == 404 {
            return None;
        }
        assert!(resp.status().is_success(), "get {key}: {}", resp.status());
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        Some(Object {
            content_type,
            body: resp.text().await.unwrap(),
        })
    }

    /// The object's bytes (it must exist).
    pub async fn bytes(&self, name: &str, key: &str) -> Vec<u8> {
        let bucket = self.bucket(name);
        let url = bucket.get_object(Some(&self.credentials), key).sign(TTL);
        let resp = self.http.get(url).send().await.unwrap();
        assert!(resp.status().is_success(), "get {key}: {}", resp.status());
        resp.bytes().await.unwrap().to_vec()
    }

    /// Every key of the bucket, sorted.
    pub async fn keys(&self, name: &str) -> Vec<String> {
        let bucket = self.bucket(name);
        let url = ListObjectsV2::new(&bucket, Some(&self.credentials)).sign(TTL);
        let resp = self.http.get(url).send().await.unwrap();
        assert!(resp.status().is_success(), "list {name}: {}", resp.status());
        let listing = ListObjectsV2::parse_response(&resp.text().await.unwrap()).unwrap();
        assert!(
            listing.next_continuation_token.is_none(),
            "test buckets stay small"
        );
        let mut keys: Vec<String> = listing.contents.into_iter().map(|c| c.key).collect();
        keys.sort();
        keys
    }
}
