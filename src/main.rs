//! `remote-settings-lambdas`: pick the front door (Lambda when `AWS_LAMBDA_RUNTIME_API` is set,
//! else the command line), run the command, and [`finish`] the run in one place: print its report
//! once, report a failure to Sentry once, and exit with the code of the outcome.

#![cfg_attr(not(test), deny(unused_crate_dependencies))]

mod cli;
mod lambda;
mod logger;
mod output;
mod panics;
mod telemetry;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::error::ErrorKind;
use commands::{Command, CommandError, Report};

use output::{Ending, Format};
use telemetry::Telemetry;

fn main() -> ExitCode {
    panics::install_hook();
    // Anything that panics outside a command run (which `panics::guarded` catches) still ends
    // with one line and exit 3, not Rust's default 101.
    match std::panic::catch_unwind(cli_or_lambda) {
        Ok(code) => code,
        Err(payload) => {
            eprintln!("error: {}", panics::caught(payload.as_ref(), &[]));
            ExitCode::from(3)
        }
    }
}

fn cli_or_lambda() -> ExitCode {
    // Decided first: Lambda starts `bootstrap` without arguments, and its runtime library panics
    // without Lambda's variables.
    if let Some(api) = lambda::runtime_api() {
        return lambda::serve(&api);
    }
    let cli::Invocation {
        command,
        settings: raw,
        verbose,
    } = match cli::parse() {
        Ok(invocation) => invocation,
        Err(err) => return clap_error(err),
    };
    logger::init(verbose);
    let server = (command.server_tag)(&raw);

    let (format, telemetry) = match (Format::from_settings(&raw), Telemetry::init(&raw)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(commands::report::Exit::Usage.code());
        }
    };
    let progress = format == Format::Text && std::io::stderr().is_terminal();

    sentry::configure_scope(|scope| telemetry::tag_run(scope, command, &server));

    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let secrets = raw.secret_values();
    let result = runtime.block_on(panics::guarded(command.run(&raw, progress), &secrets));
    let ending = finish(
        format,
        &telemetry,
        command,
        &server,
        &result,
        started.elapsed(),
    );
    ExitCode::from(ending.exit.code())
}

/// How every run ends, from either front door: the ending (exit code, message), the report on
/// stdout and the error line on stderr, and the run's Sentry events (the failure's, or the
/// report's alerts; a panic's own event was captured when it happened), flushed before returning.
pub(crate) fn finish(
    format: Format,
    telemetry: &Telemetry,
    command: &'static Command,
    server: &str,
    result: &Result<Box<dyn Report>, CommandError>,
    elapsed: Duration,
) -> Ending {
    let ending = Ending::from_result(command, result);
    output::emit(format, command, server, result, &ending, elapsed);
    if !matches!(result, Err(CommandError::Panic(_))) {
        telemetry.report_run(&ending);
    }
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
