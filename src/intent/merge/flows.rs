//! The flows of all scopes: collected and named uniquely, checked once (deployment lists;
//! exception expiry is judged by the guardrails, not here), dropped by region overrides, and their ends (and expectations' ends)
//! checked over every namespace they can apply in.

use super::scope::Ns;
use super::{dup, unknown, Diags};
use crate::diag::Diagnostic;
use crate::intent::load::{RawDeployment, RawDoc, RawExpect, RawFlow, Sp};
use std::collections::{BTreeMap, BTreeSet};

/// Every flow, global and per region, each once (duplicates are reported and left out).
pub(super) struct Flows<'a> {
    /// Global flows by name.
    pub(super) gflows: BTreeMap<String, &'a RawFlow>,
    /// Global flows in file order.
    pub(super) gflow_list: Vec<&'a RawFlow>,
    /// Each region's own flows in file order.
    pub(super) rflows: BTreeMap<String, Vec<&'a RawFlow>>,
}

/// Collect the flows: names unique in each deployment's namespace.
pub(super) fn collect<'a>(
    global: &[&'a RawDoc],
    regions: &BTreeMap<String, Vec<&'a RawDoc>>,
    diags: &mut Diags,
) -> Flows<'a> {
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
    for (r, rdocs) in regions {
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

    Flows {
        gflows,
        gflow_list,
        rflows,
    }
}

/// Checks each flow needs once, wherever it applies.
pub(super) fn check_once(
    flows: &Flows,
    deps: &BTreeMap<String, &RawDeployment>,
    dep_names: &[&str],
    diags: &mut Diags,
) {
    // per-flow checks done once: the deployments list. (Exception expiry is not a load
    // error: an expired exception is a guardrail finding, see `guardrails`.)
    for f in &flows.gflow_list {
        if let Some(ds) = &f.deployments {
            for d in ds {
                if !deps.contains_key(&d.v) {
                    diags.push(unknown("deployment", &d.v, &d.loc, dep_names));
                }
            }
        }
    }
}

/// The global flows each region drops; dropping a guardrail flow or an unknown one is an
/// error.
pub(super) fn drops(
    flows: &Flows,
    regions: &BTreeMap<String, Vec<&RawDoc>>,
    deps: &BTreeMap<String, &RawDeployment>,
    diags: &mut Diags,
) -> BTreeMap<String, BTreeSet<String>> {
    let Flows { gflows, rflows, .. } = flows;
    // drops
    let mut dropped: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (r, rdocs) in regions {
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
                    if let Some(s) = crate::intent::load::did_you_mean(&dr.v, names.iter().copied()) {
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

    dropped
}

/// Which flows and expectations have valid ends (by address, as they are not unique by name).
pub(super) struct Ends<'a> {
    /// Flows whose ends are known groups or networks, not both networks.
    pub(super) flow_ok: BTreeMap<*const RawFlow, bool>,
    /// The expectations of root files.
    pub(super) gexpects: Vec<&'a RawExpect>,
    /// Expectations whose ends are known.
    pub(super) expect_ok: BTreeMap<*const RawExpect, bool>,
}

/// Check every flow's and expectation's ends, once, over the namespaces it can apply in: a
/// name unknown in all of them is an error, a name known only where the item does not apply
/// is not.
pub(super) fn check_ends<'a>(
    flows: &Flows<'a>,
    global: &[&'a RawDoc],
    regions: &BTreeMap<String, Vec<&'a RawDoc>>,
    gns: &Ns<'a>,
    nss: &BTreeMap<String, Ns<'a>>,
    diags: &mut Diags,
) -> Ends<'a> {
    let Flows {
        gflow_list, rflows, ..
    } = flows;
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
                if let Some(s) = crate::intent::load::did_you_mean(&e.v, cands) {
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
    for f in gflow_list {
        let spaces: Vec<&Ns> = nss
            .iter()
            .filter(|(d, _)| {
                f.deployments
                    .as_ref()
                    .is_none_or(|ds| ds.iter().any(|x| &x.v == *d))
            })
            .map(|(_, ns)| ns)
            .chain(std::iter::once(gns))
            .collect();
        let ok = match (&f.from, &f.to) {
            (Some(a), Some(b)) => check_ends(format!("flow `{}`", f.name.v), a, b, &spaces, diags),
            _ => false,
        };
        flow_ok.insert(*f as *const RawFlow, ok);
    }
    for (r, fl) in rflows {
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
    let gexpects: Vec<&RawExpect> = global.iter().flat_map(|d| d.expects.iter()).collect();
    let mut expect_ok: BTreeMap<*const RawExpect, bool> = BTreeMap::new();
    for e in &gexpects {
        let mut spaces: Vec<&Ns> = nss.values().collect();
        spaces.push(gns);
        let ok = check_ends("an expectation".into(), &e.from, &e.to, &spaces, diags);
        expect_ok.insert(*e as *const _, ok);
    }
    for (r, rdocs) in regions {
        let Some(ns) = nss.get(r) else { continue };
        for e in rdocs.iter().flat_map(|d| d.expects.iter()) {
            let ok = check_ends("an expectation".into(), &e.from, &e.to, &[ns], diags);
            expect_ok.insert(e as *const _, ok);
        }
    }

    Ends {
        flow_ok,
        gexpects,
        expect_ok,
    }
}
