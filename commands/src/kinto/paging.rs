//! Kinto's list endpoints: every object of a list, page after page, following `Next-Page` (only
//! on the server's origin).

use reqwest::{Method, Url};
use serde_json::Value;

use super::Kinto;
use crate::client::{same_origin, ClientError, ClientErrorKind, Request, Response};

impl Kinto {
    /// All objects of a Kinto list endpoint, following `Next-Page` (only on the server's origin).
    pub async fn get_all(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Page {
            data: Vec<Value>,
        }
        let mut url = self.url_with_query(path, query);
        let mut all = Vec::new();
        let mut pages = 0usize;
        loop {
            let (response, page) = self
                .send_checked(
                    &Request::new(Method::GET, url.clone()),
                    Response::json::<Page>,
                )
                .await?;
            all.extend(page.data);
            pages += 1;
            let Some(next) = response.header("Next-Page") else {
                break;
            };
            let fail = |kind| ClientError::new(&Method::GET, &url, 1, kind);
            let next = Url::parse(next)
                .map_err(|_| fail(ClientErrorKind::Shape("Next-Page is not a URL".into())))?;
            if !same_origin(&next, &self.server) {
                return Err(fail(ClientErrorKind::Forbidden(
                    "a Next-Page link to another origin".into(),
                )));
            }
            if pages > 100_000 {
                return Err(fail(ClientErrorKind::Shape("too many pages".into())));
            }
            url = next;
        }
        Ok(all)
    }
}
