//! Builders for test data: the records a collection is published with, and a monitored scratch
//! bucket (collections plus the monitor collection listing them).

use serde_json::{json, Value};

use super::{unique, Kinto};

/// `n` records `r0`, `r1`... with a number and a title.
pub fn records(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"id": format!("r{i}"), "n": i, "title": format!("record {i}")}))
        .collect()
}

/// A scratch bucket with collections `c0`, `c1`... of one record each, and a monitor collection
/// `mon` whose entry `e<i>` lists `c<i>` with its true records timestamp.
pub struct Monitored {
    pub bucket: String,
    /// `(collection, records timestamp)`, in creation order.
    pub collections: Vec<(String, u64)>,
}

impl Monitored {
    /// `(bucket, collections)`.
    pub fn split(self) -> (String, Vec<(String, u64)>) {
        (self.bucket, self.collections)
    }
}

/// A [`Monitored`] bucket of `n` collections that everyone may read.
pub async fn monitored(kinto: &Kinto, n: usize) -> Monitored {
    create_monitored(kinto, n, true).await
}

/// A [`Monitored`] bucket of `n` collections that only `kinto`'s user may read.
pub async fn monitored_private(kinto: &Kinto, n: usize) -> Monitored {
    create_monitored(kinto, n, false).await
}

async fn create_monitored(kinto: &Kinto, n: usize, public: bool) -> Monitored {
    let bid = unique("mon");
    if public {
        kinto.create_bucket(&bid).await;
    } else {
        kinto
            .ok(reqwest::Method::PUT, &format!("/buckets/{bid}"), None)
            .await;
    }
    kinto.create_collection(&bid, "mon").await;
    let mut collections = Vec::new();
    for i in 0..n {
        let cid = format!("c{i}");
        kinto.create_collection(&bid, &cid).await;
        kinto
            .put_record(&bid, &cid, json!({"id": "r1", "n": i}))
            .await;
        let ts = kinto.records_timestamp(&bid, &cid).await;
        let stored = kinto
            .put_record(
                &bid,
                "mon",
                json!({"id": format!("e{i}"), "bucket": bid, "collection": cid, "last_modified": ts}),
            )
            .await;
        assert_eq!(
            stored["last_modified"],
            json!(ts),
            "Kinto kept the entry's timestamp"
        );
        collections.push((cid, ts));
    }
    Monitored {
        bucket: bid,
        collections,
    }
}

/// Make entry `e<i>` of a [`Monitored`] bucket's monitor claim `last_modified` for `c<i>` (Kinto
/// keeps it when it is later than the monitor's newest entry).
pub async fn claim(kinto: &Kinto, bucket: &str, i: usize, last_modified: u64) {
    let entry = json!({"id": format!("e{i}"), "bucket": bucket, "collection": format!("c{i}"),
                       "last_modified": last_modified});
    kinto.put_record(bucket, "mon", entry).await;
}

/// The settings of a run over a [`Monitored`] bucket's monitor, with short retry waits.
pub fn monitor_env<'a>(server: &'a str, bucket: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SERVER", server),
        ("BUCKET", bucket),
        ("COLLECTION", "mon"),
        ("REQUESTS_RETRY_BACKOFF_SECONDS", "0.05"),
    ]
}
