//! Shared test helpers: small intents built by hand.
#![allow(dead_code, unused_imports)] // each test binary uses a subset

pub use intentwall_contract::testkit::addrs as set;
pub use intentwall_contract::testkit::*;

use intentwall_contract::{
    Action, AddrSet, DeploymentIntent, Endpoint, FlowIntent, GroupIntent, ProviderKind, Traffic,
};
use std::collections::BTreeMap;

pub fn intent(groups: &[(&str, bool)], flows: Vec<FlowIntent>) -> DeploymentIntent {
    let mut settings = BTreeMap::new();
    for (k, v) in [
        ("subscription", "0000-1111"),
        ("resource_group", "rg-prod-us"),
        ("location", "eastus"),
        ("nsg", "nsg-prod-us"),
        ("vnet_cidr", "10.20.0.0/16"),
        ("vnet_cidr6", "fd00:20::/48"),
    ] {
        settings.insert(k.to_string(), v.to_string());
    }
    DeploymentIntent {
        deployment: "us".into(),
        provider: ProviderKind::Azure,
        settings,
        space: set(&["10.20.0.0/16", "fd00:20::/48"]),
        groups: groups
            .iter()
            .map(|(g, r)| {
                (
                    g.to_string(),
                    GroupIntent {
                        name: g.to_string(),
                        description: None,
                        egress_restricted: *r,
                        sensitive: false,
                        addresses: None,
                        service_account: None,
                    },
                )
            })
            .collect(),
        flows,
    }
}

/// The golden intent of the README's example, on Azure.
pub fn golden() -> DeploymentIntent {
    let internet = || net("internet", &["0.0.0.0/0", "::/0"]);
    let corp = || net("corp", &["203.0.113.0/24", "2001:db8:100::/48"]);
    let partners = || {
        net(
            "partners",
            &["203.0.113.0/24", "2001:db8:100::/48", "198.51.100.0/24"],
        )
    };
    intent(
        &[("web", false), ("api", true), ("db", false)],
        vec![
            allow("web-from-internet", internet(), g("web"), &["tcp/443"]),
            allow("api-from-web", g("web"), g("api"), &["tcp/8080"]),
            allow("db-from-api", g("api"), g("db"), &["tcp/5432"]),
            allow("api-to-partners", g("api"), partners(), &["tcp/443"]),
            deny("no-corp-to-db", corp(), g("db"), &["any"]),
        ],
    )
}
