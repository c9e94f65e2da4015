//! The attachments of a published collection, as its changeset declares them (each record's
//! declaration is parsed by [`crate::attachment`], which also checks the files).

use serde::Deserialize;
use serde_json::Value;

use crate::attachment::{parse, Attachment, InvalidAttachment};
use crate::client::ClientError;
use crate::kinto::Kinto;
use crate::kinto::{ChangesEntry, CollectionRef};

/// The attachments of a collection's published records (tombstones and records without one are
/// skipped), read from its changeset at the monitor's timestamp.
pub async fn list(
    client: &Kinto,
    entry: &ChangesEntry,
) -> Result<(Vec<Attachment>, Vec<InvalidAttachment>), ClientError> {
    #[derive(Deserialize)]
    struct Changeset {
        changes: Vec<Value>,
    }
    let (changeset, _) = client
        .get_json::<Changeset>(
            &format!("{}/changeset", entry.path()),
            &[("_expected", &entry.last_modified.to_string())],
        )
        .await?;
    let collection = CollectionRef::new(&entry.bucket, &entry.collection);
    let (mut found, mut invalid) = (Vec::new(), Vec::new());
    for record in &changeset.changes {
        match parse(&collection, record) {
            Some(Ok(attachment)) => found.push(attachment),
            Some(Err(bad)) => invalid.push(bad),
            None => {}
        }
    }
    Ok((found, invalid))
}
