//! `{bid}--{cid}.zip`: a collection's attachments under their record ids and each record as
//! `{rid}.meta.json`. The files are downloaded within the run's in-flight cap and checked against
//! their records' `size` and `hash` ([`crate::attachment::fetch`]); a bundle is built only from
//! files that all verified.

use std::io::Write;

use futures::StreamExt;
use reqwest::Url;
use serde_json::Value;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

// The deflate backend the zip crate compresses with (miniz_oxide), chosen in Cargo.toml.
use flate2 as _;

use super::changesets::Published;
use super::report::FileProblem;
use crate::attachment::{self, file_url, Attachment, NO_BASE_URL};
use crate::client::HttpClient;

/// One file of a bundle: its record, its declared attachment and its URL.
#[derive(Debug, Clone)]
pub struct BundleFile {
    pub record: Value,
    pub attachment: Attachment,
    pub url: Url,
}

/// A record id that can name a file in a zip (Kinto ids always can; anything else is refused).
fn is_file_name(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && !id.contains(['/', '\\'])
        && !id.chars().any(char::is_control)
}

/// The files a collection's zip holds: its records with an attachment (tombstones left out).
/// `Err` names the first record that cannot be bundled.
pub fn files_of(published: &Published, base_url: Option<&str>) -> Result<Vec<BundleFile>, String> {
    let mut files = Vec::new();
    for record in published.records()? {
        if record.get("deleted").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let Some(parsed) = attachment::parse(&published.collection, &record) else {
            continue;
        };
        let attachment = parsed.map_err(|bad| format!("record {}: {}", bad.record, bad.reason))?;
        if !is_file_name(&attachment.record) {
            return Err(format!(
                "record id {:?} cannot name a file in a zip",
                attachment.record
            ));
        }
        let base_url = base_url.ok_or_else(|| NO_BASE_URL.to_string())?;
        let url = file_url(base_url, &attachment.location).ok_or_else(|| {
            format!(
                "record {}: {base_url:?} + {:?} is not an http(s) URL",
                attachment.record, attachment.location
            )
        })?;
        files.push(BundleFile {
            record,
            attachment,
            url,
        });
    }
    Ok(files)
}

/// Download every file (at most `parallel` at a time, within the client's cap) and check it:
/// the bodies in the files' order, or every file that did not verify.
pub async fn fetch_all(
    client: &HttpClient,
    files: &[BundleFile],
    parallel: usize,
) -> Result<Vec<Vec<u8>>, Vec<FileProblem>> {
    let mut fetched: Vec<(usize, Result<Vec<u8>, FileProblem>)> =
        futures::stream::iter(files.iter().enumerate())
            .map(|(i, file)| async move {
                let result = attachment::fetch(client, &file.attachment, &file.url)
                    .await
                    .map_err(|found| FileProblem {
                        attachment: file.attachment.clone(),
                        url: crate::secrets::display_url(&file.url),
                        found,
                    });
                (i, result)
            })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
    fetched.sort_by_key(|(i, _)| *i);
    let (mut bodies, mut problems) = (Vec::new(), Vec::new());
    for (_, result) in fetched {
        match result {
            Ok(body) => bodies.push(body),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Ok(bodies)
    } else {
        Err(problems)
    }
}

/// The zip: every `{rid}.meta.json` (the record as JSON), then every attachment under `{rid}`,
/// deflated. The attachments at deflate's fastest level: many are compressed already (filters,
/// fonts, images), where the default level spends most of a run's CPU to gain nothing.
pub fn build(files: &[BundleFile], bodies: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("building the zip failed: {e}");
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let fast = options.compression_level(Some(1));
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for file in files {
        let meta = serde_json::to_vec(&file.record).map_err(|e| fail(&e))?;
        zip.start_file(format!("{}.meta.json", file.attachment.record), options)
            .map_err(|e| fail(&e))?;
        zip.write_all(&meta).map_err(|e| fail(&e))?;
    }
    for (file, body) in files.iter().zip(bodies) {
        zip.start_file(file.attachment.record.as_str(), fast)
            .map_err(|e| fail(&e))?;
        zip.write_all(body).map_err(|e| fail(&e))?;
    }
    let cursor = zip.finish().map_err(|e| fail(&e))?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinto::CollectionRef;
    use serde_json::json;
    use std::io::Read;

    fn published(changes: Value) -> Published {
        let changeset = json!({"metadata": {}, "timestamp": 1, "changes": changes});
        Published {
            collection: CollectionRef::new("main", "c"),
            changeset: serde_json::from_value(changeset).unwrap(),
        }
    }

    fn declared(location: &str) -> Value {
        json!({"location": location, "hash": "ab".repeat(32), "size": 3})
    }

    #[test]
    fn a_zip_holds_the_records_with_an_attachment() {
        let p = published(json!([
            {"id": "a", "attachment": declared("main/c/a.bin")},
            {"id": "plain"},
            {"id": "gone", "deleted": true, "attachment": declared("x")},
        ]));
        let files = files_of(&p, Some("http://cdn/")).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].url.as_str(), "http://cdn/main/c/a.bin");
        let zip = build(&files, &[b"abc".to_vec()]).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let names: Vec<String> = archive.file_names().map(String::from).collect();
        assert_eq!(names, ["a.meta.json", "a"]);
        let mut body = String::new();
        archive.by_name("a").unwrap().read_to_string(&mut body).unwrap();
        assert_eq!(body, "abc");
        let mut meta = String::new();
        archive.by_name("a.meta.json").unwrap().read_to_string(&mut meta).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&meta).unwrap()["id"], "a");
    }

    #[test]
    fn records_that_cannot_be_bundled_are_named() {
        let no_hash = published(json!([{"id": "r1", "attachment": {"location": "x", "size": 1}}]));
        assert!(files_of(&no_hash, Some("http://cdn/")).unwrap_err().contains("r1"));
        let odd_id = published(json!([{"id": "../x", "attachment": declared("x")}]));
        assert!(files_of(&odd_id, Some("http://cdn/")).unwrap_err().contains("../x"));
        let any = published(json!([{"id": "r2", "attachment": declared("x")}]));
        assert_eq!(files_of(&any, None).unwrap_err(), NO_BASE_URL);
        // Without attachments, no base URL is needed.
        assert!(files_of(&published(json!([{"id": "p"}])), None).unwrap().is_empty());
    }
}
