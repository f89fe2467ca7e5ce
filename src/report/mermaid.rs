//! The flows a plan changes, as a Mermaid flowchart for the pull-request comment: per
//! deployment, an edge from the flow's source to its destination (groups and networks), drawn
//! by what the plan does to the flow's rules:
//!
//! - `added` (thick, green): the flow is in the intent and the plan only creates rules for it;
//! - `changed` (plain, orange): in the intent, and rules of it are updated, replaced or deleted;
//! - `removed` (dotted, red): the deployment's intent no longer has the flow, and the plan
//!   only deletes its rules.
//!
//! A deny flow's label says so (`added deny: …`).
//!
//! A removed flow's endpoints come from another deployment that still has a flow of that
//! name; when none does, the plan cannot know them (the rules only name the flow), so the
//! flow is a node of its own. Rules of no intent flow (added by hand to an owned object, or
//! named by a cloud's translation, like a default egress rule) are counted in one node per
//! deployment. A rule serving several flows counts for each.
//!
//! Node ids are positions (`d0n3`), never names, and every label is quoted with anything but
//! letters, digits and a few safe punctuation marks as a Mermaid entity code: no name, even
//! one the loader would refuse, can close a label or add a statement.

use crate::diff::Action;
use crate::intent::{Deployment, Intent};
use crate::plan::Plan;
use intentwall_contract::ProviderKind;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

#[derive(Default)]
struct FlowChanges {
    creates: usize,
    others: usize,
    clouds: BTreeSet<ProviderKind>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Added,
    Changed,
    Removed,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Added => "added",
            Kind::Changed => "changed",
            Kind::Removed => "removed",
        }
    }
    fn arrow(self) -> &'static str {
        match self {
            Kind::Added => "==>",
            Kind::Changed => "-->",
            Kind::Removed => "-.->",
        }
    }
    fn style(self) -> &'static str {
        match self {
            Kind::Added => "stroke:#1a7f37,stroke-width:3px",
            Kind::Changed => "stroke:#bc4c00,stroke-width:2px",
            Kind::Removed => "stroke:#cf222e,stroke-width:2px",
        }
    }
}

/// Text for inside a Mermaid `"..."` label: everything but letters, digits, space and
/// `-_.,/:()+` as an entity code (`#34;`), so a label cannot close its quotes or bracket and
/// no markup reaches the renderer.
pub fn label(x: &str) -> String {
    let mut out = String::with_capacity(x.len());
    for c in x.chars() {
        if c.is_ascii_alphanumeric() || " -_.,/:()+".contains(c) {
            out.push(c);
        } else {
            let _ = write!(out, "#{};", c as u32);
        }
    }
    out
}

/// A node's shape around its quoted label: networks as cylinders, composite groups as
/// subroutines, groups as boxes.
fn shape(intent: &Intent, dep: Option<&Deployment>, name: &str) -> (&'static str, &'static str) {
    let deps = dep.into_iter().chain(intent.deployments.values());
    for d in deps {
        if d.networks.contains_key(name) {
            return ("[(", ")]");
        }
        if let Some(g) = d.groups.get(name) {
            return if g.is_composite() {
                ("[[", "]]")
            } else {
                ("[", "]")
            };
        }
    }
    ("[", "]")
}

/// The id of a node of deployment `i`, declared (into `s`) the first time it is drawn.
fn node_id(
    nodes: &mut BTreeMap<String, String>,
    s: &mut String,
    i: usize,
    intent: &Intent,
    dep: Option<&Deployment>,
    name: &str,
) -> String {
    if let Some(id) = nodes.get(name) {
        return id.clone();
    }
    let id = format!("d{i}n{}", nodes.len());
    let (open, close) = shape(intent, dep, name);
    let _ = writeln!(s, "    {id}{open}\"{}\"{close}", label(name));
    nodes.insert(name.to_string(), id.clone());
    id
}

/// The flow names a rule's `flow` field carries: one, or several joined by `,` (a rule
/// serving several flows), maybe ending with a `(+N more)` marker, which names none.
fn flow_names(field: &str) -> impl Iterator<Item = &str> {
    field
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty() && !f.starts_with("(+"))
}

/// The flowchart of the flows `plan` changes, or `None` when the plan changes nothing.
pub fn changed_flows(plan: &Plan, intent: &Intent) -> Option<String> {
    // deployment -> flow -> what the plan does to its rules (a rule of no flow under "")
    let mut per: BTreeMap<&str, BTreeMap<&str, FlowChanges>> = BTreeMap::new();
    for t in &plan.targets {
        // containers (SGs, NSGs, ASGs) are where rules live, not flows
        for c in t.changes.iter().filter(|c| !c.object().container) {
            let entry = per.entry(t.deployment.as_str()).or_default();
            let field = c.object().flow.as_deref().unwrap_or("");
            let mut names: Vec<&str> = flow_names(field).collect();
            if names.is_empty() {
                names.push("");
            }
            for flow in names {
                let f = entry.entry(flow).or_default();
                if c.action == Action::Create {
                    f.creates += 1;
                } else {
                    f.others += 1;
                }
                f.clouds.insert(t.provider);
            }
        }
    }
    if per.is_empty() {
        return None;
    }
    let mut s = String::from("flowchart LR\n");
    let mut links: Vec<Kind> = Vec::new();
    for (i, (dep_name, flows)) in per.iter().enumerate() {
        let dep = intent.deployments.get(*dep_name);
        let _ = writeln!(s, "  subgraph d{i}[\"deployment {}\"]", label(dep_name));
        let mut nodes: BTreeMap<String, String> = BTreeMap::new();
        let mut body = String::new();
        // rules of no intent flow: hand-made in owned objects, or named by the cloud's
        // translation itself (a default egress rule); one node lists them
        let mut other: Vec<String> = Vec::new();
        for (n, (flow, ch)) in flows.iter().enumerate() {
            let clouds: Vec<&str> = ch.clouds.iter().map(|p| p.as_str()).collect();
            let clouds = clouds.join(", ");
            let here = dep.and_then(|d| d.flows.iter().find(|f| f.name == *flow));
            let kind = match (here, ch.creates, ch.others) {
                (Some(_), _, 0) => Kind::Added,
                (Some(_), _, _) => Kind::Changed,
                (None, 0, _) if !flow.is_empty() => Kind::Removed,
                (None, _, _) => {
                    let name = if flow.is_empty() { "no flow" } else { flow };
                    other.push(format!("{name} ({clouds}): {}", ch.creates + ch.others));
                    continue;
                }
            };
            let known = here.or_else(|| {
                intent
                    .deployments
                    .values()
                    .find_map(|d| d.flows.iter().find(|f| f.name == *flow))
            });
            let deny = match known.map(|f| f.action) {
                Some(intentwall_contract::Action::Deny) => " deny",
                _ => "",
            };
            let text = label(&format!("{}{deny}: {flow} ({clouds})", kind.word()));
            let ends = known.map(|f| (f.from.as_str(), f.to.as_str()));
            let Some((from, to)) = ends else {
                let _ = writeln!(
                    body,
                    "    d{i}x{n}{{{{\"{text}, endpoints no longer in the intent\"}}}}"
                );
                continue;
            };
            let a = node_id(&mut nodes, &mut s, i, intent, dep, from);
            let b = node_id(&mut nodes, &mut s, i, intent, dep, to);
            let _ = writeln!(body, "    {a} {}|\"{text}\"| {b}", kind.arrow());
            links.push(kind);
        }
        if !other.is_empty() {
            let _ = writeln!(
                body,
                "    d{i}u{{{{\"{}\"}}}}",
                label(&format!(
                    "rules of no intent flow that change: {}",
                    other.join(", ")
                ))
            );
        }
        s.push_str(&body);
        let _ = writeln!(s, "  end");
    }
    for kind in [Kind::Added, Kind::Changed, Kind::Removed] {
        let idx: Vec<String> = links
            .iter()
            .enumerate()
            .filter(|(_, k)| **k == kind)
            .map(|(n, _)| n.to_string())
            .collect();
        if !idx.is_empty() {
            let _ = writeln!(s, "  linkStyle {} {}", idx.join(","), kind.style());
        }
    }
    Some(s)
}
