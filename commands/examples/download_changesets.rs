//! The floor of `validate_signature` for `make bench`: read the monitor collection, then download
//! every changeset (`_expected=<entry timestamp>`) with the project's client at the same
//! `PARALLEL_REQUESTS`, and drop the bodies. No parsing, no verification: the time a plain
//! parallel download of the same data takes. Prints one JSON line: count, total and largest
//! body sizes.
//!
//! Settings come from the environment like the commands' (`SERVER`, `BUCKET`, `COLLECTION`,
//! `PARALLEL_REQUESTS`, `REQUESTS_TIMEOUT_SECONDS`, ...).

use commands::client::Request;
use commands::kinto::read_changes;
use commands::settings::shared::{AUTH, MONITOR_BUCKET, MONITOR_COLLECTION};
use commands::settings::{RawSettings, ServerSettings};
use commands::Context;
use futures::StreamExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut raw = RawSettings::new();
    for (name, value) in std::env::vars() {
        raw.set(&name, value);
    }
    let ctx = Context::from_settings(&raw, false)?;
    let server = ServerSettings::from_settings(&raw, &AUTH)?;
    let bucket = raw.kinto_id(&MONITOR_BUCKET)?;
    let collection = raw.kinto_id(&MONITOR_COLLECTION)?;
    let client = ctx.kinto(&server);
    let (entries, _) = read_changes(&client, &bucket, &collection).await?;
    let client = &client;
    let sizes: Vec<usize> = futures::stream::iter(entries)
        .map(|entry| async move {
            let url = client.changeset_url(&entry.path(), entry.last_modified);
            let response = client
                .send(&Request::new(reqwest::Method::GET, url))
                .await?;
            Ok::<usize, commands::client::ClientError>(response.body.len())
        })
        .buffer_unordered(ctx.http.parallel())
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    println!(
        "{}",
        serde_json::json!({
            "changesets": sizes.len(),
            "bytes": sizes.iter().sum::<usize>(),
            "largest_bytes": sizes.iter().max().copied().unwrap_or(0),
        })
    );
    Ok(())
}
