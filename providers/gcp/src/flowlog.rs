//! GCP VPC flow logs and firewall-rules logs (`intentwall simulate --flows F --flow-format
//! gcp`), read into the contract's neutral [`FlowRecord`].
//!
//! Logs as exported from Cloud Logging: JSON lines, one log entry per line, or a JSON array of
//! entries. `jsonPayload.connection` gives the 5-tuple (`protocol` by number or name);
//! firewall-rules logs add `jsonPayload.disposition` (`ALLOWED` / `DENIED`), the observed
//! action. JSON lines are read one line at a time; an array is one JSON document, so it is
//! read whole, and each entry's line is the line where it starts.

use intentwall_contract::flowlog::{
    json_err, parse_ip, parse_port, parse_protocol, read_all, utf8, FlowLog, FlowRecord,
    LineFormat, Lines, ParseError, Skips, Step,
};
use intentwall_contract::traffic::proto;
use intentwall_contract::ProviderKind;
use serde_json::Value;
use std::net::IpAddr;

/// Parse a whole GCP log held in memory (the engine streams through
/// [`intentwall_contract::flowlog::read`] with [`GcpFlowLog`]).
pub fn parse(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    read_all(GcpFlowLog::default(), file, text)
}

/// The state of a GCP log being read: whether an entry was seen (only a log whose first
/// entry opens with `[` is an array).
#[derive(Debug, Clone, Copy, Default)]
pub struct GcpFlowLog {
    seen: bool,
}

impl LineFormat for GcpFlowLog {
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
        if text.trim().is_empty() {
            return Ok(Step::Nothing);
        }
        if !self.seen && text.trim_start().starts_with('[') {
            return Ok(Step::Document);
        }
        self.seen = true;
        let v: Value = serde_json::from_str(text).map_err(|e| json_err(file, &e, line))?;
        *rec = gcp_entry(file, line, &v)?;
        Ok(Step::Record)
    }

    fn document<E: From<ParseError>>(
        &mut self,
        file: &str,
        text: &str,
        emit: &mut impl FnMut(&FlowRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        gcp_array(file, text, emit)
    }
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

/// One GCP log entry (a flow-log or firewall-log record).
fn gcp_entry(file: &str, line: usize, e: &Value) -> Result<FlowRecord, ParseError> {
    let Some(conn) = e.pointer("/jsonPayload/connection") else {
        return Err(ParseError::new(
            file,
            line,
            "jsonPayload.connection",
            "missing",
        ));
    };
    let s = |k: &str| conn.get(k);
    let ip = |k: &str| -> Result<IpAddr, ParseError> {
        match s(k).and_then(Value::as_str) {
            Some(x) => parse_ip(file, line, &format!("connection.{k}"), x),
            None => Err(ParseError::new(
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
        ParseError::new(
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
                    ParseError::new(
                        file,
                        line,
                        &format!("connection.{k}"),
                        format!("`{n}` is not a port"),
                    )
                }),
            Some(Value::String(x)) => {
                parse_port(file, line, &format!("connection.{k}"), x).map(Some)
            }
            Some(v) => Err(ParseError::new(
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
            return Err(ParseError::new(
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
            return Err(ParseError::new(
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
                return Err(ParseError::new(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcp_json_lines_and_arrays() {
        let lines = r#"{"insertId":"1","jsonPayload":{"connection":{"src_ip":"10.30.20.4","dest_ip":"100.64.20.9","src_port":40000,"dest_port":443,"protocol":6},"reporter":"SRC"}}

{"jsonPayload":{"connection":{"src_ip":"34.120.1.7","dest_ip":"10.30.20.4","protocol":1},"disposition":"DENIED"}}
"#;
        let log = parse("g.jsonl", lines).unwrap();
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
        let log = parse("g.json", &array).unwrap();
        assert_eq!(
            log.records.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn gcp_malformed_entries_name_the_line() {
        let ok = r#"{"jsonPayload":{"connection":{"src_ip":"10.30.20.4","dest_ip":"10.30.20.5","src_port":1,"dest_port":5432,"protocol":6}}}"#;
        let e = parse("g", &format!("{ok}\n{{not json\n")).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "json"));
        let e = parse("g", &format!("{ok}\n{ok}\n{{\"jsonPayload\":{{}}}}\n")).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "jsonPayload.connection"));
        let e = parse("g", &ok.replace("\"dest_port\":5432,", "")).unwrap_err();
        assert_eq!(e.field, "connection.dest_port");
        let e = parse("g", &ok.replace("10.30.20.5", "nope")).unwrap_err();
        assert_eq!(e.field, "connection.dest_ip");
        let e = parse("g", &ok.replace("\"protocol\":6", "\"protocol\":300")).unwrap_err();
        assert_eq!(e.field, "connection.protocol");
    }
}
