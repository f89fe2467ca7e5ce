//! End-to-end: plan -> apply -> plan on the snapshot backend, and every refusal path, run on
//! a scratch copy of the example estate (intents/ + snapshots/).
#![cfg(all(feature = "aws", feature = "azure", feature = "gcp"))]

use std::collections::BTreeMap;
use std::path::Path;
mod common;
use common::*;

/// Unmanaged, non-foreign objects of every target, as read (raw JSON), by target and key.
fn unmanaged(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    use intentwall::intent::{load, LoadOptions};
    let intent = load(
        &dir.join("intents"),
        &LoadOptions {
            today: time::macros::date!(2026 - 11 - 22),
        },
    )
    .unwrap()
    .intent;
    let mut out = BTreeMap::new();
    for dep in intent.deployments.values() {
        for &kind in dep.clouds.keys() {
            let di = intentwall::graph::resolve(dep, kind).unwrap();
            let obs =
                intentwall::backend::snapshot::read(&dir.join("snapshots"), kind, &di).unwrap();
            for o in obs.state.objects.iter().filter(|o| !o.managed) {
                out.insert(
                    format!("{}/{}/{}", dep.name, kind, o.key),
                    o.raw
                        .as_ref()
                        .map_or(serde_json::Value::Null, |r| r.value()),
                );
            }
        }
    }
    out
}

#[test]
fn plan_on_the_example_shows_changes_and_a_proven_simulation() {
    let t = scratch();
    let o = iw(t.path(), &["plan"]);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 2, "stdout:\n{out}\nstderr:\n{}", text(&o.stderr));
    assert!(out.contains("simulation: proven"), "{out}");
    assert!(!out.contains("MISMATCH"), "{out}");
    assert!(out.contains("Plan: "), "{out}");
}

#[test]
fn plan_apply_plan_converges_and_keeps_unmanaged_rules() {
    let t = scratch();
    let before = unmanaged(t.path());
    assert!(
        !before.is_empty(),
        "the example snapshots carry unmanaged rules"
    );
    let o = iw(t.path(), &["plan", "--out", "plan.json"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let o = iw(t.path(), &["apply", "plan.json"]);
    assert_eq!(
        code(&o),
        0,
        "stdout {}\nstderr {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(text(&o.stdout).contains("Applied"), "{}", text(&o.stdout));
    let o = iw(t.path(), &["plan"]);
    assert_eq!(
        code(&o),
        0,
        "second plan must be empty:\n{}",
        text(&o.stdout)
    );
    assert_eq!(unmanaged(t.path()), before, "unmanaged rules changed");
    // idempotent: applying again changes nothing, not even bytes
    let snap = files(&t.path().join("snapshots"));
    let o = iw(t.path(), &["apply", "--auto-approve"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(files(&t.path().join("snapshots")), snap);
}

#[test]
fn stale_plan_is_refused_and_nothing_changes() {
    let t = scratch();
    let o = iw(t.path(), &["plan", "--out", "plan.json"]);
    assert_eq!(code(&o), 2);
    // someone changes one target's state after planning
    let victim = t.path().join("snapshots/eu/azure.json");
    change_state(&victim);
    let snap = files(&t.path().join("snapshots"));
    let o = iw(t.path(), &["apply", "plan.json"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("stale plan"),
        "{}",
        text(&o.stderr)
    );
    assert!(text(&o.stderr).contains("eu/azure"), "{}", text(&o.stderr));
    assert_eq!(
        files(&t.path().join("snapshots")),
        snap,
        "a stale apply wrote something"
    );
}

#[test]
fn changed_intents_make_a_plan_stale() {
    let t = scratch();
    assert_eq!(code(&iw(t.path(), &["plan", "--out", "plan.json"])), 2);
    let f = t.path().join("intents/expect.yaml");
    let mut s = std::fs::read_to_string(&f).unwrap();
    s.push_str("\n# reviewed\n");
    std::fs::write(&f, s).unwrap();
    let snap = files(&t.path().join("snapshots"));
    let o = iw(t.path(), &["apply", "plan.json"]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("intents changed"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(files(&t.path().join("snapshots")), snap);
}

#[test]
fn emitted_state_reads_back_with_an_empty_diff() {
    let t = scratch();
    let o = iw(t.path(), &["plan", "--emit", "emitted"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let o = iw(t.path(), &["plan", "--snapshots", "emitted"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("no changes"));
}

#[test]
fn corrupt_snapshot_is_an_error_naming_the_position_and_nothing_is_written() {
    let t = scratch();
    let victim = t.path().join("snapshots/us/gcp.json");
    std::fs::write(&victim, "[\n  {\"name\": \"x\",,}\n]\n").unwrap();
    let snap = files(&t.path().join("snapshots"));
    for args in [
        vec!["plan", "--out", "plan.json", "--emit", "emitted"],
        vec!["apply", "--auto-approve"],
    ] {
        let o = iw(t.path(), &args);
        assert_eq!(code(&o), 1, "{args:?}: {}", text(&o.stdout));
        let err = text(&o.stderr);
        assert!(err.contains("snapshots/us/gcp.json:2:"), "{err}");
        assert!(!t.path().join("plan.json").exists());
        assert!(!t.path().join("emitted").exists());
        assert_eq!(files(&t.path().join("snapshots")), snap);
    }
}

#[test]
fn blast_radius_guard_refuses_and_force_overrides() {
    let t = scratch();
    let snap = files(&t.path().join("snapshots"));
    let o = iw(t.path(), &["apply", "--auto-approve", "--max-deletes", "0"]);
    assert_eq!(code(&o), 3, "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("--max-deletes"),
        "{}",
        text(&o.stdout)
    );
    // every target of the example deletes something, so every one is refused, untouched
    let out = text(&o.stdout);
    let refused: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(": Refused"))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(refused.len(), 9, "{out}");
    assert_eq!(
        files(&t.path().join("snapshots")),
        snap,
        "a refused target was written"
    );
    let o = iw(
        t.path(),
        &["apply", "--auto-approve", "--max-deletes", "0", "--force"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    assert_eq!(code(&iw(t.path(), &["plan"])), 0);
}

#[test]
fn missing_snapshot_is_a_new_target() {
    let t = scratch();
    std::fs::remove_file(t.path().join("snapshots/ap/aws.json")).unwrap();
    let o = iw(t.path(), &["plan", "--deployment", "ap"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("no recorded state"));
    assert_eq!(code(&iw(t.path(), &["apply", "--auto-approve"])), 0);
    assert!(t.path().join("snapshots/ap/aws.json").exists());
    assert_eq!(code(&iw(t.path(), &["plan"])), 0);
}

#[test]
fn plan_json_is_versioned_and_carries_fingerprints() {
    let t = scratch();
    let o = iw(t.path(), &["plan", "--format", "json"]);
    assert_eq!(code(&o), 2);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    assert!(v["intent_digest"].as_str().unwrap().starts_with("sha256:"));
    let targets = v["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 9);
    for t in targets {
        assert!(t["fingerprint"].as_str().unwrap().starts_with("sha256:"));
        assert!(t["simulation"]["classes"].as_u64().unwrap() > 0);
    }
}

#[test]
fn a_plan_file_whose_change_lacks_its_object_is_refused_not_a_panic() {
    let t = scratch();
    assert_eq!(code(&iw(t.path(), &["plan", "--out", "plan.json"])), 2);
    let p = t.path().join("plan.json");
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let change = plan["targets"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find_map(|t| t["changes"].as_array_mut().filter(|c| !c.is_empty()))
        .unwrap()
        .first_mut()
        .unwrap();
    change["after"] = serde_json::Value::Null;
    change["before"] = serde_json::Value::Null;
    std::fs::write(&p, serde_json::to_string(&plan).unwrap()).unwrap();
    let before = files(&t.path().join("snapshots"));
    let o = iw(t.path(), &["apply", "plan.json"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("malformed plan: change `"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(files(&t.path().join("snapshots")), before);
}

#[test]
fn a_plan_file_of_another_version_is_refused() {
    let t = scratch();
    std::fs::write(t.path().join("plan.json"), "{\"format_version\": 99}").unwrap();
    let o = iw(t.path(), &["apply", "plan.json"]);
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("format_version 99"));
    std::fs::write(t.path().join("plan.json"), "{ not json").unwrap();
    let o = iw(t.path(), &["apply", "plan.json"]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("plan.json:1:"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn an_unmanaged_rule_that_outranks_ours_is_a_conflict_unless_pruned() {
    let t = scratch();
    add_unmanaged_gcp_allow(t.path(), "hand-made-ssh-anywhere", 22);
    let o = iw(t.path(), &["plan", "--deployment", "us"]);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 3, "{out}");
    assert!(out.contains("[conflict]"), "{out}");
    assert!(out.contains("hand-made-ssh-anywhere"), "{out}");
    let o = iw(
        t.path(),
        &["plan", "--deployment", "us", "--prune-unmanaged"],
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("hand-made-ssh-anywhere"));
}

#[test]
fn a_guardrail_violation_blocks_plan_and_apply_of_its_deployment() {
    let t = scratch();
    let f = t.path().join("intents/regions/us/open.yaml");
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(
        &f,
        "version: 1\nflows:\n  - { name: db-world-open, from: internet, to: db, services: [tcp/5432] }\n",
    )
    .unwrap();
    let o = iw(t.path(), &["plan", "--deployment", "us"]);
    assert_eq!(code(&o), 3, "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("db-world-open"));
    let before = files(&t.path().join("snapshots/us"));
    let o = iw(t.path(), &["apply", "--auto-approve"]);
    assert_eq!(code(&o), 3, "{}", text(&o.stdout));
    assert_eq!(
        files(&t.path().join("snapshots/us")),
        before,
        "a blocked deployment was written"
    );
}

#[test]
fn every_mutating_change_is_an_audit_event_on_stderr() {
    let t = scratch();
    let o = iw(
        t.path(),
        &["--log-format", "json", "-v", "apply", "--auto-approve"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let events: Vec<serde_json::Value> = text(&o.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["target"] == "audit")
        // one per change; the backend's own per-file events are `snapshot written`
        .filter(|v| v["fields"]["message"] == "apply change")
        .collect();
    // the apply report says how many changes each target got
    let applied: usize = text(&o.stdout)
        .lines()
        .filter_map(|l| {
            l.split(", ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert!(applied > 0);
    assert_eq!(events.len(), applied, "one audit event per change");
    for e in &events {
        let f = &e["fields"];
        for k in ["deployment", "provider", "action", "key"] {
            assert!(
                f[k].as_str().is_some_and(|s| !s.is_empty()),
                "{k} missing in {e}"
            );
        }
    }
    // stdout stays data: no log line leaked into it
    assert!(!text(&o.stdout).contains("\"level\""));
}

/// Staleness follows the state, not the bytes: every snapshot re-written in another layout
/// (compact JSON, as a different capture tool would) after planning leaves the plan fresh,
/// and apply goes ahead.
#[test]
fn formatting_is_not_staleness() {
    let t = scratch();
    let o = iw(t.path(), &["plan", "--out", "plan.json"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    for (p, bytes) in files(&t.path().join("snapshots")) {
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let compact = serde_json::to_vec(&doc).unwrap();
        assert_ne!(compact, bytes);
        std::fs::write(t.path().join("snapshots").join(&p), compact).unwrap();
    }
    let o = iw(t.path(), &["apply", "plan.json"]);
    assert_eq!(
        code(&o),
        0,
        "stdout {}\nstderr {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(text(&o.stdout).contains("Applied"), "{}", text(&o.stdout));
}
