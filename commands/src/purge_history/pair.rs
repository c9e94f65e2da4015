//! One (bucket, user id) pair's purge. Its entries older than the cutoff are counted first
//! (`GET /buckets/{b}/history?_before="<ms>"&user_id=<id>&_fields=id`, page after page: the
//! history list answers no `Total-Records`). Then the same filters are sent as
//! `DELETE` until nothing is left: Kinto deletes at most one page (its `paginate_by`, or its
//! storage's fetch limit) per request and says with `Next-Page` that more match, so the same
//! request is sent again (a `Next-Page` token is single-use, the filters are not) with
//! `_limit` = what was counted and not yet deleted, so that a run never deletes more entries
//! than it counted and reported. A last count checks that none is left.

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{ClientError, Request, Response};
use crate::kinto::Kinto;

/// A bucket and a user id whose entries in it are purged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub bucket: String,
    pub user_id: String,
}

/// What became of one pair.
#[derive(Debug, Clone)]
pub enum Purge {
    /// Dry run: this many entries would be deleted.
    WouldDelete { counted: u64 },
    /// Deleted, and none is left before the cutoff.
    Deleted { counted: u64, deleted: u64 },
    /// More entries than `MAX_DELETE`: left untouched (in a dry run, would be).
    OverCap { counted: u64, cap: u64 },
    /// The entries could not be counted: left untouched.
    CountFailed(ClientError),
    /// A `DELETE` failed after `deleted` entries were deleted.
    DeleteFailed {
        counted: u64,
        deleted: u64,
        error: ClientError,
    },
    /// After the deletes, the entries left could not be counted.
    VerifyFailed {
        counted: u64,
        deleted: u64,
        error: ClientError,
    },
    /// After the deletes, `remaining` entries older than the cutoff are still there.
    Left {
        counted: u64,
        deleted: u64,
        remaining: u64,
    },
}

impl Purge {
    /// What a dry run reports, from the count.
    pub fn dry_run(count: Result<u64, ClientError>, cap: Option<u64>) -> Purge {
        match count {
            Err(error) => Purge::CountFailed(error),
            Ok(counted) => match cap {
                Some(cap) if counted > cap => Purge::OverCap { counted, cap },
                _ => Purge::WouldDelete { counted },
            },
        }
    }
}

#[derive(Deserialize)]
struct Deleted {
    data: Vec<Value>,
}

impl Pair {
    fn path(&self) -> String {
        format!("/buckets/{}/history", self.bucket)
    }

    /// The filters: entries of this user, modified before the cutoff (Kinto takes `_before` as
    /// a quoted timestamp, as the successor sends it).
    fn filters(&self, before_ms: u64) -> [(&'static str, String); 2] {
        [
            ("_before", format!("\"{before_ms}\"")),
            ("user_id", self.user_id.clone()),
        ]
    }

    /// How many entries are older than the cutoff.
    pub async fn count(&self, client: &Kinto, before_ms: u64) -> Result<u64, ClientError> {
        let filters = self.filters(before_ms);
        let mut query: Vec<(&str, &str)> = filters.iter().map(|(k, v)| (*k, v.as_str())).collect();
        query.push(("_fields", "id"));
        client.count_all(&self.path(), &query).await
    }

    /// Delete what was counted, when it was counted and is within the cap, then check that
    /// nothing is left.
    pub async fn purge(
        &self,
        client: &Kinto,
        before_ms: u64,
        count: Result<u64, ClientError>,
        cap: Option<u64>,
    ) -> Purge {
        let counted = match Purge::dry_run(count, cap) {
            Purge::WouldDelete { counted } => counted,
            untouched => return untouched,
        };
        if counted == 0 {
            return Purge::Deleted {
                counted,
                deleted: 0,
            };
        }
        let (listed, failed) = self.delete(client, before_ms, counted).await;
        if let Err(error) = failed {
            return Purge::DeleteFailed {
                counted,
                deleted: listed,
                error,
            };
        }
        // The entries counted that are gone were deleted, even those of an answer that was lost
        // and whose request was sent again.
        let deleted = |remaining: u64| listed.max(counted.saturating_sub(remaining));
        match self.count(client, before_ms).await {
            Ok(0) => Purge::Deleted {
                counted,
                deleted: deleted(0),
            },
            Ok(remaining) => Purge::Left {
                counted,
                deleted: deleted(remaining),
                remaining,
            },
            Err(error) => Purge::VerifyFailed {
                counted,
                deleted: listed,
                error,
            },
        }
    }

    /// Send the `DELETE` until Kinto says nothing more matches (no `Next-Page`, or an empty
    /// page), or until what was counted is deleted. Returns how many entries the answers listed.
    async fn delete(
        &self,
        client: &Kinto,
        before_ms: u64,
        counted: u64,
    ) -> (u64, Result<(), ClientError>) {
        let filters = self.filters(before_ms);
        let mut deleted = 0u64;
        while deleted < counted {
            let limit = (counted - deleted).to_string();
            let mut query: Vec<(&str, &str)> =
                filters.iter().map(|(k, v)| (*k, v.as_str())).collect();
            query.push(("_limit", &limit));
            let url = client.url_with_query(&self.path(), &query);
            let request = Request::new(Method::DELETE, url);
            let answer = client
                .send_checked(&request, Response::json::<Deleted>)
                .await;
            let (response, page) = match answer {
                Ok(answer) => answer,
                Err(error) => return (deleted, Err(error)),
            };
            deleted += page.data.len() as u64;
            if page.data.is_empty() || response.header("Next-Page").is_none() {
                break;
            }
        }
        (deleted, Ok(()))
    }
}
