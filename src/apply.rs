//! Change set -> backend, with the guards that make apply safe to run unattended.
//!
//! A plan file is untrusted input: anyone who can edit it between review and apply could
//! otherwise open traffic that was never simulated. So apply never executes what a file
//! says; it plans again from the intents and the observed state and executes that, and only
//! when it equals the recorded plan (see [`verify`]).
//!
//! Order of work, for every target of the plan:
//! 1. **staleness** first, for all targets, before anything is written: the intents and the
//!    observed state must still have the digest and fingerprints the plan recorded, else the
//!    whole apply is refused; then the **re-derivation**: the fresh plan's changes, blocked
//!    flags, findings and figures must equal the recorded ones, else the whole apply is refused;
//! 2. **blocked** targets (plan marks them: any finding, or a guardrail finding of their
//!    deployment) are skipped; the others go on (regions fail independently);
//! 3. the **blast-radius guard** refuses a target that would lose more than `max_deletes`
//!    objects or every managed rule it has, unless forced;
//! 4. immediately before the write, the target is read again and must still have the
//!    fingerprint the plan was computed from, else it stops "changed under us" (exit 1) and
//!    nothing is written to it; then the change set is applied in its make-before-break order
//!    and written atomically, inside the snapshot root; each mutating change is logged as a
//!    structured audit event;
//! 5. **convergence**: the target is read back and must diff empty against what was written.
//!
//! The caller holds the snapshot root's lock ([`crate::backend::lock`]) from before planning
//! to the end, so no other intentwall run writes in between; the fingerprint re-check catches
//! every other writer (a hand edit, a capture script) up to the last moment.

use crate::backend::{self, Backend, Target};
use crate::diff::{self, Action};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::intent::Intent;
use crate::plan::{self, Plan, PlanOptions, TargetPlan};
use intentwall_contract::ProviderKind;
use serde::Serialize;

/// Apply settings.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Where state is observed and changes go.
    pub backend: Backend,
    /// Refuse a target deleting more objects than this.
    pub max_deletes: usize,
    /// Override the blast-radius guard.
    pub force: bool,
    /// Targets written at the same time (at least 1). Targets are independent (each its own
    /// snapshot file, VPC, NSG or network), so a slow region or cloud need not hold up the
    /// others; each target keeps one writer and its own make-before-break order.
    pub parallelism: usize,
    /// Before any write, ask the backend whether its identity may make every call the
    /// changes need; refuse the whole apply if not.
    pub preflight: bool,
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
    /// Error if any target failed, else blocked if any was blocked or refused, else ok.
    pub fn status(&self) -> ExitStatus {
        if self.targets.iter().any(|t| t.outcome == Outcome::Failed) {
            ExitStatus::Error
        } else if self
            .targets
            .iter()
            .any(|t| matches!(t.outcome, Outcome::Blocked | Outcome::Refused))
        {
            ExitStatus::Blocked
        } else {
            ExitStatus::Ok
        }
    }
}

/// A plan's target resolved from the intents (never from the plan file's words): its
/// placement and resolved intent, or an error when the intents have no such target.
fn resolve(
    t: &TargetPlan,
    intent: &Intent,
) -> Result<(Target, intentwall_contract::DeploymentIntent), Error> {
    let di = intent
        .deployments
        .get(&t.deployment)
        .and_then(|d| crate::graph::resolve(d, t.provider))
        .ok_or_else(|| Error::PlanTarget {
            deployment: t.deployment.clone(),
            provider: t.provider,
        })?;
    Ok((Target::of(&di, t.provider), di))
}

/// Refuse a plan made from other intents.
fn intents_unchanged(plan: &Plan, intent: &Intent) -> Result<(), Error> {
    if plan.intent_digest != intent.digest {
        return Err(Error::StalePlan(format!(
            "the intents changed since it was made (plan {}, now {}); run plan again",
            short(&plan.intent_digest),
            short(&intent.digest)
        )));
    }
    Ok(())
}

/// Refuse a plan whose targets (`name (source)`) changed since planning.
fn refuse_stale(stale: Vec<String>) -> Result<(), Error> {
    if stale.is_empty() {
        return Ok(());
    }
    Err(Error::StalePlan(format!(
        "state changed since planning for {}; nothing was changed, run plan again",
        stale.join(", ")
    )))
}

/// Refuse the whole plan if the intents or any target's state changed since planning.
pub fn check_fresh(plan: &Plan, intent: &Intent, opts: &ApplyOptions) -> Result<(), Error> {
    intents_unchanged(plan, intent)?;
    let mut targets = Vec::new();
    for t in &plan.targets {
        targets.push(resolve(t, intent)?);
    }
    let names: Vec<String> = targets.iter().map(|(t, _)| t.to_string()).collect();
    let _phase = tracing::info_span!("observe").entered();
    let observed = opts
        .backend
        .observe_all(targets, opts.backend.concurrency());
    let mut stale = Vec::new();
    for ((t, name), now) in plan.targets.iter().zip(names).zip(observed) {
        let now = now?;
        if now.fingerprint != t.fingerprint {
            stale.push(format!("{name} ({})", now.source.display()));
        }
    }
    refuse_stale(stale)
}

/// The first 12 characters of a digest (by character: a plan file's digest is untrusted text).
fn short(d: &str) -> String {
    let d = d.strip_prefix("sha256:").unwrap_or(d);
    d.chars().take(12).collect()
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

/// Re-derive a recorded plan: plan again from the intents and the observed state, and return
/// the fresh targets matching the recorded ones, or why the file cannot be trusted. Everything
/// that decides what apply does must be equal: the intent digest, each target's fingerprint
/// (a difference is a stale plan), changes (action, key, before and after), blocked flag,
/// findings and rule counts, and the guardrail findings of the planned deployments. The recorded plan may cover fewer targets
/// than the intents have (a plan made with `--deployment`/`--provider`).
pub fn verify(recorded: &Plan, intent: &Intent, backend: &Backend) -> Result<Plan, Error> {
    let fresh = plan::build(
        intent,
        &PlanOptions {
            backend: backend.clone(),
            prune_unmanaged: recorded.prune_unmanaged,
            deployment: None,
            provider: None,
            shard: None,
            keep_after: false,
        },
    )?;
    let refuse = Error::PlanDiffers;
    if recorded.intent_digest != fresh.intent_digest {
        return Err(refuse("the intent digest differs".into()));
    }
    let find = |r: &TargetPlan| {
        fresh
            .targets
            .iter()
            .find(|f| f.deployment == r.deployment && f.provider == r.provider)
    };
    // staleness first, judged from the fresh plan's own observation (no second read)
    let stale = recorded
        .targets
        .iter()
        .filter_map(|r| find(r).map(|f| (r, f)))
        .filter(|(r, f)| r.fingerprint != f.fingerprint)
        .map(|(r, f)| format!("{}/{} ({})", r.deployment, r.provider, f.snapshot.display()))
        .collect();
    refuse_stale(stale)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut targets = Vec::new();
    for r in &recorded.targets {
        let name = format!("{}/{}", r.deployment, r.provider);
        if !seen.insert((r.deployment.clone(), r.provider)) {
            return Err(refuse(format!("target {name} appears twice")));
        }
        let Some(f) = find(r) else {
            return Err(refuse(format!("the intents have no target {name}")));
        };
        if let Some(why) = target_difference(r, f) {
            return Err(refuse(format!("{name}: {why}")));
        }
        targets.push(f.clone());
    }
    let deployments: std::collections::BTreeSet<&str> = recorded
        .targets
        .iter()
        .map(|t| t.deployment.as_str())
        .collect();
    let guardrails = |p: &Plan| -> Vec<intentwall_contract::Finding> {
        p.guardrails
            .iter()
            .filter(|g| deployments.contains(g.deployment.as_str()))
            .cloned()
            .collect()
    };
    if guardrails(recorded) != guardrails(&fresh) {
        return Err(refuse("the guardrail findings differ".into()));
    }
    Ok(Plan {
        targets,
        guardrails: guardrails(&fresh),
        ..fresh
    })
}

/// The first way a recorded target differs from the fresh one, in words.
fn target_difference(r: &TargetPlan, f: &TargetPlan) -> Option<String> {
    if r.placement != f.placement {
        return Some("the placement differs".into());
    }
    if r.fingerprint != f.fingerprint || r.existed != f.existed {
        return Some("the observed state's fingerprint differs".into());
    }
    if r.changes.len() != f.changes.len() {
        return Some(format!(
            "{} change(s) recorded, {} planned now",
            r.changes.len(),
            f.changes.len()
        ));
    }
    if let Some((i, (a, b))) = r
        .changes
        .iter()
        .zip(&f.changes)
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        return Some(format!(
            "change #{} (`{}`) differs from the planned `{}` {:?}",
            i + 1,
            a.key,
            b.key,
            b.action
        ));
    }
    if r.blocked != f.blocked {
        return Some(format!(
            "recorded as {}blocked, planned as {}blocked",
            if r.blocked { "" } else { "not " },
            if f.blocked { "" } else { "not " }
        ));
    }
    if r.findings != f.findings {
        return Some("the findings differ".into());
    }
    if (r.unchanged, r.managed_rules_before, r.managed_rules_after)
        != (f.unchanged, f.managed_rules_before, f.managed_rules_after)
    {
        return Some("the object counts differ".into());
    }
    let timeless = |s: &crate::simulate::SimReport| crate::simulate::SimReport {
        millis: 0,
        ..s.clone()
    };
    if timeless(&r.simulation) != timeless(&f.simulation) {
        return Some("the simulation figures differ".into());
    }
    None
}

/// Apply a recorded plan to the snapshot backend: refused unless fresh and equal to what
/// planning gives now; what is executed is the fresh plan, never the file's content.
pub fn apply_recorded(
    recorded: &Plan,
    intent: &Intent,
    opts: &ApplyOptions,
) -> Result<ApplyReport, Error> {
    // names from the file reach paths: only targets the intents have are looked at
    for t in &recorded.targets {
        resolve(t, intent)?;
    }
    intents_unchanged(recorded, intent)?;
    // planned again from one observation of every target, which also judges staleness; each
    // target's fingerprint is checked again right before its write
    let fresh = verify(recorded, intent, &opts.backend)?;
    execute(&fresh, intent, opts)
}

/// Apply a plan to the snapshot backend, refused as a whole if it is stale.
pub fn apply(plan: &Plan, intent: &Intent, opts: &ApplyOptions) -> Result<ApplyReport, Error> {
    check_fresh(plan, intent, opts)?;
    execute(plan, intent, opts)
}

/// Apply every target of a fresh plan: blocked and refused ones skipped, the others written,
/// up to `parallelism` at a time. The report keeps the plan's order whatever finishes first.
fn execute(plan: &Plan, intent: &Intent, opts: &ApplyOptions) -> Result<ApplyReport, Error> {
    if opts.preflight {
        preflight(plan, intent, opts)?;
    }
    let mut targets = Vec::with_capacity(plan.targets.len());
    plan::in_order(
        plan.targets.iter().collect(),
        opts.parallelism,
        |t| outcome(plan, t, intent, opts),
        |o| {
            targets.push(o);
            Ok(())
        },
    )?;
    Ok(ApplyReport { targets })
}

/// What becomes of one target: skipped (blocked, refused, nothing to do) or written.
fn outcome(plan: &Plan, t: &TargetPlan, intent: &Intent, opts: &ApplyOptions) -> TargetOutcome {
    let mut out = TargetOutcome {
        deployment: t.deployment.clone(),
        provider: t.provider,
        outcome: Outcome::NoChanges,
        changes: 0,
        reason: None,
    };
    if t.blocked {
        // plan marks a target blocked for its own findings and for its deployment's
        // guardrail findings; apply only reads the flag
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
                out.reason = Some(e.to_string());
            }
        }
    }
    out
}

/// `--preflight`: every target that will be written is checked before the first write; any
/// call the identity may not make refuses the whole apply (nothing written).
fn preflight(plan: &Plan, intent: &Intent, opts: &ApplyOptions) -> Result<(), Error> {
    let mut denied = Vec::new();
    for t in plan
        .targets
        .iter()
        .filter(|t| !t.blocked && !t.changes.is_empty())
    {
        let (target, _) = resolve(t, intent)?;
        for d in backend::block_on(opts.backend.preflight(&target, &t.changes))? {
            denied.push(format!("{target}: {d}"));
        }
    }
    if denied.is_empty() {
        Ok(())
    } else {
        Err(Error::PreflightDenied(denied))
    }
}

/// Apply one target of a fresh plan through the backend, which refuses ("changed under us",
/// nothing written) when the state no longer has the fingerprint the plan was computed from;
/// then observe it again and require convergence. Returns the writes made. Public so the
/// last-moment re-check can be tested without a race.
pub fn apply_target(t: &TargetPlan, intent: &Intent, opts: &ApplyOptions) -> Result<usize, Error> {
    let _target =
        tracing::info_span!("target", deployment = %t.deployment, provider = %t.provider).entered();
    let provider = backend::require(t.provider)?;
    let (target, di) = resolve(t, intent)?;
    let b = &opts.backend;
    let executed = {
        let _phase = tracing::info_span!("execute").entered();
        backend::block_on(b.execute(&target, &di, &t.fingerprint, &t.changes))
    };
    let executed = match executed {
        Ok(e) => e,
        Err(e) => {
            // audited too: someone reading the trail must see that nothing was changed here
            tracing::warn!(
                target: "audit",
                deployment = %t.deployment, provider = %t.provider, changes = t.changes.len(),
                error = %e, user = %crate::logging::actor(),
                "apply failed"
            );
            return Err(e);
        }
    };
    // one audit event per change, once the backend has made it (who, what, where, before and
    // after); logged after the write so the trail never records a change that was refused
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
            user = %crate::logging::actor(),
            "apply change"
        );
    }
    // convergence: what is there now must be exactly what the changes meant, whatever the
    // backend said about its own writes
    let now = {
        let _phase = tracing::info_span!("observe").entered();
        backend::block_on(b.observe(&target, &di))?
    };
    let (residue, _) = diff::diff(provider, &now.state, &executed.meant);
    // foreign objects (outside the perimeter: another VPC's group, a prefix list a rule
    // named) are never written, so they are not ours to converge; one may also leave the
    // observation when the last rule naming it goes
    let residue: Vec<_> = residue
        .into_iter()
        .filter(|c| !c.object().foreign)
        .collect();
    if !residue.is_empty() {
        return Err(Error::NotConverged {
            differing: residue.len(),
            first: residue[0].key.clone(),
        });
    }
    Ok(executed.writes)
}
