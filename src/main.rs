//! `remote-settings-lambdas`: pick the front door (Lambda when `AWS_LAMBDA_RUNTIME_API` is set,
//! else the command line), run the command, and [`finish`] the run in one place: print its report
//! once, report a failure to Sentry once, and exit with the code of the outcome.

mod cli;
mod lambda;
mod logger;
mod output;
mod telemetry;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::error::ErrorKind;
use commands::{Command, CommandError, Context, Report};

use output::{Ending, Format};
use telemetry::Telemetry;

fn main() -> ExitCode {
    // Decided first: Lambda starts `bootstrap` without arguments, and its runtime library panics
    // without Lambda's variables.
    if let Some(api) = lambda::runtime_api() {
        return lambda::serve(&api);
    }
    let (cli, raw) = match cli::Cli::try_parse_with_settings() {
        Ok(parsed) => parsed,
        Err(err) => return clap_error(err),
    };
    logger::init(cli.global.verbose);
    let command = cli.selected();
    let server = command.server_tag(&raw);

    let (format, telemetry) = match (Format::from_settings(&raw), Telemetry::init(&raw)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let ctx = Context {
        progress: format == Format::Text && std::io::stderr().is_terminal(),
    };

    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let result = runtime.block_on(command.run(&raw, &ctx));
    let ending = finish(
        format,
        &telemetry,
        command,
        &server,
        &result,
        started.elapsed(),
    );
    ExitCode::from(ending.exit_code)
}

/// How every run ends, from either front door: the ending (exit code, message), the report on
/// stdout and the error line on stderr, and the run's Sentry events (the failure's, or the
/// report's alerts), flushed before returning.
pub(crate) fn finish(
    format: Format,
    telemetry: &Telemetry,
    command: Command,
    server: &str,
    result: &Result<Box<dyn Report>, CommandError>,
    elapsed: Duration,
) -> Ending {
    let ending = Ending::from_result(result);
    output::emit(format, command, server, result, &ending, elapsed);
    telemetry.report_run(command, server, &ending);
    telemetry.flush();
    ending
}

/// Usage errors exit 2 with clap's message; an unknown command is named and the commands listed.
fn clap_error(err: clap::Error) -> ExitCode {
    if err.kind() == ErrorKind::InvalidSubcommand {
        if let Some(clap::error::ContextValue::String(name)) =
            err.get(clap::error::ContextKind::InvalidSubcommand)
        {
            eprint!("{}", cli::unknown_command_message(name));
            return ExitCode::from(2);
        }
    }
    let code = err.exit_code();
    let _ = err.print();
    ExitCode::from(code.clamp(0, 255) as u8)
}
