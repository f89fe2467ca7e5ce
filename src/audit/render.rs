//! The audit as text for people and as Markdown. Renderers only format; the verdicts are
//! decided in [`super::run`].

use super::{Audit, DiffKind, Difference, TargetAudit};
use std::fmt::Write;

/// Counterexamples shown per target and kind in the text and Markdown reports (the JSON and
/// the HTML page carry every one).
pub const SHOWN: usize = 10;

/// `allow` / `deny`.
pub(crate) fn word(allowed: bool) -> &'static str {
    if allowed {
        "allow"
    } else {
        "deny"
    }
}

/// The intent's side of a difference: `deny [reason (flows)]`.
pub(crate) fn intent_text(d: &Difference) -> String {
    let why = if d.intent.flows.is_empty() {
        d.intent.reason.clone()
    } else {
        format!("{} ({})", d.intent.reason, d.intent.flows.join(", "))
    };
    format!("{} [{why}]", word(d.intent.allowed))
}

/// The native side of a difference: its verdict and the rule that decided it.
pub(crate) fn native_text(d: &Difference) -> String {
    if d.kind == DiffKind::Unverifiable {
        let rules: Vec<String> = d
            .native
            .unknown
            .iter()
            .map(|(id, why)| format!("`{id}` ({why})"))
            .collect();
        return format!("depends on {}", rules.join(", "));
    }
    let verdict = word(d.native.allowed.unwrap_or(false));
    match &d.native.rule {
        Some(id) => format!(
            "{verdict} by rule `{id}`{}{}",
            if d.native.managed { "" } else { " (unmanaged)" },
            d.native
                .flow
                .as_ref()
                .map(|f| format!(" from flow `{f}`"))
                .unwrap_or_default()
        ),
        None => format!("{verdict} by the cloud's default (no rule matched)"),
    }
}

/// `2 regions` / `at least 256 regions`.
fn regions(n: u64, capped: bool) -> String {
    format!(
        "{}{n} region{}",
        if capped { "at least " } else { "" },
        if n == 1 { "" } else { "s" }
    )
}

/// What a kind of difference means, in a few words.
pub(crate) fn meaning(k: DiffKind) -> &'static str {
    match k {
        DiffKind::Wider => "the intent denies, the cloud allows: exposure",
        DiffKind::Narrower => "the intent allows, the cloud blocks: outage",
        DiffKind::Unverifiable => "the cloud's verdict depends on rules of unknown match",
    }
}

/// Every kind, in report order.
pub(crate) const KINDS: [DiffKind; 3] =
    [DiffKind::Wider, DiffKind::Narrower, DiffKind::Unverifiable];

/// The count of a kind of region in a target.
pub(crate) fn count(t: &TargetAudit, k: DiffKind) -> u64 {
    match k {
        DiffKind::Wider => t.regions.wider,
        DiffKind::Narrower => t.regions.narrower,
        DiffKind::Unverifiable => t.regions.unverifiable,
    }
}

/// The verdict list as text: `drift-wider, drift-narrower`.
pub(crate) fn verdict_text(t: &TargetAudit) -> String {
    let words: Vec<&str> = t.verdict.iter().map(|v| v.as_str()).collect();
    words.join(", ")
}

/// One line for the whole audit.
pub(crate) fn summary(a: &Audit) -> String {
    let n = a.targets.len();
    if a.compliant {
        return format!("all {n} target(s) compliant");
    }
    format!(
        "{} of {n} target(s) drifted ({} wider, {} narrower, {} unverified)",
        a.drifted(),
        a.count(super::Verdict::DriftWider),
        a.count(super::Verdict::DriftNarrower),
        a.count(super::Verdict::Unverified)
    )
}

/// Text for people.
pub fn human(a: &Audit) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "intentwall audit at {}, intent {}\n",
        a.generated_at, a.intent_digest
    );
    for t in &a.targets {
        let _ = writeln!(
            s,
            "{}  ({}{}, {})  {}",
            t.title(),
            t.snapshot.display(),
            if t.existed { "" } else { ": no recorded state" },
            t.fingerprint,
            verdict_text(t).to_uppercase()
        );
        let _ = writeln!(
            s,
            "  {} classes proven over {} native rules ({} unmanaged)",
            t.classes, t.rules, t.unmanaged_rules
        );
        for k in KINDS {
            let n = count(t, k);
            if n == 0 {
                continue;
            }
            let _ = writeln!(
                s,
                "  {}: {} ({})",
                k.as_str(),
                regions(n, t.regions.capped),
                meaning(k)
            );
            let of_kind: Vec<&Difference> = t.differences.iter().filter(|d| d.kind == k).collect();
            for d in of_kind.iter().take(SHOWN) {
                let _ = writeln!(
                    s,
                    "    {}: intent says {}, {} says {}",
                    d.packet,
                    intent_text(d),
                    t.provider,
                    native_text(d)
                );
            }
            if of_kind.len() > SHOWN {
                let _ = writeln!(
                    s,
                    "    ... {} more (--format json lists every one)",
                    of_kind.len() - SHOWN
                );
            }
        }
        s.push('\n');
    }
    let _ = writeln!(s, "Audit: {}.", summary(a));
    s
}

/// Markdown text: special characters backslash-escaped, control characters shown as
/// escapes, so quoted snapshot content (rule names are anyone's text) cannot add rows,
/// links or markup.
pub(crate) fn md(x: &str) -> String {
    let mut out = String::with_capacity(x.len());
    for c in x.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            if "\\`*_[]<>|~&#".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// A Markdown code span holding `x` as it is: delimited by more backticks than any run in
/// it, control characters shown as escapes (a line break would end the list item).
pub(crate) fn code(x: &str) -> String {
    let x: String = x
        .chars()
        .flat_map(|c| {
            let e: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            e
        })
        .collect();
    let longest = x.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if x.starts_with('`') || x.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{x}{pad}{fence}")
}

/// One difference as a Markdown list item's text: packet, the intent's verdict and why, the
/// cloud's verdict and the rule that decided it (rule names are snapshot content, anyone's
/// text, so they go in code spans).
fn markdown_difference(t: &TargetAudit, d: &Difference) -> String {
    // the oracle quotes intent names (letters, digits, `-_.`) in backticks
    let reason = md(&d.intent.reason.replace('`', ""));
    let flows: Vec<String> = d.intent.flows.iter().map(|f| code(f)).collect();
    let intent = if flows.is_empty() {
        format!("**{}**: {reason}", word(d.intent.allowed))
    } else {
        format!(
            "**{}**: {reason} ({})",
            word(d.intent.allowed),
            flows.join(", ")
        )
    };
    let native = if d.kind == DiffKind::Unverifiable {
        let rules: Vec<String> = d
            .native
            .unknown
            .iter()
            .map(|(id, why)| format!("{} ({})", code(id), md(why)))
            .collect();
        format!("depends on {}", rules.join(", "))
    } else {
        let verdict = word(d.native.allowed.unwrap_or(false));
        match &d.native.rule {
            Some(id) => format!(
                "**{verdict}** by rule {}{}{}",
                code(id),
                if d.native.managed { "" } else { " (unmanaged)" },
                d.native
                    .flow
                    .as_ref()
                    .map(|f| format!(" from flow {}", code(f)))
                    .unwrap_or_default()
            ),
            None => format!("**{verdict}** by the cloud's default (no rule matched)"),
        }
    };
    format!(
        "{}: intent {intent}; {} {native}",
        code(&d.packet),
        t.provider
    )
}

/// A Markdown report: a summary table, then each drifted target's counterexamples.
pub fn markdown(a: &Audit) -> String {
    let mut s = String::new();
    let status = if a.compliant { "compliant" } else { "drift" };
    let _ = writeln!(s, "## intentwall audit: {status}\n");
    let _ = writeln!(
        s,
        "At {}, intent `{}`: {}.\n",
        md(&a.generated_at),
        a.intent_digest,
        summary(a)
    );
    let _ = writeln!(
        s,
        "| target | verdict | wider | narrower | unverifiable | classes | state fingerprint |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---|");
    for t in &a.targets {
        let at_least = if t.regions.capped { "≥" } else { "" };
        let _ = writeln!(
            s,
            "| {} | {} | {at_least}{} | {at_least}{} | {at_least}{} | {} | `{}` |",
            md(&t.title()),
            verdict_text(t),
            t.regions.wider,
            t.regions.narrower,
            t.regions.unverifiable,
            t.classes,
            t.fingerprint
        );
    }
    for t in a.targets.iter().filter(|t| !t.compliant()) {
        let _ = writeln!(s, "\n### {}: {}", md(&t.title()), verdict_text(t));
        for k in KINDS {
            let of_kind: Vec<&Difference> = t.differences.iter().filter(|d| d.kind == k).collect();
            if of_kind.is_empty() {
                continue;
            }
            let _ = writeln!(s, "\n{} ({}):\n", k.as_str(), meaning(k));
            for d in of_kind.iter().take(SHOWN) {
                let _ = writeln!(s, "- {}", markdown_difference(t, d));
            }
            if of_kind.len() > SHOWN {
                let _ = writeln!(s, "- … {} more", of_kind.len() - SHOWN);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{code, md};

    #[test]
    fn code_spans_hold_any_text() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a\nb"), "`a\\nb`");
    }

    #[test]
    fn markdown_text_cannot_add_rows_or_markup() {
        let hostile = "a|b\n| x | y |<script>[l](http://e)`c`";
        let m = md(hostile);
        assert!(!m.contains('\n'));
        for c in ['|', '<', '[', '`'] {
            // every occurrence escaped
            for (i, _) in m.match_indices(c) {
                assert_eq!(&m[i - 1..i], "\\", "{m}");
            }
        }
    }
}
