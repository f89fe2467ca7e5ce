//! `bootstrap <cloud>`: create or update, in every account of the intents, the role the job
//! assumes, with the least privilege of `permissions <cloud>`: a diff first, then the writes
//! (none with `--dry-run`); idempotent.

use crate::cli::{BootstrapArgs, Cli};
use crate::error::Error;
use crate::exit::ExitStatus;

/// Show each account's diff, then apply it unless `--dry-run`; exit 2 for a dry run with
/// changes, 0 otherwise.
pub fn run(cli: &Cli, args: &BootstrapArgs) -> Result<ExitStatus, Error> {
    if !cfg!(feature = "live") {
        return Err(Error::usage(
            "bootstrap needs the live backends: rebuild with `--features live`",
        ));
    }
    let Some(intent) = super::load(cli)? else {
        return Ok(ExitStatus::Error);
    };
    roles(&intent, args)
}

#[cfg(feature = "live")]
fn roles(intent: &crate::intent::Intent, args: &BootstrapArgs) -> Result<ExitStatus, Error> {
    let reports = crate::backend::live::bootstrap(
        args.cloud,
        intent,
        &args.trust,
        args.via_role.as_deref(),
        args.dry_run,
    )?;
    let mut text = String::new();
    let mut pending = false;
    for r in &reports {
        text.push_str(&format!(
            "{} account {}: role {}\n",
            r.cloud, r.account, r.role_arn
        ));
        if r.changes.is_empty() {
            text.push_str("  no changes\n");
        }
        for c in &r.changes {
            text.push_str(&format!("  {c}\n"));
        }
        if !r.changes.is_empty() {
            if args.dry_run {
                pending = true;
            } else {
                text.push_str(&format!("  applied: {} call(s)\n", r.calls));
            }
        }
    }
    crate::output::out(&text)?;
    Ok(if pending {
        ExitStatus::Changes
    } else {
        ExitStatus::Ok
    })
}

#[cfg(not(feature = "live"))]
fn roles(_intent: &crate::intent::Intent, _args: &BootstrapArgs) -> Result<ExitStatus, Error> {
    Err(Error::Internal("bootstrap without the live backends"))
}
