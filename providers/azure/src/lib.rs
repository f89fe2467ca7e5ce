//! # intentwall-azure
//!
//! Azure Network Security Groups with Application Security Groups: one NSG per deployment
//! (settings `nsg`), one ASG `iw-<group>` per leaf group.
//!
//! - [`model`]: one security rule in canonical form; both JSON shapes (az CLI flattened,
//!   ARM `properties`; python-SDK snake_case keys are accepted too);
//! - [`snapshot`]: `az network nsg list` (bare list) and ARM list (`{"value": [...]}`)
//!   documents, read and written back in the shape read;
//! - [`translate`]: intent -> managed rules with stable priorities and findings;
//! - [`lower`]: rules -> evaluation rules with Azure's semantics (first match by priority,
//!   default rules 65000/65001/65500).
//!
//! Objects: container `nsg` (key `nsg:<name>`, the NSG named by settings `nsg`; any other
//! NSG is `foreign`, keyed `nsg:<name>` or `nsg:<resource group>/<name>`, its rules
//! `<nsg key>/rule:<name>`), rules `nsg-rule` (key `rule:<name>`), managed when they are
//! in our NSG and the name starts `iw-` (the prefix is reserved there; the description
//! `intentwall:<flow>` only names the flow). `defaultSecurityRules` are not objects; they
//! stay in the container's raw and are written back unchanged.
//!
//! Decisions where the documentation is silent are listed in this crate's README.md.
#![deny(missing_docs)]

pub mod flowlog;
#[cfg(feature = "live")]
pub mod live;
pub mod lower;
pub mod model;
pub mod permissions;
pub mod placement;
pub mod snapshot;
pub mod translate;

use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Endpoint, EvalPolicy, FlowIntent, InPlace, NativeObject,
    NativeState, Provider, ProviderKind, SnapshotError, SnapshotFormat, Traffic, Translation,
};

/// Object kind of an NSG.
pub const KIND_NSG: &str = "nsg";
/// Object kind of a security rule.
pub const KIND_RULE: &str = "nsg-rule";
/// Description prefix naming a managed rule's flow (one for every cloud).
pub use intentwall_contract::MARKER;
/// Name prefix of everything intentwall owns in the NSG it manages (rules) and of its ASGs.
pub const OWNED_PREFIX: &str = "iw-";
/// The Azure infrastructure address behind the `AzureLoadBalancer` tag.
pub const LB_PROBE_IP: &str = "168.63.129.16/32";
/// Name of the platform allowance flow.
pub const LB_ALLOWANCE: &str = "azure-load-balancer-probes";

/// The Azure provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct AzureProvider;

/// `Allow` / `Deny`.
pub fn access_str(a: Action) -> &'static str {
    match a {
        Action::Allow => "Allow",
        Action::Deny => "Deny",
    }
}

/// Key of an NSG object.
pub fn nsg_key(name: &str) -> String {
    format!("nsg:{name}")
}

/// Key of a rule of our NSG.
pub fn rule_key(name: &str) -> String {
    format!("rule:{name}")
}

/// The target NSG's name (settings `nsg`, else `nsg-<deployment>`).
pub fn nsg_name(intent: &DeploymentIntent) -> String {
    intent
        .setting("nsg")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("nsg-{}", intent.deployment))
}

/// `load_balancer_probes: deny` (any case) in the placement block.
pub fn lb_probes_denied(intent: &DeploymentIntent) -> bool {
    intent
        .setting("load_balancer_probes")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("deny"))
}

/// The ARM id of a group's ASG.
pub fn asg_id(intent: &DeploymentIntent, group: &str) -> String {
    let sub = intent
        .setting("subscription")
        .unwrap_or("unknown-subscription");
    let rg = intent
        .setting("resource_group")
        .unwrap_or("unknown-resource-group");
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/applicationSecurityGroups/iw-{group}")
}

/// What the `VirtualNetwork` tag is modelled as: the deployment's space, or else the
/// `vnet_cidr` / `vnet_cidr6` settings.
pub fn vnet_space(intent: &DeploymentIntent) -> AddrSet {
    if !intent.space.is_empty() {
        return intent.space.clone();
    }
    let nets: Vec<ipnet::IpNet> = ["vnet_cidr", "vnet_cidr6"]
        .iter()
        .filter_map(|k| intent.setting(k))
        .flat_map(|v| v.split(','))
        .filter_map(|t| intentwall_contract::net::parse_cidr_lenient(t).ok())
        .map(|n| n.trunc())
        .collect();
    AddrSet::from_nets(&nets)
}

impl SnapshotFormat for AzureProvider {
    fn parse_snapshot(
        &self,
        text: &str,
        intent: &DeploymentIntent,
    ) -> Result<NativeState, SnapshotError> {
        snapshot::parse(text, intent)
    }

    fn render_snapshot(&self, state: &NativeState) -> String {
        snapshot::render(state)
    }
}

impl Provider for AzureProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Azure
    }

    fn translate(&self, intent: &DeploymentIntent, observed: &NativeState) -> Translation {
        translate::translate(intent, observed)
    }

    fn lower(&self, state: &NativeState, intent: &DeploymentIntent) -> EvalPolicy {
        lower::lower(state, intent)
    }

    fn platform_allowances(&self, intent: &DeploymentIntent) -> Vec<FlowIntent> {
        if lb_probes_denied(intent) {
            return Vec::new();
        }
        let lb = AddrSet::from_net(LB_PROBE_IP.parse().expect("constant"));
        intent
            .groups
            .keys()
            .map(|g| FlowIntent {
                name: LB_ALLOWANCE.into(),
                action: Action::Allow,
                from: Endpoint::Network {
                    name: "AzureLoadBalancer".into(),
                    addrs: lb.clone(),
                },
                to: Endpoint::Group(g.clone()),
                traffic: vec![Traffic::any()],
                guardrail: false,
            })
            .collect()
    }

    fn in_place(&self, _before: &NativeObject, _after: &NativeObject) -> InPlace {
        // PUT by name is create-or-replace of that one rule
        InPlace::Update
    }
}
