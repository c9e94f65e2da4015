//! A loopback container credentials endpoint, as the ECS agent (169.254.170.2) and EKS Pod
//! Identity serve it, since neither can run here: `GET <path>` with the task's
//! `Authorization` token answers 200 with `{"AccessKeyId", "SecretAccessKey", "Token",
//! "Expiration", "RoleArn"}` (`Content-Type: application/json`); a wrong or missing token gets
//! 401 with a JSON message, another path 404. Answers can be scripted instead (a status, a body);
//! every request is recorded with its `Authorization` header.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::net::TcpStream;

use super::fixture;

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
    /// (request line, Authorization header)
    requests: Vec<(String, Option<String>)>,
}

#[derive(Clone)]
pub struct CredentialsEndpoint {
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` for this endpoint.
    pub url: String,
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
            requests: Vec::new(),
        }));
        let port = fixture::serve(state.clone(), handle).await;
        CredentialsEndpoint {
            url: format!("http://127.0.0.1:{port}{PATH}"),
            state,
        }
    }

    /// Answer the next requests with these replies, in order.
    pub fn script(&self, replies: Vec<Scripted>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Every request: its line and `Authorization` header.
    pub fn requests(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().requests.clone()
    }
}

async fn handle(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let Some(head) = fixture::read_head(&mut socket).await else {
        return;
    };
    let line = head.lines().next().unwrap_or_default().to_string();
    let authorization = fixture::header(&head, "authorization");
    let (status, body) = {
        let mut s = state.lock().unwrap();
        s.requests.push((line.clone(), authorization.clone()));
        match s.script.pop_front() {
            Some(Scripted::Status(status)) => (status, json!({"message": "scripted"}).to_string()),
            Some(Scripted::Body(body)) => (200, body),
            None if line != format!("GET {PATH} HTTP/1.1") => {
                (404, json!({"message": "not found"}).to_string())
            }
            None if s.token.is_some() && authorization != s.token => (
                401,
                json!({"message": "invalid authorization token"}).to_string(),
            ),
            None => (200, s.answer.clone()),
        }
    };
    fixture::reply(&mut socket, status, "application/json", &body).await;
}
