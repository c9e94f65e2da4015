//! Panics end a run like any other failure: [`install_hook`] (first thing in `main`) replaces the
//! default hook, which printed several lines and a location on stderr, with one that only records
//! the panic; Sentry's panic integration, set up later, wraps it and captures the event. [`guarded`]
//! runs a command future: a panic in it, or in a task it spawned and then recovered from (tokio
//! catches those in the task's `JoinHandle`), ends the run as [`CommandError::Panic`] with a
//! one-line message scrubbed of credentials, which the front doors report as any error (CLI exit 3,
//! Lambda `errorType` `Panic`).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use commands::{CommandError, Report};
use futures::FutureExt;

/// The first panic recorded since the last [`take`], with its location.
static PANIC: Mutex<Option<String>> = Mutex::new(None);

/// The longest panic message shown (in characters).
const MAX_MESSAGE: usize = 300;

pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = format!("{}{location}", payload_text(info.payload()));
        if let Ok(mut slot) = PANIC.lock() {
            slot.get_or_insert(message);
        }
    }));
}

/// The panic recorded since the last call, if any (and forget it).
fn take() -> Option<String> {
    PANIC.lock().ok().and_then(|mut slot| slot.take())
}

fn payload_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
}

/// Run `run`; a panic anywhere in it (its own, or a spawned task's it recovered from) becomes
/// [`CommandError::Panic`], whose message holds none of `secrets`.
pub async fn guarded(
    run: impl Future<Output = Result<Box<dyn Report>, CommandError>>,
    secrets: &[String],
) -> Result<Box<dyn Report>, CommandError> {
    let _ = take();
    match AssertUnwindSafe(run).catch_unwind().await {
        Err(payload) => {
            let message = take().unwrap_or_else(|| payload_text(payload.as_ref()).into());
            Err(CommandError::Panic(panic_message(&message, secrets)))
        }
        Ok(result) => match take() {
            Some(message) => Err(CommandError::Panic(panic_message(&message, secrets))),
            None => result,
        },
    }
}

/// The message of a panic caught outside [`guarded`] (the front doors' last resort).
pub fn caught(payload: &(dyn Any + Send), secrets: &[String]) -> String {
    let message = take().unwrap_or_else(|| payload_text(payload).into());
    panic_message(&message, secrets)
}

/// One line, bounded, without credentials: `the command panicked (a bug): <message>`.
pub fn panic_message(message: &str, secrets: &[String]) -> String {
    let first: String = message
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(MAX_MESSAGE)
        .collect();
    let cleaned = commands::secrets::redact_text(&first, secrets);
    format!("the command panicked (a bug): {cleaned}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_message_is_one_bounded_line_without_credentials() {
        let text = format!(
            "boom user:hunter2 dXNlcjpodW50ZXIy http://u:pw-in-url@h/v1\nsecond line {}",
            "x".repeat(1000)
        );
        let message = panic_message(&text, &["hunter2".into(), "dXNlcjpodW50ZXIy".into()]);
        assert!(!message.contains('\n'), "{message}");
        assert!(message.chars().count() < MAX_MESSAGE + 40, "{message}");
        for secret in ["hunter2", "dXNlcjpodW50ZXIy", "pw-in-url", "second line"] {
            assert!(!message.contains(secret), "{message}");
        }
        assert!(message.starts_with("the command panicked (a bug): boom"));
    }
}
