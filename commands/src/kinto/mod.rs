//! The Kinto protocol, over the run's [`HttpClient`]: a [`Kinto`] view of one server (its API
//! root and credentials), its server info and signer capability ([`server_info`], [`signer`]),
//! the monitor list ([`monitor`]), changesets ([`changeset`]), list paging ([`paging`]), `POST /batch` ([`batch`]), error
//! bodies ([`error`]) and the signer workflow's statuses ([`status`]).

pub mod batch;
pub mod changeset;
pub mod error;
pub mod monitor;
pub mod paging;
pub mod server_info;
pub mod signer;
pub mod status;

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{ClientError, ClientErrorKind, HttpClient, Request, Response};
use crate::secrets::Auth;

pub use batch::{BatchRequest, BatchResponse};
pub use error::kinto_error_message;
pub use monitor::{
    cache_bust, changeset_timestamp, ever_held_records, parse_entry, read_changes, ChangesEntry,
    InvalidEntry,
};
pub use server_info::{ServerInfo, NO_SIGNER_MESSAGE};
pub use signer::{
    ResourceRef, Role, SignedCollection, SignerCapability, SignerResource, SIGNING_DEADLINE,
};
pub use status::SignerStatus;

/// A view of the run's client on one Kinto server: requests go to its API root, and its
/// credentials go to its origin only. It is an [`HttpClient`] (through `Deref`) for requests the
/// protocol methods do not cover.
#[derive(Debug, Clone)]
pub struct Kinto {
    http: HttpClient,
    server: Url,
}

impl std::ops::Deref for Kinto {
    type Target = HttpClient;
    fn deref(&self) -> &HttpClient {
        &self.http
    }
}

impl Kinto {
    /// The server whose API root is `server` (e.g. `https://h/v1/`), reached with `auth`.
    pub fn new(http: &HttpClient, server: &Url, auth: Option<&Auth>) -> Self {
        Kinto {
            http: http.with_auth(server, auth),
            server: server.clone(),
        }
    }

    /// The same server with other credentials (e.g. a backport destination's).
    pub fn with_auth(&self, auth: Option<&Auth>) -> Self {
        Kinto::new(&self.http, &self.server, auth)
    }

    /// The server's API root.
    pub fn server(&self) -> &Url {
        &self.server
    }

    /// The URL of an API path such as `/buckets/main/collections/cid/records` (segments are
    /// joined as given: callers pass validated ids).
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.server.clone();
        let joined = format!(
            "{}{}",
            self.server.path().trim_end_matches('/'),
            if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            }
        );
        url.set_path(&joined);
        url
    }

    /// [`Self::url`] with query parameters (none: no `?`).
    pub fn url_with_query(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// GET a JSON document from an API path (with query parameters).
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(T, Response), ClientError> {
        let url = self.url_with_query(path, query);
        let (response, value) = self
            .send_checked(&Request::new(Method::GET, url), Response::json)
            .await?;
        Ok((value, response))
    }
}

/// The check of an answer that holds one Kinto object, `{"data": {...}}` (a collection read or
/// written), for [`HttpClient::send_checked`]: any other 2xx body (not JSON, another shape) is
/// not taken for a success: it is retried, then an error naming the URL.
pub fn object_data(response: &Response) -> Result<serde_json::Map<String, Value>, ClientErrorKind> {
    #[derive(Deserialize)]
    struct Body {
        data: serde_json::Map<String, Value>,
    }
    response.json::<Body>().map(|body| body.data)
}

/// Helper for commands that need a shape error on a URL.
pub fn shape_error(client: &Kinto, path: &str, message: impl Into<String>) -> ClientError {
    ClientError::new(
        &Method::GET,
        &client.url(path),
        1,
        ClientErrorKind::Shape(message.into()),
    )
}

/// A bucket and collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CollectionRef {
    pub bucket: String,
    pub collection: String,
}

impl CollectionRef {
    pub fn new(bucket: &str, collection: &str) -> Self {
        CollectionRef {
            bucket: bucket.to_string(),
            collection: collection.to_string(),
        }
    }

    /// `/buckets/{bucket}/collections/{collection}`
    pub fn path(&self) -> String {
        format!("/buckets/{}/collections/{}", self.bucket, self.collection)
    }
}

impl std::fmt::Display for CollectionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.bucket, self.collection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::fast_client;

    #[test]
    fn urls_join_with_or_without_trailing_slash() {
        for server in ["http://h:1/v1", "http://h:1/v1/"] {
            let c = Kinto::new(&fast_client(0), &Url::parse(server).unwrap(), None);
            assert_eq!(
                c.url("/buckets/a/collections/b").as_str(),
                "http://h:1/v1/buckets/a/collections/b"
            );
            assert_eq!(c.url("/").as_str(), "http://h:1/v1/");
        }
    }

    #[test]
    fn an_object_answer_needs_its_data_object() {
        let answer = |body: &str| Response {
            url: Url::parse("http://h/v1/buckets/b/collections/c").unwrap(),
            status: reqwest::StatusCode::OK,
            headers: reqwest::header::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        };
        let data = object_data(&answer(r#"{"data": {"id": "c", "status": "to-review"}}"#)).unwrap();
        assert_eq!(data["status"], "to-review");
        for other in ["<html>502</html>", r#"{"data": 42}"#, "{}", ""] {
            assert!(
                matches!(object_data(&answer(other)), Err(ClientErrorKind::Shape(_))),
                "{other}"
            );
        }
    }
}
