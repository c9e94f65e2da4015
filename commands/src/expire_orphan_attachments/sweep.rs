//! The store's side: each listed object is judged against the referenced locations
//! ([`classify`]), and the `customTime` updates are sent in batches as the listing streams by
//! ([`Writer`]): nothing of the listing is held but a batch of keys and a sample for the report.
//!
//! The listing is read twice. The survey counts every class and sends the reprieves (they only
//! ever postpone a deletion); then, when the survey read the whole store, marking is asked
//! for (`DRY_RUN=0`) and the orphans are within `MAX_MARK_PERCENT` (or `FORCE`), the marking
//! pass lists the store again and marks the orphans it finds, at most as many as the survey
//! counted.

use std::collections::HashSet;

use futures::StreamExt;
use time::{Duration, OffsetDateTime};

use super::counts::{Sweep, Tally};
use super::Config;
use crate::progress::Progress;
use crate::store::{gcs::BATCH_SIZE, Store, StoredObject};
use crate::Context;

/// Keys kept per kind of change, for the report.
pub const SAMPLE: usize = 50;

/// What an object of the store is to this job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Under `bundles/`: the bundles job's, rebuilt regularly; never marked.
    Bundle,
    /// A "folder" placeholder (a name ending in `/`).
    Placeholder,
    /// Written since the run started: a record may reference it that was not read.
    Recent,
    /// Referenced, and not waiting for deletion.
    Referenced,
    /// Referenced, but marked: its `customTime` has passed, the lifecycle rule counts from it.
    Reprieve,
    /// Referenced by nothing and not marked yet.
    Orphan,
    /// Referenced by nothing and marked already: left as it is (a new mark would move its
    /// deletion date).
    AlreadyMarked,
}

/// Judge one object against the referenced locations, at the run's start.
pub fn classify(
    object: &StoredObject,
    referenced: &HashSet<String>,
    started: OffsetDateTime,
) -> Class {
    if object.key.starts_with("bundles/") {
        Class::Bundle
    } else if object.key.ends_with('/') {
        Class::Placeholder
    } else if referenced.contains(&object.key) {
        match object.custom_time {
            Some(at) if at <= started => Class::Reprieve,
            _ => Class::Referenced,
        }
    } else if object.updated >= started {
        Class::Recent
    } else if object.custom_time.is_some() {
        Class::AlreadyMarked
    } else {
        Class::Orphan
    }
}

/// Sends `customTime` updates in batches of [`BATCH_SIZE`], up to `batches` of them at once (the
/// run's in-flight cap), and counts what they did. At most `batches × BATCH_SIZE` keys wait.
struct Writer<'a> {
    store: &'a Store,
    at: OffsetDateTime,
    batches: usize,
    pending: Vec<(String, u64)>,
    done: Tally,
    failed: usize,
    first_errors: Vec<String>,
}

impl<'a> Writer<'a> {
    fn new(store: &'a Store, at: OffsetDateTime, batches: usize) -> Self {
        Writer {
            store,
            at,
            batches: batches.max(1),
            pending: Vec::new(),
            done: Tally::default(),
            failed: 0,
            first_errors: Vec::new(),
        }
    }

    async fn push(&mut self, object: &StoredObject) {
        self.pending.push((object.key.clone(), object.size));
        if self.pending.len() >= BATCH_SIZE * self.batches {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let keys: Vec<String> = batch.iter().map(|(key, _)| key.clone()).collect();
        let results = self.store.set_custom_time(&keys, self.at).await;
        for ((key, size), result) in batch.into_iter().zip(results) {
            match result {
                Ok(()) => self.done.add(size),
                Err(error) => {
                    self.failed += 1;
                    if self.first_errors.len() < 10 {
                        self.first_errors.push(format!("{key}: {error}"));
                    }
                }
            }
        }
    }

    /// Flush, and add what was done and what failed to the sweep.
    async fn finish(mut self, done: &mut Tally, sweep: &mut Sweep) {
        self.flush().await;
        *done = self.done;
        sweep.write_failures += self.failed;
        sweep.write_errors.extend(self.first_errors);
        sweep.write_errors.truncate(10);
    }
}

/// Survey the store, send the reprieves, then mark the orphans when the survey allows it.
pub async fn sweep(
    ctx: &Context,
    store: &Store,
    config: &Config,
    referenced: &HashSet<String>,
    started: OffsetDateTime,
) -> Sweep {
    let mut sweep = Sweep::new(started, config.reprieve_days);
    let progress = Progress::counter(ctx.progress, &format!("Listing {}", store.describe()));
    let mut reprieves = Writer::new(store, sweep.reprieve_until, ctx.http.parallel());
    let mut listing = store.list("");
    while let Some(item) = listing.next().await {
        let object = match item {
            Ok(object) => object,
            Err(error) => {
                sweep.survey_error = Some(error.to_string());
                break;
            }
        };
        progress.inc();
        let class = classify(&object, referenced, started);
        sweep.survey.add(class, object.size);
        match class {
            Class::Reprieve => {
                sample(&mut sweep.to_reprieve_sample, &object);
                if !config.dry_run {
                    reprieves.push(&object).await;
                }
            }
            Class::Orphan => sample(&mut sweep.to_mark_sample, &object),
            _ => {}
        }
    }
    progress.finish();
    let mut reprieved = Tally::default();
    reprieves.finish(&mut reprieved, &mut sweep).await;
    sweep.reprieved = reprieved;

    sweep.cap_exceeded = over_cap(&sweep, config.max_mark_percent);
    let may_mark = sweep.survey_error.is_none() && (!sweep.cap_exceeded || config.force);
    if config.dry_run || !may_mark || sweep.survey.to_mark.count == 0 {
        return sweep;
    }
    mark(ctx, store, referenced, started, &mut sweep).await;
    sweep
}

/// The marking pass: the orphans of a new listing, at most as many as the survey counted.
async fn mark(
    ctx: &Context,
    store: &Store,
    referenced: &HashSet<String>,
    started: OffsetDateTime,
    sweep: &mut Sweep,
) {
    let progress = Progress::counter(ctx.progress, &format!("Marking in {}", store.describe()));
    let mut marks = Writer::new(store, sweep.mark_time, ctx.http.parallel());
    let (mut queued, limit) = (0, sweep.survey.to_mark.count);
    let mut listing = store.list("");
    while let Some(item) = listing.next().await {
        let object = match item {
            Ok(object) => object,
            Err(error) => {
                sweep.marking_error = Some(error.to_string());
                break;
            }
        };
        progress.inc();
        if queued < limit && classify(&object, referenced, started) == Class::Orphan {
            queued += 1;
            marks.push(&object).await;
        }
    }
    progress.finish();
    let mut marked = Tally::default();
    marks.finish(&mut marked, sweep).await;
    sweep.marked = marked;
}

fn sample(keys: &mut Vec<String>, object: &StoredObject) {
    if keys.len() < SAMPLE {
        keys.push(object.key.clone());
    }
}

/// Would marking the survey's orphans mark more than `percent` % of the objects it judged?
fn over_cap(sweep: &Sweep, percent: u64) -> bool {
    let judged = sweep.survey.judged().count;
    sweep.survey.to_mark.count * 100 > percent * judged
}

/// `at` plus whole days, to the second.
pub fn days_after(at: OffsetDateTime, days: u64) -> OffsetDateTime {
    at + Duration::days(days as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn object(key: &str, updated: OffsetDateTime, custom: Option<OffsetDateTime>) -> StoredObject {
        StoredObject {
            key: key.into(),
            size: 1,
            updated,
            custom_time: custom,
        }
    }

    #[test]
    fn objects_are_judged_against_the_references_and_the_run_start() {
        let started = datetime!(2026-12-04 12:00 UTC);
        let (old, later) = (datetime!(2026-01-01 0:00 UTC), datetime!(2027-06-01 0:00 UTC));
        let referenced: HashSet<String> = ["ws/c/a.bin".to_string()].into();
        let judge = |key, updated, custom| classify(&object(key, updated, custom), &referenced, started);
        assert_eq!(judge("ws/c/a.bin", old, None), Class::Referenced);
        assert_eq!(judge("ws/c/a.bin", old, Some(old)), Class::Reprieve);
        // Reprieved earlier, still ahead: nothing to push.
        assert_eq!(judge("ws/c/a.bin", old, Some(later)), Class::Referenced);
        assert_eq!(judge("ws/c/b.bin", old, None), Class::Orphan);
        assert_eq!(judge("ws/c/b.bin", old, Some(old)), Class::AlreadyMarked);
        assert_eq!(judge("ws/c/b.bin", old, Some(later)), Class::AlreadyMarked);
        assert_eq!(judge("ws/c/b.bin", started, None), Class::Recent);
        assert_eq!(judge("bundles/ws--c.zip", old, None), Class::Bundle);
        assert_eq!(judge("bundles/ws--c.zip", old, Some(old)), Class::Bundle);
        assert_eq!(judge("ws/c/", old, None), Class::Placeholder);
    }

    #[test]
    fn the_cap_counts_the_orphans_against_the_objects_judged() {
        let mut sweep = Sweep::new(datetime!(2026-12-04 12:00 UTC), 365);
        for _ in 0..95 {
            sweep.survey.add(Class::Referenced, 1);
        }
        for _ in 0..1000 {
            sweep.survey.add(Class::Bundle, 1);
        }
        for _ in 0..5 {
            sweep.survey.add(Class::Orphan, 1);
        }
        assert!(!over_cap(&sweep, 5), "5 of 100 is not over 5 %");
        sweep.survey.add(Class::Orphan, 1);
        assert!(over_cap(&sweep, 5), "6 of 101 is");
        assert!(!over_cap(&sweep, 100));
        assert!(over_cap(&sweep, 0));
    }
}
