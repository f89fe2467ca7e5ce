//! Renderers: the same plan values as human text, JSON, Markdown (for a pull request) and
//! JUnit (for CI test reports). Renderers only format; they decide nothing.
//!
//! One module per audience: [`markdown`] (the pull-request comment, size-capped),
//! [`mermaid`] (the picture of the flows a plan changes), [`junit`] (CI test reports),
//! [`simulation`] (what `simulate` prints); human text and the JSON stream live here and in
//! [`stream`].

use crate::apply::ApplyReport;
use crate::diff::{Action, Change};
use crate::intent::Intent;
use crate::plan::{Plan, TargetPlan};
use intentwall_contract::Finding;
use std::fmt::Write;

pub mod junit;
pub mod markdown;
pub mod mermaid;
pub mod simulation;
pub mod stream;

pub use junit::junit;
pub use markdown::{markdown, markdown_replay, markdown_simulation, markdown_with};
pub use simulation::{human_simulation, SimulationDoc, Verdict};

/// Output formats of `plan` and `simulate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Terraform-like text for people.
    Human,
    /// The versioned plan JSON (docs/plan-format.md).
    Json,
    /// A Markdown summary for a pull request.
    Markdown,
    /// JUnit XML: one test suite per target; test cases per check and per finding.
    Junit,
}

/// Render a plan in a format (Markdown without the picture of the changed flows, which needs
/// the intent: see [`render_plan_with`]).
pub fn render_plan(plan: &Plan, format: Format) -> String {
    render(plan, None, format)
}

/// Render a plan in a format; the intent it was planned from lets the Markdown draw the
/// flows that change between their groups and networks.
pub fn render_plan_with(plan: &Plan, intent: &Intent, format: Format) -> String {
    render(plan, Some(intent), format)
}

fn render(plan: &Plan, intent: Option<&Intent>, format: Format) -> String {
    match format {
        Format::Human => human_plan(plan),
        Format::Json => serde_json::to_string_pretty(plan).expect("plan serialises") + "\n",
        Format::Markdown => markdown_with(plan, intent),
        Format::Junit => junit(plan),
    }
}

/// One field of an object's canonical body that an update changes: name, before, after
/// (`(none)` when absent on that side). A body that is not a JSON object is one field, `body`.
pub(crate) struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

pub(crate) fn field_changes(c: &Change) -> Vec<FieldChange> {
    let (Some(b), Some(a)) = (&c.before, &c.after) else {
        return vec![];
    };
    let show =
        |v: Option<&serde_json::Value>| v.map(|v| v.to_string()).unwrap_or_else(|| "(none)".into());
    match (&b.body.value(), &a.body.value()) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .filter(|k| x.get(*k) != y.get(*k))
                .map(|k| FieldChange {
                    field: k.clone(),
                    before: show(x.get(k)),
                    after: show(y.get(k)),
                })
                .collect()
        }
        (x, y) if x != y => vec![FieldChange {
            field: "body".into(),
            before: x.to_string(),
            after: y.to_string(),
        }],
        _ => vec![],
    }
}

pub(crate) fn target_title(t: &TargetPlan) -> String {
    format!("{} / {}", t.deployment, t.provider)
}

/// The simulation's verdict in words: which check failed, if one did (a failed `expect`
/// with no mismatching packet is not a mismatch).
pub(crate) fn sim_verdict_text(t: &TargetPlan) -> &'static str {
    match Verdict::of(t) {
        Verdict::Mismatch => "MISMATCH",
        Verdict::ExpectationFailed => "EXPECTATION FAILED",
        Verdict::Unverified => "UNVERIFIED",
        Verdict::Proven => "proven",
    }
}

/// `passed/total` of the target's `expect` checks.
pub(crate) fn expects_passed(t: &TargetPlan) -> String {
    let s = &t.simulation;
    format!(
        "{}/{}",
        s.expectations - s.expectations_failed.min(s.expectations),
        s.expectations
    )
}

pub(crate) fn sim_line(t: &TargetPlan) -> String {
    let s = &t.simulation;
    let unverifiable = if s.unverifiable > 0 {
        format!(
            ", {} unverifiable (depend on unknown matches)",
            s.unverifiable
        )
    } else {
        String::new()
    };
    format!(
        "simulation: {}: {} probes, {} classes, {} mismatches{unverifiable}, {} expectation checks passed ({} ms)",
        sim_verdict_text(t),
        s.probes,
        s.classes,
        s.mismatches,
        expects_passed(t),
        s.millis
    )
}

pub(crate) fn finding_line(f: &Finding) -> String {
    format!("{f}")
}

/// Terraform-like text.
pub fn human_plan(plan: &Plan) -> String {
    let mut s = human_plan_header(plan);
    for t in &plan.targets {
        s.push_str(&human_plan_target(t));
    }
    s.push_str(&human_plan_footer(plan));
    s
}

/// The first line of the human plan.
pub fn human_plan_header(plan: &Plan) -> String {
    format!(
        "intentwall plan (intents {})\n",
        plan.intent_digest.get(..19).unwrap_or(&plan.intent_digest)
    )
}

/// One target's section of the human plan.
pub fn human_plan_target(t: &TargetPlan) -> String {
    let mut s = String::new();
    {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{}  ({}{})",
            target_title(t),
            t.snapshot.display(),
            if t.existed {
                ""
            } else {
                ": no recorded state, a new target"
            }
        );
        for c in &t.changes {
            let o = c.object();
            let why = o
                .flow
                .as_ref()
                .map(|f| format!("   # flow {f}"))
                .unwrap_or_else(|| {
                    if o.managed {
                        String::new()
                    } else {
                        "   # unmanaged".into()
                    }
                });
            let _ = writeln!(
                s,
                "  {:>3} {} {}{}",
                c.action.symbol(),
                o.kind,
                o.summary,
                why
            );
            if matches!(c.action, Action::Update | Action::Replace) {
                for fc in field_changes(c) {
                    let _ = writeln!(s, "        {}: {} -> {}", fc.field, fc.before, fc.after);
                }
            }
        }
        if !t.has_changes() {
            let _ = writeln!(s, "  no changes ({} objects up to date)", t.unchanged);
        }
        let _ = writeln!(s, "  {}", sim_line(t));
        for f in &t.findings {
            let _ = writeln!(s, "  ! {}", finding_line(f));
        }
        if t.blocked {
            let _ = writeln!(s, "  BLOCKED: this target will not be applied");
        }
    }
    s
}

/// Guardrails and the summary line of the human plan (targets may be handed out).
pub fn human_plan_footer(plan: &Plan) -> String {
    let mut s = String::new();
    if !plan.guardrails.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "guardrails:");
        for f in &plan.guardrails {
            let _ = writeln!(s, "  ! {}", finding_line(f));
        }
    }
    let count = |a: Action| plan.targets.iter().map(|t| t.count(a)).sum::<usize>();
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Plan: {} to create, {} to update, {} to replace, {} to delete across {} targets; {} blocked, {} findings.",
        count(Action::Create),
        count(Action::Update),
        count(Action::Replace),
        count(Action::Delete),
        plan.targets.len(),
        plan.targets.iter().filter(|t| t.blocked).count(),
        plan.findings().count()
    );
    s
}

/// Apply outcome, one line per target.
pub fn human_apply(r: &ApplyReport) -> String {
    let mut s = String::new();
    for t in &r.targets {
        let _ = writeln!(
            s,
            "{} / {}: {:?}{}{}",
            t.deployment,
            t.provider,
            t.outcome,
            if t.changes > 0 {
                format!(", {} changes", t.changes)
            } else {
                String::new()
            },
            t.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    s
}

/// The flow-log replay section of `simulate` (human text). Mismatch findings are listed with
/// the other findings; this section gives the figures and the non-blocking evidence.
pub fn human_replay(r: &crate::simulate::flowlog::Replay) -> String {
    let mut s = String::new();
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "flow-log replay: {} ({}): {} records read, {} skipped{}, {} outside every deployment, {} unattributed, {} checked, {} mismatches, {} expectation failures, {} drift ({} ms)",
        r.file,
        r.format,
        r.records,
        r.skipped,
        if r.skipped_by_reason.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                r.skipped_by_reason
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        r.outside,
        r.unattributed,
        r.checked,
        r.mismatches,
        r.expectations_failed,
        r.drift,
        r.millis
    );
    if r.unverifiable > 0 {
        let _ = writeln!(
            s,
            "{} records not judged: their verdict depends on rules whose match is unknown (declare service_tags / prefix_lists in the placement)",
            r.unverifiable
        );
    }
    let _ = writeln!(
        s,
        "{:<12} {:<6} {:>8} {:>8} {:>12} {:>10} {:>7}  verdict",
        "deployment", "cloud", "records", "checked", "unattributed", "mismatches", "drift"
    );
    for t in r.targets.iter().filter(|t| t.records > 0) {
        let _ = writeln!(
            s,
            "{:<12} {:<6} {:>8} {:>8} {:>12} {:>10} {:>7}  {}",
            t.deployment,
            t.provider.map(|p| p.as_str()).unwrap_or("-"),
            t.records,
            t.checked,
            t.unattributed,
            t.mismatches + t.expectations_failed,
            t.drift,
            if t.mismatches + t.expectations_failed > 0 {
                "BLOCKED"
            } else if t.unverifiable > 0 {
                "unverified"
            } else {
                "agrees"
            }
        );
    }
    for x in &r.outside_examples {
        let _ = writeln!(s, "  outside every deployment: {x}");
    }
    for t in &r.targets {
        for x in &t.unattributed_examples {
            let _ = writeln!(
                s,
                "  unattributed ({}/{}; an address in the cloud's space but in no group's declared addresses): {x}",
                t.deployment,
                t.provider.map(|p| p.as_str()).unwrap_or("-")
            );
        }
        for x in &t.drift_examples {
            let _ = writeln!(
                s,
                "  drift evidence ({}/{}, past state, not blocking): {x}",
                t.deployment,
                t.provider.map(|p| p.as_str()).unwrap_or("-")
            );
        }
    }
    s
}

#[cfg(test)]
mod tests;
