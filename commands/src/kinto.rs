//! Remote Settings domain types read from a Kinto server: monitor/changes entries, server info
//! with the signer capability and its resources.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{ClientError, ClientErrorKind, HttpClient};
use crate::settings::is_kinto_id;

/// One entry of `monitor/changes` (or of any collection used as such): a published collection and
/// its records timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangesEntry {
    pub bucket: String,
    pub collection: String,
    pub last_modified: u64,
}

impl ChangesEntry {
    pub fn path(&self) -> String {
        format!("/buckets/{}/collections/{}", self.bucket, self.collection)
    }
}

/// An entry that cannot be used: its raw form and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidEntry {
    pub id: String,
    pub reason: String,
}

/// Parse a monitor/changes record; bucket and collection must be Kinto ids (nothing else is
/// ever put in a URL).
pub fn parse_entry(record: &Value) -> Result<ChangesEntry, InvalidEntry> {
    let id = record
        .get("id")
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_else(|| "(no id)".into());
    let invalid = |reason: String| InvalidEntry {
        id: id.clone(),
        reason,
    };
    let field = |name: &str| -> Result<String, InvalidEntry> {
        let value = record
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("no string \"{name}\"")))?;
        if !is_kinto_id(value) {
            return Err(invalid(format!(
                "\"{name}\" is not a Kinto id: {}",
                crate::settings::quote(value)
            )));
        }
        Ok(value.to_string())
    };
    let bucket = field("bucket")?;
    let collection = field("collection")?;
    let last_modified = record
        .get("last_modified")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("no integer \"last_modified\"".into()))?;
    Ok(ChangesEntry {
        bucket,
        collection,
        last_modified,
    })
}

/// Read all entries of the monitor collection; unusable ones are returned apart.
pub async fn read_changes(
    client: &HttpClient,
    bucket: &str,
    collection: &str,
) -> Result<(Vec<ChangesEntry>, Vec<InvalidEntry>), ClientError> {
    let path = format!("/buckets/{bucket}/collections/{collection}/records");
    let records = client.get_all(&path, &[]).await?;
    let mut entries = Vec::with_capacity(records.len());
    let mut invalid = Vec::new();
    for record in &records {
        match parse_entry(record) {
            Ok(entry) => entries.push(entry),
            Err(bad) => invalid.push(bad),
        }
    }
    Ok((entries, invalid))
}

/// `GET /v1/`: the parts of the server info the commands use. Kinto always sends `capabilities`
/// and `settings`: an answer without them is not a server info (a proxy's page, another
/// service), so it is rejected and retried, never read as "a server without the signer".
#[derive(Debug, Clone, Deserialize)]
pub struct ServerInfo {
    pub capabilities: serde_json::Map<String, Value>,
    pub settings: serde_json::Map<String, Value>,
    #[serde(default)]
    pub user: Option<Value>,
}

impl ServerInfo {
    pub async fn fetch(client: &HttpClient) -> Result<ServerInfo, ClientError> {
        let (info, _) = client.get_json("/", &[]).await?;
        Ok(info)
    }

    pub fn batch_max_requests(&self) -> usize {
        self.settings
            .get("batch_max_requests")
            .and_then(Value::as_u64)
            .map(|n| n.clamp(1, 10_000) as usize)
            .unwrap_or(25)
    }
}

/// The check of an answer that holds one Kinto object, `{"data": {...}}` (a collection read or
/// written), for [`HttpClient::send_checked`]: any other 2xx body (not JSON, another shape) is
/// not taken for a success: it is retried, then an error naming the URL.
pub fn object_data(
    response: &crate::client::Response,
) -> Result<serde_json::Map<String, Value>, ClientErrorKind> {
    #[derive(Deserialize)]
    struct Body {
        data: serde_json::Map<String, Value>,
    }
    response.json::<Body>().map(|body| body.data)
}

/// How long a request that makes kinto-signer sign (a collection PATCHed to `to-review`, `to-sign`
/// or `to-resign`) may wait for its answer, when longer than `REQUESTS_TIMEOUT_SECONDS`: the server
/// signs the preview and the destination before it answers, which takes seconds for collections
/// of thousands of records. Cutting it short would only make the server sign again on every retry.
pub const SIGNING_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// A bucket, or one collection of it, as named in a signer resource (`collection: None` means
/// every collection of the bucket).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ResourceRef {
    pub bucket: String,
    #[serde(default)]
    pub collection: Option<String>,
}

/// One entry of `capabilities.signer.resources`: where editors write, where reviewers preview,
/// where clients read. Review settings are present only where they differ from the server-wide
/// ones.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SignerResource {
    pub source: ResourceRef,
    #[serde(default)]
    pub preview: Option<ResourceRef>,
    pub destination: ResourceRef,
    #[serde(default)]
    pub to_review_enabled: Option<bool>,
}

/// The signer capability of a server: its resources and server-wide review setting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SignerCapability {
    #[serde(default)]
    pub resources: Vec<SignerResource>,
    #[serde(default)]
    pub to_review_enabled: bool,
}

/// A bucket and collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CollectionRef {
    pub bucket: String,
    pub collection: String,
}

impl CollectionRef {
    pub fn new(bucket: &str, collection: &str) -> Self {
        CollectionRef {
            bucket: bucket.to_string(),
            collection: collection.to_string(),
        }
    }

    /// `/buckets/{bucket}/collections/{collection}`
    pub fn path(&self) -> String {
        format!("/buckets/{}/collections/{}", self.bucket, self.collection)
    }
}

impl std::fmt::Display for CollectionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.bucket, self.collection)
    }
}

/// Which side of a signer resource a published collection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Destination,
    Preview,
}

/// A collection's place in the signer workflow: its source, preview and destination, with the
/// collection ids filled in, and whether changes need a review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedCollection {
    pub source: CollectionRef,
    pub preview: Option<CollectionRef>,
    pub destination: CollectionRef,
    pub to_review_enabled: bool,
}

impl ResourceRef {
    /// Does this bucket or collection hold `bucket/collection`? Per-collection references match
    /// exactly; per-bucket ones match every collection of the bucket.
    fn holds(&self, bucket: &str, collection: &str) -> bool {
        self.bucket == bucket && self.collection.as_deref().is_none_or(|c| c == collection)
    }

    /// The collection this reference names for a collection id taken from another side of the
    /// same resource (per-bucket resources keep the id).
    fn with(&self, collection: &str) -> CollectionRef {
        CollectionRef::new(
            &self.bucket,
            self.collection.as_deref().unwrap_or(collection),
        )
    }
}

impl SignerCapability {
    /// The resource's sides for one collection id (per-collection sides keep their own ids).
    fn expand(&self, resource: &SignerResource, collection_id: &str) -> SignedCollection {
        SignedCollection {
            source: resource.source.with(collection_id),
            preview: resource.preview.as_ref().map(|p| p.with(collection_id)),
            destination: resource.destination.with(collection_id),
            to_review_enabled: resource.to_review_enabled.unwrap_or(self.to_review_enabled),
        }
    }

    /// Find the resource whose `side` holds `bucket/collection`, preferring a per-collection
    /// resource over a per-bucket one (kinto-signer's own precedence).
    fn find(
        &self,
        side: fn(&SignerResource) -> Option<&ResourceRef>,
        bucket: &str,
        collection: &str,
    ) -> Option<&SignerResource> {
        let mut per_bucket = None;
        for resource in &self.resources {
            match side(resource) {
                Some(r) if r.holds(bucket, collection) && r.collection.is_some() => {
                    return Some(resource)
                }
                Some(r) if r.holds(bucket, collection) => {
                    per_bucket.get_or_insert(resource);
                }
                _ => {}
            }
        }
        per_bucket
    }

    /// The workflow of a published collection (as listed in monitor/changes), and whether it is
    /// the destination or the preview. `None` when no resource publishes it.
    pub fn resolve_published(
        &self,
        bucket: &str,
        collection: &str,
    ) -> Option<(SignedCollection, Role)> {
        if let Some(r) = self.find(|r| Some(&r.destination), bucket, collection) {
            return Some((self.expand(r, collection), Role::Destination));
        }
        let r = self.find(|r| r.preview.as_ref(), bucket, collection)?;
        Some((self.expand(r, collection), Role::Preview))
    }

    /// The workflow of a source (workspace) collection. `None` when it is not signed.
    pub fn resolve_source(&self, bucket: &str, collection: &str) -> Option<SignedCollection> {
        self.find(|r| Some(&r.source), bucket, collection)
            .map(|r| self.expand(r, collection))
    }
}

impl ServerInfo {
    /// The signer capability, when the server has the signer plugin (writer servers).
    pub fn signer(&self) -> Result<Option<SignerCapability>, String> {
        match self.capabilities.get("signer") {
            None => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|e| format!("capabilities.signer is not as expected: {e}")),
        }
    }
}

/// What the original says when a command that drives the signer runs on a server without it.
pub const NO_SIGNER_MESSAGE: &str = "No signer capabilities found. Run on *writer* server!";

impl ServerInfo {
    /// The signer capability, for commands that only make sense on a writer server: a server
    /// without it is a usage error (exit 2) with the original's message.
    pub fn require_signer(&self) -> Result<SignerCapability, crate::CommandError> {
        self.signer()
            .map_err(crate::CommandError::Runtime)?
            .ok_or_else(|| crate::CommandError::Usage(NO_SIGNER_MESSAGE.into()))
    }
}

/// Helper for commands that need a shape error on a URL.
pub fn shape_error(client: &HttpClient, path: &str, message: impl Into<String>) -> ClientError {
    ClientError::new(
        &reqwest::Method::GET,
        &client.url(path),
        1,
        ClientErrorKind::Shape(message.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn capability() -> SignerCapability {
        serde_json::from_value(json!({
            "to_review_enabled": true,
            "resources": [
                {"source": {"bucket": "main-workspace", "collection": null},
                 "preview": {"bucket": "main-preview", "collection": null},
                 "destination": {"bucket": "main", "collection": null}},
                {"source": {"bucket": "staging", "collection": null},
                 "destination": {"bucket": "blocklists", "collection": null},
                 "to_review_enabled": false},
                {"source": {"bucket": "pinning-workspace", "collection": "pins"},
                 "destination": {"bucket": "pinning", "collection": "pins-v2"},
                 "to_review_enabled": false},
                {"source": {"bucket": "main-workspace", "collection": "special"},
                 "preview": {"bucket": "main-preview", "collection": "special-preview"},
                 "destination": {"bucket": "main", "collection": "special-v2"},
                 "to_review_enabled": false},
            ]
        }))
        .unwrap()
    }

    #[test]
    fn an_object_answer_needs_its_data_object() {
        let answer = |body: &str| crate::client::Response {
            url: reqwest::Url::parse("http://h/v1/buckets/b/collections/c").unwrap(),
            status: reqwest::StatusCode::OK,
            headers: reqwest::header::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        };
        let data = object_data(&answer(r#"{"data": {"id": "c", "status": "to-review"}}"#)).unwrap();
        assert_eq!(data["status"], "to-review");
        for other in ["<html>502</html>", r#"{"data": 42}"#, "{}", ""] {
            assert!(
                matches!(object_data(&answer(other)), Err(ClientErrorKind::Shape(_))),
                "{other}"
            );
        }
    }

    #[test]
    fn a_server_info_needs_capabilities_and_settings() {
        let info: ServerInfo = serde_json::from_value(json!({
            "project_name": "kinto", "url": "http://h/v1/",
            "settings": {"batch_max_requests": 25}, "capabilities": {}
        }))
        .unwrap();
        assert!(info.signer().unwrap().is_none());
        assert_eq!(info.batch_max_requests(), 25);
        // Another JSON document is not "a server without the signer".
        for other in [json!({"data": 42}), json!({"capabilities": {}}), json!({})] {
            assert!(
                serde_json::from_value::<ServerInfo>(other.clone()).is_err(),
                "{other}"
            );
        }
    }

    #[test]
    fn published_collections_resolve_to_their_source() {
        let cap = capability();
        let (wf, role) = cap.resolve_published("main", "cfr").unwrap();
        assert_eq!(role, Role::Destination);
        assert_eq!(wf.source, CollectionRef::new("main-workspace", "cfr"));
        assert_eq!(wf.preview, Some(CollectionRef::new("main-preview", "cfr")));
        assert!(wf.to_review_enabled);
        let (wf, role) = cap.resolve_published("main-preview", "cfr").unwrap();
        assert_eq!(role, Role::Preview);
        assert_eq!(wf.destination, CollectionRef::new("main", "cfr"));
        let (wf, _) = cap.resolve_published("blocklists", "addons").unwrap();
        assert_eq!(wf.source, CollectionRef::new("staging", "addons"));
        assert_eq!(wf.preview, None);
        assert!(!wf.to_review_enabled);
        // Per-collection resources win, and may rename the collection.
        let (wf, _) = cap.resolve_published("pinning", "pins-v2").unwrap();
        assert_eq!(wf.source, CollectionRef::new("pinning-workspace", "pins"));
        let (wf, _) = cap.resolve_published("main", "special-v2").unwrap();
        assert_eq!(wf.source, CollectionRef::new("main-workspace", "special"));
        assert!(!wf.to_review_enabled);
        let (wf, role) = cap
            .resolve_published("main-preview", "special-preview")
            .unwrap();
        assert_eq!(role, Role::Preview);
        assert_eq!(wf.destination, CollectionRef::new("main", "special-v2"));
        assert!(cap.resolve_published("pinning", "other").is_none());
        assert!(cap.resolve_published("unknown", "x").is_none());
    }

    #[test]
    fn sources_resolve_to_their_destination() {
        let cap = capability();
        let wf = cap.resolve_source("main-workspace", "special").unwrap();
        assert_eq!(wf.destination, CollectionRef::new("main", "special-v2"));
        let wf = cap.resolve_source("main-workspace", "cfr").unwrap();
        assert_eq!(wf.destination, CollectionRef::new("main", "cfr"));
        assert!(cap.resolve_source("main", "cfr").is_none());
    }

    #[test]
    fn entries_with_odd_names_are_refused() {
        let ok = json!({"id": "x", "bucket": "main", "collection": "cfr", "last_modified": 12});
        assert_eq!(
            parse_entry(&ok).unwrap().path(),
            "/buckets/main/collections/cfr"
        );
        for bad in [
            json!({"id": "x", "bucket": "../admin", "collection": "c", "last_modified": 1}),
            json!({"id": "x", "bucket": "a%2Fb", "collection": "c", "last_modified": 1}),
            json!({"id": "x", "bucket": "b", "collection": "ünï", "last_modified": 1}),
            json!({"id": "x", "bucket": "b", "collection": "c"}),
            json!({"id": "x", "bucket": "b", "collection": "c", "last_modified": "12"}),
        ] {
            assert!(parse_entry(&bad).is_err(), "{bad}");
        }
    }
}
