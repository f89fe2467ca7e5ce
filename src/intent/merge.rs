//! Raw per-file documents -> one effective [`Deployment`] per deployment.
//!
//! Scoping: root files form the *global* namespace; `regions/<d>/*.yaml` extend it for
//! deployment `d` only. Global definitions (networks, services, groups) may only name global
//! things; region definitions may name both. A global flow or expectation applies in every
//! deployment whose namespace has both its ends, unless restricted by `deployments:` or
//! dropped by the region. The result never depends on file order: documents are sorted
//! by path first, every definition is keyed by name, and duplicates are errors.

mod build;
mod flows;
mod scope;

use super::load::{RawDeployment, RawDoc, Sp};
use super::model::{Deployment, Loc};
use crate::diag::Diagnostic;
use scope::Ns;
use std::collections::BTreeMap;

type Diags = Vec<Diagnostic>;

/// Merge all documents; problems go to `diags`. The steps run in this order because each
/// reads what the ones before settled: names need the deployments, flows need the names,
/// the effective deployments need every check (and some warnings speak only when no step
/// before found an error).
pub(crate) fn merge(docs: &[RawDoc], diags: &mut Diags) -> BTreeMap<String, Deployment> {
    let mut docs: Vec<&RawDoc> = docs.iter().collect();
    docs.sort_by(|a, b| a.file.cmp(&b.file));
    let global: Vec<&RawDoc> = docs
        .iter()
        .copied()
        .filter(|d| d.region.is_none())
        .collect();
    let deps = deployments(&global, diags);
    let dep_names: Vec<&str> = deps.keys().map(String::as_str).collect();
    let regions = regions(&docs, &deps, &dep_names, diags);
    let (gns, nss) = namespaces(&global, &regions, &deps, diags);
    let flows = flows::collect(&global, &regions, diags);
    flows::check_once(&flows, &deps, &dep_names, diags);
    let dropped = flows::drops(&flows, &regions, &deps, diags);
    let ends = flows::check_ends(&flows, &global, &regions, &gns, &nss, diags);
    build::deployments(
        &build::Settled {
            deps: &deps,
            regions: &regions,
            nss: &nss,
            flows: &flows,
            dropped: &dropped,
            ends: &ends,
        },
        diags,
    )
}

/// The deployments declared in root files, by name; a name declared twice is an error.
fn deployments<'a>(
    global: &[&'a RawDoc],
    diags: &mut Diags,
) -> BTreeMap<String, &'a RawDeployment> {
    // deployments
    let mut deps: BTreeMap<String, &RawDeployment> = BTreeMap::new();
    for d in global {
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
    deps
}

/// Region documents by region directory; a directory that names no deployment is an error.
fn regions<'a>(
    docs: &[&'a RawDoc],
    deps: &BTreeMap<String, &RawDeployment>,
    dep_names: &[&str],
    diags: &mut Diags,
) -> BTreeMap<String, Vec<&'a RawDoc>> {
    // region directories
    let mut regions: BTreeMap<String, Vec<&RawDoc>> = BTreeMap::new();
    for d in docs {
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

    regions
}

/// The global namespace, and each deployment's: the global one extended by its region's
/// definitions.
fn namespaces<'a>(
    global: &[&'a RawDoc],
    regions: &BTreeMap<String, Vec<&'a RawDoc>>,
    deps: &BTreeMap<String, &'a RawDeployment>,
    diags: &mut Diags,
) -> (Ns<'a>, BTreeMap<String, Ns<'a>>) {
    // namespaces
    let mut gns = Ns::default();
    gns.extend(global, None, deps, diags);
    let mut nss: BTreeMap<String, Ns> = BTreeMap::new();
    for name in deps.keys() {
        let mut ns = gns.clone();
        if let Some(rdocs) = regions.get(name) {
            ns.extend(rdocs, Some(name), deps, diags);
        }
        nss.insert(name.clone(), ns);
    }

    (gns, nss)
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
    fn a_token_with_the_wrong_separator_suggests_the_token() {
        for (written, meant) in [
            ("tcp:8443", "tcp/8443"),
            ("udp 53", "udp/53"),
            ("tcp:80-81", "tcp/80-81"),
        ] {
            let d = run(&[(
                "regions/us/r.yaml",
                &format!("version: 1\ngroups:\n  reporting: {{}}\nflows:\n  - {{ name: x, from: web, to: api, services: ['{written}'] }}\n"),
            )])
            .unwrap_err()
            .to_string();
            assert!(d.contains(&format!("unknown service `{written}`")), "{d}");
            assert!(d.contains(&format!("did you mean `{meant}`?")), "{d}");
        }
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
