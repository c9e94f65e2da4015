//! A minimal logger: this project's messages on stderr, at the level chosen by `-v` or `RUST_LOG`
//! (a level name). Logs never go to stdout, which holds the report.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
            && (self.level == LevelFilter::Trace
                || metadata.target().starts_with("commands")
                || metadata.target().starts_with("remote_settings_lambdas"))
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            let level = match record.level() {
                Level::Error => "ERROR",
                Level::Warn => "WARN",
                Level::Info => "INFO",
                Level::Debug => "DEBUG",
                Level::Trace => "TRACE",
            };
            eprintln!("[{level}] {}", record.args());
        }
    }

    fn flush(&self) {}
}

pub fn init(verbose: u8) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.trim().parse::<LevelFilter>().ok());
    let from_flags = match verbose {
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let level = from_env.map_or(from_flags, |e| e.max(from_flags));
    if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}
