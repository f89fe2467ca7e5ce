//! Thin entry point: parse the command line, start logging, run, map the outcome to an exit
//! code. Usage errors exit 1 (not clap's 2, which would read as "changes").

use clap::Parser;
use intentwall::cli::LogFormat;
use intentwall::logging::{self, Level};
use std::process::ExitCode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut cli = match intentwall::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
            if code == 1 && json_requested() {
                // the command line did not parse, but it asked for JSON logs: the usage
                // error is still one JSON line on stderr
                logging::init(LogFormat::Json, 0);
                logging::human(Level::Error, &e.render().to_string());
            } else {
                let _ = e.print();
            }
            return ExitCode::from(code);
        }
    };
    logging::init(cli.log_format, cli.verbose);
    if cli.log_format == LogFormat::Json {
        // even a bug's panic message stays one JSON line
        std::panic::set_hook(Box::new(|info| {
            logging::human(Level::Error, &format!("panic: {info}\n"));
        }));
    }
    // without --shard, a pod of an Indexed Job takes its shard from the environment
    match intentwall::shard::resolve(cli.shard, |k| std::env::var(k).ok()) {
        Ok(shard) => cli.shard = shard,
        Err(e) => {
            logging::human(Level::Error, &format!("error: {e}\n"));
            return intentwall::ExitStatus::Error.into();
        }
    }
    match intentwall::run(&cli) {
        Ok(status) => status.into(),
        Err(e) => {
            logging::human(Level::Error, &format!("error: {}\n", chain(&e)));
            intentwall::ExitStatus::Error.into()
        }
    }
}

/// Whether the raw arguments ask for `--log-format json` (for an error clap reports before
/// the flags are known).
fn json_requested() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.iter().enumerate().any(|(i, a)| {
        a == "--log-format=json"
            || (a == "--log-format" && args.get(i + 1).is_some_and(|v| v == "json"))
    })
}

/// The error and its sources, `: `-separated: the library's messages name their own causes,
/// so the chain only grows for a wrapped error that has sources of its own.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        next = cause.source();
    }
    s
}
