//! What `simulate` prints: the verdicts, not the changes. The human table and the JSON
//! document here; the Markdown one is in [`super::markdown`].
//!
//! Why a document of its own for `simulate --format json`: a CI step that asks whether the
//! intent is proven wants the verdicts, the figures and the findings, not every rule of the
//! plan (the plan has its own verb and file). docs/plan-format.md documents it.

use super::{expects_passed, finding_line};
use crate::plan::{Plan, TargetPlan};
use crate::simulate::flowlog::Replay;
use crate::simulate::SimReport;
use intentwall_contract::{Finding, ProviderKind};
use serde::Serialize;
use std::fmt::Write;

/// Version of the `simulate --format json` document.
pub const SIMULATION_FORMAT_VERSION: u32 = 1;

/// A target's simulation verdict: proven, or the first check that is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every probe, expectation and packet class gives the intent's verdict.
    Proven,
    /// Nothing disagrees, but some packets hang on rules whose match is unknown.
    Unverified,
    /// Native rules give another verdict than the intent for some packets.
    Mismatch,
    /// An `expect` case failed (with no mismatching packet).
    ExpectationFailed,
}

impl Verdict {
    /// The verdict of a target's simulation figures.
    pub fn of(t: &TargetPlan) -> Verdict {
        let s = &t.simulation;
        if s.mismatches > 0 {
            Verdict::Mismatch
        } else if s.expectations_failed > 0 {
            Verdict::ExpectationFailed
        } else if s.unverifiable > 0 {
            Verdict::Unverified
        } else {
            Verdict::Proven
        }
    }
}

/// One target in the `simulate --format json` document.
#[derive(Debug, Serialize)]
pub struct SimulationTarget<'a> {
    /// Deployment.
    pub deployment: &'a str,
    /// Cloud.
    pub provider: ProviderKind,
    /// Verdict of the simulation.
    pub verdict: Verdict,
    /// True when the target must not be applied (any finding).
    pub blocked: bool,
    /// Figures.
    pub simulation: &'a SimReport,
    /// Findings (translation, simulation, flow-log replay).
    pub findings: &'a [Finding],
}

/// The `simulate --format json` document.
#[derive(Debug, Serialize)]
pub struct SimulationDoc<'a> {
    /// Schema version of this document.
    pub format_version: u32,
    /// Digest of the intent files simulated.
    pub intent_digest: &'a str,
    /// True when any target or guardrail blocks (exit 3).
    pub blocked: bool,
    /// Deployment-level guardrail findings.
    pub guardrails: &'a [Finding],
    /// Per target.
    pub targets: Vec<SimulationTarget<'a>>,
    /// The flow-log replay, with `--flows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<&'a Replay>,
}

impl<'a> SimulationDoc<'a> {
    /// The document of a plan's simulation (and replay, if any).
    pub fn new(plan: &'a Plan, replay: Option<&'a Replay>) -> Self {
        SimulationDoc {
            format_version: SIMULATION_FORMAT_VERSION,
            intent_digest: &plan.intent_digest,
            blocked: plan.blocked(),
            guardrails: &plan.guardrails,
            targets: plan
                .targets
                .iter()
                .map(|t| SimulationTarget {
                    deployment: &t.deployment,
                    provider: t.provider,
                    verdict: Verdict::of(t),
                    blocked: t.blocked,
                    simulation: &t.simulation,
                    findings: &t.findings,
                })
                .collect(),
            replay,
        }
    }
}

/// Simulation summary table (the `simulate` command).
pub fn human_simulation(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<12} {:<6} {:>7} {:>9} {:>10} {:>8} {:>8} {:>7}  verdict",
        "deployment", "cloud", "probes", "classes", "mismatches", "expects", "findings", "ms"
    );
    for t in &plan.targets {
        let r = &t.simulation;
        let _ = writeln!(
            s,
            "{:<12} {:<6} {:>7} {:>9} {:>10} {:>8} {:>8} {:>7}  {}",
            t.deployment,
            t.provider.as_str(),
            r.probes,
            r.classes,
            r.mismatches,
            expects_passed(t),
            t.findings.len(),
            r.millis,
            if !t.findings.is_empty() {
                "BLOCKED"
            } else if r.unverifiable > 0 {
                "unverified"
            } else {
                "proven"
            }
        );
    }
    for f in plan.findings() {
        let _ = writeln!(s, "! {}", finding_line(f));
    }
    s
}
