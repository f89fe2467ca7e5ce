//! Helpers shared by the integration tests: small intents and probes.
#![allow(dead_code, unused_imports)] // each test binary uses a subset

pub use intentwall_contract::testkit::ext as outside;
pub use intentwall_contract::testkit::*;

use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Endpoint, FlowIntent, GroupIntent, Host, Packet, Probe,
    ProviderKind, Traffic,
};
use std::collections::BTreeMap;

pub fn intent(groups: Vec<GroupIntent>, flows: Vec<FlowIntent>) -> DeploymentIntent {
    let mut settings = BTreeMap::new();
    settings.insert("project".into(), "acme-prod-us".into());
    settings.insert("network".into(), "prod-us".into());
    settings.insert("cidr".into(), "10.30.0.0/16".into());
    settings.insert("cidr6".into(), "fd00:30::/48".into());
    DeploymentIntent {
        deployment: "us".into(),
        provider: ProviderKind::Gcp,
        settings,
        space: addrs(&["10.30.0.0/16", "fd00:30::/48"]),
        groups: groups.into_iter().map(|g| (g.name.clone(), g)).collect(),
        flows,
    }
}

/// The project's network URL, as the API prints it.
pub const NET: &str =
    "https://www.googleapis.com/compute/v1/projects/acme-prod-us/global/networks/prod-us";
