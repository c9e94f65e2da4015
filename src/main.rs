//! `remote-settings-lambdas`: parse, pick the front door, run the command, print its report once,
//! report a failure to Sentry once, and exit with the code of the outcome.

mod cli;
mod logger;
mod output;
mod telemetry;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use clap::error::ErrorKind;
use commands::Context;

use output::{Ending, Format};
use telemetry::Telemetry;

fn main() -> ExitCode {
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
    let ending = Ending::from_result(&result);
    output::emit(
        format,
        command,
        &server,
        &result,
        &ending,
        started.elapsed(),
    );
    telemetry.report_run(command, &server, &ending);
    telemetry.flush();
    ExitCode::from(ending.exit_code)
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
