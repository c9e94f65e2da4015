//! What the records reference: every attachment `location` of every record of every signed
//! collection's source, preview and destination. The collections are found from every side of
//! every signer resource (a per-bucket side is one listing of its bucket's collections), so a
//! collection is read even when only one of its sides can be listed; each side is read with one
//! `changeset` request. A side that does not exist (404) holds no records; any other failure
//! makes the set incomplete, and the caller then marks nothing.

use std::collections::{BTreeMap, HashSet};

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::client::{ClientError, Request, Response};
use crate::kinto::{CollectionRef, Kinto, ResourceRef, SignedCollection, SignerCapability};
use crate::monitored::check_all;
use crate::Context;

/// The referenced locations, and what could not be read.
#[derive(Debug, Default)]
pub struct References {
    /// Locations as records hold them, without a leading `/`: keys under `STORAGE_URL`.
    pub locations: HashSet<String>,
    /// Signed collections (counted by source) whose sides were read.
    pub collections: usize,
    /// Changesets read.
    pub changesets: usize,
    /// Sides that do not exist (404), counted as holding nothing.
    pub missing_sides: usize,
    /// Records whose `attachment` has no usable `location` (reported, they reference nothing).
    pub invalid_attachments: usize,
    /// Listings and changesets that could not be read: `bucket` or `bucket/collection`, error.
    pub unreadable: Vec<(String, ClientError)>,
}

/// One side of a signed collection, as far as attachments go.
#[derive(Deserialize)]
struct Changeset {
    changes: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    attachment: Option<Value>,
}

/// Collect the references of every signed collection of `signer`; `started` busts caches.
pub async fn collect(
    ctx: &Context,
    client: &Kinto,
    signer: &SignerCapability,
    started: OffsetDateTime,
) -> References {
    let mut references = References::default();
    let collections = signed_collections(client, signer, &mut references).await;
    references.collections = collections.len();
    let sides: Vec<CollectionRef> = collections
        .into_values()
        .flat_map(|c| [Some(c.source), c.preview, Some(c.destination)])
        .flatten()
        .collect();
    let expected = (started.unix_timestamp_nanos() / 1_000_000) as u64;
    let label = "Reading changesets";
    let read = check_all(ctx, label, ctx.http.parallel(), sides.clone(), |side| {
        read_side(client, side, expected)
    })
    .await;
    for (side, result) in sides.into_iter().zip(read) {
        match result {
            Ok(found) => {
                references.changesets += 1;
                references.invalid_attachments += found.invalid;
                references.locations.extend(found.locations);
            }
            Err(error) if error.status() == Some(404) => references.missing_sides += 1,
            Err(error) => references.unreadable.push((side.to_string(), error)),
        }
    }
    references
}

/// The locations one side's records reference, and how many records have an attachment
/// without a usable one.
struct Found {
    locations: Vec<String>,
    invalid: usize,
}

/// An attachment's `location` as a store key (`None` when it has none, or not a string).
fn location(attachment: &Value) -> Option<String> {
    let location = attachment.get("location")?.as_str()?.trim_start_matches('/');
    (!location.is_empty()).then(|| location.to_string())
}

/// Read one side and keep only its locations (the records go as soon as they are read).
async fn read_side(client: &Kinto, side: CollectionRef, expected: u64) -> Result<Found, ClientError> {
    let request = Request::new(Method::GET, client.changeset_url(&side.path(), expected));
    let (_, changeset) = client
        .send_checked(&request, Response::json::<Changeset>)
        .await?;
    let mut found = Found {
        locations: Vec::new(),
        invalid: 0,
    };
    for record in changeset.changes {
        let Some(attachment) = record.attachment.filter(|a| !a.is_null()) else {
            continue;
        };
        match location(&attachment) {
            Some(location) => found.locations.push(location),
            None => found.invalid += 1,
        }
    }
    Ok(found)
}

/// Every signed collection, by source, found from any side of any resource.
async fn signed_collections(
    client: &Kinto,
    signer: &SignerCapability,
    references: &mut References,
) -> BTreeMap<CollectionRef, SignedCollection> {
    type Resolve = fn(&SignerCapability, &str, &str) -> Option<SignedCollection>;
    let by_source: Resolve = |s, b, c| s.resolve_source(b, c);
    let by_published: Resolve = |s, b, c| s.resolve_published(b, c).map(|(w, _)| w);
    let mut sides: Vec<(ResourceRef, Resolve)> = Vec::new();
    for resource in &signer.resources {
        sides.push((resource.source.clone(), by_source));
        if let Some(preview) = &resource.preview {
            sides.push((preview.clone(), by_published));
        }
        sides.push((resource.destination.clone(), by_published));
    }
    let listings = futures::future::join_all(sides.iter().map(|(side, _)| ids_of(client, side)));
    let mut found = BTreeMap::new();
    for ((side, resolve), ids) in sides.iter().zip(listings.await) {
        match ids {
            Ok(ids) => {
                for id in ids {
                    if let Some(workflow) = resolve(signer, &side.bucket, &id) {
                        found.entry(workflow.source.clone()).or_insert(workflow);
                    }
                }
            }
            Err(error) => references.unreadable.push((side.bucket.clone(), error)),
        }
    }
    found
}

/// The collection ids a side names: its own, or its bucket's collections (none when the bucket
/// does not exist).
async fn ids_of(client: &Kinto, side: &ResourceRef) -> Result<Vec<String>, ClientError> {
    if let Some(cid) = &side.collection {
        return Ok(vec![cid.clone()]);
    }
    let path = format!("/buckets/{}/collections", side.bucket);
    match client.get_all(&path, &[("_fields", "id")]).await {
        Ok(all) => Ok(all
            .iter()
            .filter_map(|c| c.get("id").and_then(Value::as_str).map(String::from))
            .collect()),
        Err(error) if error.status() == Some(404) => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn locations_are_keys_without_a_leading_slash() {
        let loc = |v: Value| location(&v);
        assert_eq!(
            loc(json!({"location": "main-workspace/c/x.bin"})).as_deref(),
            Some("main-workspace/c/x.bin")
        );
        assert_eq!(loc(json!({"location": "/a/b.bin"})).as_deref(), Some("a/b.bin"));
        assert_eq!(loc(json!({"location": 5})), None);
        assert_eq!(loc(json!({"hash": "x"})), None);
        assert_eq!(loc(json!({"location": ""})), None);
    }
}
