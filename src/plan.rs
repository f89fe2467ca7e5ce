//! Intent + observed state -> a plan: per target, the desired native state (through the
//! provider's `translate`), the change set, the simulation verdict and the findings.
//!
//! Planning is pure apart from reading snapshots: a plan is data that fully decides apply.
//! A plan file records the intent digest and a fingerprint of each target's observed state,
//! so `apply plan.json` can refuse a plan whose world has moved on.

use crate::backend::{self, snapshot};
use crate::diff::{self, Action, Change};
use crate::intent::{Deployment, Intent};
use crate::simulate::{self, SimReport};
use intentwall_contract::{Finding, NativeObject, NativeState, ProviderKind, Translation};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Version of the plan JSON schema (docs/plan-format.md).
pub const FORMAT_VERSION: u32 = 1;

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Snapshot directory.
    pub snapshots: PathBuf,
    /// Plan deletion of unmanaged rules in managed targets.
    pub prune_unmanaged: bool,
    /// Only this deployment.
    pub deployment: Option<String>,
    /// Only this cloud.
    pub provider: Option<ProviderKind>,
    /// Keep each target's state after apply in the plan (`--emit`, flow-log replay). Off, it
    /// is dropped as soon as the target is simulated: at estate scale it is a full copy of
    /// every rule of every target.
    pub keep_after: bool,
}

/// One target's plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetPlan {
    /// Deployment.
    pub deployment: String,
    /// Cloud.
    pub provider: ProviderKind,
    /// Snapshot file the state came from.
    pub snapshot: PathBuf,
    /// False when there was no recorded state (a new region).
    pub existed: bool,
    /// Fingerprint of the observed state when planned.
    pub fingerprint: String,
    /// Changes in make-before-break order.
    pub changes: Vec<Change>,
    /// Objects left as they are.
    pub unchanged: usize,
    /// Managed rules (not containers) observed before apply.
    pub managed_rules_before: usize,
    /// Managed rules the target holds after apply.
    pub managed_rules_after: usize,
    /// Simulation figures for the state after apply.
    pub simulation: SimReport,
    /// Findings of this target (translation and simulation).
    pub findings: Vec<Finding>,
    /// True when this target must not be applied.
    pub blocked: bool,
    /// The state the target would have after apply (what `--emit` writes).
    #[serde(skip)]
    pub after: NativeState,
}

impl TargetPlan {
    /// Count of changes with an action.
    pub fn count(&self, a: Action) -> usize {
        self.changes.iter().filter(|c| c.action == a).count()
    }
}

/// A whole plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Schema version.
    pub format_version: u32,
    /// Digest of the intent files planned from.
    pub intent_digest: String,
    /// Planned with `--prune-unmanaged`.
    pub prune_unmanaged: bool,
    /// Guardrail findings (per deployment, not per cloud).
    pub guardrails: Vec<Finding>,
    /// Targets, by deployment then cloud.
    pub targets: Vec<TargetPlan>,
}

impl Plan {
    /// Any blocking finding anywhere.
    pub fn blocked(&self) -> bool {
        !self.guardrails.is_empty() || self.targets.iter().any(|t| t.blocked)
    }
    /// Any change anywhere.
    pub fn has_changes(&self) -> bool {
        self.targets.iter().any(|t| !t.changes.is_empty())
    }
    /// Every finding, guardrails first.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.guardrails
            .iter()
            .chain(self.targets.iter().flat_map(|t| t.findings.iter()))
    }
    /// Exit code of `plan`: 3 blocked, 2 changes, 0 nothing to do.
    pub fn exit_code(&self) -> u8 {
        if self.blocked() {
            3
        } else if self.has_changes() {
            2
        } else {
            0
        }
    }
    /// Read a plan file, checking its version.
    pub fn read(path: &Path) -> anyhow::Result<Plan> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read plan: {e}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}:{}: not a plan file: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        match v.get("format_version").and_then(|x| x.as_u64()) {
            Some(n) if n == FORMAT_VERSION as u64 => {}
            Some(n) => anyhow::bail!(
                "{}: plan format_version {n} is not supported (this intentwall reads {FORMAT_VERSION})",
                path.display()
            ),
            None => anyhow::bail!("{}: not a plan file (no format_version)", path.display()),
        }
        // parsed again from the text so an error names its line and column
        let plan: Plan = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}:{}: malformed plan: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        // every change must carry the object its action writes or removes
        for t in &plan.targets {
            for c in &t.changes {
                let (need, has) = match c.action {
                    Action::Delete => ("before", c.before.is_some()),
                    _ => ("after", c.after.is_some()),
                };
                if !has {
                    anyhow::bail!(
                        "{}: malformed plan: change `{}` of {}/{} ({:?}) has no `{need}` object",
                        path.display(),
                        c.key,
                        t.deployment,
                        t.provider,
                        c.action
                    );
                }
            }
        }
        Ok(plan)
    }
}

/// The state a target should hold: the translation's managed objects plus every unmanaged
/// object kept as it is (containers and foreign objects always; rules unless pruning). An
/// unmanaged rule that happens to equal a desired one is left alone rather than adopted; an
/// unmanaged container the translation needs (an NSG someone made) is adopted.
///
/// Takes the translation's objects by value: a large target's rules are moved, not copied.
pub fn compose(
    observed: &NativeState,
    desired: Vec<NativeObject>,
    prune_unmanaged: bool,
) -> NativeState {
    let kept = |o: &&NativeObject| !o.managed && (o.foreign || o.container || !prune_unmanaged);
    let kept_rules: HashSet<&str> = observed
        .objects
        .iter()
        .filter(kept)
        .filter(|o| !o.container)
        .map(|o| o.key.as_str())
        .collect();
    let desired_containers: HashSet<&str> = desired
        .iter()
        .filter(|d| d.container)
        .map(|d| d.key.as_str())
        .collect();
    let mut objects: Vec<NativeObject> = observed
        .objects
        .iter()
        .filter(kept)
        .filter(|o| !desired_containers.contains(o.key.as_str()))
        .cloned()
        .collect();
    objects.extend(
        desired
            .into_iter()
            .filter(|d| !kept_rules.contains(d.key.as_str())),
    );
    NativeState {
        objects,
        envelope: observed.envelope.clone(),
    }
}

/// Plan one target.
fn plan_target(
    dep: &Deployment,
    kind: ProviderKind,
    opts: &PlanOptions,
) -> anyhow::Result<TargetPlan> {
    let provider = backend::require(kind)?;
    let intent = dep
        .resolve(kind)
        .ok_or_else(|| anyhow::anyhow!("deployment `{}` has no {kind} placement", dep.name))?;
    let observed = snapshot::read(&opts.snapshots, provider, &intent)?;
    let Translation {
        objects: desired,
        findings: mut translation_findings,
    } = provider.translate(&intent, &observed.state);
    let desired = compose(&observed.state, desired, opts.prune_unmanaged);
    let (changes, unchanged) = diff::diff_owned(provider, &observed.state, desired);
    let after = diff::apply_changes(&observed.state, &changes);
    let sim = simulate::simulate(provider, dep, &intent, &after);
    let managed_rules = |s: &NativeState| {
        s.objects
            .iter()
            .filter(|o| o.managed && !o.container)
            .count()
    };
    translation_findings.extend(sim.findings);
    let findings = translation_findings;
    tracing::info!(
        deployment = %dep.name, provider = %kind, changes = changes.len(),
        probes = sim.report.probes, classes = sim.report.classes,
        mismatches = sim.report.mismatches, millis = sim.report.millis,
        "planned target"
    );
    Ok(TargetPlan {
        deployment: dep.name.clone(),
        provider: kind,
        snapshot: observed.path,
        existed: observed.existed,
        fingerprint: observed.fingerprint,
        blocked: !findings.is_empty(),
        managed_rules_before: managed_rules(&observed.state),
        managed_rules_after: managed_rules(&after),
        changes,
        unchanged,
        simulation: sim.report,
        findings,
        after: if opts.keep_after {
            after
        } else {
            NativeState::default()
        },
    })
}

/// Plan every selected target. All snapshot errors are reported together.
pub fn build(intent: &Intent, opts: &PlanOptions) -> anyhow::Result<Plan> {
    snapshot::check_root(&opts.snapshots)?;
    let mut jobs = Vec::new();
    for dep in intent.deployments.values() {
        if opts.deployment.as_ref().is_some_and(|d| d != &dep.name) {
            continue;
        }
        for &kind in dep.clouds.keys() {
            if opts.provider.is_some_and(|p| p != kind) {
                continue;
            }
            jobs.push((dep, kind));
        }
    }
    if let Some(d) = &opts.deployment {
        if !intent.deployments.contains_key(d) {
            anyhow::bail!("unknown deployment `{d}`");
        }
    }
    // targets are independent: plan them on all cores
    let results: Vec<anyhow::Result<TargetPlan>> = std::thread::scope(|s| {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .max(1);
        let chunks: Vec<Vec<(usize, &(&Deployment, ProviderKind))>> = (0..workers)
            .map(|w| jobs.iter().enumerate().skip(w).step_by(workers).collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(i, (dep, kind))| (i, plan_target(dep, *kind, opts)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, anyhow::Result<TargetPlan>)> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("planning thread panicked"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(t) => targets.push(t),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("\n"));
    }
    let guardrails: Vec<Finding> = crate::intent::guardrails::check(intent)
        .into_iter()
        .filter(|f| opts.deployment.as_ref().is_none_or(|d| d == &f.deployment))
        .collect();
    // a guardrail blocks every target of its deployment
    for t in &mut targets {
        if guardrails.iter().any(|f| f.deployment == t.deployment) {
            t.blocked = true;
        }
    }
    Ok(Plan {
        format_version: FORMAT_VERSION,
        intent_digest: intent.digest.clone(),
        prune_unmanaged: opts.prune_unmanaged,
        guardrails,
        targets,
    })
}

/// Write, for every target, the state it would have after apply, in the snapshot format.
/// Writes stay inside `dir` ([`snapshot::write_inside`]); the caller holds `dir`'s lock.
pub fn emit(plan: &Plan, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for t in &plan.targets {
        let provider = backend::require(t.provider)?;
        let p = snapshot::path(dir, &t.deployment, t.provider)?;
        snapshot::write_inside(dir, &p, provider.render_snapshot(&t.after).as_bytes())?;
        written.push(p);
    }
    Ok(written)
}
