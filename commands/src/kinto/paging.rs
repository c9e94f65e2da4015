//! Kinto's list endpoints: every object of a list, or how many there are, page after page,
//! following `Next-Page` (only on the server's origin).

use reqwest::{Method, Url};
use serde_json::Value;

use super::Kinto;
use crate::client::{same_origin, ClientError, ClientErrorKind, Request, Response};

/// One page of a list.
#[derive(serde::Deserialize)]
struct Page {
    data: Vec<Value>,
}

/// At most this many pages are followed.
const MAX_PAGES: usize = 100_000;

impl Kinto {
    /// All objects of a Kinto list endpoint, following `Next-Page` (only on the server's origin).
    pub async fn get_all(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, ClientError> {
        let mut all = Vec::new();
        self.each_page(path, query, |page| all.extend(page)).await?;
        Ok(all)
    }

    /// How many objects a Kinto list endpoint holds, counted page after page without keeping
    /// them (for lists with no `Total-Records`, such as history; pass `_fields=id` to keep pages
    /// small).
    pub async fn count_all(&self, path: &str, query: &[(&str, &str)]) -> Result<u64, ClientError> {
        let mut count = 0u64;
        self.each_page(path, query, |page| count += page.len() as u64)
            .await?;
        Ok(count)
    }

    async fn each_page(
        &self,
        path: &str,
        query: &[(&str, &str)],
        mut take: impl FnMut(Vec<Value>),
    ) -> Result<(), ClientError> {
        let mut url = self.url_with_query(path, query);
        let mut pages = 0usize;
        loop {
            let (response, page) = self
                .send_checked(
                    &Request::new(Method::GET, url.clone()),
                    Response::json::<Page>,
                )
                .await?;
            take(page.data);
            pages += 1;
            let Some(next) = response.header("Next-Page") else {
                return Ok(());
            };
            let fail = |kind| ClientError::new(&Method::GET, &url, 1, kind);
            let next = Url::parse(next)
                .map_err(|_| fail(ClientErrorKind::Shape("Next-Page is not a URL".into())))?;
            if !same_origin(&next, &self.server) {
                return Err(fail(ClientErrorKind::Forbidden(
                    "a Next-Page link to another origin".into(),
                )));
            }
            if pages > MAX_PAGES {
                return Err(fail(ClientErrorKind::Shape("too many pages".into())));
            }
            url = next;
        }
    }
}
