//! Azure NSG flow logs (`intentwall simulate --flows F --flow-format azure-nsg`), read into
//! the contract's neutral [`FlowRecord`].
//!
//! A log is the blob Azure writes per NSG and hour: `{"records":[{"properties":{"Version":2,
//! "flows":[{"rule","flows":[{"mac","flowTuples":[...]}]}]}}]}`. Version 1 tuples have 8
//! fields (`time,src,dst,sport,dport,T|U,I|O,A|D`), version 2 tuples 13 (flow state and
//! counters after those). The decision (`A` / `D`) is the observed action. A blob is one JSON
//! document, so it is read whole; each tuple's line is found in the text, in document order,
//! so errors and reports name the line a person would open.

use intentwall_contract::flowlog::{
    json_err, parse_ip, parse_port, read_all, FlowLog, FlowRecord, LineFormat, Lines, ParseError,
    Skips, Step,
};
use intentwall_contract::traffic::proto;
use intentwall_contract::ProviderKind;
use serde_json::Value;

/// What only an Azure NSG flow log holds (a JSON key), for telling its files from other JSON
/// logs.
pub const MARK: &str = "\"flowTuples\"";

/// Parse a whole NSG flow log held in memory (the engine reads through
/// [`intentwall_contract::flowlog::read`] with [`NsgFlowLog`]).
pub fn parse(file: &str, text: &str) -> Result<FlowLog, ParseError> {
    read_all(NsgFlowLog, file, text)
}

/// The NSG flow-log format: one JSON document, read whole.
#[derive(Debug, Clone, Copy, Default)]
pub struct NsgFlowLog;

impl LineFormat for NsgFlowLog {
    const WHOLE: bool = true;

    /// Not called: the log is read whole ([`LineFormat::WHOLE`]); were it, the document would
    /// start here.
    fn line(
        &mut self,
        _file: &str,
        _line: usize,
        _bytes: &[u8],
        _ascii: bool,
        _rec: &mut FlowRecord,
        _skips: &mut Skips,
    ) -> Result<Step, Box<ParseError>> {
        Ok(Step::Document)
    }

    fn document<E: From<ParseError>>(
        &mut self,
        file: &str,
        text: &str,
        emit: &mut impl FnMut(&FlowRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        azure_document(file, text, emit)
    }
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
        return Err(E::from(ParseError::new(
            file,
            1,
            "records",
            "expected an object with a `records` array (an NSG flow log blob)",
        )));
    };
    for (ri, rec) in records.iter().enumerate() {
        let at = format!("records[{ri}]");
        let Some(props) = rec.get("properties") else {
            return Err(E::from(ParseError::new(
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
                    return Err(E::from(ParseError::new(
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
                ParseError::new(
                    file,
                    last_line,
                    &format!("{at}.properties.flows"),
                    "missing or not an array",
                )
            })?;
        for (fi, rf) in rule_flows.iter().enumerate() {
            let inner = rf.get("flows").and_then(Value::as_array).ok_or_else(|| {
                ParseError::new(
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
                    .ok_or_else(|| {
                        ParseError::new(file, last_line, &where_, "missing or not an array")
                    })?;
                for (ti, t) in tuples.iter().enumerate() {
                    let field = format!("{where_}[{ti}]");
                    let Some(t) = t.as_str() else {
                        return Err(E::from(ParseError::new(
                            file,
                            last_line,
                            &field,
                            "not a string",
                        )));
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
        return Err(ParseError::new(
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
            return Err(ParseError::new(
                file,
                line,
                &fld("protocol"),
                format!("`{x}` is not T or U"),
            ))
        }
    };
    if !matches!(f[6], "I" | "O") {
        return Err(ParseError::new(
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
            return Err(ParseError::new(
                file,
                line,
                &fld("decision"),
                format!("`{x}` is not A or D"),
            ))
        }
    };
    if f.len() == 13 && !matches!(f[8], "B" | "C" | "E" | "D") {
        return Err(ParseError::new(
            file,
            line,
            &fld("state"),
            format!("`{}` is not B, C, E or D", f[8]),
        ));
    }
    if f[0].parse::<u64>().is_err() {
        return Err(ParseError::new(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
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
        let log = parse("a.json", AZURE).unwrap();
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
        let e = parse("a.json", &bad).unwrap_err();
        assert_eq!(e.line, 15);
        assert!(
            e.field.contains("flowTuples[1]") && e.field.contains("protocol"),
            "{e}"
        );
        let bad = AZURE.replace("T,I,A\"", "T,I\"");
        let e = parse("a.json", &bad).unwrap_err();
        assert_eq!(e.line, 27, "{e}");
        let e = parse("a.json", "{\"records\": [\n  {]}").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (2, "json"));
        let e = parse("a.json", "[]").unwrap_err();
        assert_eq!(e.field, "records");
        let bad = AZURE.replace("\"Version\": 2", "\"Version\": 7");
        assert!(parse("a.json", &bad).unwrap_err().field.contains("Version"));
    }
}
