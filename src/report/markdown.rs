//! Markdown for a pull-request comment: what reviewers read before they approve a change.
//!
//! Layout, most important first: the status line and a summary table per deployment × cloud
//! (changes by action, the simulation's verdict, findings); the findings; a Mermaid picture
//! of the flows that change; then each target's changes in a collapsed `<details>` block,
//! updates with the fields that differ before and after.
//!
//! GitHub refuses a comment of 65,536 characters or more, and a plan that creates a whole
//! estate is larger than that. The comment is therefore cut to fit ([`COMMENT_LIMIT`]): the
//! title, status line and summary table with every verdict are never cut; findings, then the
//! picture, then the changes take what room is left, and a cut comment ends by saying what
//! it left out and where the whole plan is (the plan file, or `--format json`).

use super::mermaid;
use super::{expects_passed, field_changes, finding_line, sim_verdict_text, target_title, Verdict};
use crate::diff::Action;
use crate::exit::ExitStatus;
use crate::intent::Intent;
use crate::plan::{Plan, TargetPlan};
use crate::simulate::flowlog::Replay;
use std::fmt::Write;

/// GitHub's limit on a comment's length, in characters: every Markdown output stays under it.
pub const COMMENT_LIMIT: usize = 65_536;

/// Room kept for the closing notice of a cut comment (it is shorter than this).
const NOTICE_ROOM: usize = 700;

/// Text for a Markdown table cell, list item or heading: Markdown punctuation and HTML
/// brackets backslash-escaped, control characters (a newline would start a new row or item)
/// shown as escapes. Names are restricted at load, but findings quote snapshot content
/// (unmanaged rule names and descriptions), which is anyone's text.
pub(crate) fn md_escape(x: &str) -> String {
    let mut out = String::with_capacity(x.len());
    for c in x.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            if "\\`*_[]<>|~&".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// Text inside an HTML element (`<summary>`), where Markdown escapes would show as written.
fn html_escape(x: &str) -> String {
    let mut out = String::with_capacity(x.len());
    for c in x.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// A line inside a fenced code block: control characters shown as escapes, so one change
/// cannot forge another line (`+ allow all`).
pub(crate) fn md_code_line(x: &str) -> String {
    let mut out = String::with_capacity(x.len());
    for c in x.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A code fence longer than any backtick run in `lines`, so no line can close it.
pub(crate) fn md_fence<'a>(lines: impl IntoIterator<Item = &'a String>) -> String {
    let longest = lines
        .into_iter()
        .flat_map(|l| l.split(|c| c != '`').map(str::len))
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// Length as counted against the limit: bytes, never fewer than characters, so a comment
/// under the limit in bytes is under it however GitHub counts.
fn chars(s: &str) -> usize {
    s.len()
}

/// `65536` as `65,536`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The simulation cell of a target's row: the verdict first, then the figures behind it.
fn verdict_cell(t: &TargetPlan) -> String {
    let s = &t.simulation;
    match Verdict::of(t) {
        Verdict::Proven => format!(
            "proven ({} classes, {} expects)",
            s.classes,
            expects_passed(t)
        ),
        Verdict::Mismatch => format!("**MISMATCH** ({} mismatches)", s.mismatches),
        Verdict::ExpectationFailed => {
            format!("**EXPECTATION FAILED** ({} expects)", expects_passed(t))
        }
        Verdict::Unverified => format!("**UNVERIFIED** ({} unverifiable)", s.unverifiable),
    }
}

/// "3 proven, 1 MISMATCH": how many targets have each verdict.
fn verdict_counts<'a>(targets: impl IntoIterator<Item = &'a TargetPlan>) -> String {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for t in targets {
        let v = sim_verdict_text(t);
        match counts.iter_mut().find(|(k, _)| *k == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v, 1)),
        }
    }
    if counts.is_empty() {
        return "-".into();
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn count_cell(n: usize, blocked: bool) -> String {
    if blocked {
        format!("**{n}** (blocked)")
    } else {
        n.to_string()
    }
}

fn row(t: &TargetPlan) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
        md_escape(&t.deployment),
        t.provider,
        t.count(Action::Create),
        t.count(Action::Update),
        t.count(Action::Replace),
        t.count(Action::Delete),
        verdict_cell(t),
        count_cell(t.findings.len(), t.blocked)
    )
}

/// A row standing for several targets: sums, and verdicts counted.
fn sum_row(label: &str, targets: &[&TargetPlan]) -> String {
    let sum = |a: Action| targets.iter().map(|t| t.count(a)).sum::<usize>();
    let blocked = targets.iter().filter(|t| t.blocked).count();
    format!(
        "| {label} | {} targets | {} | {} | {} | {} | {} | {} |\n",
        targets.len(),
        sum(Action::Create),
        sum(Action::Update),
        sum(Action::Replace),
        sum(Action::Delete),
        verdict_counts(targets.iter().copied()),
        if blocked > 0 {
            format!(
                "**{}** ({blocked} blocked)",
                targets.iter().map(|t| t.findings.len()).sum::<usize>()
            )
        } else {
            targets
                .iter()
                .map(|t| t.findings.len())
                .sum::<usize>()
                .to_string()
        }
    )
}

/// The summary table, within `room` characters when it can be: quiet targets (no change,
/// no finding, proven) folded into one row first, then the last rows into one, the total
/// row always kept. Every verdict stays, counted in the folded rows.
fn summary_table(plan: &Plan, room: usize) -> String {
    const HEAD: &str = "| deployment | cloud | create | update | replace | delete | simulation | findings |\n|---|---|---:|---:|---:|---:|---|---:|\n";
    let all: Vec<&TargetPlan> = plan.targets.iter().collect();
    let total = if all.len() > 1 {
        sum_row("**all**", &all)
    } else {
        String::new()
    };
    let whole: String = all.iter().map(|t| row(t)).collect();
    if chars(HEAD) + chars(&whole) + chars(&total) <= room {
        return format!("{HEAD}{whole}{total}");
    }
    let quiet = |t: &&TargetPlan| {
        !t.has_changes() && t.findings.is_empty() && Verdict::of(t) == Verdict::Proven
    };
    let (quiet, loud): (Vec<&TargetPlan>, Vec<&TargetPlan>) = all.iter().copied().partition(quiet);
    let quiet_row = if quiet.is_empty() {
        String::new()
    } else {
        sum_row("*unchanged, proven*", &quiet)
    };
    let mut s = HEAD.to_string();
    let mut used = chars(HEAD) + chars(&quiet_row) + chars(&total);
    // the room a folded row of the rest may need
    let fold_room = 200;
    for (i, t) in loud.iter().enumerate() {
        let r = row(t);
        if used + chars(&r) + fold_room > room {
            s.push_str(&sum_row("*more, see the full plan*", &loud[i..]));
            break;
        }
        used += chars(&r);
        s.push_str(&r);
    }
    s.push_str(&quiet_row);
    s.push_str(&total);
    s
}

/// The line under the title: what the exit code means for this plan.
fn status_line(plan: &Plan) -> String {
    let changing = plan.targets.iter().filter(|t| t.has_changes()).count();
    let blocked = plan.targets.iter().filter(|t| t.blocked).count();
    match plan.status() {
        ExitStatus::Blocked => format!(
            "**Blocked** (exit 3): {blocked} of {} targets will not be applied{}; see the findings.",
            plan.targets.len(),
            if plan.guardrails.is_empty() {
                String::new()
            } else {
                format!(
                    ", and {} guardrail findings block every target of their deployment",
                    plan.guardrails.len()
                )
            }
        ),
        ExitStatus::Changes => format!(
            "**Changes to review** (exit 2): {changing} of {} targets change; simulation: {}.",
            plan.targets.len(),
            verdict_counts(&plan.targets)
        ),
        ExitStatus::Ok | ExitStatus::Error => "No changes.".into(),
    }
}

/// The lines of one change in a `diff` block: `+` create, `-` delete, `!` update or replace
/// followed by each field that differs, before (`-`) and after (`+`).
fn change_lines(c: &crate::diff::Change) -> Vec<String> {
    let o = c.object();
    let why = match (&o.flow, o.managed) {
        (Some(f), _) => format!("   # flow {f}"),
        (None, false) => "   # unmanaged".into(),
        (None, true) => String::new(),
    };
    let mut lines = Vec::new();
    match c.action {
        Action::Create => lines.push(format!("+ {} {}{why}", o.kind, o.summary)),
        Action::Delete => lines.push(format!("- {} {}{why}", o.kind, o.summary)),
        Action::Update | Action::Replace => {
            let what = if c.action == Action::Update {
                "update"
            } else {
                "replace"
            };
            let why = if why.is_empty() {
                format!("   # {what}")
            } else {
                format!("{why} ({what})")
            };
            lines.push(format!("! {} {}{why}", o.kind, o.summary));
            for f in field_changes(c) {
                lines.push(format!("-     {}: {}", f.field, f.before));
                lines.push(format!("+     {}: {}", f.field, f.after));
            }
        }
    }
    lines.into_iter().map(|l| md_code_line(&l)).collect()
}

fn details_summary(t: &TargetPlan) -> String {
    let counts: Vec<String> = [
        (Action::Create, "to create"),
        (Action::Update, "to update"),
        (Action::Replace, "to replace"),
        (Action::Delete, "to delete"),
    ]
    .iter()
    .filter(|(a, _)| t.count(*a) > 0)
    .map(|(a, w)| format!("{} {w}", t.count(*a)))
    .collect();
    html_escape(&format!(
        "{}: {} ({}{})",
        target_title(t),
        counts.join(", "),
        t.snapshot.display(),
        if t.existed { "" } else { ", a new target" }
    ))
}

/// Text with a running character count.
struct Out {
    s: String,
    chars: usize,
}

impl Out {
    fn push(&mut self, x: &str) {
        self.chars += chars(x);
        self.s.push_str(x);
    }
}

/// Markdown for a pull-request comment (without the picture of the changed flows).
pub fn markdown(plan: &Plan) -> String {
    markdown_with(plan, None)
}

/// Markdown for a pull-request comment; with the intent, a picture of the flows that change.
pub fn markdown_with(plan: &Plan, intent: Option<&Intent>) -> String {
    markdown_capped(plan, intent, COMMENT_LIMIT)
}

/// [`markdown_with`] under `limit` characters (see the module's doc for what is cut).
pub fn markdown_capped(plan: &Plan, intent: Option<&Intent>, limit: usize) -> String {
    // strictly under the limit, the closing notice's room kept
    let room = limit.saturating_sub(1 + NOTICE_ROOM);
    let status = match plan.status() {
        ExitStatus::Blocked => "blocked",
        ExitStatus::Changes => "changes",
        ExitStatus::Ok | ExitStatus::Error => "no changes",
    };
    let mut out = Out {
        s: String::new(),
        chars: 0,
    };
    out.push(&format!(
        "## intentwall plan: {status}\n\n{}\n\n",
        status_line(plan)
    ));
    let table = summary_table(plan, room.saturating_sub(out.chars));
    out.push(&table);
    let findings: Vec<String> = plan
        .findings()
        .map(|f| format!("- {}\n", md_escape(&finding_line(f))))
        .collect();
    let mut left_out_findings = 0;
    if !findings.is_empty() {
        out.push(&format!("\n### Findings ({})\n\n", findings.len()));
        for (i, f) in findings.iter().enumerate() {
            if out.chars + chars(f) > room {
                left_out_findings = findings.len() - i;
                break;
            }
            out.push(f);
        }
    }
    let mut left_out_picture = false;
    if let Some(picture) = intent.and_then(|i| mermaid::changed_flows(plan, i)) {
        let block = format!("\n### Flows that change\n\n```mermaid\n{picture}```\n");
        if out.chars + chars(&block) <= room {
            out.push(&block);
        } else {
            left_out_picture = true;
        }
    }
    let mut left_out_changes = 0;
    let changing: Vec<&TargetPlan> = plan
        .targets
        .iter()
        .filter(|t| !t.changes.is_empty())
        .collect();
    if !changing.is_empty() {
        out.push("\n### Changes\n");
    }
    for t in changing {
        if left_out_changes > 0 {
            left_out_changes += t.changes.len();
            continue;
        }
        let items: Vec<Vec<String>> = t.changes.iter().map(change_lines).collect();
        let fence = md_fence(items.iter().flatten());
        let open = format!(
            "\n<details><summary>{}</summary>\n\n{fence}diff\n",
            details_summary(t)
        );
        let close = format!("{fence}\n</details>\n");
        // room for a line saying what this target's block leaves out
        let cut_line = 80;
        let mut shown = 0;
        let mut body = String::new();
        let mut body_chars = 0;
        for (n, lines) in items.iter().enumerate() {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let last = n + 1 == items.len();
            let need = chars(&text) + if last { 0 } else { cut_line };
            if out.chars + chars(&open) + body_chars + need + chars(&close) > room {
                break;
            }
            body_chars += chars(&text);
            body.push_str(&text);
            shown += 1;
        }
        if shown == 0 {
            left_out_changes += t.changes.len();
            continue;
        }
        out.push(&open);
        out.push(&body);
        if shown < items.len() {
            left_out_changes += items.len() - shown;
            out.push(&format!(
                "… {} more changes of this target are not shown\n",
                items.len() - shown
            ));
        }
        out.push(&close);
    }
    if !plan.has_changes() && plan.status() == ExitStatus::Blocked {
        // said in words (the status line says it when nothing blocks): an empty diff block
        // reads like a rendering fault
        out.push("\nNo changes.\n");
    }
    if left_out_findings + left_out_changes > 0 || left_out_picture {
        let mut what = Vec::new();
        if left_out_findings > 0 {
            what.push(format!("{left_out_findings} findings"));
        }
        if left_out_picture {
            what.push("the picture of the flows that change".to_string());
        }
        if left_out_changes > 0 {
            what.push(format!("{left_out_changes} changes"));
        }
        out.push(&format!(
            "\n---\n\n**Cut to fit a comment** (GitHub takes fewer than {} characters): the summary and every verdict above are whole; not shown: {}. The full plan is the plan file this job keeps as an artifact (`intentwall plan --out plan.json`), or `intentwall plan --format json`.\n",
            thousands(limit),
            what.join(", ")
        ));
    }
    out.s
}

/// The Markdown summary of `simulate`: the verdicts per target, the findings and the
/// flow-log replay if any; cut to fit a comment like the plan's (findings first to go).
pub fn markdown_simulation(plan: &Plan, replay: Option<&Replay>) -> String {
    let room = COMMENT_LIMIT.saturating_sub(1 + NOTICE_ROOM);
    let verdict = if plan.blocked() {
        "blocked"
    } else if plan
        .targets
        .iter()
        .any(|t| Verdict::of(t) != Verdict::Proven)
    {
        "unverified"
    } else if plan.targets.is_empty() {
        "nothing to simulate"
    } else {
        "proven"
    };
    let mut out = Out {
        s: String::new(),
        chars: 0,
    };
    out.push(&format!("## intentwall simulate: {verdict}\n\n"));
    out.push("| deployment | cloud | probes | classes | mismatches | unverifiable | expects | findings | verdict |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n");
    for t in &plan.targets {
        let s = &t.simulation;
        out.push(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            md_escape(&t.deployment),
            t.provider,
            s.probes,
            s.classes,
            s.mismatches,
            s.unverifiable,
            expects_passed(t),
            count_cell(t.findings.len(), t.blocked),
            match Verdict::of(t) {
                Verdict::Proven => "proven".to_string(),
                _ => format!("**{}**", sim_verdict_text(t)),
            }
        ));
    }
    if let Some(r) = replay {
        out.push(&markdown_replay(r));
    }
    let findings: Vec<String> = plan
        .findings()
        .map(|f| format!("- {}\n", md_escape(&finding_line(f))))
        .collect();
    if !findings.is_empty() {
        out.push(&format!("\n### Findings ({})\n\n", findings.len()));
        for (i, f) in findings.iter().enumerate() {
            if out.chars + chars(f) > room {
                out.push(&format!(
                    "\n---\n\n**Cut to fit a comment** (GitHub takes fewer than {} characters): {} more findings are not shown; `intentwall simulate --format json` has them all.\n",
                    thousands(COMMENT_LIMIT),
                    findings.len() - i
                ));
                break;
            }
            out.push(f);
        }
    }
    out.s
}

/// The flow-log replay section of `simulate --format markdown`.
pub fn markdown_replay(r: &Replay) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n### Flow-log replay: {} ({})\n",
        md_escape(&r.file),
        r.format
    );
    let _ = writeln!(
        s,
        "{} records read, {} skipped, {} outside every deployment, {} unattributed, {} checked, **{} mismatches**, {} expectation failures, {} drift records.\n",
        r.records, r.skipped, r.outside, r.unattributed, r.checked, r.mismatches, r.expectations_failed, r.drift
    );
    let _ = writeln!(
        s,
        "| target | records | checked | unattributed | mismatches | drift |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for t in r.targets.iter().filter(|t| t.records > 0) {
        let _ = writeln!(
            s,
            "| {} / {} | {} | {} | {} | {} | {} |",
            md_escape(&t.deployment),
            t.provider.map(|p| p.as_str()).unwrap_or("-"),
            t.records,
            t.checked,
            t.unattributed,
            t.mismatches + t.expectations_failed,
            t.drift
        );
    }
    s
}
