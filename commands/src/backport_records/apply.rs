//! Writing a plan to the destination: one sub-request per change, `POST /batch` chunks of the
//! server's `batch_max_requests`, one chunk at a time, and every sub-response checked.
//!
//! One at a time because Kinto writes into one collection one transaction at a time. On
//! PostgreSQL its `bump_timestamp` trigger gives each record the collection's latest *committed*
//! timestamp + 1 ms (or the clock), under a unique index: two batches in flight into the same
//! collection pick the same timestamps, the second waits for the first to commit and fails with
//! 409 errno 122, and the client sends it again. Measured (`make bench-backport`, PostgreSQL,
//! 4 granian workers): 4 chunks in flight ran at 0.82× of one at a time, and 2 runs of 3 failed
//! after their retries; on the memory backend, one global lock, 0.79×.
//!
//! Each write carries a precondition: creations `If-None-Match: *`, updates and deletions
//! `If-Match` on the destination record's timestamp as read. A record edited by someone else
//! meanwhile makes the write fail (412) instead of overwriting the edit. The same preconditions
//! make a chunk safe to send twice (the client retries a batch whose answer was lost): a write
//! that already happened fails its precondition the second time, and is recognised as applied
//! because the destination record holds the wanted content (or, for a deletion, is gone).

use serde_json::{Map, Value};

use super::diff::{same_content, Change, Kind};
use crate::client::ClientError;
use crate::kinto::{BatchRequest, BatchResponse, Kinto};
use crate::kinto::CollectionRef;
use crate::progress::Progress;

/// What became of one change.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The server applied it (201 or 200).
    Applied { status: u16 },
    /// Its precondition failed because the destination already holds what it would write: an
    /// earlier attempt of the same chunk applied it (or someone wrote the same content).
    AlreadyApplied { status: u16 },
    /// The destination record changed since it was read: left as it is, not overwritten.
    Conflict {
        status: u16,
        existing: Option<Map<String, Value>>,
    },
    /// The server refused the sub-request (no permission, invalid record, ...).
    Refused { status: u16, message: String },
    /// The whole chunk failed after retries: the change may or may not have been applied (the
    /// destination could not be read afterwards to tell).
    BatchFailed(ClientError),
    /// Its chunk failed after retries, but the destination read afterwards holds what it wanted:
    /// an attempt whose answer was lost applied it.
    AppliedUnheard(ClientError),
    /// Its chunk failed after retries, and the destination read afterwards does not hold it.
    NotApplied(ClientError),
    /// Not sent: an earlier chunk failed as a whole, so the run stopped writing.
    NotSent,
    /// `DRY_RUN`: nothing was sent.
    DryRun,
}

impl Outcome {
    /// The destination holds what this change wanted.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            Outcome::Applied { .. } | Outcome::AlreadyApplied { .. } | Outcome::AppliedUnheard(_)
        )
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Applied { status }
            | Outcome::AlreadyApplied { status }
            | Outcome::Conflict { status, .. }
            | Outcome::Refused { status, .. } => Some(*status),
            Outcome::BatchFailed(_)
            | Outcome::AppliedUnheard(_)
            | Outcome::NotApplied(_)
            | Outcome::NotSent
            | Outcome::DryRun => None,
        }
    }

    /// A stable code for failures.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Outcome::Applied { .. }
            | Outcome::AlreadyApplied { .. }
            | Outcome::AppliedUnheard(_)
            | Outcome::DryRun => None,
            Outcome::Conflict { .. } => Some("CONCURRENT_EDIT"),
            Outcome::Refused {
                status: 401 | 403, ..
            } => Some("FORBIDDEN"),
            Outcome::Refused { status, .. } if *status >= 500 || *status == 429 => {
                Some("SERVER_ERROR")
            }
            Outcome::Refused { .. } => Some("SUBREQUEST_FAILED"),
            Outcome::BatchFailed(e) | Outcome::NotApplied(e) => Some(e.code()),
            Outcome::NotSent => Some("NOT_SENT"),
        }
    }

    /// A failure of the server or of reaching it (exit 3), rather than a refusal (exit 1).
    pub fn is_runtime_failure(&self) -> bool {
        match self {
            Outcome::BatchFailed(e) | Outcome::NotApplied(e) => !e.is_client_status(),
            Outcome::Refused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The API path of a destination record.
pub fn record_path(destination: &CollectionRef, id: &str) -> String {
    format!("{}/records/{id}", destination.path())
}

/// The sub-request of a change, with its precondition.
pub fn sub_request(destination: &CollectionRef, change: &Change) -> BatchRequest {
    let request = BatchRequest::new(change.method(), record_path(destination, &change.id));
    let request = match change.read_timestamp {
        Some(ts) => request.header("If-Match", format!("\"{ts}\"")),
        None => request.header("If-None-Match", "*"),
    };
    match &change.content {
        Some(content) => request.json(serde_json::json!({ "data": content })),
        None => request,
    }
}

/// Read a sub-response: success, a write that an earlier attempt already made, a concurrent
/// edit, or a refusal.
pub fn outcome(change: &Change, response: &BatchResponse) -> Outcome {
    let status = response.status;
    if response.is_success() {
        return Outcome::Applied { status };
    }
    let existing = response
        .body
        .pointer("/details/existing")
        .and_then(Value::as_object)
        .filter(|e| !e.is_empty())
        .cloned();
    match (change.kind, status) {
        (Kind::Create | Kind::Update, 412) => {
            let wanted = change.content.as_ref();
            match (&existing, wanted) {
                (Some(e), Some(w)) if same_content(e, w) => Outcome::AlreadyApplied { status },
                _ => Outcome::Conflict { status, existing },
            }
        }
        // Already deleted, by an earlier attempt or by someone else: the record is gone either way.
        (Kind::Delete, 404) => Outcome::AlreadyApplied { status },
        (Kind::Delete, 412) => Outcome::Conflict { status, existing },
        _ => Outcome::Refused {
            status,
            message: response
                .error_message()
                .unwrap_or_else(|| format!("HTTP {status}")),
        },
    }
}

/// After chunks failed as a whole: tell, from the destination's records as read afterwards (by
/// id), which of their changes were applied (by an attempt whose answer was lost) and which were
/// not. Other outcomes are kept.
pub fn confirm(outcomes: Vec<Outcome>, changes: &[Change], current: &[Value]) -> Vec<Outcome> {
    let by_id: std::collections::HashMap<&str, &Map<String, Value>> = current
        .iter()
        .filter_map(|r| Some((r.get("id")?.as_str()?, r.as_object()?)))
        .collect();
    outcomes
        .into_iter()
        .zip(changes)
        .map(|(outcome, change)| match outcome {
            Outcome::BatchFailed(error) => {
                let holds = match (&change.content, by_id.get(change.id.as_str())) {
                    (Some(wanted), Some(record)) => same_content(record, wanted),
                    (None, None) => true,
                    _ => false,
                };
                if holds {
                    Outcome::AppliedUnheard(error)
                } else {
                    Outcome::NotApplied(error)
                }
            }
            other => other,
        })
        .collect()
}

/// Send the changes in chunks of `chunk_size`, one chunk at a time. Outcomes come back in the
/// changes' order. When a chunk fails as a whole, no further chunk is sent.
pub async fn apply(
    client: &Kinto,
    destination: &CollectionRef,
    changes: &[Change],
    chunk_size: usize,
    progress: &Progress,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(changes.len());
    let mut chunks = changes.chunks(chunk_size.max(1));
    for chunk in chunks.by_ref() {
        let requests: Vec<BatchRequest> =
            chunk.iter().map(|c| sub_request(destination, c)).collect();
        let answer = client.batch(&requests).await;
        for _ in chunk {
            progress.inc();
        }
        match answer {
            Ok(responses) => outcomes.extend(
                chunk
                    .iter()
                    .zip(&responses)
                    .map(|(change, response)| outcome(change, response)),
            ),
            Err(error) => {
                outcomes.extend(chunk.iter().map(|_| Outcome::BatchFailed(error.clone())));
                break;
            }
        }
    }
    outcomes.extend(chunks.flatten().map(|_| Outcome::NotSent));
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(kind: Kind, content: Option<Value>, read_timestamp: Option<u64>) -> Change {
        Change {
            kind,
            id: "r1".into(),
            content: content.map(|c| c.as_object().unwrap().clone()),
            read_timestamp,
        }
    }

    fn response(status: u16, body: Value) -> BatchResponse {
        BatchResponse { status, body }
    }

    fn precondition_failed(existing: Value) -> BatchResponse {
        response(
            412,
            json!({"code": 412, "errno": 114, "message": "Resource was modified meanwhile",
                   "details": {"existing": existing}}),
        )
    }

    #[test]
    fn failed_batches_are_told_applied_or_not_by_the_destination_read_afterwards() {
        let error = ClientError {
            method: "POST".into(),
            url: "http://h/v1/batch".into(),
            attempts: 3,
            kind: crate::client::ClientErrorKind::Timeout,
        };
        let mut changes = vec![
            change(Kind::Create, Some(json!({"id": "r1", "v": 1})), None),
            change(Kind::Update, Some(json!({"id": "r2", "v": 2})), Some(5)),
            change(Kind::Delete, None, Some(6)),
            change(Kind::Create, Some(json!({"id": "r4", "v": 4})), None),
            change(Kind::Delete, None, Some(7)),
        ];
        for (c, id) in changes.iter_mut().zip(["r1", "r2", "r3", "r4", "r5"]) {
            c.id = id.into();
        }
        // r1 created, r2 still old, r3 deleted, r4 not created, r5 not deleted.
        let current = vec![
            json!({"id": "r1", "v": 1, "last_modified": 10}),
            json!({"id": "r2", "v": 1, "last_modified": 5}),
            json!({"id": "r5", "last_modified": 7}),
        ];
        let mut outcomes = vec![Outcome::BatchFailed(error.clone()); 5];
        outcomes[4] = Outcome::NotSent;
        outcomes.push(Outcome::Applied { status: 201 });
        let told = confirm(outcomes, &changes, &current);
        let names: Vec<&str> = told
            .iter()
            .map(|o| match o {
                Outcome::AppliedUnheard(_) => "applied",
                Outcome::NotApplied(_) => "not applied",
                Outcome::NotSent => "not sent",
                _ => "other",
            })
            .collect();
        assert_eq!(
            names,
            [
                "applied",
                "not applied",
                "applied",
                "not applied",
                "not sent"
            ]
        );
        assert!(told[0].is_done() && !told[1].is_done());
        assert_eq!(told[1].code(), Some("TIMEOUT"));
    }

    #[test]
    fn sub_requests_carry_preconditions_and_the_content() {
        let dest = CollectionRef::new("main-workspace", "old");
        let create = sub_request(
            &dest,
            &change(Kind::Create, Some(json!({"id": "r1", "v": 1})), None),
        );
        assert_eq!(create.method, "PUT");
        assert_eq!(
            create.path,
            "/buckets/main-workspace/collections/old/records/r1"
        );
        assert_eq!(
            create.headers,
            [("If-None-Match".to_string(), "*".to_string())]
        );
        assert_eq!(create.body, Some(json!({"data": {"id": "r1", "v": 1}})));
        let update = sub_request(
            &dest,
            &change(Kind::Update, Some(json!({"id": "r1"})), Some(42)),
        );
        assert_eq!(
            update.headers,
            [("If-Match".to_string(), "\"42\"".to_string())]
        );
        let delete = sub_request(&dest, &change(Kind::Delete, None, Some(43)));
        assert_eq!(delete.method, "DELETE");
        assert_eq!(
            delete.headers,
            [("If-Match".to_string(), "\"43\"".to_string())]
        );
        assert_eq!(delete.body, None);
    }

    #[test]
    fn a_repeated_write_is_recognised_by_the_content_it_left() {
        let wanted = json!({"id": "r1", "v": 2});
        for kind in [Kind::Create, Kind::Update] {
            let c = change(
                kind,
                Some(wanted.clone()),
                (kind == Kind::Update).then_some(5),
            );
            let same = precondition_failed(json!({"id": "r1", "v": 2, "last_modified": 9}));
            assert!(matches!(
                outcome(&c, &same),
                Outcome::AlreadyApplied { status: 412 }
            ));
            let other = precondition_failed(json!({"id": "r1", "v": 3, "last_modified": 9}));
            assert!(matches!(
                outcome(&c, &other),
                Outcome::Conflict {
                    status: 412,
                    existing: Some(_)
                }
            ));
        }
        // An update whose record was deleted meanwhile: 412 without an existing record.
        let c = change(Kind::Update, Some(wanted), Some(5));
        let gone = response(412, json!({"code": 412, "details": {}}));
        assert!(matches!(
            outcome(&c, &gone),
            Outcome::Conflict { existing: None, .. }
        ));
    }

    #[test]
    fn deletions_of_missing_records_are_done_and_of_edited_ones_conflicts() {
        let c = change(Kind::Delete, None, Some(5));
        assert!(outcome(&c, &response(404, json!({}))).is_done());
        let edited = precondition_failed(json!({"id": "r1", "v": 7, "last_modified": 9}));
        assert_eq!(outcome(&c, &edited).code(), Some("CONCURRENT_EDIT"));
        assert!(outcome(&c, &response(200, json!({"data": {"deleted": true}}))).is_done());
    }

    #[test]
    fn refusals_keep_the_server_message_and_a_code() {
        let c = change(Kind::Create, Some(json!({"id": "r1"})), None);
        let forbidden = response(403, json!({"code": 403, "message": "Unauthorized"}));
        let o = outcome(&c, &forbidden);
        assert_eq!(o.code(), Some("FORBIDDEN"));
        assert!(!o.is_runtime_failure());
        assert!(matches!(&o, Outcome::Refused { message, .. } if message == "Unauthorized"));
        let broken = outcome(&c, &response(503, json!({})));
        assert_eq!(broken.code(), Some("SERVER_ERROR"));
        assert!(broken.is_runtime_failure());
        let created = outcome(&c, &response(201, json!({})));
        assert!(created.is_done() && created.code().is_none());
    }
}
