//! The effective deployments: each deployment's flows (global and its region's, minus the
//! restricted, dropped and inapplicable ones), expectations and groups, once every check has
//! run; and the warning for a flow that applies nowhere.

use super::flows::{Ends, Flows};
use super::scope::Ns;
use super::Diags;
use crate::diag::Diagnostic;
use crate::intent::load::{RawDeployment, RawDoc, RawExpect, RawFlow, RawGroup};
use crate::intent::model::{Deployment, Expect, Flow, Group, ServiceRef};
use std::collections::{BTreeMap, BTreeSet};

/// What the checks settled, for building the deployments.
pub(super) struct Settled<'s, 'a> {
    pub(super) deps: &'s BTreeMap<String, &'a RawDeployment>,
    pub(super) regions: &'s BTreeMap<String, Vec<&'a RawDoc>>,
    pub(super) nss: &'s BTreeMap<String, Ns<'a>>,
    pub(super) flows: &'s Flows<'a>,
    pub(super) dropped: &'s BTreeMap<String, BTreeSet<String>>,
    pub(super) ends: &'s Ends<'a>,
}

/// Build each deployment; warn about flows that apply in none.
pub(super) fn deployments(s: &Settled, diags: &mut Diags) -> BTreeMap<String, Deployment> {
    let Settled {
        deps,
        nss,
        flows,
        ends,
        ..
    } = s;
    let Flows {
        gflow_list, rflows, ..
    } = flows;
    let flow_ok = &ends.flow_ok;
    // build each deployment
    let mut out = BTreeMap::new();
    let mut applied: BTreeSet<String> = BTreeSet::new();
    for (name, dep) in deps.iter() {
        let ns = &nss[name];
        let flows = effective_flows(s, name, ns, &mut applied, diags);
        let expects = effective_expects(s, name, ns, diags);
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
        cloud_settings: g
            .cloud
            .iter()
            .map(|(k, m)| {
                (
                    *k,
                    m.iter().map(|(s, v)| (s.clone(), v.v.clone())).collect(),
                )
            })
            .collect(),
        loc: g.name.loc.clone(),
    }
}

/// The flows in effect in deployment `name`, global then the region's, in file order: those
/// with valid ends, not restricted to other deployments, not dropped here, whose ends both
/// exist here and whose services resolve. Each one taken is recorded in `applied`.
fn effective_flows(
    s: &Settled,
    name: &String,
    ns: &Ns,
    applied: &mut BTreeSet<String>,
    diags: &mut Diags,
) -> Vec<Flow> {
    let Settled {
        flows,
        dropped,
        ends,
        ..
    } = s;
    let Flows {
        gflow_list, rflows, ..
    } = flows;
    let flow_ok = &ends.flow_ok;
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
    flows
}

/// The expectations checked in deployment `name`, global then the region's: those with valid
/// ends that both exist here, testing exactly one service token.
fn effective_expects(s: &Settled, name: &String, ns: &Ns, diags: &mut Diags) -> Vec<Expect> {
    let Settled { regions, ends, .. } = s;
    let Ends {
        gexpects,
        expect_ok,
        ..
    } = ends;
    let mut expects = Vec::new();
    let rex: Vec<&RawExpect> = regions
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
    expects
}
