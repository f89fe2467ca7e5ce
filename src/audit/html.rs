//! The audit as a self-contained HTML evidence page: one file that can be archived, mailed or
//! attached to a ticket and still reads the same years later. It carries everything needed to
//! judge it (the intent digest, each target's state fingerprint, the time, the verdicts with
//! their counterexamples, the service graph as inline SVG) and depends on nothing: no
//! scripts, no fonts, stylesheets or images from elsewhere. Its Content-Security-Policy
//! forbids every fetch, so a browser opening it contacts nobody.
//!
//! The markup is also well-formed XML (void elements closed, every character escaped), so
//! the page can be checked, or its figures extracted, by any XML parser.

use super::render::{count, intent_text, meaning, native_text, summary, KINDS};
use super::{Audit, DiffKind, Difference, TargetAudit, Verdict};
use crate::graph::svg::{self, xml};
use crate::graph::View;
use std::collections::BTreeSet;
use std::fmt::Write;

const STYLE: &str = "\
body{font:14px/1.45 system-ui,sans-serif;color:#24292f;margin:0 auto;padding:24px;max-width:1280px}\
h1{font-size:22px;margin:0 0 12px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #d0d7de}\
h3{font-size:15px;margin:20px 0 8px}\
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}\
dl.meta dt{font-weight:600}dl.meta dd{margin:0}\
code{font:12px ui-monospace,monospace;word-break:break-all}\
table{border-collapse:collapse;width:100%;margin:6px 0 12px}\
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td:first-child{white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.badge{display:inline-block;border-radius:10px;padding:0 8px;margin:1px 2px;font-size:12px;font-weight:600;white-space:nowrap}\
.compliant{background:#dafbe1;color:#116329}.drift-wider{background:#ffebe9;color:#a40e26}\
.drift-narrower{background:#fff8c5;color:#7d4e00}.unverified{background:#eaeef2;color:#424a53}\
.graph{overflow-x:auto;border:1px solid #d0d7de;padding:8px}\
footer{margin-top:32px;color:#57606a;font-size:12px}";

fn badge(v: Verdict) -> String {
    format!("<span class=\"badge {0}\">{0}</span>", v.as_str())
}

fn badges(t: &TargetAudit) -> String {
    t.verdict.iter().map(|&v| badge(v)).collect()
}

/// An element id for a target: names are restricted to letters, digits, `-`, `_` and `.`
/// at load, so this is injective and needs no escaping beyond [`xml`].
fn target_id(t: &TargetAudit) -> String {
    xml(&format!("target-{}-{}", t.deployment, t.provider))
}

/// Groups a difference is about, per deployment, marked on the service graph: the
/// destination when it is one of our workloads (what is exposed or cut off), else the source
/// (a restricted group whose egress drifted). Marking both ends would paint every group that
/// can merely send to an exposed one.
fn drifted_groups(a: &Audit) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for t in &a.targets {
        for d in &t.differences {
            if let Some(g) = d.probe.dst.group.as_ref().or(d.probe.src.group.as_ref()) {
                out.insert((t.deployment.clone(), g.clone()));
            }
        }
    }
    out
}

fn meta(s: &mut String, a: &Audit) {
    let _ = writeln!(s, "<dl class=\"meta\">");
    let _ = writeln!(
        s,
        "<dt>Generated</dt><dd><time datetime=\"{0}\">{0}</time> (UTC)</dd>",
        xml(&a.generated_at)
    );
    let _ = writeln!(
        s,
        "<dt>Intent digest</dt><dd><code id=\"intent-digest\">{}</code></dd>",
        xml(&a.intent_digest)
    );
    let _ = writeln!(s, "<dt>Result</dt><dd>{}</dd>", xml(&summary(a)));
    let _ = writeln!(
        s,
        "<dt>Method</dt><dd>Each target's observed state (managed and unmanaged rules as \
         they are, not a plan) is evaluated with its cloud's semantics and proved against the \
         intent on every packet: a region of packets that every rule and flow involved treats \
         alike is shown by its smallest packet. Audit format {}.</dd>",
        a.format_version
    );
    let _ = writeln!(s, "</dl>");
}

fn targets_table(s: &mut String, a: &Audit) {
    let _ = writeln!(s, "<h2>Targets</h2>\n<table id=\"targets\">");
    let _ = writeln!(
        s,
        "<thead><tr><th>target</th><th>verdict</th><th>wider</th><th>narrower</th>\
         <th>unverifiable</th><th>classes proven</th><th>native rules (unmanaged)</th>\
         <th>placement</th><th>observed state</th><th>state fingerprint</th></tr></thead><tbody>"
    );
    for t in &a.targets {
        let at_least = if t.regions.capped { "≥" } else { "" };
        let placement: Vec<String> = t
            .placement
            .iter()
            .map(|(k, v)| format!("{}={}", xml(k), xml(v)))
            .collect();
        let title = if t.compliant() {
            xml(&t.title())
        } else {
            format!("<a href=\"#{}\">{}</a>", target_id(t), xml(&t.title()))
        };
        let _ = writeln!(
            s,
            "<tr data-target=\"{}/{}\"><td>{title}</td><td>{}</td>\
             <td class=\"n\">{at_least}{}</td><td class=\"n\">{at_least}{}</td>\
             <td class=\"n\">{at_least}{}</td><td class=\"n\">{}</td><td class=\"n\">{} ({})</td>\
             <td><code>{}</code></td><td><code>{}</code>{}</td><td><code>{}</code></td></tr>",
            xml(&t.deployment),
            t.provider,
            badges(t),
            t.regions.wider,
            t.regions.narrower,
            t.regions.unverifiable,
            t.classes,
            t.rules,
            t.unmanaged_rules,
            placement.join("<br/>"),
            xml(&t.snapshot.display().to_string()),
            if t.existed {
                ""
            } else {
                " (no recorded state: judged empty)"
            },
            xml(&t.fingerprint)
        );
    }
    let _ = writeln!(s, "</tbody></table>");
}

fn differences(s: &mut String, a: &Audit) {
    let drifted: Vec<&TargetAudit> = a.targets.iter().filter(|t| !t.compliant()).collect();
    let _ = writeln!(s, "<h2>Differences</h2>");
    if drifted.is_empty() {
        let _ = writeln!(
            s,
            "<p>None: every packet of every target gets the intent's verdict.</p>"
        );
        return;
    }
    for t in drifted {
        let _ = writeln!(
            s,
            "<section id=\"{}\"><h3>{} {}</h3>",
            target_id(t),
            xml(&t.title()),
            badges(t)
        );
        for k in KINDS {
            let of_kind: Vec<&Difference> = t.differences.iter().filter(|d| d.kind == k).collect();
            if of_kind.is_empty() {
                continue;
            }
            let n = count(t, k);
            let _ = writeln!(
                s,
                "<p><strong>{}</strong>: {}{n} region(s), {}.</p>",
                k.as_str(),
                if t.regions.capped { "at least " } else { "" },
                xml(meaning(k))
            );
            let native_head = if k == DiffKind::Unverifiable {
                "native rules"
            } else {
                "native verdict and deciding rule"
            };
            let _ = writeln!(
                s,
                "<table class=\"diff {}\"><thead><tr><th>packet (smallest of its region)</th>\
                 <th>intent</th><th>{native_head}</th></tr></thead><tbody>",
                k.as_str()
            );
            for d in of_kind {
                let _ = writeln!(
                    s,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    xml(&d.packet),
                    xml(&intent_text(d)),
                    xml(&native_text(d))
                );
            }
            let _ = writeln!(s, "</tbody></table>");
        }
        let _ = writeln!(s, "</section>");
    }
}

/// The evidence page for an audit; `views` are the graphs of the audited deployments.
pub fn page(a: &Audit, views: &[View<'_, '_>]) -> String {
    let status = if a.compliant { "compliant" } else { "drift" };
    let mut s = String::new();
    let _ = writeln!(s, "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>");
    let _ = writeln!(
        s,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\"/>"
    );
    let _ = writeln!(
        s,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>"
    );
    let _ = writeln!(
        s,
        "<title>intentwall audit {}: {status}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        xml(&a.generated_at)
    );
    let _ =
        writeln!(
        s,
        "<header><h1>intentwall audit: <span class=\"badge {}\" id=\"result\">{status}</span></h1>",
        // drift of any kind is shown in the exposure colour: it fails the audit
        if a.compliant { "compliant" } else { "drift-wider" }
    );
    meta(&mut s, a);
    let _ = writeln!(s, "</header>\n<main>");
    targets_table(&mut s, a);
    differences(&mut s, a);
    let _ = writeln!(
        s,
        "<h2>Service graph</h2>\n<p>Groups (boxes), composite groups (dashed), networks \
         (rounded); arrows are allow flows, red dashed lines deny flows, dotted lines nesting. \
         Groups a difference above is about (its destination, or a restricted source) are \
         drawn in red.</p>\n<div class=\"graph\">"
    );
    s.push_str(&svg::render(views, &drifted_groups(a)));
    let _ = writeln!(s, "</div>\n</main>");
    let _ = writeln!(
        s,
        "<footer><p><strong>compliant</strong>: every packet gets the intent's verdict (proven, \
         not sampled). <strong>drift-wider</strong>: traffic the intent denies is allowed \
         (exposure). <strong>drift-narrower</strong>: traffic the intent allows is blocked \
         (outage). <strong>unverified</strong>: some verdicts depend on rules whose match is \
         unknown (an undeclared service tag or prefix list). Generated by intentwall {}.</p>\
         </footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    s
}
