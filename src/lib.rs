//! # intentwall
//!
//! Keeps the firewalls of many cloud regions in line with one version-controlled statement of
//! security intent. The pipeline, one module per stage:
//!
//! ```text
//! intents/ --intent::load--> Intent --guardrails--> findings
//! Intent --graph::ServiceGraph--> one view per deployment (pictures, blast radius)
//!        view.resolve(cloud) --> DeploymentIntent --Provider::translate--> desired
//! backend::Backend::observe(target) --> observed (normalised; every target first)
//! plan (pure): compose(observed, desired) --diff--> ChangeSet --> state after
//!        Provider::lower(state after) --simulate--> verdicts == oracle(intent)
//!                                        for every probe, expectation and packet class
//!        each target --report--> stdout / plan file, as soon as it is planned
//! apply(plan) --> plan again, equal? fresh? guarded? [preflight] --> Backend::execute
//!        --> Backend::observe again --> diff must be empty
//! audit: Backend::observe --> Provider::lower(observed) --> verdicts vs oracle(intent)
//! ```
//!
//! [`backend`] is the one seam to the world (snapshot files, an in-memory store, the live
//! clouds behind the `live` feature) and the only module that names clouds; everything a cloud
//! means lives in its provider crate behind the contract's traits.
//!
//! Each verb lives in [`commands`] (`commands/<verb>.rs`: flags → stages → stdout); [`run`]
//! only dispatches. Results go to stdout (`output.rs`), diagnostics and logs to stderr; every
//! failure is an [`Error`] naming what failed.
//!
//! Exit codes are an API ([`ExitStatus`]): 0 ok/no changes, 2 changes planned, 3 blocked
//! (mismatch, failed expectation, guardrail, inexpressible intent, conflict), 1 error.

pub mod apply;
pub mod audit;
pub mod backend;
pub mod cli;
pub mod color;
pub mod commands;
pub mod cycles;
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
pub mod shard;
pub mod simulate;
pub mod source;

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
        Command::Bootstrap(args) => commands::bootstrap::run(cli, args),
        Command::Completions(args) => commands::completions::run(args),
        Command::Man => commands::man::run(),
        Command::Audit(args) => commands::audit::run(cli, args),
    }
}
