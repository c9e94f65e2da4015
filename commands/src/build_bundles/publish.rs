//! Where built outputs go: the store under `bundles/` (unless dry run), and `TARGET_DIR` when
//! given; and the store's existing bundles, whose modification times say what changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use time::OffsetDateTime;

use super::report::{Action, Output};
use crate::store::{Store, StoreError};

/// The folder of the store the bundles live in.
pub const PREFIX: &str = "bundles/";

/// The run's destinations.
#[derive(Debug, Clone)]
pub struct Destination {
    pub store: Option<Store>,
    pub dry_run: bool,
    pub target_dir: Option<PathBuf>,
}

/// The store's bundles: file name → last modification.
pub type Existing = HashMap<String, OffsetDateTime>;

impl Destination {
    /// The bundles already stored (none without a store).
    pub async fn existing(&self) -> Result<Existing, StoreError> {
        let Some(store) = &self.store else {
            return Ok(Existing::new());
        };
        let mut listing = store.list(PREFIX);
        let mut found = Existing::new();
        while let Some(object) = listing.next().await {
            let object = object?;
            let key = object.key.strip_prefix(PREFIX).unwrap_or(&object.key);
            if !key.contains('/') {
                found.insert(key.to_string(), object.updated);
            }
        }
        Ok(found)
    }

    /// What the report calls the store.
    pub fn describe(&self) -> Option<String> {
        self.store.as_ref().map(|s| format!("{}/{PREFIX}", s.describe().trim_end_matches('/')))
    }

    /// Write `body` as `output.name` to `TARGET_DIR` (when given) and to the store (unless dry
    /// run); `output` is updated with the size and what happened.
    pub async fn deliver(&self, output: &mut Output, body: Vec<u8>, content_type: &str) {
        output.bytes = body.len() as u64;
        let mut body = body;
        if let Some(dir) = &self.target_dir {
            let written;
            (body, written) = write_file(dir, &output.name, body).await;
            match written {
                Ok(path) => output.written_to = Some(path),
                Err(e) => {
                    output.action = Action::StoreFailed(e);
                    return;
                }
            }
        }
        output.action = match (&self.store, self.dry_run) {
            (Some(store), false) => {
                let key = format!("{PREFIX}{}", output.name);
                match store.put(&key, body, content_type).await {
                    Ok(()) => Action::Written,
                    Err(e) => Action::StoreFailed(e.to_string()),
                }
            }
            _ => Action::Built,
        };
    }

    /// Delete the stored `name` (only when the caller knows every changeset).
    pub async fn delete(&self, name: &str, why: &'static str) -> Action {
        match (&self.store, self.dry_run) {
            (Some(store), false) => match store.delete(&format!("{PREFIX}{name}")).await {
                Ok(()) => Action::Deleted(why),
                Err(e) => Action::DeleteFailed(why, e.to_string()),
            },
            _ => Action::WouldDelete(why),
        }
    }
}

/// Write `body` to `dir/name` (the directory created when missing); the body comes back.
async fn write_file(dir: &Path, name: &str, body: Vec<u8>) -> (Vec<u8>, Result<PathBuf, String>) {
    let (dir, path) = (dir.to_path_buf(), dir.join(name));
    let target = path.clone();
    let written = tokio::task::spawn_blocking(move || {
        let result = std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))
            .and_then(|()| {
                std::fs::write(&target, &body)
                    .map_err(|e| format!("cannot write {}: {e}", target.display()))
            });
        (body, result)
    })
    .await;
    match written {
        Ok((body, result)) => (body, result.map(|()| path)),
        Err(e) => (Vec::new(), Err(format!("writing {} failed: {e}", path.display()))),
    }
}
