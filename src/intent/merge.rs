//! Raw per-file documents -> one effective [`Deployment`] per deployment.
//!
//! Scoping: root files form the *global* namespace; `regions/<d>/*.yaml` extend it for
//! deployment `d` only. Global definitions (networks, services, groups) may only name global
//! things; region definitions may name both. A global flow or expectation applies in every
//! deployment whose namespace has both its ends, unless restricted by `deployments:` or
//! dropped by the region. The result never depends on file order: documents are sorted
//! by path first, every definition is keyed by name, and duplicates are errors.

use super::load::{looks_like_address, NetItem, RawDoc, RawFlow, RawGroup, Sp};
use super::model::{Deployment, Expect, Flow, Group, Loc, Network, ServiceRef};
use crate::diag::Diagnostic;
use intentwall_contract::{AddrSet, Traffic};
use std::collections::{BTreeMap, BTreeSet};

type Diags = Vec<Diagnostic>;

/// Merge all documents; problems go to `diags`.
pub(crate) fn merge(
    docs: &[RawDoc],
    today: time::Date,
    diags: &mut Diags,
) -> BTreeMap<String, Deployment> {
    let mut docs: Vec<&RawDoc> = docs.iter().collect();
    docs.sort_by(|a, b| a.file.cmp(&b.file));
    let global: Vec<&RawDoc> = docs
        .iter()
        .copied()
        .filter(|d| d.region.is_none())
        .collect();

    // deployments
    let mut deps: BTreeMap<String, &super::load::RawDeployment> = BTreeMap::new();
    for d in &global {
        for dep in &d.deployments {
            if let Some(first) = deps.get(&dep.name.v) {
                diags.push(dup("deployment", &dep.name, &first.name.loc));
            } else {
                deps.insert(dep.name.v.clone(), dep);
            }
        }
    }
    if deps.is_empty() && !global.is_empty() && !diags.iter().any(|d| d.is_error()) {
        diags.push(
            Diagnostic::error(None, "no deployments are declared")
                .with_note("declare `deployments:` in a root intent file (e.g. intentwall.yaml)"),
        );
    }
    let dep_names: Vec<&str> = deps.keys().map(String::as_str).collect();

    // region directories
    let mut regions: BTreeMap<String, Vec<&RawDoc>> = BTreeMap::new();
    for d in &docs {
        if let Some(r) = &d.region {
            regions.entry(r.clone()).or_default().push(d);
        }
    }
    for (r, rdocs) in &regions {
        if !deps.contains_key(r) {
            let mut d = Diagnostic::error(
                Loc {
                    file: rdocs[0].file.clone(),
                    line: 1,
                    column: 1,
                },
                format!("region directory `regions/{r}/` names no deployment"),
            );
            if let Some(s) = super::load::did_you_mean(r, dep_names.iter().copied()) {
                d = d.with_note(format!("did you mean `regions/{s}/`?"));
            }
            diags.push(d.with_note(format!("known deployments: {}", dep_names.join(", "))));
        }
    }

    // namespaces
    let mut gns = Ns::default();
    gns.extend(&global, None, &deps, diags);
    let mut nss: BTreeMap<String, Ns> = BTreeMap::new();
    for name in deps.keys() {
        let mut ns = gns.clone();
        if let Some(rdocs) = regions.get(name) {
            ns.extend(rdocs, Some(name), &deps, diags);
        }
        nss.insert(name.clone(), ns);
    }

    // flows: names unique in each deployment's namespace
    let mut gflows: BTreeMap<String, &RawFlow> = BTreeMap::new();
    let mut gflow_list: Vec<&RawFlow> = Vec::new();
    for f in global.iter().flat_map(|d| d.flows.iter()) {
        if let Some(first) = gflows.get(&f.name.v) {
            diags.push(dup("flow", &f.name, &first.name.loc));
        } else {
            gflows.insert(f.name.v.clone(), f);
            gflow_list.push(f);
        }
    }
    let mut rflows: BTreeMap<String, Vec<&RawFlow>> = BTreeMap::new();
    for (r, rdocs) in &regions {
        let mut seen: BTreeMap<String, &RawFlow> = BTreeMap::new();
        for f in rdocs.iter().flat_map(|d| d.flows.iter()) {
            if let Some(first) = gflows.get(&f.name.v).or(seen.get(&f.name.v)) {
                let mut d = dup("flow", &f.name, &first.name.loc);
                if gflows.contains_key(&f.name.v) {
                    d = d.with_note(
                        "a region cannot redefine a global flow; restrict the global one with `deployments: [...]` or `drop` it",
                    );
                }
                diags.push(d);
                continue;
            }
            if let Some(ds) = &f.deployments {
                if let Some(first) = ds.first() {
                    diags.push(Diagnostic::error(
                        first.loc.clone(),
                        format!("flow `{}` in a region override applies to deployment `{r}` only; remove `deployments`", f.name.v),
                    ));
                }
            }
            seen.insert(f.name.v.clone(), f);
            rflows.entry(r.clone()).or_default().push(f);
        }
    }

    // per-flow checks done once: deployments list, exception expiry
    let all_flows = gflow_list.iter().chain(rflows.values().flatten());
    for f in all_flows {
        if let Some(ex) = &f.exception {
            if ex.v.expires < today {
                diags.push(
                    Diagnostic::error(
                        ex.loc.clone(),
                        format!("the guardrail exception of flow `{}` expired on {}", f.name.v, ex.v.expires),
                    )
                    .with_note(format!("reason given: {}", ex.v.reason))
                    .with_note("renew it with a later `expires` date after review, or remove the exception and fix the flow"),
                );
            }
        }
    }
    for f in &gflow_list {
        if let Some(ds) = &f.deployments {
            for d in ds {
                if !deps.contains_key(&d.v) {
                    diags.push(unknown("deployment", &d.v, &d.loc, &dep_names));
                }
            }
        }
    }

    // drops
    let mut dropped: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (r, rdocs) in &regions {
        if !deps.contains_key(r) {
            continue;
        }
        for dr in rdocs.iter().flat_map(|d| d.drops.iter()) {
            match gflows.get(&dr.v) {
                Some(f) if f.guardrail => diags.push(
                    Diagnostic::error(
                        dr.loc.clone(),
                        format!("cannot drop guardrail flow `{}`", dr.v),
                    )
                    .with_note(format!(
                        "`{}` is defined at {} with `guardrail: true`; a region can neither drop nor override it",
                        dr.v, f.loc
                    )),
                ),
                Some(_) => {
                    dropped.entry(r.clone()).or_default().insert(dr.v.clone());
                }
                None => {
                    let names: Vec<&str> = gflows.keys().map(String::as_str).collect();
                    let mut d = Diagnostic::error(
                        dr.loc.clone(),
                        format!("unknown flow `{}` in drop", dr.v),
                    );
                    if let Some(s) = super::load::did_you_mean(&dr.v, names.iter().copied()) {
                        d = d.with_note(format!("did you mean `{s}`?"));
                    }
                    if rflows.get(r).is_some_and(|v| v.iter().any(|f| f.name.v == dr.v)) {
                        d = d.with_note("`drop` removes global flows; delete the region's own flow instead");
                    }
                    diags.push(d);
                }
            }
        }
    }

    // end references: which namespaces know a name
    let known_anywhere =
        |name: &str| nss.values().any(|ns| ns.is_endpoint(name)) || gns.is_endpoint(name);
    let check_ends = |what: String,
                      from: &Sp<String>,
                      to: &Sp<String>,
                      spaces: &[&Ns],
                      diags: &mut Diags|
     -> bool {
        let mut ok = true;
        for e in [from, to] {
            if !spaces.iter().any(|ns| ns.is_endpoint(&e.v)) {
                if known_anywhere(&e.v) {
                    continue; // exists only where this item does not apply
                }
                let mut cands: Vec<&str> = Vec::new();
                for ns in spaces {
                    cands.extend(ns.groups.keys().map(String::as_str));
                    cands.extend(ns.networks.keys().map(String::as_str));
                }
                let mut d = Diagnostic::error(
                    e.loc.clone(),
                    format!("unknown group or network `{}` in {what}", e.v),
                );
                if let Some(s) = super::load::did_you_mean(&e.v, cands) {
                    d = d.with_note(format!("did you mean `{s}`?"));
                }
                diags.push(d);
                ok = false;
            }
        }
        if ok {
            let net = |n: &str| {
                spaces.iter().any(|ns| ns.networks.contains_key(n))
                    && !spaces.iter().any(|ns| ns.groups.contains_key(n))
            };
            if net(&from.v) && net(&to.v) {
                diags.push(
                    Diagnostic::error(
                        from.loc.clone(),
                        format!("{what} goes from network `{}` to network `{}`", from.v, to.v),
                    )
                    .with_note("a flow needs at least one group end: intentwall only governs traffic to and from groups"),
                );
                ok = false;
            }
        }
        ok
    };

    // validate flow and expectation ends once, over the namespaces they can apply in
    let mut flow_ok: BTreeMap<*const RawFlow, bool> = BTreeMap::new();
    for f in &gflow_list {
        let spaces: Vec<&Ns> = nss
            .iter()
            .filter(|(d, _)| {
                f.deployments
                    .as_ref()
                    .is_none_or(|ds| ds.iter().any(|x| &x.v == *d))
            })
            .map(|(_, ns)| ns)
            .chain(std::iter::once(&gns))
            .collect();
        let ok = match (&f.from, &f.to) {
            (Some(a), Some(b)) => check_ends(format!("flow `{}`", f.name.v), a, b, &spaces, diags),
            _ => false,
        };
        flow_ok.insert(*f as *const RawFlow, ok);
    }
    for (r, fl) in &rflows {
        let Some(ns) = nss.get(r) else { continue };
        for f in fl {
            let ok = match (&f.from, &f.to) {
                (Some(a), Some(b)) => {
                    check_ends(format!("flow `{}`", f.name.v), a, b, &[ns], diags)
                }
                _ => false,
            };
            flow_ok.insert(*f as *const RawFlow, ok);
        }
    }
    let gexpects: Vec<&super::load::RawExpect> =
        global.iter().flat_map(|d| d.expects.iter()).collect();
    let mut expect_ok: BTreeMap<*const super::load::RawExpect, bool> = BTreeMap::new();
    for e in &gexpects {
        let mut spaces: Vec<&Ns> = nss.values().collect();
        spaces.push(&gns);
        let ok = check_ends("an expectation".into(), &e.from, &e.to, &spaces, diags);
        expect_ok.insert(*e as *const _, ok);
    }
    for (r, rdocs) in &regions {
        let Some(ns) = nss.get(r) else { continue };
        for e in rdocs.iter().flat_map(|d| d.expects.iter()) {
            let ok = check_ends("an expectation".into(), &e.from, &e.to, &[ns], diags);
            expect_ok.insert(e as *const _, ok);
        }
    }

    // build each deployment
    let mut out = BTreeMap::new();
    let mut applied: BTreeSet<String> = BTreeSet::new();
    for (name, dep) in &deps {
        let ns = &nss[name];
        let mut flows = Vec::new();
        let region_flows = rflows.get(name).cloned().unwrap_or_default();
        for f in gflow_list
            .iter()
            .copied()
            .chain(region_flows.iter().copied())
        {
            if !flow_ok
                .get(&(f as *const RawFlow))
                .copied()
                .unwrap_or(false)
            {
                continue;
            }
            if f.deployments
                .as_ref()
                .is_some_and(|ds| !ds.iter().any(|x| &x.v == name))
            {
                continue;
            }
            if dropped.get(name).is_some_and(|s| s.contains(&f.name.v)) {
                continue;
            }
            let (Some(from), Some(to)) = (&f.from, &f.to) else {
                continue;
            };
            if !ns.is_endpoint(&from.v) || !ns.is_endpoint(&to.v) {
                continue;
            }
            let services: Vec<ServiceRef> = f
                .services
                .iter()
                .filter_map(|s| ns.service(s, diags))
                .collect();
            if services.len() != f.services.len() || services.is_empty() {
                continue;
            }
            applied.insert(f.name.v.clone());
            flows.push(Flow {
                name: f.name.v.clone(),
                action: f.action,
                from: from.v.clone(),
                to: to.v.clone(),
                services,
                guardrail: f.guardrail,
                exception: f.exception.as_ref().map(|e| e.v.clone()),
                loc: f.loc.clone(),
            });
        }
        let mut expects = Vec::new();
        let rex: Vec<&super::load::RawExpect> = regions
            .get(name)
            .map(|v| v.iter().flat_map(|d| d.expects.iter()).collect())
            .unwrap_or_default();
        for e in gexpects.iter().copied().chain(rex) {
            if !expect_ok.get(&(e as *const _)).copied().unwrap_or(false) {
                continue;
            }
            if !ns.is_endpoint(&e.from.v) || !ns.is_endpoint(&e.to.v) {
                continue;
            }
            let Some(service) = ns.service(&e.service, diags) else {
                continue;
            };
            if service.traffic.len() != 1 {
                diags.push(Diagnostic::error(
                    e.service.loc.clone(),
                    format!(
                        "an expectation tests one service token, but `{}` stands for {} ({})",
                        e.service.v,
                        service.traffic.len(),
                        service
                            .traffic
                            .iter()
                            .map(|t| t.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                continue;
            }
            expects.push(Expect {
                from: e.from.v.clone(),
                to: e.to.v.clone(),
                service,
                verdict: e.verdict,
                loc: e.loc.clone(),
            });
        }
        let groups = ns
            .groups
            .values()
            .map(|g| (g.name.v.clone(), model_group(g, name)))
            .collect();
        out.insert(
            name.clone(),
            Deployment {
                name: name.clone(),
                clouds: dep.clouds.clone(),
                networks: ns.networks.clone(),
                services: ns.services.clone(),
                groups,
                flows,
                expects,
            },
        );
    }
    for f in gflow_list.iter().chain(rflows.values().flatten()) {
        if flow_ok
            .get(&(*f as *const RawFlow))
            .copied()
            .unwrap_or(false)
            && !applied.contains(&f.name.v)
            && !diags.iter().any(|d| d.is_error())
        {
            diags.push(Diagnostic::warning(
                f.name.loc.clone(),
                format!("flow `{}` applies in no deployment (its ends never exist together, or it is restricted or dropped everywhere)", f.name.v),
            ));
        }
    }
    out
}

fn model_group(g: &RawGroup, dep: &str) -> Group {
    let mut addresses = None;
    let mut by_cloud = BTreeMap::new();
    if let Some(a) = &g.addresses {
        for ra in a.v.iter().filter(|ra| ra.deployment.v == dep) {
            addresses = ra.all.clone();
            by_cloud = ra.by_cloud.iter().map(|(k, v)| (*k, v.v.clone())).collect();
        }
    }
    Group {
        name: g.name.v.clone(),
        description: g.description.clone(),
        includes: g
            .includes
            .as_ref()
            .map(|i| i.v.iter().map(|s| s.v.clone()).collect())
            .unwrap_or_default(),
        egress_restricted: g.egress.is_some(),
        sensitive: g.sensitive,
        addresses,
        addresses_by_cloud: by_cloud,
        gcp_service_account: g.service_account.as_ref().map(|s| s.v.clone()),
        loc: g.name.loc.clone(),
    }
}

fn dup(kind: &str, name: &Sp<String>, first: &Loc) -> Diagnostic {
    Diagnostic::error(name.loc.clone(), format!("duplicate {kind} `{}`", name.v))
        .with_note(format!("first defined at {first}"))
}

fn unknown(kind: &str, name: &str, loc: &Loc, cands: &[&str]) -> Diagnostic {
    let mut d = Diagnostic::error(loc.clone(), format!("unknown {kind} `{name}`"));
    if let Some(s) = super::load::did_you_mean(name, cands.iter().copied()) {
        d = d.with_note(format!("did you mean `{s}`?"));
    }
    if !cands.is_empty() && cands.len() <= 12 {
        d = d.with_note(format!("known: {}", cands.join(", ")));
    }
    d
}

/// The names visible in one scope (global, or global + one region).
#[derive(Clone, Default)]
struct Ns<'a> {
    networks: BTreeMap<String, Network>,
    services: BTreeMap<String, Vec<Traffic>>,
    service_locs: BTreeMap<String, Loc>,
    groups: BTreeMap<String, &'a RawGroup>,
}

impl<'a> Ns<'a> {
    fn is_endpoint(&self, n: &str) -> bool {
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
    fn service(&self, s: &Sp<String>, diags: &mut Diags) -> Option<ServiceRef> {
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
                    if let Some(x) = super::load::did_you_mean(&s.v, names.iter().copied()) {
                        d = d.with_note(format!("did you mean `{x}`?"));
                    }
                    diags.push(d.with_note("a service is a name from `services:` or a token such as tcp/443, udp/53, icmp, any"));
                }
                None
            }
        }
    }

    /// Add the definitions of `docs` (one scope), resolving them against `self` plus themselves.
    fn extend(
        &mut self,
        docs: &[&'a RawDoc],
        region: Option<&String>,
        deps: &BTreeMap<String, &super::load::RawDeployment>,
        diags: &mut Diags,
    ) {
        // names, duplicates first (first definition wins)
        let mut new_nets: BTreeMap<String, &'a super::load::RawNetwork> = BTreeMap::new();
        let mut new_svcs: BTreeMap<String, &'a super::load::RawService> = BTreeMap::new();
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

        // networks
        let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, n) in &new_nets {
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
                        if let Some(s) = super::load::did_you_mean(&r.v, c) {
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
            new: &BTreeMap<String, &super::load::RawNetwork>,
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
        for (name, n) in &new_nets {
            let addrs = net_addrs(name, &new_nets, &self.networks, &mut memo, &mut Vec::new());
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

        // services
        let svc_names: BTreeSet<String> = self
            .services
            .keys()
            .chain(new_svcs.keys())
            .cloned()
            .collect();
        let mut sedges: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut tokens: BTreeMap<String, Vec<Traffic>> = BTreeMap::new();
        for (name, s) in &new_svcs {
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
                        if let Some(s) = super::load::did_you_mean(&r.v, c) {
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
                    if let Some(s) = &g.service_account {
                        bad("a `gcp.service_account`", &s.loc, diags);
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

#[cfg(test)]
mod tests {
    use crate::intent::{load_files, LoadOptions};

    const BASE: &str = "version: 1
deployments:
  us: { aws: { account: \"111122223333\", region: us-east-1, vpc: vpc-0a1b2c3d, cidr: 10.1.0.0/16 } }
  eu: { gcp: { project: acme-prod-eu, network: n, cidr: 10.2.0.0/16 } }
networks:
  internet: [0.0.0.0/0]
groups:
  web: {}
  api: {}
flows:
  - { name: web-in, from: internet, to: web, services: [tcp/443] }
  - { name: api-in, from: web, to: api, services: [tcp/8080], deployments: [eu] }
  - { name: g, action: deny, from: internet, to: api, services: [any], guardrail: true }
  - { name: to-report, from: api, to: reporting, services: [tcp/9000] }
";

    fn run(extra: &[(&str, &str)]) -> Result<crate::intent::Loaded, crate::diag::Diagnostics> {
        let mut files = vec![("a.yaml".to_string(), BASE.to_string())];
        files.extend(extra.iter().map(|(p, t)| (p.to_string(), t.to_string())));
        load_files(
            &files,
            &LoadOptions {
                today: time::macros::date!(2026 - 01 - 01),
            },
        )
    }

    fn names(l: &crate::intent::Loaded, d: &str) -> Vec<String> {
        l.intent.deployments[d]
            .flows
            .iter()
            .map(|f| f.name.clone())
            .collect()
    }

    #[test]
    fn region_groups_restrictions_and_drops() {
        let l = run(&[
            ("regions/us/r.yaml", "version: 1\ngroups:\n  reporting: {}\ndrop: [web-in]\n"),
            ("regions/eu/r.yaml", "version: 1\nflows:\n  - { name: eu-only, from: web, to: api, services: [tcp/1] }\n"),
        ])
        .unwrap_or_else(|d| panic!("{d}"));
        assert!(l.warnings.is_empty(), "{}", l.warnings);
        // us: web-in dropped, api-in restricted to eu, to-report applies (reporting exists)
        assert_eq!(names(&l, "us"), ["g", "to-report"]);
        // eu: no `reporting` group, so to-report does not apply; region flows come last
        assert_eq!(names(&l, "eu"), ["web-in", "api-in", "g", "eu-only"]);
    }

    #[test]
    fn a_name_unknown_everywhere_is_an_error() {
        let d = run(&[]).unwrap_err().to_string();
        assert!(
            d.contains("a.yaml:14:39: unknown group or network `reporting`"),
            "{d}"
        );
    }

    #[test]
    fn a_region_cannot_redefine_a_global_flow() {
        let d = run(&[
            ("regions/us/r.yaml", "version: 1\ngroups:\n  reporting: {}\nflows:\n  - { name: web-in, from: internet, to: web, services: [tcp/80] }\n"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            d.contains("regions/us/r.yaml:5:13: duplicate flow `web-in`"),
            "{d}"
        );
        assert!(d.contains("first defined at a.yaml:11:13"), "{d}");
    }

    #[test]
    fn a_flow_that_never_applies_is_a_warning() {
        let l = run(&[(
            "regions/eu/r.yaml",
            "version: 1\ngroups:\n  reporting: {}\ndrop: [api-in, to-report]\n",
        )])
        .unwrap();
        let w = l.warnings.to_string();
        assert!(
            w.starts_with("warning: a.yaml:12:13: flow `api-in` applies in no deployment"),
            "{w}"
        );
    }
}
