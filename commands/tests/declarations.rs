//! The commands' declarations are the one source of truth: each command's reference page
//! (`docs/commands/<name>.md`) and the README's shared settings must say what they declare, and
//! each command's configuration reads only what it declared.

use std::collections::BTreeMap;
use std::path::PathBuf;

use commands::settings::{shared, RawSettings, Setting};
use commands::{Command, COMMANDS};

/// A settings table row: flag, event key and default as written.
#[derive(Debug, PartialEq)]
struct Row {
    flag: String,
    event_key: String,
    default: String,
}

fn repo_file(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rows of every `| Variable | Flag | Event key | Default | Meaning |` table in `text`.
fn settings_rows(text: &str) -> BTreeMap<String, Row> {
    let mut rows = BTreeMap::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("| Variable | Flag | Event key | Default |") {
            in_table = true;
            continue;
        }
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let code = |cell: &str| cell.trim_matches('`').to_string();
        let previous = rows.insert(
            code(cells[1]),
            Row {
                flag: code(cells[2]),
                event_key: code(cells[3]),
                default: cells[4].to_string(),
            },
        );
        assert!(previous.is_none(), "{} is documented twice", cells[1]);
    }
    rows
}

/// The part of `text` from the heading `heading` to the next heading of the same level.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no {heading:?} section"));
    let level = heading.split(' ').next().unwrap();
    let rest = &text[start + heading.len() + 2..];
    let end = rest
        .find(&format!("\n{level} "))
        .map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

fn declared_row(setting: &Setting) -> Row {
    Row {
        flag: format!("--{}", setting.long_flag()),
        event_key: setting.event_key.unwrap_or_default().to_string(),
        default: setting.default_text(),
    }
}

fn assert_documented(what: &str, declared: &[&Setting], documented: &BTreeMap<String, Row>) {
    let declared_names: Vec<&str> = declared.iter().map(|s| s.env).collect();
    let documented_names: Vec<&str> = documented.keys().map(String::as_str).collect();
    let mut sorted = declared_names.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted, documented_names,
        "{what}: the documented settings are not the declared ones"
    );
    for setting in declared {
        assert_eq!(
            documented[setting.env],
            declared_row(setting),
            "{what}: the row of {} differs from its declaration",
            setting.env
        );
    }
}

fn is_shared(group: &[&Setting]) -> bool {
    shared::GROUPS.iter().any(|(_, g)| *g == group)
}

/// A command's own settings: its declared settings and the groups that are not shared.
fn own_settings(command: &Command) -> Vec<&'static Setting> {
    let mut own: Vec<&'static Setting> = Vec::new();
    for group in command.groups.iter().filter(|g| !is_shared(g)) {
        own.extend_from_slice(group);
    }
    own.extend_from_slice(command.settings);
    own
}

#[test]
fn every_command_page_documents_its_declared_settings() {
    for command in COMMANDS {
        let page = repo_file(&format!("docs/commands/{}.md", command.name));
        let rows = settings_rows(section(&page, "## Settings"));
        assert_documented(command.name, &own_settings(command), &rows);
    }
}

#[test]
fn every_command_page_links_the_shared_groups_it_takes() {
    let anchors = [
        (shared::MONITOR, "#monitor-settings"),
        (shared::DRY_RUN_GROUP, "#dry-run"),
        (commands::store::SETTINGS, "#object-store-settings"),
        (commands::store::aws::CREDENTIALS, "#aws-credentials"),
    ];
    for command in COMMANDS {
        let page = repo_file(&format!("docs/commands/{}.md", command.name));
        let settings = section(&page, "## Settings");
        assert!(
            settings.contains("README.md#http-settings"),
            "{}: no link to the shared HTTP settings",
            command.name
        );
        for (group, anchor) in anchors {
            let takes = command.groups.contains(&group);
            assert_eq!(
                settings.contains(&format!("README.md{anchor}")),
                takes,
                "{}: the link to {anchor} says otherwise than its declaration",
                command.name
            );
        }
    }
}

#[test]
fn the_readme_documents_the_shared_settings() {
    let readme = repo_file("README.md");
    let rows = settings_rows(section(&readme, "## Shared settings"));
    let shared: Vec<&Setting> = shared::GROUPS
        .iter()
        .flat_map(|(_, group)| group.iter().copied())
        .collect();
    assert_documented("README", &shared, &rows);
}

#[test]
fn the_readme_lists_every_command_with_its_page() {
    let readme = repo_file("README.md");
    for command in COMMANDS {
        let row = format!(
            "| `{}` | {} | [docs/commands/{name}.md](docs/commands/{name}.md) |",
            command.name,
            command.about,
            name = command.name
        );
        let line = readme
            .lines()
            .find(|line| line.starts_with(&row))
            .unwrap_or_else(|| panic!("the README's table of commands has no row {row}"));
        assert_eq!(
            line.ends_with("| writer |"),
            command.writer,
            "{}: the README's reader/writer column says otherwise",
            command.name
        );
    }
}

/// A valid value for each setting, so that a command's configuration reads as far as it can.
fn sample(setting: &Setting) -> &'static str {
    match setting.env {
        "SERVER" => "http://127.0.0.1:9/v1",
        "OUTPUT" => "json",
        "SENTRY_DSN" => "https://key@sentry.example/1",
        "ROOT_HASH" => {
            "3C:01:44:6A:BE:90:36:CE:A9:A0:9A:CA:A3:A5:20:AC:62:8F:20:A7:AE:32:CE:86:1C:B2:EF:B7:0F:A0:C7:45"
        }
        "SIGNER_NAME" => "remote-settings.content-signature.mozilla.org",
        "CHECK_AT" => "1615559719",
        "BACKPORT_RECORDS_SOURCE_FILTERS" => "{\"min_age\": 42}",
        "BACKPORT_RECORDS_MAPPINGS" => "a/b -> c/d",
        "BACKPORT_RECORDS_DEST_BUCKET" => "other",
        "ADDONS_COLLECTIONS" | "PLUGINS_COLLECTIONS" => "",
        "PLUGINS_COLLECTION" => "plugins",
        "AWS_REGION" => "eu-central-1",
        "BUCKET_NAME" => "amo-blocked-pages",
        "AWS_ENDPOINT_URL" => "http://127.0.0.1:9",
        "STORAGE_URL" => "gs://attachments/prefix",
        "STORAGE_ENDPOINT" => "http://127.0.0.1:9",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" => "/v2/credentials",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI" => "http://127.0.0.1:9/creds",
        "REDASH_API_QUERY_URL" => "https://redash.example/api/queries/1/results.json",
        "REDASH_RESULT_FILE" => "",
        "SPECIFIC_ERROR_THRESHOLD_PERCENTAGES" => "main/cfr = 5.5",
        "MAX_SIGNATURE_AGE_OVERRIDES" => "main-workspace/cfr=24; staging/addons=2",
        "TARGET_DIR" => "/tmp/pages",
        "SOURCE_SERVER" | "TARGET_SERVER" => "http://127.0.0.1:9/v1",
        "INCLUDE_COLLECTIONS" | "EXCLUDE_COLLECTIONS" => "main/*, */cfr",
        name if name.ends_with("AUTH") || name.ends_with("KEY") || name.ends_with("TOKEN") => {
            "user:pass"
        }
        name if name.ends_with("_ID") => "AKIA-SAMPLE",
        _ => match setting.default {
            commands::settings::declare::Default::Value(value) => value,
            _ => "sample",
        },
    }
}

#[test]
fn every_command_configures_from_its_declared_settings_alone() {
    // In debug builds, reading a setting that was not declared panics: every setting holds a
    // valid value here, so each configuration reads as much as it can.
    for command in COMMANDS {
        let mut raw = RawSettings::declaring(command.all_settings());
        for setting in command.all_settings() {
            raw.set(setting.env, sample(setting));
        }
        let configured = (command.runs.configure)(&raw);
        assert!(configured.is_ok(), "{}: {configured:?}", command.name);
        // And with nothing set, the defaults alone are valid (or a required setting is named).
        let empty = RawSettings::declaring(command.all_settings());
        if let Err(e) = (command.runs.configure)(&empty) {
            assert!(
                command.all_settings().iter().any(|s| s.env == e.name),
                "{}: {e}",
                command.name
            );
        }
    }
}
