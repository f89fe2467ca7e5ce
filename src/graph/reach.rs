//! The blast-radius query: which groups can be reached from a node, over which flows,
//! directly or by moving on from a reached group.

use super::{Edge, Node, View};
use intentwall_contract::{Action, AddrSet};
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

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

fn is_allow(e: &Edge) -> bool {
    matches!(e, Edge::Flow(f) if f.action == Action::Allow)
}

fn flow_name(e: &Edge) -> String {
    e.flow().map(|f| f.name.clone()).unwrap_or_default()
}

impl View<'_, '_> {
    /// Every leaf group reachable from `start` over allow flows, with the shortest chain of
    /// flows. From a network, a flow counts if its source network holds every address of the
    /// start network in one family (any host of `start` can use it: `internet` reaches what
    /// is world-open, not what is open to `corp`); from a group,
    /// flows from the group or from a composite that includes it. Reached groups are followed
    /// onward (lateral movement). Deny flows are not edges; they are listed by `validate`.
    pub fn reachable_from(&self, start: &str) -> Result<Vec<Reach>, String> {
        let Some(start_node) = self.node(start) else {
            return Err(format!(
                "`{start}` is neither a group nor a network of deployment `{}`",
                self.deployment()
            ));
        };
        let start_addrs: Option<&AddrSet> = match self.graph[start_node] {
            Node::Network(n) => Some(&n.addrs),
            Node::Group(_) => None,
        };
        // leaf -> the groups whose flows it takes part in: itself and the composites that
        // include it (transitively), in name order
        let from_nodes = |leaf: &str| -> Vec<NodeIndex> {
            self.nodes()
                .filter(|(i, n)| matches!(n, Node::Group(_)) && self.leaves(*i).contains(&leaf))
                .map(|(i, _)| i)
                .collect()
        };
        let mut seen: BTreeMap<String, Reach> = BTreeMap::new();
        let mut queue: VecDeque<(String, Vec<String>)> = VecDeque::new();
        let mut first: Vec<(String, Vec<String>)> = Vec::new();
        match start_addrs {
            Some(addrs) => {
                for (src, dst, e) in self.edges().filter(|(_, _, e)| is_allow(e)) {
                    let overlaps =
                        matches!(self.graph[src], Node::Network(n) if covers(&n.addrs, addrs));
                    if overlaps {
                        let flow = flow_name(e);
                        for l in self.leaves(dst) {
                            first.push((l.to_string(), vec![flow.clone()]));
                        }
                    }
                }
            }
            None => {
                for l in self.leaves(start_node) {
                    queue.push_back((l.to_string(), vec![]));
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
            for i in from_nodes(&leaf) {
                for e in self.graph.edges(i) {
                    if !is_allow(e.weight()) {
                        continue;
                    }
                    for l in self.leaves(e.target()) {
                        if !seen.contains_key(l) {
                            let mut v = via.clone();
                            v.push(flow_name(e.weight()));
                            queue.push_back((l.to_string(), v));
                        }
                    }
                }
            }
        }
        let mut out: Vec<Reach> = seen.into_values().filter(|r| r.hops > 0).collect();
        out.sort_by(|a, b| a.hops.cmp(&b.hops).then(a.group.cmp(&b.group)));
        Ok(out)
    }
}

/// True when `src` contains all IPv4 or all IPv6 addresses of `start` (a non-empty family).
fn covers(src: &AddrSet, start: &AddrSet) -> bool {
    (!start.v4.is_empty() && start.only_v4().is_subset(src))
        || (!start.v6.is_empty() && start.only_v6().is_subset(src))
}
