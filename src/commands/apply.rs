//! `apply`: apply a reviewed plan file, or plan and apply with `--auto-approve`.

use crate::cli::{ApplyArgs, Cli};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::out;
use crate::{apply, plan, report};

/// Check the flags, take the snapshot root's lock, apply, and print the report.
pub fn run(cli: &Cli, args: &ApplyArgs) -> Result<ExitStatus, Error> {
    super::require_state(cli)?;
    if args.plan.is_none() && !args.auto_approve {
        return Err(Error::usage(
            "apply needs a reviewed plan file (`intentwall plan --out plan.json`, then \
             `intentwall apply plan.json`) or --auto-approve",
        ));
    }
    if args.plan.is_some() && args.prune_unmanaged {
        return Err(Error::usage(
            "--prune-unmanaged is decided when planning; pass it to `plan`, not to `apply \
             plan.json`",
        ));
    }
    if args.plan.is_some() && cli.shard.is_some() {
        return Err(Error::usage(
            "--shard is decided when planning; pass it to `plan`, not to `apply plan.json` (the \
             plan file holds the shard's targets)",
        ));
    }
    let Some(intent) = super::load(cli)? else {
        return Ok(ExitStatus::Error);
    };
    super::snapshot_root(cli, args.init)?;
    // one writer per root: held from before planning (or re-deriving) to the last write,
    // released when this run ends, however it ends
    let _lock = super::state_lock(cli)?;
    let opts = apply::ApplyOptions {
        backend: super::backend_of(cli),
        max_deletes: args.max_deletes,
        force: args.force,
        preflight: args.preflight,
    };
    let report = match &args.plan {
        Some(p) => apply::apply_recorded(&plan::Plan::read(p)?, &intent, &opts)?,
        None => {
            let plan_opts = plan::PlanOptions {
                // one backend for planning and writing: a cloud's clients and credentials
                // are made once
                backend: opts.backend.clone(),
                ..super::plan_options(cli, args.prune_unmanaged, None, None)
            };
            let plan = plan::build(&intent, &plan_opts)?;
            // the plan being applied goes to stderr: stdout holds only the apply report
            crate::logging::human(crate::logging::Level::Info, &report::human_plan(&plan));
            apply::apply(&plan, &intent, &opts)?
        }
    };
    out(&report::human_apply(&report))?;
    Ok(report.status())
}
