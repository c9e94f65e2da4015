//! Kinto's error bodies, `{"code", "errno", "error", "message"}`: what is shown of them is the
//! `message`, on one short line. The client reads it from a failed request's answer (its default
//! error detail is this same JSON `message`, which Redash shares); batch sub-responses carry
//! such bodies too, read here.

use serde_json::Value;

/// The `message` of a Kinto error body, bounded to one short line.
pub fn kinto_error_message(body: &Value) -> Option<String> {
    crate::client::error::json_message(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_shown_on_one_line() {
        let body = serde_json::json!({"code": 412, "errno": 114, "error": "Precondition Failed",
            "message": "Resource was modified meanwhile\nsecond line"});
        assert_eq!(
            kinto_error_message(&body).as_deref(),
            Some("Resource was modified meanwhile")
        );
        assert_eq!(kinto_error_message(&serde_json::json!({"code": 500})), None);
    }
}
