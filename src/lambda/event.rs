//! Lambda events as settings: the keys the original lambdas read from their event (SPEC.md §5),
//! each overriding the environment variable it names. Every other setting comes from the
//! environment only. An event that is not an object, or an EventBridge envelope (a scheduled rule
//! without a constant input), changes nothing: the run uses the environment.

use commands::{RawSettings, SettingError};
use serde_json::{Map, Value};

/// Event key → the environment variable it overrides.
pub const EVENT_KEYS: &[(&str, &str)] = &[
    ("server", "SERVER"),
    ("bucket", "BUCKET"),
    ("collection", "COLLECTION"),
    ("auth", "AUTH"),
    ("refresh_signature_auth", "REFRESH_SIGNATURE_AUTH"),
    (
        "backport_records_source_auth",
        "BACKPORT_RECORDS_SOURCE_AUTH",
    ),
    (
        "backport_records_source_bucket",
        "BACKPORT_RECORDS_SOURCE_BUCKET",
    ),
    (
        "backport_records_source_collection",
        "BACKPORT_RECORDS_SOURCE_COLLECTION",
    ),
    (
        "backport_records_source_filters",
        "BACKPORT_RECORDS_SOURCE_FILTERS",
    ),
    ("backport_records_dest_auth", "BACKPORT_RECORDS_DEST_AUTH"),
    // Not in SPEC.md §5, but the original lambda read it from its event too.
    ("backport_records_mappings", "BACKPORT_RECORDS_MAPPINGS"),
    (
        "backport_records_dest_bucket",
        "BACKPORT_RECORDS_DEST_BUCKET",
    ),
    (
        "backport_records_dest_collection",
        "BACKPORT_RECORDS_DEST_COLLECTION",
    ),
    ("addons-collection", "ADDONS_COLLECTION"),
    ("plugins-collection", "PLUGINS_COLLECTION"),
    ("aws_region", "AWS_REGION"),
    ("bucket_name", "BUCKET_NAME"),
];

/// The settings of one invocation: the environment's, overridden by the event's keys.
///
/// A key's value must be a string (a `*_FILTERS` key may also be a JSON object, as its variable
/// holds one); `null` or an empty string falls back to the environment, as the original's
/// `event.get(key) or os.getenv(NAME)` did. Any other type is a configuration error naming the key.
pub fn settings(env: &RawSettings, event: &Value) -> Result<RawSettings, SettingError> {
    let mut raw = env.clone();
    let Value::Object(fields) = event else {
        log::info!("the event is not a JSON object: every setting comes from the environment");
        return Ok(raw);
    };
    if is_eventbridge_envelope(fields) {
        log::info!("an EventBridge event: every setting comes from the environment");
        return Ok(raw);
    }
    let mut unknown = Vec::new();
    for (key, value) in fields {
        let Some(&(_, name)) = EVENT_KEYS.iter().find(|(k, _)| k == key) else {
            unknown.push(key.as_str());
            continue;
        };
        match value {
            Value::Null => {}
            Value::String(s) if s.trim().is_empty() => {}
            Value::String(s) => raw.set(name, s.clone()),
            Value::Object(_) if name.ends_with("_FILTERS") => raw.set(name, value.to_string()),
            other => {
                let expected = if name.ends_with("_FILTERS") {
                    "a JSON object or a string"
                } else {
                    "a string"
                };
                return Err(SettingError::new(
                    &format!("event key {key:?}"),
                    format!("must be {expected} (it sets {name}), got {}", kind(other)),
                ));
            }
        }
    }
    if !unknown.is_empty() {
        log::warn!(
            "ignoring unknown event key(s) {}: the event keys are {}",
            unknown.join(", "),
            EVENT_KEYS
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(raw)
}

/// What EventBridge sends when a rule has no constant input: `{"version", "id", "detail-type",
/// "source", "account", "time", "region", "resources", "detail"}`.
fn is_eventbridge_envelope(fields: &Map<String, Value>) -> bool {
    fields.contains_key("detail-type") && fields.contains_key("source")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> RawSettings {
        let mut raw = RawSettings::new();
        raw.set("SERVER", "http://env/v1");
        raw.set("BUCKET", "env-bucket");
        raw.set("PARALLEL_REQUESTS", "3");
        raw
    }

    #[test]
    fn every_key_of_the_spec_sets_its_variable() {
        let event: Map<String, Value> = EVENT_KEYS
            .iter()
            .map(|(k, _)| (k.to_string(), json!(format!("value of {k}"))))
            .collect();
        let raw = settings(&RawSettings::new(), &Value::Object(event)).unwrap();
        for (key, name) in EVENT_KEYS {
            assert_eq!(raw.get(name), Some(format!("value of {key}").as_str()));
        }
        // The 16 keys of SPEC.md §5, and the original's backport_records_mappings.
        assert_eq!(EVENT_KEYS.len(), 17);
        assert_eq!(
            EVENT_KEYS.iter().find(|(k, _)| *k == "addons-collection"),
            Some(&("addons-collection", "ADDONS_COLLECTION"))
        );
    }

    #[test]
    fn event_values_override_env_and_the_rest_stays() {
        let raw = settings(
            &env(),
            &json!({"server": "http://event/v1", "auth": "u:p", "bucket": null, "collection": ""}),
        )
        .unwrap();
        assert_eq!(raw.get("SERVER"), Some("http://event/v1"));
        assert_eq!(raw.get("AUTH"), Some("u:p"));
        assert_eq!(
            raw.get("BUCKET"),
            Some("env-bucket"),
            "null falls back to env"
        );
        assert_eq!(raw.get("COLLECTION"), None, "empty falls back to env");
        assert_eq!(raw.get("PARALLEL_REQUESTS"), Some("3"));
    }

    #[test]
    fn settings_that_are_no_event_key_come_from_env_only() {
        let raw = settings(
            &env(),
            &json!({"parallel_requests": "9", "PARALLEL_REQUESTS": "9", "SERVER": "http://x/"}),
        )
        .unwrap();
        assert_eq!(raw.get("PARALLEL_REQUESTS"), Some("3"));
        assert_eq!(raw.get("SERVER"), Some("http://env/v1"));
    }

    #[test]
    fn non_objects_and_eventbridge_envelopes_fall_back_to_env() {
        let scheduled = json!({
            "version": "0", "id": "53dc4d37", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-22T22:00:00Z",
            "region": "eu-central-1", "resources": ["arn:aws:events:eu-central-1:1:rule/x"],
            "detail": {}
        });
        for event in [json!(null), json!("text"), json!([1]), json!(3), scheduled] {
            let raw = settings(&env(), &event).unwrap();
            assert_eq!(format!("{raw:?}"), format!("{:?}", env()), "{event}");
        }
    }

    #[test]
    fn filters_may_be_a_json_object() {
        let raw = settings(
            &env(),
            &json!({"backport_records_source_filters": {"min_age": 42}}),
        )
        .unwrap();
        assert_eq!(
            raw.get("BACKPORT_RECORDS_SOURCE_FILTERS"),
            Some(r#"{"min_age":42}"#)
        );
    }

    #[test]
    fn values_of_the_wrong_type_are_a_config_error_naming_the_key() {
        for (event, key) in [
            (json!({"server": 8888}), "server"),
            (json!({"bucket": ["a"]}), "bucket"),
            (json!({"auth": {"user": "x"}}), "auth"),
            (json!({"addons-collection": true}), "addons-collection"),
            (
                json!({"backport_records_source_filters": [1]}),
                "backport_records_source_filters",
            ),
        ] {
            let err = settings(&env(), &event).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("invalid event key \"{key}\": must be ")),
                "{text}"
            );
            assert!(!text.contains('\n'));
        }
        let err = settings(&env(), &json!({"server": 8888})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid event key \"server\": must be a string (it sets SERVER), got a number"
        );
    }

    #[test]
    fn a_wrong_credential_value_is_not_echoed() {
        let err = settings(&env(), &json!({"auth": 12345678})).unwrap_err();
        assert!(!err.to_string().contains("12345678"));
    }
}
