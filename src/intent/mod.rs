//! The intent language: load the YAML of an intents directory, merge the
//! global files with each deployment's `regions/<deployment>/` overrides, check every name,
//! and give the effective [`Intent`] (one [`Deployment`] per deployment).
//!
//! ```text
//! intents/*.yaml ──load──> raw documents with positions ──merge──> Intent
//! intents/regions/<d>/*.yaml ──┘                                     │
//!                                          guardrails::check(&Intent) ┘──> findings
//! ```
//!
//! - [`load`] walks YAML nodes by hand ([`marked_yaml`]), so every problem carries
//!   `file:line:column`; the loader never stops at the first problem: one run reports every
//!   error, sorted by file, line and column ([`crate::diag`]).
//! - `merge` (internal) is order-independent: files are sorted by path, definitions are keyed
//!   by name, and a name defined twice anywhere in one scope is an error naming both places.
//! - [`guardrails`] checks the built-in guardrails on the effective intent.
//!
//! Decisions the language leaves open, made here:
//! - Every file, region overrides included, must carry `version: 1`.
//! - A CIDR with host bits set (`10.0.0.5/24`) is an **error** whose message gives the
//!   network it would denote (`10.0.0.0/24`): silently truncating could widen or narrow a rule.
//!   A bare address is a `/32` or `/128`.
//! - Global definitions (networks, services, groups) may name only global things; region
//!   definitions may name global things and their own region's. A global flow or expectation
//!   applies in every deployment whose namespace has both its ends; a name unknown in every
//!   namespace it could apply in is an error.
//! - Groups and networks share one namespace (`from`/`to` name either); services have their
//!   own. A service reference is a name from `services:` first, else a token (`tcp/443`).
//! - Where a list is expected, a single value stands for a list of one.
//! - `drop` is only allowed in region overrides and names global flows; `deployments:` is
//!   only allowed on global flows; `deployments:` (the declaration) only in root files.
//! - Exceptions need `reason` and `expires`; an exception is valid until its `expires` day
//!   inclusive. An expired one waives nothing: the flow it covered is a guardrail finding
//!   (exit 3) naming the flow's `file:line` and the expiry date, not a load error, so the
//!   rest of the intent still validates and plans.
//! - A region directory with no `*.yaml` file still has to name a deployment.
//! - Quoted scalars are text: `sensitive: "true"` is not a boolean.
//! - Flows carry their definition's `Loc` (the start of the flow item).
//! - Names and placement values are checked at load ([`names`]): they reach paths, cloud
//!   resource names and policy documents.
//! - Every entry of the intents directory is read, deliberately ignored (hidden entries,
//!   non-YAML files, subdirectories with no YAML file in them) or an error naming its path (`load::read_dir` lists the cases).
//! - A file that cannot be read or parsed reports that one error; the other files still
//!   report their own problems, but cross-file checks (`merge`) wait for a clean read, since
//!   the broken file's names would otherwise come back as a cascade of "unknown" errors.

pub mod guardrails;
pub(crate) mod load;
pub(crate) mod merge;
pub mod model;
pub mod names;

pub use model::*;

use crate::diag::{Diagnostic, Diagnostics};
#[cfg(test)]
use intentwall_contract::AddrSet;
use sha2::{Digest, Sha256};
use std::path::Path;

/// What loading depends on besides the files.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Today, for exception expiry (injectable so tests and plans are reproducible).
    pub today: time::Date,
}

impl LoadOptions {
    /// Options with today's UTC date.
    pub fn now() -> Self {
        LoadOptions {
            today: time::OffsetDateTime::now_utc().date(),
        }
    }
}

/// A successfully loaded intent, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective intent.
    pub intent: Intent,
    /// Warnings (never errors), sorted.
    pub warnings: Diagnostics,
}

/// Load and check the intents directory `dir`. On any error, every diagnostic of the run
/// (errors and warnings, sorted by file, line, column) is returned.
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    let problem = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(format!(
            "intents path {} is a file, not a directory: --intents takes the directory that holds the intent files",
            dir.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "intents directory {} does not exist",
            dir.display()
        )),
        Err(e) => Some(format!(
            "intents directory {} cannot be read: {e}",
            dir.display()
        )),
    };
    if let Some(p) = problem {
        return Err(Diagnostics(vec![Diagnostic::error(None, p)]));
    }
    let files = load::read_dir(dir, &mut diags);
    if files.iter().all(|f| f.region.is_some()) && diags.is_empty() {
        diags.push(Diagnostic::error(
            None,
            format!("no intent files (*.yaml) at the root of {}", dir.display()),
        ));
    }
    finish(files, diags, opts)
}

/// Load from in-memory files (`(path relative to the intents dir, text)`), for tests and
/// tools. Paths under `regions/<d>/` are region overrides.
pub fn load_files(files: &[(String, String)], opts: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let mut diags = Vec::new();
    let mut src: Vec<load::SourceFile> = files
        .iter()
        .map(|(p, t)| {
            let parts: Vec<&str> = p.split('/').collect();
            let region = (parts.len() == 3 && parts[0] == "regions").then(|| parts[1].to_string());
            if let Some(Err(why)) = region.as_deref().map(names::check_name) {
                diags.push(Diagnostic::error(
                    None,
                    format!(
                        "regions/{}: invalid deployment name: {why}",
                        names::quote(parts[1])
                    ),
                ));
            }
            load::SourceFile {
                rel: p.into(),
                region,
                text: t.clone(),
            }
        })
        .collect();
    src.sort_by(|a, b| a.rel.cmp(&b.rel));
    finish(src, diags, opts)
}

/// Digest, parse, merge, sort the diagnostics.
fn finish(
    files: Vec<load::SourceFile>,
    mut diags: Vec<Diagnostic>,
    opts: &LoadOptions,
) -> Result<Loaded, Diagnostics> {
    let mut hasher = Sha256::new();
    for f in files.iter().filter(|f| !load::is_placeholder(f)) {
        let p = f.rel.to_string_lossy().replace('\\', "/");
        hasher.update((p.len() as u64).to_le_bytes());
        hasher.update(p.as_bytes());
        hasher.update((f.text.len() as u64).to_le_bytes());
        hasher.update(f.text.as_bytes());
    }
    let digest = format!("sha256:{}", hex(&hasher.finalize()));
    // an input that could not be read or parsed leaves its names undefined: checking the
    // other files' references would bury its one error under follow-on "unknown" errors, so
    // each file still reports its own problems but cross-file checks wait for a clean read
    let read_ok = !diags.iter().any(Diagnostic::is_error);
    let docs: Vec<load::RawDoc> = files
        .iter()
        .map(|f| load::parse_file(f, &mut diags))
        .collect();
    let mut deployments = if read_ok && !docs.iter().any(|d| d.unparsed) {
        merge::merge(&docs, &mut diags)
    } else {
        Default::default()
    };
    // expiry is judged here, against the injectable clock, and reported by the guardrails
    for f in deployments.values_mut().flat_map(|d| d.flows.iter_mut()) {
        if let Some(ex) = &mut f.exception {
            ex.expired = ex.expires < opts.today;
        }
    }
    let diags = Diagnostics(diags).sorted();
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Loaded {
        intent: Intent {
            digest,
            deployments,
        },
        warnings: diags,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts() -> LoadOptions {
        LoadOptions {
            today: time::macros::date!(2026 - 03 - 15),
        }
    }

    /// The example estate as in-memory files.
    fn example() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("intents");
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "yaml") {
                    let rel = p
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    out.push((rel, std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    /// The effective intent without source positions, flows and expectations sorted: what
    /// must not depend on how the intent is split into files.
    fn normalized(i: &Intent) -> String {
        let blank = || Loc {
            file: "".into(),
            line: 0,
            column: 0,
        };
        let mut deps = i.deployments.clone();
        for d in deps.values_mut() {
            d.clouds.values_mut().for_each(|p| p.loc = blank());
            d.networks.values_mut().for_each(|n| n.loc = blank());
            d.groups.values_mut().for_each(|g| g.loc = blank());
            d.flows.iter_mut().for_each(|f| {
                f.loc = blank();
                if let Some(e) = &mut f.exception {
                    e.at = blank();
                }
            });
            d.expects.iter_mut().for_each(|e| e.loc = blank());
            d.flows.sort_by(|a, b| a.name.cmp(&b.name));
            d.expects.sort_by_key(|e| format!("{e:?}"));
        }
        format!("{deps:#?}")
    }

    #[test]
    fn example_loads_from_memory_like_from_disk() {
        let mem = load_files(&example(), &opts()).unwrap();
        let disk = load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("intents"),
            &opts(),
        )
        .unwrap();
        assert_eq!(mem.intent.digest, disk.intent.digest);
        assert_eq!(normalized(&mem.intent), normalized(&disk.intent));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Shuffling the files, and renaming them (region files within their directory, root
        /// files at the root), gives the same effective intent.
        #[test]
        fn merge_is_order_independent(seed in any::<u64>(), rename in any::<bool>()) {
            let base = example();
            let want = normalized(&load_files(&base, &opts()).unwrap().intent);
            let mut files = base.clone();
            // deterministic shuffle from the seed
            let mut s = seed | 1;
            for i in (1..files.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                files.swap(i, (s % (i as u64 + 1)) as usize);
            }
            if rename {
                for (n, (p, _)) in files.iter_mut().enumerate() {
                    let dir = p.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
                    *p = format!("{dir}f{:02}-{}.yaml", (seed as usize + n * 7) % 97, n);
                }
            }
            let got = load_files(&files, &opts()).unwrap();
            prop_assert!(got.warnings.is_empty());
            prop_assert_eq!(normalized(&got.intent), want);
        }

        /// A CIDR written in a network comes back as exactly its address set; host bits are an
        /// error naming the network.
        #[test]
        fn cidr_roundtrip(addr in any::<u32>(), len in 0u8..=32, v6 in any::<u128>(), len6 in 0u8..=128) {
            let net4 = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(addr), len).unwrap();
            let net6 = ipnet::Ipv6Net::new(std::net::Ipv6Addr::from(v6), len6).unwrap();
            let text = format!(
                "version: 1\ndeployments:\n  us:\n    aws: {{ account: \"111122223333\", region: us-east-1, vpc: vpc-0a1b2c3d, cidr: 10.0.0.0/16 }}\nnetworks:\n  n: [{}, \"{}\"]\ngroups:\n  g: {{}}\nflows:\n  - {{ name: f, from: n, to: g, services: [tcp/443] }}\n",
                net4, net6
            );
            let r = load_files(&[("a.yaml".into(), text)], &opts());
            let exact4 = net4.addr() == net4.network();
            let exact6 = net6.addr() == net6.network();
            match r {
                Ok(l) => {
                    prop_assert!(exact4 && exact6);
                    let n = &l.intent.deployments["us"].networks["n"];
                    let want = AddrSet::from_nets(&[ipnet::IpNet::V4(net4), ipnet::IpNet::V6(net6)]);
                    prop_assert_eq!(&n.addrs, &want);
                }
                Err(d) => {
                    prop_assert!(!(exact4 && exact6));
                    let text = d.to_string();
                    if !exact4 {
                        prop_assert!(text.contains(&format!("the network is `{}`", net4.trunc())), "{}", text);
                        prop_assert!(text.contains("a.yaml:6:7: "), "{}", text);
                    }
                    if !exact6 {
                        prop_assert!(text.contains(&format!("the network is `{}`", net6.trunc())), "{}", text);
                    }
                }
            }
        }

        /// A port range token in a flow comes back as exactly that range; out-of-range and
        /// reversed ranges are errors at the token.
        #[test]
        fn port_roundtrip(a in 0u32..70000, b in 0u32..70000, proto in prop_oneof![Just("tcp"), Just("udp"), Just("sctp")]) {
            let tok = if a == b { format!("{proto}/{a}") } else { format!("{proto}/{a}-{b}") };
            let text = format!(
                "version: 1\ndeployments:\n  us:\n    gcp: {{ project: acme-prod-us, network: n, cidr: 10.0.0.0/16 }}\ngroups:\n  g: {{}}\n  h: {{}}\nflows:\n  - {{ name: f, from: g, to: h, services: [{tok}] }}\n"
            );
            let r = load_files(&[("a.yaml".into(), text)], &opts());
            let valid = a <= 65535 && b <= 65535 && a <= b;
            match r {
                Ok(l) => {
                    prop_assert!(valid);
                    let t = &l.intent.deployments["us"].flows[0].services[0].traffic;
                    let want = intentwall_contract::Traffic::parse(&tok).unwrap();
                    prop_assert_eq!(t, &vec![want.clone()]);
                    prop_assert_eq!(want.ports.ranges(), &[(a as u16, b as u16)]);
                }
                Err(d) => {
                    prop_assert!(!valid);
                    let text = d.to_string();
                    prop_assert!(text.starts_with("error: a.yaml:9:43: invalid service"), "{}", text);
                }
            }
        }
    }
}
