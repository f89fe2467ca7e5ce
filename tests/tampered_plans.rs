//! A plan file is untrusted: between review and apply anyone with write access to it could
//! try to open traffic that was never simulated. Every tampering below must be refused with
//! exit 1, a message saying the file does not match a fresh plan, and not one byte written.
#![cfg(all(feature = "aws", feature = "azure", feature = "gcp"))]

use proptest::prelude::*;
use serde_json::{json, Value};
mod common;
use common::*;

/// Plan the scratch estate into `plan.json` and return it as JSON.
fn planned(dir: &std::path::Path) -> Value {
    let o = iw(dir, &["plan", "--out", "plan.json"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    serde_json::from_slice(&std::fs::read(dir.join("plan.json")).unwrap()).unwrap()
}

/// Write the tampered plan, apply it, and require a refusal that writes nothing.
fn assert_refused(dir: &std::path::Path, plan: &Value, what: &str) {
    std::fs::write(
        dir.join("plan.json"),
        serde_json::to_vec_pretty(plan).unwrap(),
    )
    .unwrap();
    let before = files(&dir.join("snapshots"));
    let o = iw(dir, &["apply", "plan.json"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{what}: applied?\n{}\n{err}", text(&o.stdout));
    assert!(
        err.contains("plan file does not match") || err.contains("malformed plan"),
        "{what}: {err}"
    );
    assert!(
        err.contains("nothing was changed") || err.contains("malformed plan"),
        "{what}: {err}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(
        files(&dir.join("snapshots")),
        before,
        "{what}: a refused apply wrote something"
    );
}

fn target<'a>(plan: &'a mut Value, dep: &str, provider: &str) -> &'a mut Value {
    plan["targets"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["deployment"] == dep && t["provider"] == provider)
        .unwrap()
}

fn first_change<'a>(t: &'a mut Value, action: &str) -> &'a mut Value {
    t["changes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["action"] == action)
        .unwrap()
}

#[test]
fn an_opened_source_cidr_is_refused() {
    let t = scratch();
    let mut plan = planned(t.path());
    let c = first_change(target(&mut plan, "us", "aws"), "create");
    c["after"]["body"]["Peer"] = json!({ "CidrIp": "0.0.0.0/0" });
    assert_refused(t.path(), &plan, "source widened to 0.0.0.0/0");
}

#[test]
fn an_added_allow_all_is_refused() {
    let t = scratch();
    let mut plan = planned(t.path());
    let tg = target(&mut plan, "us", "gcp");
    let mut extra = first_change(tg, "create").clone();
    extra["key"] = json!("iw-us-evil-in-0");
    extra["after"]["key"] = json!("iw-us-evil-in-0");
    extra["after"]["body"]["sourceRanges"] = json!(["0.0.0.0/0"]);
    extra["after"]["body"]["allowed"] = json!([{ "IPProtocol": "all" }]);
    tg["changes"].as_array_mut().unwrap().push(extra);
    assert_refused(t.path(), &plan, "added allow-all");
}

#[test]
fn a_dropped_delete_is_refused() {
    let t = scratch();
    let mut plan = planned(t.path());
    let tg = target(&mut plan, "eu", "aws");
    let changes = tg["changes"].as_array_mut().unwrap();
    let i = changes
        .iter()
        .position(|c| c["action"] == "delete")
        .unwrap();
    changes.remove(i);
    assert_refused(t.path(), &plan, "dropped delete");
}

#[test]
fn a_create_without_its_object_is_refused_without_a_panic() {
    let t = scratch();
    let mut plan = planned(t.path());
    first_change(target(&mut plan, "ap", "azure"), "create")["after"] = Value::Null;
    assert_refused(t.path(), &plan, "after: null");
}

#[test]
fn forged_flags_and_counts_are_refused() {
    let t = scratch();
    let plan = planned(t.path());
    let mut p = plan.clone();
    target(&mut p, "us", "azure")["blocked"] = json!(true);
    assert_refused(t.path(), &p, "blocked flag");
    let mut p = plan.clone();
    target(&mut p, "us", "azure")["managed_rules_after"] = json!(0);
    assert_refused(t.path(), &p, "managed_rules_after");
    let mut p = plan.clone();
    p["prune_unmanaged"] = json!(true);
    assert_refused(t.path(), &p, "prune_unmanaged");
    let mut p = plan.clone();
    target(&mut p, "us", "gcp")["findings"] = json!([]);
    target(&mut p, "eu", "gcp")["findings"] = json!([{
        "kind": "limit", "deployment": "eu", "provider": "gcp", "flow": null, "message": "forged"
    }]);
    assert_refused(t.path(), &p, "findings");
    let mut p = plan.clone();
    target(&mut p, "us", "gcp")["deployment"] = json!("../../etc");
    assert_refused(t.path(), &p, "hostile target name");
    let mut p = plan.clone();
    let dup = p["targets"][0].clone();
    p["targets"].as_array_mut().unwrap().push(dup);
    assert_refused(t.path(), &p, "duplicated target");
}

#[test]
fn a_malformed_plan_is_an_error_not_a_panic() {
    let t = scratch();
    let mut plan = planned(t.path());
    plan["targets"][0]["changes"][0]["action"] = json!("detonate");
    assert_refused(t.path(), &plan, "unknown action");
}

#[test]
fn an_untouched_plan_still_applies() {
    let t = scratch();
    planned(t.path());
    let o = iw(t.path(), &["apply", "plan.json"]);
    assert_eq!(code(&o), 0, "{}\n{}", text(&o.stdout), text(&o.stderr));
}

/// Every leaf of every change: a change to any one of them is refused.
fn leaves(v: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let mut p = path.clone();
                p.push(k.clone());
                leaves(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let mut p = path.clone();
                p.push(i.to_string());
                leaves(x, p, out);
            }
        }
        _ => out.push(path),
    }
}

fn at<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        other => &mut other[k.as_str()],
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Any single edit of any leaf of the changes, findings or flags is refused.
    #[test]
    fn any_edited_leaf_is_refused(pick in any::<prop::sample::Index>(), salt in any::<u8>()) {
        let t = scratch();
        let mut plan = planned(t.path());
        let mut all = Vec::new();
        for (i, tg) in plan["targets"].as_array().unwrap().iter().enumerate() {
            for field in ["changes", "findings", "blocked", "managed_rules_before", "managed_rules_after", "unchanged"] {
                leaves(&tg[field], vec!["targets".into(), i.to_string(), field.into()], &mut all);
            }
        }
        let path = pick.get(&all).clone();
        let leaf = at(&mut plan, &path);
        *leaf = match leaf.take() {
            Value::String(s) => Value::String(format!("{s}{}", salt % 10)),
            Value::Number(n) => json!(n.as_i64().unwrap_or(0) + 1 + i64::from(salt)),
            Value::Bool(b) => Value::Bool(!b),
            Value::Null => json!("x"),
            other => other,
        };
        assert_refused(t.path(), &plan, &path.join("."));
    }
}
