//! The error a command run ends with, when it ends without a report. Each kind maps to one exit
//! code and one Lambda `errorType`; the check results themselves (exit 1) are in the report.

use crate::client::ClientError;
use crate::report::Exit;
use crate::settings::SettingError;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A bad setting: exit 2, nothing sent.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The command cannot run against this server or with these inputs (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A request failed after retries: exit 3.
    #[error(transparent)]
    Http(#[from] ClientError),
    /// Anything else that stopped the run: exit 3.
    #[error("{0}")]
    Runtime(String),
    /// A bug: the run panicked (the message is one line, without credentials): exit 3.
    #[error("{0}")]
    Panic(String),
}

impl CommandError {
    pub fn exit(&self) -> Exit {
        match self {
            CommandError::Setting(_) | CommandError::Usage(_) => Exit::Usage,
            CommandError::Http(_) | CommandError::Runtime(_) | CommandError::Panic(_) => {
                Exit::Incomplete
            }
        }
    }

    /// A stable code for JSON output and the Lambda `errorType`.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::Setting(_) => "ConfigError",
            CommandError::Usage(_) => "UsageError",
            CommandError::Http(_) => "HttpError",
            CommandError::Runtime(_) => "RuntimeError",
            CommandError::Panic(_) => "Panic",
        }
    }
}
