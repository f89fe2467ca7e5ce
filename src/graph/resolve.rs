//! From a deployment's view to the providers' input: the contract's [`DeploymentIntent`] of
//! one cloud, with composite groups expanded to leaf groups over nesting edges and networks
//! to their addresses, so a provider never needs the intent model or the graph.

use super::{Edge, Node, ServiceGraph, View};
use crate::intent::Deployment;
use intentwall_contract::{DeploymentIntent, Endpoint, FlowIntent, GroupIntent, ProviderKind};
use petgraph::graph::NodeIndex;

/// The resolved intent of one deployment on `cloud`, through a graph of that deployment
/// alone: for callers that handle a single target. Callers going over many targets build
/// [`ServiceGraph::of`] once and resolve each [`View`].
pub fn resolve(dep: &Deployment, cloud: ProviderKind) -> Option<DeploymentIntent> {
    ServiceGraph::build([dep]).view(&dep.name)?.resolve(cloud)
}

impl View<'_, '_> {
    /// The endpoints a node stands for: its leaf groups, or the network with its addresses.
    pub fn endpoints(&self, i: NodeIndex) -> Vec<Endpoint> {
        match self.graph[i] {
            Node::Network(n) => vec![Endpoint::Network {
                name: n.name.clone(),
                addrs: n.addrs.clone(),
            }],
            Node::Group(_) => self
                .leaves(i)
                .into_iter()
                .map(|l| Endpoint::Group(l.to_string()))
                .collect(),
        }
    }

    /// The resolved intent of this deployment on `cloud`, or `None` if the deployment does
    /// not use that cloud: its leaf groups with this cloud's addresses, and one flow per
    /// pair of leaf endpoints of every flow edge, in intent order.
    pub fn resolve(&self, cloud: ProviderKind) -> Option<DeploymentIntent> {
        let place = self.part.clouds.get(&cloud)?;
        let groups = self
            .nodes()
            .filter_map(|(_, n)| match n {
                Node::Group(g) if !g.is_composite() => Some(g),
                _ => None,
            })
            .map(|g| {
                (
                    g.name.clone(),
                    GroupIntent {
                        name: g.name.clone(),
                        description: g.description.clone(),
                        egress_restricted: g.egress_restricted,
                        sensitive: g.sensitive,
                        addresses: g.addresses_for(cloud).cloned(),
                        service_account: g
                            .cloud_settings
                            .get(&cloud)
                            .and_then(|s| s.get("service_account"))
                            .cloned(),
                    },
                )
            })
            .collect();
        let mut flows = Vec::new();
        for (src, dst, e) in self.edges() {
            let Edge::Flow(f) = e else {
                continue;
            };
            let traffic = f.traffic();
            let tos = self.endpoints(dst);
            for from in self.endpoints(src) {
                for to in &tos {
                    flows.push(FlowIntent {
                        name: f.name.clone(),
                        action: f.action,
                        from: from.clone(),
                        to: to.clone(),
                        traffic: traffic.clone(),
                        guardrail: f.guardrail,
                    });
                }
            }
        }
        Some(DeploymentIntent {
            deployment: self.deployment().to_string(),
            provider: cloud,
            settings: place.settings.clone(),
            space: place.space.clone(),
            groups,
            flows,
        })
    }
}
