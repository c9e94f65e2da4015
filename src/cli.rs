//! The command line. House rules: every setting is a long flag backed by the original's
//! environment variable (flag wins over env); values stay raw strings here and are validated by
//! the commands crate, so a bad value gets the same one-line error from a flag, the env or a
//! Lambda event. Credentials never show in `--help` (`hide_env_values`).

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use commands::{Command, RawSettings};

#[derive(Debug, Parser)]
#[command(
    name = "remote-settings-lambdas",
    version,
    about = "Operate a Mozilla Remote Settings service (Kinto with the signer and changes plugins).",
    arg_required_else_help = true,
    after_help = "Exit codes: 0 all good, 1 the check found problems, 2 usage or configuration error, 3 runtime failure."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    // Fields are read through `raw_settings`, by their environment variable names.
    /// Server root URL
    #[arg(long, env = "SERVER", global = true, value_name = "URL")]
    server: Option<String>,
    /// Connect and read timeout per request, in seconds [default: 2]
    #[arg(
        long,
        env = "REQUESTS_TIMEOUT_SECONDS",
        global = true,
        value_name = "SECONDS"
    )]
    requests_timeout_seconds: Option<String>,
    /// Retries of one request after a transient failure [default: 4]
    #[arg(long, env = "REQUESTS_NB_RETRIES", global = true, value_name = "N")]
    requests_nb_retries: Option<String>,
    /// Base delay of the exponential backoff between retries, in seconds [default: 0.5]
    #[arg(
        long,
        env = "REQUESTS_RETRY_BACKOFF_SECONDS",
        global = true,
        value_name = "SECONDS"
    )]
    requests_retry_backoff_seconds: Option<String>,
    /// At most this many requests in flight for the whole run [default: 4]
    #[arg(long, env = "PARALLEL_REQUESTS", global = true, value_name = "N")]
    parallel_requests: Option<String>,
    /// Credentials: `user:pass` (Basic) or a Bearer token
    #[arg(
        long,
        env = "AUTH",
        global = true,
        hide_env_values = true,
        value_name = "CREDENTIALS"
    )]
    auth: Option<String>,
    /// Report failures to this Sentry DSN
    #[arg(
        long,
        env = "SENTRY_DSN",
        global = true,
        hide_env_values = true,
        value_name = "DSN"
    )]
    sentry_dsn: Option<String>,
    /// Sentry environment name
    #[arg(long, env = "SENTRY_ENV", global = true, value_name = "NAME")]
    sentry_env: Option<String>,
    /// Print one JSON document instead of the text report (same as OUTPUT=json)
    #[arg(long, global = true)]
    json: bool,
    /// Output format: text or json [default: text]
    #[arg(long, env = "OUTPUT", global = true, value_name = "FORMAT")]
    output: Option<String>,
    /// More logs on stderr (-v info, -vv debug); RUST_LOG=<level> works too
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Bucket of the monitor collection [default: monitor]
    #[arg(long, env = "BUCKET", value_name = "ID")]
    bucket: Option<String>,
    /// Monitor collection listing the published collections [default: changes]
    #[arg(long, env = "COLLECTION", value_name = "ID")]
    collection: Option<String>,
}

#[derive(Debug, Args)]
pub struct UptakeHealthArgs {
    /// Redash API key, added to the query URL as `api_key` (required unless REDASH_RESULT_FILE)
    #[arg(
        long,
        env = "REDASH_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    redash_api_key: Option<String>,
    /// Redash query results URL, without the key [default: https://sql.telemetry.mozilla.org/api/queries/61352/results.json]
    #[arg(long, env = "REDASH_API_QUERY_URL", value_name = "URL")]
    redash_api_query_url: Option<String>,
    /// Connect and read timeout of the Redash request, in seconds [default: 60]
    #[arg(long, env = "REDASH_TIMEOUT_SECONDS", value_name = "SECONDS")]
    redash_timeout_seconds: Option<String>,
    /// Read the query result (the same JSON) from this file instead of Redash
    #[arg(long, env = "REDASH_RESULT_FILE", value_name = "PATH")]
    redash_result_file: Option<String>,
    /// Comma-separated globs of sources to ignore [default: shield-recipe-client/*, normandy/*, main/url-classifier-skip-urls]
    #[arg(long, env = "EXCLUDE_SOURCES", value_name = "GLOBS")]
    exclude_sources: Option<String>,
    /// Skip sources with fewer events than this [default: 1000]
    #[arg(long, env = "MIN_TOTAL_ENTRIES", value_name = "N")]
    min_total_entries: Option<String>,
    /// Error percentage over which a source is reported [default: 2.0]
    #[arg(long, env = "DEFAULT_ERROR_THRESHOLD_PERCENT", value_name = "PERCENT")]
    default_error_threshold_percent: Option<String>,
    /// Thresholds by source: `main/cfr = 5.5; foo/bar=12` [default: none]
    #[arg(
        long,
        env = "SPECIFIC_ERROR_THRESHOLD_PERCENTAGES",
        value_name = "PAIRS"
    )]
    specific_error_threshold_percentages: Option<String>,
    /// Also print every status count and why sources are skipped [default: 0]
    #[arg(
        long,
        env = "VERBOSE",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "1"
    )]
    explain: Option<String>,
}

#[derive(Debug, Args)]
pub struct BlockpagesArgs {
    /// Kinto bucket of the blocklist collections [default: blocklists]
    #[arg(long, env = "BUCKET", value_name = "ID")]
    bucket: Option<String>,
    /// Add-ons blocklist collection [default: addons]
    #[arg(long, env = "ADDONS_COLLECTION", value_name = "ID")]
    addons_collection: Option<String>,
    /// Plugins blocklist collection [default: plugins]
    #[arg(long, env = "PLUGINS_COLLECTION", value_name = "ID")]
    plugins_collection: Option<String>,
    // The seed README's plural names, still accepted from the environment.
    #[arg(long, env = "ADDONS_COLLECTIONS", hide = true)]
    addons_collections: Option<String>,
    #[arg(long, env = "PLUGINS_COLLECTIONS", hide = true)]
    plugins_collections: Option<String>,
    /// AWS region of the S3 bucket [default: eu-central-1]
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    aws_region: Option<String>,
    /// S3 bucket the pages are uploaded to, created when missing [default: amo-blocked-pages]
    #[arg(long, env = "BUCKET_NAME", value_name = "NAME")]
    bucket_name: Option<String>,
    /// S3-compatible endpoint instead of AWS (path-style requests) [default: AWS]
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    aws_endpoint_url: Option<String>,
    /// AWS access key id [default: none; required unless --dry-run]
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        value_name = "ID",
        hide_env_values = true
    )]
    aws_access_key_id: Option<String>,
    /// AWS secret access key [default: none; required unless --dry-run]
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        value_name = "SECRET",
        hide_env_values = true
    )]
    aws_secret_access_key: Option<String>,
    /// AWS session token, for temporary credentials [default: none]
    #[arg(
        long,
        env = "AWS_SESSION_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    aws_session_token: Option<String>,
    /// ECS container credentials path on 169.254.170.2, used when AWS_ACCESS_KEY_ID is unset [default: none]
    #[arg(
        long,
        env = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        value_name = "PATH"
    )]
    aws_container_credentials_relative_uri: Option<String>,
    /// Container credentials URL (https, or http to loopback / the ECS and EKS agents) [default: none]
    #[arg(long, env = "AWS_CONTAINER_CREDENTIALS_FULL_URI", value_name = "URL")]
    aws_container_credentials_full_uri: Option<String>,
    /// Authorization header value for the container credentials URL [default: none]
    #[arg(
        long,
        env = "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    aws_container_authorization_token: Option<String>,
    /// File holding that token, read at each run (EKS Pod Identity) [default: none]
    #[arg(
        long,
        env = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        value_name = "FILE"
    )]
    aws_container_authorization_token_file: Option<String>,
    /// Also write the pages into this directory (created when missing) [default: none]
    #[arg(long, env = "TARGET_DIR", value_name = "DIR")]
    target_dir: Option<String>,
    /// Render (and write to TARGET_DIR) without uploading anything [default: 0]
    #[arg(long, env = "DRY_RUN", value_name = "BOOL", num_args = 0..=1, default_missing_value = "1")]
    dry_run: Option<String>,
    /// Delete the bucket's .html pages that are no longer produced [default: 0]
    #[arg(long, env = "DELETE_STALE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "1")]
    delete_stale: Option<String>,
}

#[derive(Debug, Args)]
pub struct BackportArgs {
    /// Credentials for the source (and the destination unless --dest-auth): `user:pass` or a token (required)
    #[arg(
        long,
        env = "BACKPORT_RECORDS_SOURCE_AUTH",
        hide_env_values = true,
        value_name = "CREDENTIALS"
    )]
    source_auth: Option<String>,
    /// Bucket to read records from (required unless --mappings)
    #[arg(long, env = "BACKPORT_RECORDS_SOURCE_BUCKET", value_name = "ID")]
    source_bucket: Option<String>,
    /// Collection to read records from (required unless --mappings)
    #[arg(long, env = "BACKPORT_RECORDS_SOURCE_COLLECTION", value_name = "ID")]
    source_collection: Option<String>,
    /// Filters selecting the source records, as a JSON object of Kinto querystring filters, e.g. {"min_age": 42} [default: none]
    #[arg(long, env = "BACKPORT_RECORDS_SOURCE_FILTERS", value_name = "JSON")]
    source_filters: Option<String>,
    /// Credentials for the destination [default: the source's]
    #[arg(
        long,
        env = "BACKPORT_RECORDS_DEST_AUTH",
        hide_env_values = true,
        value_name = "CREDENTIALS"
    )]
    dest_auth: Option<String>,
    /// Bucket to copy records to [default: the source bucket]
    #[arg(long, env = "BACKPORT_RECORDS_DEST_BUCKET", value_name = "ID")]
    dest_bucket: Option<String>,
    /// Collection to copy records to [default: the source collection]
    #[arg(long, env = "BACKPORT_RECORDS_DEST_COLLECTION", value_name = "ID")]
    dest_collection: Option<String>,
    /// Several pairs instead of the source/dest settings, one per line: `sbid/scid[?filters] -> dbid/dcid`
    #[arg(long, env = "BACKPORT_RECORDS_MAPPINGS", value_name = "LINES")]
    mappings: Option<String>,
    /// Print the changes that would be made, and write nothing [default: 0]
    #[arg(
        long,
        env = "DRY_RUN",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "1"
    )]
    dry_run: Option<String>,
}

#[derive(Debug, Args)]
pub struct RefreshSignatureArgs {
    #[command(flatten)]
    monitor: MonitorArgs,
    /// Credentials allowed to write the source collections: `user:pass` (Basic) or a Bearer token
    #[arg(
        long,
        env = "REFRESH_SIGNATURE_AUTH",
        hide_env_values = true,
        value_name = "CREDENTIALS"
    )]
    refresh_signature_auth: Option<String>,
    /// Skip sources whose last signature is fewer than this many days old [default: 0, refresh all]
    #[arg(long, env = "MAX_SIGNATURE_AGE", value_name = "DAYS")]
    max_signature_age: Option<String>,
    /// Say what would be refreshed, write nothing (`--dry-run`, or DRY_RUN=1)
    #[arg(
        long,
        env = "DRY_RUN",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "1"
    )]
    dry_run: Option<String>,
}

#[derive(Debug, Args)]
pub struct ValidateSignatureArgs {
    #[command(flatten)]
    monitor: MonitorArgs,
    /// Colon-hex SHA-256 of the only root certificate accepted [default: any self-signed root]
    #[arg(long, env = "ROOT_HASH", value_name = "HEX")]
    root_hash: Option<String>,
    /// The name the leaf certificate must carry, for every bucket [default:
    /// onecrl.content-signature.mozilla.org for security-state(-preview),
    /// remote-settings.content-signature.mozilla.org elsewhere]
    #[arg(long, env = "SIGNER_NAME", value_name = "DNS_NAME")]
    signer_name: Option<String>,
    /// Check certificates at this time, in seconds since the epoch [default: now]
    #[arg(long = "at", env = "CHECK_AT", value_name = "EPOCH_SECONDS")]
    check_at: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Verify the content signature and certificate chain of every published collection
    #[command(name = "validate_signature", alias = "validate-signature")]
    ValidateSignature(ValidateSignatureArgs),
    /// Re-sign every published collection as it is (writer server)
    #[command(name = "refresh_signature", alias = "refresh-signature")]
    RefreshSignature(RefreshSignatureArgs),
    /// Check that source, preview and destination records agree with the review status (writer server)
    #[command(name = "consistency_checks", alias = "consistency-checks")]
    ConsistencyChecks(MonitorArgs),
    /// Copy record creations, updates and deletions from one collection to another, then ask for signature
    #[command(name = "backport_records", alias = "backport-records")]
    BackportRecords(BackportArgs),
    /// Check that monitor/changes timestamps match each collection's records timestamp
    #[command(
        name = "validate_changes_collection",
        alias = "validate-changes-collection"
    )]
    ValidateChangesCollection(MonitorArgs),
    /// Render the add-ons and plugins blocklists as HTML pages and upload them to S3
    #[command(name = "blockpages_generator", alias = "blockpages-generator")]
    BlockpagesGenerator(Box<BlockpagesArgs>),
    /// Alert when the clients' uptake error rates in Redash telemetry are over threshold
    #[command(name = "uptake_health", alias = "uptake-health")]
    UptakeHealth(UptakeHealthArgs),
}

impl Cli {
    /// Parse the command line (and the environment variables behind the flags).
    pub fn try_parse_with_settings() -> Result<(Cli, RawSettings), clap::Error> {
        let matches = <Cli as CommandFactory>::command().try_get_matches()?;
        let cli = <Cli as FromArgMatches>::from_arg_matches(&matches)?;
        let raw = raw_settings(&matches);
        Ok((cli, raw))
    }

    pub fn selected(&self) -> Command {
        match &self.command {
            CliCommand::ValidateChangesCollection(_) => Command::ValidateChangesCollection,
            CliCommand::UptakeHealth(_) => Command::UptakeHealth,
            CliCommand::BlockpagesGenerator(_) => Command::BlockpagesGenerator,
            CliCommand::BackportRecords(_) => Command::BackportRecords,
            CliCommand::RefreshSignature(_) => Command::RefreshSignature,
            CliCommand::ConsistencyChecks(_) => Command::ConsistencyChecks,
            CliCommand::ValidateSignature(_) => Command::ValidateSignature,
        }
    }
}

/// The settings a run of `command` takes from the environment alone, as if started without flags:
/// what Lambda mode starts from before the event's keys.
pub fn env_settings(command: Command) -> Result<RawSettings, clap::Error> {
    let matches = <Cli as CommandFactory>::command()
        .try_get_matches_from(["remote-settings-lambdas", command.name()])?;
    Ok(raw_settings(&matches))
}

/// Stage one of configuration: every argument backed by an environment variable, from the flag or
/// the environment, keyed by the variable's name. Arguments without a variable are CLI-only.
fn raw_settings(matches: &ArgMatches) -> RawSettings {
    let mut raw = RawSettings::new();
    let cli = <Cli as CommandFactory>::command();
    let mut collect = |command: &clap::Command, matches: &ArgMatches| {
        for arg in command.get_arguments() {
            let (Some(env), id) = (arg.get_env(), arg.get_id().as_str()) else {
                continue;
            };
            if let Ok(Some(value)) = matches.try_get_one::<String>(id) {
                raw.set(&env.to_string_lossy(), value.clone());
            }
        }
    };
    collect(&cli, matches);
    if let Some((name, sub_matches)) = matches.subcommand() {
        if let Some(sub) = cli.find_subcommand(name) {
            collect(sub, sub_matches);
        }
    }
    if matches.get_flag("json") {
        raw.set("OUTPUT", "json");
    }
    raw
}

/// The message for an unknown command: names it and lists the commands, one per line.
pub fn unknown_command_message(name: &str) -> String {
    let mut msg = format!("error: unknown command '{name}'\n\nCommands:\n");
    for c in Command::ALL {
        msg.push_str(&format!("  {:<30} {}\n", c.name(), c.about()));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings of a command line (program name first).
    fn settings_of<const N: usize>(args: [&str; N]) -> RawSettings {
        let matches = <Cli as CommandFactory>::command()
            .try_get_matches_from(args)
            .unwrap();
        raw_settings(&matches)
    }

    #[test]
    fn cli_is_well_formed() {
        <Cli as CommandFactory>::command().debug_assert();
    }

    #[test]
    fn every_command_is_a_subcommand_with_its_about() {
        let cli = <Cli as CommandFactory>::command();
        for c in Command::ALL {
            let sub = cli
                .find_subcommand(c.name())
                .unwrap_or_else(|| panic!("{} missing from the CLI", c.name()));
            assert_eq!(
                sub.get_about().map(|a| a.to_string()).as_deref(),
                Some(c.about())
            );
            assert!(sub
                .get_all_aliases()
                .any(|a| a == c.name().replace('_', "-")));
        }
        assert_eq!(
            cli.get_subcommands()
                .filter(|s| s.get_name() != "help")
                .count(),
            Command::ALL.len()
        );
    }

    #[test]
    fn blockpages_switches_work_with_or_without_a_value() {
        let raw = settings_of([
            "remote-settings-lambdas",
            "blockpages_generator",
            "--delete-stale",
            "--dry-run=0",
            "--addons-collection",
            "a",
        ]);
        assert_eq!(raw.get("DELETE_STALE"), Some("1"));
        assert_eq!(raw.get("DRY_RUN"), Some("0"));
        assert_eq!(raw.get("ADDONS_COLLECTION"), Some("a"));
    }

    #[test]
    fn flags_become_settings_named_by_their_variables() {
        let raw = settings_of([
            "remote-settings-lambdas",
            "validate_changes_collection",
            "--bucket",
            "b",
            "--server=http://h/v1",
            "--parallel-requests",
            "7",
            "--json",
        ]);
        assert_eq!(raw.get("BUCKET"), Some("b"));
        assert_eq!(raw.get("SERVER"), Some("http://h/v1"));
        assert_eq!(raw.get("PARALLEL_REQUESTS"), Some("7"));
        assert_eq!(raw.get("OUTPUT"), Some("json"));
        assert_eq!(raw.get("COLLECTION"), None);
    }

    #[test]
    fn the_explain_flag_is_the_verbose_setting() {
        let raw = settings_of([
            "remote-settings-lambdas",
            "uptake_health",
            "--explain",
            "-v",
        ]);
        assert_eq!(raw.get("VERBOSE"), Some("1"));
    }

    #[test]
    fn refresh_signature_flags_include_the_monitor_and_a_bare_dry_run() {
        let raw = settings_of([
            "remote-settings-lambdas",
            "refresh-signature",
            "--collection",
            "c",
            "--dry-run",
            "--max-signature-age=7",
        ]);
        assert_eq!(raw.get("COLLECTION"), Some("c"));
        assert_eq!(raw.get("DRY_RUN"), Some("1"));
        assert_eq!(raw.get("MAX_SIGNATURE_AGE"), Some("7"));
    }

    #[test]
    fn validate_signature_flags_become_their_variables() {
        let raw = settings_of([
            "remote-settings-lambdas",
            "validate-signature",
            "--bucket",
            "b",
            "--root-hash",
            "AA:BB",
            "--signer-name",
            "x.example",
            "--at",
            "1615559719",
        ]);
        assert_eq!(raw.get("BUCKET"), Some("b"));
        assert_eq!(raw.get("ROOT_HASH"), Some("AA:BB"));
        assert_eq!(raw.get("SIGNER_NAME"), Some("x.example"));
        assert_eq!(raw.get("CHECK_AT"), Some("1615559719"));
    }
}
