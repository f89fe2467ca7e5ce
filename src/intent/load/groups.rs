//! Group definitions and their per-deployment (and per-cloud) addresses.

use super::yaml::Cx;
use super::{RawAddresses, RawGroup, Sp};
use crate::diag::Diagnostic;
use intentwall_contract::ProviderKind;
use marked_yaml::types::MarkedScalarNode;
use marked_yaml::Node;
use std::collections::BTreeMap;

impl Cx<'_> {
    pub(super) fn group(&mut self, k: &MarkedScalarNode, v: &Node) -> Option<RawGroup> {
        let name = self.name(k, "group");
        let what = format!("group `{}`", name.v);
        let mut g = RawGroup {
            name,
            description: None,
            includes: None,
            egress: None,
            sensitive: false,
            addresses: None,
            service_account: None,
        };
        if let Node::Scalar(s) = v {
            if s.as_str().is_empty() {
                return Some(g); // `web:` with nothing: a plain leaf group
            }
        }
        let m = self.map(v, &what)?;
        self.check_keys(
            m,
            &[
                "description",
                "includes",
                "egress",
                "sensitive",
                "addresses",
                "gcp",
            ],
            &what,
        );
        for (key, val) in m.iter() {
            match key.as_str() {
                "description" => {
                    g.description = self
                        .text(val, &format!("`description` of {what}"))
                        .map(|t| t.v)
                }
                "includes" => {
                    let items = self.str_list(val, &format!("`includes` of {what}"));
                    g.includes = Some(Sp {
                        v: items,
                        loc: self.loc(key.span()),
                    });
                }
                "egress" => {
                    if let Some(t) = self.text(val, &format!("`egress` of {what}")) {
                        if t.v == "restricted" {
                            g.egress = Some(t.loc);
                        } else {
                            self.push(
                                Diagnostic::error(
                                    t.loc,
                                    format!(
                                        "`egress` of {what} must be `restricted`, found `{}`",
                                        t.v
                                    ),
                                )
                                .with_note("leave `egress` out for the default (egress allowed)"),
                            );
                        }
                    }
                }
                "sensitive" => {
                    g.sensitive = self
                        .boolean(val, &format!("`sensitive` of {what}"))
                        .unwrap_or(false)
                }
                "addresses" => {
                    g.addresses = self.addresses(val, &what).map(|v| Sp {
                        v,
                        loc: self.loc(key.span()),
                    })
                }
                "gcp" => {
                    let w = format!("`gcp` of {what}");
                    if let Some(gm) = self.map(val, &w) {
                        self.check_keys(gm, &["service_account"], &w);
                        if let Some(sa) = gm.get_node("service_account") {
                            g.service_account =
                                self.text(sa, &format!("`service_account` of {what}"));
                            if let Some(t) = &g.service_account {
                                if let Err(why) = crate::intent::names::check_service_account(&t.v)
                                {
                                    let q = crate::intent::names::quote(&t.v);
                                    self.err(
                                        t.loc.clone(),
                                        format!("`service_account` of {what} is {q}: {why}"),
                                    );
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Some(g)
    }

    pub(super) fn addresses(&mut self, n: &Node, what: &str) -> Option<Vec<RawAddresses>> {
        let w = format!("`addresses` of {what}");
        let m = self.map(n, &w)?;
        let mut out = Vec::new();
        for (dk, dv) in m.iter() {
            let deployment = self.key(dk);
            let mut a = RawAddresses {
                deployment,
                all: None,
                by_cloud: BTreeMap::new(),
            };
            match dv {
                Node::Mapping(cm) => {
                    let cw = format!("`addresses.{}` of {what}", dk.as_str());
                    self.check_keys(cm, &["aws", "azure", "gcp"], &cw);
                    for (ck, cv) in cm.iter() {
                        if let Some(kind) = ProviderKind::parse(ck.as_str()) {
                            if let Some(s) = self.cidr_set(cv, &cw) {
                                a.by_cloud.insert(
                                    kind,
                                    Sp {
                                        v: s,
                                        loc: self.loc(ck.span()),
                                    },
                                );
                            }
                        }
                    }
                }
                _ => a.all = self.cidr_set(dv, &w),
            }
            out.push(a);
        }
        Some(out)
    }
}
