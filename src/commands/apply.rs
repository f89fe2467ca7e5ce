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
    // a recorded plan is read first: if it is fine but the intents or snapshots it was made
    // from are not where this run looks, say that, not just "missing" or "stale"
    let recorded = match &args.plan {
        Some(p) => Some((p, plan::Plan::read(p)?)),
        None => None,
    };
    if let Some((p, _)) = &recorded {
        made_elsewhere(p, "intents", &cli.intents, "--intents")?;
        if !args.init && cli.state == crate::cli::StateKind::Snapshots {
            made_elsewhere(p, "snapshot", &cli.snapshots, "--snapshots")?;
        }
    }
    let Some(intent) = super::load(cli)? else {
        return Ok(ExitStatus::Error);
    };
    if let Some((p, recorded)) = &recorded {
        if recorded.intent_digest != intent.digest {
            return Err(Error::StalePlan(format!(
                "the plan was made from other intents: {} records intents {}, the intents in \
                 `{}` are {}. Either the intents changed since planning (run plan again) or they are \
                 not the ones the plan was made from (run apply where `plan --out` ran, or pass \
                 --intents DIR); nothing was changed",
                p.display(),
                short(&recorded.intent_digest),
                cli.intents.display(),
                short(&intent.digest)
            )));
        }
    }
    super::snapshot_root(cli, args.init)?;
    // one writer per root: held from before planning (or re-deriving) to the last write,
    // released when this run ends, however it ends
    let _lock = super::state_lock(cli)?;
    let opts = apply::ApplyOptions {
        backend: super::backend_of(cli),
        max_deletes: args.max_deletes,
        force: args.force,
        parallelism: usize::from(args.parallelism),
        preflight: args.preflight,
    };
    let report = match &recorded {
        Some((_, recorded)) => apply::apply_recorded(recorded, &intent, &opts)?,
        None => {
            let plan_opts = plan::PlanOptions {
                // one backend for planning and writing: a cloud's clients and credentials
                // are made once
                backend: opts.backend.clone(),
                ..super::plan_options(cli, args.prune_unmanaged, None, None)
            };
            let bar = crate::output::progress(
                cli,
                super::plan::target_count(&intent, &plan_opts),
                "planning",
            );
            let plan = plan::build_each(&intent, &plan_opts, &mut |t| {
                bar.inc(1);
                Ok(t)
            })?;
            bar.finish_and_clear();
            // the plan being applied goes to stderr: stdout holds only the apply report
            crate::logging::human(crate::logging::Level::Info, &report::human_plan(&plan));
            apply::apply(&plan, &intent, &opts)?
        }
    };
    out(&report::human_apply(&report))?;
    Ok(report.status())
}

/// A plan file is applied against the intents and snapshots it was made from, found by
/// their paths relative to where `apply` runs: when one is missing here, the likely cause is
/// running from another directory, and the error says so and how to point at them.
fn made_elsewhere(
    plan: &std::path::Path,
    what: &str,
    dir: &std::path::Path,
    flag: &str,
) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    let here = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| ".".into());
    let problem = if dir.exists() {
        "is not a directory"
    } else {
        "does not exist"
    };
    Err(Error::usage(format!(
        "cannot apply {}: the {what} directory `{}` {problem} here ({here}); a plan is applied \
         against the intents and snapshots it was made from: run apply in the directory where \
         `plan --out` ran, or pass {flag} DIR",
        plan.display(),
        dir.display()
    )))
}

/// The first 12 hex digits of a digest, as plans and errors show it.
fn short(d: &str) -> String {
    let d = d.strip_prefix("sha256:").unwrap_or(d);
    d.chars().take(12).collect()
}
