//! Cycles in a graph of names: groups including groups, networks including networks,
//! services naming services. The intent merge reports them as errors; it lives apart from the
//! service graph so the intent model can use it without depending on the graph built from it.

use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, VecDeque};

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
