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
    /// Check that monitor/changes timestamps match each collection's records timestamp
    #[command(
        name = "validate_changes_collection",
        alias = "validate-changes-collection"
    )]
    ValidateChangesCollection(MonitorArgs),
    /// Verify the content signature and certificate chain of every published collection
    #[command(name = "validate_signature", alias = "validate-signature")]
    ValidateSignature(ValidateSignatureArgs),
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
        let name = match &self.command {
            CliCommand::ValidateChangesCollection(_) => "validate_changes_collection",
            CliCommand::ValidateSignature(_) => "validate_signature",
        };
        Command::from_name(name).expect("every CLI subcommand is a Command")
    }
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
    fn flags_become_settings_named_by_their_variables() {
        let matches = <Cli as CommandFactory>::command()
            .try_get_matches_from([
                "remote-settings-lambdas",
                "validate_changes_collection",
                "--bucket",
                "b",
                "--server=http://h/v1",
                "--parallel-requests",
                "7",
                "--json",
            ])
            .unwrap();
        let raw = raw_settings(&matches);
        assert_eq!(raw.get("BUCKET"), Some("b"));
        assert_eq!(raw.get("SERVER"), Some("http://h/v1"));
        assert_eq!(raw.get("PARALLEL_REQUESTS"), Some("7"));
        assert_eq!(raw.get("OUTPUT"), Some("json"));
        assert_eq!(raw.get("COLLECTION"), None);
    }

    #[test]
    fn validate_signature_flags_become_their_variables() {
        let matches = <Cli as CommandFactory>::command()
            .try_get_matches_from([
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
            ])
            .unwrap();
        let raw = raw_settings(&matches);
        assert_eq!(raw.get("BUCKET"), Some("b"));
        assert_eq!(raw.get("ROOT_HASH"), Some("AA:BB"));
        assert_eq!(raw.get("SIGNER_NAME"), Some("x.example"));
        assert_eq!(raw.get("CHECK_AT"), Some("1615559719"));
    }
}
