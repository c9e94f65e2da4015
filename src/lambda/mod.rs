//! The AWS Lambda front door: with `AWS_LAMBDA_RUNTIME_API` set, the binary is a custom runtime's
//! `bootstrap`. The command comes from `_HANDLER` (`validate_changes_collection` or the original's
//! `aws_lambda.validate_changes_collection`); each invocation's event overrides settings
//! ([`event`]), runs the command, and ends through the same `finish` as the CLI: the response is
//! the CLI's `--json` document, a failure is an error whose `errorType` comes from
//! the run's [`output::Ending`]. Sentry is initialised once per process; each invocation gets a fresh
//! scope carrying its request id, and a Crons check-in of its own; events and check-ins are flushed
//! before the response or error is posted.
//! Nothing else outlives an invocation: settings are rebuilt from the environment and the event,
//! and every command builds its client and caches per run.

mod event;

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use commands::command::Threads;
use commands::{Command, CommandError, RawSettings};
use futures::FutureExt;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use sentry::SentryFutureExt;
use serde_json::{json, Value};

use crate::output::{self, Format};
use crate::panics;
use crate::telemetry::{self, Telemetry};

/// Lambda's variables that `lambda_runtime` expects (it panics without them).
const FUNCTION_VARIABLES: [&str; 3] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
];

/// The Runtime API address when running inside Lambda (decides the front door).
pub fn runtime_api() -> Option<String> {
    std::env::var("AWS_LAMBDA_RUNTIME_API")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Serve invocations until the Runtime API goes away. Exits 2 after posting an init error when
/// the handler or the environment is wrong, 3 when the Runtime API fails.
pub fn serve(api: &str) -> ExitCode {
    crate::logger::init(0);
    // The handler's command decides the threads; a wrong handler is reported by the invoker's
    // init, on the default runtime.
    let threads = handler_command().map_or(Threads::PerCore, |command| command.runs.threads);
    let runtime = commands::command::runtime(threads).expect("the tokio runtime starts");
    runtime.block_on(serve_async(api))
}

async fn serve_async(api: &str) -> ExitCode {
    let endpoint = match api.trim().parse::<http::Uri>() {
        Ok(uri) if uri.authority().is_some() => uri,
        _ => {
            eprintln!(
                "error: invalid AWS_LAMBDA_RUNTIME_API: {} is not a host:port",
                commands::settings::quote(api)
            );
            return ExitCode::from(2);
        }
    };
    let invoker = match Invoker::init() {
        Ok(invoker) => Arc::new(invoker),
        Err(diagnostic) => {
            eprintln!("error: {}", diagnostic.error_message);
            if let Err(e) = post_init_error(endpoint, &diagnostic).await {
                eprintln!("error: could not post the init error to the Runtime API: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let invoker = invoker.clone();
        async move { invoker.invoke(event).await }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the Lambda Runtime API failed: {e}");
            ExitCode::from(3)
        }
    }
}

/// What every invocation of this process shares: the command, the environment's settings, the
/// output format of the logs, and Sentry.
struct Invoker {
    command: &'static Command,
    env: RawSettings,
    format: Format,
    telemetry: Telemetry,
}

impl Invoker {
    fn init() -> Result<Invoker, Diagnostic> {
        let command = handler_command()?;
        for name in FUNCTION_VARIABLES {
            if std::env::var(name).map_or(true, |v| v.trim().is_empty()) {
                return Err(config_error(format!(
                    "{name} is not set: Lambda sets it for every function"
                )));
            }
        }
        let env = crate::cli::env_settings(command).map_err(|e| {
            let text = e.to_string();
            config_error(
                text.lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: "),
            )
        })?;
        let telemetry = Telemetry::init(&env).map_err(|e| config_error(e.to_string()))?;
        let format = Format::from_settings(&env).map_err(|e| {
            telemetry.check_in_refused_settings();
            config_error(e.to_string())
        })?;
        log::info!("serving {} invocations", command.name);
        Ok(Invoker {
            command,
            env,
            format,
            telemetry,
        })
    }

    /// One invocation, in a Sentry hub of its own (a fresh scope over the process's client).
    async fn invoke(&self, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
        let (payload, context) = event.into_parts();
        let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::main()));
        let deadline = context.deadline();
        hub.configure_scope(|scope| {
            scope.set_extra("aws_request_id", json!(context.request_id));
            scope.set_extra("function_name", json!(context.env_config.function_name));
            scope.set_extra("function_version", json!(context.env_config.version));
            scope.set_extra("invoked_function_arn", json!(context.invoked_function_arn));
            scope.add_event_processor(move |mut event| {
                let left = deadline
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                event
                    .extra
                    .insert("remaining_time_ms".into(), json!(left.as_millis() as u64));
                Some(event)
            });
        });
        let run = AssertUnwindSafe(self.run(payload))
            .catch_unwind()
            .bind_hub(hub)
            .await;
        run.unwrap_or_else(|panic| {
            // A panic outside the command run (which `run` turns into an error itself). The
            // panic hook has captured it into the invocation's hub; send it before posting.
            self.telemetry.flush();
            let message = panics::caught(panic.as_ref(), &self.env.secret_values());
            eprintln!("error: {message}");
            Err(Diagnostic {
                error_type: "Panic".into(),
                error_message: message,
            })
        })
    }

    async fn run(&self, payload: Value) -> Result<Value, Diagnostic> {
        let check_in = self.telemetry.check_in();
        let started = Instant::now();
        let settings = event::settings(&self.env, &payload);
        let raw = settings.as_ref().unwrap_or(&self.env);
        // This invocation's credentials (the event may bring its own) are scrubbed too.
        let secrets = raw.secret_values();
        let scrubbed = secrets.clone();
        let server = (self.command.server_tag)(raw);
        sentry::configure_scope(|scope| {
            telemetry::tag_run(scope, self.command, &server);
            scope.add_event_processor(move |event| telemetry::scrub(event, &scrubbed))
        });
        let result = match &settings {
            Ok(raw) => panics::guarded(self.command.run(raw, false), &secrets).await,
            Err(e) => Err(CommandError::Setting(e.clone())),
        };
        let elapsed = started.elapsed();
        let ending = crate::finish(
            self.format,
            &self.telemetry,
            check_in,
            self.command,
            &server,
            &result,
            elapsed,
        );
        match ending.error_type {
            None => Ok(output::json_document(
                self.command,
                &server,
                &result,
                &ending,
                elapsed,
            )),
            Some(error_type) => Err(Diagnostic {
                error_type: error_type.into(),
                error_message: ending.message.unwrap_or_default(),
            }),
        }
    }
}

/// The command named by `_HANDLER` (or, when it is unset, the first argument: an image whose
/// `CMD` names the command).
fn handler_command() -> Result<&'static Command, Diagnostic> {
    let handler = std::env::var("_HANDLER")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::env::args().nth(1));
    let names = commands::COMMANDS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ");
    let Some(handler) = handler else {
        return Err(handler_not_found(format!(
            "no handler: set _HANDLER to one of {names}"
        )));
    };
    commands::find_command(&handler).ok_or_else(|| {
        handler_not_found(format!(
            "unknown handler {}: expected one of {names} (optionally prefixed with aws_lambda.)",
            commands::settings::quote(&handler)
        ))
    })
}

fn handler_not_found(message: String) -> Diagnostic {
    Diagnostic {
        error_type: "Runtime.HandlerNotFound".into(),
        error_message: message,
    }
}

fn config_error(message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        error_type: "ConfigError".into(),
        error_message: message.into(),
    }
}

/// `POST /2018-06-01/runtime/init/error`: Lambda fails the invocation that started this process
/// with this error and does not send it any event.
async fn post_init_error(
    endpoint: http::Uri,
    diagnostic: &Diagnostic,
) -> Result<(), lambda_runtime::Error> {
    let client = lambda_runtime_api_client::Client::builder()
        .with_endpoint(endpoint)
        .build()?;
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("Content-Type", "application/json")
        .header(
            "Lambda-Runtime-Function-Error-Type",
            diagnostic.error_type.as_str(),
        )
        .body(serde_json::to_vec(diagnostic)?.into())?;
    let response = client.call(request).await?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()).into());
    }
    Ok(())
}
