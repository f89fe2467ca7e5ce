//! The effective intent: what the YAML says once global files and a deployment's region
//! overrides are merged and every name is checked. One [`Deployment`] per deployment.
//!
//! Names stay symbolic here (groups, networks, services by name, with their source
//! locations) because the graph, guardrails and reports speak in the user's names; the
//! service graph (`crate::graph`) is built from this model, and a deployment's view of it is
//! resolved, per cloud, into the contract's `DeploymentIntent`, the only thing translators
//! and the oracle see.

use intentwall_contract::{Action, AddrSet, Endpoint, ProviderKind, Traffic};
use serde::Serialize;
use std::collections::BTreeMap;

pub use crate::source::Loc;

/// The whole intent repository, resolved per deployment.
#[derive(Debug, Clone, Serialize)]
pub struct Intent {
    /// sha256 (hex) over every intent file's path and bytes, in path order: what a plan file
    /// records to tell that the intents changed.
    pub digest: String,
    /// Effective intent per deployment.
    pub deployments: BTreeMap<String, Deployment>,
}

/// Where a deployment lives on one cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// The placement block's keys and values as text (`account`, `region`, `vpc`, `nsg`,
    /// `project`, `network`, `load_balancer_probes`, ...); each validated entry of `quotas:`
    /// as `quotas.<key>` (see `intentwall_contract::quota`).
    pub settings: BTreeMap<String, String>,
    /// The deployment's address space on this cloud (`cidr`/`vnet_cidr`, plus `cidr6` if given).
    pub space: AddrSet,
    /// Where the block is written.
    pub loc: Loc,
}

/// A named address set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    /// Name.
    pub name: String,
    /// Resolved addresses (nesting expanded).
    pub addrs: AddrSet,
    /// Networks it names (for the graph), in order.
    pub includes: Vec<String>,
    /// Where it is defined.
    pub loc: Loc,
}

/// A security-intent group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Groups it includes; non-empty = composite (no cloud object of its own).
    pub includes: Vec<String>,
    /// `egress: restricted`.
    pub egress_restricted: bool,
    /// `sensitive: true`.
    pub sensitive: bool,
    /// This deployment's `addresses` for every cloud (`{us: [...]}`).
    pub addresses: Option<AddrSet>,
    /// This deployment's `addresses` per cloud (`{<deployment>: {<cloud>: [...]}}`); wins over `addresses`.
    pub addresses_by_cloud: BTreeMap<ProviderKind, AddrSet>,
    /// Per cloud, the settings its plugin lets a group give (`service_account` on one cloud).
    pub cloud_settings: BTreeMap<ProviderKind, BTreeMap<String, String>>,
    /// Where it is defined.
    pub loc: Loc,
}

impl Group {
    /// Where members live on one cloud, if declared.
    pub fn addresses_for(&self, cloud: ProviderKind) -> Option<&AddrSet> {
        self.addresses_by_cloud
            .get(&cloud)
            .or(self.addresses.as_ref())
    }
    /// True for a group with `includes`.
    pub fn is_composite(&self) -> bool {
        !self.includes.is_empty()
    }
}

/// One service token as written, and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceRef {
    /// As written: a service name (`https`) or a token (`tcp/443`).
    pub text: String,
    /// Resolved packet sets.
    pub traffic: Vec<Traffic>,
}

/// A guardrail exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exception {
    /// Why.
    pub reason: String,
    /// Last day it is valid (inclusive), `YYYY-MM-DD`.
    pub expires: time::Date,
    /// Where `expires` is written, for the finding an expired exception raises.
    #[serde(skip)]
    pub at: Loc,
    /// `expires` is before the load's today: the exception no longer waives anything, and a
    /// flow that needs it is a guardrail finding (exit 3), not a load error, so `validate`
    /// and `plan` say which flow and since when instead of refusing to read the intents.
    #[serde(skip)]
    pub expired: bool,
}

/// A flow, as effective in one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// Unique name.
    pub name: String,
    /// Allow or deny.
    pub action: Action,
    /// Source: a group or network name.
    pub from: String,
    /// Destination: a group or network name.
    pub to: String,
    /// Services.
    pub services: Vec<ServiceRef>,
    /// Cannot be dropped or overridden by a region.
    pub guardrail: bool,
    /// Guardrail exception, if any (possibly expired: see [`Exception::expired`]).
    pub exception: Option<Exception>,
    /// Where it is defined.
    pub loc: Loc,
}

impl Flow {
    /// All packet sets of the flow.
    pub fn traffic(&self) -> Vec<Traffic> {
        self.services
            .iter()
            .flat_map(|s| s.traffic.iter().cloned())
            .collect()
    }
}

/// A security unit test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expect {
    /// Source group or network.
    pub from: String,
    /// Destination group or network.
    pub to: String,
    /// One service (name or token); a name must resolve to exactly one token.
    pub service: ServiceRef,
    /// Expected verdict.
    pub verdict: Action,
    /// Where it is written.
    pub loc: Loc,
}

/// The effective intent of one deployment (global + its region overrides).
#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    /// Name.
    pub name: String,
    /// Placement per cloud; a deployment uses one to three clouds.
    pub clouds: BTreeMap<ProviderKind, Placement>,
    /// Named networks (resolved).
    pub networks: BTreeMap<String, Network>,
    /// Named services (resolved).
    pub services: BTreeMap<String, Vec<Traffic>>,
    /// Groups, leaf and composite.
    pub groups: BTreeMap<String, Group>,
    /// Flows in effect here, in intent order.
    pub flows: Vec<Flow>,
    /// Expectations checked here.
    pub expects: Vec<Expect>,
}

impl Deployment {
    /// Leaf groups a group name stands for (itself if a leaf). Unknown names give nothing.
    pub fn leaves(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![name.to_string()];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(n) = stack.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Some(g) = self.groups.get(&n) {
                if g.is_composite() {
                    stack.extend(g.includes.iter().rev().cloned());
                } else {
                    out.push(n);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The endpoints a name stands for on one cloud: leaf groups, or a network.
    pub fn endpoints(&self, name: &str) -> Vec<Endpoint> {
        if let Some(n) = self.networks.get(name) {
            return vec![Endpoint::Network {
                name: n.name.clone(),
                addrs: n.addrs.clone(),
            }];
        }
        self.leaves(name).into_iter().map(Endpoint::Group).collect()
    }
}
