//! A loopback Sentry ingest endpoint: accepts envelope POSTs at `/api/<project>/envelope/` like
//! sentry.io does, answers 200 with `{}`, and keeps every body for the test to read, raw or parsed
//! as Sentry's ingest reads an envelope ([`Envelope::parse`]).

use serde_json::Value;

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

    /// The payloads of the `check_in` items received (Sentry Crons), in order. Every envelope
    /// must have been POSTed to the DSN's envelope endpoint and parse as an envelope.
    pub fn check_ins(&self) -> Vec<Value> {
        check_ins(&self.fixture.log())
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

/// One envelope as Sentry's ingest reads it: a header line (a JSON object), then items, each a
/// header line (a JSON object with the item's `type` and, usually, its payload's `length` in
/// bytes) followed by its payload: `length` bytes, or without a length, up to the next newline.
#[derive(Debug)]
pub struct Envelope {
    pub header: Value,
    pub items: Vec<Item>,
}

#[derive(Debug)]
pub struct Item {
    pub header: Value,
    pub payload: Vec<u8>,
}

impl Item {
    pub fn item_type(&self) -> &str {
        self.header["type"]
            .as_str()
            .unwrap_or_else(|| panic!("an item header without a type: {}", self.header))
    }

    /// The payload as JSON (every item type but attachments).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "a {} item's payload is not JSON ({e}): {}",
                self.item_type(),
                String::from_utf8_lossy(&self.payload)
            )
        })
    }
}

impl Envelope {
    /// Parse an envelope body; panics, naming what is wrong, on anything malformed.
    pub fn parse(body: &[u8]) -> Envelope {
        let (header, mut rest) = json_line(body, "envelope header");
        assert!(header.is_object(), "the envelope header is not an object");
        let mut items = Vec::new();
        while !rest.is_empty() {
            let (header, after) = json_line(rest, "item header");
            let payload = match header.get("length") {
                Some(length) => {
                    let length = length.as_u64().expect("an item length is a number") as usize;
                    assert!(
                        after.len() >= length,
                        "item {header} announces {length} bytes, {} left",
                        after.len()
                    );
                    let (payload, tail) = after.split_at(length);
                    rest = tail.strip_prefix(b"\n").unwrap_or(tail);
                    payload.to_vec()
                }
                None => {
                    let end = after
                        .iter()
                        .position(|&b| b == b'\n')
                        .unwrap_or(after.len());
                    rest = after.get(end + 1..).unwrap_or_default();
                    after[..end].to_vec()
                }
            };
            items.push(Item { header, payload });
        }
        Envelope { header, items }
    }
}

/// The JSON value on the first line of `bytes`, and what follows that line.
fn json_line<'a>(bytes: &'a [u8], what: &str) -> (Value, &'a [u8]) {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let value = serde_json::from_slice(&bytes[..end]).unwrap_or_else(|e| {
        panic!(
            "the {what} is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes[..end])
        )
    });
    (value, bytes.get(end + 1..).unwrap_or_default())
}

/// The `check_in` payloads of a listener's request log, in order.
pub fn check_ins(log: &RequestLog) -> Vec<Value> {
    let mut check_ins = Vec::new();
    for request in log.all() {
        assert_eq!(
            request.line(),
            "POST /api/1/envelope/",
            "not an envelope POST"
        );
        let auth = request.header("x-sentry-auth").unwrap_or_default();
        assert!(auth.contains("sentry_key="), "no DSN key in {auth:?}");
        for item in Envelope::parse(&request.body).items {
            if item.item_type() == "check_in" {
                check_ins.push(item.json());
            }
        }
    }
    check_ins
}
