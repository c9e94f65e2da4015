//! The signer capability (`capabilities.signer` of the server info): its resources, each a
//! source (where editors write), an optional preview and a destination (where clients read),
//! and how a collection resolves to its place in the workflow.

use serde::{Deserialize, Serialize};

use super::CollectionRef;

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
}
