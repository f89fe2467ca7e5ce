//! Thin entry point: parse the command line, start logging, run, map the outcome to an exit
//! code. Usage errors exit 1 (not clap's 2, which would read as "changes").

use clap::Parser;
use std::process::ExitCode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match intentwall::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    intentwall::logging::init(cli.log_format, cli.verbose);
    match intentwall::run(&cli) {
        Ok(status) => status.into(),
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            intentwall::ExitStatus::Error.into()
        }
    }
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
