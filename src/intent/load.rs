//! YAML files -> raw per-file documents with positions.
//!
//! Every node is walked by hand so every problem (wrong type, unknown key, bad CIDR, bad
//! date, ...) gets the `file:line:column` of the offending value. Nothing here knows about
//! other files: names are resolved in [`super::merge`].

mod files;
mod flows;
mod groups;
mod placement;
mod yaml;

pub(crate) use files::{is_placeholder, read_dir};
pub(crate) use yaml::{did_you_mean, looks_like_address};

use super::model::{Exception, Loc, Placement};
use crate::diag::Diagnostic;
use intentwall_contract::{Action, AddrSet, ProviderKind};
use ipnet::IpNet;
use marked_yaml::LoaderOptions;
use std::collections::BTreeMap;
use std::path::PathBuf;
use yaml::Cx;

/// A value with the place it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sp<T> {
    pub v: T,
    pub loc: Loc,
}

/// One intent file as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceFile {
    /// Path relative to the intents directory.
    pub rel: PathBuf,
    /// `Some(dir name)` for `regions/<dir>/*.yaml`.
    pub region: Option<String>,
    /// Contents.
    pub text: String,
}

/// A deployment block.
#[derive(Debug, Clone)]
pub(crate) struct RawDeployment {
    pub name: Sp<String>,
    pub clouds: BTreeMap<ProviderKind, Placement>,
}

/// One item of a network list.
#[derive(Debug, Clone)]
pub(crate) enum NetItem {
    Cidr(IpNet),
    Name(Sp<String>),
}

/// `networks.<name>`.
#[derive(Debug, Clone)]
pub(crate) struct RawNetwork {
    pub name: Sp<String>,
    pub items: Vec<NetItem>,
}

/// `services.<name>`: tokens or names, resolved later.
#[derive(Debug, Clone)]
pub(crate) struct RawService {
    pub name: Sp<String>,
    pub items: Vec<Sp<String>>,
}

/// `addresses.<deployment>` of a group.
#[derive(Debug, Clone)]
pub(crate) struct RawAddresses {
    pub deployment: Sp<String>,
    pub all: Option<AddrSet>,
    pub by_cloud: BTreeMap<ProviderKind, Sp<AddrSet>>,
}

/// `groups.<name>`.
#[derive(Debug, Clone)]
pub(crate) struct RawGroup {
    pub name: Sp<String>,
    pub description: Option<String>,
    pub includes: Option<Sp<Vec<Sp<String>>>>,
    pub egress: Option<Loc>,
    pub sensitive: bool,
    pub addresses: Option<Sp<Vec<RawAddresses>>>,
    /// Per cloud, the settings its plugin lets a group give (`<cloud>: {<setting>: ...}`).
    pub cloud: BTreeMap<ProviderKind, BTreeMap<String, Sp<String>>>,
}

/// One `flows` item.
#[derive(Debug, Clone)]
pub(crate) struct RawFlow {
    pub name: Sp<String>,
    pub action: Action,
    pub from: Option<Sp<String>>,
    pub to: Option<Sp<String>>,
    pub services: Vec<Sp<String>>,
    pub deployments: Option<Vec<Sp<String>>>,
    pub guardrail: bool,
    pub exception: Option<Sp<Exception>>,
    /// Where the item starts.
    pub loc: Loc,
}

/// One `expect` item.
#[derive(Debug, Clone)]
pub(crate) struct RawExpect {
    pub from: Sp<String>,
    pub to: Sp<String>,
    pub service: Sp<String>,
    pub verdict: Action,
    pub loc: Loc,
}

/// Everything one file says.
#[derive(Debug, Clone)]
pub(crate) struct RawDoc {
    pub file: PathBuf,
    pub region: Option<String>,
    pub deployments: Vec<RawDeployment>,
    pub networks: Vec<RawNetwork>,
    pub services: Vec<RawService>,
    pub groups: Vec<RawGroup>,
    pub flows: Vec<RawFlow>,
    pub expects: Vec<RawExpect>,
    pub drops: Vec<Sp<String>>,
    /// True when the file could not be parsed at all (YAML syntax, not a mapping), or its
    /// `deployments` section could not be read whole: its definitions (or the deployments,
    /// their placements) are unknown, so cross-file checks would only report follow-on errors
    /// ("unknown deployment", "region directory names no deployment", "no placement for a cloud").
    pub unparsed: bool,
}

const TOP_KEYS: &[&str] = &[
    "version",
    "deployments",
    "networks",
    "services",
    "groups",
    "flows",
    "expect",
    "drop",
];

/// Parse one file into a raw document; problems go to `diags`.
pub(crate) fn parse_file(f: &SourceFile, diags: &mut Vec<Diagnostic>) -> RawDoc {
    let mut doc = RawDoc {
        file: f.rel.clone(),
        region: f.region.clone(),
        deployments: Vec::new(),
        networks: Vec::new(),
        services: Vec::new(),
        groups: Vec::new(),
        flows: Vec::new(),
        expects: Vec::new(),
        drops: Vec::new(),
        unparsed: false,
    };
    if is_placeholder(f) {
        return doc;
    }
    let mut cx = Cx {
        file: &f.rel,
        diags,
    };
    let opts = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    // a UTF-8 byte order mark (some Windows editors write one) is not part of the YAML
    let text = f.text.strip_prefix('\u{feff}').unwrap_or(&f.text);
    let node = match marked_yaml::parse_yaml_with_options(0, text, opts) {
        Ok(n) => n,
        Err(e) => {
            cx.load_error(e);
            doc.unparsed = true;
            return doc;
        }
    };
    let Some(top) = node.as_mapping() else {
        cx.err(cx.loc(node.span()), "an intent file must be a mapping");
        doc.unparsed = true;
        return doc;
    };
    cx.check_keys(top, TOP_KEYS, "top level");
    match top.get_node("version") {
        None => cx.err(
            Loc {
                file: f.rel.clone(),
                line: 1,
                column: 1,
            },
            "missing `version: 1` (every intent file must declare the language version)",
        ),
        Some(v) => match v.as_scalar().map(|s| (s.as_str(), s.may_coerce())) {
            Some(("1", true)) => {}
            Some(("1", false)) => cx.push(
                Diagnostic::error(
                    cx.loc(v.span()),
                    "`version` is the text \"1\"; it must be the number 1",
                )
                .with_note("write `version: 1`, without quotes"),
            ),
            Some((other, _)) => cx.push(
                Diagnostic::error(cx.loc(v.span()), format!("unsupported version `{other}`"))
                    .with_note("this intentwall reads `version: 1`"),
            ),
            None => cx.err(cx.loc(v.span()), "`version` must be the number 1"),
        },
    }
    let region = f.region.is_some();
    if let Some(n) = top.get_node("deployments") {
        if region {
            cx.err(
                cx.key_loc(top, "deployments"),
                "`deployments` can only be declared in a root intent file, not in a region override",
            );
        } else {
            let before = cx.diags.iter().filter(|d| d.is_error()).count();
            if let Some(m) = cx.map(n, "`deployments`") {
                for (k, v) in m.iter() {
                    if let Some(d) = cx.deployment(k, v) {
                        doc.deployments.push(d);
                    }
                }
            }
            // a broken deployment or placement is one error, not one per reference to it
            doc.unparsed |= cx.diags.iter().filter(|d| d.is_error()).count() > before;
        }
    }
    if let Some(n) = top.get_node("networks") {
        if let Some(m) = cx.map(n, "`networks`") {
            for (k, v) in m.iter() {
                let items = cx.network_items(v);
                doc.networks.push(RawNetwork {
                    name: cx.name(k, "network"),
                    items,
                });
            }
        }
    }
    if let Some(n) = top.get_node("services") {
        if let Some(m) = cx.map(n, "`services`") {
            for (k, v) in m.iter() {
                let items = cx.str_list(v, &format!("service `{}`", k.as_str()));
                doc.services.push(RawService {
                    name: cx.name(k, "service"),
                    items,
                });
            }
        }
    }
    if let Some(n) = top.get_node("groups") {
        if let Some(m) = cx.map(n, "`groups`") {
            for (k, v) in m.iter() {
                if let Some(g) = cx.group(k, v) {
                    doc.groups.push(g);
                }
            }
        }
    }
    if let Some(n) = top.get_node("flows") {
        if let Some(items) = cx.seq(n, "`flows`") {
            for it in items {
                if let Some(fl) = cx.flow(it) {
                    doc.flows.push(fl);
                }
            }
        }
    }
    if let Some(n) = top.get_node("expect") {
        if let Some(items) = cx.seq(n, "`expect`") {
            for it in items {
                if let Some(e) = cx.expect(it) {
                    doc.expects.push(e);
                }
            }
        }
    }
    if let Some(n) = top.get_node("drop") {
        if !region {
            cx.err(
                cx.key_loc(top, "drop"),
                "`drop` is only meaningful in a region override (`regions/<deployment>/*.yaml`); restrict a flow with `deployments: [...]` instead",
            );
        } else {
            doc.drops = cx.str_list(n, "`drop`");
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (RawDoc, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let f = SourceFile {
            rel: PathBuf::from("t.yaml"),
            region: None,
            text: text.into(),
        };
        (parse_file(&f, &mut d), d)
    }

    #[test]
    fn positions_are_one_based() {
        let (_, d) = parse("version: 1\ngroups:\n  web: { sensitive: maybe }\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].to_string(), "error: t.yaml:3:21: `sensitive` of group `web` must be `true` or `false`, found `maybe`");
    }

    #[test]
    fn quoted_true_is_not_a_boolean() {
        let (_, d) = parse("version: 1\ngroups:\n  web: { sensitive: \"true\" }\n");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("serivces", ["services", "from"]),
            Some("services")
        );
        assert_eq!(did_you_mean("zzz", ["services", "from"]), None);
    }

    #[test]
    fn syntax_error_has_position() {
        let (_, d) = parse("version: 1\nflows:\n  - { name: a, from: [x\n");
        assert_eq!(d.len(), 1);
        assert!(d[0].to_string().starts_with("error: t.yaml:"), "{}", d[0]);
    }
}
