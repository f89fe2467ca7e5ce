//! Flow logs, cloud by cloud, read into one neutral record.
//!
//! Each cloud's plugin knows its own log format (AWS VPC text, Azure NSG JSON, GCP JSON
//! lines) and implements [`LineFormat`] for it; the engine replays records and never looks
//! inside a format. What is common to every format lives here, once:
//! - [`FlowRecord`], what a record says whatever its format, and [`ParseError`], where a log
//!   is malformed (`file:line`, field, message);
//! - [`read`], the streaming reader: a log is read record by record and each is handed on as
//!   it is read, so memory does not grow with the log. Line formats are read one line at a
//!   time into one reused buffer and parsed in place (fields are byte slices of the line; no
//!   allocation per record); a format that is one JSON document (an Azure blob, a GCP JSON
//!   array) is read whole, as a JSON parser needs it;
//! - the field parsers every format shares (addresses, ports, protocols), exact and fast on
//!   the common spellings, and never panicking: a flow log is user input.

use crate::traffic::proto;
use crate::ProviderKind;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};
use std::net::{IpAddr, Ipv4Addr};

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
    /// A record of `proto` from `src` to `dst`, on `line`, with nothing else known.
    pub fn new(line: usize, src: IpAddr, dst: IpAddr, proto: u8) -> Self {
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

/// A flow log read whole (for tests and small logs: [`read`] streams).
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

impl ParseError {
    /// An error at `file:line` in `field`.
    pub fn new(file: &str, line: usize, field: &str, message: impl Into<String>) -> Self {
        ParseError {
            file: file.to_string(),
            line,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// [`ParseError::new`], boxed: the hot paths return boxed errors so their results stay
    /// small.
    pub fn boxed(file: &str, line: usize, field: &str, message: impl Into<String>) -> Box<Self> {
        Box::new(Self::new(file, line, field, message))
    }
}

/// Records skipped while reading, by reason (fixed words, so counting allocates nothing).
pub type Skips = BTreeMap<&'static str, u64>;

/// Count a skipped record under `why`.
pub fn skip(skips: &mut Skips, why: &'static str) {
    *skips.entry(why).or_default() += 1;
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
#[inline]
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
        .map_err(|e| ParseError::new(file, line, "file", format!("cannot read flow log: {e}")))?;
    Ok(text)
}

/// What one line gave.
pub enum Step {
    /// Nothing to check (blank, comment, header, skipped record).
    Nothing,
    /// The record was filled in.
    Record,
    /// The file is one JSON document (a JSON array of entries) starting on this line: the
    /// reader hands it whole to [`LineFormat::document`].
    Document,
}

/// A flow-log format: each cloud's plugin implements its own, the engine the neutral CSV. The
/// reader ([`read`]) calls [`line`] for every line with the parser's state, and [`document`]
/// when the log is one JSON document.
///
/// [`line`]: LineFormat::line
/// [`document`]: LineFormat::document
pub trait LineFormat {
    /// The log is one JSON document, read whole from its first byte (an Azure blob): only
    /// [`LineFormat::document`] is called.
    const WHOLE: bool = false;

    /// One line (`bytes`, without its line ending; `ascii`: every byte is ASCII, so no UTF-8
    /// validation is needed), 1-based `line`: fill `rec` in and say [`Step::Record`], or
    /// count a skipped record in `skips`, or say the log is one document from here on.
    fn line(
        &mut self,
        file: &str,
        line: usize,
        bytes: &[u8],
        ascii: bool,
        rec: &mut FlowRecord,
        skips: &mut Skips,
    ) -> Result<Step, Box<ParseError>>;

    /// A log that is one JSON document (`text`, with the lines before it kept blank, so
    /// offsets and the JSON parser's line numbers are the file's): every record to `emit`,
    /// in document order. A format that is never a document keeps this default error.
    fn document<E: From<ParseError>>(
        &mut self,
        file: &str,
        text: &str,
        emit: &mut impl FnMut(&FlowRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let _ = (text, emit);
        Err(E::from(ParseError::new(
            file,
            1,
            "file",
            "this format is not a JSON document",
        )))
    }

    /// Checks at the end of the log (a header that never came).
    fn finish(&self, file: &str) -> Result<(), ParseError> {
        let _ = file;
        Ok(())
    }
}

/// Read a flow log of format `parser` record by record, handing each to `emit` (which may
/// stop the reading with an error); returns the skipped records by reason. Line-based formats
/// keep one line and one record in memory, reused; a JSON document is read whole.
pub fn read<R: BufRead, P: LineFormat, E: From<ParseError>>(
    mut parser: P,
    file: &str,
    mut reader: R,
    mut emit: impl FnMut(&FlowRecord) -> Result<(), E>,
) -> Result<BTreeMap<String, u64>, E> {
    let mut skips = Skips::new();
    let by_reason = |s: &Skips| s.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    if P::WHOLE {
        let text = read_rest(file, 1, &mut reader, String::new())?;
        parser.document(file, &text, &mut emit)?;
        return Ok(by_reason(&skips));
    }
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
                let e =
                    ParseError::new(file, line + 1, "file", format!("cannot read flow log: {e}"));
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
                // one document: read it whole, the lines before it kept blank so the JSON
                // parser's line numbers stay the file's
                let mut doc = "\n".repeat(line - 1);
                doc.push_str(&String::from_utf8_lossy(bytes));
                doc.push('\n');
                let doc = read_rest(file, line, &mut lines.rest(), doc)?;
                parser.document(file, &doc, &mut emit)?;
                return Ok(by_reason(&skips));
            }
        }
    }
    parser.finish(file)?;
    Ok(by_reason(&skips))
}

/// Read a whole log held in memory (for tests and small logs: [`read`] streams).
pub fn read_all<P: LineFormat>(parser: P, file: &str, text: &str) -> Result<FlowLog, ParseError> {
    let mut records = Vec::new();
    let skipped = read(parser, file, text.as_bytes(), |r| {
        records.push(r.clone());
        Ok::<(), ParseError>(())
    })?;
    Ok(FlowLog { records, skipped })
}

/// A line as text, for formats that read text: an error naming the line when it is not UTF-8.
pub fn utf8<'a>(file: &str, line: usize, bytes: &'a [u8]) -> Result<&'a str, Box<ParseError>> {
    std::str::from_utf8(bytes).map_err(|_| ParseError::boxed(file, line, "text", "not UTF-8 text"))
}

/// An IPv4 address in dotted-quad form, parsed straight from the bytes; anything else (IPv6,
/// errors) is left to the standard parser. Accepts exactly what `Ipv4Addr::from_str` does:
/// four decimal octets of 1 to 3 digits, at most 255, no leading zero.
#[inline]
pub fn fast_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
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
#[inline]
pub fn split_fields(b: &[u8], mut field: impl FnMut(usize, usize, usize)) -> usize {
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
#[inline]
pub fn trim(s: &str) -> &str {
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
#[inline]
fn zero_bytes(v: u64) -> u64 {
    !(((v & LOW7) + LOW7) | v | LOW7)
}

/// One bit per byte of `x` (little-endian order): the byte is ASCII whitespace (space, tab,
/// line feed, form feed, carriage return: what `split_ascii_whitespace` splits on).
#[inline]
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
#[inline]
pub fn fast_uint(b: &[u8], max: u32) -> Option<u32> {
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

/// An address field: `field` of `file:line` names it in the error.
pub fn parse_ip(file: &str, line: usize, field: &str, s: &str) -> Result<IpAddr, ParseError> {
    let s = trim(s);
    if let Some(a) = fast_ipv4(s.as_bytes()) {
        return Ok(IpAddr::V4(a));
    }
    s.parse()
        .map_err(|_| ParseError::new(file, line, field, format!("`{s}` is not an IP address")))
}

/// A port field (0-65535): `field` of `file:line` names it in the error.
pub fn parse_port(file: &str, line: usize, field: &str, s: &str) -> Result<u16, ParseError> {
    if let Some(p) = fast_uint(s.as_bytes(), u16::MAX as u32) {
        return Ok(p as u16);
    }
    s.trim()
        .parse()
        .map_err(|_| ParseError::new(file, line, field, format!("`{s}` is not a port (0-65535)")))
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

/// Byte offsets of line starts, to turn offsets into line numbers.
pub struct Lines(Vec<usize>);

impl Lines {
    /// The line starts of `text`.
    pub fn new(text: &str) -> Self {
        let mut v = vec![0];
        v.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines(v)
    }
    /// The 1-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// A JSON syntax error of a document that starts on line `line_base` of `file`.
pub fn json_err(file: &str, e: &serde_json::Error, line_base: usize) -> ParseError {
    ParseError::new(
        file,
        line_base + e.line().saturating_sub(1),
        "json",
        e.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
