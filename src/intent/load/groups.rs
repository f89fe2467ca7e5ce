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
            cloud: BTreeMap::new(),
        };
        if let Node::Scalar(s) = v {
            if s.as_str().is_empty() {
                return Some(g); // `web:` with nothing: a plain leaf group
            }
        }
        let m = self.map(v, &what)?;
        // a cloud's name gives the settings its plugin lets a group have
        let keys: Vec<&str> = [
            "description",
            "includes",
            "egress",
            "sensitive",
            "addresses",
        ]
        .into_iter()
        .chain(
            ProviderKind::ALL
                .iter()
                .filter(|k| {
                    crate::backend::placement_schema(**k)
                        .is_ok_and(|s| !s.group_settings.is_empty())
                })
                .map(|k| k.as_str()),
        )
        .collect();
        self.check_keys(m, &keys, &what);
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
                cloud => {
                    let Some(kind) = ProviderKind::parse(cloud) else {
                        continue;
                    };
                    let Ok(schema) = crate::backend::placement_schema(kind) else {
                        continue;
                    };
                    let w = format!("`{kind}` of {what}");
                    if let Some(gm) = self.map(val, &w) {
                        self.check_keys(gm, schema.group_settings, &w);
                        for &setting in schema.group_settings {
                            let Some(node) = gm.get_node(setting) else {
                                continue;
                            };
                            let Some(t) = self.text(node, &format!("`{setting}` of {what}")) else {
                                continue;
                            };
                            if let Err(why) = (schema.check)(setting, &t.v) {
                                let q = crate::intent::names::quote(&t.v);
                                self.err(
                                    t.loc.clone(),
                                    format!("`{setting}` of {what} is {q}: {why}"),
                                );
                            }
                            g.cloud
                                .entry(kind)
                                .or_default()
                                .insert(setting.to_string(), t);
                        }
                    }
                }
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
                    self.check_keys(cm, &ProviderKind::ALL.map(ProviderKind::as_str), &cw);
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
