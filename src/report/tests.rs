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
    assert!(markdown_simulation(&plan, None).starts_with("## intentwall simulate: nothing to simulate"));
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
