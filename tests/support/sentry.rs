//! A loopback Sentry ingest endpoint: accepts envelope POSTs at `/api/<project>/envelope/` like
//! sentry.io does, answers 200 with `{}`, and keeps every body for the test to read.

use super::fixture::{Connection, Fixture, RequestLog, Response};

#[derive(Clone)]
pub struct SentryListener {
    /// A DSN pointing at this listener.
    pub dsn: String,
    pub fixture: Fixture,
}

impl SentryListener {
    pub async fn start() -> SentryListener {
        let fixture = Fixture::start("Sentry", Connection::Close, |_| async {
            Response::json(200, "{}").into()
        })
        .await;
        SentryListener {
            dsn: format!("http://publickey@{}/1", fixture.address()),
            fixture,
        }
    }

    /// Bodies of the envelopes received, in order.
    pub fn envelopes(&self) -> Vec<String> {
        envelopes(&self.fixture.log())
    }

    /// Envelopes that hold an event (not sessions or client reports).
    pub fn events(&self) -> Vec<String> {
        events(&self.fixture.log())
    }

    /// Panics if one of `secrets` shows in an envelope (the counterpart of `Run::assert_hides`).
    pub fn assert_hides(&self, secrets: &[&str]) {
        for envelope in self.envelopes() {
            for secret in secrets {
                assert!(
                    !envelope.contains(secret),
                    "{secret} sent to Sentry: {envelope}"
                );
            }
        }
    }

    /// The test expects no envelope at all.
    pub fn expect_no_hits(&self) {
        self.fixture.expect_no_hits();
    }
}

/// Bodies of the envelopes in a listener's request log, in order.
pub fn envelopes(log: &RequestLog) -> Vec<String> {
    log.all()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

/// The envelopes of a listener's request log that hold an event.
pub fn events(log: &RequestLog) -> Vec<String> {
    envelopes(log)
        .into_iter()
        .filter(|b| b.contains("\"type\":\"event\""))
        .collect()
}
