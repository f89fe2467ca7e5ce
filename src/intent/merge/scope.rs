//! Namespaces: the names visible in one scope (global, or global + one region), and how a
//! scope's documents extend them: names claimed (duplicates and clashes reported), then
//! networks, services and groups resolved and checked, nesting cycles included.

use super::{dup, unknown, Diags};
use crate::diag::Diagnostic;
use crate::intent::load::{
    looks_like_address, NetItem, RawDeployment, RawDoc, RawGroup, RawNetwork, RawService, Sp,
};
use crate::intent::model::{Loc, Network, ServiceRef};
use intentwall_contract::{AddrSet, Traffic};
use std::collections::{BTreeMap, BTreeSet};

/// The names visible in one scope (global, or global + one region).
#[derive(Clone, Default)]
pub(super) struct Ns<'a> {
    pub(super) networks: BTreeMap<String, Network>,
    pub(super) services: BTreeMap<String, Vec<Traffic>>,
    service_locs: BTreeMap<String, Loc>,
    pub(super) groups: BTreeMap<String, &'a RawGroup>,
}

impl<'a> Ns<'a> {
    pub(super) fn is_endpoint(&self, n: &str) -> bool {
        self.networks.contains_key(n) || self.groups.contains_key(n)
    }

    fn first_loc(&self, n: &str) -> Option<Loc> {
        self.networks
            .get(n)
            .map(|x| x.loc.clone())
            .or_else(|| self.service_locs.get(n).cloned())
            .or_else(|| self.groups.get(n).map(|g| g.name.loc.clone()))
    }

    /// Resolve a service reference: a service name, else a token.
    pub(super) fn service(&self, s: &Sp<String>, diags: &mut Diags) -> Option<ServiceRef> {
        if let Some(t) = self.services.get(&s.v) {
            return Some(ServiceRef {
                text: s.v.clone(),
                traffic: t.clone(),
            });
        }
        match Traffic::parse(&s.v) {
            Ok(t) => Some(ServiceRef {
                text: s.v.clone(),
                traffic: vec![t],
            }),
            Err(e) => {
                if s.v.contains('/') || s.v.parse::<u32>().is_ok() {
                    diags.push(Diagnostic::error(
                        s.loc.clone(),
                        format!("invalid service `{}`: {e}", s.v),
                    ));
                } else {
                    let names: Vec<&str> = self.services.keys().map(String::as_str).collect();
                    let mut d =
                        Diagnostic::error(s.loc.clone(), format!("unknown service `{}`", s.v));
                    // `tcp:8443`, `udp 53`: a token with the wrong separator
                    let token =
                        s.v.split_once([':', ' ', '_', '.'])
                            .map(|(p, rest)| format!("{}/{}", p.trim(), rest.trim()))
                            .filter(|t| Traffic::parse(t).is_ok());
                    if let Some(t) = token {
                        d = d.with_note(format!("did you mean `{t}`? (a token is protocol/port)"));
                    } else if let Some(x) =
                        crate::intent::load::did_you_mean(&s.v, names.iter().copied())
                    {
                        d = d.with_note(format!("did you mean `{x}`?"));
                    }
                    diags.push(d.with_note("a service is a name from `services:` or a token such as tcp/443, udp/53, icmp, any"));
                }
                None
            }
        }
    }

    /// Add the definitions of `docs` (one scope), resolving them against `self` plus themselves.
    pub(super) fn extend(
        &mut self,
        docs: &[&'a RawDoc],
        region: Option<&String>,
        deps: &BTreeMap<String, &RawDeployment>,
        diags: &mut Diags,
    ) {
        let New {
            nets: new_nets,
            svcs: new_svcs,
            groups: new_groups,
        } = self.claim(docs, diags);
        let group_names: BTreeSet<String> = self
            .groups
            .keys()
            .chain(new_groups.keys())
            .cloned()
            .collect();
        let net_names: BTreeSet<String> = self
            .networks
            .keys()
            .chain(new_nets.keys())
            .cloned()
            .collect();

        self.add_networks(&new_nets, &net_names, &group_names, diags);
        self.add_services(&new_svcs, diags);
        self.add_groups(new_groups, &net_names, &group_names, region, deps, diags);
    }

    /// Claim the names `docs` define, duplicates first (first definition wins): a name
    /// defined twice in one kind, or as a group and a network, is an error and the later
    /// definition is left out.
    fn claim(&self, docs: &[&'a RawDoc], diags: &mut Diags) -> New<'a> {
        // names, duplicates first (first definition wins)
        let mut new_nets: BTreeMap<String, &'a RawNetwork> = BTreeMap::new();
        let mut new_svcs: BTreeMap<String, &'a RawService> = BTreeMap::new();
        let mut new_groups: BTreeMap<String, &'a RawGroup> = BTreeMap::new();
        let mut locs: BTreeMap<String, Loc> = BTreeMap::new();
        let mut kinds: BTreeMap<String, &str> = BTreeMap::new();
        let mut claim = |name: &Sp<String>,
                         kind: &'static str,
                         this: &Self,
                         diags: &mut Diags|
         -> bool {
            let prev = locs
                .get(&name.v)
                .cloned()
                .or_else(|| this.first_loc(&name.v));
            let prev_kind = kinds.get(&name.v).copied().or_else(|| {
                if this.networks.contains_key(&name.v) {
                    Some("network")
                } else if this.services.contains_key(&name.v) {
                    Some("service")
                } else if this.groups.contains_key(&name.v) {
                    Some("group")
                } else {
                    None
                }
            });
            match (prev, prev_kind) {
                (Some(first), Some(pk)) => {
                    // a service may share a name with a group or network (different namespace)
                    let clash = pk == kind || (pk != "service" && kind != "service");
                    if !clash {
                        return true;
                    }
                    if pk == kind {
                        diags.push(dup(kind, name, &first));
                    } else {
                        diags.push(
                            Diagnostic::error(
                                name.loc.clone(),
                                format!("`{}` is defined both as a {pk} and as a {kind}", name.v),
                            )
                            .with_note(format!("the {pk} is defined at {first}"))
                            .with_note("`from`/`to` could not tell them apart; rename one"),
                        );
                    }
                    false
                }
                _ => {
                    locs.insert(name.v.clone(), name.loc.clone());
                    kinds.insert(name.v.clone(), kind);
                    true
                }
            }
        };
        for d in docs {
            for n in &d.networks {
                if claim(&n.name, "network", self, diags) {
                    new_nets.insert(n.name.v.clone(), n);
                }
            }
            for s in &d.services {
                if claim(&s.name, "service", self, diags) {
                    new_svcs.insert(s.name.v.clone(), s);
                }
            }
            for g in &d.groups {
                if claim(&g.name, "group", self, diags) {
                    new_groups.insert(g.name.v.clone(), g);
                }
            }
        }
        New {
            nets: new_nets,
            svcs: new_svcs,
            groups: new_groups,
        }
    }

    /// Resolve the new networks (nesting expanded) into `self`; a network naming a group or
    /// an unknown name, and an include cycle, are errors.
    fn add_networks(
        &mut self,
        new_nets: &BTreeMap<String, &'a RawNetwork>,
        net_names: &BTreeSet<String>,
        group_names: &BTreeSet<String>,
        diags: &mut Diags,
    ) {
        // networks
        let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, n) in new_nets {
            let mut refs = Vec::new();
            for it in &n.items {
                if let NetItem::Name(r) = it {
                    if net_names.contains(&r.v) {
                        refs.push(r.v.clone());
                    } else if group_names.contains(&r.v) {
                        diags.push(Diagnostic::error(
                            r.loc.clone(),
                            format!("network `{name}` includes `{}`, which is a group; a network lists CIDRs and other networks", r.v),
                        ));
                    } else {
                        let c: Vec<&str> = net_names.iter().map(String::as_str).collect();
                        let mut d = unknown("network", &r.v, &r.loc, &[]);
                        if let Some(s) = crate::intent::load::did_you_mean(&r.v, c) {
                            d = d.with_note(format!("did you mean `{s}`?"));
                        }
                        if looks_like_address(&r.v) {
                            d.message = format!("invalid CIDR `{}`", r.v);
                        }
                        diags.push(d);
                    }
                }
            }
            edges.insert(name.clone(), refs);
        }
        let new_edges: BTreeMap<String, Vec<String>> = edges
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter()
                        .filter(|x| new_nets.contains_key(*x))
                        .cloned()
                        .collect(),
                )
            })
            .collect();
        for cyc in crate::cycles::find_cycles(&new_edges) {
            diags.push(Diagnostic::error(
                new_nets[&cyc[0]].name.loc.clone(),
                format!("network include cycle: {}", cyc.join(" -> ")),
            ));
        }
        let mut memo: BTreeMap<String, AddrSet> = BTreeMap::new();
        fn net_addrs(
            name: &str,
            new: &BTreeMap<String, &RawNetwork>,
            base: &BTreeMap<String, Network>,
            memo: &mut BTreeMap<String, AddrSet>,
            stack: &mut Vec<String>,
        ) -> AddrSet {
            if let Some(a) = memo.get(name) {
                return a.clone();
            }
            if let Some(b) = base.get(name) {
                return b.addrs.clone();
            }
            let Some(n) = new.get(name) else {
                return AddrSet::empty();
            };
            if stack.iter().any(|s| s == name) {
                return AddrSet::empty();
            }
            stack.push(name.to_string());
            let mut acc = AddrSet::empty();
            for it in &n.items {
                match it {
                    NetItem::Cidr(c) => acc = acc.union(&AddrSet::from_net(*c)),
                    NetItem::Name(r) => acc = acc.union(&net_addrs(&r.v, new, base, memo, stack)),
                }
            }
            stack.pop();
            memo.insert(name.to_string(), acc.clone());
            acc
        }
        for (name, n) in new_nets {
            let addrs = net_addrs(name, new_nets, &self.networks, &mut memo, &mut Vec::new());
            self.networks.insert(
                name.clone(),
                Network {
                    name: name.clone(),
                    addrs,
                    includes: n
                        .items
                        .iter()
                        .filter_map(|i| match i {
                            NetItem::Name(r) => Some(r.v.clone()),
                            _ => None,
                        })
                        .collect(),
                    loc: n.name.loc.clone(),
                },
            );
        }
    }

    /// Resolve the new services (services naming services expanded) into `self`; an empty
    /// service, a bad token and an include cycle are errors.
    fn add_services(&mut self, new_svcs: &BTreeMap<String, &'a RawService>, diags: &mut Diags) {
        // services
        let svc_names: BTreeSet<String> = self
            .services
            .keys()
            .chain(new_svcs.keys())
            .cloned()
            .collect();
        let mut sedges: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut tokens: BTreeMap<String, Vec<Traffic>> = BTreeMap::new();
        for (name, s) in new_svcs {
            let mut refs = Vec::new();
            let mut toks = Vec::new();
            if s.items.is_empty() {
                diags.push(Diagnostic::error(
                    s.name.loc.clone(),
                    format!("service `{name}` is empty"),
                ));
            }
            for it in &s.items {
                if svc_names.contains(&it.v) {
                    refs.push(it.v.clone());
                } else if let Some(r) = self.service(it, diags) {
                    toks.extend(r.traffic);
                }
            }
            sedges.insert(name.clone(), refs);
            tokens.insert(name.clone(), toks);
        }
        let new_sedges: BTreeMap<String, Vec<String>> = sedges
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter()
                        .filter(|x| new_svcs.contains_key(*x))
                        .cloned()
                        .collect(),
                )
            })
            .collect();
        for cyc in crate::cycles::find_cycles(&new_sedges) {
            diags.push(Diagnostic::error(
                new_svcs[&cyc[0]].name.loc.clone(),
                format!("service include cycle: {}", cyc.join(" -> ")),
            ));
        }
        for name in new_svcs.keys() {
            let mut acc: Vec<Traffic> = Vec::new();
            let mut seen = BTreeSet::new();
            let mut stack = vec![name.clone()];
            while let Some(n) = stack.pop() {
                if !seen.insert(n.clone()) {
                    continue;
                }
                if let Some(t) = tokens.get(&n) {
                    acc.extend(t.iter().cloned());
                    stack.extend(sedges[&n].iter().rev().cloned());
                } else if let Some(t) = self.services.get(&n) {
                    acc.extend(t.iter().cloned());
                }
            }
            acc.sort();
            acc.dedup();
            self.services.insert(name.clone(), acc);
            self.service_locs
                .insert(name.clone(), new_svcs[name].name.loc.clone());
        }
    }

    /// Check the new groups (includes, what a composite cannot have, addresses per
    /// deployment and cloud, include cycles) and add them to `self`.
    fn add_groups(
        &mut self,
        new_groups: BTreeMap<String, &'a RawGroup>,
        net_names: &BTreeSet<String>,
        group_names: &BTreeSet<String>,
        region: Option<&String>,
        deps: &BTreeMap<String, &RawDeployment>,
        diags: &mut Diags,
    ) {
        // groups
        let mut gedges: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, g) in &new_groups {
            let mut refs = Vec::new();
            if let Some(inc) = &g.includes {
                for r in &inc.v {
                    if group_names.contains(&r.v) {
                        if new_groups.contains_key(&r.v) {
                            refs.push(r.v.clone());
                        }
                    } else if net_names.contains(&r.v) {
                        diags.push(Diagnostic::error(
                            r.loc.clone(),
                            format!("group `{name}` includes `{}`, which is a network; `includes` names groups", r.v),
                        ));
                    } else {
                        let c: Vec<&str> = group_names.iter().map(String::as_str).collect();
                        let mut d = Diagnostic::error(
                            r.loc.clone(),
                            format!("unknown group `{}` in `includes` of group `{name}`", r.v),
                        );
                        if let Some(s) = crate::intent::load::did_you_mean(&r.v, c) {
                            d = d.with_note(format!("did you mean `{s}`?"));
                        }
                        diags.push(d);
                    }
                }
                if !inc.v.is_empty() {
                    let bad = |what: &str, loc: &Loc, diags: &mut Diags| {
                        diags.push(
                            Diagnostic::error(
                                loc.clone(),
                                format!("composite group `{name}` (it has `includes`) cannot have {what}"),
                            )
                            .with_note("set it on the leaf groups it includes"),
                        );
                    };
                    if let Some(l) = &g.egress {
                        bad("`egress`", l, diags);
                    }
                    if let Some(a) = &g.addresses {
                        bad("`addresses`", &a.loc, diags);
                    }
                    for (kind, settings) in &g.cloud {
                        for (key, s) in settings {
                            bad(&format!("a `{kind}.{key}`"), &s.loc, diags);
                        }
                    }
                }
            }
            gedges.insert(name.clone(), refs);
            if let Some(a) = &g.addresses {
                for ra in &a.v {
                    let dn = &ra.deployment;
                    match (region, deps.get(&dn.v)) {
                        (Some(r), _) if r != &dn.v => diags.push(Diagnostic::error(
                            dn.loc.clone(),
                            format!("group `{name}` is defined in the override of `{r}`, so it can only have addresses for `{r}`"),
                        )),
                        (_, None) => {
                            let names: Vec<&str> = deps.keys().map(String::as_str).collect();
                            diags.push(unknown("deployment", &dn.v, &dn.loc, &names));
                        }
                        (_, Some(dep)) => {
                            for (cloud, set) in &ra.by_cloud {
                                if !dep.clouds.contains_key(cloud) {
                                    diags.push(Diagnostic::error(
                                        set.loc.clone(),
                                        format!("deployment `{}` has no {cloud} placement", dn.v),
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
        for cyc in crate::cycles::find_cycles(&gedges) {
            let g = new_groups[&cyc[0]];
            let loc = g
                .includes
                .as_ref()
                .map(|i| i.loc.clone())
                .unwrap_or(g.name.loc.clone());
            diags.push(Diagnostic::error(
                loc,
                format!("group include cycle: {}", cyc.join(" -> ")),
            ));
        }
        self.groups.extend(new_groups);
    }
}

/// What one scope's documents define anew, by name.
struct New<'a> {
    nets: BTreeMap<String, &'a RawNetwork>,
    svcs: BTreeMap<String, &'a RawService>,
    groups: BTreeMap<String, &'a RawGroup>,
}
