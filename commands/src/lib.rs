//! The Remote Settings operation commands and what they share: settings, secrets, the HTTP
//! client, the Kinto protocol, reports and progress. Each command module declares itself once
//! (`pub const COMMAND: Command`, see [`command`]); [`COMMANDS`] is the registry.

#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod client;
pub mod command;
pub mod error;
pub mod json;
pub mod kinto;
pub mod monitored;
pub mod progress;
pub mod report;
pub mod secrets;
pub mod settings;
pub mod signature;

pub use command::Command;
pub use error::CommandError;
pub use report::{Alert, Failure, Outcome, Report};
pub use settings::{RawSettings, SettingError};

/// What every command run gets besides its own configuration.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Draw progress bars on stderr.
    pub progress: bool,
}

/// The registry: each line names a command module, which declares its `COMMAND`.
macro_rules! registry {
    ($($module:ident),* $(,)?) => {
        $(pub mod $module;)*
        /// Every command, in the order `--help` lists them.
        pub const COMMANDS: &[&Command] = &[$(&$module::COMMAND),*];
    };
}

registry! {
    validate_signature,
    refresh_signature,
    consistency_checks,
    backport_records,
    validate_changes_collection,
    blockpages_generator,
    uptake_health,
    attachments_integrity,
}

/// Find a command by its name, its kebab-case alias, or a Lambda handler name
/// (`aws_lambda.validate_changes_collection`).
pub fn find_command(name: &str) -> Option<&'static Command> {
    let name = name.trim();
    let name = name.strip_prefix("aws_lambda.").unwrap_or(name);
    let normalized = name.replace('-', "_");
    COMMANDS.iter().copied().find(|c| c.name == normalized)
}
