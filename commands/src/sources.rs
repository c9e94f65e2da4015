//! The signed source (workspace) collections of a writer server, with their metadata: every
//! signer resource of `GET /v1/` capabilities, a per-bucket resource expanded to the bucket's
//! collections (one paginated listing, which carries each collection's metadata), a
//! per-collection one read on its own. Each source is resolved with the signer's own precedence
//! (`SignerCapability::resolve_source`), so a collection named by two resources is listed once.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::client::ClientError;
use crate::kinto::Kinto;
use crate::kinto::{ResourceRef, SignedCollection, SignerCapability};
use crate::settings::{RawSettings, Setting, SettingError};
use crate::validate_signature::MAX_CHECK_AT;

/// The time ages are judged at, for the checks on the signer's tracking dates (the server sets
/// them itself: moving "now" is how an old date is checked).
pub const CHECK_AT: Setting = Setting::new(
    "CHECK_AT",
    "EPOCH_SECONDS",
    "Judge ages as if now were this time, in seconds since the epoch",
)
.flag("at")
.derived("now");

/// `CHECK_AT`, or now.
pub fn check_at(raw: &RawSettings) -> Result<i64, SettingError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    Ok(raw
        .uint_opt(&CHECK_AT, MAX_CHECK_AT)?
        .map_or(now, |at| at as i64))
}

/// One signed source collection and its metadata (`status`, `last_signature_date`...).
#[derive(Debug, Clone)]
pub struct Source {
    pub workflow: SignedCollection,
    pub metadata: Map<String, Value>,
}

impl Source {
    /// A string attribute of the metadata.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }

    /// A date kinto-signer tracks (`last_signature_date`, `last_edit_date`...), in seconds since
    /// the epoch; `None` when absent or unreadable.
    pub fn date(&self, key: &str) -> Option<i64> {
        self.text(key).and_then(parse_signer_date)
    }
}

/// An ISO 8601 date as kinto-signer writes them (`2026-12-04T14:41:15.588123+00:00`), in seconds
/// since the epoch.
pub fn parse_signer_date(date: &str) -> Option<i64> {
    OffsetDateTime::parse(date.trim(), &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// The sources of a server, in bucket and collection order, and the resources that could not
/// be read. A per-collection source that does not exist yet (404) is not listed.
pub struct Sources {
    pub sources: Vec<Source>,
    pub unreadable: Vec<(ResourceRef, ClientError)>,
}

#[derive(Deserialize)]
struct Body {
    data: Map<String, Value>,
}

pub async fn list_sources(client: &Kinto, signer: &SignerCapability) -> Sources {
    let reads = signer.resources.iter().map(|resource| async move {
        let source = &resource.source;
        let found: Result<Vec<Map<String, Value>>, ClientError> = match &source.collection {
            None => client
                .get_all(&format!("/buckets/{}/collections", source.bucket), &[])
                .await
                .map(|all| {
                    all.into_iter()
                        .filter_map(|v| match v {
                            Value::Object(m) => Some(m),
                            _ => None,
                        })
                        .collect()
                }),
            Some(cid) => {
                let path = format!("/buckets/{}/collections/{cid}", source.bucket);
                match client.get_json::<Body>(&path, &[]).await {
                    Ok((body, _)) => Ok(vec![body.data]),
                    Err(error) if error.status() == Some(404) => Ok(Vec::new()),
                    Err(error) => Err(error),
                }
            }
        };
        (source.clone(), found)
    });
    let mut by_source = BTreeMap::new();
    let mut unreadable = Vec::new();
    for (resource, found) in futures::future::join_all(reads).await {
        match found {
            Ok(collections) => {
                for metadata in collections {
                    let Some(cid) = metadata.get("id").and_then(Value::as_str) else {
                        continue;
                    };
                    if let Some(workflow) = signer.resolve_source(&resource.bucket, cid) {
                        by_source
                            .entry(workflow.source.clone())
                            .or_insert(Source { workflow, metadata });
                    }
                }
            }
            Err(error) => unreadable.push((resource, error)),
        }
    }
    Sources {
        sources: by_source.into_values().collect(),
        unreadable,
    }
}

/// A signer resource's source, as reports name it: `bucket` or `bucket/collection`.
pub fn resource_name(r: &ResourceRef) -> String {
    match &r.collection {
        Some(c) => format!("{}/{c}", r.bucket),
        None => r.bucket.clone(),
    }
}

/// A resource whose source could not be read, in JSON form.
pub fn unreadable_json((resource, error): &(ResourceRef, ClientError)) -> Value {
    serde_json::json!({"resource": resource_name(resource), "status": "error",
                       "code": error.code(), "error": crate::report::client_error_json(error)})
}

/// Its report line.
pub fn unreadable_line((resource, error): &(ResourceRef, ClientError)) -> String {
    format!(
        "resource {} NOT OK: could not read its source: {error}",
        resource_name(resource)
    )
}

/// What a failed run's message adds about unreadable resources (empty when there is none).
pub fn unreadable_message(unreadable: &[(ResourceRef, ClientError)]) -> String {
    match unreadable.first() {
        Some((resource, error)) => format!(
            "; could not read {} resource(s), first {}: {error}",
            unreadable.len(),
            resource_name(resource)
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_dates_are_read_with_their_offset() {
        assert_eq!(
            parse_signer_date("2026-12-04T14:41:15.588123+00:00"),
            Some(1_796_395_275)
        );
        assert_eq!(
            parse_signer_date("2026-12-04T15:41:15+01:00"),
            Some(1_796_395_275)
        );
        assert_eq!(parse_signer_date("yesterday"), None);
    }
}
