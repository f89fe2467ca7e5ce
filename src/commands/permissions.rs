//! `permissions`: the least-privilege policy the job needs on a cloud.

use crate::cli::{Cli, PermissionsArgs};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::out;

/// Print the cloud's permission document, scoped to the intents' placements on it.
pub fn run(cli: &Cli, args: &PermissionsArgs) -> Result<ExitStatus, Error> {
    let Some(intent) = super::load(cli)? else {
        return Ok(ExitStatus::Error);
    };
    out(&crate::permissions::render(&intent, args.cloud)?)?;
    Ok(ExitStatus::Ok)
}
