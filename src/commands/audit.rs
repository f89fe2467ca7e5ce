//! `audit`: judge the state every target holds now against the intent (not the plan), and
//! render the verdicts; exit 0 when every target is compliant, 3 otherwise.

use crate::audit::{self, Format};
use crate::cli::{AuditArgs, Cli};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::graph::ServiceGraph;
use crate::output::{out, out_json};

/// Observe every selected target, prove its state against the intent, write the report.
pub fn run(cli: &Cli, args: &AuditArgs) -> Result<ExitStatus, Error> {
    let AuditArgs {
        format,
        deployment,
        provider,
        now,
    } = args;
    super::require_state(cli)?;
    // the time is checked before anything is read: a bad --now is a usage error
    let generated_at = audit::timestamp(now.as_deref())?;
    let Some(intent) = super::load(cli)? else {
        return Ok(ExitStatus::Error);
    };
    // no --init here: an audit of a root that does not exist would certify "nothing"
    let opts = super::plan_options(cli, false, deployment.clone(), *provider);
    let report = audit::run(&intent, &opts, generated_at)?;
    match format {
        Format::Human => out(&audit::render::human(&report))?,
        Format::Json => out_json(&report)?,
        Format::Markdown => out(&audit::render::markdown(&report))?,
        Format::Html => {
            let graph = ServiceGraph::build(
                intent
                    .deployments
                    .values()
                    .filter(|d| report.targets.iter().any(|t| t.deployment == d.name)),
            );
            let views: Vec<_> = graph.views().collect();
            out(&audit::html::page(&report, &views))?
        }
    }
    Ok(if report.compliant {
        ExitStatus::Ok
    } else {
        ExitStatus::Blocked
    })
}
