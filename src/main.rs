//! `remote-settings-lambdas`: pick the front door (Lambda when `AWS_LAMBDA_RUNTIME_API` is set,
//! else the command line), run the command, and [`finish`] the run in one place: print its report
//! once, report a failure to Sentry once, end the run's Crons check-in, and exit with the code of
//! the outcome.

#![cfg_attr(not(test), deny(unused_crate_dependencies))]

mod cli;
mod lambda;
mod logger;
mod memory;
mod output;
mod panics;
mod telemetry;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::error::ErrorKind;
use commands::{Command, CommandError, Report};

use output::{Ending, Format};
use telemetry::{CheckIn, Telemetry};

fn main() -> ExitCode {
    memory::tune();
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

    let usage = |e: commands::SettingError| {
        eprintln!("error: {e}");
        ExitCode::from(commands::report::Exit::Usage.code())
    };
    let telemetry = match Telemetry::init(&raw) {
        Ok(telemetry) => telemetry,
        Err(e) => return usage(e),
    };
    let format = match Format::from_settings(&raw) {
        Ok(format) => format,
        Err(e) => {
            telemetry.check_in_refused_settings();
            return usage(e);
        }
    };
    let progress = format == Format::Text && std::io::stderr().is_terminal();

    sentry::configure_scope(|scope| telemetry::tag_run(scope, command, &server));

    let check_in = telemetry.check_in();
    let started = Instant::now();
    let runtime = command.runtime().expect("the tokio runtime starts");
    let secrets = raw.secret_values();
    let result = runtime.block_on(panics::guarded(command.run(&raw, progress), &secrets));
    let ending = finish(
        format,
        &telemetry,
        check_in,
        command,
        &server,
        &result,
        started.elapsed(),
    );
    ExitCode::from(ending.exit.code())
}

/// How every run ends, from either front door: the ending (exit code, message), the report on
/// stdout and the error line on stderr, the run's Sentry events (the failure's, or the report's
/// alerts; a panic's own event was captured when it happened) and the end of its Crons check-in,
/// flushed before returning.
pub(crate) fn finish(
    format: Format,
    telemetry: &Telemetry,
    check_in: CheckIn,
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
    check_in.finish(ending.exit);
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
