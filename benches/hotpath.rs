//! Benchmark of everything on the plan's hot path except the exhaustive check:
//! `cargo bench --bench hotpath`.
//!
//! Generates, in a scratch directory, an estate shaped like issue 7's (N flows, N×0.15
//! groups, N×0.1 networks of 40 mixed-length prefixes, 64 services of 3 tokens, 10% denies,
//! one deployment on all three clouds) and an AWS snapshot whose managed SG holds one
//! permission with R IpRanges (half described as intentwall's, half hand-made; all owned
//! with the SG, so the plan deletes every one the intent does not produce), then
//! times each stage on its own: intent load, snapshot load, translation per cloud, compose +
//! diff + apply, plan rendering (human, JSON) and snapshot rendering.
//!
//! `BENCH_FLOWS` (default 2000) and `BENCH_RANGES` (default 40000) set the sizes,
//! `BENCH_GROUPS` overrides the group count (few groups = many flows and denies per security
//! group, the worst case of AWS deny compilation). No timing assertions: figures are for the
//! closing notes and for spotting regressions by eye.

use intentwall::diff;
use intentwall::intent::{load, LoadOptions};
use intentwall::plan::{compose, Plan, TargetPlan, FORMAT_VERSION};
use intentwall::report::{render_plan, Format};
use intentwall_contract::ProviderKind;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

mod proc;
use proc::peak_rss_kib;

/// xorshift64: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A prefix of mixed length, host bits clear: mostly IPv4 (private and public), some IPv6.
fn prefix(r: &mut Rng) -> String {
    if r.below(8) == 0 {
        let len = 48 + r.below(81) as u32; // /48../128
        let a: u128 = (0x2001_0db8u128 << 96) | ((r.next() as u128) << 32) | r.next() as u128;
        let mask = if len == 128 {
            u128::MAX
        } else {
            !(u128::MAX >> len)
        };
        format!("\"{}/{len}\"", std::net::Ipv6Addr::from(a & mask))
    } else {
        let len = 12 + r.below(21) as u32; // /12../32
        let a = r.next() as u32;
        let mask = if len == 32 {
            u32::MAX
        } else {
            !(u32::MAX >> len)
        };
        format!("{}/{len}", std::net::Ipv4Addr::from(a & mask))
    }
}

/// Write the intent files of the generated estate.
fn write_intent(dir: &Path, flows: usize) {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let groups = env("BENCH_GROUPS", (flows * 15 / 100).max(2)).max(2);
    let networks = (flows / 10).max(1);
    let mut s = String::from("version: 1\ndeployments:\n  d0:\n");
    s.push_str("    aws: { account: \"111122223333\", region: us-east-1, vpc: vpc-0bench, cidr: 10.0.0.0/8, cidr6: \"2001:db8::/32\" }\n");
    s.push_str("    azure: { subscription: 00000000-0000-0000-0000-000000000000, resource_group: rg-bench, location: eastus, nsg: nsg-bench, vnet_cidr: 10.0.0.0/8 }\n");
    s.push_str("    gcp: { project: bench, network: bench, cidr: 10.0.0.0/8 }\n");
    s.push_str("networks:\n");
    for n in 0..networks {
        let items: Vec<String> = (0..40).map(|_| prefix(&mut r)).collect();
        let _ = writeln!(s, "  net{n}: [{}]", items.join(", "));
    }
    s.push_str("services:\n");
    for k in 0..64 {
        let p = 1000 + 10 * k;
        let _ = writeln!(
            s,
            "  svc{k}: [tcp/{p}, udp/{}, tcp/{}-{}]",
            p + 1,
            20000 + 100 * k,
            20000 + 100 * k + 50
        );
    }
    s.push_str("groups:\n");
    for g in 0..groups {
        // every tenth group is restricted with declared addresses (GCP egress needs them)
        if g % 10 == 0 {
            let _ = writeln!(
                s,
                "  g{g}: {{ egress: restricted, addresses: {{ d0: [10.{}.{}.0/24] }} }}",
                g / 256,
                g % 256
            );
        } else {
            let _ = writeln!(s, "  g{g}: {{}}");
        }
    }
    s.push_str("flows:\n");
    for f in 0..flows {
        let to = format!("g{}", r.below(groups as u64));
        let svc = format!("svc{}", r.below(64));
        if f % 10 == 0 {
            let from = format!("net{}", r.below(networks as u64));
            let _ = writeln!(
                s,
                "  - {{ name: f{f}, action: deny, from: {from}, to: {to}, services: [{svc}] }}"
            );
        } else if f % 3 == 0 {
            let from = format!("g{}", r.below(groups as u64));
            let _ = writeln!(
                s,
                "  - {{ name: f{f}, from: {from}, to: {to}, services: [{svc}] }}"
            );
        } else {
            let from = format!("net{}", r.below(networks as u64));
            let _ = writeln!(
                s,
                "  - {{ name: f{f}, from: {from}, to: {to}, services: [{svc}] }}"
            );
        }
    }
    std::fs::write(dir.join("intentwall.yaml"), s).expect("write intent");
}

/// An AWS snapshot: managed SG `iw-g1` with one ingress permission of `ranges` IpRanges,
/// every other one described as intentwall's (the description names a flow; the SG's tag
/// makes them all ours).
fn aws_snapshot(ranges: usize) -> String {
    let mut items = Vec::with_capacity(ranges);
    for i in 0..ranges {
        let a = 0x0b00_0000u32 + i as u32; // 11.0.0.0 onwards, one /32 each
        let ip = std::net::Ipv4Addr::from(a);
        let desc = if i % 2 == 0 {
            format!("intentwall:old-{i}")
        } else {
            "added by hand".to_string()
        };
        items.push(serde_json::json!({"CidrIp": format!("{ip}/32"), "Description": desc}));
    }
    let doc = serde_json::json!({"SecurityGroups": [{
        "GroupName": "iw-g1",
        "GroupId": "sg-0123456789abcdef0",
        "Description": "intentwall group g1",
        "VpcId": "vpc-0bench",
        "Tags": [{"Key": "managed-by", "Value": "intentwall"}, {"Key": "intentwall:group", "Value": "g1"}],
        "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": items}],
        "IpPermissionsEgress": []
    }]});
    serde_json::to_string_pretty(&doc).expect("JSON")
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let flows = env("BENCH_FLOWS", 2000);
    let ranges = env("BENCH_RANGES", 40000);
    let dir = tempfile::tempdir().expect("scratch dir");
    let intents = dir.path().join("intents");
    std::fs::create_dir_all(&intents).expect("mkdir");
    write_intent(&intents, flows);
    let snapshot = aws_snapshot(ranges);
    println!(
        "estate: {flows} flows, AWS snapshot of {ranges} IpRanges ({:.1} MB)",
        snapshot.len() as f64 / 1e6
    );

    let t = Instant::now();
    let intent = load(
        &intents,
        &LoadOptions {
            today: time::macros::date!(2026 - 11 - 22),
        },
    )
    .unwrap_or_else(|d| panic!("generated intent must load:\n{d}"))
    .intent;
    println!("{:<34} {:>10.1} ms", "load intent (YAML)", ms(t));
    let dep = &intent.deployments["d0"];

    let mut targets = Vec::new();
    for kind in ProviderKind::ALL {
        let provider = intentwall::backend::require(kind).expect("all clouds built in");
        let t = Instant::now();
        let di = intentwall::graph::resolve(dep, kind).expect("placement");
        println!(
            "{:<34} {:>10.1} ms  ({} leaf flows)",
            format!("{kind}: resolve"),
            ms(t),
            di.flows.len()
        );
        let observed = if kind == ProviderKind::Aws {
            let t = Instant::now();
            let s = intentwall::backend::format(kind)
                .unwrap()
                .parse_snapshot(&snapshot, &di)
                .expect("snapshot parses");
            println!(
                "{:<34} {:>10.1} ms  ({} objects)",
                format!("{kind}: load snapshot"),
                ms(t),
                s.objects.len()
            );
            s
        } else {
            Default::default()
        };
        let t = Instant::now();
        let tr = provider.translate(&di, &observed);
        println!(
            "{:<34} {:>10.1} ms  ({} objects, {} findings)",
            format!("{kind}: translate"),
            ms(t),
            tr.objects.len(),
            tr.findings.len()
        );
        let t = Instant::now();
        let findings = tr.findings;
        let desired = compose(&observed, tr.objects, false);
        let compose_ms = ms(t);
        let t = Instant::now();
        let (changes, unchanged) = diff::diff_owned(provider, &observed, desired);
        let diff_ms = ms(t);
        let t = Instant::now();
        let after = diff::apply_changes(&observed, &changes);
        let apply_ms = ms(t);
        println!(
            "{:<34} {:>10.1} ms  ({} changes, {} unchanged; compose {compose_ms:.0}, diff {diff_ms:.0}, apply {apply_ms:.0})",
            format!("{kind}: compose + diff + apply"),
            compose_ms + diff_ms + apply_ms,
            changes.len(),
            unchanged
        );
        let t = Instant::now();
        let doc = intentwall::backend::format(kind)
            .unwrap()
            .render_snapshot(&after);
        println!(
            "{:<34} {:>10.1} ms  ({:.1} MB)",
            format!("{kind}: render snapshot"),
            ms(t),
            doc.len() as f64 / 1e6
        );
        let managed = |s: &intentwall_contract::NativeState| {
            s.objects
                .iter()
                .filter(|o| o.managed && !o.container)
                .count()
        };
        targets.push(TargetPlan {
            deployment: dep.name.clone(),
            provider: kind,
            placement: Default::default(),
            snapshot: dir.path().join(format!("{kind}.json")),
            existed: kind == ProviderKind::Aws,
            fingerprint: "bench".into(),
            managed_rules_before: managed(&observed),
            managed_rules_after: managed(&after),
            blocked: !findings.is_empty(),
            changes,
            unchanged,
            simulation: Default::default(),
            findings,
            after,
            handed_out: None,
        });
    }
    let plan = Plan {
        format_version: FORMAT_VERSION,
        intent_digest: intent.digest.clone(),
        prune_unmanaged: false,
        guardrails: Vec::new(),
        targets,
    };
    for (name, f) in [("human", Format::Human), ("json", Format::Json)] {
        let t = Instant::now();
        let out = render_plan(&plan, f);
        println!(
            "{:<34} {:>10.1} ms  ({:.1} MB)",
            format!("render plan ({name})"),
            ms(t),
            out.len() as f64 / 1e6
        );
    }
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
}
