//! The resolved intent of one deployment on one cloud: what translators take as input and
//! what the simulator's oracle judges against.
//!
//! Everything symbolic is already resolved here: composite groups are expanded to leaf groups,
//! network names to address sets, service names to [`Traffic`] sets, region overrides merged.
//! A provider never needs the YAML model.

use crate::net::AddrSet;
use crate::traffic::Traffic;
use crate::ProviderKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Permit matching packets.
    Allow,
    /// Drop matching packets.
    Deny,
}

/// One end of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// The members of a leaf group in this deployment and cloud.
    Group(String),
    /// A named network, resolved to its addresses.
    Network {
        /// The network's name in the intent.
        name: String,
        /// Its addresses (IPv4 and IPv6).
        addrs: AddrSet,
    },
}

impl Endpoint {
    /// The group name, if this end is a group.
    pub fn group(&self) -> Option<&str> {
        match self {
            Endpoint::Group(g) => Some(g),
            Endpoint::Network { .. } => None,
        }
    }
    /// The name as written in the intent.
    pub fn name(&self) -> &str {
        match self {
            Endpoint::Group(g) => g,
            Endpoint::Network { name, .. } => name,
        }
    }
}

/// A leaf security-intent group as it exists in one deployment and cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupIntent {
    /// Group name (without the `iw-` prefix).
    pub name: String,
    /// Free text from the intent.
    pub description: Option<String>,
    /// Only flows declared from this group may leave it.
    pub egress_restricted: bool,
    /// Any ingress from the whole internet is a guardrail violation.
    pub sensitive: bool,
    /// Where members live in this deployment and cloud, if declared. Declared addresses are
    /// exclusive: no workload outside the group uses them.
    pub addresses: Option<AddrSet>,
    /// GCP: identify members by service account instead of the `iw-<group>` tag.
    pub service_account: Option<String>,
}

/// One flow between two leaf endpoints (a flow naming a composite group is expanded to one
/// `FlowIntent` per leaf, all carrying the flow's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowIntent {
    /// The flow's name in the intent (several expanded flows may share it).
    pub name: String,
    /// Allow or deny.
    pub action: Action,
    /// Source end.
    pub from: Endpoint,
    /// Destination end.
    pub to: Endpoint,
    /// The packets it covers (union).
    pub traffic: Vec<Traffic>,
    /// A guardrail flow cannot be dropped by a region override.
    pub guardrail: bool,
}

/// The effective intent of one deployment on one cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentIntent {
    /// Deployment name (`us`, `eu`, ...).
    pub deployment: String,
    /// The cloud this intent is for.
    pub provider: ProviderKind,
    /// The cloud's placement block as written (`account`, `region`, `vpc`, `nsg`, `project`,
    /// `network`, `load_balancer_probes`, ...), values as text; configured cloud limits as
    /// `quotas.<key>` (read them with [`crate::quota::quota`]).
    pub settings: BTreeMap<String, String>,
    /// The address space of this deployment on this cloud (VPC / VNet / network CIDRs, v4 and
    /// optional v6): where members of groups without `addresses` live.
    pub space: AddrSet,
    /// Leaf groups by name.
    pub groups: BTreeMap<String, GroupIntent>,
    /// Flows, expanded to leaf endpoints, in intent order.
    pub flows: Vec<FlowIntent>,
}

impl DeploymentIntent {
    /// Union of all declared group addresses.
    pub fn declared_addresses(&self) -> AddrSet {
        AddrSet::union_all(self.groups.values().filter_map(|g| g.addresses.as_ref()))
    }

    /// Where members of `group` can have their addresses: the declared addresses, or else
    /// the deployment's space minus every other group's declared addresses.
    pub fn member_space(&self, group: &str) -> AddrSet {
        match self.groups.get(group).and_then(|g| g.addresses.clone()) {
            Some(a) => a,
            None => self.space.subtract(&self.declared_addresses()),
        }
    }

    /// Where hosts that belong to no group can be: anywhere but declared group addresses.
    pub fn external_space(&self) -> AddrSet {
        AddrSet::any().subtract(&self.declared_addresses())
    }

    /// A setting of the placement block.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }
}
