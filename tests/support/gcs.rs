//! A small client for the stack's GCS emulator (gcp-storage-emulator, Google Cloud Storage's JSON
//! API), to arrange and inspect buckets in tests: each test makes buckets of its own.

use serde_json::{json, Value};

/// The stack's emulator and the run's service account key file (`GOOGLE_APPLICATION_CREDENTIALS`).
pub struct Gcs {
    pub endpoint: String,
    pub credentials: String,
    http: reqwest::Client,
}

fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Gcs {
    pub fn get() -> Gcs {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: the GCS tests need the stack's emulator (`make test`)")
            })
        };
        Gcs {
            endpoint: var("RSL_TEST_GCS_ENDPOINT"),
            credentials: var("RSL_TEST_GCS_CREDENTIALS"),
            http: reqwest::Client::new(),
        }
    }

    /// A new bucket with a unique name; returns the name.
    pub async fn new_bucket(&self, label: &str) -> String {
        let name = super::unique(label).to_ascii_lowercase().replace('_', "-");
        let resp = self
            .http
            .post(format!("{}/storage/v1/b?project=rsl-test", self.endpoint))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "create bucket {name}: {}",
            resp.status()
        );
        name
    }

    /// The environment a command needs to use `gs://<bucket>/<prefix>` on the emulator.
    pub fn env(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let url = if prefix.is_empty() {
            format!("gs://{bucket}")
        } else {
            format!("gs://{bucket}/{prefix}")
        };
        vec![
            ("STORAGE_URL".into(), url),
            ("STORAGE_ENDPOINT".into(), self.endpoint.clone()),
            (
                "GOOGLE_APPLICATION_CREDENTIALS".into(),
                self.credentials.clone(),
            ),
        ]
    }

    pub async fn put(&self, bucket: &str, name: &str, body: &[u8], content_type: &str) {
        let resp = self
            .http
            .post(format!(
                "{}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
                self.endpoint,
                encode(name)
            ))
            .header("Content-Type", content_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "upload {name}: {}",
            resp.status()
        );
    }

    /// Every object's metadata (name, size, updated, customTime...), by name.
    pub async fn objects(&self, bucket: &str) -> Vec<Value> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/storage/v1/b/{bucket}/o?maxResults=1000", self.endpoint);
            if let Some(token) = &token {
                url.push_str(&format!("&pageToken={}", encode(token)));
            }
            let page: Value = self
                .http
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            objects.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        objects.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        objects
    }

    /// The object's metadata, `None` when there is no such object.
    pub async fn object(&self, bucket: &str, name: &str) -> Option<Value> {
        let resp = self
            .http
            .get(format!(
                "{}/storage/v1/b/{bucket}/o/{}",
                self.endpoint,
                encode(name)
            ))
            .send()
            .await
            .unwrap();
        if resp.status() == 404 {
            return None;
        }
        assert!(resp.status().is_success(), "get {name}: {}", resp.status());
        Some(resp.json().await.unwrap())
    }

    pub async fn download(&self, bucket: &str, name: &str) -> Vec<u8> {
        let resp = self
            .http
            .get(format!(
                "{}/storage/v1/b/{bucket}/o/{}?alt=media",
                self.endpoint,
                encode(name)
            ))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "download {name}: {}",
            resp.status()
        );
        resp.bytes().await.unwrap().to_vec()
    }

    /// Set an object's `customTime` (RFC 3339), as an earlier marking run would have.
    pub async fn set_custom_time(&self, bucket: &str, name: &str, at: &str) {
        let resp = self
            .http
            .patch(format!(
                "{}/storage/v1/b/{bucket}/o/{}",
                self.endpoint,
                encode(name)
            ))
            .json(&json!({ "customTime": at }))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "patch {name}: {}",
            resp.status()
        );
    }
}
