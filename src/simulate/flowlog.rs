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
//! examples: memory does not grow with the log. Line formats (CSV and the clouds' text and
//! JSON-lines logs) are read one line at a time into one reused buffer, the text ones parsed
//! without allocating (fields are byte slices of the line); a format that is one JSON
//! document (a cloud writes some logs that way, one blob per resource and hour) is read whole.
//! A malformed record stops the replay at that record, naming its line.
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
//! (`EvalRule::unknown`: an undeclared service tag or prefix list, a source-port condition) is never judged by its upper bound: such a rule may match a
//! record or not. When the rules' verdict on a record differs between the two (as
//! `PolicyIndex::possible_verdicts` would find), the record is counted as *unverifiable*
//! (`unverifiable` per target and in the summary, with the first few as examples) and is
//! neither an agreement (`checked`) nor a mismatch, nor checked against a CSV row's expected
//! verdict on the rules' side; drift (the log against the intent) is still reported. When the
//! verdict is the same either way, the record is judged as usual.
//!
//! Where the log records the cloud's own action (accepted or rejected), records whose
//! observed action contradicts the intent are reported as drift evidence. They do not block:
//! the log shows the state of the past, and a rejection may also come from another layer (a
//! network ACL).
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

use std::io::BufRead;
use std::net::IpAddr;

use std::time::Instant;

pub use crate::backend::flowlog::FlowFormat;
pub use intentwall_contract::flowlog::{parse_protocol, FlowLog, FlowRecord, ParseError};
pub use replay::{replay, replay_reader, Replay, TargetReplay};

use csv::CsvParser;

/// How many examples of each kind (unattributed, outside, drift) a report names.
pub const EXAMPLES_SHOWN: usize = 5;

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
