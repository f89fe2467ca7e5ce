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
//!
//! **Layout.** Here: the formats and reading records; `csv`: the neutral CSV format; `replay`:
//! judging records against a plan's targets and the figures of a replay; `decide`: the
//! compiled decision structure; `reference` (tests only): the replay it must stay equal to.
//! The submodules share this module's imports.

mod csv;
mod decide;
#[cfg(test)]
mod reference;
mod replay;
#[cfg(test)]
mod tests;

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
pub use replay::{merge_into, replay, replay_reader, Replay, TargetReplay};

use csv::CsvParser;

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
