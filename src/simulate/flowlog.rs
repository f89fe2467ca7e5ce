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
//! **Streaming.** A log is read record by record ([`read_records`]) and each record is judged
//! as it is read, keeping only counters and the first few examples: memory does not grow with
//! the log. AWS text, CSV and GCP JSON lines are read one line at a time into one reused buffer
//! and parsed without allocating (fields are byte slices of the line). Two formats are single
//! JSON documents and are read whole: an Azure NSG blob (Azure writes one per NSG and hour) and
//! a GCP JSON array. A malformed record stops the replay at that record, naming its line.
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

use crate::intent::Intent;
use crate::plan::Plan;
use crate::simulate::MISMATCHES_SHOWN;
use decide::{Compiled, Side, Target};
use intentwall_contract::check::packet_classes;
use intentwall_contract::oracle::{judge, OracleVerdict};
use intentwall_contract::traffic::proto;
use intentwall_contract::{
    AddrSet, DeploymentIntent, EvalPolicy, Finding, FindingKind, FlowIntent, Host, Packet, Probe,
    ProviderKind, Traffic,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};
use std::net::{IpAddr, Ipv4Addr};
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
        Self::by_extension(path, || text.contains(AZURE_MARK))
    }

    /// [`FlowFormat::infer`] for a file on disk, reading it (in chunks, only for `.json` and
    /// the like) rather than holding it.
    pub fn infer_file(path: &Path) -> std::io::Result<FlowFormat> {
        let mut found = Ok(false);
        let f = Self::by_extension(path, || {
            found = std::fs::File::open(path).and_then(|f| contains(f, AZURE_MARK.as_bytes()));
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

/// What only an Azure NSG flow log holds.
const AZURE_MARK: &str = "\"flowTuples\"";

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

/// [`perr`], boxed: the AWS hot path returns boxed errors so its results stay small.
fn bperr(file: &str, line: usize, field: &str, message: impl Into<String>) -> Box<ParseError> {
    Box::new(perr(file, line, field, message))
}

fn perr(file: &str, line: usize, field: &str, message: impl Into<String>) -> ParseError {
    ParseError {
        file: file.to_string(),
        line,
        field: field.to_string(),
        message: message.into(),
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

/// AWS VPC Flow Logs, text.
pub fn parse_aws(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    parse(FlowFormat::AwsVpc, file, text)
}

/// Azure NSG flow logs (JSON, version 1 or 2).
pub fn parse_azure(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    parse(FlowFormat::AzureNsg, file, text)
}

/// GCP VPC flow logs / firewall logs: JSON lines, or a JSON array of entries.
pub fn parse_gcp(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    parse(FlowFormat::Gcp, file, text)
}

/// CSV: `deployment,provider,src,dst,protocol,port[,icmp_type,icmp_code,expected]`.
pub fn parse_csv(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    parse(FlowFormat::Csv, file, text)
}

/// Records skipped while reading, by reason (fixed words, so counting allocates nothing).
type Skips = BTreeMap<&'static str, u64>;

fn skip(skips: &mut Skips, why: &'static str) {
    *skips.entry(why).or_default() += 1;
}

/// Read a flow log record by record, handing each to `sink` (which may stop the reading with
/// an error); returns the skipped records by reason. Line-based formats keep one line and one
/// record in memory, reused; an Azure blob or a GCP JSON array is read whole (see the module
/// docs). Every record's two addresses are of one family.
pub fn read_records<R: BufRead, E: From<ParseError>>(
    format: FlowFormat,
    file: &str,
    mut reader: R,
    mut sink: impl FnMut(&FlowRecord) -> Result<(), E>,
) -> Result<BTreeMap<String, u64>, E> {
    let mut skips = Skips::new();
    let mut emit = |r: &FlowRecord| -> Result<(), E> {
        // no packet travels from an IPv4 to an IPv6 address
        if r.src.is_ipv4() != r.dst.is_ipv4() {
            return Err(perr(
                file,
                r.line,
                "destination address",
                format!("{} and {} are of different IP families", r.src, r.dst),
            )
            .into());
        }
        sink(r)
    };
    let by_reason = |s: &Skips| s.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    if format == FlowFormat::AzureNsg {
        let text = read_rest(file, 1, &mut reader, String::new())?;
        azure_document(file, &text, &mut emit)?;
        return Ok(by_reason(&skips));
    }
    let mut parser = LineParser::new(format);
    let nowhere = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let mut rec = FlowRecord::new(0, nowhere, nowhere, 0);
    let mut lines = LineReader {
        reader,
        carry: Vec::new(),
        used: 0,
    };
    let mut line = 0usize;
    loop {
        let (bytes, ascii) = match lines.next() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                let e = perr(file, line + 1, "file", format!("cannot read flow log: {e}"));
                return Err(e.into());
            }
        };
        line += 1;
        let bytes = match bytes.strip_suffix(b"\n") {
            Some(b) => b.strip_suffix(b"\r").unwrap_or(b),
            None => bytes,
        };
        let step = parser.line(file, line, bytes, ascii, &mut rec, &mut skips);
        match step.map_err(|e| E::from(*e))? {
            Step::Nothing => {}
            Step::Record => emit(&rec)?,
            Step::Document => {
                // a GCP JSON array is one document: read it whole, blank lines before it
                // kept so serde's line numbers stay the file's
                let mut doc = "\n".repeat(line - 1);
                doc.push_str(&String::from_utf8_lossy(bytes));
                doc.push('\n');
                let doc = read_rest(file, line, &mut lines.rest(), doc)?;
                gcp_array(file, &doc, &mut emit)?;
                return Ok(by_reason(&skips));
            }
        }
    }
    parser.finish(file)?;
    Ok(by_reason(&skips))
}

/// The lines of a stream, read in place from the reader's buffer: no copy, except for a
/// line that straddles two reads.
struct LineReader<R> {
    reader: R,
    /// A line that straddles reads, assembled.
    carry: Vec<u8>,
    /// Bytes of the reader's buffer handed out, consumed at the next call.
    used: usize,
}

impl<R: BufRead> LineReader<R> {
    /// The next line, with its newline (the last line may have none), and whether it is
    /// all ASCII.
    fn next(&mut self) -> std::io::Result<Option<(&[u8], bool)>> {
        self.reader.consume(std::mem::take(&mut self.used));
        self.carry.clear();
        loop {
            let (found, len) = match self.reader.fill_buf() {
                Ok(buf) => (find_newline(buf), buf.len()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if len == 0 {
                let line = &self.carry[..];
                return Ok((!line.is_empty()).then(|| (line, line.is_ascii())));
            }
            match found {
                Some((i, ascii)) if self.carry.is_empty() => {
                    self.used = i + 1;
                    // the buffer is not consumed, so this is the same data, not a read
                    return Ok(Some((&self.reader.fill_buf()?[..=i], ascii)));
                }
                Some((i, _)) => {
                    self.carry.extend_from_slice(&self.reader.fill_buf()?[..=i]);
                    self.reader.consume(i + 1);
                    let line = &self.carry[..];
                    return Ok(Some((line, line.is_ascii())));
                }
                None => {
                    self.carry.extend_from_slice(self.reader.fill_buf()?);
                    self.reader.consume(len);
                }
            }
        }
    }

    /// The stream after the lines handed out.
    fn rest(&mut self) -> &mut R {
        self.reader.consume(std::mem::take(&mut self.used));
        &mut self.reader
    }
}

/// The first newline, and whether every byte up to it is ASCII, found eight bytes at a time
/// (the ASCII test spares ASCII lines a UTF-8 validation).
fn find_newline(b: &[u8]) -> Option<(usize, bool)> {
    const HIGH: u64 = !LOW7;
    let mut high = 0u64;
    let mut words = b.chunks_exact(8);
    for (w, word) in words.by_ref().enumerate() {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(word).unwrap_or([0; 8]));
        let nl = zero_bytes(x ^ (b'\n' as u64 * ONES));
        if nl != 0 {
            // the bytes before the newline, and the newline itself
            let keep = u64::MAX >> (63 - nl.trailing_zeros());
            high |= x & keep;
            return Some((w * 8 + nl.trailing_zeros() as usize / 8, high & HIGH == 0));
        }
        high |= x;
    }
    let base = b.len() - words.remainder().len();
    let rest = words.remainder();
    let i = rest.iter().position(|&c| c == b'\n')?;
    Some((base + i, high & HIGH == 0 && rest[..i].is_ascii()))
}

/// The rest of a stream, appended to `text`.
fn read_rest(
    file: &str,
    line: usize,
    reader: &mut impl Read,
    mut text: String,
) -> Result<String, ParseError> {
    reader
        .read_to_string(&mut text)
        .map_err(|e| perr(file, line, "file", format!("cannot read flow log: {e}")))?;
    Ok(text)
}

/// What one line gave.
enum Step {
    /// Nothing to check (blank, comment, header, skipped record).
    Nothing,
    /// The record was filled in.
    Record,
    /// The file is one JSON document (a GCP array) starting on this line.
    Document,
}

/// The state of a line-based format's parser.
enum LineParser {
    Aws(AwsParser),
    Csv(CsvParser),
    Gcp { seen: bool },
}

impl LineParser {
    fn new(format: FlowFormat) -> Self {
        match format {
            FlowFormat::Csv => LineParser::Csv(CsvParser { cols: None }),
            FlowFormat::Gcp => LineParser::Gcp { seen: false },
            _ => LineParser::Aws(AwsParser {
                cols: AwsCols::new(AWS_DEFAULT.iter().map(|s| s.to_string()).collect()),
                header: false,
                seen_data: false,
                ips: IpCache::new(),
            }),
        }
    }

    fn line(
        &mut self,
        file: &str,
        line: usize,
        bytes: &[u8],
        ascii: bool,
        rec: &mut FlowRecord,
        skips: &mut Skips,
    ) -> Result<Step, Box<ParseError>> {
        if let LineParser::Aws(p) = self {
            return p.line(file, line, bytes, ascii, rec, skips);
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Err(bperr(file, line, "text", "not UTF-8 text"));
        };
        match self {
            LineParser::Aws(_) => Ok(Step::Nothing),
            LineParser::Csv(p) => p.line(file, line, text, rec).map_err(Box::new),
            LineParser::Gcp { seen } => {
                if text.trim().is_empty() {
                    return Ok(Step::Nothing);
                }
                if !*seen && text.trim_start().starts_with('[') {
                    return Ok(Step::Document);
                }
                *seen = true;
                let v: Value = serde_json::from_str(text).map_err(|e| json_err(file, &e, line))?;
                *rec = gcp_entry(file, line, &v)?;
                Ok(Step::Record)
            }
        }
    }

    /// Checks at the end of the file.
    fn finish(&self, file: &str) -> Result<(), ParseError> {
        match self {
            LineParser::Csv(CsvParser { cols: None }) => Err(perr(
                file,
                1,
                "header",
                format!("no header line ({})", CSV_REQUIRED.join(",")),
            )),
            _ => Ok(()),
        }
    }
}

/// An IPv4 address in dotted-quad form, parsed straight from the bytes; anything else (IPv6,
/// errors) is left to the standard parser. Accepts exactly what `Ipv4Addr::from_str` does:
/// four decimal octets of 1 to 3 digits, at most 255, no leading zero.
fn fast_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    if !(7..=15).contains(&b.len()) {
        return None;
    }
    // one pass: a dot closes an octet; a digit extends it (no leading zero, at most three)
    let (mut addr, mut octet, mut digits, mut dots) = (0u32, 0u32, 0u32, 0u32);
    for &c in b {
        if c == b'.' {
            if digits == 0 || octet > 255 || dots == 3 {
                return None;
            }
            (addr, octet, digits, dots) = (addr << 8 | octet, 0, 0, dots + 1);
        } else {
            let d = c.wrapping_sub(b'0') as u32;
            if d > 9 || digits == 3 || (digits == 1 && octet == 0) {
                return None;
            }
            (octet, digits) = (octet * 10 + d, digits + 1);
        }
    }
    (dots == 3 && digits > 0 && octet <= 255).then(|| Ipv4Addr::from(addr << 8 | octet))
}

/// Split a line like `split_ascii_whitespace`, calling `field(index, start, end)` for each
/// field; returns how many there are. The replay's hottest loop, so it works on 64-byte
/// blocks: a bitmap of the block's whitespace bytes (eight at a time, see
/// [`whitespace_bits`]) gives every field's start and end by bit arithmetic, at a few
/// operations per word and per field instead of a branch per byte.
fn split_fields(b: &[u8], mut field: impl FnMut(usize, usize, usize)) -> usize {
    let (mut n, mut start, mut open) = (0, 0, false);
    let mut prev_ws = true; // before the line: as after whitespace
    for (k, block) in b.chunks(64).enumerate() {
        let base = k * 64;
        let mut ws = 0u64;
        let mut words = block.chunks_exact(8);
        for (w, word) in words.by_ref().enumerate() {
            let x = u64::from_le_bytes(<[u8; 8]>::try_from(word).unwrap_or([0; 8]));
            ws |= (whitespace_bits(x) as u64) << (8 * w);
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let x = tail.iter().rev().fold(0u64, |acc, &c| acc << 8 | c as u64);
            ws |= (whitespace_bits(x) as u64) << (block.len() - tail.len());
        }
        if block.len() < 64 {
            // past the line's end: as whitespace, which ends a last field there
            ws |= u64::MAX << block.len();
        }
        let after_ws = (ws << 1) | prev_ws as u64;
        let (mut starts, ends) = (!ws & after_ws, ws & !after_ws);
        if open {
            if ends == 0 {
                continue; // the whole block is inside one field
            }
            field(n, start, base + ends.trailing_zeros() as usize);
            n += 1;
            open = false;
        }
        while starts != 0 {
            let at = starts.trailing_zeros();
            let later = ends & (u64::MAX << at);
            if later == 0 {
                (start, open) = (base + at as usize, true);
                break;
            }
            field(
                n,
                base + at as usize,
                base + later.trailing_zeros() as usize,
            );
            n += 1;
            starts &= starts - 1;
        }
        prev_ws = ws >> 63 != 0;
    }
    if open {
        field(n, start, b.len());
        n += 1;
    }
    n
}

/// `str::trim`, without decoding characters when both ends are visible ASCII (every line of a
/// well-formed log).
fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x7f);
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

/// One in each byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The low seven bits of each byte of a word.
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// 0x80 in each byte of `v` that is zero, else 0 (exact: no carry crosses bytes).
fn zero_bytes(v: u64) -> u64 {
    !(((v & LOW7) + LOW7) | v | LOW7)
}

/// One bit per byte of `x` (little-endian order): the byte is ASCII whitespace (space, tab,
/// line feed, form feed, carriage return: what `split_ascii_whitespace` splits on).
fn whitespace_bits(x: u64) -> u8 {
    let zero = zero_bytes;
    // 0x80 in each byte below 0x21 (only those can be whitespace), and in each space: when
    // they agree (no control characters: nearly always, so the branch is predicted), the
    // spaces are the whitespace
    let low = !(((x & LOW7) + 0x5f * ONES) | x | LOW7);
    let space = zero(x ^ (0x20 * ONES));
    let mask = if space == low {
        space
    } else {
        space
            | zero(x ^ (0x09 * ONES))
            | zero(x ^ (0x0a * ONES))
            | zero(x ^ (0x0c * ONES))
            | zero(x ^ (0x0d * ONES))
    };
    // gather the bytes' top bits into one byte
    ((mask >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
}

/// Decimal digits up to `max`, parsed straight from the bytes; anything else (signs, more
/// than five digits, errors) is left to the standard parser, which gives the same value.
fn fast_uint(b: &[u8], max: u32) -> Option<u32> {
    if b.is_empty() || b.len() > 5 {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u32;
    }
    (v <= max).then_some(v)
}

/// Recently parsed address texts, direct-mapped (1024 slots, 40 KiB): a log names the same
/// hosts over and over, and a hit costs two loads and a compare instead of a parse whose
/// branches the processor cannot predict.
struct IpCache {
    slots: Vec<(u64, u64, usize, Option<IpAddr>)>,
}

impl IpCache {
    const BITS: u32 = 10;

    fn new() -> Self {
        IpCache {
            slots: vec![(0, 0, 0, None); 1 << Self::BITS],
        }
    }

    /// A text of 4 to 16 bytes as two overlapping words and its length: the pair and the
    /// length tell texts apart exactly.
    fn key(b: &[u8]) -> Option<(u64, u64)> {
        let word = |x: &[u8]| -> u64 {
            match x.len() {
                8 => u64::from_le_bytes(x.try_into().unwrap_or([0; 8])),
                _ => u32::from_le_bytes(x.try_into().unwrap_or([0; 4])) as u64,
            }
        };
        match b.len() {
            4..=7 => Some((word(&b[..4]), word(&b[b.len() - 4..]))),
            8..=16 => Some((word(&b[..8]), word(&b[b.len() - 8..]))),
            _ => None,
        }
    }

    /// An address from a field's bytes (see [`parse_ip`]).
    fn parse(
        &mut self,
        file: &str,
        line: usize,
        field: &str,
        s: &[u8],
    ) -> Result<IpAddr, Box<ParseError>> {
        let parse = |s: &[u8]| match fast_ipv4(s) {
            Some(a) => Ok(IpAddr::V4(a)),
            None => parse_ip(file, line, field, &String::from_utf8_lossy(s)).map_err(Box::new),
        };
        let Some((a, b)) = Self::key(s) else {
            return parse(s);
        };
        let h = (a ^ b.rotate_left(29) ^ s.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let slot = &mut self.slots[(h >> (64 - Self::BITS)) as usize];
        if let (true, Some(ip)) = ((slot.0, slot.1, slot.2) == (a, b, s.len()), slot.3) {
            return Ok(ip);
        }
        let ip = parse(s)?;
        *slot = (a, b, s.len(), Some(ip));
        Ok(ip)
    }
}

fn parse_ip(file: &str, line: usize, field: &str, s: &str) -> Result<IpAddr, ParseError> {
    let s = trim(s);
    if let Some(a) = fast_ipv4(s.as_bytes()) {
        return Ok(IpAddr::V4(a));
    }
    s.parse()
        .map_err(|_| perr(file, line, field, format!("`{s}` is not an IP address")))
}

fn parse_port(file: &str, line: usize, field: &str, s: &str) -> Result<u16, ParseError> {
    if let Some(p) = fast_uint(s.as_bytes(), u16::MAX as u32) {
        return Ok(p as u16);
    }
    s.trim()
        .parse()
        .map_err(|_| perr(file, line, field, format!("`{s}` is not a port (0-65535)")))
}

/// A protocol by IANA number or by name (`tcp`, `udp`, `icmp`, `icmpv6`, `esp`, `ah`, `gre`,
/// `sctp`).
pub fn parse_protocol(s: &str) -> Option<u8> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u8>() {
        return Some(n);
    }
    [
        ("tcp", proto::TCP),
        ("udp", proto::UDP),
        ("icmp", proto::ICMP),
        ("icmpv6", proto::ICMPV6),
        ("ipv6-icmp", proto::ICMPV6),
        ("esp", proto::ESP),
        ("ah", proto::AH),
        ("gre", proto::GRE),
        ("sctp", proto::SCTP),
    ]
    .into_iter()
    .find(|(n, _)| n.eq_ignore_ascii_case(s))
    .map(|(_, p)| p)
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

/// The AWS fields replay reads, in the order of [`AwsCols::role`]'s values.
const AWS_READ: [&str; 7] = [
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "action",
    "log-status",
];
const A_SRC: usize = 0;
const A_DST: usize = 1;
const A_SPORT: usize = 2;
const A_DPORT: usize = 3;
const A_PROTO: usize = 4;
const A_ACTION: usize = 5;
const A_STATUS: usize = 6;

/// The columns of an AWS log: their names, and for each column the field it gives (the first
/// column of a name gives it), so a record is read in one pass over its fields.
struct AwsCols {
    names: Vec<String>,
    role: Vec<Option<usize>>,
}

impl AwsCols {
    fn new(names: Vec<String>) -> Self {
        let role = (0..names.len())
            .map(|i| {
                let n = &names[i];
                AWS_READ
                    .iter()
                    .position(|r| r == n)
                    .filter(|_| !names[..i].contains(n))
            })
            .collect();
        AwsCols { names, role }
    }
}

struct AwsParser {
    cols: AwsCols,
    header: bool,
    seen_data: bool,
    ips: IpCache,
}

impl AwsParser {
    /// One line, as bytes: an ASCII line (every line of a well-formed log) is read without a
    /// UTF-8 validation; any other is validated first.
    fn line(
        &mut self,
        file: &str,
        line: usize,
        raw: &[u8],
        ascii: bool,
        rec: &mut FlowRecord,
        skips: &mut Skips,
    ) -> Result<Step, Box<ParseError>> {
        let visible = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x7f);
        let l: &[u8] = if ascii && visible(raw.first()) && visible(raw.last()) {
            raw
        } else {
            match std::str::from_utf8(raw) {
                Ok(t) => t.trim().as_bytes(),
                Err(_) => return Err(bperr(file, line, "text", "not UTF-8 text")),
            }
        };
        if l.is_empty() || l.starts_with(b"#") {
            return Ok(Step::Nothing);
        }
        if !self.seen_data && !self.header {
            // (valid UTF-8: checked above, or ASCII)
            let text = String::from_utf8_lossy(l);
            if let Some(names) = aws_header(&text) {
                for need in ["srcaddr", "dstaddr", "dstport", "protocol"] {
                    if !names.iter().any(|n| n == need) {
                        return Err(bperr(
                            file,
                            line,
                            "header",
                            format!("the header has no `{need}` field"),
                        ));
                    }
                }
                self.cols = AwsCols::new(names);
                self.header = true;
                return Ok(Step::Nothing);
            }
        }
        self.seen_data = true;
        // one pass over the line, keeping the fields read
        let mut f: [&[u8]; AWS_READ.len()] = [b""; AWS_READ.len()];
        let role = &self.cols.role;
        let n = split_fields(l, |k, start, end| {
            if let Some(Some(r)) = role.get(k) {
                f[*r] = &l[start..end];
            }
        });
        let names = &self.cols.names;
        if n != names.len() {
            return Err(bperr(
                file,
                line,
                "record",
                format!("{n} fields, expected {} ({})", names.len(), names.join(" ")),
            ));
        }
        let get = |r: usize| Some(f[r]).filter(|v| !v.is_empty() && *v != b"-");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match get(A_STATUS) {
            None | Some(b"OK") => {}
            Some(b"NODATA") => {
                skip(skips, "NODATA");
                return Ok(Step::Nothing);
            }
            Some(b"SKIPDATA") => {
                skip(skips, "SKIPDATA");
                return Ok(Step::Nothing);
            }
            Some(s) => {
                return Err(bperr(
                    file,
                    line,
                    "log-status",
                    format!("`{}` is not OK, NODATA or SKIPDATA", text(s)),
                ))
            }
        }
        let (Some(src), Some(dst), Some(pr)) = (get(A_SRC), get(A_DST), get(A_PROTO)) else {
            skip(skips, "missing fields");
            return Ok(Step::Nothing);
        };
        let src = self.ips.parse(file, line, "srcaddr", src)?;
        let dst = self.ips.parse(file, line, "dstaddr", dst)?;
        let p = fast_uint(pr, 255)
            .map(|p| p as u8)
            .or_else(|| std::str::from_utf8(pr).ok()?.parse().ok())
            .ok_or_else(|| {
                bperr(
                    file,
                    line,
                    "protocol",
                    format!("`{}` is not a protocol number (0-255)", text(pr)),
                )
            })?;
        let mut r = FlowRecord::new(line, src, dst, p);
        r.provider = Some(ProviderKind::Aws);
        if proto::has_ports(p) {
            let Some(dp) = get(A_DPORT) else {
                skip(skips, "missing fields");
                return Ok(Step::Nothing);
            };
            r.dst_port = Some(port_bytes(file, line, "dstport", dp)?);
            if let Some(sp) = get(A_SPORT) {
                r.src_port = Some(port_bytes(file, line, "srcport", sp)?);
            }
        }
        r.observed = match get(A_ACTION) {
            None => None,
            Some(b"ACCEPT") => Some(true),
            Some(b"REJECT") => Some(false),
            Some(a) => {
                return Err(bperr(
                    file,
                    line,
                    "action",
                    format!("`{}` is not ACCEPT or REJECT", text(a)),
                ))
            }
        };
        *rec = r;
        Ok(Step::Record)
    }
}

/// The column names of an AWS header line (`${a_b}` read as `a-b`), when it is one: a line
/// before any data that names `srcaddr`.
fn aws_header(l: &str) -> Option<Vec<String>> {
    fn bare(f: &str) -> &str {
        f.trim_start_matches("${").trim_end_matches('}')
    }
    l.split_ascii_whitespace()
        .any(|f| bare(f) == "srcaddr")
        .then(|| {
            l.split_ascii_whitespace()
                .map(|f| bare(f).replace('_', "-"))
                .collect()
        })
}

/// A port from a field's bytes (see [`parse_port`]).
fn port_bytes(file: &str, line: usize, field: &str, b: &[u8]) -> Result<u16, Box<ParseError>> {
    match fast_uint(b, u16::MAX as u32) {
        Some(p) => Ok(p as u16),
        None => parse_port(file, line, field, &String::from_utf8_lossy(b)).map_err(Box::new),
    }
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

/// An Azure NSG flow-log document: every tuple, in document order, to `emit`.
fn azure_document<E: From<ParseError>>(
    file: &str,
    text: &str,
    emit: &mut impl FnMut(&FlowRecord) -> Result<(), E>,
) -> Result<(), E> {
    let doc: Value = serde_json::from_str(text).map_err(|e| json_err(file, &e, 1))?;
    let lines = Lines::new(text);
    let mut cursor = 0usize;
    let mut last_line = 1usize;
    let Some(records) = doc.get("records").and_then(Value::as_array) else {
        return Err(E::from(perr(
            file,
            1,
            "records",
            "expected an object with a `records` array (an NSG flow log blob)",
        )));
    };
    for (ri, rec) in records.iter().enumerate() {
        let at = format!("records[{ri}]");
        let Some(props) = rec.get("properties") else {
            return Err(E::from(perr(
                file,
                last_line,
                &format!("{at}.properties"),
                "missing",
            )));
        };
        let version = match props.get("Version") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n @ (1 | 2)) => Some(n),
                _ => {
                    return Err(E::from(perr(
                        file,
                        last_line,
                        &format!("{at}.properties.Version"),
                        format!("`{v}` is not 1 or 2"),
                    )))
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
                        return Err(E::from(perr(file, last_line, &field, "not a string")));
                    };
                    // find the tuple in the text (document order) for its line
                    let needle = format!("\"{t}\"");
                    if let Some(off) = text.get(cursor..).and_then(|s| s.find(&needle)) {
                        cursor += off + needle.len();
                        last_line = lines.line_of(cursor - needle.len());
                    }
                    emit(&azure_tuple(file, last_line, &field, version, t)?)?;
                }
            }
        }
    }
    Ok(())
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
/// One GCP log entry (a flow-log or firewall-log record).
fn gcp_entry(file: &str, line: usize, e: &Value) -> Result<FlowRecord, ParseError> {
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
    Ok(r)
}

/// A GCP JSON array of entries, read whole; each entry's line is where it starts.
fn gcp_array<E: From<ParseError>>(
    file: &str,
    text: &str,
    emit: &mut impl FnMut(&FlowRecord) -> Result<(), E>,
) -> Result<(), E> {
    let all: Vec<Value> = serde_json::from_str(text).map_err(|e| json_err(file, &e, 1))?;
    let lines = Lines::new(text);
    let starts = array_element_starts(text);
    for (i, v) in all.iter().enumerate() {
        let line = starts.get(i).map(|&o| lines.line_of(o)).unwrap_or(1);
        emit(&gcp_entry(file, line, v)?)?;
    }
    Ok(())
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

impl CsvParser {
    fn line(
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
            return Err(perr(
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
            perr(
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
                        perr(
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
        let num = |c: usize, n: &str| -> Result<Option<u8>, ParseError> {
            get(c)
                .map(|x| {
                    x.parse::<u8>()
                        .map_err(|_| perr(file, line, n, format!("`{x}` is not 0-255")))
                })
                .transpose()
        };
        r.icmp_type = num(C_ICMP_TYPE, "icmp_type")?;
        r.icmp_code = num(C_ICMP_CODE, "icmp_code")?;
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
        r.expected = match get(C_EXPECTED) {
            None => None,
            Some(x) if x.eq_ignore_ascii_case("allow") => Some(true),
            Some(x) if x.eq_ignore_ascii_case("deny") => Some(false),
            Some(x) => {
                return Err(perr(
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
    ) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut ctxs: Vec<Ctx<'a>> = Vec::new();
        for t in &plan.targets {
            let dep = intent.deployments.get(&t.deployment).ok_or_else(|| {
                anyhow::anyhow!("plan names unknown deployment `{}`", t.deployment)
            })?;
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
    fn record(&mut self, r: &FlowRecord) -> anyhow::Result<()> {
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
                anyhow::bail!("{file}:{}: deployment: unknown deployment `{d}`", r.line);
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
) -> anyhow::Result<Replay> {
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
) -> anyhow::Result<Replay> {
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

    #[test]
    fn split_fields_splits_like_split_ascii_whitespace() {
        let mut x = 0x2545_f491u64;
        let alphabet = b"ab. \t\n\x0c\r\x0b\x01-9\xc3\xa9 ";
        for len in 0..200 {
            for _ in 0..20 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        alphabet[(x % alphabet.len() as u64) as usize]
                    })
                    .collect();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let want: Vec<&str> = text.split_ascii_whitespace().collect();
                let mut got = Vec::new();
                let n = split_fields(text.as_bytes(), |k, a, b| {
                    assert_eq!(k, got.len());
                    got.push(&text[a..b]);
                });
                assert_eq!((n, &got), (want.len(), &want), "{text:?}");
                assert_eq!(trim(&text), text.trim(), "{text:?}");
            }
        }
    }

    #[test]
    fn the_ip_cache_gives_what_the_parser_gives() {
        let mut c = IpCache::new();
        let texts = [
            "10.0.0.1",
            "10.0.0.10",
            "10.0.0.1 ",
            "1.2.3.4",
            "1.2.3.40",
            "2001:db8::1",
            "2001:db8::10",
            "::1",
            "10.0.0.999",
            "255.255.255.255",
            "2001:db8:1:2:3:4:5:6",
            "",
        ];
        for _ in 0..3 {
            for t in texts {
                let want = parse_ip("f", 1, "x", t).map_err(|e| e.to_string());
                let got = c
                    .parse("f", 1, "x", t.as_bytes())
                    .map_err(|e| e.to_string());
                assert_eq!(got, want, "{t}");
            }
        }
    }

    #[test]
    fn fast_ipv4_accepts_exactly_what_the_standard_parser_does() {
        for s in [
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.4 ",
            "+1.2.3.4",
            "1.2.3.-4",
            "1000.2.3.4",
            "",
            "::1",
            "1.2.3.4/8",
            "١.2.3.4",
        ] {
            assert_eq!(fast_ipv4(s.as_bytes()), s.parse::<Ipv4Addr>().ok(), "{s:?}");
            assert_eq!(
                fast_uint(s.as_bytes(), 255).map(|v| v as u8),
                s.parse::<u8>().ok(),
                "{s:?}"
            );
        }
        for s in [
            "0",
            "00443",
            "65535",
            "65536",
            "99999",
            "+80",
            "-1",
            "000000443",
            "1 ",
            "٣",
        ] {
            assert_eq!(
                fast_uint(s.as_bytes(), 65535)
                    .map(|v| v as u16)
                    .or_else(|| s.parse().ok()),
                s.parse::<u16>().ok(),
                "{s:?}"
            );
        }
        let mut x = 0x1234_5678u32;
        for _ in 0..20_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let a = Ipv4Addr::from(x);
            assert_eq!(fast_ipv4(a.to_string().as_bytes()), Some(a));
        }
    }

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

    #[test]
    fn find_newline_finds_the_first_newline_and_tells_ascii_lines() {
        let mut x = 0x9e37_79b9u64;
        for len in 0..70 {
            for _ in 0..50 {
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        [b'a', b' ', b'\n', 0xc3, 0x7f, b'0'][(x % 6) as usize]
                    })
                    .collect();
                let want = b
                    .iter()
                    .position(|&c| c == b'\n')
                    .map(|i| (i, b[..i].is_ascii()));
                assert_eq!(find_newline(&b), want, "{b:?}");
            }
        }
    }

    #[test]
    fn aws_lines_that_are_not_plain_ascii_read_as_before() {
        // non-ASCII in a field the replay does not read; a vertical tab `str::trim` removes
        let log = parse_aws(
            "a",
            "2 1 eni-é 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\x0b\n\u{a0}2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 REJECT OK\n",
        )
        .unwrap();
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.records[1].observed, Some(false));
        let e = parse_aws(
            "a",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPTé OK\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a:1: action: `ACCEPTé` is not ACCEPT or REJECT"
        );
    }

    #[test]
    fn infer_file_finds_azure_past_the_first_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.json");
        let mut text = format!("{{\"records\":[{{\"pad\":\"{}\",", "x".repeat(200_000));
        text.push_str("\"properties\":{\"flows\":[{\"flows\":[{\"flowTuples\":[]}]}]}}]}");
        std::fs::write(&p, &text).unwrap();
        assert_eq!(FlowFormat::infer_file(&p).unwrap(), FlowFormat::AzureNsg);
        std::fs::write(&p, "{\"jsonPayload\":{}}\n").unwrap();
        assert_eq!(FlowFormat::infer_file(&p).unwrap(), FlowFormat::Gcp);
        // the needle split across two reads is still found
        for cut in 1..AZURE_MARK.len() {
            let data = format!("{}{}", "y".repeat(64 * 1024 - cut), AZURE_MARK);
            assert!(contains(data.as_bytes(), AZURE_MARK.as_bytes()).unwrap());
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
                    snapshots: root.join("snapshots"),
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
