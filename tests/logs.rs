//! Logs and the audit trail, end to end through the binary: what an unattended job's log
//! holds at the default level, that JSON logs are JSON on every stderr line, and that piped
//! text logs carry no colour escape codes.

mod common;

use common::{code, iw, root, scratch, text, TODAY};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Run the binary with extra environment variables.
fn iw_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_intentwall"));
    c.current_dir(dir)
        .env("INTENTWALL_TODAY", TODAY)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("INTENTWALL_SHARD_COUNT")
        .env_remove("INTENTWALL_SHARD")
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run intentwall")
}

/// Every stderr line parsed as JSON; a line that is not is a test failure naming it.
fn json_lines(o: &Output) -> Vec<Value> {
    let err = text(&o.stderr);
    err.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{err}")))
        .collect()
}

/// The changes each target of the example plans, from `plan --format json`.
fn planned_changes(dir: &Path) -> Vec<(String, String, usize)> {
    let o = iw(dir, &["plan", "--format", "json"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    plan["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["deployment"].as_str().unwrap().to_string(),
                t["provider"].as_str().unwrap().to_string(),
                t["changes"].as_array().unwrap().len(),
            )
        })
        .collect()
}

#[test]
fn json_apply_logs_every_change_as_an_audit_event_at_the_default_level() {
    let t = scratch();
    let planned = planned_changes(t.path());
    let total: usize = planned.iter().map(|p| p.2).sum();
    assert!(total > 0, "the example must have changes to apply");

    // no -v: audit events must pass the default level on their own
    let o = iw(
        t.path(),
        &["--log-format", "json", "apply", "--auto-approve"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let events = json_lines(&o);
    assert!(!events.is_empty());
    for e in &events {
        assert!(
            e["level"].is_string() && e["fields"]["message"].is_string(),
            "{e}"
        );
    }
    let audit: Vec<&Value> = events.iter().filter(|e| e["target"] == "audit").collect();
    let changes: Vec<&&Value> = audit
        .iter()
        .filter(|e| e["fields"]["message"] == "apply change")
        .collect();
    assert_eq!(changes.len(), total, "one audit event per planned change");
    // per target too, each naming who, what and where
    for (dep, provider, n) in &planned {
        let of_target = changes
            .iter()
            .filter(|e| e["fields"]["deployment"] == **dep && e["fields"]["provider"] == **provider)
            .count();
        assert_eq!(of_target, *n, "{dep}/{provider}");
    }
    for e in &changes {
        let f = &e["fields"];
        for k in ["action", "key", "kind", "user"] {
            assert!(f[k].as_str().is_some_and(|s| !s.is_empty()), "{k} in {e}");
        }
        match f["action"].as_str().unwrap() {
            "Create" => assert!(f["before"] == "" && f["after"] != "", "{e}"),
            "Delete" => assert!(f["before"] != "" && f["after"] == "", "{e}"),
            _ => assert!(f["before"] != "" && f["after"] != "", "{e}"),
        }
    }
    // and the backend's own writes: one snapshot file per target with changes
    let written = audit
        .iter()
        .filter(|e| e["fields"]["message"] == "snapshot written")
        .count();
    assert_eq!(written, planned.iter().filter(|p| p.2 > 0).count());
    assert_eq!(
        audit.len(),
        changes.len() + written,
        "no other audit events"
    );
    // the default level hides info logs other than the audit trail
    assert!(
        !events
            .iter()
            .any(|e| e["fields"]["message"] == "planned target"),
        "info events at the default level"
    );
    // the plan apply shows is human text wrapped in JSON, not raw lines
    assert!(events
        .iter()
        .any(|e| e["fields"]["message"].as_str().unwrap().contains("Plan: ")));

    // a second apply converges: nothing to change, so nothing audited
    let o = iw(
        t.path(),
        &["--log-format", "json", "apply", "--auto-approve"],
    );
    assert_eq!(code(&o), 0);
    assert!(!json_lines(&o).iter().any(|e| e["target"] == "audit"));
}

#[test]
fn json_errors_and_diagnostics_are_json_lines() {
    let t = scratch();
    // an error from the library (missing snapshot root)
    let o = iw(
        t.path(),
        &["--log-format", "json", "plan", "--snapshots", "nope"],
    );
    assert_eq!(code(&o), 1);
    let e = json_lines(&o);
    assert!(e.iter().any(|e| e["level"] == "ERROR"
        && e["fields"]["message"]
            .as_str()
            .unwrap()
            .starts_with("error: ")));
    // a usage error clap reports before logging starts
    let o = iw(
        t.path(),
        &["--log-format", "json", "plan", "--format", "bogus"],
    );
    assert_eq!(code(&o), 1);
    assert!(!json_lines(&o).is_empty());
    // intent diagnostics (one per defect, many lines of text) and blocked findings
    let bad = root().join("tests/bad_intents/many_defects");
    let o = iw(
        t.path(),
        &[
            "--log-format",
            "json",
            "validate",
            "--intents",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 1);
    let e = json_lines(&o);
    assert!(e[0]["fields"]["message"]
        .as_str()
        .unwrap()
        .contains("error"));
    std::fs::write(
        t.path().join("intents/zz-open-db.yaml"),
        "version: 1\nflows:\n  - {name: db-open, from: internet, to: db, services: [tcp/5432]}\n",
    )
    .unwrap();
    let o = iw(t.path(), &["--log-format", "json", "validate"]);
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    assert!(json_lines(&o).iter().any(|e| e["fields"]["message"]
        .as_str()
        .unwrap()
        .starts_with("blocked: ")));
}

#[test]
fn piped_text_logs_hold_no_escape_codes() {
    let t = scratch();
    // debug level, so every kind of log line is there, and audit events at the default level
    for args in [
        &["-vv", "plan"][..],
        &["apply", "--auto-approve"][..],
        &["-v", "plan", "--snapshots", "nope"][..],
    ] {
        let o = iw(t.path(), args);
        let err = text(&o.stderr);
        assert!(!err.is_empty(), "{args:?} logged nothing");
        assert!(!err.contains("\x1b["), "{args:?}: {err}");
    }
    // NO_COLOR is honoured too (and changes nothing when piped)
    let o = iw_env(t.path(), &["-vv", "plan"], &[("NO_COLOR", "1")]);
    assert!(!text(&o.stderr).contains("\x1b["));
}

#[test]
fn text_apply_shows_audit_lines_without_verbose() {
    let t = scratch();
    let total: usize = planned_changes(t.path()).iter().map(|p| p.2).sum();
    let o = iw(t.path(), &["apply", "--auto-approve"]);
    assert_eq!(code(&o), 0);
    let err = text(&o.stderr);
    let audit = err
        .lines()
        .filter(|l| l.contains(" audit: apply change"))
        .count();
    assert_eq!(audit, total, "{err}");
}

#[test]
fn debug_level_shows_the_backend_calls_and_spans() {
    let t = scratch();
    let o = iw(t.path(), &["-vv", "apply", "--auto-approve"]);
    assert_eq!(code(&o), 0);
    let err = text(&o.stderr);
    assert!(err.contains("backend observe"), "{err}");
    assert!(err.contains("backend execute"), "{err}");
    assert!(err.contains("read snapshot"), "{err}");
    // spans: each target's planning runs in target{..}:plan, each write in target{..}:execute
    assert!(
        err.contains("target{deployment=us provider=gcp}:plan"),
        "{err}"
    );
    assert!(
        err.contains("target{deployment=us provider=gcp}:execute"),
        "{err}"
    );
    // -v shows info but not debug
    let o = iw(t.path(), &["-v", "plan"]);
    let err = text(&o.stderr);
    assert!(
        err.contains("planned target") && !err.contains("backend observe"),
        "{err}"
    );
    // RUST_LOG replaces the level chosen by -v
    let o = iw_env(t.path(), &["plan"], &[("RUST_LOG", "debug")]);
    assert!(text(&o.stderr).contains("backend observe"));
}
