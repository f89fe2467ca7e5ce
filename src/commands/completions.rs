//! `completions <shell>`: the shell completion script for every verb and flag, generated from
//! the same clap definition the binary parses with, so it never lags behind the CLI.

use crate::cli::Cli;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::to_stdout;
use clap::{Args, CommandFactory};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Write the script to stdout (e.g. `intentwall completions bash > /etc/bash_completion.d/intentwall`).
pub fn run(args: &CompletionsArgs) -> Result<ExitStatus, Error> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    to_stdout(|o| {
        clap_complete::generate(args.shell, &mut cmd, name, o);
        Ok(())
    })?;
    Ok(ExitStatus::Ok)
}
