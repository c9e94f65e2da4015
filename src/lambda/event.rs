//! Lambda events as settings: the keys the original lambdas read from their event, each
//! overriding the environment variable of the setting that declares it (`event_key`). Every other
//! setting comes from the environment only. An event that is not an object, or an EventBridge
//! envelope (a scheduled rule without a constant input), changes nothing: the run uses the
//! environment.

use commands::settings::{Setting, Shape};
use commands::{RawSettings, SettingError};
use serde_json::{Map, Value};

/// The event keys of a run, from the settings its command declares.
fn event_keys(raw: &RawSettings) -> impl Iterator<Item = (&'static str, &'static Setting)> + '_ {
    raw.declared()
        .iter()
        .filter_map(|setting| setting.event_key.map(|key| (key, *setting)))
}

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
        let Some((_, setting)) = event_keys(env).find(|(k, _)| k == key) else {
            unknown.push(key.as_str());
            continue;
        };
        let name = setting.env;
        let json = setting.shape == Shape::Json;
        match value {
            Value::Null => {}
            Value::String(s) if s.trim().is_empty() => {}
            Value::String(s) => raw.set(name, s.clone()),
            Value::Object(_) if json => raw.set(name, value.to_string()),
            other => {
                let expected = if json {
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
            event_keys(env)
                .map(|(k, _)| k)
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

    /// The environment's settings of a run of `command`.
    fn env_of(command: &str) -> RawSettings {
        let command = commands::find_command(command).unwrap();
        let mut raw = RawSettings::declaring(command.all_settings());
        raw.set("SERVER", "http://env/v1");
        raw.set("BUCKET", "env-bucket");
        raw.set("PARALLEL_REQUESTS", "3");
        raw
    }

    fn env() -> RawSettings {
        env_of("validate_signature")
    }

    #[test]
    fn every_declared_key_sets_its_variable() {
        for command in commands::COMMANDS {
            let env = RawSettings::declaring(command.all_settings());
            let keys: Vec<(&str, &Setting)> = event_keys(&env).collect();
            assert!(!keys.is_empty(), "{} takes no event key", command.name);
            let event: Map<String, Value> = keys
                .iter()
                .map(|(k, _)| (k.to_string(), json!(format!("value of {k}"))))
                .collect();
            let raw = settings(&env, &Value::Object(event)).unwrap();
            for (key, setting) in keys {
                assert_eq!(
                    raw.get(setting),
                    Some(format!("value of {key}").as_str()),
                    "{}: {key}",
                    command.name
                );
            }
        }
    }

    #[test]
    fn the_original_keys_are_kept() {
        let keys =
            |command: &str| -> Vec<&str> { event_keys(&env_of(command)).map(|(k, _)| k).collect() };
        assert_eq!(
            keys("validate_signature"),
            ["server", "auth", "bucket", "collection"]
        );
        assert_eq!(
            keys("blockpages_generator"),
            [
                "server",
                "auth",
                "bucket",
                "addons-collection",
                "plugins-collection",
                "aws_region",
                "bucket_name"
            ]
        );
        assert!(keys("refresh_signature").contains(&"refresh_signature_auth"));
        assert!(keys("backport_records").contains(&"backport_records_mappings"));
    }

    #[test]
    fn event_values_override_env_and_the_rest_stays() {
        let raw = settings(
            &env(),
            &json!({"server": "http://event/v1", "auth": "u:p", "bucket": null, "collection": ""}),
        )
        .unwrap();
        assert_eq!(raw.value_of("SERVER"), Some("http://event/v1"));
        assert_eq!(raw.value_of("AUTH"), Some("u:p"));
        assert_eq!(
            raw.value_of("BUCKET"),
            Some("env-bucket"),
            "null falls back to env"
        );
        assert_eq!(raw.value_of("COLLECTION"), None, "empty falls back to env");
        assert_eq!(raw.value_of("PARALLEL_REQUESTS"), Some("3"));
    }

    #[test]
    fn settings_that_are_no_event_key_come_from_env_only() {
        let raw = settings(
            &env(),
            &json!({"parallel_requests": "9", "PARALLEL_REQUESTS": "9", "SERVER": "http://x/", "bucket_name": "x"}),
        )
        .unwrap();
        assert_eq!(raw.value_of("PARALLEL_REQUESTS"), Some("3"));
        assert_eq!(raw.value_of("SERVER"), Some("http://env/v1"));
        assert_eq!(
            raw.value_of("BUCKET_NAME"),
            None,
            "not a key of this command"
        );
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
            &env_of("backport_records"),
            &json!({"backport_records_source_filters": {"min_age": 42}}),
        )
        .unwrap();
        assert_eq!(
            raw.value_of("BACKPORT_RECORDS_SOURCE_FILTERS"),
            Some(r#"{"min_age":42}"#)
        );
    }

    #[test]
    fn values_of_the_wrong_type_are_a_config_error_naming_the_key() {
        for (command, event, key) in [
            ("validate_signature", json!({"server": 8888}), "server"),
            ("validate_signature", json!({"bucket": ["a"]}), "bucket"),
            ("validate_signature", json!({"auth": {"user": "x"}}), "auth"),
            (
                "blockpages_generator",
                json!({"addons-collection": true}),
                "addons-collection",
            ),
            (
                "backport_records",
                json!({"backport_records_source_filters": [1]}),
                "backport_records_source_filters",
            ),
        ] {
            let err = settings(&env_of(command), &event).unwrap_err();
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
