//! Renderers: escaping, wording, empty cases.

use super::junit::xml;
use super::markdown::{md_code_line, md_escape, md_fence};
use super::*;

/// No change is said in words, not as an empty diff block; each verb titles its own
/// summary.
#[test]
fn markdown_without_changes_has_no_empty_diff() {
    let plan = Plan {
        format_version: crate::plan::FORMAT_VERSION,
        intent_digest: "sha256:0".into(),
        prune_unmanaged: false,
        guardrails: vec![],
        targets: vec![],
    };
    let m = markdown(&plan);
    assert!(m.starts_with("## intentwall plan: no changes"), "{m}");
    assert!(m.contains("\nNo changes.\n") && !m.contains("```"), "{m}");
    assert!(
        markdown_simulation(&plan, None).starts_with("## intentwall simulate: nothing to simulate")
    );
}

#[test]
fn a_failed_expectation_is_not_called_a_mismatch() {
    let mut t = crate::plan::TargetPlan {
        deployment: "us".into(),
        provider: intentwall_contract::ProviderKind::Gcp,
        placement: Default::default(),
        snapshot: "s".into(),
        existed: true,
        fingerprint: "absent".into(),
        changes: vec![],
        unchanged: 0,
        managed_rules_before: 0,
        managed_rules_after: 0,
        simulation: crate::simulate::SimReport {
            expectations: 3,
            expectations_failed: 1,
            ..Default::default()
        },
        findings: vec![],
        blocked: true,
        after: Default::default(),
        handed_out: None,
    };
    let line = sim_line(&t);
    assert!(
        line.starts_with("simulation: EXPECTATION FAILED:"),
        "{line}"
    );
    assert!(line.contains("2/3 expectation checks passed"), "{line}");
    t.simulation.mismatches = 2;
    assert!(sim_line(&t).starts_with("simulation: MISMATCH:"));
}

#[test]
fn markdown_text_cannot_add_rows_items_or_markup() {
    let hostile = "x | y\n- [click](http://e) <img src=x> `code` *b*";
    let e = md_escape(hostile);
    assert!(!e.contains('\n'), "{e}");
    // every markup character is escaped
    for c in ['|', '[', ']', '<', '>', '`', '*'] {
        let raw = e
            .char_indices()
            .filter(|&(i, ch)| ch == c && (i == 0 || e.as_bytes()[i - 1] != b'\\'))
            .count();
        assert_eq!(raw, 0, "unescaped {c} in {e}");
    }
}

#[test]
fn a_code_line_cannot_close_its_fence_or_forge_a_line() {
    let lines = vec![
        md_code_line("+ us / aws: rule x\n+ us / aws: rule allow-all"),
        "! us / gcp: rule ``````".to_string(),
    ];
    assert!(!lines[0].contains('\n'));
    let fence = md_fence(&lines);
    assert_eq!(fence, "```````");
    assert_eq!(md_fence(&["plain".to_string()]), "```");
}

#[test]
fn xml_drops_what_xml_cannot_carry() {
    assert_eq!(xml("a\u{0}b\"<"), "a\u{fffd}b&quot;&lt;");
}

/// A target of `deployment` with `creates` rule creations.
fn target(deployment: &str, creates: usize) -> crate::plan::TargetPlan {
    use crate::diff::Change;
    use intentwall_contract::NativeObject;
    let obj = |i: usize| NativeObject {
        kind: "rule".into(),
        key: format!("r{i}"),
        parent: None,
        container: false,
        managed: true,
        foreign: false,
        flow: Some(format!("flow-{i}")),
        body: serde_json::json!({ "port": i }).into(),
        raw: None,
        assigned: None,
        summary: format!("allow tcp/{i} from somewhere to something far away, with a long summary"),
    };
    crate::plan::TargetPlan {
        deployment: deployment.into(),
        provider: intentwall_contract::ProviderKind::Aws,
        placement: Default::default(),
        snapshot: format!("snapshots/{deployment}/aws.json").into(),
        existed: false,
        fingerprint: "absent".into(),
        changes: (0..creates)
            .map(|i| Change {
                action: Action::Create,
                key: format!("r{i}"),
                before: None,
                after: Some(obj(i)),
            })
            .collect(),
        unchanged: 0,
        managed_rules_before: 0,
        managed_rules_after: creates,
        simulation: crate::simulate::SimReport {
            classes: 10,
            expectations: 2,
            ..Default::default()
        },
        findings: vec![],
        blocked: false,
        after: Default::default(),
        handed_out: None,
    }
}

fn plan_of(targets: Vec<crate::plan::TargetPlan>) -> Plan {
    Plan {
        format_version: crate::plan::FORMAT_VERSION,
        intent_digest: "sha256:0".into(),
        prune_unmanaged: false,
        guardrails: vec![],
        targets,
    }
}

/// Blocks opened are closed: a cut never leaves a fence or a `<details>` open.
fn balanced(m: &str) {
    assert_eq!(
        m.matches("<details>").count(),
        m.matches("</details>").count(),
        "{m}"
    );
    let fences = m.lines().filter(|l| l.starts_with("```")).count();
    assert_eq!(fences % 2, 0, "{m}");
}

#[test]
fn a_cut_comment_keeps_every_row_and_says_what_it_left_out() {
    let plan = plan_of(vec![
        target("ap", 300),
        target("eu", 300),
        target("us", 300),
    ]);
    let whole = markdown::markdown_capped(&plan, None, usize::MAX);
    assert!(!whole.contains("Cut to fit"));
    for limit in [3_000, 8_000, 20_000] {
        let m = markdown::markdown_capped(&plan, None, limit);
        assert!(m.len() < limit, "{} >= {limit}", m.len());
        for d in ["ap", "eu", "us"] {
            assert!(
                m.contains(&format!("| {d} | aws | 300 | 0 | 0 | 0 | proven (")),
                "{m}"
            );
        }
        assert!(m.contains("| **all** | 3 targets | 900 | 0 | 0 | 0 | 3 proven | 0 |"));
        let notice = m.lines().last().unwrap();
        assert!(notice.starts_with("**Cut to fit a comment**"), "{notice}");
        assert!(
            notice.contains("changes") && notice.contains("plan.json"),
            "{notice}"
        );
        balanced(&m);
    }
}

#[test]
fn a_summary_too_long_for_a_comment_folds_rows_and_keeps_every_verdict() {
    let mut targets: Vec<_> = (0..1500).map(|i| target(&format!("d{i:04}"), 1)).collect();
    targets.extend((0..1500).map(|i| target(&format!("q{i:04}"), 0)));
    targets[7].simulation.mismatches = 3;
    targets[7].blocked = true;
    let plan = plan_of(targets);
    let m = markdown(&plan);
    assert!(m.len() < markdown::COMMENT_LIMIT, "{}", m.len());
    // the blocked target is early, so it keeps its own row; the rest are counted
    assert!(m.contains(
        "| d0007 | aws | 1 | 0 | 0 | 0 | **MISMATCH** (3 mismatches) | **0** (blocked) |"
    ));
    assert!(
        m.contains("| *unchanged, proven* | 1500 targets | 0 | 0 | 0 | 0 | 1500 proven | 0 |"),
        "{m}"
    );
    assert!(m.contains("| *more, see the full plan* |"), "{m}");
    assert!(m.contains("| **all** | 3000 targets | 1500 | 0 | 0 | 0 | 2999 proven, 1 MISMATCH | **0** (1 blocked) |"));
    balanced(&m);
}

#[test]
fn a_mermaid_label_cannot_close_its_quotes_or_add_a_statement() {
    let l = mermaid::label("x\"] --> evil[\"y\nclick x call alert() |<b>|");
    for c in ['"', '[', ']', '|', '<', '>', '\n', '{', '}'] {
        assert!(!l.contains(c), "{c:?} in {l}");
    }
    assert_eq!(mermaid::label("web-tier_1.eu"), "web-tier_1.eu");
}
