//! A deterministic synthetic estate for the scale benchmarks (`benches/scale.rs`).
//!
//! Shape, for N flows (the shape the scale targets are stated in, so figures compare across
//! runs and machines):
//! - 6 deployments × 3 clouds (aws, azure, gcp), each placement with its own /13 inside
//!   10.0.0.0/8 (18 distinct CIDRs);
//! - ⌈N×0.15⌉ leaf groups, each with a /26 of declared `addresses` in every placement (so a
//!   flow log can attribute its addresses to groups; the first /26 of each placement belongs to
//!   no group and stays *unattributed* space);
//! - ⌈N×0.1⌉ networks of 40 distinct IPv4 prefixes, lengths /8../32 mixed (about 5% /8-/15,
//!   25% /16-/23, 70% /24-/32), host bits clear, mostly public space; about 3% of prefixes fall
//!   inside a placement's CIDR, as real partner and office ranges sometimes do;
//! - 64 services of 3 distinct tcp/udp tokens (single ports and ranges). No ICMP: Azure and GCP
//!   cannot select ICMP types, so typed ICMP would only add findings, not work;
//! - N flows: every 10th is a deny (exactly 10%), always network → group, because AWS compiles
//!   those by CIDR subtraction while a deny between two groups is inexpressible there; the
//!   allows are half network → group, half group → group (network → network is invalid).
//!
//! No network is world-open, no group is `sensitive` and no service touches an admin or data
//! port, so the built-in guardrails never block the plan: the benchmark measures the work, not
//! a guardrail refusal. Every flow is global, so each of the 18 targets sees all N flows.
//!
//! The same estate is also written as an Aerleon policy for its GCE generator (one policy per
//! deployment, one term per flow and protocol, groups as network tags), for a side-by-side
//! comparison, and as an AWS VPC flow log for the replay benchmark.
//!
//! Everything comes from one seeded xorshift generator: the same (N, seed) gives byte-identical
//! files on every machine.

#![allow(dead_code)] // shared by bench targets that each use a part

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::fs;
use std::io::{self, BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::Path;

/// Deployment names (one logical region each).
pub const DEPLOYMENTS: [&str; 6] = ["us", "eu", "ap", "sa", "ca", "af"];
/// The clouds of every deployment, in placement order.
pub const CLOUDS: [&str; 3] = ["aws", "azure", "gcp"];
const AWS_REGIONS: [&str; 6] = [
    "us-east-1",
    "eu-west-1",
    "ap-southeast-1",
    "sa-east-1",
    "ca-central-1",
    "af-south-1",
];
const AZURE_LOCATIONS: [&str; 6] = [
    "eastus",
    "westeurope",
    "southeastasia",
    "brazilsouth",
    "canadacentral",
    "southafricanorth",
];
/// The guardrail's admin and data ports: no generated service covers one.
pub const ADMIN_PORTS: [u16; 15] = [
    22, 3389, 5432, 3306, 1433, 6379, 27017, 9200, 9300, 11211, 2379, 5984, 8086, 9042, 5601,
];
/// Ports real services use, mixed into the random ones so services overlap as they do.
const COMMON_PORTS: [u16; 18] = [
    80, 443, 8080, 8443, 53, 123, 25, 587, 993, 9090, 3000, 5000, 6443, 8000, 8888, 9000, 514, 161,
];
pub const PREFIXES_PER_NETWORK: usize = 40;
pub const SERVICES: usize = 64;
pub const TOKENS_PER_SERVICE: usize = 3;
/// Length of each placement's CIDR.
const PLACEMENT_LEN: u8 = 13;
/// Length of each group's declared range in a placement.
const GROUP_LEN: u8 = 26;
/// Today's date for the plan (no exception expires; fixed so runs are reproducible).
pub const TODAY: &str = "2026-11-22";

/// xorshift64* (Vigna): tiny, fast and good enough to shape test data; not cryptographic.
pub struct Rng(u64);

impl Rng {
    /// Any seed works (zero included): it is scrambled into a non-zero state.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (the modulo bias is irrelevant at these sizes).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

/// An IPv4 prefix with its host bits clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: u32,
    pub len: u8,
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

impl Prefix {
    pub fn new(addr: u32, len: u8) -> Self {
        Prefix {
            addr: addr & mask(len),
            len,
        }
    }

    /// A uniformly random address inside.
    pub fn host(&self, rng: &mut Rng) -> u32 {
        self.addr | (rng.next() as u32 & !mask(self.len))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.len)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// IANA protocol number (flow logs carry numbers).
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// One service token: a protocol and a port range (`lo == hi` for a single port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Token {
    pub proto: Proto,
    pub lo: u16,
    pub hi: u16,
}

impl Token {
    /// The ports as Aerleon writes them (`443` or `8000-8099`).
    pub fn ports(&self) -> String {
        if self.lo == self.hi {
            self.lo.to_string()
        } else {
            format!("{}-{}", self.lo, self.hi)
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.proto.name(), self.ports())
    }
}

/// The source of a flow (the destination is always a group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Network(usize),
    Group(usize),
}

#[derive(Clone, Debug)]
pub struct Flow {
    pub deny: bool,
    pub from: End,
    pub to: usize,
    pub service: usize,
}

/// A generated estate: indices name networks `n0000`, groups `g0000`, services `s00`,
/// flows `f00000`.
pub struct Estate {
    pub networks: Vec<Vec<Prefix>>,
    pub services: Vec<Vec<Token>>,
    pub groups: usize,
    pub flows: Vec<Flow>,
}

pub fn network_name(i: usize) -> String {
    format!("n{i:04}")
}
pub fn group_name(i: usize) -> String {
    format!("g{i:04}")
}
pub fn service_name(i: usize) -> String {
    format!("s{i:02}")
}
pub fn flow_name(i: usize) -> String {
    format!("f{i:05}")
}

/// Placement index of (deployment, cloud): 0..18.
fn placement(dep: usize, cloud: usize) -> usize {
    dep * CLOUDS.len() + cloud
}

/// The CIDR of a placement: 10.(8k).0.0/13.
pub fn placement_cidr(dep: usize, cloud: usize) -> Prefix {
    let k = placement(dep, cloud) as u32;
    Prefix::new((10 << 24) | ((k * 8) << 16), PLACEMENT_LEN)
}

/// A group's declared range in a placement (the placement's first /26 is left to no group).
pub fn group_range(dep: usize, cloud: usize, group: usize) -> Prefix {
    let base = placement_cidr(dep, cloud);
    let size = 1u32 << (32 - GROUP_LEN);
    Prefix::new(base.addr + (group as u32 + 1) * size, GROUP_LEN)
}

/// Groups that fit in one placement's CIDR.
pub fn max_groups() -> usize {
    (1usize << (GROUP_LEN - PLACEMENT_LEN)) - 1
}

fn random_prefix(rng: &mut Rng) -> Prefix {
    if rng.below(100) < 3 {
        // inside one of the placements: a partner or office range overlapping our space
        let p = placement_cidr(rng.below(6) as usize, rng.below(3) as usize);
        let len = rng.range(16, 32) as u8;
        return Prefix::new(p.host(rng), len);
    }
    let len = match rng.below(100) {
        0..=4 => rng.range(8, 15),
        5..=29 => rng.range(16, 23),
        _ => rng.range(24, 32),
    } as u8;
    loop {
        let p = Prefix::new(rng.next() as u32, len);
        let first = p.addr >> 24;
        // public unicast only: not 0/8, 10/8 (our space), 127/8, multicast or class E
        if first != 0 && first != 10 && first != 127 && first < 224 {
            return p;
        }
    }
}

fn random_token(rng: &mut Rng) -> Token {
    loop {
        let proto = if rng.below(4) == 0 {
            Proto::Udp
        } else {
            Proto::Tcp
        };
        let lo = if rng.below(100) < 30 {
            COMMON_PORTS[rng.below(COMMON_PORTS.len() as u64) as usize]
        } else {
            rng.range(1024, 65535) as u16
        };
        let hi = if rng.below(100) < 30 {
            (lo as u64 + rng.range(1, 200)).min(65535) as u16
        } else {
            lo
        };
        if ADMIN_PORTS.iter().any(|p| (lo..=hi).contains(p)) {
            continue;
        }
        return Token { proto, lo, hi };
    }
}

impl Estate {
    /// The estate of `flows` flows from `seed`.
    pub fn generate(flows: usize, seed: u64) -> Estate {
        let mut rng = Rng::new(seed);
        let groups = ((flows as f64 * 0.15).ceil() as usize).max(2);
        let nets = ((flows as f64 * 0.1).ceil() as usize).max(1);
        assert!(
            groups <= max_groups(),
            "{flows} flows need {groups} groups; a placement holds at most {}",
            max_groups()
        );
        let networks = (0..nets)
            .map(|_| {
                let mut set = BTreeSet::new();
                while set.len() < PREFIXES_PER_NETWORK {
                    set.insert(random_prefix(&mut rng));
                }
                // keep generation order out of it: sorted, like a reviewed file
                set.into_iter().collect()
            })
            .collect();
        let services = (0..SERVICES)
            .map(|_| {
                let mut set = BTreeSet::new();
                while set.len() < TOKENS_PER_SERVICE {
                    set.insert(random_token(&mut rng));
                }
                set.into_iter().collect()
            })
            .collect();
        let flows = (0..flows)
            .map(|i| {
                let deny = i % 10 == 9;
                let from = if deny || rng.below(2) == 0 {
                    End::Network(rng.below(nets as u64) as usize)
                } else {
                    End::Group(rng.below(groups as u64) as usize)
                };
                let mut to = rng.below(groups as u64) as usize;
                if from == End::Group(to) {
                    to = (to + 1) % groups;
                }
                Flow {
                    deny,
                    from,
                    to,
                    service: rng.below(SERVICES as u64) as usize,
                }
            })
            .collect();
        Estate {
            networks,
            services,
            groups,
            flows,
        }
    }

    /// One line for logs: how big the estate is.
    pub fn describe(&self) -> String {
        let denies = self.flows.iter().filter(|f| f.deny).count();
        format!(
            "{} flows ({} deny), {} groups, {} networks × {} prefixes, {} services × {} tokens, {} deployments × {} clouds",
            self.flows.len(),
            denies,
            self.groups,
            self.networks.len(),
            PREFIXES_PER_NETWORK,
            self.services.len(),
            TOKENS_PER_SERVICE,
            DEPLOYMENTS.len(),
            CLOUDS.len()
        )
    }

    /// Write the intent repository (`intentwall.yaml`, `networks.yaml`, `services.yaml`,
    /// `groups.yaml`, `flows.yaml`) into `dir`, which must exist.
    pub fn write_intents(&self, dir: &Path) -> io::Result<()> {
        let mut s = String::from(
            "# generated by benches/estate: 6 deployments × 3 clouds\nversion: 1\ndeployments:\n",
        );
        for (d, dep) in DEPLOYMENTS.iter().enumerate() {
            let k = |c| placement(d, c) + 1;
            let _ = writeln!(s, "  {dep}:");
            let _ = writeln!(
                s,
                "    aws: {{ account: \"{:012}\", region: {}, vpc: vpc-{:017x}, cidr: {} }}",
                100_000_000_000u64 + k(0) as u64,
                AWS_REGIONS[d],
                k(0),
                placement_cidr(d, 0)
            );
            let _ = writeln!(
                s,
                "    azure: {{ subscription: 00000000-0000-4000-8000-{:012x}, resource_group: rg-bench-{dep}, location: {}, nsg: nsg-bench-{dep}, vnet_cidr: {} }}",
                k(1),
                AZURE_LOCATIONS[d],
                placement_cidr(d, 1)
            );
            let _ = writeln!(
                s,
                "    gcp: {{ project: bench-{dep}, network: bench-{dep}, cidr: {} }}",
                placement_cidr(d, 2)
            );
        }
        fs::write(dir.join("intentwall.yaml"), s)?;

        let mut s = String::from("version: 1\nnetworks:\n");
        for (i, n) in self.networks.iter().enumerate() {
            let list: Vec<String> = n.iter().map(|p| p.to_string()).collect();
            let _ = writeln!(s, "  {}: [{}]", network_name(i), list.join(", "));
        }
        fs::write(dir.join("networks.yaml"), s)?;

        let mut s = String::from("version: 1\nservices:\n");
        for (i, t) in self.services.iter().enumerate() {
            let list: Vec<String> = t.iter().map(|t| t.to_string()).collect();
            let _ = writeln!(s, "  {}: [{}]", service_name(i), list.join(", "));
        }
        fs::write(dir.join("services.yaml"), s)?;

        let mut s = String::from("version: 1\ngroups:\n");
        for g in 0..self.groups {
            let _ = writeln!(s, "  {}:\n    addresses:", group_name(g));
            for (d, dep) in DEPLOYMENTS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "      {dep}: {{ aws: [{}], azure: [{}], gcp: [{}] }}",
                    group_range(d, 0, g),
                    group_range(d, 1, g),
                    group_range(d, 2, g)
                );
            }
        }
        fs::write(dir.join("groups.yaml"), s)?;

        let mut s = String::from("version: 1\nflows:\n");
        for (i, f) in self.flows.iter().enumerate() {
            let from = match f.from {
                End::Network(n) => network_name(n),
                End::Group(g) => group_name(g),
            };
            let action = if f.deny { "action: deny, " } else { "" };
            let _ = writeln!(
                s,
                "  - {{ name: {}, {action}from: {from}, to: {}, services: [{}] }}",
                flow_name(i),
                group_name(f.to),
                service_name(f.service)
            );
        }
        fs::write(dir.join("flows.yaml"), s)
    }

    /// Write the Aerleon input for the GCE generator into `dir`: `def/networks.yaml`,
    /// `def/services.yaml` and `policies/pol/<deployment>.yaml`, one filter per deployment
    /// (its VPC network), one term per flow and protocol in flow order, groups as `iw-<group>`
    /// network tags (source-tag / destination-tag, as intentwall names them on GCP), every
    /// term at priority 1000 like intentwall's GCP rules (deny wins ties on GCP), and a
    /// closing default deny.
    pub fn write_aerleon(&self, dir: &Path) -> io::Result<()> {
        let def = dir.join("def");
        let pol = dir.join("policies").join("pol");
        fs::create_dir_all(&def)?;
        fs::create_dir_all(&pol)?;

        let mut s = String::from("networks:\n");
        for (i, n) in self.networks.iter().enumerate() {
            let _ = writeln!(s, "  {}:\n    values:", network_name(i));
            for p in n {
                let _ = writeln!(s, "      - address: {p}");
            }
        }
        fs::write(def.join("networks.yaml"), s)?;

        let mut s = String::from("services:\n");
        for (i, ts) in self.services.iter().enumerate() {
            let _ = writeln!(s, "  {}:", service_name(i));
            for t in ts {
                let _ = writeln!(
                    s,
                    "    - port: {}\n      protocol: {}",
                    t.ports(),
                    t.proto.name()
                );
            }
        }
        fs::write(def.join("services.yaml"), s)?;

        for dep in DEPLOYMENTS {
            let mut s = String::new();
            let _ = writeln!(
                s,
                "filters:\n  - header:\n      comment: \"intentwall scale estate, deployment {dep}\"\n      targets:\n        gce: bench-{dep} INGRESS bench-{dep}\n    terms:"
            );
            for (i, f) in self.flows.iter().enumerate() {
                let protos: BTreeSet<Proto> =
                    self.services[f.service].iter().map(|t| t.proto).collect();
                for p in &protos {
                    // a term with `protocol: tcp udp` would get every port of the service on
                    // both protocols (Aerleon crosses protocols with ports), so a service that
                    // mixes them becomes one term per protocol, each taking its own ports
                    let name = if protos.len() > 1 {
                        format!("{}-{}", flow_name(i), p.name())
                    } else {
                        flow_name(i)
                    };
                    let _ = writeln!(s, "      - name: {name}");
                    match f.from {
                        End::Network(n) => {
                            let _ = writeln!(s, "        source-address: {}", network_name(n));
                        }
                        End::Group(g) => {
                            let _ = writeln!(s, "        source-tag: iw-{}", group_name(g));
                        }
                    }
                    let _ = writeln!(
                        s,
                        "        destination-tag: iw-{}\n        protocol: {}\n        destination-port: {}\n        priority: 1000\n        action: {}",
                        group_name(f.to),
                        p.name(),
                        service_name(f.service),
                        if f.deny { "deny" } else { "accept" }
                    );
                }
            }
            let _ = writeln!(s, "      - name: default-deny\n        action: deny");
            fs::write(pol.join(format!("{dep}.yaml")), s)?;
        }
        Ok(())
    }

    /// Write an AWS VPC flow log (default v2 text format, with its header line) of `records`
    /// records over the AWS placements of every deployment: ~60% packets of allow flows (a
    /// quarter of those logged in the reply direction), ~15% packets of deny flows, ~25%
    /// random public hosts probing random group members on random ports.
    ///
    /// Every record is logged `ACCEPT`, which is what the intent says for nearly all: flow
    /// logs carry no direction, a record counts as allowed when it is allowed as sent *or* as
    /// the reply of an allowed flow, and no generated group restricts its egress, so the reply
    /// direction of a record with one member end is always allowed. (A rare record whose
    /// source prefix lies inside a placement can have both ends in group ranges; it is then
    /// reported as drift evidence, which does not block.) The mix still makes the replay do both
    /// halves of the work (~40% of records are denied as sent and allowed only as replies)
    /// without flooding the report with drift evidence.
    pub fn write_aws_flow_log(&self, path: &Path, records: usize, seed: u64) -> io::Result<()> {
        let mut rng = Rng::new(seed ^ 0xF10_F10);
        let allows: Vec<&Flow> = self.flows.iter().filter(|f| !f.deny).collect();
        let denies: Vec<&Flow> = self.flows.iter().filter(|f| f.deny).collect();
        let mut w = BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
        writeln!(
            w,
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
        )?;
        let start = 1_763_800_000u64;
        for i in 0..records {
            let d = rng.below(DEPLOYMENTS.len() as u64) as usize;
            let k = placement(d, 0) + 1;
            let roll = rng.below(100);
            let pick = |rng: &mut Rng, v: &[&Flow]| -> Option<Flow> {
                (!v.is_empty()).then(|| v[rng.below(v.len() as u64) as usize].clone())
            };
            let flow = match roll {
                0..=59 => pick(&mut rng, &allows),
                60..=74 => pick(&mut rng, &denies),
                _ => None,
            };
            let (src, dst, proto, dport) = match flow {
                Some(f) => {
                    let src = match f.from {
                        End::Network(n) => {
                            let ps = &self.networks[n];
                            ps[rng.below(ps.len() as u64) as usize].host(&mut rng)
                        }
                        End::Group(g) => group_range(d, 0, g).host(&mut rng),
                    };
                    let dst = group_range(d, 0, f.to).host(&mut rng);
                    let ts = &self.services[f.service];
                    let t = ts[rng.below(ts.len() as u64) as usize];
                    let port = rng.range(t.lo as u64, t.hi as u64) as u16;
                    (src, dst, t.proto, port)
                }
                None => {
                    let src = random_prefix(&mut rng).host(&mut rng);
                    let dst =
                        group_range(d, 0, rng.below(self.groups as u64) as usize).host(&mut rng);
                    (src, dst, Proto::Tcp, rng.range(1, 65535) as u16)
                }
            };
            let sport = rng.range(32768, 60999) as u16;
            let reply = roll < 15;
            let (src, dst, sport, dport) = if reply {
                (dst, src, dport, sport)
            } else {
                (src, dst, sport, dport)
            };
            let packets = rng.range(1, 40);
            let t0 = start + (i as u64 / 1000);
            writeln!(
                w,
                "2 {:012} eni-{:017x} {} {} {} {} {} {} {} {} {} ACCEPT OK",
                100_000_000_000u64 + k as u64,
                (k as u64) << 32 | rng.below(4096),
                Ipv4Addr::from(src),
                Ipv4Addr::from(dst),
                sport,
                dport,
                proto.number(),
                packets,
                packets * rng.range(60, 1500),
                t0,
                t0 + 60
            )?;
        }
        w.flush()
    }
}
