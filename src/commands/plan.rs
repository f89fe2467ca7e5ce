//! `plan`: show what would change, with the simulation verdict and findings; optionally write
//! the plan file (`--out`) and each target's state after apply (`--emit`).

use crate::cli::{Cli, PlanArgs};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::{out, out_json, Stdout};
use crate::report::stream::JsonPlanWriter;
use crate::{backend, intent, plan, report};
use std::io::Write;

/// Plan every selected target and render the plan; ends with the plan's status.
pub fn run(cli: &Cli, args: &PlanArgs) -> Result<ExitStatus, Error> {
    let PlanArgs {
        out: plan_out,
        emit,
        format,
        prune_unmanaged,
        deployment,
        provider,
        init,
    } = args;
    super::require_state(cli)?;
    let Some(intent) = super::load(cli)? else {
        return Ok(ExitStatus::Error);
    };
    super::snapshot_root(cli, *init)?;
    // `--emit` writes snapshots, so it holds the emit directory's lock; taken before planning
    // when the directory exists, so emitting into the snapshot root reads and writes under one
    // lock (a missing one is made only once planning has succeeded)
    let mut emit_lock = match emit {
        Some(dir) if dir.is_dir() => Some(super::lock(cli, dir)?),
        _ => None,
    };
    let opts = plan::PlanOptions {
        keep_after: emit.is_some(),
        ..super::plan_options(cli, *prune_unmanaged, deployment.clone(), *provider)
    };
    if emit.is_none() && matches!(format, report::Format::Json | report::Format::Human) {
        return streamed(cli, &intent, &opts, *format, plan_out.as_deref());
    }
    let plan = plan::build(&intent, &opts)?;
    if let Some(p) = plan_out {
        let text = serde_json::to_string_pretty(&plan)? + "\n";
        backend::snapshot::write_atomic(p, text.as_bytes())?;
        tracing::info!(path = %p.display(), "wrote plan file");
    }
    if let Some(dir) = emit {
        if emit_lock.is_none() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::file(dir, "cannot create the emit directory", e))?;
            emit_lock = Some(super::lock(cli, dir)?);
        }
        for p in plan::emit(&plan, dir)? {
            tracing::info!(path = %p.display(), "emitted desired state");
        }
    }
    drop(emit_lock);
    if *format == report::Format::Json {
        // streamed: at estate scale the document is hundreds of megabytes
        out_json(&plan)?;
    } else if *format == report::Format::Human {
        out(&painted(report::render_plan(&plan, *format)))?;
    } else {
        out(&report::render_plan_with(&plan, &intent, *format))?;
    }
    Ok(plan.status())
}

/// `plan` in JSON or human text: each target is written (to stdout, and to the plan file
/// with `--out`) as soon as it is planned, then dropped, so memory follows the targets in
/// flight rather than the estate.
fn streamed(
    cli: &Cli,
    intent: &intent::Intent,
    opts: &plan::PlanOptions,
    format: report::Format,
    plan_out: Option<&std::path::Path>,
) -> Result<ExitStatus, Error> {
    enum Out {
        Json(JsonPlanWriter<Stdout>),
        Human(Stdout),
    }
    let header = plan::header(intent, opts);
    // opened with the first target, so a plan that fails before any target (a bad snapshot)
    // prints nothing at all
    let open = || -> Result<Out, Error> {
        Ok(match format {
            report::Format::Json => Out::Json(JsonPlanWriter::begin(Stdout::new(), &header)?),
            _ => {
                let mut o = Stdout::new();
                o.write_all(report::human_plan_header(&header).as_bytes())?;
                Out::Human(o)
            }
        })
    };
    let bar = crate::output::progress(cli, target_count(intent, opts), "planning");
    let mut out: Option<Out> = None;
    let mut each = |file: Option<&mut JsonPlanWriter<&mut dyn Write>>,
                    t: plan::TargetPlan|
     -> Result<plan::TargetPlan, Error> {
        if let Some(f) = file {
            f.target(&t)?;
        }
        let o = match &mut out {
            Some(o) => o,
            None => out.insert(open()?),
        };
        // the bar steps aside while a target is written, so a terminal shows both cleanly
        bar.suspend(|| -> Result<(), Error> {
            match o {
                Out::Json(j) => j.target(&t)?,
                Out::Human(o) => {
                    o.write_all(painted(report::human_plan_target(&t)).as_bytes())?;
                    o.flush()?;
                }
            }
            Ok(())
        })?;
        bar.inc(1);
        Ok(t.handed_out())
    };
    let plan = match plan_out {
        Some(p) => {
            let mut plan = None;
            backend::snapshot::write_atomic_with(p, |w| {
                let mut file = JsonPlanWriter::begin(w, &header)?;
                plan = Some(plan::build_each(intent, opts, &mut |t| {
                    each(Some(&mut file), t)
                })?);
                file.finish()?;
                Ok(())
            })?;
            tracing::info!(path = %p.display(), "wrote plan file");
            // write_atomic_with runs the closure before returning Ok
            plan.ok_or(Error::Internal("no plan was made"))?
        }
        None => plan::build_each(intent, opts, &mut |t| each(None, t))?,
    };
    bar.finish_and_clear();
    match out.map_or_else(open, Ok)? {
        Out::Json(j) => {
            j.finish()?;
        }
        Out::Human(mut o) => {
            o.write_all(report::human_plan_footer(&plan).as_bytes())?;
            o.flush()?;
        }
    }
    Ok(plan.status())
}

/// The human plan, coloured when stdout is a terminal ([`crate::color`]).
fn painted(text: String) -> String {
    if crate::color::enabled() {
        crate::color::colorize(&text)
    } else {
        text
    }
}

/// How many targets the plan covers (the progress bar's length): every cloud of every
/// deployment, less what `--deployment`, `--shard` and `--provider` leave out.
pub(super) fn target_count(intent: &intent::Intent, opts: &plan::PlanOptions) -> usize {
    intent
        .deployments
        .values()
        .filter(|d| opts.selects(&d.name))
        .flat_map(|d| d.clouds.keys())
        .filter(|k| opts.provider.is_none_or(|p| p == **k))
        .count()
}
