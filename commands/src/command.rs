//! What a command is: one declaration per command module ([`Command`]), from which the command
//! line, `--help`, the Lambda handler and event keys, Sentry tags, secret scrubbing and the
//! documentation check derive. A module declares itself as a `pub const COMMAND: Command` and
//! implements [`CommandConfig`] for its configuration; the registry in `lib.rs` lists the modules.

use futures::future::LocalBoxFuture;

use crate::report::Report;
use crate::settings::{shared, RawSettings, Setting, SettingError};
use crate::{CommandError, Context};

/// How a command's configuration is built from the settings, and how it runs.
pub trait CommandConfig: Sized {
    type Report: Report + 'static;
    /// The threads its runs do their I/O on ([`runtime`]).
    const THREADS: Threads = Threads::PerCore;
    fn from_settings(raw: &RawSettings) -> Result<Self, SettingError>;
    fn run(
        &self,
        ctx: &Context,
    ) -> impl std::future::Future<Output = Result<Self::Report, CommandError>>;
}

/// A run in progress: the report, or the error that stopped it.
pub type RunFuture<'a> = LocalBoxFuture<'a, Result<Box<dyn Report>, CommandError>>;

/// What the registry calls: a command's configuration step alone, and the whole run.
#[derive(Clone, Copy)]
pub struct Runs {
    /// [`CommandConfig::THREADS`].
    pub threads: Threads,
    pub configure: fn(&RawSettings) -> Result<(), SettingError>,
    pub start: for<'a> fn(&'a RawSettings, &'a Context) -> RunFuture<'a>,
}

impl Runs {
    /// The runs of the command whose configuration is `C`.
    pub const fn of<C: CommandConfig>() -> Runs {
        Runs {
            threads: C::THREADS,
            configure: configure::<C>,
            start: start::<C>,
        }
    }
}

fn configure<C: CommandConfig>(raw: &RawSettings) -> Result<(), SettingError> {
    Context::from_settings(raw, false)?;
    C::from_settings(raw).map(drop)
}

/// Validate the settings into `C`, then run it.
fn start<'a, C: CommandConfig>(raw: &'a RawSettings, ctx: &'a Context) -> RunFuture<'a> {
    Box::pin(async move {
        let config = C::from_settings(raw)?;
        let report = config.run(ctx).await?;
        Ok(Box::new(report) as Box<dyn Report>)
    })
}

/// The threads a command's runs do their I/O on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// tokio's worker threads, one per core, beside the thread that runs the command.
    PerCore,
    /// The thread that runs the command, alone (a current-thread runtime): the tasks hyper
    /// spawns for connections hand their bytes to the command without waking another thread.
    /// For commands whose CPU work is light or on the blocking pool.
    CommandThread,
}

/// The tokio runtime for `threads`.
pub fn runtime(threads: Threads) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        Threads::PerCore => tokio::runtime::Builder::new_multi_thread(),
        Threads::CommandThread => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().build()
}

/// One command, declared once.
pub struct Command {
    /// The original lambda's name (`validate_signature`); the kebab-case form is an alias.
    pub name: &'static str,
    pub about: &'static str,
    /// The Lambda `errorType` of a run that found problems (exit 1).
    pub problems_error_type: &'static str,
    /// It needs a writer server (one with the signer's capabilities and write access).
    pub writer: bool,
    /// The shared groups it takes besides the global settings (`shared::MONITOR`, ...).
    pub groups: &'static [&'static [&'static Setting]],
    /// Its own settings.
    pub settings: &'static [&'static Setting],
    /// The server its Sentry events are tagged with (the Kinto server unless said otherwise).
    pub server_tag: fn(&RawSettings) -> String,
    /// `Runs::of::<Config>()`.
    pub runs: Runs,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Command {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Command {
    /// The tokio runtime its runs go on ([`runtime`] for its threads).
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        runtime(self.runs.threads)
    }

    /// Every setting a run of this command may read: the global ones, its groups', its own.
    pub fn all_settings(&self) -> Vec<&'static Setting> {
        let mut all: Vec<&'static Setting> = shared::GLOBAL.to_vec();
        for group in self.groups {
            all.extend_from_slice(group);
        }
        all.extend_from_slice(self.settings);
        all
    }

    /// The Kinto server, for Sentry tags (never fails: a bad value is reported by the run).
    pub fn kinto_server_tag(raw: &RawSettings) -> String {
        raw.server_url(&shared::SERVER)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| "(invalid)".into())
    }

    /// Validate the settings, build the run's HTTP client, and run the command (`progress`:
    /// draw progress bars on stderr).
    pub async fn run(
        &'static self,
        raw: &RawSettings,
        progress: bool,
    ) -> Result<Box<dyn Report>, CommandError> {
        raw.check_control_characters()?;
        #[cfg(debug_assertions)]
        debug_panic(raw).await;
        let ctx = Context::from_settings(raw, progress)?;
        (self.runs.start)(raw, &ctx).await
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
            raw.get(&shared::SERVER).unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn each_command_runs_on_its_own_threads() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        for command in crate::COMMANDS {
            let runtime = command.runtime().unwrap();
            let threads = (
                runtime.handle().runtime_flavor(),
                runtime.metrics().num_workers(),
            );
            let expected = match command.name {
                // Downloads only: its CPU work is on the blocking pool.
                "validate_signature" => (RuntimeFlavor::CurrentThread, 1),
                // Downloads, each hashed as it arrives.
                "attachments_integrity" => (RuntimeFlavor::CurrentThread, 1),
                _ => (RuntimeFlavor::MultiThread, cores),
            };
            assert_eq!(threads, expected, "{}", command.name);
        }
    }
}
