//! `POST /batch`: sub-requests sent in one request ([`BatchRequest`]), and the answer to each
//! ([`BatchResponse`]), with the retries and deadline a batch needs.

use reqwest::Method;
use serde_json::Value;

use super::{kinto_error_message, Kinto};
use crate::client::{ClientError, ClientErrorKind, Request};

/// One sub-request of `POST /batch`: method, API path without the version prefix (e.g.
/// `/buckets/b/collections/c/records/r`), extra headers and an optional JSON body.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BatchRequest {
    pub method: String,
    pub path: String,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "headers_object"
    )]
    pub headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

fn headers_object<S: serde::Serializer>(
    headers: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(headers.len()))?;
    for (name, value) in headers {
        map.serialize_entry(name, value)?;
    }
    map.end()
}

impl BatchRequest {
    pub fn new(method: &str, path: impl Into<String>) -> Self {
        BatchRequest {
            method: method.to_string(),
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// The answer to one sub-request: its own status and body (a Kinto error body for 4xx/5xx).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct BatchResponse {
    pub status: u16,
    #[serde(default)]
    pub body: Value,
}

impl BatchResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `message` of a Kinto error body, bounded to one short line.
    pub fn error_message(&self) -> Option<String> {
        kinto_error_message(&self.body)
    }
}

impl Kinto {
    /// Send sub-requests in one `POST /batch` (at most the server's `batch_max_requests`) and
    /// return their responses, in order. Each sub-response carries its own status: the caller
    /// checks them. The batch is retried like any request (and when the answer does not hold
    /// one response per sub-request), so a lost answer means the server may see the same
    /// sub-requests twice: give them preconditions (`If-Match`, `If-None-Match: *`) that make a
    /// second application fail instead of applying again. The server works through the
    /// sub-requests one by one, so the batch as a whole has the timeout of each of them added up.
    ///
    /// Kinto runs the sub-requests in one transaction and aborts it at a sub-request answered 409
    /// (its batch view, `request.tm.abort()`): the sub-requests before it are rolled back although
    /// their own answers say 2xx, and those after it run in a new transaction. On PostgreSQL,
    /// writes in flight into one collection get that 409 ("please retry") now and then. So an
    /// answer holding a 409 is not a true account of what was applied: it is rejected, and the
    /// whole batch is sent again like any rejected answer (the preconditions make the sub-requests
    /// that were applied fail theirs); when retries run out, the caller must read what the server
    /// holds.
    pub async fn batch(
        &self,
        requests: &[BatchRequest],
    ) -> Result<Vec<BatchResponse>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            responses: Vec<BatchResponse>,
        }
        let request = Request::new(Method::POST, self.url("/batch"))
            .json(serde_json::json!({ "requests": requests }))
            .deadline(self.timeout().saturating_mul(requests.len().max(1) as u32));
        let (_, responses) = self
            .send_checked(&request, |response| {
                let answer: Answer = response.json()?;
                if answer.responses.len() != requests.len() {
                    return Err(ClientErrorKind::Shape(format!(
                        "{} responses to {} batched requests",
                        answer.responses.len(),
                        requests.len()
                    )));
                }
                if let Some((i, conflict)) = answer
                    .responses
                    .iter()
                    .enumerate()
                    .rev()
                    .find(|(_, r)| r.status == 409)
                {
                    return Err(ClientErrorKind::Shape(format!(
                        "sub-request {} of {} answered 409 ({}): Kinto rolled back the ones before it",
                        i + 1,
                        requests.len(),
                        conflict.error_message().unwrap_or_default()
                    )));
                }
                Ok(answer.responses)
            })
            .await?;
        Ok(responses)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::Url;

    use super::*;
    use crate::client::testing::{canned_server, limits, slow_canned_server};
    use crate::client::{HttpClient, Limits};

    fn fast_retry_client(server: &str) -> Kinto {
        let http = HttpClient::new(limits(2, Duration::from_millis(1)));
        Kinto::new(&http, &Url::parse(server).unwrap(), None)
    }

    /// [`two_requests`] sent to `url`, answered.
    async fn send_two(url: &str) -> Vec<BatchResponse> {
        fast_retry_client(url).batch(&two_requests()).await.unwrap()
    }

    fn two_requests() -> Vec<BatchRequest> {
        vec![
            BatchRequest::new("PUT", "/buckets/b/collections/c/records/r1")
                .header("If-None-Match", "*")
                .json(serde_json::json!({"data": {"id": "r1"}})),
            BatchRequest::new("DELETE", "/buckets/b/collections/c/records/r2")
                .header("If-Match", "\"12\""),
        ]
    }

    #[tokio::test]
    async fn batch_posts_kinto_sub_requests_and_returns_their_responses_in_order() {
        let answer = r#"{"responses": [
            {"status": 201, "path": "/v1/buckets/b/collections/c/records/r1", "body": {"data": {"id": "r1"}}},
            {"status": 412, "path": "/v1/buckets/b/collections/c/records/r2", "body": {"code": 412, "message": "Resource was modified meanwhile"}}
        ]}"#;
        let (url, received) = canned_server(vec![(200, answer.into())]).await;
        let responses = send_two(&url).await;
        assert_eq!(
            responses.iter().map(|r| r.status).collect::<Vec<_>>(),
            [201, 412]
        );
        assert!(responses[0].is_success() && !responses[1].is_success());
        assert_eq!(
            responses[1].error_message().as_deref(),
            Some("Resource was modified meanwhile")
        );
        let sent: Value = serde_json::from_str(&received.lock().unwrap()[0]).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"requests": [
                {"method": "PUT", "path": "/buckets/b/collections/c/records/r1",
                 "headers": {"If-None-Match": "*"}, "body": {"data": {"id": "r1"}}},
                {"method": "DELETE", "path": "/buckets/b/collections/c/records/r2",
                 "headers": {"If-Match": "\"12\""}},
            ]})
        );
    }

    #[tokio::test]
    async fn batch_answers_missing_responses_are_retried_then_an_error() {
        let short = r#"{"responses": [{"status": 201, "body": {}}]}"#.to_string();
        let full = r#"{"responses": [{"status": 201, "body": {}}, {"status": 200, "body": {}}]}"#
            .to_string();
        let (url, received) = canned_server(vec![(200, short.clone()), (200, full)]).await;
        let responses = fast_retry_client(&url)
            .batch(&two_requests())
            .await
            .unwrap();
        assert_eq!(responses.len(), 2);
        assert_eq!(received.lock().unwrap().len(), 2);

        let (url, _) = canned_server(vec![
            (200, short.clone()),
            (200, short.clone()),
            (200, short),
        ])
        .await;
        let err = fast_retry_client(&url)
            .batch(&two_requests())
            .await
            .unwrap_err();
        assert_eq!(err.attempts, 3);
        assert_eq!(err.code(), "UNEXPECTED_RESPONSE");
        assert!(
            err.to_string()
                .contains("1 responses to 2 batched requests"),
            "{err}"
        );
    }

    const PLEASE_RETRY: &str = r#"{"status": 409, "body": {"code": 409, "errno": 122, "error": "Conflict", "message": "Integrity constraint violated, please retry."}}"#;

    #[tokio::test]
    async fn an_answer_holding_a_409_is_not_trusted_and_the_whole_batch_is_sent_again() {
        // Kinto aborted its transaction at the 409: the 201 before it was rolled back.
        let rolled_back =
            format!(r#"{{"responses": [{{"status": 201, "body": {{}}}}, {PLEASE_RETRY}]}}"#);
        let applied =
            r#"{"responses": [{"status": 201, "body": {}}, {"status": 200, "body": {}}]}"#;
        let (url, received) = canned_server(vec![(200, rolled_back), (200, applied.into())]).await;
        let responses = send_two(&url).await;
        assert_eq!(
            responses.iter().map(|r| r.status).collect::<Vec<_>>(),
            [201, 200]
        );
        let received = received.lock().unwrap();
        assert_eq!(received.len(), 2);
        assert_eq!(received[0], received[1], "every sub-request is sent again");
    }

    #[tokio::test]
    async fn a_409_that_persists_fails_the_batch_so_that_the_caller_reads_the_server() {
        // Any 409 aborts Kinto's transaction, also one that does not ask for a retry.
        let exists = r#"{"status": 409, "body": {"code": 409, "errno": 122, "message": "Conflict of field id on record r1"}}"#;
        let answer = format!(r#"{{"responses": [{exists}, {{"status": 200, "body": {{}}}}]}}"#);
        let (url, received) = canned_server(vec![(200, answer); 3]).await;
        let err = fast_retry_client(&url)
            .batch(&two_requests())
            .await
            .unwrap_err();
        assert_eq!(received.lock().unwrap().len(), 3, "1 attempt + 2 retries");
        assert_eq!(
            err.to_string(),
            format!(
                "POST {url}/batch failed after 3 attempts: unexpected response: sub-request 1 of 2 \
                 answered 409 (Conflict of field id on record r1): Kinto rolled back the ones before it"
            )
        );
    }

    #[tokio::test]
    async fn batch_refused_as_a_whole_is_not_retried() {
        let refused = r#"{"code": 400, "message": "Number of requests is limited to 25"}"#;
        let (url, received) = canned_server(vec![(400, refused.into())]).await;
        let err = fast_retry_client(&url)
            .batch(&two_requests())
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert!(err.to_string().contains("limited to 25"), "{err}");
        assert_eq!(received.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_batch_has_the_timeout_of_its_sub_requests_added_up() {
        let requests = vec![BatchRequest::new("DELETE", "/buckets/b/collections/c/records/r"); 4];
        let answer = r#"{"responses": [{"status": 200}, {"status": 200}, {"status": 200}, {"status": 200}]}"#;
        // Answering after 0.7 s: past one request's timeout, within four's.
        let delay = Duration::from_millis(700);
        let (url, _) =
            slow_canned_server(vec![(200, answer.into()), (200, "{}".into())], delay).await;
        let http = HttpClient::new(Limits {
            timeout: Duration::from_millis(300),
            ..limits(0, Duration::from_millis(500))
        });
        let client = Kinto::new(&http, &Url::parse(&url).unwrap(), None);
        assert_eq!(client.batch(&requests).await.unwrap().len(), 4);
        let err = client.get_json::<Value>("/", &[]).await.unwrap_err();
        assert_eq!(err.kind, ClientErrorKind::Timeout);
    }
}
