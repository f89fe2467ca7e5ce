//! `simulate`: prove that every cloud's native rules give the intent's verdicts, and replay a
//! flow log (`--flows`) against the state after apply.

use crate::cli::{Cli, SimulateArgs};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::{out, out_json};
use crate::simulate::flowlog::{self, FlowFormat};
use crate::{plan, report};

/// Plan (keeping each target's state after apply), replay the flow log if any, and render
/// the verdicts; blocked when any verdict or record disagrees with the intent.
pub fn run(cli: &Cli, args: &SimulateArgs) -> Result<ExitStatus, Error> {
    let SimulateArgs {
        format,
        deployment,
        provider,
        flows,
        flow_format,
    } = args;
    super::require_state(cli)?;
    let Some(intent) = super::load(cli)? else {
        return Ok(ExitStatus::Error);
    };
    // open the log first: a missing file fails before any planning; the log is then read as
    // it is replayed, so its size never has to fit in memory
    let log = match flows {
        Some(path) => {
            let cannot = |e: std::io::Error| Error::file(path, "cannot read flow log", e);
            let file = std::fs::File::open(path).map_err(cannot)?;
            let fmt = match flow_format {
                Some(f) => *f,
                None => FlowFormat::infer_file(path).map_err(cannot)?,
            };
            Some((path.display().to_string(), fmt, file))
        }
        None => None,
    };
    let mut plan = plan::build(
        &intent,
        &plan::PlanOptions {
            keep_after: true, // flow-log replay judges the state after apply
            ..super::plan_options(cli, false, deployment.clone(), *provider)
        },
    )?;
    let replay = match log {
        Some((name, fmt, file)) => {
            let reader = std::io::BufReader::with_capacity(1 << 16, file);
            let r = flowlog::replay_reader(&intent, &plan, &name, fmt, reader)?;
            tracing::info!(
                file = %name, records = r.records, checked = r.checked,
                mismatches = r.mismatches, millis = r.millis, "replayed flow log"
            );
            // the replay judges and returns findings; here they join the targets' own (a
            // replayed mismatch blocks like a simulated one), so every format carries them
            for (t, tr) in plan.targets.iter_mut().zip(&r.targets) {
                if !tr.findings.is_empty() {
                    t.findings.extend(tr.findings.iter().cloned());
                    t.blocked = true;
                }
            }
            Some(r)
        }
        None => None,
    };
    let text = match format {
        report::Format::Human => {
            let mut t = report::human_simulation(&plan);
            if let Some(r) = &replay {
                t.push_str(&report::human_replay(r));
            }
            t
        }
        report::Format::Json => {
            // the verdicts, figures and findings (and the replay), not the plan's changes:
            // streamed, as a replay's report can be large
            out_json(&report::SimulationDoc::new(&plan, replay.as_ref()))?;
            String::new()
        }
        report::Format::Markdown => report::markdown_simulation(&plan, replay.as_ref()),
        report::Format::Junit => report::junit(&plan),
    };
    if !text.is_empty() {
        out(&text)?;
    }
    Ok(if plan.blocked() {
        ExitStatus::Blocked
    } else {
        ExitStatus::Ok
    })
}
