//! The loop the per-collection commands share: read the monitor list (usable entries in monitor
//! order, unusable ones apart, to be reported), let the command filter or map the entries, then
//! check every item in parallel within a cap, with the progress bar, results in item order.

use std::future::Future;

use futures::StreamExt;

use crate::client::ClientError;
use crate::kinto::{
    read_changes, ChangesEntry, CollectionRef, InvalidEntry, Kinto, Role, SignerCapability,
};
use crate::progress::Progress;
use crate::Context;

/// The monitor list of a run.
#[derive(Debug, Clone)]
pub struct MonitorList {
    /// The monitor collection itself (`monitor/changes`).
    pub monitor: CollectionRef,
    /// Usable entries, in the monitor's order.
    pub entries: Vec<ChangesEntry>,
    /// Entries that name no collection (not Kinto ids, fields missing): reported, never checked.
    pub invalid: Vec<InvalidEntry>,
}

impl MonitorList {
    pub async fn read(client: &Kinto, monitor: CollectionRef) -> Result<Self, ClientError> {
        let (entries, invalid) = read_changes(client, &monitor.bucket, &monitor.collection).await?;
        Ok(MonitorList {
            monitor,
            entries,
            invalid,
        })
    }
}

/// Is this monitored collection a preview? By the signer's resources when the server has them,
/// else by the bucket's name.
pub fn is_preview(signer: Option<&SignerCapability>, entry: &ChangesEntry) -> bool {
    match signer {
        Some(signer) => matches!(
            signer.resolve_published(&entry.bucket, &entry.collection),
            Some((_, Role::Preview))
        ),
        None => entry.bucket.ends_with("-preview"),
    }
}

/// Check every item, at most `in_progress` at a time (the client's own cap still bounds the
/// requests), ticking a progress bar labelled `label`; the results come in the items' order
/// whatever order the checks finish in.
pub async fn check_all<T, R, F, Fut>(
    ctx: &Context,
    label: &str,
    in_progress: usize,
    items: Vec<T>,
    check: F,
) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R>,
{
    let progress = Progress::new(ctx.progress, items.len() as u64, label);
    let (check, progress_ref) = (&check, &progress);
    let mut results: Vec<(usize, R)> = futures::stream::iter(items.into_iter().enumerate())
        .map(|(index, item)| async move {
            let result = check(item).await;
            progress_ref.inc();
            (index, result)
        })
        .buffer_unordered(in_progress.max(1))
        .collect()
        .await;
    progress.finish();
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn previews_are_told_by_the_signer_or_by_their_bucket() {
        let entry = |b: &str| ChangesEntry {
            bucket: b.into(),
            collection: "cfr".into(),
            last_modified: 1,
        };
        assert!(is_preview(None, &entry("main-preview")));
        assert!(!is_preview(None, &entry("main")));
        let signer: SignerCapability = serde_json::from_value(serde_json::json!({
            "resources": [{"source": {"bucket": "ws", "collection": null},
                           "preview": {"bucket": "staged", "collection": null},
                           "destination": {"bucket": "main-preview", "collection": null}}]
        }))
        .unwrap();
        // The signer's word wins over the name.
        assert!(is_preview(Some(&signer), &entry("staged")));
        assert!(!is_preview(Some(&signer), &entry("main-preview")));
    }

    #[tokio::test]
    async fn results_keep_the_items_order_and_the_cap_holds() {
        let in_flight = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let items: Vec<u64> = (0..12).collect();
        let ctx = Context::new(false, crate::client::testing::fast_client(0));
        let results = check_all(&ctx, "test", 3, items, |i| {
            let (in_flight, most) = (&in_flight, &most);
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Later items finish first.
                tokio::time::sleep(Duration::from_millis(12 - i)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                i * 10
            }
        })
        .await;
        assert_eq!(results, (0..12).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
