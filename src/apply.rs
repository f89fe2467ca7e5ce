//! Change set -> backend, with the guards that make apply safe to run unattended.
//!
//! Order of work, for every target of the plan:
//! 1. **staleness** first, for all targets, before anything is written: the observed state must
//!    still have the fingerprint the plan recorded, else the whole apply is refused;
//! 2. **blocked** targets (plan marks them: any finding, or a guardrail finding of their
//!    deployment) are skipped; the others go on (regions fail independently);
//! 3. the **blast-radius guard** refuses a target that would lose more than `max_deletes`
//!    objects or every managed rule it has, unless forced;
//! 4. the change set is applied in its make-before-break order and written atomically; each
//!    mutating change is logged as a structured audit event;
//! 5. **convergence**: the target is read back and must diff empty against what was written.

use crate::backend::{self, snapshot};
use crate::diff::{self, Action};
use crate::intent::Intent;
use crate::plan::{Plan, TargetPlan};
use intentwall_contract::ProviderKind;
use serde::Serialize;

/// Apply settings.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Snapshot directory.
    pub snapshots: std::path::PathBuf,
    /// Refuse a target deleting more objects than this.
    pub max_deletes: usize,
    /// Override the blast-radius guard.
    pub force: bool,
}

/// What happened to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Changes written and converged.
    Applied,
    /// Nothing to do.
    NoChanges,
    /// Not applied: findings block it.
    Blocked,
    /// Not applied: the blast-radius guard refused it.
    Refused,
    /// Writing or converging failed.
    Failed,
}

/// One target's result.
#[derive(Debug, Clone, Serialize)]
pub struct TargetOutcome {
    /// Deployment.
    pub deployment: String,
    /// Cloud.
    pub provider: ProviderKind,
    /// What happened.
    pub outcome: Outcome,
    /// Changes written.
    pub changes: usize,
    /// Why, for anything but applied / no changes.
    pub reason: Option<String>,
}

/// The whole apply.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// Per target.
    pub targets: Vec<TargetOutcome>,
}

impl ApplyReport {
    /// DESIGN.md §6: 1 if any target failed, else 3 if any was blocked or refused, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.targets.iter().any(|t| t.outcome == Outcome::Failed) {
            1
        } else if self
            .targets
            .iter()
            .any(|t| matches!(t.outcome, Outcome::Blocked | Outcome::Refused))
        {
            3
        } else {
            0
        }
    }
}

/// Refuse the whole plan if the intents or any target's state changed since planning.
pub fn check_fresh(plan: &Plan, intent: &Intent, opts: &ApplyOptions) -> anyhow::Result<()> {
    if plan.intent_digest != intent.digest {
        anyhow::bail!(
            "stale plan: the intents changed since it was made (plan {}, now {}); run plan again",
            short(&plan.intent_digest),
            short(&intent.digest)
        );
    }
    let mut stale = Vec::new();
    for t in &plan.targets {
        let p = snapshot::path(&opts.snapshots, &t.deployment, t.provider)?;
        let now = match std::fs::read(&p) {
            Ok(b) => snapshot::fingerprint(&b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "absent".into(),
            Err(e) => anyhow::bail!("{}: cannot read snapshot: {e}", p.display()),
        };
        if now != t.fingerprint {
            stale.push(format!("{}/{} ({})", t.deployment, t.provider, p.display()));
        }
    }
    if !stale.is_empty() {
        anyhow::bail!(
            "stale plan: state changed since planning for {}; nothing was changed, run plan again",
            stale.join(", ")
        );
    }
    Ok(())
}

fn short(d: &str) -> &str {
    let d = d.strip_prefix("sha256:").unwrap_or(d);
    &d[..d.len().min(12)]
}

fn guard(t: &TargetPlan, opts: &ApplyOptions) -> Option<String> {
    if opts.force {
        return None;
    }
    let deletes = t
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .count();
    if deletes > opts.max_deletes {
        return Some(format!(
            "would delete {deletes} objects, more than --max-deletes {} (use --force to override)",
            opts.max_deletes
        ));
    }
    if t.managed_rules_before > 0 && t.managed_rules_after == 0 {
        return Some(
            "would remove every managed rule of the target (use --force to override)".into(),
        );
    }
    None
}

/// Apply a fresh plan to the snapshot backend.
pub fn apply(plan: &Plan, intent: &Intent, opts: &ApplyOptions) -> anyhow::Result<ApplyReport> {
    check_fresh(plan, intent, opts)?;
    let mut report = ApplyReport {
        targets: Vec::new(),
    };
    for t in &plan.targets {
        let mut out = TargetOutcome {
            deployment: t.deployment.clone(),
            provider: t.provider,
            outcome: Outcome::NoChanges,
            changes: 0,
            reason: None,
        };
        if t.blocked {
            // plan marks a target blocked for its own findings and for its deployment's
            // guardrail findings (DESIGN.md §4, §6); apply only reads the flag
            let guardrails = plan
                .guardrails
                .iter()
                .filter(|g| g.deployment == t.deployment)
                .count();
            out.outcome = Outcome::Blocked;
            out.reason = Some(format!(
                "{} finding(s) and {guardrails} guardrail finding(s) of deployment `{}` block this target",
                t.findings.len(),
                t.deployment
            ));
        } else if t.changes.is_empty() {
        } else if let Some(why) = guard(t, opts) {
            out.outcome = Outcome::Refused;
            out.reason = Some(why);
        } else {
            match apply_target(t, intent, opts) {
                Ok(n) => {
                    out.outcome = Outcome::Applied;
                    out.changes = n;
                }
                Err(e) => {
                    out.outcome = Outcome::Failed;
                    out.reason = Some(format!("{e:#}"));
                }
            }
        }
        report.targets.push(out);
    }
    Ok(report)
}

fn apply_target(t: &TargetPlan, intent: &Intent, opts: &ApplyOptions) -> anyhow::Result<usize> {
    let provider = backend::require(t.provider)?;
    let dep = intent
        .deployments
        .get(&t.deployment)
        .ok_or_else(|| anyhow::anyhow!("plan names unknown deployment `{}`", t.deployment))?;
    let di = dep
        .resolve(t.provider)
        .ok_or_else(|| anyhow::anyhow!("deployment `{}` has no {}", t.deployment, t.provider))?;
    let observed = snapshot::read(&opts.snapshots, provider, &di)?;
    let after = diff::apply_changes(&observed.state, &t.changes);
    for c in &t.changes {
        let o = c.object();
        tracing::info!(
            target: "audit",
            deployment = %t.deployment,
            provider = %t.provider,
            action = ?c.action,
            key = %c.key,
            kind = %o.kind,
            flow = o.flow.as_deref().unwrap_or(""),
            before = %c.before.as_ref().map(|b| b.body.to_string()).unwrap_or_default(),
            after = %c.after.as_ref().map(|a| a.body.to_string()).unwrap_or_default(),
            user = %std::env::var("USER").unwrap_or_default(),
            "apply change"
        );
    }
    let text = provider.render_snapshot(&after);
    snapshot::write_atomic(&observed.path, text.as_bytes())?;
    // convergence: what is there now must be exactly what we meant to write
    let reread = snapshot::read(&opts.snapshots, provider, &di)?;
    let (residue, _) = diff::diff(provider, &reread.state, &after);
    if !residue.is_empty() {
        anyhow::bail!(
            "did not converge: {} object(s) differ after apply, first `{}`",
            residue.len(),
            residue[0].key
        );
    }
    Ok(t.changes.len())
}
