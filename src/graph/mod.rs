//! The service graph (petgraph): the loaded intent as groups and networks (nodes) joined by
//! flows and nesting (edges). It is the one structure everything after loading reads: each
//! deployment's [`View`] of it is drawn (Mermaid, DOT, JSON), searched for the blast radius
//! of a node ([`View::reachable_from`]) and resolved, per cloud, into the contract's
//! [`DeploymentIntent`] that the provider plugins translate ([`View::resolve`]).
//!
//! Nodes and edges borrow the intent model ([`Group`], [`Network`], [`Flow`]) instead of
//! copying it, so building the graph of a whole estate costs an index, not a second intent.
//! Every deployment has nodes of its own: the same global group is a different node in `us`
//! and in `eu`, because its addresses (and a region's overrides) are per deployment. A
//! deployment's nodes and edges are added together and no edge crosses deployments, so its
//! view is a pair of index ranges and walking it never touches the rest of the estate.

mod reach;
mod render;
mod resolve;
pub mod svg;

pub use reach::Reach;
pub use resolve::resolve;

use crate::intent::{Deployment, Flow, Group, Intent, Network, Placement};
use intentwall_contract::{Action, ProviderKind};
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use serde::ser::SerializeStruct;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

/// A node: a group (leaf or composite) or a network of one deployment.
#[derive(Debug, Clone, Copy)]
pub enum Node<'i> {
    /// A group; composite when it includes other groups.
    Group(&'i Group),
    /// A named address set.
    Network(&'i Network),
}

impl<'i> Node<'i> {
    /// Name in the intent.
    pub fn name(&self) -> &'i str {
        match self {
            Node::Group(g) => &g.name,
            Node::Network(n) => &n.name,
        }
    }

    /// `group`, `composite` or `network`.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Group(g) if g.is_composite() => "composite",
            Node::Group(_) => "group",
            Node::Network(_) => "network",
        }
    }

    /// `egress: restricted` (groups).
    pub fn restricted(&self) -> bool {
        matches!(self, Node::Group(g) if g.egress_restricted)
    }

    /// `sensitive: true` (groups).
    pub fn sensitive(&self) -> bool {
        matches!(self, Node::Group(g) if g.sensitive)
    }
}

/// The JSON picture's node: name, kind and the two flags a reader of the picture needs.
impl Serialize for Node<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Node", 4)?;
        st.serialize_field("name", self.name())?;
        st.serialize_field("kind", self.kind())?;
        st.serialize_field("restricted", &self.restricted())?;
        st.serialize_field("sensitive", &self.sensitive())?;
        st.end()
    }
}

/// An edge: nesting (a composite group includes a group, a network includes a network), or
/// a flow from its source to its destination, as written (composites not yet expanded).
#[derive(Debug, Clone, Copy)]
pub enum Edge<'i> {
    /// The source includes the target.
    Includes,
    /// A flow in effect in the deployment.
    Flow(&'i Flow),
}

impl<'i> Edge<'i> {
    /// `flow` or `includes`.
    pub fn kind(&self) -> &'static str {
        match self {
            Edge::Includes => "includes",
            Edge::Flow(_) => "flow",
        }
    }

    /// The flow, for flow edges.
    pub fn flow(&self) -> Option<&'i Flow> {
        match self {
            Edge::Includes => None,
            Edge::Flow(f) => Some(f),
        }
    }

    /// Allow or deny (flows).
    pub fn action(&self) -> Option<Action> {
        self.flow().map(|f| f.action)
    }

    /// Service texts as written (flows; none for nesting).
    pub fn services(&self) -> Vec<String> {
        self.flow()
            .map(|f| f.services.iter().map(|s| s.text.clone()).collect())
            .unwrap_or_default()
    }
}

/// Where one deployment lives in the graph, and what the graph needs of it besides nodes and
/// edges: its name and its placements.
struct Part<'i> {
    name: &'i str,
    clouds: &'i BTreeMap<ProviderKind, Placement>,
    nodes: Range<usize>,
    edges: Range<usize>,
    index: BTreeMap<&'i str, NodeIndex>,
}

/// The service graph of one or more deployments.
pub struct ServiceGraph<'i> {
    graph: DiGraph<Node<'i>, Edge<'i>>,
    parts: BTreeMap<&'i str, Part<'i>>,
}

impl<'i> ServiceGraph<'i> {
    /// The graph of every deployment of the intent.
    pub fn of(intent: &'i Intent) -> Self {
        Self::build(intent.deployments.values())
    }

    /// The graph of some deployments. Per deployment: groups in name order, then networks
    /// in name order; nesting edges (groups', then networks', each in written order), then
    /// flows in intent order. Pictures list nodes and edges in this order, and resolution
    /// keeps the intent order of flows. A name a nesting or flow does not know in its
    /// deployment gives no edge (the loader has reported it already).
    pub fn build(deps: impl IntoIterator<Item = &'i Deployment>) -> Self {
        let mut g = DiGraph::new();
        let mut parts = BTreeMap::new();
        for dep in deps {
            let first_node = g.node_count();
            let first_edge = g.edge_count();
            let mut index = BTreeMap::new();
            for gr in dep.groups.values() {
                index.insert(gr.name.as_str(), g.add_node(Node::Group(gr)));
            }
            for n in dep.networks.values() {
                index.insert(n.name.as_str(), g.add_node(Node::Network(n)));
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
                if let (Some(&x), Some(&y)) = (index.get(a.as_str()), index.get(b.as_str())) {
                    g.add_edge(x, y, Edge::Includes);
                }
            }
            for f in &dep.flows {
                if let (Some(&x), Some(&y)) = (index.get(f.from.as_str()), index.get(f.to.as_str()))
                {
                    g.add_edge(x, y, Edge::Flow(f));
                }
            }
            parts.insert(
                dep.name.as_str(),
                Part {
                    name: &dep.name,
                    clouds: &dep.clouds,
                    nodes: first_node..g.node_count(),
                    edges: first_edge..g.edge_count(),
                    index,
                },
            );
        }
        ServiceGraph { graph: g, parts }
    }

    /// The whole graph, every deployment's nodes and edges.
    pub fn graph(&self) -> &DiGraph<Node<'i>, Edge<'i>> {
        &self.graph
    }

    /// One deployment's view, if the graph holds that deployment.
    pub fn view(&self, deployment: &str) -> Option<View<'_, 'i>> {
        self.parts.get(deployment).map(|part| View {
            graph: &self.graph,
            part,
        })
    }

    /// Every deployment's view, in name order.
    pub fn views(&self) -> impl Iterator<Item = View<'_, 'i>> + '_ {
        self.parts.values().map(|part| View {
            graph: &self.graph,
            part,
        })
    }
}

/// One deployment's part of the service graph: its groups and networks, the flows in effect
/// there (global and its region's) and its placements.
#[derive(Clone, Copy)]
pub struct View<'g, 'i> {
    graph: &'g DiGraph<Node<'i>, Edge<'i>>,
    part: &'g Part<'i>,
}

impl<'g, 'i> View<'g, 'i> {
    /// The deployment's name.
    pub fn deployment(&self) -> &'i str {
        self.part.name
    }

    /// The node of a group or network name.
    pub fn node(&self, name: &str) -> Option<NodeIndex> {
        self.part.index.get(name).copied()
    }

    /// The nodes, in graph order (groups by name, then networks by name).
    pub fn nodes(&self) -> impl Iterator<Item = (NodeIndex, &'g Node<'i>)> + 'g {
        let g = self.graph;
        self.part.nodes.clone().map(move |i| {
            let i = NodeIndex::new(i);
            (i, &g[i])
        })
    }

    /// The edges as (source, target, edge), in graph order (nesting, then flows).
    pub fn edges(&self) -> impl Iterator<Item = (NodeIndex, NodeIndex, &'g Edge<'i>)> + 'g {
        let g = self.graph;
        self.part.edges.clone().filter_map(move |i| {
            let i = EdgeIndex::new(i);
            let (a, b) = g.edge_endpoints(i)?;
            Some((a, b, &g[i]))
        })
    }

    /// Leaf groups a node stands for, by name, sorted: itself for a leaf group, the leaves
    /// reached over nesting edges for a composite, none for a network.
    pub fn leaves(&self, start: NodeIndex) -> Vec<&'i str> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            match self.graph[i] {
                Node::Group(g) if g.is_composite() => stack.extend(
                    self.graph
                        .edges(i)
                        .filter(|e| matches!(e.weight(), Edge::Includes))
                        .map(|e| petgraph::visit::EdgeRef::target(&e)),
                ),
                Node::Group(g) => out.push(g.name.as_str()),
                Node::Network(_) => {}
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}
