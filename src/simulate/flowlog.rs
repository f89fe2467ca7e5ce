//! Flow-log replay (`intentwall simulate --flows FILE --flow-format ...`): every record of a
//! real flow log is judged by the intent (the oracle) and by the native rules each target
//! would hold after apply, and any disagreement is a blocking mismatch, like the probes and
//! classes of the simulation pass.
//!
//! Formats (pure parsers, never panic; errors name `file:line` and the field): each cloud's
//! log format is parsed by its plugin (the `flowlog` module of each provider crate, reached
//! through [`crate::backend::read_flow_log`]), into the contract's neutral [`FlowRecord`];
//! the format docs are there. The neutral one is here:
//! - `csv`: `deployment,provider,src,dst,protocol,port` with optional `icmp_type,icmp_code,
//!   expected` (allow|deny); empty deployment or provider means "by address"; no quoting.
//!
//! **Streaming.** A log is read record by record ([`read_records`], through the contract's
//! reader) and each record is judged as it is read, keeping only counters and the first few
//! examples: memory does not grow with the log. Line formats (AWS text, CSV, GCP JSON lines)
//! are read one line at a time into one reused buffer; AWS text and CSV are parsed without
//! allocating (fields are byte slices of the line). Two formats are single JSON documents and are read whole: an
//! Azure NSG blob (Azure writes one per NSG and hour) and a GCP JSON array. A malformed record
//! stops the replay at that record, naming its line.
//!
//! **Flow logs carry no group identity.** A record only has addresses, so a host is attributed
//! by address alone: an address inside a group's declared `addresses` (exclusive to its
//! members) is that group's member; an address inside the cloud's space but in no declared
//! range is
//! a member of a group we cannot name, and such records are reported as *unattributed* rather
//! than guessed; any other address is an external host. A record belongs to every target of
//! its cloud whose space or declared addresses contain one of its ends; a record that belongs
//! to none is counted as *outside every deployment*.
//!
//! Records do not say which packet opened a connection: a record is allowed when its packet is
//! allowed as sent *or* as the reply of an allowed flow in the other direction (traffic is
//! stateful on every cloud), on both sides of the comparison. Logs rarely carry ICMP type and
//! code, so an ICMP record without them is checked for every ICMP class the intent and rules
//! can tell apart.
//!
//! **Judging.** Records are judged against a structure compiled once per replay (`decide`):
//! addresses and packets are mapped to equivalence classes by binary search, and verdicts per
//! (target, source class, destination class, packet class) come from class-indexed rule lists
//! through a bounded memo. The oracle and `EvalPolicy::evaluate` only run again to word the
//! first few disagreements of a target (their deciding rule and flows).
//!
//! **Unverifiable records.** A native rule whose match the model does not know exactly
//! (`EvalRule::unknown`: an undeclared Azure service tag, an AWS prefix list absent from the
//! state, a source-port condition) is never judged by its upper bound: such a rule may match a
//! record or not. When the rules' verdict on a record differs between the two (as
//! `PolicyIndex::possible_verdicts` would find), the record is counted as *unverifiable*
//! (`unverifiable` per target and in the summary, with the first few as examples) and is
//! neither an agreement (`checked`) nor a mismatch, nor checked against a CSV row's expected
//! verdict on the rules' side; drift (the log against the intent) is still reported. When the
//! verdict is the same either way, the record is judged as usual.
//!
//! Where the log records the cloud's own action (AWS `ACCEPT`/`REJECT`, Azure `A`/`D`, GCP
//! firewall-log `disposition`), records whose observed action contradicts the intent are
//! reported as drift evidence. They do not block: the log shows the state of the past, and an
//! AWS `REJECT` may also come from a network ACL.

mod decide;
#[cfg(test)]
mod reference;

use crate::error::Error;
use crate::intent::Intent;
use crate::plan::Plan;
use crate::simulate::MISMATCHES_SHOWN;
use decide::{Compiled, Side, Target};
use intentwall_contract::check::packet_classes;
use intentwall_contract::flowlog::{parse_ip, parse_port, utf8, LineFormat, Skips, Step};
use intentwall_contract::oracle::{judge, OracleVerdict};
use intentwall_contract::traffic::proto;
use intentwall_contract::{
    AddrSet, DeploymentIntent, EvalPolicy, Finding, FindingKind, FlowIntent, Host, Packet, Probe,
    ProviderKind, Traffic,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};
use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

pub use intentwall_contract::flowlog::{parse_protocol, FlowLog, FlowRecord, ParseError};

/// How many examples of each kind (unattributed, outside, drift) a report names.
pub const EXAMPLES_SHOWN: usize = 5;

/// Flow-log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FlowFormat {
    /// AWS VPC Flow Logs, default (v2) text format.
    AwsVpc,
    /// Azure NSG flow logs (JSON, version 1 or 2).
    AzureNsg,
    /// GCP VPC flow logs / firewall logs, exported JSON lines or a JSON array.
    Gcp,
    /// `deployment,provider,src,dst,protocol,port[,icmp_type,icmp_code,expected]`.
    Csv,
}

impl FlowFormat {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowFormat::AwsVpc => "aws-vpc",
            FlowFormat::AzureNsg => "azure-nsg",
            FlowFormat::Gcp => "gcp",
            FlowFormat::Csv => "csv",
        }
    }

    /// The cloud whose logs these are (`None`: CSV says per record).
    pub fn cloud(self) -> Option<ProviderKind> {
        match self {
            FlowFormat::AwsVpc => Some(ProviderKind::Aws),
            FlowFormat::AzureNsg => Some(ProviderKind::Azure),
            FlowFormat::Gcp => Some(ProviderKind::Gcp),
            FlowFormat::Csv => None,
        }
    }

    /// The default for a file: `.csv` is CSV; `.json` / `.jsonl` is Azure when it holds
    /// `flowTuples`, else GCP; anything else is AWS VPC text.
    pub fn infer(path: &Path, text: &str) -> FlowFormat {
        Self::by_extension(path, || azure_mark().is_some_and(|m| text.contains(m)))
    }

    /// [`FlowFormat::infer`] for a file on disk, reading it (in chunks, only for `.json` and
    /// the like) rather than holding it.
    pub fn infer_file(path: &Path) -> std::io::Result<FlowFormat> {
        let mut found = Ok(false);
        let f = Self::by_extension(path, || {
            let Some(mark) = azure_mark() else {
                return false;
            };
            found = std::fs::File::open(path).and_then(|f| contains(f, mark.as_bytes()));
            matches!(found, Ok(true))
        });
        found.map(|_| f)
    }

    fn by_extension(path: &Path, azure: impl FnOnce() -> bool) -> FlowFormat {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("csv") => FlowFormat::Csv,
            Some("json") | Some("jsonl") | Some("ndjson") => {
                if azure() {
                    FlowFormat::AzureNsg
                } else {
                    FlowFormat::Gcp
                }
            }
            _ => FlowFormat::AwsVpc,
        }
    }
}

/// What only an Azure NSG flow log holds, when this binary reads them (else no JSON log is
/// taken for one).
fn azure_mark() -> Option<&'static str> {
    crate::backend::flow_log_mark(ProviderKind::Azure)
}

/// Does a stream hold `needle`? Reads 64 KiB at a time, keeping the chunks' overlap.
fn contains(mut r: impl Read, needle: &[u8]) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024 + needle.len()];
    let mut kept = 0;
    loop {
        let n = match r.read(&mut buf[kept..]) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let have = kept + n;
        if buf[..have].windows(needle.len()).any(|w| w == needle) {
            return Ok(true);
        }
        kept = (needle.len() - 1).min(have);
        buf.copy_within(have - kept..have, 0);
    }
}

impl fmt::Display for FlowFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parse a whole flow log into records (for tests and small logs: [`replay_reader`] streams).
pub fn parse(format: FlowFormat, file: &str, text: &str) -> Result<FlowLog, ParseError> {
    let mut records = Vec::new();
    let skipped = read_records(format, file, text.as_bytes(), |r| {
        records.push(r.clone());
        Ok::<(), ParseError>(())
    })?;
    Ok(FlowLog { records, skipped })
}

/// CSV: `deployment,provider,src,dst,protocol,port[,icmp_type,icmp_code,expected]`.
pub fn parse_csv(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    parse(FlowFormat::Csv, file, text)
}

/// Read a flow log record by record, handing each to `sink` (which may stop the reading with
/// an error); returns the skipped records by reason. A cloud's format is read by its plugin,
/// CSV here; both through the contract's streaming reader (see the module docs). Every
/// record's two addresses are of one family.
pub fn read_records<R: BufRead, E: From<ParseError>>(
    format: FlowFormat,
    file: &str,
    reader: R,
    mut sink: impl FnMut(&FlowRecord) -> Result<(), E>,
) -> Result<BTreeMap<String, u64>, E> {
    let emit = |r: &FlowRecord| -> Result<(), E> {
        // no packet travels from an IPv4 to an IPv6 address
        if r.src.is_ipv4() != r.dst.is_ipv4() {
            return Err(ParseError::new(
                file,
                r.line,
                "destination address",
                format!("{} and {} are of different IP families", r.src, r.dst),
            )
            .into());
        }
        sink(r)
    };
    match format.cloud() {
        Some(cloud) => crate::backend::read_flow_log(cloud, file, reader, emit),
        None => intentwall_contract::flowlog::read(CsvParser { cols: None }, file, reader, emit),
    }
}

const CSV_REQUIRED: [&str; 6] = ["deployment", "provider", "src", "dst", "protocol", "port"];
const CSV_OPTIONAL: [&str; 3] = ["icmp_type", "icmp_code", "expected"];
const C_DEPLOYMENT: usize = 0;
const C_PROVIDER: usize = 1;
const C_SRC: usize = 2;
const C_DST: usize = 3;
const C_PROTOCOL: usize = 4;
const C_PORT: usize = 5;
const C_ICMP_TYPE: usize = 6;
const C_ICMP_CODE: usize = 7;
const C_EXPECTED: usize = 8;

/// CSV columns: how many, and for each the field it gives (index into the required columns
/// then the optional ones; the first column of a name gives it).
struct CsvParser {
    cols: Option<(usize, Vec<Option<usize>>)>,
}

impl LineFormat for CsvParser {
    fn line(
        &mut self,
        file: &str,
        line: usize,
        bytes: &[u8],
        _ascii: bool,
        rec: &mut FlowRecord,
        _skips: &mut Skips,
    ) -> Result<Step, Box<ParseError>> {
        let text = utf8(file, line, bytes)?;
        self.row(file, line, text, rec).map_err(Box::new)
    }

    /// A CSV log must have had its header.
    fn finish(&self, file: &str) -> Result<(), ParseError> {
        match self.cols {
            None => Err(ParseError::new(
                file,
                1,
                "header",
                format!("no header line ({})", CSV_REQUIRED.join(",")),
            )),
            Some(_) => Ok(()),
        }
    }
}

impl CsvParser {
    /// One line of text: the header first, then a row.
    fn row(
        &mut self,
        file: &str,
        line: usize,
        raw: &str,
        rec: &mut FlowRecord,
    ) -> Result<Step, ParseError> {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            return Ok(Step::Nothing);
        }
        let Some((width, role)) = &self.cols else {
            let names: Vec<String> = l
                .split(',')
                .map(|f| f.trim().to_ascii_lowercase())
                .collect();
            for n in &names {
                if !CSV_REQUIRED.contains(&n.as_str()) && !CSV_OPTIONAL.contains(&n.as_str()) {
                    return Err(ParseError::new(
                        file,
                        line,
                        "header",
                        format!(
                            "unknown column `{n}` (expected {} and optionally {})",
                            CSV_REQUIRED.join(","),
                            CSV_OPTIONAL.join(",")
                        ),
                    ));
                }
            }
            for need in CSV_REQUIRED {
                if !names.iter().any(|n| n == need) {
                    return Err(ParseError::new(
                        file,
                        line,
                        "header",
                        format!("missing column `{need}`"),
                    ));
                }
            }
            let role = (0..names.len())
                .map(|i| {
                    let n = names[i].as_str();
                    CSV_REQUIRED
                        .iter()
                        .chain(&CSV_OPTIONAL)
                        .position(|c| *c == n)
                        .filter(|_| !names[..i].iter().any(|m| m == n))
                })
                .collect();
            self.cols = Some((names.len(), role));
            return Ok(Step::Nothing);
        };
        let mut f: [&str; 9] = [""; 9];
        let mut n = 0;
        for (i, x) in l.split(',').enumerate() {
            if let Some(Some(r)) = role.get(i) {
                f[*r] = x.trim();
            }
            n += 1;
        }
        if n != *width {
            return Err(ParseError::new(
                file,
                line,
                "record",
                format!("{n} fields, expected {width}"),
            ));
        }
        let get = |c: usize| Some(f[c]).filter(|v| !v.is_empty());
        let src = parse_ip(file, line, "src", get(C_SRC).unwrap_or(""))?;
        let dst = parse_ip(file, line, "dst", get(C_DST).unwrap_or(""))?;
        let pt = get(C_PROTOCOL).unwrap_or("");
        let p = parse_protocol(pt).ok_or_else(|| {
            ParseError::new(
                file,
                line,
                "protocol",
                format!("`{pt}` is not a protocol name or number"),
            )
        })?;
        // the deployment's text goes into the previous record's string: no allocation
        let old = rec.deployment.take();
        let mut r = FlowRecord::new(line, src, dst, p);
        r.deployment = get(C_DEPLOYMENT).map(move |d| {
            let mut s = old.unwrap_or_default();
            s.clear();
            s.push_str(d);
            s
        });
        if let Some(pv) = get(C_PROVIDER) {
            r.provider = Some(
                ProviderKind::ALL
                    .into_iter()
                    .find(|k| k.as_str().eq_ignore_ascii_case(pv))
                    .ok_or_else(|| {
                        ParseError::new(
                            file,
                            line,
                            "provider",
                            format!("`{pv}` is not aws, azure or gcp"),
                        )
                    })?,
            );
        }
        match get(C_PORT) {
            Some(x) if proto::has_ports(p) => r.dst_port = Some(parse_port(file, line, "port", x)?),
            None if proto::has_ports(p) => {
                return Err(ParseError::new(
                    file,
                    line,
                    "port",
                    format!("missing for {}", proto::name(p)),
                ))
            }
            Some(x) => {
                return Err(ParseError::new(
                    file,
                    line,
                    "port",
                    format!("`{x}` given, but {} has no ports", proto::name(p)),
                ))
            }
            None => {}
        }
        let num = |c: usize, n: &str| -> Result<Option<u8>, ParseError> {
            get(c)
                .map(|x| {
                    x.parse::<u8>()
                        .map_err(|_| ParseError::new(file, line, n, format!("`{x}` is not 0-255")))
                })
                .transpose()
        };
        r.icmp_type = num(C_ICMP_TYPE, "icmp_type")?;
        r.icmp_code = num(C_ICMP_CODE, "icmp_code")?;
        if (r.icmp_type.is_some() || r.icmp_code.is_some()) && !proto::is_icmp(p) {
            return Err(ParseError::new(
                file,
                line,
                "icmp_type",
                format!("given, but the protocol is {}", proto::name(p)),
            ));
        }
        if r.icmp_code.is_some() && r.icmp_type.is_none() {
            return Err(ParseError::new(
                file,
                line,
                "icmp_code",
                "given without icmp_type",
            ));
        }
        r.expected = match get(C_EXPECTED) {
            None => None,
            Some(x) if x.eq_ignore_ascii_case("allow") => Some(true),
            Some(x) if x.eq_ignore_ascii_case("deny") => Some(false),
            Some(x) => {
                return Err(ParseError::new(
                    file,
                    line,
                    "expected",
                    format!("`{}` is not allow or deny", x.to_ascii_lowercase()),
                ))
            }
        };
        *rec = r;
        Ok(Step::Record)
    }
}

// ------------------------------------------------------------------------------------------
// replay

/// Replay figures of one target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetReplay {
    /// Deployment.
    pub deployment: String,
    /// Cloud.
    pub provider: Option<ProviderKind>,
    /// Records that belong to this target (one end in its space or declared addresses).
    pub records: u64,
    /// Records judged on both sides.
    pub checked: u64,
    /// Records with an end in the space but in no declared group range.
    pub unattributed: u64,
    /// The first unattributed records.
    pub unattributed_examples: Vec<String>,
    /// Records whose native verdict depends on rules with an unknown match (whether such a
    /// rule really matches the record changes the verdict): neither agreement nor mismatch.
    #[serde(default)]
    pub unverifiable: u64,
    /// The first unverifiable records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unverifiable_examples: Vec<String>,
    /// Records where the native rules and the intent disagree (blocking).
    pub mismatches: u64,
    /// CSV rows whose `expected` verdict the intent or the rules do not give (blocking).
    pub expectations_failed: u64,
    /// Records whose logged action contradicts the intent (evidence of past drift).
    pub drift: u64,
    /// The first drift records.
    pub drift_examples: Vec<String>,
    /// Mismatch and expectation findings (capped; the counts are complete).
    pub findings: Vec<Finding>,
}

/// The result of replaying a flow log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replay {
    /// The log file.
    pub file: String,
    /// Its format.
    pub format: FlowFormat,
    /// Records read (checked or not), skipped ones included.
    pub records: u64,
    /// Records skipped while reading (NODATA, SKIPDATA, missing fields).
    pub skipped: u64,
    /// Skipped records by reason.
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// Records whose ends are in no selected deployment.
    pub outside: u64,
    /// The first such records.
    pub outside_examples: Vec<String>,
    /// Sum over targets.
    pub unattributed: u64,
    /// Sum over targets.
    pub checked: u64,
    /// Sum over targets.
    #[serde(default)]
    pub unverifiable: u64,
    /// Sum over targets.
    pub mismatches: u64,
    /// Sum over targets.
    pub expectations_failed: u64,
    /// Sum over targets.
    pub drift: u64,
    /// Per target, in plan order.
    pub targets: Vec<TargetReplay>,
    /// Wall time, milliseconds.
    pub millis: u64,
}

impl Replay {
    /// Any blocking disagreement.
    pub fn blocked(&self) -> bool {
        self.mismatches > 0 || self.expectations_failed > 0
    }
}

/// One side's verdict on a record: allowed as sent or as a reply.
struct Judged {
    allowed: bool,
    as_reply: bool,
}

/// One target of a replay: what findings are worded from, and its figures.
struct Ctx<'a> {
    intent: DeploymentIntent,
    policy: EvalPolicy,
    allowances: Vec<FlowIntent>,
    /// Leaf groups with declared addresses, in attribution order.
    declared: Vec<(&'a str, AddrSet)>,
    /// The ICMP classes the target's flows and rules tell apart (candidates for an ICMP
    /// record without type or code).
    icmp_classes: Vec<Packet>,
    stats: TargetReplay,
}

fn host(c: &Ctx<'_>, ip: IpAddr, s: Side) -> Host {
    Host {
        ip,
        group: match s {
            Side::Member(i) => Some(c.declared[i as usize].0.to_string()),
            _ => None,
        },
    }
}

/// A record's packet as a probe between its attributed hosts.
fn probe(c: &Ctx<'_>, r: &FlowRecord, (ss, ds): (Side, Side), packet: Packet) -> Probe {
    Probe {
        src: host(c, r.src, ss),
        dst: host(c, r.dst, ds),
        packet,
    }
}

/// The packets an ICMP record stands for (without type and code: every class of its
/// protocol), into `out`.
fn candidates(r: &FlowRecord, icmp_classes: &[Packet], out: &mut Vec<Packet>) {
    out.clear();
    let p = r.proto;
    match (r.icmp_type, r.icmp_code) {
        (Some(t), Some(c)) => out.push(Packet::icmp(p, t, c)),
        (t, _) => {
            out.extend(
                icmp_classes
                    .iter()
                    .filter(|k| k.proto == p && t.is_none_or(|t| t == k.icmp_type)),
            );
            if out.is_empty() {
                out.push(Packet::icmp(p, t.unwrap_or(0), 0));
            }
        }
    }
}

fn word(a: bool) -> &'static str {
    if a {
        "allow"
    } else {
        "deny"
    }
}

/// A replay in progress: the compiled targets and the figures so far. Records are fed one at
/// a time, so nothing here grows with the log.
struct Replayer<'a> {
    intent: &'a Intent,
    file: &'a str,
    format: FlowFormat,
    started: Instant,
    ctxs: Vec<Ctx<'a>>,
    compiled: Compiled,
    /// Target indices per cloud (in `ProviderKind::ALL` order), and all of them.
    by_cloud: [Vec<usize>; 3],
    all: Vec<usize>,
    /// Scratch for one record's candidate packets.
    cands: Vec<Packet>,
    read: u64,
    outside: u64,
    outside_examples: Vec<String>,
}

impl<'a> Replayer<'a> {
    fn new(
        intent: &'a Intent,
        plan: &Plan,
        file: &'a str,
        format: FlowFormat,
    ) -> Result<Self, Error> {
        let started = Instant::now();
        let mut ctxs: Vec<Ctx<'a>> = Vec::new();
        for t in &plan.targets {
            let dep = intent
                .deployments
                .get(&t.deployment)
                .ok_or_else(|| Error::PlanDeployment(t.deployment.clone()))?;
            let di = dep.resolve(t.provider).ok_or_else(|| Error::NoPlacement {
                deployment: dep.name.clone(),
                provider: t.provider,
            })?;
            let provider = crate::backend::require(t.provider)?;
            let policy = provider.lower(&t.after, &di);
            let allowances = provider.platform_allowances(&di);
            let declared: Vec<(&str, AddrSet)> = dep
                .groups
                .values()
                .filter(|g| !g.is_composite())
                .filter_map(|g| {
                    g.addresses_for(t.provider)
                        .map(|a| (g.name.as_str(), a.clone()))
                })
                .collect();
            let traffic: Vec<Traffic> = di
                .flows
                .iter()
                .chain(&allowances)
                .flat_map(|f| f.traffic.iter().cloned())
                .chain(policy.rules.iter().flat_map(|r| r.traffic.iter().cloned()))
                .filter(|t| t.proto.is_none_or(proto::is_icmp))
                .collect();
            let icmp_classes: Vec<Packet> = packet_classes(&traffic)
                .into_iter()
                .filter(|p| proto::is_icmp(p.proto))
                .collect();
            ctxs.push(Ctx {
                stats: TargetReplay {
                    deployment: t.deployment.clone(),
                    provider: Some(t.provider),
                    ..Default::default()
                },
                intent: di,
                policy,
                allowances,
                declared,
                icmp_classes,
            });
        }
        let compiled = Compiled::new(
            &ctxs
                .iter()
                .map(|c| Target {
                    intent: &c.intent,
                    allowances: &c.allowances,
                    policy: &c.policy,
                    declared: &c.declared,
                })
                .collect::<Vec<_>>(),
        );
        // (in `ProviderKind::ALL` order)
        let by_cloud = ProviderKind::ALL.map(|k| {
            (0..ctxs.len())
                .filter(|&i| ctxs[i].intent.provider == k)
                .collect()
        });
        Ok(Replayer {
            intent,
            file,
            format,
            started,
            all: (0..ctxs.len()).collect(),
            ctxs,
            compiled,
            by_cloud,
            cands: Vec::new(),
            read: 0,
            outside: 0,
            outside_examples: Vec::new(),
        })
    }

    /// Judge one record on every target it belongs to.
    fn record(&mut self, r: &FlowRecord) -> Result<(), Error> {
        let Replayer {
            intent,
            file,
            ctxs,
            compiled,
            by_cloud,
            all,
            cands,
            ..
        } = self;
        let file: &str = file;
        self.read += 1;
        if let Some(d) = &r.deployment {
            if !intent.deployments.contains_key(d) {
                return Err(ParseError::new(
                    file,
                    r.line,
                    "deployment",
                    format!("unknown deployment `{d}`"),
                )
                .into());
            }
        }
        // one binary search per address, whatever the number of targets and groups
        let (sc, dc) = (compiled.addr_class(r.src), compiled.addr_class(r.dst));
        let targets: &[usize] = match r.provider {
            Some(ProviderKind::Aws) => &by_cloud[0],
            Some(ProviderKind::Azure) => &by_cloud[1],
            Some(ProviderKind::Gcp) => &by_cloud[2],
            None => all,
        };
        let mut belongs = false;
        for &ti in targets {
            let c = &mut ctxs[ti];
            if r.deployment
                .as_ref()
                .is_some_and(|d| d != &c.intent.deployment)
            {
                continue;
            }
            let ix = &compiled.targets[ti];
            let (ss, ds) = (ix.side(sc), ix.side(dc));
            if ss == Side::External && ds == Side::External {
                continue;
            }
            belongs = true;
            c.stats.records += 1;
            if ss == Side::Unknown || ds == Side::Unknown {
                c.stats.unattributed += 1;
                if c.stats.unattributed_examples.len() < EXAMPLES_SHOWN {
                    c.stats
                        .unattributed_examples
                        .push(format!("{file}:{}: {r}", r.line));
                }
                continue;
            }
            // every candidate packet, keeping the first, whether all agree, and the first
            // disagreement of the intent and the rules
            // one packet, except for ICMP without type and code
            let one;
            let packets: &[Packet] = if proto::is_icmp(r.proto) {
                candidates(r, &c.icmp_classes, cands);
                cands
            } else {
                let port = match proto::has_ports(r.proto) {
                    true => r.dst_port.unwrap_or(0),
                    false => 0,
                };
                one = [Packet::ported(r.proto, port)];
                &one
            };
            let mut first: Option<(Packet, bool, bool)> = None;
            let (mut same_o, mut same_n) = (true, true);
            let mut first_bad: Option<(Packet, Judged, Judged)> = None;
            let mut unverifiable = false;
            for &packet in packets {
                if !packet.fits_family(r.src.is_ipv4()) {
                    continue;
                }
                let k = compiled.packets.of(&packet);
                // the reply of a flow the other way goes to the record's source port
                let rk = match proto::has_ports(packet.proto) {
                    true => r
                        .src_port
                        .map(|sp| compiled.packets.of(&Packet::ported(packet.proto, sp))),
                    false => Some(k),
                };
                let v = compiled.outcome(ti, sc, dc, k, rk);
                unverifiable |= v.unverifiable;
                let o = Judged {
                    allowed: v.oracle,
                    as_reply: v.oracle_reply,
                };
                let n = Judged {
                    allowed: v.native,
                    as_reply: v.native_reply,
                };
                match first {
                    None => first = Some((packet, o.allowed, n.allowed)),
                    Some((_, fo, fnat)) => {
                        same_o &= fo == o.allowed;
                        same_n &= fnat == n.allowed;
                    }
                }
                if o.allowed != n.allowed && first_bad.is_none() {
                    first_bad = Some((packet, o, n));
                }
            }
            let Some((first_packet, first_o, first_n)) = first else {
                if !unverifiable {
                    c.stats.checked += 1;
                }
                continue;
            };
            if unverifiable {
                // the rules' verdict is not known: no agreement, no mismatch, no expectation
                // of the rules; the intent's verdict still tells drift
                c.stats.unverifiable += 1;
                if c.stats.unverifiable_examples.len() < EXAMPLES_SHOWN {
                    c.stats
                        .unverifiable_examples
                        .push(format!("{file}:{}: {r}", r.line));
                }
                first_bad = None;
            } else {
                c.stats.checked += 1;
            }
            // the intent's verdict, when every candidate packet agrees
            let intent_verdict = same_o.then_some(first_o);
            let native_verdict = (same_n && !unverifiable).then_some(first_n);
            if let Some((packet, o, n)) = first_bad {
                c.stats.mismatches += 1;
                if c.stats.findings.len() < MISMATCHES_SHOWN {
                    let f = mismatch_finding(
                        &c.intent,
                        &c.allowances,
                        &c.policy,
                        file,
                        r,
                        &probe(c, r, (ss, ds), packet),
                        &o,
                        &n,
                    );
                    c.stats.findings.push(f);
                }
            }
            if let (Some(obs), Some(iv)) = (r.observed, intent_verdict) {
                if obs != iv {
                    c.stats.drift += 1;
                    if c.stats.drift_examples.len() < EXAMPLES_SHOWN {
                        c.stats.drift_examples.push(format!(
                            "{file}:{}: {r}: the log shows {}, the intent says {}",
                            r.line,
                            if obs { "accepted" } else { "rejected" },
                            word(iv)
                        ));
                    }
                }
            }
            if let Some(want) = r.expected {
                let mut why = Vec::new();
                match intent_verdict {
                    Some(v) if v == want => {}
                    Some(v) => why.push(format!("the intent gives {}", word(v))),
                    None => why.push("the intent's verdict depends on the ICMP type".into()),
                }
                match native_verdict {
                    _ if unverifiable => {}
                    Some(v) if v == want => {}
                    Some(v) => why.push(format!("{} gives {}", c.intent.provider, word(v))),
                    None => why.push(format!(
                        "{}'s verdict depends on the ICMP type",
                        c.intent.provider
                    )),
                }
                if !why.is_empty() {
                    c.stats.expectations_failed += 1;
                    if c.stats.findings.len() < MISMATCHES_SHOWN {
                        let message = format!(
                            "{file}:{}: {}: expected {}, but {}",
                            r.line,
                            probe(c, r, (ss, ds), first_packet),
                            word(want),
                            why.join("; ")
                        );
                        c.stats.findings.push(Finding {
                            kind: FindingKind::Expectation,
                            deployment: c.intent.deployment.clone(),
                            provider: Some(c.intent.provider),
                            flow: None,
                            message,
                        });
                    }
                }
            }
        }
        if !belongs {
            self.outside += 1;
            if self.outside_examples.len() < EXAMPLES_SHOWN {
                self.outside_examples
                    .push(format!("{}:{}: {r}", self.file, r.line));
            }
        }
        Ok(())
    }

    /// The figures, with a closing finding per target for the disagreements not shown.
    fn finish(self, skipped_by_reason: BTreeMap<String, u64>) -> Replay {
        let skipped: u64 = skipped_by_reason.values().sum();
        let file = self.file;
        let mut out = Replay {
            file: file.to_string(),
            format: self.format,
            records: self.read + skipped,
            skipped,
            skipped_by_reason,
            outside: self.outside,
            outside_examples: self.outside_examples,
            unattributed: 0,
            checked: 0,
            unverifiable: 0,
            mismatches: 0,
            expectations_failed: 0,
            drift: 0,
            targets: vec![],
            millis: 0,
        };
        for c in self.ctxs {
            let mut t = c.stats;
            let shown = t
                .findings
                .iter()
                .filter(|f| f.kind == FindingKind::Mismatch)
                .count() as u64;
            let shown_e = t.findings.len() as u64 - shown;
            let hidden = (t.mismatches - shown.min(t.mismatches))
                + (t.expectations_failed - shown_e.min(t.expectations_failed));
            if hidden > 0 {
                t.findings.push(Finding {
                    kind: FindingKind::Mismatch,
                    deployment: t.deployment.clone(),
                    provider: t.provider,
                    flow: None,
                    message: format!(
                        "{file}: {hidden} more disagreeing flow-log records not shown"
                    ),
                });
            }
            out.unattributed += t.unattributed;
            out.checked += t.checked;
            out.unverifiable += t.unverifiable;
            out.mismatches += t.mismatches;
            out.expectations_failed += t.expectations_failed;
            out.drift += t.drift;
            out.targets.push(t);
        }
        out.millis = self.started.elapsed().as_millis() as u64;
        out
    }
}

/// Replay a flow log as it is read, against the targets of a plan (the state each would hold
/// after apply): what `simulate --flows` runs. Memory does not grow with the log (see the
/// module docs for the two JSON document formats); a malformed record stops the replay with
/// an error naming `file:line`.
pub fn replay_reader(
    intent: &Intent,
    plan: &Plan,
    file: &str,
    format: FlowFormat,
    reader: impl BufRead,
) -> Result<Replay, Error> {
    let mut rp = Replayer::new(intent, plan, file, format)?;
    let skipped = read_records(format, file, reader, |r| rp.record(r))?;
    Ok(rp.finish(skipped))
}

/// Replay an already parsed log (see [`replay_reader`]).
pub fn replay(
    intent: &Intent,
    plan: &Plan,
    file: &str,
    format: FlowFormat,
    log: &FlowLog,
) -> Result<Replay, Error> {
    let mut rp = Replayer::new(intent, plan, file, format)?;
    for r in &log.records {
        rp.record(r)?;
    }
    Ok(rp.finish(log.skipped.clone()))
}

/// The finding for a record the intent and the rules judge apart, naming the deciding native
/// rule and the intent's flows (the oracle and evaluator run again here, for the few records
/// shown, to name them).
#[allow(clippy::too_many_arguments)]
fn mismatch_finding(
    intent: &DeploymentIntent,
    allowances: &[FlowIntent],
    policy: &EvalPolicy,
    file: &str,
    r: &FlowRecord,
    fwd: &Probe,
    o: &Judged,
    n: &Judged,
) -> Finding {
    let rev_of = |p: &Probe| -> Option<Probe> {
        let packet = if proto::has_ports(p.packet.proto) {
            Packet::ported(p.packet.proto, r.src_port?)
        } else {
            p.packet
        };
        Some(Probe {
            src: p.dst.clone(),
            dst: p.src.clone(),
            packet,
        })
    };
    let ov: OracleVerdict = if o.as_reply {
        rev_of(fwd)
            .map(|p| judge(intent, allowances, &p))
            .unwrap_or_else(|| judge(intent, allowances, fwd))
    } else {
        judge(intent, allowances, fwd)
    };
    let nv_probe = if n.as_reply {
        rev_of(fwd).unwrap_or_else(|| fwd.clone())
    } else {
        fwd.clone()
    };
    let nv = policy.evaluate(&nv_probe);
    let rule = nv.deciding().and_then(|d| d.rule).map(|i| &policy.rules[i]);
    let rule_text = match rule {
        Some(x) => format!(
            "rule `{}`{}{}",
            x.id,
            if x.managed { "" } else { " (unmanaged)" },
            x.flow
                .as_ref()
                .map(|f| format!(" from flow `{f}`"))
                .unwrap_or_default()
        ),
        None => "the cloud's default (no rule matched)".into(),
    };
    let why = if ov.flows.is_empty() {
        ov.reason.clone()
    } else {
        format!("{} ({})", ov.reason, ov.flows.join(", "))
    };
    Finding {
        kind: FindingKind::Mismatch,
        deployment: intent.deployment.clone(),
        provider: Some(intent.provider),
        flow: ov
            .flows
            .first()
            .cloned()
            .or_else(|| rule.and_then(|x| x.flow.clone())),
        message: format!(
            "{file}:{}: flow-log record {fwd}: intent says {}{} [{why}], {} says {}{} by {rule_text}",
            r.line,
            word(o.allowed),
            if o.as_reply { " (as a reply)" } else { "" },
            intent.provider,
            word(n.allowed),
            if n.as_reply { " (as a reply)" } else { "" },
        ),
    }
}

/// Put the replay's findings into the plan's targets (which then block), so every output
/// format of `simulate` carries them.
pub fn merge_into(plan: &mut Plan, replay: &Replay) {
    for (t, r) in plan.targets.iter_mut().zip(&replay.targets) {
        if !r.findings.is_empty() {
            t.findings.extend(r.findings.iter().cloned());
            t.blocked = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows() {
        let text = "deployment,provider,src,dst,protocol,port,icmp_type,icmp_code,expected\n\
us,gcp,203.0.113.5,10.30.20.4,tcp,5432,,,deny\n\
,aws,10.10.20.4,100.64.20.9,6,443,,,allow\n\
eu,azure,198.51.100.1,10.50.20.4,icmp,,8,0,\n";
        let log = parse_csv("c.csv", text).unwrap();
        assert_eq!(log.records.len(), 3);
        assert_eq!(log.records[0].deployment.as_deref(), Some("us"));
        assert_eq!(log.records[0].expected, Some(false));
        assert_eq!(log.records[1].deployment, None);
        assert_eq!(log.records[1].provider, Some(ProviderKind::Aws));
        assert_eq!(
            (log.records[2].icmp_type, log.records[2].icmp_code),
            (Some(8), Some(0))
        );
        let e = parse_csv("c.csv", "deployment,provider,src,dst,protocol\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (1, "header"));
        let e = parse_csv(
            "c.csv",
            "deployment,provider,src,dst,protocol,port\nus,gcp,1.2.3.4,10.0.0.1,tcp,\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "port"));
        let e = parse_csv(
            "c.csv",
            "deployment,provider,src,dst,protocol,port\nus,oracle,1.2.3.4,10.0.0.1,tcp,1\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "provider");
        let e = parse_csv(
            "c.csv",
            "deployment,provider,src,dst,protocol,port\nus,gcp,1.2.3.4,10.0.0.1,bogus,1\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "protocol");
        assert!(parse_csv("c.csv", "").is_err());
        let e = parse(
            FlowFormat::Csv,
            "c.csv",
            "deployment,provider,src,dst,protocol,port\n,,10.0.0.1,2001:db8::1,tcp,1\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "destination address"));
    }

    /// An Azure NSG blob holds `flowTuples`; no other JSON log does.
    #[cfg(feature = "azure")]
    const AZURE: &str =
        "{\"records\":[{\"properties\":{\"flows\":[{\"flows\":[{\"flowTuples\":[]}]}]}}]}";

    #[cfg(feature = "azure")]
    #[test]
    fn formats_are_inferred_from_extension_and_content() {
        assert_eq!(FlowFormat::infer(Path::new("x.csv"), ""), FlowFormat::Csv);
        assert_eq!(
            FlowFormat::infer(Path::new("x.json"), AZURE),
            FlowFormat::AzureNsg
        );
        assert_eq!(
            FlowFormat::infer(Path::new("x.jsonl"), "{\"jsonPayload\":{}}"),
            FlowFormat::Gcp
        );
        assert_eq!(
            FlowFormat::infer(Path::new("flows.log"), ""),
            FlowFormat::AwsVpc
        );
    }

    #[test]
    fn parsers_never_panic_on_garbage() {
        for junk in [
            "\u{0}\u{1}",
            "{",
            "[",
            "[{\"jsonPayload\":1}]",
            "{\"records\":[{\"properties\":{\"flows\":[{\"flows\":[{\"flowTuples\":[1]}]}]}}]}",
            "a,b,c\n1,2",
            "2 1 eni",
        ] {
            for f in [
                FlowFormat::AwsVpc,
                FlowFormat::AzureNsg,
                FlowFormat::Gcp,
                FlowFormat::Csv,
            ] {
                let _ = parse(f, "j", junk);
            }
        }
    }

    #[cfg(feature = "aws")]
    #[test]
    fn streaming_reads_crlf_blank_lines_a_last_line_without_newline_and_bytes() {
        let text = "deployment,provider,src,dst,protocol,port\r\n\r\n,,10.0.0.1,10.0.0.2,tcp,1\r\n,,10.0.0.1,10.0.0.2,udp,2";
        let log = parse_csv("c.csv", text).unwrap();
        assert_eq!(
            log.records.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![3, 4]
        );
        let bytes: &[u8] = b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n\xff\xfe\n";
        let e = read_records(FlowFormat::AwsVpc, "a.log", bytes, |_| {
            Ok::<(), ParseError>(())
        })
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "text"));
    }

    #[cfg(all(feature = "aws", feature = "gcp"))]
    #[test]
    fn lines_straddling_reads_come_out_whole() {
        let gcp_lines = "{\"jsonPayload\":{\"connection\":{\"src_ip\":\"10.30.20.4\",\"dest_ip\":\"100.64.20.9\",\"src_port\":40000,\"dest_port\":443,\"protocol\":6}}}\n\n{\"jsonPayload\":{\"connection\":{\"src_ip\":\"34.120.1.7\",\"dest_ip\":\"10.30.20.4\",\"protocol\":1},\"disposition\":\"DENIED\"}}";
        let gcp_array = format!(
            "\n  [\n{},\n{}\n]\n",
            gcp_lines.lines().next().unwrap(),
            gcp_lines.lines().nth(2).unwrap()
        );
        let csv = "deployment,provider,src,dst,protocol,port\n#c\n,,10.0.0.1,10.0.0.2,tcp,1\r\n,,10.0.0.1,10.0.0.2,udp,2";
        for (format, text) in [
            (FlowFormat::Gcp, gcp_lines),
            (FlowFormat::Gcp, gcp_array.as_str()),
            (FlowFormat::Csv, csv),
            (FlowFormat::AwsVpc, "2 1 eni-1 10.0.0.1 10.0.0.2 443 50000 6 1 40 1 2 ACCEPT OK\n\n2 1 eni-1 10.0.0.3 10.0.0.2 443 50000 6 1 40 1 2 ACCEPT OK\n"),
        ] {
            let whole = parse(format, "f", text).unwrap();
            for cap in [1, 2, 3, 7, 8, 64] {
                let mut got = Vec::new();
                let reader = std::io::BufReader::with_capacity(cap, text.as_bytes());
                let skipped = read_records(format, "f", reader, |r| {
                    got.push(r.clone());
                    Ok::<(), ParseError>(())
                })
                .unwrap();
                assert_eq!((&got, &skipped), (&whole.records, &whole.skipped), "{cap}: {text}");
                assert!(!got.is_empty());
            }
        }
    }

    #[cfg(feature = "azure")]
    #[test]
    fn infer_file_finds_azure_past_the_first_chunk() {
        let azure_mark = intentwall_azure::flowlog::MARK;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.json");
        let mut text = format!("{{\"records\":[{{\"pad\":\"{}\",", "x".repeat(200_000));
        text.push_str("\"properties\":{\"flows\":[{\"flows\":[{\"flowTuples\":[]}]}]}}]}");
        std::fs::write(&p, &text).unwrap();
        assert_eq!(FlowFormat::infer_file(&p).unwrap(), FlowFormat::AzureNsg);
        std::fs::write(&p, "{\"jsonPayload\":{}}\n").unwrap();
        assert_eq!(FlowFormat::infer_file(&p).unwrap(), FlowFormat::Gcp);
        // the needle split across two reads is still found
        for cut in 1..azure_mark.len() {
            let data = format!("{}{}", "y".repeat(64 * 1024 - cut), azure_mark);
            assert!(contains(data.as_bytes(), azure_mark.as_bytes()).unwrap());
        }
        assert!(FlowFormat::infer_file(Path::new("/no/such.json")).is_err());
    }

    /// Differential tests of the streaming, compiled replay against the reference (the
    /// replay as it was: whole log parsed, every record judged by `judge` and `evaluate`).
    #[cfg(all(feature = "aws", feature = "azure", feature = "gcp"))]
    mod differential {
        use super::*;
        use crate::intent::{load, LoadOptions};
        use crate::plan::{build, PlanOptions};
        use proptest::prelude::*;
        use std::fmt::Write;
        use std::sync::OnceLock;

        /// The example estate, its plan, and the intent with three db flows dropped: the
        /// rules (planned from the full intent) then disagree with it on some records.
        fn estate() -> &'static (Intent, Intent, Plan) {
            static E: OnceLock<(Intent, Intent, Plan)> = OnceLock::new();
            E.get_or_init(|| {
                let root = Path::new(env!("CARGO_MANIFEST_DIR"));
                let today = time::macros::date!(2026 - 11 - 22);
                let intent = load(&root.join("intents"), &LoadOptions { today })
                    .unwrap_or_else(|d| panic!("example intents load:\n{d}"))
                    .intent;
                let opts = PlanOptions {
                    backend: crate::backend::Backend::snapshots(root.join("snapshots")),
                    prune_unmanaged: false,
                    deployment: None,
                    provider: None,
                    keep_after: true,
                };
                let plan = build(&intent, &opts).expect("plan builds");
                let mut drifted = intent.clone();
                for d in drifted.deployments.values_mut() {
                    d.flows.retain(|f| {
                        !matches!(
                            f.name.as_str(),
                            "db-replication" | "db-to-backup-vault" | "no-corp-to-db"
                        )
                    });
                }
                (intent, drifted, plan)
            })
        }

        const EXTERNAL: [&str; 16] = [
            "100.64.20.10",
            "100.64.20.11",
            "203.0.113.20",
            "203.0.113.200",
            "198.51.100.10",
            "198.51.100.140",
            "100.64.20.10",
            "100.64.10.7",
            "192.0.2.53",
            "192.0.2.150",
            "192.0.2.70",
            "54.239.28.85",
            "198.18.10.4",
            "172.31.5.5",
            "168.63.129.16",
            "35.191.0.1",
        ];
        const EXTERNAL6: [&str; 4] = [
            "2001:db8:100::1",
            "2001:db8:666::9",
            "2001:db8:53::53",
            "2001:db8:300::7",
        ];

        /// A linear congruential step: the value below `n`.
        fn next(rng: &mut u64, n: u64) -> u64 {
            *rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (*rng >> 33) % n
        }

        /// An address of the estate: a db member, an unattributed one in a VPC, or external.
        fn address(rng: &mut u64, v4: bool, x: u64) -> String {
            match (v4, next(rng, 3)) {
                (true, 0) => format!("10.{x}.20.{}", 4 + next(rng, 8)),
                (true, 1) => format!("10.{x}.{}.{}", next(rng, 30), next(rng, 3)),
                (true, _) => EXTERNAL[next(rng, EXTERNAL.len() as u64) as usize].into(),
                (false, 0) => format!("2001:db8:{x}::{}", 1 + next(rng, 4)),
                (false, _) => EXTERNAL6[next(rng, EXTERNAL6.len() as u64) as usize].into(),
            }
        }

        /// A random log in both line formats: (AWS text, CSV).
        fn logs(seed: u64, n: usize) -> (String, String) {
            let rng = &mut (seed | 1);
            let mut aws = String::from("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
            let mut csv = String::from(
                "deployment,provider,src,dst,protocol,port,icmp_type,icmp_code,expected\n",
            );
            for _ in 0..n {
                let v4 = next(rng, 5) != 0;
                // mostly both ends in one VPC (10.X.0.0/16, db at 10.X.20.0/24)
                let x = 10 * (1 + next(rng, 9));
                let y = if next(rng, 5) == 0 {
                    10 * (1 + next(rng, 9))
                } else {
                    x
                };
                let src = address(rng, v4, x);
                let dst = address(rng, v4, y);
                let p = [6, 6, 6, 6, 17, 1, 58, 50, 47, 132][next(rng, 10) as usize];
                let port =
                    [5432, 5432, 443, 443, 22, 53, 3000, 9090, 2222, 9300][next(rng, 10) as usize];
                let sport = match next(rng, 4) {
                    0 => port.to_string(),
                    1 => "-".into(),
                    2 => "443".into(),
                    _ => (1024 + next(rng, 60000)).to_string(),
                };
                let (sp, dp) = if proto::has_ports(p) {
                    (sport.as_str(), port.to_string())
                } else {
                    ("0", "0".to_string())
                };
                let action = ["ACCEPT", "REJECT", "-"][next(rng, 3) as usize];
                let _ = writeln!(
                    aws,
                    "2 1 eni-1 {src} {dst} {sp} {dp} {p} 1 1 1 2 {action} OK"
                );
                let dep = ["", "us", "eu", "ap"][next(rng, 4) as usize];
                let cloud = ["", "aws", "azure", "gcp"][next(rng, 4) as usize];
                let port = if proto::has_ports(p) {
                    dp
                } else {
                    String::new()
                };
                let (t, c) = match (proto::is_icmp(p), next(rng, 4)) {
                    (true, 0) => ("8", "0"),
                    (true, 1) => ("128", ""),
                    (true, 2) => ("3", "4"),
                    _ => ("", ""),
                };
                let expected = ["", "allow", "deny"][next(rng, 3) as usize];
                let _ = writeln!(
                    csv,
                    "{dep},{cloud},{src},{dst},{p},{port},{t},{c},{expected}"
                );
            }
            (aws, csv)
        }

        /// (streaming compiled replay, reference replay) as JSON, wall times left out.
        fn both(
            intent: &Intent,
            plan: &Plan,
            format: FlowFormat,
            text: &str,
        ) -> (serde_json::Value, serde_json::Value) {
            let json = |r: &Replay| {
                let mut v = serde_json::to_value(r).unwrap();
                v["millis"] = 0.into();
                v
            };
            let log = parse(format, "f.log", text).unwrap();
            let want = reference::replay(intent, plan, "f.log", format, &log).unwrap();
            let got = replay_reader(intent, plan, "f.log", format, text.as_bytes()).unwrap();
            (json(&got), json(&want))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(24))]

            /// Same counts, examples and findings (deciding rules and flows included), for
            /// the example estate and for an intent the rules disagree with.
            #[test]
            fn streaming_compiled_replay_equals_the_reference(seed in any::<u64>()) {
                let (intent, drifted, plan) = estate();
                let (aws, csv) = logs(seed, 400);
                for i in [intent, drifted] {
                    let (got, want) = both(i, plan, FlowFormat::AwsVpc, &aws);
                    prop_assert_eq!(got, want);
                    let (got, want) = both(i, plan, FlowFormat::Csv, &csv);
                    prop_assert_eq!(got, want);
                }
            }
        }

        /// The random logs reach every kind of outcome: mismatches (as sent and as replies,
        /// with the "not shown" line), drift, unattributed and outside records, failed
        /// expectations.
        #[test]
        fn the_random_logs_reach_every_outcome() {
            let (_, drifted, plan) = estate();
            let (aws, csv) = logs(7, 20_000);
            let (got, _) = both(drifted, plan, FlowFormat::AwsVpc, &aws);
            for k in ["mismatches", "drift", "unattributed", "outside", "checked"] {
                assert!(got[k].as_u64().unwrap() > 0, "{k}: {got}");
            }
            let text = got.to_string();
            assert!(got["mismatches"].as_u64().unwrap() > 12, "{text}");
            assert!(
                text.contains("more disagreeing flow-log records not shown"),
                "{text}"
            );
            assert!(text.contains("(as a reply)"), "{text}");
            let (got, _) = both(drifted, plan, FlowFormat::Csv, &csv);
            assert!(got["expectations_failed"].as_u64().unwrap() > 0, "{got}");
        }
    }
}
