//! Every output format of `plan` and `simulate`, end to end on the example estate
//! (`intents/` + `snapshots/`): golden snapshots (timings masked), the pull-request comment's
//! size cap on a greenfield plan, JUnit parsed as XML against the plan's own counts, and the
//! Mermaid pictures run through Mermaid's parser (scripts/ci/mermaid.sh installs it).
#![cfg(all(feature = "aws", feature = "azure", feature = "gcp"))]

mod common;

use common::{add_unmanaged_gcp_allow, code, iw, root, scratch, text};
use std::path::{Path, PathBuf};

/// Wall times are the one thing that differs between runs: masked, wherever a format prints
/// one (`(12 ms)`, `"millis": 12`, `time="0.012"`, the `ms` column of `simulate`).
fn masked(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        let mut l = mask_after(line, "\"millis\": ", |c| c.is_ascii_digit());
        l = mask_after(&l, "time=\"", |c| c.is_ascii_digit() || c == '.');
        l = mask_ms(&l);
        if l.starts_with(|c: char| c.is_ascii_lowercase())
            && (l.contains("  proven") || l.contains("  BLOCKED") || l.contains("  unverified"))
        {
            // the `simulate` table's ms column: the last number before the verdict
            l = mask_last_number(&l);
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn mask_after(line: &str, marker: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i + marker.len()]);
        rest = &rest[i + marker.len()..];
        let end = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        if end > 0 {
            out.push('T');
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// `(123 ms)` -> `(T ms)`.
fn mask_ms(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(" ms)") {
        let head = &rest[..i];
        let start = head
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |j| j + 1);
        if start < head.len() && head[..start].ends_with('(') {
            out.push_str(&head[..start]);
            out.push('T');
        } else {
            out.push_str(head);
        }
        out.push_str(" ms)");
        rest = &rest[i + 4..];
    }
    out.push_str(rest);
    out
}

/// `…      0      18  proven` -> `…      0 T  proven`: the number and its padding (a
/// right-aligned column) masked together.
fn mask_last_number(line: &str) -> String {
    let Some(verdict) = line.rfind("  ") else {
        return line.to_string();
    };
    let head = line[..verdict].trim_end_matches(|c: char| c.is_ascii_digit());
    format!("{} T{}", head.trim_end(), &line[verdict..])
}

/// `intentwall ARGS` at the repository root; stdout, checked to end with `want`.
fn run(args: &[&str], want: i32) -> String {
    let o = iw(&root(), args);
    assert_eq!(code(&o), want, "{args:?}: {}", text(&o.stderr));
    text(&o.stdout)
}

const FORMATS: [&str; 4] = ["human", "json", "markdown", "junit"];

#[test]
fn plan_in_every_format() {
    for f in FORMATS {
        let out = run(&["plan", "--format", f], 2);
        insta::assert_snapshot!(format!("plan_{f}"), masked(&out));
    }
}

#[test]
fn simulate_in_every_format() {
    for f in FORMATS {
        let out = run(&["simulate", "--format", f], 0);
        insta::assert_snapshot!(format!("simulate_{f}"), masked(&out));
    }
}

/// The plan of the example intents against an empty snapshot directory: every rule of every
/// target created, far more than a comment can hold.
fn greenfield(format: &str) -> (tempfile::TempDir, String) {
    let t = tempfile::tempdir().unwrap();
    let intents = root().join("intents");
    let o = iw(
        t.path(),
        &[
            "plan",
            "--intents",
            intents.to_str().unwrap(),
            "--snapshots",
            "empty",
            "--init",
            "--format",
            format,
        ],
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    (t, out)
}

#[test]
fn a_greenfield_comment_fits_with_its_summary_whole() {
    let (_t, json) = greenfield("json");
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    let (_t, md) = greenfield("markdown");
    assert!(
        json.len() > 65_536,
        "the greenfield plan no longer needs cutting ({} bytes of JSON): pick a larger case",
        json.len()
    );
    // under the limit, with room for the pipelines' marker line (docs/pr-gate.md)
    assert!(md.len() + 300 < 65_536, "{} bytes", md.len());
    assert!(md.chars().count() < 65_536);
    let targets = plan["targets"].as_array().unwrap();
    let mut created = 0;
    for t in targets {
        let creates = t["changes"].as_array().unwrap().len();
        created += creates;
        let row = format!(
            "| {} | {} | {creates} | 0 | 0 | 0 | proven (",
            t["deployment"].as_str().unwrap(),
            t["provider"].as_str().unwrap()
        );
        assert!(md.contains(&row), "no row `{row}`");
    }
    assert!(md.contains(&format!(
        "| **all** | {} targets | {created} | 0 | 0 | 0 | {} proven | 0 |",
        targets.len(),
        targets.len()
    )));
    // what was cut is said, with where the whole plan is
    let tail = md.lines().last().unwrap();
    assert!(tail.starts_with("**Cut to fit a comment**"), "{tail}");
    assert!(
        tail.contains("plan.json") && tail.contains("--format json"),
        "{tail}"
    );
    // every opened block is closed: the cut never leaves a fence or a <details> open
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
    assert_eq!(md.matches("```").count() % 2, 0);
    insta::assert_snapshot!("greenfield_markdown", md);
}

#[test]
fn an_update_shows_the_fields_that_differ_before_and_after() {
    let md = run(&["plan", "--format", "markdown", "--deployment", "us"], 2);
    let update = md
        .lines()
        .position(|l| l.starts_with("! nsg-rule iw-grafana-from-corp-in-1:"))
        .unwrap_or_else(|| panic!("no update line:\n{md}"));
    let lines: Vec<&str> = md.lines().collect();
    assert!(lines[update].ends_with("# flow grafana-from-corp (update)"));
    assert_eq!(
        lines[update + 1],
        "-     destinationPortRanges: [\"3000-3001\"]"
    );
    assert_eq!(lines[update + 2], "+     destinationPortRanges: [\"3000\"]");
}

#[test]
fn simulate_json_is_the_verdicts_not_the_plan() {
    let v: serde_json::Value =
        serde_json::from_str(&run(&["simulate", "--format", "json"], 0)).unwrap();
    let plan: serde_json::Value =
        serde_json::from_str(&run(&["plan", "--format", "json"], 2)).unwrap();
    assert_eq!(v["blocked"], false);
    assert_eq!(v["intent_digest"], plan["intent_digest"]);
    let targets = v["targets"].as_array().unwrap();
    assert_eq!(targets.len(), plan["targets"].as_array().unwrap().len());
    for (t, p) in targets.iter().zip(plan["targets"].as_array().unwrap()) {
        assert_eq!(t["verdict"], "proven");
        assert_eq!(t["deployment"], p["deployment"]);
        assert_eq!(t["simulation"]["classes"], p["simulation"]["classes"]);
        assert!(
            t.get("changes").is_none(),
            "the changes are the plan's: {t}"
        );
    }
    assert!(v.get("replay").is_none());
}

/// A plan's JUnit, parsed: suites and cases agree with the plan JSON of the same run.
fn check_junit(xml: &str, plan: &serde_json::Value) {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML: {e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    let targets = plan["targets"].as_array().unwrap();
    let guardrail_deployments: std::collections::BTreeSet<&str> = plan["guardrails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["deployment"].as_str().unwrap())
        .collect();
    assert_eq!(suites.len(), targets.len() + guardrail_deployments.len());
    let (mut tests, mut failures) = (0, 0);
    for (i, s) in suites.iter().enumerate() {
        assert_eq!(s.tag_name().name(), "testsuite");
        let cases: Vec<_> = s
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        let failed = cases
            .iter()
            .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
            .count();
        assert_eq!(s.attribute("tests"), Some(cases.len().to_string().as_str()));
        assert_eq!(s.attribute("failures"), Some(failed.to_string().as_str()));
        tests += cases.len();
        failures += failed;
        let Some(t) = targets.get(i) else {
            // a deployment's guardrails: one failing case per finding
            assert_eq!(failed, cases.len());
            continue;
        };
        let name = format!(
            "{} / {}",
            t["deployment"].as_str().unwrap(),
            t["provider"].as_str().unwrap()
        );
        assert_eq!(s.attribute("name"), Some(name.as_str()));
        let findings = t["findings"].as_array().unwrap();
        // simulation, expectations, then one case per finding
        assert_eq!(cases.len(), 2 + findings.len());
        assert_eq!(cases[0].attribute("name"), Some("simulation"));
        assert_eq!(cases[1].attribute("name"), Some("expectations"));
        for (c, f) in cases[2..].iter().zip(findings) {
            let failure = c.children().find(|n| n.has_tag_name("failure")).unwrap();
            assert_eq!(failure.attribute("type"), f["kind"].as_str());
            assert_eq!(failure.attribute("message"), f["message"].as_str());
        }
        let sim = &t["simulation"];
        let sim_failed = cases[0].children().any(|n| n.has_tag_name("failure"));
        assert_eq!(
            sim_failed,
            sim["mismatches"].as_u64() > Some(0) || sim["unverifiable"].as_u64() > Some(0)
        );
        let exp_failed = cases[1].children().any(|n| n.has_tag_name("failure"));
        assert_eq!(exp_failed, sim["expectations_failed"].as_u64() > Some(0));
        let prop = |k: &str| {
            s.descendants()
                .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(k))
                .and_then(|n| n.attribute("value"))
                .map(str::to_string)
        };
        let changes = t["changes"].as_array().unwrap();
        for action in ["create", "update", "replace", "delete"] {
            let n = changes.iter().filter(|c| c["action"] == action).count();
            assert_eq!(prop(action), Some(n.to_string()), "{name} {action}");
        }
    }
    assert_eq!(root.attribute("tests"), Some(tests.to_string().as_str()));
    assert_eq!(
        root.attribute("failures"),
        Some(failures.to_string().as_str())
    );
}

#[test]
fn junit_is_xml_that_counts_what_the_plan_counts() {
    let plan: serde_json::Value =
        serde_json::from_str(&run(&["plan", "--format", "json"], 2)).unwrap();
    check_junit(&run(&["plan", "--format", "junit"], 2), &plan);
    check_junit(&run(&["simulate", "--format", "junit"], 0), &plan);
}

#[test]
fn a_blocking_finding_is_a_failure_in_junit_and_a_verdict_in_markdown() {
    let t = scratch();
    add_unmanaged_gcp_allow(t.path(), "hand-made-postgres-anywhere", 5432);
    let plan_of = |f: &str| {
        let o = iw(t.path(), &["plan", "--format", f]);
        assert_eq!(code(&o), 3, "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let plan: serde_json::Value = serde_json::from_str(&plan_of("json")).unwrap();
    let junit = plan_of("junit");
    check_junit(&junit, &plan);
    assert!(junit.contains("<failure type=\"conflict\""), "{junit}");
    let md = plan_of("markdown");
    assert!(md.starts_with("## intentwall plan: blocked\n\n**Blocked** (exit 3): 1 of 9 targets"));
    let row = md.lines().find(|l| l.starts_with("| us | gcp |")).unwrap();
    assert!(row.contains("(blocked)"), "{row}");
    assert!(md.contains("### Findings ("), "{md}");
    assert!(md.contains("hand-made-postgres-anywhere"), "{md}");
}

/// The Mermaid checker that scripts/ci/mermaid.sh installs, if it is there.
fn mermaid_checker() -> Option<PathBuf> {
    let dir = std::env::var_os("MERMAID_CHECK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/mermaid-check"));
    let script = dir.join("check.mjs");
    let ok = script.is_file()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if ok {
        return Some(script);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the Mermaid checker must be installed in CI: run scripts/ci/mermaid.sh ({} missing, or no node)",
        script.display()
    );
    eprintln!(
        "skipping: no Mermaid checker ({}); scripts/ci/mermaid.sh installs it",
        script.display()
    );
    None
}

/// The ```mermaid blocks of a Markdown document.
fn mermaid_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for l in md.lines() {
        match (&mut cur, l) {
            (None, "```mermaid") => cur = Some(String::new()),
            (Some(_), "```") => out.extend(cur.take()),
            (Some(c), l) => {
                c.push_str(l);
                c.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn every_mermaid_picture_parses() {
    let example = run(&["plan", "--format", "markdown"], 2);
    let (_t, green) = greenfield("markdown");
    let mut pictures = vec![
        ("graph.mmd", run(&["graph", "--format", "mermaid"], 0)),
        ("graph-eu.mmd", run(&["graph", "--deployment", "eu"], 0)),
    ];
    for (name, md) in [("plan", &example), ("greenfield", &green)] {
        let blocks = mermaid_blocks(md);
        assert_eq!(blocks.len(), 1, "{name}: one picture of the changed flows");
        assert!(blocks[0].starts_with("flowchart LR\n"));
        pictures.push((
            if name == "plan" {
                "plan.mmd"
            } else {
                "greenfield.mmd"
            },
            blocks[0].clone(),
        ));
    }
    // the example's changes: an added flow, a changed one, a flow the intent no longer has
    let plan = &pictures[2].1;
    assert!(
        plan.contains("==>|\"added: search-from-worker (aws, azure, gcp)\"|"),
        "{plan}"
    );
    assert!(
        plan.contains("-->|\"changed: grafana-from-corp (azure, gcp)\"|"),
        "{plan}"
    );
    assert!(plan.contains("removed: legacy-sftp (azure, gcp)"), "{plan}");
    // names are restricted at load, but the picture escapes anything: a hostile label
    // still parses as one label
    let hostile = "x\"] --> evil[\"y\nclick x call alert() |<script>| end %% {{z}} #59;";
    let l = intentwall::report::mermaid::label(hostile);
    pictures.push((
        "hostile.mmd",
        format!("flowchart LR\n  subgraph d0[\"{l}\"]\n    d0n0[\"{l}\"] ==>|\"{l}\"| d0n1[(\"{l}\")]\n  end\n"),
    ));
    let Some(checker) = mermaid_checker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = pictures
        .iter()
        .map(|(name, text)| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect();
    // the checker must also refuse what is not Mermaid, or it proves nothing
    let broken = dir.path().join("broken.mmd");
    std::fs::write(&broken, "flowchart LR\n  a -->|\"x| b\n").unwrap();
    let check = |files: &[&Path]| {
        std::process::Command::new("node")
            .arg(&checker)
            .args(files)
            .output()
            .expect("run node")
    };
    let o = check(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    assert!(
        o.status.success(),
        "Mermaid refuses a picture:\n{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        !check(&[&broken]).status.success(),
        "the checker accepts anything"
    );
}

/// jobs/ci-gate.sh, as the pipelines run it: one plan, the comment, the plan file, the JUnit
/// report and the status; exit 2 passed through, or mapped to 0 when asked.
#[test]
fn the_ci_gate_script_leaves_what_a_review_needs() {
    let t = scratch();
    let gate = |changes_ok: bool| {
        let out = t.path().join("out");
        let o = std::process::Command::new("bash")
            .arg(root().join("jobs/ci-gate.sh"))
            .current_dir(t.path())
            .env("INTENTWALL", env!("CARGO_BIN_EXE_intentwall"))
            .env("INTENTWALL_TODAY", common::TODAY)
            .env("OUT", &out)
            .env("GATE_CHANGES_OK", if changes_ok { "1" } else { "0" })
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .expect("run bash");
        (code(&o), out, text(&o.stderr))
    };
    let (rc, out, err) = gate(false);
    assert_eq!(rc, 2, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("status")).unwrap(),
        "changes\n"
    );
    let md = std::fs::read_to_string(out.join("plan.md")).unwrap();
    assert!(md.starts_with("## intentwall plan: changes"), "{md}");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    check_junit(
        &std::fs::read_to_string(out.join("junit.xml")).unwrap(),
        &plan,
    );
    assert_eq!(gate(true).0, 0);
    // a blocked plan is never mapped to success
    add_unmanaged_gcp_allow(t.path(), "hand-made-postgres-anywhere", 5432);
    let (rc, out, err) = gate(true);
    assert_eq!(rc, 3, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("status")).unwrap(),
        "blocked\n"
    );
}

#[test]
fn the_example_pipelines_are_yaml_that_run_the_gate() {
    for f in ["jobs/ci/github-actions.yml", "jobs/ci/gitlab-ci.yml"] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        marked_yaml::parse_yaml(0, &text).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(text.contains("jobs/ci-gate.sh"), "{f}");
        assert!(
            text.contains("stale plan"),
            "{f}: says what a stale plan means"
        );
    }
}
