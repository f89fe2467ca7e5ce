//! The service graph of one deployment (petgraph): groups and networks as nodes, flows and
//! nesting as edges. Used for what graphs are for: pictures (Mermaid, DOT, JSON), and the
//! blast-radius query: which groups can be reached from a node, over which flows, directly or
//! by moving on from a reached group.

use crate::intent::Deployment;
use intentwall_contract::{Action, AddrSet};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;

/// A node: a group (leaf or composite) or a network.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Name in the intent.
    pub name: String,
    /// `group`, `composite` or `network`.
    pub kind: &'static str,
    /// `egress: restricted` (groups).
    pub restricted: bool,
    /// `sensitive: true` (groups).
    pub sensitive: bool,
}

/// An edge: a flow between two named ends, or nesting.
#[derive(Debug, Clone, Serialize)]
pub struct Edge {
    /// `flow` or `includes`.
    pub kind: &'static str,
    /// Flow name (flows).
    pub flow: Option<String>,
    /// Allow or deny (flows).
    pub action: Option<Action>,
    /// Service texts (flows).
    pub services: Vec<String>,
}

/// One deployment's service graph.
pub struct ServiceGraph {
    /// Deployment name.
    pub deployment: String,
    /// The graph.
    pub graph: DiGraph<Node, Edge>,
    index: BTreeMap<String, NodeIndex>,
}

/// A group reached by the blast-radius query.
#[derive(Debug, Clone, Serialize)]
pub struct Reach {
    /// Leaf group reached.
    pub group: String,
    /// Number of flows on the shortest path.
    pub hops: usize,
    /// The flows taken, in order.
    pub via: Vec<String>,
}

impl ServiceGraph {
    /// Build the graph of a deployment's effective intent.
    pub fn build(dep: &Deployment) -> Self {
        let mut g = DiGraph::new();
        let mut index = BTreeMap::new();
        for gr in dep.groups.values() {
            let i = g.add_node(Node {
                name: gr.name.clone(),
                kind: if gr.is_composite() {
                    "composite"
                } else {
                    "group"
                },
                restricted: gr.egress_restricted,
                sensitive: gr.sensitive,
            });
            index.insert(gr.name.clone(), i);
        }
        for n in dep.networks.values() {
            let i = g.add_node(Node {
                name: n.name.clone(),
                kind: "network",
                restricted: false,
                sensitive: false,
            });
            index.insert(n.name.clone(), i);
        }
        let includes = dep
            .groups
            .values()
            .flat_map(|gr| gr.includes.iter().map(move |m| (&gr.name, m)))
            .chain(
                dep.networks
                    .values()
                    .flat_map(|n| n.includes.iter().map(move |m| (&n.name, m))),
            );
        for (a, b) in includes {
            if let (Some(&x), Some(&y)) = (index.get(a), index.get(b)) {
                g.add_edge(
                    x,
                    y,
                    Edge {
                        kind: "includes",
                        flow: None,
                        action: None,
                        services: vec![],
                    },
                );
            }
        }
        for f in &dep.flows {
            if let (Some(&x), Some(&y)) = (index.get(&f.from), index.get(&f.to)) {
                g.add_edge(
                    x,
                    y,
                    Edge {
                        kind: "flow",
                        flow: Some(f.name.clone()),
                        action: Some(f.action),
                        services: f.services.iter().map(|s| s.text.clone()).collect(),
                    },
                );
            }
        }
        ServiceGraph {
            deployment: dep.name.clone(),
            graph: g,
            index,
        }
    }

    /// Every leaf group reachable from `start` over allow flows, with the shortest chain of
    /// flows. From a network, a flow counts if its source network holds every address of the
    /// start network in one family (any host of `start` can use it: `internet` reaches what
    /// is world-open, not what is open to `corp`); from a group,
    /// flows from the group or from a composite that includes it. Reached groups are followed
    /// onward (lateral movement). Deny flows are not edges; they are listed by `validate`.
    pub fn reachable_from(&self, dep: &Deployment, start: &str) -> Result<Vec<Reach>, String> {
        if !self.index.contains_key(start) {
            return Err(format!(
                "`{start}` is neither a group nor a network of deployment `{}`",
                self.deployment
            ));
        }
        let start_addrs: Option<AddrSet> = dep.networks.get(start).map(|n| n.addrs.clone());
        // leaf -> composite names that include it (transitively), for "from" matching
        let from_names = |leaf: &str| -> Vec<String> {
            dep.groups
                .keys()
                .filter(|g| dep.leaves(g).iter().any(|l| l == leaf))
                .cloned()
                .collect()
        };
        let allow_edges = || {
            self.graph
                .edge_references()
                .filter(|e| e.weight().kind == "flow" && e.weight().action == Some(Action::Allow))
        };
        let mut seen: BTreeMap<String, Reach> = BTreeMap::new();
        let mut queue: VecDeque<(String, Vec<String>)> = VecDeque::new();
        let mut first: Vec<(String, Vec<String>)> = Vec::new();
        match &start_addrs {
            Some(addrs) => {
                for e in allow_edges() {
                    let src = &self.graph[e.source()];
                    let overlaps = src.kind == "network"
                        && dep
                            .networks
                            .get(&src.name)
                            .is_some_and(|n| covers(&n.addrs, addrs));
                    if overlaps {
                        let flow = e.weight().flow.clone().unwrap_or_default();
                        for l in dep.leaves(&self.graph[e.target()].name) {
                            first.push((l, vec![flow.clone()]));
                        }
                    }
                }
            }
            None => {
                for l in dep.leaves(start) {
                    queue.push_back((l, vec![]));
                }
            }
        }
        for (l, via) in first {
            queue.push_back((l, via));
        }
        while let Some((leaf, via)) = queue.pop_front() {
            if seen.contains_key(&leaf) {
                continue;
            }
            if !via.is_empty() || start_addrs.is_none() {
                seen.insert(
                    leaf.clone(),
                    Reach {
                        group: leaf.clone(),
                        hops: via.len(),
                        via: via.clone(),
                    },
                );
            }
            for name in from_names(&leaf) {
                let Some(&i) = self.index.get(&name) else {
                    continue;
                };
                for e in self.graph.edges(i) {
                    if e.weight().kind != "flow" || e.weight().action != Some(Action::Allow) {
                        continue;
                    }
                    for l in dep.leaves(&self.graph[e.target()].name) {
                        if !seen.contains_key(&l) {
                            let mut v = via.clone();
                            v.push(e.weight().flow.clone().unwrap_or_default());
                            queue.push_back((l, v));
                        }
                    }
                }
            }
        }
        let mut out: Vec<Reach> = seen.into_values().filter(|r| r.hops > 0).collect();
        out.sort_by(|a, b| a.hops.cmp(&b.hops).then(a.group.cmp(&b.group)));
        Ok(out)
    }

    /// A Mermaid node id for a name. Injective, so `a-b`, `a_b` and `a.b` stay three nodes:
    /// letters and digits as they are, `_` as `__`, `-` as `_h`, `.` as `_d`, anything else
    /// as `_x<hex>_`. An id never holds `_n`, so `<deployment id>_<node id>` is injective too.
    fn id(name: &str) -> String {
        let mut out = String::from("n_");
        for c in name.chars() {
            match c {
                c if c.is_ascii_alphanumeric() => out.push(c),
                '_' => out.push_str("__"),
                '-' => out.push_str("_h"),
                '.' => out.push_str("_d"),
                c => out.push_str(&format!("_x{:x}_", c as u32)),
            }
        }
        out
    }

    /// Mermaid flowchart (one subgraph per deployment).
    pub fn to_mermaid(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "  subgraph {}[\"deployment {}\"]",
            Self::id(&self.deployment),
            mermaid_text(&self.deployment)
        );
        for i in self.graph.node_indices() {
            let n = &self.graph[i];
            let id = format!("{}_{}", Self::id(&self.deployment), Self::id(&n.name));
            let label = mermaid_text(&node_label(n));
            let shape = match n.kind {
                "network" => format!("{id}[(\"{label}\")]"),
                "composite" => format!("{id}[[\"{label}\"]]"),
                _ => format!("{id}[\"{label}\"]"),
            };
            let _ = writeln!(s, "    {shape}");
        }
        for e in self.graph.edge_references() {
            let a = format!(
                "{}_{}",
                Self::id(&self.deployment),
                Self::id(&self.graph[e.source()].name)
            );
            let b = format!(
                "{}_{}",
                Self::id(&self.deployment),
                Self::id(&self.graph[e.target()].name)
            );
            let w = e.weight();
            let services = mermaid_text(&w.services.join(", "));
            let line = match (w.kind, w.action) {
                ("includes", _) => format!("{a} -.- {b}"),
                (_, Some(Action::Deny)) => format!("{a} -.->|\"deny {services}\"| {b}"),
                _ => format!("{a} -->|\"{services}\"| {b}"),
            };
            let _ = writeln!(s, "    {line}");
        }
        let _ = writeln!(s, "  end");
        s
    }

    /// Graphviz DOT cluster body for this deployment.
    pub fn to_dot(&self) -> String {
        let mut s = String::new();
        let dep = &self.deployment;
        let _ = writeln!(s, "  subgraph {} {{", dot_str(&format!("cluster_{dep}")));
        let _ = writeln!(s, "    label={};", dot_str(&format!("deployment {dep}")));
        for i in self.graph.node_indices() {
            let n = &self.graph[i];
            let shape = match n.kind {
                "network" => "cylinder",
                "composite" => "folder",
                _ => "box",
            };
            let _ = writeln!(
                s,
                "    {} [label={}, shape={shape}{}];",
                dot_str(&format!("{dep}/{}", n.name)),
                dot_str(&node_label(n)),
                if n.sensitive { ", color=red" } else { "" }
            );
        }
        for e in self.graph.edge_references() {
            let w = e.weight();
            let services = w.services.join(", ");
            let style = match (w.kind, w.action) {
                ("includes", _) => "style=dotted, arrowhead=none".to_string(),
                (_, Some(Action::Deny)) => format!(
                    "label={}, color=red, arrowhead=tee",
                    dot_str(&format!("deny {services}"))
                ),
                _ => format!("label={}", dot_str(&services)),
            };
            let _ = writeln!(
                s,
                "    {} -> {} [{style}];",
                dot_str(&format!("{dep}/{}", self.graph[e.source()].name)),
                dot_str(&format!("{dep}/{}", self.graph[e.target()].name))
            );
        }
        let _ = writeln!(s, "  }}");
        s
    }

    /// Nodes and edges as JSON values.
    pub fn to_json(&self) -> serde_json::Value {
        let nodes: Vec<_> = self.graph.node_weights().collect();
        let edges: Vec<_> = self
            .graph
            .edge_references()
            .map(|e| {
                serde_json::json!({
                    "from": self.graph[e.source()].name,
                    "to": self.graph[e.target()].name,
                    "kind": e.weight().kind,
                    "flow": e.weight().flow,
                    "action": e.weight().action,
                    "services": e.weight().services,
                })
            })
            .collect();
        serde_json::json!({ "deployment": self.deployment, "nodes": nodes, "edges": edges })
    }
}

/// True when `src` contains all IPv4 or all IPv6 addresses of `start` (a non-empty family).
fn covers(src: &AddrSet, start: &AddrSet) -> bool {
    (!start.v4.is_empty() && start.only_v4().is_subset(src))
        || (!start.v6.is_empty() && start.only_v6().is_subset(src))
}

/// A DOT double-quoted string: `"` and `\\` escaped, line breaks as DOT's `\\n`, other control
/// characters dropped, so no name or label can end the string and add statements.
fn dot_str(x: &str) -> String {
    let mut out = String::from("\"");
    for c in x.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for inside a Mermaid `"..."` label: everything but letters, digits, space and
/// `-_.,/:()+` as a Mermaid entity code (`#34;`), so a label cannot close its quotes or
/// bracket, and no markup (`<script>`) reaches the renderer.
fn mermaid_text(x: &str) -> String {
    let mut out = String::new();
    for c in x.chars() {
        if c.is_ascii_alphanumeric() || " -_.,/:()+".contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("#{};", c as u32));
        }
    }
    out
}

fn node_label(n: &Node) -> String {
    let mut l = n.name.clone();
    if n.restricted {
        l.push_str(" (egress restricted)");
    }
    if n.sensitive {
        l.push_str(" (sensitive)");
    }
    l
}

/// Every cycle of a name graph (nesting of groups, networks or services), one per strongly
/// connected component (petgraph's Tarjan), each as a path from the component's smallest
/// name back to it, e.g. `[a, b, a]`, taking the shortest way round. Deterministic: the
/// same for any definition order.
pub fn find_cycles(edges: &BTreeMap<String, Vec<String>>) -> Vec<Vec<String>> {
    let mut g: DiGraph<&str, ()> = DiGraph::new();
    let mut idx: BTreeMap<&str, NodeIndex> = BTreeMap::new();
    for (a, bs) in edges {
        let x = *idx.entry(a).or_insert_with(|| g.add_node(a));
        for b in bs {
            let y = *idx.entry(b).or_insert_with(|| g.add_node(b));
            g.update_edge(x, y, ());
        }
    }
    let mut out = Vec::new();
    for scc in petgraph::algo::tarjan_scc(&g) {
        let start = *scc.iter().min_by_key(|i| g[**i]).expect("non-empty");
        if scc.len() == 1 && !g.contains_edge(start, start) {
            continue;
        }
        let members: std::collections::BTreeSet<NodeIndex> = scc.iter().copied().collect();
        // breadth-first inside the component, neighbours in name order, until back at start
        let mut parent: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(n) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = g.neighbors(n).filter(|m| members.contains(m)).collect();
            next.sort_by_key(|m| g[*m]);
            for m in next {
                if m == start {
                    last = Some(n);
                    break 'search;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = parent.entry(m) {
                    e.insert(n);
                    queue.push_back(m);
                }
            }
        }
        let mut path = vec![start];
        let mut cur = last.expect("a strongly connected component leads back to its start");
        while cur != start {
            path.push(cur);
            cur = parent[&cur];
        }
        path.push(start);
        path.reverse();
        out.push(path.into_iter().map(|i| g[i].to_string()).collect());
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_mermaid_text_cannot_break_out() {
        let hostile = "a\"] ; evil [label=\"x\\\n<script>|`";
        let d = dot_str(hostile);
        // inside: every quote escaped, no raw line break
        let inner = &d[1..d.len() - 1];
        assert!(!inner.contains('\n'));
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                chars.next();
            } else {
                assert_ne!(c, '"', "{d}");
            }
        }
        let m = mermaid_text(hostile);
        assert!(
            m.chars()
                .all(|c| c.is_ascii_alphanumeric() || " -_.,/:()+#;".contains(c)),
            "{m}"
        );
    }

    #[test]
    fn mermaid_ids_are_injective() {
        let names = ["a-b", "a_b", "a.b", "a__b", "a_hb", "ab", "a_x2d_b"];
        let ids: std::collections::BTreeSet<String> =
            names.iter().map(|n| ServiceGraph::id(n)).collect();
        assert_eq!(ids.len(), names.len(), "{ids:?}");
    }

    fn edges(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (a, b) in pairs {
            m.entry(a.to_string()).or_default().push(b.to_string());
        }
        m
    }

    #[test]
    fn cycles_are_named_from_the_smallest_member() {
        let c = find_cycles(&edges(&[("b", "c"), ("c", "a"), ("a", "b"), ("x", "a")]));
        assert_eq!(c, vec![vec!["a", "b", "c", "a"]]);
        assert_eq!(find_cycles(&edges(&[("a", "a")])), vec![vec!["a", "a"]]);
        assert!(find_cycles(&edges(&[("a", "b"), ("b", "c")])).is_empty());
        // two separate cycles, each reported once
        let c = find_cycles(&edges(&[("a", "b"), ("b", "a"), ("x", "y"), ("y", "x")]));
        assert_eq!(c.len(), 2);
    }
}
