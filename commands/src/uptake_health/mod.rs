//! `uptake_health`: reads the Remote Settings uptake telemetry that a Redash query sums per source
//! and status (downloaded with `REDASH_API_KEY`, or read from `REDASH_RESULT_FILE`), prints each
//! source's share of bad (`*_error`) statuses, and flags the sources over their threshold (exit 1,
//! one Sentry alert each). Submodules: `query_result` parses and validates the Redash document,
//! `report` judges the sources and renders them, `text` holds the original's formatting rules.

mod query_result;
mod report;
mod text;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::{json, Map, Value};

use crate::client::{Request, RetryPolicy};
use crate::command::{Command, CommandConfig, Runs};
use crate::secrets::{display_url, Secret};
use crate::settings::{quote, RawSettings, Setting, SettingError};
use crate::{CommandError, Context};

pub use report::{SourceCheck, UptakeReport, Verdict};
pub use text::fnmatch;

pub const COMMAND: Command = Command {
    name: "uptake_health",
    about: "Alert when the clients' uptake error rates in Redash telemetry are over threshold",
    problems_error_type: "UptakeHealthError",
    writer: false,
    groups: &[],
    settings: &[
        &REDASH_API_KEY,
        &REDASH_API_QUERY_URL,
        &REDASH_TIMEOUT_SECONDS,
        &REDASH_RESULT_FILE,
        &EXCLUDE_SOURCES,
        &MIN_TOTAL_ENTRIES,
        &DEFAULT_ERROR_THRESHOLD_PERCENT,
        &SPECIFIC_ERROR_THRESHOLD_PERCENTAGES,
        &VERBOSE,
    ],
    server_tag: redash_server_tag,
    runs: Runs::of::<Config>(),
};

pub const REDASH_API_KEY: Setting = Setting::new(
    "REDASH_API_KEY",
    "KEY",
    "Redash API key, added to the query URL as `api_key`",
)
.derived("none (required without REDASH_RESULT_FILE)")
.secret();
pub const REDASH_API_QUERY_URL: Setting = Setting::new(
    "REDASH_API_QUERY_URL",
    "URL",
    "Redash query results URL, without the key",
)
.default("https://sql.telemetry.mozilla.org/api/queries/61352/results.json");
pub const REDASH_TIMEOUT_SECONDS: Setting = Setting::new(
    "REDASH_TIMEOUT_SECONDS",
    "SECONDS",
    "Connect and read timeout of the Redash request, in seconds",
)
.default("60");
pub const REDASH_RESULT_FILE: Setting = Setting::new(
    "REDASH_RESULT_FILE",
    "PATH",
    "Read the query result (the same JSON) from this file instead of Redash",
);
pub const EXCLUDE_SOURCES: Setting = Setting::new(
    "EXCLUDE_SOURCES",
    "GLOBS",
    "Comma-separated globs of sources to ignore",
)
.default("shield-recipe-client/*, normandy/*, main/url-classifier-skip-urls");
pub const MIN_TOTAL_ENTRIES: Setting = Setting::new(
    "MIN_TOTAL_ENTRIES",
    "N",
    "Skip sources with fewer events than this",
)
.default("1000");
pub const DEFAULT_ERROR_THRESHOLD_PERCENT: Setting = Setting::new(
    "DEFAULT_ERROR_THRESHOLD_PERCENT",
    "PERCENT",
    "Error percentage over which a source is reported",
)
.default("2.0");
pub const SPECIFIC_ERROR_THRESHOLD_PERCENTAGES: Setting = Setting::new(
    "SPECIFIC_ERROR_THRESHOLD_PERCENTAGES",
    "PAIRS",
    "Thresholds by source: `main/cfr = 5.5; foo/bar=12`",
);
pub const VERBOSE: Setting = Setting::switch(
    "VERBOSE",
    "Also print every status count and why sources are skipped",
)
.flag("explain");

/// This command talks to Redash, not to the Kinto server.
fn redash_server_tag(raw: &RawSettings) -> String {
    query_url(raw)
        .map(|u| display_url(&u))
        .unwrap_or_else(|_| "(invalid)".into())
}
/// Redash is retried on connection errors and timeouts, and on these statuses only.
pub const REDASH_RETRY_STATUSES: &[u16] = &[503, 504];

/// Where the query result comes from.
#[derive(Debug, Clone)]
pub enum ResultSource {
    /// Download `query_url` with `api_key` added as a query parameter.
    Redash { api_key: Secret, timeout: Duration },
    /// Read a saved result from disk (`REDASH_RESULT_FILE`).
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub source: ResultSource,
    /// The query's results URL, without the key.
    pub query_url: Url,
    /// `fnmatch` globs of sources to ignore.
    pub exclude_sources: Vec<String>,
    pub min_total_entries: u64,
    pub default_threshold: f64,
    /// Thresholds by source, overriding the default.
    pub thresholds: BTreeMap<String, f64>,
    pub verbose: bool,
}

/// `REDASH_API_QUERY_URL`, which must not hold the key (it would be printed).
pub fn query_url(raw: &RawSettings) -> Result<Url, SettingError> {
    const NAME: &str = REDASH_API_QUERY_URL.env;
    if raw
        .get(&REDASH_API_QUERY_URL)
        .is_some_and(|v| v.to_ascii_lowercase().contains("api_key="))
    {
        return Err(SettingError::new(
            NAME,
            "the URL must not hold api_key=: set REDASH_API_KEY instead",
        ));
    }
    let url = raw.http_url(&REDASH_API_QUERY_URL)?;
    if url.fragment().is_some() {
        return Err(SettingError::new(NAME, "the URL must not have a fragment"));
    }
    Ok(url)
}

/// A percentage threshold: a number >= 0.
fn percentage(name: &str, text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        Ok(_) => Err(format!("{} must be a number >= 0", quote(text.trim()))),
        Err(_) => Err(format!(
            "{} is not a number{}",
            quote(text.trim()),
            if name.is_empty() {
                String::new()
            } else {
                // One line, whatever the name holds (found by the `thresholds` fuzz target).
                format!(" (for {})", name.escape_debug())
            }
        )),
    }
}

/// `SPECIFIC_ERROR_THRESHOLD_PERCENTAGES`: `source = percent` pairs separated by `;`
/// (`main/cfr = 5.5; foo/bar=12`). A source named twice takes its last value.
pub fn parse_thresholds(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut thresholds = BTreeMap::new();
    for item in text.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let mut parts = item.split('=');
        let (Some(name), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "{} is not `source = percent` (pairs are separated by ';')",
                quote(item)
            ));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("{} has no source name", quote(item)));
        }
        let value = percentage(name, value).map_err(|e| format!("{}: {e}", quote(item)))?;
        thresholds.insert(name.to_string(), value);
    }
    Ok(thresholds)
}

impl CommandConfig for Config {
    type Report = UptakeReport;

    async fn run(&self, ctx: &Context) -> Result<UptakeReport, CommandError> {
        run(self, ctx).await
    }

    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError> {
        let query_url = query_url(raw)?;
        let redash_timeout = raw.duration_secs(&REDASH_TIMEOUT_SECONDS)?;
        let default_threshold = percentage("", &raw.string(&DEFAULT_ERROR_THRESHOLD_PERCENT))
            .map_err(|e| SettingError::new(DEFAULT_ERROR_THRESHOLD_PERCENT.env, e))?;
        let thresholds = parse_thresholds(&raw.string(&SPECIFIC_ERROR_THRESHOLD_PERCENTAGES))
            .map_err(|e| SettingError::new(SPECIFIC_ERROR_THRESHOLD_PERCENTAGES.env, e))?;
        let min_total_entries = raw.uint(&MIN_TOTAL_ENTRIES, u64::MAX)?;
        let verbose = raw.flag(&VERBOSE)?;
        let exclude_sources = raw.list(&EXCLUDE_SOURCES, ',');
        let source = match raw.get(&REDASH_RESULT_FILE) {
            Some(path) => ResultSource::File(PathBuf::from(path.trim())),
            None => ResultSource::Redash {
                api_key: raw.secret(&REDASH_API_KEY).ok_or_else(|| {
                    SettingError::new(
                        REDASH_API_KEY.env,
                        "missing: set the Redash API key (or REDASH_RESULT_FILE to read a saved result)",
                    )
                })?,
                timeout: redash_timeout,
            },
        };
        Ok(Config {
            source,
            query_url,
            exclude_sources,
            min_total_entries,
            default_threshold,
            thresholds,
            verbose,
        })
    }
}

impl Config {
    /// The threshold of a source: its own, else the default.
    pub fn threshold(&self, source: &str) -> f64 {
        self.thresholds
            .get(source)
            .copied()
            .unwrap_or(self.default_threshold)
    }

    /// Where the data came from and the thresholds, as the original's Sentry extra data.
    fn context(&self) -> Map<String, Value> {
        let mut context = Map::new();
        match &self.source {
            ResultSource::Redash { .. } => {
                context.insert(
                    "REDASH_API_QUERY_URL".into(),
                    json!(display_url(&self.query_url)),
                );
            }
            ResultSource::File(path) => {
                context.insert(
                    "REDASH_RESULT_FILE".into(),
                    json!(path.display().to_string()),
                );
            }
        }
        context.insert("EXCLUDE_SOURCES".into(), json!(self.exclude_sources));
        context.insert(
            "DEFAULT_ERROR_THRESHOLD_PERCENT".into(),
            json!(self.default_threshold),
        );
        context.insert(
            "SPECIFIC_ERROR_THRESHOLD_PERCENTAGES".into(),
            json!(self.thresholds),
        );
        context.insert("MIN_TOTAL_ENTRIES".into(), json!(self.min_total_entries));
        context
    }
}

/// The query result document and where it came from (for error messages).
async fn fetch(config: &Config, ctx: &Context) -> Result<(Vec<u8>, String), CommandError> {
    match &config.source {
        ResultSource::File(path) => {
            let body = std::fs::read(path).map_err(|e| {
                CommandError::Runtime(format!(
                    "Could not read REDASH_RESULT_FILE {}: {e}",
                    path.display()
                ))
            })?;
            Ok((body, format!("in {}", path.display())))
        }
        ResultSource::Redash { api_key, timeout } => {
            let mut url = config.query_url.clone();
            url.query_pairs_mut()
                .append_pair("api_key", api_key.expose());
            let client = ctx
                .http
                .with_timeout(*timeout)
                .with_retry_policy(RetryPolicy::Statuses(REDASH_RETRY_STATUSES));
            log::info!("Downloading the query result {}", display_url(&url));
            let response = client.send(&Request::new(Method::GET, url.clone())).await?;
            Ok((response.body, format!("from GET {}", display_url(&url))))
        }
    }
}

pub async fn run(config: &Config, ctx: &Context) -> Result<UptakeReport, CommandError> {
    let (body, origin) = fetch(config, ctx).await?;
    let malformed =
        |e: String| CommandError::Runtime(format!("Malformed Redash query result {origin}: {e}"));
    let rows = query_result::parse(&body).map_err(malformed)?;
    report::evaluate(rows, config, config.context()).map_err(malformed)
}

#[cfg(test)]
mod tests;
