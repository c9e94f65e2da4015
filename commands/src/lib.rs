//! The Remote Settings operation commands and what they share: settings, the Kinto client,
//! reports and progress. Each command module exposes `Config::from_settings` and
//! `run(&config, &ctx) -> Result<Report>`; [`Command`] lists the implemented ones.

pub mod backport_records;
pub mod blockpages_generator;
pub mod client;
pub mod consistency_checks;
pub mod error;
pub mod json;
pub mod kinto;
pub mod progress;
pub mod refresh_signature;
pub mod report;
pub mod settings;
pub mod signature;
pub mod uptake_health;
pub mod validate_changes_collection;
pub mod validate_signature;

pub use error::CommandError;
pub use report::{Alert, Failure, Outcome, Report};
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
    ValidateSignature,
    RefreshSignature,
    ConsistencyChecks,
    BackportRecords,
    ValidateChangesCollection,
    BlockpagesGenerator,
    UptakeHealth,
}

impl Command {
    pub const ALL: &'static [Command] = &[
        Command::ValidateSignature,
        Command::RefreshSignature,
        Command::ConsistencyChecks,
        Command::BackportRecords,
        Command::ValidateChangesCollection,
        Command::BlockpagesGenerator,
        Command::UptakeHealth,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Command::ValidateChangesCollection => "validate_changes_collection",
            Command::UptakeHealth => "uptake_health",
            Command::BlockpagesGenerator => "blockpages_generator",
            Command::BackportRecords => "backport_records",
            Command::RefreshSignature => "refresh_signature",
            Command::ConsistencyChecks => "consistency_checks",
            Command::ValidateSignature => "validate_signature",
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Command::ValidateChangesCollection => {
                "Check that monitor/changes timestamps match each collection's records timestamp"
            }
            Command::UptakeHealth => {
                "Alert when the clients' uptake error rates in Redash telemetry are over threshold"
            }
            Command::BlockpagesGenerator => {
                "Render the add-ons and plugins blocklists as HTML pages and upload them to S3"
            }
            Command::BackportRecords => {
                "Copy record creations, updates and deletions from one collection to another, then ask for signature"
            }
            Command::RefreshSignature => {
                "Re-sign every published collection as it is (writer server)"
            }
            Command::ConsistencyChecks => {
                "Check that source, preview and destination records agree with the review status (writer server)"
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
        if self == Command::UptakeHealth {
            // This command talks to Redash, not to the Kinto server.
            return uptake_health::query_url(raw)
                .map(|u| client::display_url(&u))
                .unwrap_or_else(|_| "(invalid)".into());
        }
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
        raw.check_control_characters()?;
        #[cfg(debug_assertions)]
        debug_panic(raw).await;
        match self {
            Command::ValidateChangesCollection => {
                let config = validate_changes_collection::Config::from_settings(raw)?;
                Ok(Box::new(
                    validate_changes_collection::run(&config, ctx).await?,
                ))
            }
            Command::UptakeHealth => {
                let config = uptake_health::Config::from_settings(raw)?;
                Ok(Box::new(uptake_health::run(&config, ctx).await?))
            }
            Command::BlockpagesGenerator => {
                let config = blockpages_generator::Config::from_settings(raw)?;
                Ok(Box::new(blockpages_generator::run(&config, ctx).await?))
            }
            Command::BackportRecords => {
                let config = backport_records::Config::from_settings(raw)?;
                Ok(Box::new(backport_records::run(&config, ctx).await?))
            }
            Command::RefreshSignature => {
                let config = refresh_signature::Config::from_settings(raw)?;
                Ok(Box::new(refresh_signature::run(&config, ctx).await?))
            }
            Command::ConsistencyChecks => {
                let config = consistency_checks::Config::from_settings(raw)?;
                Ok(Box::new(consistency_checks::run(&config, ctx).await?))
            }
            Command::ValidateSignature => {
                let config = validate_signature::Config::from_settings(raw)?;
                Ok(Box::new(validate_signature::run(&config, ctx).await?))
            }
        }
    }
}

/// Test hook, compiled into debug builds only (the release and Lambda builds do not have it):
/// `RSL_DEBUG_PANIC=run` panics in the run itself, with every credential and `SERVER` in the
/// message (so that tests see them scrubbed); `RSL_DEBUG_PANIC=task` panics in a spawned task whose
/// failure the run then ignores, as a command recovering from a task's `JoinError` would.
#[cfg(debug_assertions)]
async fn debug_panic(raw: &RawSettings) {
    match std::env::var("RSL_DEBUG_PANIC").as_deref() {
        Ok("run") => panic!(
            "RSL_DEBUG_PANIC: a deliberate panic holding {:?} and SERVER {:?}",
            raw.secret_values(),
            raw.get("SERVER").unwrap_or_default()
        ),
        Ok("task") => {
            let secrets = raw.secret_values();
            let task = tokio::spawn(async move {
                panic!("RSL_DEBUG_PANIC: a deliberate panic in a task holding {secrets:?}")
            });
            let _ignored = task.await;
        }
        _ => {}
    }
}
