//! Changesets: `GET {collection}/changeset?_expected={timestamp}`, a collection's metadata,
//! records and timestamp in one answer, as clients read them (`_expected` names the timestamp
//! the caller expects, so that caches serve that version or fetch it).

use reqwest::Url;

use super::Kinto;

impl Kinto {
    /// The changeset URL of the collection at `collection_path`
    /// (`/buckets/{bid}/collections/{cid}`), expecting the records timestamp `expected`.
    pub fn changeset_url(&self, collection_path: &str, expected: u64) -> Url {
        self.url_with_query(
            &format!("{collection_path}/changeset"),
            &[("_expected", &expected.to_string())],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::fast_client;

    #[test]
    fn a_changeset_url_names_the_expected_timestamp() {
        let kinto = Kinto::new(
            &fast_client(0),
            &Url::parse("http://h:1/v1/").unwrap(),
            None,
        );
        assert_eq!(
            kinto
                .changeset_url("/buckets/main/collections/cfr", 1700)
                .as_str(),
            "http://h:1/v1/buckets/main/collections/cfr/changeset?_expected=1700"
        );
    }
}
