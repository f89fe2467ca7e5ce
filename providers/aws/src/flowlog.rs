//! AWS VPC Flow Logs (`intentwall simulate --flows F --flow-format aws-vpc`), read into the
//! contract's neutral [`FlowRecord`].
//!
//! The default format is v2 text (`version account-id interface-id srcaddr dstaddr srcport
//! dstport protocol packets bytes start end action log-status`). A header line is optional;
//! when present its field names decide the columns, so custom formats that keep `srcaddr
//! dstaddr dstport protocol` work too. `NODATA` / `SKIPDATA` records and records with `-` in a
//! needed field are skipped and counted. `action` (`ACCEPT` / `REJECT`) is the observed
//! action; a `REJECT` may also come from a network ACL, which the replay does not model.
//!
//! This is the replay's hottest loop (logs of millions of lines): a line is split in one pass
//! over its bytes, ASCII lines skip UTF-8 validation, and addresses go through a small cache,
//! since a log names the same hosts over and over. Errors name `file:line` and the field.

use intentwall_contract::flowlog::{
    fast_ipv4, fast_uint, parse_ip, parse_port, read_all, skip, split_fields, FlowLog, FlowRecord,
    LineFormat, ParseError, Skips, Step,
};
use intentwall_contract::traffic::proto;
use intentwall_contract::ProviderKind;
use std::net::IpAddr;

/// Parse a whole AWS VPC flow log held in memory (for tests and small logs: the engine
/// streams through [`intentwall_contract::flowlog::read`] with [`VpcFlowLog`]).
pub fn parse(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    read_all(VpcFlowLog::new(), file, text)
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

/// The state of an AWS VPC flow log being read: its columns, and whether a header or data
/// was seen (a header is only read before the first record).
pub struct VpcFlowLog {
    cols: AwsCols,
    header: bool,
    seen_data: bool,
    ips: IpCache,
}

impl Default for VpcFlowLog {
    fn default() -> Self {
        Self::new()
    }
}

impl VpcFlowLog {
    /// A log in the default format, until a header says otherwise.
    pub fn new() -> Self {
        VpcFlowLog {
            cols: AwsCols::new(AWS_DEFAULT.iter().map(|s| s.to_string()).collect()),
            header: false,
            seen_data: false,
            ips: IpCache::new(),
        }
    }
}

impl LineFormat for VpcFlowLog {
    /// One line, as bytes: an ASCII line (every line of a well-formed log) is read without a
    /// UTF-8 validation; any other is validated first.
    #[inline]
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
                Err(_) => return Err(ParseError::boxed(file, line, "text", "not UTF-8 text")),
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
                        return Err(ParseError::boxed(
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
            return Err(ParseError::boxed(
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
                return Err(ParseError::boxed(
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
                ParseError::boxed(
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
                return Err(ParseError::boxed(
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
        let log = parse("f.log", text).unwrap();
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
        let log = parse(
            "f",
            "2 1 eni-1 10.0.0.1 10.0.0.2 443 50000 6 1 40 1 2 ACCEPT OK\n",
        )
        .unwrap();
        assert_eq!(log.records[0].dst_port, Some(50000));
        let log = parse(
            "f",
            "srcaddr dstaddr dstport protocol action\n10.0.0.1 10.0.0.2 22 6 REJECT\n",
        )
        .unwrap();
        assert_eq!(log.records[0].observed, Some(false));
        assert_eq!(log.records[0].src_port, None);
        let e = parse("f", "srcaddr dstport protocol\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (1, "header"));
    }

    #[test]
    fn aws_malformed_lines_name_the_line_and_field() {
        let good = "2 1 eni-1 10.0.0.1 10.0.0.2 443 50000 6 1 40 1 2 ACCEPT OK\n";
        let e = parse(
            "x.log",
            &format!("{good}2 1 eni-1 10.0.0.999 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "srcaddr"));
        assert!(e.to_string().starts_with("x.log:2: srcaddr:"), "{e}");
        let e = parse("x", &format!("{good}{good}2 1 eni-1 10.0.0.1\n")).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "record"));
        let e = parse(
            "x",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 99999 6 1 1 1 2 ACCEPT OK\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "dstport");
        let e = parse(
            "x",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 tcp 1 1 1 2 ACCEPT OK\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "protocol");
        let e = parse("x", "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 MAYBE OK\n").unwrap_err();
        assert_eq!(e.field, "action");
        let e = parse(
            "x",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT WHAT\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "log-status");
        // a missing address is skipped, not an error
        let log = parse("x", "2 1 eni-1 - 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n").unwrap();
        assert_eq!(log.skipped.get("missing fields"), Some(&1));
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
    fn aws_lines_that_are_not_plain_ascii_read_as_before() {
        // non-ASCII in a field the replay does not read; a vertical tab `str::trim` removes
        let log = parse(
            "a",
            "2 1 eni-é 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\x0b\n\u{a0}2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 REJECT OK\n",
        )
        .unwrap();
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.records[1].observed, Some(false));
        let e = parse(
            "a",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPTé OK\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a:1: action: `ACCEPTé` is not ACCEPT or REJECT"
        );
    }
}
