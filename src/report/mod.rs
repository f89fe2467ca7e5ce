//! Renderers: the same plan values as human text, JSON, Markdown (for a pull request) and
//! JUnit (for CI test reports). Renderers only format; they decide nothing.

use crate::apply::ApplyReport;
use crate::diff::{Action, Change};
use crate::exit::ExitStatus;
use crate::plan::{Plan, TargetPlan};
use intentwall_contract::Finding;
use std::fmt::Write;

pub mod stream;

/// Output formats of `plan` and `simulate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Terraform-like text for people.
    Human,
    /// The versioned plan JSON (docs/plan-format.md).
    Json,
    /// A Markdown summary for a pull request.
    Markdown,
    /// JUnit XML: one test case per target simulation and per finding.
    Junit,
}

/// Render a plan in a format.
pub fn render_plan(plan: &Plan, format: Format) -> String {
    match format {
        Format::Human => human_plan(plan),
        Format::Json => serde_json::to_string_pretty(plan).expect("plan serialises") + "\n",
        Format::Markdown => markdown(plan),
        Format::Junit => junit(plan),
    }
}

fn field_changes(c: &Change) -> Vec<String> {
    let (Some(b), Some(a)) = (&c.before, &c.after) else {
        return vec![];
    };
    let mut out = Vec::new();
    match (&b.body.value(), &a.body.value()) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (vx, vy) = (x.get(k), y.get(k));
                if vx != vy {
                    let show = |v: Option<&serde_json::Value>| {
                        v.map(|v| v.to_string()).unwrap_or_else(|| "(none)".into())
                    };
                    out.push(format!("{k}: {} -> {}", show(vx), show(vy)));
                }
            }
        }
        (x, y) => out.push(format!("{x} -> {y}")),
    }
    out
}

fn target_title(t: &TargetPlan) -> String {
    format!("{} / {}", t.deployment, t.provider)
}

fn sim_line(t: &TargetPlan) -> String {
    let s = &t.simulation;
    // say which check failed: a failed `expect` with no mismatching packet is not a mismatch
    let verdict = if s.mismatches > 0 {
        "MISMATCH"
    } else if s.expectations_failed > 0 {
        "EXPECTATION FAILED"
    } else if s.unverifiable > 0 {
        "UNVERIFIED"
    } else {
        "proven"
    };
    let unverifiable = if s.unverifiable > 0 {
        format!(
            ", {} unverifiable (depend on unknown matches)",
            s.unverifiable
        )
    } else {
        String::new()
    };
    format!(
        "simulation: {verdict}: {} probes, {} classes, {} mismatches{unverifiable}, {}/{} expectation checks passed ({} ms)",
        s.probes,
        s.classes,
        s.mismatches,
        s.expectations - s.expectations_failed.min(s.expectations),
        s.expectations,
        s.millis
    )
}

fn finding_line(f: &Finding) -> String {
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
                    let _ = writeln!(s, "        {fc}");
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
            format!(
                "{}/{}",
                r.expectations - r.expectations_failed.min(r.expectations),
                r.expectations
            ),
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

/// Text for a Markdown table cell, list item or heading: Markdown punctuation and HTML
/// brackets backslash-escaped, control characters (a newline would start a new row or item)
/// shown as escapes. Names are restricted at load, but findings quote snapshot content
/// (unmanaged rule names and descriptions), which is anyone's text.
fn md_escape(x: &str) -> String {
    let mut out = String::with_capacity(x.len());
    for c in x.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            if "\\`*_[]<>|~&".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// A line inside a fenced code block: control characters shown as escapes, so one change
/// cannot forge another line (`+ allow all`).
fn md_code_line(x: &str) -> String {
    let mut out = String::with_capacity(x.len());
    for c in x.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A code fence longer than any backtick run in `lines`, so no line can close it.
fn md_fence<'a>(lines: impl IntoIterator<Item = &'a String>) -> String {
    let longest = lines
        .into_iter()
        .flat_map(|l| l.split(|c| c != '`').map(str::len))
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// Markdown for a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    markdown_titled(plan, "plan")
}

/// The Markdown summary of `simulate`: the same content, titled by the verb that made it.
pub fn markdown_simulation(plan: &Plan) -> String {
    markdown_titled(plan, "simulate")
}

fn markdown_titled(plan: &Plan, verb: &str) -> String {
    let mut s = String::new();
    let status = match plan.status() {
        ExitStatus::Blocked => "blocked",
        ExitStatus::Changes => "changes",
        ExitStatus::Ok | ExitStatus::Error => "no changes",
    };
    let _ = writeln!(s, "## intentwall {verb}: {status}\n");
    let _ = writeln!(
        s,
        "| target | create | update | replace | delete | simulation | findings |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---|---:|");
    for t in &plan.targets {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} classes, {} mismatches | {} |",
            md_escape(&target_title(t)),
            t.count(Action::Create),
            t.count(Action::Update),
            t.count(Action::Replace),
            t.count(Action::Delete),
            t.simulation.classes,
            t.simulation.mismatches,
            t.findings.len()
        );
    }
    let findings: Vec<&Finding> = plan.findings().collect();
    if !findings.is_empty() {
        let _ = writeln!(s, "\n### Findings\n");
        for f in findings {
            let _ = writeln!(s, "- {}", md_escape(&finding_line(f)));
        }
    }
    let mut lines = Vec::new();
    for t in &plan.targets {
        for c in &t.changes {
            let o = c.object();
            let sign = match c.action {
                Action::Create => "+",
                Action::Delete => "-",
                _ => "!",
            };
            lines.push(md_code_line(&format!(
                "{sign} {}: {} {}",
                target_title(t),
                o.kind,
                o.summary
            )));
        }
    }
    if lines.is_empty() {
        // an empty diff block reads like a rendering fault
        let _ = writeln!(s, "\nNo changes.");
        return s;
    }
    let fence = md_fence(&lines);
    let _ = writeln!(s, "\n<details><summary>Changes</summary>\n\n{fence}diff");
    for l in &lines {
        let _ = writeln!(s, "{l}");
    }
    let _ = writeln!(s, "{fence}\n</details>");
    s
}

/// XML text and attribute values; control characters XML 1.0 cannot carry become U+FFFD.
fn xml(x: &str) -> String {
    x.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// JUnit XML: a suite per target; one case for the simulation, one per finding.
pub fn junit(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let failures: usize =
        plan.targets.iter().map(|t| t.findings.len()).sum::<usize>() + plan.guardrails.len();
    let _ = writeln!(
        s,
        "<testsuites name=\"intentwall\" failures=\"{failures}\">"
    );
    for t in &plan.targets {
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">",
            xml(&target_title(t)),
            1 + t.findings.len(),
            t.findings.len()
        );
        let _ = writeln!(
            s,
            "    <testcase classname=\"{}\" name=\"simulation\" time=\"{:.3}\"><system-out>{}</system-out></testcase>",
            xml(&target_title(t)),
            t.simulation.millis as f64 / 1000.0,
            xml(&sim_line(t))
        );
        for f in &t.findings {
            let _ = writeln!(
                s,
                "    <testcase classname=\"{}\" name=\"{}\"><failure type=\"{}\" message=\"{}\"/></testcase>",
                xml(&target_title(t)),
                xml(f.flow.as_deref().unwrap_or(&f.kind.to_string())),
                f.kind,
                xml(&f.message)
            );
        }
        let _ = writeln!(s, "  </testsuite>");
    }
    if !plan.guardrails.is_empty() {
        let _ = writeln!(
            s,
            "  <testsuite name=\"guardrails\" tests=\"{0}\" failures=\"{0}\">",
            plan.guardrails.len()
        );
        for f in &plan.guardrails {
            let _ = writeln!(
                s,
                "    <testcase classname=\"guardrails.{}\" name=\"{}\"><failure type=\"guardrail\" message=\"{}\"/></testcase>",
                xml(&f.deployment),
                xml(f.flow.as_deref().unwrap_or("guardrail")),
                xml(&f.message)
            );
        }
        let _ = writeln!(s, "  </testsuite>");
    }
    let _ = writeln!(s, "</testsuites>");
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

/// The flow-log replay section of `simulate --format markdown`.
pub fn markdown_replay(r: &crate::simulate::flowlog::Replay) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n### Flow-log replay: {} ({})\n",
        md_escape(&r.file),
        r.format
    );
    let _ = writeln!(
        s,
        "{} records read, {} skipped, {} outside every deployment, {} unattributed, {} checked, **{} mismatches**, {} expectation failures, {} drift records.\n",
        r.records, r.skipped, r.outside, r.unattributed, r.checked, r.mismatches, r.expectations_failed, r.drift
    );
    let _ = writeln!(
        s,
        "| target | records | checked | unattributed | mismatches | drift |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for t in r.targets.iter().filter(|t| t.records > 0) {
        let _ = writeln!(
            s,
            "| {} / {} | {} | {} | {} | {} | {} |",
            md_escape(&t.deployment),
            t.provider.map(|p| p.as_str()).unwrap_or("-"),
            t.records,
            t.checked,
            t.unattributed,
            t.mismatches + t.expectations_failed,
            t.drift
        );
    }
    s
}

#[cfg(test)]
mod tests;
