//! A loopback container credentials endpoint, as the ECS agent (169.254.170.2) and EKS Pod
//! Identity serve it, since neither can run here: `GET <path>` with the task's
//! `Authorization` token answers 200 with `{"AccessKeyId", "SecretAccessKey", "Token",
//! "Expiration", "RoleArn"}` (`Content-Type: application/json`); a wrong or missing token gets
//! 401 with a JSON message, another path 404. Answers can be scripted instead (a status, a body);
//! every request is recorded with its `Authorization` header.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::fixture::{Connection, Fixture, Request, Response};

pub const PATH: &str = "/v2/credentials/rsl-test-task";

/// A reply queued for the next request, instead of the normal answer.
#[derive(Debug, Clone)]
pub enum Scripted {
    Status(u16),
    Body(String),
}

struct State {
    token: Option<String>,
    answer: String,
    script: VecDeque<Scripted>,
}

#[derive(Clone)]
pub struct CredentialsEndpoint {
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` for this endpoint.
    pub url: String,
    pub fixture: Fixture,
    state: Arc<Mutex<State>>,
}

impl CredentialsEndpoint {
    /// Serve these credentials to holders of `token` (to anyone when `None`).
    pub async fn start(
        token: Option<&str>,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: &str,
    ) -> CredentialsEndpoint {
        let answer = json!({
            "AccessKeyId": access_key_id,
            "SecretAccessKey": secret_access_key,
            "Token": session_token,
            "Expiration": "2099-01-01T00:00:00Z",
            "RoleArn": "arn:aws:iam::123456789012:role/rsl-test-task",
        })
        .to_string();
        let state = Arc::new(Mutex::new(State {
            token: token.map(String::from),
            answer,
            script: VecDeque::new(),
        }));
        let server_state = state.clone();
        let fixture = Fixture::start("container credentials", Connection::Close, move |request| {
            let (status, body) = respond(&server_state, &request);
            async move { Response::json(status, body).into() }
        })
        .await;
        CredentialsEndpoint {
            url: format!("{}{PATH}", fixture.origin()),
            fixture,
            state,
        }
    }

    /// Answer the next requests with these replies, in order.
    pub fn script(&self, replies: Vec<Scripted>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Every request: its line and `Authorization` header.
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.fixture
            .requests()
            .iter()
            .map(|r| {
                let line = format!("{} {}", r.line(), r.version);
                (line, r.header("authorization").map(String::from))
            })
            .collect()
    }
}

/// `(status, body)` of the endpoint's answer to a request.
fn respond(state: &Mutex<State>, request: &Request) -> (u16, String) {
    let authorization = request.header("authorization").map(String::from);
    let mut s = state.lock().unwrap();
    match s.script.pop_front() {
        Some(Scripted::Status(status)) => (status, json!({"message": "scripted"}).to_string()),
        Some(Scripted::Body(body)) => (200, body),
        None if format!("{} {}", request.line(), request.version)
            != format!("GET {PATH} HTTP/1.1") =>
        {
            (404, json!({"message": "not found"}).to_string())
        }
        None if s.token.is_some() && authorization != s.token => (
            401,
            json!({"message": "invalid authorization token"}).to_string(),
        ),
        None => (200, s.answer.clone()),
    }
}
