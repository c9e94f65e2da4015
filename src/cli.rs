//! The command line, derived from the commands' declarations. House rules: every setting is a long
//! flag backed by its environment variable (flag wins over env), the global settings are global
//! flags, `--help` shows each setting's real default, and credentials never show in `--help`
//! (`hide_env_values`). Values stay raw strings here and are validated by the commands crate, so a
//! bad value gets the same one-line error from a flag, the env or a Lambda event.

use clap::{Arg, ArgAction, ArgMatches};
use commands::command::Command;
use commands::settings::{shared, Setting, Shape};
use commands::{RawSettings, COMMANDS};

const AFTER_HELP: &str = "Exit codes: 0 all good, 1 the check found problems, 2 usage or configuration error, 3 runtime failure.";

/// What the command line asked for.
pub struct Invocation {
    pub command: &'static Command,
    pub settings: RawSettings,
    /// `-v` count.
    pub verbose: u8,
}

/// The clap command tree: one subcommand per declared command.
pub fn clap_command() -> clap::Command {
    let mut cli = clap::Command::new("remote-settings-lambdas")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Operate a Mozilla Remote Settings service (Kinto with the signer and changes plugins).")
        .arg_required_else_help(true)
        .subcommand_required(true)
        .after_help(AFTER_HELP);
    for setting in shared::GLOBAL {
        cli = cli.arg(setting_arg(setting).global(true));
    }
    cli = cli
        .arg(
            Arg::new("json")
                .long("json")
                .global(true)
                .action(ArgAction::SetTrue)
                .help("Print one JSON document instead of the text report (same as OUTPUT=json)"),
        )
        .arg(
            Arg::new("verbose")
                .short('v')
                .long("verbose")
                .global(true)
                .action(ArgAction::Count)
                .help("More logs on stderr (-v info, -vv debug); RUST_LOG=<level> works too"),
        );
    for command in COMMANDS {
        cli = cli.subcommand(subcommand(command));
    }
    cli
}

fn subcommand(command: &'static Command) -> clap::Command {
    let mut sub = clap::Command::new(command.name)
        .alias(command.name.replace('_', "-"))
        .about(command.about);
    for group in command.groups {
        for setting in *group {
            sub = sub.arg(setting_arg(setting));
        }
    }
    for setting in command.settings {
        sub = sub.arg(setting_arg(setting));
    }
    sub
}

/// One setting as a flag: its id is its variable's name.
fn setting_arg(setting: &'static Setting) -> Arg {
    use commands::settings::declare::Default;
    let help = match setting.default {
        Default::Unset => setting.help.to_string(),
        Default::Value(value) | Default::Derived(value) => {
            format!("{} [default: {value}]", setting.help)
        }
    };
    let mut arg = Arg::new(setting.env)
        .long(setting.long_flag())
        .env(setting.env)
        .value_name(setting.value_name)
        .help(help)
        .hide_env_values(setting.secret)
        .hide(setting.hidden)
        .action(ArgAction::Set);
    if setting.shape == Shape::Switch {
        arg = arg.num_args(0..=1).default_missing_value("1");
    }
    arg
}

/// Parse the command line (and the environment variables behind the flags).
pub fn parse() -> Result<Invocation, clap::Error> {
    invocation(clap_command().try_get_matches()?)
}

fn invocation(matches: ArgMatches) -> Result<Invocation, clap::Error> {
    let Some((name, sub_matches)) = matches.subcommand() else {
        return Err(clap_command().error(
            clap::error::ErrorKind::MissingSubcommand,
            "a command is required",
        ));
    };
    let command = commands::find_command(name).expect("clap knows only declared commands");
    let mut settings = RawSettings::declaring(command.all_settings());
    collect(&matches, &mut settings);
    collect(sub_matches, &mut settings);
    if matches.get_flag("json") || sub_matches.get_flag("json") {
        settings.set(shared::OUTPUT.env, "json");
    }
    let verbose = matches
        .get_count("verbose")
        .max(sub_matches.get_count("verbose"));
    Ok(Invocation {
        command,
        settings,
        verbose,
    })
}

/// Stage one of configuration: every setting from its flag or the environment, keyed by its
/// variable's name.
fn collect(matches: &ArgMatches, settings: &mut RawSettings) {
    for id in matches.ids() {
        if let Ok(Some(value)) = matches.try_get_one::<String>(id.as_str()) {
            settings.set(id.as_str(), value.clone());
        }
    }
}

/// The settings a run of `command` takes from the environment alone, as if started without flags:
/// what Lambda mode starts from before the event's keys.
pub fn env_settings(command: &'static Command) -> Result<RawSettings, clap::Error> {
    let matches = clap_command().try_get_matches_from(["remote-settings-lambdas", command.name])?;
    Ok(invocation(matches)?.settings)
}

/// The message for an unknown command: names it and lists the commands, one per line.
pub fn unknown_command_message(name: &str) -> String {
    let mut msg = format!("error: unknown command '{name}'\n\nCommands:\n");
    for c in COMMANDS {
        msg.push_str(&format!("  {:<30} {}\n", c.name, c.about));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings of a command line (program name first).
    fn settings_of<const N: usize>(args: [&str; N]) -> RawSettings {
        invocation(clap_command().try_get_matches_from(args).unwrap())
            .unwrap()
            .settings
    }

    fn get<'a>(raw: &'a RawSettings, name: &str) -> Option<&'a str> {
        assert!(
            raw.declared().iter().any(|s| s.env == name),
            "{name} is not declared"
        );
        raw.value_of(name)
    }

    #[test]
    fn cli_is_well_formed() {
        clap_command().debug_assert();
    }

    #[test]
    fn every_command_is_a_subcommand_with_its_about_and_alias() {
        let cli = clap_command();
        for c in COMMANDS {
            let sub = cli
                .find_subcommand(c.name)
                .unwrap_or_else(|| panic!("{} missing from the CLI", c.name));
            assert_eq!(
                sub.get_about().map(|a| a.to_string()).as_deref(),
                Some(c.about)
            );
            assert!(sub.get_all_aliases().any(|a| a == c.name.replace('_', "-")));
        }
    }

    #[test]
    fn help_shows_the_real_defaults() {
        let mut cli = clap_command();
        let help = cli.render_long_help().to_string();
        assert!(help.contains("[default: 4]"), "{help}");
        let sub = cli.find_subcommand_mut("refresh_signature").unwrap();
        let help = sub.render_long_help().to_string();
        assert!(help.contains("[default: 0]"), "{help}");
        assert!(help.contains("[default: monitor]"), "{help}");
    }

    #[test]
    fn credentials_values_never_show_in_help() {
        std::env::set_var("REFRESH_SIGNATURE_AUTH", "user:help-m4rker");
        let mut cli = clap_command();
        let help = cli
            .find_subcommand_mut("refresh_signature")
            .unwrap()
            .render_long_help()
            .to_string();
        std::env::remove_var("REFRESH_SIGNATURE_AUTH");
        assert!(help.contains("REFRESH_SIGNATURE_AUTH"), "{help}");
        assert!(!help.contains("help-m4rker"), "{help}");
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
        assert_eq!(get(&raw, "DELETE_STALE"), Some("1"));
        assert_eq!(get(&raw, "DRY_RUN"), Some("0"));
        assert_eq!(get(&raw, "ADDONS_COLLECTION"), Some("a"));
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
        assert_eq!(get(&raw, "BUCKET"), Some("b"));
        assert_eq!(get(&raw, "SERVER"), Some("http://h/v1"));
        assert_eq!(get(&raw, "PARALLEL_REQUESTS"), Some("7"));
        assert_eq!(get(&raw, "OUTPUT"), Some("json"));
        assert_eq!(get(&raw, "COLLECTION"), None);
    }

    #[test]
    fn the_explain_flag_is_the_verbose_setting() {
        let raw = settings_of([
            "remote-settings-lambdas",
            "uptake_health",
            "--explain",
            "-v",
        ]);
        assert_eq!(get(&raw, "VERBOSE"), Some("1"));
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
        assert_eq!(get(&raw, "COLLECTION"), Some("c"));
        assert_eq!(get(&raw, "DRY_RUN"), Some("1"));
        assert_eq!(get(&raw, "MAX_SIGNATURE_AGE"), Some("7"));
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
        assert_eq!(get(&raw, "BUCKET"), Some("b"));
        assert_eq!(get(&raw, "ROOT_HASH"), Some("AA:BB"));
        assert_eq!(get(&raw, "SIGNER_NAME"), Some("x.example"));
        assert_eq!(get(&raw, "CHECK_AT"), Some("1615559719"));
    }

    #[test]
    fn backport_flags_keep_their_short_names() {
        let raw = settings_of([
            "remote-settings-lambdas",
            "backport_records",
            "--source-auth",
            "u:p",
            "--source-bucket",
            "b",
            "--mappings",
            "a/b -> c/d",
        ]);
        assert_eq!(get(&raw, "BACKPORT_RECORDS_SOURCE_AUTH"), Some("u:p"));
        assert_eq!(get(&raw, "BACKPORT_RECORDS_SOURCE_BUCKET"), Some("b"));
        assert_eq!(get(&raw, "BACKPORT_RECORDS_MAPPINGS"), Some("a/b -> c/d"));
    }
}
