//! The object-store layer against real servers: the stack's GCS emulator (Google Cloud Storage's
//! JSON API) and moto (S3). The same operations, the same answers, on both clouds.

use std::num::NonZeroUsize;
use std::time::Duration;

use commands::client::{HttpClient, Limits};
use commands::store::{Location, Store, StoreSettings, StoredObject};
use commands::RawSettings;
use futures::{StreamExt, TryStreamExt};
use time::macros::datetime;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: the store tests need the stack (`make test`)")
    })
}

fn client() -> HttpClient {
    HttpClient::new(Limits {
        timeout: Duration::from_secs(10),
        retries: 2,
        retry_backoff: Duration::from_millis(10),
        parallel: NonZeroUsize::new(4).unwrap(),
    })
}

fn unique(label: &str) -> String {
    format!("{label}-{:08x}", fastrand::u32(..))
}

/// A fresh bucket on the emulator, and the store on `gs://<bucket>/<prefix>`.
async fn gcs_store(prefix: &str) -> Store {
    let endpoint = var("RSL_TEST_GCS_ENDPOINT");
    let bucket = unique("store");
    let created = reqwest::Client::new()
        .post(format!("{endpoint}/storage/v1/b?project=rsl-test"))
        .json(&serde_json::json!({ "name": bucket }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let url = format!("gs://{bucket}/{prefix}");
    let credentials = var("RSL_TEST_GCS_CREDENTIALS");
    let raw = RawSettings::from_pairs(&[
        ("STORAGE_URL", &url),
        ("STORAGE_ENDPOINT", &endpoint),
        ("GOOGLE_APPLICATION_CREDENTIALS", &credentials),
    ]);
    let settings = StoreSettings::from_settings(&raw).unwrap();
    Store::new(&settings, &client()).unwrap()
}

/// A fresh bucket on moto, and the store on `s3://<bucket>/<prefix>`.
async fn s3_store(prefix: &str) -> Store {
    let endpoint = var("RSL_TEST_S3_ENDPOINT");
    let raw = RawSettings::from_pairs(&[
        ("STORAGE_ENDPOINT", &endpoint),
        ("AWS_REGION", "eu-central-1"),
        ("AWS_ACCESS_KEY_ID", "AKIARSLTESTKEY0000001"),
        ("AWS_SECRET_ACCESS_KEY", "rsl-test-secret-store"),
    ]);
    let location = Location::parse(&format!("s3://{}/{prefix}", unique("store"))).unwrap();
    let settings = StoreSettings::at(&raw, location).unwrap();
    let store = Store::new(&settings, &client()).unwrap();
    let Store::S3(s3) = &store else {
        unreachable!()
    };
    s3.ensure_bucket().await.unwrap();
    store
}

async fn listed(store: &Store, prefix: &str) -> Vec<StoredObject> {
    store.list(prefix).try_collect().await.unwrap()
}

async fn objects_round_trip(store: Store) {
    store
        .put("a/one.bin", b"one".to_vec(), "application/octet-stream")
        .await
        .unwrap();
    store
        // (Not `application/json`: the GCS emulator parses such uploads, then fails on them.)
        .put("a/two words.json", b"{}".to_vec(), "text/plain")
        .await
        .unwrap();
    store
        .put("b/three", b"333".to_vec(), "text/plain")
        .await
        .unwrap();

    assert_eq!(store.get("a/two words.json").await.unwrap(), b"{}");
    let head = store
        .head("a/one.bin")
        .await
        .unwrap()
        .expect("the object is there");
    assert_eq!((head.key.as_str(), head.size), ("a/one.bin", 3));
    assert!(head.updated > datetime!(2026-01-01 0:00 UTC));
    assert_eq!(store.head("a/none").await.unwrap(), None);

    let keys: Vec<String> = listed(&store, "a/")
        .await
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["a/one.bin", "a/two words.json"]);
    assert_eq!(listed(&store, "").await.len(), 3);

    store.delete("a/one.bin").await.unwrap();
    store
        .delete("a/one.bin")
        .await
        .expect("deleting what is gone is not an error");
    assert_eq!(store.head("a/one.bin").await.unwrap(), None);
    assert_eq!(listed(&store, "").await.len(), 2);
}

#[tokio::test]
async fn gcs_objects_round_trip_under_a_prefix() {
    objects_round_trip(gcs_store("attachments").await).await;
}

#[tokio::test]
async fn s3_objects_round_trip_under_a_prefix() {
    objects_round_trip(s3_store("pages").await).await;
}

#[tokio::test]
async fn gcs_custom_time_is_set_in_batches_and_listed() {
    let store = gcs_store("p").await;
    let keys: Vec<String> = (0..150).map(|i| format!("o{i:03}")).collect();
    for key in &keys {
        store.put(key, b"-".to_vec(), "text/plain").await.unwrap();
    }
    let mut targets = keys.clone();
    targets.push("missing".into());
    let at = datetime!(2026-12-01 12:00 UTC);
    let results = store.set_custom_time(&targets, at).await;
    assert!(results[..150].iter().all(Result::is_ok), "{results:?}");
    let missing = results[150].as_ref().unwrap_err().to_string();
    assert!(
        missing.contains("missing") && missing.contains("404"),
        "{missing}"
    );
    let objects = listed(&store, "").await;
    assert_eq!(objects.len(), 150);
    assert!(
        objects.iter().all(|o| o.custom_time == Some(at)),
        "{:?}",
        objects[0]
    );
}

#[tokio::test]
async fn s3_has_no_custom_time() {
    let store = s3_store("").await;
    let results = store
        .set_custom_time(&["k".to_string()], datetime!(2026-12-01 0:00 UTC))
        .await;
    assert!(results[0]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("Google Cloud Storage"));
}

#[tokio::test]
async fn s3_listings_are_read_past_their_first_page() {
    // ListObjectsV2 answers at most 1,000 keys a page: 1,001 objects take two.
    let store = s3_store("many").await;
    let keys: Vec<String> = (0..1001).map(|i| format!("k{i:04}")).collect();
    futures::stream::iter(&keys)
        .map(|key| store.put(key, Vec::new(), "text/plain"))
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    let listed: Vec<String> = listed(&store, "")
        .await
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(listed, keys);
}
