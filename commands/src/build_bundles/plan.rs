//! What a run does with each collection's zip, decided from its changeset and the store's
//! bundles alone (no request): build it, leave it, skip it, or delete it.

use time::OffsetDateTime;

use super::archive::{self, BundleFile};
use super::changesets::Published;
use super::publish::Existing;
use super::report::{Action, Output};

/// A zip to build: its report line so far and its files.
#[derive(Debug)]
pub struct ZipJob {
    pub output: Output,
    pub files: Vec<BundleFile>,
}

#[derive(Debug)]
pub enum ZipPlan {
    Build(ZipJob),
    /// Decided without building (unchanged, too big, cannot be bundled, nothing to bundle).
    Done(Output),
    /// The stored zip should go, for this reason.
    Delete(String, &'static str),
    /// No zip, none wanted.
    Nothing,
}

pub const NOT_FLAGGED: &str = "attachment.bundle is no longer set";
pub const NO_ATTACHMENTS: &str = "no attachments left";

/// Did the collection(s) change, at `timestamp` (epoch ms), since the stored object was written
/// (`None`: there is none)? A change in the same millisecond counts as a change.
pub fn changed_since(timestamp: u64, stored: Option<&OffsetDateTime>) -> bool {
    match stored {
        None => true,
        Some(updated) => i128::from(timestamp) >= updated.unix_timestamp_nanos() / 1_000_000,
    }
}

/// The zip of one published collection.
pub fn zip_plan(
    published: &Published,
    base_url: Option<&str>,
    existing: &Existing,
    max_size: u64,
) -> ZipPlan {
    let c = &published.collection;
    let name = format!("{}--{}.zip", c.bucket, c.collection);
    let stored = existing.get(&name);
    if !published.wants_zip() {
        return match stored {
            Some(_) => ZipPlan::Delete(name, NOT_FLAGGED),
            None => ZipPlan::Nothing,
        };
    }
    let files = match archive::files_of(published, base_url) {
        Ok(files) => files,
        Err(why) => return ZipPlan::Done(Output::new(name, 0, Action::Invalid(why))),
    };
    if files.is_empty() {
        return match stored {
            Some(_) => ZipPlan::Delete(name, NO_ATTACHMENTS),
            None => ZipPlan::Done(Output::new(name, 0, Action::NoAttachments)),
        };
    }
    if !changed_since(published.changeset.timestamp, stored) {
        return ZipPlan::Done(Output::new(name, files.len(), Action::Unchanged));
    }
    let declared: u64 = files.iter().map(|f| f.attachment.size).sum();
    if declared > max_size {
        return ZipPlan::Done(Output::new(name, files.len(), Action::TooBig { declared }));
    }
    ZipPlan::Build(ZipJob {
        output: Output::new(name, files.len(), Action::Built),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinto::CollectionRef;
    use serde_json::{json, Value};

    fn published(bundle: bool, timestamp: u64, changes: Value) -> Published {
        let changeset = json!({"metadata": {"attachment": {"bundle": bundle}}, "timestamp": timestamp, "changes": changes});
        Published {
            collection: CollectionRef::new("main", "c"),
            changeset: serde_json::from_value(changeset).unwrap(),
        }
    }

    fn with_files(sizes: &[u64]) -> Value {
        let records: Vec<Value> = sizes
            .iter()
            .enumerate()
            .map(|(i, size)| json!({"id": format!("r{i}"), "attachment": {"location": format!("main/c/{i}"), "hash": "ab".repeat(32), "size": size}}))
            .collect();
        Value::Array(records)
    }

    fn stored_at(ms: i64) -> Existing {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
        Existing::from([("main--c.zip".to_string(), at)])
    }

    fn action(plan: ZipPlan) -> String {
        match plan {
            ZipPlan::Build(job) => format!("build {}", job.files.len()),
            ZipPlan::Done(output) => format!("{:?}", output.action),
            ZipPlan::Delete(_, why) => format!("delete: {why}"),
            ZipPlan::Nothing => "nothing".into(),
        }
    }

    #[test]
    fn a_zip_is_rebuilt_only_when_its_collection_changed_since_it_was_stored() {
        let p = published(true, 2000, with_files(&[10, 20]));
        let base = Some("http://cdn/");
        assert_eq!(action(zip_plan(&p, base, &Existing::new(), 100)), "build 2");
        assert_eq!(action(zip_plan(&p, base, &stored_at(1999), 100)), "build 2");
        assert_eq!(action(zip_plan(&p, base, &stored_at(2000), 100)), "build 2");
        assert_eq!(action(zip_plan(&p, base, &stored_at(2001), 100)), "Unchanged");
    }

    #[test]
    fn too_big_zips_are_skipped_and_lost_flags_or_files_delete_the_stored_zip() {
        let base = Some("http://cdn/");
        let big = published(true, 2000, with_files(&[60, 41]));
        assert_eq!(action(zip_plan(&big, base, &Existing::new(), 100)), "TooBig { declared: 101 }");
        assert_eq!(action(zip_plan(&big, base, &Existing::new(), 101)), "build 2");
        let unflagged = published(false, 2000, with_files(&[1]));
        assert_eq!(action(zip_plan(&unflagged, base, &stored_at(1), 100)), format!("delete: {NOT_FLAGGED}"));
        assert_eq!(action(zip_plan(&unflagged, base, &Existing::new(), 100)), "nothing");
        let empty = published(true, 2000, json!([{"id": "plain"}]));
        assert_eq!(action(zip_plan(&empty, base, &stored_at(1), 100)), format!("delete: {NO_ATTACHMENTS}"));
        assert_eq!(action(zip_plan(&empty, base, &Existing::new(), 100)), "NoAttachments");
    }
}
