//! # intentwall
//!
//! Keeps the firewalls of many cloud regions in line with one version-controlled statement of
//! security intent. The pipeline, one module per stage:
//!
//! ```text
//! intents/ --intent::load--> Intent --graph--> ServiceGraph (pictures, blast radius)
//!        \--guardrails--> findings
//! Intent --Deployment::resolve(cloud)--> DeploymentIntent --Provider::translate--> desired
//! snapshots/ --backend::snapshot::read--> observed (managed + unmanaged)
//! (observed, desired) --diff--> ChangeSet --report--> stdout / plan file / --emit
//! Provider::lower(state after apply) --simulate--> verdicts == oracle(intent)
//!                                        for every probe, expectation and packet class
//! apply(plan) --> fresh? guarded? --> backend write --> read again --> diff must be empty
//! ```
//!
//! Each verb lives in [`commands`] (`commands/<verb>.rs`: flags → stages → stdout); [`run`]
//! only dispatches. Results go to stdout (`output.rs`), diagnostics and logs to stderr; every
//! failure is an [`Error`] naming what failed.
//!
//! Exit codes are an API ([`ExitStatus`]): 0 ok/no changes, 2 changes planned, 3 blocked
//! (mismatch, failed expectation, guardrail, inexpressible intent, conflict), 1 error.

pub mod apply;
pub mod backend;
pub mod cli;
pub mod commands;
pub mod diag;
pub mod diff;
pub mod error;
pub mod exit;
pub mod graph;
pub mod intent;
pub mod logging;
mod output;
pub mod paths;
pub mod permissions;
pub mod plan;
pub mod report;
pub mod simulate;

pub use error::Error;
pub use exit::ExitStatus;

use cli::{Cli, Command};

/// Run a parsed command line; returns how it ended (see [`ExitStatus::code`]).
pub fn run(cli: &Cli) -> Result<ExitStatus, Error> {
    match &cli.command {
        Command::Validate => commands::validate::run(cli),
        Command::Graph(args) => commands::graph::run(cli, args),
        Command::Plan(args) => commands::plan::run(cli, args),
        Command::Simulate(args) => commands::simulate::run(cli, args),
        Command::Apply(args) => commands::apply::run(cli, args),
        Command::Permissions(args) => commands::permissions::run(cli, args),
        Command::Snapshot(args) => commands::snapshot::run(cli, args),
    }
}
