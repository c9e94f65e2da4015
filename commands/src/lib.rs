//! The Remote Settings operation commands and what they share: settings, secrets, the HTTP
//! client, the Kinto protocol, reports and progress. Each command module declares itself once
//! (`pub const COMMAND: Command`, see [`command`]); [`COMMANDS`] is the registry.

#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod attachment;
pub mod buffers;
pub mod client;
pub mod collection_patterns;
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
pub mod sources;
pub mod store;

pub use command::Command;
pub use error::CommandError;
pub use report::{Alert, Failure, Outcome, Report};
pub use settings::{RawSettings, SettingError};

/// What every command run gets besides its own configuration: the run's one HTTP client, built
/// once from the shared HTTP settings (see [`Command::run`]), of which commands take views.
#[derive(Debug, Clone)]
pub struct Context {
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// The run's client: no credentials, Kinto's retry policy; its views share its in-flight cap.
    pub http: client::HttpClient,
}

impl Context {
    pub fn new(progress: bool, http: client::HttpClient) -> Self {
        Context { progress, http }
    }

    /// The run's context: its client built from the shared HTTP settings (`REQUESTS_*`,
    /// `PARALLEL_REQUESTS`; a bad value is a settings error naming it).
    pub fn from_settings(raw: &RawSettings, progress: bool) -> Result<Self, SettingError> {
        let settings = settings::HttpSettings::from_settings(raw)?;
        let http = client::HttpClient::new(client::Limits {
            timeout: settings.timeout,
            retries: settings.retries,
            retry_backoff: settings.retry_backoff,
            parallel: settings.parallel,
        });
        Ok(Context::new(progress, http))
    }

    /// The run's client on the Kinto server, with the command's credentials for it.
    pub fn kinto(&self, server: &settings::ServerSettings) -> kinto::Kinto {
        kinto::Kinto::new(&self.http, &server.url, server.auth.as_ref())
    }
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
    monitor_coverage,
    server_compare,
    backported_records,
    certificates_expiration,
    signatures_age,
    work_in_progress,
    attachments_integrity,
    purge_history,
    build_bundles,
    expire_orphan_attachments,
}

/// Find a command by its name, its kebab-case alias, or a Lambda handler name
/// (`aws_lambda.validate_changes_collection`).
pub fn find_command(name: &str) -> Option<&'static Command> {
    let name = name.trim();
    let name = name.strip_prefix("aws_lambda.").unwrap_or(name);
    let normalized = name.replace('-', "_");
    COMMANDS.iter().copied().find(|c| c.name == normalized)
}
