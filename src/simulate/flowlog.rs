//! Flow-log replay (`intentwall simulate --flows FILE --flow-format ...`): every record of a
//! real flow log is judged by the intent (the oracle) and by the native rules each target
//! would hold after apply, and any disagreement is a blocking mismatch, like the probes and
//! classes of the simulation pass.
//!
//! Formats (pure parsers, never panic; errors name `file:line` and the field):
//! - `aws-vpc`: AWS VPC Flow Logs, default format v2 text (`version account-id interface-id
//!   srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status`). A
//!   header line is optional; when present its field names decide the columns, so custom
//!   formats that keep `srcaddr dstaddr dstport protocol` work too. `NODATA` / `SKIPDATA`
//!   records and records with `-` in a needed field are skipped and counted.
//! - `azure-nsg`: Azure NSG flow logs (`{"records":[{"properties":{"Version":2,"flows":[{"rule",
//!   "flows":[{"mac","flowTuples":[...]}]}]}}]}`); version 1 tuples have 8 fields, version 2
//!   tuples 13 (flow state and counters).
//! - `gcp`: GCP VPC flow logs (or firewall-rules logs) as exported JSON lines, one log entry per
//!   line, or a JSON array of entries; `jsonPayload.connection` gives the 5-tuple and, for
//!   firewall logs, `jsonPayload.disposition` the observed action.
//! - `csv`: `deployment,provider,src,dst,protocol,port` with optional `icmp_type,icmp_code,
//!   expected` (allow|deny); empty deployment or provider means "by address"; no quoting.
//!
//! **Flow logs carry no group identity.** A record only has addresses, so a host is attributed
//! by address alone: an address inside a group's declared `addresses` (exclusive, DESIGN.md
//! §6) is that group's member; an address inside the cloud's space but in no declared range is
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
//! Where the log records the cloud's own action (AWS `ACCEPT`/`REJECT`, Azure `A`/`D`, GCP
//! firewall-log `disposition`), records whose observed action contradicts the intent are
//! reported as drift evidence. They do not block: the log shows the state of the past, and an
//! AWS `REJECT` may also come from a network ACL.

use crate::intent::Intent;
use crate::plan::Plan;
use crate::simulate::MISMATCHES_SHOWN;
use intentwall_contract::check::packet_classes;
use intentwall_contract::oracle::{judge, OracleVerdict};
use intentwall_contract::traffic::proto;
use intentwall_contract::{
    AddrSet, DeploymentIntent, EvalPolicy, Finding, FindingKind, FlowIntent, Host, Packet, Probe,
    ProviderKind, Traffic,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

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
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("csv") => FlowFormat::Csv,
            Some("json") | Some("jsonl") | Some("ndjson") => {
                if text.contains("\"flowTuples\"") {
                    FlowFormat::AzureNsg
                } else {
                    FlowFormat::Gcp
                }
            }
            _ => FlowFormat::AwsVpc,
        }
    }
}

impl fmt::Display for FlowFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record of a flow log, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    /// 1-based line in the file.
    pub line: usize,
    /// The deployment it names (CSV only).
    pub deployment: Option<String>,
    /// The cloud it belongs to (from the format, or the CSV column).
    pub provider: Option<ProviderKind>,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub proto: u8,
    /// Source port, when logged (tcp/udp/sctp).
    pub src_port: Option<u16>,
    /// Destination port (tcp/udp/sctp).
    pub dst_port: Option<u16>,
    /// ICMP type, when known.
    pub icmp_type: Option<u8>,
    /// ICMP code, when known.
    pub icmp_code: Option<u8>,
    /// The action the cloud took, as logged (true = accepted).
    pub observed: Option<bool>,
    /// The verdict a CSV row expects (true = allow).
    pub expected: Option<bool>,
}

impl FlowRecord {
    fn new(line: usize, src: IpAddr, dst: IpAddr, proto: u8) -> Self {
        FlowRecord {
            line,
            deployment: None,
            provider: None,
            src,
            dst,
            proto,
            src_port: None,
            dst_port: None,
            icmp_type: None,
            icmp_code: None,
            observed: None,
            expected: None,
        }
    }
}

impl fmt::Display for FlowRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {} {}",
            self.src,
            self.dst,
            proto::name(self.proto)
        )?;
        if let Some(p) = self.dst_port {
            write!(f, "/{p}")?;
        } else if let Some(t) = self.icmp_type {
            write!(f, "/{t}")?;
            if let Some(c) = self.icmp_code {
                write!(f, "/{c}")?;
            }
        }
        if let Some(p) = self.src_port {
            write!(f, " (from port {p})")?;
        }
        Ok(())
    }
}

/// A parsed flow log.
#[derive(Debug, Clone, Default)]
pub struct FlowLog {
    /// Records to check, in file order.
    pub records: Vec<FlowRecord>,
    /// Records not checked, by reason (`NODATA`, `SKIPDATA`, `missing fields`, ...).
    pub skipped: BTreeMap<String, u64>,
}

impl FlowLog {
    fn skip(&mut self, why: &str) {
        *self.skipped.entry(why.to_string()).or_default() += 1;
    }
}

/// A malformed flow log: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct ParseError {
    /// The file as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The field (or part) that is wrong.
    pub field: String,
    /// What is wrong, in words.
    pub message: String,
}

fn perr(file: &str, line: usize, field: &str, message: impl Into<String>) -> ParseError {
    ParseError {
        file: file.to_string(),
        line,
        field: field.to_string(),
        message: message.into(),
    }
}

/// Parse a flow log of a format.
pub fn parse(format: FlowFormat, file: &str, text: &str) -> Result<FlowLog, ParseError> {
    let log = match format {
        FlowFormat::AwsVpc => parse_aws(file, text),
        FlowFormat::AzureNsg => parse_azure(file, text),
        FlowFormat::Gcp => parse_gcp(file, text),
        FlowFormat::Csv => parse_csv(file, text),
    }?;
    // no packet travels from an IPv4 to an IPv6 address
    if let Some(r) = log
        .records
        .iter()
        .find(|r| r.src.is_ipv4() != r.dst.is_ipv4())
    {
        return Err(perr(
            file,
            r.line,
            "destination address",
            format!("{} and {} are of different IP families", r.src, r.dst),
        ));
    }
    Ok(log)
}

fn parse_ip(file: &str, line: usize, field: &str, s: &str) -> Result<IpAddr, ParseError> {
    s.trim()
        .parse()
        .map_err(|_| perr(file, line, field, format!("`{s}` is not an IP address")))
}

fn parse_port(file: &str, line: usize, field: &str, s: &str) -> Result<u16, ParseError> {
    s.trim()
        .parse()
        .map_err(|_| perr(file, line, field, format!("`{s}` is not a port (0-65535)")))
}

/// A protocol by IANA number or by name (`tcp`, `udp`, `icmp`, `icmpv6`, `esp`, `ah`, `gre`,
/// `sctp`).
pub fn parse_protocol(s: &str) -> Option<u8> {
    let s = s.trim().to_ascii_lowercase();
    if let Ok(n) = s.parse::<u8>() {
        return Some(n);
    }
    Some(match s.as_str() {
        "tcp" => proto::TCP,
        "udp" => proto::UDP,
        "icmp" => proto::ICMP,
        "icmpv6" | "ipv6-icmp" => proto::ICMPV6,
        "esp" => proto::ESP,
        "ah" => proto::AH,
        "gre" => proto::GRE,
        "sctp" => proto::SCTP,
        _ => return None,
    })
}

const AWS_DEFAULT: [&str; 14] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// AWS VPC Flow Logs, text.
pub fn parse_aws(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    let mut log = FlowLog::default();
    let mut header: Option<Vec<String>> = None;
    let mut seen_data = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = l.split_ascii_whitespace().collect();
        if !seen_data
            && header.is_none()
            && fields
                .iter()
                .any(|f| f.trim_start_matches("${").trim_end_matches('}') == "srcaddr")
        {
            let names: Vec<String> = fields
                .iter()
                .map(|f| {
                    f.trim_start_matches("${")
                        .trim_end_matches('}')
                        .replace('_', "-")
                })
                .collect();
            for need in ["srcaddr", "dstaddr", "dstport", "protocol"] {
                if !names.iter().any(|n| n == need) {
                    return Err(perr(
                        file,
                        line,
                        "header",
                        format!("the header has no `{need}` field"),
                    ));
                }
            }
            header = Some(names);
            continue;
        }
        seen_data = true;
        let names: Vec<&str> = match &header {
            Some(h) => h.iter().map(String::as_str).collect(),
            None => AWS_DEFAULT.to_vec(),
        };
        if fields.len() != names.len() {
            return Err(perr(
                file,
                line,
                "record",
                format!(
                    "{} fields, expected {} ({})",
                    fields.len(),
                    names.len(),
                    names.join(" ")
                ),
            ));
        }
        let get = |name: &str| {
            names
                .iter()
                .position(|n| *n == name)
                .map(|i| fields[i])
                .filter(|v| *v != "-")
        };
        match get("log-status") {
            None | Some("OK") => {}
            Some(s @ ("NODATA" | "SKIPDATA")) => {
                log.skip(s);
                continue;
            }
            Some(s) => {
                return Err(perr(
                    file,
                    line,
                    "log-status",
                    format!("`{s}` is not OK, NODATA or SKIPDATA"),
                ))
            }
        }
        let (Some(src), Some(dst), Some(pr)) = (get("srcaddr"), get("dstaddr"), get("protocol"))
        else {
            log.skip("missing fields");
            continue;
        };
        let src = parse_ip(file, line, "srcaddr", src)?;
        let dst = parse_ip(file, line, "dstaddr", dst)?;
        let p: u8 = pr.parse().map_err(|_| {
            perr(
                file,
                line,
                "protocol",
                format!("`{pr}` is not a protocol number (0-255)"),
            )
        })?;
        let mut r = FlowRecord::new(line, src, dst, p);
        r.provider = Some(ProviderKind::Aws);
        if proto::has_ports(p) {
            let Some(dp) = get("dstport") else {
                log.skip("missing fields");
                continue;
            };
            r.dst_port = Some(parse_port(file, line, "dstport", dp)?);
            if let Some(sp) = get("srcport") {
                r.src_port = Some(parse_port(file, line, "srcport", sp)?);
            }
        }
        r.observed = match get("action") {
            None => None,
            Some("ACCEPT") => Some(true),
            Some("REJECT") => Some(false),
            Some(a) => {
                return Err(perr(
                    file,
                    line,
                    "action",
                    format!("`{a}` is not ACCEPT or REJECT"),
                ))
            }
        };
        log.records.push(r);
    }
    Ok(log)
}

/// Byte offsets of line starts, to turn offsets into line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        let mut v = vec![0];
        v.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines(v)
    }
    fn line_of(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

fn json_err(file: &str, e: &serde_json::Error, line_base: usize) -> ParseError {
    perr(
        file,
        line_base + e.line().saturating_sub(1),
        "json",
        e.to_string(),
    )
}

/// Azure NSG flow logs (JSON, version 1 or 2).
pub fn parse_azure(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| json_err(file, &e, 1))?;
    let lines = Lines::new(text);
    let mut cursor = 0usize;
    let mut last_line = 1usize;
    let mut log = FlowLog::default();
    let Some(records) = doc.get("records").and_then(Value::as_array) else {
        return Err(perr(
            file,
            1,
            "records",
            "expected an object with a `records` array (an NSG flow log blob)",
        ));
    };
    for (ri, rec) in records.iter().enumerate() {
        let at = format!("records[{ri}]");
        let Some(props) = rec.get("properties") else {
            return Err(perr(
                file,
                last_line,
                &format!("{at}.properties"),
                "missing",
            ));
        };
        let version = match props.get("Version") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n @ (1 | 2)) => Some(n),
                _ => {
                    return Err(perr(
                        file,
                        last_line,
                        &format!("{at}.properties.Version"),
                        format!("`{v}` is not 1 or 2"),
                    ))
                }
            },
        };
        let rule_flows = props
            .get("flows")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                perr(
                    file,
                    last_line,
                    &format!("{at}.properties.flows"),
                    "missing or not an array",
                )
            })?;
        for (fi, rf) in rule_flows.iter().enumerate() {
            let inner = rf.get("flows").and_then(Value::as_array).ok_or_else(|| {
                perr(
                    file,
                    last_line,
                    &format!("{at}.properties.flows[{fi}].flows"),
                    "missing or not an array",
                )
            })?;
            for (mi, m) in inner.iter().enumerate() {
                let where_ = format!("{at}.properties.flows[{fi}].flows[{mi}].flowTuples");
                let tuples = m
                    .get("flowTuples")
                    .and_then(Value::as_array)
                    .ok_or_else(|| perr(file, last_line, &where_, "missing or not an array"))?;
                for (ti, t) in tuples.iter().enumerate() {
                    let field = format!("{where_}[{ti}]");
                    let Some(t) = t.as_str() else {
                        return Err(perr(file, last_line, &field, "not a string"));
                    };
                    // find the tuple in the text (document order) for its line
                    let needle = format!("\"{t}\"");
                    if let Some(off) = text.get(cursor..).and_then(|s| s.find(&needle)) {
                        cursor += off + needle.len();
                        last_line = lines.line_of(cursor - needle.len());
                    }
                    log.records
                        .push(azure_tuple(file, last_line, &field, version, t)?);
                }
            }
        }
    }
    Ok(log)
}

fn azure_tuple(
    file: &str,
    line: usize,
    at: &str,
    version: Option<u64>,
    t: &str,
) -> Result<FlowRecord, ParseError> {
    let f: Vec<&str> = t.split(',').collect();
    let ok_len = match version {
        Some(1) => f.len() == 8,
        Some(_) => f.len() == 13,
        None => f.len() == 8 || f.len() == 13,
    };
    if !ok_len {
        return Err(perr(
            file,
            line,
            at,
            format!(
                "{} fields in `{t}`, expected {} (version {})",
                f.len(),
                if version == Some(1) { "8" } else { "13" },
                version.map(|v| v.to_string()).unwrap_or("1 or 2".into())
            ),
        ));
    }
    let fld = |name: &str| format!("{at} field `{name}`");
    let src = parse_ip(file, line, &fld("srcIP"), f[1])?;
    let dst = parse_ip(file, line, &fld("dstIP"), f[2])?;
    let sp = parse_port(file, line, &fld("srcPort"), f[3])?;
    let dp = parse_port(file, line, &fld("dstPort"), f[4])?;
    let p = match f[5] {
        "T" => proto::TCP,
        "U" => proto::UDP,
        x => {
            return Err(perr(
                file,
                line,
                &fld("protocol"),
                format!("`{x}` is not T or U"),
            ))
        }
    };
    if !matches!(f[6], "I" | "O") {
        return Err(perr(
            file,
            line,
            &fld("direction"),
            format!("`{}` is not I or O", f[6]),
        ));
    }
    let observed = match f[7] {
        "A" => true,
        "D" => false,
        x => {
            return Err(perr(
                file,
                line,
                &fld("decision"),
                format!("`{x}` is not A or D"),
            ))
        }
    };
    if f.len() == 13 && !matches!(f[8], "B" | "C" | "E" | "D") {
        return Err(perr(
            file,
            line,
            &fld("state"),
            format!("`{}` is not B, C, E or D", f[8]),
        ));
    }
    if f[0].parse::<u64>().is_err() {
        return Err(perr(
            file,
            line,
            &fld("timestamp"),
            format!("`{}` is not a Unix time", f[0]),
        ));
    }
    let mut r = FlowRecord::new(line, src, dst, p);
    r.provider = Some(ProviderKind::Azure);
    r.src_port = Some(sp);
    r.dst_port = Some(dp);
    r.observed = Some(observed);
    Ok(r)
}

/// Start offsets of the elements of a top-level JSON array (the text is valid JSON).
fn array_element_starts(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut depth, mut in_str, mut esc, mut want) = (0usize, false, false, false);
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if depth == 1 && want && c != b']' {
            out.push(i);
            want = false;
        }
        match c {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth == 1 {
                    want = true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => want = true,
            _ => {}
        }
    }
    out
}

/// GCP VPC flow logs / firewall logs: JSON lines, or a JSON array of entries.
pub fn parse_gcp(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    let mut entries: Vec<(usize, Value)> = Vec::new();
    if text.trim_start().starts_with('[') {
        let all: Vec<Value> = serde_json::from_str(text).map_err(|e| json_err(file, &e, 1))?;
        let lines = Lines::new(text);
        let starts = array_element_starts(text);
        for (i, v) in all.into_iter().enumerate() {
            let line = starts.get(i).map(|&o| lines.line_of(o)).unwrap_or(1);
            entries.push((line, v));
        }
    } else {
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(raw).map_err(|e| json_err(file, &e, i + 1))?;
            entries.push((i + 1, v));
        }
    }
    let mut log = FlowLog::default();
    for (line, e) in entries {
        let Some(conn) = e.pointer("/jsonPayload/connection") else {
            return Err(perr(file, line, "jsonPayload.connection", "missing"));
        };
        let s = |k: &str| conn.get(k);
        let ip = |k: &str| -> Result<IpAddr, ParseError> {
            match s(k).and_then(Value::as_str) {
                Some(x) => parse_ip(file, line, &format!("connection.{k}"), x),
                None => Err(perr(
                    file,
                    line,
                    &format!("connection.{k}"),
                    "missing or not a string",
                )),
            }
        };
        let src = ip("src_ip")?;
        let dst = ip("dest_ip")?;
        let p = match s("protocol") {
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
            Some(Value::String(x)) => parse_protocol(x),
            _ => None,
        }
        .ok_or_else(|| {
            perr(
                file,
                line,
                "connection.protocol",
                format!(
                    "`{}` is not a protocol number or name",
                    s("protocol").map(|v| v.to_string()).unwrap_or_default()
                ),
            )
        })?;
        let port = |k: &str| -> Result<Option<u16>, ParseError> {
            match s(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| {
                        perr(
                            file,
                            line,
                            &format!("connection.{k}"),
                            format!("`{n}` is not a port"),
                        )
                    }),
                Some(Value::String(x)) => {
                    parse_port(file, line, &format!("connection.{k}"), x).map(Some)
                }
                Some(v) => Err(perr(
                    file,
                    line,
                    &format!("connection.{k}"),
                    format!("`{v}` is not a port"),
                )),
            }
        };
        let mut r = FlowRecord::new(line, src, dst, p);
        r.provider = Some(ProviderKind::Gcp);
        if proto::has_ports(p) {
            r.dst_port = port("dest_port")?;
            if r.dst_port.is_none() {
                return Err(perr(
                    file,
                    line,
                    "connection.dest_port",
                    "missing for a tcp/udp/sctp connection",
                ));
            }
            r.src_port = port("src_port")?;
        }
        if let Some(rep) = e.pointer("/jsonPayload/reporter") {
            if !matches!(rep.as_str(), Some("SRC" | "DEST")) {
                return Err(perr(
                    file,
                    line,
                    "jsonPayload.reporter",
                    format!("`{rep}` is not SRC or DEST"),
                ));
            }
        }
        r.observed = match e.pointer("/jsonPayload/disposition") {
            None => None,
            Some(d) => match d.as_str() {
                Some("ALLOWED") => Some(true),
                Some("DENIED") => Some(false),
                _ => {
                    return Err(perr(
                        file,
                        line,
                        "jsonPayload.disposition",
                        format!("`{d}` is not ALLOWED or DENIED"),
                    ))
                }
            },
        };
        log.records.push(r);
    }
    Ok(log)
}

const CSV_REQUIRED: [&str; 6] = ["deployment", "provider", "src", "dst", "protocol", "port"];
const CSV_OPTIONAL: [&str; 3] = ["icmp_type", "icmp_code", "expected"];

/// CSV: `deployment,provider,src,dst,protocol,port[,icmp_type,icmp_code,expected]`.
pub fn parse_csv(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    let mut log = FlowLog::default();
    let mut cols: Option<Vec<String>> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = l.split(',').map(str::trim).collect();
        let Some(names) = &cols else {
            let names: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
            for n in &names {
                if !CSV_REQUIRED.contains(&n.as_str()) && !CSV_OPTIONAL.contains(&n.as_str()) {
                    return Err(perr(
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
                    return Err(perr(
                        file,
                        line,
                        "header",
                        format!("missing column `{need}`"),
                    ));
                }
            }
            cols = Some(names);
            continue;
        };
        if fields.len() != names.len() {
            return Err(perr(
                file,
                line,
                "record",
                format!("{} fields, expected {}", fields.len(), names.len()),
            ));
        }
        let get = |n: &str| {
            names
                .iter()
                .position(|c| c == n)
                .map(|i| fields[i])
                .filter(|v| !v.is_empty())
        };
        let src = parse_ip(file, line, "src", get("src").unwrap_or(""))?;
        let dst = parse_ip(file, line, "dst", get("dst").unwrap_or(""))?;
        let pt = get("protocol").unwrap_or("");
        let p = parse_protocol(pt).ok_or_else(|| {
            perr(
                file,
                line,
                "protocol",
                format!("`{pt}` is not a protocol name or number"),
            )
        })?;
        let mut r = FlowRecord::new(line, src, dst, p);
        r.deployment = get("deployment").map(String::from);
        if let Some(pv) = get("provider") {
            r.provider = Some(
                ProviderKind::parse(&pv.to_ascii_lowercase()).ok_or_else(|| {
                    perr(
                        file,
                        line,
                        "provider",
                        format!("`{pv}` is not aws, azure or gcp"),
                    )
                })?,
            );
        }
        match get("port") {
            Some(x) if proto::has_ports(p) => r.dst_port = Some(parse_port(file, line, "port", x)?),
            None if proto::has_ports(p) => {
                return Err(perr(
                    file,
                    line,
                    "port",
                    format!("missing for {}", proto::name(p)),
                ))
            }
            Some(x) => {
                return Err(perr(
                    file,
                    line,
                    "port",
                    format!("`{x}` given, but {} has no ports", proto::name(p)),
                ))
            }
            None => {}
        }
        let num = |n: &str| -> Result<Option<u8>, ParseError> {
            get(n)
                .map(|x| {
                    x.parse::<u8>()
                        .map_err(|_| perr(file, line, n, format!("`{x}` is not 0-255")))
                })
                .transpose()
        };
        r.icmp_type = num("icmp_type")?;
        r.icmp_code = num("icmp_code")?;
        if (r.icmp_type.is_some() || r.icmp_code.is_some()) && !proto::is_icmp(p) {
            return Err(perr(
                file,
                line,
                "icmp_type",
                format!("given, but the protocol is {}", proto::name(p)),
            ));
        }
        if r.icmp_code.is_some() && r.icmp_type.is_none() {
            return Err(perr(file, line, "icmp_code", "given without icmp_type"));
        }
        r.expected = match get("expected").map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("allow") => Some(true),
            Some("deny") => Some(false),
            Some(x) => {
                return Err(perr(
                    file,
                    line,
                    "expected",
                    format!("`{x}` is not allow or deny"),
                ))
            }
        };
        log.records.push(r);
    }
    if cols.is_none() {
        return Err(perr(
            file,
            1,
            "header",
            format!("no header line ({})", CSV_REQUIRED.join(",")),
        ));
    }
    Ok(log)
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Index into `Ctx::declared`.
    Member(usize),
    Unknown,
    External,
}

struct Ctx<'a> {
    intent: DeploymentIntent,
    policy: EvalPolicy,
    allowances: Vec<FlowIntent>,
    declared: Vec<(&'a str, AddrSet)>,
    reach: AddrSet,
    icmp_classes: Vec<Packet>,
    stats: TargetReplay,
}

impl Ctx<'_> {
    fn side(&self, ip: IpAddr) -> Side {
        for (i, (_, a)) in self.declared.iter().enumerate() {
            if a.contains(ip) {
                return Side::Member(i);
            }
        }
        if self.intent.space.contains(ip) {
            Side::Unknown
        } else {
            Side::External
        }
    }
}

/// One side's verdict on a record: allowed as sent or as a reply.
struct Judged {
    allowed: bool,
    as_reply: bool,
}

fn host(c: &Ctx<'_>, ip: IpAddr, s: Side) -> Host {
    Host {
        ip,
        group: match s {
            Side::Member(i) => Some(c.declared[i].0.to_string()),
            _ => None,
        },
    }
}

/// The packets a record stands for (ICMP without type/code: every class of its protocol).
fn candidates(r: &FlowRecord, icmp_classes: &[Packet]) -> Vec<Packet> {
    let p = r.proto;
    if proto::has_ports(p) {
        return vec![Packet::ported(p, r.dst_port.unwrap_or(0))];
    }
    if !proto::is_icmp(p) {
        return vec![Packet::ported(p, 0)];
    }
    match (r.icmp_type, r.icmp_code) {
        (Some(t), Some(c)) => vec![Packet::icmp(p, t, c)],
        (t, _) => {
            let v: Vec<Packet> = icmp_classes
                .iter()
                .filter(|k| k.proto == p && t.is_none_or(|t| t == k.icmp_type))
                .copied()
                .collect();
            if v.is_empty() {
                vec![Packet::icmp(p, t.unwrap_or(0), 0)]
            } else {
                v
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

/// Replay a parsed log against the targets of a plan (the state each would hold after apply).
pub fn replay(
    intent: &Intent,
    plan: &Plan,
    file: &str,
    format: FlowFormat,
    log: &FlowLog,
) -> anyhow::Result<Replay> {
    let started = Instant::now();
    let mut ctxs: Vec<Ctx<'_>> = Vec::new();
    for t in &plan.targets {
        let dep = intent
            .deployments
            .get(&t.deployment)
            .ok_or_else(|| anyhow::anyhow!("plan names unknown deployment `{}`", t.deployment))?;
        let di = dep.resolve(t.provider).ok_or_else(|| {
            anyhow::anyhow!("deployment `{}` has no {} placement", dep.name, t.provider)
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
        let reach = declared
            .iter()
            .fold(di.space.clone(), |acc, (_, a)| acc.union(a));
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
            reach,
            icmp_classes,
        });
    }

    let skipped: u64 = log.skipped.values().sum();
    let mut out = Replay {
        file: file.to_string(),
        format,
        records: log.records.len() as u64 + skipped,
        skipped,
        skipped_by_reason: log.skipped.clone(),
        outside: 0,
        outside_examples: vec![],
        unattributed: 0,
        checked: 0,
        mismatches: 0,
        expectations_failed: 0,
        drift: 0,
        targets: vec![],
        millis: 0,
    };
    // (target, src, dst, packet, src port) -> (oracle, native) effective verdicts
    type Key = (usize, IpAddr, IpAddr, Packet, Option<u16>);
    let mut cache: HashMap<Key, (Judged, Judged)> = HashMap::new();

    for r in &log.records {
        if let Some(d) = &r.deployment {
            if !intent.deployments.contains_key(d) {
                anyhow::bail!("{file}:{}: deployment: unknown deployment `{d}`", r.line);
            }
        }
        let mut belongs = false;
        for (ti, c) in ctxs.iter_mut().enumerate() {
            if r.provider.is_some_and(|p| p != c.intent.provider)
                || r.deployment
                    .as_ref()
                    .is_some_and(|d| d != &c.intent.deployment)
            {
                continue;
            }
            if !c.reach.contains(r.src) && !c.reach.contains(r.dst) {
                continue;
            }
            belongs = true;
            c.stats.records += 1;
            let (ss, ds) = (c.side(r.src), c.side(r.dst));
            if ss == Side::Unknown || ds == Side::Unknown {
                c.stats.unattributed += 1;
                if c.stats.unattributed_examples.len() < EXAMPLES_SHOWN {
                    c.stats
                        .unattributed_examples
                        .push(format!("{file}:{}: {r}", r.line));
                }
                continue;
            }
            c.stats.checked += 1;
            let (src, dst) = (host(c, r.src, ss), host(c, r.dst, ds));
            let mut verdicts: Vec<(Probe, bool, bool, bool)> = Vec::new(); // probe, oracle, native, reply-only?
            let mut first_bad: Option<(Probe, Judged, Judged)> = None;
            for packet in candidates(r, &c.icmp_classes) {
                if !packet.fits_family(r.src.is_ipv4()) {
                    continue;
                }
                let fwd = Probe {
                    src: src.clone(),
                    dst: dst.clone(),
                    packet,
                };
                let rev = if proto::has_ports(packet.proto) {
                    r.src_port.map(|sp| Probe {
                        src: dst.clone(),
                        dst: src.clone(),
                        packet: Packet::ported(packet.proto, sp),
                    })
                } else {
                    Some(Probe {
                        src: dst.clone(),
                        dst: src.clone(),
                        packet,
                    })
                };
                let key = (ti, r.src, r.dst, packet, r.src_port);
                let (o, n) = cache.entry(key).or_insert_with(|| {
                    let o_f = judge(&c.intent, &c.allowances, &fwd).allowed;
                    let n_f = c.policy.evaluate(&fwd).allowed;
                    let o_r = !o_f
                        && rev
                            .as_ref()
                            .is_some_and(|p| judge(&c.intent, &c.allowances, p).allowed);
                    let n_r = !n_f && rev.as_ref().is_some_and(|p| c.policy.evaluate(p).allowed);
                    (
                        Judged {
                            allowed: o_f || o_r,
                            as_reply: o_r,
                        },
                        Judged {
                            allowed: n_f || n_r,
                            as_reply: n_r,
                        },
                    )
                });
                if o.allowed != n.allowed && first_bad.is_none() {
                    first_bad = Some((
                        fwd.clone(),
                        Judged {
                            allowed: o.allowed,
                            as_reply: o.as_reply,
                        },
                        Judged {
                            allowed: n.allowed,
                            as_reply: n.as_reply,
                        },
                    ));
                }
                verdicts.push((fwd, o.allowed, n.allowed, o.as_reply));
            }
            if verdicts.is_empty() {
                continue;
            }
            // the intent's verdict, when every candidate packet agrees
            let intent_verdict = if verdicts.iter().all(|v| v.1 == verdicts[0].1) {
                Some(verdicts[0].1)
            } else {
                None
            };
            let native_verdict = if verdicts.iter().all(|v| v.2 == verdicts[0].2) {
                Some(verdicts[0].2)
            } else {
                None
            };
            if let Some((fwd, o, n)) = first_bad {
                c.stats.mismatches += 1;
                if c.stats.findings.len() < MISMATCHES_SHOWN {
                    let f = mismatch_finding(c, file, r, &fwd, &o, &n);
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
                        c.stats.findings.push(Finding {
                            kind: FindingKind::Expectation,
                            deployment: c.intent.deployment.clone(),
                            provider: Some(c.intent.provider),
                            flow: None,
                            message: format!(
                                "{file}:{}: {}: expected {}, but {}",
                                r.line,
                                verdicts[0].0,
                                word(want),
                                why.join("; ")
                            ),
                        });
                    }
                }
            }
        }
        if !belongs {
            out.outside += 1;
            if out.outside_examples.len() < EXAMPLES_SHOWN {
                out.outside_examples.push(format!("{file}:{}: {r}", r.line));
            }
        }
    }
    for c in ctxs {
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
                message: format!("{file}: {hidden} more disagreeing flow-log records not shown"),
            });
        }
        out.unattributed += t.unattributed;
        out.checked += t.checked;
        out.mismatches += t.mismatches;
        out.expectations_failed += t.expectations_failed;
        out.drift += t.drift;
        out.targets.push(t);
    }
    out.millis = started.elapsed().as_millis() as u64;
    Ok(out)
}

fn mismatch_finding(
    c: &Ctx<'_>,
    file: &str,
    r: &FlowRecord,
    fwd: &Probe,
    o: &Judged,
    n: &Judged,
) -> Finding {
    // the intent's reasons: the forward judgement, or the reply's when that admitted it
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
            .map(|p| judge(&c.intent, &c.allowances, &p))
            .unwrap_or_else(|| judge(&c.intent, &c.allowances, fwd))
    } else {
        judge(&c.intent, &c.allowances, fwd)
    };
    let nv_probe = if n.as_reply {
        rev_of(fwd).unwrap_or_else(|| fwd.clone())
    } else {
        fwd.clone()
    };
    let nv = c.policy.evaluate(&nv_probe);
    let rule = nv
        .deciding()
        .and_then(|d| d.rule)
        .map(|i| &c.policy.rules[i]);
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
        deployment: c.intent.deployment.clone(),
        provider: Some(c.intent.provider),
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
            c.intent.provider,
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn aws_default_format_with_header_nodata_and_skipdata() {
        let text = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n\
2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA\n\
2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA\n\
\n\
2 123456789010 eni-1235b8ca123456789 203.0.113.12 172.31.16.139 0 0 1 4 336 1432917027 1432917142 REJECT OK\n";
        let log = parse_aws("f.log", text).unwrap();
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.skipped.get("NODATA"), Some(&1));
        assert_eq!(log.skipped.get("SKIPDATA"), Some(&1));
        let r = &log.records[0];
        assert_eq!(r.line, 2);
        assert_eq!(
            (r.src, r.dst, r.proto, r.src_port, r.dst_port, r.observed),
            (
                ip("172.31.16.139"),
                ip("172.31.16.21"),
                6,
                Some(20641),
                Some(22),
                Some(true)
            )
        );
        let icmp = &log.records[1];
        assert_eq!(
            (icmp.proto, icmp.dst_port, icmp.observed),
            (1, None, Some(false))
        );
        assert_eq!(icmp.line, 6);
    }

    #[test]
    fn aws_without_header_and_custom_header() {
        let log = parse_aws(
            "f",
            "2 1 eni-1 10.0.0.1 10.0.0.2 443 50000 6 1 40 1 2 ACCEPT OK\n",
        )
        .unwrap();
        assert_eq!(log.records[0].dst_port, Some(50000));
        let log = parse_aws(
            "f",
            "srcaddr dstaddr dstport protocol action\n10.0.0.1 10.0.0.2 22 6 REJECT\n",
        )
        .unwrap();
        assert_eq!(log.records[0].observed, Some(false));
        assert_eq!(log.records[0].src_port, None);
        let e = parse_aws("f", "srcaddr dstport protocol\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (1, "header"));
    }

    #[test]
    fn aws_malformed_lines_name_the_line_and_field() {
        let good = "2 1 eni-1 10.0.0.1 10.0.0.2 443 50000 6 1 40 1 2 ACCEPT OK\n";
        let e = parse_aws(
            "x.log",
            &format!("{good}2 1 eni-1 10.0.0.999 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "srcaddr"));
        assert!(e.to_string().starts_with("x.log:2: srcaddr:"), "{e}");
        let e = parse_aws("x", &format!("{good}{good}2 1 eni-1 10.0.0.1\n")).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "record"));
        let e = parse_aws(
            "x",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 99999 6 1 1 1 2 ACCEPT OK\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "dstport");
        let e = parse_aws(
            "x",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 tcp 1 1 1 2 ACCEPT OK\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "protocol");
        let e = parse_aws("x", "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 MAYBE OK\n").unwrap_err();
        assert_eq!(e.field, "action");
        let e = parse_aws(
            "x",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT WHAT\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "log-status");
        // a missing address is skipped, not an error
        let log = parse_aws("x", "2 1 eni-1 - 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n").unwrap();
        assert_eq!(log.skipped.get("missing fields"), Some(&1));
    }

    const AZURE: &str = r#"{
  "records": [
    {
      "time": "2026-11-20T10:00:00.0000000Z",
      "properties": {
        "Version": 2,
        "flows": [
          {
            "rule": "DefaultRule_DenyAllInBound",
            "flows": [
              {
                "mac": "000D3AF87856",
                "flowTuples": [
                  "1542110377,94.102.49.190,10.20.20.4,28746,5432,T,I,D,B,,,,",
                  "1542110379,10.20.20.4,100.64.20.9,44931,443,T,O,A,E,12,1512,10,8000"
                ]
              }
            ]
          }
        ]
      }
    },
    {
      "time": "2026-11-20T10:01:00.0000000Z",
      "properties": {
        "Version": 1,
        "flows": [ { "rule": "r", "flows": [ { "mac": "m", "flowTuples": [ "1542110400,10.20.20.5,10.20.20.4,50000,5432,T,I,A" ] } ] } ]
      }
    }
  ]
}"#;

    #[test]
    fn azure_v1_and_v2_tuples_with_lines() {
        let log = parse_azure("a.json", AZURE).unwrap();
        assert_eq!(log.records.len(), 3);
        let r = &log.records[0];
        assert_eq!(r.line, 14);
        assert_eq!(
            (r.src, r.proto, r.dst_port, r.observed),
            (ip("94.102.49.190"), 6, Some(5432), Some(false))
        );
        assert_eq!(log.records[1].line, 15);
        assert_eq!(log.records[1].observed, Some(true));
        assert_eq!(log.records[2].line, 27);
    }

    #[test]
    fn azure_malformed_tuples_name_the_line() {
        let bad = AZURE.replace("44931,443,T,O,A,E", "44931,443,X,O,A,E");
        let e = parse_azure("a.json", &bad).unwrap_err();
        assert_eq!(e.line, 15);
        assert!(
            e.field.contains("flowTuples[1]") && e.field.contains("protocol"),
            "{e}"
        );
        let bad = AZURE.replace("T,I,A\"", "T,I\"");
        let e = parse_azure("a.json", &bad).unwrap_err();
        assert_eq!(e.line, 27, "{e}");
        let e = parse_azure("a.json", "{\"records\": [\n  {]}").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "json"));
        let e = parse_azure("a.json", "[]").unwrap_err();
        assert_eq!(e.field, "records");
        let bad = AZURE.replace("\"Version\": 2", "\"Version\": 7");
        assert!(parse_azure("a.json", &bad)
            .unwrap_err()
            .field
            .contains("Version"));
    }

    #[test]
    fn gcp_json_lines_and_arrays() {
        let lines = r#"{"insertId":"1","jsonPayload":{"connection":{"src_ip":"10.30.20.4","dest_ip":"100.64.20.9","src_port":40000,"dest_port":443,"protocol":6},"reporter":"SRC"}}

{"jsonPayload":{"connection":{"src_ip":"34.120.1.7","dest_ip":"10.30.20.4","protocol":1},"disposition":"DENIED"}}
"#;
        let log = parse_gcp("g.jsonl", lines).unwrap();
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.records[0].dst_port, Some(443));
        assert_eq!(log.records[1].line, 3);
        assert_eq!(log.records[1].observed, Some(false));
        assert_eq!(log.records[1].proto, proto::ICMP);
        let array = format!(
            "[\n  {},\n  {}\n]",
            lines.lines().next().unwrap(),
            lines.lines().nth(2).unwrap()
        );
        let log = parse_gcp("g.json", &array).unwrap();
        assert_eq!(
            log.records.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn gcp_malformed_entries_name_the_line() {
        let ok = r#"{"jsonPayload":{"connection":{"src_ip":"10.30.20.4","dest_ip":"10.30.20.5","src_port":1,"dest_port":5432,"protocol":6}}}"#;
        let e = parse_gcp("g", &format!("{ok}\n{{not json\n")).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "json"));
        let e = parse_gcp("g", &format!("{ok}\n{ok}\n{{\"jsonPayload\":{{}}}}\n")).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "jsonPayload.connection"));
        let e = parse_gcp("g", &ok.replace("\"dest_port\":5432,", "")).unwrap_err();
        assert_eq!(e.field, "connection.dest_port");
        let e = parse_gcp("g", &ok.replace("10.30.20.5", "nope")).unwrap_err();
        assert_eq!(e.field, "connection.dest_ip");
        let e = parse_gcp("g", &ok.replace("\"protocol\":6", "\"protocol\":300")).unwrap_err();
        assert_eq!(e.field, "connection.protocol");
    }

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
}
