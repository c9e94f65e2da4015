//! The command line. House rules: every setting is a long flag backed by the original's
//! environment variable (flag wins over env); values stay raw strings here and are validated by
//! the commands crate, so a bad value gets the same one-line error from a flag, the env or a
//! Lambda event. Credentials never show in `--help` (`hide_env_values`).

use clap::{Args, Parser, Subcommand};
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

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Check that monitor/changes timestamps match each collection's records timestamp
    #[command(
        name = "validate_changes_collection",
        alias = "validate-changes-collection"
    )]
    ValidateChangesCollection(MonitorArgs),
}

fn put(raw: &mut RawSettings, name: &str, value: &Option<String>) {
    if let Some(v) = value {
        raw.set(name, v.clone());
    }
}

impl Cli {
    pub fn selected(&self) -> Command {
        match self.command {
            CliCommand::ValidateChangesCollection(_) => Command::ValidateChangesCollection,
        }
    }

    /// Stage one of configuration: the raw values by variable name.
    pub fn raw_settings(&self) -> RawSettings {
        let g = &self.global;
        let mut raw = RawSettings::new();
        put(&mut raw, "SERVER", &g.server);
        put(
            &mut raw,
            "REQUESTS_TIMEOUT_SECONDS",
            &g.requests_timeout_seconds,
        );
        put(&mut raw, "REQUESTS_NB_RETRIES", &g.requests_nb_retries);
        put(
            &mut raw,
            "REQUESTS_RETRY_BACKOFF_SECONDS",
            &g.requests_retry_backoff_seconds,
        );
        put(&mut raw, "PARALLEL_REQUESTS", &g.parallel_requests);
        put(&mut raw, "AUTH", &g.auth);
        put(&mut raw, "SENTRY_DSN", &g.sentry_dsn);
        put(&mut raw, "SENTRY_ENV", &g.sentry_env);
        if g.json {
            raw.set("OUTPUT", "json");
        } else {
            put(&mut raw, "OUTPUT", &g.output);
        }
        match &self.command {
            CliCommand::ValidateChangesCollection(a) => {
                put(&mut raw, "BUCKET", &a.bucket);
                put(&mut raw, "COLLECTION", &a.collection);
            }
        }
        raw
    }
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
    use clap::CommandFactory;

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
}
