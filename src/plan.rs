//! Intent + observed state -> a plan: per target, the desired native state (through the
//! provider's `translate`), the change set, the simulation verdict and the findings.
//!
//! Planning is pure apart from reading snapshots: a plan is data that fully decides apply.
//! A plan file records the intent digest and a fingerprint of each target's observed state,
//! so `apply plan.json` can refuse a plan whose world has moved on.

use crate::backend::{self, Backend, Observed, Target};
use crate::diff::{self, Action, Change};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::graph::ServiceGraph;
use crate::intent::{Deployment, Intent};
use crate::simulate::{self, SimReport};
use intentwall_contract::{
    DeploymentIntent, Finding, NativeObject, NativeState, ProviderKind, Translation,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Version of the plan JSON schema (docs/plan-format.md).
pub const FORMAT_VERSION: u32 = 1;

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Where state is observed.
    pub backend: Backend,
    /// Plan deletion of unmanaged rules in managed targets.
    pub prune_unmanaged: bool,
    /// Only this deployment.
    pub deployment: Option<String>,
    /// Only this cloud.
    pub provider: Option<ProviderKind>,
    /// Only the deployments of this shard (`--shard`; with `deployment`, both must hold).
    pub shard: Option<crate::shard::Shard>,
    /// Keep each target's state after apply in the plan (`--emit`, flow-log replay). Off, it
    /// is dropped as soon as the target is simulated: at estate scale it is a full copy of
    /// every rule of every target.
    pub keep_after: bool,
}

impl PlanOptions {
    /// Whether a deployment is planned: `--deployment` and `--shard` both allow it.
    pub fn selects(&self, deployment: &str) -> bool {
        self.deployment.as_ref().is_none_or(|d| d == deployment)
            && self.shard.is_none_or(|s| s.contains(deployment))
    }
}

/// One target's plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetPlan {
    /// Deployment.
    pub deployment: String,
    /// Cloud.
    pub provider: ProviderKind,
    /// The placement's settings (VPC, region, account, NSG, network...): where the changes go.
    #[serde(default)]
    pub placement: std::collections::BTreeMap<String, String>,
    /// Where the state was observed (the snapshot file).
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
    /// Set when the changes were written out and dropped ([`TargetPlan::handed_out`]): the
    /// count of changes per action, in [`Action`] order.
    #[serde(skip)]
    pub handed_out: Option<[usize; 4]>,
}

impl TargetPlan {
    /// The target this plan is for.
    pub fn target(&self) -> Target {
        Target {
            deployment: self.deployment.clone(),
            provider: self.provider,
            placement: self.placement.clone(),
        }
    }

    /// Count of changes with an action.
    pub fn count(&self, a: Action) -> usize {
        match self.handed_out {
            Some(n) => n[a as usize],
            None => self.changes.iter().filter(|c| c.action == a).count(),
        }
    }

    /// Any change.
    pub fn has_changes(&self) -> bool {
        match self.handed_out {
            Some(n) => n.iter().any(|&c| c > 0),
            None => !self.changes.is_empty(),
        }
    }

    /// This target's plan once it has been written out: figures, findings and verdict stay,
    /// the changes and the state after apply are dropped (their counts are kept).
    pub fn handed_out(mut self) -> TargetPlan {
        let counts = [
            Action::Create,
            Action::Update,
            Action::Replace,
            Action::Delete,
        ]
        .map(|a| self.count(a));
        self.changes = Vec::new();
        self.after = NativeState::default();
        self.handed_out = Some(counts);
        self
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
        self.targets.iter().any(TargetPlan::has_changes)
    }
    /// Every finding, guardrails first.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.guardrails
            .iter()
            .chain(self.targets.iter().flat_map(|t| t.findings.iter()))
    }
    /// How `plan` ends: blocked, changes, or nothing to do.
    pub fn status(&self) -> ExitStatus {
        if self.blocked() {
            ExitStatus::Blocked
        } else if self.has_changes() {
            ExitStatus::Changes
        } else {
            ExitStatus::Ok
        }
    }
    /// Read a plan file, checking its version.
    pub fn read(path: &Path) -> Result<Plan, Error> {
        let bad = |at: Option<&serde_json::Error>, message: String| Error::PlanFile {
            path: path.to_path_buf(),
            line: at.map(|e| e.line()),
            column: at.map(|e| e.column()),
            message,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::file(path, "cannot read plan", e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(Some(&e), format!("not a plan file: {e}")))?;
        match v.get("format_version").and_then(|x| x.as_u64()) {
            Some(n) if n == FORMAT_VERSION as u64 => {}
            Some(n) => {
                return Err(bad(
                    None,
                    format!(
                        "plan format_version {n} is not supported (this intentwall reads \
                         {FORMAT_VERSION})"
                    ),
                ))
            }
            None => return Err(bad(None, "not a plan file (no format_version)".into())),
        }
        // parsed again from the text so an error names its line and column
        let plan: Plan = serde_json::from_str(&text)
            .map_err(|e| bad(Some(&e), format!("malformed plan: {e}")))?;
        // every change must carry the object its action writes or removes
        for t in &plan.targets {
            for c in &t.changes {
                let (need, has) = match c.action {
                    Action::Delete => ("before", c.before.is_some()),
                    _ => ("after", c.after.is_some()),
                };
                if !has {
                    return Err(bad(
                        None,
                        format!(
                            "malformed plan: change `{}` of {}/{} ({:?}) has no `{need}` object",
                            c.key, t.deployment, t.provider, c.action
                        ),
                    ));
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

/// One target to plan (or audit): its deployment, cloud and resolved intent, and what was
/// observed.
pub struct Job<'a> {
    /// The deployment.
    pub dep: &'a Deployment,
    /// The cloud.
    pub kind: ProviderKind,
    /// The deployment's intent, resolved for the cloud.
    pub intent: DeploymentIntent,
    /// The target's state as observed.
    pub observed: Observed,
}

/// Plan one observed target: pure, no I/O.
fn plan_target(job: Job<'_>, opts: &PlanOptions) -> Result<TargetPlan, Error> {
    let Job {
        dep,
        kind,
        intent,
        observed,
    } = job;
    let _target = tracing::info_span!("target", deployment = %dep.name, provider = %kind).entered();
    let _phase = tracing::info_span!("plan").entered();
    let provider = backend::require(kind)?;
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
        placement: intent.settings.clone(),
        snapshot: observed.source,
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
        handed_out: None,
    })
}

/// The workers for pure work: every core.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Run `work` on every item on up to `workers` threads, items taken in order; each result
/// goes to `done` (on the calling thread) in item order, as soon as it and every one before
/// it are ready. Once `done` fails no new item is started, and the error is returned. The
/// caller's tracing span is each worker's parent.
///
/// At most one finished result per worker waits for an earlier one (the hand-over is a
/// rendezvous), so memory follows the targets in flight, not all targets.
pub(crate) fn in_order<T: Send, R: Send>(
    items: Vec<T>,
    workers: usize,
    work: impl Fn(T) -> R + Sync,
    mut done: impl FnMut(R) -> Result<(), Error>,
) -> Result<(), Error> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    let n = items.len();
    let queue = Mutex::new(items.into_iter().enumerate());
    let stop = AtomicBool::new(false);
    let workers = workers.clamp(1, n.max(1));
    let span = tracing::Span::current();
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, R)>(0);
        for _ in 0..workers {
            let tx = tx.clone();
            let (queue, stop, work, span) = (&queue, &stop, &work, &span);
            s.spawn(move || loop {
                let _in = span.enter();
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                // a poisoned queue means another worker panicked; the scope reports it
                let next = match queue.lock() {
                    Ok(mut q) => q.next(),
                    Err(_) => return,
                };
                let Some((i, item)) = next else { return };
                if tx.send((i, work(item))).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut waiting = std::collections::BTreeMap::new();
        let mut next = 0;
        let mut result = Ok(());
        for (i, r) in rx {
            if result.is_err() {
                continue;
            }
            waiting.insert(i, r);
            while let Some(r) = waiting.remove(&next) {
                next += 1;
                if let Err(e) = done(r) {
                    stop.store(true, Ordering::Relaxed);
                    result = Err(e);
                    waiting.clear();
                    break;
                }
            }
        }
        result
    })
}

/// The plan's header: everything but the targets, known before any target is planned.
pub fn header(intent: &Intent, opts: &PlanOptions) -> Plan {
    let guardrails: Vec<Finding> = crate::intent::guardrails::check(intent)
        .into_iter()
        .filter(|f| opts.selects(&f.deployment))
        .collect();
    Plan {
        format_version: FORMAT_VERSION,
        intent_digest: intent.digest.clone(),
        prune_unmanaged: opts.prune_unmanaged,
        guardrails,
        targets: Vec::new(),
    }
}

/// Plan every selected target and keep every target's plan whole.
pub fn build(intent: &Intent, opts: &PlanOptions) -> Result<Plan, Error> {
    build_each(intent, opts, &mut |t| Ok(t))
}

/// Resolve and observe every selected target (deployment and cloud filters of `opts`), in
/// target order: the one place the pipeline reads the world before planning or auditing.
/// All observation errors are reported together.
pub fn observe<'i>(intent: &'i Intent, opts: &PlanOptions) -> Result<Vec<Job<'i>>, Error> {
    opts.backend.check_ready()?;
    if let Some(d) = &opts.deployment {
        if !intent.deployments.contains_key(d) {
            return Err(Error::UnknownDeployment(d.clone()));
        }
        if let Some(s) = opts.shard.filter(|s| !s.contains(d)) {
            let home = crate::shard::shard_of(d, s.count);
            return Err(Error::usage(format!(
                "deployment `{d}` is in shard {home}/{}, not in --shard {s}",
                s.count
            )));
        }
    }
    let mut selected = Vec::new();
    for dep in intent.deployments.values() {
        if !opts.selects(&dep.name) {
            continue;
        }
        for &kind in dep.clouds.keys() {
            if opts.provider.is_some_and(|p| p != kind) {
                continue;
            }
            selected.push((dep, kind));
        }
    }
    if let Some(shard) = opts.shard {
        let mut names: Vec<&str> = selected.iter().map(|(d, _)| d.name.as_str()).collect();
        names.dedup();
        tracing::info!(%shard, deployments = ?names, "this shard's deployments");
    }
    let graph = ServiceGraph::of(intent);
    // resolve every target (pure), then observe them all at once through the backend, the
    // one place the plan reads the world: errors are reported together, and none stops the
    // plan half-way through its output
    let mut resolved = Vec::new();
    for (dep, kind) in selected {
        let intent = graph.view(&dep.name).and_then(|v| v.resolve(kind));
        let intent = intent.ok_or_else(|| Error::NoPlacement {
            deployment: dep.name.clone(),
            provider: kind,
        })?;
        resolved.push((dep, kind, intent));
    }
    let targets = resolved
        .iter()
        .map(|(_, kind, intent)| (Target::of(intent, *kind), intent.clone()))
        .collect();
    let observations = {
        let _phase = tracing::info_span!("observe").entered();
        opts.backend
            .observe_all(targets, opts.backend.concurrency())
    };
    let observed: Vec<Result<Job<'_>, Error>> = resolved
        .into_iter()
        .zip(observations)
        .map(|((dep, kind, intent), observed)| {
            Ok(Job {
                dep,
                kind,
                intent,
                observed: observed?,
            })
        })
        .collect();
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for r in observed {
        match r {
            Ok(j) => jobs.push(j),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 1 {
        return Err(errors.remove(0));
    }
    if !errors.is_empty() {
        return Err(Error::Targets(errors));
    }
    Ok(jobs)
}

/// Plan every selected target, handing each target's plan to `each` in target order as
/// soon as it is complete; what `each` returns is what the returned plan keeps (a caller that
/// writes targets out as they come returns [`TargetPlan::handed_out`], so a plan of an estate
/// with millions of rules never holds them all).
///
/// Every target is observed (its snapshot read and parsed) before any is planned, and all
/// observation errors are reported together: a bad snapshot stops the plan before a single
/// target is handed out. Planning itself is pure.
pub fn build_each(
    intent: &Intent,
    opts: &PlanOptions,
    each: &mut dyn FnMut(TargetPlan) -> Result<TargetPlan, Error>,
) -> Result<Plan, Error> {
    let jobs = observe(intent, opts)?;
    let mut plan = header(intent, opts);
    let guardrails = std::mem::take(&mut plan.guardrails);
    in_order(
        jobs,
        cores(),
        |job| plan_target(job, opts),
        |r| {
            let mut t = r?;
            // a guardrail blocks every target of its deployment
            if guardrails.iter().any(|f| f.deployment == t.deployment) {
                t.blocked = true;
            }
            plan.targets.push(each(t)?);
            Ok(())
        },
    )?;
    plan.guardrails = guardrails;
    Ok(plan)
}

/// Write, for every target, the state it would have after apply, in the snapshot format.
/// Writes stay inside `dir` ([`backend::snapshot::write_inside`]); the caller holds `dir`'s
/// lock.
pub fn emit(plan: &Plan, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut written = Vec::new();
    for t in &plan.targets {
        let format = backend::format(t.provider)?;
        let p = backend::snapshot::path(dir, &t.deployment, t.provider)?;
        backend::snapshot::write_inside(dir, &p, format.render_snapshot(&t.after).as_bytes())?;
        written.push(p);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::in_order;
    use crate::error::Error;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// `in_order` over `items` with `workers`: what `done` received, and the most items that
    /// were worked on at once.
    fn run(items: &[u8], workers: usize, fail_at: Option<usize>) -> (Vec<u32>, usize, bool) {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let mut got = Vec::new();
        let r = in_order(
            items.to_vec(),
            workers,
            |x| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // items of different lengths finish out of order
                std::thread::sleep(Duration::from_micros(u64::from(x) * 200));
                running.fetch_sub(1, Ordering::SeqCst);
                u32::from(x) * 3
            },
            |v| {
                if Some(got.len()) == fail_at {
                    return Err(Error::Internal("stop"));
                }
                got.push(v);
                Ok(())
            },
        );
        (got, most.load(Ordering::SeqCst), r.is_err())
    }

    proptest! {
        /// Every item once, handed over in the items' order, never more at once than asked.
        #[test]
        fn every_item_once_in_order_within_the_bound(
            items in proptest::collection::vec(0u8..8, 0..24),
            workers in 1usize..6,
        ) {
            let (got, most, failed) = run(&items, workers, None);
            prop_assert!(!failed);
            prop_assert_eq!(got, items.iter().map(|&x| u32::from(x) * 3).collect::<Vec<_>>());
            prop_assert!(most <= workers);
        }

        /// Once `done` fails, nothing after is handed over and the error is returned.
        #[test]
        fn a_failing_hand_over_stops_the_run(
            items in proptest::collection::vec(0u8..4, 1..16),
            workers in 1usize..4,
            at in 0usize..16,
        ) {
            let at = at % items.len();
            let (got, _, failed) = run(&items, workers, Some(at));
            prop_assert!(failed);
            prop_assert_eq!(got.len(), at);
        }
    }

    /// Slow items overlap: with as many workers as items they run at the same time (so a slow
    /// cloud does not hold up the others).
    #[test]
    fn independent_items_overlap() {
        let (_, most, _) = run(&[255; 4], 4, None);
        assert!(most > 1, "the items ran one after another");
    }
}
