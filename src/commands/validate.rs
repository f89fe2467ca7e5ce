//! `validate`: parse, resolve and check guardrails; no state needed.

use crate::cli::Cli;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::intent;
use crate::output::out;

/// Load the intents, report guardrail findings on stderr and a one-line summary on stdout.
pub fn run(cli: &Cli) -> Result<ExitStatus, Error> {
    let Some(intent) = super::load(cli)? else {
        return Ok(ExitStatus::Error);
    };
    let findings = intent::guardrails::check(&intent);
    for f in &findings {
        crate::logging::human(crate::logging::Level::Error, &format!("blocked: {f}\n"));
    }
    let flows: usize = intent.deployments.values().map(|d| d.flows.len()).sum();
    out(&format!(
        "{}: {} deployments, {} effective flows, {} guardrail findings\n",
        cli.intents.display(),
        intent.deployments.len(),
        flows,
        findings.len()
    ))?;
    Ok(if findings.is_empty() {
        ExitStatus::Ok
    } else {
        ExitStatus::Blocked
    })
}
