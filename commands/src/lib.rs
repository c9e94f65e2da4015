//! The Remote Settings operation commands and what they share: settings, the Kinto client,
//! reports and progress. Each command module exposes `Config::from_settings` and
//! `run(&config, &ctx) -> Result<Report>`; [`Command`] lists the implemented ones.

pub mod client;
pub mod error;
pub mod kinto;
pub mod progress;
pub mod report;
pub mod settings;
pub mod signature;
pub mod validate_changes_collection;
pub mod validate_signature;

pub use error::CommandError;
pub use report::{Failure, Outcome, Report};
pub use settings::{RawSettings, SettingError};

/// What every command run gets besides its own configuration.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Draw progress bars on stderr.
    pub progress: bool,
}

/// The implemented commands, named as the original lambdas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    ValidateChangesCollection,
    ValidateSignature,
}

impl Command {
    pub const ALL: &'static [Command] = &[
        Command::ValidateChangesCollection,
        Command::ValidateSignature,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Command::ValidateChangesCollection => "validate_changes_collection",
            Command::ValidateSignature => "validate_signature",
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Command::ValidateChangesCollection => {
                "Check that monitor/changes timestamps match each collection's records timestamp"
            }
            Command::ValidateSignature => {
                "Verify the content signature and certificate chain of every published collection"
            }
        }
    }

    /// Find a command by its name, its kebab-case alias, or a Lambda handler name
    /// (`aws_lambda.validate_changes_collection`).
    pub fn from_name(name: &str) -> Option<Command> {
        let name = name.trim();
        let name = name.strip_prefix("aws_lambda.").unwrap_or(name);
        let normalized = name.replace('-', "_");
        Command::ALL
            .iter()
            .copied()
            .find(|c| c.name() == normalized)
    }

    /// The server the command talks to, for Sentry tags (never fails: a bad value is reported
    /// by the run itself).
    pub fn server_tag(self, raw: &RawSettings) -> String {
        raw.server_url("SERVER", settings::DEFAULT_SERVER)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| "(invalid)".into())
    }

    /// Validate the settings and run the command.
    pub async fn run(
        self,
        raw: &RawSettings,
        ctx: &Context,
    ) -> Result<Box<dyn Report>, CommandError> {
        match self {
            Command::ValidateChangesCollection => {
                let config = validate_changes_collection::Config::from_settings(raw)?;
                Ok(Box::new(
                    validate_changes_collection::run(&config, ctx).await?,
                ))
            }
            Command::ValidateSignature => {
                let config = validate_signature::Config::from_settings(raw)?;
                Ok(Box::new(validate_signature::run(&config, ctx).await?))
            }
        }
    }
}
