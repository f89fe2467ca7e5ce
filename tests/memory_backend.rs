//! The engine through the backend seam with an in-memory store instead of snapshot files:
//! plan, apply, re-plan, drift, staleness and the last-moment re-check all work with nothing
//! but the providers' pure half, and nothing is written to disk.

use intentwall::apply::{self, ApplyOptions, Outcome};
use intentwall::backend::{memory::Memory, Backend};
use intentwall::diff::Action;
use intentwall::intent::{self, Intent, LoadOptions};
use intentwall::plan::{self, Plan, PlanOptions};
use intentwall_contract::ProviderKind;
use std::path::Path;

fn example() -> Intent {
    let opts = LoadOptions {
        today: time::macros::date!(2026 - 06 - 01),
    };
    intent::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("intents"),
        &opts,
    )
    .expect("the example intents load")
    .intent
}

fn plan_with(intent: &Intent, store: &Memory) -> Plan {
    plan::build(
        intent,
        &PlanOptions {
            backend: Backend::Memory(store.clone()),
            prune_unmanaged: false,
            deployment: None,
            provider: None,
            shard: None,
            keep_after: false,
        },
    )
    .expect("plan builds")
}

fn apply_opts(store: &Memory) -> ApplyOptions {
    ApplyOptions {
        backend: Backend::Memory(store.clone()),
        max_deletes: usize::MAX,
        parallelism: 4,
        force: false,
        preflight: false,
    }
}

/// Targets the plan may apply.
fn open(p: &Plan) -> Vec<String> {
    p.targets
        .iter()
        .filter(|t| !t.blocked)
        .map(|t| format!("{}/{}", t.deployment, t.provider))
        .collect()
}

#[test]
fn plan_apply_replan_through_the_seam() {
    let intent = example();
    let store = Memory::new();
    let first = plan_with(&intent, &store);
    assert_eq!(first.targets.len(), 9, "3 deployments on 3 clouds");
    for t in &first.targets {
        assert!(!t.existed, "an empty store has no state");
        assert_eq!(t.count(Action::Delete), 0);
        assert!(t.has_changes(), "{}/{} is new", t.deployment, t.provider);
        assert!(
            t.snapshot.to_string_lossy().starts_with("memory:"),
            "{}",
            t.snapshot.display()
        );
        assert!(!t.placement.is_empty(), "the plan carries the placement");
    }
    let report = apply::apply(&first, &intent, &apply_opts(&store)).expect("applies");
    let mut written = 0;
    for (t, o) in first.targets.iter().zip(&report.targets) {
        if t.blocked {
            assert_eq!(o.outcome, Outcome::Blocked);
            assert!(
                store.get(&t.deployment, t.provider).is_none(),
                "blocked target untouched"
            );
        } else {
            assert_eq!(o.outcome, Outcome::Applied, "{:?}", o.reason);
            assert_eq!(o.changes, t.changes.len());
            written += t.changes.len();
        }
    }
    assert!(written > 0);
    assert_eq!(store.writes(), written);

    // converged: the applied targets plan no change, and their state is proven again
    let second = plan_with(&intent, &store);
    assert_eq!(open(&second), open(&first));
    for t in second.targets.iter().filter(|t| !t.blocked) {
        assert!(t.existed);
        assert!(
            !t.has_changes(),
            "{}/{} not converged: {:?}",
            t.deployment,
            t.provider,
            t.changes.iter().map(|c| &c.key).collect::<Vec<_>>()
        );
        assert_eq!(t.simulation.mismatches, 0);
    }
    // a second apply writes nothing
    let again = apply::apply(&second, &intent, &apply_opts(&store)).expect("applies");
    assert!(again
        .targets
        .iter()
        .all(|o| matches!(o.outcome, Outcome::NoChanges | Outcome::Blocked)));
    assert_eq!(store.writes(), written);
}

#[test]
fn drift_is_planned_back_and_a_changed_target_is_never_written() {
    let intent = example();
    let store = Memory::new();
    let first = plan_with(&intent, &store);
    apply::apply(&first, &intent, &apply_opts(&store)).expect("applies");
    let t = first
        .targets
        .iter()
        .find(|t| !t.blocked && t.provider == ProviderKind::Gcp)
        .expect("an applicable GCP target");
    let (dep, kind) = (t.deployment.clone(), t.provider);

    // drift: a managed rule disappears behind intentwall's back
    let mut state = store.get(&dep, kind).unwrap();
    let lost = state
        .objects
        .iter()
        .position(|o| o.managed && !o.container)
        .expect("a managed rule");
    let lost_key = state.objects.remove(lost).key;
    store.put(&dep, kind, state.clone());
    let heal = plan_with(&intent, &store);
    let ht = heal
        .targets
        .iter()
        .find(|x| x.deployment == dep && x.provider == kind)
        .unwrap();
    assert_eq!(ht.changes.len(), 1);
    assert_eq!(ht.changes[0].action, Action::Create);
    assert_eq!(ht.changes[0].key, lost_key);

    // the state changes again between planning and apply: the whole apply is refused
    let mut moved = state.clone();
    moved.objects.pop();
    store.put(&dep, kind, moved.clone());
    let writes = store.writes();
    let e = apply::apply(&heal, &intent, &apply_opts(&store)).unwrap_err();
    assert!(format!("{e:#}").contains("stale plan"), "{e:#}");
    assert_eq!(store.writes(), writes);
    assert_eq!(store.get(&dep, kind).unwrap(), moved);

    // and the last-moment check inside execute stops a target changed after the freshness
    // check, with nothing written
    store.put(&dep, kind, state);
    let heal = plan_with(&intent, &store);
    let ht = heal
        .targets
        .iter()
        .find(|x| x.deployment == dep && x.provider == kind)
        .unwrap();
    store.put(&dep, kind, moved.clone());
    let e = apply::apply_target(ht, &intent, &apply_opts(&store)).unwrap_err();
    assert!(format!("{e:#}").contains("changed under us"), "{e:#}");
    assert_eq!(store.get(&dep, kind).unwrap(), moved);
    assert_eq!(store.writes(), writes);
}

/// Targets written at the same time end exactly as written one after another: the same
/// outcomes in the plan's order, the same writes, the same state in every target.
#[test]
fn parallel_apply_ends_as_a_sequential_one() {
    let intent = example();
    let run = |parallelism: usize| {
        let store = Memory::new();
        let plan = plan_with(&intent, &store);
        let opts = ApplyOptions {
            parallelism,
            ..apply_opts(&store)
        };
        let report = apply::apply(&plan, &intent, &opts).expect("applies");
        let outcomes: Vec<_> = report
            .targets
            .iter()
            .map(|o| (o.deployment.clone(), o.provider, o.outcome, o.changes))
            .collect();
        let states: Vec<_> = plan
            .targets
            .iter()
            .map(|t| {
                let s = store.get(&t.deployment, t.provider).unwrap_or_default();
                serde_json::to_string(&s).unwrap()
            })
            .collect();
        (outcomes, store.writes(), states)
    };
    let one = run(1);
    assert!(one.1 > 0, "the example writes something");
    assert!(one.0.iter().any(|o| o.2 == Outcome::Applied), "{:?}", one.0);
    for n in [2, 4, 16] {
        assert_eq!(run(n), one, "parallelism {n}");
    }
}
