//! `snapshot`: record live state into snapshot files.

use crate::cli::{Cli, SnapshotArgs, StateKind};
use crate::error::Error;
use crate::exit::ExitStatus;

/// Only meaningful against the live clouds, which this build does not have yet: both checks
/// fail with a message saying so rather than doing nothing quietly.
pub fn run(cli: &Cli, _args: &SnapshotArgs) -> Result<ExitStatus, Error> {
    if cli.state != StateKind::Live {
        return Err(Error::usage(
            "`snapshot` records live state: run it with --state live",
        ));
    }
    super::require_snapshots(cli)?;
    Ok(ExitStatus::Ok)
}
